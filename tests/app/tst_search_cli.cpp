// End-to-end tests of `folio search`, `folio index` and `folio bench
// retrieval` on a small real subset: eleven pages of Apple's 2021 10-K and
// five ACI-Bench notes (tests/data/retrieval/README.md), embedded by the
// installed embedding model (all-MiniLM-L6-v2, installer/fetch-models.sh).
// CI installs the model; without it this suite fails rather than skips.

#include <cmath>
#include <QJsonArray>
#include <QJsonDocument>
#include <QJsonObject>
#include <QMap>
#include <QProcess>
#include <QSet>
#include <QTemporaryDir>
#include <QTest>

#include <algorithm>
#include <filesystem>

#include "engine/model_paths.h"
#include "engine/reranker.h"
#include "index/reranking.h"
#include "engine/thread_pool.h"
#include "tests/support/folio_process.h"

namespace {

using Run = folio::test::FolioRun;

const QString kSubset = QStringLiteral(FOLIO_TEST_DATA "/retrieval/subset");
const QString kSubsetQueries = QStringLiteral(FOLIO_TEST_DATA "/retrieval/subset.jsonl");
// A random cross-encoder: its scores are arbitrary, but they are the engine's.
const QString kTinyReranker = QStringLiteral(FOLIO_TEST_DATA "/bert_cross_tiny/model.gguf");

}  // namespace

class SearchCliTest : public QObject {
    Q_OBJECT

    QTemporaryDir work_;
    QString library_;           // the subset, with vectors
    QString keywords_library_;  // the subset, ingested without an embedding model

    Run folio(const QStringList& arguments, const QString& library = {}, const QString& embedding_model = {},
              const QMap<QString, QString>& variables = {}) {
        QProcessEnvironment environment = QProcessEnvironment::systemEnvironment();
        if (!embedding_model.isEmpty()) environment.insert("FOLIO_EMBEDDING_MODEL", embedding_model);
        for (auto it = variables.begin(); it != variables.end(); ++it) environment.insert(it.key(), it.value());
        return folio::test::run_folio(QStringList{"--library", library.isEmpty() ? library_ : library} + arguments,
                                      120000, environment);
    }

    qint64 doc_id_of(const QString& file_name) {
        for (const QJsonObject& doc : folio({"docs", "--json"}).lines)
            if (doc["path"].toString().endsWith("/" + file_name)) return doc["doc_id"].toInteger();
        return 0;
    }

    static void verify_usage_error(const Run& run, const QString& says) {
        QCOMPARE(run.exit_code, 2);
        QVERIFY(run.out.isEmpty());
        const QStringList lines = run.err.split('\n', Qt::SkipEmptyParts);
        QCOMPARE(lines.size(), 1);
        QVERIFY2(lines[0].startsWith("folio: error: ") && lines[0].contains(says), qPrintable(run.err));
    }

private slots:
    void initTestCase() {
        QVERIFY(work_.isValid());
        library_ = work_.path() + "/library";
        QVERIFY2(folio::engine::find_default_model(folio::engine::ModelRole::Embedding),
                 "no embedding model installed: run installer/fetch-models.sh (CI must have it)");
        const Run ingest = folio({"ingest", kSubset, "--ocr", "never", "--json"});
        QVERIFY2(ingest.exit_code == 0, qPrintable(ingest.err));
        const auto embedding = std::find_if(ingest.lines.begin(), ingest.lines.end(),
                                            [](const QJsonObject& line) { return line["event"] == "embedding"; });
        QVERIFY(embedding != ingest.lines.end());
        QCOMPARE(embedding->value("embedded").toInt(), 56);
        QCOMPARE(embedding->value("remaining").toInt(), 0);
        QCOMPARE(embedding->value("error").toString(), QString());

        // Without a model, ingest stores the text and says the vectors are missing.
        keywords_library_ = work_.path() + "/keywords";
        const Run keywords = folio({"ingest", kSubset, "--ocr", "never"}, keywords_library_, "/nonexistent/model.gguf");
        QVERIFY2(keywords.exit_code == 0, qPrintable(keywords.err));
        QVERIFY2(keywords.out.contains("vectors: 0 chunks embedded, 56 not yet"), qPrintable(keywords.out));
    }

    void defaultModeIsHybridOnceVectorsExist() {
        const Run hybrid = folio({"search", "How many people did Apple employ?", "--k", "5", "--json"});
        QCOMPARE(hybrid.exit_code, 0);
        QCOMPARE(hybrid.lines, folio({"search", "How many people did Apple employ?", "--k", "5", "--mode", "hybrid",
                                      "--json"}).lines);
        QVERIFY(hybrid.lines != folio({"search", "How many people did Apple employ?", "--k", "5", "--mode", "bm25",
                                       "--json"}).lines);
        // The keyword-only library keeps bm25 as its default.
        QCOMPARE(folio({"search", "employees", "--json"}, keywords_library_).lines,
                 folio({"search", "employees", "--mode", "bm25", "--json"}, keywords_library_).lines);
    }

    // Vectors another model made (or this one, embedded another way) are
    // stale: the default search is bm25 until `folio index` re-embeds them,
    // and asking for vectors says what to run.
    void staleVectorsLeaveTheDefaultAtBm25() {
        const QString other = work_.path() + "/other-embedder.gguf";
        QVERIFY(QFile::copy(QString::fromStdString(*folio::engine::find_default_model(folio::engine::ModelRole::Embedding)),
                            other));
        const QString question = "How many people did Apple employ?";
        const Run stale = folio({"search", question, "--k", "5", "--json"}, library_, other);
        QCOMPARE(stale.exit_code, 0);
        QCOMPARE(stale.lines, folio({"search", question, "--k", "5", "--mode", "bm25", "--json"}).lines);
        const Run hybrid = folio({"search", question, "--mode", "hybrid"}, library_, other);
        QCOMPARE(hybrid.exit_code, 2);
        QVERIFY2(hybrid.err.contains("folio index"), qPrintable(hybrid.err));

        // The next ingest re-embeds them, even when no file changed (on a
        // copy: the other tests need the library as it is).
        const QString copy = work_.path() + "/stale-copy";
        std::filesystem::copy(library_.toStdString(), copy.toStdString(), std::filesystem::copy_options::recursive);
        const Run ingest = folio({"ingest", kSubset, "--ocr", "never"}, copy, other);
        QCOMPARE(ingest.exit_code, 0);
        QVERIFY2(ingest.out.contains("re-embedding every chunk"), qPrintable(ingest.out));
        QCOMPARE(folio({"search", question, "--k", "5", "--json"}, copy, other).lines,
                 folio({"search", question, "--k", "5", "--mode", "hybrid", "--json"}, copy, other).lines);
    }

    void vectorHitsCarryTheContractFieldsAndFilters() {
        const qint64 note = doc_id_of("D2N056.txt");
        for (const char* mode : {"vector", "hybrid"}) {
            for (const char* fusion : {"rrf", "weighted"}) {
                const Run run = folio({"search", "lung disease from moldy hay", "--k", "3", "--mode", mode, "--fusion",
                                       fusion, "--json"});
                QVERIFY2(run.exit_code == 0, qPrintable(run.err));
                QCOMPARE(run.lines.size(), 3);
                QVERIFY2(run.lines[0]["path"].toString().endsWith("D2N056.txt"), mode);
                for (const QJsonObject& hit : run.lines) {
                    for (const char* field : {"chunk_id", "doc_id", "path", "page", "page_end", "score", "text", "boxes"})
                        QVERIFY2(hit.contains(field), field);
                    QVERIFY(hit["path"].toString().endsWith(".txt") || !hit["boxes"].toArray().isEmpty());
                }
                const Run filtered = folio({"search", "iPhone net sales", "--mode", mode, "--fusion", fusion, "--doc",
                                            QString::number(note), "--json"});
                QCOMPARE(filtered.exit_code, 0);
                QVERIFY(!filtered.lines.isEmpty());
                for (const QJsonObject& hit : filtered.lines) QCOMPARE(hit["doc_id"].toInteger(), note);
                QVERIFY(folio({"search", "iPhone", "--mode", mode, "--type", "png", "--json"}).lines.isEmpty());
                QVERIFY(folio({"search", "iPhone", "--mode", mode, "--until", "2000-01-01", "--json"}).lines.isEmpty());
            }
        }
    }

    // The Faiss file is derived: deleted or cut short, it is rebuilt from
    // the vectors in the library and answers exactly as before.
    void deletedOrTruncatedVectorFileIsRebuilt() {
        const QStringList query = {"search", "shortness of breath", "--mode", "vector", "--json"};
        const Run before = folio(query);
        QCOMPARE(before.exit_code, 0);
        QCOMPARE(before.lines.size(), 10);
        const std::filesystem::path file = (library_ + "/vectors.faiss").toStdString();
        QVERIFY(std::filesystem::exists(file));
        std::filesystem::remove(file);
        QCOMPARE(folio(query).lines, before.lines);
        QVERIFY(std::filesystem::exists(file));
        std::filesystem::resize_file(file, std::filesystem::file_size(file) - 100);
        QCOMPARE(folio(query).lines, before.lines);
        QFile garbage(QString::fromStdString(file.string()));
        QVERIFY(garbage.open(QIODevice::WriteOnly | QIODevice::Truncate));
        garbage.write("not an index");
        garbage.close();
        QCOMPARE(folio(query).lines, before.lines);
    }

    // `folio index` embeds what ingest could not, and resumes where it stopped.
    void indexEmbedsMissingChunks() {
        const QString library = work_.path() + "/later";
        QCOMPARE(folio({"ingest", kSubset + "/D2N001.txt", kSubset + "/D2N013.txt"}, library, "/nonexistent.gguf").exit_code, 0);
        verify_usage_error(folio({"search", "exam", "--mode", "vector"}, library), "no vectors");
        const Run index = folio({"index", "--json"}, library);
        QVERIFY2(index.exit_code == 0, qPrintable(index.err));
        QCOMPARE(index.lines.last()["embedded"].toInt(), 4);
        QCOMPARE(index.lines.last()["remaining"].toInt(), 0);
        QCOMPARE(folio({"index", "--json"}, library).lines.last()["embedded"].toInt(), 0);
        QCOMPARE(folio({"search", "exam", "--mode", "vector", "--json"}, library).lines.size(), 4);
        const Run failing = folio({"index"}, library, "/nonexistent.gguf");
        QCOMPARE(failing.exit_code, 1);
        QVERIFY(failing.err.startsWith("folio: error: "));
    }

    // A search while another process ingests sees a committed state: no
    // error, and every hit readable.
    void searchDuringIngestIsConsistent() {
        const QString library = work_.path() + "/busy";
        QCOMPARE(folio({"ingest", kSubset + "/D2N001.txt"}, library).exit_code, 0);
        QProcess ingest;
        ingest.start(FOLIO_EXECUTABLE, {"--library", library, "ingest", kSubset, "--ocr", "never"});
        QVERIFY(ingest.waitForStarted());
        int searches = 0;
        while (ingest.state() != QProcess::NotRunning || searches < 3) {
            for (const char* mode : {"hybrid", "bm25"}) {
                const Run run = folio({"search", "blood pressure", "--mode", mode, "--json"}, library);
                QVERIFY2(run.exit_code == 0, qPrintable(run.err));
                for (const QJsonObject& hit : run.lines) QVERIFY(!hit["text"].toString().isEmpty());
            }
            ++searches;
            ingest.waitForFinished(200);
        }
        QCOMPARE(ingest.exitCode(), 0);
    }

    void hitsCarryTheContractFields() {
        const Run run = folio({"search", "iPhone 191,973", "--k", "3", "--json"});
        QCOMPARE(run.exit_code, 0);
        QCOMPARE(run.lines.size(), 3);
        double previous = 1e300;
        for (const QJsonObject& hit : run.lines) {
            for (const char* field : {"chunk_id", "doc_id", "path", "page", "page_end", "score", "text", "boxes"})
                QVERIFY2(hit.contains(field), field);
            QVERIFY(hit["path"].toString().endsWith("apple-2021-10k-excerpt.pdf"));
            QVERIFY(hit["page"].toInt() >= 1 && hit["page_end"].toInt() >= hit["page"].toInt());
            QVERIFY(hit["score"].toDouble() <= previous);
            QVERIFY(!hit["boxes"].toArray().isEmpty());
            previous = hit["score"].toDouble();
        }
        // Page 4 of the excerpt is the 10-K's page 24, the net sales by category.
        const auto table = std::find_if(run.lines.begin(), run.lines.end(), [](const QJsonObject& hit) {
            return hit["text"].toString().contains("191,973");
        });
        QVERIFY(table != run.lines.end());
        QVERIFY(table->value("page").toInt() == 4 || table->value("page").toInt() == 8);
    }

    void docFilterKeepsOneDocument() {
        const qint64 note = doc_id_of("D2N056.txt");
        QVERIFY(note > 0);
        const Run run = folio({"search", "chest x-ray", "--doc", QString::number(note), "--json"});
        QCOMPARE(run.exit_code, 0);
        QVERIFY(!run.lines.isEmpty());
        for (const QJsonObject& hit : run.lines) QCOMPARE(hit["doc_id"].toInteger(), note);
        verify_usage_error(folio({"search", "x-ray", "--doc", "999"}), "no document with id 999");
    }

    // --doc repeated or as a comma list: hits from those documents only, and
    // still k of them although another document holds the best matches.
    void docFilterKeepsASetOfDocuments() {
        // D2N056 holds the best match; D2N035 and D2N001 hold 4 weaker ones
        // (BM25), so a filter applied after a global top 3 would leave 1.
        const qint64 note35 = doc_id_of("D2N035.txt");
        const qint64 note1 = doc_id_of("D2N001.txt"), note56 = doc_id_of("D2N056.txt");
        QVERIFY(note35 > 0 && note1 > 0 && note56 > 0);
        const QString query = "lung disease from moldy hay in the patient history";
        for (const char* mode : {"bm25", "vector", "hybrid"}) {
            const Run best = folio({"search", query, "--k", "3", "--mode", mode, "--json"});
            QCOMPARE(best.exit_code, 0);
            QVERIFY(!best.lines.isEmpty());
            QVERIFY2(best.lines[0]["doc_id"].toInteger() == note56, mode);
            const Run repeated = folio({"search", query, "--k", "3", "--mode", mode, "--doc", QString::number(note35),
                                        "--doc", QString::number(note1), "--json"});
            QVERIFY2(repeated.exit_code == 0, qPrintable(repeated.err));
            QVERIFY2(repeated.lines.size() == 3, mode);
            for (const QJsonObject& hit : repeated.lines)
                QVERIFY2(hit["doc_id"].toInteger() == note35 || hit["doc_id"].toInteger() == note1, mode);
            const Run comma = folio({"search", query, "--k", "3", "--mode", mode, "--doc",
                                     QString::number(note1) + "," + QString::number(note35), "--json"});
            QCOMPARE(comma.lines, repeated.lines);
        }
        // Without --doc, every document; one id keeps one document.
        QSet<qint64> unfiltered;
        for (const QJsonObject& hit : folio({"search", query, "--k", "20", "--mode", "bm25", "--json"}).lines)
            unfiltered.insert(hit["doc_id"].toInteger());
        QCOMPARE(unfiltered.size(), 5);  // the five notes; no word of the query is in the 10-K excerpt
        for (const QJsonObject& hit : folio({"search", query, "--doc", QString::number(note1), "--json"}).lines)
            QCOMPARE(hit["doc_id"].toInteger(), note1);
        verify_usage_error(folio({"search", "x-ray", "--doc", QString::number(note1), "--doc", "999"}),
                           "no document with id 999");
        verify_usage_error(folio({"search", "x-ray", "--doc", QString::number(note1) + ",999"}),
                           "no document with id 999");
        verify_usage_error(folio({"search", "x-ray", "--doc", QString::number(note1) + ","}), "is not a document id");
    }

    void queryTextIsNeverSyntax() {
        const Run run = folio({"search", "\"hay\" AND (farmer* OR NOT: -pneumonitis", "--json"});
        QCOMPARE(run.exit_code, 0);
        QVERIFY(!run.lines.isEmpty());
        QVERIFY(run.lines[0]["path"].toString().endsWith("D2N056.txt"));
        verify_usage_error(folio({"search", "\"hay", "--syntax"}), "not a valid FTS5 query");
        QCOMPARE(folio({"search", "hay NOT farmer", "--syntax", "--json"}).exit_code, 0);
    }

    void badSearchesAreOneLineErrors() {
        verify_usage_error(folio({"search", ""}), "no words");
        verify_usage_error(folio({"search", "*** ???"}), "no words");
        verify_usage_error(folio({"search", "revenue", "--mode", "vector"}, keywords_library_), "no vectors");
        verify_usage_error(folio({"search", "revenue", "--mode", "hybrid"}, keywords_library_), "no vectors");
        verify_usage_error(folio({"search", "revenue", "--fusion", "max"}), "--fusion must be");
        verify_usage_error(folio({"search", "revenue", "--mode", "dense"}), "--mode must be");
        verify_usage_error(folio({"search", "revenue", "--k", "0"}), "--k must be");
        verify_usage_error(folio({"search", "revenue", "--from", "2024-13-01"}), "YYYY-MM-DD");
        verify_usage_error(folio({"search"}), "one query");
    }

    void filtersByTypeAndDate() {
        const Run text_only = folio({"search", "ejection fraction", "--type", "text", "--json"});
        QCOMPARE(text_only.exit_code, 0);
        QVERIFY(!text_only.lines.isEmpty());
        for (const QJsonObject& hit : text_only.lines) QVERIFY(hit["path"].toString().endsWith(".txt"));
        // No PDF has these words; the vectors still rank the PDF's chunks.
        QVERIFY(folio({"search", "ejection fraction", "--type", "pdf", "--mode", "bm25", "--json"}).lines.isEmpty());
        const Run pdf_only = folio({"search", "ejection fraction", "--type", "pdf", "--json"});
        QCOMPARE(pdf_only.exit_code, 0);
        QVERIFY(!pdf_only.lines.isEmpty());
        for (const QJsonObject& hit : pdf_only.lines) QVERIFY(hit["path"].toString().endsWith(".pdf"));
        QVERIFY(folio({"search", "ejection", "--until", "2000-01-01", "--json"}).lines.isEmpty());
        QVERIFY(!folio({"search", "ejection", "--from", "2000-01-01", "--json"}).lines.isEmpty());
    }

    void longQueryIsHandled() {
        QString query;
        while (query.size() < 10000) query += "hypersensitivity pneumonitis farmer hay ";
        const Run run = folio({"search", query, "--k", "1", "--json"});
        QCOMPARE(run.exit_code, 0);
        QCOMPARE(run.lines.size(), 1);
        QVERIFY(run.lines[0]["path"].toString().endsWith("D2N056.txt"));
    }

    void chineseQueryFindsMixedText() {
        const Run run = folio({"search", "Apple 2021财年 iPhone 净销售额是多少?", "--k", "1", "--json"});
        QCOMPARE(run.exit_code, 0);
        QCOMPARE(run.lines.size(), 1);
        QVERIFY(run.lines[0]["text"].toString().contains("iPhone"));
    }

    // The subset's figures, measured when the query set was labelled: a
    // change to chunking or ranking moves them; update them only on purpose.
    void benchRetrievalGivesTheKnownFigures() {
        const Run run = folio({"bench", "retrieval", "--queries", kSubsetQueries, "--mode", "bm25", "--json"});
        QVERIFY2(run.exit_code == 0, qPrintable(run.err));
        QCOMPARE(run.lines.size(), 4);
        struct Expected {
            const char* domain;
            const char* scope;
            int queries;
            double recall_at_5, recall_at_10, ndcg_at_10;
        };
        const Expected expected[] = {{"finance", "document", 13, 1.0, 1.0, 0.684834},
                                     {"finance", "library", 13, 1.0, 1.0, 0.676153},
                                     {"medical", "document", 11, 1.0, 1.0, 0.966448},
                                     {"medical", "library", 11, 1.0, 1.0, 0.920994}};
        for (int i = 0; i < 4; ++i) {
            const QJsonObject& row = run.lines[i];
            QCOMPARE(row["mode"].toString(), QString("bm25"));
            QCOMPARE(row["domain"].toString(), QString(expected[i].domain));
            QCOMPARE(row["scope"].toString(), QString(expected[i].scope));
            QCOMPARE(row["queries"].toInt(), expected[i].queries);
            QCOMPARE(row["unreachable"].toInt(), 0);
            QVERIFY(qAbs(row["recall_at_5"].toDouble() - expected[i].recall_at_5) < 1e-6);
            QVERIFY(qAbs(row["recall_at_10"].toDouble() - expected[i].recall_at_10) < 1e-6);
            QVERIFY2(qAbs(row["ndcg_at_10"].toDouble() - expected[i].ndcg_at_10) < 1e-6,
                     qPrintable(QString::number(row["ndcg_at_10"].toDouble(), 'f', 6)));
        }
    }

    // Every method on the subset; the default hybrid (weighted fusion) must
    // match or beat keywords and vectors alone on every domain and scope, as
    // on the whole labelled sets (docs/benchmarks.md), except where those
    // show it does not: BM25 alone puts more filing pages in its top 5
    // (all-MiniLM-L6-v2 ranks a filing's pages poorly; here fin-apple-05's
    // headcount, in a chunk about seasonality, is BM25's 2nd and hybrid's
    // 10th). There hybrid must match vectors alone, and still find every
    // page by rank 10.
    void benchRetrievalComparesTheMethods() {
        const Run run = folio({"bench", "retrieval", "--queries", kSubsetQueries, "--json"});
        QVERIFY2(run.exit_code == 0, qPrintable(run.err));
        QCOMPARE(run.lines.size(), 16);
        QMap<QString, QJsonObject> rows;  // "mode domain scope"
        for (const QJsonObject& row : run.lines)
            rows[row["mode"].toString() + " " + row["domain"].toString() + " " + row["scope"].toString()] = row;
        for (const QString domain : {"finance", "medical"}) {
            for (const QString scope : {"document", "library"}) {
                const QString key = " " + domain + " " + scope;
                for (const char* metric : {"recall_at_5", "recall_at_10", "ndcg_at_10"}) {
                    const bool bm25_ahead = domain == "finance" && QString(metric) == "recall_at_5";
                    const double hybrid = rows["hybrid-weighted" + key][metric].toDouble();
                    const double best_alone =
                        std::max(bm25_ahead ? 0.0 : rows["bm25" + key][metric].toDouble(),
                                 rows["vector" + key][metric].toDouble());
                    QVERIFY2(hybrid >= best_alone - 1e-9, qPrintable(key + " " + metric + ": " +
                                                                     QString::number(hybrid) + " < " +
                                                                     QString::number(best_alone)));
                }
                QVERIFY(rows.contains("hybrid-rrf" + key));
            }
        }
    }

    // --rerank: the first 20 hits of the search, ordered by the cross-encoder's
    // score of the query with each hit's heading path and text; after the
    // default search (weighted hybrid) by the fused score blended with the
    // cross-encoder's probability (index/reranking.h).
    void rerankedHitsFollowTheCrossEncoder_data() {
        QTest::addColumn<QStringList>("search");
        QTest::addColumn<bool>("blended");
        QTest::newRow("bm25: the cross-encoder alone") << QStringList{"--mode", "bm25"} << false;
        QTest::newRow("rrf: the cross-encoder alone") << QStringList{"--fusion", "rrf"} << false;
        QTest::newRow("weighted hybrid: blended") << QStringList{} << true;
    }
    void rerankedHitsFollowTheCrossEncoder() {
        QFETCH(QStringList, search);
        QFETCH(bool, blended);
        const QString query = "total net sales";
        const Run candidates = folio(QStringList{"search", query, "--k", "20", "--json"} + search);
        QVERIFY2(candidates.exit_code == 0, qPrintable(candidates.err));
        QCOMPARE(candidates.lines.size(), 20);
        const Run reranked = folio(QStringList{"search", query, "--k", "5", "--rerank", "--json"} + search, {}, {},
                                   {{"FOLIO_RERANKER_MODEL", kTinyReranker}});
        QVERIFY2(reranked.exit_code == 0, qPrintable(reranked.err));
        QCOMPARE(reranked.lines.size(), 5);

        folio::engine::Reranker reranker = folio::engine::Reranker::open(kTinyReranker.toStdString());
        folio::engine::ThreadPool pool(2);
        std::vector<std::string> passages;
        for (const QJsonObject& hit : candidates.lines) {
            const QString heading = hit["heading_path"].toString();
            passages.push_back(((heading.isEmpty() ? "" : heading + "\n") + hit["text"].toString()).toStdString());
        }
        const std::vector<float> logits = reranker.score(query.toStdString(), passages, pool);
        std::vector<double> scores;
        for (int i = 0; i < candidates.lines.size(); ++i)
            scores.push_back(blended ? (1 - folio::index::kRerankWeight) * candidates.lines[i]["score"].toDouble() +
                                           folio::index::kRerankWeight / (1 + std::exp(-double(logits[i])))
                                     : double(logits[i]));
        std::vector<int> order(scores.size());
        for (int i = 0; i < static_cast<int>(order.size()); ++i) order[i] = i;
        std::stable_sort(order.begin(), order.end(), [&](int a, int b) { return scores[a] > scores[b]; });
        for (int rank = 0; rank < 5; ++rank) {
            const QJsonObject& hit = reranked.lines[rank];
            QCOMPARE(hit["rank"].toInt(), rank + 1);
            QCOMPARE(hit["chunk_id"].toInteger(), candidates.lines[order[rank]]["chunk_id"].toInteger());
            QVERIFY(qAbs(hit["score"].toDouble() - scores[order[rank]]) < 1e-5);
        }
    }

    void rerankWithoutAModelIsAnError() {
        QTemporaryDir no_models;
        verify_usage_error(folio({"search", "net sales", "--rerank"}, {}, {}, {{"FOLIO_MODELS", no_models.path()}}),
                           "the reranker: no reranking model found");
        verify_usage_error(
            folio({"search", "net sales", "--rerank"}, {}, {}, {{"FOLIO_RERANKER_MODEL", no_models.path() + "/x.gguf"}}),
            "the reranker: ");
        // An embedding model is not a cross-encoder.
        verify_usage_error(folio({"search", "net sales", "--rerank"}, {}, {},
                                 {{"FOLIO_RERANKER_MODEL", QStringLiteral(FOLIO_TEST_DATA "/bert_tiny/model.gguf")}}),
                           "not a cross-encoder");
    }

    void benchRetrievalRefusesQueriesForMissingDocuments() {
        QTemporaryDir other;
        const QString queries = other.path() + "/q.jsonl";
        QFile file(queries);
        QVERIFY(file.open(QIODevice::WriteOnly));
        file.write(R"({"id": "x", "domain": "finance", "doc": "absent.pdf", "query": "revenue", "pages": [1]})" "\n");
        file.close();
        const Run run = folio({"bench", "retrieval", "--queries", queries});
        QCOMPARE(run.exit_code, 1);
        QVERIFY2(run.err.contains("absent.pdf, which is not in the library"), qPrintable(run.err));
        verify_usage_error(folio({"bench", "retrieval"}), "--queries");
        verify_usage_error(
            folio({"bench", "retrieval", "--queries", kSubsetQueries, "--mode", "bm25,vector"}, keywords_library_),
            "no vectors");
        verify_usage_error(folio({"bench", "retrieval", "--queries", kSubsetQueries, "--mode", "bm25,dense"}),
                           "--mode takes");
        verify_usage_error(folio({"bench", "retrieval", "--queries", kSubsetQueries, "--mode", "bm25+rerank"}, {}, {},
                                 {{"FOLIO_MODELS", other.path()}}),
                           "the reranker: no reranking model found");
    }
};

QTEST_GUILESS_MAIN(SearchCliTest)
#include "tst_search_cli.moc"
