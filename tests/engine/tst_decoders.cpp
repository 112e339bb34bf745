#include <QJsonArray>
#include <QJsonObject>
#include <QtTest>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <filesystem>
#include <optional>
#include <random>
#include <string>
#include <utility>
#include <vector>

#include "engine/blocks_cpu.h"
#include "engine/gguf.h"
#include "engine/lora.h"
#include "engine/model.h"
#include "engine/model_paths.h"
#include "engine/model_quantize.h"
#include "engine/perplexity.h"
#include "engine/quant.h"
#include "engine/thread_pool.h"
#include "tests/support/gguf_edit.h"
#include "tests/support/golden_json.h"
#include "tests/support/logit_golden.h"

// The decoders (llama, qwen2, qwen3, gemma3; qwen3moe, qwen2moe, olmoe, mixtral and deepseek2, mixtures of
// experts, deepseek2 with latent attention) against goldens that
// Hugging Face transformers made (tools/make_decoder_goldens.py).

using namespace folio::engine;
using namespace folio::test;

Q_DECLARE_METATYPE(folio::engine::GgmlType)

namespace {

const std::filesystem::path kTestData = FOLIO_TEST_DATA;
int common_prefix(const std::vector<std::int32_t>& a, const std::vector<std::int32_t>& b) {
    const auto mismatch = std::mismatch(a.begin(), a.end(), b.begin(), b.end());
    return static_cast<int>(mismatch.first - a.begin());
}

// Every tensor dequantized to F32: the same values, so the same golden
// applies, through the F32 matmul kernels.
GgufFile widened_to_f32(const GgufFile& file) {
    return edited(file, {.tensor = [](EditedTensor& tensor) {
                      tensor.type = GgmlType::F32;
                      return true;
                  }});
}

GgufFile without_tensor(const GgufFile& file, const std::string& name) {
    return edited(file, {.tensor = [&](EditedTensor& tensor) { return tensor.name != name; }});
}

// name, a vector tensor, one element short.
GgufFile with_tensor_one_short(const GgufFile& file, const std::string& name) {
    return edited(file, {.tensor = [&](EditedTensor& tensor) {
                      if (tensor.name == name) {
                          --tensor.ne[0];
                          tensor.values.pop_back();
                      }
                      return true;
                  }});
}

GgufFile tiny_model_file(const QString& architecture, const QString& weights = "f16") {
    const GgufFile f16 = GgufFile::open(kTestData / (architecture + "_tiny").toStdString() / "model.gguf");
    return weights == "f32" ? widened_to_f32(f16) : f16;
}

Golden tiny_golden(const QString& architecture) {
    return read_golden(kTestData / (architecture + "_tiny").toStdString() / "golden.json");
}

// What load_model says about a file, or "" when it loads.
std::string load_error(const GgufFile& file) {
    try {
        load_model(file);
        return "";
    } catch (const ModelError& error) {
        return error.what();
    }
}

bool contains(const std::string& text, const std::string& part) { return text.find(part) != std::string::npos; }

// The installed model file a golden was made from; nullopt when it is not
// installed.
std::optional<std::filesystem::path> installed_model(const Golden& golden) {
    const std::filesystem::path path =
        std::filesystem::path(default_models_directory()) / golden.model_file.toStdString();
    if (!std::filesystem::exists(path))
        return std::nullopt;
    return path;
}

void add_architecture_rows() {
    QTest::addColumn<QString>("architecture");
    for (const char* architecture : {"llama", "qwen2", "qwen3", "gemma3", "qwen3moe", "qwen2moe", "olmoe", "mixtral", "deepseek2",
                                     "deepseek3"})
        QTest::newRow(architecture) << QString(architecture);
}

// min_greedy_agreement: the greedy tokens that must match on the quantized
// file (installedModelMatchesTransformers).
void add_installed_model_rows() {
    QTest::addColumn<QString>("golden_folder");
    QTest::addColumn<int>("min_greedy_agreement");
    QTest::newRow("smollm2_q4_1") << "llama_smollm2" << 8;
    QTest::newRow("gemma3_270m_q4_k_m") << "gemma3_270m" << 32;
}

// Weight matrices of Gaussian rows quantized to `type`, cols wide, one for
// each entry of rows, their bytes kept in storage.
std::vector<WeightMatrix> random_matrices(GgmlType type, std::int64_t cols, std::span<const std::int64_t> rows,
                                          std::mt19937& random, std::vector<std::vector<std::uint8_t>>& storage) {
    std::normal_distribution<float> normal;
    const auto row_bytes = static_cast<std::int64_t>(quant_row_bytes(type, cols));
    std::vector<WeightMatrix> matrices;
    for (const std::int64_t n_rows : rows) {
        std::vector<std::uint8_t>& bytes = storage.emplace_back(static_cast<std::size_t>(n_rows * row_bytes));
        std::vector<float> row(static_cast<std::size_t>(cols));
        for (std::int64_t r = 0; r < n_rows; ++r) {
            for (float& value : row) value = normal(random);
            quantize_row(type, row.data(), bytes.data() + r * row_bytes, cols);
        }
        matrices.push_back({type, bytes.data(), n_rows, cols, row_bytes});
    }
    return matrices;
}

}  // namespace

class TestDecoders : public QObject {
    Q_OBJECT

private slots:
    void ropeStylesAgreeUnderThePermutation();
    void geluTanhGatesTheFeedForward();
    void projectSharesOutTheFeaturesOfSeveralWeights();
    void rowGroupsGiveTheRowsProducts_data();
    void rowGroupsGiveTheRowsProducts();
    void tinyMatchesTransformers_data();
    void tinyMatchesTransformers();
    void prefillMatchesTokenByTokenDecode_data();
    void prefillMatchesTokenByTokenDecode();
    void gemma3LocalLayersSeeOnlyTheirWindow();
    void finalLogitSoftCapping();
    void latentCacheHoldsOneRowPerPosition();
    void latentAttentionRunsOnAQ8Cache();
    void expertUsageCountsEveryChoice();
    void fusedGateUpExpertsGiveTheSameLogits();
    void quantizedMixturesOfExpertsKeepPerplexity_data();
    void quantizedMixturesOfExpertsKeepPerplexity();
    void rejectsBadBatches();
    void rejectsFilesItCannotRun();
    void installedModelMatchesTransformers_data();
    void installedModelMatchesTransformers();
    void installedModelWidenedToF32MatchesTransformers_data();
    void installedModelWidenedToF32MatchesTransformers();
};

// Why llama GGUF weights take the adjacent-pair rope: convert_hf_to_gguf moves
// Hugging Face's rotate-half pair (i, i + d/2) to rows (2i, 2i + 1). Rotating
// the permuted head pairwise must equal permuting the half-split rotation.
void TestDecoders::ropeStylesAgreeUnderThePermutation() {
    constexpr int kHeadDim = 16;
    constexpr int kHeads = 3;
    const std::vector<std::int32_t> positions = {0, 5, 1000};
    std::mt19937 rng(7);
    std::normal_distribution<float> normal;
    std::vector<float> halves(positions.size() * kHeads * kHeadDim);
    for (float& x : halves)
        x = normal(rng);
    auto permuted = [&](const std::vector<float>& x) {
        std::vector<float> out(x.size());
        for (std::size_t head = 0; head < x.size() / kHeadDim; ++head)
            for (int i = 0; i < kHeadDim / 2; ++i) {
                out[head * kHeadDim + 2 * i] = x[head * kHeadDim + i];
                out[head * kHeadDim + 2 * i + 1] = x[head * kHeadDim + i + kHeadDim / 2];
            }
        return out;
    };
    std::vector<float> adjacent = permuted(halves);

    ThreadPool pool(2);
    rope(pool, halves.data(), positions, kHeads, RopeParameters{kHeadDim, kHeadDim, 10000.f, RopeStyle::HalfSplit});
    rope(pool, adjacent.data(), positions, kHeads,
         RopeParameters{kHeadDim, kHeadDim, 10000.f, RopeStyle::AdjacentPairs});
    QCOMPARE(adjacent, permuted(halves));
}

// GeGLU with identity gate, up and down matrices: out = gelu_tanh(x) * x,
// against values of PyTorch's gelu(x, approximate="tanh").
void TestDecoders::geluTanhGatesTheFeedForward() {
    constexpr int kWidth = 4;
    std::vector<float> identity(kWidth * kWidth, 0.f);
    for (int i = 0; i < kWidth; ++i)
        identity[static_cast<std::size_t>(i * kWidth + i)] = 1.f;
    const WeightMatrix eye{GgmlType::F32, reinterpret_cast<const std::uint8_t*>(identity.data()), kWidth, kWidth,
                           kWidth * static_cast<std::int64_t>(sizeof(float))};
    const std::vector<float> x = {-3.f, -0.5f, 1.f, 2.5f};
    const std::vector<float> torch_gelu_tanh = {-0.0036374f, -0.1542860f, 0.8411920f, 2.4849157f};
    ThreadPool pool(1);
    MatmulInput input(x.data(), 1, kWidth);
    std::vector<float> out(kWidth);
    ffn_gated(pool, eye, eye, eye, GatedActivation::GeluTanh, input, out.data());
    for (std::size_t i = 0; i < x.size(); ++i)
        QVERIFY2(std::abs(out[i] - torch_gelu_tanh[i] * x[i]) < 1e-5f, qPrintable(QString::number(out[i])));
}

// Q, K and V in one pass over the pool: a task's range of features may
// end inside one weight and go on in the next; every feature must come out
// as its weight's own matmul gives it.
void TestDecoders::projectSharesOutTheFeaturesOfSeveralWeights() {
    constexpr std::int64_t kCols = 64;
    const std::int64_t weight_rows[] = {40, 24, 72};  // not multiples of the pool's chunks
    std::mt19937 random(7);
    std::normal_distribution<float> normal;
    std::vector<std::vector<std::uint8_t>> storage;
    const std::vector<WeightMatrix> weights = random_matrices(GgmlType::Q8_0, kCols, weight_rows, random, storage);
    ThreadPool pool(3);
    for (const std::int64_t n_tokens : {1, 5}) {
        std::vector<float> x(static_cast<std::size_t>(n_tokens * kCols));
        for (float& value : x) value = normal(random);
        std::vector<std::vector<float>> shared, alone;
        std::vector<Projection> outputs;
        for (const WeightMatrix& w : weights) {
            shared.emplace_back(static_cast<std::size_t>(n_tokens * w.rows), -1.f);
            alone.emplace_back(static_cast<std::size_t>(n_tokens * w.rows));
            outputs.push_back({&w, shared.back().data()});
        }
        MatmulInput input(x.data(), n_tokens, kCols);
        project(pool, outputs, LoraSet{}, input);
        for (std::size_t i = 0; i < weights.size(); ++i) {
            MatmulInput own_input(x.data(), n_tokens, kCols);
            matmul(pool, weights[i], own_input, alone[i].data());
            QCOMPARE(shared[i], alone[i]);
        }
    }
}

// Q4_K and the 32-element types' matrices regrouped for the CPU
// (group_weight_matrices) give the rows' products, in one pass of several
// weights (where one whose rows are not whole groups keeps its rows and
// shifts the next one's features off the groups' boundaries) and through the
// feed-forward, for a decoded token and a batch; the file's rows stay as
// they were, and so do matrices of types without groups.
void TestDecoders::rowGroupsGiveTheRowsProducts_data() {
    QTest::addColumn<GgmlType>("type");
    QTest::newRow("Q4_K") << GgmlType::Q4_K;
    QTest::newRow("Q8_0") << GgmlType::Q8_0;
    QTest::newRow("Q4_0") << GgmlType::Q4_0;
    QTest::newRow("Q4_1") << GgmlType::Q4_1;
    QTest::newRow("Q5_0") << GgmlType::Q5_0;
    QTest::newRow("Q5_1") << GgmlType::Q5_1;
    QTest::newRow("Q6_K") << GgmlType::Q6_K;
}

void TestDecoders::rowGroupsGiveTheRowsProducts() {
    QFETCH(GgmlType, type);
    constexpr std::int64_t kCols = 512;
    const std::int64_t weight_rows[] = {48, 40, 64, 512};
    std::mt19937 random(9);
    std::normal_distribution<float> normal;
    std::vector<std::vector<std::uint8_t>> storage;
    const std::vector<WeightMatrix> rows = random_matrices(type, kCols, weight_rows, random, storage);
    std::vector<WeightMatrix> grouped = rows;  // the last, (512, 512), is the feed-forward's gate, up and down below
    std::vector<WeightMatrix*> matrices;
    for (WeightMatrix& w : grouped) matrices.push_back(&w);
    ThreadPool pool(3);
    std::vector<WeightBytes> groups;
    group_weight_matrices(pool, matrices, groups);
    for (std::size_t i = 0; i < grouped.size(); ++i)
        QCOMPARE(grouped[i].row_groups != nullptr, row_groups_pay(type) && weight_rows[i] % 16 == 0);
    QCOMPARE(groups.size(), row_groups_pay(type) ? std::size_t{3} : std::size_t{0});
    if (std::string_view(cpu_kernel_isa()) == "avx512") QCOMPARE(row_groups_pay(type), type != GgmlType::Q6_K);
    const auto close = [](const std::vector<float>& got, const std::vector<float>& expected) {
        float top = 0.f, diff = 0.f;
        for (std::size_t i = 0; i < got.size(); ++i) {
            top = std::max(top, std::abs(expected[i]));
            diff = std::max(diff, std::abs(got[i] - expected[i]));
        }
        return diff <= 1e-5f * top;
    };
    for (const std::int64_t n_tokens : {1, 5}) {
        std::vector<float> x(static_cast<std::size_t>(n_tokens * kCols));
        for (float& value : x) value = normal(random);
        std::vector<std::vector<float>> from_rows(3), from_groups(3);
        std::vector<Projection> row_outputs, group_outputs;
        for (std::size_t i = 0; i < 3; ++i) {
            from_rows[i].resize(static_cast<std::size_t>(n_tokens * weight_rows[i]));
            from_groups[i].resize(from_rows[i].size());
            row_outputs.push_back({&rows[i], from_rows[i].data()});
            group_outputs.push_back({&grouped[i], from_groups[i].data()});
        }
        MatmulInput row_input(x.data(), n_tokens, kCols), group_input(x.data(), n_tokens, kCols);
        project(pool, row_outputs, LoraSet{}, row_input);
        project(pool, group_outputs, LoraSet{}, group_input);
        for (std::size_t i = 0; i < 3; ++i) QVERIFY2(close(from_groups[i], from_rows[i]), qPrintable(QString::number(i)));

        std::vector<float> ffn_rows(x.size()), ffn_groups(x.size());
        MatmulInput ffn_row_input(x.data(), n_tokens, kCols), ffn_group_input(x.data(), n_tokens, kCols);
        ffn_gated(pool, rows[3], rows[3], rows[3], GatedActivation::Silu, ffn_row_input, ffn_rows.data());
        ffn_gated(pool, grouped[3], grouped[3], grouped[3], GatedActivation::Silu, ffn_group_input, ffn_groups.data());
        QVERIFY(close(ffn_groups, ffn_rows));
    }
}

void TestDecoders::tinyMatchesTransformers_data() {
    QTest::addColumn<QString>("architecture");
    QTest::addColumn<QString>("weights");
    for (const char* architecture : {"llama", "qwen2", "qwen3", "gemma3", "qwen3moe", "qwen2moe", "olmoe", "mixtral", "deepseek2",
                                     "deepseek3"})
        for (const char* weights : {"f16", "f32"})
            QTest::addRow("%s_%s", architecture, weights) << QString(architecture) << QString(weights);
}

// The bar for float weights: at every prompt position the top-10 ids
// and their logits within 1e-3 of the logit range, and the same 32 greedy tokens.
void TestDecoders::tinyMatchesTransformers() {
    QFETCH(QString, architecture);
    QFETCH(QString, weights);
    const Golden golden = tiny_golden(architecture);
    QVERIFY(golden.prompt_ids.size() >= 64);
    std::unique_ptr<Model> model = load_model(tiny_model_file(architecture, weights));
    // llama.cpp writes Mixtral as a llama with experts, DeepSeek-V3 as a deepseek2.
    const QString file_architecture =
        architecture == "mixtral" ? "llama" : architecture == "deepseek3" ? "deepseek2" : architecture;
    QCOMPARE(QString::fromStdString(model->config().architecture), file_architecture);
    const int n_vocab = model->config().n_vocab;
    QCOMPARE(n_vocab, 256);

    ThreadPool pool(2);
    const std::vector<float> logits = prompt_logits(*model, pool, golden.prompt_ids);
    QCOMPARE(logits.size(), golden.prompt_ids.size() * static_cast<std::size_t>(n_vocab));

    constexpr double kTolerance = 1e-3;
    const Comparison comparison = compare(golden, logits, n_vocab, kTolerance);
    const int n_positions = static_cast<int>(golden.positions.size());
    qInfo("%s %s: max |logit - golden| / range = %.2e; top-10 exact at %d/%d positions, within tolerance at %d/%d",
          qPrintable(architecture), qPrintable(weights), comparison.max_relative_diff,
          comparison.positions_top10_exact, n_positions, comparison.positions_top10_within, n_positions);
    QVERIFY2(comparison.max_relative_diff <= kTolerance, qPrintable(QString::number(comparison.max_relative_diff)));
    QCOMPARE(comparison.positions_top10_within, n_positions);

    const std::vector<std::int32_t> continuation = greedy_continuation(
        *model, pool, golden.prompt_ids, static_cast<int>(golden.greedy_continuation.size()));
    QCOMPARE(continuation, golden.greedy_continuation);
}

void TestDecoders::prefillMatchesTokenByTokenDecode_data() { add_architecture_rows(); }

// The KV cache: a prompt in one batch, token by token, and in two uneven
// batches give the same logits at every position.
void TestDecoders::prefillMatchesTokenByTokenDecode() {
    QFETCH(QString, architecture);
    const Golden golden = tiny_golden(architecture);
    std::unique_ptr<Model> model = load_model(tiny_model_file(architecture));
    const int n_vocab = model->config().n_vocab;
    const std::vector<std::int32_t>& prompt = golden.prompt_ids;
    const std::vector<std::int32_t> positions = iota_positions(prompt.size());
    ThreadPool pool(2);

    KvCache batch_cache = model->make_kv_cache(128);
    const std::vector<float> batched = model->forward(pool, prompt, positions, batch_cache, LogitRows::All);

    KvCache step_cache = model->make_kv_cache(128);
    std::vector<float> stepped;
    for (std::size_t i = 0; i < prompt.size(); ++i) {
        const std::vector<float> row = model->forward(pool, std::span(prompt).subspan(i, 1),
                                                      std::span(positions).subspan(i, 1), step_cache, LogitRows::All);
        stepped.insert(stepped.end(), row.begin(), row.end());
    }

    KvCache split_cache = model->make_kv_cache(128);
    constexpr std::size_t kFirstBatch = 23;
    std::vector<float> split = model->forward(pool, std::span(prompt).first(kFirstBatch),
                                              std::span(positions).first(kFirstBatch), split_cache, LogitRows::All);
    const std::vector<float> rest = model->forward(pool, std::span(prompt).subspan(kFirstBatch),
                                                   std::span(positions).subspan(kFirstBatch), split_cache,
                                                   LogitRows::All);
    split.insert(split.end(), rest.begin(), rest.end());

    QCOMPARE(stepped.size(), batched.size());
    QCOMPARE(split.size(), batched.size());
    double max_relative_diff = 0;
    for (std::size_t p = 0; p < prompt.size(); ++p) {
        const double range = golden.positions[p].range;
        for (int v = 0; v < n_vocab; ++v) {
            const std::size_t i = p * static_cast<std::size_t>(n_vocab) + static_cast<std::size_t>(v);
            max_relative_diff = std::max({max_relative_diff, std::abs(stepped[i] - batched[i]) / range,
                                          std::abs(split[i] - batched[i]) / range});
        }
    }
    qInfo("%s: max |decode - prefill| / range = %.2e", qPrintable(architecture), max_relative_diff);
    // Not bit-identical: a batch's attention sums its query tiles through the
    // tiled matmul, decode through the one-row kernel, in another order.
    // DeepSeek's 64-token batch attends expanded (each head's keys and values
    // made from the cached latents and rounded to f16), its steps and the
    // split batches absorbed: two computations, each held to 1e-3 of the
    // golden by tinyMatchesTransformers, which differ by up to 9.5e-4.
    const bool two_paths = architecture.startsWith("deepseek");
    QVERIFY2(max_relative_diff <= (two_paths ? 1.5e-3 : 1e-4), qPrintable(QString::number(max_relative_diff)));

    // LogitRows::Last is the last row of LogitRows::All.
    KvCache last_cache = model->make_kv_cache(128);
    const std::vector<float> last = model->forward(pool, prompt, positions, last_cache, LogitRows::Last);
    QCOMPARE(last.size(), static_cast<std::size_t>(n_vocab));
    for (int v = 0; v < n_vocab; ++v)
        QCOMPARE(last[static_cast<std::size_t>(v)], batched[(prompt.size() - 1) * n_vocab + static_cast<std::size_t>(v)]);
}

// The tiny Gemma 3's local layers attend to 16 positions. With a window as
// long as the prompt every layer sees everything: the logits agree with the
// golden's until the window first drops a position (16), and not after.
void TestDecoders::gemma3LocalLayersSeeOnlyTheirWindow() {
    const Golden golden = tiny_golden("gemma3");
    const GgufFile windowless = edited(tiny_model_file("gemma3"),
                                       {.drop_key = "gemma3.attention.sliding_window",
                                        .add_metadata = [](GgufWriter& writer) {
                                            writer.add_u32("gemma3.attention.sliding_window", 4096);
                                        }});
    std::unique_ptr<Model> model = load_model(windowless);
    QCOMPARE(model->config().sliding_window, 4096);
    ThreadPool pool(2);
    const int n_vocab = model->config().n_vocab;
    const std::vector<float> logits = prompt_logits(*model, pool, golden.prompt_ids);
    auto max_relative_diff = [&](std::size_t first, std::size_t end) {
        Golden part = golden;
        part.positions.assign(golden.positions.begin() + static_cast<std::ptrdiff_t>(first),
                              golden.positions.begin() + static_cast<std::ptrdiff_t>(end));
        const std::vector<float> rows(logits.begin() + static_cast<std::ptrdiff_t>(first * n_vocab),
                                      logits.begin() + static_cast<std::ptrdiff_t>(end * n_vocab));
        return compare(part, rows, n_vocab, 1e-3).max_relative_diff;
    };
    constexpr std::size_t kWindow = 16;
    const double inside = max_relative_diff(0, kWindow);
    const double beyond = max_relative_diff(kWindow, golden.positions.size());
    qInfo("without the window: max |logit - golden| / range = %.2e before position 16, %.2e after", inside, beyond);
    QVERIFY(inside <= 1e-3);
    QVERIFY(beyond > 1e-2);
}

// final_logit_softcapping (Gemma 2's; Gemma 3 files may carry it):
// logits = cap * tanh(logits / cap).
void TestDecoders::finalLogitSoftCapping() {
    const Golden golden = tiny_golden("gemma3");
    constexpr float kCap = 3.f;
    std::unique_ptr<Model> plain = load_model(tiny_model_file("gemma3"));
    std::unique_ptr<Model> capped = load_model(edited(tiny_model_file("gemma3"), {.add_metadata = [](GgufWriter& w) {
                                                          w.add_f32("gemma3.final_logit_softcapping", kCap);
                                                      }}));
    QCOMPARE(capped->config().final_logit_softcapping, kCap);
    ThreadPool pool(2);
    const std::vector<float> plain_logits = prompt_logits(*plain, pool, golden.prompt_ids);
    const std::vector<float> capped_logits = prompt_logits(*capped, pool, golden.prompt_ids);
    QCOMPARE(capped_logits.size(), plain_logits.size());
    float max_capped = 0;
    for (std::size_t i = 0; i < plain_logits.size(); ++i) {
        QVERIFY(std::abs(capped_logits[i] - kCap * std::tanh(plain_logits[i] / kCap)) < 1e-5f);
        max_capped = std::max(max_capped, std::abs(capped_logits[i]));
    }
    QVERIFY(max_capped < kCap);
    QVERIFY(*std::max_element(plain_logits.begin(), plain_logits.end()) > kCap);
}

void TestDecoders::rejectsBadBatches() {
    std::unique_ptr<Model> model = load_model(tiny_model_file("llama"));
    ThreadPool pool(1);
    KvCache cache = model->make_kv_cache(8);
    const std::vector<std::int32_t> one_token = {1};
    QVERIFY_THROWS_EXCEPTION(ModelError, model->forward(pool, {}, {}, cache, LogitRows::Last));
    QVERIFY_THROWS_EXCEPTION(ModelError,
                             model->forward(pool, one_token, std::vector<std::int32_t>{8}, cache, LogitRows::Last));
    QVERIFY_THROWS_EXCEPTION(ModelError, model->forward(pool, std::vector<std::int32_t>{256},
                                                        std::vector<std::int32_t>{0}, cache, LogitRows::Last));
    QVERIFY_THROWS_EXCEPTION(ModelError,
                             model->forward(pool, one_token, std::vector<std::int32_t>{0, 1}, cache, LogitRows::Last));
    KvCache other_shape(1, 8, 1, 32, 32);
    QVERIFY_THROWS_EXCEPTION(ModelError, model->forward(pool, one_token, std::vector<std::int32_t>{0}, other_shape,
                                                        LogitRows::Last));
    // The model's widths, its heads kept apart in other numbers.
    const ModelConfig& c = model->config();
    const int k_width = c.n_kv_heads * c.head_dim, v_width = c.n_kv_heads * c.v_head_dim;
    KvCache one_head(c.n_layers, 8, 1, k_width, v_width);
    QVERIFY_THROWS_EXCEPTION(ModelError, model->forward(pool, one_token, std::vector<std::int32_t>{0}, one_head,
                                                        LogitRows::Last));
}

// DeepSeek's absorbed latent attention: the cache holds the normed latent
// and the rotary key of each position, kv_lora_rank + rope values, and no
// per-head keys or values (64 + 32 here, where expanded keys and values
// would take 4 heads x (64 + 24)).
void TestDecoders::latentCacheHoldsOneRowPerPosition() {
    for (const char* architecture : {"deepseek2", "deepseek3"}) {
        std::unique_ptr<Model> model = load_model(tiny_model_file(architecture));
        const KvCache cache = model->make_kv_cache(100);
        QCOMPARE(cache.k_width(), 64 + 32);
        QCOMPARE(cache.v_width(), 0);
        QCOMPARE(cache.bytes(), std::size_t{3} * 100 * (64 + 32) * sizeof(std::uint16_t));
    }
}

// A q8_0 latent cache scores with the quantized dot product and reads its
// values from the quantized keys: within 5% of the range of the golden (the
// bound tst_kv_cache holds SmolLM2's q8_0 cache to; 3.7e-2 measured), the
// same top token at nearly every position.
void TestDecoders::latentAttentionRunsOnAQ8Cache() {
    const Golden golden = tiny_golden("deepseek2");
    std::unique_ptr<Model> model = load_model(tiny_model_file("deepseek2"));
    ThreadPool pool(2);
    KvCache cache = model->make_kv_cache(static_cast<int>(golden.prompt_ids.size()), KvType::Q8_0);
    QCOMPARE(cache.type(), KvType::Q8_0);
    const std::vector<float> logits = model->forward(pool, golden.prompt_ids, iota_positions(golden.prompt_ids.size()),
                                                     cache, LogitRows::All);
    const Comparison comparison = compare(golden, logits, model->config().n_vocab, 5e-2);
    qInfo("deepseek2 with a q8_0 cache: max |logit - golden| / range = %.2e; top-1 at %d/%zu",
          comparison.max_relative_diff, comparison.positions_top1, golden.positions.size());
    QVERIFY2(comparison.max_relative_diff < 5e-2, qPrintable(QString::number(comparison.max_relative_diff)));
    QVERIFY(comparison.positions_top1 >= static_cast<int>(golden.positions.size()) - 2);
}

// Every token chooses expert_used_count experts in every layer with
// experts: the counts add up to that, layer by layer, and reset to zero.
void TestDecoders::expertUsageCountsEveryChoice() {
    struct Case {
        const char* architecture;
        int expert_layers;  // deepseek's first layer is dense
    };
    for (const Case& c : {Case{"qwen3moe", 2}, Case{"mixtral", 2}, Case{"deepseek3", 2}}) {
        std::unique_ptr<Model> model = load_model(tiny_model_file(c.architecture));
        ThreadPool pool(2);
        QVERIFY(!model->expert_usage().empty());
        QCOMPARE(static_cast<int>(model->expert_usage().layers.size()), c.expert_layers);
        QCOMPARE(model->expert_usage().n_expert, 8);
        const std::vector<std::int32_t> prompt = tiny_golden(c.architecture).prompt_ids;
        prompt_logits(*model, pool, prompt);
        const ExpertUsage& usage = model->expert_usage();
        QCOMPARE(usage.total(), static_cast<std::int64_t>(prompt.size()) * c.expert_layers * 2);
        for (std::size_t layer = 0; layer < usage.layers.size(); ++layer) {
            std::int64_t layer_total = 0;
            for (int e = 0; e < usage.n_expert; ++e)
                layer_total += usage.counts[layer * static_cast<std::size_t>(usage.n_expert) + static_cast<std::size_t>(e)];
            QCOMPARE(layer_total, static_cast<std::int64_t>(prompt.size()) * 2);
        }
        // 64 tokens over 8 experts: some imbalance, but not every token on one expert.
        QVERIFY2(usage.mean_max_load() >= 1 && usage.mean_max_load() < 4, qPrintable(QString::number(usage.mean_max_load())));
        model->reset_expert_usage();
        QCOMPARE(model->expert_usage().total(), std::int64_t{0});
    }
    QVERIFY(load_model(tiny_model_file("llama"))->expert_usage().empty());
}

// Newer converters may store each layer's expert gate and up matrices as one
// ffn_gate_up_exps (n_expert, 2 n_ff, n_embd), each expert's gate rows
// first: the same weights, so the same logits, bit for bit.
void TestDecoders::fusedGateUpExpertsGiveTheSameLogits() {
    for (const char* architecture : {"qwen3moe", "deepseek3"}) {
        const GgufFile separate = tiny_model_file(architecture);
        const GgufFile fused = edited(separate, {.tensor = [&](EditedTensor& tensor) {
            if (tensor.name.ends_with("ffn_up_exps.weight")) return false;
            if (!tensor.name.ends_with("ffn_gate_exps.weight")) return true;
            const std::string blk = tensor.name.substr(0, tensor.name.find("ffn_gate_exps"));
            const EditedTensor up = decoded(separate.tensor(blk + "ffn_up_exps.weight"));
            const auto expert_size = static_cast<std::size_t>(tensor.ne[0] * tensor.ne[1]);
            std::vector<float> values;
            for (std::size_t e = 0; e < static_cast<std::size_t>(tensor.ne[2]); ++e) {
                values.insert(values.end(), tensor.values.begin() + static_cast<std::ptrdiff_t>(e * expert_size),
                              tensor.values.begin() + static_cast<std::ptrdiff_t>((e + 1) * expert_size));
                values.insert(values.end(), up.values.begin() + static_cast<std::ptrdiff_t>(e * expert_size),
                              up.values.begin() + static_cast<std::ptrdiff_t>((e + 1) * expert_size));
            }
            tensor.name = blk + "ffn_gate_up_exps.weight";
            tensor.ne[1] *= 2;
            tensor.values = std::move(values);
            return true;
        }});
        QVERIFY(fused.find_tensor("blk.1.ffn_gate_up_exps.weight") != nullptr);
        QVERIFY(fused.find_tensor("blk.1.ffn_up_exps.weight") == nullptr);
        ThreadPool pool(2);
        const std::vector<std::int32_t> prompt = tiny_golden(architecture).prompt_ids;
        std::unique_ptr<Model> a = load_model(separate);
        std::unique_ptr<Model> b = load_model(fused);
        QVERIFY(prompt_logits(*a, pool, prompt) == prompt_logits(*b, pool, prompt));
    }
}

void TestDecoders::quantizedMixturesOfExpertsKeepPerplexity_data() {
    QTest::addColumn<QString>("architecture");
    for (const char* architecture : {"qwen3moe", "qwen2moe", "olmoe", "mixtral", "deepseek2", "deepseek3"})
        QTest::newRow(architecture) << QString(architecture);
}

// The bar for quantized mixtures of experts: perplexity within 1% of
// the F32 file's, here on 1,024 tokens the F32 model itself sampled (at
// temperature 1, so that the text is one it finds likely and the routers'
// choices matter). Q8_0 measured +0.12% (olmoe) to +1.10% (mixtral): like
// SmolLM2's Q8_0 in tst_perplexity (+1.00%), these tiny random models sit on
// the line, because the matmuls quantize the activations to 8 bits as well
// (as llama.cpp's do), so Q8_0 is held to 1.5% as there. The tiny models'
// rows are 32 to 128 wide, so Q4_K falls back to Q5_0 throughout, as
// llama.cpp's would; 5-bit weights move these random models, whose every
// weight counts and whose routers flip on small changes, by +1.1% (qwen2moe)
// to +19% (deepseek3), so Q4_K is held to 35%, which a broken kernel would
// not meet.
void TestDecoders::quantizedMixturesOfExpertsKeepPerplexity() {
    QFETCH(QString, architecture);
    const GgufFile f32 = tiny_model_file(architecture, "f32");
    std::unique_ptr<Model> reference = load_model(f32);
    ThreadPool pool(2);
    const int n_vocab = reference->config().n_vocab;
    // Eight windows, each sampled from an empty cache as perplexity() then
    // scores it.
    constexpr int kWindow = 128, kWindows = 8;
    const std::vector<std::int32_t> first_tokens = tiny_golden(architecture).prompt_ids;
    std::vector<std::int32_t> tokens;
    std::mt19937 rng(11);
    for (int w = 0; w < kWindows; ++w) {
        KvCache cache = reference->make_kv_cache(kWindow);
        tokens.push_back(first_tokens[static_cast<std::size_t>(w)]);
        for (std::int32_t position = 0; position + 1 < kWindow; ++position) {
            const std::vector<float> logits = reference->forward(pool, std::span(&tokens.back(), 1),
                                                                 std::span(&position, 1), cache, LogitRows::Last);
            std::vector<double> weights(logits.begin(), logits.end());
            const double top = *std::max_element(weights.begin(), weights.end());
            for (double& weight : weights) weight = std::exp(weight - top);
            tokens.push_back(std::discrete_distribution<std::int32_t>(weights.begin(), weights.end())(rng));
        }
    }
    const PerplexityOptions options{.n_ctx = kWindow};
    const double f32_perplexity = perplexity(*reference, pool, tokens, options).perplexity;
    // Likelier than chance (256): the random models' distributions are wide,
    // 119 to 133 measured.
    QVERIFY2(f32_perplexity < 0.6 * n_vocab, qPrintable(QString::number(f32_perplexity)));

    QTemporaryDir dir;
    for (const auto& [scheme, bound] : {std::pair{"Q8_0", 0.015}, std::pair{"Q4_K", 0.35}}) {
        const std::filesystem::path path = dir.filePath(QString(scheme) + ".gguf").toStdString();
        quantize_model(f32, quant_scheme(scheme), path, pool);
        std::unique_ptr<Model> quantized = load_model(GgufFile::open(path));
        const double quantized_perplexity = perplexity(*quantized, pool, tokens, options).perplexity;
        const double increase = quantized_perplexity / f32_perplexity - 1;
        qInfo("%s %s: perplexity %.4f, F32 %.4f: %+.2f%%", qPrintable(architecture), scheme, quantized_perplexity,
              f32_perplexity, 100 * increase);
        QVERIFY2(std::abs(increase) < bound, qPrintable(QString("%1: %2%").arg(scheme).arg(100 * increase)));
    }
}

void TestDecoders::rejectsFilesItCannotRun() {
    GgufWriter unknown;
    unknown.add_string("general.architecture", "mamba");
    const std::string unknown_error = load_error(GgufFile::parse(unknown.to_bytes()));
    QVERIFY2(contains(unknown_error, "\"mamba\" is not supported (supported: llama, qwen2, qwen2moe, qwen3, qwen3moe, olmoe, gemma3, deepseek2, bert)"),
             unknown_error.c_str());

    // Each architecture's own tensors are required, and named when missing
    // or of the wrong shape.
    const std::vector<std::pair<QString, std::string>> missing = {
        {"llama", "blk.1.ffn_down.weight"},    {"qwen2", "blk.1.attn_k.bias"},
        {"qwen3", "blk.0.attn_q_norm.weight"}, {"gemma3", "blk.5.post_ffw_norm.weight"},
        {"gemma3", "output_norm.weight"},      {"qwen3moe", "blk.0.ffn_gate_inp.weight"},
        {"qwen3moe", "blk.1.ffn_down_exps.weight"}, {"qwen2moe", "blk.1.ffn_gate_inp_shexp.weight"},
        {"olmoe", "blk.0.attn_k_norm.weight"},  {"mixtral", "blk.1.ffn_up_exps.weight"},
        {"deepseek2", "blk.1.attn_kv_a_mqa.weight"}, {"deepseek2", "blk.2.attn_kv_b.weight"},
        {"deepseek2", "blk.0.ffn_down.weight"},  {"deepseek2", "blk.1.ffn_up_shexp.weight"},
        {"deepseek3", "blk.2.attn_q_a_norm.weight"}, {"deepseek3", "blk.1.attn_v_b.weight"},
    };
    for (const auto& [architecture, tensor] : missing) {
        const std::string error = load_error(without_tensor(tiny_model_file(architecture), tensor));
        QVERIFY2(contains(error, "tensor " + tensor + " is missing"), (tensor + ": " + error).c_str());
    }
    const std::vector<std::pair<QString, std::string>> misshapen = {
        {"qwen2", "blk.0.attn_v.bias"}, {"qwen3", "blk.1.attn_k_norm.weight"},
        {"gemma3", "blk.2.attn_q_norm.weight"}, {"gemma3", "blk.3.post_attention_norm.weight"},
        {"olmoe", "blk.1.attn_q_norm.weight"},  {"deepseek2", "blk.0.attn_kv_a_norm.weight"},
        {"deepseek3", "blk.2.exp_probs_b.bias"},
    };
    for (const auto& [architecture, tensor] : misshapen) {
        const std::string error = load_error(with_tensor_one_short(tiny_model_file(architecture), tensor));
        QVERIFY2(contains(error, "tensor " + tensor + " has shape"), (tensor + ": " + error).c_str());
    }

    // More experts chosen per token than the layer has.
    const std::string too_many = load_error(edited(tiny_model_file("qwen3moe"),
                                                   {.drop_key = "qwen3moe.expert_used_count",
                                                    .add_metadata = [](GgufWriter& writer) {
                                                        writer.add_u32("qwen3moe.expert_used_count", 9);
                                                    }}));
    QVERIFY2(contains(too_many, "qwen3moe.expert_used_count = 9 is out of range"), too_many.c_str());

    // DeepSeek's routing groups must divide the experts and hold the chosen ones.
    const std::string bad_groups = load_error(edited(tiny_model_file("deepseek3"),
                                                     {.drop_key = "deepseek2.expert_group_count",
                                                      .add_metadata = [](GgufWriter& writer) {
                                                          writer.add_u32("deepseek2.expert_group_count", 3);
                                                      }}));
    QVERIFY2(contains(bad_groups, "8 experts in 3 groups"), bad_groups.c_str());
    const std::string bad_gating = load_error(edited(tiny_model_file("deepseek3"),
                                                     {.drop_key = "deepseek2.expert_gating_func",
                                                      .add_metadata = [](GgufWriter& writer) {
                                                          writer.add_u32("deepseek2.expert_gating_func", 7);
                                                      }}));
    QVERIFY2(contains(bad_gating, "expert_gating_func = 7 is neither softmax (1) nor sigmoid (2)"), bad_gating.c_str());
}

void TestDecoders::installedModelMatchesTransformers_data() { add_installed_model_rows(); }

// An installed quantized model against transformers' f32 dequantization of
// the same file. Our matmul quantizes activations to Q8_0/Q8_1/Q8_K as
// llama.cpp does, which moves logits by up to 2.4% of their range on SmolLM2
// and 8% on Gemma 3 270M (around its turn markers, "<start_of_turn>user" and
// "<end_of_turn>\n<start_of_turn>model"; at most 1.6% on the text between),
// so the bar is looser than for float weights: the same argmax wherever the
// golden's best token leads the runner-up by more than 2% of the range, and
// the first 8 greedy tokens identical (all 32 for Gemma 3 270M, as the
// issue asks of it). The raw bar (top-1 at >= 95%
// of all positions) is printed, not enforced: SmolLM2's prompt has 5
// positions in 66 whose top two are within 0.2% of the range, which that
// noise flips either way.
void TestDecoders::installedModelMatchesTransformers() {
    QFETCH(QString, golden_folder);
    QFETCH(int, min_greedy_agreement);
    const Golden golden = read_golden(kTestData / golden_folder.toStdString() / "golden.json");
    const std::optional<std::filesystem::path> model_path = installed_model(golden);
    if (!model_path)
        QSKIP(qPrintable(golden.model_file + " is not in the models folder (installer/fetch-models.sh)"));
    QVERIFY(golden.prompt_ids.size() >= 64);

    std::unique_ptr<Model> model = load_model(GgufFile::open(*model_path));
    const int n_vocab = model->config().n_vocab;
    ThreadPool pool;
    const std::vector<float> logits = prompt_logits(*model, pool, golden.prompt_ids);

    constexpr double kDecisiveLead = 0.02;
    const Comparison comparison = compare(golden, logits, n_vocab, 1e-3);
    int decisive_positions = 0;
    int decisive_agreements = 0;
    for (std::size_t p = 0; p < golden.positions.size(); ++p) {
        const GoldenPosition& expected = golden.positions[p];
        if (expected.top_logits[0] - expected.top_logits[1] <= kDecisiveLead * expected.range)
            continue;
        ++decisive_positions;
        decisive_agreements += argmax(logits.data() + p * static_cast<std::size_t>(n_vocab), n_vocab) ==
                               expected.top_ids[0];
    }
    const int n_positions = static_cast<int>(golden.positions.size());
    const std::vector<std::int32_t> continuation = greedy_continuation(
        *model, pool, golden.prompt_ids, static_cast<int>(golden.greedy_continuation.size()));
    const int greedy_agreement = common_prefix(continuation, golden.greedy_continuation);
    qInfo("%s: max |logit - golden| / range = %.2e (position %d); top-1 at %d/%d positions (%d/%d where the lead "
          "> 2%% of the range), top-10 exact at %d/%d; greedy identical for %d/%zu tokens",
          qPrintable(golden.model_file), comparison.max_relative_diff, comparison.worst_position,
          comparison.positions_top1, n_positions,
          decisive_agreements, decisive_positions, comparison.positions_top10_exact, n_positions, greedy_agreement,
          golden.greedy_continuation.size());
    QCOMPARE(decisive_agreements, decisive_positions);
    QVERIFY2(greedy_agreement >= min_greedy_agreement,
             qPrintable(QString("greedy identical for %1 tokens").arg(greedy_agreement)));
}

void TestDecoders::installedModelWidenedToF32MatchesTransformers_data() { add_installed_model_rows(); }

// The same file with every tensor widened to F32 (the values transformers
// computes with), so that matmul reads f32 activations: what remains is the
// f16 KV cache and summation order, and the float-weight bar applies.
void TestDecoders::installedModelWidenedToF32MatchesTransformers() {
    QFETCH(QString, golden_folder);
    const Golden golden = read_golden(kTestData / golden_folder.toStdString() / "golden.json");
    const std::optional<std::filesystem::path> model_path = installed_model(golden);
    if (!model_path)
        QSKIP(qPrintable(golden.model_file + " is not in the models folder (installer/fetch-models.sh)"));

    std::unique_ptr<Model> model = load_model(widened_to_f32(GgufFile::open(*model_path)));
    const int n_vocab = model->config().n_vocab;
    ThreadPool pool;
    const std::vector<float> logits = prompt_logits(*model, pool, golden.prompt_ids);

    constexpr double kTolerance = 1e-3;
    const Comparison comparison = compare(golden, logits, n_vocab, kTolerance);
    const int n_positions = static_cast<int>(golden.positions.size());
    const std::vector<std::int32_t> continuation = greedy_continuation(
        *model, pool, golden.prompt_ids, static_cast<int>(golden.greedy_continuation.size()));
    qInfo("%s widened to F32: max |logit - golden| / range = %.2e; top-1 at %d/%d, top-10 within tolerance "
          "at %d/%d; greedy identical for %d/%zu tokens",
          qPrintable(golden.model_file), comparison.max_relative_diff, comparison.positions_top1, n_positions,
          comparison.positions_top10_within, n_positions, common_prefix(continuation, golden.greedy_continuation),
          golden.greedy_continuation.size());
    QVERIFY2(comparison.max_relative_diff <= kTolerance, qPrintable(QString::number(comparison.max_relative_diff)));
    QCOMPARE(comparison.positions_top10_within, n_positions);
    QCOMPARE(continuation, golden.greedy_continuation);
}

QTEST_GUILESS_MAIN(TestDecoders)
#include "tst_decoders.moc"
