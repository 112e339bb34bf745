// The decoder's ops on a GPU (decoder_ops.h): each forwards to a launcher of
// engine/cuda/kernels.h with the device copies of the weights it names.
// Compiled empty without the CUDA backend.

#ifdef FOLIO_USE_CUDA

#include <algorithm>
#include <string>
#include <unordered_map>

#include "engine/cuda/kernels.h"
#include "engine/decoder_ops.h"
#include "engine/ggml_types.h"
#include "engine/model.h"

namespace folio::engine {

struct CudaDecoderOps::State {
    int gpu = 0;
    cuda::Stream stream;
    std::unordered_map<const void*, cuda::DeviceMatrix> matrices;  // by WeightMatrix::data
    std::unordered_map<const void*, const float*> vectors;         // by std::vector<float>::data
    std::unordered_map<const RopeParameters*, cuda::DeviceMemory> inverse_frequencies;
    std::vector<cuda::DeviceMemory> weights;  // owns what the maps point to
    std::size_t weight_bytes = 0;
    std::vector<cuda::DeviceMemory> buffers;  // activations, by slot
    cuda::DeviceMemory tokens, positions;     // this batch's
    cuda::DeviceMemory ffn_gate, ffn_up;      // the feed-forward's intermediate rows
    std::int64_t n_tokens = 0;
    int max_position = 0;
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

// Device memory of at least `bytes`, replaced when smaller. The old block is
// freed only after the GPU is done with it (cudaFree waits).
void* reserve(cuda::DeviceMemory& memory, std::size_t bytes) {
    if (memory.bytes() < bytes) {
        memory = cuda::DeviceMemory();
        memory = cuda::DeviceMemory(bytes);
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

void CudaDecoderOps::begin(std::span<const std::int32_t> tokens, std::span<const std::int32_t> positions) {
    const std::size_t bytes = tokens.size() * sizeof(std::int32_t);
    translate([&] {
        cuda::use_gpu(state_->gpu);    // the CUDA device is per host thread; callers may switch threads
        state_->stream.synchronize();  // the last batch may still read the old ids
        state_->stream.copy_to_device(reserve(state_->tokens, bytes), tokens.data(), bytes);
        state_->stream.copy_to_device(reserve(state_->positions, bytes), positions.data(), bytes);
    });
    state_->n_tokens = static_cast<std::int64_t>(tokens.size());
    state_->max_position = *std::max_element(positions.begin(), positions.end());
}

float* CudaDecoderOps::buffer(int slot, std::int64_t n) {
    if (slot >= static_cast<int>(state_->buffers.size())) state_->buffers.resize(static_cast<std::size_t>(slot) + 1);
    void* memory = nullptr;
    translate([&] { memory = reserve(state_->buffers[static_cast<std::size_t>(slot)], n * sizeof(float)); });
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

void refuse_adapters(const LoraSet& loras) {
    if (!loras.uses.empty())
        throw ModelError("LoRA adapters run on the CPU backend only; use --device cpu with an adapter");
}

}  // namespace

void CudaDecoderOps::embed(const WeightMatrix& table, float* out) {
    const cuda::DeviceMatrix& device_table = device_matrix(state_->matrices, table);
    translate([&] {
        cuda::embed_rows(state_->stream, device_table, static_cast<const std::int32_t*>(state_->tokens.get()),
                         state_->n_tokens, out);
    });
}

void CudaDecoderOps::scale(float* x, std::int64_t n, float factor) {
    translate([&] { cuda::scale_in_place(state_->stream, x, n, factor); });
}

void CudaDecoderOps::rms_norm(const float* x, const std::vector<float>& weight, std::int64_t n_rows, std::int64_t n,
                              float eps, float* out) {
    const float* device_weight = device_vector(state_->vectors, weight);
    translate([&] { cuda::rms_norm(state_->stream, x, device_weight, n_rows, n, eps, out); });
}

void CudaDecoderOps::project(const float* x, std::int64_t n_rows, std::int64_t, std::initializer_list<Projection> outputs,
                             const LoraSet& loras) {
    refuse_adapters(loras);
    for (const Projection& projection : outputs) {
        const cuda::DeviceMatrix& w = device_matrix(state_->matrices, *projection.weight);
        translate([&] { cuda::matmul(state_->stream, w, x, n_rows, projection.out); });
    }
}

void CudaDecoderOps::add_bias(float* x, const std::vector<float>& bias, std::int64_t n_rows, std::int64_t n) {
    const float* device_bias = device_vector(state_->vectors, bias);
    translate([&] { cuda::add_bias(state_->stream, x, device_bias, n_rows, n); });
}

void CudaDecoderOps::rope(float* x, int n_heads, const RopeParameters& params) {
    auto found = state_->inverse_frequencies.find(&params);
    translate([&] {
        if (found == state_->inverse_frequencies.end()) {
            // The same angles the CPU backend turns by, computed once per layer's parameters.
            const std::vector<double> inverse = rope_inverse_frequencies(params.n_rot, params.freq_base, params.scaling);
            cuda::DeviceMemory memory(inverse.size() * sizeof(double));
            state_->stream.copy_to_device(memory.get(), inverse.data(), inverse.size() * sizeof(double));
            found = state_->inverse_frequencies.emplace(&params, std::move(memory)).first;
        }
        cuda::rope(state_->stream, x, static_cast<const std::int32_t*>(state_->positions.get()), state_->n_tokens,
                   n_heads, params.head_dim, params.n_rot, static_cast<const double*>(found->second.get()),
                   static_cast<float>(rope_attention_factor(params.scaling)),
                   params.style == RopeStyle::HalfSplit);
    });
}

void CudaDecoderOps::attend(KvCache& cache, int layer, const float* k, const float* v, const float* q,
                            const AttentionShape& shape, float* out) {
    if (!cache.on_gpu()) throw ModelError("forward: the model runs on the GPU but its KV cache is in host memory");
    const auto* positions = static_cast<const std::int32_t*>(state_->positions.get());
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
    translate([&] { cuda::add_in_place(state_->stream, x, y, n); });
}

void CudaDecoderOps::ffn_gated(const WeightMatrix& gate, const WeightMatrix& up, const WeightMatrix& down,
                               GatedActivation activation, const float* x, std::int64_t n_rows, float* out,
                               const LoraSet& loras) {
    refuse_adapters(loras);
    const cuda::DeviceMatrix& device_gate = device_matrix(state_->matrices, gate);
    const cuda::DeviceMatrix& device_up = device_matrix(state_->matrices, up);
    const cuda::DeviceMatrix& device_down = device_matrix(state_->matrices, down);
    float* gated = nullptr;
    float* up_out = nullptr;
    translate([&] {
        gated = static_cast<float*>(reserve(state_->ffn_gate, static_cast<std::size_t>(n_rows * gate.rows) * sizeof(float)));
        up_out = static_cast<float*>(reserve(state_->ffn_up, static_cast<std::size_t>(n_rows * up.rows) * sizeof(float)));
        cuda::matmul(state_->stream, device_gate, x, n_rows, gated);
        cuda::matmul(state_->stream, device_up, x, n_rows, up_out);
        cuda::gated_activation(state_->stream, gated, up_out, n_rows * gate.rows,
                               activation == GatedActivation::Silu ? 0 : 1);
        cuda::matmul(state_->stream, device_down, gated, n_rows, out);
    });
}

void CudaDecoderOps::soft_cap(float* x, std::int64_t n, float cap) {
    translate([&] { cuda::soft_cap(state_->stream, x, n, cap); });
}

std::vector<float> CudaDecoderOps::to_host(const float* x, std::int64_t n) {
    std::vector<float> host(static_cast<std::size_t>(n));
    translate([&] { state_->stream.copy_to_host(host.data(), x, host.size() * sizeof(float)); });
    return host;
}

}  // namespace folio::engine

#endif
