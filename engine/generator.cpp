#include "engine/generator.h"

#include <algorithm>
#include <chrono>

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

const char* stop_reason_name(StopReason reason) {
    switch (reason) {
    case StopReason::EndOfGeneration: return "eog";
    case StopReason::StopString: return "stop";
    case StopReason::MaxTokens: return "length";
    case StopReason::ContextFull: return "context";
    case StopReason::Cancelled: return "cancelled";
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

GenerationResult generate(Model& model, ThreadPool& pool, KvCache& cache, const Vocab* vocab,
                          std::span<const std::int32_t> prompt, const GenerationOptions& options) {
    if (prompt.empty()) throw GenerationError("the prompt has no tokens");
    const int n_ctx = cache.n_positions();
    if (static_cast<std::int64_t>(prompt.size()) > n_ctx)
        throw GenerationError("the prompt is " + std::to_string(prompt.size()) + " tokens, longer than the " +
                              std::to_string(n_ctx) + "-token context");
    for (const std::string& stop : options.stop_strings)
        if (stop.empty()) throw GenerationError("a stop string is empty");

    const Clock::time_point start = Clock::now();
    GenerationResult result;
    result.timings.prompt_tokens = static_cast<int>(prompt.size());
    const std::vector<std::int32_t> end_tokens = vocab ? end_of_generation_tokens(*vocab) : std::vector<std::int32_t>{};
    Sampler sampler(options.sampler);
    const int n_vocab = model.config().n_vocab;

    std::vector<std::int32_t> history(prompt.begin(), prompt.end());
    std::vector<std::int32_t> positions(prompt.size());
    for (std::size_t i = 0; i < positions.size(); ++i) positions[i] = static_cast<std::int32_t>(i);
    std::vector<float> logits = model.forward(pool, prompt, positions, cache, LogitRows::Last);
    const Clock::time_point prefilled = Clock::now();
    result.timings.prefill_seconds = seconds_between(start, prefilled);

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
        const std::int32_t next = sampler.sample(std::span<const float>(logits.data(), static_cast<std::size_t>(n_vocab)), history);
        ++result.timings.generated_tokens;
        if (i == 0) result.timings.time_to_first_token_seconds = seconds_between(start, Clock::now());
        if (std::find(end_tokens.begin(), end_tokens.end(), next) != end_tokens.end()) {
            result.stop_reason = StopReason::EndOfGeneration;
            break;
        }
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
        if (i + 1 == options.max_tokens) break;
        const auto position = static_cast<std::int32_t>(history.size() - 1);
        if (position >= n_ctx) {
            result.stop_reason = StopReason::ContextFull;
            break;
        }
        const Clock::time_point before = Clock::now();
        logits = model.forward(pool, std::span<const std::int32_t>(&next, 1), std::span<const std::int32_t>(&position, 1),
                               cache, LogitRows::Last);
        result.timings.decode_seconds += seconds_between(before, Clock::now());
        ++decoded;
    }
    if (result.stop_reason != StopReason::StopString) emit_up_to(result.text.size());

    GenerationTimings& t = result.timings;
    if (t.prefill_seconds > 0) t.prefill_tokens_per_second = t.prompt_tokens / t.prefill_seconds;
    if (t.decode_seconds > 0) t.decode_tokens_per_second = decoded / t.decode_seconds;
    return result;
}

}  // namespace folio::engine
