#include <unistd.h>

#include <cstdio>

#include <nlohmann/json.hpp>

#include "app/cli_commands.h"
#include "app/cli_support.h"
#include "app/library.h"
#include "app/packs.h"
#include "app/summarize.h"

namespace folio::app {

namespace {

using nlohmann::json;

json stage_json(const StageTimings& stage) {
    return {{"calls", stage.calls},
            {"prompt_tokens", stage.prompt_tokens},
            {"generated_tokens", stage.generated_tokens},
            {"seconds", stage.seconds}};
}

json summary_json(const Summary& summary, const std::string& model_path) {
    json points = json::array();
    for (const SummaryPoint& point : summary.points)
        points.push_back({{"text", point.text}, {"pages", point.pages}, {"pages_inferred", point.pages_inferred}});
    return {{"doc_id", summary.doc_id},
            {"path", summary.path},
            {"pages", summary.pages},
            {"summary", format_points(summary.points)},
            {"points", points},
            {"sections", summary.sections},
            {"single_pass", summary.single_pass},
            {"merge_rounds", summary.merge_rounds},
            {"dropped_points", summary.dropped_points},
            {"model", model_path},
            {"timings",
             {{"plan_seconds", summary.timings.plan_seconds},
              {"sections", stage_json(summary.timings.sections)},
              {"merging", stage_json(summary.timings.merging)},
              {"prompt_tokens", summary.timings.sections.prompt_tokens + summary.timings.merging.prompt_tokens},
              {"generated_tokens",
               summary.timings.sections.generated_tokens + summary.timings.merging.generated_tokens},
              {"seconds", summary.timings.seconds}}}};
}

// Progress on stderr: one line redrawn on a terminal, else a line per step
// (a log, or a test reading it).
void print_progress(const SummarizeProgress& progress, bool terminal) {
    char line[120];
    if (progress.stage == SummarizeStage::Sections && progress.done == 0)
        std::snprintf(line, sizeof line, "summarizing %d section%s", progress.total, progress.total == 1 ? "" : "s");
    else if (progress.stage == SummarizeStage::Sections)
        std::snprintf(line, sizeof line, "section %d/%d done (pp. %d-%d)", progress.done, progress.total,
                      progress.first_page, progress.last_page);
    else
        std::snprintf(line, sizeof line, "merge round %d: %d/%d done (pp. %d-%d)", progress.round, progress.done,
                      progress.total, progress.first_page, progress.last_page);
    if (terminal) std::fprintf(stderr, "\r%-70s", line);
    else std::fprintf(stderr, "%s\n", line);
    std::fflush(stderr);
}

}  // namespace

int command_summarize(const std::string& library_dir, const std::vector<std::string>& args_in) {
    const ParsedArgs args = parse_args("summarize", args_in, {.valued = {"pack", "model"}, .flags = {"json", "no-adapter"}});
    if (args.positional.size() != 1) throw UsageError("summarize takes one document id (see folio docs)");
    const std::int64_t doc_id = parse_doc_id(args.positional[0]);
    const bool as_json = args.has("json");
    SummarizeOptions options;
    std::optional<PackContent> pack;
    if (auto name = args.value("pack")) {
        try {
            pack = load_pack(*name);
        } catch (const PackError& e) {
            throw UsageError(e.what());
        }
        options.focus = pack->description;
    }
    const bool terminal = isatty(STDERR_FILENO);
    options.progress = [terminal](const SummarizeProgress& progress) { print_progress(progress, terminal); };
    options.cancel = &g_cancel;

    Library library(library_dir);
    if (!library.store().document(doc_id))
        throw UsageError("no document with id " + args.positional[0] + " in " + library.directory());
    const std::string model_path = model_file_argument(args, engine::ModelRole::Chat, "chat");
    // One KV cache: sections share no prefix worth keeping, and memory stays
    // that of one context however long the document.
    ChatModel model({.path = model_path, .cache_budget_bytes = 0});
    if (pack) use_pack_adapters(model, *pack, args);
    const InterruptGuard interrupt;
    Summary summary;
    try {
        summary = Summarizer(model, options).summarize(library.store(), doc_id);
    } catch (const SummarizeError& e) {
        throw UsageError(e.what());
    }
    if (terminal) std::fprintf(stderr, "\r%-70s\r", "");
    if (summary.cancelled) {
        std::fprintf(stderr, "folio: error: summary interrupted\n");
        return 130;
    }
    if (summary.points.empty()) {
        std::fprintf(stderr, "folio: error: the model wrote no point that the document's text supports (%d dropped)\n",
                     summary.dropped_points);
        return 1;
    }
    if (as_json) {
        print_json(summary_json(summary, model_path));
    } else {
        std::fputs(format_points(summary.points).c_str(), stdout);
        std::fprintf(stderr, "%d pages in %d section%s (%s), %d point%s in %.1f s\n", summary.pages, summary.sections,
                     summary.sections == 1 ? "" : "s", summary.single_pass ? "one pass" : "map-reduce",
                     static_cast<int>(summary.points.size()), summary.points.size() == 1 ? "" : "s",
                     summary.timings.seconds);
    }
    return 0;
}

}  // namespace folio::app
