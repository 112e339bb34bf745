#pragma once
// Layout analysis for the chunker: a document's pages as a sequence of
// headings, paragraphs and tables in reading order, with running headers and
// footers taken out. Private to ingest/.

#include <string>
#include <string_view>
#include <vector>
#include "ingest/page.h"

namespace folio::ingest {

// Consecutive words of one page that sit on one text line:
// pages[page].words[first_word .. end_word).
struct TextLine {
    int page = 0;  // index into the pages vector (not the 1-based page number)
    int first_word = 0, end_word = 0;
    Box box;                   // union of the words' boxes; all zero when the page has no geometry
    float font_size = 0;       // points, the size most of its characters have; 0 when unknown
    float bold_share = 0;      // fraction of its characters set in bold, 0..1
    bool starts_block = false; // the extractor ended a block (or the page) before it
    bool has_geometry() const { return box.x1 > box.x0 || box.y1 > box.y0; }
};

struct TableRow {
    std::vector<std::string> cells;  // one per column, "" where the row has nothing there
    int page = 0;                    // index into the pages vector
    Box box;                         // union of the row's words
};

struct Table {
    // Column headings, one per column: a heading stacked over several lines
    // ("Total Number" / "of Shares" / "Purchased") is joined into one cell.
    // Empty when the table has no heading rows.
    std::vector<std::string> header;
    std::vector<TableRow> header_lines;  // the heading lines as printed, for their boxes
    std::vector<TableRow> rows;          // body rows, top to bottom
};

enum class LayoutItemKind { Heading, Paragraph, Table };

struct LayoutItem {
    LayoutItemKind kind = LayoutItemKind::Paragraph;
    std::vector<TextLine> lines;  // Heading, Paragraph: in reading order; a paragraph may run onto the next page
    int level = 0;                // Heading: 1 is the outermost (PART, Markdown '#')
    std::string title;            // Heading: its text, without Markdown '#'s or a trailing ':'
    Table table;                  // Table
};

// Pages in document order, words in reading order. Deterministic.
std::vector<LayoutItem> analyze_layout(const std::vector<Page>& pages);

// The words of `line` as printed: joined by a space unless space_after is false.
std::string line_text(const std::vector<Page>& pages, const TextLine& line);

// `text` without the closing quotes and brackets that may follow a
// sentence's final mark: "growth.)" → "growth.".
std::string_view strip_closing_marks(std::string_view text);

// A Word's size for layout purposes: its font size, else its box height
// (OCR estimates font size from the box, plain text has neither).
float word_em(const Word& word);

}  // namespace folio::ingest
