#include "ui/batch_panel.h"

#include <QBrush>
#include <QColor>
#include <QComboBox>
#include <QDesktopServices>
#include <QDir>
#include <QDragEnterEvent>
#include <QDropEvent>
#include <QFileDialog>
#include <QFileInfo>
#include <QHBoxLayout>
#include <QHeaderView>
#include <QLabel>
#include <QLineEdit>
#include <QListWidget>
#include <QMessageBox>
#include <QMimeData>
#include <QProgressBar>
#include <QPushButton>
#include <QSignalBlocker>
#include <QTableView>
#include <QUrl>
#include <QVBoxLayout>

#include <algorithm>
#include <exception>

#include "ui/pack_combo_box.h"

namespace folio::ui {
namespace {

QString outcomeText(app::BatchOutcome outcome) {
    switch (outcome) {
    case app::BatchOutcome::Done: return BatchProgressModel::tr("done");
    case app::BatchOutcome::Failed: return BatchProgressModel::tr("failed");
    case app::BatchOutcome::Skipped: return BatchProgressModel::tr("skipped");
    }
    return {};
}

QStringList localPaths(const QMimeData* mime) {
    QStringList paths;
    if (mime)
        for (const QUrl& url : mime->urls())
            if (url.isLocalFile()) paths << url.toLocalFile();
    return paths;
}

}  // namespace

BatchProgressModel::BatchProgressModel(QObject* parent) : QAbstractTableModel(parent) {}

void BatchProgressModel::clear() {
    beginResetModel();
    items_.clear();
    endResetModel();
}

void BatchProgressModel::addItem(const app::BatchItem& item) {
    const int row = rowCount();
    beginInsertRows({}, row, row);
    items_.push_back(item);
    endInsertRows();
}

int BatchProgressModel::rowCount(const QModelIndex& parent) const {
    return parent.isValid() ? 0 : static_cast<int>(items_.size());
}

int BatchProgressModel::columnCount(const QModelIndex& parent) const { return parent.isValid() ? 0 : ColumnCount; }

QVariant BatchProgressModel::headerData(int section, Qt::Orientation orientation, int role) const {
    if (orientation != Qt::Horizontal || role != Qt::DisplayRole) return {};
    switch (section) {
    case FileColumn: return tr("File");
    case OutcomeColumn: return tr("Outcome");
    case GroundedColumn: return tr("Grounded");
    case SecondsColumn: return tr("Seconds");
    case ErrorColumn: return tr("Error");
    }
    return {};
}

QVariant BatchProgressModel::data(const QModelIndex& index, int role) const {
    if (!index.isValid()) return {};
    const app::BatchItem& item = items_[static_cast<std::size_t>(index.row())];
    const QString path = QString::fromStdString(item.path);
    switch (role) {
    case Qt::ToolTipRole:
        if (index.column() == FileColumn) return QDir::toNativeSeparators(path);
        if (index.column() == ErrorColumn) return QString::fromStdString(item.error);
        return {};
    case Qt::ForegroundRole:
        return item.outcome == app::BatchOutcome::Failed ? QVariant(QBrush(QColor(0xb0, 0x20, 0x20))) : QVariant();
    case Qt::TextAlignmentRole:
        return index.column() == SecondsColumn ? QVariant(int(Qt::AlignRight | Qt::AlignVCenter)) : QVariant();
    case Qt::DisplayRole:
        switch (index.column()) {
        case FileColumn: return QFileInfo(path).fileName();
        case OutcomeColumn: return outcomeText(item.outcome);
        case GroundedColumn:
            if (item.outcome != app::BatchOutcome::Done) return QString();
            return tr("%1 grounded, %2 ungrounded").arg(item.grounded).arg(item.ungrounded);
        case SecondsColumn:
            return item.outcome == app::BatchOutcome::Skipped ? QString() : QString::number(item.seconds, 'f', 1);
        case ErrorColumn: return QString::fromStdString(item.error);
        }
    }
    return {};
}

BatchPanel::BatchPanel(AssistantWorker& worker, QWidget* parent) : QWidget(parent), worker_(worker) {
    setAcceptDrops(true);
    progressModel_ = new BatchProgressModel(this);

    queue_ = new QListWidget(this);
    queue_->setObjectName(QStringLiteral("batchQueue"));
    queue_->setSelectionMode(QAbstractItemView::ExtendedSelection);
    queue_->setToolTip(tr("Files and folders to extract from; drop them here"));
    connect(queue_, &QListWidget::itemSelectionChanged, this, &BatchPanel::updateControls);

    addFilesButton_ = new QPushButton(tr("Add &Files…"), this);
    addFilesButton_->setObjectName(QStringLiteral("batchAddFiles"));
    connect(addFilesButton_, &QPushButton::clicked, this, &BatchPanel::chooseFiles);
    addFolderButton_ = new QPushButton(tr("Add F&older…"), this);
    addFolderButton_->setObjectName(QStringLiteral("batchAddFolder"));
    connect(addFolderButton_, &QPushButton::clicked, this, &BatchPanel::chooseFolder);
    removeButton_ = new QPushButton(tr("&Remove"), this);
    removeButton_->setObjectName(QStringLiteral("batchRemove"));
    connect(removeButton_, &QPushButton::clicked, this, &BatchPanel::removeSelected);

    pack_ = new PackComboBox(/*offerNoPack=*/false, this);
    pack_->setObjectName(QStringLiteral("batchPack"));
    pack_->setToolTip(tr("The domain pack whose fields each record holds"));
    if (const QString error = pack_->refresh(); !error.isEmpty()) showError(tr("Cannot list the packs"), error);

    output_ = new QLineEdit(this);
    output_->setObjectName(QStringLiteral("batchOutput"));
    output_->setPlaceholderText(tr("Output folder"));
    output_->setToolTip(tr("records.jsonl and records.csv go here; running the batch again resumes it"));
    connect(output_, &QLineEdit::textChanged, this, [this] {
        // The label shows where the last run wrote until another folder is named.
        if (!isRunning()) jobOutput_.clear();
        updateControls();
    });
    chooseOutputButton_ = new QPushButton(tr("C&hoose…"), this);
    chooseOutputButton_->setObjectName(QStringLiteral("batchChooseOutput"));
    connect(chooseOutputButton_, &QPushButton::clicked, this, &BatchPanel::chooseOutputFolder);

    startButton_ = new QPushButton(tr("&Start"), this);
    startButton_->setObjectName(QStringLiteral("batchStart"));
    connect(startButton_, &QPushButton::clicked, this, &BatchPanel::start);
    pauseButton_ = new QPushButton(tr("&Pause"), this);
    pauseButton_->setObjectName(QStringLiteral("batchPause"));
    pauseButton_->setCheckable(true);
    pauseButton_->setToolTip(tr("Pause after the record being extracted"));
    connect(pauseButton_, &QPushButton::toggled, this, &BatchPanel::setPaused);
    cancelButton_ = new QPushButton(tr("&Cancel"), this);
    cancelButton_->setObjectName(QStringLiteral("batchCancel"));
    cancelButton_->setToolTip(tr("Stop the batch; finished records are kept, and Start resumes it"));
    connect(cancelButton_, &QPushButton::clicked, this, &BatchPanel::cancel);

    progress_ = new QProgressBar(this);
    progress_->setObjectName(QStringLiteral("batchProgress"));
    progress_->setFormat(tr("%v of %m files"));
    progress_->setRange(0, 1);
    progress_->setValue(0);

    items_ = new QTableView(this);
    items_->setObjectName(QStringLiteral("batchItems"));
    items_->setModel(progressModel_);
    items_->setSelectionBehavior(QAbstractItemView::SelectRows);
    items_->setEditTriggers(QAbstractItemView::NoEditTriggers);
    items_->verticalHeader()->hide();
    items_->horizontalHeader()->setStretchLastSection(true);
    items_->setWordWrap(false);
    // Starting widths from sample text: a file name, "22 grounded, 3 ungrounded".
    const QFontMetrics metrics = items_->fontMetrics();
    items_->horizontalHeader()->resizeSection(BatchProgressModel::FileColumn,
                                              metrics.horizontalAdvance(QString(30, QLatin1Char('n'))));
    items_->horizontalHeader()->resizeSection(BatchProgressModel::GroundedColumn,
                                              metrics.horizontalAdvance(tr("22 grounded, 3 ungrounded")) + 16);

    outputLabel_ = new QLabel(this);
    outputLabel_->setObjectName(QStringLiteral("batchOutputLabel"));
    outputLabel_->setTextInteractionFlags(Qt::TextSelectableByMouse);
    openOutputButton_ = new QPushButton(tr("Open Output Folder"), this);
    openOutputButton_->setObjectName(QStringLiteral("batchOpenOutput"));
    connect(openOutputButton_, &QPushButton::clicked, this, &BatchPanel::openOutputFolder);

    summary_ = new QLabel(this);
    summary_->setObjectName(QStringLiteral("batchSummary"));
    summary_->setWordWrap(true);
    summary_->setTextInteractionFlags(Qt::TextSelectableByMouse);

    auto* queueButtons = new QVBoxLayout;
    queueButtons->addWidget(addFilesButton_);
    queueButtons->addWidget(addFolderButton_);
    queueButtons->addWidget(removeButton_);
    queueButtons->addStretch();
    auto* queueRow = new QHBoxLayout;
    queueRow->addWidget(queue_, 1);
    queueRow->addLayout(queueButtons);

    auto* options = new QHBoxLayout;
    options->addWidget(new QLabel(tr("Pack:"), this));
    options->addWidget(pack_);
    options->addWidget(new QLabel(tr("Output:"), this));
    options->addWidget(output_, 1);
    options->addWidget(chooseOutputButton_);

    auto* run = new QHBoxLayout;
    run->addWidget(progress_, 1);
    run->addWidget(startButton_);
    run->addWidget(pauseButton_);
    run->addWidget(cancelButton_);

    auto* outputRow = new QHBoxLayout;
    outputRow->addWidget(outputLabel_, 1);
    outputRow->addWidget(openOutputButton_);

    auto* layout = new QVBoxLayout(this);
    layout->addLayout(queueRow);
    layout->addLayout(options);
    layout->addLayout(run);
    layout->addWidget(items_, 1);
    layout->addWidget(summary_);
    layout->addLayout(outputRow);

    connect(&worker_, &AssistantWorker::batchStarted, this, &BatchPanel::onStarted);
    connect(&worker_, &AssistantWorker::batchItemDone, this, &BatchPanel::onItemDone);
    connect(&worker_, &AssistantWorker::batchFinished, this, &BatchPanel::onFinished);
    connect(&worker_, &AssistantWorker::failed, this, &BatchPanel::onFailed);
    connect(&worker_, &AssistantWorker::jobFinished, this, &BatchPanel::onJobFinished);
    updateControls();
}

void BatchPanel::addPaths(const QStringList& paths) {
    const QStringList queued = queuedPaths();
    for (const QString& path : paths) {
        const QString absolute = QFileInfo(path).absoluteFilePath();
        if (queued.contains(absolute) || !queue_->findItems(absolute, Qt::MatchExactly).isEmpty()) continue;
        queue_->addItem(absolute);
    }
    updateControls();
}

QStringList BatchPanel::queuedPaths() const {
    QStringList paths;
    for (int row = 0; row < queue_->count(); ++row) paths << queue_->item(row)->text();
    return paths;
}

void BatchPanel::setOutputDirectory(const QString& directory) { output_->setText(QDir::toNativeSeparators(directory)); }

QString BatchPanel::outputDirectory() const { return QDir::fromNativeSeparators(output_->text().trimmed()); }

void BatchPanel::setPack(const QString& pack) { pack_->setPack(pack); }

void BatchPanel::refreshPacks() {
    if (const QString error = pack_->refresh(); !error.isEmpty()) showError(tr("Cannot list the packs"), error);
}

void BatchPanel::chooseFiles() {
    addPaths(QFileDialog::getOpenFileNames(this, tr("Add Files to the Batch"), {},
                                           tr("Documents (*.pdf *.png *.jpg *.jpeg *.tif *.tiff *.txt *.md);;All files (*)")));
}

void BatchPanel::chooseFolder() {
    const QString folder = QFileDialog::getExistingDirectory(this, tr("Add a Folder to the Batch"));
    if (!folder.isEmpty()) addPaths({folder});
}

void BatchPanel::chooseOutputFolder() {
    const QString folder = QFileDialog::getExistingDirectory(this, tr("Batch Output Folder"), outputDirectory());
    if (!folder.isEmpty()) setOutputDirectory(folder);
}

void BatchPanel::removeSelected() {
    qDeleteAll(queue_->selectedItems());
    updateControls();
}

void BatchPanel::dragEnterEvent(QDragEnterEvent* event) {
    if (!isRunning() && !localPaths(event->mimeData()).isEmpty()) event->acceptProposedAction();
}

void BatchPanel::dropEvent(QDropEvent* event) {
    const QStringList paths = localPaths(event->mimeData());
    if (isRunning() || paths.isEmpty()) return;
    addPaths(paths);
    event->acceptProposedAction();
}

void BatchPanel::start() {
    if (isRunning()) return;
    const QStringList paths = queuedPaths();
    const QString output = outputDirectory();
    const QString pack = pack_->pack();
    if (paths.isEmpty()) {
        showError(tr("Nothing to run"), tr("Add the files or folders to extract from first."));
        return;
    }
    if (pack.isEmpty()) {
        showError(tr("No pack"), tr("Choose the pack whose fields the records hold."));
        return;
    }
    if (output.isEmpty()) {
        showError(tr("No output folder"), tr("Choose the folder the records go to."));
        return;
    }
    const QFileInfo outputInfo(output);
    if (outputInfo.exists() && !outputInfo.isDir()) {
        showError(tr("Bad output folder"), tr("%1 is a file, not a folder.").arg(QDir::toNativeSeparators(output)));
        return;
    }
    progressModel_->clear();
    progress_->setRange(0, 0);  // busy until the batch has counted its files
    summary_->setText(worker_.isBusy() ? tr("Waiting for the model's current job…") : tr("Starting…"));
    jobOutput_ = QFileInfo(output).absoluteFilePath();
    outputLabel_->setText(tr("Records in %1").arg(QDir::toNativeSeparators(jobOutput_)));
    cancelling_ = false;
    job_ = worker_.requestBatch(paths, pack, jobOutput_);
    updateControls();
    emit runningChanged(true);
}

void BatchPanel::setPaused(bool paused) {
    if (paused && !isRunning()) paused = false;
    if (paused == paused_) return;
    paused_ = paused;
    worker_.setPaused(paused);
    const QSignalBlocker blocker(pauseButton_);
    pauseButton_->setChecked(paused);
    pauseButton_->setText(paused ? tr("&Resume") : tr("&Pause"));
    if (isRunning()) summary_->setText(paused ? tr("Paused after the record being extracted.") : tr("Running…"));
}

void BatchPanel::cancel() {
    if (!isRunning()) return;
    cancelling_ = true;
    worker_.cancel(job_);
    summary_->setText(tr("Cancelling…"));
    updateControls();
}

void BatchPanel::openOutputFolder() {
    const QString folder = jobOutput_.isEmpty() ? outputDirectory() : jobOutput_;
    if (folder.isEmpty() || !QFileInfo(folder).isDir()) {
        showError(tr("No output folder"), tr("%1 does not exist yet.").arg(QDir::toNativeSeparators(folder)));
        return;
    }
    if (!QDesktopServices::openUrl(QUrl::fromLocalFile(folder)))
        showError(tr("Cannot open the folder"),
                  tr("No file manager opened %1.").arg(QDir::toNativeSeparators(folder)));
}

void BatchPanel::onStarted(JobId job, int files) {
    if (job != job_) return;
    progress_->setRange(0, std::max(files, 1));
    progress_->setValue(0);
    if (!paused_) summary_->setText(tr("Running…"));
}

void BatchPanel::onItemDone(JobId job, const app::BatchItem& item) {
    if (job != job_) return;
    progressModel_->addItem(item);
    items_->scrollToBottom();
    progress_->setValue(std::min(progressModel_->rowCount(), progress_->maximum()));
}

void BatchPanel::onFinished(JobId job, const app::BatchReport& report) {
    if (job != job_) return;
    const int done = report.count(app::BatchOutcome::Done), failed = report.count(app::BatchOutcome::Failed),
              skipped = report.count(app::BatchOutcome::Skipped);
    QString text = tr("%1 done, %2 failed, %3 skipped (done before); %4% of values grounded; %5 s per record.")
                       .arg(done)
                       .arg(failed)
                       .arg(skipped)
                       .arg(report.grounded_share() * 100, 0, 'f', 0)
                       .arg(report.seconds_per_record(), 0, 'f', 1);
    if (report.cancelled) text = tr("Cancelled; Start resumes the batch.") + QLatin1Char(' ') + text;
    else if (failed > 0) text += QLatin1Char(' ') + tr("Start again to retry the failed files.");
    summary_->setText(text);
}

void BatchPanel::onFailed(JobId job, const QString& error) {
    if (job != job_) return;
    summary_->setText(tr("The batch stopped: %1").arg(error));
    showError(tr("Batch failed"), error);
}

void BatchPanel::onJobFinished(JobId job) {
    if (job != job_) return;
    job_ = 0;
    // A pause left on would hold the worker's next batch before its first record.
    setPaused(false);
    if (progress_->maximum() == 0) progress_->setRange(0, 1);
    updateControls();
    emit runningChanged(false);
}

void BatchPanel::updateControls() {
    const bool running = isRunning();
    queue_->setEnabled(!running);
    addFilesButton_->setEnabled(!running);
    addFolderButton_->setEnabled(!running);
    removeButton_->setEnabled(!running && !queue_->selectedItems().isEmpty());
    pack_->setEnabled(!running);
    output_->setEnabled(!running);
    chooseOutputButton_->setEnabled(!running);
    startButton_->setEnabled(!running && queue_->count() > 0 && !outputDirectory().isEmpty());
    pauseButton_->setEnabled(running && !cancelling_);
    cancelButton_->setEnabled(running && !cancelling_);
    const QString folder = jobOutput_.isEmpty() ? outputDirectory() : jobOutput_;
    openOutputButton_->setEnabled(!folder.isEmpty());
    if (jobOutput_.isEmpty())
        outputLabel_->setText(folder.isEmpty() ? tr("No output folder chosen")
                                               : tr("Records in %1").arg(QDir::toNativeSeparators(folder)));
}

void BatchPanel::showError(const QString& title, const QString& text) {
    errorBox_.show(this, title, text);
}

}  // namespace folio::ui
