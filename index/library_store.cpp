#include "index/library_store.h"

#include <array>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <system_error>
#include <thread>

#include "index/fts_query_idf.h"
#include "index/packed_boxes.h"
#include "index/sqlite_db.h"

namespace folio::index {
namespace {

// Schema history (PRAGMA user_version): 1 is the first; 2 tokenizes chunks_fts
// with porter stemming over folio_han_bigram (fts_tokenizer.h) instead of
// plain unicode61: Chinese words inside runs of Hanzi match, and "employing"
// finds "employed" (measured on tests/data/retrieval: finance recall@5
// 0.856 -> 0.885 within a filing, 0.769 -> 0.808 across the nine). A newer
// version is refused rather than guessed at; an older one is migrated by
// migrate_schema(). 3 adds chunk vectors (kVectorSchemaSql), 4 batch jobs
// (kBatchSchemaSql), 5 the documents' content index (kContentIndexSql).
constexpr int kSchemaVersion = 5;
// PRAGMA application_id of a Folio library: "Foli".
constexpr std::int64_t kApplicationId = 0x466f6c69;

// Lookups by document go through the UNIQUE (doc_id, ...) indexes, which
// also serve ON DELETE CASCADE. The FTS table is external-content over
// chunks (rowid = chunk id), so chunk text is stored once; triggers keep it
// in step with chunks, including rows removed by the cascade. AUTOINCREMENT
// keeps ids of deleted documents and chunks from being handed out again.
constexpr const char* kSchemaSql = R"sql(
CREATE TABLE documents (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    path          TEXT NOT NULL UNIQUE CHECK (path <> ''),
    sha256        TEXT NOT NULL,
    size          INTEGER NOT NULL,
    type          TEXT NOT NULL,
    pages         INTEGER NOT NULL,
    status        TEXT NOT NULL CHECK (status IN ('indexed', 'failed')),
    error         TEXT NOT NULL,
    failed_sha256 TEXT NOT NULL,
    created_at    INTEGER NOT NULL,
    updated_at    INTEGER NOT NULL
);

CREATE TABLE pages (
    doc_id          INTEGER NOT NULL REFERENCES documents (id) ON DELETE CASCADE,
    number          INTEGER NOT NULL CHECK (number >= 1),
    width           REAL NOT NULL,
    height          REAL NOT NULL,
    text            TEXT NOT NULL,
    ocr             INTEGER NOT NULL,
    mean_confidence REAL NOT NULL,
    rotation        INTEGER NOT NULL,
    skew_degrees    REAL NOT NULL,
    error           TEXT NOT NULL,
    words           BLOB NOT NULL,   -- packed_boxes.h
    UNIQUE (doc_id, number)
);

CREATE TABLE chunks (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    doc_id       INTEGER NOT NULL REFERENCES documents (id) ON DELETE CASCADE,
    ordinal      INTEGER NOT NULL,
    text         TEXT NOT NULL,
    heading_path TEXT NOT NULL,
    page_start   INTEGER NOT NULL CHECK (page_start >= 1),
    page_end     INTEGER NOT NULL CHECK (page_end >= page_start),
    boxes        BLOB NOT NULL,      -- packed_boxes.h
    is_table     INTEGER NOT NULL,
    token_count  INTEGER NOT NULL,
    UNIQUE (doc_id, ordinal)
);

CREATE TRIGGER chunks_fts_insert AFTER INSERT ON chunks BEGIN
    INSERT INTO chunks_fts (rowid, heading_path, text) VALUES (new.id, new.heading_path, new.text);
END;

CREATE TRIGGER chunks_fts_delete AFTER DELETE ON chunks BEGIN
    INSERT INTO chunks_fts (chunks_fts, rowid, heading_path, text)
        VALUES ('delete', old.id, old.heading_path, old.text);
END;

CREATE TRIGGER chunks_fts_update AFTER UPDATE OF heading_path, text ON chunks BEGIN
    INSERT INTO chunks_fts (chunks_fts, rowid, heading_path, text)
        VALUES ('delete', old.id, old.heading_path, old.text);
    INSERT INTO chunks_fts (rowid, heading_path, text) VALUES (new.id, new.heading_path, new.text);
END;
)sql";

// Created after kSchemaSql, whose triggers name it, and again by the
// migration from schema 1.
constexpr const char* kChunksFtsSql = R"sql(
CREATE VIRTUAL TABLE chunks_fts USING fts5 (
    heading_path, text,
    content = 'chunks', content_rowid = 'id',
    tokenize = 'porter folio_han_bigram remove_diacritics 2'
);
)sql";

// Chunk vectors (schema 3): one float32 blob per chunk, removed with its
// chunk by the cascade. vector_state is one row: the embedding model that
// made every stored vector, and a generation that changes with every change
// to the vectors (the derived Faiss file records the generation it holds).
constexpr const char* kVectorSchemaSql = R"sql(
CREATE TABLE IF NOT EXISTS chunk_vectors (
    chunk_id INTEGER PRIMARY KEY REFERENCES chunks (id) ON DELETE CASCADE,
    vector   BLOB NOT NULL
);

CREATE TABLE IF NOT EXISTS vector_state (
    id         INTEGER PRIMARY KEY CHECK (id = 1),
    model_name TEXT NOT NULL,
    model_hash TEXT NOT NULL,
    dimension  INTEGER NOT NULL,
    generation INTEGER NOT NULL
);
INSERT OR IGNORE INTO vector_state VALUES (1, '', '', 0, 0);

CREATE TRIGGER IF NOT EXISTS chunk_vectors_delete AFTER DELETE ON chunk_vectors BEGIN
    UPDATE vector_state SET generation = generation + 1;
END;
)sql";

// Batch jobs (schema 4). doc_id is no foreign key: removing a document
// from the library does not undo the record a batch already wrote. The
// index serves the resume's question "is this content done in this batch".
constexpr const char* kBatchSchemaSql = R"sql(
CREATE TABLE IF NOT EXISTS batch_jobs (
    batch      TEXT NOT NULL CHECK (batch <> ''),
    path       TEXT NOT NULL CHECK (path <> ''),
    sha256     TEXT NOT NULL,
    state      TEXT NOT NULL CHECK (state IN ('pending', 'done', 'failed')),
    doc_id     INTEGER NOT NULL,
    error      TEXT NOT NULL,
    updated_at INTEGER NOT NULL,
    PRIMARY KEY (batch, path, sha256)
);
CREATE INDEX IF NOT EXISTS batch_jobs_by_content ON batch_jobs (batch, sha256, state);
)sql";

// Schema 5: ingest asks whether a new path holds content the library
// already has (a copy, or a moved file) before reading it.
constexpr const char* kContentIndexSql = "CREATE INDEX IF NOT EXISTS documents_by_content ON documents (sha256)";

constexpr const char* kDocumentColumns =
    "id, path, sha256, size, type, pages, status, error, failed_sha256, created_at, updated_at";
constexpr const char* kPageColumns =
    "doc_id, number, width, height, text, ocr, mean_confidence, rotation, skew_degrees, error, words";
constexpr const char* kChunkColumns =
    "id, doc_id, ordinal, text, heading_path, page_start, page_end, boxes, is_table, token_count";

constexpr std::array kFileTypes = {ingest::FileType::Pdf,  ingest::FileType::Png,  ingest::FileType::Jpeg,
                                   ingest::FileType::Tiff, ingest::FileType::Text, ingest::FileType::Markdown};

ingest::FileType file_type_from_name(const std::string& name) {
    for (ingest::FileType type : kFileTypes)
        if (name == ingest::file_type_name(type)) return type;
    return ingest::FileType::Unknown;
}

// A document-id filter as one bound parameter: a JSON array that the SQL
// reads with json_each, so one id and hundreds take the same statement.
std::string json_id_array(const std::vector<std::int64_t>& ids) {
    std::string array = "[";
    for (const std::int64_t id : ids) array += (array.size() > 1 ? "," : "") + std::to_string(id);
    return array + "]";
}

std::int64_t unix_now() {
    return std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch())
        .count();
}

std::string sql(const char* head, const char* columns, const char* tail) {
    return std::string(head) + columns + tail;
}

// "a, b" with prefix "t." -> "t.a, t.b": a column list for a join.
std::string qualified(const std::string& prefix, const std::string& columns) {
    std::string out = prefix;
    for (char c : columns) {
        out += c;
        if (c == ' ') out += prefix;
    }
    return out;
}

std::int64_t read_pragma(sqlite::Connection& db, const char* pragma, const std::string& doing) {
    sqlite::Statement statement(db, pragma, doing);
    return statement.step() ? statement.int_at(0) : 0;
}

// Brings a library of an older schema up to kSchemaVersion inside the
// caller's write transaction, so a failure leaves it as it was. The FTS
// index is external content: dropping it loses no text, and 'rebuild'
// re-tokenizes every stored chunk.
void migrate_schema(sqlite::Connection& db, std::int64_t from_version) {
    const std::string migrating = "upgrading library " + db.path() + " from schema " + std::to_string(from_version);
    if (from_version < 2) {
        db.execute("DROP TABLE chunks_fts", migrating);
        db.execute(kChunksFtsSql, migrating);
        db.execute("INSERT INTO chunks_fts (chunks_fts) VALUES ('rebuild')", migrating);
    }
    if (from_version < 3) db.execute(kVectorSchemaSql, migrating);
    if (from_version < 4) db.execute(kBatchSchemaSql, migrating);
    if (from_version < 5) db.execute(kContentIndexSql, migrating);
    db.execute(("PRAGMA user_version = " + std::to_string(kSchemaVersion)).c_str(), migrating);
}

// Sets the file's journal mode to WAL and returns the mode it has then.
// Turning a new file to WAL takes an exclusive lock without SQLite's busy
// handler, so a second process opening the same new library at that moment
// gets SQLITE_BUSY at once: it waits here as the busy timeout would.
std::string switch_to_wal(sqlite::Connection& db, const std::string& opening) {
    const auto deadline = std::chrono::steady_clock::now() + db.busy_timeout();
    for (;;) {
        try {
            sqlite::Statement journal(db, "PRAGMA journal_mode = WAL", opening);
            return journal.step() ? journal.text_at(0) : std::string();
        } catch (const StoreError&) {
            if ((sqlite3_extended_errcode(db.handle()) & 0xff) != SQLITE_BUSY ||
                std::chrono::steady_clock::now() >= deadline)
                throw;
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
}

// Checks that the file is a Folio library this version can read, creating
// the schema in a new file and migrating an older one. Nothing is written
// before the checks pass, so a foreign or newer file is left as it was.
sqlite::Connection& ensure_schema(sqlite::Connection& db) {
    const std::string opening = "opening library " + db.path();
    if (sqlite3_db_readonly(db.handle(), "main") == 1)
        throw StoreError(db.path() + ": the library file is read-only");
    // Returns the schema version of a file this Folio can use: 0 for an empty one.
    auto readable_version = [&] {
        const std::int64_t version = read_pragma(db, "PRAGMA user_version", opening);
        if (version > kSchemaVersion)
            throw StoreError(db.path() + ": library was written by a newer Folio (schema " +
                             std::to_string(version) + ")");
        const std::int64_t application_id = read_pragma(db, "PRAGMA application_id", opening);
        if (application_id != 0 && application_id != kApplicationId)
            throw StoreError(db.path() + " is not a Folio library (SQLite application id " +
                             std::to_string(application_id) + ")");
        if (version == 0 && read_pragma(db, "SELECT count(*) FROM sqlite_schema", opening) != 0)
            throw StoreError(db.path() + " is not a Folio library (a SQLite database with other tables)");
        return version;
    };
    const std::int64_t version = readable_version();

    {
        const std::string mode = switch_to_wal(db, opening);
        if (mode != "wal")
            throw StoreError(db.path() + ": cannot use a write-ahead log here (journal mode stays '" + mode +
                             "'); keep the library on a local file system");
    }
    db.execute("PRAGMA synchronous = FULL; PRAGMA foreign_keys = ON", opening);
    if (version == kSchemaVersion) return db;

    // Another process may create the schema between the reads above and
    // this lock, so the checks are repeated under it.
    sqlite::WriteTransaction transaction(db);
    const std::int64_t locked_version = readable_version();
    if (locked_version == 0) {
        const std::string creating = "creating the library schema in " + db.path();
        db.execute(kSchemaSql, creating);
        db.execute(kChunksFtsSql, creating);
        db.execute(kVectorSchemaSql, creating);
        db.execute(kBatchSchemaSql, creating);
        db.execute(kContentIndexSql, creating);
        db.execute(("PRAGMA user_version = " + std::to_string(kSchemaVersion) +
                    "; PRAGMA application_id = " + std::to_string(kApplicationId))
                       .c_str(),
                   creating);
    } else if (locked_version < kSchemaVersion) {
        migrate_schema(db, locked_version);
    }
    transaction.commit();
    return db;
}

struct Statements {
    explicit Statements(sqlite::Connection& db)
        : document_by_path(db, sql("SELECT ", kDocumentColumns, " FROM documents WHERE path = ?1"),
                           "reading a document"),
          document_by_id(db, sql("SELECT ", kDocumentColumns, " FROM documents WHERE id = ?1"),
                         "reading a document"),
          all_documents(db, sql("SELECT ", kDocumentColumns, " FROM documents ORDER BY id"),
                        "listing documents"),
          indexed_documents_by_content(db,
                                       sql("SELECT ", kDocumentColumns,
                                           " FROM documents WHERE sha256 = ?1 AND status = 'indexed' ORDER BY id"),
                                       "looking up a document by content"),
          set_document_path(db, "UPDATE documents SET path = ?2 WHERE id = ?1", "moving a document"),
          delete_failed_at_path(db, "DELETE FROM documents WHERE path = ?1 AND status = 'failed'",
                                "removing the failure recorded for a path"),
          upsert_document(db,
                          "INSERT INTO documents (path, sha256, size, type, pages, status, error, failed_sha256,"
                          " created_at, updated_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, '', ?8, ?8)"
                          " ON CONFLICT (path) DO UPDATE SET sha256 = excluded.sha256, size = excluded.size,"
                          " type = excluded.type, pages = excluded.pages, status = excluded.status,"
                          " error = excluded.error, failed_sha256 = '', updated_at = excluded.updated_at"
                          " RETURNING id",
                          "writing the document row"),
          record_failed_update(db, "UPDATE documents SET error = ?2, failed_sha256 = ?3, updated_at = ?4"
                                   " WHERE id = ?1",
                               "recording the failure on the indexed version"),
          delete_document(db, "DELETE FROM documents WHERE id = ?1", "removing a document"),
          delete_pages(db, "DELETE FROM pages WHERE doc_id = ?1", "removing the old version's pages"),
          delete_chunks(db, "DELETE FROM chunks WHERE doc_id = ?1", "removing the old version's chunks"),
          insert_page(db,
                      sql("INSERT INTO pages (", kPageColumns,
                          ") VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)"),
                      "writing a page"),
          insert_chunk(db,
                       "INSERT INTO chunks (doc_id, ordinal, text, heading_path, page_start, page_end, boxes,"
                       " is_table, token_count) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
                       "writing a chunk"),
          pages_of_document(db, sql("SELECT ", kPageColumns, " FROM pages WHERE doc_id = ?1 ORDER BY number"),
                            "reading pages"),
          page_by_number(db, sql("SELECT ", kPageColumns, " FROM pages WHERE doc_id = ?1 AND number = ?2"),
                         "reading a page"),
          chunks_of_document(db,
                             sql("SELECT ", kChunkColumns, " FROM chunks WHERE doc_id = ?1 ORDER BY ordinal"),
                             "reading chunks"),
          chunk_by_id(db, sql("SELECT ", kChunkColumns, " FROM chunks WHERE id = ?1"), "reading a chunk"),
          // The filters sit inside the ranked query so that LIMIT counts only
          // hits that pass them; a NULL parameter turns its filter off.
          search_chunks(db,
                        sql("SELECT ", qualified("chunks.", kChunkColumns).c_str(),
                            (std::string(", documents.path, bm25(chunks_fts, ?3, ?4) AS score, ") + kQueryIdfFunction +
                             "(chunks_fts, ?9)"
                             " FROM chunks_fts JOIN chunks ON chunks.id = chunks_fts.rowid"
                             " JOIN documents ON documents.id = chunks.doc_id"
                             " WHERE chunks_fts MATCH ?1"
                             " AND (?5 IS NULL OR chunks.doc_id IN (SELECT value FROM json_each(?5)))"
                             " AND (?6 IS NULL OR documents.type = ?6)"
                             " AND (?7 IS NULL OR documents.updated_at >= ?7)"
                             " AND (?8 IS NULL OR documents.updated_at <= ?8)"
                             " ORDER BY score, chunks.id LIMIT ?2")
                                .c_str()),
                        "keyword search") {}

    sqlite::Statement document_by_path, document_by_id, all_documents;
    sqlite::Statement indexed_documents_by_content, set_document_path, delete_failed_at_path;
    sqlite::Statement upsert_document, record_failed_update, delete_document;
    sqlite::Statement delete_pages, delete_chunks, insert_page, insert_chunk;
    sqlite::Statement pages_of_document, page_by_number, chunks_of_document, chunk_by_id;
    sqlite::Statement search_chunks;
};

struct VectorStatements {
    explicit VectorStatements(sqlite::Connection& db)
        : model(db, "SELECT model_name, model_hash, dimension, generation FROM vector_state WHERE id = 1",
                "reading the embedding model"),
          set_model(db, "UPDATE vector_state SET model_name = ?1, model_hash = ?2, dimension = ?3,"
                        " generation = generation + 1 WHERE id = 1",
                    "recording the embedding model"),
          delete_all(db, "DELETE FROM chunk_vectors", "dropping the old model's vectors"),
          pending(db,
                  "SELECT chunks.id, chunks.heading_path, chunks.text FROM chunks"
                  " WHERE (?2 IS NULL OR chunks.doc_id = ?2)"
                  " AND NOT EXISTS (SELECT 1 FROM chunk_vectors WHERE chunk_id = chunks.id)"
                  " ORDER BY chunks.id LIMIT ?1",
                  "listing chunks without vectors"),
          count_pending(db,
                        "SELECT count(*) FROM chunks"
                        " WHERE NOT EXISTS (SELECT 1 FROM chunk_vectors WHERE chunk_id = chunks.id)",
                        "counting chunks without vectors"),
          count(db, "SELECT count(*) FROM chunk_vectors", "counting vectors"),
          any(db, "SELECT EXISTS (SELECT 1 FROM chunk_vectors)", "looking for vectors"),
          // Skips a chunk removed since it was embedded (the foreign key would refuse it).
          insert(db,
                 "INSERT INTO chunk_vectors (chunk_id, vector) SELECT ?1, ?2"
                 " WHERE EXISTS (SELECT 1 FROM chunks WHERE id = ?1)"
                 " ON CONFLICT (chunk_id) DO UPDATE SET vector = excluded.vector",
                 "writing a chunk vector"),
          bump(db, "UPDATE vector_state SET generation = generation + 1 WHERE id = 1",
               "advancing the vector generation"),
          all(db, "SELECT chunk_id, vector FROM chunk_vectors ORDER BY chunk_id", "reading vectors"),
          matching(db,
                   "SELECT chunks.id FROM chunks JOIN documents ON documents.id = chunks.doc_id"
                   " WHERE (?1 IS NULL OR chunks.doc_id IN (SELECT value FROM json_each(?1)))"
                   " AND (?2 IS NULL OR documents.type = ?2)"
                   " AND (?3 IS NULL OR documents.updated_at >= ?3) AND (?4 IS NULL OR documents.updated_at <= ?4)"
                   " ORDER BY chunks.id",
                   "filtering chunks"),
          with_path(db,
                    sql("SELECT ", qualified("chunks.", kChunkColumns).c_str(),
                        ", documents.path FROM chunks JOIN documents ON documents.id = chunks.doc_id"
                        " WHERE chunks.id = ?1"),
                    "reading a chunk") {}

    sqlite::Statement model, set_model, delete_all, pending, count_pending, count, any, insert, bump, all, matching,
        with_path;
};

constexpr std::array kBatchJobStates = {BatchJobState::Pending, BatchJobState::Done, BatchJobState::Failed};

struct BatchStatements {
    explicit BatchStatements(sqlite::Connection& db)
        : upsert(db,
                 "INSERT INTO batch_jobs (batch, path, sha256, state, doc_id, error, updated_at)"
                 " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7) ON CONFLICT (batch, path, sha256) DO UPDATE SET"
                 " state = excluded.state, doc_id = excluded.doc_id, error = excluded.error,"
                 " updated_at = excluded.updated_at",
                 "writing a batch job"),
          done(db,
               "SELECT batch, path, sha256, state, doc_id, error, updated_at FROM batch_jobs"
               " WHERE batch = ?1 AND sha256 = ?2 AND state = 'done' LIMIT 1",
               "reading a batch job"),
          of_batch(db,
                   "SELECT batch, path, sha256, state, doc_id, error, updated_at FROM batch_jobs"
                   " WHERE batch = ?1 ORDER BY rowid",
                   "listing batch jobs") {}

    sqlite::Statement upsert, done, of_batch;
};

BatchJob read_batch_job(const sqlite::Statement& row) {
    BatchJob job;
    job.batch = row.text_at(0);
    job.path = row.text_at(1);
    job.sha256 = row.text_at(2);
    const std::string state = row.text_at(3);
    for (BatchJobState s : kBatchJobStates)
        if (state == batch_job_state_name(s)) job.state = s;
    job.doc_id = row.int_at(4);
    job.error = row.text_at(5);
    job.updated_at = row.int_at(6);
    return job;
}

DocumentRecord read_document(const sqlite::Statement& row) {
    DocumentRecord record;
    record.id = row.int_at(0);
    record.path = row.text_at(1);
    record.sha256 = row.text_at(2);
    record.size = row.int_at(3);
    record.type = file_type_from_name(row.text_at(4));
    record.pages = static_cast<int>(row.int_at(5));
    record.status = row.text_at(6) == status_name(DocumentStatus::Failed) ? DocumentStatus::Failed
                                                                          : DocumentStatus::Indexed;
    record.error = row.text_at(7);
    record.failed_sha256 = row.text_at(8);
    record.created_at = row.int_at(9);
    record.updated_at = row.int_at(10);
    return record;
}

StoredPage read_page(const sqlite::Statement& row) {
    StoredPage page;
    page.doc_id = row.int_at(0);
    page.number = static_cast<int>(row.int_at(1));
    page.width = static_cast<float>(row.double_at(2));
    page.height = static_cast<float>(row.double_at(3));
    page.text = row.text_at(4);
    page.ocr = row.int_at(5) != 0;
    page.mean_confidence = static_cast<float>(row.double_at(6));
    page.rotation = static_cast<int>(row.int_at(7));
    page.skew_degrees = static_cast<float>(row.double_at(8));
    page.error = row.text_at(9);
    page.words = unpack_words(row.blob_at(10));
    return page;
}

StoredChunk read_chunk(const sqlite::Statement& row) {
    StoredChunk stored;
    stored.id = row.int_at(0);
    stored.doc_id = row.int_at(1);
    ingest::Chunk& chunk = stored.chunk;
    chunk.ordinal = static_cast<int>(row.int_at(2));
    chunk.text = row.text_at(3);
    chunk.heading_path = row.text_at(4);
    chunk.page_start = static_cast<int>(row.int_at(5));
    chunk.page_end = static_cast<int>(row.int_at(6));
    chunk.boxes = unpack_page_boxes(row.blob_at(7));
    chunk.table = row.int_at(8) != 0;
    chunk.token_count = static_cast<int>(row.int_at(9));
    return stored;
}

template <typename Record, typename Read>
std::optional<Record> read_one(sqlite::Statement& statement, Read read) {
    sqlite::StatementScope scope(statement);
    if (!statement.step()) return std::nullopt;
    return read(statement);
}

template <typename Record, typename Read>
std::vector<Record> read_all(sqlite::Statement& statement, Read read) {
    sqlite::StatementScope scope(statement);
    std::vector<Record> records;
    while (statement.step()) records.push_back(read(statement));
    return records;
}

class SqliteLibraryStore final : public LibraryStore {
public:
    SqliteLibraryStore(const std::string& file, std::chrono::milliseconds busy_timeout)
        : connection_(file, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, busy_timeout),
          statements_(ensure_schema(connection_)),
          vector_statements_(connection_),
          batch_statements_(connection_) {}

    std::optional<DocumentRecord> find_by_path(const std::string& path) override {
        statements_.document_by_path.bind_text(1, path);
        return read_one<DocumentRecord>(statements_.document_by_path, read_document);
    }

    std::int64_t put_document(const DocumentInput& input) override {
        try {
            sqlite::WriteTransaction transaction(connection_);
            const std::int64_t now = unix_now();
            const std::optional<DocumentRecord> existing = find_by_path(input.path);
            std::int64_t doc_id = 0;
            if (!input.error.empty() && existing && existing->status == DocumentStatus::Indexed) {
                doc_id = existing->id;
                record_failed_update(doc_id, input, now);
            } else {
                doc_id = upsert_document(input, now);
                if (existing) delete_content(doc_id);
                if (input.error.empty()) {
                    insert_pages(doc_id, input.pages);
                    insert_chunks(doc_id, input.chunks);
                }
            }
            transaction.commit();
            return doc_id;
        } catch (const StoreError& e) {
            throw StoreError("cannot store " + input.path + ": " + e.what());
        }
    }

    bool remove_document(std::int64_t doc_id) override {
        try {
            sqlite::WriteTransaction transaction(connection_);
            statements_.delete_document.bind_int(1, doc_id);
            statements_.delete_document.execute();
            const bool removed = sqlite3_changes64(connection_.handle()) > 0;
            transaction.commit();
            return removed;
        } catch (const StoreError& e) {
            throw StoreError("cannot remove document " + std::to_string(doc_id) + ": " + e.what());
        }
    }

    std::vector<DocumentRecord> find_by_content(const std::string& sha256) override {
        statements_.indexed_documents_by_content.bind_text(1, sha256);
        return read_all<DocumentRecord>(statements_.indexed_documents_by_content, read_document);
    }

    bool move_document(std::int64_t doc_id, const std::string& path) override {
        try {
            sqlite::WriteTransaction transaction(connection_);
            statements_.delete_failed_at_path.bind_text(1, path);
            statements_.delete_failed_at_path.execute();
            statements_.set_document_path.bind_int(1, doc_id);
            statements_.set_document_path.bind_text(2, path);
            statements_.set_document_path.execute();
            const bool moved = sqlite3_changes64(connection_.handle()) > 0;
            transaction.commit();
            return moved;
        } catch (const StoreError& e) {
            throw StoreError("cannot move document " + std::to_string(doc_id) + " to " + path + ": " + e.what());
        }
    }

    std::vector<DocumentRecord> documents() override {
        return read_all<DocumentRecord>(statements_.all_documents, read_document);
    }

    std::optional<DocumentRecord> document(std::int64_t doc_id) override {
        statements_.document_by_id.bind_int(1, doc_id);
        return read_one<DocumentRecord>(statements_.document_by_id, read_document);
    }

    std::vector<StoredPage> pages(std::int64_t doc_id) override {
        statements_.pages_of_document.bind_int(1, doc_id);
        return read_all<StoredPage>(statements_.pages_of_document, read_page);
    }

    std::optional<StoredPage> page(std::int64_t doc_id, int number) override {
        statements_.page_by_number.bind_int(1, doc_id);
        statements_.page_by_number.bind_int(2, number);
        return read_one<StoredPage>(statements_.page_by_number, read_page);
    }

    std::vector<StoredChunk> chunks(std::int64_t doc_id) override {
        statements_.chunks_of_document.bind_int(1, doc_id);
        return read_all<StoredChunk>(statements_.chunks_of_document, read_chunk);
    }

    std::optional<StoredChunk> chunk(std::int64_t chunk_id) override {
        statements_.chunk_by_id.bind_int(1, chunk_id);
        return read_one<StoredChunk>(statements_.chunk_by_id, read_chunk);
    }

    std::vector<ChunkMatch> match_chunks(const std::string& fts5_query, int limit) override {
        std::vector<ChunkMatch> matches;
        for (const ScoredChunk& hit : search_chunks({.fts5_expression = fts5_query, .limit = limit}))
            matches.push_back({hit.stored.id, hit.stored.doc_id, hit.bm25});
        return matches;
    }

    std::vector<ScoredChunk> search_chunks(const ChunkQuery& query) override {
        if (query.limit <= 0) return {};
        sqlite::Statement& search = statements_.search_chunks;
        search.bind_text(1, query.fts5_expression);
        search.bind_int(2, query.limit);
        search.bind_double(3, query.heading_weight);
        search.bind_double(4, query.text_weight);
        const std::string doc_ids = json_id_array(query.doc_ids);  // bound without a copy: lives until read
        if (!query.doc_ids.empty()) search.bind_text(5, doc_ids);
        if (query.type) search.bind_text(6, ingest::file_type_name(*query.type));
        if (query.updated_from) search.bind_int(7, *query.updated_from);
        if (query.updated_until) search.bind_int(8, *query.updated_until);
        search.bind_int(9, query.query_idf ? 1 : 0);
        return read_all<ScoredChunk>(search, [](const sqlite::Statement& row) {
            return ScoredChunk{read_chunk(row), row.text_at(10), row.double_at(11), row.double_at(12)};
        });
    }

    std::optional<EmbeddingModelRecord> embedding_model() override {
        sqlite::Statement& model = vector_statements_.model;
        sqlite::StatementScope scope(model);
        if (!model.step() || model.int_at(2) <= 0) return std::nullopt;
        return EmbeddingModelRecord{model.text_at(0), model.text_at(1), static_cast<int>(model.int_at(2))};
    }

    bool set_embedding_model(const EmbeddingModelRecord& model) override {
        if (model.dimension <= 0 || model.hash.empty())
            throw StoreError("an embedding model needs a hash and a positive dimension");
        sqlite::WriteTransaction transaction(connection_);
        if (embedding_model() == model) return false;
        vector_statements_.delete_all.execute();
        sqlite::Statement& set = vector_statements_.set_model;
        set.bind_text(1, model.name);
        set.bind_text(2, model.hash);
        set.bind_int(3, model.dimension);
        set.execute();
        transaction.commit();
        return true;
    }

    std::vector<ChunkText> chunks_without_vectors(int limit, std::optional<std::int64_t> doc_id) override {
        vector_statements_.pending.bind_int(1, limit);
        if (doc_id) vector_statements_.pending.bind_int(2, *doc_id);
        return read_all<ChunkText>(vector_statements_.pending, [](const sqlite::Statement& row) {
            const std::string heading = row.text_at(1);
            return ChunkText{row.int_at(0), heading.empty() ? row.text_at(2) : heading + "\n" + row.text_at(2)};
        });
    }

    std::int64_t count_chunks_without_vectors() override { return count(vector_statements_.count_pending); }
    std::int64_t count_vectors() override { return count(vector_statements_.count); }
    bool has_vectors() override { return count(vector_statements_.any) != 0; }

    void put_vectors(const EmbeddingModelRecord& model, std::span<const std::int64_t> chunk_ids,
                     std::span<const float> vectors) override {
        if (vectors.size() != chunk_ids.size() * static_cast<std::size_t>(model.dimension))
            throw StoreError("vectors hold " + std::to_string(vectors.size()) + " floats, not " +
                             std::to_string(chunk_ids.size()) + " x " + std::to_string(model.dimension));
        sqlite::WriteTransaction transaction(connection_);
        if (embedding_model() != model)
            throw StoreError("the library's embedding model changed while " + model.name + " was embedding");
        sqlite::Statement& insert = vector_statements_.insert;
        const std::size_t row_bytes = sizeof(float) * static_cast<std::size_t>(model.dimension);
        for (std::size_t i = 0; i < chunk_ids.size(); ++i) {
            insert.bind_int(1, chunk_ids[i]);
            insert.bind_blob(2, std::string_view(reinterpret_cast<const char*>(vectors.data()) + i * row_bytes,
                                                 row_bytes));
            insert.execute();
        }
        vector_statements_.bump.execute();
        transaction.commit();
    }

    std::uint64_t vector_generation() override {
        sqlite::Statement& model = vector_statements_.model;
        sqlite::StatementScope scope(model);
        return model.step() ? static_cast<std::uint64_t>(model.int_at(3)) : 0;
    }

    StoredVectors vectors() override {
        // One snapshot for the generation and the rows.
        const std::unique_ptr<ReadSnapshot> snapshot = read_snapshot();
        StoredVectors stored;
        stored.generation = vector_generation();
        const std::optional<EmbeddingModelRecord> model = embedding_model();
        if (!model) return stored;
        stored.dimension = model->dimension;
        const std::size_t row_bytes = sizeof(float) * static_cast<std::size_t>(model->dimension);
        sqlite::Statement& all = vector_statements_.all;
        sqlite::StatementScope scope(all);
        while (all.step()) {
            const std::span<const unsigned char> blob = all.blob_at(1);
            if (blob.size() != row_bytes)
                throw StoreError("chunk " + std::to_string(all.int_at(0)) + " has a vector of " +
                                 std::to_string(blob.size()) + " bytes, not " + std::to_string(row_bytes));
            stored.chunk_ids.push_back(all.int_at(0));
            const std::size_t at = stored.vectors.size();
            stored.vectors.resize(at + static_cast<std::size_t>(model->dimension));
            std::memcpy(stored.vectors.data() + at, blob.data(), row_bytes);
        }
        return stored;
    }

    std::vector<std::int64_t> chunk_ids_matching(const ChunkFilter& filter) override {
        sqlite::Statement& matching = vector_statements_.matching;
        const std::string doc_ids = json_id_array(filter.doc_ids);  // bound without a copy: lives until read
        if (!filter.doc_ids.empty()) matching.bind_text(1, doc_ids);
        if (filter.type) matching.bind_text(2, ingest::file_type_name(*filter.type));
        if (filter.updated_from) matching.bind_int(3, *filter.updated_from);
        if (filter.updated_until) matching.bind_int(4, *filter.updated_until);
        return read_all<std::int64_t>(matching, [](const sqlite::Statement& row) { return row.int_at(0); });
    }

    std::vector<ScoredChunk> chunks_with_paths(std::span<const std::int64_t> chunk_ids) override {
        std::vector<ScoredChunk> chunks;
        for (const std::int64_t id : chunk_ids) {
            vector_statements_.with_path.bind_int(1, id);
            std::optional<ScoredChunk> chunk =
                read_one<ScoredChunk>(vector_statements_.with_path, [](const sqlite::Statement& row) {
                    return ScoredChunk{read_chunk(row), row.text_at(10), 0.0};
                });
            if (chunk) chunks.push_back(std::move(*chunk));
        }
        return chunks;
    }

    void put_batch_jobs(std::span<const BatchJob> jobs) override {
        try {
            sqlite::WriteTransaction transaction(connection_);
            const std::int64_t now = unix_now();
            sqlite::Statement& upsert = batch_statements_.upsert;
            for (const BatchJob& job : jobs) {
                upsert.bind_text(1, job.batch);
                upsert.bind_text(2, job.path);
                upsert.bind_text(3, job.sha256);
                upsert.bind_text(4, batch_job_state_name(job.state));
                upsert.bind_int(5, job.doc_id);
                upsert.bind_text(6, job.error);
                upsert.bind_int(7, now);
                upsert.execute();
            }
            transaction.commit();
        } catch (const StoreError& e) {
            throw StoreError("cannot record batch jobs: " + std::string(e.what()));
        }
    }

    std::optional<BatchJob> done_batch_job(const std::string& batch, const std::string& sha256) override {
        batch_statements_.done.bind_text(1, batch);
        batch_statements_.done.bind_text(2, sha256);
        return read_one<BatchJob>(batch_statements_.done, read_batch_job);
    }

    std::vector<BatchJob> batch_jobs(const std::string& batch) override {
        batch_statements_.of_batch.bind_text(1, batch);
        return read_all<BatchJob>(batch_statements_.of_batch, read_batch_job);
    }

    std::unique_ptr<ReadSnapshot> read_snapshot() override {
        class Snapshot final : public ReadSnapshot {
        public:
            explicit Snapshot(sqlite::Connection& db) : db_(db) {
                // BEGIN alone takes no snapshot; the first read does.
                db_.execute("BEGIN; SELECT count(*) FROM vector_state", "starting a read snapshot");
            }
            ~Snapshot() override { sqlite3_exec(db_.handle(), "COMMIT", nullptr, nullptr, nullptr); }

        private:
            sqlite::Connection& db_;
        };
        // Nested snapshots (vectors() inside a search) share the outer one.
        if (!sqlite3_get_autocommit(connection_.handle())) return std::make_unique<ReadSnapshot>();
        return std::make_unique<Snapshot>(connection_);
    }

    std::string integrity_check() override {
        // One snapshot for all checks; the write lock because the FTS check
        // is spelled as an INSERT.
        sqlite::WriteTransaction transaction(connection_);
        std::string problems;
        auto add = [&](const std::string& problem) { problems += (problems.empty() ? "" : "; ") + problem; };
        {
            sqlite::Statement check(connection_, "PRAGMA integrity_check", "checking the library");
            while (check.step())
                if (check.text_at(0) != "ok") add(check.text_at(0));
        }
        {
            sqlite::Statement orphans(connection_,
                                      "SELECT \"table\", count(*) FROM pragma_foreign_key_check GROUP BY 1",
                                      "checking the library's foreign keys");
            while (orphans.step())
                add(std::to_string(orphans.int_at(1)) + " rows of " + orphans.text_at(0) +
                    " belong to no document");
        }
        // rank = 1 also compares the index with the chunks it was built from.
        if (sqlite3_exec(connection_.handle(),
                         "INSERT INTO chunks_fts (chunks_fts, rank) VALUES ('integrity-check', 1)", nullptr, nullptr,
                         nullptr) != SQLITE_OK) {
            if ((sqlite3_errcode(connection_.handle()) & 0xff) != SQLITE_CORRUPT)
                connection_.fail("checking the keyword index");
            add(std::string("keyword index does not match the chunks: ") + sqlite3_errmsg(connection_.handle()));
        }
        transaction.commit();
        return problems.empty() ? "ok" : problems;
    }

private:
    static std::int64_t count(sqlite::Statement& statement) {
        sqlite::StatementScope scope(statement);
        return statement.step() ? statement.int_at(0) : 0;
    }

    std::int64_t upsert_document(const DocumentInput& input, std::int64_t now) {
        sqlite::Statement& upsert = statements_.upsert_document;
        sqlite::StatementScope scope(upsert);
        const DocumentStatus status = input.error.empty() ? DocumentStatus::Indexed : DocumentStatus::Failed;
        upsert.bind_text(1, input.path);
        upsert.bind_text(2, input.sha256);
        upsert.bind_int(3, input.size);
        upsert.bind_text(4, ingest::file_type_name(input.type));
        upsert.bind_int(5, static_cast<std::int64_t>(input.pages.size()));
        upsert.bind_text(6, status_name(status));
        // Bound text must outlive step(): keep the summary in a local.
        const std::string error = input.error.empty() ? ingest::summarize_page_errors(input.pages) : input.error;
        upsert.bind_text(7, error);
        upsert.bind_int(8, now);
        upsert.step();
        return upsert.int_at(0);
    }

    void record_failed_update(std::int64_t doc_id, const DocumentInput& input, std::int64_t now) {
        sqlite::Statement& update = statements_.record_failed_update;
        update.bind_int(1, doc_id);
        update.bind_text(2, input.error);
        update.bind_text(3, input.sha256);
        update.bind_int(4, now);
        update.execute();
    }

    void delete_content(std::int64_t doc_id) {
        statements_.delete_pages.bind_int(1, doc_id);
        statements_.delete_pages.execute();
        statements_.delete_chunks.bind_int(1, doc_id);
        statements_.delete_chunks.execute();
    }

    void insert_pages(std::int64_t doc_id, const std::vector<ingest::Page>& pages) {
        sqlite::Statement& insert = statements_.insert_page;
        for (const ingest::Page& page : pages) {
            const std::string words = pack_words(page.words);
            insert.bind_int(1, doc_id);
            insert.bind_int(2, page.number);
            insert.bind_double(3, page.width);
            insert.bind_double(4, page.height);
            insert.bind_text(5, page.text);
            insert.bind_int(6, page.ocr);
            insert.bind_double(7, page.mean_confidence);
            insert.bind_int(8, page.rotation);
            insert.bind_double(9, page.skew_degrees);
            insert.bind_text(10, page.error);
            insert.bind_blob(11, words);
            insert.execute();
        }
    }

    void insert_chunks(std::int64_t doc_id, const std::vector<ingest::Chunk>& chunks) {
        sqlite::Statement& insert = statements_.insert_chunk;
        for (const ingest::Chunk& chunk : chunks) {
            const std::string boxes = pack_page_boxes(chunk.boxes);
            insert.bind_int(1, doc_id);
            insert.bind_int(2, chunk.ordinal);
            insert.bind_text(3, chunk.text);
            insert.bind_text(4, chunk.heading_path);
            insert.bind_int(5, chunk.page_start);
            insert.bind_int(6, chunk.page_end);
            insert.bind_blob(7, boxes);
            insert.bind_int(8, chunk.table);
            insert.bind_int(9, chunk.token_count);
            insert.execute();
        }
    }

    sqlite::Connection connection_;
    Statements statements_;
    VectorStatements vector_statements_;
    BatchStatements batch_statements_;
};

}  // namespace

const char* status_name(DocumentStatus status) {
    return status == DocumentStatus::Failed ? "failed" : "indexed";
}

const char* batch_job_state_name(BatchJobState state) {
    switch (state) {
    case BatchJobState::Pending: return "pending";
    case BatchJobState::Done: return "done";
    case BatchJobState::Failed: return "failed";
    }
    return "pending";
}

std::unique_ptr<LibraryStore> LibraryStore::open(const std::string& directory,
                                                 std::chrono::milliseconds busy_timeout) {
    std::error_code error;
    std::filesystem::create_directories(directory, error);
    if (error) throw StoreError("cannot create library folder " + directory + ": " + error.message());
    return std::make_unique<SqliteLibraryStore>((std::filesystem::path(directory) / "library.sqlite").string(),
                                                busy_timeout);
}

}  // namespace folio::index
