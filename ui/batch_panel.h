#pragma once
// The batch panel: `folio batch` in a window. Files and folders are queued
// (buttons or drag and drop) with a pack and an output folder; Start runs
// the batch on the AssistantWorker, which writes records.jsonl, records.csv
// and (medical) fhir/ there as each record finishes, resumably. The panel
// lists each file's outcome as it comes, shows overall progress, pauses,
// resumes and cancels, and sums the run up at the end.
//
// Thread rules: UI thread only.

#include <QAbstractTableModel>
#include <QString>
#include <QStringList>
#include <QWidget>

#include <vector>

#include "ui/assistant_worker.h"
#include "ui/error_box.h"

class QLabel;
class QLineEdit;
class QListWidget;
class QProgressBar;
class QPushButton;
class QTableView;

namespace folio::ui {

class PackComboBox;

// The files a batch run has finished, one row each, in the order they finished.
class BatchProgressModel final : public QAbstractTableModel {
    Q_OBJECT

public:
    enum Column { FileColumn, OutcomeColumn, GroundedColumn, SecondsColumn, ErrorColumn, ColumnCount };

    explicit BatchProgressModel(QObject* parent = nullptr);

    void clear();
    void addItem(const app::BatchItem& item);
    const std::vector<app::BatchItem>& items() const { return items_; }

    int rowCount(const QModelIndex& parent = {}) const override;
    int columnCount(const QModelIndex& parent = {}) const override;
    QVariant data(const QModelIndex& index, int role = Qt::DisplayRole) const override;
    QVariant headerData(int section, Qt::Orientation orientation, int role = Qt::DisplayRole) const override;

private:
    std::vector<app::BatchItem> items_;
};

class BatchPanel final : public QWidget {
    Q_OBJECT

public:
    explicit BatchPanel(AssistantWorker& worker, QWidget* parent = nullptr);

    // Queues files and folders (folders are walked when the batch runs);
    // a path already queued is not added twice.
    void addPaths(const QStringList& paths);
    QStringList queuedPaths() const;
    void setOutputDirectory(const QString& directory);
    QString outputDirectory() const;
    void setPack(const QString& pack);
    // Re-reads the pack names (after a pack is installed or removed).
    void refreshPacks();

    bool isRunning() const { return job_ != 0; }
    bool isPaused() const { return paused_; }
    const BatchProgressModel& progressModel() const { return *progressModel_; }

public slots:
    void start();
    // Pauses after the record being extracted, or resumes.
    void setPaused(bool paused);
    void cancel();
    void openOutputFolder();

signals:
    void runningChanged(bool running);

protected:
    void dragEnterEvent(QDragEnterEvent* event) override;
    void dropEvent(QDropEvent* event) override;

private:
    void chooseFiles();
    void chooseFolder();
    void chooseOutputFolder();
    void removeSelected();
    void onStarted(JobId job, int files);
    void onItemDone(JobId job, const app::BatchItem& item);
    void onFinished(JobId job, const app::BatchReport& report);
    void onFailed(JobId job, const QString& error);
    void onJobFinished(JobId job);
    void updateControls();
    void showError(const QString& title, const QString& text);

    AssistantWorker& worker_;
    BatchProgressModel* progressModel_ = nullptr;
    QListWidget* queue_ = nullptr;
    QPushButton* addFilesButton_ = nullptr;
    QPushButton* addFolderButton_ = nullptr;
    QPushButton* removeButton_ = nullptr;
    PackComboBox* pack_ = nullptr;
    QLineEdit* output_ = nullptr;
    QPushButton* chooseOutputButton_ = nullptr;
    QPushButton* startButton_ = nullptr;
    QPushButton* pauseButton_ = nullptr;
    QPushButton* cancelButton_ = nullptr;
    QProgressBar* progress_ = nullptr;
    QTableView* items_ = nullptr;
    QLabel* outputLabel_ = nullptr;
    QPushButton* openOutputButton_ = nullptr;
    QLabel* summary_ = nullptr;
    ErrorBox errorBox_;

    JobId job_ = 0;            // the batch running or queued; 0: none
    QString jobOutput_;        // its output folder
    bool paused_ = false;
    bool cancelling_ = false;
};

}  // namespace folio::ui
