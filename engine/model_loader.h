#pragma once
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "engine/blocks_cpu.h"
#include "engine/gguf.h"
#include "engine/model.h"

// What the llm_<arch>.cpp files share to load their weights (internal to the
// engine): hyper-parameters from metadata and tensors checked against them.

namespace folio::engine {

// The <arch>.* hyper-parameters, with the defaults ModelConfig names.
ModelConfig read_model_config(const GgufFile& file);

// <arch>.rope.scaling.* and rope_freqs.weight (n_rot / 2 factors) as
// llama.cpp's converter writes them. Throws ModelError for a scaling type
// Folio does not implement, or one without the keys it needs.
RopeScaling read_rope_scaling(const GgufFile& file, const std::string& architecture, int n_rot);

// The metadata value of `key` (a full key, "qwen3moe.expert_count") as a
// count in [min, max]. Throws ModelError ("<file>: <key> = 9 is out of
// range") outside it, GgufError when the key is missing or not a u32.
int metadata_count(const GgufFile& file, const std::string& key, std::uint32_t min, std::uint32_t max);

// "(rows, cols)": a tensor's shape as messages give it, outermost dimension first.
std::string tensor_shape_text(const GgufTensor& tensor);

// Tensor `name` as a weight matrix of (rows, cols); throws ModelError when
// it is absent, of another shape, or of a type without matmul kernels.
WeightMatrix weight_matrix(const GgufFile& file, const std::string& name, std::int64_t rows, std::int64_t cols);
// The same, or nullopt when the file has no such tensor.
std::optional<WeightMatrix> find_weight_matrix(const GgufFile& file, const std::string& name, std::int64_t rows,
                                               std::int64_t cols);

// A vector tensor of n elements (a norm's weight), as f32.
std::vector<float> weight_vector(const GgufFile& file, const std::string& name, std::int64_t n);
// The n_expert matrices (rows, cols) stacked in a 3-D tensor of ggml shape
// (cols, rows, n_expert), one WeightMatrix each (unnamed: adapters do not
// reach experts). Throws ModelError for a missing tensor or another shape.
std::vector<WeightMatrix> expert_matrices(const GgufFile& file, const std::string& name, std::int64_t n_expert,
                                          std::int64_t rows, std::int64_t cols);

// A layer's experts' gate and up matrices, n_expert of (n_ff, n_embd)
// each: from blk.N.ffn_gate_exps and ffn_up_exps, or from a fused
// ffn_gate_up_exps (n_expert, 2 n_ff, n_embd) whose experts hold their gate
// rows, then their up rows. blk: "blk.N.".
struct GateUpExperts {
    std::vector<WeightMatrix> gate;
    std::vector<WeightMatrix> up;
};
GateUpExperts gate_up_experts(const GgufFile& file, const std::string& blk, std::int64_t n_expert, std::int64_t n_ff,
                              std::int64_t n_embd);

// The architectures, one per llm_<arch>.cpp (the dense decoders: llm_decoder.h).
std::unique_ptr<Model> load_bert(const GgufFile& file);
std::unique_ptr<Model> load_deepseek2(const GgufFile& file);

}  // namespace folio::engine
