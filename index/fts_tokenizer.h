#pragma once
// Folio's FTS5 tokenizer for mixed Chinese and Western text.
//
// unicode61 counts Han characters as word characters, so a run of Hanzi with
// no spaces ("营业收入同比增长") becomes one token and a two-character word
// inside it ("收入") never matches. This tokenizer splits text into Han runs
// and everything else: everything else goes to unicode61 (with the
// arguments given to this tokenizer, e.g. remove_diacritics 2), and each Han
// run becomes its overlapping character bigrams (营业 业收 收入 入同 ...; a
// lone character stays one token). Documents and queries go through the same
// code, so a quoted Chinese word in a query is the phrase of its bigrams and
// matches exactly where that word occurs. A one-character query matches
// only lone characters and the bigrams that start with it when used as a
// prefix ("收"*): that is the price of not indexing unigrams.

#include <sqlite3.h>

#include <cstddef>
#include <string_view>

namespace folio::index {

// The connection's FTS5 API (through which tokenizers and auxiliary
// functions are registered), or null when this SQLite has no FTS5.
fts5_api* fts5_api_of(sqlite3* db);

// The name under which register_han_bigram_tokenizer() registers it.
inline constexpr const char* kHanBigramTokenizer = "folio_han_bigram";

// Registers the tokenizer on one connection (FTS5 tokenizers are
// per-connection). Every connection that reads or writes an FTS table
// declared with it must call this first. Throws StoreError.
void register_han_bigram_tokenizer(sqlite3* db);

// CJK Unified Ideographs with their extensions and compatibility block.
bool is_han(char32_t code_point);

// Decodes the UTF-8 sequence starting at text[pos] into code_point and
// returns its length in bytes; a malformed byte decodes as U+FFFD, length 1.
std::size_t decode_utf8(std::string_view text, std::size_t pos, char32_t& code_point);

}  // namespace folio::index
