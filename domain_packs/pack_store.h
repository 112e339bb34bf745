#pragma once
// The packs installed on this machine, and install / verify / remove.
//
// A store is one folder ($FOLIO_PACKS, else $XDG_DATA_HOME/folio/packs, else
// ~/.local/share/folio/packs):
//   packs.sqlite3   which packs are installed (name, folder, signed manifest,
//                   signature), the keys the user trusts besides the built-in
//                   ones, and an event log (installs, downgrades, removals)
//   installed/      one folder per installed pack, named in the database
//   staging/        where an install unpacks before it activates
//   lock            held (flock) by whoever changes the store
//
// Install checks, in this order, and writes nothing outside staging/ until
// all pass: the container header; the signature, against the trusted keys,
// before any other byte is parsed; the manifest (strict, format version);
// the Folio version it needs; the sequence number against the installed
// pack of that name (a lower one is a downgrade, refused unless allowed, and
// then logged); the base model; free disk space; the archive's hash; then each
// archive entry as it unpacks (pack_file.h); then the caller's content check.
// It activates by renaming the staged folder into installed/ and recording it
// in one database transaction. A crash leaves either the old pack or the new
// one; leftovers are swept by the next change to the store.

#include <filesystem>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "domain_packs/pack_manifest.h"
#include "domain_packs/pack_signature.h"

namespace folio::packs {

struct InstalledPack {
    PackManifest manifest;
    std::string key_id;                 // the key that signed it, 16 hex digits
    std::filesystem::path directory;    // its files, as the manifest lists them
    std::string installed_at;           // UTC, ISO 8601
};

struct InstallOptions {
    // Install a lower sequence number than the installed one; the downgrade is logged.
    bool allow_downgrade = false;
    // The model the pack will run with. Needed when the manifest names base
    // models, and it must be one of them.
    std::optional<std::filesystem::path> base_model;
    // Called on the staged folder after every file checked out and before
    // activation; throws to refuse the pack (e.g. content Folio cannot use).
    std::function<void(const std::filesystem::path& staged_directory, const PackManifest&)> check_content;
    // Make every check, unpacking into staging, then discard instead of
    // activating: `folio pack verify FILE`.
    bool dry_run = false;
};

struct InstallResult {
    InstalledPack pack;
    std::optional<PackManifest> replaced;  // the pack of the same name it took the place of
    bool downgrade = false;
};

struct StoreEvent {
    std::string at;      // UTC, ISO 8601
    std::string event;   // "install", "downgrade", "remove", "trust"
    std::string name;    // pack name or key id
    std::string detail;
};

class PackStore {
public:
    explicit PackStore(std::filesystem::path directory);

    // $FOLIO_PACKS, else $XDG_DATA_HOME/folio/packs, else ~/.local/share/folio/packs.
    static std::filesystem::path default_directory();

    const std::filesystem::path& directory() const { return directory_; }

    // Throws PackError naming the first rule the pack breaks.
    InstallResult install(const std::filesystem::path& pack_file, const InstallOptions& options);

    // Sorted by name. A store that does not exist yet has no packs.
    std::vector<InstalledPack> list() const;
    std::optional<InstalledPack> find(std::string_view name) const;

    // What is wrong with an installed pack now: a signature that no longer
    // verifies, a file missing, changed, replaced by a link, or added. Empty
    // when intact. Throws PackError when no pack has that name.
    std::vector<std::string> verify(std::string_view name) const;

    // Deletes the pack's record and every file of it. Throws PackError when
    // no pack has that name.
    void remove(std::string_view name);

    // Keys packs may be signed with: the built-in ones (trusted_keys.h) and
    // those trust() added.
    std::vector<PublicKey> trusted_keys() const;
    // Adds a key; returns false when it was trusted already.
    bool trust(const PublicKey& key);

    std::vector<StoreEvent> events() const;

private:
    std::filesystem::path directory_;
};

}  // namespace folio::packs
