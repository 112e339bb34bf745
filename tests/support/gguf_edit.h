#pragma once
// The engine suites test what the loaders refuse, and how the engine computes
// on other weight types, on copies of their GGUF files with a few changes;
// this makes the copies.

#include <algorithm>
#include <bit>
#include <cstdint>
#include <functional>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "engine/gguf.h"
#include "engine/quant.h"

namespace folio::test {

// A tensor as the copy will hold it; values in f32 whatever its type.
struct EditedTensor {
    std::string name;
    engine::GgmlType type = engine::GgmlType::F32;
    std::vector<std::int64_t> ne;  // as GgufTensor::ne, n_dims long
    std::vector<float> values;
};

struct GgufEdit {
    std::string drop_key;  // metadata left out
    std::function<void(engine::GgufWriter&)> add_metadata;
    // Changes a tensor in place, or returns false to leave it out.
    std::function<bool(EditedTensor&)> tensor;
};

inline EditedTensor decoded(const engine::GgufTensor& tensor) {
    EditedTensor out{std::string(tensor.name), tensor.type,
                     std::vector<std::int64_t>(tensor.ne.begin(), tensor.ne.begin() + tensor.n_dims),
                     std::vector<float>(static_cast<std::size_t>(tensor.n_elements()))};
    for (std::int64_t row = 0; row < tensor.n_elements() / tensor.ne[0]; ++row)
        engine::dequantize_row(tensor.type, tensor.data.data() + row * static_cast<std::int64_t>(tensor.row_bytes),
                               out.values.data() + row * tensor.ne[0], tensor.ne[0]);
    return out;
}

inline std::vector<std::uint8_t> encoded(const EditedTensor& tensor) {
    const std::int64_t row_length = tensor.ne[0];
    const std::size_t n_rows = tensor.values.size() / static_cast<std::size_t>(row_length);
    const std::size_t row_bytes = engine::quant_row_bytes(tensor.type, row_length);
    std::vector<std::uint8_t> bytes(row_bytes * n_rows);
    for (std::size_t row = 0; row < n_rows; ++row)
        engine::quantize_row(tensor.type, tensor.values.data() + row * static_cast<std::size_t>(row_length),
                             bytes.data() + row * row_bytes, row_length);
    return bytes;
}

// Bitwise, so that a NaN or a -0 left alone counts as unchanged.
inline bool same_tensor(const EditedTensor& a, const EditedTensor& b) {
    const auto bits = [](float x) { return std::bit_cast<std::uint32_t>(x); };
    return a.name == b.name && a.type == b.type && a.ne == b.ne &&
           std::ranges::equal(a.values, b.values, {}, bits, bits);
}

// A copy of file with edit made. Tensors the edit leaves alone keep their
// bytes: rounding them through f32 and back could move quantized weights,
// and the goldens hold the copies to the original's weights exactly.
inline engine::GgufFile edited(const engine::GgufFile& file, const GgufEdit& edit) {
    engine::GgufWriter writer;
    for (const engine::GgufKeyValue& kv : file.metadata())
        if (kv.key != edit.drop_key)
            writer.add_value(std::string(kv.key), kv.value);
    if (edit.add_metadata)
        edit.add_metadata(writer);
    for (const engine::GgufTensor& tensor : file.tensors()) {
        std::vector<std::uint8_t> bytes(tensor.data.begin(), tensor.data.end());
        if (!edit.tensor) {
            writer.add_tensor(std::string(tensor.name), tensor.type,
                              std::span<const std::int64_t>(tensor.ne.data(), tensor.n_dims), std::move(bytes));
            continue;
        }
        const EditedTensor original = decoded(tensor);
        EditedTensor changed = original;
        if (!edit.tensor(changed))
            continue;
        if (!same_tensor(changed, original))
            bytes = encoded(changed);
        writer.add_tensor(std::move(changed.name), changed.type, changed.ne, std::move(bytes));
    }
    return engine::GgufFile::parse(writer.to_bytes(), file.source() + " (edited)");
}

}  // namespace folio::test
