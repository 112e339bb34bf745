// `folio batch` over a folder of two clinical notes and one corrupt file,
// with the installed SmolLM2 and the medical pack (skipped when no chat
// model is installed): killed after its first record, resumed, and run
// again; and its usage errors.

#include <QDir>
#include <QFile>
#include <QFileInfo>
#include <QProcess>
#include <QTemporaryDir>
#include <QTest>

#include <set>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "app/fhir.h"
#include "app/json_schema.h"
#include "app/packs.h"
#include "engine/model_paths.h"
#include "tests/support/folio_process.h"
#include "tests/support/test_documents.h"

using folio::test::FolioRun;
using folio::test::run_folio;
using nlohmann::json;

namespace {

std::vector<json> jsonl(const QString& path) {
    QFile file(path);
    std::vector<json> lines;
    if (!file.open(QIODevice::ReadOnly)) return lines;
    for (const QByteArray& line : file.readAll().split('\n'))
        if (!line.isEmpty()) lines.push_back(json::parse(line.toStdString()));
    return lines;
}

QJsonObject summary_of(const FolioRun& run) {
    for (const QJsonObject& line : run.lines)
        if (line["event"] == "summary") return line;
    return {};
}

}  // namespace

class BatchCliTest : public QObject {
    Q_OBJECT

private slots:
    void initTestCase() {
        QVERIFY(directory_.isValid());
        QVERIFY(QDir().mkpath(records()));
        folio::test::write_text_pdf(records() + "/lopez.pdf",
                                    {"Clinic note. Patient: Maria Lopez, 54 year old female. Visit date: 2024-03-12.\n"
                                     "Chief complaint: follow-up of high blood pressure.\n"
                                     "Assessment: essential hypertension.\n"
                                     "Medications: lisinopril 20 mg once daily.\nAllergies: penicillin.\n"
                                     "Vitals: blood pressure 142/88 mmHg, pulse 78 bpm."});
        folio::test::write_text_pdf(records() + "/okafor.pdf",
                                    {"Clinic note. Patient: Ben Okafor, 61 year old male. Visit date: 2024-05-02.\n"
                                     "Chief complaint: cough for three days.\nAssessment: acute bronchitis.\n"
                                     "Medications: none.\nAllergies: none known.\nVitals: temperature 38.1 C."});
        QFile corrupt(records() + "/scan.pdf");
        QVERIFY(corrupt.open(QIODevice::WriteOnly));
        corrupt.write("%PDF-1.4\n\x01\x02 truncated in transit");
    }

    void killed_batch_resumes_without_writing_a_record_twice() {
        const auto model = folio::engine::find_default_model(folio::engine::ModelRole::Chat);
        if (!model) QSKIP("no chat model installed (installer/fetch-models.sh)");

        // Killed as soon as its first record is written.
        QProcess first;
        first.start(FOLIO_EXECUTABLE, arguments());
        QVERIFY(first.waitForStarted());
        bool record_written = false;
        while (!record_written && first.waitForReadyRead(600000)) {
            while (first.canReadLine()) {
                const json event = json::parse(first.readLine().toStdString());
                if (event["event"] == "record" && event["outcome"] == "done") record_written = true;
            }
        }
        QVERIFY2(record_written, first.readAllStandardError().constData());
        first.kill();
        first.waitForFinished();
        QCOMPARE(jsonl(out() + "/records.jsonl").size() >= 1, true);

        // Resumed: the rest, each once; the corrupt file is an error row and
        // the exit status says a record failed.
        const FolioRun resumed = run_folio(arguments(), 900000);
        QCOMPARE(resumed.exit_code, 1);
        QVERIFY2(resumed.err.startsWith("folio: error: 1 of 3 records failed") && resumed.err.count('\n') == 1,
                 qPrintable(resumed.err));
        const QJsonObject summary = summary_of(resumed);
        QCOMPARE(summary["failed"].toInt(), 1);
        QCOMPARE(summary["done"].toInt() + summary["skipped"].toInt(), 2);
        QVERIFY(summary["skipped"].toInt() >= 1);
        check_outputs();

        // Run again: nothing is extracted again; the corrupt file is retried and its row replaced.
        const FolioRun again = run_folio(arguments(), 900000);
        QCOMPARE(again.exit_code, 1);
        QCOMPARE(summary_of(again)["skipped"].toInt(), 2);
        QCOMPARE(summary_of(again)["done"].toInt(), 0);
        QCOMPARE(summary_of(again)["failed"].toInt(), 1);
        check_outputs();
    }

    void usage_errors_are_one_line() {
        const QStringList library = {"--library", directory_.path() + "/library"};
        const struct {
            QStringList arguments;
            const char* message;
        } cases[] = {
            {{"batch", records(), "--out", out()}, "batch needs --pack NAME and --out DIR"},
            {{"batch", records(), "--pack", "medical"}, "batch needs --pack NAME and --out DIR"},
            {{"batch", "--pack", "medical", "--out", out()}, "batch needs at least one file or folder"},
            {{"batch", records(), "--pack", "dental", "--out", out()}, "no pack named 'dental'"},
            {{"batch", records(), "--pack", "medical", "--out", out(), "--jobs", "0"}, "--jobs"},
        };
        for (const auto& c : cases) {
            const FolioRun run = run_folio(library + c.arguments);
            QCOMPARE(run.exit_code, 2);
            QVERIFY2(run.err.startsWith("folio: error: ") && run.err.contains(c.message) && run.err.count('\n') == 1,
                     qPrintable(run.err));
        }
    }

private:
    QString records() const { return directory_.path() + "/records"; }
    QString out() const { return directory_.path() + "/out"; }
    QStringList arguments() const {
        return {"--library", directory_.path() + "/library", "batch", records(), "--pack", "medical",
                "--out",     out(),                          "--jobs", "1", "--json"};
    }

    // One line per file; the notes' records meet the pack's schema, carry
    // the pack's validation and have sound FHIR Bundles; the corrupt file
    // has an error row.
    void check_outputs() {
        const std::vector<json> lines = jsonl(out() + "/records.jsonl");
        QCOMPARE(lines.size(), std::size_t(3));
        const folio::app::JsonSchema schema = folio::app::JsonSchema::parse(folio::app::load_pack("medical").schema);
        std::set<std::string> names;
        for (const json& line : lines) {
            const QString name = QFileInfo(QString::fromStdString(line["path"])).fileName();
            names.insert(name.toStdString());
            if (name == "scan.pdf") {
                QVERIFY(!line["error"].get<std::string>().empty());
                QVERIFY(line["data"].is_null());
                continue;
            }
            QVERIFY2(line["error"] == "", line["error"].dump().c_str());
            QVERIFY(schema.validate(line["data"]).empty());
            // The medical pack's validators ran: their findings, possibly none, are listed.
            QVERIFY(line["validation"].is_array());
            for (const json& issue : line["validation"]) {
                QVERIFY(issue["severity"] == "warning" || issue["severity"] == "error");
                QVERIFY(issue["pointer"].get<std::string>().empty() || issue["pointer"].get<std::string>()[0] == '/');
                QVERIFY(!issue["message"].get<std::string>().empty());
            }
            QFile fhir(out() + "/" + QString::fromStdString(line["fhir"]));
            QVERIFY(fhir.open(QIODevice::ReadOnly));
            const std::vector<std::string> errors = folio::app::fhir_structure_errors(json::parse(fhir.readAll().toStdString()));
            QVERIFY2(errors.empty(), errors.empty() ? "" : errors.front().c_str());
        }
        QCOMPARE(names, (std::set<std::string>{"lopez.pdf", "okafor.pdf", "scan.pdf"}));
        QCOMPARE(QDir(out() + "/fhir").entryList(QDir::Files).size(), 2);
        QFile csv(out() + "/records.csv");
        QVERIFY(csv.open(QIODevice::ReadOnly));
        QCOMPARE(csv.readAll().count("\r\n"), 4);
    }

    QTemporaryDir directory_;
};

QTEST_MAIN(BatchCliTest)
#include "tst_batch_cli.moc"
