#include <QTemporaryDir>
#include <QtTest>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <map>
#include <memory>
#include <numeric>
#include <optional>
#include <string>
#include <vector>

#include "engine/gguf.h"
#include "engine/model.h"
#include "engine/model_paths.h"
#include "engine/model_quantize.h"
#include "engine/perplexity.h"
#include "engine/thread_pool.h"
#include "engine/vocab.h"

using namespace folio::engine;

namespace {

const std::filesystem::path kTestData = FOLIO_TEST_DATA;
constexpr int kContext = 256;  // 6 windows of the held text: 762 scored tokens

std::string read_text(const std::filesystem::path& path) {
    std::ifstream in(path, std::ios::binary);
    return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

double window_nll(const std::vector<float>& logits, std::int64_t n_vocab, std::int64_t row, std::int32_t target) {
    const float* x = logits.data() + row * n_vocab;
    const double top = *std::max_element(x, x + n_vocab);
    double sum = 0;
    for (std::int64_t i = 0; i < n_vocab; ++i)
        sum += std::exp(x[i] - top);
    return std::log(sum) + top - x[target];
}

}  // namespace

class PerplexityTest : public QObject {
    Q_OBJECT

private:
    QTemporaryDir dir_;
    std::filesystem::path f32_path_;
    std::vector<std::int32_t> tokens_;
    std::optional<std::int32_t> bos_;
    PerplexityResult f32_;
    ThreadPool pool_;

    PerplexityResult measure(const std::filesystem::path& path) {
        const GgufFile file = GgufFile::open(path);
        std::unique_ptr<Model> model = load_model(file);
        return perplexity(*model, pool_, tokens_, {.n_ctx = kContext, .bos = bos_});
    }

private slots:
    // "The F32 file": the installed SmolLM2-135M Q4_1 dequantized to F32.
    void initTestCase() {
        const std::filesystem::path installed =
            std::filesystem::path(default_models_directory()) / "SmolLM2-135M-Instruct.Q4_1.gguf";
        if (!std::filesystem::exists(installed))
            return;  // the tests that need it skip
        QVERIFY(dir_.isValid());
        f32_path_ = dir_.filePath("smollm2-f32.gguf").toStdString();
        quantize_model(GgufFile::open(installed), quant_scheme("F32"), f32_path_, pool_);
        const GgufFile file = GgufFile::open(f32_path_);
        const Vocab vocab(file);
        tokens_ = vocab.encode(read_text(kTestData / "perplexity" / "apple-2021-mdna.txt"), false, false);
        if (vocab.add_bos())
            bos_ = vocab.bos_id();
        f32_ = measure(f32_path_);
    }

    void f32PerplexityOfProseIsSane() {
        if (f32_path_.empty())
            QSKIP("SmolLM2-135M-Instruct.Q4_1.gguf is not installed (installer/fetch-models.sh)");
        QVERIFY2(tokens_.size() >= 1500, qPrintable(QString::number(tokens_.size())));
        QCOMPARE(f32_.n_windows, static_cast<int>(tokens_.size()) / kContext);
        QCOMPARE(f32_.n_scored, f32_.n_windows * (kContext - kContext / 2 - 1));
        // SmolLM2-135M on a 10-K's prose: 9.42 measured; a broken model gives
        // hundreds or thousands.
        QVERIFY2(f32_.perplexity > 4 && f32_.perplexity < 20, qPrintable(QString::number(f32_.perplexity)));
        qInfo("F32 perplexity %.4f over %d tokens", f32_.perplexity, f32_.n_scored);
    }

    // Requantized from the F32 file, each type's perplexity on the same
    // tokens, relative to the F32 file's. SmolLM2-135M is small and its rows
    // are 576 wide (2.25 blocks of 256), so llama.cpp's rules send most
    // K-quant tensors to the fallback types (Q4_K → Q5_0, Q5_K → Q5_1, Q6_K
    // → Q8_0); only ffn_down (1536 wide) keeps the K-quant. Measured (ctx
    // 256, 762 tokens): Q8_0 +0.58%, Q6_K +0.14%, Q5_K_M +0.08%, Q5_K_S
    // +1.07%, Q5_K +2.49%, Q4_K_M +7.93%, Q4_K_S +7.99%, Q4_K +11.6% (its
    // head Q5_0 too). Q8_0, Q6_K and the mixes' Q4_K tensors are llama.cpp's
    // bytes, and its own Q4_K_M of this file scores +8.40% in llama.cpp
    // (tools/quant_llamacpp.py): a 4-bit 135M model is not within 1%, so
    // those are bounded at 15%. Q5_1 is fitted, not spanned min to max as
    // llama.cpp does (+4.74% for its Q5_K_M); that it lands this close is
    // partly the F32 file's origin: the weights lie on a 4-bit grid with a
    // min, which a fitted 5-bit grid can nearly reproduce.
    void quantizedPerplexityNearF32_data() {
        QTest::addColumn<QString>("scheme");
        QTest::addColumn<double>("bound");  // relative increase over F32
        QTest::newRow("Q8_0") << "Q8_0" << 0.01;
        QTest::newRow("Q6_K") << "Q6_K" << 0.01;
        QTest::newRow("Q5_K_M") << "Q5_K_M" << 0.01;
        QTest::newRow("Q5_K_S") << "Q5_K_S" << 0.02;
        QTest::newRow("Q5_K") << "Q5_K" << 0.04;
        QTest::newRow("Q4_K") << "Q4_K" << 0.15;
        QTest::newRow("Q4_K_S") << "Q4_K_S" << 0.15;
        QTest::newRow("Q4_K_M") << "Q4_K_M" << 0.15;
    }
    void quantizedPerplexityNearF32() {
        QFETCH(QString, scheme);
        QFETCH(double, bound);
        if (f32_path_.empty())
            QSKIP("SmolLM2-135M-Instruct.Q4_1.gguf is not installed (installer/fetch-models.sh)");
        const std::filesystem::path path = dir_.filePath(scheme + ".gguf").toStdString();
        quantize_model(GgufFile::open(f32_path_), quant_scheme(scheme.toStdString()), path, pool_);
        {
            const GgufFile written = GgufFile::open(path);
            QCOMPARE(written.get_u32("general.file_type"), quant_scheme(scheme.toStdString()).file_type);
            QCOMPARE(written.get_u32("general.quantization_version"), 2u);
            QCOMPARE(written.get_string("tokenizer.ggml.pre"), std::string_view("smollm"));
        }
        const PerplexityResult quantized = measure(path);
        std::filesystem::remove(path);
        const double increase = quantized.perplexity / f32_.perplexity - 1;
        qInfo("%s perplexity %.4f (F32 %.4f): %+.2f%%", qPrintable(scheme), quantized.perplexity, f32_.perplexity,
              100 * increase);
        QVERIFY2(increase < bound, qPrintable(QString("%1: %2% over F32").arg(scheme).arg(100 * increase)));
        results_[scheme] = quantized.perplexity;
    }

    // The mixes' extra bits (a Q8_0 head here; attn_v and ffn_down) pay for
    // themselves.
    void mixesBeatThePlainType() {
        if (!results_.contains("Q4_K") || !results_.contains("Q4_K_S") || !results_.contains("Q4_K_M"))
            QSKIP("needs the quantized runs");
        QVERIFY(results_["Q4_K_S"] < results_["Q4_K"]);
        QVERIFY(results_["Q4_K_M"] < results_["Q4_K"]);
    }

    // Windows, batches and the BOS rule, against a direct computation: each
    // window run in one batch, its second half scored.
    void windowsAreScoredAsLlamaCppScoresThem() {
        const GgufFile file = GgufFile::open(kTestData / "llama_tiny" / "model.gguf");
        std::unique_ptr<Model> model = load_model(file);
        const int n_vocab = model->config().n_vocab;
        std::vector<std::int32_t> tokens(53);  // 3 windows of 16 and a dropped tail of 5
        for (std::size_t i = 0; i < tokens.size(); ++i)
            tokens[i] = static_cast<std::int32_t>((i * 37 + 11) % static_cast<std::size_t>(n_vocab));
        const int n_ctx = 16;
        const PerplexityResult result = perplexity(*model, pool_, tokens, {.n_ctx = n_ctx, .n_batch = 5, .bos = 1});
        QCOMPARE(result.n_windows, 3);
        QCOMPARE(result.n_scored, 3 * 7);

        double nll = 0;
        for (int w = 0; w < 3; ++w) {
            std::vector<std::int32_t> window(tokens.begin() + w * n_ctx, tokens.begin() + (w + 1) * n_ctx);
            window[0] = 1;
            std::vector<std::int32_t> positions(n_ctx);
            std::iota(positions.begin(), positions.end(), 0);
            KvCache cache = model->make_kv_cache(n_ctx);
            const std::vector<float> logits = model->forward(pool_, window, positions, cache, LogitRows::All);
            for (int p = n_ctx / 2; p < n_ctx - 1; ++p)
                nll += window_nll(logits, n_vocab, p, window[static_cast<std::size_t>(p + 1)]);
        }
        QVERIFY(std::abs(result.mean_nll - nll / 21) < 1e-4);
        QVERIFY(std::abs(result.perplexity - std::exp(nll / 21)) < 1e-3 * result.perplexity);
    }

    void tooFewTokensIsAnError() {
        const GgufFile file = GgufFile::open(kTestData / "llama_tiny" / "model.gguf");
        std::unique_ptr<Model> model = load_model(file);
        const std::vector<std::int32_t> tokens(10, 1);
        QVERIFY_THROWS_EXCEPTION(ModelError, perplexity(*model, pool_, tokens, {.n_ctx = 16}));
        QVERIFY_THROWS_EXCEPTION(ModelError, perplexity(*model, pool_, tokens, {.n_ctx = 2}));
    }

private:
    std::map<QString, double> results_;
};

QTEST_GUILESS_MAIN(PerplexityTest)
#include "tst_perplexity.moc"
