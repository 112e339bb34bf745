// The decoder architectures as llama.cpp writes them to GGUF, each
// checked against Hugging Face transformers by tests/engine/tst_decoders.cpp
// (goldens from tools/make_decoder_goldens.py).

#include <array>
#include <string>

#include "engine/llm_decoder.h"

namespace folio::engine {

namespace {

constexpr std::array kArchitectures = {
    // Llama 2/3, SmolLM2, Mistral (llama.cpp runs it without its sliding
    // window, as does this). convert_hf_to_gguf permutes the rows of attn_q
    // and attn_k within each head so that Hugging Face's rotate-half pairs
    // (i, i + d/2) land on adjacent rows (2i, 2i + 1); llama.cpp therefore
    // applies its "normal" adjacent-pair RoPE to llama weights. q·k is
    // unchanged by permuting q and k alike, and V is not permuted, so this
    // matches Hugging Face exactly.
    // Mixtral is a llama with experts: softmax over the experts, the chosen
    // two renormalized.
    DecoderArchitecture{.name = "llama",
                        .rope_style = RopeStyle::AdjacentPairs,
                        .expert_layers = ExpertLayers::WhenPresent,
                        .normalize_expert_weights = true},
    // Qwen2, Qwen2.5: biases on Q, K and V (not on the output projection).
    DecoderArchitecture{.name = "qwen2", .qkv_bias = true},
    // Qwen2-MoE (Qwen1.5-MoE-A2.7B, Qwen2-57B-A14B): Qwen2's attention, a
    // mixture of experts beside a gated shared expert; the chosen weights are
    // the softmax's own (llama.cpp's qwen2moe).
    DecoderArchitecture{
        .name = "qwen2moe", .qkv_bias = true, .expert_layers = ExpertLayers::All, .shared_expert = true},
    // Qwen3 (dense): q/k norms instead of biases.
    DecoderArchitecture{.name = "qwen3", .qk_norm = QkNorm::PerHead},
    // Qwen3-MoE (Qwen3-30B-A3B, 235B-A22B): Qwen3's attention, every
    // feed-forward a mixture of experts whose chosen weights are renormalized
    // (llama.cpp's qwen3moe: no shared expert).
    DecoderArchitecture{
        .name = "qwen3moe",
        .qk_norm = QkNorm::PerHead,
        .expert_layers = ExpertLayers::All,
        .normalize_expert_weights = true},
    // OLMoE (OLMoE-1B-7B): NeoX RoPE, RMS norms over the whole projected q
    // and k, 64 experts of which 8 are chosen, their softmax weights kept as
    // they are (norm_topk_prob false).
    DecoderArchitecture{.name = "olmoe", .qk_norm = QkNorm::Whole, .expert_layers = ExpertLayers::All},
    // Gemma 3 (its text model): q/k norms, norms after attention and the
    // feed-forward too, GeGLU, embeddings scaled by sqrt(n_embd), and five
    // local layers (a sliding window, RoPE base 10000) to each global one.
    // Its RMS norms scale by (1 + weight); convert_hf_to_gguf stores the
    // 1 + weight, so they are plain RMS norms here.
    DecoderArchitecture{.name = "gemma3",
                        .qk_norm = QkNorm::PerHead,
                        .post_norms = true,
                        .scaled_embeddings = true,
                        .ffn_activation = GatedActivation::GeluTanh,
                        .local_layer_period = 6,
                        .local_rope_freq_base = 10000.f,
                        .attention_scale = AttentionScale::Gemma3QueryPreAttnScalar},
};

}  // namespace

const DecoderArchitecture* find_decoder_architecture(std::string_view name) {
    for (const DecoderArchitecture& architecture : kArchitectures)
        if (architecture.name == name)
            return &architecture;
    return nullptr;
}

std::string decoder_architecture_names() {
    std::string names;
    for (const DecoderArchitecture& architecture : kArchitectures)
        names += (names.empty() ? "" : ", ") + std::string(architecture.name);
    return names;
}

}  // namespace folio::engine
