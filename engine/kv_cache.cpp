#include "engine/kv_cache.h"

#include <stdexcept>
#include <string>

#include "engine/fp16.h"

namespace folio::engine {

KvCache::KvCache(int n_layers, int n_positions, int k_width, int v_width)
    : n_layers_(n_layers), n_positions_(n_positions), k_width_(k_width), v_width_(v_width) {
    if (n_layers <= 0 || n_positions <= 0 || k_width <= 0 || v_width <= 0)
        throw std::invalid_argument("KvCache: every dimension must be positive");
    const auto rows = static_cast<std::size_t>(n_layers) * static_cast<std::size_t>(n_positions);
    keys_.resize(rows * static_cast<std::size_t>(k_width));
    values_.resize(rows * static_cast<std::size_t>(v_width));
}

void KvCache::check_layer(int layer) const {
    if (layer < 0 || layer >= n_layers_)
        throw std::out_of_range("KvCache: layer " + std::to_string(layer) + " outside [0, " +
                                std::to_string(n_layers_) + ")");
}

void KvCache::store(int layer, int position, const float* k_row, const float* v_row) {
    check_layer(layer);
    if (position < 0 || position >= n_positions_)
        throw std::out_of_range("KvCache: position " + std::to_string(position) + " outside the context of " +
                                std::to_string(n_positions_));
    const auto n_positions = static_cast<std::size_t>(n_positions_);
    const auto p = static_cast<std::size_t>(position);
    std::uint16_t* k_dst = keys_.data() + (static_cast<std::size_t>(layer) * n_positions + p) * k_width_;
    for (int i = 0; i < k_width_; ++i)
        k_dst[i] = fp32_to_fp16(k_row[i]);
    std::uint16_t* v_layer = values_.data() + static_cast<std::size_t>(layer) * v_width_ * n_positions;
    for (int i = 0; i < v_width_; ++i)
        v_layer[static_cast<std::size_t>(i) * n_positions + p] = fp32_to_fp16(v_row[i]);
}

const std::uint16_t* KvCache::keys(int layer) const {
    check_layer(layer);
    return keys_.data() + static_cast<std::size_t>(layer) * static_cast<std::size_t>(n_positions_) * k_width_;
}

const std::uint16_t* KvCache::values_transposed(int layer) const {
    check_layer(layer);
    return values_.data() + static_cast<std::size_t>(layer) * static_cast<std::size_t>(n_positions_) * v_width_;
}

}  // namespace folio::engine
