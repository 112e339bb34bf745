#include "engine/generator.h"

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <iterator>
#include <string>

namespace folio::engine {
namespace {

using Clock = std::chrono::steady_clock;

double seconds_between(Clock::time_point from, Clock::time_point to) {
    return std::chrono::duration<double>(to - from).count();
}

// The longest suffix of text that is a proper prefix of a stop string.
std::size_t stop_prefix_tail(std::string_view text, const std::vector<std::string>& stops) {
    std::size_t longest = 0;
    for (const std::string& stop : stops) {
        for (std::size_t n = std::min(text.size(), stop.size() - 1); n > longest; --n) {
            if (text.substr(text.size() - n) == std::string_view(stop).substr(0, n)) {
                longest = n;
                break;
            }
        }
    }
    return longest;
}

}  // namespace

std::size_t incomplete_utf8_tail(std::string_view text) {
    const std::size_t look = std::min<std::size_t>(text.size(), 3);
    for (std::size_t back = 1; back <= look; ++back) {
        const auto byte = static_cast<unsigned char>(text[text.size() - back]);
        if ((byte & 0xC0) == 0x80) continue;  // continuation byte
        std::size_t length = 1;
        if ((byte & 0xE0) == 0xC0) length = 2;
        else if ((byte & 0xF0) == 0xE0) length = 3;
        else if ((byte & 0xF8) == 0xF0) length = 4;
        return length > back ? back : 0;
    }
    return 0;
}

std::optional<std::size_t> loop_start(std::span<const std::int32_t> tokens, int repeats, int max_period) {
    const std::size_t n = tokens.size();
    if (repeats < 2) return std::nullopt;
    const std::size_t short_span = static_cast<std::size_t>(repeats) * kShortLoopPeriod;
    for (std::size_t period = 1; period <= static_cast<std::size_t>(std::max(max_period, 0)); ++period) {
        const std::size_t times = period <= kShortLoopPeriod ? static_cast<std::size_t>(repeats)
                                                              : std::max<std::size_t>(2, (short_span + period - 1) / period);
        const std::size_t span = period * times;
        if (span > n) continue;
        bool periodic = true;
        for (std::size_t i = n - span + period; i < n && periodic; ++i) periodic = tokens[i] == tokens[i - period];
        if (!periodic) continue;
        // The loop may have begun earlier than the repeats looked at.
        std::size_t begin = n - span;
        while (begin > 0 && tokens[begin - 1] == tokens[begin - 1 + period]) --begin;
        return begin + period;
    }
    return std::nullopt;
}

const char* stop_reason_name(StopReason reason) {
    switch (reason) {
    case StopReason::EndOfGeneration: return "eog";
    case StopReason::StopString: return "stop";
    case StopReason::MaxTokens: return "length";
    case StopReason::ContextFull: return "context";
    case StopReason::Cancelled: return "cancelled";
    case StopReason::Repetition: return "repetition";
    }
    return "unknown";
}

std::vector<std::int32_t> end_of_generation_tokens(const Vocab& vocab) {
    std::vector<std::int32_t> ids;
    if (vocab.eos_id() != Vocab::kNoToken) ids.push_back(vocab.eos_id());
    for (const char* text : {"<|im_end|>", "<|eot_id|>", "<|end_of_text|>", "<end_of_turn>", "<|endoftext|>",
                             "<\xEF\xBD\x9C" "end\xE2\x96\x81of\xE2\x96\x81sentence\xEF\xBD\x9C>"}) {
        const std::optional<std::int32_t> id = vocab.find_token(text);
        if (id && std::find(ids.begin(), ids.end(), *id) == ids.end()) ids.push_back(*id);
    }
    return ids;
}

void check_utf8(std::string_view text, std::string_view what) {
    auto fail = [&](std::size_t offset) {
        char byte[8];
        std::snprintf(byte, sizeof byte, "0x%02X", static_cast<unsigned char>(text[offset]));
        throw GenerationError(std::string(what) + " is not valid UTF-8: byte " + byte + " at offset " +
                              std::to_string(offset));
    };
    std::size_t i = 0;
    while (i < text.size()) {
        const auto lead = static_cast<unsigned char>(text[i]);
        if (lead < 0x80) {
            ++i;
            continue;
        }
        // The length of the character and the range of its second byte,
        // which rules out overlong forms, surrogates and > U+10FFFF (RFC 3629).
        std::size_t length = 0;
        unsigned char low = 0x80, high = 0xBF;
        if (lead >= 0xC2 && lead <= 0xDF) length = 2;
        else if (lead == 0xE0) length = 3, low = 0xA0;
        else if (lead == 0xED) length = 3, high = 0x9F;
        else if (lead >= 0xE1 && lead <= 0xEF) length = 3;
        else if (lead == 0xF0) length = 4, low = 0x90;
        else if (lead == 0xF4) length = 4, high = 0x8F;
        else if (lead >= 0xF1 && lead <= 0xF3) length = 4;
        else fail(i);
        for (std::size_t k = 1; k < length; ++k) {
            if (i + k >= text.size()) fail(i);  // cut short by the end of the text
            const auto byte = static_cast<unsigned char>(text[i + k]);
            if (byte < (k == 1 ? low : 0x80) || byte > (k == 1 ? high : 0xBF)) fail(i + k);
        }
        i += length;
    }
}

int Sequence::reusable_prefix(std::span<const std::int32_t> prompt, const LoraSet& loras) const {
    if (prompt.empty() || loras != loras_) return 0;
    const std::size_t limit = std::min(tokens_.size(), prompt.size() - 1);
    const auto mismatch = std::mismatch(tokens_.begin(), tokens_.begin() + static_cast<std::ptrdiff_t>(limit), prompt.begin());
    return static_cast<int>(mismatch.first - tokens_.begin());
}

std::vector<float> Sequence::prefill(Model& model, ThreadPool& pool, std::span<const std::int32_t> prompt,
                                     const LoraSet& loras, const std::atomic<bool>* cancel) {
    if (prompt.empty()) throw GenerationError("the prompt has no tokens");
    if (static_cast<std::int64_t>(prompt.size()) > cache_.n_positions())
        throw GenerationError("the prompt is " + std::to_string(prompt.size()) + " tokens, longer than the " +
                              std::to_string(cache_.n_positions()) + "-token context");
    const int reused = reusable_prefix(prompt, loras);
    // Until the forward() succeeds the positions past the prefix hold nothing usable.
    tokens_.resize(static_cast<std::size_t>(reused));
    loras_ = loras;
    std::vector<float> logits;
    for (std::size_t begin = tokens_.size(); begin < prompt.size();) {
        if (cancel && cancel->load()) return {};
        const std::size_t end = std::min(prompt.size(), begin + kPrefillChunkTokens);
        const std::span<const std::int32_t> chunk = prompt.subspan(begin, end - begin);
        std::vector<std::int32_t> positions(chunk.size());
        for (std::size_t i = 0; i < positions.size(); ++i) positions[i] = static_cast<std::int32_t>(begin + i);
        logits = model.forward(pool, chunk, positions, cache_, LogitRows::Last, loras_);
        tokens_.insert(tokens_.end(), chunk.begin(), chunk.end());
        begin = end;
    }
    return logits;
}

std::vector<float> Sequence::append(Model& model, ThreadPool& pool, std::int32_t token) {
    const auto position = static_cast<std::int32_t>(tokens_.size());
    std::vector<float> logits = model.forward(pool, std::span<const std::int32_t>(&token, 1),
                                              std::span<const std::int32_t>(&position, 1), cache_, LogitRows::Last,
                                              loras_);
    tokens_.push_back(token);
    return logits;
}

PrefixCache::PrefixCache(const Model& model, int n_positions, KvType type, std::size_t budget_bytes)
    : model_(model), n_positions_(n_positions), type_(type), budget_bytes_(budget_bytes) {}

Sequence& PrefixCache::acquire(std::span<const std::int32_t> prompt, const LoraSet& loras) {
    auto best = sequences_.end();
    int best_reuse = 0;
    for (auto it = sequences_.begin(); it != sequences_.end(); ++it) {
        if (const int reuse = it->reusable_prefix(prompt, loras); reuse > best_reuse) {
            best = it;
            best_reuse = reuse;
        }
    }
    if (best == sequences_.end()) {
        const std::size_t sequence_bytes = sequences_.empty() ? 0 : sequences_.front().cache().bytes();
        if (sequences_.empty() || (sequences_.size() + 1) * sequence_bytes <= budget_bytes_) {
            sequences_.emplace_front(model_.make_kv_cache(n_positions_, type_));
            return sequences_.front();
        }
        best = std::prev(sequences_.end());  // the least recently used
        best->clear();
    }
    sequences_.splice(sequences_.begin(), sequences_, best);
    return sequences_.front();
}

namespace {

// The prompt generate() runs under options.prompt_overflow; dropped: how
// many tokens PromptOverflow::KeepLast removed.
std::vector<std::int32_t> fit_to_context(std::span<const std::int32_t> prompt, int n_ctx, const Vocab* vocab,
                                         const GenerationOptions& options, int& dropped) {
    dropped = 0;
    const int room_for_output = std::min(options.max_tokens, n_ctx / 2);
    const auto limit = static_cast<std::size_t>(n_ctx - room_for_output);
    if (options.prompt_overflow == PromptOverflow::Error || prompt.size() <= limit)
        return {prompt.begin(), prompt.end()};
    const bool keep_bos = vocab && vocab->bos_id() != Vocab::kNoToken && prompt.front() == vocab->bos_id() && limit >= 2;
    std::vector<std::int32_t> kept;
    if (keep_bos) kept.push_back(prompt.front());
    kept.insert(kept.end(), prompt.end() - static_cast<std::ptrdiff_t>(limit - kept.size()), prompt.end());
    dropped = static_cast<int>(prompt.size() - kept.size());
    return kept;
}

}  // namespace

GenerationResult generate(Model& model, ThreadPool& pool, Sequence& sequence, const Vocab* vocab,
                          std::span<const std::int32_t> prompt_ids, const GenerationOptions& options) {
    if (prompt_ids.empty()) throw GenerationError("the prompt has no tokens");
    if (options.grammar && !vocab) throw GenerationError("a grammar needs the model's vocabulary");
    for (const std::string& stop : options.stop_strings)
        if (stop.empty()) throw GenerationError("a stop string is empty");
    const int n_ctx = sequence.cache().n_positions();

    const Clock::time_point start = Clock::now();
    GenerationResult result;
    const std::vector<std::int32_t> prompt =
        fit_to_context(prompt_ids, n_ctx, vocab, options, result.timings.dropped_prompt_tokens);
    result.timings.prompt_tokens = static_cast<int>(prompt.size());
    result.timings.reused_prompt_tokens = sequence.reusable_prefix(prompt, options.loras);
    const std::vector<std::int32_t> end_tokens = vocab ? end_of_generation_tokens(*vocab) : std::vector<std::int32_t>{};
    Sampler sampler(options.sampler);
    const int n_vocab = model.config().n_vocab;

    std::vector<std::int32_t> history(prompt.begin(), prompt.end());
    std::vector<float> logits = sequence.prefill(model, pool, prompt, options.loras, options.cancel);
    const Clock::time_point prefilled = Clock::now();
    result.timings.prefill_seconds = seconds_between(start, prefilled);
    if (logits.empty()) {
        result.stop_reason = StopReason::Cancelled;
        return result;
    }

    std::size_t emitted = 0;  // bytes of result.text passed to on_piece
    auto emit_up_to = [&](std::size_t end) {
        if (end > emitted && options.on_piece)
            options.on_piece(std::string_view(result.text).substr(emitted, end - emitted));
        emitted = std::max(emitted, end);
    };

    result.stop_reason = StopReason::MaxTokens;
    int decoded = 0;  // forward() calls after the prefill
    for (int i = 0; i < options.max_tokens; ++i) {
        if (options.cancel && options.cancel->load()) {
            result.stop_reason = StopReason::Cancelled;
            break;
        }
        const std::span<float> row(logits.data(), static_cast<std::size_t>(n_vocab));
        std::int32_t next = sampler.sample(row, history);
        // llama.cpp's order: the unconstrained pick is usually allowed, and
        // checking one token costs far less than masking all of them.
        if (options.grammar && !options.grammar->allows(next)) {
            options.grammar->mask(row);
            next = sampler.sample(row, history);
        }
        ++result.timings.generated_tokens;
        if (i == 0) result.timings.time_to_first_token_seconds = seconds_between(start, Clock::now());
        if (std::find(end_tokens.begin(), end_tokens.end(), next) != end_tokens.end()) {
            result.stop_reason = StopReason::EndOfGeneration;
            break;
        }
        if (options.grammar) options.grammar->accept(next);
        result.tokens.push_back(next);
        history.push_back(next);
        if (vocab) {
            const std::size_t searched_from = result.text.size();
            result.text += vocab->token_to_piece(next, false);
            std::size_t stop_at = std::string::npos;
            for (const std::string& stop : options.stop_strings) {
                const std::size_t from = searched_from >= stop.size() ? searched_from - stop.size() + 1 : 0;
                stop_at = std::min(stop_at, result.text.find(stop, from));
            }
            if (stop_at != std::string::npos) {
                result.text.resize(stop_at);
                emit_up_to(result.text.size());
                result.stop_reason = StopReason::StopString;
                break;
            }
            const std::string_view text = result.text;
            const std::size_t held = std::max(incomplete_utf8_tail(text), stop_prefix_tail(text, options.stop_strings));
            emit_up_to(text.size() - held);
        }
        if (options.loop_repeats > 0) {
            if (const auto keep = loop_start(result.tokens, options.loop_repeats, kMaxLoopPeriod)) {
                result.tokens.resize(*keep);
                if (vocab) {
                    result.text.clear();
                    for (const std::int32_t token : result.tokens) result.text += vocab->token_to_piece(token, false);
                    emitted = std::min(emitted, result.text.size());
                }
                result.stop_reason = StopReason::Repetition;
                break;
            }
        }
        if (options.grammar && options.grammar->must_end()) {
            result.stop_reason = StopReason::EndOfGeneration;
            break;
        }
        if (i + 1 == options.max_tokens) break;
        if (static_cast<int>(sequence.tokens().size()) >= n_ctx) {
            result.stop_reason = StopReason::ContextFull;
            break;
        }
        const Clock::time_point before = Clock::now();
        logits = sequence.append(model, pool, next);
        result.timings.decode_seconds += seconds_between(before, Clock::now());
        ++decoded;
    }
    if (result.stop_reason != StopReason::StopString) emit_up_to(result.text.size());

    GenerationTimings& t = result.timings;
    if (t.prefill_seconds > 0) t.prefill_tokens_per_second = (t.prompt_tokens - t.reused_prompt_tokens) / t.prefill_seconds;
    if (t.decode_seconds > 0) t.decode_tokens_per_second = decoded / t.decode_seconds;
    return result;
}

GenerationResult generate(Model& model, ThreadPool& pool, KvCache& cache, const Vocab* vocab,
                          std::span<const std::int32_t> prompt, const GenerationOptions& options) {
    Sequence sequence(std::move(cache));
    // The cache goes back to the caller however generate() ends.
    struct GiveBack {
        KvCache& cache;
        Sequence& sequence;
        ~GiveBack() { cache = std::move(sequence).release(); }
    } give_back{cache, sequence};
    return generate(model, pool, sequence, vocab, prompt, options);
}

}  // namespace folio::engine
