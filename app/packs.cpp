#include "app/packs.h"

#include <QDir>
#include <QFile>

#include <algorithm>

#include "app/pack_validators.h"
#include "domain_packs/pack_store.h"

namespace folio::app {

namespace {

const QString kBuiltInRoot = QStringLiteral(":/domain_packs/");

// `folder` ends in '/'; QFile reads Qt resources and files alike.
std::string read_pack_file(const QString& folder, const std::string& relative, const std::string& pack) {
    QFile file(folder + QString::fromStdString(relative));
    if (!file.open(QIODevice::ReadOnly)) throw PackError("pack " + pack + ": missing file " + relative);
    return file.readAll().toStdString();
}

nlohmann::ordered_json read_json(const QString& folder, const std::string& relative, const std::string& pack) {
    try {
        return nlohmann::ordered_json::parse(read_pack_file(folder, relative, pack));
    } catch (const nlohmann::json::parse_error& e) {
        throw PackError("pack " + pack + ": " + relative + " is not valid JSON (" + e.what() + ")");
    }
}

std::vector<std::string> built_in_names() {
    std::vector<std::string> names;
    for (const QString& entry : QDir(kBuiltInRoot).entryList(QDir::Dirs | QDir::NoDotAndDotDot))
        if (QFile::exists(kBuiltInRoot + entry + "/pack.json")) names.push_back(entry.toStdString());
    return names;
}

PackContent load_from(const QString& folder, const std::string& name) {
    const nlohmann::ordered_json manifest = read_json(folder, "pack.json", name);
    PackContent pack;
    pack.name = name;
    try {
        pack.description = manifest.at("description").get<std::string>();
        pack.version = manifest.value("version", std::string());
        pack.domain = manifest.value("domain", std::string());
        pack.schema = read_json(folder, manifest.at("extract_schema").get<std::string>(), name);
        pack.extract_instructions = read_pack_file(folder, manifest.at("extract_prompt").get<std::string>(), name);
        pack.fhir = manifest.value("fhir", false);
        if (manifest.contains("glossary"))
            pack.glossary = Glossary::parse(read_pack_file(folder, manifest["glossary"].get<std::string>(), name));
        pack.validators = manifest.value("validators", std::vector<std::string>{});
        const auto has_empty = [](const std::vector<std::string>& v) {
            return v.empty() || std::ranges::any_of(v, [](const std::string& s) { return s.empty(); });
        };
        for (const auto& key : manifest.value("key_pages", nlohmann::ordered_json::array())) {
            KeyPage page{key.at("name").get<std::string>(), key.at("headings").get<std::vector<std::string>>(),
                         key.at("terms").get<std::vector<std::string>>()};
            if (has_empty(page.headings) || has_empty(page.terms))
                throw PackError("pack " + name + ": pack.json: key page '" + page.name + "' needs headings and terms");
            if (const std::string period = key.value("period_field", std::string()); !period.empty())
                page.period_field = "/" + period;
            if (const std::string scale = key.value("scale_field", std::string()); !scale.empty())
                page.scale_field = "/" + scale;
            const nlohmann::ordered_json line_items = key.value("line_items", nlohmann::ordered_json::object());
            for (const auto& [field, labels] : line_items.items()) {
                LineItem item{"/" + field, labels.get<std::vector<std::string>>()};
                if (field.empty() || has_empty(item.labels))
                    throw PackError("pack " + name + ": pack.json: key page '" + page.name + "': line item '" + field +
                                    "' needs a field name and labels");
                page.line_items.push_back(std::move(item));
            }
            pack.key_pages.push_back(std::move(page));
        }
        const nlohmann::ordered_json captions = manifest.value("captioned_fields", nlohmann::ordered_json::object());
        for (const auto& [field, caption] : captions.items()) {
            CaptionedField captioned{"/" + field, caption.get<std::string>()};
            if (field.empty() || captioned.caption.empty())
                throw PackError("pack " + name + ": pack.json: captioned field '" + field + "' needs a caption");
            pack.captioned_fields.push_back(std::move(captioned));
        }
        const nlohmann::ordered_json headed = manifest.value("heading_fields", nlohmann::ordered_json::object());
        for (const auto& [field, headings] : headed.items()) {
            const auto names = headings.get<std::vector<std::string>>();
            if (field.empty() || names.empty() || has_empty(names))
                throw PackError("pack " + name + ": pack.json: heading field '" + field + "' needs headings");
            for (const std::string& heading : names) pack.captioned_fields.push_back({"/" + field, heading, true});
        }
        const nlohmann::ordered_json phrased = manifest.value("phrase_fields", nlohmann::ordered_json::object());
        for (const auto& [field, choices] : phrased.items()) {
            PhraseField phrase_field{"/" + field, {}};
            for (const auto& [value, phrases] : choices.items())
                phrase_field.choices.push_back({value, phrases.get<std::vector<std::string>>()});
            const bool named = !field.empty() && !phrase_field.choices.empty() &&
                               std::ranges::none_of(phrase_field.choices, [&](const PhraseField::Choice& choice) {
                                   return choice.value.empty() || has_empty(choice.phrases);
                               });
            if (!named)
                throw PackError("pack " + name + ": pack.json: phrase field '" + field +
                                "' needs values, each with phrases");
            pack.phrase_fields.push_back(std::move(phrase_field));
        }
        for (const auto& adapter : manifest.value("adapters", nlohmann::ordered_json::array())) {
            const std::string file = adapter.at("file").get<std::string>();
            if (!QFile::exists(folder + QString::fromStdString(file)))
                throw PackError("pack " + name + ": missing file " + file);
            pack.adapters.push_back({(folder + QString::fromStdString(file)).toStdString(),
                                     adapter.value("scale", 1.f)});
        }
    } catch (const nlohmann::json::exception& e) {
        throw PackError("pack " + name + ": pack.json: " + e.what());
    } catch (const GlossaryError& e) {
        throw PackError("pack " + name + ": " + e.what());
    }
    for (const std::string& validator : pack.validators)
        if (!is_validator(validator)) throw PackError("pack " + name + ": pack.json: no validator named '" + validator + "'");
    while (!pack.extract_instructions.empty() && pack.extract_instructions.back() == '\n')
        pack.extract_instructions.pop_back();
    return pack;
}

}  // namespace

ExtractOptions extract_options(const PackContent& pack) {
    return {.instructions = pack.extract_instructions,
            .key_pages = pack.key_pages,
            .captioned_fields = pack.captioned_fields,
            .phrase_fields = pack.phrase_fields,
            .validators = pack.validators};
}

std::vector<std::string> pack_names() {
    std::vector<std::string> names = built_in_names();
    try {
        for (const packs::InstalledPack& installed : packs::PackStore(packs::PackStore::default_directory()).list())
            names.push_back(installed.manifest.name);
    } catch (const packs::PackError&) {
        // A damaged store lists no installed packs here; `folio pack list` reports it.
    }
    std::sort(names.begin(), names.end());
    names.erase(std::unique(names.begin(), names.end()), names.end());
    return names;
}

PackContent load_pack(const std::string& name) {
    std::optional<packs::InstalledPack> installed;
    try {
        installed = packs::PackStore(packs::PackStore::default_directory()).find(name);
    } catch (const packs::PackError& e) {
        throw PackError(e.what());
    }
    if (installed) return load_pack_folder(installed->directory, name);
    const std::vector<std::string> names = pack_names();
    if (std::find(names.begin(), names.end(), name) == names.end()) {
        std::string known;
        for (const std::string& n : names) known += (known.empty() ? "" : ", ") + n;
        throw PackError("no pack named '" + name + "' (packs: " + known + ")");
    }
    return load_from(kBuiltInRoot + QString::fromStdString(name) + "/", name);
}

PackContent load_pack_folder(const std::filesystem::path& folder, const std::string& name) {
    return load_from(QString::fromStdString(folder.string()) + "/", name);
}

PackAdapters load_pack_adapters(const PackContent& pack, const engine::Model& model) {
    PackAdapters adapters;
    for (const PackAdapter& adapter : pack.adapters) {
        // Read whole (adapters are a few MiB): a built-in pack's live in Qt
        // resources, which have no file to map.
        QFile file(QString::fromStdString(adapter.location));
        if (!file.open(QIODevice::ReadOnly)) throw PackError("pack " + pack.name + ": cannot read " + adapter.location);
        const QByteArray data = file.readAll();
        std::vector<std::uint8_t> bytes(data.begin(), data.end());
        try {
            const engine::GgufFile gguf = engine::GgufFile::parse(std::move(bytes), adapter.location);
            adapters.set.uses.push_back({engine::LoraAdapter::load(gguf, model), adapter.scale});
        } catch (const engine::GgufError& e) {
            throw PackError("pack " + pack.name + ": " + e.what());
        } catch (const engine::ModelError& e) {
            adapters.skipped.push_back("pack " + pack.name + "'s adapter does not fit this model (" + e.what() + ")");
        }
    }
    return adapters;
}

}  // namespace folio::app
