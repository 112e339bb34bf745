#pragma once
// Reranking: a cross-encoder reads the query and each candidate passage
// together and scores how well the passage answers it, which neither BM25
// nor a vector comparison of separately embedded texts does. It is too slow
// to read a whole library, so it reorders the first candidates of a search.
// app/ adapts the engine's Reranker to PassageScorer
// (app/engine_reranker.h), so index/ never names the engine.

#include <span>
#include <string>
#include <string_view>
#include <vector>
#include "index/retriever.h"

namespace folio::index {

class PassageScorer {
public:
    virtual ~PassageScorer() = default;
    // Which model this is (its file name), for reports.
    virtual const std::string& name() const = 0;
    // One score per passage, higher meaning more relevant to the query.
    // Throws std::runtime_error with a one-line reason.
    virtual std::vector<float> score(std::string_view query, std::span<const std::string> passages) = 0;
};

// Candidates a search hands the reranker (SearchOptions::rerank).
inline constexpr int kRerankCandidates = 20;

// What the reranker reads of a hit: its heading path, then its text.
std::string rerank_passage(const SearchHit& hit);

// The hits ordered by the scorer's scores (SearchHit::score becomes that
// score; equal scores keep the search's order), the first k kept.
std::vector<SearchHit> rerank(std::string_view query, std::vector<SearchHit> hits, PassageScorer& scorer, int k);

}  // namespace folio::index
