#pragma once
// folio_query_idf(chunks_fts, wanted): an FTS5 auxiliary function whose
// value, the same on every row of one query, is the sum over the query's
// phrases of the IDF that bm25() gives each of them: log((N - n + 0.5) /
// (n + 0.5)) for a phrase found in n of the table's N rows, 1e-6 where that
// is not positive. Counting the rows walks each phrase's doclist again, so
// with `wanted` 0 it is 0 at no cost (a search that does not fuse).
//
// Why: bm25() is that IDF times a term-frequency factor below k1 + 1 = 2.2
// per phrase, so a row's bm25() over this sum says how much of the query the
// row matches on a scale that does not depend on the query (about 1: every
// phrase once, in a row of average length). Hybrid search puts keyword
// scores on that scale before adding cosines (hybrid_search.h).

#include <sqlite3.h>

namespace folio::index {

inline constexpr const char* kQueryIdfFunction = "folio_query_idf";

// Registers the function on one connection (FTS5 auxiliary functions are
// per-connection). Throws StoreError.
void register_query_idf_function(sqlite3* db);

}  // namespace folio::index
