#pragma once
// Element-wise math on float rows for the model blocks, run by the SIMD
// kernel set the CPU has (quant_kernels.h), like the matmuls.

#include <cstdint>

namespace folio::engine {

// values[i] = e^values[i] for i < n: within 1e-6 of std::exp relative to
// the result (the scalar set is std::exp); 0 where std::exp's result would
// be below float's normal range (x < ln FLT_MIN, about -87.34).
void exp_in_place(float* values, std::int64_t n);

// values = softmax(scale * values) for n values: each e^(scale * v - m) over
// their sum, m the largest scale * v, the sum taken in double (so the order
// a set adds in hardly ever changes the float it rounds to), the
// exponentials as exp_in_place's. Attention's weights, one pass of a vector
// at a time where the set has one.
void scaled_softmax_in_place(float* values, std::int64_t n, float scale);

// values[i] = GELU(values[i]) = values[i] Φ(values[i]), Φ through erf
// (quant_kernels.h: erf_approximation, within 1.5e-7 of erf), the
// exponential as exp_in_place's: BERT's feed-forward activation.
void gelu_erf_in_place(float* values, std::int64_t n);

// Attention's weighted sum over Q8_0 value rows (a q8_0 KV cache):
//   acc[h * acc_stride + e] += sum over j < n_rows of
//       weights[h * weight_stride + j] * element first + e of row j
// for h < n_heads, e < n; row j at rows + j * row_bytes, first and n whole
// blocks (multiples of 32). Each row's quants are widened once for all the
// heads, and each head's sum runs in order of j, the same bits whatever
// n_heads is. Throws std::invalid_argument for a first or n that is not a
// multiple of 32.
void add_weighted_q8_0_rows(const float* weights, std::int64_t weight_stride, std::int64_t n_heads,
                            const void* rows, std::int64_t row_bytes, std::int64_t n_rows, std::int64_t first,
                            std::int64_t n, float* acc, std::int64_t acc_stride);

}  // namespace folio::engine
