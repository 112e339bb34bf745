#pragma once
// A warp's reductions, shared by the CUDA backend's kernels: every lane of
// the warp calls them and gets the result (xor butterfly, offsets 16 to 1).

namespace folio::engine::cuda {

constexpr int kWarpSize = 32;

template <class T>
__device__ __forceinline__ T warp_sum(T value) {
#pragma unroll
    for (int offset = kWarpSize / 2; offset > 0; offset /= 2)
        value += __shfl_xor_sync(0xFFFFFFFFu, value, offset);
    return value;
}

__device__ __forceinline__ float warp_max(float value) {
#pragma unroll
    for (int offset = kWarpSize / 2; offset > 0; offset /= 2)
        value = fmaxf(value, __shfl_xor_sync(0xFFFFFFFFu, value, offset));
    return value;
}

}  // namespace folio::engine::cuda
