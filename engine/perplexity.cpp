#include "engine/perplexity.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <numeric>
#include <string>
#include <vector>

#include "engine/kv_cache.h"

namespace folio::engine {

namespace {

// -log softmax(logits)[target], in double so that a large vocabulary's sum loses nothing.
double negative_log_likelihood(const float* logits, std::int64_t n_vocab, std::int32_t target) {
    const float max_logit = *std::max_element(logits, logits + n_vocab);
    double sum = 0;
    for (std::int64_t i = 0; i < n_vocab; ++i)
        sum += std::exp(static_cast<double>(logits[i]) - max_logit);
    return std::log(sum) + max_logit - logits[target];
}

}  // namespace

PerplexityResult perplexity(Model& model, ThreadPool& pool, std::span<const std::int32_t> tokens,
                            const PerplexityOptions& options) {
    const int n_ctx = options.n_ctx;
    if (n_ctx < 4)
        throw ModelError("perplexity: a window of " + std::to_string(n_ctx) + " tokens is too short (at least 4)");
    if (model.is_encoder())
        throw ModelError("perplexity: " + model.config().architecture + " is an encoder, not a language model");
    const auto n_windows = static_cast<int>(tokens.size() / static_cast<std::size_t>(n_ctx));
    if (n_windows == 0)
        throw ModelError("perplexity: " + std::to_string(tokens.size()) + " tokens do not fill one window of " +
                         std::to_string(n_ctx));
    const auto started = std::chrono::steady_clock::now();
    const int n_batch = std::max(1, options.n_batch);
    const int first = n_ctx / 2;  // logits of positions [first, n_ctx - 2] score tokens [first + 1, n_ctx - 1]
    const std::int64_t n_vocab = model.config().n_vocab;

    KvCache cache = model.make_kv_cache(n_ctx);
    double nll_sum = 0;
    int n_scored = 0;
    for (int w = 0; w < n_windows; ++w) {
        std::vector<std::int32_t> window(tokens.begin() + static_cast<std::ptrdiff_t>(w) * n_ctx,
                                         tokens.begin() + static_cast<std::ptrdiff_t>(w + 1) * n_ctx);
        if (options.bos)
            window[0] = *options.bos;
        for (int begin = 0; begin < n_ctx; begin += n_batch) {
            const int end = std::min(n_ctx, begin + n_batch);
            std::vector<std::int32_t> positions(static_cast<std::size_t>(end - begin));
            std::iota(positions.begin(), positions.end(), begin);
            const std::span<const std::int32_t> batch(window.data() + begin, static_cast<std::size_t>(end - begin));
            // A batch before the scored half only fills the cache.
            const bool scored = end - 1 >= first;
            const std::vector<float> logits =
                model.forward(pool, batch, positions, cache, scored ? LogitRows::All : LogitRows::Last);
            if (!scored)
                continue;
            for (int p = std::max(begin, first); p < std::min(end, n_ctx - 1); ++p) {
                nll_sum += negative_log_likelihood(logits.data() + static_cast<std::int64_t>(p - begin) * n_vocab,
                                                   n_vocab, window[static_cast<std::size_t>(p + 1)]);
                ++n_scored;
            }
        }
    }
    PerplexityResult result;
    result.mean_nll = nll_sum / n_scored;
    result.perplexity = std::exp(result.mean_nll);
    result.n_windows = n_windows;
    result.n_scored = n_scored;
    result.n_tokens_run = n_windows * n_ctx;
    result.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
    return result;
}

}  // namespace folio::engine
