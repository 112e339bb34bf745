// ExtractionModel without a window or a model: hand-made records of the
// medical pack's schema, their rows and columns, grounding and validation
// shown per value, edits (checked against the schema) reaching the exported
// CSV / JSON lines / FHIR, which must equal what app/record_output.h and
// app/fhir.h give the CLI for the same records, approval, and sourceOf.

#include <QAbstractItemModelTester>
#include <QSignalSpy>
#include <QTest>

#include <memory>

#include "app/fhir.h"
#include "app/packs.h"
#include "app/record_output.h"
#include "ui/extraction_model.h"

using folio::app::ExtractedValue;
using folio::app::ExtractionRecord;
using folio::ui::ExtractionModel;
using nlohmann::json;

namespace {

ExtractedValue value(const std::string& pointer, json v, int page = 0, std::size_t begin = 0, std::size_t end = 0,
                     const std::string& quote = {}) {
    ExtractedValue extracted;
    extracted.pointer = pointer;
    extracted.value = std::move(v);
    extracted.grounded = page > 0;
    extracted.page = page;
    extracted.begin = begin;
    extracted.end = end;
    extracted.quote = quote;
    return extracted;
}

ExtractionRecord aliceRecord() {
    ExtractionRecord record;
    record.doc_id = 7;
    record.path = "/notes/alice.txt";
    record.data = json::parse(R"({
        "patient": {"name": "Alice Moore", "date_of_birth": null, "age": 54, "sex": "female"},
        "encounter_date": "2024-03-02", "chief_complaint": "chest pain",
        "medications": [{"name": "lisinopril", "dose": "10 mg", "route": "PO", "frequency": "daily"}],
        "allergies": ["NKDA"], "vitals": [], "labs": [],
        "diagnoses": [{"description": "hypertension", "icd10": "I10"}],
        "plan": ["follow up in 2 weeks"]})");
    record.values = {value("/patient/name", "Alice Moore", 1, 9, 20, "Alice Moore"),
                     value("/patient/date_of_birth", nullptr),
                     value("/patient/age", 54, 1, 25, 27, "54"),
                     value("/patient/sex", "female"),
                     value("/medications/0/name", "lisinopril", 2, 100, 110, "lisinopril"),
                     value("/medications/0/dose", "10 mg", 2, 111, 116, "10 mg"),
                     value("/diagnoses/0/icd10", "I10", 2, 140, 143, "I10")};
    record.grounded = 5;
    record.ungrounded = 1;
    record.validation = {{"/medications/0/dose", folio::app::Severity::Warning, "dose above the usual range"},
                         {"", folio::app::Severity::Warning, "no vital signs"}};
    record.pages = 2;
    record.pages_read = 2;
    record.seconds = 3.5;
    return record;
}

ExtractionRecord failedRecord() {
    ExtractionRecord record;
    record.doc_id = 8;
    record.path = "/notes/bob.txt";
    record.error = "the model wrote no JSON";
    record.pages = 1;
    return record;
}

// The cells of a CSV line whose fields hold no comma or quote.
QStringList cells(const std::string& line) { return QString::fromStdString(line).split(QLatin1Char(',')); }

std::vector<std::string> lines(const std::string& text) {
    std::vector<std::string> out;
    std::size_t start = 0;
    for (std::size_t end; (end = text.find("\r\n", start)) != std::string::npos; start = end + 2)
        out.push_back(text.substr(start, end - start));
    return out;
}

}  // namespace

class ExtractionModelTest : public QObject {
    Q_OBJECT

private:
    folio::app::PackContent pack_;
    std::unique_ptr<ExtractionModel> model_;
    std::unique_ptr<QAbstractItemModelTester> tester_;

    std::string cliCsv(const std::vector<ExtractionRecord>& records) const {
        const folio::app::JsonSchema schema = folio::app::JsonSchema::parse(pack_.schema);
        std::string text = folio::app::csv_header(schema);
        for (const ExtractionRecord& record : records) text += folio::app::csv_row(schema, folio::app::record_json(record));
        return text;
    }

    QModelIndex at(const char* pointer, int column) const { return model_->valueIndex(0, pointer, column); }

private slots:
    void initTestCase() { pack_ = folio::app::load_pack("medical"); }

    void init() {
        model_ = std::make_unique<ExtractionModel>();
        tester_ = std::make_unique<QAbstractItemModelTester>(model_.get(),
                                                             QAbstractItemModelTester::FailureReportingMode::QtTest);
        model_->setSchema(pack_.schema, pack_.fhir);
        model_->addRecord(aliceRecord(), "abc123");
        model_->addRecord(failedRecord());
    }

    void rowsAndColumns() {
        QCOMPARE(model_->recordCount(), 2);
        QCOMPARE(model_->rowCount(), 2);
        QCOMPARE(model_->columnCount(), int(ExtractionModel::ColumnCount));
        QCOMPARE(model_->rowCount(model_->index(0, 0)), 7);
        QCOMPARE(model_->rowCount(model_->index(1, 0)), 0);

        QCOMPARE(model_->index(0, ExtractionModel::FieldColumn).data().toString(), QStringLiteral("alice.txt"));
        QCOMPARE(model_->index(0, ExtractionModel::GroundedColumn).data().toString(), QStringLiteral("5 of 6"));
        QVERIFY(model_->index(0, ExtractionModel::ConfidenceColumn).data().toString().contains("no vital signs"));
        QVERIFY(model_->index(1, ExtractionModel::ValueColumn).data().toString().contains("the model wrote no JSON"));

        QCOMPARE(at("/medications/0/name", ExtractionModel::FieldColumn).data().toString(),
                 QStringLiteral("medications[0].name"));
        QCOMPARE(at("/patient/age", ExtractionModel::ValueColumn).data().toString(), QStringLiteral("54"));
        QCOMPARE(at("/patient/date_of_birth", ExtractionModel::ValueColumn).data().toString(), QString());
        QCOMPARE(at("/patient/name", ExtractionModel::SourceColumn).data().toString(), QStringLiteral("p. 1"));
        QCOMPARE(at("/patient/name", ExtractionModel::SourceColumn).data(Qt::ToolTipRole).toString(),
                 QStringLiteral("Alice Moore"));
        QCOMPARE(at("/patient/name", ExtractionModel::ConfidenceColumn).data().toString(),
                 QStringLiteral("grounded p. 1"));
        const QString doseConfidence = at("/medications/0/dose", ExtractionModel::ConfidenceColumn).data().toString();
        QVERIFY2(doseConfidence.startsWith("grounded p. 2") && doseConfidence.contains("dose above the usual range"),
                 qPrintable(doseConfidence));
    }

    void ungroundedRowsAreFlagged() {
        const QModelIndex sex = at("/patient/sex", ExtractionModel::GroundedColumn);
        QCOMPARE(sex.data().toString(), QStringLiteral("no"));
        QCOMPARE(sex.data(ExtractionModel::GroundedRole).toBool(), false);
        QVERIFY(sex.data(Qt::ForegroundRole).isValid());
        QCOMPARE(at("/patient/sex", ExtractionModel::ConfidenceColumn).data().toString(),
                 QStringLiteral("not found in the document"));
        QCOMPARE(at("/patient/name", ExtractionModel::GroundedColumn).data().toString(), QStringLiteral("yes"));
        QVERIFY(!at("/patient/name", ExtractionModel::GroundedColumn).data(Qt::ForegroundRole).isValid());
        // A null value is neither grounded nor a fault.
        QVERIFY(!at("/patient/date_of_birth", ExtractionModel::GroundedColumn).data(Qt::ForegroundRole).isValid());
    }

    void sourceOf() {
        const auto source = model_->sourceOf(at("/medications/0/name", ExtractionModel::SourceColumn));
        QVERIFY(source.has_value());
        QCOMPARE(source->docId, qint64(7));
        QCOMPARE(source->page, 2);
        QCOMPARE(source->begin, qulonglong(100));
        QCOMPARE(source->end, qulonglong(110));
        QVERIFY(!model_->sourceOf(at("/patient/sex", ExtractionModel::SourceColumn)).has_value());
        QVERIFY(!model_->sourceOf(model_->index(0, ExtractionModel::SourceColumn)).has_value());
    }

    void unEditedExportsEqualTheCli() {
        QCOMPARE(model_->csv(), cliCsv({aliceRecord(), failedRecord()}));
        std::string jsonl;
        for (const ExtractionRecord& record : {aliceRecord(), failedRecord()})
            jsonl += folio::app::record_json(record).dump(-1, ' ', false, json::error_handler_t::replace) + "\n";
        QCOMPARE(model_->jsonLines(), jsonl);
        QVERIFY(model_->hasFhir());
        QCOMPARE(model_->fhirBundles(), folio::app::fhir_bundle(aliceRecord().data, "abc123").dump() + "\n");
    }

    void editReachesTheExports() {
        const QModelIndex dose = at("/medications/0/dose", ExtractionModel::ValueColumn);
        QVERIFY(model_->flags(dose) & Qt::ItemIsEditable);
        QVERIFY(!(model_->flags(model_->index(0, ExtractionModel::ValueColumn)) & Qt::ItemIsEditable));
        QVERIFY(model_->setData(dose, QStringLiteral("20 mg")));
        QCOMPARE(dose.data().toString(), QStringLiteral("20 mg"));
        QVERIFY(dose.data(ExtractionModel::CorrectedRole).toBool());
        QCOMPARE(dose.data(ExtractionModel::ExtractedValueRole).toString(), QStringLiteral("10 mg"));

        // The corrected value is in its column of the CSV, as the CLI writes such a record.
        const std::vector<std::string> csv = lines(model_->csv());
        QCOMPARE(csv.size(), std::size_t(3));
        const int column = cells(csv[0]).indexOf(QStringLiteral("/medications/*/dose"));
        QVERIFY(column > 0);
        QCOMPARE(cells(csv[1]).at(column), QStringLiteral("20 mg"));
        ExtractionRecord expected = aliceRecord();
        expected.data["medications"][0]["dose"] = "20 mg";
        QCOMPARE(model_->csv(), cliCsv({expected, failedRecord()}));

        // JSON lines: data corrected, values[] keeps what was extracted.
        const std::string jsonl = model_->jsonLines();
        const json first = json::parse(jsonl.substr(0, jsonl.find('\n')));
        QCOMPARE(first["data"]["medications"][0]["dose"].get<std::string>(), std::string("20 mg"));
        QCOMPARE(first["values"][5]["value"].get<std::string>(), std::string("10 mg"));
        QCOMPARE(model_->fhirBundles(), folio::app::fhir_bundle(expected.data, "abc123").dump() + "\n");
        QVERIFY(model_->editedRecords().front().data == expected.data);

        // Typing the extracted value again drops the correction.
        QVERIFY(model_->setData(dose, QStringLiteral("10 mg")));
        QVERIFY(!dose.data(ExtractionModel::CorrectedRole).toBool());
        QCOMPARE(model_->csv(), cliCsv({aliceRecord(), failedRecord()}));
    }

    void editsFollowTheSchema() {
        QSignalSpy rejected(model_.get(), &ExtractionModel::editRejected);
        const QModelIndex age = at("/patient/age", ExtractionModel::ValueColumn);
        QVERIFY(!model_->setData(age, QStringLiteral("fifty")));
        QCOMPARE(rejected.count(), 1);
        QVERIFY2(rejected.first().first().toString().startsWith("patient.age"), qPrintable(rejected.first().first().toString()));
        QVERIFY(!model_->setData(age, QStringLiteral("300")));  // maximum 120
        QVERIFY(!age.data(ExtractionModel::CorrectedRole).toBool());

        QVERIFY(model_->setData(age, QStringLiteral("61")));
        QVERIFY(model_->editedRecords().front().data["patient"]["age"] == json(61));
        // A number typed into a text field stays text; empty is null where null is allowed.
        QVERIFY(model_->setData(at("/medications/0/name", ExtractionModel::ValueColumn), QStringLiteral("42")));
        QVERIFY(model_->editedRecords().front().data["medications"][0]["name"] == json("42"));
        QVERIFY(model_->setData(at("/medications/0/dose", ExtractionModel::ValueColumn), QString()));
        QVERIFY(model_->editedRecords().front().data["medications"][0]["dose"] == json(nullptr));
        QVERIFY(!model_->setData(at("/patient/sex", ExtractionModel::ValueColumn), QStringLiteral("woman")));
        QCOMPARE(rejected.count(), 3);
    }

    void approval() {
        const QModelIndex record = model_->index(0, ExtractionModel::FieldColumn);
        QCOMPARE(record.data(Qt::CheckStateRole).toInt(), int(Qt::Unchecked));
        QVERIFY(model_->flags(record) & Qt::ItemIsUserCheckable);
        QVERIFY(model_->setData(at("/patient/name", 0), Qt::Checked, Qt::CheckStateRole));
        QCOMPARE(record.data(Qt::CheckStateRole).toInt(), int(Qt::PartiallyChecked));
        QVERIFY(!model_->isApproved(0));

        QVERIFY(model_->setData(record, Qt::Checked, Qt::CheckStateRole));
        QCOMPARE(record.data(Qt::CheckStateRole).toInt(), int(Qt::Checked));
        QCOMPARE(at("/patient/sex", 0).data(Qt::CheckStateRole).toInt(), int(Qt::Checked));
        QVERIFY(model_->isApproved(0));
        QVERIFY(!model_->isApproved(1));
        QCOMPARE(model_->editedRecords(true).size(), std::size_t(1));
        QCOMPARE(model_->csv(true), cliCsv({aliceRecord()}));

        // A record without values is approved as a whole.
        QVERIFY(model_->setData(model_->index(1, 0), Qt::Checked, Qt::CheckStateRole));
        QVERIFY(model_->isApproved(1));
        QVERIFY(model_->setData(at("/patient/sex", 0), Qt::Unchecked, Qt::CheckStateRole));
        QVERIFY(!model_->isApproved(0));
        QCOMPARE(model_->csv(true), cliCsv({failedRecord()}));
    }

    void documentKeyFallsBackToTheDocId() {
        ExtractionModel model;
        model.setSchema(pack_.schema, true);
        model.addRecord(aliceRecord());
        QCOMPARE(model.fhirBundles(), folio::app::fhir_bundle(aliceRecord().data, "7").dump() + "\n");
        model.setSchema(pack_.schema, false);
        QCOMPARE(model.recordCount(), 0);
        QCOMPARE(model.fhirBundles(), std::string());
    }

    void badSchemaThrows() {
        QVERIFY_THROWS_EXCEPTION(folio::app::SchemaError,
                                 model_->setSchema(nlohmann::ordered_json::parse(R"({"type": "object", "frobnicate": 1})"), false));
        QCOMPARE(model_->recordCount(), 2);
    }
};

QTEST_MAIN(ExtractionModelTest)
#include "tst_extraction_model.moc"
