#include "engine/cuda/device_query.h"

#include <cuda_runtime.h>

namespace folio::engine::cuda {

GpuReport query_devices() {
    GpuReport report;
    report.backend_built = true;
    int count = 0;
    if (const cudaError_t status = cudaGetDeviceCount(&count); status != cudaSuccess) {
        // cudaErrorInsufficientDriver is also what a machine with no driver at all gets.
        report.note = status == cudaErrorInsufficientDriver
                          ? "no NVIDIA driver, or one older than this CUDA runtime needs"
                          : status == cudaErrorNoDevice ? "no CUDA device found" : cudaGetErrorString(status);
        cudaGetLastError();  // clear the sticky error so later calls start clean
        return report;
    }
    for (int device = 0; device < count; ++device) {
        cudaDeviceProp properties{};
        if (cudaGetDeviceProperties(&properties, device) != cudaSuccess) continue;
        GpuInfo info;
        info.index = device;
        info.name = properties.name;
        info.compute_major = properties.major;
        info.compute_minor = properties.minor;
        info.total_bytes = properties.totalGlobalMem;
        size_t free_bytes = 0, total_bytes = 0;
        if (cudaSetDevice(device) == cudaSuccess && cudaMemGetInfo(&free_bytes, &total_bytes) == cudaSuccess)
            info.free_bytes = free_bytes;
        report.gpus.push_back(info);
    }
    if (report.gpus.empty()) report.note = "no CUDA device found";
    return report;
}

}  // namespace folio::engine::cuda
