// The CUDA backend against the CPU backend and against the transformers
// goldens. Skips as a whole where no GPU answers (or Folio was built without
// the backend); CTest then reports it skipped.

#include <QtTest>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "engine/blocks_cpu.h"
#include "engine/decoder_ops.h"
#include "engine/device.h"
#include "engine/embedder.h"
#include "engine/gguf.h"
#include "engine/lora.h"
#include "engine/model.h"
#include "engine/quant.h"
#include "engine/reranker.h"
#include "engine/rope_scaling.h"
#include "engine/thread_pool.h"
#include "tests/support/gguf_edit.h"
#include "tests/support/golden_json.h"
#include "tests/support/logit_golden.h"
#include "tests/support/lora_golden.h"

#ifdef FOLIO_USE_CUDA
#include "engine/cuda/kernels.h"
#endif

using namespace folio::engine;
using namespace folio::test;

namespace {

const std::filesystem::path kTestData = FOLIO_TEST_DATA;

GgufFile tiny_model_file(const std::string& folder) {
    return GgufFile::open(kTestData / folder / "model.gguf");
}

// The file with every matrix (not the norms) re-encoded as `type`.
GgufFile with_matrices_as(const GgufFile& file, GgmlType type) {
    return edited(file, {.tensor = [&](EditedTensor& tensor) {
                      if (tensor.ne.size() == 2) tensor.type = type;
                      return true;
                  }});
}

std::unique_ptr<Model> gpu_model(const GgufFile& file, const GpuPlacement& placement = {}) {
    std::unique_ptr<Model> model = load_model(file);
    model->use_gpu(0, placement);
    return model;
}

// max over positions of max |a - b| / (that position's logit range in b).
double max_relative_diff(const std::vector<float>& a, const std::vector<float>& b, int n_vocab) {
    double worst = 0;
    for (std::size_t p = 0; p < b.size() / static_cast<std::size_t>(n_vocab); ++p) {
        const float* row_a = a.data() + p * static_cast<std::size_t>(n_vocab);
        const float* row_b = b.data() + p * static_cast<std::size_t>(n_vocab);
        const auto [low, high] = std::minmax_element(row_b, row_b + n_vocab);
        for (int v = 0; v < n_vocab; ++v)
            worst = std::max(worst, std::abs(static_cast<double>(row_a[v]) - row_b[v]) / (*high - *low));
    }
    return worst;
}

std::vector<std::int32_t> random_tokens(std::size_t n, int n_vocab, unsigned seed) {
    std::mt19937 rng(seed);
    std::uniform_int_distribution<std::int32_t> token(0, n_vocab - 1);
    std::vector<std::int32_t> tokens(n);
    for (std::int32_t& t : tokens) t = token(rng);
    return tokens;
}

// Largest |gpu - cpu| / range of the logits of two copies of a model: the
// first n_prompt tokens prefilled (every position's logits; the CPU's in
// batches of cpu_batch tokens when given), then the rest decoded one at a
// time, each on a cache of all the tokens' positions and of cache_type.
struct CpuGpuDiff {
    double prefill = 0;
    double decode = 0;
};
CpuGpuDiff prefill_then_decode(Model& cpu, Model& gpu, const std::vector<std::int32_t>& tokens, std::size_t n_prompt,
                               KvType cache_type = KvType::F16, std::size_t cpu_batch = 0) {
    const int n_vocab = cpu.config().n_vocab;
    const std::vector<std::int32_t> positions = iota_positions(tokens.size());
    ThreadPool pool(2);
    KvCache cpu_cache = cpu.make_kv_cache(static_cast<int>(tokens.size()), cache_type);
    KvCache gpu_cache = gpu.make_kv_cache(static_cast<int>(tokens.size()), cache_type);
    const auto prompt = std::span(tokens).first(n_prompt);
    const auto prompt_positions = std::span(positions).first(n_prompt);
    std::vector<float> cpu_logits;
    const std::size_t batch = cpu_batch > 0 ? cpu_batch : n_prompt;
    for (std::size_t first = 0; first < n_prompt; first += batch) {
        const std::size_t n = std::min(batch, n_prompt - first);
        const std::vector<float> logits =
            cpu.forward(pool, prompt.subspan(first, n), prompt_positions.subspan(first, n), cpu_cache, LogitRows::All);
        cpu_logits.insert(cpu_logits.end(), logits.begin(), logits.end());
    }
    CpuGpuDiff diff;
    diff.prefill = max_relative_diff(gpu.forward(pool, prompt, prompt_positions, gpu_cache, LogitRows::All),
                                     cpu_logits, n_vocab);
    for (std::size_t i = n_prompt; i < tokens.size(); ++i) {
        const auto token = std::span(tokens).subspan(i, 1);
        const auto position = std::span(positions).subspan(i, 1);
        diff.decode = std::max(diff.decode, max_relative_diff(gpu.forward(pool, token, position, gpu_cache, LogitRows::Last),
                                                              cpu.forward(pool, token, position, cpu_cache, LogitRows::Last),
                                                              n_vocab));
    }
    return diff;
}

double cosine(const std::vector<float>& a, const std::vector<float>& b) {
    double ab = 0, aa = 0, bb = 0;
    for (std::size_t i = 0; i < a.size(); ++i) {
        ab += static_cast<double>(a[i]) * b[i];
        aa += static_cast<double>(a[i]) * a[i];
        bb += static_cast<double>(b[i]) * b[i];
    }
    return ab / std::sqrt(aa * bb);
}

template <class F>
QString error_of(F&& f) {
    try {
        f();
        return {};
    } catch (const std::exception& error) {
        return QString::fromStdString(error.what());
    }
}

}  // namespace

class TestCuda : public QObject {
    Q_OBJECT

private slots:
    void initTestCase() {
        const GpuReport report = detect_gpus();
        if (report.gpus.empty()) QSKIP(qPrintable("no GPU here: " + QString::fromStdString(report.note)));
        qInfo("GPU 0: %s (compute %d.%d)", report.gpus[0].name.c_str(), report.gpus[0].compute_major,
              report.gpus[0].compute_minor);
    }

#ifdef FOLIO_USE_CUDA
    void matmulMatchesDequantizedReference_data();
    void matmulMatchesDequantizedReference();
    void rmsNormMatchesCpu_data();
    void rmsNormMatchesCpu();
    void ropeMatchesCpu_data();
    void ropeMatchesCpu();
    void storeKvMatchesCpuBytes_data();
    void storeKvMatchesCpuBytes();
    void attentionMatchesCpu_data();
    void attentionMatchesCpu();
    void latentAttentionMatchesCpu_data();
    void latentAttentionMatchesCpu();
    void elementwiseOpsMatchCpu();
    void layerNormAndGeluMatchCpu();
    void attentionWithinSequencesMatchesCpu_data();
    void attentionWithinSequencesMatchesCpu();
    void expertOpsMatchCpu();
#endif
    void tinyMatchesTransformers_data();
    void tinyMatchesTransformers();
    void ropeScalingMatchesTransformers_data();
    void ropeScalingMatchesTransformers();
    void longPromptMatchesCpu_data();
    void longPromptMatchesCpu();
    void recordedDecodeStepsFollowMovedBuffers();
    void quantizedModelMatchesCpu_data();
    void quantizedModelMatchesCpu();
    void loraMatchesPeft_data();
    void loraMatchesPeft();
    void expertAdapterMatchesPeft_data();
    void expertAdapterMatchesPeft();
    void decodeStepsWithAndWithoutAdaptersMatchCpu();
    void expertsMatchCpu_data();
    void expertsMatchCpu();
    void bertMatchesSentenceTransformers();
    void crossEncoderMatchesTransformers();
    void embeddingBatchMatchesCpu();
    void refusesWhatItCannotRun();
};

#ifdef FOLIO_USE_CUDA

void TestCuda::matmulMatchesDequantizedReference_data() {
    QTest::addColumn<int>("type");
    QTest::addColumn<int>("n");
    for (const GgmlType type : {GgmlType::F32, GgmlType::F16, GgmlType::BF16, GgmlType::Q4_0, GgmlType::Q4_1,
                                GgmlType::Q5_0, GgmlType::Q5_1, GgmlType::Q8_0, GgmlType::Q4_K, GgmlType::Q5_K,
                                GgmlType::Q6_K})
        for (const int n : {1, 3, 8, 19})  // the vector kernel's groups, and the GEMM
            QTest::addRow("%s_x%d", std::string(ggml_type_name(type)).c_str(), n) << static_cast<int>(type) << n;
}

// Each weight type through both paths against the CPU's dequantization and a
// double-precision dot product; the embedding gather returns the same rows.
void TestCuda::matmulMatchesDequantizedReference() {
    QFETCH(int, type);
    QFETCH(int, n);
    const auto weight_type = static_cast<GgmlType>(type);
    constexpr std::int64_t kRows = 70, kCols = 512;  // 70: a partial block of rows
    std::mt19937 rng(7);
    std::normal_distribution<float> normal(0.f, 1.f);
    const std::size_t row_bytes = quant_row_bytes(weight_type, kCols);
    std::vector<std::uint8_t> weights(row_bytes * kRows);
    std::vector<float> dequantized(static_cast<std::size_t>(kRows * kCols));
    std::vector<float> source(kCols);
    for (std::int64_t r = 0; r < kRows; ++r) {
        for (float& value : source) value = normal(rng);
        quantize_row(weight_type, source.data(), weights.data() + r * row_bytes, kCols);
        dequantize_row(weight_type, weights.data() + r * row_bytes, dequantized.data() + r * kCols, kCols);
    }
    std::vector<float> x(static_cast<std::size_t>(n * kCols));
    for (float& value : x) value = normal(rng);

    cuda::Stream stream;
    cuda::DeviceMemory device_weights(weights.size()), device_x(x.size() * sizeof(float)),
        device_out(static_cast<std::size_t>(n * kRows) * sizeof(float));
    stream.copy_to_device(device_weights.get(), weights.data(), weights.size());
    stream.copy_to_device(device_x.get(), x.data(), x.size() * sizeof(float));
    const cuda::DeviceMatrix matrix{static_cast<std::uint32_t>(type), device_weights.get(), kRows, kCols,
                                    static_cast<std::int64_t>(row_bytes)};
    cuda::matmul(stream, matrix, static_cast<const float*>(device_x.get()), n, static_cast<float*>(device_out.get()));
    std::vector<float> out(static_cast<std::size_t>(n * kRows));
    stream.copy_to_host(out.data(), device_out.get(), out.size() * sizeof(float));

    // The vector kernel multiplies quantized weights with the activations
    // quantized to int8 in blocks of 32 (as the CPU's Q8_0, but for the
    // scale's rounding to f16), float weights with f32 activations; the GEMM
    // rounds both operands to f16.
    const bool int8_activations = n <= 8 && weight_type != GgmlType::F32 && weight_type != GgmlType::F16 &&
                                  weight_type != GgmlType::BF16;
    std::vector<float> x_seen = x;
    if (int8_activations) {
        std::vector<std::uint8_t> q8(quant_row_bytes(GgmlType::Q8_0, kCols));
        for (int i = 0; i < n; ++i) {
            quantize_row(GgmlType::Q8_0, x.data() + i * kCols, q8.data(), kCols);
            dequantize_row(GgmlType::Q8_0, q8.data(), x_seen.data() + i * kCols, kCols);
        }
    }
    const double tolerance = n > 8 || int8_activations ? 2e-3 : 1e-5;
    double worst = 0;
    for (int i = 0; i < n; ++i)
        for (std::int64_t r = 0; r < kRows; ++r) {
            double exact = 0, magnitude = 0;
            for (std::int64_t c = 0; c < kCols; ++c) {
                const double product = static_cast<double>(dequantized[r * kCols + c]) * x_seen[i * kCols + c];
                exact += product;
                magnitude += std::abs(product);
            }
            worst = std::max(worst, std::abs(out[i * kRows + r] - exact) / magnitude);
        }
    QVERIFY2(worst <= tolerance, qPrintable(QString("relative error %1").arg(worst)));

    const std::vector<std::int32_t> ids = {5, 0, 69, 5};
    cuda::DeviceMemory device_ids(ids.size() * sizeof(std::int32_t)),
        device_rows(ids.size() * kCols * sizeof(float));
    stream.copy_to_device(device_ids.get(), ids.data(), ids.size() * sizeof(std::int32_t));
    cuda::embed_rows(stream, matrix, static_cast<const std::int32_t*>(device_ids.get()),
                     static_cast<std::int64_t>(ids.size()), static_cast<float*>(device_rows.get()));
    std::vector<float> rows(ids.size() * kCols);
    stream.copy_to_host(rows.data(), device_rows.get(), rows.size() * sizeof(float));
    for (std::size_t i = 0; i < ids.size(); ++i)
        for (std::int64_t c = 0; c < kCols; ++c) {
            const float expected = dequantized[ids[i] * kCols + c];
            QVERIFY2(std::abs(rows[i * kCols + c] - expected) <= 1e-6f * std::max(1.f, std::abs(expected)),
                     qPrintable(QString("row %1 column %2").arg(ids[i]).arg(c)));
        }
}

namespace {

// Host vectors in and out of device memory for the op tests.
template <class T>
struct DeviceArray {
    cuda::DeviceMemory memory;
    std::size_t size = 0;

    DeviceArray(cuda::Stream& stream, const std::vector<T>& host) : memory(host.size() * sizeof(T)), size(host.size()) {
        stream.copy_to_device(memory.get(), host.data(), host.size() * sizeof(T));
    }
    T* get() const { return static_cast<T*>(memory.get()); }
    std::vector<T> read(cuda::Stream& stream) const {
        std::vector<T> host(size);
        stream.copy_to_host(host.data(), memory.get(), size * sizeof(T));
        return host;
    }
};
using DeviceFloats = DeviceArray<float>;

std::vector<float> normal_floats(std::size_t n, unsigned seed, float scale = 1.f) {
    std::mt19937 rng(seed);
    std::normal_distribution<float> normal(0.f, scale);
    std::vector<float> values(n);
    for (float& value : values) value = normal(rng);
    return values;
}

// max |a - b| / max |b|.
double diff_relative_to_magnitude(const std::vector<float>& a, const std::vector<float>& b) {
    double diff = 0, magnitude = 0;
    for (std::size_t i = 0; i < b.size(); ++i) {
        diff = std::max(diff, std::abs(static_cast<double>(a[i]) - b[i]));
        magnitude = std::max(magnitude, std::abs(static_cast<double>(b[i])));
    }
    return diff / magnitude;
}

}  // namespace

void TestCuda::rmsNormMatchesCpu_data() {
    QTest::addColumn<int>("n");
    QTest::newRow("4096: registers") << 4096;  // a decode row: the one-pass path
    QTest::newRow("100: loop") << 100;         // not whole float4s: the two-pass loop
    QTest::newRow("12288: loop") << 12288;     // past what a block's registers hold
}

void TestCuda::rmsNormMatchesCpu() {
    QFETCH(int, n);
    constexpr int kRows = 5;
    const std::vector<float> x = normal_floats(static_cast<std::size_t>(kRows * n), 1, 3.f);
    const std::vector<float> weight = normal_floats(static_cast<std::size_t>(n), 2);
    std::vector<float> expected(x.size());
    ThreadPool pool(1);
    rms_norm(pool, x.data(), weight.data(), kRows, n, 1e-6f, expected.data());

    cuda::Stream stream;
    const DeviceFloats device_x(stream, x), device_weight(stream, weight), device_out(stream, std::vector<float>(x.size()));
    cuda::rms_norm(stream, device_x.get(), device_weight.get(), kRows, n, 1e-6f, device_out.get());
    const double diff = diff_relative_to_magnitude(device_out.read(stream), expected);
    QVERIFY2(diff <= 1e-5, qPrintable(QString::number(diff)));
}

void TestCuda::ropeMatchesCpu_data() {
    QTest::addColumn<bool>("half_split");
    QTest::addColumn<int>("n_rot");
    QTest::addColumn<bool>("yarn");
    QTest::newRow("adjacent pairs") << false << 64 << false;
    QTest::newRow("half split") << true << 64 << false;
    QTest::newRow("partial rotation") << true << 32 << false;
    QTest::newRow("yarn") << true << 64 << true;
}

// Positions up to 30,000: the angle is taken in double on both sides.
void TestCuda::ropeMatchesCpu() {
    QFETCH(bool, half_split);
    QFETCH(int, n_rot);
    QFETCH(bool, yarn);
    constexpr int kTokens = 7, kHeads = 3, kHeadDim = 64;
    RopeParameters params{kHeadDim, n_rot, 1000000.f, half_split ? RopeStyle::HalfSplit : RopeStyle::AdjacentPairs};
    if (yarn) params.scaling = RopeScaling{.type = RopeScalingType::Yarn, .factor = 4.f, .original_context = 4096};
    const std::vector<std::int32_t> positions = {0, 1, 17, 4095, 4096, 12345, 30000};
    const std::vector<float> x = normal_floats(kTokens * kHeads * kHeadDim, 3);
    std::vector<float> expected = x;
    ThreadPool pool(1);
    rope(pool, expected.data(), positions, kHeads, params);

    cuda::Stream stream;
    const DeviceFloats device_x(stream, x);
    const std::vector<double> inverse = rope_inverse_frequencies(n_rot, params.freq_base, params.scaling);
    cuda::DeviceMemory device_inverse(inverse.size() * sizeof(double)), device_positions(positions.size() * 4);
    stream.copy_to_device(device_inverse.get(), inverse.data(), inverse.size() * sizeof(double));
    stream.copy_to_device(device_positions.get(), positions.data(), positions.size() * 4);
    cuda::rope(stream, device_x.get(), static_cast<const std::int32_t*>(device_positions.get()), kTokens, kHeads,
               kHeadDim, n_rot, static_cast<const double*>(device_inverse.get()),
               static_cast<float>(rope_attention_factor(params.scaling)), half_split);
    const double diff = diff_relative_to_magnitude(device_x.read(stream), expected);
    QVERIFY2(diff <= 1e-5, qPrintable(QString::number(diff)));
}

void TestCuda::storeKvMatchesCpuBytes_data() {
    QTest::addColumn<bool>("q8_0");
    QTest::newRow("f16") << false;
    QTest::newRow("q8_0") << true;
}

// store_kv writes the bytes the CPU's KvCache::store writes (quantize_row's
// f16 elements or Q8_0 blocks) to rows out of order. Token 0's key holds
// the blocks where a different rounding would show: exact halves (amax 127,
// so d = 1: roundf takes 2.5 to 3 where round-to-even takes 2), zeros,
// values whose f16 and whose Q8_0 scale are f16 subnormals, and values past
// f16's range (inf as f16; a scale of about 2e4 as Q8_0); token 0's value
// starts with f16 ties (1 + 2^-11 rounds to 1, 1 + 3 * 2^-11 to 1 + 2^-9).
void TestCuda::storeKvMatchesCpuBytes() {
    QFETCH(bool, q8_0);
    const GgmlType type = q8_0 ? GgmlType::Q8_0 : GgmlType::F16;
    constexpr int kTokens = 6, kKWidth = 128, kVWidth = 64, kPositions = 9;
    const std::vector<std::int32_t> positions = {4, 0, 8, 2, 7, 5};
    std::vector<float> k = normal_floats(kTokens * kKWidth, 30), v = normal_floats(kTokens * kVWidth, 31, 40.f);
    for (int i = 0; i < 32; ++i) {
        k[static_cast<std::size_t>(i)] = i == 0 ? 127.f : (i % 2 ? -1.f : 1.f) * (static_cast<float>(i) + 0.5f);
        k[static_cast<std::size_t>(32 + i)] = 0.f;
        k[static_cast<std::size_t>(64 + i)] *= 1e-5f;
        k[static_cast<std::size_t>(96 + i)] *= 1e6f;
    }
    v[0] = 1.f + 0x1p-11f;
    v[1] = 1.f + 3 * 0x1p-11f;
    const std::size_t key_row_bytes = quant_row_bytes(type, kKWidth), value_row_bytes = quant_row_bytes(type, kVWidth);
    std::vector<std::uint8_t> expected_keys(kPositions * key_row_bytes), expected_values(kPositions * value_row_bytes);
    for (int t = 0; t < kTokens; ++t) {
        const auto row = static_cast<std::size_t>(positions[static_cast<std::size_t>(t)]);
        quantize_row(type, k.data() + t * kKWidth, expected_keys.data() + row * key_row_bytes, kKWidth);
        quantize_row(type, v.data() + t * kVWidth, expected_values.data() + row * value_row_bytes, kVWidth);
    }

    cuda::Stream stream;
    const DeviceFloats device_k(stream, k), device_v(stream, v);
    const DeviceArray<std::int32_t> device_positions(stream, positions);
    const DeviceArray<std::uint8_t> keys(stream, std::vector<std::uint8_t>(expected_keys.size())),
        values(stream, std::vector<std::uint8_t>(expected_values.size()));
    cuda::store_kv(stream, device_k.get(), device_v.get(), device_positions.get(), kTokens, kKWidth, kVWidth,
                   cuda::DeviceKvLayer{static_cast<std::uint32_t>(type), keys.get(), values.get()});
    const auto compare_rows = [](const char* what, const std::vector<std::uint8_t>& got,
                                 const std::vector<std::uint8_t>& expected, std::size_t row_bytes) {
        const auto byte = static_cast<std::size_t>(std::mismatch(got.begin(), got.end(), expected.begin()).first -
                                                   got.begin());
        if (byte < got.size())
            QFAIL(qPrintable(QString("%1 row %2, byte %3: %4, the CPU's %5")
                                 .arg(what).arg(byte / row_bytes).arg(byte % row_bytes)
                                 .arg(got[byte]).arg(expected[byte])));
    };
    compare_rows("key", keys.read(stream), expected_keys, key_row_bytes);
    compare_rows("value", values.read(stream), expected_values, value_row_bytes);
}

void TestCuda::attentionMatchesCpu_data() {
    QTest::addColumn<bool>("q8_0");
    QTest::addColumn<int>("head_dim");
    QTest::addColumn<int>("n_tokens");
    QTest::addColumn<int>("window");
    for (const bool q8_0 : {false, true}) {
        const char* type = q8_0 ? "q8_0" : "f16";
        QTest::addRow("%s, decode, split keys", type) << q8_0 << 64 << 1 << 0;
        QTest::addRow("%s, three tokens", type) << q8_0 << 64 << 3 << 0;
        QTest::addRow("%s, three tokens, window", type) << q8_0 << 64 << 3 << 50;
        QTest::addRow("%s, prefill tiles", type) << q8_0 << 64 << 40 << 0;
        QTest::addRow("%s, prefill tiles, window", type) << q8_0 << 64 << 40 << 50;
    }
    // Heads that start inside a block, which the CPU multiplies with an f32 query.
    QTest::newRow("q8_0, 80-wide heads, decode") << true << 80 << 1 << 0;
    QTest::newRow("q8_0, 80-wide heads, prefill tiles") << true << 80 << 40 << 0;
}

// The same keys and values stored by both backends, queries at the end of a
// 700-position history (decode splits it over 3 blocks), grouped-query
// heads. The CPU rounds queries to f16 for its f16 dot products, hence
// 2e-3 there; against q8_0 keys both take the same Q8_0 query (heads of
// whole blocks) or the same f32 one, and differ only in the order of sums
// and in __expf.
void TestCuda::attentionMatchesCpu() {
    QFETCH(bool, q8_0);
    QFETCH(int, head_dim);
    QFETCH(int, n_tokens);
    QFETCH(int, window);
    constexpr int kHeads = 8, kKvHeads = 2, kPositions = 700;
    const KvType type = q8_0 ? KvType::Q8_0 : KvType::F16;
    const float scale = 1.f / std::sqrt(static_cast<float>(head_dim));
    const AttentionShape shape{kHeads, kKvHeads, head_dim, head_dim, scale, true, window};
    const int width = kKvHeads * head_dim;
    const std::vector<float> keys = normal_floats(static_cast<std::size_t>(kPositions * width), 4);
    const std::vector<float> values = normal_floats(static_cast<std::size_t>(kPositions * width), 5);
    const std::vector<float> q = normal_floats(static_cast<std::size_t>(n_tokens * kHeads * head_dim), 6, 2.f);
    const std::vector<std::int32_t> all_positions = iota_positions(kPositions);
    const auto positions = std::span(all_positions).last(static_cast<std::size_t>(n_tokens));

    KvCache host(1, kPositions, kKvHeads, width, width, type);
    for (int p = 0; p < kPositions; ++p) host.store(0, p, keys.data() + p * width, values.data() + p * width);
    std::vector<float> expected(static_cast<std::size_t>(n_tokens * kHeads * head_dim));
    ThreadPool pool(2);
    attention(pool, q.data(), positions, host, 0, shape, expected.data());

    cuda::Stream stream;
    const DeviceFloats device_keys(stream, keys), device_values(stream, values), device_q(stream, q),
        device_out(stream, std::vector<float>(expected.size()));
    const DeviceArray<std::uint8_t> cache_keys(stream, std::vector<std::uint8_t>(kPositions * host.key_row_bytes())),
        cache_values(stream, std::vector<std::uint8_t>(kPositions * host.value_row_bytes()));
    const DeviceArray<std::int32_t> device_positions(stream, all_positions);
    const cuda::DeviceKvLayer cache{static_cast<std::uint32_t>(q8_0 ? GgmlType::Q8_0 : GgmlType::F16),
                                    cache_keys.get(), cache_values.get()};
    cuda::store_kv(stream, device_keys.get(), device_values.get(), device_positions.get(), kPositions, width, width,
                   cache);
    cuda::attention(stream, device_q.get(), device_positions.get() + (kPositions - n_tokens), n_tokens,
                    kPositions - 1, cache, cuda::AttentionParameters{kHeads, kKvHeads, head_dim, head_dim, scale, window},
                    device_out.get());
    const double diff = diff_relative_to_magnitude(device_out.read(stream), expected);
    qInfo("%s, %d-wide heads, %d queries, window %d: max |gpu - cpu| / max |cpu| = %.2e", kv_type_name(type),
          head_dim, n_tokens, window, diff);
    const double tolerance = q8_0 ? 1e-4 : 2e-3;
    QVERIFY2(diff <= tolerance, qPrintable(QString::number(diff)));
}

void TestCuda::latentAttentionMatchesCpu_data() {
    QTest::addColumn<bool>("q8_0");
    QTest::addColumn<int>("kv_lora_rank");
    QTest::addColumn<int>("rope");
    QTest::addColumn<int>("n_tokens");
    for (const bool q8_0 : {false, true}) {
        const char* type = q8_0 ? "q8_0" : "f16";
        // DeepSeek's rows of 512 + 64, and the tiny models' of 64 + 32.
        QTest::addRow("%s, 576-wide rows, decode, split keys", type) << q8_0 << 512 << 64 << 1;
        QTest::addRow("%s, 576-wide rows, three tokens", type) << q8_0 << 512 << 64 << 3;
        QTest::addRow("%s, 576-wide rows, prefill tiles", type) << q8_0 << 512 << 64 << 40;
        QTest::addRow("%s, 96-wide rows, decode, split keys", type) << q8_0 << 64 << 32 << 1;
        QTest::addRow("%s, 96-wide rows, prefill tiles", type) << q8_0 << 64 << 32 << 40;
    }
}

// Multi-head latent attention: every head's query against one keys-only
// cache whose rows' first kv_lora_rank elements are the values, as the CPU's
// attention() takes a cache of v_width 0; tolerances as attentionMatchesCpu's.
void TestCuda::latentAttentionMatchesCpu() {
    QFETCH(bool, q8_0);
    QFETCH(int, kv_lora_rank);
    QFETCH(int, rope);
    QFETCH(int, n_tokens);
    constexpr int kHeads = 16, kPositions = 700;
    const int row = kv_lora_rank + rope;
    const KvType type = q8_0 ? KvType::Q8_0 : KvType::F16;
    const float scale = 1.f / std::sqrt(192.f);  // DeepSeek's: over q·k at the per-head sizes
    const AttentionShape shape{kHeads, 1, row, kv_lora_rank, scale};
    const std::vector<float> rows = normal_floats(static_cast<std::size_t>(kPositions * row), 7);
    const std::vector<float> q = normal_floats(static_cast<std::size_t>(n_tokens * kHeads * row), 8, 2.f);
    const std::vector<std::int32_t> all_positions = iota_positions(kPositions);
    const auto positions = std::span(all_positions).last(static_cast<std::size_t>(n_tokens));

    KvCache host(1, kPositions, 1, row, 0, type);
    for (int p = 0; p < kPositions; ++p) host.store(0, p, rows.data() + p * row, nullptr);
    std::vector<float> expected(static_cast<std::size_t>(n_tokens * kHeads * kv_lora_rank));
    ThreadPool pool(2);
    attention(pool, q.data(), positions, host, 0, shape, expected.data());

    cuda::Stream stream;
    const DeviceFloats device_rows(stream, rows), device_q(stream, q),
        device_out(stream, std::vector<float>(expected.size()));
    const DeviceArray<std::uint8_t> cache_keys(stream, std::vector<std::uint8_t>(kPositions * host.key_row_bytes()));
    const DeviceArray<std::int32_t> device_positions(stream, all_positions);
    const cuda::DeviceKvLayer cache{static_cast<std::uint32_t>(q8_0 ? GgmlType::Q8_0 : GgmlType::F16),
                                    cache_keys.get(), nullptr};
    cuda::store_kv(stream, device_rows.get(), nullptr, device_positions.get(), kPositions, row, 0, cache);
    cuda::AttentionParameters parameters{kHeads, 1, row, kv_lora_rank, scale};
    parameters.values_in_keys = true;
    cuda::attention(stream, device_q.get(), device_positions.get() + (kPositions - n_tokens), n_tokens,
                    kPositions - 1, cache, parameters, device_out.get());
    const double diff = diff_relative_to_magnitude(device_out.read(stream), expected);
    qInfo("%s, %d-wide latent rows, %d queries: max |gpu - cpu| / max |cpu| = %.2e", kv_type_name(type), row,
          n_tokens, diff);
    const double tolerance = q8_0 ? 1e-4 : 2e-3;
    QVERIFY2(diff <= tolerance, qPrintable(QString::number(diff)));
}

// Residual adds, biases, scaling, soft-capping and the gated activations,
// against the CPU's ops (the activations against their formulas in double,
// which the CPU folds into its feed-forward).
void TestCuda::elementwiseOpsMatchCpu() {
    constexpr int kRows = 3, kWidth = 96;
    const std::vector<float> x = normal_floats(kRows * kWidth, 7, 4.f);
    const std::vector<float> y = normal_floats(kRows * kWidth, 8);
    const std::vector<float> bias = normal_floats(kWidth, 9);
    cuda::Stream stream;
    const auto check = [&](const char* op, const std::vector<float>& got, const std::vector<float>& expected,
                           double tolerance) {
        const double diff = diff_relative_to_magnitude(got, expected);
        QVERIFY2(diff <= tolerance, qPrintable(QString("%1: %2").arg(op).arg(diff)));
    };

    std::vector<float> expected = x;
    add_in_place(expected.data(), y.data(), kRows * kWidth);
    DeviceFloats device(stream, x);
    const DeviceFloats device_y(stream, y), device_bias(stream, bias);
    cuda::add_in_place(stream, device.get(), device_y.get(), kRows * kWidth);
    check("add", device.read(stream), expected, 0);

    add_bias(expected.data(), bias.data(), kRows, kWidth);
    cuda::add_bias(stream, device.get(), device_bias.get(), kRows, kWidth);
    check("add_bias", device.read(stream), expected, 0);

    scale_in_place(expected.data(), kRows * kWidth, 0.37f);
    cuda::scale_in_place(stream, device.get(), kRows * kWidth, 0.37f);
    check("scale", device.read(stream), expected, 0);

    soft_cap(expected.data(), kRows * kWidth, 2.5f);
    cuda::soft_cap(stream, device.get(), kRows * kWidth, 2.5f);
    check("soft_cap", device.read(stream), expected, 1e-6);

    for (const int activation : {0, 1}) {  // SiLU, GELU (tanh)
        std::vector<float> gated(x.size());
        for (std::size_t i = 0; i < x.size(); ++i) {
            const double g = x[i];
            const double activated = activation == 0 ? g / (1 + std::exp(-g))
                                                     : 0.5 * g * (1 + std::tanh(0.7978845608028654 * (g + 0.044715 * g * g * g)));
            gated[i] = static_cast<float>(activated * y[i]);
        }
        DeviceFloats device_gate(stream, x);
        cuda::gated_activation(stream, device_gate.get(), device_y.get(), kRows * kWidth, activation);
        check(activation == 0 ? "silu" : "gelu", device_gate.read(stream), gated, 1e-5);
    }
}

// An encoder's LayerNorm (rows far from zero, as residual sums are) and its
// erf GELU, which the CPU takes through a polynomial of error 1.5e-7.
void TestCuda::layerNormAndGeluMatchCpu() {
    constexpr int kRows = 7, kWidth = 384;
    std::vector<float> x = normal_floats(kRows * kWidth, 10, 2.f);
    for (float& value : x) value += 5.f;
    const std::vector<float> weight = normal_floats(kWidth, 11), bias = normal_floats(kWidth, 12);
    ThreadPool pool(2);
    std::vector<float> expected(x.size());
    layer_norm(pool, x.data(), weight.data(), bias.data(), kRows, kWidth, 1e-12f, expected.data());
    cuda::Stream stream;
    const DeviceFloats device_x(stream, x), device_weight(stream, weight), device_bias(stream, bias);
    cuda::layer_norm(stream, device_x.get(), device_weight.get(), device_bias.get(), kRows, kWidth, 1e-12f,
                     device_x.get());  // in place, as the encoder runs it
    double diff = diff_relative_to_magnitude(device_x.read(stream), expected);
    QVERIFY2(diff <= 1e-5, qPrintable(QString("layer_norm: %1").arg(diff)));

    const std::vector<float> activations = normal_floats(kRows * kWidth, 13, 3.f);
    std::vector<float> gelu = activations;
    gelu_erf(pool, gelu.data(), kRows * kWidth);
    const DeviceFloats device_activations(stream, activations);
    cuda::gelu_erf(stream, device_activations.get(), kRows * kWidth);
    diff = diff_relative_to_magnitude(device_activations.read(stream), gelu);
    QVERIFY2(diff <= 1e-6, qPrintable(QString("gelu_erf: %1").arg(diff)));
}

void TestCuda::attentionWithinSequencesMatchesCpu_data() {
    QTest::addColumn<std::vector<std::int32_t>>("lengths");
    QTest::newRow("15 tokens: decode kernel") << std::vector<std::int32_t>{5, 1, 9};
    QTest::newRow("34 tokens: prefill tiles across sequences") << std::vector<std::int32_t>{20, 1, 13};
    QTest::newRow("one token") << std::vector<std::int32_t>{1};
}

// Three packed sequences, each token attending to its own sequence only:
// the CPU ops' f16 cache per sequence against the kernels' key ranges over
// one f16 layer of the batch's rows. The CPU rounds queries to f16, hence 2e-3.
void TestCuda::attentionWithinSequencesMatchesCpu() {
    QFETCH(std::vector<std::int32_t>, lengths);
    constexpr int kHeads = 4, kHeadDim = 64, kWidth = kHeads * kHeadDim;
    const AttentionShape shape{kHeads, kHeads, kHeadDim, kHeadDim, 0.125f, false};
    std::vector<std::int32_t> positions, rows, ranges;
    std::int32_t first = 0;
    for (const std::int32_t length : lengths) {
        for (std::int32_t i = 0; i < length; ++i) {
            positions.push_back(i);
            rows.push_back(first + i);
            ranges.insert(ranges.end(), {first, first + length - 1});
        }
        first += length;
    }
    const auto n_tokens = static_cast<std::int64_t>(rows.size());
    const std::vector<float> k = normal_floats(static_cast<std::size_t>(n_tokens * kWidth), 14);
    const std::vector<float> v = normal_floats(static_cast<std::size_t>(n_tokens * kWidth), 15);
    const std::vector<float> q = normal_floats(static_cast<std::size_t>(n_tokens * kWidth), 16, 2.f);
    ThreadPool pool(2);
    CpuDecoderOps cpu(pool);
    cpu.begin_sequences(rows, positions, lengths);
    std::vector<float> expected(q.size());
    cpu.attend_within_sequences(k.data(), v.data(), q.data(), shape, expected.data());

    cuda::Stream stream;
    const DeviceFloats device_k(stream, k), device_v(stream, v), device_q(stream, q),
        device_out(stream, std::vector<float>(q.size()));
    const DeviceArray<std::int32_t> device_rows(stream, rows), device_ranges(stream, ranges);
    const DeviceArray<std::uint8_t> keys(stream, std::vector<std::uint8_t>(static_cast<std::size_t>(n_tokens * kWidth * 2))),
        values(stream, std::vector<std::uint8_t>(static_cast<std::size_t>(n_tokens * kWidth * 2)));
    const cuda::DeviceKvLayer layer{static_cast<std::uint32_t>(GgmlType::F16), keys.get(), values.get()};
    cuda::AttentionParameters parameters{kHeads, kHeads, kHeadDim, kHeadDim, shape.scale, 0};
    parameters.key_ranges = device_ranges.get();
    cuda::store_kv(stream, device_k.get(), device_v.get(), device_rows.get(), n_tokens, kWidth, kWidth, layer);
    cuda::attention(stream, device_q.get(), device_rows.get(), n_tokens,
                    *std::max_element(lengths.begin(), lengths.end()) - 1, layer, parameters, device_out.get());
    const double diff = diff_relative_to_magnitude(device_out.read(stream), expected);
    qInfo("%lld tokens in %zu sequences: max |gpu - cpu| / max |cpu| = %.2e", static_cast<long long>(n_tokens),
          lengths.size(), diff);
    QVERIFY2(diff <= 2e-3, qPrintable(QString::number(diff)));
}

#endif

// tests/data/bert_tiny's sentence-transformers embeddings, on the GPU: the
// CPU's bar, cosine 0.999 for every text.
void TestCuda::bertMatchesSentenceTransformers() {
    Embedder embedder = Embedder::open(kTestData / "bert_tiny/model.gguf");
    embedder.model().use_gpu(0);
    QVERIFY(embedder.model().on_gpu());
    std::vector<std::string> texts;
    std::vector<std::vector<float>> expected;
    for (const QJsonValue& value : read_json_object(kTestData / "bert_tiny/golden.json")["texts"].toArray()) {
        const QJsonObject object = value.toObject();
        texts.push_back(object["text"].toString().toStdString());
        std::vector<float> embedding;
        for (const QJsonValue& x : object["embedding"].toArray()) embedding.push_back(static_cast<float>(x.toDouble()));
        expected.push_back(std::move(embedding));
    }
    ThreadPool pool(2);
    const std::vector<Embedding> embeddings = embedder.embed(texts, pool);
    QCOMPARE(embeddings.size(), texts.size());
    double lowest = 1;
    for (std::size_t i = 0; i < texts.size(); ++i) lowest = std::min(lowest, cosine(embeddings[i].vector, expected[i]));
    qInfo("bert_tiny on the GPU: lowest cosine with sentence-transformers %.7f over %zu texts", lowest, texts.size());
    QVERIFY2(lowest >= 0.999, qPrintable(QString::number(lowest)));
}

// tests/data/bert_cross_tiny on the GPU, the encoder's rows pooled and
// classified on the host: within the CPU's bar, 1e-3 of the scores' range of
// the reference with f16 keys and values.
void TestCuda::crossEncoderMatchesTransformers() {
    Reranker reranker = Reranker::open(kTestData / "bert_cross_tiny/model.gguf");
    reranker.model().use_gpu(0);
    const QJsonArray pairs = read_json_object(kTestData / "bert_cross_tiny/golden.json")["pairs"].toArray();
    double low = INFINITY, high = -INFINITY;
    for (const QJsonValue& pair : pairs) {
        low = std::min(low, pair.toObject()["score_f16_cache"].toDouble());
        high = std::max(high, pair.toObject()["score_f16_cache"].toDouble());
    }
    ThreadPool pool(2);
    double largest = 0;
    for (const QJsonValue& value : pairs) {
        const QJsonObject pair = value.toObject();
        const std::vector<std::string> passage = {pair["passage"].toString().toStdString()};
        const std::vector<float> score = reranker.score(pair["query"].toString().toStdString(), passage, pool);
        largest = std::max(largest, std::abs(score.at(0) - pair["score_f16_cache"].toDouble()));
    }
    qInfo("bert_cross_tiny on the GPU: largest score difference %.2e (range %.3f)", largest, high - low);
    QVERIFY2(largest <= 1e-3 * (high - low), qPrintable(QString::number(largest)));
}

// Texts of 1 to 60 words packed into one batch, and one at a time: the GPU's
// vectors are the CPU's.
void TestCuda::embeddingBatchMatchesCpu() {
    const std::filesystem::path path = kTestData / "bert_tiny/model.gguf";
    Embedder cpu = Embedder::open(path);
    Embedder gpu = Embedder::open(path);
    gpu.model().use_gpu(0);
    std::vector<std::string> texts = {"", "a"};
    std::string words;
    for (int i = 0; i < 60; ++i) {
        words += "word" + std::to_string(i % 7) + " ";
        if (i % 13 == 0) texts.push_back(words);
    }
    ThreadPool pool(2);
    const std::vector<Embedding> expected = cpu.embed(texts, pool);
    const std::vector<Embedding> batched = gpu.embed(texts, pool);
    for (std::size_t i = 0; i < texts.size(); ++i) {
        const std::vector<Embedding> alone = gpu.embed(std::span(texts).subspan(i, 1), pool);
        for (const std::vector<float>* got : {&batched[i].vector, &alone[0].vector}) {
            const double similarity = cosine(*got, expected[i].vector);
            QVERIFY2(similarity >= 0.9999, qPrintable(QString("text %1: cosine %2").arg(i).arg(similarity)));
        }
    }
}

void TestCuda::tinyMatchesTransformers_data() {
    QTest::addColumn<QString>("architecture");
    for (const char* architecture :
         {"llama", "qwen2", "qwen3", "gemma3", "qwen2moe", "qwen3moe", "olmoe", "mixtral", "deepseek2", "deepseek3"})
        QTest::newRow(architecture) << QString(architecture);
}

// The CPU backend's bar (tst_decoders) but for the logits' tolerance: the
// prompt goes through cuBLAS with f16 operands (as llama.cpp's CUDA backend
// does), so activations are rounded to f16 where the CPU keeps them f32;
// that about doubles the distance to transformers' f32 logits (CPU 3-7e-4,
// GPU 5-11e-4). Top-10 ids and the greedy tokens are held as strictly.
constexpr double kPrefillTolerance = 2e-3;

// A q8_0 cache on both backends: an element that their slightly different
// activations put on either side of a rounding boundary lands a whole Q8_0
// step (amax / 127) apart, where an f16 cache moves by its rounding alone.
// Emulated on the CPU (the tiny qwen2 and gemma3 with weights perturbed by
// 3e-4 relative, which moves an f16 cache's logits by 1.3e-3 of the range
// over a 700-token prompt), a q8_0 cache's moved by up to 1.4e-2. Held to
// the bound tst_kv_cache holds q8_0 to against f16.
constexpr double kQ8_0CacheTolerance = 2.6e-2;

namespace {

// The GPU's bar against a golden: the prompt's logits at every position
// within kPrefillTolerance with the same top-10 ids, and the same greedy
// tokens, under loras.
void verify_against_golden(const QString& name, Model& model, const Golden& golden, const LoraSet& loras = {}) {
    ThreadPool pool(1);
    const Comparison comparison = compare(golden, prompt_logits(model, pool, golden.prompt_ids, loras),
                                          model.config().n_vocab, kPrefillTolerance);
    const int n_positions = static_cast<int>(golden.positions.size());
    qInfo("%s on the GPU: max |logit - golden| / range = %.2e; top-10 within tolerance at %d/%d positions",
          qPrintable(name), comparison.max_relative_diff, comparison.positions_top10_within, n_positions);
    QVERIFY2(comparison.max_relative_diff <= kPrefillTolerance,
             qPrintable(QString::number(comparison.max_relative_diff)));
    QCOMPARE(comparison.positions_top10_within, n_positions);
    QCOMPARE(greedy_continuation(model, pool, golden.prompt_ids, static_cast<int>(golden.greedy_continuation.size()),
                                 loras),
             golden.greedy_continuation);
}

}  // namespace

void TestCuda::tinyMatchesTransformers() {
    QFETCH(QString, architecture);
    const std::string folder = architecture.toStdString() + "_tiny";
    const Golden golden = read_golden(kTestData / folder / "golden.json");
    verify_against_golden(architecture, *gpu_model(tiny_model_file(folder)), golden);
}

void TestCuda::ropeScalingMatchesTransformers_data() {
    QTest::addColumn<QString>("scaling");
    for (const char* scaling : {"linear", "yarn", "llama3"})
        QTest::newRow(scaling) << QString(scaling);
}

// RoPE scaling (the angles and YaRN's attention factor) as tst_rope checks it on the CPU.
void TestCuda::ropeScalingMatchesTransformers() {
    QFETCH(QString, scaling);
    const std::string folder = "rope_" + scaling.toStdString();
    const Golden golden = read_golden(kTestData / folder / "golden.json");
    std::unique_ptr<Model> model = gpu_model(tiny_model_file(folder));
    ThreadPool pool(1);
    const Comparison comparison =
        compare(golden, prompt_logits(*model, pool, golden.prompt_ids), model->config().n_vocab, kPrefillTolerance);
    qInfo("rope %s on the GPU: max |logit - golden| / range = %.2e", qPrintable(scaling), comparison.max_relative_diff);
    QVERIFY2(comparison.max_relative_diff <= kPrefillTolerance,
             qPrintable(QString::number(comparison.max_relative_diff)));
    QCOMPARE(greedy_continuation(*model, pool, golden.prompt_ids, static_cast<int>(golden.greedy_continuation.size())),
             golden.greedy_continuation);
}

void TestCuda::longPromptMatchesCpu_data() {
    QTest::addColumn<QString>("architecture");
    QTest::addColumn<bool>("q8_0");
    // qwen2: grouped-query heads of 16, two to a Q8_0 block; gemma3:
    // sliding-window layers, heads of one block (the query through Q8_0);
    // deepseek2: latent attention, which the GPU attends absorbed.
    for (const char* architecture : {"qwen2", "gemma3", "deepseek2"}) {
        QTest::newRow(architecture) << QString(architecture) << false;
        QTest::addRow("%s, q8_0 cache", architecture) << QString(architecture) << true;
    }
}

// A prompt long enough that decode splits its attention over the keys
// (flash-decoding) and prefill takes the GEMM: prefill logits at every
// position, then tokens decoded one at a time, against the CPU backend.
void TestCuda::longPromptMatchesCpu() {
    QFETCH(QString, architecture);
    QFETCH(bool, q8_0);
    const GgufFile file = tiny_model_file(architecture.toStdString() + "_tiny");
    std::unique_ptr<Model> cpu = load_model(file);
    std::unique_ptr<Model> gpu = gpu_model(file);
    constexpr std::size_t kPrompt = 700, kDecoded = 6;
    // The CPU expands a long batch's latents per head (deepseek2), in sums
    // ordered otherwise than the absorbed ones and, with a q8_0 cache,
    // without rounding the query to Q8_0: against itself taking the prompt
    // 32 tokens at a time (absorbed), this prompt's logits move by 4.4e-2 of
    // their range at one position (a near-tied expert choice of the tiny
    // model going the other way), 1.3e-1 with a q8_0 cache. The GPU attends
    // absorbed, so its reference does too.
    const std::size_t cpu_batch = architecture == "deepseek2" ? 32 : 0;
    const CpuGpuDiff diff = prefill_then_decode(*cpu, *gpu, random_tokens(kPrompt + kDecoded, cpu->config().n_vocab, 3),
                                                kPrompt, q8_0 ? KvType::Q8_0 : KvType::F16, cpu_batch);
    qInfo("%s, %zu-token prompt, %s cache: max |gpu - cpu| / range = %.2e (prefill), %.2e (decode)",
          qPrintable(architecture), kPrompt, q8_0 ? "q8_0" : "f16", diff.prefill, diff.decode);
    const double tolerance = q8_0 ? kQ8_0CacheTolerance : 2e-3;
    QVERIFY2(diff.prefill <= tolerance, qPrintable(QString::number(diff.prefill)));
    QVERIFY2(diff.decode <= tolerance, qPrintable(QString::number(diff.decode)));
}

// Decode steps are recorded as a CUDA graph and replayed. A longer batch on
// another cache in between moves the activation buffers the recording
// points into; the next steps must notice, run eagerly and record again.
void TestCuda::recordedDecodeStepsFollowMovedBuffers() {
    const GgufFile file = tiny_model_file("qwen2_tiny");
    std::unique_ptr<Model> cpu = load_model(file);
    std::unique_ptr<Model> gpu = gpu_model(file);
    const int n_vocab = cpu->config().n_vocab;
    const std::vector<std::int32_t> tokens = random_tokens(40, n_vocab, 11);
    const std::vector<std::int32_t> positions = iota_positions(tokens.size());
    const std::vector<std::int32_t> long_prompt = random_tokens(400, n_vocab, 12);
    ThreadPool pool(2);
    KvCache cpu_cache = cpu->make_kv_cache(64), gpu_cache = gpu->make_kv_cache(64);
    constexpr std::size_t kPrompt = 20;
    cpu->forward(pool, std::span(tokens).first(kPrompt), std::span(positions).first(kPrompt), cpu_cache, LogitRows::Last);
    gpu->forward(pool, std::span(tokens).first(kPrompt), std::span(positions).first(kPrompt), gpu_cache, LogitRows::Last);
    double worst = 0;
    for (std::size_t i = kPrompt; i < tokens.size(); ++i) {
        if (i == kPrompt + 5) {  // after an eager, a recorded and three replayed steps
            KvCache other = gpu->make_kv_cache(static_cast<int>(long_prompt.size()));
            gpu->forward(pool, long_prompt, iota_positions(long_prompt.size()), other, LogitRows::All);
        }
        const auto token = std::span(tokens).subspan(i, 1);
        const auto position = std::span(positions).subspan(i, 1);
        worst = std::max(worst, max_relative_diff(gpu->forward(pool, token, position, gpu_cache, LogitRows::Last),
                                                  cpu->forward(pool, token, position, cpu_cache, LogitRows::Last),
                                                  n_vocab));
    }
    qInfo("20 decode steps around a moved buffer: max |gpu - cpu| / range = %.2e", worst);
    QVERIFY2(worst <= 2e-3, qPrintable(QString::number(worst)));
}

void TestCuda::quantizedModelMatchesCpu_data() {
    QTest::addColumn<int>("type");
    for (const GgmlType type : {GgmlType::Q4_0, GgmlType::Q4_1, GgmlType::Q5_0, GgmlType::Q5_1, GgmlType::Q8_0,
                                GgmlType::BF16})
        QTest::newRow(std::string(ggml_type_name(type)).c_str()) << static_cast<int>(type);
}

// The tiny llama with its matrices quantized: the GPU reads the same bytes
// as the CPU. Both are held to the same model with those weights widened
// to f32 (the exact dequantized values) run on the CPU: the GPU must come
// as close as the CPU backend does, which rounds activations to Q8 for its
// integer dot products.
void TestCuda::quantizedModelMatchesCpu() {
    QFETCH(int, type);
    const GgufFile file = with_matrices_as(tiny_model_file("llama_tiny"), static_cast<GgmlType>(type));
    std::unique_ptr<Model> exact = load_model(with_matrices_as(file, GgmlType::F32));
    std::unique_ptr<Model> cpu = load_model(file);
    std::unique_ptr<Model> gpu = gpu_model(file);
    const int n_vocab = cpu->config().n_vocab;
    ThreadPool pool(2);
    double cpu_error = 0, gpu_error = 0;
    for (const std::size_t length : {40, 5}) {  // the GEMM and the vector kernel
        const std::vector<std::int32_t> prompt = random_tokens(length, n_vocab, 5);
        const std::vector<float> reference = prompt_logits(*exact, pool, prompt);
        cpu_error = std::max(cpu_error, max_relative_diff(prompt_logits(*cpu, pool, prompt), reference, n_vocab));
        gpu_error = std::max(gpu_error, max_relative_diff(prompt_logits(*gpu, pool, prompt), reference, n_vocab));
    }
    qInfo("%s: max |logit - exact| / range = %.2e on the GPU, %.2e on the CPU",
          std::string(ggml_type_name(static_cast<GgmlType>(type))).c_str(), gpu_error, cpu_error);
    QVERIFY2(gpu_error <= std::max(1.25 * cpu_error, kPrefillTolerance),
             qPrintable(QString("GPU %1, CPU %2").arg(gpu_error).arg(cpu_error)));
}

void TestCuda::loraMatchesPeft_data() { add_peft_golden_rows(); }

// tst_lora's PEFT goldens on the GPU: the prompt through the GEMM (the GPU's
// prefill tolerance), then greedy steps through the vector kernels, eager
// since a recording does not keep adapters.
void TestCuda::loraMatchesPeft() {
    QFETCH(QString, golden_name);
    const std::filesystem::path path = kTestData / "lora_tiny" / golden_name.toStdString();
    const Golden golden = read_golden(path);
    std::unique_ptr<Model> model = gpu_model(tiny_model_file("llama_tiny"));
    verify_against_golden(golden_name, *model, golden, golden_adapters(path, *model));
}

// tst_lora's adapter of the tiny qwen3moe, its experts included: on the GPU
// every step with it groups the experts' rows, each with its pairs.
void TestCuda::expertAdapterMatchesPeft_data() {
    QTest::addColumn<QString>("base");
    QTest::addColumn<QString>("adapter");
    QTest::newRow("qwen3moe experts") << "qwen3moe_tiny" << "lora_moe_tiny";
    QTest::newRow("qwen2moe shared expert") << "qwen2moe_tiny" << "lora_moe_shared_tiny";
}

void TestCuda::expertAdapterMatchesPeft() {
    QFETCH(QString, base);
    QFETCH(QString, adapter);
    const std::filesystem::path folder = kTestData / adapter.toStdString();
    std::unique_ptr<Model> model = gpu_model(tiny_model_file(base.toStdString()));
    LoraSet loras;
    loras.uses.push_back({LoraAdapter::open(folder / "adapter.gguf", *model), 1.f});
    verify_against_golden(base + " with its adapter", *model, read_golden(folder / "golden.json"), loras);
}

// Decode steps on one cache in runs of three without and with an adapter:
// the steps without it are recorded and replayed, those with it run
// eagerly, and each matches the CPU taking the same steps.
void TestCuda::decodeStepsWithAndWithoutAdaptersMatchCpu() {
    const GgufFile file = tiny_model_file("llama_tiny");
    std::unique_ptr<Model> cpu = load_model(file);
    std::unique_ptr<Model> gpu = gpu_model(file);
    const std::filesystem::path golden = kTestData / "lora_tiny" / "golden_plain.json";
    const LoraSet cpu_loras = golden_adapters(golden, *cpu), gpu_loras = golden_adapters(golden, *gpu);
    const int n_vocab = cpu->config().n_vocab;
    const std::vector<std::int32_t> tokens = random_tokens(44, n_vocab, 13);
    const std::vector<std::int32_t> positions = iota_positions(tokens.size());
    ThreadPool pool(2);
    KvCache cpu_cache = cpu->make_kv_cache(64), gpu_cache = gpu->make_kv_cache(64);
    constexpr std::size_t kPrompt = 20;
    const auto prompt = std::span(tokens).first(kPrompt);
    const auto prompt_positions = std::span(positions).first(kPrompt);
    cpu->forward(pool, prompt, prompt_positions, cpu_cache, LogitRows::Last);
    gpu->forward(pool, prompt, prompt_positions, gpu_cache, LogitRows::Last);
    double worst = 0;
    for (std::size_t i = kPrompt; i < tokens.size(); ++i) {
        const bool adapted = (i - kPrompt) / 3 % 2 == 1;
        const auto token = std::span(tokens).subspan(i, 1);
        const auto position = std::span(positions).subspan(i, 1);
        worst = std::max(
            worst, max_relative_diff(
                       gpu->forward(pool, token, position, gpu_cache, LogitRows::Last, adapted ? gpu_loras : LoraSet{}),
                       cpu->forward(pool, token, position, cpu_cache, LogitRows::Last, adapted ? cpu_loras : LoraSet{}),
                       n_vocab));
    }
    qInfo("24 decode steps, every other three with the adapter: max |gpu - cpu| / range = %.2e", worst);
    QVERIFY2(worst <= 2e-3, qPrintable(QString::number(worst)));
}

// What the GPU cannot run says so, and leaves the model usable on the CPU.
#ifdef FOLIO_USE_CUDA

// The mixture of experts' kernels against the host: route_experts chooses
// what route_row chooses on the CPU (softmax; sigmoid with a selection bias
// and groups; normalized and scaled) and counts it; matmul_experts gives
// each pair what matmul gives its expert alone; combine_experts,
// scatter_rows and add_sigmoid_scaled do their sums.
void TestCuda::expertOpsMatchCpu() {
    cuda::Stream stream;
    constexpr std::int64_t kRows = 19;  // not whole blocks of the routing kernel's rows
    // 60: lanes with one expert and lanes with two; 256: DeepSeek-V3's, every lane's most.
    for (const int experts : {60, 256}) {
        const int used = experts == 60 ? 6 : 8;
        const std::vector<float> logits = normal_floats(kRows * experts, 5), bias = normal_floats(experts, 6, 0.1f);
        const DeviceFloats device_logits(stream, logits), device_bias(stream, bias);
        for (int variant = 0; variant < 3; ++variant) {
            ExpertRouting routing{experts, used};
            if (variant == 1) {
                routing.sigmoid = true;
                routing.normalize_weights = true;
                routing.weights_scale = 2.5f;
                routing.n_groups = experts == 60 ? 4 : 8;
                routing.n_groups_used = 3;
            }
            if (variant == 2) routing.normalize_weights = true;
            std::vector<std::int32_t> ids(static_cast<std::size_t>(kRows * used));
            std::vector<float> weights(ids.size()), scores(static_cast<std::size_t>(experts)), choice(scores.size());
            std::vector<unsigned long long> counts(static_cast<std::size_t>(experts), 0);
            std::unique_ptr<bool[]> taken(new bool[static_cast<std::size_t>(experts)]);
            ExpertRouting host = routing;
            if (variant == 1) host.selection_bias = bias.data();
            for (std::int64_t r = 0; r < kRows; ++r)
                route_row(host, logits.data() + r * experts, scores.data(), choice.data(), taken.get(),
                          ids.data() + r * used, weights.data() + r * used);
            for (const std::int32_t e : ids) ++counts[static_cast<std::size_t>(e)];

            if (variant == 1) routing.selection_bias = device_bias.get();
            const DeviceArray<std::int32_t> device_ids(stream, std::vector<std::int32_t>(ids.size()));
            const DeviceFloats device_weights(stream, std::vector<float>(weights.size()));
            const DeviceArray<unsigned long long> device_usage(stream, std::vector<unsigned long long>(counts.size(), 0));
            cuda::route_experts(stream, routing, device_logits.get(), kRows, device_ids.get(), device_weights.get(),
                                device_usage.get());
            QCOMPARE(device_ids.read(stream), ids);
            const std::vector<float> gpu_weights = device_weights.read(stream);
            for (std::size_t i = 0; i < weights.size(); ++i)
                QVERIFY2(std::abs(gpu_weights[i] - weights[i]) <= 1e-5f * std::max(1.f, std::abs(weights[i])),
                         qPrintable(QString("%1 experts, variant %2, weight %3: %4 vs %5")
                                        .arg(experts).arg(variant).arg(i).arg(gpu_weights[i]).arg(weights[i])));
            QCOMPARE(device_usage.read(stream), counts);
        }
    }

    // Four experts' matrices of each type; three rows choosing two each.
    constexpr std::int64_t kOut = 70, kCols = 512, kPairsPerRow = 2;
    const std::vector<std::int32_t> pair_ids = {3, 1, 0, 3, 2, 1};
    const auto n_pairs = static_cast<std::int64_t>(pair_ids.size());
    const std::int64_t x_rows = n_pairs / kPairsPerRow;
    const DeviceFloats device_x(stream, normal_floats(x_rows * kCols, 7));
    const DeviceArray<std::int32_t> device_pair_ids(stream, pair_ids);
    for (const GgmlType type : {GgmlType::F32, GgmlType::F16, GgmlType::Q8_0, GgmlType::Q4_K, GgmlType::Q6_K}) {
        const std::size_t row_bytes = quant_row_bytes(type, kCols);
        std::vector<DeviceArray<std::uint8_t>> matrices;
        std::vector<const void*> table;
        for (int e = 0; e < 4; ++e) {
            const std::vector<float> source = normal_floats(kOut * kCols, 10 + e);
            std::vector<std::uint8_t> weights(row_bytes * kOut);
            for (std::int64_t r = 0; r < kOut; ++r)
                quantize_row(type, source.data() + r * kCols, weights.data() + r * row_bytes, kCols);
            matrices.emplace_back(stream, weights);
            table.push_back(matrices.back().get());
        }
        const DeviceArray<const void*> device_table(stream, table);
        const cuda::DeviceExperts experts{static_cast<std::uint32_t>(type), device_table.get(), kOut, kCols,
                                          static_cast<std::int64_t>(row_bytes)};
        const DeviceFloats out(stream, std::vector<float>(static_cast<std::size_t>(n_pairs * kOut)));
        const DeviceFloats one(stream, std::vector<float>(kOut));
        cuda::matmul_experts(stream, experts, device_pair_ids.get(), n_pairs, kPairsPerRow, device_x.get(), out.get());
        const std::vector<float> by_pair = out.read(stream);
        double worst = 0;
        for (std::int64_t p = 0; p < n_pairs; ++p) {
            const cuda::DeviceMatrix alone{static_cast<std::uint32_t>(type), table[static_cast<std::size_t>(pair_ids[static_cast<std::size_t>(p)])],
                                           kOut, kCols, static_cast<std::int64_t>(row_bytes)};
            cuda::matmul(stream, alone, device_x.get() + p / kPairsPerRow * kCols, 1, one.get());
            const std::vector<float> expected = one.read(stream);
            for (std::int64_t r = 0; r < kOut; ++r)
                worst = std::max(worst, static_cast<double>(std::abs(by_pair[static_cast<std::size_t>(p * kOut + r)] - expected[static_cast<std::size_t>(r)])) /
                                            std::max(1.f, std::abs(expected[static_cast<std::size_t>(r)])));
        }
        QVERIFY2(worst <= 1e-5, qPrintable(QString("%1: %2").arg(ggml_type_name(type).data()).arg(worst)));
    }

    // The sums: y by pair (6 pairs of 3 rows), weighted per row; rows scattered; a sigmoid gate.
    constexpr std::int64_t kWidth = 40;
    const std::vector<float> y = normal_floats(n_pairs * kWidth, 20), pair_weights = normal_floats(n_pairs, 21),
                             gate_logits = normal_floats(x_rows, 22), base = normal_floats(x_rows * kWidth, 23);
    const std::vector<std::int32_t> order = {4, 0, 5, 2, 1, 3};
    const DeviceFloats device_y(stream, y), device_pair_weights(stream, pair_weights), device_gate(stream, gate_logits);
    const DeviceFloats combined(stream, std::vector<float>(base.size())), scattered(stream, std::vector<float>(y.size()));
    const DeviceFloats gated(stream, base);
    const DeviceArray<std::int32_t> device_order(stream, order);
    cuda::combine_experts(stream, device_y.get(), device_pair_weights.get(), x_rows, kPairsPerRow, kWidth,
                          combined.get());
    cuda::scatter_rows(stream, device_y.get(), device_order.get(), n_pairs, kWidth, scattered.get());
    cuda::add_sigmoid_scaled(stream, device_y.get(), device_gate.get(), x_rows, kWidth, gated.get());
    const std::vector<float> gpu_combined = combined.read(stream), gpu_scattered = scattered.read(stream),
                             gpu_gated = gated.read(stream);
    for (std::int64_t r = 0; r < x_rows; ++r)
        for (std::int64_t c = 0; c < kWidth; ++c) {
            float sum = 0.f;
            for (std::int64_t k = 0; k < kPairsPerRow; ++k)
                sum += pair_weights[static_cast<std::size_t>(r * kPairsPerRow + k)] * y[static_cast<std::size_t>((r * kPairsPerRow + k) * kWidth + c)];
            QVERIFY(std::abs(gpu_combined[static_cast<std::size_t>(r * kWidth + c)] - sum) <= 1e-5f);
            const float expected = base[static_cast<std::size_t>(r * kWidth + c)] +
                                   y[static_cast<std::size_t>(r * kWidth + c)] / (1.f + std::exp(-gate_logits[static_cast<std::size_t>(r)]));
            QVERIFY(std::abs(gpu_gated[static_cast<std::size_t>(r * kWidth + c)] - expected) <= 1e-5f);
        }
    for (std::int64_t i = 0; i < n_pairs; ++i)
        for (std::int64_t c = 0; c < kWidth; ++c)
            QCOMPARE(gpu_scattered[static_cast<std::size_t>(order[static_cast<std::size_t>(i)] * kWidth + c)],
                     y[static_cast<std::size_t>(i * kWidth + c)]);
}

#endif

void TestCuda::expertsMatchCpu_data() {
    QTest::addColumn<QString>("architecture");
    QTest::addColumn<bool>("q8_experts");
    QTest::addColumn<int>("host_layers");  // layers whose experts stay in host memory
    QTest::newRow("qwen3moe") << QString("qwen3moe") << false << 0;
    QTest::newRow("qwen2moe (gated shared experts)") << QString("qwen2moe") << false << 0;
    QTest::newRow("qwen3moe, Q8_0 experts") << QString("qwen3moe") << true << 0;
    QTest::newRow("qwen3moe, first layer's experts on the host") << QString("qwen3moe") << false << 1;
    QTest::newRow("qwen2moe, every layer's experts on the host") << QString("qwen2moe") << false << 1000;
    // Latent attention with a dense first layer, shared experts and (deepseek3) group-limited sigmoid routing.
    QTest::newRow("deepseek2") << QString("deepseek2") << false << 0;
    QTest::newRow("deepseek3") << QString("deepseek3") << false << 0;
    QTest::newRow("deepseek3, first expert layer's experts on the host") << QString("deepseek3") << false << 1;
}

// A prompt longer than the matrix-vector kernels take (the experts' rows
// grouped on the host), then decode steps (each row's experts straight from
// the routing: eager, recorded, replayed; eager throughout when a layer's
// experts are computed by the CPU between copies), against the CPU backend,
// with the same expert usage counted.
void TestCuda::expertsMatchCpu() {
    QFETCH(QString, architecture);
    QFETCH(bool, q8_experts);
    QFETCH(int, host_layers);
    GgufFile file = tiny_model_file(architecture.toStdString() + "_tiny");
    if (q8_experts)
        file = edited(file, {.tensor = [&](EditedTensor& tensor) {
                          if (tensor.ne.size() == 3) tensor.type = GgmlType::Q8_0;
                          return true;
                      }});
    std::unique_ptr<Model> cpu = load_model(file);
    std::unique_ptr<Model> gpu = gpu_model(file, {.host_expert_layers = host_layers});
    QVERIFY(gpu->on_gpu());
    QCOMPARE(gpu->host_expert_layers(), std::min(host_layers, gpu->config().n_layers));
    constexpr std::size_t kPrompt = 40, kDecoded = 8;
    const std::vector<std::int32_t> tokens = random_tokens(kPrompt + kDecoded, cpu->config().n_vocab, 21);
    const CpuGpuDiff diff = prefill_then_decode(*cpu, *gpu, tokens, kPrompt);
    qInfo("%s: max |gpu - cpu| / range = %.2e (prefill), %.2e (decode)", qPrintable(architecture), diff.prefill,
          diff.decode);
    if (q8_experts) {
        // The CPU rounds the activations to Q8_0 for its integer products
        // with these experts, the GPU's GEMM takes them whole: each is held
        // to the experts widened to f32, as in quantizedModelMatchesCpu.
        std::unique_ptr<Model> exact = load_model(edited(file, {.tensor = [&](EditedTensor& tensor) {
                                                            if (tensor.ne.size() == 3) tensor.type = GgmlType::F32;
                                                            return true;
                                                        }}));
        const CpuGpuDiff cpu_error = prefill_then_decode(*exact, *load_model(file), tokens, kPrompt);
        const CpuGpuDiff gpu_error =
            prefill_then_decode(*exact, *gpu_model(file, {.host_expert_layers = host_layers}), tokens, kPrompt);
        qInfo("against f32 experts: GPU %.2e / %.2e, CPU %.2e / %.2e (prefill / decode)", gpu_error.prefill,
              gpu_error.decode, cpu_error.prefill, cpu_error.decode);
        QVERIFY2(gpu_error.prefill <= std::max(1.25 * cpu_error.prefill, kPrefillTolerance),
                 qPrintable(QString("GPU %1, CPU %2").arg(gpu_error.prefill).arg(cpu_error.prefill)));
        QVERIFY2(gpu_error.decode <= std::max(1.25 * cpu_error.decode, kPrefillTolerance),
                 qPrintable(QString("GPU %1, CPU %2").arg(gpu_error.decode).arg(cpu_error.decode)));
    } else {
        QVERIFY2(diff.prefill <= kPrefillTolerance, qPrintable(QString::number(diff.prefill)));
        QVERIFY2(diff.decode <= kPrefillTolerance, qPrintable(QString::number(diff.decode)));
    }
    // Every choice counted; a near tie may go the other way on f16 operands.
    QCOMPARE(gpu->expert_usage().total(), cpu->expert_usage().total());
    std::int64_t moved = 0;
    for (std::size_t i = 0; i < cpu->expert_usage().counts.size(); ++i)
        moved += std::abs(gpu->expert_usage().counts[i] - cpu->expert_usage().counts[i]);
    QVERIFY2(moved * 50 <= cpu->expert_usage().total(), qPrintable(QString::number(moved)));
}

void TestCuda::refusesWhatItCannotRun() {

    std::unique_ptr<Model> gpu = gpu_model(tiny_model_file("llama_tiny"));
    ThreadPool pool(1);
    const std::vector<std::int32_t> token = {1}, position = {0};
    KvCache host_cache = load_model(tiny_model_file("llama_tiny"))->make_kv_cache(8);
    QVERIFY(error_of([&] { gpu->forward(pool, token, position, host_cache, LogitRows::Last); })
                .contains("KV cache is in host memory"));
    QVERIFY(error_of([&] { gpu->make_kv_cache(1 << 30); }).contains("of GPU memory"));
    // 2 layers of 2^31 - 1 positions of 68 bytes: 272 GiB.
    QVERIFY(error_of([&] { gpu->make_kv_cache(2147483647, KvType::Q8_0); }).contains("q8_0 KV cache needs"));
    QVERIFY(gpu->make_kv_cache(8, KvType::Q8_0).on_gpu());
    KvCache gpu_cache = gpu->make_kv_cache(8);
    QVERIFY(error_of([&] { gpu_cache.store(0, 0, nullptr, nullptr); }).contains("on the GPU"));
}

QTEST_GUILESS_MAIN(TestCuda)
#include "tst_cuda.moc"
