#pragma once
#include <cstdint>
#include <memory>
#include <span>
#include <string_view>
#include <vector>

#include "engine/expert_routing.h"
#include "engine/ggml_types.h"
#include "engine/kv_cache.h"
#include "engine/rope_scaling.h"
#include "engine/thread_pool.h"

// The CPU backend's building blocks, shared by every architecture: each
// llm_<arch>.cpp composes a forward pass from these. All of them work on a
// batch of tokens at once, activations as row-major f32 (n_tokens, width).
// This path is the reference that other backends are tested against.

namespace folio::engine {

// A weight matrix of a GGUF file, (rows, cols) in `type`: row r (one output
// feature) at data + r * row_bytes. Points into the file's mapping.
struct WeightMatrix {
    GgmlType type = GgmlType::F32;
    const std::uint8_t* data = nullptr;
    std::int64_t rows = 0;
    std::int64_t cols = 0;
    std::int64_t row_bytes = 0;
    std::string_view name;  // the GGUF tensor's, by which LoRA adapters find it; may be empty
    // An expert's matrix: its index in the stacked tensor `name` (n_expert
    // matrices), by which adapters find its pair too; -1 for a plain matrix.
    std::int32_t expert = -1;
    // Q4_K, Q8_0, Q4_*, Q5_*: the same rows regrouped 16 at a time
    // (quant.h), which the CPU's products read instead when the model made
    // them (group_weight_matrices); null otherwise. data stays the file's
    // rows for every other reader.
    const std::uint8_t* row_groups = nullptr;
};

// Memory for weights a decoded token streams through: 2 MiB aligned and
// advised to the kernel for huge pages, so that reading it takes a fraction
// of the TLB misses of 4 KiB pages (the regrouped Q4_K matrices of a 1B
// model decoded 5-10% slower from 4 KiB pages than from the file's rows).
struct FreeWeightBytes {
    void operator()(std::uint8_t* bytes) const;
};
using WeightBytes = std::unique_ptr<std::uint8_t[], FreeWeightBytes>;
// Null when the memory is not there.
WeightBytes allocate_weight_bytes(std::size_t bytes);

// Regroups each matrix of `matrices` whose type has row groups (quant.h)
// and whose rows and columns make whole groups, when this CPU's kernels gain
// by it (row_groups_pay): its row_groups then point into a buffer added to
// `storage`, which must outlive them. The pool shares out the work (a
// model's first pass on the CPU pays it once). A matrix that no longer fits
// in memory keeps its rows.
void group_weight_matrices(ThreadPool& pool, std::span<WeightMatrix* const> matrices,
                           std::vector<WeightBytes>& storage);

class LoraSet;  // lora.h

// Activation rows (n_rows, n_cols) f32 as matmul reads them: converted to a
// weight type's vec_dot_type (Q8_0, Q8_1, Q8_K) on first use, once per type,
// so that Q, K and V (or gate and up) share one quantization of their input.
// Holds a pointer to the rows, which must outlive it unchanged.
class MatmulInput {
public:
    MatmulInput(const float* rows, std::int64_t n_rows, std::int64_t n_cols);

    std::int64_t n_rows() const { return n_rows_; }
    std::int64_t n_cols() const { return n_cols_; }

    // The rows in dot_type, row_bytes apart.
    const void* rows_as(ThreadPool& pool, GgmlType dot_type, std::int64_t& row_bytes);

private:
    struct Converted {
        GgmlType type;
        std::int64_t row_bytes;
        std::vector<std::uint8_t> bytes;
    };

    const float* rows_;
    std::int64_t n_rows_;
    std::int64_t n_cols_;
    std::vector<Converted> converted_;
};

// out (n_rows, w.rows) = input (n_rows, w.cols) · wᵀ, weight rows split over
// the pool. One input row (decode) takes matmul_rows; several (prefill) take
// matmul_rows_columns, which reuses each unpacked weight block across rows.
void matmul(ThreadPool& pool, const WeightMatrix& w, MatmulInput& input, float* out);

// matmul plus each of the request's adapters that has a pair for w (by
// w.name): out += scale·B(A·x) (llama.cpp's build_lora_mm). A batch takes it
// as two matmuls over all its rows, A·X then B·(AX), so that the pair's
// weights are read once per batch, not once per token; B's rows go with the
// same tasks as w's. An adapter at scale 0 adds nothing, not even rounding.
// Throws std::invalid_argument for a pair that does not fit w.
void lora_matmul(ThreadPool& pool, const WeightMatrix& w, const LoraSet& loras, MatmulInput& input, float* out);

// One weight applied to a shared input: out = input · wᵀ.
struct Projection {
    const WeightMatrix* weight;
    float* out;
};

// lora_matmul of each output, the output features of all of them shared out
// in one pass over the pool (Q, K and V of a layer): a decoded token of a
// small model spends more on hand-offs between threads than on its matrices.
void project(ThreadPool& pool, std::span<const Projection> outputs, const LoraSet& loras, MatmulInput& input);

// out (n_tokens, w.cols): row i is row tokens[i] of the table, as f32.
// Throws std::out_of_range for a token id outside the table.
void embed_tokens(const WeightMatrix& table, std::span<const std::int32_t> tokens, float* out);

// out (n_rows, n) = x / sqrt(mean(x²) + eps) * weight, per row; weight (n).
// out may be x.
void rms_norm(ThreadPool& pool, const float* x, const float* weight, std::int64_t n_rows, std::int64_t n,
              float eps, float* out);

// out (n_rows, n) = (x - mean(x)) / sqrt(var(x) + eps) * weight + bias, per
// row (LayerNorm, the biased variance); weight and bias (n). out may be x.
void layer_norm(ThreadPool& pool, const float* x, const float* weight, const float* bias, std::int64_t n_rows,
                std::int64_t n, float eps, float* out);

// x += y over n elements: a residual connection.
void add_in_place(float* x, const float* y, std::int64_t n);

// Each of the n_rows rows of x (n_rows, n) += bias (n): a linear layer's bias.
void add_bias(float* x, const float* bias, std::int64_t n_rows, std::int64_t n);

// Which elements RoPE rotates together within a head (ggml's rope modes).
enum class RopeStyle {
    // (x[2i], x[2i+1]): ggml's "normal" mode, LLAMA_ROPE_TYPE_NORM.
    AdjacentPairs,
    // (x[i], x[i + n_rot/2]): ggml's NeoX mode and Hugging Face's rotate_half.
    HalfSplit,
};

struct RopeParameters {
    int head_dim = 0;
    int n_rot = 0;  // leading dimensions of each head that rotate (<= head_dim, even)
    float freq_base = 10000.f;
    RopeStyle style = RopeStyle::AdjacentPairs;
    RopeScaling scaling;  // the model's (ModelConfig::rope_scaling); none by default
};

// Rotary position embedding in place: x (n_tokens, n_heads, head_dim), token t
// at positions[t]. Pair i turns by positions[t] * freq_base^(-2i / n_rot),
// as params.scaling changes it (rope_scaling.h), and is multiplied by
// rope_attention_factor(params.scaling).
void rope(ThreadPool& pool, float* x, std::span<const std::int32_t> positions, int n_heads,
          const RopeParameters& params);

struct AttentionShape {
    int n_heads = 0;
    int n_kv_heads = 0;   // divides n_heads: grouped-query attention
    int head_dim = 0;     // of queries and keys
    int v_head_dim = 0;   // of values
    float scale = 1.f;    // on q·k before the softmax, usually 1/sqrt(head_dim)
    // false: every token of the batch attends to every cache row up to the
    // batch's last position (an encoder such as BERT).
    bool causal = true;
    // > 0: a causal token at position p attends only to rows (p - window, p]
    // (sliding-window layers: Gemma 3's local layers, Mistral).
    int window = 0;
};

// Softmax attention over the cache: token t (query q[t], at positions[t])
// attends to the cache rows [0, positions[t]] of `layer` (narrowed by
// shape.window, widened to the whole batch when !shape.causal), which must
// already hold this batch's keys and values, in either element type
// (kv_cache.h: f16 values are read transposed, q8_0 values by rows). Query
// head h reads kv head h / (n_heads / n_kv_heads). A keys-only cache
// (v_width 0: multi-head latent attention) has one kv head, whose values are
// the first v_head_dim elements of its keys. Throws std::invalid_argument
// for a cache of another number of kv heads.
//   q:   (n_tokens, n_heads, head_dim)
//   out: (n_tokens, n_heads, v_head_dim)
void attention(ThreadPool& pool, const float* q, std::span<const std::int32_t> positions,
               const KvCache& cache, int layer, const AttentionShape& shape, float* out);

// x = x * Φ(x) in place over n elements: GELU with the exact normal CDF
// Φ(x) = (1 + erf(x / √2)) / 2 (BERT's "gelu", not the tanh approximation).
void gelu_erf(ThreadPool& pool, float* x, std::int64_t n);

// SwiGLU feed-forward: out (n_rows, down.rows) = down(silu(gate(x)) * up(x)),
// gate and up (n_ff, n_embd), down (n_embd, n_ff).
void ffn_swiglu(ThreadPool& pool, const WeightMatrix& gate, const WeightMatrix& up, const WeightMatrix& down,
                MatmulInput& x, float* out);

// What a gated feed-forward applies to gate(x) before multiplying by up(x).
enum class GatedActivation {
    Silu,      // x * sigmoid(x): SwiGLU (Llama, Qwen)
    GeluTanh,  // GELU's tanh approximation, PyTorch's gelu(approximate="tanh"): GeGLU (Gemma)
};

// out (n_rows, down.rows) = down(activation(gate(x)) * up(x)); shapes as
// ffn_swiglu. With loras, each of the three matrices goes through lora_matmul.
// Gate, up and the activation share one pass over the pool.
void ffn_gated(ThreadPool& pool, const WeightMatrix& gate, const WeightMatrix& up, const WeightMatrix& down,
               GatedActivation activation, MatmulInput& x, float* out, const LoraSet* loras = nullptr);

// How a router's logits become expert scores.
enum class ExpertGating {
    Softmax,  // softmax over the experts (Mixtral, Qwen-MoE, OLMoE, DeepSeek-V2)
    Sigmoid,  // each expert's sigmoid on its own (DeepSeek-V3)
};

// A mixture-of-experts feed-forward: a router and n_expert gated
// feed-forwards, of which each token takes the n_used with the highest
// scores, weighted by those scores.
struct ExpertFfn {
    WeightMatrix router;              // (n_expert, n_embd)
    std::vector<WeightMatrix> gate;   // n_expert of (n_ff_exp, n_embd)
    std::vector<WeightMatrix> up;     // n_expert of (n_ff_exp, n_embd)
    std::vector<WeightMatrix> down;   // n_expert of (n_embd, n_ff_exp)
    int n_used = 0;
    bool normalize_weights = false;   // the chosen weights divided by their sum
    ExpertGating gating = ExpertGating::Softmax;
    float weights_scale = 1.f;        // on the chosen weights after normalizing (DeepSeek's routed_scaling_factor)
    // Added to the scores to choose the experts, not to weigh them
    // (DeepSeek-V3's e_score_correction_bias, GGUF exp_probs_b); or empty.
    std::vector<float> selection_bias;  // (n_expert)
    // Group-limited routing (DeepSeek): the experts fall into n_groups equal
    // groups, and a token chooses only among the n_groups_used groups with
    // the best group scores: the best expert's (softmax gating, DeepSeek-V2)
    // or the sum of the best two (sigmoid gating, DeepSeek-V3).
    int n_groups = 1;
    int n_groups_used = 1;
    // Shared experts every row goes through (one matrix triple of their
    // combined width); none when shared_gate has no data. Qwen2-MoE scales
    // their output by sigmoid(x · shared_scale); DeepSeek adds it as it is
    // (shared_scale empty).
    WeightMatrix shared_gate;          // (n_ff_shared, n_embd)
    WeightMatrix shared_up;            // (n_ff_shared, n_embd)
    WeightMatrix shared_down;          // (n_embd, n_ff_shared)
    std::vector<float> shared_scale;   // (n_embd), or empty
};

// How the layer chooses its experts (expert_routing.h's route_row, which
// both backends run); selection_bias points into experts.
ExpertRouting expert_routing(const ExpertFfn& experts);

// Pairs grouped by their expert: pair p is a row's choice ids[p] (row
// p / n_used's k-th for k = p % n_used), and expert e's pairs, in order,
// are pairs[first[e] .. first[e + 1]). Both backends batch an expert's rows
// this way.
struct ExpertGroups {
    std::vector<std::int64_t> first;   // (n_expert + 1)
    std::vector<std::int32_t> pairs;   // (ids.size())
};
ExpertGroups group_by_expert(std::span<const std::int32_t> ids, std::int64_t n_expert);

// out (n_rows, n_embd) = sum over each row's chosen experts e of weight_e ·
// down_e(activation(gate_e(x)) * up_e(x)), plus the shared experts' output
// (scaled by their gate where they have one). The rows routed to an expert
// go through its matrices as one batch, so each expert's weights are read
// once. usage, when given, has n_expert counts: each chosen expert's is
// incremented once per row that chose it. loras: the adapters of the
// experts' matrices (WeightMatrix::expert finds each one's pair).
void ffn_experts(ThreadPool& pool, const ExpertFfn& experts, GatedActivation activation, const float* x,
                 std::int64_t n_rows, float* out, std::span<std::int64_t> usage = {}, const LoraSet* loras = nullptr);

// x *= factor over n elements (Gemma's embeddings: sqrt(n_embd)).
void scale_in_place(float* x, std::int64_t n, float factor);

// x = cap * tanh(x / cap) over n elements: soft-capping of logits (Gemma 2's
// final_logit_softcapping), which bounds them to (-cap, cap).
void soft_cap(float* x, std::int64_t n, float cap);

}  // namespace folio::engine
