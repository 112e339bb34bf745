#include "engine/embedder.h"

#include <algorithm>
#include <cmath>
#include <optional>
#include <string_view>
#include <utility>

#include "engine/reranker.h"

namespace folio::engine {

namespace {

// llama.cpp's enum llama_pooling_type, as bert.pooling_type stores it.
constexpr std::uint32_t kPoolingNone = 0;
constexpr std::uint32_t kPoolingMean = 1;
constexpr std::uint32_t kPoolingCls = 2;
// Tokens per encoder batch: big enough that short texts (queries, table
// rows) share the weights' pass, small enough to bound the activations
// (all-MiniLM-L6-v2: ~7 MB of f32 for the feed-forward's 1024 × 1536).
constexpr std::size_t kBatchTokens = 1024;
constexpr std::string_view kMaxTokensKey = "folio.embedding.max_tokens";

// The file's pooling. Without the key (or with "none", per-token outputs)
// it is the mean: what sentence-transformers gives a plain BERT checkpoint.
Pooling read_pooling(const GgufFile& file) {
    const std::string key = std::string(file.architecture()) + ".pooling_type";
    const std::uint32_t type = file.get_u32(key, kPoolingMean);
    if (type == kPoolingNone || type == kPoolingMean)
        return Pooling::Mean;
    if (type == kPoolingCls)
        return Pooling::Cls;
    if (is_cross_encoder(file))
        throw ModelError(file.source() + " is a reranking model (a cross-encoder), not an embedding model: "
                         "give it as FOLIO_RERANKER_MODEL");
    throw ModelError(file.source() + ": " + key + " = " + std::to_string(type) +
                     " is not a pooling Folio implements (1 mean, 2 cls)");
}

// The tokens a text is cut to. Not a llama.cpp key: `folio convert hf`
// writes sentence-transformers' max_seq_length, which can be below the
// model's positions (all-MiniLM-L6-v2: 256 of 512, the length it was
// trained on); without it, the positions. At least 2: [CLS] and [SEP].
int read_max_tokens(const GgufFile& file, int n_positions) {
    const std::optional<std::int64_t> max = file.find_i64(kMaxTokensKey);
    if (!max)
        return n_positions;
    if (*max < 2 || *max > n_positions)
        throw ModelError(file.source() + ": " + std::string(kMaxTokensKey) + " = " + std::to_string(*max) +
                         " is not between 2 and the model's " + std::to_string(n_positions) + " positions");
    return static_cast<int>(*max);
}

// One text's hidden states (n_rows, n_embd) as one vector: pooled, then
// scaled to unit length as sentence-transformers' Normalize does,
// x / max(‖x‖, 1e-12), when `normalize`.
std::vector<float> pool_rows(const float* rows, int n_rows, int n_embd, Pooling pooling, bool normalize) {
    const int n_pooled = pooling == Pooling::Cls ? 1 : n_rows;
    std::vector<double> sum(static_cast<std::size_t>(n_embd), 0.0);
    for (int t = 0; t < n_pooled; ++t)
        for (int i = 0; i < n_embd; ++i)
            sum[static_cast<std::size_t>(i)] += rows[static_cast<std::size_t>(t) * static_cast<std::size_t>(n_embd) +
                                                     static_cast<std::size_t>(i)];
    double scale = 1.0 / n_pooled;
    if (normalize) {
        double sum_squares = 0.0;
        for (const double value : sum)
            sum_squares += value * value;
        scale = 1.0 / std::max(std::sqrt(sum_squares), 1e-12);  // the mean's 1/n cancels
    }
    std::vector<float> vector(static_cast<std::size_t>(n_embd));
    for (std::size_t i = 0; i < vector.size(); ++i)
        vector[i] = static_cast<float>(sum[i] * scale);
    return vector;
}

}  // namespace

Embedder::Embedder(GgufFile file, std::unique_ptr<Model> model, Vocab vocab, Pooling pooling, bool normalize,
                   int max_tokens)
    : file_(std::move(file)),
      model_(std::move(model)),
      vocab_(std::move(vocab)),
      pooling_(pooling),
      normalize_(normalize),
      max_tokens_(max_tokens) {}

Embedder Embedder::open(const std::filesystem::path& path) {
    GgufFile file = GgufFile::open(path);
    std::unique_ptr<Model> model = load_model(file);
    if (!model->is_encoder())
        throw ModelError(file.source() + ": " + model->config().architecture +
                         " is a text generator, not an embedding model");
    if (!file.find("tokenizer.ggml.model"))
        throw ModelError(file.source() + ": no tokenizer (tokenizer.ggml.*), so it cannot embed text");
    Vocab vocab(file);
    const Pooling pooling = read_pooling(file);
    // Not a llama.cpp key: `folio convert hf` writes it from the
    // sentence-transformers modules. llama.cpp's embedding tool normalizes
    // unless told otherwise, and so does Folio without the key.
    const bool normalize = file.get_bool("folio.embedding.normalize", true);
    const int max_tokens = read_max_tokens(file, model->config().n_ctx_train);
    return Embedder(std::move(file), std::move(model), std::move(vocab), pooling, normalize, max_tokens);
}

std::vector<std::int32_t> Embedder::tokenize(std::string_view text, bool& truncated) const {
    std::vector<std::int32_t> ids = vocab_.encode(text, true, true);
    const auto max = static_cast<std::size_t>(max_tokens());
    truncated = ids.size() > max;
    if (truncated) {
        // Hugging Face cuts the text's tokens and keeps the frame: the last
        // kept id is [SEP] again.
        ids.resize(max);
        if (vocab_.add_eos())
            ids.back() = vocab_.eos_id();
    }
    return ids;
}

std::vector<Embedding> Embedder::embed(std::span<const std::string> texts, ThreadPool& pool, LongText long_text) {
    std::vector<Embedding> embeddings(texts.size());
    // What the model reads: one sequence per text, or with Windows one per
    // window of a long text; owner[u] is sequence u's text.
    std::vector<std::vector<std::int32_t>> ids;
    std::vector<std::size_t> owner;
    const int frame = (vocab_.add_bos() ? 1 : 0) + (vocab_.add_eos() ? 1 : 0);
    for (std::size_t i = 0; i < texts.size(); ++i) {
        if (long_text == LongText::Windows) {
            const std::vector<std::int32_t> all = vocab_.encode(texts[i], true, true);
            if (static_cast<int>(all.size()) > max_tokens()) {
                const auto body_begin = all.begin() + (vocab_.add_bos() ? 1 : 0);
                const auto body_end = all.end() - (vocab_.add_eos() ? 1 : 0);
                const auto window = static_cast<std::ptrdiff_t>(std::max(1, max_tokens() - frame));
                embeddings[i].windows = 0;
                for (auto begin = body_begin; begin < body_end; begin += std::min(window, body_end - begin)) {
                    std::vector<std::int32_t> framed;
                    if (vocab_.add_bos()) framed.push_back(all.front());
                    framed.insert(framed.end(), begin, begin + std::min(window, body_end - begin));
                    if (vocab_.add_eos()) framed.push_back(all.back());
                    ids.push_back(std::move(framed));
                    owner.push_back(i);
                    ++embeddings[i].windows;
                }
                embeddings[i].n_tokens = static_cast<int>(all.size());
                continue;
            }
        }
        ids.push_back(tokenize(texts[i], embeddings[i].truncated));
        owner.push_back(i);
        embeddings[i].n_tokens = static_cast<int>(ids.back().size());
    }
    // Window vectors, each weighted by its tokens, summed per text.
    std::vector<std::vector<double>> sums(texts.size());
    std::vector<double> weights(texts.size(), 0.0);
    model_->encode_in_batches(pool, ids, {}, kBatchTokens, [&](std::size_t first, std::span<const std::int32_t> lengths,
                                                               const std::vector<float>& hidden) {
        const float* rows = hidden.data();
        for (std::size_t u = first; u < first + lengths.size(); ++u) {
            const int length = lengths[u - first];
            std::vector<float> vector = pool_rows(rows, length, dimension(), pooling_, normalize_);
            rows += static_cast<std::size_t>(length) * static_cast<std::size_t>(dimension());
            Embedding& embedding = embeddings[owner[u]];
            if (embedding.windows == 1) {
                embedding.vector = std::move(vector);
                continue;
            }
            std::vector<double>& sum = sums[owner[u]];
            sum.resize(vector.size());
            for (std::size_t d = 0; d < vector.size(); ++d) sum[d] += static_cast<double>(vector[d]) * length;
            weights[owner[u]] += length;
        }
    });
    for (std::size_t i = 0; i < texts.size(); ++i) {
        if (embeddings[i].windows == 1) continue;
        double norm = 0;
        for (const double value : sums[i]) norm += value * value;
        const double scale = normalize_ ? 1.0 / std::max(std::sqrt(norm), 1e-12) : 1.0 / weights[i];
        embeddings[i].vector.resize(sums[i].size());
        for (std::size_t d = 0; d < sums[i].size(); ++d) embeddings[i].vector[d] = static_cast<float>(sums[i][d] * scale);
    }
    return embeddings;
}

}  // namespace folio::engine
