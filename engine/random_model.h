#pragma once
#include <cstdint>
#include <filesystem>
#include <functional>

#include "engine/model_quantize.h"
#include "engine/model_zoo.h"
#include "engine/thread_pool.h"

// A GGUF model of real shapes with seeded random weights (`folio model
// random`): for tests and benchmarks of models no package carries. Weights
// are near-normal, mean 0 and standard deviation 1/sqrt(fan_in) (a linear
// layer keeps its input's scale, so activations stay finite through every
// layer and logits are spread, not flat or huge), norms' scales 1, biases 0. No tokenizer is written for a zoo
// layout (a random model has no vocabulary; the engine runs on token ids);
// a layout copied from a file keeps the file's tokenizer.
//
//   ThreadPool pool;
//   write_random_model(zoo_model_layout("llama-3.1-8b"), {.scheme = quant_scheme("Q4_K_M"), .seed = 1},
//                      "llama-8b-random.gguf", pool);

namespace folio::engine {

struct RandomModelOptions {
    QuantScheme scheme = quant_scheme("F16");  // tensor types as QuantPlan chooses them
    std::uint64_t seed = 0;  // the same seed, layout and scheme give the same bytes, on any machine and thread count
    // > 0: only the first n_layers blocks, block_count set to match: a
    // shorter model of the same widths and vocabulary.
    int n_layers = 0;
    // Called on the writing thread after each tensor with the bytes written
    // so far and the file's total.
    std::function<void(std::uint64_t bytes_done, std::uint64_t bytes_total)> on_progress;
};

// Writes the model one tensor at a time (the largest tensor is the most it
// holds in memory), through write_model_file: a temporary file renamed over
// `path`, after a check for disk space. Throws ModelError for an n_layers
// above the layout's, and what write_model_file throws.
void write_random_model(const ModelLayout& layout, const RandomModelOptions& options,
                        const std::filesystem::path& path, ThreadPool& pool);

}  // namespace folio::engine
