#pragma once
// `folio bench retrieval`: how well search finds the labelled answers of a
// query set (tests/data/retrieval/README.md describes the files).
//
// A query names its document by file name (`doc`). A hit is relevant when
// it comes from that document and, for a query labelled with `pages`, its
// page span overlaps one of them; for one labelled with `evidence` only
// (clinical notes), its text holds the first evidence string (whitespace
// and ASCII case folded). The labelled pages are alternatives, so
// recall@k is the share of queries with a relevant hit among the first k;
// nDCG@10 uses binary gains over all relevant chunks of the document. Each
// query runs twice: within its document (--doc) and across the library.

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>
#include "app/library.h"

namespace folio::app {

// One way of searching: a mode, for hybrid its fusion, and whether the
// reranker reorders the first candidates.
struct RetrievalMethod {
    index::SearchMode mode = index::SearchMode::Bm25;
    index::Fusion fusion = index::Fusion::Weighted;
    bool rerank = false;
    // "bm25", "vector", "hybrid-rrf", "hybrid-weighted", each reranked with
    // "+rerank" after it ("hybrid-weighted+rerank").
    std::string name() const;
};
// A method by name: the names above, or "hybrid" for the default fusion.
std::optional<RetrievalMethod> retrieval_method_from_name(const std::string& name);

struct RetrievalBenchOptions {
    std::string queries;                                // JSONL file
    std::vector<RetrievalMethod> methods = {{}};
};

struct RetrievalScore {
    std::string mode, domain, scope;                    // mode: RetrievalMethod::name(); scope: "document" or "library"
    int queries = 0;
    int unreachable = 0;                                // no chunk of the document holds the answer
    double recall_at_5 = 0, recall_at_10 = 0, ndcg_at_10 = 0;
};

// Scores every query; rows by mode, domain and scope in that order. Throws
// std::runtime_error when the file is malformed or names a document that is
// not in the library, index::SearchError when a mode cannot run.
std::vector<RetrievalScore> run_retrieval_bench(Library& library, const RetrievalBenchOptions& options);

// `folio bench retrieval --synthetic N`: search at scale on a library of N
// generated chunks. Each chunk's text is 30 words drawn from a Zipf
// distribution over 50,000 made-up words; its vector is a random unit vector
// of 384 floats (MiniLM's dimension), except for `queries` planted chunks
// whose vectors lie near a query's (cosine about 0.9) and whose rarest three
// words are that query's text. Everything goes through the library: the
// store (SQLite, FTS5, vectors), then the vector index built from it.
struct SyntheticBenchOptions {
    std::int64_t chunks = 1000000;
    int queries = 200;
    std::string directory;                              // a new library folder
};

struct SyntheticBenchReport {
    std::int64_t chunks = 0;
    int dimension = 0;
    std::string index_kind;                             // "flat" or "ivf"
    double fill_seconds = 0;                            // text, FTS rows and vectors into the store
    double index_build_seconds = 0;                     // vectors read back, index built and saved
    double index_memory_mib = 0;                        // resident memory the built index added
    double index_file_mib = 0;
    double hybrid_p50_ms = 0, hybrid_p95_ms = 0;        // k = 10, query embedding excluded
    double vector_p50_ms = 0, vector_p95_ms = 0;
    double bm25_p50_ms = 0, bm25_p95_ms = 0;
    double planted_found_at_10 = 0;                     // share of queries whose planted chunk hybrid ranks in its top 10
};

// Throws std::runtime_error when the folder already holds a library.
SyntheticBenchReport run_synthetic_bench(const SyntheticBenchOptions& options,
                                         const std::function<void(const std::string&)>& progress = {});

}  // namespace folio::app
