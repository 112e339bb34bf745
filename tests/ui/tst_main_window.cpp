// The library window, offscreen, ingesting for real through the worker
// processes: files added through its slot, a corrupt file, cancel, drop,
// re-ingest, filter, remove, remembered geometry. Every test also measures
// the longest stall of the UI thread's event loop and fails when it reaches
// 100 ms.

#include <QAbstractButton>
#include <QComboBox>
#include <QDir>
#include <QDropEvent>
#include <QElapsedTimer>
#include <QFile>
#include <QFileInfo>
#include <QLabel>
#include <QLineEdit>
#include <QMessageBox>
#include <QMimeData>
#include <QSet>
#include <QSettings>
#include <QSortFilterProxyModel>
#include <QStandardPaths>
#include <QStatusBar>
#include <QTableView>
#include <QTemporaryDir>
#include <QTest>
#include <QTimer>
#include <QUrl>

#include <algorithm>
#include <fstream>
#include <memory>

#include "app/library.h"
#include "ui/library_model.h"
#include "ui/main_window.h"
#include "tests/support/event_loop_stall.h"
#include "tests/support/message_boxes.h"
#include "tests/support/test_documents.h"

using folio::ui::LibraryModel;
using folio::ui::MainWindow;
using folio::ui::RowState;

namespace {

constexpr int kIngestTimeoutMs = 45000;
constexpr qint64 kMaxStallMs = 100;

}  // namespace

class MainWindowTest : public QObject {
    Q_OBJECT

private:
    QTemporaryDir inputs_;
    std::unique_ptr<QTemporaryDir> libraryDir_;
    std::unique_ptr<folio::app::Library> library_;
    std::unique_ptr<MainWindow> window_;
    folio::test::EventLoopStallMeter stalls_;
    qint64 longestStallMs_ = 0, longestGapMs_ = 0;

    void openWindow() {
        folio::ingest::PipelineOptions pipeline;
        pipeline.worker_executable = FOLIO_INGEST_WORKER;
        window_ = std::make_unique<MainWindow>(*library_, pipeline);
        window_->show();
        window_->activateWindow();
        QVERIFY(QTest::qWaitForWindowActive(window_.get()));
    }

    QTableView* table() const { return window_->findChild<QTableView*>("libraryTable"); }
    const QAbstractItemModel* view() const { return table()->model(); }
    const LibraryModel* model() const {
        return static_cast<const LibraryModel*>(static_cast<const QAbstractProxyModel*>(view())->sourceModel());
    }
    QString input(const QString& name) const { return inputs_.filePath(name); }

    QVariant cell(const QString& name, int column, int role = Qt::DisplayRole) const {
        const int row = model()->rowOfPath(input(name));
        return row < 0 ? QVariant() : model()->index(row, column).data(role);
    }
    QString statusOf(const QString& name) const { return cell(name, LibraryModel::StatusColumn).toString(); }
    RowState stateOf(const QString& name) const {
        return static_cast<RowState>(cell(name, LibraryModel::NameColumn, LibraryModel::StateRole).toInt());
    }
    int rowsInState(RowState state) const {
        int n = 0;
        for (int row = 0; row < model()->rowCount(); ++row)
            n += model()->index(row, 0).data(LibraryModel::StateRole).toInt() == static_cast<int>(state);
        return n;
    }
    QMessageBox* visibleMessageBox(const QString& objectName = {}) const {
        return folio::test::visibleMessageBox(*window_, objectName);
    }

private slots:
    void initTestCase() {
        // Settings (window geometry) go to a test location, not the user's,
        // and start empty on every run.
        QStandardPaths::setTestModeEnabled(true);
        QSettings().clear();
        QVERIFY(inputs_.isValid());
        folio::test::write_text_pdf(input("report.pdf"),
                 {"Quarterly revenue grew to 4,512 million dollars, driven by services.",
                  "Operating income was 1,207 million dollars in the fourth quarter."});
        QVERIFY(folio::test::write_file(input("broken.pdf"), "%PDF-1.7\n1 0 obj << /Type /Catalog >>\ngarbage without a trailer"));
        QVERIFY(folio::test::write_file(input("alpha-notes.txt"), "Alpha notes: the audit committee met four times.\n"));
        QVERIFY(folio::test::write_file(input("beta-notes.md"), "# Beta\n\nNet income rose to 812 million dollars.\n"));
        QVERIFY(QDir(inputs_.path()).mkpath("scans"));
        for (int i = 1; i <= 6; ++i)
            QVERIFY(folio::test::write_scan(input(QString("scans/scan-%1.png").arg(i)),
                              QString("Discharge summary %1: the patient reports intermittent chest pain "
                                      "radiating to the left arm; troponin was negative.")
                                  .arg(i)));
        QVERIFY(QDir(inputs_.path()).mkpath("filings"));
        for (int i = 1; i <= 3; ++i) {
            QStringList pages;
            for (int page = 1; page <= 40; ++page)
                pages << QString("Filing %1, page %2: revenue, operating income and cash flow by segment.").arg(i).arg(page);
            folio::test::write_text_pdf(input(QString("filings/filing-%1.pdf").arg(i)), pages);
        }
    }

    void init() {
        libraryDir_ = std::make_unique<QTemporaryDir>();
        QVERIFY(libraryDir_->isValid());
        library_ = std::make_unique<folio::app::Library>(libraryDir_->path().toStdString());
        openWindow();
        stalls_.start();
    }

    void cleanup() {
        stalls_.stop();
        const qint64 stall = stalls_.longestStallMs(), gap = stalls_.longestGapMs();
        longestStallMs_ = std::max(longestStallMs_, stall);
        longestGapMs_ = std::max(longestGapMs_, gap);
        qInfo("longest event-loop stall: %lld ms (longest gap between 10 ms ticks: %lld ms)",
              static_cast<long long>(stall), static_cast<long long>(gap));
        window_.reset();
        library_.reset();
        libraryDir_.reset();
        QVERIFY2(stall < kMaxStallMs, qPrintable(QString("the UI thread stalled for %1 ms").arg(stall)));
    }

    void cleanupTestCase() {
        qInfo("over all tests: longest event-loop stall %lld ms, longest gap between ticks %lld ms",
              static_cast<long long>(longestStallMs_), static_cast<long long>(longestGapMs_));
    }

    void addedPdfShowsIndexed() {
        window_->addPaths({input("report.pdf")});
        QVERIFY(window_->isIngesting());
        QTRY_COMPARE_WITH_TIMEOUT(statusOf("report.pdf"), QString("Indexed"), kIngestTimeoutMs);
        QTRY_VERIFY(!window_->isIngesting());
        QCOMPARE(cell("report.pdf", LibraryModel::PagesColumn).toInt(), 2);
        QCOMPARE(cell("report.pdf", LibraryModel::TypeColumn).toString(), "PDF");
        QVERIFY2(window_->statusBar()->currentMessage().startsWith("Ingest finished"),
                 qPrintable(window_->statusBar()->currentMessage()));
        QVERIFY(!visibleMessageBox("errorBox"));

        const auto stored = library_->store().find_by_path(input("report.pdf").toStdString());
        QVERIFY(stored);
        const auto page = library_->store().page(stored->id, 1);
        QVERIFY(page);
        QVERIFY2(QString::fromStdString(page->text).contains("4,512 million"), page->text.c_str());
    }

    void corruptFileShowsFailedWithReason() {
        window_->addPaths({input("broken.pdf"), input("alpha-notes.txt")});
        QTRY_COMPARE_WITH_TIMEOUT(stateOf("broken.pdf"), RowState::Failed, kIngestTimeoutMs);
        QTRY_COMPARE_WITH_TIMEOUT(statusOf("alpha-notes.txt"), QString("Indexed"), kIngestTimeoutMs);

        const QString reason = cell("broken.pdf", LibraryModel::StatusColumn, Qt::ToolTipRole).toString();
        QVERIFY(!reason.isEmpty());
        QCOMPARE(statusOf("broken.pdf"), "Failed: " + reason);
        QCOMPARE(QString::fromStdString(library_->store().find_by_path(input("broken.pdf").toStdString())->error),
                 reason);

        // Never silent: a dialog names the file and says why.
        QTRY_VERIFY(visibleMessageBox("errorBox"));
        const QString message = visibleMessageBox("errorBox")->text();
        QVERIFY2(message.contains("1 of 2 files could not be ingested"), qPrintable(message));
        QVERIFY2(message.contains("broken.pdf: " + reason), qPrintable(message));
        QVERIFY(window_->statusBar()->currentMessage().contains("1 failed"));
    }

    void escapeCancelsTheIngest() {
        window_->addPaths({input("scans")});
        // Cancel once OCR is under way.
        QTRY_VERIFY_WITH_TIMEOUT(rowsInState(RowState::Ingesting) > 0, kIngestTimeoutMs);
        QElapsedTimer cancelling;
        cancelling.start();
        QTest::keyClick(window_.get(), Qt::Key_Escape);
        QTRY_VERIFY_WITH_TIMEOUT(!window_->isIngesting(), kIngestTimeoutMs);
        qInfo("cancel took %lld ms", static_cast<long long>(cancelling.elapsed()));

        QVERIFY2(window_->statusBar()->currentMessage().startsWith("Ingest cancelled"),
                 qPrintable(window_->statusBar()->currentMessage()));
        QVERIFY2(rowsInState(RowState::Indexed) < 6, "the ingest ran to its end");
        // Nothing is left looking busy, and files never reached are gone.
        QCOMPARE(rowsInState(RowState::Queued) + rowsInState(RowState::Ingesting), 0);
        QCOMPARE(model()->rowCount(), static_cast<int>(library_->store().documents().size()));
        QVERIFY(!window_->findChild<QAction*>("cancelAction")->isEnabled());

        // The cancel is spent: the next ingest runs.
        window_->addPaths({input("report.pdf")});
        QTRY_COMPARE_WITH_TIMEOUT(statusOf("report.pdf"), QString("Indexed"), kIngestTimeoutMs);
    }

    void reingestRetriesAFixedFile() {
        const QString name = "fixed-later.pdf";
        QVERIFY(folio::test::write_file(input(name), "%PDF-1.7\ncut off before its first object"));
        window_->addPaths({input(name)});
        QTRY_COMPARE_WITH_TIMEOUT(stateOf(name), RowState::Failed, kIngestTimeoutMs);
        QTRY_VERIFY(visibleMessageBox("errorBox"));
        visibleMessageBox("errorBox")->close();

        folio::test::write_text_pdf(input(name), {"Restated revenue was 4,498 million dollars."});
        table()->selectRow(0);
        QAction* reingest = window_->findChild<QAction*>("reingestAction");
        QVERIFY(reingest->isEnabled());
        reingest->trigger();
        QTRY_COMPARE_WITH_TIMEOUT(statusOf(name), QString("Indexed"), kIngestTimeoutMs);
        QCOMPARE(cell(name, LibraryModel::PagesColumn).toInt(), 1);
        QCOMPARE(model()->rowCount(), 1);
    }

    void droppedFilesCanBeFilteredAndRemoved() {
        QMimeData mime;
        mime.setUrls({QUrl::fromLocalFile(input("alpha-notes.txt")), QUrl::fromLocalFile(input("beta-notes.md"))});
        QDragEnterEvent enter(QPoint(200, 200), Qt::CopyAction, &mime, Qt::LeftButton, Qt::NoModifier);
        QCoreApplication::sendEvent(window_.get(), &enter);
        QVERIFY(enter.isAccepted());
        QDropEvent drop(QPointF(200, 200), Qt::CopyAction, &mime, Qt::LeftButton, Qt::NoModifier);
        QCoreApplication::sendEvent(window_.get(), &drop);
        QTRY_COMPARE_WITH_TIMEOUT(rowsInState(RowState::Indexed), 2, kIngestTimeoutMs);

        QTest::keyClick(window_.get(), Qt::Key_F, Qt::ControlModifier);
        auto* filter = window_->findChild<QLineEdit*>("filterEdit");
        QTRY_VERIFY(filter->hasFocus());
        QTest::keyClicks(filter, "alpha");
        QCOMPARE(view()->rowCount(), 1);
        QCOMPARE(view()->index(0, LibraryModel::NameColumn).data().toString(), "alpha-notes.txt");

        table()->setFocus();
        table()->selectRow(0);
        QTest::keyClick(table(), Qt::Key_Delete);
        QTRY_VERIFY(window_->findChild<QAbstractButton*>("confirmRemoveButton"));
        QTest::mouseClick(window_->findChild<QAbstractButton*>("confirmRemoveButton"), Qt::LeftButton);
        QTRY_COMPARE(model()->rowCount(), 1);
        QCOMPARE(view()->rowCount(), 0);
        QCOMPARE(library_->store().documents().size(), size_t(1));
        QCOMPARE(QString::fromStdString(library_->store().documents().front().path), input("beta-notes.md"));
        QVERIFY2(QFile::exists(input("alpha-notes.txt")), "removing from the library touched the file");
    }

    // Text-layer PDFs and OCR at once: the worker threads and processes are
    // busy for seconds while the event loop keeps ticking (checked in
    // cleanup()).
    void largeIngestKeepsTheWindowResponsive() {
        QSet<QString> statusesSeen;
        connect(model(), &QAbstractItemModel::dataChanged, this, [&](const QModelIndex& first, const QModelIndex& last) {
            for (int row = first.row(); row <= last.row(); ++row)
                statusesSeen << model()->index(row, LibraryModel::StatusColumn).data().toString().section(' ', 0, 0);
        });
        QElapsedTimer ingest;
        ingest.start();
        window_->addPaths({input("filings"), input("scans/scan-1.png"), input("scans/scan-2.png")});
        QTRY_COMPARE_WITH_TIMEOUT(rowsInState(RowState::Indexed), 5, 2 * kIngestTimeoutMs);
        QTRY_VERIFY(!window_->isIngesting());
        qInfo("ingest of 120 text-layer pages and 2 scans took %lld ms", static_cast<long long>(ingest.elapsed()));
        qInfo() << "statuses shown:" << statusesSeen;

        QCOMPARE(cell("filings/filing-2.pdf", LibraryModel::PagesColumn).toInt(), 40);
        const auto scan = library_->store().find_by_path(input("scans/scan-1.png").toStdString());
        QVERIFY(scan);
        const auto scanPage = library_->store().page(scan->id, 1);
        QVERIFY(scanPage && scanPage->ocr);
        QVERIFY2(QString::fromStdString(scanPage->text).contains("troponin"), scanPage->text.c_str());
        // Page progress reached the table.
        QVERIFY(statusesSeen.contains("Parsing") || statusesSeen.contains("OCR"));
        QVERIFY(!visibleMessageBox("errorBox"));
    }

    // Collections are the folders documents came from, as LocalDocs has
    // them: the combo lists each with its count and shows one at a time.
    void collectionShowsTheDocumentsOfOneFolder() {
        QVERIFY(QDir(inputs_.path()).mkpath("minutes/2023"));
        QVERIFY(folio::test::write_file(input("minutes/board.txt"), "Board minutes: the dividend was approved.\n"));
        QVERIFY(folio::test::write_file(input("minutes/2023/audit.txt"), "Audit committee minutes for 2023.\n"));
        window_->addPaths({input("alpha-notes.txt"), input("minutes")});
        QTRY_COMPARE_WITH_TIMEOUT(rowsInState(RowState::Indexed), 3, kIngestTimeoutMs);
        QTRY_VERIFY(!window_->isIngesting());

        auto* combo = window_->findChild<QComboBox*>("collectionCombo");
        QTRY_COMPARE(combo->count(), 4);  // all, the inputs folder, minutes, minutes/2023
        const int minutes = combo->findData(QFileInfo(input("minutes")).absoluteFilePath());
        QVERIFY(minutes > 0);
        QVERIFY(combo->itemText(minutes).endsWith("(1)"));
        combo->setCurrentIndex(minutes);
        QCOMPARE(view()->rowCount(), 2);  // the folder and the one below it
        QStringList names;
        for (int row = 0; row < view()->rowCount(); ++row)
            names << view()->index(row, LibraryModel::NameColumn).data().toString();
        names.sort();
        QCOMPARE(names, QStringList({"audit.txt", "board.txt"}));
        combo->setCurrentIndex(0);
        QCOMPARE(view()->rowCount(), 3);
    }

    // After an ingest the chunks are embedded in the background; a removal
    // asked for meanwhile runs at once, and the embedding finishes after it.
    void removalDoesNotWaitForTheBackgroundEmbedding() {
        // About 180 chunks: three of the embedder's 64-chunk batches, seconds each here.
        QByteArray notes;
        for (int i = 0; i < 2000; ++i)
            notes += QString("Paragraph %1. The committee reviewed segment %2 results, capital spending of %3 million, "
                             "liquidity, covenants and the outlook for fiscal year %4 in detail.\n\n")
                         .arg(i).arg(i % 7).arg(100 + i).arg(2000 + i % 25).toUtf8();
        QVERIFY(folio::test::write_file(input("long-notes.txt"), notes));
        window_->addPaths({input("report.pdf"), input("long-notes.txt")});
        QTRY_COMPARE_WITH_TIMEOUT(rowsInState(RowState::Indexed), 2, kIngestTimeoutMs);
        QTRY_VERIFY(!window_->isIngesting());
        auto* indexing = window_->findChild<QLabel*>("indexingLabel");
        QTRY_VERIFY2_WITH_TIMEOUT(indexing->isVisible(),
                                  qPrintable(QString("%1 chunks without vectors; status: %2")
                                                 .arg(library_->store().count_chunks_without_vectors())
                                                 .arg(window_->statusBar()->currentMessage())),
                                  kIngestTimeoutMs);

        const int row = model()->rowOfPath(input("report.pdf"));
        table()->setFocus();
        table()->selectRow(static_cast<const QSortFilterProxyModel*>(view())->mapFromSource(model()->index(row, 0)).row());
        QTest::keyClick(table(), Qt::Key_Delete);
        QTRY_VERIFY(window_->findChild<QAbstractButton*>("confirmRemoveButton"));
        QTest::mouseClick(window_->findChild<QAbstractButton*>("confirmRemoveButton"), Qt::LeftButton);
        QTRY_COMPARE_WITH_TIMEOUT(model()->rowCount(), 1, kIngestTimeoutMs);
        QVERIFY2(library_->store().count_chunks_without_vectors() > 0, "the removal waited for the embedding");

        QTRY_VERIFY_WITH_TIMEOUT(!indexing->isVisible() && library_->store().count_chunks_without_vectors() == 0,
                                 4 * kIngestTimeoutMs);
        QVERIFY(library_->has_vectors());
    }

    // A library left with chunks that have no vector (a session closed
    // during the background embedding, or vectors another model made) is
    // embedded in the background when the window opens it.
    void openingALibraryEmbedsWhatItLacks() {
        window_.reset();
        folio::app::IngestRequest request;
        request.paths = {input("alpha-notes.txt").toStdString(), input("beta-notes.md").toStdString()};
        request.pipeline.worker_executable = FOLIO_INGEST_WORKER;
        library_->ingest(request, {});
        QVERIFY(library_->store().count_chunks_without_vectors() > 0);
        openWindow();
        QTRY_VERIFY_WITH_TIMEOUT(library_->store().count_chunks_without_vectors() == 0, kIngestTimeoutMs);
        QVERIFY(library_->has_current_vectors());
    }

    void remembersGeometry() {
        window_->resize(1000, 700);
        window_->close();
        window_.reset();
        openWindow();
        QCOMPARE(window_->size(), QSize(1000, 700));
    }
};

QTEST_MAIN(MainWindowTest)
#include "tst_main_window.moc"
