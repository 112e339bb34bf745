// The Extract panel, offscreen, with the real AssistantWorker and the
// installed default chat model (SmolLM2; skipped when none is installed)
// over a library holding one short clinical note: an extraction clicked
// through the panel, its rows, a value corrected in the view's editor, the
// CSV / JSON lines / FHIR exports against app/record_output.h and app/fhir.h
// over the record the worker sent, a source opened by double-click, Stop,
// and the error dialogs for bad input.

#include <QAbstractButton>
#include <QFile>
#include <QLineEdit>
#include <QMessageBox>
#include <QProgressBar>
#include <QSignalSpy>
#include <QTemporaryDir>
#include <QTest>
#include <QTreeView>

#include <memory>

#include "app/fhir.h"
#include "app/library.h"
#include "app/packs.h"
#include "app/record_output.h"
#include "engine/model_paths.h"
#include "tests/support/message_boxes.h"
#include "ui/assistant_worker.h"
#include "ui/extract_panel.h"
#include "ui/extraction_model.h"

using folio::app::ExtractionRecord;
using folio::ui::AssistantWorker;
using folio::ui::ExtractionModel;
using folio::ui::ExtractPanel;

namespace {

constexpr int kExtractTimeoutMs = 90000;

// Short, so that SmolLM2 on two shared cores writes its record in seconds.
constexpr char kNote[] =
    "Patient: Maria Lopez, 54-year-old female.\n"
    "Visit date: 2024-03-12.\n"
    "Chief complaint: persistent cough.\n"
    "Medications: lisinopril 10 mg PO daily.\n"
    "Allergies: penicillin.\n"
    "Assessment: hypertension (I10).\n"
    "Plan: chest X-ray.\n";

QByteArray readAll(const QString& path) {
    QFile file(path);
    return file.open(QIODevice::ReadOnly) ? file.readAll() : QByteArray();
}

QMessageBox* errorBox(const QWidget& parent) { return folio::test::visibleMessageBox(parent, "errorBox"); }

}  // namespace

class ExtractPanelTest : public QObject {
    Q_OBJECT

private:
    QTemporaryDir dir_;
    QString modelPath_;
    qint64 docId_ = 0;
    QString sha256_;
    std::unique_ptr<AssistantWorker> worker_;
    std::unique_ptr<ExtractPanel> panel_;

    QTreeView* view() const { return panel_->findChild<QTreeView*>("extractionView"); }
    QAbstractButton* button(const char* name) const { return panel_->findChild<QAbstractButton*>(name); }

    void closeErrorBox() {
        if (QMessageBox* box = errorBox(*panel_)) box->close();
    }

private slots:
    void initTestCase() {
        const std::optional<std::string> model = folio::engine::find_default_model(folio::engine::ModelRole::Chat);
        if (!model)
            QSKIP("no default chat model in the models folder ($FOLIO_MODELS or ~/.local/share/folio/models); "
                  "installer/fetch-models.sh installs SmolLM2");
        modelPath_ = QString::fromStdString(*model);
        QVERIFY(dir_.isValid());
        QFile note(dir_.filePath("maria-lopez.txt"));
        QVERIFY(note.open(QIODevice::WriteOnly) && note.write(kNote) == qint64(sizeof kNote - 1));
        note.close();

        folio::app::Library library(dir_.filePath("library").toStdString());
        folio::app::IngestRequest request{.paths = {note.fileName().toStdString()}};
        request.pipeline.worker_executable = FOLIO_INGEST_WORKER;
        const folio::app::IngestReport report = library.ingest(request);
        QCOMPARE(report.files.size(), std::size_t(1));
        QVERIFY2(report.files[0].doc_id > 0, report.files[0].error.c_str());
        docId_ = report.files[0].doc_id;
        sha256_ = QString::fromStdString(library.store().document(docId_)->sha256);
    }

    void init() {
        folio::ui::FolioSettings settings;
        settings.chatModel = modelPath_;
        settings.libraryDirectory = dir_.filePath("library");
        settings.threads = 2;
        worker_ = std::make_unique<AssistantWorker>(settings.libraryDirectory, settings);
        panel_ = std::make_unique<ExtractPanel>(*worker_);
        panel_->resize(1000, 600);
        panel_->show();
        QVERIFY(QTest::qWaitForWindowExposed(panel_.get()));
    }

    void cleanup() {
        panel_.reset();
        worker_.reset();
    }

    void extractEditExportAndOpenSource() {
        QSignalSpy records(worker_.get(), &AssistantWorker::recordReady);
        QSignalSpy sources(panel_.get(), &ExtractPanel::sourceRequested);
        QVERIFY(!button("extractButton")->isEnabled());
        panel_->setSelectedDocuments({docId_}, {"maria-lopez.txt"}, {sha256_});
        panel_->setPack("medical");
        QVERIFY(button("extractButton")->isEnabled());
        QVERIFY(!button("exportCsvButton")->isEnabled());
        QTest::mouseClick(button("extractButton"), Qt::LeftButton);
        QVERIFY(panel_->isExtracting());
        QVERIFY(button("extractStopButton")->isEnabled());
        QTRY_VERIFY_WITH_TIMEOUT(!panel_->isExtracting(), kExtractTimeoutMs);
        QVERIFY2(!errorBox(*panel_), errorBox(*panel_) ? qPrintable(errorBox(*panel_)->text()) : "");
        QCOMPARE(records.count(), 1);
        const ExtractionRecord record = records.first().at(1).value<ExtractionRecord>();
        QVERIFY2(!record.data.is_null(), record.error.c_str());

        const ExtractionModel& model = panel_->model();
        QCOMPARE(model.recordCount(), 1);
        QCOMPARE(model.rowCount(model.index(0, 0)), int(record.values.size()));
        QVERIFY(record.grounded > 0);
        const auto* progress = panel_->findChild<QProgressBar*>("extractProgress");
        QCOMPARE(progress->value(), 1);
        QCOMPARE(progress->maximum(), 1);

        // The exports are what the CLI writes for the record the worker sent.
        const folio::app::PackContent pack = folio::app::load_pack("medical");
        const folio::app::JsonSchema schema = folio::app::JsonSchema::parse(pack.schema);
        const nlohmann::json line = folio::app::record_json(record);
        QVERIFY(button("exportCsvButton")->isEnabled());
        QVERIFY(button("exportFhirButton")->isEnabled());
        QVERIFY(panel_->exportTo(ExtractPanel::ExportFormat::Csv, dir_.filePath("out.csv")));
        QCOMPARE(readAll(dir_.filePath("out.csv")).toStdString(),
                 folio::app::csv_header(schema) + folio::app::csv_row(schema, line));
        QVERIFY(panel_->exportTo(ExtractPanel::ExportFormat::JsonLines, dir_.filePath("out.jsonl")));
        QCOMPARE(readAll(dir_.filePath("out.jsonl")).toStdString(),
                 line.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) + "\n");
        QVERIFY(panel_->exportTo(ExtractPanel::ExportFormat::Fhir, dir_.filePath("out.ndjson")));
        QCOMPARE(readAll(dir_.filePath("out.ndjson")).toStdString(),
                 folio::app::fhir_bundle(record.data, sha256_.toStdString()).dump() + "\n");

        // Correct a string value through the view's editor; the CSV then has the correction.
        // A free-text field long enough for the correction (not a date, an enum or a code).
        int row = -1;
        for (std::size_t i = 0; i < record.values.size() && row < 0; ++i) {
            const std::string& pointer = record.values[i].pointer;
            if (record.values[i].value.is_string() &&
                (pointer == "/patient/name" || pointer == "/chief_complaint" || pointer.ends_with("/name") ||
                 pointer.ends_with("/description") || pointer.starts_with("/plan/")))
                row = static_cast<int>(i);
        }
        QVERIFY2(row >= 0, line.dump().c_str());
        const QModelIndex value = model.index(row, ExtractionModel::ValueColumn, model.index(0, 0));
        view()->setCurrentIndex(value);
        view()->edit(value);
        auto* editor = view()->findChild<QLineEdit*>();
        QVERIFY(editor);
        editor->selectAll();
        QTest::keyClicks(editor, "Corrected Text");
        QTest::keyClick(editor, Qt::Key_Return);
        QTRY_COMPARE(value.data().toString(), QStringLiteral("Corrected Text"));
        QVERIFY(value.data(ExtractionModel::CorrectedRole).toBool());
        ExtractionRecord corrected = record;
        corrected.data[nlohmann::json::json_pointer(record.values[row].pointer)] = "Corrected Text";
        QVERIFY(panel_->exportTo(ExtractPanel::ExportFormat::Csv, dir_.filePath("corrected.csv")));
        QCOMPARE(readAll(dir_.filePath("corrected.csv")).toStdString(),
                 folio::app::csv_header(schema) + folio::app::csv_row(schema, folio::app::record_json(corrected)));

        // Approving the record through its check box; "Approved only" then exports it.
        panel_->findChild<QAbstractButton*>("exportApprovedOnly")->setChecked(true);
        QVERIFY(panel_->exportTo(ExtractPanel::ExportFormat::JsonLines, dir_.filePath("approved.jsonl")));
        QCOMPARE(readAll(dir_.filePath("approved.jsonl")), QByteArray());
        view()->setCurrentIndex(model.index(0, 0));
        QTest::keyClick(view(), Qt::Key_Space);  // toggles the current item's check box
        QVERIFY(panel_->model().isApproved(0));
        QVERIFY(panel_->exportTo(ExtractPanel::ExportFormat::JsonLines, dir_.filePath("approved.jsonl")));
        QVERIFY(!readAll(dir_.filePath("approved.jsonl")).isEmpty());

        // Double-clicking a grounded value's source asks for its page and span.
        int grounded = -1;
        for (std::size_t i = 0; i < record.values.size() && grounded < 0; ++i)
            if (record.values[i].grounded) grounded = static_cast<int>(i);
        const QModelIndex source = model.index(grounded, ExtractionModel::SourceColumn, model.index(0, 0));
        view()->scrollTo(source);
        const QPoint centre = view()->visualRect(source).center();
        QTest::mouseClick(view()->viewport(), Qt::LeftButton, {}, centre);
        QTest::mouseDClick(view()->viewport(), Qt::LeftButton, {}, centre);
        QCOMPARE(sources.count(), 1);
        const folio::app::ExtractedValue& expected = record.values[grounded];
        QCOMPARE(sources.first().at(0).toLongLong(), docId_);
        QCOMPARE(sources.first().at(1).toInt(), expected.page);
        QCOMPARE(sources.first().at(2).toULongLong(), qulonglong(expected.begin));
        QCOMPARE(sources.first().at(3).toULongLong(), qulonglong(expected.end));
        QVERIFY(button("openSourceButton")->isEnabled());
        QTest::mouseClick(button("openSourceButton"), Qt::LeftButton);
        QCOMPARE(sources.count(), 2);
    }

    void stop() {
        QSignalSpy started(worker_.get(), &AssistantWorker::extractionStarted);
        QSignalSpy finished(worker_.get(), &AssistantWorker::extractionFinished);
        QSignalSpy jobs(worker_.get(), &AssistantWorker::jobFinished);
        panel_->setSelectedDocuments({docId_, docId_, docId_}, {"a", "b", "c"});
        panel_->setPack("medical");
        QTest::mouseClick(button("extractButton"), Qt::LeftButton);
        QVERIFY(panel_->isExtracting());
        // Once the model is writing, Stop must end the job before three records.
        QTRY_COMPARE_WITH_TIMEOUT(started.count(), 1, kExtractTimeoutMs);
        QTest::mouseClick(button("extractStopButton"), Qt::LeftButton);
        QTRY_VERIFY_WITH_TIMEOUT(!panel_->isExtracting(), kExtractTimeoutMs);
        QCOMPARE(jobs.count(), 1);
        QVERIFY(panel_->model().recordCount() < 3);
        if (finished.count() == 1) QVERIFY(finished.first().at(1).toBool());
        QVERIFY(button("extractButton")->isEnabled());
    }

    void badInputShowsErrors() {
        // No documents selected.
        panel_->extract();
        QVERIFY(errorBox(*panel_));
        QVERIFY(!panel_->isExtracting());
        closeErrorBox();

        QFile bad(dir_.filePath("bad.schema.json"));
        QVERIFY(bad.open(QIODevice::WriteOnly));
        bad.write(R"({"type": "object", "properties": {"x": {"type": "string", "frobnicate": true}}})");
        bad.close();
        QVERIFY(!panel_->useSchemaFile(bad.fileName()));
        QVERIFY(errorBox(*panel_));
        QVERIFY2(errorBox(*panel_)->text().contains("frobnicate"), qPrintable(errorBox(*panel_)->text()));
        closeErrorBox();
        QVERIFY(!panel_->useSchemaFile(dir_.filePath("missing.json")));
        QVERIFY(errorBox(*panel_));
        closeErrorBox();

        QFile good(dir_.filePath("good.schema.json"));
        QVERIFY(good.open(QIODevice::WriteOnly));
        good.write(R"({"type": "object", "properties": {"name": {"type": "string"}}, "required": ["name"]})");
        good.close();
        QVERIFY(panel_->useSchemaFile(good.fileName()));
        QVERIFY(!errorBox(*panel_));

        // An export that cannot be written.
        QVERIFY(!panel_->exportTo(ExtractPanel::ExportFormat::Csv, dir_.filePath("no/such/folder/out.csv")));
        QVERIFY(errorBox(*panel_));
        QVERIFY(errorBox(*panel_)->text().contains("no/such/folder"));
        closeErrorBox();
    }
};

QTEST_MAIN(ExtractPanelTest)
#include "tst_extract_panel.moc"
