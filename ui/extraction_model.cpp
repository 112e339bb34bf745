#include "ui/extraction_model.h"

#include <QBrush>
#include <QColor>
#include <QFileInfo>
#include <QFont>

#include "app/fhir.h"
#include "app/record_output.h"

namespace folio::ui {
namespace {

using nlohmann::json;

// A value row's internal id is its record's row + 1; a record row's is 0.
constexpr quintptr kRecordRow = 0;

std::string jsonText(const json& value) { return value.dump(-1, ' ', false, json::error_handler_t::replace); }

QString valueText(const json& value) {
    if (value.is_null()) return {};
    if (value.is_string()) return QString::fromStdString(value.get<std::string>());
    return QString::fromStdString(jsonText(value));
}

QString issueText(const app::ValidationIssue& issue) {
    return QStringLiteral("%1: %2").arg(QString::fromLatin1(app::severity_name(issue.severity)),
                                        QString::fromStdString(issue.message));
}

// What an edit's text may mean, most specific first: empty is null (or an
// empty string), a number or boolean is one, anything is a string. The
// schema then picks the first it allows.
std::vector<json> candidateValues(const QString& text) {
    if (text.isEmpty()) return {json(nullptr), json("")};
    const std::string utf8 = text.toStdString();
    const json parsed = json::parse(utf8, nullptr, false);
    if (!parsed.is_discarded() && (parsed.is_number() || parsed.is_boolean())) return {parsed, json(utf8)};
    return {json(utf8)};
}

// The first of validate()'s lines about `pointer` or what is under it.
std::string problemAt(const std::vector<std::string>& problems, const std::string& pointer) {
    for (const std::string& problem : problems) {
        const bool about = problem.starts_with(pointer) && (problem.size() == pointer.size() ||
                                                            problem[pointer.size()] == ':' || problem[pointer.size()] == '/');
        if (!about) continue;
        const std::size_t colon = problem.find(": ");
        return colon == std::string::npos ? problem : problem.substr(colon + 2);
    }
    return {};
}

}  // namespace

ExtractionModel::ExtractionModel(QObject* parent) : QAbstractItemModel(parent) {}

QString ExtractionModel::readablePointer(const std::string& pointer) {
    QString readable;
    for (QString segment : QString::fromStdString(pointer).split(QLatin1Char('/'), Qt::SkipEmptyParts)) {
        segment.replace(QStringLiteral("~1"), QStringLiteral("/")).replace(QStringLiteral("~0"), QStringLiteral("~"));
        bool isIndex = false;
        segment.toUInt(&isIndex);
        if (isIndex)
            readable += QLatin1Char('[') + segment + QLatin1Char(']');
        else
            readable += (readable.isEmpty() ? QString() : QStringLiteral(".")) + segment;
    }
    return readable;
}

void ExtractionModel::setSchema(const nlohmann::ordered_json& schema, bool fhir) {
    app::JsonSchema parsed = app::JsonSchema::parse(schema);
    beginResetModel();
    schema_ = std::move(parsed);
    fhir_ = fhir;
    records_.clear();
    endResetModel();
}

void ExtractionModel::clear() {
    beginResetModel();
    records_.clear();
    endResetModel();
}

void ExtractionModel::addRecord(const app::ExtractionRecord& record, const std::string& documentKey) {
    Record entry{.record = record, .key = documentKey.empty() ? std::to_string(record.doc_id) : documentKey};
    entry.values.resize(record.values.size());
    QStringList recordIssues;
    for (const app::ValidationIssue& issue : record.validation) {
        bool onValue = false;
        for (std::size_t i = 0; i < record.values.size(); ++i) {
            if (record.values[i].pointer != issue.pointer) continue;
            QString& issues = entry.values[i].issues;
            issues += (issues.isEmpty() ? QString() : QStringLiteral("; ")) + issueText(issue);
            onValue = true;
        }
        if (!onValue)
            recordIssues << (issue.pointer.empty() ? issueText(issue)
                                                   : readablePointer(issue.pointer) + QStringLiteral(" ") +
                                                         issueText(issue));
    }
    entry.issues = recordIssues.join(QStringLiteral("; "));
    const int row = recordCount();
    beginInsertRows({}, row, row);
    records_.push_back(std::move(entry));
    endInsertRows();
}

QModelIndex ExtractionModel::valueIndex(int record, const QString& pointer, int column) const {
    if (record < 0 || record >= recordCount()) return {};
    const std::vector<app::ExtractedValue>& values = records_[record].record.values;
    for (std::size_t i = 0; i < values.size(); ++i)
        if (QString::fromStdString(values[i].pointer) == pointer)
            return createIndex(static_cast<int>(i), column, static_cast<quintptr>(record) + 1);
    return {};
}

QModelIndex ExtractionModel::index(int row, int column, const QModelIndex& parent) const {
    if (!hasIndex(row, column, parent)) return {};
    if (!parent.isValid()) return createIndex(row, column, kRecordRow);
    return createIndex(row, column, static_cast<quintptr>(parent.row()) + 1);
}

QModelIndex ExtractionModel::parent(const QModelIndex& child) const {
    if (!child.isValid() || child.internalId() == kRecordRow) return {};
    return createIndex(static_cast<int>(child.internalId() - 1), 0, kRecordRow);
}

int ExtractionModel::rowCount(const QModelIndex& parent) const {
    if (!parent.isValid()) return recordCount();
    if (parent.internalId() != kRecordRow || parent.column() != 0) return 0;
    return static_cast<int>(records_[parent.row()].values.size());
}

int ExtractionModel::columnCount(const QModelIndex&) const { return ColumnCount; }

QVariant ExtractionModel::headerData(int section, Qt::Orientation orientation, int role) const {
    if (orientation != Qt::Horizontal || role != Qt::DisplayRole) return {};
    switch (section) {
    case FieldColumn: return tr("Field");
    case ValueColumn: return tr("Value");
    case GroundedColumn: return tr("Grounded");
    case ConfidenceColumn: return tr("Confidence");
    case SourceColumn: return tr("Source");
    }
    return {};
}

Qt::CheckState ExtractionModel::recordCheckState(const Record& record) const {
    if (record.values.empty()) return record.approved ? Qt::Checked : Qt::Unchecked;
    std::size_t approved = 0;
    for (const Value& value : record.values) approved += value.approved ? 1 : 0;
    if (approved == 0) return Qt::Unchecked;
    return approved == record.values.size() ? Qt::Checked : Qt::PartiallyChecked;
}

bool ExtractionModel::isApproved(int record) const {
    return record >= 0 && record < recordCount() && recordCheckState(records_[record]) == Qt::Checked;
}

QVariant ExtractionModel::data(const QModelIndex& index, int role) const {
    if (!index.isValid()) return {};
    if (index.internalId() == kRecordRow) return recordData(records_[index.row()], index.column(), role);
    return valueData(records_[index.internalId() - 1], static_cast<std::size_t>(index.row()), index.column(), role);
}

QVariant ExtractionModel::recordData(const Record& entry, int column, int role) const {
    const app::ExtractionRecord& record = entry.record;
    const bool failed = record.data.is_null();
    switch (role) {
    case DocumentIdRole: return QVariant::fromValue<qint64>(record.doc_id);
    case PointerRole: return QString();
    case Qt::CheckStateRole:
        return column == FieldColumn ? QVariant(int(recordCheckState(entry))) : QVariant();
    case Qt::ForegroundRole:
        return failed || record.ungrounded > 0 ? QVariant(QBrush(QColor(0xb0, 0x20, 0x20))) : QVariant();
    case Qt::ToolTipRole:
        if (column == FieldColumn) return QString::fromStdString(record.path);
        if (column == ValueColumn || column == ConfidenceColumn)
            return failed ? QString::fromStdString(record.error) : entry.issues;
        return {};
    case Qt::DisplayRole:
        switch (column) {
        case FieldColumn: return QFileInfo(QString::fromStdString(record.path)).fileName();
        case ValueColumn:
            return failed ? tr("Failed: %1").arg(QString::fromStdString(record.error))
                          : tr("%n value(s)", nullptr, static_cast<int>(record.values.size()));
        case GroundedColumn:
            return failed ? QString() : tr("%1 of %2").arg(record.grounded).arg(record.grounded + record.ungrounded);
        case ConfidenceColumn: return failed ? QString() : entry.issues;
        case SourceColumn: return tr("%n page(s)", nullptr, record.pages);
        }
    }
    return {};
}

QVariant ExtractionModel::valueData(const Record& entry, std::size_t i, int column, int role) const {
    const app::ExtractedValue& extracted = entry.record.values[i];
    const Value& value = entry.values[i];
    const bool isNull = extracted.value.is_null();
    switch (role) {
    case DocumentIdRole: return QVariant::fromValue<qint64>(entry.record.doc_id);
    case PointerRole: return QString::fromStdString(extracted.pointer);
    case GroundedRole: return extracted.grounded;
    case CorrectedRole: return value.corrected.has_value();
    case ExtractedValueRole: return valueText(extracted.value);
    case Qt::CheckStateRole:
        return column == FieldColumn ? QVariant(int(value.approved ? Qt::Checked : Qt::Unchecked)) : QVariant();
    case Qt::ForegroundRole:
        // The values to check first: said nowhere in the document, or faulted by a validator.
        return (!isNull && !extracted.grounded) || !value.issues.isEmpty() ? QVariant(QBrush(QColor(0xb0, 0x20, 0x20)))
                                                                           : QVariant();
    case Qt::FontRole:
        if (column == ValueColumn && value.corrected) {
            QFont font;
            font.setItalic(true);
            return font;
        }
        return {};
    case Qt::ToolTipRole:
        if (column == FieldColumn) return QString::fromStdString(extracted.pointer);
        if (column == ValueColumn && value.corrected) return tr("Corrected; extracted: %1").arg(valueText(extracted.value));
        if (column == SourceColumn && extracted.grounded) return QString::fromStdString(extracted.quote);
        return {};
    case Qt::EditRole:
    case Qt::DisplayRole:
        switch (column) {
        case FieldColumn: return readablePointer(extracted.pointer);
        case ValueColumn: return valueText(value.corrected ? *value.corrected : extracted.value);
        case GroundedColumn:
            if (role == Qt::EditRole) return {};
            return isNull ? QString() : extracted.grounded ? tr("yes") : tr("no");
        case ConfidenceColumn: {
            if (role == Qt::EditRole) return {};
            QString text = isNull ? tr("no value")
                           : extracted.grounded ? tr("grounded p. %1").arg(extracted.page)
                                                : tr("not found in the document");
            if (!value.issues.isEmpty()) text += QStringLiteral("; ") + value.issues;
            return text;
        }
        case SourceColumn:
            if (role == Qt::EditRole) return {};
            return extracted.grounded ? tr("p. %1").arg(extracted.page) : QString();
        }
    }
    return {};
}

Qt::ItemFlags ExtractionModel::flags(const QModelIndex& index) const {
    if (!index.isValid()) return Qt::NoItemFlags;
    Qt::ItemFlags flags = Qt::ItemIsEnabled | Qt::ItemIsSelectable;
    if (index.column() == FieldColumn) flags |= Qt::ItemIsUserCheckable;
    if (index.internalId() != kRecordRow && index.column() == ValueColumn) flags |= Qt::ItemIsEditable;
    return flags;
}

bool ExtractionModel::setData(const QModelIndex& index, const QVariant& value, int role) {
    if (!index.isValid()) return false;
    const bool isRecord = index.internalId() == kRecordRow;
    const int record = isRecord ? index.row() : static_cast<int>(index.internalId() - 1);
    if (role == Qt::CheckStateRole && index.column() == FieldColumn) {
        const bool approved = value.toInt() != Qt::Unchecked;
        if (isRecord) {
            setRecordApproved(record, approved);
        } else {
            records_[record].values[index.row()].approved = approved;
            emit dataChanged(index, index, {Qt::CheckStateRole});
            const QModelIndex recordIndex = createIndex(record, FieldColumn, kRecordRow);
            emit dataChanged(recordIndex, recordIndex, {Qt::CheckStateRole});
        }
        return true;
    }
    if (role == Qt::EditRole && !isRecord && index.column() == ValueColumn)
        return correctValue(record, static_cast<std::size_t>(index.row()), value.toString());
    return false;
}

void ExtractionModel::setRecordApproved(int record, bool approved) {
    Record& entry = records_[record];
    entry.approved = approved;
    for (Value& value : entry.values) value.approved = approved;
    const QModelIndex recordIndex = createIndex(record, FieldColumn, kRecordRow);
    emit dataChanged(recordIndex, recordIndex, {Qt::CheckStateRole});
    if (!entry.values.empty())
        emit dataChanged(index(0, FieldColumn, recordIndex),
                         index(static_cast<int>(entry.values.size()) - 1, FieldColumn, recordIndex),
                         {Qt::CheckStateRole});
}

bool ExtractionModel::correctValue(int record, std::size_t i, const QString& text) {
    Record& entry = records_[record];
    const app::ExtractedValue& extracted = entry.record.values[i];
    const QModelIndex changed = createIndex(static_cast<int>(i), ValueColumn, static_cast<quintptr>(record) + 1);
    if (text == valueText(extracted.value)) {
        entry.values[i].corrected.reset();
        emit dataChanged(changed, changed);
        return true;
    }
    const json::json_pointer pointer(extracted.pointer);
    std::string problem;
    for (const json& candidate : candidateValues(text)) {
        json data = editedData(entry);
        data[pointer] = candidate;
        const std::string found = schema_ ? problemAt(schema_->validate(data), extracted.pointer) : std::string();
        if (found.empty()) {
            entry.values[i].corrected = candidate;
            emit dataChanged(changed, changed);
            return true;
        }
        if (problem.empty()) problem = found;
    }
    emit editRejected(tr("%1 cannot be \"%2\": %3")
                          .arg(readablePointer(extracted.pointer), text, QString::fromStdString(problem)));
    return false;
}

json ExtractionModel::editedData(const Record& entry) const {
    json data = entry.record.data;
    for (std::size_t i = 0; i < entry.values.size(); ++i)
        if (entry.values[i].corrected) data[json::json_pointer(entry.record.values[i].pointer)] = *entry.values[i].corrected;
    return data;
}

std::optional<ValueSource> ExtractionModel::sourceOf(const QModelIndex& index) const {
    if (!index.isValid() || index.internalId() == kRecordRow) return std::nullopt;
    const app::ExtractionRecord& record = records_[index.internalId() - 1].record;
    const app::ExtractedValue& value = record.values[static_cast<std::size_t>(index.row())];
    if (!value.grounded) return std::nullopt;
    return ValueSource{record.doc_id, value.page, value.begin, value.end};
}

std::vector<app::ExtractionRecord> ExtractionModel::editedRecords(bool approvedOnly) const {
    std::vector<app::ExtractionRecord> edited;
    for (std::size_t r = 0; r < records_.size(); ++r) {
        if (approvedOnly && !isApproved(static_cast<int>(r))) continue;
        app::ExtractionRecord record = records_[r].record;
        if (!record.data.is_null()) record.data = editedData(records_[r]);
        edited.push_back(std::move(record));
    }
    return edited;
}

std::string ExtractionModel::csv(bool approvedOnly) const {
    if (!schema_) return {};
    std::string text = app::csv_header(*schema_);
    for (const app::ExtractionRecord& record : editedRecords(approvedOnly))
        text += app::csv_row(*schema_, app::record_json(record));
    return text;
}

std::string ExtractionModel::jsonLines(bool approvedOnly) const {
    std::string text;
    for (const app::ExtractionRecord& record : editedRecords(approvedOnly))
        text += jsonText(app::record_json(record)) + '\n';
    return text;
}

std::string ExtractionModel::fhirBundles(bool approvedOnly) const {
    std::string text;
    if (!fhir_) return text;
    for (std::size_t r = 0; r < records_.size(); ++r) {
        const Record& entry = records_[r];
        if (approvedOnly && !isApproved(static_cast<int>(r))) continue;
        if (!entry.record.data.is_null()) text += app::fhir_bundle(editedData(entry), entry.key).dump() + '\n';
    }
    return text;
}

}  // namespace folio::ui
