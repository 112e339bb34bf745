#pragma once
// `folio pack build DIR --key K`: a signed pack file from a folder.
//
// The folder holds pack.json and everything the pack carries. pack.json
// names the release, besides the content Folio reads from it (app/packs.h):
//   "name", "version", "sequence", "domain", "min_folio_version"
// (the manifest fields of the same names, pack_manifest.h). Every regular
// file under the folder goes into the pack; a link or any other kind of file
// is refused, as install would refuse it.

#include <filesystem>
#include <vector>

#include "domain_packs/pack_manifest.h"
#include "domain_packs/pack_signature.h"

namespace folio::packs {

struct PackBuildRequest {
    std::filesystem::path source_directory;
    std::filesystem::path output;  // written whole or not at all
    // Models the pack fits (its adapters and prompts were made for them).
    std::vector<std::filesystem::path> base_models;
    bool pin_weights = false;  // fit only these exact weights, not any quantization
};

// Returns the signed manifest. Throws PackError.
PackManifest build_pack(const PackBuildRequest& request, const SecretKey& key);

}  // namespace folio::packs
