#pragma once
#include <array>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <stdexcept>
#include <string>
#include <string_view>
#include <type_traits>
#include <unordered_map>
#include <unordered_set>
#include <utility>
#include <variant>
#include <vector>

#include "engine/ggml_types.h"

// GGUF, the model file format of ggml and llama.cpp (versions 2 and 3,
// little-endian):
//
//   "GGUF" | u32 version | u64 n_tensors | u64 n_kv
//   n_kv × (string key | u32 value type | value)
//   n_tensors × (string name | u32 n_dims | u64 ne[n_dims] | u32 ggml type | u64 offset)
//   zero padding to general.alignment (default 32)
//   data section: each tensor at data start + offset, offsets aligned
//
// A string is u64 length + bytes (no terminator); an array is u32 element
// type + u64 count + elements.

namespace folio::engine {

class MappedFile;  // mapped_file.h

// A malformed GGUF file, or a request the file cannot satisfy (a missing key,
// a value of another type, an unknown tensor). what() is one line naming the
// file and what is wrong, and for a malformed file the byte offset.
class GgufError : public std::runtime_error {
public:
    using std::runtime_error::runtime_error;
};

// Metadata value types by the ids files store (gguf.h `enum gguf_type`).
enum class GgufValueType : std::uint32_t {
    U8 = 0,
    I8 = 1,
    U16 = 2,
    I16 = 3,
    U32 = 4,
    I32 = 5,
    F32 = 6,
    Bool = 7,
    String = 8,
    Array = 9,
    U64 = 10,
    I64 = 11,
    F64 = 12,
};

// "u8", "f32", "string", "array", ...; "unknown" for an id outside the enum.
std::string_view gguf_value_type_name(GgufValueType type);

struct GgufValue;

// An array value. Numbers and bools stay in the file's bytes, strings are
// views of them; only nested arrays are parsed into values.
struct GgufArray {
    GgufValueType element_type = GgufValueType::U8;
    std::uint64_t size = 0;
    // Numeric and bool elements: size × element size bytes, little-endian,
    // not necessarily aligned for the element type.
    std::span<const std::uint8_t> packed;
    std::vector<std::string_view> strings;  // element_type == String
    std::vector<GgufValue> arrays;          // element_type == Array

    // Element i (< size) as a value; a nested array comes back as a copy.
    GgufValue element(std::uint64_t i) const;
};

// One metadata value. Unsigned integers are held as u64, signed as i64, f32
// and f64 as double; `type` keeps the stored width. Views point into the bytes
// of the GgufFile that read the value (or, for a value built for GgufWriter,
// into the caller's memory) and live as long as those.
struct GgufValue {
    GgufValueType type = GgufValueType::U8;
    std::variant<std::uint64_t, std::int64_t, double, bool, std::string_view, GgufArray> data;
};

struct GgufKeyValue {
    std::string_view key;
    GgufValue value;
    std::uint64_t file_offset = 0;  // where the key starts in the file
};

struct GgufTensor {
    std::string_view name;
    GgmlType type = GgmlType::F32;  // any type with a known layout; see require_supported_type
    std::uint32_t n_dims = 0;       // 1..4
    // Elements along each dimension, ne[0] contiguous (the row length); the
    // dimensions past n_dims are 1. A weight matrix is (ne[1] rows, ne[0] cols).
    std::array<std::int64_t, 4> ne{1, 1, 1, 1};
    std::uint64_t offset = 0;      // from the start of the data section, a multiple of the alignment
    std::uint64_t row_bytes = 0;   // bytes of one row of ne[0] elements
    std::span<const std::uint8_t> data;  // all n_bytes() of the tensor, in the GgufFile's bytes

    std::int64_t n_elements() const { return ne[0] * ne[1] * ne[2] * ne[3]; }
    std::uint64_t n_bytes() const { return data.size(); }
    std::string_view type_name() const { return ggml_type_name(type); }
    // Throws GgufError ("tensor blk.0.attn_q.weight has type IQ2_XXS, which
    // Folio does not support yet") unless Folio's kernels read this type.
    void require_supported_type() const;
};

// A parsed GGUF file. Every count, length, type, shape and offset is checked
// while parsing, so a GgufFile that exists is consistent: every tensor's data
// lies inside the file, aligned, overlapping no other. Copies share the bytes.
class GgufFile {
public:
    // Maps the file read-only. Throws GgufError for malformed contents and
    // std::system_error when the file cannot be opened or mapped.
    static GgufFile open(const std::filesystem::path& path);
    // Parses bytes already in memory; `source` names them in messages.
    static GgufFile parse(std::vector<std::uint8_t> bytes, std::string source = "<memory>");

    const std::string& source() const { return source_; }
    std::uint32_t version() const { return version_; }
    std::uint32_t alignment() const { return alignment_; }
    // Start of the data section; past the end of a file that has no tensors
    // and no padding after its metadata.
    std::uint64_t data_offset() const { return data_offset_; }
    std::uint64_t file_size() const { return bytes_.size(); }
    std::string_view architecture() const { return get_string("general.architecture"); }

    // Metadata in file order.
    std::span<const GgufKeyValue> metadata() const { return metadata_; }
    const GgufValue* find(std::string_view key) const;

    // Typed getters. Without a fallback a missing key throws GgufError; a
    // present key of another type always throws. Integer getters take any
    // integer type whose value fits; float getters take f32 and f64.
    std::string_view get_string(std::string_view key) const;
    std::string_view get_string(std::string_view key, std::string_view fallback) const;
    std::optional<std::string_view> find_string(std::string_view key) const;
    std::uint32_t get_u32(std::string_view key) const;
    std::uint32_t get_u32(std::string_view key, std::uint32_t fallback) const;
    std::optional<std::uint32_t> find_u32(std::string_view key) const;
    std::int32_t get_i32(std::string_view key) const;
    std::int32_t get_i32(std::string_view key, std::int32_t fallback) const;
    std::optional<std::int32_t> find_i32(std::string_view key) const;
    std::uint64_t get_u64(std::string_view key) const;
    std::uint64_t get_u64(std::string_view key, std::uint64_t fallback) const;
    std::optional<std::uint64_t> find_u64(std::string_view key) const;
    std::int64_t get_i64(std::string_view key) const;
    std::int64_t get_i64(std::string_view key, std::int64_t fallback) const;
    std::optional<std::int64_t> find_i64(std::string_view key) const;
    float get_f32(std::string_view key) const;
    float get_f32(std::string_view key, float fallback) const;
    std::optional<float> find_f32(std::string_view key) const;
    bool get_bool(std::string_view key) const;
    bool get_bool(std::string_view key, bool fallback) const;
    std::optional<bool> find_bool(std::string_view key) const;

    // Array getters. Strings are views into the file (no copy, so a 150k-token
    // vocabulary costs nothing here); numbers are converted into a new vector.
    std::span<const std::string_view> get_string_array(std::string_view key) const;
    std::optional<std::span<const std::string_view>> find_string_array(std::string_view key) const;
    std::vector<std::int64_t> get_int_array(std::string_view key) const;
    std::optional<std::vector<std::int64_t>> find_int_array(std::string_view key) const;
    std::vector<float> get_float_array(std::string_view key) const;
    std::optional<std::vector<float>> find_float_array(std::string_view key) const;

    // Tensors in file order.
    std::span<const GgufTensor> tensors() const { return tensors_; }

    // A mapped file's pages wholly inside `range` leave this process's
    // memory (MappedFile::release), for bytes copied elsewhere; nothing for a
    // file parsed from memory.
    void release_pages(std::span<const std::uint8_t> range) const;
    const GgufTensor* find_tensor(std::string_view name) const;
    const GgufTensor& tensor(std::string_view name) const;  // throws GgufError when absent

private:
    friend class GgufParser;
    GgufFile() = default;

    const GgufValue& require(std::string_view key, std::string_view expected) const;

    std::shared_ptr<const void> bytes_owner_;  // the mapping or the parsed vector
    const MappedFile* mapping_ = nullptr;      // the mapping bytes_owner_ keeps, if any
    std::span<const std::uint8_t> bytes_;
    std::string source_;
    std::uint32_t version_ = 0;
    std::uint32_t alignment_ = 32;  // GGUF_DEFAULT_ALIGNMENT, when general.alignment is absent
    std::uint64_t data_offset_ = 0;
    std::vector<GgufKeyValue> metadata_;
    std::unordered_map<std::string_view, std::size_t> metadata_index_;
    std::vector<GgufTensor> tensors_;
    std::unordered_map<std::string_view, std::size_t> tensor_index_;
};

// Builds a GGUF file: metadata in the order added, then tensor infos, then
// tensor data in the order added, the data section and each tensor padded to
// general.alignment (32 unless a u32 general.alignment is added) as ggml pads
// them, the last tensor included.
// Misuse (a duplicate key or tensor name, a shape that does not match the
// data) throws GgufError at the call.
class GgufWriter {
public:
    explicit GgufWriter(std::uint32_t version = 3);  // 2 or 3

    void add_u8(std::string key, std::uint8_t value);
    void add_i8(std::string key, std::int8_t value);
    void add_u16(std::string key, std::uint16_t value);
    void add_i16(std::string key, std::int16_t value);
    void add_u32(std::string key, std::uint32_t value);
    void add_i32(std::string key, std::int32_t value);
    void add_u64(std::string key, std::uint64_t value);
    void add_i64(std::string key, std::int64_t value);
    void add_f32(std::string key, float value);
    void add_f64(std::string key, double value);
    void add_bool(std::string key, bool value);
    void add_string(std::string key, std::string_view value);

    void add_array(std::string key, std::span<const std::uint8_t> values);
    void add_array(std::string key, std::span<const std::int8_t> values);
    void add_array(std::string key, std::span<const std::uint16_t> values);
    void add_array(std::string key, std::span<const std::int16_t> values);
    void add_array(std::string key, std::span<const std::uint32_t> values);
    void add_array(std::string key, std::span<const std::int32_t> values);
    void add_array(std::string key, std::span<const std::uint64_t> values);
    void add_array(std::string key, std::span<const std::int64_t> values);
    void add_array(std::string key, std::span<const float> values);
    void add_array(std::string key, std::span<const double> values);
    void add_array(std::string key, const std::vector<bool>& values);
    void add_string_array(std::string key, std::span<const std::string> values);
    void add_string_array(std::string key, std::span<const std::string_view> values);

    // Any value, nested arrays included: copies metadata from a read file.
    void add_value(std::string key, const GgufValue& value);

    // ne as in GgufTensor (ne[0] contiguous), 1 to 4 dimensions; data holds
    // exactly the tensor's bytes.
    void add_tensor(std::string name, GgmlType type, std::span<const std::int64_t> ne,
                    std::vector<std::uint8_t> data);

    // Fills `data`, exactly the tensor's bytes.
    using TensorFill = std::function<void(std::span<std::uint8_t> data)>;
    // A tensor whose bytes fill(data) makes only when to_bytes() or write()
    // reaches it, one tensor in memory at a time: how a file larger than
    // memory (an 8B model) is written. (A template so that a braced {}
    // still means the data overload above.)
    template <typename Fill>
        requires std::is_invocable_v<Fill&, std::span<std::uint8_t>>
    void add_tensor(std::string name, GgmlType type, std::span<const std::int64_t> ne, Fill fill) {
        add_filled_tensor(std::move(name), type, ne, TensorFill(std::move(fill)));
    }

    // The size of the file write() makes, in bytes.
    std::uint64_t file_size() const;

    std::vector<std::uint8_t> to_bytes() const;
    // Throws std::system_error when the file cannot be written; a partial
    // file is removed.
    void write(const std::filesystem::path& path) const;

private:
    struct PendingTensor {
        std::string name;
        GgmlType type;
        std::vector<std::int64_t> ne;
        std::uint64_t n_bytes;
        std::vector<std::uint8_t> data;  // empty when fill makes the bytes
        TensorFill fill;

        // Calls use with the bytes, made by fill when there is one.
        void use_bytes(const std::function<void(std::span<const std::uint8_t>)>& use) const;
    };

    void add_filled_tensor(std::string name, GgmlType type, std::span<const std::int64_t> ne, TensorFill fill);
    // Checks a new tensor's name, type and shape; returns its size in bytes.
    std::uint64_t check_tensor(const std::string& name, GgmlType type, std::span<const std::int64_t> ne) const;

    void add_encoded(std::string key, GgufValueType type, std::span<const std::uint8_t> encoded);
    void add_packed_array(std::string key, GgufValueType element_type, const void* elements,
                          std::size_t count, std::size_t element_size);
    // Everything before the first tensor's data, padding included.
    std::vector<std::uint8_t> encode_header() const;

    std::uint32_t version_;
    std::uint32_t alignment_ = 32;
    std::uint64_t n_kv_ = 0;
    std::vector<std::uint8_t> metadata_bytes_;  // encoded key/value pairs
    std::unordered_set<std::string> keys_;
    std::vector<PendingTensor> tensors_;
    std::unordered_set<std::string> tensor_names_;
};

}  // namespace folio::engine
