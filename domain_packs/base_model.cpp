#include "domain_packs/base_model.h"

#include <algorithm>
#include <array>
#include <cstring>
#include <variant>
#include <vector>

#include "domain_packs/sodium.h"
#include "engine/gguf.h"

namespace folio::packs {

namespace {

using engine::GgufArray;
using engine::GgufValue;
using engine::GgufValueType;

void hash_u64(Sha256& hash, std::uint64_t value) {
    std::array<unsigned char, 8> bytes{};
    for (std::size_t i = 0; i < bytes.size(); ++i) bytes[i] = static_cast<unsigned char>(value >> (8 * i));
    hash.update(bytes.data(), bytes.size());
}

void hash_string(Sha256& hash, std::string_view text) {
    hash_u64(hash, text.size());
    hash.update(text);
}

// Every value in a fixed, width-independent form: the stored type is hashed
// too, so a u32 and a u64 with one value still differ.
void hash_value(Sha256& hash, const GgufValue& value);

void hash_array(Sha256& hash, const GgufArray& array) {
    hash_u64(hash, static_cast<std::uint64_t>(array.element_type));
    hash_u64(hash, array.size);
    if (array.element_type == GgufValueType::String) {
        for (std::string_view text : array.strings) hash_string(hash, text);
    } else if (array.element_type == GgufValueType::Array) {
        for (const GgufValue& nested : array.arrays) hash_value(hash, nested);
    } else {
        hash.update(array.packed.data(), array.packed.size());
    }
}

void hash_value(Sha256& hash, const GgufValue& value) {
    hash_u64(hash, static_cast<std::uint64_t>(value.type));
    std::visit(
        [&](const auto& data) {
            using T = std::decay_t<decltype(data)>;
            if constexpr (std::is_same_v<T, std::string_view>) {
                hash_string(hash, data);
            } else if constexpr (std::is_same_v<T, GgufArray>) {
                hash_array(hash, data);
            } else if constexpr (std::is_same_v<T, double>) {
                std::uint64_t bits = 0;
                std::memcpy(&bits, &data, sizeof bits);
                hash_u64(hash, bits);
            } else {
                hash_u64(hash, static_cast<std::uint64_t>(data));
            }
        },
        value.data);
}

}  // namespace

BaseModel identify_base_model(const std::filesystem::path& gguf_file, bool with_weights) {
    try {
        const engine::GgufFile file = engine::GgufFile::open(gguf_file);
        BaseModel model;
        model.architecture = std::string(file.architecture());

        std::vector<const engine::GgufKeyValue*> tokenizer_entries;
        for (const engine::GgufKeyValue& entry : file.metadata())
            if (entry.key.starts_with("tokenizer.ggml.")) tokenizer_entries.push_back(&entry);
        if (tokenizer_entries.empty())
            throw PackError("base model", gguf_file.string() + " has no tokenizer (tokenizer.ggml.*)");
        std::sort(tokenizer_entries.begin(), tokenizer_entries.end(),
                  [](const auto* a, const auto* b) { return a->key < b->key; });
        Sha256 tokenizer_hash;
        for (const engine::GgufKeyValue* entry : tokenizer_entries) {
            hash_string(tokenizer_hash, entry->key);
            hash_value(tokenizer_hash, entry->value);
        }
        model.tokenizer_sha256 = tokenizer_hash.hex();

        if (with_weights) model.weights_sha256 = sha256_of_file(gguf_file, file.data_offset());
        return model;
    } catch (const engine::GgufError& e) {
        throw PackError("base model", e.what());
    } catch (const std::system_error& e) {
        throw PackError("base model", gguf_file.string() + ": " + e.what());
    }
}

bool base_model_fits(const BaseModel& wanted, const BaseModel& model) {
    if (wanted.architecture != model.architecture || wanted.tokenizer_sha256 != model.tokenizer_sha256) return false;
    return !wanted.weights_sha256 || wanted.weights_sha256 == model.weights_sha256;
}

}  // namespace folio::packs
