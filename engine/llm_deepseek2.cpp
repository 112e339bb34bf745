// The deepseek2 architecture (DeepSeek-V2, V2-Lite, V2.5, V3, R1 and the
// models llama.cpp converts to it): multi-head latent attention and
// mixtures of experts with shared experts.
//
// Attention (MLA). Each token's hidden state is compressed to a latent c
// (kv_lora_rank wide, RMS-normed) and one rotary key k_pe (rope dims) that
// all heads share. Hugging Face expands c per head into keys and values
// through kv_b_proj; here the expansion is absorbed instead:
//   q_nope · k_nope = q_nope · (K_b c) = (K_bᵀ q_nope) · c
//   softmax · v     = V_b (softmax · c)
// so the cache holds only [c | k_pe] per token (576 values for every
// DeepSeek model), each head's query becomes [K_bᵀ q_nope | rope(q_pe)], and
// attention is multi-query attention over that one cached row, whose first
// kv_lora_rank elements are the values (a keys-only KvCache). V_b then maps
// each head's weighted latent to its v_head_dim outputs. A long prefill batch
// (expands()) instead expands the cached rows into every head's keys and
// values once per layer and attends at the per-head sizes, which costs
// fewer multiply-adds once the batch outweighs the expansion; decode steps
// stay absorbed, and so does every batch on the GPU (CudaDecoderOps), whose
// attention kernels take the 576-wide rows.
//
// Feed-forward. The first leading_dense_block_count layers are dense; the
// others route each token to expert_used_count experts (softmax or sigmoid
// scores, an optional selection bias exp_probs_b, group-limited choice,
// renormalized and scaled as the metadata says) beside expert_shared_count
// shared experts that every token goes through.
//
// RoPE turns adjacent pairs (DeepSeek's interleaved layout, which
// convert_hf_to_gguf keeps). YaRN: with rope.scaling.yarn_log_multiplier m,
// cos and sin keep magnitude 1 and the scores are scaled by
// (1 + m ln factor)² / sqrt(nope + rope) instead (Hugging Face's
// mscale_all_dim, llama.cpp's deepseek2 graph).
//
// Both GGUF layouts load: attn_kv_b (n_heads * (nope + v), kv_lora_rank), as
// older converters wrote it, and its halves attn_k_b (n_heads, kv_lora_rank,
// nope), already transposed, and attn_v_b (n_heads, v, kv_lora_rank), with
// attention.key_length_mla / value_length_mla giving the per-head sizes.

#include <algorithm>
#include <cmath>
#include <memory>
#include <numeric>
#include <optional>
#include <string>
#include <vector>

#include "engine/blocks_cpu.h"
#include "engine/decoder_ops.h"
#include "engine/fp16.h"
#include "engine/model_loader.h"
#include "engine/quant.h"

namespace folio::engine {

namespace {

struct LatentLayer {
    std::vector<float> attn_norm;        // (n_embd)
    WeightMatrix wq;                     // (n_heads * (nope + rope), n_embd); unset with a q LoRA
    WeightMatrix wq_a;                   // (q_lora_rank, n_embd): the q LoRA's down projection
    std::vector<float> q_a_norm;         // (q_lora_rank)
    WeightMatrix wq_b;                   // (n_heads * (nope + rope), q_lora_rank)
    WeightMatrix wkv_a;                  // (kv_lora_rank + rope, n_embd)
    std::vector<float> kv_a_norm;        // (kv_lora_rank)
    std::vector<WeightMatrix> k_b;       // n_heads of (kv_lora_rank, nope): q_nope -> latent query
    std::vector<WeightMatrix> k_b_rows;  // n_heads of (nope, kv_lora_rank): latent -> keys (expanded)
    std::vector<WeightMatrix> v_b;       // n_heads of (v_head_dim, kv_lora_rank): latent -> values
    WeightMatrix wo;                     // (n_embd, n_heads * v_head_dim)
    std::vector<float> ffn_norm;         // (n_embd)
    WeightMatrix ffn_gate;               // (n_ff, n_embd): leading dense layers
    WeightMatrix ffn_up;                 // (n_ff, n_embd)
    WeightMatrix ffn_down;               // (n_embd, n_ff)
    ExpertFfn experts;                   // the other layers
    bool dense = true;
};

// The sizes of the latent attention, from the metadata.
struct LatentShape {
    int n_heads = 0;
    int q_lora_rank = 0;   // 0: q is projected directly
    int kv_lora_rank = 0;
    int nope = 0;          // qk_nope_head_dim: the part of q·k without RoPE
    int rope = 0;          // qk_rope_head_dim
    int v_head_dim = 0;
    int q_head() const { return nope + rope; }
    int cache_row() const { return kv_lora_rank + rope; }
};

class DeepSeek2Model final : public Model {
public:
    explicit DeepSeek2Model(const GgufFile& file) : Model(file, read_model_config(file)) {
        const std::string prefix = config_.architecture + ".";
        auto count = [&](const std::string& key, std::uint32_t min, std::uint32_t max) {
            return metadata_count(file_, prefix + key, min, max);
        };
        auto optional_count = [&](const std::string& key, std::uint32_t fallback, std::uint32_t max) {
            return file_.find_u32(prefix + key) ? count(key, 0, max) : static_cast<int>(fallback);
        };
        // Newer converters store MQA over the latent: head_count_kv 1,
        // key/value_length the cache row, the per-head sizes in *_mla.
        const bool mla_layout = file_.find_u32(prefix + "attention.key_length_mla").has_value();
        shape_.n_heads = config_.n_heads;
        shape_.q_lora_rank = optional_count("attention.q_lora_rank", 0, 1u << 16);
        shape_.kv_lora_rank = count("attention.kv_lora_rank", 1, 1u << 16);
        shape_.rope = config_.n_rot;
        const int key_length = mla_layout ? count("attention.key_length_mla", 1, 1u << 12) : config_.head_dim;
        shape_.v_head_dim = mla_layout ? count("attention.value_length_mla", 1, 1u << 12) : config_.v_head_dim;
        shape_.nope = key_length - shape_.rope;
        if (shape_.nope <= 0)
            throw ModelError(file_.source() + ": a key head of " + std::to_string(key_length) +
                             " leaves nothing beside its " + std::to_string(shape_.rope) + " rotary dimensions");
        // The latent attention's value sums run 64 floats at a time.
        if (shape_.kv_lora_rank % 64 != 0)
            throw ModelError(file_.source() + ": kv_lora_rank " + std::to_string(shape_.kv_lora_rank) +
                             " is not a multiple of 64");

        // The cache: one row of [latent | k_pe] per position, the values
        // being its first kv_lora_rank elements.
        config_.n_kv_heads = 1;
        config_.head_dim = shape_.cache_row();
        config_.v_head_dim = 0;

        const RopeScaling& scaling = config_.rope_scaling;
        const double mscale = scaling.type == RopeScalingType::Yarn && scaling.yarn_log_multiplier > 0 && scaling.factor > 1
                                  ? 1.0 + scaling.yarn_log_multiplier * std::log(double{scaling.factor})
                                  : 1.0;
        scale_ = static_cast<float>(mscale * mscale / std::sqrt(static_cast<double>(key_length)));
        rope_ = RopeParameters{shape_.rope, shape_.rope, config_.rope_freq_base, RopeStyle::AdjacentPairs, scaling};
        if (scaling.type == RopeScalingType::Yarn && scaling.yarn_log_multiplier > 0)
            rope_.scaling.attention_factor = 1.f;  // the magnitude went into scale_

        const int n_dense = optional_count("leading_dense_block_count", 0, static_cast<std::uint32_t>(config_.n_layers));
        int n_expert = 0, n_expert_used = 0, n_ff_expert = 0, n_shared = 0;
        if (n_dense < config_.n_layers) {
            n_expert = count("expert_count", 1, 1u << 12);
            n_expert_used = count("expert_used_count", 1, static_cast<std::uint32_t>(n_expert));
            n_ff_expert = count("expert_feed_forward_length", 1, 1u << 20);
            n_shared = optional_count("expert_shared_count", 0, 64);
        }
        const std::int64_t n_embd = config_.n_embd;
        const std::int64_t q_width = static_cast<std::int64_t>(shape_.n_heads) * shape_.q_head();
        token_embd_ = weight_matrix(file_, "token_embd.weight", config_.n_vocab, n_embd);
        for (int il = 0; il < config_.n_layers; ++il) {
            const std::string blk = "blk." + std::to_string(il) + ".";
            auto vector = [&](const char* name, std::int64_t n) { return weight_vector(file_, blk + name, n); };
            auto matrix = [&](const char* name, std::int64_t rows, std::int64_t cols) {
                return weight_matrix(file_, blk + name, rows, cols);
            };
            LatentLayer layer;
            layer.attn_norm = vector("attn_norm.weight", n_embd);
            if (shape_.q_lora_rank > 0) {
                layer.wq_a = matrix("attn_q_a.weight", shape_.q_lora_rank, n_embd);
                layer.q_a_norm = vector("attn_q_a_norm.weight", shape_.q_lora_rank);
                layer.wq_b = matrix("attn_q_b.weight", q_width, shape_.q_lora_rank);
            } else {
                layer.wq = matrix("attn_q.weight", q_width, n_embd);
            }
            layer.wkv_a = matrix("attn_kv_a_mqa.weight", shape_.cache_row(), n_embd);
            layer.kv_a_norm = vector("attn_kv_a_norm.weight", shape_.kv_lora_rank);
            read_latent_maps(blk, layer);
            layer.wo = matrix("attn_output.weight", n_embd, static_cast<std::int64_t>(shape_.n_heads) * shape_.v_head_dim);
            layer.ffn_norm = vector("ffn_norm.weight", n_embd);
            for (const WeightMatrix* weight : {&layer.wq, &layer.wq_a, &layer.wq_b, &layer.wkv_a, &layer.wo})
                if (weight->data != nullptr) allow_lora(*weight);
            layer.dense = il < n_dense;
            if (layer.dense) {
                layer.ffn_gate = matrix("ffn_gate.weight", config_.n_ff, n_embd);
                layer.ffn_up = matrix("ffn_up.weight", config_.n_ff, n_embd);
                layer.ffn_down = matrix("ffn_down.weight", n_embd, config_.n_ff);
                for (const WeightMatrix* weight : {&layer.ffn_gate, &layer.ffn_up, &layer.ffn_down}) allow_lora(*weight);
            } else {
                layer.experts = read_experts(blk, n_expert, n_expert_used, n_ff_expert, n_shared);
                for (const std::vector<WeightMatrix>* kind : {&layer.experts.gate, &layer.experts.up, &layer.experts.down})
                    allow_lora(*kind);
                if (n_shared > 0)
                    for (const WeightMatrix* weight :
                         {&layer.experts.shared_gate, &layer.experts.shared_up, &layer.experts.shared_down})
                        allow_lora(*weight);
            }
            layers_.push_back(std::move(layer));
        }
        std::vector<int> expert_layers(static_cast<std::size_t>(config_.n_layers - n_dense));
        std::iota(expert_layers.begin(), expert_layers.end(), n_dense);
        if (!expert_layers.empty()) count_expert_usage(std::move(expert_layers), n_expert);
        output_norm_ = weight_vector(file_, "output_norm.weight", n_embd);
        output_ = find_weight_matrix(file_, "output.weight", config_.n_vocab, n_embd).value_or(token_embd_);
    }

private:
    // K_b (both ways round) and V_b of every head, from attn_k_b/attn_v_b or
    // from attn_kv_b. Whichever way the file does not store K_b is made
    // once here, transposed into f16 (llama.cpp's converter now writes the
    // absorbed one ahead of time; the expanded one serves long prefills).
    void read_latent_maps(const std::string& blk, LatentLayer& layer) {
        const int n_heads = shape_.n_heads, rank = shape_.kv_lora_rank, nope = shape_.nope;
        if (file_.find_tensor(blk + "attn_k_b.weight") != nullptr) {
            layer.k_b = expert_matrices(file_, blk + "attn_k_b.weight", n_heads, rank, nope);
            layer.v_b = expert_matrices(file_, blk + "attn_v_b.weight", n_heads, shape_.v_head_dim, rank);
            for (const WeightMatrix& k_b : layer.k_b) layer.k_b_rows.push_back(transposed(k_b));
            return;
        }
        // attn_kv_b: head h's rows are K_b (nope rows) then V_b (v rows).
        const std::int64_t head_rows = nope + shape_.v_head_dim;
        const WeightMatrix kv_b = weight_matrix(file_, blk + "attn_kv_b.weight", n_heads * head_rows, rank);
        for (int h = 0; h < n_heads; ++h) {
            layer.k_b_rows.push_back(
                WeightMatrix{kv_b.type, kv_b.data + h * head_rows * kv_b.row_bytes, nope, rank, kv_b.row_bytes, {}});
            layer.k_b.push_back(transposed(layer.k_b_rows.back()));
            layer.v_b.push_back(WeightMatrix{kv_b.type, kv_b.data + (h * head_rows + nope) * kv_b.row_bytes,
                                             shape_.v_head_dim, rank, kv_b.row_bytes, {}});
        }
    }

    // A matrix transposed into f16 the model owns.
    WeightMatrix transposed(const WeightMatrix& matrix) {
        std::vector<std::uint16_t>& out = owned_.emplace_back(static_cast<std::size_t>(matrix.rows * matrix.cols));
        std::vector<float> row(static_cast<std::size_t>(matrix.cols));
        for (std::int64_t r = 0; r < matrix.rows; ++r) {
            dequantize_row(matrix.type, matrix.data + r * matrix.row_bytes, row.data(), matrix.cols);
            for (std::int64_t c = 0; c < matrix.cols; ++c)
                out[static_cast<std::size_t>(c * matrix.rows + r)] = fp32_to_fp16(row[static_cast<std::size_t>(c)]);
        }
        return WeightMatrix{GgmlType::F16, reinterpret_cast<const std::uint8_t*>(out.data()), matrix.cols, matrix.rows,
                            matrix.rows * static_cast<std::int64_t>(sizeof(std::uint16_t)), {}};
    }

    ExpertFfn read_experts(const std::string& blk, int n_expert, int n_used, int n_ff_expert, int n_shared) {
        const std::string prefix = config_.architecture + ".";
        const std::int64_t n_embd = config_.n_embd;
        auto experts = [&](const char* name, std::int64_t rows, std::int64_t cols) {
            return expert_matrices(file_, blk + name, n_expert, rows, cols);
        };
        GateUpExperts gate_up = gate_up_experts(file_, blk, n_expert, n_ff_expert, n_embd);
        ExpertFfn ffn{weight_matrix(file_, blk + "ffn_gate_inp.weight", n_expert, n_embd), std::move(gate_up.gate),
                      std::move(gate_up.up), experts("ffn_down_exps.weight", n_embd, n_ff_expert), n_used,
                      file_.get_bool(prefix + "expert_weights_norm", false)};
        const std::uint32_t gating = file_.get_u32(prefix + "expert_gating_func", 1);
        if (gating != 1 && gating != 2)
            throw ModelError(file_.source() + ": " + prefix + "expert_gating_func = " + std::to_string(gating) +
                             " is neither softmax (1) nor sigmoid (2)");
        ffn.gating = gating == 2 ? ExpertGating::Sigmoid : ExpertGating::Softmax;
        ffn.weights_scale = file_.get_f32(prefix + "expert_weights_scale", 1.f);
        if (!(ffn.weights_scale > 0) || !std::isfinite(ffn.weights_scale))
            throw ModelError(file_.source() + ": " + prefix + "expert_weights_scale is out of range");
        if (file_.find_tensor(blk + "exp_probs_b.bias") != nullptr)
            ffn.selection_bias = weight_vector(file_, blk + "exp_probs_b.bias", n_expert);
        ffn.n_groups = static_cast<int>(file_.get_u32(prefix + "expert_group_count", 1));
        ffn.n_groups_used = static_cast<int>(file_.get_u32(prefix + "expert_group_used_count", ffn.n_groups));
        if (ffn.n_groups < 1 || n_expert % ffn.n_groups != 0 || ffn.n_groups_used < 1 ||
            ffn.n_groups_used > ffn.n_groups || n_used > ffn.n_groups_used * (n_expert / ffn.n_groups))
            throw ModelError(file_.source() + ": " + std::to_string(n_expert) + " experts in " +
                             std::to_string(ffn.n_groups) + " groups, " + std::to_string(ffn.n_groups_used) +
                             " of them used, cannot give " + std::to_string(n_used) + " experts per token");
        if (ffn.n_groups > kMaxRoutedExperts)
            throw ModelError(file_.source() + ": " + std::to_string(ffn.n_groups) + " expert groups; at most " +
                             std::to_string(kMaxRoutedExperts) + " are supported");
        if (n_shared > 0) {
            const std::int64_t n_ff_shared = static_cast<std::int64_t>(n_ff_expert) * n_shared;
            ffn.shared_gate = weight_matrix(file_, blk + "ffn_gate_shexp.weight", n_ff_shared, n_embd);
            ffn.shared_up = weight_matrix(file_, blk + "ffn_up_shexp.weight", n_ff_shared, n_embd);
            ffn.shared_down = weight_matrix(file_, blk + "ffn_down_shexp.weight", n_embd, n_ff_shared);
        }
        return ffn;
    }

    std::vector<float> run(ThreadPool& pool, std::span<const std::int32_t> tokens,
                           std::span<const std::int32_t> positions, KvCache& cache, LogitRows rows,
                           const LoraSet& loras) override {
        return backend_.run(pool, [&](auto& ops) { return forward_pass(ops, tokens, positions, cache, rows, loras); });
    }

#ifdef FOLIO_USE_CUDA
    // Everything the absorbed path reads: the expanded K_b (k_b_rows) stays
    // on the host, the GPU never expanding.
    int place_on_gpu(int gpu, const GpuPlacement& placement) override {
        auto ops = std::make_unique<CudaDecoderOps>(gpu);
        std::vector<const ExpertFfn*> expert_layers;
        for (const LatentLayer& layer : layers_)
            if (!layer.dense) expert_layers.push_back(&layer.experts);
        const int host_layers = expert_layers_on_host(expert_layers, ops->free_bytes(), placement);
        ops->upload(token_embd_);
        for (const LatentLayer& layer : layers_) {
            for (const WeightMatrix* weight : {&layer.wq, &layer.wq_a, &layer.wq_b, &layer.wkv_a, &layer.wo})
                if (weight->data != nullptr) ops->upload(*weight);
            for (const std::vector<WeightMatrix>* maps : {&layer.k_b, &layer.v_b})
                for (const WeightMatrix& map : *maps) ops->upload(map);
            if (layer.dense)
                for (const WeightMatrix* weight : {&layer.ffn_gate, &layer.ffn_up, &layer.ffn_down}) ops->upload(*weight);
            for (const std::vector<float>* vector : {&layer.attn_norm, &layer.q_a_norm, &layer.kv_a_norm, &layer.ffn_norm})
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
        const LatentShape& s = shape_;
        const auto n_tokens = static_cast<std::int64_t>(tokens.size());
        const std::int64_t n_embd = c.n_embd;
        const std::int64_t n_heads = s.n_heads;
        const std::int64_t head_rows = n_tokens * n_heads;  // one row per token and head
        const std::int64_t query_row = s.cache_row();       // per head: [K_bᵀ q_nope | rope(q_pe)]
        ops.begin(tokens, positions, cache, loras);

        // A long batch expands the cached latents into every head's keys and
        // values once per layer, then attends over them at the per-head sizes;
        // the absorbed path's latent queries and outputs are then not needed.
        std::optional<KvCache> expanded;
        if (Ops::kExpandsLatent && expands(n_tokens)) {
            const int batch_end = *std::max_element(positions.begin(), positions.end()) + 1;
            expanded.emplace(1, batch_end, s.n_heads, s.n_heads * s.q_head(), s.n_heads * s.v_head_dim, KvType::F16);
        }
        const std::int64_t absorbed_rows = expanded ? 0 : head_rows;
        enum Slot { kResidual, kNormed, kQ, kQA, kKvA, kLatent, kQPe, kKPe, kQuery, kLatentOut, kAttention, kBlockOut, kLogits };
        float* residual = ops.buffer(kResidual, n_tokens * n_embd);                  // (n_tokens, n_embd)
        float* normed = ops.buffer(kNormed, n_tokens * n_embd);                      // (n_tokens, n_embd)
        float* q = ops.buffer(kQ, head_rows * s.q_head());                           // (n_tokens, n_heads, nope + rope)
        float* q_a = ops.buffer(kQA, n_tokens * s.q_lora_rank);                      // (n_tokens, q_lora_rank)
        float* kv_a = ops.buffer(kKvA, n_tokens * s.cache_row());                    // (n_tokens, kv_lora_rank + rope)
        float* latent = ops.buffer(kLatent, n_tokens * s.kv_lora_rank);              // (n_tokens, kv_lora_rank)
        float* q_pe = ops.buffer(kQPe, head_rows * s.rope);                          // (n_tokens, n_heads, rope)
        float* k_pe = ops.buffer(kKPe, n_tokens * s.rope);                           // (n_tokens, rope)
        float* query = ops.buffer(kQuery, absorbed_rows * query_row);                // (n_tokens, n_heads, cache row)
        float* latent_out = ops.buffer(kLatentOut, absorbed_rows * s.kv_lora_rank);  // (n_tokens, n_heads, kv_lora_rank)
        float* attn = ops.buffer(kAttention, head_rows * s.v_head_dim);              // (n_tokens, n_heads, v_head_dim)
        float* block_out = ops.buffer(kBlockOut, n_tokens * n_embd);                 // (n_tokens, n_embd)
        const AttentionShape attention_shape{s.n_heads, 1, s.cache_row(), s.kv_lora_rank, scale_};

        ops.embed(token_embd_, residual);
        for (int il = 0; il < c.n_layers; ++il) {
            const LatentLayer& layer = layers_[static_cast<std::size_t>(il)];
            ops.rms_norm(residual, layer.attn_norm, n_tokens, n_embd, c.rms_norm_eps, normed);
            // The latent and the query (or its low-rank half) from one pass over the input.
            if (s.q_lora_rank > 0) {
                ops.project(normed, n_tokens, n_embd, {{&layer.wkv_a, kv_a}, {&layer.wq_a, q_a}}, loras);
                ops.rms_norm(q_a, layer.q_a_norm, n_tokens, s.q_lora_rank, c.rms_norm_eps, q_a);
                ops.project(q_a, n_tokens, s.q_lora_rank, {{&layer.wq_b, q}}, loras);
            } else {
                ops.project(normed, n_tokens, n_embd, {{&layer.wkv_a, kv_a}, {&layer.wq, q}}, loras);
            }

            // The cache row: the normed latent, then the shared rotary key.
            ops.copy_columns(kv_a, s.cache_row(), latent, s.kv_lora_rank, n_tokens, s.kv_lora_rank);
            ops.copy_columns(kv_a + s.kv_lora_rank, s.cache_row(), k_pe, s.rope, n_tokens, s.rope);
            ops.copy_columns(q + s.nope, s.q_head(), q_pe, s.rope, head_rows, s.rope);
            ops.rms_norm(latent, layer.kv_a_norm, n_tokens, s.kv_lora_rank, c.rms_norm_eps, latent);
            ops.rope(k_pe, 1, rope_);
            ops.rope(q_pe, s.n_heads, rope_);
            ops.copy_columns(latent, s.kv_lora_rank, kv_a, s.cache_row(), n_tokens, s.kv_lora_rank);
            ops.copy_columns(k_pe, s.rope, kv_a + s.kv_lora_rank, s.cache_row(), n_tokens, s.rope);
            ops.store_keys(cache, il, kv_a);
            // The rotated q_pe goes where the path's queries hold it: after
            // q_nope (expanded), or after the latent query (absorbed).
            if (expanded)
                ops.copy_columns(q_pe, s.rope, q + s.nope, s.q_head(), head_rows, s.rope);
            else
                ops.copy_columns(q_pe, s.rope, query + s.kv_lora_rank, query_row, head_rows, s.rope);

            if constexpr (Ops::kExpandsLatent)
                if (expanded) attend_expanded(ops.pool(), layer, cache, il, positions, q, *expanded, attn);
            if (!expanded) {
                // Each head's latent query K_bᵀ q_nope, one matmul per head over the batch.
                ops.per_head(layer.k_b, q, s.q_head(), s.nope, query, query_row, n_tokens);
                ops.attend_latent(cache, il, query, attention_shape, latent_out);
                // Each head's values V_b (softmax · latent).
                ops.per_head(layer.v_b, latent_out, s.kv_lora_rank, s.kv_lora_rank, attn, s.v_head_dim, n_tokens);
            }
            ops.project(attn, n_tokens, n_heads * s.v_head_dim, {{&layer.wo, block_out}}, loras);
            ops.add(residual, block_out, n_tokens * n_embd);

            ops.rms_norm(residual, layer.ffn_norm, n_tokens, n_embd, c.rms_norm_eps, normed);
            if (layer.dense)
                ops.ffn_gated(layer.ffn_gate, layer.ffn_up, layer.ffn_down, GatedActivation::Silu, normed, n_tokens,
                              block_out, loras);
            else
                ops.ffn_experts(layer.experts, GatedActivation::Silu, normed, n_tokens, block_out, expert_usage_of(il),
                                loras);
            ops.add(residual, block_out, n_tokens * n_embd);
        }

        // Only the rows whose logits are wanted go through the head.
        const std::int64_t first_row = rows == LogitRows::All ? 0 : n_tokens - 1;
        const std::int64_t n_rows = n_tokens - first_row;
        ops.rms_norm(residual + first_row * n_embd, output_norm_, n_rows, n_embd, c.rms_norm_eps, normed);
        float* logits = ops.buffer(kLogits, n_rows * c.n_vocab);  // (n_rows, n_vocab)
        ops.project(normed, n_rows, n_embd, {{&output_, logits}}, LoraSet{});
        return ops.to_host(logits, n_rows * c.n_vocab);
    }

    // Whether a batch of n_tokens attends faster expanded: over every cached
    // row, absorbed attention's scores and sums cost n_tokens x n_heads x
    // (cache row + kv_lora_rank) multiply-adds, expanded attention's
    // n_tokens x n_heads x (q head + v head) plus the expansion itself,
    // n_heads x (nope + v) x kv_lora_rank. Decode steps stay absorbed.
    bool expands(std::int64_t n_tokens) const {
        const LatentShape& s = shape_;
        const std::int64_t saved = static_cast<std::int64_t>(s.n_heads) *
                                   (s.cache_row() + s.kv_lora_rank - s.q_head() - s.v_head_dim);
        const std::int64_t expansion = static_cast<std::int64_t>(s.n_heads) * (s.nope + s.v_head_dim) * s.kv_lora_rank;
        return n_tokens * saved > expansion;
    }

    // attn (n_tokens, n_heads, v_head_dim) for queries q (n_tokens, n_heads,
    // nope + rope, RoPE applied) over cache rows [0, expanded.n_positions()):
    // each row's latent expanded to the heads' keys [K_b c | k_pe] and
    // values V_b c in `expanded` (one layer), then plain multi-head attention.
    void attend_expanded(ThreadPool& pool, const LatentLayer& layer, const KvCache& cache, int il,
                         std::span<const std::int32_t> positions, const float* q, KvCache& expanded, float* attn) {
        const LatentShape& s = shape_;
        // Rows are expanded a block at a time, so that the f32 keys and
        // values in flight stay a few MB however long the context.
        constexpr std::int64_t kBlockRows = 256;
        const std::int64_t rows = expanded.n_positions();
        const GgmlType cache_type = cache.type() == KvType::F16 ? GgmlType::F16 : GgmlType::Q8_0;
        const std::int64_t k_width = static_cast<std::int64_t>(s.n_heads) * s.q_head();
        const std::int64_t v_width = static_cast<std::int64_t>(s.n_heads) * s.v_head_dim;
        const auto block_size = [&](std::int64_t width) { return static_cast<std::size_t>(kBlockRows * width); };
        std::vector<float> cached(block_size(s.cache_row())), latents(block_size(s.kv_lora_rank));
        std::vector<float> keys(block_size(k_width)), values(block_size(v_width));
        std::vector<float> head_keys(block_size(s.nope)), head_values(block_size(s.v_head_dim));
        for (std::int64_t first = 0; first < rows; first += kBlockRows) {
            const std::int64_t n = std::min(kBlockRows, rows - first);
            pool.parallel_for(n, 64, [&](std::int64_t begin, std::int64_t end) {
                for (std::int64_t r = begin; r < end; ++r) {
                    dequantize_row(cache_type,
                                   cache.keys(il, 0) + (first + r) * static_cast<std::int64_t>(cache.key_group_bytes()),
                                   cached.data() + r * s.cache_row(), s.cache_row());
                    std::copy_n(cached.data() + r * s.cache_row(), s.kv_lora_rank, latents.data() + r * s.kv_lora_rank);
                }
            });
            MatmulInput input(latents.data(), n, s.kv_lora_rank);
            for (int h = 0; h < s.n_heads; ++h) {
                matmul(pool, layer.k_b_rows[static_cast<std::size_t>(h)], input, head_keys.data());
                matmul(pool, layer.v_b[static_cast<std::size_t>(h)], input, head_values.data());
                for (std::int64_t r = 0; r < n; ++r) {
                    float* key = keys.data() + r * k_width + h * s.q_head();
                    std::copy_n(head_keys.data() + r * s.nope, s.nope, key);
                    std::copy_n(cached.data() + r * s.cache_row() + s.kv_lora_rank, s.rope, key + s.nope);
                    std::copy_n(head_values.data() + r * s.v_head_dim, s.v_head_dim,
                                values.data() + r * v_width + h * s.v_head_dim);
                }
            }
            pool.parallel_for(n, 64, [&](std::int64_t begin, std::int64_t end) {
                for (std::int64_t r = begin; r < end; ++r)
                    expanded.store(0, static_cast<int>(first + r), keys.data() + r * k_width, values.data() + r * v_width);
            });
        }
        attention(pool, q, positions, expanded, 0, AttentionShape{s.n_heads, s.n_heads, s.q_head(), s.v_head_dim, scale_},
                  attn);
    }

    LatentShape shape_;
    float scale_ = 1.f;  // on q·k: mscale² / sqrt(nope + rope)
    RopeParameters rope_;
    WeightMatrix token_embd_;           // (n_vocab, n_embd)
    std::vector<LatentLayer> layers_;   // n_layers
    std::vector<float> output_norm_;    // (n_embd)
    WeightMatrix output_;               // (n_vocab, n_embd); token_embd_ when tied
    std::vector<std::vector<std::uint16_t>> owned_;  // the K_b the file lacks, transposed, f16
#ifdef FOLIO_USE_CUDA
    DecoderBackend backend_;
#endif
};

}  // namespace

std::unique_ptr<Model> load_deepseek2(const GgufFile& file) {
    return std::make_unique<DeepSeek2Model>(file);
}

}  // namespace folio::engine
