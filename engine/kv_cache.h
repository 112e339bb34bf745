#pragma once
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

// The keys and values of one sequence, per layer and position.
//
// Position p's row holds the key and value of the token at position p, with
// RoPE already applied to the key. Attention for a token at position p reads
// rows [0, p], so every position below p must have been stored, by this
// batch or an earlier one. Storing a position again overwrites it, which is
// how a caller rewinds the sequence.
//
// Two element types, chosen when the cache is made, in host memory or on a
// GPU (on_gpu: both types there keep keys and values by rows, as the CUDA
// kernels read them, a position at a time):
//   F16   (ggml's default cache type: half the memory of f32) keys by rows,
//         values transposed in host memory, so that the CPU's weighted sum
//         over positions is one F16 dot product per output element
//         (llama.cpp's layout without flash attention).
//   Q8_0  ggml's {f16 d; i8 qs[32]} blocks, 34 bytes per 32 elements (53% of
//         f16). A transposed row cannot be quantized one position at a time,
//         so values are kept by rows too and attention accumulates weighted
//         value rows (llama.cpp's layout for quantized V with flash attention).
//         Row widths must be whole blocks (multiples of 32).
//
// In host memory each kv head's keys (and q8_0 values) are kept apart,
// position after position, so that a decoded token's attention streams one
// head's rows from memory: with the heads side by side in one row per
// position, a head's keys were short runs a row apart, which the hardware
// prefetchers follow poorly (scoring 8 heads of 128 over 1,024 positions
// took 1.7x as long). A q8_0 cache keeps its heads apart when they are whole
// blocks; narrower heads share blocks, so all of a position's heads stay in
// one row there, as on a GPU.

namespace folio::engine {

enum class KvType { F16, Q8_0 };

const char* kv_type_name(KvType type);  // "f16", "q8_0"
// Throws std::invalid_argument for another name.
KvType kv_type_from_name(std::string_view name);

// A size in memory for an error message: "1.50 GiB".
std::string gib_text(std::size_t bytes);

// A cache that cannot be made: rows that are not whole Q8_0 blocks, or more
// memory than the system has available. what() is one line.
class KvCacheError : public std::runtime_error {
public:
    using std::runtime_error::runtime_error;
};

class KvCache {
public:
    // A cache in the memory of a GPU (Model::make_kv_cache of a model that
    // runs there) in the CUDA backend's layout: keys and values of either
    // type both by rows of all heads, (n_layers, n_positions, width) each,
    // keys first.
    // allocate(bytes) returns that much device memory, owned by the pointer;
    // it is called only when bytes_needed(..., type) fits in
    // gpu_free_bytes, else KvCacheError (as for Q8_0 rows that are not whole
    // blocks). The host accessors store(), keys(), values_transposed() and
    // value_rows() throw std::logic_error on such a cache. v_width may be 0,
    // as for the constructor's cache of keys only.
    static KvCache on_gpu(int n_layers, int n_positions, int n_kv_heads, int k_width, int v_width, KvType type,
                          std::size_t gpu_free_bytes, const std::function<std::shared_ptr<void>(std::size_t)>& allocate);

    // A cache in host memory. k_width = n_kv_heads * key head size, v_width =
    // n_kv_heads * value head size, or 0 for a cache of keys only: multi-head
    // latent attention (DeepSeek, one kv head) reads its values from the
    // keys' first elements, and store() ignores v_row. Throws
    // std::invalid_argument for a dimension that is not positive (v_width:
    // negative) or widths that n_kv_heads does not divide, and KvCacheError
    // for Q8_0 rows that are not whole blocks or when bytes_needed() exceeds
    // available_memory_bytes() (checked before anything is allocated).
    KvCache(int n_layers, int n_positions, int n_kv_heads, int k_width, int v_width, KvType type = KvType::F16);
    KvCache(KvCache&&) noexcept = default;
    KvCache& operator=(KvCache&&) noexcept = default;
    KvCache(const KvCache&) = delete;
    KvCache& operator=(const KvCache&) = delete;

    // The memory a cache of these dimensions holds, in bytes. Throws as the
    // constructor does for dimensions no cache can have.
    static std::size_t bytes_needed(int n_layers, int n_positions, int n_kv_heads, int k_width, int v_width,
                                    KvType type);

    int n_layers() const { return n_layers_; }
    int n_positions() const { return n_positions_; }  // capacity: the context length
    int n_kv_heads() const { return n_kv_heads_; }
    // Host memory keeps the kv heads in this many groups of consecutive
    // heads, each group's rows position after position: n_kv_heads (every
    // head apart), or 1 for a q8_0 cache of heads narrower than whole blocks
    // and for a GPU cache.
    int head_groups() const { return head_groups_; }
    int k_width() const { return k_width_; }
    int v_width() const { return v_width_; }
    KvType type() const { return type_; }
    std::size_t bytes() const {
        return on_gpu() ? static_cast<std::size_t>(n_layers_) * static_cast<std::size_t>(n_positions_) *
                              (key_row_bytes_ + value_row_bytes_)
                        : keys_.size() + values_.size();
    }
    bool on_gpu() const { return gpu_memory_ != nullptr; }

    // A GPU cache's rows of one layer (device memory) by position, every
    // head of a position in one row, key_row_bytes() and value_row_bytes()
    // apart: gpu_keys()/gpu_values() the f16 elements of an F16 cache,
    // gpu_key_blocks()/gpu_value_blocks() the {f16 d; i8 qs[32]} blocks of a
    // Q8_0 cache (2-byte aligned). Throw
    // std::logic_error for a cache in host memory or of the other type,
    // std::out_of_range for a layer outside the cache.
    std::uint16_t* gpu_keys(int layer) const;
    std::uint16_t* gpu_values(int layer) const;
    std::uint8_t* gpu_key_blocks(int layer) const;
    std::uint8_t* gpu_value_blocks(int layer) const;

    // k_row: k_width floats, v_row: v_width floats, converted to the cache
    // type. Throws std::out_of_range for a layer or position outside the cache.
    void store(int layer, int position, const float* k_row, const float* v_row);

    // The keys of head group `group` in a layer, (n_positions, k_width /
    // head_groups()) in the cache type: position p's at keys(layer, group) +
    // p * key_group_bytes(). Throws std::out_of_range for a layer or group
    // outside the cache.
    const std::uint8_t* keys(int layer, int group) const;
    std::size_t key_group_bytes() const { return key_row_bytes_ / static_cast<std::size_t>(head_groups_); }
    std::size_t key_row_bytes() const { return key_row_bytes_; }  // every head of a position

    // F16 only: a layer's values transposed, f16 (v_width, n_positions):
    // column p is position p, row e element e of the heads side by side
    // (head h's rows from h * v_width / n_kv_heads). Throws std::logic_error
    // for a Q8_0 cache.
    const std::uint16_t* values_transposed(int layer) const;

    // Q8_0 only: the values of head group `group` in a layer, (n_positions,
    // v_width / head_groups()): position p's at value_rows(layer, group) + p
    // * value_group_bytes(). Throws std::logic_error for an F16 cache.
    const std::uint8_t* value_rows(int layer, int group) const;
    std::size_t value_group_bytes() const { return value_row_bytes_ / static_cast<std::size_t>(head_groups_); }
    std::size_t value_row_bytes() const { return value_row_bytes_; }  // every head of a position

private:
    KvCache(int n_layers, int n_positions, int n_kv_heads, int k_width, int v_width, KvType type,
            std::shared_ptr<void> gpu_memory);
    void check_layer(int layer) const;
    void check_group(int group) const;
    // Where head group `group` of `layer` starts in keys_ or values_, whose
    // rows of every head are row_bytes.
    std::size_t group_offset(int layer, int group, std::size_t row_bytes) const;
    std::uint8_t* gpu_rows(int layer, bool values, KvType type) const;
    void check_host(const char* what) const;

    int n_layers_;
    int n_positions_;
    int n_kv_heads_;
    int head_groups_;
    int k_width_;
    int v_width_;
    KvType type_;
    std::size_t key_row_bytes_;
    std::size_t value_row_bytes_;
    // keys_: (n_layers, head_groups, n_positions, k_width / head_groups) in type_
    // values_: F16 (n_layers, v_width, n_positions); Q8_0 (n_layers, head_groups, n_positions, v_width / head_groups)
    std::vector<std::uint8_t> keys_;
    std::vector<std::uint8_t> values_;
    // A GPU cache's device memory (keys_ and values_ stay empty). Moving the
    // cache moves it; a copy would alias it, so KvCache is move-only.
    std::shared_ptr<void> gpu_memory_;
};

// MemAvailable of /proc/meminfo in bytes: what the kernel estimates can be
// allocated without swapping. 0 when it cannot be read (no check then).
std::size_t available_memory_bytes();

}  // namespace folio::engine
