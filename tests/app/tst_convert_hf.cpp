// `folio convert hf` and `folio embed`: a tiny random BERT folder
// (tools/make_embedding_goldens.py) converted to the GGUF llama.cpp's
// converter writes and embedding like sentence-transformers; the installed
// all-MiniLM-L6-v2 folder the same (skipped when absent); bad folders, each
// a one-line error that leaves an existing --out alone.

#include <QJsonArray>
#include <QJsonDocument>
#include <QJsonObject>
#include <QTemporaryDir>
#include <QTest>

#include <cmath>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <functional>
#include <string>
#include <type_traits>
#include <variant>
#include <vector>

#include "app/convert_hf.h"
#include "engine/embedder.h"
#include "engine/gguf.h"
#include "engine/model.h"
#include "engine/model_paths.h"
#include "engine/thread_pool.h"
#include "engine/vocab.h"
#include "tests/support/folio_process.h"
#include "tests/support/golden_json.h"

using namespace folio;

namespace {

const std::filesystem::path kTestData = FOLIO_TEST_DATA;
const std::filesystem::path kTinyFolder = kTestData / "bert_tiny_hf";

using folio::test::json_ints;
using folio::test::read_json_object;
using folio::test::run_folio;
using Run = folio::test::FolioRun;

std::filesystem::path path_of(const QTemporaryDir& dir) {
    return dir.path().toStdString();
}

std::string read_text(const std::filesystem::path& path) {
    std::ifstream in(path, std::ios::binary);
    return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

void write_text(const std::filesystem::path& path, const std::string& text) {
    std::ofstream(path, std::ios::binary | std::ios::trunc) << text;
}

// A copy of the tiny folder that `edit` may spoil.
std::filesystem::path tiny_copy(const QTemporaryDir& dir, const std::function<void(const std::filesystem::path&)>& edit) {
    const std::filesystem::path copy = path_of(dir) / "bert_tiny_hf";
    std::filesystem::copy(kTinyFolder, copy, std::filesystem::copy_options::recursive);
    edit(copy);
    return copy;
}

bool same_value(const engine::GgufValue& a, const engine::GgufValue& b) {
    if (a.type != b.type)
        return false;
    if (a.data.index() != b.data.index())
        return false;
    if (a.type != engine::GgufValueType::Array)
        return std::visit(
            [&](const auto& x) {
                using T = std::decay_t<decltype(x)>;
                if constexpr (std::is_same_v<T, engine::GgufArray>)
                    return false;
                else
                    return std::get<T>(b.data) == x;
            },
            a.data);
    const auto& x = std::get<engine::GgufArray>(a.data);
    const auto& y = std::get<engine::GgufArray>(b.data);
    return x.element_type == y.element_type && x.size == y.size && x.strings == y.strings &&
           std::equal(x.packed.begin(), x.packed.end(), y.packed.begin(), y.packed.end());
}

// A golden of tools/make_embedding_goldens.py: texts, token ids, embeddings.
struct GoldenText {
    std::string text;
    std::vector<std::int32_t> ids;
    std::vector<float> embedding;
};

std::vector<GoldenText> read_golden(const std::filesystem::path& path) {
    std::vector<GoldenText> texts;
    for (const QJsonValue& value : read_json_object(path)["texts"].toArray()) {
        const QJsonObject object = value.toObject();
        GoldenText text{object["text"].toString().toStdString(), json_ints(object["ids"]), {}};
        for (const QJsonValue& x : object["embedding"].toArray())
            text.embedding.push_back(static_cast<float>(x.toDouble()));
        texts.push_back(std::move(text));
    }
    return texts;
}

const std::filesystem::path kLoraFolder = kTestData / "lora_tiny";
const std::filesystem::path kLlamaTiny = kTestData / "llama_tiny/model.gguf";

// The lowest cosine between the model's embeddings and the golden's, or -1
// when a text's tokens differ.
double lowest_cosine(const std::filesystem::path& model, const std::filesystem::path& golden_path) {
    engine::Embedder embedder = engine::Embedder::open(model);
    const std::vector<GoldenText> golden = read_golden(golden_path);
    std::vector<std::string> texts;
    for (const GoldenText& text : golden)
        texts.push_back(text.text);
    engine::ThreadPool pool(2);
    const std::vector<engine::Embedding> ours = embedder.embed(texts, pool);
    double lowest = 1;
    for (std::size_t i = 0; i < golden.size(); ++i) {
        bool truncated = false;
        if (embedder.tokenize(golden[i].text, truncated) != golden[i].ids)
            return -1;
        double dot = 0, ours_norm = 0, golden_norm = 0;
        for (std::size_t k = 0; k < golden[i].embedding.size(); ++k) {
            dot += static_cast<double>(ours[i].vector[k]) * golden[i].embedding[k];
            ours_norm += static_cast<double>(ours[i].vector[k]) * ours[i].vector[k];
            golden_norm += static_cast<double>(golden[i].embedding[k]) * golden[i].embedding[k];
        }
        lowest = std::min(lowest, dot / std::sqrt(ours_norm * golden_norm));
    }
    return lowest;
}

// ours holds reference's tensors, byte for byte.
void expect_same_tensors(const engine::GgufFile& ours, const engine::GgufFile& reference) {
    QCOMPARE(ours.tensors().size(), reference.tensors().size());
    for (const engine::GgufTensor& expected : reference.tensors()) {
        const engine::GgufTensor* tensor = ours.find_tensor(expected.name);
        QVERIFY2(tensor != nullptr && tensor->type == expected.type && tensor->ne == expected.ne &&
                     std::equal(tensor->data.begin(), tensor->data.end(), expected.data.begin(), expected.data.end()),
                 std::string(expected.name).c_str());
    }
}

// Converting `request` is refused with a one-line ConvertError that says
// `message`, and what an earlier conversion left at request.out is kept.
void expect_refused(const app::ConvertHfRequest& request, const QString& message) {
    write_text(request.out, "an earlier conversion");
    try {
        app::convert_hf(request);
        QFAIL("the spoilt folder converted");
    } catch (const app::ConvertError& error) {
        const std::string what = error.what();
        QVERIFY2(what.find(message.toStdString()) != std::string::npos, what.c_str());
        QVERIFY2(what.find('\n') == std::string::npos, what.c_str());
    }
    QCOMPARE(read_text(request.out), std::string("an earlier conversion"));
}

}  // namespace

class ConvertHfTest : public QObject {
    Q_OBJECT

private slots:
    void tinyIsWhatLlamaCppWrites();
    void crossEncoderIsWhatLlamaCppWrites();
    void tinyEmbedsLikeSentenceTransformers_data();
    void tinyEmbedsLikeSentenceTransformers();
    void newSentenceTransformersModulesAreRead();
    void maxSeqLengthBecomesMaxTokens();
    void installedMiniLmEmbedsLikeSentenceTransformers();
    void decodersAreWhatLlamaCppWrites_data();
    void decodersAreWhatLlamaCppWrites();
    void specialTokenIdsFallBackOnConfigJson();
    void deepSeekPreTokenizersAreNamed_data();
    void deepSeekPreTokenizersAreNamed();
    void decoderFoldersItCannotConvert_data();
    void decoderFoldersItCannotConvert();
    void badFoldersAreOneLineErrors_data();
    void badFoldersAreOneLineErrors();
    void cliConvertsAndEmbeds();
    void cliErrorsAreOneLine();
    void peftAdapterIsWhatLlamaCppWrites_data();
    void peftAdapterIsWhatLlamaCppWrites();
    void peftExpertsAdapterIsWhatLlamaCppWrites_data();
    void peftExpertsAdapterIsWhatLlamaCppWrites();
    void peftFoldersItCannotConvert_data();
    void peftFoldersItCannotConvert();
    void cliConvertsAPeftAdapterAndGeneratesWithIt();
};

// Every metadata key and tensor of the GGUF the tools script wrote with
// gguf-py as convert_hf_to_gguf.py does, byte for byte; ours adds only
// general.name and the folio.embedding keys (normalize, max_tokens).
void ConvertHfTest::tinyIsWhatLlamaCppWrites() {
    QTemporaryDir dir;
    const std::filesystem::path out = path_of(dir) / "tiny.gguf";
    const app::ConvertHfResult result = app::convert_hf({kTinyFolder, out, app::ConvertedType::F16});
    QCOMPARE(result.hf_architecture, std::string("BertModel"));
    QCOMPARE(result.architecture, std::string("bert"));
    const engine::GgufFile ours = engine::GgufFile::open(out);
    const engine::GgufFile reference = engine::GgufFile::open(kTestData / "bert_tiny/model.gguf");
    QCOMPARE(result.file_bytes, ours.file_size());

    for (const engine::GgufKeyValue& kv : reference.metadata()) {
        const engine::GgufValue* value = ours.find(kv.key);
        QVERIFY2(value != nullptr, std::string(kv.key).c_str());
        QVERIFY2(same_value(*value, kv.value), std::string(kv.key).c_str());
    }
    for (const engine::GgufKeyValue& kv : ours.metadata())
        QVERIFY2(reference.find(kv.key) || kv.key == "general.name" || kv.key == "folio.embedding.normalize" ||
                     kv.key == "folio.embedding.max_tokens",
                 std::string(kv.key).c_str());
    QCOMPARE(ours.get_string("general.name"), std::string_view("bert_tiny_hf"));
    QCOMPARE(ours.get_bool("folio.embedding.normalize"), true);
    QCOMPARE(ours.get_u32("folio.embedding.max_tokens"), 64u);  // sentence_bert_config.json's max_seq_length

    QCOMPARE(result.n_tensors, static_cast<int>(reference.tensors().size()));
    expect_same_tensors(ours, reference);
}

// A BertForSequenceClassification keeps its pooler and classifier (cls,
// cls.output) and is marked a reranker (bert.pooling_type 4), as llama.cpp
// writes one; the engine's Reranker then scores pairs as transformers does
// (tests/engine/tst_reranker.cpp checks the scores of the reference file).
void ConvertHfTest::crossEncoderIsWhatLlamaCppWrites() {
    QTemporaryDir dir;
    const std::filesystem::path out = path_of(dir) / "cross.gguf";
    const app::ConvertHfResult result =
        app::convert_hf({kTestData / "bert_cross_tiny_hf", out, app::ConvertedType::F16});
    QCOMPARE(result.hf_architecture, std::string("BertForSequenceClassification"));
    const engine::GgufFile ours = engine::GgufFile::open(out);
    const engine::GgufFile reference = engine::GgufFile::open(kTestData / "bert_cross_tiny/model.gguf");
    for (const engine::GgufKeyValue& kv : reference.metadata()) {
        const engine::GgufValue* value = ours.find(kv.key);
        QVERIFY2(value != nullptr, std::string(kv.key).c_str());
        QVERIFY2(same_value(*value, kv.value), std::string(kv.key).c_str());
    }
    QCOMPARE(ours.get_u32("bert.pooling_type"), 4u);
    QVERIFY(ours.find("folio.embedding.normalize") == nullptr);
    expect_same_tensors(ours, reference);
}

void ConvertHfTest::tinyEmbedsLikeSentenceTransformers_data() {
    QTest::addColumn<int>("type");
    QTest::newRow("f16") << static_cast<int>(app::ConvertedType::F16);
    QTest::newRow("f32") << static_cast<int>(app::ConvertedType::F32);
}

void ConvertHfTest::tinyEmbedsLikeSentenceTransformers() {
    QFETCH(int, type);
    QTemporaryDir dir;
    const std::filesystem::path out = path_of(dir) / "tiny.gguf";
    app::convert_hf({kTinyFolder, out, static_cast<app::ConvertedType>(type)});
    const engine::GgufFile file = engine::GgufFile::open(out);
    QCOMPARE(file.tensor("blk.0.attn_q.weight").type,
             type == static_cast<int>(app::ConvertedType::F16) ? engine::GgmlType::F16 : engine::GgmlType::F32);
    QCOMPARE(file.tensor("position_embd.weight").type, engine::GgmlType::F32);
    const double lowest = lowest_cosine(out, kTestData / "bert_tiny/golden.json");
    qInfo("lowest cosine %.7f", lowest);
    QVERIFY2(lowest >= 0.999, qPrintable(QString::number(lowest)));
}

// sentence-transformers 6 writes {"pooling_mode": "mean"} and longer module
// type names; a model without Normalize is marked so.
void ConvertHfTest::newSentenceTransformersModulesAreRead() {
    QTemporaryDir dir;
    const std::filesystem::path folder = tiny_copy(dir, [](const std::filesystem::path& copy) {
        write_text(copy / "modules.json",
                   R"([{"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.base.modules.transformer.Transformer"},
                       {"idx": 1, "name": "1", "path": "1_Pooling",
                        "type": "sentence_transformers.sentence_transformer.modules.pooling.Pooling"}])");
        write_text(copy / "1_Pooling/config.json", R"({"embedding_dimension": 32, "pooling_mode": "mean"})");
    });
    const std::filesystem::path out = path_of(dir) / "mean.gguf";
    app::convert_hf({folder, out, app::ConvertedType::F16});
    const engine::GgufFile file = engine::GgufFile::open(out);
    QCOMPARE(file.get_u32("bert.pooling_type"), 1u);
    QCOMPARE(file.get_bool("folio.embedding.normalize"), false);
    const engine::Embedder embedder = engine::Embedder::open(out);
    QCOMPARE(embedder.pooling(), engine::Pooling::Mean);
    QVERIFY(!embedder.normalizes());
}

// sentence_bert_config.json's max_seq_length is where the embedder cuts;
// without the file, at the model's positions.
void ConvertHfTest::maxSeqLengthBecomesMaxTokens() {
    QTemporaryDir short_dir;
    const std::filesystem::path short_folder = tiny_copy(short_dir, [](const std::filesystem::path& copy) {
        write_text(copy / "sentence_bert_config.json", R"({"max_seq_length": 16, "do_lower_case": false})");
    });
    const std::filesystem::path short_out = path_of(short_dir) / "short.gguf";
    app::convert_hf({short_folder, short_out, app::ConvertedType::F16});
    QCOMPARE(engine::GgufFile::open(short_out).get_u32("folio.embedding.max_tokens"), 16u);
    QCOMPARE(engine::Embedder::open(short_out).max_tokens(), 16);

    QTemporaryDir plain_dir;
    const std::filesystem::path plain_folder = tiny_copy(plain_dir, [](const std::filesystem::path& copy) {
        std::filesystem::remove(copy / "sentence_bert_config.json");
    });
    const std::filesystem::path plain_out = path_of(plain_dir) / "plain.gguf";
    app::convert_hf({plain_folder, plain_out, app::ConvertedType::F16});
    QVERIFY(!engine::GgufFile::open(plain_out).find("folio.embedding.max_tokens"));
    QCOMPARE(engine::Embedder::open(plain_out).max_tokens(), 64);
}

void ConvertHfTest::installedMiniLmEmbedsLikeSentenceTransformers() {
    const std::filesystem::path folder =
        std::filesystem::path(engine::default_models_directory()) / "all-MiniLM-L6-v2-hf";
    if (!std::filesystem::is_regular_file(folder / "model.safetensors"))
        QSKIP("all-MiniLM-L6-v2-hf is not installed (installer/fetch-models.sh)");
    QTemporaryDir dir;
    const std::filesystem::path out = path_of(dir) / "minilm.gguf";
    const app::ConvertHfResult result = app::convert_hf({folder, out, app::ConvertedType::F16});
    QCOMPARE(result.n_tensors, 101);  // 5 embedding tensors + 6 layers × 16
    const engine::GgufFile file = engine::GgufFile::open(out);
    QCOMPARE(file.get_u32("bert.pooling_type"), 1u);
    QCOMPARE(file.get_u32("bert.context_length"), 512u);
    QCOMPARE(file.get_u32("folio.embedding.max_tokens"), 256u);
    const double lowest = lowest_cosine(out, kTestData / "minilm/golden.json");
    qInfo("all-MiniLM-L6-v2 converted to f16: lowest cosine %.7f over 30 texts", lowest);
    QVERIFY2(lowest >= 0.999, qPrintable(QString::number(lowest)));
}

void ConvertHfTest::decodersAreWhatLlamaCppWrites_data() {
    QTest::addColumn<QString>("arch");
    QTest::addColumn<QString>("pre");
    QTest::newRow("llama") << "llama" << "llama-bpe";  // q and k rows permuted
    QTest::newRow("qwen2") << "qwen2" << "qwen2";      // q, k, v biases; a tied head
    QTest::newRow("qwen3") << "qwen3" << "qwen2";      // q and k norms; wide heads
}

// The tiny random decoders of tools/make_decoder_goldens.py, as Hugging Face
// folders (tools/make_embedding_goldens.py decoders), convert to the tensors
// of the GGUF that script wrote in llama.cpp's layout, byte for byte, and to
// its hyper-parameters, and then give the same logits.
void ConvertHfTest::decodersAreWhatLlamaCppWrites() {
    QFETCH(QString, arch);
    QFETCH(QString, pre);
    const std::string name = arch.toStdString();
    QTemporaryDir dir;
    const std::filesystem::path out = path_of(dir) / "model.gguf";
    const app::ConvertHfResult result =
        app::convert_hf({kTestData / (name + "_tiny_hf"), out, app::ConvertedType::F16});
    QCOMPARE(result.architecture, name);
    const engine::GgufFile ours = engine::GgufFile::open(out);
    const engine::GgufFile reference = engine::GgufFile::open(kTestData / (name + "_tiny/model.gguf"));
    for (const engine::GgufKeyValue& kv : reference.metadata()) {
        // The reference names itself, and gives Qwen a RoPE width llama.cpp leaves to its default.
        if (kv.key == "general.name" || (name != "llama" && kv.key == name + ".rope.dimension_count"))
            continue;
        const engine::GgufValue* value = ours.find(kv.key);
        QVERIFY2(value != nullptr && same_value(*value, kv.value), std::string(kv.key).c_str());
    }
    expect_same_tensors(ours, reference);

    QCOMPARE(ours.get_string("tokenizer.ggml.model"), std::string_view("gpt2"));
    QCOMPARE(QString::fromStdString(std::string(ours.get_string("tokenizer.ggml.pre"))), pre);
    QVERIFY(ours.find_string("tokenizer.chat_template").has_value());
    const engine::Vocab vocab(ours);
    QCOMPARE(vocab.n_tokens(), 256);
    QCOMPARE(vocab.bos_id(), 254);
    QCOMPARE(vocab.eos_id(), 255);
    // The tokenizer has no merges: every byte is its own token, id = byte.
    const std::vector<std::int32_t> ids = vocab.encode("Hi 12345", false, false);
    QCOMPARE(ids, (std::vector<std::int32_t>{72, 105, 32, 49, 50, 51, 52, 53}));

    engine::ThreadPool pool(2);
    auto logits = [&](const engine::GgufFile& file) {
        std::unique_ptr<engine::Model> model = engine::load_model(file);
        engine::KvCache cache = model->make_kv_cache(16);
        const std::vector<std::int32_t> positions = {0, 1, 2, 3, 4, 5, 6, 7};
        return model->forward(pool, ids, positions, cache, engine::LogitRows::All);
    };
    QCOMPARE(logits(ours), logits(reference));
}

// A tokenizer_config.json that names no EOS: config.json's eos_token_id, as
// SpecialVocab takes it.
void ConvertHfTest::specialTokenIdsFallBackOnConfigJson() {
    QTemporaryDir dir;
    const std::filesystem::path folder = path_of(dir) / "llama_tiny_hf";
    std::filesystem::copy(kTestData / "llama_tiny_hf", folder, std::filesystem::copy_options::recursive);
    write_text(folder / "tokenizer_config.json", R"({"bos_token": "<|begin_of_text|>"})");
    const std::filesystem::path out = path_of(dir) / "out.gguf";
    app::convert_hf({folder, out, app::ConvertedType::F16});
    const engine::GgufFile file = engine::GgufFile::open(out);
    QCOMPARE(file.get_u32("tokenizer.ggml.bos_token_id"), 254u);
    QCOMPARE(file.get_u32("tokenizer.ggml.eos_token_id"), 255u);
    QVERIFY(!file.find("tokenizer.chat_template"));
}

void ConvertHfTest::deepSeekPreTokenizersAreNamed_data() {
    QTest::addColumn<QString>("family");
    QTest::addColumn<bool>("drop_digits");
    QTest::newRow("deepseek-llm") << "deepseek-llm" << false;
    QTest::newRow("deepseek-v3") << "deepseek-v3" << false;
    QTest::newRow("deepseek-llm less its Digits step") << "deepseek-llm" << true;
}

// The pre-tokenizers of DeepSeek's own tokenizer.json files
// (tools/make_tokenizer_goldens.py) are named as llama.cpp names them; the
// same splits without the digits step are not.
void ConvertHfTest::deepSeekPreTokenizersAreNamed() {
    QFETCH(QString, family);
    QFETCH(bool, drop_digits);
    QTemporaryDir dir;
    const std::filesystem::path folder = path_of(dir) / "llama_tiny_hf";
    std::filesystem::copy(kTestData / "llama_tiny_hf", folder, std::filesystem::copy_options::recursive);
    const QJsonObject pre_tokenizers =
        QJsonDocument::fromJson(QByteArray::fromStdString(read_text(kTestData / "tokenizer/deepseek-pre-tokenizers.json")))
            .object();
    QJsonObject pre = pre_tokenizers[family].toObject();
    QVERIFY(!pre.isEmpty());
    if (drop_digits) {
        QJsonArray steps;
        for (const QJsonValue& step : pre["pretokenizers"].toArray())
            if (step.toObject()["type"].toString() != "Digits")
                steps.append(step);
        pre["pretokenizers"] = steps;
    }
    QJsonObject tokenizer =
        QJsonDocument::fromJson(QByteArray::fromStdString(read_text(folder / "tokenizer.json"))).object();
    tokenizer["pre_tokenizer"] = pre;
    write_text(folder / "tokenizer.json", QJsonDocument(tokenizer).toJson().toStdString());
    const std::filesystem::path out = path_of(dir) / "out.gguf";
    if (drop_digits) {
        expect_refused({folder, out, app::ConvertedType::F16}, "a pre-tokenizer Folio does not know");
        return;
    }
    app::convert_hf({folder, out, app::ConvertedType::F16});
    const engine::GgufFile file = engine::GgufFile::open(out);
    QCOMPARE(QString::fromStdString(std::string(file.get_string("tokenizer.ggml.pre"))), family);
}

void ConvertHfTest::decoderFoldersItCannotConvert_data() {
    QTest::addColumn<QString>("file");
    QTest::addColumn<QString>("find");
    QTest::addColumn<QString>("replace");
    QTest::addColumn<QString>("message");
    QTest::newRow("rope scaling") << "config.json" << "\"rope_type\": \"default\"" << "\"rope_type\": \"yarn\""
                                  << "RoPE scaling (yarn) is not converted yet";
    QTest::newRow("unknown pre-tokenizer") << "tokenizer.json" << "\\p{N}{1,3}" << "\\p{N}{1,4}"
                                           << "a pre-tokenizer Folio does not know";
    QTest::newRow("gelu") << "config.json" << "\"silu\"" << "\"gelu\"" << "hidden_act gelu is not supported";
}

void ConvertHfTest::decoderFoldersItCannotConvert() {
    QFETCH(QString, file);
    QFETCH(QString, find);
    QFETCH(QString, replace);
    QFETCH(QString, message);
    QTemporaryDir dir;
    const std::filesystem::path folder = path_of(dir) / "llama_tiny_hf";
    std::filesystem::copy(kTestData / "llama_tiny_hf", folder, std::filesystem::copy_options::recursive);
    std::string text = read_text(folder / file.toStdString());
    const std::size_t at = text.find(find.toStdString());
    QVERIFY2(at != std::string::npos, qPrintable(find));
    text.replace(at, static_cast<std::size_t>(find.size()), replace.toStdString());
    write_text(folder / file.toStdString(), text);
    expect_refused({folder, path_of(dir) / "out.gguf", app::ConvertedType::F16}, message);
}

void ConvertHfTest::badFoldersAreOneLineErrors_data() {
    QTest::addColumn<QString>("spoil");
    QTest::addColumn<QString>("message");
    QTest::newRow("no config") << "rm config.json" << "has no config.json";
    QTest::newRow("config not json") << "config {" << "config.json: not valid JSON";
    QTest::newRow("another architecture") << "architecture GPT2LMHeadModel"
                                          << "architecture GPT2LMHeadModel is not supported";
    QTest::newRow("shape disagrees") << "intermediate_size 65" << "has shape [64], config.json implies [65]";
    QTest::newRow("missing layer") << "num_hidden_layers 3" << "lack blk.2.";
    QTest::newRow("truncated weights") << "truncate" << "past the";
    QTest::newRow("header past the end") << "header" << "runs past the end";
    QTest::newRow("no weights") << "rm model.safetensors" << "has no *.safetensors";
    QTest::newRow("tanh gelu") << "hidden_act gelu_new" << "hidden_act gelu_new is not supported";
    QTest::newRow("dense module") << "dense" << "Dense";
    QTest::newRow("max_seq_length past the positions") << "max_seq_length 65"
                                                       << "max_seq_length = 65 is not a whole number from 2";
}

void ConvertHfTest::badFoldersAreOneLineErrors() {
    QFETCH(QString, spoil);
    QFETCH(QString, message);
    QTemporaryDir dir;
    const std::string how = spoil.toStdString();
    const std::filesystem::path folder = tiny_copy(dir, [&](const std::filesystem::path& copy) {
        const std::filesystem::path config = copy / "config.json";
        auto set_config = [&](const std::string& key, const std::string& value) {
            QJsonObject object = QJsonDocument::fromJson(QByteArray::fromStdString(read_text(config))).object();
            object[QString::fromStdString(key)] = QJsonDocument::fromJson(QByteArray::fromStdString("[" + value + "]"))
                                                      .array()
                                                      .first();
            write_text(config, QJsonDocument(object).toJson().toStdString());
        };
        const std::filesystem::path weights = copy / "model.safetensors";
        if (how.starts_with("rm "))
            std::filesystem::remove(copy / how.substr(3));
        else if (how == "config {")
            write_text(config, "{\"hidden_size\": ");
        else if (how.starts_with("architecture "))
            set_config("architectures", "[\"" + how.substr(13) + "\"]");
        else if (how.starts_with("intermediate_size ") || how.starts_with("num_hidden_layers "))
            set_config(how.substr(0, how.find(' ')), how.substr(how.find(' ') + 1));
        else if (how.starts_with("hidden_act "))
            set_config("hidden_act", "\"" + how.substr(11) + "\"");
        else if (how == "truncate")
            std::filesystem::resize_file(weights, std::filesystem::file_size(weights) / 2);
        else if (how == "header") {
            std::string bytes = read_text(weights);
            bytes[6] = '\x01';  // a header length of ~2^48 bytes
            write_text(weights, bytes);
        } else if (how.starts_with("max_seq_length ")) {
            write_text(copy / "sentence_bert_config.json", "{\"max_seq_length\": " + how.substr(15) + "}");
        } else if (how == "dense") {
            std::string modules = read_text(copy / "modules.json");
            modules.insert(modules.rfind(']'),
                           R"(, {"idx": 3, "name": "3", "path": "3_Dense", "type": "sentence_transformers.models.Dense"})");
            write_text(copy / "modules.json", modules);
        }
    });
    expect_refused({folder, path_of(dir) / "kept.gguf", app::ConvertedType::F16}, message);
    for (const auto& entry : std::filesystem::directory_iterator(path_of(dir)))
        QVERIFY2(entry.path().filename().string().find("partial") == std::string::npos, entry.path().c_str());
}

void ConvertHfTest::cliConvertsAndEmbeds() {
    QTemporaryDir dir;
    const QString out = dir.filePath("tiny.gguf");
    write_text(out.toStdString(), "replaced by the conversion");
    const Run convert = run_folio({"convert", "hf", QString::fromStdString(kTinyFolder.string()), "--out", out, "--json"});
    QVERIFY2(convert.exit_code == 0, qPrintable(convert.err));
    const QJsonObject summary = QJsonDocument::fromJson(convert.out.toUtf8()).object();
    QCOMPARE(summary["architecture"].toString(), QString("bert"));
    QCOMPARE(summary["tensors"].toInt(), 37);

    const std::vector<GoldenText> golden = read_golden(kTestData / "bert_tiny/golden.json");
    const Run embed = run_folio({"embed", "--model", out, "--json", QString::fromStdString(golden[0].text),
                                 QString::fromStdString(golden.back().text)});
    QVERIFY2(embed.exit_code == 0, qPrintable(embed.err));
    const QStringList lines = embed.out.split('\n', Qt::SkipEmptyParts);
    QCOMPARE(lines.size(), 1);
    const QJsonObject object = QJsonDocument::fromJson(lines[0].toUtf8()).object();
    QCOMPARE(object["model"].toString(), out);
    QCOMPARE(object["dimension"].toInt(), 32);
    const QJsonArray embeddings = object["embeddings"].toArray();
    QCOMPARE(embeddings.size(), 2);
    const QJsonObject first = embeddings[0].toObject();
    QCOMPARE(first["text"].toString(), QString::fromStdString(golden[0].text));
    QCOMPARE(first["tokens"].toInt(), static_cast<int>(golden[0].ids.size()));
    QCOMPARE(first["truncated"].toBool(), false);
    QCOMPARE(embeddings[1].toObject()["truncated"].toBool(), true);
    QCOMPARE(embeddings[1].toObject()["tokens"].toInt(), 64);
    const QJsonArray vector = first["vector"].toArray();
    QCOMPARE(vector.size(), 32);
    double dot = 0;
    for (int i = 0; i < 32; ++i)
        dot += vector[i].toDouble() * golden[0].embedding[static_cast<std::size_t>(i)];
    QVERIFY2(dot >= 0.999, qPrintable(QString::number(dot)));

    // --device cpu (auto keeps encoders there too): the CPU's vectors.
    const Run on_cpu = run_folio({"embed", "--model", out, "--device", "cpu", "--json", "one"});
    QVERIFY2(on_cpu.exit_code == 0, qPrintable(on_cpu.err));
    QCOMPARE(QJsonDocument::fromJson(on_cpu.out.toUtf8()).object()["device"].toString(), QString("cpu"));

    // Without --json: one line of dimension() numbers per text.
    const Run plain = run_folio({"embed", "--model", out, "one", "two"});
    QVERIFY2(plain.exit_code == 0, qPrintable(plain.err));
    const QStringList rows = plain.out.split('\n', Qt::SkipEmptyParts);
    QCOMPARE(rows.size(), 2);
    QCOMPARE(rows[0].split(' ').size(), 32);
}

void ConvertHfTest::cliErrorsAreOneLine() {
    QTemporaryDir dir;
    const QString tiny = QString::fromStdString(kTinyFolder.string());
    const QString llama = QString::fromStdString((kTestData / "llama_tiny/model.gguf").string());
    const QString bert = QString::fromStdString((kTestData / "bert_tiny/model.gguf").string());
    const QList<QStringList> cases = {
        {"convert", "hf", dir.path(), "--out", dir.filePath("x.gguf")},  // no config.json
        {"convert", "hf", tiny},                                        // no --out
        {"convert", "hf", tiny, "--out", dir.filePath("x.gguf"), "--type", "q4_0"},
        {"convert", "pt", tiny},
        {"embed", "--model", llama, "text"},  // a decoder
        {"embed", "--model", dir.filePath("missing.gguf"), "text"},
        {"embed", "--model", llama},  // no text
        {"embed", "--model", bert, "--device", "gpu", "text"},
    };
    for (const QStringList& arguments : cases) {
        const Run run = run_folio(arguments);
        QVERIFY2(run.exit_code > 0, qPrintable(arguments.join(' ')));
        QVERIFY2(run.out.isEmpty(), qPrintable(arguments.join(' ')));
        QVERIFY2(run.err.startsWith("folio: error: ") && run.err.count('\n') == 1,
                 qPrintable(arguments.join(' ') + ": " + run.err));
    }
}

void ConvertHfTest::peftAdapterIsWhatLlamaCppWrites_data() {
    QTest::addColumn<QString>("adapter");
    QTest::addColumn<float>("alpha");
    QTest::newRow("plain") << "plain" << 16.f;                        // F32 safetensors, r 8
    QTest::newRow("rslora") << "rslora" << 8.f * std::sqrt(4.f);      // F16 safetensors, r 4: alpha·√r
}

// PEFT folders of tools/make_lora_goldens.py convert to the adapter that
// script wrote with gguf-py as convert_lora_to_gguf.py does: the same keys
// and tensors, byte for byte (llama's lora_b of q and k permuted).
void ConvertHfTest::peftAdapterIsWhatLlamaCppWrites() {
    QFETCH(QString, adapter);
    QFETCH(float, alpha);
    QTemporaryDir dir;
    const std::filesystem::path out = path_of(dir) / "adapter.gguf";
    const app::ConvertHfResult result = app::convert_hf(
        {.model_dir = kLoraFolder / adapter.toStdString(), .out = out, .base = kLlamaTiny});
    QCOMPARE(result.hf_architecture, std::string("PEFT LoRA"));
    QCOMPARE(result.architecture, std::string("llama"));
    QCOMPARE(result.n_tensors, 28);  // 2 layers × 7 projections × A and B
    const engine::GgufFile ours = engine::GgufFile::open(out);
    const engine::GgufFile reference = engine::GgufFile::open(kLoraFolder / adapter.toStdString() / "adapter.gguf");
    for (const char* key : {"general.architecture", "general.type", "adapter.type", "adapter.lora.alpha"}) {
        const engine::GgufValue* value = ours.find(key);
        QVERIFY2(value != nullptr && same_value(*value, *reference.find(key)), key);
    }
    QCOMPARE(ours.get_f32("adapter.lora.alpha"), alpha);
    expect_same_tensors(ours, reference);
}

// A PEFT adapter of the tiny qwen3moe with target_parameters (each
// expert's gate, up and down, stacked: lora_A (n_expert·r, n_in), lora_B
// (n_out, r·n_expert)) converts to the stacked pairs the script wrote as
// llama.cpp's converter writes an expert adapter, byte for byte.
void ConvertHfTest::peftExpertsAdapterIsWhatLlamaCppWrites_data() {
    QTest::addColumn<QString>("adapter");
    QTest::addColumn<QString>("architecture");
    QTest::addColumn<int>("n_tensors");
    QTest::addColumn<QString>("dense_refusal");  // for a dense base whose attention fits the adapter
    // 2 layers x (q, v, and the experts' gate, up, down) x A and B
    QTest::newRow("qwen3moe experts")
        << "lora_moe_tiny" << "qwen3moe" << 20
        << "adapts the experts of layer 0, which the base model does not hold as stacked ffn_gate_exps";
    // ... and the shared expert's gate, up and down
    QTest::newRow("qwen2moe shared expert")
        << "lora_moe_shared_tiny" << "qwen2moe" << 32 << "adapts blk.0.ffn_down_shexp.weight, which model.gguf does not have";
}

void ConvertHfTest::peftExpertsAdapterIsWhatLlamaCppWrites() {
    QFETCH(QString, adapter);
    QFETCH(QString, architecture);
    QFETCH(int, n_tensors);
    QFETCH(QString, dense_refusal);
    const std::filesystem::path folder = kTestData / adapter.toStdString();
    QTemporaryDir dir;
    const std::filesystem::path out = path_of(dir) / "adapter.gguf";
    const app::ConvertHfResult result = app::convert_hf(
        {.model_dir = folder / "peft", .out = out, .base = kTestData / (architecture.toStdString() + "_tiny/model.gguf")});
    QCOMPARE(result.architecture, architecture.toStdString());
    QCOMPARE(result.n_tensors, n_tensors);
    const engine::GgufFile ours = engine::GgufFile::open(out);
    const engine::GgufFile reference = engine::GgufFile::open(folder / "adapter.gguf");
    for (const char* key : {"general.architecture", "general.type", "adapter.type", "adapter.lora.alpha"}) {
        const engine::GgufValue* value = ours.find(key);
        QVERIFY2(value != nullptr && same_value(*value, *reference.find(key)), key);
    }
    expect_same_tensors(ours, reference);

    // The same adapter for a dense model whose attention fits it.
    expect_refused({.model_dir = folder / "peft", .out = path_of(dir) / "kept.gguf",
                    .base = kTestData / "qwen3_tiny/model.gguf"},
                   dense_refusal);
}

void ConvertHfTest::peftFoldersItCannotConvert_data() {
    QTest::addColumn<QString>("key");    // of adapter_config.json, set to value ("" : no change)
    QTest::addColumn<QString>("value");  // JSON
    QTest::addColumn<QString>("base");   // the --base file under tests/data ("": none)
    QTest::addColumn<QString>("message");
    const QString llama = "llama_tiny/model.gguf";
    QTest::newRow("DoRA") << "use_dora" << "true" << llama << "use_dora (DoRA) is not supported";
    QTest::newRow("modules_to_save") << "modules_to_save" << "[\"lm_head\"]" << llama
                                     << "modules_to_save [\"lm_head\"] is not supported";
    QTest::newRow("bias") << "bias" << "\"lora_only\"" << llama << "bias \"lora_only\" is not supported (none)";
    QTest::newRow("fan_in_fan_out") << "fan_in_fan_out" << "true" << llama << "fan_in_fan_out (Conv1D weights";
    QTest::newRow("embeddings") << "target_modules" << "[\"q_proj\", \"embed_tokens\"]" << llama
                                << "target module embed_tokens cannot be mapped to a weight Folio adapts";
    QTest::newRow("rank") << "r" << "4" << llama << "has rank 8, adapter_config.json's r is 4";
    QTest::newRow("router") << "target_parameters" << "[\"mlp.experts.gate_up_proj\", \"mlp.gate.weight\"]" << llama
                            << "target parameter mlp.gate.weight cannot be mapped to a weight Folio adapts";
    QTest::newRow("another peft type") << "peft_type" << "\"IA3\"" << llama << "peft_type IA3 is not converted";
    QTest::newRow("no base") << "" << "" << "" << "name its base model with --base MODEL.gguf";
    // Qwen3's heads are 32 wide, so its k projection has 64 rows, not 32.
    QTest::newRow("base of other shapes")
        << "" << "" << "qwen3_tiny/model.gguf"
        << "self_attn.k_proj.lora_B.weight has shape [32, 8], model.gguf's blk.0.attn_k.weight [64, 64] implies [64, 8]";
    QTest::newRow("base of another family") << "" << "" << "gemma3_tiny/model.gguf"
                                            << "adapters for gemma3 models are not converted";
}

// Each a one-line ConvertError; --out is left alone.
void ConvertHfTest::peftFoldersItCannotConvert() {
    QFETCH(QString, key);
    QFETCH(QString, value);
    QFETCH(QString, base);
    QFETCH(QString, message);
    QTemporaryDir dir;
    const std::filesystem::path folder = path_of(dir) / "plain";
    std::filesystem::copy(kLoraFolder / "plain", folder, std::filesystem::copy_options::recursive);
    std::filesystem::remove(folder / "adapter.gguf");
    if (!key.isEmpty()) {
        QJsonObject config =
            QJsonDocument::fromJson(QByteArray::fromStdString(read_text(folder / "adapter_config.json"))).object();
        config[key] = QJsonDocument::fromJson(("[" + value + "]").toUtf8()).array().first();
        write_text(folder / "adapter_config.json", QJsonDocument(config).toJson().toStdString());
    }
    expect_refused({.model_dir = folder,
                    .out = path_of(dir) / "kept.gguf",
                    .base = base.isEmpty() ? std::filesystem::path() : kTestData / base.toStdString()},
                   message);
}

// The real binary: the tiny llama folder and the plain adapter converted,
// then generate with the adapter at 0 (the base model's tokens), at 1 (other
// tokens), twice at once; a PEFT config it cannot convert is one line.
void ConvertHfTest::cliConvertsAPeftAdapterAndGeneratesWithIt() {
    QTemporaryDir dir;
    const QString model = dir.filePath("model.gguf");
    const QString adapter = dir.filePath("adapter.gguf");
    const Run convert_model = run_folio(
        {"convert", "hf", QString::fromStdString((kTestData / "llama_tiny_hf").string()), "--out", model});
    QVERIFY2(convert_model.exit_code == 0, qPrintable(convert_model.err));
    const Run convert = run_folio({"convert", "hf", QString::fromStdString((kLoraFolder / "plain").string()), "--out",
                                   adapter, "--base", model, "--json"});
    QVERIFY2(convert.exit_code == 0, qPrintable(convert.err));
    const QJsonObject summary = QJsonDocument::fromJson(convert.out.toUtf8()).object();
    QCOMPARE(summary["hf_architecture"].toString(), QString("PEFT LoRA"));
    QCOMPARE(summary["architecture"].toString(), QString("llama"));
    QCOMPARE(summary["tensors"].toInt(), 28);

    auto generate = [&](const QStringList& loras) {
        QStringList arguments = {"generate", "--model", model, "--prompt", "The report says", "--raw",
                                 "--temp", "0", "--n", "12", "--json"};
        for (const QString& lora : loras)
            arguments << "--lora" << lora;
        const Run run = run_folio(arguments);
        if (run.exit_code != 0 || run.lines.size() != 1)
            qWarning("%s", qPrintable(run.err));
        return run.lines.value(0);
    };
    const QJsonObject base = generate({});
    const QJsonObject at_zero = generate({adapter + ":0"});
    const QJsonObject at_one = generate({adapter});
    const QJsonObject twice = generate({adapter + ":0.5", adapter + ":0.5"});
    QVERIFY(!base["tokens"].toArray().isEmpty());
    QCOMPARE(at_zero["tokens"], base["tokens"]);
    QVERIFY(at_one["tokens"] != base["tokens"]);
    const QJsonArray loras = twice["loras"].toArray();
    QCOMPARE(loras.size(), 2);
    QCOMPARE(loras[0].toObject()["file"].toString(), adapter);
    QCOMPARE(loras[0].toObject()["scale"].toDouble(), 0.5);
    QCOMPARE(at_one["loras"].toArray()[0].toObject()["scale"].toDouble(), 1.0);

    const std::filesystem::path dora = path_of(dir) / "dora";
    std::filesystem::copy(kLoraFolder / "plain", dora, std::filesystem::copy_options::recursive);
    std::string config = read_text(dora / "adapter_config.json");
    config.replace(config.find("\"use_dora\": false"), std::string("\"use_dora\": false").size(), "\"use_dora\": true");
    write_text(dora / "adapter_config.json", config);
    const QList<QStringList> cases = {
        {"convert", "hf", QString::fromStdString(dora.string()), "--out", dir.filePath("x.gguf"), "--base", model},
        {"generate", "--model", model, "--prompt", "x", "--lora", model},  // a model, not an adapter
        {"generate", "--model", model, "--prompt", "x", "--lora", adapter + ":lots"},
    };
    for (const QStringList& arguments : cases) {
        const Run run = run_folio(arguments);
        QVERIFY2(run.exit_code > 0, qPrintable(arguments.join(' ')));
        QVERIFY2(run.err.startsWith("folio: error: ") && run.err.count('\n') == 1,
                 qPrintable(arguments.join(' ') + ": " + run.err));
    }
}

QTEST_GUILESS_MAIN(ConvertHfTest)
#include "tst_convert_hf.moc"
