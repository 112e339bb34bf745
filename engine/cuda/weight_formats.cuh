#pragma once
// How the kernels read each GGUF weight type (ggml's block layouts, as
// engine/quant_kernels.h documents them). A block is split into chunks, one
// per thread at a time; a chunk dequantizes to kRuns runs of kRunLength
// consecutive elements, so a thread's reads of the weights and of the
// activations are both contiguous. The dequantizations (to f16 for the
// GEMM, to f32 for embeddings) and the float types' matrix-vector product
// go through load(); the quantized types' matrix-vector product goes
// through dot_q8(), which takes the activations quantized to int8 in blocks
// of 32 (xq, with scales xd: x ≈ xd[i / 32] * xq[i], as ggml's Q8_0) and
// multiplies four weights at a time with __dp4a, so that a weight costs
// about one instruction instead of five; a block's scales and mins apply
// to the integer sums. dot_q8 gets the activations of the weight block:
// xq at its first element, xd at its first 32-element block.

#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include <cstdint>

namespace folio::engine::cuda::formats {

// Every f16 field of the block layouts sits at an even offset of a block of
// even size, so 16-bit loads are aligned.
__device__ __forceinline__ float half_at(const std::uint8_t* p) {
    return __half2float(*reinterpret_cast<const __half*>(p));
}

// Four bytes at an even address (the quants of Q4_0, Q5_0, Q8_0 and Q6_K blocks).
__device__ __forceinline__ int word_at(const std::uint8_t* p) {
    const auto* halves = reinterpret_cast<const unsigned short*>(p);
    return static_cast<int>(halves[0] | static_cast<unsigned>(halves[1]) << 16);
}

// Four bits, one into bit 0 of each byte (bits 0-3 go to bytes 0-3): the
// shifts of the multiplier are 7 apart, so the partial products never overlap.
__device__ __forceinline__ int spread_bits(unsigned four_bits) {
    return static_cast<int>((four_bits * 0x00204081u) & 0x01010101u);
}

constexpr int kLowNibbles = 0x0F0F0F0F;
constexpr int kOnes = 0x01010101;  // __dp4a with it sums four int8 activations

// One chunk of a Q4_0/Q4_1/Q5_0/Q5_1 block against Q8 activations: q0, q1
// (elements 8c..8c+7) and q2, q3 (16+8c..16+8c+7) hold the unsigned quants,
// four to a word, xq the block's int8 activations, xd their scale. With a
// minimum m the weights are d q + m, without it d (q - offset) (8 for four
// bits, 16 for five), so the sum of the activations carries m or the offset.
template <bool kHasMin>
__device__ __forceinline__ float dot_q8_chunk(const std::uint8_t* block, int chunk, int q0, int q1, int q2, int q3,
                                              int offset, const std::int8_t* xq, const float* xd) {
    const int2 x_low = *reinterpret_cast<const int2*>(xq + 8 * chunk);
    const int2 x_high = *reinterpret_cast<const int2*>(xq + 16 + 8 * chunk);
    int sum_wx = __dp4a(q0, x_low.x, 0);
    sum_wx = __dp4a(q1, x_low.y, sum_wx);
    sum_wx = __dp4a(q2, x_high.x, sum_wx);
    sum_wx = __dp4a(q3, x_high.y, sum_wx);
    int sum_x = __dp4a(kOnes, x_low.x, 0);
    sum_x = __dp4a(kOnes, x_low.y, sum_x);
    sum_x = __dp4a(kOnes, x_high.x, sum_x);
    sum_x = __dp4a(kOnes, x_high.y, sum_x);
    const float d = half_at(block);
    if constexpr (kHasMin) return xd[0] * (d * sum_wx + half_at(block + 2) * sum_x);
    return xd[0] * d * (sum_wx - offset * sum_x);
}

// Q4_K and Q5_K: sub-block j's 6-bit scale and min (ggml's get_scale_min_k4).
__device__ __forceinline__ void scale_min_k4(int j, const std::uint8_t* q, float& scale, float& min) {
    if (j < 4) {
        scale = q[j] & 63;
        min = q[j + 4] & 63;
    } else {
        scale = (q[j + 4] & 0xF) | ((q[j - 4] >> 6) << 4);
        min = (q[j + 4] >> 4) | ((q[j] >> 6) << 4);
    }
}

// F32, F16, BF16: a "block" of 8 elements.
struct F32 {
    static constexpr bool kQuantized = false;
    static constexpr int kElements = 8, kBytes = 32, kChunks = 1, kRuns = 1, kRunLength = 8;
    __device__ static int run_start(int, int) { return 0; }
    __device__ static void load(const std::uint8_t* block, int, float (&v)[kRuns][kRunLength]) {
        const float4* p = reinterpret_cast<const float4*>(block);
        const float4 a = p[0], b = p[1];
        v[0][0] = a.x; v[0][1] = a.y; v[0][2] = a.z; v[0][3] = a.w;
        v[0][4] = b.x; v[0][5] = b.y; v[0][6] = b.z; v[0][7] = b.w;
    }
};

struct F16 {
    static constexpr bool kQuantized = false;
    static constexpr int kElements = 8, kBytes = 16, kChunks = 1, kRuns = 1, kRunLength = 8;
    __device__ static int run_start(int, int) { return 0; }
    __device__ static void load(const std::uint8_t* block, int, float (&v)[kRuns][kRunLength]) {
        const uint4 bits = *reinterpret_cast<const uint4*>(block);
        const __half2* h = reinterpret_cast<const __half2*>(&bits);
#pragma unroll
        for (int i = 0; i < 4; ++i) {
            const float2 f = __half22float2(h[i]);
            v[0][2 * i] = f.x;
            v[0][2 * i + 1] = f.y;
        }
    }
};

struct BF16 {
    static constexpr bool kQuantized = false;
    static constexpr int kElements = 8, kBytes = 16, kChunks = 1, kRuns = 1, kRunLength = 8;
    __device__ static int run_start(int, int) { return 0; }
    __device__ static void load(const std::uint8_t* block, int, float (&v)[kRuns][kRunLength]) {
        const uint4 bits = *reinterpret_cast<const uint4*>(block);
        const unsigned words[4] = {bits.x, bits.y, bits.z, bits.w};
#pragma unroll
        for (int i = 0; i < 4; ++i) {
            v[0][2 * i] = __uint_as_float(words[i] << 16);
            v[0][2 * i + 1] = __uint_as_float(words[i] & 0xFFFF0000u);
        }
    }
};

// Q4_0 {d; qs[16]} and Q4_1 {d; m; qs[16]}: qs[j] holds element j (low
// nibble) and j + 16 (high). Chunk c: qs[8c, 8c + 8), runs at 8c and 16 + 8c.
template <bool kHasMin>
struct Q4_01 {
    static constexpr int kElements = 32, kBytes = kHasMin ? 20 : 18, kChunks = 2, kRuns = 2, kRunLength = 8;
    __device__ static int run_start(int chunk, int run) { return 16 * run + 8 * chunk; }
    __device__ static void load(const std::uint8_t* block, int chunk, float (&v)[kRuns][kRunLength]) {
        const float d = half_at(block);
        const float m = kHasMin ? half_at(block + 2) : -8.f * d;
        const std::uint8_t* qs = block + (kHasMin ? 4 : 2) + 8 * chunk;
#pragma unroll
        for (int i = 0; i < 8; ++i) {
            v[0][i] = d * (qs[i] & 0xF) + m;
            v[1][i] = d * (qs[i] >> 4) + m;
        }
    }
    static constexpr bool kQuantized = true;
    __device__ static float dot_q8(const std::uint8_t* block, int chunk, const std::int8_t* xq, const float* xd) {
        const std::uint8_t* qs = block + (kHasMin ? 4 : 2) + 8 * chunk;
        const int w0 = word_at(qs), w1 = word_at(qs + 4);
        return dot_q8_chunk<kHasMin>(block, chunk, w0 & kLowNibbles, w1 & kLowNibbles, (w0 >> 4) & kLowNibbles,
                                     (w1 >> 4) & kLowNibbles, 8, xq, xd);
    }
};

// Q5_0 {d; qh[4]; qs[16]} and Q5_1 {d; m; qh[4]; qs[16]}: bit j of qh (as a
// little-endian u32) is bit 4 of element j.
template <bool kHasMin>
struct Q5_01 {
    static constexpr int kElements = 32, kBytes = kHasMin ? 24 : 22, kChunks = 2, kRuns = 2, kRunLength = 8;
    __device__ static int run_start(int chunk, int run) { return 16 * run + 8 * chunk; }
    __device__ static void load(const std::uint8_t* block, int chunk, float (&v)[kRuns][kRunLength]) {
        const float d = half_at(block);
        const float m = kHasMin ? half_at(block + 2) : -16.f * d;
        const std::uint8_t* qh_bytes = block + (kHasMin ? 4 : 2);
        const unsigned qh = qh_bytes[0] | qh_bytes[1] << 8 | qh_bytes[2] << 16 | static_cast<unsigned>(qh_bytes[3]) << 24;
        const std::uint8_t* qs = qh_bytes + 4 + 8 * chunk;
#pragma unroll
        for (int i = 0; i < 8; ++i) {
            const int j = 8 * chunk + i;
            v[0][i] = d * ((qs[i] & 0xF) | ((qh >> j) & 1) << 4) + m;
            v[1][i] = d * ((qs[i] >> 4) | ((qh >> (j + 16)) & 1) << 4) + m;
        }
    }
    static constexpr bool kQuantized = true;
    __device__ static float dot_q8(const std::uint8_t* block, int chunk, const std::int8_t* xq, const float* xd) {
        const std::uint8_t* qh_bytes = block + (kHasMin ? 4 : 2);
        const unsigned qh = static_cast<unsigned>(word_at(qh_bytes));
        const std::uint8_t* qs = qh_bytes + 4 + 8 * chunk;
        const int w0 = word_at(qs), w1 = word_at(qs + 4);
        const int low = 8 * chunk, high = 16 + 8 * chunk;  // the elements' first bits in qh
        const int q0 = (w0 & kLowNibbles) | spread_bits((qh >> low) & 0xF) << 4;
        const int q1 = (w1 & kLowNibbles) | spread_bits((qh >> (low + 4)) & 0xF) << 4;
        const int q2 = ((w0 >> 4) & kLowNibbles) | spread_bits((qh >> high) & 0xF) << 4;
        const int q3 = ((w1 >> 4) & kLowNibbles) | spread_bits((qh >> (high + 4)) & 0xF) << 4;
        return dot_q8_chunk<kHasMin>(block, chunk, q0, q1, q2, q3, 16, xq, xd);
    }
};

// Q8_0 {d; qs[32]}: chunk c is elements [16c, 16c + 16).
struct Q8_0 {
    static constexpr int kElements = 32, kBytes = 34, kChunks = 2, kRuns = 1, kRunLength = 16;
    __device__ static int run_start(int chunk, int) { return 16 * chunk; }
    __device__ static void load(const std::uint8_t* block, int chunk, float (&v)[kRuns][kRunLength]) {
        const float d = half_at(block);
        const std::int8_t* qs = reinterpret_cast<const std::int8_t*>(block + 2) + 16 * chunk;
#pragma unroll
        for (int i = 0; i < 16; ++i)
            v[0][i] = d * qs[i];
    }
    static constexpr bool kQuantized = true;
    __device__ static float dot_q8(const std::uint8_t* block, int chunk, const std::int8_t* xq, const float* xd) {
        const std::uint8_t* qs = block + 2 + 16 * chunk;
        const int4 x = *reinterpret_cast<const int4*>(xq + 16 * chunk);
        int sum_wx = __dp4a(word_at(qs), x.x, 0);
        sum_wx = __dp4a(word_at(qs + 4), x.y, sum_wx);
        sum_wx = __dp4a(word_at(qs + 8), x.z, sum_wx);
        sum_wx = __dp4a(word_at(qs + 12), x.w, sum_wx);
        return xd[0] * half_at(block) * sum_wx;
    }
};

// Q4_K {d; dmin; scales[12]; qs[128]} and Q5_K {d; dmin; scales[12];
// qh[32]; qs[128]}: 64-element group g reads qs[32g, 32g + 32), low nibbles
// for elements 64g + l (sub-block 2g), high for 64g + 32 + l (2g + 1); Q5_K's
// bit 4 of those is bit 2g (2g + 1) of qh[l]. Chunk c: group c / 2, l in
// [16 (c % 2), +16): 16 bytes of qs, 16-byte aligned (blocks of 144 and 176).
template <bool kFiveBit>
struct QK45 {
    static constexpr int kElements = 256, kBytes = kFiveBit ? 176 : 144, kChunks = 8, kRuns = 2, kRunLength = 16;
    __device__ static int run_start(int chunk, int run) { return 64 * (chunk / 2) + 32 * run + 16 * (chunk % 2); }
    __device__ static void load(const std::uint8_t* block, int chunk, float (&v)[kRuns][kRunLength]) {
        const float d = half_at(block), dmin = half_at(block + 2);
        const int group = chunk / 2, l0 = 16 * (chunk % 2);
        float scale_low, min_low, scale_high, min_high;
        scale_min_k4(2 * group, block + 4, scale_low, min_low);
        scale_min_k4(2 * group + 1, block + 4, scale_high, min_high);
        const float d_low = d * scale_low, m_low = dmin * min_low;
        const float d_high = d * scale_high, m_high = dmin * min_high;
        const uint4 qs_bits = *reinterpret_cast<const uint4*>(block + (kFiveBit ? 48 : 16) + 32 * group + l0);
        const std::uint8_t* qs = reinterpret_cast<const std::uint8_t*>(&qs_bits);
        if constexpr (kFiveBit) {
            const uint4 qh_bits = *reinterpret_cast<const uint4*>(block + 16 + l0);
            const std::uint8_t* qh = reinterpret_cast<const std::uint8_t*>(&qh_bits);
#pragma unroll
            for (int i = 0; i < 16; ++i) {
                v[0][i] = d_low * ((qs[i] & 0xF) | ((qh[i] >> (2 * group)) & 1) << 4) - m_low;
                v[1][i] = d_high * ((qs[i] >> 4) | ((qh[i] >> (2 * group + 1)) & 1) << 4) - m_high;
            }
        } else {
#pragma unroll
            for (int i = 0; i < 16; ++i) {
                v[0][i] = d_low * (qs[i] & 0xF) - m_low;
                v[1][i] = d_high * (qs[i] >> 4) - m_high;
            }
        }
    }
    static constexpr bool kQuantized = true;
    __device__ static float dot_q8(const std::uint8_t* block, int chunk, const std::int8_t* xq, const float* xd) {
        const int group = chunk / 2, l0 = 16 * (chunk % 2);
        const uint4 header = *reinterpret_cast<const uint4*>(block);  // d, dmin, scales[12]
        const std::uint8_t* header_bytes = reinterpret_cast<const std::uint8_t*>(&header);
        float scale_low, min_low, scale_high, min_high;
        scale_min_k4(2 * group, header_bytes + 4, scale_low, min_low);
        scale_min_k4(2 * group + 1, header_bytes + 4, scale_high, min_high);
        const uint4 qs = *reinterpret_cast<const uint4*>(block + (kFiveBit ? 48 : 16) + 32 * group + l0);
        const int w[4] = {static_cast<int>(qs.x), static_cast<int>(qs.y), static_cast<int>(qs.z), static_cast<int>(qs.w)};
        int qh[4] = {0, 0, 0, 0};
        if constexpr (kFiveBit) {
            const uint4 bits = *reinterpret_cast<const uint4*>(block + 16 + l0);
            qh[0] = static_cast<int>(bits.x), qh[1] = static_cast<int>(bits.y);
            qh[2] = static_cast<int>(bits.z), qh[3] = static_cast<int>(bits.w);
        }
        const int4 x_low = *reinterpret_cast<const int4*>(xq + 64 * group + l0);
        const int4 x_high = *reinterpret_cast<const int4*>(xq + 64 * group + 32 + l0);
        const int xl[4] = {x_low.x, x_low.y, x_low.z, x_low.w};
        const int xh[4] = {x_high.x, x_high.y, x_high.z, x_high.w};
        int sum_low = 0, sum_high = 0, sum_x_low = 0, sum_x_high = 0;
#pragma unroll
        for (int k = 0; k < 4; ++k) {
            int q_low = w[k] & kLowNibbles, q_high = (w[k] >> 4) & kLowNibbles;
            if constexpr (kFiveBit) {
                q_low |= ((qh[k] >> (2 * group)) & kOnes) << 4;
                q_high |= ((qh[k] >> (2 * group + 1)) & kOnes) << 4;
            }
            sum_low = __dp4a(q_low, xl[k], sum_low);
            sum_high = __dp4a(q_high, xh[k], sum_high);
            sum_x_low = __dp4a(kOnes, xl[k], sum_x_low);
            sum_x_high = __dp4a(kOnes, xh[k], sum_x_high);
        }
        const float2 dm = __half22float2(*reinterpret_cast<const __half2*>(&header.x));
        return xd[2 * group] * (dm.x * scale_low * sum_low - dm.y * min_low * sum_x_low) +
               xd[2 * group + 1] * (dm.x * scale_high * sum_high - dm.y * min_high * sum_x_high);
    }
};

// Q6_K {ql[128]; qh[64]; scales[16] (i8); d}: half h (128 elements) reads
// ql[64h, +64), qh[32h, +32), scales[8h, +8); for l < 32 element 128h + l +
// 32k (k = 0..3) is (nibble | 2 bits of qh[l] << 4) - 32 with scale
// scales[8h + l / 16 + 2k]. Chunk c: half c / 4, l in [8 (c % 4), +8).
struct Q6_K {
    static constexpr int kElements = 256, kBytes = 210, kChunks = 8, kRuns = 4, kRunLength = 8;
    __device__ static int run_start(int chunk, int run) { return 128 * (chunk / 4) + 8 * (chunk % 4) + 32 * run; }
    __device__ static void load(const std::uint8_t* block, int chunk, float (&v)[kRuns][kRunLength]) {
        const int half = chunk / 4, l0 = 8 * (chunk % 4);
        const float d = half_at(block + 208);
        const std::uint8_t* ql = block + 64 * half + l0;
        const std::uint8_t* qh = block + 128 + 32 * half + l0;
        const std::int8_t* scales = reinterpret_cast<const std::int8_t*>(block + 192) + 8 * half + l0 / 16;
        const float d0 = d * scales[0], d1 = d * scales[2], d2 = d * scales[4], d3 = d * scales[6];
#pragma unroll
        for (int i = 0; i < 8; ++i) {
            const int high = qh[i];
            v[0][i] = d0 * (((ql[i] & 0xF) | (high & 3) << 4) - 32);
            v[1][i] = d1 * (((ql[i + 32] & 0xF) | ((high >> 2) & 3) << 4) - 32);
            v[2][i] = d2 * (((ql[i] >> 4) | ((high >> 4) & 3) << 4) - 32);
            v[3][i] = d3 * (((ql[i + 32] >> 4) | ((high >> 6) & 3) << 4) - 32);
        }
    }
    static constexpr bool kQuantized = true;
    __device__ static float dot_q8(const std::uint8_t* block, int chunk, const std::int8_t* xq, const float* xd) {
        const int half = chunk / 4, l0 = 8 * (chunk % 4);
        const std::uint8_t* ql = block + 64 * half + l0;
        const std::uint8_t* qh = block + 128 + 32 * half + l0;
        const std::int8_t* scales = reinterpret_cast<const std::int8_t*>(block + 192) + 8 * half + l0 / 16;
        float sum = 0.f;
#pragma unroll
        for (int word = 0; word < 2; ++word) {  // elements l0 + 4 word + (0..3) of each run
            const int a = word_at(ql + 4 * word), b = word_at(ql + 32 + 4 * word), h = word_at(qh + 4 * word);
            const int q[4] = {(a & kLowNibbles) | (h & 0x03030303) << 4,
                              (b & kLowNibbles) | ((h >> 2) & 0x03030303) << 4,
                              ((a >> 4) & kLowNibbles) | ((h >> 4) & 0x03030303) << 4,
                              ((b >> 4) & kLowNibbles) | ((h >> 6) & 0x03030303) << 4};
#pragma unroll
            for (int run = 0; run < 4; ++run) {
                const int x = *reinterpret_cast<const int*>(xq + 128 * half + 32 * run + l0 + 4 * word);
                const int sum_wx = __dp4a(q[run], x, 0), sum_x = __dp4a(kOnes, x, 0);
                sum += xd[4 * half + run] * scales[2 * run] * static_cast<float>(sum_wx - 32 * sum_x);
            }
        }
        return half_at(block + 208) * sum;
    }
};

// Calls f(Format{}) for a ggml type id the kernels read; returns false for another.
template <class F>
bool dispatch(std::uint32_t ggml_type, F&& f) {
    switch (ggml_type) {
        case 0: f(F32{}); return true;
        case 1: f(F16{}); return true;
        case 2: f(Q4_01<false>{}); return true;
        case 3: f(Q4_01<true>{}); return true;
        case 6: f(Q5_01<false>{}); return true;
        case 7: f(Q5_01<true>{}); return true;
        case 8: f(Q8_0{}); return true;
        case 12: f(QK45<false>{}); return true;
        case 13: f(QK45<true>{}); return true;
        case 14: f(Q6_K{}); return true;
        case 30: f(BF16{}); return true;
        default: return false;
    }
}

}  // namespace folio::engine::cuda::formats
