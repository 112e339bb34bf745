// Weight matrices times activations (kernels.h): fused dequantizing
// matrix-vector kernels for decode (int8 dot products on quantized weights,
// f32 on float ones), dequantization to f16 plus cuBLAS tensor-core GEMMs
// (the activations as two f16 terms) for prefill, and the embedding-row gather.

#include <cublas_v2.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <algorithm>
#include <string>

#include "engine/cuda/check.cuh"
#include "engine/cuda/kernels.h"
#include "engine/cuda/warp.cuh"
#include "engine/cuda/weight_formats.cuh"

namespace folio::engine::cuda {

namespace {

constexpr int kRowsPerBlock = 4;  // warps per block: one weight row each, or fewer rows (warps_per_row)
// Up to this many activation rows go through the matrix-vector kernel,
// which then reuses each dequantized weight for all of them; more take the
// GEMM, whose dequantization pass is repaid by the tensor cores.
// Elements of weight dequantized to f16 per GEMM call: bounds the workspace.
constexpr std::int64_t kTileElements = std::int64_t{32} << 20;
constexpr int kQ8Block = 32;  // activations per int8 scale

// What a matrix-vector launch multiplies: w times its kCols activation
// rows; or, with expert ids, for each pair p = blockIdx.y the matrix of
// expert ids[p] (experts[ids[p]]) times activation row p / pairs_per_row,
// into output row p (matmul_experts).
struct PairSelection {
    const void* const* experts = nullptr;
    const std::int32_t* ids = nullptr;
    int pairs_per_row = 1;
};

// out (kCols, rows) = x (kCols, cols) · wᵀ, one warp per row: its lanes walk
// the row's chunks in order, so a warp's loads of a block are contiguous.
template <class Format, int kCols>
__global__ void __launch_bounds__(kWarpSize* kRowsPerBlock)
    matvec_kernel(const std::uint8_t* __restrict__ w, std::int64_t row_bytes, std::int64_t rows, std::int64_t cols,
                  const float* __restrict__ x, float* __restrict__ out, PairSelection pairs) {
    const std::int64_t row = static_cast<std::int64_t>(blockIdx.x) * kRowsPerBlock + threadIdx.y;
    if (row >= rows) return;
    if (pairs.ids) {
        w = static_cast<const std::uint8_t*>(pairs.experts[pairs.ids[blockIdx.y]]);
        x += static_cast<std::int64_t>(blockIdx.y / pairs.pairs_per_row) * cols;
        out += static_cast<std::int64_t>(blockIdx.y) * rows;
    }
    const std::uint8_t* w_row = w + row * row_bytes;
    const int n_chunks = static_cast<int>(cols / Format::kElements) * Format::kChunks;
    float acc[kCols] = {};
    for (int i = threadIdx.x; i < n_chunks; i += kWarpSize) {
        const int block = i / Format::kChunks, chunk = i % Format::kChunks;
        float v[Format::kRuns][Format::kRunLength];
        Format::load(w_row + static_cast<std::int64_t>(block) * Format::kBytes, chunk, v);
        const float* x_block = x + static_cast<std::int64_t>(block) * Format::kElements;
#pragma unroll
        for (int r = 0; r < Format::kRuns; ++r) {
            const int start = Format::run_start(chunk, r);
#pragma unroll
            for (int c = 0; c < kCols; ++c) {
                const float4* xr = reinterpret_cast<const float4*>(x_block + c * cols + start);
#pragma unroll
                for (int e = 0; e < Format::kRunLength / 4; ++e) {
                    const float4 xv = __ldg(xr + e);
                    acc[c] += v[r][4 * e] * xv.x + v[r][4 * e + 1] * xv.y + v[r][4 * e + 2] * xv.z +
                              v[r][4 * e + 3] * xv.w;
                }
            }
        }
    }
#pragma unroll
    for (int c = 0; c < kCols; ++c) {
        const float sum = warp_sum(acc[c]);
        if (threadIdx.x == 0) out[c * rows + row] = sum;
    }
}

// The quantized types' matrix-vector product: activations as int8 blocks
// (quantize_activations_kernel), weights through Format::dot_q8. A row takes
// warps_per_row warps (1, 2 or 4) that split its chunks and add their sums
// through shared memory: matrices of few rows still keep the GPU's memory
// system busy with enough warps.
template <class Format, int kCols>
__global__ void __launch_bounds__(kWarpSize* kRowsPerBlock)
    matvec_q8_kernel(const std::uint8_t* __restrict__ w, std::int64_t row_bytes, std::int64_t rows, std::int64_t cols,
                     const std::int8_t* __restrict__ xq, const float* __restrict__ xd, float* __restrict__ out,
                     int warps_per_row, PairSelection pairs) {
    const int warp = threadIdx.y;
    const std::int64_t row = static_cast<std::int64_t>(blockIdx.x) * (kRowsPerBlock / warps_per_row) + warp / warps_per_row;
    const int part = warp % warps_per_row;
    const int n_chunks = static_cast<int>(cols / Format::kElements) * Format::kChunks;
    const std::int64_t scales_per_row = cols / kQ8Block;
    if (pairs.ids) {
        w = static_cast<const std::uint8_t*>(pairs.experts[pairs.ids[blockIdx.y]]);
        const std::int64_t x_row = blockIdx.y / pairs.pairs_per_row;
        xq += x_row * cols;
        xd += x_row * scales_per_row;
        out += static_cast<std::int64_t>(blockIdx.y) * rows;
    }
    float acc[kCols] = {};
    if (row < rows) {
        const std::uint8_t* w_row = w + row * row_bytes;
        for (int i = part * kWarpSize + threadIdx.x; i < n_chunks; i += kWarpSize * warps_per_row) {
            const int block = i / Format::kChunks, chunk = i % Format::kChunks;
            const std::uint8_t* w_block = w_row + static_cast<std::int64_t>(block) * Format::kBytes;
            const std::int64_t first = static_cast<std::int64_t>(block) * Format::kElements;
#pragma unroll
            for (int c = 0; c < kCols; ++c)
                acc[c] += Format::dot_q8(w_block, chunk, xq + c * cols + first, xd + c * scales_per_row + first / kQ8Block);
        }
    }
    __shared__ float partial[kRowsPerBlock][kCols];
#pragma unroll
    for (int c = 0; c < kCols; ++c) {
        const float sum = warp_sum(acc[c]);
        if (threadIdx.x == 0) partial[warp][c] = sum;
    }
    if (warps_per_row > 1) __syncthreads();
    if (threadIdx.x == 0 && part == 0 && row < rows) {
#pragma unroll
        for (int c = 0; c < kCols; ++c) {
            float sum = 0.f;
            for (int p = 0; p < warps_per_row; ++p) sum += partial[warp + p][c];
            out[c * rows + row] = sum;
        }
    }
}

// One warp per 32 activations: xq = round(x / d), d = max |x| / 127 (ggml's Q8_0, d kept in f32).
__global__ void quantize_activations_kernel(const float* __restrict__ x, std::int64_t n_blocks,
                                            std::int8_t* __restrict__ xq, float* __restrict__ xd) {
    const std::int64_t block = (static_cast<std::int64_t>(blockIdx.x) * blockDim.x + threadIdx.x) / kWarpSize;
    if (block >= n_blocks) return;
    const int lane = threadIdx.x % kWarpSize;
    const float value = x[block * kQ8Block + lane];
    const float amax = warp_max(fabsf(value));
    const float d = amax / 127.f;
    xq[block * kQ8Block + lane] = static_cast<std::int8_t>(d == 0.f ? 0 : __float2int_rn(value / d));
    if (lane == 0) xd[block] = d;
}

// out (n_rows, cols) = rows row_ids[i] (or i, without row_ids) of w, as Out.
template <class Format, class Out>
__global__ void dequantize_kernel(const std::uint8_t* __restrict__ w, std::int64_t row_bytes,
                                  const std::int32_t* __restrict__ row_ids, std::int64_t n_rows, std::int64_t cols,
                                  Out* __restrict__ out) {
    const std::int64_t chunks_per_row = cols / Format::kElements * Format::kChunks;
    const std::int64_t i = static_cast<std::int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
    if (i >= n_rows * chunks_per_row) return;
    const std::int64_t row = i / chunks_per_row;
    const std::int64_t block = i % chunks_per_row / Format::kChunks;
    const int chunk = static_cast<int>(i % Format::kChunks);
    const std::int64_t source_row = row_ids ? row_ids[row] : row;
    float v[Format::kRuns][Format::kRunLength];
    Format::load(w + source_row * row_bytes + block * Format::kBytes, chunk, v);
    Out* out_block = out + row * cols + block * Format::kElements;
#pragma unroll
    for (int r = 0; r < Format::kRuns; ++r) {
        const int start = Format::run_start(chunk, r);
        if constexpr (sizeof(Out) == 2) {
            // 16-byte stores. Element by element, a warp's stores landed a
            // chunk apart: a 768 x 2048 Q4_K expert took 22 us on an H200
            // (under 200 GB/s). Every format's runs are whole 8s starting on
            // an 8, and rows are whole 8s (require_readable), so each store
            // is 16-byte aligned.
            static_assert(Format::kRunLength % 8 == 0, "f16 runs are stored 8 elements at a time");
#pragma unroll
            for (int e = 0; e < Format::kRunLength; e += 8) {
                __align__(16) __half2 packed[4];
#pragma unroll
                for (int q = 0; q < 4; ++q) packed[q] = __floats2half2_rn(v[r][e + 2 * q], v[r][e + 2 * q + 1]);
                *reinterpret_cast<uint4*>(out_block + start + e) = *reinterpret_cast<const uint4*>(packed);
            }
        } else {
#pragma unroll
            for (int e = 0; e < Format::kRunLength; ++e) out_block[start + e] = v[r][e];
        }
    }
}

// x as two f16 terms, high (out[i]) + low (out[n + i]): the low one carries
// what rounding to f16 dropped, so that the pair holds x to about 22 bits.
__global__ void split_half_kernel(const float* __restrict__ x, std::int64_t n, __half* __restrict__ out) {
    const std::int64_t i = static_cast<std::int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
    if (i >= n) return;
    const __half high = __float2half_rn(x[i]);
    out[i] = high;
    out[n + i] = __float2half_rn(x[i] - __half2float(high));
}

template <class Format, class Out>
void dequantize(Stream& stream, const DeviceMatrix& w, std::int64_t first_row, const std::int32_t* row_ids,
                std::int64_t n_rows, Out* out) {
    constexpr int kThreads = 256;
    const std::int64_t chunks = n_rows * (w.cols / Format::kElements) * Format::kChunks;
    dequantize_kernel<Format, Out><<<blocks_for(chunks, kThreads), kThreads, 0, static_cast<cudaStream_t>(stream.handle())>>>(
        static_cast<const std::uint8_t*>(w.data) + first_row * w.row_bytes, w.row_bytes, row_ids, n_rows, w.cols, out);
    check_launch("dequantize");
}

// n_pairs: 1, or with pairs.ids the pairs (grid.y) of matmul_experts.
template <class Format, int kCols>
void launch_matvec(Stream& stream, const DeviceMatrix& w, const float* x, float* out, PairSelection pairs = {},
                   unsigned n_pairs = 1) {
    const dim3 threads(kWarpSize, kRowsPerBlock);
    const dim3 blocks(blocks_for(w.rows, kRowsPerBlock), n_pairs);
    matvec_kernel<Format, kCols><<<blocks, threads, 0, static_cast<cudaStream_t>(stream.handle())>>>(
        static_cast<const std::uint8_t*>(w.data), w.row_bytes, w.rows, w.cols, x, out, pairs);
    check_launch("matvec");
}

// Warps per row: enough warps in all to keep every multiprocessor's memory
// requests in flight (about 32 each), at most 4.
int warps_per_row(std::int64_t rows) {
    const std::int64_t wanted = 32 * static_cast<std::int64_t>(multiprocessors());
    return rows >= wanted ? 1 : 2 * rows >= wanted ? 2 : 4;
}

template <class Format, int kCols>
void launch_matvec_q8(Stream& stream, const DeviceMatrix& w, const std::int8_t* xq, const float* xd, float* out,
                      PairSelection pairs = {}, unsigned n_pairs = 1) {
    const dim3 threads(kWarpSize, kRowsPerBlock);
    const int per_row = warps_per_row(w.rows * n_pairs);
    const dim3 blocks(blocks_for(w.rows, kRowsPerBlock / per_row), n_pairs);
    matvec_q8_kernel<Format, kCols><<<blocks, threads, 0, static_cast<cudaStream_t>(stream.handle())>>>(
        static_cast<const std::uint8_t*>(w.data), w.row_bytes, w.rows, w.cols, xq, xd, out, per_row, pairs);
    check_launch("matvec_q8");
}

QuantizedRows quantize_into(Stream& stream, int slot, const float* x, std::int64_t n, std::int64_t cols) {
    const std::int64_t n_blocks = n * cols / kQ8Block;
    auto* workspace =
        static_cast<std::uint8_t*>(stream.workspace(slot, static_cast<std::size_t>(n * cols + n_blocks * sizeof(float))));
    auto* quants = reinterpret_cast<std::int8_t*>(workspace);
    auto* scales = reinterpret_cast<float*>(workspace + n * cols);  // n * cols is a multiple of 32
    constexpr int kThreads = 256;
    quantize_activations_kernel<<<blocks_for(n_blocks * kWarpSize, kThreads), kThreads, 0,
                                  static_cast<cudaStream_t>(stream.handle())>>>(x, n_blocks, quants, scales);
    check_launch("quantize_activations");
    return {quants, scales};
}

// Activation rows in groups of 8, 4, 2, 1: each group's weights are read once.
template <class Format>
void matvec(Stream& stream, const DeviceMatrix& w, const float* x, std::int64_t n, float* out,
            const QuantizedRows* quantized) {
    QuantizedRows rows;
    if constexpr (Format::kQuantized) rows = quantized ? *quantized : quantize_into(stream, 0, x, n, w.cols);
    for (std::int64_t done = 0; done < n;) {
        const std::int64_t left = n - done;
        const int group = left >= 8 ? 8 : left >= 4 ? 4 : left >= 2 ? 2 : 1;
        float* out_rows = out + done * w.rows;
        if constexpr (Format::kQuantized) {
            const std::int8_t* xq_rows = rows.quants + done * w.cols;
            const float* xd_rows = rows.scales + done * w.cols / kQ8Block;
            switch (group) {
                case 8: launch_matvec_q8<Format, 8>(stream, w, xq_rows, xd_rows, out_rows); break;
                case 4: launch_matvec_q8<Format, 4>(stream, w, xq_rows, xd_rows, out_rows); break;
                case 2: launch_matvec_q8<Format, 2>(stream, w, xq_rows, xd_rows, out_rows); break;
                default: launch_matvec_q8<Format, 1>(stream, w, xq_rows, xd_rows, out_rows); break;
            }
        } else {
            const float* x_rows = x + done * w.cols;
            switch (group) {
                case 8: launch_matvec<Format, 8>(stream, w, x_rows, out_rows); break;
                case 4: launch_matvec<Format, 4>(stream, w, x_rows, out_rows); break;
                case 2: launch_matvec<Format, 2>(stream, w, x_rows, out_rows); break;
                default: launch_matvec<Format, 1>(stream, w, x_rows, out_rows); break;
            }
        }
        done += group;
    }
}

void check_cublas(cublasStatus_t status, const char* what) {
    if (status != CUBLAS_STATUS_SUCCESS)
        throw CudaError(std::string("cuBLAS cannot ") + what + " (status " + std::to_string(static_cast<int>(status)) + ")");
}

// The activations go to the tensor cores as two f16 terms (split_half_kernel)
// and each weight tile is multiplied by both, the second product added onto
// the first: one f16 rounding of the activations alone put the logits of a
// small model 2e-3 of their range off the CPU's f32 products, and shifted
// near-tied expert choices.
template <class Format>
void gemm(Stream& stream, const DeviceMatrix& w, const float* x, std::int64_t n, float* out) {
    constexpr int kThreads = 256;
    const std::int64_t elements = n * w.cols;
    auto* x_split = static_cast<__half*>(stream.workspace(0, static_cast<std::size_t>(2 * elements) * sizeof(__half)));
    split_half_kernel<<<blocks_for(elements, kThreads), kThreads, 0, static_cast<cudaStream_t>(stream.handle())>>>(
        x, elements, x_split);
    check_launch("split_half");
    const bool weights_are_half = w.ggml_type == 1;
    const std::int64_t tile_rows = std::max<std::int64_t>(1, std::min(w.rows, kTileElements / w.cols));
    auto* tile = weights_are_half ? nullptr
                                  : static_cast<__half*>(stream.workspace(
                                        1, static_cast<std::size_t>(tile_rows * w.cols) * sizeof(__half)));
    const float alpha = 1.f;
    for (std::int64_t first = 0; first < w.rows; first += tile_rows) {
        const std::int64_t rows = std::min(tile_rows, w.rows - first);
        const void* a = weights_are_half ? static_cast<const std::uint8_t*>(w.data) + first * w.row_bytes
                                         : static_cast<const void*>(tile);
        if (!weights_are_half) dequantize<Format, __half>(stream, w, first, nullptr, rows, tile);
        // cuBLAS is column-major: the row-major tile (rows, cols) is A (cols,
        // rows) taken transposed, x (n, cols) is B (cols, n), and out (n,
        // w.rows) is C (w.rows, n), this tile's part starting at out + first.
        for (int term = 0; term < 2; ++term) {
            const float beta = term == 0 ? 0.f : 1.f;
            check_cublas(cublasGemmEx(static_cast<cublasHandle_t>(stream.cublas()), CUBLAS_OP_T, CUBLAS_OP_N,
                                      static_cast<int>(rows), static_cast<int>(n), static_cast<int>(w.cols), &alpha, a,
                                      CUDA_R_16F, static_cast<int>(w.cols), x_split + term * elements, CUDA_R_16F,
                                      static_cast<int>(w.cols), &beta, out + first, CUDA_R_32F,
                                      static_cast<int>(w.rows), CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT),
                         "multiply a weight tile");
        }
    }
}

void require_readable(const DeviceMatrix& w) {
    if (!reads_weight_type(w.ggml_type))
        throw CudaError("the CUDA kernels do not read weight type " + std::to_string(w.ggml_type));
    if (w.cols % 8 != 0)
        throw CudaError("the CUDA kernels need rows of a multiple of 8 elements, not " + std::to_string(w.cols));
}

}  // namespace

bool reads_weight_type(std::uint32_t ggml_type) {
    return formats::dispatch(ggml_type, [](auto) {});
}

bool takes_int8_activations(std::uint32_t ggml_type) {
    bool quantized = false;
    formats::dispatch(ggml_type, [&](auto format) { quantized = decltype(format)::kQuantized; });
    return quantized;
}

QuantizedRows quantize_rows(Stream& stream, const float* x, std::int64_t n, std::int64_t cols) {
    return quantize_into(stream, 3, x, n, cols);
}

void matmul(Stream& stream, const DeviceMatrix& w, const float* x, std::int64_t n, float* out,
            const QuantizedRows* quantized) {
    require_readable(w);
    formats::dispatch(w.ggml_type, [&](auto format) {
        using Format = decltype(format);
        if (n <= kMaxVectorRows)
            matvec<Format>(stream, w, x, n, out, quantized);
        else
            gemm<Format>(stream, w, x, n, out);
    });
}

void matmul_experts(Stream& stream, const DeviceExperts& w, const std::int32_t* ids, std::int64_t n_pairs,
                    int pairs_per_row, const float* x, float* out, const QuantizedRows* quantized) {
    // One expert's shape stands for all (their data come through the ids).
    const DeviceMatrix shape{w.ggml_type, nullptr, w.rows, w.cols, w.row_bytes};
    require_readable(shape);
    if (n_pairs < 1 || n_pairs > kMaxExpertPairs)
        throw CudaError("matmul_experts takes 1 to " + std::to_string(kMaxExpertPairs) + " pairs, not " +
                        std::to_string(n_pairs));
    const PairSelection pairs{w.data, ids, pairs_per_row};
    const auto grid_pairs = static_cast<unsigned>(n_pairs);
    formats::dispatch(w.ggml_type, [&](auto format) {
        using Format = decltype(format);
        if constexpr (Format::kQuantized) {
            const std::int64_t x_rows = (n_pairs + pairs_per_row - 1) / pairs_per_row;
            const QuantizedRows rows = quantized ? *quantized : quantize_into(stream, 0, x, x_rows, w.cols);
            launch_matvec_q8<Format, 1>(stream, shape, rows.quants, rows.scales, out, pairs, grid_pairs);
        } else {
            launch_matvec<Format, 1>(stream, shape, x, out, pairs, grid_pairs);
        }
    });
}

void embed_rows(Stream& stream, const DeviceMatrix& table, const std::int32_t* tokens, std::int64_t n_tokens,
                float* out) {
    require_readable(table);
    formats::dispatch(table.ggml_type, [&](auto format) {
        dequantize<decltype(format), float>(stream, table, 0, tokens, n_tokens, out);
    });
}

}  // namespace folio::engine::cuda
