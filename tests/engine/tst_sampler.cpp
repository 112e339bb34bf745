#include <QtTest>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <vector>

#include "engine/sampler.h"

using namespace folio::engine;

namespace {

std::vector<TokenCandidate> candidates_of(const std::vector<float>& logits) {
    std::vector<TokenCandidate> candidates;
    for (std::size_t i = 0; i < logits.size(); ++i)
        candidates.push_back({static_cast<std::int32_t>(i), logits[i]});
    return candidates;
}

std::vector<std::int32_t> ids_of(const std::vector<TokenCandidate>& candidates) {
    std::vector<std::int32_t> ids;
    for (const TokenCandidate& candidate : candidates) ids.push_back(candidate.id);
    return ids;
}

SamplerOptions plain(float temperature, std::uint64_t seed) {
    return {.temperature = temperature, .top_k = 0, .top_p = 1.0f, .min_p = 0.0f, .seed = seed};
}

}  // namespace

class TestSampler : public QObject {
    Q_OBJECT

private slots:
    void greedyIsArgmax();
    void topKKeepsTheKBest();
    void topPKeepsTheSmallestPrefixReachingP();
    void minPKeepsTokensAboveTheScaledMax();
    void penaltiesShiftSeenTokens();
    void sameSeedSameDraws();
    void differentSeedsDiffer();
    void frequenciesMatchSoftmax();
};

void TestSampler::greedyIsArgmax() {
    Sampler sampler(plain(0.0f, 1));
    QCOMPARE(sampler.sample(std::vector<float>{0.1f, 3.0f, -2.0f, 2.9f}, {}), 1);
    QCOMPARE(sampler.sample(std::vector<float>{-5.0f, -4.0f, -6.0f}, {}), 1);
}

void TestSampler::topKKeepsTheKBest() {
    std::vector<TokenCandidate> candidates = candidates_of({1.0f, 5.0f, 3.0f, 4.0f, 2.0f});
    Sampler::top_k(candidates, 3);
    QCOMPARE(ids_of(candidates), (std::vector<std::int32_t>{1, 3, 2}));
    candidates = candidates_of({1.0f, 5.0f, 3.0f});
    Sampler::top_k(candidates, 0);
    QCOMPARE(ids_of(candidates), (std::vector<std::int32_t>{1, 2, 0}));
}

// Logits ln(0.5), ln(0.3), ln(0.15), ln(0.05): probabilities 0.5, 0.3, 0.15, 0.05.
void TestSampler::topPKeepsTheSmallestPrefixReachingP() {
    const std::vector<float> logits = {std::log(0.5f), std::log(0.3f), std::log(0.15f), std::log(0.05f)};
    std::vector<TokenCandidate> candidates = candidates_of(logits);
    Sampler::top_p(candidates, 0.7f);  // 0.5 < 0.7 <= 0.8
    QCOMPARE(ids_of(candidates), (std::vector<std::int32_t>{0, 1}));
    candidates = candidates_of(logits);
    Sampler::top_p(candidates, 0.9f);  // 0.8 < 0.9 <= 0.95
    QCOMPARE(ids_of(candidates), (std::vector<std::int32_t>{0, 1, 2}));
    candidates = candidates_of(logits);
    Sampler::top_p(candidates, 0.4f);  // the first alone reaches it
    QCOMPARE(ids_of(candidates), (std::vector<std::int32_t>{0}));
}

void TestSampler::minPKeepsTokensAboveTheScaledMax() {
    const std::vector<float> logits = {std::log(0.5f), std::log(0.3f), std::log(0.15f), std::log(0.05f)};
    std::vector<TokenCandidate> candidates = candidates_of(logits);
    Sampler::min_p(candidates, 0.2f);  // keeps p >= 0.1
    QCOMPARE(ids_of(candidates), (std::vector<std::int32_t>{0, 1, 2}));
    candidates = candidates_of(logits);
    Sampler::min_p(candidates, 0.5f);  // keeps p >= 0.25
    QCOMPARE(ids_of(candidates), (std::vector<std::int32_t>{0, 1}));
}

void TestSampler::penaltiesShiftSeenTokens() {
    std::vector<TokenCandidate> candidates = candidates_of({2.0f, -2.0f, 2.0f, 1.0f});
    const std::vector<std::int32_t> history = {3, 0, 1};
    // window 2: tokens 0 and 1 seen, 3 is outside it.
    Sampler::apply_penalties(candidates, history, 2.0f, 2, 0.5f);
    QCOMPARE(candidates[0].logit, 2.0f / 2.0f - 0.5f);
    QCOMPARE(candidates[1].logit, -2.0f * 2.0f - 0.5f);
    QCOMPARE(candidates[2].logit, 2.0f);
    QCOMPARE(candidates[3].logit, 1.0f);
    // Greedy after the penalty moves off the repeated token.
    Sampler sampler({.temperature = 0.0f, .repetition_penalty = 3.0f, .repetition_window = 8});
    QCOMPARE(sampler.sample(std::vector<float>{3.0f, 2.0f}, std::vector<std::int32_t>{0}), 1);
}

void TestSampler::sameSeedSameDraws() {
    const std::vector<float> logits = {0.0f, 0.5f, 1.0f, 0.2f, -0.3f, 0.9f};
    Sampler a(plain(1.0f, 1234));
    Sampler b(plain(1.0f, 1234));
    for (int i = 0; i < 200; ++i) QCOMPARE(a.sample(logits, {}), b.sample(logits, {}));
}

void TestSampler::differentSeedsDiffer() {
    const std::vector<float> logits = {0.0f, 0.5f, 1.0f, 0.2f, -0.3f, 0.9f};
    Sampler a(plain(1.0f, 1));
    Sampler b(plain(1.0f, 2));
    std::vector<std::int32_t> draws_a, draws_b;
    for (int i = 0; i < 100; ++i) {
        draws_a.push_back(a.sample(logits, {}));
        draws_b.push_back(b.sample(logits, {}));
    }
    QVERIFY(draws_a != draws_b);
}

void TestSampler::frequenciesMatchSoftmax() {
    const std::vector<float> logits = {1.0f, 2.0f, 0.5f, -1.0f, 1.5f};
    const float temperature = 0.7f;
    std::vector<double> expected(logits.size());
    double sum = 0;
    for (std::size_t i = 0; i < logits.size(); ++i) sum += expected[i] = std::exp(logits[i] / temperature);
    for (double& p : expected) p /= sum;

    constexpr int kDraws = 20000;
    Sampler sampler(plain(temperature, 99));
    std::vector<int> counts(logits.size(), 0);
    for (int i = 0; i < kDraws; ++i) ++counts[static_cast<std::size_t>(sampler.sample(logits, {}))];
    for (std::size_t i = 0; i < logits.size(); ++i) {
        const double frequency = static_cast<double>(counts[i]) / kDraws;
        QVERIFY2(std::abs(frequency - expected[i]) < 0.01,
                 qPrintable(QString("token %1: %2 vs %3").arg(i).arg(frequency).arg(expected[i])));
    }
}

QTEST_GUILESS_MAIN(TestSampler)
#include "tst_sampler.moc"
