#include "index/hybrid_search.h"

#include <algorithm>
#include <future>
#include <map>
#include <string>

namespace folio::index {
namespace {

std::vector<RankedChunk> best_first(const std::map<std::int64_t, double>& scores) {
    std::vector<RankedChunk> ranked;
    for (const auto& [id, score] : scores) ranked.push_back({id, score});
    std::stable_sort(ranked.begin(), ranked.end(),
                     [](const RankedChunk& a, const RankedChunk& b) { return a.score > b.score; });
    return ranked;
}

// What a chunk absent from a ranking is given: the ranking's lowest score,
// the most it can have had, as it ranked below all of them.
double lowest_score(const std::vector<RankedChunk>& ranking) {
    if (ranking.empty()) return 0;
    return std::min_element(ranking.begin(), ranking.end(), [](const RankedChunk& a, const RankedChunk& b) {
               return a.score < b.score;
           })->score;
}

SearchHit hit_from(ScoredChunk&& scored, double score) {
    ingest::Chunk& chunk = scored.stored.chunk;
    return {.chunk_id = scored.stored.id,
            .doc_id = scored.stored.doc_id,
            .path = std::move(scored.path),
            .page = chunk.page_start,
            .page_end = chunk.page_end,
            .score = score,
            .heading_path = std::move(chunk.heading_path),
            .text = std::move(chunk.text),
            .boxes = std::move(chunk.boxes)};
}

}  // namespace

std::vector<RankedChunk> fuse_reciprocal_rank(const std::vector<RankedChunk>& keyword,
                                              const std::vector<RankedChunk>& vector, int k) {
    std::map<std::int64_t, double> scores;
    for (const std::vector<RankedChunk>* ranking : {&keyword, &vector})
        for (std::size_t rank = 1; rank <= ranking->size(); ++rank)
            scores[(*ranking)[rank - 1].chunk_id] += 1.0 / (k + static_cast<double>(rank));
    return best_first(scores);
}

std::vector<RankedChunk> fuse_weighted(const std::vector<RankedChunk>& keyword, const std::vector<RankedChunk>& vector,
                                       double vector_weight) {
    std::map<std::int64_t, std::pair<double, double>> both;  // keyword, vector
    const double keyword_floor = lowest_score(keyword), vector_floor = lowest_score(vector);
    for (const RankedChunk& chunk : keyword) both.emplace(chunk.chunk_id, std::pair{chunk.score, vector_floor});
    for (const RankedChunk& chunk : vector)
        both.try_emplace(chunk.chunk_id, keyword_floor, 0).first->second.second = chunk.score;
    std::map<std::int64_t, double> scores;
    for (const auto& [id, score] : both) scores[id] = (1 - vector_weight) * score.first + vector_weight * score.second;
    return best_first(scores);
}

std::vector<SearchHit> HybridSearcher::search(std::string_view query, TextEmbedder& embedder,
                                              const SearchOptions& options) {
    if (query.find_first_not_of(" \t\r\n") == std::string_view::npos) throw SearchError("the query has no words to search for");
    const std::optional<EmbeddingModelRecord> library_model = store_.embedding_model();
    if (library_model && !(*library_model == embedder.model()))
        throw SearchError("this library's vectors were made by " + library_model->name + " (another file than " +
                          embedder.model().name + "); run `folio index` to re-embed them");
    const std::vector<float> query_vector = embedder.embed(std::vector<std::string>{std::string(query)});
    return search(query, query_vector, options);
}

std::vector<SearchHit> HybridSearcher::search(std::string_view query, std::span<const float> query_vector,
                                              const SearchOptions& options) {
    if (options.mode == SearchMode::Bm25) return Retriever(store_).search(query, options);
    if (query.find_first_not_of(" \t\r\n") == std::string_view::npos) throw SearchError("the query has no words to search for");
    if (options.k <= 0) return {};
    const std::unique_ptr<LibraryStore::ReadSnapshot> snapshot = store_.read_snapshot();
    if (!store_.embedding_model() || !store_.has_vectors())
        throw SearchError(std::string("--mode ") + search_mode_name(options.mode) +
                          " needs chunk vectors, and this library has none yet; run `folio index` or use --mode bm25");

    const int depth = options.mode == SearchMode::Vector ? options.k : std::max(options.k, kCandidates);
    const ChunkFilter filter{options.doc_ids, options.type, options.updated_from, options.updated_until};
    const std::vector<std::int64_t> allowed = filter.any() ? store_.chunk_ids_matching(filter) : std::vector<std::int64_t>{};
    // The index is loaded (or rebuilt, from the store) here; its search
    // then reads only the index, so in hybrid mode it runs on a thread of
    // its own while this one reads the keyword index: the search takes the
    // longer of the two rather than their sum (each is single-threaded).
    const VectorIndex& index = vectors_.current();
    const auto search_vectors = [&] {
        std::vector<RankedChunk> ranked;
        for (const VectorNeighbor& neighbor : index.search(query_vector, depth, filter.any() ? &allowed : nullptr))
            ranked.push_back({neighbor.chunk_id, neighbor.score});
        return ranked;
    };
    if (options.mode != SearchMode::Hybrid) return read_hits(search_vectors(), {}, options.k);
    std::future<std::vector<RankedChunk>> by_vector = std::async(std::launch::async, search_vectors);

    SearchOptions keyword_options = options;
    keyword_options.mode = SearchMode::Bm25;
    keyword_options.k = depth;
    KeywordHits keyword = Retriever(store_).search_keywords(query, keyword_options);
    std::map<std::int64_t, SearchHit> keyword_hits;
    std::vector<RankedChunk> by_keyword;
    for (SearchHit& hit : keyword.hits) {
        by_keyword.push_back({hit.chunk_id, keyword.query_idf > 0 ? hit.score / keyword.query_idf : 0});
        keyword_hits.emplace(hit.chunk_id, std::move(hit));
    }
    const std::vector<RankedChunk> vector_ranking = by_vector.get();
    std::vector<RankedChunk> fused = options.fusion == Fusion::Weighted ? fuse_weighted(by_keyword, vector_ranking)
                                                                        : fuse_reciprocal_rank(by_keyword, vector_ranking);
    return read_hits(std::move(fused), std::move(keyword_hits), options.k);
}

std::vector<SearchHit> HybridSearcher::read_hits(std::vector<RankedChunk> fused,
                                                 std::map<std::int64_t, SearchHit> keyword_hits, int k) {
    if (static_cast<int>(fused.size()) > k) fused.resize(static_cast<std::size_t>(k));

    std::vector<std::int64_t> to_read;
    for (const RankedChunk& chunk : fused)
        if (!keyword_hits.count(chunk.chunk_id)) to_read.push_back(chunk.chunk_id);
    std::map<std::int64_t, ScoredChunk> read;
    for (ScoredChunk& chunk : store_.chunks_with_paths(to_read)) read.emplace(chunk.stored.id, std::move(chunk));
    std::vector<SearchHit> hits;
    for (const RankedChunk& chunk : fused) {
        if (auto keyword = keyword_hits.find(chunk.chunk_id); keyword != keyword_hits.end()) {
            hits.push_back(std::move(keyword->second));
            hits.back().score = chunk.score;
        } else if (auto stored = read.find(chunk.chunk_id); stored != read.end()) {
            hits.push_back(hit_from(std::move(stored->second), chunk.score));
        }
    }
    return hits;
}

}  // namespace folio::index
