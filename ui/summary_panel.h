#pragma once
// Summarizes the selected document into points, each with the pages it
// comes from as links that open the viewer there. The model runs on the
// AssistantWorker; long filings go section by section, then merge, and the
// panel shows which step it is on.
//
// Thread rules: UI thread only.

#include <QString>
#include <QWidget>

#include <optional>

#include "app/summarize.h"
#include "ui/assistant_worker.h"

class QLabel;
class QProgressBar;
class QPushButton;
class QTextBrowser;
class QUrl;

namespace folio::ui {

class PackComboBox;

class SummaryPanel final : public QWidget {
    Q_OBJECT

public:
    explicit SummaryPanel(AssistantWorker& worker, QWidget* parent = nullptr);

    // The document Summarize works on; 0: none.
    void setSelectedDocument(qint64 docId, const QString& name);
    void setPack(const QString& pack);
    void refreshPacks();

    bool isSummarizing() const { return job_ != 0; }
    const std::optional<app::Summary>& summary() const { return summary_; }

public slots:
    void summarize();
    void stop();

signals:
    void pageRequested(qint64 docId, int page);

private:
    void onProgress(JobId job, const app::SummarizeProgress& progress);
    void onSummary(JobId job, const app::Summary& summary);
    void onFailed(JobId job, const QString& error);
    void onFinished(JobId job);
    void onLinkClicked(const QUrl& url);
    void render();
    void updateControls();

    AssistantWorker& worker_;
    QLabel* document_ = nullptr;
    PackComboBox* pack_ = nullptr;
    QPushButton* summarizeButton_ = nullptr;
    QPushButton* stopButton_ = nullptr;
    QProgressBar* progress_ = nullptr;
    QLabel* status_ = nullptr;
    QTextBrowser* points_ = nullptr;

    qint64 selectedDocId_ = 0;
    QString selectedName_;
    JobId job_ = 0;
    std::optional<app::Summary> summary_;
    QString summaryName_;
};

}  // namespace folio::ui
