#include "ui/main_window.h"

#include <QAction>
#include <QBoxLayout>
#include <QCoreApplication>
#include <QCloseEvent>
#include <QComboBox>
#include <QDateTime>
#include <QDir>
#include <QDragEnterEvent>
#include <QDropEvent>
#include <QFileDialog>
#include <QFileInfo>
#include <QHeaderView>
#include <QIcon>
#include <QItemSelectionModel>
#include <QLabel>
#include <QLineEdit>
#include <QLocale>
#include <QMenu>
#include <QMenuBar>
#include <QMessageBox>
#include <QMimeData>
#include <QProgressBar>
#include <QPushButton>
#include <QSettings>
#include <QSignalBlocker>
#include <QSizePolicy>
#include <QStackedWidget>
#include <QStatusBar>
#include <QSplitter>
#include <QStyle>
#include <QTabWidget>
#include <QTableView>
#include <QTimer>
#include <QToolBar>
#include <QToolButton>
#include <QUrl>

#include <algorithm>
#include <cstdio>
#include <unistd.h>

#include "domain_packs/pack_store.h"
#include "ui/ask_panel.h"
#include "ui/assistant_worker.h"
#include "ui/batch_panel.h"
#include "ui/document_viewer.h"
#include "ui/extract_panel.h"
#include "ui/packs_panel.h"
#include "ui/settings_dialog.h"
#include "ui/ingest_worker.h"
#include "ui/library_model.h"
#include "ui/summary_panel.h"

namespace folio::ui {
namespace {

const char* const kGeometryKey = "window/geometry";
const char* const kStateKey = "window/state";
const char* const kHeaderKey = "window/libraryHeader";
const char* const kLastDirectoryKey = "window/lastDirectory";
const char* const kSplitterKey = "window/splitter";
const char* const kTabKey = "window/tab";

// The failure dialog lists this many files; the rest are under Show Details.
constexpr int kListedFailures = 8;

QString count(int n, const char* one, const char* many) {
    return (n == 1 ? MainWindow::tr(one) : MainWindow::tr(many)).arg(n);
}

QString ingestSummary(const app::IngestReport& report) {
    QStringList parts;
    auto add = [&](app::IngestOutcome outcome, const char* text) {
        if (const int n = report.count(outcome); n > 0) parts << MainWindow::tr(text).arg(n);
    };
    add(app::IngestOutcome::Added, "%1 added");
    add(app::IngestOutcome::Replaced, "%1 replaced");
    add(app::IngestOutcome::Unchanged, "%1 unchanged");
    add(app::IngestOutcome::Moved, "%1 moved");
    add(app::IngestOutcome::Duplicate, "%1 already in the library under another name");
    add(app::IngestOutcome::Failed, "%1 failed");
    add(app::IngestOutcome::Skipped, "%1 skipped (not a PDF, image or text file)");
    if (report.pages > 0) {
        QString pages = count(report.pages, "%1 page", "%1 pages");
        if (report.ocr_pages > 0) pages += MainWindow::tr(" (%1 by OCR)").arg(report.ocr_pages);
        parts << pages;
    }
    if (report.cancelled)
        return parts.isEmpty() ? MainWindow::tr("Ingest cancelled")
                               : MainWindow::tr("Ingest cancelled: %1").arg(parts.join(QStringLiteral(", ")));
    return MainWindow::tr("Ingest finished in %1 s: %2")
        .arg(report.seconds, 0, 'f', 1)
        .arg(parts.isEmpty() ? MainWindow::tr("nothing to do") : parts.join(QStringLiteral(", ")));
}

QIcon themeIcon(const char* name, QStyle::StandardPixmap fallback, const QStyle* style) {
    return QIcon::fromTheme(QString::fromLatin1(name), style->standardIcon(fallback));
}

// The process's resident memory, from /proc (Linux); 0 when unknown.
qint64 residentBytes() {
    std::FILE* statm = std::fopen("/proc/self/statm", "r");
    if (!statm) return 0;
    long long size = 0, resident = 0;
    const bool read = std::fscanf(statm, "%lld %lld", &size, &resident) == 2;
    std::fclose(statm);
    return read ? resident * sysconf(_SC_PAGESIZE) : 0;
}

// The sample documents: installed beside the program, else the source
// tree's (a build that was not installed).
QString samplesDirectory() {
    for (const QString& candidate : {QCoreApplication::applicationDirPath() + QStringLiteral("/../share/folio/samples"),
                                     QStringLiteral(FOLIO_SOURCE_SAMPLES)})
        if (QFileInfo(candidate).isDir()) return QDir(candidate).canonicalPath();
    return {};
}

}  // namespace

MainWindow::MainWindow(app::Library& library, ingest::PipelineOptions pipeline, FolioSettings settings,
                       QWidget* parent)
    : QMainWindow(parent),
      library_(library),
      model_(new LibraryModel(library.store(), this)),
      sortFilter_(new LibrarySortFilterModel(this)),
      settings_(std::move(settings)),
      chatModelPath_(settings_.effectiveChatModel()),
      worker_(std::make_unique<IngestWorker>(QString::fromStdString(library.directory()), pipeline)),
      assistant_(std::make_unique<AssistantWorker>(QString::fromStdString(library.directory()), settings_, pipeline)) {
    setWindowTitle(tr("Folio — %1").arg(QDir::toNativeSeparators(QString::fromStdString(library.directory()))));
    setAcceptDrops(true);
    sortFilter_->setSourceModel(model_);

    createActions();
    createCentralWidget();
    createWorkspace();
    createMenusAndToolBar();
    createStatusBar();

    connect(worker_.get(), &IngestWorker::ingestStarted, this, &MainWindow::onIngestStarted);
    connect(worker_.get(), &IngestWorker::progress, this, &MainWindow::onProgress);
    connect(worker_.get(), &IngestWorker::fileDone, this, &MainWindow::onFileDone);
    connect(worker_.get(), &IngestWorker::embeddingProgress, this, [this](qint64 embedded, qint64 remaining) {
        indexingLabel_->setText(tr("Indexing for search: %1 of %2 passages").arg(embedded).arg(embedded + remaining));
        indexingLabel_->setVisible(true);
    });
    connect(worker_.get(), &IngestWorker::embeddingFinished, this,
            [this](qint64, qint64 remaining, const QString& error) {
                indexingLabel_->setVisible(false);
                // Not a dialog: keyword search still answers; the status bar says what is missing.
                if (!error.isEmpty())
                    statusBar()->showMessage(tr("Search by meaning is off (%1 passages not indexed): %2")
                                                 .arg(remaining)
                                                 .arg(error));
            });
    connect(worker_.get(), &IngestWorker::ingestFinished, this, &MainWindow::onIngestFinished);
    connect(worker_.get(), &IngestWorker::removalFinished, this, &MainWindow::onRemovalFinished);
    connect(model_, &LibraryModel::storeError, this,
            [this](const QString& reason) { showError(tr("Cannot read the library"), reason); });
    auto showTableOrHint = [this] { centralStack_->setCurrentIndex(model_->rowCount() > 0 ? 0 : 1); };
    connect(model_, &QAbstractItemModel::rowsInserted, this, showTableOrHint);
    connect(model_, &QAbstractItemModel::rowsRemoved, this, showTableOrHint);
    connect(model_, &QAbstractItemModel::rowsInserted, this, &MainWindow::refreshCollections);
    connect(model_, &QAbstractItemModel::rowsRemoved, this, &MainWindow::refreshCollections);
    connect(table_->selectionModel(), &QItemSelectionModel::selectionChanged, this, &MainWindow::updateActions);
    connect(table_->selectionModel(), &QItemSelectionModel::selectionChanged, this, &MainWindow::onSelectionChanged);
    connect(assistant_.get(), &AssistantWorker::modelLoading, this, [this](const QString& path) {
        engineState_ = tr("Loading %1…").arg(QFileInfo(path).fileName());
        updateEngineStatus();
    });
    connect(assistant_.get(), &AssistantWorker::modelLoaded, this, [this](const QString& path, int context) {
        engineState_ = tr("%1, %2 tokens of context").arg(QFileInfo(path).fileName()).arg(context);
        updateEngineStatus();
    });
    connect(assistant_.get(), &AssistantWorker::jobStarted, this, &MainWindow::updateEngineStatus);
    connect(assistant_.get(), &AssistantWorker::jobFinished, this, &MainWindow::updateEngineStatus);

    model_->refresh();
    showTableOrHint();
    refreshCollections();
    restoreSettings();
    updateActions();
    updateLibraryStatus();
    updateEngineStatus();
    updateMemoryStatus();
}

// The worker goes first (members are destroyed before the widgets that
// receive its signals): it cancels and waits for its thread.
MainWindow::~MainWindow() = default;

void MainWindow::createActions() {
    addFilesAction_ = new QAction(themeIcon("document-open", QStyle::SP_DialogOpenButton, style()), tr("Add &Files…"), this);
    addFilesAction_->setObjectName(QStringLiteral("addFilesAction"));
    addFilesAction_->setShortcut(QKeySequence::Open);
    addFilesAction_->setToolTip(tr("Add PDFs, scans, images or text files to the library (Ctrl+O)"));
    connect(addFilesAction_, &QAction::triggered, this, &MainWindow::chooseFiles);

    addFolderAction_ = new QAction(themeIcon("folder-open", QStyle::SP_DirOpenIcon, style()), tr("Add F&older…"), this);
    addFolderAction_->setObjectName(QStringLiteral("addFolderAction"));
    addFolderAction_->setShortcut(QKeySequence(Qt::CTRL | Qt::SHIFT | Qt::Key_O));
    addFolderAction_->setToolTip(tr("Add every PDF, scan, image and text file in a folder and its subfolders"));
    connect(addFolderAction_, &QAction::triggered, this, &MainWindow::chooseFolder);

    reingestAction_ = new QAction(themeIcon("view-refresh", QStyle::SP_BrowserReload, style()), tr("&Re-ingest"), this);
    reingestAction_->setObjectName(QStringLiteral("reingestAction"));
    reingestAction_->setToolTip(tr("Read the selected files again: changed files are replaced, failed ones retried"));
    connect(reingestAction_, &QAction::triggered, this, &MainWindow::reingestSelected);

    removeAction_ = new QAction(themeIcon("list-remove", QStyle::SP_TrashIcon, style()), tr("Re&move"), this);
    removeAction_->setObjectName(QStringLiteral("removeAction"));
    removeAction_->setShortcut(QKeySequence::Delete);
    removeAction_->setToolTip(tr("Remove the selected documents from the library; the files stay on disk (Delete)"));
    connect(removeAction_, &QAction::triggered, this, &MainWindow::confirmRemoveSelected);

    cancelAction_ = new QAction(themeIcon("process-stop", QStyle::SP_BrowserStop, style()), tr("&Cancel Ingest"), this);
    cancelAction_->setObjectName(QStringLiteral("cancelAction"));
    cancelAction_->setShortcut(QKeySequence(Qt::Key_Escape));
    cancelAction_->setToolTip(tr("Stop the running ingest and drop the queued ones (Esc)"));
    connect(cancelAction_, &QAction::triggered, this, &MainWindow::cancelIngest);

    filterAction_ = new QAction(tr("&Filter…"), this);
    filterAction_->setObjectName(QStringLiteral("filterAction"));
    // The viewer takes Ctrl+F for its find bar while it has the focus.
    filterAction_->setShortcut(QKeySequence::Find);
    connect(filterAction_, &QAction::triggered, this, &MainWindow::focusFilter);

    refreshAction_ = new QAction(tr("Re&load Library"), this);
    refreshAction_->setObjectName(QStringLiteral("refreshAction"));
    refreshAction_->setShortcut(QKeySequence::Refresh);
    refreshAction_->setToolTip(tr("Read the library again, to show changes made outside this window (F5)"));
    connect(refreshAction_, &QAction::triggered, this, &MainWindow::refreshLibrary);

    settingsAction_ = new QAction(themeIcon("preferences-system", QStyle::SP_FileDialogDetailedView, style()),
                                  tr("&Settings…"), this);
    settingsAction_->setObjectName(QStringLiteral("settingsAction"));
    settingsAction_->setShortcut(QKeySequence(Qt::CTRL | Qt::Key_Comma));
    settingsAction_->setMenuRole(QAction::PreferencesRole);
    connect(settingsAction_, &QAction::triggered, this, &MainWindow::showSettings);

    quitAction_ = new QAction(tr("&Quit"), this);
    quitAction_->setShortcut(QKeySequence::Quit);
    connect(quitAction_, &QAction::triggered, this, &QWidget::close);
}

void MainWindow::createCentralWidget() {
    table_ = new QTableView;
    table_->setObjectName(QStringLiteral("libraryTable"));
    table_->setModel(sortFilter_);
    table_->setSelectionBehavior(QAbstractItemView::SelectRows);
    table_->setSelectionMode(QAbstractItemView::ExtendedSelection);
    table_->setSortingEnabled(true);
    table_->sortByColumn(LibraryModel::NameColumn, Qt::AscendingOrder);
    table_->setAlternatingRowColors(true);
    table_->setShowGrid(false);
    table_->setWordWrap(false);
    table_->verticalHeader()->hide();
    table_->setContextMenuPolicy(Qt::ActionsContextMenu);
    table_->addActions({reingestAction_, removeAction_});

    // Starting widths from sample values: sizing to contents would measure
    // every row on each progress update.
    QHeaderView* header = table_->horizontalHeader();
    const QFontMetrics metrics = table_->fontMetrics();
    const int padding = 2 * metrics.horizontalAdvance(QLatin1Char('M'));
    auto fit = [&](int column, const QString& sample) {
        header->resizeSection(column, metrics.horizontalAdvance(sample) + padding);
    };
    header->setStretchLastSection(false);
    fit(LibraryModel::NameColumn, QString(40, QLatin1Char('n')));
    fit(LibraryModel::TypeColumn, tr("Markdown"));
    fit(LibraryModel::PagesColumn, tr("Pages"));
    fit(LibraryModel::SizeColumn, QLocale().formattedDataSize(999'900'000, 1, QLocale::DataSizeTraditionalFormat));
    fit(LibraryModel::AddedColumn,
        QLocale().toString(QDateTime(QDate(2000, 12, 28), QTime(23, 59)), QLocale::ShortFormat));
    header->setSectionResizeMode(LibraryModel::StatusColumn, QHeaderView::Stretch);

    auto* hint = new QWidget;
    auto* hintLabel = new QLabel(tr("Drop PDFs, scans, images or text files here,\nor choose Add Files… (Ctrl+O)."));
    hintLabel->setAlignment(Qt::AlignCenter);
    hintLabel->setEnabled(false);
    auto* hintLayout = new QVBoxLayout(hint);
    hintLayout->addStretch();
    hintLayout->addWidget(hintLabel);
    offerSamples(hint);
    hintLayout->addStretch();

    centralStack_ = new QStackedWidget;
    centralStack_->addWidget(table_);
    centralStack_->addWidget(hint);
}

// A first run: an empty library, and the sample filing and scanned note
// one click away.
void MainWindow::offerSamples(QWidget* hint) {
    const QString samples = samplesDirectory();
    if (samples.isEmpty()) return;
    auto* button = new QPushButton(tr("Add the Sample Documents"), hint);
    button->setObjectName(QStringLiteral("addSamplesButton"));
    button->setToolTip(tr("A 10-K excerpt and a scanned clinical note from %1").arg(QDir::toNativeSeparators(samples)));
    connect(button, &QPushButton::clicked, this, [this, samples] { addPaths({samples}); });
    auto* row = new QHBoxLayout;
    row->addStretch();
    row->addWidget(button);
    row->addStretch();
    static_cast<QVBoxLayout*>(hint->layout())->addLayout(row);
}

void MainWindow::createWorkspace() {
    tabs_ = new QTabWidget;
    tabs_->setObjectName(QStringLiteral("workspaceTabs"));
    tabs_->setDocumentMode(true);
    tabs_->addTab(centralStack_, tr("&Library"));

    askPanel_ = new AskPanel(*assistant_);
    askPanel_->setObjectName(QStringLiteral("askPanel"));
    askPanel_->setPack(settings_.pack);
    tabs_->addTab(askPanel_, tr("&Ask"));

    summaryPanel_ = new SummaryPanel(*assistant_);
    summaryPanel_->setObjectName(QStringLiteral("summaryPanel"));
    summaryPanel_->setPack(settings_.pack);
    tabs_->addTab(summaryPanel_, tr("S&ummary"));

    extractPanel_ = new ExtractPanel(*assistant_);
    extractPanel_->setObjectName(QStringLiteral("extractPanel"));
    extractPanel_->setPack(settings_.pack);
    tabs_->addTab(extractPanel_, tr("E&xtract"));

    batchPanel_ = new BatchPanel(*assistant_);
    batchPanel_->setObjectName(QStringLiteral("batchPanel"));
    batchPanel_->setPack(settings_.pack);
    tabs_->addTab(batchPanel_, tr("&Batch"));

    packsPanel_ = new PacksPanel(packs::PackStore::default_directory(), chatModelPath_);
    packsPanel_->setObjectName(QStringLiteral("packsPanel"));
    tabs_->addTab(packsPanel_, tr("&Packs"));
    connect(packsPanel_, &PacksPanel::packsChanged, this, [this] {
        askPanel_->refreshPacks();
        summaryPanel_->refreshPacks();
        extractPanel_->refreshPacks();
        batchPanel_->refreshPacks();
    });

    // Alt+1…6 switch tabs, as browsers and IDEs do.
    for (int tab = 0; tab < tabs_->count(); ++tab) {
        auto* action = new QAction(this);
        action->setShortcut(QKeySequence(Qt::ALT | static_cast<Qt::Key>(Qt::Key_1 + tab)));
        connect(action, &QAction::triggered, this, [this, tab] { tabs_->setCurrentIndex(tab); });
        addAction(action);
    }

    viewer_ = new DocumentViewer(library_.store());
    viewer_->setObjectName(QStringLiteral("documentViewer"));
    connect(askPanel_, &AskPanel::citationActivated, viewer_,
            [this](qint64 docId, int page, const QString& quote) { viewer_->showQuote(docId, page, quote); });
    connect(summaryPanel_, &SummaryPanel::pageRequested, viewer_,
            [this](qint64 docId, int page) { viewer_->showSpan(docId, page, 0, 0); });
    connect(extractPanel_, &ExtractPanel::sourceRequested, viewer_,
            [this](qint64 docId, int page, qulonglong begin, qulonglong end) {
                viewer_->showSpan(docId, page, static_cast<std::size_t>(begin), static_cast<std::size_t>(end));
            });

    splitter_ = new QSplitter(Qt::Horizontal);
    splitter_->setObjectName(QStringLiteral("workspaceSplitter"));
    splitter_->addWidget(tabs_);
    splitter_->addWidget(viewer_);
    splitter_->setChildrenCollapsible(false);
    setCentralWidget(splitter_);
}

// Every shortcut the window answers, read from its actions so the list
// cannot drift from them.
void MainWindow::showShortcuts() {
    QString rows;
    const auto row = [&](const QString& keys, const QString& what) {
        rows += QStringLiteral("<tr><td><b>%1</b>&nbsp;&nbsp;</td><td>%2</td></tr>").arg(keys.toHtmlEscaped(), what);
    };
    QList<QAction*> actions = findChildren<QAction*>();
    for (QAction* action : actions) {
        if (action->shortcut().isEmpty() || action->text().isEmpty()) continue;
        row(action->shortcut().toString(QKeySequence::NativeText), action->text().remove(QLatin1Char('&')));
    }
    row(tr("Alt+1 … Alt+6"), tr("Library, Ask, Summary, Extract, Batch, Packs"));
    row(tr("Ctrl+F, F3"), tr("Find in the document, next match (viewer)"));
    row(tr("Page Up, Page Down"), tr("Previous, next page (viewer)"));
    row(tr("Enter"), tr("Ask the question (Ask)"));
    row(tr("Esc"), tr("Stop the answer (Ask); close the find bar (viewer)"));
    auto* box = new QMessageBox(QMessageBox::NoIcon, tr("Keyboard Shortcuts"),
                                QStringLiteral("<table>%1</table>").arg(rows), QMessageBox::Close, this);
    box->setObjectName(QStringLiteral("shortcutsBox"));
    box->setAttribute(Qt::WA_DeleteOnClose);
    box->open();
}

void MainWindow::showSettings() {
    auto* dialog = new SettingsDialog(settings_, this);
    dialog->setObjectName(QStringLiteral("settingsDialog"));
    dialog->setAttribute(Qt::WA_DeleteOnClose);
    connect(dialog, &QDialog::accepted, this, [this, dialog] {
        const FolioSettings changed = dialog->settings();
        if (changed == settings_) return;
        const bool libraryMoved = changed.effectiveLibraryDirectory() != settings_.effectiveLibraryDirectory();
        const bool embedderChanged = changed.embeddingModel != settings_.embeddingModel;
        settings_ = changed;
        QSettings stored;
        settings_.save(stored);
        assistant_->setSettings(settings_);
        worker_->setOcrLanguages(settings_.ocrLanguages);
        chatModelPath_ = settings_.effectiveChatModel();
        packsPanel_->setChatModel(chatModelPath_);
        updateEngineStatus();
        if (libraryMoved || embedderChanged)
            statusBar()->showMessage(libraryMoved ? tr("The new library folder is used from the next start of Folio.")
                                                  : tr("The new embedding model is used from the next start of Folio "
                                                       "(the library is then indexed with it again)."));
    });
    dialog->open();
}

void MainWindow::showTab(Tab tab) {
    static_assert(LibraryTab == 0);
    if (tab < tabs_->count()) tabs_->setCurrentIndex(tab);
}

void MainWindow::createMenusAndToolBar() {
    QMenu* file = menuBar()->addMenu(tr("&File"));
    file->addAction(addFilesAction_);
    file->addAction(addFolderAction_);
    file->addSeparator();
    file->addAction(quitAction_);

    QMenu* libraryMenu = menuBar()->addMenu(tr("&Library"));
    libraryMenu->addAction(reingestAction_);
    libraryMenu->addAction(removeAction_);
    libraryMenu->addSeparator();
    libraryMenu->addAction(cancelAction_);

    QMenu* edit = menuBar()->addMenu(tr("&Edit"));
    edit->addAction(settingsAction_);

    QMenu* view = menuBar()->addMenu(tr("&View"));
    view->addAction(filterAction_);
    view->addAction(refreshAction_);

    QMenu* help = menuBar()->addMenu(tr("&Help"));
    QAction* shortcuts = help->addAction(tr("&Keyboard Shortcuts"), this, &MainWindow::showShortcuts);
    shortcuts->setObjectName(QStringLiteral("shortcutsAction"));
    shortcuts->setShortcut(QKeySequence::HelpContents);
    help->addAction(tr("&About Folio"), this, [this] {
        QMessageBox::about(this, tr("About Folio"),
                           tr("<h3>Folio %1</h3><p>Questions, summaries and fields from your financial reports "
                              "and medical records, answered on this computer: nothing leaves it.</p>")
                               .arg(QCoreApplication::applicationVersion().toHtmlEscaped()));
    });

    QToolBar* toolBar = addToolBar(tr("Library"));
    toolBar->setObjectName(QStringLiteral("libraryToolBar"));
    toolBar->setMovable(false);
    toolBar->setToolButtonStyle(Qt::ToolButtonTextBesideIcon);
    toolBar->addAction(addFilesAction_);
    toolBar->addAction(addFolderAction_);
    toolBar->addSeparator();
    toolBar->addAction(reingestAction_);
    toolBar->addAction(removeAction_);

    auto* spacer = new QWidget;
    spacer->setSizePolicy(QSizePolicy::Expanding, QSizePolicy::Preferred);
    toolBar->addWidget(spacer);
    collectionCombo_ = new QComboBox;
    collectionCombo_->setObjectName(QStringLiteral("collectionCombo"));
    collectionCombo_->setToolTip(tr("Show one collection: the documents of a folder you added"));
    collectionCombo_->setSizeAdjustPolicy(QComboBox::AdjustToContents);
    connect(collectionCombo_, &QComboBox::currentIndexChanged, this,
            [this] { sortFilter_->setCollection(collectionCombo_->currentData().toString()); });
    collectionAction_ = toolBar->addWidget(collectionCombo_);
    filterEdit_ = new QLineEdit;
    filterEdit_->setObjectName(QStringLiteral("filterEdit"));
    filterEdit_->setPlaceholderText(tr("Filter by name (Ctrl+F)"));
    filterEdit_->setClearButtonEnabled(true);
    filterEdit_->setMaximumWidth(24 * fontMetrics().horizontalAdvance(QLatin1Char('M')));
    connect(filterEdit_, &QLineEdit::textChanged, sortFilter_, &QSortFilterProxyModel::setFilterFixedString);
    toolBar->addWidget(filterEdit_);
}

void MainWindow::createStatusBar() {
    activityLabel_ = new QLabel;
    activityLabel_->setObjectName(QStringLiteral("activityLabel"));
    progressBar_ = new QProgressBar;
    progressBar_->setObjectName(QStringLiteral("ingestProgress"));
    progressBar_->setFixedWidth(16 * fontMetrics().horizontalAdvance(QLatin1Char('M')));
    auto* cancelButton = new QToolButton;
    cancelButton->setDefaultAction(cancelAction_);
    cancelButton->setToolButtonStyle(Qt::ToolButtonTextBesideIcon);
    cancelButton->setAutoRaise(true);
    cancelButton_ = cancelButton;
    libraryLabel_ = new QLabel;
    libraryLabel_->setObjectName(QStringLiteral("libraryLabel"));
    indexingLabel_ = new QLabel;
    indexingLabel_->setObjectName(QStringLiteral("indexingLabel"));
    indexingLabel_->setVisible(false);
    engineLabel_ = new QLabel;
    engineLabel_->setObjectName(QStringLiteral("engineLabel"));
    memoryLabel_ = new QLabel;
    memoryLabel_->setObjectName(QStringLiteral("memoryLabel"));
    memoryLabel_->setToolTip(tr("Memory Folio uses (resident)"));
    memoryTimer_ = new QTimer(this);
    memoryTimer_->setInterval(2000);
    connect(memoryTimer_, &QTimer::timeout, this, &MainWindow::updateMemoryStatus);
    memoryTimer_->start();

    // Permanent widgets: showMessage() would hide ordinary ones.
    statusBar()->addPermanentWidget(activityLabel_);
    statusBar()->addPermanentWidget(progressBar_);
    statusBar()->addPermanentWidget(cancelButton_);
    statusBar()->addPermanentWidget(indexingLabel_);
    statusBar()->addPermanentWidget(libraryLabel_);
    statusBar()->addPermanentWidget(engineLabel_);
    statusBar()->addPermanentWidget(memoryLabel_);
    for (QWidget* widget : {static_cast<QWidget*>(activityLabel_), static_cast<QWidget*>(progressBar_), cancelButton_})
        widget->setVisible(false);
}

void MainWindow::restoreSettings() {
    const QSettings settings;
    if (!restoreGeometry(settings.value(kGeometryKey).toByteArray())) resize(1200, 760);
    restoreState(settings.value(kStateKey).toByteArray());
    table_->horizontalHeader()->restoreState(settings.value(kHeaderKey).toByteArray());
    if (!splitter_->restoreState(settings.value(kSplitterKey).toByteArray()) && splitter_->count() > 1)
        splitter_->setSizes({width() * 2 / 5, width() * 3 / 5});
    tabs_->setCurrentIndex(std::clamp(settings.value(kTabKey, 0).toInt(), 0, tabs_->count() - 1));
}

void MainWindow::closeEvent(QCloseEvent* event) {
    QSettings settings;
    settings.setValue(kGeometryKey, saveGeometry());
    settings.setValue(kStateKey, saveState());
    settings.setValue(kHeaderKey, table_->horizontalHeader()->saveState());
    settings.setValue(kSplitterKey, splitter_->saveState());
    settings.setValue(kTabKey, tabs_->currentIndex());
    // Start stopping now; the workers' destructors wait for them.
    worker_->cancel();
    assistant_->cancel();
    QMainWindow::closeEvent(event);
}

void MainWindow::dragEnterEvent(QDragEnterEvent* event) {
    const QList<QUrl> urls = event->mimeData()->urls();
    if (std::any_of(urls.begin(), urls.end(), [](const QUrl& url) { return url.isLocalFile(); }))
        event->acceptProposedAction();
}

void MainWindow::dropEvent(QDropEvent* event) {
    QStringList paths;
    for (const QUrl& url : event->mimeData()->urls())
        if (url.isLocalFile()) paths << url.toLocalFile();
    if (paths.isEmpty()) return;
    event->acceptProposedAction();
    addPaths(paths);
}

void MainWindow::chooseFiles() {
    QSettings settings;
    const QStringList files = QFileDialog::getOpenFileNames(
        this, tr("Add Files"), settings.value(kLastDirectoryKey, QDir::homePath()).toString(),
        tr("Documents (*.pdf *.png *.jpg *.jpeg *.tif *.tiff *.txt *.md);;All files (*)"));
    if (files.isEmpty()) return;
    settings.setValue(kLastDirectoryKey, QFileInfo(files.first()).absolutePath());
    addPaths(files);
}

void MainWindow::chooseFolder() {
    QSettings settings;
    const QString folder = QFileDialog::getExistingDirectory(
        this, tr("Add Folder"), settings.value(kLastDirectoryKey, QDir::homePath()).toString());
    if (folder.isEmpty()) return;
    settings.setValue(kLastDirectoryKey, folder);
    addPaths({folder});
}

void MainWindow::addPaths(const QStringList& paths) {
    if (paths.isEmpty()) return;
    ++pendingIngests_;
    cancelling_ = false;
    statusBar()->clearMessage();  // the last ingest's summary
    worker_->requestIngest(paths);
    updateProgress();
    updateActions();
}

void MainWindow::cancelIngest() {
    if (!isIngesting() || cancelling_) return;
    cancelling_ = true;
    worker_->cancel();
    updateProgress();
    updateActions();
}

void MainWindow::reingestSelected() {
    QStringList paths;
    for (const int row : selectedSourceRows()) {
        const auto state = static_cast<RowState>(model_->index(row, 0).data(LibraryModel::StateRole).toInt());
        if (state == RowState::Indexed || state == RowState::Failed)
            paths << model_->index(row, 0).data(LibraryModel::PathRole).toString();
    }
    addPaths(paths);
}

void MainWindow::confirmRemoveSelected() {
    QList<qint64> ids;
    QString firstName;
    for (const int row : selectedSourceRows()) {
        const QModelIndex name = model_->index(row, LibraryModel::NameColumn);
        const qint64 id = name.data(LibraryModel::DocumentIdRole).toLongLong();
        if (id <= 0 || static_cast<RowState>(name.data(LibraryModel::StateRole).toInt()) == RowState::Removing)
            continue;
        if (ids.isEmpty()) firstName = name.data().toString();
        ids << id;
    }
    if (ids.isEmpty()) return;

    auto* box = new QMessageBox(QMessageBox::Question, tr("Remove from Library"),
                                ids.size() == 1 ? tr("Remove “%1” from the library?").arg(firstName)
                                                : tr("Remove %1 documents from the library?").arg(ids.size()),
                                QMessageBox::Cancel, this);
    box->setInformativeText(tr("The files on disk stay where they are. Their text leaves the library; "
                               "adding them again means ingesting them again."));
    QPushButton* remove = box->addButton(tr("Remove"), QMessageBox::DestructiveRole);
    remove->setObjectName(QStringLiteral("confirmRemoveButton"));
    box->setDefaultButton(remove);
    box->setAttribute(Qt::WA_DeleteOnClose);
    connect(box, &QMessageBox::buttonClicked, this, [this, remove, ids](QAbstractButton* clicked) {
        if (clicked != remove) return;
        model_->markRemoving(ids);
        worker_->requestRemoval(ids);
        updateActions();
    });
    box->open();
}

void MainWindow::focusFilter() {
    tabs_->setCurrentIndex(LibraryTab);
    filterEdit_->setFocus(Qt::ShortcutFocusReason);
    filterEdit_->selectAll();
}

void MainWindow::refreshLibrary() {
    model_->refresh();
    updateLibraryStatus();
    updateActions();
}

// The selection is what the other tabs work on: the first selected stored
// document for Summary and the viewer, the indexed ones for Ask's scope and
// Extract.
void MainWindow::onSelectionChanged() {
    qint64 current = 0;
    QString currentName;
    QList<qint64> ids;
    QStringList names, hashes;
    for (const int row : selectedSourceRows()) {
        const QModelIndex name = model_->index(row, LibraryModel::NameColumn);
        const auto state = static_cast<RowState>(name.data(LibraryModel::StateRole).toInt());
        const qint64 id = name.data(LibraryModel::DocumentIdRole).toLongLong();
        if (id <= 0 || state == RowState::Removing) continue;
        if (current == 0) {
            current = id;
            currentName = name.data().toString();
        }
        if (state != RowState::Indexed) continue;
        ids << id;
        names << name.data().toString();
        hashes << name.data(LibraryModel::Sha256Role).toString();
    }
    summaryPanel_->setSelectedDocument(current, currentName);
    askPanel_->setSelectedDocuments(ids, names);
    extractPanel_->setSelectedDocuments(ids, names, hashes);
    if (current > 0 && current != viewer_->documentId()) viewer_->openDocument(current);
}

// The folders documents are in, each with its document count, after "All
// collections"; the chosen one stays chosen while it has documents.
void MainWindow::refreshCollections() {
    const QString chosen = collectionCombo_->currentData().toString();
    QHash<QString, int> counts;
    for (int row = 0; row < model_->rowCount(); ++row)
        ++counts[model_->index(row, 0).data(LibraryModel::CollectionRole).toString()];
    QStringList folders = counts.keys();
    folders.sort();
    const QSignalBlocker blocker(collectionCombo_);
    collectionCombo_->clear();
    collectionCombo_->addItem(tr("All collections"), QString());
    const QString home = QDir::homePath();
    for (const QString& folder : folders) {
        QString label = folder.startsWith(home + QLatin1Char('/')) ? QStringLiteral("~") + folder.mid(home.size()) : folder;
        collectionCombo_->addItem(tr("%1 (%2)").arg(QDir::toNativeSeparators(label)).arg(counts.value(folder)), folder);
        collectionCombo_->setItemData(collectionCombo_->count() - 1, QDir::toNativeSeparators(folder), Qt::ToolTipRole);
    }
    const int index = collectionCombo_->findData(chosen);
    collectionCombo_->setCurrentIndex(std::max(index, 0));
    sortFilter_->setCollection(collectionCombo_->currentData().toString());
    collectionAction_->setVisible(folders.size() > 1);
}

void MainWindow::updateEngineStatus() {
    QString text = engineState_.isEmpty() ? tr("Model not loaded") : engineState_;
    if (assistant_->isBusy()) text = tr("Working: %1").arg(text);
    engineLabel_->setText(text);
    engineLabel_->setToolTip(chatModelPath_.isEmpty() ? tr("No chat model found: choose one in Settings")
                                                       : QDir::toNativeSeparators(chatModelPath_));
}

void MainWindow::updateMemoryStatus() {
    const qint64 bytes = residentBytes();
    memoryLabel_->setVisible(bytes > 0);
    memoryLabel_->setText(QLocale().formattedDataSize(bytes, 1, QLocale::DataSizeTraditionalFormat));
}

void MainWindow::onIngestStarted(const QStringList& files) {
    jobFiles_ = static_cast<int>(files.size());
    jobFilesDone_ = 0;
    filesInFlight_.clear();
    lastActivity_.clear();
    model_->markQueued(files);
    updateProgress();
}

void MainWindow::onProgress(const ingest::PipelineProgress& progress) {
    model_->markProgress(progress);
    const QString path = QString::fromStdString(progress.path);
    filesInFlight_.insert(path, progress.pages_total > 0 ? double(progress.pages_done) / progress.pages_total : 0.0);
    if (const int row = model_->rowOfPath(path); row >= 0)
        lastActivity_ = tr("%1: %2").arg(model_->index(row, LibraryModel::NameColumn).data().toString(),
                                         model_->index(row, LibraryModel::StatusColumn).data().toString());
    updateProgress();
}

void MainWindow::onFileDone(const app::IngestedFile& file) {
    model_->markFileDone(file);
    filesInFlight_.remove(QString::fromStdString(file.path));
    ++jobFilesDone_;
    updateProgress();
}

void MainWindow::onIngestFinished(const app::IngestReport& report, const QString& error) {
    --pendingIngests_;
    if (pendingIngests_ == 0) cancelling_ = false;
    jobFiles_ = jobFilesDone_ = 0;
    filesInFlight_.clear();
    lastActivity_.clear();
    model_->clearIngestActivity();
    statusBar()->showMessage(ingestSummary(report));
    showIngestFailures(report, error);
    updateProgress();
    updateActions();
    updateLibraryStatus();
}

void MainWindow::onRemovalFinished(const QList<qint64>& documentIds, const QString& error) {
    model_->markRemovalFinished(documentIds);
    if (error.isEmpty())
        statusBar()->showMessage(count(static_cast<int>(documentIds.size()), "Removed %1 document from the library",
                                       "Removed %1 documents from the library"));
    else
        showError(tr("Could not remove documents"), tr("Some documents could not be removed from the library."), error);
    updateActions();
    updateLibraryStatus();
}

QList<int> MainWindow::selectedSourceRows() const {
    QList<int> rows;
    for (const QModelIndex& index : table_->selectionModel()->selectedRows())
        rows << sortFilter_->mapToSource(index).row();
    return rows;
}

void MainWindow::updateActions() {
    bool anyStored = false, anyFinished = false;
    for (const int row : selectedSourceRows()) {
        const QModelIndex name = model_->index(row, LibraryModel::NameColumn);
        const auto state = static_cast<RowState>(name.data(LibraryModel::StateRole).toInt());
        anyFinished = anyFinished || state == RowState::Indexed || state == RowState::Failed;
        anyStored = anyStored || (state != RowState::Removing && name.data(LibraryModel::DocumentIdRole).toLongLong() > 0);
    }
    reingestAction_->setEnabled(anyFinished);
    removeAction_->setEnabled(anyStored);
    cancelAction_->setEnabled(isIngesting() && !cancelling_);
}

void MainWindow::updateProgress() {
    const bool busy = isIngesting();
    activityLabel_->setVisible(busy);
    progressBar_->setVisible(busy);
    cancelButton_->setVisible(busy);
    if (!busy) return;

    if (jobFiles_ == 0) {
        progressBar_->setRange(0, 0);  // waiting for the worker to list the files: busy indicator
    } else {
        double done = jobFilesDone_;
        for (const double fraction : filesInFlight_) done += fraction;
        progressBar_->setRange(0, jobFiles_ * 100);
        progressBar_->setValue(static_cast<int>(done * 100));
        progressBar_->setFormat(tr("%1 of %2 files").arg(jobFilesDone_).arg(jobFiles_));
    }
    QString activity = cancelling_ ? tr("Cancelling…") : lastActivity_.isEmpty() ? tr("Ingesting…") : lastActivity_;
    if (pendingIngests_ > 1) activity += tr(" (+%1 queued)").arg(pendingIngests_ - 1);
    activityLabel_->setText(activity);
}

void MainWindow::updateLibraryStatus() {
    libraryLabel_->setText(count(model_->storedDocumentCount(), "%1 document", "%1 documents"));
    libraryLabel_->setToolTip(QDir::toNativeSeparators(QString::fromStdString(library_.directory())));
}

void MainWindow::showIngestFailures(const app::IngestReport& report, const QString& error) {
    QStringList listed, details;
    int failedFiles = 0, filesWithPageErrors = 0;
    for (const app::IngestedFile& file : report.files) {
        if (file.outcome == app::IngestOutcome::Skipped || file.error.empty()) continue;
        const QString path = QString::fromStdString(file.path);
        const QString reason = QString::fromStdString(file.error);
        if (file.outcome == app::IngestOutcome::Failed) ++failedFiles;
        else ++filesWithPageErrors;
        if (listed.size() < kListedFailures) listed << tr("%1: %2").arg(QFileInfo(path).fileName(), reason);
        details << tr("%1: %2").arg(QDir::toNativeSeparators(path), reason);
    }
    if (error.isEmpty() && details.isEmpty()) return;

    QStringList headline;
    if (!error.isEmpty()) headline << tr("The ingest stopped: %1").arg(error);
    if (failedFiles > 0)
        headline << tr("%1 of %2 files could not be ingested.").arg(failedFiles).arg(report.files.size());
    if (filesWithPageErrors > 0)
        headline << count(filesWithPageErrors, "%1 file was ingested with pages missing.",
                          "%1 files were ingested with pages missing.");
    QString text = headline.join(QLatin1Char('\n'));
    if (!listed.isEmpty()) text += QStringLiteral("\n\n") + listed.join(QLatin1Char('\n'));
    if (details.size() > listed.size()) text += tr("\n…and %1 more (Show Details).").arg(details.size() - listed.size());
    showError(error.isEmpty() ? tr("Some files could not be ingested") : tr("Ingest stopped"), text,
              details.size() > listed.size() ? details.join(QLatin1Char('\n')) : QString());
}

void MainWindow::showError(const QString& title, const QString& text, const QString& details) {
    errorBox_.show(this, title, text, details);
}

}  // namespace folio::ui
