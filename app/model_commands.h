#pragma once
// `folio model random`, `folio model quantize`, `folio model list` and
// `folio bench perplexity`: model files Folio writes itself, and how well a
// model predicts a text. cli.cpp parses the arguments; these run the
// commands, print their results (one JSON object with as_json) and return
// the exit status. Errors are thrown, for the CLI to print as one line.

#include <cstdint>
#include <string>

namespace folio::app {

struct RandomModelRequest {
    std::string like;   // a zoo name (engine/model_zoo.h) or an existing .gguf file
    std::string quant;  // a weight type or mix name (engine/model_quantize.h)
    std::string out;
    std::uint64_t seed = 0;
    int layers = 0;     // > 0: only the first N blocks
};
int run_model_random(const RandomModelRequest& request, bool as_json);

struct QuantizeModelRequest {
    std::string in;
    std::string quant;
    std::string out;
};
int run_model_quantize(const QuantizeModelRequest& request, bool as_json);

// The zoo's names, architectures and parameter counts.
int run_model_list(bool as_json);

struct PerplexityBenchRequest {
    std::string model;  // a GGUF file with a tokenizer
    std::string text;   // a UTF-8 text file
    int ctx = 512;      // window length
};
int run_perplexity_bench(const PerplexityBenchRequest& request, bool as_json);

}  // namespace folio::app
