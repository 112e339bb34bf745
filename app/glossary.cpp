#include "app/glossary.h"

#include <algorithm>
#include <cctype>

namespace folio::app {
namespace {

std::string lowercase(std::string_view text) {
    std::string lower(text);
    std::transform(lower.begin(), lower.end(), lower.begin(), [](unsigned char c) { return std::tolower(c); });
    return lower;
}

std::string_view trimmed(std::string_view text) {
    const auto first = text.find_first_not_of(" \t\r");
    if (first == std::string_view::npos) return {};
    return text.substr(first, text.find_last_not_of(" \t\r") - first + 1);
}

bool is_abbreviation(std::string_view term) {
    return std::any_of(term.begin(), term.end(), [](unsigned char c) {
        return std::isupper(c) || std::isdigit(c) || c == '&' || c == '/' || c == '.';
    });
}

bool is_plain_lowercase_word(std::string_view word) {
    return std::all_of(word.begin(), word.end(), [](unsigned char c) { return std::islower(c); });
}

// A query's words: split at whitespace, outer punctuation trimmed (a term's
// own '&', '/', '-', '.' inside it stay: "MD&A", "s/p", "10-K").
std::vector<std::string_view> query_words(std::string_view query) {
    static constexpr std::string_view kOuter = ".,;:!?\"'()[]{}<>";
    std::vector<std::string_view> words;
    std::size_t at = 0;
    while (at < query.size()) {
        while (at < query.size() && std::isspace(static_cast<unsigned char>(query[at]))) ++at;
        std::size_t end = at;
        while (end < query.size() && !std::isspace(static_cast<unsigned char>(query[end]))) ++end;
        std::string_view word = query.substr(at, end - at);
        while (!word.empty() && kOuter.find(word.front()) != std::string_view::npos) word.remove_prefix(1);
        // A trailing '.' may be the term's own ("q.d."): keep it when the bare word is no term.
        std::string_view bare = word;
        while (!bare.empty() && kOuter.find(bare.back()) != std::string_view::npos) bare.remove_suffix(1);
        if (!bare.empty()) words.push_back(bare);
        if (bare.size() != word.size() && word.back() == '.') words.push_back(word.substr(0, bare.size() + 1));
        at = end;
    }
    return words;
}

}  // namespace

Glossary Glossary::parse(std::string_view tsv) {
    Glossary glossary;
    std::size_t line_number = 0;
    for (std::size_t at = 0; at <= tsv.size();) {
        std::size_t end = tsv.find('\n', at);
        if (end == std::string_view::npos) end = tsv.size();
        const std::string_view line = tsv.substr(at, end - at);
        at = end + 1;
        ++line_number;
        if (trimmed(line).empty() || line.front() == '#') continue;
        const std::string where = "glossary line " + std::to_string(line_number) + ": ";
        const std::size_t tab = line.find('\t');
        if (tab == std::string_view::npos) throw GlossaryError(where + "no tab between term and expansion");
        GlossaryEntry entry{std::string(trimmed(line.substr(0, tab))), std::string(trimmed(line.substr(tab + 1))), {}};
        if (entry.term.empty() || entry.expansion.empty()) throw GlossaryError(where + "empty term or expansion");
        if (entry.expansion.find('\t') != std::string::npos) throw GlossaryError(where + "more than two columns");
        for (std::size_t from = 0;;) {
            const std::size_t bar = entry.expansion.find(" | ", from);
            const std::string_view meaning =
                trimmed(std::string_view(entry.expansion).substr(from, bar == std::string::npos ? std::string::npos : bar - from));
            if (meaning.empty()) throw GlossaryError(where + "an empty meaning between \" | \"");
            entry.meanings.emplace_back(meaning);
            if (bar == std::string::npos) break;
            from = bar + 3;
        }
        if (!glossary.exact_.emplace(entry.term, glossary.entries_.size()).second)
            throw GlossaryError(where + "\"" + entry.term + "\" is already in the glossary");
        glossary.folded_.emplace(lowercase(entry.term), glossary.entries_.size());
        glossary.entries_.push_back(std::move(entry));
    }
    return glossary;
}

const GlossaryEntry* Glossary::lookup(std::string_view term) const {
    if (const auto exact = exact_.find(std::string(term)); exact != exact_.end()) return &entries_[exact->second];
    if (const auto folded = folded_.find(lowercase(term)); folded != folded_.end()) return &entries_[folded->second];
    return nullptr;
}

std::vector<std::string> Glossary::expand_query(std::string_view query) const {
    const std::string lower_query = lowercase(query);
    std::vector<std::string> meanings;
    for (const std::string_view word : query_words(query)) {
        const auto exact = exact_.find(std::string(word));
        const GlossaryEntry* entry = exact != exact_.end() ? &entries_[exact->second]
                                     : is_plain_lowercase_word(word) ? nullptr
                                                                     : lookup(word);
        if (!entry || !is_abbreviation(entry->term)) continue;
        for (const std::string& meaning : entry->meanings)
            if (lower_query.find(lowercase(meaning)) == std::string::npos &&
                std::find(meanings.begin(), meanings.end(), meaning) == meanings.end())
                meanings.push_back(meaning);
    }
    return meanings;
}

}  // namespace folio::app
