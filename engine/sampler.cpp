#include "engine/sampler.h"

#include <algorithm>
#include <cmath>
#include <stdexcept>
#include <unordered_set>

namespace folio::engine {
namespace {

void sort_descending(std::vector<TokenCandidate>& candidates) {
    std::stable_sort(candidates.begin(), candidates.end(),
                     [](const TokenCandidate& a, const TokenCandidate& b) { return a.logit > b.logit; });
}

// softmax of sorted candidates' logits (best first), at temperature 1.
std::vector<double> softmax(const std::vector<TokenCandidate>& candidates) {
    std::vector<double> p(candidates.size());
    if (candidates.empty()) return p;
    const double max_logit = candidates.front().logit;
    double sum = 0;
    for (std::size_t i = 0; i < candidates.size(); ++i) {
        p[i] = std::exp(static_cast<double>(candidates[i].logit) - max_logit);
        sum += p[i];
    }
    for (double& value : p) value /= sum;
    return p;
}

}  // namespace

Sampler::Sampler(SamplerOptions options) : options_(options), rng_(options.seed) {
    if (!(options_.temperature >= 0)) throw std::invalid_argument("temperature must be >= 0");
}

void Sampler::apply_penalties(std::vector<TokenCandidate>& candidates, std::span<const std::int32_t> history,
                              float repetition_penalty, int window, float presence_penalty) {
    if ((repetition_penalty == 1.0f && presence_penalty == 0.0f) || window <= 0 || history.empty()) return;
    const std::size_t n = std::min(history.size(), static_cast<std::size_t>(window));
    const std::unordered_set<std::int32_t> seen(history.end() - static_cast<std::ptrdiff_t>(n), history.end());
    for (TokenCandidate& candidate : candidates) {
        if (!seen.count(candidate.id)) continue;
        candidate.logit = candidate.logit > 0 ? candidate.logit / repetition_penalty
                                              : candidate.logit * repetition_penalty;
        candidate.logit -= presence_penalty;
    }
}

void Sampler::top_k(std::vector<TokenCandidate>& candidates, int k) {
    if (k > 0 && static_cast<std::size_t>(k) < candidates.size()) {
        std::partial_sort(candidates.begin(), candidates.begin() + k, candidates.end(),
                          [](const TokenCandidate& a, const TokenCandidate& b) {
                              return a.logit > b.logit || (a.logit == b.logit && a.id < b.id);
                          });
        candidates.resize(static_cast<std::size_t>(k));
    } else {
        sort_descending(candidates);
    }
}

// Keeps the smallest prefix whose probability reaches p (llama.cpp: at least one).
void Sampler::top_p(std::vector<TokenCandidate>& candidates, float p) {
    if (p >= 1.0f || candidates.empty()) return;
    const std::vector<double> probs = softmax(candidates);
    double cumulative = 0;
    std::size_t keep = candidates.size();
    for (std::size_t i = 0; i < probs.size(); ++i) {
        cumulative += probs[i];
        if (cumulative >= p) {
            keep = i + 1;
            break;
        }
    }
    candidates.resize(keep);
}

// Keeps tokens whose probability is at least p times the best one's.
void Sampler::min_p(std::vector<TokenCandidate>& candidates, float p) {
    if (p <= 0.0f || candidates.empty()) return;
    // p_i / p_max = exp(logit_i - logit_max)
    const float threshold = candidates.front().logit + std::log(p);
    std::size_t keep = 1;
    while (keep < candidates.size() && candidates[keep].logit >= threshold) ++keep;
    candidates.resize(keep);
}

std::int32_t Sampler::sample(std::span<const float> logits, std::span<const std::int32_t> history) {
    if (logits.empty()) throw std::invalid_argument("no logits to sample from");
    std::vector<TokenCandidate> candidates(logits.size());
    for (std::size_t i = 0; i < logits.size(); ++i)
        candidates[i] = {static_cast<std::int32_t>(i), logits[i]};
    apply_penalties(candidates, history, options_.repetition_penalty, options_.repetition_window,
                    options_.presence_penalty);
    if (options_.temperature == 0.0f) {
        const auto best = std::max_element(candidates.begin(), candidates.end(),
                                           [](const TokenCandidate& a, const TokenCandidate& b) {
                                               return a.logit < b.logit;
                                           });
        return best->id;
    }
    top_k(candidates, options_.top_k);
    top_p(candidates, options_.top_p);
    min_p(candidates, options_.min_p);
    for (TokenCandidate& candidate : candidates) candidate.logit /= options_.temperature;
    const std::vector<double> probs = softmax(candidates);
    std::discrete_distribution<std::size_t> draw(probs.begin(), probs.end());
    return candidates[draw(rng_)].id;
}

}  // namespace folio::engine
