// A mixture of experts' own kernels (kernels.h): the routing, one thread a
// row through route_row, the same code the CPU backend runs; the weighted
// sum of each row's experts; the rows' scatter after a grouped prefill; and
// the sigmoid gate of shared experts. The experts' matrices go through
// matmul_experts and matmul (matmul.cu).

#include <cuda_runtime.h>

#include "engine/cuda/check.cuh"
#include "engine/cuda/kernels.h"
#include "engine/expert_routing.h"

namespace folio::engine::cuda {

namespace {

constexpr int kThreads = 256;
// Rows routed per block: each thread keeps kMaxRoutedExperts scores of its
// row (in local memory), so blocks stay small.
constexpr int kRoutingThreads = 32;

__global__ void route_experts_kernel(ExpertRouting routing, const float* __restrict__ logits, std::int64_t n_rows,
                                     std::int32_t* __restrict__ ids, float* __restrict__ weights,
                                     unsigned long long* __restrict__ usage) {
    const std::int64_t row = static_cast<std::int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
    if (row >= n_rows) return;
    float scores[kMaxRoutedExperts], choice[kMaxRoutedExperts];
    bool taken[kMaxRoutedExperts];
    std::int32_t* row_ids = ids + row * routing.n_used;
    route_row(routing, logits + row * routing.n_expert, scores, choice, taken, row_ids, weights + row * routing.n_used);
    if (usage)
        for (int k = 0; k < routing.n_used; ++k) atomicAdd(usage + row_ids[k], 1ull);
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
    route_experts_kernel<<<blocks_for(n_rows, kRoutingThreads), kRoutingThreads, 0,
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
