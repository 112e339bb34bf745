// Install, verify and remove against real pack files: built by build_pack,
// or assembled here entry by entry (libarchive) and signed with a trusted
// key, so that the installer's checks behind the signature are reached too.

#include <QTemporaryDir>
#include <QTest>

#include <archive.h>
#include <archive_entry.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>

#include <algorithm>
#include <fstream>
#include <iterator>
#include <optional>
#include <sstream>
#include <string>
#include <vector>

#include "domain_packs/base_model.h"
#include "domain_packs/pack_builder.h"
#include "domain_packs/pack_file.h"
#include "domain_packs/pack_store.h"
#include "domain_packs/sodium.h"
#include "tests/support/file_tree.h"

using namespace folio::packs;
namespace fs = std::filesystem;

namespace {

void write_file(const fs::path& path, const std::string& text) {
    fs::create_directories(path.parent_path());
    std::ofstream(path, std::ios::binary) << text;
}

std::string read_file(const fs::path& path) {
    std::ifstream in(path, std::ios::binary);
    std::stringstream text;
    text << in.rdbuf();
    return text.str();
}

std::string sha256_of(const std::string& bytes) {
    Sha256 hash;
    hash.update(bytes);
    return hash.hex();
}

// One entry of a hand-made archive.
struct Entry {
    std::string path;
    std::string content;
    unsigned type = AE_IFREG;
    std::string link;             // symlink target, or hard link source when hardlink
    bool hardlink = false;
    std::int64_t zeros = 0;       // > 0: content is this many zero bytes instead
};

void write_tar(const fs::path& file, const std::vector<Entry>& entries) {
    struct archive* writer = archive_write_new();
    archive_write_add_filter_zstd(writer);
    archive_write_set_format_pax_restricted(writer);
    QCOMPARE(archive_write_open_filename(writer, file.c_str()), ARCHIVE_OK);
    for (const Entry& e : entries) {
        archive_entry* entry = archive_entry_new();
        archive_entry_set_pathname(entry, e.path.c_str());
        archive_entry_set_filetype(entry, e.type);
        archive_entry_set_perm(entry, 0644);
        if (e.type == AE_IFLNK) archive_entry_set_symlink(entry, e.link.c_str());
        if (e.hardlink) archive_entry_set_hardlink(entry, e.link.c_str());
        if (e.type == AE_IFCHR) archive_entry_set_rdev(entry, makedev(1, 3));
        const std::int64_t size = e.type != AE_IFREG || e.hardlink ? 0
                                  : e.zeros > 0                    ? e.zeros
                                                                   : static_cast<std::int64_t>(e.content.size());
        archive_entry_set_size(entry, size);
        QCOMPARE(archive_write_header(writer, entry), ARCHIVE_OK);
        if (e.zeros > 0) {
            const std::string block(1 << 20, '\0');
            for (std::int64_t left = e.zeros; left > 0; left -= static_cast<std::int64_t>(block.size()))
                archive_write_data(writer, block.data(), static_cast<std::size_t>(std::min<std::int64_t>(left, block.size())));
        } else if (size > 0) {
            archive_write_data(writer, e.content.data(), e.content.size());
        }
        archive_entry_free(entry);
    }
    archive_write_close(writer);
    archive_write_free(writer);
}

PackManifest release(std::string name, std::uint64_t sequence) {
    PackManifest manifest;
    manifest.name = std::move(name);
    manifest.version = "1." + std::to_string(sequence) + ".0";
    manifest.sequence = sequence;
    manifest.domain = "finance";
    manifest.min_folio_version = "0.1.0";
    return manifest;
}

// Expects call() to throw a PackError mentioning `message`.
template <typename Call>
std::string refusal(Call call) {
    try {
        call();
    } catch (const PackError& e) {
        return e.what();
    }
    return "(accepted)";
}

#define QVERIFY_REFUSED(call, message)                                                             \
    do {                                                                                            \
        const std::string what = refusal([&] { call; });                                            \
        QVERIFY2(what.find(message) != std::string::npos, ("got: " + what).c_str());                \
    } while (false)

}  // namespace

class PackStoreTest : public QObject {
    Q_OBJECT

    QTemporaryDir temp_;
    fs::path store_dir_;
    fs::path source_;
    std::optional<KeyPair> trusted_;
    std::optional<KeyPair> stranger_;

    PackStore store() const { return PackStore(store_dir_); }

    // A pack folder as `folio pack build` takes it.
    void write_source(const fs::path& dir, std::uint64_t sequence, const std::string& prompt) {
        fs::remove_all(dir);
        write_file(dir / "pack.json", R"({"name": "finance-test", "version": "1.)" + std::to_string(sequence) +
                                          R"(.0", "sequence": )" + std::to_string(sequence) +
                                          R"(, "domain": "finance", "min_folio_version": "0.1.0"})");
        write_file(dir / "prompts/extract.txt", prompt);
        write_file(dir / "schemas/facts.schema.json", R"({"type": "object"})");
    }

    fs::path build(std::uint64_t sequence, const std::string& prompt, const SecretKey& key,
                   std::vector<fs::path> base_models = {}, bool pin_weights = false) {
        const fs::path dir = fs::path(temp_.path().toStdString()) / ("src-" + std::to_string(sequence));
        write_source(dir, sequence, prompt);
        const fs::path out = fs::path(temp_.path().toStdString()) / ("pack-" + std::to_string(sequence) + "-" +
                                                                     std::to_string(counter_++) + ".foliopack");
        build_pack({.source_directory = dir, .output = out, .base_models = std::move(base_models),
                    .pin_weights = pin_weights},
                   key);
        return out;
    }

    // Signs a hand-made archive with `manifest` (files and archive filled in
    // from `listed`), with the trusted key unless told otherwise.
    fs::path assemble(PackManifest manifest, const std::vector<PackFile>& listed, const std::vector<Entry>& entries) {
        const fs::path base = fs::path(temp_.path().toStdString()) / ("made-" + std::to_string(counter_++));
        write_tar(base.string() + ".tar.zst", entries);
        manifest.files = listed;
        manifest.archive = {fs::file_size(base.string() + ".tar.zst"), sha256_of_file(base.string() + ".tar.zst")};
        const std::string bytes = canonical_manifest_json(manifest);
        write_pack_file(base.string() + ".foliopack", bytes, sign_manifest(bytes, trusted_->secret_key),
                        base.string() + ".tar.zst");
        return base.string() + ".foliopack";
    }

    static PackFile listed(const std::string& path, const std::string& content) {
        return {path, content.size(), sha256_of(content)};
    }

    // What must hold after any refused install: no staged files, and the
    // installed packs exactly as before.
    void expect_untouched(const std::vector<std::string>& installed_before) {
        QCOMPARE(folio::test::files_under(store_dir_ / "staging"), std::vector<std::string>{});
        QCOMPARE(folio::test::files_under(store_dir_ / "installed"), installed_before);
    }

    int counter_ = 0;

private slots:
    void init() {
        QVERIFY(temp_.isValid());
        store_dir_ = fs::path(temp_.path().toStdString()) / ("store-" + std::to_string(counter_++));
        trusted_.emplace(generate_keypair());
        stranger_.emplace(generate_keypair());
        QVERIFY(store().trust(trusted_->public_key));
        QVERIFY(!store().trust(trusted_->public_key));
    }

    void installs_lists_and_verifies() {
        const fs::path pack = build(1, "Extract the facts.", trusted_->secret_key);
        const InstallResult result = store().install(pack, {});
        QCOMPARE(result.pack.manifest.name, std::string("finance-test"));
        QCOMPARE(result.pack.key_id, key_id_hex(trusted_->public_key.id()));
        QVERIFY(!result.replaced);
        QCOMPARE(read_file(result.pack.directory / "prompts/extract.txt"), std::string("Extract the facts."));

        const std::vector<InstalledPack> packs = store().list();
        QCOMPARE(packs.size(), std::size_t{1});
        QCOMPARE(packs[0].manifest, result.pack.manifest);
        QCOMPARE(store().find("finance-test")->directory, result.pack.directory);
        QVERIFY(!store().find("other"));
        QCOMPARE(store().verify("finance-test"), std::vector<std::string>{});
        QCOMPARE(store().events().back().event, std::string("install"));
        QCOMPARE(folio::test::files_under(store_dir_ / "staging"), std::vector<std::string>{});
    }

    void refuses_unknown_or_broken_signatures() {
        const fs::path foreign = build(1, "x", stranger_->secret_key);
        QVERIFY_REFUSED(store().install(foreign, {}), "signed by an unknown key " +
                                                          key_id_hex(stranger_->public_key.id()));
        expect_untouched({});

        // The trusted key's id with another key's signature.
        std::string bytes = read_file(build(1, "x", trusted_->secret_key));
        const PackEnvelope envelope = read_pack_envelope(build(1, "x", trusted_->secret_key));
        const std::size_t signature_at = 16 + envelope.manifest_bytes.size();
        const std::string other = sign_manifest(envelope.manifest_bytes, stranger_->secret_key);
        bytes.replace(signature_at + 10, 64, other.substr(10));
        const fs::path forged = fs::path(temp_.path().toStdString()) / "forged.foliopack";
        write_file(forged, bytes);
        QVERIFY_REFUSED(store().install(forged, {}), "signature: ");
        expect_untouched({});
    }

    // Every single byte of a pack file matters: flipping any one of them,
    // or cutting the file short anywhere, is refused with nothing written.
    void refuses_any_changed_byte_and_any_truncation() {
        const fs::path pack = build(1, "Extract the facts.", trusted_->secret_key);
        const std::string original = read_file(pack);
        const fs::path changed = fs::path(temp_.path().toStdString()) / "changed.foliopack";
        for (std::size_t i = 0; i < original.size(); ++i) {
            std::string bytes = original;
            bytes[i] = static_cast<char>(bytes[i] ^ 0x20);
            write_file(changed, bytes);
            const std::string what = refusal([&] { store().install(changed, {}); });
            QVERIFY2(what != "(accepted)", ("flipped byte " + std::to_string(i)).c_str());
        }
        for (std::size_t length = 0; length < original.size(); ++length) {
            write_file(changed, original.substr(0, length));
            const std::string what = refusal([&] { store().install(changed, {}); });
            QVERIFY2(what != "(accepted)", ("truncated to " + std::to_string(length)).c_str());
        }
        write_file(changed, original + "x");
        QVERIFY_REFUSED(store().install(changed, {}), "archive: is " + std::to_string(original.size() - 16 -
                                                                                   read_pack_envelope(pack).manifest_bytes.size() - 74 + 1));
        expect_untouched({});
        store().install(pack, {});
    }

    void refuses_headers_it_does_not_read() {
        const fs::path pack = build(1, "x", trusted_->secret_key);
        std::string bytes = read_file(pack);
        const fs::path changed = fs::path(temp_.path().toStdString()) / "changed.foliopack";
        write_file(changed, "PK\x03\x04" + bytes.substr(4));
        QVERIFY_REFUSED(store().install(changed, {}), "is not a Folio pack");
        bytes[8] = 2;  // container version
        write_file(changed, bytes);
        QVERIFY_REFUSED(store().install(changed, {}), "container version 2 is not one this Folio reads");
        bytes = read_file(pack);
        bytes.replace(12, 4, std::string("\xff\xff\xff\x7f", 4));  // manifest length
        write_file(changed, bytes);
        QVERIFY_REFUSED(store().install(changed, {}), "manifest length 2147483647 is not 1 to");
        expect_untouched({});
    }

    // A newer manifest format, signed by a trusted key: refused by name
    // before any of its other fields are read.
    void refuses_a_newer_manifest_format() {
        const fs::path pack = build(1, "x", trusted_->secret_key);
        const PackEnvelope envelope = read_pack_envelope(pack);
        std::string manifest = envelope.manifest_bytes;
        const std::size_t at = manifest.find("\"format_version\":1");
        manifest.replace(at, 18, "\"format_version\":2");
        const fs::path archive = fs::path(temp_.path().toStdString()) / "archive.bin";
        write_file(archive, read_file(pack).substr(envelope.archive_offset));
        const fs::path newer = fs::path(temp_.path().toStdString()) / "newer.foliopack";
        write_pack_file(newer, manifest, sign_manifest(manifest, trusted_->secret_key), archive);
        QVERIFY_REFUSED(store().install(newer, {}), "format_version: ");
        expect_untouched({});
    }

    void refuses_a_pack_for_a_newer_folio() {
        PackManifest manifest = release("finance-test", 1);
        manifest.min_folio_version = "99.0.0";
        const fs::path pack = assemble(manifest, {listed("a.txt", "a")}, {{.path = "a.txt", .content = "a"}});
        QVERIFY_REFUSED(store().install(pack, {}), "needs Folio 99.0.0 or newer; this is Folio ");
        expect_untouched({});
    }

    void refuses_entries_that_are_not_listed_regular_files_data() {
        QTest::addColumn<int>("which");
        QTest::addColumn<QString>("message");
        QTest::newRow("symbolic link") << 0 << "is a symbolic link";
        QTest::newRow("hard link") << 1 << "is a hard link";
        QTest::newRow("character device") << 2 << "is a character device";
        QTest::newRow("FIFO") << 3 << "is a FIFO";
        QTest::newRow("directory entry") << 4 << "is a directory entry";
        QTest::newRow("parent path") << 5 << "points outside the pack's folder";
        QTest::newRow("absolute path") << 6 << "points outside the pack's folder";
        QTest::newRow("file added") << 7 << "is not listed in the manifest";
        QTest::newRow("file removed") << 8 << "lacks \"b.txt\", which the manifest lists";
        QTest::newRow("files swapped") << 9 << "does not match its SHA-256 in the manifest";
        QTest::newRow("entry twice") << 10 << "comes twice in the archive";
        QTest::newRow("size differs") << 11 << "declares 3 bytes, not the 1 the manifest lists";
        QTest::newRow("compression bomb") << 12 << "declares 268435456 bytes, not the 1";
    }

    void refuses_entries_that_are_not_listed_regular_files() {
        QFETCH(int, which);
        QFETCH(QString, message);
        const fs::path outside = fs::path(temp_.path().toStdString()) / "outside.txt";
        const Entry a{.path = "a.txt", .content = "a"};
        const Entry b{.path = "b.txt", .content = "b"};
        std::vector<Entry> entries;
        switch (which) {
            case 0: entries = {a, {.path = "b.txt", .type = AE_IFLNK, .link = "/etc/passwd"}}; break;
            case 1: entries = {a, {.path = "b.txt", .link = "a.txt", .hardlink = true}}; break;
            case 2: entries = {a, {.path = "b.txt", .type = AE_IFCHR}}; break;
            case 3: entries = {a, {.path = "b.txt", .type = AE_IFIFO}}; break;
            case 4: entries = {{.path = "prompts/", .type = AE_IFDIR}, a, b}; break;
            case 5: entries = {a, {.path = "../outside.txt", .content = "b"}, b}; break;
            case 6: entries = {a, {.path = outside.string(), .content = "b"}, b}; break;
            case 7: entries = {a, b, {.path = "c.txt", .content = "c"}}; break;
            case 8: entries = {a}; break;
            case 9: entries = {{.path = "a.txt", .content = "b"}, {.path = "b.txt", .content = "a"}}; break;
            case 10: entries = {a, b, b}; break;
            case 11: entries = {a, {.path = "b.txt", .content = "bbb"}}; break;
            case 12: entries = {a, {.path = "b.txt", .zeros = std::int64_t{256} << 20}}; break;
        }
        const fs::path pack = assemble(release("finance-test", 1), {listed("a.txt", "a"), listed("b.txt", "b")}, entries);
        QVERIFY(fs::file_size(pack) < (1 << 20));
        QVERIFY_REFUSED(store().install(pack, {}), message.toStdString());
        QVERIFY(!fs::exists(outside));
        QVERIFY(!fs::exists(store_dir_.parent_path() / "outside.txt"));
        expect_untouched({});
        QVERIFY(store().list().empty());
    }

    void refuses_downgrades_unless_allowed_and_logs_them() {
        const fs::path v1 = build(1, "one", trusted_->secret_key);
        const fs::path v2 = build(2, "two", trusted_->secret_key);
        store().install(v2, {});
        const std::vector<std::string> installed = folio::test::files_under(store_dir_ / "installed");
        QVERIFY_REFUSED(store().install(v1, {}),
                        "installing finance-test 1.1.0 (sequence 1) over finance-test 1.2.0 (sequence 2) would be a "
                        "downgrade");
        expect_untouched(installed);

        const InstallResult result = store().install(v1, {.allow_downgrade = true});
        QVERIFY(result.downgrade);
        QCOMPARE(result.replaced->sequence, std::uint64_t{2});
        QCOMPARE(read_file(store().find("finance-test")->directory / "prompts/extract.txt"), std::string("one"));
        QCOMPARE(store().events().back().event, std::string("downgrade"));
        QVERIFY(store().events().back().detail.find("replacing 1.2.0 (sequence 2)") != std::string::npos);
    }

    void upgrades_in_place_and_reinstalls_the_same_release() {
        store().install(build(1, "one", trusted_->secret_key), {});
        const fs::path v2 = build(2, "two", trusted_->secret_key);
        const InstallResult upgraded = store().install(v2, {});
        QCOMPARE(upgraded.replaced->sequence, std::uint64_t{1});
        // The old release's folder is gone; one folder is left.
        QCOMPARE(std::distance(fs::directory_iterator(store_dir_ / "installed"), fs::directory_iterator{}), 1);
        QCOMPARE(read_file(upgraded.pack.directory / "prompts/extract.txt"), std::string("two"));

        // The very same file again repairs the installation.
        fs::remove(upgraded.pack.directory / "prompts/extract.txt");
        QVERIFY(!store().verify("finance-test").empty());
        store().install(v2, {});
        QCOMPARE(store().verify("finance-test"), std::vector<std::string>{});

        // Other content under a sequence number already installed.
        const std::vector<std::string> installed = folio::test::files_under(store_dir_ / "installed");
        QVERIFY_REFUSED(store().install(build(2, "changed", trusted_->secret_key), {}),
                        "differs from the installed pack with that sequence number");
        expect_untouched(installed);
    }

    void a_failed_install_keeps_the_installed_release() {
        store().install(build(1, "one", trusted_->secret_key), {});
        const std::vector<std::string> installed = folio::test::files_under(store_dir_ / "installed");
        std::string bytes = read_file(build(2, "two", trusted_->secret_key));
        bytes.back() = static_cast<char>(bytes.back() ^ 1);
        const fs::path broken = fs::path(temp_.path().toStdString()) / "broken.foliopack";
        write_file(broken, bytes);
        QVERIFY_REFUSED(store().install(broken, {}), "archive: does not match its SHA-256");
        expect_untouched(installed);
        QCOMPARE(store().find("finance-test")->manifest.sequence, std::uint64_t{1});
        QCOMPARE(store().verify("finance-test"), std::vector<std::string>{});
    }

    void a_content_check_refusal_activates_nothing() {
        InstallOptions options;
        options.check_content = [](const fs::path& staged, const PackManifest&) {
            QVERIFY(fs::exists(staged / "pack.json"));
            throw PackError("content", "pack.json names no schema");
        };
        QVERIFY_REFUSED(store().install(build(1, "x", trusted_->secret_key), options), "content: pack.json names no schema");
        expect_untouched({});
    }

    void a_dry_run_checks_everything_and_installs_nothing() {
        InstallOptions options;
        options.dry_run = true;
        const InstallResult result = store().install(build(1, "x", trusted_->secret_key), options);
        QCOMPARE(result.pack.manifest.name, std::string("finance-test"));
        expect_untouched({});
        QVERIFY(store().list().empty());
    }

    void requires_a_fitting_base_model() {
        // Tokenizer-only GGUF files of two model families.
        const fs::path llama = fs::path(FOLIO_TEST_DATA) / "tokenizer/smollm.gguf";
        const fs::path qwen = fs::path(FOLIO_TEST_DATA) / "tokenizer/qwen2.gguf";
        const fs::path pack = build(1, "x", trusted_->secret_key, {llama});
        QVERIFY_REFUSED(store().install(pack, {}), "is made for particular models");
        QVERIFY_REFUSED(store().install(pack, {.base_model = qwen}), "does not fit qwen2.gguf (");
        expect_untouched({});
        QCOMPARE(store().install(pack, {.base_model = llama}).pack.manifest.base_models.size(), std::size_t{1});

        // Pinned weights: the same tokenizer with other weights does not fit.
        const BaseModel identity = identify_base_model(llama, true);
        QVERIFY(identity.weights_sha256);
        QVERIFY(base_model_fits(identify_base_model(llama, false), identity));
        BaseModel other_weights = identity;
        other_weights.weights_sha256 = std::string(64, '0');
        QVERIFY(!base_model_fits(other_weights, identity));
        QVERIFY(base_model_fits(identify_base_model(llama, false), other_weights));
        QVERIFY_REFUSED(identify_base_model(fs::path(FOLIO_TEST_DATA) / "llama_tiny/model.gguf", false),
                        "has no tokenizer");
    }

    void verify_reports_every_change_to_installed_files() {
        const fs::path dir = store().install(build(1, "one", trusted_->secret_key), {}).pack.directory;
        write_file(dir / "prompts/extract.txt", "two");           // same size, other bytes
        fs::remove(dir / "schemas/facts.schema.json");
        fs::create_symlink("/etc/hostname", dir / "schemas/facts.schema.json");
        write_file(dir / "extra/notes.txt", "added");
        fs::resize_file(dir / "pack.json", 3);
        const std::vector<std::string> problems = store().verify("finance-test");
        const auto has = [&](const std::string& text) {
            return std::any_of(problems.begin(), problems.end(),
                               [&](const std::string& p) { return p.find(text) != std::string::npos; });
        };
        QVERIFY(has("prompts/extract.txt: content changed"));
        QVERIFY(has("schemas/facts.schema.json: no longer a regular file"));
        QVERIFY(has("extra: not part of the pack"));
        QVERIFY(has("pack.json: size changed"));
        std::string all;
        for (const std::string& problem : problems) all += problem + "; ";
        QVERIFY2(problems.size() == 4, all.c_str());
        QVERIFY_REFUSED(store().verify("nothing-here"), "no pack named nothing-here is installed");
    }

    void removal_leaves_no_files_behind() {
        store().install(build(1, "one", trusted_->secret_key), {});
        store().remove("finance-test");
        QVERIFY(store().list().empty());
        QCOMPARE(folio::test::files_under(store_dir_ / "installed"), std::vector<std::string>{});
        QCOMPARE(folio::test::files_under(store_dir_ / "staging"), std::vector<std::string>{});
        QCOMPARE(store().events().back().event, std::string("remove"));
        QVERIFY_REFUSED(store().remove("finance-test"), "no pack named finance-test is installed");
    }

    // What an interrupted install leaves (a staged folder, an installed
    // folder no record names) is swept by the next change to the store.
    void sweeps_what_a_crash_left() {
        store().install(build(1, "one", trusted_->secret_key), {});
        write_file(store_dir_ / "staging/0123456789abcdef/pack.json", "{}");
        write_file(store_dir_ / "installed/finance-test-9-deadbeef/pack.json", "{}");
        store().install(build(2, "two", trusted_->secret_key), {});
        QCOMPARE(folio::test::files_under(store_dir_ / "staging"), std::vector<std::string>{});
        QCOMPARE(std::distance(fs::directory_iterator(store_dir_ / "installed"), fs::directory_iterator{}), 1);
    }

    // Found by fuzz_pack: a tar cut short inside a pax header made libarchive
    // fail without an error string, and the message was built from a null
    // pointer.
    void a_truncated_archive_is_refused() {
        const fs::path archive = fs::path(FOLIO_TEST_DATA) / "packs/truncated_pax.tar";
        PackManifest manifest = release("finance-test", 1);
        manifest.files = {listed("a.txt", "a")};
        PackEnvelope envelope;
        envelope.archive_size = fs::file_size(archive);
        const fs::path staging = store_dir_ / "staging-by-hand";
        fs::create_directories(staging);
        QVERIFY_REFUSED(extract_pack_archive(archive, envelope, manifest, staging), "archive: is damaged");
    }

    void the_built_in_release_key_is_trusted() {
        const std::vector<PublicKey> keys = PackStore(store_dir_ / "new").trusted_keys();
        QCOMPARE(keys.size(), std::size_t{1});
        QCOMPARE(key_id_hex(keys[0].id()), std::string("1122de7e74f03c7f"));
    }
};

QTEST_GUILESS_MAIN(PackStoreTest)
#include "tst_pack_store.moc"
