#pragma once
// The manifest of a domain pack: what the pack is, which base models it fits
// and every file it carries with its size and SHA-256. The pack's Ed25519
// signature (pack_signature.h) covers the manifest's canonical bytes, and the
// manifest's hashes cover the files, so one signature vouches for the pack.
//
// JSON form (format_version 1), shown indented; the canonical form has no
// whitespace, keys in byte order, files sorted by path, base models sorted:
//
//   {
//     "archive": {"sha256": "<64 hex>", "size": 52113},
//     "base_models": [{"architecture": "llama",
//                      "tokenizer_sha256": "<64 hex>",
//                      "weights_sha256": "<64 hex>"}],       weights optional
//     "domain": "finance",
//     "files": [{"path": "prompts/ask.txt", "sha256": "<64 hex>", "size": 812}],
//     "format_version": 1,
//     "min_folio_version": "0.1.0",
//     "name": "finance-core",
//     "sequence": 7,
//     "version": "1.2.0"
//   }
//
// Parsing is strict: unknown keys at any level, duplicate keys, null, and
// numbers that are not non-negative integers are refused. An unknown key is
// refused rather than ignored because it may carry a constraint its author
// relies on (an old Folio would silently drop it); new fields come with a new
// format_version, which an older Folio refuses by name.

#include <cstdint>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace folio::packs {

// Anything wrong with a pack, its manifest, its signature or a key file.
// what() is one line, "<field>: <problem>", e.g.
// "files[2].path: '..' segment not allowed in \"../x\"".
class PackError : public std::runtime_error {
public:
    PackError(std::string field, const std::string& problem);
    const std::string& field() const { return field_; }
    const std::string& problem() const { return problem_; }

private:
    std::string field_;
    std::string problem_;
};

// The newest manifest format this Folio understands.
inline constexpr std::uint64_t kManifestFormatVersion = 1;

// Limits on what a manifest may describe. They bound the memory and disk an
// untrusted pack can make install spend; LoRA adapters for the largest base
// models Folio runs stay well under the per-file cap.
inline constexpr std::size_t kMaxManifestBytes = 4u << 20;
inline constexpr std::size_t kMaxPackFiles = 4096;
inline constexpr std::size_t kMaxBaseModels = 64;
inline constexpr std::uint64_t kMaxPackFileSize = std::uint64_t{8} << 30;  // 8 GiB
// All files together, and the compressed archive that carries them.
inline constexpr std::uint64_t kMaxPackBytes = std::uint64_t{16} << 30;  // 16 GiB
inline constexpr std::size_t kMaxPathBytes = 255;
inline constexpr std::size_t kMaxNameBytes = 64;
inline constexpr std::size_t kMaxVersionBytes = 64;

struct BaseModel {
    std::string architecture;                   // GGUF general.architecture, e.g. "llama", "qwen2"
    std::string tokenizer_sha256;               // 64 lowercase hex
    std::optional<std::string> weights_sha256;  // 64 lowercase hex; absent: any weights with this tokenizer

    bool operator==(const BaseModel&) const = default;
};

struct PackFile {
    std::string path;  // relative, '/'-separated, normalized (see validate_manifest)
    std::uint64_t size = 0;  // bytes
    std::string sha256;      // 64 lowercase hex of the file's content

    bool operator==(const PackFile&) const = default;
};

// The pack file's payload (pack_file.h): a compressed tar of the files. Its
// hash is signed with the rest of the manifest, so install checks every byte
// of the pack before an archive parser reads any of them.
struct PackArchive {
    std::uint64_t size = 0;  // bytes, <= kMaxPackBytes
    std::string sha256;      // 64 lowercase hex

    bool operator==(const PackArchive&) const = default;
};

struct PackManifest {
    std::uint64_t format_version = kManifestFormatVersion;
    std::string name;               // [a-z0-9-], starts with [a-z0-9], <= 64 bytes
    std::string version;            // semantic version 2.0.0, e.g. "1.2.0-rc.1"
    std::uint64_t sequence = 0;     // grows with every release of this pack name; install refuses rollbacks
    std::string domain;             // same rules as name, e.g. "finance", "medical"
    std::string min_folio_version;  // semantic version
    std::vector<BaseModel> base_models;  // sorted; empty: the pack carries nothing model-specific
    std::vector<PackFile> files;         // sorted by path; at least one; sizes sum to <= kMaxPackBytes
    PackArchive archive;

    bool operator==(const PackManifest&) const = default;
};

// Parses and validates manifest JSON, in any key order and whitespace. The
// result has files and base models sorted. Throws PackError.
PackManifest parse_manifest(std::string_view json);

// As parse_manifest, and also requires the bytes to be exactly the canonical
// form. Use it on signed bytes, so that what was signed is byte for byte what
// Folio acts on.
PackManifest parse_signed_manifest(std::string_view json);

// Throws PackError on the first rule the manifest breaks. The path rules:
// not empty, <= 255 bytes, relative, '/' as separator (no backslash), no
// empty, "." or ".." segments, only [A-Za-z0-9._-] in segments, no two paths
// equal ignoring ASCII case, and no path that is also a directory of another.
void validate_manifest(const PackManifest& manifest);

// The bytes a signature covers: validated, then serialized with sorted keys,
// sorted files and base models, no whitespace, ASCII only. Throws PackError.
std::string canonical_manifest_json(const PackManifest& manifest);

// "1.2.0 (sequence 7)", and with the name "finance-core 1.2.0 (sequence 7)":
// a release as messages and the store's log name it.
std::string release_label(const PackManifest& manifest);
std::string named_release_label(const PackManifest& manifest);

// Semantic Versioning 2.0.0: MAJOR.MINOR.PATCH[-pre.release][+build.meta].
bool is_semantic_version(std::string_view text);
// <0, 0 or >0 as a has lower, equal or higher precedence than b (SemVer
// section 11: build metadata ignored, a pre-release below its release).
// Both must be semantic versions.
int compare_semantic_versions(std::string_view a, std::string_view b);

}  // namespace folio::packs
