#include "engine/random_model.h"

#include <algorithm>
#include <cmath>
#include <string>
#include <variant>
#include <vector>

#include "engine/model.h"

namespace folio::engine {

namespace {

// SplitMix64 (Steele, Lea, Flood 2014): a small generator whose output is
// fixed by its definition, unlike std::normal_distribution's, which differs
// between standard libraries.
class SplitMix64 {
public:
    explicit SplitMix64(std::uint64_t state) : state_(state) {}

    std::uint64_t next() {
        std::uint64_t z = (state_ += 0x9e3779b97f4a7c15ull);
        z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
        z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
        return z ^ (z >> 31);
    }

private:
    std::uint64_t state_;
};

// FNV-1a: a tensor's stream depends on its name, not on its place in the file.
std::uint64_t name_hash(std::string_view name) {
    std::uint64_t hash = 0xcbf29ce484222325ull;
    for (const char c : name)
        hash = (hash ^ static_cast<unsigned char>(c)) * 0x100000001b3ull;
    return hash;
}

// n values of mean 0 and standard deviation stddev, near-normal: each is the
// sum of the four 16-bit uniforms of one 64-bit draw (Irwin–Hall), which has
// the normal's bell shape to within a few percent and no tail past 3.46σ, at
// a fraction of Box–Muller's cost (an 8B model draws 8·10⁹ of them). Row r
// of a tensor has its own stream, so rows can be made on any thread in any
// order.
void normal_row(std::uint64_t stream, float stddev, float* out, std::int64_t n) {
    SplitMix64 random(stream);
    // Four uniforms on [0, 65535]: mean 4 · 32767.5, variance 4 · (65536² - 1) / 12.
    constexpr double mean = 4 * 32767.5;
    const double scale = stddev / std::sqrt(4 * (65536.0 * 65536.0 - 1) / 12);
    for (std::int64_t i = 0; i < n; ++i) {
        const std::uint64_t bits = random.next();
        const std::uint64_t sum = (bits & 0xffff) + ((bits >> 16) & 0xffff) + ((bits >> 32) & 0xffff) + (bits >> 48);
        out[i] = static_cast<float>((static_cast<double>(sum) - mean) * scale);
    }
}

std::uint64_t mix(std::uint64_t a, std::uint64_t b) {
    return SplitMix64(a ^ (b * 0x9e3779b97f4a7c15ull)).next();
}

// Row `row` (ne[0] values) of a tensor whose random stream is `stream`.
void fill_row(const TensorLayout& tensor, std::uint64_t stream, std::int64_t row, float* out) {
    const std::int64_t ne0 = tensor.ne[0];
    switch (tensor.init) {
    case TensorInit::Weight:
        normal_row(mix(stream, static_cast<std::uint64_t>(row)), 1.f / std::sqrt(static_cast<float>(ne0)), out, ne0);
        break;
    case TensorInit::Norm: std::fill(out, out + ne0, 1.f); break;
    case TensorInit::Bias: std::fill(out, out + ne0, 0.f); break;
    case TensorInit::Values: std::copy_n(tensor.values.begin() + row * ne0, ne0, out); break;
    }
}

}  // namespace

void write_random_model(const ModelLayout& layout, const RandomModelOptions& options,
                        const std::filesystem::path& path, ThreadPool& pool) {
    std::vector<const TensorLayout*> tensors;
    int layout_layers = 0;
    for (const TensorLayout& tensor : layout.tensors) {
        const int block = tensor_block_index(tensor.name);
        layout_layers = std::max(layout_layers, block + 1);
        if (options.n_layers <= 0 || block < options.n_layers)
            tensors.push_back(&tensor);
        if (tensor.init == TensorInit::Values && static_cast<std::int64_t>(tensor.values.size()) != tensor.n_elements())
            throw ModelError(layout.name + ": tensor " + tensor.name + " has " + std::to_string(tensor.values.size()) +
                             " values for " + std::to_string(tensor.n_elements()) + " elements");
    }
    if (options.n_layers > layout_layers)
        throw ModelError(layout.name + " has " + std::to_string(layout_layers) + " layers, not " +
                         std::to_string(options.n_layers));

    std::vector<std::string> names;
    for (const TensorLayout* tensor : tensors)
        names.push_back(tensor->name);
    int n_expert = 0;
    for (const MetadataEntry& entry : layout.metadata)
        if (entry.key == layout.architecture + ".expert_count")
            n_expert = static_cast<int>(std::get<std::uint64_t>(entry.value.data));
    const QuantPlan plan(options.scheme, names, n_expert);

    GgufWriter writer;
    const std::string block_count_key = layout.architecture + ".block_count";
    for (const MetadataEntry& entry : layout.metadata) {
        if (entry.key == block_count_key && options.n_layers > 0)
            writer.add_u32(entry.key, static_cast<std::uint32_t>(options.n_layers));
        else
            writer.add_value(entry.key, entry.value);
    }
    writer.add_u32("general.file_type", options.scheme.file_type);
    if (options.scheme.base != GgmlType::F32 && options.scheme.base != GgmlType::F16 &&
        options.scheme.base != GgmlType::BF16)
        writer.add_u32("general.quantization_version", 2);  // GGML_QNT_VERSION

    std::uint64_t bytes_done = 0;
    std::uint64_t bytes_total = 0;  // known once every tensor is added
    for (const TensorLayout* tensor : tensors) {
        // As convert_hf_to_gguf.py keeps them: vectors, routers and BERT's
        // small position and type tables in F32.
        const bool quantizable = QuantPlan::is_quantizable(tensor->name, tensor->ne);
        const GgmlType type = quantizable ? plan.type_of(tensor->name, tensor->ne) : GgmlType::F32;
        const std::uint64_t stream = mix(options.seed, name_hash(tensor->name));
        auto make_row = [tensor, stream](std::int64_t row, float* out) { fill_row(*tensor, stream, row, out); };
        const std::int64_t ne0 = tensor->ne[0];
        const std::int64_t n_rows = tensor->n_elements() / ne0;
        auto fill = [&, type, ne0, n_rows, make_row](std::span<std::uint8_t> data) {
            encode_rows(pool, type, ne0, n_rows, make_row, data);
            bytes_done += data.size();
            if (options.on_progress)
                options.on_progress(bytes_done, bytes_total);
        };
        writer.add_tensor(tensor->name, type, tensor->ne, fill);
    }
    bytes_total = writer.file_size();
    write_model_file(writer, path);
}

}  // namespace folio::engine
