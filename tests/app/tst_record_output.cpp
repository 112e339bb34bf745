#include <QFile>
#include <QTemporaryDir>
#include <QTest>
#include <QtCore/qfloat16.h>  // QCOMPARE of nlohmann::json weighs qfloat16 overloads, which need the whole type

#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "app/json_schema.h"
#include "app/record_output.h"

using namespace folio::app;
using nlohmann::json;

namespace {

const JsonSchema& note_schema() {
    static const JsonSchema schema = JsonSchema::parse(json::parse(R"({
      "type": "object",
      "properties": {
        "patient": {"type": "object", "properties": {"name": {"type": "string"}, "age": {"type": ["integer", "null"]}},
                    "required": ["name", "age"]},
        "assessment": {"type": "array", "items": {"type": "string"}},
        "medications": {"type": "array", "items": {"type": "object",
                        "properties": {"name": {"type": "string"}, "dose": {"type": ["string", "null"]}},
                        "required": ["name", "dose"]}}
      },
      "required": ["patient", "assessment", "medications"]
    })"));
    return schema;
}

ExtractionRecord sample_record() {
    ExtractionRecord record;
    record.doc_id = 3;
    record.path = "/records/note, \"final\".pdf";
    record.data = json::parse(R"({
      "patient": {"name": "Lopez, Maria", "age": 54},
      "assessment": ["Hypertension", "Type 2 \u0022adult-onset\u0022 diabetes"],
      "medications": [{"name": "Lisinopril", "dose": "20 mg"}, {"name": "Metformin", "dose": null}]
    })");
    ExtractedValue name{.pointer = "/patient/name", .value = "Lopez, Maria", .grounded = true, .page = 1,
                        .begin = 10, .end = 22, .quote = "Lopez, Maria"};
    ExtractedValue age{.pointer = "/patient/age", .value = 54, .normalized = 54};
    record.values = {name, age};
    record.grounded = 1;
    record.ungrounded = 1;
    record.validation = {{"/patient/age", Severity::Error, "age 54 does not match the date of birth"}};
    record.seconds = 2.5;
    return record;
}

QString read(const std::string& path) {
    QFile file(QString::fromStdString(path));
    return file.open(QIODevice::ReadOnly) ? QString::fromUtf8(file.readAll()) : QString();
}

}  // namespace

class RecordOutputTest : public QObject {
    Q_OBJECT

private slots:
    void record_line_carries_values_and_their_places() {
        const json line = record_json(sample_record());
        QCOMPARE(line["doc_id"], 3);
        QCOMPARE(line["path"], sample_record().path);
        QCOMPARE(line["data"]["patient"]["age"], 54);
        QCOMPARE(line["values"].size(), std::size_t(2));
        QCOMPARE(line["values"][0]["pointer"], "/patient/name");
        QCOMPARE(line["values"][0]["grounded"], true);
        QCOMPARE(line["values"][0]["page"], 1);
        QCOMPARE(line["values"][0]["begin"], 10);
        QCOMPARE(line["values"][0]["end"], 22);
        QCOMPARE(line["values"][0]["quote"], "Lopez, Maria");
        QVERIFY(line["values"][1]["normalized"] == 54);
        QCOMPARE(line["grounded"], 1);
        QCOMPARE(line["ungrounded"], 1);
        QCOMPARE(line["validation"], json::parse(R"([{"pointer": "/patient/age", "severity": "error",
                                                      "message": "age 54 does not match the date of birth"}])"));
        QCOMPARE(line["seconds"], 2.5);
        QCOMPARE(line["error"], "");
        QVERIFY(note_schema().validate(line["data"]).empty());

        const json error_row = record_json({.path = "/records/bad.pdf", .error = "not a PDF"});
        QCOMPARE(error_row["path"], "/records/bad.pdf");
        QCOMPARE(error_row["error"], "not a PDF");
        QVERIFY(error_row["data"].is_null());
        QVERIFY(error_row["values"].empty());
    }

    void csv_fields_are_quoted_as_rfc_4180_says() {
        QCOMPARE(csv_field("plain text"), std::string("plain text"));
        QCOMPARE(csv_field(""), std::string(""));
        QCOMPARE(csv_field("a,b"), std::string("\"a,b\""));
        QCOMPARE(csv_field("say \"hi\""), std::string("\"say \"\"hi\"\"\""));
        QCOMPARE(csv_field("two\nlines"), std::string("\"two\nlines\""));
        QCOMPARE(csv_field("cr\rhere"), std::string("\"cr\rhere\""));
    }

    void csv_has_a_column_per_schema_leaf_and_joins_arrays() {
        const std::string header = csv_header(note_schema());
        QCOMPARE(header, std::string("path,doc_id,sha256,grounded,ungrounded,seconds,error,validation,"
                                     "/assessment/*,/medications/*/dose,/medications/*/name,/patient/age,"
                                     "/patient/name\r\n"));
        json line = record_json(sample_record());
        line["sha256"] = "abc";
        QCOMPARE(csv_row(note_schema(), line),
                 std::string("\"/records/note, \"\"final\"\".pdf\",3,abc,1,1,2.5,,"
                             "error /patient/age: age 54 does not match the date of birth,"
                             "\"Hypertension; Type 2 \"\"adult-onset\"\" diabetes\",20 mg; ,Lisinopril; Metformin,54,"
                             "\"Lopez, Maria\"\r\n"));
        // Findings on the whole record have no pointer; several are joined.
        line["validation"].push_back({{"pointer", ""}, {"severity", "warning"}, {"message", "no visit date"}});
        QVERIFY(csv_row(note_schema(), line)
                    .find(",error /patient/age: age 54 does not match the date of birth; warning no visit date,") !=
                std::string::npos);
        // An error row: the record's columns, empty leaves.
        QCOMPARE(csv_row(note_schema(), record_json({.path = "/r/bad.pdf", .error = "cannot read file: denied"})),
                 std::string("/r/bad.pdf,0,,0,0,0.0,cannot read file: denied,,,,,,\r\n"));
    }

    void files_append_lines_and_drop_a_torn_one() {
        QTemporaryDir dir;
        const std::string folder = dir.path().toStdString() + "/out";
        json first = record_json(sample_record());
        first["sha256"] = "1";
        {
            RecordFiles files(folder, note_schema());
            QVERIFY(files.lines().empty());
            files.append(first);
            files.append(record_json({.path = "/r/bad.pdf", .error = "not a PDF"}));
        }
        {
            // A crash while the third line was being written.
            QFile jsonl(QString::fromStdString(folder + "/records.jsonl"));
            QVERIFY(jsonl.open(QIODevice::Append));
            jsonl.write("{\"doc_id\": 9, \"path\": \"/r/cut");
        }
        RecordFiles files(folder, note_schema());
        QCOMPARE(files.lines().size(), std::size_t(2));
        QVERIFY(files.lines()[0] == first);
        const QString jsonl = read(files.jsonl_path());
        QVERIFY(jsonl.endsWith("}\n"));
        QCOMPARE(jsonl.count('\n'), 2);
        for (const QString& text : jsonl.split('\n', Qt::SkipEmptyParts)) QVERIFY(json::accept(text.toStdString()));
        // The CSV is made again from the lines: a header and two rows.
        const QString csv = read(files.csv_path());
        QCOMPARE(csv.count("\r\n"), 3);
    }

    void rewrite_replaces_both_files() {
        QTemporaryDir dir;
        RecordFiles files(dir.path().toStdString(), note_schema());
        files.append(record_json({.path = "/r/a.pdf", .error = "x"}));
        files.append(record_json(sample_record()));
        files.rewrite({files.lines()[1]});
        QCOMPARE(files.lines().size(), std::size_t(1));
        QCOMPARE(read(files.jsonl_path()).count('\n'), 1);
        QVERIFY(!read(files.csv_path()).contains("/r/a.pdf"));
        files.append(record_json({.path = "/r/b.pdf", .error = "y"}));
        QVERIFY(read(files.csv_path()).endsWith("/r/b.pdf,0,,0,0,0.0,y,,,,,,\r\n"));
    }

    void unparsable_line_stops_with_the_file_named() {
        QTemporaryDir dir;
        QFile jsonl(dir.path() + "/records.jsonl");
        QVERIFY(jsonl.open(QIODevice::WriteOnly));
        jsonl.write("{\"path\": \"a\"}\nnot json\n");
        jsonl.close();
        try {
            RecordFiles files(dir.path().toStdString(), note_schema());
            QFAIL("a records.jsonl with a broken line was taken");
        } catch (const std::runtime_error& e) {
            QVERIFY2(std::string(e.what()).find("records.jsonl line 2 is not JSON") != std::string::npos, e.what());
        }
        QCOMPARE(read((dir.path() + "/records.jsonl").toStdString()), QString("{\"path\": \"a\"}\nnot json\n"));
    }
};

QTEST_GUILESS_MAIN(RecordOutputTest)
#include "tst_record_output.moc"
