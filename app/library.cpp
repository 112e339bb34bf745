#include "app/library.h"

#include <QCryptographicHash>
#include <QDir>
#include <QDirIterator>
#include <QElapsedTimer>
#include <QFile>
#include <QFileInfo>
#include <QStandardPaths>

#include <algorithm>
#include <filesystem>
#include <map>
#include <set>
#include <stdexcept>

#include "app/engine_reranker.h"
#include "app/engine_text_embedder.h"
#include "engine/model_paths.h"
#include "index/hybrid_search.h"
#include "ingest/chunker.h"
#include "ingest/detect.h"
#include "ingest/error.h"

namespace folio::app {

const char* outcome_name(IngestOutcome outcome) {
    switch (outcome) {
    case IngestOutcome::Added: return "added";
    case IngestOutcome::Replaced: return "replaced";
    case IngestOutcome::Unchanged: return "unchanged";
    case IngestOutcome::Moved: return "moved";
    case IngestOutcome::Duplicate: return "duplicate";
    case IngestOutcome::Failed: return "failed";
    case IngestOutcome::Skipped: return "skipped";
    }
    return "unknown";
}

int IngestReport::count(IngestOutcome outcome) const {
    return static_cast<int>(std::count_if(files.begin(), files.end(),
                                          [&](const IngestedFile& f) { return f.outcome == outcome; }));
}

int IngestReport::files_with_errors() const {
    return static_cast<int>(std::count_if(files.begin(), files.end(), [](const IngestedFile& f) {
        return f.outcome == IngestOutcome::Failed || (f.outcome != IngestOutcome::Skipped && !f.error.empty());
    }));
}

bool IngestReport::ok() const { return !cancelled && files_with_errors() == 0; }

Library::Library(const std::string& directory)
    : directory_(QDir(QString::fromStdString(directory)).absolutePath().toStdString()),
      store_(index::LibraryStore::open(directory_)),
      vectors_(*store_, std::filesystem::path(directory_) / "vectors.faiss") {}

Library::~Library() = default;

std::string Library::default_directory() {
    const QByteArray fromEnv = qgetenv("FOLIO_LIBRARY");
    if (!fromEnv.isEmpty()) return fromEnv.toStdString();
    QString data = QStandardPaths::writableLocation(QStandardPaths::GenericDataLocation);
    if (data.isEmpty()) data = QDir::homePath() + "/.local/share";
    return (data + "/folio/library").toStdString();
}

std::vector<std::string> expand_input_paths(const std::vector<std::string>& paths, const std::string& excluded) {
    const QString excluded_prefix =
        excluded.empty() ? QString() : QDir(QString::fromStdString(excluded)).absolutePath() + "/";
    std::vector<std::string> files;
    std::set<std::string> seen;
    auto add = [&](const QString& path) {
        std::string absolute = QFileInfo(path).absoluteFilePath().toStdString();
        if (seen.insert(absolute).second) files.push_back(absolute);
    };
    for (const std::string& path : paths) {
        const QString qpath = QString::fromStdString(path);
        const QFileInfo info(qpath);
        if (!info.isDir()) {
            add(qpath);
            continue;
        }
        std::vector<QString> found;
        QDirIterator it(qpath, QDir::Files | QDir::NoDotAndDotDot, QDirIterator::Subdirectories);
        while (it.hasNext()) {
            const QString file = it.next();
            if (excluded_prefix.isEmpty() || !file.startsWith(excluded_prefix)) found.push_back(file);
        }
        std::sort(found.begin(), found.end());
        for (const QString& file : found) add(file);
    }
    return files;
}

std::string file_sha256(const std::string& path) {
    QFile file(QString::fromStdString(path));
    if (!file.open(QIODevice::ReadOnly))
        throw std::runtime_error("cannot read file: " + file.errorString().toStdString());
    QCryptographicHash hash(QCryptographicHash::Sha256);
    if (!hash.addData(&file)) throw std::runtime_error("cannot read file: " + file.errorString().toStdString());
    return hash.result().toHex().toStdString();
}

namespace {

// The file the environment variable names, else the installed model of that role; empty when none.
std::string model_path(const char* variable, engine::ModelRole role) {
    const QByteArray fromEnv = qgetenv(variable);
    if (!fromEnv.isEmpty()) return fromEnv.toStdString();
    return engine::find_default_model(role).value_or("");
}

}  // namespace

std::string Library::embedding_model_path() { return model_path("FOLIO_EMBEDDING_MODEL", engine::ModelRole::Embedding); }

std::string Library::reranker_model_path() { return model_path("FOLIO_RERANKER_MODEL", engine::ModelRole::Reranker); }

index::PassageScorer& Library::reranker() {
    if (!reranker_) {
        const std::string path = reranker_model_path();
        if (path.empty())
            throw index::SearchError(
                "the reranker: no reranking model found; run installer/fetch-models.sh or set FOLIO_RERANKER_MODEL");
        try {
            reranker_ = open_engine_reranker(path);
        } catch (const std::exception& e) {
            throw index::SearchError(std::string("the reranker: ") + e.what());
        }
    }
    return *reranker_;
}

index::TextEmbedder& Library::embedder() {
    if (!embedder_) {
        const std::string path = embedding_model_path();
        if (path.empty())
            throw std::runtime_error("no embedding model found; run installer/fetch-models.sh or set FOLIO_EMBEDDING_MODEL");
        embedder_ = open_engine_text_embedder(path);
    }
    return *embedder_;
}

EmbeddingReport Library::embed_chunks(const std::function<void(const index::EmbeddingProgress&)>& progress,
                                      const std::atomic<bool>* cancel, const std::vector<std::int64_t>* doc_ids) {
    EmbeddingReport report;
    try {
        index::TextEmbedder& model = embedder();
        report.model = model.model().name;
        const index::EmbeddingProgress done = vectors_.embed_missing(model, progress, cancel, doc_ids);
        report.embedded = done.embedded;
        report.model_changed = done.model_changed;
        report.seconds = done.seconds;
    } catch (const std::exception& e) {
        report.error = e.what();
    }
    try {
        report.remaining = store_->count_chunks_without_vectors();
    } catch (const index::StoreError&) {
    }
    return report;
}

bool Library::has_vectors() { return store_->embedding_model() && store_->has_vectors(); }

namespace {

// Whether the library's vectors match the embedding model; nothing when the
// library has none or there is no usable model to compare with.
std::optional<bool> vectors_match(Library& library, index::LibraryStore& store) {
    if (!library.has_vectors()) return std::nullopt;
    try {
        return *store.embedding_model() == library.embedder().model();
    } catch (const std::exception&) {  // no embedding model, or one that cannot be opened
        return std::nullopt;
    }
}

}  // namespace

bool Library::has_current_vectors() { return vectors_match(*this, *store_).value_or(false); }

bool Library::has_stale_vectors() { return !vectors_match(*this, *store_).value_or(true); }

namespace {

// search() without reranking, then the reranker over the first candidates.
template <typename Search>
std::vector<index::SearchHit> search_reranked(Library& library, std::string_view query,
                                              const index::SearchOptions& options, Search&& search) {
    if (!options.rerank) return search(options);
    index::PassageScorer& scorer = library.reranker();
    index::SearchOptions candidates = options;
    candidates.rerank = false;
    candidates.k = std::max(options.k, index::kRerankCandidates);
    // Only a weighted hybrid search's score has the scale a blend needs.
    const bool fused = options.mode == index::SearchMode::Hybrid && options.fusion == index::Fusion::Weighted;
    return index::rerank(query, search(candidates), scorer, options.k,
                         fused ? index::RerankOrder::BlendedWithSearch : index::RerankOrder::ScorerAlone);
}

}  // namespace

std::vector<index::SearchHit> Library::search(std::string_view query, const index::SearchOptions& options) {
    return search_reranked(*this, query, options, [&](const index::SearchOptions& o) { return search_unranked(query, o); });
}

std::vector<index::SearchHit> Library::search_unranked(std::string_view query, const index::SearchOptions& options) {
    if (options.mode == index::SearchMode::Bm25) return index::Retriever(*store_).search(query, options);
    if (!has_vectors())
        throw index::SearchError(std::string("--mode ") + index::search_mode_name(options.mode) +
                                 " needs chunk vectors, and this library has no vectors yet; run `folio index` or use "
                                 "--mode bm25");
    index::TextEmbedder* model = nullptr;
    try {
        model = &embedder();
    } catch (const std::exception& e) {
        throw index::SearchError(std::string("--mode ") + index::search_mode_name(options.mode) + ": " + e.what());
    }
    return index::HybridSearcher(*store_, vectors_).search(query, *model, options);
}

std::vector<index::SearchHit> Library::search(std::string_view query, std::span<const float> query_vector,
                                              const index::SearchOptions& options) {
    return search_reranked(*this, query, options, [&](const index::SearchOptions& o) {
        return index::HybridSearcher(*store_, vectors_).search(query, query_vector, o);
    });
}

std::vector<index::SearchHit> Library::search_question(std::string_view question, std::string_view keywords,
                                                       const index::SearchOptions& options) {
    return search_reranked(*this, question, options, [&](const index::SearchOptions& o) {
        // A library whose vectors another model made takes the plain path,
        // which refuses it with the reason.
        if (keywords == question || o.mode == index::SearchMode::Bm25 || !has_current_vectors())
            return search_unranked(keywords, o);
        return index::HybridSearcher(*store_, vectors_)
            .search(keywords, embedder().embed(std::vector<std::string>{std::string(question)}), o);
    });
}

bool Library::place_known_content(const std::string& path, const std::string& sha256,
                                  const std::optional<index::DocumentRecord>& failed_here, IngestedFile& file) {
    const std::vector<index::DocumentRecord> same = store_->find_by_content(sha256);
    if (same.empty()) return false;
    for (const index::DocumentRecord& stored : same) {
        const QFileInfo info(QString::fromStdString(stored.path));
        bool still_there = false;
        try {
            still_there = info.isFile() && info.size() == stored.size && file_sha256(stored.path) == sha256;
        } catch (const std::runtime_error&) {
            // Unreadable now: the copy at hand is the one to keep.
        }
        if (!still_there) continue;
        if (failed_here) store_->remove_document(failed_here->id);
        file.outcome = IngestOutcome::Duplicate;
        file.doc_id = stored.id;
        file.same_as = stored.path;
        return true;
    }
    const index::DocumentRecord& moved = same.front();
    store_->move_document(moved.id, path);
    file.outcome = IngestOutcome::Moved;
    file.doc_id = moved.id;
    file.same_as = moved.path;
    return true;
}

IngestReport Library::ingest(const IngestRequest& request, const IngestCallbacks& callbacks) {
    QElapsedTimer timer;
    timer.start();
    IngestReport report;
    auto finish = [&](IngestedFile file) {
        report.pages += file.pages;
        report.ocr_pages += file.ocr_pages;
        report.chunks += file.chunks;
        if (callbacks.file_done) callbacks.file_done(file);
        report.files.push_back(std::move(file));
    };

    struct Pending {
        std::string sha256;
        std::int64_t size = 0;
        bool replaces = false;
    };
    std::map<std::string, Pending> pending;
    std::vector<std::string> to_extract;
    // Content first met in this run (sha256 -> path), and the later copies
    // of it, reported once the first is stored.
    std::map<std::string, std::string> first_path_of_content;
    std::vector<IngestedFile> copies_of_pending;

    // Folders may hold anything; only files Folio can read are taken from
    // them. A file named on the command line is always attempted, so that an
    // unsupported one fails with its reason instead of vanishing.
    std::set<std::string> named;
    for (const std::string& path : request.paths)
        named.insert(QFileInfo(QString::fromStdString(path)).absoluteFilePath().toStdString());

    for (const std::string& path : expand_input_paths(request.paths, directory_)) {
        IngestedFile file{path};
        Pending item;
        try {
            if (!named.count(path)) {
                const bool empty = QFileInfo(QString::fromStdString(path)).size() == 0;
                if (empty || ingest::detect_file_type(path) == ingest::FileType::Unknown) {
                    file.outcome = IngestOutcome::Skipped;
                    file.error = empty ? "empty file" : "not a PDF, image or text file";
                    finish(std::move(file));
                    continue;
                }
            }
            item.sha256 = file_sha256(path);
            item.size = QFileInfo(QString::fromStdString(path)).size();
        } catch (const std::exception& e) {
            file.outcome = IngestOutcome::Failed;
            file.error = e.what();
            store_->put_document({.path = path, .error = file.error});
            finish(std::move(file));
            continue;
        }
        const std::optional<index::DocumentRecord> existing = store_->find_by_path(path);
        if (existing) {
            // A document with failed pages is read again: the cause (a missing
            // OCR language, a timeout) may be fixed by now.
            if (existing->sha256 == item.sha256 && existing->status == index::DocumentStatus::Indexed &&
                existing->error.empty()) {
                file.outcome = IngestOutcome::Unchanged;
                file.doc_id = existing->id;
                file.pages = 0;
                finish(std::move(file));
                continue;
            }
            item.replaces = existing->status == index::DocumentStatus::Indexed;
        }
        if (!item.replaces) {
            // A copy stored twice would answer every question twice over and
            // crowd other documents out of the results.
            if (place_known_content(path, item.sha256, existing, file)) {
                finish(std::move(file));
                continue;
            }
            if (const auto first = first_path_of_content.find(item.sha256); first != first_path_of_content.end()) {
                file.outcome = IngestOutcome::Duplicate;
                file.same_as = first->second;
                copies_of_pending.push_back(std::move(file));
                continue;
            }
            first_path_of_content.emplace(item.sha256, path);
        }
        pending.emplace(path, item);
        to_extract.push_back(path);
    }

    ingest::extract_files(
        to_extract, request.pipeline,
        [&](ingest::ExtractedDocument&& extracted) {
            const Pending& item = pending.at(extracted.path);
            IngestedFile file{extracted.path};
            index::DocumentInput input{.path = extracted.path,
                                       .sha256 = item.sha256,
                                       .size = item.size,
                                       .type = extracted.type};
            const bool every_page_failed =
                !extracted.pages.empty() && std::all_of(extracted.pages.begin(), extracted.pages.end(),
                                                        [](const ingest::Page& p) { return !p.error.empty(); });
            if (every_page_failed) extracted.error = ingest::summarize_page_errors(extracted.pages);
            if (!extracted.error.empty()) {
                file.outcome = IngestOutcome::Failed;
                file.error = extracted.error;
                input.error = extracted.error;
            } else {
                input.chunks = ingest::chunk_pages(extracted.pages);
                file.outcome = item.replaces ? IngestOutcome::Replaced : IngestOutcome::Added;
                file.pages = static_cast<int>(extracted.pages.size());
                file.ocr_pages = static_cast<int>(std::count_if(
                    extracted.pages.begin(), extracted.pages.end(), [](const ingest::Page& p) { return p.ocr; }));
                file.chunks = static_cast<int>(input.chunks.size());
                file.error = ingest::summarize_page_errors(extracted.pages);
                input.pages = std::move(extracted.pages);
            }
            try {
                file.doc_id = store_->put_document(input);
            } catch (const index::StoreError& e) {
                file.outcome = IngestOutcome::Failed;
                file.error = std::string("could not store: ") + e.what();
                file.pages = file.ocr_pages = file.chunks = 0;
            }
            finish(std::move(file));
        },
        callbacks.progress, request.cancel);

    report.cancelled = request.cancel && request.cancel->load();
    // A cancelled run reports only what it finished.
    if (!report.cancelled) {
        std::map<std::string, std::int64_t> stored_doc_of_path;
        for (const IngestedFile& file : report.files)
            if (file.outcome == IngestOutcome::Added || file.outcome == IngestOutcome::Replaced)
                stored_doc_of_path.emplace(file.path, file.doc_id);
        for (IngestedFile& copy : copies_of_pending) {
            const auto first = stored_doc_of_path.find(copy.same_as);
            if (first == stored_doc_of_path.end()) {
                copy.outcome = IngestOutcome::Failed;
                copy.error = "same content as " + copy.same_as + ", which could not be stored";
                store_->put_document({.path = copy.path, .error = copy.error});
            } else {
                copy.doc_id = first->second;
            }
            finish(std::move(copy));
        }
    }
    if (request.embed && !report.cancelled) {
        std::vector<std::int64_t> stored;
        for (const IngestedFile& file : report.files)
            if (file.outcome == IngestOutcome::Added || file.outcome == IngestOutcome::Replaced) stored.push_back(file.doc_id);
        // Vectors an older model (or Folio) made are re-embedded too, even when no file changed.
        if (!stored.empty() || has_stale_vectors())
            report.embedding = embed_chunks(callbacks.embedding_progress, request.cancel, &stored);
    }
    report.seconds = timer.nsecsElapsed() / 1e9;
    return report;
}

}  // namespace folio::app
