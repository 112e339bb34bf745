// The llama architecture (Llama 2/3, SmolLM2, Mistral without sliding
// windows): pre-norm blocks of grouped-query attention with RoPE and a SwiGLU
// feed-forward, RMS norms, an output head that may be tied to the embeddings.

#include <cmath>
#include <string>
#include <vector>

#include "engine/blocks_cpu.h"
#include "engine/model_loader.h"

namespace folio::engine {

namespace {

struct LlamaLayer {
    std::vector<float> attn_norm;  // (n_embd)
    WeightMatrix wq;               // (n_heads * head_dim, n_embd)
    WeightMatrix wk;               // (n_kv_heads * head_dim, n_embd)
    WeightMatrix wv;               // (n_kv_heads * v_head_dim, n_embd)
    WeightMatrix wo;               // (n_embd, n_heads * v_head_dim)
    std::vector<float> ffn_norm;   // (n_embd)
    WeightMatrix ffn_gate;         // (n_ff, n_embd)
    WeightMatrix ffn_up;           // (n_ff, n_embd)
    WeightMatrix ffn_down;         // (n_embd, n_ff)
};

class LlamaModel final : public Model {
public:
    explicit LlamaModel(const GgufFile& file) : Model(file, read_model_config(file)) {
        const ModelConfig& c = config_;
        token_embd_ = weight_matrix(file_, "token_embd.weight", c.n_vocab, c.n_embd);
        for (int i = 0; i < c.n_layers; ++i) {
            const std::string blk = "blk." + std::to_string(i) + ".";
            layers_.push_back(LlamaLayer{
                weight_vector(file_, blk + "attn_norm.weight", c.n_embd),
                weight_matrix(file_, blk + "attn_q.weight", c.n_heads * c.head_dim, c.n_embd),
                weight_matrix(file_, blk + "attn_k.weight", c.n_kv_heads * c.head_dim, c.n_embd),
                weight_matrix(file_, blk + "attn_v.weight", c.n_kv_heads * c.v_head_dim, c.n_embd),
                weight_matrix(file_, blk + "attn_output.weight", c.n_embd, c.n_heads * c.v_head_dim),
                weight_vector(file_, blk + "ffn_norm.weight", c.n_embd),
                weight_matrix(file_, blk + "ffn_gate.weight", c.n_ff, c.n_embd),
                weight_matrix(file_, blk + "ffn_up.weight", c.n_ff, c.n_embd),
                weight_matrix(file_, blk + "ffn_down.weight", c.n_embd, c.n_ff),
            });
        }
        output_norm_ = weight_vector(file_, "output_norm.weight", c.n_embd);
        // Without an output tensor the head is tied to the embeddings
        // (tie_word_embeddings, as SmolLM2 has).
        output_ = find_weight_matrix(file_, "output.weight", c.n_vocab, c.n_embd).value_or(token_embd_);

        // convert_hf_to_gguf permutes the rows of attn_q and attn_k within
        // each head so that Hugging Face's rotate-half pairs (i, i + d/2)
        // land on adjacent rows (2i, 2i + 1); llama.cpp therefore applies
        // its "normal" adjacent-pair RoPE to llama weights. q·k is unchanged
        // by permuting q and k alike, and V is not permuted, so this matches
        // Hugging Face exactly.
        rope_ = RopeParameters{c.head_dim, c.n_rot, c.rope_freq_base, RopeStyle::AdjacentPairs};
        attention_ = AttentionShape{c.n_heads, c.n_kv_heads, c.head_dim, c.v_head_dim,
                                    1.f / std::sqrt(static_cast<float>(c.head_dim))};
    }

private:
    std::vector<float> run(ThreadPool& pool, std::span<const std::int32_t> tokens,
                           std::span<const std::int32_t> positions, KvCache& cache, LogitRows rows) override {
        const ModelConfig& c = config_;
        const auto n_tokens = static_cast<std::int64_t>(tokens.size());
        const std::int64_t q_width = static_cast<std::int64_t>(c.n_heads) * c.head_dim;
        const std::int64_t k_width = static_cast<std::int64_t>(c.n_kv_heads) * c.head_dim;
        const std::int64_t v_width = static_cast<std::int64_t>(c.n_kv_heads) * c.v_head_dim;
        const std::int64_t attn_width = static_cast<std::int64_t>(c.n_heads) * c.v_head_dim;
        auto buffer = [&](std::int64_t width) { return std::vector<float>(static_cast<std::size_t>(n_tokens * width)); };

        std::vector<float> residual = buffer(c.n_embd);  // (n_tokens, n_embd)
        embed_tokens(token_embd_, tokens, residual.data());

        std::vector<float> normed = buffer(c.n_embd);     // (n_tokens, n_embd)
        std::vector<float> q = buffer(q_width);           // (n_tokens, n_heads, head_dim)
        std::vector<float> k = buffer(k_width);           // (n_tokens, n_kv_heads, head_dim)
        std::vector<float> v = buffer(v_width);           // (n_tokens, n_kv_heads, v_head_dim)
        std::vector<float> attn = buffer(attn_width);     // (n_tokens, n_heads, v_head_dim)
        std::vector<float> block_out = buffer(c.n_embd);  // (n_tokens, n_embd)

        for (int il = 0; il < c.n_layers; ++il) {
            const LlamaLayer& layer = layers_[static_cast<std::size_t>(il)];

            rms_norm(pool, residual.data(), layer.attn_norm.data(), n_tokens, c.n_embd, c.rms_norm_eps, normed.data());
            MatmulInput attn_in(normed.data(), n_tokens, c.n_embd);
            matmul(pool, layer.wq, attn_in, q.data());
            matmul(pool, layer.wk, attn_in, k.data());
            matmul(pool, layer.wv, attn_in, v.data());
            rope(pool, q.data(), positions, c.n_heads, rope_);
            rope(pool, k.data(), positions, c.n_kv_heads, rope_);
            for (std::int64_t t = 0; t < n_tokens; ++t)
                cache.store(il, positions[static_cast<std::size_t>(t)], k.data() + t * k_width, v.data() + t * v_width);
            attention(pool, q.data(), positions, cache, il, attention_, attn.data());
            MatmulInput attn_out(attn.data(), n_tokens, attn_width);
            matmul(pool, layer.wo, attn_out, block_out.data());
            add_in_place(residual.data(), block_out.data(), n_tokens * c.n_embd);

            rms_norm(pool, residual.data(), layer.ffn_norm.data(), n_tokens, c.n_embd, c.rms_norm_eps, normed.data());
            MatmulInput ffn_in(normed.data(), n_tokens, c.n_embd);
            ffn_swiglu(pool, layer.ffn_gate, layer.ffn_up, layer.ffn_down, ffn_in, block_out.data());
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
        return logits;
    }

    WeightMatrix token_embd_;          // (n_vocab, n_embd)
    std::vector<LlamaLayer> layers_;   // n_layers
    std::vector<float> output_norm_;   // (n_embd)
    WeightMatrix output_;              // (n_vocab, n_embd); token_embd_ when tied
    RopeParameters rope_;
    AttentionShape attention_;
};

}  // namespace

std::unique_ptr<Model> load_llama(const GgufFile& file) {
    return std::make_unique<LlamaModel>(file);
}

}  // namespace folio::engine
