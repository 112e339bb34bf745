#pragma once
// The decoder suites compare the engine's logits with goldens that
// tools/make_decoder_goldens.py and make_lora_goldens.py wrote with Hugging
// Face transformers: at each prompt position the top-10 ids and logits, the
// logit range, and a greedy continuation. These read and compare them.

#include <QJsonArray>
#include <QJsonObject>
#include <QString>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <filesystem>
#include <numeric>
#include <vector>

#include "engine/lora.h"
#include "engine/model.h"
#include "engine/thread_pool.h"
#include "tests/support/golden_json.h"

namespace folio::test {

constexpr int kTopK = 10;

// One prompt position of a golden file.
struct GoldenPosition {
    std::vector<std::int32_t> top_ids;  // kTopK, best first
    std::vector<float> top_logits;      // kTopK
    float next_logit = 0;               // the 11th best
    float range = 0;                    // max - min logit
};

struct Golden {
    std::vector<std::int32_t> prompt_ids;
    std::vector<GoldenPosition> positions;  // one per prompt token
    std::vector<std::int32_t> greedy_continuation;
    QString model_file;
};

inline Golden read_golden(const std::filesystem::path& path) {
    const QJsonObject root = read_json_object(path);
    Golden golden;
    golden.prompt_ids = json_ints(root["prompt_ids"]);
    golden.greedy_continuation = json_ints(root["greedy_continuation"]);
    golden.model_file = root["model_file"].toString();
    for (const QJsonValue& value : root["positions"].toArray()) {
        const QJsonObject object = value.toObject();
        GoldenPosition position;
        position.top_ids = json_ints(object["top_ids"]);
        for (const QJsonValue& logit : object["top_logits"].toArray())
            position.top_logits.push_back(static_cast<float>(logit.toDouble()));
        position.next_logit = static_cast<float>(object["next_logit"].toDouble());
        position.range = static_cast<float>(object["range"].toDouble());
        golden.positions.push_back(position);
    }
    return golden;
}

inline std::vector<std::int32_t> iota_positions(std::size_t n, std::int32_t first = 0) {
    std::vector<std::int32_t> positions(n);
    std::iota(positions.begin(), positions.end(), first);
    return positions;
}

inline std::vector<std::int32_t> top_ids(const float* logits, int n_vocab, int k) {
    std::vector<std::int32_t> ids(static_cast<std::size_t>(n_vocab));
    std::iota(ids.begin(), ids.end(), 0);
    std::partial_sort(ids.begin(), ids.begin() + k, ids.end(),
                      [&](std::int32_t a, std::int32_t b) { return logits[a] > logits[b]; });
    ids.resize(static_cast<std::size_t>(k));
    return ids;
}

inline std::int32_t argmax(const float* logits, int n_vocab) {
    return static_cast<std::int32_t>(std::max_element(logits, logits + n_vocab) - logits);
}

// How our logits for a prompt compare with a golden's.
struct Comparison {
    double max_relative_diff = 0;    // max over positions and golden top-10 ids of |ours - golden| / range
    int worst_position = 0;          // where it is
    int positions_top10_exact = 0;   // our top 10 is the golden's, in order
    int positions_top10_within = 0;  // the same, except ranks whose golden logits lie within `tolerance` of a neighbour
    int positions_top1 = 0;          // our argmax is the golden's
};

// logits: (n_positions, n_vocab). tolerance is relative to each position's range.
inline Comparison compare(const Golden& golden, const std::vector<float>& logits, int n_vocab, double tolerance) {
    Comparison result;
    for (std::size_t p = 0; p < golden.positions.size(); ++p) {
        const GoldenPosition& expected = golden.positions[p];
        const float* row = logits.data() + p * static_cast<std::size_t>(n_vocab);
        for (int k = 0; k < kTopK; ++k) {
            const double diff = std::abs(row[expected.top_ids[static_cast<std::size_t>(k)]] -
                                         expected.top_logits[static_cast<std::size_t>(k)]);
            if (diff / expected.range > result.max_relative_diff) {
                result.max_relative_diff = diff / expected.range;
                result.worst_position = static_cast<int>(p);
            }
        }
        const std::vector<std::int32_t> ours = top_ids(row, n_vocab, kTopK);
        result.positions_top1 += ours[0] == expected.top_ids[0];
        result.positions_top10_exact += ours == expected.top_ids;
        const double margin = tolerance * expected.range;
        bool within = true;
        for (int k = 0; k < kTopK; ++k) {
            const auto ku = static_cast<std::size_t>(k);
            const float above = k > 0 ? expected.top_logits[ku - 1] : INFINITY;
            const float below = k + 1 < kTopK ? expected.top_logits[ku + 1] : expected.next_logit;
            const bool near_tie = above - expected.top_logits[ku] <= margin || expected.top_logits[ku] - below <= margin;
            within = within && (near_tie || ours[ku] == expected.top_ids[ku]);
        }
        result.positions_top10_within += within;
    }
    return result;
}

// Logits (n_prompt, n_vocab) for a prompt prefilled in one batch under loras.
inline std::vector<float> prompt_logits(engine::Model& model, engine::ThreadPool& pool,
                                        const std::vector<std::int32_t>& prompt, const engine::LoraSet& loras = {}) {
    engine::KvCache cache = model.make_kv_cache(static_cast<int>(prompt.size()));
    return model.forward(pool, prompt, iota_positions(prompt.size()), cache, engine::LogitRows::All, loras);
}

// Greedy decoding after a prompt prefilled in one batch under loras: n tokens.
inline std::vector<std::int32_t> greedy_continuation(engine::Model& model, engine::ThreadPool& pool,
                                                     const std::vector<std::int32_t>& prompt, int n,
                                                     const engine::LoraSet& loras = {}) {
    const int n_vocab = model.config().n_vocab;
    engine::KvCache cache = model.make_kv_cache(static_cast<int>(prompt.size()) + n);
    std::vector<float> logits =
        model.forward(pool, prompt, iota_positions(prompt.size()), cache, engine::LogitRows::Last, loras);
    std::vector<std::int32_t> continuation;
    for (int i = 0; i < n; ++i) {
        const std::int32_t next = argmax(logits.data(), n_vocab);
        continuation.push_back(next);
        const std::int32_t position = static_cast<std::int32_t>(prompt.size()) + i;
        logits = model.forward(pool, std::vector<std::int32_t>{next}, std::vector<std::int32_t>{position}, cache,
                               engine::LogitRows::Last, loras);
    }
    return continuation;
}

}  // namespace folio::test
