#pragma once
// Included only by the SIMD kernel files (quant_avx2.cpp, quant_avx512.cpp),
// after <immintrin.h>: the helpers and the column-blocking driver they share.
//
// Each file is compiled with its own -m flags, so each needs its own copy of
// these: everything here is in an anonymous namespace (internal linkage, one
// copy per object file, never merged by the linker; `nm -C` shows them as
// local `t` symbols, no weak `W` ones). Do not include this from baseline
// code, and keep it free of anything with external linkage.

#include <cstddef>
#include <cstdint>
#include <cstring>

#include "engine/quant_kernels.h"

namespace folio::engine::quant {
namespace {

float half_to_float(std::uint16_t h) {
    return _cvtsh_ss(h);
}

float hsum(__m256 v) {
    __m128 sum = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    sum = _mm_add_ps(sum, _mm_movehl_ps(sum, sum));
    sum = _mm_add_ss(sum, _mm_movehdup_ps(sum));
    return _mm_cvtss_f32(sum);
}

__m256i load256(const void* p) {
    return _mm256_loadu_si256(static_cast<const __m256i*>(p));
}

template <class Block>
const Block* as_blocks(const std::uint8_t* row) {
    return reinterpret_cast<const Block*>(row);
}

// The Columns activation rows of a kernel, as blocks.
template <class Block, int Columns>
void activation_blocks(const std::uint8_t* const* activation_rows, const Block* (&blocks)[Columns]) {
    for (int c = 0; c < Columns; ++c)
        blocks[c] = as_blocks<Block>(activation_rows[c]);
}

// Q4_K / Q5_K: 8 six-bit scales and 8 six-bit mins packed in 12 bytes, as
// 16 bytes: scales 0-7, then mins 0-7. With u0 u1 u2 the packed words:
//   scales 0-3 = u0 & 63                  scales 4-7 = u2 & 15 | (u0 >> 6 & 3) << 4
//   mins 0-3   = u1 & 63                  mins 4-7   = u2 >> 4 & 15 | (u1 >> 6 & 3) << 4
// (per byte). Reads 16 bytes; the 4 past the scales are the block's quants.
__m128i unpack_scales_k4(const std::uint8_t* packed) {
    const __m128i u = _mm_loadu_si128(reinterpret_cast<const __m128i*>(packed));
    const __m128i u0_u2_u1_u2 = _mm_shuffle_epi32(u, _MM_SHUFFLE(2, 1, 2, 0));
    const __m128i low = _mm_and_si128(_mm_srlv_epi32(u0_u2_u1_u2, _mm_set_epi32(4, 0, 0, 0)),
                                      _mm_set_epi32(0x0F0F0F0F, 0x3F3F3F3F, 0x0F0F0F0F, 0x3F3F3F3F));
    const __m128i u0_u0_u1_u1 = _mm_shuffle_epi32(u, _MM_SHUFFLE(1, 1, 0, 0));
    const __m128i high = _mm_and_si128(_mm_srli_epi32(u0_u0_u1_u1, 2), _mm_set_epi32(0x30303030, 0, 0x30303030, 0));
    return _mm_or_si128(low, high);
}

// Q3_K's 16 scales (12 bytes, 6 bits each, offset 32) as 16 int8.
__m128i unpack_scales_q3_k(const std::uint8_t* packed) {
    constexpr std::uint32_t kLow4 = 0x0F0F0F0Fu;
    constexpr std::uint32_t kLow2 = 0x03030303u;
    std::uint32_t s[3];
    std::memcpy(s, packed, sizeof s);
    const std::uint32_t w0 = (s[0] & kLow4) | ((s[2] & kLow2) << 4);
    const std::uint32_t w1 = (s[1] & kLow4) | (((s[2] >> 2) & kLow2) << 4);
    const std::uint32_t w2 = ((s[0] >> 4) & kLow4) | (((s[2] >> 4) & kLow2) << 4);
    const std::uint32_t w3 = ((s[1] >> 4) & kLow4) | (((s[2] >> 6) & kLow2) << 4);
    const __m128i biased = _mm_set_epi32(static_cast<int>(w3), static_cast<int>(w2), static_cast<int>(w1),
                                         static_cast<int>(w0));
    return _mm_sub_epi8(biased, _mm_set1_epi8(32));
}

// The mins of unpack_scales_k4 (bytes 8-15) as 16 int16, each repeated for
// the two 16-element bsums of its sub-block.
__m256i k4_mins_per_bsum(__m128i scales_mins) {
    return _mm256_cvtepu8_epi16(
        _mm_shuffle_epi8(scales_mins, _mm_set_epi8(15, 15, 14, 14, 13, 13, 12, 12, 11, 11, 10, 10, 9, 9, 8, 8)));
}

// Decode reads each weight once, from memory: besides the hardware
// prefetcher, every block asks for the lines kBytesAhead ahead in its row
// (rows are contiguous, so past a row's end come the next rows), into the
// cache level kHint names. Worth ~20% of single-thread bandwidth on Zen 5;
// 4-16 KiB ahead measure alike there, and the row kernels measured alike
// with either hint on an Intel Xeon.
constexpr int kPrefetchBytes = 8192;

template <int kHint = _MM_HINT_T0, int kBytesAhead = kPrefetchBytes, class Block>
void prefetch_ahead(const Block* block) {
    const char* ahead = reinterpret_cast<const char*>(block) + kBytesAhead;
    for (std::size_t offset = 0; offset < sizeof(Block); offset += 64)
        _mm_prefetch(ahead + offset, static_cast<_mm_hint>(kHint));
}

// ------------------------------------------------------------------ exp

// e^x as 2^k * e^r: k = x / ln 2 rounded, r = x - k ln 2 (ln 2 in two parts,
// so r is exact) within +-ln 2 / 2, e^r by its Taylor series to r^7 (the
// remainder is below 6e-9 of the result there). Inputs are clamped to where
// float e^x is a normal number; below it the result is 0.
constexpr float kExpHighest = 88.7228394f;          // ln(FLT_MAX)
constexpr float kExpLowest = -87.3365478515625f;    // ln(FLT_MIN)
constexpr float kLog2e = 1.44269504088896341f;
constexpr float kLn2High = 0.693359375f;            // exact in float: k * kLn2High is exact
constexpr float kLn2Low = -2.12194440e-4f;          // ln 2 - kLn2High
constexpr float kExpTaylor[] = {1.f / 5040, 1.f / 720, 1.f / 120, 1.f / 24, 1.f / 6, 1.f / 2, 1.f, 1.f};

// ------------------------------------------------------------------ driver

// Kernel::dot_row<Columns>(n, weight_row, activations, results): one weight
// row against Columns activation rows. A kernel with a Packed<Columns> class
// takes them repacked once per tile (Packed(n, activation_rows)), the others
// as the rows.
template <class Kernel, int Columns>
void rows_times_columns(const MatmulTile& tile, std::int64_t first_column) {
    const std::uint8_t* activations[Columns];
    for (int c = 0; c < Columns; ++c)
        activations[c] = tile.activations + (first_column + c) * tile.act_row_bytes;
    const auto each_row = [&](const auto& columns) {
        for (std::int64_t r = 0; r < tile.n_rows; ++r) {
            float results[Columns];
            Kernel::template dot_row<Columns>(tile.n, tile.weights + r * tile.row_bytes, columns, results);
            for (int c = 0; c < Columns; ++c)
                tile.out[(first_column + c) * tile.out_col_stride + r] = results[c];
        }
    };
    if constexpr (requires { typename Kernel::template Packed<Columns>; })
        each_row(typename Kernel::template Packed<Columns>(tile.n, activations));
    else
        each_row(activations);
}

template <class Kernel, int Columns>
void remaining_columns(const MatmulTile& tile, std::int64_t first_column) {
    if constexpr (Columns > 0) {
        if (tile.n_cols - first_column == Columns)
            rows_times_columns<Kernel, Columns>(tile, first_column);
        else
            remaining_columns<Kernel, Columns - 1>(tile, first_column);
    }
}

// MaxColumns: how many activation columns each weight block meets while it
// sits in registers (set by each file from its register count).
template <class Kernel, int MaxColumns>
void matmul_tile(const MatmulTile& tile) {
    std::int64_t c = 0;
    for (; c + MaxColumns <= tile.n_cols; c += MaxColumns)
        rows_times_columns<Kernel, MaxColumns>(tile, c);
    remaining_columns<Kernel, MaxColumns - 1>(tile, c);
}

}  // namespace
}  // namespace folio::engine::quant
