#include "app/bench_prefix.h"

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <random>
#include <string>
#include <vector>

#include "app/bench_engine.h"
#include "engine/generator.h"

namespace folio::app {

namespace {

constexpr int kQuestionTokens = 24;

std::vector<std::int32_t> random_tokens(std::mt19937& rng, int n_vocab, int n) {
    std::uniform_int_distribution<std::int32_t> token(0, n_vocab - 1);
    std::vector<std::int32_t> ids(static_cast<std::size_t>(n));
    for (std::int32_t& id : ids)
        id = token(rng);
    return ids;
}

}  // namespace

PrefixReuse measure_prefix_reuse(engine::Model& model, engine::ThreadPool& pool, int context_tokens) {
    const engine::ModelConfig& config = model.config();
    PrefixReuse reuse;
    reuse.question_tokens = kQuestionTokens;
    // Room for the question and the one generated token.
    reuse.context_tokens = std::max(1, std::min(context_tokens, config.n_ctx_train - kQuestionTokens - 1));

    std::mt19937 rng(11);
    const std::vector<std::int32_t> context = random_tokens(rng, config.n_vocab, reuse.context_tokens);
    auto ask = [&](engine::Sequence& sequence) {
        std::vector<std::int32_t> prompt = context;
        const std::vector<std::int32_t> question = random_tokens(rng, config.n_vocab, kQuestionTokens);
        prompt.insert(prompt.end(), question.begin(), question.end());
        engine::GenerationOptions options;
        options.max_tokens = 1;
        options.sampler.temperature = 0;
        return engine::generate(model, pool, sequence, nullptr, prompt, options).timings;
    };

    engine::Sequence sequence(model.make_kv_cache(reuse.context_tokens + kQuestionTokens + 1));
    const engine::GenerationTimings first = ask(sequence);
    const engine::GenerationTimings repeat = ask(sequence);
    reuse.reused_tokens = repeat.reused_prompt_tokens;
    reuse.first_ttft_s = first.time_to_first_token_seconds;
    reuse.repeat_ttft_s = repeat.time_to_first_token_seconds;
    reuse.speedup = reuse.first_ttft_s / reuse.repeat_ttft_s;
    return reuse;
}

void add_prefix_reuse(BenchFigures& figures, const PrefixReuse& reuse) {
    char line[256];
    std::snprintf(line, sizeof line,
                  "prefix cache     first token %.3f s cold, %.3f s repeated over the same %d-token context "
                  "(%d tokens reused): %.1fx",
                  reuse.first_ttft_s, reuse.repeat_ttft_s, reuse.context_tokens, reuse.reused_tokens, reuse.speedup);
    figures.add("prefix_cache",
                {{"context_tokens", reuse.context_tokens},
                 {"question_tokens", reuse.question_tokens},
                 {"reused_tokens", reuse.reused_tokens},
                 {"first_ttft_s", reuse.first_ttft_s},
                 {"repeat_ttft_s", reuse.repeat_ttft_s},
                 {"speedup", reuse.speedup}},
                line);
}

}  // namespace folio::app
