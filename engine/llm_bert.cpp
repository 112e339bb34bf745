// The bert architecture (BERT, MiniLM, BGE, E5 and the other sentence
// embedding encoders llama.cpp names "bert"): learned absolute positions and
// token types added to the token embeddings, then post-norm blocks of
// bidirectional multi-head attention and a GELU feed-forward, LayerNorms and
// biases throughout. encode() returns the last block's hidden states; pooling
// them into one vector is the Embedder's job.

#include <cmath>
#include <string>
#include <vector>

#include "engine/blocks_cpu.h"
#include "engine/model_loader.h"

namespace folio::engine {

namespace {

// A LayerNorm's parameters.
struct Norm {
    std::vector<float> weight;  // (n_embd)
    std::vector<float> bias;    // (n_embd)
};

// A linear layer: out = x · weightᵀ + bias.
struct Linear {
    WeightMatrix weight;        // (n_out, n_in)
    std::vector<float> bias;    // (n_out)
};

struct BertLayer {
    Linear q;              // (n_embd, n_embd)
    Linear k;              // (n_embd, n_embd)
    Linear v;              // (n_embd, n_embd)
    Linear attn_output;    // (n_embd, n_embd)
    Norm attn_output_norm;
    Linear ffn_up;         // (n_ff, n_embd)
    Linear ffn_down;       // (n_embd, n_ff)
    Norm layer_output_norm;
};

Norm read_norm(const GgufFile& file, const std::string& name, std::int64_t n) {
    return Norm{weight_vector(file, name + ".weight", n), weight_vector(file, name + ".bias", n)};
}

Linear read_linear(const GgufFile& file, const std::string& name, std::int64_t n_out, std::int64_t n_in) {
    return Linear{weight_matrix(file, name + ".weight", n_out, n_in), weight_vector(file, name + ".bias", n_out)};
}

// out (n_rows, layer.weight.rows) = input · weightᵀ + bias.
void apply(ThreadPool& pool, const Linear& layer, MatmulInput& input, float* out) {
    matmul(pool, layer.weight, input, out);
    add_bias(out, layer.bias.data(), input.n_rows(), layer.weight.rows);
}

class BertModel final : public Model {
public:
    explicit BertModel(const GgufFile& file) : Model(file, read_model_config(file)) {
        const ModelConfig& c = config_;
        if (c.n_kv_heads != c.n_heads || c.head_dim * c.n_heads != c.n_embd || c.v_head_dim != c.head_dim)
            throw ModelError(file_.source() + ": bert needs n_embd = heads × head size and as many kv heads as heads");
        token_embd_ = weight_matrix(file_, "token_embd.weight", c.n_vocab, c.n_embd);
        position_embd_ = weight_matrix(file_, "position_embd.weight", c.n_ctx_train, c.n_embd);
        const GgufTensor& token_types = file_.tensor("token_types.weight");
        token_types_ = weight_matrix(file_, "token_types.weight", token_types.ne[1], c.n_embd);
        // An embedder's single texts are all of type 0 ("sentence A").
        token_type_0_.resize(static_cast<std::size_t>(c.n_embd));
        const std::int32_t type_0 = 0;
        embed_tokens(token_types_, std::span(&type_0, 1), token_type_0_.data());
        token_embd_norm_ = read_norm(file_, "token_embd_norm", c.n_embd);
        for (int i = 0; i < c.n_layers; ++i) {
            const std::string blk = "blk." + std::to_string(i) + ".";
            layers_.push_back(BertLayer{
                read_linear(file_, blk + "attn_q", c.n_embd, c.n_embd),
                read_linear(file_, blk + "attn_k", c.n_embd, c.n_embd),
                read_linear(file_, blk + "attn_v", c.n_embd, c.n_embd),
                read_linear(file_, blk + "attn_output", c.n_embd, c.n_embd),
                read_norm(file_, blk + "attn_output_norm", c.n_embd),
                read_linear(file_, blk + "ffn_up", c.n_ff, c.n_embd),
                read_linear(file_, blk + "ffn_down", c.n_embd, c.n_ff),
                read_norm(file_, blk + "layer_output_norm", c.n_embd),
            });
        }
        attention_ = AttentionShape{c.n_heads, c.n_heads, c.head_dim, c.head_dim,
                                    1.f / std::sqrt(static_cast<float>(c.head_dim))};
        attention_.causal = false;
    }

    bool is_encoder() const override { return true; }

private:
    std::vector<float> run(ThreadPool&, std::span<const std::int32_t>, std::span<const std::int32_t>, KvCache&,
                           LogitRows, const LoraSet&) override {
        throw ModelError("forward: bert is an encoder with no language-model head; use encode");
    }

    std::vector<float> run_encoder(ThreadPool& pool, std::span<const std::int32_t> tokens,
                                   std::span<const std::int32_t> sequence_lengths,
                                   std::span<const std::int32_t> token_types) override {
        const ModelConfig& c = config_;
        for (const std::int32_t type : token_types)
            if (type < 0 || type >= token_types_.rows)
                throw ModelError("encode: token type " + std::to_string(type) + " outside the model's " +
                                 std::to_string(token_types_.rows) + " segments");
        const auto n_tokens = static_cast<std::int64_t>(tokens.size());
        auto buffer = [&](std::int64_t width) { return std::vector<float>(static_cast<std::size_t>(n_tokens * width)); };
        // Each sequence's positions count from 0.
        std::vector<std::int32_t> positions;
        positions.reserve(tokens.size());
        for (const std::int32_t length : sequence_lengths)
            for (std::int32_t i = 0; i < length; ++i)
                positions.push_back(i);

        // hidden = LayerNorm(token + position + type embedding)
        std::vector<float> hidden = buffer(c.n_embd);  // (n_tokens, n_embd)
        std::vector<float> scratch = buffer(c.n_embd);  // (n_tokens, n_embd)
        embed_tokens(token_embd_, tokens, hidden.data());
        embed_tokens(position_embd_, positions, scratch.data());
        add_in_place(hidden.data(), scratch.data(), n_tokens * c.n_embd);
        if (token_types.empty()) {
            add_bias(hidden.data(), token_type_0_.data(), n_tokens, c.n_embd);
        } else {
            embed_tokens(token_types_, token_types, scratch.data());
            add_in_place(hidden.data(), scratch.data(), n_tokens * c.n_embd);
        }
        layer_norm(pool, hidden.data(), token_embd_norm_.weight.data(), token_embd_norm_.bias.data(), n_tokens,
                   c.n_embd, c.layer_norm_eps, hidden.data());

        std::vector<float> q = buffer(c.n_embd);     // (n_tokens, n_heads, head_dim)
        std::vector<float> k = buffer(c.n_embd);     // (n_tokens, n_heads, head_dim)
        std::vector<float> v = buffer(c.n_embd);     // (n_tokens, n_heads, head_dim)
        std::vector<float> attn = buffer(c.n_embd);  // (n_tokens, n_heads, head_dim)
        std::vector<float> ff = buffer(c.n_ff);      // (n_tokens, n_ff)
        // Each sequence's keys and values, one layer at a time: attention
        // reads them from a cache, each block overwrites the last one's.
        std::vector<KvCache> caches;
        for (const std::int32_t length : sequence_lengths)
            caches.emplace_back(1, length, c.n_embd, c.n_embd);

        for (const BertLayer& layer : layers_) {
            MatmulInput attn_in(hidden.data(), n_tokens, c.n_embd);
            apply(pool, layer.q, attn_in, q.data());
            apply(pool, layer.k, attn_in, k.data());
            apply(pool, layer.v, attn_in, v.data());
            std::int64_t first = 0;  // the sequence's first row
            for (std::size_t s = 0; s < caches.size(); ++s) {
                const std::int32_t length = sequence_lengths[s];
                for (std::int32_t i = 0; i < length; ++i)
                    caches[s].store(0, i, k.data() + (first + i) * c.n_embd, v.data() + (first + i) * c.n_embd);
                attention(pool, q.data() + first * c.n_embd, std::span(positions).subspan(first, length), caches[s],
                          0, attention_, attn.data() + first * c.n_embd);
                first += length;
            }
            MatmulInput attn_out(attn.data(), n_tokens, c.n_embd);
            apply(pool, layer.attn_output, attn_out, scratch.data());
            // Post-norm: the residual sum is normalized, not the block's input.
            add_in_place(hidden.data(), scratch.data(), n_tokens * c.n_embd);
            layer_norm(pool, hidden.data(), layer.attn_output_norm.weight.data(), layer.attn_output_norm.bias.data(),
                       n_tokens, c.n_embd, c.layer_norm_eps, hidden.data());

            MatmulInput ffn_in(hidden.data(), n_tokens, c.n_embd);
            apply(pool, layer.ffn_up, ffn_in, ff.data());
            gelu_erf(pool, ff.data(), n_tokens * c.n_ff);
            MatmulInput ffn_hidden(ff.data(), n_tokens, c.n_ff);
            apply(pool, layer.ffn_down, ffn_hidden, scratch.data());
            add_in_place(hidden.data(), scratch.data(), n_tokens * c.n_embd);
            layer_norm(pool, hidden.data(), layer.layer_output_norm.weight.data(),
                       layer.layer_output_norm.bias.data(), n_tokens, c.n_embd, c.layer_norm_eps, hidden.data());
        }
        return hidden;
    }

    WeightMatrix token_embd_;             // (n_vocab, n_embd)
    WeightMatrix position_embd_;          // (n_ctx_train, n_embd)
    WeightMatrix token_types_;            // (segments, n_embd)
    std::vector<float> token_type_0_;     // (n_embd): row 0 of token_types_
    Norm token_embd_norm_;
    std::vector<BertLayer> layers_;       // n_layers
    AttentionShape attention_;
};

}  // namespace

std::unique_ptr<Model> load_bert(const GgufFile& file) {
    return std::make_unique<BertModel>(file);
}

}  // namespace folio::engine
