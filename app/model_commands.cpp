#include "app/model_commands.h"

#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <memory>
#include <optional>
#include <sstream>
#include <stdexcept>
#include <vector>

#include <nlohmann/json.hpp>

#include "engine/gguf.h"
#include "engine/model.h"
#include "engine/model_quantize.h"
#include "engine/model_zoo.h"
#include "engine/perplexity.h"
#include "engine/random_model.h"
#include "engine/thread_pool.h"
#include "engine/vocab.h"

namespace folio::app {

namespace {

using nlohmann::json;

void print_json(const json& object) {
    std::cout << object.dump(-1, ' ', false, json::error_handler_t::replace) << '\n';
}

double seconds_since(std::chrono::steady_clock::time_point start) {
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

// "1.2 GB", "135.0 M": sizes and parameter counts for people.
std::string short_number(double value, const char* unit) {
    char text[32];
    if (value >= 1e9)
        std::snprintf(text, sizeof text, "%.2f G%s", value / 1e9, unit);
    else
        std::snprintf(text, sizeof text, "%.1f M%s", value / 1e6, unit);
    return text;
}

void require_output_folder(const std::string& out) {
    const std::filesystem::path folder = std::filesystem::path(out).parent_path();
    if (!folder.empty() && !std::filesystem::is_directory(folder))
        throw std::runtime_error("no folder " + folder.string() + " for " + out);
}

// A summary of a file written: for the human line and the JSON object.
json written_file_json(const std::string& path, const engine::QuantScheme& scheme, double seconds) {
    const engine::GgufFile file = engine::GgufFile::open(path);
    std::int64_t parameters = 0;
    for (const engine::GgufTensor& tensor : file.tensors())
        parameters += tensor.n_elements();
    return {{"out", path},
            {"architecture", file.architecture()},
            {"quant", std::string(scheme.name)},
            {"tensors", file.tensors().size()},
            {"parameters", parameters},
            {"bytes", file.file_size()},
            {"seconds", seconds}};
}

void print_written(const json& summary, bool as_json) {
    if (as_json) {
        print_json(summary);
        return;
    }
    std::printf("wrote %s: %s, %s, %zu tensors, %s parameters, %s in %.1f s\n",
                summary["out"].get<std::string>().c_str(), summary["architecture"].get<std::string>().c_str(),
                summary["quant"].get<std::string>().c_str(), summary["tensors"].get<std::size_t>(),
                short_number(summary["parameters"].get<double>(), "").c_str(),
                short_number(summary["bytes"].get<double>(), "B").c_str(), summary["seconds"].get<double>());
}

}  // namespace

int run_model_random(const RandomModelRequest& request, bool as_json) {
    const engine::QuantScheme scheme = engine::quant_scheme(request.quant);
    require_output_folder(request.out);
    // A path that exists (or names a .gguf) is a file to copy; anything else a zoo name.
    const bool like_file = request.like.ends_with(".gguf") || std::filesystem::is_regular_file(request.like);
    std::optional<engine::GgufFile> source;
    if (like_file)
        source = engine::GgufFile::open(request.like);
    const engine::ModelLayout layout =
        source ? engine::model_layout_of(*source) : engine::zoo_model_layout(request.like);

    const auto started = std::chrono::steady_clock::now();
    const bool show_progress = !as_json && isatty(STDERR_FILENO);
    engine::RandomModelOptions options{.scheme = scheme, .seed = request.seed, .n_layers = request.layers};
    if (show_progress)
        options.on_progress = [](std::uint64_t done, std::uint64_t total) {
            std::fprintf(stderr, "\r%5.1f%% of %s", 100.0 * static_cast<double>(done) / static_cast<double>(total),
                         short_number(static_cast<double>(total), "B").c_str());
            std::fflush(stderr);
        };
    engine::ThreadPool pool;
    engine::write_random_model(layout, options, request.out, pool);
    if (show_progress)
        std::fprintf(stderr, "\r%-40s\r", "");
    json summary = written_file_json(request.out, scheme, seconds_since(started));
    summary["like"] = request.like;
    summary["seed"] = request.seed;
    print_written(summary, as_json);
    return 0;
}

int run_model_quantize(const QuantizeModelRequest& request, bool as_json) {
    const engine::QuantScheme scheme = engine::quant_scheme(request.quant);
    if (!std::filesystem::is_regular_file(request.in))
        throw std::runtime_error("no model file " + request.in);
    require_output_folder(request.out);
    const auto started = std::chrono::steady_clock::now();
    {
        const engine::GgufFile in = engine::GgufFile::open(request.in);
        engine::ThreadPool pool;
        engine::quantize_model(in, scheme, request.out, pool);
    }
    json summary = written_file_json(request.out, scheme, seconds_since(started));
    summary["in"] = request.in;
    print_written(summary, as_json);
    return 0;
}

int run_model_list(bool as_json) {
    for (const engine::ZooModel& model : engine::zoo_models()) {
        const engine::ModelLayout layout = engine::zoo_model_layout(model);
        if (as_json)
            print_json({{"name", model.name},
                        {"architecture", layout.architecture},
                        {"general_name", model.display_name},
                        {"parameters", layout.n_elements()},
                        {"layers", model.n_layers},
                        {"embedding_length", model.n_embd},
                        {"vocab", model.n_vocab}});
        else
            std::printf("%-18s %-7s %10s  %s\n", std::string(model.name).c_str(), layout.architecture.c_str(),
                        short_number(static_cast<double>(layout.n_elements()), "").c_str(),
                        std::string(model.display_name).c_str());
    }
    return 0;
}

int run_perplexity_bench(const PerplexityBenchRequest& request, bool as_json) {
    if (!std::filesystem::is_regular_file(request.model))
        throw std::runtime_error("no model file " + request.model);
    std::ifstream text_file(request.text, std::ios::binary);
    if (!text_file)
        throw std::runtime_error("cannot read " + request.text);
    std::stringstream text;
    text << text_file.rdbuf();

    const engine::GgufFile file = engine::GgufFile::open(request.model);
    if (!file.find("tokenizer.ggml.model"))
        throw std::runtime_error(request.model + " has no tokenizer (tokenizer.ggml.*), so it cannot read a text");
    const engine::Vocab vocab(file);
    std::unique_ptr<engine::Model> model = engine::load_model(file);
    const std::vector<std::int32_t> tokens = vocab.encode(text.str(), false, false);
    if (tokens.size() < static_cast<std::size_t>(request.ctx))
        throw std::runtime_error(request.text + " is " + std::to_string(tokens.size()) +
                                 " tokens, less than one window of " + std::to_string(request.ctx) + " (--ctx)");

    engine::PerplexityOptions options{.n_ctx = request.ctx};
    if (vocab.add_bos() && vocab.bos_id() != engine::Vocab::kNoToken)
        options.bos = vocab.bos_id();
    engine::ThreadPool pool;
    const engine::PerplexityResult result = engine::perplexity(*model, pool, tokens, options);
    const double tokens_per_second = result.n_tokens_run / result.seconds;
    if (as_json) {
        print_json({{"model", request.model},
                    {"text", request.text},
                    {"ctx", request.ctx},
                    {"tokens", tokens.size()},
                    {"windows", result.n_windows},
                    {"scored", result.n_scored},
                    {"perplexity", result.perplexity},
                    {"mean_nll", result.mean_nll},
                    {"seconds", result.seconds},
                    {"tokens_per_second", tokens_per_second}});
        return 0;
    }
    std::printf("perplexity %.4f over %d tokens (%d windows of %d, second halves scored); %.1f s, %.0f tokens/s\n",
                result.perplexity, result.n_scored, result.n_windows, request.ctx, result.seconds, tokens_per_second);
    return 0;
}

}  // namespace folio::app
