// AVX-512 (F, BW, VL, VNNI) kernels for the K-quants, the 32-element
// block types (Q4_0 Q4_1 Q5_0 Q5_1 Q8_0) and float rows: Ice Lake /
// Zen 4 and later. Compiled with -mavx512f -mavx512bw -mavx512vl
// -mavx512vnni (engine/CMakeLists.txt); the dispatcher starts from the AVX2
// table and replaces the entries below, only on CPUs that have these
// instructions. Everything here has internal linkage, including what it
// shares with quant_avx2.cpp through quant_x86.h (see quant_kernels.h).
//
// A K-quant block is consumed 64 weights per zmm: for the types with a scale
// per 16 weights, _mm512_maddubs_epi16 multiplies unsigned weight bytes by
// signed activation bytes into int16 pairs, and VNNI's _mm512_dpwssd_epi32
// multiplies those by the scales and accumulates in int32, one instruction
// where AVX2 needs a madd and an add (Q4_K and Q5_K, with a scale per 32,
// sum with vpdpbusd first: see KernelK4). The rest of the float work happens
// once per 256-element block.

#if defined(__AVX512F__) && defined(__AVX512BW__) && defined(__AVX512VL__) && defined(__AVX512VNNI__)

#include <immintrin.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <iterator>
#include <optional>
#include <type_traits>
#include <vector>

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

__m128i load128(const void* p) {
    return _mm_loadu_si128(static_cast<const __m128i*>(p));
}

// [low | high] as one zmm.
__m512i join(__m256i low, __m256i high) {
    return _mm512_inserti64x4(_mm512_castsi256_si512(low), high, 1);
}

// Word indices that spread 16-bit scales over a zmm of 32 int16 products
// (64 weights): groups of 16 weights take scales k .. k + 3 (8 lanes each).
__m512i spread_quads(int k) {
    const __m128i lanes = _mm_set_epi32(k + 3, k + 2, k + 1, k);
    // Each 32-bit index becomes 8 words of that index, one 128-bit lane per index.
    const __m512i per_lane = _mm512_broadcast_i32x4(lanes);
    return _mm512_permutexvar_epi32(_mm512_set_epi32(3, 3, 3, 3, 2, 2, 2, 2, 1, 1, 1, 1, 0, 0, 0, 0),
                                    _mm512_or_si512(per_lane, _mm512_slli_epi32(per_lane, 16)));
}

// Where a kernel's Packed puts the activations it repacks: `count` zmm of
// this thread's, one buffer per kernel, grown as needed and valid until the
// kernel's next Packed on the thread.
template <class Kernel>
__m512i* packed_scratch(std::size_t count) {
    struct Zmm {
        __m512i lanes;
    };
    thread_local std::vector<Zmm> storage;
    storage.resize(count);
    return &storage.data()->lanes;
}

// ------------------------------------------------------------------ K-quants

// Q4_K and Q5_K: value = d * scale * q - dmin * min over 8 sub-blocks of 32.
//
// Four sub-blocks (128 weights) at a time: vpdpbusd gives each 64 weights'
// products as 16 int32 sums of four (lanes 0-7 one sub-block, 8-15
// another), two such vectors pack into one of int16 (the sums stay within
// 4 * 31 * 127), and one vpdpwssd multiplies them by their sub-block scales
// and accumulates. Against vpmaddubsw + vpdpwssd per 64 weights this halves
// the scale spreads and the length of the accumulator's dependency chain,
// which bounds decode's single-column dot product.
//
// 64 bytes of qs hold sub-blocks 4t and 4t + 2 in their low nibbles and
// 4t + 1 and 4t + 3 in their high ones: the activations are repacked once
// per tile in that order (Packed), so that the weights' nibbles meet them
// as they are masked out, with no shuffle per weight row.
template <bool kFiveBit>
struct KernelK4 {
    using Block = std::conditional_t<kFiveBit, BlockQ5_K, BlockQ4_K>;

    // Word indices into the 8 sub-block scales for _mm512_packs_epi32(a, b),
    // a the sums of sub-blocks 4h (lanes 0-7) and 4h + 2 (8-15), b those of
    // 4h + 1 and 4h + 3: each 128-bit lane takes four words from a, then
    // four from b.
    static __m512i packed_scale_indices(int h) {
        const short k = static_cast<short>(4 * h);
        const short k1 = k + 1, k2 = k + 2, k3 = k + 3;
        return _mm512_set_epi16(k3, k3, k3, k3, k2, k2, k2, k2, k3, k3, k3, k3, k2, k2, k2, k2,  //
                                k1, k1, k1, k1, k, k, k, k, k1, k1, k1, k1, k, k, k, k);
    }

    // Each activation block's 256 quants as four zmm: for t = 0, 1,
    // [sub-block 4t | 4t + 2] then [4t + 1 | 4t + 3].
    template <int Columns>
    class Packed {
    public:
        Packed(std::int64_t n, const std::uint8_t* const* activation_rows) {
            activation_blocks(activation_rows, blocks_);
            const std::int64_t n_blocks = n / kBlockK;
            __m512i* next = packed_scratch<KernelK4>(static_cast<std::size_t>(Columns * n_blocks * 4));
            for (int c = 0; c < Columns; ++c) {
                quants_[c] = next;
                next += 4 * n_blocks;
                for (std::int64_t b = 0; b < n_blocks; ++b) {
                    const std::int8_t* a = blocks_[c][b].qs;
                    for (int t = 0; t < 2; ++t) {
                        const std::int8_t* sub = a + 128 * t;
                        quants_[c][4 * b + 2 * t] = join(load256(sub), load256(sub + 64));
                        quants_[c][4 * b + 2 * t + 1] = join(load256(sub + 32), load256(sub + 96));
                    }
                }
            }
        }

        // Block b's quants for 64 bytes of qs (quad 0 or 1): its low
        // nibbles' (nibble 0) or its high ones' (1).
        __m512i quants(int c, std::int64_t b, int quad, int nibble) const {
            return quants_[c][4 * b + 2 * quad + nibble];
        }
        const BlockQ8_K* blocks(int c) const { return blocks_[c]; }

    private:
        const BlockQ8_K* blocks_[Columns];
        __m512i* quants_[Columns];
    };

    template <int Columns>
    static void dot_row(std::int64_t n, const std::uint8_t* weight_row, const Packed<Columns>& a, float* results) {
        const auto* x = as_blocks<Block>(weight_row);
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
                // [qh | qh >> 2]: bit s of qh[l] is bit 4 of sub-block s's
                // element l, so bit 4t (4t + 1) tests sub-block 4t (4t + 1)
                // in the low half and 4t + 2 (4t + 3) in the high half.
                const __m256i qh = load256(x[b].qh);
                high_bits = join(qh, _mm256_srli_epi16(qh, 2));
            }

            __m512i sums[Columns];
            for (int c = 0; c < Columns; ++c)
                sums[c] = _mm512_setzero_si512();
            for (int quad = 0; quad < 2; ++quad) {
                const __m512i packed = load512(x[b].qs + 64 * quad);
                __m512i q[2] = {_mm512_and_si512(packed, _mm512_set1_epi8(0x0F)),
                                _mm512_and_si512(_mm512_srli_epi16(packed, 4), _mm512_set1_epi8(0x0F))};
                if constexpr (kFiveBit) {
                    for (int nibble = 0; nibble < 2; ++nibble) {
                        const __mmask64 bit4 = _mm512_test_epi8_mask(
                            high_bits, _mm512_set1_epi8(static_cast<char>(1 << (4 * quad + nibble))));
                        q[nibble] = _mm512_mask_add_epi8(q[nibble], bit4, q[nibble], _mm512_set1_epi8(16));
                    }
                }
                const __m512i scale = _mm512_permutexvar_epi16(packed_scale_indices(quad), scales);
                for (int c = 0; c < Columns; ++c) {
                    const __m512i first = _mm512_dpbusd_epi32(_mm512_setzero_si512(), q[0], a.quants(c, b, quad, 0));
                    const __m512i second = _mm512_dpbusd_epi32(_mm512_setzero_si512(), q[1], a.quants(c, b, quad, 1));
                    sums[c] = _mm512_dpwssd_epi32(sums[c], _mm512_packs_epi32(first, second), scale);
                }
            }
            const float d = half_to_float(x[b].d);
            const float dmin = half_to_float(x[b].dmin);
            for (int c = 0; c < Columns; ++c) {
                const BlockQ8_K& y = a.blocks(c)[b];
                const __m256i mins_sum = _mm256_madd_epi16(load256(y.bsums), mins16);
                total[c] = _mm512_fmadd_ps(_mm512_set1_ps(d * y.d), _mm512_cvtepi32_ps(sums[c]), total[c]);
                min_total[c] = _mm256_fmadd_ps(_mm256_set1_ps(dmin * y.d), _mm256_cvtepi32_ps(mins_sum), min_total[c]);
            }
        }
        for (int c = 0; c < Columns; ++c)
            results[c] = _mm512_reduce_add_ps(total[c]) - hsum(min_total[c]);
    }
};

// The K-quants with a scale per 16 weights (Q2_K, Q3_K, Q6_K), a half
// (128 weights) at a time: Unpack::quants(x, half, q) gives its unsigned
// quants as two zmm of 64 in element order, Unpack::scales(x) the 16 scales
// as int16. Quants stored + kOffset (Q3_K 4, Q6_K 32) take
// kOffset * sum_g scale_g * bsum_g back off in the integer sum; Q2_K's mins
// (value = d * scale * q - dmin * min) go through the bsums in float.
template <class Unpack>
struct KernelScale16 {
    using Block = typename Unpack::Block;

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
            const __m256i scales16 = Unpack::scales(x[b]);
            const __m512i scales = _mm512_castsi256_si512(scales16);
            __m512i sums[Columns];
            if constexpr (Unpack::kOffset != 0) {
                const __m256i offset_scales = _mm256_mullo_epi16(scales16, _mm256_set1_epi16(-Unpack::kOffset));
                for (int c = 0; c < Columns; ++c)
                    sums[c] = _mm512_dpwssd_epi32(_mm512_setzero_si512(), _mm512_zextsi256_si512(load256(y[c][b].bsums)),
                                                  _mm512_zextsi256_si512(offset_scales));
            } else {
                for (int c = 0; c < Columns; ++c)
                    sums[c] = _mm512_setzero_si512();
            }
            for (int half = 0; half < 2; ++half) {
                __m512i q[2];
                Unpack::quants(x[b], half, q);
                const __m512i scale_low = _mm512_permutexvar_epi16(spread_quads(8 * half), scales);
                const __m512i scale_high = _mm512_permutexvar_epi16(spread_quads(8 * half + 4), scales);
                for (int c = 0; c < Columns; ++c) {
                    const std::int8_t* a = y[c][b].qs + 128 * half;
                    sums[c] = _mm512_dpwssd_epi32(sums[c], _mm512_maddubs_epi16(q[0], load512(a)), scale_low);
                    sums[c] = _mm512_dpwssd_epi32(sums[c], _mm512_maddubs_epi16(q[1], load512(a + 64)), scale_high);
                }
            }
            const float d = half_to_float(x[b].d);
            for (int c = 0; c < Columns; ++c)
                total[c] = _mm512_fmadd_ps(_mm512_set1_ps(d * y[c][b].d), _mm512_cvtepi32_ps(sums[c]), total[c]);
            if constexpr (Unpack::kHasMins) {
                const __m256i mins16 = Unpack::mins(x[b]);
                const float dmin = half_to_float(x[b].dmin);
                for (int c = 0; c < Columns; ++c) {
                    const __m256i mins_sum = _mm256_madd_epi16(load256(y[c][b].bsums), mins16);
                    min_total[c] =
                        _mm256_fmadd_ps(_mm256_set1_ps(dmin * y[c][b].d), _mm256_cvtepi32_ps(mins_sum), min_total[c]);
                }
            }
        }
        for (int c = 0; c < Columns; ++c)
            results[c] = _mm512_reduce_add_ps(total[c]) - hsum(min_total[c]);
    }
};

// Q2_K and Q3_K's low 2 bits of half `half`: bits 2g..2g+1 of
// qs[32 * half + l] are element 128 * half + 32g + l.
void unpack_2bit_half(const std::uint8_t* qs, int half, __m512i (&q)[2]) {
    const __m256i bits = load256(qs + 32 * half);
    const __m512i low4 = join(bits, _mm256_srli_epi16(bits, 2));                         // groups 0, 1 in bits 0-1
    const __m512i high4 = join(_mm256_srli_epi16(bits, 4), _mm256_srli_epi16(bits, 6));  // groups 2, 3
    q[0] = _mm512_and_si512(low4, _mm512_set1_epi8(0x03));
    q[1] = _mm512_and_si512(high4, _mm512_set1_epi8(0x03));
}

struct UnpackScale16Q2_K {
    using Block = BlockQ2_K;
    static constexpr int kOffset = 0;
    static constexpr bool kHasMins = true;
    static __m256i scales(const Block& x) {
        return _mm256_cvtepu8_epi16(
            _mm_and_si128(_mm_loadu_si128(reinterpret_cast<const __m128i*>(x.scales)), _mm_set1_epi8(0x0F)));
    }
    static __m256i mins(const Block& x) {
        return _mm256_cvtepu8_epi16(_mm_and_si128(
            _mm_srli_epi16(_mm_loadu_si128(reinterpret_cast<const __m128i*>(x.scales)), 4), _mm_set1_epi8(0x0F)));
    }
    static void quants(const Block& x, int half, __m512i (&q)[2]) { unpack_2bit_half(x.qs, half, q); }
};

// Q3_K: q = low 2 bits + 4 * hmask bit, value = d * scale * (q - 4).
struct UnpackScale16Q3_K {
    using Block = BlockQ3_K;
    static constexpr int kOffset = 4;
    static constexpr bool kHasMins = false;
    static __m256i scales(const Block& x) { return _mm256_cvtepi8_epi16(unpack_scales_q3_k(x.scales)); }
    static __m256i mins(const Block&) { return _mm256_setzero_si256(); }
    static void quants(const Block& x, int half, __m512i (&q)[2]) {
        unpack_2bit_half(x.qs, half, q);
        // Bit G of hmask[l] is bit 2 of element 32G + l.
        const __m256i hmask = load256(x.hmask);
        const __m512i both = join(hmask, hmask);
        for (int pair = 0; pair < 2; ++pair) {
            const int group = 4 * half + 2 * pair;
            const __m512i bit = join(_mm256_set1_epi8(static_cast<char>(1 << group)),
                                     _mm256_set1_epi8(static_cast<char>(1 << (group + 1))));
            q[pair] = _mm512_mask_add_epi8(q[pair], _mm512_test_epi8_mask(both, bit), q[pair], _mm512_set1_epi8(4));
        }
    }
};

// Q6_K: value = d * scale * (q - 32), q 6 bits.
struct UnpackScale16Q6_K {
    using Block = BlockQ6_K;
    static constexpr int kOffset = 32;
    static constexpr bool kHasMins = false;
    static __m256i scales(const Block& x) {
        return _mm256_cvtepi8_epi16(_mm_loadu_si128(reinterpret_cast<const __m128i*>(x.scales)));
    }
    static __m256i mins(const Block&) { return _mm256_setzero_si256(); }
    // ql[64h..64h+63]: low nibbles are elements 0..63 of the half, high
    // nibbles 64..127; qh[32h + l] bits 2g..2g+1 are bits 4-5 of element 32g + l.
    static void quants(const Block& x, int half, __m512i (&q)[2]) {
        const __m512i low4 = _mm512_set1_epi8(0x0F);
        const __m512i bits45 = _mm512_set1_epi8(0x30);
        const __m512i ql = load512(x.ql + 64 * half);
        const __m256i qh = load256(x.qh + 32 * half);
        const __m512i qh_pairs = join(qh, _mm256_srli_epi16(qh, 2));  // groups 0,1 | 2,3 in bits 0-1 / 4-5
        q[0] = _mm512_or_si512(_mm512_and_si512(ql, low4), _mm512_and_si512(_mm512_slli_epi16(qh_pairs, 4), bits45));
        q[1] = _mm512_or_si512(_mm512_and_si512(_mm512_srli_epi16(ql, 4), low4), _mm512_and_si512(qh_pairs, bits45));
    }
};

// ------------------------------------------------------------ float weights

// 16 weights as floats; a row's last n % 16 through a mask.
struct Load512F32 {
    using Element = float;
    static __m512 load16(const float* p) { return _mm512_loadu_ps(p); }
    static __m512 load_masked(const float* p, __mmask16 mask) { return _mm512_maskz_loadu_ps(mask, p); }
};
struct Load512F16 {
    using Element = std::uint16_t;
    static __m512 load16(const std::uint16_t* p) { return _mm512_cvtph_ps(load256(p)); }
    static __m512 load_masked(const std::uint16_t* p, __mmask16 mask) {
        return _mm512_cvtph_ps(_mm256_maskz_loadu_epi16(mask, p));
    }
};
struct Load512BF16 {
    using Element = std::uint16_t;
    static __m512 widen(__m256i halves) {
        return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(halves), 16));
    }
    static __m512 load16(const std::uint16_t* p) { return widen(load256(p)); }
    static __m512 load_masked(const std::uint16_t* p, __mmask16 mask) {
        return widen(_mm256_maskz_loadu_epi16(mask, p));
    }
};

// Float rows (f32, f16, bf16) against f32 activations, in blocks of
// kFloatRows rows x kFloatColumns columns: each step converts 16 elements of
// every row once, loads 16 of every column, and does 16 multiply-adds, half
// the loads per multiply-add of one row at a time; four columns of even
// long rows (4 x 4096 floats) stay in L1. The embedding model's matmuls (f16,
// a thousand tokens a batch) and attention over the f16 cache run on this.
constexpr int kFloatRows = 4;
constexpr int kFloatColumns = 4;

// The sums of 16 vectors' lanes, each added as _mm512_reduce_add_ps adds
// them (lane i + lane i + 8, then j + j + 4, then k + k + 2, then 0 + 1),
// so the same bits, four at a time: lane 4L + j of the result is the sum of
// v[4j + L]. A prompt's attention scores are dot products of one head's 64
// or 128 elements, where one reduction per product cost more than its
// multiplications.
__m512 reduce_add_16(const __m512 (&v)[16]) {
    __m512 halves[8];  // 128-bit lanes: v[2p]'s lanes 0-3 + 8-11 and 4-7 + 12-15, then v[2p + 1]'s
    for (int p = 0; p < 8; ++p)
        halves[p] = _mm512_add_ps(_mm512_shuffle_f32x4(v[2 * p], v[2 * p + 1], _MM_SHUFFLE(1, 0, 1, 0)),
                                  _mm512_shuffle_f32x4(v[2 * p], v[2 * p + 1], _MM_SHUFFLE(3, 2, 3, 2)));
    __m512 quarters[4];  // 128-bit lane L: v[4p + L]'s four partial sums
    for (int p = 0; p < 4; ++p)
        quarters[p] = _mm512_add_ps(_mm512_shuffle_f32x4(halves[2 * p], halves[2 * p + 1], _MM_SHUFFLE(2, 0, 2, 0)),
                                    _mm512_shuffle_f32x4(halves[2 * p], halves[2 * p + 1], _MM_SHUFFLE(3, 1, 3, 1)));
    __m512 pairs[2];
    for (int p = 0; p < 2; ++p)
        pairs[p] = _mm512_add_ps(_mm512_shuffle_ps(quarters[2 * p], quarters[2 * p + 1], _MM_SHUFFLE(1, 0, 1, 0)),
                                 _mm512_shuffle_ps(quarters[2 * p], quarters[2 * p + 1], _MM_SHUFFLE(3, 2, 3, 2)));
    return _mm512_add_ps(_mm512_shuffle_ps(pairs[0], pairs[1], _MM_SHUFFLE(2, 0, 2, 0)),
                         _mm512_shuffle_ps(pairs[0], pairs[1], _MM_SHUFFLE(3, 1, 3, 1)));
}

template <class Load, int Rows, int Columns>
void float_block(const MatmulTile& tile, std::int64_t first_row, std::int64_t first_column) {
    using Element = typename Load::Element;
    const std::int64_t n = tile.n;
    const Element* w[Rows];
    const float* a[Columns];
    __m512 acc[Rows][Columns];
    for (int r = 0; r < Rows; ++r) {
        w[r] = reinterpret_cast<const Element*>(tile.weights + (first_row + r) * tile.row_bytes);
        for (int c = 0; c < Columns; ++c)
            acc[r][c] = _mm512_setzero_ps();
    }
    for (int c = 0; c < Columns; ++c)
        a[c] = reinterpret_cast<const float*>(tile.activations + (first_column + c) * tile.act_row_bytes);
    std::int64_t i = 0;
    for (; i + 16 <= n; i += 16) {
        __m512 x[Columns];
        for (int c = 0; c < Columns; ++c)
            x[c] = _mm512_loadu_ps(a[c] + i);
        for (int r = 0; r < Rows; ++r) {
            _mm_prefetch(reinterpret_cast<const char*>(w[r] + i) + kPrefetchBytes, _MM_HINT_T0);
            const __m512 weights = Load::load16(w[r] + i);
            for (int c = 0; c < Columns; ++c)
                acc[r][c] = _mm512_fmadd_ps(weights, x[c], acc[r][c]);
        }
    }
    if (i < n) {
        const auto mask = static_cast<__mmask16>((1u << (n - i)) - 1);
        __m512 x[Columns];
        for (int c = 0; c < Columns; ++c)
            x[c] = _mm512_maskz_loadu_ps(mask, a[c] + i);
        for (int r = 0; r < Rows; ++r) {
            const __m512 weights = Load::load_masked(w[r] + i, mask);
            for (int c = 0; c < Columns; ++c)
                acc[r][c] = _mm512_fmadd_ps(weights, x[c], acc[r][c]);
        }
    }
    if constexpr (Rows == 4 && Columns == 4) {
        // 128-bit lane c of the sums holds column c's four rows, stored at once.
        __m512 sums[16];
        for (int r = 0; r < Rows; ++r)
            for (int c = 0; c < Columns; ++c) sums[4 * r + c] = acc[r][c];
        const __m512 reduced = reduce_add_16(sums);
        for (int c = 0; c < Columns; ++c)
            _mm_storeu_ps(tile.out + (first_column + c) * tile.out_col_stride + first_row,
                          _mm512_extractf32x4_ps(reduced, c));
    } else {
        for (int r = 0; r < Rows; ++r)
            for (int c = 0; c < Columns; ++c)
                tile.out[(first_column + c) * tile.out_col_stride + first_row + r] = _mm512_reduce_add_ps(acc[r][c]);
    }
}

template <class Load, int Columns>
void float_columns(const MatmulTile& tile, std::int64_t first_column) {
    std::int64_t r = 0;
    for (; r + kFloatRows <= tile.n_rows; r += kFloatRows)
        float_block<Load, kFloatRows, Columns>(tile, r, first_column);
    for (; r < tile.n_rows; ++r)
        float_block<Load, 1, Columns>(tile, r, first_column);
}

template <class Load>
void float_matmul(const MatmulTile& tile) {
    std::int64_t c = 0;
    for (; c + kFloatColumns <= tile.n_cols; c += kFloatColumns)
        float_columns<Load, kFloatColumns>(tile, c);
    switch (tile.n_cols - c) {
    case 3: float_columns<Load, 3>(tile, c); break;
    case 2: float_columns<Load, 2>(tile, c); break;
    case 1: float_columns<Load, 1>(tile, c); break;
    default: break;
    }
}
static_assert(kFloatColumns == 4, "float_matmul's remainder switch covers 1 to 3 columns");

// ------------------------------------------------- 32-element block weights

// The 32-element types take two blocks per zmm. VNNI's vpdpbusd multiplies
// unsigned weight bytes by signed activation bytes, so every type hands over
// its quants as unsigned bytes: the "_1" types' quants are unsigned already
// (their min comes from Q8_1's s); Q4_0, Q5_0 and Q8_0 give q + kOffset and
// take kOffset * sum(a) back off, sum(a) being one more vpdpbusd.
//
// Unpack::pair(x0, x1): blocks x0 and x1 as 64 bytes in the order
// Unpack::kOrder names; Unpack::single(x): one block as 32 bytes in element
// order (a row's odd last block).
enum class PairOrder {
    Blocks,  // x0's 32 elements, then x1's
    // 16-byte lanes of x0's elements 0-15, x1's 0-15, x0's 16-31, x1's 16-31:
    // two blocks of nibbles as they lie, no shuffle across lanes (the
    // activations are packed to match, KernelBlock32::Packed).
    Halves,
};

// 16 bytes of nibbles -> 32 bytes: the low nibbles (elements 0..15), then the
// high nibbles (16..31).
__m256i nibbles_single(const std::uint8_t* qs) {
    const __m128i packed = _mm_loadu_si128(reinterpret_cast<const __m128i*>(qs));
    return _mm256_and_si256(_mm256_set_m128i(_mm_srli_epi16(packed, 4), packed), _mm256_set1_epi8(0x0F));
}

// Two blocks' nibbles -> 64 bytes in PairOrder::Halves: the low nibbles of
// both blocks, then the high ones.
__m512i nibbles_halves(const std::uint8_t* qs0, const std::uint8_t* qs1) {
    const __m512i packed = _mm512_mask_broadcast_i32x4(_mm512_broadcast_i32x4(load128(qs0)), 0xF0F0, load128(qs1));
    // The upper 256 bits (16-bit words 16-31) take the high nibbles.
    return _mm512_and_si512(_mm512_mask_srli_epi16(packed, 0xFFFF0000u, packed, 4), _mm512_set1_epi8(0x0F));
}

std::uint32_t high_bits_of(const std::uint8_t* qh) {
    std::uint32_t bits;
    std::memcpy(&bits, qh, sizeof bits);
    return bits;
}

// Bit 4 of element j where bit j of the mask is set.
__m512i with_bit4(__m512i q, __mmask64 bits) {
    return _mm512_mask_add_epi8(q, bits, q, _mm512_set1_epi8(0x10));
}
__m256i with_bit4(__m256i q, __mmask32 bits) {
    return _mm256_mask_add_epi8(q, bits, q, _mm256_set1_epi8(0x10));
}

struct Unpack512Q4_0 {
    using Block = BlockQ4_0;
    static constexpr int kOffset = 8;
    static constexpr PairOrder kOrder = PairOrder::Halves;
    static __m512i pair(const Block& x0, const Block& x1) { return nibbles_halves(x0.qs, x1.qs); }
    static __m256i single(const Block& x) { return nibbles_single(x.qs); }
};
struct Unpack512Q4_1 {
    using Block = BlockQ4_1;
    static constexpr int kOffset = 0;
    static constexpr PairOrder kOrder = PairOrder::Halves;
    static __m512i pair(const Block& x0, const Block& x1) { return nibbles_halves(x0.qs, x1.qs); }
    static __m256i single(const Block& x) { return nibbles_single(x.qs); }
};
template <class FiveBitBlock, int Offset>
struct Unpack512Q5 {
    using Block = FiveBitBlock;
    static constexpr int kOffset = Offset;
    static constexpr PairOrder kOrder = PairOrder::Halves;
    static __m512i pair(const Block& x0, const Block& x1) {
        const std::uint64_t bits0 = high_bits_of(x0.qh), bits1 = high_bits_of(x1.qh);
        const std::uint64_t bits = (bits0 & 0xFFFF) | (bits1 & 0xFFFF) << 16 | (bits0 >> 16) << 32 | (bits1 >> 16) << 48;
        return with_bit4(nibbles_halves(x0.qs, x1.qs), _cvtu64_mask64(bits));
    }
    static __m256i single(const Block& x) {
        return with_bit4(nibbles_single(x.qs), _cvtu32_mask32(high_bits_of(x.qh)));
    }
};
using Unpack512Q5_0 = Unpack512Q5<BlockQ5_0, 16>;
using Unpack512Q5_1 = Unpack512Q5<BlockQ5_1, 0>;
struct Unpack512Q8_0 {
    using Block = BlockQ8_0;
    static constexpr int kOffset = 128;  // q ^ 0x80 = q + 128 as an unsigned byte
    static constexpr PairOrder kOrder = PairOrder::Blocks;
    static __m512i pair(const Block& x0, const Block& x1) {
        return _mm512_xor_si512(join(load256(x0.qs), load256(x1.qs)), _mm512_set1_epi8(static_cast<char>(0x80)));
    }
    static __m256i single(const Block& x) {
        return _mm256_xor_si256(load256(x.qs), _mm256_set1_epi8(static_cast<char>(0x80)));
    }
};

// The first 4 bytes of two blocks as 4 floats: {d, m} of a "_1" weight block,
// {d, s} of a Q8_1 activation; d and part of the quants for the others, whose
// second and fourth floats are then never read.
template <class Block>
__m128 leading_halves(const Block& b0, const Block& b1) {
    std::uint32_t h0;
    std::uint32_t h1;
    std::memcpy(&h0, &b0, sizeof h0);
    std::memcpy(&h1, &b1, sizeof h1);
    return _mm_cvtph_ps(_mm_set_epi32(0, 0, static_cast<int>(h1), static_cast<int>(h0)));
}

// Signed weights against Q8_0: sum over blocks of d_w * d_a * sum(w * a);
// unsigned weights with a min against Q8_1: the same plus m * s. Offset
// weights start vpdpbusd's sums from -kOffset * sum(a), which the activation
// columns' Packed holds, rather than subtracting it after: one instruction
// fewer per pair of blocks, 5-10% faster on 576-wide Q5_0 and Q8_0 rows hot
// in cache.
template <class Unpack>
struct KernelBlock32 {
    using Block = typename Unpack::Block;
    static constexpr bool kHasMin = Unpack::kOffset == 0;
    using Activation = std::conditional_t<kHasMin, BlockQ8_1, BlockQ8_0>;

    // kOffset * sum(a) of activation bytes a, as the int32 lanes of
    // vpdpbusd: what offset weights (q + kOffset) take back off.
    static __m512i offset_sums(__m512i a) {
        return _mm512_dpbusd_epi32(_mm512_setzero_si512(), _mm512_set1_epi8(static_cast<char>(Unpack::kOffset)), a);
    }

    // The activation columns, repacked once per tile for all its weight
    // rows: each pair of blocks' quants as one zmm in Unpack::kOrder; the
    // pair's scales d_a as the 16 lanes that multiply its sums; against
    // weights with a min, {0, s0, 0, s1} for the m * s term; against offset
    // weights, -offset_sums, where their sums start. A decoded token's
    // weight row of 576 is only 9 pairs, and converting the activation's f16
    // scales again for every row was a third of the work.
    template <int Columns>
    class Packed {
    public:
        Packed(std::int64_t n, const std::uint8_t* const* activation_rows) {
            activation_blocks(activation_rows, tail_);
            const std::int64_t n_pairs = n / kBlock32 / 2;
            // Per column and pair: quants, scales and the min or offset term, 64 bytes each.
            __m512i* next = packed_scratch<KernelBlock32>(static_cast<std::size_t>(Columns * n_pairs * 3));
            for (int c = 0; c < Columns; ++c) {
                quants_[c] = next;
                scales_[c] = reinterpret_cast<__m512*>(next + n_pairs);
                terms_[c] = next + 2 * n_pairs;
                next += 3 * n_pairs;
                const Activation* y = tail_[c];
                for (std::int64_t p = 0; p < n_pairs; ++p) {
                    const Activation& y0 = y[2 * p];
                    const Activation& y1 = y[2 * p + 1];
                    const float d0 = half_to_float(y0.d), d1 = half_to_float(y1.d);
                    if constexpr (Unpack::kOrder == PairOrder::Halves) {
                        quants_[c][p] = join(_mm256_set_m128i(load128(y1.qs), load128(y0.qs)),
                                             _mm256_set_m128i(load128(y1.qs + 16), load128(y0.qs + 16)));
                        scales_[c][p] = _mm512_set_ps(d1, d1, d1, d1, d0, d0, d0, d0, d1, d1, d1, d1, d0, d0, d0, d0);
                    } else {
                        quants_[c][p] = join(load256(y0.qs), load256(y1.qs));
                        scales_[c][p] = _mm512_set_ps(d1, d1, d1, d1, d1, d1, d1, d1, d0, d0, d0, d0, d0, d0, d0, d0);
                    }
                    if constexpr (kHasMin)
                        terms_[c][p] = _mm512_castps_si512(_mm512_castps128_ps512(
                            _mm_set_ps(half_to_float(y1.s), 0.f, half_to_float(y0.s), 0.f)));
                    else
                        terms_[c][p] =
                            _mm512_sub_epi32(_mm512_setzero_si512(), KernelBlock32::offset_sums(quants_[c][p]));
                }
            }
        }

        __m512i quants(int c, std::int64_t pair) const { return quants_[c][pair]; }
        __m512 scales(int c, std::int64_t pair) const { return scales_[c][pair]; }
        __m128 min_scales(int c, std::int64_t pair) const {
            return _mm512_castps512_ps128(_mm512_castsi512_ps(terms_[c][pair]));
        }
        __m512i negated_offset_sums(int c, std::int64_t pair) const { return terms_[c][pair]; }
        // The activation's blocks as they came, for a row's last, unpaired block.
        const Activation* blocks(int c) const { return tail_[c]; }

    private:
        const Activation* tail_[Columns];
        __m512i* quants_[Columns];
        __m512* scales_[Columns];
        __m512i* terms_[Columns];
    };

    template <int Columns>
    static void dot_row(std::int64_t n, const std::uint8_t* weight_row, const Packed<Columns>& a, float* results) {
        const auto* x = as_blocks<Block>(weight_row);
        __m512 total[Columns];
        __m128 min_total[Columns];  // lanes 1 and 3: the blocks' m * s
        for (int c = 0; c < Columns; ++c) {
            total[c] = _mm512_setzero_ps();
            min_total[c] = _mm_setzero_ps();
        }
        // Each lane's weight scale: the first block's d is float 0, the second's float 2.
        const __m512i spread = Unpack::kOrder == PairOrder::Halves
                                   ? _mm512_set_epi32(2, 2, 2, 2, 0, 0, 0, 0, 2, 2, 2, 2, 0, 0, 0, 0)
                                   : _mm512_set_epi32(2, 2, 2, 2, 2, 2, 2, 2, 0, 0, 0, 0, 0, 0, 0, 0);
        const std::int64_t n_blocks = n / kBlock32;
        std::int64_t b = 0;
        for (std::int64_t pair = 0; b + 2 <= n_blocks; b += 2, ++pair) {
            prefetch_ahead(x + b);
            prefetch_ahead(x + b + 1);
            const __m512i w = Unpack::pair(x[b], x[b + 1]);
            const __m128 weight_scales = leading_halves(x[b], x[b + 1]);  // {d0, m0, d1, m1}
            const __m512 weight_d = _mm512_permutexvar_ps(spread, _mm512_castps128_ps512(weight_scales));
            for (int c = 0; c < Columns; ++c) {
                const __m512i start = kHasMin ? _mm512_setzero_si512() : a.negated_offset_sums(c, pair);
                const __m512i sums = _mm512_dpbusd_epi32(start, w, a.quants(c, pair));
                total[c] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(sums), _mm512_mul_ps(weight_d, a.scales(c, pair)),
                                           total[c]);
                if constexpr (kHasMin)
                    min_total[c] = _mm_fmadd_ps(weight_scales, a.min_scales(c, pair), min_total[c]);
            }
        }
        if (b < n_blocks) {
            const __m512i w = _mm512_zextsi256_si512(Unpack::single(x[b]));
            const float d = half_to_float(x[b].d);
            for (int c = 0; c < Columns; ++c) {
                const Activation& y = a.blocks(c)[b];
                const __m512i quants = _mm512_zextsi256_si512(load256(y.qs));
                __m512i sums = _mm512_dpbusd_epi32(_mm512_setzero_si512(), w, quants);
                if constexpr (!kHasMin)
                    sums = _mm512_sub_epi32(sums, offset_sums(quants));
                total[c] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(sums), _mm512_set1_ps(d * half_to_float(y.d)), total[c]);
                if constexpr (kHasMin)
                    min_total[c] = _mm_add_ps(min_total[c],
                                              _mm_set_ps(0.f, 0.f, half_to_float(x[b].m) * half_to_float(y.s), 0.f));
            }
        }
        for (int c = 0; c < Columns; ++c) {
            results[c] = _mm512_reduce_add_ps(total[c]);
            if constexpr (kHasMin) {
                float lanes[4];
                _mm_storeu_ps(lanes, min_total[c]);
                results[c] += lanes[1] + lanes[3];
            }
        }
    }
};

template <class Kernel>
constexpr MatmulTileFn matmul_of = matmul_tile<Kernel, kMaxColumns>;

// 16 lanes of e^x (quant_x86.h); vscalefps multiplies by 2^k, 2^128 included.
__m512 exp16(__m512 x) {
    const __m512 clamped = _mm512_min_ps(_mm512_max_ps(x, _mm512_set1_ps(kExpLowest)), _mm512_set1_ps(kExpHighest));
    const __m512 k = _mm512_roundscale_ps(_mm512_mul_ps(clamped, _mm512_set1_ps(kLog2e)),
                                          _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m512 r = _mm512_fnmadd_ps(k, _mm512_set1_ps(kLn2High), clamped);
    r = _mm512_fnmadd_ps(k, _mm512_set1_ps(kLn2Low), r);
    __m512 p = _mm512_set1_ps(kExpTaylor[0]);
    for (std::size_t i = 1; i < std::size(kExpTaylor); ++i)
        p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(kExpTaylor[i]));
    const __m512 result = _mm512_scalef_ps(p, k);
    return _mm512_mask_mov_ps(result, _mm512_cmp_ps_mask(x, _mm512_set1_ps(kExpLowest), _CMP_LT_OQ),
                              _mm512_setzero_ps());
}

// values[i] = f(values[i]) for i < n, 16 at a time, a partial last vector
// under a mask.
template <class Function>
void map_row16(float* values, std::int64_t n, Function f) {
    std::int64_t i = 0;
    for (; i + 16 <= n; i += 16)
        _mm512_storeu_ps(values + i, f(_mm512_loadu_ps(values + i)));
    if (i < n) {
        const auto mask = static_cast<__mmask16>((1u << (n - i)) - 1);
        _mm512_mask_storeu_ps(values + i, mask, f(_mm512_maskz_loadu_ps(mask, values + i)));
    }
}

void exp_row_avx512(float* values, std::int64_t n) {
    map_row16(values, n, exp16);
}

// The sum in double, 8 lanes at a time, both halves of each 16 exponentials.
void softmax_row_avx512(float* values, std::int64_t n, float scale) {
    const __m512 scales = _mm512_set1_ps(scale);
    const auto tail_mask = static_cast<__mmask16>((1u << (n % 16)) - 1);
    const std::int64_t whole = n - n % 16;
    __m512 maxima = _mm512_set1_ps(-INFINITY);
    for (std::int64_t i = 0; i < whole; i += 16)
        maxima = _mm512_max_ps(maxima, _mm512_mul_ps(_mm512_loadu_ps(values + i), scales));
    maxima = _mm512_mask_max_ps(maxima, tail_mask, maxima,
                                _mm512_mul_ps(_mm512_maskz_loadu_ps(tail_mask, values + whole), scales));
    const __m512 maximum = _mm512_set1_ps(_mm512_reduce_max_ps(maxima));
    __m512d sums = _mm512_setzero_pd();
    const auto add_halves = [&sums](__m512 e) {
        const __m256 high = _mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(e), 1));
        sums = _mm512_add_pd(sums, _mm512_add_pd(_mm512_cvtps_pd(_mm512_castps512_ps256(e)), _mm512_cvtps_pd(high)));
    };
    for (std::int64_t i = 0; i < whole; i += 16) {
        const __m512 e = exp16(_mm512_sub_ps(_mm512_mul_ps(_mm512_loadu_ps(values + i), scales), maximum));
        _mm512_storeu_ps(values + i, e);
        add_halves(e);
    }
    if (tail_mask) {
        const __m512 scores = _mm512_mul_ps(_mm512_maskz_loadu_ps(tail_mask, values + whole), scales);
        const __m512 e = _mm512_maskz_mov_ps(tail_mask, exp16(_mm512_sub_ps(scores, maximum)));
        _mm512_mask_storeu_ps(values + whole, tail_mask, e);
        add_halves(e);
    }
    const __m512 inverse_sum = _mm512_set1_ps(static_cast<float>(1.0 / _mm512_reduce_add_pd(sums)));
    for (std::int64_t i = 0; i < whole; i += 16)
        _mm512_storeu_ps(values + i, _mm512_mul_ps(_mm512_loadu_ps(values + i), inverse_sum));
    _mm512_mask_storeu_ps(values + whole, tail_mask,
                          _mm512_mul_ps(_mm512_maskz_loadu_ps(tail_mask, values + whole), inverse_sum));
}

void gelu_row_avx512(float* values, std::int64_t n) {
    using namespace erf_approximation;
    const __m512 one = _mm512_set1_ps(1.f);
    const auto gelu16 = [&](__m512 x) {
        const __m512 z = _mm512_mul_ps(_mm512_abs_ps(x), _mm512_set1_ps(kInverseSqrt2));
        const __m512 t = _mm512_div_ps(one, _mm512_fmadd_ps(_mm512_set1_ps(kP), z, one));
        __m512 polynomial = _mm512_set1_ps(kA[0]);
        for (std::size_t k = 1; k < std::size(kA); ++k)
            polynomial = _mm512_fmadd_ps(polynomial, t, _mm512_set1_ps(kA[k]));
        const __m512 e = exp16(_mm512_sub_ps(_mm512_setzero_ps(), _mm512_mul_ps(z, z)));
        const __m512 erf_z = _mm512_fnmadd_ps(_mm512_mul_ps(polynomial, t), e, one);
        // Φ(x) = (1 + erf(x / √2)) / 2, erf taking x's sign.
        const __mmask16 negative = _mm512_cmp_ps_mask(x, _mm512_setzero_ps(), _CMP_LT_OQ);
        const __m512 signed_erf = _mm512_mask_sub_ps(erf_z, negative, _mm512_setzero_ps(), erf_z);
        return _mm512_mul_ps(_mm512_mul_ps(_mm512_set1_ps(0.5f), x), _mm512_add_ps(one, signed_erf));
    };
    map_row16(values, n, gelu16);
}

void weighted_q8_0_rows_avx512(const float* weights, std::int64_t weight_stride, std::int64_t n_heads,
                               const std::uint8_t* rows, std::int64_t row_bytes, std::int64_t n_rows,
                               std::int64_t first_block, std::int64_t n_blocks, float* acc, std::int64_t acc_stride) {
    // Up to 4 rows per pass over the accumulators, added one after another
    // (the order of j) while they stay in registers.
    constexpr int kRowsPerPass = 4;
    for (std::int64_t j0 = 0; j0 < n_rows; j0 += kRowsPerPass) {
        const int pass_rows = static_cast<int>(std::min<std::int64_t>(kRowsPerPass, n_rows - j0));
        for (std::int64_t b = 0; b < n_blocks; ++b) {
            __m512 quants[kRowsPerPass][2];
            float d[kRowsPerPass];
            for (int r = 0; r < pass_rows; ++r) {
                const BlockQ8_0& block = reinterpret_cast<const BlockQ8_0*>(rows + (j0 + r) * row_bytes)[first_block + b];
                for (int k = 0; k < 2; ++k)
                    quants[r][k] = _mm512_cvtepi32_ps(
                        _mm512_cvtepi8_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(block.qs + 16 * k))));
                d[r] = half_to_float(block.d);
            }
            for (std::int64_t h = 0; h < n_heads; ++h) {
                float* out = acc + h * acc_stride + b * kBlock32;
                __m512 sums[2] = {_mm512_loadu_ps(out), _mm512_loadu_ps(out + 16)};
                for (int r = 0; r < pass_rows; ++r) {
                    const __m512 scale = _mm512_set1_ps(weights[h * weight_stride + j0 + r] * d[r]);
                    for (int k = 0; k < 2; ++k) sums[k] = _mm512_fmadd_ps(scale, quants[r][k], sums[k]);
                }
                _mm512_storeu_ps(out, sums[0]);
                _mm512_storeu_ps(out + 16, sums[1]);
            }
        }
    }
}

// The group kernels' decode prefetch: into L2, 4 KiB ahead. For the Q4_K
// groups that was 5% faster than into L1 8 KiB ahead on an Intel Xeon (21 of
// 24 alternating passes over qwen3-0.6b's matrices); likely because a
// 2,368-byte block's 37 lines asked into L1 at once take the fill buffers
// that the kernel's own loads wait for.
constexpr int kGroupPrefetchBytes = 4096;

// Q4_K row groups (BlockQ4_KGroup): 16 rows in the lanes of each zmm, so
// that a sub-block's four quant vectors meet each column's activations as
// broadcast words, every lane summing its own row. Columns go Columns at a
// time, each quant vector serving all of them; each column keeps two sums
// per sub-block (low and high nibbles) to halve the dependency chain.
//
// The kernel is bound by port 0 (vpdpbusd, shifts, vpmulld), and decode
// overlaps it with the weights' reads only as well as it leaves the port
// idle. So the high nibbles stay in place, 16 times their value (one shift
// of the sub-block's sum instead of one per quant vector; the block's float
// scale takes the 1/16 back, exactly), and the mins meet the activations'
// sub-block sums two sub-blocks to a vpdpwssd instead of a vpmulld each.
// Same integers, same floats: 1.26x as fast from L2, 1.1x from memory
// (qwen3-0.6b's shapes, two threads).
template <int Columns>
void q4_k_group_columns(const BlockQ4_KGroup* x, std::int64_t n_blocks, const BlockQ8_K* const* y, float* const* out) {
    const __m512i low_nibbles = _mm512_set1_epi8(0x0F);
    const __m512i high_nibbles = _mm512_set1_epi8(static_cast<char>(0xF0));
    __m512 total[Columns];
    for (int c = 0; c < Columns; ++c) total[c] = _mm512_setzero_ps();
    for (std::int64_t b = 0; b < n_blocks; ++b) {
        const BlockQ4_KGroup& group = x[b];
        // Decode streams the weights from memory once.
        if constexpr (Columns == 1)
            prefetch_ahead<_MM_HINT_T1, kGroupPrefetchBytes>(x + b);
        __m512i sums[Columns], mins[Columns];
        for (int c = 0; c < Columns; ++c) sums[c] = mins[c] = _mm512_setzero_si512();
        // Sub-block j's activation sum (two 16-element bsums; at most 4064 in
        // magnitude, an int16), in pairs (j, j + 1) against each row's mins
        // of sub-blocks j and j + 1.
        alignas(16) std::int32_t sub_sum_pairs[Columns][4];
        for (int c = 0; c < Columns; ++c) {
            const __m256i sub_sums = _mm256_madd_epi16(load256(y[c][b].bsums), _mm256_set1_epi16(1));
            _mm_store_si128(reinterpret_cast<__m128i*>(sub_sum_pairs[c]),
                            _mm_packs_epi32(_mm256_castsi256_si128(sub_sums), _mm256_extracti128_si256(sub_sums, 1)));
        }
        for (int sub = 0; sub < 8; sub += 2) {
            const __m128i first = load128(group.mins[sub]), second = load128(group.mins[sub + 1]);
            const __m512i min_pairs =
                _mm512_cvtepu8_epi16(_mm256_set_m128i(_mm_unpackhi_epi8(first, second), _mm_unpacklo_epi8(first, second)));
            for (int c = 0; c < Columns; ++c)
                mins[c] = _mm512_dpwssd_epi32(mins[c], min_pairs, _mm512_set1_epi32(sub_sum_pairs[c][sub / 2]));
        }
        for (int sub = 0; sub < 8; ++sub) {
            __m512i low[4], high[4];
            for (int p = 0; p < 4; ++p) {
                const __m512i quants = load512(group.qs[sub][p]);
                low[p] = _mm512_and_si512(quants, low_nibbles);
                high[p] = _mm512_and_si512(quants, high_nibbles);
            }
            const __m512i scales = _mm512_cvtepu8_epi32(load128(group.scales[sub]));
            for (int c = 0; c < Columns; ++c) {
                const std::int8_t* a = y[c][b].qs + 32 * sub;
                __m512i even = _mm512_setzero_si512(), odd = _mm512_setzero_si512();
                for (int p = 0; p < 4; ++p) {
                    std::int32_t first, second;
                    std::memcpy(&first, a + 8 * p, 4);
                    std::memcpy(&second, a + 8 * p + 4, 4);
                    even = _mm512_dpbusd_epi32(even, low[p], _mm512_set1_epi32(first));
                    odd = _mm512_dpbusd_epi32(odd, high[p], _mm512_set1_epi32(second));
                }
                // 16 x (the sub-block's sum): at most 16 * 30,720 * 2, times a
                // 6-bit scale, 8 sub-blocks: within an int32.
                const __m512i sixteen_times = _mm512_add_epi32(_mm512_slli_epi32(even, 4), odd);
                sums[c] = _mm512_add_epi32(sums[c], _mm512_mullo_epi32(sixteen_times, scales));
            }
        }
        const __m512 d = _mm512_cvtph_ps(load256(group.d));
        const __m512 dmin = _mm512_cvtph_ps(load256(group.dmin));
        for (int c = 0; c < Columns; ++c) {
            const __m512 column_d = _mm512_set1_ps(y[c][b].d);
            total[c] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(sums[c]), _mm512_mul_ps(d, _mm512_set1_ps(y[c][b].d / 16.f)),
                                       total[c]);
            total[c] = _mm512_fnmadd_ps(_mm512_cvtepi32_ps(mins[c]), _mm512_mul_ps(dmin, column_d), total[c]);
        }
    }
    for (int c = 0; c < Columns; ++c) _mm512_storeu_ps(out[c], total[c]);
}

// A tile's columns against its Q4_K groups (matmul_groups_avx512).
class Q4_KGroupColumns {
public:
    explicit Q4_KGroupColumns(const MatmulTile& tile) : tile_(tile) {}

    template <int Columns>
    void run(const std::uint8_t* group, std::int64_t first_column, float* const* out) const {
        const BlockQ8_K* y[Columns];
        for (int c = 0; c < Columns; ++c)
            y[c] = reinterpret_cast<const BlockQ8_K*>(tile_.activations + (first_column + c) * tile_.act_row_bytes);
        q4_k_group_columns<Columns>(reinterpret_cast<const BlockQ4_KGroup*>(group), tile_.n / kBlockK, y, out);
    }

private:
    const MatmulTile& tile_;
};

// Each activation block's sum of quants, once per tile, column after
// column: the 32-element group kernels start a block's sums from the weights'
// offset times it (the groups' quants are unsigned).
class ActivationBlockSums {
public:
    explicit ActivationBlockSums(const MatmulTile& tile) : n_blocks_(tile.n / kBlock32) {
        thread_local std::vector<std::int32_t> scratch;
        scratch.resize(static_cast<std::size_t>(tile.n_cols * n_blocks_));
        sums_ = scratch.data();
        for (std::int64_t c = 0; c < tile.n_cols; ++c) {
            const auto* y = reinterpret_cast<const BlockQ8_0*>(tile.activations + c * tile.act_row_bytes);
            for (std::int64_t b = 0; b < n_blocks_; ++b) {
                // The sum of the biased bytes (q + 128, unsigned) by vpsadbw.
                const __m256i biased = _mm256_xor_si256(load256(y[b].qs), _mm256_set1_epi8(static_cast<char>(0x80)));
                const __m256i sums = _mm256_sad_epu8(biased, _mm256_setzero_si256());
                const __m128i halves = _mm_add_epi64(_mm256_castsi256_si128(sums), _mm256_extracti128_si256(sums, 1));
                const auto biased_sum =
                    static_cast<std::int32_t>(_mm_cvtsi128_si64(halves) + _mm_extract_epi64(halves, 1));
                sums_[c * n_blocks_ + b] = biased_sum - kBlock32 * 128;
            }
        }
    }
    const std::int32_t* column(std::int64_t c) const { return sums_ + c * n_blocks_; }

private:
    std::int64_t n_blocks_;
    std::int32_t* sums_ = nullptr;  // (n_cols, n_blocks)
};

// Row groups of the 32-element types (BlockQ8_0Group ... BlockQ5_1Group):
// as the Q4_K groups', 16 rows in the lanes and each column's activation
// words broadcast, so one vpdpbusd does 64 of a block's products, where the
// rows' kernels need more work per product than decode has time for while
// the weights stream in. A block is eight quant vectors, vector t meeting
// the activation's word t (elements 4t to 4t + 3): Q8_0's quads, or each
// quad's low and then high nibbles. 4-bit high nibbles stay in place, 16
// times their value, the block's float scale taking the 1/16 back; 5-bit
// quants are shifted down and take their fifth bit from a byte mask (16
// added where it is set). The quants are stored unsigned (q + 128, q + 8,
// q + 16), so a block's sums start from minus that offset times the
// activation block's sum; Q4_1's and Q5_1's mins meet the Q8_1 activation's
// d * sum as floats.
template <class Group>
class Block32GroupColumns {
public:
    static constexpr bool kBytes = std::is_same_v<Group, BlockQ8_0Group>;
    static constexpr bool kHasMin = requires(const Group& group) { group.m; };
    static constexpr bool kFiveBit = requires(const Group& group) { group.qh; };
    static constexpr int kOffset = Group::kOffset;
    // 4-bit blocks sum to 16 times their value (the high nibbles in place).
    static constexpr bool kSixteenTimes = !kBytes && !kFiveBit;
    using Activation = std::conditional_t<kHasMin, BlockQ8_1, BlockQ8_0>;

    explicit Block32GroupColumns(const MatmulTile& tile) : tile_(tile), sums_(offset_sums(tile)) {}

    template <int Columns>
    void run(const std::uint8_t* group_bytes, std::int64_t first_column, float* const* out) const {
        const auto* x = reinterpret_cast<const Group*>(group_bytes);
        const std::int64_t n_blocks = tile_.n / kBlock32;
        const Activation* y[Columns];
        const std::int32_t* sums[Columns];
        for (int c = 0; c < Columns; ++c) {
            y[c] = reinterpret_cast<const Activation*>(tile_.activations + (first_column + c) * tile_.act_row_bytes);
            sums[c] = kHasMin ? nullptr : sums_->column(first_column + c);
        }
        __m512 total[Columns];
        for (int c = 0; c < Columns; ++c) total[c] = _mm512_setzero_ps();
        for (std::int64_t g = 0; g < n_blocks / kBlock32GroupBlocks; ++g) {
            const Group& group = x[g];
            if constexpr (Columns == 1)
                prefetch_ahead<_MM_HINT_T1, kGroupPrefetchBytes>(x + g);
            for (int k = 0; k < kBlock32GroupBlocks; ++k) {
                const std::int64_t b = g * kBlock32GroupBlocks + k;
                __m512i quants[8];
                unpack(group, k, quants);
                const __m512 d = _mm512_cvtph_ps(load256(group.d[k]));
                const __m512 m = mins(group, k);
                for (int c = 0; c < Columns; ++c) {
                    const std::int8_t* a = y[c][b].qs;
                    __m512i even = kHasMin ? _mm512_setzero_si512() : _mm512_set1_epi32(-kOffset * sums[c][b]);
                    __m512i odd = _mm512_setzero_si512();
                    for (int t = 0; t < 8; t += 2) {
                        std::int32_t first, second;
                        std::memcpy(&first, a + 4 * t, 4);
                        std::memcpy(&second, a + 4 * t + 4, 4);
                        even = _mm512_dpbusd_epi32(even, quants[t], _mm512_set1_epi32(first));
                        odd = _mm512_dpbusd_epi32(odd, quants[t + 1], _mm512_set1_epi32(second));
                    }
                    constexpr float kScale = kSixteenTimes ? 1.f / 16.f : 1.f;
                    const __m512i sum =
                        kSixteenTimes ? _mm512_add_epi32(_mm512_slli_epi32(even, 4), odd) : _mm512_add_epi32(even, odd);
                    total[c] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(sum),
                                               _mm512_mul_ps(d, _mm512_set1_ps(half_to_float(y[c][b].d) * kScale)),
                                               total[c]);
                    if constexpr (kHasMin)
                        total[c] = _mm512_fmadd_ps(m, _mm512_set1_ps(half_to_float(y[c][b].s)), total[c]);
                }
            }
        }
        for (int c = 0; c < Columns; ++c) _mm512_storeu_ps(out[c], total[c]);
    }

private:
    // Block k's eight quant vectors, vector t for the activation's word t.
    static void unpack(const Group& group, int k, __m512i (&quants)[8]) {
        if constexpr (kBytes) {
            for (int t = 0; t < 8; ++t) quants[t] = load512(group.qs[k][t]);
        } else {
            const __m512i low_nibbles = _mm512_set1_epi8(0x0F);
            for (int p = 0; p < 4; ++p) {
                const __m512i packed = load512(group.qs[k][p]);
                __m512i& low = quants[2 * p];
                __m512i& high = quants[2 * p + 1];
                low = _mm512_and_si512(packed, low_nibbles);
                if constexpr (kFiveBit) {
                    const __m512i sixteen = _mm512_set1_epi8(16);
                    high = _mm512_and_si512(_mm512_srli_epi16(packed, 4), low_nibbles);
                    low = _mm512_mask_add_epi8(low, group.qh[k][p][0], low, sixteen);
                    high = _mm512_mask_add_epi8(high, group.qh[k][p][1], high, sixteen);
                } else {
                    high = _mm512_and_si512(packed, _mm512_set1_epi8(static_cast<char>(0xF0)));
                }
            }
        }
    }

    // Block k's mins (the types with a min), once for all the columns.
    static __m512 mins(const Group& group, int k) {
        if constexpr (kHasMin)
            return _mm512_cvtph_ps(load256(group.m[k]));
        else
            return _mm512_setzero_ps();
    }

    static std::optional<ActivationBlockSums> offset_sums(const MatmulTile& tile) {
        if constexpr (kHasMin)
            return std::nullopt;
        else
            return ActivationBlockSums(tile);
    }

    const MatmulTile& tile_;
    std::optional<ActivationBlockSums> sums_;  // for the types with an offset
};

// A group's 16 rows stay in L1 while every column of the tile passes, four
// at a time.
template <class GroupColumns>
void matmul_groups_avx512(const MatmulTile& tile) {
    constexpr int kGroupColumns = 4;
    const GroupColumns columns(tile);
    for (std::int64_t first = 0; first < tile.n_rows; first += kGroupRows) {
        const std::uint8_t* group = tile.weights + first * tile.row_bytes;
        for (std::int64_t c = 0; c < tile.n_cols; c += kGroupColumns) {
            float* out[kGroupColumns];
            const int n = static_cast<int>(std::min<std::int64_t>(kGroupColumns, tile.n_cols - c));
            for (int i = 0; i < n; ++i)
                out[i] = tile.out + (c + i) * tile.out_col_stride + first;
            switch (n) {
            case 1: columns.template run<1>(group, c, out); break;
            case 2: columns.template run<2>(group, c, out); break;
            case 3: columns.template run<3>(group, c, out); break;
            default: columns.template run<4>(group, c, out); break;
            }
        }
    }
}

}  // namespace

void add_avx512_kernels(KernelTable& table) {
    const auto slot = [](GgmlType type) { return static_cast<std::size_t>(type); };
    table.exp_row = exp_row_avx512;
    table.softmax_row = softmax_row_avx512;
    table.gelu_row = gelu_row_avx512;
    table.weighted_q8_0_rows = weighted_q8_0_rows_avx512;
    table.matmul_groups[slot(GgmlType::Q4_K)] = matmul_groups_avx512<Q4_KGroupColumns>;
    table.matmul_groups[slot(GgmlType::Q8_0)] = matmul_groups_avx512<Block32GroupColumns<BlockQ8_0Group>>;
    table.matmul_groups[slot(GgmlType::Q4_0)] = matmul_groups_avx512<Block32GroupColumns<BlockQ4_0Group>>;
    table.matmul_groups[slot(GgmlType::Q4_1)] = matmul_groups_avx512<Block32GroupColumns<BlockQ4_1Group>>;
    table.matmul_groups[slot(GgmlType::Q5_0)] = matmul_groups_avx512<Block32GroupColumns<BlockQ5_0Group>>;
    table.matmul_groups[slot(GgmlType::Q5_1)] = matmul_groups_avx512<Block32GroupColumns<BlockQ5_1Group>>;
    for (const GgmlType type : {GgmlType::Q4_K, GgmlType::Q8_0, GgmlType::Q4_0, GgmlType::Q4_1, GgmlType::Q5_0, GgmlType::Q5_1})
        table.fast_groups[slot(type)] = true;
    table.matmul[slot(GgmlType::F32)] = float_matmul<Load512F32>;
    table.matmul[slot(GgmlType::F16)] = float_matmul<Load512F16>;
    table.matmul[slot(GgmlType::BF16)] = float_matmul<Load512BF16>;
    table.matmul[slot(GgmlType::Q4_0)] = matmul_of<KernelBlock32<Unpack512Q4_0>>;
    table.matmul[slot(GgmlType::Q4_1)] = matmul_of<KernelBlock32<Unpack512Q4_1>>;
    table.matmul[slot(GgmlType::Q5_0)] = matmul_of<KernelBlock32<Unpack512Q5_0>>;
    table.matmul[slot(GgmlType::Q5_1)] = matmul_of<KernelBlock32<Unpack512Q5_1>>;
    table.matmul[slot(GgmlType::Q8_0)] = matmul_of<KernelBlock32<Unpack512Q8_0>>;
    table.matmul[slot(GgmlType::Q4_K)] = matmul_of<KernelK4<false>>;
    table.matmul[slot(GgmlType::Q5_K)] = matmul_of<KernelK4<true>>;
    table.matmul[slot(GgmlType::Q2_K)] = matmul_of<KernelScale16<UnpackScale16Q2_K>>;
    table.matmul[slot(GgmlType::Q3_K)] = matmul_of<KernelScale16<UnpackScale16Q3_K>>;
    table.matmul[slot(GgmlType::Q6_K)] = matmul_of<KernelScale16<UnpackScale16Q6_K>>;
}

}  // namespace folio::engine::quant

#endif
