#include <cstdio>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "app/batch.h"
#include "app/chat_model.h"
#include "app/cli_commands.h"
#include "app/cli_support.h"
#include "app/extract.h"
#include "app/json_schema.h"
#include "app/library.h"
#include "app/packs.h"

namespace folio::app {
namespace {

nlohmann::json item_json(const BatchItem& item) {
    return {{"event", "record"},         {"path", item.path},         {"sha256", item.sha256},
            {"outcome", batch_outcome_name(item.outcome)}, {"doc_id", item.doc_id},
            {"grounded", item.grounded}, {"ungrounded", item.ungrounded}, {"seconds", item.seconds},
            {"fhir", item.fhir_file},    {"error", item.error}};
}

void print_item(const BatchItem& item, int finished, int total) {
    if (item.outcome == BatchOutcome::Done)
        std::printf("[%d/%d] %-8s %s  (%d of %d values grounded, %.1f s)\n", finished, total,
                    batch_outcome_name(item.outcome), item.path.c_str(), item.grounded,
                    item.grounded + item.ungrounded, item.seconds);
    else
        std::printf("[%d/%d] %-8s %s: %s\n", finished, total, batch_outcome_name(item.outcome), item.path.c_str(),
                    item.error.c_str());
    std::fflush(stdout);
}

}  // namespace

// `folio batch`: exit 0 when every record is done (now or before), 1 when
// any failed (after the whole batch ran: its error rows say why, and the
// next run retries them), 130 when interrupted (run it again to resume).
int command_batch(const std::string& library_dir, const std::vector<std::string>& args) {
    const ParsedArgs parsed =
        parse_args("batch", args, {.valued = {"pack", "out", "jobs", "model"}, .flags = {"json", "no-adapter"}});
    if (parsed.positional.empty()) throw UsageError("batch needs at least one file or folder");
    const std::optional<std::string> pack_name = parsed.value("pack");
    const std::optional<std::string> out = parsed.value("out");
    if (!pack_name || !out) throw UsageError("batch needs --pack NAME and --out DIR");
    PackContent pack;
    try {
        pack = load_pack(*pack_name);
    } catch (const PackError& e) {
        throw UsageError(e.what());
    }
    BatchRequest request{.paths = parsed.positional, .output_dir = *out, .fhir = pack.fhir, .cancel = &g_cancel};
    if (auto jobs = parsed.value("jobs")) request.pipeline.jobs = parse_int("jobs", *jobs, 1, 256);
    const bool as_json = parsed.has("json");

    const std::string model_path = model_file_argument(parsed, engine::ModelRole::Chat, "chat");
    Library library(library_dir);
    const JsonSchema schema = JsonSchema::parse(pack.schema);
    ChatModel model({.path = model_path});
    use_pack_adapters(model, pack, parsed);
    ExtractOptions options = extract_options(pack);
    options.cancel = &g_cancel;
    Extractor extractor(model, schema, options);

    int total = 0, finished = 0;
    BatchCallbacks callbacks;
    callbacks.started = [&](int files) { total = files; };
    callbacks.item_done = [&](const BatchItem& item) {
        ++finished;
        if (as_json) print_json(item_json(item));
        else print_item(item, finished, total);
    };
    const InterruptGuard interrupt;
    const BatchReport report = run_batch(
        library, schema, [&](Library& lib, std::int64_t doc_id) { return extractor.extract(lib, doc_id); }, request,
        callbacks);

    const int done = report.count(BatchOutcome::Done), failed = report.count(BatchOutcome::Failed),
              skipped = report.count(BatchOutcome::Skipped);
    if (as_json)
        print_json({{"event", "summary"},
                    {"files", total},
                    {"done", done},
                    {"failed", failed},
                    {"skipped", skipped},
                    {"grounded_share", report.grounded_share()},
                    {"seconds", report.seconds},
                    {"seconds_per_record", report.seconds_per_record()},
                    {"cancelled", report.cancelled},
                    {"out", *out}});
    else
        std::printf("%d files: %d done, %d failed, %d skipped (done before); %.0f%% of values grounded; "
                    "%.1f s, %.1f s per record; records in %s\n",
                    total, done, failed, skipped, report.grounded_share() * 100, report.seconds,
                    report.seconds_per_record(), out->c_str());
    if (report.cancelled) {
        std::fprintf(stderr, "folio: error: batch interrupted; finished records are kept, run it again to resume\n");
        return 130;
    }
    if (failed > 0) {
        std::fprintf(stderr, "folio: error: %d of %d records failed (their error rows are in %s/records.jsonl); "
                             "run the batch again to retry them\n",
                     failed, total, out->c_str());
        return 1;
    }
    return 0;
}

}  // namespace folio::app
