// End-to-end tests of `folio bench engine`: its JSON figures on the tiny
// llama test model (each figure present, the derived ones consistent with
// the measured ones, the bytes per token those of the file), and bad input.

#include <QJsonArray>
#include <QJsonDocument>
#include <QJsonObject>
#include <QTest>

#include <cmath>
#include <filesystem>

#include "engine/gguf.h"
#include "engine/model.h"
#include "tests/support/folio_process.h"

namespace {

const std::string kTinyModel = (std::filesystem::path(FOLIO_TEST_DATA) / "llama_tiny/model.gguf").string();

using folio::test::run_folio;
using Run = folio::test::FolioRun;

bool close(double a, double b) {
    return std::fabs(a - b) <= 1e-6 * std::max(std::fabs(a), std::fabs(b));
}

}  // namespace

class BenchEngineCliTest : public QObject {
    Q_OBJECT

private slots:
    void jsonFigures();
    void mixtureOfExpertsReadsOnlyTheChosenExperts();
    void contextSweepOnTheCpu();
    void q8_0CacheCountsItsOwnBytes();
    void humanOutputOneLinePerFigure();
    void badInputIsOneLine_data();
    void badInputIsOneLine();
};

void BenchEngineCliTest::jsonFigures() {
    const int prompt_tokens = 24;
    const int gen_tokens = 6;
    const Run run = run_folio({"bench", "engine", "--model", QString::fromStdString(kTinyModel), "--prompt-tokens",
                               QString::number(prompt_tokens), "--gen-tokens", QString::number(gen_tokens),
                               "--threads", "2", "--context-tokens", "0", "--json"});
    QVERIFY2(run.exit_code == 0, qPrintable(run.err));
    const QStringList lines = run.out.split('\n', Qt::SkipEmptyParts);
    QCOMPARE(lines.size(), 1);
    const QJsonObject o = QJsonDocument::fromJson(lines[0].toUtf8()).object();
    QCOMPARE(o["threads"].toInt(), 2);
    QCOMPARE(o["prompt_tokens"].toInt(), prompt_tokens);
    QCOMPARE(o["gen_tokens"].toInt(), gen_tokens);
    for (const char* key : {"memory_read_gb_per_s", "prefill_tokens_per_second", "decode_tokens_per_second",
                            "prefill_matmul_gflops", "sgemm_gflops"})
        QVERIFY2(o[key].toDouble() > 0, key);
    QVERIFY(!o["isa"].toString().isEmpty());

    // Bytes per decoded token, from the file: all tensors but the embedding
    // table, one embedding row, and the table again where the head is tied.
    const folio::engine::GgufFile file = folio::engine::GgufFile::open(kTinyModel);
    double weight_bytes = 0;
    for (const folio::engine::GgufTensor& tensor : file.tensors())
        if (tensor.name != "token_embd.weight")
            weight_bytes += static_cast<double>(tensor.n_bytes());
    const folio::engine::GgufTensor& embeddings = file.tensor("token_embd.weight");
    weight_bytes += static_cast<double>(embeddings.row_bytes);
    if (!file.find_tensor("output.weight"))
        weight_bytes += static_cast<double>(embeddings.n_bytes());
    QCOMPARE(o["decode_weight_bytes_per_token"].toDouble(), weight_bytes);
    const auto config = folio::engine::load_model(file)->config();
    const double kv_rows = prompt_tokens + (gen_tokens + 1) / 2.0;
    const double kv_bytes = kv_rows * config.n_layers * config.n_kv_heads * (config.head_dim + config.v_head_dim) * 2.0;
    QVERIFY(close(o["decode_kv_bytes_per_token"].toDouble(), kv_bytes));
    const double bytes = o["decode_bytes_per_token"].toDouble();
    QVERIFY(close(bytes, weight_bytes + kv_bytes));
    const double effective = o["decode_effective_gb_per_s"].toDouble();
    QVERIFY(close(effective, bytes * o["decode_tokens_per_second"].toDouble() / 1e9));
    QVERIFY(close(o["decode_bandwidth_fraction"].toDouble(), effective / o["memory_read_gb_per_s"].toDouble()));

    // One entry per distinct shape of the layers' matrices, counting them all.
    int matrices = 0;
    for (const QJsonValue& shape : o["prefill_matmul_shapes"].toArray()) {
        const QJsonObject s = shape.toObject();
        QVERIFY(s["rows"].toInt() > 0 && s["cols"].toInt() > 0);
        QVERIFY(s["gflops"].toDouble() > 0 && s["sgemm_gflops"].toDouble() > 0);
        matrices += s["count"].toInt();
    }
    QCOMPARE(matrices, 7 * config.n_layers);  // q k v o gate up down
    QVERIFY(close(o["prefill_matmul_fraction_of_sgemm"].toDouble(),
                  o["prefill_matmul_gflops"].toDouble() / o["sgemm_gflops"].toDouble()));
    if (!o["int8_peak_gops"].isNull())
        QVERIFY(close(o["prefill_matmul_fraction_of_int8_peak"].toDouble(),
                      o["prefill_matmul_gflops"].toDouble() / o["int8_peak_gops"].toDouble()));
}

// A decode step of the tiny Qwen3-MoE (8 experts, 2 per token) reads a
// quarter of each stacked expert tensor, and all of every other tensor.
void BenchEngineCliTest::mixtureOfExpertsReadsOnlyTheChosenExperts() {
    const std::string path = (std::filesystem::path(FOLIO_TEST_DATA) / "qwen3moe_tiny/model.gguf").string();
    const Run run = run_folio({"bench", "engine", "--model", QString::fromStdString(path), "--prompt-tokens", "8",
                               "--gen-tokens", "2", "--threads", "1", "--context-tokens", "0", "--json"});
    QVERIFY2(run.exit_code == 0, qPrintable(run.err));
    const QJsonObject o = QJsonDocument::fromJson(run.out.toUtf8()).object();
    const folio::engine::GgufFile file = folio::engine::GgufFile::open(path);
    double weight_bytes = 0;
    int expert_tensors = 0;
    for (const folio::engine::GgufTensor& tensor : file.tensors()) {
        const std::string_view name = tensor.name;
        if (name.ends_with("_exps.weight")) {
            weight_bytes += static_cast<double>(tensor.n_bytes()) * 2 / 8;
            ++expert_tensors;
        } else if (name != "token_embd.weight") {
            weight_bytes += static_cast<double>(tensor.n_bytes());
        }
    }
    weight_bytes += static_cast<double>(file.tensor("token_embd.weight").row_bytes);
    QCOMPARE(expert_tensors, 3 * 2);  // gate, up and down of two layers
    QCOMPARE(o["decode_weight_bytes_per_token"].toDouble(), weight_bytes);
}

// The context sweep on the CPU: prefill at each length, decode at each
// depth (the rows below it zero, as the line says), the latent cache's state
// per token (DeepSeek: one 96-value row of keys per layer), and the experts'
// load in prefill and decode.
void BenchEngineCliTest::contextSweepOnTheCpu() {
    const std::string path = (std::filesystem::path(FOLIO_TEST_DATA) / "deepseek2_tiny/model.gguf").string();
    const QStringList arguments{"bench", "engine", "--model", QString::fromStdString(path), "--prompt-tokens", "8",
                                "--gen-tokens", "2", "--threads", "1", "--context-tokens", "0", "--prefill-tokens",
                                "16,32", "--decode-contexts", "8,100"};
    const Run run = run_folio(arguments + QStringList{"--json"});
    QVERIFY2(run.exit_code == 0, qPrintable(run.err));
    const QJsonObject o = QJsonDocument::fromJson(run.out.toUtf8()).object();
    QCOMPARE(o["context_bytes_per_token"].toDouble(), 3.0 * (64 + 32) * 2);
    const QJsonArray prefill = o["prefill"].toArray();
    QCOMPARE(prefill.size(), 2);
    QCOMPARE(prefill[1].toObject()["prompt_tokens"].toInt(), 32);
    QVERIFY(prefill[1].toObject()["tokens_per_second"].toDouble() > 0);
    const QJsonArray decode = o["decode"].toArray();
    QCOMPARE(decode.size(), 2);
    QCOMPARE(decode[1].toObject()["context_tokens"].toInt(), 100);
    QCOMPARE(decode[0].toObject()["slowdown"].toDouble(), 1.0);
    QVERIFY(decode[1].toObject()["bandwidth_fraction"].toDouble() > 0);
    for (const char* key : {"prefill_expert_max_load", "decode_expert_max_load"})
        QVERIFY2(o[key].toDouble() >= 1, key);

    const Run human = run_folio(arguments);
    QVERIFY2(human.exit_code == 0, qPrintable(human.err));
    QVERIFY(human.out.contains("decode (cache rows past 64 zero, not computed)"));
    QVERIFY(human.out.contains("expert load      decode"));
}

// --kv-type q8_0: the cache it names, its bytes (34 per 32 elements, where
// f16 has 64) in the decode figures.
void BenchEngineCliTest::q8_0CacheCountsItsOwnBytes() {
    QJsonObject figures[2];
    const char* types[2] = {"f16", "q8_0"};
    for (int i = 0; i < 2; ++i) {
        const Run run = run_folio({"bench", "engine", "--model", QString::fromStdString(kTinyModel), "--prompt-tokens",
                                   "8", "--gen-tokens", "2", "--threads", "1", "--context-tokens", "0", "--kv-type",
                                   types[i], "--json"});
        QVERIFY2(run.exit_code == 0, qPrintable(run.err));
        figures[i] = QJsonDocument::fromJson(run.out.toUtf8()).object();
        QCOMPARE(figures[i]["kv_type"].toString(), QString(types[i]));
        QVERIFY(figures[i]["decode_tokens_per_second"].toDouble() > 0);
    }
    QCOMPARE(figures[1]["decode_kv_bytes_per_token"].toDouble(), figures[0]["decode_kv_bytes_per_token"].toDouble() * 34 / 64);
    QCOMPARE(figures[1]["decode_weight_bytes_per_token"].toDouble(), figures[0]["decode_weight_bytes_per_token"].toDouble());
}

void BenchEngineCliTest::humanOutputOneLinePerFigure() {
    const Run run = run_folio({"bench", "engine", "--model", QString::fromStdString(kTinyModel), "--prompt-tokens", "8",
                               "--gen-tokens", "2", "--threads", "1", "--context-tokens", "0"});
    QVERIFY2(run.exit_code == 0, qPrintable(run.err));
    for (const char* start : {"memory read", "prefill ", "decode ", "decode bandwidth", "sgemm"})
        QVERIFY2(run.out.contains("\n" + QString(start)), start);
}

void BenchEngineCliTest::badInputIsOneLine_data() {
    QTest::addColumn<QStringList>("arguments");
    const QString model = QString::fromStdString(kTinyModel);
    QTest::newRow("zero prompt") << QStringList{"bench", "engine", "--model", model, "--prompt-tokens", "0"};
    QTest::newRow("bad threads") << QStringList{"bench", "engine", "--model", model, "--threads", "two"};
    QTest::newRow("device name") << QStringList{"bench", "engine", "--model", model, "--device", "gpu"};
    QTest::newRow("prefill list") << QStringList{"bench", "engine", "--model", model, "--device", "cuda",
                                                 "--prefill-tokens", "2048,x"};
    QTest::newRow("empty context list") << QStringList{"bench", "engine", "--model", model, "--device", "cuda",
                                                       "--decode-contexts", ""};
    QTest::newRow("no file") << QStringList{"bench", "engine", "--model", "/nonexistent/model.gguf"};
    QTest::newRow("kv type") << QStringList{"bench", "engine", "--model", model, "--kv-type", "q4_0"};
    QTest::newRow("positional") << QStringList{"bench", "engine", model};
    QTest::newRow("cpu experts on the cpu") << QStringList{"bench", "engine", "--model", model, "--cpu-experts", "1"};
    QTest::newRow("cpu experts count") << QStringList{"bench", "engine", "--model", model, "--device", "cuda",
                                                      "--cpu-experts", "-1"};
}

void BenchEngineCliTest::badInputIsOneLine() {
    QFETCH(QStringList, arguments);
    const Run run = run_folio(arguments);
    QVERIFY(run.exit_code != 0);
    QVERIFY2(run.err.startsWith("folio: error: "), qPrintable(run.err));
    QCOMPARE(run.err.count('\n'), 1);
    QVERIFY(run.out.isEmpty());
}

QTEST_GUILESS_MAIN(BenchEngineCliTest)
#include "tst_bench_engine_cli.moc"
