#pragma once
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "engine/gguf.h"

// The layouts of real models: hyper-parameters from each model's Hugging Face
// config.json, and the metadata and tensors that llama.cpp's
// convert_hf_to_gguf.py writes for them (names, shapes with ne[0]
// contiguous). random_model.h fills such a layout with random weights, so
// that tests and benchmarks run a model of real shapes that no package has to
// carry.
//
//   ModelLayout layout = zoo_model_layout("qwen3-0.6b");
//   ModelLayout copied = model_layout_of(GgufFile::open("model.gguf"));

namespace folio::engine {

// How random_model.h fills a tensor.
enum class TensorInit {
    Weight,  // a matrix (or a stack of expert matrices): normal(0, 1/sqrt(ne[0])), ne[0] being the fan-in
    Norm,    // a norm's scale: 1 (Gemma's stored 1 + w included)
    Bias,    // 0
    Values,  // TensorLayout::values: Llama 3's RoPE factors, from the hyper-parameters or a file
};

struct TensorLayout {
    std::string name;              // "blk.0.attn_q.weight"
    std::vector<std::int64_t> ne;  // GGUF order: ne[0] contiguous (a weight matrix is (ne[1] rows, ne[0] cols))
    TensorInit init = TensorInit::Weight;
    std::vector<float> values;     // init == Values: all ne[0] * ... elements

    std::int64_t n_elements() const;
};

// One metadata pair. String values are views: into string literals for a zoo
// layout, into the GgufFile for model_layout_of().
struct MetadataEntry {
    std::string key;
    GgufValue value;
};

// Everything of a GGUF model file but its weights' values and general.file_type.
struct ModelLayout {
    std::string name;          // the zoo name, or the file a layout was read from
    std::string architecture;  // general.architecture
    std::vector<MetadataEntry> metadata;  // general.architecture first
    std::vector<TensorLayout> tensors;    // in the order llama.cpp writes them

    std::int64_t n_elements() const;  // of all tensors: the parameter count
};

// The transformer families the zoo builds layouts for; each writes its own
// set of tensors. (A mixture-of-experts family adds its router and stacked
// expert tensors, (n_embd, n_ff_expert, n_experts), in its own builder.)
enum class ZooFamily {
    Llama,   // llama: SmolLM2, Llama 3, Mistral
    Qwen2,   // qwen2: biases on q, k, v
    Qwen3,   // qwen3: q and k RMS norms, no biases
    Qwen3Moe,  // qwen3moe: qwen3's attention, every feed-forward a mixture of experts
    Qwen2Moe,  // qwen2moe: qwen2's attention, experts beside a gated shared expert
    Olmoe,     // olmoe: q/k norms over all heads, experts as wide as feed_forward_length
    DeepSeek2, // deepseek2: latent attention (ZooModel::mla), leading dense layers, shared experts
    Gemma3,  // gemma3: q/k norms, post-attention and post-FFN norms, sliding-window layers
    Bert,    // bert: an encoder with learned positions, LayerNorms with biases
};

// Llama 3.1's "llama3" RoPE scaling (config.json rope_scaling), which
// llama.cpp stores as per-frequency factors in rope_freqs.weight.
struct Llama3RopeScaling {
    float factor = 0;  // 0: none
    float low_freq_factor = 1;
    float high_freq_factor = 4;
    int original_context = 8192;
};

// DeepSeek's multi-head latent attention and routing (config.json).
struct ZooLatentAttention {
    int q_lora_rank = 0;  // 0: none (V2-Lite)
    int kv_lora_rank = 0;
    int qk_nope_head_dim = 0;
    int qk_rope_head_dim = 0;
    int v_head_dim = 0;
    int n_shared_experts = 0;
    int first_k_dense_replace = 0;
    float routed_scaling_factor = 1.f;
    float yarn_factor = 0;           // rope_scaling.factor; 0: none
    int yarn_original_context = 0;   // rope_scaling.original_max_position_embeddings
    float yarn_mscale_all_dim = 0;   // rope_scaling.mscale_all_dim
};

// A named model's hyper-parameters.
struct ZooModel {
    std::string_view name;          // "smollm2-135m": what --like takes
    std::string_view display_name;  // general.name
    ZooFamily family;
    int n_layers;
    int n_embd;
    int n_ff;
    int n_heads;
    int n_kv_heads;
    int head_dim;
    int n_vocab;
    int n_ctx;                // context_length (max_position_embeddings)
    float rope_freq_base;     // rope_theta; unused by bert
    float norm_eps;           // rms_norm_eps, or bert's layer_norm_eps
    bool tied_embeddings;     // no output.weight: the head reuses token_embd
    int sliding_window = 0;   // gemma3
    Llama3RopeScaling rope_scaling = {};
    int n_expert = 0;         // num_experts (num_local_experts, n_routed_experts)
    int n_expert_used = 0;    // num_experts_per_tok
    int n_ff_expert = 0;      // moe_intermediate_size; n_ff for Mixtral and OLMoE
    int n_ff_shared = 0;      // qwen2moe: shared_expert_intermediate_size
    ZooLatentAttention mla = {};  // deepseek2
};

// N for a tensor named "blk.N.*" (a block's), or -1.
int tensor_block_index(std::string_view name);

// Every named model, in a fixed order.
std::span<const ZooModel> zoo_models();

// The layout of a named model; throws ModelError ("unknown model 'x' (known:
// smollm2-135m, ...)") for a name the zoo does not hold.
ModelLayout zoo_model_layout(std::string_view name);
// The layout of any hyper-parameters (a test's small model).
ModelLayout zoo_model_layout(const ZooModel& model);

// The layout of an existing file: its metadata (tokenizer included), less
// general.file_type and general.quantization_version, and its tensors' shapes.
// The layout's string values view the file's bytes: keep the file open.
ModelLayout model_layout_of(const GgufFile& file);

}  // namespace folio::engine
