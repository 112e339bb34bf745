#pragma once
// Choosing a row's experts from its router logits (internal to the engine):
// route_row is what the CPU backend runs per row (blocks_cpu.cpp), and the
// reference the CUDA backend's warp-per-row routing (cuda/experts.cu) is
// tested against (tst_cuda expertOpsMatchCpu). Plain C++17 without
// allocation: nvcc compiles this header too (group_score runs on the GPU).

#include <cmath>
#include <cstdint>

#if defined(__CUDACC__)
#define FOLIO_HOST_DEVICE __host__ __device__
#else
#define FOLIO_HOST_DEVICE
#endif

namespace folio::engine {

// The most experts (and expert groups) a layer may have: the scratch kept
// for a row. DeepSeek-V3 has 256, Qwen3-30B-A3B 128.
inline constexpr int kMaxRoutedExperts = 256;

// How a layer chooses (ExpertFfn's fields, blocks_cpu.h).
struct ExpertRouting {
    int n_expert = 0;
    int n_used = 0;
    bool sigmoid = false;            // ExpertGating::Sigmoid; else softmax
    bool normalize_weights = false;  // the chosen weights divided by their sum
    float weights_scale = 1.f;
    int n_groups = 1;
    int n_groups_used = 1;
    const float* selection_bias = nullptr;  // (n_expert) in the memory of whoever runs route_row, or null
};

// A group's score for group-limited routing: its best expert's choice
// (softmax), or its best two's sum (sigmoid).
FOLIO_HOST_DEVICE inline float group_score(const float* group, int group_size, bool sigmoid) {
    float first = -INFINITY, second = -INFINITY;
    for (int i = 0; i < group_size; ++i) {
        if (group[i] > first) {
            second = first;
            first = group[i];
        } else if (group[i] > second) {
            second = group[i];
        }
    }
    return !sigmoid || group_size < 2 ? first : first + second;
}

// The index of the best of scores[0, n) not yet taken, the lower index on
// ties (as a stable sort gives); -1 when every one is taken.
inline int best_untaken(const float* scores, const bool* taken, int n) {
    int best = -1;
    for (int i = 0; i < n; ++i)
        if (!taken[i] && (best < 0 || scores[i] > scores[best])) best = i;
    return best;
}

// One row: ids and weights (n_used each) of its chosen experts, best first.
// scores and choice are scratch of n_expert floats, taken of n_expert
// flags. Softmax gating, or each expert's sigmoid; the selection bias
// shifts the choice, not the weights; group-limited routing (DeepSeek)
// keeps the n_groups_used groups with the best group scores — their best
// expert's (softmax) or their best two's sum (sigmoid).
inline void route_row(const ExpertRouting& r, const float* logits, float* scores, float* choice,
                                        bool* taken, std::int32_t* ids, float* weights) {
    const int n = r.n_expert;
    double softmax_sum = 1;
    if (!r.sigmoid) {
        float max_logit = logits[0];
        for (int e = 1; e < n; ++e) max_logit = logits[e] > max_logit ? logits[e] : max_logit;
        softmax_sum = 0;
        for (int e = 0; e < n; ++e) {
            scores[e] = expf(logits[e] - max_logit);
            softmax_sum += scores[e];
        }
    } else {
        for (int e = 0; e < n; ++e) scores[e] = 1.f / (1.f + expf(-logits[e]));
    }
    for (int e = 0; e < n; ++e) {
        choice[e] = scores[e] + (r.selection_bias ? r.selection_bias[e] : 0.f);
        taken[e] = false;
    }
    if (r.n_groups > 1 && r.n_groups_used < r.n_groups) {
        const int group_size = n / r.n_groups;
        float group_scores[kMaxRoutedExperts];
        bool group_taken[kMaxRoutedExperts];
        for (int g = 0; g < r.n_groups; ++g) {
            group_scores[g] = group_score(choice + g * group_size, group_size, r.sigmoid);
            group_taken[g] = false;
        }
        // The kept groups are marked taken; the rest lose their experts.
        for (int k = 0; k < r.n_groups_used; ++k) group_taken[best_untaken(group_scores, group_taken, r.n_groups)] = true;
        for (int e = 0; e < n; ++e)
            if (!group_taken[e / group_size]) choice[e] = -INFINITY;
    }
    double chosen_sum = 0;
    for (int k = 0; k < r.n_used; ++k) {
        const int e = best_untaken(choice, taken, n);
        taken[e] = true;
        ids[k] = e;
        chosen_sum += scores[e];
    }
    // Softmax scores are exp(logit - max) until divided by the sum over all
    // experts; normalizing divides by the chosen ones' sum instead (the
    // common factor cancels). DeepSeek-V3 adds 1e-20 to its divisor.
    const double divisor = r.normalize_weights ? chosen_sum + (r.sigmoid ? 1e-20 : 0.0) : softmax_sum;
    for (int k = 0; k < r.n_used; ++k) weights[k] = static_cast<float>(scores[ids[k]] / divisor * r.weights_scale);
}

}  // namespace folio::engine
