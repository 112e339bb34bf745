#pragma once
// Folio's window: the workspace tabs (Library, Ask, Summary, Extract, Batch,
// Packs) beside the document viewer. The library table's selection is what
// the other tabs work on, and every citation, summary page or extracted
// value opens the viewer at its page with the span highlighted.
// Ingest and removal run on an IngestWorker, the model's jobs on an
// AssistantWorker; the window only posts requests and shows what comes back,
// so it stays responsive however long they take.

#include <QHash>
#include <QList>
#include <QMainWindow>
#include <QStringList>

#include <memory>

#include "app/library.h"
#include "ingest/pipeline.h"
#include "ui/error_box.h"
#include "ui/settings.h"

class QAction;
class QComboBox;
class QLabel;
class QLineEdit;
class QProgressBar;
class QSplitter;
class QStackedWidget;
class QTabWidget;
class QTableView;
class QTimer;

namespace folio::ui {

class AskPanel;
class AssistantWorker;
class BatchPanel;
class DocumentViewer;
class ExtractPanel;
class IngestWorker;
class PacksPanel;
class SummaryPanel;
class LibraryModel;
class LibrarySortFilterModel;

class MainWindow final : public QMainWindow {
    Q_OBJECT

public:
    // `library` is read on the UI thread and must outlive the window; the
    // worker opens its own connection to the same folder for writing.
    MainWindow(app::Library& library, ingest::PipelineOptions pipeline, FolioSettings settings = {},
               QWidget* parent = nullptr);
    ~MainWindow() override;

    // An ingest is running or queued.
    bool isIngesting() const { return pendingIngests_ > 0; }

    enum Tab { LibraryTab, AskTab, SummaryTab, ExtractTab, BatchTab, PacksTab };
    void showTab(Tab tab);
    DocumentViewer* viewer() const { return viewer_; }

public slots:
    // Settings… (Ctrl+,): the dialog, then the workers and panels take the change.
    void showSettings();
    void showShortcuts();

    // Queues files and folders for ingest. Add Files, Add Folder, drops and
    // the command line all end here.
    void addPaths(const QStringList& paths);
    void cancelIngest();

protected:
    void closeEvent(QCloseEvent* event) override;
    void dragEnterEvent(QDragEnterEvent* event) override;
    void dropEvent(QDropEvent* event) override;

private:
    void createActions();
    void createMenusAndToolBar();
    void createCentralWidget();
    void createStatusBar();
    void createWorkspace();
    void restoreSettings();
    void offerSamples(QWidget* hint);

    void chooseFiles();
    void chooseFolder();
    void reingestSelected();
    void confirmRemoveSelected();
    void focusFilter();
    void refreshLibrary();
    void onSelectionChanged();
    void refreshCollections();
    void updateEngineStatus();
    void updateMemoryStatus();

    void onIngestStarted(const QStringList& files);
    void onProgress(const ingest::PipelineProgress& progress);
    void onFileDone(const app::IngestedFile& file);
    void onIngestFinished(const app::IngestReport& report, const QString& error);
    void onRemovalFinished(const QList<qint64>& documentIds, const QString& error);

    QList<int> selectedSourceRows() const;
    void updateActions();
    void updateProgress();
    void updateLibraryStatus();
    void showIngestFailures(const app::IngestReport& report, const QString& error);
    void showError(const QString& title, const QString& text, const QString& details = {});

    app::Library& library_;
    LibraryModel* model_ = nullptr;
    LibrarySortFilterModel* sortFilter_ = nullptr;
    FolioSettings settings_;
    // settings_.effectiveChatModel(), resolved when the settings change:
    // finding the default model opens GGUF files, which the status bar's
    // updates on every job must not do.
    QString chatModelPath_;
    std::unique_ptr<IngestWorker> worker_;
    std::unique_ptr<AssistantWorker> assistant_;

    QSplitter* splitter_ = nullptr;
    QTabWidget* tabs_ = nullptr;
    AskPanel* askPanel_ = nullptr;
    SummaryPanel* summaryPanel_ = nullptr;
    ExtractPanel* extractPanel_ = nullptr;
    BatchPanel* batchPanel_ = nullptr;
    PacksPanel* packsPanel_ = nullptr;
    DocumentViewer* viewer_ = nullptr;
    QStackedWidget* centralStack_ = nullptr;
    QTableView* table_ = nullptr;
    QLineEdit* filterEdit_ = nullptr;
    QComboBox* collectionCombo_ = nullptr;
    QAction* collectionAction_ = nullptr;  // the combo's place in the tool bar: shown when there are two or more
    QLabel* activityLabel_ = nullptr;
    QProgressBar* progressBar_ = nullptr;
    QWidget* cancelButton_ = nullptr;
    QLabel* libraryLabel_ = nullptr;
    QLabel* indexingLabel_ = nullptr;
    QLabel* engineLabel_ = nullptr;
    QLabel* memoryLabel_ = nullptr;
    QTimer* memoryTimer_ = nullptr;
    QString engineState_;
    ErrorBox errorBox_;

    QAction* addFilesAction_ = nullptr;
    QAction* addFolderAction_ = nullptr;
    QAction* reingestAction_ = nullptr;
    QAction* removeAction_ = nullptr;
    QAction* cancelAction_ = nullptr;
    QAction* filterAction_ = nullptr;
    QAction* refreshAction_ = nullptr;
    QAction* quitAction_ = nullptr;
    QAction* settingsAction_ = nullptr;

    // Progress of the running ingest: files done out of its files, and the
    // page fraction (0..1) of each file in flight.
    int pendingIngests_ = 0;
    bool cancelling_ = false;  // cancel() was sent for every pending ingest
    int jobFiles_ = 0;
    int jobFilesDone_ = 0;
    QHash<QString, double> filesInFlight_;
    QString lastActivity_;
};

}  // namespace folio::ui
