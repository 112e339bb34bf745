// RoPE scaling (linear, YaRN, llama3's rope_freqs) against transformers:
// tiny random llamas with an original context of 32 positions, whose logits
// at 96 prompt positions (64 beyond it) tools/make_rope_goldens.py recorded.

#include <QJsonArray>
#include <QJsonObject>
#include <QtTest>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <numeric>
#include <string>
#include <vector>

#include "engine/gguf.h"
#include "engine/model.h"
#include "engine/rope_scaling.h"
#include "engine/thread_pool.h"
#include "tests/support/golden_json.h"

using namespace folio::engine;
using folio::test::json_ints;
using folio::test::read_json_object;

namespace {

const std::filesystem::path kTestData = FOLIO_TEST_DATA;
constexpr int kOriginalContext = 32;  // make_rope_goldens.py's ORIGINAL_CONTEXT
constexpr double kTolerance = 1e-3;   // of each position's logit range, as for the unscaled tiny llama

struct Golden {
    std::vector<std::int32_t> prompt_ids;
    std::vector<std::vector<std::int32_t>> top_ids;  // per position, best first
    std::vector<std::vector<float>> top_logits;
    std::vector<float> ranges;
    std::vector<std::int32_t> greedy_continuation;
};

Golden read_golden(const std::string& name) {
    const QJsonObject root = read_json_object(kTestData / ("rope_" + name) / "golden.json");
    Golden golden{json_ints(root["prompt_ids"]), {}, {}, {}, json_ints(root["greedy_continuation"])};
    for (const QJsonValue& value : root["positions"].toArray()) {
        const QJsonObject position = value.toObject();
        golden.top_ids.push_back(json_ints(position["top_ids"]));
        std::vector<float> logits;
        for (const QJsonValue& logit : position["top_logits"].toArray())
            logits.push_back(static_cast<float>(logit.toDouble()));
        golden.top_logits.push_back(logits);
        golden.ranges.push_back(static_cast<float>(position["range"].toDouble()));
    }
    return golden;
}

std::vector<std::int32_t> iota_positions(std::size_t n) {
    std::vector<std::int32_t> positions(n);
    std::iota(positions.begin(), positions.end(), 0);
    return positions;
}

// max over positions from `first` and the golden's top-10 ids of |ours - golden| / range.
double max_relative_diff(const Golden& golden, const std::vector<float>& logits, int n_vocab, std::size_t first) {
    double worst = 0;
    for (std::size_t p = first; p < golden.top_ids.size(); ++p)
        for (std::size_t k = 0; k < golden.top_ids[p].size(); ++k) {
            const float ours = logits[p * static_cast<std::size_t>(n_vocab) + static_cast<std::size_t>(golden.top_ids[p][k])];
            worst = std::max(worst, std::abs(ours - golden.top_logits[p][k]) / static_cast<double>(golden.ranges[p]));
        }
    return worst;
}

// The file without its RoPE scaling: the same weights, plain RoPE.
GgufFile without_scaling(const GgufFile& file) {
    GgufWriter writer;
    for (const GgufKeyValue& kv : file.metadata())
        if (kv.key.find(".rope.scaling.") == std::string_view::npos)
            writer.add_value(std::string(kv.key), kv.value);
    for (const GgufTensor& tensor : file.tensors())
        if (tensor.name != "rope_freqs.weight")
            writer.add_tensor(std::string(tensor.name), tensor.type,
                              std::span<const std::int64_t>(tensor.ne.data(), tensor.n_dims),
                              std::vector<std::uint8_t>(tensor.data.begin(), tensor.data.end()));
    return GgufFile::parse(writer.to_bytes(), file.source() + " without RoPE scaling");
}

// The tiny llama's metadata with extra keys, no tensors: what read_model_config reads.
GgufFile tiny_with(const std::function<void(GgufWriter&)>& add) {
    const GgufFile tiny = GgufFile::open(kTestData / "llama_tiny/model.gguf");
    GgufWriter writer;
    for (const GgufKeyValue& kv : tiny.metadata())
        writer.add_value(std::string(kv.key), kv.value);
    add(writer);
    for (const GgufTensor& tensor : tiny.tensors())
        writer.add_tensor(std::string(tensor.name), tensor.type,
                          std::span<const std::int64_t>(tensor.ne.data(), tensor.n_dims),
                          std::vector<std::uint8_t>(tensor.data.begin(), tensor.data.end()));
    return GgufFile::parse(writer.to_bytes(), "tiny llama with RoPE scaling keys");
}

QString load_error(const GgufFile& file) {
    try {
        load_model(file);
    } catch (const ModelError& e) {
        return e.what();
    }
    return {};
}

}  // namespace

class TestRope : public QObject {
    Q_OBJECT

private slots:
    void readsTheScalingKeys();
    void matchesTransformers_data();
    void matchesTransformers();
    void refusesScalingItCannotRun();
};

void TestRope::readsTheScalingKeys() {
    const ModelConfig yarn = load_model(GgufFile::open(kTestData / "rope_yarn_params/model.gguf"))->config();
    QCOMPARE(yarn.rope_scaling.type, RopeScalingType::Yarn);
    QCOMPARE(yarn.rope_scaling.factor, 8.f);
    QCOMPARE(yarn.rope_scaling.original_context, kOriginalContext);
    QCOMPARE(yarn.rope_scaling.yarn_beta_fast, 16.f);
    QCOMPARE(yarn.rope_scaling.yarn_beta_slow, 2.f);
    QCOMPARE(rope_attention_factor(yarn.rope_scaling), double{1.3f});
    // transformers' default attention factor for YaRN: 1 + 0.1 ln(factor).
    const ModelConfig yarn_default = load_model(GgufFile::open(kTestData / "rope_yarn/model.gguf"))->config();
    QCOMPARE(rope_attention_factor(yarn_default.rope_scaling), 1 + 0.1 * std::log(4.0));

    const ModelConfig llama3 = load_model(GgufFile::open(kTestData / "rope_llama3/model.gguf"))->config();
    QCOMPARE(llama3.rope_scaling.type, RopeScalingType::None);
    QCOMPARE(llama3.rope_scaling.freq_factors.size(), std::size_t(llama3.n_rot / 2));
    // The shortest wavelengths keep their angle, the longest are slowed by the factor.
    QCOMPARE(llama3.rope_scaling.freq_factors.front(), 1.f);
    QCOMPARE(llama3.rope_scaling.freq_factors.back(), 8.f);
    const std::vector<double> inv_freq = rope_inverse_frequencies(llama3.n_rot, llama3.rope_freq_base, llama3.rope_scaling);
    QCOMPARE(inv_freq.back(), std::pow(10000.0, -14.0 / 16) / 8);

    const ModelConfig linear = load_model(GgufFile::open(kTestData / "rope_linear/model.gguf"))->config();
    QCOMPARE(linear.rope_scaling.type, RopeScalingType::Linear);
    QCOMPARE(rope_inverse_frequencies(linear.n_rot, linear.rope_freq_base, linear.rope_scaling).front(), 0.25);
}

void TestRope::matchesTransformers_data() {
    QTest::addColumn<QString>("name");
    for (const char* name : {"linear", "yarn", "yarn_params", "llama3"})
        QTest::newRow(name) << name;
}

// Every position's top-10 logits within 1e-3 of the range, the same argmax
// but at near-ties, and the same 32 greedy tokens; the same model run without its scaling is
// far off beyond the original context, so the goldens do test the scaling.
void TestRope::matchesTransformers() {
    QFETCH(QString, name);
    const Golden golden = read_golden(name.toStdString());
    QVERIFY(golden.prompt_ids.size() >= static_cast<std::size_t>(kOriginalContext + 64));
    QCOMPARE(golden.top_ids.size(), golden.prompt_ids.size());
    const GgufFile file = GgufFile::open(kTestData / ("rope_" + name.toStdString()) / "model.gguf");
    std::unique_ptr<Model> model = load_model(file);
    const int n_vocab = model->config().n_vocab;
    ThreadPool pool(2);

    KvCache cache = model->make_kv_cache(static_cast<int>(golden.prompt_ids.size() + golden.greedy_continuation.size()));
    const std::vector<float> logits =
        model->forward(pool, golden.prompt_ids, iota_positions(golden.prompt_ids.size()), cache, LogitRows::All);
    const double diff = max_relative_diff(golden, logits, n_vocab, 0);
    // Our argmax is the golden's wherever its lead over the runner-up is
    // larger than the tolerance (a near-tie may go either way).
    int top1 = 0;
    for (std::size_t p = 0; p < golden.top_ids.size(); ++p) {
        const float* row = logits.data() + p * static_cast<std::size_t>(n_vocab);
        const bool same = std::max_element(row, row + n_vocab) - row == golden.top_ids[p][0];
        const bool clear_lead = golden.top_logits[p][0] - golden.top_logits[p][1] > kTolerance * golden.ranges[p];
        top1 += same;
        QVERIFY2(same || !clear_lead, qPrintable(QString("argmax differs at position %1").arg(p)));
    }

    std::unique_ptr<Model> unscaled = load_model(without_scaling(file));
    KvCache unscaled_cache = unscaled->make_kv_cache(static_cast<int>(golden.prompt_ids.size()));
    const double unscaled_diff =
        max_relative_diff(golden, unscaled->forward(pool, golden.prompt_ids, iota_positions(golden.prompt_ids.size()),
                                                    unscaled_cache, LogitRows::All),
                          n_vocab, kOriginalContext);
    qInfo("%s: max |logit - golden| / range = %.2e, argmax at %d/%zu positions; without the scaling %.2e",
          qPrintable(name), diff, top1, golden.top_ids.size(), unscaled_diff);
    QVERIFY2(diff <= kTolerance, qPrintable(QString::number(diff)));
    QVERIFY2(unscaled_diff > 100 * kTolerance, qPrintable(QString::number(unscaled_diff)));

    // Greedy decoding token by token through the cache, past position 96.
    std::vector<std::int32_t> continuation;
    std::vector<float> last(logits.end() - n_vocab, logits.end());
    for (std::size_t i = 0; i < golden.greedy_continuation.size(); ++i) {
        const auto next = static_cast<std::int32_t>(std::max_element(last.begin(), last.end()) - last.begin());
        continuation.push_back(next);
        const auto position = static_cast<std::int32_t>(golden.prompt_ids.size() + i);
        last = model->forward(pool, std::vector<std::int32_t>{next}, std::vector<std::int32_t>{position}, cache,
                              LogitRows::Last);
    }
    QCOMPARE(continuation, golden.greedy_continuation);
}

void TestRope::refusesScalingItCannotRun() {
    const QString longrope = load_error(tiny_with([](GgufWriter& w) { w.add_string("llama.rope.scaling.type", "longrope"); }));
    QVERIFY2(longrope.contains("RoPE scaling \"longrope\" is not supported"), qPrintable(longrope));
    const QString no_original = load_error(tiny_with([](GgufWriter& w) {
        w.add_string("llama.rope.scaling.type", "yarn");
        w.add_f32("llama.rope.scaling.factor", 4.f);
    }));
    QVERIFY2(no_original.contains("original_context_length"), qPrintable(no_original));
    const QString no_factor = load_error(tiny_with([](GgufWriter& w) { w.add_string("llama.rope.scaling.type", "linear"); }));
    QVERIFY2(no_factor.contains("llama.rope.scaling.factor"), qPrintable(no_factor));
    const QString log_multiplier = load_error(tiny_with([](GgufWriter& w) {
        w.add_string("llama.rope.scaling.type", "yarn");
        w.add_f32("llama.rope.scaling.factor", 4.f);
        w.add_u32("llama.rope.scaling.original_context_length", 32);
        w.add_f32("llama.rope.scaling.yarn_log_multiplier", 0.1f);
    }));
    QVERIFY2(log_multiplier.contains("yarn_log_multiplier is not supported"), qPrintable(log_multiplier));
    QVERIFY(load_error(tiny_with([](GgufWriter& w) { w.add_string("llama.rope.scaling.type", "none"); })).isEmpty());
}

QTEST_GUILESS_MAIN(TestRope)
#include "tst_rope.moc"
