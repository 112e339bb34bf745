#include "app/grounding.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <set>
#include <unordered_map>
#include <utility>

#include "app/value_normalize.h"

namespace folio::app {
namespace {

bool is_digit(char c) { return c >= '0' && c <= '9'; }
bool is_alpha(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); }
bool is_alnum(char c) { return is_digit(c) || is_alpha(c); }
char lower(char c) { return (c >= 'A' && c <= 'Z') ? char(c - 'A' + 'a') : c; }

struct Codepoint {
    char32_t value;
    std::size_t length;
};

// One UTF-8 character; a stray byte reads as U+FFFD of length 1.
Codepoint decode(std::string_view s, std::size_t pos) {
    auto byte = [&](std::size_t i) { return static_cast<unsigned char>(s[i]); };
    unsigned char lead = byte(pos);
    std::size_t length = lead < 0x80 ? 1 : (lead >> 5) == 0x6 ? 2 : (lead >> 4) == 0xE ? 3 : (lead >> 3) == 0x1E ? 4 : 0;
    if (length == 0 || pos + length > s.size()) return {0xFFFD, 1};
    char32_t value = length == 1 ? lead : lead & (0x7F >> length);
    for (std::size_t i = 1; i < length; ++i) {
        if ((byte(pos + i) & 0xC0) != 0x80) return {0xFFFD, 1};
        value = (value << 6) | (byte(pos + i) & 0x3F);
    }
    return {value, length};
}

// ASCII forms of U+00C0..U+00FF, so "José" and "Jose" are one word; empty
// for × and ÷, which are symbols.
constexpr std::string_view kLatin1Fold[64] = {
    "a", "a", "a", "a", "a", "a", "ae", "c", "e", "e", "e", "e", "i", "i", "i", "i",
    "d", "n", "o", "o", "o", "o", "o",  "",  "o", "u", "u", "u", "u", "y", "th", "ss",
    "a", "a", "a", "a", "a", "a", "ae", "c", "e", "e", "e", "e", "i", "i", "i", "i",
    "d", "n", "o", "o", "o", "o", "o",  "",  "o", "u", "u", "u", "u", "y", "th", "y"};

std::optional<std::string_view> latin_letter(char32_t cp) {
    if (cp == 0xB5) return "u";  // µ, as in µg
    if (cp >= 0xC0 && cp <= 0xFF && !kLatin1Fold[cp - 0xC0].empty()) return kLatin1Fold[cp - 0xC0];
    return std::nullopt;
}

// Non-ASCII spaces, punctuation and symbols: Latin-1's, general punctuation
// through miscellaneous symbols (dashes, quotes, €, ℃, arrows), CJK and
// full-width punctuation.
bool is_separator(char32_t cp) {
    return (cp >= 0x80 && cp <= 0xBF) || cp == 0xD7 || cp == 0xF7 || (cp >= 0x2000 && cp <= 0x2BFF) ||
           (cp >= 0x3000 && cp <= 0x303F) || (cp >= 0xFE30 && cp <= 0xFE4F) || (cp >= 0xFF00 && cp <= 0xFF0F) ||
           (cp >= 0xFF1A && cp <= 0xFF20) || (cp >= 0xFF3B && cp <= 0xFF40) || (cp >= 0xFF5B && cp <= 0xFF65) ||
           cp == 0xFFFD;
}

// A word or number of a text, in the form stage 2 compares: lowercase ASCII
// words with accents folded, numbers without grouping commas or leading and
// trailing zeros ("1,234.50" → "1234.5", "03" → "3"), and each other
// non-ASCII character (Chinese, Greek...) on its own.
struct Token {
    std::string key;
    std::size_t begin = 0, end = 0;
    bool number = false;
};

std::string canonical_number(std::string_view written) {
    std::string digits;
    for (char c : written)
        if (c != ',') digits += c;
    std::size_t point = digits.find('.');
    if (point != std::string::npos) {
        while (digits.back() == '0') digits.pop_back();
        if (digits.back() == '.') digits.pop_back();
    }
    std::size_t leading = 0;
    while (leading + 1 < digits.size() && digits[leading] == '0' && digits[leading + 1] != '.') ++leading;
    return digits.substr(leading);
}

std::vector<Token> tokenize(std::string_view text) {
    std::vector<Token> tokens;
    const std::size_t n = text.size();
    std::size_t i = 0;
    while (i < n) {
        char c = text[i];
        if (is_digit(c)) {
            const std::size_t run_end = digit_run_end(text, i);
            if (parse_decimal(text.substr(i, run_end - i))->length == run_end - i) {
                tokens.push_back({canonical_number(text.substr(i, run_end - i)), i, run_end, true});
            } else {
                // "03.03.2021", "1.2.3": each group on its own.
                for (std::size_t g = i; g < run_end;) {
                    std::size_t g_end = g;
                    while (g_end < run_end && is_digit(text[g_end])) ++g_end;
                    tokens.push_back({canonical_number(text.substr(g, g_end - g)), g, g_end, true});
                    g = g_end + 1;
                }
            }
            i = run_end;
            continue;
        }
        if (static_cast<unsigned char>(c) < 0x80 && !is_alpha(c)) {
            ++i;
            continue;
        }
        Codepoint cp = decode(text, i);
        if (is_alpha(c) || latin_letter(cp.value)) {
            Token word{{}, i, i, false};
            while (i < n) {
                if (is_alpha(text[i])) {
                    word.key += lower(text[i++]);
                    continue;
                }
                const Codepoint next = decode(text, i);
                const auto folded = latin_letter(next.value);
                if (!folded) break;
                word.key += *folded;
                i += next.length;
            }
            word.end = i;
            tokens.push_back(std::move(word));
            continue;
        }
        if (!is_separator(cp.value)) tokens.push_back({std::string(text.substr(i, cp.length)), i, i + cp.length, false});
        i += cp.length;
    }
    return tokens;
}

// A span is a whole word or number: "Ann" is not in "Annual", "12" not in
// "2012", "12.5" or "1,120".
bool whole_at(std::string_view text, std::size_t begin, std::size_t end) {
    if (begin > 0 && is_alnum(text[begin - 1]) && is_alnum(text[begin])) return false;
    if (end < text.size() && is_alnum(text[end]) && is_alnum(text[end - 1])) return false;
    auto separator = [](char c) { return c == '.' || c == ','; };
    if (is_digit(text[begin]) && begin >= 2 && separator(text[begin - 1]) && is_digit(text[begin - 2])) return false;
    if (is_digit(text[end - 1]) && end + 1 < text.size() && separator(text[end]) && is_digit(text[end + 1]))
        return false;
    return true;
}

struct DateMention {
    std::string iso;
    std::size_t begin = 0, end = 0;
};

bool may_start_date(const Token& token) {
    static constexpr std::string_view kMonthPrefixes[] = {"jan", "feb", "mar", "apr", "may", "jun",
                                                          "jul", "aug", "sep", "oct", "nov", "dec"};
    if (token.number) return token.key.size() <= 4 && token.key.find('.') == std::string::npos;
    for (auto prefix : kMonthPrefixes)
        if (token.key.starts_with(prefix)) return true;
    return false;
}

// The dates a page writes, in any form normalize_date reads: the longest run
// of up to 6 tokens ("2021年3月3日") from a month name or a number, with at
// most 3 bytes between tokens, that normalize_date accepts.
std::vector<DateMention> dates_in(std::string_view text, const std::vector<Token>& tokens) {
    constexpr std::size_t kMaxTokens = 6, kMaxGap = 3;
    std::vector<DateMention> dates;
    for (std::size_t i = 0; i < tokens.size(); ++i) {
        if (!may_start_date(tokens[i])) continue;
        std::size_t last = i;
        while (last + 1 < tokens.size() && last + 1 < i + kMaxTokens &&
               tokens[last + 1].begin - tokens[last].end <= kMaxGap)
            ++last;
        for (std::size_t j = last; j > i; --j) {
            std::size_t begin = tokens[i].begin, end = tokens[j].end;
            if (auto iso = normalize_date(text.substr(begin, end - begin))) {
                dates.push_back({*iso, begin, end});
                i = j;
                break;
            }
        }
    }
    return dates;
}

struct IndexedPage {
    int page = 0;
    std::string text;
    std::vector<Token> tokens;
    std::vector<WrittenNumber> numbers;
    std::vector<DateMention> dates;
    std::vector<std::uint32_t> terms;  // Data::terms of each token
    double scale = 1;                  // scale_from_context
};

struct Posting {
    std::uint32_t page;   // into Data::pages
    std::uint32_t token;  // into that page's tokens
};

// A distinct token key of the document, with its characters for edit
// distances and its postings in page and token order.
struct Term {
    std::string key;
    std::u32string chars;
    std::vector<Posting> postings;
};

std::u32string code_points(std::string_view text) {
    std::u32string chars;
    for (std::size_t i = 0; i < text.size();) {
        Codepoint cp = decode(text, i);
        chars += cp.value;
        i += cp.length;
    }
    return chars;
}

// How well evidence supports claim, a number as written: nullopt when the
// evidence's magnitude, times 1 or its page's declared scale, does not round
// to the claim at the claim's precision. 0.9 for an equal magnitude, 0.85
// when only rounding to it, or when sign or percent differ.
std::optional<double> number_support(const WrittenNumber& claim, const WrittenNumber& evidence,
                                     double evidence_scale) {
    const double target = std::abs(claim.value);
    const double slack = 1e-9 * std::max(1.0, target);
    const double tolerance = 0.5 * std::pow(10.0, -claim.decimals) * claim.scale + slack;
    std::optional<double> best;
    for (double factor : {1.0, evidence.scale == 1 && !evidence.percent ? evidence_scale : 1.0}) {
        double difference = std::abs(std::abs(evidence.value) * factor - target);
        if (difference > tolerance) continue;
        bool same_form = (claim.value < 0) == (evidence.value < 0) && claim.percent == evidence.percent;
        double score = difference <= slack && same_form ? 0.9 : 0.85;
        best = std::max(best.value_or(0), score);
    }
    return best;
}

// Levenshtein distance in characters, or limit + 1 once it exceeds limit.
std::size_t bounded_distance(std::u32string_view a, std::u32string_view b, std::size_t limit) {
    if ((a.size() > b.size() ? a.size() - b.size() : b.size() - a.size()) > limit) return limit + 1;
    std::vector<std::size_t> row(b.size() + 1), next(b.size() + 1);
    for (std::size_t j = 0; j <= b.size(); ++j) row[j] = j;
    for (std::size_t i = 1; i <= a.size(); ++i) {
        next[0] = i;
        std::size_t row_min = next[0];
        for (std::size_t j = 1; j <= b.size(); ++j) {
            next[j] = std::min({row[j] + 1, next[j - 1] + 1, row[j - 1] + (a[i - 1] == b[j - 1] ? 0 : 1)});
            row_min = std::min(row_min, next[j]);
        }
        if (row_min > limit) return limit + 1;
        std::swap(row, next);
    }
    return std::min(row[b.size()], limit + 1);
}

std::vector<std::string_view> number_keys(const std::vector<Token>& tokens, std::size_t begin, std::size_t end) {
    std::vector<std::string_view> keys;
    for (std::size_t t = begin; t < end; ++t)
        if (tokens[t].number) keys.push_back(tokens[t].key);
    return keys;
}

}  // namespace

struct PageIndex::Data {
    std::vector<IndexedPage> pages;
    std::vector<Term> terms;
    std::unordered_map<std::string, std::uint32_t> term_ids;  // Term::key → index into terms

    GroundedSpan span(std::size_t page, std::size_t begin, std::size_t end, double score) const {
        const IndexedPage& p = pages[page];
        return {p.page, begin, end, p.text.substr(begin, end - begin), score};
    }

    std::optional<GroundedSpan> exact(std::string_view value) const {
        for (std::size_t p = 0; p < pages.size(); ++p) {
            std::string_view text = pages[p].text;
            for (std::size_t at = text.find(value); at != std::string_view::npos; at = text.find(value, at + 1))
                if (whole_at(text, at, at + value.size())) return span(p, at, at + value.size(), 1.0);
        }
        return std::nullopt;
    }

    std::optional<GroundedSpan> same_tokens(const std::vector<Token>& value) const {
        auto first = term_ids.find(value.front().key);
        if (first == term_ids.end()) return std::nullopt;
        for (Posting at : terms[first->second].postings) {
            const IndexedPage& page = pages[at.page];
            if (at.token + value.size() > page.tokens.size()) continue;
            bool same = true;
            for (std::size_t k = 1; k < value.size() && same; ++k) same = page.tokens[at.token + k].key == value[k].key;
            std::size_t begin = page.tokens[at.token].begin, end = page.tokens[at.token + value.size() - 1].end;
            if (same && whole_at(page.text, begin, end)) return span(at.page, begin, end, 0.95);
        }
        return std::nullopt;
    }

    std::optional<GroundedSpan> same_date(const std::string& iso) const {
        for (std::size_t p = 0; p < pages.size(); ++p)
            for (const DateMention& date : pages[p].dates)
                if (date.iso == iso) return span(p, date.begin, date.end, 0.9);
        return std::nullopt;
    }

    std::optional<GroundedSpan> same_number(const WrittenNumber& claim) const {
        std::optional<GroundedSpan> best;
        for (std::size_t p = 0; p < pages.size(); ++p)
            for (const WrittenNumber& evidence : pages[p].numbers)
                if (auto score = number_support(claim, evidence, pages[p].scale);
                    score && (!best || *score > best->score))
                    best = span(p, evidence.begin, evidence.end, *score);
        return best;
    }

    std::optional<GroundedSpan> fuzzy(const std::vector<Token>& value) const {
        std::u32string value_chars;
        for (const Token& token : value) value_chars += (value_chars.empty() ? U"" : U" ") + code_points(token.key);
        const std::size_t limit = value_chars.size() * 15 / 100;
        if (value_chars.size() < 6 || limit == 0) return std::nullopt;
        const auto value_numbers = number_keys(value, 0, value.size());

        // Windows of the value's token count, one more or one less, around
        // anchors: a match holds the value's numbers exactly, so its first
        // number anchors; a value of words anchors on its two longest words
        // within the distance limit.
        std::set<std::pair<std::uint32_t, std::size_t>> starts;  // (page, first token)
        auto add_starts = [&](const Term& term, std::size_t anchor) {
            for (Posting at : term.postings)
                for (std::size_t shift : {0, 1, 2})
                    if (at.token + shift >= anchor + 1) starts.insert({at.page, at.token + shift - anchor - 1});
        };
        auto first_number = std::find_if(value.begin(), value.end(), [](const Token& t) { return t.number; });
        if (first_number != value.end()) {
            if (auto found = term_ids.find(first_number->key); found != term_ids.end())
                add_starts(terms[found->second], std::size_t(first_number - value.begin()));
        } else {
            std::vector<std::size_t> anchors(value.size());
            for (std::size_t k = 0; k < value.size(); ++k) anchors[k] = k;
            std::stable_sort(anchors.begin(), anchors.end(),
                             [&](std::size_t a, std::size_t b) { return value[a].key.size() > value[b].key.size(); });
            anchors.resize(std::min<std::size_t>(anchors.size(), 2));
            for (std::size_t anchor : anchors) {
                const std::u32string chars = code_points(value[anchor].key);
                for (const Term& term : terms)
                    if (bounded_distance(term.chars, chars, limit) <= limit) add_starts(term, anchor);
            }
        }

        struct Candidate {
            std::size_t distance;
            std::uint32_t page;
            std::size_t begin, end;
        };
        std::optional<Candidate> best;
        std::u32string window;
        for (auto [p, start] : starts) {
            const IndexedPage& page = pages[p];
            for (std::size_t length = value.size() > 1 ? value.size() - 1 : 1; length <= value.size() + 1; ++length) {
                if (start + length > page.tokens.size()) break;
                if (number_keys(page.tokens, start, start + length) != value_numbers) continue;
                window.clear();
                for (std::size_t t = start; t < start + length; ++t) {
                    if (t > start) window += U' ';
                    window += terms[page.terms[t]].chars;
                }
                std::size_t distance = bounded_distance(window, value_chars, limit);
                if (distance > limit || (best && distance >= best->distance)) continue;
                best = Candidate{distance, p, page.tokens[start].begin, page.tokens[start + length - 1].end};
            }
        }
        if (!best) return std::nullopt;
        return span(best->page, best->begin, best->end, 0.8 * (1.0 - double(best->distance) / value_chars.size()));
    }
};

PageIndex::PageIndex(std::span<const PageText> pages) {
    auto data = std::make_unique<Data>();
    for (const PageText& page : pages) {
        IndexedPage indexed;
        indexed.page = page.page;
        indexed.text = page.text;
        indexed.tokens = tokenize(indexed.text);
        indexed.numbers = numbers_in(indexed.text);
        indexed.dates = dates_in(indexed.text, indexed.tokens);
        indexed.scale = scale_from_context(indexed.text);
        const auto page_number = static_cast<std::uint32_t>(data->pages.size());
        for (std::size_t t = 0; t < indexed.tokens.size(); ++t) {
            const std::string& key = indexed.tokens[t].key;
            auto [at, added] = data->term_ids.try_emplace(key, static_cast<std::uint32_t>(data->terms.size()));
            if (added) data->terms.push_back({key, code_points(key), {}});
            data->terms[at->second].postings.push_back({page_number, static_cast<std::uint32_t>(t)});
            indexed.terms.push_back(at->second);
        }
        data->pages.push_back(std::move(indexed));
    }
    data_ = std::move(data);
}
PageIndex::~PageIndex() = default;
PageIndex::PageIndex(PageIndex&&) noexcept = default;
PageIndex& PageIndex::operator=(PageIndex&&) noexcept = default;

std::optional<GroundedSpan> PageIndex::locate(std::string_view value, std::string_view format_hint) const {
    std::size_t first = value.find_first_not_of(" \t\r\n"), last = value.find_last_not_of(" \t\r\n");
    if (first == std::string_view::npos) return std::nullopt;
    value = value.substr(first, last - first + 1);
    const std::vector<Token> tokens = tokenize(value);
    if (tokens.empty()) return std::nullopt;

    if (auto found = data_->exact(value)) return found;
    if (auto found = data_->same_tokens(tokens)) return found;
    nlohmann::json normalized = normalize_value(value, format_hint);
    std::string type = normalized.is_object() ? normalized["type"].get<std::string>() : "";
    if (type == "date") {
        if (auto found = data_->same_date(normalized["iso"].get<std::string>())) return found;
    } else if (type == "money" || type == "percent" || type == "number") {
        if (auto claims = numbers_in(value); claims.size() == 1)
            if (auto found = data_->same_number(claims.front())) return found;
    }
    return data_->fuzzy(tokens);
}

std::optional<GroundedSpan> locate_value(std::string_view value, std::span<const PageText> pages,
                                         std::string_view format_hint) {
    return PageIndex(pages).locate(value, format_hint);
}

}  // namespace folio::app
