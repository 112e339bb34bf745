#include "index/reranking.h"

#include <algorithm>
#include <cmath>
#include <numeric>

namespace folio::index {

std::string rerank_passage(const SearchHit& hit) {
    if (hit.heading_path.empty())
        return hit.text;
    return hit.heading_path + "\n" + hit.text;
}

std::vector<SearchHit> rerank(std::string_view query, std::vector<SearchHit> hits, PassageScorer& scorer, int k,
                              RerankOrder ordering) {
    if (hits.empty())
        return hits;
    std::vector<std::string> passages;
    passages.reserve(hits.size());
    for (const SearchHit& hit : hits)
        passages.push_back(rerank_passage(hit));
    const std::vector<float> logits = scorer.score(query, passages);
    std::vector<double> scores(logits.begin(), logits.end());
    if (ordering == RerankOrder::BlendedWithSearch)
        for (std::size_t i = 0; i < hits.size(); ++i)
            scores[i] = (1 - kRerankWeight) * hits[i].score + kRerankWeight / (1 + std::exp(-scores[i]));
    std::vector<std::size_t> order(hits.size());
    std::iota(order.begin(), order.end(), std::size_t{0});
    std::stable_sort(order.begin(), order.end(), [&](std::size_t a, std::size_t b) { return scores[a] > scores[b]; });
    std::vector<SearchHit> reranked;
    reranked.reserve(std::min(hits.size(), static_cast<std::size_t>(std::max(k, 0))));
    for (std::size_t i = 0; i < order.size() && static_cast<int>(reranked.size()) < k; ++i) {
        reranked.push_back(std::move(hits[order[i]]));
        reranked.back().score = scores[order[i]];
    }
    return reranked;
}

}  // namespace folio::index
