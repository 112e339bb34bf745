// libFuzzer target for the GGUF reader (built with clang only):
//   engine_fuzz_gguf -max_len=4096 -timeout=5 NEW_CORPUS tests/data/gguf/fuzz_corpus
// Every input must either be rejected with GgufError or give a file whose
// values and tensor bytes can all be read and that GgufWriter copies into a
// file the reader accepts again with the same contents. Anything else (a
// crash, a sanitizer report, another exception, a failed round trip) is a bug.

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "engine/gguf.h"

using namespace folio::engine;

namespace {

std::uint64_t checksum(const GgufValue& value) {
    std::uint64_t sum = static_cast<std::uint64_t>(value.type);
    if (const auto* text = std::get_if<std::string_view>(&value.data)) {
        for (const char c : *text)
            sum = sum * 31 + static_cast<unsigned char>(c);
    } else if (const auto* array = std::get_if<GgufArray>(&value.data)) {
        for (std::uint64_t i = 0; i < array->size; ++i)
            sum = sum * 31 + checksum(array->element_type == GgufValueType::Array
                                          ? array->arrays[i]
                                          : array->element(i));
    } else if (const auto* number = std::get_if<std::uint64_t>(&value.data)) {
        sum += *number;
    } else if (const auto* integer = std::get_if<std::int64_t>(&value.data)) {
        sum += static_cast<std::uint64_t>(*integer);
    } else if (const auto* flag = std::get_if<bool>(&value.data)) {
        sum += *flag;
    } else if (const auto* real = std::get_if<double>(&value.data)) {
        // f32 values pass through double and back, which keeps every bit but
        // a NaN's payload.
        std::uint64_t bits = 0x7ff8000000000000;
        if (!std::isnan(*real))
            std::memcpy(&bits, real, sizeof bits);
        sum += bits;
    }
    return sum;
}

// Calls every getter on a key; a GgufError for a type mismatch is expected.
void read_with_every_getter(const GgufFile& file, std::string_view key) {
    const auto attempt = [](auto&& get) {
        try {
            get();
        } catch (const GgufError&) {
        }
    };
    attempt([&] { file.get_string(key); });
    attempt([&] { file.get_u32(key); });
    attempt([&] { file.get_i32(key); });
    attempt([&] { file.get_u64(key); });
    attempt([&] { file.get_i64(key); });
    attempt([&] { file.get_f32(key); });
    attempt([&] { file.get_bool(key); });
    attempt([&] { file.get_string_array(key); });
    attempt([&] { file.get_int_array(key); });
    attempt([&] { file.get_float_array(key); });
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    std::vector<std::uint8_t> bytes(data, data + size);
    std::optional<GgufFile> parsed;
    try {
        parsed.emplace(GgufFile::parse(std::move(bytes), "fuzz"));
    } catch (const GgufError&) {
        return 0;
    }
    const GgufFile& file = *parsed;

    std::uint64_t metadata_sum = 0;
    for (const GgufKeyValue& entry : file.metadata()) {
        metadata_sum += checksum(entry.value);
        read_with_every_getter(file, entry.key);
    }
    for (const GgufTensor& tensor : file.tensors()) {
        try {
            tensor.require_supported_type();
        } catch (const GgufError&) {
        }
    }

    GgufWriter writer(file.version());
    for (const GgufKeyValue& entry : file.metadata())
        writer.add_value(std::string(entry.key), entry.value);
    for (const GgufTensor& tensor : file.tensors())
        writer.add_tensor(std::string(tensor.name), tensor.type,
                          std::span(tensor.ne).first(tensor.n_dims),
                          {tensor.data.begin(), tensor.data.end()});
    const GgufFile copy = GgufFile::parse(writer.to_bytes(), "fuzz copy");

    std::uint64_t copy_metadata_sum = 0;
    for (const GgufKeyValue& entry : copy.metadata())
        copy_metadata_sum += checksum(entry.value);
    bool same = copy.metadata().size() == file.metadata().size() &&
                copy.tensors().size() == file.tensors().size() &&
                copy.alignment() == file.alignment() && copy_metadata_sum == metadata_sum;
    // Reads every tensor byte of both files, so bounds errors show under ASan.
    for (std::size_t i = 0; same && i < file.tensors().size(); ++i)
        same = std::ranges::equal(file.tensors()[i].data, copy.tensors()[i].data);
    if (!same)
        std::abort();
    return 0;
}
