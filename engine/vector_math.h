#pragma once
// Element-wise math on float rows for the model blocks, run by the SIMD
// kernel set the CPU has (quant_kernels.h), like the matmuls.

#include <cstdint>

namespace folio::engine {

// values[i] = e^values[i] for i < n: within 1e-6 of std::exp relative to
// the result (the scalar set is std::exp); 0 where std::exp's result would
// be below float's normal range (x < ln FLT_MIN, about -87.34).
void exp_in_place(float* values, std::int64_t n);

}  // namespace folio::engine
