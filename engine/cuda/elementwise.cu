// Per-row and per-element ops of the CUDA backend (kernels.h): norms
// (RMS and LayerNorm), RoPE, biases, residuals, activations and strided
// copies of columns.

#include <cuda_runtime.h>

#include "engine/cuda/check.cuh"
#include "engine/cuda/kernels.h"
#include "engine/cuda/warp.cuh"

namespace folio::engine::cuda {

namespace {

constexpr int kThreads = 256;

cudaStream_t native(Stream& stream) { return static_cast<cudaStream_t>(stream.handle()); }

// One block per row: the sum of squares in a block-wide reduction. Rows of
// up to kCachedVectors float4s per thread are read once, into registers, with
// all their loads in flight at once: a decode step's single row is otherwise
// a chain of dependent memory round trips.
constexpr int kCachedVectors = 8;

// The sum of every thread's value, returned to all kThreads threads of the
// block, which must all call it.
__device__ float block_sum(float value) {
    __shared__ float partial[kThreads / kWarpSize];
    value = warp_sum(value);
    if (threadIdx.x % kWarpSize == 0) partial[threadIdx.x / kWarpSize] = value;
    __syncthreads();
    float total = 0.f;
#pragma unroll
    for (int w = 0; w < kThreads / kWarpSize; ++w)
        total += partial[w];
    __syncthreads();  // partial is read by all before a next call overwrites it
    return total;
}

__global__ void rms_norm_kernel(const float* __restrict__ x, const float* __restrict__ weight, std::int64_t n,
                                float eps, float* out) {
    const float* row = x + blockIdx.x * n;
    float* dst = out + blockIdx.x * n;
    const bool cached = n % 4 == 0 && n <= 4 * kThreads * kCachedVectors;
    float4 values[kCachedVectors];
    float sum = 0.f;
    if (cached) {
#pragma unroll
        for (int k = 0; k < kCachedVectors; ++k) {
            const std::int64_t i = 4 * (threadIdx.x + static_cast<std::int64_t>(k) * kThreads);
            values[k] = i < n ? *reinterpret_cast<const float4*>(row + i) : make_float4(0.f, 0.f, 0.f, 0.f);
            sum += values[k].x * values[k].x + values[k].y * values[k].y + values[k].z * values[k].z +
                   values[k].w * values[k].w;
        }
    } else {
        for (std::int64_t i = threadIdx.x; i < n; i += blockDim.x)
            sum += row[i] * row[i];
    }
    const float inverse_rms = rsqrtf(block_sum(sum) / static_cast<float>(n) + eps);
    if (cached) {
#pragma unroll
        for (int k = 0; k < kCachedVectors; ++k) {
            const std::int64_t i = 4 * (threadIdx.x + static_cast<std::int64_t>(k) * kThreads);
            if (i >= n) break;
            const float4 w = *reinterpret_cast<const float4*>(weight + i);
            *reinterpret_cast<float4*>(dst + i) =
                make_float4(values[k].x * inverse_rms * w.x, values[k].y * inverse_rms * w.y,
                            values[k].z * inverse_rms * w.z, values[k].w * inverse_rms * w.w);
        }
    } else {
        for (std::int64_t i = threadIdx.x; i < n; i += blockDim.x)
            dst[i] = row[i] * inverse_rms * weight[i];
    }
}

// One block per row, as the CPU's two passes: the mean, then the variance
// about it (no cancellation for rows far from zero). An encoder's rows are
// many and a few hundred wide: read again from the cache, not held in registers.
__global__ void layer_norm_kernel(const float* __restrict__ x, const float* __restrict__ weight,
                                  const float* __restrict__ bias, std::int64_t n, float eps, float* out) {
    const float* row = x + blockIdx.x * n;
    float* dst = out + blockIdx.x * n;
    float sum = 0.f;
    for (std::int64_t i = threadIdx.x; i < n; i += blockDim.x)
        sum += row[i];
    const float mean = block_sum(sum) / static_cast<float>(n);
    float sum_squares = 0.f;
    for (std::int64_t i = threadIdx.x; i < n; i += blockDim.x)
        sum_squares += (row[i] - mean) * (row[i] - mean);
    const float inverse_std = rsqrtf(block_sum(sum_squares) / static_cast<float>(n) + eps);
    // Each thread writes only the elements it read: out may be x.
    for (std::int64_t i = threadIdx.x; i < n; i += blockDim.x)
        dst[i] = (row[i] - mean) * inverse_std * weight[i] + bias[i];
}

__global__ void add_bias_kernel(float* x, const float* __restrict__ bias, std::int64_t total, std::int64_t n) {
    const std::int64_t i = static_cast<std::int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
    if (i < total) x[i] += bias[i % n];
}

__global__ void copy_columns_kernel(const float* __restrict__ x, std::int64_t x_stride, float* __restrict__ out,
                                    std::int64_t out_stride, std::int64_t n_rows, std::int64_t width) {
    const std::int64_t i = static_cast<std::int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
    if (i >= n_rows * width) return;
    const std::int64_t row = i / width, column = i % width;
    out[row * out_stride + column] = x[row * x_stride + column];
}

__global__ void add_kernel(float* x, const float* __restrict__ y, std::int64_t n) {
    const std::int64_t i = static_cast<std::int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
    if (i < n) x[i] += y[i];
}

__global__ void scale_kernel(float* x, std::int64_t n, float factor) {
    const std::int64_t i = static_cast<std::int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
    if (i < n) x[i] *= factor;
}

__global__ void soft_cap_kernel(float* x, std::int64_t n, float cap) {
    const std::int64_t i = static_cast<std::int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
    if (i < n) x[i] = cap * tanhf(x[i] / cap);
}

__global__ void gated_kernel(float* gate, const float* __restrict__ up, std::int64_t n, int activation) {
    const std::int64_t i = static_cast<std::int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
    if (i >= n) return;
    const float g = gate[i];
    float activated;
    if (activation == 0) {
        activated = g / (1.f + __expf(-g));
    } else {
        constexpr float kSqrtTwoOverPi = 0.7978845608028654f;
        activated = 0.5f * g * (1.f + tanhf(kSqrtTwoOverPi * (g + 0.044715f * g * g * g)));
    }
    gate[i] = activated * up[i];
}

__global__ void gelu_erf_kernel(float* x, std::int64_t n) {
    const std::int64_t i = static_cast<std::int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
    if (i >= n) return;
    constexpr float kInverseSqrt2 = 0.7071067811865476f;
    x[i] = 0.5f * x[i] * (1.f + erff(x[i] * kInverseSqrt2));
}

// One thread per (token, head, pair), the angle in double as the CPU
// backend computes it (a float angle drifts at long positions).
__global__ void rope_kernel(float* x, const std::int32_t* __restrict__ positions, std::int64_t n_tokens, int n_heads,
                            int head_dim, int n_pairs, const double* __restrict__ inv_freq, float attention_factor,
                            bool half_split) {
    const std::int64_t i = static_cast<std::int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
    if (i >= n_tokens * n_heads * n_pairs) return;
    const int pair = static_cast<int>(i % n_pairs);
    const std::int64_t head_row = i / n_pairs;  // token * n_heads + head
    const std::int64_t token = head_row / n_heads;
    double sin_theta, cos_theta;
    sincos(static_cast<double>(positions[token]) * inv_freq[pair], &sin_theta, &cos_theta);
    const float c = static_cast<float>(cos_theta) * attention_factor;
    const float s = static_cast<float>(sin_theta) * attention_factor;
    float* head = x + head_row * head_dim;
    const int first = half_split ? pair : 2 * pair;
    const int second = half_split ? pair + n_pairs : 2 * pair + 1;
    const float a = head[first], b = head[second];
    head[first] = a * c - b * s;
    head[second] = a * s + b * c;
}

}  // namespace

void rms_norm(Stream& stream, const float* x, const float* weight, std::int64_t n_rows, std::int64_t n, float eps,
              float* out) {
    rms_norm_kernel<<<static_cast<unsigned>(n_rows), kThreads, 0, native(stream)>>>(x, weight, n, eps, out);
    check_launch("rms_norm");
}

void layer_norm(Stream& stream, const float* x, const float* weight, const float* bias, std::int64_t n_rows,
                std::int64_t n, float eps, float* out) {
    layer_norm_kernel<<<static_cast<unsigned>(n_rows), kThreads, 0, native(stream)>>>(x, weight, bias, n, eps, out);
    check_launch("layer_norm");
}

void add_bias(Stream& stream, float* x, const float* bias, std::int64_t n_rows, std::int64_t n) {
    add_bias_kernel<<<blocks_for(n_rows * n, kThreads), kThreads, 0, native(stream)>>>(x, bias, n_rows * n, n);
    check_launch("add_bias");
}

void copy_columns(Stream& stream, const float* x, std::int64_t x_stride, float* out, std::int64_t out_stride,
                  std::int64_t n_rows, std::int64_t width) {
    copy_columns_kernel<<<blocks_for(n_rows * width, kThreads), kThreads, 0, native(stream)>>>(x, x_stride, out,
                                                                                              out_stride, n_rows, width);
    check_launch("copy_columns");
}

void add_in_place(Stream& stream, float* x, const float* y, std::int64_t n) {
    add_kernel<<<blocks_for(n, kThreads), kThreads, 0, native(stream)>>>(x, y, n);
    check_launch("add");
}

void scale_in_place(Stream& stream, float* x, std::int64_t n, float factor) {
    scale_kernel<<<blocks_for(n, kThreads), kThreads, 0, native(stream)>>>(x, n, factor);
    check_launch("scale");
}

void soft_cap(Stream& stream, float* x, std::int64_t n, float cap) {
    soft_cap_kernel<<<blocks_for(n, kThreads), kThreads, 0, native(stream)>>>(x, n, cap);
    check_launch("soft_cap");
}

void gated_activation(Stream& stream, float* gate, const float* up, std::int64_t n, int activation) {
    gated_kernel<<<blocks_for(n, kThreads), kThreads, 0, native(stream)>>>(gate, up, n, activation);
    check_launch("gated_activation");
}

void gelu_erf(Stream& stream, float* x, std::int64_t n) {
    gelu_erf_kernel<<<blocks_for(n, kThreads), kThreads, 0, native(stream)>>>(x, n);
    check_launch("gelu_erf");
}

void rope(Stream& stream, float* x, const std::int32_t* positions, std::int64_t n_tokens, int n_heads, int head_dim,
          int n_rot, const double* inv_freq, float attention_factor, bool half_split) {
    const int n_pairs = n_rot / 2;
    rope_kernel<<<blocks_for(n_tokens * n_heads * n_pairs, kThreads), kThreads, 0, native(stream)>>>(
        x, positions, n_tokens, n_heads, head_dim, n_pairs, inv_freq, attention_factor, half_split);
    check_launch("rope");
}

}  // namespace folio::engine::cuda
