#pragma once
// How a model is split between a GPU and the host (Model::use_gpu). A
// mixture of experts larger than the GPU keeps the routed experts of some
// layers in host memory, where the CPU computes them; attention, the
// embeddings, the head and the other layers stay on the GPU (llama.cpp's
// --n-cpu-moe). The experts are most of such a model's bytes, and a decoded
// token reads only a few of them, which the CPU's memory serves well enough.

#include <cstddef>
#include <span>

#include "engine/kv_cache.h"

namespace folio::engine {

struct GpuPlacement {
    // Fit: keep the fewest expert layers on the host that leave the GPU
    // room for the context's KV cache and the activations.
    static constexpr int kFitExperts = -1;
    // Layers whose experts stay in host memory, counted from the first
    // layer with experts; more than the model has means all of them.
    int host_expert_layers = kFitExperts;
    // The context the KV cache will hold (0: the training context) and its
    // element type: what fitting leaves room for.
    int context_positions = 0;
    KvType kv_type = KvType::F16;
};

// What fitting leaves free beside the KV cache: a prefill batch's
// activations, the experts' routing rows and cuBLAS's workspace.
constexpr std::size_t kGpuActivationReserveBytes = std::size_t{512} << 20;

// The fewest expert layers, from the first, to keep on the host so that
// other_bytes plus the remaining layers' expert_bytes (one entry per layer
// with experts, in order) leave reserved_bytes of free_bytes. Throws
// ModelError, saying how much is needed and how much is free, when even
// other_bytes and reserved_bytes do not fit.
int expert_layers_to_keep_on_host(std::span<const std::size_t> expert_bytes, std::size_t other_bytes,
                                  std::size_t free_bytes, std::size_t reserved_bytes);

}  // namespace folio::engine
