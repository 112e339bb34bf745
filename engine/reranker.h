#pragma once
#include <cstdint>
#include <filesystem>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "engine/blocks_cpu.h"
#include "engine/gguf.h"
#include "engine/model.h"
#include "engine/thread_pool.h"
#include "engine/vocab.h"

// Relevance scores from a cross-encoder GGUF (architecture "bert" with
// bert.pooling_type = 4, rank, as `folio convert hf` writes a
// BertForSequenceClassification such as ms-marco-MiniLM-L-12-v2), as
// sentence-transformers' CrossEncoder computes them: the query and one
// passage read together, [CLS] query [SEP] passage [SEP] with token types 0
// then 1; the [CLS] row of the last block through the pooler (dense, tanh)
// and the classifier (cls and cls.output, llama.cpp's names); the first
// label's logit is the score, higher meaning more relevant (no sigmoid: the
// order is the same).
//
//   Reranker reranker = Reranker::open("ms-marco-MiniLM-L-12-v2.gguf");
//   ThreadPool pool;
//   std::vector<float> scores = reranker.score("net sales 2021", passages, pool);
//
// A pair longer than the model's positions is cut as Hugging Face's
// longest-first truncation cuts it: the shorter text keeps up to half the
// room, the longer one the rest (a short query stays whole, the passage
// loses its end).
//
// Thread rules: one score() call at a time per Reranker (it drives the pool).

namespace folio::engine {

// Whether the file declares itself a cross-encoder: <architecture>.pooling_type
// is 4 (llama.cpp's rank pooling). What Reranker::open requires first, and
// what tells a reranker from an embedding model among installed files.
bool is_cross_encoder(const GgufFile& file);

class Reranker {
public:
    // Loads the model, its tokenizer and its classification head. Throws
    // ModelError for a file that is not a bert cross-encoder (no rank
    // pooling, no cls tensors, no [CLS]/[SEP]), GgufError or VocabError for
    // a malformed one, std::system_error when it cannot be read.
    static Reranker open(const std::filesystem::path& path);

    int max_tokens() const { return model_->config().n_ctx_train; }
    const std::string& source() const { return file_.source(); }
    // The encoder, to place it on a device (Model::use_gpu); the head runs
    // on the host over the rows it returns.
    Model& model() { return *model_; }

    // The ids and token types the model reads for one pair (see the top);
    // truncated says whether tokens were cut.
    void tokenize_pair(std::string_view query, std::string_view passage, std::vector<std::int32_t>& ids,
                       std::vector<std::int32_t>& types, bool& truncated) const;

    // One score per passage, in order. Consecutive pairs share batches of
    // up to 2048 tokens, each pair attending only to itself.
    std::vector<float> score(std::string_view query, std::span<const std::string> passages, ThreadPool& pool);

private:
    Reranker(GgufFile file, std::unique_ptr<Model> model, Vocab vocab);

    GgufFile file_;
    std::unique_ptr<Model> model_;
    Vocab vocab_;
    WeightMatrix pooler_;                 // (n_embd, n_embd)
    std::vector<float> pooler_bias_;      // (n_embd)
    WeightMatrix classifier_;             // (labels, n_embd)
    std::vector<float> classifier_bias_;  // (labels)
};

}  // namespace folio::engine
