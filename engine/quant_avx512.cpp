// AVX-512 (F, BW, VL, VNNI) kernels for the K-quants and Q8_0: Ice Lake /
// Zen 4 and later. Compiled with -mavx512f -mavx512bw -mavx512vl
// -mavx512vnni (engine/CMakeLists.txt); the dispatcher starts from the AVX2
// table and replaces the entries below, only on CPUs that have these
// instructions. Everything here has internal linkage, including what it
// shares with quant_avx2.cpp through quant_x86.h (see quant_kernels.h).
//
// A K-quant block is consumed 64 weights per zmm, two sub-blocks at a time:
// _mm512_maddubs_epi16 multiplies unsigned weight bytes by signed activation
// bytes into int16 pairs, and VNNI's _mm512_dpwssd_epi32 multiplies those by
// the sub-block scales and accumulates in int32, one instruction where AVX2
// needs a madd and an add. The rest of the float work happens once per
// 256-element block.

#if defined(__AVX512F__) && defined(__AVX512BW__) && defined(__AVX512VL__) && defined(__AVX512VNNI__)

#include <immintrin.h>

#include <cstring>
#include <type_traits>

#include "engine/ggml_types.h"
#include "engine/quant_kernels.h"
#include "engine/quant_x86.h"

// GCC 12's AVX-512 headers pass _mm512_undefined_*() as the merge source of
// unmasked intrinsics, which -Wmaybe-uninitialized reports at -O3 (GCC bug
// 105593); the values are never read.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#pragma GCC diagnostic ignored "-Wuninitialized"
#endif

namespace folio::engine::quant {
namespace {

// Activation columns multiplied with each weight block while it sits in
// registers (32 zmm registers; each column holds an int32 and a float accumulator).
constexpr int kMaxColumns = 6;

__m512i load512(const void* p) {
    return _mm512_loadu_si512(p);
}

// [low | high] as one zmm.
__m512i join(__m256i low, __m256i high) {
    return _mm512_inserti64x4(_mm512_castsi256_si512(low), high, 1);
}

// Word indices that spread 16-bit scales over a zmm of 32 int16 products
// (64 weights): sub-blocks of 32 weights take scales k, k + 1 (16 lanes each);
// groups of 16 weights take k .. k + 3 (8 lanes each).
__m512i spread_pairs(int k) {
    return _mm512_inserti64x4(_mm512_set1_epi16(static_cast<short>(k)), _mm256_set1_epi16(static_cast<short>(k + 1)), 1);
}
__m512i spread_quads(int k) {
    const __m128i lanes = _mm_set_epi32(k + 3, k + 2, k + 1, k);
    // Each 32-bit index becomes 8 words of that index, one 128-bit lane per index.
    const __m512i per_lane = _mm512_broadcast_i32x4(lanes);
    return _mm512_permutexvar_epi32(_mm512_set_epi32(3, 3, 3, 3, 2, 2, 2, 2, 1, 1, 1, 1, 0, 0, 0, 0),
                                    _mm512_or_si512(per_lane, _mm512_slli_epi32(per_lane, 16)));
}

// ------------------------------------------------------------------ K-quants

// Q4_K and Q5_K: value = d * scale * q - dmin * min over 8 sub-blocks of 32.
template <bool kFiveBit>
struct KernelK4 {
    using Block = std::conditional_t<kFiveBit, BlockQ5_K, BlockQ4_K>;

    template <int Columns>
    static void dot_row(std::int64_t n, const std::uint8_t* weight_row, const std::uint8_t* const* activation_rows,
                        float* results) {
        const auto* x = as_blocks<Block>(weight_row);
        const BlockQ8_K* y[Columns];
        activation_blocks(activation_rows, y);
        __m512 total[Columns];
        __m256 min_total[Columns];
        for (int c = 0; c < Columns; ++c) {
            total[c] = _mm512_setzero_ps();
            min_total[c] = _mm256_setzero_ps();
        }
        for (std::int64_t b = 0; b < n / kBlockK; ++b) {
            prefetch_ahead(x + b);
            const __m128i bytes = unpack_scales_k4(x[b].scales);
            const __m512i scales = _mm512_castsi256_si512(_mm256_cvtepu8_epi16(bytes));  // words 0-7 scales
            const __m256i mins16 = k4_mins_per_bsum(bytes);
            __m512i high_bits = _mm512_setzero_si512();
            if constexpr (kFiveBit) {
                // [qh | qh >> 1]: bit 2p of each byte is bit 4 of sub-block 2p's
                // element in the low half, of sub-block 2p + 1's in the high half.
                const __m256i qh = load256(x[b].qh);
                high_bits = join(qh, _mm256_srli_epi16(qh, 1));
            }

            __m512i sums[Columns];
            for (int c = 0; c < Columns; ++c)
                sums[c] = _mm512_setzero_si512();
            for (int quad = 0; quad < 2; ++quad) {
                // qs[64t .. 64t+63]: low nibbles are sub-blocks 4t and 4t+2, high
                // nibbles 4t+1 and 4t+3; regroup them in activation order.
                const __m512i packed = load512(x[b].qs + 64 * quad);
                const __m512i low = _mm512_and_si512(packed, _mm512_set1_epi8(0x0F));
                const __m512i high = _mm512_and_si512(_mm512_srli_epi16(packed, 4), _mm512_set1_epi8(0x0F));
                __m512i q[2] = {_mm512_shuffle_i64x2(low, high, 0x44), _mm512_shuffle_i64x2(low, high, 0xEE)};
                for (int half = 0; half < 2; ++half) {
                    const int pair = 2 * quad + half;
                    if constexpr (kFiveBit) {
                        const __mmask64 bit4 =
                            _mm512_test_epi8_mask(high_bits, _mm512_set1_epi8(static_cast<char>(1 << (2 * pair))));
                        q[half] = _mm512_mask_add_epi8(q[half], bit4, q[half], _mm512_set1_epi8(16));
                    }
                    const __m512i scale = _mm512_permutexvar_epi16(spread_pairs(2 * pair), scales);
                    for (int c = 0; c < Columns; ++c) {
                        const __m512i products = _mm512_maddubs_epi16(q[half], load512(y[c][b].qs + 64 * pair));
                        sums[c] = _mm512_dpwssd_epi32(sums[c], products, scale);
                    }
                }
            }
            const float d = half_to_float(x[b].d);
            const float dmin = half_to_float(x[b].dmin);
            for (int c = 0; c < Columns; ++c) {
                const __m256i mins_sum = _mm256_madd_epi16(load256(y[c][b].bsums), mins16);
                total[c] = _mm512_fmadd_ps(_mm512_set1_ps(d * y[c][b].d), _mm512_cvtepi32_ps(sums[c]), total[c]);
                min_total[c] = _mm256_fmadd_ps(_mm256_set1_ps(dmin * y[c][b].d), _mm256_cvtepi32_ps(mins_sum), min_total[c]);
            }
        }
        for (int c = 0; c < Columns; ++c)
            results[c] = _mm512_reduce_add_ps(total[c]) - hsum(min_total[c]);
    }
};

// Q6_K: value = d * scale * (q - 32), q 6 bits, a scale per 16 weights.
struct KernelQ6_K {
    template <int Columns>
    static void dot_row(std::int64_t n, const std::uint8_t* weight_row, const std::uint8_t* const* activation_rows,
                        float* results) {
        const auto* x = as_blocks<BlockQ6_K>(weight_row);
        const BlockQ8_K* y[Columns];
        activation_blocks(activation_rows, y);
        __m512 total[Columns];
        for (int c = 0; c < Columns; ++c)
            total[c] = _mm512_setzero_ps();
        const __m512i low4 = _mm512_set1_epi8(0x0F);
        const __m512i bits45 = _mm512_set1_epi8(0x30);
        for (std::int64_t b = 0; b < n / kBlockK; ++b) {
            prefetch_ahead(x + b);
            const __m256i scales16 =
                _mm256_cvtepi8_epi16(_mm_loadu_si128(reinterpret_cast<const __m128i*>(x[b].scales)));
            const __m512i scales = _mm512_castsi256_si512(scales16);
            // The quants are stored + 32: -32 * sum_g scale_g * bsum_g, as one
            // more multiply-accumulate of the bsums.
            const __m256i offset_scales = _mm256_slli_epi16(_mm256_sub_epi16(_mm256_setzero_si256(), scales16), 5);

            __m512i sums[Columns];
            for (int c = 0; c < Columns; ++c)
                sums[c] = _mm512_dpwssd_epi32(_mm512_setzero_si512(), _mm512_zextsi256_si512(load256(y[c][b].bsums)),
                                              _mm512_zextsi256_si512(offset_scales));
            for (int half = 0; half < 2; ++half) {
                // ql[64h..64h+63]: low nibbles are elements 0..63 of the half,
                // high nibbles 64..127; qh[32h + l] bits 2g..2g+1 are bits 4-5
                // of element 32g + l.
                const __m512i ql = load512(x[b].ql + 64 * half);
                const __m256i qh = load256(x[b].qh + 32 * half);
                const __m512i qh_pairs = join(qh, _mm256_srli_epi16(qh, 2));  // groups 0,1 | 2,3 in bits 0-1 / 4-5
                const __m512i q_low = _mm512_or_si512(_mm512_and_si512(ql, low4),
                                                      _mm512_and_si512(_mm512_slli_epi16(qh_pairs, 4), bits45));
                const __m512i q_high = _mm512_or_si512(_mm512_and_si512(_mm512_srli_epi16(ql, 4), low4),
                                                       _mm512_and_si512(qh_pairs, bits45));
                const __m512i scale_low = _mm512_permutexvar_epi16(spread_quads(8 * half), scales);
                const __m512i scale_high = _mm512_permutexvar_epi16(spread_quads(8 * half + 4), scales);
                for (int c = 0; c < Columns; ++c) {
                    const std::int8_t* a = y[c][b].qs + 128 * half;
                    sums[c] = _mm512_dpwssd_epi32(sums[c], _mm512_maddubs_epi16(q_low, load512(a)), scale_low);
                    sums[c] = _mm512_dpwssd_epi32(sums[c], _mm512_maddubs_epi16(q_high, load512(a + 64)), scale_high);
                }
            }
            const float d = half_to_float(x[b].d);
            for (int c = 0; c < Columns; ++c)
                total[c] = _mm512_fmadd_ps(_mm512_set1_ps(d * y[c][b].d), _mm512_cvtepi32_ps(sums[c]), total[c]);
        }
        for (int c = 0; c < Columns; ++c)
            results[c] = _mm512_reduce_add_ps(total[c]);
    }
};

template <class Kernel>
constexpr MatmulTileFn matmul_of = matmul_tile<Kernel, kMaxColumns>;

}  // namespace

void add_avx512_kernels(KernelTable& table) {
    const auto slot = [](GgmlType type) { return static_cast<std::size_t>(type); };
    table.matmul[slot(GgmlType::Q4_K)] = matmul_of<KernelK4<false>>;
    table.matmul[slot(GgmlType::Q5_K)] = matmul_of<KernelK4<true>>;
    table.matmul[slot(GgmlType::Q6_K)] = matmul_of<KernelQ6_K>;
}

}  // namespace folio::engine::quant

#endif
