// End-to-end tests of `folio ask` and `folio bench ask` on a library of two
// small PDFs, embedded (hybrid search) and answered by the installed default
// models (SmolLM2-135M-Instruct, all-MiniLM-L6-v2). CI installs them
// (tests/run.sh); without them this suite fails rather than skips.

#include <QDir>
#include <QFile>
#include <QFileInfo>
#include <QJsonArray>
#include <QJsonDocument>
#include <QJsonObject>
#include <QMap>
#include <QProcess>
#include <QSet>
#include <QTemporaryDir>
#include <QTest>

#include "engine/model_paths.h"
#include "tests/support/folio_process.h"
#include "tests/support/test_documents.h"

namespace {

using Run = folio::test::FolioRun;

const QString kRevenueQuestion = QString::fromUtf8(folio::test::kNorthwindRevenueQuestion);

}  // namespace

class AskCliTest : public QObject {
    Q_OBJECT

    QTemporaryDir work_;
    QString library_;

    Run folio(const QStringList& arguments, const QString& library = {}) {
        return folio::test::run_folio(QStringList{"--library", library.isEmpty() ? library_ : library} + arguments);
    }

    // `folio ask -` with `input` on stdin.
    Run folio_with_input(const QStringList& arguments, const QByteArray& input) {
        return folio::test::run_folio_with_input(QStringList{"--library", library_} + arguments, input);
    }

private slots:
    void initTestCase() {
        QVERIFY(work_.isValid());
        QVERIFY2(folio::engine::find_default_model(folio::engine::ModelRole::Chat),
                 "no chat model installed: run installer/fetch-models.sh (CI must have it)");
        QVERIFY2(folio::engine::find_default_model(folio::engine::ModelRole::Embedding),
                 "no embedding model installed: run installer/fetch-models.sh (CI must have it)");
        const QString documents = work_.path() + "/documents";
        QVERIFY(QDir().mkpath(documents));
        folio::test::write_text_pdf(documents + "/northwind-2023.pdf", folio::test::kNorthwindReportPages);
        folio::test::write_text_pdf(documents + "/northwind-stores.pdf", folio::test::kNorthwindStoresPages);
        library_ = work_.path() + "/library";
        const Run ingest = folio({"ingest", documents, "--ocr", "never"});
        QVERIFY2(ingest.exit_code == 0, qPrintable(ingest.err));
        QVERIFY2(ingest.out.contains("0 left"), qPrintable(ingest.out));  // every chunk has its vector
    }

    void answerLineCarriesTheContractFields() {
        const Run run = folio({"ask", kRevenueQuestion, "--k", "3", "--max-tokens", "48", "--json"});
        QVERIFY2(run.exit_code == 0, qPrintable(run.err));
        QCOMPARE(run.lines.size(), 1);
        const QJsonObject answer = run.lines[0];
        for (const char* field : {"question", "answer", "not_found", "model_answer", "citations", "sentences",
                                  "sources", "left_out", "timings"})
            QVERIFY2(answer.contains(field), field);
        QVERIFY2(answer["answer"].toString().contains("4,812"), qPrintable(answer["model_answer"].toString()));
        QVERIFY(!answer["citations"].toArray().isEmpty());
        for (const QJsonValue& value : answer["citations"].toArray()) {
            const QJsonObject citation = value.toObject();
            for (const char* field : {"n", "doc_id", "path", "page", "chunk_id", "quote"})
                QVERIFY2(citation.contains(field), field);
            QVERIFY(citation["path"].toString().contains("/documents/northwind-"));
            QVERIFY(citation["page"].toInt() >= 1);
        }
        const QJsonObject timings = answer["timings"].toObject();
        for (const char* field : {"retrieval_seconds", "prompt_tokens", "reused_prompt_tokens",
                                  "time_to_first_token_seconds", "total_seconds"})
            QVERIFY2(timings.contains(field), field);
        QVERIFY(timings["prompt_tokens"].toInt() > 0);
    }

    void textAnswerIsFollowedByItsSources() {
        const Run run = folio({"ask", kRevenueQuestion, "--k", "3", "--max-tokens", "48"});
        QVERIFY2(run.exit_code == 0, qPrintable(run.err));
        QVERIFY2(run.out.contains("4,812"), qPrintable(run.out));
        QVERIFY2(run.out.contains("\nSources:\n[1] northwind-"), qPrintable(run.out));
        QVERIFY2(run.out.contains(" p. 1"), qPrintable(run.out));
    }

    void questionsOnStdinAreOneConversation() {
        const Run run = folio_with_input({"ask", "-", "--k", "2", "--max-tokens", "32", "--json"},
                                         kRevenueQuestion.toUtf8() + "\n\nHow many stores did it operate?\n");
        QVERIFY2(run.exit_code == 0, qPrintable(run.err));
        QCOMPARE(run.lines.size(), 2);
        const QJsonObject first = run.lines[0]["timings"].toObject(), second = run.lines[1]["timings"].toObject();
        // The follow-up's prompt starts with the whole first turn, found in the cache.
        QVERIFY(second["reused_prompt_tokens"].toInt() >= first["prompt_tokens"].toInt());
        QCOMPARE(run.lines[1]["question"].toString(), QString("How many stores did it operate?"));
    }

    // --doc repeated or as a comma list scopes the sources to those documents.
    void docScopesTheSources() {
        QMap<QString, qint64> id_of;
        for (const QJsonObject& doc : folio({"docs", "--json"}).lines)
            id_of[QFileInfo(doc["path"].toString()).fileName()] = doc["doc_id"].toInteger();
        const qint64 report = id_of.value("northwind-2023.pdf"), stores = id_of.value("northwind-stores.pdf");
        QVERIFY(report > 0 && stores > 0);
        auto source_docs = [&](const QStringList& doc_arguments) {
            const Run run = folio(QStringList{"ask", kRevenueQuestion, "--k", "3", "--max-tokens", "8", "--json"} +
                                  doc_arguments);
            QSet<qint64> docs;
            if (run.exit_code != 0 || run.lines.size() != 1) return docs;
            for (const char* list : {"sources", "left_out"})
                for (const QJsonValue& source : run.lines[0][list].toArray())
                    docs.insert(source.toObject()["doc_id"].toInteger());
            return docs;
        };
        QCOMPARE(source_docs({"--doc", QString::number(stores)}), QSet<qint64>{stores});
        QCOMPARE(source_docs({"--doc", QString::number(report)}), QSet<qint64>{report});
        const QSet<qint64> both{report, stores};
        QCOMPARE(source_docs({"--doc", QString::number(stores), "--doc", QString::number(report)}), both);
        QCOMPARE(source_docs({"--doc", QString::number(report) + "," + QString::number(stores)}), both);
        QCOMPARE(source_docs({}), both);
    }

    // --rerank: the sources come from the cross-encoder's order, so the page
    // that answers is the first; without a reranker it is one error line.
    void rerankedAskCitesTheAnsweringPageFirst() {
        QVERIFY2(folio::engine::find_default_model(folio::engine::ModelRole::Reranker),
                 "no reranking model installed: run installer/fetch-models.sh (CI must have it)");
        const Run run = folio({"ask", kRevenueQuestion, "--k", "3", "--max-tokens", "48", "--rerank", "--json"});
        QVERIFY2(run.exit_code == 0, qPrintable(run.err));
        QCOMPARE(run.lines.size(), 1);
        const QJsonArray sources = run.lines[0]["sources"].toArray();
        QVERIFY(!sources.isEmpty());
        const QJsonObject first = sources[0].toObject();
        QVERIFY2(first["path"].toString().endsWith("/northwind-2023.pdf") && first["page"].toInt() == 1,
                 qPrintable(QJsonDocument(first).toJson(QJsonDocument::Compact)));
        QVERIFY2(run.lines[0]["answer"].toString().contains("4,812"),
                 qPrintable(run.lines[0]["model_answer"].toString()));

        QProcessEnvironment no_reranker = QProcessEnvironment::systemEnvironment();
        no_reranker.insert("FOLIO_RERANKER_MODEL", work_.path() + "/no-reranker.gguf");
        const Run refused = folio::test::run_folio(
            {"--library", library_, "ask", kRevenueQuestion, "--max-tokens", "8", "--rerank"}, 300000, no_reranker);
        QVERIFY(refused.exit_code > 0);
        QVERIFY(refused.out.isEmpty());
        QVERIFY2(refused.err.startsWith("folio: error: the reranker: ") && refused.err.count('\n') == 1,
                 qPrintable(refused.err));
    }

    // Without a flag, ask reranks whenever a reranking model is installed
    // (CI installs one) and says so; --no-rerank and a models folder without
    // one ask without it; both flags are one error line.
    void askRerankWhenARerankerIsInstalled() {
        const auto reranked = [&](const QStringList& flags, const QProcessEnvironment& environment) {
            const Run run = folio::test::run_folio(
                QStringList{"--library", library_, "ask", kRevenueQuestion, "--max-tokens", "4", "--json"} + flags,
                300000, environment);
            if (run.exit_code != 0 || run.lines.size() != 1) return QStringLiteral("failed: ") + run.err;
            return run.lines[0]["reranked"].toBool() ? QStringLiteral("reranked") : QStringLiteral("not reranked");
        };
        const QProcessEnvironment installed = QProcessEnvironment::systemEnvironment();
        QCOMPARE(reranked({}, installed), QStringLiteral("reranked"));
        QCOMPARE(reranked({"--no-rerank"}, installed), QStringLiteral("not reranked"));
        QCOMPARE(reranked({"--rerank"}, installed), QStringLiteral("reranked"));

        // The chat and embedding models named, in a models folder without a reranker.
        QProcessEnvironment without = installed;
        without.insert("FOLIO_MODELS", work_.path() + "/documents");
        without.insert("FOLIO_EMBEDDING_MODEL",
                       QString::fromStdString(*folio::engine::find_default_model(folio::engine::ModelRole::Embedding)));
        const QString chat = QString::fromStdString(*folio::engine::find_default_model(folio::engine::ModelRole::Chat));
        QCOMPARE(reranked({"--model", chat}, without), QStringLiteral("not reranked"));

        // A reranking model that does not load: one error line, before the
        // chat model loads, that says how to ask without it.
        QProcessEnvironment broken = installed;
        broken.insert("FOLIO_RERANKER_MODEL", QStringLiteral(FOLIO_TEST_DATA "/bert_tiny/model.gguf"));
        const Run refused = folio::test::run_folio({"--library", library_, "ask", kRevenueQuestion}, 300000, broken);
        QVERIFY(refused.exit_code > 0 && refused.out.isEmpty());
        QVERIFY2(refused.err.startsWith("folio: error: the reranker: ") && refused.err.contains("--no-rerank") &&
                     refused.err.count('\n') == 1,
                 qPrintable(refused.err));
        QCOMPARE(reranked({"--no-rerank"}, broken), QStringLiteral("not reranked"));

        const Run both = folio({"ask", kRevenueQuestion, "--rerank", "--no-rerank"});
        QVERIFY(both.exit_code > 0 && both.out.isEmpty());
        QVERIFY2(both.err.startsWith("folio: error: --rerank and --no-rerank") && both.err.count('\n') == 1,
                 qPrintable(both.err));
    }

    void badInputIsOneErrorLine_data() {
        QTest::addColumn<QStringList>("arguments");
        QTest::addColumn<QString>("says");
        QTest::addColumn<bool>("empty_library");
        QFile broken(work_.path() + "/broken.gguf");
        QVERIFY(broken.open(QIODevice::WriteOnly));
        broken.write("not a model");
        broken.close();
        const QString long_question = QString("revenue ").repeated(9000);
        QTest::newRow("no documents") << QStringList{"ask", "What is revenue?"} << "has no documents" << true;
        QTest::newRow("missing model") << QStringList{"ask", "revenue", "--model", "/nonexistent/chat.gguf"}
                                       << "no model file /nonexistent/chat.gguf" << false;
        QTest::newRow("model not loadable") << QStringList{"ask", "revenue", "--model", broken.fileName()}
                                            << "model " + broken.fileName() + ": " << false;
        QTest::newRow("question longer than the context")
            << QStringList{"ask", long_question} << " tokens; the model's context is " << false;
        QTest::newRow("unknown pack") << QStringList{"ask", "revenue", "--pack", "astrology"}
                                      << "no pack named 'astrology'" << false;
        QTest::newRow("unknown document") << QStringList{"ask", "revenue", "--doc", "999"}
                                          << "no document with id 999" << false;
        QTest::newRow("unknown document in a list") << QStringList{"ask", "revenue", "--doc", "1,999"}
                                                    << "no document with id 999" << false;
        QTest::newRow("unknown document repeated") << QStringList{"ask", "revenue", "--doc", "1", "--doc", "999"}
                                                   << "no document with id 999" << false;
        QTest::newRow("not a document id") << QStringList{"ask", "revenue", "--doc", "1,x"}
                                           << "'x' is not a document id" << false;
        QTest::newRow("k out of range") << QStringList{"ask", "revenue", "--k", "0"} << "--k must be" << false;
        QTest::newRow("no question") << QStringList{"ask"} << "ask takes one question" << false;
        QTest::newRow("bench without questions") << QStringList{"bench", "ask"} << "needs --questions" << false;
        QTest::newRow("bench questions missing")
            << QStringList{"bench", "ask", "--questions", "/nonexistent/q.jsonl"} << "cannot read /nonexistent/q.jsonl"
            << false;
    }
    void badInputIsOneErrorLine() {
        QFETCH(QStringList, arguments);
        QFETCH(QString, says);
        QFETCH(bool, empty_library);
        const QString library = empty_library ? work_.path() + "/empty" : library_;
        const Run before = folio({"docs", "--json"}, library);
        const Run run = folio(arguments, library);
        QVERIFY(run.exit_code > 0);
        QVERIFY2(run.out.isEmpty(), qPrintable(run.out));
        const QStringList lines = run.err.split('\n', Qt::SkipEmptyParts);
        QCOMPARE(lines.size(), 1);
        QVERIFY2(lines[0].startsWith("folio: error: ") && lines[0].contains(says), qPrintable(run.err));
        QCOMPARE(folio({"docs", "--json"}, library).lines, before.lines);
    }

    void benchReportsAccuracyPrecisionAndTheRepeatSpeedup() {
        const QString questions = work_.path() + "/questions.jsonl";
        QFile file(questions);
        QVERIFY(file.open(QIODevice::WriteOnly));
        file.write("{\"id\": \"revenue\", \"question\": \"" + kRevenueQuestion.toUtf8() +
                   "\", \"doc\": \"northwind-2023.pdf\", \"pages\": [1], \"answer_forms\": [\"4,812\"]}\n"
                   "{\"id\": \"stores\", \"query\": \"How many stores did Northwind Traders operate?\", "
                   "\"doc\": \"northwind-stores.pdf\", \"pages\": [1], \"evidence\": [\"stores\", \"310\"]}\n");
        file.close();
        const Run run = folio({"bench", "ask", "--questions", questions, "--k", "2", "--max-tokens", "32", "--json"});
        QVERIFY2(run.exit_code == 0, qPrintable(run.err));
        QCOMPARE(run.lines.size(), 3);  // a line per question, then the figures
        QCOMPARE(run.lines[0]["id"].toString(), QString("revenue"));
        QVERIFY2(run.lines[0]["correct"].toBool(),
                 qPrintable(QJsonDocument(run.lines[0]).toJson(QJsonDocument::Compact)));
        const QJsonObject figures = run.lines[2];
        QCOMPARE(figures["questions"].toInt(), 2);
        QVERIFY(figures["reranked"].toBool());  // as ask: a reranker is installed
        QVERIFY(figures["answer_accuracy"].toDouble() >= 0.5);
        for (const char* field : {"citation_precision", "not_found_rate", "ttft_first_median_seconds",
                                  "ttft_repeat_median_seconds"})
            QVERIFY2(figures.contains(field), field);
        // The repeat prefills one token where the first prefilled the sources.
        QVERIFY2(figures["ttft_speedup"].toDouble() >= 3, qPrintable(run.out));
    }
};

QTEST_MAIN(AskCliTest)
#include "tst_ask_cli.moc"
