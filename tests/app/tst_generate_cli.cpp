// End-to-end tests of `folio generate`: its JSON contract on the installed
// SmolLM2 (skipped when it is not installed), and bad input, each one line.

#include <QJsonArray>
#include <QJsonDocument>
#include <QJsonObject>
#include <QProcess>
#include <QTest>

#include <filesystem>

#include "engine/model_paths.h"
#include "tests/support/folio_process.h"

namespace {

const QString kTinyModel = QString::fromStdString((std::filesystem::path(FOLIO_TEST_DATA) / "llama_tiny/model.gguf").string());

using folio::test::run_folio;
using Run = folio::test::FolioRun;

}  // namespace

class GenerateCliTest : public QObject {
    Q_OBJECT

private slots:
    void jsonOnSmolLm2();
    void baseModelContinuesText();
    void badInputIsOneLine_data();
    void badInputIsOneLine();
    void invalidUtf8PromptIsOneLine();
    void longPromptOnSmolLm2();
};

void GenerateCliTest::jsonOnSmolLm2() {
    const auto model = folio::engine::find_default_model(folio::engine::ModelRole::Chat);
    if (!model) QSKIP("no chat model installed (installer/fetch-models.sh)");
    const QStringList arguments = {"generate", "--model", QString::fromStdString(*model), "--prompt",
                                   "What is the capital of France?", "--temp", "0", "--n", "12", "--json"};
    const Run run = run_folio(arguments);
    QVERIFY2(run.exit_code == 0, qPrintable(run.err));
    const QStringList lines = run.out.split('\n', Qt::SkipEmptyParts);
    QCOMPARE(lines.size(), 1);
    const QJsonObject object = QJsonDocument::fromJson(lines[0].toUtf8()).object();
    QVERIFY(!object["text"].toString().isEmpty());
    const QJsonArray tokens = object["tokens"].toArray();
    QVERIFY(!tokens.isEmpty() && tokens.size() <= 12);
    const QJsonObject timings = object["timings"].toObject();
    for (const char* key : {"prompt_tokens", "generated_tokens", "prefill_tokens_per_second",
                            "decode_tokens_per_second", "time_to_first_token_seconds"})
        QVERIFY2(timings.contains(key), key);
    QVERIFY(timings["prompt_tokens"].toInt() > 10);  // the chat template and SmolLM2's default system turn

    // Greedy is deterministic; --raw skips the template.
    const QJsonObject again = QJsonDocument::fromJson(run_folio(arguments).out.toUtf8()).object();
    QCOMPARE(again["text"], object["text"]);
    QCOMPARE(again["tokens"], object["tokens"]);
    const Run raw = run_folio({"generate", "--model", QString::fromStdString(*model), "--prompt", "The capital of France is",
                           "--raw", "--temp", "0", "--n", "4", "--json"});
    QVERIFY2(raw.exit_code == 0, qPrintable(raw.err));
    const QJsonObject raw_object = QJsonDocument::fromJson(raw.out.toUtf8()).object();
    QCOMPARE(raw_object["timings"].toObject()["prompt_tokens"].toInt(), 5);
    QVERIFY(raw_object["text"].toString().startsWith(" Paris"));
}

// The installed gemma-3-270m is a base model with no chat template in its
// file: it continues the prompt as with --raw (BOS + 5 tokens), after a note;
// --chat-template gemma still makes the prompt a user turn.
void GenerateCliTest::baseModelContinuesText() {
    const std::filesystem::path model =
        std::filesystem::path(folio::engine::default_models_directory()) / "gemma-3-270m-q4_k_m.gguf";
    if (!std::filesystem::exists(model)) QSKIP("gemma-3-270m-q4_k_m.gguf is not installed (installer/fetch-models.sh)");
    const QStringList arguments = {"generate", "--model", QString::fromStdString(model.string()), "--prompt",
                                   "The capital of France is", "--temp", "0", "--n", "6", "--json"};
    const Run run = run_folio(arguments);
    QVERIFY2(run.exit_code == 0, qPrintable(run.err));
    QVERIFY2(run.err.startsWith("folio: note: the model has no chat template"), qPrintable(run.err));
    const QJsonObject object = QJsonDocument::fromJson(run.out.toUtf8()).object();
    QCOMPARE(object["timings"].toObject()["prompt_tokens"].toInt(), 6);
    QVERIFY2(object["text"].toString().contains("capital"), qPrintable(object["text"].toString()));

    const Run chat = run_folio(arguments + QStringList{"--chat-template", "gemma"});
    QVERIFY2(chat.exit_code == 0 && chat.err.isEmpty(), qPrintable(chat.err));
    // <bos><start_of_turn>user\n ... <end_of_turn>\n<start_of_turn>model\n
    QCOMPARE(QJsonDocument::fromJson(chat.out.toUtf8()).object()["timings"].toObject()["prompt_tokens"].toInt(), 14);
}

void GenerateCliTest::badInputIsOneLine_data() {
    QTest::addColumn<QStringList>("arguments");
    QTest::addColumn<QString>("message");
    QTest::newRow("missing model") << QStringList{"generate", "--model", "/nonexistent/model.gguf", "--prompt", "hi"}
                                   << "no model file /nonexistent/model.gguf";
    QTest::newRow("negative temperature") << QStringList{"generate", "--model", kTinyModel, "--prompt", "hi", "--temp", "-1"}
                                          << "--temp must be a number";
    QTest::newRow("unknown option") << QStringList{"generate", "--prompt", "hi", "--bogus", "1"}
                                    << "unknown option --bogus for 'generate'";
    QTest::newRow("no prompt") << QStringList{"generate", "--model", kTinyModel} << "generate needs --prompt TEXT";
    QTest::newRow("missing lora") << QStringList{"generate", "--model", kTinyModel, "--prompt", "hi", "--lora", "a.gguf"}
                                  << "no LoRA adapter file a.gguf";
    QTest::newRow("lora of a model") << QStringList{"generate", "--model", kTinyModel, "--prompt", "hi", "--lora",
                                                    kTinyModel + ":0.5"}
                                     << "is not a LoRA adapter (general.type is missing)";
    QTest::newRow("device name") << QStringList{"generate", "--model", kTinyModel, "--prompt", "hi", "--device", "gpu"}
                                 << "--device must be auto, cpu or cuda, not 'gpu'";
    QTest::newRow("cpu experts count") << QStringList{"generate", "--model", kTinyModel, "--prompt", "hi",
                                                      "--cpu-experts", "some"}
                                       << "--cpu-experts must be auto, all or a number of layers, not 'some'";
    QTest::newRow("cpu experts on the cpu")
        << QStringList{"generate", "--model", kTinyModel, "--prompt", "hi", "--device", "cpu", "--cpu-experts", "2"}
        << "--cpu-experts splits a model between the GPU and the host; with --device cpu every weight is on the host";
    QTest::newRow("no tokenizer") << QStringList{"generate", "--model", kTinyModel, "--prompt", "hi"}
                                  << "has no tokenizer";
    QTest::newRow("kv type") << QStringList{"generate", "--model", kTinyModel, "--prompt", "hi", "--kv-type", "q4_0"}
                             << "--kv-type must be f16 or q8_0, not 'q4_0'";
    QTest::newRow("truncate") << QStringList{"generate", "--model", kTinyModel, "--prompt", "hi", "--truncate", "middle"}
                              << "--truncate must be error or keep-last, not 'middle'";
    QTest::newRow("ctx beyond training") << QStringList{"generate", "--model", kTinyModel, "--prompt", "hi", "--ctx", "300"}
                                         << "--ctx 300 is longer than the model's training context of 256 tokens";
}

void GenerateCliTest::badInputIsOneLine() {
    QFETCH(QStringList, arguments);
    QFETCH(QString, message);
    const Run run = run_folio(arguments);
    QVERIFY(run.exit_code > 0);
    QVERIFY(run.out.isEmpty());
    QVERIFY2(run.err.startsWith("folio: error: ") && run.err.contains(message), qPrintable(run.err));
    QCOMPARE(run.err.count('\n'), 1);
    QVERIFY(run.err.endsWith('\n'));
}

// A prompt with a byte that is not UTF-8 (passed through sh: a QString
// argument cannot hold one) is refused before any model is read.
void GenerateCliTest::invalidUtf8PromptIsOneLine() {
    QProcess process;
    process.start("/bin/sh", {"-c", "exec \"$0\" generate --model \"$1\" --prompt \"$(printf 'caf\\303\\251 \\377!')\"",
                              FOLIO_EXECUTABLE, kTinyModel});
    QVERIFY(process.waitForFinished(60000));
    const QString err = QString::fromUtf8(process.readAllStandardError());
    QCOMPARE(process.exitCode(), 1);
    QCOMPARE(err, QString("folio: error: --prompt is not valid UTF-8: byte 0xFF at offset 6\n"));
}

// A prompt longer than --ctx: refused by default, its last tokens kept with
// --truncate keep-last; --kv-type q8_0 runs the quantized cache.
void GenerateCliTest::longPromptOnSmolLm2() {
    const auto model = folio::engine::find_default_model(folio::engine::ModelRole::Chat);
    if (!model) QSKIP("no chat model installed (installer/fetch-models.sh)");
    QString long_prompt;
    for (int i = 0; i < 40; ++i) long_prompt += "The report lists revenue, costs and the dividend. ";
    const QStringList arguments = {"generate", "--model", QString::fromStdString(*model), "--prompt", long_prompt,
                                   "--raw", "--temp", "0", "--n", "4", "--ctx", "128", "--json"};
    const Run refused = run_folio(arguments);
    QCOMPARE(refused.exit_code, 1);
    QVERIFY2(refused.err.startsWith("folio: error: the prompt is ") &&
                 refused.err.contains("tokens, longer than the 128-token context") && refused.err.count('\n') == 1,
             qPrintable(refused.err));

    const Run kept = run_folio(arguments + QStringList{"--truncate", "keep-last", "--kv-type", "q8_0"});
    QVERIFY2(kept.exit_code == 0, qPrintable(kept.err));
    const QJsonObject object = QJsonDocument::fromJson(kept.out.toUtf8()).object();
    QCOMPARE(object["kv_type"].toString(), QString("q8_0"));
    QCOMPARE(object["device"].toString(), QString("cpu"));
    QCOMPARE(object["host_expert_layers"].toInt(-1), 0);
    const QJsonObject timings = object["timings"].toObject();
    QCOMPARE(timings["prompt_tokens"].toInt(), 124);  // 128 less room for the 4 tokens asked for
    QVERIFY(timings["dropped_prompt_tokens"].toInt() > 0);
    QCOMPARE(object["tokens"].toArray().size(), 4);
}

QTEST_GUILESS_MAIN(GenerateCliTest)
#include "tst_generate_cli.moc"
