#include "app/citation_check.h"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <set>
#include <string>

#include "app/value_normalize.h"

namespace folio::app {

namespace {

bool is_space(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v'; }
bool is_digit(char c) { return c >= '0' && c <= '9'; }
bool is_alpha(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); }

// The marker "[...]" starting at text[at]: its end, and its numbers appended
// to `numbers`; 0 when text[at] does not start a citation marker.
std::size_t read_marker(std::string_view text, std::size_t at, std::vector<int>* numbers) {
    if (at >= text.size() || text[at] != '[') return 0;
    std::vector<int> found;
    std::size_t i = at + 1;
    int range_from = -1;
    bool expect_number = true;
    while (i < text.size()) {
        const char c = text[i];
        if (is_digit(c) && expect_number) {
            int value = 0;
            while (i < text.size() && is_digit(text[i]) && value < 100000) value = value * 10 + (text[i++] - '0');
            if (range_from >= 0) {
                // A range such as [1-3]; a long or backward one is not a citation.
                if (value < range_from || value - range_from > 50) return 0;
                for (int n = range_from + 1; n <= value; ++n) found.push_back(n);
                range_from = -1;
            } else {
                found.push_back(value);
            }
            expect_number = false;
        } else if (c == ']' && !expect_number) {
            if (numbers) numbers->insert(numbers->end(), found.begin(), found.end());
            return i + 1 - at;
        } else if ((c == ',' || c == ';') && !expect_number) {
            expect_number = true;
            ++i;
        } else if (c == '-' && !expect_number && range_from < 0) {
            range_from = found.back();
            expect_number = true;
            ++i;
        } else if (c == ' ') {
            ++i;
        } else {
            return 0;
        }
    }
    return 0;
}

std::string lower(std::string_view text) {
    std::string out(text);
    for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    return out;
}

// ASCII-lowercased, curly quotes made straight, whitespace runs one space, trimmed.
std::string fold(std::string_view text) {
    std::string out;
    out.reserve(text.size());
    bool space = false;
    for (std::size_t i = 0; i < text.size(); ++i) {
        char c = text[i];
        // U+2018/U+2019 and U+201C/U+201D are E2 80 98/99 and E2 80 9C/9D.
        if (static_cast<unsigned char>(c) == 0xE2 && i + 2 < text.size() &&
            static_cast<unsigned char>(text[i + 1]) == 0x80) {
            const auto third = static_cast<unsigned char>(text[i + 2]);
            if (third == 0x98 || third == 0x99 || third == 0x9C || third == 0x9D) {
                c = third <= 0x99 ? '\'' : '"';
                i += 2;
            }
        }
        if (is_space(c)) {
            space = !out.empty();
            continue;
        }
        if (space) out += ' ';
        space = false;
        out += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    }
    return out;
}

const std::set<std::string>& stop_words() {
    static const std::set<std::string> words = {
        "the", "and", "for", "are", "was", "were", "been", "being", "has", "have", "had", "its", "it's", "this",
        "that", "these", "those", "with", "from", "into", "onto", "than", "then", "also", "which", "who", "whom",
        "what", "when", "where", "while", "how", "why", "not", "but", "all", "any", "each", "per", "our", "their",
        "they", "them", "there", "here", "his", "her", "she", "you", "your", "can", "could", "would", "should",
        "will", "may", "might", "must", "does", "did", "done", "about", "over", "under", "such", "other", "more",
        "most", "some", "one", "two", "both", "only", "very", "according", "source", "sources", "document",
        "documents", "answer", "question", "total", "year", "fiscal"};
    return words;
}

// The content words of text: letters only, lowercased, three letters or
// more, function words dropped, a plural's final s cut so "sales" meets "sale".
std::set<std::string> content_words(std::string_view text) {
    std::set<std::string> words;
    std::size_t i = 0;
    while (i < text.size()) {
        if (!is_alpha(text[i])) {
            ++i;
            continue;
        }
        const std::size_t start = i;
        while (i < text.size() && is_alpha(text[i])) ++i;
        std::string word = lower(text.substr(start, i - start));
        if (word.size() < 3 || stop_words().count(word)) continue;
        if (word.size() > 3 && word.back() == 's') word.pop_back();
        words.insert(std::move(word));
    }
    return words;
}

// Spans quoted in text: "..." and “...”.
std::vector<std::string> quoted_spans(std::string_view text) {
    std::vector<std::string> spans;
    const std::string_view open_curly = "\xE2\x80\x9C", close_curly = "\xE2\x80\x9D";
    for (std::size_t i = 0; i < text.size(); ++i) {
        std::string_view close;
        std::size_t after_open = 0;
        if (text[i] == '"') {
            close = "\"";
            after_open = i + 1;
        } else if (text.substr(i, 3) == open_curly) {
            close = close_curly;
            after_open = i + 3;
        } else {
            continue;
        }
        const std::size_t end = text.find(close, after_open);
        if (end == std::string_view::npos) break;
        const std::string span = fold(text.substr(after_open, end - after_open));
        if (!span.empty()) spans.push_back(span);
        i = end + close.size() - 1;
    }
    return spans;
}

struct SourceView {
    const NumberedSource* source;
    std::vector<NumberMention> numbers;
    std::set<std::string> words;
};

bool source_has_number(const SourceView& source, const NumberMention& claimed) {
    return std::any_of(source.numbers.begin(), source.numbers.end(),
                       [&](const NumberMention& held) { return numbers_match(claimed, held); });
}

std::string figure_text(std::string_view sentence, const NumberMention& number) {
    return std::string(sentence.substr(number.begin, number.end - number.begin));
}

std::string source_list(const std::vector<int>& numbers) {
    std::string list = numbers.size() == 1 ? "source " : "sources ";
    for (std::size_t i = 0; i < numbers.size(); ++i)
        list += (i ? ", [" : "[") + std::to_string(numbers[i]) + "]";
    return list;
}

// The sentence of source that shares most with the answer's sentence
// (numbers count twice: they are what a reader checks).
SentenceSpan best_quote(const NumberedSource& source, const std::vector<NumberMention>& numbers,
                        const std::set<std::string>& words) {
    SentenceSpan best;
    int best_score = 0;
    const std::string_view text = source.text;
    for (const SentenceSpan& span : split_sentences(text)) {
        const std::string_view sentence = text.substr(span.begin, span.end - span.begin);
        int score = 0;
        for (const NumberMention& number : numbers) score += 2 * text_has_number(sentence, number);
        for (const std::string& word : content_words(sentence)) score += words.count(word) > 0;
        if (score > best_score) {
            best_score = score;
            best = span;
        }
    }
    return best;
}

}  // namespace

std::vector<int> parse_citations(std::string_view text) {
    std::vector<int> numbers;
    for (std::size_t i = 0; i < text.size(); ++i) {
        const std::size_t length = read_marker(text, i, &numbers);
        if (length) i += length - 1;
    }
    std::vector<int> unique;
    for (int n : numbers)
        if (std::find(unique.begin(), unique.end(), n) == unique.end()) unique.push_back(n);
    return unique;
}

std::vector<NumberMention> numbers_in_text(std::string_view text) {
    std::vector<NumberMention> numbers;
    for (const WrittenNumber& written : numbers_in(text))
        numbers.push_back({std::abs(written.value) / written.scale, written.decimals, written.scale, written.begin,
                           written.end});
    return numbers;
}

bool numbers_match(const NumberMention& claimed, const NumberMention& source) {
    if (std::abs(claimed.value - source.value) <= 1e-9 * std::max(1.0, std::abs(claimed.value))) return true;
    const double target = claimed.value * claimed.scale;
    if (claimed.scale == 1) {
        const double held = source.value * source.scale;
        return std::abs(held - target) <= 1e-9 * std::max(1.0, std::abs(target));
    }
    // Half a unit of the claim's last written digit, at its scale.
    const double tolerance = 0.5 * std::pow(10.0, -claimed.decimals) * claimed.scale;
    double held = source.value * source.scale;
    for (int step = 0; step <= 4; ++step, held *= 1000)
        if (std::abs(held - target) <= tolerance) return true;
    return false;
}

bool text_has_number(std::string_view text, const NumberMention& claimed) {
    for (const NumberMention& held : numbers_in_text(text))
        if (numbers_match(claimed, held)) return true;
    return false;
}

bool contains_folded(std::string_view haystack, std::string_view needle) {
    return fold(haystack).find(fold(needle)) != std::string::npos;
}

std::vector<SentenceSpan> split_sentences(std::string_view text) {
    std::vector<SentenceSpan> sentences;
    const auto add = [&](std::size_t begin, std::size_t end) {
        while (begin < end && is_space(text[begin])) ++begin;
        while (end > begin && is_space(text[end - 1])) --end;
        if (end > begin) sentences.push_back({begin, end});
    };
    std::size_t start = 0;
    for (std::size_t i = 0; i < text.size(); ++i) {
        const char c = text[i];
        if (c == '\n') {
            add(start, i);
            start = i + 1;
            continue;
        }
        if (c != '.' && c != '!' && c != '?') continue;
        // "U.S." and "e.g.": a single letter before the point is an initial.
        if (c == '.' && i > 0 && is_alpha(text[i - 1]) && (i < 2 || !is_alpha(text[i - 2]))) continue;
        std::size_t end = i + 1;
        while (end < text.size() && (text[end] == '"' || text[end] == ')' || text[end] == '\'')) ++end;
        if (end < text.size() && !is_space(text[end]) && text[end] != '[') continue;
        // Citation markers after the point belong to this sentence, as does a
        // point repeated after them ("... 2021. [1].").
        for (std::size_t next = end;;) {
            while (next < text.size() && text[next] == ' ') ++next;
            const std::size_t marker = read_marker(text, next, nullptr);
            if (!marker) break;
            end = next + marker;
            next = end;
            if (end < text.size() && text[end] == '.') end = ++next;
        }
        add(start, end);
        start = end;
        i = end - 1;
    }
    add(start, text.size());
    return sentences;
}

const char* verdict_name(SentenceVerdict verdict) {
    switch (verdict) {
        case SentenceVerdict::Supported: return "supported";
        case SentenceVerdict::Attributed: return "attributed";
        case SentenceVerdict::Unsupported: return "unsupported";
        case SentenceVerdict::NoClaim: return "no-claim";
    }
    return "unsupported";
}

std::vector<SentenceCheck> check_citations(std::string_view answer, const std::vector<NumberedSource>& sources) {
    std::vector<SourceView> views;
    for (const NumberedSource& source : sources)
        views.push_back({&source, numbers_in_text(source.text), content_words(source.text)});
    const auto view_of = [&](int number) -> const SourceView* {
        for (const SourceView& view : views)
            if (view.source->number == number) return &view;
        return nullptr;
    };

    std::vector<SentenceCheck> checks;
    for (const SentenceSpan& span : split_sentences(answer)) {
        SentenceCheck check;
        check.text = std::string(answer.substr(span.begin, span.end - span.begin));
        const std::vector<NumberMention> numbers = numbers_in_text(check.text);
        const std::set<std::string> words = content_words(check.text);
        const std::vector<std::string> quotes = quoted_spans(check.text);
        check.citations = parse_citations(check.text);

        const auto holds_all = [&](const std::vector<const SourceView*>& cited, std::string* why) {
            for (const NumberMention& number : numbers) {
                if (std::none_of(cited.begin(), cited.end(),
                                 [&](const SourceView* view) { return source_has_number(*view, number); })) {
                    if (why) *why = "the figure " + figure_text(check.text, number) + " is not in ";
                    return false;
                }
            }
            for (const std::string& quote : quotes) {
                if (std::none_of(cited.begin(), cited.end(), [&](const SourceView* view) {
                        return fold(view->source->text).find(quote) != std::string::npos;
                    })) {
                    if (why) *why = "the quoted words \"" + quote + "\" are not in ";
                    return false;
                }
            }
            return true;
        };

        if (!check.citations.empty()) {
            std::vector<const SourceView*> cited;
            std::vector<int> missing;
            for (int n : check.citations) {
                if (const SourceView* view = view_of(n))
                    cited.push_back(view);
                else
                    missing.push_back(n);
            }
            std::string why;
            if (!missing.empty()) {
                check.verdict = SentenceVerdict::Unsupported;
                check.reason = "cites " + source_list(missing) + (missing.size() == 1 ? ", which is" : ", which are") +
                               " not among the sources";
            } else if (!holds_all(cited, &why)) {
                check.verdict = SentenceVerdict::Unsupported;
                check.reason = why + source_list(check.citations);
            } else {
                check.verdict = SentenceVerdict::Supported;
            }
        } else if ((numbers.empty() && quotes.empty() && words.size() < 2) || check.text.back() == '?') {
            check.verdict = SentenceVerdict::NoClaim;
        } else {
            // The source holding all the figures and quotes with the most of
            // the sentence's content words; strong when it has most of them.
            const SourceView* best = nullptr;
            std::size_t best_shared = 0;
            for (const SourceView& view : views) {
                if (!holds_all({&view}, nullptr)) continue;
                const std::size_t shared = std::count_if(words.begin(), words.end(),
                                                         [&](const std::string& w) { return view.words.count(w) > 0; });
                if (!best || shared > best_shared) {
                    best = &view;
                    best_shared = shared;
                }
            }
            constexpr double kMostWords = 0.6;
            if (best && best_shared >= kMostWords * static_cast<double>(words.size())) {
                check.verdict = SentenceVerdict::Attributed;
                check.citations = {best->source->number};
            } else {
                check.verdict = SentenceVerdict::Unsupported;
                check.reason = "cites no source, and no source holds its figures and most of its words";
            }
        }
        for (int n : check.citations) {
            const SourceView* view = view_of(n);
            check.quotes.push_back(view ? best_quote(*view->source, numbers, words) : SentenceSpan{});
        }
        checks.push_back(std::move(check));
    }
    return checks;
}

}  // namespace folio::app
