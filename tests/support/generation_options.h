#pragma once
// The generator suites run the tiny model greedily, so that what it makes is
// deterministic; this is the options they share for that.

#include "engine/generator.h"

namespace folio::test {

// Greedy decoding (temperature 0) of at most max_tokens tokens.
inline engine::GenerationOptions greedy_options(int max_tokens) {
    engine::GenerationOptions options;
    options.max_tokens = max_tokens;
    options.sampler.temperature = 0.0f;
    return options;
}

}  // namespace folio::test
