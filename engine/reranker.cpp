#include "engine/reranker.h"

#include <algorithm>
#include <cmath>
#include <utility>

#include "engine/model_loader.h"

namespace folio::engine {

namespace {

// llama.cpp's LLAMA_POOLING_TYPE_RANK, as bert.pooling_type stores it.
constexpr std::uint32_t kPoolingRank = 4;

// A file without general.architecture is no cross-encoder (nor any model
// load_model() opens), not an error here.
std::string pooling_key(const GgufFile& file) {
    return std::string(file.get_string("general.architecture", "")) + ".pooling_type";
}
// Tokens per batch: pairs are a few hundred tokens each, so a batch holds
// several and they share a pass over the weights.
constexpr std::size_t kBatchTokens = 2048;

}  // namespace

bool is_cross_encoder(const GgufFile& file) { return file.get_u32(pooling_key(file), 0) == kPoolingRank; }

Reranker::Reranker(GgufFile file, std::unique_ptr<Model> model, Vocab vocab)
    : file_(std::move(file)), model_(std::move(model)), vocab_(std::move(vocab)) {
    const std::int64_t n_embd = model_->config().n_embd;
    pooler_ = weight_matrix(file_, "cls.weight", n_embd, n_embd);
    pooler_bias_ = weight_vector(file_, "cls.bias", n_embd);
    // (labels, n_embd); weight_matrix checks the shape.
    const GgufTensor& classifier = file_.tensor("cls.output.weight");
    const std::int64_t labels = classifier.n_dims == 2 ? classifier.ne[1] : 1;
    classifier_ = weight_matrix(file_, "cls.output.weight", labels, n_embd);
    classifier_bias_ = weight_vector(file_, "cls.output.bias", labels);
}

Reranker Reranker::open(const std::filesystem::path& path) {
    GgufFile file = GgufFile::open(path);
    std::unique_ptr<Model> model = load_model(file);
    if (!model->is_encoder())
        throw ModelError(file.source() + ": " + model->config().architecture +
                         " is a text generator, not a cross-encoder");
    if (!is_cross_encoder(file))
        throw ModelError(file.source() + ": not a cross-encoder (" + pooling_key(file) +
                         " is not 4, rank): an embedding model?");
    if (!file.find_tensor("cls.weight") || !file.find_tensor("cls.output.weight"))
        throw ModelError(file.source() + ": a cross-encoder needs the tensors cls.weight and cls.output.weight");
    if (!file.find("tokenizer.ggml.model"))
        throw ModelError(file.source() + ": no tokenizer (tokenizer.ggml.*), so it cannot read text");
    Vocab vocab(file);
    if (vocab.bos_id() == Vocab::kNoToken || vocab.eos_id() == Vocab::kNoToken)
        throw ModelError(file.source() + ": a cross-encoder's tokenizer needs [CLS] and [SEP]");
    return Reranker(std::move(file), std::move(model), std::move(vocab));
}

void Reranker::tokenize_pair(std::string_view query, std::string_view passage, std::vector<std::int32_t>& ids,
                             std::vector<std::int32_t>& types, bool& truncated) const {
    std::vector<std::int32_t> first = vocab_.encode(query, false, true);
    std::vector<std::int32_t> second = vocab_.encode(passage, false, true);
    const std::size_t room = static_cast<std::size_t>(std::max(0, max_tokens() - 3));  // [CLS] [SEP] [SEP]
    truncated = first.size() + second.size() > room;
    if (truncated) {
        // Longest first, as Hugging Face's tokenizers cut a pair: the shorter
        // text (the query on a tie) keeps up to half the room, rounded down,
        // the longer one the rest.
        const bool query_is_shorter = first.size() <= second.size();
        std::vector<std::int32_t>& shorter = query_is_shorter ? first : second;
        std::vector<std::int32_t>& longer = query_is_shorter ? second : first;
        shorter.resize(std::min(shorter.size(), room / 2));
        longer.resize(room - shorter.size());
    }
    ids.clear();
    ids.push_back(vocab_.bos_id());
    ids.insert(ids.end(), first.begin(), first.end());
    ids.push_back(vocab_.eos_id());
    types.assign(ids.size(), 0);
    ids.insert(ids.end(), second.begin(), second.end());
    ids.push_back(vocab_.eos_id());
    types.resize(ids.size(), 1);
}

std::vector<float> Reranker::score(std::string_view query, std::span<const std::string> passages, ThreadPool& pool) {
    const std::int64_t n_embd = model_->config().n_embd;
    std::vector<std::vector<std::int32_t>> ids(passages.size()), types(passages.size());
    bool truncated = false;
    for (std::size_t i = 0; i < passages.size(); ++i)
        tokenize_pair(query, passages[i], ids[i], types[i], truncated);
    std::vector<float> scores;
    scores.reserve(passages.size());
    model_->encode_in_batches(pool, ids, types, kBatchTokens, [&](std::size_t, std::span<const std::int32_t> lengths,
                                                                   const std::vector<float>& hidden) {
        // Each pair's [CLS] row, then the pooler and the classifier over them all.
        std::vector<float> first_rows;
        first_rows.reserve(lengths.size() * static_cast<std::size_t>(n_embd));
        std::size_t row = 0;
        for (const std::int32_t length : lengths) {
            const float* cls = hidden.data() + row * static_cast<std::size_t>(n_embd);
            first_rows.insert(first_rows.end(), cls, cls + n_embd);
            row += static_cast<std::size_t>(length);
        }
        const auto n_pairs = static_cast<std::int64_t>(lengths.size());
        std::vector<float> pooled(first_rows.size());
        MatmulInput pooler_in(first_rows.data(), n_pairs, n_embd);
        matmul(pool, pooler_, pooler_in, pooled.data());
        add_bias(pooled.data(), pooler_bias_.data(), n_pairs, n_embd);
        for (float& x : pooled)
            x = std::tanh(x);
        std::vector<float> logits(static_cast<std::size_t>(n_pairs * classifier_.rows));
        MatmulInput classifier_in(pooled.data(), n_pairs, n_embd);
        matmul(pool, classifier_, classifier_in, logits.data());
        add_bias(logits.data(), classifier_bias_.data(), n_pairs, classifier_.rows);
        for (std::int64_t p = 0; p < n_pairs; ++p)
            scores.push_back(logits[static_cast<std::size_t>(p * classifier_.rows)]);
    });
    return scores;
}

}  // namespace folio::engine
