// Pack content as the jobs load it: the built-in packs, a pack folder with
// LoRA adapters (kept when they fit the model, set aside when not), and an
// installed pack taking a built-in one's place.

#include <QTemporaryDir>
#include <QTest>

#include <filesystem>
#include <fstream>

#include "app/packs.h"
#include "domain_packs/pack_builder.h"
#include "domain_packs/pack_store.h"
#include "engine/gguf.h"
#include "engine/model.h"

using namespace folio;
namespace fs = std::filesystem;

namespace {

const fs::path kTestData = FOLIO_TEST_DATA;

void write_file(const fs::path& path, const std::string& text) {
    fs::create_directories(path.parent_path());
    std::ofstream(path, std::ios::binary) << text;
}

// A pack folder with one adapter for the tiny llama of tests/data.
fs::path adapter_pack(const fs::path& dir, const std::string& adapter_entry) {
    write_file(dir / "pack.json", R"({"name": "tiny", "version": "1.0.0", "sequence": 1, "domain": "test",)"
                                  R"( "min_folio_version": "0.1.0", "description": "A tiny pack",)"
                                  R"( "extract_schema": "schema.json", "extract_prompt": "prompt.txt",)"
                                  R"( "adapters": [)" + adapter_entry + "]}");
    write_file(dir / "schema.json", R"({"type": "object", "properties": {"x": {"type": "string"}}, "required": ["x"]})");
    write_file(dir / "prompt.txt", "Find x.\n");
    fs::create_directories(dir / "adapters");
    fs::copy_file(kTestData / "lora_tiny/plain/adapter.gguf", dir / "adapters/plain.gguf",
                  fs::copy_options::overwrite_existing);
    return dir;
}

}  // namespace

class PacksTest : public QObject {
    Q_OBJECT

    QTemporaryDir temp_;

private slots:
    void built_in_packs_load() {
        qputenv("FOLIO_PACKS", temp_.filePath("no-store").toUtf8());
        const std::vector<std::string> names = app::pack_names();
        QVERIFY(std::find(names.begin(), names.end(), "finance") != names.end());
        QVERIFY(std::find(names.begin(), names.end(), "medical") != names.end());
        for (const std::string& name : names) {
            const app::PackContent pack = app::load_pack(name);
            QVERIFY(!pack.description.empty());
            QCOMPARE(pack.domain, name);
            QCOMPARE(pack.version, std::string("1.0.0"));
            QVERIFY(pack.schema.contains("properties"));
            QVERIFY(!pack.extract_instructions.empty());
            QVERIFY(!pack.glossary.empty());
            // Each carries its adapter for the default model, readable from the resources.
            QCOMPARE(pack.adapters.size(), std::size_t{1});
            QVERIFY(pack.adapters[0].location.starts_with(":/domain_packs/" + name + "/adapters/"));
        }
        QVERIFY_THROWS_EXCEPTION(app::PackError, app::load_pack("astrology"));
    }

    void adapters_that_fit_are_used_and_others_set_aside() {
        const fs::path dir =
            adapter_pack(temp_.filePath("tiny").toStdString(), R"({"file": "adapters/plain.gguf", "scale": 0.5})");
        const app::PackContent pack = app::load_pack_folder(dir, "tiny");
        QCOMPARE(pack.adapters.size(), std::size_t{1});
        QCOMPARE(pack.adapters[0].scale, 0.5f);

        const engine::GgufFile llama_file = engine::GgufFile::open(kTestData / "llama_tiny/model.gguf");
        const std::unique_ptr<engine::Model> llama = engine::load_model(llama_file);
        const app::PackAdapters fitting = app::load_pack_adapters(pack, *llama);
        QCOMPARE(fitting.set.uses.size(), std::size_t{1});
        QCOMPARE(fitting.set.uses[0].scale, 0.5f);
        QVERIFY(fitting.skipped.empty());

        const engine::GgufFile qwen_file = engine::GgufFile::open(kTestData / "qwen2_tiny/model.gguf");
        const std::unique_ptr<engine::Model> qwen = engine::load_model(qwen_file);
        const app::PackAdapters other = app::load_pack_adapters(pack, *qwen);
        QVERIFY(other.set.empty());
        QCOMPARE(other.skipped.size(), std::size_t{1});
        QVERIFY2(other.skipped[0].starts_with("pack tiny's adapter does not fit this model ("), other.skipped[0].c_str());
    }

    void a_missing_or_broken_adapter_is_an_error() {
        const fs::path missing =
            adapter_pack(temp_.filePath("missing").toStdString(), R"({"file": "adapters/none.gguf"})");
        try {
            app::load_pack_folder(missing, "tiny");
            QFAIL("a pack naming a missing adapter loaded");
        } catch (const app::PackError& e) {
            QCOMPARE(std::string(e.what()), std::string("pack tiny: missing file adapters/none.gguf"));
        }
        const fs::path broken =
            adapter_pack(temp_.filePath("broken").toStdString(), R"({"file": "adapters/plain.gguf"})");
        fs::resize_file(broken / "adapters/plain.gguf", 100);
        const app::PackContent pack = app::load_pack_folder(broken, "tiny");
        const engine::GgufFile llama_file = engine::GgufFile::open(kTestData / "llama_tiny/model.gguf");
        const std::unique_ptr<engine::Model> llama = engine::load_model(llama_file);
        QVERIFY_THROWS_EXCEPTION(app::PackError, app::load_pack_adapters(pack, *llama));
    }

    void key_pages_need_headings_and_terms() {
        QVERIFY(app::load_pack("medical").key_pages.empty());
        const fs::path dir = temp_.filePath("keyed").toStdString();
        const auto pack_with = [&](const std::string& key_page) {
            write_file(dir / "pack.json", R"({"description": "Keyed", "extract_schema": "schema.json",)"
                                          R"( "extract_prompt": "prompt.txt", "key_pages": [)" + key_page + "]}");
            write_file(dir / "schema.json", R"({"type": "object", "properties": {"x": {"type": "string"}}})");
            write_file(dir / "prompt.txt", "Find x.\n");
            return app::load_pack_folder(dir, "keyed");
        };
        const app::PackContent pack = pack_with(R"({"name": "summary", "headings": ["Summary"], "terms": ["total"]})");
        QCOMPARE(pack.key_pages.size(), std::size_t{1});
        QCOMPARE(pack.key_pages[0].terms, std::vector<std::string>{"total"});
        QCOMPARE(app::extract_options(pack).key_pages.size(), std::size_t{1});
        try {
            pack_with(R"({"name": "summary", "headings": ["Summary"], "terms": []})");
            QFAIL("a key page without terms loaded");
        } catch (const app::PackError& e) {
            QCOMPARE(std::string(e.what()), std::string("pack keyed: pack.json: key page 'summary' needs headings and terms"));
        }
        QVERIFY_THROWS_EXCEPTION(app::PackError, pack_with(R"({"name": "summary", "headings": ["Summary"]})"));

        const app::PackContent reading = pack_with(
            R"({"name": "summary", "headings": ["Summary"], "terms": ["total"], "period_field": "x",)"
            R"( "scale_field": "x", "line_items": {"x": ["total", "grand total"]}})");
        const app::KeyPage& key = reading.key_pages.at(0);
        QCOMPARE(key.period_field, std::string("/x"));
        QCOMPARE(key.scale_field, std::string("/x"));
        QCOMPARE(key.line_items.size(), std::size_t{1});
        QCOMPARE(key.line_items[0].field, std::string("/x"));
        QCOMPARE(key.line_items[0].labels, (std::vector<std::string>{"total", "grand total"}));
        QVERIFY_THROWS_EXCEPTION(app::PackError, pack_with(R"({"name": "summary", "headings": ["Summary"],)"
                                                           R"( "terms": ["total"], "line_items": {"x": []}})"));

        const auto pack_captioning = [&](const std::string& captions) {
            write_file(dir / "pack.json", R"({"description": "Keyed", "extract_schema": "schema.json",)"
                                          R"( "extract_prompt": "prompt.txt", "captioned_fields": )" + captions + "}");
            return app::load_pack_folder(dir, "keyed");
        };
        const std::vector<app::CaptionedField> captioned = pack_captioning(R"({"x": "name of registrant"})").captioned_fields;
        QCOMPARE(captioned.size(), std::size_t{1});
        QCOMPARE(captioned[0].field, std::string("/x"));
        QCOMPARE(captioned[0].caption, std::string("name of registrant"));
        QCOMPARE(app::extract_options(pack_captioning(R"({"x": "name"})")).captioned_fields.size(), std::size_t{1});
        QVERIFY_THROWS_EXCEPTION(app::PackError, pack_captioning(R"({"x": ""})"));

        const auto pack_heading = [&](const std::string& headings) {
            write_file(dir / "pack.json", R"({"description": "Keyed", "extract_schema": "schema.json",)"
                                          R"( "extract_prompt": "prompt.txt", "heading_fields": )" + headings + "}");
            return app::load_pack_folder(dir, "keyed");
        };
        const std::vector<app::CaptionedField> headed = pack_heading(R"({"x": ["chief complaint", "cc"]})").captioned_fields;
        QCOMPARE(headed.size(), std::size_t{2});
        QCOMPARE(headed[1].field, std::string("/x"));
        QCOMPARE(headed[1].caption, std::string("cc"));
        QVERIFY(headed[0].below && headed[1].below);
        QVERIFY(!captioned[0].below);
        QVERIFY_THROWS_EXCEPTION(app::PackError, pack_heading(R"({"x": []})"));
        QVERIFY_THROWS_EXCEPTION(app::PackError, pack_heading(R"({"x": [""]})"));

        const auto pack_phrasing = [&](const std::string& phrases) {
            write_file(dir / "pack.json", R"({"description": "Keyed", "extract_schema": "schema.json",)"
                                          R"( "extract_prompt": "prompt.txt", "phrase_fields": )" + phrases + "}");
            return app::load_pack_folder(dir, "keyed");
        };
        const std::vector<app::PhraseField> phrased =
            pack_phrasing(R"({"x": {"quarterly": ["form 10-q", "quarterly report"], "annual": ["form 10-k"]}})")
                .phrase_fields;
        QCOMPARE(phrased.size(), std::size_t{1});
        QCOMPARE(phrased[0].field, std::string("/x"));
        QCOMPARE(phrased[0].choices.size(), std::size_t{2});
        QCOMPARE(phrased[0].choices[0].value, std::string("quarterly"));  // in the file's order
        QCOMPARE(phrased[0].choices[0].phrases, (std::vector<std::string>{"form 10-q", "quarterly report"}));
        QCOMPARE(phrased[0].choices[1].value, std::string("annual"));
        QCOMPARE(app::extract_options(pack_phrasing(R"({"x": {"a": ["b"]}})")).phrase_fields.size(), std::size_t{1});
        for (const char* bad : {R"({"x": {}})", R"({"x": {"a": []}})", R"({"x": {"a": [""]}})", R"({"x": {"": ["b"]}})",
                                R"({"x": {"a": "b"}})"})
            QVERIFY_THROWS_EXCEPTION(app::PackError, pack_phrasing(bad));
    }

    void an_installed_pack_takes_the_built_in_ones_place() {
        const fs::path store_dir = temp_.filePath("store").toStdString();
        qputenv("FOLIO_PACKS", QByteArray::fromStdString(store_dir.string()));
        const std::string built_in = app::load_pack("medical").description;

        const fs::path dir = temp_.filePath("medical-src").toStdString();
        write_file(dir / "pack.json", R"({"name": "medical", "version": "9.0.0", "sequence": 9, "domain": "medical",)"
                                      R"( "min_folio_version": "0.1.0", "description": "Installed medical",)"
                                      R"( "extract_schema": "schema.json", "extract_prompt": "prompt.txt"})");
        write_file(dir / "schema.json", R"({"type": "object", "properties": {"mrn": {"type": "string"}}, "required": ["mrn"]})");
        write_file(dir / "prompt.txt", "Copy the MRN.\n");
        const packs::KeyPair key = packs::generate_keypair();
        const fs::path file = temp_.filePath("medical.foliopack").toStdString();
        packs::build_pack({.source_directory = dir, .output = file}, key.secret_key);
        packs::PackStore store(store_dir);
        store.trust(key.public_key);
        store.install(file, {});

        QCOMPARE(app::load_pack("medical").description, std::string("Installed medical"));
        store.remove("medical");
        QCOMPARE(app::load_pack("medical").description, built_in);
    }
};

QTEST_GUILESS_MAIN(PacksTest)
#include "tst_packs.moc"
