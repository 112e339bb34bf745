#include "app/compute_device.h"

#include <stdexcept>

#include "engine/device.h"

namespace folio::app {

DeviceChoice parse_device(std::string_view name) {
    if (name == "auto") return DeviceChoice::Auto;
    if (name == "cpu") return DeviceChoice::Cpu;
    if (name == "cuda") return DeviceChoice::Cuda;
    throw std::invalid_argument("--device must be auto, cpu or cuda, not '" + std::string(name) + "'");
}

std::string place_model(engine::Model& model, DeviceChoice choice, const engine::GpuPlacement& placement) {
    switch (choice) {
        case DeviceChoice::Cpu:
            model.use_cpu();
            return "cpu";
        case DeviceChoice::Cuda:
            model.use_gpu(0, placement);
            return "cuda";
        case DeviceChoice::Auto:
            break;
    }
    if (engine::detect_gpus().gpus.empty()) {
        model.use_cpu();
        return "cpu";
    }
    try {
        model.use_gpu(0, placement);
        return "cuda";
    } catch (const engine::ModelError&) {
        return "cpu";  // an architecture or weight type without CUDA kernels: the CPU runs everything
    }
}

}  // namespace folio::app
