#pragma once
#include <cstdint>
#include <random>
#include <span>
#include <vector>

// Turns a row of logits into the next token, in llama.cpp's default order:
// penalties (repetition, presence) → top-k → top-p → min-p → temperature →
// a draw from the softmax of what is left, with std::mt19937_64 seeded once,
// so the same seed and logits give the same tokens.
//
//   Sampler sampler({.temperature = 0.7f, .seed = 42});
//   std::int32_t next = sampler.sample(logits, recent_tokens);

namespace folio::engine {

struct SamplerOptions {
    float temperature = 0.8f;        // 0: greedy (argmax after penalties)
    int top_k = 40;                  // <= 0: all tokens
    float top_p = 0.95f;             // >= 1: off
    float min_p = 0.05f;             // <= 0: off; keeps p >= min_p * p_max
    float repetition_penalty = 1.0f; // 1: off; CTRL paper: a seen token's logit / penalty (* if negative)
    int repetition_window = 64;      // how many of the last tokens the penalties look at
    float presence_penalty = 0.0f;   // subtracted once from a seen token's logit
    std::uint64_t seed = 0;
};

// One candidate token during sampling.
struct TokenCandidate {
    std::int32_t id;
    float logit;
};

class Sampler {
public:
    explicit Sampler(SamplerOptions options);

    const SamplerOptions& options() const { return options_; }

    // The next token for logits (n_vocab) after the tokens so far (prompt and
    // generated; only the last repetition_window count).
    std::int32_t sample(std::span<const float> logits, std::span<const std::int32_t> history);

    // The stages, exposed for tests. Each keeps candidates sorted by logit,
    // best first, after top_k; penalties work on any order.
    static void apply_penalties(std::vector<TokenCandidate>& candidates, std::span<const std::int32_t> history,
                                float repetition_penalty, int window, float presence_penalty);
    static void top_k(std::vector<TokenCandidate>& candidates, int k);      // sorts
    static void top_p(std::vector<TokenCandidate>& candidates, float p);    // sorted input
    static void min_p(std::vector<TokenCandidate>& candidates, float p);    // sorted input

private:
    SamplerOptions options_;
    std::mt19937_64 rng_;
};

}  // namespace folio::engine
