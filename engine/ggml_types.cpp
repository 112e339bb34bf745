#include "engine/ggml_types.h"

#include <array>

namespace folio::engine {
namespace {

// Block sizes: QK4_0 = QK4_1 = QK5_0 = QK5_1 = QK8_0 = QK8_1 = QK4_NL =
// QK_MXFP4 = 32, QK_NVFP4 = 64, QK1_0 = 128, QK_K = 256. Type sizes are
// sizeof(block_<type>) in ggml's ggml-common.h (ggml_half = 2 bytes); gguf-py's
// table still says 40 for Q8_1, from before its d and s became halves.
struct TypeEntry {
    std::string_view name;
    std::uint32_t block_size;  // 0: ggml retired the type, its layout is gone
    std::uint32_t type_size;
    bool supported;
};

constexpr std::array<TypeEntry, 42> type_table = {{
    {"F32", 1, 4, true},
    {"F16", 1, 2, true},
    {"Q4_0", 32, 18, true},   // d, qs[16]
    {"Q4_1", 32, 20, true},   // d, m, qs[16]
    {"Q4_2", 0, 0, false},
    {"Q4_3", 0, 0, false},
    {"Q5_0", 32, 22, true},   // d, qh[4], qs[16]
    {"Q5_1", 32, 24, true},   // d, m, qh[4], qs[16]
    {"Q8_0", 32, 34, true},   // d, qs[32]
    {"Q8_1", 32, 36, true},   // d, s, qs[32]
    {"Q2_K", 256, 84, true},  // scales[16], qs[64], d, dmin
    {"Q3_K", 256, 110, true}, // hmask[32], qs[64], scales[12], d
    {"Q4_K", 256, 144, true}, // d, dmin, scales[12], qs[128]
    {"Q5_K", 256, 176, true}, // d, dmin, scales[12], qh[32], qs[128]
    {"Q6_K", 256, 210, true}, // ql[128], qh[64], scales[16], d
    {"Q8_K", 256, 292, true}, // float d, qs[256], int16 bsums[16]
    {"IQ2_XXS", 256, 66, false},
    {"IQ2_XS", 256, 74, false},
    {"IQ3_XXS", 256, 98, false},
    {"IQ1_S", 256, 50, false},
    {"IQ4_NL", 32, 18, false},
    {"IQ3_S", 256, 110, false},
    {"IQ2_S", 256, 82, false},
    {"IQ4_XS", 256, 136, false},
    {"I8", 1, 1, false},
    {"I16", 1, 2, false},
    {"I32", 1, 4, false},
    {"I64", 1, 8, false},
    {"F64", 1, 8, false},
    {"IQ1_M", 256, 56, false},
    {"BF16", 1, 2, true},
    {"Q4_0_4_4", 0, 0, false},
    {"Q4_0_4_8", 0, 0, false},
    {"Q4_0_8_8", 0, 0, false},
    {"TQ1_0", 256, 54, false},
    {"TQ2_0", 256, 66, false},
    {"IQ4_NL_4_4", 0, 0, false},
    {"IQ4_NL_4_8", 0, 0, false},
    {"IQ4_NL_8_8", 0, 0, false},
    {"MXFP4", 32, 17, false},  // e, qs[16]
    {"NVFP4", 64, 36, false},  // d[4] (UE4M3), qs[32]
    {"Q1_0", 128, 18, false},  // d, qs[16]
}};

}  // namespace

std::optional<GgmlTypeLayout> ggml_type_layout(std::uint32_t type_id) {
    if (type_id >= type_table.size() || type_table[type_id].block_size == 0)
        return std::nullopt;
    const TypeEntry& entry = type_table[type_id];
    return GgmlTypeLayout{entry.name, entry.block_size, entry.type_size, entry.supported};
}

std::string_view ggml_type_name(std::uint32_t type_id) {
    return type_id < type_table.size() ? type_table[type_id].name : std::string_view{};
}

}  // namespace folio::engine
