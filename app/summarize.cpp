#include "app/summarize.h"

#include <algorithm>
#include <cctype>
#include <chrono>
#include <iterator>
#include <optional>
#include <regex>
#include <set>
#include <string_view>
#include <tuple>
#include <unordered_set>
#include <utility>

namespace folio::app {

namespace {

using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point start) {
    return std::chrono::duration<double>(Clock::now() - start).count();
}

// Words too common to show that a point and a page say the same thing.
const std::unordered_set<std::string_view> kStopWords = {
    "the",  "and",   "for",   "are",   "was",   "were",  "with",  "that",   "this",  "these", "those", "from",
    "its",  "has",   "have",  "had",   "not",   "but",   "all",   "any",    "can",   "may",   "will",  "would",
    "also", "been",  "being", "such",  "into",  "than",  "then",  "their",  "they",  "them",  "there", "which",
    "who",  "whom",  "what",  "when",  "where", "while", "other", "each",   "more",  "most",  "some",  "only",
    "our",  "you",   "your",  "his",   "her",   "she",   "him",   "about",  "over",  "under", "between",
    "both", "well",  "very",  "including", "include", "includes", "document", "page", "pages", "section",
    "summary", "point", "points", "bullet", "here", "following", "provides", "provide", "various", "based"};

// Lowercased words of text (letters, digits, any non-ASCII byte) that are
// numbers or at least three characters long and not stop words; unique.
std::vector<std::string> content_words(std::string_view text) {
    std::set<std::string> words;
    std::string word;
    const auto flush = [&] {
        const bool number = std::any_of(word.begin(), word.end(), [](char c) { return c >= '0' && c <= '9'; });
        if ((number || word.size() >= 3) && !kStopWords.count(word)) words.insert(word);
        word.clear();
    };
    for (const char c : text) {
        const auto byte = static_cast<unsigned char>(c);
        if (std::isalnum(byte) || byte >= 0x80) word += static_cast<char>(std::tolower(byte));
        else if (!word.empty()) flush();
    }
    if (!word.empty()) flush();
    return {words.begin(), words.end()};
}

std::unordered_set<std::string> word_set(std::string_view text) {
    std::vector<std::string> words = content_words(text);
    return {std::make_move_iterator(words.begin()), std::make_move_iterator(words.end())};
}

int shared_words(const std::vector<std::string>& words, const std::unordered_set<std::string>& in) {
    return static_cast<int>(
        std::count_if(words.begin(), words.end(), [&](const std::string& word) { return in.count(word); }));
}

// Points whose content words mostly coincide say the same thing.
constexpr double kDuplicateOverlap = 0.7;

bool duplicates(const std::vector<std::string>& a, const std::vector<std::string>& b) {
    std::vector<std::string> common;
    std::set_intersection(a.begin(), a.end(), b.begin(), b.end(), std::back_inserter(common));
    const std::size_t joined = a.size() + b.size() - common.size();
    return joined > 0 && static_cast<double>(common.size()) / static_cast<double>(joined) >= kDuplicateOverlap;
}

std::vector<int> joined_pages(const std::vector<int>& a, const std::vector<int>& b) {
    std::vector<int> pages;
    std::set_union(a.begin(), a.end(), b.begin(), b.end(), std::back_inserter(pages));
    return pages;
}

std::string trim(std::string_view text) {
    const auto begin = text.find_first_not_of(" \t\r\n");
    if (begin == std::string_view::npos) return {};
    return std::string(text.substr(begin, text.find_last_not_of(" \t\r\n") - begin + 1));
}

// Splits text (which starts at `offset` of the page) into byte ranges of at
// most `limit` tokens, at paragraph breaks, else line breaks, else sentence
// ends, else spaces, else (a word longer than the limit) every `limit`
// bytes: a byte is at most one token.
void split_to_fit(const ChatModel& model, std::string_view text, std::size_t offset, int limit, std::size_t level,
                  std::vector<std::pair<std::size_t, std::size_t>>& ranges) {
    static const std::string_view separators[] = {"\n\n", "\n", ". ", " "};
    if (level == std::size(separators)) {
        for (std::size_t begin = 0; begin < text.size();) {
            std::size_t end = std::min(text.size(), begin + static_cast<std::size_t>(limit));
            while (end < text.size() && (static_cast<unsigned char>(text[end]) & 0xC0) == 0x80) --end;
            ranges.emplace_back(offset + begin, offset + end);
            begin = end;
        }
        return;
    }
    const std::string_view separator = separators[level];
    std::size_t run_begin = 0, run_end = 0;
    int run_tokens = 0;
    const auto flush = [&] {
        if (run_end > run_begin) ranges.emplace_back(offset + run_begin, offset + run_end);
        run_begin = run_end;
        run_tokens = 0;
    };
    for (std::size_t begin = 0; begin < text.size();) {
        const std::size_t found = text.find(separator, begin);
        const std::size_t end = found == std::string_view::npos ? text.size() : found + separator.size();
        const std::string_view segment = text.substr(begin, end - begin);
        const int tokens = model.count_tokens(segment);
        if (tokens > limit) {
            flush();
            split_to_fit(model, segment, offset + begin, limit, level + 1, ranges);
            run_begin = run_end = end;
        } else {
            if (run_tokens + tokens > limit) flush();
            run_end = end;
            run_tokens += tokens;
        }
        begin = end;
    }
    flush();
}

std::string page_marker(int page) { return "[p. " + std::to_string(page) + "]\n"; }

// A page, or the part of a long page, that goes into a section whole.
struct Piece {
    int page = 0;
    std::size_t begin = 0, end = 0;  // bytes of the page's text
    int tokens = 0;                  // with its marker and the blank line after it
};

// Sections as [first, last) piece indices, greedily filled up to `limit` tokens.
std::vector<std::pair<std::size_t, std::size_t>> pack_sections(const std::vector<Piece>& pieces, int limit) {
    std::vector<std::pair<std::size_t, std::size_t>> sections;
    int tokens = 0;
    for (std::size_t i = 0; i < pieces.size(); ++i) {
        if (sections.empty() || tokens + pieces[i].tokens > limit) {
            sections.emplace_back(i, i);
            tokens = 0;
        }
        sections.back().second = i + 1;
        tokens += pieces[i].tokens;
    }
    return sections;
}

// The fewest sections within `budget`, as even as they can be: the smallest
// limit that still packs into as few sections (no short last section, and
// shorter prompts, which a small model handles better).
std::vector<std::pair<std::size_t, std::size_t>> plan_sections(const std::vector<Piece>& pieces, int budget) {
    const std::size_t fewest = pack_sections(pieces, budget).size();
    int low = 1, high = budget;
    while (low < high) {
        const int middle = low + (high - low) / 2;
        if (pack_sections(pieces, middle).size() <= fewest) high = middle;
        else low = middle + 1;
    }
    return pack_sections(pieces, high);
}

// What the model is asked. `text` is the pages (each after its marker) or
// the notes (point lines); the whole document when first_page is 0.
std::string section_request(const std::string& text, int points, int first_page, int last_page) {
    const std::string count = std::to_string(points);
    if (first_page == 0)
        return "Document:\n" + text + "Write " + count +
               " bullet points summarizing the document. End each bullet with its page, like (p. 4).";
    return "Pages " + std::to_string(first_page) + "-" + std::to_string(last_page) + " of a document:\n" + text +
           "Write " + count + " bullet points summarizing these pages. End each bullet with its page, like (p. 4).";
}

std::string merge_request(const std::string& notes, int points, int first_page, int last_page) {
    return "Notes on pages " + std::to_string(first_page) + "-" + std::to_string(last_page) + " of a document:\n" +
           notes + "\nMerge these notes into " + std::to_string(points) +
           " bullet points about the whole document. Keep the page of each note at the end of its bullet, like (p. "
           "4).";
}

std::string point_line(const SummaryPoint& point) { return "- " + point.text + " " + format_pages(point.pages) + "\n"; }

}  // namespace

std::string format_pages(std::span<const int> pages) {
    std::string text = "(p. ";
    for (std::size_t i = 0; i < pages.size();) {
        std::size_t j = i;
        while (j + 1 < pages.size() && pages[j + 1] == pages[j] + 1) ++j;
        if (i > 0) text += ", ";
        text += std::to_string(pages[i]);
        if (j > i) text += "-" + std::to_string(pages[j]);
        i = j + 1;
    }
    return text + ")";
}

std::string format_points(std::span<const SummaryPoint> points) {
    std::string text;
    for (const SummaryPoint& point : points) text += point_line(point);
    return text;
}

CitedLine parse_cited_line(std::string_view line) {
    // A page or a range ("12", "12-13", "12–13"), then more after commas,
    // semicolons or "and", inside parentheses or brackets after p., pp., page...
    static const std::string range = R"(\d+(?:\s*(?:-|–)\s*\d+)?)";
    static const std::regex citation(R"([\(\[]\s*(?:pp?|pgs?|pages?)\b\.?\s*()" + range +
                                         R"((?:\s*(?:,|;|and|&)\s*(?:pp?\.?\s*)?)" + range + R"()*)\s*[\)\]])",
                                     std::regex::icase);
    static const std::regex page_or_range(R"((\d+)(?:\s*(?:-|–)\s*(\d+))?)");
    // Alternatives, not a bracket: std::regex sees bytes, and "•" and "–" are three each.
    static const std::regex bullet(R"(^\s*(?:(?:-|\*|•|–)\s*)*(?:\d{1,2}[.)]\s+)?)");
    static const std::regex spaces(R"(\s+)");
    static const std::regex space_before_punctuation(R"(\s+([.,;:]))");
    // A range wider than this is a misread number, not pages.
    constexpr int kWidestRange = 1000;

    std::string text(line);
    std::set<int> pages;
    for (auto match = std::sregex_iterator(text.begin(), text.end(), citation); match != std::sregex_iterator();
         ++match) {
        const std::string list = (*match)[1];
        for (auto number = std::sregex_iterator(list.begin(), list.end(), page_or_range);
             number != std::sregex_iterator(); ++number) {
            const int first = std::stoi((*number)[1]);
            const int last = (*number)[2].matched ? std::stoi((*number)[2]) : first;
            if (first >= 1 && last >= first && last - first <= kWidestRange)
                for (int page = first; page <= last; ++page) pages.insert(page);
        }
    }
    text = std::regex_replace(text, citation, " ");
    text = std::regex_replace(text, bullet, "");
    std::string unbolded;
    for (std::size_t i = 0; i < text.size(); ++i) {
        if (text.compare(i, 2, "**") == 0) ++i;
        else unbolded += text[i];
    }
    text = std::regex_replace(unbolded, spaces, " ");
    text = std::regex_replace(text, space_before_punctuation, "$1");
    return {trim(text), {pages.begin(), pages.end()}};
}

namespace {

// The items of a list a model wrote on one line ("5 points: 1. A; 2. B;
// 3. C (p. 4)"): numbered from 1, in order, at least two. The lead-in
// before "1." stays an item of its own unless it is a heading (ends in
// ':'). Any other line is one item.
std::vector<std::string_view> inline_items(std::string_view line) {
    static const std::regex marker(R"((?:^|[\s:;,])(\d{1,2})\.\s+)");
    std::vector<std::pair<std::size_t, std::size_t>> markers;  // where each marker starts, and its item
    int expected = 1;
    for (auto match = std::cregex_iterator(line.data(), line.data() + line.size(), marker);
         match != std::cregex_iterator(); ++match) {
        if (std::stoi((*match)[1]) != expected) continue;
        markers.emplace_back(static_cast<std::size_t>(match->position(1)),
                             static_cast<std::size_t>(match->position(0) + match->length(0)));
        ++expected;
    }
    if (markers.size() < 2) return {line};
    const auto trimmed = [](std::string_view text) {
        while (!text.empty() && (std::isspace(static_cast<unsigned char>(text.back())) || text.back() == ';' ||
                                 text.back() == ','))
            text.remove_suffix(1);
        return text;
    };
    std::vector<std::string_view> items;
    const std::string_view lead = trimmed(line.substr(0, markers.front().first));
    if (!lead.empty() && !lead.ends_with(':')) items.push_back(lead);
    for (std::size_t i = 0; i < markers.size(); ++i) {
        const std::size_t end = i + 1 < markers.size() ? markers[i + 1].first : line.size();
        items.push_back(trimmed(line.substr(markers[i].second, end - markers[i].second)));
    }
    return items;
}

}  // namespace

std::vector<SummaryPoint> ground_points(std::string_view reply, std::span<const PointEvidence> evidence, bool cut_off,
                                        int* dropped) {
    std::vector<std::string_view> lines;
    for (std::size_t begin = 0; begin <= reply.size();) {
        const std::size_t end = std::min(reply.find('\n', begin), reply.size());
        lines.push_back(reply.substr(begin, end - begin));
        begin = end + 1;
    }
    if (cut_off && !reply.ends_with('\n')) lines.pop_back();
    std::vector<std::string_view> items;
    for (const std::string_view line : lines)
        for (const std::string_view item : inline_items(line)) items.push_back(item);
    lines = std::move(items);

    std::vector<std::unordered_set<std::string>> evidence_words;
    for (const PointEvidence& unit : evidence) evidence_words.push_back(word_set(unit.text));

    std::vector<SummaryPoint> points;
    std::vector<std::vector<std::string>> point_words;
    for (const std::string_view line : lines) {
        CitedLine cited = parse_cited_line(line);
        if (cited.text.empty() || cited.text.ends_with(':')) continue;  // blank, or a heading
        std::vector<std::string> words = content_words(cited.text);
        if (words.empty()) continue;
        const auto supported = [&](int shared) {
            return shared > 0 && static_cast<double>(shared) / static_cast<double>(words.size()) >= kMinSupport;
        };

        // The cited pages that the evidence holds and that share a word
        // with the point, and the words they share.
        std::vector<int> pages;
        std::unordered_set<std::string> cited_words;
        for (std::size_t i = 0; i < evidence.size(); ++i) {
            std::vector<int> common;
            std::set_intersection(cited.pages.begin(), cited.pages.end(), evidence[i].pages.begin(),
                                  evidence[i].pages.end(), std::back_inserter(common));
            if (common.empty() || shared_words(words, evidence_words[i]) == 0) continue;
            pages = joined_pages(pages, common);
            for (const std::string& word : words)
                if (evidence_words[i].count(word)) cited_words.insert(word);
        }
        SummaryPoint point{.text = std::move(cited.text), .pages = std::move(pages)};
        if (point.pages.empty() || !supported(static_cast<int>(cited_words.size()))) {
            int best = -1, best_shared = 0;
            for (std::size_t i = 0; i < evidence.size(); ++i) {
                const int shared = shared_words(words, evidence_words[i]);
                if (shared > best_shared) best = static_cast<int>(i), best_shared = shared;
            }
            if (!supported(best_shared)) {
                ++*dropped;
                continue;
            }
            point.pages = evidence[static_cast<std::size_t>(best)].pages;
            point.pages_inferred = true;
        }
        const auto same = std::find_if(point_words.begin(), point_words.end(),
                                       [&](const std::vector<std::string>& other) { return duplicates(words, other); });
        if (same != point_words.end()) {
            SummaryPoint& kept = points[static_cast<std::size_t>(same - point_words.begin())];
            kept.pages = joined_pages(kept.pages, point.pages);
            continue;
        }
        points.push_back(std::move(point));
        point_words.push_back(std::move(words));
    }
    return points;
}

Summarizer::Summarizer(ChatModel& model, SummarizeOptions options) : model_(model), options_(std::move(options)) {
    if (options_.points < 1 || options_.point_tokens < 8)
        throw SummarizeError("a summary needs at least one point of at least 8 tokens");
    output_tokens_ = options_.points * options_.point_tokens;
    // The longest request without its document text or notes, and room for
    // the token-count drift of joining pieces (counted one by one).
    constexpr int kJoinSlack = 16;
    constexpr int kWidestPage = 100000;
    int fixed = 0;
    for (const std::string& request : {section_request("", options_.points, 0, 0),
                                       section_request("", options_.points, kWidestPage, kWidestPage),
                                       merge_request("", options_.points, kWidestPage, kWidestPage)})
        fixed = std::max(fixed, static_cast<int>(model_.prompt_tokens(messages(request), "- ").size()));
    section_budget_ = model_.context_tokens() - fixed - output_tokens_ - kJoinSlack;
    if (options_.section_tokens > 0) section_budget_ = std::min(section_budget_, options_.section_tokens);
    // Merging shrinks the notes only while a full prompt of them is longer
    // than the two replies that can come of it (see merge()).
    if (section_budget_ < 2 * output_tokens_)
        throw SummarizeError("a context of " + std::to_string(model_.context_tokens()) + " tokens is too small for " +
                             std::to_string(options_.points) + " points of " + std::to_string(options_.point_tokens) +
                             " tokens (the document's share must be at least twice the reply's " +
                             std::to_string(output_tokens_) + " tokens)");
}

bool Summarizer::cancelled() const { return options_.cancel && options_.cancel->load(); }

std::vector<engine::ChatMessage> Summarizer::messages(std::string request) const {
    std::string system = "You summarize documents for analysts in short bullet points that cite their pages.";
    if (!options_.focus.empty()) system += " The analyst's field: " + options_.focus;
    return {{"system", std::move(system)}, {"user", std::move(request)}};
}

std::vector<SummaryPoint> Summarizer::write_points(std::string request, std::span<const PointEvidence> evidence,
                                                   StageTimings& timings, Summary& summary) {
    // Greedy with a light repetition penalty (a small model loops); the
    // reply starts as a bullet, and stops once it has its points or repeats one.
    std::atomic<bool> stop{false};
    std::string line;
    std::set<std::string> lines_seen;
    int lines_done = 0;
    engine::GenerationOptions generation{
        .max_tokens = output_tokens_,
        .sampler = {.temperature = 0, .repetition_penalty = 1.1f},
        .cancel = &stop,
    };
    generation.on_piece = [&](std::string_view piece) {
        for (const char c : piece) {
            if (c != '\n') {
                if (std::isalnum(static_cast<unsigned char>(c))) line += static_cast<char>(std::tolower(c));
                continue;
            }
            if (line.empty()) continue;
            if (!lines_seen.insert(line).second || ++lines_done >= options_.points) stop = true;
            line.clear();
        }
        if (cancelled()) stop = true;
    };
    const auto started = Clock::now();
    const engine::GenerationResult result = model_.generate(messages(std::move(request)), generation, "- ");
    ++timings.calls;
    timings.prompt_tokens += result.timings.prompt_tokens;
    timings.generated_tokens += result.timings.generated_tokens;
    timings.seconds += seconds_since(started);
    const bool cut_off = result.stop_reason != engine::StopReason::EndOfGeneration &&
                         result.stop_reason != engine::StopReason::StopString;
    return ground_points("- " + result.text, evidence, cut_off, &summary.dropped_points);
}

Summary Summarizer::summarize(index::LibraryStore& store, std::int64_t doc_id) {
    const auto started = Clock::now();
    const std::optional<index::DocumentRecord> record = store.document(doc_id);
    if (!record) throw SummarizeError("no document " + std::to_string(doc_id) + " in the library");
    if (record->status == index::DocumentStatus::Failed)
        throw SummarizeError("document " + std::to_string(doc_id) + " (" + record->path +
                             ") failed to ingest: " + record->error);
    Summary summary{.doc_id = doc_id, .path = record->path, .pages = record->pages};

    // Measure every page, one at a time, so that sections can be planned
    // without holding the document.
    std::vector<Piece> pieces;
    for (int number = 1; number <= record->pages; ++number) {
        if (cancelled()) {
            summary.cancelled = true;
            return summary;
        }
        const std::optional<index::StoredPage> page = store.page(doc_id, number);
        if (!page || trim(page->text).empty()) continue;
        const int marker_tokens = model_.count_tokens(page_marker(number)) + 1;  // + the blank line
        const int tokens = marker_tokens + model_.count_tokens(page->text);
        if (tokens <= section_budget_) {
            pieces.push_back({number, 0, page->text.size(), tokens});
            continue;
        }
        std::vector<std::pair<std::size_t, std::size_t>> ranges;
        split_to_fit(model_, page->text, 0, section_budget_ - marker_tokens, 0, ranges);
        for (const auto& [begin, end] : ranges)
            pieces.push_back(
                {number, begin, end, marker_tokens + model_.count_tokens(page->text.substr(begin, end - begin))});
    }
    if (pieces.empty())
        throw SummarizeError("document " + std::to_string(doc_id) + " (" + record->path +
                             ") has no text to summarize");
    const auto sections = plan_sections(pieces, section_budget_);
    summary.sections = static_cast<int>(sections.size());
    summary.single_pass = sections.size() == 1;
    summary.timings.plan_seconds = seconds_since(started);

    const auto report = [&](SummarizeProgress progress) {
        if (options_.progress) options_.progress(progress);
    };
    report({.stage = SummarizeStage::Sections, .done = 0, .total = summary.sections});
    std::vector<SummaryPoint> points;
    for (std::size_t s = 0; s < sections.size(); ++s) {
        if (cancelled()) break;
        const auto [first, last] = sections[s];
        // The section's text, one page loaded at a time; the evidence points into it.
        std::string body;
        std::vector<std::pair<std::size_t, std::size_t>> spans;  // of each piece in body
        std::optional<index::StoredPage> page;
        for (std::size_t i = first; i < last; ++i) {
            const Piece& piece = pieces[i];
            if (!page || page->number != piece.page) page = store.page(doc_id, piece.page);
            body += page_marker(piece.page);
            spans.emplace_back(body.size(), piece.end - piece.begin);
            body.append(page->text, piece.begin, piece.end - piece.begin);
            body += "\n\n";
        }
        page.reset();
        std::vector<PointEvidence> evidence;
        for (std::size_t i = first; i < last; ++i) {
            const auto [offset, size] = spans[i - first];
            evidence.push_back({std::string_view(body).substr(offset, size), {pieces[i].page}});
        }
        const int first_page = pieces[first].page, last_page = pieces[last - 1].page;
        const std::string request = summary.single_pass
                                        ? section_request(body, options_.points, 0, 0)
                                        : section_request(body, options_.points, first_page, last_page);
        std::vector<SummaryPoint> written = write_points(request, evidence, summary.timings.sections, summary);
        std::move(written.begin(), written.end(), std::back_inserter(points));
        report({.stage = SummarizeStage::Sections,
                .done = static_cast<int>(s) + 1,
                .total = summary.sections,
                .first_page = first_page,
                .last_page = last_page});
    }
    if (!cancelled() && !summary.single_pass) points = merge(std::move(points), summary);
    if (cancelled()) {
        summary.cancelled = true;
        points.clear();
    }
    summary.points = std::move(points);
    summary.timings.seconds = seconds_since(started);
    return summary;
}

// Rounds of merges: notes that fit one prompt are merged into the summary;
// otherwise they are cut into prompts that fit, each merged on its own, and
// the results go round again. A prompt of notes is closed only when the next
// note (about a reply long at most) does not fit, so it holds about the
// budget less one reply, which the constructor keeps above one reply: its
// merge is shorter than it. A last prompt no longer than a reply is carried
// into the next round as it is. Each round is shorter than the one before.
std::vector<SummaryPoint> Summarizer::merge(std::vector<SummaryPoint> points, Summary& summary) {
    const auto merge_group = [&](std::span<const SummaryPoint> group) {
        std::string notes;
        std::vector<PointEvidence> evidence;
        int first_page = group.front().pages.front(), last_page = group.front().pages.back();
        for (const SummaryPoint& point : group) {
            notes += point_line(point);
            evidence.push_back({point.text, point.pages});
            first_page = std::min(first_page, point.pages.front());
            last_page = std::max(last_page, point.pages.back());
        }
        const std::string request = merge_request(notes, options_.points, first_page, last_page);
        return std::make_tuple(write_points(request, evidence, summary.timings.merging, summary), first_page,
                               last_page);
    };
    while (!points.empty() && !cancelled()) {
        std::vector<std::pair<std::size_t, std::size_t>> groups;  // [first, last) of points
        std::vector<int> group_tokens;
        for (std::size_t i = 0; i < points.size(); ++i) {
            const int tokens = model_.count_tokens(point_line(points[i]));
            if (groups.empty() || group_tokens.back() + tokens > section_budget_) {
                groups.emplace_back(i, i);
                group_tokens.push_back(0);
            }
            groups.back().second = i + 1;
            group_tokens.back() += tokens;
        }
        ++summary.merge_rounds;
        const bool last_round = groups.size() == 1;
        const auto carried = [&](std::size_t g) { return !last_round && group_tokens[g] <= output_tokens_; };
        int merges = 0, done = 0;
        for (std::size_t g = 0; g < groups.size(); ++g) merges += carried(g) ? 0 : 1;
        std::vector<SummaryPoint> next;
        for (std::size_t g = 0; g < groups.size() && !cancelled(); ++g) {
            const std::span<const SummaryPoint> group(points.begin() + static_cast<std::ptrdiff_t>(groups[g].first),
                                                      points.begin() + static_cast<std::ptrdiff_t>(groups[g].second));
            if (carried(g)) {
                next.insert(next.end(), group.begin(), group.end());
                continue;
            }
            auto [merged, first_page, last_page] = merge_group(group);
            std::move(merged.begin(), merged.end(), std::back_inserter(next));
            if (options_.progress)
                options_.progress({.stage = SummarizeStage::Merging,
                                   .done = ++done,
                                   .total = merges,
                                   .round = summary.merge_rounds,
                                   .first_page = first_page,
                                   .last_page = last_page});
        }
        points = std::move(next);
        if (last_round) break;
    }
    return points;
}

}  // namespace folio::app
