#pragma once
// Search over a library's chunks: what `folio search`, `folio ask` and the
// GUI's search box call.
//
// BM25 runs through the store's FTS5 index with the heading column weighted
// above body text. User text is never parsed as FTS5 syntax unless asked
// for: each word becomes a quoted term (quotes, hyphens, AND/OR/NOT, *,
// parentheses and colons are plain text), terms are OR-ed and ranked by
// bm25(), common English function words are dropped when other words remain,
// and a run of Hanzi becomes its character bigrams (fts_tokenizer.h); the
// index stems English words (porter), so "employing" finds "employed". The
// vector and hybrid modes are served by hybrid_search.h; Retriever itself
// serves bm25.
//
// Thread rules: as LibraryStore, one thread at a time.

#include <cstdint>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>
#include "index/library_store.h"

namespace folio::index {

// A search the user can fix (an empty query, bad syntax, a mode the library
// cannot serve); the message is one line.
class SearchError : public std::runtime_error {
public:
    using std::runtime_error::runtime_error;
};

enum class SearchMode { Hybrid, Bm25, Vector };
const char* search_mode_name(SearchMode mode);
std::optional<SearchMode> search_mode_from_name(std::string_view name);

// How hybrid search combines its keyword and vector rankings
// (hybrid_search.h). Weighted is the default: on the labelled query sets
// (tests/data/retrieval) it matched or beat reciprocal-rank fusion on every
// figure of every domain and scope (finance within a filing recall@5 0.856
// vs 0.846, nDCG@10 0.468 vs 0.454; medical across the library recall@5
// 1.000 vs 0.964, nDCG@10 0.957 vs 0.909).
enum class Fusion { ReciprocalRank, Weighted };
const char* fusion_name(Fusion fusion);
std::optional<Fusion> fusion_from_name(std::string_view name);

struct SearchOptions {
    int k = 10;                         // most hits returned
    SearchMode mode = SearchMode::Bm25;
    Fusion fusion = Fusion::Weighted;
    bool fts5_syntax = false;           // the query is an FTS5 expression, used as is
    std::vector<std::int64_t> doc_ids;  // only these documents' chunks; empty: every document's
    std::optional<ingest::FileType> type;
    std::optional<std::int64_t> updated_from, updated_until;  // unix seconds, inclusive
    // The first kRerankCandidates hits (reranking.h) reordered by a
    // cross-encoder, then the first k kept: what app::Library::search does
    // with its reranker. index/ itself ignores it.
    bool rerank = false;
};

struct SearchHit {
    std::int64_t chunk_id = 0;
    std::int64_t doc_id = 0;
    std::string path;
    int page = 0, page_end = 0;         // 1-based, inclusive
    double score = 0;                   // higher is better; BM25: -bm25()
    std::string heading_path;
    std::string text;
    std::vector<ingest::PageBox> boxes; // the chunk's line boxes, to highlight
};

// bm25() column weights: a word in a heading counts this many times a word
// in body text.
inline constexpr double kHeadingWeight = 2.0;
// Words beyond this many distinct ones are ignored, so a pasted page is a
// (long) query rather than an error.
inline constexpr int kMaxQueryTerms = 64;

// The FTS5 expression for plain user text: quoted terms joined by OR.
// Throws SearchError when the text holds no searchable word.
std::string fts5_expression_for(std::string_view user_text);

// Keyword hits with what hybrid search needs to weigh them against cosines.
struct KeywordHits {
    std::vector<SearchHit> hits;
    double query_idf = 0;               // the query's IDF sum (fts_query_idf.h); 0 without hits
};

class Retriever {
public:
    explicit Retriever(LibraryStore& store) : store_(store) {}

    // Best hits first. Throws SearchError for an unusable query or mode,
    // StoreError when the library cannot be read.
    std::vector<SearchHit> search(std::string_view query, const SearchOptions& options = {});
    // The same hits with the query's IDF sum.
    KeywordHits search_keywords(std::string_view query, const SearchOptions& options);

private:
    KeywordHits keyword_hits(std::string_view query, const SearchOptions& options, bool query_idf);

    LibraryStore& store_;
};

}  // namespace folio::index
