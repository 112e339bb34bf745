#include "ui/ingest_worker.h"

#include <chrono>
#include <exception>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

namespace folio::ui {
namespace {

// A page of a text-layer PDF parses in well under a millisecond; reporting
// each one would flood the UI thread's event queue for nothing a person can
// see. (The pipeline reports progress at its own pace, which its header does
// not promise.)
constexpr auto kProgressInterval = std::chrono::milliseconds(40);

std::vector<std::string> toStdStrings(const QStringList& strings) {
    std::vector<std::string> converted;
    converted.reserve(static_cast<size_t>(strings.size()));
    for (const QString& s : strings) converted.push_back(s.toStdString());
    return converted;
}

}  // namespace

IngestWorker::IngestWorker(QString libraryDirectory, ingest::PipelineOptions pipeline)
    : libraryDirectory_(std::move(libraryDirectory)), pipeline_(std::move(pipeline)) {
    qRegisterMetaType<ingest::PipelineProgress>();
    qRegisterMetaType<app::IngestedFile>();
    qRegisterMetaType<app::IngestReport>();
    thread_.setObjectName(QStringLiteral("folio ingest"));
    moveToThread(&thread_);
    thread_.start();
    QMetaObject::invokeMethod(this, [this] { embedWhatTheLibraryLacks(); }, Qt::QueuedConnection);
}

void IngestWorker::embedWhatTheLibraryLacks() {
    try {
        app::Library& opened = library();
        // An empty or up-to-date library never loads the embedding model for this.
        if (opened.store().count_chunks_without_vectors() > 0 || opened.has_stale_vectors())
            scheduleEmbedding();
    } catch (const std::exception&) {
        // An unreadable library says so on the first request that needs it.
    }
}

IngestWorker::~IngestWorker() {
    cancel();
    thread_.quit();
    thread_.wait();
}

void IngestWorker::requestIngest(const QStringList& paths) {
    const quint64 job = ++lastRequested_;
    ++pendingRequests_;
    yieldEmbedding_ = true;
    QMetaObject::invokeMethod(this, [this, job, paths] { runIngest(job, paths); }, Qt::QueuedConnection);
}

void IngestWorker::requestRemoval(const QList<qint64>& documentIds) {
    ++pendingRequests_;
    yieldEmbedding_ = true;
    QMetaObject::invokeMethod(this, [this, documentIds] { runRemoval(documentIds); }, Qt::QueuedConnection);
}

void IngestWorker::cancel() {
    cancelledThrough_.store(lastRequested_);
    cancelRunning_.store(true);
    yieldEmbedding_ = true;
}

void IngestWorker::setOcrLanguages(const QString& languages) {
    QMetaObject::invokeMethod(this, [this, languages] { pipeline_.ocr.languages = languages.toStdString(); },
                              Qt::QueuedConnection);
}

void IngestWorker::scheduleEmbedding() {
    if (embeddingQueued_) return;
    embeddingQueued_ = true;
    QMetaObject::invokeMethod(this, [this] { runEmbedding(); }, Qt::QueuedConnection);
}

void IngestWorker::runEmbedding() {
    embeddingQueued_ = false;
    yieldEmbedding_ = false;
    if (pendingRequests_.load() > 0) {
        embeddingUnfinished_ = true;  // the pending request resumes it when done
        return;
    }
    auto lastProgress = std::chrono::steady_clock::time_point{};
    const app::EmbeddingReport report = library().embed_chunks(
        [&](const index::EmbeddingProgress& progress) {
            const auto now = std::chrono::steady_clock::now();
            if (now - lastProgress < kProgressInterval) return;
            lastProgress = now;
            emit embeddingProgress(progress.embedded, progress.remaining);
        },
        &yieldEmbedding_);
    embeddingUnfinished_ = report.error.empty() && report.remaining > 0;
    emit embeddingFinished(report.embedded, report.remaining, QString::fromStdString(report.error));
}

app::Library& IngestWorker::library() {
    if (!library_) library_ = std::make_unique<app::Library>(libraryDirectory_.toStdString());
    return *library_;
}

void IngestWorker::runIngest(quint64 job, const QStringList& paths) {
    cancelRunning_.store(false);
    if (job <= cancelledThrough_.load()) {
        app::IngestReport skipped;
        skipped.cancelled = true;
        --pendingRequests_;
        emit ingestFinished(skipped, {});
        return;
    }

    std::vector<app::IngestedFile> done;  // kept apart so that an error does not lose them
    std::unordered_map<std::string, std::chrono::steady_clock::time_point> lastProgress;
    app::IngestCallbacks callbacks;
    callbacks.progress = [&](const ingest::PipelineProgress& progress) {
        const auto now = std::chrono::steady_clock::now();
        auto [last, first] = lastProgress.try_emplace(progress.path, now);
        if (!first && now - last->second < kProgressInterval) return;
        last->second = now;
        emit this->progress(progress);
    };
    callbacks.file_done = [&](const app::IngestedFile& file) {
        lastProgress.erase(file.path);
        done.push_back(file);
        emit fileDone(file);
    };

    app::IngestReport report;
    QString error;
    try {
        app::IngestRequest request;
        request.paths = toStdStrings(paths);
        request.pipeline = pipeline_;
        request.cancel = &cancelRunning_;
        QStringList files;
        for (const std::string& file : app::expand_input_paths(request.paths)) files << QString::fromStdString(file);
        emit ingestStarted(files);
        report = library().ingest(request, callbacks);
    } catch (const std::exception& e) {
        error = QString::fromStdString(e.what());
        report.files = std::move(done);
        report.cancelled = cancelRunning_.load();
    }
    --pendingRequests_;
    emit ingestFinished(report, error);
    // A cancelled ingest leaves its chunks unembedded until the next request.
    if (!report.cancelled && error.isEmpty()) scheduleEmbedding();
}

void IngestWorker::runRemoval(const QList<qint64>& documentIds) {
    QStringList failures;
    try {
        index::LibraryStore& store = library().store();
        for (const qint64 id : documentIds) {
            try {
                store.remove_document(id);
            } catch (const index::StoreError& e) {
                failures << QString::fromStdString(e.what());
            }
        }
    } catch (const std::exception& e) {
        failures << QString::fromStdString(e.what());
    }
    --pendingRequests_;
    emit removalFinished(documentIds, failures.join(QStringLiteral("; ")));
    if (embeddingUnfinished_) scheduleEmbedding();
}

}  // namespace folio::ui
