#include "index/fts_query_idf.h"

#include <cmath>
#include <string>

#include "index/fts_tokenizer.h"
#include "index/library_store.h"

namespace folio::index {
namespace {

int count_row(const Fts5ExtensionApi*, Fts5Context*, void* rows) {
    ++*static_cast<sqlite3_int64*>(rows);
    return SQLITE_OK;
}

// bm25()'s own IDF (SQLite's fts5_aux.c), so that the two share one scale.
int sum_of_phrase_idf(const Fts5ExtensionApi* api, Fts5Context* fts, double& sum) {
    sqlite3_int64 rows = 0;
    int rc = api->xRowCount(fts, &rows);
    sum = 0;
    for (int phrase = 0; rc == SQLITE_OK && phrase < api->xPhraseCount(fts); ++phrase) {
        sqlite3_int64 hits = 0;
        rc = api->xQueryPhrase(fts, phrase, &hits, count_row);
        const double idf = std::log((static_cast<double>(rows - hits) + 0.5) / (static_cast<double>(hits) + 0.5));
        sum += idf <= 0 ? 1e-6 : idf;
    }
    return rc;
}

// Computed on the query's first row and kept for the rest, as bm25() keeps its IDFs.
void query_idf(const Fts5ExtensionApi* api, Fts5Context* fts, sqlite3_context* result, int n_args,
               sqlite3_value** args) {
    if (n_args < 1 || sqlite3_value_int(args[0]) == 0) {
        sqlite3_result_double(result, 0);
        return;
    }
    auto* cached = static_cast<double*>(api->xGetAuxdata(fts, 0));
    if (!cached) {
        double sum = 0;
        if (const int rc = sum_of_phrase_idf(api, fts, sum); rc != SQLITE_OK) {
            sqlite3_result_error_code(result, rc);
            return;
        }
        cached = new double(sum);
        // On failure SQLite has already called the destructor.
        if (const int rc = api->xSetAuxdata(fts, cached, [](void* p) { delete static_cast<double*>(p); });
            rc != SQLITE_OK) {
            sqlite3_result_error_code(result, rc);
            return;
        }
    }
    sqlite3_result_double(result, *cached);
}

}  // namespace

void register_query_idf_function(sqlite3* db) {
    fts5_api* api = fts5_api_of(db);
    if (!api) throw StoreError("this SQLite has no FTS5, which the keyword index needs");
    if (api->xCreateFunction(api, kQueryIdfFunction, nullptr, query_idf, nullptr) != SQLITE_OK)
        throw StoreError(std::string("cannot register the ") + kQueryIdfFunction + " function: " + sqlite3_errmsg(db));
}

}  // namespace folio::index
