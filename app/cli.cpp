#include "app/cli.h"

#include <QCoreApplication>

#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <filesystem>
#include <memory>
#include <random>
#include <iostream>
#include <map>
#include <optional>
#include <set>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

#include "app/bench_ingest.h"
#include "app/library.h"
#include "engine/chat_template.h"
#include "engine/device.h"
#include "engine/generator.h"
#include "engine/gguf.h"
#include "engine/model.h"
#include "engine/model_paths.h"
#include "engine/vocab.h"

namespace folio::app {
namespace {

using nlohmann::json;

// A usage or input problem the user can fix; printed as one line.
class UsageError : public std::runtime_error {
public:
    using std::runtime_error::runtime_error;
};

const char* const kUsage =
    "usage: folio [--library DIR] COMMAND [ARGS]\n"
    "\n"
    "commands:\n"
    "  ingest PATH... [--ocr auto|always|never] [--lang eng+chi_sim] [--jobs N]\n"
    "                 [--password P] [--ocr-timeout SECONDS] [--json]\n"
    "                     add PDFs, scans, images and text files (folders recursively)\n"
    "  docs [--json]      list the library's documents\n"
    "  show DOC_ID [--page N] [--json]\n"
    "                     print a document's stored page text\n"
    "  devices [--json]   the CPU and the NVIDIA GPUs Folio can use\n"
    "  bench ingest PATH... [--ocr-pages N] [--json]\n"
    "                     measure ingest throughput against pdftotext and tesseract\n"
    "  generate --prompt TEXT [--model FILE] [--n N] [--temp T] [--top-k K] [--top-p P]\n"
    "           [--min-p P] [--repeat-penalty R] [--seed S] [--ctx N] [--raw]\n"
    "           [--chat-template NAME] [--device auto|cpu] [--json]\n"
    "                     generate text with a local model (default: the installed chat model)\n"
    "\n"
    "The library lives in --library DIR, else $FOLIO_LIBRARY, else ~/.local/share/folio/library.\n";

// Options of one command: names that take a value, and flags.
struct CommandSpec {
    std::set<std::string> valued;
    std::set<std::string> flags;
};

struct ParsedArgs {
    std::vector<std::string> positional;
    std::map<std::string, std::string> values;
    std::set<std::string> flags;

    bool has(const std::string& flag) const { return flags.count(flag) > 0; }
    std::optional<std::string> value(const std::string& name) const {
        auto it = values.find(name);
        if (it == values.end()) return std::nullopt;
        return it->second;
    }
};

ParsedArgs parse_args(const std::string& command, const std::vector<std::string>& args, const CommandSpec& spec) {
    ParsedArgs parsed;
    for (size_t i = 0; i < args.size(); ++i) {
        const std::string& arg = args[i];
        if (arg.size() < 3 || arg.rfind("--", 0) != 0) {
            parsed.positional.push_back(arg);
            continue;
        }
        std::string name = arg.substr(2), value;
        const size_t equals = name.find('=');
        const bool inline_value = equals != std::string::npos;
        if (inline_value) {
            value = name.substr(equals + 1);
            name = name.substr(0, equals);
        }
        if (spec.flags.count(name)) {
            if (inline_value) throw UsageError("--" + name + " takes no value");
            parsed.flags.insert(name);
        } else if (spec.valued.count(name)) {
            if (!inline_value) {
                if (i + 1 >= args.size()) throw UsageError("--" + name + " needs a value");
                value = args[++i];
            }
            parsed.values[name] = value;
        } else {
            throw UsageError("unknown option --" + name + " for '" + command + "'");
        }
    }
    return parsed;
}

// The number `text` holds in full, or nothing: "12abc" and "" are not numbers.
template <typename Number>
std::optional<Number> read_number(const std::string& text, Number (*convert)(const std::string&, size_t*)) {
    size_t used = 0;
    try {
        const Number value = convert(text, &used);
        if (!text.empty() && used == text.size()) return value;
    } catch (const std::exception&) {
    }
    return std::nullopt;
}

long to_long(const std::string& text, size_t* used) { return std::stol(text, used); }
long long to_long_long(const std::string& text, size_t* used) { return std::stoll(text, used); }
double to_double(const std::string& text, size_t* used) { return std::stod(text, used); }

int parse_int(const std::string& name, const std::string& text, int min, int max) {
    const std::optional<long> value = read_number(text, to_long);
    if (!value || *value < min || *value > max)
        throw UsageError("--" + name + " must be a whole number from " + std::to_string(min) + " to " +
                         std::to_string(max) + ", not '" + text + "'");
    return static_cast<int>(*value);
}

double parse_float(const std::string& name, const std::string& text, double min, double max) {
    const std::optional<double> value = read_number(text, to_double);
    if (!value || !(*value >= min && *value <= max))
        throw UsageError("--" + name + " must be a number from " + json(min).dump() + " to " + json(max).dump() +
                         ", not '" + text + "'");
    return *value;
}

std::int64_t parse_doc_id(const std::string& text) {
    const std::optional<long long> value = read_number(text, to_long_long);
    if (!value || *value <= 0) throw UsageError("'" + text + "' is not a document id");
    return *value;
}

void print_json(const json& object) {
    std::cout << object.dump(-1, ' ', false, json::error_handler_t::replace) << '\n';
}

std::atomic<bool> g_cancel{false};

extern "C" void on_interrupt(int) { g_cancel.store(true); }

// A one-line progress bar on a terminal, redrawn at most ten times a second.
class ProgressBar {
public:
    explicit ProgressBar(bool enabled) : enabled_(enabled) {}
    ~ProgressBar() { clear(); }

    void update(const ingest::PipelineProgress& progress) {
        if (!enabled_) return;
        const auto now = std::chrono::steady_clock::now();
        if (now - last_ < std::chrono::milliseconds(100)) return;
        last_ = now;
        const int width = 30;
        const double fraction =
            progress.files_total ? (progress.files_done + (progress.pages_total
                                                                ? double(progress.pages_done) / progress.pages_total
                                                                : 0.0)) /
                                       progress.files_total
                                 : 0.0;
        const int filled = std::clamp(static_cast<int>(fraction * width), 0, width);
        std::string name = progress.path.substr(progress.path.find_last_of('/') + 1);
        if (name.size() > 32) name = name.substr(0, 29) + "...";
        std::string line = "[" + std::string(filled, '#') + std::string(width - filled, '.') + "] " +
                           std::to_string(progress.files_done) + "/" + std::to_string(progress.files_total) +
                           " files  " + name + " " + std::to_string(progress.pages_done) + "/" +
                           std::to_string(progress.pages_total) + " pages";
        if (progress.ocr_pages_total)
            line += ", OCR " + std::to_string(progress.ocr_pages_done) + "/" + std::to_string(progress.ocr_pages_total);
        std::fprintf(stderr, "\r%-100s", line.c_str());
        std::fflush(stderr);
        drawn_ = true;
    }

    void clear() {
        if (!drawn_) return;
        std::fprintf(stderr, "\r%-100s\r", "");
        std::fflush(stderr);
        drawn_ = false;
    }

private:
    bool enabled_;
    bool drawn_ = false;
    std::chrono::steady_clock::time_point last_{};
};

ingest::PipelineOptions pipeline_options(const ParsedArgs& args) {
    ingest::PipelineOptions options;
    if (auto mode = args.value("ocr")) {
        if (*mode == "auto") options.ocr_mode = ingest::OcrMode::Auto;
        else if (*mode == "always") options.ocr_mode = ingest::OcrMode::Always;
        else if (*mode == "never") options.ocr_mode = ingest::OcrMode::Never;
        else throw UsageError("--ocr must be auto, always or never, not '" + *mode + "'");
    }
    if (auto lang = args.value("lang")) {
        if (lang->empty() || lang->find_first_not_of("abcdefghijklmnopqrstuvwxyz_+") != std::string::npos)
            throw UsageError("--lang takes Tesseract language names joined by '+', like eng+chi_sim");
        options.ocr.languages = *lang;
    }
    if (auto jobs = args.value("jobs")) options.jobs = parse_int("jobs", *jobs, 1, 256);
    if (auto seconds = args.value("ocr-timeout"))
        options.ocr.page_timeout_seconds = parse_int("ocr-timeout", *seconds, 1, 86400);
    if (auto password = args.value("password")) options.password = *password;
    return options;
}

json file_json(const IngestedFile& file) {
    return {{"event", "file"},     {"path", file.path},   {"outcome", outcome_name(file.outcome)},
            {"doc_id", file.doc_id}, {"pages", file.pages}, {"ocr_pages", file.ocr_pages},
            {"chunks", file.chunks}, {"error", file.error}};
}

int command_ingest(Library& library, const ParsedArgs& args) {
    if (args.positional.empty()) throw UsageError("ingest needs at least one file or folder");
    const bool as_json = args.has("json");
    IngestRequest request{.paths = args.positional, .pipeline = pipeline_options(args), .cancel = &g_cancel};

    ProgressBar bar(!as_json && isatty(STDERR_FILENO));
    IngestCallbacks callbacks;
    callbacks.progress = [&](const ingest::PipelineProgress& p) {
        if (as_json) {
            print_json({{"event", "progress"},
                        {"path", p.path},
                        {"pages_done", p.pages_done},
                        {"pages_total", p.pages_total},
                        {"ocr_pages_done", p.ocr_pages_done},
                        {"ocr_pages_total", p.ocr_pages_total},
                        {"files_done", p.files_done},
                        {"files_total", p.files_total}});
        } else {
            bar.update(p);
        }
    };
    callbacks.file_done = [&](const IngestedFile& file) {
        if (as_json) {
            print_json(file_json(file));
            return;
        }
        bar.clear();
        std::string line = std::string(outcome_name(file.outcome));
        line.resize(10, ' ');
        line += file.path;
        if (file.outcome == IngestOutcome::Added || file.outcome == IngestOutcome::Replaced)
            line += "  (" + std::to_string(file.pages) + " pages, " + std::to_string(file.ocr_pages) + " OCR, " +
                    std::to_string(file.chunks) + " chunks)";
        if (!file.error.empty()) line += ": " + file.error;
        std::cout << line << std::endl;
    };

    std::signal(SIGINT, on_interrupt);
    std::signal(SIGTERM, on_interrupt);
    const IngestReport report = library.ingest(request, callbacks);
    bar.clear();

    const json summary = {{"event", "summary"},
                          {"files", report.files.size()},
                          {"added", report.count(IngestOutcome::Added)},
                          {"replaced", report.count(IngestOutcome::Replaced)},
                          {"unchanged", report.count(IngestOutcome::Unchanged)},
                          {"failed", report.count(IngestOutcome::Failed)},
                          {"skipped", report.count(IngestOutcome::Skipped)},
                          {"pages", report.pages},
                          {"ocr_pages", report.ocr_pages},
                          {"chunks", report.chunks},
                          {"seconds", report.seconds},
                          {"cancelled", report.cancelled},
                          {"library", library.directory()}};
    if (as_json) {
        print_json(summary);
    } else {
        std::printf("%zu files: %d added, %d replaced, %d unchanged, %d failed, %d skipped; "
                    "%d pages (%d OCR), %d chunks in %.1f s\n",
                    report.files.size(), report.count(IngestOutcome::Added), report.count(IngestOutcome::Replaced),
                    report.count(IngestOutcome::Unchanged), report.count(IngestOutcome::Failed),
                    report.count(IngestOutcome::Skipped), report.pages, report.ocr_pages, report.chunks,
                    report.seconds);
    }
    if (report.cancelled) {
        std::fprintf(stderr, "folio: error: ingest interrupted; finished documents are stored, run it again to resume\n");
        return 130;
    }
    if (!report.ok()) {
        std::fprintf(stderr, "folio: error: %d of %zu files failed or had failed pages (see above)\n",
                     report.files_with_errors(), report.files.size());
        return 1;
    }
    return 0;
}

json document_json(const index::DocumentRecord& doc) {
    return {{"doc_id", doc.id},
            {"path", doc.path},
            {"pages", doc.pages},
            {"status", index::status_name(doc.status)},
            {"error", doc.error},
            {"type", ingest::file_type_name(doc.type)},
            {"sha256", doc.sha256},
            {"size", doc.size},
            {"created_at", doc.created_at},
            {"updated_at", doc.updated_at}};
}

int command_docs(Library& library, const ParsedArgs& args) {
    if (!args.positional.empty()) throw UsageError("docs takes no arguments");
    const auto documents = library.store().documents();
    if (args.has("json")) {
        for (const auto& doc : documents) print_json(document_json(doc));
        return 0;
    }
    int pages = 0, failed = 0;
    std::printf("%6s  %-8s  %5s  %-8s  %s\n", "ID", "STATUS", "PAGES", "TYPE", "PATH");
    for (const auto& doc : documents) {
        std::printf("%6lld  %-8s  %5d  %-8s  %s%s%s\n", static_cast<long long>(doc.id), index::status_name(doc.status),
                    doc.pages, ingest::file_type_name(doc.type), doc.path.c_str(), doc.error.empty() ? "" : ": ",
                    doc.error.c_str());
        pages += doc.pages;
        failed += doc.status == index::DocumentStatus::Failed;
    }
    std::printf("%zu documents (%d failed), %d pages in %s\n", documents.size(), failed, pages,
                library.directory().c_str());
    return 0;
}

int command_show(Library& library, const ParsedArgs& args) {
    if (args.positional.size() != 1) throw UsageError("show takes one document id");
    const std::int64_t doc_id = parse_doc_id(args.positional[0]);
    const auto doc = library.store().document(doc_id);
    if (!doc) throw UsageError("no document with id " + std::to_string(doc_id) + " in " + library.directory());
    std::vector<index::StoredPage> pages;
    if (auto number = args.value("page")) {
        const int page = parse_int("page", *number, 1, std::max(1, doc->pages));
        auto stored = library.store().page(doc_id, page);
        if (!stored) throw UsageError("document " + std::to_string(doc_id) + " has no page " + *number);
        pages.push_back(std::move(*stored));
    } else {
        pages = library.store().pages(doc_id);
    }
    for (const auto& page : pages) {
        if (args.has("json")) {
            print_json({{"doc_id", doc_id},
                        {"page", page.number},
                        {"text", page.text},
                        {"ocr", page.ocr},
                        {"confidence", page.mean_confidence},
                        {"error", page.error}});
        } else {
            std::printf("--- page %d%s ---\n%s\n", page.number,
                        page.ocr ? (" (OCR, confidence " + std::to_string(static_cast<int>(page.mean_confidence)) +
                                    ")").c_str()
                                 : "",
                        page.text.c_str());
            if (!page.error.empty()) std::printf("[page error: %s]\n", page.error.c_str());
        }
    }
    return 0;
}

int command_devices(const std::vector<std::string>& rest) {
    const ParsedArgs args = parse_args("devices", rest, {.valued = {}, .flags = {"json"}});
    if (!args.positional.empty()) throw UsageError("devices takes no arguments");
    const engine::GpuReport report = engine::detect_gpus();
    const unsigned cores = std::max(1u, std::thread::hardware_concurrency());
    if (args.has("json")) {
        print_json({{"device", "cpu"}, {"threads", cores}});
        for (const auto& gpu : report.gpus)
            print_json({{"device", "cuda"},
                        {"index", gpu.index},
                        {"name", gpu.name},
                        {"compute_capability", std::to_string(gpu.compute_major) + "." +
                                                   std::to_string(gpu.compute_minor)},
                        {"total_bytes", gpu.total_bytes},
                        {"free_bytes", gpu.free_bytes}});
        return 0;
    }
    std::printf("cpu      %u threads\n", cores);
    for (const auto& gpu : report.gpus)
        std::printf("cuda:%d   %s (compute %d.%d), %.1f of %.1f GiB free\n", gpu.index, gpu.name.c_str(),
                    gpu.compute_major, gpu.compute_minor, gpu.free_bytes / 1073741824.0,
                    gpu.total_bytes / 1073741824.0);
    if (report.gpus.empty()) std::printf("no GPU: %s\n", report.note.c_str());
    return 0;
}

int command_bench(const std::vector<std::string>& rest) {
    if (rest.empty() || rest[0] != "ingest") throw UsageError("bench takes 'ingest' (bench engine comes with the engine)");
    const ParsedArgs args = parse_args("bench ingest", {rest.begin() + 1, rest.end()},
                                       {.valued = {"ocr-pages", "jobs"}, .flags = {"json"}});
    if (args.positional.empty()) throw UsageError("bench ingest needs PDF files or folders");
    IngestBenchOptions options;
    options.paths = args.positional;
    if (auto pages = args.value("ocr-pages")) options.ocr_pages = parse_int("ocr-pages", *pages, 1, 1000);
    if (auto jobs = args.value("jobs")) options.jobs = parse_int("jobs", *jobs, 1, 256);
    return run_ingest_bench(options, args.has("json"));
}

int command_generate(const std::vector<std::string>& rest) {
    const ParsedArgs args = parse_args(
        "generate", rest,
        {.valued = {"model", "prompt", "n", "temp", "top-k", "top-p", "min-p", "repeat-penalty", "seed", "ctx",
                    "lora", "device", "chat-template"},
         .flags = {"json", "raw"}});
    if (!args.positional.empty()) throw UsageError("generate takes its prompt as --prompt TEXT");
    const std::optional<std::string> prompt = args.value("prompt");
    if (!prompt) throw UsageError("generate needs --prompt TEXT");
    if (args.value("lora")) throw UsageError("LoRA adapters are not supported yet");
    const std::string device = args.value("device").value_or("auto");
    if (device == "cuda") throw UsageError("the CUDA backend cannot run models yet");
    if (device != "auto" && device != "cpu") throw UsageError("--device must be auto, cpu or cuda, not '" + device + "'");

    engine::GenerationOptions options;
    options.max_tokens = parse_int("n", args.value("n").value_or("128"), 1, 1 << 20);
    options.sampler.temperature = static_cast<float>(parse_float("temp", args.value("temp").value_or("0.7"), 0, 100));
    if (auto k = args.value("top-k")) options.sampler.top_k = parse_int("top-k", *k, 0, 1 << 24);
    if (auto p = args.value("top-p")) options.sampler.top_p = static_cast<float>(parse_float("top-p", *p, 0, 1));
    if (auto p = args.value("min-p")) options.sampler.min_p = static_cast<float>(parse_float("min-p", *p, 0, 1));
    if (auto r = args.value("repeat-penalty"))
        options.sampler.repetition_penalty = static_cast<float>(parse_float("repeat-penalty", *r, 0.01, 100));
    if (auto seed = args.value("seed"))
        options.sampler.seed = static_cast<std::uint64_t>(parse_int("seed", *seed, 0, 2147483647));
    else
        options.sampler.seed = std::random_device{}();
    std::optional<int> ctx;
    if (auto c = args.value("ctx")) ctx = parse_int("ctx", *c, 1, 1 << 20);

    std::string model_path;
    if (auto m = args.value("model")) {
        model_path = *m;
    } else {
        const std::optional<std::string> found = engine::find_default_model(engine::ModelRole::Chat);
        if (!found) throw UsageError("no chat model found; run installer/fetch-models.sh or pass --model FILE");
        model_path = *found;
    }
    if (!std::filesystem::is_regular_file(model_path)) throw UsageError("no model file " + model_path);

    const engine::GgufFile file = engine::GgufFile::open(model_path);
    std::unique_ptr<engine::Model> model = engine::load_model(file);
    if (!file.find("tokenizer.ggml.model"))
        throw UsageError(model_path + " has no tokenizer (tokenizer.ggml.*), so it cannot take a text prompt");
    const engine::Vocab vocab(file);

    std::vector<std::int32_t> prompt_ids;
    if (args.has("raw")) {
        prompt_ids = vocab.encode(*prompt, true, false);
    } else {
        engine::ChatTemplate chat_template;
        if (auto name = args.value("chat-template")) {
            chat_template.format = engine::chat_format_from_name(*name);
        } else {
            const std::optional<std::string_view> source = file.find_string("tokenizer.chat_template");
            if (!source)
                throw UsageError("the model has no chat template; pass --chat-template "
                                 "chatml|llama3|gemma|mistral|deepseek|deepseek-coder, or --raw");
            chat_template = engine::detect_chat_template(*source);
        }
        const std::string text = engine::render_chat(chat_template, {{"user", *prompt}});
        prompt_ids = vocab.encode(text, false, true);
    }

    const int model_ctx = model->config().n_ctx_train > 0 ? model->config().n_ctx_train : 4096;
    const int n_ctx = ctx.value_or(std::min(4096, model_ctx));
    if (static_cast<int>(prompt_ids.size()) > n_ctx)
        throw UsageError("the prompt is " + std::to_string(prompt_ids.size()) + " tokens, longer than the " +
                         std::to_string(n_ctx) + "-token context (--ctx)");
    engine::KvCache cache = model->make_kv_cache(n_ctx);
    engine::ThreadPool pool;

    const bool as_json = args.has("json");
    if (!as_json)
        options.on_piece = [](std::string_view piece) {
            std::fwrite(piece.data(), 1, piece.size(), stdout);
            std::fflush(stdout);
        };
    g_cancel.store(false);
    options.cancel = &g_cancel;
    std::signal(SIGINT, on_interrupt);
    const engine::GenerationResult result = engine::generate(*model, pool, cache, &vocab, prompt_ids, options);
    std::signal(SIGINT, SIG_DFL);

    if (!as_json) {
        std::fputc('\n', stdout);
        return 0;
    }
    const engine::GenerationTimings& t = result.timings;
    print_json({{"text", result.text},
                {"tokens", result.tokens},
                {"stop_reason", engine::stop_reason_name(result.stop_reason)},
                {"model", model_path},
                {"timings",
                 {{"prompt_tokens", t.prompt_tokens},
                  {"generated_tokens", t.generated_tokens},
                  {"prefill_seconds", t.prefill_seconds},
                  {"decode_seconds", t.decode_seconds},
                  {"prefill_tokens_per_second", t.prefill_tokens_per_second},
                  {"decode_tokens_per_second", t.decode_tokens_per_second},
                  {"time_to_first_token_seconds", t.time_to_first_token_seconds}}}});
    return 0;
}

}  // namespace

int run_cli(int argc, char** argv) {
    std::vector<std::string> args(argv + 1, argv + argc);
    std::string library_dir;
    size_t i = 0;
    for (; i < args.size(); ++i) {
        if (args[i] == "--library") {
            if (i + 1 >= args.size()) {
                std::fprintf(stderr, "folio: error: --library needs a folder\n");
                return 2;
            }
            library_dir = args[++i];
        } else if (args[i].rfind("--library=", 0) == 0) {
            library_dir = args[i].substr(10);
        } else if (args[i] == "--help" || args[i] == "-h") {
            std::fputs(kUsage, stdout);
            return 0;
        } else if (args[i] == "--version") {
            std::printf("folio %s\n", QCoreApplication::applicationVersion().toStdString().c_str());
            return 0;
        } else {
            break;
        }
    }
    if (i >= args.size()) {
        std::fputs(kUsage, stderr);
        return 2;
    }
    const std::string command = args[i];
    const std::vector<std::string> rest(args.begin() + i + 1, args.end());
    try {
        if (command == "bench") return command_bench(rest);
        if (command == "devices") return command_devices(rest);
        if (command == "generate") return command_generate(rest);
        static const std::map<std::string, CommandSpec> specs = {
            {"ingest", {.valued = {"ocr", "lang", "jobs", "password", "ocr-timeout"}, .flags = {"json"}}},
            {"docs", {.valued = {}, .flags = {"json"}}},
            {"show", {.valued = {"page"}, .flags = {"json"}}},
        };
        const auto spec = specs.find(command);
        if (spec == specs.end()) throw UsageError("unknown command '" + command + "' (see folio --help)");
        const ParsedArgs parsed = parse_args(command, rest, spec->second);
        Library library(library_dir.empty() ? Library::default_directory() : library_dir);
        if (command == "ingest") return command_ingest(library, parsed);
        if (command == "docs") return command_docs(library, parsed);
        return command_show(library, parsed);
    } catch (const UsageError& e) {
        std::fprintf(stderr, "folio: error: %s\n", e.what());
        return 2;
    } catch (const std::exception& e) {
        std::fprintf(stderr, "folio: error: %s\n", e.what());
        return 1;
    }
}

}  // namespace folio::app
