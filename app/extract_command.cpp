#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <sstream>

#include <nlohmann/json.hpp>

#include "app/chat_model.h"
#include "app/cli_commands.h"
#include "app/cli_support.h"
#include "app/extract.h"
#include "app/fhir.h"
#include "app/json_schema.h"
#include "app/library.h"
#include "app/packs.h"
#include "app/record_output.h"

namespace folio::app {

namespace {

using nlohmann::json;

// The schema of --schema FILE or --pack NAME, and the pack's instructions.
struct SchemaSource {
    nlohmann::ordered_json schema;
    ExtractOptions options;
    bool fhir = false;
    std::optional<PackContent> pack;  // --pack: for its adapters
};

SchemaSource schema_source(const ParsedArgs& args) {
    const auto pack = args.value("pack");
    const auto file = args.value("schema");
    if (pack.has_value() == file.has_value()) throw UsageError("extract needs one of --pack NAME or --schema FILE");
    if (pack) {
        try {
            PackContent content = load_pack(*pack);
            SchemaSource source{content.schema, extract_options(content), content.fhir};
            source.pack = std::move(content);
            return source;
        } catch (const PackError& e) {
            throw UsageError(e.what());
        }
    }
    std::ifstream in(*file, std::ios::binary);
    if (!in) throw UsageError("cannot read the schema file " + *file);
    std::stringstream text;
    text << in.rdbuf();
    try {
        // Ordered, so that the record's fields come in the schema's order.
        return {nlohmann::ordered_json::parse(text.str()), {}, false, std::nullopt};
    } catch (const json::parse_error& e) {
        throw UsageError("the schema file " + *file + " is not JSON: " + e.what());
    }
}

// What names a record in FHIR UUIDs: its document's content hash.
std::string document_key(Library& library, std::int64_t doc_id) {
    const std::optional<index::DocumentRecord> doc = library.store().document(doc_id);
    return doc ? doc->sha256 : std::to_string(doc_id);
}

}  // namespace

int command_extract(const std::string& library_dir, const std::vector<std::string>& rest) {
    const ParsedArgs args = parse_args(
        "extract", rest,
        {.valued = {"pack", "schema", "doc", "out", "format", "model", "max-tokens"}, .flags = {"all", "json", "no-adapter"}});
    if (!args.positional.empty()) throw UsageError("extract takes no positional arguments (--doc ID or --all)");
    const SchemaSource source = schema_source(args);
    JsonSchema schema = [&] {
        try {
            return JsonSchema::parse(source.schema);
        } catch (const SchemaError& e) {
            throw UsageError(e.what());
        }
    }();
    if (args.value("doc").has_value() == args.has("all")) throw UsageError("extract needs one of --doc ID or --all");

    std::string format;
    const std::optional<std::string> out = args.value("out");
    if (auto f = args.value("format")) {
        format = *f;
    } else if (out) {
        const std::string extension = std::filesystem::path(*out).extension().string();
        format = extension == ".csv" ? "csv" : "jsonl";
    }
    if (!format.empty() && format != "jsonl" && format != "csv" && format != "fhir")
        throw UsageError("--format must be jsonl, csv or fhir, not '" + format + "'");
    if (format == "fhir" && !source.fhir) throw UsageError("--format fhir needs a pack whose records are FHIR (--pack medical)");
    if (!format.empty() && !out) throw UsageError("--format needs --out FILE");

    ExtractOptions options = source.options;
    if (auto n = args.value("max-tokens")) options.max_tokens = parse_int("max-tokens", *n, 16, 1 << 16);

    Library library(library_dir);
    std::vector<std::int64_t> doc_ids;
    if (auto id = args.value("doc")) {
        doc_ids.push_back(parse_doc_id(*id));
        if (!library.store().document(doc_ids.front())) throw UsageError("no document " + *id + " in the library");
    } else {
        for (const index::DocumentRecord& doc : library.store().documents())
            if (doc.status == index::DocumentStatus::Indexed) doc_ids.push_back(doc.id);
        if (doc_ids.empty()) throw UsageError("the library has no documents to extract from (folio ingest PATH...)");
    }

    ChatModel model([&] {
        ChatModelOptions model_options;
        model_options.path = model_file_argument(args, engine::ModelRole::Chat, "chat");
        return model_options;
    }());
    if (source.pack) use_pack_adapters(model, *source.pack, args);
    const InterruptGuard interrupt;
    options.cancel = &g_cancel;
    Extractor extractor(model, schema, options);

    // The output file is written beside its final name and renamed at the
    // end, so a failed or interrupted run leaves an earlier file whole.
    std::ofstream output;
    std::string partial;
    if (out) {
        partial = *out + ".partial";
        output.open(partial, std::ios::binary | std::ios::trunc);
        if (!output) throw UsageError("cannot write " + partial);
        if (format == "csv") output << csv_header(schema);
    }
    const bool as_json = args.has("json");
    int failed = 0;
    try {
        for (const std::int64_t doc_id : doc_ids) {
            if (g_cancel.load()) break;
            const ExtractionRecord record = extractor.extract(library, doc_id);
            if (!record.error.empty() && record.data.is_null()) ++failed;
            const json line = record_json(record);
            if (out) {
                if (format == "csv")
                    output << csv_row(schema, line);
                else if (format == "fhir" && !record.data.is_null())
                    output << fhir_bundle(record.data, document_key(library, record.doc_id)).dump() << '\n';
                else if (format == "jsonl")
                    output << line.dump(-1, ' ', false, json::error_handler_t::replace) << '\n';
            }
            if (as_json) {
                print_json(line);
                continue;
            }
            std::printf("doc %lld  %s: ", static_cast<long long>(record.doc_id), record.path.c_str());
            if (record.data.is_null()) {
                std::printf("failed: %s\n", record.error.c_str());
                continue;
            }
            std::printf("%zu values, %d grounded, %.1f s%s%s\n", record.values.size(), record.grounded, record.seconds,
                        record.error.empty() ? "" : "; ", record.error.c_str());
            for (const ExtractedValue& value : record.values) {
                std::printf("  %-32s %s", value.pointer.c_str(), value.value.dump().c_str());
                if (value.grounded)
                    std::printf("   p. %d \"%s\"\n", value.page, value.quote.c_str());
                else
                    std::printf("   UNGROUNDED (not found in the document)\n");
            }
            for (const ValidationIssue& issue : record.validation)
                std::printf("  %s %s: %s\n", severity_name(issue.severity),
                            issue.pointer.empty() ? "/" : issue.pointer.c_str(), issue.message.c_str());
            std::fflush(stdout);
        }
    } catch (...) {
        if (out) std::filesystem::remove(partial);
        throw;
    }
    if (out) {
        output.close();
        if (!output) throw std::runtime_error("could not write " + partial);
        if (g_cancel.load()) {
            std::filesystem::remove(partial);
            throw std::runtime_error("interrupted; " + *out + " was not written");
        }
        std::filesystem::rename(partial, *out);
    }
    if (g_cancel.load()) throw std::runtime_error("interrupted");
    if (failed > 0)
        throw std::runtime_error(std::to_string(failed) + " of " + std::to_string(doc_ids.size()) +
                                 " documents could not be extracted (see their error)");
    return 0;
}

}  // namespace folio::app
