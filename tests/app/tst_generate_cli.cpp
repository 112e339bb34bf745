// End-to-end tests of `folio generate`: its JSON contract on the installed
// SmolLM2 (skipped when it is not installed), and bad input, each one line.

#include <QJsonArray>
#include <QJsonDocument>
#include <QJsonObject>
#include <QProcess>
#include <QTest>

#include <filesystem>

#include "engine/model_paths.h"

namespace {

const QString kTinyModel = QString::fromStdString((std::filesystem::path(FOLIO_TEST_DATA) / "llama_tiny/model.gguf").string());

struct Run {
    int exit_code = -1;
    QString out, err;
};

Run run_folio(const QStringList& arguments) {
    QProcess process;
    process.start(FOLIO_EXECUTABLE, arguments);
    Run run;
    if (!process.waitForFinished(300000)) {
        process.kill();
        process.waitForFinished();
        return run;
    }
    run.exit_code = process.exitStatus() == QProcess::NormalExit ? process.exitCode() : -1;
    run.out = QString::fromUtf8(process.readAllStandardOutput());
    run.err = QString::fromUtf8(process.readAllStandardError());
    return run;
}

}  // namespace

class GenerateCliTest : public QObject {
    Q_OBJECT

private slots:
    void jsonOnSmolLm2();
    void badInputIsOneLine_data();
    void badInputIsOneLine();
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
    QTest::newRow("lora") << QStringList{"generate", "--model", kTinyModel, "--prompt", "hi", "--lora", "a.gguf"}
                          << "LoRA adapters are not supported yet";
    QTest::newRow("cuda") << QStringList{"generate", "--model", kTinyModel, "--prompt", "hi", "--device", "cuda"}
                          << "the CUDA backend cannot run models yet";
    QTest::newRow("no tokenizer") << QStringList{"generate", "--model", kTinyModel, "--prompt", "hi"}
                                  << "has no tokenizer";
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

QTEST_GUILESS_MAIN(GenerateCliTest)
#include "tst_generate_cli.moc"
