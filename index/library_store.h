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

    // "ok" when PRAGMA integrity_check, the foreign keys and the FTS index
    // (against the chunks it indexes) are all sound; otherwise what is wrong.
    // Holds the write lock while it runs: one consistent snapshot.
    virtual std::string integrity_check() = 0;
};

}  // namespace folio::index
