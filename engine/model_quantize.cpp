#include "engine/model_quantize.h"

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstdio>
#include <random>
#include <system_error>

#include "engine/model.h"
#include "engine/model_zoo.h"
#include "engine/quant.h"

namespace folio::engine {

namespace {

// general.file_type values: llama.cpp's enum llama_ftype. A single K-quant
// is labelled as the _S mix llama.cpp names closest to it.
constexpr QuantMix kPure = QuantMix::Pure;
constexpr QuantScheme kSchemes[] = {
    {"F32", GgmlType::F32, kPure, 0},     {"F16", GgmlType::F16, kPure, 1},     {"BF16", GgmlType::BF16, kPure, 32},
    {"Q4_0", GgmlType::Q4_0, kPure, 2},   {"Q4_1", GgmlType::Q4_1, kPure, 3},   {"Q5_0", GgmlType::Q5_0, kPure, 8},
    {"Q5_1", GgmlType::Q5_1, kPure, 9},   {"Q8_0", GgmlType::Q8_0, kPure, 7},   {"Q2_K", GgmlType::Q2_K, kPure, 10},
    {"Q3_K", GgmlType::Q3_K, kPure, 11},  {"Q4_K", GgmlType::Q4_K, kPure, 14},  {"Q5_K", GgmlType::Q5_K, kPure, 16},
    {"Q6_K", GgmlType::Q6_K, kPure, 18},  {"Q4_K_S", GgmlType::Q4_K, QuantMix::Small, 14},
    {"Q5_K_S", GgmlType::Q5_K, QuantMix::Small, 16}, {"Q4_K_M", GgmlType::Q4_K, QuantMix::Medium, 15},
    {"Q5_K_M", GgmlType::Q5_K, QuantMix::Medium, 17},
};


bool is_float_type(GgmlType type) {
    return type == GgmlType::F32 || type == GgmlType::F16 || type == GgmlType::BF16;
}

// llama.cpp's use_more_bits: the first and last eighth of the layers, and
// every third layer between.
bool use_more_bits(int layer, int n_layers) {
    return layer < n_layers / 8 || layer >= 7 * n_layers / 8 || (layer - n_layers / 8) % 3 == 2;
}

// llama.cpp's fallback for a row that is not a whole number of blocks.
GgmlType fallback_type(GgmlType type, std::int64_t ne0) {
    if (ne0 % quant_block_size(type) == 0)
        return type;
    GgmlType fallback = GgmlType::F16;
    switch (type) {
    case GgmlType::Q2_K:
    case GgmlType::Q3_K: fallback = GgmlType::Q4_0; break;
    case GgmlType::Q4_K: fallback = GgmlType::Q5_0; break;
    case GgmlType::Q5_K: fallback = GgmlType::Q5_1; break;
    case GgmlType::Q6_K: fallback = GgmlType::Q8_0; break;
    default: break;
    }
    return ne0 % quant_block_size(fallback) == 0 ? fallback : GgmlType::F16;
}

std::string upper(std::string_view text) {
    std::string out(text);
    std::transform(out.begin(), out.end(), out.begin(), [](unsigned char c) { return std::toupper(c); });
    return out;
}

std::string gigabytes(std::uintmax_t bytes) {
    char text[32];
    std::snprintf(text, sizeof text, "%.2f GB", static_cast<double>(bytes) / 1e9);
    return text;
}

}  // namespace

std::span<const std::string_view> quant_scheme_names() {
    static const std::vector<std::string_view> names = [] {
        std::vector<std::string_view> all;
        for (const QuantScheme& scheme : kSchemes)
            all.push_back(scheme.name);
        return all;
    }();
    return names;
}

QuantScheme quant_scheme(std::string_view name) {
    const std::string wanted = upper(name);
    for (const QuantScheme& scheme : kSchemes)
        if (scheme.name == wanted)
            return scheme;
    std::string known;
    for (const QuantScheme& scheme : kSchemes)
        known += (known.empty() ? "" : " ") + std::string(scheme.name);
    throw ModelError("unknown weight type '" + std::string(name) + "' (known: " + known + ")");
}

QuantPlan::QuantPlan(QuantScheme scheme, std::span<const std::string> tensor_names, int n_expert)
    : scheme_(std::move(scheme)), n_expert_(n_expert) {
    for (const std::string& name : tensor_names) {
        n_layers_ = std::max(n_layers_, tensor_block_index(name) + 1);
        has_output_ = has_output_ || name == "output.weight";
    }
}

bool QuantPlan::is_quantizable(std::string_view name, std::span<const std::int64_t> ne) {
    return ne.size() >= 2 && name.ends_with("weight") && !name.ends_with("_norm.weight") &&
           name.find("ffn_gate_inp.weight") == std::string_view::npos && name != "position_embd.weight" &&
           name != "token_types.weight";
}

GgmlType QuantPlan::type_of(std::string_view name, std::span<const std::int64_t> ne) const {
    const GgmlType base = scheme_.base;
    if (is_float_type(base))
        return base;
    GgmlType type = base;
    if (scheme_.mix != QuantMix::Pure) {
        const int layer = tensor_block_index(name);
        const bool is_head = name == "output.weight" || (!has_output_ && name == "token_embd.weight");
        const auto named = [&](std::string_view part) { return name.find(part) != std::string_view::npos; };
        // "For the 8-expert model, bumping this to Q8_0 trades just ~128MB."
        const bool eight_experts = n_expert_ == 8;
        const bool medium = scheme_.mix == QuantMix::Medium;
        if (is_head)
            type = ne[0] % quant_block_size(base) != 0 ? GgmlType::Q8_0 : GgmlType::Q6_K;
        else if (eight_experts && (named("attn_v.weight") || named("attn_k.weight")))
            type = GgmlType::Q8_0;
        else if (eight_experts && named("attn_output.weight") && base == GgmlType::Q4_K)
            type = GgmlType::Q5_K;
        else if (medium && (named("attn_v.weight") || named("ffn_down")) && layer >= 0 && use_more_bits(layer, n_layers_))
            type = GgmlType::Q6_K;
        else if (!medium && base == GgmlType::Q4_K && layer >= 0 &&
                 ((named("attn_v.weight") && layer < 4) || (named("ffn_down") && layer < n_layers_ / 8)))
            type = GgmlType::Q5_K;
    }
    return fallback_type(type, ne[0]);
}

void encode_rows(ThreadPool& pool, GgmlType type, std::int64_t ne0, std::int64_t n_rows,
                 const std::function<void(std::int64_t row, float* out)>& make_row, std::span<std::uint8_t> dst) {
    const std::size_t row_bytes = quant_row_bytes(type, ne0);
    if (dst.size() != row_bytes * static_cast<std::size_t>(n_rows))
        throw ModelError("encode_rows: " + std::to_string(dst.size()) + " bytes for " + std::to_string(n_rows) +
                         " rows of " + std::to_string(row_bytes));
    // Chunks of about 64k elements: enough work to outweigh a chunk's start.
    const std::int64_t min_chunk = std::max<std::int64_t>(1, 65536 / ne0);
    pool.parallel_for(n_rows, min_chunk, [&](std::int64_t begin, std::int64_t end) {
        std::vector<float> row(static_cast<std::size_t>(ne0));
        for (std::int64_t r = begin; r < end; ++r) {
            make_row(r, row.data());
            quantize_row(type, row.data(), dst.data() + static_cast<std::size_t>(r) * row_bytes, ne0);
        }
    });
}

void write_model_file(const GgufWriter& writer, const std::filesystem::path& path) {
    const std::filesystem::path folder = path.has_parent_path() ? path.parent_path() : std::filesystem::path(".");
    const std::uint64_t size = writer.file_size();
    const std::uintmax_t available = std::filesystem::space(folder).available;
    if (available < size)
        throw std::system_error(ENOSPC, std::generic_category(),
                                "not enough disk space for " + path.string() + ": it needs " + gigabytes(size) +
                                    ", " + gigabytes(available) + " free");
    char suffix[24];
    std::snprintf(suffix, sizeof suffix, ".partial-%08x", static_cast<unsigned>(std::random_device{}()));
    const std::filesystem::path partial = folder / ("." + path.filename().string() + suffix);
    writer.write(partial);  // removes its partial file when it fails
    std::error_code error;
    std::filesystem::rename(partial, path, error);
    if (error) {
        std::error_code ignored;
        std::filesystem::remove(partial, ignored);
        throw std::system_error(error, "cannot replace " + path.string());
    }
}

void quantize_model(const GgufFile& in, const QuantScheme& scheme, const std::filesystem::path& out,
                    ThreadPool& pool) {
    std::vector<std::string> names;
    for (const GgufTensor& tensor : in.tensors())
        names.emplace_back(tensor.name);
    const QuantPlan plan(scheme, names,
                         static_cast<int>(in.find_u32(std::string(in.architecture()) + ".expert_count").value_or(0)));

    GgufWriter writer;
    for (const GgufKeyValue& entry : in.metadata())
        if (entry.key != "general.file_type" && entry.key != "general.quantization_version")
            writer.add_value(std::string(entry.key), entry.value);
    writer.add_u32("general.file_type", scheme.file_type);
    if (!is_float_type(scheme.base))
        writer.add_u32("general.quantization_version", 2);  // GGML_QNT_VERSION

    for (const GgufTensor& tensor : in.tensors()) {
        const std::span<const std::int64_t> ne(tensor.ne.data(), tensor.n_dims);
        const GgmlType type = QuantPlan::is_quantizable(tensor.name, ne) ? plan.type_of(tensor.name, ne) : tensor.type;
        if (type == tensor.type) {
            writer.add_tensor(std::string(tensor.name), type, ne, [&tensor](std::span<std::uint8_t> data) {
                std::copy(tensor.data.begin(), tensor.data.end(), data.begin());
            });
            continue;
        }
        if (!has_quant_kernels(tensor.type))
            throw ModelError(in.source() + ": tensor " + std::string(tensor.name) + " has type " +
                             std::string(tensor.type_name()) + ", which Folio cannot convert");
        const std::int64_t n_rows = tensor.n_elements() / tensor.ne[0];
        auto dequantized_row = [&tensor](std::int64_t row, float* values) {
            dequantize_row(tensor.type, tensor.data.data() + static_cast<std::size_t>(row) * tensor.row_bytes, values,
                           tensor.ne[0]);
        };
        const std::int64_t ne0 = tensor.ne[0];
        writer.add_tensor(std::string(tensor.name), type, ne, [=, &pool](std::span<std::uint8_t> data) {
            encode_rows(pool, type, ne0, n_rows, dequantized_row, data);
        });
    }
    write_model_file(writer, out);
}

}  // namespace folio::engine
