// The Batch panel, offscreen, with the real AssistantWorker and the
// installed default chat model (SmolLM2; skipped when none is installed):
// a folder of two short clinical notes queued by drag and drop and run into
// an output folder (a row per record, records.jsonl, FHIR files, progress,
// summary), run again (both skipped: the batch resumes), pause, resume and
// cancel, and the error dialogs for bad input.

#include <QAbstractButton>
#include <QCoreApplication>
#include <QDir>
#include <QDragEnterEvent>
#include <QDropEvent>
#include <QFile>
#include <QLabel>
#include <QListWidget>
#include <QMessageBox>
#include <QMimeData>
#include <QProgressBar>
#include <QSignalSpy>
#include <QTemporaryDir>
#include <QTest>
#include <QUrl>

#include <memory>

#include <nlohmann/json.hpp>

#include "engine/model_paths.h"
#include "tests/support/message_boxes.h"
#include "tests/support/test_documents.h"
#include "ui/assistant_worker.h"
#include "ui/batch_panel.h"

using folio::app::BatchOutcome;
using folio::ui::AssistantWorker;
using folio::ui::BatchPanel;
using folio::ui::BatchProgressModel;

namespace {

constexpr int kBatchTimeoutMs = 90000;

constexpr char kNoteA[] =
    "Patient: Maria Lopez, 54-year-old female.\n"
    "Visit date: 2024-03-12.\n"
    "Chief complaint: persistent cough.\n"
    "Medications: lisinopril 10 mg PO daily.\n"
    "Assessment: hypertension (I10).\n";
constexpr char kNoteB[] =
    "Patient: John Park, 61-year-old male.\n"
    "Visit date: 2024-04-02.\n"
    "Chief complaint: knee pain.\n"
    "Medications: ibuprofen 400 mg PO as needed.\n"
    "Assessment: osteoarthritis of the knee.\n";

QList<nlohmann::json> jsonLines(const QString& path) {
    QFile file(path);
    QList<nlohmann::json> lines;
    if (!file.open(QIODevice::ReadOnly)) return lines;
    for (const QByteArray& line : file.readAll().split('\n'))
        if (!line.isEmpty()) lines << nlohmann::json::parse(line.toStdString());
    return lines;
}

QMessageBox* errorBox(const QWidget& parent) { return folio::test::visibleMessageBox(parent, "errorBox"); }

}  // namespace

class BatchPanelTest : public QObject {
    Q_OBJECT

private:
    QTemporaryDir dir_;
    QString modelPath_;
    std::unique_ptr<AssistantWorker> worker_;
    std::unique_ptr<BatchPanel> panel_;

    QAbstractButton* button(const char* name) const { return panel_->findChild<QAbstractButton*>(name); }
    QString notes() const { return dir_.filePath("notes"); }

    void drop(const QStringList& paths) {
        QMimeData mime;
        QList<QUrl> urls;
        for (const QString& path : paths) urls << QUrl::fromLocalFile(path);
        mime.setUrls(urls);
        const QPoint at = panel_->rect().center();
        QDragEnterEvent enter(at, Qt::CopyAction, &mime, Qt::LeftButton, Qt::NoModifier);
        QCoreApplication::sendEvent(panel_.get(), &enter);
        QVERIFY(enter.isAccepted());
        QDropEvent dropEvent(QPointF(at), Qt::CopyAction, &mime, Qt::LeftButton, Qt::NoModifier);
        QCoreApplication::sendEvent(panel_.get(), &dropEvent);
        QVERIFY(dropEvent.isAccepted());
    }

private slots:
    void initTestCase() {
        const std::optional<std::string> model = folio::engine::find_default_model(folio::engine::ModelRole::Chat);
        if (!model)
            QSKIP("no default chat model in the models folder ($FOLIO_MODELS or ~/.local/share/folio/models); "
                  "installer/fetch-models.sh installs SmolLM2");
        modelPath_ = QString::fromStdString(*model);
        QVERIFY(dir_.isValid());
        QVERIFY(QDir().mkpath(notes()));
        QVERIFY(folio::test::write_file(notes() + "/maria-lopez.txt", kNoteA));
        QVERIFY(folio::test::write_file(notes() + "/john-park.txt", kNoteB));
    }

    void init() {
        folio::ui::FolioSettings settings;
        settings.chatModel = modelPath_;
        settings.libraryDirectory = dir_.filePath("library");
        settings.threads = 2;
        folio::ingest::PipelineOptions pipeline;
        pipeline.worker_executable = FOLIO_INGEST_WORKER;
        worker_ = std::make_unique<AssistantWorker>(settings.libraryDirectory, settings, pipeline);
        panel_ = std::make_unique<BatchPanel>(*worker_);
        panel_->resize(900, 600);
        panel_->show();
        QVERIFY(QTest::qWaitForWindowExposed(panel_.get()));
        panel_->setPack("medical");
    }

    void cleanup() {
        panel_.reset();
        worker_.reset();
    }

    void runThenResume() {
        QSignalSpy finished(worker_.get(), &AssistantWorker::batchFinished);
        drop({notes()});
        drop({notes()});  // queued once
        QCOMPARE(panel_->queuedPaths(), QStringList{QDir(notes()).absolutePath()});
        const QString out = dir_.filePath("out");
        panel_->setOutputDirectory(out);
        QTest::mouseClick(button("batchStart"), Qt::LeftButton);
        QVERIFY(panel_->isRunning());
        QVERIFY(button("batchCancel")->isEnabled());
        QVERIFY(!button("batchStart")->isEnabled());
        QTRY_VERIFY_WITH_TIMEOUT(!panel_->isRunning(), kBatchTimeoutMs);
        QVERIFY2(!errorBox(*panel_), errorBox(*panel_) ? qPrintable(errorBox(*panel_)->text()) : "");
        QCOMPARE(finished.count(), 1);

        const BatchProgressModel& rows = panel_->progressModel();
        QCOMPARE(rows.rowCount(), 2);
        QStringList files;
        for (int row = 0; row < 2; ++row) {
            QVERIFY2(rows.items()[row].outcome == BatchOutcome::Done, rows.items()[row].error.c_str());
            QCOMPARE(rows.index(row, BatchProgressModel::OutcomeColumn).data().toString(), QStringLiteral("done"));
            QVERIFY(rows.index(row, BatchProgressModel::GroundedColumn).data().toString().contains("grounded"));
            files << rows.index(row, BatchProgressModel::FileColumn).data().toString();
        }
        files.sort();
        QCOMPARE(files, (QStringList{"john-park.txt", "maria-lopez.txt"}));
        const auto* progress = panel_->findChild<QProgressBar*>("batchProgress");
        QCOMPARE(progress->maximum(), 2);
        QCOMPARE(progress->value(), 2);

        const QList<nlohmann::json> lines = jsonLines(out + "/records.jsonl");
        QCOMPARE(lines.size(), 2);
        for (const nlohmann::json& line : lines) QVERIFY(!line.at("data").is_null());
        QVERIFY(QFile::exists(out + "/records.csv"));
        QCOMPARE(QDir(out + "/fhir").entryList(QDir::Files).size(), 2);

        const QString summary = panel_->findChild<QLabel*>("batchSummary")->text();
        QVERIFY2(summary.contains("2 done, 0 failed, 0 skipped"), qPrintable(summary));
        QVERIFY(panel_->findChild<QLabel*>("batchOutputLabel")->text().contains(QDir::toNativeSeparators(out)));
        QVERIFY(button("batchOpenOutput")->isEnabled());

        // Again into the same folder: the batch resumes, so both are skipped.
        QTest::mouseClick(button("batchStart"), Qt::LeftButton);
        QTRY_VERIFY_WITH_TIMEOUT(!panel_->isRunning(), kBatchTimeoutMs);
        QCOMPARE(rows.rowCount(), 2);
        QVERIFY(rows.items()[0].outcome == BatchOutcome::Skipped);
        QVERIFY(rows.items()[1].outcome == BatchOutcome::Skipped);
        QVERIFY(panel_->findChild<QLabel*>("batchSummary")->text().contains("0 done, 0 failed, 2 skipped"));
        QCOMPARE(jsonLines(out + "/records.jsonl").size(), 2);
    }

    void pauseResumeCancel() {
        QSignalSpy started(worker_.get(), &AssistantWorker::batchStarted);
        QSignalSpy finished(worker_.get(), &AssistantWorker::batchFinished);
        panel_->addPaths({notes() + "/maria-lopez.txt", notes() + "/john-park.txt"});
        const QString out = dir_.filePath("out-cancelled");
        panel_->setOutputDirectory(out);
        QTest::mouseClick(button("batchStart"), Qt::LeftButton);
        QTest::mouseClick(button("batchPause"), Qt::LeftButton);
        QVERIFY(panel_->isPaused());
        QCOMPARE(button("batchPause")->text(), QStringLiteral("&Resume"));
        QTRY_COMPARE_WITH_TIMEOUT(started.count(), 1, kBatchTimeoutMs);
        // Paused before its first record: nothing is extracted meanwhile.
        QTest::qWait(1500);
        QCOMPARE(panel_->progressModel().rowCount(), 0);
        QVERIFY(panel_->isRunning());

        QTest::mouseClick(button("batchPause"), Qt::LeftButton);
        QVERIFY(!panel_->isPaused());
        QTRY_VERIFY_WITH_TIMEOUT(panel_->progressModel().rowCount() >= 1, kBatchTimeoutMs);
        QTest::mouseClick(button("batchCancel"), Qt::LeftButton);
        QVERIFY(!button("batchCancel")->isEnabled());
        QTRY_VERIFY_WITH_TIMEOUT(!panel_->isRunning(), kBatchTimeoutMs);
        QCOMPARE(finished.count(), 1);
        QVERIFY(finished.first().at(1).value<folio::app::BatchReport>().cancelled);
        QVERIFY(panel_->findChild<QLabel*>("batchSummary")->text().startsWith("Cancelled"));
        QVERIFY(jsonLines(out + "/records.jsonl").size() < 2);
        QVERIFY(!panel_->isPaused());
        QVERIFY(button("batchStart")->isEnabled());
    }

    void badInputShowsErrors() {
        panel_->setOutputDirectory(dir_.filePath("out-bad"));
        panel_->start();
        QVERIFY(errorBox(*panel_));
        QVERIFY(!panel_->isRunning());
        errorBox(*panel_)->close();

        panel_->addPaths({notes()});
        QVERIFY(folio::test::write_file(dir_.filePath("a-file"), "x"));
        panel_->setOutputDirectory(dir_.filePath("a-file"));
        QTest::mouseClick(button("batchStart"), Qt::LeftButton);
        QVERIFY(errorBox(*panel_));
        QVERIFY(errorBox(*panel_)->text().contains("is a file"));
        QVERIFY(!panel_->isRunning());
        errorBox(*panel_)->close();

        panel_->findChild<QListWidget*>("batchQueue")->selectAll();
        QTest::mouseClick(button("batchRemove"), Qt::LeftButton);
        QVERIFY(panel_->queuedPaths().isEmpty());
        QVERIFY(!button("batchStart")->isEnabled());
    }
};

QTEST_MAIN(BatchPanelTest)
#include "tst_batch_panel.moc"
