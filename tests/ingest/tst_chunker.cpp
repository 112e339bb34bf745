#include <QElapsedTimer>
#include <QtTest>

#include <algorithm>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "ingest/chunker.h"
#include "ingest/pdf_document.h"

using namespace folio::ingest;

namespace {

// Lays words out the way a text layer reports them: a character is 0.5 em
// wide, words are 0.25 em apart, a line is 1.2 em below the one before, and
// boxes are in points from the top-left corner of a US Letter page.
class PageBuilder {
public:
    explicit PageBuilder(int number) {
        page_.number = number;
        page_.width = 612;
        page_.height = 792;
    }

    // One printed line with its top at y; returns its box.
    Box line(const std::string& text, float x, float y, float size = 10, bool bold = false) {
        std::istringstream words(text);
        std::string word;
        float cursor = x;
        Box box{x, y, x, y + size};
        while (words >> word) {
            Word w;
            w.text = word;
            w.box = {cursor, y, cursor + 0.5f * size * static_cast<float>(word.size()), y + size};
            w.font_size = size;
            w.bold = bold;
            w.confidence = page_.ocr ? 90.0f : -1.0f;
            cursor = w.box.x1 + 0.25f * size;
            box.x1 = w.box.x1;
            page_.words.push_back(w);
        }
        page_.words.back().line_end = true;
        return box;
    }

    void end_block() { page_.words.back().block_end = true; }

    // A block of text wrapped at `width` points; returns the y below it and
    // appends each line's box to `boxes`.
    float paragraph(const std::string& text, float x, float y, float width = 500, float size = 10,
                    std::vector<Box>* boxes = nullptr) {
        std::istringstream words(text);
        std::string word, current;
        const auto flush = [&] {
            const Box box = line(current, x, y, size);
            if (boxes) boxes->push_back(box);
            y += 1.2f * size;
            current.clear();
        };
        while (words >> word) {
            const std::string candidate = current.empty() ? word : current + " " + word;
            if (!current.empty() && 0.5f * size * static_cast<float>(candidate.size()) > width) flush();
            current = current.empty() ? word : current + " " + word;
        }
        if (!current.empty()) flush();
        end_block();
        return y + 0.8f * size;  // paragraph spacing
    }

    // A table row: each cell's text starting at its x, all on one line.
    void row(const std::vector<std::pair<float, std::string>>& cells, float y, float size = 10) {
        for (const auto& [x, text] : cells) line(text, x, y, size);
        for (size_t i = page_.words.size() - 1; i > 0 && page_.words[i - 1].box.y0 == y; --i)
            page_.words[i - 1].line_end = false;
    }

    void set_ocr() { page_.ocr = true; }

    Page build() {
        if (!page_.words.empty()) page_.words.back().block_end = page_.words.back().line_end = true;
        for (size_t i = 0; i < page_.words.size(); ++i) {
            const Word& word = page_.words[i];
            page_.text += word.text;
            if (i + 1 == page_.words.size()) break;
            page_.text += word.block_end ? "\n\n" : word.line_end ? "\n" : " ";
        }
        return page_;
    }

private:
    Page page_;
};

// A page of plain text or Markdown as a text file reader gives it: words
// without boxes, a line break per line, a block break at each blank line.
Page text_page(int number, const std::string& text) {
    Page page;
    page.number = number;
    page.text = text;
    std::istringstream lines(text);
    std::string line;
    while (std::getline(lines, line)) {
        std::istringstream words(line);
        std::string word;
        bool any = false;
        while (words >> word) {
            Word w;
            w.text = word;
            page.words.push_back(w);
            any = true;
        }
        if (any) page.words.back().line_end = true;
        else if (!page.words.empty()) page.words.back().block_end = true;
    }
    if (!page.words.empty()) page.words.back().block_end = true;
    return page;
}

// Deterministic prose: sentence i of about 20 words and 25 tokens. Its
// words vary with i, not only its figures: lines that differ only in their
// figures and recur at the top of every page are what a running header is.
std::string sentence(int i) {
    static const char* const subjects[] = {"Revenue", "Backlog", "Demand", "Output", "Pricing", "Volume", "Margin"};
    static const char* const regions[] = {"northern", "coastal", "western", "inland", "southern"};
    return std::string(subjects[i % 7]) + " in segment " + std::to_string(i) + " grew by " + std::to_string(3 * i + 1) +
           " percent as demand for industrial products increased across the " + regions[i % 5] + " and central regions.";
}

std::string prose(int first, int count) {
    std::string text;
    for (int i = first; i < first + count; ++i) text += (text.empty() ? "" : " ") + sentence(i);
    return text;
}

bool contains(const std::string& text, const std::string& part) { return text.find(part) != std::string::npos; }

const Chunk* chunk_containing(const std::vector<Chunk>& chunks, const std::string& part) {
    for (const Chunk& chunk : chunks)
        if (contains(chunk.text, part)) return &chunk;
    return nullptr;
}

int count_containing(const std::vector<Chunk>& chunks, const std::string& part) {
    return static_cast<int>(std::count_if(chunks.begin(), chunks.end(),
                                          [&](const Chunk& chunk) { return contains(chunk.text, part); }));
}

std::vector<std::string> split_lines(const std::string& text) {
    std::vector<std::string> lines;
    std::istringstream stream(text);
    std::string line;
    while (std::getline(stream, line)) lines.push_back(line);
    return lines;
}

// An income statement: label column and two columns of figures with $ signs
// and parentheses printed apart from the digits, as in a 10-K.
float add_income_statement(PageBuilder& page, float y, int rows) {
    page.row({{330, "2023"}, {450, "2022"}}, y);
    y += 14;
    for (int r = 0; r < rows; ++r) {
        const std::string label = r == 0 ? "Net sales" : "Operating line item " + std::to_string(r);
        const std::string current = std::to_string(1000 + 37 * r) + "," + std::to_string(100 + r);
        const std::string prior = "(" + std::to_string(900 + 11 * r) + "," + std::to_string(200 + r) + ")";
        if (r == 0) page.row({{72, label}, {310, "$"}, {330, current}, {430, "$"}, {450, prior}}, y);
        else page.row({{72, label}, {330, current}, {450, prior}}, y);
        y += 12;
    }
    page.end_block();
    return y + 20;
}

std::string apple_pages_path() { return std::string(FOLIO_TEST_DATA) + "/chunker/apple_2021_10k_p20-24.pdf"; }

std::vector<Page> apple_pages() {
    const PdfDocument document = PdfDocument::open(apple_pages_path());
    std::vector<Page> pages;
    for (int p = 1; p <= document.page_count(); ++p) pages.push_back(document.text_layer(p));
    return pages;
}

}  // namespace

class TestChunker : public QObject {
    Q_OBJECT

private slots:
    void estimateTokensMatchesBpeCounts_data();
    void estimateTokensMatchesBpeCounts();
    void estimateTokensProseRule();
    void repeatedHeadersAndFootersRemoved();
    void shortDocumentKeepsMarginLines();
    void tableKeptWholeWithHeader();
    void longTableSplitBetweenRowsWithHeader();
    void pageWithOnlyTable();
    void headingPathFromFilingStructure();
    void headingPathFromClinicalLabels();
    void markdownHeadings();
    void chunkSpansPages();
    void tokenTargetRespected();
    void overlapCarriesTrailingSentences();
    void boxesCoverTheChunksLines();
    void dehyphenatesSplitWords();
    void emptyPages();
    void deterministic();
    void realFiling();
    void largeDocumentIsFast();
};

// Reference counts from OpenAI's cl100k_base tokenizer.
void TestChunker::estimateTokensMatchesBpeCounts_data() {
    QTest::addColumn<QString>("text");
    QTest::addColumn<int>("bpe");
    QTest::newRow("prose") << QString::fromUtf8("The Company’s stock has experienced substantial price volatility in "
                                                "the past and may continue to do so in the future.")
                           << 22;
    QTest::newRow("table row") << QStringLiteral("Total net sales | $365,817 | 33% | $274,515 | 6% | $260,174") << 26;
    QTest::newRow("clinical") << QStringLiteral("CHIEF COMPLAINT: Chest pain radiating to the left arm for three days.")
                              << 20;
    QTest::newRow("chinese") << QString::fromUtf8("患者主诉胸痛三天，伴有呼吸困难。") << 27;
    QTest::newRow("figure") << QStringLiteral("191,973") << 3;
}

void TestChunker::estimateTokensMatchesBpeCounts() {
    QFETCH(QString, text);
    QFETCH(int, bpe);
    const int estimate = estimate_tokens(text.toStdString());
    QVERIFY2(std::abs(estimate - bpe) <= std::max(1, bpe / 5),
             qPrintable(QStringLiteral("estimate %1, cl100k_base %2").arg(estimate).arg(bpe)));
}

void TestChunker::estimateTokensProseRule() {
    QCOMPARE(estimate_tokens(""), 0);
    QCOMPARE(estimate_tokens("   \t "), 0);
    // About 1.3 tokens a word on prose; figures and punctuation count more.
    const std::string text = prose(0, 10);
    const auto words = static_cast<double>(std::count(text.begin(), text.end(), ' ') + 1);
    const double per_word = estimate_tokens(text) / words;
    QVERIFY2(per_word > 1.05 && per_word < 1.5, qPrintable(QString::number(per_word)));
    QVERIFY(estimate_tokens("1,234,567.89") > estimate_tokens("revenue"));
}

void TestChunker::repeatedHeadersAndFootersRemoved() {
    std::vector<Page> pages;
    for (int n = 1; n <= 5; ++n) {
        PageBuilder page(n);
        page.line("ACME Holdings | Annual Report 2023", 200, 30, 8);
        page.end_block();
        if (n == 3) {
            page.line("Preliminary draft subject to revision", 72, 48, 8);
            page.end_block();
        }
        page.paragraph(prose(10 * n, 6), 72, 90);
        page.line("ACME Holdings | 2023 Form 10-K | " + std::to_string(n + 40), 220, 740, 8);
        page.end_block();
        page.line("Page " + std::to_string(n), 290, 755, 8);
        pages.push_back(page.build());
    }
    const std::vector<Chunk> chunks = chunk_pages(pages);
    QVERIFY(!chunks.empty());
    QCOMPARE(count_containing(chunks, "Annual Report"), 0);
    QCOMPARE(count_containing(chunks, "Form 10-K"), 0);
    QCOMPARE(count_containing(chunks, "Page "), 0);
    QCOMPARE(count_containing(chunks, "Preliminary draft subject to revision"), 1);
    for (int n = 1; n <= 5; ++n) QCOMPARE(count_containing(chunks, sentence(10 * n)), 1);
}

void TestChunker::shortDocumentKeepsMarginLines() {
    std::vector<Page> pages;
    for (int n = 1; n <= 2; ++n) {
        PageBuilder page(n);
        page.line("ACME Holdings | Annual Report 2023", 200, 30, 8);
        page.end_block();
        page.paragraph(prose(10 * n, 3), 72, 90);
        pages.push_back(page.build());
    }
    QCOMPARE(count_containing(chunk_pages(pages), "Annual Report 2023"), 2);
}

void TestChunker::tableKeptWholeWithHeader() {
    PageBuilder page(1);
    float y = page.paragraph(prose(0, 3), 72, 60);
    y = add_income_statement(page, y, 12);
    page.paragraph(prose(3, 3), 72, y);
    ChunkOptions options;
    options.target_tokens = 60;  // smaller than the table: a table is not cut to the prose target
    const std::vector<Chunk> chunks = chunk_pages({page.build()}, options);

    const auto tables = std::count_if(chunks.begin(), chunks.end(), [](const Chunk& c) { return c.table; });
    QCOMPARE(tables, 1);
    const Chunk& table = *std::find_if(chunks.begin(), chunks.end(), [](const Chunk& c) { return c.table; });
    QVERIFY(table.token_count > options.target_tokens);
    const std::vector<std::string> lines = split_lines(table.text);
    QCOMPARE(lines.size(), size_t(13));
    QCOMPARE(lines[0], std::string("| 2023 | 2022"));
    QCOMPARE(lines[1], std::string("Net sales | $1000,100 | $(900,200)"));
    for (int r = 1; r < 12; ++r) {
        const std::string row = "Operating line item " + std::to_string(r) + " | " + std::to_string(1000 + 37 * r) +
                                "," + std::to_string(100 + r) + " | (" + std::to_string(900 + 11 * r) + "," +
                                std::to_string(200 + r) + ")";
        QCOMPARE(lines[static_cast<size_t>(r) + 1], row);
    }
    QCOMPARE(table.boxes.size(), size_t(13));  // one per printed row
    QCOMPARE(count_containing(chunks, "Operating line item"), 1);
    QCOMPARE(table.page_start, 1);
    QCOMPARE(table.page_end, 1);
    // The prose around it is intact and outside the table.
    QVERIFY(chunk_containing(chunks, sentence(0)) != &table);
    QVERIFY(chunk_containing(chunks, sentence(5)) != nullptr);
}

void TestChunker::longTableSplitBetweenRowsWithHeader() {
    PageBuilder page(1);
    add_income_statement(page, 60, 55);
    ChunkOptions options;
    options.max_table_tokens = 200;
    const std::vector<Chunk> chunks = chunk_pages({page.build()}, options);
    QVERIFY(chunks.size() >= 3);
    std::set<std::string> rows_seen;
    for (const Chunk& chunk : chunks) {
        QVERIFY(chunk.table);
        QVERIFY2(chunk.token_count <= options.max_table_tokens, qPrintable(QString::number(chunk.token_count)));
        const std::vector<std::string> lines = split_lines(chunk.text);
        QCOMPARE(lines.front(), std::string("| 2023 | 2022"));
        QVERIFY(lines.size() >= 2);
        for (size_t l = 1; l < lines.size(); ++l) {
            // Every row whole: label, current year, prior year.
            QCOMPARE(std::count(lines[l].begin(), lines[l].end(), '|'), 2);
            QVERIFY(lines[l].back() == ')');
            QVERIFY2(rows_seen.insert(lines[l]).second, lines[l].c_str());
        }
        QCOMPARE(chunk.boxes.size(), lines.size());
    }
    QCOMPARE(rows_seen.size(), size_t(55));
}

void TestChunker::pageWithOnlyTable() {
    PageBuilder page(7);
    add_income_statement(page, 100, 5);
    const std::vector<Chunk> chunks = chunk_pages({page.build()});
    QCOMPARE(chunks.size(), size_t(1));
    QVERIFY(chunks[0].table);
    QCOMPARE(chunks[0].page_start, 7);
    QCOMPARE(chunks[0].page_end, 7);
    QCOMPARE(split_lines(chunks[0].text).size(), size_t(6));
}

void TestChunker::headingPathFromFilingStructure() {
    PageBuilder first(1);
    first.line("PART II", 72, 60, 12, true);
    first.end_block();
    first.line("Item 7. Management's Discussion and Analysis", 72, 90, 11, true);
    first.end_block();
    float y = first.paragraph(prose(0, 12), 72, 115);
    first.line("Liquidity and Capital Resources", 72, y, 10, true);
    first.end_block();
    first.paragraph(prose(12, 10), 72, y + 20);
    PageBuilder second(2);
    second.line("Item 7A. Quantitative and Qualitative Disclosures About Market Risk", 72, 60, 11, true);
    second.end_block();
    second.paragraph(prose(30, 6), 72, 85);
    const std::vector<Chunk> chunks = chunk_pages({first.build(), second.build()});

    const Chunk* opening = chunk_containing(chunks, sentence(0));
    QVERIFY(opening);
    QCOMPARE(opening->heading_path, std::string("PART II > Item 7. Management's Discussion and Analysis"));
    const Chunk* liquidity = chunk_containing(chunks, sentence(14));
    QVERIFY(liquidity);
    QCOMPARE(liquidity->heading_path,
             std::string("PART II > Item 7. Management's Discussion and Analysis > Liquidity and Capital Resources"));
    // A new level-2 heading replaces the last one and everything under it.
    const Chunk* market_risk = chunk_containing(chunks, sentence(31));
    QVERIFY(market_risk);
    QCOMPARE(market_risk->heading_path,
             std::string("PART II > Item 7A. Quantitative and Qualitative Disclosures About Market Risk"));
    // No chunk crosses from Item 7 into Item 7A.
    for (const Chunk& chunk : chunks)
        QVERIFY(!(contains(chunk.text, sentence(21)) && contains(chunk.text, sentence(30))));
}

void TestChunker::headingPathFromClinicalLabels() {
    // A scanned note: OCR words, no font names, sizes from box heights.
    PageBuilder page(1);
    page.set_ocr();
    page.line("CHIEF COMPLAINT", 72, 60);
    page.end_block();
    float y = page.paragraph("Chest pain radiating to the left arm for three days. " + prose(0, 3), 72, 80);
    page.line("HISTORY OF PRESENT ILLNESS", 72, y);
    page.end_block();
    y = page.paragraph(prose(3, 4), 72, y + 20);
    y = page.paragraph("ASSESSMENT AND PLAN: Likely stable angina. Start aspirin and schedule a stress test. " +
                           prose(7, 3),
                       72, y);
    const std::vector<Chunk> chunks = chunk_pages({page.build()});

    const Chunk* complaint = chunk_containing(chunks, "Chest pain radiating");
    QVERIFY(complaint);
    QCOMPARE(complaint->heading_path, std::string("CHIEF COMPLAINT"));
    const Chunk* history = chunk_containing(chunks, sentence(4));
    QVERIFY(history);
    QCOMPARE(history->heading_path, std::string("HISTORY OF PRESENT ILLNESS"));
    const Chunk* plan = chunk_containing(chunks, "Start aspirin");
    QVERIFY(plan);
    QCOMPARE(plan->heading_path, std::string("ASSESSMENT AND PLAN"));
    QVERIFY(contains(plan->text, "ASSESSMENT AND PLAN\nLikely stable angina."));
}

void TestChunker::markdownHeadings() {
    const std::string text = "# Discharge Summary\n\n" + prose(0, 3) +
                             "\n\n## Hospital Course\n\n" + prose(3, 12) +
                             "\n\n### Cardiology\n\n" + prose(15, 12) +
                             "\n\n## Medications\n\n" + prose(27, 12) + "\n";
    const std::vector<Chunk> chunks = chunk_pages({text_page(1, text)});
    QVERIFY(!chunks.empty());
    QCOMPARE(chunk_containing(chunks, sentence(5))->heading_path, std::string("Discharge Summary > Hospital Course"));
    QCOMPARE(chunk_containing(chunks, sentence(20))->heading_path,
             std::string("Discharge Summary > Hospital Course > Cardiology"));
    QCOMPARE(chunk_containing(chunks, sentence(30))->heading_path, std::string("Discharge Summary > Medications"));
    QCOMPARE(count_containing(chunks, "#"), 0);
    for (const Chunk& chunk : chunks) {
        QVERIFY(chunk.boxes.empty());  // plain text has nothing to highlight
        QCOMPARE(chunk.page_start, 1);
    }
}

void TestChunker::chunkSpansPages() {
    PageBuilder first(1);
    first.paragraph(prose(0, 4) + " The outlook for the coming year depends on the pace at which", 72, 600);
    PageBuilder second(2);
    second.paragraph("interest rates decline and on the cost of raw materials. " + prose(4, 2), 72, 72);
    const std::vector<Chunk> chunks = chunk_pages({first.build(), second.build()});
    QCOMPARE(chunks.size(), size_t(1));
    QCOMPARE(chunks[0].page_start, 1);
    QCOMPARE(chunks[0].page_end, 2);
    // The paragraph continues across the break.
    QVERIFY(contains(chunks[0].text, "the pace at which interest rates decline"));
    QVERIFY(std::any_of(chunks[0].boxes.begin(), chunks[0].boxes.end(), [](const PageBox& b) { return b.page == 1; }));
    QVERIFY(std::any_of(chunks[0].boxes.begin(), chunks[0].boxes.end(), [](const PageBox& b) { return b.page == 2; }));
}

void TestChunker::tokenTargetRespected() {
    std::vector<Page> pages;
    static const char* const ordinals[] = {"", "first", "second", "third"};
    for (int n = 1; n <= 3; ++n) {
        PageBuilder page(n);
        float y = 60;
        for (int p = 0; p < 6; ++p) y = page.paragraph(prose(100 * n + 10 * p, 1 + (p * 3) % 7), 72, y);
        page.paragraph(std::string("This closes the ") + ordinals[n] + " page.", 72, y);
        pages.push_back(page.build());
    }
    ChunkOptions options;
    options.target_tokens = 120;
    options.overlap_tokens = 30;
    const std::vector<Chunk> chunks = chunk_pages(pages, options);
    QVERIFY(chunks.size() >= 5);
    int total = 0;
    for (const Chunk& chunk : chunks) {
        QVERIFY(!chunk.table);
        QVERIFY2(chunk.token_count <= options.target_tokens + 1, qPrintable(QString::number(chunk.token_count)));
        QCOMPARE(chunk.token_count, estimate_tokens(chunk.text));
        total += chunk.token_count;
    }
    QVERIFY2(total / static_cast<int>(chunks.size()) >= options.target_tokens / 2, "chunks are too small");
    // Every sentence is somewhere, never cut in the middle of a word.
    for (int n = 1; n <= 3; ++n)
        for (int p = 0; p < 6; ++p) QVERIFY(chunk_containing(chunks, sentence(100 * n + 10 * p)));
}

void TestChunker::overlapCarriesTrailingSentences() {
    PageBuilder page(1);
    page.paragraph(prose(0, 30), 72, 60);
    ChunkOptions options;
    options.target_tokens = 150;
    options.overlap_tokens = 40;
    const std::vector<Chunk> chunks = chunk_pages({page.build()}, options);
    QVERIFY(chunks.size() >= 4);
    for (size_t i = 1; i < chunks.size(); ++i) {
        const std::string& before = chunks[i - 1].text;
        const std::string& after = chunks[i].text;
        // The next chunk opens with the last sentence(s) of this one.
        size_t shared = std::min(before.size(), after.size());
        while (shared > 0 && before.compare(before.size() - shared, shared, after, 0, shared) != 0) --shared;
        QVERIFY2(shared > 0, qPrintable(QStringLiteral("no overlap into chunk %1").arg(i)));
        const std::string overlap = after.substr(0, shared);
        QVERIFY(overlap.back() == '.');
        QVERIFY(estimate_tokens(overlap) <= options.overlap_tokens);
    }
    options.overlap_tokens = 0;
    const std::vector<Chunk> without = chunk_pages({page.build()}, options);
    for (int s = 0; s < 30; ++s) QCOMPARE(count_containing(without, sentence(s)), 1);
}

void TestChunker::boxesCoverTheChunksLines() {
    PageBuilder page(3);
    std::vector<Box> line_boxes;
    page.paragraph(prose(0, 5), 72, 100, 400, 10, &line_boxes);
    const std::vector<Chunk> chunks = chunk_pages({page.build()});
    QCOMPARE(chunks.size(), size_t(1));
    QCOMPARE(chunks[0].boxes.size(), line_boxes.size());
    for (size_t i = 0; i < line_boxes.size(); ++i) {
        const PageBox& box = chunks[0].boxes[i];
        QCOMPARE(box.page, 3);
        QCOMPARE(box.box.x0, line_boxes[i].x0);
        QCOMPARE(box.box.y0, line_boxes[i].y0);
        QCOMPARE(box.box.x1, line_boxes[i].x1);
        QCOMPARE(box.box.y1, line_boxes[i].y1);
    }
}

void TestChunker::dehyphenatesSplitWords() {
    PageBuilder page(1);
    page.line("For instance the exam-", 72, 100);
    page.line("ple shows that the COVID-", 72, 112);
    page.line("19 pandemic affected the well known supply chain.", 72, 124);
    const std::vector<Chunk> chunks = chunk_pages({page.build()});
    QCOMPARE(chunks.size(), size_t(1));
    QCOMPARE(chunks[0].text, std::string("For instance the example shows that the COVID-19 pandemic affected the well "
                                         "known supply chain."));
}

void TestChunker::emptyPages() {
    QVERIFY(chunk_pages({}).empty());
    Page blank;
    blank.number = 1;
    Page failed;
    failed.number = 2;
    failed.error = "cannot render page 2";
    QVERIFY(chunk_pages({blank, failed}).empty());
    PageBuilder page(3);
    page.paragraph(prose(0, 2), 72, 100);
    const std::vector<Chunk> chunks = chunk_pages({blank, failed, page.build()});
    QCOMPARE(chunks.size(), size_t(1));
    QCOMPARE(chunks[0].page_start, 3);
    QCOMPARE(chunks[0].ordinal, 0);
}

void TestChunker::deterministic() {
    const std::vector<Page> pages = apple_pages();
    const std::vector<Chunk> first = chunk_pages(pages);
    const std::vector<Chunk> second = chunk_pages(pages);
    QCOMPARE(first.size(), second.size());
    for (size_t i = 0; i < first.size(); ++i) {
        QCOMPARE(first[i].text, second[i].text);
        QCOMPARE(first[i].heading_path, second[i].heading_path);
        QCOMPARE(first[i].boxes.size(), second[i].boxes.size());
    }
}

// Apple's 2021 Form 10-K, pages 20-24: the end of Part I, Part II Items 5-7,
// two tables Poppler reads column by column, a footer on every page.
void TestChunker::realFiling() {
    const std::vector<Page> pages = apple_pages();
    QCOMPARE(pages.size(), size_t(5));
    const std::vector<Chunk> chunks = chunk_pages(pages);
    QVERIFY(chunks.size() >= 8);

    QCOMPARE(count_containing(chunks, "2021 Form 10-K |"), 0);  // "Apple Inc. | 2021 Form 10-K | 17" .. 21
    QCOMPARE(count_containing(chunks, "Not applicable."), 1);

    const Chunk* sales = chunk_containing(chunks, "191,973");
    QVERIFY(sales);
    QVERIFY(sales->table);
    QCOMPARE(sales->page_start, 5);  // page 24 of the filing
    const std::vector<std::string> rows = split_lines(sales->text);
    QCOMPARE(rows.front(), std::string("| 2021 | Change | 2020 | Change | 2019"));
    QVERIFY(std::find(rows.begin(), rows.end(), "iPhone (1) | $191,973 | 39% | $137,781 | (3)% | $142,381") != rows.end());
    QVERIFY(std::find(rows.begin(), rows.end(), "Total net sales | $365,817 | 33% | $274,515 | 6% | $260,174") != rows.end());
    QCOMPARE(count_containing(chunks, "68,425"), 1);

    const Chunk* repurchases = chunk_containing(chunks, "141,521");
    QVERIFY(repurchases);
    QVERIFY(repurchases->table);
    QVERIFY(contains(split_lines(repurchases->text).front(), "Average Price Paid Per Share"));

    const Chunk* covid = chunk_containing(chunks, "has had, and continues to have");
    QVERIFY(covid);
    QVERIFY2(covid->heading_path.rfind(
                 "PART II > Item 7. Management\u2019s Discussion and Analysis of Financial Condition and Results of "
                 "Operations",
                 0) == 0,
             covid->heading_path.c_str());
    const Chunk* epic = chunk_containing(chunks, "Epic appealed the decision");
    QVERIFY(epic);
    QVERIFY2(epic->heading_path.rfind("Item 3. Legal Proceedings", 0) == 0, epic->heading_path.c_str());

    for (const Chunk& chunk : chunks) {
        QVERIFY(!chunk.boxes.empty());
        for (const PageBox& box : chunk.boxes) {
            QVERIFY(box.page >= chunk.page_start && box.page <= chunk.page_end);
            QVERIFY(box.box.x0 < box.box.x1 && box.box.y0 < box.box.y1);
            QVERIFY(box.box.x1 <= 612 && box.box.y1 <= 792);
        }
        if (!chunk.table) QVERIFY(chunk.token_count <= ChunkOptions{}.target_tokens + 1);
    }
}

void TestChunker::largeDocumentIsFast() {
    std::vector<Page> pages;
    for (int n = 1; n <= 200; ++n) {
        PageBuilder page(n);
        page.line("ACME Holdings | Annual Report 2023", 200, 30, 8);
        page.end_block();
        float y = 60;
        for (int p = 0; p < 4; ++p) y = page.paragraph(prose(n * 40 + p * 8, 8), 72, y);
        add_income_statement(page, y, 10);
        page.line(std::to_string(n), 300, 760, 8);
        pages.push_back(page.build());
    }
    QElapsedTimer timer;
    timer.start();
    const std::vector<Chunk> chunks = chunk_pages(pages);
    const qint64 elapsed = timer.elapsed();
    QVERIFY(chunks.size() > 400);
    QCOMPARE(count_containing(chunks, "Annual Report"), 0);
    QVERIFY2(elapsed < 1000, qPrintable(QStringLiteral("%1 ms").arg(elapsed)));
}

QTEST_MAIN(TestChunker)
#include "tst_chunker.moc"
