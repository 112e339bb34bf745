#pragma once
#include <atomic>
#include <cstdint>
#include <functional>
#include <span>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "engine/kv_cache.h"
#include "engine/model.h"
#include "engine/sampler.h"
#include "engine/thread_pool.h"
#include "engine/vocab.h"

// Text generation: the prompt prefilled in one forward(), then one token per
// forward() until an end-of-generation token, a stop string, the token limit,
// a full context or cancellation.
//
//   KvCache cache = model.make_kv_cache(4096);
//   GenerationOptions options{.max_tokens = 64, .sampler = {.temperature = 0}};
//   options.on_piece = [](std::string_view piece) { std::fwrite(piece.data(), 1, piece.size(), stdout); };
//   GenerationResult result = generate(model, pool, cache, &vocab, vocab.encode(prompt, true, true), options);
//
// Thread rules: generate() runs on the calling thread (which owns the pool);
// on_piece is called on that thread; cancel may be set from any thread.

namespace folio::engine {

// A request generate() cannot serve: an empty prompt, a prompt longer than the
// context. what() is one line.
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
};

const char* stop_reason_name(StopReason reason);  // "eog", "stop", "length", "context", "cancelled"

struct GenerationOptions {
    int max_tokens = 128;
    SamplerOptions sampler;
    // Generation stops when the text contains one; the text ends before it.
    std::vector<std::string> stop_strings;
    // Set to stop after the token in progress; the result holds what came before.
    const std::atomic<bool>* cancel = nullptr;
    // The text as it grows, in order. A UTF-8 character split across tokens
    // and text that may be the start of a stop string are held back until
    // they are known to belong to the result.
    std::function<void(std::string_view piece)> on_piece;
};

struct GenerationTimings {
    int prompt_tokens = 0;
    int generated_tokens = 0;         // sampled, the end-of-generation token included
    double prefill_seconds = 0;       // the prompt's forward()
    double decode_seconds = 0;        // the forward() of each generated token
    double prefill_tokens_per_second = 0;
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

// Generates after prompt into an empty cache (positions from 0). Without a
// vocab (a model file with no tokenizer) text stays empty, and only
// max_tokens, the context and cancel stop it. Throws GenerationError, and
// ModelError from the model.
GenerationResult generate(Model& model, ThreadPool& pool, KvCache& cache, const Vocab* vocab,
                          std::span<const std::int32_t> prompt, const GenerationOptions& options);

}  // namespace folio::engine
