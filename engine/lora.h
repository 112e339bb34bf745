#pragma once
#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "engine/blocks_cpu.h"
#include "engine/gguf.h"

// LoRA adapters in llama.cpp's GGUF form (convert_lora_to_gguf.py, and
// `folio convert hf` from a PEFT folder):
//
//   general.type = "adapter", adapter.type = "lora"
//   general.architecture    the base model's
//   adapter.lora.alpha      f32 (absent or 0: no alpha, the scale is the user's)
//   <base tensor>.lora_a    ne {n_in, r}:  A (r, n_in)
//   <base tensor>.lora_b    ne {r, n_out}: B (n_out, r)
//
// Applied unmerged: a base weight W (n_out, n_in) computes
//   y = W·x + Σ scale·B(A·x),   scale = user_scale · alpha / r
// (r the pair's own rank, as llama.cpp takes it; user_scale when alpha is 0)
// over the request's adapters, so several adapters run at once, each at its
// own scale, and switching adapters never touches the base weights. The
// shared blocks apply them (lora_matmul, blocks_cpu.h; on a GPU the CUDA
// ops, decoder_ops.h), so every architecture built from those blocks takes
// adapters on the weights it lists as adaptable (Model::adaptable_weights).
// A mixture of experts' stacked tensors (ffn_{gate,up,down}_exps) take
// stacked pairs, as llama.cpp's converter writes them: lora_a ne {n_in, r,
// n_expert}, lora_b ne {r, n_out, n_expert}, expert e's pair the e-th
// matrix of each; each expert's matrix then goes through lora_matmul with
// its own pair (WeightMatrix::expert).
//
//   std::shared_ptr<const LoraAdapter> finance = LoraAdapter::open("finance.gguf", *model);
//   GenerationOptions options;
//   options.loras.uses.push_back({finance, 0.8f});

namespace folio::engine {

class Model;

// An adapter's low-rank pair for one base weight W (n_out, n_in).
struct LoraWeight {
    WeightMatrix a;  // (r, n_in)
    WeightMatrix b;  // (n_out, r)
};

// A pair as f32 with its rank padded with zeros to a multiple of
// `rank_multiple` (rows of A past r are zero, and so are B's columns past r,
// so B(A·x) is unchanged): the CUDA backend's kernels read rows of a
// multiple of 8 elements, and adapters of rank 4 exist.
struct WidenedLoraPair {
    std::int64_t rank = 0;  // padded
    std::vector<float> a;   // (rank, n_in)
    std::vector<float> b;   // (n_out, rank)
};
WidenedLoraPair widen_lora_pair(const LoraWeight& pair, std::int64_t rank_multiple);

class LoraAdapter {
public:
    // Reads an adapter and checks it against the model it will run with:
    // its architecture, that every target is a weight the model adapts
    // (attention projections, feed-forward matrices), that A and B come in
    // pairs of one rank and fit the target's shape, and that their types
    // have matmul kernels. Throws ModelError (one line, naming the file and
    // the tensor and both shapes where they disagree), or GgufError for a
    // malformed file.
    static std::shared_ptr<const LoraAdapter> load(const GgufFile& file, const Model& base);
    // Maps the file; also throws std::system_error when it cannot be opened.
    static std::shared_ptr<const LoraAdapter> open(const std::filesystem::path& path, const Model& base);

    const std::string& source() const { return file_.source(); }
    const std::string& architecture() const { return architecture_; }
    float alpha() const { return alpha_; }
    std::size_t size() const { return weights_.size(); }  // adapted base weights (a stacked experts tensor: one)

    // The pair for the base weight of this GGUF name (of its expert-th
    // matrix, for a stacked experts tensor), or nullptr.
    const LoraWeight* find(std::string_view base_weight, std::int32_t expert = -1) const;

    // The factor on B(A·x) for a pair at the request's user_scale:
    // user_scale · alpha / r, or user_scale without an alpha (llama.cpp's rule).
    float scale(const LoraWeight& weight, float user_scale) const;

    // Whether each pair still fits the model's adaptable weights (a model
    // other than the one the adapter was loaded for may not).
    bool fits(const Model& model) const;

private:
    explicit LoraAdapter(GgufFile file) : file_(std::move(file)) {}

    GgufFile file_;  // keeps the mapping the pairs point into
    std::string architecture_;
    float alpha_ = 0.f;
    // By base weight name, found without building a string on every matmul.
    struct NameHash {
        using is_transparent = void;
        std::size_t operator()(std::string_view name) const { return std::hash<std::string_view>{}(name); }
    };
    // A plain weight's pair, or a stacked experts tensor's pairs, one per expert.
    std::unordered_map<std::string, std::vector<LoraWeight>, NameHash, std::equal_to<>> weights_;
};

// One adapter of a request and the scale the user gives it (1: as trained).
struct LoraUse {
    std::shared_ptr<const LoraAdapter> adapter;
    float scale = 1.f;

    bool operator==(const LoraUse&) const = default;  // the same loaded adapter at the same scale
};

// The adapters a request runs with, in order; empty: the base model. Keys
// and values computed under one set are reused only under an equal set
// (Sequence, PrefixCache), which holds the adapters while it keeps them.
struct LoraSet {
    std::vector<LoraUse> uses;

    bool empty() const { return uses.empty(); }
    bool operator==(const LoraSet&) const = default;
};

}  // namespace folio::engine
