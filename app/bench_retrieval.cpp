#include "app/bench_retrieval.h"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <map>
#include <stdexcept>
#include <chrono>
#include <random>
#include <tuple>

#include <nlohmann/json.hpp>

namespace folio::app {
namespace {

struct LabelledQuery {
    std::string id, domain, doc, query;
    std::vector<int> pages;          // empty: judged by anchor
    std::string anchor;              // the first evidence string, folded
};

// Collapses whitespace and lowers ASCII, as the labelling tool does.
std::string fold(const std::string& text) {
    std::string out;
    bool space = false;
    for (unsigned char c : text) {
        if (std::isspace(c)) {
            space = !out.empty();
            continue;
        }
        if (space) out += ' ';
        space = false;
        out += static_cast<char>(std::tolower(c));
    }
    return out;
}

std::vector<LabelledQuery> read_queries(const std::string& path) {
    std::ifstream in(path);
    if (!in) throw std::runtime_error("cannot read query file " + path);
    std::vector<LabelledQuery> queries;
    std::string line;
    for (int number = 1; std::getline(in, line); ++number) {
        if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
        try {
            const nlohmann::json object = nlohmann::json::parse(line);
            LabelledQuery query{object.at("id"), object.at("domain"), object.at("doc"), object.at("query"), {}, {}};
            if (object.contains("pages")) query.pages = object.at("pages").get<std::vector<int>>();
            const auto evidence = object.value("evidence", std::vector<std::string>{});
            if (!evidence.empty()) query.anchor = fold(evidence.front());
            if (query.pages.empty() && query.anchor.empty()) throw std::runtime_error("no pages and no evidence");
            queries.push_back(std::move(query));
        } catch (const std::exception& e) {
            throw std::runtime_error(path + ":" + std::to_string(number) + ": not a labelled query: " + e.what());
        }
    }
    return queries;
}

bool is_relevant(const LabelledQuery& query, std::int64_t target_doc, std::int64_t doc_id, int page, int page_end,
                 const std::string& text) {
    if (doc_id != target_doc) return false;
    if (!query.pages.empty())
        return std::any_of(query.pages.begin(), query.pages.end(), [&](int p) { return p >= page && p <= page_end; });
    return fold(text).find(query.anchor) != std::string::npos;
}

struct Totals {
    int queries = 0, unreachable = 0;
    double found_5 = 0, found_10 = 0, ndcg_10 = 0;
};

}  // namespace

constexpr std::string_view kRerankSuffix = "+rerank";

std::string RetrievalMethod::name() const {
    const std::string base = mode != index::SearchMode::Hybrid ? index::search_mode_name(mode)
                                                                : std::string("hybrid-") + index::fusion_name(fusion);
    return rerank ? base + std::string(kRerankSuffix) : base;
}

std::optional<RetrievalMethod> retrieval_method_from_name(const std::string& name) {
    const bool rerank = name.ends_with(kRerankSuffix);
    const std::string base = rerank ? name.substr(0, name.size() - kRerankSuffix.size()) : name;
    if (const std::optional<index::SearchMode> mode = index::search_mode_from_name(base))
        return RetrievalMethod{.mode = *mode, .rerank = rerank};
    for (index::Fusion fusion : {index::Fusion::ReciprocalRank, index::Fusion::Weighted})
        if (RetrievalMethod method{index::SearchMode::Hybrid, fusion}; base == method.name())
            return RetrievalMethod{.mode = index::SearchMode::Hybrid, .fusion = fusion, .rerank = rerank};
    return std::nullopt;
}

std::vector<RetrievalScore> run_retrieval_bench(Library& library, const RetrievalBenchOptions& options) {
    const std::vector<LabelledQuery> queries = read_queries(options.queries);
    std::map<std::string, std::int64_t> doc_by_name;
    for (const index::DocumentRecord& doc : library.store().documents())
        if (doc.status == index::DocumentStatus::Indexed)
            doc_by_name[std::filesystem::path(doc.path).filename().string()] = doc.id;

    // How many chunks of its document answer each query: the ideal ranking.
    std::map<std::string, int> relevant_chunks;
    for (const LabelledQuery& query : queries) {
        const auto doc = doc_by_name.find(query.doc);
        if (doc == doc_by_name.end())
            throw std::runtime_error("query " + query.id + " names " + query.doc + ", which is not in the library " +
                                     library.directory() + " (ingest the corpus first)");
        int count = 0;
        for (const index::StoredChunk& stored : library.store().chunks(doc->second))
            count += is_relevant(query, doc->second, stored.doc_id, stored.chunk.page_start, stored.chunk.page_end,
                                 stored.chunk.text);
        relevant_chunks[query.id] = count;
    }

    // Each query is embedded once, outside the methods' loop.
    std::map<std::string, std::vector<float>> query_vectors;
    if (std::any_of(options.methods.begin(), options.methods.end(),
                    [](const RetrievalMethod& m) { return m.mode != index::SearchMode::Bm25; })) {
        if (!library.has_vectors())
            throw index::SearchError("this library has no vectors yet; run `folio index` first");
        for (const LabelledQuery& query : queries)
            query_vectors[query.id] = library.embedder().embed(std::vector<std::string>{query.query});
    }

    std::map<std::tuple<int, std::string, int>, Totals> totals;  // (method, domain, scope)
    constexpr int kDepth = 10;
    for (std::size_t m = 0; m < options.methods.size(); ++m) {
        for (const LabelledQuery& query : queries) {
            const std::int64_t target = doc_by_name.at(query.doc);
            for (int scope = 0; scope < 2; ++scope) {
                index::SearchOptions search{.k = kDepth, .mode = options.methods[m].mode,
                                            .fusion = options.methods[m].fusion};
                search.rerank = options.methods[m].rerank;
                if (scope == 0) search.doc_ids = {target};
                const std::vector<index::SearchHit> hits = library.search(query.query, query_vectors[query.id], search);
                double dcg = 0;
                int first = 0;  // 1-based rank of the first relevant hit
                for (std::size_t rank = 1; rank <= hits.size(); ++rank) {
                    const index::SearchHit& hit = hits[rank - 1];
                    if (!is_relevant(query, target, hit.doc_id, hit.page, hit.page_end, hit.text)) continue;
                    dcg += 1.0 / std::log2(rank + 1.0);
                    if (!first) first = static_cast<int>(rank);
                }
                double ideal = 0;
                for (int rank = 1; rank <= std::min(kDepth, relevant_chunks[query.id]); ++rank)
                    ideal += 1.0 / std::log2(rank + 1.0);
                Totals& t = totals[{static_cast<int>(m), query.domain, scope}];
                ++t.queries;
                t.unreachable += relevant_chunks[query.id] == 0;
                t.found_5 += first && first <= 5;
                t.found_10 += first != 0;
                t.ndcg_10 += ideal > 0 ? dcg / ideal : 0;
            }
        }
    }

    std::vector<RetrievalScore> scores;
    for (const auto& [key, t] : totals) {
        const auto& [mode, domain, scope] = key;
        scores.push_back({.mode = options.methods[mode].name(),
                          .domain = domain,
                          .scope = scope == 0 ? "document" : "library",
                          .queries = t.queries,
                          .unreachable = t.unreachable,
                          .recall_at_5 = t.found_5 / t.queries,
                          .recall_at_10 = t.found_10 / t.queries,
                          .ndcg_at_10 = t.ndcg_10 / t.queries});
    }
    return scores;
}

namespace {

double resident_mib() {
    std::ifstream status("/proc/self/status");
    for (std::string line; std::getline(status, line);)
        if (line.rfind("VmRSS:", 0) == 0) return std::stod(line.substr(6)) / 1024.0;
    return 0;
}

// The p-th percentile (0..100) of latencies, nearest rank.
double percentile(std::vector<double> values, double p) {
    if (values.empty()) return 0;
    std::sort(values.begin(), values.end());
    const std::size_t rank = static_cast<std::size_t>(std::ceil(p / 100.0 * values.size()));
    return values[std::min(values.size() - 1, rank == 0 ? 0 : rank - 1)];
}

std::string synthetic_word(int index) {
    std::string word = "w";
    for (int n = index; n > 0 || word.size() == 1; n /= 26) word += static_cast<char>('a' + n % 26);
    return word;
}

void add_unit_vector(std::mt19937_64& random, std::vector<float>& out, int dimension, const float* near = nullptr) {
    std::normal_distribution<float> normal;
    std::vector<float> v(static_cast<std::size_t>(dimension));
    float norm = 0;
    for (float& x : v) {
        x = normal(random);
        norm += x * x;
    }
    for (float& x : v) x /= std::sqrt(norm);
    if (near) {
        // near + 0.5 * a random unit vector, renormalized: cosine about 0.9.
        norm = 0;
        for (int i = 0; i < dimension; ++i) {
            v[i] = near[i] + 0.5f * v[i];
            norm += v[i] * v[i];
        }
        for (float& x : v) x /= std::sqrt(norm);
    }
    out.insert(out.end(), v.begin(), v.end());
}

}  // namespace

SyntheticBenchReport run_synthetic_bench(const SyntheticBenchOptions& options,
                                         const std::function<void(const std::string&)>& progress) {
    using Clock = std::chrono::steady_clock;
    auto seconds_since = [](Clock::time_point start) {
        return std::chrono::duration<double>(Clock::now() - start).count();
    };
    auto say = [&](const std::string& text) {
        if (progress) progress(text);
    };
    constexpr int kDimension = 384, kVocabulary = 50000, kWordsPerChunk = 30, kChunksPerDocument = 1000;
    if (std::filesystem::exists(std::filesystem::path(options.directory) / "library.sqlite"))
        throw std::runtime_error(options.directory + " already holds a library; give --library a new folder");
    Library library(options.directory);
    index::LibraryStore& store = library.store();
    const index::EmbeddingModelRecord model{"synthetic random unit vectors", "synthetic", kDimension};
    store.set_embedding_model(model);

    std::mt19937_64 random(20261126);
    // Zipf(1) over the vocabulary through its cumulative weights.
    std::vector<double> cumulative(kVocabulary);
    double total = 0;
    for (int i = 0; i < kVocabulary; ++i) cumulative[i] = total += 1.0 / (i + 1);
    std::uniform_real_distribution<double> uniform(0, total);
    std::vector<std::string> vocabulary;
    for (int i = 0; i < kVocabulary; ++i) vocabulary.push_back(synthetic_word(i));

    struct Planted {
        std::int64_t ordinal = 0;                     // of the chunk in the whole library
        std::int64_t chunk_id = 0;
        std::string text;
        std::vector<float> vector;
    };
    std::vector<Planted> planted(static_cast<std::size_t>(options.queries));
    std::map<std::int64_t, std::size_t> planted_at;
    std::uniform_int_distribution<std::int64_t> any_chunk(0, options.chunks - 1);
    for (std::size_t q = 0; q < planted.size(); ++q) {
        do planted[q].ordinal = any_chunk(random);
        while (planted_at.count(planted[q].ordinal));
        planted_at[planted[q].ordinal] = q;
        add_unit_vector(random, planted[q].vector, kDimension);
    }

    const Clock::time_point fill_start = Clock::now();
    for (std::int64_t first = 0; first < options.chunks; first += kChunksPerDocument) {
        const std::int64_t count = std::min<std::int64_t>(kChunksPerDocument, options.chunks - first);
        index::DocumentInput document{.path = "/synthetic/doc" + std::to_string(first / kChunksPerDocument) + ".txt",
                                      .sha256 = std::string(64, '0'),
                                      .size = count,
                                      .type = ingest::FileType::Text};
        ingest::Page page;
        page.number = 1;
        document.pages.push_back(page);
        for (std::int64_t i = 0; i < count; ++i) {
            ingest::Chunk chunk;
            chunk.ordinal = static_cast<int>(i);
            chunk.page_start = chunk.page_end = 1;
            std::vector<int> words;
            for (int w = 0; w < kWordsPerChunk; ++w)
                words.push_back(static_cast<int>(std::lower_bound(cumulative.begin(), cumulative.end(), uniform(random)) -
                                                 cumulative.begin()));
            for (int w : words) chunk.text += (chunk.text.empty() ? "" : " ") + vocabulary[w];
            chunk.token_count = kWordsPerChunk;
            if (auto p = planted_at.find(first + i); p != planted_at.end()) {
                std::sort(words.begin(), words.end());
                for (int w = 0; w < 3; ++w)
                    planted[p->second].text += (w ? " " : "") + vocabulary[words[words.size() - 1 - w]];
            }
            document.chunks.push_back(std::move(chunk));
        }
        const std::int64_t doc_id = store.put_document(document);
        const std::vector<std::int64_t> ids = store.chunk_ids_matching({.doc_ids = {doc_id}});
        std::vector<float> vectors;
        vectors.reserve(ids.size() * kDimension);
        for (std::int64_t i = 0; i < count; ++i) {
            if (auto p = planted_at.find(first + i); p != planted_at.end()) {
                planted[p->second].chunk_id = ids[static_cast<std::size_t>(i)];
                add_unit_vector(random, vectors, kDimension, planted[p->second].vector.data());
            } else {
                add_unit_vector(random, vectors, kDimension);
            }
        }
        store.put_vectors(model, ids, vectors);
        if ((first / kChunksPerDocument) % 100 == 99)
            say(std::to_string(first + count) + " chunks stored, " + std::to_string(static_cast<int>(seconds_since(fill_start))) + " s");
    }

    SyntheticBenchReport report;
    report.chunks = options.chunks;
    report.dimension = kDimension;
    report.fill_seconds = seconds_since(fill_start);
    say("building the vector index");
    const double memory_before = resident_mib();
    const Clock::time_point build_start = Clock::now();
    const index::VectorIndex& built = library.vectors().current();
    report.index_build_seconds = seconds_since(build_start);
    report.index_memory_mib = resident_mib() - memory_before;
    report.index_kind = built.kind() == index::VectorIndexKind::Ivf ? "ivf" : "flat";
    report.index_file_mib =
        static_cast<double>(std::filesystem::file_size(std::filesystem::path(options.directory) / "vectors.faiss")) /
        (1024.0 * 1024.0);

    say("searching");
    std::vector<double> hybrid, vector, bm25;
    int found = 0;
    for (const Planted& query : planted) {
        for (index::SearchMode mode : {index::SearchMode::Hybrid, index::SearchMode::Vector, index::SearchMode::Bm25}) {
            const Clock::time_point start = Clock::now();
            const std::vector<index::SearchHit> hits =
                library.search(query.text, query.vector, {.k = 10, .mode = mode});
            const double ms = seconds_since(start) * 1000;
            (mode == index::SearchMode::Hybrid ? hybrid : mode == index::SearchMode::Vector ? vector : bm25).push_back(ms);
            if (mode == index::SearchMode::Hybrid)
                found += std::any_of(hits.begin(), hits.end(),
                                     [&](const index::SearchHit& hit) { return hit.chunk_id == query.chunk_id; });
        }
    }
    report.hybrid_p50_ms = percentile(hybrid, 50);
    report.hybrid_p95_ms = percentile(hybrid, 95);
    report.vector_p50_ms = percentile(vector, 50);
    report.vector_p95_ms = percentile(vector, 95);
    report.bm25_p50_ms = percentile(bm25, 50);
    report.bm25_p95_ms = percentile(bm25, 95);
    report.planted_found_at_10 = planted.empty() ? 0 : static_cast<double>(found) / planted.size();
    return report;
}

}  // namespace folio::app
