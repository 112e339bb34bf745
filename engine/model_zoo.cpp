#include "engine/model_zoo.h"

#include <cmath>
#include <functional>
#include <numbers>
#include <numeric>

#include "engine/model.h"
#include "engine/quant.h"

namespace folio::engine {

namespace {

// Hyper-parameters as each model's config.json on the Hugging Face hub gives them.
// clang-format off
constexpr ZooModel kZoo[] = {
    // name               general.name                   family              layers embd   ff     heads kv  head vocab   ctx     rope_theta  eps    tied
    {"smollm2-135m",      "SmolLM2 135M Instruct",       ZooFamily::Llama,   30,    576,   1536,  9,    3,  64,  49152,  8192,   100000.f,   1e-5f, true},
    {"smollm2-360m",      "SmolLM2 360M Instruct",       ZooFamily::Llama,   32,    960,   2560,  15,   5,  64,  49152,  8192,   100000.f,   1e-5f, true},
    {"smollm2-1.7b",      "SmolLM2 1.7B Instruct",       ZooFamily::Llama,   24,    2048,  8192,  32,   32, 64,  49152,  8192,   130000.f,   1e-5f, true},
    {"llama-3.2-1b",      "Llama 3.2 1B Instruct",       ZooFamily::Llama,   16,    2048,  8192,  32,   8,  64,  128256, 131072, 500000.f,   1e-5f, true,  0, {32.f, 1.f, 4.f, 8192}},
    {"llama-3.1-8b",      "Meta Llama 3.1 8B Instruct",  ZooFamily::Llama,   32,    4096,  14336, 32,   8,  128, 128256, 131072, 500000.f,   1e-5f, false, 0, {8.f, 1.f, 4.f, 8192}},
    {"mistral-7b",        "Mistral 7B Instruct v0.3",    ZooFamily::Llama,   32,    4096,  14336, 32,   8,  128, 32768,  32768,  1000000.f,  1e-5f, false},
    {"qwen2.5-0.5b",      "Qwen2.5 0.5B Instruct",       ZooFamily::Qwen2,   24,    896,   4864,  14,   2,  64,  151936, 32768,  1000000.f,  1e-6f, true},
    {"qwen2.5-7b",        "Qwen2.5 7B Instruct",         ZooFamily::Qwen2,   28,    3584,  18944, 28,   4,  128, 152064, 32768,  1000000.f,  1e-6f, false},
    {"qwen3-0.6b",        "Qwen3 0.6B",                  ZooFamily::Qwen3,   28,    1024,  3072,  16,   8,  128, 151936, 40960,  1000000.f,  1e-6f, true},
    {"qwen3-8b",          "Qwen3 8B",                    ZooFamily::Qwen3,   36,    4096,  12288, 32,   8,  128, 151936, 40960,  1000000.f,  1e-6f, false},
    {"qwen3-30b-a3b",     "Qwen3 30B A3B",               ZooFamily::Qwen3Moe, 48,   2048,  6144,  32,   4,  128, 151936, 40960,  1000000.f,  1e-6f, false, 0, {}, 128, 8, 768},
    {"qwen1.5-moe-a2.7b", "Qwen1.5 MoE A2.7B Chat",      ZooFamily::Qwen2Moe, 24,   2048,  5632,  16,   16, 128, 151936, 8192,   1000000.f,  1e-6f, false, 0, {}, 60,  4, 1408, 5632},
    {"olmoe-1b-7b",       "OLMoE 1B 7B 0924 Instruct",   ZooFamily::Olmoe,   16,    2048,  1024,  16,   16, 128, 50304,  4096,   10000.f,    1e-5f, false, 0, {}, 64,  8, 1024},
    {"mixtral-8x7b",      "Mixtral 8x7B Instruct v0.1",  ZooFamily::Llama,   32,    4096,  14336, 32,   8,  128, 32000,  32768,  1000000.f,  1e-5f, false, 0, {}, 8,   2, 14336},
    // head: qk_nope_head_dim + qk_rope_head_dim
    {"deepseek-v2-lite",  "DeepSeek V2 Lite Chat",       ZooFamily::DeepSeek2, 27,  2048,  10944, 16,   16, 192, 102400, 163840, 10000.f,    1e-6f, false, 0, {}, 64,  6, 1408, 0,
     {.kv_lora_rank = 512, .qk_nope_head_dim = 128, .qk_rope_head_dim = 64, .v_head_dim = 128, .n_shared_experts = 2,
      .first_k_dense_replace = 1, .yarn_factor = 40.f, .yarn_original_context = 4096, .yarn_mscale_all_dim = 0.707f}},
    {"gemma3-270m",       "Gemma 3 270m",                ZooFamily::Gemma3,  18,    640,   2048,  4,    1,  256, 262144, 32768,  1000000.f,  1e-6f, true,  512},
    {"gemma3-1b",         "Gemma 3 1b",                  ZooFamily::Gemma3,  26,    1152,  6912,  4,    1,  256, 262144, 32768,  1000000.f,  1e-6f, true,  512},
    {"all-minilm-l6-v2",  "all-MiniLM-L6-v2",            ZooFamily::Bert,    6,     384,   1536,  12,   12, 32,  30522,  512,    0.f,        1e-12f, true},
};
// clang-format on

const char* architecture_of(ZooFamily family) {
    switch (family) {
    case ZooFamily::Llama: return "llama";
    case ZooFamily::Qwen2: return "qwen2";
    case ZooFamily::Qwen3: return "qwen3";
    case ZooFamily::Qwen3Moe: return "qwen3moe";
    case ZooFamily::Qwen2Moe: return "qwen2moe";
    case ZooFamily::Olmoe: return "olmoe";
    case ZooFamily::DeepSeek2: return "deepseek2";
    case ZooFamily::Gemma3: return "gemma3";
    case ZooFamily::Bert: return "bert";
    }
    return "llama";
}

// Appends metadata and tensors to a layout in llama.cpp's order.
class LayoutBuilder {
public:
    explicit LayoutBuilder(ModelLayout& layout) : layout_(layout) {}

    void add_string(std::string key, std::string_view value) {
        layout_.metadata.push_back({std::move(key), {GgufValueType::String, value}});
    }
    void add_u32(std::string key, std::uint32_t value) {
        layout_.metadata.push_back({std::move(key), {GgufValueType::U32, std::uint64_t{value}}});
    }
    void add_f32(std::string key, float value) {
        layout_.metadata.push_back({std::move(key), {GgufValueType::F32, double{value}}});
    }
    void add_bool(std::string key, bool value) {
        layout_.metadata.push_back({std::move(key), {GgufValueType::Bool, value}});
    }

    void weight(std::string name, std::int64_t rows, std::int64_t cols) {
        layout_.tensors.push_back({std::move(name), {cols, rows}, TensorInit::Weight, {}});
    }
    // n_expert matrices (rows, cols) stacked: ggml shape (cols, rows, n_expert).
    void experts(std::string name, std::int64_t n_expert, std::int64_t rows, std::int64_t cols) {
        layout_.tensors.push_back({std::move(name), {cols, rows, n_expert}, TensorInit::Weight, {}});
    }
    // A weight stored as a vector (Qwen2-MoE's shared-expert gate, (1, n) in Hugging Face).
    void weight_vector(std::string name, std::int64_t n) {
        layout_.tensors.push_back({std::move(name), {n}, TensorInit::Weight, {}});
    }
    void norm(std::string name, std::int64_t n) { layout_.tensors.push_back({std::move(name), {n}, TensorInit::Norm, {}}); }
    void bias(std::string name, std::int64_t n) { layout_.tensors.push_back({std::move(name), {n}, TensorInit::Bias, {}}); }
    void values(std::string name, std::vector<float> values) {
        const auto n = static_cast<std::int64_t>(values.size());
        layout_.tensors.push_back({std::move(name), {n}, TensorInit::Values, std::move(values)});
    }

private:
    ModelLayout& layout_;
};

// convert_hf_to_gguf.py's LlamaModel.generate_extra_tensors: the factor each
// RoPE frequency's angle is divided by.
std::vector<float> llama3_rope_factors(const ZooModel& m) {
    const Llama3RopeScaling& s = m.rope_scaling;
    const double low_freq_wavelen = s.original_context / s.low_freq_factor;
    const double high_freq_wavelen = s.original_context / s.high_freq_factor;
    std::vector<float> factors;
    for (int i = 0; i < m.head_dim; i += 2) {
        const double freq = 1.0 / std::pow(static_cast<double>(m.rope_freq_base), static_cast<double>(i) / m.head_dim);
        const double wavelen = 2 * std::numbers::pi / freq;
        if (wavelen < high_freq_wavelen) {
            factors.push_back(1.f);
        } else if (wavelen > low_freq_wavelen) {
            factors.push_back(s.factor);
        } else {
            const double smooth =
                (s.original_context / wavelen - s.low_freq_factor) / (s.high_freq_factor - s.low_freq_factor);
            factors.push_back(static_cast<float>(1.0 / ((1 - smooth) / s.factor + smooth)));
        }
    }
    return factors;
}

void add_hyper_parameters(LayoutBuilder& b, const ZooModel& m, const std::string& arch) {
    b.add_u32(arch + ".context_length", static_cast<std::uint32_t>(m.n_ctx));
    b.add_u32(arch + ".embedding_length", static_cast<std::uint32_t>(m.n_embd));
    b.add_u32(arch + ".block_count", static_cast<std::uint32_t>(m.n_layers));
    b.add_u32(arch + ".feed_forward_length", static_cast<std::uint32_t>(m.n_ff));
    b.add_u32(arch + ".attention.head_count", static_cast<std::uint32_t>(m.n_heads));
    if (m.family == ZooFamily::Bert) {
        b.add_f32(arch + ".attention.layer_norm_epsilon", m.norm_eps);
        b.add_bool(arch + ".attention.causal", false);
        b.add_u32(arch + ".pooling_type", 1);  // mean, as sentence-transformers pools MiniLM
        b.add_u32("tokenizer.ggml.token_type_count", 2);
        return;
    }
    b.add_u32(arch + ".attention.head_count_kv", static_cast<std::uint32_t>(m.n_kv_heads));
    b.add_f32(arch + ".rope.freq_base", m.rope_freq_base);
    b.add_f32(arch + ".attention.layer_norm_rms_epsilon", m.norm_eps);
    // The converter writes head sizes only where config.json names head_dim.
    const bool explicit_head_dim = m.family == ZooFamily::Qwen3 || m.family == ZooFamily::Qwen3Moe ||
                                   m.family == ZooFamily::Gemma3 ||
                                   m.head_dim * m.n_heads != m.n_embd || m.rope_scaling.factor > 0;
    if (explicit_head_dim) {
        b.add_u32(arch + ".attention.key_length", static_cast<std::uint32_t>(m.head_dim));
        b.add_u32(arch + ".attention.value_length", static_cast<std::uint32_t>(m.head_dim));
    }
    if (m.family == ZooFamily::Llama) {
        b.add_u32(arch + ".vocab_size", static_cast<std::uint32_t>(m.n_vocab));
        b.add_u32(arch + ".rope.dimension_count", static_cast<std::uint32_t>(m.head_dim));
    }
    if (m.sliding_window > 0)
        b.add_u32(arch + ".attention.sliding_window", static_cast<std::uint32_t>(m.sliding_window));
    if (m.n_expert > 0) {
        b.add_u32(arch + ".expert_count", static_cast<std::uint32_t>(m.n_expert));
        b.add_u32(arch + ".expert_used_count", static_cast<std::uint32_t>(m.n_expert_used));
        // Mixtral's and OLMoE's experts are feed_forward_length wide, and
        // their converters write no expert width.
        if (m.family == ZooFamily::Qwen3Moe || m.family == ZooFamily::Qwen2Moe)
            b.add_u32(arch + ".expert_feed_forward_length", static_cast<std::uint32_t>(m.n_ff_expert));
        if (m.family == ZooFamily::Qwen2Moe)
            b.add_u32(arch + ".expert_shared_feed_forward_length", static_cast<std::uint32_t>(m.n_ff_shared));
    }
}

// convert_hf_to_gguf's DeepseekV2Model.set_gguf_parameters, as it writes
// the latent cache: one kv head of kv_lora_rank + rope values, the per-head
// sizes in *_mla.
void add_deepseek2_hyper_parameters(LayoutBuilder& b, const ZooModel& m, const std::string& arch) {
    const ZooLatentAttention& a = m.mla;
    b.add_u32(arch + ".context_length", static_cast<std::uint32_t>(m.n_ctx));
    b.add_u32(arch + ".embedding_length", static_cast<std::uint32_t>(m.n_embd));
    b.add_u32(arch + ".block_count", static_cast<std::uint32_t>(m.n_layers));
    b.add_u32(arch + ".feed_forward_length", static_cast<std::uint32_t>(m.n_ff));
    b.add_u32(arch + ".attention.head_count", static_cast<std::uint32_t>(m.n_heads));
    b.add_u32(arch + ".attention.head_count_kv", 1);
    b.add_f32(arch + ".rope.freq_base", m.rope_freq_base);
    b.add_f32(arch + ".attention.layer_norm_rms_epsilon", m.norm_eps);
    b.add_u32(arch + ".expert_used_count", static_cast<std::uint32_t>(m.n_expert_used));
    b.add_u32(arch + ".leading_dense_block_count", static_cast<std::uint32_t>(a.first_k_dense_replace));
    b.add_u32(arch + ".vocab_size", static_cast<std::uint32_t>(m.n_vocab));
    if (a.q_lora_rank > 0) b.add_u32(arch + ".attention.q_lora_rank", static_cast<std::uint32_t>(a.q_lora_rank));
    b.add_u32(arch + ".attention.kv_lora_rank", static_cast<std::uint32_t>(a.kv_lora_rank));
    b.add_u32(arch + ".attention.key_length", static_cast<std::uint32_t>(a.kv_lora_rank + a.qk_rope_head_dim));
    b.add_u32(arch + ".attention.value_length", static_cast<std::uint32_t>(a.kv_lora_rank));
    b.add_u32(arch + ".attention.key_length_mla", static_cast<std::uint32_t>(a.qk_nope_head_dim + a.qk_rope_head_dim));
    b.add_u32(arch + ".attention.value_length_mla", static_cast<std::uint32_t>(a.v_head_dim));
    b.add_u32(arch + ".expert_feed_forward_length", static_cast<std::uint32_t>(m.n_ff_expert));
    b.add_u32(arch + ".expert_count", static_cast<std::uint32_t>(m.n_expert));
    b.add_u32(arch + ".expert_shared_count", static_cast<std::uint32_t>(a.n_shared_experts));
    b.add_f32(arch + ".expert_weights_scale", a.routed_scaling_factor);
    b.add_bool(arch + ".expert_weights_norm", false);
    b.add_u32(arch + ".expert_gating_func", 1);  // softmax
    b.add_u32(arch + ".rope.dimension_count", static_cast<std::uint32_t>(a.qk_rope_head_dim));
    if (a.yarn_factor > 0) {
        b.add_string(arch + ".rope.scaling.type", "yarn");
        b.add_f32(arch + ".rope.scaling.factor", a.yarn_factor);
        b.add_u32(arch + ".rope.scaling.original_context_length", static_cast<std::uint32_t>(a.yarn_original_context));
        b.add_f32(arch + ".rope.scaling.yarn_log_multiplier", 0.1f * a.yarn_mscale_all_dim);
    }
}

void add_deepseek2_tensors(LayoutBuilder& b, const ZooModel& m) {
    const ZooLatentAttention& a = m.mla;
    const std::int64_t q_width = static_cast<std::int64_t>(m.n_heads) * (a.qk_nope_head_dim + a.qk_rope_head_dim);
    const std::int64_t n_ff_shared = static_cast<std::int64_t>(m.n_ff_expert) * a.n_shared_experts;
    b.weight("token_embd.weight", m.n_vocab, m.n_embd);
    for (int i = 0; i < m.n_layers; ++i) {
        const std::string blk = "blk." + std::to_string(i) + ".";
        b.norm(blk + "attn_norm.weight", m.n_embd);
        if (a.q_lora_rank > 0) {
            b.weight(blk + "attn_q_a.weight", a.q_lora_rank, m.n_embd);
            b.norm(blk + "attn_q_a_norm.weight", a.q_lora_rank);
            b.weight(blk + "attn_q_b.weight", q_width, a.q_lora_rank);
        } else {
            b.weight(blk + "attn_q.weight", q_width, m.n_embd);
        }
        b.weight(blk + "attn_kv_a_mqa.weight", a.kv_lora_rank + a.qk_rope_head_dim, m.n_embd);
        b.norm(blk + "attn_kv_a_norm.weight", a.kv_lora_rank);
        // Per head: K_b transposed (kv_lora_rank, nope) and V_b (v, kv_lora_rank).
        b.experts(blk + "attn_k_b.weight", m.n_heads, a.kv_lora_rank, a.qk_nope_head_dim);
        b.experts(blk + "attn_v_b.weight", m.n_heads, a.v_head_dim, a.kv_lora_rank);
        b.weight(blk + "attn_output.weight", m.n_embd, static_cast<std::int64_t>(m.n_heads) * a.v_head_dim);
        b.norm(blk + "ffn_norm.weight", m.n_embd);
        if (i < a.first_k_dense_replace) {
            b.weight(blk + "ffn_gate.weight", m.n_ff, m.n_embd);
            b.weight(blk + "ffn_up.weight", m.n_ff, m.n_embd);
            b.weight(blk + "ffn_down.weight", m.n_embd, m.n_ff);
            continue;
        }
        b.weight(blk + "ffn_gate_inp.weight", m.n_expert, m.n_embd);
        b.experts(blk + "ffn_gate_exps.weight", m.n_expert, m.n_ff_expert, m.n_embd);
        b.experts(blk + "ffn_up_exps.weight", m.n_expert, m.n_ff_expert, m.n_embd);
        b.experts(blk + "ffn_down_exps.weight", m.n_expert, m.n_embd, m.n_ff_expert);
        b.weight(blk + "ffn_gate_shexp.weight", n_ff_shared, m.n_embd);
        b.weight(blk + "ffn_up_shexp.weight", n_ff_shared, m.n_embd);
        b.weight(blk + "ffn_down_shexp.weight", m.n_embd, n_ff_shared);
    }
    b.norm("output_norm.weight", m.n_embd);
    b.weight("output.weight", m.n_vocab, m.n_embd);
}

// Decoders: llama (Mixtral with experts), qwen2, qwen3, qwen3moe, qwen2moe, olmoe, gemma3.
void add_decoder_tensors(LayoutBuilder& b, const ZooModel& m) {
    const std::int64_t q_width = static_cast<std::int64_t>(m.n_heads) * m.head_dim;
    const std::int64_t kv_width = static_cast<std::int64_t>(m.n_kv_heads) * m.head_dim;
    b.weight("token_embd.weight", m.n_vocab, m.n_embd);
    if (m.rope_scaling.factor > 0)
        b.values("rope_freqs.weight", llama3_rope_factors(m));
    for (int i = 0; i < m.n_layers; ++i) {
        const std::string blk = "blk." + std::to_string(i) + ".";
        b.norm(blk + "attn_norm.weight", m.n_embd);
        b.weight(blk + "attn_q.weight", q_width, m.n_embd);
        b.weight(blk + "attn_k.weight", kv_width, m.n_embd);
        b.weight(blk + "attn_v.weight", kv_width, m.n_embd);
        if (m.family == ZooFamily::Qwen2 || m.family == ZooFamily::Qwen2Moe) {
            b.bias(blk + "attn_q.bias", q_width);
            b.bias(blk + "attn_k.bias", kv_width);
            b.bias(blk + "attn_v.bias", kv_width);
        }
        if (m.family == ZooFamily::Qwen3 || m.family == ZooFamily::Qwen3Moe || m.family == ZooFamily::Gemma3) {
            b.norm(blk + "attn_q_norm.weight", m.head_dim);
            b.norm(blk + "attn_k_norm.weight", m.head_dim);
        }
        if (m.family == ZooFamily::Olmoe) {
            b.norm(blk + "attn_q_norm.weight", q_width);
            b.norm(blk + "attn_k_norm.weight", kv_width);
        }
        b.weight(blk + "attn_output.weight", m.n_embd, q_width);
        if (m.family == ZooFamily::Gemma3)
            b.norm(blk + "post_attention_norm.weight", m.n_embd);
        b.norm(blk + "ffn_norm.weight", m.n_embd);
        if (m.n_expert > 0) {
            b.weight(blk + "ffn_gate_inp.weight", m.n_expert, m.n_embd);
            b.experts(blk + "ffn_gate_exps.weight", m.n_expert, m.n_ff_expert, m.n_embd);
            b.experts(blk + "ffn_up_exps.weight", m.n_expert, m.n_ff_expert, m.n_embd);
            b.experts(blk + "ffn_down_exps.weight", m.n_expert, m.n_embd, m.n_ff_expert);
            if (m.family == ZooFamily::Qwen2Moe) {
                b.weight_vector(blk + "ffn_gate_inp_shexp.weight", m.n_embd);
                b.weight(blk + "ffn_gate_shexp.weight", m.n_ff_shared, m.n_embd);
                b.weight(blk + "ffn_up_shexp.weight", m.n_ff_shared, m.n_embd);
                b.weight(blk + "ffn_down_shexp.weight", m.n_embd, m.n_ff_shared);
            }
        } else {
            b.weight(blk + "ffn_gate.weight", m.n_ff, m.n_embd);
            b.weight(blk + "ffn_up.weight", m.n_ff, m.n_embd);
            b.weight(blk + "ffn_down.weight", m.n_embd, m.n_ff);
        }
        if (m.family == ZooFamily::Gemma3)
            b.norm(blk + "post_ffw_norm.weight", m.n_embd);
    }
    b.norm("output_norm.weight", m.n_embd);
    if (!m.tied_embeddings)
        b.weight("output.weight", m.n_vocab, m.n_embd);
}

void add_bert_tensors(LayoutBuilder& b, const ZooModel& m) {
    b.weight("token_embd.weight", m.n_vocab, m.n_embd);
    b.weight("token_types.weight", 2, m.n_embd);
    b.weight("position_embd.weight", m.n_ctx, m.n_embd);
    b.norm("token_embd_norm.weight", m.n_embd);
    b.bias("token_embd_norm.bias", m.n_embd);
    auto linear = [&](const std::string& name, std::int64_t n_out, std::int64_t n_in) {
        b.weight(name + ".weight", n_out, n_in);
        b.bias(name + ".bias", n_out);
    };
    for (int i = 0; i < m.n_layers; ++i) {
        const std::string blk = "blk." + std::to_string(i) + ".";
        linear(blk + "attn_q", m.n_embd, m.n_embd);
        linear(blk + "attn_k", m.n_embd, m.n_embd);
        linear(blk + "attn_v", m.n_embd, m.n_embd);
        linear(blk + "attn_output", m.n_embd, m.n_embd);
        b.norm(blk + "attn_output_norm.weight", m.n_embd);
        b.bias(blk + "attn_output_norm.bias", m.n_embd);
        linear(blk + "ffn_up", m.n_ff, m.n_embd);
        linear(blk + "ffn_down", m.n_embd, m.n_ff);
        b.norm(blk + "layer_output_norm.weight", m.n_embd);
        b.bias(blk + "layer_output_norm.bias", m.n_embd);
    }
}

std::string known_names() {
    std::string names;
    for (const ZooModel& model : kZoo)
        names += (names.empty() ? "" : ", ") + std::string(model.name);
    return names;
}

}  // namespace

int tensor_block_index(std::string_view name) {
    if (!name.starts_with("blk."))
        return -1;
    int index = 0;
    std::size_t i = 4;
    for (; i < name.size() && i < 12 && name[i] >= '0' && name[i] <= '9'; ++i)
        index = index * 10 + (name[i] - '0');
    return i > 4 && i < name.size() && name[i] == '.' ? index : -1;
}

std::int64_t TensorLayout::n_elements() const {
    return std::accumulate(ne.begin(), ne.end(), std::int64_t{1}, std::multiplies<>());
}

std::int64_t ModelLayout::n_elements() const {
    std::int64_t total = 0;
    for (const TensorLayout& tensor : tensors)
        total += tensor.n_elements();
    return total;
}

std::span<const ZooModel> zoo_models() {
    return kZoo;
}

ModelLayout zoo_model_layout(const ZooModel& model) {
    ModelLayout layout;
    layout.name = std::string(model.name);
    layout.architecture = architecture_of(model.family);
    LayoutBuilder builder(layout);
    builder.add_string("general.architecture", architecture_of(model.family));
    builder.add_string("general.type", "model");
    builder.add_string("general.name", model.display_name);
    if (model.family == ZooFamily::DeepSeek2) {
        add_deepseek2_hyper_parameters(builder, model, layout.architecture);
        add_deepseek2_tensors(builder, model);
    } else {
        add_hyper_parameters(builder, model, layout.architecture);
        if (model.family == ZooFamily::Bert)
            add_bert_tensors(builder, model);
        else
            add_decoder_tensors(builder, model);
    }
    return layout;
}

ModelLayout zoo_model_layout(std::string_view name) {
    for (const ZooModel& model : kZoo)
        if (model.name == name)
            return zoo_model_layout(model);
    throw ModelError("unknown model '" + std::string(name) + "' (known: " + known_names() + ")");
}

ModelLayout model_layout_of(const GgufFile& file) {
    ModelLayout layout;
    layout.name = file.source();
    layout.architecture = std::string(file.architecture());
    for (const GgufKeyValue& entry : file.metadata())
        if (entry.key != "general.file_type" && entry.key != "general.quantization_version")
            layout.metadata.push_back({std::string(entry.key), entry.value});
    for (const GgufTensor& tensor : file.tensors()) {
        TensorLayout copy{std::string(tensor.name), {tensor.ne.begin(), tensor.ne.begin() + tensor.n_dims},
                          TensorInit::Weight, {}};
        // The file's 1-D tensors are norms' scales and biases (which is which
        // only the name says), and Llama 3's RoPE factors, which are no
        // weights but the hyper-parameters' and are copied.
        if (copy.name == "rope_freqs.weight" && has_quant_kernels(tensor.type)) {
            copy.init = TensorInit::Values;
            copy.values.resize(static_cast<std::size_t>(tensor.n_elements()));
            dequantize_row(tensor.type, tensor.data.data(), copy.values.data(), tensor.n_elements());
        } else if (tensor.n_dims == 1) {
            copy.init = copy.name.ends_with(".bias") ? TensorInit::Bias : TensorInit::Norm;
        }
        layout.tensors.push_back(std::move(copy));
    }
    return layout;
}

}  // namespace folio::engine
