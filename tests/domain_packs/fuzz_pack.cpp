// libFuzzer target for what install parses (built with clang only):
//   domain_packs_fuzz_pack -max_len=65536 -timeout=10 NEW_CORPUS
// The first input byte picks the parser, the rest is its input:
//   even  a manifest (parse_manifest): a PackManifest that round-trips
//         through its canonical bytes, or PackError
//   odd   an archive (extract_pack_archive) against a fixed two-file
//         manifest: the two files unpacked with their listed contents, or
//         PackError; either way nothing appears outside the staging folder
// Install parses the archive only after its hash matched a signed manifest;
// this target holds the entry checks to their word for archives a trusted
// but broken or compromised signer might make. Anything else (a crash, a
// sanitizer report, another exception, a stray file) is a bug.

#include <unistd.h>

#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>

#include "domain_packs/pack_file.h"
#include "domain_packs/pack_manifest.h"
#include "domain_packs/sodium.h"

using namespace folio::packs;
namespace fs = std::filesystem;

namespace {

std::string sha256_of(std::string_view bytes) {
    Sha256 hash;
    hash.update(bytes);
    return hash.hex();
}

void fuzz_manifest(std::string_view text) {
    try {
        const PackManifest manifest = parse_manifest(text);
        if (parse_signed_manifest(canonical_manifest_json(manifest)) != manifest) std::abort();
    } catch (const PackError&) {
    }
}

void fuzz_archive(std::string_view archive) {
    static const fs::path root = fs::temp_directory_path() / ("folio-fuzz-pack-" + std::to_string(::getpid()));
    fs::remove_all(root);
    fs::create_directories(root / "staging");
    const fs::path pack = root / "archive.bin";
    std::ofstream(pack, std::ios::binary).write(archive.data(), static_cast<std::streamsize>(archive.size()));

    PackManifest manifest;
    manifest.name = "fuzz";
    manifest.version = "1.0.0";
    manifest.domain = "fuzz";
    manifest.min_folio_version = "0.1.0";
    manifest.files = {{"a.txt", 1, sha256_of("a")}, {"dir/b.txt", 2, sha256_of("bb")}};
    PackEnvelope envelope;
    envelope.archive_size = archive.size();
    bool accepted = false;
    try {
        extract_pack_archive(pack, envelope, manifest, root / "staging");
        accepted = true;
    } catch (const PackError&) {
    }
    for (const auto& entry : fs::recursive_directory_iterator(root)) {
        const fs::path relative = entry.path().lexically_relative(root);
        const bool expected = relative == "archive.bin" || relative == "staging" ||
                              relative.begin()->string() == "staging";
        if (!expected || entry.is_symlink()) std::abort();
    }
    if (accepted) {
        std::ifstream a(root / "staging/a.txt"), b(root / "staging/dir/b.txt");
        std::string a_text((std::istreambuf_iterator<char>(a)), {}), b_text((std::istreambuf_iterator<char>(b)), {});
        if (a_text != "a" || b_text != "bb") std::abort();
    }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    if (size == 0) return 0;
    const std::string_view input(reinterpret_cast<const char*>(data) + 1, size - 1);
    if (data[0] % 2 == 0) fuzz_manifest(input);
    else fuzz_archive(input);
    return 0;
}
