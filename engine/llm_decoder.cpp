// The forward pass of every dense decoder (llm_decoder.h): pre-norm blocks
// of grouped-query attention with RoPE and a gated feed-forward, RMS norms,
// an output head that may be tied to the embeddings. What varies between
// architectures is data in DecoderArchitecture, read once at load time.

#include "engine/llm_decoder.h"

#include <cmath>
#include <string>
#include <vector>

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
    std::vector<float> q_norm;               // (head_dim); empty without qk_norm
    std::vector<float> k_norm;               // (head_dim); empty without qk_norm
    WeightMatrix wo;                         // (n_embd, n_heads * v_head_dim)
    std::vector<float> post_attention_norm;  // (n_embd); empty without post_norms
    std::vector<float> ffn_norm;             // (n_embd)
    WeightMatrix ffn_gate;                   // (n_ff, n_embd)
    WeightMatrix ffn_up;                     // (n_ff, n_embd)
    WeightMatrix ffn_down;                   // (n_embd, n_ff)
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

        token_embd_ = weight_matrix(file_, "token_embd.weight", c.n_vocab, c.n_embd);
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
            if (architecture.qk_norm) {
                layer.q_norm = vector("attn_q_norm.weight", c.head_dim);
                layer.k_norm = vector("attn_k_norm.weight", c.head_dim);
            }
            layer.wo = matrix("attn_output.weight", c.n_embd, attn_width);
            layer.ffn_norm = vector("ffn_norm.weight", c.n_embd);
            layer.ffn_gate = matrix("ffn_gate.weight", c.n_ff, c.n_embd);
            layer.ffn_up = matrix("ffn_up.weight", c.n_ff, c.n_embd);
            layer.ffn_down = matrix("ffn_down.weight", c.n_embd, c.n_ff);
            for (const WeightMatrix* weight :
                 {&layer.wq, &layer.wk, &layer.wv, &layer.wo, &layer.ffn_gate, &layer.ffn_up, &layer.ffn_down})
                allow_lora(*weight);
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
        output_norm_ = weight_vector(file_, "output_norm.weight", c.n_embd);
        // Without an output tensor the head is tied to the embeddings
        // (tie_word_embeddings: SmolLM2, Qwen2.5-0.5B, Gemma).
        output_ = find_weight_matrix(file_, "output.weight", c.n_vocab, c.n_embd).value_or(token_embd_);
    }

private:
    std::vector<float> run(ThreadPool& pool, std::span<const std::int32_t> tokens,
                           std::span<const std::int32_t> positions, KvCache& cache, LogitRows rows,
                           const LoraSet& loras) override {
        const ModelConfig& c = config_;
        const auto n_tokens = static_cast<std::int64_t>(tokens.size());
        const std::int64_t q_width = static_cast<std::int64_t>(c.n_heads) * c.head_dim;
        const std::int64_t k_width = static_cast<std::int64_t>(c.n_kv_heads) * c.head_dim;
        const std::int64_t v_width = static_cast<std::int64_t>(c.n_kv_heads) * c.v_head_dim;
        const std::int64_t attn_width = static_cast<std::int64_t>(c.n_heads) * c.v_head_dim;
        auto buffer = [&](std::int64_t width) { return std::vector<float>(static_cast<std::size_t>(n_tokens * width)); };

        std::vector<float> residual = buffer(c.n_embd);  // (n_tokens, n_embd)
        embed_tokens(token_embd_, tokens, residual.data());
        if (architecture_.scaled_embeddings)
            scale_in_place(residual.data(), n_tokens * c.n_embd, std::sqrt(static_cast<float>(c.n_embd)));

        std::vector<float> normed = buffer(c.n_embd);     // (n_tokens, n_embd)
        std::vector<float> q = buffer(q_width);           // (n_tokens, n_heads, head_dim)
        std::vector<float> k = buffer(k_width);           // (n_tokens, n_kv_heads, head_dim)
        std::vector<float> v = buffer(v_width);           // (n_tokens, n_kv_heads, v_head_dim)
        std::vector<float> attn = buffer(attn_width);     // (n_tokens, n_heads, v_head_dim)
        std::vector<float> block_out = buffer(c.n_embd);  // (n_tokens, n_embd)

        for (int il = 0; il < c.n_layers; ++il) {
            const DecoderLayer& layer = layers_[static_cast<std::size_t>(il)];

            rms_norm(pool, residual.data(), layer.attn_norm.data(), n_tokens, c.n_embd, c.rms_norm_eps, normed.data());
            MatmulInput attn_in(normed.data(), n_tokens, c.n_embd);
            lora_matmul(pool, layer.wq, loras, attn_in, q.data());
            lora_matmul(pool, layer.wk, loras, attn_in, k.data());
            lora_matmul(pool, layer.wv, loras, attn_in, v.data());
            if (architecture_.qkv_bias) {
                add_bias(q.data(), layer.bq.data(), n_tokens, q_width);
                add_bias(k.data(), layer.bk.data(), n_tokens, k_width);
                add_bias(v.data(), layer.bv.data(), n_tokens, v_width);
            }
            if (architecture_.qk_norm) {
                // Each head is a row of head_dim.
                rms_norm(pool, q.data(), layer.q_norm.data(), n_tokens * c.n_heads, c.head_dim, c.rms_norm_eps,
                         q.data());
                rms_norm(pool, k.data(), layer.k_norm.data(), n_tokens * c.n_kv_heads, c.head_dim, c.rms_norm_eps,
                         k.data());
            }
            rope(pool, q.data(), positions, c.n_heads, layer.rope);
            rope(pool, k.data(), positions, c.n_kv_heads, layer.rope);
            for (std::int64_t t = 0; t < n_tokens; ++t)
                cache.store(il, positions[static_cast<std::size_t>(t)], k.data() + t * k_width, v.data() + t * v_width);
            attention(pool, q.data(), positions, cache, il, layer.attention, attn.data());
            MatmulInput attn_out(attn.data(), n_tokens, attn_width);
            lora_matmul(pool, layer.wo, loras, attn_out, block_out.data());
            if (architecture_.post_norms)
                rms_norm(pool, block_out.data(), layer.post_attention_norm.data(), n_tokens, c.n_embd,
                         c.rms_norm_eps, block_out.data());
            add_in_place(residual.data(), block_out.data(), n_tokens * c.n_embd);

            rms_norm(pool, residual.data(), layer.ffn_norm.data(), n_tokens, c.n_embd, c.rms_norm_eps, normed.data());
            MatmulInput ffn_in(normed.data(), n_tokens, c.n_embd);
            ffn_gated(pool, layer.ffn_gate, layer.ffn_up, layer.ffn_down, architecture_.ffn_activation, ffn_in,
                      block_out.data(), &loras);
            if (architecture_.post_norms)
                rms_norm(pool, block_out.data(), layer.post_ffw_norm.data(), n_tokens, c.n_embd, c.rms_norm_eps,
                         block_out.data());
            add_in_place(residual.data(), block_out.data(), n_tokens * c.n_embd);
        }

        // Only the rows whose logits are wanted go through the head.
        const std::int64_t first_row = rows == LogitRows::All ? 0 : n_tokens - 1;
        const std::int64_t n_rows = n_tokens - first_row;
        rms_norm(pool, residual.data() + first_row * c.n_embd, output_norm_.data(), n_rows, c.n_embd, c.rms_norm_eps,
                 normed.data());
        MatmulInput head_in(normed.data(), n_rows, c.n_embd);
        std::vector<float> logits(static_cast<std::size_t>(n_rows * c.n_vocab));  // (n_rows, n_vocab)
        matmul(pool, output_, head_in, logits.data());
        if (c.final_logit_softcapping > 0.f)
            soft_cap(logits.data(), n_rows * c.n_vocab, c.final_logit_softcapping);
        return logits;
    }

    const DecoderArchitecture& architecture_;
    WeightMatrix token_embd_;          // (n_vocab, n_embd)
    std::vector<DecoderLayer> layers_;  // n_layers
    std::vector<float> output_norm_;   // (n_embd)
    WeightMatrix output_;              // (n_vocab, n_embd); token_embd_ when tied
};

}  // namespace

std::unique_ptr<Model> load_decoder(const GgufFile& file, const DecoderArchitecture& architecture) {
    return std::make_unique<DecoderModel>(file, architecture);
}

}  // namespace folio::engine
