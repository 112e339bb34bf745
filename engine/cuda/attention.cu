// Causal softmax attention over the f16 KV cache (kernels.h), with an online
// softmax throughout. Decode (few queries), flash-decoding style: each block
// walks a range of cache rows, its warps interleaving rows, and a long range
// is split over several blocks whose partial results a second kernel merges,
// so a single token still spreads over the GPU. Prefill: query tiles that
// share each key and value row through shared memory.

#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <algorithm>
#include <climits>
#include <cmath>

#include "engine/cuda/check.cuh"
#include "engine/cuda/kernels.h"

namespace folio::engine::cuda {

namespace {

constexpr int kWarpSize = 32;
constexpr int kWarps = 4;
constexpr int kMaxHeadDim = 256;
constexpr int kDimsPerLane = kMaxHeadDim / kWarpSize;
constexpr int kKeysPerSplit = 256;  // the least a split is given: below it the merge costs more than it spreads
constexpr int kMaxSplits = 64;

struct Partial {  // one split's share of a (token, head): sums relative to its own max
    float max;
    float sum;
};

__device__ __forceinline__ float warp_sum(float value) {
#pragma unroll
    for (int offset = kWarpSize / 2; offset > 0; offset /= 2)
        value += __shfl_xor_sync(0xFFFFFFFFu, value, offset);
    return value;
}

// grid (n_tokens * n_heads, n_splits), token-major. With one split the block writes out;
// with several it writes its Partial and unnormalized sums (v_head_dim) to
// partials / partial_values for merge_kernel.
__global__ void __launch_bounds__(kWarpSize* kWarps)
    attention_kernel(const float* __restrict__ q, const std::int32_t* __restrict__ positions,
                     const __half* __restrict__ keys, const __half* __restrict__ values, AttentionParameters p,
                     float* __restrict__ out, Partial* __restrict__ partials, float* __restrict__ partial_values) {
    const int n_heads = p.n_heads;
    const int head = static_cast<int>(blockIdx.x % n_heads);
    const std::int64_t token = blockIdx.x / n_heads;
    const int split = blockIdx.y, n_splits = gridDim.y;
    const int lane = threadIdx.x % kWarpSize, warp = threadIdx.x / kWarpSize;
    const int kv_head = head / (p.n_heads / p.n_kv_heads);
    const int k_stride = p.n_kv_heads * p.head_dim, v_stride = p.n_kv_heads * p.v_head_dim;

    const int position = positions[token];
    const int first_key = p.window > 0 ? max(0, position - p.window + 1) : 0;
    const int n_keys = position + 1 - first_key;
    const int per_split = (n_keys + n_splits - 1) / n_splits;
    const int begin = first_key + split * per_split;
    const int end = min(position + 1, begin + per_split);

    float q_lane[kDimsPerLane];
    const float* q_head = q + (token * n_heads + head) * p.head_dim;
#pragma unroll
    for (int i = 0; i < kDimsPerLane; ++i) {
        const int d = lane + kWarpSize * i;
        q_lane[i] = d < p.head_dim ? q_head[d] * p.scale : 0.f;
    }

    float running_max = -INFINITY, running_sum = 0.f;
    float acc[kDimsPerLane] = {};
    for (int j = begin + warp; j < end; j += kWarps) {
        const __half* key = keys + static_cast<std::int64_t>(j) * k_stride + kv_head * p.head_dim;
        float score = 0.f;
#pragma unroll
        for (int i = 0; i < kDimsPerLane; ++i) {
            const int d = lane + kWarpSize * i;
            if (d < p.head_dim) score += q_lane[i] * __half2float(key[d]);
        }
        score = warp_sum(score);
        const float new_max = fmaxf(running_max, score);
        const float correction = __expf(running_max - new_max);
        const float weight = __expf(score - new_max);
        running_sum = running_sum * correction + weight;
        const __half* value = values + static_cast<std::int64_t>(j) * v_stride + kv_head * p.v_head_dim;
#pragma unroll
        for (int i = 0; i < kDimsPerLane; ++i) {
            const int d = lane + kWarpSize * i;
            acc[i] = acc[i] * correction + (d < p.v_head_dim ? weight * __half2float(value[d]) : 0.f);
        }
        running_max = new_max;
    }

    // Merge the warps.
    __shared__ float warp_max[kWarps], warp_sum_of[kWarps];
    __shared__ float warp_acc[kWarps][kMaxHeadDim];
    if (lane == 0) {
        warp_max[warp] = running_max;
        warp_sum_of[warp] = running_sum;
    }
#pragma unroll
    for (int i = 0; i < kDimsPerLane; ++i)
        warp_acc[warp][lane + kWarpSize * i] = acc[i];
    __syncthreads();
    float block_max = -INFINITY;
#pragma unroll
    for (int w = 0; w < kWarps; ++w)
        block_max = fmaxf(block_max, warp_max[w]);
    float factor[kWarps];
    float block_sum = 0.f;
#pragma unroll
    for (int w = 0; w < kWarps; ++w) {
        factor[w] = warp_max[w] == -INFINITY ? 0.f : __expf(warp_max[w] - block_max);
        block_sum += warp_sum_of[w] * factor[w];
    }
    const std::int64_t row = token * n_heads + head;
    if (n_splits == 1) {
        for (int d = threadIdx.x; d < p.v_head_dim; d += blockDim.x) {
            float sum = 0.f;
#pragma unroll
            for (int w = 0; w < kWarps; ++w)
                sum += warp_acc[w][d] * factor[w];
            out[row * p.v_head_dim + d] = sum / block_sum;
        }
        return;
    }
    const std::int64_t slot = row * n_splits + split;
    if (threadIdx.x == 0) partials[slot] = Partial{block_max, block_sum};
    for (int d = threadIdx.x; d < p.v_head_dim; d += blockDim.x) {
        float sum = 0.f;
#pragma unroll
        for (int w = 0; w < kWarps; ++w)
            sum += warp_acc[w][d] * factor[w];
        partial_values[slot * p.v_head_dim + d] = sum;
    }
}

// One block per (token, head): the splits' partial results, rescaled to a common max.
__global__ void merge_kernel(const Partial* __restrict__ partials, const float* __restrict__ partial_values,
                             int n_splits, int v_head_dim, float* __restrict__ out) {
    const std::int64_t row = blockIdx.x;
    const Partial* mine = partials + row * n_splits;
    float max_all = -INFINITY;
    for (int s = 0; s < n_splits; ++s)
        max_all = fmaxf(max_all, mine[s].max);
    float sum_all = 0.f;
    for (int s = 0; s < n_splits; ++s)
        if (mine[s].max != -INFINITY) sum_all += mine[s].sum * __expf(mine[s].max - max_all);
    for (int d = threadIdx.x; d < v_head_dim; d += blockDim.x) {
        float value = 0.f;
        for (int s = 0; s < n_splits; ++s)
            if (mine[s].max != -INFINITY)
                value += partial_values[(row * n_splits + s) * v_head_dim + d] * __expf(mine[s].max - max_all);
        out[row * v_head_dim + d] = value / sum_all;
    }
}

// Prefill: a block takes kQueryTile queries of one head (kQueriesPerWarp
// per warp) and walks the keys their ranges cover in tiles of kTileKeys,
// staged in shared memory as f32. Lane j scores key j of a tile against the
// warp's queries (keys stored transposed, so a lane reads its own column);
// the online softmax then needs one warp reduction per query and tile, and
// each lane accumulates its share of the output dimensions. Every key and
// value row is read from memory once per query tile instead of once per query.
constexpr int kQueriesPerWarp = 4;
constexpr int kQueryTile = kWarps * kQueriesPerWarp;
constexpr int kTileKeys = kWarpSize;
constexpr int kPaddedTileKeys = kTileKeys + 1;  // transposed keys: a column stride of 33 floats spreads the banks

std::size_t prefill_shared_bytes(int head_dim, int v_head_dim) {
    return sizeof(float) * (static_cast<std::size_t>(kQueryTile) * head_dim +
                            static_cast<std::size_t>(head_dim) * kPaddedTileKeys +
                            static_cast<std::size_t>(kTileKeys) * v_head_dim + kQueryTile * kTileKeys);
}

__device__ __forceinline__ float warp_max(float value) {
#pragma unroll
    for (int offset = kWarpSize / 2; offset > 0; offset /= 2)
        value = fmaxf(value, __shfl_xor_sync(0xFFFFFFFFu, value, offset));
    return value;
}

// grid (ceil(n_tokens / kQueryTile), n_heads).
__global__ void __launch_bounds__(kWarpSize* kWarps)
    prefill_attention_kernel(const float* __restrict__ q, const std::int32_t* __restrict__ positions,
                             std::int64_t n_tokens, const __half* __restrict__ keys,
                             const __half* __restrict__ values, AttentionParameters p, float* __restrict__ out) {
    extern __shared__ float shared[];
    float* q_tile = shared;                                         // (kQueryTile, head_dim), scaled
    float* keys_t = q_tile + kQueryTile * p.head_dim;               // (head_dim, kPaddedTileKeys)
    float* value_tile = keys_t + p.head_dim * kPaddedTileKeys;      // (kTileKeys, v_head_dim)
    float* weights = value_tile + kTileKeys * p.v_head_dim;         // (kQueryTile, kTileKeys)
    __shared__ int range_begin, range_end;

    const int head = blockIdx.y;
    const int kv_head = head / (p.n_heads / p.n_kv_heads);
    const int k_stride = p.n_kv_heads * p.head_dim, v_stride = p.n_kv_heads * p.v_head_dim;
    const std::int64_t first_token = static_cast<std::int64_t>(blockIdx.x) * kQueryTile;
    const int lane = threadIdx.x % kWarpSize, warp = threadIdx.x / kWarpSize;

    if (threadIdx.x == 0) {
        range_begin = INT_MAX;
        range_end = 0;
    }
    for (int i = threadIdx.x; i < kQueryTile * p.head_dim; i += blockDim.x) {
        const std::int64_t token = first_token + i / p.head_dim;
        q_tile[i] = token < n_tokens ? q[(token * p.n_heads + head) * p.head_dim + i % p.head_dim] * p.scale : 0.f;
    }
    __syncthreads();
    if (threadIdx.x < kQueryTile && first_token + threadIdx.x < n_tokens) {
        const int position = positions[first_token + threadIdx.x];
        atomicMin(&range_begin, p.window > 0 ? max(0, position - p.window + 1) : 0);
        atomicMax(&range_end, position + 1);
    }

    int first_key[kQueriesPerWarp], last_key[kQueriesPerWarp];
    float running_max[kQueriesPerWarp], lane_sum[kQueriesPerWarp], acc[kQueriesPerWarp][kDimsPerLane];
#pragma unroll
    for (int k = 0; k < kQueriesPerWarp; ++k) {
        const std::int64_t token = first_token + warp * kQueriesPerWarp + k;
        const int position = token < n_tokens ? positions[token] : -1;  // -1: no keys
        first_key[k] = p.window > 0 ? max(0, position - p.window + 1) : 0;
        last_key[k] = position;
        running_max[k] = -INFINITY;
        lane_sum[k] = 0.f;
#pragma unroll
        for (int i = 0; i < kDimsPerLane; ++i) acc[k][i] = 0.f;
    }
    __syncthreads();
    const int begin = range_begin, end = range_end;

    for (int tile = begin; tile < end; tile += kTileKeys) {
        __syncthreads();  // the last tile's rows are no longer read
        for (int i = threadIdx.x; i < kTileKeys * p.head_dim; i += blockDim.x) {
            const int j = i / p.head_dim, d = i % p.head_dim;
            keys_t[d * kPaddedTileKeys + j] =
                tile + j < end ? __half2float(keys[static_cast<std::int64_t>(tile + j) * k_stride + kv_head * p.head_dim + d]) : 0.f;
        }
        for (int i = threadIdx.x; i < kTileKeys * p.v_head_dim; i += blockDim.x) {
            const int j = i / p.v_head_dim, d = i % p.v_head_dim;
            value_tile[i] = tile + j < end
                                ? __half2float(values[static_cast<std::int64_t>(tile + j) * v_stride + kv_head * p.v_head_dim + d])
                                : 0.f;
        }
        __syncthreads();

        float score[kQueriesPerWarp] = {};
        const float* my_queries = q_tile + warp * kQueriesPerWarp * p.head_dim;
        for (int d = 0; d < p.head_dim; ++d) {
            const float key = keys_t[d * kPaddedTileKeys + lane];
#pragma unroll
            for (int k = 0; k < kQueriesPerWarp; ++k) score[k] += my_queries[k * p.head_dim + d] * key;
        }
        const int key_index = tile + lane;
        float* my_weights = weights + warp * kQueriesPerWarp * kTileKeys;
#pragma unroll
        for (int k = 0; k < kQueriesPerWarp; ++k) {
            const bool visible = key_index >= first_key[k] && key_index <= last_key[k];
            const float tile_max = warp_max(visible ? score[k] : -INFINITY);
            const float new_max = fmaxf(running_max[k], tile_max);
            float correction = 1.f, weight = 0.f;
            if (new_max != -INFINITY) {
                correction = __expf(running_max[k] - new_max);
                weight = visible ? __expf(score[k] - new_max) : 0.f;
            }
            lane_sum[k] = lane_sum[k] * correction + weight;
            my_weights[k * kTileKeys + lane] = weight;
#pragma unroll
            for (int i = 0; i < kDimsPerLane; ++i) acc[k][i] *= correction;
            running_max[k] = new_max;
        }
        __syncwarp();
        for (int j = 0; j < kTileKeys; ++j) {
            float value[kDimsPerLane];
#pragma unroll
            for (int i = 0; i < kDimsPerLane; ++i) {
                const int d = lane + kWarpSize * i;
                value[i] = d < p.v_head_dim ? value_tile[j * p.v_head_dim + d] : 0.f;
            }
#pragma unroll
            for (int k = 0; k < kQueriesPerWarp; ++k) {
                const float weight = my_weights[k * kTileKeys + j];
#pragma unroll
                for (int i = 0; i < kDimsPerLane; ++i) acc[k][i] += weight * value[i];
            }
        }
    }

#pragma unroll
    for (int k = 0; k < kQueriesPerWarp; ++k) {
        const std::int64_t token = first_token + warp * kQueriesPerWarp + k;
        const float total = warp_sum(lane_sum[k]);
        if (token >= n_tokens) continue;
#pragma unroll
        for (int i = 0; i < kDimsPerLane; ++i) {
            const int d = lane + kWarpSize * i;
            if (d < p.v_head_dim) out[(token * p.n_heads + head) * p.v_head_dim + d] = acc[k][i] / total;
        }
    }
}

}  // namespace

void attention(Stream& stream, const float* q, const std::int32_t* positions, std::int64_t n_tokens,
               int max_position, const std::uint16_t* keys, const std::uint16_t* values,
               const AttentionParameters& p, float* out) {
    if (p.head_dim > kMaxHeadDim || p.v_head_dim > kMaxHeadDim)
        throw CudaError("the CUDA attention kernel takes heads of at most " + std::to_string(kMaxHeadDim) +
                        " elements, not " + std::to_string(std::max(p.head_dim, p.v_head_dim)));
    const auto native = static_cast<cudaStream_t>(stream.handle());
    if (n_tokens >= kQueryTile) {
        const std::size_t shared_bytes = prefill_shared_bytes(p.head_dim, p.v_head_dim);
        static const bool opted_in = [] {
            // Heads of 256 need more than the default 48 KiB of shared memory.
            return cudaFuncSetAttribute(prefill_attention_kernel, cudaFuncAttributeMaxDynamicSharedMemorySize,
                                        static_cast<int>(prefill_shared_bytes(kMaxHeadDim, kMaxHeadDim))) ==
                   cudaSuccess;
        }();
        if (!opted_in) cudaGetLastError();
        const dim3 grid(static_cast<unsigned>((n_tokens + kQueryTile - 1) / kQueryTile), static_cast<unsigned>(p.n_heads));
        prefill_attention_kernel<<<grid, kWarpSize * kWarps, shared_bytes, native>>>(
            q, positions, n_tokens, reinterpret_cast<const __half*>(keys), reinterpret_cast<const __half*>(values), p,
            out);
        check_launch("prefill attention");
        return;
    }
    const std::int64_t rows = n_tokens * p.n_heads;
    // Enough blocks to fill the GPU a few times over, each with at least kKeysPerSplit keys.
    const int longest = p.window > 0 ? std::min(max_position + 1, p.window) : max_position + 1;
    const auto wanted = static_cast<int>(std::max<std::int64_t>(1, 4 * multiprocessors() / rows));
    const int n_splits = std::clamp(std::min(wanted, (longest + kKeysPerSplit - 1) / kKeysPerSplit), 1, kMaxSplits);
    Partial* partials = nullptr;
    float* partial_values = nullptr;
    if (n_splits > 1) {
        const std::size_t slots = static_cast<std::size_t>(rows) * n_splits;
        auto* workspace = static_cast<std::uint8_t*>(
            stream.workspace(2, slots * (sizeof(Partial) + sizeof(float) * p.v_head_dim)));
        partials = reinterpret_cast<Partial*>(workspace);
        partial_values = reinterpret_cast<float*>(workspace + slots * sizeof(Partial));
    }
    const dim3 grid(static_cast<unsigned>(rows), static_cast<unsigned>(n_splits));
    attention_kernel<<<grid, kWarpSize * kWarps, 0, native>>>(q, positions, reinterpret_cast<const __half*>(keys),
                                                              reinterpret_cast<const __half*>(values), p, out,
                                                              partials, partial_values);
    check_launch("attention");
    if (n_splits > 1) {
        merge_kernel<<<static_cast<unsigned>(rows), 128, 0, native>>>(partials, partial_values, n_splits,
                                                                       p.v_head_dim, out);
        check_launch("attention merge");
    }
}

}  // namespace folio::engine::cuda
