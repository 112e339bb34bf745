#include <QElapsedTimer>
#include <QFile>
#include <QTemporaryDir>
#include <QTest>

#include <unistd.h>

#include <algorithm>
#include <set>
#include <thread>

#include "document_builders.h"
#include "index/library_store.h"
#include "index/sqlite_db.h"

using namespace folio;
using namespace folio::index;
using folio::index::testing::make_chunk;
using folio::index::testing::make_document;
using folio::index::testing::make_page;
using folio::index::testing::sha256_of_number;

namespace {

// A second, raw connection for looking under the store's API.
struct RawLibrary {
    explicit RawLibrary(const QString& directory)
        : connection((directory + "/library.sqlite").toStdString(), SQLITE_OPEN_READWRITE,
                     std::chrono::seconds(10)) {}

    std::int64_t number(const char* sql) {
        sqlite::Statement statement(connection, sql, "test query");
        return statement.step() ? statement.int_at(0) : -1;
    }

    std::string text(const char* sql) {
        sqlite::Statement statement(connection, sql, "test query");
        return statement.step() ? statement.text_at(0) : std::string();
    }

    // Distinct terms in the FTS index, read from the index itself rather
    // than from the chunks table the external-content table reads through.
    std::set<std::string> indexed_terms() {
        connection.execute("CREATE VIRTUAL TABLE IF NOT EXISTS temp.terms USING fts5vocab(main, chunks_fts, row)",
                           "test vocabulary");
        std::set<std::string> terms;
        sqlite::Statement statement(connection, "SELECT term FROM temp.terms", "test query");
        while (statement.step()) terms.insert(statement.text_at(0));
        return terms;
    }

    sqlite::Connection connection;
};

QByteArray file_bytes(const QString& path) {
    QFile file(path);
    return file.open(QIODevice::ReadOnly) ? file.readAll() : QByteArray();
}

bool contains(const std::string& text, const std::string& part) { return text.find(part) != std::string::npos; }

}  // namespace

class LibraryStoreTest : public QObject {
    Q_OBJECT

private slots:
    void init() {
        directory_.emplace();
        QVERIFY(directory_->isValid());
    }
    void cleanup() { directory_.reset(); }

    void creates_folder_and_wal_library() {
        const QString folder = dir() + "/nested/library";
        auto store = LibraryStore::open(folder.toStdString());
        QVERIFY(QFile::exists(folder + "/library.sqlite"));
        RawLibrary raw(folder);
        QCOMPARE(raw.text("PRAGMA journal_mode"), std::string("wal"));
        QCOMPARE(raw.number("PRAGMA user_version"), std::int64_t(5));
        QCOMPARE(raw.number("SELECT count(*) FROM sqlite_schema WHERE name IN "
                            "('documents', 'pages', 'chunks', 'chunks_fts', 'chunk_vectors', 'vector_state',"
                            " 'batch_jobs')"),
                 std::int64_t(7));
        QCOMPARE(store->integrity_check(), std::string("ok"));
        QVERIFY(store->documents().empty());
    }

    void reopening_keeps_documents() {
        std::int64_t id = 0;
        {
            auto store = LibraryStore::open(dir().toStdString());
            id = store->put_document(make_document("/docs/a.pdf", 2, 3, "alpha"));
        }
        auto store = LibraryStore::open(dir().toStdString());
        QCOMPARE(store->documents().size(), std::size_t(1));
        QCOMPARE(store->chunks(id).size(), std::size_t(3));
    }

    void round_trips_documents_pages_and_chunks() {
        auto store = LibraryStore::open(dir().toStdString());
        DocumentInput input = make_document("/docs/filing.pdf", 3, 4, "alpha");
        input.sha256 = std::string(64, 'c');
        input.size = 123456;
        input.pages[1].ocr = true;
        input.pages[1].mean_confidence = 91.25f;
        input.pages[1].rotation = 90;
        input.pages[1].skew_degrees = -1.5f;
        input.pages[1].words[3].confidence = 42.5f;
        input.pages[1].words[4].space_after = false;
        input.pages[2].error = "OCR timed out after 120 s";
        input.chunks[2].table = true;
        input.chunks[2].page_end = 3;
        input.chunks[2].boxes.push_back({3, {1.5f, 2.25f, 3.125f, 4.0625f}});

        const std::int64_t before = std::chrono::duration_cast<std::chrono::seconds>(
                                        std::chrono::system_clock::now().time_since_epoch())
                                        .count();
        const std::int64_t id = store->put_document(input);
        QVERIFY(id > 0);

        const std::optional<DocumentRecord> record = store->document(id);
        QVERIFY(record);
        QCOMPARE(record->id, id);
        QCOMPARE(record->path, input.path);
        QCOMPARE(record->sha256, input.sha256);
        QCOMPARE(record->size, input.size);
        QCOMPARE(record->type, ingest::FileType::Pdf);
        QCOMPARE(record->pages, 3);
        QCOMPARE(record->status, DocumentStatus::Indexed);
        QCOMPARE(record->error, std::string("page 3: OCR timed out after 120 s"));  // the failed page, named
        QVERIFY(record->failed_sha256.empty());
        QVERIFY(record->created_at >= before && record->created_at <= before + 5);
        QCOMPARE(record->updated_at, record->created_at);
        QCOMPARE(store->find_by_path(input.path)->id, id);
        QVERIFY(!store->find_by_path("/docs/other.pdf"));
        QCOMPARE(store->documents().size(), std::size_t(1));

        const std::vector<StoredPage> pages = store->pages(id);
        QCOMPARE(pages.size(), input.pages.size());
        for (std::size_t i = 0; i < pages.size(); ++i) {
            const ingest::Page& want = input.pages[i];
            const StoredPage& got = pages[i];
            QCOMPARE(got.doc_id, id);
            QCOMPARE(got.number, want.number);
            QCOMPARE(got.width, want.width);
            QCOMPARE(got.height, want.height);
            QCOMPARE(got.text, want.text);
            QCOMPARE(got.ocr, want.ocr);
            QCOMPARE(got.mean_confidence, want.mean_confidence);
            QCOMPARE(got.rotation, want.rotation);
            QCOMPARE(got.skew_degrees, want.skew_degrees);
            QCOMPARE(got.error, want.error);
            QCOMPARE(got.words.size(), want.words.size());
            for (std::size_t w = 0; w < want.words.size(); ++w) {
                QCOMPARE(got.words[w].text, want.words[w].text);
                QCOMPARE(got.words[w].box.x0, want.words[w].box.x0);
                QCOMPARE(got.words[w].box.y1, want.words[w].box.y1);
                QCOMPARE(got.words[w].confidence, want.words[w].confidence);
                QCOMPARE(got.words[w].font_size, want.words[w].font_size);
                QCOMPARE(got.words[w].bold, want.words[w].bold);
                QCOMPARE(got.words[w].space_after, want.words[w].space_after);
                QCOMPARE(got.words[w].line_end, want.words[w].line_end);
            }
        }
        QCOMPARE(store->page(id, 2)->text, input.pages[1].text);
        QVERIFY(!store->page(id, 4));

        const std::vector<StoredChunk> chunks = store->chunks(id);
        QCOMPARE(chunks.size(), input.chunks.size());
        for (std::size_t i = 0; i < chunks.size(); ++i) {
            const ingest::Chunk& want = input.chunks[i];
            const ingest::Chunk& got = chunks[i].chunk;
            QCOMPARE(chunks[i].doc_id, id);
            QCOMPARE(got.ordinal, want.ordinal);
            QCOMPARE(got.text, want.text);
            QCOMPARE(got.heading_path, want.heading_path);
            QCOMPARE(got.page_start, want.page_start);
            QCOMPARE(got.page_end, want.page_end);
            QCOMPARE(got.table, want.table);
            QCOMPARE(got.token_count, want.token_count);
            QCOMPARE(got.boxes.size(), want.boxes.size());
            for (std::size_t b = 0; b < want.boxes.size(); ++b) {
                QCOMPARE(got.boxes[b].page, want.boxes[b].page);
                QCOMPARE(got.boxes[b].box.x0, want.boxes[b].box.x0);
                QCOMPARE(got.boxes[b].box.y1, want.boxes[b].box.y1);
            }
            const std::optional<StoredChunk> by_id = store->chunk(chunks[i].id);
            QVERIFY(by_id);
            QCOMPARE(by_id->chunk.text, want.text);
        }
        QVERIFY(!store->chunk(chunks.back().id + 1));
    }

    void keyword_search_finds_body_and_heading_words() {
        auto store = LibraryStore::open(dir().toStdString());
        DocumentInput input = make_document("/docs/annual.pdf", 2, 3, "alpha");
        input.chunks[0].heading_path = "Item 7 > Liquidity and Capital Resources";
        input.chunks[0].text = "Cash on hand was sufficient.";
        input.chunks[1].heading_path = "Item 1A > Risk Factors";
        input.chunks[1].text = "Our suppliers include a Café in Zürich; debentures mature in 2031.";
        input.chunks[2].heading_path = "Notes";
        input.chunks[2].text = "Debentures debentures debentures were refinanced.";
        const std::int64_t id = store->put_document(input);
        const std::vector<StoredChunk> chunks = store->chunks(id);

        auto ids = [&](const std::string& query) {
            std::vector<std::int64_t> found;
            for (const ChunkMatch& match : store->match_chunks(query, 10)) {
                if (match.doc_id != id) return std::vector<std::int64_t>{-1};
                found.push_back(match.chunk_id);
            }
            return found;
        };
        QCOMPARE(ids("sufficient"), std::vector<std::int64_t>{chunks[0].id});
        QCOMPARE(ids("liquidity"), std::vector<std::int64_t>{chunks[0].id});
        QCOMPARE(ids("heading_path : liquidity"), std::vector<std::int64_t>{chunks[0].id});
        QVERIFY(ids("text : liquidity").empty());
        QCOMPARE(ids("cafe zurich"), std::vector<std::int64_t>{chunks[1].id});
        QCOMPARE(ids("\"capital resources\""), std::vector<std::int64_t>{chunks[0].id});
        // Best first: the chunk that repeats the word outranks the one that says it once.
        QCOMPARE(ids("debentures"), (std::vector<std::int64_t>{chunks[2].id, chunks[1].id}));
        QCOMPARE(store->match_chunks("debentures", 1).size(), std::size_t(1));
        QVERIFY(ids("nonexistentword").empty());
        QVERIFY_THROWS_EXCEPTION(StoreError, store->match_chunks("\"unbalanced", 10));
    }

    void replacing_by_path_leaves_no_orphans() {
        auto store = LibraryStore::open(dir().toStdString());
        const std::int64_t other = store->put_document(make_document("/docs/other.pdf", 2, 2, "keeper"));
        const std::int64_t first = store->put_document(make_document("/docs/report.pdf", 5, 6, "zebra"));
        const std::vector<StoredChunk> old_chunks = store->chunks(first);
        const std::int64_t created_at = store->document(first)->created_at;

        DocumentInput changed = make_document("/docs/report.pdf", 2, 1, "yak");
        changed.sha256 = std::string(64, 'b');
        const std::int64_t second = store->put_document(changed);

        QCOMPARE(second, first);
        const DocumentRecord record = *store->document(second);
        QCOMPARE(record.sha256, changed.sha256);
        QCOMPARE(record.pages, 2);
        QCOMPARE(record.created_at, created_at);
        QCOMPARE(store->pages(second).size(), std::size_t(2));
        QCOMPARE(store->chunks(second).size(), std::size_t(1));
        QVERIFY(store->chunks(second)[0].id > old_chunks.back().id);
        QCOMPARE(store->documents().size(), std::size_t(2));
        QVERIFY(store->match_chunks("zebra", 10).empty());
        QCOMPARE(store->match_chunks("yak", 10).size(), std::size_t(1));
        QCOMPARE(store->match_chunks("keeper", 10).size(), std::size_t(2));

        RawLibrary raw(dir());
        QCOMPARE(raw.number("SELECT count(*) FROM pages"), std::int64_t(2 + 2));
        QCOMPARE(raw.number("SELECT count(*) FROM chunks"), std::int64_t(2 + 1));
        const std::set<std::string> terms = raw.indexed_terms();
        QVERIFY(!terms.count("zebra"));
        QVERIFY(terms.count("yak") && terms.count("keeper"));
        for (const StoredChunk& chunk : old_chunks) QVERIFY(!store->chunk(chunk.id));
        QCOMPARE(store->integrity_check(), std::string("ok"));
        QVERIFY(other != first);
    }

    void removing_cascades_to_pages_chunks_and_index() {
        auto store = LibraryStore::open(dir().toStdString());
        const std::int64_t id = store->put_document(make_document("/docs/a.pdf", 3, 4, "walrus"));
        QVERIFY(store->remove_document(id));
        QVERIFY(!store->remove_document(id));
        QVERIFY(!store->document(id));
        QVERIFY(store->pages(id).empty());
        QVERIFY(store->chunks(id).empty());
        QVERIFY(store->match_chunks("walrus", 10).empty());
        RawLibrary raw(dir());
        QCOMPARE(raw.number("SELECT count(*) FROM pages") + raw.number("SELECT count(*) FROM chunks"),
                 std::int64_t(0));
        QVERIFY(raw.indexed_terms().empty());
        QCOMPARE(store->integrity_check(), std::string("ok"));
        // A removed document's id is not handed to the next one.
        QVERIFY(store->put_document(make_document("/docs/a.pdf", 1, 1, "walrus")) > id);
    }

    void failed_document_is_recorded_and_replaced() {
        auto store = LibraryStore::open(dir().toStdString());
        DocumentInput failed = make_document("/docs/locked.pdf", 4, 2, "secret");
        failed.error = "encrypted PDF: needs a password (--password)";
        const std::int64_t id = store->put_document(failed);
        DocumentRecord record = *store->document(id);
        QCOMPARE(record.status, DocumentStatus::Failed);
        QCOMPARE(record.error, failed.error);
        QCOMPARE(record.pages, 4);
        QVERIFY(store->pages(id).empty());
        QVERIFY(store->chunks(id).empty());
        QVERIFY(store->match_chunks("secret", 10).empty());

        DocumentInput unreadable{.path = failed.path, .error = "cannot read file: Permission denied"};
        QCOMPARE(store->put_document(unreadable), id);
        record = *store->document(id);
        QCOMPARE(record.status, DocumentStatus::Failed);
        QCOMPARE(record.error, unreadable.error);
        QCOMPARE(record.pages, 0);
        QVERIFY(record.sha256.empty());
        QCOMPARE(store->documents().size(), std::size_t(1));

        QCOMPARE(store->put_document(make_document(failed.path, 2, 2, "opened")), id);
        record = *store->document(id);
        QCOMPARE(record.status, DocumentStatus::Indexed);
        QVERIFY(record.error.empty());
        QCOMPARE(store->chunks(id).size(), std::size_t(2));
        QCOMPARE(std::string(status_name(DocumentStatus::Failed)), std::string("failed"));
    }

    void documents_are_found_by_content_and_moved_whole() {
        auto store = LibraryStore::open(dir().toStdString());
        DocumentInput original = make_document("/docs/a.pdf", 2, 3, "alpha");
        original.sha256 = sha256_of_number(1);
        const std::int64_t id = store->put_document(original);
        DocumentInput other = make_document("/docs/b.pdf", 1, 1, "beta");
        other.sha256 = sha256_of_number(2);
        const std::int64_t other_id = store->put_document(other);
        DocumentInput failed{.path = "/docs/c.pdf", .sha256 = sha256_of_number(1), .error = "cannot read file"};
        const std::int64_t failed_id = store->put_document(failed);

        // Only indexed documents count: the failed row with that hash is no copy of it.
        const std::vector<DocumentRecord> same = store->find_by_content(sha256_of_number(1));
        QCOMPARE(same.size(), std::size_t(1));
        QCOMPARE(same[0].id, id);
        QVERIFY(store->find_by_content(sha256_of_number(3)).empty());

        // Onto the failed row's path: the failure makes way; pages, chunks and dates stay.
        const std::vector<StoredChunk> chunks_before = store->chunks(id);
        const std::int64_t updated_before = store->document(id)->updated_at;
        QVERIFY(store->move_document(id, failed.path));
        QVERIFY(!store->document(failed_id));
        QCOMPARE(store->find_by_path(failed.path)->id, id);
        QVERIFY(!store->find_by_path(original.path));
        QCOMPARE(store->chunks(id).size(), chunks_before.size());
        QCOMPARE(store->chunks(id)[0].id, chunks_before[0].id);
        QCOMPARE(store->document(id)->updated_at, updated_before);
        QCOMPARE(store->match_chunks("alpha", 10).size(), std::size_t(3));

        // Onto another indexed document: refused, both left as they were.
        QVERIFY_THROWS_EXCEPTION(StoreError, store->move_document(id, other.path));
        QCOMPARE(store->find_by_path(other.path)->id, other_id);
        QCOMPARE(store->find_by_path(failed.path)->id, id);
        QVERIFY(!store->move_document(id + 100, "/docs/nowhere.pdf"));
        QCOMPARE(store->integrity_check(), std::string("ok"));
    }

    void failure_of_a_newer_version_keeps_the_indexed_one() {
        auto store = LibraryStore::open(dir().toStdString());
        DocumentInput good = make_document("/docs/10k.pdf", 3, 3, "goodcopy");
        const std::int64_t id = store->put_document(good);

        DocumentInput broken = make_document("/docs/10k.pdf", 9, 0, "broken");
        broken.sha256 = std::string(64, 'f');
        broken.size = 999;
        broken.error = "damaged PDF: xref table not found";
        QCOMPARE(store->put_document(broken), id);

        DocumentRecord record = *store->document(id);
        QCOMPARE(record.status, DocumentStatus::Indexed);
        QCOMPARE(record.sha256, good.sha256);
        QCOMPARE(record.size, good.size);
        QCOMPARE(record.pages, 3);
        QCOMPARE(record.error, broken.error);
        QCOMPARE(record.failed_sha256, broken.sha256);
        QCOMPARE(store->pages(id).size(), std::size_t(3));
        QCOMPARE(store->chunks(id).size(), std::size_t(3));
        QCOMPARE(store->match_chunks("goodcopy", 10).size(), std::size_t(3));

        DocumentInput fixed = make_document("/docs/10k.pdf", 2, 1, "fixed");
        fixed.sha256 = std::string(64, 'e');
        QCOMPARE(store->put_document(fixed), id);
        record = *store->document(id);
        QCOMPARE(record.status, DocumentStatus::Indexed);
        QCOMPARE(record.sha256, fixed.sha256);
        QVERIFY(record.error.empty());
        QVERIFY(record.failed_sha256.empty());
        QVERIFY(store->match_chunks("goodcopy", 10).empty());
        QCOMPARE(store->integrity_check(), std::string("ok"));
    }

    void failed_write_rolls_back_completely() {
        auto store = LibraryStore::open(dir().toStdString());
        const DocumentInput good = make_document("/docs/q3.pdf", 3, 4, "original");
        const std::int64_t id = store->put_document(good);

        // The replacement fails at its last chunk, after its row, pages and
        // other chunks were written and the old version deleted.
        DocumentInput bad = make_document("/docs/q3.pdf", 5, 6, "intruder");
        bad.sha256 = std::string(64, '9');
        bad.chunks.back().ordinal = 0;
        try {
            store->put_document(bad);
            QFAIL("a duplicate chunk ordinal was accepted");
        } catch (const StoreError& e) {
            QVERIFY2(contains(e.what(), "/docs/q3.pdf") && contains(e.what(), "UNIQUE"), e.what());
        }
        const DocumentRecord record = *store->document(id);
        QCOMPARE(record.sha256, good.sha256);
        QCOMPARE(store->pages(id).size(), std::size_t(3));
        QCOMPARE(store->chunks(id).size(), std::size_t(4));
        QCOMPARE(store->match_chunks("original", 10).size(), std::size_t(4));
        QVERIFY(store->match_chunks("intruder", 10).empty());

        DocumentInput bad_new = make_document("/docs/new.pdf", 2, 2, "intruder");
        bad_new.pages[1].number = 0;
        QVERIFY_THROWS_EXCEPTION(StoreError, store->put_document(bad_new));
        QVERIFY(!store->find_by_path("/docs/new.pdf"));
        QVERIFY_THROWS_EXCEPTION(StoreError, store->put_document(make_document("", 1, 1, "nopath")));

        RawLibrary raw(dir());
        QCOMPARE(raw.number("SELECT count(*) FROM pages"), std::int64_t(3));
        QCOMPARE(raw.number("SELECT count(*) FROM chunks"), std::int64_t(4));
        QVERIFY(!raw.indexed_terms().count("intruder"));
        QCOMPARE(store->integrity_check(), std::string("ok"));
        // The store is still usable after a rolled-back write.
        QVERIFY(store->put_document(make_document("/docs/next.pdf", 1, 1, "after")) > id);
    }

    void batch_jobs_move_from_pending_to_done_or_failed() {
        auto store = LibraryStore::open(dir().toStdString());
        const std::string batch = "/out/notes";
        const std::vector<BatchJob> pending = {
            {.batch = batch, .path = "/in/a.pdf", .sha256 = std::string(64, 'a')},
            {.batch = batch, .path = "/in/b.pdf", .sha256 = std::string(64, 'b')},
            {.batch = "/out/other", .path = "/in/a.pdf", .sha256 = std::string(64, 'a')},
        };
        store->put_batch_jobs(pending);
        QVERIFY(!store->done_batch_job(batch, std::string(64, 'a')));

        BatchJob done = pending[0];
        done.state = BatchJobState::Done;
        done.doc_id = 7;
        BatchJob failed = pending[1];
        failed.state = BatchJobState::Failed;
        failed.error = "not a PDF";
        store->put_batch_jobs(std::vector{done, failed});

        const std::vector<BatchJob> jobs = store->batch_jobs(batch);
        QCOMPARE(jobs.size(), std::size_t(2));  // replaced in place, in first-written order
        QCOMPARE(jobs[0].path, std::string("/in/a.pdf"));
        QCOMPARE(jobs[0].state, BatchJobState::Done);
        QCOMPARE(jobs[0].doc_id, std::int64_t(7));
        QVERIFY(jobs[0].updated_at > 0);
        QCOMPARE(jobs[1].state, BatchJobState::Failed);
        QCOMPARE(jobs[1].error, std::string("not a PDF"));
        // The same content under another name is done in this batch, and only in this one.
        QCOMPARE(store->done_batch_job(batch, std::string(64, 'a'))->doc_id, std::int64_t(7));
        QVERIFY(!store->done_batch_job(batch, std::string(64, 'b')));
        QVERIFY(!store->done_batch_job("/out/other", std::string(64, 'a')));
        QCOMPARE(store->batch_jobs("/out/other").front().state, BatchJobState::Pending);

        QVERIFY_THROWS_EXCEPTION(StoreError, store->put_batch_jobs(std::vector{BatchJob{.batch = batch}}));
        QCOMPARE(store->batch_jobs(batch).size(), std::size_t(2));
    }

    void schema_3_library_gains_batch_jobs_and_keeps_documents() {
        std::int64_t id = 0;
        {
            auto store = LibraryStore::open(dir().toStdString());
            id = store->put_document(make_document("/docs/a.pdf", 2, 3, "alpha"));
        }
        {
            RawLibrary raw(dir());
            raw.connection.execute("DROP TABLE batch_jobs; PRAGMA user_version = 3", "making a schema 3 library");
        }
        auto store = LibraryStore::open(dir().toStdString());
        RawLibrary raw(dir());
        QCOMPARE(raw.number("PRAGMA user_version"), std::int64_t(5));
        QCOMPARE(store->chunks(id).size(), std::size_t(3));
        store->put_batch_jobs(std::vector{BatchJob{.batch = "/out", .path = "/docs/a.pdf", .sha256 = "aa"}});
        QCOMPARE(store->batch_jobs("/out").size(), std::size_t(1));
        QCOMPARE(raw.number("SELECT count(*) FROM sqlite_schema WHERE name = 'documents_by_content'"), std::int64_t(1));
        QCOMPARE(store->find_by_content(std::string(64, 'a')).size(), std::size_t(1));
        QCOMPARE(store->integrity_check(), std::string("ok"));
    }

    void newer_schema_is_refused() {
        LibraryStore::open(dir().toStdString())->put_document(make_document("/docs/a.pdf", 1, 1, "alpha"));
        RawLibrary(dir()).connection.execute("PRAGMA user_version = 7", "test");
        const QByteArray before = file_bytes(dir() + "/library.sqlite");
        try {
            LibraryStore::open(dir().toStdString());
            QFAIL("a library of a newer schema was opened");
        } catch (const StoreError& e) {
            QVERIFY2(contains(e.what(), "library was written by a newer Folio (schema 7)"), e.what());
        }
        QCOMPARE(file_bytes(dir() + "/library.sqlite"), before);
    }

    void non_sqlite_file_is_refused_untouched() {
        const QString path = dir() + "/library.sqlite";
        QByteArray content = "%PDF-1.7\n% this is not a database, whatever its name says\n";
        content += QByteArray(4096, 'x');
        {
            QFile file(path);
            QVERIFY(file.open(QIODevice::WriteOnly));
            file.write(content);
        }
        try {
            LibraryStore::open(dir().toStdString());
            QFAIL("a non-SQLite file was opened as a library");
        } catch (const StoreError& e) {
            QVERIFY2(contains(e.what(), path.toStdString()) && contains(e.what(), "not a database"), e.what());
        }
        QCOMPARE(file_bytes(path), content);
        QVERIFY(!QFile::exists(path + "-wal"));
        QVERIFY(!QFile::exists(path + "-journal"));
    }

    void other_sqlite_database_is_refused_untouched() {
        {
            sqlite::Connection other((dir() + "/library.sqlite").toStdString(),
                                     SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, std::chrono::seconds(1));
            other.execute("CREATE TABLE notes (body TEXT); INSERT INTO notes VALUES ('mine')", "test");
        }
        const QByteArray before = file_bytes(dir() + "/library.sqlite");
        try {
            LibraryStore::open(dir().toStdString());
            QFAIL("another application's database was opened as a library");
        } catch (const StoreError& e) {
            QVERIFY2(contains(e.what(), "not a Folio library"), e.what());
        }
        QCOMPARE(file_bytes(dir() + "/library.sqlite"), before);
    }

    void read_only_library_is_refused() {
        if (geteuid() == 0) QSKIP("file permissions do not bind root");
        LibraryStore::open(dir().toStdString());
        const QString path = dir() + "/library.sqlite";
        QVERIFY(QFile::setPermissions(path, QFileDevice::ReadOwner));
        try {
            LibraryStore::open(dir().toStdString());
            QFAIL("a read-only library was opened for writing");
        } catch (const StoreError& e) {
            QVERIFY2(contains(e.what(), "read-only"), e.what());
        }
    }

    void two_stores_share_one_library() {
        auto first = LibraryStore::open(dir().toStdString());
        auto second = LibraryStore::open(dir().toStdString());
        const std::int64_t id = first->put_document(make_document("/docs/shared.pdf", 2, 2, "shared"));
        QCOMPARE(second->find_by_path("/docs/shared.pdf")->id, id);
        QCOMPARE(second->match_chunks("shared", 10).size(), std::size_t(2));

        DocumentInput update = make_document("/docs/shared.pdf", 1, 1, "updated");
        update.sha256 = std::string(64, '2');
        QCOMPARE(second->put_document(update), id);
        QCOMPARE(first->document(id)->sha256, update.sha256);
        QCOMPARE(first->chunks(id).size(), std::size_t(1));

        QVERIFY(first->remove_document(id));
        QVERIFY(second->documents().empty());
        QCOMPARE(second->integrity_check(), std::string("ok"));
    }

    void writer_waits_for_another_writer_then_gives_up() {
        auto store = LibraryStore::open(dir().toStdString());
        RawLibrary raw(dir());
        raw.connection.execute("BEGIN IMMEDIATE", "test lock");
        std::thread releaser([&] {
            std::this_thread::sleep_for(std::chrono::milliseconds(300));
            raw.connection.execute("COMMIT", "test unlock");
        });
        QElapsedTimer waited;
        waited.start();
        store->put_document(make_document("/docs/waited.pdf", 1, 1, "patient"));
        releaser.join();
        QVERIFY2(waited.elapsed() >= 250, qPrintable(QString::number(waited.elapsed())));
        QVERIFY(store->find_by_path("/docs/waited.pdf"));

        auto impatient = LibraryStore::open(dir().toStdString(), std::chrono::milliseconds(100));
        raw.connection.execute("BEGIN IMMEDIATE", "test lock");
        try {
            impatient->put_document(make_document("/docs/refused.pdf", 1, 1, "refused"));
            QFAIL("a write went through while another writer held the library");
        } catch (const StoreError& e) {
            QVERIFY2(contains(e.what(), "locked") && contains(e.what(), "100 ms"), e.what());
        }
        raw.connection.execute("COMMIT", "test unlock");
        QVERIFY(!store->find_by_path("/docs/refused.pdf"));
        QVERIFY(impatient->put_document(make_document("/docs/later.pdf", 1, 1, "later")) > 0);
    }

    // A 10-K sized filing: 232 dense pages and 1000 chunks of ~400 tokens.
    void puts_a_large_filing_in_one_fast_transaction() {
        auto store = LibraryStore::open(dir().toStdString());
        const DocumentInput filing = make_document("/docs/10-K.pdf", 232, 1000, "filing", 900, 300);
        QElapsedTimer timer;
        timer.start();
        const std::int64_t id = store->put_document(filing);
        const qint64 put_ms = timer.elapsed();

        DocumentInput amended = filing;
        amended.sha256 = std::string(64, '1');
        timer.restart();
        QCOMPARE(store->put_document(amended), id);
        const qint64 replace_ms = timer.elapsed();

        timer.restart();
        const std::vector<StoredPage> pages = store->pages(id);
        const std::vector<StoredChunk> chunks = store->chunks(id);
        const qint64 read_ms = timer.elapsed();
        qInfo("232 pages (208,800 words), 1000 chunks: put %lld ms, replace %lld ms, read back %lld ms",
              static_cast<long long>(put_ms), static_cast<long long>(replace_ms), static_cast<long long>(read_ms));
        QCOMPARE(pages.size(), std::size_t(232));
        QCOMPARE(chunks.size(), std::size_t(1000));
        QCOMPARE(store->match_chunks("filing", 2000).size(), std::size_t(1000));
        // One transaction with one fsync takes well under a second here; a
        // write per row (a commit and fsync each) takes many seconds. The
        // bound leaves room for a loaded machine.
        QVERIFY2(put_ms < 3000 && replace_ms < 3000, "bulk put is too slow");
    }

private:
    QString dir() const { return directory_->path(); }

    std::optional<QTemporaryDir> directory_;  // a fresh one per test
};

QTEST_GUILESS_MAIN(LibraryStoreTest)
#include "tst_library_store.moc"
