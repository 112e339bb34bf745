#include "engine/device.h"

#ifdef FOLIO_USE_CUDA
#include "engine/cuda/device_query.h"
#endif

namespace folio::engine {

GpuReport detect_gpus() {
#ifdef FOLIO_USE_CUDA
    return cuda::query_devices();
#else
    return {.backend_built = false, .gpus = {}, .note = "built without the CUDA backend"};
#endif
}

}  // namespace folio::engine
