#pragma once
// Runs the model's jobs for the GUI (ask, summarize, extract, batch) on a
// thread of its own, so the UI thread never waits on the engine.
//
// Thread rules (as IngestWorker's):
// - Construct and destroy on the UI thread. The destructor cancels the
//   running job, drops the queued ones and waits for the thread.
// - request*(), cancel(), setPaused() and setSettings() are called on the
//   constructing thread; they only post work and return at once.
// - Jobs run one at a time in request order on the worker thread, with an
//   app::Library of the worker's own on the library folder (SQLite WAL lets
//   the UI read while it writes) and one ChatModel, loaded at the first job
//   that needs it and again after setSettings() names another model.
// - Signals come from the worker thread; connect receivers on the UI thread
//   with the default (queued) connection. Every job, cancelled or not, ends
//   with exactly one of its *Finished/Ready signals or failed(), and then
//   jobFinished().

#include <QList>
#include <QObject>
#include <QString>
#include <QStringList>
#include <QThread>

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <set>

#include "app/ask.h"
#include "app/batch.h"
#include "app/extract.h"
#include "app/summarize.h"
#include "ingest/pipeline.h"
#include "ui/settings.h"

namespace folio::app {
class ChatModel;
class Conversation;
class Library;
struct PackContent;
}  // namespace folio::app

namespace folio::ui {

using JobId = quint64;

struct AskRequest {
    QString question;
    QString pack;                     // empty: none
    QList<qint64> docIds;             // the documents to search; empty: the whole library
    bool followUp = false;            // continue the conversation; false starts a new one
};

class AssistantWorker final : public QObject {
    Q_OBJECT

public:
    // `pipeline`: how a batch ingests its files (the worker program's path
    // among them); the OCR languages come from the settings.
    AssistantWorker(QString libraryDirectory, FolioSettings settings, ingest::PipelineOptions pipeline = {});
    ~AssistantWorker() override;

    // Takes effect at the next job: a changed model, context or pack
    // adapter choice reloads the model then.
    void setSettings(const FolioSettings& settings);

    JobId requestAsk(const AskRequest& request);
    JobId requestSummary(qint64 docId, const QString& pack);
    // One record per document, in order, with the schema, instructions and
    // validators of `pack`, or (when schemaFile is set) a JSON Schema file's
    // schema and no pack.
    JobId requestExtraction(const QList<qint64>& docIds, const QString& pack, const QString& schemaFile = {});
    // `folio batch PATHS --pack PACK --out OUTPUTDIR`: ingests and extracts
    // each file, resumably (a record already in OUTPUTDIR is skipped).
    JobId requestBatch(const QStringList& paths, const QString& pack, const QString& outputDirectory);

    // Stops `job` if it is running, else drops it when its turn comes;
    // other jobs go on (the panels share the worker).
    void cancel(JobId job);
    // Stops the running job and drops all those queued before this call.
    void cancel();
    // A paused batch finishes the record it is on and waits before the
    // next; other jobs are not paused.
    void setPaused(bool paused);
    // A job is running or queued.
    bool isBusy() const { return pendingJobs_.load() > 0; }

signals:
    void jobStarted(folio::ui::JobId job);
    void modelLoading(const QString& path);
    void modelLoaded(const QString& path, int contextTokens);

    void answerPiece(folio::ui::JobId job, const QString& piece);
    void answerReady(folio::ui::JobId job, const folio::app::Answer& answer);

    void summaryProgress(folio::ui::JobId job, const folio::app::SummarizeProgress& progress);
    void summaryReady(folio::ui::JobId job, const folio::app::Summary& summary);

    // `schema`: the JSON Schema the records follow (the pack's or the file's).
    void extractionStarted(folio::ui::JobId job, const QString& schema, int documents);
    void recordReady(folio::ui::JobId job, const folio::app::ExtractionRecord& record);
    void extractionFinished(folio::ui::JobId job, bool cancelled);

    void batchStarted(folio::ui::JobId job, int files);
    void batchItemDone(folio::ui::JobId job, const folio::app::BatchItem& item);
    void batchFinished(folio::ui::JobId job, const folio::app::BatchReport& report);

    // The job stopped on an error (one line); what it finished before is
    // already reported.
    void failed(folio::ui::JobId job, const QString& error);
    // The job's last signal, whatever its outcome.
    void jobFinished(folio::ui::JobId job);

private:
    // Worker thread only.
    void runAsk(JobId job, const AskRequest& request);
    void runSummary(JobId job, qint64 docId, const QString& pack);
    void runExtraction(JobId job, const QList<qint64>& docIds, const QString& pack, const QString& schemaFile);
    void runBatch(JobId job, const QStringList& paths, const QString& pack, const QString& outputDirectory);
    // Runs `work` as job `job` unless it was cancelled before it began;
    // turns exceptions into failed().
    template <typename Work>
    void runJob(JobId job, Work&& work);
    app::Library& library();
    app::ChatModel& chatModel(const app::PackContent* pack);
    void waitWhilePaused();
    void wakePausedBatch();

    const QString libraryDirectory_;
    const ingest::PipelineOptions pipeline_;
    QThread thread_;

    // Worker thread only.
    FolioSettings settings_;
    std::unique_ptr<app::Library> library_;
    std::unique_ptr<app::ChatModel> model_;
    QString modelPath_, modelAdapterPack_;
    int modelContext_ = -1;
    app::DeviceChoice modelDevice_ = app::DeviceChoice::Auto;  // as asked for; adapters may have moved it to the CPU
    std::unique_ptr<app::Conversation> conversation_;
    QString conversationPack_;

    JobId lastRequested_ = 0;             // UI thread
    std::atomic<int> pendingJobs_{0};     // requested and not finished

    // Cancellation: cancel() marks the jobs requested so far, cancel(job)
    // one job; either raises cancelRunning_, which the running job's app
    // call polls, when it is the one to stop. Starting a job, and those
    // marks, happen under cancelMutex_.
    std::mutex cancelMutex_;
    JobId runningJob_ = 0;
    JobId cancelledThrough_ = 0;
    std::set<JobId> cancelledJobs_;
    std::atomic<bool> cancelRunning_{false};

    std::mutex pauseMutex_;
    std::condition_variable pauseChanged_;
    bool paused_ = false;
};

}  // namespace folio::ui

Q_DECLARE_METATYPE(folio::app::Answer)
Q_DECLARE_METATYPE(folio::app::SummarizeProgress)
Q_DECLARE_METATYPE(folio::app::Summary)
Q_DECLARE_METATYPE(folio::app::ExtractionRecord)
Q_DECLARE_METATYPE(folio::app::BatchItem)
Q_DECLARE_METATYPE(folio::app::BatchReport)
