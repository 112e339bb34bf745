// `folio extract` end to end with the installed default model (SmolLM2,
// installer/fetch-models.sh; CI installs it): the medical pack over an
// ACI-Bench note rendered as a PDF (tests/data/medical_records), the finance
// pack over pages of Apple's 10-K (tests/data/retrieval/subset), the three
// output formats, and bad input, each one error line with nothing stored or
// written before lost.

#include <QFile>
#include <QJsonArray>
#include <QJsonDocument>
#include <QJsonObject>
#include <QTemporaryDir>
#include <QTest>

#include "tests/support/folio_process.h"

namespace {

using Run = folio::test::FolioRun;

const QString kNote = QStringLiteral(FOLIO_TEST_DATA "/medical_records/D2N005.pdf");
const QString kFiling = QStringLiteral(FOLIO_TEST_DATA "/retrieval/subset/apple-2021-10k-excerpt.pdf");

QByteArray read_file(const QString& path) {
    QFile file(path);
    return file.open(QIODevice::ReadOnly) ? file.readAll() : QByteArray();
}

void write_file(const QString& path, const QByteArray& content) {
    QFile file(path);
    QVERIFY(file.open(QIODevice::WriteOnly | QIODevice::Truncate));
    file.write(content);
}

}  // namespace

class ExtractCliTest : public QObject {
    Q_OBJECT

    QTemporaryDir work_;
    QString library_;

    Run folio(const QStringList& arguments) {
        return folio::test::run_folio(QStringList{"--library", library_} + arguments, 600000);
    }

    QString page_text(qint64 doc_id, int page) {
        const Run run = folio({"show", QString::number(doc_id), "--page", QString::number(page), "--json"});
        return run.lines.isEmpty() ? QString() : run.lines.front()["text"].toString();
    }

    void verify_error(const Run& run, const QString& says) {
        QVERIFY2(run.exit_code != 0, qPrintable(run.out));
        const QStringList lines = run.err.split('\n', Qt::SkipEmptyParts);
        QCOMPARE(lines.size(), 1);
        QVERIFY2(lines[0].startsWith("folio: error: ") && lines[0].contains(says), qPrintable(run.err));
    }

private slots:
    void initTestCase() {
        QVERIFY(work_.isValid());
        library_ = work_.filePath("library");
        const Run run = folio({"ingest", kNote, "--json"});  // document 1
        QCOMPARE(run.exit_code, 0);
        QCOMPARE(folio({"ingest", kFiling}).exit_code, 0);  // document 2
    }

    // The income statement's figures come from its rows ("Total net sales |
    // 365,817 | 274,515 | 260,174"), in the latest year's column, located on
    // its page (the excerpt's 7th), whatever the model would have copied.
    void financePackReadsTheStatementRows() {
        const Run run = folio({"extract", "--pack", "finance", "--doc", "2", "--json"});
        QVERIFY2(run.exit_code == 0, qPrintable(run.err));
        QCOMPARE(run.lines.size(), 1);
        const QJsonObject record = run.lines.front();
        QVERIFY2(record["error"].toString().isEmpty(), qPrintable(record["error"].toString()));
        const QJsonObject data = record["data"].toObject();
        QCOMPARE(data["revenue"].toString(), QString("365,817"));
        QCOMPARE(data["operating_income"].toString(), QString("108,949"));
        QCOMPARE(data["net_income"].toString(), QString("94,680"));
        QCOMPARE(data["diluted_eps"].toString(), QString("5.61"));
        for (const QJsonValue& item : record["values"].toArray()) {
            const QJsonObject value = item.toObject();
            if (value["pointer"].toString() != "/revenue") continue;
            QVERIFY(value["grounded"].toBool());
            QCOMPARE(value["page"].toInt(), 7);
            QCOMPARE(value["quote"].toString(), QString("365,817"));
        }
    }

    // Every value of the record is either found in the stored page text,
    // with a quote that is really there, or marked ungrounded.
    void medicalPackRecordIsGrounded() {
        const QString out = work_.filePath("records.jsonl");
        const Run run = folio({"extract", "--pack", "medical", "--doc", "1", "--out", out, "--json"});
        QVERIFY2(run.exit_code == 0, qPrintable(run.err));
        QCOMPARE(run.lines.size(), 1);
        const QJsonObject record = run.lines.front();
        QCOMPARE(record["doc_id"].toInteger(), 1);
        QVERIFY2(record["error"].toString().isEmpty(), qPrintable(record["error"].toString()));
        const QJsonObject data = record["data"].toObject();
        for (const char* key : {"patient", "encounter_date", "chief_complaint", "medications", "allergies", "vitals", "labs",
                                "diagnoses", "plan"})
            QVERIFY2(data.contains(key), key);
        const QStringList sexes = {"female", "male", "other", "unknown"};
        QVERIFY(sexes.contains(data["patient"].toObject()["sex"].toString()));
        const QJsonArray values = record["values"].toArray();
        QVERIFY(!values.isEmpty());
        int grounded = 0;
        for (const QJsonValue& item : values) {
            const QJsonObject value = item.toObject();
            QVERIFY(value["pointer"].toString().startsWith('/'));
            if (!value["grounded"].toBool()) continue;
            ++grounded;
            const QByteArray page = page_text(1, value["page"].toInt()).toUtf8();
            const qint64 begin = value["begin"].toInteger(), end = value["end"].toInteger();
            QVERIFY(begin >= 0 && end > begin && end <= page.size());
            QCOMPARE(QString::fromUtf8(page.mid(begin, end - begin)), value["quote"].toString());
        }
        QCOMPARE(record["grounded"].toInt(), grounded);
        QCOMPARE(record["ungrounded"].toInt(), values.size() - grounded);
        // Free text and whole numbers are copied from the note, so nearly all of it is found there.
        QVERIFY2(grounded * 10 >= values.size() * 8, qPrintable(QString("%1 of %2").arg(grounded).arg(values.size())));
        // The file holds the same record.
        const QList<QByteArray> lines = read_file(out).split('\n');
        QCOMPARE(lines.size(), 2);
        QCOMPARE(QJsonDocument::fromJson(lines[0]).object()["data"].toObject(), data);
    }

    void csvAndFhirOutputs() {
        const QString csv = work_.filePath("records.csv");
        Run run = folio({"extract", "--pack", "medical", "--doc", "1", "--out", csv});
        QVERIFY2(run.exit_code == 0, qPrintable(run.err));
        const QList<QByteArray> rows = read_file(csv).split('\n');
        QVERIFY(rows.size() >= 2);
        QVERIFY(rows[0].contains("/patient/name"));
        QVERIFY(rows[1].contains("D2N005.pdf"));

        const QString fhir = work_.filePath("records.ndjson");
        run = folio({"extract", "--pack", "medical", "--doc", "1", "--out", fhir, "--format", "fhir"});
        QVERIFY2(run.exit_code == 0, qPrintable(run.err));
        const QJsonObject bundle = QJsonDocument::fromJson(read_file(fhir).split('\n').front()).object();
        QCOMPARE(bundle["resourceType"].toString(), "Bundle");
        QCOMPARE(bundle["type"].toString(), "collection");
        QCOMPARE(bundle["entry"].toArray().first().toObject()["resource"].toObject()["resourceType"].toString(),
                 "Patient");
    }

    void badInput_data() {
        QTest::addColumn<QString>("schema");  // written to a file; empty: no --schema
        QTest::addColumn<QStringList>("arguments");
        QTest::addColumn<QString>("says");
        QTest::newRow("not json") << "{\"type\": " << QStringList{"--doc", "1"} << "is not JSON";
        QTest::newRow("not json schema") << R"({"type": "strnig"})" << QStringList{"--doc", "1"} << "strnig";
        QTest::newRow("impossible") << R"({"type": "array", "minItems": 3, "maxItems": 1})"
                                    << QStringList{"--doc", "1"} << "minItems";
        QTest::newRow("unsupported keyword") << R"({"type": "object", "patternProperties": {}})"
                                             << QStringList{"--doc", "1"} << "patternProperties";
        QTest::newRow("no schema") << "" << QStringList{"--doc", "1"} << "--pack NAME or --schema FILE";
        QTest::newRow("unknown pack") << "" << QStringList{"--pack", "astrology", "--doc", "1"} << "astrology";
        QTest::newRow("unknown document") << "" << QStringList{"--pack", "medical", "--doc", "99"} << "no document 99";
        QTest::newRow("no documents chosen") << "" << QStringList{"--pack", "medical"} << "--doc ID or --all";
        QTest::newRow("missing model") << "" << QStringList{"--pack", "medical", "--doc", "1", "--model", "/nonexistent.gguf"}
                                       << "no model file";
        QTest::newRow("model not loadable") << "" << QStringList{"--pack", "medical", "--doc", "1", "--model", kNote}
                                            << "D2N005.pdf";
    }

    // Nothing already stored or written is lost: the library and an
    // earlier --out file stay as they were.
    void badInput() {
        QFETCH(QString, schema);
        QFETCH(QStringList, arguments);
        QFETCH(QString, says);
        const QString out = work_.filePath("kept.jsonl");
        write_file(out, "{\"earlier\": true}\n");
        QStringList command = {"extract"};
        if (!schema.isEmpty()) {
            const QString path = work_.filePath("schema.json");
            write_file(path, schema.toUtf8());
            command << "--schema" << path;
        }
        const QString docs_before = folio({"docs", "--json"}).out;
        verify_error(folio(command + arguments + QStringList{"--out", out}), says);
        QCOMPARE(read_file(out), QByteArray("{\"earlier\": true}\n"));
        QCOMPARE(folio({"docs", "--json"}).out, docs_before);
    }
};

QTEST_GUILESS_MAIN(ExtractCliTest)
#include "tst_extract_cli.moc"
