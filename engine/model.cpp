#include "engine/model.h"

#include <algorithm>
#include <cstdint>
#include <numeric>
#include <string>

#include "engine/blocks_cpu.h"
#include "engine/llm_decoder.h"
#include "engine/model_loader.h"
#include "engine/quant.h"

#ifdef FOLIO_USE_CUDA
#include "engine/cuda/kernels.h"
#endif

namespace folio::engine {

namespace {

int positive_int(const GgufFile& file, const std::string& key, std::uint32_t value) {
    if (value == 0 || value > (1u << 30))
        throw ModelError(file.source() + ": " + key + " = " + std::to_string(value) + " is out of range");
    return static_cast<int>(value);
}

}  // namespace

KvCache Model::make_kv_cache(int n_positions, KvType type) const {
    const int positions = n_positions > 0 ? n_positions : config_.n_ctx_train;
    const int k_width = config_.n_kv_heads * config_.head_dim;
    const int v_width = config_.n_kv_heads * config_.v_head_dim;
    if (!on_gpu()) return KvCache(config_.n_layers, positions, config_.n_kv_heads, k_width, v_width, type);
#ifdef FOLIO_USE_CUDA
    try {
        cuda::use_gpu(gpu_);
        return KvCache::on_gpu(config_.n_layers, positions, config_.n_kv_heads, k_width, v_width, type,
                               cuda::free_gpu_memory(),
                               [](std::size_t bytes) {
                                   auto memory = std::make_shared<cuda::DeviceMemory>(bytes);
                                   void* device = memory->get();
                                   return std::shared_ptr<void>(memory, device);
                               });
    } catch (const cuda::CudaError& error) {
        throw KvCacheError(error.what());
    }
#else
    throw KvCacheError("this Folio was built without the CUDA backend");
#endif
}

std::int64_t ExpertUsage::total() const {
    std::int64_t sum = 0;
    for (const std::int64_t count : counts) sum += count;
    return sum;
}

double ExpertUsage::mean_max_load() const {
    if (layers.empty() || n_expert == 0) return 0;
    double sum = 0;
    int counted = 0;
    for (std::size_t i = 0; i < layers.size(); ++i) {
        const auto first = counts.begin() + static_cast<std::ptrdiff_t>(i * static_cast<std::size_t>(n_expert));
        const std::int64_t layer_total = std::accumulate(first, first + n_expert, std::int64_t{0});
        if (layer_total == 0) continue;
        sum += static_cast<double>(*std::max_element(first, first + n_expert)) * n_expert / static_cast<double>(layer_total);
        ++counted;
    }
    return counted > 0 ? sum / counted : 0;
}

void Model::reset_expert_usage() {
    std::fill(expert_usage_.counts.begin(), expert_usage_.counts.end(), 0);
}

void Model::count_expert_usage(std::vector<int> layers, int n_expert) {
    expert_usage_.n_expert = n_expert;
    expert_usage_.counts.assign(layers.size() * static_cast<std::size_t>(n_expert), 0);
    expert_usage_.layers = std::move(layers);
}

std::span<std::int64_t> Model::expert_usage_of(int layer) {
    const auto at = std::find(expert_usage_.layers.begin(), expert_usage_.layers.end(), layer);
    if (at == expert_usage_.layers.end()) return {};
    const auto i = static_cast<std::size_t>(at - expert_usage_.layers.begin());
    return std::span<std::int64_t>(expert_usage_.counts)
        .subspan(i * static_cast<std::size_t>(expert_usage_.n_expert), static_cast<std::size_t>(expert_usage_.n_expert));
}

void Model::use_gpu(int gpu, const GpuPlacement& placement) {
    if (on_gpu()) return;
#ifdef FOLIO_USE_CUDA
    host_expert_layers_ = place_on_gpu(gpu, placement);
    gpu_ = gpu;
#else
    (void)gpu;
    (void)placement;
    throw ModelError("this Folio was built without the CUDA backend");
#endif
}

void Model::use_cpu() {
    if (!on_gpu()) return;
    release_gpu();
    gpu_ = -1;
    host_expert_layers_ = 0;
}

void Model::group_matrices_on_first_cpu_pass(ThreadPool& pool,
                                             const std::function<std::vector<WeightMatrix*>()>& matrices) {
    if (on_gpu() || cpu_matrices_grouped_) return;
    const std::vector<WeightMatrix*> listed = matrices();
    group_weight_matrices(pool, listed, row_groups_);
    for (const WeightMatrix* w : listed)
        if (w->row_groups) file_.release_pages({w->data, static_cast<std::size_t>(w->rows * w->row_bytes)});
    cpu_matrices_grouped_ = true;
}

int Model::place_on_gpu(int, const GpuPlacement&) {
    throw ModelError("the CUDA backend does not run " + config_.architecture + " models yet");
}

std::size_t Model::gpu_reserved_bytes(const GpuPlacement& placement) const {
    const int positions = placement.context_positions > 0 ? placement.context_positions : config_.n_ctx_train;
    return KvCache::bytes_needed(config_.n_layers, positions, config_.n_kv_heads,
                                 config_.n_kv_heads * config_.head_dim, config_.n_kv_heads * config_.v_head_dim,
                                 placement.kv_type) +
           kGpuActivationReserveBytes;
}

int Model::expert_layers_on_host(std::span<const ExpertFfn* const> expert_layers, std::size_t free_bytes,
                                 const GpuPlacement& placement) const {
    const auto n_layers = static_cast<int>(expert_layers.size());
    if (n_layers == 0) return 0;
    if (placement.host_expert_layers != GpuPlacement::kFitExperts) return std::min(placement.host_expert_layers, n_layers);
    std::vector<std::size_t> expert_bytes;
    std::size_t all_bytes = 0;
    for (const GgufTensor& tensor : file_.tensors()) all_bytes += tensor.n_bytes();
    for (const ExpertFfn* experts : expert_layers) {
        std::size_t bytes = 0;
        for (const std::vector<WeightMatrix>* kind : {&experts->gate, &experts->up, &experts->down})
            for (const WeightMatrix& weight : *kind) bytes += static_cast<std::size_t>(weight.rows * weight.row_bytes);
        expert_bytes.push_back(bytes);
        all_bytes -= bytes;
    }
    return expert_layers_to_keep_on_host(expert_bytes, all_bytes, free_bytes, gpu_reserved_bytes(placement));
}

std::vector<float> Model::forward(ThreadPool& pool, std::span<const std::int32_t> tokens,
                                  std::span<const std::int32_t> positions, KvCache& cache, LogitRows rows,
                                  const LoraSet& loras) {
    if (tokens.empty())
        throw ModelError("forward: empty batch");
    if (tokens.size() != positions.size())
        throw ModelError("forward: " + std::to_string(tokens.size()) + " tokens but " +
                         std::to_string(positions.size()) + " positions");
    if (cache.n_layers() != config_.n_layers || cache.n_kv_heads() != config_.n_kv_heads ||
        cache.k_width() != config_.n_kv_heads * config_.head_dim ||
        cache.v_width() != config_.n_kv_heads * config_.v_head_dim)
        throw ModelError("forward: the KV cache was not made for this model");
    for (std::size_t i = 0; i < tokens.size(); ++i) {
        if (tokens[i] < 0 || tokens[i] >= config_.n_vocab)
            throw ModelError("forward: token id " + std::to_string(tokens[i]) + " outside the vocabulary of " +
                             std::to_string(config_.n_vocab));
        if (positions[i] < 0 || positions[i] >= cache.n_positions())
            throw ModelError("forward: position " + std::to_string(positions[i]) + " outside the cache of " +
                             std::to_string(cache.n_positions()));
    }
    if (cache.on_gpu() != on_gpu())
        throw ModelError(on_gpu() ? "forward: the model runs on the GPU but the KV cache is in host memory"
                                  : "forward: the KV cache is on the GPU but the model runs on the CPU");
    for (const LoraUse& use : loras.uses)
        if (!use.adapter || !use.adapter->fits(*this))
            throw ModelError("forward: the adapter " + (use.adapter ? use.adapter->source() : std::string("(none)")) +
                             " was not loaded for this model");
    return run(pool, tokens, positions, cache, rows, loras);
}

std::vector<float> Model::encode(ThreadPool& pool, std::span<const std::int32_t> tokens,
                                 std::span<const std::int32_t> sequence_lengths,
                                 std::span<const std::int32_t> token_types) {
    const std::int32_t whole[] = {static_cast<std::int32_t>(std::min<std::size_t>(tokens.size(), INT32_MAX))};
    if (sequence_lengths.empty())
        sequence_lengths = whole;
    std::size_t total = 0;
    for (const std::int32_t length : sequence_lengths) {
        if (length <= 0)
            throw ModelError("encode: empty sequence");
        if (length > config_.n_ctx_train)
            throw ModelError("encode: " + std::to_string(length) + " tokens, more than the " +
                             std::to_string(config_.n_ctx_train) + " positions of the model");
        total += static_cast<std::size_t>(length);
    }
    if (total != tokens.size())
        throw ModelError("encode: sequence lengths add up to " + std::to_string(total) + ", not the " +
                         std::to_string(tokens.size()) + " tokens");
    for (const std::int32_t token : tokens)
        if (token < 0 || token >= config_.n_vocab)
            throw ModelError("encode: token id " + std::to_string(token) + " outside the vocabulary of " +
                             std::to_string(config_.n_vocab));
    if (!token_types.empty() && token_types.size() != tokens.size())
        throw ModelError("encode: " + std::to_string(token_types.size()) + " token types for " +
                         std::to_string(tokens.size()) + " tokens");
    return run_encoder(pool, tokens, sequence_lengths, token_types);
}

void Model::encode_in_batches(ThreadPool& pool, std::span<const std::vector<std::int32_t>> sequences,
                              std::span<const std::vector<std::int32_t>> token_types, std::size_t max_batch_tokens,
                              const EncodedBatch& on_batch) {
    for (std::size_t begin = 0, end = 0; begin < sequences.size(); begin = end) {
        std::vector<std::int32_t> packed, packed_types, lengths;
        for (end = begin;
             end < sequences.size() && (lengths.empty() || packed.size() + sequences[end].size() <= max_batch_tokens);
             ++end) {
            packed.insert(packed.end(), sequences[end].begin(), sequences[end].end());
            if (!token_types.empty())
                packed_types.insert(packed_types.end(), token_types[end].begin(), token_types[end].end());
            lengths.push_back(static_cast<std::int32_t>(sequences[end].size()));
        }
        on_batch(begin, lengths, encode(pool, packed, lengths, packed_types));
    }
}

std::vector<float> Model::run_encoder(ThreadPool&, std::span<const std::int32_t>, std::span<const std::int32_t>,
                                      std::span<const std::int32_t>) {
    throw ModelError("encode: " + config_.architecture + " is a decoder, not an encoder");
}

std::unique_ptr<Model> load_model(const GgufFile& file) {
    const std::string_view architecture = file.architecture();
    if (const DecoderArchitecture* decoder = find_decoder_architecture(architecture))
        return load_decoder(file, *decoder);
    if (architecture == "deepseek2")
        return load_deepseek2(file);
    if (architecture == "bert")
        return load_bert(file);
    throw ModelError(file.source() + ": architecture \"" + std::string(architecture) +
                     "\" is not supported (supported: " + decoder_architecture_names() + ", deepseek2, bert)");
}

ModelConfig read_model_config(const GgufFile& file) {
    ModelConfig config;
    config.architecture = std::string(file.architecture());
    const std::string prefix = config.architecture + ".";
    auto required = [&](const char* key) { return positive_int(file, prefix + key, file.get_u32(prefix + key)); };
    auto optional = [&](const char* key, int fallback) {
        const std::optional<std::uint32_t> value = file.find_u32(prefix + key);
        return value ? positive_int(file, prefix + key, *value) : fallback;
    };
    config.n_layers = required("block_count");
    config.n_embd = required("embedding_length");
    config.n_ff = required("feed_forward_length");
    config.n_heads = required("attention.head_count");
    config.n_kv_heads = optional("attention.head_count_kv", config.n_heads);
    config.head_dim = optional("attention.key_length", config.n_embd / config.n_heads);
    config.v_head_dim = optional("attention.value_length", config.head_dim);
    config.n_rot = optional("rope.dimension_count", config.head_dim);
    config.n_ctx_train = required("context_length");
    config.rope_freq_base = file.get_f32(prefix + "rope.freq_base", config.rope_freq_base);
    config.rms_norm_eps = file.get_f32(prefix + "attention.layer_norm_rms_epsilon", config.rms_norm_eps);
    // Absent or 0: no window.
    const std::string window_key = prefix + "attention.sliding_window";
    if (const std::optional<std::uint32_t> window = file.find_u32(window_key); window && *window)
        config.sliding_window = positive_int(file, window_key, *window);
    config.final_logit_softcapping = file.get_f32(prefix + "final_logit_softcapping", 0.f);
    config.layer_norm_eps = file.get_f32(prefix + "attention.layer_norm_epsilon", config.layer_norm_eps);
    const GgufTensor* token_embd = file.find_tensor("token_embd.weight");
    if (token_embd == nullptr)
        throw ModelError(file.source() + ": tensor token_embd.weight is missing");
    config.n_vocab = positive_int(file, "rows of token_embd.weight", static_cast<std::uint32_t>(token_embd->ne[1]));

    if (config.n_heads % config.n_kv_heads != 0)
        throw ModelError(file.source() + ": " + std::to_string(config.n_heads) + " attention heads do not share " +
                         std::to_string(config.n_kv_heads) + " kv heads evenly");
    if (config.n_rot > config.head_dim || config.n_rot % 2 != 0)
        throw ModelError(file.source() + ": rope.dimension_count " + std::to_string(config.n_rot) +
                         " does not fit a head of " + std::to_string(config.head_dim));
    config.rope_scaling = read_rope_scaling(file, config.architecture, config.n_rot);
    return config;
}

int metadata_count(const GgufFile& file, const std::string& key, std::uint32_t min, std::uint32_t max) {
    const std::uint32_t value = file.get_u32(key);
    if (value < min || value > max)
        throw ModelError(file.source() + ": " + key + " = " + std::to_string(value) + " is out of range");
    return static_cast<int>(value);
}

std::string tensor_shape_text(const GgufTensor& tensor) {
    std::string text = "(";
    for (std::uint32_t d = tensor.n_dims; d-- > 0;) {
        text += std::to_string(tensor.ne[d]);
        if (d > 0)
            text += ", ";
    }
    return text + ")";
}

namespace {

// A weight's type must be one the matmul kernels multiply.
void require_matmul_type(const GgufFile& file, const std::string& name, const GgufTensor& tensor) {
    tensor.require_supported_type();
    try {
        vec_dot_type(tensor.type);
    } catch (const QuantError&) {
        throw ModelError(file.source() + ": tensor " + name + " has type " + std::string(tensor.type_name()) +
                         ", which has no matmul kernels");
    }
}

}  // namespace

std::optional<WeightMatrix> find_weight_matrix(const GgufFile& file, const std::string& name, std::int64_t rows,
                                               std::int64_t cols) {
    const GgufTensor* tensor = file.find_tensor(name);
    if (tensor == nullptr)
        return std::nullopt;
    if (tensor->n_dims != 2 || tensor->ne[0] != cols || tensor->ne[1] != rows)
        throw ModelError(file.source() + ": tensor " + name + " has shape " + tensor_shape_text(*tensor) +
                         ", expected (" + std::to_string(rows) + ", " + std::to_string(cols) + ")");
    require_matmul_type(file, name, *tensor);
    return WeightMatrix{tensor->type, tensor->data.data(), rows, cols, static_cast<std::int64_t>(tensor->row_bytes),
                        tensor->name};
}

WeightMatrix weight_matrix(const GgufFile& file, const std::string& name, std::int64_t rows, std::int64_t cols) {
    std::optional<WeightMatrix> matrix = find_weight_matrix(file, name, rows, cols);
    if (!matrix)
        throw ModelError(file.source() + ": tensor " + name + " is missing");
    return *matrix;
}

std::vector<WeightMatrix> expert_matrices(const GgufFile& file, const std::string& name, std::int64_t n_expert,
                                          std::int64_t rows, std::int64_t cols) {
    const GgufTensor* tensor = file.find_tensor(name);
    if (tensor == nullptr)
        throw ModelError(file.source() + ": tensor " + name + " is missing");
    if (tensor->n_dims != 3 || tensor->ne[0] != cols || tensor->ne[1] != rows || tensor->ne[2] != n_expert)
        throw ModelError(file.source() + ": tensor " + name + " has shape " + tensor_shape_text(*tensor) +
                         ", expected (" + std::to_string(n_expert) + ", " + std::to_string(rows) + ", " +
                         std::to_string(cols) + ")");
    require_matmul_type(file, name, *tensor);
    const auto row_bytes = static_cast<std::int64_t>(tensor->row_bytes);
    std::vector<WeightMatrix> experts;
    for (std::int64_t e = 0; e < n_expert; ++e)
        experts.push_back(WeightMatrix{tensor->type, tensor->data.data() + e * rows * row_bytes, rows, cols, row_bytes,
                                       tensor->name, static_cast<std::int32_t>(e)});
    return experts;
}

GateUpExperts gate_up_experts(const GgufFile& file, const std::string& blk, std::int64_t n_expert, std::int64_t n_ff,
                              std::int64_t n_embd) {
    const std::string fused_name = blk + "ffn_gate_up_exps.weight";
    if (file.find_tensor(fused_name) == nullptr)
        return {expert_matrices(file, blk + "ffn_gate_exps.weight", n_expert, n_ff, n_embd),
                expert_matrices(file, blk + "ffn_up_exps.weight", n_expert, n_ff, n_embd)};
    GateUpExperts experts;
    for (const WeightMatrix& fused : expert_matrices(file, fused_name, n_expert, 2 * n_ff, n_embd)) {
        // Halves of one tensor: no adapter names them apart.
        experts.gate.push_back(WeightMatrix{fused.type, fused.data, n_ff, n_embd, fused.row_bytes, {}});
        experts.up.push_back(WeightMatrix{fused.type, fused.data + n_ff * fused.row_bytes, n_ff, n_embd, fused.row_bytes, {}});
    }
    return experts;
}

std::vector<float> weight_vector(const GgufFile& file, const std::string& name, std::int64_t n) {
    const GgufTensor* tensor = file.find_tensor(name);
    if (tensor == nullptr)
        throw ModelError(file.source() + ": tensor " + name + " is missing");
    if (tensor->n_elements() != n || tensor->ne[0] != n)
        throw ModelError(file.source() + ": tensor " + name + " has shape " + tensor_shape_text(*tensor) +
                         ", expected (" + std::to_string(n) + ")");
    if (!has_quant_kernels(tensor->type))
        throw ModelError(file.source() + ": tensor " + name + " has type " + std::string(tensor->type_name()) +
                         ", which Folio cannot convert");
    std::vector<float> values(static_cast<std::size_t>(n));
    dequantize_row(tensor->type, tensor->data.data(), values.data(), n);
    return values;
}

}  // namespace folio::engine
