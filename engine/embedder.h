#pragma once
#include <cstdint>
#include <filesystem>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "engine/gguf.h"
#include "engine/model.h"
#include "engine/thread_pool.h"
#include "engine/vocab.h"

// Sentence embeddings from an encoder GGUF (architecture "bert": MiniLM,
// BGE, E5, ...), as sentence-transformers computes them: the text tokenized
// with [CLS] and [SEP], the encoder's last hidden states pooled into one
// vector (bert.pooling_type: the mean over every token, [CLS] and [SEP]
// included, or the [CLS] row), then scaled to unit length unless the file
// says the model has no Normalize step (folio.embedding.normalize = false).
//
//   Embedder embedder = Embedder::open("all-MiniLM-L6-v2.gguf");
//   ThreadPool pool;
//   std::vector<Embedding> out = embedder.embed(texts, pool);  // out[i].vector: dimension() floats
//
// A text longer than max_tokens() is cut, as Hugging Face's truncation
// does: its first max_tokens() - 2 tokens between [CLS] and [SEP];
// Embedding::truncated says so. With LongText::Windows every token counts
// instead: the text's tokens go in consecutive windows of max_tokens() - 2,
// each framed and pooled (and normalized) on its own, and the text's vector
// is the windows' mean, weighted by their tokens (then normalized) — what a
// passage longer than the model's window needs to be found by its end.
// max_tokens() is the length the model was trained to embed,
// sentence-transformers' max_seq_length, which `folio
// convert hf` writes as folio.embedding.max_tokens (256 for
// all-MiniLM-L6-v2), or without that key the model's positions
// (context_length, 512 for BERT).
//
// Thread rules: one embed() call at a time per Embedder (it drives the pool).

namespace folio::engine {

// How the hidden states become one vector (llama.cpp's enum llama_pooling_type).
enum class Pooling {
    Mean,  // 1: the mean of every token's row
    Cls,   // 2: the first token's row ([CLS])
};

// What embed() does with a text longer than max_tokens() (see the top).
enum class LongText {
    Truncate,  // sentence-transformers' behaviour
    Windows,
};

struct Embedding {
    std::vector<float> vector;  // dimension() floats
    int n_tokens = 0;           // tokens the model read, [CLS] and [SEP] included
    bool truncated = false;     // the text had more tokens than max_tokens(); the rest were dropped
    int windows = 1;            // LongText::Windows: how many windows the text took
};

class Embedder {
public:
    // Loads the model and its tokenizer. Throws ModelError for a file that
    // is not an encoder (or whose pooling Folio does not implement, or whose
    // folio.embedding.max_tokens is not 2..context_length),
    // GgufError or VocabError for a malformed one, std::system_error when it
    // cannot be read.
    static Embedder open(const std::filesystem::path& path);

    int dimension() const { return model_->config().n_embd; }
    int max_tokens() const { return max_tokens_; }
    Pooling pooling() const { return pooling_; }
    bool normalizes() const { return normalize_; }
    const std::string& source() const { return file_.source(); }
    // The encoder, to place it on a device (Model::use_gpu).
    Model& model() { return *model_; }

    // The ids the model reads for a text: [CLS] text [SEP], cut to
    // max_tokens(). Special-token text such as "[SEP]" in the text is that
    // token, as Hugging Face's tokenizer reads it.
    std::vector<std::int32_t> tokenize(std::string_view text, bool& truncated) const;

    // One embedding per text, in order. Consecutive texts are packed into
    // batches of up to 1024 tokens, each text attending only to itself, so
    // that short texts share a pass over the weights; the batch's work is
    // split across the pool. An empty text embeds [CLS] [SEP].
    std::vector<Embedding> embed(std::span<const std::string> texts, ThreadPool& pool,
                                 LongText long_text = LongText::Truncate);

private:
    Embedder(GgufFile file, std::unique_ptr<Model> model, Vocab vocab, Pooling pooling, bool normalize,
             int max_tokens);

    GgufFile file_;
    std::unique_ptr<Model> model_;
    Vocab vocab_;
    Pooling pooling_;
    bool normalize_;
    int max_tokens_;
};

}  // namespace folio::engine
