#pragma once
// How an extraction shows a document's pages and which it shows first.
// Internal to app/extract.cpp (and its tests).

#include <map>
#include <optional>
#include <string>
#include <vector>

#include "app/extract.h"
#include "app/grounding.h"
#include "index/library_store.h"

namespace folio::app {

// The pages as the chunker laid them out: headings, paragraphs, and tables
// as rows of cells ("Total net sales | 365,817 | 274,515"), which a model
// reads far better than the order Poppler gives a table in (often column by
// column). A chunk is listed on every page it covers; a text shows it once,
// with what a text chunk repeats of the one before it left out.
class LaidOutPages {
public:
    // pages[i] is page i + 1; chunks by ordinal.
    LaidOutPages(std::vector<index::StoredChunk> chunks, const std::vector<PageText>& pages);

    // The text of these pages (1-based, ascending), each headed "[page N]"
    // when `marked`. A page no chunk covers shows its stored text.
    std::string text(const std::vector<int>& numbers, bool marked = true) const;

private:
    std::vector<index::StoredChunk> chunks_;
    const std::vector<PageText>& pages_;
    std::vector<std::vector<std::size_t>> chunks_of_page_;
};

// Where a document has one of the key pages (KeyPage, extract.h): the
// 1-based number of the page that fits it best, when it holds at least
// three of its terms, then the pages before and after it that hold three
// too (a statement over two pages: assets, then liabilities).
struct FoundKeyPage {
    const KeyPage* key = nullptr;
    std::vector<int> pages;  // the best first
};

// For each key page in turn, those the document has. page_texts[i] is page
// i + 1, laid out (LaidOutPages).
std::vector<FoundKeyPage> find_key_pages(const std::vector<KeyPage>& key_pages,
                                         const std::vector<std::string>& page_texts);

// A line item's value as its row prints it, or none when the key page has
// no row for it (a balance sheet without a "Total liabilities" line).
struct LineItemValue {
    std::optional<std::string> value;  // e.g. "365,817"
    int page = 0;                      // 1-based: the row's, else the key page's
    std::string label;                 // the row's label, e.g. "Total net sales"
};

// The line items of the found key pages (KeyPage::line_items), by field
// pointer, read from the table rows ("Label | cell | cell") of their pages.
std::map<std::string, LineItemValue> read_line_items(const std::vector<FoundKeyPage>& found,
                                                     const std::vector<std::string>& page_texts);

// The captioned fields (CaptionedField, extract.h) the first pages give, by
// field pointer; a field whose caption is not there is left out.
std::map<std::string, LineItemValue> read_captioned_fields(const std::vector<CaptionedField>& fields,
                                                           const std::vector<std::string>& page_texts);

// The phrase fields (PhraseField, extract.h) the first pages name, by field
// pointer (the label: the phrase that named it); a field none of whose
// phrases is there is left out.
std::map<std::string, LineItemValue> read_phrase_fields(const std::vector<PhraseField>& fields,
                                                        const std::vector<std::string>& page_texts);

}  // namespace folio::app
