#pragma once
#include <cstddef>
#include <cstdint>

#include "engine/ggml_types.h"

// Internal to the quant kernels (quant_*.cpp), and to the tests and
// benchmarks that run one kernel set against another: ggml's block layouts
// and the tables of kernels that quant_dispatch.cpp chooses from.
//
// SIMD translation units are compiled with -mavx2 / -mavx512*. Anything they
// share with the baseline code must not be an inline function or template
// they instantiate (the linker keeps one copy of each, possibly the one with
// AVX-512 instructions): this header holds only types and declarations.

namespace folio::engine::quant {

constexpr int kBlock32 = 32;  // QK4_0 = QK4_1 = QK5_0 = QK5_1 = QK8_0 = QK8_1
constexpr int kBlockK = 256;  // QK_K, the K-quant super-block

// Halves (f16) are stored as their bits. In the 32-element types, qs[j]
// holds element j in its low nibble and element j + 16 in its high nibble.
struct BlockQ4_0 {
    std::uint16_t d;
    std::uint8_t qs[16];  // value = d * (nibble - 8)
};
struct BlockQ4_1 {
    std::uint16_t d;
    std::uint16_t m;
    std::uint8_t qs[16];  // value = d * nibble + m
};
struct BlockQ5_0 {
    std::uint16_t d;
    std::uint8_t qh[4];   // bit j of the little-endian u32: bit 4 of element j
    std::uint8_t qs[16];  // value = d * ((nibble | high << 4) - 16)
};
struct BlockQ5_1 {
    std::uint16_t d;
    std::uint16_t m;
    std::uint8_t qh[4];
    std::uint8_t qs[16];  // value = d * (nibble | high << 4) + m
};
struct BlockQ8_0 {
    std::uint16_t d;
    std::int8_t qs[32];  // value = d * q
};
struct BlockQ8_1 {
    std::uint16_t d;
    std::uint16_t s;     // d * sum(qs), the activation side of the "_1" types' min term
    std::int8_t qs[32];
};

// K-quants: a 256-element super-block of 16- or 32-element sub-blocks, each
// with its own quantized scale (and min).
struct BlockQ2_K {
    std::uint8_t scales[16];  // sub-block j (16 elements): scale in bits 0-3, min in bits 4-7
    std::uint8_t qs[64];      // element 128h + 32s + l: bits 2s..2s+1 of qs[32h + l]
    std::uint16_t d;          // value = d * scale * q - dmin * min
    std::uint16_t dmin;
};
struct BlockQ3_K {
    std::uint8_t hmask[32];   // element 32b + l: its bit 2 is bit b of hmask[l]
    std::uint8_t qs[64];      // low 2 bits, laid out as in Q2_K
    std::uint8_t scales[12];  // 16 six-bit scales, offset 32 (see quant_scalar.cpp)
    std::uint16_t d;          // value = d * (scale - 32) * (q - 4)
};
struct BlockQ4_K {
    std::uint16_t d;
    std::uint16_t dmin;
    std::uint8_t scales[12];  // 8 six-bit scales and 8 six-bit mins (get_scale_min_k4)
    std::uint8_t qs[128];     // element 64p + l: low nibble of qs[32p + l]; 64p + 32 + l: high nibble
};                            // value = d * scale * q - dmin * min, sub-blocks of 32
struct BlockQ5_K {
    std::uint16_t d;
    std::uint16_t dmin;
    std::uint8_t scales[12];  // as Q4_K
    std::uint8_t qh[32];      // element 32s + l: its bit 4 is bit s of qh[l]
    std::uint8_t qs[128];     // low 4 bits, laid out as in Q4_K
};
struct BlockQ6_K {
    std::uint8_t ql[128];     // element 128h + 32g + l: low nibble of ql[64h + 32(g&1) + l] (high nibble for g >= 2)
    std::uint8_t qh[64];      //   and its bits 4-5 are bits 2g..2g+1 of qh[32h + l]
    std::int8_t scales[16];   // one per 16 elements
    std::uint16_t d;          // value = d * scale * (q - 32)
};
struct BlockQ8_K {
    float d;
    std::int8_t qs[256];
    std::int16_t bsums[16];   // sums of qs in groups of 16
};

static_assert(sizeof(BlockQ4_0) == 18 && sizeof(BlockQ4_1) == 20 && sizeof(BlockQ5_0) == 22 &&
              sizeof(BlockQ5_1) == 24 && sizeof(BlockQ8_0) == 34 && sizeof(BlockQ8_1) == 36);
// Q4_K rows regrouped for the CPU's decode (quant.h: group_q4_k_rows): one
// super-block of 16 consecutive rows, its scales and mins unpacked to bytes
// and its quants ordered so that one zmm holds the same four elements of
// all 16 rows. vpdpbusd then sums 4 products per row in each of 16 lanes
// against one broadcast word of the activation, and every row's sums end in
// its own lane, with no reduction across lanes.
constexpr int kGroupRows = 16;
struct BlockQ4_KGroup {
    std::uint16_t d[kGroupRows];           // each row's block scale (f16)
    std::uint16_t dmin[kGroupRows];
    std::uint8_t scales[8][kGroupRows];    // sub-block j (32 elements) of row r
    std::uint8_t mins[8][kGroupRows];
    // Sub-block j, quad p: row r's elements 32j + 8p + i in the low nibble
    // and 32j + 8p + 4 + i in the high one of byte 4r + i (i < 4).
    std::uint8_t qs[8][4][4 * kGroupRows];
};

static_assert(sizeof(BlockQ4_KGroup) == 2368);
// Q8_0, Q4_0, Q4_1, Q5_0 and Q5_1 rows regrouped the same way: 16 consecutive
// rows, two blocks (64 elements) of each, the quants stored unsigned as
// q + kOffset (Q8_0's made so, what vpdpbusd multiplies; Q4_0's and Q5_0's
// nibbles are stored so in the rows already), so that one zmm holds the
// same quad of elements of all 16 rows. Each group takes the rows' own
// bytes.
constexpr int kBlock32GroupBlocks = 2;
struct BlockQ8_0Group {
    static constexpr int kOffset = 128;
    std::uint16_t d[kBlock32GroupBlocks][kGroupRows];  // block k's scale (f16) of row r
    // Block k, quad p: row r's element 32k + 4p + i at byte 4r + i.
    std::uint8_t qs[kBlock32GroupBlocks][8][4 * kGroupRows];
};
// Block k, quad p: row r's element 32k + 8p + i in the low nibble and
// 32k + 8p + 4 + i in the high one of byte 4r + i, as BlockQ4_KGroup's.
struct BlockQ4_0Group {
    static constexpr int kOffset = 8;
    std::uint16_t d[kBlock32GroupBlocks][kGroupRows];
    std::uint8_t qs[kBlock32GroupBlocks][4][4 * kGroupRows];
};
struct BlockQ4_1Group {
    static constexpr int kOffset = 0;
    std::uint16_t d[kBlock32GroupBlocks][kGroupRows];
    std::uint16_t m[kBlock32GroupBlocks][kGroupRows];
    std::uint8_t qs[kBlock32GroupBlocks][4][4 * kGroupRows];
};
// Q5_0 and Q5_1: Q4_0's nibbles (Q5_1's with a min per block), and each
// quad's fifth bits as byte masks: bit 4r + i of qh[k][p][h] is bit 4 of row
// r's element 32k + 8p + 4h + i (h 0: the low nibbles' elements, 1: the high
// ones').
struct BlockQ5_0Group {
    static constexpr int kOffset = 16;
    std::uint16_t d[kBlock32GroupBlocks][kGroupRows];
    std::uint8_t qs[kBlock32GroupBlocks][4][4 * kGroupRows];
    std::uint64_t qh[kBlock32GroupBlocks][4][2];
};
struct BlockQ5_1Group {
    static constexpr int kOffset = 0;
    std::uint16_t d[kBlock32GroupBlocks][kGroupRows];
    std::uint16_t m[kBlock32GroupBlocks][kGroupRows];
    std::uint8_t qs[kBlock32GroupBlocks][4][4 * kGroupRows];
    std::uint64_t qh[kBlock32GroupBlocks][4][2];
};
static_assert(sizeof(BlockQ8_0Group) == 1088 && sizeof(BlockQ4_0Group) == 576 && sizeof(BlockQ4_1Group) == 640 &&
              sizeof(BlockQ5_0Group) == 704 && sizeof(BlockQ5_1Group) == 768);
static_assert(sizeof(BlockQ2_K) == 84 && sizeof(BlockQ3_K) == 110 && sizeof(BlockQ4_K) == 144 &&
              sizeof(BlockQ5_K) == 176 && sizeof(BlockQ6_K) == 210 && sizeof(BlockQ8_K) == 292);

// One tile of a matrix product: every weight row against every activation row.
struct MatmulTile {
    std::int64_t n = 0;                         // elements per row, a multiple of the block size
    const std::uint8_t* weights = nullptr;      // n_rows rows, row_bytes apart
    std::int64_t row_bytes = 0;
    std::int64_t n_rows = 0;
    const std::uint8_t* activations = nullptr;  // n_cols rows in the vec_dot type, act_row_bytes apart
    std::int64_t act_row_bytes = 0;
    std::int64_t n_cols = 0;
    float* out = nullptr;                       // out[c * out_col_stride + r]
    std::int64_t out_col_stride = 0;
};

using DequantizeRowFn = void (*)(const void* src, float* dst, std::int64_t n);
using QuantizeRowFn = void (*)(const float* src, void* dst, std::int64_t n);
using MatmulTileFn = void (*)(const MatmulTile& tile);
// values[i] = e^values[i], i < n: the exponential the blocks' softmax and
// activations need, a vector at a time (vector_math.h).
using ExpRowFn = void (*)(float* values, std::int64_t n);
// scaled_softmax_in_place (vector_math.h).
using SoftmaxRowFn = void (*)(float* values, std::int64_t n, float scale);
// gelu_erf_in_place (vector_math.h).
using GeluRowFn = void (*)(float* values, std::int64_t n);

// erf(z) = 1 - (a1 t + a2 t^2 + ... + a5 t^5) e^(-z^2), t = 1 / (1 + p z),
// for z >= 0 (Abramowitz & Stegun 7.1.26; absolute error below 1.5e-7),
// odd in z: GELU's Φ without a call to std::erf per element.
namespace erf_approximation {
constexpr float kP = 0.3275911f;
constexpr float kA[] = {1.061405429f, -1.453152027f, 1.421413741f, -0.284496736f, 0.254829592f};  // a5 .. a1
constexpr float kInverseSqrt2 = 0.70710678118654752f;
}  // namespace erf_approximation
// add_weighted_q8_0_rows (vector_math.h), first and n already in blocks.
using WeightedRowsFn = void (*)(const float* weights, std::int64_t weight_stride, std::int64_t n_heads,
                                const std::uint8_t* rows, std::int64_t row_bytes, std::int64_t n_rows,
                                std::int64_t first_block, std::int64_t n_blocks, float* acc, std::int64_t acc_stride);

constexpr std::size_t kTypeSlots = 31;  // GgmlType ids 0..30 (BF16 is 30)

// Kernels by GgmlType id; null where the set has none for that type. Plain
// arrays: std::array's accessors would be templates instantiated in the SIMD
// translation units.
struct KernelTable {
    const char* isa = "";
    DequantizeRowFn dequantize_row[kTypeSlots] = {};
    QuantizeRowFn quantize_row[kTypeSlots] = {};
    MatmulTileFn matmul[kTypeSlots] = {};
    ExpRowFn exp_row = nullptr;
    SoftmaxRowFn softmax_row = nullptr;
    GeluRowFn gelu_row = nullptr;
    WeightedRowsFn weighted_q8_0_rows = nullptr;
    // Row groups (row_group_layout) against the type's vec_dot activations,
    // by weight type: a tile whose weights are its first group, n_rows a
    // multiple of 16 and row_bytes a sixteenth of a group's bytes over n.
    // The scalar set's are the reference; regrouping pays only where a set
    // has its own (fast_groups).
    MatmulTileFn matmul_groups[kTypeSlots] = {};
    bool fast_groups[kTypeSlots] = {};
};

// The scalar set has every kernel. Each SIMD set starts from the set below it
// (scalar <- avx2 <- avx512) and replaces the entries it has its own code for.
// Null when this build or this CPU lacks the instructions.
const KernelTable& scalar_kernels();
const KernelTable* avx2_kernels();
const KernelTable* avx512_kernels();
// The best set this CPU runs, chosen once.
const KernelTable& active_kernels();

// Rows g * 16 .. g * 16 + 15 of a matrix (row_bytes apart, n elements) as
// groups[g * (n / elements) + block], for g < n_groups.
using GroupRowsFn = void (*)(const std::uint8_t* weights, std::int64_t row_bytes, std::int64_t n,
                             std::int64_t n_groups, std::uint8_t* groups);
// A weight type's row groups: elements of a row per group block, the block's
// bytes, its regrouping. elements is 0 for a type without groups.
struct RowGroupLayout {
    std::int64_t elements = 0;
    std::int64_t bytes = 0;
    GroupRowsFn group_rows = nullptr;
};
RowGroupLayout row_group_layout(GgmlType type);

// Defined in quant_avx2.cpp / quant_avx512.cpp; called only on CPUs with the
// instructions (the functions themselves may contain them).
void add_avx2_kernels(KernelTable& table);
void add_avx512_kernels(KernelTable& table);

}  // namespace folio::engine::quant
