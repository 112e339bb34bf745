// Summarizer (app/summarize.h): citation parsing and grounding on their
// own, then whole summaries by the installed chat model (SmolLM2-135M-
// Instruct, installer/fetch-models.sh; CI has it) over documents put
// straight into a store: one pass for a short one, sections and merges for
// a long one read through a small context.

#include <QTemporaryDir>
#include <QTest>

#include <algorithm>
#include <atomic>
#include <memory>
#include <set>

#include "app/chat_model.h"
#include "app/summarize.h"
#include "engine/model_paths.h"
#include "index/library_store.h"

using namespace folio;
using app::PointEvidence;
using app::SummarizeProgress;
using app::SummarizeStage;
using app::SummaryPoint;

namespace {

// A page per topic of a made-up harbour company's annual report, each with
// words no other page has, so that grounding can tell the pages apart.
const char* const kTopics[] = {
    "Container volume at the Rotterdam terminal rose to 4.2 million units, driven by Asian imports.",
    "Revenue grew 12 percent to 830 million euros, mostly from longer storage contracts.",
    "The dredging programme deepened the western channel to 17 metres for larger vessels.",
    "Fuel costs fell after the tugboat fleet switched to hybrid electric engines.",
    "A cyber attack in March stopped crane scheduling software for two days.",
    "The board approved a dividend of 1.40 euros per share, paid in June.",
    "Rail freight to Germany doubled after the new Duisburg shuttle service opened.",
    "Employee headcount reached 2,450, and apprenticeships trained 180 welders and electricians.",
    "Carbon emissions dropped 9 percent thanks to shore power for moored ships.",
    "Insurance claims from storm damage to warehouses cost 14 million euros.",
    "The company refinanced its bonds, extending maturities to 2031 at lower interest.",
    "Management expects container growth to slow next year because of weaker consumer demand.",
};

std::string page_text(const char* topic, int repeat) {
    std::string text;
    for (int i = 0; i < repeat; ++i)
        text += std::string(topic) + (i % 2 ? "\n\n" : " This was reported to shareholders in the annual review. ");
    return text;
}

std::int64_t put_document(index::LibraryStore& store, const std::string& path, const std::vector<std::string>& texts) {
    index::DocumentInput input{.path = path, .sha256 = path, .size = 1, .type = ingest::FileType::Pdf};
    for (std::size_t i = 0; i < texts.size(); ++i)
        input.pages.push_back({.number = static_cast<int>(i) + 1, .width = 612, .height = 792, .text = texts[i]});
    return store.put_document(input);
}

void verify_pages_exist(const std::vector<SummaryPoint>& points, int page_count) {
    for (const SummaryPoint& point : points) {
        QVERIFY2(!point.pages.empty(), point.text.c_str());
        QVERIFY(std::is_sorted(point.pages.begin(), point.pages.end()));
        for (const int page : point.pages) QVERIFY2(page >= 1 && page <= page_count, point.text.c_str());
    }
}

}  // namespace

class SummarizeTest : public QObject {
    Q_OBJECT

    QTemporaryDir dir_;
    std::unique_ptr<index::LibraryStore> store_;
    std::string model_path_;
    std::unique_ptr<app::ChatModel> model_;        // its full 8k context
    std::unique_ptr<app::ChatModel> small_model_;  // 1024 tokens: a dozen short pages no longer fit
    std::int64_t short_doc_ = 0, long_doc_ = 0;

private slots:
    void initTestCase() {
        QVERIFY(dir_.isValid());
        store_ = index::LibraryStore::open(dir_.path().toStdString());
        const auto model = engine::find_default_model(engine::ModelRole::Chat);
        QVERIFY2(model, "no chat model installed: run installer/fetch-models.sh (CI must have it)");
        model_path_ = *model;
        model_ = std::make_unique<app::ChatModel>(app::ChatModelOptions{.path = model_path_, .cache_budget_bytes = 0});
        small_model_ = std::make_unique<app::ChatModel>(
            app::ChatModelOptions{.path = model_path_, .context_tokens = 1024, .cache_budget_bytes = 0});

        short_doc_ = put_document(*store_, "/docs/short.pdf", {page_text(kTopics[0], 2), page_text(kTopics[1], 2)});
        std::vector<std::string> pages;
        for (const char* topic : kTopics) pages.push_back(page_text(topic, 3));
        pages[6] = page_text(kTopics[6], 48);  // longer than a section: split, not cut
        long_doc_ = put_document(*store_, "/docs/long.pdf", pages);
    }

    void citationsAreParsedInTheirCommonForms() {
        const app::CitedLine one = app::parse_cited_line("- Revenue grew 12 percent (p. 2).");
        QCOMPARE(one.text, std::string("Revenue grew 12 percent."));
        QCOMPARE(one.pages, std::vector<int>{2});
        QCOMPARE(app::parse_cited_line("* **Dredging** deepened the channel (pp. 3-5)").pages,
                 (std::vector<int>{3, 4, 5}));
        QCOMPARE(app::parse_cited_line("2. [p. 7] Rail freight doubled (page 7, 9; p. 12)").pages,
                 (std::vector<int>{7, 9, 12}));
        QCOMPARE(app::parse_cited_line("2. [p. 7] Rail freight doubled (page 7, 9; p. 12)").text,
                 std::string("Rail freight doubled"));
        QCOMPARE(app::parse_cited_line("Costs fell (Pages 4 and 6)").pages, (std::vector<int>{4, 6}));
        QCOMPARE(app::parse_cited_line("Costs fell (pp. 4–6)").pages, (std::vector<int>{4, 5, 6}));
        QCOMPARE(app::parse_cited_line("• €5 million of costs").text, std::string("€5 million of costs"));
        // Parentheses that are not citations stay in the text.
        const app::CitedLine none = app::parse_cited_line("- Headcount reached 2,450 (up 5%)");
        QCOMPARE(none.text, std::string("Headcount reached 2,450 (up 5%)"));
        QVERIFY(none.pages.empty());
        QCOMPARE(app::format_pages(std::vector<int>{3, 5, 6, 7, 9}), std::string("(p. 3, 5-7, 9)"));
    }

    // Cited pages are kept when they hold the point's words, replaced by the
    // page that holds most of them when they do not or do not exist; points
    // found nowhere are dropped, repeats merged, a cut-off last line left out.
    void pointsAreGroundedInTheirEvidence() {
        const std::string page3 = std::string(kTopics[2]) + " " + kTopics[1];
        const std::vector<PointEvidence> evidence = {
            {kTopics[0], {1}}, {kTopics[1], {2}}, {page3, {3}}, {kTopics[3], {4}}};
        const std::string reply =
            "- Revenue grew 12 percent to 830 million euros (p. 2)\n"
            "- Container volume at Rotterdam rose to 4.2 million units (p. 40)\n"
            "- Dredging deepened the western channel to 17 metres (pp. 1, 3)\n"
            "- Fuel costs fell after the tugboat fleet switched to hybrid engines (p. 2)\n"
            "- Quarterly sales of frozen pizza surged in Brazil (p. 1)\n"
            "- Revenue grew 12 percent, to 830 million euros (pp. 3-4)\n"
            "Here are the points:\n"
            "- Fuel costs fell after the";
        int dropped = 0;
        const std::vector<SummaryPoint> points = app::ground_points(reply, evidence, true, &dropped);
        QCOMPARE(points.size(), std::size_t{4});
        QCOMPARE(points[0].text, std::string("Revenue grew 12 percent to 830 million euros"));
        QCOMPARE(points[0].pages, (std::vector<int>{2, 3}));  // its repeat's page joined, page 4 not
        QVERIFY(!points[0].pages_inferred);
        QCOMPARE(points[1].pages, std::vector<int>{1});       // there is no page 40
        QVERIFY(points[1].pages_inferred);
        QCOMPARE(points[2].pages, std::vector<int>{3});       // page 1 does not say it
        QVERIFY(!points[2].pages_inferred);
        QCOMPARE(points[3].pages, std::vector<int>{4});       // page 2 does not say it
        QVERIFY(points[3].pages_inferred);
        QCOMPARE(dropped, 1);                                 // the pizza
        // Not cut off, the last line is a point.
        QCOMPARE(app::ground_points(reply, evidence, false, &dropped).size(), std::size_t{5});
    }

    // A small model may write its points on one line, numbered inline
    // ("5 points: 1. A; 2. B (p. 2)"): each numbered item is a point.
    void inlineNumberedPointsAreSplit() {
        const std::vector<PointEvidence> evidence = {{kTopics[0], {1}}, {kTopics[1], {2}}};
        const std::string reply =
            "- 2 bullet points: 1. Revenue grew 12 percent to 830 million euros; "
            "2. Container volume at Rotterdam rose to 4.2 million units (p. 2)\n";
        int dropped = 0;
        const std::vector<SummaryPoint> points = app::ground_points(reply, evidence, false, &dropped);
        QCOMPARE(points.size(), std::size_t{2});
        QCOMPARE(points[0].text, std::string("Revenue grew 12 percent to 830 million euros"));
        QCOMPARE(points[1].text, std::string("Container volume at Rotterdam rose to 4.2 million units"));
        QCOMPARE(points[1].pages, std::vector<int>{1});
        QCOMPARE(dropped, 0);
        // Numbers inside a sentence are not a list.
        const std::string figures = "- Volume rose from 3. 5 to 4. 2 million units (p. 1)\n";
        QCOMPARE(app::ground_points(figures, evidence, false, &dropped).size(), std::size_t{1});
    }

    void shortDocumentIsOnePass() {
        std::vector<SummarizeProgress> progress;
        app::Summarizer summarizer(*model_, {.progress = [&](const SummarizeProgress& p) { progress.push_back(p); }});
        const app::Summary summary = summarizer.summarize(*store_, short_doc_);
        QCOMPARE(summary.path, std::string("/docs/short.pdf"));
        QCOMPARE(summary.pages, 2);
        QVERIFY(summary.single_pass);
        QCOMPARE(summary.sections, 1);
        QCOMPARE(summary.merge_rounds, 0);
        QCOMPARE(summary.timings.sections.calls, 1);
        QCOMPARE(summary.timings.merging.calls, 0);
        QVERIFY(summary.timings.sections.prompt_tokens > 0 && summary.timings.sections.generated_tokens > 0);
        QVERIFY2(!summary.points.empty(), app::format_points(summary.points).c_str());
        verify_pages_exist(summary.points, 2);
        QCOMPARE(progress.size(), std::size_t{2});
        QCOMPARE(progress.back().done, 1);
        QCOMPARE(progress.back().first_page, 1);
        QCOMPARE(progress.back().last_page, 2);
    }

    // Through a 1024-token context: every page is read in some section (the
    // long page 7 in several), the sections' points are merged, and every
    // point cites pages of the document.
    void longDocumentIsMappedAndReduced() {
        std::vector<SummarizeProgress> progress;
        const auto record = [&](const SummarizeProgress& p) { progress.push_back(p); };
        app::Summarizer summarizer(*small_model_, {.points = 3, .point_tokens = 40, .progress = record});
        const app::Summary summary = summarizer.summarize(*store_, long_doc_);
        QVERIFY(!summary.single_pass);
        QVERIFY2(summary.sections >= 3, qPrintable(QString::number(summary.sections)));
        QVERIFY(summary.merge_rounds >= 1);
        QVERIFY(summary.timings.merging.calls >= 1);
        QVERIFY(!summary.cancelled);

        std::vector<int> read(13, 0);  // how many sections covered each page
        int sections_done = 0, page7_sections = 0;
        for (const SummarizeProgress& p : progress) {
            if (p.stage != SummarizeStage::Sections || p.done == 0) continue;
            QCOMPARE(p.done, ++sections_done);
            QCOMPARE(p.total, summary.sections);
            QVERIFY(p.first_page <= p.last_page);
            for (int page = p.first_page; page <= p.last_page; ++page) ++read[page];
            page7_sections += p.first_page <= 7 && 7 <= p.last_page;
        }
        QCOMPARE(sections_done, summary.sections);
        for (int page = 1; page <= 12; ++page) QVERIFY2(read[page] >= 1, qPrintable(QString::number(page)));
        QVERIFY(page7_sections >= 2);
        QVERIFY(std::any_of(progress.begin(), progress.end(),
                            [](const SummarizeProgress& p) { return p.stage == SummarizeStage::Merging; }));

        QVERIFY2(!summary.points.empty(), app::format_points(summary.points).c_str());
        verify_pages_exist(summary.points, 12);
    }

    void cancelStopsBetweenSections() {
        std::atomic<bool> cancel{false};
        int sections_done = 0;
        app::Summarizer summarizer(*small_model_, {.points = 3,
                                                   .point_tokens = 40,
                                                   .cancel = &cancel,
                                                   .progress = [&](const SummarizeProgress& p) {
                                                       if (p.stage == SummarizeStage::Sections && p.done > 0) {
                                                           ++sections_done;
                                                           cancel = true;
                                                       }
                                                   }});
        const app::Summary summary = summarizer.summarize(*store_, long_doc_);
        QVERIFY(summary.cancelled);
        QVERIFY(summary.points.empty());
        QCOMPARE(sections_done, 1);
        QCOMPARE(summary.timings.sections.calls, 1);
        QCOMPARE(summary.timings.merging.calls, 0);
    }

    void documentsWithoutTextAreRefused() {
        app::Summarizer summarizer(*model_, {});
        QVERIFY_THROWS_EXCEPTION(app::SummarizeError, summarizer.summarize(*store_, 9999));
        const std::int64_t blank = put_document(*store_, "/docs/blank.pdf", {"", "  \n "});
        QVERIFY_THROWS_EXCEPTION(app::SummarizeError, summarizer.summarize(*store_, blank));
        const std::int64_t failed = store_->put_document({.path = "/docs/failed.pdf", .error = "not a PDF"});
        QVERIFY_THROWS_EXCEPTION(app::SummarizeError, summarizer.summarize(*store_, failed));
    }

    void contextTooSmallIsRefused() {
        app::ChatModel tiny({.path = model_path_, .context_tokens = 256, .cache_budget_bytes = 0});
        QVERIFY_THROWS_EXCEPTION(app::SummarizeError, app::Summarizer(tiny, {}));
    }
};

QTEST_GUILESS_MAIN(SummarizeTest)
#include "tst_summarize.moc"
