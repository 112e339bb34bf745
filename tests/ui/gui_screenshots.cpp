// Takes the README's screenshots: the real window at 1440×900 over the
// bundled samples, each main view after doing its job with the default
// models. Run by tools/gui_screenshots.sh under Xvfb; not a test.
//
//   gui_screenshots OUTDIR

#include <QApplication>
#include <QDir>
#include <QElapsedTimer>
#include <QLineEdit>
#include <QPushButton>
#include <QSettings>
#include <QStandardPaths>
#include <QTabWidget>
#include <QTableView>
#include <QTemporaryDir>
#include <QTest>
#include <QTextBrowser>
#include <QTreeView>

#include <cstdio>
#include <functional>
#include <memory>

#include "app/library.h"
#include "engine/model_paths.h"
#include "tests/support/text_browser_links.h"
#include "ui/ask_panel.h"
#include "ui/batch_panel.h"
#include "ui/document_viewer.h"
#include "ui/extract_panel.h"
#include "ui/extraction_model.h"
#include "ui/library_model.h"
#include "ui/main_window.h"
#include "ui/summary_panel.h"

namespace {

[[noreturn]] void fail(const QString& what) {
    std::fprintf(stderr, "gui_screenshots: error: %s\n", qPrintable(what));
    std::exit(1);
}

// Runs the event loop until `done` or the timeout; false on timeout.
bool waitFor(const std::function<bool()>& done, int timeoutMs) {
    QElapsedTimer clock;
    clock.start();
    while (!done()) {
        if (clock.elapsed() > timeoutMs) return false;
        QTest::qWait(50);
    }
    return true;
}

void save(QWidget* widget, const QString& path) {
    QTest::qWait(300);  // the last repaint, and the viewer's render
    if (!widget->grab().save(path)) fail("cannot write " + path);
    std::printf("wrote %s\n", qPrintable(path));
}

}  // namespace

int main(int argc, char** argv) {
    QApplication application(argc, argv);
    QApplication::setOrganizationName(QStringLiteral("Folio"));
    QApplication::setApplicationName(QStringLiteral("Folio"));
    if (argc != 2) fail("usage: gui_screenshots OUTDIR");
    const QString out = QString::fromLocal8Bit(argv[1]);
    if (!QDir().mkpath(out)) fail("cannot create " + out);
    QStandardPaths::setTestModeEnabled(true);
    QSettings().clear();

    folio::ui::FolioSettings settings;
    const auto model = folio::engine::find_default_model(folio::engine::ModelRole::Chat);
    if (!model) fail("no chat model installed: run installer/fetch-models.sh");
    settings.chatModel = QString::fromStdString(*model);
    QTemporaryDir work;
    folio::app::Library library((work.path() + "/library").toStdString());
    folio::ingest::PipelineOptions pipeline;
    pipeline.worker_executable = FOLIO_INGEST_WORKER;
    folio::ui::MainWindow window(library, pipeline, settings);
    window.resize(1440, 900);
    window.show();
    if (!QTest::qWaitForWindowExposed(&window)) fail("the window did not show");
    auto* tabs = window.findChild<QTabWidget*>("workspaceTabs");
    auto* table = window.findChild<QTableView*>("libraryTable");
    folio::ui::DocumentViewer* viewer = window.viewer();

    const QString samples = QStringLiteral(FOLIO_SOURCE_DIR "/samples");
    window.addPaths({samples});
    if (!waitFor([&] { return !window.isIngesting() && table->model()->rowCount() == 2; }, 300000))
        fail("the samples were not ingested");
    waitFor([&] { return library.has_vectors(); }, 120000);
    qint64 filing = 0;
    int filingRow = 0, noteRow = 0;
    for (int row = 0; row < table->model()->rowCount(); ++row) {
        const QModelIndex name = table->model()->index(row, folio::ui::LibraryModel::NameColumn);
        const qint64 id = name.data(folio::ui::LibraryModel::DocumentIdRole).toLongLong();
        if (name.data().toString().contains("apple")) filing = id, filingRow = row;
        else noteRow = row;
    }
    table->selectRow(filingRow);
    waitFor([&] { return viewer->documentId() == filing && !viewer->isRendering(); }, 30000);
    viewer->showPage(4);
    waitFor([&] { return !viewer->isRendering(); }, 30000);
    save(&window, out + "/library.png");

    // Ask, and follow the first citation to its page.
    tabs->setCurrentIndex(folio::ui::MainWindow::AskTab);
    auto* ask = window.findChild<folio::ui::AskPanel*>("askPanel");
    ask->ask(QStringLiteral("What were total net sales in 2021?"));
    if (!waitFor([&] { return !ask->isAnswering(); }, 300000)) fail("no answer");
    auto* transcript = ask->findChild<QTextBrowser*>("transcript");
    if (!folio::test::clickLink(transcript, QStringLiteral("cite:0/"))) fail("the answer cites nothing");
    waitFor([&] { return !viewer->highlightBoxes().isEmpty() && !viewer->isRendering(); }, 30000);
    save(&window, out + "/ask.png");

    tabs->setCurrentIndex(folio::ui::MainWindow::SummaryTab);
    auto* summary = window.findChild<folio::ui::SummaryPanel*>("summaryPanel");
    summary->setPack(QStringLiteral("finance"));
    summary->summarize();
    if (!waitFor([&] { return !summary->isSummarizing(); }, 600000)) fail("no summary");
    save(&window, out + "/summary.png");

    // Extract the scanned note's fields and show where one came from.
    table->selectRow(noteRow);
    tabs->setCurrentIndex(folio::ui::MainWindow::ExtractTab);
    auto* extract = window.findChild<folio::ui::ExtractPanel*>("extractPanel");
    extract->setPack(QStringLiteral("medical"));
    extract->extract();
    if (!waitFor([&] { return !extract->isExtracting(); }, 600000)) fail("no extraction");
    auto* values = extract->findChild<QTreeView*>("extractionView");
    values->expandAll();
    for (int row = 0; row < extract->model().rowCount(extract->model().index(0, 0)); ++row) {
        const QModelIndex value = extract->model().index(row, 0, extract->model().index(0, 0));
        if (const auto source = extract->model().sourceOf(value)) {
            viewer->showSpan(source->docId, source->page, source->begin, source->end);
            break;
        }
    }
    waitFor([&] { return !viewer->isRendering(); }, 30000);
    save(&window, out + "/extract.png");

    tabs->setCurrentIndex(folio::ui::MainWindow::BatchTab);
    auto* batch = window.findChild<folio::ui::BatchPanel*>("batchPanel");
    batch->addPaths({samples + "/clinical-note-D2N044-scan.pdf"});
    batch->setPack(QStringLiteral("medical"));
    batch->setOutputDirectory(work.path() + "/records");
    batch->start();
    if (!waitFor([&] { return !batch->isRunning(); }, 600000)) fail("the batch did not finish");
    save(&window, out + "/batch.png");

    tabs->setCurrentIndex(folio::ui::MainWindow::PacksTab);
    save(&window, out + "/packs.png");

    window.showSettings();
    QWidget* dialog = nullptr;
    waitFor([&] { return (dialog = window.findChild<QWidget*>("settingsDialog")) && dialog->isVisible(); }, 10000);
    if (!dialog) fail("no settings dialog");
    QTest::qWait(1500);  // its background checks (GPUs, OCR languages)
    save(dialog, out + "/settings.png");
    return 0;
}
