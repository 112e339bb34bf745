#pragma once
// Host-side entry point of the CUDA backend's device query (device_query.cu).

#include "engine/device.h"

namespace folio::engine::cuda {

GpuReport query_devices();

}  // namespace folio::engine::cuda
