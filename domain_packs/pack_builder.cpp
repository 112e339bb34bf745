#include "domain_packs/pack_builder.h"

#include <algorithm>
#include <fstream>
#include <sstream>

#include <nlohmann/json.hpp>

#include "domain_packs/base_model.h"
#include "domain_packs/pack_file.h"
#include "domain_packs/sodium.h"

namespace folio::packs {

namespace {

namespace fs = std::filesystem;

PackManifest release_fields(const fs::path& source) {
    std::ifstream in(source / "pack.json", std::ios::binary);
    if (!in) throw PackError("pack.json", "is missing from " + source.string());
    std::stringstream text;
    text << in.rdbuf();
    PackManifest manifest;
    try {
        const nlohmann::json pack = nlohmann::json::parse(text.str());
        for (const char* key : {"name", "version", "sequence", "domain", "min_folio_version"})
            if (!pack.contains(key)) throw PackError("pack.json", std::string("needs \"") + key + "\" to build a pack");
        manifest.name = pack.at("name").get<std::string>();
        manifest.version = pack.at("version").get<std::string>();
        manifest.sequence = pack.at("sequence").get<std::uint64_t>();
        manifest.domain = pack.at("domain").get<std::string>();
        manifest.min_folio_version = pack.at("min_folio_version").get<std::string>();
    } catch (const nlohmann::json::exception& e) {
        throw PackError("pack.json", e.what());
    }
    return manifest;
}

std::vector<PackFile> regular_files(const fs::path& source) {
    std::vector<PackFile> files;
    for (const auto& entry : fs::recursive_directory_iterator(source)) {
        const std::string path = entry.path().lexically_relative(source).generic_string();
        if (entry.is_symlink()) throw PackError(path, "is a symbolic link; a pack carries regular files only");
        if (entry.is_directory()) continue;
        if (!entry.is_regular_file()) throw PackError(path, "is not a regular file");
        files.push_back({path, entry.file_size(), sha256_of_file(entry.path())});
    }
    std::sort(files.begin(), files.end(), [](const PackFile& a, const PackFile& b) { return a.path < b.path; });
    return files;
}

}  // namespace

PackManifest build_pack(const PackBuildRequest& request, const SecretKey& key) {
    PackManifest manifest = release_fields(request.source_directory);
    manifest.files = regular_files(request.source_directory);
    for (const fs::path& model : request.base_models) {
        const BaseModel identity = identify_base_model(model, request.pin_weights);
        if (std::find(manifest.base_models.begin(), manifest.base_models.end(), identity) ==
            manifest.base_models.end())
            manifest.base_models.push_back(identity);
    }

    const fs::path archive = request.output.string() + ".archive.partial";
    const fs::path partial = request.output.string() + ".partial";
    try {
        std::vector<std::string> paths;
        for (const PackFile& file : manifest.files) paths.push_back(file.path);
        manifest.archive = write_pack_archive(request.source_directory, paths, archive);
        const std::string manifest_bytes = canonical_manifest_json(manifest);
        write_pack_file(partial, manifest_bytes, sign_manifest(manifest_bytes, key), archive);
        fs::remove(archive);
        fs::rename(partial, request.output);
    } catch (...) {
        std::error_code ignored;
        fs::remove(archive, ignored);
        fs::remove(partial, ignored);
        throw;
    }
    return manifest;
}

}  // namespace folio::packs
