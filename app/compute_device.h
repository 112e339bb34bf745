#pragma once
// Where a model runs: the CLI's --device and the settings page's
// "Compute device" choose it; every command places its model through
// place_model so that they agree on what Automatic means.

#include <string>
#include <string_view>

#include "engine/model.h"

namespace folio::app {

enum class DeviceChoice {
    Auto,  // the GPU when there is one and the request can run there, else the CPU
    Cpu,
    Cuda,  // GPU 0, or an error saying why not
};

// "auto", "cpu" or "cuda"; std::invalid_argument (one line) for another name.
DeviceChoice parse_device(std::string_view name);

// Places the model as chosen and returns where it runs: "cpu" or "cuda".
// Cuda throws engine::ModelError when the GPU cannot run the model (no GPU,
// an architecture or weight type without kernels); Auto falls back to the
// CPU then. placement: the context it is placed for (and the cache's type),
// and how a mixture of experts is split when it runs on the GPU.
std::string place_model(engine::Model& model, DeviceChoice choice, const engine::GpuPlacement& placement = {});

}  // namespace folio::app
