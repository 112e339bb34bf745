// The bert architecture (BERT, MiniLM, BGE, E5 and the other sentence
// embedding encoders llama.cpp names "bert"): learned absolute positions and
// token types added to the token embeddings, then post-norm blocks of
// bidirectional multi-head attention and a GELU feed-forward, LayerNorms and
// biases throughout, run by either backend's ops (decoder_ops.h). encode()
// returns the last block's hidden states; pooling them into one vector is the
// Embedder's (or the Reranker's head's) job, on the host.

#include <cmath>
#include <memory>
#include <string>
#include <vector>

#include "engine/decoder_ops.h"
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

// out (n_rows, layer.weight.rows) = x · weightᵀ + bias.
template <class Ops>
void apply(Ops& ops, const Linear& layer, const float* x, std::int64_t n_rows, float* out) {
    ops.project(x, n_rows, layer.weight.cols, {{&layer.weight, out}}, LoraSet{});
    ops.add_bias(out, layer.bias, n_rows, layer.weight.rows);
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
        for (const std::int32_t type : token_types)
            if (type < 0 || type >= token_types_.rows)
                throw ModelError("encode: token type " + std::to_string(type) + " outside the model's " +
                                 std::to_string(token_types_.rows) + " segments");
        group_matrices_on_first_cpu_pass(pool, [&] {
            std::vector<WeightMatrix*> matrices;
            for (BertLayer& layer : layers_)
                for (Linear* linear : {&layer.q, &layer.k, &layer.v, &layer.attn_output, &layer.ffn_up, &layer.ffn_down})
                    matrices.push_back(&linear->weight);
            return matrices;
        });
        return backend_.run(pool, [&](auto& ops) { return encode_pass(ops, tokens, sequence_lengths, token_types); });
    }

#ifdef FOLIO_USE_CUDA
    int place_on_gpu(int gpu, const GpuPlacement&) override {
        auto ops = std::make_unique<CudaDecoderOps>(gpu);
        for (const WeightMatrix* table : {&token_embd_, &position_embd_, &token_types_}) ops->upload(*table);
        for (const std::vector<float>* vector : {&token_type_0_, &token_embd_norm_.weight, &token_embd_norm_.bias})
            ops->upload(*vector);
        for (const BertLayer& layer : layers_) {
            for (const Linear* linear :
                 {&layer.q, &layer.k, &layer.v, &layer.attn_output, &layer.ffn_up, &layer.ffn_down}) {
                ops->upload(linear->weight);
                ops->upload(linear->bias);
            }
            for (const Norm* norm : {&layer.attn_output_norm, &layer.layer_output_norm}) {
                ops->upload(norm->weight);
                ops->upload(norm->bias);
            }
        }
        backend_.hold(std::move(ops));
        return 0;
    }

    void release_gpu() override { backend_.release(); }
#endif

    // The encoder, one description for every backend: Ops is CpuDecoderOps
    // or CudaDecoderOps (decoder_ops.h). Returns the hidden states in host memory.
    template <class Ops>
    std::vector<float> encode_pass(Ops& ops, std::span<const std::int32_t> tokens,
                                   std::span<const std::int32_t> sequence_lengths,
                                   std::span<const std::int32_t> token_types) {
        const ModelConfig& c = config_;
        const auto n_tokens = static_cast<std::int64_t>(tokens.size());
        // Each sequence's positions count from 0.
        std::vector<std::int32_t> positions;
        positions.reserve(tokens.size());
        for (const std::int32_t length : sequence_lengths)
            for (std::int32_t i = 0; i < length; ++i)
                positions.push_back(i);
        ops.begin_sequences(tokens, positions, sequence_lengths);
        enum Slot { kHidden, kScratch, kQ, kK, kV, kAttention, kFeedForward };
        float* hidden = ops.buffer(kHidden, n_tokens * c.n_embd);    // (n_tokens, n_embd)
        float* scratch = ops.buffer(kScratch, n_tokens * c.n_embd);  // (n_tokens, n_embd)
        float* q = ops.buffer(kQ, n_tokens * c.n_embd);              // (n_tokens, n_heads, head_dim)
        float* k = ops.buffer(kK, n_tokens * c.n_embd);              // (n_tokens, n_heads, head_dim)
        float* v = ops.buffer(kV, n_tokens * c.n_embd);              // (n_tokens, n_heads, head_dim)
        float* attn = ops.buffer(kAttention, n_tokens * c.n_embd);   // (n_tokens, n_heads, head_dim)
        float* ff = ops.buffer(kFeedForward, n_tokens * c.n_ff);     // (n_tokens, n_ff)

        // hidden = LayerNorm(token + position + type embedding)
        ops.embed(token_embd_, hidden);
        ops.embed(position_embd_, positions, scratch);
        ops.add(hidden, scratch, n_tokens * c.n_embd);
        if (token_types.empty()) {
            ops.add_bias(hidden, token_type_0_, n_tokens, c.n_embd);
        } else {
            ops.embed(token_types_, token_types, scratch);
            ops.add(hidden, scratch, n_tokens * c.n_embd);
        }
        ops.layer_norm(hidden, token_embd_norm_.weight, token_embd_norm_.bias, n_tokens, c.n_embd, c.layer_norm_eps,
                       hidden);

        for (const BertLayer& layer : layers_) {
            ops.project(hidden, n_tokens, c.n_embd,
                        {{&layer.q.weight, q}, {&layer.k.weight, k}, {&layer.v.weight, v}}, LoraSet{});
            ops.add_bias(q, layer.q.bias, n_tokens, c.n_embd);
            ops.add_bias(k, layer.k.bias, n_tokens, c.n_embd);
            ops.add_bias(v, layer.v.bias, n_tokens, c.n_embd);
            ops.attend_within_sequences(k, v, q, attention_, attn);
            apply(ops, layer.attn_output, attn, n_tokens, scratch);
            // Post-norm: the residual sum is normalized, not the block's input.
            ops.add(hidden, scratch, n_tokens * c.n_embd);
            ops.layer_norm(hidden, layer.attn_output_norm.weight, layer.attn_output_norm.bias, n_tokens, c.n_embd,
                           c.layer_norm_eps, hidden);

            apply(ops, layer.ffn_up, hidden, n_tokens, ff);
            ops.gelu(ff, n_tokens * c.n_ff);
            apply(ops, layer.ffn_down, ff, n_tokens, scratch);
            ops.add(hidden, scratch, n_tokens * c.n_embd);
            ops.layer_norm(hidden, layer.layer_output_norm.weight, layer.layer_output_norm.bias, n_tokens, c.n_embd,
                           c.layer_norm_eps, hidden);
        }
        return ops.to_host(hidden, n_tokens * c.n_embd);
    }

    WeightMatrix token_embd_;             // (n_vocab, n_embd)
    WeightMatrix position_embd_;          // (n_ctx_train, n_embd)
    WeightMatrix token_types_;            // (segments, n_embd)
    std::vector<float> token_type_0_;     // (n_embd): row 0 of token_types_
    Norm token_embd_norm_;
    std::vector<BertLayer> layers_;       // n_layers
    AttentionShape attention_;
#ifdef FOLIO_USE_CUDA
    DecoderBackend backend_;
#endif
};

}  // namespace

std::unique_ptr<Model> load_bert(const GgufFile& file) {
    return std::make_unique<BertModel>(file);
}

}  // namespace folio::engine
