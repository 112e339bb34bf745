#include "engine/device.h"

#include <stdexcept>

#ifdef FOLIO_USE_CUDA
#include "engine/cuda/device_query.h"
#include "engine/cuda/kernels.h"
#endif

namespace folio::engine {

GpuReport detect_gpus() {
#ifdef FOLIO_USE_CUDA
    return cuda::query_devices();
#else
    return {.backend_built = false, .gpus = {}, .note = "built without the CUDA backend"};
#endif
}

double measure_gpu_copy_bandwidth(int gpu) {
#ifdef FOLIO_USE_CUDA
    constexpr std::size_t kBytes = std::size_t{1} << 30;
    constexpr int kRepeats = 20;
    cuda::use_gpu(gpu);
    return cuda::measure_copy_bandwidth(kBytes, kRepeats);
#else
    (void)gpu;
    throw std::runtime_error("this Folio was built without the CUDA backend");
#endif
}

}  // namespace folio::engine
