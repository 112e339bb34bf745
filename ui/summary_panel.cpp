#include "ui/summary_panel.h"

#include <QComboBox>
#include <QHBoxLayout>
#include <QLabel>
#include <QProgressBar>
#include <QPushButton>
#include <QTextBrowser>
#include <QUrl>
#include <QVBoxLayout>

#include <algorithm>

#include "ui/pack_combo_box.h"

namespace folio::ui {

SummaryPanel::SummaryPanel(AssistantWorker& worker, QWidget* parent) : QWidget(parent), worker_(worker) {
    document_ = new QLabel(this);
    document_->setObjectName(QStringLiteral("summaryDocument"));

    pack_ = new PackComboBox(/*offerNoPack=*/true, this);
    pack_->setObjectName(QStringLiteral("summaryPack"));
    pack_->setToolTip(tr("A domain pack tells the model whose reading to serve (an analyst's, a clinician's)"));

    summarizeButton_ = new QPushButton(tr("&Summarize"), this);
    summarizeButton_->setObjectName(QStringLiteral("summarizeButton"));
    connect(summarizeButton_, &QPushButton::clicked, this, &SummaryPanel::summarize);

    stopButton_ = new QPushButton(tr("S&top"), this);
    stopButton_->setObjectName(QStringLiteral("summaryStopButton"));
    connect(stopButton_, &QPushButton::clicked, this, &SummaryPanel::stop);

    progress_ = new QProgressBar(this);
    progress_->setObjectName(QStringLiteral("summaryProgress"));
    progress_->setVisible(false);

    status_ = new QLabel(this);
    status_->setObjectName(QStringLiteral("summaryStatus"));
    status_->setWordWrap(true);

    points_ = new QTextBrowser(this);
    points_->setObjectName(QStringLiteral("summaryPoints"));
    points_->setOpenLinks(false);
    points_->setPlaceholderText(
        tr("Select a document in the library and press Summarize: each point cites its pages, which open the page."));
    connect(points_, &QTextBrowser::anchorClicked, this, &SummaryPanel::onLinkClicked);

    auto* bar = new QHBoxLayout;
    bar->addWidget(document_, 1);
    bar->addWidget(new QLabel(tr("Pack:"), this));
    bar->addWidget(pack_);
    bar->addWidget(summarizeButton_);
    bar->addWidget(stopButton_);

    auto* layout = new QVBoxLayout(this);
    layout->addLayout(bar);
    layout->addWidget(progress_);
    layout->addWidget(status_);
    layout->addWidget(points_, 1);

    connect(&worker_, &AssistantWorker::summaryProgress, this, &SummaryPanel::onProgress);
    connect(&worker_, &AssistantWorker::summaryReady, this, &SummaryPanel::onSummary);
    connect(&worker_, &AssistantWorker::failed, this, &SummaryPanel::onFailed);
    connect(&worker_, &AssistantWorker::jobFinished, this, &SummaryPanel::onFinished);
    setSelectedDocument(0, {});
}

void SummaryPanel::setSelectedDocument(qint64 docId, const QString& name) {
    selectedDocId_ = docId;
    selectedName_ = name;
    document_->setText(docId > 0 ? tr("Document: <b>%1</b>").arg(name.toHtmlEscaped())
                                 : tr("No document selected"));
    updateControls();
}

void SummaryPanel::setPack(const QString& pack) { pack_->setPack(pack); }

// A failure to list the packs is the Ask panel's to report; a summary needs no pack.
void SummaryPanel::refreshPacks() { pack_->refresh(); }

void SummaryPanel::summarize() {
    if (isSummarizing() || selectedDocId_ <= 0) return;
    job_ = worker_.requestSummary(selectedDocId_, pack_->pack());
    summary_.reset();
    summaryName_ = selectedName_;
    progress_->setRange(0, 0);
    progress_->setVisible(true);
    status_->setText(tr("Reading %1…").arg(selectedName_));
    render();
    updateControls();
}

void SummaryPanel::stop() {
    if (!isSummarizing()) return;
    worker_.cancel(job_);
    status_->setText(tr("Stopping…"));
}

void SummaryPanel::onProgress(JobId job, const app::SummarizeProgress& progress) {
    if (job != job_) return;
    progress_->setRange(0, std::max(progress.total, 1));
    progress_->setValue(progress.done);
    if (progress.stage == app::SummarizeStage::Sections)
        status_->setText(progress.done == 0 ? tr("Summarizing %n section(s)…", nullptr, progress.total)
                                            : tr("Section %1 of %2 done (pp. %3–%4)")
                                                  .arg(progress.done)
                                                  .arg(progress.total)
                                                  .arg(progress.first_page)
                                                  .arg(progress.last_page));
    else
        status_->setText(tr("Merging, round %1: %2 of %3").arg(progress.round).arg(progress.done).arg(progress.total));
}

void SummaryPanel::onSummary(JobId job, const app::Summary& summary) {
    if (job != job_) return;
    if (summary.cancelled) {
        status_->setText(tr("Stopped."));
        return;
    }
    summary_ = summary;
    QString note = tr("%n point(s) from %1 pages in %2 s", nullptr, static_cast<int>(summary.points.size()))
                       .arg(summary.pages)
                       .arg(summary.timings.seconds, 0, 'f', 1);
    if (summary.dropped_points > 0)
        note += tr("; %n point(s) the text did not support were left out", nullptr, summary.dropped_points);
    if (summary.points.empty()) note = tr("The model wrote no point that the document's text supports.");
    status_->setText(note);
    render();
}

void SummaryPanel::onFailed(JobId job, const QString& error) {
    if (job == job_) status_->setText(error);
}

void SummaryPanel::onFinished(JobId job) {
    if (job != job_) return;
    job_ = 0;
    progress_->setVisible(false);
    updateControls();
}

void SummaryPanel::onLinkClicked(const QUrl& url) {
    if (url.scheme() != QLatin1String("page") || !summary_) return;
    emit pageRequested(summary_->doc_id, url.path().toInt());
}

void SummaryPanel::render() {
    if (!summary_) {
        points_->clear();
        return;
    }
    QString html = QStringLiteral("<h3>%1</h3><ul>").arg(summaryName_.toHtmlEscaped());
    for (const app::SummaryPoint& point : summary_->points) {
        QStringList pages;
        for (const int page : point.pages) pages << QStringLiteral("<a href=\"page:%1\">%1</a>").arg(page);
        const QString cite = (point.pages.size() == 1 ? tr("p. %1") : tr("pp. %1")).arg(pages.join(QStringLiteral(", ")));
        html += QStringLiteral("<li>%1 <span title=\"%3\">(%2)</span></li>")
                    .arg(QString::fromStdString(point.text).toHtmlEscaped(), cite,
                         point.pages_inferred ? tr("Pages found by Folio: the model did not cite them")
                                              : tr("Pages the model cited"));
    }
    html += QStringLiteral("</ul>");
    points_->setHtml(html);
}

void SummaryPanel::updateControls() {
    summarizeButton_->setEnabled(!isSummarizing() && selectedDocId_ > 0);
    stopButton_->setEnabled(isSummarizing());
    pack_->setEnabled(!isSummarizing());
}

}  // namespace folio::ui
