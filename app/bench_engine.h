#pragma once
// `folio bench engine`: the engine's prefill and decode speed on one GGUF
// model, each against a ceiling the machine is measured to have in the same
// run. On the CPU: decode against its memory read bandwidth (decode reads every weight
// once per token), prefill's matmuls against OpenBLAS sgemm on the same
// shapes and against the int8 multiply-add peak of the cores.

#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "engine/gpu_placement.h"
#include "engine/kv_cache.h"

namespace folio::app {

struct EngineBenchOptions {
    std::string model_path;  // a decoder GGUF file
    int prompt_tokens = 512;
    int gen_tokens = 128;
    int threads = 0;         // 0 = one per hardware thread
    int prefix_context_tokens = 3000;  // the document a repeated question reuses (bench_prefix.h); 0 = skip
    engine::KvType kv_type = engine::KvType::F16;  // every run's KV cache, on the CPU or the GPU
    // "cuda": the GPU bench instead (run_engine_bench says what it measures).
    std::string device = "cpu";
    // The GPU bench's GpuPlacement::host_expert_layers (fitted to the
    // longest context of the sweep by default).
    int cpu_experts = engine::GpuPlacement::kFitExperts;
    // The context sweep: prompt lengths prefilled, and cache rows before a
    // decode run starts. Empty: none on the CPU; the GPU bench's defaults
    // (2048, 8192, 32768 and 0, 4096, 32768).
    std::vector<int> prefill_tokens;
    std::vector<int> decode_contexts;
};

// The figures of one run in the order they were measured: the keys of the
// --json object, and one human line each. A measurement that lives elsewhere
// (e.g. the KV cache's prefix reuse) adds its figures through add().
class BenchFigures {
public:
    // An empty line: the figure is in the JSON only (a detail another line shows).
    void add(const std::string& key, nlohmann::json value, std::string line);

    const nlohmann::json& as_json() const { return json_; }
    const std::vector<std::string>& lines() const { return lines_; }

private:
    nlohmann::json json_ = nlohmann::json::object();
    std::vector<std::string> lines_;
};

// Runs the measurements and prints them (one JSON object with as_json);
// returns the exit status. Throws for a file that is not a model Folio runs.
// With device "cuda" the model runs on GPU 0: prefill tokens/s at each of
// prefill_tokens, decode tokens/s at each of decode_contexts with the
// fraction of the GPU's memory bandwidth (a device-to-device copy measured
// in the same run) that decode's reads of weights and KV rows reach.
int run_engine_bench(const EngineBenchOptions& options, bool as_json);

}  // namespace folio::app
