#include <QJsonArray>
#include <QJsonObject>
#include <QTemporaryDir>
#include <QtTest>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "engine/blocks_cpu.h"
#include "engine/embedder.h"
#include "engine/gguf.h"
#include "engine/model.h"
#include "engine/model_quantize.h"
#include "engine/model_paths.h"
#include "engine/thread_pool.h"
#include "engine/vocab.h"
#include "tests/support/golden_json.h"

using namespace folio::engine;
using folio::test::json_ints;
using folio::test::read_json_object;

namespace {

const std::filesystem::path kTestData = FOLIO_TEST_DATA;
// The bar: every text's embedding within cosine 0.999 of the reference.
constexpr double kMinCosine = 0.999;

// One text of a golden file (tools/make_embedding_goldens.py).
struct GoldenText {
    std::string text;
    std::vector<std::int32_t> ids;
    bool truncated = false;
    std::vector<float> embedding;
};

struct Golden {
    int dimension = 0;
    int max_tokens = 0;
    std::vector<GoldenText> texts;
};

Golden read_golden(const std::filesystem::path& path) {
    const QJsonObject root = read_json_object(path);
    Golden golden;
    golden.dimension = root["dimension"].toInt();
    golden.max_tokens = root["max_tokens"].toInt();
    for (const QJsonValue& value : root["texts"].toArray()) {
        const QJsonObject object = value.toObject();
        GoldenText text;
        text.text = object["text"].toString().toStdString();
        text.ids = json_ints(object["ids"]);
        text.truncated = object["truncated"].toBool();
        for (const QJsonValue& x : object["embedding"].toArray())
            text.embedding.push_back(static_cast<float>(x.toDouble()));
        golden.texts.push_back(std::move(text));
    }
    return golden;
}

double dot(const std::vector<float>& a, const std::vector<float>& b) {
    double sum = 0;
    for (std::size_t i = 0; i < a.size(); ++i)
        sum += static_cast<double>(a[i]) * b[i];
    return sum;
}

double cosine(const std::vector<float>& a, const std::vector<float>& b) {
    return dot(a, b) / std::sqrt(dot(a, a) * dot(b, b));
}

std::vector<std::string> texts_of(const Golden& golden) {
    std::vector<std::string> texts;
    for (const GoldenText& text : golden.texts)
        texts.push_back(text.text);
    return texts;
}

// Every text: the reference's token ids and truncation, a unit vector, and
// cosine >= min_cosine. Returns the lowest cosine.
double check_against_golden(Embedder& embedder, const Golden& golden, double min_cosine = kMinCosine) {
    if (embedder.dimension() != golden.dimension || embedder.max_tokens() != golden.max_tokens) {
        QTest::qFail("dimension or max_tokens differ from the golden's", __FILE__, __LINE__);
        return 0;
    }
    ThreadPool pool(2);
    const std::vector<std::string> texts = texts_of(golden);
    const std::vector<Embedding> embeddings = embedder.embed(texts, pool);
    if (embeddings.size() != golden.texts.size()) {
        QTest::qFail("one embedding per text expected", __FILE__, __LINE__);
        return 0;
    }
    double lowest = 1;
    for (std::size_t i = 0; i < golden.texts.size(); ++i) {
        const GoldenText& expected = golden.texts[i];
        const Embedding& ours = embeddings[i];
        bool truncated = false;
        const std::string label = "text " + std::to_string(i) + " \"" + expected.text.substr(0, 40) + "\"";
        if (embedder.tokenize(expected.text, truncated) != expected.ids || truncated != expected.truncated ||
            ours.n_tokens != static_cast<int>(expected.ids.size()) || ours.truncated != expected.truncated) {
            QTest::qFail(("tokens differ for " + label).c_str(), __FILE__, __LINE__);
            return 0;
        }
        const double similarity = cosine(ours.vector, expected.embedding);
        lowest = std::min(lowest, similarity);
        if (similarity < min_cosine) {
            QTest::qFail((label + ": cosine " + std::to_string(similarity)).c_str(), __FILE__, __LINE__);
            return 0;
        }
        if (std::abs(dot(ours.vector, ours.vector) - 1.0) > 1e-5) {
            QTest::qFail((label + " is not a unit vector").c_str(), __FILE__, __LINE__);
            return 0;
        }
    }
    return lowest;
}

// The tiny file with its metadata changed by `edit` (keys it adds win over
// the file's, which are then skipped).
std::filesystem::path tiny_variant(const QTemporaryDir& dir, const std::string& name,
                                   const std::function<void(GgufWriter&, std::vector<std::string>&)>& edit) {
    const GgufFile tiny = GgufFile::open(kTestData / "bert_tiny/model.gguf");
    GgufWriter writer;
    std::vector<std::string> replaced;
    edit(writer, replaced);
    for (const GgufKeyValue& kv : tiny.metadata())
        if (std::find(replaced.begin(), replaced.end(), kv.key) == replaced.end())
            writer.add_value(std::string(kv.key), kv.value);
    for (const GgufTensor& tensor : tiny.tensors())
        writer.add_tensor(std::string(tensor.name), tensor.type,
                          std::span<const std::int64_t>(tensor.ne.data(), tensor.n_dims),
                          std::vector<std::uint8_t>(tensor.data.begin(), tensor.data.end()));
    const std::filesystem::path path = std::filesystem::path(dir.path().toStdString()) / name;
    writer.write(path);
    return path;
}

}  // namespace

class EmbedderTest : public QObject {
    Q_OBJECT

private slots:
    void layerNormAndGeluMatchTheirFormulas();
    void tinyMatchesSentenceTransformers();
    void unnormalizedModelKeepsItsLength();
    void maxTokensKeyCutsTexts();
    void windowsCoverALongText();
    void minilmMatchesSentenceTransformers();
    void minilmInQ8_0StaysNearSentenceTransformers();
    void packedSequencesDoNotSeeEachOther();
    void encoderAndDecoderRefuseEachOthersCalls();
    void refusesWhatItCannotEmbed();
};

void EmbedderTest::layerNormAndGeluMatchTheirFormulas() {
    ThreadPool pool(2);
    // Rows far from zero: the variance must be taken about the mean.
    const std::vector<float> x = {1000.f, 1001.f, 1002.f, 1003.f, -1.f, 0.f, 1.f, 2.f};
    const std::vector<float> weight = {1.f, 2.f, 0.5f, -1.f};
    const std::vector<float> bias = {0.f, 0.1f, -0.1f, 1.f};
    std::vector<float> out(x.size());
    layer_norm(pool, x.data(), weight.data(), bias.data(), 2, 4, 1e-12f, out.data());
    const double inverse_std = 1.0 / std::sqrt(1.25);  // both rows: mean + {-1.5, -0.5, 0.5, 1.5}
    const double centred[] = {-1.5, -0.5, 0.5, 1.5};
    for (int r = 0; r < 2; ++r)
        for (int i = 0; i < 4; ++i)
            QVERIFY(std::abs(out[static_cast<std::size_t>(r * 4 + i)] -
                             (centred[i] * inverse_std * weight[static_cast<std::size_t>(i)] +
                              bias[static_cast<std::size_t>(i)])) < 1e-5);

    // GELU(x) = x Φ(x): Φ(1) = 0.8413447, Φ(-2) = 0.0227501 (the tanh form gives 0.8411920, 0.0227185).
    std::vector<float> g = {0.f, 1.f, -2.f};
    gelu_erf(pool, g.data(), 3);
    QCOMPARE(g[0], 0.f);
    QVERIFY(std::abs(g[1] - 0.8413447f) < 1e-6);
    QVERIFY(std::abs(g[2] + 2 * 0.0227501f) < 1e-6);
}

// A random BERT written as llama.cpp's converter writes it, [CLS] pooling.
void EmbedderTest::tinyMatchesSentenceTransformers() {
    const Golden golden = read_golden(kTestData / "bert_tiny/golden.json");
    Embedder embedder = Embedder::open(kTestData / "bert_tiny/model.gguf");
    QCOMPARE(embedder.pooling(), Pooling::Cls);
    QVERIFY(embedder.normalizes());
    QVERIFY(golden.texts.back().truncated);
    const double lowest = check_against_golden(embedder, golden);
    if (QTest::currentTestFailed())
        return;
    qInfo("bert_tiny: lowest cosine with sentence-transformers %.7f over %zu texts", lowest, golden.texts.size());
}

// The installed embedder with Q8_0 weights: its layers' matrices run as
// row groups on CPUs with a group kernel (group_weight_matrices, on the
// encoder's first pass). Q8_0 is not F16: the bound is 0.995 (measured:
// 0.9983 at the lowest, on the empty text's two tokens).
void EmbedderTest::minilmInQ8_0StaysNearSentenceTransformers() {
    const std::optional<std::string> path = find_default_model(ModelRole::Embedding);
    if (!path)
        QSKIP("no embedding model in the models folder (installer/fetch-models.sh)");
    QTemporaryDir dir;
    const std::filesystem::path q8_0 = std::filesystem::path(dir.path().toStdString()) / "minilm-q8_0.gguf";
    ThreadPool pool(2);
    quantize_model(GgufFile::open(*path), quant_scheme("Q8_0"), q8_0, pool);
    Embedder embedder = Embedder::open(q8_0);
    const double lowest = check_against_golden(embedder, read_golden(kTestData / "minilm/golden.json"), 0.995);
    if (QTest::currentTestFailed())
        return;
    qInfo("all-MiniLM-L6-v2 in Q8_0: lowest cosine with sentence-transformers %.7f", lowest);
}

// folio.embedding.normalize = false: the pooled vector as it is, pointing
// the same way as the reference's unit vector.
void EmbedderTest::unnormalizedModelKeepsItsLength() {
    QTemporaryDir dir;
    const std::filesystem::path path = tiny_variant(dir, "raw.gguf", [](GgufWriter& writer, auto&) {
        writer.add_bool("folio.embedding.normalize", false);
    });
    Embedder embedder = Embedder::open(path);
    QVERIFY(!embedder.normalizes());
    const Golden golden = read_golden(kTestData / "bert_tiny/golden.json");
    ThreadPool pool(2);
    const std::vector<std::string> texts = {golden.texts[0].text};
    const std::vector<float> raw = embedder.embed(texts, pool)[0].vector;
    QVERIFY(std::abs(std::sqrt(dot(raw, raw)) - 1.0) > 0.1);
    QVERIFY(cosine(raw, golden.texts[0].embedding) >= kMinCosine);
}

// folio.embedding.max_tokens below the positions: texts are cut there,
// [SEP] still last.
void EmbedderTest::maxTokensKeyCutsTexts() {
    QTemporaryDir dir;
    const std::filesystem::path path = tiny_variant(dir, "short.gguf", [](GgufWriter& writer, auto&) {
        writer.add_u32("folio.embedding.max_tokens", 16);
    });
    Embedder embedder = Embedder::open(path);
    QCOMPARE(embedder.max_tokens(), 16);
    const Golden golden = read_golden(kTestData / "bert_tiny/golden.json");
    bool truncated = false;
    const std::vector<std::int32_t> ids = embedder.tokenize(golden.texts.back().text, truncated);
    QVERIFY(truncated);
    QCOMPARE(ids.size(), std::size_t{16});
    QCOMPARE(std::vector<std::int32_t>(ids.begin(), ids.end() - 1),
             std::vector<std::int32_t>(golden.texts.back().ids.begin(), golden.texts.back().ids.begin() + 15));
    QCOMPARE(ids.back(), golden.texts.back().ids.back());
}

// LongText::Windows: the text's tokens in windows of max_tokens() - 2, each
// framed by [CLS] and [SEP], pooled and normalized alone, then averaged by
// their lengths and normalized again; a text that fits is embedded exactly
// as LongText::Truncate embeds it.
void EmbedderTest::windowsCoverALongText() {
    QTemporaryDir dir;
    // Mean pooling, as all-MiniLM-L6-v2 has.
    const std::filesystem::path path = tiny_variant(dir, "short-mean.gguf", [](GgufWriter& writer, auto& replaced) {
        writer.add_u32("folio.embedding.max_tokens", 16);
        writer.add_u32("bert.pooling_type", 1);
        replaced.push_back("bert.pooling_type");
    });
    Embedder embedder = Embedder::open(path);
    QCOMPARE(embedder.pooling(), Pooling::Mean);
    const Golden golden = read_golden(kTestData / "bert_tiny/golden.json");
    const std::string& text = golden.texts.back().text;
    const std::vector<std::int32_t> ids = Vocab(GgufFile::open(path)).encode(text, true, true);
    const std::size_t body = 16 - 2;
    QVERIFY(ids.size() > 4 * body);

    ThreadPool pool(2);
    std::unique_ptr<Model> bert = load_model(GgufFile::open(path));
    const auto dimension = static_cast<std::size_t>(embedder.dimension());
    std::vector<double> expected(dimension, 0.0);
    int windows = 0;
    for (std::size_t begin = 1; begin + 1 < ids.size(); begin += body, ++windows) {
        std::vector<std::int32_t> window = {ids.front()};
        window.insert(window.end(), ids.begin() + static_cast<std::ptrdiff_t>(begin),
                      ids.begin() + static_cast<std::ptrdiff_t>(std::min(begin + body, ids.size() - 1)));
        window.push_back(ids.back());
        const std::vector<float> hidden = bert->encode(pool, window);
        std::vector<double> mean(dimension, 0.0);
        for (std::size_t t = 0; t < window.size(); ++t)
            for (std::size_t d = 0; d < dimension; ++d) mean[d] += hidden[t * dimension + d];
        double norm = 0;
        for (const double value : mean) norm += value * value;
        for (std::size_t d = 0; d < dimension; ++d) expected[d] += mean[d] / std::sqrt(norm) * static_cast<double>(window.size());
    }
    double norm = 0;
    for (const double value : expected) norm += value * value;
    const std::vector<std::string> texts = {text, golden.texts.front().text};
    const std::vector<Embedding> got = embedder.embed(texts, pool, LongText::Windows);
    QCOMPARE(got[0].windows, windows);
    QVERIFY(!got[0].truncated);
    QCOMPARE(got[0].n_tokens, static_cast<int>(ids.size()));
    for (std::size_t d = 0; d < dimension; ++d)
        QVERIFY2(std::abs(got[0].vector[d] - expected[d] / std::sqrt(norm)) < 1e-5, qPrintable(QString::number(d)));
    QCOMPARE(got[1].windows, 1);
    QCOMPARE(got[1].vector, embedder.embed(std::span(texts).subspan(1), pool)[0].vector);
}

// The real all-MiniLM-L6-v2, as `folio convert hf` installs it (mean pooling).
void EmbedderTest::minilmMatchesSentenceTransformers() {
    const std::optional<std::string> path = find_default_model(ModelRole::Embedding);
    if (!path)
        QSKIP("no embedding model in the models folder (installer/fetch-models.sh)");
    const Golden golden = read_golden(kTestData / "minilm/golden.json");
    Embedder embedder = Embedder::open(*path);
    QCOMPARE(embedder.dimension(), 384);
    QCOMPARE(embedder.pooling(), Pooling::Mean);
    // sentence-transformers cuts at sentence_bert_config.json's 256, not at
    // the 512 positions; the long text is past it.
    QCOMPARE(embedder.max_tokens(), 256);
    const GoldenText& longest = golden.texts.back();
    QVERIFY(longest.truncated);
    QCOMPARE(longest.ids.size(), std::size_t{256});
    const double lowest = check_against_golden(embedder, golden);
    if (QTest::currentTestFailed())
        return;
    ThreadPool pool(2);
    const std::vector<std::string> texts = {longest.text};
    qInfo("all-MiniLM-L6-v2: lowest cosine with sentence-transformers %.7f over %zu texts; the truncated one %.7f",
          lowest, golden.texts.size(), cosine(embedder.embed(texts, pool)[0].vector, longest.embedding));
}

// Texts packed into one batch give what each gives alone: every sequence
// attends only to itself and counts its positions from 0.
void EmbedderTest::packedSequencesDoNotSeeEachOther() {
    ThreadPool pool(2);
    std::unique_ptr<Model> bert = load_model(GgufFile::open(kTestData / "bert_tiny/model.gguf"));
    const std::vector<std::int32_t> a = {101, 1996, 2058, 102};
    const std::vector<std::int32_t> b = {101, 2054, 2001, 1996, 1012, 2095, 102};
    std::vector<std::int32_t> packed = a;
    packed.insert(packed.end(), b.begin(), b.end());
    const std::vector<float> together = bert->encode(pool, packed, std::vector<std::int32_t>{4, 7});
    std::vector<float> apart = bert->encode(pool, a);
    const std::vector<float> b_alone = bert->encode(pool, b);
    apart.insert(apart.end(), b_alone.begin(), b_alone.end());
    QCOMPARE(together.size(), apart.size());
    for (std::size_t i = 0; i < apart.size(); ++i)
        QVERIFY2(std::abs(together[i] - apart[i]) < 1e-5, qPrintable(QString::number(i)));

    QVERIFY_THROWS_EXCEPTION(ModelError, bert->encode(pool, packed, std::vector<std::int32_t>{4, 6}));
    QVERIFY_THROWS_EXCEPTION(ModelError, bert->encode(pool, packed, std::vector<std::int32_t>{0, 11}));

    // The Embedder packs: a batch of texts equals the texts one by one.
    Embedder embedder = Embedder::open(kTestData / "bert_tiny/model.gguf");
    const Golden golden = read_golden(kTestData / "bert_tiny/golden.json");
    const std::vector<std::string> texts = texts_of(golden);
    const std::vector<Embedding> batch = embedder.embed(texts, pool);
    for (std::size_t i = 0; i < texts.size(); ++i) {
        const std::vector<Embedding> one = embedder.embed(std::span(texts).subspan(i, 1), pool);
        QVERIFY2(cosine(one[0].vector, batch[i].vector) > 1 - 1e-9, texts[i].c_str());
    }
}

void EmbedderTest::encoderAndDecoderRefuseEachOthersCalls() {
    ThreadPool pool(1);
    std::unique_ptr<Model> bert = load_model(GgufFile::open(kTestData / "bert_tiny/model.gguf"));
    QVERIFY(bert->is_encoder());
    KvCache cache = bert->make_kv_cache(8);
    const std::vector<std::int32_t> ids = {101, 102};
    QVERIFY_THROWS_EXCEPTION(ModelError, bert->forward(pool, ids, std::vector<std::int32_t>{0, 1}, cache,
                                                       LogitRows::Last));
    QVERIFY_THROWS_EXCEPTION(ModelError, bert->encode(pool, {}));
    QVERIFY_THROWS_EXCEPTION(ModelError, bert->encode(pool, std::vector<std::int32_t>(65, 101)));
    QVERIFY_THROWS_EXCEPTION(ModelError, bert->encode(pool, std::vector<std::int32_t>{2100}));
    QCOMPARE(bert->encode(pool, std::vector<std::int32_t>(64, 101)).size(), std::size_t{64 * 32});

    std::unique_ptr<Model> llama = load_model(GgufFile::open(kTestData / "llama_tiny/model.gguf"));
    QVERIFY(!llama->is_encoder());
    QVERIFY_THROWS_EXCEPTION(ModelError, llama->encode(pool, std::vector<std::int32_t>{1}));
}

void EmbedderTest::refusesWhatItCannotEmbed() {
    try {
        Embedder::open(kTestData / "llama_tiny/model.gguf");
        QFAIL("a decoder opened as an embedder");
    } catch (const ModelError& error) {
        QVERIFY2(std::string(error.what()).find("not an embedding model") != std::string::npos, error.what());
    }
    // A reranker is named as one, with where it belongs.
    try {
        Embedder::open(kTestData / "bert_cross_tiny/model.gguf");
        QFAIL("a cross-encoder opened as an embedder");
    } catch (const ModelError& error) {
        const std::string what = error.what();
        QVERIFY2(what.find("is a reranking model (a cross-encoder), not an embedding model") != std::string::npos &&
                     what.find("FOLIO_RERANKER_MODEL") != std::string::npos,
                 error.what());
    }
    QTemporaryDir dir;
    const std::filesystem::path last_pooling = tiny_variant(dir, "last.gguf", [](GgufWriter& writer, auto& replaced) {
        writer.add_u32("bert.pooling_type", 3);
        replaced.push_back("bert.pooling_type");
    });
    try {
        Embedder::open(last_pooling);
        QFAIL("pooling type 3 (last token) was accepted");
    } catch (const ModelError& error) {
        QVERIFY2(std::string(error.what()).find("bert.pooling_type = 3") != std::string::npos, error.what());
    }
    // Fewer tokens than [CLS] and [SEP], or more than the 64 positions.
    for (const std::uint32_t max_tokens : {1u, 65u}) {
        const std::filesystem::path path =
            tiny_variant(dir, "max" + std::to_string(max_tokens) + ".gguf", [&](GgufWriter& writer, auto&) {
                writer.add_u32("folio.embedding.max_tokens", max_tokens);
            });
        try {
            Embedder::open(path);
            QFAIL("an out-of-range folio.embedding.max_tokens was accepted");
        } catch (const ModelError& error) {
            const std::string what = error.what();
            QVERIFY2(what.find("folio.embedding.max_tokens = " + std::to_string(max_tokens)) != std::string::npos &&
                         what.find('\n') == std::string::npos,
                     what.c_str());
        }
    }
}

QTEST_GUILESS_MAIN(EmbedderTest)
#include "tst_embedder.moc"
