// LoRA adapters (engine/lora.h) on the tiny llama against goldens that
// Hugging Face PEFT made (tools/make_lora_goldens.py): one adapter, a
// rank-stabilized one, both at once at other scales; the adapter types the
// engine reads; scale 0 is the base model; the adapters' checks against the
// base; and the prefix cache, which must not lend keys and values computed
// under other adapters.

#include <QtTest>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "engine/generator.h"
#include "engine/gguf.h"
#include "engine/lora.h"
#include "engine/model.h"
#include "engine/quant.h"
#include "engine/thread_pool.h"
#include "tests/support/generation_options.h"
#include "tests/support/gguf_edit.h"
#include "tests/support/logit_golden.h"
#include "tests/support/lora_golden.h"

using namespace folio::engine;
using namespace folio::test;

namespace {

const std::filesystem::path kTestData = FOLIO_TEST_DATA;
const std::filesystem::path kAdapters = kTestData / "lora_tiny";
// The Engine I bar for float weights (tst_decoders): logits within 1e-3 of
// each position's range.
constexpr double kTolerance = 1e-3;

GgufFile base_file() { return GgufFile::open(kTestData / "llama_tiny/model.gguf"); }

GgufFile adapter_file(const std::string& name) { return GgufFile::open(kAdapters / name / "adapter.gguf"); }

// What LoraAdapter::load says about a file, or "" when it loads.
std::string load_error(const GgufFile& file, const Model& base) {
    try {
        LoraAdapter::load(file, base);
        return "";
    } catch (const ModelError& error) {
        return error.what();
    }
}

// The largest |ours - reference| over logits (n_positions, n_vocab), relative
// to the range (max - min) of the reference's row.
double max_relative_diff(const std::vector<float>& ours, const std::vector<float>& reference, int n_vocab) {
    double worst = 0;
    for (std::size_t row = 0; row < reference.size() / static_cast<std::size_t>(n_vocab); ++row) {
        const auto first = reference.begin() + static_cast<std::ptrdiff_t>(row * static_cast<std::size_t>(n_vocab));
        const auto [min, max] = std::minmax_element(first, first + n_vocab);
        for (std::size_t i = row * static_cast<std::size_t>(n_vocab); i < (row + 1) * static_cast<std::size_t>(n_vocab); ++i)
            worst = std::max<double>(worst, std::abs(ours[i] - reference[i]) / (*max - *min));
    }
    return worst;
}

}  // namespace

class TestLora : public QObject {
    Q_OBJECT

private slots:
    void initTestCase();
    void matchesPeft_data();
    void matchesPeft();
    void expertAdapterMatchesPeft_data();
    void expertAdapterMatchesPeft();
    void rejectsExpertPairsOfTheWrongCount();
    void sharedExpertsAreAdaptable_data();
    void sharedExpertsAreAdaptable();
    void readsEachTensorType_data();
    void readsEachTensorType();
    void scaleZeroIsTheBaseModel();
    void widenedPairIsTheSamePair();
    void batchMatchesTokenByToken();
    void rejectsAdaptersThatDoNotFit_data();
    void rejectsAdaptersThatDoNotFit();
    void rejectsAnAdapterOfAnotherModel();
    void prefixCacheKeepsAdaptersApart();

private:
    void verify_against_peft(Model& model, const Golden& golden, const LoraSet& loras);

    std::unique_ptr<Model> model_;
    std::vector<std::int32_t> prompt_;
    ThreadPool pool_{2};
};

void TestLora::initTestCase() {
    model_ = load_model(base_file());
    prompt_ = read_golden(kTestData / "llama_tiny/golden.json").prompt_ids;
    QCOMPARE(model_->adaptable_weights().size(), std::size_t{14});  // 2 layers × q, k, v, o, gate, up, down
}

void TestLora::matchesPeft_data() { add_peft_golden_rows(); }

// The bar of the decoders' goldens: at every prompt position the top-10 ids
// and logits within 1e-3 of the range, and the same greedy tokens.
void TestLora::matchesPeft() {
    QFETCH(QString, golden_name);
    const std::filesystem::path path = kAdapters / golden_name.toStdString();
    const Golden golden = read_golden(path);
    QCOMPARE(golden.prompt_ids, prompt_);
    const LoraSet loras = golden_adapters(path, *model_);
    QVERIFY(!loras.empty());
    verify_against_peft(*model_, golden, loras);
}

// The bar of matchesPeft for a model under loras.
void TestLora::verify_against_peft(Model& model, const Golden& golden, const LoraSet& loras) {
    const int n_vocab = model.config().n_vocab;
    const Comparison comparison =
        compare(golden, prompt_logits(model, pool_, golden.prompt_ids, loras), n_vocab, kTolerance);
    const int n_positions = static_cast<int>(golden.positions.size());
    // The base model's logits are far from the adapter's golden: the adapter
    // is not a no-op the test could pass without.
    const Comparison base = compare(golden, prompt_logits(model, pool_, golden.prompt_ids), n_vocab, kTolerance);
    qInfo("max |logit - golden| / range = %.2e (base model: %.2e); top-10 within tolerance at %d/%d",
          comparison.max_relative_diff, base.max_relative_diff, comparison.positions_top10_within, n_positions);
    QVERIFY(base.max_relative_diff > 0.05);
    QVERIFY2(comparison.max_relative_diff <= kTolerance, qPrintable(QString::number(comparison.max_relative_diff)));
    QCOMPARE(comparison.positions_top10_within, n_positions);
    QCOMPARE(greedy_continuation(model, pool_, golden.prompt_ids, static_cast<int>(golden.greedy_continuation.size()),
                                 loras),
             golden.greedy_continuation);
}

// An adapter of a mixture of experts (tools/make_lora_goldens.py moe): q
// and v, and each expert's gate, up and down from the stacked tensors'
// pairs (lora_a (n_expert, r, n_in), lora_b (n_expert, n_out, r)), against
// PEFT's target_parameters on the tiny qwen3moe, prefill and decode alike.
void TestLora::expertAdapterMatchesPeft_data() {
    QTest::addColumn<QString>("base");
    QTest::addColumn<QString>("adapter");
    QTest::addColumn<int>("n_adapted");
    // 2 layers x q, v, and the experts' gate, up, down
    QTest::newRow("qwen3moe experts") << "qwen3moe_tiny" << "lora_moe_tiny" << 10;
    // ... and the shared expert's gate, up, down
    QTest::newRow("qwen2moe shared expert") << "qwen2moe_tiny" << "lora_moe_shared_tiny" << 16;
}

void TestLora::expertAdapterMatchesPeft() {
    QFETCH(QString, base);
    QFETCH(QString, adapter);
    QFETCH(int, n_adapted);
    std::unique_ptr<Model> experts = load_model(GgufFile::open(kTestData / base.toStdString() / "model.gguf"));
    const std::filesystem::path folder = kTestData / adapter.toStdString();
    std::shared_ptr<const LoraAdapter> pairs = LoraAdapter::open(folder / "adapter.gguf", *experts);
    QCOMPARE(pairs->size(), static_cast<std::size_t>(n_adapted));
    LoraSet loras;
    loras.uses.push_back({pairs, 1.f});
    verify_against_peft(*experts, read_golden(folder / "golden.json"), loras);
}

void TestLora::rejectsExpertPairsOfTheWrongCount() {
    std::unique_ptr<Model> experts = load_model(GgufFile::open(kTestData / "qwen3moe_tiny/model.gguf"));
    // Pairs for four of the eight experts do not fit.
    const GgufFile four = edited(GgufFile::open(kTestData / "lora_moe_tiny/adapter.gguf"), {.tensor = [](EditedTensor& tensor) {
                                     if (tensor.name.starts_with("blk.0.ffn_down_exps.")) {
                                         tensor.ne[2] = 4;
                                         tensor.values.resize(tensor.values.size() / 2);
                                     }
                                     return true;
                                 }});
    const std::string error = load_error(four, *experts);
    QVERIFY2(error.find("not the 8 stacked matrices of its experts") != std::string::npos, error.c_str());
}

void TestLora::sharedExpertsAreAdaptable_data() {
    QTest::addColumn<QString>("base");
    QTest::addColumn<int>("first_expert_layer");
    QTest::newRow("qwen2moe") << "qwen2moe_tiny" << 0;
    QTest::newRow("deepseek2") << "deepseek2_tiny" << 1;  // after its leading dense layer
}

// The shared experts' matrices are listed beside the routed ones, their
// shapes those of the base (DeepSeek's forward is its own, so it gets its
// own row).
void TestLora::sharedExpertsAreAdaptable() {
    QFETCH(QString, base);
    QFETCH(int, first_expert_layer);
    const GgufFile file = GgufFile::open(kTestData / base.toStdString() / "model.gguf");
    std::unique_ptr<Model> experts = load_model(file);
    const std::string blk = "blk." + std::to_string(first_expert_layer) + ".";
    for (const char* kind : {"ffn_gate_shexp", "ffn_up_shexp", "ffn_down_shexp"}) {
        const std::string name = blk + kind + ".weight";
        const auto listed = experts->adaptable_weights().find(name);
        QVERIFY2(listed != experts->adaptable_weights().end(), name.c_str());
        const GgufTensor& tensor = file.tensor(name);
        QCOMPARE(listed->second.rows, static_cast<std::int64_t>(tensor.ne[1]));
        QCOMPARE(listed->second.cols, static_cast<std::int64_t>(tensor.ne[0]));
    }
}

void TestLora::readsEachTensorType_data() {
    QTest::addColumn<int>("type_id");
    QTest::addColumn<double>("tolerance");  // against the same values in f32
    QTest::newRow("f32") << static_cast<int>(GgmlType::F32) << 0.0;
    QTest::newRow("bf16") << static_cast<int>(GgmlType::BF16) << 1e-4;
    // A Q8_0 matrix multiplies activations quantized to Q8_0, as llama.cpp's
    // does: 1% of the range here, where the adapter moves the logits by 70%.
    QTest::newRow("q8_0") << static_cast<int>(GgmlType::Q8_0) << 2e-2;
}

// The plain adapter rewritten in another type (Q8_0 only where a row is
// whole blocks: lora_a, whose rows are n_in long; lora_b's rows are r = 8).
// F32 holds the same values, so PEFT's golden applies; BF16 and Q8_0 round
// them, so they are held to the engine's own result for the rounded values
// in F32, which the golden test vouches for.
void TestLora::readsEachTensorType() {
    QFETCH(int, type_id);
    QFETCH(double, tolerance);
    const auto type = static_cast<GgmlType>(type_id);
    const Golden golden = read_golden(kAdapters / "golden_plain.json");
    const int n_vocab = model_->config().n_vocab;
    auto converted = [&](GgmlType to, GgmlType read_back_as) {
        const GgufFile rounded = edited(adapter_file("plain"), {.tensor = [&](EditedTensor& tensor) {
            if (to != GgmlType::Q8_0 || tensor.ne[0] % 32 == 0)
                tensor.type = to;
            return true;
        }});
        if (read_back_as == to)
            return rounded;
        return edited(rounded, {.tensor = [&](EditedTensor& tensor) {
            tensor.type = read_back_as;
            return true;
        }});
    };
    const GgufFile file = converted(type, type);
    int n_of_type = 0;
    for (const GgufTensor& tensor : file.tensors())
        n_of_type += tensor.type == type;
    QVERIFY(n_of_type >= 14);
    const LoraSet loras{{{LoraAdapter::load(file, *model_), 1.f}}};
    const std::vector<float> logits = prompt_logits(*model_, pool_, golden.prompt_ids, loras);
    if (type == GgmlType::F32) {
        const Comparison comparison = compare(golden, logits, n_vocab, kTolerance);
        QVERIFY2(comparison.max_relative_diff <= kTolerance, qPrintable(QString::number(comparison.max_relative_diff)));
        return;
    }
    const LoraSet widened{{{LoraAdapter::load(converted(type, GgmlType::F32), *model_), 1.f}}};
    const double diff = max_relative_diff(logits, prompt_logits(*model_, pool_, golden.prompt_ids, widened), n_vocab);
    qInfo("max |logit - the same values in f32| / range = %.2e", diff);
    QVERIFY2(diff <= tolerance, qPrintable(QString::number(diff)));
}

// The CUDA backend's copy of a pair (f32, its rank padded to a multiple of 8):
// the rank-4 rsLoRA pair and the rank-8 one give the same B(A·x) as the
// pair's own values, and the padding is zeros.
void TestLora::widenedPairIsTheSamePair() {
    for (const char* name : {"rslora", "plain"}) {
        const std::shared_ptr<const LoraAdapter> adapter = LoraAdapter::load(adapter_file(name), *model_);
        const LoraWeight* pair = adapter->find("blk.0.attn_q.weight");
        QVERIFY(pair != nullptr);
        const std::int64_t rank = pair->a.rows, n_in = pair->a.cols, n_out = pair->b.rows;
        const WidenedLoraPair widened = widen_lora_pair(*pair, 8);
        QCOMPARE(widened.rank, std::int64_t{8});
        QCOMPARE(widened.a.size(), static_cast<std::size_t>(8 * n_in));
        QCOMPARE(widened.b.size(), static_cast<std::size_t>(n_out * 8));
        std::vector<float> a(static_cast<std::size_t>(rank * n_in)), b(static_cast<std::size_t>(n_out * rank));
        dequantize_row(pair->a.type, pair->a.data, a.data(), rank * n_in);
        for (std::int64_t o = 0; o < n_out; ++o)
            dequantize_row(pair->b.type, pair->b.data + o * pair->b.row_bytes, b.data() + o * rank, rank);
        for (std::int64_t r = 0; r < 8; ++r)
            for (std::int64_t i = 0; i < n_in; ++i)
                QCOMPARE(widened.a[static_cast<std::size_t>(r * n_in + i)],
                         r < rank ? a[static_cast<std::size_t>(r * n_in + i)] : 0.f);
        for (std::int64_t o = 0; o < n_out; ++o)
            for (std::int64_t r = 0; r < 8; ++r)
                QCOMPARE(widened.b[static_cast<std::size_t>(o * 8 + r)],
                         r < rank ? b[static_cast<std::size_t>(o * rank + r)] : 0.f);
    }
}

// An adapter at scale 0 adds nothing, bit for bit, whatever else is active;
// at scale 1 it changes the logits.
void TestLora::scaleZeroIsTheBaseModel() {
    const std::shared_ptr<const LoraAdapter> plain = LoraAdapter::load(adapter_file("plain"), *model_);
    const std::shared_ptr<const LoraAdapter> rslora = LoraAdapter::load(adapter_file("rslora"), *model_);
    const std::vector<float> base = prompt_logits(*model_, pool_, prompt_);
    QCOMPARE(prompt_logits(*model_, pool_, prompt_, LoraSet{{{plain, 0.f}, {rslora, 0.f}}}), base);
    QVERIFY(prompt_logits(*model_, pool_, prompt_, LoraSet{{{plain, 1.f}}}) != base);
    // Alone at its scale or beside another at 0: the same.
    QCOMPARE(prompt_logits(*model_, pool_, prompt_, LoraSet{{{plain, 0.f}, {rslora, 1.f}}}),
             prompt_logits(*model_, pool_, prompt_, LoraSet{{{rslora, 1.f}}}));
}

// A batch takes the adapter as A·X then B·(AX) over all its rows; one token
// at a time must give the same logits. 200 tokens: enough rows for the
// pool to share out both of the pair's matmuls.
void TestLora::batchMatchesTokenByToken() {
    const LoraSet loras = golden_adapters(kAdapters / "golden_mixed.json", *model_);
    const int n_vocab = model_->config().n_vocab;
    std::vector<std::int32_t> prompt;
    while (prompt.size() < 200)
        prompt.push_back(prompt_[prompt.size() * 7 % prompt_.size()]);
    const std::vector<float> batched = prompt_logits(*model_, pool_, prompt, loras);
    KvCache cache = model_->make_kv_cache(static_cast<int>(prompt.size()));
    std::vector<float> stepped;
    for (std::size_t i = 0; i < prompt.size(); ++i) {
        const std::int32_t position = static_cast<std::int32_t>(i);
        const std::vector<float> row = model_->forward(pool_, std::span(prompt).subspan(i, 1),
                                                       std::span(&position, 1), cache, LogitRows::All, loras);
        stepped.insert(stepped.end(), row.begin(), row.end());
    }
    const double diff = max_relative_diff(stepped, batched, n_vocab);
    qInfo("max |token by token - batch| / range = %.2e", diff);
    QVERIFY2(diff <= 1e-4, qPrintable(QString::number(diff)));
}

void TestLora::rejectsAdaptersThatDoNotFit_data() {
    QTest::addColumn<QString>("spoil");
    QTest::addColumn<QString>("message");
    QTest::newRow("a model, not an adapter") << "model" << "is not a LoRA adapter (general.type is missing)";
    QTest::newRow("another adapter type") << "adapter.type" << "is a \"control_vector\" adapter, not LoRA";
    QTest::newRow("another architecture") << "architecture" << "is an adapter for qwen2, the model is llama";
    QTest::newRow("a target the base lacks")
        << "rename" << "adapts blk.7.attn_q.weight, which is not among the model's adaptable weights";
    QTest::newRow("a target that is not adaptable")
        << "norm" << "adapts blk.0.attn_norm.weight, which is not among the model's adaptable weights";
    QTest::newRow("lora_a of another width")
        << "narrow" << "tensor blk.0.ffn_down.weight.lora_a has shape (8, 64), which does not fit "
                       "blk.0.ffn_down.weight of shape (64, 128): expected (8, 128)";
    QTest::newRow("lora_b of another height")
        << "short" << "tensor blk.1.attn_k.weight.lora_b has shape (31, 8), which does not fit "
                      "blk.1.attn_k.weight of shape (32, 64): expected (32, 8)";
    QTest::newRow("ranks that disagree")
        << "rank" << "blk.0.attn_v.weight has a lora_a of rank 8 (8, 64) but a lora_b of rank 7 (32, 7)";
    QTest::newRow("lora_a without lora_b") << "drop" << "blk.1.ffn_up.weight.lora_a has no .lora_b";
    QTest::newRow("a stray tensor") << "stray" << "tensor blk.0.attn_q.weight is neither a .lora_a nor a .lora_b";
}

// Each a one-line ModelError naming the file and what does not fit.
void TestLora::rejectsAdaptersThatDoNotFit() {
    QFETCH(QString, spoil);
    QFETCH(QString, message);
    const std::string how = spoil.toStdString();
    const GgufFile plain = adapter_file("plain");
    auto set_string = [](const char* key, const char* value) {
        return [=](GgufWriter& writer) { writer.add_string(key, value); };
    };
    // Cuts a tensor's outer dimension (rows of B, or the rank of A) by one.
    auto shrink = [](EditedTensor& tensor, std::size_t dimension) {
        std::vector<std::int64_t>& ne = tensor.ne;
        std::vector<float> kept;
        for (std::int64_t row = 0; row < ne[1]; ++row)
            for (std::int64_t col = 0; col < ne[0]; ++col)
                if ((dimension == 0 ? col : row) + 1 < ne[dimension])
                    kept.push_back(tensor.values[static_cast<std::size_t>(row * ne[0] + col)]);
        --ne[dimension];
        tensor.values = std::move(kept);
    };
    GgufFile file = plain;
    if (how == "model")
        file = base_file();
    else if (how == "adapter.type")
        file = edited(plain, {.drop_key = "adapter.type", .add_metadata = set_string("adapter.type", "control_vector")});
    else if (how == "architecture")
        file = edited(plain, {.drop_key = "general.architecture",
                              .add_metadata = set_string("general.architecture", "qwen2")});
    else if (how == "rename" || how == "norm")
        file = edited(plain, {.tensor = [&](EditedTensor& tensor) {
                                  const std::string to = how == "rename" ? "blk.7.attn_q" : "blk.0.attn_norm";
                                  if (tensor.name.starts_with("blk.1.attn_q.weight"))
                                      tensor.name.replace(0, std::string("blk.1.attn_q").size(), to);
                                  return true;
                              }});
    else if (how == "narrow")  // A (8, 128) written as (8, 64): half its columns
        file = edited(plain, {.tensor = [](EditedTensor& tensor) {
                                  if (tensor.name == "blk.0.ffn_down.weight.lora_a") {
                                      std::vector<std::int64_t>& ne = tensor.ne;
                                      const std::vector<float>& values = tensor.values;
                                      std::vector<float> kept;
                                      for (std::int64_t row = 0; row < ne[1]; ++row)
                                          for (std::int64_t col = 0; col < ne[0] / 2; ++col)
                                              kept.push_back(values[static_cast<std::size_t>(row * ne[0] + col)]);
                                      ne[0] /= 2;
                                      tensor.values = std::move(kept);
                                  }
                                  return true;
                              }});
    else if (how == "short")
        file = edited(plain, {.tensor = [&](EditedTensor& tensor) {
                                  if (tensor.name == "blk.1.attn_k.weight.lora_b")
                                      shrink(tensor, 1);
                                  return true;
                              }});
    else if (how == "rank")
        file = edited(plain, {.tensor = [&](EditedTensor& tensor) {
                                  if (tensor.name == "blk.0.attn_v.weight.lora_b")
                                      shrink(tensor, 0);
                                  return true;
                              }});
    else if (how == "drop")
        file = edited(plain, {.tensor = [](EditedTensor& tensor) {
                                  return tensor.name != "blk.1.ffn_up.weight.lora_b";
                              }});
    else if (how == "stray")
        file = edited(plain, {.tensor = [](EditedTensor& tensor) {
                                  if (tensor.name == "blk.0.attn_q.weight.lora_a")
                                      tensor.name = "blk.0.attn_q.weight";
                                  return true;
                              }});
    const std::string error = load_error(file, *model_);
    QVERIFY2(error.find(message.toStdString()) != std::string::npos, error.c_str());
    QVERIFY2(error.find('\n') == std::string::npos, error.c_str());
    QVERIFY2(error.starts_with(file.source()), error.c_str());
}

// An adapter loaded for one model is refused by another, at load and at run time.
void TestLora::rejectsAnAdapterOfAnotherModel() {
    const std::unique_ptr<Model> qwen = load_model(GgufFile::open(kTestData / "qwen2_tiny/model.gguf"));
    QVERIFY(load_error(adapter_file("plain"), *qwen).find("is an adapter for llama, the model is qwen2") !=
            std::string::npos);
    const LoraSet loras{{{LoraAdapter::load(adapter_file("plain"), *model_), 1.f}}};
    KvCache cache = qwen->make_kv_cache(8);
    const std::vector<std::int32_t> token = {1}, position = {0};
    QVERIFY_THROWS_EXCEPTION(ModelError, qwen->forward(pool_, token, position, cache, LogitRows::Last, loras));
}

// Keys and values computed under one adapter set are never lent to a prompt
// under another (or the same adapter at another scale): the result is a cold
// run's, bit for bit; under the same set they are.
void TestLora::prefixCacheKeepsAdaptersApart() {
    const std::shared_ptr<const LoraAdapter> plain = LoraAdapter::load(adapter_file("plain"), *model_);
    const LoraSet base;
    const LoraSet full{{{plain, 1.f}}};
    const LoraSet half{{{plain, 0.5f}}};
    constexpr int kContext = 160;
    auto cold = [&](const LoraSet& loras) {
        Sequence sequence(model_->make_kv_cache(kContext));
        return sequence.prefill(*model_, pool_, prompt_, loras);
    };

    Sequence sequence(model_->make_kv_cache(kContext));
    sequence.prefill(*model_, pool_, prompt_, base);
    QCOMPARE(sequence.reusable_prefix(prompt_, base), 63);
    QCOMPARE(sequence.reusable_prefix(prompt_, full), 0);
    QCOMPARE(sequence.prefill(*model_, pool_, prompt_, full), cold(full));
    QVERIFY(sequence.loras() == full);
    QCOMPARE(sequence.reusable_prefix(prompt_, half), 0);
    QCOMPARE(sequence.prefill(*model_, pool_, prompt_, half), cold(half));
    QCOMPARE(sequence.reusable_prefix(prompt_, half), 63);

    // generate(): the same prompt under the base model and then an adapter
    // reuses nothing the second time, and continues as a cold run does.
    PrefixCache cache(*model_, kContext, KvType::F16, 4 * model_->make_kv_cache(kContext).bytes());
    GenerationOptions options = greedy_options(8);
    Sequence& for_base = cache.acquire(prompt_, base);
    const GenerationResult under_base = generate(*model_, pool_, for_base, nullptr, prompt_, options);
    options.loras = full;
    Sequence& for_adapter = cache.acquire(prompt_, full);
    QVERIFY(&for_adapter != &for_base);
    const GenerationResult under_adapter = generate(*model_, pool_, for_adapter, nullptr, prompt_, options);
    QCOMPARE(under_adapter.timings.reused_prompt_tokens, 0);
    KvCache fresh = model_->make_kv_cache(kContext);
    QCOMPARE(under_adapter.tokens, generate(*model_, pool_, fresh, nullptr, prompt_, options).tokens);
    QVERIFY(under_adapter.tokens != under_base.tokens);
    // Back under the base model: its own sequence lends the prompt.
    options.loras = base;
    Sequence& again = cache.acquire(prompt_, base);
    QCOMPARE(&again, &for_base);
    QCOMPARE(generate(*model_, pool_, again, nullptr, prompt_, options).timings.reused_prompt_tokens, 63);
}

QTEST_GUILESS_MAIN(TestLora)
#include "tst_lora.moc"
