// The decoder's ops on a GPU (decoder_ops.h): each forwards to a launcher of
// engine/cuda/kernels.h with the device copies of the weights it names.
// Compiled empty without the CUDA backend.

#ifdef FOLIO_USE_CUDA

#include <algorithm>
#include <map>
#include <numeric>
#include <optional>
#include <span>
#include <string>
#include <tuple>
#include <unordered_map>
#include <unordered_set>

#include "engine/cuda/kernels.h"
#include "engine/decoder_ops.h"
#include "engine/ggml_types.h"
#include "engine/model.h"

namespace folio::engine {

// A decode step's recording for one cache (keyed by its rows, length and type).
struct DecodeGraph {
    cuda::Graph graph;
    std::uint64_t recorded_generation = 0;                // the memory layout the recording holds
    std::uint64_t warmed_generation = ~std::uint64_t{0};  // an eager step sized every buffer for this layout
};

enum class StepMode { Eager, Recording, Replaying };

// A LoRA pair's device copy (widen_lora_pair): A (rank, n_in), B (n_out, rank).
struct DeviceLoraPair {
    cuda::DeviceMatrix a;
    cuda::DeviceMatrix b;
};

// A layer's experts on the GPU: the device pointer tables that
// matmul_experts reads (gate's, up's and down's n_expert each).
struct DeviceExpertSet {
    cuda::DeviceExperts gate, up, down;
    cuda::DeviceMemory tables;
};

// Where a layer's usage counts sit in the GPU's counters.
struct UsageSlot {
    std::int64_t* host = nullptr;
    std::size_t n = 0;
    std::size_t offset = 0;
};

struct CudaDecoderOps::State {
    int gpu = 0;
    cuda::Stream stream;
    std::unordered_map<const void*, cuda::DeviceMatrix> matrices;  // by WeightMatrix::data
    std::unordered_map<const void*, const float*> vectors;         // by std::vector<float>::data
    std::unordered_map<const RopeParameters*, cuda::DeviceMemory> inverse_frequencies;
    std::vector<cuda::DeviceMemory> weights;  // owns what the maps point to
    // Held so that the pairs keyed here stay where they are.
    std::vector<std::shared_ptr<const LoraAdapter>> adapters;
    std::unordered_map<const LoraWeight*, DeviceLoraPair> lora_pairs;
    cuda::DeviceMemory lora_down, lora_delta;  // a pair's A·x (n_rows, rank) and B(A·x) (n_rows, n_out)
    std::size_t weight_bytes = 0;
    std::vector<cuda::DeviceMemory> buffers;  // activations, by slot
    cuda::DeviceMemory ffn_gate, ffn_up;      // the feed-forward's intermediate rows
    cuda::DeviceMemory head_in, head_out;     // per_head's gathered rows of one head
    std::unordered_map<const void*, DeviceExpertSet> expert_sets;  // by the data of ExpertFfn::gate
    std::unordered_set<const void*> host_expert_sets;               // kept on the host, by the same key
    ThreadPool* host_pool = nullptr;                                 // runs them
    std::vector<float> host_rows, host_out;                          // their input and output rows
    // A mixture of experts' rows: router logits, chosen ids and weights,
    // the experts' outputs by pair, their gate and up rows by pair, a
    // grouped expert's input and output rows, the host's grouping (pair
    // and row ids by expert), the shared experts' output and gate.
    cuda::DeviceMemory expert_logits, expert_ids, expert_weights, expert_outputs, expert_gate, expert_up,
        expert_in, expert_out, expert_routes, shared_out, shared_logits;
    std::vector<UsageSlot> usage_slots;
    cuda::DeviceMemory usage_counters;  // unsigned long long, usage_slots' n each
    std::size_t usage_size = 0;
    cuda::DeviceMemory batch_tokens, batch_positions;  // a batch's ids
    // An encoder's batch: each token's key range (first, last row), the ids
    // an embedding table is read by, and the f16 keys and values of a layer.
    cuda::DeviceMemory key_ranges, embed_ids, sequence_keys, sequence_values;
    int longest_sequence = 0;
    cuda::DeviceMemory step_token, step_position;      // a decode step's, at addresses recordings keep
    const std::int32_t* tokens = nullptr;  // this batch's, in one of the two
    const std::int32_t* positions = nullptr;
    std::int64_t n_tokens = 0;
    int max_position = 0;
    std::uint64_t buffer_generation = 0;  // counts moves of the buffers above
    // The type too: a cache made where a freed one was may reuse its address.
    std::map<std::tuple<const void*, int, KvType>, DecodeGraph> decode_graphs;
    DecodeGraph* step_graph = nullptr;  // this step's, for a decode step
    StepMode mode = StepMode::Eager;
    bool graphs_failed = false;  // a recording failed once: decode runs eagerly from then on

    std::uint64_t memory_generation() const { return buffer_generation + stream.workspace_generation(); }
};

namespace {

// One layer of a GPU cache as the kernels take it.
cuda::DeviceKvLayer device_layer(const KvCache& cache, int layer) {
    if (cache.type() == KvType::Q8_0)
        return {static_cast<std::uint32_t>(GgmlType::Q8_0), cache.gpu_key_blocks(layer), cache.gpu_value_blocks(layer)};
    return {static_cast<std::uint32_t>(GgmlType::F16), cache.gpu_keys(layer), cache.gpu_values(layer)};
}

// Kernel failures reach the model's callers as the one error type they know.
template <class F>
void translate(F&& f) {
    try {
        f();
    } catch (const cuda::CudaError& error) {
        throw ModelError(error.what());
    }
}

// Device memory of at least `bytes`, replaced when smaller (counted in
// generation). The old block is freed only after the GPU is done with it
// (cudaFree waits).
void* reserve(cuda::DeviceMemory& memory, std::size_t bytes, std::uint64_t& generation) {
    if (memory.bytes() < bytes) {
        memory = cuda::DeviceMemory();
        memory = cuda::DeviceMemory(bytes);
        ++generation;
    }
    return memory.get();
}

// ids copied into memory (reserved for them), in stream order: work queued
// before still reads what the memory held.
const std::int32_t* copy_ids(cuda::Stream& stream, cuda::DeviceMemory& memory, std::span<const std::int32_t> ids,
                             std::uint64_t& generation) {
    const std::size_t bytes = ids.size() * sizeof(std::int32_t);
    void* device = reserve(memory, bytes, generation);
    stream.copy_to_device(device, ids.data(), bytes);
    return static_cast<const std::int32_t*>(device);
}

}  // namespace

CudaDecoderOps::CudaDecoderOps(int gpu) {
    translate([&] {
        cuda::use_gpu(gpu);
        state_ = std::make_unique<State>();
        state_->gpu = gpu;
    });
}

CudaDecoderOps::~CudaDecoderOps() = default;

namespace {

void require_uploadable(const WeightMatrix& weight) {
    if (!cuda::reads_weight_type(static_cast<std::uint32_t>(weight.type)))
        throw ModelError("the CUDA backend does not read " + std::string(ggml_type_name(weight.type)) + " weights (" +
                         std::string(weight.name) + ")");
    if (weight.cols % 8 != 0)
        throw ModelError("the CUDA backend needs weight rows of a multiple of 8 elements (" +
                         std::string(weight.name) + " has " + std::to_string(weight.cols) + ")");
}

}  // namespace

void CudaDecoderOps::upload(const WeightMatrix& weight) {
    if (state_->matrices.contains(weight.data)) return;  // a tied head shares the embeddings
    require_uploadable(weight);
    const auto bytes = static_cast<std::size_t>(weight.rows * weight.row_bytes);
    translate([&] {
        cuda::DeviceMemory memory(bytes);
        state_->stream.copy_to_device(memory.get(), weight.data, bytes);
        state_->matrices.emplace(weight.data, cuda::DeviceMatrix{static_cast<std::uint32_t>(weight.type), memory.get(),
                                                                 weight.rows, weight.cols, weight.row_bytes});
        state_->weights.push_back(std::move(memory));
    });
    state_->weight_bytes += bytes;
}

void CudaDecoderOps::upload(const std::vector<float>& vector) {
    if (vector.empty() || state_->vectors.contains(vector.data())) return;
    const std::size_t bytes = vector.size() * sizeof(float);
    translate([&] {
        cuda::DeviceMemory memory(bytes);
        state_->stream.copy_to_device(memory.get(), vector.data(), bytes);
        state_->vectors.emplace(vector.data(), static_cast<const float*>(memory.get()));
        state_->weights.push_back(std::move(memory));
    });
    state_->weight_bytes += bytes;
}

void CudaDecoderOps::upload(const ExpertFfn& experts) {
    if (state_->expert_sets.contains(experts.gate.data())) return;
    const auto n_expert = static_cast<std::int64_t>(experts.gate.size());
    if (n_expert > kMaxRoutedExperts || experts.n_groups > kMaxRoutedExperts)
        throw ModelError("the CUDA backend routes at most " + std::to_string(kMaxRoutedExperts) + " experts, not " +
                         std::to_string(n_expert));
    upload(experts.router);
    upload(experts.selection_bias);
    for (const std::vector<WeightMatrix>* kind : {&experts.gate, &experts.up, &experts.down}) upload_experts(*kind);
    if (experts.shared_gate.data != nullptr) {
        for (const WeightMatrix* weight : {&experts.shared_gate, &experts.shared_up, &experts.shared_down})
            upload(*weight);
        upload(experts.shared_scale);
    }
    // The pointer tables matmul_experts reads, gate's, up's and down's
    // (upload_experts saw to one type and shape per kind).
    std::vector<const void*> tables;
    for (const std::vector<WeightMatrix>* kind : {&experts.gate, &experts.up, &experts.down})
        for (const WeightMatrix& weight : *kind) tables.push_back(state_->matrices.at(weight.data).data);
    DeviceExpertSet set;
    translate([&] {
        set.tables = cuda::DeviceMemory(tables.size() * sizeof(const void*));
        state_->stream.copy_to_device(set.tables.get(), tables.data(), tables.size() * sizeof(const void*));
    });
    const auto* table = static_cast<const void* const*>(set.tables.get());
    const auto device_experts = [&](const std::vector<WeightMatrix>& kind, std::int64_t at) {
        const WeightMatrix& w = kind.front();
        return cuda::DeviceExperts{static_cast<std::uint32_t>(w.type), table + at * n_expert, w.rows, w.cols,
                                   w.row_bytes};
    };
    set.gate = device_experts(experts.gate, 0);
    set.up = device_experts(experts.up, 1);
    set.down = device_experts(experts.down, 2);
    state_->weight_bytes += tables.size() * sizeof(const void*);
    state_->expert_sets.emplace(experts.gate.data(), std::move(set));
}

void CudaDecoderOps::upload_experts(const std::vector<WeightMatrix>& kind) {
    const WeightMatrix& first = kind.front();
    const auto bytes = static_cast<std::size_t>(first.rows * first.row_bytes);
    const auto* base = static_cast<const std::uint8_t*>(first.data);
    for (std::size_t e = 0; e < kind.size(); ++e) {
        const WeightMatrix& weight = kind[e];
        if (weight.type != first.type || weight.rows != first.rows || weight.cols != first.cols)
            throw ModelError("the CUDA backend needs a layer's experts of one type and shape (" +
                             std::string(weight.name) + ")");
        // Experts apart in the file (not one 3-D tensor) go one by one.
        if (static_cast<const std::uint8_t*>(weight.data) != base + e * bytes) {
            for (const WeightMatrix& each : kind) upload(each);
            return;
        }
    }
    // One allocation for the tensor: thousands of small ones would each
    // take more of the GPU's memory than they hold.
    if (state_->matrices.contains(first.data)) return;
    require_uploadable(first);
    translate([&] {
        cuda::DeviceMemory memory(bytes * kind.size());
        state_->stream.copy_to_device(memory.get(), base, bytes * kind.size());
        for (std::size_t e = 0; e < kind.size(); ++e)
            state_->matrices.emplace(kind[e].data, cuda::DeviceMatrix{static_cast<std::uint32_t>(first.type),
                                                                      static_cast<std::uint8_t*>(memory.get()) + e * bytes,
                                                                      first.rows, first.cols, first.row_bytes});
        state_->weights.push_back(std::move(memory));
    });
    state_->weight_bytes += bytes * kind.size();
}

void CudaDecoderOps::place_experts(std::span<const ExpertFfn* const> expert_layers, int host_layers) {
    for (std::size_t i = 0; i < expert_layers.size(); ++i) {
        if (static_cast<int>(i) < host_layers)
            state_->host_expert_sets.insert(expert_layers[i]->gate.data());
        else
            upload(*expert_layers[i]);
    }
}

void CudaDecoderOps::use_host_threads(ThreadPool& pool) {
    state_->host_pool = &pool;
}

std::size_t CudaDecoderOps::free_bytes() const {
    std::size_t free = 0;
    translate([&] {
        cuda::use_gpu(state_->gpu);
        free = cuda::free_gpu_memory();
    });
    return free;
}

std::size_t CudaDecoderOps::uploaded_bytes() const {
    return state_->weight_bytes;
}

void CudaDecoderOps::begin(std::span<const std::int32_t> tokens, std::span<const std::int32_t> positions,
                           const KvCache& cache, const LoraSet& loras) {
    State& state = *state_;
    if (state.mode == StepMode::Recording) {
        // The last step failed while recording: close the recording and keep decode eager.
        try {
            state.step_graph->graph.end_capture(state.stream);
        } catch (const cuda::CudaError&) {
        }
        state.step_graph->graph = cuda::Graph();
        state.graphs_failed = true;
    }
    state.mode = StepMode::Eager;
    state.step_graph = nullptr;
    for (const LoraUse& use : loras.uses)
        if (std::ranges::find(state.adapters, use.adapter) == state.adapters.end()) state.adapters.push_back(use.adapter);
    // A recording would keep one request's adapters and scales: steps with adapters run eagerly.
    const bool decode_step = tokens.size() == 1 && cache.on_gpu() && !state.graphs_failed && loras.empty() &&
                             state.host_expert_sets.empty();
    translate([&] {
        cuda::use_gpu(state.gpu);    // the CUDA device is per host thread; callers may switch threads
        state.stream.synchronize();  // the last batch may still read the old ids
        state.tokens = copy_ids(state.stream, decode_step ? state.step_token : state.batch_tokens, tokens,
                                state.buffer_generation);
        state.positions = copy_ids(state.stream, decode_step ? state.step_position : state.batch_positions, positions,
                                   state.buffer_generation);
    });
    state.n_tokens = static_cast<std::int64_t>(tokens.size());
    // A decode step splits its attention as for a full cache, so that one
    // recording serves every position of the cache.
    state.max_position = decode_step ? cache.n_positions() - 1 : *std::max_element(positions.begin(), positions.end());
    if (!decode_step) return;
    DecodeGraph& graph = state.decode_graphs[{device_layer(cache, 0).keys, cache.n_positions(), cache.type()}];
    state.step_graph = &graph;
    const std::uint64_t generation = state.memory_generation();
    if (graph.graph.ready() && graph.recorded_generation == generation) {
        state.mode = StepMode::Replaying;
    } else if (graph.warmed_generation == generation) {
        translate([&] { graph.graph.begin_capture(state.stream); });
        state.mode = StepMode::Recording;
    }
}

void CudaDecoderOps::begin_sequences(std::span<const std::int32_t> tokens, std::span<const std::int32_t>,
                                     std::span<const std::int32_t> sequence_lengths) {
    State& state = *state_;
    // Row t of the batch's keys and values is token t's; it sees its sequence's rows.
    std::vector<std::int32_t> rows(tokens.size()), ranges(2 * tokens.size());
    std::iota(rows.begin(), rows.end(), 0);
    std::int32_t first = 0;
    for (const std::int32_t length : sequence_lengths) {
        for (std::int32_t i = first; i < first + length; ++i) {
            ranges[2 * static_cast<std::size_t>(i)] = first;
            ranges[2 * static_cast<std::size_t>(i) + 1] = first + length - 1;
        }
        first += length;
    }
    state.longest_sequence = *std::max_element(sequence_lengths.begin(), sequence_lengths.end());
    state.mode = StepMode::Eager;
    state.step_graph = nullptr;
    state.n_tokens = static_cast<std::int64_t>(tokens.size());
    translate([&] {
        cuda::use_gpu(state.gpu);
        state.stream.synchronize();
        state.tokens = copy_ids(state.stream, state.batch_tokens, tokens, state.buffer_generation);
        state.positions = copy_ids(state.stream, state.batch_positions, rows, state.buffer_generation);
        copy_ids(state.stream, state.key_ranges, ranges, state.buffer_generation);
    });
}

float* CudaDecoderOps::buffer(int slot, std::int64_t n) {
    if (slot >= static_cast<int>(state_->buffers.size())) state_->buffers.resize(static_cast<std::size_t>(slot) + 1);
    void* memory = nullptr;
    translate([&] {
        memory = reserve(state_->buffers[static_cast<std::size_t>(slot)], n * sizeof(float), state_->buffer_generation);
    });
    return static_cast<float*>(memory);
}

namespace {

using MatrixMap = std::unordered_map<const void*, cuda::DeviceMatrix>;
using VectorMap = std::unordered_map<const void*, const float*>;

const cuda::DeviceMatrix& device_matrix(const MatrixMap& matrices, const WeightMatrix& weight) {
    const auto found = matrices.find(weight.data);
    if (found == matrices.end())
        throw ModelError("the CUDA backend was not given the weight " + std::string(weight.name));
    return found->second;
}

template <class T>
T* reserve_for(cuda::DeviceMemory& memory, std::int64_t count, std::uint64_t& generation) {
    return static_cast<T*>(reserve(memory, static_cast<std::size_t>(count) * sizeof(T), generation));
}

int activation_id(GatedActivation activation) {
    return activation == GatedActivation::Silu ? 0 : 1;
}

const float* device_vector(const VectorMap& vectors, const std::vector<float>& vector) {
    const auto found = vectors.find(vector.data());
    if (found == vectors.end()) throw ModelError("the CUDA backend was not given a norm or bias vector");
    return found->second;
}

}  // namespace

void CudaDecoderOps::embed(const WeightMatrix& table, float* out) {
    if (state_->mode == StepMode::Replaying) return;  // the recording queues it
    const cuda::DeviceMatrix& device_table = device_matrix(state_->matrices, table);
    translate([&] {
        cuda::embed_rows(state_->stream, device_table, state_->tokens, state_->n_tokens, out);
    });
}

void CudaDecoderOps::embed(const WeightMatrix& table, std::span<const std::int32_t> ids, float* out) {
    const cuda::DeviceMatrix& device_table = device_matrix(state_->matrices, table);
    translate([&] {
        const std::int32_t* device_ids = copy_ids(state_->stream, state_->embed_ids, ids, state_->buffer_generation);
        cuda::embed_rows(state_->stream, device_table, device_ids, static_cast<std::int64_t>(ids.size()), out);
    });
}

void CudaDecoderOps::scale(float* x, std::int64_t n, float factor) {
    if (state_->mode == StepMode::Replaying) return;  // the recording queues it
    translate([&] { cuda::scale_in_place(state_->stream, x, n, factor); });
}

void CudaDecoderOps::rms_norm(const float* x, const std::vector<float>& weight, std::int64_t n_rows, std::int64_t n,
                              float eps, float* out) {
    if (state_->mode == StepMode::Replaying) return;  // the recording queues it
    const float* device_weight = device_vector(state_->vectors, weight);
    translate([&] { cuda::rms_norm(state_->stream, x, device_weight, n_rows, n, eps, out); });
}

void CudaDecoderOps::layer_norm(const float* x, const std::vector<float>& weight, const std::vector<float>& bias,
                                std::int64_t n_rows, std::int64_t n, float eps, float* out) {
    const float* device_weight = device_vector(state_->vectors, weight);
    const float* device_bias = device_vector(state_->vectors, bias);
    translate([&] { cuda::layer_norm(state_->stream, x, device_weight, device_bias, n_rows, n, eps, out); });
}

namespace {

// x quantized once for the decode kernels of all the weights that share it,
// when one of them reads int8 activations; nullopt otherwise.
std::optional<cuda::QuantizedRows> shared_quantization(cuda::Stream& stream, const float* x, std::int64_t n_rows,
                                                       std::int64_t n_cols,
                                                       std::span<const cuda::DeviceMatrix* const> weights) {
    if (n_rows > cuda::kMaxVectorRows) return std::nullopt;
    for (const cuda::DeviceMatrix* w : weights)
        if (cuda::takes_int8_activations(w->ggml_type)) return cuda::quantize_rows(stream, x, n_rows, n_cols);
    return std::nullopt;
}

// What matmul takes for w: the shared quantization when w reads one.
const cuda::QuantizedRows* rows_for(const std::optional<cuda::QuantizedRows>& quantized, const cuda::DeviceMatrix& w) {
    return quantized && cuda::takes_int8_activations(w.ggml_type) ? &*quantized : nullptr;
}

}  // namespace

// out (n_rows, w.rows) += Σ scale·B(A·x) over the adapters that adapt w, as
// lora_matmul does on the CPU. Runs eagerly only (begin records no step
// with adapters), so a pair's first use may copy it to the GPU.
void CudaDecoderOps::add_lora_updates(const WeightMatrix& w, const float* x, std::int64_t n_rows, float* out,
                                      const LoraSet& loras) {
    State& state = *state_;
    const auto upload_f32 = [&](const std::vector<float>& values, std::int64_t rows, std::int64_t cols) {
        const std::size_t bytes = values.size() * sizeof(float);
        cuda::DeviceMemory memory(bytes);
        state.stream.copy_to_device(memory.get(), values.data(), bytes);
        const cuda::DeviceMatrix matrix{static_cast<std::uint32_t>(GgmlType::F32), memory.get(), rows, cols,
                                        cols * static_cast<std::int64_t>(sizeof(float))};
        state.weights.push_back(std::move(memory));
        state.weight_bytes += bytes;
        return matrix;
    };
    for (const LoraUse& use : loras.uses) {
        const LoraWeight* pair = use.adapter->find(w.name, w.expert);
        if (pair == nullptr) continue;
        const float scale = use.adapter->scale(*pair, use.scale);
        if (scale == 0.f) continue;
        auto found = state.lora_pairs.find(pair);
        if (found == state.lora_pairs.end()) {
            const WidenedLoraPair widened = widen_lora_pair(*pair, 8);
            const DeviceLoraPair device{upload_f32(widened.a, widened.rank, pair->a.cols),
                                        upload_f32(widened.b, pair->b.rows, widened.rank)};
            found = state.lora_pairs.emplace(pair, device).first;
        }
        const DeviceLoraPair& device = found->second;
        auto* down = static_cast<float*>(
            reserve(state.lora_down, static_cast<std::size_t>(n_rows * device.a.rows) * sizeof(float),
                    state.buffer_generation));
        auto* delta = static_cast<float*>(
            reserve(state.lora_delta, static_cast<std::size_t>(n_rows * w.rows) * sizeof(float), state.buffer_generation));
        cuda::matmul(state.stream, device.a, x, n_rows, down);
        cuda::scale_in_place(state.stream, down, n_rows * device.a.rows, scale);
        cuda::matmul(state.stream, device.b, down, n_rows, delta);
        cuda::add_in_place(state.stream, out, delta, n_rows * w.rows);
    }
}

void CudaDecoderOps::project(const float* x, std::int64_t n_rows, std::int64_t n_cols,
                             std::initializer_list<Projection> outputs, const LoraSet& loras) {
    if (state_->mode == StepMode::Replaying) return;  // the recording queues it
    std::vector<const cuda::DeviceMatrix*> weights;
    for (const Projection& projection : outputs) weights.push_back(&device_matrix(state_->matrices, *projection.weight));
    translate([&] {
        const std::optional<cuda::QuantizedRows> quantized =
            weights.size() > 1 ? shared_quantization(state_->stream, x, n_rows, n_cols, weights) : std::nullopt;
        for (std::size_t i = 0; i < weights.size(); ++i)
            cuda::matmul(state_->stream, *weights[i], x, n_rows, outputs.begin()[i].out, rows_for(quantized, *weights[i]));
        for (const Projection& projection : outputs)
            add_lora_updates(*projection.weight, x, n_rows, projection.out, loras);
    });
}

void CudaDecoderOps::add_bias(float* x, const std::vector<float>& bias, std::int64_t n_rows, std::int64_t n) {
    if (state_->mode == StepMode::Replaying) return;  // the recording queues it
    const float* device_bias = device_vector(state_->vectors, bias);
    translate([&] { cuda::add_bias(state_->stream, x, device_bias, n_rows, n); });
}

void CudaDecoderOps::rope(float* x, int n_heads, const RopeParameters& params) {
    if (state_->mode == StepMode::Replaying) return;  // the recording queues it
    auto found = state_->inverse_frequencies.find(&params);
    translate([&] {
        if (found == state_->inverse_frequencies.end()) {
            // The same angles the CPU backend turns by, computed once per layer's parameters.
            const std::vector<double> inverse = rope_inverse_frequencies(params.n_rot, params.freq_base, params.scaling);
            cuda::DeviceMemory memory(inverse.size() * sizeof(double));
            state_->stream.copy_to_device(memory.get(), inverse.data(), inverse.size() * sizeof(double));
            found = state_->inverse_frequencies.emplace(&params, std::move(memory)).first;
        }
        cuda::rope(state_->stream, x, state_->positions, state_->n_tokens,
                   n_heads, params.head_dim, params.n_rot, static_cast<const double*>(found->second.get()),
                   static_cast<float>(rope_attention_factor(params.scaling)),
                   params.style == RopeStyle::HalfSplit);
    });
}

void CudaDecoderOps::attend(KvCache& cache, int layer, const float* k, const float* v, const float* q,
                            const AttentionShape& shape, float* out) {
    if (state_->mode == StepMode::Replaying) return;  // the recording queues it
    const auto* positions = state_->positions;
    const cuda::AttentionParameters parameters{shape.n_heads,    shape.n_kv_heads, shape.head_dim,
                                               shape.v_head_dim, shape.scale,      shape.window};
    const cuda::DeviceKvLayer rows = device_layer(cache, layer);
    translate([&] {
        cuda::store_kv(state_->stream, k, v, positions, state_->n_tokens, cache.k_width(), cache.v_width(), rows);
        cuda::attention(state_->stream, q, positions, state_->n_tokens, state_->max_position, rows, parameters, out);
    });
}

void CudaDecoderOps::store_keys(KvCache& cache, int layer, const float* k) {
    if (state_->mode == StepMode::Replaying) return;  // the recording queues it
    const cuda::DeviceKvLayer rows = device_layer(cache, layer);
    translate([&] {
        cuda::store_kv(state_->stream, k, nullptr, state_->positions, state_->n_tokens, cache.k_width(), 0, rows);
    });
}

void CudaDecoderOps::attend_latent(const KvCache& cache, int layer, const float* q, const AttentionShape& shape,
                                   float* out) {
    if (state_->mode == StepMode::Replaying) return;  // the recording queues it
    cuda::AttentionParameters parameters{shape.n_heads,    shape.n_kv_heads, shape.head_dim,
                                         shape.v_head_dim, shape.scale,      shape.window};
    parameters.values_in_keys = true;
    const cuda::DeviceKvLayer rows = device_layer(cache, layer);
    translate([&] {
        cuda::attention(state_->stream, q, state_->positions, state_->n_tokens, state_->max_position, rows, parameters,
                        out);
    });
}

void CudaDecoderOps::attend_within_sequences(const float* k, const float* v, const float* q,
                                             const AttentionShape& shape, float* out) {
    State& state = *state_;
    const int k_width = shape.n_kv_heads * shape.head_dim, v_width = shape.n_kv_heads * shape.v_head_dim;
    translate([&] {
        // f16 rows, as the CPU's caches hold them.
        void* keys = reserve(state.sequence_keys, static_cast<std::size_t>(state.n_tokens * k_width) * 2,
                             state.buffer_generation);
        void* values = reserve(state.sequence_values, static_cast<std::size_t>(state.n_tokens * v_width) * 2,
                               state.buffer_generation);
        const cuda::DeviceKvLayer rows{static_cast<std::uint32_t>(GgmlType::F16), keys, values};
        cuda::AttentionParameters parameters{shape.n_heads,    shape.n_kv_heads, shape.head_dim,
                                             shape.v_head_dim, shape.scale,      0};
        parameters.key_ranges = static_cast<const std::int32_t*>(state.key_ranges.get());
        cuda::store_kv(state.stream, k, v, state.positions, state.n_tokens, k_width, v_width, rows);
        cuda::attention(state.stream, q, state.positions, state.n_tokens, state.longest_sequence - 1, rows, parameters,
                        out);
    });
}

void CudaDecoderOps::copy_columns(const float* x, std::int64_t x_stride, float* out, std::int64_t out_stride,
                                  std::int64_t n_rows, std::int64_t width) {
    if (state_->mode == StepMode::Replaying) return;  // the recording queues it
    translate([&] { cuda::copy_columns(state_->stream, x, x_stride, out, out_stride, n_rows, width); });
}

void CudaDecoderOps::per_head(const std::vector<WeightMatrix>& maps, const float* in, std::int64_t in_stride,
                              std::int64_t in_width, float* out, std::int64_t out_stride, std::int64_t n_tokens) {
    if (state_->mode == StepMode::Replaying) return;  // the recording queues it
    State& state = *state_;
    const auto n_heads = static_cast<std::int64_t>(maps.size());
    // The matrix-vector kernels read a row as float4s: a head's row must start 16-byte aligned.
    const bool in_place = n_tokens == 1 && in_stride % 4 == 0;
    translate([&] {
        for (std::int64_t h = 0; h < n_heads; ++h) {
            const cuda::DeviceMatrix& map = device_matrix(state.matrices, maps[static_cast<std::size_t>(h)]);
            if (in_place) {
                cuda::matmul(state.stream, map, in + h * in_stride, 1, out + h * out_stride);
                continue;
            }
            auto* rows_in = reserve_for<float>(state.head_in, n_tokens * in_width, state.buffer_generation);
            auto* rows_out = reserve_for<float>(state.head_out, n_tokens * map.rows, state.buffer_generation);
            cuda::copy_columns(state.stream, in + h * in_stride, n_heads * in_stride, rows_in, in_width, n_tokens,
                               in_width);
            cuda::matmul(state.stream, map, rows_in, n_tokens, rows_out);
            cuda::copy_columns(state.stream, rows_out, map.rows, out + h * out_stride, n_heads * out_stride, n_tokens,
                               map.rows);
        }
    });
}

void CudaDecoderOps::add(float* x, const float* y, std::int64_t n) {
    if (state_->mode == StepMode::Replaying) return;  // the recording queues it
    translate([&] { cuda::add_in_place(state_->stream, x, y, n); });
}

void CudaDecoderOps::gelu(float* x, std::int64_t n) {
    translate([&] { cuda::gelu_erf(state_->stream, x, n); });
}

void CudaDecoderOps::ffn_gated(const WeightMatrix& gate, const WeightMatrix& up, const WeightMatrix& down,
                               GatedActivation activation, const float* x, std::int64_t n_rows, float* out,
                               const LoraSet& loras) {
    if (state_->mode == StepMode::Replaying) return;  // the recording queues it
    run_ffn(gate, up, down, activation, x, n_rows, out, loras);
}

void CudaDecoderOps::run_ffn(const WeightMatrix& gate, const WeightMatrix& up, const WeightMatrix& down,
                             GatedActivation activation, const float* x, std::int64_t n_rows, float* out,
                             const LoraSet& loras) {
    const cuda::DeviceMatrix& device_gate = device_matrix(state_->matrices, gate);
    const cuda::DeviceMatrix& device_up = device_matrix(state_->matrices, up);
    const cuda::DeviceMatrix& device_down = device_matrix(state_->matrices, down);
    float* gated = nullptr;
    float* up_out = nullptr;
    translate([&] {
        gated = static_cast<float*>(reserve(state_->ffn_gate, static_cast<std::size_t>(n_rows * gate.rows) * sizeof(float),
                                            state_->buffer_generation));
        up_out = static_cast<float*>(reserve(state_->ffn_up, static_cast<std::size_t>(n_rows * up.rows) * sizeof(float),
                                             state_->buffer_generation));
        const cuda::DeviceMatrix* const sharing_x[] = {&device_gate, &device_up};
        const std::optional<cuda::QuantizedRows> quantized =
            shared_quantization(state_->stream, x, n_rows, gate.cols, sharing_x);
        cuda::matmul(state_->stream, device_gate, x, n_rows, gated, rows_for(quantized, device_gate));
        cuda::matmul(state_->stream, device_up, x, n_rows, up_out, rows_for(quantized, device_up));
        add_lora_updates(gate, x, n_rows, gated, loras);
        add_lora_updates(up, x, n_rows, up_out, loras);
        cuda::gated_activation(state_->stream, gated, up_out, n_rows * gate.rows, activation_id(activation));
        cuda::matmul(state_->stream, device_down, gated, n_rows, out);
        add_lora_updates(down, gated, n_rows, out, loras);
    });
}

void CudaDecoderOps::host_ffn_experts(const ExpertFfn& experts, GatedActivation activation, const float* x,
                                      std::int64_t n_rows, float* out, std::span<std::int64_t> usage,
                                      const LoraSet& loras) {
    State& state = *state_;
    if (state.host_pool == nullptr)
        throw ModelError("the experts of " + std::string(experts.router.name) +
                         " run on the host, but the CUDA ops were given no host threads");
    const auto n = static_cast<std::size_t>(n_rows * experts.router.cols);
    state.host_rows.resize(n);
    state.host_out.resize(n);
    translate([&] { state.stream.copy_to_host(state.host_rows.data(), x, n * sizeof(float)); });
    engine::ffn_experts(*state.host_pool, experts, activation, state.host_rows.data(), n_rows, state.host_out.data(),
                        usage, &loras);
    // host_out is written again only after the next copy_to_host, which
    // waits for the stream and so for this copy.
    translate([&] { state.stream.copy_to_device(out, state.host_out.data(), n * sizeof(float)); });
}

void CudaDecoderOps::ffn_experts(const ExpertFfn& experts, GatedActivation activation, const float* x,
                                 std::int64_t n_rows, float* out, std::span<std::int64_t> usage,
                                 const LoraSet& loras) {
    if (state_->mode == StepMode::Replaying) return;  // the recording queues it
    State& state = *state_;
    if (state.host_expert_sets.contains(experts.gate.data())) {
        host_ffn_experts(experts, activation, x, n_rows, out, usage, loras);
        return;
    }
    if (!state.expert_sets.contains(experts.gate.data()))
        throw ModelError("the CUDA backend was not given the experts of " + std::string(experts.router.name));
    const auto n_expert = static_cast<std::int64_t>(experts.gate.size());
    const std::int64_t n_embd = experts.router.cols;
    const std::int64_t n_pairs = n_rows * experts.n_used;
    const bool by_pair = n_rows <= cuda::kMaxVectorRows && loras.empty();
    ExpertRouting routing = expert_routing(experts);
    if (routing.selection_bias) routing.selection_bias = device_vector(state.vectors, experts.selection_bias);
    const cuda::DeviceMatrix& router = device_matrix(state.matrices, experts.router);
    translate([&] {
        std::uint64_t& generation = state.buffer_generation;
        auto* logits = reserve_for<float>(state.expert_logits, n_rows * n_expert, generation);
        auto* ids = reserve_for<std::int32_t>(state.expert_ids, n_pairs, generation);
        auto* weights = reserve_for<float>(state.expert_weights, n_pairs, generation);
        auto* outputs = reserve_for<float>(state.expert_outputs, n_pairs * n_embd, generation);
        unsigned long long* counters = by_pair && !usage.empty() ? usage_counters(usage) : nullptr;
        cuda::matmul(state.stream, router, x, n_rows, logits);
        cuda::route_experts(state.stream, routing, logits, n_rows, ids, weights, counters);
        if (by_pair)
            expert_outputs_by_pair(experts, activation, x, n_rows, ids, outputs);
        else
            expert_outputs_grouped(experts, activation, x, n_rows, ids, outputs, usage, loras);
        cuda::combine_experts(state.stream, outputs, weights, n_rows, experts.n_used, n_embd, out);

        if (experts.shared_gate.data == nullptr) return;
        auto* shared = reserve_for<float>(state.shared_out, n_rows * n_embd, generation);
        run_ffn(experts.shared_gate, experts.shared_up, experts.shared_down, activation, x, n_rows, shared, loras);
        if (experts.shared_scale.empty()) {
            cuda::add_in_place(state.stream, out, shared, n_rows * n_embd);
            return;
        }
        // sigmoid(x · shared_scale) per row: the gate as a one-row f32 matrix.
        const cuda::DeviceMatrix gate{static_cast<std::uint32_t>(GgmlType::F32),
                                      device_vector(state.vectors, experts.shared_scale), 1, n_embd,
                                      n_embd * static_cast<std::int64_t>(sizeof(float))};
        auto* gate_logits = reserve_for<float>(state.shared_logits, n_rows, generation);
        cuda::matmul(state.stream, gate, x, n_rows, gate_logits);
        cuda::add_sigmoid_scaled(state.stream, shared, gate_logits, n_rows, n_embd, out);
    });
}

void CudaDecoderOps::expert_outputs_by_pair(const ExpertFfn& experts, GatedActivation activation, const float* x,
                                            std::int64_t n_rows, const std::int32_t* ids, float* outputs) {
    State& state = *state_;
    const DeviceExpertSet& set = state.expert_sets.at(experts.gate.data());
    const std::int64_t n_pairs = n_rows * experts.n_used;
    auto* gate = reserve_for<float>(state.expert_gate, n_pairs * set.gate.rows, state.buffer_generation);
    auto* up = reserve_for<float>(state.expert_up, n_pairs * set.up.rows, state.buffer_generation);
    std::optional<cuda::QuantizedRows> quantized;
    if (cuda::takes_int8_activations(set.gate.ggml_type) || cuda::takes_int8_activations(set.up.ggml_type))
        quantized = cuda::quantize_rows(state.stream, x, n_rows, set.gate.cols);
    const auto rows_for_kind = [&](const cuda::DeviceExperts& kind) {
        return quantized && cuda::takes_int8_activations(kind.ggml_type) ? &*quantized : nullptr;
    };
    cuda::matmul_experts(state.stream, set.gate, ids, n_pairs, experts.n_used, x, gate, rows_for_kind(set.gate));
    cuda::matmul_experts(state.stream, set.up, ids, n_pairs, experts.n_used, x, up, rows_for_kind(set.up));
    cuda::gated_activation(state.stream, gate, up, n_pairs * set.gate.rows, activation_id(activation));
    cuda::matmul_experts(state.stream, set.down, ids, n_pairs, 1, gate, outputs);
}

void CudaDecoderOps::expert_outputs_grouped(const ExpertFfn& experts, GatedActivation activation, const float* x,
                                            std::int64_t n_rows, const std::int32_t* ids, float* outputs,
                                            std::span<std::int64_t> usage, const LoraSet& loras) {
    State& state = *state_;
    const auto n_expert = static_cast<std::int64_t>(experts.gate.size());
    const std::int64_t n_embd = experts.router.cols;
    const std::int64_t n_used = experts.n_used;
    const std::int64_t n_pairs = n_rows * n_used;
    std::vector<std::int32_t> chosen(static_cast<std::size_t>(n_pairs));
    state.stream.copy_to_host(chosen.data(), ids, chosen.size() * sizeof(std::int32_t));

    if (!usage.empty())
        for (const std::int32_t e : chosen) ++usage[static_cast<std::size_t>(e)];
    const ExpertGroups groups = group_by_expert(chosen, n_expert);
    std::vector<std::int32_t> routes(groups.pairs);  // the pairs by expert, then their rows
    routes.reserve(static_cast<std::size_t>(2 * n_pairs));
    for (const std::int32_t pair : groups.pairs) routes.push_back(static_cast<std::int32_t>(pair / n_used));
    std::int64_t most = 0;
    for (std::size_t e = 0; e < static_cast<std::size_t>(n_expert); ++e)
        most = std::max(most, groups.first[e + 1] - groups.first[e]);
    auto* device_routes = reserve_for<std::int32_t>(state.expert_routes, 2 * n_pairs, state.buffer_generation);
    auto* rows_in = reserve_for<float>(state.expert_in, most * n_embd, state.buffer_generation);
    auto* rows_out = reserve_for<float>(state.expert_out, most * n_embd, state.buffer_generation);
    state.stream.copy_to_device(device_routes, routes.data(), routes.size() * sizeof(std::int32_t));

    const cuda::DeviceMatrix all_rows{static_cast<std::uint32_t>(GgmlType::F32), x, n_rows, n_embd,
                                      n_embd * static_cast<std::int64_t>(sizeof(float))};
    for (std::int64_t e = 0; e < n_expert; ++e) {
        const std::int64_t begin = groups.first[static_cast<std::size_t>(e)];
        const std::int64_t count = groups.first[static_cast<std::size_t>(e) + 1] - begin;
        if (count == 0) continue;
        const auto at = static_cast<std::size_t>(e);
        cuda::embed_rows(state.stream, all_rows, device_routes + n_pairs + begin, count, rows_in);
        run_ffn(experts.gate[at], experts.up[at], experts.down[at], activation, rows_in, count, rows_out, loras);
        cuda::scatter_rows(state.stream, rows_out, device_routes + begin, count, n_embd, outputs);
    }
}

unsigned long long* CudaDecoderOps::usage_counters(std::span<std::int64_t> usage) {
    State& state = *state_;
    for (const UsageSlot& slot : state.usage_slots)
        if (slot.host == usage.data()) return static_cast<unsigned long long*>(state.usage_counters.get()) + slot.offset;
    // A layer's first count: what the counters hold goes to the host before they grow.
    fold_usage();
    state.usage_slots.push_back({usage.data(), usage.size(), state.usage_size});
    state.usage_size += usage.size();
    state.usage_counters = cuda::DeviceMemory();
    state.usage_counters = cuda::DeviceMemory(state.usage_size * sizeof(unsigned long long));
    state.stream.zero(state.usage_counters.get(), state.usage_size * sizeof(unsigned long long));
    ++state.buffer_generation;
    return static_cast<unsigned long long*>(state.usage_counters.get()) + state.usage_slots.back().offset;
}

void CudaDecoderOps::fold_usage() {
    State& state = *state_;
    if (state.usage_size == 0) return;
    std::vector<unsigned long long> counts(state.usage_size);
    state.stream.copy_to_host(counts.data(), state.usage_counters.get(), counts.size() * sizeof(unsigned long long));
    for (const UsageSlot& slot : state.usage_slots)
        for (std::size_t e = 0; e < slot.n; ++e) slot.host[e] += static_cast<std::int64_t>(counts[slot.offset + e]);
    state.stream.zero(state.usage_counters.get(), counts.size() * sizeof(unsigned long long));
}

void CudaDecoderOps::soft_cap(float* x, std::int64_t n, float cap) {
    if (state_->mode == StepMode::Replaying) return;  // the recording queues it
    translate([&] { cuda::soft_cap(state_->stream, x, n, cap); });
}

std::vector<float> CudaDecoderOps::to_host(const float* x, std::int64_t n) {
    State& state = *state_;
    std::vector<float> host(static_cast<std::size_t>(n));
    translate([&] {
        if (state.mode == StepMode::Recording) {
            state.mode = StepMode::Eager;
            try {
                state.step_graph->graph.end_capture(state.stream);
            } catch (const cuda::CudaError&) {
                state.graphs_failed = true;
                throw;
            }
            state.step_graph->recorded_generation = state.memory_generation();
            state.step_graph->graph.launch(state.stream);
        } else if (state.mode == StepMode::Replaying) {
            state.step_graph->graph.launch(state.stream);
        } else if (state.step_graph) {
            state.step_graph->warmed_generation = state.memory_generation();
        }
        state.mode = StepMode::Eager;
        state.stream.copy_to_host(host.data(), x, host.size() * sizeof(float));
        fold_usage();
    });
    return host;
}

}  // namespace folio::engine

#endif
