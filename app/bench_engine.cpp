#include "app/bench_engine.h"

#include <cblas.h>

#if defined(__x86_64__)
#include <immintrin.h>
#endif

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <random>
#include <stdexcept>
#include <thread>
#include <tuple>
#include <vector>

#include "app/bench_prefix.h"
#include "engine/blocks_cpu.h"
#include "engine/device.h"
#include "engine/gguf.h"
#include "engine/model.h"
#include "engine/quant.h"
#include "engine/thread_pool.h"

namespace folio::app {

void BenchFigures::add(const std::string& key, nlohmann::json value, std::string line) {
    json_[key] = std::move(value);
    if (!line.empty())
        lines_.push_back(std::move(line));
}

namespace {

using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point start) {
    return std::chrono::duration<double>(Clock::now() - start).count();
}

// The shortest of `runs` timings of run(): the one least disturbed by the
// other processes of a shared machine.
double best_seconds(int runs, const std::function<void()>& run) {
    double best = 0;
    for (int i = 0; i < runs; ++i) {
        const Clock::time_point start = Clock::now();
        run();
        const double seconds = seconds_since(start);
        best = i == 0 ? seconds : std::min(best, seconds);
    }
    return best;
}

// Runs body(t) on `threads` threads at once and returns the wall time.
double time_on_threads(int threads, const std::function<void(int)>& body) {
    const Clock::time_point start = Clock::now();
    std::vector<std::thread> workers;
    for (int t = 1; t < threads; ++t)
        workers.emplace_back(body, t);
    body(0);
    for (std::thread& worker : workers)
        worker.join();
    return seconds_since(start);
}

std::string format(const char* pattern, auto... values) {
    char buffer[512];
    std::snprintf(buffer, sizeof buffer, pattern, values...);
    return buffer;
}

// ------------------------------------------------------- machine ceilings

// Sums of a buffer's 64-bit words (n a multiple of 256): a streaming read
// with the widest loads the CPU has, as the decode kernels use. The sum is
// returned so that the loads cannot be dropped.
#if defined(__x86_64__)
__attribute__((target("avx512f"))) std::uint64_t sum_words_avx512(const std::uint8_t* p, std::size_t n) {
    __m512i a0 = _mm512_setzero_si512(), a1 = a0, a2 = a0, a3 = a0;
    for (std::size_t i = 0; i < n; i += 256) {
        a0 = _mm512_add_epi64(a0, _mm512_load_si512(p + i));
        a1 = _mm512_add_epi64(a1, _mm512_load_si512(p + i + 64));
        a2 = _mm512_add_epi64(a2, _mm512_load_si512(p + i + 128));
        a3 = _mm512_add_epi64(a3, _mm512_load_si512(p + i + 192));
    }
    // Through memory: GCC 12's _mm512_reduce_* trip -Wuninitialized (GCC bug 105593).
    std::uint64_t words[8];
    _mm512_storeu_si512(words, _mm512_add_epi64(_mm512_add_epi64(a0, a1), _mm512_add_epi64(a2, a3)));
    std::uint64_t sum = 0;
    for (const std::uint64_t word : words)
        sum += word;
    return sum;
}

__attribute__((target("avx2"))) std::uint64_t sum_words_avx2(const std::uint8_t* p, std::size_t n) {
    __m256i a0 = _mm256_setzero_si256(), a1 = a0, a2 = a0, a3 = a0;
    for (std::size_t i = 0; i < n; i += 128) {
        a0 = _mm256_add_epi64(a0, _mm256_load_si256(reinterpret_cast<const __m256i*>(p + i)));
        a1 = _mm256_add_epi64(a1, _mm256_load_si256(reinterpret_cast<const __m256i*>(p + i + 32)));
        a2 = _mm256_add_epi64(a2, _mm256_load_si256(reinterpret_cast<const __m256i*>(p + i + 64)));
        a3 = _mm256_add_epi64(a3, _mm256_load_si256(reinterpret_cast<const __m256i*>(p + i + 96)));
    }
    const __m256i sum = _mm256_add_epi64(_mm256_add_epi64(a0, a1), _mm256_add_epi64(a2, a3));
    return static_cast<std::uint64_t>(_mm256_extract_epi64(sum, 0) + _mm256_extract_epi64(sum, 1) +
                                      _mm256_extract_epi64(sum, 2) + _mm256_extract_epi64(sum, 3));
}
#endif

std::uint64_t sum_words(const std::uint8_t* p, std::size_t n) {
#if defined(__x86_64__)
    if (__builtin_cpu_supports("avx512f"))
        return sum_words_avx512(p, n);
    if (__builtin_cpu_supports("avx2"))
        return sum_words_avx2(p, n);
#endif
    std::uint64_t sum = 0;
    for (std::size_t i = 0; i < n; i += sizeof sum) {
        std::uint64_t word;
        std::memcpy(&word, p + i, sizeof word);
        sum += word;
    }
    return sum;
}

// 512 MiB: 16x the 32 MiB L3 of the machines this was tuned on, so the
// passes read DRAM, not cache.
constexpr std::size_t kBandwidthBufferBytes = std::size_t{512} << 20;
constexpr int kBandwidthPasses = 5;

// Bytes per second of a multi-threaded streaming read, the best of several
// passes; each thread reads its own contiguous share.
double measure_read_bandwidth(int threads) {
    const auto free_buffer = [](std::uint8_t* p) { std::free(p); };
    const std::unique_ptr<std::uint8_t, decltype(free_buffer)> buffer(
        static_cast<std::uint8_t*>(std::aligned_alloc(4096, kBandwidthBufferBytes)), free_buffer);
    if (!buffer)
        throw std::runtime_error("cannot allocate the bandwidth test's buffer");
    std::memset(buffer.get(), 1, kBandwidthBufferBytes);  // pages faulted in before the timing
    const std::size_t share = kBandwidthBufferBytes / static_cast<std::size_t>(threads) / 256 * 256;
    std::vector<std::uint64_t> sums(static_cast<std::size_t>(threads));
    double best = 0;
    for (int pass = 0; pass < kBandwidthPasses; ++pass) {
        const double seconds = time_on_threads(threads, [&](int t) {
            sums[static_cast<std::size_t>(t)] = sum_words(buffer.get() + static_cast<std::size_t>(t) * share, share);
        });
        best = pass == 0 ? seconds : std::min(best, seconds);
    }
    if (sums[0] != share / 8 * 0x0101010101010101ull)
        throw std::logic_error("bandwidth test: the read loop summed wrongly");
    return static_cast<double>(share) * threads / best;
}

// The int8 multiply-add peak: independent chains of the CPU's widest int8
// dot-product instruction (AVX-512 VNNI vpdpbusd: 64 multiply-adds; AVX2:
// vpmaddubsw + vpmaddwd + vpaddd for 32), which is what quantized matmuls are
// built from. Counted as 2 operations per multiply-add, as GFLOP/s are.
constexpr int kPeakChains = 12;           // more than latency x throughput on current cores
constexpr std::int64_t kPeakIterations = 20'000'000;

struct Int8Peak {
    const char* instruction = nullptr;  // null: no SIMD int8 path on this CPU
    double ops_per_second = 0;
};

#if defined(__x86_64__)
__attribute__((target("avx512f,avx512vnni"))) std::int64_t int8_chains_avx512_vnni() {
    __m512i acc[kPeakChains];
    for (__m512i& a : acc)
        a = _mm512_setzero_si512();
    const __m512i u = _mm512_set1_epi8(1);
    const __m512i s = _mm512_set1_epi8(2);
    for (std::int64_t i = 0; i < kPeakIterations; ++i)
        for (__m512i& a : acc) {
            a = _mm512_dpbusd_epi32(a, u, s);
            __asm__("" : "+v"(a));  // keeps each chain a real dependency chain
        }
    std::int64_t sum = 0;
    for (const __m512i& a : acc) {
        std::int32_t lanes[16];
        _mm512_storeu_si512(lanes, a);
        sum += lanes[0];
    }
    return sum;
}

__attribute__((target("avx2"))) std::int64_t int8_chains_avx2() {
    __m256i acc[kPeakChains];
    for (__m256i& a : acc)
        a = _mm256_setzero_si256();
    const __m256i u = _mm256_set1_epi8(1);
    const __m256i s = _mm256_set1_epi8(2);
    const __m256i ones = _mm256_set1_epi16(1);
    for (std::int64_t i = 0; i < kPeakIterations; ++i)
        for (__m256i& a : acc) {
            a = _mm256_add_epi32(a, _mm256_madd_epi16(_mm256_maddubs_epi16(u, s), ones));
            __asm__("" : "+x"(a));
        }
    std::int64_t sum = 0;
    for (const __m256i& a : acc)
        sum += _mm256_extract_epi32(a, 0);
    return sum;
}
#endif

Int8Peak measure_int8_peak(int threads) {
#if defined(__x86_64__)
    Int8Peak peak;
    std::function<std::int64_t()> chains;
    double multiply_adds = 0;  // per thread
    if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512vnni")) {
        peak.instruction = "avx512-vnni vpdpbusd";
        chains = int8_chains_avx512_vnni;
        multiply_adds = 64.0 * kPeakChains * static_cast<double>(kPeakIterations);
    } else if (__builtin_cpu_supports("avx2")) {
        peak.instruction = "avx2 vpmaddubsw";
        chains = int8_chains_avx2;
        multiply_adds = 32.0 * kPeakChains * static_cast<double>(kPeakIterations);
    } else {
        return peak;
    }
    std::vector<std::int64_t> sums(static_cast<std::size_t>(threads));
    const double seconds =
        best_seconds(2, [&] { time_on_threads(threads, [&](int t) { sums[static_cast<std::size_t>(t)] = chains(); }); });
    peak.ops_per_second = 2 * multiply_adds * threads / seconds;
    return peak;
#else
    (void)threads;
    return {};
#endif
}

// ------------------------------------------------------------ the model

engine::WeightMatrix weight_matrix_of(const engine::GgufTensor& tensor) {
    return {tensor.type, tensor.data.data(), tensor.ne[1], tensor.ne[0], static_cast<std::int64_t>(tensor.row_bytes)};
}

struct ModelFacts {
    std::int64_t parameters = 0;
    std::string weight_type;                 // the type holding most of the weight bytes
    std::int64_t weight_bytes_per_token = 0; // what one decode step reads of the file (its experts only)
    std::vector<const engine::GgufTensor*> prefill_matrices;  // the layers' 2-D weights
};

ModelFacts model_facts(const engine::GgufFile& file) {
    ModelFacts facts;
    std::map<std::string, std::int64_t> bytes_by_type;
    const engine::GgufTensor* embeddings = file.find_tensor("token_embd.weight");
    // A mixture of experts: a decode step reads expert_used_count of the
    // expert_count matrices stacked in each ffn_*_exps tensor.
    const std::string arch(file.architecture());
    const std::uint32_t n_expert = file.get_u32(arch + ".expert_count", 0);
    const std::uint32_t n_expert_used = file.get_u32(arch + ".expert_used_count", 0);
    for (const engine::GgufTensor& tensor : file.tensors()) {
        facts.parameters += tensor.n_elements();
        const bool matrix = tensor.n_dims >= 2;
        if (matrix)
            bytes_by_type[std::string(tensor.type_name())] += static_cast<std::int64_t>(tensor.n_bytes());
        if (&tensor == embeddings)
            continue;  // decode reads one row of it (below)
        const bool experts = tensor.n_dims == 3 && n_expert > 0 && tensor.ne[2] == n_expert &&
                             tensor.name.find("_exps.") != std::string_view::npos;
        const auto bytes = static_cast<std::int64_t>(tensor.n_bytes());
        facts.weight_bytes_per_token += experts ? bytes / n_expert * n_expert_used : bytes;
        if (tensor.n_dims == 2 && tensor.name != "output.weight")  // expert stacks are not one matmul
            facts.prefill_matrices.push_back(&tensor);
    }
    if (embeddings) {
        facts.weight_bytes_per_token += static_cast<std::int64_t>(embeddings->row_bytes);
        // Without output.weight the head is the embedding table, read whole.
        if (!file.find_tensor("output.weight"))
            facts.weight_bytes_per_token += static_cast<std::int64_t>(embeddings->n_bytes());
    }
    const auto most = std::max_element(bytes_by_type.begin(), bytes_by_type.end(),
                                       [](const auto& a, const auto& b) { return a.second < b.second; });
    facts.weight_type = most == bytes_by_type.end() ? "" : most->first;
    return facts;
}

std::int32_t argmax(const std::vector<float>& logits) {
    return static_cast<std::int32_t>(std::max_element(logits.begin(), logits.end()) - logits.begin());
}

struct Matmul {
    const engine::GgufTensor* tensor;
    int count;  // matrices of this type and shape in the model
    double seconds = 0;
    double sgemm_seconds = 0;
};

// The distinct (type, rows, cols) of the prefill matrices, with their counts.
std::vector<Matmul> distinct_matmuls(const std::vector<const engine::GgufTensor*>& matrices) {
    std::map<std::tuple<int, std::int64_t, std::int64_t>, Matmul> by_shape;
    for (const engine::GgufTensor* tensor : matrices) {
        const auto key = std::make_tuple(static_cast<int>(tensor->type), tensor->ne[1], tensor->ne[0]);
        auto [it, inserted] = by_shape.try_emplace(key, Matmul{tensor, 0});
        ++it->second.count;
    }
    std::vector<Matmul> matmuls;
    for (auto& [key, matmul] : by_shape)
        matmuls.push_back(matmul);
    return matmuls;
}

double matmul_flops(const Matmul& m, int n_tokens) {
    return 2.0 * static_cast<double>(m.tensor->ne[1]) * static_cast<double>(m.tensor->ne[0]) * n_tokens;
}

constexpr int kMatmulRuns = 3;

// Engine matmul (activation quantization included, and rows regrouped, as
// the model runs them on the CPU), n_tokens activation rows.
void time_engine_matmuls(std::vector<Matmul>& matmuls, engine::ThreadPool& pool, int n_tokens) {
    std::mt19937 rng(7);
    std::normal_distribution<float> normal(0.f, 1.f);
    for (Matmul& m : matmuls) {
        const std::int64_t rows = m.tensor->ne[1];
        const std::int64_t cols = m.tensor->ne[0];
        std::vector<float> input(static_cast<std::size_t>(n_tokens * cols));
        for (float& x : input)
            x = normal(rng);
        std::vector<float> out(static_cast<std::size_t>(n_tokens * rows));
        engine::WeightMatrix w = weight_matrix_of(*m.tensor);
        std::vector<engine::WeightBytes> row_groups;
        engine::WeightMatrix* const matrices[] = {&w};
        engine::group_weight_matrices(pool, matrices, row_groups);
        m.seconds = best_seconds(kMatmulRuns, [&] {
            engine::MatmulInput in(input.data(), n_tokens, cols);
            engine::matmul(pool, w, in, out.data());
        });
    }
}

// OpenBLAS sgemm on f32 copies of the same shapes. OpenBLAS keeps its threads
// spinning a while after a call: this runs last, after everything the
// engine's pool measures.
void time_sgemm(std::vector<Matmul>& matmuls, int threads, int n_tokens) {
    std::mt19937 rng(8);
    std::normal_distribution<float> normal(0.f, 1.f);
    openblas_set_num_threads(threads);
    for (Matmul& m : matmuls) {
        const auto rows = static_cast<int>(m.tensor->ne[1]);
        const auto cols = static_cast<int>(m.tensor->ne[0]);
        std::vector<float> weights(static_cast<std::size_t>(rows) * static_cast<std::size_t>(cols));
        engine::dequantize_row(m.tensor->type, m.tensor->data.data(), weights.data(),
                               static_cast<std::int64_t>(weights.size()));
        std::vector<float> input(static_cast<std::size_t>(n_tokens) * static_cast<std::size_t>(cols));
        for (float& x : input)
            x = normal(rng);
        std::vector<float> out(static_cast<std::size_t>(n_tokens) * static_cast<std::size_t>(rows));
        // out (n_tokens, rows) = input (n_tokens, cols) · weightsᵀ
        m.sgemm_seconds = best_seconds(kMatmulRuns, [&] {
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, n_tokens, rows, cols, 1.f, input.data(), cols,
                        weights.data(), cols, 0.f, out.data(), rows);
        });
    }
}


void print_figures(const BenchFigures& figures, bool as_json) {
    if (as_json) {
        std::printf("%s\n", figures.as_json().dump().c_str());
    } else {
        for (const std::string& line : figures.lines())
            std::printf("%s\n", line.c_str());
    }
}

// The context's memory per token: every layer's key and value rows
// (DeepSeek's latent cache: one row of keys alone), f16 or Q8_0 blocks
// (34 bytes per 32 elements).
double context_bytes_per_token(const engine::ModelConfig& config, engine::KvType type) {
    const double bytes_per_element = type == engine::KvType::Q8_0 ? 34.0 / 32 : 2.0;
    return config.n_layers * config.n_kv_heads * static_cast<double>(config.head_dim + config.v_head_dim) *
           bytes_per_element;
}

// Decode step at `rows` cache rows reads every weight once and each layer's
// keys and values of those rows.
double decode_bytes_per_token(const ModelFacts& facts, const engine::ModelConfig& config, engine::KvType type,
                              double rows) {
    return static_cast<double>(facts.weight_bytes_per_token) + rows * context_bytes_per_token(config, type);
}

// Prefill at each of prefill_tokens and gen_tokens decode steps after each
// of decode_contexts cache rows, on one cache (fill_context: rows past the
// longest prefill computed too), with the decode reads as a fraction of
// `bandwidth` (what `ceiling` names).
void add_context_sweep(BenchFigures& figures, engine::Model& model, engine::ThreadPool& pool, const ModelFacts& facts,
                       const std::vector<int>& prefill_tokens, const std::vector<int>& decode_contexts, int gen_tokens,
                       engine::KvType kv_type, bool fill_context, double bandwidth, const char* ceiling) {
    const engine::ModelConfig& config = model.config();
    const int longest_prefill = prefill_tokens.empty() ? 0 : *std::max_element(prefill_tokens.begin(), prefill_tokens.end());
    const int deepest_decode = decode_contexts.empty() ? 0 : *std::max_element(decode_contexts.begin(), decode_contexts.end());
    const int n_positions = std::max({longest_prefill, deepest_decode + gen_tokens, 64});
    const double state = context_bytes_per_token(config, kv_type);
    figures.add("context_bytes_per_token", state,
                format("context state    %.1f KB per token (%s keys and values of %d layers): %.2f GB at %d tokens",
                       state / 1e3, engine::kv_type_name(kv_type), config.n_layers, state * n_positions / 1e9,
                       n_positions));
    engine::KvCache cache = model.make_kv_cache(n_positions, kv_type);
    std::mt19937 rng(42);
    std::uniform_int_distribution<std::int32_t> token(0, config.n_vocab - 1);
    std::vector<std::int32_t> ids(static_cast<std::size_t>(n_positions)), positions(ids.size());
    for (std::size_t i = 0; i < ids.size(); ++i) {
        ids[i] = token(rng);
        positions[i] = static_cast<std::int32_t>(i);
    }
    // Warm-up: the mapped weights fault in, cuBLAS picks its kernels.
    model.forward(pool, std::span(ids).first(64), std::span(positions).first(64), cache, engine::LogitRows::Last);

    nlohmann::json prefill = nlohmann::json::array();
    std::string prefill_lines;
    for (const int n : prefill_tokens) {
        const auto n_tokens = static_cast<std::size_t>(n);
        const double seconds = best_seconds(2, [&] {
            model.forward(pool, std::span(ids).first(n_tokens), std::span(positions).first(n_tokens), cache,
                          engine::LogitRows::Last);
        });
        prefill.push_back({{"prompt_tokens", n}, {"seconds", seconds}, {"tokens_per_second", n / seconds}});
        prefill_lines += format("\n  %6d-token prompt  %9.1f tokens/s (%.3f s, best of 2)", n, n / seconds, seconds);
    }
    if (!prefill_tokens.empty()) figures.add("prefill", prefill, "prefill" + prefill_lines);

    // The cache rows below each depth hold the longest prefill's keys and
    // values, or a filling pass's. A step's work does not depend on what the
    // rows hold, so where prefill costs minutes (the CPU) rows past the
    // longest prefill stay as the cache was made, zero, and the sweep says so.
    if (deepest_decode > longest_prefill && fill_context)
        model.forward(pool, std::span(ids).first(static_cast<std::size_t>(deepest_decode)),
                      std::span(positions).first(static_cast<std::size_t>(deepest_decode)), cache,
                      engine::LogitRows::Last);
    const bool zero_rows = deepest_decode > longest_prefill && !fill_context;
    nlohmann::json decode = nlohmann::json::array();
    std::string decode_lines;
    double first_rate = 0;
    for (const int depth : decode_contexts) {
        std::int32_t next = ids[static_cast<std::size_t>(depth)];
        const Clock::time_point start = Clock::now();
        for (int i = 0; i < gen_tokens; ++i) {
            const std::int32_t position = depth + i;
            next = argmax(model.forward(pool, std::span(&next, 1), std::span(&position, 1), cache,
                                        engine::LogitRows::Last));
        }
        const double rate = gen_tokens / seconds_since(start);
        if (first_rate == 0) first_rate = rate;
        const double bytes = decode_bytes_per_token(facts, config, kv_type, depth + (gen_tokens + 1) / 2.0);
        decode.push_back({{"context_tokens", depth},
                          {"tokens_per_second", rate},
                          {"bytes_per_token", bytes},
                          {"effective_gb_per_s", bytes * rate / 1e9},
                          {"bandwidth_fraction", bytes * rate / bandwidth},
                          {"slowdown", first_rate / rate}});
        decode_lines += format("\n  at %6d tokens  %7.1f tokens/s (%.2fx the first's time), %.1f MB per token: "
                               "%.1f GB/s = %.0f%% of %s",
                               depth, rate, first_rate / rate, bytes / 1e6, bytes * rate / 1e9,
                               100 * bytes * rate / bandwidth, ceiling);
    }
    if (!decode_contexts.empty())
        figures.add("decode", decode,
                    (zero_rows ? format("decode (cache rows past %d zero, not computed)", std::max(longest_prefill, 64))
                               : std::string("decode")) +
                        decode_lines);
}

// How evenly the experts were chosen since the last reset.
void add_expert_load(BenchFigures& figures, const engine::Model& model, const char* key, const char* phase) {
    const engine::ExpertUsage& usage = model.expert_usage();
    if (usage.empty()) return;
    figures.add(key, usage.mean_max_load(),
                format("expert load      %-8s the busiest of %d experts chose %.2fx the mean (per layer, averaged over %zu layers)",
                       phase, usage.n_expert, usage.mean_max_load(), usage.layers.size()));
}

int run_gpu_engine_bench(const EngineBenchOptions& options, bool as_json) {
    const engine::GgufFile file = engine::GgufFile::open(options.model_path);
    const std::unique_ptr<engine::Model> model = engine::load_model(file);
    const engine::ModelConfig& config = model->config();
    const ModelFacts facts = model_facts(file);
    const engine::GpuReport report = engine::detect_gpus();
    if (report.gpus.empty()) throw std::runtime_error("no GPU to benchmark: " + report.note);
    const std::vector<int> prefill_tokens =
        options.prefill_tokens.empty() ? std::vector<int>{2048, 8192, 32768} : options.prefill_tokens;
    const std::vector<int> decode_contexts =
        options.decode_contexts.empty() ? std::vector<int>{0, 4096, 32768} : options.decode_contexts;
    const int longest = std::max(*std::max_element(prefill_tokens.begin(), prefill_tokens.end()),
                                 *std::max_element(decode_contexts.begin(), decode_contexts.end()) + options.gen_tokens);
    model->use_gpu(0, {.host_expert_layers = options.cpu_experts, .context_positions = longest});
    // The host only queues kernels, unless it computes experts kept in its memory.
    engine::ThreadPool pool(model->host_expert_layers() > 0 ? 0 : 1);

    BenchFigures figures;
    figures.add("model", options.model_path,
                format("model            %s (%s, %.1fM parameters, mostly %s)",
                       std::filesystem::path(options.model_path).filename().c_str(), config.architecture.c_str(),
                       facts.parameters / 1e6, facts.weight_type.c_str()));
    figures.add("device", report.gpus[0].name, format("device           %s (CUDA)", report.gpus[0].name.c_str()));
    figures.add("host_expert_layers", model->host_expert_layers(),
                format("experts on host  %d layers (computed by %d CPU threads)", model->host_expert_layers(),
                       pool.size()));
    figures.add("kv_type", engine::kv_type_name(options.kv_type),
                format("KV cache         %s", engine::kv_type_name(options.kv_type)));
    const double bandwidth = engine::measure_gpu_copy_bandwidth(0);
    figures.add("gpu_copy_gb_per_s", bandwidth / 1e9,
                format("memory copy      %.0f GB/s (device-to-device, 1 GiB, read + written)", bandwidth / 1e9));
    add_context_sweep(figures, *model, pool, facts, prefill_tokens, decode_contexts, options.gen_tokens,
                      options.kv_type, true, bandwidth, "the copy");
    print_figures(figures, as_json);
    return 0;
}

}  // namespace

int run_engine_bench(const EngineBenchOptions& options, bool as_json) {
    if (options.device == "cuda") return run_gpu_engine_bench(options, as_json);
    const engine::GgufFile file = engine::GgufFile::open(options.model_path);
    const std::unique_ptr<engine::Model> model = engine::load_model(file);
    const engine::ModelConfig& config = model->config();
    const ModelFacts facts = model_facts(file);
    engine::ThreadPool pool(options.threads);
    const int threads = pool.size();
    const int n_prompt = options.prompt_tokens;
    const int n_gen = options.gen_tokens;

    BenchFigures figures;
    figures.add("model", options.model_path,
                format("model            %s (%s, %.1fM parameters, mostly %s)",
                       std::filesystem::path(options.model_path).filename().c_str(), config.architecture.c_str(),
                       facts.parameters / 1e6, facts.weight_type.c_str()));
    figures.add("architecture", config.architecture, "");
    figures.add("parameters", facts.parameters, "");
    figures.add("weight_type", facts.weight_type, "");
    figures.add("threads", threads, format("threads          %d", threads));
    figures.add("isa", engine::cpu_kernel_isa(), format("kernels          %s", engine::cpu_kernel_isa()));
    figures.add("kv_type", engine::kv_type_name(options.kv_type),
                format("KV cache         %s", engine::kv_type_name(options.kv_type)));

    const double bandwidth_before = measure_read_bandwidth(threads);
    Int8Peak peak = measure_int8_peak(threads);

    // Random prompt ids: the speed of a forward pass does not depend on them.
    std::mt19937 rng(42);
    std::uniform_int_distribution<std::int32_t> token(0, config.n_vocab - 1);
    std::vector<std::int32_t> prompt(static_cast<std::size_t>(n_prompt));
    std::vector<std::int32_t> positions(static_cast<std::size_t>(n_prompt));
    for (int i = 0; i < n_prompt; ++i) {
        prompt[static_cast<std::size_t>(i)] = token(rng);
        positions[static_cast<std::size_t>(i)] = i;
    }
    engine::KvCache cache = model->make_kv_cache(n_prompt + n_gen, options.kv_type);
    // The first pass faults the mapped weights in; the timed passes rewrite
    // the same cache rows.
    const int n_warm = std::min(n_prompt, 16);
    model->forward(pool, std::span(prompt).first(static_cast<std::size_t>(n_warm)),
                   std::span(positions).first(static_cast<std::size_t>(n_warm)), cache, engine::LogitRows::Last);
    std::vector<float> logits;
    model->reset_expert_usage();
    const double prefill_seconds = best_seconds(
        2, [&] { logits = model->forward(pool, prompt, positions, cache, engine::LogitRows::Last); });
    figures.add("prompt_tokens", n_prompt, "");
    figures.add("prefill_seconds", prefill_seconds, "");
    figures.add("prefill_tokens_per_second", n_prompt / prefill_seconds,
                format("prefill          %.1f tokens/s (%d-token prompt in %.3f s, best of 2)",
                       n_prompt / prefill_seconds, n_prompt, prefill_seconds));

    add_expert_load(figures, *model, "prefill_expert_max_load", "prefill");
    model->reset_expert_usage();
    const Clock::time_point decode_start = Clock::now();
    for (int i = 0; i < n_gen; ++i) {
        const std::int32_t next = argmax(logits);
        const std::int32_t position = n_prompt + i;
        logits = model->forward(pool, std::span(&next, 1), std::span(&position, 1), cache, engine::LogitRows::Last);
    }
    const double decode_seconds = seconds_since(decode_start);
    const double decode_rate = n_gen / decode_seconds;
    // Measured again right after decode, the best of both kept: on a shared
    // machine the ceiling then reflects the conditions decode ran in, and
    // errs high rather than flattering decode.
    const double bandwidth = std::max(bandwidth_before, measure_read_bandwidth(threads));
    add_expert_load(figures, *model, "decode_expert_max_load", "decode");
    figures.add("gen_tokens", n_gen, "");
    figures.add("decode_seconds", decode_seconds, "");
    figures.add("decode_tokens_per_second", decode_rate,
                format("decode           %.1f tokens/s (%d tokens in %.3f s)", decode_rate, n_gen, decode_seconds));

    figures.add("memory_read_gb_per_s", bandwidth / 1e9,
                format("memory read      %.1f GB/s (%d MiB streamed by %d threads, best of %d passes before "
                       "and %d after decode)",
                       bandwidth / 1e9, static_cast<int>(kBandwidthBufferBytes >> 20), threads, kBandwidthPasses,
                       kBandwidthPasses));

    // Decode step i attends to n_prompt + i + 1 cache rows of keys and values
    // in every layer.
    const double mean_kv_rows = n_prompt + (n_gen + 1) / 2.0;
    const double kv_bytes = mean_kv_rows * context_bytes_per_token(config, options.kv_type);
    const double bytes_per_token = static_cast<double>(facts.weight_bytes_per_token) + kv_bytes;
    const double effective = bytes_per_token * decode_rate;
    figures.add("decode_weight_bytes_per_token", facts.weight_bytes_per_token, "");
    figures.add("decode_kv_bytes_per_token", kv_bytes, "");
    figures.add("decode_bytes_per_token", bytes_per_token,
                format("decode reads     %.1f MB per token (weights %.1f MB, %s KV %.1f MB at %.0f rows)",
                       bytes_per_token / 1e6, facts.weight_bytes_per_token / 1e6, engine::kv_type_name(options.kv_type),
                       kv_bytes / 1e6, mean_kv_rows));
    figures.add("decode_effective_gb_per_s", effective / 1e9, "");
    figures.add("decode_bandwidth_fraction", effective / bandwidth,
                format("decode bandwidth %.1f GB/s = %.0f%% of the measured memory read", effective / 1e9,
                       100 * effective / bandwidth));

    if (!options.prefill_tokens.empty() || !options.decode_contexts.empty())
        add_context_sweep(figures, *model, pool, facts, options.prefill_tokens, options.decode_contexts, n_gen,
                          options.kv_type, false, bandwidth, "the measured read");
    if (options.prefix_context_tokens > 0)
        add_prefix_reuse(figures, measure_prefix_reuse(*model, pool, options.prefix_context_tokens));

    // Last: OpenBLAS's threads keep spinning a while after each sgemm.
    std::vector<Matmul> matmuls = distinct_matmuls(facts.prefill_matrices);
    time_engine_matmuls(matmuls, pool, n_prompt);
    // Measured again right after the matmuls, the best of both kept, as the
    // read bandwidth is: on a shared 2-core machine it ranged from 196 to
    // 394 GOP/s within an hour while the same matmuls moved by 10%.
    peak.ops_per_second = std::max(peak.ops_per_second, measure_int8_peak(threads).ops_per_second);
    figures.add("int8_peak_gops", peak.instruction ? nlohmann::json(peak.ops_per_second / 1e9) : nlohmann::json(),
                peak.instruction ? format("int8 peak        %.0f GOP/s (%s, %d threads, best of before and after "
                                          "the matmuls)",
                                          peak.ops_per_second / 1e9, peak.instruction, threads)
                                 : "int8 peak        (no SIMD int8 instructions)");
    time_sgemm(matmuls, threads, n_prompt);
    double flops = 0, seconds = 0, sgemm_seconds = 0;
    nlohmann::json shapes = nlohmann::json::array();
    std::string shape_lines;
    for (const Matmul& m : matmuls) {
        const double f = matmul_flops(m, n_prompt);
        flops += f * m.count;
        seconds += m.seconds * m.count;
        sgemm_seconds += m.sgemm_seconds * m.count;
        shapes.push_back({{"type", std::string(m.tensor->type_name())},
                          {"rows", m.tensor->ne[1]},
                          {"cols", m.tensor->ne[0]},
                          {"count", m.count},
                          {"gflops", f / m.seconds / 1e9},
                          {"sgemm_gflops", f / m.sgemm_seconds / 1e9}});
        shape_lines += format("\n  %-5s %6lld x %-6lld x%-3d %7.1f GFLOP/s, sgemm %7.1f", m.tensor->type_name().data(),
                              static_cast<long long>(m.tensor->ne[1]), static_cast<long long>(m.tensor->ne[0]),
                              m.count, f / m.seconds / 1e9, f / m.sgemm_seconds / 1e9);
    }
    const double gflops = flops / seconds / 1e9;
    const double sgemm_gflops = flops / sgemm_seconds / 1e9;
    figures.add("prefill_matmul_shapes", shapes,
                format("prefill matmuls  per shape (type rows x cols x count) with %d token rows:", n_prompt) +
                    shape_lines);
    figures.add("prefill_matmul_gflops", gflops,
                format("prefill matmuls  %.1f GFLOP/s over one pass of the model's layers", gflops));
    figures.add("sgemm_gflops", sgemm_gflops,
                format("sgemm            %.1f GFLOP/s (OpenBLAS f32, same shapes and threads)", sgemm_gflops));
    figures.add("prefill_matmul_fraction_of_sgemm", gflops / sgemm_gflops,
                format("prefill matmuls  %.0f%% of sgemm", 100 * gflops / sgemm_gflops));
    figures.add("prefill_matmul_fraction_of_int8_peak",
                peak.instruction ? nlohmann::json(gflops * 1e9 / peak.ops_per_second) : nlohmann::json(),
                peak.instruction ? format("prefill matmuls  %.0f%% of the int8 peak", 100 * gflops * 1e9 / peak.ops_per_second)
                                 : "");

    print_figures(figures, as_json);
    return 0;
}

}  // namespace folio::app
