#pragma once
// Error checks shared by the CUDA backend's .cu files.

#include <cuda_runtime.h>

#include <string>

#include "engine/cuda/kernels.h"

namespace folio::engine::cuda {

inline void check(cudaError_t status, const std::string& what) {
    if (status != cudaSuccess) {
        cudaGetLastError();  // clear a non-sticky error so the next call starts clean
        throw CudaError("cannot " + what + ": " + cudaGetErrorString(status));
    }
}

// After a launch: a bad configuration shows up here, a fault at the next synchronization.
inline void check_launch(const char* kernel) {
    check(cudaGetLastError(), std::string("launch ") + kernel);
}

// Of the current GPU, asked once per process.
inline int multiprocessors() {
    static const int count = [] {
        int device = 0, value = 0;
        cudaGetDevice(&device);
        cudaDeviceGetAttribute(&value, cudaDevAttrMultiProcessorCount, device);
        return value > 0 ? value : 1;
    }();
    return count;
}

inline unsigned blocks_for(std::int64_t n, int threads) {
    return static_cast<unsigned>((n + threads - 1) / threads);
}

}  // namespace folio::engine::cuda
