#pragma once
#include <vector>

// RoPE scaling: how a model trained on one context length is stretched to a
// longer one by changing the angle each rotated pair turns per position, as
// llama.cpp reads it from <arch>.rope.scaling.* and rope_freqs.weight
// (convert_hf_to_gguf writes them from Hugging Face's rope_scaling).
//
// Pair i of n_rot/2 turns by position * inv_freq[i] with
//   none     inv_freq[i] = freq_base^(-2i / n_rot)
//   linear   inv_freq[i] / factor                  (positions interpolated)
//   YaRN     a blend of the two by a ramp over the pairs: pairs that turn
//            fast (many turns within original_context) keep their angle,
//            slow ones are interpolated (arXiv:2309.00071), and cos and sin
//            are scaled by an attention factor
// and, in any case, divided by freq_factors[i] when the file has
// rope_freqs.weight (Llama 3.1+'s "llama3" scaling: long wavelengths
// interpolated by factor, short ones kept, a smooth ramp between).

namespace folio::engine {

enum class RopeScalingType { None, Linear, Yarn };

struct RopeScaling {
    RopeScalingType type = RopeScalingType::None;
    float factor = 1.f;                // rope.scaling.factor: linear and YaRN
    int original_context = 0;          // rope.scaling.original_context_length: YaRN
    float yarn_beta_fast = 32.f;       // rope.scaling.yarn_beta_fast: ramp end (turns within original_context)
    float yarn_beta_slow = 1.f;        // rope.scaling.yarn_beta_slow: ramp start
    float yarn_ext_factor = 1.f;       // rope.scaling.yarn_ext_factor: weight of the ramp's extrapolation
    // rope.scaling.yarn_attn_factor (Hugging Face's attention_factor), or the
    // older rope.scaling.attn_factor: what cos and sin are multiplied by.
    // 0: YaRN's default, 1 + 0.1 ln(factor).
    float attention_factor = 0.f;
    // rope.scaling.yarn_log_multiplier (DeepSeek: 0.1 mscale_all_dim), or 0.
    // Not RoPE's business: the architecture scales its attention scores by
    // (1 + m ln factor)² and keeps cos and sin at magnitude 1 (deepseek2).
    float yarn_log_multiplier = 0.f;
    std::vector<float> freq_factors;   // rope_freqs.weight (n_rot / 2), or empty
};

// The angle per position of each of the n_rot / 2 pairs (radians).
std::vector<double> rope_inverse_frequencies(int n_rot, float freq_base, const RopeScaling& scaling);

// What cos and sin are multiplied by: 1 but for YaRN.
double rope_attention_factor(const RopeScaling& scaling);

}  // namespace folio::engine
