#include <QJsonArray>
#include <QJsonObject>
#include <QtTest>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include "engine/model.h"
#include "engine/model_paths.h"
#include "engine/reranker.h"
#include "engine/thread_pool.h"
#include "tests/support/golden_json.h"

using namespace folio::engine;
using folio::test::json_ints;
using folio::test::read_json_object;

namespace {

const std::filesystem::path kTestData = FOLIO_TEST_DATA;

// One pair of a golden file (tools/make_embedding_goldens.py cross, msmarco).
struct GoldenPair {
    std::string query, passage;
    std::vector<std::int32_t> ids, types;
    bool truncated = false;
    double score = 0;
};

// score_key: "score", the reference's, or "score_f16_cache", the reference
// with its keys and values rounded to f16 as the engine caches them.
std::vector<GoldenPair> read_pairs(const std::filesystem::path& path, const QString& score_key = "score") {
    std::vector<GoldenPair> pairs;
    for (const QJsonValue& value : read_json_object(path)["pairs"].toArray()) {
        const QJsonObject object = value.toObject();
        pairs.push_back({object["query"].toString().toStdString(), object["passage"].toString().toStdString(),
                         json_ints(object["ids"]), json_ints(object["types"]), object["truncated"].toBool(),
                         object[score_key].toDouble()});
    }
    return pairs;
}

// Every pair: the reference's ids, token types and truncation, and a score
// within `tolerance` of its score. Returns the largest difference.
double check_against_golden(Reranker& reranker, const std::vector<GoldenPair>& golden, double tolerance) {
    ThreadPool pool(2);
    double largest = 0;
    // Pairs of one query are scored in one call, as a search does.
    for (std::size_t begin = 0, end = 0; begin < golden.size(); begin = end) {
        std::vector<std::string> passages;
        for (end = begin; end < golden.size() && golden[end].query == golden[begin].query; ++end)
            passages.push_back(golden[end].passage);
        const std::vector<float> scores = reranker.score(golden[begin].query, passages, pool);
        if (scores.size() != passages.size()) {
            QTest::qFail("one score per passage expected", __FILE__, __LINE__);
            return 0;
        }
        for (std::size_t i = begin; i < end; ++i) {
            const GoldenPair& expected = golden[i];
            const std::string label = "pair " + std::to_string(i) + " (\"" + expected.query.substr(0, 30) + "\")";
            std::vector<std::int32_t> ids, types;
            bool truncated = false;
            reranker.tokenize_pair(expected.query, expected.passage, ids, types, truncated);
            if (ids != expected.ids || types != expected.types || truncated != expected.truncated) {
                QTest::qFail(("tokens differ for " + label).c_str(), __FILE__, __LINE__);
                return 0;
            }
            const double difference = std::abs(scores[i - begin] - expected.score);
            largest = std::max(largest, difference);
            if (difference > tolerance) {
                QTest::qFail((label + ": score " + std::to_string(scores[i - begin]) + ", reference " +
                              std::to_string(expected.score))
                                 .c_str(),
                             __FILE__, __LINE__);
                return 0;
            }
        }
    }
    return largest;
}

// The scores' range: the tolerance is a share of it, as for logits.
double score_range(const std::vector<GoldenPair>& golden) {
    const auto [low, high] = std::minmax_element(golden.begin(), golden.end(),
                                                 [](const auto& a, const auto& b) { return a.score < b.score; });
    return high->score - low->score;
}

}  // namespace

class RerankerTest : public QObject {
    Q_OBJECT

private slots:
    void tinyMatchesTransformers();
    void msMarcoMatchesTransformers();
    void tokenTypesChangeTheEncoding();
    void refusesWhatIsNotACrossEncoder();
};

// A random BertForSequenceClassification written as llama.cpp writes a
// reranker; its matrices are f16 in both, so the bar is the logits' 1e-3 of
// the range. A random classifier puts every pair within a third of a logit,
// where the f16 rounding of the cached keys and values alone moves scores by
// 1.5e-3 of the range: the bar holds against the reference computed with that
// rounding, and the plain reference's difference is reported.
void RerankerTest::tinyMatchesTransformers() {
    const std::filesystem::path golden_path = kTestData / "bert_cross_tiny/golden.json";
    const std::vector<GoldenPair> golden = read_pairs(golden_path, "score_f16_cache");
    QVERIFY(std::any_of(golden.begin(), golden.end(), [](const GoldenPair& p) { return p.truncated; }));
    Reranker reranker = Reranker::open(kTestData / "bert_cross_tiny/model.gguf");
    QCOMPARE(reranker.max_tokens(), 64);
    const double largest = check_against_golden(reranker, golden, 1e-3 * score_range(golden));
    if (QTest::currentTestFailed())
        return;
    const std::vector<GoldenPair> plain = read_pairs(golden_path);
    const double largest_plain = check_against_golden(reranker, plain, 2e-3 * score_range(plain));
    if (QTest::currentTestFailed())
        return;
    qInfo("bert_cross_tiny: largest score difference %.2e, %.2e to f32 keys and values (range %.3f)", largest,
          largest_plain, score_range(golden));
}

// The installed ms-marco-MiniLM-L-12-v2 (skipped without it), whose
// dequantized int8 matrices `folio convert hf` stores as f16: within the
// logits' 1e-3 of the range (measured: 7e-5).
void RerankerTest::msMarcoMatchesTransformers() {
    const std::optional<std::string> path = find_default_model(ModelRole::Reranker);
    if (!path)
        QSKIP("no reranking model installed (installer/fetch-models.sh)");
    const std::vector<GoldenPair> golden = read_pairs(kTestData / "ms_marco/golden.json");
    Reranker reranker = Reranker::open(*path);
    const double largest = check_against_golden(reranker, golden, 1e-3 * score_range(golden));
    if (QTest::currentTestFailed())
        return;
    qInfo("ms-marco-MiniLM-L-12-v2: largest score difference %.2e (range %.3f)", largest, score_range(golden));
}

// The passage's segment is read: the same ids as one segment score otherwise.
void RerankerTest::tokenTypesChangeTheEncoding() {
    const GgufFile file = GgufFile::open(kTestData / "bert_cross_tiny/model.gguf");
    std::unique_ptr<Model> model = load_model(file);
    Reranker reranker = Reranker::open(kTestData / "bert_cross_tiny/model.gguf");
    std::vector<std::int32_t> ids, types;
    bool truncated = false;
    // Words of the tiny vocabulary, one token each.
    reranker.tokenize_pair("the first year", "the new year was", ids, types, truncated);
    QCOMPARE(ids.size(), std::size_t{10});
    QCOMPARE(std::count(types.begin(), types.end(), 1), std::ptrdiff_t{5});  // four words and [SEP]
    ThreadPool pool(2);
    const std::vector<float> paired = model->encode(pool, ids, {}, types);
    const std::vector<float> single = model->encode(pool, ids);
    QCOMPARE(paired.size(), single.size());
    QVERIFY(paired != single);
    QVERIFY_THROWS_EXCEPTION(ModelError, model->encode(pool, ids, {}, std::vector<std::int32_t>(ids.size(), 2)));
    QVERIFY_THROWS_EXCEPTION(ModelError, model->encode(pool, ids, {}, std::vector<std::int32_t>(ids.size() - 1, 0)));
}

void RerankerTest::refusesWhatIsNotACrossEncoder() {
    // An embedding model: bert, but pooled by [CLS] with no classifier.
    try {
        Reranker::open(kTestData / "bert_tiny/model.gguf");
        QFAIL("an embedding model opened as a reranker");
    } catch (const ModelError& e) {
        QVERIFY2(std::string(e.what()).find("not a cross-encoder") != std::string::npos, e.what());
    }
    // A decoder.
    QVERIFY_THROWS_EXCEPTION(ModelError, Reranker::open(kTestData / "llama_tiny/model.gguf"));
    // And a reranker is never taken for the default embedding model.
    QVERIFY(find_default_model(ModelRole::Embedding, kTestData / "bert_cross_tiny") == std::nullopt);
    QCOMPARE(find_default_model(ModelRole::Reranker, kTestData / "bert_cross_tiny").value_or(""),
             (kTestData / "bert_cross_tiny/model.gguf").string());
}

QTEST_GUILESS_MAIN(RerankerTest)
#include "tst_reranker.moc"
