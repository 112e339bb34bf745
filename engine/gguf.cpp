#include "engine/gguf.h"

#include <algorithm>
#include <bit>
#include <cerrno>
#include <cmath>
#include <cstring>
#include <fstream>
#include <limits>
#include <numeric>
#include <system_error>
#include <utility>

#include "engine/mapped_file.h"

namespace folio::engine {

static_assert(std::endian::native == std::endian::little,
              "GGUF is little-endian and its numbers are read in place");

namespace {

constexpr std::array<std::uint8_t, 4> gguf_magic = {'G', 'G', 'U', 'F'};
constexpr std::uint32_t max_dims = 4;
// ggml reads no nested arrays at all; a bound keeps a crafted file from
// recursing the parser off the end of its stack.
constexpr int max_array_depth = 8;

// The smallest encodings, used to reject a count the rest of the file could
// not hold before anything is reserved for it.
constexpr std::uint64_t min_string_bytes = 8;                             // u64 length
constexpr std::uint64_t min_kv_bytes = min_string_bytes + 4 + 1;          // key, type, u8
constexpr std::uint64_t min_tensor_info_bytes = min_string_bytes + 4 + 8 + 4 + 8;  // name, n_dims, ne[0], type, offset
constexpr std::uint64_t min_array_bytes = 4 + 8;                          // element type, count
// Counts are only known to fit the file, and a multi-gigabyte model file fits
// hundreds of millions of entries; vectors reserve at most this many up front
// and otherwise grow with the entries that actually parse.
constexpr std::uint64_t max_reserve = 1 << 16;

// Bytes of one fixed-size value; 0 for string and array.
std::uint64_t fixed_value_size(GgufValueType type) {
    switch (type) {
    case GgufValueType::U8:
    case GgufValueType::I8:
    case GgufValueType::Bool: return 1;
    case GgufValueType::U16:
    case GgufValueType::I16: return 2;
    case GgufValueType::U32:
    case GgufValueType::I32:
    case GgufValueType::F32: return 4;
    case GgufValueType::U64:
    case GgufValueType::I64:
    case GgufValueType::F64: return 8;
    case GgufValueType::String:
    case GgufValueType::Array: return 0;
    }
    return 0;
}

std::uint64_t min_encoded_size(GgufValueType type) {
    switch (type) {
    case GgufValueType::String: return min_string_bytes;
    case GgufValueType::Array: return min_array_bytes;
    default: return fixed_value_size(type);
    }
}

bool is_integer_type(GgufValueType type) {
    switch (type) {
    case GgufValueType::U8:
    case GgufValueType::I8:
    case GgufValueType::U16:
    case GgufValueType::I16:
    case GgufValueType::U32:
    case GgufValueType::I32:
    case GgufValueType::U64:
    case GgufValueType::I64: return true;
    default: return false;
    }
}

template <class T>
T load(const std::uint8_t* at) {
    T value;
    std::memcpy(&value, at, sizeof value);
    return value;
}

// A fixed-size value stored at `at` (fixed_value_size(type) bytes).
GgufValue decode_fixed(GgufValueType type, const std::uint8_t* at) {
    switch (type) {
    case GgufValueType::U8: return {type, std::uint64_t{load<std::uint8_t>(at)}};
    case GgufValueType::I8: return {type, std::int64_t{load<std::int8_t>(at)}};
    case GgufValueType::U16: return {type, std::uint64_t{load<std::uint16_t>(at)}};
    case GgufValueType::I16: return {type, std::int64_t{load<std::int16_t>(at)}};
    case GgufValueType::U32: return {type, std::uint64_t{load<std::uint32_t>(at)}};
    case GgufValueType::I32: return {type, std::int64_t{load<std::int32_t>(at)}};
    case GgufValueType::U64: return {type, load<std::uint64_t>(at)};
    case GgufValueType::I64: return {type, load<std::int64_t>(at)};
    case GgufValueType::F32: return {type, double{load<float>(at)}};
    case GgufValueType::F64: return {type, load<double>(at)};
    case GgufValueType::Bool: return {type, load<std::uint8_t>(at) != 0};
    case GgufValueType::String:
    case GgufValueType::Array: break;
    }
    throw std::logic_error("decode_fixed: not a fixed-size GGUF type");
}

std::string describe_type(const GgufValue& value) {
    std::string text(gguf_value_type_name(value.type));
    if (const auto* array = std::get_if<GgufArray>(&value.data))
        text += " of " + std::string(gguf_value_type_name(array->element_type));
    return text;
}

std::string shape_text(std::span<const std::int64_t> ne) {
    std::string text = "[";
    for (std::size_t i = 0; i < ne.size(); ++i)
        text += (i ? ", " : "") + std::to_string(ne[i]);
    return text + "]";
}

// Bytes of a tensor of `layout` with shape ne, or nullopt when the size
// overflows. ne[0] must already be a multiple of the block size.
std::optional<std::uint64_t> tensor_bytes(const GgmlTypeLayout& layout,
                                          std::span<const std::int64_t> ne) {
    std::uint64_t bytes = 0;
    if (__builtin_mul_overflow(static_cast<std::uint64_t>(ne[0]) / layout.block_size,
                               std::uint64_t{layout.type_size}, &bytes))
        return std::nullopt;
    for (std::size_t d = 1; d < ne.size(); ++d)
        if (__builtin_mul_overflow(bytes, static_cast<std::uint64_t>(ne[d]), &bytes))
            return std::nullopt;
    return bytes;
}

std::uint64_t align_up(std::uint64_t offset, std::uint64_t alignment) {
    return (offset + alignment - 1) / alignment * alignment;
}

}  // namespace

std::string_view gguf_value_type_name(GgufValueType type) {
    switch (type) {
    case GgufValueType::U8: return "u8";
    case GgufValueType::I8: return "i8";
    case GgufValueType::U16: return "u16";
    case GgufValueType::I16: return "i16";
    case GgufValueType::U32: return "u32";
    case GgufValueType::I32: return "i32";
    case GgufValueType::F32: return "f32";
    case GgufValueType::Bool: return "bool";
    case GgufValueType::String: return "string";
    case GgufValueType::Array: return "array";
    case GgufValueType::U64: return "u64";
    case GgufValueType::I64: return "i64";
    case GgufValueType::F64: return "f64";
    }
    return "unknown";
}

GgufValue GgufArray::element(std::uint64_t i) const {
    if (i >= size)
        throw std::out_of_range("GGUF array element " + std::to_string(i) + " of " +
                                std::to_string(size));
    switch (element_type) {
    case GgufValueType::String: return {element_type, strings[i]};
    case GgufValueType::Array: return arrays[i];
    default: return decode_fixed(element_type, packed.data() + i * fixed_value_size(element_type));
    }
}

void GgufTensor::require_supported_type() const {
    const auto layout = ggml_type_layout(static_cast<std::uint32_t>(type));
    if (!layout || !layout->supported)
        throw GgufError("tensor " + std::string(name) + " has type " + std::string(type_name()) +
                        ", which Folio does not support yet");
}

// Reads a whole file into a GgufFile, checking each field before using it.
// Every failure names the byte offset of the field that is wrong.
class GgufParser {
public:
    explicit GgufParser(GgufFile& file) : file_(file), bytes_(file.bytes_) {}

    void parse() {
        read_header();
        read_metadata();
        read_alignment();
        read_tensor_infos();
        place_tensor_data();
    }

private:
    struct TensorInfoExtent {
        std::uint64_t info_offset;  // where the tensor's name starts, for messages
        std::uint64_t n_bytes;
    };

    [[noreturn]] void fail(std::uint64_t at, const std::string& what) const {
        std::string message = file_.source_ + ": ";
        if (!context_.empty())
            message += context_ + ": ";
        throw GgufError(message + what + " (at byte " + std::to_string(at) + ")");
    }

    std::uint64_t remaining() const { return bytes_.size() - position_; }

    // Claims n bytes at the current position and returns where they start.
    const std::uint8_t* take(std::uint64_t n, const char* what) {
        if (n > remaining())
            fail(position_, std::string("file ends inside the ") + what + ": needs " +
                                std::to_string(n) + " bytes, " + std::to_string(remaining()) +
                                " left");
        const std::uint8_t* at = bytes_.data() + position_;
        position_ += n;
        return at;
    }

    template <class T>
    T read(const char* what) {
        return load<T>(take(sizeof(T), what));
    }

    std::string_view read_string(const char* what) {
        const std::uint64_t at = position_;
        const auto length = read<std::uint64_t>(what);
        if (length > remaining())
            fail(at, std::string(what) + " length " + std::to_string(length) + " exceeds the " +
                         std::to_string(remaining()) + " bytes left in the file");
        return {reinterpret_cast<const char*>(take(length, what)), length};
    }

    GgufValueType read_value_type(const char* what) {
        const std::uint64_t at = position_;
        const auto id = read<std::uint32_t>(what);
        if (id > static_cast<std::uint32_t>(GgufValueType::F64))
            fail(at, std::string(what) + " " + std::to_string(id) + " is not a GGUF value type");
        return static_cast<GgufValueType>(id);
    }

    void read_header() {
        if (bytes_.size() < gguf_magic.size() ||
            !std::equal(gguf_magic.begin(), gguf_magic.end(), bytes_.begin()))
            fail(0, "not a GGUF file (no \"GGUF\" magic)");
        position_ = gguf_magic.size();
        const std::uint64_t version_at = position_;
        const auto version = read<std::uint32_t>("version");
        if (__builtin_bswap32(version) == 2 || __builtin_bswap32(version) == 3)
            fail(version_at, "big-endian GGUF files are not supported");
        if (version != 2 && version != 3)
            fail(version_at, "GGUF version " + std::to_string(version) +
                                 " is not supported (Folio reads versions 2 and 3)");
        file_.version_ = version;

        const std::uint64_t tensors_at = position_;
        n_tensors_ = read<std::uint64_t>("tensor count");
        const std::uint64_t kv_at = position_;
        n_kv_ = read<std::uint64_t>("metadata count");
        if (n_kv_ > remaining() / min_kv_bytes)
            fail(kv_at, "metadata count " + std::to_string(n_kv_) + " is more than the " +
                            std::to_string(remaining()) + " bytes left could hold");
        if (n_tensors_ > (remaining() - n_kv_ * min_kv_bytes) / min_tensor_info_bytes)
            fail(tensors_at, "tensor count " + std::to_string(n_tensors_) + " is more than the " +
                                 std::to_string(remaining()) + " bytes left could hold");
    }

    void read_metadata() {
        file_.metadata_.reserve(std::min(n_kv_, max_reserve));
        for (std::uint64_t i = 0; i < n_kv_; ++i) {
            const std::uint64_t at = position_;
            const std::string_view key = read_string("metadata key");
            if (!file_.metadata_index_.emplace(key, file_.metadata_.size()).second)
                fail(at, "duplicate metadata key " + std::string(key));
            context_ = "metadata key " + std::string(key);
            const GgufValueType type = read_value_type("value type");
            file_.metadata_.push_back({key, read_value(type, 0), at});
            context_.clear();
        }
    }

    GgufValue read_value(GgufValueType type, int depth) {
        if (type == GgufValueType::String)
            return {type, read_string("string value")};
        if (type != GgufValueType::Array)
            return decode_fixed(type, take(fixed_value_size(type), "value"));

        const std::uint64_t at = position_;
        if (depth >= max_array_depth)
            fail(at, "arrays nested more than " + std::to_string(max_array_depth) + " deep");
        GgufArray array;
        array.element_type = read_value_type("array element type");
        array.size = read<std::uint64_t>("array length");
        if (array.size > remaining() / min_encoded_size(array.element_type))
            fail(at, "array of " + std::to_string(array.size) + " " +
                         std::string(gguf_value_type_name(array.element_type)) +
                         " is longer than the " + std::to_string(remaining()) +
                         " bytes left could hold");
        if (array.element_type == GgufValueType::String) {
            array.strings.reserve(std::min(array.size, max_reserve));
            for (std::uint64_t i = 0; i < array.size; ++i)
                array.strings.push_back(read_string("array string"));
        } else if (array.element_type == GgufValueType::Array) {
            array.arrays.reserve(std::min(array.size, max_reserve));
            for (std::uint64_t i = 0; i < array.size; ++i)
                array.arrays.push_back(read_value(GgufValueType::Array, depth + 1));
        } else {
            const std::uint64_t n_bytes = array.size * fixed_value_size(array.element_type);
            array.packed = {take(n_bytes, "array"), n_bytes};
        }
        return {type, std::move(array)};
    }

    void read_alignment() {
        const auto found = file_.metadata_index_.find("general.alignment");
        if (found == file_.metadata_index_.end())
            return;
        const GgufKeyValue& entry = file_.metadata_[found->second];
        if (entry.value.type != GgufValueType::U32)
            fail(entry.file_offset,
                 "general.alignment is a " + describe_type(entry.value) + ", expected u32");
        const auto alignment = std::get<std::uint64_t>(entry.value.data);
        if (!std::has_single_bit(alignment))
            fail(entry.file_offset,
                 "general.alignment " + std::to_string(alignment) + " is not a power of two");
        file_.alignment_ = static_cast<std::uint32_t>(alignment);
    }

    void read_tensor_infos() {
        file_.tensors_.reserve(std::min(n_tensors_, max_reserve));
        extents_.reserve(std::min(n_tensors_, max_reserve));
        for (std::uint64_t i = 0; i < n_tensors_; ++i) {
            const std::uint64_t info_at = position_;
            GgufTensor tensor;
            tensor.name = read_string("tensor name");
            if (!file_.tensor_index_.emplace(tensor.name, file_.tensors_.size()).second)
                fail(info_at, "duplicate tensor name " + std::string(tensor.name));
            context_ = "tensor " + std::string(tensor.name);

            const std::uint64_t dims_at = position_;
            tensor.n_dims = read<std::uint32_t>("dimension count");
            if (tensor.n_dims == 0 || tensor.n_dims > max_dims)
                fail(dims_at, "has " + std::to_string(tensor.n_dims) +
                                  " dimensions; Folio reads 1 to 4");
            const std::uint64_t ne_at = position_;
            for (std::uint32_t d = 0; d < tensor.n_dims; ++d) {
                const std::uint64_t dim_at = position_;
                const auto extent = read<std::uint64_t>("shape");
                const auto dimension = [d] { return "ne[" + std::to_string(d) + "]"; };
                if (extent > static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max()))
                    fail(dim_at, dimension() + " = " +
                                     std::to_string(static_cast<std::int64_t>(extent)) +
                                     " is negative");
                if (extent == 0)
                    fail(dim_at, dimension() + " is 0; every dimension must be at least 1");
                tensor.ne[d] = static_cast<std::int64_t>(extent);
            }

            const std::uint64_t type_at = position_;
            const auto type_id = read<std::uint32_t>("ggml type");
            const auto layout = ggml_type_layout(type_id);
            if (!layout) {
                const std::string_view retired_name = ggml_type_name(type_id);
                if (retired_name.empty())
                    fail(type_at, "unknown ggml type id " + std::to_string(type_id));
                fail(type_at, "has type " + std::string(retired_name) +
                                  ", which ggml no longer defines; convert the model again");
            }
            tensor.type = static_cast<GgmlType>(type_id);
            tensor.offset = read<std::uint64_t>("data offset");

            std::int64_t n_elements = 1;
            for (const std::int64_t extent : tensor.ne)
                if (__builtin_mul_overflow(n_elements, extent, &n_elements))
                    fail(ne_at, "shape " + shape_text({tensor.ne.data(), tensor.n_dims}) +
                                    " has more elements than an int64 counts");
            if (tensor.ne[0] % layout->block_size != 0)
                fail(ne_at, "ne[0] = " + std::to_string(tensor.ne[0]) +
                                " is not a multiple of the " + std::string(layout->name) +
                                " block size " + std::to_string(layout->block_size));
            const auto n_bytes = tensor_bytes(*layout, tensor.ne);
            if (!n_bytes)
                fail(ne_at, "shape " + shape_text({tensor.ne.data(), tensor.n_dims}) + " of " +
                                std::string(layout->name) + " overflows a 64-bit byte size");
            tensor.row_bytes = static_cast<std::uint64_t>(tensor.ne[0]) / layout->block_size *
                               layout->type_size;
            file_.tensors_.push_back(tensor);
            extents_.push_back({info_at, *n_bytes});
            context_.clear();
        }
        file_.data_offset_ = align_up(position_, file_.alignment_);
    }

    void place_tensor_data() {
        const std::uint64_t alignment = file_.alignment_;
        const std::uint64_t data_start = file_.data_offset_;
        for (std::size_t i = 0; i < file_.tensors_.size(); ++i) {
            GgufTensor& tensor = file_.tensors_[i];
            context_ = "tensor " + std::string(tensor.name);
            const std::uint64_t info_at = extents_[i].info_offset;
            if (tensor.offset % alignment != 0)
                fail(info_at, "data offset " + std::to_string(tensor.offset) +
                                  " is not a multiple of the alignment " +
                                  std::to_string(alignment));
            const std::uint64_t n_bytes = extents_[i].n_bytes;
            std::uint64_t begin = 0;
            std::uint64_t end = 0;
            if (__builtin_add_overflow(data_start, tensor.offset, &begin) ||
                __builtin_add_overflow(begin, n_bytes, &end) || end > bytes_.size())
                fail(info_at, "data of " + std::to_string(n_bytes) + " bytes at offset " +
                                  std::to_string(tensor.offset) +
                                  " in the data section runs past the end of the file (" +
                                  std::to_string(bytes_.size()) + " bytes)");
            tensor.data = bytes_.subspan(begin, n_bytes);
        }

        std::vector<std::size_t> by_offset(file_.tensors_.size());
        std::iota(by_offset.begin(), by_offset.end(), std::size_t{0});
        std::stable_sort(by_offset.begin(), by_offset.end(), [this](std::size_t a, std::size_t b) {
            return file_.tensors_[a].offset < file_.tensors_[b].offset;
        });
        for (std::size_t k = 1; k < by_offset.size(); ++k) {
            const GgufTensor& previous = file_.tensors_[by_offset[k - 1]];
            const GgufTensor& current = file_.tensors_[by_offset[k]];
            // Both ranges were checked to end inside the file, so this cannot overflow.
            if (previous.offset + previous.n_bytes() > current.offset) {
                context_ = "tensor " + std::string(current.name);
                fail(extents_[by_offset[k]].info_offset,
                     "data overlaps tensor " + std::string(previous.name));
            }
        }
        context_.clear();
    }

    GgufFile& file_;
    std::span<const std::uint8_t> bytes_;
    std::uint64_t position_ = 0;
    std::uint64_t n_tensors_ = 0;
    std::uint64_t n_kv_ = 0;
    std::string context_;  // "metadata key K" or "tensor T" while reading one
    std::vector<TensorInfoExtent> extents_;
};

void GgufFile::release_pages(std::span<const std::uint8_t> range) const {
    if (mapping_ != nullptr)
        mapping_->release(range);
}

GgufFile GgufFile::open(const std::filesystem::path& path) {
    auto mapping = std::make_shared<const MappedFile>(path);
    GgufFile file;
    file.bytes_ = mapping->bytes();
    file.mapping_ = mapping.get();
    file.bytes_owner_ = std::move(mapping);
    file.source_ = path.string();
    GgufParser(file).parse();
    return file;
}

GgufFile GgufFile::parse(std::vector<std::uint8_t> bytes, std::string source) {
    auto owned = std::make_shared<const std::vector<std::uint8_t>>(std::move(bytes));
    GgufFile file;
    file.bytes_ = *owned;
    file.bytes_owner_ = std::move(owned);
    file.source_ = std::move(source);
    GgufParser(file).parse();
    return file;
}

namespace {

[[noreturn]] void throw_wrong_type(const std::string& source, std::string_view key,
                                   const GgufValue& value, std::string_view expected) {
    throw GgufError(source + ": metadata key " + std::string(key) + " is a " +
                    describe_type(value) + ", expected " + std::string(expected));
}

template <class Number>
[[noreturn]] void throw_out_of_range(const std::string& source, std::string_view key,
                                     Number number, std::string_view expected) {
    throw GgufError(source + ": metadata key " + std::string(key) + " = " +
                    std::to_string(number) + " does not fit in " + std::string(expected));
}

template <class Int>
Int integer_value(const std::string& source, std::string_view key, const GgufValue& value,
                  std::string_view expected) {
    if (const auto* unsigned_value = std::get_if<std::uint64_t>(&value.data)) {
        if (!std::in_range<Int>(*unsigned_value))
            throw_out_of_range(source, key, *unsigned_value, expected);
        return static_cast<Int>(*unsigned_value);
    }
    if (const auto* signed_value = std::get_if<std::int64_t>(&value.data)) {
        if (!std::in_range<Int>(*signed_value))
            throw_out_of_range(source, key, *signed_value, expected);
        return static_cast<Int>(*signed_value);
    }
    throw_wrong_type(source, key, value, expected);
}

float float_value(const std::string& source, std::string_view key, const GgufValue& value) {
    const auto* number = std::get_if<double>(&value.data);
    if (!number)
        throw_wrong_type(source, key, value, "f32");
    if (std::isfinite(*number) && std::abs(*number) > std::numeric_limits<float>::max())
        throw_out_of_range(source, key, *number, "f32");
    return static_cast<float>(*number);
}

std::string_view string_value(const std::string& source, std::string_view key,
                              const GgufValue& value) {
    const auto* text = std::get_if<std::string_view>(&value.data);
    if (!text)
        throw_wrong_type(source, key, value, "string");
    return *text;
}

bool bool_value(const std::string& source, std::string_view key, const GgufValue& value) {
    const auto* flag = std::get_if<bool>(&value.data);
    if (!flag)
        throw_wrong_type(source, key, value, "bool");
    return *flag;
}

std::span<const std::string_view> string_array_value(const std::string& source,
                                                     std::string_view key,
                                                     const GgufValue& value) {
    const auto* array = std::get_if<GgufArray>(&value.data);
    if (!array || array->element_type != GgufValueType::String)
        throw_wrong_type(source, key, value, "array of string");
    return array->strings;
}

template <class Stored>
void append_integers(const GgufArray& array, std::vector<std::int64_t>& out,
                     const std::string& source, std::string_view key) {
    for (std::uint64_t i = 0; i < array.size; ++i) {
        const auto element = load<Stored>(array.packed.data() + i * sizeof(Stored));
        if (!std::in_range<std::int64_t>(element))
            throw_out_of_range(source, std::string(key) + "[" + std::to_string(i) + "]",
                               element, "i64");
        out.push_back(static_cast<std::int64_t>(element));
    }
}

std::vector<std::int64_t> int_array_value(const std::string& source, std::string_view key,
                                          const GgufValue& value) {
    const auto* array = std::get_if<GgufArray>(&value.data);
    if (!array || !is_integer_type(array->element_type))
        throw_wrong_type(source, key, value, "array of integers");
    std::vector<std::int64_t> integers;
    integers.reserve(array->size);
    switch (array->element_type) {
    case GgufValueType::U8: append_integers<std::uint8_t>(*array, integers, source, key); break;
    case GgufValueType::I8: append_integers<std::int8_t>(*array, integers, source, key); break;
    case GgufValueType::U16: append_integers<std::uint16_t>(*array, integers, source, key); break;
    case GgufValueType::I16: append_integers<std::int16_t>(*array, integers, source, key); break;
    case GgufValueType::U32: append_integers<std::uint32_t>(*array, integers, source, key); break;
    case GgufValueType::I32: append_integers<std::int32_t>(*array, integers, source, key); break;
    case GgufValueType::U64: append_integers<std::uint64_t>(*array, integers, source, key); break;
    case GgufValueType::I64: append_integers<std::int64_t>(*array, integers, source, key); break;
    default: break;
    }
    return integers;
}

std::vector<float> float_array_value(const std::string& source, std::string_view key,
                                     const GgufValue& value) {
    const auto* array = std::get_if<GgufArray>(&value.data);
    if (!array ||
        (array->element_type != GgufValueType::F32 && array->element_type != GgufValueType::F64))
        throw_wrong_type(source, key, value, "array of f32");
    std::vector<float> floats(array->size);
    if (array->element_type == GgufValueType::F32) {
        std::copy(array->packed.begin(), array->packed.end(),
                  reinterpret_cast<std::uint8_t*>(floats.data()));
        return floats;
    }
    for (std::uint64_t i = 0; i < array->size; ++i) {
        const double element = load<double>(array->packed.data() + i * sizeof(double));
        if (std::isfinite(element) && std::abs(element) > std::numeric_limits<float>::max())
            throw_out_of_range(source, std::string(key) + "[" + std::to_string(i) + "]",
                               element, "f32");
        floats[i] = static_cast<float>(element);
    }
    return floats;
}

}  // namespace

const GgufValue* GgufFile::find(std::string_view key) const {
    const auto found = metadata_index_.find(key);
    return found == metadata_index_.end() ? nullptr : &metadata_[found->second].value;
}

const GgufValue& GgufFile::require(std::string_view key, std::string_view expected) const {
    if (const GgufValue* value = find(key))
        return *value;
    throw GgufError(source_ + ": missing metadata key " + std::string(key) + " (" +
                    std::string(expected) + ")");
}

std::string_view GgufFile::get_string(std::string_view key) const {
    return string_value(source_, key, require(key, "string"));
}
std::string_view GgufFile::get_string(std::string_view key, std::string_view fallback) const {
    return find_string(key).value_or(fallback);
}
std::optional<std::string_view> GgufFile::find_string(std::string_view key) const {
    const GgufValue* value = find(key);
    return value ? std::optional(string_value(source_, key, *value)) : std::nullopt;
}

std::uint32_t GgufFile::get_u32(std::string_view key) const {
    return integer_value<std::uint32_t>(source_, key, require(key, "u32"), "u32");
}
std::uint32_t GgufFile::get_u32(std::string_view key, std::uint32_t fallback) const {
    return find_u32(key).value_or(fallback);
}
std::optional<std::uint32_t> GgufFile::find_u32(std::string_view key) const {
    const GgufValue* value = find(key);
    return value ? std::optional(integer_value<std::uint32_t>(source_, key, *value, "u32"))
                 : std::nullopt;
}

std::int32_t GgufFile::get_i32(std::string_view key) const {
    return integer_value<std::int32_t>(source_, key, require(key, "i32"), "i32");
}
std::int32_t GgufFile::get_i32(std::string_view key, std::int32_t fallback) const {
    return find_i32(key).value_or(fallback);
}
std::optional<std::int32_t> GgufFile::find_i32(std::string_view key) const {
    const GgufValue* value = find(key);
    return value ? std::optional(integer_value<std::int32_t>(source_, key, *value, "i32"))
                 : std::nullopt;
}

std::uint64_t GgufFile::get_u64(std::string_view key) const {
    return integer_value<std::uint64_t>(source_, key, require(key, "u64"), "u64");
}
std::uint64_t GgufFile::get_u64(std::string_view key, std::uint64_t fallback) const {
    return find_u64(key).value_or(fallback);
}
std::optional<std::uint64_t> GgufFile::find_u64(std::string_view key) const {
    const GgufValue* value = find(key);
    return value ? std::optional(integer_value<std::uint64_t>(source_, key, *value, "u64"))
                 : std::nullopt;
}

std::int64_t GgufFile::get_i64(std::string_view key) const {
    return integer_value<std::int64_t>(source_, key, require(key, "i64"), "i64");
}
std::int64_t GgufFile::get_i64(std::string_view key, std::int64_t fallback) const {
    return find_i64(key).value_or(fallback);
}
std::optional<std::int64_t> GgufFile::find_i64(std::string_view key) const {
    const GgufValue* value = find(key);
    return value ? std::optional(integer_value<std::int64_t>(source_, key, *value, "i64"))
                 : std::nullopt;
}

float GgufFile::get_f32(std::string_view key) const {
    return float_value(source_, key, require(key, "f32"));
}
float GgufFile::get_f32(std::string_view key, float fallback) const {
    return find_f32(key).value_or(fallback);
}
std::optional<float> GgufFile::find_f32(std::string_view key) const {
    const GgufValue* value = find(key);
    return value ? std::optional(float_value(source_, key, *value)) : std::nullopt;
}

bool GgufFile::get_bool(std::string_view key) const {
    return bool_value(source_, key, require(key, "bool"));
}
bool GgufFile::get_bool(std::string_view key, bool fallback) const {
    return find_bool(key).value_or(fallback);
}
std::optional<bool> GgufFile::find_bool(std::string_view key) const {
    const GgufValue* value = find(key);
    return value ? std::optional(bool_value(source_, key, *value)) : std::nullopt;
}

std::span<const std::string_view> GgufFile::get_string_array(std::string_view key) const {
    return string_array_value(source_, key, require(key, "array of string"));
}
std::optional<std::span<const std::string_view>> GgufFile::find_string_array(
    std::string_view key) const {
    const GgufValue* value = find(key);
    return value ? std::optional(string_array_value(source_, key, *value)) : std::nullopt;
}

std::vector<std::int64_t> GgufFile::get_int_array(std::string_view key) const {
    return int_array_value(source_, key, require(key, "array of integers"));
}
std::optional<std::vector<std::int64_t>> GgufFile::find_int_array(std::string_view key) const {
    const GgufValue* value = find(key);
    return value ? std::optional(int_array_value(source_, key, *value)) : std::nullopt;
}

std::vector<float> GgufFile::get_float_array(std::string_view key) const {
    return float_array_value(source_, key, require(key, "array of f32"));
}
std::optional<std::vector<float>> GgufFile::find_float_array(std::string_view key) const {
    const GgufValue* value = find(key);
    return value ? std::optional(float_array_value(source_, key, *value)) : std::nullopt;
}

const GgufTensor* GgufFile::find_tensor(std::string_view name) const {
    const auto found = tensor_index_.find(name);
    return found == tensor_index_.end() ? nullptr : &tensors_[found->second];
}

const GgufTensor& GgufFile::tensor(std::string_view name) const {
    if (const GgufTensor* found = find_tensor(name))
        return *found;
    throw GgufError(source_ + ": no tensor named " + std::string(name));
}

namespace {

void append_bytes(std::vector<std::uint8_t>& out, const void* data, std::size_t size) {
    const auto* first = static_cast<const std::uint8_t*>(data);
    out.insert(out.end(), first, first + size);
}

template <class T>
void append_le(std::vector<std::uint8_t>& out, T value) {
    append_bytes(out, &value, sizeof value);
}

void append_string(std::vector<std::uint8_t>& out, std::string_view text) {
    append_le<std::uint64_t>(out, text.size());
    append_bytes(out, text.data(), text.size());
}

template <class T>
void append_integer(std::vector<std::uint8_t>& out, const GgufValue& value) {
    if (const auto* unsigned_value = std::get_if<std::uint64_t>(&value.data);
        unsigned_value && std::in_range<T>(*unsigned_value))
        return append_le(out, static_cast<T>(*unsigned_value));
    if (const auto* signed_value = std::get_if<std::int64_t>(&value.data);
        signed_value && std::in_range<T>(*signed_value))
        return append_le(out, static_cast<T>(*signed_value));
    throw GgufError("GgufWriter: value does not hold a " +
                    std::string(gguf_value_type_name(value.type)));
}

void encode_array_body(std::vector<std::uint8_t>& out, const GgufArray& array);

// Appends the encoding of `value` without its type id.
void encode_value(std::vector<std::uint8_t>& out, const GgufValue& value) {
    const auto mismatch = [&value]() {
        return GgufError("GgufWriter: value does not hold a " +
                         std::string(gguf_value_type_name(value.type)));
    };
    switch (value.type) {
    case GgufValueType::U8: return append_integer<std::uint8_t>(out, value);
    case GgufValueType::I8: return append_integer<std::int8_t>(out, value);
    case GgufValueType::U16: return append_integer<std::uint16_t>(out, value);
    case GgufValueType::I16: return append_integer<std::int16_t>(out, value);
    case GgufValueType::U32: return append_integer<std::uint32_t>(out, value);
    case GgufValueType::I32: return append_integer<std::int32_t>(out, value);
    case GgufValueType::U64: return append_integer<std::uint64_t>(out, value);
    case GgufValueType::I64: return append_integer<std::int64_t>(out, value);
    case GgufValueType::F32:
    case GgufValueType::F64: {
        const auto* number = std::get_if<double>(&value.data);
        if (!number)
            throw mismatch();
        if (value.type == GgufValueType::F32)
            return append_le(out, static_cast<float>(*number));
        return append_le(out, *number);
    }
    case GgufValueType::Bool: {
        const auto* flag = std::get_if<bool>(&value.data);
        if (!flag)
            throw mismatch();
        return append_le<std::uint8_t>(out, *flag ? 1 : 0);
    }
    case GgufValueType::String: {
        const auto* text = std::get_if<std::string_view>(&value.data);
        if (!text)
            throw mismatch();
        return append_string(out, *text);
    }
    case GgufValueType::Array: {
        const auto* array = std::get_if<GgufArray>(&value.data);
        if (!array)
            throw mismatch();
        return encode_array_body(out, *array);
    }
    }
    throw GgufError("GgufWriter: unknown value type " +
                    std::to_string(static_cast<std::uint32_t>(value.type)));
}

void encode_array_body(std::vector<std::uint8_t>& out, const GgufArray& array) {
    append_le(out, static_cast<std::uint32_t>(array.element_type));
    append_le<std::uint64_t>(out, array.size);
    const auto size_mismatch = [&array](std::size_t held) {
        return GgufError("GgufWriter: array of " + std::to_string(array.size) + " " +
                         std::string(gguf_value_type_name(array.element_type)) + " holds " +
                         std::to_string(held));
    };
    switch (array.element_type) {
    case GgufValueType::String:
        if (array.strings.size() != array.size)
            throw size_mismatch(array.strings.size());
        for (const std::string_view text : array.strings)
            append_string(out, text);
        return;
    case GgufValueType::Array:
        if (array.arrays.size() != array.size)
            throw size_mismatch(array.arrays.size());
        for (const GgufValue& element : array.arrays) {
            if (element.type != GgufValueType::Array)
                throw GgufError("GgufWriter: array of array holds a " +
                                std::string(gguf_value_type_name(element.type)));
            encode_value(out, element);
        }
        return;
    default: {
        const std::uint64_t element_size = fixed_value_size(array.element_type);
        if (element_size == 0 || array.packed.size() != array.size * element_size)
            throw size_mismatch(element_size ? array.packed.size() / element_size : 0);
        append_bytes(out, array.packed.data(), array.packed.size());
    }
    }
}

}  // namespace

GgufWriter::GgufWriter(std::uint32_t version) : version_(version) {
    if (version != 2 && version != 3)
        throw GgufError("GgufWriter: cannot write GGUF version " + std::to_string(version) +
                        " (2 or 3)");
}

void GgufWriter::add_encoded(std::string key, GgufValueType type,
                             std::span<const std::uint8_t> encoded) {
    if (keys_.contains(key))
        throw GgufError("GgufWriter: duplicate metadata key " + key);
    if (key == "general.alignment") {
        if (type != GgufValueType::U32)
            throw GgufError("GgufWriter: general.alignment must be a u32");
        const auto alignment = load<std::uint32_t>(encoded.data());
        if (!std::has_single_bit(alignment))
            throw GgufError("GgufWriter: general.alignment " + std::to_string(alignment) +
                            " is not a power of two");
        alignment_ = alignment;
    }
    append_string(metadata_bytes_, key);
    append_le(metadata_bytes_, static_cast<std::uint32_t>(type));
    metadata_bytes_.insert(metadata_bytes_.end(), encoded.begin(), encoded.end());
    keys_.insert(std::move(key));
    ++n_kv_;
}

void GgufWriter::add_value(std::string key, const GgufValue& value) {
    std::vector<std::uint8_t> encoded;
    encode_value(encoded, value);
    add_encoded(std::move(key), value.type, encoded);
}

void GgufWriter::add_u8(std::string key, std::uint8_t value) {
    add_value(std::move(key), {GgufValueType::U8, std::uint64_t{value}});
}
void GgufWriter::add_i8(std::string key, std::int8_t value) {
    add_value(std::move(key), {GgufValueType::I8, std::int64_t{value}});
}
void GgufWriter::add_u16(std::string key, std::uint16_t value) {
    add_value(std::move(key), {GgufValueType::U16, std::uint64_t{value}});
}
void GgufWriter::add_i16(std::string key, std::int16_t value) {
    add_value(std::move(key), {GgufValueType::I16, std::int64_t{value}});
}
void GgufWriter::add_u32(std::string key, std::uint32_t value) {
    add_value(std::move(key), {GgufValueType::U32, std::uint64_t{value}});
}
void GgufWriter::add_i32(std::string key, std::int32_t value) {
    add_value(std::move(key), {GgufValueType::I32, std::int64_t{value}});
}
void GgufWriter::add_u64(std::string key, std::uint64_t value) {
    add_value(std::move(key), {GgufValueType::U64, value});
}
void GgufWriter::add_i64(std::string key, std::int64_t value) {
    add_value(std::move(key), {GgufValueType::I64, value});
}
void GgufWriter::add_f32(std::string key, float value) {
    add_value(std::move(key), {GgufValueType::F32, double{value}});
}
void GgufWriter::add_f64(std::string key, double value) {
    add_value(std::move(key), {GgufValueType::F64, value});
}
void GgufWriter::add_bool(std::string key, bool value) {
    add_value(std::move(key), {GgufValueType::Bool, value});
}
void GgufWriter::add_string(std::string key, std::string_view value) {
    add_value(std::move(key), {GgufValueType::String, value});
}

void GgufWriter::add_packed_array(std::string key, GgufValueType element_type,
                                  const void* elements, std::size_t count,
                                  std::size_t element_size) {
    GgufArray array;
    array.element_type = element_type;
    array.size = count;
    array.packed = {static_cast<const std::uint8_t*>(elements), count * element_size};
    add_value(std::move(key), {GgufValueType::Array, std::move(array)});
}

void GgufWriter::add_array(std::string key, std::span<const std::uint8_t> values) {
    add_packed_array(std::move(key), GgufValueType::U8, values.data(), values.size(), 1);
}
void GgufWriter::add_array(std::string key, std::span<const std::int8_t> values) {
    add_packed_array(std::move(key), GgufValueType::I8, values.data(), values.size(), 1);
}
void GgufWriter::add_array(std::string key, std::span<const std::uint16_t> values) {
    add_packed_array(std::move(key), GgufValueType::U16, values.data(), values.size(), 2);
}
void GgufWriter::add_array(std::string key, std::span<const std::int16_t> values) {
    add_packed_array(std::move(key), GgufValueType::I16, values.data(), values.size(), 2);
}
void GgufWriter::add_array(std::string key, std::span<const std::uint32_t> values) {
    add_packed_array(std::move(key), GgufValueType::U32, values.data(), values.size(), 4);
}
void GgufWriter::add_array(std::string key, std::span<const std::int32_t> values) {
    add_packed_array(std::move(key), GgufValueType::I32, values.data(), values.size(), 4);
}
void GgufWriter::add_array(std::string key, std::span<const std::uint64_t> values) {
    add_packed_array(std::move(key), GgufValueType::U64, values.data(), values.size(), 8);
}
void GgufWriter::add_array(std::string key, std::span<const std::int64_t> values) {
    add_packed_array(std::move(key), GgufValueType::I64, values.data(), values.size(), 8);
}
void GgufWriter::add_array(std::string key, std::span<const float> values) {
    add_packed_array(std::move(key), GgufValueType::F32, values.data(), values.size(), 4);
}
void GgufWriter::add_array(std::string key, std::span<const double> values) {
    add_packed_array(std::move(key), GgufValueType::F64, values.data(), values.size(), 8);
}

void GgufWriter::add_array(std::string key, const std::vector<bool>& values) {
    const std::vector<std::uint8_t> bytes(values.begin(), values.end());
    add_packed_array(std::move(key), GgufValueType::Bool, bytes.data(), bytes.size(), 1);
}

void GgufWriter::add_string_array(std::string key, std::span<const std::string> values) {
    const std::vector<std::string_view> views(values.begin(), values.end());
    add_string_array(std::move(key), views);
}

void GgufWriter::add_string_array(std::string key, std::span<const std::string_view> values) {
    GgufArray array;
    array.element_type = GgufValueType::String;
    array.size = values.size();
    array.strings.assign(values.begin(), values.end());
    add_value(std::move(key), {GgufValueType::Array, std::move(array)});
}

std::uint64_t GgufWriter::check_tensor(const std::string& name, GgmlType type,
                                       std::span<const std::int64_t> ne) const {
    const std::string context = "GgufWriter: tensor " + name + ": ";
    const auto layout = ggml_type_layout(static_cast<std::uint32_t>(type));
    if (!layout)
        throw GgufError(context + "type id " + std::to_string(static_cast<std::uint32_t>(type)) +
                        " has no known layout");
    if (ne.empty() || ne.size() > max_dims)
        throw GgufError(context + std::to_string(ne.size()) + " dimensions (1 to 4)");
    if (std::any_of(ne.begin(), ne.end(), [](std::int64_t extent) { return extent < 1; }))
        throw GgufError(context + "shape " + shape_text(ne) + " has an extent below 1");
    if (ne[0] % layout->block_size != 0)
        throw GgufError(context + "ne[0] = " + std::to_string(ne[0]) +
                        " is not a multiple of the " + std::string(layout->name) +
                        " block size " + std::to_string(layout->block_size));
    const auto n_bytes = tensor_bytes(*layout, ne);
    if (!n_bytes)
        throw GgufError(context + "shape " + shape_text(ne) + " of " + std::string(layout->name) +
                        " needs more than 2^64 bytes");
    if (tensor_names_.contains(name))
        throw GgufError("GgufWriter: duplicate tensor name " + name);
    return *n_bytes;
}

void GgufWriter::add_tensor(std::string name, GgmlType type, std::span<const std::int64_t> ne,
                            std::vector<std::uint8_t> data) {
    const std::uint64_t n_bytes = check_tensor(name, type, ne);
    if (n_bytes != data.size())
        throw GgufError("GgufWriter: tensor " + name + ": data is " + std::to_string(data.size()) +
                        " bytes, shape " + shape_text(ne) + " of " + std::string(ggml_type_name(type)) +
                        " needs " + std::to_string(n_bytes));
    tensor_names_.insert(name);
    tensors_.push_back({std::move(name), type, {ne.begin(), ne.end()}, n_bytes, std::move(data), {}});
}

void GgufWriter::add_filled_tensor(std::string name, GgmlType type, std::span<const std::int64_t> ne,
                                   TensorFill fill) {
    const std::uint64_t n_bytes = check_tensor(name, type, ne);
    if (!fill)
        throw GgufError("GgufWriter: tensor " + name + " has no fill function");
    tensor_names_.insert(name);
    tensors_.push_back({std::move(name), type, {ne.begin(), ne.end()}, n_bytes, {}, std::move(fill)});
}

void GgufWriter::PendingTensor::use_bytes(const std::function<void(std::span<const std::uint8_t>)>& use) const {
    if (!fill) {
        use(data);
        return;
    }
    std::vector<std::uint8_t> made(n_bytes);
    fill(made);
    use(made);
}

std::vector<std::uint8_t> GgufWriter::encode_header() const {
    std::vector<std::uint8_t> out;
    append_bytes(out, gguf_magic.data(), gguf_magic.size());
    append_le(out, version_);
    append_le<std::uint64_t>(out, tensors_.size());
    append_le<std::uint64_t>(out, n_kv_);
    out.insert(out.end(), metadata_bytes_.begin(), metadata_bytes_.end());
    std::uint64_t data_offset = 0;
    for (const PendingTensor& tensor : tensors_) {
        append_string(out, tensor.name);
        append_le(out, static_cast<std::uint32_t>(tensor.ne.size()));
        for (const std::int64_t extent : tensor.ne)
            append_le(out, static_cast<std::uint64_t>(extent));
        append_le(out, static_cast<std::uint32_t>(tensor.type));
        append_le(out, data_offset);
        data_offset = align_up(data_offset + tensor.n_bytes, alignment_);
    }
    // Without tensors there is no data section to align, and padding to a
    // large general.alignment would only make the file big.
    if (!tensors_.empty())
        out.resize(align_up(out.size(), alignment_), 0);
    return out;
}

std::vector<std::uint8_t> GgufWriter::to_bytes() const {
    std::vector<std::uint8_t> out = encode_header();
    for (const PendingTensor& tensor : tensors_) {
        tensor.use_bytes(
            [&](std::span<const std::uint8_t> bytes) { out.insert(out.end(), bytes.begin(), bytes.end()); });
        out.resize(align_up(out.size(), alignment_), 0);
    }
    return out;
}

std::uint64_t GgufWriter::file_size() const {
    std::uint64_t size = encode_header().size();
    for (const PendingTensor& tensor : tensors_)
        size = align_up(size + tensor.n_bytes, alignment_);
    return size;
}

void GgufWriter::write(const std::filesystem::path& path) const {
    std::ofstream out(path, std::ios::binary | std::ios::trunc);
    if (!out)
        throw std::system_error(errno, std::generic_category(), "cannot create " + path.string());
    auto remove_partial = [&] {
        out.close();
        std::error_code ignored;
        std::filesystem::remove(path, ignored);
    };
    try {
        const std::vector<std::uint8_t> header = encode_header();
        out.write(reinterpret_cast<const char*>(header.data()),
                  static_cast<std::streamsize>(header.size()));
        std::uint64_t written = header.size();
        const std::vector<char> zeros(alignment_, 0);
        for (const PendingTensor& tensor : tensors_) {
            tensor.use_bytes([&](std::span<const std::uint8_t> bytes) {
                out.write(reinterpret_cast<const char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
                written += bytes.size();
            });
            const std::uint64_t padding = align_up(written, alignment_) - written;
            out.write(zeros.data(), static_cast<std::streamsize>(padding));
            written += padding;
        }
    } catch (...) {
        // A tensor's fill failed: no half-written file is left behind.
        remove_partial();
        throw;
    }
    out.close();
    if (!out) {
        const int saved = errno;
        remove_partial();
        throw std::system_error(saved, std::generic_category(), "cannot write " + path.string());
    }
}

}  // namespace folio::engine
