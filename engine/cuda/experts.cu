// A mixture of experts' own kernels (kernels.h): the routing, a warp a row,
// choosing what route_row (expert_routing.h) chooses on the CPU; the
// weighted sum of each row's experts; the rows' scatter after a grouped
// prefill; and the sigmoid gate of shared experts. The experts' matrices go
// through matmul_experts and matmul (matmul.cu).

#include <cuda_runtime.h>

#include <climits>

#include "engine/cuda/check.cuh"
#include "engine/cuda/kernels.h"
#include "engine/cuda/warp.cuh"
#include "engine/expert_routing.h"

namespace folio::engine::cuda {

namespace {

constexpr int kThreads = 256;
constexpr int kRoutingWarps = 4;  // rows per block
constexpr int kPerLane = kMaxRoutedExperts / kWarpSize;  // expert e is lane e % 32's (e / 32)th

// An expert (or group) and its score; index INT_MAX: none left.
struct Candidate {
    float value;
    int index;
};

// best_untaken's order: the higher score, the lower index on ties.
__device__ __forceinline__ Candidate better(Candidate a, Candidate b) {
    if (b.index == INT_MAX) return a;
    if (a.index == INT_MAX) return b;
    return b.value > a.value || (b.value == a.value && b.index < a.index) ? b : a;
}

// The best of values[0, n) whose bit in the lane's `taken` mask is clear,
// over the whole warp; every lane gets it.
__device__ __forceinline__ Candidate best_in_warp(const float* values, int n, unsigned taken, int lane) {
    Candidate best{0.f, INT_MAX};
    for (int j = 0; j < kPerLane; ++j) {
        const int i = lane + j * kWarpSize;
        if (i < n && !(taken >> j & 1u)) best = better(best, Candidate{values[i], i});
    }
#pragma unroll
    for (int offset = kWarpSize / 2; offset > 0; offset /= 2) {
        const Candidate other{__shfl_xor_sync(0xFFFFFFFFu, best.value, offset),
                              __shfl_xor_sync(0xFFFFFFFFu, best.index, offset)};
        best = better(best, other);
    }
    return best;
}

// route_row with a warp a row: the scores, the group scores and the choice
// of each expert computed by its lane, each pick a reduction over the warp.
// A single thread walking a row's 128 experts, as the CPU does, took 65 us
// of a decode step's layer on an H200.
__global__ void route_experts_kernel(ExpertRouting r, const float* __restrict__ logits, std::int64_t n_rows,
                                     std::int32_t* __restrict__ ids, float* __restrict__ weights,
                                     unsigned long long* __restrict__ usage) {
    __shared__ float shared_scores[kRoutingWarps][kMaxRoutedExperts];
    __shared__ float shared_choice[kRoutingWarps][kMaxRoutedExperts];
    __shared__ float shared_groups[kRoutingWarps][kMaxRoutedExperts];
    __shared__ bool shared_kept[kRoutingWarps][kMaxRoutedExperts];
    const int warp = threadIdx.x / kWarpSize, lane = threadIdx.x % kWarpSize;
    const std::int64_t row = static_cast<std::int64_t>(blockIdx.x) * kRoutingWarps + warp;
    if (row >= n_rows) return;  // the whole warp; no block-wide barrier follows
    const int n = r.n_expert;
    const float* row_logits = logits + row * n;
    float* scores = shared_scores[warp];
    float* choice = shared_choice[warp];

    double softmax_sum = 1;
    if (!r.sigmoid) {
        float max_logit = -INFINITY;
        for (int e = lane; e < n; e += kWarpSize) max_logit = fmaxf(max_logit, row_logits[e]);
        max_logit = warp_max(max_logit);
        double sum = 0;
        for (int e = lane; e < n; e += kWarpSize) {
            scores[e] = expf(row_logits[e] - max_logit);
            sum += scores[e];
        }
        softmax_sum = warp_sum(sum);
    } else {
        for (int e = lane; e < n; e += kWarpSize) scores[e] = 1.f / (1.f + expf(-row_logits[e]));
    }
    for (int e = lane; e < n; e += kWarpSize) choice[e] = scores[e] + (r.selection_bias ? r.selection_bias[e] : 0.f);
    __syncwarp();

    if (r.n_groups > 1 && r.n_groups_used < r.n_groups) {
        const int group_size = n / r.n_groups;
        float* group_scores = shared_groups[warp];
        bool* kept = shared_kept[warp];
        for (int g = lane; g < r.n_groups; g += kWarpSize) {
            group_scores[g] = group_score(choice + g * group_size, group_size, r.sigmoid);
            kept[g] = false;
        }
        __syncwarp();
        unsigned taken_groups = 0;
        for (int k = 0; k < r.n_groups_used; ++k) {
            const int g = best_in_warp(group_scores, r.n_groups, taken_groups, lane).index;
            if (g % kWarpSize == lane) taken_groups |= 1u << (g / kWarpSize);
            if (lane == 0) kept[g] = true;
        }
        __syncwarp();
        for (int e = lane; e < n; e += kWarpSize)
            if (!kept[e / group_size]) choice[e] = -INFINITY;
        __syncwarp();
    }

    std::int32_t* row_ids = ids + row * r.n_used;
    float* row_weights = weights + row * r.n_used;
    unsigned taken = 0;
    double chosen_sum = 0;
    for (int k = 0; k < r.n_used; ++k) {
        const int e = best_in_warp(choice, n, taken, lane).index;
        if (e % kWarpSize == lane) taken |= 1u << (e / kWarpSize);
        chosen_sum += scores[e];
        if (lane == k % kWarpSize) {
            row_ids[k] = e;
            if (usage) atomicAdd(usage + e, 1ull);
        }
    }
    const double divisor = r.normalize_weights ? chosen_sum + (r.sigmoid ? 1e-20 : 0.0) : softmax_sum;
    __syncwarp();
    for (int k = lane; k < r.n_used; k += kWarpSize)
        row_weights[k] = static_cast<float>(scores[row_ids[k]] / divisor * r.weights_scale);
}

__global__ void combine_experts_kernel(const float* __restrict__ y, const float* __restrict__ weights,
                                       std::int64_t n_rows, int n_used, std::int64_t n, float* __restrict__ out) {
    const std::int64_t i = static_cast<std::int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
    if (i >= n_rows * n) return;
    const std::int64_t row = i / n, column = i % n;
    float sum = 0.f;
    for (int k = 0; k < n_used; ++k) sum += weights[row * n_used + k] * y[(row * n_used + k) * n + column];
    out[i] = sum;
}

__global__ void scatter_rows_kernel(const float* __restrict__ x, const std::int32_t* __restrict__ ids, std::int64_t n,
                                    std::int64_t cols, float* __restrict__ out) {
    const std::int64_t i = static_cast<std::int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
    if (i >= n * cols) return;
    out[static_cast<std::int64_t>(ids[i / cols]) * cols + i % cols] = x[i];
}

__global__ void add_sigmoid_scaled_kernel(const float* __restrict__ y, const float* __restrict__ logits,
                                          std::int64_t n_rows, std::int64_t n, float* __restrict__ out) {
    const std::int64_t i = static_cast<std::int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
    if (i >= n_rows * n) return;
    out[i] += y[i] / (1.f + expf(-logits[i / n]));
}

}  // namespace

void route_experts(Stream& stream, const ExpertRouting& routing, const float* logits, std::int64_t n_rows,
                   std::int32_t* ids, float* weights, unsigned long long* usage) {
    if (routing.n_expert < 1 || routing.n_expert > kMaxRoutedExperts || routing.n_used < 1 ||
        routing.n_used > routing.n_expert || routing.n_groups > kMaxRoutedExperts)
        throw CudaError("cannot route " + std::to_string(routing.n_used) + " of " + std::to_string(routing.n_expert) +
                        " experts on the GPU (at most " + std::to_string(kMaxRoutedExperts) + ")");
    route_experts_kernel<<<blocks_for(n_rows, kRoutingWarps), kRoutingWarps * kWarpSize, 0,
                           static_cast<cudaStream_t>(stream.handle())>>>(routing, logits, n_rows, ids, weights, usage);
    check_launch("route_experts");
}

void combine_experts(Stream& stream, const float* y, const float* weights, std::int64_t n_rows, int n_used,
                     std::int64_t n, float* out) {
    combine_experts_kernel<<<blocks_for(n_rows * n, kThreads), kThreads, 0, static_cast<cudaStream_t>(stream.handle())>>>(
        y, weights, n_rows, n_used, n, out);
    check_launch("combine_experts");
}

void scatter_rows(Stream& stream, const float* x, const std::int32_t* ids, std::int64_t n, std::int64_t cols,
                  float* out) {
    scatter_rows_kernel<<<blocks_for(n * cols, kThreads), kThreads, 0, static_cast<cudaStream_t>(stream.handle())>>>(
        x, ids, n, cols, out);
    check_launch("scatter_rows");
}

void add_sigmoid_scaled(Stream& stream, const float* y, const float* logits, std::int64_t n_rows, std::int64_t n,
                        float* out) {
    add_sigmoid_scaled_kernel<<<blocks_for(n_rows * n, kThreads), kThreads, 0,
                                static_cast<cudaStream_t>(stream.handle())>>>(y, logits, n_rows, n, out);
    check_launch("add_sigmoid_scaled");
}

}  // namespace folio::engine::cuda
