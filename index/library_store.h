#pragma once
// The library on disk: one SQLite database (WAL, synchronous=FULL) holding
// documents, their pages and chunks, and an FTS5 index over chunk text.
// Each document is written in one transaction, so a crash leaves it either
// fully present or absent.
//
// Replacing and failing: a document is keyed by its path. Putting a path
// that is already stored replaces the old version (row, pages, chunks, FTS
// rows) in the same transaction; the document keeps its id and created_at,
// its chunks get new ids (chunk ids are never reused, so vectors keyed by an
// old chunk id can never point at new text). Putting a failed input (error
// set) records a failed document without pages or chunks, replacing an
// earlier failed row, except over an indexed version: a good copy is never
// dropped because a newer version of its file could not be read. The indexed
// content stays searchable and unchanged (sha256, size, pages), and the row
// records the failure: error says why the newer version failed and
// failed_sha256 which content it was. The next successful put clears both.
//
// Thread rules: a LibraryStore is used from one thread at a time. Several
// processes may open the same library; writers serialize on SQLite's lock
// (busy timeout), readers see the last committed state. A process must not
// fork while it holds an open LibraryStore and use the library in the child.

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <stdexcept>
#include <string>
#include <vector>
#include "ingest/chunker.h"
#include "ingest/page.h"

namespace folio::index {

class StoreError : public std::runtime_error {
public:
    using std::runtime_error::runtime_error;
};

enum class DocumentStatus { Indexed, Failed };
const char* status_name(DocumentStatus status);

struct DocumentRecord {
    std::int64_t id = 0;
    std::string path;                 // absolute
    std::string sha256;               // hex of the stored content
    std::int64_t size = 0;            // bytes
    ingest::FileType type = ingest::FileType::Unknown;
    int pages = 0;
    DocumentStatus status = DocumentStatus::Indexed;
    std::string error;                // one line: why it failed; when indexed, which pages failed
                                      // (summarize_page_errors) or why a newer version failed
    std::string failed_sha256;        // indexed only: hex of the newer content that failed; else empty
    std::int64_t created_at = 0;      // unix seconds
    std::int64_t updated_at = 0;      // unix seconds of the last put for this path
};

struct StoredPage {
    std::int64_t doc_id = 0;
    int number = 0;
    float width = 0, height = 0;      // points
    std::string text;
    bool ocr = false;
    float mean_confidence = -1;
    int rotation = 0;                 // degrees clockwise, as ingest::Page
    float skew_degrees = 0;
    std::string error;
    std::vector<ingest::Word> words;  // with boxes, for highlighting
};

struct StoredChunk {
    std::int64_t id = 0;
    std::int64_t doc_id = 0;
    ingest::Chunk chunk;
};

// One FTS5 hit.
struct ChunkMatch {
    std::int64_t chunk_id = 0;
    std::int64_t doc_id = 0;
    double bm25 = 0;                  // FTS5 bm25(): more negative is a better match
};

// A keyword search: an FTS5 expression ranked by bm25() with per-column
// weights, and filters that apply before the limit. Unset filters match all.
struct ChunkQuery {
    std::string fts5_expression;
    int limit = 10;
    double heading_weight = 1;        // bm25() weight of the heading_path column
    double text_weight = 1;           // and of the body text
    std::vector<std::int64_t> doc_ids;  // empty: every document
    std::optional<ingest::FileType> type;
    std::optional<std::int64_t> updated_from, updated_until;  // unix seconds, inclusive: DocumentRecord::updated_at
    // Fill ScoredChunk::query_idf: a second pass over the query's doclists,
    // which only hybrid search's fusion needs.
    bool query_idf = false;
};

// One keyword hit with its chunk and document path, read in one statement
// (one snapshot, however other processes write meanwhile).
struct ScoredChunk {
    StoredChunk stored;
    std::string path;                 // the document's
    double bm25 = 0;                  // weighted bm25(): more negative is a better match
    double query_idf = 0;             // the query's, the same on every hit (fts_query_idf.h); 0 unless asked
};

// The search filters that select chunks through their document (as in
// ChunkQuery). Unset filters match all.
struct ChunkFilter {
    std::vector<std::int64_t> doc_ids;  // empty: every document
    std::optional<ingest::FileType> type;
    std::optional<std::int64_t> updated_from, updated_until;  // unix seconds, inclusive
    bool any() const { return !doc_ids.empty() || type || updated_from || updated_until; }
};

// A batch's record of one input file (`folio batch`, app/batch.h): a job
// is pending while the file is being ingested and extracted, done once its
// record is written, failed with the reason it could not be. Jobs are keyed
// by (batch, path, sha256), so a changed file is a new job; a file whose
// content a done job of the same batch already holds is never processed
// again, wherever it now lies.
enum class BatchJobState { Pending, Done, Failed };
const char* batch_job_state_name(BatchJobState state);

struct BatchJob {
    std::string batch;                // the batch's name: its absolute output folder
    std::string path;                 // absolute
    std::string sha256;               // hex of the content; empty when the file could not be read
    BatchJobState state = BatchJobState::Pending;
    std::int64_t doc_id = 0;          // done: the document the record was extracted from; else 0
    std::string error;                // failed: one line saying why
    std::int64_t updated_at = 0;      // unix seconds, set by the store
};

// The embedding model that made a library's chunk vectors.
struct EmbeddingModelRecord {
    std::string name;                 // the model file's name, for messages
    std::string hash;                 // hex SHA-256 of the model file
    int dimension = 0;
    bool operator==(const EmbeddingModelRecord&) const = default;
};

// A chunk's text as it is embedded: its heading path, a newline, its text.
struct ChunkText {
    std::int64_t chunk_id = 0;
    std::string text;
};

// Every stored vector at one generation (one snapshot).
struct StoredVectors {
    std::uint64_t generation = 0;
    int dimension = 0;
    std::vector<std::int64_t> chunk_ids;
    std::vector<float> vectors;       // (chunk_ids.size(), dimension) row-major
};

// What ingest hands the store for one file.
struct DocumentInput {
    std::string path;
    std::string sha256;
    std::int64_t size = 0;
    ingest::FileType type = ingest::FileType::Unknown;
    std::vector<ingest::Page> pages;
    std::vector<ingest::Chunk> chunks;
    std::string error;                // non-empty: record a failed document
};

class LibraryStore {
public:
    // Opens (creating when absent) <directory>/library.sqlite. Throws
    // StoreError with a one-line reason (not a library, newer schema, locked).
    // A writer waits up to busy_timeout for another process's write to end.
    static std::unique_ptr<LibraryStore> open(const std::string& directory,
                                              std::chrono::milliseconds busy_timeout = std::chrono::seconds(10));
    virtual ~LibraryStore() = default;

    // The stored document for a path, if any.
    virtual std::optional<DocumentRecord> find_by_path(const std::string& path) = 0;
    // Writes a document with its pages, chunks and FTS rows in one
    // transaction, replacing any earlier version stored under the same path
    // (see the top of this file for failed inputs). Returns its id.
    virtual std::int64_t put_document(const DocumentInput& input) = 0;
    virtual bool remove_document(std::int64_t doc_id) = 0;
    // The indexed documents whose stored content has this hex SHA-256, by id.
    virtual std::vector<DocumentRecord> find_by_content(const std::string& sha256) = 0;
    // Gives a document a new path (its file was moved or renamed), keeping
    // its id, pages, chunks and vectors; a failure recorded under that path
    // makes way. False when there is no such document; StoreError when
    // another indexed document holds the path.
    virtual bool move_document(std::int64_t doc_id, const std::string& path) = 0;

    virtual std::vector<DocumentRecord> documents() = 0;   // by id
    virtual std::optional<DocumentRecord> document(std::int64_t doc_id) = 0;
    virtual std::vector<StoredPage> pages(std::int64_t doc_id) = 0;  // by number
    virtual std::optional<StoredPage> page(std::int64_t doc_id, int number) = 0;
    virtual std::vector<StoredChunk> chunks(std::int64_t doc_id) = 0;  // by ordinal
    virtual std::optional<StoredChunk> chunk(std::int64_t chunk_id) = 0;

    // Chunks matching an FTS5 query expression over the columns heading_path
    // and text (https://sqlite.org/fts5.html#full_text_query_syntax), best
    // first. A malformed expression throws StoreError.
    virtual std::vector<ChunkMatch> match_chunks(const std::string& fts5_query, int limit) = 0;
    // The same with weights and filters (ChunkQuery), the chunks read with
    // their hits. A malformed expression throws StoreError.
    virtual std::vector<ScoredChunk> search_chunks(const ChunkQuery& query) = 0;

    // Chunk vectors. A chunk's vector is removed with the chunk (replacing
    // or removing its document). The generation changes with every change
    // to the stored vectors, so a derived index can tell it is stale.
    virtual std::optional<EmbeddingModelRecord> embedding_model() = 0;  // nothing until one is set
    // Records the model that makes the vectors from now on; when it differs
    // from the recorded one, every stored vector is dropped in the same
    // transaction (they are re-embedded, never mixed). Returns whether it changed.
    virtual bool set_embedding_model(const EmbeddingModelRecord& model) = 0;
    // Up to `limit` chunks that have no vector, by id; with doc_id, only
    // that document's.
    virtual std::vector<ChunkText> chunks_without_vectors(int limit,
                                                          std::optional<std::int64_t> doc_id = std::nullopt) = 0;
    virtual std::int64_t count_chunks_without_vectors() = 0;
    virtual std::int64_t count_vectors() = 0;       // reads every vector: not for a search's path
    virtual bool has_vectors() = 0;                 // cheap
    // Stores vectors (chunk_ids.size() x model.dimension floats) made by
    // `model`, in one transaction. Chunks removed meanwhile are skipped.
    // Throws StoreError when the library's model is no longer `model`
    // (another process switched it).
    virtual void put_vectors(const EmbeddingModelRecord& model, std::span<const std::int64_t> chunk_ids,
                             std::span<const float> vectors) = 0;
    virtual std::uint64_t vector_generation() = 0;
    virtual StoredVectors vectors() = 0;
    // The ids of every chunk passing the filter, ascending.
    virtual std::vector<std::int64_t> chunk_ids_matching(const ChunkFilter& filter) = 0;
    // The chunks with these ids and their documents' paths, in the order
    // given; ids of chunks that no longer exist are left out. bm25 is 0.
    virtual std::vector<ScoredChunk> chunks_with_paths(std::span<const std::int64_t> chunk_ids) = 0;

    // Batch jobs. Writes the jobs in one transaction, each replacing the
    // job of the same (batch, path, sha256).
    virtual void put_batch_jobs(std::span<const BatchJob> jobs) = 0;
    // The done job of `batch` holding this content, if any.
    virtual std::optional<BatchJob> done_batch_job(const std::string& batch, const std::string& sha256) = 0;
    // The batch's jobs in the order they were first written.
    virtual std::vector<BatchJob> batch_jobs(const std::string& batch) = 0;

    // Holds one read snapshot over every read the store makes until it is
    // destroyed (a search that reads the keyword index, the vector
    // generation and the hit chunks sees one committed state, however other
    // processes write). No write may run on this store meanwhile.
    class ReadSnapshot {
    public:
        virtual ~ReadSnapshot() = default;
    };
    virtual std::unique_ptr<ReadSnapshot> read_snapshot() = 0;

    // "ok" when PRAGMA integrity_check, the foreign keys and the FTS index
    // (against the chunks it indexes) are all sound; otherwise what is wrong.
    // Holds the write lock while it runs: one consistent snapshot.
    virtual std::string integrity_check() = 0;
};

}  // namespace folio::index
