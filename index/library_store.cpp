#include "index/library_store.h"

#include <array>
#include <chrono>
#include <filesystem>
#include <system_error>

#include "index/packed_boxes.h"
#include "index/sqlite_db.h"

namespace folio::index {
namespace {

// Schema history (PRAGMA user_version): 1 is the first. A newer version is
// refused rather than guessed at; an older one would be migrated here.
constexpr int kSchemaVersion = 1;
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

CREATE VIRTUAL TABLE chunks_fts USING fts5 (
    heading_path, text,
    content = 'chunks', content_rowid = 'id',
    tokenize = 'unicode61 remove_diacritics 2'
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

std::int64_t unix_now() {
    return std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch())
        .count();
}

std::string sql(const char* head, const char* columns, const char* tail) {
    return std::string(head) + columns + tail;
}

std::int64_t read_pragma(sqlite::Connection& db, const char* pragma, const std::string& doing) {
    sqlite::Statement statement(db, pragma, doing);
    return statement.step() ? statement.int_at(0) : 0;
}

// Checks that the file is a Folio library this version can read, creating
// the schema in a new file. Nothing is written before the checks pass, so a
// foreign or newer file is left as it was.
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
        sqlite::Statement journal(db, "PRAGMA journal_mode = WAL", opening);
        const std::string mode = journal.step() ? journal.text_at(0) : std::string();
        if (mode != "wal")
            throw StoreError(db.path() + ": cannot use a write-ahead log here (journal mode stays '" + mode +
                             "'); keep the library on a local file system");
    }
    db.execute("PRAGMA synchronous = FULL; PRAGMA foreign_keys = ON", opening);
    if (version == kSchemaVersion) return db;

    // Another process may create the schema between the reads above and
    // this lock, so the checks are repeated under it.
    sqlite::WriteTransaction transaction(db);
    if (readable_version() == 0) {
        const std::string creating = "creating the library schema in " + db.path();
        db.execute(kSchemaSql, creating);
        db.execute(("PRAGMA user_version = " + std::to_string(kSchemaVersion) +
                    "; PRAGMA application_id = " + std::to_string(kApplicationId))
                       .c_str(),
                   creating);
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
          match_chunks(db,
                       "SELECT hit.rowid, chunks.doc_id, hit.rank FROM"
                       " (SELECT rowid, rank FROM chunks_fts WHERE chunks_fts MATCH ?1 ORDER BY rank LIMIT ?2) AS hit"
                       " JOIN chunks ON chunks.id = hit.rowid ORDER BY hit.rank",
                       "keyword search") {}

    sqlite::Statement document_by_path, document_by_id, all_documents;
    sqlite::Statement upsert_document, record_failed_update, delete_document;
    sqlite::Statement delete_pages, delete_chunks, insert_page, insert_chunk;
    sqlite::Statement pages_of_document, page_by_number, chunks_of_document, chunk_by_id;
    sqlite::Statement match_chunks;
};

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
          statements_(ensure_schema(connection_)) {}

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
        if (limit <= 0) return {};
        statements_.match_chunks.bind_text(1, fts5_query);
        statements_.match_chunks.bind_int(2, limit);
        return read_all<ChunkMatch>(statements_.match_chunks, [](const sqlite::Statement& row) {
            return ChunkMatch{row.int_at(0), row.int_at(1), row.double_at(2)};
        });
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
};

}  // namespace

const char* status_name(DocumentStatus status) {
    return status == DocumentStatus::Failed ? "failed" : "indexed";
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
