// Questions answered from a library (app/ask.h): the token budget, the
// not-found answer, and, with the installed SmolLM2-135M-Instruct, a real
// answer streamed and cited, its repeat served from the prefix cache, and
// a follow-up in the same conversation. The library (three small PDFs) is
// ingested by the real `folio` without an embedding model, so search is
// BM25 and an unmatched question retrieves nothing.
// CI installs the model (tests/run.sh); without it this suite fails rather than skips.

#include <QDir>
#include <QProcessEnvironment>
#include <QScopeGuard>
#include <QTemporaryDir>
#include <QTest>

#include <filesystem>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>

#include "app/ask.h"
#include "app/packs.h"
#include "engine/model_paths.h"
#include "index/reranking.h"
#include "tests/support/folio_process.h"
#include "tests/support/test_documents.h"

using namespace folio::app;

namespace {

const char* const kRevenueQuestion = folio::test::kNorthwindRevenueQuestion;

std::string model_path() {
    const std::optional<std::string> path = folio::engine::find_default_model(folio::engine::ModelRole::Chat);
    return path.value_or("");
}

}  // namespace

class AskTest : public QObject {
    Q_OBJECT

    QTemporaryDir work_;
    std::unique_ptr<Library> library_;
    std::unique_ptr<ChatModel> model_;

private slots:
    void initTestCase() {
        QVERIFY(work_.isValid());
        QVERIFY2(!model_path().empty(), "no chat model installed: run installer/fetch-models.sh (CI must have it)");
        const QString documents = work_.path() + "/documents";
        QVERIFY(QDir().mkpath(documents));
        folio::test::write_text_pdf(documents + "/northwind-2023.pdf", folio::test::kNorthwindReportPages);
        folio::test::write_text_pdf(documents + "/northwind-stores.pdf", folio::test::kNorthwindStoresPages);
        folio::test::write_text_pdf(documents + "/contoso-clinic.pdf",
                                    {"Contoso Clinic visit note. The patient reported knee pain for three weeks. "
                                     "Blood pressure was 128/82."});
        QProcessEnvironment environment = QProcessEnvironment::systemEnvironment();
        environment.insert("FOLIO_EMBEDDING_MODEL", "/nonexistent/model.gguf");
        const QString library = work_.path() + "/library";
        const folio::test::FolioRun ingest =
            folio::test::run_folio({"--library", library, "ingest", documents, "--ocr", "never"}, 120000, environment);
        QVERIFY2(ingest.exit_code == 0, qPrintable(ingest.err));
        library_ = std::make_unique<Library>(library.toStdString());
        QVERIFY(!library_->has_vectors());
        model_ = std::make_unique<ChatModel>(ChatModelOptions{.path = model_path()});
    }

    void packingLeavesOutOnlyWhatDoesNotFitAndSaysSo() {
        const SourcePacking packing = pack_sources({100, 300, 50, 200}, 250);
        QCOMPARE(packing.included, (std::vector<std::size_t>{0, 2}));
        QCOMPARE(packing.left_out, (std::vector<std::size_t>{1, 3}));
        QCOMPARE(packing.tokens, 150);
        QCOMPARE(pack_sources({10, 10}, 5).left_out.size(), std::size_t{2});
    }

    // The 135M model answers from the sources nearest the question: the
    // best ranked goes last (bench ask: accuracy 0.192 -> 0.342).
    void bestSourceSitsNextToTheQuestion() {
        std::vector<Source> sources(3);
        for (int i = 0; i < 3; ++i) {
            sources[i].number = i + 1;
            sources[i].hit.path = "/docs/report.pdf";
            sources[i].hit.page = sources[i].hit.page_end = 10 + i;
            sources[i].hit.text = "text of source " + std::to_string(i + 1);
        }
        const std::string turn = user_turn(sources, "What was revenue?");
        const std::size_t third = turn.find("[3] report.pdf, p. 12\ntext of source 3");
        const std::size_t second = turn.find("[2] report.pdf, p. 11\ntext of source 2");
        const std::size_t first = turn.find("[1] report.pdf, p. 10\ntext of source 1");
        const std::size_t question = turn.find("Question: What was revenue?");
        QVERIFY2(third != std::string::npos && second != std::string::npos && first != std::string::npos, turn.c_str());
        QVERIFY2(third < second && second < first && first < question, turn.c_str());
        QVERIFY(turn.starts_with("Sources:\n\n"));
        QVERIFY(turn.ends_with("Question: What was revenue?"));
        QCOMPARE(user_turn({}, "Why?"), std::string("Question: Why?"));
    }

    void refusalIsRecognised() {
        QVERIFY(says_not_found("Not found in the documents."));
        QVERIFY(says_not_found("The answer is not found in the documents [1]."));
        QVERIFY(!says_not_found("Revenue was found to be $4,812 million [1]."));
    }

    void answerStreamsAndItsCitationsMapToPages() {
        Conversation conversation(*model_, *library_);
        std::string streamed;
        const Answer answer = conversation.ask(kRevenueQuestion, {.k = 3, .max_answer_tokens = 64},
                                               [&](std::string_view piece) { streamed += piece; });
        QVERIFY(!answer.model_text.empty());
        QVERIFY2(streamed.find(answer.model_text) != std::string::npos, streamed.c_str());
        QVERIFY(!answer.sources.empty());
        QVERIFY(answer.sources[0].hit.path.ends_with("northwind-2023.pdf"));
        QVERIFY2(!answer.not_found && answer.text.find("4,812") != std::string::npos, answer.model_text.c_str());
        QVERIFY(!answer.citations.empty());
        for (const Citation& citation : answer.citations) {
            const Source& source = conversation.sources().at(citation.number - 1);
            QCOMPARE(citation.chunk_id, source.hit.chunk_id);
            QCOMPARE(citation.doc_id, source.hit.doc_id);
            QCOMPARE(citation.path, source.hit.path);
            QVERIFY(citation.page >= source.hit.page && citation.page <= source.hit.page_end);
            QVERIFY(!citation.quote.empty());
            QCOMPARE(source.hit.text.substr(citation.quote_begin, citation.quote_end - citation.quote_begin),
                     citation.quote);
        }
        const auto revenue = std::find_if(answer.citations.begin(), answer.citations.end(),
                                          [](const Citation& c) { return c.quote.find("4,812") != std::string::npos; });
        QVERIFY(revenue != answer.citations.end());
        QVERIFY(revenue->path.ends_with("northwind-2023.pdf"));
        QCOMPARE(revenue->page, 1);  // the chunk holds both pages; the quote is on the first
        QVERIFY(revenue->supported);
    }

    // A model of its own, so that nothing of the other tests is cached.
    void repeatedQuestionReusesTheSourcesPrefix() {
        ChatModel model({.path = model_path()});
        const AskOptions options{.k = 3, .max_answer_tokens = 32};
        const Answer first = Conversation(model, *library_).ask(kRevenueQuestion, options);
        const Answer repeat = Conversation(model, *library_).ask(kRevenueQuestion, options);
        QCOMPARE(first.timings.reused_prompt_tokens, 0);
        QCOMPARE(repeat.timings.prompt_tokens, first.timings.prompt_tokens);
        // Everything but the last token, whose logits start the answer.
        QCOMPARE(repeat.timings.reused_prompt_tokens, first.timings.prompt_tokens - 1);
        QVERIFY2(repeat.timings.time_to_first_token_seconds < first.timings.time_to_first_token_seconds,
                 qPrintable(QString("first %1 s, repeat %2 s")
                                .arg(first.timings.time_to_first_token_seconds)
                                .arg(repeat.timings.time_to_first_token_seconds)));
        QCOMPARE(repeat.model_text, first.model_text);
    }

    void followUpKeepsItsSourcesNumbersAndTheCache() {
        Conversation conversation(*model_, *library_);
        const Answer first = conversation.ask(kRevenueQuestion, {.k = 2, .max_answer_tokens = 48});
        const std::vector<Source> earlier = conversation.sources();
        const Answer follow_up = conversation.ask("How many people did Northwind Traders employ?",
                                                  {.k = 2, .max_answer_tokens = 48});
        QCOMPARE(conversation.messages().size(), std::size_t{5});  // system, then two questions and answers
        QVERIFY(follow_up.timings.reused_prompt_tokens >= first.timings.prompt_tokens);
        QVERIFY(conversation.sources().size() >= earlier.size());
        for (std::size_t i = 0; i < earlier.size(); ++i) {
            QCOMPARE(conversation.sources()[i].number, earlier[i].number);
            QCOMPARE(conversation.sources()[i].hit.chunk_id, earlier[i].hit.chunk_id);
        }
        for (const Source& source : follow_up.sources)
            QCOMPARE(conversation.sources().at(source.number - 1).hit.chunk_id, source.hit.chunk_id);
    }

    void sourcesOverTheBudgetAreReportedNotDropped() {
        const int hits = static_cast<int>(library_->search(kRevenueQuestion, {.k = 3}).size());
        QVERIFY(hits >= 2);
        Conversation conversation(*model_, *library_);
        const Answer answer = conversation.ask(kRevenueQuestion, {.k = 3, .source_token_budget = 1});
        QVERIFY(answer.sources.empty());
        QCOMPARE(static_cast<int>(answer.left_out.size()), hits);
        for (const Source& source : answer.left_out) {
            QCOMPARE(source.number, 0);
            QVERIFY(source.tokens > 1);
        }
        QVERIFY(answer.not_found);
        QVERIFY(answer.model_text.empty());  // no source, no question to the model
    }

    // Budget 1 token: the retrieved chunks all come back in left_out, without
    // generation, so the scope of the search shows cheaply.
    void sourcesComeFromTheChosenDocumentsOnly() {
        std::map<std::string, std::int64_t> id_of;
        for (const folio::index::DocumentRecord& doc : library_->store().documents())
            id_of[std::filesystem::path(doc.path).filename().string()] = doc.id;
        auto retrieved = [&](const std::vector<std::int64_t>& doc_ids) {
            const Answer answer = Conversation(*model_, *library_)
                                      .ask(kRevenueQuestion, {.k = 3, .doc_ids = doc_ids, .source_token_budget = 1});
            std::set<std::string> files;
            for (const Source& source : answer.left_out)
                files.insert(std::filesystem::path(source.hit.path).filename().string());
            return files;
        };
        const std::set<std::string> both_reports = {"northwind-2023.pdf", "northwind-stores.pdf"};
        QCOMPARE(retrieved({}), both_reports);
        QCOMPARE(retrieved({id_of.at("northwind-stores.pdf"), id_of.at("contoso-clinic.pdf")}),
                 std::set<std::string>{"northwind-stores.pdf"});
        QCOMPARE(retrieved({id_of.at("northwind-2023.pdf")}), std::set<std::string>{"northwind-2023.pdf"});
        QCOMPARE(retrieved({id_of.at("contoso-clinic.pdf")}), std::set<std::string>{});
        QCOMPARE(retrieved({id_of.at("northwind-stores.pdf"), id_of.at("northwind-2023.pdf")}), both_reports);
    }

    // "BP" is nowhere in the library; the medical glossary's "blood pressure"
    // is, on the keyword side only.
    void packGlossaryExpandsTheKeywordQuery() {
        const char* const question = "What was the BP?";
        const Answer plain = Conversation(*model_, *library_).ask(question, {.k = 2, .max_answer_tokens = 24});
        QVERIFY(plain.sources.empty());
        QVERIFY(plain.query_expansion.empty());
        const PackContent medical = load_pack("medical");
        const Answer expanded = Conversation(*model_, *library_)
                                    .ask(question, {.k = 2, .max_answer_tokens = 24, .glossary = &medical.glossary});
        QCOMPARE(expanded.query_expansion, std::vector<std::string>{"blood pressure"});
        QVERIFY(!expanded.sources.empty());
        QVERIFY(expanded.sources[0].hit.path.ends_with("contoso-clinic.pdf"));
    }

    // The glossary's meanings widen the keyword search; the reranker reads
    // the question the user asked, not that list of words.
    void rerankerReadsTheQuestionNotTheExpandedKeywords() {
        const QByteArray reranker = (std::filesystem::path(FOLIO_TEST_DATA) / "bert_cross_tiny/model.gguf").c_str();
        qputenv("FOLIO_RERANKER_MODEL", reranker);
        const auto restore = qScopeGuard([] { qunsetenv("FOLIO_RERANKER_MODEL"); });
        Library library(library_->directory());
        const std::string question = "What was the BP at the clinic?";
        const PackContent medical = load_pack("medical");
        const Answer answer =
            Conversation(*model_, library)
                .ask(question, {.k = 2, .max_answer_tokens = 8, .glossary = &medical.glossary, .rerank = true});
        QCOMPARE(answer.query_expansion, std::vector<std::string>{"blood pressure"});
        QVERIFY(!answer.sources.empty());
        std::vector<std::string> passages;
        for (const Source& source : answer.sources) passages.push_back(folio::index::rerank_passage(source.hit));
        const std::vector<float> asked = library.reranker().score(question, passages);
        const std::vector<float> keywords = library.reranker().score(question + " blood pressure", passages);
        QVERIFY(asked != keywords);  // else this test could not tell them apart
        for (std::size_t i = 0; i < passages.size(); ++i)
            QCOMPARE(static_cast<float>(answer.sources[i].hit.score), asked[i]);
    }

    void questionNothingMatchesIsNotFound() {
        Conversation conversation(*model_, *library_);
        const Answer answer = conversation.ask("zebra quasar chromodynamics");
        QVERIFY(answer.not_found);
        QCOMPARE(answer.text, std::string(kNotFoundAnswer));
        QVERIFY(answer.model_text.empty());
        QVERIFY(answer.citations.empty());
        QCOMPARE(conversation.messages().size(), std::size_t{1});
    }

    void questionLongerThanTheContextIsAnError() {
        ChatModel small({.path = model_path(), .context_tokens = 256});
        std::string question;
        for (int i = 0; i < 300; ++i) question += "revenue ";
        try {
            Conversation(small, *library_).ask(question, {.max_answer_tokens = 32});
            QFAIL("no error");
        } catch (const AskError& e) {
            const std::string message = e.what();
            QVERIFY2(message.starts_with("the question is ") && message.ends_with("; the model's context is 256"),
                     e.what());
        }
        QVERIFY_THROWS_EXCEPTION(AskError, Conversation(*model_, *library_).ask("  \n"));
    }
};

QTEST_MAIN(AskTest)
#include "tst_ask.moc"
