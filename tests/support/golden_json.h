#pragma once
// The engine and app suites check the engine against goldens that tools/
// make_*_goldens.py wrote as JSON; these are the readers they share.

#include <QFile>
#include <QJsonArray>
#include <QJsonDocument>
#include <QJsonObject>
#include <QJsonValue>
#include <QString>

#include <cstdint>
#include <filesystem>
#include <vector>

namespace folio::test {

// The JSON object in the file at path; qFatal's when it is unreadable or holds no object.
inline QJsonObject read_json_object(const std::filesystem::path& path) {
    QFile file(QString::fromStdString(path.string()));
    if (!file.open(QIODevice::ReadOnly))
        qFatal("cannot read %s", path.string().c_str());
    const QJsonDocument document = QJsonDocument::fromJson(file.readAll());
    if (!document.isObject())
        qFatal("%s holds no JSON object", path.string().c_str());
    return document.object();
}

// A JSON array of integers (token ids, mostly).
inline std::vector<std::int32_t> json_ints(const QJsonValue& value) {
    std::vector<std::int32_t> out;
    for (const QJsonValue& element : value.toArray())
        out.push_back(element.toInt());
    return out;
}

}  // namespace folio::test
