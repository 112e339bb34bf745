#include "engine/blocks_cpu.h"

#include <algorithm>
#include <numeric>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <iterator>
#include <memory>
#include <stdexcept>
#include <string>
#include <utility>

#include "engine/fp16.h"
#include "engine/lora.h"
#include "engine/quant.h"
#include "engine/quant_kernels.h"
#include "engine/vector_math.h"

#include <sys/mman.h>

namespace folio::engine {

namespace {

// For i in [begin, end): e_i = e^(exponent(i)), then finish(i, e_i), with
// the exponentials taken a vector at a time (vector_math.h) in runs that
// stay in L1.
template <class Exponent, class Finish>
void with_exponentials(std::int64_t begin, std::int64_t end, Exponent exponent, Finish finish) {
    constexpr std::int64_t kRun = 256;
    float e[kRun];
    for (std::int64_t start = begin; start < end; start += kRun) {
        const std::int64_t count = std::min(kRun, end - start);
        for (std::int64_t i = 0; i < count; ++i)
            e[i] = exponent(start + i);
        exp_in_place(e, count);
        for (std::int64_t i = 0; i < count; ++i)
            finish(start + i, e[i]);
    }
}

// Weight rows per thread-pool chunk: enough work to outweigh handing it out,
// and a row group (quant.h): products split their rows in these units.
constexpr std::int64_t kMatmulMinRows = 16;

// parallel_for over the rows [0, n) of a product in whole units of
// kMatmulMinRows (the last one shorter when n is not a multiple).
void parallel_for_rows(ThreadPool& pool, std::int64_t n, const std::function<void(std::int64_t, std::int64_t)>& body) {
    pool.parallel_for((n + kMatmulMinRows - 1) / kMatmulMinRows, 1, [&](std::int64_t begin, std::int64_t end) {
        body(begin * kMatmulMinRows, std::min(n, end * kMatmulMinRows));
    });
}

// Multiply-adds per chunk of a LoRA pair's X · Aᵀ: a decoded token's
// r · n_in are too few to be worth waking the pool for.
constexpr std::int64_t kLoraMinChunkWork = std::int64_t{1} << 16;

}  // namespace

MatmulInput::MatmulInput(const float* rows, std::int64_t n_rows, std::int64_t n_cols)
    : rows_(rows), n_rows_(n_rows), n_cols_(n_cols) {}

const void* MatmulInput::rows_as(ThreadPool& pool, GgmlType dot_type, std::int64_t& row_bytes) {
    if (dot_type == GgmlType::F32) {
        row_bytes = n_cols_ * static_cast<std::int64_t>(sizeof(float));
        return rows_;
    }
    for (const Converted& converted : converted_) {
        if (converted.type == dot_type) {
            row_bytes = converted.row_bytes;
            return converted.bytes.data();
        }
    }
    Converted converted{dot_type, static_cast<std::int64_t>(quant_row_bytes(dot_type, n_cols_)), {}};
    converted.bytes.resize(static_cast<std::size_t>(converted.row_bytes * n_rows_));
    pool.parallel_for(n_rows_, 1, [&](std::int64_t begin, std::int64_t end) {
        for (std::int64_t r = begin; r < end; ++r)
            quantize_row(dot_type, rows_ + r * n_cols_, converted.bytes.data() + r * converted.row_bytes, n_cols_);
    });
    converted_.push_back(std::move(converted));
    row_bytes = converted_.back().row_bytes;
    return converted_.back().bytes.data();
}

namespace {

// One adapter's update of a weight: B and down = scale · X · Aᵀ (n_rows, r),
// the activations B multiplies.
struct LoraUpdate {
    const WeightMatrix* b;
    std::vector<float> down;
    MatmulInput down_input;
};

// A weight's product with an input, out (n_rows, w.rows) = input · wᵀ plus
// the adapters' updates, made ready (the input converted to the weight's
// vec_dot_type, each adapter's X · Aᵀ computed) so that a task can then
// compute any range of output features by itself. Several products then
// share one pass over the pool: Q, K and V, or gate and up with the
// activation; a decoded token of a small model spends more on hand-offs
// between threads than on any of its matrices.
class PreparedProduct {
public:
    PreparedProduct(ThreadPool& pool, const WeightMatrix& w, const LoraSet& loras, MatmulInput& input, float* out)
        : w_(w), n_rows_(input.n_rows()), out_(out) {
        if (input.n_cols() != w.cols)
            throw std::invalid_argument("matmul: input rows have " + std::to_string(input.n_cols()) +
                                        " columns, the weight matrix " + std::to_string(w.cols));
        act_ = input.rows_as(pool, vec_dot_type(w.type), act_row_bytes_);
        prepare_adapters(pool, loras, input);
    }
    // Moving keeps the heap buffers that the pointers below point into.
    PreparedProduct(PreparedProduct&&) = default;
    PreparedProduct& operator=(PreparedProduct&&) = delete;

    std::int64_t n_features() const { return w_.rows; }

    // out's columns [begin, end) of every input row. One input row (decode)
    // takes matmul_rows; several (prefill) take matmul_rows_columns, which
    // reuses each unpacked weight block across rows.
    void compute(std::int64_t begin, std::int64_t end) {
        if (w_.row_groups && begin % kMatmulMinRows == 0 && end % kMatmulMinRows == 0)
            matmul_row_groups(w_.type, w_.row_groups, begin, end, w_.cols, act_, act_row_bytes_, n_rows_, out_, w_.rows);
        else if (n_rows_ == 1)
            matmul_rows(w_.type, w_.data, w_.row_bytes, begin, end, w_.cols, act_, out_);
        else
            matmul_rows_columns(w_.type, w_.data, w_.row_bytes, begin, end, w_.cols, act_, act_row_bytes_, n_rows_,
                                out_, w_.rows);
        // out += down · Bᵀ for each update, while these columns of out are in cache.
        for (std::size_t u = 0; u < updates_.size(); ++u) {
            const WeightMatrix& b = *updates_[u].b;
            matmul_rows_columns(b.type, b.data, b.row_bytes, begin, end, b.cols, down_rows_[u].first,
                                down_rows_[u].second, n_rows_, delta_.data(), w_.rows);
            for (std::int64_t row = 0; row < n_rows_; ++row)
                for (std::int64_t i = row * w_.rows + begin; i < row * w_.rows + end; ++i)
                    out_[i] += delta_[static_cast<std::size_t>(i)];
        }
    }

private:
    void prepare_adapters(ThreadPool& pool, const LoraSet& loras, MatmulInput& input) {
        updates_.reserve(loras.uses.size());  // down_input points into each update's down: no reallocation
        for (const LoraUse& use : loras.uses) {
            const LoraWeight* pair = use.adapter->find(w_.name, w_.expert);
            if (pair == nullptr)
                continue;
            const float scale = use.adapter->scale(*pair, use.scale);
            if (scale == 0.f)
                continue;
            const WeightMatrix& a = pair->a;
            if (a.cols != w_.cols || pair->b.rows != w_.rows)
                throw std::invalid_argument("lora_matmul: the adapter's pair for " + std::string(w_.name) +
                                            " does not fit a weight of " + std::to_string(w_.rows) + " x " +
                                            std::to_string(w_.cols));
            const std::int64_t rank = a.rows;
            // down (n_rows, r) = X · Aᵀ. A has r rows, too few to share out, so
            // the pool splits the batch's rows instead.
            std::vector<float> down(static_cast<std::size_t>(n_rows_ * rank));
            std::int64_t act_row_bytes = 0;
            const auto* act =
                static_cast<const std::uint8_t*>(input.rows_as(pool, vec_dot_type(a.type), act_row_bytes));
            pool.parallel_for(n_rows_, std::max<std::int64_t>(1, kLoraMinChunkWork / (rank * a.cols)),
                              [&](std::int64_t begin, std::int64_t end) {
                                  matmul_rows_columns(a.type, a.data, a.row_bytes, 0, rank, a.cols,
                                                      act + begin * act_row_bytes, act_row_bytes, end - begin,
                                                      down.data() + begin * rank, rank);
                              });
            scale_in_place(down.data(), n_rows_ * rank, scale);
            const float* down_data = down.data();
            updates_.push_back({&pair->b, std::move(down), MatmulInput(down_data, n_rows_, rank)});
        }
        if (updates_.empty())
            return;
        // B's activations in its vec_dot_type, converted before the pool starts.
        for (LoraUpdate& update : updates_) {
            std::int64_t row_bytes = 0;
            const void* rows = update.down_input.rows_as(pool, vec_dot_type(update.b->type), row_bytes);
            down_rows_.emplace_back(rows, row_bytes);
        }
        delta_.resize(static_cast<std::size_t>(n_rows_ * w_.rows));  // (n_rows, w.rows)
    }

    WeightMatrix w_;
    std::int64_t n_rows_;
    float* out_;
    const void* act_ = nullptr;
    std::int64_t act_row_bytes_ = 0;
    std::vector<LoraUpdate> updates_;
    std::vector<std::pair<const void*, std::int64_t>> down_rows_;  // each update's down in B's dot type, row bytes
    std::vector<float> delta_;
};

}  // namespace

void FreeWeightBytes::operator()(std::uint8_t* bytes) const {
    std::free(bytes);
}

WeightBytes allocate_weight_bytes(std::size_t bytes) {
    constexpr std::size_t kHugePage = std::size_t{2} << 20;
    const std::size_t rounded = (std::max<std::size_t>(bytes, 1) + kHugePage - 1) / kHugePage * kHugePage;
    WeightBytes memory(static_cast<std::uint8_t*>(std::aligned_alloc(kHugePage, rounded)));
#ifdef MADV_HUGEPAGE
    // Advice only: where the kernel has no huge pages to give, 4 KiB pages.
    if (memory) ::madvise(memory.get(), rounded, MADV_HUGEPAGE);
#endif
    return memory;
}

void group_weight_matrices(ThreadPool& pool, std::span<WeightMatrix* const> matrices,
                           std::vector<WeightBytes>& storage) {
    for (WeightMatrix* w : matrices) {
        if (w->row_groups || !row_groups_pay(w->type) || w->rows % kMatmulMinRows != 0 ||
            w->cols % row_group_elements(w->type) != 0)
            continue;
        WeightBytes groups = allocate_weight_bytes(row_groups_bytes(w->type, w->rows, w->cols));
        if (!groups)
            return;
        parallel_for_rows(pool, w->rows, [&](std::int64_t begin, std::int64_t end) {
            group_rows(w->type, w->data, w->row_bytes, begin, end, w->cols, groups.get());
        });
        w->row_groups = groups.get();
        storage.push_back(std::move(groups));
    }
}

void matmul(ThreadPool& pool, const WeightMatrix& w, MatmulInput& input, float* out) {
    lora_matmul(pool, w, LoraSet{}, input, out);
}

void lora_matmul(ThreadPool& pool, const WeightMatrix& w, const LoraSet& loras, MatmulInput& input, float* out) {
    const Projection projection{&w, out};
    project(pool, {&projection, 1}, loras, input);
}

void project(ThreadPool& pool, std::span<const Projection> outputs, const LoraSet& loras, MatmulInput& input) {
    std::vector<PreparedProduct> products;
    products.reserve(outputs.size());
    std::int64_t n_features = 0;
    for (const Projection& projection : outputs) {
        products.emplace_back(pool, *projection.weight, loras, input, projection.out);
        n_features += products.back().n_features();
    }
    // Feature f of the pass is feature f - first of the product whose features start at first.
    parallel_for_rows(pool, n_features, [&](std::int64_t begin, std::int64_t end) {
        std::int64_t first = 0;
        for (PreparedProduct& product : products) {
            const std::int64_t last = first + product.n_features();
            if (begin < last && end > first)
                product.compute(std::max(begin, first) - first, std::min(end, last) - first);
            first = last;
        }
    });
}

void embed_tokens(const WeightMatrix& table, std::span<const std::int32_t> tokens, float* out) {
    for (std::size_t i = 0; i < tokens.size(); ++i) {
        const std::int32_t token = tokens[i];
        if (token < 0 || token >= table.rows)
            throw std::out_of_range("token id " + std::to_string(token) + " outside the vocabulary of " +
                                    std::to_string(table.rows));
        dequantize_row(table.type, table.data + token * table.row_bytes, out + static_cast<std::int64_t>(i) * table.cols,
                       table.cols);
    }
}

void rms_norm(ThreadPool& pool, const float* x, const float* weight, std::int64_t n_rows, std::int64_t n, float eps,
              float* out) {
    pool.parallel_for(n_rows, 8, [&](std::int64_t begin, std::int64_t end) {
        for (std::int64_t r = begin; r < end; ++r) {
            const float* row = x + r * n;
            double sum_squares = 0.0;
            for (std::int64_t i = 0; i < n; ++i)
                sum_squares += static_cast<double>(row[i]) * row[i];
            const float inverse_rms = static_cast<float>(1.0 / std::sqrt(sum_squares / static_cast<double>(n) + eps));
            float* dst = out + r * n;
            for (std::int64_t i = 0; i < n; ++i)
                dst[i] = row[i] * inverse_rms * weight[i];
        }
    });
}

void layer_norm(ThreadPool& pool, const float* x, const float* weight, const float* bias, std::int64_t n_rows,
                std::int64_t n, float eps, float* out) {
    pool.parallel_for(n_rows, 8, [&](std::int64_t begin, std::int64_t end) {
        for (std::int64_t r = begin; r < end; ++r) {
            const float* row = x + r * n;
            double sum = 0.0;
            for (std::int64_t i = 0; i < n; ++i)
                sum += row[i];
            const double mean = sum / static_cast<double>(n);
            double sum_squares = 0.0;  // about the mean: no cancellation for rows far from zero
            for (std::int64_t i = 0; i < n; ++i)
                sum_squares += (row[i] - mean) * (row[i] - mean);
            const auto inverse_std = static_cast<float>(1.0 / std::sqrt(sum_squares / static_cast<double>(n) + eps));
            const auto mean_f = static_cast<float>(mean);
            float* dst = out + r * n;
            for (std::int64_t i = 0; i < n; ++i)
                dst[i] = (row[i] - mean_f) * inverse_std * weight[i] + bias[i];
        }
    });
}

void add_in_place(float* x, const float* y, std::int64_t n) {
    for (std::int64_t i = 0; i < n; ++i)
        x[i] += y[i];
}

void rope(ThreadPool& pool, float* x, std::span<const std::int32_t> positions, int n_heads,
          const RopeParameters& params) {
    const int n_pairs = params.n_rot / 2;
    // Second element of pair i, relative to its first.
    const int partner_offset = params.style == RopeStyle::AdjacentPairs ? 1 : n_pairs;
    const int pair_stride = params.style == RopeStyle::AdjacentPairs ? 2 : 1;
    const std::vector<double> inv_freq = rope_inverse_frequencies(params.n_rot, params.freq_base, params.scaling);
    const double attention_factor = rope_attention_factor(params.scaling);
    const auto n_tokens = static_cast<std::int64_t>(positions.size());
    pool.parallel_for(n_tokens, 4, [&](std::int64_t begin, std::int64_t end) {
        std::vector<float> cos_theta(static_cast<std::size_t>(n_pairs));
        std::vector<float> sin_theta(static_cast<std::size_t>(n_pairs));
        for (std::int64_t t = begin; t < end; ++t) {
            for (int i = 0; i < n_pairs; ++i) {
                const double theta = positions[static_cast<std::size_t>(t)] * inv_freq[static_cast<std::size_t>(i)];
                cos_theta[static_cast<std::size_t>(i)] = static_cast<float>(std::cos(theta) * attention_factor);
                sin_theta[static_cast<std::size_t>(i)] = static_cast<float>(std::sin(theta) * attention_factor);
            }
            for (int h = 0; h < n_heads; ++h) {
                float* head = x + (t * n_heads + h) * params.head_dim;
                for (int i = 0; i < n_pairs; ++i) {
                    float& first = head[i * pair_stride];
                    float& second = head[i * pair_stride + partner_offset];
                    const float c = cos_theta[static_cast<std::size_t>(i)];
                    const float s = sin_theta[static_cast<std::size_t>(i)];
                    const float rotated_first = first * c - second * s;
                    const float rotated_second = first * s + second * c;
                    first = rotated_first;
                    second = rotated_second;
                }
            }
        }
    });
}

void add_bias(float* x, const float* bias, std::int64_t n_rows, std::int64_t n) {
    for (std::int64_t r = 0; r < n_rows; ++r)
        for (std::int64_t i = 0; i < n; ++i)
            x[r * n + i] += bias[i];
}

namespace {

// Elements [begin, begin + n) of a row of Q8_0 blocks (which may start and
// end inside a block: a head narrower than a block), as f32 weights x.
float dot_q8_0_range(const quant::BlockQ8_0* row, int begin, int n, const float* x) {
    float sum = 0.f;
    for (int i = begin; i < begin + n;) {
        const quant::BlockQ8_0& block = row[i / quant::kBlock32];
        const int block_end = std::min(begin + n, (i / quant::kBlock32 + 1) * quant::kBlock32);
        float block_sum = 0.f;
        for (int e = i; e < block_end; ++e)
            block_sum += static_cast<float>(block.qs[e % quant::kBlock32]) * x[e - begin];
        sum += fp16_to_fp32(block.d) * block_sum;
        i = block_end;
    }
    return sum;
}

// acc (n) += weight * elements [begin, begin + n) of a row of Q8_0 blocks
// (which may start and end inside a block; whole blocks take
// add_weighted_q8_0_rows).
void add_scaled_q8_0_range(float weight, const quant::BlockQ8_0* row, int begin, int n, float* acc) {
    for (int i = begin; i < begin + n;) {
        const quant::BlockQ8_0& block = row[i / quant::kBlock32];
        const int block_end = std::min(begin + n, (i / quant::kBlock32 + 1) * quant::kBlock32);
        const float scale = weight * fp16_to_fp32(block.d);
        for (int e = i; e < block_end; ++e)
            acc[e - begin] += scale * static_cast<float>(block.qs[e % quant::kBlock32]);
        i = block_end;
    }
}

}  // namespace

namespace {

// weights[j] = softmax(scale * scores)[j] over j in [begin, end); entries
// outside the range become 0 (masked keys).
void masked_softmax(float* weights, int n, int begin, int end, float scale) {
    scaled_softmax_in_place(weights + begin, end - begin, scale);
    std::fill(weights, weights + begin, 0.f);
    std::fill(weights + end, weights + n, 0.f);
}

// The cache rows [first, end) that the token at `position` attends to.
struct KeyRange {
    int first;
    int end;
};

KeyRange key_range(const AttentionShape& shape, int position, int batch_end) {
    return {shape.causal && shape.window > 0 ? std::max(0, position - shape.window + 1) : 0,
            shape.causal ? position + 1 : batch_end};
}

// Queries per f16 attention task: their scores and weighted sums go through
// the tiled matmul, which reads each key and value row once per tile instead
// of once per query. Causal tiles compute a few masked scores past the
// diagonal; 8 keeps that waste small against a long prefix.
constexpr std::int64_t kQueryTile = 8;

// A decoded token's attention at this many keys or more goes to the threads
// in three passes (decode_attention); below, one pass per kv head costs
// fewer hand-offs between the threads.
constexpr int kDecodeSplitKeys = 1024;
// Keys per task of the scoring pass, value elements per task of the
// weighted-sum pass (f16 rows; a Q8_0 block is 32).
constexpr int kDecodeKeyChunk = 256;
constexpr int kDecodeF16ValueChunk = 16;

// A query's Q8_0 form for the keys' dot products of a q8_0 cache: the
// Q8_0 kernel when the heads are whole blocks (llama.cpp quantizes the query
// for a Q8_0 K too), else none (the keys are dequantized element by element).
std::int64_t q8_0_query_bytes(const KvCache& cache, const AttentionShape& shape) {
    return cache.type() == KvType::Q8_0 && shape.head_dim % quant::kBlock32 == 0
               ? static_cast<std::int64_t>(quant_row_bytes(GgmlType::Q8_0, shape.head_dim))
               : 0;
}

// Where a kv head's rows are in the cache (KvCache::head_groups): its
// group's rows, row_bytes apart, and the head's first element in each. The
// element is 0 but for a q8_0 cache of heads narrower than whole blocks.
struct HeadRows {
    const std::uint8_t* rows;
    std::int64_t row_bytes;
    int first_element;
};

HeadRows key_rows(const KvCache& cache, int layer, int kv_head, int head_dim) {
    const int heads_per_group = cache.n_kv_heads() / cache.head_groups();
    return {cache.keys(layer, kv_head / heads_per_group), static_cast<std::int64_t>(cache.key_group_bytes()),
            kv_head % heads_per_group * head_dim};
}

HeadRows value_rows(const KvCache& cache, int layer, int kv_head, int v_head_dim) {
    const int heads_per_group = cache.n_kv_heads() / cache.head_groups();
    return {cache.value_rows(layer, kv_head / heads_per_group), static_cast<std::int64_t>(cache.value_group_bytes()),
            kv_head % heads_per_group * v_head_dim};
}

// scores[h * ld + j] = q_h · key (first_key + j) of kv head kv_head, for
// keys j in [j0, j1) and the n_group query heads q_heads (head_dim floats
// each, consecutive; q_quantized: the same heads in Q8_0 when
// q8_0_query_bytes says so). Each score is one dot product: splitting the
// keys gives the same bits.
void score_keys(const KvCache& cache, int layer, const AttentionShape& shape, int kv_head, int first_key,
                const float* q_heads, const std::uint8_t* q_quantized, int n_group, int j0, int j1, float* scores,
                std::int64_t ld) {
    const HeadRows keys = key_rows(cache, layer, kv_head, shape.head_dim);
    const std::uint8_t* first_key_row = keys.rows + first_key * keys.row_bytes;
    if (cache.type() == KvType::F16) {
        matmul_rows_columns(GgmlType::F16,
                            first_key_row + keys.first_element * static_cast<std::int64_t>(sizeof(std::uint16_t)),
                            keys.row_bytes, j0, j1, shape.head_dim, q_heads,
                            shape.head_dim * static_cast<std::int64_t>(sizeof(float)), n_group, scores, ld);
        return;
    }
    if (const std::int64_t q_row_bytes = q8_0_query_bytes(cache, shape); q_row_bytes > 0) {
        const std::uint8_t* first_block =
            first_key_row + keys.first_element / quant::kBlock32 * static_cast<std::int64_t>(sizeof(quant::BlockQ8_0));
        matmul_rows_columns(GgmlType::Q8_0, first_block, keys.row_bytes, j0, j1, shape.head_dim, q_quantized,
                            q_row_bytes, n_group, scores, ld);
        return;
    }
    for (int h = 0; h < n_group; ++h)
        for (int j = j0; j < j1; ++j)
            scores[h * ld + j] =
                dot_q8_0_range(reinterpret_cast<const quant::BlockQ8_0*>(first_key_row + j * keys.row_bytes),
                               keys.first_element, shape.head_dim, q_heads + h * shape.head_dim);
}

// out_heads[h * v_head_dim + e] = sum over j < n_keys of weights[h * ld + j]
// * value (first_key + j) of kv head kv_head, element e, for e in [e0, e1)
// and n_group heads, from an f16 cache. Each element is one sum over the
// keys in their order: splitting the elements gives the same bits.
void weigh_f16_values(const KvCache& cache, int layer, const AttentionShape& shape, int kv_head, int first_key,
                      int n_keys, const float* weights, std::int64_t ld, int n_group, int e0, int e1, float* out_heads) {
    const std::uint16_t* v_head = cache.values_transposed(layer) +
                                  static_cast<std::int64_t>(kv_head) * shape.v_head_dim * cache.n_positions() + first_key;
    matmul_rows_columns(GgmlType::F16, v_head, static_cast<std::int64_t>(cache.n_positions()) * sizeof(std::uint16_t),
                        e0, e1, n_keys, weights, ld * static_cast<std::int64_t>(sizeof(float)), n_group, out_heads,
                        shape.v_head_dim);
}

// From a q8_0 cache, the same sums are taken over ranges of
// kDecodeKeyChunk keys and the ranges' sums added in order, so that a
// decoded token's ranges can go to different threads (decode_attention)
// and still give a batch's bits. This writes the sum over keys [j0, j1) to
// partial (n_group, v_head_dim).
void weigh_q8_0_key_range(const KvCache& cache, int layer, const AttentionShape& shape, int kv_head, int first_key,
                          int j0, int j1, const float* weights, std::int64_t ld, int n_group, float* partial) {
    const HeadRows values = value_rows(cache, layer, kv_head, shape.v_head_dim);
    const std::uint8_t* first_value_row = values.rows + (first_key + j0) * values.row_bytes;
    std::fill(partial, partial + n_group * shape.v_head_dim, 0.f);
    if (shape.v_head_dim % quant::kBlock32 == 0) {
        add_weighted_q8_0_rows(weights + j0, ld, n_group, first_value_row, values.row_bytes, j1 - j0,
                               values.first_element, shape.v_head_dim, partial, shape.v_head_dim);
        return;
    }
    for (int h = 0; h < n_group; ++h)
        for (int j = 0; j < j1 - j0; ++j)
            add_scaled_q8_0_range(weights[h * ld + j0 + j],
                                  reinterpret_cast<const quant::BlockQ8_0*>(first_value_row + j * values.row_bytes),
                                  values.first_element, shape.v_head_dim, partial + h * shape.v_head_dim);
}

// out = 0 + partial 0 + partial 1 + ..., n floats each, in that order.
void add_partials_in_order(const float* partials, int n_partials, std::int64_t n, float* out) {
    std::fill(out, out + n, 0.f);
    for (int c = 0; c < n_partials; ++c) add_in_place(out, partials + c * n, n);
}

// Every key's weighted value into out_heads (n_group, v_head_dim), range
// after range on this thread.
void weigh_q8_0_values(const KvCache& cache, int layer, const AttentionShape& shape, int kv_head, int first_key,
                       int n_keys, const float* weights, std::int64_t ld, int n_group, std::vector<float>& partials,
                       float* out_heads) {
    const int n_ranges = (n_keys + kDecodeKeyChunk - 1) / kDecodeKeyChunk;
    const std::int64_t n = static_cast<std::int64_t>(n_group) * shape.v_head_dim;
    partials.resize(static_cast<std::size_t>(n_ranges * n));
    for (int c = 0; c < n_ranges; ++c)
        weigh_q8_0_key_range(cache, layer, shape, kv_head, first_key, c * kDecodeKeyChunk,
                             std::min(n_keys, (c + 1) * kDecodeKeyChunk), weights, ld, n_group, partials.data() + c * n);
    add_partials_in_order(partials.data(), n_ranges, n, out_heads);
}

// A decoded token (one query at `position`, any cache type). The query
// heads that share a kv head go together, as the columns of the keys'
// product and the heads of one weighted sum, so that each key and value row
// is read (and converted) once for all of them. From kDecodeSplitKeys keys
// on, the work goes to the threads in three passes (scores by ranges of
// keys, the softmax by head, the weighted sums by ranges of value elements
// in f16 and of keys in q8_0) instead of one task per kv head, which left a
// thread idle for a third of the attention with 3 kv heads on 2 threads.
// Every score and output element is the same sum in the same order either
// way.
void decode_attention(ThreadPool& pool, const float* q, int position, const KvCache& cache, int layer,
                      const AttentionShape& shape, float* out) {
    const int group = shape.n_heads / shape.n_kv_heads;
    const KeyRange range = key_range(shape, position, position + 1);
    const int n_keys = range.end - range.first;
    // The calling thread's buffers, kept from step to step; the passes'
    // tasks reach them through these references (a thread_local named in a
    // task would be the worker's own).
    thread_local std::vector<float> scores_of_caller;
    thread_local std::vector<std::uint8_t> queries_of_caller;
    std::vector<float>& scores = scores_of_caller;            // (n_heads, n_keys)
    std::vector<std::uint8_t>& q_quantized = queries_of_caller;  // (n_heads) Q8_0 rows
    scores.resize(static_cast<std::size_t>(shape.n_heads) * static_cast<std::size_t>(n_keys));
    const std::int64_t q_row_bytes = q8_0_query_bytes(cache, shape);
    q_quantized.resize(static_cast<std::size_t>(shape.n_heads * q_row_bytes));
    if (q_row_bytes > 0)
        for (int h = 0; h < shape.n_heads; ++h)
            quantize_row(GgmlType::Q8_0, q + h * shape.head_dim, q_quantized.data() + h * q_row_bytes, shape.head_dim);

    auto score = [&](int kv_head, int j0, int j1) {
        const int first_head = kv_head * group;
        score_keys(cache, layer, shape, kv_head, range.first, q + first_head * shape.head_dim,
                   q_quantized.data() + first_head * q_row_bytes, group, j0, j1,
                   scores.data() + static_cast<std::int64_t>(first_head) * n_keys, n_keys);
    };
    auto softmax = [&](int head) {
        masked_softmax(scores.data() + static_cast<std::int64_t>(head) * n_keys, n_keys, 0, n_keys, shape.scale);
    };
    const bool f16 = cache.type() == KvType::F16;
    const std::int64_t group_values = static_cast<std::int64_t>(group) * shape.v_head_dim;
    auto weigh_f16 = [&](int kv_head, int e0, int e1) {
        const int first_head = kv_head * group;
        weigh_f16_values(cache, layer, shape, kv_head, range.first, n_keys,
                         scores.data() + static_cast<std::int64_t>(first_head) * n_keys, n_keys, group, e0, e1,
                         out + first_head * shape.v_head_dim);
    };
    if (n_keys < kDecodeSplitKeys) {
        pool.parallel_for(shape.n_kv_heads, 1, [&](std::int64_t begin, std::int64_t end) {
            std::vector<float> partials;
            for (auto kv_head = static_cast<int>(begin); kv_head < end; ++kv_head) {
                score(kv_head, 0, n_keys);
                for (int h = 0; h < group; ++h) softmax(kv_head * group + h);
                if (f16)
                    weigh_f16(kv_head, 0, shape.v_head_dim);
                else
                    weigh_q8_0_values(cache, layer, shape, kv_head, range.first, n_keys,
                                      scores.data() + static_cast<std::int64_t>(kv_head) * group * n_keys, n_keys,
                                      group, partials, out + kv_head * group_values);
            }
        });
        return;
    }
    const int key_chunks = (n_keys + kDecodeKeyChunk - 1) / kDecodeKeyChunk;
    pool.parallel_for(static_cast<std::int64_t>(shape.n_kv_heads) * key_chunks, 1,
                      [&](std::int64_t begin, std::int64_t end) {
                          for (std::int64_t task = begin; task < end; ++task) {
                              const auto j0 = static_cast<int>(task % key_chunks) * kDecodeKeyChunk;
                              score(static_cast<int>(task / key_chunks), j0, std::min(n_keys, j0 + kDecodeKeyChunk));
                          }
                      });
    pool.parallel_for(shape.n_heads, 1, [&](std::int64_t begin, std::int64_t end) {
        for (auto head = static_cast<int>(begin); head < end; ++head) softmax(head);
    });
    if (f16) {
        const int value_chunks = (shape.v_head_dim + kDecodeF16ValueChunk - 1) / kDecodeF16ValueChunk;
        pool.parallel_for(static_cast<std::int64_t>(shape.n_kv_heads) * value_chunks, 1,
                          [&](std::int64_t begin, std::int64_t end) {
                              for (std::int64_t task = begin; task < end; ++task) {
                                  const auto e0 = static_cast<int>(task % value_chunks) * kDecodeF16ValueChunk;
                                  weigh_f16(static_cast<int>(task / value_chunks), e0,
                                            std::min(shape.v_head_dim, e0 + kDecodeF16ValueChunk));
                              }
                          });
        return;
    }
    // Q8_0 values by ranges of keys (an element range would have two threads
    // fetch the same cache lines of the value rows), then added in order.
    thread_local std::vector<float> partials_of_caller;
    std::vector<float>& partials = partials_of_caller;  // (n_kv_heads, key_chunks, group, v_head_dim)
    partials.resize(static_cast<std::size_t>(shape.n_kv_heads * key_chunks * group_values));
    pool.parallel_for(static_cast<std::int64_t>(shape.n_kv_heads) * key_chunks, 1,
                      [&](std::int64_t begin, std::int64_t end) {
                          for (std::int64_t task = begin; task < end; ++task) {
                              const auto kv_head = static_cast<int>(task / key_chunks);
                              const auto j0 = static_cast<int>(task % key_chunks) * kDecodeKeyChunk;
                              weigh_q8_0_key_range(cache, layer, shape, kv_head, range.first, j0,
                                                   std::min(n_keys, j0 + kDecodeKeyChunk),
                                                   scores.data() + static_cast<std::int64_t>(kv_head) * group * n_keys,
                                                   n_keys, group, partials.data() + task * group_values);
                          }
                      });
    for (int kv_head = 0; kv_head < shape.n_kv_heads; ++kv_head)
        add_partials_in_order(partials.data() + static_cast<std::int64_t>(kv_head) * key_chunks * group_values,
                              key_chunks, group_values, out + kv_head * group_values);
}

}  // namespace

namespace {

// Query rows (tokens x heads) per latent-attention tile: bounds the scores
// buffer (rows x keys) while giving the key-parallel matmul enough rows to
// reuse each key it unpacks.
constexpr std::int64_t kLatentTileRows = 256;

// out[r, :width] += sum over keys j < n_keys of weights[r * weight_stride + j]
// * values[j, :width], for rows r < n_rows; width a multiple of 64. The
// values are f32 rows, width apart. Two rows by four 16-float vectors of
// accumulators per pass over the keys, named one by one so that they stay
// in registers: each value vector loaded feeds two FMAs. GCC's vector
// extension compiles to AVX-512, AVX2 or SSE, chosen at load time by the CPU.
using Float16Vector = float __attribute__((vector_size(64)));

inline Float16Vector load16(const float* p) {
    Float16Vector v;
    std::memcpy(&v, p, sizeof v);
    return v;
}

inline void store16(float* p, Float16Vector v) { std::memcpy(p, &v, sizeof v); }

__attribute__((target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default")))
void add_weighted_rows(const float* weights, std::int64_t weight_stride, std::int64_t n_rows, const float* values,
                       std::int64_t n_keys, std::int64_t width, float* out) {
    constexpr std::int64_t kLanes = 16, kBlock = 4 * kLanes;
    for (std::int64_t r = 0; r < n_rows; r += 2) {
        const bool pair = r + 1 < n_rows;
        const float* w0 = weights + r * weight_stride;
        const float* w1 = pair ? w0 + weight_stride : w0;
        float* out0 = out + r * width;
        float* out1 = out0 + width;
        for (std::int64_t c = 0; c < width; c += kBlock) {
            Float16Vector a0 = load16(out0 + c), a1 = load16(out0 + c + 16), a2 = load16(out0 + c + 32),
                          a3 = load16(out0 + c + 48);
            Float16Vector b0 = {}, b1 = {}, b2 = {}, b3 = {};
            const float* v = values + c;
            for (std::int64_t j = 0; j < n_keys; ++j, v += width) {
                const Float16Vector v0 = load16(v), v1 = load16(v + 16), v2 = load16(v + 32), v3 = load16(v + 48);
                const float x0 = w0[j], x1 = w1[j];
                a0 += x0 * v0;
                a1 += x0 * v1;
                a2 += x0 * v2;
                a3 += x0 * v3;
                b0 += x1 * v0;
                b1 += x1 * v1;
                b2 += x1 * v2;
                b3 += x1 * v3;
            }
            store16(out0 + c, a0);
            store16(out0 + c + 16, a1);
            store16(out0 + c + 32, a2);
            store16(out0 + c + 48, a3);
            if (pair) {
                store16(out1 + c, load16(out1 + c) + b0);
                store16(out1 + c + 16, load16(out1 + c + 16) + b1);
                store16(out1 + c + 32, load16(out1 + c + 32) + b2);
                store16(out1 + c + 48, load16(out1 + c + 48) + b3);
            }
        }
    }
}

// attention() over a keys-only cache (multi-head latent attention): every
// query head reads the one key row per position, and its values are that
// row's first v_head_dim elements. The heads of a tile of tokens are one
// block of query rows; the scores are split over the keys between the
// threads, and so are the weighted sums of value rows, each thread adding
// into its own partial output, so that each row of the cache is read once
// per tile whatever the number of heads.
void latent_attention(ThreadPool& pool, const float* q, std::span<const std::int32_t> positions, const KvCache& cache,
                      int layer, const AttentionShape& shape, float* out) {
    const int batch_end = *std::max_element(positions.begin(), positions.end()) + 1;
    const auto n_tokens = static_cast<std::int64_t>(positions.size());
    const std::uint8_t* keys = cache.keys(layer, 0);  // the one kv head's
    const auto key_row_bytes = static_cast<std::int64_t>(cache.key_group_bytes());
    const GgmlType key_type = cache.type() == KvType::F16 ? GgmlType::F16 : GgmlType::Q8_0;
    const std::int64_t n_heads = shape.n_heads;
    const std::int64_t tile_tokens_max = std::max<std::int64_t>(1, kLatentTileRows / n_heads);
    const int n_parts = pool.size();

    // The queries as the key type's dot products take them: f32 against f16
    // keys, Q8_0 blocks against Q8_0 keys.
    const std::int64_t q_row_bytes =
        key_type == GgmlType::F16 ? shape.head_dim * static_cast<std::int64_t>(sizeof(float))
                                  : static_cast<std::int64_t>(quant_row_bytes(GgmlType::Q8_0, shape.head_dim));
    std::vector<std::uint8_t> q_quantized;
    if (key_type == GgmlType::Q8_0) {
        q_quantized.resize(static_cast<std::size_t>(n_tokens * n_heads * q_row_bytes));
        pool.parallel_for(n_tokens * n_heads, 16, [&](std::int64_t begin, std::int64_t end) {
            for (std::int64_t r = begin; r < end; ++r)
                quantize_row(GgmlType::Q8_0, q + r * shape.head_dim, q_quantized.data() + r * q_row_bytes,
                             shape.head_dim);
        });
    }
    const auto* q_rows = key_type == GgmlType::F16 ? reinterpret_cast<const std::uint8_t*>(q) : q_quantized.data();

    std::vector<float> scores;    // (tile rows, tile keys)
    std::vector<float> partials;  // n_parts of (tile rows, v_head_dim)
    for (std::int64_t first_token = 0; first_token < n_tokens; first_token += tile_tokens_max) {
        const std::int64_t tile_tokens = std::min(tile_tokens_max, n_tokens - first_token);
        const std::int64_t tile_rows = tile_tokens * n_heads;
        KeyRange tile_keys{INT32_MAX, 0};
        for (std::int64_t t = first_token; t < first_token + tile_tokens; ++t) {
            const KeyRange keys_of_t = key_range(shape, positions[static_cast<std::size_t>(t)], batch_end);
            tile_keys = {std::min(tile_keys.first, keys_of_t.first), std::max(tile_keys.end, keys_of_t.end)};
        }
        const std::int64_t n_keys = tile_keys.end - tile_keys.first;
        const std::uint8_t* tile_key_rows = keys + tile_keys.first * key_row_bytes;
        scores.resize(static_cast<std::size_t>(tile_rows * n_keys));

        // scores (tile rows, n_keys) = Q_tile · Kᵀ, the keys split between the threads
        pool.parallel_for(n_keys, 16, [&](std::int64_t begin, std::int64_t end) {
            matmul_rows_columns(key_type, tile_key_rows, key_row_bytes, begin, end, shape.head_dim,
                                q_rows + first_token * n_heads * q_row_bytes, q_row_bytes, tile_rows, scores.data(),
                                n_keys);
        });
        pool.parallel_for(tile_rows, 1, [&](std::int64_t begin, std::int64_t end) {
            for (std::int64_t r = begin; r < end; ++r) {
                const KeyRange keys_of_t =
                    key_range(shape, positions[static_cast<std::size_t>(first_token + r / n_heads)], batch_end);
                masked_softmax(scores.data() + r * n_keys, static_cast<int>(n_keys), keys_of_t.first - tile_keys.first,
                               keys_of_t.end - tile_keys.first, shape.scale);
            }
        });

        // out (tile rows, v_head_dim) = scores · V, V row j being key row j's
        // first v_head_dim elements, converted to f32 a chunk of keys at a time
        const std::int64_t part_size = tile_rows * shape.v_head_dim;
        partials.assign(static_cast<std::size_t>(n_parts * part_size), 0.f);
        const std::int64_t keys_per_part = (n_keys + n_parts - 1) / n_parts;
        pool.parallel_for(n_parts, 1, [&](std::int64_t begin, std::int64_t end) {
            // 8 keys of 512 f32 values: 16 KB, which stays in L1 while every row passes over it.
            constexpr std::int64_t kKeyChunk = 8;
            std::vector<float> values(static_cast<std::size_t>(kKeyChunk * shape.v_head_dim));
            for (std::int64_t part = begin; part < end; ++part) {
                const std::int64_t key_end = std::min(n_keys, (part + 1) * keys_per_part);
                for (std::int64_t first = part * keys_per_part; first < key_end; first += kKeyChunk) {
                    const std::int64_t n_chunk = std::min(kKeyChunk, key_end - first);
                    for (std::int64_t j = 0; j < n_chunk; ++j)
                        dequantize_row(key_type, tile_key_rows + (first + j) * key_row_bytes,
                                       values.data() + j * shape.v_head_dim, shape.v_head_dim);
                    add_weighted_rows(scores.data() + first, n_keys, tile_rows, values.data(), n_chunk,
                                      shape.v_head_dim, partials.data() + part * part_size);
                }
            }
        });
        float* tile_out = out + first_token * n_heads * shape.v_head_dim;
        pool.parallel_for(part_size, 4096, [&](std::int64_t begin, std::int64_t end) {
            for (std::int64_t i = begin; i < end; ++i) {
                float sum = 0.f;
                for (int part = 0; part < n_parts; ++part) sum += partials[static_cast<std::size_t>(part * part_size + i)];
                tile_out[i] = sum;
            }
        });
    }
}

}  // namespace

void attention(ThreadPool& pool, const float* q, std::span<const std::int32_t> positions, const KvCache& cache,
               int layer, const AttentionShape& shape, float* out) {
    if (const int kv_heads = cache.v_width() == 0 ? 1 : shape.n_kv_heads; cache.n_kv_heads() != kv_heads)
        throw std::invalid_argument("attention: the cache holds " + std::to_string(cache.n_kv_heads()) +
                                    " kv heads, the attention reads " + std::to_string(kv_heads));
    if (cache.v_width() == 0) {
        latent_attention(pool, q, positions, cache, layer, shape, out);
        return;
    }
    const int heads_per_kv_head = shape.n_heads / shape.n_kv_heads;
    const int batch_end = *std::max_element(positions.begin(), positions.end()) + 1;
    const auto n_tokens = static_cast<std::int64_t>(positions.size());
    if (n_tokens == 1 && shape.causal) {
        decode_attention(pool, q, positions[0], cache, layer, shape, out);
        return;
    }
    if (cache.type() == KvType::F16) {
        const std::uint16_t* values_transposed = cache.values_transposed(layer);  // f16 (v_width, n_positions)
        const std::int64_t value_row_bytes = static_cast<std::int64_t>(cache.n_positions()) * sizeof(std::uint16_t);
        const std::int64_t q_token_bytes = static_cast<std::int64_t>(shape.n_heads) * shape.head_dim * sizeof(float);
        const std::int64_t out_token_stride = static_cast<std::int64_t>(shape.n_heads) * shape.v_head_dim;
        const std::int64_t n_tiles = (n_tokens + kQueryTile - 1) / kQueryTile;
        pool.parallel_for(n_tiles * shape.n_heads, 1, [&](std::int64_t begin, std::int64_t end) {
            std::vector<float> weights;  // (tile tokens, tile keys)
            for (std::int64_t task = begin; task < end; ++task) {
                const std::int64_t first_token = task / shape.n_heads * kQueryTile;
                const std::int64_t tile_tokens = std::min(kQueryTile, n_tokens - first_token);
                const int head = static_cast<int>(task % shape.n_heads);
                const int kv_head = head / heads_per_kv_head;
                KeyRange tile_keys{INT32_MAX, 0};
                for (std::int64_t t = first_token; t < first_token + tile_tokens; ++t) {
                    const KeyRange keys_of_t = key_range(shape, positions[static_cast<std::size_t>(t)], batch_end);
                    tile_keys = {std::min(tile_keys.first, keys_of_t.first), std::max(tile_keys.end, keys_of_t.end)};
                }
                const int n_keys = tile_keys.end - tile_keys.first;
                weights.resize(static_cast<std::size_t>(tile_tokens * n_keys));

                // scores (tile_tokens, n_keys) = Q_tile (tile_tokens, head_dim) · K_headᵀ
                const HeadRows keys = key_rows(cache, layer, kv_head, shape.head_dim);
                matmul_rows_columns(GgmlType::F16,
                                    keys.rows + tile_keys.first * keys.row_bytes +
                                        keys.first_element * static_cast<std::int64_t>(sizeof(std::uint16_t)),
                                    keys.row_bytes, 0, n_keys, shape.head_dim,
                                    q + (first_token * shape.n_heads + head) * shape.head_dim, q_token_bytes,
                                    tile_tokens, weights.data(), n_keys);
                for (std::int64_t i = 0; i < tile_tokens; ++i) {
                    const KeyRange keys_of_t =
                        key_range(shape, positions[static_cast<std::size_t>(first_token + i)], batch_end);
                    masked_softmax(weights.data() + i * n_keys, n_keys, keys_of_t.first - tile_keys.first,
                                   keys_of_t.end - tile_keys.first, shape.scale);
                }

                // out_tile (tile_tokens, v_head_dim) = softmax (tile_tokens, n_keys) · V_head (n_keys, v_head_dim)
                const std::uint16_t* v_head = values_transposed +
                                              static_cast<std::int64_t>(kv_head) * shape.v_head_dim * cache.n_positions() +
                                              tile_keys.first;
                matmul_rows_columns(GgmlType::F16, v_head, value_row_bytes, 0, shape.v_head_dim, n_keys,
                                    weights.data(), n_keys * static_cast<std::int64_t>(sizeof(float)), tile_tokens,
                                    out + first_token * out_token_stride + head * shape.v_head_dim, out_token_stride);
            }
        });
        return;
    }

    // Q8_0, a batch: one task per token and head, its keys' scores and
    // weighted values the same sums as a decoded token's (decode_attention).
    // Values are stored by rows (a transposed Q8_0 V could not take one
    // position at a time), so a head accumulates its weighted rows.
    const std::int64_t q_row_bytes = q8_0_query_bytes(cache, shape);
    pool.parallel_for(n_tokens * shape.n_heads, 1, [&](std::int64_t begin, std::int64_t end) {
        std::vector<float> weights, partials;
        std::vector<std::uint8_t> q_quantized(static_cast<std::size_t>(q_row_bytes));
        for (std::int64_t task = begin; task < end; ++task) {
            const std::int64_t token = task / shape.n_heads;
            const int kv_head = static_cast<int>(task % shape.n_heads) / heads_per_kv_head;
            const KeyRange range = key_range(shape, positions[static_cast<std::size_t>(token)], batch_end);
            const int n_keys = range.end - range.first;
            weights.resize(static_cast<std::size_t>(n_keys));
            const float* q_head = q + task * shape.head_dim;
            if (q_row_bytes > 0) quantize_row(GgmlType::Q8_0, q_head, q_quantized.data(), shape.head_dim);
            score_keys(cache, layer, shape, kv_head, range.first, q_head, q_quantized.data(), 1, 0, n_keys,
                       weights.data(), n_keys);
            masked_softmax(weights.data(), n_keys, 0, n_keys, shape.scale);
            weigh_q8_0_values(cache, layer, shape, kv_head, range.first, n_keys, weights.data(), n_keys, 1, partials,
                              out + task * shape.v_head_dim);
        }
    });
}

void gelu_erf(ThreadPool& pool, float* x, std::int64_t n) {
    pool.parallel_for(n, 4096, [&](std::int64_t begin, std::int64_t end) { gelu_erf_in_place(x + begin, end - begin); });
}

void ffn_swiglu(ThreadPool& pool, const WeightMatrix& gate, const WeightMatrix& up, const WeightMatrix& down,
                MatmulInput& x, float* out) {
    ffn_gated(pool, gate, up, down, GatedActivation::Silu, x, out);
}

namespace {

// gated[i] = activation(gated[i]) * lifted[i] for i in [begin, end).
void gate_in_place(GatedActivation activation, float* gated, const float* lifted, std::int64_t begin,
                   std::int64_t end) {
    if (activation == GatedActivation::Silu) {
        with_exponentials(
            begin, end, [&](std::int64_t i) { return -gated[i]; },
            [&](std::int64_t i, float e) { gated[i] = gated[i] / (1.f + e) * lifted[i]; });
        return;
    }
    // sqrt(2 / pi), the constant of GELU's tanh approximation
    constexpr float gelu_coefficient = 0.7978845608028654f;
    for (std::int64_t i = begin; i < end; ++i) {
        const float g = gated[i];
        gated[i] = 0.5f * g * (1.f + std::tanh(gelu_coefficient * (g + 0.044715f * g * g * g))) * lifted[i];
    }
}

}  // namespace

void ffn_gated(ThreadPool& pool, const WeightMatrix& gate, const WeightMatrix& up, const WeightMatrix& down,
               GatedActivation activation, MatmulInput& x, float* out, const LoraSet* loras) {
    const LoraSet none;
    const LoraSet& adapters = loras ? *loras : none;
    if (up.rows != gate.rows)
        throw std::invalid_argument("ffn_gated: gate has " + std::to_string(gate.rows) + " rows, up " +
                                    std::to_string(up.rows));
    const std::int64_t n_rows = x.n_rows();
    const std::int64_t n_ff = gate.rows;
    std::vector<float> gated(static_cast<std::size_t>(n_rows * n_ff));  // (n_rows, n_ff)
    std::vector<float> lifted(static_cast<std::size_t>(n_rows * n_ff)); // (n_rows, n_ff)
    PreparedProduct gate_product(pool, gate, adapters, x, gated.data());
    PreparedProduct up_product(pool, up, adapters, x, lifted.data());
    // Gate, up and the activation of the same features in one task: one
    // pass over the pool, and each feature's values are still in cache.
    parallel_for_rows(pool, n_ff, [&](std::int64_t begin, std::int64_t end) {
        gate_product.compute(begin, end);
        up_product.compute(begin, end);
        for (std::int64_t row = 0; row < n_rows; ++row)
            gate_in_place(activation, gated.data(), lifted.data(), row * n_ff + begin, row * n_ff + end);
    });
    MatmulInput hidden(gated.data(), n_rows, n_ff);
    lora_matmul(pool, down, adapters, hidden, out);
}

ExpertRouting expert_routing(const ExpertFfn& experts) {
    ExpertRouting routing;
    routing.n_expert = static_cast<int>(experts.gate.size());
    routing.n_used = experts.n_used;
    routing.sigmoid = experts.gating == ExpertGating::Sigmoid;
    routing.normalize_weights = experts.normalize_weights;
    routing.weights_scale = experts.weights_scale;
    routing.n_groups = experts.n_groups;
    routing.n_groups_used = experts.n_groups_used;
    routing.selection_bias = experts.selection_bias.empty() ? nullptr : experts.selection_bias.data();
    return routing;
}

ExpertGroups group_by_expert(std::span<const std::int32_t> ids, std::int64_t n_expert) {
    ExpertGroups groups;
    groups.first.assign(static_cast<std::size_t>(n_expert) + 1, 0);
    for (const std::int32_t e : ids) ++groups.first[static_cast<std::size_t>(e) + 1];
    for (std::size_t e = 0; e < static_cast<std::size_t>(n_expert); ++e) groups.first[e + 1] += groups.first[e];
    groups.pairs.resize(ids.size());
    std::vector<std::int64_t> next(groups.first.begin(), groups.first.end() - 1);
    for (std::size_t p = 0; p < ids.size(); ++p)
        groups.pairs[static_cast<std::size_t>(next[static_cast<std::size_t>(ids[p])]++)] = static_cast<std::int32_t>(p);
    return groups;
}

void ffn_experts(ThreadPool& pool, const ExpertFfn& experts, GatedActivation activation, const float* x,
                 std::int64_t n_rows, float* out, std::span<std::int64_t> usage, const LoraSet* loras) {
    const auto n_expert = static_cast<std::int64_t>(experts.gate.size());
    const std::int64_t n_embd = experts.router.cols;
    std::vector<float> logits(static_cast<std::size_t>(n_rows * n_expert));  // (n_rows, n_expert)
    MatmulInput input(x, n_rows, n_embd);
    matmul(pool, experts.router, input, logits.data());

    const ExpertRouting routing = expert_routing(experts);
    const std::int64_t n_used = experts.n_used;
    std::vector<std::int32_t> ids(static_cast<std::size_t>(n_rows * n_used));  // (n_rows, n_used)
    std::vector<float> weights(ids.size());
    std::vector<float> scores(static_cast<std::size_t>(n_expert)), choice(scores.size());
    std::unique_ptr<bool[]> taken(new bool[static_cast<std::size_t>(n_expert)]);
    for (std::int64_t r = 0; r < n_rows; ++r)
        route_row(routing, logits.data() + r * n_expert, scores.data(), choice.data(), taken.get(),
                  ids.data() + r * n_used, weights.data() + r * n_used);
    if (!usage.empty())
        for (const std::int32_t e : ids) ++usage[static_cast<std::size_t>(e)];

    // Each expert's rows go through its matrices at once.
    const ExpertGroups groups = group_by_expert(ids, n_expert);
    std::fill(out, out + n_rows * n_embd, 0.f);
    std::vector<float> rows, expert_out;
    for (std::int64_t e = 0; e < n_expert; ++e) {
        const auto at = static_cast<std::size_t>(e);
        const std::span<const std::int32_t> pairs =
            std::span(groups.pairs).subspan(static_cast<std::size_t>(groups.first[at]),
                                            static_cast<std::size_t>(groups.first[at + 1] - groups.first[at]));
        if (pairs.empty()) continue;
        const auto n_mine = static_cast<std::int64_t>(pairs.size());
        rows.resize(static_cast<std::size_t>(n_mine * n_embd));
        for (std::int64_t i = 0; i < n_mine; ++i)
            std::copy_n(x + pairs[static_cast<std::size_t>(i)] / n_used * n_embd, n_embd, rows.data() + i * n_embd);
        expert_out.resize(rows.size());
        MatmulInput expert_input(rows.data(), n_mine, n_embd);
        ffn_gated(pool, experts.gate[at], experts.up[at], experts.down[at], activation, expert_input, expert_out.data(),
                  loras);
        for (std::int64_t i = 0; i < n_mine; ++i) {
            const std::int32_t pair = pairs[static_cast<std::size_t>(i)];
            const float weight = weights[static_cast<std::size_t>(pair)];
            float* destination = out + pair / n_used * n_embd;
            const float* source = expert_out.data() + i * n_embd;
            for (std::int64_t c = 0; c < n_embd; ++c) destination[c] += weight * source[c];
        }
    }

    if (experts.shared_gate.data == nullptr) return;
    expert_out.resize(static_cast<std::size_t>(n_rows * n_embd));
    ffn_gated(pool, experts.shared_gate, experts.shared_up, experts.shared_down, activation, input, expert_out.data(),
              loras);
    for (std::int64_t r = 0; r < n_rows; ++r) {
        float scale = 1.f;
        if (!experts.shared_scale.empty()) {
            const float* row = x + r * n_embd;
            double logit = 0;
            for (std::int64_t c = 0; c < n_embd; ++c)
                logit += static_cast<double>(row[c]) * experts.shared_scale[static_cast<std::size_t>(c)];
            scale = static_cast<float>(1 / (1 + std::exp(-logit)));
        }
        float* destination = out + r * n_embd;
        const float* source = expert_out.data() + r * n_embd;
        for (std::int64_t c = 0; c < n_embd; ++c) destination[c] += scale * source[c];
    }
}

void scale_in_place(float* x, std::int64_t n, float factor) {
    for (std::int64_t i = 0; i < n; ++i)
        x[i] *= factor;
}

void soft_cap(float* x, std::int64_t n, float cap) {
    for (std::int64_t i = 0; i < n; ++i)
        x[i] = cap * std::tanh(x[i] / cap);
}

}  // namespace folio::engine
