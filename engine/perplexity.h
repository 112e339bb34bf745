#pragma once
#include <cstdint>
#include <optional>
#include <span>

#include "engine/model.h"
#include "engine/thread_pool.h"

// Perplexity of a language model over a token sequence, computed as
// llama.cpp's `llama-perplexity` does: the sequence is cut into
// non-overlapping windows of n_ctx tokens (a shorter tail is dropped), each
// window is run from an empty cache, and only the second half of each window
// is scored, so that every scored token sees at least n_ctx / 2 tokens of
// context: token j of a window, n_ctx / 2 < j < n_ctx, by the probability the
// model gave it at position j - 1.
//
//   perplexity = exp(-mean over scored tokens of log p(token_j | tokens_<j))
//
// With the same n_ctx, tokens and BOS rule this is the figure llama.cpp
// prints after its last chunk.

namespace folio::engine {

struct PerplexityOptions {
    int n_ctx = 512;   // window length, at least 4
    int n_batch = 128; // tokens per forward() within a window: bounds the logits held at once
    // When set, each window's first token is replaced by it, as llama.cpp does
    // for vocabularies that add BOS (tokenizer.ggml.add_bos_token).
    std::optional<std::int32_t> bos;
};

struct PerplexityResult {
    double perplexity = 0;
    double mean_nll = 0;    // natural log, per scored token
    int n_windows = 0;
    int n_scored = 0;       // n_windows * (n_ctx - n_ctx / 2 - 1)
    int n_tokens_run = 0;   // n_windows * n_ctx
    double seconds = 0;
};

// Throws ModelError when tokens hold less than one window, for an n_ctx
// below 4, or an encoder, and what forward() throws.
PerplexityResult perplexity(Model& model, ThreadPool& pool, std::span<const std::int32_t> tokens,
                            const PerplexityOptions& options);

}  // namespace folio::engine
