// The Ask and Summary panels with the real default chat model over a small
// library: answers stream, citations are real links a mouse click follows,
// follow-ups continue the conversation, Stop stops, and summary points link
// their pages.

#include <QComboBox>
#include <QDir>
#include <QLabel>
#include <QLineEdit>
#include <QPushButton>
#include <QScopeGuard>
#include <QSignalSpy>
#include <QTemporaryDir>
#include <QTest>
#include <QTextBlock>
#include <QTextBrowser>

#include <memory>

#include "app/library.h"
#include "engine/model_paths.h"
#include "tests/support/test_documents.h"
#include "tests/support/text_browser_links.h"
#include "engine/device.h"
#include "ui/ask_panel.h"
#include "ui/assistant_worker.h"
#include "ui/summary_panel.h"

using namespace folio;


class AskPanelTest : public QObject {
    Q_OBJECT

private slots:
    void initTestCase() {
        QVERIFY(work_.isValid());
        const auto model = engine::find_default_model(engine::ModelRole::Chat);
        QVERIFY2(model, "no chat model installed: run installer/fetch-models.sh (CI must have it)");
        settings_.chatModel = QString::fromStdString(*model);

        const QString documents = work_.path() + "/documents";
        QVERIFY(QDir().mkpath(documents));
        test::write_text_pdf(documents + "/northwind-2023.pdf", test::kNorthwindReportPages);
        test::write_text_pdf(
            documents + "/harbour-report.pdf",
            {"Harbour Holdings annual report. Container volume at the Rotterdam terminal rose to 4.2 million "
             "units in 2025, driven by Asian imports. Revenue grew 12 percent to 830 million euros.",
             "The board approved a dividend of 1.40 euros per share. Rail freight to Germany doubled after the "
             "new Duisburg shuttle service opened. Carbon emissions dropped 9 percent thanks to shore power."});
        test::write_text_pdf(documents + "/contoso-clinic.pdf",
                             {"Contoso Clinic visit note. The patient reported knee pain for three weeks. "
                              "Blood pressure was 128/82."});
        libraryDir_ = work_.path() + "/library";
        app::Library library(libraryDir_.toStdString());
        app::IngestRequest request;
        request.paths = {documents.toStdString()};
        request.pipeline.worker_executable = FOLIO_INGEST_WORKER;
        request.pipeline.ocr_mode = ingest::OcrMode::Never;
        const app::IngestReport report = library.ingest(request);
        QVERIFY(report.ok());
        for (const index::DocumentRecord& doc : library.store().documents())
            if (QString::fromStdString(doc.path).endsWith("northwind-2023.pdf")) northwind_ = doc.id;
            else if (QString::fromStdString(doc.path).endsWith("harbour-report.pdf")) harbour_ = doc.id;
        QVERIFY(northwind_ > 0 && harbour_ > 0);
        worker_ = std::make_unique<ui::AssistantWorker>(libraryDir_, settings_);
    }

    void answerStreamsAndItsCitationOpensTheSource() {
        ui::AskPanel panel(*worker_);
        panel.resize(900, 700);
        panel.show();
        QVERIFY(QTest::qWaitForWindowExposed(&panel));
        QSignalSpy pieces(worker_.get(), &ui::AssistantWorker::answerPiece);
        QSignalSpy answering(&panel, &ui::AskPanel::answeringChanged);
        QSignalSpy cited(&panel, &ui::AskPanel::citationActivated);

        auto* question = panel.findChild<QLineEdit*>("question");
        auto* askButton = panel.findChild<QPushButton*>("askButton");
        QVERIFY(question && askButton);
        QVERIFY(!askButton->isEnabled());
        QTest::keyClicks(question, "How many people did Northwind Traders employ?");
        QVERIFY(askButton->isEnabled());
        QTest::mouseClick(askButton, Qt::LeftButton);
        QVERIFY(panel.isAnswering());
        QVERIFY(panel.findChild<QPushButton*>("stopButton")->isEnabled());
        QVERIFY(!askButton->isEnabled());

        QTRY_VERIFY_WITH_TIMEOUT(!panel.isAnswering(), 120000);
        QCOMPARE(answering.size(), 2);
        QVERIFY2(pieces.size() > 1, "the answer should arrive piece by piece");
        QCOMPARE(panel.answers().size(), std::size_t{1});
        const app::Answer& answer = panel.answers().front();
        QVERIFY2(!answer.not_found, answer.model_text.c_str());
        QVERIFY2(!answer.citations.empty(), answer.model_text.c_str());
        auto* transcript = panel.findChild<QTextBrowser*>("transcript");
        QVERIFY(transcript->toPlainText().contains("How many people"));

        QString href;
        QVERIFY2(test::clickLink(transcript, "cite:0/", &href), qPrintable(transcript->toHtml()));
        QTRY_COMPARE(cited.size(), 1);
        const QList<QVariant> arguments = cited.takeFirst();
        const QStringList parts = href.mid(5).split('/');
        const app::Citation* citation = nullptr;
        for (const app::Citation& c : answer.citations)
            if (c.number == parts[1].toInt() && (!citation || c.sentence == parts[2].toInt())) citation = &c;
        QVERIFY(citation);
        QCOMPARE(arguments.at(0).toLongLong(), citation->doc_id);
        QCOMPARE(arguments.at(1).toInt(), citation->page);
        QCOMPARE(arguments.at(2).toString(), QString::fromStdString(citation->quote));
        QVERIFY(!citation->quote.empty());

        // A follow-up continues the conversation: the earlier turns are in the model's prompt.
        QCOMPARE(askButton->text(), QStringLiteral("&Follow Up"));
        panel.ask("What was its net revenue in fiscal 2023?");
        QTRY_VERIFY_WITH_TIMEOUT(!panel.isAnswering(), 120000);
        QCOMPARE(panel.answers().size(), std::size_t{2});
        QVERIFY(panel.answers()[1].timings.reused_prompt_tokens > 0);

        // New Conversation forgets it.
        QTest::mouseClick(panel.findChild<QPushButton*>("newConversationButton"), Qt::LeftButton);
        QVERIFY(panel.answers().empty());
        QVERIFY(transcript->toPlainText().isEmpty());
        QCOMPARE(askButton->text(), QStringLiteral("&Ask"));
    }

    // What the transcript shows of a checked answer, without a model.
    void unsupportedSentencesAreMarkedAndCitationsAreLinks() {
        app::Answer answer;
        answer.model_text = "Revenue was $4,812 million [1]. Profit tripled. Staff grew.";
        app::SentenceCheck cited{.text = "Revenue was $4,812 million [1].", .citations = {1},
                                 .verdict = app::SentenceVerdict::Supported};
        app::SentenceCheck unsupported{.text = "Profit tripled.", .citations = {},
                                       .verdict = app::SentenceVerdict::Unsupported,
                                       .reason = "no source mentions profit"};
        app::SentenceCheck attributed{.text = "Staff grew.", .citations = {2},
                                      .verdict = app::SentenceVerdict::Attributed};
        answer.sentences = {cited, unsupported, attributed};
        app::Citation first{.number = 1, .sentence = 0, .supported = true, .doc_id = 7, .chunk_id = 70,
                            .path = "/data/northwind-2023.pdf", .page = 2, .quote = "net revenue of $4,812 million"};
        app::Citation second{.number = 2, .sentence = 2, .supported = true, .attributed = true, .doc_id = 7,
                             .chunk_id = 71, .path = "/data/northwind-2023.pdf", .page = 3, .quote = "employed"};
        answer.citations = {first, second};

        const QString html = ui::answerHtml(answer, 4, false);
        QVERIFY2(html.contains("<a href=\"cite:4/1/0\">[1]</a>"), qPrintable(html));
        QVERIFY2(html.contains("cite:4/2/2"), qPrintable(html));  // Folio's attribution, as a link too
        const int marked = html.indexOf("Profit tripled.");
        QVERIFY(marked > 0);
        QVERIFY(html.lastIndexOf("background-color:#fde2e1", marked) > html.indexOf("[1]</a>"));
        QVERIFY(html.contains("Not supported by the sources: no source mentions profit"));
        QVERIFY(html.contains("&#9888;"));
        QVERIFY(!html.mid(0, marked).contains("&#9888;"));  // the supported sentence is not marked
        QVERIFY(html.contains("[1] northwind-2023.pdf, p. 2"));
        QVERIFY(html.contains("[2] northwind-2023.pdf, p. 3"));
        QVERIFY(ui::answerHtml(answer, 4, true).contains("background-color:#5c2b29"));

        app::Answer notFound;
        notFound.not_found = true;
        QVERIFY(ui::answerHtml(notFound, 0, false).contains("Not found in the documents."));
    }

    // The status line says why an answer ended early, as `folio ask` does.
    void statusSaysWhyTheAnswerEnded() {
        app::Answer answer;
        answer.sources.resize(3);
        answer.timings.answer_tokens = 40;
        answer.timings.total_seconds = 2.0;
        QCOMPARE(ui::answerStatus(answer), QString("3 sources, 40 answer tokens, 2.0 s"));
        answer.stop_reason = engine::StopReason::Repetition;
        QCOMPARE(ui::answerStatus(answer),
                 QString("3 sources, 40 answer tokens, 2.0 s; the model began repeating itself: the repeats were cut"));
        answer.stop_reason = engine::StopReason::MaxTokens;
        QCOMPARE(ui::answerStatus(answer),
                 QString("3 sources, 40 answer tokens, 2.0 s; the answer stopped at the token limit"));
        answer.stop_reason = engine::StopReason::Cancelled;
        QVERIFY(ui::answerStatus(answer).startsWith("Stopped. 3 sources"));
    }

    void stopEndsTheAnswerAndThePanelTakesTheNextQuestion() {
        ui::AskPanel panel(*worker_);
        QSignalSpy pieces(worker_.get(), &ui::AssistantWorker::answerPiece);
        panel.ask("Describe everything the documents say about Northwind Traders, in detail.");
        QTRY_VERIFY_WITH_TIMEOUT(!pieces.isEmpty(), 120000);
        QTest::mouseClick(panel.findChild<QPushButton*>("stopButton"), Qt::LeftButton);
        QTRY_VERIFY_WITH_TIMEOUT(!panel.isAnswering(), 30000);
        if (!panel.answers().empty())
            QCOMPARE(panel.answers().back().stop_reason, engine::StopReason::Cancelled);
        QVERIFY(panel.findChild<QLabel*>("askStatus")->text().startsWith("Stopped"));
        panel.ask("How many countries?");
        QVERIFY(panel.isAnswering());
        QTRY_VERIFY_WITH_TIMEOUT(!panel.isAnswering(), 120000);
    }

    // The panels share one worker: Stop in one stops its own job only.
    void stopLeavesOtherPanelsJobsAlone() {
        ui::AskPanel panel(*worker_);
        QSignalSpy pieces(worker_.get(), &ui::AssistantWorker::answerPiece);
        QSignalSpy summaries(worker_.get(), &ui::AssistantWorker::summaryReady);
        panel.ask("Describe everything the documents say about Northwind Traders, in detail.");
        const ui::JobId summary = worker_->requestSummary(harbour_, QString());  // queued behind the answer
        QTRY_VERIFY_WITH_TIMEOUT(!pieces.isEmpty(), 120000);
        panel.stop();
        QTRY_VERIFY_WITH_TIMEOUT(!panel.isAnswering(), 30000);
        QSignalSpy finished(worker_.get(), &ui::AssistantWorker::jobFinished);
        QTRY_VERIFY_WITH_TIMEOUT(!finished.isEmpty(), 180000);
        QCOMPARE(finished.front().at(0).value<ui::JobId>(), summary);
        QCOMPARE(summaries.size(), 1);  // not failed() as cancelled
        QCOMPARE(summaries.front().at(0).value<ui::JobId>(), summary);
        QVERIFY(!summaries.front().at(1).value<app::Summary>().cancelled);
    }

    void selectedDocumentScopeNeedsADocument() {
        ui::AskPanel panel(*worker_);
        auto* scope = panel.findChild<QComboBox*>("scope");
        scope->setCurrentIndex(1);
        panel.ask("What was the blood pressure?");
        QVERIFY(!panel.isAnswering());
        QVERIFY(panel.findChild<QLabel*>("askStatus")->text().contains("Select documents"));

        // Scoped to two documents, the clinic note ("The patient reported knee pain") is not searched.
        panel.setSelectedDocuments({northwind_, harbour_}, {"northwind-2023.pdf", "harbour-report.pdf"});
        QCOMPARE(scope->itemText(1), QStringLiteral("2 selected documents"));
        panel.ask("What was reported?");
        QVERIFY(panel.isAnswering());
        QTRY_VERIFY_WITH_TIMEOUT(!panel.isAnswering(), 120000);
        QCOMPARE(panel.answers().size(), std::size_t{1});
        QVERIFY(!panel.answers().front().sources.empty());
        for (const app::Source& source : panel.answers().front().sources)
            QVERIFY(source.hit.doc_id == northwind_ || source.hit.doc_id == harbour_);
    }

    void summaryPointsLinkTheirPages() {
        ui::SummaryPanel panel(*worker_);
        panel.resize(900, 700);
        panel.show();
        QVERIFY(QTest::qWaitForWindowExposed(&panel));
        auto* button = panel.findChild<QPushButton*>("summarizeButton");
        QVERIFY(!button->isEnabled());
        panel.setSelectedDocument(harbour_, "harbour-report.pdf");
        QVERIFY(button->isEnabled());
        QSignalSpy pages(&panel, &ui::SummaryPanel::pageRequested);
        QTest::mouseClick(button, Qt::LeftButton);
        QVERIFY(panel.isSummarizing());
        QTRY_VERIFY_WITH_TIMEOUT(!panel.isSummarizing(), 180000);
        QVERIFY2(panel.summary().has_value(), qPrintable(panel.findChild<QLabel*>("summaryStatus")->text()));
        QVERIFY2(!panel.summary()->points.empty(), qPrintable(panel.findChild<QLabel*>("summaryStatus")->text()));
        QString href;
        QVERIFY(test::clickLink(panel.findChild<QTextBrowser*>("summaryPoints"), "page:", &href));
        QTRY_COMPARE(pages.size(), 1);
        QCOMPARE(pages.front().at(0).toLongLong(), harbour_);
        QCOMPARE(pages.front().at(1).toInt(), href.mid(5).toInt());
        QVERIFY(pages.front().at(1).toInt() >= 1 && pages.front().at(1).toInt() <= 2);
    }

    void aMissingModelIsAClearError() {
        ui::FolioSettings broken = settings_;
        broken.chatModel = work_.path() + "/no-such-model.gguf";
        ui::AssistantWorker worker(libraryDir_, broken);
        ui::AskPanel panel(worker);
        panel.ask("What was revenue?");
        QTRY_VERIFY_WITH_TIMEOUT(!panel.isAnswering(), 30000);
        const QString status = panel.findChild<QLabel*>("askStatus")->text();
        QVERIFY2(status.contains("no such file"), qPrintable(status));
        QVERIFY(panel.answers().empty());
    }

    // The settings keep "rerank" (greyed out) when the reranking model is
    // gone; asking then answers without it, as the dialog shows.
    void aRerankChoiceWithoutARerankerStillAnswers() {
        QVERIFY(QDir().mkpath(work_.path() + "/no-models"));
        qputenv("FOLIO_MODELS", (work_.path() + "/no-models").toUtf8());
        qunsetenv("FOLIO_RERANKER_MODEL");
        const auto restore = qScopeGuard([] { qunsetenv("FOLIO_MODELS"); });
        QVERIFY(app::Library::reranker_model_path().empty());
        ui::FolioSettings rerank = settings_;
        rerank.rerankSources = true;
        ui::AssistantWorker worker(libraryDir_, rerank);
        ui::AskPanel panel(worker);
        panel.ask("How many people did Northwind Traders employ?");
        QTRY_VERIFY_WITH_TIMEOUT(!panel.isAnswering(), 120000);
        QVERIFY2(panel.answers().size() == 1, qPrintable(panel.findChild<QLabel*>("askStatus")->text()));
        QVERIFY(!panel.answers().front().sources.empty());
    }

    // With the GPU chosen on a machine that has none, the ask says why
    // instead of answering on the CPU behind the user's back.
    void theGpuChoiceWithoutAGpuSaysWhy() {
        if (!folio::engine::detect_gpus().gpus.empty()) QSKIP("this machine has a GPU");
        ui::FolioSettings gpu = settings_;
        gpu.device = ui::ComputeDevice::Gpu;
        ui::AssistantWorker worker(libraryDir_, gpu);
        ui::AskPanel panel(worker);
        panel.ask("What was revenue?");
        QTRY_VERIFY_WITH_TIMEOUT(!panel.isAnswering(), 30000);
        const QString status = panel.findChild<QLabel*>("askStatus")->text();
        QVERIFY2(status.contains("cannot select GPU 0"), qPrintable(status));
        QVERIFY(panel.answers().empty());
    }

private:
    QTemporaryDir work_;
    QString libraryDir_;
    ui::FolioSettings settings_;
    qint64 northwind_ = 0, harbour_ = 0;
    std::unique_ptr<ui::AssistantWorker> worker_;
};

QTEST_MAIN(AskPanelTest)
#include "tst_ask_panel.moc"
