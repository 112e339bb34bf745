#pragma once
// The compute devices the engine can run on. The CPU is always there; NVIDIA
// GPUs are listed when the CUDA backend was built and a driver answers.

#include <cstdint>
#include <string>
#include <vector>

namespace folio::engine {

struct GpuInfo {
    int index = 0;
    std::string name;
    int compute_major = 0, compute_minor = 0;
    std::uint64_t total_bytes = 0, free_bytes = 0;
};

struct GpuReport {
    bool backend_built = false;  // this Folio was compiled with the CUDA backend
    std::vector<GpuInfo> gpus;   // empty when none is usable
    std::string note;            // why no GPU is usable ("no CUDA driver", ...), else empty
};

// Asks the CUDA runtime once per call; cheap enough for a settings page.
GpuReport detect_gpus();

// The GPU's memory bandwidth as a device-to-device copy of 1 GiB achieves
// it (bytes read plus bytes written, per second): the ceiling benchmarks
// compare decode with. Throws std::runtime_error without the CUDA backend
// or a usable GPU.
double measure_gpu_copy_bandwidth(int gpu);

}  // namespace folio::engine
