#pragma once
#include <atomic>
#include <cstdint>
#include <functional>
#include <list>
#include <optional>
#include <span>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "engine/grammar.h"
#include "engine/kv_cache.h"
#include "engine/lora.h"
#include "engine/model.h"
#include "engine/sampler.h"
#include "engine/thread_pool.h"
#include "engine/vocab.h"

// Text generation: the prompt prefilled (in chunks of kPrefillChunkTokens),
// then one token per forward() until an end-of-generation token, a stop string, the token limit,
// a full context or cancellation.
//
//   Sequence sequence(model.make_kv_cache(4096));
//   GenerationOptions options{.max_tokens = 64, .sampler = {.temperature = 0}};
//   options.on_piece = [](std::string_view piece) { std::fwrite(piece.data(), 1, piece.size(), stdout); };
//   GenerationResult result = generate(model, pool, sequence, &vocab, vocab.encode(prompt, true, true), options);
//   // A follow-up over the same system prompt and document: only the tokens
//   // after the shared prefix are computed.
//   result = generate(model, pool, sequence, &vocab, vocab.encode(follow_up, true, true), options);
//
// Thread rules: generate() runs on the calling thread (which owns the pool);
// on_piece is called on that thread; cancel may be set from any thread.

namespace folio::engine {

// A request generate() cannot serve: an empty prompt, a prompt longer than the
// context, text that is not UTF-8. what() is one line.
class GenerationError : public std::runtime_error {
public:
    using std::runtime_error::runtime_error;
};

enum class StopReason {
    EndOfGeneration,  // the model produced EOS or another end-of-turn token
    StopString,       // the text reached one of stop_strings
    MaxTokens,
    ContextFull,      // the cache has no position left
    Cancelled,
    Repetition,       // the text had become one run over and over (GenerationOptions::loop_repeats)
};

// "eog", "stop", "length", "context", "cancelled", "repetition"
const char* stop_reason_name(StopReason reason);

// What generate() does with a prompt too long for the context.
enum class PromptOverflow {
    Error,     // throw GenerationError
    // Drop the prompt's earliest tokens (a leading BOS stays) until it fits
    // with room for max_tokens, but at most half the context for them: the
    // end of a conversation or document matters most for what comes next.
    KeepLast,
};

struct GenerationOptions {
    int max_tokens = 128;
    PromptOverflow prompt_overflow = PromptOverflow::Error;
    SamplerOptions sampler;
    // Generation stops when the text contains one; the text ends before it.
    std::vector<std::string> stop_strings;
    // Set to stop after the token in progress; the result holds what came before.
    const std::atomic<bool>* cancel = nullptr;
    // The text as it grows, in order. A UTF-8 character split across tokens
    // and text that may be the start of a stop string are held back until
    // they are known to belong to the result.
    std::function<void(std::string_view piece)> on_piece;
    // Constrained decoding: each sampled token the grammar does not allow is
    // sampled again from logits it masked, and every token is accepted into
    // it (the prompt is not: it starts where the caller left it). Generation
    // ends with EndOfGeneration at an allowed end-of-generation token or
    // when the grammar admits nothing more. Needs a vocab; not owned.
    GrammarMatcher* grammar = nullptr;
    // A small model can fall into a loop ("4,812,000,000,000,…", or a
    // sentence of its sources again and again) that would run to max_tokens.
    // With loop_repeats > 0, generation stops when the tokens end in one run
    // of at most kShortLoopPeriod tokens that many times in a row, or in a
    // longer run (up to kMaxLoopPeriod) repeated over as many tokens as
    // that, and at least twice; the result keeps the run's first time (the
    // pieces already streamed hold more). 0: off.
    int loop_repeats = 0;
    // LoRA adapters for this request, each at its scale (lora.h); none: the
    // base model. The sequence reuses cached keys and values only when they
    // were computed under the same adapters at the same scales.
    LoraSet loras;
};

inline constexpr int kShortLoopPeriod = 16;
inline constexpr int kMaxLoopPeriod = 256;

// Prompt tokens per forward() of a prefill: a stop request waits for one
// chunk at most (about a second on two cores for a 135M model), and the
// activations of a long prompt never need more than a chunk's memory. Wide
// enough that the matmuls stay as fast as over the whole prompt.
inline constexpr int kPrefillChunkTokens = 512;

// Where a degenerate loop at the end of `tokens` stops being new: the
// tokens end in one run of at most max_period tokens, repeated `repeats`
// times or more in a row if it is kShortLoopPeriod tokens or shorter, else
// until the repeats cover repeats × kShortLoopPeriod tokens (twice at
// least: a sentence said twice may be meant); returns the length to keep
// (up to the end of the run's first time, the earliest it can start), or
// nothing.
std::optional<std::size_t> loop_start(std::span<const std::int32_t> tokens, int repeats, int max_period);

struct GenerationTimings {
    int prompt_tokens = 0;            // after any PromptOverflow::KeepLast truncation
    int dropped_prompt_tokens = 0;    // removed by PromptOverflow::KeepLast
    int reused_prompt_tokens = 0;     // found in the sequence's cache, not computed again
    int generated_tokens = 0;         // sampled, the end-of-generation token included
    double prefill_seconds = 0;       // the prompt's forward() (its tokens past the reused prefix)
    double decode_seconds = 0;        // the forward() of each generated token
    double prefill_tokens_per_second = 0;  // computed (not reused) prompt tokens per second
    double decode_tokens_per_second = 0;
    double time_to_first_token_seconds = 0;  // from the call to the first sampled token
};

struct GenerationResult {
    std::string text;                  // decoded output, stop string and end-of-generation tokens excluded
    std::vector<std::int32_t> tokens;  // generated ids, the end-of-generation token excluded
    StopReason stop_reason = StopReason::MaxTokens;
    GenerationTimings timings;
};

// The tokens that end a turn in vocab: its EOS and, when present, <|im_end|>,
// <|eot_id|>, <|end_of_text|>, <end_of_turn>, <|endoftext|>, <｜end▁of▁sentence｜>.
std::vector<std::int32_t> end_of_generation_tokens(const Vocab& vocab);

// How many bytes at the end of text are the start of a UTF-8 character
// whose remaining bytes have not come yet (0 to 3): what streaming holds back.
std::size_t incomplete_utf8_tail(std::string_view text);

// Throws GenerationError naming the byte offset of the first byte of text
// that does not belong to a well-formed UTF-8 character (overlong forms,
// surrogates and code points past U+10FFFF included): what a prompt must be
// before it is tokenized.
void check_utf8(std::string_view text, std::string_view what = "the prompt");

// A KV cache and the tokens whose keys and values it holds, token i at
// position i, computed under one set of LoRA adapters: a conversation or a
// document that requests keep coming back to. generate() reuses the longest
// prefix the next prompt shares with tokens() (the same system prompt and
// document context, a follow-up question) under the same adapters and
// computes only the rest.
class Sequence {
public:
    explicit Sequence(KvCache cache) : cache_(std::move(cache)) {}

    const KvCache& cache() const { return cache_; }
    std::span<const std::int32_t> tokens() const { return tokens_; }
    const LoraSet& loras() const { return loras_; }  // what tokens() were computed under
    // Forget what the cache holds: the next prompt is computed whole.
    void clear() { tokens_.clear(); }
    // The cache, given back by a sequence that is done with it.
    KvCache release() && { return std::move(cache_); }

    // How many leading tokens of prompt, run under loras, are in the cache
    // already: their common prefix with tokens(), short of prompt's last
    // token, whose logits prefill() must compute; 0 under other adapters
    // or scales than loras().
    int reusable_prefix(std::span<const std::int32_t> prompt, const LoraSet& loras = {}) const;

    // Makes the sequence hold prompt under loras: keeps
    // reusable_prefix(prompt, loras) tokens and runs the rest from there, in
    // forward() calls of at most kPrefillChunkTokens (the cache overwrites
    // the positions after the prefix). Returns the logits (n_vocab) after
    // prompt's last token; empty when `cancel` was set before the last chunk
    // (the sequence then holds the chunks computed so far, for a later
    // request to reuse). Throws GenerationError for an empty prompt or one
    // longer than the cache (the sequence unchanged), and ModelError from
    // the model (the sequence then holds what was computed before it).
    std::vector<float> prefill(Model& model, ThreadPool& pool, std::span<const std::int32_t> prompt,
                               const LoraSet& loras = {}, const std::atomic<bool>* cancel = nullptr);

    // Appends one token at the next position, under loras(); returns its
    // logits (n_vocab).
    std::vector<float> append(Model& model, ThreadPool& pool, std::int32_t token);

private:
    KvCache cache_;
    std::vector<std::int32_t> tokens_;  // tokens_[i] is held at position i
    LoraSet loras_;
};

// Several sequences under a memory budget, for requests that move between
// documents and conversations: each prompt goes to the sequence that holds
// the longest prefix of it, else to a new one while the budget allows, else
// to the least recently used one, cleared. Not thread-safe.
class PrefixCache {
public:
    // Each sequence's cache: model.make_kv_cache(n_positions, type). At least
    // one sequence is made whatever the budget.
    PrefixCache(const Model& model, int n_positions, KvType type, std::size_t budget_bytes);

    // The sequence to run prompt in under loras (generate(),
    // Sequence::prefill): only a sequence computed under the same adapters
    // and scales can lend its prefix. It lives as long as the PrefixCache; a
    // later acquire() may clear it for another prompt.
    Sequence& acquire(std::span<const std::int32_t> prompt, const LoraSet& loras = {});

    std::size_t size() const { return sequences_.size(); }  // sequences made so far

private:
    const Model& model_;
    int n_positions_;
    KvType type_;
    std::size_t budget_bytes_;
    std::list<Sequence> sequences_;  // most recently used first
};

// Generates after prompt in sequence under options.loras, reusing the prefix
// it shares with what the sequence holds under them; afterwards the sequence
// holds the prompt and the generated tokens (but the last, which was sampled
// and not run). Without a vocab (a model file with no tokenizer) text stays
// empty, and only max_tokens, the context and cancel stop it. Throws
// GenerationError, ModelError from the model, and GrammarError when
// options.grammar allows no token of the vocabulary.
GenerationResult generate(Model& model, ThreadPool& pool, Sequence& sequence, const Vocab* vocab,
                          std::span<const std::int32_t> prompt, const GenerationOptions& options);

// The same into a cache whose contents are not reused (positions from 0).
GenerationResult generate(Model& model, ThreadPool& pool, KvCache& cache, const Vocab* vocab,
                          std::span<const std::int32_t> prompt, const GenerationOptions& options);

}  // namespace folio::engine
