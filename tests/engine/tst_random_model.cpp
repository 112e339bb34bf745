#include <QTemporaryDir>
#include <QtTest>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <map>
#include <numeric>
#include <set>
#include <span>
#include <stdexcept>
#include <string>
#include <vector>

#include "engine/gguf.h"
#include "engine/model.h"
#include "engine/model_paths.h"
#include "engine/model_quantize.h"
#include "engine/model_zoo.h"
#include "engine/random_model.h"
#include "engine/thread_pool.h"

using namespace folio::engine;

namespace {

const std::filesystem::path kTestData = FOLIO_TEST_DATA;

std::vector<char> file_bytes(const std::filesystem::path& path) {
    std::ifstream in(path, std::ios::binary);
    return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

std::vector<std::int64_t> shape_of(const GgufTensor& tensor) {
    return {tensor.ne.begin(), tensor.ne.begin() + tensor.n_dims};
}

const ZooModel& zoo_model(std::string_view name) {
    for (const ZooModel& model : zoo_models())
        if (model.name == name)
            return model;
    qFatal("no zoo model %s", std::string(name).c_str());
}

// A llama whose every row length is a whole number of K-quant blocks (256),
// with 8 layers so that the Q4_K_M rules pick some layers and not others.
ZooModel k_quant_friendly_llama() {
    return {"test-llama-256", "test llama", ZooFamily::Llama, 8, 256, 512, 4, 2, 64, 512, 256, 10000.f, 1e-5f, false};
}

// Runs a decoder on a few tokens; the logits must be finite and spread: not
// flat (a model that ignores its input) and, for a whole model, not
// saturated (one token certain). One layer of a model whose head is tied to
// its embeddings does saturate: the last token's own embedding still
// dominates the residual, most of all under Gemma's sqrt(n_embd) scaling.
enum class Depth { OneLayer, Whole };
void check_forward(Model& model, Depth depth) {
    ThreadPool pool;
    KvCache cache = model.make_kv_cache(16);
    const std::vector<std::int32_t> tokens{1, 200, 3000 % model.config().n_vocab, 42, 7};
    std::vector<std::int32_t> positions(tokens.size());
    std::iota(positions.begin(), positions.end(), 0);
    const std::vector<float> logits = model.forward(pool, tokens, positions, cache, LogitRows::All);
    QCOMPARE(logits.size(), tokens.size() * static_cast<std::size_t>(model.config().n_vocab));
    QVERIFY(std::all_of(logits.begin(), logits.end(), [](float x) { return std::isfinite(x); }));
    const std::size_t n_vocab = static_cast<std::size_t>(model.config().n_vocab);
    const std::vector<float> last(logits.end() - static_cast<std::ptrdiff_t>(n_vocab), logits.end());
    const double mean = std::accumulate(last.begin(), last.end(), 0.0) / static_cast<double>(n_vocab);
    double variance = 0;
    for (const float x : last)
        variance += (x - mean) * (x - mean);
    const double stddev = std::sqrt(variance / static_cast<double>(n_vocab));
    QVERIFY2(stddev > 0.1 && stddev < 100, qPrintable(QString("logit stddev %1").arg(stddev)));
    double sum = 0;
    const float top = *std::max_element(last.begin(), last.end());
    for (const float x : last)
        sum += std::exp(x - top);
    if (depth == Depth::Whole)
        QVERIFY2(1 / sum < 0.99, qPrintable(QString("top probability %1").arg(1 / sum)));
}

// Loads the file; skips (with the engine's reason) an architecture or
// feature the engine does not run yet, so each family is tested as it lands.
std::unique_ptr<Model> load_or_skip(const GgufFile& file, bool& skipped, QString& reason) {
    skipped = false;
    try {
        return load_model(file);
    } catch (const ModelError& e) {
        const std::string what = e.what();
        if (what.find("not supported") == std::string::npos)
            throw;
        skipped = true;
        reason = QString::fromStdString(what);
        return nullptr;
    }
}

}  // namespace

class RandomModelTest : public QObject {
    Q_OBJECT

private slots:
    // Parameter counts as the models' cards and safetensors headers give
    // them (the BERT pooler, which GGUF drops, excluded).
    void zooParameterCounts_data() {
        QTest::addColumn<QString>("name");
        QTest::addColumn<double>("parameters");
        QTest::newRow("smollm2-135m") << "smollm2-135m" << 134515008.0;
        QTest::newRow("smollm2-360m") << "smollm2-360m" << 361821120.0;
        QTest::newRow("smollm2-1.7b") << "smollm2-1.7b" << 1711376384.0;
        QTest::newRow("llama-3.2-1b") << "llama-3.2-1b" << 1235814400.0;
        QTest::newRow("llama-3.1-8b") << "llama-3.1-8b" << 8030261248.0;
        QTest::newRow("mistral-7b") << "mistral-7b" << 7248023552.0;
        QTest::newRow("qwen2.5-0.5b") << "qwen2.5-0.5b" << 494032768.0;
        QTest::newRow("qwen2.5-7b") << "qwen2.5-7b" << 7615616512.0;
        QTest::newRow("qwen3-0.6b") << "qwen3-0.6b" << 596049920.0;
        QTest::newRow("qwen3-8b") << "qwen3-8b" << 8190735360.0;
        QTest::newRow("qwen3-30b-a3b") << "qwen3-30b-a3b" << 30532122624.0;
        // The mixtures of experts below: 14.3B, 6.9B, 46.7B and 15.7B on
        // their cards, counted exactly from their config.json.
        QTest::newRow("qwen1.5-moe-a2.7b") << "qwen1.5-moe-a2.7b" << 14315784192.0;
        QTest::newRow("olmoe-1b-7b") << "olmoe-1b-7b" << 6919161856.0;
        QTest::newRow("mixtral-8x7b") << "mixtral-8x7b" << 46702792704.0;
        QTest::newRow("deepseek-v2-lite") << "deepseek-v2-lite" << 15706484224.0;
        QTest::newRow("gemma3-270m") << "gemma3-270m" << 268098176.0;
        QTest::newRow("gemma3-1b") << "gemma3-1b" << 999885952.0;
        QTest::newRow("all-minilm-l6-v2") << "all-minilm-l6-v2" << 22565376.0;
    }
    void zooParameterCounts() {
        QFETCH(QString, name);
        QFETCH(double, parameters);
        const ModelLayout layout = zoo_model_layout(name.toStdString());
        std::int64_t counted = 0;
        for (const TensorLayout& tensor : layout.tensors)
            if (tensor.name != "rope_freqs.weight")  // llama.cpp's, computed from config.json
                counted += tensor.n_elements();
        QCOMPARE(static_cast<double>(counted), parameters);
    }

    void everyZooModelIsTested() {
        QCOMPARE(static_cast<int>(zoo_models().size()), 18);
    }

    void unknownNameListsTheKnownOnes() {
        try {
            zoo_model_layout("llama-9000");
            QFAIL("no error");
        } catch (const ModelError& e) {
            const QString what = e.what();
            QVERIFY(what.contains("llama-9000"));
            QVERIFY(what.contains("smollm2-135m") && what.contains("all-minilm-l6-v2"));
        }
    }

    // The zoo's layouts are those of the real files llama.cpp wrote for
    // these models: every tensor name and shape, and the hyper-parameters.
    void layoutMatchesRealFile_data() {
        QTest::addColumn<QString>("name");
        QTest::addColumn<QString>("file");
        QTest::newRow("smollm2-135m") << "smollm2-135m" << "SmolLM2-135M-Instruct.Q4_1.gguf";
        QTest::newRow("gemma3-270m") << "gemma3-270m" << "gemma-3-270m-q4_k_m.gguf";
    }
    void layoutMatchesRealFile() {
        QFETCH(QString, name);
        QFETCH(QString, file);
        const std::filesystem::path path = std::filesystem::path(default_models_directory()) / file.toStdString();
        if (!std::filesystem::exists(path))
            QSKIP("the model is not installed (installer/fetch-models.sh)");
        const GgufFile real = GgufFile::open(path);
        const ModelLayout layout = zoo_model_layout(name.toStdString());
        std::map<std::string, std::vector<std::int64_t>> real_shapes;
        for (const GgufTensor& tensor : real.tensors())
            real_shapes[std::string(tensor.name)] = shape_of(tensor);
        std::map<std::string, std::vector<std::int64_t>> zoo_shapes;
        for (const TensorLayout& tensor : layout.tensors)
            zoo_shapes[tensor.name] = tensor.ne;
        QCOMPARE(zoo_shapes, real_shapes);
        for (const MetadataEntry& entry : layout.metadata) {
            if (!entry.key.starts_with(layout.architecture + "."))
                continue;
            const GgufValue* value = real.find(entry.key);
            QVERIFY2(value != nullptr, entry.key.c_str());
            if (entry.value.type == GgufValueType::F32)
                QCOMPARE(real.get_f32(entry.key), static_cast<float>(std::get<double>(entry.value.data)));
            else
                QCOMPARE(real.get_u32(entry.key),
                         static_cast<std::uint32_t>(std::get<std::uint64_t>(entry.value.data)));
        }
    }

    // Every named model writes (one layer, and a first layer with experts
    // where dense ones lead: the widths and vocabulary are
    // real, the file small) and loads; decoders run with finite logits,
    // encoders encode. Architectures the engine does not run yet skip.
    void everyZooModelWritesAndLoads_data() {
        QTest::addColumn<QString>("name");
        for (const ZooModel& model : zoo_models()) {
            const std::string name(model.name);
            QTest::newRow(name.c_str()) << QString::fromStdString(name);
        }
    }
    void everyZooModelWritesAndLoads() {
        QFETCH(QString, name);
        QTemporaryDir dir;
        const std::filesystem::path path = dir.filePath("model.gguf").toStdString();
        ThreadPool pool;
        const ModelLayout layout = zoo_model_layout(name.toStdString());
        // One layer, or the leading dense ones and the first with experts.
        const int n_layers = zoo_model(name.toStdString()).mla.first_k_dense_replace + 1;
        write_random_model(layout, {.scheme = quant_scheme("Q4_0"), .seed = 1, .n_layers = n_layers}, path, pool);
        const GgufFile file = GgufFile::open(path);
        QCOMPARE(file.architecture(), layout.architecture);
        QCOMPARE(file.get_u32(layout.architecture + ".block_count"), static_cast<std::uint32_t>(n_layers));
        QCOMPARE(file.get_u32("general.file_type"), 2u);
        for (const GgufTensor& tensor : file.tensors())
            QVERIFY2(tensor_block_index(tensor.name) < n_layers, std::string(tensor.name).c_str());
        bool skipped = false;
        QString reason;
        const std::unique_ptr<Model> model = load_or_skip(file, skipped, reason);
        if (skipped)
            QSKIP(qPrintable(reason));
        if (model->is_encoder()) {
            const std::vector<float> hidden = model->encode(pool, std::vector<std::int32_t>{101, 2000, 3000, 102});
            QVERIFY(std::all_of(hidden.begin(), hidden.end(), [](float x) { return std::isfinite(x); }));
        } else {
            check_forward(*model, Depth::OneLayer);
        }
    }

    // Whole models, every layer, as a benchmark would run them. Q4_K's
    // reference quantizer costs ~50 ns a weight (30 s of CPU for
    // qwen3-0.6b's 596M), so Q4_K runs on SmolLM2-135M (whose 576-wide rows
    // also take the fallbacks) and Qwen3 at Q8_0.
    void fullModelRunsWithFiniteLogits_data() {
        QTest::addColumn<QString>("name");
        QTest::addColumn<QString>("scheme");
        QTest::newRow("smollm2-135m Q4_K") << "smollm2-135m" << "Q4_K";
        QTest::newRow("qwen3-0.6b Q8_0") << "qwen3-0.6b" << "Q8_0";
    }
    void fullModelRunsWithFiniteLogits() {
        QFETCH(QString, name);
        QFETCH(QString, scheme);
        QTemporaryDir dir;
        const std::filesystem::path path = dir.filePath("model.gguf").toStdString();
        ThreadPool pool;
        const ModelLayout layout = zoo_model_layout(name.toStdString());
        write_random_model(layout, {.scheme = quant_scheme(scheme.toStdString()), .seed = 2}, path, pool);
        const GgufFile file = GgufFile::open(path);
        QCOMPARE(file.get_u32(layout.architecture + ".block_count"),
                 static_cast<std::uint32_t>(zoo_model(name.toStdString()).n_layers));
        bool skipped = false;
        QString reason;
        const std::unique_ptr<Model> model = load_or_skip(file, skipped, reason);
        if (skipped)
            QSKIP(qPrintable(reason));
        check_forward(*model, Depth::Whole);
    }

    void sameSeedSameBytes() {
        QTemporaryDir dir;
        const ModelLayout layout = zoo_model_layout("smollm2-135m");
        const RandomModelOptions options{.scheme = quant_scheme("Q4_K_M"), .seed = 7, .n_layers = 2};
        const std::filesystem::path a = dir.filePath("a.gguf").toStdString();
        const std::filesystem::path b = dir.filePath("b.gguf").toStdString();
        const std::filesystem::path c = dir.filePath("c.gguf").toStdString();
        {
            ThreadPool pool(1);
            write_random_model(layout, options, a, pool);
        }
        {
            ThreadPool pool(3);  // another split of the rows between threads
            write_random_model(layout, options, b, pool);
            RandomModelOptions other = options;
            other.seed = 8;
            write_random_model(layout, other, c, pool);
        }
        const std::vector<char> bytes_a = file_bytes(a);
        QVERIFY(bytes_a == file_bytes(b));
        const std::vector<char> bytes_c = file_bytes(c);
        QCOMPARE(bytes_c.size(), bytes_a.size());
        QVERIFY(bytes_c != bytes_a);
    }

    // Weights have the scale the header promises: std 1/sqrt(fan_in), mean 0.
    void weightsHaveTheirScale() {
        QTemporaryDir dir;
        const std::filesystem::path path = dir.filePath("model.gguf").toStdString();
        ThreadPool pool;
        write_random_model(zoo_model_layout(k_quant_friendly_llama()), {.scheme = quant_scheme("F32"), .seed = 3},
                           path, pool);
        const GgufFile file = GgufFile::open(path);
        const GgufTensor& down = file.tensor("blk.0.ffn_down.weight");  // fan-in 512
        const auto* values = reinterpret_cast<const float*>(down.data.data());
        const std::int64_t n = down.n_elements();
        const double mean = std::accumulate(values, values + n, 0.0) / static_cast<double>(n);
        double variance = 0;
        for (std::int64_t i = 0; i < n; ++i)
            variance += (values[i] - mean) * (values[i] - mean);
        const double stddev = std::sqrt(variance / static_cast<double>(n));
        QVERIFY2(std::abs(mean) < 0.002, qPrintable(QString::number(mean)));
        QVERIFY2(std::abs(stddev * std::sqrt(512.0) - 1) < 0.01, qPrintable(QString::number(stddev)));
        const GgufTensor& norm = file.tensor("blk.0.attn_norm.weight");
        const auto* scales = reinterpret_cast<const float*>(norm.data.data());
        QVERIFY(std::all_of(scales, scales + norm.n_elements(), [](float x) { return x == 1.f; }));
    }

    // Each --quant gives its tensors that type: matrices the scheme's type
    // (the mixes by llama.cpp's rules), vectors F32.
    void eachSchemeGivesItsTypes_data() {
        QTest::addColumn<QString>("scheme_name");
        for (const std::string_view name : quant_scheme_names())
            QTest::newRow(std::string(name).c_str()) << QString::fromStdString(std::string(name));
    }
    void eachSchemeGivesItsTypes() {
        QFETCH(QString, scheme_name);
        const QuantScheme scheme = quant_scheme(scheme_name.toStdString());
        QTemporaryDir dir;
        const std::filesystem::path path = dir.filePath("model.gguf").toStdString();
        ThreadPool pool;
        write_random_model(zoo_model_layout(k_quant_friendly_llama()), {.scheme = scheme, .seed = 4}, path, pool);
        const GgufFile file = GgufFile::open(path);
        QCOMPARE(file.get_u32("general.file_type"), scheme.file_type);
        // Layers 0 and 7 (the first and last eighth) and 3 and 6 (every third
        // between) get Q6_K attn_v and ffn_down under the _M mixes; Q4_K_S
        // gives the first 4 layers' attn_v and layer 0's ffn_down Q5_K.
        const std::set<std::string> more_bits{"blk.0.", "blk.3.", "blk.6.", "blk.7."};
        const std::set<std::string> first_four{"blk.0.", "blk.1.", "blk.2.", "blk.3."};
        for (const GgufTensor& tensor : file.tensors()) {
            const std::string name(tensor.name);
            const std::string block = name.substr(0, name.find('.', 4) + 1);
            GgmlType expected = scheme.base;
            if (tensor.n_dims == 1)
                expected = GgmlType::F32;
            else if (scheme.mix != QuantMix::Pure && name == "output.weight")
                expected = GgmlType::Q6_K;
            else if (scheme.mix == QuantMix::Medium &&
                     (name.ends_with("attn_v.weight") || name.ends_with("ffn_down.weight")) && more_bits.contains(block))
                expected = GgmlType::Q6_K;
            else if (scheme.name == "Q4_K_S" && ((name.ends_with("attn_v.weight") && first_four.contains(block)) ||
                                                 (name.ends_with("ffn_down.weight") && block == "blk.0.")))
                expected = GgmlType::Q5_K;
            QVERIFY2(tensor.type == expected,
                     qPrintable(QString("%1 is %2").arg(name.c_str()).arg(std::string(tensor.type_name()).c_str())));
        }
        std::unique_ptr<Model> model = load_model(file);
        check_forward(*model, Depth::Whole);
    }

    // Rows that are not a whole number of blocks fall back as llama.cpp's
    // do: SmolLM2-135M's 576-wide rows (2.25 K-quant blocks).
    void rowsThatDoNotFitFallBack() {
        const std::vector<std::string> names{"token_embd.weight", "blk.0.attn_q.weight", "blk.0.ffn_down.weight"};
        const std::vector<std::int64_t> narrow{576, 576};
        const std::vector<std::int64_t> wide{1536, 576};
        auto type = [&](const char* scheme, const std::string& name, const std::vector<std::int64_t>& ne) {
            return QuantPlan(quant_scheme(scheme), names).type_of(name, ne);
        };
        QCOMPARE(type("Q4_K", "blk.0.attn_q.weight", narrow), GgmlType::Q5_0);
        QCOMPARE(type("Q5_K", "blk.0.attn_q.weight", narrow), GgmlType::Q5_1);
        QCOMPARE(type("Q6_K", "blk.0.attn_q.weight", narrow), GgmlType::Q8_0);
        QCOMPARE(type("Q3_K", "blk.0.attn_q.weight", narrow), GgmlType::Q4_0);
        QCOMPARE(type("Q4_K", "blk.0.ffn_down.weight", wide), GgmlType::Q4_K);
        // Tied head: token_embd is the output, Q6_K under a mix, here Q8_0
        // because Q6_K does not fit (as in the real SmolLM2 Q4_K_M files).
        QCOMPARE(type("Q4_K_M", "token_embd.weight", std::vector<std::int64_t>{576, 49152}), GgmlType::Q8_0);
        QCOMPARE(type("Q4_K_M", "token_embd.weight", std::vector<std::int64_t>{1024, 49152}), GgmlType::Q6_K);
        const std::vector<std::int64_t> odd{40, 8};  // not even a 32-block
        QCOMPARE(type("Q4_0", "blk.0.attn_q.weight", odd), GgmlType::F16);
    }

    // llama.cpp's rules for mixtures of experts under Q4_K_M: Mixtral's 8
    // experts take Q8_0 attn_k and attn_v and a Q5_K attn_output; experts'
    // ffn_down follow the layer rule like a dense ffn_down; DeepSeek's
    // 128-wide attn_k_b rows fall back to Q5_0, and so on.
    void mixturesOfExpertsTakeLlamaCppsTypes() {
        struct Expected {
            const char* model;
            int n_expert;  // as the plan is told; 0: as if the model had none
            const char* tensor;
            GgmlType type;
            const char* scheme = "Q4_K_M";
        };
        const Expected expected[] = {
            // Q4_K_S: the same 8-expert rules; its own Q5_K for the first
            // layers' attn_v (4 layers) and ffn_down (the first eighth: 4 of 32).
            {"mixtral-8x7b", 8, "blk.5.attn_v.weight", GgmlType::Q8_0, "Q4_K_S"},
            {"mixtral-8x7b", 8, "blk.5.attn_output.weight", GgmlType::Q5_K, "Q4_K_S"},
            {"mixtral-8x7b", 8, "blk.3.ffn_down_exps.weight", GgmlType::Q5_K, "Q4_K_S"},
            {"mixtral-8x7b", 8, "blk.4.ffn_down_exps.weight", GgmlType::Q4_K, "Q4_K_S"},
            {"mixtral-8x7b", 0, "blk.3.attn_v.weight", GgmlType::Q5_K, "Q4_K_S"},
            {"mixtral-8x7b", 0, "blk.4.attn_v.weight", GgmlType::Q4_K, "Q4_K_S"},
            {"mixtral-8x7b", 8, "blk.5.attn_k.weight", GgmlType::Q8_0, "Q5_K_S"},
            {"mixtral-8x7b", 8, "blk.5.attn_k.weight", GgmlType::Q8_0},
            {"mixtral-8x7b", 8, "blk.5.attn_v.weight", GgmlType::Q8_0},
            {"mixtral-8x7b", 8, "blk.5.attn_output.weight", GgmlType::Q5_K},
            {"mixtral-8x7b", 8, "blk.5.attn_q.weight", GgmlType::Q4_K},
            {"mixtral-8x7b", 8, "blk.0.ffn_down_exps.weight", GgmlType::Q6_K},
            {"mixtral-8x7b", 8, "blk.4.ffn_down_exps.weight", GgmlType::Q4_K},
            {"mixtral-8x7b", 8, "blk.4.ffn_gate_exps.weight", GgmlType::Q4_K},
            {"mixtral-8x7b", 0, "blk.5.attn_k.weight", GgmlType::Q4_K},  // the rule is Mixtral's
            {"deepseek-v2-lite", 64, "blk.3.attn_k_b.weight", GgmlType::Q5_0},
            {"deepseek-v2-lite", 64, "blk.3.attn_v_b.weight", GgmlType::Q4_K},
            // The experts' ffn_down rows are 1408 wide (5.5 blocks of 256): Q6_K
            // falls back to Q8_0 and Q4_K to Q5_0; the two shared experts' 2816 fit.
            {"deepseek-v2-lite", 64, "blk.5.ffn_down_exps.weight", GgmlType::Q8_0},
            {"deepseek-v2-lite", 64, "blk.5.ffn_down_shexp.weight", GgmlType::Q6_K},
            {"deepseek-v2-lite", 64, "blk.4.ffn_down_exps.weight", GgmlType::Q5_0},
            {"deepseek-v2-lite", 64, "blk.4.ffn_down_shexp.weight", GgmlType::Q4_K},
            {"deepseek-v2-lite", 64, "blk.4.attn_output.weight", GgmlType::Q4_K},
        };
        for (const Expected& e : expected) {
            const ModelLayout layout = zoo_model_layout(e.model);
            std::vector<std::string> names;
            for (const TensorLayout& tensor : layout.tensors) names.push_back(tensor.name);
            const auto tensor = std::find_if(layout.tensors.begin(), layout.tensors.end(),
                                             [&](const TensorLayout& t) { return t.name == e.tensor; });
            QVERIFY2(tensor != layout.tensors.end(), e.tensor);
            QVERIFY2(QuantPlan(quant_scheme(e.scheme), names, e.n_expert).type_of(e.tensor, tensor->ne) == e.type,
                     (std::string(e.scheme) + " " + e.model + " " + e.tensor).c_str());
        }
    }

    // The installed Gemma 3 270M is a Q4_K_M file llama-quantize wrote: the
    // plan gives every one of its tensors the type llama.cpp gave it (the
    // Q6_K/Q8_0 of attn_v and ffn_down layer by layer, the Q5_0 fallbacks of
    // 640-wide rows, the Q8_0 tied head).
    void q4KMMatchesLlamaCppFile() {
        const std::filesystem::path path = std::filesystem::path(default_models_directory()) / "gemma-3-270m-q4_k_m.gguf";
        if (!std::filesystem::exists(path))
            QSKIP("gemma-3-270m-q4_k_m.gguf is not installed (installer/fetch-models.sh)");
        const GgufFile real = GgufFile::open(path);
        std::vector<std::string> names;
        for (const GgufTensor& tensor : real.tensors())
            names.emplace_back(tensor.name);
        const QuantPlan plan(quant_scheme("Q4_K_M"), names);
        int quantized = 0;
        for (const GgufTensor& tensor : real.tensors()) {
            const std::vector<std::int64_t> ne = shape_of(tensor);
            if (!QuantPlan::is_quantizable(tensor.name, ne)) {
                QCOMPARE(tensor.type, GgmlType::F32);
                continue;
            }
            ++quantized;
            QVERIFY2(plan.type_of(tensor.name, ne) == tensor.type, std::string(tensor.name).c_str());
        }
        QCOMPARE(quantized, 18 * 7 + 1);
    }

    // Llama 3's rope_freqs.weight as convert_hf_to_gguf computes it, here
    // against tools/make_rope_goldens.py's file (factor 8, low 1, high 4,
    // original context 32, head size 16).
    void llama3RopeFactorsMatchTheConverter() {
        const GgufFile golden = GgufFile::open(kTestData / "rope_llama3" / "model.gguf");
        const GgufTensor& expected = golden.tensor("rope_freqs.weight");
        const ZooModel model{"test-llama3", "test", ZooFamily::Llama, 2, 64, 128, 4, 2, 16, 256, 256, 10000.f,
                             1e-5f, true, 0, Llama3RopeScaling{8.f, 1.f, 4.f, 32}};
        const ModelLayout layout = zoo_model_layout(model);
        const auto factors = std::find_if(layout.tensors.begin(), layout.tensors.end(),
                                          [](const TensorLayout& t) { return t.name == "rope_freqs.weight"; });
        QVERIFY(factors != layout.tensors.end());
        QCOMPARE(factors->ne, shape_of(expected));
        const auto* values = reinterpret_cast<const float*>(expected.data.data());
        for (std::size_t i = 0; i < factors->values.size(); ++i)
            QVERIFY2(std::abs(factors->values[i] - values[i]) < 1e-5f * values[i], qPrintable(QString::number(i)));
    }

    void unknownSchemeListsTheKnownOnes() {
        try {
            quant_scheme("Q9_X");
            QFAIL("no error");
        } catch (const ModelError& e) {
            const QString what = e.what();
            QVERIFY(what.contains("Q9_X") && what.contains("Q4_K_M") && what.contains("BF16"));
        }
        QCOMPARE(quant_scheme("q4_k_m").name, std::string("Q4_K_M"));
    }

    // --like FILE copies a file's shapes and metadata (tokenizer included).
    void likeFileCopiesShapesAndMetadata() {
        const GgufFile source = GgufFile::open(kTestData / "llama_tiny" / "model.gguf");
        QTemporaryDir dir;
        const std::filesystem::path path = dir.filePath("like.gguf").toStdString();
        ThreadPool pool;
        write_random_model(model_layout_of(source), {.scheme = quant_scheme("Q8_0"), .seed = 5}, path, pool);
        const GgufFile copy = GgufFile::open(path);
        QCOMPARE(copy.tensors().size(), source.tensors().size());
        for (std::size_t i = 0; i < source.tensors().size(); ++i) {
            QCOMPARE(copy.tensors()[i].name, source.tensors()[i].name);
            QCOMPARE(shape_of(copy.tensors()[i]), shape_of(source.tensors()[i]));
        }
        for (const GgufKeyValue& entry : source.metadata())
            if (entry.key != "general.file_type")
                QVERIFY2(copy.find(entry.key) != nullptr, std::string(entry.key).c_str());
        QCOMPARE(copy.get_u32("general.file_type"), 7u);
        QCOMPARE(copy.get_string("general.name"), source.get_string("general.name"));
        std::unique_ptr<Model> model = load_model(copy);
        QCOMPARE(model->config().n_embd, 64);
    }

    // A file whose writing fails leaves the file it would replace as it was,
    // and no partial file beside it.
    void failedWriteLeavesExistingFile() {
        QTemporaryDir dir;
        const std::filesystem::path path = dir.filePath("model.gguf").toStdString();
        {
            std::ofstream(path) << "the old file";
        }
        GgufWriter writer;
        writer.add_string("general.architecture", "llama");
        const std::vector<std::int64_t> ne{32};
        writer.add_tensor("t", GgmlType::F32, ne,
                          [](std::span<std::uint8_t>) { throw std::runtime_error("disk on fire"); });
        QVERIFY_THROWS_EXCEPTION(std::runtime_error, write_model_file(writer, path));
        const std::vector<char> bytes = file_bytes(path);
        QCOMPARE(std::string(bytes.begin(), bytes.end()), std::string("the old file"));
        QCOMPARE(static_cast<int>(std::distance(std::filesystem::directory_iterator(dir.path().toStdString()),
                                                std::filesystem::directory_iterator())),
                 1);
    }

    // A streamed tensor's bytes land where the header says, as an in-memory one's do.
    void streamedTensorsMatchBufferedOnes() {
        const std::vector<std::int64_t> ne{32, 3};
        std::vector<std::uint8_t> data(32 * 3 * 4);
        std::iota(data.begin(), data.end(), 0);
        GgufWriter buffered;
        buffered.add_tensor("a", GgmlType::F32, ne, data);
        buffered.add_tensor("b", GgmlType::F32, ne, data);
        GgufWriter streamed;
        streamed.add_tensor("a", GgmlType::F32, ne, data);
        streamed.add_tensor("b", GgmlType::F32, ne,
                            [&](std::span<std::uint8_t> out) { std::copy(data.begin(), data.end(), out.begin()); });
        QCOMPARE(streamed.to_bytes(), buffered.to_bytes());
        QCOMPARE(streamed.file_size(), static_cast<std::uint64_t>(buffered.to_bytes().size()));
        QTemporaryDir dir;
        const std::filesystem::path path = dir.filePath("s.gguf").toStdString();
        streamed.write(path);
        const std::vector<char> written = file_bytes(path);
        const std::vector<std::uint8_t> expected = buffered.to_bytes();
        QVERIFY(std::equal(written.begin(), written.end(), expected.begin(), expected.end(),
                           [](char a, std::uint8_t b) { return static_cast<std::uint8_t>(a) == b; }));
    }
};

QTEST_GUILESS_MAIN(RandomModelTest)
#include "tst_random_model.moc"
