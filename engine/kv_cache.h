#pragma once
#include <cstdint>
#include <vector>

// The keys and values of one sequence, per layer and position, kept as f16
// (ggml's default cache type: half the memory of f32; attention's dot
// products read f16 directly through the F16 matmul kernels).
//
// Position p's row holds the key and value of the token at position p, with
// RoPE already applied to the key. Attention for a token at position p reads
// rows [0, p], so every position below p must have been stored, by this
// batch or an earlier one. Storing a position again overwrites it, which is
// how a caller rewinds the sequence.

namespace folio::engine {

class KvCache {
public:
    // k_width = n_kv_heads * key head size, v_width = n_kv_heads * value head size.
    KvCache(int n_layers, int n_positions, int k_width, int v_width);

    int n_layers() const { return n_layers_; }
    int n_positions() const { return n_positions_; }  // capacity: the context length
    int k_width() const { return k_width_; }
    int v_width() const { return v_width_; }

    // k_row: k_width floats, v_row: v_width floats. Throws std::out_of_range
    // for a layer or position outside the cache.
    void store(int layer, int position, const float* k_row, const float* v_row);

    // A layer's keys, f16 (n_positions, k_width): row p is position p.
    const std::uint16_t* keys(int layer) const;
    // A layer's values transposed, f16 (v_width, n_positions): column p is
    // position p, so that attention's weighted sum over positions is one dot
    // product per output element (as llama.cpp lays V out without flash
    // attention).
    const std::uint16_t* values_transposed(int layer) const;

private:
    void check_layer(int layer) const;

    int n_layers_;
    int n_positions_;
    int k_width_;
    int v_width_;
    std::vector<std::uint16_t> keys_;    // f16 (n_layers, n_positions, k_width)
    std::vector<std::uint16_t> values_;  // f16 (n_layers, v_width, n_positions)
};

}  // namespace folio::engine
