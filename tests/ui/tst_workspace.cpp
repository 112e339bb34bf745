// The whole window as an analyst uses it: a filing ingested through the
// library view, a question asked with the default model, a citation clicked
// and the viewer showing that page with the quoted span highlighted; the
// longest UI-thread stall measured while the model writes and the viewer
// renders.

#include <QAbstractProxyModel>
#include <QCheckBox>
#include <QDir>
#include <QElapsedTimer>
#include <QLineEdit>
#include <QMessageBox>
#include <QPushButton>
#include <QSettings>
#include <QStandardPaths>
#include <QTabWidget>
#include <QTableView>
#include <QTemporaryDir>
#include <QTest>
#include <QTextBrowser>

#include <memory>

#include "app/library.h"
#include "engine/model_paths.h"
#include "tests/support/event_loop_stall.h"
#include "tests/support/test_documents.h"
#include "tests/support/text_browser_links.h"
#include "ui/ask_panel.h"
#include "ui/document_viewer.h"
#include "ui/library_model.h"
#include "ui/main_window.h"
#include "ui/settings_dialog.h"

using folio::ui::LibraryModel;
using folio::ui::MainWindow;

namespace {

constexpr qint64 kMaxStallMs = 100;

}  // namespace

class WorkspaceTest : public QObject {
    Q_OBJECT

private slots:
    void initTestCase() {
        QStandardPaths::setTestModeEnabled(true);
        QSettings().clear();
        const auto model = folio::engine::find_default_model(folio::engine::ModelRole::Chat);
        QVERIFY2(model, "no chat model installed: run installer/fetch-models.sh (CI must have it)");
        settings_.chatModel = QString::fromStdString(*model);
        QVERIFY(libraryDir_.isValid());
        // Written here, not in the test that ingests it: rendering a 300 DPI
        // page on the UI thread would count as the window's stall.
        QVERIFY(folio::test::write_scan(chineseScan_.filePath("chinese-note.png"), QString::fromUtf8("财务报告 收入增长")));
        library_ = std::make_unique<folio::app::Library>(libraryDir_.path().toStdString());
        folio::ingest::PipelineOptions pipeline;
        pipeline.worker_executable = FOLIO_INGEST_WORKER;
        window_ = std::make_unique<MainWindow>(*library_, pipeline, settings_);
        window_->resize(1440, 900);
        window_->show();
        QVERIFY(QTest::qWaitForWindowExposed(window_.get()));
    }

    void cleanupTestCase() {
        qInfo("longest event-loop stall over the suite: %lld ms (longest gap between 10 ms ticks: %lld ms)",
              static_cast<long long>(longestStallMs_), static_cast<long long>(longestGapMs_));
        window_.reset();
        library_.reset();
    }

    void init() { stalls_.start(); }

    void cleanup() {
        stalls_.stop();
        const qint64 stall = stalls_.longestStallMs();
        longestStallMs_ = std::max(longestStallMs_, stall);
        longestGapMs_ = std::max(longestGapMs_, stalls_.longestGapMs());
        qInfo("longest event-loop stall: %lld ms", static_cast<long long>(stall));
        QVERIFY2(stall < kMaxStallMs, qPrintable(QString("the UI thread stalled for %1 ms").arg(stall)));
    }

    void ingestedFilingOpensInTheViewer() {
        window_->addPaths({FOLIO_TEST_DATA "/chunker/apple_2021_10k_p20-24.pdf"});
        auto* table = window_->findChild<QTableView*>("libraryTable");
        QTRY_VERIFY_WITH_TIMEOUT(!window_->isIngesting(), 120000);
        QCOMPARE(table->model()->rowCount(), 1);
        const QModelIndex name = table->model()->index(0, LibraryModel::NameColumn);
        QCOMPARE(name.data(LibraryModel::StateRole).toInt(), static_cast<int>(folio::ui::RowState::Indexed));
        docId_ = name.data(LibraryModel::DocumentIdRole).toLongLong();
        QTRY_VERIFY_WITH_TIMEOUT(library_->has_vectors(), 60000);

        QTest::mouseClick(table->viewport(), Qt::LeftButton, {}, table->visualRect(name).center());
        folio::ui::DocumentViewer* viewer = window_->viewer();
        QTRY_COMPARE(viewer->documentId(), docId_);
        QCOMPARE(viewer->pageCount(), 5);
        QTRY_VERIFY(!viewer->pageImage().isNull());
    }

    void citationOpensThePageWithTheSpanHighlighted() {
        QVERIFY(docId_ > 0);
        auto* tabs = window_->findChild<QTabWidget*>("workspaceTabs");
        QTest::keyClick(window_.get(), Qt::Key_2, Qt::AltModifier);
        QCOMPARE(tabs->currentIndex(), int(MainWindow::AskTab));
        auto* panel = window_->findChild<folio::ui::AskPanel*>("askPanel");
        auto* question = panel->findChild<QLineEdit*>("question");
        QTest::keyClicks(question, "What were total net sales in 2021?");
        QTest::keyClick(question, Qt::Key_Return);
        QVERIFY(panel->isAnswering());
        QTRY_VERIFY_WITH_TIMEOUT(!panel->isAnswering(), 180000);
        QCOMPARE(panel->answers().size(), std::size_t{1});
        const folio::app::Answer& answer = panel->answers().front();
        QVERIFY2(!answer.citations.empty(), answer.model_text.c_str());

        // Away from the cited page first, so that the click has to bring it.
        folio::ui::DocumentViewer* viewer = window_->viewer();
        QString href;
        auto* transcript = panel->findChild<QTextBrowser*>("transcript");
        QVERIFY(folio::test::linkRect(transcript, "cite:0/", &href).isValid());
        const QStringList parts = href.mid(5).split('/');
        const folio::app::Citation* citation = nullptr;
        for (const folio::app::Citation& c : answer.citations)
            if (c.number == parts[1].toInt() && (!citation || c.sentence == parts[2].toInt())) citation = &c;
        QVERIFY(citation);
        viewer->showPage(citation->page == 1 ? 2 : 1);
        QVERIFY(viewer->highlightBoxes().isEmpty());

        QVERIFY(folio::test::clickLink(transcript, "cite:0/"));
        QTRY_COMPARE(viewer->documentId(), citation->doc_id);
        QTRY_COMPARE(viewer->currentPage(), citation->page);
        QVERIFY2(!viewer->highlightBoxes().isEmpty(), citation->quote.c_str());
        // The boxes lie on the page.
        for (const QRectF& box : viewer->highlightBoxes())
            QVERIFY(box.left() >= 0 && box.top() >= 0 && box.right() <= 612 + 1 && box.bottom() <= 792 + 1);
        QTRY_VERIFY(!viewer->isRendering());
    }

    // The responsiveness measure on a real corpus: set
    // FOLIO_UI_STALL_CORPUS to a folder (the finance filings) to ingest it
    // through the window, open its longest document and search it, with
    // the stall checked in cleanup(). Skipped when unset: CI has no corpus.
    void corpusIngestKeepsTheWindowResponsive() {
        const QString corpus = qEnvironmentVariable("FOLIO_UI_STALL_CORPUS");
        if (corpus.isEmpty()) QSKIP("FOLIO_UI_STALL_CORPUS is not set");
        QTemporaryDir libraryDir;
        folio::app::Library library(libraryDir.path().toStdString());
        folio::ingest::PipelineOptions pipeline;
        pipeline.worker_executable = FOLIO_INGEST_WORKER;
        MainWindow window(library, pipeline, settings_);
        window.resize(1440, 900);
        window.show();
        QVERIFY(QTest::qWaitForWindowExposed(&window));
        QElapsedTimer clock;
        clock.start();
        window.addPaths({corpus});
        QTRY_VERIFY_WITH_TIMEOUT(!window.isIngesting(), 3600000);
        auto* indexing = window.findChild<QWidget*>("indexingLabel");
        QTRY_VERIFY_WITH_TIMEOUT(!indexing->isVisible() && library.store().count_chunks_without_vectors() == 0, 3600000);
        qInfo("ingested and embedded %s in %.0f s", qPrintable(corpus), clock.elapsed() / 1000.0);

        auto* table = window.findChild<QTableView*>("libraryTable");
        int longest = 0;
        for (int row = 1; row < table->model()->rowCount(); ++row)
            if (table->model()->index(row, LibraryModel::PagesColumn).data().toInt() >
                table->model()->index(longest, LibraryModel::PagesColumn).data().toInt())
                longest = row;
        const QModelIndex name = table->model()->index(longest, LibraryModel::NameColumn);
        clock.restart();
        QTest::mouseClick(table->viewport(), Qt::LeftButton, {}, table->visualRect(name).center());
        QTRY_VERIFY_WITH_TIMEOUT(!window.viewer()->pageImage().isNull(), 60000);
        qInfo("opened %s (%d pages) in %lld ms", qPrintable(name.data().toString()), window.viewer()->pageCount(),
              static_cast<long long>(clock.elapsed()));
        window.viewer()->openFindBar();
        QTest::keyClicks(window.viewer()->findChild<QLineEdit*>("findEdit"), "net sales");
        QTest::qWait(500);
    }

    void settingsActionOpensTheDialog() {
        QTest::keyClick(window_.get(), Qt::Key_Comma, Qt::ControlModifier);
        QWidget* dialog = nullptr;
        QTRY_VERIFY((dialog = window_->findChild<QWidget*>("settingsDialog")) && dialog->isVisible());
        dialog->close();
    }

    // Settings take effect without a restart: Chinese ticked in the OCR
    // languages, the next scan is read with it.
    void settingsChangeTheOcrLanguagesOfTheNextIngest() {
        window_->showSettings();
        folio::ui::SettingsDialog* dialog = nullptr;
        QTRY_VERIFY((dialog = window_->findChild<folio::ui::SettingsDialog*>("settingsDialog")) && dialog->isVisible());
        QTRY_VERIFY_WITH_TIMEOUT(dialog->probesDone(), 30000);
        auto* chinese = dialog->findChild<QCheckBox*>("ocrLanguage_chi_sim");
        QVERIFY(chinese && !chinese->isChecked());
        QTest::mouseClick(chinese, Qt::LeftButton, {}, QPoint(5, chinese->height() / 2));
        QVERIFY(chinese->isChecked());
        QTest::mouseClick(dialog->findChild<QPushButton*>("settingsOkButton"), Qt::LeftButton);
        QTRY_VERIFY(!window_->findChild<folio::ui::SettingsDialog*>("settingsDialog"));
        QCOMPARE(QSettings().value("settings/ocrLanguages").toString(), QString("eng+chi_sim"));

        const QString scan = chineseScan_.filePath("chinese-note.png");
        window_->addPaths({scan});
        QTRY_VERIFY_WITH_TIMEOUT(!window_->isIngesting(), 120000);
        const auto doc = library_->store().find_by_path(scan.toStdString());
        QVERIFY(doc);
        const auto page = library_->store().page(doc->id, 1);
        QVERIFY(page && page->ocr);
        QVERIFY2(QString::fromStdString(page->text).contains(QString::fromUtf8("财务报告")), page->text.c_str());
    }

    void shortcutsAreListedFromTheActions() {
        // Shortcuts go to the active window; offscreen, no window manager
        // gives it back after an earlier test's dialog.
        window_->activateWindow();
        QVERIFY(QTest::qWaitForWindowActive(window_.get()));
        QTest::keyClick(window_.get(), Qt::Key_F1);
        QMessageBox* box = nullptr;
        QTRY_VERIFY((box = window_->findChild<QMessageBox*>("shortcutsBox")) && box->isVisible());
        for (const char* expected : {"Ctrl+O", "Add Files", "Ctrl+,", "Settings", "Find in the document", "Alt+1"})
            QVERIFY2(box->text().contains(expected), expected);
        box->close();
    }

private:
    QTemporaryDir libraryDir_, chineseScan_;
    folio::ui::FolioSettings settings_;
    std::unique_ptr<folio::app::Library> library_;
    std::unique_ptr<MainWindow> window_;
    folio::test::EventLoopStallMeter stalls_;
    qint64 longestStallMs_ = 0, longestGapMs_ = 0;
    qint64 docId_ = 0;
};

QTEST_MAIN(WorkspaceTest)
#include "tst_workspace.moc"
