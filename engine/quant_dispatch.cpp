// The public quant API: argument checks, the kernel set chosen once from the
// CPU's features, and the row chunking of matmul_rows_columns.

#include <algorithm>
#include <string>

#include "engine/quant.h"
#include "engine/vector_math.h"
#include "engine/quant_kernels.h"

#if defined(__x86_64__) || defined(__i386__)
#define FOLIO_QUANT_X86 1
#endif

namespace folio::engine {
namespace quant {
namespace {

#if FOLIO_QUANT_X86
bool cpu_has_avx2() {
    return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") && __builtin_cpu_supports("f16c");
}

// __builtin_cpu_supports also checks that the OS saves the registers (XCR0).
bool cpu_has_avx512() {
    return cpu_has_avx2() && __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
           __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512vnni");
}
#endif

}  // namespace

const KernelTable* avx2_kernels() {
#if FOLIO_QUANT_X86
    static const KernelTable* const table = []() -> const KernelTable* {
        if (!cpu_has_avx2())
            return nullptr;
        static KernelTable avx2 = scalar_kernels();
        avx2.isa = "avx2";
        add_avx2_kernels(avx2);
        return &avx2;
    }();
    return table;
#else
    return nullptr;
#endif
}

const KernelTable* avx512_kernels() {
#if FOLIO_QUANT_X86
    static const KernelTable* const table = []() -> const KernelTable* {
        if (!cpu_has_avx512())
            return nullptr;
        static KernelTable avx512 = *avx2_kernels();
        avx512.isa = "avx512";
        add_avx512_kernels(avx512);
        return &avx512;
    }();
    return table;
#else
    return nullptr;
#endif
}

const KernelTable& active_kernels() {
    static const KernelTable& table = avx512_kernels()   ? *avx512_kernels()
                                      : avx2_kernels()   ? *avx2_kernels()
                                                         : scalar_kernels();
    return table;
}

}  // namespace quant

namespace {

std::size_t slot_of(GgmlType type) {
    return static_cast<std::size_t>(type);
}

std::string type_name(GgmlType type) {
    const std::string_view name = ggml_type_name(type);
    return name.empty() ? "type " + std::to_string(static_cast<std::uint32_t>(type)) : std::string(name);
}

[[noreturn]] void fail(const char* function, const std::string& message) {
    throw QuantError(std::string(function) + ": " + message);
}

void require_kernels(const char* function, GgmlType type) {
    if (!has_quant_kernels(type))
        fail(function, "no CPU kernels for " + type_name(type));
}

void require_whole_blocks(const char* function, GgmlType type, std::int64_t n) {
    const std::int64_t block = quant_block_size(type);
    if (n < 0 || n % block != 0)
        fail(function, "n = " + std::to_string(n) + " is not a multiple of " + type_name(type) +
                           "'s block size (" + std::to_string(block) + ")");
}

quant::MatmulTileFn require_matmul(const char* function, GgmlType type, std::int64_t n) {
    const quant::MatmulTileFn matmul =
        slot_of(type) < quant::kTypeSlots ? quant::active_kernels().matmul[slot_of(type)] : nullptr;
    if (!matmul)
        fail(function, "no dot-product kernel for " + type_name(type) + " weights");
    require_whole_blocks(function, type, n);
    return matmul;
}

// Rows per tile of matmul_rows_columns: about this many bytes of weights, so
// that a tile stays in L2 while every activation column passes over it.
constexpr std::int64_t kTileWeightBytes = 256 * 1024;

}  // namespace

std::int64_t quant_block_size(GgmlType type) {
    require_kernels("quant_block_size", type);
    return ggml_type_layout(static_cast<std::uint32_t>(type))->block_size;
}

std::size_t quant_row_bytes(GgmlType type, std::int64_t n) {
    require_kernels("quant_row_bytes", type);
    require_whole_blocks("quant_row_bytes", type, n);
    const GgmlTypeLayout layout = *ggml_type_layout(static_cast<std::uint32_t>(type));
    return static_cast<std::size_t>(n / layout.block_size) * layout.type_size;
}

bool has_quant_kernels(GgmlType type) {
    return slot_of(type) < quant::kTypeSlots && quant::scalar_kernels().dequantize_row[slot_of(type)] != nullptr;
}

void dequantize_row(GgmlType type, const void* src, float* dst, std::int64_t n) {
    require_kernels("dequantize_row", type);
    require_whole_blocks("dequantize_row", type, n);
    quant::active_kernels().dequantize_row[slot_of(type)](src, dst, n);
}

void quantize_row(GgmlType type, const float* src, void* dst, std::int64_t n) {
    require_kernels("quantize_row", type);
    require_whole_blocks("quantize_row", type, n);
    quant::active_kernels().quantize_row[slot_of(type)](src, dst, n);
}

GgmlType vec_dot_type(GgmlType weight_type) {
    switch (weight_type) {
    case GgmlType::F32:
    case GgmlType::F16:
    case GgmlType::BF16:
        return GgmlType::F32;
    case GgmlType::Q4_0:
    case GgmlType::Q5_0:
    case GgmlType::Q8_0:
        return GgmlType::Q8_0;
    case GgmlType::Q4_1:
    case GgmlType::Q5_1:
        return GgmlType::Q8_1;
    case GgmlType::Q2_K:
    case GgmlType::Q3_K:
    case GgmlType::Q4_K:
    case GgmlType::Q5_K:
    case GgmlType::Q6_K:
        return GgmlType::Q8_K;
    default:
        fail("vec_dot_type", type_name(weight_type) + " is not a weight type with CPU kernels");
    }
}

float vec_dot(GgmlType weight_type, std::int64_t n, const void* weight_row, const void* activation_row) {
    const quant::MatmulTileFn matmul = require_matmul("vec_dot", weight_type, n);
    float result = 0.f;
    quant::MatmulTile tile;
    tile.n = n;
    tile.weights = static_cast<const std::uint8_t*>(weight_row);
    tile.row_bytes = static_cast<std::int64_t>(quant_row_bytes(weight_type, n));
    tile.n_rows = 1;
    tile.activations = static_cast<const std::uint8_t*>(activation_row);
    tile.act_row_bytes = static_cast<std::int64_t>(quant_row_bytes(vec_dot_type(weight_type), n));
    tile.n_cols = 1;
    tile.out = &result;
    tile.out_col_stride = 1;
    matmul(tile);
    return result;
}

namespace {

// One column reads each weight once whatever the order; several walk the
// rows in tiles that stay in L2 while every column passes over them. Tiles
// are whole row groups (16 rows), which only the group kernel needs.
void run_tiles(quant::MatmulTileFn matmul, const void* weights, std::int64_t row_bytes, std::int64_t rows_begin,
               std::int64_t rows_end, std::int64_t n, const void* act_q, std::int64_t act_row_bytes,
               std::int64_t n_cols, float* out, std::int64_t out_col_stride) {
    quant::MatmulTile tile;
    tile.n = n;
    tile.row_bytes = row_bytes;
    tile.activations = static_cast<const std::uint8_t*>(act_q);
    tile.act_row_bytes = act_row_bytes;
    tile.n_cols = n_cols;
    tile.out_col_stride = out_col_stride;
    const std::int64_t rows_per_tile =
        n_cols <= 1 ? rows_end - rows_begin
                    : std::max<std::int64_t>(quant::kGroupRows, kTileWeightBytes / std::max<std::int64_t>(row_bytes, 1) /
                                                                    quant::kGroupRows * quant::kGroupRows);
    for (std::int64_t first = rows_begin; first < rows_end; first += rows_per_tile) {
        tile.weights = static_cast<const std::uint8_t*>(weights) + first * row_bytes;
        tile.n_rows = std::min(rows_per_tile, rows_end - first);
        tile.out = out + first;
        matmul(tile);
    }
}

// Weight rows of `type`, row_bytes apart, that hold n elements each.
void require_row_bytes(const char* function, GgmlType type, std::int64_t n, std::int64_t row_bytes) {
    const auto weight_row_bytes = static_cast<std::int64_t>(quant_row_bytes(type, n));
    if (row_bytes < weight_row_bytes)
        fail(function, "row_bytes = " + std::to_string(row_bytes) + " is less than the " +
                           std::to_string(weight_row_bytes) + " bytes of a " + type_name(type) + " row of " +
                           std::to_string(n));
}

// n_cols activation rows of n elements in weight_type's vec_dot_type, act_row_bytes apart.
void require_activation_rows(const char* function, GgmlType weight_type, std::int64_t n, std::int64_t n_cols,
                             std::int64_t act_row_bytes) {
    if (n_cols < 0)
        fail(function, "n_cols = " + std::to_string(n_cols));
    const auto act_bytes = static_cast<std::int64_t>(quant_row_bytes(vec_dot_type(weight_type), n));
    if (n_cols > 1 && act_row_bytes < act_bytes)
        fail(function, "act_row_bytes = " + std::to_string(act_row_bytes) + " is less than the " +
                           std::to_string(act_bytes) + " bytes of a " + type_name(vec_dot_type(weight_type)) +
                           " row of " + std::to_string(n));
}

void run_matmul(const char* function, GgmlType type, const void* weights, std::int64_t row_bytes,
                std::int64_t rows_begin, std::int64_t rows_end, std::int64_t n, const void* act_q,
                std::int64_t act_row_bytes, std::int64_t n_cols, float* out, std::int64_t out_col_stride) {
    const quant::MatmulTileFn matmul = require_matmul(function, type, n);
    require_row_bytes(function, type, n, row_bytes);
    if (rows_begin < 0 || rows_end < rows_begin)
        fail(function, "bad row range [" + std::to_string(rows_begin) + ", " + std::to_string(rows_end) + ")");
    require_activation_rows(function, type, n, n_cols, act_row_bytes);

    run_tiles(matmul, weights, row_bytes, rows_begin, rows_end, n, act_q, act_row_bytes, n_cols, out, out_col_stride);
}

}  // namespace

void matmul_rows(GgmlType type, const void* weights, std::int64_t row_bytes, std::int64_t rows_begin,
                 std::int64_t rows_end, std::int64_t n, const void* act_q, float* out) {
    run_matmul("matmul_rows", type, weights, row_bytes, rows_begin, rows_end, n, act_q, 0, 1, out, 0);
}

void matmul_rows_columns(GgmlType type, const void* weights, std::int64_t row_bytes,
                         std::int64_t rows_begin, std::int64_t rows_end, std::int64_t n,
                         const void* act_q, std::int64_t act_row_bytes, std::int64_t n_cols,
                         float* out, std::int64_t out_col_stride) {
    run_matmul("matmul_rows_columns", type, weights, row_bytes, rows_begin, rows_end, n, act_q, act_row_bytes,
               n_cols, out, out_col_stride);
}

std::int64_t row_group_elements(GgmlType type) {
    return quant::row_group_layout(type).elements;
}

namespace {

// A group's bytes over its 16 rows: the row stride the tiles step by.
std::int64_t group_row_bytes(GgmlType type, std::int64_t n) {
    const quant::RowGroupLayout layout = quant::row_group_layout(type);
    return n / layout.elements * layout.bytes / quant::kGroupRows;
}

void require_groups(const char* function, GgmlType type, std::int64_t rows, std::int64_t n) {
    const std::int64_t elements = row_group_elements(type);
    if (elements == 0)
        fail(function, "no row groups for " + type_name(type) + " weights");
    if (n < 0 || n % elements != 0)
        fail(function, "n = " + std::to_string(n) + " is not a multiple of " + type_name(type) + "'s group of " +
                           std::to_string(elements) + " elements");
    if (rows < 0 || rows % quant::kGroupRows != 0)
        fail(function, std::to_string(rows) + " rows are not whole groups of " + std::to_string(quant::kGroupRows));
}

}  // namespace

bool row_groups_pay(GgmlType type) {
    return slot_of(type) < quant::kTypeSlots && quant::active_kernels().fast_groups[slot_of(type)];
}

std::size_t row_groups_bytes(GgmlType type, std::int64_t rows, std::int64_t n) {
    require_groups("row_groups_bytes", type, rows, n);
    return static_cast<std::size_t>(rows * group_row_bytes(type, n));
}

void group_rows(GgmlType type, const void* weights, std::int64_t row_bytes, std::int64_t rows_begin,
                std::int64_t rows_end, std::int64_t n, void* groups) {
    require_groups("group_rows", type, rows_begin, n);
    require_groups("group_rows", type, rows_end - rows_begin, n);
    require_row_bytes("group_rows", type, n, row_bytes);
    quant::row_group_layout(type).group_rows(static_cast<const std::uint8_t*>(weights) + rows_begin * row_bytes,
                                             row_bytes, n, (rows_end - rows_begin) / quant::kGroupRows,
                                             static_cast<std::uint8_t*>(groups) + rows_begin * group_row_bytes(type, n));
}

void matmul_row_groups(GgmlType type, const void* groups, std::int64_t rows_begin, std::int64_t rows_end,
                       std::int64_t n, const void* act_q, std::int64_t act_row_bytes, std::int64_t n_cols, float* out,
                       std::int64_t out_col_stride) {
    require_groups("matmul_row_groups", type, rows_begin, n);
    require_groups("matmul_row_groups", type, rows_end - rows_begin, n);
    require_activation_rows("matmul_row_groups", type, n, n_cols, act_row_bytes);
    run_tiles(quant::active_kernels().matmul_groups[slot_of(type)], groups, group_row_bytes(type, n), rows_begin,
              rows_end, n, act_q, act_row_bytes, n_cols, out, out_col_stride);
}

void exp_in_place(float* values, std::int64_t n) {
    quant::active_kernels().exp_row(values, n);
}

void scaled_softmax_in_place(float* values, std::int64_t n, float scale) {
    quant::active_kernels().softmax_row(values, n, scale);
}

void gelu_erf_in_place(float* values, std::int64_t n) {
    quant::active_kernels().gelu_row(values, n);
}

void add_weighted_q8_0_rows(const float* weights, std::int64_t weight_stride, std::int64_t n_heads,
                            const void* rows, std::int64_t row_bytes, std::int64_t n_rows, std::int64_t first,
                            std::int64_t n, float* acc, std::int64_t acc_stride) {
    if (first % quant::kBlock32 != 0 || n % quant::kBlock32 != 0)
        throw std::invalid_argument("add_weighted_q8_0_rows: elements [" + std::to_string(first) + ", " +
                                    std::to_string(first + n) + ") are not whole Q8_0 blocks");
    quant::active_kernels().weighted_q8_0_rows(weights, weight_stride, n_heads, static_cast<const std::uint8_t*>(rows),
                                               row_bytes, n_rows, first / quant::kBlock32, n / quant::kBlock32, acc,
                                               acc_stride);
}

const char* cpu_kernel_isa() {
    return quant::active_kernels().isa;
}

}  // namespace folio::engine
