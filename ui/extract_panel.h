#pragma once
// The extraction panel: a pack (or a JSON Schema file) run over the
// documents selected in the library, one record per document shown as it
// arrives in an ExtractionModel, where the user corrects and approves
// values, opens a value's source page, and exports the records as CSV,
// JSON lines or FHIR (the bytes `folio extract` writes for them). The model
// runs on the AssistantWorker; the panel only posts and shows.
//
// Thread rules: UI thread only.

#include <QHash>
#include <QList>
#include <QString>
#include <QStringList>
#include <QWidget>

#include "ui/assistant_worker.h"
#include "ui/error_box.h"

class QCheckBox;
class QComboBox;
class QLabel;
class QModelIndex;
class QProgressBar;
class QPushButton;
class QTreeView;

namespace folio::ui {

class ExtractionModel;

class ExtractPanel final : public QWidget {
    Q_OBJECT

public:
    enum class ExportFormat { Csv, JsonLines, Fhir };

    explicit ExtractPanel(AssistantWorker& worker, QWidget* parent = nullptr);

    // The documents Extract runs over, with their names for the panel.
    // `sha256`, when given (parallel to docIds), names each record's FHIR
    // resources as the CLI does (the document's content hash); without it
    // the doc id does, the CLI's fallback.
    void setSelectedDocuments(const QList<qint64>& docIds, const QStringList& names, const QStringList& sha256 = {});
    void setPack(const QString& pack);
    // Re-reads the pack names (after a pack is installed or removed).
    void refreshPacks();
    // Extracts with a JSON Schema file's schema instead of a pack's. False,
    // after an error dialog, when the file is not a schema Folio can use.
    bool useSchemaFile(const QString& path);

    bool isExtracting() const { return job_ != 0; }
    ExtractionModel& model() const { return *model_; }

    // Writes the records (only the approved ones when that box is checked)
    // to `path`, replacing it whole. False after an error dialog.
    bool exportTo(ExportFormat format, const QString& path);

public slots:
    void extract();
    void stop();

signals:
    // A value's source was activated: show the page and the span of its stored text.
    void sourceRequested(qint64 docId, int page, qulonglong begin, qulonglong end);
    void extractingChanged(bool extracting);

private:
    void onSchemaActivated(int index);
    void onStarted(JobId job, const QString& schema, int documents);
    void onRecord(JobId job, const app::ExtractionRecord& record);
    void onFinished(JobId job, bool cancelled);
    void onFailed(JobId job, const QString& error);
    void onJobFinished(JobId job);
    void openSource(const QModelIndex& index);
    void chooseExportFile(ExportFormat format);
    void updateControls();
    void showError(const QString& title, const QString& text);

    AssistantWorker& worker_;
    ExtractionModel* model_ = nullptr;
    QComboBox* schema_ = nullptr;
    QLabel* documents_ = nullptr;
    QPushButton* extractButton_ = nullptr;
    QPushButton* stopButton_ = nullptr;
    QProgressBar* progress_ = nullptr;
    QLabel* status_ = nullptr;
    QTreeView* view_ = nullptr;
    QPushButton* openSourceButton_ = nullptr;
    QCheckBox* approvedOnly_ = nullptr;
    QPushButton* exportCsvButton_ = nullptr;
    QPushButton* exportJsonButton_ = nullptr;
    QPushButton* exportFhirButton_ = nullptr;
    ErrorBox errorBox_;

    QList<qint64> docIds_;
    QHash<qint64, QString> documentKeys_;
    int schemaIndex_ = 0;   // the schema item chosen before "Schema file…" was activated

    JobId job_ = 0;         // the extraction running or queued; 0: none
    bool jobFhir_ = false;  // its pack writes FHIR
    int jobDocuments_ = 0, jobDone_ = 0;
};

}  // namespace folio::ui
