// The KV cache's element types: q8_0 against f16 on the tiny golden model
// (whose 16-wide heads sit inside 32-element blocks) and on SmolLM2, the
// memory each takes in host memory and on a GPU, and the caches that cannot
// be made.

#include <QJsonObject>
#include <QtTest>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <memory>
#include <numeric>
#include <random>
#include <string>
#include <vector>

#include "engine/blocks_cpu.h"
#include "engine/fp16.h"
#include "engine/gguf.h"
#include "engine/kv_cache.h"
#include "engine/model.h"
#include "engine/model_paths.h"
#include "engine/quant.h"
#include "engine/thread_pool.h"
#include "tests/support/golden_json.h"

using namespace folio::engine;
using folio::test::json_ints;
using folio::test::read_json_object;

namespace {

const std::filesystem::path kTestData = FOLIO_TEST_DATA;

std::vector<std::int32_t> iota_positions(std::size_t n) {
    std::vector<std::int32_t> positions(n);
    std::iota(positions.begin(), positions.end(), 0);
    return positions;
}

// max over positions and ids of |a - b| / (the position's logit range in b).
double max_relative_diff(const std::vector<float>& a, const std::vector<float>& b, int n_vocab) {
    double worst = 0;
    for (std::size_t row = 0; row < b.size() / static_cast<std::size_t>(n_vocab); ++row) {
        const float* rb = b.data() + row * static_cast<std::size_t>(n_vocab);
        const float* ra = a.data() + row * static_cast<std::size_t>(n_vocab);
        const auto [lo, hi] = std::minmax_element(rb, rb + n_vocab);
        for (int v = 0; v < n_vocab; ++v)
            worst = std::max(worst, static_cast<double>(std::abs(ra[v] - rb[v]) / (*hi - *lo)));
    }
    return worst;
}


}  // namespace

class TestKvCache : public QObject {
    Q_OBJECT

private slots:
    void namesTypes();
    void q8_0TakesLessMemory();
    void keysOnlyCacheHoldsNoValues();
    void hostCacheKeepsEachHeadApart();
    void q8_0StaysCloseToF16_data();
    void q8_0StaysCloseToF16();
    void decodeStepsMatchTheBatch_data();
    void decodeStepsMatchTheBatch();
    void refusesRowsThatAreNotWholeBlocks();
    void refusesMoreMemoryThanIsAvailable();
    void gpuCacheLaysOutRowsAndRefusesHostAccess_data();
    void gpuCacheLaysOutRowsAndRefusesHostAccess();
};

void TestKvCache::namesTypes() {
    QCOMPARE(kv_type_from_name("f16"), KvType::F16);
    QCOMPARE(kv_type_from_name("q8_0"), KvType::Q8_0);
    QCOMPARE(std::string(kv_type_name(KvType::Q8_0)), std::string("q8_0"));
    QVERIFY_THROWS_EXCEPTION(std::invalid_argument, kv_type_from_name("q4_0"));
}

// Q8_0: 34 bytes per 32 elements against f16's 64.
void TestKvCache::q8_0TakesLessMemory() {
    const KvCache f16(2, 100, 1, 64, 96, KvType::F16);
    const KvCache q8(2, 100, 1, 64, 96, KvType::Q8_0);
    QCOMPARE(f16.bytes(), std::size_t{2 * 100 * (64 + 96) * 2});
    QCOMPARE(q8.bytes(), std::size_t{2 * 100 * (2 + 3) * 34});
    QCOMPARE(q8.bytes(), KvCache::bytes_needed(2, 100, 1, 64, 96, KvType::Q8_0));
    QCOMPARE(q8.key_row_bytes(), std::size_t{2 * 34});
    QCOMPARE(q8.value_row_bytes(), std::size_t{3 * 34});
    QVERIFY_THROWS_EXCEPTION(std::logic_error, q8.values_transposed(0));
    QVERIFY_THROWS_EXCEPTION(std::logic_error, f16.value_rows(0, 0));
}

// Multi-head latent attention reads its values from the keys: a cache with
// v_width 0 holds the keys alone, and store() leaves the missing values be.
void TestKvCache::keysOnlyCacheHoldsNoValues() {
    for (const KvType type : {KvType::F16, KvType::Q8_0}) {
        KvCache cache(2, 10, 1, 576, 0, type);
        QCOMPARE(cache.v_width(), 0);
        QCOMPARE(cache.bytes(), KvCache::bytes_needed(2, 10, 1, 576, 0, type));
        QCOMPARE(cache.bytes(), std::size_t{2} * 10 * cache.key_row_bytes());
        const std::vector<float> row(576, 0.5f);
        cache.store(1, 9, row.data(), nullptr);
        std::vector<float> back(576);
        dequantize_row(type == KvType::F16 ? GgmlType::F16 : GgmlType::Q8_0,
                       cache.keys(1, 0) + 9 * cache.key_group_bytes(), back.data(), 576);
        QVERIFY(std::abs(back[575] - 0.5f) < 1e-2f);  // q8_0: within a step of 0.5/127
    }
    QVERIFY_THROWS_EXCEPTION(std::invalid_argument, KvCache(2, 10, 1, 576, -1));
}

// Each kv head's keys (and q8_0 values) position after position, so that a
// head's attention streams them; q8_0 heads narrower than a block share the
// blocks of one row per position.
void TestKvCache::hostCacheKeepsEachHeadApart() {
    struct Case {
        KvType type;
        int head_dim;
        int groups;
    };
    for (const Case c : {Case{KvType::F16, 64, 4}, Case{KvType::F16, 16, 4}, Case{KvType::Q8_0, 64, 4},
                         Case{KvType::Q8_0, 16, 1}}) {
        constexpr int kLayers = 2, kPositions = 5, kHeads = 4;
        const int width = kHeads * c.head_dim;
        KvCache cache(kLayers, kPositions, kHeads, width, width, c.type);
        QCOMPARE(cache.n_kv_heads(), kHeads);
        QCOMPARE(cache.head_groups(), c.groups);
        const GgmlType element = c.type == KvType::F16 ? GgmlType::F16 : GgmlType::Q8_0;
        const int group_width = width / c.groups;
        QCOMPARE(cache.key_group_bytes(), quant_row_bytes(element, group_width));
        std::vector<float> k_row(static_cast<std::size_t>(width)), v_row(k_row.size());
        for (int p = 0; p < kPositions; ++p) {
            for (int i = 0; i < width; ++i) {
                k_row[static_cast<std::size_t>(i)] = static_cast<float>(100 * p + i);
                v_row[static_cast<std::size_t>(i)] = -static_cast<float>(100 * p + i);
            }
            cache.store(1, p, k_row.data(), v_row.data());
        }
        std::vector<float> back(static_cast<std::size_t>(group_width));
        for (int g = 0; g < c.groups; ++g) {
            // The group's rows are consecutive: position 3's follows position 2's.
            QCOMPARE(cache.keys(1, g) + 3 * cache.key_group_bytes(),
                     cache.keys(1, g) + 2 * cache.key_group_bytes() + cache.key_group_bytes());
            dequantize_row(element, cache.keys(1, g) + 3 * cache.key_group_bytes(), back.data(), group_width);
            for (int i = 0; i < group_width; i += 7)
                QVERIFY(std::abs(back[static_cast<std::size_t>(i)] - static_cast<float>(300 + g * group_width + i)) <=
                        (c.type == KvType::F16 ? 0.5f : 3.f));  // a step of either type at 600
            if (c.type == KvType::Q8_0) {
                dequantize_row(element, cache.value_rows(1, g) + 3 * cache.value_group_bytes(), back.data(),
                               group_width);
                QVERIFY(std::abs(back[0] + static_cast<float>(300 + g * group_width)) <= 3.f);
            }
        }
        // Groups follow one another within a layer, a layer's after the one before.
        if (c.groups > 1)
            QCOMPARE(cache.keys(1, 1), cache.keys(1, 0) + kPositions * cache.key_group_bytes());
        QCOMPARE(cache.keys(1, 0), cache.keys(0, 0) + kPositions * cache.key_row_bytes());
        QVERIFY_THROWS_EXCEPTION(std::out_of_range, cache.keys(0, c.groups));
        QVERIFY_THROWS_EXCEPTION(std::out_of_range, cache.keys(0, -1));
    }
    QVERIFY_THROWS_EXCEPTION(std::invalid_argument, KvCache(1, 4, 3, 64, 64));  // 3 heads do not divide 64
}

// The bound: Q8_0 rounds every element of a block to a step of amax/127,
// f16 each element relative to itself. On Gaussian 32-element blocks the RMS
// rounding error is 5.3e-3 sigma for q8_0 and 2.1e-4 sigma for f16 (numpy,
// 3.2M samples): 26 times larger. tst_decoders holds the f16 cache to 1e-3
// of the logit range against transformers, so q8_0 is held to 26 times
// that, 2.6e-2, against f16. Greedy decoding then picks the golden's token
// (f16's) at every step whose f16 lead over q8_0's pick is larger than that
// bound; a near-tie may go the other way.
//
// tiny: 16-wide heads, two to a block (the element-wise path); the golden's
// 32nd token is a near-tie (f16 leads by 0.4% of the range). smollm2: 64-wide
// heads of whole blocks, the query quantized to Q8_0 too for the keys' dot
// products (as llama.cpp does): two roundings in each score, so twice the
// bound, 5.2e-2.
void TestKvCache::q8_0StaysCloseToF16_data() {
    QTest::addColumn<QString>("model_name");
    QTest::newRow("tiny") << "tiny";
    QTest::newRow("smollm2") << "smollm2";
}

void TestKvCache::q8_0StaysCloseToF16() {
    QFETCH(QString, model_name);
    const bool tiny = model_name == "tiny";
    const double bound = tiny ? 2.6e-2 : 5.2e-2;
    const QJsonObject golden = read_json_object(kTestData / (tiny ? "llama_tiny/golden.json" : "llama_smollm2/golden.json"));
    const std::filesystem::path path =
        tiny ? kTestData / "llama_tiny/model.gguf"
             : std::filesystem::path(default_models_directory()) / golden["model_file"].toString().toStdString();
    if (!std::filesystem::exists(path))
        QSKIP("SmolLM2 is not installed (installer/fetch-models.sh)");
    const std::vector<std::int32_t> prompt = json_ints(golden["prompt_ids"]);
    const std::vector<std::int32_t> continuation = json_ints(golden["greedy_continuation"]);
    std::unique_ptr<Model> model = load_model(GgufFile::open(path));
    QCOMPARE(model->config().head_dim, tiny ? 16 : 64);
    const int n_vocab = model->config().n_vocab;
    ThreadPool pool(2);

    // The prompt and the golden continuation but its last token, teacher-forced
    // in one batch: the logits before each continuation token.
    std::vector<std::int32_t> sequence = prompt;
    sequence.insert(sequence.end(), continuation.begin(), continuation.end() - 1);
    const int n_positions = static_cast<int>(sequence.size());
    KvCache f16 = model->make_kv_cache(n_positions, KvType::F16);
    KvCache q8 = model->make_kv_cache(n_positions, KvType::Q8_0);
    const std::vector<float> f16_logits = model->forward(pool, sequence, iota_positions(sequence.size()), f16, LogitRows::All);
    const std::vector<float> q8_logits = model->forward(pool, sequence, iota_positions(sequence.size()), q8, LogitRows::All);
    const double diff = max_relative_diff(q8_logits, f16_logits, n_vocab);
    qInfo("%s: q8_0 vs f16 cache: max |logit diff| / range = %.2e over %d positions", qPrintable(model_name), diff,
          n_positions);
    QVERIFY2(diff <= bound, qPrintable(QString::number(diff)));
    QVERIFY(diff > 0);  // the q8_0 path really ran

    int same = 0;
    for (std::size_t step = 0; step < continuation.size(); ++step) {
        const std::size_t row = (prompt.size() - 1 + step) * static_cast<std::size_t>(n_vocab);
        const float* f16_row = f16_logits.data() + row;
        const float* q8_row = q8_logits.data() + row;
        const auto q8_pick = static_cast<std::int32_t>(std::max_element(q8_row, q8_row + n_vocab) - q8_row);
        // The f16 pick, not the golden token: teacher-forced in one batch, f16
        // may itself take the other side of a near-tie with transformers
        // (tst_decoders holds f16 to the golden); this test is about q8_0.
        const auto expected = static_cast<std::int32_t>(std::max_element(f16_row, f16_row + n_vocab) - f16_row);
        if (q8_pick == expected) {
            ++same;
            continue;
        }
        const auto [lo, hi] = std::minmax_element(f16_row, f16_row + n_vocab);
        const float f16_lead = f16_row[expected] - f16_row[q8_pick];
        qInfo("step %zu: q8_0 picks %d over f16's %d, which f16 leads by %.2e of the range", step, q8_pick,
              expected, static_cast<double>(f16_lead / (*hi - *lo)));
        QVERIFY(f16_lead <= static_cast<float>(bound) * (*hi - *lo));
    }
    qInfo("q8_0 picks f16's token at %d/%zu steps", same, continuation.size());
}

// Attention of a decoded token, its query heads that share a kv head taken
// together (and from 1024 keys on, split by ranges of keys and of value
// elements over the threads), against attention computed in double over the
// dequantized keys and values; in a q8_0 cache also against its row of a
// batch (one head at a time), bit for bit. Heads of whole blocks (the Q8_0
// products) and heads narrower than a block (element by element).
void TestKvCache::decodeStepsMatchTheBatch_data() {
    QTest::addColumn<int>("head_dim");
    QTest::addColumn<int>("n_heads");
    QTest::addColumn<int>("n_kv_heads");
    QTest::addColumn<int>("tokens");
    QTest::addColumn<bool>("q8_0");
    QTest::newRow("q8_0, 64-wide heads, 3 per kv head") << 64 << 6 << 2 << 41 << true;
    QTest::newRow("q8_0, 16-wide heads, 2 per kv head") << 16 << 4 << 2 << 41 << true;
    QTest::newRow("q8_0, 64-wide heads, 1100 keys") << 64 << 6 << 2 << 1100 << true;
    QTest::newRow("q8_0, 16-wide heads, 1100 keys") << 16 << 4 << 2 << 1100 << true;
    QTest::newRow("f16, 64-wide heads, 41 keys") << 64 << 6 << 2 << 41 << false;
    QTest::newRow("f16, 64-wide heads, 1100 keys") << 64 << 6 << 2 << 1100 << false;
}

void TestKvCache::decodeStepsMatchTheBatch() {
    QFETCH(int, head_dim);
    QFETCH(int, n_heads);
    QFETCH(int, n_kv_heads);
    QFETCH(int, tokens);
    QFETCH(bool, q8_0);
    const int kTokens = tokens;
    const int width = n_kv_heads * head_dim;
    const KvType type = q8_0 ? KvType::Q8_0 : KvType::F16;
    KvCache cache(1, kTokens, n_kv_heads, width, width, type);
    QCOMPARE(cache.head_groups(), q8_0 && head_dim % 32 != 0 ? 1 : n_kv_heads);
    std::mt19937 rng(11);
    std::normal_distribution<float> normal;
    std::vector<float> k_row(static_cast<std::size_t>(width)), v_row(k_row.size());
    for (int p = 0; p < kTokens; ++p) {
        for (std::size_t i = 0; i < k_row.size(); ++i) {
            k_row[i] = normal(rng);
            v_row[i] = normal(rng);
        }
        cache.store(0, p, k_row.data(), v_row.data());
    }
    std::vector<float> q(static_cast<std::size_t>(kTokens * n_heads * head_dim));
    for (float& x : q) x = normal(rng);
    const AttentionShape shape{.n_heads = n_heads, .n_kv_heads = n_kv_heads, .head_dim = head_dim,
                               .v_head_dim = head_dim, .scale = 1.f / std::sqrt(static_cast<float>(head_dim))};
    ThreadPool pool(2);
    std::vector<std::int32_t> positions(kTokens);
    std::iota(positions.begin(), positions.end(), 0);
    const std::size_t token_floats = static_cast<std::size_t>(n_heads * head_dim);
    std::vector<float> batch(q.size());
    attention(pool, q.data(), positions, cache, 0, shape, batch.data());

    std::vector<float> keys(static_cast<std::size_t>(kTokens * width)), values(keys.size());
    const int group_width = width / cache.head_groups();
    for (int p = 0; p < kTokens; ++p) {
        for (int g = 0; g < cache.head_groups(); ++g) {
            dequantize_row(q8_0 ? GgmlType::Q8_0 : GgmlType::F16, cache.keys(0, g) + p * cache.key_group_bytes(),
                           keys.data() + p * width + g * group_width, group_width);
            if (q8_0)
                dequantize_row(GgmlType::Q8_0, cache.value_rows(0, g) + p * cache.value_group_bytes(),
                               values.data() + p * width + g * group_width, group_width);
        }
        if (q8_0)
            continue;
        for (int i = 0; i < width; ++i)
            values[static_cast<std::size_t>(p * width + i)] =
                fp16_to_fp32(cache.values_transposed(0)[static_cast<std::size_t>(i) * kTokens + p]);
    }
    for (const int t : {0, 1, 20, kTokens / 2, kTokens - 1}) {
        std::vector<float> step(token_floats);
        const std::int32_t position = t;
        attention(pool, q.data() + t * token_floats, std::span(&position, 1), cache, 0, shape, step.data());
        // An f16 batch goes through the tiled product, in another order.
        if (q8_0)
            QVERIFY2(std::memcmp(step.data(), batch.data() + t * token_floats, step.size() * sizeof(float)) == 0,
                     qPrintable(QString("token %1").arg(t)));
        for (int h = 0; h < n_heads; ++h) {
            const int kv = h / (n_heads / n_kv_heads);
            std::vector<double> scores(static_cast<std::size_t>(t + 1));
            for (int p = 0; p <= t; ++p) {
                double dot = 0;
                for (int d = 0; d < head_dim; ++d)
                    dot += static_cast<double>(q[t * token_floats + h * head_dim + d]) * keys[p * width + kv * head_dim + d];
                scores[static_cast<std::size_t>(p)] = dot * shape.scale;
            }
            const double top = *std::max_element(scores.begin(), scores.end());
            double total = 0;
            for (double& s : scores) total += s = std::exp(s - top);
            for (int d = 0; d < head_dim; ++d) {
                double expected = 0;
                for (int p = 0; p <= t; ++p)
                    expected += scores[static_cast<std::size_t>(p)] / total * values[p * width + kv * head_dim + d];
                // The query is quantized to Q8_0 for 64-wide heads: scores off by
                // about 1% of a step, outputs by a little of the values' spread.
                const float got = step[static_cast<std::size_t>(h * head_dim + d)];
                QVERIFY2(std::abs(got - expected) <= (q8_0 ? 0.03 : 1e-4),
                         qPrintable(QString("token %1 head %2 element %3: %4, expected %5").arg(t).arg(h).arg(d).arg(got).arg(expected)));
            }
        }
    }
}

// In host memory and on a GPU alike, before anything is allocated.
void TestKvCache::refusesRowsThatAreNotWholeBlocks() {
    try {
        KvCache cache(2, 16, 1, 48, 64, KvType::Q8_0);
        QFAIL("a q8_0 cache with 48-element rows was made");
    } catch (const KvCacheError& e) {
        QVERIFY2(QString(e.what()).contains("48 elements"), e.what());
    }
    QCOMPARE(KvCache(2, 16, 1, 48, 64, KvType::F16).k_width(), 48);
    int allocations = 0;
    const auto allocate = [&](std::size_t bytes) {
        ++allocations;
        return std::shared_ptr<void>(new std::uint8_t[bytes], std::default_delete<std::uint8_t[]>());
    };
    try {
        KvCache::on_gpu(2, 16, 1, 64, 48, KvType::Q8_0, std::size_t{1} << 30, allocate);
        QFAIL("a q8_0 GPU cache with 48-element value rows was made");
    } catch (const KvCacheError& e) {
        QVERIFY2(QString(e.what()).contains("48 elements"), e.what());
    }
    QCOMPARE(allocations, 0);
    QCOMPARE(KvCache::on_gpu(2, 16, 1, 64, 48, KvType::F16, std::size_t{1} << 30, allocate).v_width(), 48);
}

// A cache far beyond the machine's memory is refused with the numbers,
// before anything is allocated (a bare bad_alloc or the OOM killer otherwise).
void TestKvCache::refusesMoreMemoryThanIsAvailable() {
    const std::size_t available = available_memory_bytes();
    if (available == 0)
        QSKIP("/proc/meminfo has no MemAvailable here");
    std::unique_ptr<Model> model = load_model(GgufFile::open(kTestData / "llama_tiny/model.gguf"));
    // 2 layers * 2^31-1 positions * 64 elements * 2 bytes: 512 GiB.
    constexpr int kPositions = 2147483647;
    QVERIFY(KvCache::bytes_needed(2, kPositions, 2, 32, 32, KvType::F16) > available);
    try {
        model->make_kv_cache(kPositions);
        QFAIL("a 512 GiB cache was made");
    } catch (const KvCacheError& e) {
        const QString message = e.what();
        QVERIFY2(message.contains("needs 512.00 GiB of memory, but only") && message.contains("available"), e.what());
        QVERIFY(!message.contains('\n'));
    }
}

void TestKvCache::gpuCacheLaysOutRowsAndRefusesHostAccess_data() {
    QTest::addColumn<bool>("q8_0");
    QTest::addColumn<int>("k_width");
    QTest::addColumn<int>("v_width");
    QTest::newRow("f16") << false << 8 << 4;
    QTest::newRow("q8_0") << true << 64 << 32;
    // Multi-head latent attention's cache (DeepSeek): keys only.
    QTest::newRow("f16 keys only") << false << 96 << 0;
    QTest::newRow("q8_0 keys only") << true << 576 << 0;
}

// A GPU cache's bookkeeping, with host memory standing in for the device
// allocation (the CUDA suite runs the real one): keys then values by rows
// of the cache's type (34 bytes per 32 q8_0 elements), the free-memory
// check before allocating, no host accessors and none of the other type.
void TestKvCache::gpuCacheLaysOutRowsAndRefusesHostAccess() {
    QFETCH(bool, q8_0);
    QFETCH(int, k_width);
    QFETCH(int, v_width);
    const KvType type = q8_0 ? KvType::Q8_0 : KvType::F16;
    constexpr int kLayers = 3, kPositions = 10;
    const std::size_t key_row_bytes = q8_0 ? k_width / 32 * 34 : k_width * 2;
    const std::size_t value_row_bytes = q8_0 ? v_width / 32 * 34 : v_width * 2;
    const std::size_t needed = KvCache::bytes_needed(kLayers, kPositions, 1, k_width, v_width, type);
    QCOMPARE(needed, kLayers * kPositions * (key_row_bytes + value_row_bytes));
    int allocations = 0;
    const auto allocate = [&](std::size_t bytes) {
        ++allocations;
        return std::shared_ptr<void>(new std::uint8_t[bytes], std::default_delete<std::uint8_t[]>());
    };
    try {
        KvCache::on_gpu(kLayers, kPositions, 1, k_width, v_width, type, needed - 1, allocate);
        QFAIL("a cache larger than the GPU's free memory was made");
    } catch (const KvCacheError& e) {
        const QString message = e.what();
        QVERIFY2(message.startsWith(QString("a 10-position %1 KV cache needs").arg(kv_type_name(type))) &&
                     message.contains("of GPU memory") && !message.contains('\n'),
                 e.what());
    }
    QCOMPARE(allocations, 0);

    KvCache cache = KvCache::on_gpu(kLayers, kPositions, 1, k_width, v_width, type, needed, allocate);
    QCOMPARE(allocations, 1);
    QVERIFY(cache.on_gpu());
    QCOMPARE(cache.type(), type);
    QCOMPARE(cache.bytes(), needed);
    QCOMPARE(cache.key_row_bytes(), key_row_bytes);
    QCOMPARE(cache.value_row_bytes(), value_row_bytes);
    const auto keys = [&](int layer) {
        return q8_0 ? cache.gpu_key_blocks(layer) : reinterpret_cast<std::uint8_t*>(cache.gpu_keys(layer));
    };
    const auto values = [&](int layer) {
        return q8_0 ? cache.gpu_value_blocks(layer) : reinterpret_cast<std::uint8_t*>(cache.gpu_values(layer));
    };
    QCOMPARE(static_cast<std::size_t>(keys(1) - keys(0)), kPositions * key_row_bytes);
    QCOMPARE(static_cast<std::size_t>(values(0) - keys(0)), kLayers * kPositions * key_row_bytes);
    QCOMPARE(static_cast<std::size_t>(values(2) + kPositions * value_row_bytes - keys(0)), needed);
    if (q8_0) {
        QVERIFY_THROWS_EXCEPTION(std::logic_error, cache.gpu_keys(0));
        QVERIFY_THROWS_EXCEPTION(std::logic_error, cache.gpu_values(0));
    } else {
        QVERIFY_THROWS_EXCEPTION(std::logic_error, cache.gpu_key_blocks(0));
        QVERIFY_THROWS_EXCEPTION(std::logic_error, cache.gpu_value_blocks(0));
    }
    const std::vector<float> row(static_cast<std::size_t>(k_width));
    QVERIFY_THROWS_EXCEPTION(std::logic_error, cache.store(0, 0, row.data(), row.data()));
    QVERIFY_THROWS_EXCEPTION(std::logic_error, cache.keys(0, 0));
    QVERIFY_THROWS_EXCEPTION(std::out_of_range, keys(kLayers));

    const KvCache moved = std::move(cache);
    QVERIFY(moved.on_gpu());
    KvCache host(kLayers, kPositions, 1, k_width, v_width, type);
    QVERIFY(!host.on_gpu());
    QVERIFY_THROWS_EXCEPTION(std::logic_error, host.gpu_keys(0));
    QVERIFY_THROWS_EXCEPTION(std::logic_error, host.gpu_key_blocks(0));
}

QTEST_GUILESS_MAIN(TestKvCache)
#include "tst_kv_cache.moc"
