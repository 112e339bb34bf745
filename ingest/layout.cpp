#include "ingest/layout.h"

#include <algorithm>
#include <cmath>
#include <map>
#include <optional>
#include <set>
#include <string_view>

#include "ingest/table_layout.h"

namespace folio::ingest {

namespace {

// Running headers and footers: blocks in the top or bottom tenth of a page's
// printed area that recur, as many rows from the edge, on this many pages.
constexpr float kMarginBand = 0.10f;              // of the page height
constexpr int kMarginRankTolerance = 1;           // printed rows: a footnote may sit below the footer
constexpr int kMinPagesToCompare = 3;
constexpr float kRecurringShare = 0.2f;
constexpr int kMaxRecurringPagesNeeded = 5;        // "good share" of a long filing
constexpr int kMarginLinesWithoutGeometry = 2;     // first/last lines of a plain-text page
constexpr size_t kMaxRunningBlockLines = 3;

// Blocks: a paragraph gap is this many line heights over the spacing of the
// lines within a paragraph.
constexpr float kParagraphGap = 0.5f;
constexpr float kSingleLineSpacing = 0.1f;  // when a document gives nothing to measure

// Headings.
constexpr float kLargerFont = 1.12f;      // × body size
constexpr float kLargerOcrFont = 1.3f;    // OCR sizes come from box heights, which vary with the letters
constexpr float kBoldShare = 0.8f;
constexpr int kMaxHeadingLines = 3;
constexpr int kMaxItemHeadingWords = 30;  // "Item 5. Market for Registrant's Common Equity, ..."
constexpr int kMaxHeadingWords = 20;
constexpr int kMaxNumberedHeadingWords = 12;
constexpr int kMaxCapsLabelWords = 10;
constexpr int kMaxRunInLabelWords = 6;
constexpr int kMaxShortLineHeadingWords = 8;
constexpr size_t kMinWordsAfterPlainHeading = 8;
constexpr int kStyleLevels = 4;
constexpr size_t kMaxTitleBytes = 160;

bool has_box(const Box& box) { return box.x1 > box.x0 || box.y1 > box.y0; }

Box union_box(const Box& a, const Box& b) {
    return {std::min(a.x0, b.x0), std::min(a.y0, b.y0), std::max(a.x1, b.x1), std::max(a.y1, b.y1)};
}

bool is_ascii_upper(char c) { return c >= 'A' && c <= 'Z'; }
bool is_ascii_lower(char c) { return c >= 'a' && c <= 'z'; }
bool is_ascii_letter(char c) { return is_ascii_upper(c) || is_ascii_lower(c); }
bool is_ascii_digit(char c) { return c >= '0' && c <= '9'; }

char last_mark(std::string_view text) {
    text = strip_closing_marks(text);
    return text.empty() ? '\0' : text.back();
}

int ascii_letters(std::string_view text) {
    return static_cast<int>(std::count_if(text.begin(), text.end(), is_ascii_letter));
}

// Upper-case letters only, and enough of them to be a label.
bool is_all_caps(std::string_view text, int min_letters) {
    return ascii_letters(text) >= min_letters && std::none_of(text.begin(), text.end(), is_ascii_lower);
}

void measure_line(const Page& page, TextLine& line) {
    line.box = {};
    std::vector<std::pair<float, size_t>> chars_by_size;
    size_t chars = 0, bold_chars = 0;
    bool boxed = false;
    for (int w = line.first_word; w < line.end_word; ++w) {
        const Word& word = page.words[static_cast<size_t>(w)];
        const size_t length = word.text.size();
        chars += length;
        if (word.bold) bold_chars += length;
        if (has_box(word.box)) {
            line.box = boxed ? union_box(line.box, word.box) : word.box;
            boxed = true;
        }
        if (word.font_size > 0) {
            const float size = std::round(word.font_size * 10.0f) / 10.0f;
            auto found = std::find_if(chars_by_size.begin(), chars_by_size.end(),
                                      [&](const auto& entry) { return entry.first == size; });
            if (found == chars_by_size.end()) chars_by_size.emplace_back(size, length);
            else found->second += length;
        }
    }
    line.font_size = 0;
    size_t most = 0;
    for (const auto& [size, count] : chars_by_size)
        if (count > most) {
            most = count;
            line.font_size = size;
        }
    line.bold_share = chars > 0 ? static_cast<float>(bold_chars) / static_cast<float>(chars) : 0.0f;
}

// Defends against an extractor that leaves line_end unset: the next word is
// on another line when it does not share this one's height or moves back left.
bool continues_visual_line(const Word& word, const Word& next) {
    if (!has_box(word.box) || !has_box(next.box)) return true;
    const float smaller = std::min(word.box.height(), next.box.height());
    const float shared = std::min(word.box.y1, next.box.y1) - std::max(word.box.y0, next.box.y0);
    if (shared < 0.4f * smaller) return false;
    return next.box.x0 >= word.box.x1 - 0.5f * std::max(word_em(word), word_em(next));
}

std::vector<TextLine> page_lines(const Page& page, int page_index) {
    std::vector<TextLine> lines;
    const std::vector<Word>& words = page.words;
    for (size_t i = 0; i < words.size(); ++i) {
        const bool new_line = lines.empty() || words[i - 1].line_end || words[i - 1].block_end ||
                              !continues_visual_line(words[i - 1], words[i]);
        if (new_line) {
            TextLine line;
            line.page = page_index;
            line.first_word = static_cast<int>(i);
            line.starts_block = lines.empty() || words[i - 1].block_end;
            lines.push_back(line);
        }
        lines.back().end_word = static_cast<int>(i) + 1;
    }
    for (TextLine& line : lines) measure_line(page, line);

    // Poppler ends a block at a wide gap inside a printed line ("Item 7." ...
    // "Management's Discussion"); such parts, one after the other along the
    // same row, are one line.
    std::vector<TextLine> joined;
    for (const TextLine& line : lines) {
        if (!joined.empty()) {
            TextLine& last = joined.back();
            const float smaller = std::min(last.box.height(), line.box.height());
            const float shared = std::min(last.box.y1, line.box.y1) - std::max(last.box.y0, line.box.y0);
            if (last.has_geometry() && line.has_geometry() && shared >= 0.5f * smaller &&
                line.box.x0 >= last.box.x1 && last.end_word == line.first_word) {
                last.end_word = line.end_word;
                measure_line(page, last);
                continue;
            }
        }
        joined.push_back(line);
    }
    return joined;
}

// One page's lines (reading order), the tables among them, and what each
// line is.
constexpr int kTextLine = -1;
constexpr int kRunningLine = -2;  // a running header or footer

struct PageFlow {
    std::vector<TextLine> lines;
    std::vector<DetectedTable> tables;
    std::vector<int> role;  // per line: index into tables, kTextLine or kRunningLine
};

PageFlow page_flow(const std::vector<Page>& pages, std::vector<TextLine> lines) {
    PageFlow flow;
    flow.tables = find_tables(pages, lines);
    flow.role.assign(lines.size(), kTextLine);
    for (size_t t = 0; t < flow.tables.size(); ++t)
        for (int line : flow.tables[t].lines) flow.role[static_cast<size_t>(line)] = static_cast<int>(t);
    flow.lines = std::move(lines);
    return flow;
}

// ---- blocks ----------------------------------------------------------------

bool is_markdown_marker(std::string_view word) {
    return !word.empty() && word.size() <= 6 && word.find_first_not_of('#') == std::string_view::npos;
}

bool is_markdown_heading_line(const std::vector<Page>& pages, const TextLine& line) {
    return !line.has_geometry() && line.end_word - line.first_word >= 2 &&
           is_markdown_marker(pages[static_cast<size_t>(line.page)].words[static_cast<size_t>(line.first_word)].text);
}

const Word& first_word(const std::vector<Page>& pages, const TextLine& line) {
    return pages[static_cast<size_t>(line.page)].words[static_cast<size_t>(line.first_word)];
}

const Word& last_word(const std::vector<Page>& pages, const TextLine& line) {
    return pages[static_cast<size_t>(line.page)].words[static_cast<size_t>(line.end_word - 1)];
}

// The vertical gap between lines of one paragraph, in line heights, over the
// whole document: a low percentile of the gaps between successive text lines,
// since pages of short paragraphs have more paragraph gaps than line gaps.
// Single spacing gives about 0.05, double spacing about 1.
float paragraph_line_spacing(const std::vector<PageFlow>& flows) {
    std::vector<float> ratios;
    for (const PageFlow& flow : flows) {
        const TextLine* previous = nullptr;
        for (size_t i = 0; i < flow.lines.size(); ++i) {
            if (flow.role[i] != kTextLine) continue;
            const TextLine& line = flow.lines[i];
            if (previous != nullptr && previous->has_geometry() && line.has_geometry()) {
                const float height = std::min(previous->box.height(), line.box.height());
                const float gap = line.box.y0 - previous->box.y1;
                const bool stacked = std::min(previous->box.x1, line.box.x1) > std::max(previous->box.x0, line.box.x0);
                if (stacked && height > 0 && gap > -0.3f * height && gap < 2.0f * height) ratios.push_back(gap / height);
            }
            previous = &line;
        }
    }
    if (ratios.empty()) return kSingleLineSpacing;
    const auto low = ratios.begin() + static_cast<std::ptrdiff_t>(ratios.size() / 10);
    std::nth_element(ratios.begin(), low, ratios.end());
    return std::max(0.0f, *low);
}

class BlockSplitter {
public:
    BlockSplitter(const std::vector<Page>& pages, float spacing) : pages_(pages), spacing_(spacing) {}

    bool starts_new_block(const std::vector<TextLine>& block, const TextLine& line) const {
        const TextLine& previous = block.back();
        const bool geometry = previous.has_geometry() && line.has_geometry();
        const float height = std::min(previous.box.height(), line.box.height());
        const float shared = std::min(previous.box.y1, line.box.y1) - std::max(previous.box.y0, line.box.y0);
        // Further along the same printed row (split from it by a table or
        // a wide gap): the same block.
        if (geometry && shared >= 0.5f * height && line.box.x0 >= previous.box.x1) return false;
        if (line.starts_block) return true;
        if (is_markdown_heading_line(pages_, previous) || is_markdown_heading_line(pages_, line)) return true;
        if (!geometry) return false;

        const float gap = line.box.y0 - previous.box.y1;
        if (gap < -0.5f * height) return true;  // back up the page: the next column
        if (std::min(previous.box.x1, line.box.x1) <= std::max(previous.box.x0, line.box.x0)) return true;
        if (gap > (spacing_ + kParagraphGap) * height) return true;

        if (previous.font_size > 0 && line.font_size > 0) {
            const bool ocr = pages_[static_cast<size_t>(line.page)].ocr;
            const float tolerance = ocr ? 0.2f : 0.08f;  // OCR sizes come from noisy box heights
            const float larger = std::max(previous.font_size, line.font_size);
            if (std::fabs(previous.font_size - line.font_size) > std::max(0.5f, tolerance * larger)) return true;
        }
        if ((previous.bold_share >= kBoldShare) != (line.bold_share >= kBoldShare)) return true;

        // The short last line of a paragraph, without extra spacing after it.
        if (block.size() >= 2 && last_mark(last_word(pages_, previous).text) == '.') {
            float right = previous.box.x1;
            for (const TextLine& other : block) right = std::max(right, other.box.x1);
            const std::string& next = first_word(pages_, line).text;
            if (previous.box.x1 < right - 2.5f * height && !next.empty() && is_ascii_upper(next[0])) return true;
        }
        return false;
    }

private:
    const std::vector<Page>& pages_;
    float spacing_;  // line heights, from paragraph_line_spacing
};

// ---- running headers and footers ------------------------------------------

// The line with its numbers blanked out, so that "Apple Inc. | 2021 Form 10-K
// | 23" compares equal from page to page ("apple inc # form # k #"): runs of
// letters and digits, lower-cased, each digit run one '#', punctuation dropped.
// A line that is only a Roman numeral is a page number too.
std::string running_line_key(std::string_view text) {
    std::string key;
    bool separator = false;
    for (size_t i = 0; i < text.size();) {
        const char c = text[i];
        const bool word_char = is_ascii_letter(c) || is_ascii_digit(c) || static_cast<unsigned char>(c) >= 0x80;
        if (!word_char) {
            separator = true;
            ++i;
            continue;
        }
        if (separator && !key.empty()) key += ' ';
        separator = false;
        if (is_ascii_digit(c)) {
            while (i < text.size() && is_ascii_digit(text[i])) ++i;
            key += '#';
            continue;
        }
        key += is_ascii_upper(c) ? static_cast<char>(c - 'A' + 'a') : c;
        ++i;
    }
    const bool roman = !key.empty() && key.size() <= 6 &&
                       key.find_first_not_of("ivxlcdm") == std::string::npos;
    return roman ? "#" : key;
}

// A short block of lines in a page's top or bottom band.
struct MarginBlock {
    size_t page = 0, begin = 0, end = 0;  // lines [begin, end) of the page
    int rank = 0;                         // printed rows between the block and its edge of the page
};

// Each line's printed row on the page, counted from the top (lines with no
// geometry: their own order). Footers of a filing converted from HTML follow
// the text rather than sitting at a fixed height, so position is compared
// as a row count from the page's edge.
std::vector<int> printed_rows(const std::vector<TextLine>& lines, int& row_count) {
    std::vector<int> order(lines.size());
    for (size_t i = 0; i < order.size(); ++i) order[i] = static_cast<int>(i);
    const auto centre = [&](int line) { return 0.5f * (lines[static_cast<size_t>(line)].box.y0 + lines[static_cast<size_t>(line)].box.y1); };
    const bool geometry = std::all_of(lines.begin(), lines.end(), [](const TextLine& line) { return line.has_geometry(); });
    if (geometry) std::stable_sort(order.begin(), order.end(), [&](int a, int b) { return centre(a) < centre(b); });
    std::vector<int> rows(lines.size(), 0);
    row_count = 0;
    float row_centre = 0, row_height = 0;
    for (int line : order) {
        const float height = lines[static_cast<size_t>(line)].box.height();
        const bool same_row = geometry && row_count > 0 && centre(line) - row_centre <= 0.5f * std::min(height, row_height);
        if (!same_row) {
            ++row_count;
            row_centre = centre(line);
            row_height = height;
        }
        rows[static_cast<size_t>(line)] = row_count - 1;
    }
    return rows;
}

// Marks the running headers and footers among the text lines (table cells
// excluded: a column of figures read column by column is many short lines
// that recur from page to page once digits are blanked out).
// Marks the running headers and footers among the text lines. They are
// compared a block at a time: a header is a short block of its own, and the last line of a paragraph that happens to read like
// the one on another page is not. Table cells are left out: a column of figures
// read column by column is many short blocks that recur from page to page once
// digits are blanked out.
void mark_running_headers(const std::vector<Page>& pages, const BlockSplitter& splitter, std::vector<PageFlow>& flows) {
    const auto pages_with_text =
        std::count_if(flows.begin(), flows.end(), [](const PageFlow& flow) { return !flow.lines.empty(); });
    if (pages_with_text < kMinPagesToCompare) return;
    const int needed = std::clamp(static_cast<int>(std::ceil(kRecurringShare * static_cast<float>(pages_with_text))),
                                  2, kMaxRecurringPagesNeeded);

    // (top band?, key) → the blocks in that band with that key
    std::map<std::pair<bool, std::string>, std::vector<MarginBlock>> recurring;
    for (size_t p = 0; p < flows.size(); ++p) {
        const std::vector<TextLine>& lines = flows[p].lines;
        if (lines.empty()) continue;
        float top = INFINITY, bottom = -INFINITY;
        for (const TextLine& line : lines)
            if (line.has_geometry()) {
                top = std::min(top, line.box.y0);
                bottom = std::max(bottom, line.box.y1);
            }
        const float page_height = pages[p].height > 0 ? pages[p].height : bottom - top;
        const float band = kMarginBand * page_height;
        int row_count = 0;
        const std::vector<int> rows = printed_rows(lines, row_count);
        const auto near_top = [&](size_t l) {
            return lines[l].has_geometry() ? lines[l].box.y0 <= top + band : rows[l] < kMarginLinesWithoutGeometry;
        };
        const auto near_bottom = [&](size_t l) {
            return lines[l].has_geometry() ? lines[l].box.y1 >= bottom - band
                                           : row_count - 1 - rows[l] < kMarginLinesWithoutGeometry;
        };
        std::vector<TextLine> block;
        for (size_t begin = 0; begin < lines.size();) {
            block.assign(1, lines[begin]);
            size_t end = begin + 1;
            for (; end < lines.size() && !splitter.starts_new_block(block, lines[end]); ++end) block.push_back(lines[end]);
            const size_t first = begin, last = end - 1;
            begin = end;
            if (end - first > kMaxRunningBlockLines) continue;
            bool top_band = true, bottom_band = true, text = true;
            std::string key;
            for (size_t l = first; l <= last; ++l) {
                text = text && flows[p].role[l] == kTextLine;
                top_band = top_band && near_top(l);
                bottom_band = bottom_band && near_bottom(l);
                if (l > first) key += " / ";
                key += running_line_key(line_text(pages, lines[l]));
            }
            if (!text || key.find_first_not_of(" /") == std::string::npos) continue;
            if (top_band) recurring[{true, key}].push_back({p, first, end, rows[first]});
            if (bottom_band) recurring[{false, key}].push_back({p, first, end, row_count - 1 - rows[last]});
        }
    }

    for (const auto& [band_and_key, candidates] : recurring) {
        if (static_cast<int>(candidates.size()) < needed) continue;
        for (const MarginBlock& candidate : candidates) {
            std::set<size_t> pages_there;
            for (const MarginBlock& other : candidates)
                if (std::abs(other.rank - candidate.rank) <= kMarginRankTolerance) pages_there.insert(other.page);
            if (static_cast<int>(pages_there.size()) < needed) continue;
            for (size_t l = candidate.begin; l < candidate.end; ++l) flows[candidate.page].role[l] = kRunningLine;
        }
    }
}

// ---- items ------------------------------------------------------------------

LayoutItem paragraph_item(std::vector<TextLine> lines) {
    LayoutItem item;
    item.kind = LayoutItemKind::Paragraph;
    item.lines = std::move(lines);
    return item;
}

void append_page_items(PageFlow& flow, const BlockSplitter& splitter, std::vector<LayoutItem>& items) {
    std::vector<bool> table_placed(flow.tables.size(), false);
    std::vector<TextLine> block;
    const auto close_block = [&] {
        if (!block.empty()) items.push_back(paragraph_item(std::move(block)));
        block.clear();
    };
    for (size_t i = 0; i < flow.lines.size(); ++i) {
        const int table = flow.role[i];
        if (table == kRunningLine) continue;
        if (table == kTextLine) {
            if (!block.empty() && splitter.starts_new_block(block, flow.lines[i])) close_block();
            block.push_back(flow.lines[i]);
            continue;
        }
        // A table takes the place of its first line in reading order; the
        // rest of its lines (read column by column, they may come later)
        // leave the text around them as it is.
        if (table_placed[static_cast<size_t>(table)]) continue;
        close_block();
        LayoutItem item;
        item.kind = LayoutItemKind::Table;
        item.table = std::move(flow.tables[static_cast<size_t>(table)].table);
        items.push_back(std::move(item));
        table_placed[static_cast<size_t>(table)] = true;
    }
    close_block();
}

// ---- headings --------------------------------------------------------------

enum class HeadingKind { Markdown, Part, Item, Numbered, Styled };

// Styled headings rank by size, then bold, then capitals.
struct HeadingStyle {
    float size = 0;  // points, in half-point steps; 0 unknown
    bool bold = false;
    bool caps = false;
    bool operator<(const HeadingStyle& other) const {
        if (size != other.size) return size > other.size;
        if (bold != other.bold) return bold;
        return caps && !other.caps;
    }
};

struct HeadingCandidate {
    HeadingKind kind = HeadingKind::Styled;
    int depth = 0;       // Markdown '#'s, numbering depth
    HeadingStyle style;
    bool plain = false;  // set like body text: a heading only if body text follows it
};

std::vector<std::string_view> block_words(const std::vector<Page>& pages, const std::vector<TextLine>& lines) {
    std::vector<std::string_view> words;
    for (const TextLine& line : lines)
        for (int w = line.first_word; w < line.end_word; ++w)
            words.push_back(pages[static_cast<size_t>(line.page)].words[static_cast<size_t>(w)].text);
    return words;
}

std::string join_words(const std::vector<std::string_view>& words, size_t from = 0) {
    std::string text;
    for (size_t i = from; i < words.size(); ++i) {
        if (!text.empty()) text += ' ';
        text += words[i];
    }
    return text;
}

std::string_view trim_punctuation(std::string_view word) {
    while (!word.empty() && (word.back() == '.' || word.back() == ':' || word.back() == ',' || word.back() == '-'))
        word.remove_suffix(1);
    return word;
}

bool is_part_heading(const std::vector<std::string_view>& words) {
    if (words.size() < 2 || (words[0] != "PART" && words[0] != "Part")) return false;
    const std::string_view numeral = trim_punctuation(words[1]);
    return numeral == "I" || numeral == "II" || numeral == "III" || numeral == "IV";
}

// "Item 7.", "Item 1A.", "ITEM 7", "Items 1 and 2." (SEC Form 10-K / 10-Q items).
bool is_item_heading(const std::vector<std::string_view>& words) {
    if (words.size() < 2) return false;
    const bool capitals = words[0] == "ITEM" || words[0] == "ITEMS";
    if (!capitals && words[0] != "Item" && words[0] != "Items") return false;
    std::string_view number = words[1];
    const bool punctuated = !number.empty() && (number.back() == '.' || number.back() == ':');
    number = trim_punctuation(number);
    size_t digits = 0;
    while (digits < number.size() && is_ascii_digit(number[digits])) ++digits;
    if (digits == 0 || digits > 2) return false;
    const std::string_view suffix = number.substr(digits);
    if (suffix.size() > 1 || (suffix.size() == 1 && !is_ascii_letter(suffix[0]))) return false;
    return punctuated || capitals || words[0] == "Items";
}

// "1.", "2.3", "2.3.1" followed by a capitalised title, or "Note 4".
std::optional<int> numbered_heading_depth(const std::vector<std::string_view>& words) {
    if (words.size() < 2) return std::nullopt;
    if ((words[0] == "Note" || words[0] == "NOTE") && is_ascii_digit(words[1].front())) return 1;
    const std::string_view number = words[0];
    int groups = 0;
    size_t i = 0;
    bool dotted = false;
    while (i < number.size()) {
        size_t digits = 0;
        while (i < number.size() && is_ascii_digit(number[i])) ++i, ++digits;
        if (digits == 0 || digits > 2) return std::nullopt;
        ++groups;
        if (i == number.size()) break;
        if (number[i] != '.') return std::nullopt;
        dotted = true;
        ++i;
    }
    if (!dotted || !is_ascii_upper(words[1].front())) return std::nullopt;
    return groups;
}

// "Fiscal 2021 Highlights", "iPhone": capitalised (or camel-case) words.
bool is_capitalised(std::string_view word) {
    return !word.empty() && (is_ascii_upper(word[0]) || (is_ascii_lower(word[0]) && std::any_of(word.begin(), word.end(), is_ascii_upper)));
}

bool looks_like_title(const std::vector<std::string_view>& words) {
    if (words.empty() || !is_capitalised(words[0])) return false;
    int long_words = 0, capitalised = 0;
    for (std::string_view word : words)
        if (ascii_letters(word) >= 4) {
            ++long_words;
            if (is_capitalised(word)) ++capitalised;
        }
    return long_words == 0 || 5 * capitalised >= 3 * long_words;
}

std::optional<HeadingCandidate> heading_candidate(const std::vector<Page>& pages, const LayoutItem& block,
                                                  float body_size) {
    const std::vector<std::string_view> words = block_words(pages, block.lines);
    if (words.empty()) return std::nullopt;
    const size_t lines = block.lines.size();
    const TextLine& first = block.lines.front();
    if (is_markdown_heading_line(pages, first) && lines == 1)
        return HeadingCandidate{HeadingKind::Markdown, static_cast<int>(words[0].size()), {}};
    if (lines > static_cast<size_t>(kMaxHeadingLines) || words.size() > static_cast<size_t>(kMaxItemHeadingWords))
        return std::nullopt;

    const std::string text = join_words(words);
    const char mark = last_mark(text);
    if (mark == ',' || mark == ';' || ascii_letters(text) < 2) return std::nullopt;
    const bool ends_with_period = mark == '.';
    const bool bold = std::all_of(block.lines.begin(), block.lines.end(),
                                  [](const TextLine& line) { return line.bold_share >= kBoldShare; });
    const bool ocr = pages[static_cast<size_t>(first.page)].ocr;
    const bool larger = body_size > 0 && first.font_size >= (ocr ? kLargerOcrFont : kLargerFont) * body_size;
    const bool styled = bold || larger;
    const bool caps = is_all_caps(text, 3);
    const size_t count = words.size();

    if (count <= 10 && lines <= 2 && is_part_heading(words)) return HeadingCandidate{HeadingKind::Part, 1, {}};
    if (is_item_heading(words) && (styled || lines <= 2) && (!ends_with_period || count <= 3))
        return HeadingCandidate{HeadingKind::Item, 2, {}};
    if (ends_with_period || count > static_cast<size_t>(kMaxHeadingWords) || lines > 2) return std::nullopt;
    if (const std::optional<int> depth = numbered_heading_depth(words);
        depth && count <= static_cast<size_t>(kMaxNumberedHeadingWords) && (styled || lines == 1))
        return HeadingCandidate{HeadingKind::Numbered, *depth, {}};

    const HeadingStyle style{std::round(first.font_size * 2.0f) / 2.0f, bold, caps};
    if (styled) return HeadingCandidate{HeadingKind::Styled, 0, style};
    if (caps && lines == 1 && count <= static_cast<size_t>(kMaxCapsLabelWords))
        return HeadingCandidate{HeadingKind::Styled, 0, style};
    // A short title-like line set apart from the text: all there is to go on
    // without font information (OCR, plain text), and how italic headings
    // look (Word carries no italic flag).
    if (lines == 1 && count <= static_cast<size_t>(kMaxShortLineHeadingWords) && mark != ':' && mark != '!' &&
        mark != '?' && looks_like_title(words))
        return HeadingCandidate{HeadingKind::Styled, 0, style, true};
    return std::nullopt;
}

TextLine sub_line(const std::vector<Page>& pages, const TextLine& line, int first_word, int end_word) {
    TextLine part = line;
    part.first_word = first_word;
    part.end_word = end_word;
    part.box = {};
    measure_line(pages[static_cast<size_t>(line.page)], part);
    return part;
}

// A clinical-note label run into its text ("CHIEF COMPLAINT: Chest pain.") or
// printed on the block's first line with no spacing after it becomes a block
// of its own. Returns the label block, and leaves the rest in `block`.
std::optional<LayoutItem> split_caps_label(const std::vector<Page>& pages, LayoutItem& block) {
    const TextLine& first = block.lines.front();
    const std::vector<Word>& words = pages[static_cast<size_t>(first.page)].words;
    int label_end = -1;
    int letters = 0;
    for (int w = first.first_word; w < first.end_word && w - first.first_word < kMaxRunInLabelWords; ++w) {
        const std::string& text = words[static_cast<size_t>(w)].text;
        const bool caps_word = is_all_caps(text, 1) || text == "&" || text == "/";
        if (!caps_word) break;
        letters += ascii_letters(text);
        if (text.back() == ':') {
            label_end = w + 1;
            break;
        }
    }
    const bool more_after_label = label_end >= 0 && (label_end < first.end_word || block.lines.size() > 1);
    if (more_after_label && letters >= 4) {
        LayoutItem label = paragraph_item({sub_line(pages, first, first.first_word, label_end)});
        if (label_end < first.end_word) {
            block.lines.front() = sub_line(pages, first, label_end, first.end_word);
            block.lines.front().starts_block = false;
        } else {
            block.lines.erase(block.lines.begin());
        }
        return label;
    }
    if (block.lines.size() < 2) return std::nullopt;
    const std::string first_text = line_text(pages, first);
    const bool caps_line = is_all_caps(first_text, 4) && first.end_word - first.first_word <= kMaxCapsLabelWords &&
                           last_mark(first_text) != '.';
    if (!caps_line || is_all_caps(line_text(pages, block.lines[1]), 1)) return std::nullopt;
    LayoutItem label = paragraph_item({first});
    block.lines.erase(block.lines.begin());
    return label;
}

std::string heading_title(const std::vector<Page>& pages, const LayoutItem& block, bool markdown) {
    std::vector<std::string_view> words = block_words(pages, block.lines);
    std::string title = join_words(words, markdown ? 1 : 0);
    while (!title.empty() && (title.back() == ':' || title.back() == ' ')) title.pop_back();
    if (title.size() > kMaxTitleBytes) {
        size_t cut = title.rfind(' ', kMaxTitleBytes);
        if (cut == std::string::npos) {
            cut = kMaxTitleBytes;
            while (cut > 0 && (static_cast<unsigned char>(title[cut]) & 0xC0) == 0x80) --cut;  // not inside a UTF-8 sequence
        }
        title.resize(cut);
    }
    return title;
}

float body_font_size(const std::vector<LayoutItem>& items) {
    std::map<float, size_t> chars_by_size;
    for (const LayoutItem& item : items)
        for (const TextLine& line : item.lines)
            if (line.font_size > 0)
                chars_by_size[std::round(line.font_size * 2.0f) / 2.0f] += static_cast<size_t>(line.end_word - line.first_word);
    float body = 0;
    size_t most = 0;
    for (const auto& [size, count] : chars_by_size)
        if (count > most) {
            most = count;
            body = size;
        }
    return body;
}

void mark_headings(const std::vector<Page>& pages, std::vector<LayoutItem>& items) {
    std::vector<LayoutItem> split;
    split.reserve(items.size());
    for (LayoutItem& item : items) {
        if (item.kind == LayoutItemKind::Paragraph)
            if (std::optional<LayoutItem> label = split_caps_label(pages, item)) split.push_back(std::move(*label));
        if (item.kind != LayoutItemKind::Paragraph || !item.lines.empty()) split.push_back(std::move(item));
    }
    items = std::move(split);

    const float body_size = body_font_size(items);
    std::vector<std::optional<HeadingCandidate>> candidates(items.size());
    bool markdown = false, sec_items = false, sec_parts = false;
    for (size_t i = 0; i < items.size(); ++i) {
        if (items[i].kind != LayoutItemKind::Paragraph) continue;
        candidates[i] = heading_candidate(pages, items[i], body_size);
    }
    for (size_t i = 0; i < items.size(); ++i) {
        if (!candidates[i]) continue;
        if (candidates[i]->plain) {
            const bool text_follows = i + 1 < items.size() && items[i + 1].kind == LayoutItemKind::Paragraph &&
                                      !candidates[i + 1] &&
                                      block_words(pages, items[i + 1].lines).size() >= kMinWordsAfterPlainHeading;
            if (!text_follows) {
                candidates[i].reset();
                continue;
            }
        }
        markdown = markdown || candidates[i]->kind == HeadingKind::Markdown;
        sec_items = sec_items || candidates[i]->kind == HeadingKind::Item;
        sec_parts = sec_parts || candidates[i]->kind == HeadingKind::Part;
    }
    // Where the author marked headings with '#', those are the headings.
    if (markdown)
        for (std::optional<HeadingCandidate>& candidate : candidates)
            if (candidate && (candidate->kind == HeadingKind::Numbered || candidate->kind == HeadingKind::Styled))
                candidate.reset();

    std::set<HeadingStyle> styles;
    for (const std::optional<HeadingCandidate>& candidate : candidates)
        if (candidate && candidate->kind == HeadingKind::Styled) styles.insert(candidate->style);
    // Headings found by numbering or style nest under the filing's PART / Item.
    const int base = sec_items ? 2 : sec_parts ? 1 : 0;
    for (size_t i = 0; i < items.size(); ++i) {
        if (!candidates[i]) continue;
        const HeadingCandidate& candidate = *candidates[i];
        int level = 0;
        switch (candidate.kind) {
        case HeadingKind::Markdown: level = candidate.depth; break;
        case HeadingKind::Part: level = 1; break;
        case HeadingKind::Item: level = 2; break;
        case HeadingKind::Numbered: level = base + candidate.depth; break;
        case HeadingKind::Styled: {
            const auto rank = static_cast<int>(std::distance(styles.begin(), styles.find(candidate.style)));
            level = base + 1 + std::min(rank, kStyleLevels - 1);
            break;
        }
        }
        items[i].kind = LayoutItemKind::Heading;
        items[i].level = level;
        items[i].title = heading_title(pages, items[i], candidate.kind == HeadingKind::Markdown);
    }
}

// A paragraph cut by a page break (and the page's footer) continues at the top
// of the next page: no closing mark before the break, or a hyphenated word.
void join_paragraphs_across_pages(const std::vector<Page>& pages, std::vector<LayoutItem>& items) {
    std::vector<LayoutItem> joined;
    joined.reserve(items.size());
    for (LayoutItem& item : items) {
        if (!joined.empty() && item.kind == LayoutItemKind::Paragraph &&
            joined.back().kind == LayoutItemKind::Paragraph &&
            joined.back().lines.back().page != item.lines.front().page) {
            const std::string& before = last_word(pages, joined.back().lines.back()).text;
            const std::string& after = first_word(pages, item.lines.front()).text;
            const char mark = last_mark(before);
            const bool open = mark != '.' && mark != '!' && mark != '?' && mark != ':' && mark != ';';
            if (open && !after.empty() && (is_ascii_lower(after[0]) || before.back() == '-')) {
                for (TextLine& line : item.lines) joined.back().lines.push_back(line);
                continue;
            }
        }
        joined.push_back(std::move(item));
    }
    items = std::move(joined);
}

}  // namespace

float word_em(const Word& word) { return word.font_size > 0 ? word.font_size : word.box.height(); }

std::string_view strip_closing_marks(std::string_view text) {
    for (;;) {
        bool stripped = false;
        for (std::string_view closing : {")", "]", "\"", "'", "\u2019", "\u201D"}) {
            if (text.size() >= closing.size() && text.substr(text.size() - closing.size()) == closing) {
                text.remove_suffix(closing.size());
                stripped = true;
            }
        }
        if (!stripped) return text;
    }
}

std::string line_text(const std::vector<Page>& pages, const TextLine& line) {
    const std::vector<Word>& words = pages[static_cast<size_t>(line.page)].words;
    std::string text;
    for (int w = line.first_word; w < line.end_word; ++w) {
        const Word& word = words[static_cast<size_t>(w)];
        text += word.text;
        if (w + 1 < line.end_word && word.space_after) text += ' ';
    }
    return text;
}

std::vector<LayoutItem> analyze_layout(const std::vector<Page>& pages) {

    std::vector<PageFlow> flows;
    flows.reserve(pages.size());
    for (size_t p = 0; p < pages.size(); ++p) flows.push_back(page_flow(pages, page_lines(pages[p], static_cast<int>(p))));
    const BlockSplitter splitter(pages, paragraph_line_spacing(flows));
    mark_running_headers(pages, splitter, flows);
    std::vector<LayoutItem> items;
    for (PageFlow& flow : flows) append_page_items(flow, splitter, items);
    mark_headings(pages, items);
    join_paragraphs_across_pages(pages, items);
    return items;
}

}  // namespace folio::ingest
