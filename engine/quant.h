#pragma once
#include <cstddef>
#include <cstdint>
#include <stdexcept>

#include "engine/ggml_types.h"

// CPU kernels for the weight types of GGUF files: conversion to and from
// float, and dot products of weight rows with quantized activations.
//
// Weight types: F32, F16, BF16, Q4_0, Q4_1, Q5_0, Q5_1, Q8_0, Q2_K, Q3_K,
// Q4_K, Q5_K, Q6_K, with ggml's bit layouts. A dot product does not see float
// activations: the caller first converts the activation row to the weight
// type's vec_dot_type() with quantize_row(), once per row however many weight
// rows it meets, as ggml does:
//
//   weight type                      activations (vec_dot_type)
//   F32, F16, BF16                   F32
//   Q4_0, Q5_0, Q8_0                 Q8_0  {f16 d; i8 qs[32]}
//   Q4_1, Q5_1                       Q8_1  {f16 d; f16 s = d * sum(qs); i8 qs[32]}
//   Q2_K, Q3_K, Q4_K, Q5_K, Q6_K     Q8_K  {f32 d; i8 qs[256]; i16 bsums[16]}
//
// Q8_1 carries its block sum so that the min term of the "_1" types costs one
// multiply per block; Q8_K's bsums (sums of 16 quants) do the same for the
// K-quants' mins and offsets.
//
// The kernel set (AVX-512, AVX2 or scalar) is chosen once, on first use, from
// what the CPU supports. Every function here is thread-safe; threading is the
// caller's: give each thread its own range of rows.

namespace folio::engine {

// A request no kernel can serve: a type without kernels, a row length that is
// not a whole number of blocks, a reversed row range, a row stride shorter
// than a row. what() names the function, the type and the numbers.
class QuantError : public std::invalid_argument {
public:
    using std::invalid_argument::invalid_argument;
};

// Elements per block (1 for the float types) and bytes of a row of n elements.
// Throw QuantError for a type without kernels, or an n that is not a multiple
// of the block size.
std::int64_t quant_block_size(GgmlType type);
std::size_t quant_row_bytes(GgmlType type, std::int64_t n);

// Whether dequantize_row/quantize_row take the type: the weight types above,
// Q8_0, Q8_1 and Q8_K.
bool has_quant_kernels(GgmlType type);

// n elements (a multiple of the type's block size) between a packed row and floats.
void dequantize_row(GgmlType type, const void* src, float* dst, std::int64_t n);
// ggml's quantizers, byte for byte: round to nearest (quantize_row_*_ref),
// the K-quants searching their sub-block scales as make_qx_quants /
// make_qkx2_quants / make_q3_quants do. Q4_1 and Q5_1 are fitted instead
// (make_qkx2_quants per block, or ggml's span where that has less squared
// error: less error, the same format). dst holds
// quant_row_bytes(type, n).
void quantize_row(GgmlType type, const float* src, void* dst, std::int64_t n);

// The activation format a weight type's dot product reads (table above);
// throws QuantError for a type that is not a weight type (Q8_1, Q8_K, ...).
GgmlType vec_dot_type(GgmlType weight_type);

// sum_i weight[i] * activation[i] over n elements; activation_row is in
// vec_dot_type(weight_type), written by quantize_row (the SIMD kernels rely on
// its int8 quants staying in [-127, 127]).
float vec_dot(GgmlType weight_type, std::int64_t n, const void* weight_row, const void* activation_row);

// Decode: one activation row against weight rows [rows_begin, rows_end).
//   weights: the whole matrix, (rows, n) in `type`, row r at weights + r * row_bytes
//   act_q:   n elements in vec_dot_type(type)
//   out:     out[r] for r in [rows_begin, rows_end); other entries untouched
void matmul_rows(GgmlType type, const void* weights, std::int64_t row_bytes, std::int64_t rows_begin,
                 std::int64_t rows_end, std::int64_t n, const void* act_q, float* out);

// Prefill: n_cols activation rows against weight rows [rows_begin, rows_end).
// Each weight block is unpacked once and multiplied with several activation
// columns while it sits in registers, and the rows are walked in chunks that
// stay in cache while every column passes over them.
//   act_q: n_cols rows of n elements in vec_dot_type(type), act_row_bytes apart
//   out:   out[c * out_col_stride + r] for c < n_cols, r in [rows_begin, rows_end)
//          (a (n_cols, rows) matrix when out_col_stride is the row count)
void matmul_rows_columns(GgmlType type, const void* weights, std::int64_t row_bytes,
                         std::int64_t rows_begin, std::int64_t rows_end, std::int64_t n,
                         const void* act_q, std::int64_t act_row_bytes, std::int64_t n_cols,
                         float* out, std::int64_t out_col_stride);

// Q4_K, Q8_0, Q4_0, Q4_1, Q5_0 and Q5_1 matrices regrouped for the CPU (the
// model does it once, on its first pass on the CPU): rows in groups of 16,
// each block of a group's rows stored together (Q4_K's scales unpacked, the
// quants unsigned), so that one load holds 16 rows' quants and each row sums
// in its own lane, with no shuffles and no reduction across lanes. On
// AVX-512 a prompt's matmuls run about 2x as fast as over the rows, and a
// decoded token, bound by memory, gains as the kernels leave more time to
// wait for it (blocks_cpu.h: allocate_weight_bytes).
//
// Whether this CPU's kernel set has its own kernel for `type`'s groups
// (AVX-512 VNNI); elsewhere, and for other types, regrouping gains nothing.
bool row_groups_pay(GgmlType type);
// Elements of a row that one group block holds: 256 for Q4_K, 64 for the
// 32-element types, 0 for a type without row groups.
std::int64_t row_group_elements(GgmlType type);
// Bytes of the groups of a (rows, n) matrix: Q4_K 2368 per 16 rows and 256
// elements (2.8% more than the rows), the others the rows' bytes. Throws
// QuantError for a type without groups, or when rows is not a multiple of
// 16 or n of the group's elements.
std::size_t row_groups_bytes(GgmlType type, std::int64_t rows, std::int64_t n);
// Regroups rows [rows_begin, rows_end) (multiples of 16) of a matrix into
// their place in `groups`, the whole matrix's row_groups_bytes(): ranges may
// go to different threads.
void group_rows(GgmlType type, const void* weights, std::int64_t row_bytes, std::int64_t rows_begin,
                std::int64_t rows_end, std::int64_t n, void* groups);
// matmul_rows_columns over the groups (one column: decode), rows_begin and
// rows_end multiples of 16; the same sums as the rows' kernels up to the
// order of float additions.
void matmul_row_groups(GgmlType type, const void* groups, std::int64_t rows_begin, std::int64_t rows_end,
                       std::int64_t n, const void* act_q, std::int64_t act_row_bytes, std::int64_t n_cols, float* out,
                       std::int64_t out_col_stride);

// The kernel set in use: "avx512", "avx2" or "scalar".
const char* cpu_kernel_isa();

}  // namespace folio::engine
