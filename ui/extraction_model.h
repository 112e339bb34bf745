#pragma once
// The records of an extraction as a tree: one top-level row per document's
// record (app::ExtractionRecord), under it one row per extracted leaf value
// (app::ExtractedValue). A tree rather than a flat table with a Document
// column, because a record has a state of its own that a row per value
// would repeat or lose: its error (a failed record has no values but must
// still show why), the validation findings about the whole record, and its
// approval, which (un)checks all its values at once.
//
// Values are editable: a correction is kept beside the extracted value, and
// editedRecords() writes it into the record's data at the value's pointer
// (values[] keeps what the model wrote and where the document says it). The
// exports go through app/record_output.h and app/fhir.h over those records,
// so a file exported here has the bytes `folio extract --format
// csv|jsonl|fhir` writes for the same records.
//
// Thread rules: UI thread only.

#include <QAbstractItemModel>
#include <QString>

#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "app/extract.h"
#include "app/json_schema.h"

namespace folio::ui {

// Where a value is in its document: a page and a byte span of that page's
// stored text.
struct ValueSource {
    qint64 docId = 0;
    int page = 0;  // 1-based
    qulonglong begin = 0, end = 0;
};

class ExtractionModel final : public QAbstractItemModel {
    Q_OBJECT

public:
    enum Column { FieldColumn, ValueColumn, GroundedColumn, ConfidenceColumn, SourceColumn, ColumnCount };
    enum Role {
        DocumentIdRole = Qt::UserRole + 1,  // qint64, on every row
        PointerRole,                        // the value's JSON pointer; empty on a record row
        GroundedRole,                       // bool: the value was found in the document
        CorrectedRole,                      // bool: the value was edited
        ExtractedValueRole,                 // the value as extracted, as text
    };

    explicit ExtractionModel(QObject* parent = nullptr);

    // The schema the records follow (ordered, as the CLI parses it, so the
    // CSV's columns come in the schema's order); `fhir`: the records are the
    // medical pack's and also export as FHIR. Removes the records. Throws
    // app::SchemaError.
    void setSchema(const nlohmann::ordered_json& schema, bool fhir);
    bool hasSchema() const { return schema_.has_value(); }
    bool hasFhir() const { return fhir_; }
    void clear();

    // `documentKey` names the record in FHIR UUIDs: the document's SHA-256,
    // as the CLI uses; empty: its doc_id, the CLI's fallback.
    void addRecord(const app::ExtractionRecord& record, const std::string& documentKey = {});
    int recordCount() const { return static_cast<int>(records_.size()); }

    // The index of a record's value by pointer ("/medications/0/name"); invalid when absent.
    QModelIndex valueIndex(int record, const QString& pointer, int column = FieldColumn) const;
    // Where the value at `index` is in its document; empty for a record row
    // or a value the document does not contain.
    std::optional<ValueSource> sourceOf(const QModelIndex& index) const;
    // All values of a record approved (a record without values: the record itself).
    bool isApproved(int record) const;

    // The records with their corrections written into data.
    std::vector<app::ExtractionRecord> editedRecords(bool approvedOnly = false) const;
    // What `folio extract --out FILE --format csv|jsonl|fhir` writes for
    // editedRecords(approvedOnly). fhirBundles() needs hasFhir().
    std::string csv(bool approvedOnly = false) const;
    std::string jsonLines(bool approvedOnly = false) const;
    std::string fhirBundles(bool approvedOnly = false) const;

    QModelIndex index(int row, int column, const QModelIndex& parent = {}) const override;
    QModelIndex parent(const QModelIndex& child) const override;
    int rowCount(const QModelIndex& parent = {}) const override;
    int columnCount(const QModelIndex& parent = {}) const override;
    QVariant data(const QModelIndex& index, int role = Qt::DisplayRole) const override;
    bool setData(const QModelIndex& index, const QVariant& value, int role = Qt::EditRole) override;
    Qt::ItemFlags flags(const QModelIndex& index) const override;
    QVariant headerData(int section, Qt::Orientation orientation, int role = Qt::DisplayRole) const override;

    // "/medications/0/name" as "medications[0].name".
    static QString readablePointer(const std::string& pointer);

signals:
    // An edit was refused because the schema does not allow the value; one line.
    void editRejected(const QString& reason);

private:
    struct Value {
        std::optional<nlohmann::json> corrected;
        bool approved = false;
        QString issues;  // the validation findings for this pointer, one line
    };
    struct Record {
        app::ExtractionRecord record;
        std::string key;
        std::vector<Value> values;  // parallel to record.values
        bool approved = false;      // used only when the record has no values
        QString issues;             // findings about no value of the record
    };

    QVariant recordData(const Record& record, int column, int role) const;
    QVariant valueData(const Record& record, std::size_t value, int column, int role) const;
    Qt::CheckState recordCheckState(const Record& record) const;
    void setRecordApproved(int record, bool approved);
    bool correctValue(int record, std::size_t value, const QString& text);
    nlohmann::json editedData(const Record& record) const;

    std::optional<app::JsonSchema> schema_;
    bool fhir_ = false;
    std::vector<Record> records_;
};

}  // namespace folio::ui
