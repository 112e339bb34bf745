#include "app/cli.h"

#include <QCoreApplication>
#include <QDir>
#include <QTemporaryDir>

#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <charconv>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <ctime>
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

#include "app/bench_ask.h"
#include "app/bench_engine.h"
#include "app/bench_ingest.h"
#include "app/convert_hf.h"
#include "app/bench_retrieval.h"
#include "app/cli_commands.h"
#include "app/cli_support.h"
#include "app/library.h"
#include "app/model_commands.h"
#include "engine/chat_template.h"
#include "engine/device.h"
#include "engine/embedder.h"
#include "engine/generator.h"
#include "engine/gguf.h"
#include "engine/lora.h"
#include "engine/model.h"
#include "engine/model_paths.h"
#include "engine/vocab.h"

namespace folio::app {
namespace {

using nlohmann::json;

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
    "  search QUERY [--k 10] [--mode hybrid|bm25|vector] [--fusion rrf|weighted] [--doc ID[,ID...]]...\n"
    "               [--type pdf|text|...] [--from YYYY-MM-DD] [--until YYYY-MM-DD] [--syntax] [--rerank] [--json]\n"
    "                     find the chunks that match a query, best first (hybrid once chunks have vectors)\n"
    "  ask QUESTION [--k 8] [--doc ID[,ID...]]... [--pack NAME] [--model FILE] [--max-tokens N]\n"
    "               [--rerank|--no-rerank] [--json]\n"
    "                     answer from the library's documents, citing them [n]; QUESTION '-' reads\n"
    "                     questions from stdin, one a line, as one conversation; the sources are\n"
    "                     reranked when a reranking model is installed\n"
    "  summarize DOC_ID [--pack NAME] [--model FILE] [--json]\n"
    "                     summarize a whole document in points that cite their pages (long ones by\n"
    "                     sections, then merged)\n"
    "  extract (--pack NAME | --schema FILE) (--doc ID | --all) [--out FILE] [--format jsonl|csv|fhir]\n"
    "          [--model FILE] [--json]\n"
    "                     fields as JSON valid against the schema, each located on its page or flagged\n"
    "  index [--json]     embed the chunks that have no vector yet (resumable; ingest does it too)\n"
    "  batch PATH... --pack NAME --out DIR [--jobs N] [--model FILE] [--json]\n"
    "                     ingest and extract every record to DIR (records.jsonl, records.csv, FHIR\n"
    "                     for the medical pack); resumable: a rerun skips the records already done\n"
    "                     (ask, summarize, extract and batch run a --pack's LoRA adapter when it fits\n"
    "                     the model; --no-adapter runs without it)\n"
    "  devices [--json]   the CPU and the NVIDIA GPUs Folio can use\n"
    "  bench ask --questions FILE.jsonl [--model FILE] [--k N] [--max-tokens N] [--rerank|--no-rerank] [--json]\n"
    "                     answer accuracy, citation precision and first-token times of ask on labelled questions\n"
    "  bench engine [--model FILE] [--prompt-tokens N] [--gen-tokens N] [--threads N] [--context-tokens N]\n"
    "               [--prefill-tokens N,...] [--decode-contexts N,...] [--kv-type f16|q8_0] [--json]\n"
    "                     measure prefill and decode speed against this machine's bandwidth and peak,\n"
    "                     the first-token speedup of a question repeated over an N-token context, and\n"
    "                     (given) prefill at each prompt length and decode at each context depth\n"
    "  bench engine --device cuda [--model FILE] [--prefill-tokens N,...] [--decode-contexts N,...]\n"
    "               [--gen-tokens N] [--json]\n"
    "                     the same on GPU 0: prefill at each prompt length, decode at each context depth,\n"
    "                     against the GPU's measured copy bandwidth\n"
    "  bench ingest PATH... [--ocr-pages N] [--json]\n"
    "                     measure ingest throughput against pdftotext and tesseract\n"
    "  bench perplexity --model FILE --text FILE [--ctx N] [--json]\n"
    "                     perplexity of a model over a text (second half of each window scored)\n"
    "  bench retrieval --queries FILE.jsonl [--corpus DIR] [--mode bm25,vector,hybrid-rrf,...] [--json]\n"
    "                     recall@5, recall@10 and nDCG@10 of search over a labelled query set\n"
    "  generate --prompt TEXT [--model FILE] [--n N] [--temp T] [--top-k K] [--top-p P]\n"
    "           [--min-p P] [--repeat-penalty R] [--seed S] [--ctx N] [--raw]\n"
    "           [--chat-template NAME] [--kv-type f16|q8_0] [--truncate error|keep-last]\n"
    "           [--lora FILE[:SCALE]]... [--device auto|cpu|cuda] [--json]\n"
    "                     generate text with a local model (default: the installed chat model), with\n"
    "                     LoRA adapters (GGUF) at their scales (default 1)\n"
    "  embed TEXT... [--model FILE] [--device auto|cpu|cuda] [--json]\n"
    "                     sentence embeddings of texts (default: the installed embedding model)\n"
    "  convert hf DIR --out FILE.gguf [--type f16|f32] [--base MODEL.gguf] [--json]\n"
    "                     a Hugging Face safetensors model folder (BERT, Llama, Qwen2, Qwen3) to GGUF,\n"
    "                     or a PEFT LoRA adapter folder to a GGUF adapter for the --base model\n"
    "  model list [--json]  the model shapes 'model random' knows\n"
    "  model random --like NAME|FILE.gguf --out FILE.gguf [--quant TYPE] [--seed S] [--layers N] [--json]\n"
    "                     write a model of real shapes with random weights (tests, benchmarks)\n"
    "  model quantize IN.gguf --quant TYPE --out OUT.gguf [--json]\n"
    "                     convert a model's weights: F32 F16 BF16 Q4_0 Q4_1 Q5_0 Q5_1 Q8_0\n"
    "                     Q2_K Q3_K Q4_K Q5_K Q6_K, or the mixes Q4_K_S Q5_K_S Q4_K_M Q5_K_M\n"
    "  pack install FILE.foliopack [--allow-downgrade] [--model FILE] [--json]\n"
    "                     install a signed domain pack (checked whole before anything is activated)\n"
    "  pack list | verify NAME|FILE.foliopack | remove NAME [--json]\n"
    "                     the built-in and installed packs; check an installed pack's files or a pack file\n"
    "  pack log [--json]  installs, downgrades, removals and trusted keys, oldest first\n"
    "  pack keygen --out PREFIX | trust KEY.pub\n"
    "  pack build DIR --key SECRET.key --out FILE.foliopack [--base-model FILE.gguf] [--pin-weights]\n"
    "                     make and sign packs; trust an organization's signing key\n"
    "\n"
    "The library lives in --library DIR, else $FOLIO_LIBRARY, else ~/.local/share/folio/library;\n"
    "installed packs in $FOLIO_PACKS, else ~/.local/share/folio/packs.\n";

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
        // printf rather than string concatenation, which trips GCC 12's
        // -Wrestrict false positive (GCC bug 105329) in release builds.
        char line[160];
        const int length = std::snprintf(line, sizeof line, "[%s%s] %d/%d files  %s %d/%d pages",
                                         std::string(filled, '#').c_str(), std::string(width - filled, '.').c_str(),
                                         progress.files_done, progress.files_total, name.c_str(), progress.pages_done,
                                         progress.pages_total);
        if (progress.ocr_pages_total && length > 0 && length < static_cast<int>(sizeof line))
            std::snprintf(line + length, sizeof line - static_cast<std::size_t>(length), ", OCR %d/%d",
                          progress.ocr_pages_done, progress.ocr_pages_total);
        std::fprintf(stderr, "\r%-100s", line);
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
            {"chunks", file.chunks}, {"error", file.error}, {"same_as", file.same_as}};
}

json embedding_json(const EmbeddingReport& report) {
    return {{"event", "embedding"},          {"model", report.model},
            {"embedded", report.embedded},   {"remaining", report.remaining},
            {"model_changed", report.model_changed}, {"seconds", report.seconds},
            {"chunks_per_second", report.seconds > 0 ? report.embedded / report.seconds : 0.0},
            {"error", report.error}};
}

void print_embedding_report(const EmbeddingReport& report) {
    if (!report.error.empty()) {
        std::printf("vectors: %lld chunks embedded, %lld not yet (search falls back to keywords for them): %s\n",
                    static_cast<long long>(report.embedded), static_cast<long long>(report.remaining),
                    report.error.c_str());
        return;
    }
    std::printf("vectors: %lld chunks embedded by %s%s in %.1f s (%.1f chunks/s), %lld left\n",
                static_cast<long long>(report.embedded), report.model.c_str(),
                report.model_changed ? " (a new model: re-embedding every chunk)" : "", report.seconds,
                report.seconds > 0 ? report.embedded / report.seconds : 0.0, static_cast<long long>(report.remaining));
}

// `folio index`: embeds the chunks that have no vector yet (a library made
// before vectors, an interrupted ingest, a new embedding model).
int command_index(Library& library, const ParsedArgs& args) {
    if (!args.positional.empty()) throw UsageError("index takes no arguments");
    const bool as_json = args.has("json");
    const InterruptGuard interrupt;
    const EmbeddingReport report = library.embed_chunks(
        [&](const index::EmbeddingProgress& p) {
            if (as_json)
                print_json({{"event", "progress"}, {"embedded", p.embedded}, {"remaining", p.remaining}});
            else if (isatty(STDERR_FILENO))
                std::fprintf(stderr, "\r%lld embedded, %lld left ", static_cast<long long>(p.embedded),
                             static_cast<long long>(p.remaining));
        },
        &g_cancel);
    if (!as_json && isatty(STDERR_FILENO)) std::fputs("\n", stderr);
    if (as_json) print_json(embedding_json(report));
    else print_embedding_report(report);
    if (g_cancel.load()) {
        std::fprintf(stderr, "folio: error: indexing interrupted; embedded chunks are stored, run it again to resume\n");
        return 130;
    }
    if (!report.error.empty()) {
        std::fprintf(stderr, "folio: error: %s\n", report.error.c_str());
        return 1;
    }
    return 0;
}

int command_ingest(Library& library, const ParsedArgs& args) {
    if (args.positional.empty()) throw UsageError("ingest needs at least one file or folder");
    const bool as_json = args.has("json");
    IngestRequest request{
        .paths = args.positional, .pipeline = pipeline_options(args), .cancel = &g_cancel, .embed = true};

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
        if (file.outcome == IngestOutcome::Duplicate) line += "  (same content as " + file.same_as + ")";
        if (file.outcome == IngestOutcome::Moved) line += "  (was " + file.same_as + ")";
        if (!file.error.empty()) line += ": " + file.error;
        std::cout << line << std::endl;
    };

    const InterruptGuard interrupt;
    const IngestReport report = library.ingest(request, callbacks);
    bar.clear();

    const json summary = {{"event", "summary"},
                          {"files", report.files.size()},
                          {"added", report.count(IngestOutcome::Added)},
                          {"replaced", report.count(IngestOutcome::Replaced)},
                          {"unchanged", report.count(IngestOutcome::Unchanged)},
                          {"moved", report.count(IngestOutcome::Moved)},
                          {"duplicate", report.count(IngestOutcome::Duplicate)},
                          {"failed", report.count(IngestOutcome::Failed)},
                          {"skipped", report.count(IngestOutcome::Skipped)},
                          {"pages", report.pages},
                          {"ocr_pages", report.ocr_pages},
                          {"chunks", report.chunks},
                          {"seconds", report.seconds},
                          {"cancelled", report.cancelled},
                          {"library", library.directory()}};
    if (as_json) {
        if (!report.cancelled) print_json(embedding_json(report.embedding));
        print_json(summary);
    } else {
        // Nothing new stored: nothing was embedded, and nothing to say.
        if (!report.cancelled && (!report.embedding.model.empty() || !report.embedding.error.empty()))
            print_embedding_report(report.embedding);
        std::printf("%zu files: %d added, %d replaced, %d unchanged, %d moved, %d duplicate, %d failed, %d skipped; "
                    "%d pages (%d OCR), %d chunks in %.1f s\n",
                    report.files.size(), report.count(IngestOutcome::Added), report.count(IngestOutcome::Replaced),
                    report.count(IngestOutcome::Unchanged), report.count(IngestOutcome::Moved),
                    report.count(IngestOutcome::Duplicate), report.count(IngestOutcome::Failed),
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

// Unix seconds of 00:00 UTC on a YYYY-MM-DD date, plus `days`.
std::int64_t parse_date(const std::string& name, const std::string& text, int days) {
    std::tm date{};
    char rest = 0;
    if (std::sscanf(text.c_str(), "%4d-%2d-%2d%c", &date.tm_year, &date.tm_mon, &date.tm_mday, &rest) != 3 ||
        date.tm_mon < 1 || date.tm_mon > 12 || date.tm_mday < 1 || date.tm_mday > 31)
        throw UsageError("--" + name + " takes a date as YYYY-MM-DD, not '" + text + "'");
    date.tm_year -= 1900;
    date.tm_mon -= 1;
    date.tm_mday += days;
    return static_cast<std::int64_t>(timegm(&date));
}

index::SearchMode parse_search_mode(const std::string& text) {
    const std::optional<index::SearchMode> mode = index::search_mode_from_name(text);
    if (!mode) throw UsageError("--mode must be hybrid, bm25 or vector, not '" + text + "'");
    return *mode;
}

json hit_json(int rank, const index::SearchHit& hit) {
    json boxes = json::array();
    for (const ingest::PageBox& b : hit.boxes)
        boxes.push_back({{"page", b.page}, {"x0", b.box.x0}, {"y0", b.box.y0}, {"x1", b.box.x1}, {"y1", b.box.y1}});
    return {{"rank", rank},       {"chunk_id", hit.chunk_id}, {"doc_id", hit.doc_id},
            {"path", hit.path},   {"page", hit.page},         {"page_end", hit.page_end},
            {"score", hit.score}, {"heading_path", hit.heading_path}, {"text", hit.text},
            {"boxes", boxes}};
}

int command_search(Library& library, const ParsedArgs& args) {
    if (args.positional.size() != 1) throw UsageError("search takes one query (quote it)");
    index::SearchOptions options;
    options.k = parse_int("k", args.value("k").value_or("10"), 1, 1000);
    // bm25 until chunk vectors exist; then hybrid, as ARCHITECTURE.md has it.
    options.mode = parse_search_mode(args.value("mode").value_or(library.has_current_vectors() ? "hybrid" : "bm25"));
    if (auto fusion = args.value("fusion")) {
        const std::optional<index::Fusion> parsed = index::fusion_from_name(*fusion);
        if (!parsed) throw UsageError("--fusion must be rrf or weighted, not '" + *fusion + "'");
        options.fusion = *parsed;
    }
    options.fts5_syntax = args.has("syntax");
    options.rerank = args.has("rerank");
    options.doc_ids = doc_ids_argument(args, library);
    if (auto type = args.value("type")) {
        for (ingest::FileType t : {ingest::FileType::Pdf, ingest::FileType::Png, ingest::FileType::Jpeg,
                                   ingest::FileType::Tiff, ingest::FileType::Text, ingest::FileType::Markdown})
            if (*type == ingest::file_type_name(t)) options.type = t;
        if (!options.type) throw UsageError("--type must be pdf, png, jpeg, tiff, text or markdown, not '" + *type + "'");
    }
    if (auto from = args.value("from")) options.updated_from = parse_date("from", *from, 0);
    if (auto until = args.value("until")) options.updated_until = parse_date("until", *until, 1) - 1;

    std::vector<index::SearchHit> hits;
    try {
        hits = library.search(args.positional[0], options);
    } catch (const index::SearchError& e) {
        throw UsageError(e.what());
    }
    if (args.has("json")) {
        for (std::size_t i = 0; i < hits.size(); ++i) print_json(hit_json(static_cast<int>(i) + 1, hits[i]));
        return 0;
    }
    for (std::size_t i = 0; i < hits.size(); ++i) {
        const index::SearchHit& hit = hits[i];
        std::string snippet = hit.text.substr(0, 240);
        std::replace(snippet.begin(), snippet.end(), '\n', ' ');
        const std::string pages =
            hit.page == hit.page_end ? std::to_string(hit.page) : std::to_string(hit.page) + "-" + std::to_string(hit.page_end);
        std::printf("%2zu. %.3f  %s  p. %s  (doc %lld, chunk %lld)\n", i + 1, hit.score, hit.path.c_str(), pages.c_str(),
                    static_cast<long long>(hit.doc_id), static_cast<long long>(hit.chunk_id));
        if (!hit.heading_path.empty()) std::printf("    %s\n", hit.heading_path.c_str());
        std::printf("    %s%s\n", snippet.c_str(), hit.text.size() > snippet.size() ? " ..." : "");
    }
    if (hits.empty()) std::printf("no matches in %s\n", library.directory().c_str());
    return 0;
}

// `folio bench retrieval --synthetic N`: a new library (--library, else a
// temporary folder removed afterwards) of N generated chunks.
int command_bench_synthetic(const std::string& library_dir, const std::string& chunks, bool as_json) {
    SyntheticBenchOptions options;
    options.chunks = parse_int("synthetic", chunks, 1000, 100000000);
    std::optional<QTemporaryDir> temporary;
    if (library_dir.empty()) {
        temporary.emplace(QDir::tempPath() + "/folio-synthetic-XXXXXX");
        if (!temporary->isValid()) throw std::runtime_error("cannot create a temporary library folder");
        options.directory = temporary->path().toStdString() + "/library";
    } else {
        options.directory = library_dir;
    }
    const SyntheticBenchReport r = run_synthetic_bench(options, [&](const std::string& text) {
        if (!as_json) std::fprintf(stderr, "%s\n", text.c_str());
    });
    const json report = {{"chunks", r.chunks},
                         {"dimension", r.dimension},
                         {"index", r.index_kind},
                         {"fill_seconds", r.fill_seconds},
                         {"index_build_seconds", r.index_build_seconds},
                         {"index_memory_mib", r.index_memory_mib},
                         {"index_file_mib", r.index_file_mib},
                         {"hybrid_p50_ms", r.hybrid_p50_ms},
                         {"hybrid_p95_ms", r.hybrid_p95_ms},
                         {"vector_p50_ms", r.vector_p50_ms},
                         {"vector_p95_ms", r.vector_p95_ms},
                         {"bm25_p50_ms", r.bm25_p50_ms},
                         {"bm25_p95_ms", r.bm25_p95_ms},
                         {"planted_found_at_10", r.planted_found_at_10},
                         {"hardware_threads", std::thread::hardware_concurrency()}};
    if (as_json) {
        print_json(report);
    } else {
        for (const auto& [key, value] : report.items()) std::printf("%-22s %s\n", key.c_str(), value.dump().c_str());
    }
    return 0;
}

int command_bench_retrieval(const std::string& library_dir, const std::vector<std::string>& rest) {
    const ParsedArgs args =
        parse_args("bench retrieval", rest, {.valued = {"queries", "corpus", "mode", "synthetic"}, .flags = {"json"}});
    if (!args.positional.empty()) throw UsageError("bench retrieval takes its query set as --queries FILE.jsonl");
    if (auto synthetic = args.value("synthetic")) return command_bench_synthetic(library_dir, *synthetic, args.has("json"));
    RetrievalBenchOptions options;
    options.queries = args.value("queries").value_or("");
    if (options.queries.empty()) throw UsageError("bench retrieval needs --queries FILE.jsonl");
    Library library(library_dir.empty() ? Library::default_directory() : library_dir);
    if (auto corpus = args.value("corpus")) {
        const IngestReport report =
            library.ingest({.paths = {*corpus}, .pipeline = {}, .cancel = &g_cancel, .embed = true});
        if (!report.ok()) throw std::runtime_error("could not ingest every file of " + *corpus);
    }
    // Every method the library can serve, unless --mode picks some.
    const std::string modes =
        args.value("mode").value_or(library.has_vectors() ? "bm25,vector,hybrid-rrf,hybrid-weighted" : "bm25");
    options.methods.clear();
    for (std::size_t start = 0; start <= modes.size();) {
        const std::size_t comma = std::min(modes.find(',', start), modes.size());
        const std::string name = modes.substr(start, comma - start);
        const std::optional<RetrievalMethod> method = retrieval_method_from_name(name);
        if (!method)
            throw UsageError("--mode takes bm25, vector, hybrid, hybrid-rrf or hybrid-weighted, each optionally "
                             "followed by +rerank, not '" + name + "'");
        options.methods.push_back(*method);
        start = comma + 1;
    }
    std::vector<RetrievalScore> scores;
    try {
        scores = run_retrieval_bench(library, options);
    } catch (const index::SearchError& e) {
        throw UsageError(e.what());
    }
    const bool as_json = args.has("json");
    if (!as_json) std::printf("%-22s %-9s %-9s %7s %9s %10s %8s %12s\n", "mode", "domain", "scope", "queries", "recall@5",
                              "recall@10", "nDCG@10", "unreachable");
    for (const RetrievalScore& s : scores) {
        if (as_json)
            print_json({{"mode", s.mode}, {"domain", s.domain}, {"scope", s.scope}, {"queries", s.queries},
                        {"recall_at_5", s.recall_at_5}, {"recall_at_10", s.recall_at_10},
                        {"ndcg_at_10", s.ndcg_at_10}, {"unreachable", s.unreachable}});
        else
            std::printf("%-22s %-9s %-9s %7d %9.3f %10.3f %8.3f %12d\n", s.mode.c_str(), s.domain.c_str(),
                        s.scope.c_str(), s.queries, s.recall_at_5, s.recall_at_10, s.ndcg_at_10, s.unreachable);
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

// --kv-type f16|q8_0 (default f16).
engine::KvType kv_type_argument(const ParsedArgs& args) {
    const std::string name = args.value("kv-type").value_or("f16");
    if (name != "f16" && name != "q8_0") throw UsageError("--kv-type must be f16 or q8_0, not '" + name + "'");
    return engine::kv_type_from_name(name);
}

int command_bench_engine(const std::vector<std::string>& rest) {
    const ParsedArgs args = parse_args("bench engine", rest,
                                       {.valued = {"model", "prompt-tokens", "gen-tokens", "threads", "device", "cpu-experts",
                                                   "context-tokens", "prefill-tokens", "decode-contexts", "kv-type"},
                                        .flags = {"json"}});
    if (!args.positional.empty()) throw UsageError("bench engine takes its model as --model FILE");
    EngineBenchOptions options;
    options.device = args.value("device").value_or("cpu");
    if (options.device != "cpu" && options.device != "cuda")
        throw UsageError("bench engine measures --device cpu or --device cuda, not '" + options.device + "'");
    options.kv_type = kv_type_argument(args);
    options.cpu_experts = cpu_experts_argument(args);
    if (options.device != "cuda" && args.value("cpu-experts"))
        throw UsageError("--cpu-experts is for --device cuda, which it splits with the host");
    if (auto list = args.value("prefill-tokens")) options.prefill_tokens = parse_int_list("prefill-tokens", *list, 1, 1 << 20);
    if (auto list = args.value("decode-contexts"))
        options.decode_contexts = parse_int_list("decode-contexts", *list, 0, 1 << 20);
    options.model_path = model_file_argument(args, engine::ModelRole::Chat, "chat");
    if (auto n = args.value("prompt-tokens")) options.prompt_tokens = parse_int("prompt-tokens", *n, 1, 1 << 16);
    if (auto n = args.value("gen-tokens")) options.gen_tokens = parse_int("gen-tokens", *n, 1, 1 << 16);
    if (auto n = args.value("threads")) options.threads = parse_int("threads", *n, 1, 1024);
    if (auto n = args.value("context-tokens"))
        options.prefix_context_tokens = parse_int("context-tokens", *n, 0, 1 << 20);
    return run_engine_bench(options, args.has("json"));
}

int command_bench_perplexity(const std::vector<std::string>& rest) {
    const ParsedArgs args =
        parse_args("bench perplexity", rest, {.valued = {"model", "text", "ctx"}, .flags = {"json"}});
    if (!args.positional.empty()) throw UsageError("bench perplexity takes --model FILE --text FILE");
    PerplexityBenchRequest request;
    request.model = args.value("model").value_or("");
    request.text = args.value("text").value_or("");
    if (request.model.empty() || request.text.empty())
        throw UsageError("bench perplexity needs --model FILE and --text FILE");
    if (auto ctx = args.value("ctx")) request.ctx = parse_int("ctx", *ctx, 4, 1 << 20);
    return run_perplexity_bench(request, args.has("json"));
}

int command_bench(const std::vector<std::string>& rest) {
    if (!rest.empty() && rest[0] == "engine") return command_bench_engine({rest.begin() + 1, rest.end()});
    if (!rest.empty() && rest[0] == "perplexity") return command_bench_perplexity({rest.begin() + 1, rest.end()});
    if (rest.empty() || rest[0] != "ingest")
        throw UsageError("bench takes 'ask', 'engine', 'ingest', 'perplexity' or 'retrieval'");
    const ParsedArgs args = parse_args("bench ingest", {rest.begin() + 1, rest.end()},
                                       {.valued = {"ocr-pages", "jobs"}, .flags = {"json"}});
    if (args.positional.empty()) throw UsageError("bench ingest needs PDF files or folders");
    IngestBenchOptions options;
    options.paths = args.positional;
    if (auto pages = args.value("ocr-pages")) options.ocr_pages = parse_int("ocr-pages", *pages, 1, 1000);
    if (auto jobs = args.value("jobs")) options.jobs = parse_int("jobs", *jobs, 1, 256);
    return run_ingest_bench(options, args.has("json"));
}

int command_model(const std::vector<std::string>& rest) {
    const std::string sub = rest.empty() ? "" : rest[0];
    const std::vector<std::string> tail(rest.begin() + (rest.empty() ? 0 : 1), rest.end());
    if (sub == "list") {
        const ParsedArgs args = parse_args("model list", tail, {.valued = {}, .flags = {"json"}});
        if (!args.positional.empty()) throw UsageError("model list takes no arguments");
        return run_model_list(args.has("json"));
    }
    if (sub == "random") {
        const ParsedArgs args =
            parse_args("model random", tail, {.valued = {"like", "quant", "out", "seed", "layers"}, .flags = {"json"}});
        if (!args.positional.empty()) throw UsageError("model random takes --like NAME --quant TYPE --out FILE.gguf");
        RandomModelRequest request;
        request.like = args.value("like").value_or("");
        request.out = args.value("out").value_or("");
        if (request.like.empty() || request.out.empty())
            throw UsageError("model random needs --like NAME|FILE.gguf and --out FILE.gguf (names: folio model list)");
        request.quant = args.value("quant").value_or("F16");
        if (auto seed = args.value("seed")) request.seed = static_cast<std::uint64_t>(parse_int("seed", *seed, 0, 2147483647));
        if (auto layers = args.value("layers")) request.layers = parse_int("layers", *layers, 1, 1 << 16);
        return run_model_random(request, args.has("json"));
    }
    if (sub == "quantize") {
        const ParsedArgs args = parse_args("model quantize", tail, {.valued = {"quant", "out"}, .flags = {"json"}});
        if (args.positional.size() != 1 || !args.value("quant") || !args.value("out"))
            throw UsageError("model quantize takes IN.gguf --quant TYPE --out OUT.gguf");
        return run_model_quantize({args.positional[0], *args.value("quant"), *args.value("out")}, args.has("json"));
    }
    throw UsageError("model takes 'list', 'random' or 'quantize'");
}

// A float as the shortest decimal that reads back as it, so that JSON shows
// 0.0123 rather than the float's binary expansion 0.012299999594688416.
double shortest(float value) {
    char text[32];
    const auto end = std::to_chars(text, text + sizeof text, value).ptr;
    double widened = 0;
    std::from_chars(text, end, widened);
    return widened;
}

// --lora FILE[:SCALE]: the adapter, checked against the model, at SCALE
// (default 1). A FILE whose name holds a colon takes an explicit :SCALE.
engine::LoraUse lora_argument(const std::string& text, const engine::Model& model) {
    const std::size_t colon = text.rfind(':');
    const bool has_scale = colon != std::string::npos && !std::filesystem::exists(text);
    const std::string path = has_scale ? text.substr(0, colon) : text;
    if (!std::filesystem::is_regular_file(path)) throw UsageError("no LoRA adapter file " + path);
    const float scale =
        has_scale ? static_cast<float>(parse_float("lora", text.substr(colon + 1), -100, 100)) : 1.f;
    return {engine::LoraAdapter::open(path, model), scale};
}

// [{"file", "scale"}, ...]: the adapters a generation ran with.
json loras_json(const engine::LoraSet& loras) {
    json items = json::array();
    for (const engine::LoraUse& use : loras.uses)
        items.push_back({{"file", use.adapter->source()}, {"scale", shortest(use.scale)}});
    return items;
}

int command_generate(const std::vector<std::string>& rest) {
    const ParsedArgs args = parse_args(
        "generate", rest,
        {.valued = {"model", "prompt", "n", "temp", "top-k", "top-p", "min-p", "repeat-penalty", "seed", "ctx",
                    "lora", "device", "cpu-experts", "chat-template", "kv-type", "truncate"},
         .flags = {"json", "raw"}});
    if (!args.positional.empty()) throw UsageError("generate takes its prompt as --prompt TEXT");
    const std::optional<std::string> prompt = args.value("prompt");
    if (!prompt) throw UsageError("generate needs --prompt TEXT");
    engine::check_utf8(*prompt, "--prompt");
    const DeviceChoice device = device_argument(args);
    const int cpu_experts = cpu_experts_argument(args);
    if (device == DeviceChoice::Cpu && args.value("cpu-experts"))
        throw UsageError("--cpu-experts splits a model between the GPU and the host; with --device cpu every "
                         "weight is on the host");

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
    const engine::KvType kv_type = kv_type_argument(args);
    const std::string truncate = args.value("truncate").value_or("error");
    if (truncate != "error" && truncate != "keep-last")
        throw UsageError("--truncate must be error or keep-last, not '" + truncate + "'");
    options.prompt_overflow =
        truncate == "keep-last" ? engine::PromptOverflow::KeepLast : engine::PromptOverflow::Error;

    const std::string model_path = model_file_argument(args, engine::ModelRole::Chat, "chat");

    const engine::GgufFile file = engine::GgufFile::open(model_path);
    std::unique_ptr<engine::Model> model = engine::load_model(file);
    for (const std::string& lora : args.every_value("lora"))
        options.loras.uses.push_back(lora_argument(lora, *model));
    const int model_ctx = model->config().n_ctx_train;
    // Past its training context a model's attention sees positions it never
    // learned (RoPE scaling is how a model is extended, and it is in the file).
    if (ctx && *ctx > model_ctx)
        throw UsageError("--ctx " + std::to_string(*ctx) + " is longer than the model's training context of " +
                         std::to_string(model_ctx) + " tokens");
    if (!file.find("tokenizer.ggml.model"))
        throw UsageError(model_path + " has no tokenizer (tokenizer.ggml.*), so it cannot take a text prompt");
    const engine::Vocab vocab(file);

    std::vector<std::int32_t> prompt_ids;
    const std::optional<std::string_view> template_source = file.find_string("tokenizer.chat_template");
    // A model without a chat template is a base model (gemma-3-270m): it
    // continues text, which is how llama.cpp runs such a model too.
    const bool continue_text = !args.value("chat-template") && !template_source;
    if (continue_text && !args.has("raw"))
        std::fprintf(stderr, "folio: note: the model has no chat template, so it continues the prompt as plain text "
                             "(--chat-template NAME makes the prompt a user turn)\n");
    if (args.has("raw") || continue_text) {
        prompt_ids = vocab.encode(*prompt, true, false);
    } else {
        engine::ChatTemplate chat_template;
        if (auto name = args.value("chat-template"))
            chat_template.format = engine::chat_format_from_name(*name);
        else
            chat_template = engine::detect_chat_template(*template_source);
        const std::string text = engine::render_chat(chat_template, {{"user", *prompt}});
        prompt_ids = vocab.encode(text, false, true);
    }

    const int n_ctx = ctx.value_or(std::min(4096, model_ctx));
    const std::string placed =
        place_model(*model, device, {.host_expert_layers = cpu_experts, .context_positions = n_ctx, .kv_type = kv_type});
    engine::KvCache cache = model->make_kv_cache(n_ctx, kv_type);
    engine::ThreadPool pool;

    const bool as_json = args.has("json");
    if (!as_json)
        options.on_piece = [](std::string_view piece) {
            std::fwrite(piece.data(), 1, piece.size(), stdout);
            std::fflush(stdout);
        };
    options.cancel = &g_cancel;
    const engine::GenerationResult result = [&] {
        const InterruptGuard interrupt;
        return engine::generate(*model, pool, cache, &vocab, prompt_ids, options);
    }();

    if (!as_json) {
        std::fputc('\n', stdout);
        return 0;
    }
    const engine::GenerationTimings& t = result.timings;
    print_json({{"text", result.text},
                {"tokens", result.tokens},
                {"stop_reason", engine::stop_reason_name(result.stop_reason)},
                {"model", model_path},
                {"device", placed},
                {"host_expert_layers", model->host_expert_layers()},
                {"kv_type", engine::kv_type_name(kv_type)},
                {"loras", loras_json(options.loras)},
                {"timings",
                 {{"prompt_tokens", t.prompt_tokens},
                  {"dropped_prompt_tokens", t.dropped_prompt_tokens},
                  {"generated_tokens", t.generated_tokens},
                  {"prefill_seconds", t.prefill_seconds},
                  {"decode_seconds", t.decode_seconds},
                  {"prefill_tokens_per_second", t.prefill_tokens_per_second},
                  {"decode_tokens_per_second", t.decode_tokens_per_second},
                  {"time_to_first_token_seconds", t.time_to_first_token_seconds}}}});
    return 0;
}

int command_embed(const std::vector<std::string>& rest) {
    const ParsedArgs args = parse_args("embed", rest, {.valued = {"model", "device"}, .flags = {"json"}});
    if (args.positional.empty()) throw UsageError("embed needs at least one text");
    const DeviceChoice device = device_argument(args);
    const std::string model_path = model_file_argument(args, engine::ModelRole::Embedding, "embedding");
    engine::Embedder embedder = engine::Embedder::open(model_path);
    const std::string placed = place_model(embedder.model(), device);
    engine::ThreadPool pool;
    const std::vector<engine::Embedding> embeddings = embedder.embed(args.positional, pool);

    if (!args.has("json")) {
        for (const engine::Embedding& embedding : embeddings) {
            std::string line;
            for (const float x : embedding.vector) {
                char text[32];
                line.append(text, std::to_chars(text, text + sizeof text, x).ptr);
                line += ' ';
            }
            line.back() = '\n';
            std::fputs(line.c_str(), stdout);
        }
        return 0;
    }
    json items = json::array();
    for (std::size_t i = 0; i < embeddings.size(); ++i) {
        json vector = json::array();
        for (const float x : embeddings[i].vector) vector.push_back(shortest(x));
        items.push_back({{"text", args.positional[i]},
                         {"tokens", embeddings[i].n_tokens},
                         {"truncated", embeddings[i].truncated},
                         {"vector", std::move(vector)}});
    }
    print_json({{"model", model_path},
                {"device", placed},
                {"dimension", embedder.dimension()},
                {"max_tokens", embedder.max_tokens()},
                {"pooling", embedder.pooling() == engine::Pooling::Mean ? "mean" : "cls"},
                {"normalized", embedder.normalizes()},
                {"embeddings", std::move(items)}});
    return 0;
}

int command_convert(const std::vector<std::string>& rest) {
    if (rest.empty() || rest[0] != "hf") throw UsageError("convert takes 'hf' (a Hugging Face model folder)");
    const ParsedArgs args =
        parse_args("convert hf", {rest.begin() + 1, rest.end()}, {.valued = {"out", "type", "base"}, .flags = {"json"}});
    if (args.positional.size() != 1) throw UsageError("convert hf takes one model folder");
    const std::optional<std::string> out = args.value("out");
    if (!out || out->empty()) throw UsageError("convert hf needs --out FILE.gguf");
    ConvertHfRequest request{.model_dir = args.positional[0], .out = *out, .base = args.value("base").value_or("")};
    const std::string type = args.value("type").value_or("f16");
    if (type == "f32") request.type = ConvertedType::F32;
    else if (type != "f16") throw UsageError("--type must be f16 or f32, not '" + type + "'");
    const ConvertHfResult result = convert_hf(request);
    if (args.has("json")) {
        print_json({{"model_dir", request.model_dir.string()},
                    {"out", request.out.string()},
                    {"hf_architecture", result.hf_architecture},
                    {"architecture", result.architecture},
                    {"type", type},
                    {"tensors", result.n_tensors},
                    {"bytes", result.file_bytes}});
    } else {
        std::printf("%s (%s) -> %s: %s, %d tensors, %s, %.1f MB\n", request.model_dir.c_str(),
                    result.hf_architecture.c_str(), request.out.c_str(), result.architecture.c_str(), result.n_tensors,
                    type.c_str(), static_cast<double>(result.file_bytes) / 1e6);
    }
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
        if (command == "bench" && !rest.empty() && rest[0] == "retrieval")
            return command_bench_retrieval(library_dir, {rest.begin() + 1, rest.end()});
        if (command == "bench" && !rest.empty() && rest[0] == "ask")
            return command_bench_ask(library_dir, {rest.begin() + 1, rest.end()});
        if (command == "bench") return command_bench(rest);
        if (command == "devices") return command_devices(rest);
        if (command == "generate") return command_generate(rest);
        if (command == "embed") return command_embed(rest);
        if (command == "convert") return command_convert(rest);
        if (command == "model") return command_model(rest);
        if (command == "pack") return command_pack(rest);
        const std::string library_path = library_dir.empty() ? Library::default_directory() : library_dir;
        if (command == "ask") return command_ask(library_path, rest);
        if (command == "summarize") return command_summarize(library_path, rest);
        if (command == "extract") return command_extract(library_path, rest);
        if (command == "batch") return command_batch(library_path, rest);
        static const std::map<std::string, CommandSpec> specs = {
            {"ingest", {.valued = {"ocr", "lang", "jobs", "password", "ocr-timeout"}, .flags = {"json"}}},
            {"docs", {.valued = {}, .flags = {"json"}}},
            {"show", {.valued = {"page"}, .flags = {"json"}}},
            {"search", {.valued = {"k", "mode", "fusion", "doc", "type", "from", "until"},
                        .flags = {"json", "syntax", "rerank"}}},
            {"index", {.valued = {}, .flags = {"json"}}},
        };
        const auto spec = specs.find(command);
        if (spec == specs.end()) throw UsageError("unknown command '" + command + "' (see folio --help)");
        const ParsedArgs parsed = parse_args(command, rest, spec->second);
        Library library(library_path);
        if (command == "ingest") return command_ingest(library, parsed);
        if (command == "docs") return command_docs(library, parsed);
        if (command == "search") return command_search(library, parsed);
        if (command == "index") return command_index(library, parsed);
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
