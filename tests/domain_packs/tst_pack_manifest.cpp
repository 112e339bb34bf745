#include <QTest>

#include <cstdint>
#include <limits>
#include <string>
#include <utility>
#include <vector>

#include "domain_packs/pack_manifest.h"

using namespace folio::packs;

namespace {

QByteArray hex64(char digit) { return QByteArray(64, digit); }

// A valid manifest written the way a person might: keys out of order,
// indented, files and base models unsorted. The second file sits exactly at
// the size cap.
QByteArray valid_manifest_text() {
    QByteArray text = R"({
  "name": "finance-core",
  "version": "1.2.0-rc.1+build.5",
  "format_version": 1,
  "sequence": 7,
  "domain": "finance",
  "min_folio_version": "0.1.0",
  "base_models": [
    {"tokenizer_sha256": "<T2>", "architecture": "qwen2"},
    {"architecture": "llama", "weights_sha256": "<W1>", "tokenizer_sha256": "<T1>"}
  ],
  "files": [
    {"size": 812, "path": "prompts/ask.txt", "sha256": "<FA>"},
    {"path": "adapters/finance.gguf", "sha256": "<FB>", "size": 8589934592}
  ],
  "archive": {"size": 52113, "sha256": "<AR>"}
})";
    return text.replace("<T1>", hex64('1'))
        .replace("<T2>", hex64('2'))
        .replace("<W1>", hex64('3'))
        .replace("<FA>", hex64('a'))
        .replace("<FB>", hex64('b'))
        .replace("<AR>", hex64('e'));
}

// The canonical bytes of valid_manifest_text(), written out by hand.
QByteArray expected_canonical_text() {
    return QByteArray(R"({"archive":{"sha256":")") + hex64('e') + R"(","size":52113},"base_models":[{"architecture":"llama","tokenizer_sha256":")" + hex64('1') +
           R"(","weights_sha256":")" + hex64('3') + R"("},{"architecture":"qwen2","tokenizer_sha256":")" +
           hex64('2') + R"("}],"domain":"finance","files":[{"path":"adapters/finance.gguf","sha256":")" +
           hex64('b') + R"(","size":8589934592},{"path":"prompts/ask.txt","sha256":")" + hex64('a') +
           R"(","size":812}],"format_version":1,"min_folio_version":"0.1.0","name":"finance-core",)"
           R"("sequence":7,"version":"1.2.0-rc.1+build.5"})";
}

std::string_view view(const QByteArray& bytes) { return {bytes.constData(), static_cast<std::size_t>(bytes.size())}; }

PackManifest small_manifest() {
    PackManifest manifest;
    manifest.name = "medical";
    manifest.version = "0.3.1";
    manifest.sequence = 1;
    manifest.domain = "medical";
    manifest.min_folio_version = "0.1.0";
    manifest.files.push_back({"glossary.tsv", 10, std::string(64, 'c')});
    manifest.archive = {512, std::string(64, 'd')};
    return manifest;
}

}  // namespace

class PackManifestTest : public QObject {
    Q_OBJECT

private slots:
    void parses_every_field() {
        const PackManifest manifest = parse_manifest(view(valid_manifest_text()));
        QCOMPARE(manifest.format_version, std::uint64_t{1});
        QCOMPARE(manifest.name, std::string("finance-core"));
        QCOMPARE(manifest.version, std::string("1.2.0-rc.1+build.5"));
        QCOMPARE(manifest.sequence, std::uint64_t{7});
        QCOMPARE(manifest.domain, std::string("finance"));
        QCOMPARE(manifest.min_folio_version, std::string("0.1.0"));

        QCOMPARE(manifest.base_models.size(), std::size_t{2});
        QCOMPARE(manifest.base_models[0].architecture, std::string("llama"));
        QCOMPARE(manifest.base_models[0].tokenizer_sha256, hex64('1').toStdString());
        QVERIFY(manifest.base_models[0].weights_sha256 == hex64('3').toStdString());
        QCOMPARE(manifest.base_models[1].architecture, std::string("qwen2"));
        QVERIFY(!manifest.base_models[1].weights_sha256);

        QCOMPARE(manifest.files.size(), std::size_t{2});
        QCOMPARE(manifest.files[0].path, std::string("adapters/finance.gguf"));
        QCOMPARE(manifest.files[0].size, kMaxPackFileSize);
        QCOMPARE(manifest.files[0].sha256, hex64('b').toStdString());
        QCOMPARE(manifest.files[1].path, std::string("prompts/ask.txt"));
        QCOMPARE(manifest.files[1].size, std::uint64_t{812});
    }

    void round_trips_through_canonical_bytes() {
        const PackManifest parsed = parse_manifest(view(valid_manifest_text()));
        const std::string canonical = canonical_manifest_json(parsed);
        QCOMPARE(parse_manifest(canonical), parsed);
        QCOMPARE(parse_signed_manifest(canonical), parsed);
        QCOMPARE(canonical_manifest_json(parse_manifest(canonical)), canonical);

        PackManifest extreme = small_manifest();
        extreme.sequence = std::numeric_limits<std::uint64_t>::max();
        QCOMPARE(parse_signed_manifest(canonical_manifest_json(extreme)).sequence, extreme.sequence);
    }

    void canonical_bytes_ignore_key_order_and_whitespace() {
        const QByteArray expected = expected_canonical_text();
        QCOMPARE(QByteArray::fromStdString(canonical_manifest_json(parse_manifest(view(valid_manifest_text())))),
                 expected);

        // Same content: other key order, no indentation, files and base models
        // listed the other way round.
        QByteArray reordered = R"({"files":[{"sha256":"<FA>","size":812,"path":"prompts/ask.txt"},)"
                               R"(  {"size":8589934592,"sha256":"<FB>","path":"adapters/finance.gguf"}],)"
                               R"("sequence":7,"min_folio_version":"0.1.0","name":"finance-core","domain":"finance",)"
                               "\t\"base_models\" :\r\n [ {\"tokenizer_sha256\":\"<T1>\",\"weights_sha256\":\"<W1>\","
                               R"("architecture":"llama"},{"architecture":"qwen2","tokenizer_sha256":"<T2>"}],)"
                               R"("format_version":1,"archive":{"sha256":"<AR>","size":52113},)"
                               R"("version":"1.2.0-rc.1+build.5"}   )";
        reordered.replace("<T1>", hex64('1')).replace("<T2>", hex64('2')).replace("<W1>", hex64('3'));
        reordered.replace("<FA>", hex64('a')).replace("<FB>", hex64('b')).replace("<AR>", hex64('e'));
        QCOMPARE(QByteArray::fromStdString(canonical_manifest_json(parse_manifest(view(reordered)))), expected);

        // A struct filled in code, in any order, serializes the same way.
        PackManifest built = parse_manifest(view(valid_manifest_text()));
        std::swap(built.files[0], built.files[1]);
        std::swap(built.base_models[0], built.base_models[1]);
        QCOMPARE(QByteArray::fromStdString(canonical_manifest_json(built)), expected);
    }

    void signed_bytes_must_be_canonical() {
        try {
            parse_signed_manifest(view(valid_manifest_text()));
            QFAIL("indented manifest accepted as signed bytes");
        } catch (const PackError& error) {
            QCOMPARE(error.field(), std::string("manifest"));
            QVERIFY2(std::string(error.what()).find("canonical form") != std::string::npos, error.what());
        }
    }

    void rejects_each_broken_rule_data() {
        QTest::addColumn<QByteArray>("original");
        QTest::addColumn<QByteArray>("replacement");
        QTest::addColumn<QString>("field");
        QTest::addColumn<QString>("message");

        const QByteArray ask = R"("prompts/ask.txt")";
        const auto row = [](const char* name, const QByteArray& original, const QByteArray& replacement,
                            const char* field, const char* message) {
            QTest::newRow(name) << original << replacement << QString(field) << QString(message);
        };
        row("parent segment", ask, R"("../x")", "files[0].path", "has a '..' segment: \"../x\"");
        row("inner parent segment", ask, R"("prompts/../../x")", "files[0].path", "has a '..' segment");
        row("dot segment", ask, R"("./ask.txt")", "files[0].path", "has a '.' segment");
        row("absolute", ask, R"("/etc/passwd")", "files[0].path", "is absolute: \"/etc/passwd\"");
        // Not a raw string: moc reads the "//" in one as a comment and loses the class.
        row("empty segment", ask, "\"a//b\"", "files[0].path", "has an empty segment: \"a//b\"");
        row("trailing slash", ask, R"("prompts/")", "files[0].path", "has an empty segment");
        row("backslash", ask, R"("a\\b")", "files[0].path", "contains a backslash");
        row("empty path", ask, R"("")", "files[0].path", "is empty");
        row("path too long", ask, '"' + QByteArray(256, 'p') + '"', "files[0].path", "is 256 bytes, more than 255");
        row("space in path", ask, R"("prompts/ask me.txt")", "files[0].path", "may hold only [A-Za-z0-9._-]");
        row("control byte in path", ask, R"("prompts/a\nb")", "files[0].path", "\"prompts/a\\x0ab\"");
        row("non-ASCII path", ask, "\"prompts/\xc3\xa9.txt\"", "files[0].path", "\"prompts/\\xc3\\xa9.txt\"");
        row("duplicate path", ask, R"("adapters/finance.gguf")", "files[1].path", "duplicates files[0].path: ");
        row("duplicate path ignoring case", ask, R"("Adapters/Finance.gguf")", "files[1].path",
            "duplicates files[0].path ignoring case");
        row("file is also a directory", ask, R"("adapters/finance.gguf/x")", "files[1].path",
            "is a file and also the directory of files[0].path");
        row("path not a string", ask, "42", "files[0].path", "must be a string");

        row("uppercase hex", hex64('a'), hex64('A'), "files[0].sha256", "is not 64 lowercase hex digits");
        row("short hex", hex64('a'), QByteArray(63, 'a'), "files[0].sha256", "is not 64 lowercase hex digits");
        row("non-hex digit", hex64('a'), hex64('g'), "files[0].sha256", "is not 64 lowercase hex digits");
        row("bad tokenizer hash", hex64('2'), "xyz", "base_models[0].tokenizer_sha256", "64 lowercase hex");
        row("bad weights hash", hex64('3'), QByteArray(65, '3'), "base_models[1].weights_sha256", "64 lowercase hex");
        row("null weights hash", '"' + hex64('3') + '"', "null", "base_models[1].weights_sha256", "must be a string");

        row("size over cap", "8589934592", "8589934593", "files[1].size",
            "8589934593 bytes is more than the limit of 8589934592");
        row("files over the total cap", "{\"size\": 812,",
            "{\"size\": 8589934592, \"path\": \"z.bin\", \"sha256\": \"<FA>\"}, {\"size\": 812,", "files",
            "hold 17179869996 bytes in all, more than the limit of 17179869184");
        row("archive missing", ",\n  \"archive\": {\"size\": 52113, \"sha256\": \"<AR>\"}", "", "archive",
            "is missing");
        row("empty archive", "52113", "0", "archive.size", "must be 1 to 17179869184 bytes, not 0");
        row("archive over the cap", "52113", "17179869185", "archive.size", "not 17179869185");
        row("bad archive hash", "\"sha256\": \"<AR>\"", "\"sha256\": \"AR\"", "archive.sha256", "64 lowercase hex");
        row("unknown archive key", "\"size\": 52113,", "\"size\": 52113, \"codec\": \"zstd\",", "archive",
            "has an unknown key \"codec\"");
        row("negative size", "812", "-1", "files[0].size", "must be a non-negative integer");
        row("fractional size", "812", "812.0", "files[0].size", "must be a non-negative integer");
        row("size as string", "812", R"("812")", "files[0].size", "must be a non-negative integer");
        row("negative sequence", R"("sequence": 7)", R"("sequence": -7)", "sequence", "non-negative integer");

        row("newer format", R"("format_version": 1)", R"("format_version": 2)", "format_version",
            "manifest format 2 is newer than this Folio understands (1); update Folio");
        row("newer format with new keys", R"("format_version": 1)", R"("format_version": 3, "policy": {})",
            "format_version", "manifest format 3 is newer than this Folio understands (1)");
        row("format zero", R"("format_version": 1)", R"("format_version": 0)", "format_version", "at least 1");
        row("format missing", R"("format_version": 1,)", "", "format_version", "is missing");

        row("unknown top-level key", R"("sequence": 7)", R"("sequence": 7, "signer": "me")", "manifest",
            "has an unknown key \"signer\"");
        row("unknown file key", R"("size": 812,)", R"("size": 812, "mode": 420,)", "files[0]",
            "has an unknown key \"mode\"");
        row("unknown base model key", R"("architecture": "qwen2")", R"("architecture": "qwen2", "rank": 8)",
            "base_models[0]", "has an unknown key \"rank\"");
        row("repeated key", R"("sequence": 7)", R"("sequence": 7, "sequence": 8)", "manifest",
            "repeats the key \"sequence\"");
        row("missing domain", R"("domain": "finance",)", "", "domain", "is missing");
        row("missing file hash", R"(, "sha256": "<FB>")", "", "files[1].sha256", "is missing");
        row("file entry not an object", R"({"size": 812)", R"(7, {"size": 812)", "files[0]", "must be a JSON object");

        row("uppercase name", R"("finance-core")", R"("Finance-core")", "name", "may hold only [a-z0-9-]");
        row("name with underscore", R"("finance-core")", R"("finance_core")", "name", "may hold only [a-z0-9-]");
        row("name starting with hyphen", R"("finance-core")", R"("-finance")", "name", "must not start with '-'");
        row("empty name", R"("finance-core")", R"("")", "name", "is empty");
        row("name too long", R"("finance-core")", '"' + QByteArray(65, 'n') + '"', "name", "65 bytes, more than 64");
        row("bad domain", R"("finance",)", R"("fin ance",)", "domain", "may hold only [a-z0-9-]");
        row("version not semver", R"("1.2.0-rc.1+build.5")", R"("1.2")", "version", "is not a semantic version");
        row("min version not semver", R"("0.1.0")", R"("latest")", "min_folio_version", "is not a semantic version");
        row("uppercase architecture", R"("qwen2")", R"("Qwen2")", "base_models[0].architecture", "of [a-z0-9_-]");
        row("empty architecture", R"("qwen2")", R"("")", "base_models[0].architecture", "must be 1 to 64");
        row("duplicate base model", R"({"tokenizer_sha256": "<T2>", "architecture": "qwen2"})",
            R"({"tokenizer_sha256": "<T1>", "architecture": "llama", "weights_sha256": "<W1>"})", "base_models[1]",
            "duplicates base_models[0]");
    }

    void rejects_each_broken_rule() {
        QFETCH(QByteArray, original);
        QFETCH(QByteArray, replacement);
        QFETCH(QString, field);
        QFETCH(QString, message);

        const auto with_hashes = [](QByteArray text) {
            return text.replace("<T1>", hex64('1'))
                .replace("<T2>", hex64('2'))
                .replace("<W1>", hex64('3'))
                .replace("<FA>", hex64('a'))
                .replace("<FB>", hex64('b'))
                .replace("<AR>", hex64('e'));
        };
        QByteArray text = valid_manifest_text();
        const QByteArray from = with_hashes(original);
        QCOMPARE(text.count(from), qsizetype{1});  // the row edits what it means to
        text.replace(from, with_hashes(replacement));
        try {
            parse_manifest(view(text));
            QFAIL("manifest accepted");
        } catch (const PackError& error) {
            const QString what = QString::fromUtf8(error.what());
            QCOMPARE(QString::fromStdString(error.field()), field);
            QVERIFY2(what.startsWith(field + ": "), qPrintable(what));
            QVERIFY2(what.contains(message), qPrintable(what));
            QVERIFY2(!what.contains('\n'), qPrintable(what));
        }
    }

    void rejects_malformed_documents_data() {
        QTest::addColumn<QByteArray>("text");
        QTest::addColumn<QString>("message");
        QTest::newRow("not JSON") << QByteArray("{\"name\": \n") << "manifest: is not valid JSON";
        QTest::newRow("not an object") << QByteArray("[1, 2]") << "manifest: must be a JSON object";
        QTest::newRow("empty") << QByteArray() << "manifest: is not valid JSON";
        QTest::newRow("invalid UTF-8") << QByteArray("{\"name\": \"\xff\"}") << "manifest: is not valid JSON";
        QTest::newRow("files not an array")
            << QByteArray(R"({"base_models":[],"domain":"medical","files":{},"format_version":1,)"
                          R"("min_folio_version":"0.1.0","name":"medical","sequence":1,"version":"0.3.1"})")
            << "files: must be a JSON array";
        // Found by fuzz_pack: the JSON parser reports a number out of range
        // with an exception of another type.
        QTest::newRow("number overflow") << QByteArray("{\"format_version\": 6e6666}")
                                         << "manifest: is not valid JSON: [json.exception.out_of_range.406]";
        QTest::newRow("too large") << QByteArray(int(kMaxManifestBytes) + 1, ' ')
                                   << "manifest: is 4194305 bytes, more than 4194304";
    }

    void rejects_malformed_documents() {
        QFETCH(QByteArray, text);
        QFETCH(QString, message);
        try {
            parse_manifest(view(text));
            QFAIL("document accepted");
        } catch (const PackError& error) {
            const QString what = QString::fromUtf8(error.what());
            QVERIFY2(what.startsWith(message), qPrintable(what));
            QVERIFY2(!what.contains('\n'), qPrintable(what));
        }
    }

    void refuses_an_empty_file_list() {
        PackManifest manifest = small_manifest();
        manifest.files.clear();
        QVERIFY_THROWS_EXCEPTION(PackError, canonical_manifest_json(manifest));
        const std::string text = "{\"archive\":{\"sha256\":\"" + std::string(64, 'd') + "\",\"size\":512},"
                                 R"("base_models":[],"domain":"medical","files":[],"format_version":1,)"
                                 R"("min_folio_version":"0.1.0","name":"medical","sequence":1,"version":"0.3.1"})";
        try {
            parse_manifest(text);
            QFAIL("manifest without files accepted");
        } catch (const PackError& error) {
            QCOMPARE(std::string(error.what()), std::string("files: is empty; a pack carries at least one file"));
        }
    }

    void refuses_more_entries_than_the_caps() {
        PackManifest manifest = small_manifest();
        for (std::size_t i = 0; i <= kMaxBaseModels; ++i)
            manifest.base_models.push_back(
                {"llama", std::string(64, 'e'), std::to_string(1000000 + i) + std::string(57, 'f')});
        try {
            canonical_manifest_json(manifest);
            QFAIL("65 base models accepted");
        } catch (const PackError& error) {
            QCOMPARE(std::string(error.what()), std::string("base_models: lists 65 models, more than 64"));
        }
        manifest.base_models.pop_back();
        QVERIFY(parse_signed_manifest(canonical_manifest_json(manifest)) == manifest);

        for (std::size_t i = 1; i <= kMaxPackFiles; ++i)
            manifest.files.push_back({"f" + std::to_string(i), 1, std::string(64, 'd')});
        try {
            canonical_manifest_json(manifest);
            QFAIL("4097 files accepted");
        } catch (const PackError& error) {
            QCOMPARE(std::string(error.what()), std::string("files: lists 4097 files, more than 4096"));
        }
    }

    void serialization_validates_first() {
        PackManifest manifest = small_manifest();
        QVERIFY(!canonical_manifest_json(manifest).empty());
        manifest.files.push_back({"../escape", 1, std::string(64, 'd')});
        QVERIFY_THROWS_EXCEPTION(PackError, canonical_manifest_json(manifest));
        manifest.files.pop_back();
        manifest.files[0].path = std::string(kMaxPathBytes, 'x');
        QVERIFY(parse_signed_manifest(canonical_manifest_json(manifest)) == manifest);
    }

    void semantic_versions_data() {
        QTest::addColumn<QString>("text");
        QTest::addColumn<bool>("valid");
        for (const char* good : {"0.0.0", "1.2.3", "10.20.30", "1.0.0-alpha", "1.0.0-alpha.1", "1.0.0-0.3.7",
                                 "1.0.0-x-y-z.--", "1.0.0+20130313144700", "1.0.0-beta+exp.sha.5114f85"})
            QTest::newRow(good) << QString(good) << true;
        for (const char* bad : {"", "1", "1.2", "1.2.3.4", "01.2.3", "1.02.3", "1.2.03", "1.2.3-", "1.2.3+",
                                "1.2.3-01", "1.2.3-a..b", "1.2.3+a_b", "v1.2.3", "1.2.3 ", "-1.2.3", "1.2.-3"})
            QTest::newRow(bad[0] ? bad : "empty") << QString(bad) << false;
    }

    void semantic_versions() {
        QFETCH(QString, text);
        QFETCH(bool, valid);
        QCOMPARE(is_semantic_version(text.toStdString()), valid);
    }

    // The precedence example of SemVer 2.0.0 section 11, in ascending order.
    void semantic_version_precedence() {
        const std::vector<std::string> ascending = {"1.0.0-alpha",      "1.0.0-alpha.1", "1.0.0-alpha.beta",
                                                    "1.0.0-beta",       "1.0.0-beta.2",  "1.0.0-beta.11",
                                                    "1.0.0-rc.1",       "1.0.0",         "1.0.1",
                                                    "1.9.0",            "1.10.0",        "2.0.0",
                                                    "10.0.0",           "99999999999999999999.0.0"};
        for (std::size_t i = 0; i < ascending.size(); ++i)
            for (std::size_t j = 0; j < ascending.size(); ++j) {
                const int order = compare_semantic_versions(ascending[i], ascending[j]);
                const int expected = i < j ? -1 : (i == j ? 0 : 1);
                QVERIFY2((order > 0) - (order < 0) == expected, (ascending[i] + " vs " + ascending[j]).c_str());
            }
        QCOMPARE(compare_semantic_versions("1.2.3+build.1", "1.2.3+build.2"), 0);
    }
};

QTEST_GUILESS_MAIN(PackManifestTest)
#include "tst_pack_manifest.moc"
