#pragma once
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <span>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "engine/gguf.h"
#include "engine/gpu_placement.h"
#include "engine/kv_cache.h"
#include "engine/lora.h"
#include "engine/rope_scaling.h"
#include "engine/thread_pool.h"

// A decoder-only language model loaded from a GGUF file, run on the CPU.
//
//   GgufFile file = GgufFile::open(path);
//   std::unique_ptr<Model> model = load_model(file);
//   KvCache cache = model->make_kv_cache(2048);
//   ThreadPool pool;
//   logits = model->forward(pool, prompt_ids, {0, 1, ..., n-1}, cache, LogitRows::Last);
//   logits = model->forward(pool, std::vector{next_id}, std::vector{n}, cache, LogitRows::Last);  // decode
//
// The decoders of grouped-query attention, dense or with experts (llama and
// Mixtral, qwen2, qwen2moe, qwen3, qwen3moe, olmoe, gemma3), are descriptions
// that one forward pass runs (llm_decoder.h); other architectures live in
// their own llm_<arch>.cpp (deepseek2: latent attention; bert). All are
// composed from the blocks of blocks_cpu.h; load_model picks one by
// general.architecture.

namespace folio::engine {

struct ExpertFfn;

// A file that is not a model Folio can run: an unknown architecture, a
// missing tensor or key, a shape that disagrees with the hyper-parameters.
// Also a forward() call the model or cache cannot serve. what() is one line.
class ModelError : public std::runtime_error {
public:
    using std::runtime_error::runtime_error;
};

// Hyper-parameters from the file's <arch>.* metadata.
struct ModelConfig {
    std::string architecture;   // general.architecture
    int n_layers = 0;           // block_count
    int n_embd = 0;             // embedding_length
    int n_ff = 0;               // feed_forward_length
    int n_heads = 0;            // attention.head_count
    int n_kv_heads = 0;         // attention.head_count_kv (default: n_heads)
    int head_dim = 0;           // attention.key_length (default: n_embd / n_heads)
    int v_head_dim = 0;         // attention.value_length (default: head_dim); 0: the values are the keys'
                                // first elements (deepseek2's latent cache: one kv head, keys only)
    int n_rot = 0;              // rope.dimension_count (default: head_dim)
    int n_vocab = 0;            // rows of token_embd
    int n_ctx_train = 0;        // context_length
    float rope_freq_base = 10000.f;  // rope.freq_base
    float rms_norm_eps = 1e-5f;      // attention.layer_norm_rms_epsilon
    int sliding_window = 0;          // attention.sliding_window: tokens a local layer sees (0: none)
    float final_logit_softcapping = 0.f;  // final_logit_softcapping (0: none)
    float layer_norm_eps = 1e-5f;    // attention.layer_norm_epsilon (LayerNorm: BERT)
    RopeScaling rope_scaling;        // rope.scaling.*, rope_freqs.weight (rope_scaling.h)
};

// The shape of a weight matrix, (rows, cols): (n_out, n_in); of each
// matrix of a stacked experts tensor, with n_expert of them (0: a plain matrix).
struct WeightShape {
    std::int64_t rows = 0;
    std::int64_t cols = 0;
    std::int64_t n_expert = 0;
};

// How often a mixture of experts chose each expert (Model::expert_usage).
struct ExpertUsage {
    int n_expert = 0;
    std::vector<int> layers;            // the layers with experts
    std::vector<std::int64_t> counts;   // (layers.size(), n_expert): choices of expert e in layers[i]

    bool empty() const { return layers.empty(); }
    std::int64_t total() const;         // all choices: tokens x layers x experts per token
    // The busiest expert's share over the mean share, per layer, averaged
    // over the layers: 1 when every expert is chosen equally often.
    double mean_max_load() const;
};

// Which positions of a batch forward() returns logits for.
enum class LogitRows {
    All,   // every token: scoring a prompt, tests
    Last,  // the batch's last token: generation
};

class Model {
public:
    virtual ~Model() = default;
    Model(const Model&) = delete;
    Model& operator=(const Model&) = delete;

    const ModelConfig& config() const { return config_; }

    // A cache for this model's layers and head sizes, n_positions long
    // (0: the training context length), of f16 or q8_0 elements. Throws
    // KvCacheError when the cache would need more memory than is available
    // (checked before allocating) or the type does not fit the head sizes.
    KvCache make_kv_cache(int n_positions = 0, KvType type = KvType::F16) const;

    // Runs a batch: token i at positions[i]. Stores the batch's keys and
    // values in the cache, then each token attends to cache positions
    // [0, positions[i]], so one call can hold a whole prompt (prefill) or
    // one token (decode). Returns logits (n_rows, n_vocab), n_rows being the
    // batch size or 1 (LogitRows). The adapters in loras (lora.h) apply to
    // the adaptable weights; a cache must not mix positions computed under
    // different sets (Sequence sees to it). Throws ModelError for an empty
    // batch, mismatched spans, a token outside the vocabulary, a position
    // outside the cache, a cache of another shape or an adapter loaded for
    // another model.
    std::vector<float> forward(ThreadPool& pool, std::span<const std::int32_t> tokens,
                               std::span<const std::int32_t> positions, KvCache& cache, LogitRows rows,
                               const LoraSet& loras = {});

    // The weight matrices LoRA adapters may change, by GGUF tensor name:
    // the attention projections and feed-forward matrices of each layer.
    // Empty for a model that takes no adapters (an encoder).
    const std::map<std::string, WeightShape, std::less<>>& adaptable_weights() const { return adaptable_weights_; }

    // Runs the model on GPU `gpu` (the CUDA backend) from now on: its weights
    // are copied there once; forward() runs there and make_kv_cache() makes
    // its caches (f16 or q8_0) in the GPU's memory; LoRA adapters run there
    // too. A mixture of experts keeps the experts of placement's layers in
    // host memory, computed by the CPU (gpu_placement.h); host_expert_layers()
    // says how many. Throws ModelError when this Folio was built without the
    // CUDA backend, the architecture or a weight type has no CUDA kernels, or
    // the GPU cannot be used or cannot hold the weights; the model then stays
    // on the CPU.
    void use_gpu(int gpu = 0, const GpuPlacement& placement = {});
    // The layers whose experts stay in host memory while the model runs on
    // the GPU (0 on the CPU, where every weight is in host memory).
    int host_expert_layers() const { return host_expert_layers_; }
    // What a GPU placement leaves free for the context's KV cache and the
    // activations.
    std::size_t gpu_reserved_bytes(const GpuPlacement& placement) const;
    // Back to the CPU backend: the GPU copies of the weights are freed, and
    // caches made for the GPU no longer fit (forward() says so).
    void use_cpu();
    bool on_gpu() const { return gpu_ >= 0; }

    // Mixtures of experts: how many times each layer's experts were chosen,
    // one count per token and chosen expert, since the model was loaded or
    // reset_expert_usage() was last called (a request's load balance, for the
    // UI and benchmarks). Empty for a model without experts.
    const ExpertUsage& expert_usage() const { return expert_usage_; }
    void reset_expert_usage();

    // Whether the model is an encoder (BERT), which encode() serves and
    // forward() does not.
    virtual bool is_encoder() const { return false; }

    // Encoders: the final hidden states (n_tokens, n_embd) of whole
    // sequences packed one after another in `tokens`, sequence_lengths[s]
    // tokens each (empty: one sequence of all the tokens). Within a sequence
    // token i sits at position i and attends to every token of its sequence,
    // none of another; the packing only lets the matmuls share their weights.
    // token_types: each token's segment (BERT's token_type_ids: 0 for the
    // first text of a pair, 1 for the second), or empty for all 0.
    // Throws ModelError for a decoder, an empty sequence, one longer than
    // n_ctx_train, lengths that do not add up to the tokens, a token
    // outside the vocabulary, or types not one per token or outside the
    // model's segments.
    std::vector<float> encode(ThreadPool& pool, std::span<const std::int32_t> tokens,
                              std::span<const std::int32_t> sequence_lengths = {},
                              std::span<const std::int32_t> token_types = {});
    // encode() over many sequences, consecutive ones packed into batches of
    // at most max_batch_tokens tokens (a longer one runs alone) so that a
    // batch shares one pass over the weights. token_types: one vector per
    // sequence, or empty for all 0. on_batch gets each batch's first
    // sequence, its lengths and its hidden states (their sum, n_embd).
    using EncodedBatch = std::function<void(std::size_t first, std::span<const std::int32_t> lengths,
                                            const std::vector<float>& hidden)>;
    void encode_in_batches(ThreadPool& pool, std::span<const std::vector<std::int32_t>> sequences,
                           std::span<const std::vector<std::int32_t>> token_types, std::size_t max_batch_tokens,
                           const EncodedBatch& on_batch);

protected:
    Model(GgufFile file, ModelConfig config) : file_(std::move(file)), config_(std::move(config)) {}

    // forward() after its checks; tokens and positions are the same length, non-empty.
    virtual std::vector<float> run(ThreadPool& pool, std::span<const std::int32_t> tokens,
                                   std::span<const std::int32_t> positions, KvCache& cache, LogitRows rows,
                                   const LoraSet& loras) = 0;
    // encode() after its checks, with the lengths spelt out and the types
    // one per token or empty; only encoders override it, and check the
    // types against their segments.
    virtual std::vector<float> run_encoder(ThreadPool& pool, std::span<const std::int32_t> tokens,
                                           std::span<const std::int32_t> sequence_lengths,
                                           std::span<const std::int32_t> token_types);

    // use_gpu() for an architecture: copies the weights to the GPU and
    // returns how many layers' experts stayed in host memory. The default
    // refuses (no CUDA kernels for the architecture).
    virtual int place_on_gpu(int gpu, const GpuPlacement& placement);
    // use_cpu(): frees what place_on_gpu made.
    virtual void release_gpu() {}
    // For place_on_gpu: how many of the layers with experts (in order), from
    // the first, keep their experts in host memory: as placement says, or
    // the fewest that leave the GPU's free_bytes room for the context.
    int expert_layers_on_host(std::span<const ExpertFfn* const> expert_layers, std::size_t free_bytes,
                              const GpuPlacement& placement) const;

    // On the first pass on the CPU: the row groups (group_weight_matrices)
    // of the matrices `matrices` lists, whose file pages are then released;
    // later calls, and calls on a GPU, do nothing. Made then, not at load, so
    // that a model placed on a GPU right away never pays for them.
    void group_matrices_on_first_cpu_pass(ThreadPool& pool,
                                          const std::function<std::vector<WeightMatrix*>()>& matrices);

    // Sizes expert_usage() for these layers' n_expert experts each.
    void count_expert_usage(std::vector<int> layers, int n_expert);
    // The counts run() passes to ffn_experts for a layer (one of those given
    // to count_expert_usage).
    std::span<std::int64_t> expert_usage_of(int layer);

    // Lists a weight among adaptable_weights(): run() passes it through lora_matmul.
    void allow_lora(const WeightMatrix& weight) {
        adaptable_weights_.emplace(std::string(weight.name), WeightShape{weight.rows, weight.cols});
    }
    // A layer's experts of one kind, when they are one stacked tensor of the
    // file (named): adapters give each expert its own pair.
    void allow_lora(const std::vector<WeightMatrix>& experts) {
        if (experts.empty() || experts.front().name.empty()) return;
        const WeightMatrix& first = experts.front();
        adaptable_weights_.emplace(std::string(first.name),
                                   WeightShape{first.rows, first.cols, static_cast<std::int64_t>(experts.size())});
    }

    GgufFile file_;  // keeps the mapping that the weights point into
    ModelConfig config_;

private:
    std::map<std::string, WeightShape, std::less<>> adaptable_weights_;
    ExpertUsage expert_usage_;
    int gpu_ = -1;  // the GPU the model runs on; -1: the CPU
    int host_expert_layers_ = 0;
    // The CPU's row groups (group_matrices_on_first_cpu_pass). A decoder's
    // tied head's groups are its output matrix's alone; the embeddings'
    // lookups read the file's rows.
    std::vector<WeightBytes> row_groups_;
    bool cpu_matrices_grouped_ = false;
};

// The model in a GGUF file, by its general.architecture ("llama", "qwen2",
// "qwen3", "gemma3", ...).
// Throws ModelError, or GgufError for a metadata key that is missing or of
// another type.
std::unique_ptr<Model> load_model(const GgufFile& file);

}  // namespace folio::engine
