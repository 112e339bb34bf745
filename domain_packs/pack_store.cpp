#include "domain_packs/pack_store.h"

#include <fcntl.h>
#include <sqlite3.h>
#include <sys/file.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <ctime>
#include <set>

#include "domain_packs/base_model.h"
#include "domain_packs/pack_file.h"
#include "domain_packs/sodium.h"
#include "domain_packs/trusted_keys.h"

namespace folio::packs {

namespace {

namespace fs = std::filesystem;

constexpr const char* kDatabaseFile = "packs.sqlite3";
constexpr const char* kInstalledFolder = "installed";
constexpr const char* kStagingFolder = "staging";
constexpr int kBusyTimeoutMs = 10000;

std::string now_utc() {
    const std::time_t now = std::chrono::system_clock::to_time_t(std::chrono::system_clock::now());
    std::tm utc{};
    gmtime_r(&now, &utc);
    char text[32];
    std::strftime(text, sizeof text, "%Y-%m-%dT%H:%M:%SZ", &utc);
    return text;
}

std::string random_hex(std::size_t bytes) {
    require_sodium();
    std::string raw(bytes, '\0');
    randombytes_buf(raw.data(), raw.size());
    std::string text(2 * bytes + 1, '\0');
    sodium_bin2hex(text.data(), text.size(), reinterpret_cast<const unsigned char*>(raw.data()), raw.size());
    text.pop_back();
    return text;
}

// One exclusive flock on the store's lock file while it changes; it ends
// with the process, so a crash never leaves the store locked.
class StoreLock {
public:
    explicit StoreLock(const fs::path& directory) {
        fd_ = ::open((directory / "lock").c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
        if (fd_ < 0 || ::flock(fd_, LOCK_EX) != 0)
            throw PackError("pack store", "cannot lock " + (directory / "lock").string());
    }
    ~StoreLock() { ::close(fd_); }
    StoreLock(const StoreLock&) = delete;
    StoreLock& operator=(const StoreLock&) = delete;

private:
    int fd_ = -1;
};

class Statement;

class Database {
public:
    Database(const fs::path& file, bool writable) {
        const int flags = writable ? SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE : SQLITE_OPEN_READONLY;
        if (sqlite3_open_v2(file.c_str(), &db_, flags, nullptr) != SQLITE_OK) {
            const std::string message = db_ ? sqlite3_errmsg(db_) : "out of memory";
            sqlite3_close(db_);
            throw PackError("pack store", "cannot open " + file.string() + ": " + message);
        }
        sqlite3_busy_timeout(db_, kBusyTimeoutMs);
        if (writable)
            exec("CREATE TABLE IF NOT EXISTS packs(name TEXT PRIMARY KEY, directory TEXT NOT NULL,"
                 " manifest TEXT NOT NULL, signature BLOB NOT NULL, key_id TEXT NOT NULL, installed_at TEXT NOT NULL);"
                 "CREATE TABLE IF NOT EXISTS trusted_keys(key_id TEXT PRIMARY KEY, public_key BLOB NOT NULL,"
                 " added_at TEXT NOT NULL);"
                 "CREATE TABLE IF NOT EXISTS events(id INTEGER PRIMARY KEY, at TEXT NOT NULL, event TEXT NOT NULL,"
                 " name TEXT NOT NULL, detail TEXT NOT NULL);");
    }
    ~Database() { sqlite3_close(db_); }
    Database(const Database&) = delete;
    Database& operator=(const Database&) = delete;

    void exec(const char* sql) {
        char* error = nullptr;
        if (sqlite3_exec(db_, sql, nullptr, nullptr, &error) != SQLITE_OK) {
            const std::string message = error ? error : sqlite3_errmsg(db_);
            sqlite3_free(error);
            throw PackError("pack store", "database: " + message);
        }
    }
    sqlite3* handle() const { return db_; }

private:
    sqlite3* db_ = nullptr;
};

class Statement {
public:
    Statement(const Database& db, const char* sql) : db_(db.handle()) {
        if (sqlite3_prepare_v2(db_, sql, -1, &statement_, nullptr) != SQLITE_OK) fail();
    }
    ~Statement() { sqlite3_finalize(statement_); }
    Statement(const Statement&) = delete;
    Statement& operator=(const Statement&) = delete;

    Statement& bind(int index, std::string_view text) {
        if (sqlite3_bind_text(statement_, index, text.data(), static_cast<int>(text.size()), SQLITE_TRANSIENT) !=
            SQLITE_OK)
            fail();
        return *this;
    }
    Statement& bind_blob(int index, std::string_view bytes) {
        if (sqlite3_bind_blob(statement_, index, bytes.data(), static_cast<int>(bytes.size()), SQLITE_TRANSIENT) !=
            SQLITE_OK)
            fail();
        return *this;
    }
    // True while there is a row.
    bool step() {
        const int status = sqlite3_step(statement_);
        if (status == SQLITE_ROW) return true;
        if (status != SQLITE_DONE) fail();
        return false;
    }
    std::string text(int column) const {
        const auto* bytes = reinterpret_cast<const char*>(sqlite3_column_blob(statement_, column));
        return bytes ? std::string(bytes, static_cast<std::size_t>(sqlite3_column_bytes(statement_, column)))
                     : std::string();
    }

private:
    [[noreturn]] void fail() const { throw PackError("pack store", std::string("database: ") + sqlite3_errmsg(db_)); }

    sqlite3* db_;
    sqlite3_stmt* statement_ = nullptr;
};

struct StoredPack {
    InstalledPack pack;
    std::string manifest_bytes;
    std::string signature;
};

// Rows were checked when they were written; a row that no longer parses
// means the database was edited by hand, and is reported as such.
StoredPack stored_pack(const Statement& row, const fs::path& store) {
    StoredPack stored;
    stored.manifest_bytes = row.text(2);
    stored.signature = row.text(3);
    try {
        stored.pack.manifest = parse_signed_manifest(stored.manifest_bytes);
    } catch (const PackError& e) {
        throw PackError("pack store", "the record of " + row.text(0) + " is damaged (" + e.what() + ")");
    }
    stored.pack.directory = store / kInstalledFolder / row.text(1);
    stored.pack.key_id = row.text(4);
    stored.pack.installed_at = row.text(5);
    return stored;
}

std::optional<StoredPack> find_stored(const Database& db, std::string_view name, const fs::path& store) {
    Statement select(db, "SELECT name, directory, manifest, signature, key_id, installed_at FROM packs WHERE name = ?");
    select.bind(1, name);
    if (!select.step()) return std::nullopt;
    return stored_pack(select, store);
}

void log_event(const Database& db, std::string_view event, std::string_view name, std::string_view detail) {
    Statement insert(db, "INSERT INTO events(at, event, name, detail) VALUES (?, ?, ?, ?)");
    insert.bind(1, now_utc()).bind(2, event).bind(3, name).bind(4, detail);
    insert.step();
}

// Staged folders of interrupted installs, and installed folders no record
// names (a crash between activation and the old folder's removal). Runs
// under the store lock, so no install in progress is touched.
void sweep_leftovers(const Database& db, const fs::path& store) {
    std::error_code ignored;
    for (const auto& entry : fs::directory_iterator(store / kStagingFolder, ignored)) fs::remove_all(entry.path(), ignored);
    std::set<std::string> recorded;
    Statement select(db, "SELECT directory FROM packs");
    while (select.step()) recorded.insert(select.text(0));
    for (const auto& entry : fs::directory_iterator(store / kInstalledFolder, ignored))
        if (!recorded.count(entry.path().filename().string())) fs::remove_all(entry.path(), ignored);
}

class Transaction {
public:
    explicit Transaction(Database& db) : db_(db) { db_.exec("BEGIN IMMEDIATE"); }
    ~Transaction() {
        if (!committed_) sqlite3_exec(db_.handle(), "ROLLBACK", nullptr, nullptr, nullptr);
    }
    void commit() {
        db_.exec("COMMIT");
        committed_ = true;
    }

private:
    Database& db_;
    bool committed_ = false;
};

void check_base_model(const PackManifest& manifest, const InstallOptions& options) {
    if (manifest.base_models.empty()) return;
    if (!options.base_model)
        throw PackError("base_models", manifest.name + " is made for particular models; name the model it will run "
                                                       "with (no chat model was found)");
    const bool need_weights =
        std::any_of(manifest.base_models.begin(), manifest.base_models.end(),
                    [](const BaseModel& wanted) { return wanted.weights_sha256.has_value(); });
    const BaseModel model = identify_base_model(*options.base_model, need_weights);
    for (const BaseModel& wanted : manifest.base_models)
        if (base_model_fits(wanted, model)) return;
    std::string fits;
    for (const BaseModel& wanted : manifest.base_models)
        fits += (fits.empty() ? "" : ", ") + wanted.architecture + " with tokenizer " +
                wanted.tokenizer_sha256.substr(0, 12) + (wanted.weights_sha256 ? " (exact weights)" : "");
    throw PackError("base_models", manifest.name + " does not fit " + options.base_model->filename().string() + " (" +
                                       model.architecture + ", tokenizer " + model.tokenizer_sha256.substr(0, 12) +
                                       "); it fits " + fits);
}

void check_free_space(const PackManifest& manifest, const fs::path& store) {
    std::uint64_t needed = 0;
    for (const PackFile& file : manifest.files) needed += file.size;
    const std::uint64_t available = fs::space(store).available;
    if (available < needed)
        throw PackError("files", "need " + std::to_string(needed >> 20) + " MiB and " + store.string() + " has " +
                                     std::to_string(available >> 20) + " MiB free");
}

}  // namespace

PackStore::PackStore(fs::path directory) : directory_(std::move(directory)) {}

fs::path PackStore::default_directory() {
    const auto variable = [](const char* name) -> std::optional<std::string> {
        const char* value = std::getenv(name);
        if (value == nullptr || *value == '\0') return std::nullopt;
        return std::string(value);
    };
    if (const auto packs = variable("FOLIO_PACKS")) return *packs;
    if (const auto data = variable("XDG_DATA_HOME")) return fs::path(*data) / "folio" / "packs";
    return fs::path(variable("HOME").value_or(".")) / ".local" / "share" / "folio" / "packs";
}

InstallResult PackStore::install(const fs::path& pack_file, const InstallOptions& options) {
    const PackEnvelope envelope = read_pack_envelope(pack_file);
    const std::vector<PublicKey> keys = trusted_keys();
    const KeyId key = verify_manifest(envelope.manifest_bytes, envelope.signature, keys);
    const PackManifest manifest = parse_signed_manifest(envelope.manifest_bytes);
    if (compare_semantic_versions(manifest.min_folio_version, FOLIO_VERSION) > 0)
        throw PackError("min_folio_version", named_release_label(manifest) + " needs Folio " + manifest.min_folio_version +
                                                 " or newer; this is Folio " + FOLIO_VERSION);

    fs::create_directories(directory_ / kStagingFolder);
    fs::create_directories(directory_ / kInstalledFolder);
    const StoreLock lock(directory_);
    Database db(directory_ / kDatabaseFile, true);
    sweep_leftovers(db, directory_);

    InstallResult result;
    if (const std::optional<StoredPack> installed = find_stored(db, manifest.name, directory_)) {
        const PackManifest& current = installed->pack.manifest;
        if (manifest.sequence < current.sequence) {
            if (!options.allow_downgrade)
                throw PackError("sequence", "installing " + named_release_label(manifest) + " over " + named_release_label(current) +
                                                " would be a downgrade; allow it explicitly to go back");
            result.downgrade = true;
        } else if (manifest.sequence == current.sequence && envelope.manifest_bytes != installed->manifest_bytes) {
            throw PackError("sequence", named_release_label(manifest) +
                                            " differs from the installed pack with that sequence number; a new "
                                            "release needs a higher one");
        }
        result.replaced = current;
    }
    check_base_model(manifest, options);
    check_free_space(manifest, directory_);
    check_pack_archive(pack_file, envelope, manifest);

    const fs::path staged = directory_ / kStagingFolder / random_hex(8);
    const std::string folder = manifest.name + "-" + std::to_string(manifest.sequence) + "-" + random_hex(4);
    const fs::path activated = directory_ / kInstalledFolder / folder;
    fs::create_directory(staged);
    try {
        extract_pack_archive(pack_file, envelope, manifest, staged);
        if (options.check_content) options.check_content(staged, manifest);
        if (!options.dry_run) fs::rename(staged, activated);
    } catch (...) {
        std::error_code ignored;
        fs::remove_all(staged, ignored);
        throw;
    }
    if (options.dry_run) {
        fs::remove_all(staged);
        result.pack = {manifest, key_id_hex(key), {}, {}};
        return result;
    }

    try {
        Transaction transaction(db);
        Statement insert(db,
                         "INSERT OR REPLACE INTO packs(name, directory, manifest, signature, key_id, installed_at)"
                         " VALUES (?, ?, ?, ?, ?, ?)");
        result.pack = {manifest, key_id_hex(key), activated, now_utc()};
        insert.bind(1, manifest.name)
            .bind(2, folder)
            .bind(3, envelope.manifest_bytes)
            .bind_blob(4, envelope.signature)
            .bind(5, result.pack.key_id)
            .bind(6, result.pack.installed_at);
        insert.step();
        std::string detail = release_label(manifest) + ", signed by " + result.pack.key_id;
        if (result.replaced) detail += ", replacing " + release_label(*result.replaced);
        log_event(db, result.downgrade ? "downgrade" : "install", manifest.name, detail);
        transaction.commit();
    } catch (...) {
        std::error_code ignored;
        fs::remove_all(activated, ignored);
        throw;
    }
    // The old folder is no longer named by any record; a failure here leaves
    // it for the next sweep.
    if (result.replaced) sweep_leftovers(db, directory_);
    return result;
}

std::vector<InstalledPack> PackStore::list() const {
    std::vector<InstalledPack> packs;
    if (!fs::exists(directory_ / kDatabaseFile)) return packs;
    const Database db(directory_ / kDatabaseFile, false);
    Statement select(db, "SELECT name, directory, manifest, signature, key_id, installed_at FROM packs ORDER BY name");
    while (select.step()) packs.push_back(stored_pack(select, directory_).pack);
    return packs;
}

std::optional<InstalledPack> PackStore::find(std::string_view name) const {
    if (!fs::exists(directory_ / kDatabaseFile)) return std::nullopt;
    const Database db(directory_ / kDatabaseFile, false);
    if (auto stored = find_stored(db, name, directory_)) return std::move(stored->pack);
    return std::nullopt;
}

std::vector<std::string> PackStore::verify(std::string_view name) const {
    if (!fs::exists(directory_ / kDatabaseFile)) throw PackError("pack", "no pack named " + std::string(name) + " is installed");
    const Database db(directory_ / kDatabaseFile, false);
    const std::optional<StoredPack> stored = find_stored(db, name, directory_);
    if (!stored) throw PackError("pack", "no pack named " + std::string(name) + " is installed");

    std::vector<std::string> problems;
    try {
        const std::vector<PublicKey> keys = trusted_keys();
        verify_manifest(stored->manifest_bytes, stored->signature, keys);
    } catch (const PackError& e) {
        problems.push_back(e.what());
    }
    const fs::path& root = stored->pack.directory;
    std::set<fs::path> expected;  // listed files and the folders that hold them
    for (const PackFile& file : stored->pack.manifest.files) {
        const fs::path relative(file.path);
        for (fs::path parent = relative.parent_path(); !parent.empty(); parent = parent.parent_path())
            expected.insert(parent);
        expected.insert(relative);
        const fs::path path = root / relative;
        std::error_code error;
        const fs::file_status status = fs::symlink_status(path, error);
        if (error || !fs::exists(status)) {
            problems.push_back(file.path + ": missing");
        } else if (!fs::is_regular_file(status)) {
            problems.push_back(file.path + ": no longer a regular file");
        } else if (fs::file_size(path) != file.size) {
            problems.push_back(file.path + ": size changed from " + std::to_string(file.size) + " to " +
                               std::to_string(fs::file_size(path)) + " bytes");
        } else if (sha256_of_file(path) != file.sha256) {
            problems.push_back(file.path + ": content changed");
        }
    }
    std::error_code error;
    if (!fs::is_directory(root, error)) {
        problems.push_back("the pack's folder " + root.string() + " is missing");
        return problems;
    }
    for (auto it = fs::recursive_directory_iterator(root, error); !error && it != fs::recursive_directory_iterator();
         it.increment(error)) {
        const fs::path relative = it->path().lexically_relative(root);
        if (!expected.count(relative)) {
            problems.push_back(relative.generic_string() + ": not part of the pack");
            it.disable_recursion_pending();
        }
    }
    return problems;
}

void PackStore::remove(std::string_view name) {
    if (!fs::exists(directory_ / kDatabaseFile))
        throw PackError("pack", "no pack named " + std::string(name) + " is installed");
    const StoreLock lock(directory_);
    Database db(directory_ / kDatabaseFile, true);
    const std::optional<StoredPack> stored = find_stored(db, name, directory_);
    if (!stored) throw PackError("pack", "no pack named " + std::string(name) + " is installed");
    {
        Transaction transaction(db);
        Statement erase(db, "DELETE FROM packs WHERE name = ?");
        erase.bind(1, name);
        erase.step();
        log_event(db, "remove", name, release_label(stored->pack.manifest));
        transaction.commit();
    }
    std::error_code error;
    fs::remove_all(stored->pack.directory, error);
    if (error)
        throw PackError("pack", std::string(name) + " is removed, but some of its files could not be deleted (" +
                                    error.message() + "); the next install or removal deletes them");
}

std::vector<PublicKey> PackStore::trusted_keys() const {
    std::vector<PublicKey> keys = built_in_trusted_keys();
    if (!fs::exists(directory_ / kDatabaseFile)) return keys;
    const Database db(directory_ / kDatabaseFile, false);
    Statement select(db, "SELECT public_key FROM trusted_keys ORDER BY added_at");
    while (select.step()) {
        const std::string bytes = select.text(0);
        PublicKey key;
        if (bytes.size() != key.bytes.size()) throw PackError("pack store", "a trusted key record is damaged");
        std::copy(bytes.begin(), bytes.end(), key.bytes.begin());
        keys.push_back(key);
    }
    return keys;
}

bool PackStore::trust(const PublicKey& key) {
    const std::vector<PublicKey> keys = trusted_keys();
    if (std::find(keys.begin(), keys.end(), key) != keys.end()) return false;
    fs::create_directories(directory_);
    const StoreLock lock(directory_);
    Database db(directory_ / kDatabaseFile, true);
    Transaction transaction(db);
    Statement insert(db, "INSERT OR IGNORE INTO trusted_keys(key_id, public_key, added_at) VALUES (?, ?, ?)");
    const std::string id = key_id_hex(key.id());
    insert.bind(1, id)
        .bind_blob(2, std::string_view(reinterpret_cast<const char*>(key.bytes.data()), key.bytes.size()))
        .bind(3, now_utc());
    insert.step();
    log_event(db, "trust", id, "key added by the user");
    transaction.commit();
    return true;
}

std::vector<StoreEvent> PackStore::events() const {
    std::vector<StoreEvent> events;
    if (!fs::exists(directory_ / kDatabaseFile)) return events;
    const Database db(directory_ / kDatabaseFile, false);
    Statement select(db, "SELECT at, event, name, detail FROM events ORDER BY id");
    while (select.step()) events.push_back({select.text(0), select.text(1), select.text(2), select.text(3)});
    return events;
}

}  // namespace folio::packs
