// One layer of the KV cache (kernels.h): new rows stored into it, and causal
// softmax attention over it (or over each token's own sequence, an
// encoder's) with an online softmax throughout, for either element type of
// the cache. One body per kernel, templated on a row format
// (F16Rows, Q8_0Rows) that reads element e of a row as f32 and stores a
// warp's 32 elements, so that both types share every index computation.
// Decode (few queries), flash-decoding style: each block walks a range of
// cache rows, its warps interleaving rows, and a long range is split over
// several blocks whose partial results a second kernel merges, so a single
// token still spreads over the GPU. Prefill: query tiles that share each key
// and value row through shared memory. Both are templated on the heads too
// (Heads): up to 256 elements with value rows of their own, or multi-head
// latent attention's wider keys whose first elements are the values.

#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <algorithm>
#include <climits>
#include <cmath>
#include <string>

#include "engine/cuda/check.cuh"
#include "engine/cuda/kernels.h"
#include "engine/cuda/warp.cuh"
#include "engine/cuda/weight_formats.cuh"

namespace folio::engine::cuda {

namespace {

constexpr int kWarps = 4;
constexpr int kKeysPerSplit = 256;  // the least a split is given: below it the merge costs more than it spreads
constexpr int kMaxSplits = 64;

// The heads a kernel instance takes: queries and keys of up to MaxDim
// elements, each lane holding MaxDim / 32 of them in registers; values
// either rows of their own of up to MaxDim, or (ValuesInKeys) each key
// row's first v_head_dim elements, read with the key.
template <int MaxDim, bool ValuesInKeys>
struct Heads {
    static constexpr int kMaxDim = MaxDim;
    static constexpr int kDimsPerLane = MaxDim / kWarpSize;
    static constexpr bool kValuesInKeys = ValuesInKeys;
};
using SeparateValues = Heads<256, false>;
// DeepSeek's cache row: a 512-element latent (the values) and 64 rotary dimensions.
using LatentValues = Heads<576, true>;

struct Partial {  // one split's share of a (token, head): sums relative to its own max
    float max;
    float sum;
};

constexpr int kQ8Elements = formats::Q8_0::kElements;  // 32: one warp's lanes
constexpr int kQ8Bytes = formats::Q8_0::kBytes;        // {f16 d; i8 qs[32]}

struct Q8_0Element {
    std::int8_t q;  // the calling lane's quant
    __half d;       // the block's scale
};

// ggml's Q8_0 of the 32-element block a warp holds (lane l: element l),
// bit for bit as the CPU's quantize_row (engine/quant_scalar.cpp): d = max
// |x| / 127, q = roundf(x * (1 / d)) (ties away from zero, where
// __float2int_rn would take the even one), d stored as f16 rounded to
// nearest even. The _rn intrinsics keep each step one correctly rounded
// operation whatever nvcc's flags (--use_fast_math would otherwise
// approximate the division and reciprocal).
__device__ __forceinline__ Q8_0Element quantize_q8_0_in_warp(float x) {
    const float amax = warp_max(fabsf(x));
    const float d = __fdiv_rn(amax, 127.f);
    const float id = d != 0.f ? __frcp_rn(d) : 0.f;
    return {static_cast<std::int8_t>(static_cast<int>(roundf(__fmul_rn(x, id)))), __float2half_rn(d)};
}

// How the kernels read and write a cache row of `width` elements, by the
// cache's element type (its ggml id). store() and query() are called by
// all 32 lanes of a warp at once.
struct F16Rows {
    static constexpr std::uint32_t kGgmlType = 1;
    __host__ __device__ static std::int64_t row_bytes(int width) { return std::int64_t{2} * width; }
    __device__ static float element(const std::uint8_t* row, int e) {
        return __half2float(reinterpret_cast<const __half*>(row)[e]);
    }
    // Lane l stores element e = 32 g + l of group g (x ignored at e >= width).
    __device__ static void store(std::uint8_t* row, int e, int width, float x) {
        if (e < width) reinterpret_cast<__half*>(row)[e] = __float2half_rn(x);
    }
    // A query element as the keys' dot products take it (lane l: element
    // 32 i + l of a head of head_dim): as it is.
    __device__ static float query(float x, int) { return x; }
};

struct Q8_0Rows {
    static constexpr std::uint32_t kGgmlType = 8;
    __host__ __device__ static std::int64_t row_bytes(int width) {
        return std::int64_t{width} / kQ8Elements * kQ8Bytes;
    }
    __device__ static float element(const std::uint8_t* row, int e) {
        const std::uint8_t* block = row + e / kQ8Elements * kQ8Bytes;
        return formats::half_at(block) * static_cast<float>(reinterpret_cast<const std::int8_t*>(block + 2)[e % kQ8Elements]);
    }
    // Widths are whole blocks: group g is block g.
    __device__ static void store(std::uint8_t* row, int e, int, float x) {
        const Q8_0Element quantized = quantize_q8_0_in_warp(x);
        std::uint8_t* block = row + e / kQ8Elements * kQ8Bytes;
        if (e % kQ8Elements == 0) *reinterpret_cast<__half*>(block) = quantized.d;
        reinterpret_cast<std::int8_t*>(block + 2)[e % kQ8Elements] = quantized.q;
    }
    // The CPU backend multiplies heads of whole blocks with Q8_0 keys as
    // int8 products, the query quantized too (as llama.cpp does); the same
    // round trip here gives the scores it gets. Narrower heads it takes as they are.
    __device__ static float query(float x, int head_dim) {
        if (head_dim % kQ8Elements != 0) return x;
        const Q8_0Element quantized = quantize_q8_0_in_warp(x);
        return __half2float(quantized.d) * static_cast<float>(quantized.q);
    }
};

// Runs f with the heads the parameters describe.
template <class F>
void with_heads(const AttentionParameters& p, F&& f) {
    if (p.values_in_keys)
        f(LatentValues{});
    else
        f(SeparateValues{});
}

// The cache rows [first, last] token t attends to: its key range when the
// parameters give them (an encoder's sequence), else [0, positions[t]]
// narrowed by the window.
struct KeyRange {
    int first;
    int last;
};

__device__ __forceinline__ KeyRange key_range(const std::int32_t* positions, std::int64_t token,
                                              const AttentionParameters& p) {
    if (p.key_ranges != nullptr) return {p.key_ranges[2 * token], p.key_ranges[2 * token + 1]};
    const int position = positions[token];
    return {p.window > 0 ? max(0, position - p.window + 1) : 0, position};
}

// Runs f with the row format of a cache's element type.
template <class F>
void with_row_format(std::uint32_t ggml_type, F&& f) {
    if (ggml_type == F16Rows::kGgmlType)
        f(F16Rows{});
    else if (ggml_type == Q8_0Rows::kGgmlType)
        f(Q8_0Rows{});
    else
        throw CudaError("the CUDA KV cache holds f16 or q8_0 elements, not ggml type " + std::to_string(ggml_type));
}

// One warp per 32-element group of a token's key or value row, so that a
// Q8_0 block is one warp's. grid: n_tokens * (key groups + value groups) warps.
template <class Format>
__global__ void store_kv_kernel(const float* __restrict__ k, const float* __restrict__ v,
                                const std::int32_t* __restrict__ positions, std::int64_t n_tokens, int k_width,
                                int v_width, std::uint8_t* __restrict__ keys, std::uint8_t* __restrict__ values) {
    const int k_groups = (k_width + kWarpSize - 1) / kWarpSize;
    const int groups = k_groups + (v_width + kWarpSize - 1) / kWarpSize;
    const std::int64_t group = (static_cast<std::int64_t>(blockIdx.x) * blockDim.x + threadIdx.x) / kWarpSize;
    if (group >= n_tokens * groups) return;  // the whole warp
    const std::int64_t token = group / groups;
    const int g = static_cast<int>(group % groups);
    const bool is_key = g < k_groups;
    const int width = is_key ? k_width : v_width;
    const int e = (is_key ? g : g - k_groups) * kWarpSize + static_cast<int>(threadIdx.x % kWarpSize);
    const float* source = is_key ? k + token * k_width : v + token * v_width;
    std::uint8_t* row = is_key ? keys + positions[token] * Format::row_bytes(k_width)
                               : values + positions[token] * Format::row_bytes(v_width);
    Format::store(row, e, width, e < width ? source[e] : 0.f);
}

// grid (n_tokens * n_heads, n_splits), token-major. With one split the block writes out;
// with several it writes its Partial and unnormalized sums (v_head_dim) to
// partials / partial_values for merge_kernel.
template <class Format, class Heads>
__global__ void __launch_bounds__(kWarpSize* kWarps)
    attention_kernel(const float* __restrict__ q, const std::int32_t* __restrict__ positions,
                     const std::uint8_t* __restrict__ keys, const std::uint8_t* __restrict__ values,
                     AttentionParameters p, float* __restrict__ out, Partial* __restrict__ partials,
                     float* __restrict__ partial_values) {
    constexpr int kDimsPerLane = Heads::kDimsPerLane;
    const int n_heads = p.n_heads;
    const int head = static_cast<int>(blockIdx.x % n_heads);
    const std::int64_t token = blockIdx.x / n_heads;
    const int split = blockIdx.y, n_splits = gridDim.y;
    const int lane = threadIdx.x % kWarpSize, warp = threadIdx.x / kWarpSize;
    const int kv_head = head / (p.n_heads / p.n_kv_heads);
    const std::int64_t key_row_bytes = Format::row_bytes(p.n_kv_heads * p.head_dim);
    const std::int64_t value_row_bytes = Format::row_bytes(p.n_kv_heads * p.v_head_dim);
    const int key_first = kv_head * p.head_dim, value_first = kv_head * p.v_head_dim;  // the head's elements in a row

    const KeyRange range = key_range(positions, token, p);
    const int n_keys = range.last + 1 - range.first;
    const int per_split = (n_keys + n_splits - 1) / n_splits;
    const int begin = range.first + split * per_split;
    const int end = min(range.last + 1, begin + per_split);

    float q_lane[kDimsPerLane];
    const float* q_head = q + (token * n_heads + head) * p.head_dim;
#pragma unroll
    for (int i = 0; i < kDimsPerLane; ++i) {
        const int d = lane + kWarpSize * i;
        q_lane[i] = Format::query(d < p.head_dim ? q_head[d] : 0.f, p.head_dim) * p.scale;
    }

    float running_max = -INFINITY, running_sum = 0.f;
    float acc[kDimsPerLane] = {};
    for (int j = begin + warp; j < end; j += kWarps) {
        const std::uint8_t* key = keys + j * key_row_bytes;
        float key_lane[kDimsPerLane];  // also the values, with ValuesInKeys
        float score = 0.f;
#pragma unroll
        for (int i = 0; i < kDimsPerLane; ++i) {
            const int d = lane + kWarpSize * i;
            key_lane[i] = d < p.head_dim ? Format::element(key, key_first + d) : 0.f;
            score += q_lane[i] * key_lane[i];
        }
        score = warp_sum(score);
        const float new_max = fmaxf(running_max, score);
        const float correction = __expf(running_max - new_max);
        const float weight = __expf(score - new_max);
        running_sum = running_sum * correction + weight;
#pragma unroll
        for (int i = 0; i < kDimsPerLane; ++i) {
            const int d = lane + kWarpSize * i;
            float value = 0.f;
            if (d < p.v_head_dim)
                value = Heads::kValuesInKeys ? key_lane[i] : Format::element(values + j * value_row_bytes, value_first + d);
            acc[i] = acc[i] * correction + weight * value;
        }
        running_max = new_max;
    }

    // Merge the warps.
    __shared__ float warp_max_of[kWarps], warp_sum_of[kWarps];
    __shared__ float warp_acc[kWarps][Heads::kMaxDim];
    if (lane == 0) {
        warp_max_of[warp] = running_max;
        warp_sum_of[warp] = running_sum;
    }
#pragma unroll
    for (int i = 0; i < kDimsPerLane; ++i)
        warp_acc[warp][lane + kWarpSize * i] = acc[i];
    __syncthreads();
    float block_max = -INFINITY;
#pragma unroll
    for (int w = 0; w < kWarps; ++w)
        block_max = fmaxf(block_max, warp_max_of[w]);
    float factor[kWarps];
    float block_sum = 0.f;
#pragma unroll
    for (int w = 0; w < kWarps; ++w) {
        factor[w] = warp_max_of[w] == -INFINITY ? 0.f : __expf(warp_max_of[w] - block_max);
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

// value_tile_dim: v_head_dim, or 0 when the values are read from the keys' tile.
std::size_t prefill_shared_bytes(int head_dim, int value_tile_dim) {
    return sizeof(float) * (static_cast<std::size_t>(kQueryTile) * head_dim +
                            static_cast<std::size_t>(head_dim) * kPaddedTileKeys +
                            static_cast<std::size_t>(kTileKeys) * value_tile_dim + kQueryTile * kTileKeys);
}

template <class Heads>
__host__ __device__ constexpr int value_tile_dim(int v_head_dim) {
    return Heads::kValuesInKeys ? 0 : v_head_dim;
}

// grid (ceil(n_tokens / kQueryTile), n_heads).
template <class Format, class Heads>
__global__ void __launch_bounds__(kWarpSize* kWarps)
    prefill_attention_kernel(const float* __restrict__ q, const std::int32_t* __restrict__ positions,
                             std::int64_t n_tokens, const std::uint8_t* __restrict__ keys,
                             const std::uint8_t* __restrict__ values, AttentionParameters p, float* __restrict__ out) {
    constexpr int kDimsPerLane = Heads::kDimsPerLane;
    extern __shared__ float shared[];
    float* q_tile = shared;                                         // (kQueryTile, head_dim), scaled
    float* keys_t = q_tile + kQueryTile * p.head_dim;               // (head_dim, kPaddedTileKeys)
    float* value_tile = keys_t + p.head_dim * kPaddedTileKeys;      // (kTileKeys, value_tile_dim)
    float* weights = value_tile + kTileKeys * value_tile_dim<Heads>(p.v_head_dim);  // (kQueryTile, kTileKeys)
    __shared__ int range_begin, range_end;

    const int head = blockIdx.y;
    const int kv_head = head / (p.n_heads / p.n_kv_heads);
    const std::int64_t key_row_bytes = Format::row_bytes(p.n_kv_heads * p.head_dim);
    const std::int64_t value_row_bytes = Format::row_bytes(p.n_kv_heads * p.v_head_dim);
    const int key_first = kv_head * p.head_dim, value_first = kv_head * p.v_head_dim;  // the head's elements in a row
    const std::int64_t first_token = static_cast<std::int64_t>(blockIdx.x) * kQueryTile;
    const int lane = threadIdx.x % kWarpSize, warp = threadIdx.x / kWarpSize;

    if (threadIdx.x == 0) {
        range_begin = INT_MAX;
        range_end = 0;
    }
    // A warp's 32 consecutive elements: one block of one head when heads are
    // whole blocks (kQueryTile * head_dim then a multiple of the block's threads).
    for (int i = threadIdx.x; i < kQueryTile * p.head_dim; i += blockDim.x) {
        const std::int64_t token = first_token + i / p.head_dim;
        const float x = token < n_tokens ? q[(token * p.n_heads + head) * p.head_dim + i % p.head_dim] : 0.f;
        q_tile[i] = Format::query(x, p.head_dim) * p.scale;
    }
    __syncthreads();
    if (threadIdx.x < kQueryTile && first_token + threadIdx.x < n_tokens) {
        const KeyRange range = key_range(positions, first_token + threadIdx.x, p);
        atomicMin(&range_begin, range.first);
        atomicMax(&range_end, range.last + 1);
    }

    int first_key[kQueriesPerWarp], last_key[kQueriesPerWarp];
    float running_max[kQueriesPerWarp], lane_sum[kQueriesPerWarp], acc[kQueriesPerWarp][kDimsPerLane];
#pragma unroll
    for (int k = 0; k < kQueriesPerWarp; ++k) {
        const std::int64_t token = first_token + warp * kQueriesPerWarp + k;
        const KeyRange range = token < n_tokens ? key_range(positions, token, p) : KeyRange{0, -1};  // -1: no keys
        first_key[k] = range.first;
        last_key[k] = range.last;
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
                tile + j < end ? Format::element(keys + (tile + j) * key_row_bytes, key_first + d) : 0.f;
        }
        for (int i = threadIdx.x; i < kTileKeys * value_tile_dim<Heads>(p.v_head_dim); i += blockDim.x) {
            const int j = i / p.v_head_dim, d = i % p.v_head_dim;
            value_tile[i] =
                tile + j < end ? Format::element(values + (tile + j) * value_row_bytes, value_first + d) : 0.f;
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
                if (d >= p.v_head_dim)
                    value[i] = 0.f;
                else
                    value[i] = Heads::kValuesInKeys ? keys_t[d * kPaddedTileKeys + j] : value_tile[j * p.v_head_dim + d];
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

template <class Format, class Heads>
void prefill_attention(cudaStream_t stream, const float* q, const std::int32_t* positions, std::int64_t n_tokens,
                       const std::uint8_t* keys, const std::uint8_t* values, const AttentionParameters& p, float* out) {
    static const bool opted_in = [] {
        // Heads of 256 (or latent rows of 576) need more than the default 48 KiB of shared memory.
        return cudaFuncSetAttribute(
                   prefill_attention_kernel<Format, Heads>, cudaFuncAttributeMaxDynamicSharedMemorySize,
                   static_cast<int>(prefill_shared_bytes(Heads::kMaxDim, value_tile_dim<Heads>(Heads::kMaxDim)))) ==
               cudaSuccess;
    }();
    if (!opted_in) cudaGetLastError();
    const dim3 grid(static_cast<unsigned>((n_tokens + kQueryTile - 1) / kQueryTile), static_cast<unsigned>(p.n_heads));
    prefill_attention_kernel<Format, Heads>
        <<<grid, kWarpSize * kWarps, prefill_shared_bytes(p.head_dim, value_tile_dim<Heads>(p.v_head_dim)), stream>>>(
            q, positions, n_tokens, keys, values, p, out);
    check_launch("prefill attention");
}

// No allocation beyond the stream's workspace and no synchronization: a
// decode step's launches are recorded into a Graph.
template <class Format, class Heads>
void decode_attention(Stream& stream, const float* q, const std::int32_t* positions, std::int64_t n_tokens,
                      int max_position, const std::uint8_t* keys, const std::uint8_t* values,
                      const AttentionParameters& p, float* out) {
    const auto native = static_cast<cudaStream_t>(stream.handle());
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
    attention_kernel<Format, Heads><<<grid, kWarpSize * kWarps, 0, native>>>(q, positions, keys, values, p, out, partials,
                                                                      partial_values);
    check_launch("attention");
    if (n_splits > 1) {
        merge_kernel<<<static_cast<unsigned>(rows), 128, 0, native>>>(partials, partial_values, n_splits,
                                                                       p.v_head_dim, out);
        check_launch("attention merge");
    }
}

}  // namespace

void store_kv(Stream& stream, const float* k, const float* v, const std::int32_t* positions, std::int64_t n_tokens,
              int k_width, int v_width, const DeviceKvLayer& cache) {
    constexpr int kThreads = 256;  // whole warps: a warp is in the grid or not
    const std::int64_t groups = (k_width + kWarpSize - 1) / kWarpSize + (v_width + kWarpSize - 1) / kWarpSize;
    with_row_format(cache.ggml_type, [&](auto format) {
        store_kv_kernel<decltype(format)>
            <<<blocks_for(n_tokens * groups * kWarpSize, kThreads), kThreads, 0,
               static_cast<cudaStream_t>(stream.handle())>>>(k, v, positions, n_tokens, k_width, v_width,
                                                             static_cast<std::uint8_t*>(cache.keys),
                                                             static_cast<std::uint8_t*>(cache.values));
        check_launch("store_kv");
    });
}

void attention(Stream& stream, const float* q, const std::int32_t* positions, std::int64_t n_tokens,
               int max_position, const DeviceKvLayer& cache, const AttentionParameters& p, float* out) {
    const int max_dim = p.values_in_keys ? LatentValues::kMaxDim : SeparateValues::kMaxDim;
    if (p.head_dim > max_dim || p.v_head_dim > max_dim)
        throw CudaError("the CUDA attention kernel takes heads of at most " + std::to_string(max_dim) +
                        " elements, not " + std::to_string(std::max(p.head_dim, p.v_head_dim)));
    if (p.values_in_keys && p.v_head_dim > p.head_dim)
        throw CudaError("values of " + std::to_string(p.v_head_dim) + " elements cannot be read from keys of " +
                        std::to_string(p.head_dim));
    const auto* keys = static_cast<const std::uint8_t*>(cache.keys);
    const auto* values = static_cast<const std::uint8_t*>(cache.values);
    with_row_format(cache.ggml_type, [&](auto format) {
        with_heads(p, [&](auto heads) {
            using Format = decltype(format);
            using Heads = decltype(heads);
            if (n_tokens >= kQueryTile)
                prefill_attention<Format, Heads>(static_cast<cudaStream_t>(stream.handle()), q, positions, n_tokens,
                                                 keys, values, p, out);
            else
                decode_attention<Format, Heads>(stream, q, positions, n_tokens, max_position, keys, values, p, out);
        });
    });
}

}  // namespace folio::engine::cuda
