#pragma once
#include <cstdint>
#include <optional>
#include <string_view>

namespace folio::engine {

// Tensor element types by their ggml id (ggml.h `enum ggml_type`), the ids
// GGUF files store. Ids ggml retired (4, 5, 31-33, 36-38) are not listed here;
// ggml_type_name() still names them so an old file gets a useful error.
enum class GgmlType : std::uint32_t {
    F32 = 0,
    F16 = 1,
    Q4_0 = 2,
    Q4_1 = 3,
    Q5_0 = 6,
    Q5_1 = 7,
    Q8_0 = 8,
    Q8_1 = 9,
    Q2_K = 10,
    Q3_K = 11,
    Q4_K = 12,
    Q5_K = 13,
    Q6_K = 14,
    Q8_K = 15,
    IQ2_XXS = 16,
    IQ2_XS = 17,
    IQ3_XXS = 18,
    IQ1_S = 19,
    IQ4_NL = 20,
    IQ3_S = 21,
    IQ2_S = 22,
    IQ4_XS = 23,
    I8 = 24,
    I16 = 25,
    I32 = 26,
    I64 = 27,
    F64 = 28,
    IQ1_M = 29,
    BF16 = 30,
    TQ1_0 = 34,
    TQ2_0 = 35,
    MXFP4 = 39,
    NVFP4 = 40,
    Q1_0 = 41,
};

// Storage layout of one type: a row of ne[0] elements is
// ne[0] / block_size blocks of type_size bytes each.
struct GgmlTypeLayout {
    std::string_view name;
    std::uint32_t block_size = 0;  // elements per block
    std::uint32_t type_size = 0;   // bytes per block
    bool supported = false;        // Folio's kernels read this type
};

// The layout of a type id, or nullopt when the id is unknown or retired (its
// layout no longer defined by ggml).
std::optional<GgmlTypeLayout> ggml_type_layout(std::uint32_t type_id);

// The ggml name of a type id ("Q4_K", "IQ2_XXS", "Q4_0_4_4"), or empty when
// ggml never assigned the id.
std::string_view ggml_type_name(std::uint32_t type_id);

inline std::string_view ggml_type_name(GgmlType type) {
    return ggml_type_name(static_cast<std::uint32_t>(type));
}

}  // namespace folio::engine
