#include "engine/lora.h"

#include <algorithm>
#include <map>
#include <string>
#include <tuple>

#include "engine/model.h"
#include "engine/model_loader.h"
#include "engine/quant.h"

namespace folio::engine {

namespace {

constexpr std::string_view kSuffixA = ".lora_a";
constexpr std::string_view kSuffixB = ".lora_b";

std::string shape_text(std::int64_t rows, std::int64_t cols) {
    return "(" + std::to_string(rows) + ", " + std::to_string(cols) + ")";
}

// A pair's tensor as matrices, its type checked for matmul kernels: one
// matrix, or for a target of n_expert > 0 stacked experts, one per expert.
std::vector<WeightMatrix> lora_matrices(const GgufFile& file, const GgufTensor& tensor, std::int64_t n_expert) {
    const std::string name(tensor.name);
    if (n_expert == 0) {
        if (tensor.n_dims != 2)
            throw ModelError(file.source() + ": tensor " + name + " has shape " + tensor_shape_text(tensor) +
                             ", not a matrix");
        // The expected shape is the tensor's own: only the type is in question here.
        return {weight_matrix(file, name, tensor.ne[1], tensor.ne[0])};
    }
    if (tensor.n_dims != 3 || tensor.ne[2] != n_expert)
        throw ModelError(file.source() + ": tensor " + name + " has shape " + tensor_shape_text(tensor) +
                         ", not the " + std::to_string(n_expert) + " stacked matrices of its experts");
    return expert_matrices(file, name, n_expert, tensor.ne[1], tensor.ne[0]);
}

}  // namespace

std::shared_ptr<const LoraAdapter> LoraAdapter::open(const std::filesystem::path& path, const Model& base) {
    return load(GgufFile::open(path), base);
}

std::shared_ptr<const LoraAdapter> LoraAdapter::load(const GgufFile& file, const Model& base) {
    const std::string& source = file.source();
    const std::optional<std::string_view> type = file.find_string("general.type");
    if (type != "adapter")
        throw ModelError(source + " is not a LoRA adapter (general.type is " +
                         (type ? "\"" + std::string(*type) + "\"" : std::string("missing")) + ")");
    const std::optional<std::string_view> adapter_type = file.find_string("adapter.type");
    if (adapter_type != "lora")
        throw ModelError(source + " is " +
                         (adapter_type ? "a \"" + std::string(*adapter_type) + "\" adapter"
                                       : std::string("an adapter of no adapter.type")) +
                         ", not LoRA");
    const std::string architecture(file.architecture());
    if (architecture != base.config().architecture)
        throw ModelError(source + " is an adapter for " + architecture + ", the model is " +
                         base.config().architecture);

    std::shared_ptr<LoraAdapter> adapter(new LoraAdapter(file));
    adapter->architecture_ = architecture;
    adapter->alpha_ = file.get_f32("adapter.lora.alpha", 0.f);

    // Pair each lora_a with its lora_b by the base weight they adapt.
    struct Pair {
        const GgufTensor* a = nullptr;
        const GgufTensor* b = nullptr;
    };
    std::map<std::string, Pair> pairs;
    for (const GgufTensor& tensor : adapter->file_.tensors()) {
        const std::string_view name = tensor.name;
        if (name.ends_with(kSuffixA))
            pairs[std::string(name.substr(0, name.size() - kSuffixA.size()))].a = &tensor;
        else if (name.ends_with(kSuffixB))
            pairs[std::string(name.substr(0, name.size() - kSuffixB.size()))].b = &tensor;
        else
            throw ModelError(source + ": tensor " + std::string(name) + " is neither a .lora_a nor a .lora_b");
    }
    if (pairs.empty())
        throw ModelError(source + " has no LoRA tensors");

    for (const auto& [target, pair] : pairs) {
        if (!pair.a || !pair.b)
            throw ModelError(source + ": " + target + (pair.a ? ".lora_a has no .lora_b" : ".lora_b has no .lora_a"));
        const auto adaptable = base.adaptable_weights().find(target);
        if (adaptable == base.adaptable_weights().end())
            throw ModelError(source + ": tensor " + std::string(pair.a->name) + " adapts " + target +
                             ", which is not among the model's adaptable weights (attention projections and "
                             "feed-forward matrices)");
        const WeightShape& w = adaptable->second;
        const std::vector<WeightMatrix> stacked_a = lora_matrices(adapter->file_, *pair.a, w.n_expert);
        const std::vector<WeightMatrix> stacked_b = lora_matrices(adapter->file_, *pair.b, w.n_expert);
        const WeightMatrix& a = stacked_a.front();
        const WeightMatrix& b = stacked_b.front();
        if (a.rows != b.cols)
            throw ModelError(source + ": " + target + " has a lora_a of rank " + std::to_string(a.rows) + " " +
                             shape_text(a.rows, a.cols) + " but a lora_b of rank " + std::to_string(b.cols) + " " +
                             shape_text(b.rows, b.cols));
        const std::int64_t rank = a.rows;
        for (const auto& [matrix, expected_rows, expected_cols, name] :
             {std::tuple{a, rank, w.cols, pair.a->name}, std::tuple{b, w.rows, rank, pair.b->name}})
            if (matrix.rows != expected_rows || matrix.cols != expected_cols)
                throw ModelError(source + ": tensor " + std::string(name) + " has shape " +
                                 shape_text(matrix.rows, matrix.cols) + ", which does not fit " + target + " of shape " +
                                 shape_text(w.rows, w.cols) + ": expected " +
                                 shape_text(expected_rows, expected_cols));
        std::vector<LoraWeight>& weights = adapter->weights_[target];
        for (std::size_t e = 0; e < stacked_a.size(); ++e) weights.push_back(LoraWeight{stacked_a[e], stacked_b[e]});
    }
    return adapter;
}

const LoraWeight* LoraAdapter::find(std::string_view base_weight, std::int32_t expert) const {
    const auto it = weights_.find(base_weight);
    if (it == weights_.end()) return nullptr;
    if (expert < 0) return it->second.size() == 1 ? &it->second.front() : nullptr;
    const auto at = static_cast<std::size_t>(expert);
    return at < it->second.size() ? &it->second[at] : nullptr;
}

WidenedLoraPair widen_lora_pair(const LoraWeight& pair, std::int64_t rank_multiple) {
    const std::int64_t rank = pair.a.rows;
    const std::int64_t n_in = pair.a.cols;
    const std::int64_t n_out = pair.b.rows;
    WidenedLoraPair widened;
    widened.rank = (rank + rank_multiple - 1) / rank_multiple * rank_multiple;
    widened.a.assign(static_cast<std::size_t>(widened.rank * n_in), 0.f);
    widened.b.assign(static_cast<std::size_t>(n_out * widened.rank), 0.f);
    for (std::int64_t r = 0; r < rank; ++r)
        dequantize_row(pair.a.type, pair.a.data + r * pair.a.row_bytes, widened.a.data() + r * n_in, n_in);
    for (std::int64_t o = 0; o < n_out; ++o)
        dequantize_row(pair.b.type, pair.b.data + o * pair.b.row_bytes, widened.b.data() + o * widened.rank, rank);
    return widened;
}

float LoraAdapter::scale(const LoraWeight& weight, float user_scale) const {
    return alpha_ != 0.f ? user_scale * alpha_ / static_cast<float>(weight.a.rows) : user_scale;
}

bool LoraAdapter::fits(const Model& model) const {
    if (architecture_ != model.config().architecture)
        return false;
    for (const auto& [target, weights] : weights_) {
        const auto it = model.adaptable_weights().find(target);
        if (it == model.adaptable_weights().end() || it->second.rows != weights.front().b.rows ||
            it->second.cols != weights.front().a.cols ||
            std::max<std::int64_t>(it->second.n_expert, 1) != static_cast<std::int64_t>(weights.size()))
            return false;
    }
    return true;
}

}  // namespace folio::engine
