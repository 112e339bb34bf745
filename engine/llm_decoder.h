#pragma once
#include <memory>
#include <string>
#include <string_view>

#include "engine/blocks_cpu.h"
#include "engine/gguf.h"
#include "engine/model.h"

// The dense decoder-only transformers (internal to the engine): one forward
// pass, llm_decoder.cpp, runs every architecture that llm_architectures.cpp
// describes as data. Each layer is
//
//   h = x + post_attention_norm(attention(attn_norm(x)))
//   y = h + post_ffw_norm(ffn(ffn_norm(h)))
//
// with the post-norms only where the architecture has them, then an output
// norm and head; the feed-forward is either gated or a mixture of gated
// experts. Adding such an architecture means adding a description; one with
// a new block gets its own llm_<arch>.cpp (llm_deepseek2.cpp: latent attention).

namespace folio::engine {

// How a layer scales q·k before the softmax.
enum class AttentionScale {
    InverseSqrtHeadDim,  // 1 / sqrt(head_dim)
    // Gemma 3: query_pre_attn_scalar^-1/2. GGUF does not store the scalar;
    // it is head_dim except in the 62-layer 27B model, where it is
    // n_embd / n_heads (the rule llama.cpp applies).
    Gemma3QueryPreAttnScalar,
};

// RMS norms of the projected queries and keys, before RoPE.
enum class QkNorm {
    None,
    PerHead,  // attn_q_norm, attn_k_norm (head_dim): each head of q and k (Qwen3, Gemma 3)
    Whole,    // attn_q_norm (n_heads * head_dim), attn_k_norm (n_kv_heads * head_dim): all heads at once (OLMoE)
};

// Which layers' feed-forwards are mixtures of experts.
enum class ExpertLayers {
    None,
    All,
    // All when the file has <arch>.expert_count, else none: llama.cpp
    // writes Mixtral as a llama with experts.
    WhenPresent,
};

struct DecoderArchitecture {
    std::string_view name;  // general.architecture
    // Which elements RoPE pairs; it follows from how convert_hf_to_gguf
    // wrote attn_q and attn_k (llama: permuted to adjacent pairs).
    RopeStyle rope_style = RopeStyle::HalfSplit;
    bool qkv_bias = false;  // attn_q.bias, attn_k.bias, attn_v.bias (n_heads * head_dim, ...)
    QkNorm qk_norm = QkNorm::None;
    // post_attention_norm, post_ffw_norm (n_embd): RMS norms of the attention
    // and feed-forward outputs before each residual add.
    bool post_norms = false;
    bool scaled_embeddings = false;  // embeddings * sqrt(n_embd)
    GatedActivation ffn_activation = GatedActivation::Silu;
    // > 0: layer il is global when (il + 1) % local_layer_period == 0;
    // the others are local: they attend to the last attention.sliding_window
    // positions and turn RoPE by local_rope_freq_base (rope.freq_base_swa
    // when the file has it) instead of rope.freq_base. A file without
    // attention.sliding_window has global layers only.
    int local_layer_period = 0;
    float local_rope_freq_base = 10000.f;
    AttentionScale attention_scale = AttentionScale::InverseSqrtHeadDim;
    // A mixture-of-experts feed-forward (ExpertFfn, blocks_cpu.h): a router
    // ffn_gate_inp (n_expert, n_embd) and stacked expert matrices
    // ffn_{gate,up}_exps (n_expert, n_ff_exp, n_embd) and ffn_down_exps
    // (n_expert, n_embd, n_ff_exp) (gate and up possibly fused into one
    // ffn_gate_up_exps); <arch>.expert_count, expert_used_count
    // and expert_feed_forward_length give the sizes (the last defaults to
    // feed_forward_length).
    ExpertLayers expert_layers = ExpertLayers::None;
    // The chosen experts' softmax weights are divided by their sum (Qwen3-MoE's norm_topk_prob).
    bool normalize_expert_weights = false;
    // A shared expert beside the routed ones (Qwen2-MoE): ffn_{gate,up,down}_shexp,
    // <arch>.expert_shared_feed_forward_length wide, scaled by
    // sigmoid(x · ffn_gate_inp_shexp).
    bool shared_expert = false;
};

// The description of a general.architecture, or nullptr.
const DecoderArchitecture* find_decoder_architecture(std::string_view name);
// "llama, qwen2, ...": for error messages.
std::string decoder_architecture_names();

// The model of a file whose general.architecture is architecture.name.
// Throws ModelError for a missing tensor or one of the wrong shape (naming
// it), or hyper-parameters out of range.
std::unique_ptr<Model> load_decoder(const GgufFile& file, const DecoderArchitecture& architecture);

}  // namespace folio::engine
