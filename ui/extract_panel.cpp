#include "ui/extract_panel.h"

#include <QCheckBox>
#include <QDir>
#include <QComboBox>
#include <QFileDialog>
#include <QFileInfo>
#include <QHBoxLayout>
#include <QHeaderView>
#include <QItemSelectionModel>
#include <QLabel>
#include <QMessageBox>
#include <QProgressBar>
#include <QPushButton>
#include <QSaveFile>
#include <QTreeView>
#include <QVBoxLayout>

#include <exception>

#include "app/json_schema.h"
#include "app/packs.h"
#include "ui/extraction_model.h"

namespace folio::ui {
namespace {

// What a schema item of the combo is; its Qt::UserRole holds the pack name or the file path.
constexpr int kKindRole = Qt::UserRole + 1;
enum SchemaKind { PackItem, FileItem, ChooseFileItem };

}  // namespace

ExtractPanel::ExtractPanel(AssistantWorker& worker, QWidget* parent) : QWidget(parent), worker_(worker) {
    model_ = new ExtractionModel(this);
    connect(model_, &ExtractionModel::editRejected, this,
            [this](const QString& reason) { showError(tr("Value not changed"), reason); });

    schema_ = new QComboBox(this);
    schema_->setObjectName(QStringLiteral("extractSchema"));
    schema_->setToolTip(tr("The fields to extract: a domain pack's schema, or a JSON Schema file"));
    connect(schema_, &QComboBox::activated, this, &ExtractPanel::onSchemaActivated);

    documents_ = new QLabel(this);
    documents_->setObjectName(QStringLiteral("extractDocuments"));

    extractButton_ = new QPushButton(tr("&Extract"), this);
    extractButton_->setObjectName(QStringLiteral("extractButton"));
    extractButton_->setToolTip(tr("Extract the fields from each selected document"));
    connect(extractButton_, &QPushButton::clicked, this, &ExtractPanel::extract);

    stopButton_ = new QPushButton(tr("&Stop"), this);
    stopButton_->setObjectName(QStringLiteral("extractStopButton"));
    stopButton_->setToolTip(tr("Stop after the records already made"));
    connect(stopButton_, &QPushButton::clicked, this, &ExtractPanel::stop);

    progress_ = new QProgressBar(this);
    progress_->setObjectName(QStringLiteral("extractProgress"));
    progress_->setFormat(tr("%v of %m documents"));
    progress_->setRange(0, 1);
    progress_->setValue(0);

    status_ = new QLabel(this);
    status_->setObjectName(QStringLiteral("extractStatus"));
    status_->setTextInteractionFlags(Qt::TextSelectableByMouse);
    refreshPacks();  // it reports a failure in status_

    view_ = new QTreeView(this);
    view_->setObjectName(QStringLiteral("extractionView"));
    view_->setModel(model_);
    view_->setAlternatingRowColors(true);
    view_->setEditTriggers(QAbstractItemView::DoubleClicked | QAbstractItemView::EditKeyPressed |
                           QAbstractItemView::SelectedClicked);
    view_->header()->setSectionResizeMode(ExtractionModel::ConfidenceColumn, QHeaderView::Stretch);
    view_->header()->setStretchLastSection(false);
    // Starting widths from sample text, as the library table does: field
    // paths such as "medications[0].name" and short values fit unclipped.
    const QFontMetrics metrics = view_->fontMetrics();
    view_->header()->resizeSection(ExtractionModel::FieldColumn, metrics.horizontalAdvance(QString(26, QLatin1Char('n'))));
    view_->header()->resizeSection(ExtractionModel::ValueColumn, metrics.horizontalAdvance(QString(24, QLatin1Char('n'))));
    view_->header()->resizeSection(ExtractionModel::GroundedColumn, metrics.horizontalAdvance(tr("Grounded")) + 24);
    view_->setToolTip(tr("Double-click a value to correct it, a source to open its page; tick what you approve"));
    connect(view_, &QTreeView::doubleClicked, this, [this](const QModelIndex& index) {
        if (index.column() == ExtractionModel::SourceColumn) openSource(index);
    });
    connect(view_->selectionModel(), &QItemSelectionModel::currentChanged, this, &ExtractPanel::updateControls);

    openSourceButton_ = new QPushButton(tr("&Open Source"), this);
    openSourceButton_->setObjectName(QStringLiteral("openSourceButton"));
    openSourceButton_->setToolTip(tr("Show the page the selected value was found on"));
    connect(openSourceButton_, &QPushButton::clicked, this, [this] { openSource(view_->currentIndex()); });

    approvedOnly_ = new QCheckBox(tr("Approved only"), this);
    approvedOnly_->setObjectName(QStringLiteral("exportApprovedOnly"));
    approvedOnly_->setToolTip(tr("Export only the records whose values are all approved"));

    exportCsvButton_ = new QPushButton(tr("Export &CSV…"), this);
    exportCsvButton_->setObjectName(QStringLiteral("exportCsvButton"));
    connect(exportCsvButton_, &QPushButton::clicked, this, [this] { chooseExportFile(ExportFormat::Csv); });
    exportJsonButton_ = new QPushButton(tr("Export &JSON…"), this);
    exportJsonButton_->setObjectName(QStringLiteral("exportJsonButton"));
    exportJsonButton_->setToolTip(tr("One JSON record per line"));
    connect(exportJsonButton_, &QPushButton::clicked, this, [this] { chooseExportFile(ExportFormat::JsonLines); });
    exportFhirButton_ = new QPushButton(tr("Export &FHIR…"), this);
    exportFhirButton_->setObjectName(QStringLiteral("exportFhirButton"));
    exportFhirButton_->setToolTip(tr("One FHIR R4 Bundle per line (packs whose records are FHIR)"));
    connect(exportFhirButton_, &QPushButton::clicked, this, [this] { chooseExportFile(ExportFormat::Fhir); });

    auto* options = new QHBoxLayout;
    options->addWidget(new QLabel(tr("Extract:"), this));
    options->addWidget(schema_);
    options->addWidget(documents_, 1);
    options->addWidget(extractButton_);
    options->addWidget(stopButton_);

    auto* exports = new QHBoxLayout;
    exports->addWidget(openSourceButton_);
    exports->addStretch();
    exports->addWidget(approvedOnly_);
    exports->addWidget(exportCsvButton_);
    exports->addWidget(exportJsonButton_);
    exports->addWidget(exportFhirButton_);

    auto* layout = new QVBoxLayout(this);
    layout->addLayout(options);
    layout->addWidget(progress_);
    layout->addWidget(view_, 1);
    layout->addWidget(status_);
    layout->addLayout(exports);

    connect(&worker_, &AssistantWorker::extractionStarted, this, &ExtractPanel::onStarted);
    connect(&worker_, &AssistantWorker::recordReady, this, &ExtractPanel::onRecord);
    connect(&worker_, &AssistantWorker::extractionFinished, this, &ExtractPanel::onFinished);
    connect(&worker_, &AssistantWorker::failed, this, &ExtractPanel::onFailed);
    connect(&worker_, &AssistantWorker::jobFinished, this, &ExtractPanel::onJobFinished);
    setSelectedDocuments({}, {});
}

void ExtractPanel::setSelectedDocuments(const QList<qint64>& docIds, const QStringList& names,
                                        const QStringList& sha256) {
    docIds_ = docIds;
    for (qsizetype i = 0; i < docIds.size() && i < sha256.size(); ++i)
        if (!sha256[i].isEmpty()) documentKeys_.insert(docIds[i], sha256[i]);
    if (docIds.isEmpty())
        documents_->setText(tr("Select documents in the library to extract from"));
    else if (docIds.size() == 1 && !names.isEmpty())
        documents_->setText(tr("from %1").arg(names.front()));
    else
        documents_->setText(tr("from %n selected document(s)", nullptr, static_cast<int>(docIds.size())));
    documents_->setToolTip(names.join(QLatin1Char('\n')));
    updateControls();
}

void ExtractPanel::setPack(const QString& pack) {
    for (int i = 0; i < schema_->count(); ++i)
        if (schema_->itemData(i, kKindRole).toInt() == PackItem && schema_->itemData(i).toString() == pack) {
            schema_->setCurrentIndex(i);
            schemaIndex_ = i;
            return;
        }
}

void ExtractPanel::refreshPacks() {
    const QString current = schema_->currentData().toString();
    const int currentKind = schema_->currentData(kKindRole).toInt();
    schema_->clear();
    try {
        for (const std::string& name : app::pack_names()) {
            schema_->addItem(QString::fromStdString(name), QString::fromStdString(name));
            schema_->setItemData(schema_->count() - 1, PackItem, kKindRole);
        }
    } catch (const std::exception& e) {
        status_->setText(tr("Cannot list the packs: %1").arg(QString::fromStdString(e.what())));
    }
    schema_->insertSeparator(schema_->count());
    schema_->addItem(tr("Schema file…"));
    schema_->setItemData(schema_->count() - 1, ChooseFileItem, kKindRole);
    schemaIndex_ = 0;
    if (currentKind == FileItem && !current.isEmpty())
        useSchemaFile(current);
    else
        setPack(current);
}

void ExtractPanel::onSchemaActivated(int index) {
    if (schema_->itemData(index, kKindRole).toInt() != ChooseFileItem) {
        schemaIndex_ = index;
        return;
    }
    // Back to the previous choice until a usable file is picked.
    schema_->setCurrentIndex(schemaIndex_);
    const QString path =
        QFileDialog::getOpenFileName(this, tr("Extract with a JSON Schema"), {}, tr("JSON Schema (*.json);;All files (*)"));
    if (!path.isEmpty()) useSchemaFile(path);
}

bool ExtractPanel::useSchemaFile(const QString& path) {
    try {
        app::JsonSchema::load(path.toStdString());
    } catch (const app::SchemaError& e) {
        // what() is one line: the file unreadable or not JSON, or the place in the schema.
        showError(tr("Cannot use the schema"),
                  tr("%1 is not a JSON Schema Folio can extract with: %2").arg(QFileInfo(path).fileName(),
                                                                                QString::fromUtf8(e.what())));
        return false;
    }
    int item = -1;
    for (int i = 0; i < schema_->count(); ++i)
        if (schema_->itemData(i, kKindRole).toInt() == FileItem) item = i;
    const QString label = tr("Schema: %1").arg(QFileInfo(path).fileName());
    if (item < 0) {
        item = schema_->count() - 1;  // before "Schema file…"
        schema_->insertItem(item, label, path);
        schema_->setItemData(item, FileItem, kKindRole);
    } else {
        schema_->setItemText(item, label);
        schema_->setItemData(item, path);
    }
    schema_->setItemData(item, path, Qt::ToolTipRole);
    schema_->setCurrentIndex(item);
    schemaIndex_ = item;
    return true;
}

void ExtractPanel::extract() {
    if (isExtracting()) return;
    if (docIds_.isEmpty()) {
        showError(tr("Nothing to extract from"), tr("Select one or more documents in the library first."));
        return;
    }
    const int kind = schema_->currentData(kKindRole).toInt();
    const QString choice = schema_->currentData().toString();
    if (kind == ChooseFileItem || choice.isEmpty()) {
        showError(tr("Nothing to extract"), tr("Choose a pack or a JSON Schema file first."));
        return;
    }
    QString pack, schemaFile;
    jobFhir_ = false;
    if (kind == FileItem) {
        schemaFile = choice;
    } else {
        pack = choice;
        try {
            jobFhir_ = app::load_pack(pack.toStdString()).fhir;
        } catch (const std::exception& e) {
            showError(tr("Cannot use the pack"), QString::fromStdString(e.what()));
            return;
        }
    }
    jobDocuments_ = static_cast<int>(docIds_.size());
    jobDone_ = 0;
    progress_->setRange(0, jobDocuments_);
    progress_->setValue(0);
    status_->setText(worker_.isBusy() ? tr("Waiting for the model's current job…") : tr("Starting…"));
    job_ = worker_.requestExtraction(docIds_, pack, schemaFile);
    updateControls();
    emit extractingChanged(true);
}

void ExtractPanel::stop() {
    if (!isExtracting()) return;
    worker_.cancel(job_);
    status_->setText(tr("Stopping…"));
}

void ExtractPanel::onStarted(JobId job, const QString& schema, int documents) {
    if (job != job_) return;
    try {
        model_->setSchema(nlohmann::ordered_json::parse(schema.toStdString()), jobFhir_);
    } catch (const std::exception& e) {
        // The worker extracts with this very schema, so it parsed there.
        showError(tr("Cannot show the records"), QString::fromStdString(e.what()));
    }
    jobDocuments_ = documents;
    progress_->setRange(0, documents);
    progress_->setValue(0);
    status_->setText(tr("Extracting…"));
    updateControls();
}

void ExtractPanel::onRecord(JobId job, const app::ExtractionRecord& record) {
    if (job != job_ || !model_->hasSchema()) return;
    model_->addRecord(record, documentKeys_.value(record.doc_id).toStdString());
    view_->expand(model_->index(model_->recordCount() - 1, 0));
    progress_->setValue(++jobDone_);
    status_->setText(tr("%1 of %2 documents").arg(jobDone_).arg(jobDocuments_));
    updateControls();
}

void ExtractPanel::onFinished(JobId job, bool cancelled) {
    if (job != job_) return;
    int grounded = 0, values = 0, failed = 0;
    for (const app::ExtractionRecord& record : model_->editedRecords()) {
        grounded += record.grounded;
        values += record.grounded + record.ungrounded;
        failed += record.data.is_null() ? 1 : 0;
    }
    QString text = cancelled ? tr("Stopped after %1 of %2 documents.").arg(jobDone_).arg(jobDocuments_)
                             : tr("Extracted %n document(s).", nullptr, jobDone_);
    text += QLatin1Char(' ') + tr("%1 of %2 values found in the documents.").arg(grounded).arg(values);
    if (failed > 0) text += QLatin1Char(' ') + tr("%n document(s) failed.", nullptr, failed);
    status_->setText(text);
}

void ExtractPanel::onFailed(JobId job, const QString& error) {
    if (job != job_) return;
    status_->setText(tr("Extraction failed."));
    showError(tr("Extraction failed"), error);
}

void ExtractPanel::onJobFinished(JobId job) {
    if (job != job_) return;
    job_ = 0;
    updateControls();
    emit extractingChanged(false);
}

void ExtractPanel::openSource(const QModelIndex& index) {
    if (const std::optional<ValueSource> source = model_->sourceOf(index))
        emit sourceRequested(source->docId, source->page, source->begin, source->end);
}

void ExtractPanel::chooseExportFile(ExportFormat format) {
    QString title, filter, suffix;
    switch (format) {
    case ExportFormat::Csv:
        title = tr("Export CSV");
        filter = tr("CSV (*.csv)");
        suffix = QStringLiteral("csv");
        break;
    case ExportFormat::JsonLines:
        title = tr("Export JSON Lines");
        filter = tr("JSON Lines (*.jsonl)");
        suffix = QStringLiteral("jsonl");
        break;
    case ExportFormat::Fhir:
        title = tr("Export FHIR Bundles");
        filter = tr("FHIR Bundles, one per line (*.ndjson *.jsonl)");
        suffix = QStringLiteral("ndjson");
        break;
    }
    const QString path = QFileDialog::getSaveFileName(this, title, QStringLiteral("records.") + suffix, filter);
    if (!path.isEmpty()) exportTo(format, path);
}

bool ExtractPanel::exportTo(ExportFormat format, const QString& path) {
    const bool approvedOnly = approvedOnly_->isChecked();
    std::string content;
    switch (format) {
    case ExportFormat::Csv: content = model_->csv(approvedOnly); break;
    case ExportFormat::JsonLines: content = model_->jsonLines(approvedOnly); break;
    case ExportFormat::Fhir:
        if (!model_->hasFhir()) {
            showError(tr("Cannot export FHIR"), tr("These records are not of a pack whose records are FHIR (medical)."));
            return false;
        }
        content = model_->fhirBundles(approvedOnly);
        break;
    }
    // Written beside and renamed, as the CLI does, so a failed write leaves an earlier file whole.
    QSaveFile file(path);
    if (!file.open(QIODevice::WriteOnly) ||
        file.write(content.data(), static_cast<qint64>(content.size())) != static_cast<qint64>(content.size()) ||
        !file.commit()) {
        showError(tr("Export failed"), tr("Cannot write %1: %2").arg(path, file.errorString()));
        return false;
    }
    status_->setText(tr("Exported to %1.").arg(QDir::toNativeSeparators(path)));
    return true;
}

void ExtractPanel::updateControls() {
    extractButton_->setEnabled(!isExtracting() && !docIds_.isEmpty());
    stopButton_->setEnabled(isExtracting());
    schema_->setEnabled(!isExtracting());
    const bool haveRecords = model_->recordCount() > 0;
    exportCsvButton_->setEnabled(haveRecords);
    exportJsonButton_->setEnabled(haveRecords);
    exportFhirButton_->setEnabled(haveRecords && model_->hasFhir());
    openSourceButton_->setEnabled(model_->sourceOf(view_->currentIndex()).has_value());
}

void ExtractPanel::showError(const QString& title, const QString& text) {
    errorBox_.show(this, title, text);
}

}  // namespace folio::ui
