#include "ui/assistant_worker.h"

#include <QMetaObject>

#include <exception>
#include <utility>

#include "app/chat_model.h"
#include "app/json_schema.h"
#include "app/library.h"
#include "app/packs.h"

namespace folio::ui {
namespace {

void registerMetaTypes() {
    qRegisterMetaType<folio::ui::JobId>("folio::ui::JobId");
    qRegisterMetaType<folio::app::Answer>();
    qRegisterMetaType<folio::app::SummarizeProgress>();
    qRegisterMetaType<folio::app::Summary>();
    qRegisterMetaType<folio::app::ExtractionRecord>();
    qRegisterMetaType<folio::app::BatchItem>();
    qRegisterMetaType<folio::app::BatchReport>();
}

std::optional<app::PackContent> loadPack(const QString& name) {
    if (name.isEmpty()) return std::nullopt;
    return app::load_pack(name.toStdString());
}

}  // namespace

AssistantWorker::AssistantWorker(QString libraryDirectory, FolioSettings settings, ingest::PipelineOptions pipeline)
    : libraryDirectory_(std::move(libraryDirectory)), pipeline_(std::move(pipeline)), settings_(std::move(settings)) {
    registerMetaTypes();
    thread_.setObjectName(QStringLiteral("folio-assistant"));
    moveToThread(&thread_);
    thread_.start();
}

AssistantWorker::~AssistantWorker() {
    cancel();
    setPaused(false);
    thread_.quit();
    thread_.wait();
    // The Library, model and conversation were made on the worker thread;
    // the thread is gone, so they are destroyed here without a race.
}

void AssistantWorker::setSettings(const FolioSettings& settings) {
    QMetaObject::invokeMethod(this, [this, settings] { settings_ = settings; });
}

template <typename Work>
void AssistantWorker::runJob(JobId job, Work&& work) {
    bool cancelled = false;
    {
        const std::lock_guard lock(cancelMutex_);
        cancelRunning_ = false;
        runningJob_ = job;
        cancelled = job <= cancelledThrough_ || cancelledJobs_.erase(job) > 0;
    }
    if (cancelled) {
        emit failed(job, tr("Cancelled"));
    } else {
        emit jobStarted(job);
        try {
            work();
        } catch (const std::exception& e) {
            emit failed(job, QString::fromStdString(e.what()));
        }
    }
    {
        const std::lock_guard lock(cancelMutex_);
        runningJob_ = 0;
    }
    --pendingJobs_;
    emit jobFinished(job);
}

JobId AssistantWorker::requestAsk(const AskRequest& request) {
    const JobId job = ++lastRequested_;
    ++pendingJobs_;
    QMetaObject::invokeMethod(this, [this, job, request] {
        runJob(job, [&] { runAsk(job, request); });
    });
    return job;
}

JobId AssistantWorker::requestSummary(qint64 docId, const QString& pack) {
    const JobId job = ++lastRequested_;
    ++pendingJobs_;
    QMetaObject::invokeMethod(this, [this, job, docId, pack] {
        runJob(job, [&] { runSummary(job, docId, pack); });
    });
    return job;
}

JobId AssistantWorker::requestExtraction(const QList<qint64>& docIds, const QString& pack, const QString& schemaFile) {
    const JobId job = ++lastRequested_;
    ++pendingJobs_;
    QMetaObject::invokeMethod(this, [this, job, docIds, pack, schemaFile] {
        runJob(job, [&] { runExtraction(job, docIds, pack, schemaFile); });
    });
    return job;
}

JobId AssistantWorker::requestBatch(const QStringList& paths, const QString& pack, const QString& outputDirectory) {
    const JobId job = ++lastRequested_;
    ++pendingJobs_;
    QMetaObject::invokeMethod(this, [this, job, paths, pack, outputDirectory] {
        runJob(job, [&] { runBatch(job, paths, pack, outputDirectory); });
    });
    return job;
}

void AssistantWorker::cancel(JobId job) {
    {
        const std::lock_guard lock(cancelMutex_);
        if (runningJob_ == job) cancelRunning_ = true;
        else cancelledJobs_.insert(job);
    }
    wakePausedBatch();
}

void AssistantWorker::cancel() {
    {
        const std::lock_guard lock(cancelMutex_);
        cancelledThrough_ = lastRequested_;
        cancelRunning_ = true;
    }
    wakePausedBatch();
}

// A paused batch waits on pauseChanged_; it must wake to see a cancel.
// Taking the mutex orders the flag before its wait's check.
void AssistantWorker::wakePausedBatch() {
    { const std::lock_guard lock(pauseMutex_); }
    pauseChanged_.notify_all();
}

void AssistantWorker::setPaused(bool paused) {
    {
        const std::lock_guard lock(pauseMutex_);
        paused_ = paused;
    }
    pauseChanged_.notify_all();
}

void AssistantWorker::waitWhilePaused() {
    std::unique_lock lock(pauseMutex_);
    pauseChanged_.wait(lock, [this] { return !paused_ || cancelRunning_.load(); });
}

app::Library& AssistantWorker::library() {
    if (!library_) library_ = std::make_unique<app::Library>(libraryDirectory_.toStdString());
    return *library_;
}

app::ChatModel& AssistantWorker::chatModel(const app::PackContent* pack) {
    const QString path = settings_.effectiveChatModel();
    if (path.isEmpty())
        throw std::runtime_error(
            "no chat model: choose a GGUF file in Settings, or install the default models (installer/install.sh)");
    const app::DeviceChoice device = settings_.device == ComputeDevice::Gpu   ? app::DeviceChoice::Cuda
                                     : settings_.device == ComputeDevice::Cpu ? app::DeviceChoice::Cpu
                                                                              : app::DeviceChoice::Auto;
    if (!model_ || path != modelPath_ || settings_.contextTokens != modelContext_ || device != modelDevice_) {
        conversation_.reset();  // it refers to the model
        model_.reset();
        emit modelLoading(path);
        model_ = std::make_unique<app::ChatModel>(app::ChatModelOptions{.path = path.toStdString(),
                                                                         .context_tokens = settings_.contextTokens,
                                                                         .threads = settings_.threads,
                                                                         .device = device});
        modelPath_ = path;
        modelContext_ = settings_.contextTokens;
        modelDevice_ = device;
        modelAdapterPack_.clear();
        emit modelLoaded(path, model_->context_tokens());
    }
    // A pack's adapters are the model's defaults while its jobs run; read
    // once per pack, as loading one means reading megabytes.
    const QString adapterPack = pack && settings_.useAdapters ? QString::fromStdString(pack->name) : QString();
    if (adapterPack != modelAdapterPack_) {
        model_->set_default_adapters(pack && settings_.useAdapters ? app::load_pack_adapters(*pack, model_->model()).set
                                                                   : engine::LoraSet{});
        modelAdapterPack_ = adapterPack;
        conversation_.reset();  // its cached prefix was computed without them
    }
    return *model_;
}

void AssistantWorker::runAsk(JobId job, const AskRequest& request) {
    const std::optional<app::PackContent> pack = loadPack(request.pack);
    app::ChatModel& model = chatModel(pack ? &*pack : nullptr);
    if (!request.followUp || !conversation_ || conversationPack_ != request.pack) {
        conversation_ = std::make_unique<app::Conversation>(model, library(), pack ? pack->description : std::string());
        conversationPack_ = request.pack;
    }
    app::AskOptions options;
    options.doc_ids.assign(request.docIds.begin(), request.docIds.end());
    options.glossary = pack ? &pack->glossary : nullptr;
    // The dialog keeps the choice, greyed out, while no reranking model is
    // installed; until one is, Ask searches without it.
    options.rerank = settings_.rerankSources && !app::Library::reranker_model_path().empty();
    options.cancel = &cancelRunning_;
    const app::Answer answer = conversation_->ask(request.question.toStdString(), options, [&](std::string_view piece) {
        emit answerPiece(job, QString::fromUtf8(piece.data(), static_cast<qsizetype>(piece.size())));
    });
    emit answerReady(job, answer);
}

void AssistantWorker::runSummary(JobId job, qint64 docId, const QString& packName) {
    const std::optional<app::PackContent> pack = loadPack(packName);
    app::SummarizeOptions options;
    if (pack) options.focus = pack->description;
    options.cancel = &cancelRunning_;
    options.progress = [&](const app::SummarizeProgress& progress) { emit summaryProgress(job, progress); };
    app::Summarizer summarizer(chatModel(pack ? &*pack : nullptr), options);
    emit summaryReady(job, summarizer.summarize(library().store(), docId));
}

void AssistantWorker::runExtraction(JobId job, const QList<qint64>& docIds, const QString& packName,
                                    const QString& schemaFile) {
    std::optional<app::PackContent> pack;
    nlohmann::ordered_json schemaJson;
    app::ExtractOptions options;
    if (schemaFile.isEmpty()) {
        pack = loadPack(packName);
        if (!pack) throw std::runtime_error("choose a pack or a schema file to extract with");
        schemaJson = pack->schema;
        options = app::extract_options(*pack);
    } else {
        schemaJson = app::JsonSchema::read_file(schemaFile.toStdString());
    }
    const app::JsonSchema schema = app::JsonSchema::parse(schemaJson);
    options.cancel = &cancelRunning_;
    app::Extractor extractor(chatModel(pack ? &*pack : nullptr), schema, options);
    emit extractionStarted(job, QString::fromStdString(schemaJson.dump()), static_cast<int>(docIds.size()));
    for (const qint64 docId : docIds) {
        if (cancelRunning_) break;
        emit recordReady(job, extractor.extract(library(), docId));
    }
    emit extractionFinished(job, cancelRunning_.load());
}

void AssistantWorker::runBatch(JobId job, const QStringList& paths, const QString& packName,
                               const QString& outputDirectory) {
    const std::optional<app::PackContent> pack = loadPack(packName);
    if (!pack) throw std::runtime_error("choose a pack for the batch");
    const app::JsonSchema schema = app::JsonSchema::parse(pack->schema);
    app::ExtractOptions options = app::extract_options(*pack);
    options.cancel = &cancelRunning_;
    app::Extractor extractor(chatModel(&*pack), schema, options);
    app::BatchRequest request;
    for (const QString& path : paths) request.paths.push_back(path.toStdString());
    request.output_dir = outputDirectory.toStdString();
    request.fhir = pack->fhir;
    request.pipeline = pipeline_;
    request.pipeline.ocr.languages = settings_.ocrLanguages.toStdString();
    request.cancel = &cancelRunning_;
    app::BatchCallbacks callbacks;
    callbacks.started = [&](int files) { emit batchStarted(job, files); };
    callbacks.item_done = [&](const app::BatchItem& item) { emit batchItemDone(job, item); };
    // Pausing happens between records: the extractor waits before each one
    // while the batch's ingest thread goes on reading the next files.
    const app::BatchReport report = app::run_batch(
        library(), schema,
        [&](app::Library& lib, std::int64_t docId) {
            waitWhilePaused();
            return extractor.extract(lib, docId);
        },
        request, callbacks);
    emit batchFinished(job, report);
}

}  // namespace folio::ui
