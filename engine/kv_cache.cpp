#include "engine/kv_cache.h"

#include <cstdio>
#include <fstream>
#include <string>

#include "engine/fp16.h"
#include "engine/quant.h"

namespace folio::engine {
namespace {

constexpr int kQ8Block = 32;  // elements per Q8_0 block

// Bytes of one row of `width` elements in `type`.
std::size_t row_bytes(KvType type, int width) {
    if (type == KvType::F16)
        return static_cast<std::size_t>(width) * sizeof(std::uint16_t);
    if (width % kQ8Block != 0)
        throw KvCacheError("a q8_0 KV cache needs rows of whole 32-element blocks; this model's rows have " +
                           std::to_string(width) + " elements (use f16)");
    return quant_row_bytes(GgmlType::Q8_0, width);
}

}  // namespace

std::string gib_text(std::size_t bytes) {
    char text[32];
    std::snprintf(text, sizeof text, "%.2f GiB", static_cast<double>(bytes) / (1024.0 * 1024.0 * 1024.0));
    return text;
}

const char* kv_type_name(KvType type) {
    return type == KvType::Q8_0 ? "q8_0" : "f16";
}

KvType kv_type_from_name(std::string_view name) {
    if (name == "f16")
        return KvType::F16;
    if (name == "q8_0")
        return KvType::Q8_0;
    throw std::invalid_argument("KV cache type must be f16 or q8_0, not '" + std::string(name) + "'");
}

std::size_t available_memory_bytes() {
    std::ifstream meminfo("/proc/meminfo");
    std::string key;
    std::size_t kib = 0;
    std::string unit;
    while (meminfo >> key >> kib >> unit)
        if (key == "MemAvailable:")
            return kib * 1024;
    return 0;
}

std::size_t KvCache::bytes_needed(int n_layers, int n_positions, int n_kv_heads, int k_width, int v_width,
                                  KvType type) {
    if (n_layers <= 0 || n_positions <= 0 || n_kv_heads <= 0 || k_width <= 0 || v_width < 0)
        throw std::invalid_argument("KvCache: every dimension must be positive (v_width may be 0)");
    if (k_width % n_kv_heads != 0 || v_width % n_kv_heads != 0)
        throw std::invalid_argument("KvCache: " + std::to_string(n_kv_heads) + " kv heads do not divide rows of " +
                                    std::to_string(k_width) + " and " + std::to_string(v_width) + " elements");
    const auto rows = static_cast<std::size_t>(n_layers) * static_cast<std::size_t>(n_positions);
    return rows * (row_bytes(type, k_width) + row_bytes(type, v_width));
}

KvCache::KvCache(int n_layers, int n_positions, int n_kv_heads, int k_width, int v_width, KvType type)
    : KvCache(n_layers, n_positions, n_kv_heads, k_width, v_width, type, nullptr) {
    const std::size_t needed = bytes_needed(n_layers, n_positions, n_kv_heads, k_width, v_width, type);
    // Checked before allocating: past MemAvailable the allocation would
    // either fail as a bare bad_alloc or, overcommitted, push the system into
    // swapping or the OOM killer while the cache fills.
    if (const std::size_t available = available_memory_bytes(); available > 0 && needed > available)
        throw KvCacheError("a " + std::to_string(n_positions) + "-position " + kv_type_name(type) +
                           " KV cache needs " + gib_text(needed) + " of memory, but only " + gib_text(available) +
                           " is available (use a smaller context)");
    const auto rows = static_cast<std::size_t>(n_layers) * static_cast<std::size_t>(n_positions);
    keys_.resize(rows * key_row_bytes_);
    values_.resize(rows * value_row_bytes_);
}

KvCache KvCache::on_gpu(int n_layers, int n_positions, int n_kv_heads, int k_width, int v_width, KvType type,
                        std::size_t gpu_free_bytes, const std::function<std::shared_ptr<void>(std::size_t)>& allocate) {
    const std::size_t needed = bytes_needed(n_layers, n_positions, n_kv_heads, k_width, v_width, type);
    if (needed > gpu_free_bytes)
        throw KvCacheError("a " + std::to_string(n_positions) + "-position " + kv_type_name(type) + " KV cache needs " +
                           gib_text(needed) + " of GPU memory, but only " + gib_text(gpu_free_bytes) +
                           " is free (use a smaller context)");
    return KvCache(n_layers, n_positions, n_kv_heads, k_width, v_width, type, allocate(needed));
}

// The dimensions of either kind of cache, checked by bytes_needed() before
// anything is allocated; gpu_memory null for one in host memory.
KvCache::KvCache(int n_layers, int n_positions, int n_kv_heads, int k_width, int v_width, KvType type,
                 std::shared_ptr<void> gpu_memory)
    : n_layers_(n_layers), n_positions_(n_positions), n_kv_heads_(n_kv_heads), k_width_(k_width), v_width_(v_width),
      type_(type), gpu_memory_(std::move(gpu_memory)) {
    bytes_needed(n_layers, n_positions, n_kv_heads, k_width, v_width, type);
    key_row_bytes_ = row_bytes(type, k_width);
    value_row_bytes_ = row_bytes(type, v_width);
    const bool whole_block_heads =
        (k_width / n_kv_heads) % kQ8Block == 0 && (v_width / n_kv_heads) % kQ8Block == 0;
    head_groups_ = gpu_memory_ || (type == KvType::Q8_0 && !whole_block_heads) ? 1 : n_kv_heads;
}

std::uint8_t* KvCache::gpu_rows(int layer, bool values, KvType type) const {
    check_layer(layer);
    if (!gpu_memory_)
        throw std::logic_error("KvCache: a cache in host memory has no GPU rows");
    if (type != type_)
        throw std::logic_error(std::string("KvCache: a ") + kv_type_name(type_) + " cache has no " +
                               kv_type_name(type) + " rows");
    const auto layer_rows = static_cast<std::size_t>(n_positions_);
    const std::size_t all_keys = static_cast<std::size_t>(n_layers_) * layer_rows * key_row_bytes_;
    auto* base = static_cast<std::uint8_t*>(gpu_memory_.get());
    return values ? base + all_keys + static_cast<std::size_t>(layer) * layer_rows * value_row_bytes_
                  : base + static_cast<std::size_t>(layer) * layer_rows * key_row_bytes_;
}

std::uint16_t* KvCache::gpu_keys(int layer) const {
    return reinterpret_cast<std::uint16_t*>(gpu_rows(layer, false, KvType::F16));
}

std::uint16_t* KvCache::gpu_values(int layer) const {
    return reinterpret_cast<std::uint16_t*>(gpu_rows(layer, true, KvType::F16));
}

std::uint8_t* KvCache::gpu_key_blocks(int layer) const {
    return gpu_rows(layer, false, KvType::Q8_0);
}

std::uint8_t* KvCache::gpu_value_blocks(int layer) const {
    return gpu_rows(layer, true, KvType::Q8_0);
}

void KvCache::check_host(const char* what) const {
    if (gpu_memory_)
        throw std::logic_error(std::string("KvCache: ") + what + " reads host rows, and this cache is on the GPU");
}

void KvCache::check_layer(int layer) const {
    if (layer < 0 || layer >= n_layers_)
        throw std::out_of_range("KvCache: layer " + std::to_string(layer) + " outside [0, " +
                                std::to_string(n_layers_) + ")");
}

std::size_t KvCache::group_offset(int layer, int group, std::size_t row_bytes) const {
    const auto layer_rows = static_cast<std::size_t>(n_positions_);
    return static_cast<std::size_t>(layer) * layer_rows * row_bytes +
           static_cast<std::size_t>(group) * layer_rows * (row_bytes / static_cast<std::size_t>(head_groups_));
}

void KvCache::check_group(int group) const {
    if (group < 0 || group >= head_groups_)
        throw std::out_of_range("KvCache: head group " + std::to_string(group) + " outside [0, " +
                                std::to_string(head_groups_) + ")");
}

void KvCache::store(int layer, int position, const float* k_row, const float* v_row) {
    check_host("store()");
    check_layer(layer);
    if (position < 0 || position >= n_positions_)
        throw std::out_of_range("KvCache: position " + std::to_string(position) + " outside the context of " +
                                std::to_string(n_positions_));
    const auto n_positions = static_cast<std::size_t>(n_positions_);
    const auto p = static_cast<std::size_t>(position);
    const int k_group = k_width_ / head_groups_, v_group = v_width_ / head_groups_;
    for (int g = 0; g < head_groups_; ++g) {
        std::uint8_t* k_dst = keys_.data() + group_offset(layer, g, key_row_bytes_) + p * key_group_bytes();
        const float* k_src = k_row + static_cast<std::ptrdiff_t>(g) * k_group;
        if (type_ == KvType::Q8_0) {
            quantize_row(GgmlType::Q8_0, k_src, k_dst, k_group);
            if (v_width_ > 0)
                quantize_row(GgmlType::Q8_0, v_row + static_cast<std::ptrdiff_t>(g) * v_group,
                             values_.data() + group_offset(layer, g, value_row_bytes_) + p * value_group_bytes(),
                             v_group);
            continue;
        }
        auto* k_halves = reinterpret_cast<std::uint16_t*>(k_dst);
        for (int i = 0; i < k_group; ++i) k_halves[i] = fp32_to_fp16(k_src[i]);
    }
    if (type_ == KvType::Q8_0)
        return;
    auto* v_layer = reinterpret_cast<std::uint16_t*>(values_.data()) + static_cast<std::size_t>(layer) * v_width_ * n_positions;
    // A value row lands in v_width_ cache lines, one per element: asked for
    // all at once, they arrive together instead of one store miss at a time
    // (a decoded token's store took 14 µs a layer instead of 20, qwen3-0.6b).
    for (int i = 0; i < v_width_; ++i)
        __builtin_prefetch(v_layer + static_cast<std::size_t>(i) * n_positions + p, 1);
    for (int i = 0; i < v_width_; ++i)
        v_layer[static_cast<std::size_t>(i) * n_positions + p] = fp32_to_fp16(v_row[i]);
}

const std::uint8_t* KvCache::keys(int layer, int group) const {
    check_host("keys()");
    check_layer(layer);
    check_group(group);
    return keys_.data() + group_offset(layer, group, key_row_bytes_);
}

const std::uint16_t* KvCache::values_transposed(int layer) const {
    check_host("values_transposed()");
    check_layer(layer);
    if (type_ != KvType::F16)
        throw std::logic_error("KvCache: a q8_0 cache holds its values by rows, not transposed");
    return reinterpret_cast<const std::uint16_t*>(values_.data()) +
           static_cast<std::size_t>(layer) * static_cast<std::size_t>(n_positions_) * v_width_;
}

const std::uint8_t* KvCache::value_rows(int layer, int group) const {
    check_host("value_rows()");
    check_layer(layer);
    check_group(group);
    if (type_ != KvType::Q8_0)
        throw std::logic_error("KvCache: an f16 cache holds its values transposed, not by rows");
    return values_.data() + group_offset(layer, group, value_row_bytes_);
}

}  // namespace folio::engine
