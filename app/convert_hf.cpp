#include "app/convert_hf.h"

#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <fstream>
#include <map>
#include <optional>
#include <set>
#include <span>
#include <string_view>
#include <system_error>
#include <vector>

#include <nlohmann/json.hpp>

#include "engine/fp16.h"
#include "engine/ggml_types.h"
#include "engine/gguf.h"
#include "engine/mapped_file.h"

namespace folio::app {

namespace {

using nlohmann::json;
using engine::GgmlType;

// llama.cpp's token types (tokenizer.ggml.token_type) and pooling types.
constexpr std::int32_t kTokenNormal = 1;
constexpr std::int32_t kTokenControl = 3;
constexpr std::int32_t kTokenUserDefined = 4;
constexpr std::uint32_t kPoolingMean = 1;
constexpr std::uint32_t kPoolingCls = 2;
constexpr std::uint32_t kPoolingRank = 4;  // a cross-encoder's score
// general.file_type: LLAMA_FTYPE_ALL_F32, LLAMA_FTYPE_MOSTLY_F16.
constexpr std::uint32_t kFileTypeF32 = 0;
constexpr std::uint32_t kFileTypeF16 = 1;

std::string name_of(const std::filesystem::path& path) {
    return path.filename().string();
}

json read_json(const std::filesystem::path& path) {
    std::ifstream in(path, std::ios::binary);
    if (!in)
        throw ConvertError(path.string() + ": cannot be read");
    try {
        return json::parse(in);
    } catch (const json::exception& error) {
        throw ConvertError(path.string() + ": not valid JSON (" + error.what() + ")");
    }
}

std::optional<json> read_optional_json(const std::filesystem::path& path) {
    if (!std::filesystem::is_regular_file(path))
        return std::nullopt;
    return read_json(path);
}

// config.json's value of a key that must be a positive integer.
std::int64_t config_int(const json& config, const std::string& key) {
    const auto it = config.find(key);
    if (it == config.end())
        throw ConvertError("config.json has no " + key);
    if (!it->is_number_integer() || it->get<std::int64_t>() <= 0 || it->get<std::int64_t>() > (1 << 30))
        throw ConvertError("config.json: " + key + " = " + it->dump() + " is not a positive whole number");
    return it->get<std::int64_t>();
}

std::string config_string(const json& config, const std::string& key, const std::string& fallback) {
    const auto it = config.find(key);
    return it != config.end() && it->is_string() ? it->get<std::string>() : fallback;
}

// ---- safetensors ----------------------------------------------------------
//
//   u64 header length N | N bytes of JSON | data
//   JSON: {"name": {"dtype": "F32", "shape": [rows, cols], "data_offsets": [begin, end]}, ...,
//          "__metadata__": {...}}, offsets relative to the start of the data.

struct SafeTensor {
    std::string file;               // for messages
    std::string dtype;              // "F32", "F16", "BF16", "I64", ...
    std::vector<std::int64_t> shape;
    std::span<const std::uint8_t> bytes;

    std::int64_t n_elements() const {
        std::int64_t n = 1;
        for (const std::int64_t extent : shape)
            n *= extent;
        return n;
    }
};

// Bytes per element of the dtypes safetensors defines; 0 for an unknown one.
std::size_t dtype_size(const std::string& dtype) {
    static const std::map<std::string, std::size_t, std::less<>> sizes = {
        {"F64", 8}, {"F32", 4}, {"F16", 2}, {"BF16", 2}, {"I64", 8}, {"I32", 4},  {"I16", 2},
        {"I8", 1},  {"U8", 1},  {"BOOL", 1}, {"U16", 2}, {"U32", 4}, {"U64", 8}, {"F8_E4M3", 1}, {"F8_E5M2", 1}};
    const auto it = sizes.find(dtype);
    return it == sizes.end() ? 0 : it->second;
}

// The tensors of a model's *.safetensors files, mapped.
class SafetensorsFiles {
public:
    explicit SafetensorsFiles(const std::filesystem::path& dir) {
        std::vector<std::filesystem::path> files;
        if (const auto index = read_optional_json(dir / "model.safetensors.index.json")) {
            const auto map = index->find("weight_map");
            if (map == index->end() || !map->is_object())
                throw ConvertError("model.safetensors.index.json has no weight_map");
            std::set<std::string> names;
            for (const auto& [tensor, file] : map->items()) {
                if (!file.is_string())
                    throw ConvertError("model.safetensors.index.json: " + tensor + " names no file");
                names.insert(file.get<std::string>());
            }
            for (const std::string& name : names) {
                if (name.find('/') != std::string::npos || name == "..")
                    throw ConvertError("model.safetensors.index.json names a file outside the folder: " + name);
                files.push_back(dir / name);
            }
        } else {
            std::error_code error;
            for (const auto& entry : std::filesystem::directory_iterator(dir, error))
                if (entry.path().extension() == ".safetensors")
                    files.push_back(entry.path());
            std::sort(files.begin(), files.end());
        }
        if (files.empty())
            throw ConvertError(dir.string() + " has no *.safetensors weights (PyTorch .bin files are not read)");
        for (const auto& file : files)
            read_file(file);
    }

    const std::map<std::string, SafeTensor>& tensors() const { return tensors_; }

private:
    void read_file(const std::filesystem::path& path) {
        if (!std::filesystem::is_regular_file(path))
            throw ConvertError(path.string() + " is missing");
        const std::string name = name_of(path);
        const engine::MappedFile& mapped = mappings_.emplace_back(path);
        const std::span<const std::uint8_t> bytes = mapped.bytes();
        if (bytes.size() < 8)
            throw ConvertError(name + ": truncated, " + std::to_string(bytes.size()) + " bytes");
        std::uint64_t header_size = 0;
        for (int i = 7; i >= 0; --i)
            header_size = (header_size << 8) | bytes[static_cast<std::size_t>(i)];
        if (header_size > bytes.size() - 8)
            throw ConvertError(name + ": its header of " + std::to_string(header_size) + " bytes runs past the end of the " +
                               std::to_string(bytes.size()) + "-byte file");
        json header;
        try {
            header = json::parse(bytes.begin() + 8, bytes.begin() + 8 + static_cast<std::ptrdiff_t>(header_size));
        } catch (const json::exception& error) {
            throw ConvertError(name + ": the header is not valid JSON (" + error.what() + ")");
        }
        if (!header.is_object())
            throw ConvertError(name + ": the header is not a JSON object");
        const std::span<const std::uint8_t> data = bytes.subspan(8 + header_size);
        for (const auto& [tensor_name, entry] : header.items()) {
            if (tensor_name == "__metadata__")
                continue;
            tensors_.emplace(tensor_name, parse_entry(name, tensor_name, entry, data));
        }
    }

    static SafeTensor parse_entry(const std::string& file, const std::string& tensor_name, const json& entry,
                                  std::span<const std::uint8_t> data) {
        const std::string context = file + ": tensor " + tensor_name;
        if (!entry.is_object() || !entry.contains("dtype") || !entry["dtype"].is_string() ||
            !entry.contains("shape") || !entry["shape"].is_array() || !entry.contains("data_offsets") ||
            !entry["data_offsets"].is_array() || entry["data_offsets"].size() != 2)
            throw ConvertError(context + " lacks a dtype, shape or data_offsets");
        SafeTensor tensor;
        tensor.file = file;
        tensor.dtype = entry["dtype"].get<std::string>();
        std::uint64_t n_elements = 1;
        for (const json& extent : entry["shape"]) {
            if (!extent.is_number_unsigned() || extent.get<std::uint64_t>() > (std::uint64_t{1} << 40))
                throw ConvertError(context + " has shape " + entry["shape"].dump());
            tensor.shape.push_back(extent.get<std::int64_t>());
            n_elements *= extent.get<std::uint64_t>();
            if (n_elements > (std::uint64_t{1} << 40))
                throw ConvertError(context + " has shape " + entry["shape"].dump());
        }
        const json& offsets = entry["data_offsets"];
        if (!offsets[0].is_number_unsigned() || !offsets[1].is_number_unsigned())
            throw ConvertError(context + " has data_offsets " + offsets.dump());
        const auto begin = offsets[0].get<std::uint64_t>();
        const auto end = offsets[1].get<std::uint64_t>();
        if (begin > end || end > data.size())
            throw ConvertError(context + " has data_offsets " + offsets.dump() + " past the " +
                               std::to_string(data.size()) + " bytes of data (truncated file?)");
        if (const std::size_t size = dtype_size(tensor.dtype); size != 0 && n_elements * size != end - begin)
            throw ConvertError(context + ": shape " + entry["shape"].dump() + " of " + tensor.dtype + " needs " +
                               std::to_string(n_elements * size) + " bytes, its offsets give " +
                               std::to_string(end - begin));
        tensor.bytes = data.subspan(begin, end - begin);
        return tensor;
    }

    std::vector<engine::MappedFile> mappings_;
    std::map<std::string, SafeTensor> tensors_;
};

// Writes the tensor's elements as `type` (F32 or F16) into out.
void convert_elements(const SafeTensor& tensor, GgmlType type, std::span<std::uint8_t> out) {
    const auto n = static_cast<std::size_t>(tensor.n_elements());
    if (type == GgmlType::F16 && tensor.dtype == "F16") {
        std::memcpy(out.data(), tensor.bytes.data(), n * 2);
        return;
    }
    auto element = [&](std::size_t i) -> float {
        const std::uint8_t* at = tensor.bytes.data();
        if (tensor.dtype == "F32") {
            float value;
            std::memcpy(&value, at + i * 4, 4);
            return value;
        }
        std::uint16_t half;
        std::memcpy(&half, at + i * 2, 2);
        return tensor.dtype == "F16" ? engine::fp16_to_fp32(half) : engine::bf16_to_fp32(half);
    };
    for (std::size_t i = 0; i < n; ++i) {
        const float value = element(i);
        if (type == GgmlType::F32) {
            std::memcpy(out.data() + i * 4, &value, 4);
        } else {
            const std::uint16_t half = engine::fp32_to_fp16(value);
            std::memcpy(out.data() + i * 2, &half, 2);
        }
    }
}

std::string shape_text(const std::vector<std::int64_t>& shape) {
    std::string text = "[";
    for (std::size_t i = 0; i < shape.size(); ++i)
        text += (i ? ", " : "") + std::to_string(shape[i]);
    return text + "]";
}

// Row r of a permuted q or k (heads of head_dim rows) comes from this row
// of Hugging Face's: pair i of a head moves from rows (i, i + d/2) to
// (2i, 2i + 1), convert_hf_to_gguf's LlamaModel.permute.
std::int64_t permuted_source_row(std::int64_t r, std::int64_t head_dim) {
    const std::int64_t head = r / head_dim, within = r % head_dim;
    return head * head_dim + (within % 2) * (head_dim / 2) + within / 2;
}

// Checks a safetensors tensor against the shape that shape_source (config.json,
// a base model's tensor) implies (rows first) and queues it under its GGUF
// name, converted to out_type when the writer reaches it; with
// permute_head_dim > 0 its rows are permuted as permuted_source_row says.
void require_float(const std::string& hf_name, const SafeTensor& tensor) {
    if (tensor.dtype != "F32" && tensor.dtype != "F16" && tensor.dtype != "BF16")
        throw ConvertError(tensor.file + ": tensor " + hf_name + " is " + tensor.dtype +
                           " (Folio converts F32, F16 and BF16)");
}

void add_converted_tensor(engine::GgufWriter& writer, const std::string& hf_name, const SafeTensor& tensor,
                          const std::string& name, const std::vector<std::int64_t>& expected, GgmlType out_type,
                          std::int64_t permute_head_dim = 0, const std::string& shape_source = "config.json") {
    if (tensor.shape != expected)
        throw ConvertError(tensor.file + ": tensor " + hf_name + " has shape " + shape_text(tensor.shape) + ", " +
                           shape_source + " implies " + shape_text(expected));
    require_float(hf_name, tensor);
    const std::vector<std::int64_t> ne(tensor.shape.rbegin(), tensor.shape.rend());
    const SafeTensor* source = &tensor;
    writer.add_tensor(name, out_type, ne, [source, out_type, permute_head_dim](std::span<std::uint8_t> out) {
        convert_elements(*source, out_type, out);
        if (permute_head_dim == 0)
            return;
        const std::int64_t rows = source->shape[0];
        const std::size_t row_bytes = out.size() / static_cast<std::size_t>(rows);
        const std::vector<std::uint8_t> original(out.begin(), out.end());
        for (std::int64_t r = 0; r < rows; ++r)
            std::memcpy(out.data() + static_cast<std::size_t>(r) * row_bytes,
                        original.data() + static_cast<std::size_t>(permuted_source_row(r, permute_head_dim)) * row_bytes,
                        row_bytes);
    });
}

// ---- BERT -----------------------------------------------------------------

struct BertShape {
    std::int64_t n_vocab, n_embd, n_ff, n_layers, n_heads, n_positions, n_token_types;
    // BertForSequenceClassification's labels; 0 for an encoder without a
    // classification head.
    std::int64_t n_labels = 0;
};

// A Hugging Face BERT tensor name's GGUF name (gguf-py's tensor map for
// MODEL_ARCH.BERT), "" for tensors the converter drops, nullopt for an
// unknown one. A classifier keeps its pooler and classifier as cls and
// cls.output (llama.cpp's rerankers); an encoder drops its pooler.
std::optional<std::string> bert_tensor_name(std::string name, bool classifier) {
    if (name.starts_with("bert."))
        name.erase(0, 5);
    // Old checkpoints name LayerNorm parameters gamma and beta.
    if (name.ends_with(".gamma"))
        name = name.substr(0, name.size() - 6) + ".weight";
    if (name.ends_with(".beta"))
        name = name.substr(0, name.size() - 5) + ".bias";
    if (classifier && (name == "pooler.dense.weight" || name == "pooler.dense.bias"))
        return "cls" + name.substr(name.rfind('.'));
    if (classifier && (name == "classifier.weight" || name == "classifier.bias"))
        return "cls.output" + name.substr(name.rfind('.'));
    if (name == "embeddings.position_ids" || name.starts_with("pooler.") || name.starts_with("cls."))
        return "";
    const std::size_t suffix_at = name.rfind('.');
    if (suffix_at == std::string::npos)
        return std::nullopt;
    const std::string suffix = name.substr(suffix_at);  // ".weight" or ".bias"
    if (suffix != ".weight" && suffix != ".bias")
        return std::nullopt;
    const std::string base = name.substr(0, suffix_at);
    static const std::map<std::string, std::string, std::less<>> embeddings = {
        {"embeddings.word_embeddings", "token_embd"},
        {"embeddings.position_embeddings", "position_embd"},
        {"embeddings.token_type_embeddings", "token_types"},
        {"embeddings.LayerNorm", "token_embd_norm"},
    };
    if (const auto it = embeddings.find(base); it != embeddings.end())
        return it->second + suffix;
    static constexpr std::string_view layer_prefix = "encoder.layer.";
    if (!base.starts_with(layer_prefix))
        return std::nullopt;
    const std::size_t dot = base.find('.', layer_prefix.size());
    if (dot == std::string::npos)
        return std::nullopt;
    const std::string block = base.substr(layer_prefix.size(), dot - layer_prefix.size());
    if (block.empty() || block.size() > 6 ||
        !std::all_of(block.begin(), block.end(), [](char c) { return c >= '0' && c <= '9'; }))
        return std::nullopt;
    static const std::map<std::string, std::string, std::less<>> layer = {
        {"attention.self.query", "attn_q"},
        {"attention.self.key", "attn_k"},
        {"attention.self.value", "attn_v"},
        {"attention.output.dense", "attn_output"},
        {"attention.output.LayerNorm", "attn_output_norm"},
        {"intermediate.dense", "ffn_up"},
        {"output.dense", "ffn_down"},
        {"output.LayerNorm", "layer_output_norm"},
    };
    const auto it = layer.find(base.substr(dot + 1));
    if (it == layer.end())
        return std::nullopt;
    return "blk." + std::to_string(std::stoi(block)) + "." + it->second + suffix;
}

// Every tensor the bert loader reads, with its shape as Hugging Face stores
// it (rows first).
std::map<std::string, std::vector<std::int64_t>> bert_expected_shapes(const BertShape& s) {
    std::map<std::string, std::vector<std::int64_t>> shapes = {
        {"token_embd.weight", {s.n_vocab, s.n_embd}},
        {"position_embd.weight", {s.n_positions, s.n_embd}},
        {"token_types.weight", {s.n_token_types, s.n_embd}},
        {"token_embd_norm.weight", {s.n_embd}},
        {"token_embd_norm.bias", {s.n_embd}},
    };
    for (std::int64_t i = 0; i < s.n_layers; ++i) {
        const std::string blk = "blk." + std::to_string(i) + ".";
        for (const char* square : {"attn_q", "attn_k", "attn_v", "attn_output"}) {
            shapes[blk + square + ".weight"] = {s.n_embd, s.n_embd};
            shapes[blk + square + ".bias"] = {s.n_embd};
        }
        for (const char* norm : {"attn_output_norm", "layer_output_norm"}) {
            shapes[blk + norm + ".weight"] = {s.n_embd};
            shapes[blk + norm + ".bias"] = {s.n_embd};
        }
        shapes[blk + "ffn_up.weight"] = {s.n_ff, s.n_embd};
        shapes[blk + "ffn_up.bias"] = {s.n_ff};
        shapes[blk + "ffn_down.weight"] = {s.n_embd, s.n_ff};
        shapes[blk + "ffn_down.bias"] = {s.n_embd};
    }
    if (s.n_labels > 0) {
        shapes["cls.weight"] = {s.n_embd, s.n_embd};
        shapes["cls.bias"] = {s.n_embd};
        shapes["cls.output.weight"] = {s.n_labels, s.n_embd};
        shapes["cls.output.bias"] = {s.n_labels};
    }
    return shapes;
}

// A special token named by tokenizer_config.json (a string or {"content": ...}).
std::optional<std::string> special_token_text(const json& config, const std::string& key) {
    const auto it = config.find(key);
    if (it == config.end())
        return std::nullopt;
    if (it->is_string())
        return it->get<std::string>();
    if (it->is_object() && it->contains("content") && (*it)["content"].is_string())
        return (*it)["content"].get<std::string>();
    return std::nullopt;
}

// The SpecialToken id of a TemplateProcessing piece, or "".
std::string template_special(const json& piece) {
    if (piece.is_object() && piece.contains("SpecialToken") && piece["SpecialToken"].contains("id") &&
        piece["SpecialToken"]["id"].is_string())
        return piece["SpecialToken"]["id"].get<std::string>();
    return "";
}

// The tokens of a tokenizer.json by id, as convert_hf_to_gguf's
// get_vocab_base lists them: n_vocab entries (config.json's vocab_size), an
// id the tokenizer lacks as "[PAD<id>]" (user-defined), added tokens control
// (special) or user-defined, the rest normal.
struct TokenTable {
    std::vector<std::string> tokens;
    std::vector<std::int32_t> types;
    std::map<std::string, std::int64_t> id_of;
};

class TokenTableBuilder {
public:
    explicit TokenTableBuilder(std::int64_t n_vocab)
        : n_vocab_(n_vocab), present_(static_cast<std::size_t>(n_vocab), false) {
        table_.tokens.resize(static_cast<std::size_t>(n_vocab));
    }

    void place(const std::string& token, std::int64_t id, const std::string& source) {
        if (id < 0 || id >= n_vocab_)
            throw ConvertError(source + ": token " + token + " has id " + std::to_string(id) +
                               ", outside config.json's vocab_size " + std::to_string(n_vocab_));
        table_.tokens[static_cast<std::size_t>(id)] = token;
        present_[static_cast<std::size_t>(id)] = true;
        table_.id_of.emplace(token, id);
    }
    void mark_added(const std::string& token, bool special) { added_[token] = special; }
    bool has(const std::string& token) const { return table_.id_of.count(token) > 0; }

    // A tokenizer.json's model vocabulary (of model type `type`) and added tokens.
    void place_tokenizer_json(const json& tokenizer, const std::string& type) {
        const json& model = tokenizer["model"];
        if (!model.is_object() || model.value("type", "") != type || !model.contains("vocab") ||
            !model["vocab"].is_object())
            throw ConvertError("tokenizer.json: a " + type + " model with a vocab was expected, found " +
                               (model.is_object() ? model.value("type", "none") : std::string("none")));
        for (const auto& [token, id] : model["vocab"].items()) {
            if (!id.is_number_integer())
                throw ConvertError("tokenizer.json: token " + token + " has no integer id");
            place(token, id.get<std::int64_t>(), "tokenizer.json");
        }
        if (tokenizer.contains("added_tokens") && tokenizer["added_tokens"].is_array())
            for (const json& token : tokenizer["added_tokens"]) {
                if (!token.is_object() || !token.contains("content") || !token["content"].is_string() ||
                    !token.contains("id") || !token["id"].is_number_integer())
                    throw ConvertError("tokenizer.json: an added token lacks its content or id");
                place(token["content"].get<std::string>(), token["id"].get<std::int64_t>(), "tokenizer.json");
                mark_added(token["content"].get<std::string>(), token.value("special", false));
            }
    }

    TokenTable finish() {
        table_.types.resize(table_.tokens.size());
        for (std::size_t id = 0; id < table_.tokens.size(); ++id) {
            if (!present_[id]) {
                table_.tokens[id] = "[PAD" + std::to_string(id) + "]";
                table_.types[id] = kTokenUserDefined;
            } else if (const auto it = added_.find(table_.tokens[id]); it != added_.end()) {
                table_.types[id] = it->second ? kTokenControl : kTokenUserDefined;
            } else {
                table_.types[id] = kTokenNormal;
            }
        }
        return std::move(table_);
    }

private:
    std::int64_t n_vocab_;
    std::vector<bool> present_;
    std::map<std::string, bool> added_;  // added token -> special
    TokenTable table_;
};

// tokenizer_config.json, else special_tokens_map.json, else {}.
json read_tokenizer_config(const std::filesystem::path& dir) {
    return read_optional_json(dir / "tokenizer_config.json")
        .value_or(read_optional_json(dir / "special_tokens_map.json").value_or(json::object()));
}

// What gguf-py's SpecialVocab writes: the special token ids (named by
// tokenizer_config.json, else config.json's <kind>_token_id), whether BOS,
// EOS and a separator frame a text (the tokenizer's TemplateProcessing
// post-processor, then tokenizer_config.json's add_*_token flags) and the
// chat template.
void add_special_vocab(engine::GgufWriter& writer, const json& config, const std::optional<json>& tokenizer,
                       const json& tokenizer_config, const TokenTable& table) {
    // [CLS] stands in for a missing BOS and [SEP] for a missing EOS.
    std::map<std::string, std::string> special;
    for (const char* kind : {"bos", "eos", "unk", "sep", "pad", "cls", "mask"})
        if (const auto text = special_token_text(tokenizer_config, std::string(kind) + "_token"))
            special[kind] = *text;
    if (!special.count("bos") && special.count("cls"))
        special["bos"] = special["cls"];
    if (!special.count("eos") && special.count("sep"))
        special["eos"] = special["sep"];
    static const std::pair<const char*, const char*> id_keys[] = {
        {"bos", "tokenizer.ggml.bos_token_id"},     {"eos", "tokenizer.ggml.eos_token_id"},
        {"unk", "tokenizer.ggml.unknown_token_id"}, {"sep", "tokenizer.ggml.seperator_token_id"},
        {"pad", "tokenizer.ggml.padding_token_id"}, {"mask", "tokenizer.ggml.mask_token_id"},
    };
    for (const auto& [kind, key] : id_keys) {
        std::optional<std::int64_t> id;
        if (const auto text = special.find(kind); text != special.end())
            if (const auto found = table.id_of.find(text->second); found != table.id_of.end())
                id = found->second;
        const auto from_config = config.find(std::string(kind) + "_token_id");
        if (!id && from_config != config.end() && from_config->is_number_unsigned() &&
            from_config->get<std::uint64_t>() < table.tokens.size())
            id = from_config->get<std::int64_t>();
        if (id)
            writer.add_u32(key, static_cast<std::uint32_t>(*id));
    }

    std::map<std::string, bool> add;
    if (tokenizer && tokenizer->contains("post_processor") && (*tokenizer)["post_processor"].is_object()) {
        const json& post = (*tokenizer)["post_processor"];
        const json processors = post.contains("processors") ? post["processors"] : json::array({post});
        for (const json& processor : processors) {
            if (!processor.is_object() || processor.value("type", "") != "TemplateProcessing")
                continue;
            const json single = processor.value("single", json::array());
            const json pair = processor.value("pair", json::array());
            std::string first, last;
            if (single.size() > 1) {
                first = template_special(single.front());
                last = template_special(single.back());
                if (!first.empty())
                    add["bos"] = first == special["bos"] || first == special["cls"];
                if (!last.empty())
                    add["eos"] = last == special["eos"];
            }
            // "A [SEP] B": SpecialVocab adds a separator only for a pair
            // template whose single form has no trailing special token
            // (BERT's has [SEP], so BERT says false).
            if (pair.size() > 2) {
                bool separated = false;
                for (std::size_t i = 1; i + 1 < pair.size(); ++i) {
                    const std::string middle = template_special(pair[i]);
                    separated |= !middle.empty() && (middle == special["sep"] || middle == special["eos"]);
                }
                add["sep"] = separated && last.empty();
            }
        }
    }
    for (const char* kind : {"bos", "eos", "sep"})
        if (const auto flag = tokenizer_config.find(std::string("add_") + kind + "_token");
            flag != tokenizer_config.end() && flag->is_boolean())
            add[kind] = flag->get<bool>();
    for (const char* kind : {"bos", "eos", "sep"})
        if (const auto flag = add.find(kind); flag != add.end())
            writer.add_bool(std::string("tokenizer.ggml.add_") + kind + "_token", flag->second);
    if (const auto chat_template = tokenizer_config.find("chat_template");
        chat_template != tokenizer_config.end() && chat_template->is_string())
        writer.add_string("tokenizer.chat_template", chat_template->get<std::string>());
}

// The WordPiece vocabulary and its special tokens, as convert_hf_to_gguf's
// BertModel.set_vocab and gguf-py's SpecialVocab write them.
void add_bert_tokenizer(engine::GgufWriter& writer, const std::filesystem::path& dir, const json& config,
                        std::int64_t n_vocab) {
    const std::optional<json> tokenizer = read_optional_json(dir / "tokenizer.json");
    const json tokenizer_config = read_tokenizer_config(dir);
    TokenTableBuilder builder(n_vocab);
    if (tokenizer) {
        const json& normalizer = (*tokenizer)["normalizer"];
        if (normalizer.is_object() && normalizer.value("type", "") == "BertNormalizer" &&
            !normalizer.value("lowercase", true))
            throw ConvertError("tokenizer.json: a cased BERT tokenizer (lowercase: false); Folio's WordPiece, "
                               "like llama.cpp's, lowercases, so it would tokenize this model wrongly");
        builder.place_tokenizer_json(*tokenizer, "WordPiece");
    } else {
        std::ifstream vocab(dir / "vocab.txt", std::ios::binary);
        if (!vocab)
            throw ConvertError(dir.string() + " has neither tokenizer.json nor vocab.txt");
        std::string line;
        for (std::int64_t id = 0; std::getline(vocab, line); ++id) {
            if (!line.empty() && line.back() == '\r')
                line.pop_back();
            builder.place(line, id, "vocab.txt");
        }
        // Without tokenizer.json the special tokens are those the tokenizer config names.
        for (const char* key : {"unk_token", "sep_token", "pad_token", "cls_token", "mask_token"})
            if (const auto text = special_token_text(tokenizer_config, key); text && builder.has(*text))
                builder.mark_added(*text, true);
    }
    const TokenTable table = builder.finish();

    // llama.cpp's "phantom space": a word's first piece gets U+2581, a
    // continuation loses its "##", [CLS]-like tokens stay as they are.
    std::vector<std::string> phantom;
    phantom.reserve(table.tokens.size());
    for (const std::string& token : table.tokens) {
        if (token.starts_with("[") && token.ends_with("]"))
            phantom.push_back(token);
        else if (token.starts_with("##"))
            phantom.push_back(token.substr(2));
        else
            phantom.push_back("\xE2\x96\x81" + token);
    }

    writer.add_u32("tokenizer.ggml.token_type_count",
                   static_cast<std::uint32_t>(config.value("type_vocab_size", 1)));
    writer.add_string("tokenizer.ggml.model", "bert");
    // The uncased BERT pre-tokenizer's name in llama.cpp (BAAI/bge-small-en-v1.5
    // hashes the same); llama.cpp does not read it for WordPiece.
    writer.add_string("tokenizer.ggml.pre", "bert-bge");
    writer.add_string_array("tokenizer.ggml.tokens", phantom);
    writer.add_array("tokenizer.ggml.token_type", std::span<const std::int32_t>(table.types));
    add_special_vocab(writer, config, tokenizer, tokenizer_config, table);
}

// sentence-transformers' modules: the pooling (bert.pooling_type) and
// whether a Normalize step follows (folio.embedding.normalize). Nothing
// without modules.json.
void add_sentence_transformers_modules(engine::GgufWriter& writer, const std::filesystem::path& dir) {
    const std::optional<json> modules = read_optional_json(dir / "modules.json");
    if (!modules)
        return;
    if (!modules->is_array())
        throw ConvertError("modules.json is not a list of modules");
    bool normalize = false;
    for (const json& module : *modules) {
        const std::string type = module.is_object() ? module.value("type", "") : "";
        // sentence-transformers 2.x says "sentence_transformers.models.Pooling",
        // 6.x "sentence_transformers.sentence_transformer.modules.pooling.Pooling".
        const std::string kind = type.substr(type.rfind('.') + 1);
        if (kind == "Normalize") {
            normalize = true;
        } else if (kind == "Pooling") {
            const std::string path = module.value("path", "");
            const json pooling = read_json(dir / path / "config.json");
            std::string mode = pooling.value("pooling_mode", "");
            if (mode.empty())
                mode = pooling.value("pooling_mode_mean_tokens", false) ? "mean"
                       : pooling.value("pooling_mode_cls_token", false) ? "cls"
                                                                          : "another";
            if (mode != "mean" && mode != "cls")
                throw ConvertError(path + "/config.json: pooling mode " + mode +
                                   " is not supported (llama.cpp and Folio pool by mean or cls)");
            writer.add_u32("bert.pooling_type", mode == "mean" ? kPoolingMean : kPoolingCls);
        } else if (kind != "Transformer") {
            throw ConvertError("modules.json: module " + type +
                               " after the encoder is not supported (Transformer, Pooling, Normalize)");
        }
    }
    writer.add_bool("folio.embedding.normalize", normalize);
}

// sentence-transformers' max_seq_length (sentence_bert_config.json, beside
// the Transformer module's config.json) as folio.embedding.max_tokens: the
// length the model was trained to embed, at which sentence-transformers cuts
// texts, can be below its positions (all-MiniLM-L6-v2: 256 of 512). Nothing
// without the file or the value, where sentence-transformers cuts at the
// positions too.
void add_sentence_transformers_max_tokens(engine::GgufWriter& writer, const std::filesystem::path& dir,
                                          std::int64_t n_positions) {
    const std::optional<json> config = read_optional_json(dir / "sentence_bert_config.json");
    if (!config || !config->is_object())
        return;
    const auto it = config->find("max_seq_length");
    if (it == config->end() || it->is_null())
        return;
    // At least [CLS] and [SEP]; past the positions the model cannot read.
    if (!it->is_number_integer() || it->get<std::int64_t>() < 2 || it->get<std::int64_t>() > n_positions)
        throw ConvertError("sentence_bert_config.json: max_seq_length = " + it->dump() +
                           " is not a whole number from 2 to the model's " + std::to_string(n_positions) +
                           " positions");
    writer.add_u32("folio.embedding.max_tokens", static_cast<std::uint32_t>(it->get<std::int64_t>()));
}

BertShape read_bert_shape(const json& config, bool classifier) {
    BertShape shape{config_int(config, "vocab_size"),
                          config_int(config, "hidden_size"),
                          config_int(config, "intermediate_size"),
                          config_int(config, "num_hidden_layers"),
                          config_int(config, "num_attention_heads"),
                          config_int(config, "max_position_embeddings"),
                          config.contains("type_vocab_size") ? config_int(config, "type_vocab_size") : 1};
    if (classifier) {
        // Hugging Face's PretrainedConfig: num_labels is id2label's size, 2 without one.
        const auto labels = config.find("id2label");
        shape.n_labels = labels != config.end() && labels->is_object() && !labels->empty()
                             ? static_cast<std::int64_t>(labels->size())
                             : 2;
    }
    if (shape.n_embd % shape.n_heads != 0)
        throw ConvertError("config.json: hidden_size " + std::to_string(shape.n_embd) + " is not a multiple of " +
                           std::to_string(shape.n_heads) + " heads");
    return shape;
}

// The hyper-parameters, sentence-transformers' pooling, normalization and
// length, and the tokenizer.
void add_bert_metadata(engine::GgufWriter& writer, const std::filesystem::path& dir, const json& config,
                       const BertShape& shape, ConvertedType type) {
    const std::string activation = config_string(config, "hidden_act", "gelu");
    if (activation != "gelu")
        throw ConvertError("config.json: hidden_act " + activation + " is not supported (bert: gelu)");
    const std::string positions = config_string(config, "position_embedding_type", "absolute");
    if (positions != "absolute")
        throw ConvertError("config.json: position_embedding_type " + positions + " is not supported (absolute)");
    const auto eps = config.find("layer_norm_eps");
    if (eps == config.end() || !eps->is_number())
        throw ConvertError("config.json has no layer_norm_eps");

    // Keys in convert_hf_to_gguf's order.
    writer.add_u32("bert.block_count", static_cast<std::uint32_t>(shape.n_layers));
    writer.add_u32("bert.context_length", static_cast<std::uint32_t>(shape.n_positions));
    writer.add_u32("bert.embedding_length", static_cast<std::uint32_t>(shape.n_embd));
    writer.add_u32("bert.feed_forward_length", static_cast<std::uint32_t>(shape.n_ff));
    writer.add_u32("bert.attention.head_count", static_cast<std::uint32_t>(shape.n_heads));
    writer.add_f32("bert.attention.layer_norm_epsilon", eps->get<float>());
    writer.add_u32("general.file_type", type == ConvertedType::F16 ? kFileTypeF16 : kFileTypeF32);
    writer.add_bool("bert.attention.causal", false);
    if (shape.n_labels > 0)
        writer.add_u32("bert.pooling_type", kPoolingRank);
    else
        add_sentence_transformers_modules(writer, dir);
    add_sentence_transformers_max_tokens(writer, dir, shape.n_positions);
    add_bert_tokenizer(writer, dir, config, shape.n_vocab);
}

// The weights: each safetensors tensor under its GGUF name, checked against
// the shape config.json implies, converted when the writer reaches it.
int add_bert_tensors(engine::GgufWriter& writer, const SafetensorsFiles& files, const BertShape& shape,
                     ConvertedType type) {
    std::map<std::string, std::vector<std::int64_t>> expected = bert_expected_shapes(shape);
    int n_tensors = 0;
    for (const auto& [hf_name, tensor] : files.tensors()) {
        const std::optional<std::string> name = bert_tensor_name(hf_name, shape.n_labels > 0);
        if (!name)
            throw ConvertError(tensor.file + ": cannot map tensor " + hf_name + " to a bert tensor");
        if (name->empty())
            continue;
        const auto wanted = expected.find(*name);
        if (wanted == expected.end())
            throw ConvertError(tensor.file + ": tensor " + hf_name + " (" + *name + ") is not part of a " +
                               std::to_string(shape.n_layers) + "-layer bert");
        // convert_hf_to_gguf: 1-D tensors, norms, biases and the tables read by
        // row lookup (positions, token types) stay f32.
        const bool stays_f32 = tensor.shape.size() < 2 || !name->ends_with(".weight") ||
                               *name == "position_embd.weight" || *name == "token_types.weight";
        add_converted_tensor(writer, hf_name, tensor, *name, wanted->second,
                             type == ConvertedType::F16 && !stays_f32 ? GgmlType::F16 : GgmlType::F32);
        expected.erase(wanted);
        ++n_tensors;
    }
    if (!expected.empty())
        throw ConvertError("the safetensors lack " + expected.begin()->first + " and " +
                           std::to_string(expected.size() - 1) + " other tensors a bert needs");
    return n_tensors;
}

// ---- llama, qwen2, qwen3 ----------------------------------------------------

struct DecoderFamily {
    std::string_view hf_architecture;
    std::string_view architecture;  // general.architecture
    // llama: q and k rows reordered within each head so that llama.cpp's
    // adjacent-pair RoPE rotates Hugging Face's rotate-half pairs
    // (convert_hf_to_gguf's LlamaModel.permute); Qwen keeps them and takes NeoX RoPE.
    bool permute_qk;
};

constexpr DecoderFamily kDecoderFamilies[] = {
    {"LlamaForCausalLM", "llama", true},
    {"Qwen2ForCausalLM", "qwen2", false},
    {"Qwen3ForCausalLM", "qwen3", false},
};

struct DecoderShape {
    std::int64_t n_vocab, n_embd, n_ff, n_layers, n_heads, n_kv_heads, head_dim, n_positions;
    bool tied;  // tie_word_embeddings: no lm_head, the embeddings serve as the output head
};

DecoderShape read_decoder_shape(const json& config) {
    DecoderShape shape{config_int(config, "vocab_size"),
                       config_int(config, "hidden_size"),
                       config_int(config, "intermediate_size"),
                       config_int(config, "num_hidden_layers"),
                       config_int(config, "num_attention_heads"),
                       0,
                       0,
                       config_int(config, "max_position_embeddings"),
                       config.value("tie_word_embeddings", false)};
    shape.n_kv_heads = config.contains("num_key_value_heads") ? config_int(config, "num_key_value_heads") : shape.n_heads;
    shape.head_dim = config.contains("head_dim") && !config["head_dim"].is_null() ? config_int(config, "head_dim")
                                                                                 : shape.n_embd / shape.n_heads;
    if (shape.n_heads % shape.n_kv_heads != 0 || shape.head_dim % 2 != 0)
        throw ConvertError("config.json: " + std::to_string(shape.n_heads) + " heads, " +
                           std::to_string(shape.n_kv_heads) + " kv heads of " + std::to_string(shape.head_dim) +
                           " do not make a model Folio runs");
    return shape;
}

// RoPE's base from transformers 5's rope_parameters or 4's rope_theta; a
// scaled RoPE is refused (not converted yet).
double rope_theta(const json& config) {
    const json parameters = config.value("rope_parameters", json::object());
    const std::string type = parameters.is_object() ? parameters.value("rope_type", "default") : "default";
    if (type != "default" || (config.contains("rope_scaling") && !config["rope_scaling"].is_null()))
        throw ConvertError("config.json: RoPE scaling (" + (type != "default" ? type : config["rope_scaling"].dump()) +
                           ") is not converted yet");
    if (parameters.is_object() && parameters.contains("rope_theta") && parameters["rope_theta"].is_number())
        return parameters["rope_theta"].get<double>();
    if (config.contains("rope_theta") && config["rope_theta"].is_number())
        return config["rope_theta"].get<double>();
    return 10000.0;
}

// tokenizer.ggml.pre for a byte-level BPE tokenizer.json's pre-tokenizer:
// the names of the split rules engine/pretokenize.h implements, known by
// their Split regexes (in order), Digits and ByteLevel's use_regex.
std::string byte_level_pre_tokenizer(const json& tokenizer) {
    using Splits = std::vector<std::string>;
    static const Splits llama3 = {
        "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|"
        "\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+"};
    static const Splits qwen2 = {
        "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|"
        "\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+"};
    static const Splits deepseek_llm = {
        "[\r\n]",
        "\\s?[A-Za-z\u00B5\u00C0-\u00D6\u00D8-\u00F6\u00F8-\u01BA\u01BC-\u01BF\u01C4-\u0293\u0295-\u02AF"
        "\u0370-\u0373\u0376\u0377\u037B-\u037D\u037F\u0386\u0388-\u038A\u038C\u038E-\u03A1\u03A3-\u03F5"
        "\u03F7-\u0481\u048A-\u052F\u0531-\u0556\u10A0-\u10C5\u13A0-\u13F5\u13F8-\u13FD\u1C90-\u1CBA"
        "\u1CBD-\u1CBF\u1D00-\u1D2B\u1D6B-\u1D77\u1D79-\u1D9A\u1E00-\u1F15\u1F18-\u1F1D\u1F20-\u1F45"
        "\u1F48-\u1F4D\u1F50-\u1F57\u1F59\u1F5B\u1F5D\u1F5F-\u1F7D\u1F80-\u1FB4\u1FB6-\u1FBC\u1FBE\u1FC2-"
        "\u1FC4\u1FC6-\u1FCC\u1FD0-\u1FD3\u1FD6-\u1FDB\u1FE0-\u1FEC\u1FF2-\u1FF4\u1FF6-\u1FFC\u2102\u2107"
        "\u210A-\u2113\u2115\u2119-\u211D\u2124\u2126\u2128\u212A-\u212D\u212F-\u2134\u2139\u213C-\u213F"
        "\u2145-\u2149\u214E\u2183\u2184\u2C00-\u2C7B\u2C7E-\u2CE4\u2CEB-\u2CEE\u2CF2\u2CF3\uA640-\uA66D"
        "\uA680-\uA69B\uA722-\uA76F\uA771-\uA787\uA78B-\uA78E\uAB70-\uABBF\uFB00-\uFB06\uFB13-\uFB17"
        "\uFF21-\uFF3A\uFF41-\uFF5A\U00010400-\U0001044F\U000104B0-\U000104D3\U000104D8-\U000104FB"
        "\U00010C80-\U00010CB2\U00010CC0-\U00010CF2\U000118A0-\U000118DF\U0001E900-\U0001E943]+",
        "\\s?[!-/:-~\uFF01-\uFF0F\uFF1A-\uFF5E\u2018-\u201F\u3000-\u3002]+",
        "\\s+$",
        "[\u4E00-\u9FA5\u0800-\u4E00\uAC00-\uD7FF]+"};
    static const Splits deepseek_v3 = {
        "\\p{N}{1,3}",
        "[\u4E00-\u9FA5\u3040-\u309F\u30A0-\u30FF]+",
        "[!\"#$%&'()*+,\\-./:;<=>?@\\[\\\\\\]^_`{|}~][A-Za-z]+|[^\r\n\\p{L}\\p{P}\\p{S}]?[\\p{L}\\p{M}]+|"
        " ?[\\p{P}\\p{S}]+[\r\n]*|\\s*[\r\n]+|\\s+(?!\\S)|\\s+"};
    const json pre = tokenizer.value("pre_tokenizer", json());
    const json steps = pre.is_object() && pre.value("type", "") == "Sequence" ? pre.value("pretokenizers", json::array())
                                                                             : json::array({pre});
    Splits splits;
    bool byte_level_regex = false, digits = false;
    for (const json& step : steps) {
        const std::string type = step.is_object() ? step.value("type", "") : "";
        if (type == "Split" && step.contains("pattern") && step["pattern"].is_object())
            splits.push_back(step["pattern"].value("Regex", ""));
        else if (type == "ByteLevel")
            byte_level_regex = step.value("use_regex", true);
        else if (type == "Digits")
            digits = step.value("individual_digits", false);
    }
    if (!byte_level_regex && !digits) {
        if (splits == llama3)
            return "llama-bpe";
        if (splits == qwen2)
            return "qwen2";
        if (splits == deepseek_v3)
            return "deepseek-v3";
    }
    if (!byte_level_regex && digits && splits == deepseek_llm)
        return "deepseek-llm";
    if (splits.empty() && byte_level_regex)
        return digits ? "smollm" : "gpt-2";
    throw ConvertError("tokenizer.json: a pre-tokenizer Folio does not know (" + pre.dump().substr(0, 120) +
                       "); known: GPT-2, SmolLM, Llama 3, Qwen2, DeepSeek LLM, DeepSeek-V3");
}

// The byte-level BPE vocabulary, merges and special tokens, as
// convert_hf_to_gguf's _set_vocab_gpt2 and SpecialVocab(load_merges=True) write them.
void add_byte_level_bpe_tokenizer(engine::GgufWriter& writer, const std::filesystem::path& dir, const json& config,
                                  std::int64_t n_vocab) {
    const std::optional<json> tokenizer = read_optional_json(dir / "tokenizer.json");
    if (!tokenizer)
        throw ConvertError(dir.string() + " has no tokenizer.json (a byte-level BPE tokenizer is needed)");
    const json tokenizer_config = read_tokenizer_config(dir);
    TokenTableBuilder builder(n_vocab);
    builder.place_tokenizer_json(*tokenizer, "BPE");
    const TokenTable table = builder.finish();

    std::vector<std::string> merges;
    for (const json& merge : (*tokenizer)["model"].value("merges", json::array())) {
        if (merge.is_string()) {
            merges.push_back(merge.get<std::string>());
        } else if (merge.is_array() && merge.size() == 2 && merge[0].is_string() && merge[1].is_string()) {
            // transformers 4.45+ writes pairs; a space inside a part is GPT-2's U+0120, as gguf-py encodes it.
            std::string joined;
            for (const json& part : merge) {
                if (!joined.empty())
                    joined += ' ';
                for (const char c : part.get<std::string>())
                    joined += c == ' ' ? std::string("\xC4\xA0") : std::string(1, c);
            }
            merges.push_back(joined);
        } else {
            throw ConvertError("tokenizer.json: a merge is neither \"a b\" nor [\"a\", \"b\"]");
        }
    }

    writer.add_string("tokenizer.ggml.model", "gpt2");
    writer.add_string("tokenizer.ggml.pre", byte_level_pre_tokenizer(*tokenizer));
    writer.add_string_array("tokenizer.ggml.tokens", table.tokens);
    writer.add_array("tokenizer.ggml.token_type", std::span<const std::int32_t>(table.types));
    writer.add_string_array("tokenizer.ggml.merges", merges);
    add_special_vocab(writer, config, tokenizer, tokenizer_config, table);
}

void add_decoder_metadata(engine::GgufWriter& writer, const std::filesystem::path& dir, const json& config,
                          const DecoderFamily& family, const DecoderShape& shape, ConvertedType type) {
    const std::string activation = config_string(config, "hidden_act", "silu");
    if (activation != "silu")
        throw ConvertError("config.json: hidden_act " + activation + " is not supported (silu)");
    const auto eps = config.find("rms_norm_eps");
    if (eps == config.end() || !eps->is_number())
        throw ConvertError("config.json has no rms_norm_eps");
    const std::string arch(family.architecture);
    // Model.set_gguf_parameters' order, then LlamaModel's additions.
    writer.add_u32(arch + ".block_count", static_cast<std::uint32_t>(shape.n_layers));
    writer.add_u32(arch + ".context_length", static_cast<std::uint32_t>(shape.n_positions));
    writer.add_u32(arch + ".embedding_length", static_cast<std::uint32_t>(shape.n_embd));
    writer.add_u32(arch + ".feed_forward_length", static_cast<std::uint32_t>(shape.n_ff));
    writer.add_u32(arch + ".attention.head_count", static_cast<std::uint32_t>(shape.n_heads));
    writer.add_u32(arch + ".attention.head_count_kv", static_cast<std::uint32_t>(shape.n_kv_heads));
    writer.add_f32(arch + ".rope.freq_base", static_cast<float>(rope_theta(config)));
    writer.add_f32(arch + ".attention.layer_norm_rms_epsilon", eps->get<float>());
    if (config.contains("head_dim") && !config["head_dim"].is_null()) {
        writer.add_u32(arch + ".attention.key_length", static_cast<std::uint32_t>(shape.head_dim));
        writer.add_u32(arch + ".attention.value_length", static_cast<std::uint32_t>(shape.head_dim));
    }
    writer.add_u32("general.file_type", type == ConvertedType::F16 ? kFileTypeF16 : kFileTypeF32);
    if (family.permute_qk) {
        writer.add_u32(arch + ".vocab_size", static_cast<std::uint32_t>(shape.n_vocab));
        writer.add_u32(arch + ".rope.dimension_count", static_cast<std::uint32_t>(shape.head_dim));
    }
    add_byte_level_bpe_tokenizer(writer, dir, config, shape.n_vocab);
}

// A Hugging Face decoder tensor name's GGUF name (gguf-py's tensor map),
// "" for one the converter drops, nullopt for an unknown one.
std::optional<std::string> decoder_tensor_name(const std::string& name) {
    static const std::map<std::string, std::string, std::less<>> top = {
        {"model.embed_tokens.weight", "token_embd.weight"},
        {"model.norm.weight", "output_norm.weight"},
        {"lm_head.weight", "output.weight"},
    };
    if (const auto it = top.find(name); it != top.end())
        return it->second;
    if (name.ends_with(".rotary_emb.inv_freq"))
        return "";
    static constexpr std::string_view prefix = "model.layers.";
    if (!name.starts_with(prefix))
        return std::nullopt;
    const std::size_t dot = name.find('.', prefix.size());
    const std::size_t suffix_at = name.rfind('.');
    if (dot == std::string::npos || suffix_at <= dot)
        return std::nullopt;
    const std::string block = name.substr(prefix.size(), dot - prefix.size());
    if (block.empty() || block.size() > 6 ||
        !std::all_of(block.begin(), block.end(), [](char c) { return c >= '0' && c <= '9'; }))
        return std::nullopt;
    static const std::map<std::string, std::string, std::less<>> layer = {
        {"input_layernorm", "attn_norm"},       {"self_attn.q_proj", "attn_q"},
        {"self_attn.k_proj", "attn_k"},         {"self_attn.v_proj", "attn_v"},
        {"self_attn.o_proj", "attn_output"},    {"self_attn.q_norm", "attn_q_norm"},
        {"self_attn.k_norm", "attn_k_norm"},    {"post_attention_layernorm", "ffn_norm"},
        {"mlp.gate_proj", "ffn_gate"},          {"mlp.up_proj", "ffn_up"},
        {"mlp.down_proj", "ffn_down"},
        // Qwen2-MoE's shared expert, which adapters name (its base models
        // are not converted here).
        {"mlp.shared_expert.gate_proj", "ffn_gate_shexp"}, {"mlp.shared_expert.up_proj", "ffn_up_shexp"},
        {"mlp.shared_expert.down_proj", "ffn_down_shexp"},
    };
    const auto it = layer.find(name.substr(dot + 1, suffix_at - dot - 1));
    if (it == layer.end())
        return std::nullopt;
    return "blk." + std::to_string(std::stoi(block)) + "." + it->second + name.substr(suffix_at);
}

// The shapes (rows first) a decoder tensor must have; the optional ones
// (biases, q/k norms, the output head) are checked when present.
std::optional<std::vector<std::int64_t>> decoder_expected_shape(const std::string& name, const DecoderShape& s) {
    const std::int64_t q_width = s.n_heads * s.head_dim;
    const std::int64_t kv_width = s.n_kv_heads * s.head_dim;
    if (name == "token_embd.weight" || name == "output.weight")
        return std::vector<std::int64_t>{s.n_vocab, s.n_embd};
    if (name == "output_norm.weight")
        return std::vector<std::int64_t>{s.n_embd};
    const std::size_t first_dot = name.find('.');
    const std::size_t second_dot = name.find('.', first_dot + 1);
    if (!name.starts_with("blk.") || second_dot == std::string::npos)
        return std::nullopt;
    if (std::stoll(name.substr(first_dot + 1, second_dot - first_dot - 1)) >= s.n_layers)
        return std::nullopt;
    const std::string rest = name.substr(second_dot + 1);
    static const std::set<std::string, std::less<>> norms = {"attn_norm.weight", "ffn_norm.weight"};
    if (norms.contains(rest))
        return std::vector<std::int64_t>{s.n_embd};
    if (rest == "attn_q_norm.weight" || rest == "attn_k_norm.weight")
        return std::vector<std::int64_t>{s.head_dim};
    const std::map<std::string, std::vector<std::int64_t>, std::less<>> shapes = {
        {"attn_q.weight", {q_width, s.n_embd}},     {"attn_q.bias", {q_width}},
        {"attn_k.weight", {kv_width, s.n_embd}},    {"attn_k.bias", {kv_width}},
        {"attn_v.weight", {kv_width, s.n_embd}},    {"attn_v.bias", {kv_width}},
        {"attn_output.weight", {s.n_embd, q_width}},
        {"ffn_gate.weight", {s.n_ff, s.n_embd}},    {"ffn_up.weight", {s.n_ff, s.n_embd}},
        {"ffn_down.weight", {s.n_embd, s.n_ff}},
    };
    const auto it = shapes.find(rest);
    if (it == shapes.end())
        return std::nullopt;
    return it->second;
}

int add_decoder_tensors(engine::GgufWriter& writer, const SafetensorsFiles& files, const DecoderFamily& family,
                        const DecoderShape& shape, ConvertedType type) {
    std::set<std::string> required = {"token_embd.weight", "output_norm.weight"};
    if (!shape.tied)
        required.insert("output.weight");
    for (std::int64_t i = 0; i < shape.n_layers; ++i)
        for (const char* name : {"attn_norm", "attn_q", "attn_k", "attn_v", "attn_output", "ffn_norm", "ffn_gate",
                                 "ffn_up", "ffn_down"})
            required.insert("blk." + std::to_string(i) + "." + name + ".weight");
    int n_tensors = 0;
    for (const auto& [hf_name, tensor] : files.tensors()) {
        const std::optional<std::string> name = decoder_tensor_name(hf_name);
        if (!name)
            throw ConvertError(tensor.file + ": cannot map tensor " + hf_name + " to a " +
                               std::string(family.architecture) + " tensor");
        if (name->empty() || (shape.tied && *name == "output.weight"))
            continue;
        const std::optional<std::vector<std::int64_t>> expected = decoder_expected_shape(*name, shape);
        if (!expected)
            throw ConvertError(tensor.file + ": tensor " + hf_name + " (" + *name + ") is not part of a " +
                               std::to_string(shape.n_layers) + "-layer " + std::string(family.architecture));
        // Matrices take the requested type; norms and biases stay f32.
        const bool stays_f32 = tensor.shape.size() < 2;
        const bool permute = family.permute_qk && (name->find(".attn_q.") != std::string::npos ||
                                                   name->find(".attn_k.") != std::string::npos);
        add_converted_tensor(writer, hf_name, tensor, *name, *expected,
                             type == ConvertedType::F16 && !stays_f32 ? GgmlType::F16 : GgmlType::F32,
                             permute ? shape.head_dim : 0);
        required.erase(*name);
        ++n_tensors;
    }
    if (!required.empty())
        throw ConvertError("the safetensors lack " + *required.begin() + " and " + std::to_string(required.size() - 1) +
                           " other tensors a " + std::string(family.architecture) + " needs");
    return n_tensors;
}

// general.architecture and general.name: the folder's name.
void add_general(engine::GgufWriter& writer, const std::string& architecture, const std::filesystem::path& dir) {
    writer.add_string("general.architecture", architecture);
    std::filesystem::path folder = std::filesystem::absolute(dir).lexically_normal();
    if (folder.filename().empty())  // "DIR/"
        folder = folder.parent_path();
    writer.add_string("general.name", name_of(folder));
}

// ---- PEFT LoRA adapters -----------------------------------------------------
//
// adapter_config.json + adapter_model.safetensors, tensors named
// base_model.model.<the base's module>.lora_A.weight (r, n_in) and
// .lora_B.weight (n_out, r), to llama.cpp's GGUF LoRA form (engine/lora.h),
// as convert_lora_to_gguf.py writes it. A mixture of experts' stacked
// expert tensors (target_parameters mlp.experts.gate_up_proj and down_proj,
// each wrapped around the last: <layer>.mlp.experts[.base_layer...]) hold
// every expert's pair at once: lora_A (n_expert·r, n_in), expert e's rows
// from e·r; lora_B (n_out, r·n_expert), expert e's column k at k·n_expert +
// e (PEFT's ParamWrapper). They become stacked GGUF pairs, gate_up_proj's
// split into ffn_gate_exps and ffn_up_exps (which share its A).

// The projections an adapter may target, by PEFT's module name, and the
// GGUF weights they become: those the engine adapts.
constexpr std::pair<std::string_view, std::string_view> kPeftTargets[] = {
    {"q_proj", "attn_q"},       {"k_proj", "attn_k"},   {"v_proj", "attn_v"},     {"o_proj", "attn_output"},
    {"gate_proj", "ffn_gate"},  {"up_proj", "ffn_up"},  {"down_proj", "ffn_down"},
};

std::string peft_target_names() {
    std::string names;
    for (const auto& [module, weight] : kPeftTargets)
        names += (names.empty() ? "" : ", ") + std::string(module);
    return names;
}

// The stacked expert tensors an adapter may target (target_parameters).
constexpr std::string_view kPeftExpertTargets[] = {"gate_up_proj", "down_proj"};

// Mixtures of experts whose adapters convert though their models do not
// (Mixtral's architecture is llama's).
constexpr std::string_view kExpertAdapterArchitectures[] = {"qwen2moe", "qwen3moe", "olmoe"};

struct PeftLora {
    std::int64_t rank = 0;
    double alpha = 0;
    bool rslora = false;
    bool rank_pattern = false;  // ranks that vary by module (rank_pattern)
};

// adapter_config.json's LoRA, refusing what a GGUF LoRA cannot hold.
PeftLora read_peft_config(const json& config) {
    auto fail = [](const std::string& what) { throw ConvertError("adapter_config.json: " + what); };
    const std::string peft_type = config_string(config, "peft_type", "");
    if (peft_type != "LORA")
        fail("peft_type " + (peft_type.empty() ? std::string("(none)") : peft_type) + " is not converted (LORA)");
    auto is_set = [&](const char* key) {
        const auto it = config.find(key);
        return it != config.end() && !it->is_null() && *it != false && !(it->is_structured() && it->empty());
    };
    if (is_set("use_dora"))
        fail("use_dora (DoRA) is not supported: its magnitude vectors have no GGUF LoRA form");
    if (is_set("modules_to_save"))
        fail("modules_to_save " + config["modules_to_save"].dump() +
             " is not supported: whole trained modules are not a LoRA");
    if (config_string(config, "bias", "none") != "none")
        fail("bias " + config["bias"].dump() + " is not supported (none)");
    if (is_set("lora_bias"))
        fail("lora_bias is not supported: a GGUF LoRA has no bias");
    if (is_set("fan_in_fan_out"))
        fail("fan_in_fan_out (Conv1D weights, GPT-2) is not supported");
    if (is_set("alpha_pattern"))
        fail("alpha_pattern is not supported: a GGUF LoRA has one alpha");
    for (const char* key : {"layer_replication", "use_qalora"})
        if (is_set(key))
            fail(std::string(key) + " is not supported");

    const json parameters = config.value("target_parameters", json());
    if (!parameters.is_null() && !parameters.is_array())
        fail("target_parameters " + parameters.dump() + " is not a list");
    for (const json& parameter : parameters.is_array() ? parameters : json::array()) {
        const std::string name = parameter.is_string() ? parameter.get<std::string>() : parameter.dump();
        if (std::ranges::find(kPeftExpertTargets, std::string_view(name).substr(name.rfind('.') + 1)) ==
            std::end(kPeftExpertTargets))
            fail("target parameter " + name + " cannot be mapped to a weight Folio adapts (mlp.experts.gate_up_proj, "
                 "mlp.experts.down_proj)");
    }
    const json targets = config.value("target_modules", json());
    if (targets.is_null() && is_set("target_parameters")) {
        // The experts alone.
    } else if (targets.is_array()) {
        for (const json& target : targets) {
            const std::string module = target.is_string() ? target.get<std::string>() : target.dump();
            const std::string last = module.substr(module.rfind('.') + 1);
            if (std::none_of(std::begin(kPeftTargets), std::end(kPeftTargets),
                             [&](const auto& known) { return known.first == last; }))
                fail("target module " + module + " cannot be mapped to a weight Folio adapts (" +
                     peft_target_names() + ")");
        }
    } else if (!targets.is_string() || targets.get<std::string>() != "all-linear") {
        fail("target_modules " + targets.dump() + " is neither a list of modules nor all-linear");
    }

    PeftLora lora;
    const auto r = config.find("r");
    if (r == config.end() || !r->is_number_integer() || r->get<std::int64_t>() <= 0)
        fail("r is not a positive whole number");
    lora.rank = r->get<std::int64_t>();
    const auto alpha = config.find("lora_alpha");
    if (alpha == config.end() || !alpha->is_number())
        fail("lora_alpha is not a number");
    lora.alpha = alpha->get<double>();
    lora.rslora = is_set("use_rslora");
    lora.rank_pattern = is_set("rank_pattern");
    // rsLoRA scales by alpha / sqrt(r), which one alpha can stand for only
    // when every module has the same rank.
    if (lora.rslora && lora.rank_pattern)
        fail("use_rslora with a rank_pattern is not supported: a GGUF LoRA has one alpha");
    return lora;
}

// Which half of a pair a PEFT tensor name holds: 'A' (".lora_A.weight"),
// 'B' (".lora_B.weight"), or 0.
char lora_half(const std::string& hf_name) {
    for (const char half : {'A', 'B'})
        if (hf_name.ends_with(std::string(".lora_") + half + ".weight")) return half;
    return 0;
}

// "<module>.lora_A.weight" under base_model.model.: the base weight's GGUF
// name and which of the pair it is ('A' or 'B'); nullopt for anything else.
std::optional<std::pair<std::string, char>> peft_tensor_name(const std::string& hf_name) {
    static constexpr std::string_view prefix = "base_model.model.";
    if (!hf_name.starts_with(prefix))
        return std::nullopt;
    const char which = lora_half(hf_name);
    if (which == 0)
        return std::nullopt;
    const std::string module =
        hf_name.substr(prefix.size(), hf_name.size() - prefix.size() - std::string_view(".lora_A.weight").size());
    const std::optional<std::string> name = decoder_tensor_name(module + ".weight");
    if (!name || name->empty())
        return std::nullopt;
    const std::string last = module.substr(module.rfind('.') + 1);
    if (std::none_of(std::begin(kPeftTargets), std::end(kPeftTargets),
                     [&](const auto& known) { return known.first == last; }))
        return std::nullopt;
    return std::pair{*name, which};
}

// "<layer>.mlp.experts[.base_layer...].lora_A.weight" under
// base_model.model.: the layer's block number, the wrapper's path (which
// pairs A with B) and which of the pair it is; nullopt for anything else.
struct PeftExpertTensor {
    std::string block;
    std::string wrapper;
    char which = 0;
};
std::optional<PeftExpertTensor> peft_expert_tensor(const std::string& hf_name) {
    static constexpr std::string_view prefix = "base_model.model.model.layers.";
    if (!hf_name.starts_with(prefix)) return std::nullopt;
    const char which = lora_half(hf_name);
    const std::size_t dot = hf_name.find('.', prefix.size());
    if (which == 0 || dot == std::string::npos) return std::nullopt;
    std::string_view rest = std::string_view(hf_name).substr(dot + 1);
    rest.remove_suffix(std::string_view(".lora_A.weight").size());
    if (!rest.starts_with("mlp.experts")) return std::nullopt;
    for (std::string_view tail = rest.substr(std::string_view("mlp.experts").size()); !tail.empty();
         tail.remove_prefix(std::string_view(".base_layer").size()))
        if (!tail.starts_with(".base_layer")) return std::nullopt;
    return PeftExpertTensor{hf_name.substr(prefix.size(), dot - prefix.size()), std::string(rest), which};
}

// A wrapper's pair as stacked GGUF pairs: gate_up_proj's as ffn_gate_exps
// and ffn_up_exps, down_proj's as ffn_down_exps, told apart by their
// shapes against the base's expert tensors. Returns the tensors queued.
int add_peft_expert_pair(engine::GgufWriter& writer, const engine::GgufFile& base, const std::string& block,
                         const std::string& hf_a, const SafeTensor& a, const std::string& hf_b, const SafeTensor& b,
                         const PeftLora& lora, GgmlType out_type) {
    const std::string blk = "blk." + block + ".";
    const engine::GgufTensor* gate = base.find_tensor(blk + "ffn_gate_exps.weight");
    const engine::GgufTensor* down = base.find_tensor(blk + "ffn_down_exps.weight");
    if (gate == nullptr || down == nullptr || gate->n_dims != 3 || down->n_dims != 3)
        throw ConvertError(a.file + ": tensor " + hf_a + " adapts the experts of layer " + block + ", which the base " +
                           "model does not hold as stacked ffn_gate_exps and ffn_down_exps tensors");
    const std::int64_t n_embd = gate->ne[0], n_ff = gate->ne[1], n_expert = gate->ne[2];
    if (a.shape.size() != 2 || b.shape.size() != 2 || a.shape[0] % n_expert != 0)
        throw ConvertError(a.file + ": the expert pair " + hf_a + " " + shape_text(a.shape) + " and " + hf_b + " " +
                           shape_text(b.shape) + " is not stacked for " + std::to_string(n_expert) + " experts");
    const std::int64_t rank = a.shape[0] / n_expert, n_in = a.shape[1], n_out = b.shape[0];
    if (b.shape[1] != rank * n_expert)
        throw ConvertError(a.file + ": tensor " + hf_b + " has shape " + shape_text(b.shape) + ", " + hf_a +
                           " implies " + shape_text({n_out, rank * n_expert}));
    if (!lora.rank_pattern && rank != lora.rank)
        throw ConvertError(a.file + ": tensor " + hf_a + " has rank " + std::to_string(rank) +
                           ", adapter_config.json's r is " + std::to_string(lora.rank));
    const bool is_gate_up = n_in == n_embd && n_out == 2 * n_ff;
    const bool is_down = n_in == n_ff && n_out == n_embd;
    if (is_gate_up == is_down)
        throw ConvertError(a.file + ": the expert pair " + hf_a + " " + shape_text(a.shape) + " fits neither the " +
                           "experts' gate_up_proj " + shape_text({2 * n_ff, n_embd}) + " nor their down_proj " +
                           shape_text({n_embd, n_ff}));
    require_float(hf_a, a);
    require_float(hf_b, b);
    // A is already expert by expert: (n_expert, r, n_in).
    const auto add_a = [&](const std::string& weight) {
        const std::vector<std::int64_t> ne = {n_in, rank, n_expert};
        writer.add_tensor(weight + ".lora_a", out_type, ne,
                          [source = &a, out_type](std::span<std::uint8_t> out) { convert_elements(*source, out_type, out); });
    };
    // B's rows [first, first + rows) of each expert: (n_expert, rows, r).
    const auto add_b = [&](const std::string& weight, std::int64_t first, std::int64_t rows) {
        const std::vector<std::int64_t> ne = {rank, rows, n_expert};
        writer.add_tensor(weight + ".lora_b", out_type, ne,
                          [source = &b, out_type, first, rows, rank, n_expert](std::span<std::uint8_t> out) {
                              const std::size_t size = out_type == GgmlType::F16 ? 2 : 4;
                              std::vector<std::uint8_t> all(static_cast<std::size_t>(source->n_elements()) * size);
                              convert_elements(*source, out_type, all);
                              std::size_t at = 0;
                              for (std::int64_t e = 0; e < n_expert; ++e)
                                  for (std::int64_t o = first; o < first + rows; ++o)
                                      for (std::int64_t k = 0; k < rank; ++k, at += size)
                                          std::memcpy(out.data() + at,
                                                      all.data() + static_cast<std::size_t>(o * rank * n_expert +
                                                                                            k * n_expert + e) * size,
                                                      size);
                          });
    };
    if (is_down) {
        add_a(blk + "ffn_down_exps.weight");
        add_b(blk + "ffn_down_exps.weight", 0, n_embd);
        return 2;
    }
    add_a(blk + "ffn_gate_exps.weight");
    add_b(blk + "ffn_gate_exps.weight", 0, n_ff);
    add_a(blk + "ffn_up_exps.weight");
    add_b(blk + "ffn_up_exps.weight", n_ff, n_ff);
    return 4;
}

// Queues the adapter in writer, which reads its tensors from files (mapped
// here) when it writes: files must outlive the writing.
ConvertHfResult convert_peft_adapter(const ConvertHfRequest& request, engine::GgufWriter& writer,
                                     std::optional<SafetensorsFiles>& files) {
    const std::filesystem::path& dir = request.model_dir;
    if (request.base.empty())
        throw ConvertError(dir.string() + " is a PEFT adapter: name its base model with --base MODEL.gguf");
    const json config = read_json(dir / "adapter_config.json");
    if (!config.is_object())
        throw ConvertError("adapter_config.json is not a JSON object");
    const PeftLora lora = read_peft_config(config);
    const engine::GgufFile base = engine::GgufFile::open(request.base);
    const std::string architecture(base.architecture());
    const auto family = std::find_if(std::begin(kDecoderFamilies), std::end(kDecoderFamilies),
                                      [&](const DecoderFamily& f) { return f.architecture == architecture; });
    if (family == std::end(kDecoderFamilies) &&
        std::ranges::find(kExpertAdapterArchitectures, architecture) == std::end(kExpertAdapterArchitectures))
        throw ConvertError(name_of(request.base) + ": adapters for " + architecture +
                           " models are not converted (llama, qwen2, qwen3, qwen2moe, qwen3moe, olmoe)");
    const bool permute_qk = family != std::end(kDecoderFamilies) && family->permute_qk;
    // llama's q and k rows are permuted in the base file, so B's rows (the
    // same output features) are permuted alike; A's rows are the rank.
    const std::int64_t head_dim = base.get_u32(
        architecture + ".attention.key_length",
        base.get_u32(architecture + ".embedding_length") / base.get_u32(architecture + ".attention.head_count"));

    files.emplace(dir);
    add_general(writer, architecture, dir);
    std::map<std::string, std::int64_t> ranks;  // GGUF base weight -> rank, once for A and once for B
    std::map<std::string, int> halves;           // GGUF base weight -> 1 (A), 2 (B), 3 (both)
    ConvertHfResult result;
    result.hf_architecture = "PEFT LoRA";
    result.architecture = architecture;
    const GgmlType out_type = request.type == ConvertedType::F16 ? GgmlType::F16 : GgmlType::F32;
    // The expert wrappers' halves, by block and wrapper path: (A, B).
    std::map<std::pair<std::string, std::string>, std::pair<const std::string*, const std::string*>> expert_pairs;
    for (const auto& [hf_name, tensor] : files->tensors()) {
        if (const std::optional<PeftExpertTensor> expert = peft_expert_tensor(hf_name)) {
            auto& pair = expert_pairs[{expert->block, expert->wrapper}];
            (expert->which == 'A' ? pair.first : pair.second) = &hf_name;
            continue;
        }
        const std::optional<std::pair<std::string, char>> mapped = peft_tensor_name(hf_name);
        if (!mapped)
            throw ConvertError(tensor.file + ": cannot map tensor " + hf_name + " to a lora_a or lora_b of a weight "
                               "Folio adapts (" + peft_target_names() + ")");
        const auto& [weight, which] = *mapped;
        const engine::GgufTensor* target = base.find_tensor(weight);
        if (target == nullptr || target->n_dims != 2)
            throw ConvertError(tensor.file + ": tensor " + hf_name + " adapts " + weight + ", which " +
                               name_of(request.base) + " does not have");
        if (tensor.shape.size() != 2)
            throw ConvertError(tensor.file + ": tensor " + hf_name + " has shape " + shape_text(tensor.shape) +
                               ", not a matrix");
        const std::int64_t rank = which == 'A' ? tensor.shape[0] : tensor.shape[1];
        if (!lora.rank_pattern && rank != lora.rank)
            throw ConvertError(tensor.file + ": tensor " + hf_name + " has rank " + std::to_string(rank) +
                               ", adapter_config.json's r is " + std::to_string(lora.rank));
        if (const auto [known, fresh] = ranks.emplace(weight, rank); !fresh && known->second != rank)
            throw ConvertError(tensor.file + ": the lora_A and lora_B of " + weight + " have ranks " +
                               std::to_string(known->second) + " and " + std::to_string(rank));
        halves[weight] |= which == 'A' ? 1 : 2;
        const std::int64_t n_in = target->ne[0], n_out = target->ne[1];
        const bool permute = permute_qk && (weight.find(".attn_q.") != std::string::npos ||
                                            weight.find(".attn_k.") != std::string::npos);
        const std::vector<std::int64_t> expected =
            which == 'A' ? std::vector<std::int64_t>{rank, n_in} : std::vector<std::int64_t>{n_out, rank};
        add_converted_tensor(writer, hf_name, tensor, weight + (which == 'A' ? ".lora_a" : ".lora_b"), expected,
                             out_type, which == 'B' && permute ? head_dim : 0,
                             name_of(request.base) + "'s " + weight + " " + shape_text({n_out, n_in}));
        ++result.n_tensors;
    }
    for (const auto& [where, pair] : expert_pairs) {
        const auto& [a, b] = pair;
        if (a == nullptr || b == nullptr)
            throw ConvertError("the safetensors hold the lora_" + std::string(a ? "A" : "B") + " of layer " +
                               where.first + "'s " + where.second + " without its lora_" + (a ? "B" : "A"));
        result.n_tensors += add_peft_expert_pair(writer, base, where.first, *a, files->tensors().at(*a), *b,
                                                 files->tensors().at(*b), lora, out_type);
    }
    for (const auto& [weight, half] : halves)
        if (half != 3)
            throw ConvertError("the safetensors hold the lora_" + std::string(half == 1 ? "A" : "B") + " of " + weight +
                               " without its lora_" + (half == 1 ? "B" : "A"));
    if (result.n_tensors == 0)
        throw ConvertError(dir.string() + ": the safetensors hold no LoRA tensors");
    writer.add_string("general.type", "adapter");
    writer.add_string("adapter.type", "lora");
    // The engine scales by alpha / r; rsLoRA's alpha / sqrt(r) is that with
    // alpha * sqrt(r).
    const double alpha = lora.rslora ? lora.alpha * std::sqrt(static_cast<double>(lora.rank)) : lora.alpha;
    writer.add_f32("adapter.lora.alpha", static_cast<float>(alpha));
    return result;
}

// config.json's architecture, or its model_type where it names none.
std::string hf_architecture(const json& config) {
    if (const auto it = config.find("architectures"); it != config.end() && it->is_array() && !it->empty() &&
                                                       (*it)[0].is_string())
        return (*it)[0].get<std::string>();
    return config_string(config, "model_type", "");
}

}  // namespace

ConvertHfResult convert_hf(const ConvertHfRequest& request) {
    const std::filesystem::path& dir = request.model_dir;
    if (!std::filesystem::is_directory(dir))
        throw ConvertError(dir.string() + " is not a folder");
    engine::GgufWriter writer;
    std::optional<SafetensorsFiles> files;  // mapped until the writer has read them
    ConvertHfResult result;
    if (std::filesystem::is_regular_file(dir / "adapter_config.json")) {
        result = convert_peft_adapter(request, writer, files);
    } else {
        if (!request.base.empty())
            throw ConvertError("--base names a PEFT adapter's base model, and " + dir.string() +
                               " has no adapter_config.json");
        if (!std::filesystem::is_regular_file(dir / "config.json"))
            throw ConvertError(dir.string() + " has no config.json (not a Hugging Face model folder)");
        const json config = read_json(dir / "config.json");
        if (!config.is_object())
            throw ConvertError("config.json is not a JSON object");

        result.hf_architecture = hf_architecture(config);
        static const std::set<std::string, std::less<>> bert_names = {"BertModel", "BertForMaskedLM",
                                                                      "BertForSequenceClassification", "bert"};
        const DecoderFamily* decoder = nullptr;
        for (const DecoderFamily& family : kDecoderFamilies)
            if (family.hf_architecture == result.hf_architecture)
                decoder = &family;
        if (!decoder && !bert_names.contains(result.hf_architecture))
            throw ConvertError("architecture " +
                               (result.hf_architecture.empty() ? "(none named)" : result.hf_architecture) +
                               " is not supported (folio convert hf reads BertModel, BertForMaskedLM, "
                               "BertForSequenceClassification, LlamaForCausalLM, Qwen2ForCausalLM, "
                               "Qwen3ForCausalLM, and PEFT LoRA adapters)");
        result.architecture = decoder ? std::string(decoder->architecture) : "bert";

        files.emplace(dir);
        add_general(writer, result.architecture, dir);
        if (decoder) {
            const DecoderShape shape = read_decoder_shape(config);
            add_decoder_metadata(writer, dir, config, *decoder, shape, request.type);
            result.n_tensors = add_decoder_tensors(writer, *files, *decoder, shape, request.type);
        } else {
            const BertShape shape =
                read_bert_shape(config, result.hf_architecture == "BertForSequenceClassification");
            add_bert_metadata(writer, dir, config, shape, request.type);
            result.n_tensors = add_bert_tensors(writer, *files, shape, request.type);
        }
    }

    // Written beside the target and renamed over it: never a half-written --out.
    const std::filesystem::path partial =
        request.out.parent_path() / ("." + name_of(request.out) + ".partial-" + std::to_string(getpid()));
    writer.write(partial);
    std::error_code error;
    std::filesystem::rename(partial, request.out, error);
    if (error) {
        std::filesystem::remove(partial, error);
        throw ConvertError("cannot move the converted model to " + request.out.string());
    }
    result.file_bytes = std::filesystem::file_size(request.out);
    return result;
}

}  // namespace folio::app
