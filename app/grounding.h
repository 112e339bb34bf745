#pragma once
// Grounding: where in a document an extracted value is written, so that a
// value the document does not hold is marked ungrounded, never kept silently.
//
//   PageIndex index(pages);                                   // once per document
//   std::optional<GroundedSpan> at = index.locate("Lisinopril 20 mg");
//   std::optional<GroundedSpan> sales = index.locate("$365,817 million", "money");
//
// locate() tries these stages, strongest first, and answers from the first
// that finds the value; within a stage the best score wins, then the earliest
// page and offset:
//   1. the exact bytes, not inside a longer word or number          score 1.0
//   2. the same words and numbers ignoring case, accents, spaces and
//      punctuation (signs, "$", "%" and parentheses included): "20 MG"
//      ~ "20mg", "1234.5" ~ "1,234.5"; the span covers the words and
//      numbers                                                        0.95
//   3. the same number or date in another form: "$1.2 billion" ~
//      "1,200" on a page that declares "(in millions)", "-$12.5
//      million" ~ "(12.5)" there, "2021-03-03" ~ "March 3, 2021"     0.9; 0.85 when the page's number only rounds
//                                                                    to the value as written, or differs in sign or %
//   4. fuzzy, for OCR errors and small wording changes: values of 6+
//      characters, character edit distance at most 15% of the value,
//      its numbers unchanged: "Lisinopril 20 mg" ~ "Lisinoprll 20mg"  0.8 × (1 - distance / length)
// A value found nowhere is nullopt, never a guess. Quantities are matched
// as words and numbers: "105 mg/dL" is not found where the page says only
// "glucose 105".
//
// Thread rules: a built PageIndex is immutable; locate() may run on many
// threads at once.

#include <cstddef>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace folio::app {

struct PageText {
    int page = 0;  // 1-based
    std::string text;
};

struct GroundedSpan {
    int page = 0;
    std::size_t begin = 0, end = 0;  // bytes of that page's text (UTF-8), on character boundaries
    std::string quote;               // the page text at the span
    double score = 0;                // the stage's score, above
};

class PageIndex {
public:
    // Copies the texts: the index outlives the pages it was built from.
    explicit PageIndex(std::span<const PageText> pages);
    ~PageIndex();
    PageIndex(PageIndex&&) noexcept;
    PageIndex& operator=(PageIndex&&) noexcept;

    // format_hint as normalize_value's: "date", "money", "percent", "number"
    // read the value as that for stage 3; "" guesses.
    std::optional<GroundedSpan> locate(std::string_view value, std::string_view format_hint = {}) const;

private:
    struct Data;
    std::unique_ptr<const Data> data_;
};

// One value, one document: builds the index for the call.
std::optional<GroundedSpan> locate_value(std::string_view value, std::span<const PageText> pages,
                                         std::string_view format_hint = {});

}  // namespace folio::app
