#pragma once
// The CUDA backend's host-side interface: device memory, a stream, and the
// launchers of its kernels. No CUDA header is needed to include it, and it is
// C++17 so that nvcc compiles the .cu files against it too.
//
// Every launcher is asynchronous on the Stream it is given and takes device
// pointers; activations are row-major f32, the KV cache by rows (DeviceKvLayer).
// Failures throw CudaError (one line: what failed and CUDA's reason).

#include <cstddef>
#include <cstdint>
#include <stdexcept>
#include <string>

#include "engine/expert_routing.h"

namespace folio::engine::cuda {

class CudaError : public std::runtime_error {
public:
    using std::runtime_error::runtime_error;
};

// An owning cudaMalloc allocation on the current device.
class DeviceMemory {
public:
    DeviceMemory() = default;
    explicit DeviceMemory(std::size_t bytes);
    ~DeviceMemory();
    DeviceMemory(DeviceMemory&& other) noexcept;
    DeviceMemory& operator=(DeviceMemory&& other) noexcept;
    DeviceMemory(const DeviceMemory&) = delete;
    DeviceMemory& operator=(const DeviceMemory&) = delete;

    void* get() const { return data_; }
    std::size_t bytes() const { return bytes_; }

private:
    void* data_ = nullptr;
    std::size_t bytes_ = 0;
};

// Selects a GPU for this thread's later calls. Throws CudaError when it
// cannot be used.
void use_gpu(int gpu);
// Free memory of the current GPU in bytes.
std::size_t free_gpu_memory();

// A CUDA stream with its cuBLAS handle. Operations queue in order; only
// synchronize() and the copies to the host wait.
class Stream {
public:
    Stream();
    ~Stream();
    Stream(const Stream&) = delete;
    Stream& operator=(const Stream&) = delete;

    void* handle() const { return stream_; }     // cudaStream_t
    void* cublas() const { return cublas_; }     // cublasHandle_t
    void copy_to_device(void* device, const void* host, std::size_t bytes);
    void copy_to_host(void* host, const void* device, std::size_t bytes);  // waits for the copy
    void zero(void* device, std::size_t bytes);
    void synchronize();

    // Device memory that grows to the largest size asked for; slot picks one
    // of several independent buffers. The pointer stays valid until the next
    // call with the same slot and a larger size.
    void* workspace(int slot, std::size_t bytes);
    // Counts the workspaces' reallocations: work recorded in a Graph holds
    // their old addresses.
    std::uint64_t workspace_generation() const { return workspace_generation_; }

private:
    void* stream_ = nullptr;
    void* cublas_ = nullptr;
    static constexpr int kSlots = 4;
    DeviceMemory workspaces_[kSlots];
    std::uint64_t workspace_generation_ = 0;
};

// A stream's work recorded once and replayed with one launch (a CUDA
// graph): a decode step's few hundred small kernels then cost one launch
// instead of one each. What is recorded does not run until launch(); the
// recording holds every pointer and launch size as they were.
class Graph {
public:
    Graph() = default;
    ~Graph();
    Graph(Graph&& other) noexcept;
    Graph& operator=(Graph&& other) noexcept;
    Graph(const Graph&) = delete;
    Graph& operator=(const Graph&) = delete;

    bool ready() const { return exec_ != nullptr; }
    // Work queued on the stream from now on is recorded instead of run.
    void begin_capture(Stream& stream);
    // Stops recording and makes the graph ready; throws CudaError when the
    // work could not be recorded (the stream then runs work again).
    void end_capture(Stream& stream);
    void launch(Stream& stream);

private:
    void release();

    void* graph_ = nullptr;  // cudaGraph_t
    void* exec_ = nullptr;   // cudaGraphExec_t
};

// Weight element types the kernels read, by their ggml id (ggml_types.h).
bool reads_weight_type(std::uint32_t ggml_type);
// Whether the matrix-vector kernel of a type reads QuantizedRows (the
// quantized types) rather than f32 rows (F32, F16, BF16).
bool takes_int8_activations(std::uint32_t ggml_type);

// A weight matrix in device memory in its GGUF layout: row r at data + r * row_bytes.
struct DeviceMatrix {
    std::uint32_t ggml_type = 0;
    const void* data = nullptr;
    std::int64_t rows = 0;
    std::int64_t cols = 0;
    std::int64_t row_bytes = 0;
};

// The most activation rows the matrix-vector kernels take; more go through
// the GEMM.
constexpr std::int64_t kMaxVectorRows = 8;

// Activation rows as the quantized weights' matrix-vector kernels read them:
// int8 in blocks of 32 with an f32 scale each (ggml's Q8_0 but for the
// scale's type). Made once for every weight that multiplies the same rows
// (q, k and v; gate and up).
struct QuantizedRows {
    const std::int8_t* quants = nullptr;  // (n, cols)
    const float* scales = nullptr;        // (n, cols / 32)
};

// x (n <= kMaxVectorRows rows of cols, a multiple of 32) quantized into the
// stream's memory, valid until the next quantize_rows on the stream.
QuantizedRows quantize_rows(Stream& stream, const float* x, std::int64_t n, std::int64_t cols);

// out (n, w.rows) = x (n, w.cols) · wᵀ. Up to kMaxVectorRows rows (decode)
// run one fused dequantizing matrix-vector kernel that reads each weight
// byte once, int8 dot products for quantized weights (on `quantized` when
// given: x already quantized by quantize_rows); more rows (prefill)
// dequantize tiles of w to f16 and multiply on the tensor cores through cuBLAS.
void matmul(Stream& stream, const DeviceMatrix& w, const float* x, std::int64_t n, float* out,
            const QuantizedRows* quantized = nullptr);

// A layer's experts of one kind, all of one type and shape: expert e's
// matrix (GGUF layout) at data[e], a device array of device pointers.
struct DeviceExperts {
    std::uint32_t ggml_type = 0;
    const void* const* data = nullptr;
    std::int64_t rows = 0;
    std::int64_t cols = 0;
    std::int64_t row_bytes = 0;
};

// The most (row, expert) pairs one matmul_experts takes.
constexpr std::int64_t kMaxExpertPairs = kMaxVectorRows * kMaxRoutedExperts;

// out (n_pairs, w.rows): row p is x's row p / pairs_per_row times the
// matrix of expert ids[p] (device memory), transposed. Each pair reads its
// expert's weights once, with the matrix-vector kernels of matmul: the
// decode step's chosen experts, with no round trip to the host. quantized:
// x's rows already through quantize_rows, when the type reads int8.
void matmul_experts(Stream& stream, const DeviceExperts& w, const std::int32_t* ids, std::int64_t n_pairs,
                    int pairs_per_row, const float* x, float* out, const QuantizedRows* quantized = nullptr);

// Each row's experts, a warp a row choosing what route_row (the CPU
// backend's choice) does: ids and weights (n_rows, routing.n_used) from logits
// (n_rows, routing.n_expert); routing.selection_bias in device memory.
// usage (n_expert counters, device memory) counts each choice when given.
void route_experts(Stream& stream, const ExpertRouting& routing, const float* logits, std::int64_t n_rows,
                   std::int32_t* ids, float* weights, unsigned long long* usage);

// out (n_rows, n) = Σ_k weights[r, k] · y[r * n_used + k]: each row's
// experts' outputs by their weights.
void combine_experts(Stream& stream, const float* y, const float* weights, std::int64_t n_rows, int n_used,
                     std::int64_t n, float* out);

// Row i of x (n rows of cols) to row ids[i] of out.
void scatter_rows(Stream& stream, const float* x, const std::int32_t* ids, std::int64_t n, std::int64_t cols,
                  float* out);

// out (n_rows, n) += sigmoid(logits[r]) · y (n_rows, n): Qwen2-MoE's gated shared experts.
void add_sigmoid_scaled(Stream& stream, const float* y, const float* logits, std::int64_t n_rows, std::int64_t n,
                        float* out);

// out (n_tokens, table.cols): row i is row tokens[i] of the table as f32.
void embed_rows(Stream& stream, const DeviceMatrix& table, const std::int32_t* tokens, std::int64_t n_tokens,
                float* out);

// out[r, :width] = x[r, :width] for n_rows rows, x_stride and out_stride
// floats apart: splits rows into parts and puts them back together.
void copy_columns(Stream& stream, const float* x, std::int64_t x_stride, float* out, std::int64_t out_stride,
                  std::int64_t n_rows, std::int64_t width);

// out = x / sqrt(mean(x²) + eps) * weight per row of n; out may be x.
void rms_norm(Stream& stream, const float* x, const float* weight, std::int64_t n_rows, std::int64_t n, float eps,
              float* out);
// out = (x - mean(x)) / sqrt(var(x) + eps) * weight + bias per row of n
// (LayerNorm, the biased variance); out may be x.
void layer_norm(Stream& stream, const float* x, const float* weight, const float* bias, std::int64_t n_rows,
                std::int64_t n, float eps, float* out);
void add_bias(Stream& stream, float* x, const float* bias, std::int64_t n_rows, std::int64_t n);
void add_in_place(Stream& stream, float* x, const float* y, std::int64_t n);
void scale_in_place(Stream& stream, float* x, std::int64_t n, float factor);
void soft_cap(Stream& stream, float* x, std::int64_t n, float cap);

// gate = activation(gate) * up over n elements; activation 0: SiLU,
// 1: GELU's tanh approximation (GatedActivation's order).
void gated_activation(Stream& stream, float* gate, const float* up, std::int64_t n, int activation);
// x = x * Φ(x) in place over n elements, Φ the normal CDF through erff (BERT's GELU).
void gelu_erf(Stream& stream, float* x, std::int64_t n);

// RoPE in place on x (n_tokens, n_heads, head_dim), token t at positions[t]:
// pair i turns by positions[t] * inv_freq[i] (n_rot / 2 of them, device
// memory), cos and sin scaled by attention_factor. half_split: pairs (i,
// i + n_rot/2), else (2i, 2i + 1).
void rope(Stream& stream, float* x, const std::int32_t* positions, std::int64_t n_tokens, int n_heads, int head_dim,
          int n_rot, const double* inv_freq, float attention_factor, bool half_split);

// One layer of a KV cache in device memory (KvCache::on_gpu): keys
// (n_positions, k_width) and values (n_positions, v_width), both by rows,
// of one element type by its ggml id: F16, or Q8_0 blocks ({f16 d; i8
// qs[32]}, 34 bytes per 32 elements: widths of whole blocks, rows 2-byte aligned).
struct DeviceKvLayer {
    std::uint32_t ggml_type = 0;
    void* keys = nullptr;
    void* values = nullptr;
};

// k (n_tokens, k_width) and v (n_tokens, v_width) into the cache's rows
// positions[t], converted as the CPU's KvCache::store converts them: the
// same f16 or Q8_0 bytes. A keys-only cache has v_width 0 (v unread).
// Throws CudaError for another element type.
void store_kv(Stream& stream, const float* k, const float* v, const std::int32_t* positions, std::int64_t n_tokens,
              int k_width, int v_width, const DeviceKvLayer& cache);

struct AttentionParameters {
    int n_heads = 0;
    int n_kv_heads = 0;
    int head_dim = 0;
    int v_head_dim = 0;
    float scale = 1.f;
    int window = 0;  // > 0: a token at p attends to rows (p - window, p]
    // Multi-head latent attention's keys-only cache: the values are each
    // key row's first v_head_dim elements (cache.values unread). Heads of up
    // to 576 elements (DeepSeek's 512-element latent and 64 rotary ones).
    bool values_in_keys = false;
    // Device memory (n_tokens, 2): the first and last cache row token t
    // attends to, its whole sequence in an encoder's packed batch; replaces
    // the causal range. nullptr: causal.
    const std::int32_t* key_ranges = nullptr;
};

// Softmax attention: token t (query q[t], at positions[t]) attends to the
// cache rows [0, positions[t]] (narrowed by window), or to the rows of
// p.key_ranges when given, of keys (n_positions, n_kv_heads * head_dim) and
// values (n_positions, n_kv_heads * v_head_dim). Against Q8_0 keys with
// heads of whole blocks the query is rounded to Q8_0 first, as the CPU's dot
// products take it. max_position: the largest of positions, or the longest
// of key_ranges less one (sizes the split over the keys). Throws CudaError
// for heads wider than the kernels take or another element type.
//   q:   (n_tokens, n_heads, head_dim)
//   out: (n_tokens, n_heads, v_head_dim)
void attention(Stream& stream, const float* q, const std::int32_t* positions, std::int64_t n_tokens,
               int max_position, const DeviceKvLayer& cache, const AttentionParameters& p, float* out);

// The rate of a device-to-device copy of `bytes` (read and written, counted
// both), in bytes per second: the bandwidth a bench compares kernels with.
double measure_copy_bandwidth(std::size_t bytes, int repeats);

}  // namespace folio::engine::cuda
