#include "engine/gpu_placement.h"

#include <numeric>
#include <string>

#include "engine/model.h"

namespace folio::engine {

int expert_layers_to_keep_on_host(std::span<const std::size_t> expert_bytes, std::size_t other_bytes,
                                  std::size_t free_bytes, std::size_t reserved_bytes) {
    const std::size_t least = other_bytes + reserved_bytes;
    if (least > free_bytes)
        throw ModelError("the model needs " + gib_text(least) + " of GPU memory besides its experts (" +
                         gib_text(other_bytes) + " of weights, " + gib_text(reserved_bytes) +
                         " for the context and activations), but only " + gib_text(free_bytes) +
                         " is free (use a smaller context or --device cpu)");
    std::size_t on_gpu = std::accumulate(expert_bytes.begin(), expert_bytes.end(), least);
    int on_host = 0;
    for (; on_gpu > free_bytes; ++on_host) on_gpu -= expert_bytes[static_cast<std::size_t>(on_host)];
    return on_host;
}

}  // namespace folio::engine
