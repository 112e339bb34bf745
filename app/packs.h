#pragma once
// The content of a domain pack that the jobs use: the extraction schema and
// prompt, and whether records also go out as FHIR. The finance and medical
// packs are built into Folio (domain_packs/<name>/, compiled in as Qt
// resources) so that `--pack medical` works on a fresh install with no file
// to fetch; a pack installed with `folio pack install` (domain_packs/
// pack_store.h) takes the place of a built-in one of the same name.

#include <filesystem>
#include <stdexcept>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "app/extract.h"
#include "app/glossary.h"
#include "engine/lora.h"
#include "engine/model.h"

namespace folio::app {

// No pack of that name, or a pack whose files are broken. what() is one line.
class PackError : public std::runtime_error {
public:
    using std::runtime_error::runtime_error;
};

// A LoRA adapter the pack carries for a base model (pack.json "adapters":
// [{"file": "adapters/x.gguf", "scale": 1.0}]).
struct PackAdapter {
    std::string location;  // a file, or a Qt resource path (":/...") for a built-in pack
    float scale = 1.f;
};

struct PackContent {
    std::string name;
    std::string version;               // pack.json "version" (SemVer); empty when it names none
    std::string domain;                // pack.json "domain" ("finance", "medical"); empty when none
    std::string description;
    nlohmann::ordered_json schema;     // the extraction JSON Schema, properties in their written order
    std::string extract_instructions;  // the extraction prompt's system text
    std::vector<KeyPage> key_pages;    // pack.json "key_pages": [{"name": ..., "headings": [...]}], shown first
    // pack.json "captioned_fields": {"company": "exact name of ..."}, and
    // "heading_fields": {"chief_complaint": ["chief complaint", "cc"]} (below)
    std::vector<CaptionedField> captioned_fields;
    // pack.json "phrase_fields": {"period_type": {"quarterly": ["form 10-q"], "annual": [...]}}
    std::vector<PhraseField> phrase_fields;
    bool fhir = false;                 // records also as FHIR R4 Bundles
    Glossary glossary;                 // pack.json "glossary" (glossary.h); empty when it names none
    std::vector<std::string> validators;  // pack.json "validators", run on each record (pack_validators.h)
    std::vector<PackAdapter> adapters;
};

// The packs' names, built-in and installed in the default pack store, sorted.
std::vector<std::string> pack_names();
// The installed pack of that name, else the built-in one. Throws PackError
// naming the packs there are.
PackContent load_pack(const std::string& name);
// The pack whose files are in `folder` (pack.json and what it names).
// Throws PackError.
PackContent load_pack_folder(const std::filesystem::path& folder, const std::string& name);

// What an extraction with the pack's schema runs with: its prompt, key pages
// and validators.
ExtractOptions extract_options(const PackContent& pack);

// The pack's adapters that fit `model`, at their scales. One made for another
// model (another architecture or shapes) is left out and named in `skipped`
// with the reason, so that a pack still serves any model with its schema and
// prompts. Throws PackError for an adapter file that cannot be read.
struct PackAdapters {
    engine::LoraSet set;
    std::vector<std::string> skipped;  // one line each
};
PackAdapters load_pack_adapters(const PackContent& pack, const engine::Model& model);

}  // namespace folio::app
