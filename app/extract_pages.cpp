#include "app/extract_pages.h"

#include <algorithm>
#include <cctype>
#include <string_view>

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
    std::size_t start = 0;
    while (start < page.size()) {
        std::size_t end = page.find('\n', start);
        if (end == std::string_view::npos) end = page.size();
        std::string_view line = page.substr(start, end - start);
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
        start = end + 1;
    }
    return false;
}

}  // namespace

std::vector<int> find_key_pages(const std::vector<KeyPage>& key_pages, const std::vector<std::string>& page_texts) {
    constexpr int kTitleWeight = 2;
    constexpr int kMinimumTerms = 3;
    std::vector<std::string> folded_pages;
    for (const std::string& text : page_texts) folded_pages.push_back(folded_lines(text));
    std::vector<int> found;
    for (const KeyPage& key : key_pages) {
        std::vector<std::string> headings, terms;
        for (const std::string& heading : key.headings) headings.push_back(folded(heading));
        for (const std::string& term : key.terms) terms.push_back(folded(term));
        const auto terms_on = [&](std::size_t i) {
            return static_cast<int>(std::ranges::count_if(
                terms, [&](const std::string& term) { return folded_pages[i].find(term) != std::string::npos; }));
        };
        int best = 0, best_score = 0, best_figures = 0;
        for (std::size_t i = 0; i < folded_pages.size(); ++i) {
            const int on_page = terms_on(i);
            if (on_page < kMinimumTerms) continue;
            const int score = on_page + (has_title(folded_pages[i], headings) ? kTitleWeight : 0);
            const int figures = figures_in(folded_pages[i]);
            if (score > best_score || (score == best_score && figures > best_figures))
                best = static_cast<int>(i) + 1, best_score = score, best_figures = figures;
        }
        if (best == 0) continue;
        found.push_back(best);
        for (const int neighbour : {best - 1, best + 1})
            if (neighbour >= 1 && neighbour <= static_cast<int>(folded_pages.size()) &&
                terms_on(static_cast<std::size_t>(neighbour - 1)) >= kMinimumTerms)
                found.push_back(neighbour);
    }
    return found;
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
