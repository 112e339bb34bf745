// Reference scalar kernels for every type: the definition the SIMD kernels are
// tested against, and the code that runs on CPUs without AVX2. Quantizers
// follow ggml's *_ref functions (ggml-quants.c) step by step, so that files
// written here decode in llama.cpp to the same values and quality.

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstring>
#include <type_traits>

#include "engine/fp16.h"
#include "engine/ggml_types.h"
#include "engine/quant_kernels.h"

namespace folio::engine::quant {
namespace {

// Round to nearest, ties to even, for |value| <= 2^22: adding 1.5 * 2^23
// leaves the integer in the low mantissa bits (ggml's nearest_int; unlike
// lrintf it does not depend on the FPU rounding mode).
int nearest_int(float value) {
    const float shifted = value + 12582912.f;
    return static_cast<int>(std::bit_cast<std::uint32_t>(shifted) & 0x007FFFFFu) - 0x00400000;
}

// Below this a group of weights counts as all zero (ggml's GROUP_MAX_EPS).
constexpr float kGroupMaxEps = 1e-15f;

template <class Block>
const Block* blocks_of(const void* row) {
    return static_cast<const Block*>(row);
}
template <class Block>
Block* blocks_of(void* row) {
    return static_cast<Block*>(row);
}

std::uint32_t load_u32(const std::uint8_t* bytes) {
    std::uint32_t value;
    std::memcpy(&value, bytes, sizeof value);
    return value;
}

// Q4_K / Q5_K: 8 six-bit scales and 8 six-bit mins in 12 bytes s[0..11]:
//   j < 4:  scale = s[j] & 63,                          min = s[j + 4] & 63
//   j >= 4: scale = s[j + 4] & 15 | (s[j - 4] >> 6) << 4, min = s[j + 4] >> 4 | (s[j] >> 6) << 4
void scale_min_k4(int j, const std::uint8_t* s, int& scale, int& min) {
    if (j < 4) {
        scale = s[j] & 63;
        min = s[j + 4] & 63;
    } else {
        scale = (s[j + 4] & 0xF) | ((s[j - 4] >> 6) << 4);
        min = (s[j + 4] >> 4) | ((s[j] >> 6) << 4);
    }
}

// Q3_K: 16 six-bit scales in 12 bytes: the low 4 bits of scale j in the low
// (j < 8) or high (j >= 8) nibble of s[j % 8], the high 2 bits in bits
// 2(j / 4)..2(j / 4)+1 of s[8 + j % 4]. Stored with an offset of 32.
int scale_q3_k(int j, const std::uint8_t* s) {
    const int low = j < 8 ? s[j] & 0xF : s[j - 8] >> 4;
    const int high = (s[8 + j % 4] >> (2 * (j / 4))) & 3;
    return (low | (high << 4)) - 32;
}

// ---------------------------------------------------------------- dequantize

void dequantize_f32(const void* src, float* dst, std::int64_t n) {
    std::memcpy(dst, src, static_cast<std::size_t>(n) * sizeof(float));
}

void dequantize_f16(const void* src, float* dst, std::int64_t n) {
    const auto* halves = static_cast<const std::uint16_t*>(src);
    for (std::int64_t i = 0; i < n; ++i)
        dst[i] = fp16_to_fp32(halves[i]);
}

void dequantize_bf16(const void* src, float* dst, std::int64_t n) {
    const auto* halves = static_cast<const std::uint16_t*>(src);
    for (std::int64_t i = 0; i < n; ++i)
        dst[i] = bf16_to_fp32(halves[i]);
}

// The 32-element block types (Q4_0 Q4_1 Q5_0 Q5_1 Q8_0 Q8_1): element j's
// integer value, before d and without the "_1" types' min.
template <class Block>
constexpr bool kHasMin = requires(const Block& block) { block.m; };
template <class Block>
constexpr bool kHasHighBit = requires(const Block& block) { block.qh; };
template <class Block>
constexpr bool kIsNibbles = !std::is_same_v<Block, BlockQ8_0> && !std::is_same_v<Block, BlockQ8_1>;

template <class Block>
void quants_of(const Block& block, int (&q)[kBlock32]) {
    if constexpr (!kIsNibbles<Block>) {
        for (int j = 0; j < kBlock32; ++j)
            q[j] = block.qs[j];
    } else {
        for (int j = 0; j < 16; ++j) {
            q[j] = block.qs[j] & 0xF;
            q[j + 16] = block.qs[j] >> 4;
        }
        if constexpr (kHasHighBit<Block>) {
            const std::uint32_t qh = load_u32(block.qh);
            for (int j = 0; j < kBlock32; ++j)
                q[j] |= static_cast<int>((qh >> j) & 1u) << 4;
        }
        // Without a min the quants are stored + 8 (4 bits) or + 16 (5 bits).
        if constexpr (!kHasMin<Block>) {
            constexpr int kOffset = kHasHighBit<Block> ? 16 : 8;
            for (int j = 0; j < kBlock32; ++j)
                q[j] -= kOffset;
        }
    }
}

template <class Block>
void dequantize_block32(const void* src, float* dst, std::int64_t n) {
    const auto* blocks = blocks_of<Block>(src);
    for (std::int64_t b = 0; b < n / kBlock32; ++b, dst += kBlock32) {
        const float d = fp16_to_fp32(blocks[b].d);
        int q[kBlock32];
        quants_of(blocks[b], q);
        for (int j = 0; j < kBlock32; ++j) {
            if constexpr (kHasMin<Block>)
                dst[j] = static_cast<float>(q[j]) * d + fp16_to_fp32(blocks[b].m);
            else
                dst[j] = static_cast<float>(q[j]) * d;
        }
    }
}

void dequantize_q2_k(const void* src, float* dst, std::int64_t n) {
    const auto* blocks = blocks_of<BlockQ2_K>(src);
    for (std::int64_t b = 0; b < n / kBlockK; ++b, dst += kBlockK) {
        const BlockQ2_K& block = blocks[b];
        const float d = fp16_to_fp32(block.d);
        const float dmin = fp16_to_fp32(block.dmin);
        for (int e = 0; e < kBlockK; ++e) {
            const int sub = e / 16;
            const int q = (block.qs[32 * (e / 128) + e % 32] >> (2 * ((e / 32) % 4))) & 3;
            const float scale = d * static_cast<float>(block.scales[sub] & 0xF);
            const float min = dmin * static_cast<float>(block.scales[sub] >> 4);
            dst[e] = scale * static_cast<float>(q) - min;
        }
    }
}

// Q4_K and Q5_K: sub-block `sub`'s 32 quants; Q5_K merges a fifth bit from qh.
template <class Block>
void sub_block_quants_k4(const Block& block, int sub, int (&q)[32]) {
    const std::uint8_t* qs = block.qs + 32 * (sub / 2);
    const int shift = 4 * (sub % 2);
    for (int l = 0; l < 32; ++l) {
        q[l] = (qs[l] >> shift) & 0xF;
        if constexpr (kHasHighBit<Block>)
            q[l] |= ((block.qh[l] >> sub) & 1) << 4;
    }
}

template <class Block>
void dequantize_k4(const void* src, float* dst, std::int64_t n) {
    const auto* blocks = blocks_of<Block>(src);
    for (std::int64_t b = 0; b < n / kBlockK; ++b, dst += kBlockK) {
        const Block& block = blocks[b];
        const float d = fp16_to_fp32(block.d);
        const float dmin = fp16_to_fp32(block.dmin);
        for (int sub = 0; sub < 8; ++sub) {
            int scale = 0;
            int min = 0;
            scale_min_k4(sub, block.scales, scale, min);
            const float scale_f = d * static_cast<float>(scale);
            const float min_f = dmin * static_cast<float>(min);
            int q[32];
            sub_block_quants_k4(block, sub, q);
            for (int l = 0; l < 32; ++l)
                dst[32 * sub + l] = scale_f * static_cast<float>(q[l]) - min_f;
        }
    }
}

// Q3_K and Q6_K: a signed quant per element and a signed scale per 16.
int quant_of(const BlockQ3_K& block, int e) {
    const int low = (block.qs[32 * (e / 128) + e % 32] >> (2 * ((e / 32) % 4))) & 3;
    const int high = (block.hmask[e % 32] >> (e / 32)) & 1;
    return low + 4 * high - 4;
}
int scale_of(const BlockQ3_K& block, int g) {
    return scale_q3_k(g, block.scales);
}
int quant_of(const BlockQ6_K& block, int e) {
    const int half = e / 128;
    const int group = (e / 32) % 4;
    const int l = e % 32;
    const int low = (block.ql[64 * half + 32 * (group & 1) + l] >> (group >= 2 ? 4 : 0)) & 0xF;
    const int high = (block.qh[32 * half + l] >> (2 * group)) & 3;
    return (low | (high << 4)) - 32;
}
int scale_of(const BlockQ6_K& block, int g) {
    return block.scales[g];
}

template <class Block>
void dequantize_scaled16(const void* src, float* dst, std::int64_t n) {
    const auto* blocks = blocks_of<Block>(src);
    for (std::int64_t b = 0; b < n / kBlockK; ++b, dst += kBlockK) {
        const float d = fp16_to_fp32(blocks[b].d);
        for (int e = 0; e < kBlockK; ++e)
            dst[e] = d * static_cast<float>(scale_of(blocks[b], e / 16)) * static_cast<float>(quant_of(blocks[b], e));
    }
}

void dequantize_q8_k(const void* src, float* dst, std::int64_t n) {
    const auto* blocks = blocks_of<BlockQ8_K>(src);
    for (std::int64_t b = 0; b < n / kBlockK; ++b, dst += kBlockK) {
        for (int j = 0; j < kBlockK; ++j)
            dst[j] = blocks[b].d * static_cast<float>(blocks[b].qs[j]);
    }
}

// ------------------------------------------------------------------ quantize

void quantize_f32(const float* src, void* dst, std::int64_t n) {
    std::memcpy(dst, src, static_cast<std::size_t>(n) * sizeof(float));
}

void quantize_f16(const float* src, void* dst, std::int64_t n) {
    auto* halves = static_cast<std::uint16_t*>(dst);
    for (std::int64_t i = 0; i < n; ++i)
        halves[i] = fp32_to_fp16(src[i]);
}

void quantize_bf16(const float* src, void* dst, std::int64_t n) {
    auto* halves = static_cast<std::uint16_t*>(dst);
    for (std::int64_t i = 0; i < n; ++i)
        halves[i] = fp32_to_bf16(src[i]);
}

// The element of largest magnitude, the first one on a tie; 0 for an all-zero group.
float signed_absmax(const float* x, int n) {
    float amax = 0.f;
    float max = 0.f;
    for (int i = 0; i < n; ++i) {
        if (std::fabs(x[i]) > amax) {
            amax = std::fabs(x[i]);
            max = x[i];
        }
    }
    return max;
}

// Q8_0 and Q8_1: d = absmax / 127, q = roundf(x / d) (ties away from zero).
float quantize_32_to_int8(const float* x, std::int8_t* qs) {
    float amax = 0.f;
    for (int j = 0; j < kBlock32; ++j)
        amax = std::max(amax, std::fabs(x[j]));
    const float d = amax / 127.f;
    const float id = d != 0.f ? 1.f / d : 0.f;
    for (int j = 0; j < kBlock32; ++j)
        qs[j] = static_cast<std::int8_t>(std::round(x[j] * id));
    return d;
}

void quantize_q8_0(const float* src, void* dst, std::int64_t n) {
    auto* blocks = blocks_of<BlockQ8_0>(dst);
    for (std::int64_t b = 0; b < n / kBlock32; ++b, src += kBlock32)
        blocks[b].d = fp32_to_fp16(quantize_32_to_int8(src, blocks[b].qs));
}

void quantize_q8_1(const float* src, void* dst, std::int64_t n) {
    auto* blocks = blocks_of<BlockQ8_1>(dst);
    for (std::int64_t b = 0; b < n / kBlock32; ++b, src += kBlock32) {
        const float d = quantize_32_to_int8(src, blocks[b].qs);
        int sum = 0;
        for (int j = 0; j < kBlock32; ++j)
            sum += blocks[b].qs[j];
        blocks[b].d = fp32_to_fp16(d);
        blocks[b].s = fp32_to_fp16(static_cast<float>(sum) * d);
    }
}

void quantize_q8_k(const float* src, void* dst, std::int64_t n) {
    auto* blocks = blocks_of<BlockQ8_K>(dst);
    for (std::int64_t b = 0; b < n / kBlockK; ++b, src += kBlockK) {
        BlockQ8_K& block = blocks[b];
        const float max = signed_absmax(src, kBlockK);
        if (max == 0.f) {
            std::memset(&block, 0, sizeof block);
            continue;
        }
        // The extreme value maps to -127 exactly.
        const float iscale = -127.f / max;
        for (int j = 0; j < kBlockK; ++j)
            block.qs[j] = static_cast<std::int8_t>(std::min(127, nearest_int(iscale * src[j])));
        for (int g = 0; g < 16; ++g) {
            int sum = 0;
            for (int l = 0; l < 16; ++l)
                sum += block.qs[16 * g + l];
            block.bsums[g] = static_cast<std::int16_t>(sum);
        }
        block.d = 1.f / iscale;
    }
}

// ggml's make_qx_quants: a symmetric scale for n values with quants in
// [-nmax, nmax - 1] (stored in L with an offset of nmax), picked among 19
// candidate scales around nmax / max by weighted least squares
// (rmse_type 1: weights x^2).
float make_qx_quants(int n, int nmax, const float* x, std::int8_t* L) {
    const float max = signed_absmax(x, n);
    if (std::fabs(max) < kGroupMaxEps) {
        std::fill(L, L + n, std::int8_t{0});
        return 0.f;
    }
    const auto quantize_with = [&](float iscale, float& sumlx, float& suml2, bool store) {
        sumlx = 0.f;
        suml2 = 0.f;
        for (int i = 0; i < n; ++i) {
            const int l = std::clamp(nearest_int(iscale * x[i]), -nmax, nmax - 1);
            if (store)
                L[i] = static_cast<std::int8_t>(l + nmax);
            const float w = x[i] * x[i];
            sumlx += w * x[i] * static_cast<float>(l);
            suml2 += w * static_cast<float>(l) * static_cast<float>(l);
        }
    };
    float sumlx = 0.f;
    float suml2 = 0.f;
    quantize_with(-static_cast<float>(nmax) / max, sumlx, suml2, true);
    float scale = suml2 != 0.f ? sumlx / suml2 : 0.f;
    float best = scale * sumlx;
    for (int step = -9; step <= 9; ++step) {
        if (step == 0)
            continue;
        const float iscale = -(static_cast<float>(nmax) + 0.1f * static_cast<float>(step)) / max;
        quantize_with(iscale, sumlx, suml2, false);
        if (suml2 > 0.f && sumlx * sumlx > best * suml2) {
            quantize_with(iscale, sumlx, suml2, true);
            scale = sumlx / suml2;
            best = scale * sumlx;
        }
    }
    return scale;
}

// ggml's make_q3_quants (do_rmse): quants in [-nmax, nmax - 1] from nmax / max,
// then up to 5 passes of moving single quants while that improves the
// x^2-weighted fit. L gets the quants with an offset of nmax.
float make_q3_quants(int n, int nmax, const float* x, std::int8_t* L) {
    const float max = signed_absmax(x, n);
    if (std::fabs(max) < kGroupMaxEps) {
        std::fill(L, L + n, std::int8_t{0});
        return 0.f;
    }
    const float iscale = -static_cast<float>(nmax) / max;
    float sumlx = 0.f;
    float suml2 = 0.f;
    for (int i = 0; i < n; ++i) {
        const int l = std::clamp(nearest_int(iscale * x[i]), -nmax, nmax - 1);
        L[i] = static_cast<std::int8_t>(l);
        const float w = x[i] * x[i];
        sumlx += w * x[i] * static_cast<float>(l);
        suml2 += w * static_cast<float>(l) * static_cast<float>(l);
    }
    for (int pass = 0; pass < 5; ++pass) {
        int n_changed = 0;
        for (int i = 0; i < n; ++i) {
            const float w = x[i] * x[i];
            float slx = sumlx - w * x[i] * static_cast<float>(L[i]);
            if (slx > 0.f) {
                float sl2 = suml2 - w * static_cast<float>(L[i]) * static_cast<float>(L[i]);
                const int new_l = std::clamp(nearest_int(x[i] * sl2 / slx), -nmax, nmax - 1);
                if (new_l != L[i]) {
                    slx += w * x[i] * static_cast<float>(new_l);
                    sl2 += w * static_cast<float>(new_l) * static_cast<float>(new_l);
                    if (sl2 > 0.f && slx * slx * suml2 > sumlx * sumlx * sl2) {
                        L[i] = static_cast<std::int8_t>(new_l);
                        sumlx = slx;
                        suml2 = sl2;
                        ++n_changed;
                    }
                }
            }
        }
        if (n_changed == 0)
            break;
    }
    for (int i = 0; i < n; ++i)
        L[i] = static_cast<std::int8_t>(L[i] + nmax);
    return suml2 > 0.f ? sumlx / suml2 : 0.f;
}

// ggml's make_qkx2_quants: an asymmetric fit x ~ scale * L + min (min <= 0,
// L in [0, nmax]) for n values, trying nstep + 1 inverse scales from
// (rmin + nmax) / range upward by rdelta and keeping the weighted least
// squares fit of least error (|error| with use_mad, else error^2).
// Returns the scale; the_min gets -min.
float make_qkx2_quants(int n, int nmax, const float* x, const float* weights, std::uint8_t* L,
                       float& the_min, std::uint8_t* Laux, float rmin, float rdelta, int nstep,
                       bool use_mad) {
    float min = x[0];
    float max = x[0];
    float sum_w = weights[0];
    float sum_x = sum_w * x[0];
    for (int i = 1; i < n; ++i) {
        min = std::min(min, x[i]);
        max = std::max(max, x[i]);
        sum_w += weights[i];
        sum_x += weights[i] * x[i];
    }
    if (min > 0.f)
        min = 0.f;
    if (max == min) {
        std::fill(L, L + n, std::uint8_t{0});
        the_min = -min;
        return 0.f;
    }
    const auto error_of = [&](float diff) { return use_mad ? std::fabs(diff) : diff * diff; };
    float iscale = static_cast<float>(nmax) / (max - min);
    float scale = 1.f / iscale;
    float best_error = 0.f;
    for (int i = 0; i < n; ++i) {
        L[i] = static_cast<std::uint8_t>(std::clamp(nearest_int(iscale * (x[i] - min)), 0, nmax));
        best_error += weights[i] * error_of(scale * static_cast<float>(L[i]) + min - x[i]);
    }
    for (int step = 0; step <= nstep; ++step) {
        iscale = (rmin + rdelta * static_cast<float>(step) + static_cast<float>(nmax)) / (max - min);
        float sum_l = 0.f;
        float sum_l2 = 0.f;
        float sum_xl = 0.f;
        for (int i = 0; i < n; ++i) {
            const int l = std::clamp(nearest_int(iscale * (x[i] - min)), 0, nmax);
            Laux[i] = static_cast<std::uint8_t>(l);
            const float w = weights[i];
            sum_l += w * static_cast<float>(l);
            sum_l2 += w * static_cast<float>(l) * static_cast<float>(l);
            sum_xl += w * static_cast<float>(l) * x[i];
        }
        const float det = sum_w * sum_l2 - sum_l * sum_l;
        if (det > 0.f) {
            float this_scale = (sum_w * sum_xl - sum_x * sum_l) / det;
            float this_min = (sum_l2 * sum_x - sum_l * sum_xl) / det;
            if (this_min > 0.f) {
                this_min = 0.f;
                this_scale = sum_xl / sum_l2;
            }
            float error = 0.f;
            for (int i = 0; i < n; ++i)
                error += weights[i] * error_of(this_scale * static_cast<float>(Laux[i]) + this_min - x[i]);
            if (error < best_error) {
                std::copy(Laux, Laux + n, L);
                best_error = error;
                scale = this_scale;
                min = this_min;
            }
        }
    }
    the_min = -min;
    return scale;
}

// A 32-element group's scale and min (quants 0..nmax, nmax 15 or 31) as
// ggml fits Q4_K's and Q5_K's: make_qkx2_quants weighted by |x| + the
// group's rms. Returns the scale; minus_min gets -min.
float fit_group32(const float* x, int nmax, std::uint8_t* L, float& minus_min) {
    float sum_x2 = 0.f;
    for (int l = 0; l < 32; ++l)
        sum_x2 += x[l] * x[l];
    const float rms = std::sqrt(sum_x2 / 32.f);
    float weights[32];
    for (int l = 0; l < 32; ++l)
        weights[l] = rms + std::fabs(x[l]);
    std::uint8_t Laux[32];
    return nmax == 15 ? make_qkx2_quants(32, nmax, x, weights, L, minus_min, Laux, -1.f, 0.1f, 20, false)
                      : make_qkx2_quants(32, nmax, x, weights, L, minus_min, Laux, -0.5f, 0.1f, 15, false);
}

// Q4_0 Q4_1 Q5_0 Q5_1. Without a min the extreme value maps to -8 (-16)
// exactly and the other side reaches +7 (+15), as llama.cpp quantizes them.
// With one, the scale and min are fitted (make_qkx2_quants, weights |x| +
// the block's rms, as Q4_K's) instead of spanning min to max over 0..15
// (0..31): on all-MiniLM-L6-v2's F32 matrices that is 20% (Q4_1) and 18%
// (Q5_1) less squared error, in the same file format. The fit keeps its min
// at most 0, which a block far from zero cannot use: the block keeps
// whichever of the two has less squared error. (A fitted symmetric scale
// gained 4-6% there and lost perplexity on SmolLM2's Q4_0.)
template <class Block>
void quantize_block32(const float* src, void* dst, std::int64_t n) {
    constexpr int kMax = kHasHighBit<Block> ? 31 : 15;
    auto* blocks = blocks_of<Block>(dst);
    for (std::int64_t b = 0; b < n / kBlock32; ++b, src += kBlock32) {
        int q[kBlock32];
        if constexpr (kHasMin<Block>) {
            std::uint8_t L[kBlock32];
            float minus_min = 0.f;
            const float d = fit_group32(src, kMax, L, minus_min);
            // Both candidates as the file stores them: f16 scale and min.
            const auto rounded = [](float x) { return fp16_to_fp32(fp32_to_fp16(x)); };
            const auto squared_error = [&](float scale, float min, const int* quants) {
                double sum = 0;
                for (int j = 0; j < kBlock32; ++j) {
                    const double diff = static_cast<double>(static_cast<float>(quants[j]) * scale + min) - src[j];
                    sum += diff * diff;
                }
                return sum;
            };
            const float fit_d = rounded(d);
            const float fit_m = rounded(-minus_min);
            int fit_q[kBlock32];
            std::copy(L, L + kBlock32, fit_q);
            const auto [lo, hi] = std::minmax_element(src, src + kBlock32);
            const float span_d = rounded((*hi - *lo) / static_cast<float>(kMax));
            const float span_m = rounded(*lo);
            int span_q[kBlock32];
            for (int j = 0; j < kBlock32; ++j)
                span_q[j] = span_d == 0.f ? 0 : static_cast<int>(std::clamp(std::round((src[j] - span_m) / span_d), 0.f,
                                                                              static_cast<float>(kMax)));
            const bool fitted = squared_error(fit_d, fit_m, fit_q) <= squared_error(span_d, span_m, span_q);
            blocks[b].d = fp32_to_fp16(fitted ? fit_d : span_d);
            blocks[b].m = fp32_to_fp16(fitted ? fit_m : span_m);
            std::copy_n(fitted ? fit_q : span_q, kBlock32, q);
        } else {
            const float d = signed_absmax(src, kBlock32) / -static_cast<float>((kMax + 1) / 2);
            const float id = d != 0.f ? 1.f / d : 0.f;
            constexpr float kRoundedOffset = 0.5f + static_cast<float>((kMax + 1) / 2);
            blocks[b].d = fp32_to_fp16(d);
            for (int j = 0; j < kBlock32; ++j)
                q[j] = std::min(kMax, static_cast<int>(static_cast<std::int8_t>(src[j] * id + kRoundedOffset)));
        }
        for (int j = 0; j < 16; ++j)
            blocks[b].qs[j] = static_cast<std::uint8_t>((q[j] & 0xF) | ((q[j + 16] & 0xF) << 4));
        if constexpr (kHasHighBit<Block>) {
            std::uint32_t qh = 0;
            for (int j = 0; j < kBlock32; ++j)
                qh |= static_cast<std::uint32_t>(q[j] >> 4) << j;
            std::memcpy(blocks[b].qh, &qh, sizeof qh);
        }
    }
}

// Packs 2-bit quants L[256] (0..3) the Q2_K / Q3_K way.
void pack_2bit(const std::uint8_t* L, std::uint8_t* qs) {
    for (int half = 0; half < 2; ++half) {
        for (int l = 0; l < 32; ++l) {
            const std::uint8_t* q = L + 128 * half + l;
            qs[32 * half + l] = static_cast<std::uint8_t>(q[0] | (q[32] << 2) | (q[64] << 4) | (q[96] << 6));
        }
    }
}

void quantize_q2_k(const float* src, void* dst, std::int64_t n) {
    auto* blocks = blocks_of<BlockQ2_K>(dst);
    for (std::int64_t b = 0; b < n / kBlockK; ++b, src += kBlockK) {
        BlockQ2_K& block = blocks[b];
        std::uint8_t L[kBlockK];
        std::uint8_t Laux[16];
        float weights[16];
        float scales[16];
        float mins[16];
        float max_scale = 0.f;
        float max_min = 0.f;
        for (int j = 0; j < 16; ++j) {
            const float* x = src + 16 * j;
            for (int l = 0; l < 16; ++l)
                weights[l] = std::fabs(x[l]);
            scales[j] = make_qkx2_quants(16, 3, x, weights, L + 16 * j, mins[j], Laux, -0.5f, 0.1f, 15, true);
            max_scale = std::max(max_scale, scales[j]);
            max_min = std::max(max_min, mins[j]);
        }
        // Scales and mins to 4 bits each, relative to the block's largest.
        if (max_scale > 0.f) {
            const float iscale = 15.f / max_scale;
            for (int j = 0; j < 16; ++j)
                block.scales[j] = static_cast<std::uint8_t>(nearest_int(iscale * scales[j]));
            block.d = fp32_to_fp16(max_scale / 15.f);
        } else {
            std::fill(block.scales, block.scales + 16, std::uint8_t{0});
            block.d = fp32_to_fp16(0.f);
        }
        if (max_min > 0.f) {
            const float iscale = 15.f / max_min;
            for (int j = 0; j < 16; ++j)
                block.scales[j] = static_cast<std::uint8_t>(block.scales[j] | (nearest_int(iscale * mins[j]) << 4));
            block.dmin = fp32_to_fp16(max_min / 15.f);
        } else {
            block.dmin = fp32_to_fp16(0.f);
        }
        // Requantize against the scales as stored.
        for (int j = 0; j < 16; ++j) {
            const float d = fp16_to_fp32(block.d) * static_cast<float>(block.scales[j] & 0xF);
            if (d == 0.f)
                continue;
            const float dm = fp16_to_fp32(block.dmin) * static_cast<float>(block.scales[j] >> 4);
            for (int l = 0; l < 16; ++l)
                L[16 * j + l] = static_cast<std::uint8_t>(std::clamp(nearest_int((src[16 * j + l] + dm) / d), 0, 3));
        }
        pack_2bit(L, block.qs);
    }
}

// Q3_K and Q6_K: each group's quants again against its scale as stored, in
// [-Offset, Offset - 1], kept + Offset in L.
template <int Offset, class Block>
void requantize_scaled16(const Block& block, const float* src, std::int8_t* L) {
    for (int j = 0; j < 16; ++j) {
        const float d = fp16_to_fp32(block.d) * static_cast<float>(scale_of(block, j));
        if (d == 0.f)
            continue;
        for (int l = 0; l < 16; ++l)
            L[16 * j + l] =
                static_cast<std::int8_t>(std::clamp(nearest_int(src[16 * j + l] / d), -Offset, Offset - 1) + Offset);
    }
}

void quantize_q3_k(const float* src, void* dst, std::int64_t n) {
    auto* blocks = blocks_of<BlockQ3_K>(dst);
    for (std::int64_t b = 0; b < n / kBlockK; ++b, src += kBlockK) {
        BlockQ3_K& block = blocks[b];
        std::int8_t L[kBlockK];
        float scales[16];
        for (int j = 0; j < 16; ++j)
            scales[j] = make_q3_quants(16, 4, src + 16 * j, L + 16 * j);
        const float max_scale = signed_absmax(scales, 16);
        std::memset(block.scales, 0, sizeof block.scales);
        if (max_scale != 0.f) {
            const float iscale = -32.f / max_scale;
            for (int j = 0; j < 16; ++j) {
                const int l = std::clamp(nearest_int(iscale * scales[j]), -32, 31) + 32;
                if (j < 8)
                    block.scales[j] = static_cast<std::uint8_t>(l & 0xF);
                else
                    block.scales[j - 8] = static_cast<std::uint8_t>(block.scales[j - 8] | ((l & 0xF) << 4));
                block.scales[8 + j % 4] = static_cast<std::uint8_t>(block.scales[8 + j % 4] | ((l >> 4) << (2 * (j / 4))));
            }
            block.d = fp32_to_fp16(1.f / iscale);
        } else {
            block.d = fp32_to_fp16(0.f);
        }
        requantize_scaled16<4>(block, src, L);
        // Bit 2 of each quant goes to hmask, the low 2 bits to qs.
        std::uint8_t low[kBlockK];
        std::memset(block.hmask, 0, sizeof block.hmask);
        for (int e = 0; e < kBlockK; ++e) {
            if (L[e] > 3)
                block.hmask[e % 32] = static_cast<std::uint8_t>(block.hmask[e % 32] | (1 << (e / 32)));
            low[e] = static_cast<std::uint8_t>(L[e] & 3);
        }
        pack_2bit(low, block.qs);
    }
}

// Q4_K and Q5_K share their sub-block fit and their 6-bit scale packing.
template <int Nmax>
void quantize_k4_style(const float* src, std::uint16_t& d_out, std::uint16_t& dmin_out,
                       std::uint8_t* packed_scales, std::uint8_t* L) {
    float scales[8];
    float mins[8];
    float max_scale = 0.f;
    float max_min = 0.f;
    for (int j = 0; j < 8; ++j) {
        scales[j] = fit_group32(src + 32 * j, Nmax, L + 32 * j, mins[j]);
        max_scale = std::max(max_scale, scales[j]);
        max_min = std::max(max_min, mins[j]);
    }
    const float inv_scale = max_scale > 0.f ? 63.f / max_scale : 0.f;
    const float inv_min = max_min > 0.f ? 63.f / max_min : 0.f;
    for (int j = 0; j < 8; ++j) {
        // Through uint8 as ggml does, so a (rare) negative fit wraps the same way.
        const int ls = std::min(63, nearest_int(inv_scale * scales[j]) & 0xFF);
        const int lm = std::min(63, nearest_int(inv_min * mins[j]) & 0xFF);
        if (j < 4) {
            packed_scales[j] = static_cast<std::uint8_t>(ls);
            packed_scales[j + 4] = static_cast<std::uint8_t>(lm);
        } else {
            packed_scales[j + 4] = static_cast<std::uint8_t>((ls & 0xF) | ((lm & 0xF) << 4));
            packed_scales[j - 4] = static_cast<std::uint8_t>(packed_scales[j - 4] | ((ls >> 4) << 6));
            packed_scales[j] = static_cast<std::uint8_t>(packed_scales[j] | ((lm >> 4) << 6));
        }
    }
    d_out = fp32_to_fp16(max_scale / 63.f);
    dmin_out = fp32_to_fp16(max_min / 63.f);
    for (int j = 0; j < 8; ++j) {
        int scale = 0;
        int min = 0;
        scale_min_k4(j, packed_scales, scale, min);
        const float d = fp16_to_fp32(d_out) * static_cast<float>(scale);
        if (d == 0.f)
            continue;
        const float dm = fp16_to_fp32(dmin_out) * static_cast<float>(min);
        for (int l = 0; l < 32; ++l)
            L[32 * j + l] = static_cast<std::uint8_t>(std::clamp(nearest_int((src[32 * j + l] + dm) / d), 0, Nmax));
    }
}

void quantize_q4_k(const float* src, void* dst, std::int64_t n) {
    auto* blocks = blocks_of<BlockQ4_K>(dst);
    for (std::int64_t b = 0; b < n / kBlockK; ++b, src += kBlockK) {
        BlockQ4_K& block = blocks[b];
        std::uint8_t L[kBlockK];
        std::memset(block.scales, 0, sizeof block.scales);
        quantize_k4_style<15>(src, block.d, block.dmin, block.scales, L);
        for (int pair = 0; pair < 4; ++pair)
            for (int l = 0; l < 32; ++l)
                block.qs[32 * pair + l] = static_cast<std::uint8_t>(L[64 * pair + l] | (L[64 * pair + 32 + l] << 4));
    }
}

void quantize_q5_k(const float* src, void* dst, std::int64_t n) {
    auto* blocks = blocks_of<BlockQ5_K>(dst);
    for (std::int64_t b = 0; b < n / kBlockK; ++b, src += kBlockK) {
        BlockQ5_K& block = blocks[b];
        std::uint8_t L[kBlockK];
        std::memset(block.scales, 0, sizeof block.scales);
        quantize_k4_style<31>(src, block.d, block.dmin, block.scales, L);
        std::memset(block.qh, 0, sizeof block.qh);
        for (int e = 0; e < kBlockK; ++e)
            block.qh[e % 32] = static_cast<std::uint8_t>(block.qh[e % 32] | ((L[e] >> 4) << (e / 32)));
        for (int pair = 0; pair < 4; ++pair)
            for (int l = 0; l < 32; ++l)
                block.qs[32 * pair + l] =
                    static_cast<std::uint8_t>((L[64 * pair + l] & 0xF) | ((L[64 * pair + 32 + l] & 0xF) << 4));
    }
}

void quantize_q6_k(const float* src, void* dst, std::int64_t n) {
    auto* blocks = blocks_of<BlockQ6_K>(dst);
    for (std::int64_t b = 0; b < n / kBlockK; ++b, src += kBlockK) {
        BlockQ6_K& block = blocks[b];
        std::int8_t L[kBlockK];
        float scales[16];
        for (int j = 0; j < 16; ++j)
            scales[j] = make_qx_quants(16, 32, src + 16 * j, L + 16 * j);
        const float max_scale = signed_absmax(scales, 16);
        if (std::fabs(max_scale) < kGroupMaxEps) {
            std::memset(&block, 0, sizeof block);
            continue;
        }
        const float iscale = -128.f / max_scale;
        block.d = fp32_to_fp16(1.f / iscale);
        for (int j = 0; j < 16; ++j)
            block.scales[j] = static_cast<std::int8_t>(std::min(127, nearest_int(iscale * scales[j])));
        requantize_scaled16<32>(block, src, L);
        for (int half = 0; half < 2; ++half) {
            for (int l = 0; l < 32; ++l) {
                const std::int8_t* q = L + 128 * half + l;
                block.ql[64 * half + l] = static_cast<std::uint8_t>((q[0] & 0xF) | ((q[64] & 0xF) << 4));
                block.ql[64 * half + 32 + l] = static_cast<std::uint8_t>((q[32] & 0xF) | ((q[96] & 0xF) << 4));
                block.qh[32 * half + l] = static_cast<std::uint8_t>((q[0] >> 4) | ((q[32] >> 4) << 2) |
                                                                    ((q[64] >> 4) << 4) | ((q[96] >> 4) << 6));
            }
        }
    }
}

// ------------------------------------------------------------- dot products
//
// Each returns sum_i w[i] * a[i] over n elements. Within a block the sums are
// exact integers; blocks are combined in float, in order, as ggml does.

float identity(float value) {
    return value;
}

template <class Element, float (*ToFloat)(Element)>
float dot_float(std::int64_t n, const void* w, const void* a) {
    const auto* x = static_cast<const Element*>(w);
    const auto* y = static_cast<const float*>(a);
    double sum = 0.0;
    for (std::int64_t i = 0; i < n; ++i)
        sum += static_cast<double>(ToFloat(x[i])) * static_cast<double>(y[i]);
    return static_cast<float>(sum);
}

// Q4_0 Q5_0 Q8_0 against Q8_0; Q4_1 Q5_1 against Q8_1, plus m * s.
template <class Block>
float dot_block32(std::int64_t n, const void* w, const void* a) {
    using Activation = std::conditional_t<kHasMin<Block>, BlockQ8_1, BlockQ8_0>;
    const auto* x = blocks_of<Block>(w);
    const auto* y = blocks_of<Activation>(a);
    float sum = 0.f;
    for (std::int64_t b = 0; b < n / kBlock32; ++b) {
        int q[kBlock32];
        quants_of(x[b], q);
        int sumi = 0;
        for (int j = 0; j < kBlock32; ++j)
            sumi += q[j] * y[b].qs[j];
        if constexpr (kHasMin<Block>)
            sum += static_cast<float>(sumi) * (fp16_to_fp32(x[b].d) * fp16_to_fp32(y[b].d)) +
                   fp16_to_fp32(x[b].m) * fp16_to_fp32(y[b].s);
        else
            sum += static_cast<float>(sumi) * (fp16_to_fp32(x[b].d) * fp16_to_fp32(y[b].d));
    }
    return sum;
}

float dot_q2_k(std::int64_t n, const void* w, const void* a) {
    const auto* x = blocks_of<BlockQ2_K>(w);
    const auto* y = blocks_of<BlockQ8_K>(a);
    float sum = 0.f;
    for (std::int64_t b = 0; b < n / kBlockK; ++b) {
        int sumi = 0;
        for (int e = 0; e < kBlockK; ++e) {
            const int q = (x[b].qs[32 * (e / 128) + e % 32] >> (2 * ((e / 32) % 4))) & 3;
            sumi += (x[b].scales[e / 16] & 0xF) * q * y[b].qs[e];
        }
        int summins = 0;
        for (int g = 0; g < 16; ++g)
            summins += (x[b].scales[g] >> 4) * y[b].bsums[g];
        sum += y[b].d * (fp16_to_fp32(x[b].d) * static_cast<float>(sumi) -
                         fp16_to_fp32(x[b].dmin) * static_cast<float>(summins));
    }
    return sum;
}

template <class Block>
float dot_scaled16(std::int64_t n, const void* w, const void* a) {
    const auto* x = blocks_of<Block>(w);
    const auto* y = blocks_of<BlockQ8_K>(a);
    float sum = 0.f;
    for (std::int64_t b = 0; b < n / kBlockK; ++b) {
        int sumi = 0;
        for (int g = 0; g < 16; ++g) {
            int group_sum = 0;
            for (int e = 16 * g; e < 16 * g + 16; ++e)
                group_sum += quant_of(x[b], e) * y[b].qs[e];
            sumi += scale_of(x[b], g) * group_sum;
        }
        sum += y[b].d * fp16_to_fp32(x[b].d) * static_cast<float>(sumi);
    }
    return sum;
}

template <class Block>
float dot_k4(std::int64_t n, const void* w, const void* a) {
    const auto* x = blocks_of<Block>(w);
    const auto* y = blocks_of<BlockQ8_K>(a);
    float sum = 0.f;
    for (std::int64_t b = 0; b < n / kBlockK; ++b) {
        int sumi = 0;
        int summins = 0;
        for (int sub = 0; sub < 8; ++sub) {
            int scale = 0;
            int min = 0;
            scale_min_k4(sub, x[b].scales, scale, min);
            int q[32];
            sub_block_quants_k4(x[b], sub, q);
            int sub_sum = 0;
            for (int l = 0; l < 32; ++l)
                sub_sum += q[l] * y[b].qs[32 * sub + l];
            sumi += scale * sub_sum;
            summins += min * (y[b].bsums[2 * sub] + y[b].bsums[2 * sub + 1]);
        }
        sum += y[b].d * (fp16_to_fp32(x[b].d) * static_cast<float>(sumi) -
                         fp16_to_fp32(x[b].dmin) * static_cast<float>(summins));
    }
    return sum;
}

// The scalar group kernels' loops: every row of every group of the tile
// against every column, row r's product being row_product(x, y, r) for the
// group's blocks x and the column's activation blocks y.
template <class Group, class Activation, class RowProduct>
void for_each_group_product(const MatmulTile& tile, RowProduct row_product) {
    for (std::int64_t first = 0; first < tile.n_rows; first += kGroupRows) {
        const auto* x = blocks_of<Group>(tile.weights + first * tile.row_bytes);
        for (std::int64_t c = 0; c < tile.n_cols; ++c) {
            const auto* y = blocks_of<Activation>(tile.activations + c * tile.act_row_bytes);
            for (int r = 0; r < kGroupRows; ++r)
                tile.out[c * tile.out_col_stride + first + r] = row_product(x, y, r);
        }
    }
}

// The row kernel's sums (dot_k4), in the same order, over row groups.
void matmul_q4_k_groups_scalar(const MatmulTile& tile) {
    const std::int64_t n_blocks = tile.n / kBlockK;
    for_each_group_product<BlockQ4_KGroup, BlockQ8_K>(tile, [&](const BlockQ4_KGroup* x, const BlockQ8_K* y, int r) {
        float sum = 0.f;
        for (std::int64_t b = 0; b < n_blocks; ++b) {
            int sumi = 0;
            int summins = 0;
            for (int sub = 0; sub < 8; ++sub) {
                int sub_sum = 0;
                for (int p = 0; p < 4; ++p)
                    for (int i = 0; i < 4; ++i) {
                        const int byte = x[b].qs[sub][p][4 * r + i];
                        sub_sum += (byte & 0xF) * y[b].qs[32 * sub + 8 * p + i] +
                                   (byte >> 4) * y[b].qs[32 * sub + 8 * p + 4 + i];
                    }
                sumi += x[b].scales[sub][r] * sub_sum;
                summins += x[b].mins[sub][r] * (y[b].bsums[2 * sub] + y[b].bsums[2 * sub + 1]);
            }
            sum += y[b].d * (fp16_to_fp32(x[b].d[r]) * static_cast<float>(sumi) -
                             fp16_to_fp32(x[b].dmin[r]) * static_cast<float>(summins));
        }
        return sum;
    });
}

// Row groups of the 32-element types: each block type's group
// (BlockQ8_0Group ... BlockQ5_1Group), and element j of row r's block k as
// the group stores it (q + the group's kOffset).
template <class Block>
struct Block32GroupOf;
template <> struct Block32GroupOf<BlockQ8_0> { using Type = BlockQ8_0Group; };
template <> struct Block32GroupOf<BlockQ4_0> { using Type = BlockQ4_0Group; };
template <> struct Block32GroupOf<BlockQ4_1> { using Type = BlockQ4_1Group; };
template <> struct Block32GroupOf<BlockQ5_0> { using Type = BlockQ5_0Group; };
template <> struct Block32GroupOf<BlockQ5_1> { using Type = BlockQ5_1Group; };
template <class Block>
using Block32Group = typename Block32GroupOf<Block>::Type;

int stored_quant(const BlockQ8_0Group& group, int k, int r, int j) {
    return group.qs[k][j / 4][4 * r + j % 4];
}
template <class NibbleGroup>
int stored_quant(const NibbleGroup& group, int k, int r, int j) {
    const int byte = group.qs[k][j / 8][4 * r + j % 4];
    const int nibble = j % 8 < 4 ? byte & 0xF : byte >> 4;
    if constexpr (requires { group.qh; })
        return nibble | static_cast<int>((group.qh[k][j / 8][j % 8 / 4] >> (4 * r + j % 4)) & 1u) << 4;
    else
        return nibble;
}

// The row kernel's sums (dot_block32), in the same order, over row groups.
template <class Block>
void matmul_block32_groups_scalar(const MatmulTile& tile) {
    using Group = Block32Group<Block>;
    using Activation = std::conditional_t<kHasMin<Block>, BlockQ8_1, BlockQ8_0>;
    const std::int64_t n_blocks = tile.n / kBlock32;
    for_each_group_product<Group, Activation>(tile, [&](const Group* x, const Activation* y, int r) {
        float sum = 0.f;
        for (std::int64_t b = 0; b < n_blocks; ++b) {
            const Group& group = x[b / kBlock32GroupBlocks];
            const auto k = static_cast<int>(b % kBlock32GroupBlocks);
            int sumi = 0;
            for (int j = 0; j < kBlock32; ++j)
                sumi += (stored_quant(group, k, r, j) - Group::kOffset) * y[b].qs[j];
            if constexpr (kHasMin<Block>)
                sum += static_cast<float>(sumi) * (fp16_to_fp32(group.d[k][r]) * fp16_to_fp32(y[b].d)) +
                       fp16_to_fp32(group.m[k][r]) * fp16_to_fp32(y[b].s);
            else
                sum += static_cast<float>(sumi) * (fp16_to_fp32(group.d[k][r]) * fp16_to_fp32(y[b].d));
        }
        return sum;
    });
}

using DotFn = float (*)(std::int64_t n, const void* w, const void* a);

template <DotFn Dot>
void matmul_by_rows(const MatmulTile& tile) {
    for (std::int64_t c = 0; c < tile.n_cols; ++c) {
        const std::uint8_t* activation = tile.activations + c * tile.act_row_bytes;
        float* out = tile.out + c * tile.out_col_stride;
        for (std::int64_t r = 0; r < tile.n_rows; ++r)
            out[r] = Dot(tile.n, tile.weights + r * tile.row_bytes, activation);
    }
}

void exp_row_scalar(float* values, std::int64_t n) {
    for (std::int64_t i = 0; i < n; ++i)
        values[i] = std::exp(values[i]);
}

void softmax_row_scalar(float* values, std::int64_t n, float scale) {
    float max_score = -INFINITY;
    for (std::int64_t i = 0; i < n; ++i)
        max_score = std::max(max_score, values[i] * scale);
    double sum = 0.0;
    for (std::int64_t i = 0; i < n; ++i) {
        values[i] = std::exp(values[i] * scale - max_score);
        sum += values[i];
    }
    const auto inverse_sum = static_cast<float>(1.0 / sum);
    for (std::int64_t i = 0; i < n; ++i)
        values[i] *= inverse_sum;
}

void gelu_row_scalar(float* values, std::int64_t n) {
    using namespace erf_approximation;
    for (std::int64_t i = 0; i < n; ++i) {
        const float z = std::abs(values[i]) * kInverseSqrt2;
        const float t = 1.f / (1.f + kP * z);
        float polynomial = kA[0];
        for (std::size_t k = 1; k < std::size(kA); ++k)
            polynomial = polynomial * t + kA[k];
        const float erf_z = 1.f - polynomial * t * std::exp(-z * z);
        values[i] = 0.5f * values[i] * (1.f + (values[i] < 0.f ? -erf_z : erf_z));
    }
}

void weighted_q8_0_rows_scalar(const float* weights, std::int64_t weight_stride, std::int64_t n_heads,
                               const std::uint8_t* rows, std::int64_t row_bytes, std::int64_t n_rows,
                               std::int64_t first_block, std::int64_t n_blocks, float* acc, std::int64_t acc_stride) {
    for (std::int64_t j = 0; j < n_rows; ++j) {
        const auto* blocks = reinterpret_cast<const BlockQ8_0*>(rows + j * row_bytes) + first_block;
        for (std::int64_t b = 0; b < n_blocks; ++b) {
            const float d = fp16_to_fp32(blocks[b].d);
            for (std::int64_t h = 0; h < n_heads; ++h) {
                const float scale = weights[h * weight_stride + j] * d;
                float* out = acc + h * acc_stride + b * kBlock32;
                for (int e = 0; e < kBlock32; ++e)
                    out[e] += scale * static_cast<float>(blocks[b].qs[e]);
            }
        }
    }
}

KernelTable make_scalar_table() {
    KernelTable table;
    table.isa = "scalar";
    table.exp_row = exp_row_scalar;
    table.softmax_row = softmax_row_scalar;
    table.gelu_row = gelu_row_scalar;
    table.weighted_q8_0_rows = weighted_q8_0_rows_scalar;
    table.matmul_groups[static_cast<std::size_t>(GgmlType::Q4_K)] = matmul_q4_k_groups_scalar;
    table.matmul_groups[static_cast<std::size_t>(GgmlType::Q8_0)] = matmul_block32_groups_scalar<BlockQ8_0>;
    table.matmul_groups[static_cast<std::size_t>(GgmlType::Q4_0)] = matmul_block32_groups_scalar<BlockQ4_0>;
    table.matmul_groups[static_cast<std::size_t>(GgmlType::Q4_1)] = matmul_block32_groups_scalar<BlockQ4_1>;
    table.matmul_groups[static_cast<std::size_t>(GgmlType::Q5_0)] = matmul_block32_groups_scalar<BlockQ5_0>;
    table.matmul_groups[static_cast<std::size_t>(GgmlType::Q5_1)] = matmul_block32_groups_scalar<BlockQ5_1>;
    const auto set = [&table](GgmlType type, DequantizeRowFn dequantize, QuantizeRowFn quantize, MatmulTileFn matmul) {
        const auto slot = static_cast<std::size_t>(type);
        table.dequantize_row[slot] = dequantize;
        table.quantize_row[slot] = quantize;
        table.matmul[slot] = matmul;
    };
    set(GgmlType::F32, dequantize_f32, quantize_f32, matmul_by_rows<dot_float<float, identity>>);
    set(GgmlType::F16, dequantize_f16, quantize_f16, matmul_by_rows<dot_float<std::uint16_t, fp16_to_fp32>>);
    set(GgmlType::BF16, dequantize_bf16, quantize_bf16, matmul_by_rows<dot_float<std::uint16_t, bf16_to_fp32>>);
    set(GgmlType::Q4_0, dequantize_block32<BlockQ4_0>, quantize_block32<BlockQ4_0>, matmul_by_rows<dot_block32<BlockQ4_0>>);
    set(GgmlType::Q4_1, dequantize_block32<BlockQ4_1>, quantize_block32<BlockQ4_1>, matmul_by_rows<dot_block32<BlockQ4_1>>);
    set(GgmlType::Q5_0, dequantize_block32<BlockQ5_0>, quantize_block32<BlockQ5_0>, matmul_by_rows<dot_block32<BlockQ5_0>>);
    set(GgmlType::Q5_1, dequantize_block32<BlockQ5_1>, quantize_block32<BlockQ5_1>, matmul_by_rows<dot_block32<BlockQ5_1>>);
    set(GgmlType::Q8_0, dequantize_block32<BlockQ8_0>, quantize_q8_0, matmul_by_rows<dot_block32<BlockQ8_0>>);
    set(GgmlType::Q8_1, dequantize_block32<BlockQ8_1>, quantize_q8_1, nullptr);
    set(GgmlType::Q2_K, dequantize_q2_k, quantize_q2_k, matmul_by_rows<dot_q2_k>);
    set(GgmlType::Q3_K, dequantize_scaled16<BlockQ3_K>, quantize_q3_k, matmul_by_rows<dot_scaled16<BlockQ3_K>>);
    set(GgmlType::Q4_K, dequantize_k4<BlockQ4_K>, quantize_q4_k, matmul_by_rows<dot_k4<BlockQ4_K>>);
    set(GgmlType::Q5_K, dequantize_k4<BlockQ5_K>, quantize_q5_k, matmul_by_rows<dot_k4<BlockQ5_K>>);
    set(GgmlType::Q6_K, dequantize_scaled16<BlockQ6_K>, quantize_q6_k, matmul_by_rows<dot_scaled16<BlockQ6_K>>);
    set(GgmlType::Q8_K, dequantize_q8_k, quantize_q8_k, nullptr);
    return table;
}

void group_q4_k_rows(const std::uint8_t* weights, std::int64_t row_bytes, std::int64_t n, std::int64_t n_groups,
                     std::uint8_t* groups_bytes) {
    auto* groups = reinterpret_cast<BlockQ4_KGroup*>(groups_bytes);
    const std::int64_t n_blocks = n / kBlockK;
    // Row by row, each read in order, into the group's blocks (a few KB).
    for (std::int64_t g = 0; g < n_groups; ++g)
        for (int r = 0; r < kGroupRows; ++r)
            for (std::int64_t b = 0; b < n_blocks; ++b) {
                BlockQ4_KGroup& out = groups[g * n_blocks + b];
                const BlockQ4_K& block = blocks_of<BlockQ4_K>(weights + (g * kGroupRows + r) * row_bytes)[b];
                out.d[r] = block.d;
                out.dmin[r] = block.dmin;
                for (int sub = 0; sub < 8; ++sub) {
                    int scale = 0;
                    int min = 0;
                    scale_min_k4(sub, block.scales, scale, min);
                    out.scales[sub][r] = static_cast<std::uint8_t>(scale);
                    out.mins[sub][r] = static_cast<std::uint8_t>(min);
                    // Eight quants a word (a model's first pass waits for this):
                    // byte i of the output quad is quant i | quant 4 + i << 4.
                    const std::uint8_t* qs = block.qs + 32 * (sub / 2);
                    for (int p = 0; p < 4; ++p) {
                        std::uint64_t word = 0;
                        std::memcpy(&word, qs + 8 * p, sizeof word);
                        const std::uint64_t quants = word >> (4 * (sub % 2)) & 0x0F0F0F0F0F0F0F0FULL;
                        const auto quad = static_cast<std::uint32_t>(quants | (quants >> 32) << 4);
                        std::memcpy(&out.qs[sub][p][4 * r], &quad, sizeof quad);
                    }
                }
            }
}

template <class Block>
void group_block32_rows(const std::uint8_t* weights, std::int64_t row_bytes, std::int64_t n, std::int64_t n_groups,
                        std::uint8_t* groups_bytes) {
    using Group = Block32Group<Block>;
    constexpr int kOffset = Group::kOffset;
    auto* groups = reinterpret_cast<Group*>(groups_bytes);
    const std::int64_t n_blocks = n / kBlock32;
    for (std::int64_t g = 0; g < n_groups; ++g)
        for (int r = 0; r < kGroupRows; ++r)
            for (std::int64_t b = 0; b < n_blocks; ++b) {
                Group& out = groups[g * (n_blocks / kBlock32GroupBlocks) + b / kBlock32GroupBlocks];
                const auto k = static_cast<int>(b % kBlock32GroupBlocks);
                const Block& block = blocks_of<Block>(weights + (g * kGroupRows + r) * row_bytes)[b];
                out.d[k][r] = block.d;
                if constexpr (kHasMin<Block>)
                    out.m[k][r] = block.m;
                int q[kBlock32];
                quants_of(block, q);
                if constexpr (std::is_same_v<Group, BlockQ8_0Group>) {
                    for (int j = 0; j < kBlock32; ++j)
                        out.qs[k][j / 4][4 * r + j % 4] = static_cast<std::uint8_t>(q[j] + kOffset);
                } else {
                    for (int p = 0; p < 4; ++p)
                        for (int i = 0; i < 4; ++i) {
                            const int low = q[8 * p + i] + kOffset, high = q[8 * p + 4 + i] + kOffset;
                            out.qs[k][p][4 * r + i] = static_cast<std::uint8_t>((low & 0xF) | (high & 0xF) << 4);
                            if constexpr (kHasHighBit<Block>) {
                                const int bit = 4 * r + i;
                                out.qh[k][p][0] = (out.qh[k][p][0] & ~(std::uint64_t{1} << bit)) |
                                                  static_cast<std::uint64_t>(low >> 4) << bit;
                                out.qh[k][p][1] = (out.qh[k][p][1] & ~(std::uint64_t{1} << bit)) |
                                                  static_cast<std::uint64_t>(high >> 4) << bit;
                            }
                        }
                }
            }
}

}  // namespace

RowGroupLayout row_group_layout(GgmlType type) {
    switch (type) {
    case GgmlType::Q4_K: return {kBlockK, sizeof(BlockQ4_KGroup), group_q4_k_rows};
    case GgmlType::Q8_0: return {kBlock32GroupBlocks * kBlock32, sizeof(BlockQ8_0Group), group_block32_rows<BlockQ8_0>};
    case GgmlType::Q4_0: return {kBlock32GroupBlocks * kBlock32, sizeof(BlockQ4_0Group), group_block32_rows<BlockQ4_0>};
    case GgmlType::Q4_1: return {kBlock32GroupBlocks * kBlock32, sizeof(BlockQ4_1Group), group_block32_rows<BlockQ4_1>};
    case GgmlType::Q5_0: return {kBlock32GroupBlocks * kBlock32, sizeof(BlockQ5_0Group), group_block32_rows<BlockQ5_0>};
    case GgmlType::Q5_1: return {kBlock32GroupBlocks * kBlock32, sizeof(BlockQ5_1Group), group_block32_rows<BlockQ5_1>};
    default: return {};
    }
}

const KernelTable& scalar_kernels() {
    static const KernelTable table = make_scalar_table();
    return table;
}

}  // namespace folio::engine::quant
