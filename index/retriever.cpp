#include "index/retriever.h"

#include <algorithm>
#include <array>
#include <cctype>
#include <set>

#include "index/fts_tokenizer.h"

namespace folio::index {
namespace {

// Function words that match most English chunks and carry no topic. A query
// made only of them ("what is it") keeps them.
constexpr std::array kStopwords = {
    "a",    "an",   "and",  "are",  "as",   "at",    "be",   "by",   "did",  "do",   "does", "for",
    "from", "had",  "has",  "have", "how",  "in",    "is",   "it",   "its",  "of",   "on",   "or",
    "that", "the",  "this", "to",   "was",  "were",  "what", "when", "where", "which", "who", "why",
    "will", "with", "much", "many", "there", "their", "they", "he",  "she",  "his",  "her",  "we",
    "our",  "than", "into", "been", "can",  "any",   "each", "per",  "not",  "no",
};

// The index folds ASCII case, so "Revenue" and "revenue" are one term.
std::string ascii_lower(std::string text) {
    std::transform(text.begin(), text.end(), text.begin(),
                   [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
    return text;
}

bool is_stopword(const std::string& term) {
    return std::find(kStopwords.begin(), kStopwords.end(), ascii_lower(term)) != kStopwords.end();
}

// unicode61 keeps letters and digits (and marks); everything else ASCII
// separates words. Non-ASCII is kept and left to the tokenizer.
bool is_word_byte(unsigned char c) { return c >= 0x80 || std::isalnum(c); }

// ASCII punctuation that joins the parts of one term inside a word: 10-K,
// 85.5, 1,234, O'Brien, 9/30/17. All other ASCII punctuation (quotes, *, ^,
// :, parentheses, ...) separates terms, so no term carries FTS5 syntax.
bool joins_word(unsigned char c) { return c == '-' || c == '.' || c == ',' || c == '\'' || c == '/'; }

// Splits user text into terms: runs of Hanzi become their bigrams (a lone
// character stays itself); other text splits at whitespace and at ASCII
// punctuation other than joins_word() ("10-K" and "85.5" stay one term,
// which unicode61 makes a phrase).
std::vector<std::string> query_terms(std::string_view text) {
    std::vector<std::string> terms;
    std::string word;
    auto end_word = [&] {
        while (!word.empty() && !is_word_byte(static_cast<unsigned char>(word.back()))) word.pop_back();
        const auto first = std::find_if(word.begin(), word.end(),
                                         [](char c) { return is_word_byte(static_cast<unsigned char>(c)); });
        word.erase(word.begin(), first);
        if (!word.empty()) terms.push_back(word);
        word.clear();
    };
    std::vector<std::string> han_run;
    auto end_han_run = [&] {
        if (han_run.size() == 1) terms.push_back(han_run[0]);
        for (std::size_t i = 0; i + 1 < han_run.size(); ++i) terms.push_back(han_run[i] + han_run[i + 1]);
        han_run.clear();
    };
    for (std::size_t pos = 0; pos < text.size();) {
        char32_t code_point = 0;
        const std::size_t length = decode_utf8(text, pos, code_point);
        const std::string_view piece = text.substr(pos, length);
        pos += length;
        if (is_han(code_point)) {
            end_word();
            han_run.emplace_back(piece);
            continue;
        }
        end_han_run();
        // Unicode spaces and CJK punctuation (、。，！？：) also end a word.
        const bool separator = (code_point < 0x80 && !is_word_byte(static_cast<unsigned char>(code_point)) &&
                                !joins_word(static_cast<unsigned char>(code_point))) ||
                               code_point == 0xA0 || code_point == 0x3000 ||
                               (code_point >= 0x2000 && code_point <= 0x206F) ||
                               (code_point >= 0x3001 && code_point <= 0x303F) ||
                               (code_point >= 0xFF01 && code_point <= 0xFF0F) ||
                               (code_point >= 0xFF1A && code_point <= 0xFF20);
        if (separator) {
            end_word();
        } else {
            word += piece;
        }
    }
    end_word();
    end_han_run();
    return terms;
}

// Terms hold no ASCII quote (query_terms splits at it), so quoting is
// just wrapping.
std::string quoted(const std::string& term) { return "\"" + term + "\""; }

}  // namespace

const char* search_mode_name(SearchMode mode) {
    switch (mode) {
    case SearchMode::Hybrid: return "hybrid";
    case SearchMode::Bm25: return "bm25";
    case SearchMode::Vector: return "vector";
    }
    return "unknown";
}

std::optional<SearchMode> search_mode_from_name(std::string_view name) {
    for (SearchMode mode : {SearchMode::Hybrid, SearchMode::Bm25, SearchMode::Vector})
        if (name == search_mode_name(mode)) return mode;
    return std::nullopt;
}

const char* fusion_name(Fusion fusion) { return fusion == Fusion::Weighted ? "weighted" : "rrf"; }

std::optional<Fusion> fusion_from_name(std::string_view name) {
    for (Fusion fusion : {Fusion::ReciprocalRank, Fusion::Weighted})
        if (name == fusion_name(fusion)) return fusion;
    return std::nullopt;
}

std::string fts5_expression_for(std::string_view user_text) {
    const std::vector<std::string> all = query_terms(user_text);
    const bool only_stopwords = std::all_of(all.begin(), all.end(), is_stopword);
    std::vector<std::string> terms;
    std::set<std::string> seen;
    for (const std::string& term : all) {
        if (static_cast<int>(terms.size()) == kMaxQueryTerms) break;
        if ((!only_stopwords && is_stopword(term)) || !seen.insert(ascii_lower(term)).second) continue;
        terms.push_back(term);
    }
    if (terms.empty()) throw SearchError("the query has no words to search for");
    std::string expression;
    for (const std::string& term : terms) expression += (expression.empty() ? "" : " OR ") + quoted(term);
    return expression;
}

std::vector<SearchHit> Retriever::search(std::string_view query, const SearchOptions& options) {
    return keyword_hits(query, options, false).hits;
}

KeywordHits Retriever::search_keywords(std::string_view query, const SearchOptions& options) {
    return keyword_hits(query, options, true);
}

KeywordHits Retriever::keyword_hits(std::string_view query, const SearchOptions& options, bool query_idf) {
    if (options.mode != SearchMode::Bm25)
        throw SearchError(std::string("--mode ") + search_mode_name(options.mode) +
                          " needs chunk vectors, and the keyword retriever has no vectors; use --mode bm25");
    if (options.k <= 0) return {};
    ChunkQuery chunk_query{.fts5_expression = options.fts5_syntax ? std::string(query) : fts5_expression_for(query),
                           .limit = options.k,
                           .heading_weight = kHeadingWeight,
                           .text_weight = 1.0,
                           .doc_ids = options.doc_ids,
                           .type = options.type,
                           .updated_from = options.updated_from,
                           .updated_until = options.updated_until,
                           .query_idf = query_idf};
    if (chunk_query.fts5_expression.find_first_not_of(" \t\r\n") == std::string::npos)
        throw SearchError("the query is empty");
    std::vector<ScoredChunk> matches;
    try {
        matches = store_.search_chunks(chunk_query);
    } catch (const StoreError& e) {
        if (!options.fts5_syntax) throw;
        throw SearchError(std::string("not a valid FTS5 query: ") + e.what());
    }
    KeywordHits keyword;
    if (!matches.empty()) keyword.query_idf = matches.front().query_idf;
    std::vector<SearchHit>& hits = keyword.hits;
    hits.reserve(matches.size());
    for (ScoredChunk& match : matches) {
        ingest::Chunk& chunk = match.stored.chunk;
        hits.push_back({.chunk_id = match.stored.id,
                        .doc_id = match.stored.doc_id,
                        .path = std::move(match.path),
                        .page = chunk.page_start,
                        .page_end = chunk.page_end,
                        .score = -match.bm25,
                        .heading_path = std::move(chunk.heading_path),
                        .text = std::move(chunk.text),
                        .boxes = std::move(chunk.boxes)});
    }
    return keyword;
}

}  // namespace folio::index
