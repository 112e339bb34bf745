#pragma once
// Search over keywords and chunk vectors together: the vector and hybrid
// modes of `folio search` (retriever.h serves bm25).
//
// Vector mode ranks chunks by the inner product of their vectors with the
// query's (embedding_index.h). Hybrid mode takes the first kCandidates of
// each ranking, filters applied, and fuses them:
// - reciprocal-rank fusion: score = sum over rankings of 1 / (kRrfK + rank),
//   rank 1-based (Cormack et al. 2009, k = 60);
// - weighted: kVectorWeight * cosine + (1 - kVectorWeight) * keyword, the
//   keyword score being bm25() over the query's IDF sum (fts_query_idf.h),
//   so both sides keep a scale that means the same for every query: a query
//   whose best keyword match covers little of it weighs little, where
//   min-max normalization would stretch its best match to a full 1 whatever
//   it matched. A chunk absent from one ranking takes that ranking's lowest
//   candidate score.
// Every read of one search (keyword hits, vector generation, hit chunks)
// comes from one snapshot of the store.
//
// Thread rules: as LibraryStore, one thread at a time.

#include <cstdint>
#include <map>
#include <span>
#include <string_view>
#include <vector>
#include "index/embedding.h"
#include "index/embedding_index.h"
#include "index/retriever.h"

namespace folio::index {

inline constexpr int kRrfK = 60;
// Chosen on the labelled query sets (tests/data/retrieval, weights 0.45 to
// 0.65): 0.55 is the one where hybrid finds at least what vectors alone find
// across the notes (recall@5 1.000 vs 0.988) and keeps the filings' nDCG@10
// above BM25's. BM25 alone still finds more filing pages in its top 5 (0.885
// vs 0.856 within a filing): all-MiniLM-L6-v2 ranks a filing's pages poorly.
// Reranked by a cross-encoder (SearchOptions::rerank), its score blended
// with the fused one (reranking.h), hybrid finds more than BM25 there too
// (docs/benchmarks.md).
inline constexpr double kVectorWeight = 0.55;
// Candidates taken from each ranking before fusion.
inline constexpr int kCandidates = 50;

struct RankedChunk {
    std::int64_t chunk_id = 0;
    double score = 0;                   // higher is better
};

// Both inputs best first; the result best first, ties by chunk id. For
// fuse_weighted, each input's scores on its own fixed scale (above).
std::vector<RankedChunk> fuse_reciprocal_rank(const std::vector<RankedChunk>& keyword,
                                              const std::vector<RankedChunk>& vector, int k = kRrfK);
std::vector<RankedChunk> fuse_weighted(const std::vector<RankedChunk>& keyword, const std::vector<RankedChunk>& vector,
                                       double vector_weight = kVectorWeight);

class HybridSearcher {
public:
    HybridSearcher(LibraryStore& store, ChunkVectors& vectors) : store_(store), vectors_(vectors) {}

    // Best hits first, for options.mode Vector or Hybrid (Bm25 is passed to
    // Retriever). query_vector: the query embedded by the library's model.
    // Throws SearchError for an unusable query, or when the library has no
    // vectors.
    std::vector<SearchHit> search(std::string_view query, std::span<const float> query_vector,
                                  const SearchOptions& options);
    // The same, embedding the query with `embedder`, which must be the model
    // that made the library's vectors (else SearchError saying so).
    std::vector<SearchHit> search(std::string_view query, TextEmbedder& embedder, const SearchOptions& options);

private:
    // The first k of a ranking as hits: the keyword search's where it has
    // them, the others read from the store.
    std::vector<SearchHit> read_hits(std::vector<RankedChunk> fused, std::map<std::int64_t, SearchHit> keyword_hits,
                                     int k);

    LibraryStore& store_;
    ChunkVectors& vectors_;
};

}  // namespace folio::index
