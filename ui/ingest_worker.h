#pragma once
// Runs the GUI's ingest and removal jobs on a thread of its own, so that the
// UI thread never waits on extraction, OCR, hashing or the store's write lock.
//
// Thread rules:
// - Construct and destroy an IngestWorker on the UI thread. The constructor
//   moves the worker to a QThread it owns and starts that thread; the
//   destructor cancels all ingests, stops the thread and waits for it (the
//   wait lasts until the running ingest notices the cancel).
// - requestIngest(), requestRemoval() and cancel() are called on the thread
//   that constructed the worker. They only post work and return at once.
// - Jobs run on the worker thread, one at a time, in request order. The
//   worker opens its own app::Library on the directory it was given, on that
//   thread, at its first job, and uses it only there. The UI keeps its own
//   Library for reading: SQLite (WAL) lets it read while the worker writes.
// - Signals are emitted on the worker thread; connect receivers on the UI
//   thread with the default (queued) connection.
// - Every ingest request ends with exactly one ingestFinished(), every
//   removal request with exactly one removalFinished(), in request order.
// - After an ingest the stored chunks are embedded for the vector search, as
//   background work that yields: a request made meanwhile stops it at its
//   next batch, runs, and the embedding resumes after it (it is resumable:
//   only chunks without a vector are embedded). The same work starts when
//   the worker opens a library that has chunks left without a vector, or
//   vectors the embedding model no longer makes (a stopped session, another
//   model, an older Folio): the search by meaning catches up on its own.

#include <QList>
#include <QObject>
#include <QString>
#include <QStringList>
#include <QThread>

#include <atomic>
#include <memory>

#include "app/library.h"
#include "ingest/pipeline.h"

namespace folio::ui {

class IngestWorker final : public QObject {
    Q_OBJECT

public:
    IngestWorker(QString libraryDirectory, ingest::PipelineOptions pipeline);
    ~IngestWorker() override;

    // Ingests files and folders (walked recursively) into the library.
    void requestIngest(const QStringList& paths);
    // Removes documents from the library (never the files on disk).
    void requestRemoval(const QList<qint64>& documentIds);
    // Stops the running ingest and drops the ingests requested before this
    // call; each still ends with ingestFinished(), its report marked
    // cancelled. Removals are not cancelled: each is one short transaction.
    void cancel();
    // The OCR languages (Tesseract form, "eng+chi_sim") of the ingests
    // requested from now on.
    void setOcrLanguages(const QString& languages);

signals:
    // An ingest began; `files` is what it will go through (folders expanded).
    void ingestStarted(const QStringList& files);
    // Per file, at most every few tens of milliseconds.
    void progress(const folio::ingest::PipelineProgress& progress);
    void fileDone(const folio::app::IngestedFile& file);
    // The background embedding: progress at most every few tens of
    // milliseconds, then its end: `remaining` chunks still lack a vector
    // (it yielded, or failed with `error`, one line).
    void embeddingProgress(qint64 embedded, qint64 remaining);
    void embeddingFinished(qint64 embedded, qint64 remaining, const QString& error);
    // `error` is non-empty when the ingest stopped early on an error of its
    // own (library unreadable, worker processes missing); files already
    // done are in the report.
    void ingestFinished(const folio::app::IngestReport& report, const QString& error);
    // `documentIds` as requested; `error` is non-empty when not all of them
    // could be removed.
    void removalFinished(const QList<qint64>& documentIds, const QString& error);

private:
    // Worker thread only.
    void runIngest(quint64 job, const QStringList& paths);
    void runRemoval(const QList<qint64>& documentIds);
    void scheduleEmbedding();
    void runEmbedding();
    void embedWhatTheLibraryLacks();
    app::Library& library();

    const QString libraryDirectory_;
    ingest::PipelineOptions pipeline_;  // worker thread, after construction
    QThread thread_;
    std::unique_ptr<app::Library> library_;  // opened on the worker thread

    // Cancellation: ingest jobs are numbered as requested (UI thread);
    // cancel() marks every job requested so far with cancelledThrough_ and
    // raises cancelRunning_, which Library::ingest polls. A job lowers the
    // flag before it checks its number, so a cancel that lands in between
    // still stops it.
    quint64 lastRequested_ = 0;
    std::atomic<quint64> cancelledThrough_{0};
    std::atomic<bool> cancelRunning_{false};

    // Yielding: a request counts itself in pendingRequests_ and then raises
    // yieldEmbedding_; an embedding lowers the flag and then skips its turn
    // when a request is pending, so none waits behind it.
    std::atomic<int> pendingRequests_{0};
    std::atomic<bool> yieldEmbedding_{false};
    bool embeddingQueued_ = false;   // worker thread
    bool embeddingUnfinished_ = false;  // worker thread: chunks left without a vector by a yield
};

}  // namespace folio::ui

Q_DECLARE_METATYPE(folio::ingest::PipelineProgress)
Q_DECLARE_METATYPE(folio::app::IngestedFile)
Q_DECLARE_METATYPE(folio::app::IngestReport)
