#pragma once
// The prefix cache's worth, measured for `folio bench engine`: the time to the
// first token of a question over a long document context, asked cold and then
// again (another question) over the same context held in the KV cache.

#include "engine/model.h"
#include "engine/thread_pool.h"

namespace folio::app {

class BenchFigures;

struct PrefixReuse {
    int context_tokens = 0;    // the shared prefix: system prompt and document
    int question_tokens = 0;   // each question after it
    int reused_tokens = 0;     // what the repeat found in the cache
    double first_ttft_s = 0;   // the cold request: context and question prefilled
    double repeat_ttft_s = 0;  // the repeat: its question only
    double speedup = 0;        // first_ttft_s / repeat_ttft_s
};

// Two greedy requests through one engine::Sequence: context + question A,
// then context + question B. Token ids are random (a forward pass's speed
// does not depend on them); context_tokens is cut to fit the model's
// training context.
PrefixReuse measure_prefix_reuse(engine::Model& model, engine::ThreadPool& pool, int context_tokens);

// Adds "prefix_cache": {context_tokens, first_ttft_s, repeat_ttft_s, speedup, ...} and its line.
void add_prefix_reuse(BenchFigures& figures, const PrefixReuse& reuse);

}  // namespace folio::app
