#pragma once
// The application's library: the store on disk plus the ingest use case.
// The CLI and the GUI both drive Folio through this class.
//
// Thread rules: a Library is used from one thread at a time; ingest() blocks
// that thread and calls its callbacks on it. Cancel from any thread through
// IngestRequest::cancel.

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>
#include "index/embedding.h"
#include "index/embedding_index.h"
#include "index/library_store.h"
#include "index/reranking.h"
#include "index/retriever.h"
#include "ingest/pipeline.h"

namespace folio::app {

struct IngestRequest {
    std::vector<std::string> paths;   // files and folders (walked recursively)
    ingest::PipelineOptions pipeline;
    const std::atomic<bool>* cancel = nullptr;
    // Embed the stored chunks afterwards (Library::embed_chunks). The CLI
    // does; the GUI's ingest worker embeds as background work of its own,
    // which yields to the user's next request.
    bool embed = false;
};

// Duplicate: the library already holds this content under another path
// whose file still has it, so nothing was stored. Moved: it held this
// content under a path whose file is gone or changed, and that document now
// has this path (its id, pages and vectors kept).
enum class IngestOutcome { Added, Replaced, Unchanged, Moved, Duplicate, Failed, Skipped };
const char* outcome_name(IngestOutcome outcome);

struct IngestedFile {
    std::string path;
    IngestOutcome outcome = IngestOutcome::Added;
    std::int64_t doc_id = 0;          // 0 when nothing was stored
    int pages = 0, ocr_pages = 0, chunks = 0;
    std::string error;                // one line: why it failed or was skipped
    std::string same_as;              // Duplicate: the path that holds this content; Moved: the old path
};

// What embedding the library's chunks did (Library::embed_chunks).
struct EmbeddingReport {
    std::string model;                // the embedding model's file name; empty: none was found
    std::int64_t embedded = 0;        // chunks embedded now
    std::int64_t remaining = 0;       // chunks still without a vector
    bool model_changed = false;       // the old model's vectors were dropped and are being re-embedded
    double seconds = 0;
    std::string error;                // one line: why embedding stopped (the text stays stored and searchable)
};

struct IngestReport {
    std::vector<IngestedFile> files;
    int pages = 0, ocr_pages = 0, chunks = 0;
    double seconds = 0;
    EmbeddingReport embedding;        // the vectors of the stored chunks, made after they were stored
    bool cancelled = false;
    int count(IngestOutcome outcome) const;
    int files_with_errors() const;    // failed, or stored with failed pages
    bool ok() const;                  // not cancelled and files_with_errors() == 0
};

struct IngestCallbacks {
    std::function<void(const ingest::PipelineProgress&)> progress;
    std::function<void(const IngestedFile&)> file_done;
    std::function<void(const index::EmbeddingProgress&)> embedding_progress;
};

class Library {
public:
    // Opens (creating) the library at `directory`. Throws index::StoreError.
    explicit Library(const std::string& directory);
    ~Library();

    // The default location: $FOLIO_LIBRARY, else the user's data folder.
    static std::string default_directory();

    // Stores the files, then embeds their chunks (embed_chunks; chunks of
    // other documents still without vectors are left to `folio index`); a
    // failure to embed is reported in IngestReport::embedding and loses
    // nothing.
    IngestReport ingest(const IngestRequest& request, const IngestCallbacks& callbacks = {});

    // Embeds every chunk that has no vector with the embedding model
    // (embedding_model_path()), resumably: `folio index`, and the end of
    // ingest. A library whose vectors a different model made is re-embedded.
    // Never throws for a missing model or a failed embedding: the report says.
    // With doc_ids, only those documents' chunks (what an ingest stored).
    EmbeddingReport embed_chunks(const std::function<void(const index::EmbeddingProgress&)>& progress = {},
                                 const std::atomic<bool>* cancel = nullptr,
                                 const std::vector<std::int64_t>* doc_ids = nullptr);

    // The embedding model file: $FOLIO_EMBEDDING_MODEL, else the installed
    // default (engine/model_paths.h); empty when there is none.
    static std::string embedding_model_path();
    // The cross-encoder that reranks (SearchOptions::rerank):
    // $FOLIO_RERANKER_MODEL, else the installed default; empty when none.
    static std::string reranker_model_path();

    // Whether the library holds chunk vectors to search.
    bool has_vectors();
    // Whether they were made the way the embedding model makes them now (its
    // file, and how it embeds long chunks): the default search mode is then
    // hybrid. Stale vectors (another model, or a Folio that embedded
    // differently, while the embedding model is at hand) wait for `folio
    // index` or the next ingest to re-embed them; until then the default
    // search is BM25 rather than an error.
    bool has_current_vectors();
    bool has_stale_vectors();

    // Chunks matching a query, best first (index/retriever.h,
    // index/hybrid_search.h), reranked when options.rerank says so
    // (index/reranking.h). Throws index::SearchError for a query or mode
    // this library cannot serve, or a rerank without a reranker.
    std::vector<index::SearchHit> search(std::string_view query, const index::SearchOptions& options = {});
    // The same with the query already embedded (benchmarks that time search alone).
    std::vector<index::SearchHit> search(std::string_view query, std::span<const float> query_vector,
                                         const index::SearchOptions& options);
    // A question's search with its keywords apart: `keywords` (the question
    // and what a glossary adds) for BM25, the question itself embedded for
    // the vectors and read by the reranker. Vectors another model made are
    // left out (BM25 then) rather than refused: the question still answers.
    std::vector<index::SearchHit> search_question(std::string_view question, std::string_view keywords,
                                                  const index::SearchOptions& options);
    // The embedding model, opened on first use. Throws std::runtime_error
    // when there is none or it cannot be opened.
    index::TextEmbedder& embedder();
    // The reranker, opened on first use. Throws index::SearchError ("the
    // reranker: ...") when there is none or it cannot be opened.
    index::PassageScorer& reranker();
    index::ChunkVectors& vectors() { return vectors_; }

    index::LibraryStore& store() { return *store_; }
    const std::string& directory() const { return directory_; }

private:
    // Settles a path new to the library (or one whose last read failed,
    // `failed_here`) whose content a stored document already has: a
    // Duplicate, or that document Moved here. False when none has it.
    bool place_known_content(const std::string& path, const std::string& sha256,
                             const std::optional<index::DocumentRecord>& failed_here, IngestedFile& file);

    std::string directory_;
    std::unique_ptr<index::LibraryStore> store_;
    index::ChunkVectors vectors_;
    std::unique_ptr<index::TextEmbedder> embedder_;
    std::unique_ptr<index::PassageScorer> reranker_;
    std::vector<index::SearchHit> search_unranked(std::string_view query, const index::SearchOptions& options);
};

// The regular files under `paths`, expanded and de-duplicated, in a stable
// order. Folders are walked recursively, skipping hidden entries and the
// folder `excluded` (the library's own files, when it sits inside an ingested
// folder); a path that does not exist is kept so that it fails with its own
// reason.
std::vector<std::string> expand_input_paths(const std::vector<std::string>& paths,
                                            const std::string& excluded = {});

// Hex SHA-256 of a file's content; throws std::runtime_error when unreadable.
std::string file_sha256(const std::string& path);

}  // namespace folio::app
