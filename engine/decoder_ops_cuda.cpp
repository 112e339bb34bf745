// The decoder's ops on a GPU (decoder_ops.h): each forwards to a launcher of
// engine/cuda/kernels.h with the device copies of the weights it names.
// Compiled empty without the CUDA backend.

#ifdef FOLIO_USE_CUDA

#include <algorithm>
#include <map>
#include <optional>
#include <span>
#include <string>
#include <unordered_map>

#include "engine/cuda/kernels.h"
#include "engine/decoder_ops.h"
#include "engine/ggml_types.h"
#include "engine/model.h"

namespace folio::engine {

// A decode step's recording for one cache (keyed by its rows and length).
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
    cuda::DeviceMemory batch_tokens, batch_positions;  // a batch's ids
    cuda::DeviceMemory step_token, step_position;      // a decode step's, at addresses recordings keep
    const std::int32_t* tokens = nullptr;  // this batch's, in one of the two
    const std::int32_t* positions = nullptr;
    std::int64_t n_tokens = 0;
    int max_position = 0;
    std::uint64_t buffer_generation = 0;  // counts moves of the buffers above
    std::map<std::pair<const void*, int>, DecodeGraph> decode_graphs;
    DecodeGraph* step_graph = nullptr;  // this step's, for a decode step
    StepMode mode = StepMode::Eager;
    bool graphs_failed = false;  // a recording failed once: decode runs eagerly from then on

    std::uint64_t memory_generation() const { return buffer_generation + stream.workspace_generation(); }
};

namespace {

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

}  // namespace

CudaDecoderOps::CudaDecoderOps(int gpu) {
    translate([&] {
        cuda::use_gpu(gpu);
        state_ = std::make_unique<State>();
        state_->gpu = gpu;
    });
}

CudaDecoderOps::~CudaDecoderOps() = default;

void CudaDecoderOps::upload(const WeightMatrix& weight) {
    if (state_->matrices.contains(weight.data)) return;  // a tied head shares the embeddings
    if (!cuda::reads_weight_type(static_cast<std::uint32_t>(weight.type)))
        throw ModelError("the CUDA backend does not read " + std::string(ggml_type_name(weight.type)) + " weights (" +
                         std::string(weight.name) + ")");
    if (weight.cols % 8 != 0)
        throw ModelError("the CUDA backend needs weight rows of a multiple of 8 elements (" +
                         std::string(weight.name) + " has " + std::to_string(weight.cols) + ")");
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
    const bool decode_step = tokens.size() == 1 && cache.on_gpu() && !state.graphs_failed && loras.empty();
    const std::size_t bytes = tokens.size() * sizeof(std::int32_t);
    translate([&] {
        cuda::use_gpu(state.gpu);    // the CUDA device is per host thread; callers may switch threads
        state.stream.synchronize();  // the last batch may still read the old ids
        void* token_memory = reserve(decode_step ? state.step_token : state.batch_tokens, bytes, state.buffer_generation);
        void* position_memory =
            reserve(decode_step ? state.step_position : state.batch_positions, bytes, state.buffer_generation);
        state.stream.copy_to_device(token_memory, tokens.data(), bytes);
        state.stream.copy_to_device(position_memory, positions.data(), bytes);
        state.tokens = static_cast<const std::int32_t*>(token_memory);
        state.positions = static_cast<const std::int32_t*>(position_memory);
    });
    state.n_tokens = static_cast<std::int64_t>(tokens.size());
    // A decode step splits its attention as for a full cache, so that one
    // recording serves every position of the cache.
    state.max_position = decode_step ? cache.n_positions() - 1 : *std::max_element(positions.begin(), positions.end());
    if (!decode_step) return;
    DecodeGraph& graph = state.decode_graphs[{cache.gpu_keys(0), cache.n_positions()}];
    state.step_graph = &graph;
    const std::uint64_t generation = state.memory_generation();
    if (graph.graph.ready() && graph.recorded_generation == generation) {
        state.mode = StepMode::Replaying;
    } else if (graph.warmed_generation == generation) {
        translate([&] { graph.graph.begin_capture(state.stream); });
        state.mode = StepMode::Recording;
    }
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
        cuda::embed_rows(state_->stream, device_table, state_->tokens,
                         state_->n_tokens, out);
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
        const LoraWeight* pair = use.adapter->find(w.name);
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
    translate([&] {
        cuda::store_kv(state_->stream, k, v, positions, state_->n_tokens, cache.k_width(), cache.v_width(),
                       cache.gpu_keys(layer), cache.gpu_values(layer));
        cuda::attention(state_->stream, q, positions, state_->n_tokens, state_->max_position, cache.gpu_keys(layer),
                        cache.gpu_values(layer), parameters, out);
    });
}

void CudaDecoderOps::add(float* x, const float* y, std::int64_t n) {
    if (state_->mode == StepMode::Replaying) return;  // the recording queues it
    translate([&] { cuda::add_in_place(state_->stream, x, y, n); });
}

void CudaDecoderOps::ffn_gated(const WeightMatrix& gate, const WeightMatrix& up, const WeightMatrix& down,
                               GatedActivation activation, const float* x, std::int64_t n_rows, float* out,
                               const LoraSet& loras) {
    if (state_->mode == StepMode::Replaying) return;  // the recording queues it
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
        cuda::gated_activation(state_->stream, gated, up_out, n_rows * gate.rows,
                               activation == GatedActivation::Silu ? 0 : 1);
        cuda::matmul(state_->stream, device_down, gated, n_rows, out);
        add_lora_updates(down, gated, n_rows, out, loras);
    });
}

void CudaDecoderOps::ffn_experts(const ExpertFfn&, GatedActivation, const float*, std::int64_t, float*,
                                 std::span<std::int64_t>) {
    throw ModelError("the CUDA backend has no mixture-of-experts kernels yet");
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
    });
    return host;
}

}  // namespace folio::engine

#endif
