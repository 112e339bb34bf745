#pragma once
#include <cstdint>
#include <filesystem>
#include <functional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "engine/ggml_types.h"
#include "engine/gguf.h"
#include "engine/thread_pool.h"

// Weight types for a whole model file, chosen tensor by tensor as
// llama.cpp's llama-quantize chooses them, and the conversion of a GGUF model
// to another type (`folio model quantize`).
//
//   QuantScheme scheme = quant_scheme("Q4_K_M");
//   quantize_model(GgufFile::open("model-f16.gguf"), scheme, "model-q4_k_m.gguf", pool);

namespace folio::engine {

// How a scheme's rules give some tensors more bits than its base type.
enum class QuantMix {
    Pure,    // every matrix the base type (llama-quantize --pure)
    Small,   // llama.cpp's _S mixes
    Medium,  // llama.cpp's _M mixes
};

// What --quant names: one weight type, or one of llama.cpp's mixes.
struct QuantScheme {
    std::string_view name;  // "Q4_K", "Q4_K_M" (a literal)
    GgmlType base = GgmlType::F16;  // the type most weights get
    QuantMix mix = QuantMix::Pure;
    std::uint32_t file_type = 0;  // general.file_type (llama.cpp's enum llama_ftype)
};

// F32 F16 BF16 Q4_0 Q4_1 Q5_0 Q5_1 Q8_0 Q2_K Q3_K Q4_K Q5_K Q6_K Q4_K_S Q5_K_S Q4_K_M Q5_K_M
std::span<const std::string_view> quant_scheme_names();
// Case-insensitive; throws ModelError ("unknown weight type 'q9' (known: ...)").
QuantScheme quant_scheme(std::string_view name);

// The types of one model's tensors under a scheme.
class QuantPlan {
public:
    // tensor_names: all of the model's tensors (the rules look at the layer
    // count and at whether an output.weight exists); n_expert: the model's
    // <arch>.expert_count (0 without experts).
    QuantPlan(QuantScheme scheme, std::span<const std::string> tensor_names, int n_expert = 0);

    const QuantScheme& scheme() const { return scheme_; }

    // Whether llama-quantize converts the tensor at all: matrices (2-D and
    // up) named *weight, except norms, MoE routers (ffn_gate_inp), BERT's
    // position and token-type embeddings. Other tensors keep their type.
    static bool is_quantizable(std::string_view name, std::span<const std::int64_t> ne);

    // The type of a quantizable tensor:
    //  - a float scheme: that type for every matrix;
    //  - a single quantized type: that type (llama-quantize --pure);
    //  - the mixes (llama.cpp's llama_tensor_get_type): the output head
    //    (token_embd when tied) Q6_K; with 8 experts (Mixtral) attn_k and
    //    attn_v Q8_0 and, under Q4_K_S / Q4_K_M, attn_output Q5_K; then
    //    Q4_K_M / Q5_K_M: attn_v and ffn_down Q6_K in the first and last
    //    eighth of the layers and every third layer between (experts' and
    //    shared experts' ffn_down by their layer); Q4_K_S: attn_v of the
    //    first 4 layers and ffn_down of the first eighth Q5_K; the rest the
    //    base type.
    // A row length that is not a whole number of the type's blocks falls
    // back as llama.cpp does: Q4_K → Q5_0, Q5_K → Q5_1, Q6_K → Q8_0, Q2_K and
    // Q3_K → Q4_0 (llama.cpp now takes IQ4_NL, which Folio does not run),
    // then F16 if even that does not divide the row.
    GgmlType type_of(std::string_view name, std::span<const std::int64_t> ne) const;

private:
    QuantScheme scheme_;
    int n_layers_ = 0;
    int n_expert_ = 0;
    bool has_output_ = false;
};

// Writes n_rows rows of ne0 elements of `type` into dst (n_rows rows of
// quant_row_bytes(type, ne0)), row r converted from the floats
// make_row(r, row) puts in its ne0-float buffer. Rows are split over the pool;
// make_row is called from several threads at once.
void encode_rows(ThreadPool& pool, GgmlType type, std::int64_t ne0, std::int64_t n_rows,
                 const std::function<void(std::int64_t row, float* out)>& make_row, std::span<std::uint8_t> dst);

// Writes the file through a temporary file beside `path`, renamed over it
// when complete: a failure (or an interruption) leaves any existing file at
// `path` as it was. First checks that the file system has room; throws
// std::system_error (ENOSPC, with the sizes) when it has not, or when the
// file cannot be written.
void write_model_file(const GgufWriter& writer, const std::filesystem::path& path);

// Converts every quantizable tensor of `in` to its type under the scheme
// (through f32: dequantized, then quantized); other tensors and all
// metadata are copied, with general.file_type and
// general.quantization_version set. Throws ModelError for a tensor whose
// type Folio cannot read, and what write_model_file throws.
void quantize_model(const GgufFile& in, const QuantScheme& scheme, const std::filesystem::path& out,
                    ThreadPool& pool);

}  // namespace folio::engine
