#pragma once
// The ops a decoder's forward pass is written in (internal to the engine).
// llm_decoder.cpp and llm_deepseek2.cpp run one description of each layer
// through either set, and llm_bert.cpp one description of an encoder
// (begin_sequences and the ops after it): CpuDecoderOps (blocks_cpu.h on
// the host) or CudaDecoderOps (the CUDA kernels on a GPU, where the weights
// were uploaded once). Buffers are
// float* in the backend's memory; weights are named by the host-side
// WeightMatrix and vectors the model keeps, which the CUDA ops map to their
// device copies.

#include <algorithm>
#include <cstdint>
#include <initializer_list>
#include <memory>
#include <span>
#include <vector>

#include "engine/blocks_cpu.h"
#include "engine/kv_cache.h"
#include "engine/lora.h"
#include "engine/thread_pool.h"

namespace folio::engine {

class CpuDecoderOps {
public:
    explicit CpuDecoderOps(ThreadPool& pool) : pool_(pool) {}

    void begin(std::span<const std::int32_t> tokens, std::span<const std::int32_t> positions, const KvCache&,
               const LoraSet&) {
        tokens_ = tokens;
        positions_ = positions;
    }
    float* buffer(int slot, std::int64_t n) {
        if (slot >= static_cast<int>(buffers_.size())) buffers_.resize(static_cast<std::size_t>(slot) + 1);
        buffers_[static_cast<std::size_t>(slot)].resize(static_cast<std::size_t>(n));
        return buffers_[static_cast<std::size_t>(slot)].data();
    }
    // An encoder's batch: whole sequences packed one after another,
    // sequence_lengths[s] tokens each, each token at positions[t] of its own.
    void begin_sequences(std::span<const std::int32_t> tokens, std::span<const std::int32_t> positions,
                         std::span<const std::int32_t> sequence_lengths) {
        tokens_ = tokens;
        positions_ = positions;
        sequence_lengths_ = sequence_lengths;
        sequence_caches_.clear();
    }
    void embed(const WeightMatrix& table, float* out) { embed_tokens(table, tokens_, out); }
    // Rows ids[i] of the table (host memory): positions, token types.
    void embed(const WeightMatrix& table, std::span<const std::int32_t> ids, float* out) {
        embed_tokens(table, ids, out);
    }
    void scale(float* x, std::int64_t n, float factor) { scale_in_place(x, n, factor); }
    void rms_norm(const float* x, const std::vector<float>& weight, std::int64_t n_rows, std::int64_t n, float eps,
                  float* out) {
        engine::rms_norm(pool_, x, weight.data(), n_rows, n, eps, out);
    }
    void layer_norm(const float* x, const std::vector<float>& weight, const std::vector<float>& bias,
                    std::int64_t n_rows, std::int64_t n, float eps, float* out) {
        engine::layer_norm(pool_, x, weight.data(), bias.data(), n_rows, n, eps, out);
    }
    void project(const float* x, std::int64_t n_rows, std::int64_t n_cols, std::initializer_list<Projection> outputs,
                 const LoraSet& loras) {
        MatmulInput input(x, n_rows, n_cols);  // quantized once for all the outputs
        engine::project(pool_, {outputs.begin(), outputs.size()}, loras, input);
    }
    void add_bias(float* x, const std::vector<float>& bias, std::int64_t n_rows, std::int64_t n) {
        engine::add_bias(x, bias.data(), n_rows, n);
    }
    void rope(float* x, int n_heads, const RopeParameters& params) { engine::rope(pool_, x, positions_, n_heads, params); }
    void attend(KvCache& cache, int layer, const float* k, const float* v, const float* q, const AttentionShape& shape,
                float* out) {
        const std::int64_t k_width = cache.k_width(), v_width = cache.v_width();
        for (std::size_t t = 0; t < positions_.size(); ++t)
            cache.store(layer, positions_[t], k + static_cast<std::int64_t>(t) * k_width,
                        v + static_cast<std::int64_t>(t) * v_width);
        attention(pool_, q, positions_, cache, layer, shape, out);
    }
    // Multi-head latent attention (llm_deepseek2.cpp) over a keys-only
    // cache: store_keys() stores k (n_tokens, k_width) as the batch's rows;
    // attend_latent() attends over them, the values being each key row's
    // first shape.v_head_dim elements. The CPU expands the latents of long
    // batches into every head's keys and values (its dot products then cost
    // less); the GPU's kernels stay absorbed.
    static constexpr bool kExpandsLatent = true;
    ThreadPool& pool() { return pool_; }
    void store_keys(KvCache& cache, int layer, const float* k) {
        for (std::size_t t = 0; t < positions_.size(); ++t)
            cache.store(layer, positions_[t], k + static_cast<std::int64_t>(t) * cache.k_width(), nullptr);
    }
    void attend_latent(const KvCache& cache, int layer, const float* q, const AttentionShape& shape, float* out) {
        attention(pool_, q, positions_, cache, layer, shape, out);
    }
    // out[r, :width] = x[r, :width] for n_rows rows, x_stride and out_stride floats apart.
    void copy_columns(const float* x, std::int64_t x_stride, float* out, std::int64_t out_stride, std::int64_t n_rows,
                      std::int64_t width) {
        for (std::int64_t r = 0; r < n_rows; ++r) std::copy_n(x + r * x_stride, width, out + r * out_stride);
    }
    // out[t, h, :maps[h].rows] (rows out_stride apart per head) = maps[h] ·
    // in[t, h, :in_width] (rows in_stride apart per head), for every token t
    // and head h: the heads' inputs are gathered so that each head's matrix
    // multiplies the whole batch at once.
    void per_head(const std::vector<WeightMatrix>& maps, const float* in, std::int64_t in_stride,
                  std::int64_t in_width, float* out, std::int64_t out_stride, std::int64_t n_tokens) {
        const auto n_heads = static_cast<std::int64_t>(maps.size());
        for (std::int64_t h = 0; h < n_heads; ++h) {
            const WeightMatrix& map = maps[static_cast<std::size_t>(h)];
            head_in_.resize(static_cast<std::size_t>(n_tokens * in_width));
            head_out_.resize(static_cast<std::size_t>(n_tokens * map.rows));
            copy_columns(in + h * in_stride, n_heads * in_stride, head_in_.data(), in_width, n_tokens, in_width);
            MatmulInput input(head_in_.data(), n_tokens, in_width);
            matmul(pool_, map, input, head_out_.data());
            copy_columns(head_out_.data(), map.rows, out + h * out_stride, n_heads * out_stride, n_tokens, map.rows);
        }
    }
    // After begin_sequences: each token attends to every token of its own
    // sequence (shape.causal false), through an f16 cache per sequence that
    // each layer overwrites.
    void attend_within_sequences(const float* k, const float* v, const float* q, const AttentionShape& shape,
                                 float* out) {
        const int k_width = shape.n_kv_heads * shape.head_dim, v_width = shape.n_kv_heads * shape.v_head_dim;
        const std::int64_t q_width = static_cast<std::int64_t>(shape.n_heads) * shape.head_dim;
        const std::int64_t out_width = static_cast<std::int64_t>(shape.n_heads) * shape.v_head_dim;
        if (sequence_caches_.empty())
            for (const std::int32_t length : sequence_lengths_)
                sequence_caches_.emplace_back(1, length, shape.n_kv_heads, k_width, v_width);
        std::int64_t first = 0;  // the sequence's first row
        for (std::size_t s = 0; s < sequence_caches_.size(); ++s) {
            const std::int32_t length = sequence_lengths_[s];
            for (std::int32_t i = 0; i < length; ++i)
                sequence_caches_[s].store(0, i, k + (first + i) * k_width, v + (first + i) * v_width);
            attention(pool_, q + first * q_width, positions_.subspan(static_cast<std::size_t>(first), length),
                      sequence_caches_[s], 0, shape, out + first * out_width);
            first += length;
        }
    }
    void add(float* x, const float* y, std::int64_t n) { add_in_place(x, y, n); }
    void gelu(float* x, std::int64_t n) { gelu_erf(pool_, x, n); }
    void ffn_gated(const WeightMatrix& gate, const WeightMatrix& up, const WeightMatrix& down,
                   GatedActivation activation, const float* x, std::int64_t n_rows, float* out, const LoraSet& loras) {
        MatmulInput input(x, n_rows, gate.cols);
        engine::ffn_gated(pool_, gate, up, down, activation, input, out, &loras);
    }
    void ffn_experts(const ExpertFfn& experts, GatedActivation activation, const float* x, std::int64_t n_rows,
                     float* out, std::span<std::int64_t> usage, const LoraSet& loras) {
        engine::ffn_experts(pool_, experts, activation, x, n_rows, out, usage, &loras);
    }
    void soft_cap(float* x, std::int64_t n, float cap) { engine::soft_cap(x, n, cap); }
    std::vector<float> to_host(const float* x, std::int64_t n) { return {x, x + n}; }

private:
    ThreadPool& pool_;
    std::span<const std::int32_t> tokens_;
    std::span<const std::int32_t> positions_;
    std::span<const std::int32_t> sequence_lengths_;
    std::vector<KvCache> sequence_caches_;  // one per sequence of an encoder's batch
    std::vector<std::vector<float>> buffers_;
    std::vector<float> head_in_, head_out_;  // per_head's gathered rows of one head
};

#ifdef FOLIO_USE_CUDA

// The same ops on a GPU (decoder_ops_cuda.cpp). Holds the device copies of
// the weights given to upload(), a stream and the activation buffers; one
// forward pass at a time. Model::forward has checked that the cache is on
// the GPU. LoRA pairs are copied to the GPU at their first use, as f32 of a
// rank padded to 8 (widen_lora_pair), and kept with their adapters while the
// ops live.
class CudaDecoderOps {
public:
    // Selects the GPU; throws ModelError when it cannot be used.
    explicit CudaDecoderOps(int gpu);
    ~CudaDecoderOps();
    CudaDecoderOps(const CudaDecoderOps&) = delete;
    CudaDecoderOps& operator=(const CudaDecoderOps&) = delete;

    // Copies a weight to the GPU once; later ops find it by its host data.
    // Throws ModelError for a type the kernels do not read or too little memory.
    void upload(const WeightMatrix& weight);
    void upload(const std::vector<float>& vector);
    // A mixture of experts' router, experts (all of one type and shape) and
    // shared experts; at most kMaxRoutedExperts experts.
    void upload(const ExpertFfn& experts);
    // The experts of a model's expert layers, in order: the first
    // host_layers stay in host memory (gpu_placement.h), each such layer's
    // ffn_experts running on the CPU, with the threads of use_host_threads(),
    // between two copies of its rows (steps then run eagerly: a recording
    // cannot wait for the host); the others are uploaded.
    void place_experts(std::span<const ExpertFfn* const> expert_layers, int host_layers);
    void use_host_threads(ThreadPool& pool);
    std::size_t uploaded_bytes() const;
    // The GPU's free memory now.
    std::size_t free_bytes() const;

    // A batch's ids on the GPU. A decode step (one token, no adapters) on a
    // cache the ops have stepped through before is recorded as a CUDA graph
    // at its second step and replayed from the third: the ops then queue
    // nothing and to_host() launches the recording. Moving a buffer discards
    // recordings. Steps with adapters run eagerly.
    void begin(std::span<const std::int32_t> tokens, std::span<const std::int32_t> positions, const KvCache& cache,
               const LoraSet& loras);
    // An encoder's batch, eagerly: its tokens, and for attention each token's
    // key range (its sequence's rows).
    void begin_sequences(std::span<const std::int32_t> tokens, std::span<const std::int32_t> positions,
                         std::span<const std::int32_t> sequence_lengths);
    float* buffer(int slot, std::int64_t n);
    void embed(const WeightMatrix& table, float* out);
    void embed(const WeightMatrix& table, std::span<const std::int32_t> ids, float* out);
    void scale(float* x, std::int64_t n, float factor);
    void rms_norm(const float* x, const std::vector<float>& weight, std::int64_t n_rows, std::int64_t n, float eps,
                  float* out);
    void layer_norm(const float* x, const std::vector<float>& weight, const std::vector<float>& bias,
                    std::int64_t n_rows, std::int64_t n, float eps, float* out);
    void project(const float* x, std::int64_t n_rows, std::int64_t n_cols, std::initializer_list<Projection> outputs,
                 const LoraSet& loras);
    void add_bias(float* x, const std::vector<float>& bias, std::int64_t n_rows, std::int64_t n);
    void rope(float* x, int n_heads, const RopeParameters& params);
    void attend(KvCache& cache, int layer, const float* k, const float* v, const float* q, const AttentionShape& shape,
                float* out);
    // As CpuDecoderOps's, the latent attention absorbed at every batch size.
    static constexpr bool kExpandsLatent = false;
    void store_keys(KvCache& cache, int layer, const float* k);
    void attend_latent(const KvCache& cache, int layer, const float* q, const AttentionShape& shape, float* out);
    void copy_columns(const float* x, std::int64_t x_stride, float* out, std::int64_t out_stride, std::int64_t n_rows,
                      std::int64_t width);
    // One matmul per head: a decode step's row of a head is multiplied
    // where it lies, a batch's rows gathered and scattered around it.
    void per_head(const std::vector<WeightMatrix>& maps, const float* in, std::int64_t in_stride,
                  std::int64_t in_width, float* out, std::int64_t out_stride, std::int64_t n_tokens);
    // The batch's keys and values in an f16 layer of its rows, which the
    // next layer overwrites.
    void attend_within_sequences(const float* k, const float* v, const float* q, const AttentionShape& shape,
                                 float* out);
    void add(float* x, const float* y, std::int64_t n);
    void gelu(float* x, std::int64_t n);
    void ffn_gated(const WeightMatrix& gate, const WeightMatrix& up, const WeightMatrix& down,
                   GatedActivation activation, const float* x, std::int64_t n_rows, float* out, const LoraSet& loras);
    // Routed on the GPU (choosing as route_row on the CPU), unless the layer's
    // experts were kept on the host. A few rows (decode)
    // multiply each row's chosen experts straight from the routing's ids,
    // so a decode step stays one recording; more rows (prefill) go to the
    // host once to be grouped by expert, each expert then multiplying its
    // rows at once (so do the rows of a step with adapters, whose experts'
    // pairs go with their matrices). usage is counted on the GPU for a few
    // rows and added to it at to_host().
    void ffn_experts(const ExpertFfn& experts, GatedActivation activation, const float* x, std::int64_t n_rows,
                     float* out, std::span<std::int64_t> usage, const LoraSet& loras);
    void soft_cap(float* x, std::int64_t n, float cap);
    std::vector<float> to_host(const float* x, std::int64_t n);

private:
    struct State;
    void add_lora_updates(const WeightMatrix& w, const float* x, std::int64_t n_rows, float* out, const LoraSet& loras);
    // A layer's experts of one kind: one allocation when they are one
    // tensor of the file; each matrix stays findable by its host data.
    void upload_experts(const std::vector<WeightMatrix>& kind);
    // ffn_gated's work, whatever the step's mode.
    void run_ffn(const WeightMatrix& gate, const WeightMatrix& up, const WeightMatrix& down, GatedActivation activation,
                 const float* x, std::int64_t n_rows, float* out, const LoraSet& loras);
    // The experts' outputs (n_rows * n_used, n_embd), pair p = row p / n_used's
    // choice p % n_used.
    void expert_outputs_by_pair(const ExpertFfn& experts, GatedActivation activation, const float* x,
                                std::int64_t n_rows, const std::int32_t* ids, float* outputs);
    void expert_outputs_grouped(const ExpertFfn& experts, GatedActivation activation, const float* x,
                                std::int64_t n_rows, const std::int32_t* ids, float* outputs,
                                std::span<std::int64_t> usage, const LoraSet& loras);
    // ffn_experts on the CPU for a layer kept on the host (place_experts).
    void host_ffn_experts(const ExpertFfn& experts, GatedActivation activation, const float* x, std::int64_t n_rows,
                          float* out, std::span<std::int64_t> usage, const LoraSet& loras);
    // The GPU's counters for a layer's usage (registered at first use), and
    // what they counted added to the host's counts.
    unsigned long long* usage_counters(std::span<std::int64_t> usage);
    void fold_usage();
    std::unique_ptr<State> state_;
};

#endif

// Which ops a model's forward pass runs on: the CUDA ops its place_on_gpu
// made, else the CPU's over the caller's threads. One holder for every
// architecture, so that a model's run() is one call whatever the build.
class DecoderBackend {
public:
    // pass(ops), ops being the GPU's when held, else a CpuDecoderOps over pool
    // (the GPU's take the pool for the experts kept on the host).
    template <class Pass>
    auto run(ThreadPool& pool, Pass&& pass) {
#ifdef FOLIO_USE_CUDA
        if (gpu_) {
            gpu_->use_host_threads(pool);
            return pass(*gpu_);
        }
#endif
        CpuDecoderOps ops(pool);
        return pass(ops);
    }

#ifdef FOLIO_USE_CUDA
    void hold(std::unique_ptr<CudaDecoderOps> ops) { gpu_ = std::move(ops); }
    void release() { gpu_.reset(); }

private:
    std::unique_ptr<CudaDecoderOps> gpu_;
#endif
};

}  // namespace folio::engine
