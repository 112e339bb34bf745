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

// How the reranker's score orders the candidates.
enum class RerankOrder {
    // By the scorer's score alone, which becomes SearchHit::score.
    ScorerAlone,
    // By (1 - kRerankWeight) * the search's score + kRerankWeight *
    // sigmoid(the scorer's logit), which becomes SearchHit::score: for a
    // weighted hybrid search, whose fused score lies on a fixed scale of
    // about 0 to 1 (hybrid_search.h) as the sigmoid does.
    BlendedWithSearch,
};

// The reranker's share of a blended order. Chosen on the labelled query
// sets (tests/data/retrieval, weights 0.1 to 0.7 and 1): the reranker alone
// finds the most filing pages but drops two notes from the first 5 across
// the library that the fused order has first; from 0.25 to 0.375 every note
// stays in the first 5, and 0.35 is where the filings gain the most within
// that range (docs/benchmarks.md).
inline constexpr double kRerankWeight = 0.35;

// The hits ordered as `order` says (equal scores keep the search's order),
// the first k kept.
std::vector<SearchHit> rerank(std::string_view query, std::vector<SearchHit> hits, PassageScorer& scorer, int k,
                              RerankOrder order = RerankOrder::ScorerAlone);

}  // namespace folio::index
