#include "ingest/text_file.h"

#include <string_view>

#include "ingest/file_bytes.h"
#include "ingest/page_text.h"
#include "ingest/text_decoding.h"

namespace folio::ingest {

namespace {

bool is_space(char c) { return c == ' ' || c == '\t' || c == '\v'; }

// Windows (CR LF) and classic Mac (CR) line ends become '\n'.
std::string normalize_line_ends(const std::string& text) {
    std::string normalized;
    normalized.reserve(text.size());
    for (size_t i = 0; i < text.size(); ++i) {
        if (text[i] != '\r') {
            normalized += text[i];
        } else if (i + 1 >= text.size() || text[i + 1] != '\n') {
            normalized += '\n';
        }
    }
    return normalized;
}

// Words split at whitespace; a line's last word ends the line, and the last
// word before a blank line ends a block (paragraph).
Page page_from_text(std::string_view content, int number) {
    Page page;
    page.number = number;
    bool pending_blank_line = false;
    size_t line_start = 0;
    while (line_start <= content.size()) {
        size_t line_stop = content.find('\n', line_start);
        if (line_stop == std::string_view::npos) line_stop = content.size();
        const std::string_view line = content.substr(line_start, line_stop - line_start);
        const size_t words_before = page.words.size();
        for (size_t pos = 0; pos < line.size();) {
            while (pos < line.size() && is_space(line[pos])) ++pos;
            const size_t start = pos;
            while (pos < line.size() && !is_space(line[pos])) ++pos;
            if (pos > start) page.words.push_back({.text = std::string(line.substr(start, pos - start))});
        }
        if (page.words.size() == words_before) {
            pending_blank_line = true;
        } else {
            if (pending_blank_line && words_before > 0) page.words[words_before - 1].block_end = true;
            pending_blank_line = false;
            page.words.back().line_end = true;
        }
        line_start = line_stop + 1;
    }
    if (!page.words.empty()) page.words.back().block_end = true;
    page.text = build_page_text(page.words);
    return page;
}

}  // namespace

std::vector<Page> read_text_file(const std::string& path) {
    const std::string text = normalize_line_ends(decode_text(read_whole_file(path)));
    std::vector<Page> pages;
    size_t page_start = 0;
    while (true) {
        const size_t form_feed = text.find('\f', page_start);
        const size_t page_stop = form_feed == std::string::npos ? text.size() : form_feed;
        pages.push_back(page_from_text(std::string_view(text).substr(page_start, page_stop - page_start),
                                       static_cast<int>(pages.size()) + 1));
        if (form_feed == std::string::npos) break;
        page_start = form_feed + 1;
        // A form feed ending the file (printer output) does not start a page.
        if (text.find_first_not_of(" \t\r\n", page_start) == std::string::npos) break;
    }
    return pages;
}

}  // namespace folio::ingest
