#pragma once
// The content of a domain pack that the jobs use: the extraction schema and
// prompt, and whether records also go out as FHIR. The finance and medical
// packs are built into Folio (domain_packs/<name>/, compiled in as Qt
// resources) so that `--pack medical` works on a fresh install with no file
// to fetch.

#include <stdexcept>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace folio::app {

// No pack of that name, or a pack whose files are broken. what() is one line.
class PackError : public std::runtime_error {
public:
    using std::runtime_error::runtime_error;
};

struct PackContent {
    std::string name;
    std::string description;
    nlohmann::ordered_json schema;     // the extraction JSON Schema, properties in their written order
    std::string extract_instructions;  // the extraction prompt's system text
    bool fhir = false;                 // records also as FHIR R4 Bundles
};

// The built-in packs' names, sorted.
std::vector<std::string> pack_names();
// Throws PackError naming the packs there are.
PackContent load_pack(const std::string& name);

}  // namespace folio::app
