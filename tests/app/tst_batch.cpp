#include <QDir>
#include <QFile>
#include <QTemporaryDir>
#include <QTest>
#include <QtCore/qfloat16.h>  // QCOMPARE of nlohmann::json weighs qfloat16 overloads, which need the whole type

#include <atomic>
#include <set>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "app/batch.h"
#include "app/fhir.h"
#include "app/packs.h"
#include "tests/support/test_documents.h"

using namespace folio;
using namespace folio::app;
using nlohmann::json;

namespace {

// What the model would extract, made from the stored text so that the test
// sees the record of the right document: the patient's name is the page's
// first line.
ExtractionRecord stand_in_record(Library& library, std::int64_t doc_id) {
    const std::vector<index::StoredPage> pages = library.store().pages(doc_id);
    const std::string text = pages.empty() ? std::string() : pages.front().text;
    ExtractionRecord record;
    record.doc_id = doc_id;
    record.path = library.store().document(doc_id)->path;
    record.data = {{"patient", {{"name", text.substr(0, text.find('\n'))}, {"date_of_birth", nullptr}, {"age", 61},
                                {"sex", "male"}}},
                   {"encounter_date", "2024-05-02"},
                   {"chief_complaint", "cough"},
                   {"medications", {{{"name", "Amoxicillin"}, {"dose", "500 mg"}, {"route", "PO"},
                                     {"frequency", "three times daily"}}}},
                   {"allergies", json::array()},
                   {"vitals", {{{"name", "Temperature"}, {"value", "38.1"}, {"unit", "C"}}}},
                   {"labs", json::array()},
                   {"diagnoses", {{{"description", "Bronchitis"}, {"icd10", "J20.9"}}}},
                   {"plan", {"Rest and fluids"}}};
    record.values = {{.pointer = "/patient/name", .value = record.data["patient"]["name"], .grounded = true, .page = 1,
                      .begin = 0, .end = 10, .quote = "x"},
                     {.pointer = "/patient/age", .value = 61}};
    record.grounded = 1;
    record.ungrounded = 1;
    record.seconds = 0.1;
    return record;
}

void write(const QString& path, const QByteArray& content) {
    QFile file(path);
    QVERIFY(file.open(QIODevice::WriteOnly));
    file.write(content);
}

std::vector<json> jsonl(const QString& path) {
    QFile file(path);
    std::vector<json> lines;
    if (!file.open(QIODevice::ReadOnly)) return lines;
    for (const QByteArray& line : file.readAll().split('\n'))
        if (!line.isEmpty()) lines.push_back(json::parse(line.toStdString()));
    return lines;
}

int lines_with_path_ending(const std::vector<json>& lines, const std::string& name) {
    int count = 0;
    for (const json& line : lines) {
        const std::string path = line["path"];
        count += path.size() >= name.size() && path.compare(path.size() - name.size(), name.size(), name) == 0;
    }
    return count;
}

}  // namespace

class BatchTest : public QObject {
    Q_OBJECT

private slots:
    void init() {
        directory_.emplace();
        QVERIFY(directory_->isValid());
        QVERIFY(QDir().mkpath(inputs()));
        write(inputs() + "/ana.txt", "Ana Ruiz\nCough for three days. Temperature 38.1 C.\n");
        write(inputs() + "/ben.txt", "Ben Okafor\nFollow-up visit.\n");
        write(inputs() + "/broken.pdf", "%PDF-1.7\nthis is no PDF past its first line\n");
        library_.emplace((directory_->path() + "/library").toStdString());
    }
    void cleanup() {
        library_.reset();
        directory_.reset();
    }

    void writes_every_record_and_an_error_row_for_a_bad_file() {
        int started = 0;
        std::vector<BatchItem> finished;
        const BatchReport report = run({inputs()}, {.started = [&](int files) { started = files; },
                                                     .item_done = [&](const BatchItem& item) { finished.push_back(item); }});
        QCOMPARE(started, 3);
        QCOMPARE(finished.size(), std::size_t(3));
        QCOMPARE(report.count(BatchOutcome::Done), 2);
        QCOMPARE(report.count(BatchOutcome::Failed), 1);
        QCOMPARE(report.grounded_share(), 0.5);
        QVERIFY(report.seconds_per_record() > 0);

        const std::vector<json> lines = jsonl(out() + "/records.jsonl");
        QCOMPARE(lines.size(), std::size_t(3));
        const PackContent pack = load_pack("medical");
        const JsonSchema schema = JsonSchema::parse(pack.schema);
        std::set<std::string> names;
        for (const json& line : lines) {
            QCOMPARE(line["sha256"].get<std::string>().size(), std::size_t(64));
            if (!line["error"].get<std::string>().empty()) {
                QVERIFY(line["path"].get<std::string>().ends_with("/broken.pdf"));
                QVERIFY(line["data"].is_null());
                continue;
            }
            QVERIFY(schema.validate(line["data"]).empty());
            names.insert(line["data"]["patient"]["name"]);
            // Its FHIR Bundle, named by the file's stem.
            const std::string stem = QFileInfo(QString::fromStdString(line["path"])).completeBaseName().toStdString();
            QCOMPARE(line["fhir"], "fhir/" + stem + ".json");
            QFile fhir(out() + "/fhir/" + QString::fromStdString(stem) + ".json");
            QVERIFY(fhir.open(QIODevice::ReadOnly));
            const json bundle = json::parse(fhir.readAll().toStdString());
            QVERIFY(fhir_structure_errors(bundle).empty());
            QCOMPARE(bundle["entry"][0]["resource"]["name"][0]["text"], line["data"]["patient"]["name"]);
        }
        QCOMPARE(names, (std::set<std::string>{"Ana Ruiz", "Ben Okafor"}));
        QCOMPARE(QDir(out() + "/fhir").entryList(QDir::Files).size(), 2);

        QFile csv(out() + "/records.csv");
        QVERIFY(csv.open(QIODevice::ReadOnly));
        QCOMPARE(csv.readAll().count("\r\n"), 4);  // header and three rows

        const std::vector<index::BatchJob> jobs = library_->store().batch_jobs(out_absolute());
        QCOMPARE(jobs.size(), std::size_t(3));
        for (const index::BatchJob& job : jobs) {
            const bool broken = job.path.ends_with("/broken.pdf");
            QCOMPARE(job.state, broken ? index::BatchJobState::Failed : index::BatchJobState::Done);
            QCOMPARE(job.error.empty(), !broken);
            QCOMPARE(job.doc_id != 0, !broken);
        }
    }

    void rerun_skips_done_records_and_retries_failed_ones() {
        run({inputs()});
        int extracted = 0;
        const BatchReport again = run({inputs()}, {}, [&](Library& library, std::int64_t doc_id) {
            ++extracted;
            return stand_in_record(library, doc_id);
        });
        QCOMPARE(extracted, 0);
        QCOMPARE(again.count(BatchOutcome::Skipped), 2);
        QCOMPARE(again.count(BatchOutcome::Failed), 1);
        // The retry's error row replaced the first one.
        std::vector<json> lines = jsonl(out() + "/records.jsonl");
        QCOMPARE(lines.size(), std::size_t(3));
        QCOMPARE(lines_with_path_ending(lines, "/broken.pdf"), 1);

        // The file is fixed: the next run makes its record, and only its.
        test::write_text_pdf(inputs() + "/broken.pdf", {"Carla Diaz\nBack pain."});
        const BatchReport fixed = run({inputs()});
        QCOMPARE(fixed.count(BatchOutcome::Done), 1);
        QCOMPARE(fixed.count(BatchOutcome::Skipped), 2);
        lines = jsonl(out() + "/records.jsonl");
        QCOMPARE(lines.size(), std::size_t(3));
        for (const json& line : lines) QCOMPARE(line["error"], "");
        QCOMPARE(lines_with_path_ending(lines, "/broken.pdf"), 1);
    }

    // A crash after a record's line was written and before its job was
    // marked done: the next run marks it done and writes nothing again.
    void record_written_but_not_marked_done_is_not_written_again() {
        run({inputs() + "/ana.txt"});
        std::vector<index::BatchJob> jobs = library_->store().batch_jobs(out_absolute());
        QCOMPARE(jobs.size(), std::size_t(1));
        jobs[0].state = index::BatchJobState::Pending;
        library_->store().put_batch_jobs(jobs);

        int extracted = 0;
        const BatchReport report = run({inputs() + "/ana.txt"}, {}, [&](Library& library, std::int64_t doc_id) {
            ++extracted;
            return stand_in_record(library, doc_id);
        });
        QCOMPARE(extracted, 0);
        QCOMPARE(report.count(BatchOutcome::Skipped), 1);
        QCOMPARE(jsonl(out() + "/records.jsonl").size(), std::size_t(1));
        QCOMPARE(library_->store().batch_jobs(out_absolute())[0].state, index::BatchJobState::Done);
    }

    void interrupted_batch_resumes_where_it_stopped() {
        std::atomic<bool> cancel = false;
        const BatchReport stopped = run({inputs() + "/ana.txt", inputs() + "/ben.txt"}, {},
                                        [&](Library& library, std::int64_t doc_id) {
                                            cancel = true;  // Ctrl-C while the first record is extracted
                                            return stand_in_record(library, doc_id);
                                        },
                                        &cancel);
        QVERIFY(stopped.cancelled);
        QCOMPARE(stopped.count(BatchOutcome::Done), 1);
        QCOMPARE(jsonl(out() + "/records.jsonl").size(), std::size_t(1));

        const BatchReport resumed = run({inputs() + "/ana.txt", inputs() + "/ben.txt"});
        QCOMPARE(resumed.count(BatchOutcome::Skipped), 1);
        QCOMPARE(resumed.count(BatchOutcome::Done), 1);
        const std::vector<json> lines = jsonl(out() + "/records.jsonl");
        QCOMPARE(lines.size(), std::size_t(2));
        QVERIFY(lines[0]["path"] != lines[1]["path"]);
    }

    void unreadable_and_unextractable_files_fail_alone() {
        const std::string missing = (inputs() + "/gone.pdf").toStdString();
        const BatchReport report = run({inputs() + "/ana.txt", inputs() + "/ben.txt", QString::fromStdString(missing)},
                                       {}, [&](Library& library, std::int64_t doc_id) {
                                           if (library.store().document(doc_id)->path.ends_with("/ben.txt"))
                                               throw std::runtime_error("the model ran out of context");
                                           return stand_in_record(library, doc_id);
                                       });
        QCOMPARE(report.count(BatchOutcome::Done), 1);
        QCOMPARE(report.count(BatchOutcome::Failed), 2);
        std::map<std::string, std::string> errors;
        for (const BatchItem& item : report.items) errors[QFileInfo(QString::fromStdString(item.path)).fileName().toStdString()] = item.error;
        QVERIFY2(errors["gone.pdf"].find("cannot read file") != std::string::npos, errors["gone.pdf"].c_str());
        QCOMPARE(errors["ben.txt"], std::string("the model ran out of context"));
        QCOMPARE(errors["ana.txt"], std::string());
        QCOMPARE(jsonl(out() + "/records.jsonl").size(), std::size_t(3));
    }

    void same_content_twice_is_one_record() {
        QVERIFY(QFile::copy(inputs() + "/ana.txt", inputs() + "/ana copy.txt"));
        const BatchReport report = run({inputs() + "/ana.txt", inputs() + "/ana copy.txt"});
        QCOMPARE(report.count(BatchOutcome::Done), 1);
        QCOMPARE(report.count(BatchOutcome::Skipped), 1);
        QVERIFY(report.items[0].error.starts_with("same content as "));
        QCOMPARE(jsonl(out() + "/records.jsonl").size(), std::size_t(1));
    }

    void outputs_inside_the_input_folder_are_not_inputs() {
        const QString nested = inputs() + "/out";
        const BatchReport first = run({inputs() + "/ana.txt"}, {}, stand_in_record, nullptr, nested);
        QCOMPARE(first.count(BatchOutcome::Done), 1);
        QVERIFY(QFile::remove(inputs() + "/broken.pdf"));
        const BatchReport second = run({inputs()}, {}, stand_in_record, nullptr, nested);
        QCOMPARE(second.items.size(), std::size_t(2));  // ana (skipped) and ben, not records.jsonl or fhir/
    }

    void a_second_batch_on_the_same_folder_is_refused() {
        std::string refusal;
        run({inputs() + "/ana.txt"}, {}, [&](Library& library, std::int64_t doc_id) {
            try {
                run({inputs() + "/ben.txt"});
            } catch (const std::runtime_error& e) {
                refusal = e.what();
            }
            return stand_in_record(library, doc_id);
        });
        QVERIFY2(refusal.find("another folio batch is writing to") != std::string::npos, refusal.c_str());
    }

private:
    QString inputs() const { return directory_->path() + "/records"; }
    QString out() const { return directory_->path() + "/batch"; }
    std::string out_absolute() const { return QDir(out()).absolutePath().toStdString(); }

    BatchReport run(const QStringList& paths, const BatchCallbacks& callbacks = {},
                    const RecordExtractor& extract = stand_in_record, const std::atomic<bool>* cancel = nullptr,
                    const QString& output = {}) {
        BatchRequest request;
        for (const QString& path : paths) request.paths.push_back(path.toStdString());
        request.output_dir = (output.isEmpty() ? out() : output).toStdString();
        request.fhir = true;
        request.pipeline.jobs = 1;
        request.pipeline.worker_executable = FOLIO_INGEST_WORKER;
        request.cancel = cancel;
        static const JsonSchema schema = JsonSchema::parse(load_pack("medical").schema);
        return run_batch(*library_, schema, extract, request, callbacks);
    }

    std::optional<QTemporaryDir> directory_;
    std::optional<Library> library_;
};

QTEST_MAIN(BatchTest)
#include "tst_batch.moc"
