#include "app/packs.h"

#include <QDir>
#include <QFile>

#include <algorithm>

namespace folio::app {

namespace {

const QString kRoot = QStringLiteral(":/domain_packs/");

std::string read_resource(const QString& path, const std::string& pack) {
    QFile file(path);
    if (!file.open(QIODevice::ReadOnly))
        throw PackError("pack " + pack + ": missing file " + path.mid(kRoot.size()).toStdString());
    return file.readAll().toStdString();
}

nlohmann::ordered_json read_json(const QString& path, const std::string& pack) {
    try {
        return nlohmann::ordered_json::parse(read_resource(path, pack));
    } catch (const nlohmann::json::parse_error& e) {
        throw PackError("pack " + pack + ": " + path.mid(kRoot.size()).toStdString() + " is not valid JSON (" +
                        e.what() + ")");
    }
}

}  // namespace

std::vector<std::string> pack_names() {
    std::vector<std::string> names;
    for (const QString& entry : QDir(kRoot).entryList(QDir::Dirs | QDir::NoDotAndDotDot))
        if (QFile::exists(kRoot + entry + "/pack.json")) names.push_back(entry.toStdString());
    std::sort(names.begin(), names.end());
    return names;
}

PackContent load_pack(const std::string& name) {
    const std::vector<std::string> names = pack_names();
    if (std::find(names.begin(), names.end(), name) == names.end()) {
        std::string known;
        for (const std::string& n : names) known += (known.empty() ? "" : ", ") + n;
        throw PackError("no pack named '" + name + "' (packs: " + known + ")");
    }
    const QString folder = kRoot + QString::fromStdString(name) + "/";
    const nlohmann::ordered_json manifest = read_json(folder + "pack.json", name);
    PackContent pack;
    pack.name = name;
    try {
        pack.description = manifest.at("description").get<std::string>();
        pack.schema = read_json(folder + QString::fromStdString(manifest.at("extract_schema").get<std::string>()), name);
        pack.extract_instructions =
            read_resource(folder + QString::fromStdString(manifest.at("extract_prompt").get<std::string>()), name);
        pack.fhir = manifest.value("fhir", false);
    } catch (const nlohmann::json::exception& e) {
        throw PackError("pack " + name + ": pack.json: " + e.what());
    }
    while (!pack.extract_instructions.empty() && pack.extract_instructions.back() == '\n')
        pack.extract_instructions.pop_back();
    return pack;
}

}  // namespace folio::app
