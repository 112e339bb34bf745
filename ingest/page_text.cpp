#include "ingest/page_text.h"

#include <algorithm>
#include <cmath>

namespace folio::ingest {

namespace {

// A box seen along the text's own axes: primary runs in reading direction,
// secondary in the direction successive lines advance.
struct TextFrame {
    float p0, p1, s0, s1;
};

TextFrame text_frame(const Box& box, int rotation) {
    switch (rotation & 3) {
    case 1: return {box.y0, box.y1, -box.x1, -box.x0};  // reads downwards, lines advance leftwards
    case 2: return {-box.x1, -box.x0, -box.y1, -box.y0};
    case 3: return {-box.y1, -box.y0, box.x0, box.x1};  // reads upwards, lines advance rightwards
    default: return {box.x0, box.x1, box.y0, box.y1};
    }
}

float secondary_overlap(const TextFrame& a, const TextFrame& b) {
    return std::min(a.s1, b.s1) - std::max(a.s0, b.s0);
}

float word_size(const PositionedWord& word, const TextFrame& frame) {
    return word.word.font_size > 0 ? word.word.font_size : frame.s1 - frame.s0;
}

// Poppler sets has_space_after only between words of one line, so a word with
// a space after it continues its line; a word without one continues it only
// when the next word touches it (a font change inside a word, "$" "1,234").
bool continues_line(const PositionedWord& word, const PositionedWord& next) {
    if (word.rotation != next.rotation) return false;
    const TextFrame a = text_frame(word.word.box, word.rotation);
    const TextFrame b = text_frame(next.word.box, next.rotation);
    const float size = std::max(word_size(word, a), word_size(next, b));
    const float smaller_height = std::min(a.s1 - a.s0, b.s1 - b.s0);
    if (secondary_overlap(a, b) < 0.5f * smaller_height) return false;
    const float gap = b.p0 - a.p1;
    if (gap < -0.3f * size) return false;
    return word.word.space_after || gap < 0.3f * size;
}

struct Line {
    size_t first = 0, last = 0;  // word indices, inclusive
    int rotation = 0;
    TextFrame frame{};
    float font_size = 0;  // of its first word
};

// pdftotext (TextOutputDev) keeps lines in one block while their baselines are
// at most 1.5 font sizes apart and their font sizes within 5%; a block also
// ends where the next line starts above it (a new column or table cell) or
// beside it without horizontal overlap.
bool starts_new_block(const Line& line, const Line& next) {
    if (line.rotation != next.rotation) return true;
    const float size = std::max(line.font_size, next.font_size);
    if (size <= 0) return true;
    if (std::fabs(line.font_size - next.font_size) > 0.05f * size) return true;
    const float baseline_step = next.frame.s1 - line.frame.s1;
    if (baseline_step <= 0.2f * size || baseline_step > 1.5f * size) return true;
    return next.frame.p0 > line.frame.p1 || next.frame.p1 < line.frame.p0;
}

bool ends_with_hyphen(const std::string& text) { return !text.empty() && text.back() == '-'; }

bool is_layout_space(char c) { return c == ' ' || c == '\n' || c == '\f'; }

struct WordEnd {
    bool line_end = false, block_end = false, space_after = true;
};

// Reads line and block ends off Poppler's text output for the page, which is
// built from the same words: ' ' between words, '\n' after a line, another
// '\n' after a block, and nothing after a line ending in '-' inside a block
// (the hyphen dropped). Empty when a word is not where it should be.
std::vector<WordEnd> word_ends_from_layout_text(const std::vector<PositionedWord>& words, std::string_view layout_text) {
    size_t cursor = 0;
    const auto skip_spaces = [&] {
        const size_t start = cursor;
        while (cursor < layout_text.size() && is_layout_space(layout_text[cursor])) ++cursor;
        return layout_text.substr(start, cursor - start);
    };
    std::vector<WordEnd> ends;
    ends.reserve(words.size());
    skip_spaces();
    for (const PositionedWord& positioned : words) {
        const std::string_view text = positioned.word.text;
        bool hyphen_dropped = false;
        if (layout_text.substr(cursor, text.size()) == text) {
            cursor += text.size();
        } else if (text.ends_with('-') && layout_text.substr(cursor, text.size() - 1) == text.substr(0, text.size() - 1)) {
            cursor += text.size() - 1;
            hyphen_dropped = true;
        } else {
            return {};
        }
        const std::string_view gap = skip_spaces();
        const auto newlines = std::count(gap.begin(), gap.end(), '\n');
        const bool at_end = cursor == layout_text.size();
        WordEnd& end = ends.emplace_back();
        if (hyphen_dropped) {
            // Joined to the next line, or (one '\n') the last line of its block.
            end.line_end = true;
            end.block_end = newlines > 0 || at_end;
            end.space_after = end.block_end;
        } else {
            end.line_end = newlines > 0 || at_end;
            end.block_end = newlines > 1 || at_end;
            end.space_after = end.line_end || !gap.empty();
        }
    }
    skip_spaces();
    if (cursor != layout_text.size()) return {};
    return ends;
}

void mark_from_geometry(std::vector<PositionedWord>& words) {
    std::vector<Line> lines;
    for (size_t i = 0; i < words.size(); ++i) {
        const TextFrame frame = text_frame(words[i].word.box, words[i].rotation);
        if (i == 0 || !continues_line(words[i - 1], words[i])) {
            lines.push_back({i, i, words[i].rotation, frame, word_size(words[i], frame)});
            continue;
        }
        Line& line = lines.back();
        line.last = i;
        line.frame.p0 = std::min(line.frame.p0, frame.p0);
        line.frame.p1 = std::max(line.frame.p1, frame.p1);
        line.frame.s0 = std::min(line.frame.s0, frame.s0);
        line.frame.s1 = std::max(line.frame.s1, frame.s1);
    }

    for (size_t l = 0; l < lines.size(); ++l) {
        Word& last = words[lines[l].last].word;
        last.line_end = true;
        last.block_end = l + 1 == lines.size() || starts_new_block(lines[l], lines[l + 1]);
        // pdftotext joins a line ending in '-' to the next line of its block.
        last.space_after = last.block_end || !ends_with_hyphen(last.text);
    }
}

}  // namespace

std::vector<Word> mark_lines_and_blocks(std::vector<PositionedWord> words, std::string_view layout_text) {
    const std::vector<WordEnd> ends = word_ends_from_layout_text(words, layout_text);
    if (ends.size() == words.size() && !words.empty()) {
        for (size_t i = 0; i < words.size(); ++i) {
            words[i].word.line_end = ends[i].line_end;
            words[i].word.block_end = ends[i].block_end;
            words[i].word.space_after = ends[i].space_after;
        }
    } else {
        mark_from_geometry(words);
    }
    std::vector<Word> result;
    result.reserve(words.size());
    for (PositionedWord& word : words) result.push_back(std::move(word.word));
    return result;
}

std::string build_page_text(const std::vector<Word>& words) {
    std::string text;
    for (size_t i = 0; i < words.size(); ++i) {
        const Word& word = words[i];
        const bool last = i + 1 == words.size();
        if (word.line_end && !word.space_after && !last && !word.text.empty() && word.text.back() == '-') {
            text.append(word.text, 0, word.text.size() - 1);
            continue;
        }
        text += word.text;
        if (last) break;
        if (word.block_end) text += "\n\n";
        else if (word.line_end) text += '\n';
        else if (word.space_after) text += ' ';
    }
    return text;
}

}  // namespace folio::ingest
