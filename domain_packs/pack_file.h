#pragma once
// A pack file (*.foliopack): one file that carries a signed manifest and the
// files the manifest lists.
//
//   "FOLIOPAK"    8 bytes
//   u32           container version, little-endian (kPackContainerVersion)
//   u32           manifest length N, little-endian (1 .. kMaxManifestBytes)
//   N bytes       the manifest in canonical JSON (pack_manifest.h)
//   74 bytes      the manifest's encoded signature (pack_signature.h)
//   archive       manifest.archive.size bytes, to the end of the file: a
//                 POSIX pax tar of the files (regular files only, paths as
//                 in the manifest), compressed with zstd
//
// The header is all that is read before the signature is checked. The
// archive's size and SHA-256 are part of the signed manifest and are checked
// before the tar reader (libarchive) sees a byte of it, so only a trusted
// signer's bytes are ever unpacked; the entry checks in extract_pack_archive
// still hold a trusted but broken pack to the manifest.

#include <cstdint>
#include <filesystem>
#include <string>
#include <string_view>
#include <vector>

#include "domain_packs/pack_manifest.h"

namespace folio::packs {

inline constexpr std::string_view kPackFileMagic = "FOLIOPAK";
inline constexpr std::uint32_t kPackContainerVersion = 1;

// What precedes the archive, read but not yet trusted.
struct PackEnvelope {
    std::uint32_t container_version = 0;
    std::string manifest_bytes;
    std::string signature;
    std::uint64_t archive_offset = 0;  // from the start of the file
    std::uint64_t archive_size = 0;    // the rest of the file
};

// Reads a pack file's header, manifest bytes and signature. Throws PackError
// ("pack file: ...") for a file that is not a pack, is truncated, or has a
// newer container version than this Folio reads.
PackEnvelope read_pack_envelope(const std::filesystem::path& pack_file);

// Throws PackError ("archive: ...") unless the archive's size and SHA-256
// are the manifest's.
void check_pack_archive(const std::filesystem::path& pack_file, const PackEnvelope& envelope,
                        const PackManifest& manifest);

// Unpacks the archive into staging_directory (which must exist and be
// empty), each file hashed and size-capped as it streams. Throws PackError
// naming the entry and the rule when an entry is not a regular file (links,
// devices, directories), its path is not one the manifest lists or comes
// twice, it is larger or smaller than listed, its hash differs, or a listed
// file is missing. Writes nothing outside staging_directory; on error what it
// wrote there stays for the caller to remove.
void extract_pack_archive(const std::filesystem::path& pack_file, const PackEnvelope& envelope,
                          const PackManifest& manifest, const std::filesystem::path& staging_directory);

// Writes the compressed tar of `paths` (relative to source_directory, each a
// regular file) to archive_file, and returns its size and hash. Throws
// PackError when a file cannot be read.
PackArchive write_pack_archive(const std::filesystem::path& source_directory, const std::vector<std::string>& paths,
                               const std::filesystem::path& archive_file);

// Writes the pack file: header, manifest, signature, then the archive file's
// bytes.
void write_pack_file(const std::filesystem::path& pack_file, std::string_view manifest_bytes,
                     std::string_view encoded_signature, const std::filesystem::path& archive_file);

}  // namespace folio::packs
