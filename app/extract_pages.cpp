#include "app/extract_pages.h"

#include <algorithm>
#include <cctype>
#include <optional>
#include <span>
#include <string_view>

#include "app/value_normalize.h"

namespace folio::app {

namespace {

// The length of the longest start of `next` that ends `previous`.
std::size_t repeated_prefix(std::string_view previous, std::string_view next) {
    constexpr std::size_t kProbe = 16;
    if (next.size() < kProbe) return 0;
    const std::string_view probe = next.substr(0, kProbe);
    for (std::size_t at = previous.find(probe); at != std::string_view::npos; at = previous.find(probe, at + 1)) {
        const std::string_view tail = previous.substr(at);
        if (next.starts_with(tail)) return tail.size();
    }
    return 0;
}

// Lower case, ’ as ', runs of whitespace as one space, trimmed.
std::string folded(std::string_view text) {
    std::string out;
    for (std::size_t i = 0; i < text.size(); ++i) {
        const char c = text[i];
        if (text.substr(i).starts_with("\u2019")) {
            out += '\'';
            i += 2;
        } else if (std::isspace(static_cast<unsigned char>(c))) {
            if (!out.empty() && out.back() != ' ') out += ' ';
        } else {
            out += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
        }
    }
    if (!out.empty() && out.back() == ' ') out.pop_back();
    return out;
}

// The lines of a text, without their '\n' (none after a final '\n').
std::vector<std::string_view> lines_of(std::string_view text) {
    std::vector<std::string_view> lines;
    for (std::size_t start = 0; start < text.size();) {
        std::size_t end = text.find('\n', start);
        if (end == std::string_view::npos) end = text.size();
        lines.push_back(text.substr(start, end - start));
        start = end + 1;
    }
    return lines;
}

// folded() line by line.
std::string folded_lines(std::string_view text) {
    std::string out;
    std::size_t start = 0;
    while (start <= text.size()) {
        std::size_t end = text.find('\n', start);
        if (end == std::string_view::npos) end = text.size();
        out += folded(text.substr(start, end - start));
        out += '\n';
        start = end + 1;
    }
    return out;
}

int figures_in(std::string_view text) {
    int figures = 0;
    bool in_figure = false;
    for (const char c : text) {
        const bool digit = std::isdigit(static_cast<unsigned char>(c));
        if (digit && !in_figure) ++figures;
        in_figure = digit || (in_figure && (c == ',' || c == '.'));
    }
    return figures;
}

// Whether a line of the (folded) page ends with one of the headings, once
// trailing parentheses ("(unaudited)", "(in millions)"), colons and
// spaces are taken off: a title, not a sentence or a "... Data" table.
bool has_title(std::string_view page, const std::vector<std::string>& headings) {
    for (std::string_view line : lines_of(page)) {
        for (bool trimmed = true; trimmed;) {
            trimmed = false;
            while (!line.empty() && (line.back() == ' ' || line.back() == ':' || line.back() == '|')) {
                line.remove_suffix(1);
                trimmed = true;
            }
            if (line.ends_with(')')) {
                if (const std::size_t open = line.rfind('('); open != std::string_view::npos) {
                    line = line.substr(0, open);
                    trimmed = true;
                }
            }
        }
        for (const std::string& heading : headings)
            if (line.ends_with(heading) && (line.size() == heading.size() || line[line.size() - heading.size() - 1] == ' '))
                return true;
    }
    return false;
}

}  // namespace

std::vector<FoundKeyPage> find_key_pages(const std::vector<KeyPage>& key_pages,
                                         const std::vector<std::string>& page_texts) {
    constexpr int kTitleWeight = 2;
    constexpr int kMinimumTerms = 3;
    std::vector<std::string> folded_pages;
    for (const std::string& text : page_texts) folded_pages.push_back(folded_lines(text));
    std::vector<FoundKeyPage> found;
    for (const KeyPage& key : key_pages) {
        std::vector<std::string> headings, terms;
        for (const std::string& heading : key.headings) headings.push_back(folded(heading));
        for (const std::string& term : key.terms) terms.push_back(folded(term));
        const auto holds = [&](std::size_t i, const std::string& term) {
            return folded_pages[i].find(term) != std::string::npos;
        };
        const auto terms_on = [&](std::size_t i) {
            return static_cast<int>(std::ranges::count_if(terms, [&](const std::string& term) { return holds(i, term); }));
        };
        std::vector<bool> titled(folded_pages.size());
        for (std::size_t i = 0; i < folded_pages.size(); ++i) titled[i] = has_title(folded_pages[i], headings);
        int best = 0, best_score = 0, best_figures = 0;
        for (std::size_t i = 0; i < folded_pages.size(); ++i) {
            const int on_page = terms_on(i);
            if (on_page < kMinimumTerms) continue;
            // A statement continued under its title again (assets, then
            // liabilities and equity) counts as one with its next page, so
            // that it outweighs a one-page condensed copy in a schedule.
            const bool continued =
                titled[i] && i + 1 < folded_pages.size() && titled[i + 1] && terms_on(i + 1) >= kMinimumTerms;
            const int terms_held = static_cast<int>(std::ranges::count_if(terms, [&](const std::string& term) {
                return holds(i, term) || (continued && holds(i + 1, term));
            }));
            const int score = terms_held + (titled[i] ? kTitleWeight : 0);
            const int figures = figures_in(folded_pages[i]);
            if (score > best_score || (score == best_score && figures > best_figures))
                best = static_cast<int>(i) + 1, best_score = score, best_figures = figures;
        }
        if (best == 0) continue;
        FoundKeyPage page{&key, {best}};
        for (const int neighbour : {best - 1, best + 1})
            if (neighbour >= 1 && neighbour <= static_cast<int>(folded_pages.size()) &&
                terms_on(static_cast<std::size_t>(neighbour - 1)) >= kMinimumTerms)
                page.pages.push_back(neighbour);
        found.push_back(std::move(page));
    }
    return found;
}

namespace {

// A form's cover and what follows it: where captioned and phrase fields are read.
constexpr std::size_t kCoverPages = 3;

// A label as lower-case words: letters and digits, anything else a break,
// apostrophes dropped ("Shareholders’ equity—deficit" is "shareholders
// equity deficit"). In a pattern "*" is a word of its own.
std::vector<std::string> label_words(std::string_view text, bool pattern = false) {
    std::vector<std::string> words;
    bool gap = true;
    for (std::size_t i = 0; i < text.size(); ++i) {
        const unsigned char c = static_cast<unsigned char>(text[i]);
        if (c == '\'' || text.substr(i).starts_with("\u2019")) {
            if (c != '\'') i += 2;
            continue;
        }
        if (pattern && c == '*') {
            words.emplace_back("*");
            gap = true;
        } else if (std::isalnum(c)) {
            if (gap) words.emplace_back();
            gap = false;
            words.back() += static_cast<char>(std::tolower(c));
        } else {
            gap = true;
        }
    }
    return words;
}

// Whether a label's words fit a pattern's, "*" standing for any run of
// words (none included).
bool fits(std::span<const std::string> pattern, std::span<const std::string> words) {
    if (pattern.empty()) return words.empty();
    if (pattern.front() == "*") {
        for (std::size_t skip = 0; skip <= words.size(); ++skip)
            if (fits(pattern.subspan(1), words.subspan(skip))) return true;
        return false;
    }
    return !words.empty() && pattern.front() == words.front() && fits(pattern.subspan(1), words.subspan(1));
}

// A cell that is one printed figure, "$" and spaces taken off: "365,817",
// "(6,003.4)", "-12", "5.61"; nullopt for text, dashes and empty cells.
std::optional<std::string> figure_cell(std::string_view cell) {
    std::string figure;
    for (const char c : cell)
        if (c != '$' && c != ' ') figure += c;
    std::string_view digits = figure;
    if (digits.starts_with('(') && digits.ends_with(')')) digits = digits.substr(1, digits.size() - 2);
    if (digits.starts_with('-')) digits.remove_prefix(1);
    const std::optional<DecimalNumber> number = parse_decimal(digits);
    if (!number || number->length != digits.size()) return std::nullopt;
    return figure;
}

// The latest year (1900-2099) a cell names, 0 when none.
int latest_year(std::string_view cell) {
    int latest = 0;
    for (std::size_t i = 0; i + 4 <= cell.size(); ++i) {
        const auto is_digit = [&](std::size_t at) { return std::isdigit(static_cast<unsigned char>(cell[at])); };
        if (!is_digit(i) || !is_digit(i + 1) || !is_digit(i + 2) || !is_digit(i + 3)) continue;
        if ((i > 0 && (is_digit(i - 1) || cell[i - 1] == ',' || cell[i - 1] == '.')) ||
            (i + 4 < cell.size() && (is_digit(i + 4) || cell[i + 4] == ',' || cell[i + 4] == '.')))
            continue;
        const int year = std::stoi(std::string(cell.substr(i, 4)));
        if (year >= 1900 && year <= 2099) latest = std::max(latest, year);
    }
    return latest;
}

std::vector<std::string> cells_of(std::string_view line) {
    std::vector<std::string> cells;
    std::size_t start = 0;
    while (true) {
        const std::size_t bar = line.find('|', start);
        std::string_view cell = line.substr(start, bar == std::string_view::npos ? std::string_view::npos : bar - start);
        while (!cell.empty() && cell.front() == ' ') cell.remove_prefix(1);
        while (!cell.empty() && cell.back() == ' ') cell.remove_suffix(1);
        cells.emplace_back(cell);
        if (bar == std::string_view::npos) return cells;
        start = bar + 1;
    }
}

// A table row that prints a figure for the latest period.
struct FigureRow {
    std::vector<std::vector<std::string>> labels;  // its label's words, and with the heading row's before them
    std::string printed_label;
    std::optional<std::string> value;  // nullopt: a dash in the latest period's column
};

// The day a text names ("Balance at December 31, 2015", "At June 30,
// 2023"), as an ISO date; empty when it names none.
std::string day_in(std::string_view text) {
    for (std::size_t at = 0; at < text.size(); ++at) {
        if (at > 0 && text[at - 1] != ' ') continue;
        if (const std::optional<std::string> date = normalize_date(text.substr(at)); date && date->size() == 10)
            return *date;
    }
    return {};
}

struct PageRows {
    std::vector<FigureRow> rows;
    std::string header_day;  // ISO date: the first header's latest column's
    std::string line_day;    // a line's above the first figures ("At June 30, 2023")
};

// The rows of one page. A header row (years over the figure columns, no
// other figures) picks the column: the first that names its latest year.
PageRows figure_rows(std::string_view page) {
    PageRows read;
    std::size_t column = 0;
    std::vector<std::string> section;
    for (const std::string_view line : lines_of(page)) {
        const std::vector<std::string> cells = cells_of(line);
        const std::span<const std::string> values = std::span(cells).subspan(1);
        std::vector<int> years;
        bool has_figure = false, only_years = true;
        for (const std::string& cell : values) {
            years.push_back(latest_year(cell));
            const bool figure = figure_cell(cell).has_value();
            has_figure = has_figure || figure;
            only_years = only_years && (!figure || (cell.size() == 4 && years.back() > 0));
        }
        const int latest = years.empty() ? 0 : std::ranges::max(years);
        if (latest > 0 && only_years) {
            column = static_cast<std::size_t>(std::ranges::find(years, latest) - years.begin());
            if (read.header_day.empty()) read.header_day = day_in(values[column]);
            continue;
        }
        if (!has_figure) {
            section = label_words(cells.front());
            if (read.rows.empty() && read.line_day.empty() && cells.size() == 1) read.line_day = day_in(cells.front());
            continue;
        }
        FigureRow row{{label_words(cells.front())}, cells.front(), std::nullopt};
        if (!section.empty()) {
            std::vector<std::string> qualified = section;
            qualified.insert(qualified.end(), row.labels.front().begin(), row.labels.front().end());
            row.labels.push_back(std::move(qualified));
        }
        if (column < values.size()) row.value = figure_cell(values[column]);
        read.rows.push_back(std::move(row));
    }
    return read;
}

}  // namespace

std::map<std::string, LineItemValue> read_line_items(const std::vector<FoundKeyPage>& found,
                                                     const std::vector<std::string>& page_texts) {
    std::map<std::string, LineItemValue> items;
    std::map<int, PageRows> rows_of_page;
    for (const FoundKeyPage& key_page : found)
        for (const int page : key_page.pages)
            if (page >= 1 && page <= static_cast<int>(page_texts.size()) && !rows_of_page.count(page))
                rows_of_page[page] = figure_rows(page_texts[static_cast<std::size_t>(page - 1)]);
    for (const FoundKeyPage& key_page : found) {
        const int best = key_page.pages.front();
        const PageRows& best_rows = rows_of_page[best];
        const std::string& day = best_rows.header_day.empty() ? best_rows.line_day : best_rows.header_day;
        if (!key_page.key->period_field.empty() && !items.count(key_page.key->period_field) && !day.empty())
            items[key_page.key->period_field] = {day, best, {}};
        if (const std::string& field = key_page.key->scale_field; !field.empty() && !items.count(field)) {
            const double scale = scale_from_context(page_texts[static_cast<std::size_t>(best - 1)]);
            const char* word = scale == 1e3 ? "thousands" : scale == 1e6 ? "millions" : scale == 1e9 ? "billions" : nullptr;
            if (word) items[field] = {word, best, {}};
        }
        for (const LineItem& item : key_page.key->line_items) {
            if (items.count(item.field)) continue;
            const auto find = [&]() -> std::optional<LineItemValue> {
                for (const std::string& label : item.labels) {
                    const std::vector<std::string> pattern = label_words(label, true);
                    const auto fits_row = [&](const std::vector<std::string>& words) { return fits(pattern, words); };
                    for (const int page : key_page.pages)
                        for (const FigureRow& row : rows_of_page[page].rows)
                            if (row.value && std::ranges::any_of(row.labels, fits_row))
                                return LineItemValue{*row.value, page, row.printed_label};
                }
                return std::nullopt;
            };
            items[item.field] = find().value_or(LineItemValue{std::nullopt, best, {}});
        }
    }
    return items;
}

namespace {

// The value under a heading of these words (CaptionedField::below).
std::optional<std::string> read_below_heading(std::string_view page, const std::vector<std::string>& heading) {
    const auto plain = [](std::string_view text) -> std::optional<std::string> {
        while (!text.empty() && (text.back() == ' ' || text.back() == '.')) text.remove_suffix(1);
        while (!text.empty() && text.front() == ' ') text.remove_prefix(1);
        if (text.empty() || text.find('|') != std::string_view::npos) return std::nullopt;
        return std::string(text);
    };
    bool under_heading = false;
    for (const std::string_view line : lines_of(page)) {
        const std::vector<std::string> words = label_words(line);
        if (under_heading && !words.empty()) return plain(line);
        if (words == heading) {
            under_heading = true;
            continue;
        }
        const std::size_t colon = line.find(':');
        if (colon != std::string_view::npos && label_words(line.substr(0, colon)) == heading)
            if (auto value = plain(line.substr(colon + 1))) return value;
    }
    return std::nullopt;
}

}  // namespace

std::map<std::string, LineItemValue> read_captioned_fields(const std::vector<CaptionedField>& fields,
                                                           const std::vector<std::string>& page_texts) {
    std::map<std::string, LineItemValue> values;
    for (const CaptionedField& captioned : fields) {
        const std::vector<std::string> caption = label_words(captioned.caption);
        for (std::size_t page = 0; page < std::min(kCoverPages, page_texts.size()) && !values.count(captioned.field);
             ++page) {
            if (captioned.below) {
                if (auto value = read_below_heading(page_texts[page], caption))
                    values[captioned.field] = {std::move(value), static_cast<int>(page) + 1, captioned.caption};
                continue;
            }
            std::string_view above;
            for (const std::string_view line : lines_of(page_texts[page])) {
                const std::vector<std::string> words = label_words(line);
                if (words.size() >= caption.size() && std::equal(caption.begin(), caption.end(), words.begin())) {
                    std::string value(above);
                    while (!value.empty() && value.back() == ' ') value.pop_back();
                    if (!value.empty() && value.find('|') == std::string::npos)
                        values[captioned.field] = {value, static_cast<int>(page) + 1, std::string(line)};
                    break;
                }
                if (!words.empty()) above = line;
            }
        }
    }
    return values;
}

std::map<std::string, LineItemValue> read_phrase_fields(const std::vector<PhraseField>& fields,
                                                        const std::vector<std::string>& page_texts) {
    std::map<std::string, LineItemValue> values;
    for (const PhraseField& field : fields) {
        for (std::size_t page = 0; page < std::min(kCoverPages, page_texts.size()) && !values.count(field.field);
             ++page) {
            const std::vector<std::string> words = label_words(page_texts[page]);
            std::size_t first = words.size();
            for (const PhraseField::Choice& choice : field.choices) {
                for (const std::string& phrase : choice.phrases) {
                    const std::vector<std::string> wanted = label_words(phrase);
                    const auto at = std::ranges::search(words, wanted).begin() - words.begin();
                    if (!wanted.empty() && static_cast<std::size_t>(at) < first) {
                        first = static_cast<std::size_t>(at);
                        values[field.field] = {choice.value, static_cast<int>(page) + 1, phrase};
                    }
                }
            }
        }
    }
    return values;
}

LaidOutPages::LaidOutPages(std::vector<index::StoredChunk> chunks, const std::vector<PageText>& pages)
    : chunks_(std::move(chunks)), pages_(pages), chunks_of_page_(pages.size()) {
    for (std::size_t i = 0; i < chunks_.size(); ++i) {
        const ingest::Chunk& chunk = chunks_[i].chunk;
        for (int page = std::max(chunk.page_start, 1); page <= chunk.page_end; ++page)
            if (page <= static_cast<int>(pages.size())) chunks_of_page_[page - 1].push_back(i);
    }
}

std::string LaidOutPages::text(const std::vector<int>& numbers, bool marked) const {
    std::vector<bool> shown(chunks_.size(), false);
    std::string text, heading;
    const ingest::Chunk* previous = nullptr;
    for (const int number : numbers) {
        if (marked) text += "[page " + std::to_string(number) + "]\n";
        // A page no chunk covers (nothing the chunker kept) shows its stored text.
        if (chunks_of_page_[number - 1].empty()) text += pages_[number - 1].text + "\n";
        for (const std::size_t i : chunks_of_page_[number - 1]) {
            if (shown[i]) continue;
            shown[i] = true;
            const ingest::Chunk& chunk = chunks_[i].chunk;
            std::string_view body = chunk.text;
            // Consecutive text chunks repeat the last sentences of the one before.
            if (previous && previous->ordinal + 1 == chunk.ordinal && !previous->table && !chunk.table)
                body.remove_prefix(repeated_prefix(previous->text, body));
            while (!body.empty() && (body.front() == ' ' || body.front() == '\n')) body.remove_prefix(1);
            const std::string_view path = chunk.heading_path;
            const std::size_t last = path.rfind(" > ");
            const std::string_view title = last == std::string_view::npos ? path : path.substr(last + 3);
            if (!title.empty() && title != heading && !body.starts_with(title)) text += std::string(title) + "\n";
            heading = title;
            text += std::string(body) + "\n\n";
            previous = &chunk;
        }
    }
    return text;
}

}  // namespace folio::app
