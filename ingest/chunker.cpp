#include "ingest/chunker.h"

#include <algorithm>
#include <cmath>
#include <set>
#include <string_view>

#include "ingest/layout.h"
#include "ingest/utf8.h"

namespace folio::ingest {

namespace {

bool is_ascii_letter(unsigned char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); }
bool is_ascii_upper(unsigned char c) { return c >= 'A' && c <= 'Z'; }
bool is_ascii_lower(unsigned char c) { return c >= 'a' && c <= 'z'; }
bool is_ascii_digit(unsigned char c) { return c >= '0' && c <= '9'; }

bool is_cjk(char32_t c) {
    return (c >= 0x3000 && c <= 0x30FF) || (c >= 0x3400 && c <= 0x4DBF) || (c >= 0x4E00 && c <= 0x9FFF) ||
           (c >= 0xF900 && c <= 0xFAFF) || (c >= 0xFF00 && c <= 0xFFEF);
}

// Letters of alphabets other than Latin's basic 26: Latin-1 and Latin
// Extended, Greek, Cyrillic, Hebrew, Arabic, Indic scripts.
bool is_other_letter(char32_t c) {
    return (c >= 0x00C0 && c <= 0x024F && c != 0x00D7 && c != 0x00F7) || (c >= 0x0370 && c <= 0x1FFF);
}

// ---- token estimate ----------------------------------------------------------
//
// Counts the pieces a byte-pair-encoding tokenizer of the cl100k_base kind cuts
// text into, without its vocabulary. Calibrated on 10-K filing text (Apple
// 2021, PG&E 2015) against cl100k_base: within 1% over each document, median
// 4% per paragraph.
//   - a run of ASCII letters is one token up to 8 letters (common words are
//     whole tokens), plus 0.15 per letter beyond; an ALL-CAPS run is split
//     more, about one token per 2.5 letters;
//   - a run of digits is one token per 3 digits ("191,973" is 3 tokens);
//   - each punctuation mark or symbol is a token, an apostrophe with the
//     letters after it ("’s") one token;
//   - a run of other letters (accented, Cyrillic, ...) 0.45 per letter;
//     Chinese characters 1.5 each, kana and full-width forms 1 each;
//   - whitespace is free, except that a run of line breaks is a token.
double token_weight(std::string_view text) {
    double total = 0;
    size_t i = 0;
    const size_t size = text.size();
    const auto letter_before = [&](size_t at) { return at > 0 && is_ascii_letter(static_cast<unsigned char>(text[at - 1])); };
    const auto skip_ascii_letters = [&](size_t at) {
        while (at < size && is_ascii_letter(static_cast<unsigned char>(text[at]))) ++at;
        return at;
    };
    while (i < size) {
        const auto c = static_cast<unsigned char>(text[i]);
        if (c == ' ' || c == '\t' || c == '\r' || c == '\f' || c == '\v') {
            ++i;
        } else if (c == '\n') {
            while (i < size && (text[i] == '\n' || text[i] == ' ' || text[i] == '\t' || text[i] == '\r')) ++i;
            total += 1;
        } else if (is_ascii_letter(c)) {
            const size_t end = skip_ascii_letters(i);
            const size_t length = end - i;
            const bool capitals = length > 1 && std::all_of(text.begin() + static_cast<std::ptrdiff_t>(i),
                                                            text.begin() + static_cast<std::ptrdiff_t>(end),
                                                            [](char ch) { return is_ascii_upper(static_cast<unsigned char>(ch)); });
            if (capitals) total += std::max(1.0, static_cast<double>(length) / 2.5);
            else total += 1.0 + 0.15 * static_cast<double>(length > 8 ? length - 8 : 0);
            i = end;
        } else if (is_ascii_digit(c)) {
            size_t end = i;
            while (end < size && is_ascii_digit(static_cast<unsigned char>(text[end]))) ++end;
            total += std::ceil(static_cast<double>(end - i) / 3.0);
            i = end;
        } else if (c < 0x80) {
            const bool apostrophe = c == '\'' && letter_before(i) && i + 1 < size &&
                                    is_ascii_letter(static_cast<unsigned char>(text[i + 1]));
            i = apostrophe ? skip_ascii_letters(i + 1) : i + 1;
            total += 1;
        } else {
            const size_t start = i;
            const char32_t code_point = next_code_point(text, i);
            if (code_point == 0x2019 && letter_before(start) && i < size &&
                is_ascii_letter(static_cast<unsigned char>(text[i]))) {
                i = skip_ascii_letters(i);
                total += 1;
            } else if (code_point >= 0x3400 && code_point <= 0x9FFF) {
                total += 1.5;
            } else if (is_other_letter(code_point)) {
                int letters = 1;
                for (size_t next = i; next < size;) {
                    const auto byte = static_cast<unsigned char>(text[next]);
                    if (is_ascii_letter(byte)) {
                        ++next;
                    } else if (byte >= 0x80) {
                        if (!is_other_letter(next_code_point(text, next))) break;
                    } else {
                        break;
                    }
                    ++letters;
                    i = next;
                }
                total += std::max(1.0, 0.45 * letters);
            } else {
                total += 1;
            }
        }
    }
    return total;
}

// ---- paragraph text ----------------------------------------------------------

// A word as it reads in the chunk: a word split across lines by a hyphen is
// joined back into one.
struct RenderedWord {
    std::string text;
    bool space_before = false;
    size_t first_line = 0, last_line = 0;  // indexes into the paragraph's lines
};

char32_t first_code_point(std::string_view text) {
    size_t pos = 0;
    return text.empty() ? kInvalidCodePoint : next_code_point(text, pos);
}

char32_t last_code_point(std::string_view text) {
    size_t start = text.size();
    while (start > 0 && (static_cast<unsigned char>(text[start - 1]) & 0xC0) == 0x80) --start;
    if (start > 0) --start;
    size_t pos = start;
    return text.empty() ? kInvalidCodePoint : next_code_point(text, pos);
}

std::vector<RenderedWord> render_words(const std::vector<Page>& pages, const std::vector<TextLine>& lines) {
    std::vector<RenderedWord> rendered;
    const Word* previous = nullptr;
    for (size_t l = 0; l < lines.size(); ++l) {
        const std::vector<Word>& words = pages[static_cast<size_t>(lines[l].page)].words;
        for (int w = lines[l].first_word; w < lines[l].end_word; ++w) {
            const Word& word = words[static_cast<size_t>(w)];
            if (word.text.empty()) continue;
            if (previous == nullptr) {
                rendered.push_back({word.text, false, l, l});
                previous = &word;
                continue;
            }
            RenderedWord& last = rendered.back();
            bool glue = !previous->space_after;
            if (w == lines[l].first_word) {
                const std::string& before = last.text;
                const bool hyphenated = before.size() >= 2 && before.back() == '-' &&
                                        (is_ascii_letter(static_cast<unsigned char>(before[before.size() - 2])) ||
                                         is_ascii_digit(static_cast<unsigned char>(before[before.size() - 2])));
                if (hyphenated && is_ascii_lower(static_cast<unsigned char>(word.text[0]))) {
                    last.text.pop_back();  // "exam-" + "ple"
                    glue = true;
                } else {
                    // "COVID-" + "19" keeps its hyphen; CJK runs on without spaces.
                    glue = hyphenated || (is_cjk(last_code_point(before)) && is_cjk(first_code_point(word.text)));
                }
            }
            if (glue) {
                last.text += word.text;
                last.last_line = l;
            } else {
                rendered.push_back({word.text, true, l, l});
            }
            previous = &word;
        }
    }
    return rendered;
}

bool is_abbreviation(std::string_view stem) {
    static const std::set<std::string, std::less<>> abbreviations = {
        "mr", "mrs", "ms", "dr", "prof", "sr", "jr", "st", "mt", "ft", "inc", "co", "corp", "ltd", "no",
        "nos", "vs", "approx", "dept", "fig", "figs", "est", "ref", "vol", "pp", "pg", "ex", "cf", "al",
        "jan", "feb", "mar", "apr", "jun", "jul", "aug", "sep", "sept", "oct", "nov", "dec"};
    std::string lower(stem);
    std::transform(lower.begin(), lower.end(), lower.begin(),
                   [](char c) { return is_ascii_upper(static_cast<unsigned char>(c)) ? static_cast<char>(c - 'A' + 'a') : c; });
    return abbreviations.count(lower) > 0;
}

// Whether a sentence ends after words[i] (the sentence began at words[begin]).
bool ends_sentence(const std::vector<RenderedWord>& words, size_t begin, size_t i) {
    const std::string_view word = strip_closing_marks(words[i].text);
    if (word.empty() || i + 1 >= words.size()) return false;
    const char32_t last = last_code_point(word);
    if (last == 0x3002 || last == 0xFF01 || last == 0xFF1F) return true;  // 。！？
    const char mark = word.back();
    if (mark != '.' && mark != '!' && mark != '?') return false;
    const std::string& next = words[i + 1].text;
    const auto next_first = static_cast<unsigned char>(next[0]);
    const bool starts_sentence = is_ascii_upper(next_first) || is_ascii_digit(next_first) || next_first >= 0x80 ||
                                 next_first == '"' || next_first == '(' || next_first == '[';
    if (!starts_sentence) return false;
    if (mark != '.') return true;
    const std::string_view stem = word.substr(0, word.size() - 1);
    if (stem.empty() || stem.find('.') != std::string_view::npos || is_abbreviation(stem)) return false;  // "U.S.", "Inc."
    if (stem.size() == 1 && is_ascii_upper(static_cast<unsigned char>(stem[0]))) return false;          // an initial
    const bool list_number = i == begin && stem.size() <= 2 &&
                             std::all_of(stem.begin(), stem.end(), [](char c) { return is_ascii_digit(static_cast<unsigned char>(c)); });
    return !list_number;
}

struct Sentence {
    size_t begin = 0, end = 0;  // [begin, end) of the paragraph's rendered words
};

std::vector<Sentence> split_sentences(const std::vector<RenderedWord>& words) {
    std::vector<Sentence> sentences;
    size_t begin = 0;
    for (size_t i = 0; i < words.size(); ++i)
        if (i + 1 == words.size() || ends_sentence(words, begin, i)) {
            sentences.push_back({begin, i + 1});
            begin = i + 1;
        }
    return sentences;
}

std::string join_rendered(const std::vector<RenderedWord>& words, size_t begin, size_t end) {
    std::string text;
    for (size_t i = begin; i < end; ++i) {
        if (i > begin && words[i].space_before) text += ' ';
        text += words[i].text;
    }
    return text;
}

// ---- tables --------------------------------------------------------------------

// Cells joined by " | ", trailing empty cells left off: "Total | 141,521 | | | $60,851",
// "| 2021 | 2020" for a heading row with nothing over the labels.
std::string table_line(const std::vector<std::string>& cells) {
    size_t used = cells.size();
    while (used > 0 && cells[used - 1].empty()) --used;
    std::string text;
    for (size_t i = 0; i < used; ++i) {
        if (i > 0) text += text.empty() ? "|" : " |";
        if (!cells[i].empty()) {
            if (!text.empty()) text += ' ';
            text += cells[i];
        }
    }
    return text;
}

// ---- assembly ------------------------------------------------------------------

struct Piece {
    enum class Kind { Heading, Body, Overlap };
    Kind kind = Kind::Body;
    std::string text;
    double tokens = 0;
    int paragraph = 0;          // pieces of one paragraph are joined by a space
    bool space_before = true;   // within a paragraph; false where words ran on (CJK)
    size_t path = 0;            // index into ChunkAssembler::paths_
    std::vector<const TextLine*> lines;
};

class ChunkAssembler {
public:
    ChunkAssembler(const std::vector<Page>& pages, const ChunkOptions& options)
        : pages_(pages),
          target_(std::max(1, options.target_tokens)),
          overlap_(std::clamp(options.overlap_tokens, 0, std::max(1, options.target_tokens) / 2)),
          max_table_(std::max(1, options.max_table_tokens)) {
        paths_.emplace_back();
    }

    void add_heading(const LayoutItem& item) {
        const double body = body_tokens();
        // Sections of level 1-2 start a chunk unless the one before is tiny
        // ("Item 1B. Unresolved Staff Comments — None."); deeper ones do when
        // the chunk is half full already.
        const bool outer = item.level <= 2 && body >= target_ / 8.0;
        if (outer || body >= target_ / 2.0) close_chunk(false);
        if (!has_body()) drop_overlap();  // a new section does not repeat the last one's sentences
        while (!open_headings_.empty() && open_headings_.back().first >= item.level) open_headings_.pop_back();
        open_headings_.emplace_back(item.level, item.title);
        std::vector<std::string> path;
        for (const auto& heading : open_headings_) path.push_back(heading.second);
        paths_.push_back(std::move(path));

        Piece piece;
        piece.kind = Piece::Kind::Heading;
        piece.text = item.title;
        piece.tokens = token_weight(piece.text);
        piece.paragraph = next_paragraph_++;
        piece.path = paths_.size() - 1;
        for (const TextLine& line : item.lines) piece.lines.push_back(&line);
        if (!fits(piece)) close_chunk(false);
        push(std::move(piece));
    }

    void add_paragraph(const LayoutItem& item) {
        const std::vector<RenderedWord> words = render_words(pages_, item.lines);
        if (words.empty()) return;
        const int paragraph = next_paragraph_++;
        const std::vector<Sentence> spans = split_sentences(words);
        std::vector<Piece> sentences;
        double paragraph_tokens = 0;
        for (const Sentence& span : spans) {
            sentences.push_back(body_piece(item, words, span.begin, span.end, paragraph));
            paragraph_tokens += sentences.back().tokens;
        }
        // Rather break at the paragraph than inside it, once the chunk has
        // a fair amount of text.
        if (tokens_ + 1 + paragraph_tokens > target_ && body_tokens() >= target_ / 2.0) close_chunk(true);
        for (size_t s = 0; s < sentences.size(); ++s) {
            if (!fits(sentences[s])) close_chunk(true);
            if (!fits(sentences[s])) drop_overlap();
            if (fits(sentences[s])) push(std::move(sentences[s]));
            else add_long_sentence(item, words, spans[s], paragraph);
        }
    }

    void add_table(const Table& table) {
        close_chunk(false);
        pieces_.clear();
        tokens_ = 0;

        const bool has_header = std::any_of(table.header.begin(), table.header.end(),
                                            [](const std::string& cell) { return !cell.empty(); });
        const std::string header = has_header ? table_line(table.header) : std::string();
        const double header_tokens = has_header ? token_weight(header) : 0;
        size_t row = 0;
        while (row < table.rows.size()) {
            Chunk chunk;
            chunk.table = true;
            chunk.heading_path = path_text(paths_.back());
            chunk.text = header;
            double tokens = header_tokens;
            if (has_header)
                for (const TableRow& line : table.header_lines) add_box(chunk, line.page, line.box);
            const size_t first_row = row;
            for (; row < table.rows.size(); ++row) {
                const std::string text = table_line(table.rows[row].cells);
                const double row_tokens = token_weight(text) + (chunk.text.empty() ? 0 : 1);
                if (row > first_row && tokens + row_tokens > max_table_) break;
                if (!chunk.text.empty()) chunk.text += '\n';
                chunk.text += text;
                tokens += row_tokens;
                add_box(chunk, table.rows[row].page, table.rows[row].box);
            }
            emit(std::move(chunk));
        }
    }

    std::vector<Chunk> finish() {
        close_chunk(false);
        return std::move(chunks_);
    }

private:
    Piece body_piece(const LayoutItem& item, const std::vector<RenderedWord>& words, size_t begin, size_t end,
                     int paragraph) const {
        Piece piece;
        piece.text = join_rendered(words, begin, end);
        piece.tokens = token_weight(piece.text);
        piece.paragraph = paragraph;
        piece.space_before = words[begin].space_before;
        piece.path = paths_.size() - 1;
        for (size_t l = words[begin].first_line; l <= words[end - 1].last_line; ++l) piece.lines.push_back(&item.lines[l]);
        return piece;
    }

    // A sentence longer than a chunk: cut between words, as many words to a
    // chunk as fit (word estimates add up to the text's: spaces are free).
    void add_long_sentence(const LayoutItem& item, const std::vector<RenderedWord>& words, const Sentence& sentence,
                           int paragraph) {
        size_t begin = sentence.begin;
        while (begin < sentence.end) {
            Piece probe;
            probe.paragraph = paragraph;
            double room = target_ - tokens_ - separator(probe);
            size_t end = begin;
            while (end < sentence.end && (end == begin || token_weight(words[end].text) <= room)) {
                room -= token_weight(words[end].text);
                ++end;
            }
            Piece piece = body_piece(item, words, begin, end, paragraph);
            if (!fits(piece) && has_body()) {
                close_chunk(false);
                continue;
            }
            push(std::move(piece));
            begin = end;
            if (begin < sentence.end) close_chunk(false);
        }
    }

    double separator(const Piece& piece) const {
        if (pieces_.empty()) return 0;
        const Piece& last = pieces_.back();
        return last.kind == Piece::Kind::Heading || last.paragraph != piece.paragraph ? 1 : 0;  // a line break
    }

    bool fits(const Piece& piece) const { return tokens_ + separator(piece) + piece.tokens <= target_; }

    void push(Piece piece) {
        tokens_ += separator(piece) + piece.tokens;
        pieces_.push_back(std::move(piece));
    }

    bool has_body() const {
        return std::any_of(pieces_.begin(), pieces_.end(), [](const Piece& p) { return p.kind == Piece::Kind::Body; });
    }

    double body_tokens() const {
        double tokens = 0;
        for (const Piece& piece : pieces_)
            if (piece.kind == Piece::Kind::Body) tokens += piece.tokens;
        return tokens;
    }

    void drop_overlap() {
        std::vector<Piece> kept;
        for (Piece& piece : pieces_)
            if (piece.kind != Piece::Kind::Overlap) kept.push_back(std::move(piece));
        rebuild(std::move(kept));
    }

    void rebuild(std::vector<Piece> pieces) {
        pieces_.clear();
        tokens_ = 0;
        for (Piece& piece : pieces) push(std::move(piece));
    }

    // Emits the chunk so far. Headings at its end move on to the next chunk;
    // with `overlap`, so do the last sentences (up to overlap_ tokens) when the
    // next chunk continues the same section.
    void close_chunk(bool overlap) {
        size_t end = pieces_.size();
        while (end > 0 && pieces_[end - 1].kind == Piece::Kind::Heading) --end;
        if (!has_body()) {
            drop_overlap();
            return;
        }
        std::vector<Piece> next;
        if (overlap && end == pieces_.size()) {
            double tokens = 0;
            size_t start = end;
            while (start > 0 && pieces_[start - 1].kind != Piece::Kind::Heading &&
                   tokens + pieces_[start - 1].tokens <= overlap_) {
                --start;
                tokens += pieces_[start].tokens;
            }
            // Never the whole chunk again: that would make no progress.
            if (start > 0)
                for (size_t i = start; i < end; ++i) {
                    next.push_back(pieces_[i]);
                    next.back().kind = Piece::Kind::Overlap;
                }
        }
        for (size_t i = end; i < pieces_.size(); ++i) next.push_back(std::move(pieces_[i]));
        pieces_.resize(end);
        emit(chunk_from_pieces());
        rebuild(std::move(next));
    }

    Chunk chunk_from_pieces() const {
        Chunk chunk;
        std::set<const TextLine*> covered;
        for (size_t i = 0; i < pieces_.size(); ++i) {
            const Piece& piece = pieces_[i];
            if (i > 0) {
                const Piece& last = pieces_[i - 1];
                if (last.kind == Piece::Kind::Heading) chunk.text += '\n';
                else if (last.paragraph != piece.paragraph) chunk.text += "\n\n";
                else if (piece.space_before) chunk.text += ' ';
            }
            chunk.text += piece.text;
            for (const TextLine* line : piece.lines)
                if (covered.insert(line).second) add_box(chunk, line->page, line->box);
        }
        chunk.heading_path = path_text(chunk_path());
        return chunk;
    }

    // What the sections making up the chunk's body have in common, leaving
    // out a tiny section merged in ("None." under "Item 1B.").
    std::vector<std::string> chunk_path() const {
        std::vector<std::pair<size_t, double>> tokens_by_path;  // in order of appearance
        double total = 0;
        for (const Piece& piece : pieces_) {
            if (piece.kind != Piece::Kind::Body) continue;
            total += piece.tokens;
            if (tokens_by_path.empty() || tokens_by_path.back().first != piece.path)
                tokens_by_path.emplace_back(piece.path, 0.0);
            tokens_by_path.back().second += piece.tokens;
        }
        std::vector<std::string> path;
        bool first = true;
        for (const auto& [index, tokens] : tokens_by_path) {
            if (tokens < total / 8.0) continue;
            const std::vector<std::string>& section = paths_[index];
            if (first) {
                path = section;
                first = false;
                continue;
            }
            size_t shared = 0;
            while (shared < path.size() && shared < section.size() && path[shared] == section[shared]) ++shared;
            path.resize(shared);
        }
        return path;
    }

    static std::string path_text(const std::vector<std::string>& path) {
        std::string text;
        for (const std::string& title : path) {
            if (!text.empty()) text += " > ";
            text += title;
        }
        return text;
    }

    void add_box(Chunk& chunk, int page_index, const Box& box) const {
        const Page& page = pages_[static_cast<size_t>(page_index)];
        const int number = page.number > 0 ? page.number : page_index + 1;
        chunk.page_start = chunk.page_start == 0 ? number : std::min(chunk.page_start, number);
        chunk.page_end = std::max(chunk.page_end, number);
        if (box.x1 > box.x0 || box.y1 > box.y0) chunk.boxes.push_back({number, box});
    }

    void emit(Chunk chunk) {
        chunk.ordinal = static_cast<int>(chunks_.size());
        chunk.token_count = estimate_tokens(chunk.text);
        chunks_.push_back(std::move(chunk));
    }

    const std::vector<Page>& pages_;
    const double target_;
    const double overlap_;
    const double max_table_;
    std::vector<std::pair<int, std::string>> open_headings_;  // (level, title), outermost first
    std::vector<std::vector<std::string>> paths_;             // every heading path so far; back() is current
    std::vector<Piece> pieces_;                                // the chunk being built
    double tokens_ = 0;                                        // of pieces_, separators included
    int next_paragraph_ = 0;
    std::vector<Chunk> chunks_;
};

}  // namespace

int estimate_tokens(const std::string& text) { return static_cast<int>(std::lround(token_weight(text))); }

std::vector<Chunk> chunk_pages(const std::vector<Page>& pages, const ChunkOptions& options) {
    const std::vector<LayoutItem> items = analyze_layout(pages);
    ChunkAssembler assembler(pages, options);
    for (const LayoutItem& item : items) {
        switch (item.kind) {
        case LayoutItemKind::Heading: assembler.add_heading(item); break;
        case LayoutItemKind::Paragraph: assembler.add_paragraph(item); break;
        case LayoutItemKind::Table: assembler.add_table(item.table); break;
        }
    }
    return assembler.finish();
}

}  // namespace folio::ingest
