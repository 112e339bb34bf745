// The forward pass of every dense decoder (llm_decoder.h): pre-norm blocks
// of grouped-query attention with RoPE and a gated feed-forward, RMS norms,
// an output head that may be tied to the embeddings. What varies between
// architectures is data in DecoderArchitecture, read once at load time.

#include "engine/llm_decoder.h"

#include <algorithm>
#include <cmath>
#include <numeric>
#include <string>
#include <utility>
#include <vector>

#include "engine/decoder_ops.h"
#include "engine/model_loader.h"

namespace folio::engine {

namespace {

struct DecoderLayer {
    std::vector<float> attn_norm;            // (n_embd)
    WeightMatrix wq;                         // (n_heads * head_dim, n_embd)
    WeightMatrix wk;                         // (n_kv_heads * head_dim, n_embd)
    WeightMatrix wv;                         // (n_kv_heads * v_head_dim, n_embd)
    std::vector<float> bq;                   // (n_heads * head_dim); empty without qkv_bias
    std::vector<float> bk;                   // (n_kv_heads * head_dim); empty without qkv_bias
    std::vector<float> bv;                   // (n_kv_heads * v_head_dim); empty without qkv_bias
    std::vector<float> q_norm;               // (head_dim) per head, (q width) whole; empty without qk_norm
    std::vector<float> k_norm;               // (head_dim) per head, (k width) whole; empty without qk_norm
    WeightMatrix wo;                         // (n_embd, n_heads * v_head_dim)
    std::vector<float> post_attention_norm;  // (n_embd); empty without post_norms
    std::vector<float> ffn_norm;             // (n_embd)
    WeightMatrix ffn_gate;                   // (n_ff, n_embd); unset for a mixture of experts
    WeightMatrix ffn_up;                     // (n_ff, n_embd)
    WeightMatrix ffn_down;                   // (n_embd, n_ff)
    ExpertFfn experts;                       // a mixture of experts: the experts instead
    std::vector<float> post_ffw_norm;        // (n_embd); empty without post_norms
    RopeParameters rope;                     // local layers turn by their own base
    AttentionShape attention;                // window > 0 on local layers
};

float attention_scale(const DecoderArchitecture& architecture, const ModelConfig& c) {
    constexpr int kGemma3_27bLayers = 62;
    const int query_pre_attn_scalar =
        architecture.attention_scale == AttentionScale::Gemma3QueryPreAttnScalar && c.n_layers == kGemma3_27bLayers
            ? c.n_embd / c.n_heads
            : c.head_dim;
    return 1.f / std::sqrt(static_cast<float>(query_pre_attn_scalar));
}

class DecoderModel final : public Model {
public:
    DecoderModel(const GgufFile& file, const DecoderArchitecture& architecture)
        : Model(file, read_model_config(file)), architecture_(architecture) {
        const ModelConfig& c = config_;
        if (c.final_logit_softcapping < 0.f || !std::isfinite(c.final_logit_softcapping))
            throw ModelError(file_.source() + ": final_logit_softcapping = " +
                             std::to_string(c.final_logit_softcapping) + " is out of range");
        const float local_rope_freq_base =
            file_.get_f32(c.architecture + ".rope.freq_base_swa", architecture.local_rope_freq_base);
        const float scale = attention_scale(architecture, c);
        // DeepSeek's mscale_all_dim rescales the attention scores (llm_deepseek2.cpp).
        if (c.rope_scaling.yarn_log_multiplier != 0.f)
            throw ModelError(file_.source() + ": YaRN with rope.scaling.yarn_log_multiplier is not supported for " +
                             c.architecture);

        token_embd_ = weight_matrix(file_, "token_embd.weight", c.n_vocab, c.n_embd);
        int n_expert = 0, n_expert_used = 0, n_ff_expert = 0, n_ff_shared = 0;
        has_experts_ = architecture.expert_layers == ExpertLayers::All ||
                       (architecture.expert_layers == ExpertLayers::WhenPresent &&
                        file_.find_u32(c.architecture + ".expert_count").value_or(0) > 0);
        if (has_experts_) {
            const auto count = [&](const char* key, std::uint32_t max) {
                return metadata_count(file_, c.architecture + key, 1, max);
            };
            n_expert = count(".expert_count", 1u << 12);
            n_expert_used = count(".expert_used_count", static_cast<std::uint32_t>(n_expert));
            // Mixtral's experts are as wide as a dense layer's feed-forward.
            n_ff_expert = file_.find_u32(c.architecture + ".expert_feed_forward_length")
                              ? count(".expert_feed_forward_length", 1u << 20)
                              : c.n_ff;
            if (architecture.shared_expert) n_ff_shared = count(".expert_shared_feed_forward_length", 1u << 20);
        }
        const std::int64_t q_width = static_cast<std::int64_t>(c.n_heads) * c.head_dim;
        const std::int64_t k_width = static_cast<std::int64_t>(c.n_kv_heads) * c.head_dim;
        const std::int64_t v_width = static_cast<std::int64_t>(c.n_kv_heads) * c.v_head_dim;
        const std::int64_t attn_width = static_cast<std::int64_t>(c.n_heads) * c.v_head_dim;
        for (int il = 0; il < c.n_layers; ++il) {
            const std::string blk = "blk." + std::to_string(il) + ".";
            auto vector = [&](const char* name, std::int64_t n) { return weight_vector(file_, blk + name, n); };
            auto matrix = [&](const char* name, std::int64_t rows, std::int64_t cols) {
                return weight_matrix(file_, blk + name, rows, cols);
            };
            DecoderLayer layer;
            layer.attn_norm = vector("attn_norm.weight", c.n_embd);
            layer.wq = matrix("attn_q.weight", q_width, c.n_embd);
            layer.wk = matrix("attn_k.weight", k_width, c.n_embd);
            layer.wv = matrix("attn_v.weight", v_width, c.n_embd);
            if (architecture.qkv_bias) {
                layer.bq = vector("attn_q.bias", q_width);
                layer.bk = vector("attn_k.bias", k_width);
                layer.bv = vector("attn_v.bias", v_width);
            }
            if (architecture.qk_norm != QkNorm::None) {
                const bool whole = architecture.qk_norm == QkNorm::Whole;
                layer.q_norm = vector("attn_q_norm.weight", whole ? q_width : c.head_dim);
                layer.k_norm = vector("attn_k_norm.weight", whole ? k_width : c.head_dim);
            }
            layer.wo = matrix("attn_output.weight", c.n_embd, attn_width);
            layer.ffn_norm = vector("ffn_norm.weight", c.n_embd);
            for (const WeightMatrix* weight : {&layer.wq, &layer.wk, &layer.wv, &layer.wo}) allow_lora(*weight);
            if (has_experts_) {
                auto experts = [&](const char* name, std::int64_t rows, std::int64_t cols) {
                    return expert_matrices(file_, blk + name, n_expert, rows, cols);
                };
                GateUpExperts gate_up = gate_up_experts(file_, blk, n_expert, n_ff_expert, c.n_embd);
                layer.experts = ExpertFfn{matrix("ffn_gate_inp.weight", n_expert, c.n_embd), std::move(gate_up.gate),
                                          std::move(gate_up.up),
                                          experts("ffn_down_exps.weight", c.n_embd, n_ff_expert), n_expert_used,
                                          architecture.normalize_expert_weights};
                for (const std::vector<WeightMatrix>* kind : {&layer.experts.gate, &layer.experts.up, &layer.experts.down})
                    allow_lora(*kind);
                if (architecture.shared_expert) {
                    layer.experts.shared_gate = matrix("ffn_gate_shexp.weight", n_ff_shared, c.n_embd);
                    layer.experts.shared_up = matrix("ffn_up_shexp.weight", n_ff_shared, c.n_embd);
                    layer.experts.shared_down = matrix("ffn_down_shexp.weight", c.n_embd, n_ff_shared);
                    layer.experts.shared_scale = vector("ffn_gate_inp_shexp.weight", c.n_embd);
                    for (const WeightMatrix* weight :
                         {&layer.experts.shared_gate, &layer.experts.shared_up, &layer.experts.shared_down})
                        allow_lora(*weight);
                }
            } else {
                layer.ffn_gate = matrix("ffn_gate.weight", c.n_ff, c.n_embd);
                layer.ffn_up = matrix("ffn_up.weight", c.n_ff, c.n_embd);
                layer.ffn_down = matrix("ffn_down.weight", c.n_embd, c.n_ff);
                for (const WeightMatrix* weight : {&layer.ffn_gate, &layer.ffn_up, &layer.ffn_down}) allow_lora(*weight);
            }
            if (architecture.post_norms) {
                layer.post_attention_norm = vector("post_attention_norm.weight", c.n_embd);
                layer.post_ffw_norm = vector("post_ffw_norm.weight", c.n_embd);
            }
            const bool local = architecture.local_layer_period > 0 && c.sliding_window > 0 &&
                               (il + 1) % architecture.local_layer_period != 0;
            // Local layers keep their own base unscaled (Gemma 3's rope_local_base_freq).
            layer.rope = RopeParameters{c.head_dim, c.n_rot, local ? local_rope_freq_base : c.rope_freq_base,
                                        architecture.rope_style, local ? RopeScaling{} : c.rope_scaling};
            layer.attention = AttentionShape{c.n_heads, c.n_kv_heads, c.head_dim, c.v_head_dim, scale};
            layer.attention.window = local ? c.sliding_window : 0;
            layers_.push_back(std::move(layer));
        }
        if (has_experts_) {
            std::vector<int> expert_layers(static_cast<std::size_t>(c.n_layers));
            std::iota(expert_layers.begin(), expert_layers.end(), 0);
            count_expert_usage(std::move(expert_layers), n_expert);
        }
        output_norm_ = weight_vector(file_, "output_norm.weight", c.n_embd);
        // Without an output tensor the head is tied to the embeddings
        // (tie_word_embeddings: SmolLM2, Qwen2.5-0.5B, Gemma).
        output_ = find_weight_matrix(file_, "output.weight", c.n_vocab, c.n_embd).value_or(token_embd_);
    }

private:
    std::vector<float> run(ThreadPool& pool, std::span<const std::int32_t> tokens,
                           std::span<const std::int32_t> positions, KvCache& cache, LogitRows rows,
                           const LoraSet& loras) override {
        group_matrices_on_first_cpu_pass(pool, [&] {
            std::vector<WeightMatrix*> matrices{&output_};
            for (DecoderLayer& layer : layers_) {
                matrices.insert(matrices.end(), {&layer.wq, &layer.wk, &layer.wv, &layer.wo});
                if (!has_experts_) matrices.insert(matrices.end(), {&layer.ffn_gate, &layer.ffn_up, &layer.ffn_down});
            }
            return matrices;
        });
        return backend_.run(pool, [&](auto& ops) { return forward_pass(ops, tokens, positions, cache, rows, loras); });
    }

#ifdef FOLIO_USE_CUDA
    int place_on_gpu(int gpu, const GpuPlacement& placement) override {
        auto ops = std::make_unique<CudaDecoderOps>(gpu);
        std::vector<const ExpertFfn*> expert_layers;
        if (has_experts_)
            for (const DecoderLayer& layer : layers_) expert_layers.push_back(&layer.experts);
        const int host_layers = expert_layers_on_host(expert_layers, ops->free_bytes(), placement);
        ops->upload(token_embd_);
        for (const DecoderLayer& layer : layers_) {
            for (const WeightMatrix* weight : {&layer.wq, &layer.wk, &layer.wv, &layer.wo}) ops->upload(*weight);
            if (!has_experts_)
                for (const WeightMatrix* weight : {&layer.ffn_gate, &layer.ffn_up, &layer.ffn_down}) ops->upload(*weight);
            for (const std::vector<float>* vector :
                 {&layer.attn_norm, &layer.bq, &layer.bk, &layer.bv, &layer.q_norm, &layer.k_norm,
                  &layer.post_attention_norm, &layer.ffn_norm, &layer.post_ffw_norm})
                ops->upload(*vector);
        }
        ops->place_experts(expert_layers, host_layers);
        ops->upload(output_norm_);
        ops->upload(output_);
        backend_.hold(std::move(ops));
        return host_layers;
    }

    void release_gpu() override { backend_.release(); }
#endif

    // The forward pass, one description for every backend: Ops is
    // CpuDecoderOps or CudaDecoderOps (decoder_ops.h).
    template <class Ops>
    std::vector<float> forward_pass(Ops& ops, std::span<const std::int32_t> tokens,
                                    std::span<const std::int32_t> positions, KvCache& cache, LogitRows rows,
                                    const LoraSet& loras) {
        const ModelConfig& c = config_;
        const auto n_tokens = static_cast<std::int64_t>(tokens.size());
        const std::int64_t q_width = static_cast<std::int64_t>(c.n_heads) * c.head_dim;
        const std::int64_t k_width = static_cast<std::int64_t>(c.n_kv_heads) * c.head_dim;
        const std::int64_t v_width = static_cast<std::int64_t>(c.n_kv_heads) * c.v_head_dim;
        const std::int64_t attn_width = static_cast<std::int64_t>(c.n_heads) * c.v_head_dim;
        ops.begin(tokens, positions, cache, loras);
        enum Slot { kResidual, kNormed, kQ, kK, kV, kAttention, kBlockOut, kLogits };

        float* residual = ops.buffer(kResidual, n_tokens * c.n_embd);     // (n_tokens, n_embd)
        float* normed = ops.buffer(kNormed, n_tokens * c.n_embd);         // (n_tokens, n_embd)
        float* q = ops.buffer(kQ, n_tokens * q_width);                    // (n_tokens, n_heads, head_dim)
        float* k = ops.buffer(kK, n_tokens * k_width);                    // (n_tokens, n_kv_heads, head_dim)
        float* v = ops.buffer(kV, n_tokens * v_width);                    // (n_tokens, n_kv_heads, v_head_dim)
        float* attn = ops.buffer(kAttention, n_tokens * attn_width);      // (n_tokens, n_heads, v_head_dim)
        float* block_out = ops.buffer(kBlockOut, n_tokens * c.n_embd);    // (n_tokens, n_embd)

        ops.embed(token_embd_, residual);
        if (architecture_.scaled_embeddings)
            ops.scale(residual, n_tokens * c.n_embd, std::sqrt(static_cast<float>(c.n_embd)));

        for (int il = 0; il < c.n_layers; ++il) {
            const DecoderLayer& layer = layers_[static_cast<std::size_t>(il)];

            ops.rms_norm(residual, layer.attn_norm, n_tokens, c.n_embd, c.rms_norm_eps, normed);
            ops.project(normed, n_tokens, c.n_embd, {{&layer.wq, q}, {&layer.wk, k}, {&layer.wv, v}}, loras);
            if (architecture_.qkv_bias) {
                ops.add_bias(q, layer.bq, n_tokens, q_width);
                ops.add_bias(k, layer.bk, n_tokens, k_width);
                ops.add_bias(v, layer.bv, n_tokens, v_width);
            }
            if (architecture_.qk_norm == QkNorm::PerHead) {
                // Each head is a row of head_dim.
                ops.rms_norm(q, layer.q_norm, n_tokens * c.n_heads, c.head_dim, c.rms_norm_eps, q);
                ops.rms_norm(k, layer.k_norm, n_tokens * c.n_kv_heads, c.head_dim, c.rms_norm_eps, k);
            } else if (architecture_.qk_norm == QkNorm::Whole) {
                ops.rms_norm(q, layer.q_norm, n_tokens, q_width, c.rms_norm_eps, q);
                ops.rms_norm(k, layer.k_norm, n_tokens, k_width, c.rms_norm_eps, k);
            }
            ops.rope(q, c.n_heads, layer.rope);
            ops.rope(k, c.n_kv_heads, layer.rope);
            ops.attend(cache, il, k, v, q, layer.attention, attn);
            ops.project(attn, n_tokens, attn_width, {{&layer.wo, block_out}}, loras);
            if (architecture_.post_norms)
                ops.rms_norm(block_out, layer.post_attention_norm, n_tokens, c.n_embd, c.rms_norm_eps, block_out);
            ops.add(residual, block_out, n_tokens * c.n_embd);

            ops.rms_norm(residual, layer.ffn_norm, n_tokens, c.n_embd, c.rms_norm_eps, normed);
            if (has_experts_)
                ops.ffn_experts(layer.experts, architecture_.ffn_activation, normed, n_tokens, block_out,
                                expert_usage_of(il), loras);
            else
                ops.ffn_gated(layer.ffn_gate, layer.ffn_up, layer.ffn_down, architecture_.ffn_activation, normed,
                              n_tokens, block_out, loras);
            if (architecture_.post_norms)
                ops.rms_norm(block_out, layer.post_ffw_norm, n_tokens, c.n_embd, c.rms_norm_eps, block_out);
            ops.add(residual, block_out, n_tokens * c.n_embd);
        }

        // Only the rows whose logits are wanted go through the head.
        const std::int64_t first_row = rows == LogitRows::All ? 0 : n_tokens - 1;
        const std::int64_t n_rows = n_tokens - first_row;
        ops.rms_norm(residual + first_row * c.n_embd, output_norm_, n_rows, c.n_embd, c.rms_norm_eps, normed);
        float* logits = ops.buffer(kLogits, n_rows * c.n_vocab);  // (n_rows, n_vocab)
        ops.project(normed, n_rows, c.n_embd, {{&output_, logits}}, LoraSet{});
        if (c.final_logit_softcapping > 0.f) ops.soft_cap(logits, n_rows * c.n_vocab, c.final_logit_softcapping);
        return ops.to_host(logits, n_rows * c.n_vocab);
    }

    const DecoderArchitecture& architecture_;
    bool has_experts_ = false;  // every layer's feed-forward is a mixture of experts
    WeightMatrix token_embd_;          // (n_vocab, n_embd)
    std::vector<DecoderLayer> layers_;  // n_layers
    std::vector<float> output_norm_;   // (n_embd)
    WeightMatrix output_;              // (n_vocab, n_embd); token_embd_ when tied
#ifdef FOLIO_USE_CUDA
    DecoderBackend backend_;
#endif
};

}  // namespace

std::unique_ptr<Model> load_decoder(const GgufFile& file, const DecoderArchitecture& architecture) {
    return std::make_unique<DecoderModel>(file, architecture);
}

}  // namespace folio::engine
