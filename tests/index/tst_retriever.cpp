#include <QTemporaryDir>
#include <QTest>

#include <algorithm>
#include <cmath>
#include <optional>
#include <string>

#include "document_builders.h"
#include "index/fts_tokenizer.h"
#include "index/library_store.h"
#include "index/retriever.h"
#include "index/sqlite_db.h"

using namespace folio;
using namespace folio::index;

namespace {

struct TextChunk {
    std::string heading;
    std::string text;
    int page = 1;
};

// One document whose chunks carry the given headings and text, a page each.
DocumentInput document_of(const std::string& path, const std::vector<TextChunk>& chunks,
                          ingest::FileType type = ingest::FileType::Pdf) {
    DocumentInput input;
    input.path = path;
    input.sha256 = std::string(64, 'b');
    input.size = 100;
    input.type = type;
    int pages = 0;
    for (const TextChunk& c : chunks) pages = std::max(pages, c.page);
    for (int number = 1; number <= pages; ++number) input.pages.push_back(testing::make_page(number, 12, "page"));
    for (std::size_t i = 0; i < chunks.size(); ++i) {
        ingest::Chunk chunk;
        chunk.ordinal = static_cast<int>(i);
        chunk.heading_path = chunks[i].heading;
        chunk.text = chunks[i].text;
        chunk.page_start = chunk.page_end = chunks[i].page;
        chunk.boxes.push_back({chunks[i].page, {72, 90, 530, 100}});
        chunk.token_count = 10;
        input.chunks.push_back(std::move(chunk));
    }
    return input;
}

std::vector<std::string> paths_of(const std::vector<SearchHit>& hits) {
    std::vector<std::string> paths;
    for (const SearchHit& hit : hits) paths.push_back(hit.path);
    return paths;
}

// The documents hit, each once, in order of their best hit.
std::vector<std::string> documents_of(const std::vector<SearchHit>& hits) {
    std::vector<std::string> paths;
    for (const SearchHit& hit : hits)
        if (std::find(paths.begin(), paths.end(), hit.path) == paths.end()) paths.push_back(hit.path);
    return paths;
}

// Rewrites a library's keyword index the way schema 1 declared it (plain
// unicode61), so that opening it exercises the migration.
void downgrade_to_schema_1(const QString& directory) {
    sqlite::Connection raw((directory + "/library.sqlite").toStdString(), SQLITE_OPEN_READWRITE,
                           std::chrono::seconds(10));
    raw.execute("BEGIN; DROP TABLE chunks_fts;"
                " CREATE VIRTUAL TABLE chunks_fts USING fts5 (heading_path, text, content = 'chunks',"
                " content_rowid = 'id', tokenize = 'unicode61 remove_diacritics 2');"
                " INSERT INTO chunks_fts (chunks_fts) VALUES ('rebuild'); PRAGMA user_version = 1; COMMIT",
                "downgrading");
}

std::int64_t raw_count(const QString& directory, const char* sql) {
    sqlite::Connection raw((directory + "/library.sqlite").toStdString(), SQLITE_OPEN_READWRITE,
                           std::chrono::seconds(10));
    sqlite::Statement statement(raw, sql, "test query");
    return statement.step() ? statement.int_at(0) : -1;
}

const std::vector<TextChunk> kChineseFinance = {
    {"管理层讨论与分析", "公司营业收入同比增长百分之十二，净利润下降，每股收益为1.25元。"},
    {"风险因素", "汇率波动可能影响海外销售收入。"},
};
const std::vector<TextChunk> kChineseClinical = {
    {"现病史", "患者有高血压病史十年，血压控制不佳，伴有头痛。"},
    {"诊断", "2型糖尿病，高血压3级。"},
};

}  // namespace

class RetrieverTest : public QObject {
    Q_OBJECT

    std::optional<QTemporaryDir> directory_;
    QString dir() const { return directory_->path(); }

private slots:
    void init() {
        directory_.emplace();
        QVERIFY(directory_->isValid());
    }
    void cleanup() { directory_.reset(); }

    void user_syntax_is_plain_text() {
        QCOMPARE(fts5_expression_for("long-term debt"), std::string("\"long-term\" OR \"debt\""));
        QCOMPARE(fts5_expression_for("say \"EPS\" now"), std::string("\"say\" OR \"EPS\" OR \"now\""));
        QCOMPARE(fts5_expression_for("O\"Brien's 9/30/17"), std::string("\"O\" OR \"Brien's\" OR \"9/30/17\""));
        QCOMPARE(fts5_expression_for("(margin*) text:revenue"), std::string("\"margin\" OR \"text\" OR \"revenue\""));
        // Function words go unless nothing else is left.
        QCOMPARE(fts5_expression_for("what is the margin"), std::string("\"margin\""));
        QCOMPARE(fts5_expression_for("Margin margin MARGIN"), std::string("\"Margin\""));
        QCOMPARE(fts5_expression_for("AND OR NOT"), std::string("\"AND\" OR \"OR\" OR \"NOT\""));
        QCOMPARE(fts5_expression_for("收入 2021"), std::string("\"收入\" OR \"2021\""));
        QCOMPARE(fts5_expression_for("营业收入"), std::string("\"营业\" OR \"业收\" OR \"收入\""));
    }

    void hostile_queries_search_or_fail_clearly() {
        auto store = LibraryStore::open(dir().toStdString());
        store->put_document(document_of("/a.pdf", {{"Notes", "The AND gate: NOT OR a (fiscal) long-term \"quote\" *star* 10-K NEAR"}}));
        Retriever retriever(*store);
        const char* hostile[] = {"AND", "NOT", "OR", "\"quote", "(fiscal", "fiscal)", "star*", "*", "text:gate",
                                 "heading_path:notes", "NEAR(gate quote)", "^gate", "long-term", "10-K", "a + gate",
                                 "gate\"", "'", "-gate", "{heading_path}: gate", "\\ gate"};
        for (const char* query : hostile) {
            try {
                const std::vector<SearchHit> hits = retriever.search(query);
                // Every hostile text with a word in it finds the one chunk.
                QVERIFY2(hits.size() == 1, query);
            } catch (const SearchError& e) {
                // Only the texts with no word at all may be refused.
                QVERIFY2(std::string(query) == "*" || std::string(query) == "'", query);
                QVERIFY(std::string(e.what()).find("no words") != std::string::npos);
            }
        }
        QVERIFY_THROWS_EXCEPTION(SearchError, retriever.search(""));
        QVERIFY_THROWS_EXCEPTION(SearchError, retriever.search("   \n\t "));
        QVERIFY_THROWS_EXCEPTION(SearchError, retriever.search("?!* -- ()"));
        // Syntax only when asked for; bad syntax is a SearchError, not a crash.
        QCOMPARE(retriever.search("gate NOT quote", {.fts5_syntax = true}).size(), std::size_t(0));
        QCOMPARE(retriever.search("gate NOT quote").size(), std::size_t(1));
        QVERIFY_THROWS_EXCEPTION(SearchError, retriever.search("\"unbalanced", {.fts5_syntax = true}));
        QVERIFY_THROWS_EXCEPTION(SearchError, retriever.search("   ", {.fts5_syntax = true}));
    }

    void long_query_is_capped_not_refused() {
        auto store = LibraryStore::open(dir().toStdString());
        store->put_document(document_of("/a.pdf", {{"Liquidity", "cash flow from operations"}}));
        std::string query;
        for (int i = 0; query.size() < 10000; ++i) query += "word" + std::to_string(i) + " ";
        QVERIFY(query.size() >= 10000);
        const std::string expression = fts5_expression_for(query);
        QCOMPARE(static_cast<int>(std::count(expression.begin(), expression.end(), '"')), 2 * kMaxQueryTerms);
        Retriever retriever(*store);
        QVERIFY(retriever.search(query).empty());
        // The words that count come first.
        QCOMPARE(retriever.search("cash " + query).size(), std::size_t(1));
        QCOMPARE(retriever.search(std::string(10000, 'x')).size(), std::size_t(0));
    }

    void heading_outweighs_body() {
        auto store = LibraryStore::open(dir().toStdString());
        // The same word once in a heading, and twice in a body: at equal
        // weights the body wins, with the heading weighted the heading does.
        const std::string filler = "the company reported results for the period under review in its annual filing";
        // Documents without the word give it a real inverse document frequency.
        for (int i = 0; i < 6; ++i) store->put_document(document_of("/other" + std::to_string(i) + ".pdf", {{"Overview", filler}}));
        store->put_document(document_of("/heading.pdf", {{"Liquidity", filler}}));
        store->put_document(document_of("/body.pdf", {{"Overview", filler + " liquidity and liquidity"}}));
        const std::vector<ScoredChunk> equal = store->search_chunks({.fts5_expression = "liquidity", .limit = 2});
        QCOMPARE(equal.size(), std::size_t(2));
        QCOMPARE(equal[0].path, std::string("/body.pdf"));
        const std::vector<SearchHit> hits = Retriever(*store).search("liquidity");
        QCOMPARE(paths_of(hits), (std::vector<std::string>{"/heading.pdf", "/body.pdf"}));
        QVERIFY(hits[0].score > hits[1].score && hits[1].score > 0);
    }

    // folio_query_idf(): bm25()'s IDF summed over the query's phrases, the
    // same on every hit, with the filters left out of it as bm25() leaves them.
    void keyword_hits_carry_the_querys_idf_sum() {
        auto store = LibraryStore::open(dir().toStdString());
        // 10 rows: "audit" in 1, "revenue" in 4, "the" in all 10 (IDF not
        // positive: 1e-6, as bm25() counts it).
        for (int i = 0; i < 10; ++i) {
            std::string text = "the quarter";
            if (i < 4) text += " revenue";
            if (i == 0) text += " audit";
            store->put_document(document_of("/r" + std::to_string(i) + ".pdf", {{"Notes", text}}));
        }
        const auto idf = [](double rows, double hits) { return std::log((rows - hits + 0.5) / (hits + 0.5)); };
        const double expected = idf(10, 1) + idf(10, 4) + 1e-6;
        const std::vector<ScoredChunk> matches =
            store->search_chunks({.fts5_expression = "audit OR revenue OR the", .limit = 20, .query_idf = true});
        QCOMPARE(matches.size(), std::size_t(10));
        for (const ScoredChunk& match : matches) QVERIFY(std::abs(match.query_idf - expected) < 1e-9);
        // Not asked for, it is not counted: the same hits, the same scores.
        const std::vector<ScoredChunk> plain =
            store->search_chunks({.fts5_expression = "audit OR revenue OR the", .limit = 20});
        QCOMPARE(plain.size(), matches.size());
        for (std::size_t i = 0; i < plain.size(); ++i) {
            QCOMPARE(plain[i].query_idf, 0.0);
            QCOMPARE(plain[i].stored.id, matches[i].stored.id);
            QCOMPARE(plain[i].bm25, matches[i].bm25);
        }
        // bm25() over it: the row matching every phrase scores near 1, the
        // rows matching only "the" near 0.
        QVERIFY(-matches.front().bm25 / expected > 0.8);
        QVERIFY(-matches.back().bm25 / expected < 1e-5);

        const KeywordHits keyword = Retriever(*store).search_keywords("audit revenue", {.k = 2});
        QCOMPARE(keyword.hits.size(), std::size_t(2));
        QVERIFY(std::abs(keyword.query_idf - (idf(10, 1) + idf(10, 4))) < 1e-9);
        // A filter narrows the hits, not the IDF.
        SearchOptions one_document{.k = 5};
        for (const DocumentRecord& doc : store->documents())
            if (doc.path == "/r1.pdf") one_document.doc_ids = {doc.id};
        const KeywordHits filtered = Retriever(*store).search_keywords("audit revenue", one_document);
        QCOMPARE(filtered.hits.size(), std::size_t(1));
        QVERIFY(std::abs(filtered.query_idf - keyword.query_idf) < 1e-12);
        QCOMPARE(Retriever(*store).search_keywords("nowhere", {.k = 5}).query_idf, 0.0);
    }

    void hits_carry_location_text_and_boxes() {
        auto store = LibraryStore::open(dir().toStdString());
        const std::int64_t doc = store->put_document(
            document_of("/report.pdf", {{"Item 7", "segment revenue grew", 1}, {"Item 8", "segment margin fell", 3}}));
        const std::vector<SearchHit> hits = Retriever(*store).search("segment margin", {.k = 5});
        QCOMPARE(hits.size(), std::size_t(2));
        QCOMPARE(hits[0].text, std::string("segment margin fell"));
        QCOMPARE(hits[0].heading_path, std::string("Item 8"));
        QCOMPARE(hits[0].doc_id, doc);
        QCOMPARE(hits[0].path, std::string("/report.pdf"));
        QCOMPARE(hits[0].page, 3);
        QCOMPARE(hits[0].page_end, 3);
        QCOMPARE(hits[0].boxes.size(), std::size_t(1));
        QCOMPARE(hits[0].boxes[0].page, 3);
        QCOMPARE(hits[0].chunk_id, store->chunks(doc)[1].id);
        QCOMPARE(Retriever(*store).search("segment", {.k = 1}).size(), std::size_t(1));
    }

    void chinese_words_match_inside_runs() {
        auto store = LibraryStore::open(dir().toStdString());
        store->put_document(document_of("/finance.pdf", kChineseFinance));
        store->put_document(document_of("/clinic.txt", kChineseClinical, ingest::FileType::Text));
        Retriever retriever(*store);
        auto found = [&](const char* query) { return documents_of(retriever.search(query)); };
        QCOMPARE(found("营业收入"), std::vector<std::string>{"/finance.pdf"});
        QCOMPARE(found("每股收益"), std::vector<std::string>{"/finance.pdf"});
        QCOMPARE(found("净利润"), std::vector<std::string>{"/finance.pdf"});
        QCOMPARE(found("高血压"), std::vector<std::string>{"/clinic.txt"});
        QCOMPARE(found("糖尿病"), std::vector<std::string>{"/clinic.txt"});
        QCOMPARE(found("肺炎"), std::vector<std::string>{});
        // A question in Chinese: its bigrams are terms, the best page first.
        QCOMPARE(found("这位患者的血压控制得怎么样？").front(), std::string("/clinic.txt"));
        // Quoted (syntax on): the phrase of bigrams, i.e. the exact word.
        QCOMPARE(retriever.search("\"血压控制\"", {.fts5_syntax = true}).size(), std::size_t(1));
        QCOMPARE(retriever.search("\"收入同比\"", {.fts5_syntax = true}).size(), std::size_t(1));
        QCOMPARE(retriever.search("\"收入下降\"", {.fts5_syntax = true}).size(), std::size_t(0));
        // Mixed scripts in one run of text.
        store->put_document(document_of("/mixed.pdf", {{"摘要", "Apple公司2021财年iPhone销售额增长39%"}}));
        QCOMPARE(found("财年iPhone"), std::vector<std::string>{"/mixed.pdf"});
        QCOMPARE(found("财年"), std::vector<std::string>{"/mixed.pdf"});
        QCOMPARE(store->integrity_check(), std::string("ok"));
    }

    void english_words_match_their_stems() {
        auto store = LibraryStore::open(dir().toStdString());
        store->put_document(document_of("/staff.pdf", {{"Human Capital", "The Company employed 154,000 people"}}));
        store->put_document(document_of("/stores.pdf", {{"Franchising", "95% of restaurants are franchised"}}));
        Retriever retriever(*store);
        QCOMPARE(documents_of(retriever.search("employing")), std::vector<std::string>{"/staff.pdf"});
        QCOMPARE(documents_of(retriever.search("franchise")), std::vector<std::string>{"/stores.pdf"});
        QCOMPARE(documents_of(retriever.search("154,000")), std::vector<std::string>{"/staff.pdf"});
    }

    void filters_apply_before_the_limit() {
        auto store = LibraryStore::open(dir().toStdString());
        const std::int64_t a = store->put_document(document_of("/a.pdf", {{"A", "goodwill impairment goodwill"}}));
        const std::int64_t b = store->put_document(document_of("/b.txt", {{"B", "goodwill"}}, ingest::FileType::Text));
        Retriever retriever(*store);
        QCOMPARE(retriever.search("goodwill", {.k = 1}).front().doc_id, a);
        QCOMPARE(retriever.search("goodwill", {.k = 1, .doc_ids = {b}}).front().doc_id, b);
        QCOMPARE(retriever.search("goodwill", {.k = 1, .type = ingest::FileType::Text}).front().doc_id, b);
        QVERIFY(retriever.search("goodwill", {.type = ingest::FileType::Png}).empty());
        QVERIFY(retriever.search("goodwill", {.doc_ids = {b + 100}}).empty());
        const std::int64_t stored_at = store->document(a)->updated_at;
        QCOMPARE(retriever.search("goodwill", {.updated_from = stored_at - 5, .updated_until = stored_at + 5}).size(),
                 std::size_t(2));
        QVERIFY(retriever.search("goodwill", {.updated_from = stored_at + 3600}).empty());
        QVERIFY(retriever.search("goodwill", {.updated_until = stored_at - 3600}).empty());
    }

    void a_set_of_documents_is_filtered_before_the_limit() {
        auto store = LibraryStore::open(dir().toStdString());
        // a holds the best matches; b and c together hold more than k weaker ones.
        const std::int64_t a = store->put_document(
            document_of("/a.pdf", {{"Goodwill", "goodwill goodwill"}, {"Goodwill", "goodwill goodwill"},
                                   {"Goodwill", "goodwill goodwill"}}));
        const std::int64_t b = store->put_document(document_of(
            "/b.pdf", {{"Notes", "goodwill and other intangible assets of the group"},
                       {"Notes", "goodwill was tested for impairment at year end"}}));
        const std::int64_t c = store->put_document(document_of(
            "/c.pdf", {{"Review", "no goodwill arose on the acquisition of the subsidiary"},
                       {"Review", "the goodwill balance is unchanged from last year"}}));
        Retriever retriever(*store);
        auto docs = [&](const SearchOptions& options) {
            std::vector<std::int64_t> ids;
            for (const SearchHit& hit : retriever.search("goodwill", options)) ids.push_back(hit.doc_id);
            return ids;
        };
        QCOMPARE(docs({.k = 3}), (std::vector<std::int64_t>{a, a, a}));
        const std::vector<std::int64_t> scoped = docs({.k = 3, .doc_ids = {b, c}});
        QCOMPARE(scoped.size(), std::size_t(3));
        for (const std::int64_t doc : scoped) QVERIFY(doc == b || doc == c);
        QCOMPARE(docs({.k = 10, .doc_ids = {c, b}}).size(), std::size_t(4));
        QCOMPARE(docs({.k = 10, .doc_ids = {c}}), (std::vector<std::int64_t>{c, c}));
        QCOMPARE(docs({.k = 10}).size(), std::size_t(7));  // no ids: every document
        // Hundreds of ids bind as one parameter; ids of no document match nothing.
        std::vector<std::int64_t> many;
        for (std::int64_t id = 500; id < 900; ++id) many.push_back(id);
        QVERIFY(docs({.doc_ids = many}).empty());
        many.push_back(b);
        QCOMPARE(docs({.k = 10, .doc_ids = many}), (std::vector<std::int64_t>{b, b}));
        // The filter combines with the others.
        QVERIFY(docs({.doc_ids = {b, c}, .type = ingest::FileType::Text}).empty());
    }

    void vector_modes_say_there_are_no_vectors() {
        auto store = LibraryStore::open(dir().toStdString());
        Retriever retriever(*store);
        for (SearchMode mode : {SearchMode::Vector, SearchMode::Hybrid}) {
            try {
                retriever.search("revenue", {.mode = mode});
                QFAIL("expected a SearchError");
            } catch (const SearchError& e) {
                QVERIFY(std::string(e.what()).find("no vectors") != std::string::npos);
            }
        }
        QCOMPARE(search_mode_from_name("hybrid"), std::optional<SearchMode>(SearchMode::Hybrid));
        QVERIFY(!search_mode_from_name("dense"));
    }

    void schema_1_library_is_reindexed_for_chinese() {
        std::vector<std::int64_t> chunk_ids;
        {
            auto store = LibraryStore::open(dir().toStdString());
            store->put_document(document_of("/finance.pdf", kChineseFinance));
            store->put_document(document_of("/english.pdf", {{"Item 7", "net revenue increased"}}));
            for (const auto& doc : store->documents())
                for (const auto& chunk : store->chunks(doc.id)) chunk_ids.push_back(chunk.id);
        }
        downgrade_to_schema_1(dir());
        // What schema 1 did: the whole run is one token, a word inside it is not found.
        QCOMPARE(raw_count(dir(), "SELECT count(*) FROM chunks_fts WHERE chunks_fts MATCH '\"收入\"'"), std::int64_t(0));
        QCOMPARE(raw_count(dir(), "PRAGMA user_version"), std::int64_t(1));

        auto store = LibraryStore::open(dir().toStdString());
        QCOMPARE(raw_count(dir(), "PRAGMA user_version"), std::int64_t(5));
        std::vector<std::int64_t> after;
        for (const auto& doc : store->documents())
            for (const auto& chunk : store->chunks(doc.id)) after.push_back(chunk.id);
        QCOMPARE(after, chunk_ids);
        QCOMPARE(store->integrity_check(), std::string("ok"));
        Retriever retriever(*store);
        QCOMPARE(documents_of(retriever.search("收入")), std::vector<std::string>{"/finance.pdf"});
        QCOMPARE(paths_of(retriever.search("revenue")), std::vector<std::string>{"/english.pdf"});
        // Writes after the migration are indexed the new way.
        store->put_document(document_of("/clinic.txt", kChineseClinical, ingest::FileType::Text));
        QCOMPARE(documents_of(retriever.search("血压")), std::vector<std::string>{"/clinic.txt"});
    }

    void tokenizer_reports_offsets_into_the_whole_text() {
        sqlite::Connection db(":memory:", SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, std::chrono::seconds(1));
        db.execute("CREATE VIRTUAL TABLE t USING fts5 (x, tokenize = 'porter folio_han_bigram remove_diacritics 2');"
                   "INSERT INTO t VALUES ('Café 营业收入 up');",
                   "test table");
        sqlite::Statement highlighted(db, "SELECT highlight(t, 0, '[', ']') FROM t WHERE t MATCH ?1", "highlight");
        auto highlight = [&](const char* query) {
            sqlite::StatementScope scope(highlighted);
            highlighted.bind_text(1, query);
            return highlighted.step() ? highlighted.text_at(0) : std::string();
        };
        QCOMPARE(highlight("\"收入\""), std::string("Café 营业[收入] up"));
        QCOMPARE(highlight("cafe"), std::string("[Café] 营业收入 up"));
        QCOMPARE(highlight("up"), std::string("Café 营业收入 [up]"));
        char32_t code_point = 0;
        QCOMPARE(decode_utf8("\xe6\x94\xb6", 0, code_point), std::size_t(3));
        QVERIFY(is_han(code_point));
        QCOMPARE(decode_utf8("\xe6\x94", 0, code_point), std::size_t(1));
        QCOMPARE(code_point, char32_t(0xFFFD));
    }
};

QTEST_GUILESS_MAIN(RetrieverTest)
#include "tst_retriever.moc"
