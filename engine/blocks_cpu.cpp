#include "engine/blocks_cpu.h"

#include <algorithm>
#include <cmath>
#include <stdexcept>
#include <string>
#include <utility>

#include "engine/quant.h"

namespace folio::engine {

namespace {

// Weight rows per thread-pool chunk: enough work to outweigh handing it out.
constexpr std::int64_t kMatmulMinRows = 16;

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

void matmul(ThreadPool& pool, const WeightMatrix& w, MatmulInput& input, float* out) {
    if (input.n_cols() != w.cols)
        throw std::invalid_argument("matmul: input rows have " + std::to_string(input.n_cols()) +
                                    " columns, the weight matrix " + std::to_string(w.cols));
    std::int64_t act_row_bytes = 0;
    const void* act = input.rows_as(pool, vec_dot_type(w.type), act_row_bytes);
    if (input.n_rows() == 1) {
        pool.parallel_for(w.rows, kMatmulMinRows, [&](std::int64_t begin, std::int64_t end) {
            matmul_rows(w.type, w.data, w.row_bytes, begin, end, w.cols, act, out);
        });
        return;
    }
    pool.parallel_for(w.rows, kMatmulMinRows, [&](std::int64_t begin, std::int64_t end) {
        matmul_rows_columns(w.type, w.data, w.row_bytes, begin, end, w.cols, act, act_row_bytes, input.n_rows(),
                            out, w.rows);
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
    const auto n_tokens = static_cast<std::int64_t>(positions.size());
    pool.parallel_for(n_tokens, 4, [&](std::int64_t begin, std::int64_t end) {
        std::vector<float> cos_theta(static_cast<std::size_t>(n_pairs));
        std::vector<float> sin_theta(static_cast<std::size_t>(n_pairs));
        for (std::int64_t t = begin; t < end; ++t) {
            for (int i = 0; i < n_pairs; ++i) {
                const double theta = positions[static_cast<std::size_t>(t)] *
                                     std::pow(static_cast<double>(params.freq_base), -2.0 * i / params.n_rot);
                cos_theta[static_cast<std::size_t>(i)] = static_cast<float>(std::cos(theta));
                sin_theta[static_cast<std::size_t>(i)] = static_cast<float>(std::sin(theta));
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

void attention(ThreadPool& pool, const float* q, std::span<const std::int32_t> positions, const KvCache& cache,
               int layer, const AttentionShape& shape, float* out) {
    const std::uint16_t* keys = cache.keys(layer);                // f16 (n_positions, k_width)
    const std::uint16_t* values = cache.values_transposed(layer);  // f16 (v_width, n_positions)
    const std::int64_t key_row_bytes = static_cast<std::int64_t>(cache.k_width()) * sizeof(std::uint16_t);
    const std::int64_t value_row_bytes = static_cast<std::int64_t>(cache.n_positions()) * sizeof(std::uint16_t);
    const int heads_per_kv_head = shape.n_heads / shape.n_kv_heads;
    const int batch_end = *std::max_element(positions.begin(), positions.end()) + 1;
    const auto n_tasks = static_cast<std::int64_t>(positions.size()) * shape.n_heads;  // one per (token, head)
    pool.parallel_for(n_tasks, 1, [&](std::int64_t begin, std::int64_t end) {
        std::vector<float> weights(static_cast<std::size_t>(cache.n_positions()));
        for (std::int64_t task = begin; task < end; ++task) {
            const std::int64_t token = task / shape.n_heads;
            const int head = static_cast<int>(task % shape.n_heads);
            const int kv_head = head / heads_per_kv_head;
            const int position = positions[static_cast<std::size_t>(token)];
            // Keys [first_key, first_key + n_keys); weights[j] belongs to key first_key + j.
            const int keys_end = shape.causal ? position + 1 : batch_end;
            const int first_key = shape.causal && shape.window > 0 ? std::max(0, position - shape.window + 1) : 0;
            const int n_keys = keys_end - first_key;

            // scores (n_keys) = K_head (n_keys, head_dim) · q_head (head_dim)
            const float* q_head = q + task * shape.head_dim;
            matmul_rows(GgmlType::F16, keys + first_key * (key_row_bytes / 2) + kv_head * shape.head_dim,
                        key_row_bytes, 0, n_keys, shape.head_dim, q_head, weights.data());

            float max_score = -INFINITY;
            for (int j = 0; j < n_keys; ++j) {
                weights[static_cast<std::size_t>(j)] *= shape.scale;
                max_score = std::max(max_score, weights[static_cast<std::size_t>(j)]);
            }
            double sum = 0.0;
            for (int j = 0; j < n_keys; ++j) {
                weights[static_cast<std::size_t>(j)] = std::exp(weights[static_cast<std::size_t>(j)] - max_score);
                sum += weights[static_cast<std::size_t>(j)];
            }
            const auto inverse_sum = static_cast<float>(1.0 / sum);
            for (int j = 0; j < n_keys; ++j)
                weights[static_cast<std::size_t>(j)] *= inverse_sum;

            // out_head (v_head_dim) = V_headᵀ (v_head_dim, n_keys) · softmax (n_keys)
            const std::uint16_t* v_head = values + static_cast<std::int64_t>(kv_head) * shape.v_head_dim *
                                                       cache.n_positions() + first_key;
            matmul_rows(GgmlType::F16, v_head, value_row_bytes, 0, shape.v_head_dim, n_keys, weights.data(),
                        out + task * shape.v_head_dim);
        }
    });
}

void ffn_swiglu(ThreadPool& pool, const WeightMatrix& gate, const WeightMatrix& up, const WeightMatrix& down,
                MatmulInput& x, float* out) {
    const std::int64_t n_rows = x.n_rows();
    const std::int64_t n_ff = gate.rows;
    std::vector<float> gated(static_cast<std::size_t>(n_rows * n_ff));  // (n_rows, n_ff)
    std::vector<float> lifted(static_cast<std::size_t>(n_rows * n_ff)); // (n_rows, n_ff)
    matmul(pool, gate, x, gated.data());
    matmul(pool, up, x, lifted.data());
    pool.parallel_for(n_rows * n_ff, 4096, [&](std::int64_t begin, std::int64_t end) {
        for (std::int64_t i = begin; i < end; ++i) {
            const float g = gated[static_cast<std::size_t>(i)];
            gated[static_cast<std::size_t>(i)] = g / (1.f + std::exp(-g)) * lifted[static_cast<std::size_t>(i)];
        }
    });
    MatmulInput hidden(gated.data(), n_rows, n_ff);
    matmul(pool, down, hidden, out);
}

}  // namespace folio::engine
