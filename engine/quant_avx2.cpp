// AVX2 + FMA + F16C kernels (Haswell / Zen 1 and later). Compiled with
// -mavx2 -mfma -mf16c (engine/CMakeLists.txt); the dispatcher calls
// add_avx2_kernels only on CPUs that have them. Everything here has internal
// linkage, including what it shares with quant_avx512.cpp through
// quant_x86.h (see quant_kernels.h).
//
// The integer dot products follow ggml's x86 scheme: _mm256_maddubs_epi16
// multiplies unsigned weight bytes by signed activation bytes and adds pairs
// into int16 (no saturation: |pair| <= 2 * 63 * 127 for the widest weights),
// _mm256_madd_epi16 applies a sub-block scale (or 1) while widening to int32.
// Signed weights use |w| and sign(a, w). Offsets and mins are folded in
// through the activation's block sums (Q8_1 s, Q8_K bsums).
//
// Activations must be quantized by quantize_row (int8 in [-127, 127]): the
// sign trick would overflow on -128.

#if defined(__AVX2__) && defined(__FMA__) && defined(__F16C__)

#include <immintrin.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <iterator>
#include <type_traits>
#include <vector>

#include "engine/ggml_types.h"
#include "engine/quant_kernels.h"
#include "engine/quant_x86.h"

namespace folio::engine::quant {
namespace {

// Columns of activations each weight block is multiplied with while it sits in
// registers (16 ymm registers: the K-quant kernels need 2 per column).
constexpr int kMaxColumns = 4;
int hsum_i32(__m256i v) {
    __m128i sum = _mm_add_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1));
    sum = _mm_add_epi32(sum, _mm_shuffle_epi32(sum, _MM_SHUFFLE(1, 0, 3, 2)));
    sum = _mm_add_epi32(sum, _mm_shuffle_epi32(sum, _MM_SHUFFLE(2, 3, 0, 1)));
    return _mm_cvtsi128_si32(sum);
}

float hmax(__m256 v) {
    __m128 max = _mm_max_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    max = _mm_max_ps(max, _mm_movehl_ps(max, max));
    max = _mm_max_ss(max, _mm_movehdup_ps(max));
    return _mm_cvtss_f32(max);
}

__m256 abs_ps(__m256 v) {
    return _mm256_andnot_ps(_mm256_set1_ps(-0.f), v);
}

// 16 bytes of nibbles -> 32 bytes: the low nibbles (elements 0..15), then
// the high nibbles (elements 16..31), each 0..15.
__m256i unpack_nibbles_32(const std::uint8_t* qs) {
    const __m128i packed = _mm_loadu_si128(reinterpret_cast<const __m128i*>(qs));
    const __m256i both = _mm256_set_m128i(_mm_srli_epi16(packed, 4), packed);
    return _mm256_and_si256(both, _mm256_set1_epi8(0x0F));
}

// 32 bits -> 32 bytes, 0xFF where the bit is set.
__m256i expand_bits_32(const std::uint8_t* bits4) {
    std::uint32_t bits;
    std::memcpy(&bits, bits4, sizeof bits);
    // Byte i gets byte i / 8 of the word, then tests its bit i % 8.
    const __m256i spread = _mm256_shuffle_epi8(
        _mm256_set1_epi32(static_cast<int>(bits)),
        _mm256_set_epi64x(0x0303030303030303, 0x0202020202020202, 0x0101010101010101, 0x0000000000000000));
    const __m256i bit_of_byte = _mm256_set1_epi64x(static_cast<long long>(0x8040201008040201ull));
    return _mm256_cmpeq_epi8(_mm256_and_si256(spread, bit_of_byte), bit_of_byte);
}

// Sum of products of unsigned u8 weights and signed i8 activations, as 8 int32.
__m256i dot_u8_i8(__m256i weights, __m256i activations) {
    return _mm256_madd_epi16(_mm256_maddubs_epi16(weights, activations), _mm256_set1_epi16(1));
}

// The same with a scale per 16-element half: scales16 holds the scale of
// elements 0..15 in its low 128 bits and of 16..31 in its high 128 bits.
__m256i dot_u8_i8_scaled(__m256i weights, __m256i activations, __m256i scales16) {
    return _mm256_madd_epi16(_mm256_maddubs_epi16(weights, activations), scales16);
}

// ------------------------------------------------------------ float weights

// 8 weights as floats.
struct LoadF32 {
    using Element = float;
    static __m256 load8(const float* p) { return _mm256_loadu_ps(p); }
    static float load1(const float* p) { return *p; }
};
struct LoadF16 {
    using Element = std::uint16_t;
    static __m256 load8(const std::uint16_t* p) {
        return _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p)));
    }
    static float load1(const std::uint16_t* p) { return _cvtsh_ss(*p); }
};
struct LoadBF16 {
    using Element = std::uint16_t;
    static __m256 load8(const std::uint16_t* p) {
        const __m256i wide = _mm256_cvtepu16_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p)));
        return _mm256_castsi256_ps(_mm256_slli_epi32(wide, 16));
    }
    static float load1(const std::uint16_t* p) {
        const std::uint32_t bits = static_cast<std::uint32_t>(*p) << 16;
        float value;
        std::memcpy(&value, &bits, sizeof value);
        return value;
    }
};

template <class Load>
struct KernelFloat {
    template <int Columns>
    static void dot_row(std::int64_t n, const std::uint8_t* weight_row, const std::uint8_t* const* activation_rows,
                        float* results) {
        const auto* w = reinterpret_cast<const typename Load::Element*>(weight_row);
        const float* a[Columns];
        __m256 acc0[Columns];
        __m256 acc1[Columns];
        for (int c = 0; c < Columns; ++c) {
            a[c] = reinterpret_cast<const float*>(activation_rows[c]);
            acc0[c] = _mm256_setzero_ps();
            acc1[c] = _mm256_setzero_ps();
        }
        std::int64_t i = 0;
        for (; i + 16 <= n; i += 16) {
            _mm_prefetch(reinterpret_cast<const char*>(w + i) + kPrefetchBytes, _MM_HINT_T0);
            const __m256 w0 = Load::load8(w + i);
            const __m256 w1 = Load::load8(w + i + 8);
            for (int c = 0; c < Columns; ++c) {
                acc0[c] = _mm256_fmadd_ps(w0, _mm256_loadu_ps(a[c] + i), acc0[c]);
                acc1[c] = _mm256_fmadd_ps(w1, _mm256_loadu_ps(a[c] + i + 8), acc1[c]);
            }
        }
        for (; i + 8 <= n; i += 8) {
            const __m256 w0 = Load::load8(w + i);
            for (int c = 0; c < Columns; ++c)
                acc0[c] = _mm256_fmadd_ps(w0, _mm256_loadu_ps(a[c] + i), acc0[c]);
        }
        for (int c = 0; c < Columns; ++c) {
            float sum = hsum(_mm256_add_ps(acc0[c], acc1[c]));
            for (std::int64_t j = i; j < n; ++j)
                sum += Load::load1(w + j) * a[c][j];
            results[c] = sum;
        }
    }
};

// ------------------------------------------------- 32-element block weights

// Shared by the types whose activations are Q8_0 (signed weights) or Q8_1
// (unsigned weights plus a min): Unpack gives the 32 weights as bytes in
// element order.
struct UnpackQ4_0 {
    using Block = BlockQ4_0;
    using Activation = BlockQ8_0;
    static __m256i weights(const Block& x) {
        return _mm256_sub_epi8(unpack_nibbles_32(x.qs), _mm256_set1_epi8(8));
    }
};
struct UnpackQ5_0 {
    using Block = BlockQ5_0;
    using Activation = BlockQ8_0;
    // (nibble | high << 4) - 16 is the nibble with 0xF0 set where high is 0.
    static __m256i weights(const Block& x) {
        return _mm256_or_si256(unpack_nibbles_32(x.qs),
                               _mm256_andnot_si256(expand_bits_32(x.qh), _mm256_set1_epi8(static_cast<char>(0xF0))));
    }
};
struct UnpackQ8_0 {
    using Block = BlockQ8_0;
    using Activation = BlockQ8_0;
    static __m256i weights(const Block& x) { return load256(x.qs); }
};
struct UnpackQ4_1 {
    using Block = BlockQ4_1;
    using Activation = BlockQ8_1;
    static __m256i weights(const Block& x) { return unpack_nibbles_32(x.qs); }
};
struct UnpackQ5_1 {
    using Block = BlockQ5_1;
    using Activation = BlockQ8_1;
    static __m256i weights(const Block& x) {
        return _mm256_or_si256(unpack_nibbles_32(x.qs), _mm256_and_si256(expand_bits_32(x.qh), _mm256_set1_epi8(0x10)));
    }
};

// One float dependency chain per column would hold these kernels at one
// block per FMA latency (4 cycles) when there is a single column: even and
// odd blocks go to separate accumulators.
//
// Signed weights against Q8_0: sum over blocks of d_w * d_a * sum(w * a).
// Unsigned weights with a min against Q8_1: the same plus m * s.
template <class Unpack>
struct KernelBlock32 {
    using Activation = typename Unpack::Activation;
    static constexpr bool kHasMin = std::is_same_v<Activation, BlockQ8_1>;

    // The activation columns' f16 scales (and Q8_1's sums s) as floats,
    // converted once per tile instead of once per weight row.
    template <int Columns>
    class Packed {
    public:
        Packed(std::int64_t n, const std::uint8_t* const* activation_rows) {
            activation_blocks(activation_rows, blocks_);
            const std::int64_t n_blocks = n / kBlock32;
            thread_local std::vector<float> storage;
            storage.resize(static_cast<std::size_t>(Columns * n_blocks * 2));
            for (int c = 0; c < Columns; ++c) {
                scales_[c] = storage.data() + 2 * c * n_blocks;
                sums_[c] = scales_[c] + n_blocks;
                for (std::int64_t b = 0; b < n_blocks; ++b) {
                    scales_[c][b] = half_to_float(blocks_[c][b].d);
                    if constexpr (kHasMin)
                        sums_[c][b] = half_to_float(blocks_[c][b].s);
                }
            }
        }

        const Activation& block(int c, std::int64_t b) const { return blocks_[c][b]; }
        float scale(int c, std::int64_t b) const { return scales_[c][b]; }
        float sum(int c, std::int64_t b) const { return sums_[c][b]; }

    private:
        const Activation* blocks_[Columns];
        float* scales_[Columns];
        float* sums_[Columns];
    };

    template <int Columns>
    static void dot_row(std::int64_t n, const std::uint8_t* weight_row, const Packed<Columns>& y, float* results) {
        const auto* x = as_blocks<typename Unpack::Block>(weight_row);
        __m256 acc[2][Columns];
        float min_terms[Columns];
        for (int c = 0; c < Columns; ++c) {
            acc[0][c] = _mm256_setzero_ps();
            acc[1][c] = _mm256_setzero_ps();
            min_terms[c] = 0.f;
        }
        const auto add_block = [&](std::int64_t b, __m256* sums) {
            prefetch_ahead(x + b);
            const __m256i w = Unpack::weights(x[b]);
            // maddubs wants unsigned weights: signed ones give |w| and move their sign to a.
            const __m256i w_unsigned = kHasMin ? w : _mm256_sign_epi8(w, w);
            const float d = half_to_float(x[b].d);
            float m = 0.f;
            if constexpr (kHasMin)
                m = half_to_float(x[b].m);
            for (int c = 0; c < Columns; ++c) {
                __m256i a = load256(y.block(c, b).qs);
                if constexpr (!kHasMin)
                    a = _mm256_sign_epi8(a, w);
                const __m256 sum = _mm256_cvtepi32_ps(dot_u8_i8(w_unsigned, a));
                sums[c] = _mm256_fmadd_ps(_mm256_set1_ps(d * y.scale(c, b)), sum, sums[c]);
                if constexpr (kHasMin)
                    min_terms[c] += m * y.sum(c, b);
            }
        };
        const std::int64_t n_blocks = n / kBlock32;
        std::int64_t b = 0;
        for (; b + 2 <= n_blocks; b += 2) {
            add_block(b, acc[0]);
            add_block(b + 1, acc[1]);
        }
        if (b < n_blocks)
            add_block(b, acc[0]);
        for (int c = 0; c < Columns; ++c) {
            results[c] = hsum(_mm256_add_ps(acc[0][c], acc[1][c]));
            if constexpr (kHasMin)
                results[c] += min_terms[c];
        }
    }
};

// ------------------------------------------------------------------ K-quants

// Broadcasts scale k of a 16-bit scale vector (8 scales repeated in each
// 128-bit lane) to all 16 lanes.
__m256i broadcast_scale16(__m256i scales, int k) {
    const short pair = static_cast<short>((2 * k) | ((2 * k + 1) << 8));
    return _mm256_shuffle_epi8(scales, _mm256_set1_epi16(pair));
}

// For the 16-element-scale types (Q2_K, Q3_K, Q6_K): the 16-bit scale vector
// of 32-element group g: scales 2g (elements 0..15) and 2g + 1 (16..31) of
// the 16 int8 scales in `scales8`.
__m256i group_scales16(__m128i scales8, int g) {
    const __m128i pick = _mm_set_epi8(static_cast<char>(2 * g + 1), static_cast<char>(2 * g + 1),
                                      static_cast<char>(2 * g + 1), static_cast<char>(2 * g + 1),
                                      static_cast<char>(2 * g + 1), static_cast<char>(2 * g + 1),
                                      static_cast<char>(2 * g + 1), static_cast<char>(2 * g + 1),
                                      static_cast<char>(2 * g), static_cast<char>(2 * g), static_cast<char>(2 * g),
                                      static_cast<char>(2 * g), static_cast<char>(2 * g), static_cast<char>(2 * g),
                                      static_cast<char>(2 * g), static_cast<char>(2 * g));
    return _mm256_cvtepi8_epi16(_mm_shuffle_epi8(scales8, pick));
}

// Every K-quant kernel: Unpack::add_block<Columns>(block, y, b, acc) adds
// weight block b times activation block b of each column to acc[column].
template <class Unpack>
struct KernelK {
    template <int Columns>
    static void dot_row(std::int64_t n, const std::uint8_t* weight_row, const std::uint8_t* const* activation_rows,
                        float* results) {
        const auto* x = as_blocks<typename Unpack::Block>(weight_row);
        const BlockQ8_K* y[Columns];
        activation_blocks(activation_rows, y);
        __m256 acc[Columns];
        for (int c = 0; c < Columns; ++c)
            acc[c] = _mm256_setzero_ps();
        for (std::int64_t b = 0; b < n / kBlockK; ++b) {
            prefetch_ahead(x + b);
            Unpack::template add_block<Columns>(x[b], y, b, acc);
        }
        for (int c = 0; c < Columns; ++c)
            results[c] = hsum(acc[c]);
    }
};

// acc += y.d * (d * sumi - dmin * sum_g min_g * bsum_g): the types with mins
// (Q2_K, Q4_K, Q5_K). mins16 holds one min per 16-element bsum.
template <int Columns>
void add_scaled_minus_mins(float d, float dmin, __m256i mins16, const BlockQ8_K* const (&y)[Columns], std::int64_t b,
                           const __m256i (&sumi)[Columns], __m256 (&acc)[Columns]) {
    for (int c = 0; c < Columns; ++c) {
        const __m256i mins_sum = _mm256_madd_epi16(load256(y[c][b].bsums), mins16);
        acc[c] = _mm256_fmadd_ps(_mm256_set1_ps(d * y[c][b].d), _mm256_cvtepi32_ps(sumi[c]), acc[c]);
        acc[c] = _mm256_fmadd_ps(_mm256_set1_ps(-dmin * y[c][b].d), _mm256_cvtepi32_ps(mins_sum), acc[c]);
    }
}

// acc += y.d * d * (sumi - 2^Shift * sum_g scale_g * bsum_g): the types whose
// quants are stored + 2^Shift (Q3_K + 4, Q6_K + 32).
template <int Shift, int Columns>
void add_scaled_minus_offset(float d, __m128i scales8, const BlockQ8_K* const (&y)[Columns], std::int64_t b,
                             const __m256i (&sumi)[Columns], __m256 (&acc)[Columns]) {
    const __m256i scales16 = _mm256_cvtepi8_epi16(scales8);
    for (int c = 0; c < Columns; ++c) {
        const __m256i offset = _mm256_slli_epi32(_mm256_madd_epi16(load256(y[c][b].bsums), scales16), Shift);
        const __m256 sum = _mm256_cvtepi32_ps(_mm256_sub_epi32(sumi[c], offset));
        acc[c] = _mm256_fmadd_ps(_mm256_set1_ps(d * y[c][b].d), sum, acc[c]);
    }
}

// The 16-element-scale types (Q2_K, Q3_K, Q6_K): sumi += the products of the
// unsigned quants q[g] of half `half`'s four 32-element groups, each half of
// a group with its own scale from scales8.
template <int Columns>
void add_groups16(const __m256i (&q)[4], __m128i scales8, int half, const BlockQ8_K* const (&y)[Columns],
                  std::int64_t b, __m256i (&sumi)[Columns]) {
    for (int g = 0; g < 4; ++g) {
        const __m256i scale = group_scales16(scales8, 4 * half + g);
        for (int c = 0; c < Columns; ++c) {
            const __m256i a = load256(y[c][b].qs + 128 * half + 32 * g);
            sumi[c] = _mm256_add_epi32(sumi[c], dot_u8_i8_scaled(q[g], a, scale));
        }
    }
}

// Q2_K / Q3_K: the low 2 bits of the quants of half `half`'s four 32-element
// groups (bits 2g..2g+1 of qs[32 * half + l] for group g).
void unpack_2bit_groups(const std::uint8_t* qs, int half, __m256i (&q)[4]) {
    __m256i bits = load256(qs + 32 * half);
    for (int g = 0; g < 4; ++g) {
        q[g] = _mm256_and_si256(bits, _mm256_set1_epi8(0x03));
        bits = _mm256_srli_epi16(bits, 2);
    }
}

template <int Columns>
void zero(__m256i (&sumi)[Columns]) {
    for (int c = 0; c < Columns; ++c)
        sumi[c] = _mm256_setzero_si256();
}

// Q4_K and Q5_K: value = d * scale * q - dmin * min over 8 sub-blocks of 32;
// Q5_K merges a fifth bit from qh.
template <bool kFiveBit>
struct UnpackK4 {
    using Block = std::conditional_t<kFiveBit, BlockQ5_K, BlockQ4_K>;

    template <int Columns>
    static void add_block(const Block& x, const BlockQ8_K* const (&y)[Columns], std::int64_t b,
                          __m256 (&acc)[Columns]) {
        const __m256i low4 = _mm256_set1_epi8(0x0F);
        const __m128i scales_mins = unpack_scales_k4(x.scales);
        const __m256i scales = _mm256_broadcastsi128_si256(_mm_cvtepu8_epi16(scales_mins));
        // Bit s of qh[l] is bit 4 of element 32s + l; shifted down 2 per pair.
        __m256i high_bits = _mm256_setzero_si256();
        if constexpr (kFiveBit)
            high_bits = load256(x.qh);
        __m256i sumi[Columns];
        zero(sumi);
        for (int pair = 0; pair < 4; ++pair) {
            const __m256i packed = load256(x.qs + 32 * pair);
            __m256i low = _mm256_and_si256(packed, low4);
            __m256i high = _mm256_and_si256(_mm256_srli_epi16(packed, 4), low4);
            if constexpr (kFiveBit) {
                low = _mm256_or_si256(low, _mm256_slli_epi16(_mm256_and_si256(high_bits, _mm256_set1_epi8(0x01)), 4));
                high = _mm256_or_si256(high, _mm256_slli_epi16(_mm256_and_si256(high_bits, _mm256_set1_epi8(0x02)), 3));
                high_bits = _mm256_srli_epi16(high_bits, 2);
            }
            const __m256i scale_low = broadcast_scale16(scales, 2 * pair);
            const __m256i scale_high = broadcast_scale16(scales, 2 * pair + 1);
            for (int c = 0; c < Columns; ++c) {
                const std::int8_t* a = y[c][b].qs + 64 * pair;
                const __m256i p_low = dot_u8_i8_scaled(low, load256(a), scale_low);
                const __m256i p_high = dot_u8_i8_scaled(high, load256(a + 32), scale_high);
                sumi[c] = _mm256_add_epi32(sumi[c], _mm256_add_epi32(p_low, p_high));
            }
        }
        add_scaled_minus_mins(half_to_float(x.d), half_to_float(x.dmin), k4_mins_per_bsum(scales_mins), y, b, sumi,
                              acc);
    }
};

struct UnpackQ6_K {
    using Block = BlockQ6_K;

    template <int Columns>
    static void add_block(const Block& x, const BlockQ8_K* const (&y)[Columns], std::int64_t b,
                          __m256 (&acc)[Columns]) {
        const __m256i low4 = _mm256_set1_epi8(0x0F);
        const __m256i low2 = _mm256_set1_epi8(0x03);
        const __m128i scales8 = _mm_loadu_si128(reinterpret_cast<const __m128i*>(x.scales));
        __m256i sumi[Columns];
        zero(sumi);
        for (int half = 0; half < 2; ++half) {
            const __m256i ql0 = load256(x.ql + 64 * half);
            const __m256i ql1 = load256(x.ql + 64 * half + 32);
            const __m256i qh = load256(x.qh + 32 * half);
            // The unsigned 6-bit quants of the half's four 32-element groups.
            __m256i q[4];
            q[0] = _mm256_or_si256(_mm256_and_si256(ql0, low4), _mm256_slli_epi16(_mm256_and_si256(qh, low2), 4));
            q[1] = _mm256_or_si256(_mm256_and_si256(ql1, low4),
                                   _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(qh, 2), low2), 4));
            q[2] = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(ql0, 4), low4),
                                   _mm256_and_si256(qh, _mm256_set1_epi8(0x30)));
            q[3] = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(ql1, 4), low4),
                                   _mm256_and_si256(_mm256_srli_epi16(qh, 2), _mm256_set1_epi8(0x30)));
            add_groups16(q, scales8, half, y, b, sumi);
        }
        add_scaled_minus_offset<5>(half_to_float(x.d), scales8, y, b, sumi, acc);
    }
};

struct UnpackQ3_K {
    using Block = BlockQ3_K;

    template <int Columns>
    static void add_block(const Block& x, const BlockQ8_K* const (&y)[Columns], std::int64_t b,
                          __m256 (&acc)[Columns]) {
        const __m256i bit0 = _mm256_set1_epi8(0x01);
        const __m128i scales8 = unpack_scales_q3_k(x.scales);
        // Bit G of hmask[l] is bit 2 of element 32G + l; shifted down 1 per group.
        __m256i high_bits = load256(x.hmask);
        __m256i sumi[Columns];
        zero(sumi);
        for (int half = 0; half < 2; ++half) {
            __m256i q[4];
            unpack_2bit_groups(x.qs, half, q);
            for (int g = 0; g < 4; ++g) {
                q[g] = _mm256_or_si256(q[g], _mm256_slli_epi16(_mm256_and_si256(high_bits, bit0), 2));
                high_bits = _mm256_srli_epi16(high_bits, 1);
            }
            add_groups16(q, scales8, half, y, b, sumi);
        }
        add_scaled_minus_offset<2>(half_to_float(x.d), scales8, y, b, sumi, acc);
    }
};

struct UnpackQ2_K {
    using Block = BlockQ2_K;

    template <int Columns>
    static void add_block(const Block& x, const BlockQ8_K* const (&y)[Columns], std::int64_t b,
                          __m256 (&acc)[Columns]) {
        const __m128i packed_scales = _mm_loadu_si128(reinterpret_cast<const __m128i*>(x.scales));
        const __m128i scales8 = _mm_and_si128(packed_scales, _mm_set1_epi8(0x0F));
        const __m256i mins16 =
            _mm256_cvtepu8_epi16(_mm_and_si128(_mm_srli_epi16(packed_scales, 4), _mm_set1_epi8(0x0F)));
        __m256i sumi[Columns];
        zero(sumi);
        for (int half = 0; half < 2; ++half) {
            __m256i q[4];
            unpack_2bit_groups(x.qs, half, q);
            add_groups16(q, scales8, half, y, b, sumi);
        }
        add_scaled_minus_mins(half_to_float(x.d), half_to_float(x.dmin), mins16, y, b, sumi, acc);
    }
};

// ------------------------------------------------- conversions and quantizers

void dequantize_f16(const void* src, float* dst, std::int64_t n) {
    const auto* halves = static_cast<const std::uint16_t*>(src);
    std::int64_t i = 0;
    for (; i + 8 <= n; i += 8)
        _mm256_storeu_ps(dst + i, LoadF16::load8(halves + i));
    for (; i < n; ++i)
        dst[i] = LoadF16::load1(halves + i);
}

void dequantize_bf16(const void* src, float* dst, std::int64_t n) {
    const auto* halves = static_cast<const std::uint16_t*>(src);
    std::int64_t i = 0;
    for (; i + 8 <= n; i += 8)
        _mm256_storeu_ps(dst + i, LoadBF16::load8(halves + i));
    for (; i < n; ++i)
        dst[i] = LoadBF16::load1(halves + i);
}

void quantize_f16(const float* src, void* dst, std::int64_t n) {
    auto* halves = static_cast<std::uint16_t*>(dst);
    std::int64_t i = 0;
    for (; i + 8 <= n; i += 8)
        _mm_storeu_si128(reinterpret_cast<__m128i*>(halves + i),
                         _mm256_cvtps_ph(_mm256_loadu_ps(src + i), _MM_FROUND_TO_NEAREST_INT));
    for (; i < n; ++i)
        halves[i] = _cvtss_sh(src[i], _MM_FROUND_TO_NEAREST_INT);
}

// Round to nearest even in integer arithmetic; NaN is quieted.
__m256i float_to_bf16_bits(__m256 values) {
    const __m256i bits = _mm256_castps_si256(values);
    const __m256i lsb = _mm256_and_si256(_mm256_srli_epi32(bits, 16), _mm256_set1_epi32(1));
    const __m256i rounded = _mm256_srli_epi32(_mm256_add_epi32(_mm256_add_epi32(bits, _mm256_set1_epi32(0x7FFF)), lsb), 16);
    const __m256i quiet_nan = _mm256_or_si256(_mm256_srli_epi32(bits, 16), _mm256_set1_epi32(0x40));
    const __m256i is_nan = _mm256_castps_si256(_mm256_cmp_ps(values, values, _CMP_UNORD_Q));
    return _mm256_blendv_epi8(rounded, quiet_nan, is_nan);
}

void quantize_bf16(const float* src, void* dst, std::int64_t n) {
    auto* halves = static_cast<std::uint16_t*>(dst);
    std::int64_t i = 0;
    for (; i + 8 <= n; i += 8) {
        const __m256i words = float_to_bf16_bits(_mm256_loadu_ps(src + i));
        // Pack the low 16 bits of the 8 int32: per-lane pack, then join the lanes.
        const __m256i packed = _mm256_packus_epi32(words, words);
        const __m128i joined = _mm_unpacklo_epi64(_mm256_castsi256_si128(packed), _mm256_extracti128_si256(packed, 1));
        _mm_storeu_si128(reinterpret_cast<__m128i*>(halves + i), joined);
    }
    for (; i < n; ++i) {
        const __m256i word = float_to_bf16_bits(_mm256_set1_ps(src[i]));
        halves[i] = static_cast<std::uint16_t>(_mm256_cvtsi256_si32(word));
    }
}

// 32 int32 (4 vectors, each in element order) -> 32 int8 in element order.
__m256i pack_i32_to_i8(__m256i v0, __m256i v1, __m256i v2, __m256i v3) {
    const __m256i words01 = _mm256_packs_epi32(v0, v1);  // per lane: v0 lo, v1 lo | v0 hi, v1 hi
    const __m256i words23 = _mm256_packs_epi32(v2, v3);
    const __m256i bytes = _mm256_packs_epi16(words01, words23);
    // Lane-wise packs leave 4-byte runs as v0 v1 v2 v3 (elements 0-3 of each),
    // then v0 v1 v2 v3 (elements 4-7).
    return _mm256_permutevar8x32_epi32(bytes, _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7));
}

// roundf (ties away from zero) for |v| < 2^23: truncate v + copysign(0.5 - 2^-25, v).
__m256 round_half_away(__m256 v) {
    const __m256 sign = _mm256_and_ps(v, _mm256_set1_ps(-0.f));
    const __m256 nudged = _mm256_add_ps(v, _mm256_or_ps(sign, _mm256_set1_ps(0.49999997f)));
    return _mm256_round_ps(nudged, _MM_FROUND_TO_ZERO | _MM_FROUND_NO_EXC);
}

// Q8_0 / Q8_1: d = absmax / 127, q = roundf(x / d), as the scalar quantizer.
// Returns d; sum gets the sum of the quants.
float quantize_32_to_int8(const float* x, std::int8_t* qs, int& sum) {
    __m256 v[4];
    __m256 amax = _mm256_setzero_ps();
    for (int k = 0; k < 4; ++k) {
        v[k] = _mm256_loadu_ps(x + 8 * k);
        amax = _mm256_max_ps(amax, abs_ps(v[k]));
    }
    const float d = hmax(amax) / 127.f;
    const __m256 id = _mm256_set1_ps(d != 0.f ? 1.f / d : 0.f);
    __m256i q[4];
    for (int k = 0; k < 4; ++k)
        q[k] = _mm256_cvttps_epi32(round_half_away(_mm256_mul_ps(v[k], id)));
    sum = hsum_i32(_mm256_add_epi32(_mm256_add_epi32(q[0], q[1]), _mm256_add_epi32(q[2], q[3])));
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(qs), pack_i32_to_i8(q[0], q[1], q[2], q[3]));
    return d;
}

void quantize_q8_0(const float* src, void* dst, std::int64_t n) {
    auto* blocks = static_cast<BlockQ8_0*>(dst);
    for (std::int64_t b = 0; b < n / kBlock32; ++b) {
        int sum = 0;
        const float d = quantize_32_to_int8(src + kBlock32 * b, blocks[b].qs, sum);
        blocks[b].d = _cvtss_sh(d, _MM_FROUND_TO_NEAREST_INT);
    }
}

void quantize_q8_1(const float* src, void* dst, std::int64_t n) {
    auto* blocks = static_cast<BlockQ8_1*>(dst);
    for (std::int64_t b = 0; b < n / kBlock32; ++b) {
        int sum = 0;
        const float d = quantize_32_to_int8(src + kBlock32 * b, blocks[b].qs, sum);
        blocks[b].d = _cvtss_sh(d, _MM_FROUND_TO_NEAREST_INT);
        blocks[b].s = _cvtss_sh(static_cast<float>(sum) * d, _MM_FROUND_TO_NEAREST_INT);
    }
}

// Q8_K: the element of largest magnitude (the first on a tie) maps to -127.
void quantize_q8_k(const float* src, void* dst, std::int64_t n) {
    auto* blocks = static_cast<BlockQ8_K*>(dst);
    for (std::int64_t b = 0; b < n / kBlockK; ++b) {
        const float* x = src + kBlockK * b;
        BlockQ8_K& block = blocks[b];
        __m256 amax_v = _mm256_setzero_ps();
        for (int k = 0; k < kBlockK; k += 8)
            amax_v = _mm256_max_ps(amax_v, abs_ps(_mm256_loadu_ps(x + k)));
        const float amax = hmax(amax_v);
        if (amax == 0.f) {
            std::memset(&block, 0, sizeof block);
            continue;
        }
        float max = 0.f;
        for (int k = 0; k < kBlockK; k += 8) {
            const int hits = _mm256_movemask_ps(_mm256_cmp_ps(abs_ps(_mm256_loadu_ps(x + k)), _mm256_set1_ps(amax), _CMP_EQ_OQ));
            if (hits != 0) {
                max = x[k + __builtin_ctz(static_cast<unsigned>(hits))];
                break;
            }
        }
        const float iscale = -127.f / max;
        const __m256 iscale_v = _mm256_set1_ps(iscale);
        for (int k = 0; k < kBlockK; k += 32) {
            __m256i q[4];
            for (int j = 0; j < 4; ++j) {
                const __m256 scaled = _mm256_mul_ps(iscale_v, _mm256_loadu_ps(x + k + 8 * j));
                const __m256 rounded = _mm256_round_ps(scaled, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
                q[j] = _mm256_min_epi32(_mm256_cvttps_epi32(rounded), _mm256_set1_epi32(127));
            }
            block.bsums[k / 16] = static_cast<std::int16_t>(hsum_i32(_mm256_add_epi32(q[0], q[1])));
            block.bsums[k / 16 + 1] = static_cast<std::int16_t>(hsum_i32(_mm256_add_epi32(q[2], q[3])));
            _mm256_storeu_si256(reinterpret_cast<__m256i*>(block.qs + k), pack_i32_to_i8(q[0], q[1], q[2], q[3]));
        }
        block.d = 1.f / iscale;
    }
}

template <class Kernel>
constexpr MatmulTileFn matmul_of = matmul_tile<Kernel, kMaxColumns>;

// 8 lanes of e^x (quant_x86.h); 2^k is built in the exponent bits.
__m256 exp8(__m256 x) {
    const __m256 clamped = _mm256_min_ps(_mm256_max_ps(x, _mm256_set1_ps(kExpLowest)), _mm256_set1_ps(kExpHighest));
    const __m256 k = _mm256_round_ps(_mm256_mul_ps(clamped, _mm256_set1_ps(kLog2e)),
                                     _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m256 r = _mm256_fnmadd_ps(k, _mm256_set1_ps(kLn2High), clamped);
    r = _mm256_fnmadd_ps(k, _mm256_set1_ps(kLn2Low), r);
    __m256 p = _mm256_set1_ps(kExpTaylor[0]);
    for (std::size_t i = 1; i < std::size(kExpTaylor); ++i)
        p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(kExpTaylor[i]));
    // k in [-126, 128): 2^k's bits are (k + 127) << 23; e^kExpHighest needs
    // 2^128, so the top is taken as 2 * 2^127.
    const __m256i k_int = _mm256_cvtps_epi32(k);
    const __m256i top = _mm256_cmpgt_epi32(k_int, _mm256_set1_epi32(127));
    const __m256i exponent = _mm256_sub_epi32(k_int, _mm256_and_si256(top, _mm256_set1_epi32(1)));
    const __m256 power = _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_add_epi32(exponent, _mm256_set1_epi32(127)), 23));
    __m256 result = _mm256_mul_ps(p, power);
    result = _mm256_blendv_ps(result, _mm256_add_ps(result, result), _mm256_castsi256_ps(top));
    return _mm256_blendv_ps(result, _mm256_setzero_ps(), _mm256_cmp_ps(x, _mm256_set1_ps(kExpLowest), _CMP_LT_OQ));
}

// The sum in double, 4 lanes at a time, both halves of each 8 exponentials.
void softmax_row_avx2(float* values, std::int64_t n, float scale) {
    const __m256 scales = _mm256_set1_ps(scale);
    __m256 maxima = _mm256_set1_ps(-INFINITY);
    std::int64_t i = 0;
    for (; i + 8 <= n; i += 8)
        maxima = _mm256_max_ps(maxima, _mm256_mul_ps(_mm256_loadu_ps(values + i), scales));
    float lanes[8];
    _mm256_storeu_ps(lanes, maxima);
    float max_score = *std::max_element(std::begin(lanes), std::end(lanes));
    for (; i < n; ++i)
        max_score = std::max(max_score, values[i] * scale);
    const __m256 maximum = _mm256_set1_ps(max_score);
    __m256d sums = _mm256_setzero_pd();
    for (i = 0; i + 8 <= n; i += 8) {
        const __m256 e = exp8(_mm256_sub_ps(_mm256_mul_ps(_mm256_loadu_ps(values + i), scales), maximum));
        _mm256_storeu_ps(values + i, e);
        sums = _mm256_add_pd(sums, _mm256_add_pd(_mm256_cvtps_pd(_mm256_castps256_ps128(e)),
                                                 _mm256_cvtps_pd(_mm256_extractf128_ps(e, 1))));
    }
    double partial[4];
    _mm256_storeu_pd(partial, sums);
    double sum = partial[0] + partial[1] + partial[2] + partial[3];
    if (i < n) {
        float tail[8] = {};
        for (std::int64_t t = i; t < n; ++t) tail[t - i] = values[t] * scale - max_score;
        _mm256_storeu_ps(tail, exp8(_mm256_loadu_ps(tail)));
        for (std::int64_t t = i; t < n; ++t) {
            values[t] = tail[t - i];
            sum += values[t];
        }
    }
    const __m256 inverse_sum = _mm256_set1_ps(static_cast<float>(1.0 / sum));
    for (i = 0; i + 8 <= n; i += 8)
        _mm256_storeu_ps(values + i, _mm256_mul_ps(_mm256_loadu_ps(values + i), inverse_sum));
    for (; i < n; ++i)
        values[i] *= _mm256_cvtss_f32(inverse_sum);
}

// values[i] = f(values[i]) for i < n, 8 at a time, a partial last vector
// through a zero-padded copy.
template <class Function>
void map_row8(float* values, std::int64_t n, Function f) {
    std::int64_t i = 0;
    for (; i + 8 <= n; i += 8)
        _mm256_storeu_ps(values + i, f(_mm256_loadu_ps(values + i)));
    if (i < n) {
        float tail[8] = {};
        std::memcpy(tail, values + i, static_cast<std::size_t>(n - i) * sizeof(float));
        _mm256_storeu_ps(tail, f(_mm256_loadu_ps(tail)));
        std::memcpy(values + i, tail, static_cast<std::size_t>(n - i) * sizeof(float));
    }
}

void gelu_row_avx2(float* values, std::int64_t n) {
    using namespace erf_approximation;
    const __m256 one = _mm256_set1_ps(1.f);
    const auto gelu8 = [&](__m256 x) {
        const __m256 sign_bit = _mm256_set1_ps(-0.f);
        const __m256 z = _mm256_mul_ps(_mm256_andnot_ps(sign_bit, x), _mm256_set1_ps(kInverseSqrt2));
        const __m256 t = _mm256_div_ps(one, _mm256_fmadd_ps(_mm256_set1_ps(kP), z, one));
        __m256 polynomial = _mm256_set1_ps(kA[0]);
        for (std::size_t k = 1; k < std::size(kA); ++k)
            polynomial = _mm256_fmadd_ps(polynomial, t, _mm256_set1_ps(kA[k]));
        const __m256 e = exp8(_mm256_sub_ps(_mm256_setzero_ps(), _mm256_mul_ps(z, z)));
        const __m256 erf_z = _mm256_fnmadd_ps(_mm256_mul_ps(polynomial, t), e, one);
        // Φ(x) = (1 + erf(x / √2)) / 2, erf taking x's sign.
        const __m256 signed_erf = _mm256_or_ps(erf_z, _mm256_and_ps(x, sign_bit));
        return _mm256_mul_ps(_mm256_mul_ps(_mm256_set1_ps(0.5f), x), _mm256_add_ps(one, signed_erf));
    };
    map_row8(values, n, gelu8);
}

void exp_row_avx2(float* values, std::int64_t n) {
    map_row8(values, n, exp8);
}

void weighted_q8_0_rows_avx2(const float* weights, std::int64_t weight_stride, std::int64_t n_heads,
                             const std::uint8_t* rows, std::int64_t row_bytes, std::int64_t n_rows,
                             std::int64_t first_block, std::int64_t n_blocks, float* acc, std::int64_t acc_stride) {
    for (std::int64_t j = 0; j < n_rows; ++j) {
        const auto* blocks = reinterpret_cast<const BlockQ8_0*>(rows + j * row_bytes) + first_block;
        for (std::int64_t b = 0; b < n_blocks; ++b) {
            __m256 quants[4];
            for (int k = 0; k < 4; ++k)
                quants[k] = _mm256_cvtepi32_ps(
                    _mm256_cvtepi8_epi32(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(blocks[b].qs + 8 * k))));
            const float d = half_to_float(blocks[b].d);
            for (std::int64_t h = 0; h < n_heads; ++h) {
                const __m256 scale = _mm256_set1_ps(weights[h * weight_stride + j] * d);
                float* out = acc + h * acc_stride + b * kBlock32;
                for (int k = 0; k < 4; ++k)
                    _mm256_storeu_ps(out + 8 * k, _mm256_fmadd_ps(scale, quants[k], _mm256_loadu_ps(out + 8 * k)));
            }
        }
    }
}

}  // namespace

void add_avx2_kernels(KernelTable& table) {
    const auto slot = [](GgmlType type) { return static_cast<std::size_t>(type); };
    table.exp_row = exp_row_avx2;
    table.softmax_row = softmax_row_avx2;
    table.gelu_row = gelu_row_avx2;
    table.weighted_q8_0_rows = weighted_q8_0_rows_avx2;
    table.matmul[slot(GgmlType::F32)] = matmul_of<KernelFloat<LoadF32>>;
    table.matmul[slot(GgmlType::F16)] = matmul_of<KernelFloat<LoadF16>>;
    table.matmul[slot(GgmlType::BF16)] = matmul_of<KernelFloat<LoadBF16>>;
    table.matmul[slot(GgmlType::Q4_0)] = matmul_of<KernelBlock32<UnpackQ4_0>>;
    table.matmul[slot(GgmlType::Q5_0)] = matmul_of<KernelBlock32<UnpackQ5_0>>;
    table.matmul[slot(GgmlType::Q8_0)] = matmul_of<KernelBlock32<UnpackQ8_0>>;
    table.matmul[slot(GgmlType::Q4_1)] = matmul_of<KernelBlock32<UnpackQ4_1>>;
    table.matmul[slot(GgmlType::Q5_1)] = matmul_of<KernelBlock32<UnpackQ5_1>>;
    table.matmul[slot(GgmlType::Q2_K)] = matmul_of<KernelK<UnpackQ2_K>>;
    table.matmul[slot(GgmlType::Q3_K)] = matmul_of<KernelK<UnpackQ3_K>>;
    table.matmul[slot(GgmlType::Q4_K)] = matmul_of<KernelK<UnpackK4<false>>>;
    table.matmul[slot(GgmlType::Q5_K)] = matmul_of<KernelK<UnpackK4<true>>>;
    table.matmul[slot(GgmlType::Q6_K)] = matmul_of<KernelK<UnpackQ6_K>>;
    table.dequantize_row[slot(GgmlType::F16)] = dequantize_f16;
    table.dequantize_row[slot(GgmlType::BF16)] = dequantize_bf16;
    table.quantize_row[slot(GgmlType::F16)] = quantize_f16;
    table.quantize_row[slot(GgmlType::BF16)] = quantize_bf16;
    table.quantize_row[slot(GgmlType::Q8_0)] = quantize_q8_0;
    table.quantize_row[slot(GgmlType::Q8_1)] = quantize_q8_1;
    table.quantize_row[slot(GgmlType::Q8_K)] = quantize_q8_k;
}

}  // namespace folio::engine::quant

#endif
