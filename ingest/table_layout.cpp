#include "ingest/table_layout.h"

#include <algorithm>
#include <cmath>
#include <string_view>

namespace folio::ingest {

namespace {

// Thresholds in ems of the text involved. A space between words of prose is
// about 0.25 em (up to ~0.6 em in justified lines); columns of a table are set
// apart by several ems.
constexpr float kCellGapEms = 1.0f;
constexpr float kFigureGapEms = 0.45f;   // two figures, or a figure after a currency sign
constexpr float kRowGapEms = 2.5f;       // a larger vertical gap ends the table
constexpr float kHeadingGapEms = 1.5f;   // stacked column headings sit closer than this
constexpr int kMaxValueCellWords = 6;
constexpr int kMaxLabelWords = 16;
constexpr int kMaxSectionLabelWords = 24;  // "Net sales by category:", a wrapped label, between rows
constexpr int kMaxSectionLabelRun = 3;
constexpr int kMaxStackedHeadingLines = 4;
constexpr size_t kMaxHeaderRows = 8;

struct Cell {
    float x0 = 0, x1 = 0;
    std::vector<int> words;  // page word indexes, left to right
};

struct VisualRow {
    std::vector<int> lines;  // indexes into the page's lines
    Box box;
    float em = 0;
    std::vector<Cell> cells;
};

struct Interval {
    float x0, x1;
};

bool has_ascii_letter(std::string_view text) {
    return std::any_of(text.begin(), text.end(), [](char c) {
        return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
    });
}

bool has_digit(std::string_view text) {
    return std::any_of(text.begin(), text.end(), [](char c) { return c >= '0' && c <= '9'; });
}

bool is_currency_sign(std::string_view text) {
    return text == "$" || text == "\u20AC" || text == "\u00A3" || text == "\u00A5";
}

bool starts_with_currency(std::string_view text) {
    for (std::string_view sign : {"$", "\u20AC", "\u00A3", "\u00A5"})
        if (text.substr(0, sign.size()) == sign) return true;
    return false;
}

// "%" or ")" printed apart from the figure it closes: "39 %", "(3 )".
bool is_closing_mark(std::string_view text) {
    return text == "%" || text == ")" || text == "%)" || text == ")%";
}

bool is_dash(std::string_view text) {
    return text == "-" || text == "\u2014" || text == "\u2013" || text == "--";
}

// A figure: digits without letters ("1,234", "(3)", "$ 5.2", "39 %"), or a
// dash standing for zero.
bool is_figure(std::string_view text) {
    return is_dash(text) || (has_digit(text) && !has_ascii_letter(text));
}

bool is_year(std::string_view text) {
    return text.size() == 4 && (text.substr(0, 2) == "19" || text.substr(0, 2) == "20") &&
           std::all_of(text.begin(), text.end(), [](char c) { return c >= '0' && c <= '9'; });
}

float overlap(float a0, float a1, float b0, float b1) { return std::min(a1, b1) - std::max(a0, b0); }

Box union_box(const Box& a, const Box& b) {
    return {std::min(a.x0, b.x0), std::min(a.y0, b.y0), std::max(a.x1, b.x1), std::max(a.y1, b.y1)};
}

class PageTables {
public:
    PageTables(const Page& page, int page_index, const std::vector<TextLine>& lines)
        : page_(page), page_index_(page_index), lines_(lines) {}

    std::vector<DetectedTable> find() {
        build_rows();
        std::vector<DetectedTable> tables;
        size_t start = 0;
        while (start < rows_.size()) {
            std::vector<size_t> run = table_run(start);
            if (run.empty()) {
                ++start;
                continue;
            }
            extend_over_stacked_headings(run);
            DetectedTable detected{make_table(run), {}};
            for (size_t r : run) detected.lines.insert(detected.lines.end(), rows_[r].lines.begin(), rows_[r].lines.end());
            std::sort(detected.lines.begin(), detected.lines.end());
            tables.push_back(std::move(detected));
            start = run.back() + 1;
        }
        return tables;
    }

private:
    const Word& word(int index) const { return page_.words[static_cast<size_t>(index)]; }

    std::string cell_text(const Cell& cell) const {
        std::string text;
        for (size_t i = 0; i < cell.words.size(); ++i) {
            const Word& current = word(cell.words[i]);
            if (i > 0) {
                const Word& previous = word(cell.words[i - 1]);
                const bool joined = !previous.space_after || is_currency_sign(previous.text) ||
                                    is_closing_mark(current.text);
                if (!joined) text += ' ';
            }
            text += current.text;
        }
        return text;
    }

    void build_rows() {
        std::vector<int> order;
        for (size_t i = 0; i < lines_.size(); ++i)
            if (lines_[i].has_geometry() && lines_[i].end_word > lines_[i].first_word)
                order.push_back(static_cast<int>(i));
        const auto center = [&](int line) {
            const Box& box = lines_[static_cast<size_t>(line)].box;
            return 0.5f * (box.y0 + box.y1);
        };
        std::stable_sort(order.begin(), order.end(), [&](int a, int b) {
            if (center(a) != center(b)) return center(a) < center(b);
            return lines_[static_cast<size_t>(a)].box.x0 < lines_[static_cast<size_t>(b)].box.x0;
        });
        for (int line : order) {
            const Box& box = lines_[static_cast<size_t>(line)].box;
            if (!rows_.empty()) {
                const Box& first = lines_[static_cast<size_t>(rows_.back().lines.front())].box;
                const float tolerance = 0.4f * std::min(box.height(), first.height());
                if (std::fabs(center(line) - 0.5f * (first.y0 + first.y1)) <= tolerance) {
                    rows_.back().lines.push_back(line);
                    rows_.back().box = union_box(rows_.back().box, box);
                    continue;
                }
            }
            rows_.push_back({{line}, box, 0, {}});
        }
        for (VisualRow& row : rows_) split_cells(row);
    }

    void split_cells(VisualRow& row) {
        std::vector<int> words;
        for (int line : row.lines) {
            const TextLine& text_line = lines_[static_cast<size_t>(line)];
            for (int w = text_line.first_word; w < text_line.end_word; ++w) words.push_back(w);
        }
        std::stable_sort(words.begin(), words.end(),
                         [&](int a, int b) { return word(a).box.x0 < word(b).box.x0; });
        std::vector<Cell> cells;
        for (int index : words) {
            const Word& current = word(index);
            row.em = std::max(row.em, word_em(current));
            if (!cells.empty()) {
                const Word& previous = word(cells.back().words.back());
                const float gap = current.box.x0 - previous.box.x1;
                const float em = std::max(word_em(previous), word_em(current));
                const bool figure_boundary =
                    gap > kFigureGapEms * em &&
                    (starts_with_currency(current.text) || (is_figure(previous.text) && is_figure(current.text)));
                if (gap <= kCellGapEms * em && !figure_boundary) {
                    cells.back().words.push_back(index);
                    cells.back().x1 = std::max(cells.back().x1, current.box.x1);
                    continue;
                }
            }
            cells.push_back({current.box.x0, current.box.x1, {index}});
        }
        // "$" belongs to the figure after it, "%" and ")" to the one before.
        for (size_t i = 0; i < cells.size(); ++i) {
            const bool currency_alone = cells[i].words.size() == 1 && is_currency_sign(word(cells[i].words[0]).text);
            if (currency_alone && i + 1 < cells.size()) {
                cells[i + 1].words.insert(cells[i + 1].words.begin(), cells[i].words[0]);
                cells[i + 1].x0 = cells[i].x0;
                cells.erase(cells.begin() + static_cast<std::ptrdiff_t>(i));
                --i;
            }
        }
        for (size_t i = 1; i < cells.size(); ++i) {
            const bool closing_alone = cells[i].words.size() == 1 && is_closing_mark(word(cells[i].words[0]).text);
            if (closing_alone) {
                cells[i - 1].words.push_back(cells[i].words[0]);
                cells[i - 1].x1 = cells[i].x1;
                cells.erase(cells.begin() + static_cast<std::ptrdiff_t>(i));
                --i;
            }
        }
        row.cells = std::move(cells);
    }

    bool cell_is_figure(const Cell& cell) const { return is_figure(cell_text(cell)); }
    bool cell_is_data(const Cell& cell) const {
        const std::string text = cell_text(cell);
        return is_figure(text) && !is_year(text);
    }

    // Several cells, the ones after the label short, and figures among them
    // (or three columns of text: a heading row, a text table).
    bool table_like(const VisualRow& row) const {
        if (row.cells.size() < 2) return false;
        if (static_cast<int>(row.cells.front().words.size()) > kMaxLabelWords) return false;
        bool figures = false;
        for (size_t i = 1; i < row.cells.size(); ++i) {
            if (static_cast<int>(row.cells[i].words.size()) > kMaxValueCellWords) return false;
            figures = figures || cell_is_figure(row.cells[i]);
        }
        return figures || row.cells.size() >= 3;
    }

    bool has_data(const VisualRow& row) const {
        return std::any_of(row.cells.begin(), row.cells.end(), [&](const Cell& cell) { return cell_is_data(cell); });
    }

    // At least two of the row's cells (its only one, if it has one) line up
    // with cells of the run so far.
    bool aligned_with_run(const VisualRow& row, const std::vector<size_t>& run) const {
        int aligned = 0;
        for (const Cell& cell : row.cells) {
            const bool lines_up = std::any_of(run.begin(), run.end(), [&](size_t r) {
                return std::any_of(rows_[r].cells.begin(), rows_[r].cells.end(), [&](const Cell& other) {
                    return overlap(cell.x0, cell.x1, other.x0, other.x1) > 0;
                });
            });
            if (lines_up) ++aligned;
        }
        return aligned >= std::min<int>(2, static_cast<int>(row.cells.size()));
    }

    // Left edge of the run's first column of figures (or of its second column).
    float first_value_x0(const std::vector<size_t>& run) const {
        float x0 = INFINITY;
        for (size_t r : run)
            for (const Cell& cell : rows_[r].cells)
                if (cell_is_figure(cell)) x0 = std::min(x0, cell.x0);
        if (std::isinf(x0) && rows_[run.front()].cells.size() > 1) x0 = rows_[run.front()].cells[1].x0;
        return x0;
    }

    bool is_section_label(const VisualRow& row, const std::vector<size_t>& run) const {
        return row.cells.size() == 1 &&
               static_cast<int>(row.cells[0].words.size()) <= kMaxSectionLabelWords &&
               row.cells[0].x0 < first_value_x0(run);
    }

    // The rows of a table starting at rows_[start], or none.
    std::vector<size_t> table_run(size_t start) const {
        if (!table_like(rows_[start])) return {};
        std::vector<size_t> run{start};
        std::vector<size_t> labels;  // section labels waiting for a table row below them
        int table_like_rows = 1;
        bool data = has_data(rows_[start]);
        for (size_t next = start + 1; next < rows_.size(); ++next) {
            const VisualRow& previous = rows_[labels.empty() ? run.back() : labels.back()];
            const VisualRow& row = rows_[next];
            if (row.box.y0 - previous.box.y1 > kRowGapEms * std::max(previous.em, row.em)) break;
            if (table_like(row) && aligned_with_run(row, run)) {
                run.insert(run.end(), labels.begin(), labels.end());
                labels.clear();
                run.push_back(next);
                ++table_like_rows;
                data = data || has_data(row);
                continue;
            }
            if (static_cast<int>(labels.size()) < kMaxSectionLabelRun && is_section_label(row, run)) {
                labels.push_back(next);
                continue;
            }
            break;
        }
        if (table_like_rows < 2 || (!data && table_like_rows < 3)) return {};
        return run;
    }

    // Column headings stacked above the first table-like row ("Total Number
    // of" / "Shares"): short, no figures, over the columns of figures.
    void extend_over_stacked_headings(std::vector<size_t>& run) const {
        const float value_x0 = first_value_x0(run);
        float value_x1 = -INFINITY;
        for (size_t r : run)
            for (const Cell& cell : rows_[r].cells)
                if (cell.x0 >= value_x0) value_x1 = std::max(value_x1, cell.x1);
        for (int added = 0; added < kMaxStackedHeadingLines && run.front() > 0; ++added) {
            const VisualRow& below = rows_[run.front()];
            const VisualRow& above = rows_[run.front() - 1];
            if (below.box.y0 - above.box.y1 > kHeadingGapEms * std::max(below.em, above.em)) return;
            if (has_data(above)) return;
            const float em = above.em;
            for (const Cell& cell : above.cells)
                if (static_cast<int>(cell.words.size()) > kMaxValueCellWords || cell.x0 < value_x0 - em ||
                    cell.x1 > value_x1 + em)
                    return;
            run.insert(run.begin(), run.front() - 1);
        }
    }

    Table make_table(const std::vector<size_t>& run) const {
        // Heading rows: those above the first row of data, less the section
        // labels just above it.
        size_t header_rows = 1;
        for (size_t i = 0; i < run.size(); ++i)
            if (has_data(rows_[run[i]])) {
                header_rows = i;
                break;
            }
        while (header_rows > 0 && rows_[run[header_rows - 1]].cells.size() == 1) --header_rows;
        header_rows = std::min(header_rows, kMaxHeaderRows);

        const std::vector<size_t> header(run.begin(), run.begin() + static_cast<std::ptrdiff_t>(header_rows));
        const std::vector<size_t> body(run.begin() + static_cast<std::ptrdiff_t>(header_rows), run.end());
        const Columns columns = column_model(body);

        Table table;
        if (!header.empty()) {
            table.header.assign(columns.count(), std::string());
            for (size_t r : header) {
                for (size_t c = 0; c < rows_[r].cells.size(); ++c) {
                    std::string& heading = table.header[columns.of(rows_[r].cells[c], c == 0, true, rows_[r].em)];
                    if (!heading.empty()) heading += ' ';
                    heading += cell_text(rows_[r].cells[c]);
                }
                table.header_lines.push_back(table_row(rows_[r], columns, true));
            }
        }
        for (size_t r : body) table.rows.push_back(table_row(rows_[r], columns, false));
        return table;
    }

    // Columns are where the body's figures are; a label column to their left
    // when rows start with text there.
    struct Columns {
        std::vector<Interval> values;
        bool label = false;

        size_t count() const { return values.size() + (label ? 1 : 0); }

        // `heading`: the cell is in a heading row, where a column heading
        // centred over right-aligned figures starts left of them too.
        size_t of(const Cell& cell, bool first_in_row, bool heading, float em) const {
            if (values.empty()) return 0;
            const bool left_of_figures = heading ? cell.x1 <= values.front().x0 : cell.x0 < values.front().x0 - em;
            if (label && first_in_row && left_of_figures) return 0;
            size_t best = 0;
            float best_overlap = 0;
            float best_distance = INFINITY;
            for (size_t i = 0; i < values.size(); ++i) {
                const float shared = overlap(cell.x0, cell.x1, values[i].x0, values[i].x1);
                const float distance = std::fabs((cell.x0 + cell.x1) - (values[i].x0 + values[i].x1));
                if (shared > best_overlap || (best_overlap <= 0 && shared <= 0 && distance < best_distance)) {
                    best = i;
                    best_overlap = std::max(shared, 0.0f);
                    best_distance = distance;
                }
            }
            return best + (label ? 1 : 0);
        }
    };

    Columns column_model(const std::vector<size_t>& body) const {
        std::vector<Interval> spans;
        for (size_t r : body)
            for (const Cell& cell : rows_[r].cells)
                if (cell_is_figure(cell)) spans.push_back({cell.x0, cell.x1});
        if (spans.empty())
            for (size_t r : body)
                for (size_t c = 1; c < rows_[r].cells.size(); ++c)
                    spans.push_back({rows_[r].cells[c].x0, rows_[r].cells[c].x1});
        std::sort(spans.begin(), spans.end(), [](const Interval& a, const Interval& b) { return a.x0 < b.x0; });
        Columns columns;
        for (const Interval& span : spans) {
            if (!columns.values.empty() && span.x0 <= columns.values.back().x1)
                columns.values.back().x1 = std::max(columns.values.back().x1, span.x1);
            else
                columns.values.push_back(span);
        }
        if (!columns.values.empty())
            for (size_t r : body)
                if (!rows_[r].cells.empty() && rows_[r].cells.front().x0 < columns.values.front().x0 - rows_[r].em)
                    columns.label = true;
        return columns;
    }

    TableRow table_row(const VisualRow& row, const Columns& columns, bool heading) const {
        TableRow result;
        result.cells.assign(std::max<size_t>(columns.count(), 1), std::string());
        for (size_t c = 0; c < row.cells.size(); ++c) {
            std::string& cell = result.cells[columns.of(row.cells[c], c == 0, heading, row.em)];
            if (!cell.empty()) cell += ' ';
            cell += cell_text(row.cells[c]);
        }
        result.page = page_index_;
        result.box = row.box;
        return result;
    }

    const Page& page_;
    int page_index_;
    const std::vector<TextLine>& lines_;
    std::vector<VisualRow> rows_;  // top to bottom
};

}  // namespace

std::vector<DetectedTable> find_tables(const std::vector<Page>& pages, const std::vector<TextLine>& lines) {
    if (lines.empty()) return {};
    const int page_index = lines.front().page;
    return PageTables(pages[static_cast<size_t>(page_index)], page_index, lines).find();
}

}  // namespace folio::ingest
