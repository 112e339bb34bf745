// Chunk vectors in the store, the derived Faiss file, hybrid search over
// both and reranking (index/embedding_index.h, index/hybrid_search.h,
// index/reranking.h). The embedder here is a word-hashing one and the scorer
// counts the query's words: index/ sees models only through TextEmbedder and
// PassageScorer, and these make "which chunk is nearest" predictable; the
// real models are exercised end to end by tests/app/tst_search_cli.cpp.

#include <QFile>
#include <QTemporaryDir>
#include <QTest>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <functional>
#include <sstream>

#include "document_builders.h"
#include "index/embedding_index.h"
#include "index/hybrid_search.h"
#include "index/reranking.h"

using namespace folio::index;
using namespace folio::index::testing;

namespace {

// Each word adds 1 to the dimension its hash picks; the sum is scaled to
// unit length. Texts sharing words are near.
class WordHashEmbedder final : public TextEmbedder {
public:
    explicit WordHashEmbedder(std::string hash = "word-hash-1", int dimension = 64)
        : model_{"word-hash", std::move(hash), dimension} {}
    const EmbeddingModelRecord& model() const override { return model_; }
    std::vector<float> embed(std::span<const std::string> texts) override {
        ++calls;
        std::vector<float> out;
        for (const std::string& text : texts) {
            std::vector<float> v(static_cast<std::size_t>(model_.dimension));
            std::istringstream words(text);
            for (std::string word; words >> word;) v[std::hash<std::string>{}(word) % v.size()] += 1;
            float norm = 0;
            for (float x : v) norm += x * x;
            for (float& x : v) x = norm > 0 ? x / std::sqrt(norm) : 0;
            out.insert(out.end(), v.begin(), v.end());
        }
        return out;
    }
    int calls = 0;

private:
    EmbeddingModelRecord model_;
};

// A passage's score: how many of its words are words of the query.
class WordCountScorer final : public PassageScorer {
public:
    const std::string& name() const override { return name_; }
    std::vector<float> score(std::string_view query, std::span<const std::string> passages) override {
        passages_read.assign(passages.begin(), passages.end());
        std::vector<std::string> query_words;
        std::istringstream in{std::string(query)};
        for (std::string word; in >> word;) query_words.push_back(word);
        std::vector<float> scores;
        for (const std::string& passage : passages) {
            std::istringstream words(passage);
            float count = 0;
            for (std::string word; words >> word;)
                count += static_cast<float>(std::count(query_words.begin(), query_words.end(), word));
            scores.push_back(count);
        }
        return scores;
    }
    std::vector<std::string> passages_read;

private:
    std::string name_ = "word-count";
};

SearchHit hit_with(std::int64_t chunk_id, std::string heading_path, std::string text) {
    SearchHit hit;
    hit.chunk_id = chunk_id;
    hit.score = 100.0 - static_cast<double>(chunk_id);
    hit.heading_path = std::move(heading_path);
    hit.text = std::move(text);
    return hit;
}

std::vector<std::int64_t> ids_of(const std::vector<SearchHit>& hits) {
    std::vector<std::int64_t> ids;
    for (const SearchHit& hit : hits) ids.push_back(hit.chunk_id);
    return ids;
}

}  // namespace

class HybridSearchTest : public QObject {
    Q_OBJECT

    QTemporaryDir dir_;
    std::unique_ptr<LibraryStore> store_;
    std::filesystem::path index_file_;
    std::int64_t zebra_doc_ = 0, quokka_doc_ = 0;

private slots:
    void init() {
        QVERIFY(dir_.isValid());
        const std::string library = (dir_.path() + "/" + QTest::currentTestFunction()).toStdString();
        store_ = LibraryStore::open(library);
        index_file_ = std::filesystem::path(library) / "vectors.faiss";
        zebra_doc_ = store_->put_document(make_document("/docs/zebra.pdf", 3, 6, "zebra"));
        quokka_doc_ = store_->put_document(make_document("/docs/quokka.pdf", 2, 4, "quokka"));
    }

    void reciprocalRankFusionAddsOneOverSixtyPlusRank() {
        const std::vector<RankedChunk> keyword = {{1, 9.0}, {2, 5.0}, {3, 1.0}};
        const std::vector<RankedChunk> vector = {{3, 0.9}, {4, 0.8}};
        const std::vector<RankedChunk> fused = fuse_reciprocal_rank(keyword, vector);
        QCOMPARE(fused.size(), std::size_t(4));
        // Chunk 3: 1/63 + 1/61 beats chunk 1: 1/61.
        QCOMPARE(fused[0].chunk_id, std::int64_t(3));
        QVERIFY(std::abs(fused[0].score - (1.0 / 63 + 1.0 / 61)) < 1e-12);
        QCOMPARE(fused[1].chunk_id, std::int64_t(1));
        QCOMPARE(fused[2].chunk_id, std::int64_t(2));  // 1/62, as chunk 4: a tie goes to the lower id
        QCOMPARE(fused[3].chunk_id, std::int64_t(4));
    }

    void weightedFusionAddsScoresOnTheirOwnScales() {
        // Keyword scores are BM25 over the query's IDF sum, vector scores cosines.
        const std::vector<RankedChunk> keyword = {{1, 1.2}, {2, 0.5}};
        const std::vector<RankedChunk> vector = {{3, 0.9}, {2, 0.6}};
        const std::vector<RankedChunk> fused = fuse_weighted(keyword, vector, 0.5);
        QCOMPARE(fused.size(), std::size_t(3));
        // Chunk 1 has no vector score among the candidates: it takes the
        // lowest (0.6); chunk 3 takes the lowest keyword score (0.5).
        QCOMPARE(fused[0].chunk_id, std::int64_t(1));
        QVERIFY(std::abs(fused[0].score - 0.5 * (1.2 + 0.6)) < 1e-12);
        QCOMPARE(fused[1].chunk_id, std::int64_t(3));
        QVERIFY(std::abs(fused[1].score - 0.5 * (0.5 + 0.9)) < 1e-12);
        QCOMPARE(fused[2].chunk_id, std::int64_t(2));
        QVERIFY(std::abs(fused[2].score - 0.5 * (0.5 + 0.6)) < 1e-12);
        // Unlike min-max normalization, a weak keyword ranking stays weak: its
        // best hit is not stretched to the score of a query matched in full.
        const std::vector<RankedChunk> weak_keyword = {{1, 0.2}, {2, 0.1}};
        const std::vector<RankedChunk> vector_only = {{3, 0.7}, {1, 0.5}};
        QCOMPARE(fuse_weighted(weak_keyword, vector_only, 0.5)[0].chunk_id, std::int64_t(3));
        QCOMPARE(fuse_weighted(weak_keyword, vector_only, 0.5)[0].score, 0.5 * (0.1 + 0.7));
    }

    // The scorer reads each hit's heading path above its text; hits follow its
    // scores (ties keep the search's order) and the first k are kept.
    void rerankOrdersByTheScorerKeepingTiesThenCutsToK() {
        WordCountScorer scorer;
        std::vector<SearchHit> hits = {hit_with(1, "", "unrelated words"), hit_with(2, "", "net sales"),
                                       hit_with(3, "Net sales", "net sales rose"), hit_with(4, "", "sales fell")};
        const std::vector<SearchHit> reranked = rerank("net sales", hits, scorer, 3);
        QCOMPARE(scorer.passages_read.size(), std::size_t(4));
        QCOMPARE(scorer.passages_read[2], std::string("Net sales\nnet sales rose"));
        QCOMPARE(ids_of(reranked), (std::vector<std::int64_t>{3, 2, 4}));
        QCOMPARE(reranked[0].score, 3.0);  // "Net" is not "net": sales twice, net once
        QCOMPARE(reranked[2].score, 1.0);
        QVERIFY(rerank("net sales", {}, scorer, 3).empty());
        QVERIFY(rerank("net sales", hits, scorer, 0).empty());
    }

    // Blended, a hit the search ranks far above another stays above it though
    // the scorer prefers the other, and the scorer decides between near equals.
    void rerankBlendsTheSearchScoreWithTheScorersProbability() {
        WordCountScorer scorer;
        std::vector<SearchHit> hits = {hit_with(1, "", "net income"), hit_with(2, "", "net sales sales"),
                                       hit_with(3, "", "net sales"), hit_with(4, "", "unrelated words")};
        const double search_scores[] = {0.9, 0.3, 0.85, 0.1};
        for (std::size_t i = 0; i < hits.size(); ++i) hits[i].score = search_scores[i];
        const auto blend = [](double search, double logit) {
            return (1 - kRerankWeight) * search + kRerankWeight / (1 + std::exp(-logit));
        };
        const std::vector<SearchHit> blended = rerank("net sales", hits, scorer, 4, RerankOrder::BlendedWithSearch);
        QCOMPARE(ids_of(blended), (std::vector<std::int64_t>{3, 1, 2, 4}));
        QVERIFY(std::abs(blended[0].score - blend(0.85, 2)) < 1e-12);
        QVERIFY(std::abs(blended[1].score - blend(0.9, 1)) < 1e-12);
        QVERIFY(std::abs(blended[2].score - blend(0.3, 3)) < 1e-12);
        // The scorer alone puts the search's weak hit first.
        QCOMPARE(ids_of(rerank("net sales", hits, scorer, 4)), (std::vector<std::int64_t>{2, 3, 1, 4}));
    }

    void embeddingIsResumableAndRemovedWithItsChunks() {
        WordHashEmbedder embedder;
        ChunkVectors vectors(*store_, index_file_);
        std::atomic<bool> cancel{false};
        int batches = 0;
        // Stopped after the first batch: what it committed stays.
        vectors.embed_missing(embedder, [&](const EmbeddingProgress&) { cancel = ++batches == 1; }, &cancel);
        QCOMPARE(store_->count_vectors(), std::int64_t(10));  // all ten chunks fit one batch
        QCOMPARE(store_->count_chunks_without_vectors(), std::int64_t(0));
        const std::int64_t pelican = store_->put_document(make_document("/docs/pelican.pdf", 1, 2, "pelican"));
        QCOMPARE(store_->count_chunks_without_vectors(), std::int64_t(2));
        const EmbeddingProgress second = vectors.embed_missing(embedder);
        QCOMPARE(second.embedded, std::int64_t(2));
        QVERIFY(!second.model_changed);
        QCOMPARE(store_->count_vectors(), std::int64_t(12));

        const std::uint64_t before_removal = store_->vector_generation();
        QVERIFY(store_->remove_document(pelican));
        QCOMPARE(store_->count_vectors(), std::int64_t(10));
        QVERIFY(store_->vector_generation() != before_removal);
        // Replacing a document drops its old chunks' vectors; the new chunks wait for theirs.
        store_->put_document(make_document("/docs/zebra.pdf", 3, 5, "zebra"));
        QCOMPARE(store_->count_vectors(), std::int64_t(4));
        QCOMPARE(store_->count_chunks_without_vectors(), std::int64_t(5));
        QCOMPARE(vectors.current().size(), std::int64_t(4));
        QCOMPARE(vectors.last_source(), ChunkVectors::Source::Rebuilt);
    }

    void anotherModelReembedsEveryChunk() {
        WordHashEmbedder first;
        ChunkVectors vectors(*store_, index_file_);
        vectors.embed_missing(first);
        QCOMPARE(vectors.current().dimension(), 64);
        WordHashEmbedder other("word-hash-2", 24);
        const EmbeddingProgress progress = vectors.embed_missing(other);
        QVERIFY(progress.model_changed);
        QCOMPARE(progress.embedded, std::int64_t(10));
        QCOMPARE(store_->embedding_model()->dimension, 24);
        QCOMPARE(vectors.current().dimension(), 24);
        QCOMPARE(vectors.current().size(), std::int64_t(10));
        // Vectors of the old model are refused once the library has moved on.
        const std::vector<std::int64_t> id = {1};
        const std::vector<float> old_vector(64, 0.125f);
        QVERIFY_THROWS_EXCEPTION(StoreError, store_->put_vectors(first.model(), id, old_vector));
        // A query embedded by another model than the library's is refused, not mis-scored.
        HybridSearcher searcher(*store_, vectors);
        QVERIFY_THROWS_EXCEPTION(SearchError, searcher.search("zebra", first, {.mode = SearchMode::Vector}));
    }

    void damagedOrStaleIndexFileIsRebuilt() {
        WordHashEmbedder embedder;
        {
            ChunkVectors vectors(*store_, index_file_);
            vectors.embed_missing(embedder);
        }
        QVERIFY(std::filesystem::exists(index_file_));
        auto search = [&](ChunkVectors& vectors) {
            return ids_of(HybridSearcher(*store_, vectors).search("quokka", embedder, {.k = 4, .mode = SearchMode::Vector}));
        };
        ChunkVectors fresh(*store_, index_file_);
        const std::vector<std::int64_t> expected = search(fresh);
        QCOMPARE(fresh.last_source(), ChunkVectors::Source::File);
        QCOMPARE(expected.size(), std::size_t(4));
        for (std::int64_t id : expected) QCOMPARE(store_->chunk(id)->doc_id, quokka_doc_);

        std::filesystem::remove(index_file_);
        ChunkVectors after_delete(*store_, index_file_);
        QCOMPARE(search(after_delete), expected);
        QCOMPARE(after_delete.last_source(), ChunkVectors::Source::Rebuilt);
        QVERIFY(std::filesystem::exists(index_file_));

        std::filesystem::resize_file(index_file_, std::filesystem::file_size(index_file_) / 2);
        ChunkVectors after_truncation(*store_, index_file_);
        QCOMPARE(search(after_truncation), expected);
        QCOMPARE(after_truncation.last_source(), ChunkVectors::Source::Rebuilt);

        // A file from an older generation (the library changed since it was saved) is not used.
        const std::filesystem::path saved = index_file_.string() + ".old";
        std::filesystem::copy_file(index_file_, saved);
        store_->remove_document(quokka_doc_);
        std::filesystem::copy_file(saved, index_file_, std::filesystem::copy_options::overwrite_existing);
        ChunkVectors stale(*store_, index_file_);
        for (std::int64_t id : search(stale)) QCOMPARE(store_->chunk(id)->doc_id, zebra_doc_);
        QCOMPARE(stale.last_source(), ChunkVectors::Source::Rebuilt);
    }

    void filtersApplyInVectorAndHybridModes() {
        WordHashEmbedder embedder;
        ChunkVectors vectors(*store_, index_file_);
        vectors.embed_missing(embedder);
        HybridSearcher searcher(*store_, vectors);
        for (SearchMode mode : {SearchMode::Vector, SearchMode::Hybrid}) {
            for (Fusion fusion : {Fusion::ReciprocalRank, Fusion::Weighted}) {
                const std::vector<SearchHit> hits =
                    searcher.search("quokka", embedder, {.k = 3, .mode = mode, .fusion = fusion, .doc_ids = {zebra_doc_}});
                QCOMPARE(hits.size(), std::size_t(3));
                for (const SearchHit& hit : hits) {
                    QCOMPARE(hit.doc_id, zebra_doc_);
                    QCOMPARE(hit.path, std::string("/docs/zebra.pdf"));
                    QVERIFY(!hit.boxes.empty());
                    QVERIFY(!hit.text.empty());
                }
                QVERIFY(searcher.search("zebra", embedder, {.mode = mode, .type = folio::ingest::FileType::Text}).empty());
            }
        }
        // Unfiltered, the query's own word wins in both rankings.
        const std::vector<SearchHit> hybrid = searcher.search("quokka", embedder, {.k = 4, .mode = SearchMode::Hybrid});
        QCOMPARE(hybrid.size(), std::size_t(4));
        for (const SearchHit& hit : hybrid) QCOMPARE(hit.doc_id, quokka_doc_);
    }

    void aSetOfDocumentsIsFilteredBeforeTheTopK() {
        const std::int64_t pelican_doc = store_->put_document(make_document("/docs/pelican.pdf", 1, 2, "pelican"));
        WordHashEmbedder embedder;
        ChunkVectors vectors(*store_, index_file_);
        vectors.embed_missing(embedder);
        HybridSearcher searcher(*store_, vectors);
        // quokka's 4 chunks are the best matches anywhere; zebra and pelican
        // hold 8 weaker ones, so a post-filtered global top 5 would hold none.
        std::vector<std::int64_t> best = ids_of(searcher.search("quokka", embedder, {.k = 4, .mode = SearchMode::Vector}));
        std::sort(best.begin(), best.end());
        QCOMPARE(best, store_->chunk_ids_matching({.doc_ids = {quokka_doc_}}));
        for (SearchMode mode : {SearchMode::Vector, SearchMode::Hybrid}) {
            for (Fusion fusion : {Fusion::ReciprocalRank, Fusion::Weighted}) {
                const std::vector<SearchHit> hits = searcher.search(
                    "quokka", embedder, {.k = 5, .mode = mode, .fusion = fusion, .doc_ids = {zebra_doc_, pelican_doc}});
                QCOMPARE(hits.size(), std::size_t(5));
                for (const SearchHit& hit : hits) QVERIFY(hit.doc_id == zebra_doc_ || hit.doc_id == pelican_doc);
                // Asking for more than the two hold returns all of theirs, no more.
                QCOMPARE(searcher.search("quokka", embedder,
                                         {.k = 20, .mode = mode, .fusion = fusion, .doc_ids = {pelican_doc, zebra_doc_}})
                             .size(),
                         std::size_t(8));
            }
        }
        // Hundreds of ids, most of them no document's, bind as one parameter.
        std::vector<std::int64_t> many;
        for (std::int64_t id = 1000; id < 1400; ++id) many.push_back(id);
        many.push_back(pelican_doc);
        QCOMPARE(store_->chunk_ids_matching({.doc_ids = many}).size(), std::size_t(2));
        const std::vector<SearchHit> among_many =
            searcher.search("quokka", embedder, {.k = 5, .mode = SearchMode::Hybrid, .doc_ids = many});
        QCOMPARE(among_many.size(), std::size_t(2));
        for (const SearchHit& hit : among_many) QCOMPARE(hit.doc_id, pelican_doc);
        QCOMPARE(store_->chunk_ids_matching({.doc_ids = {zebra_doc_, quokka_doc_, pelican_doc}}).size(),
                 std::size_t(12));
    }

    void vectorModesNeedVectors() {
        WordHashEmbedder embedder;
        ChunkVectors vectors(*store_, index_file_);
        HybridSearcher searcher(*store_, vectors);
        QVERIFY_THROWS_EXCEPTION(SearchError, searcher.search("zebra", embedder, {.mode = SearchMode::Hybrid}));
        QVERIFY_THROWS_EXCEPTION(SearchError, searcher.search("   ", embedder, {.mode = SearchMode::Vector}));
        QCOMPARE(searcher.search("zebra", embedder, {.k = 2, .mode = SearchMode::Bm25}).size(), std::size_t(2));
    }

    void searchSeesOneSnapshotWhileAnotherConnectionWrites() {
        WordHashEmbedder embedder;
        ChunkVectors vectors(*store_, index_file_);
        vectors.embed_missing(embedder);
        const std::unique_ptr<LibraryStore::ReadSnapshot> snapshot = store_->read_snapshot();
        const std::uint64_t generation = store_->vector_generation();
        // Another connection (as another process would) removes a document meanwhile.
        const std::unique_ptr<LibraryStore> writer =
            LibraryStore::open(std::filesystem::path(index_file_).parent_path().string());
        QVERIFY(writer->remove_document(quokka_doc_));
        QCOMPARE(store_->vector_generation(), generation);
        QCOMPARE(store_->count_vectors(), std::int64_t(10));
        QVERIFY(store_->chunk_ids_matching({.doc_ids = {quokka_doc_}}).size() == 4);
    }
};

QTEST_GUILESS_MAIN(HybridSearchTest)
#include "tst_hybrid_search.moc"
