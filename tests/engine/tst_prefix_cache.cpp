// The prefix cache: a Sequence reuses the keys and values of the prefix a
// new prompt shares with what it holds, computes only the rest, and gives
// exactly what a cold run gives.

#include <QtTest>
#include <algorithm>
#include <atomic>
#include <cmath>
#include <random>

#include <cstdint>
#include <filesystem>
#include <memory>
#include <vector>

#include "engine/generator.h"
#include "engine/gguf.h"
#include "engine/model.h"
#include "engine/thread_pool.h"
#include "tests/support/generation_options.h"
#include "tests/support/golden_json.h"

using namespace folio::engine;
using folio::test::greedy_options;
using folio::test::json_ints;
using folio::test::read_json_object;

namespace {

const std::filesystem::path kTestData = FOLIO_TEST_DATA;

std::vector<std::int32_t> golden_prompt() {
    return json_ints(read_json_object(kTestData / "llama_tiny/golden.json")["prompt_ids"]);
}

// The first n tokens of prompt, then tail.
std::vector<std::int32_t> prefix_then(const std::vector<std::int32_t>& prompt, std::size_t n,
                                      const std::vector<std::int32_t>& tail) {
    std::vector<std::int32_t> out(prompt.begin(), prompt.begin() + static_cast<std::ptrdiff_t>(n));
    out.insert(out.end(), tail.begin(), tail.end());
    return out;
}

constexpr int kContext = 160;

}  // namespace

class TestPrefixCache : public QObject {
    Q_OBJECT

private slots:
    void initTestCase();
    void prefillReusesTheSharedPrefix();
    void repeatedPromptRecomputesOnlyItsLastToken();
    void generateReusesAndMatchesAColdRun();
    void followUpReusesTheAnswer();
    void failedPrefillKeepsOnlyThePrefix();
    void longPromptPrefillsInChunks();
    void prefixCacheKeepsTheRecentDocuments();

private:
    std::unique_ptr<Model> model_;
    std::vector<std::int32_t> prompt_;  // 64 tokens
    ThreadPool pool_{2};
};

void TestPrefixCache::initTestCase() {
    model_ = load_model(GgufFile::open(kTestData / "llama_tiny/model.gguf"));
    prompt_ = golden_prompt();
    QCOMPARE(prompt_.size(), std::size_t{64});
}

// A document (the first 40 tokens) asked two different questions: the second
// prefill keeps 40 positions, overwrites the old question's, and its logits
// are bit for bit a cold prefill's.
void TestPrefixCache::prefillReusesTheSharedPrefix() {
    const std::vector<std::int32_t> second = prefix_then(prompt_, 40, {7, 200, 31, 99, 5, 64, 12});
    Sequence warm(model_->make_kv_cache(kContext));
    warm.prefill(*model_, pool_, prompt_);
    QCOMPARE(warm.reusable_prefix(second), 40);
    const std::vector<float> reused = warm.prefill(*model_, pool_, second);
    QCOMPARE(std::vector<std::int32_t>(warm.tokens().begin(), warm.tokens().end()), second);

    Sequence cold(model_->make_kv_cache(kContext));
    QCOMPARE(cold.reusable_prefix(second), 0);
    const std::vector<float> computed = cold.prefill(*model_, pool_, second);
    QCOMPARE(reused, computed);

    // A prompt that diverges at its first token reuses nothing.
    QCOMPARE(warm.reusable_prefix(prefix_then(prompt_, 0, {prompt_[0] == 1 ? 2 : 1, 3})), 0);
}

void TestPrefixCache::repeatedPromptRecomputesOnlyItsLastToken() {
    Sequence sequence(model_->make_kv_cache(kContext));
    const std::vector<float> first = sequence.prefill(*model_, pool_, prompt_);
    QCOMPARE(sequence.reusable_prefix(prompt_), 63);
    QCOMPARE(sequence.prefill(*model_, pool_, prompt_), first);
    // A prompt that is a prefix of what the sequence holds rewinds to it.
    const std::vector<std::int32_t> shorter(prompt_.begin(), prompt_.begin() + 20);
    QCOMPARE(sequence.reusable_prefix(shorter), 19);
    const std::vector<float> rewound = sequence.prefill(*model_, pool_, shorter);
    QCOMPARE(sequence.tokens().size(), std::size_t{20});
    Sequence cold(model_->make_kv_cache(kContext));
    QCOMPARE(rewound, cold.prefill(*model_, pool_, shorter));
}

// generate() over a Sequence: the second question computes only its own
// tokens and generates exactly what a cold run generates.
void TestPrefixCache::generateReusesAndMatchesAColdRun() {
    const std::vector<std::int32_t> second = prefix_then(prompt_, 50, {42, 17, 230, 8});
    Sequence sequence(model_->make_kv_cache(kContext));
    const GenerationResult first = generate(*model_, pool_, sequence, nullptr, prompt_, greedy_options(12));
    QCOMPARE(first.timings.reused_prompt_tokens, 0);
    QCOMPARE(first.timings.prompt_tokens, 64);
    // The prompt and every generated token but the last (sampled, never run).
    QCOMPARE(sequence.tokens().size(), prompt_.size() + first.tokens.size() - 1);

    const GenerationResult again = generate(*model_, pool_, sequence, nullptr, second, greedy_options(12));
    QCOMPARE(again.timings.reused_prompt_tokens, 50);
    QCOMPARE(again.timings.prompt_tokens, 54);

    KvCache cold_cache = model_->make_kv_cache(kContext);
    const GenerationResult cold = generate(*model_, pool_, cold_cache, nullptr, second, greedy_options(12));
    QCOMPARE(cold.timings.reused_prompt_tokens, 0);
    QCOMPARE(again.tokens, cold.tokens);
}

// A chat follow-up: the next prompt is the last prompt, the answer and a new
// question; everything up to the answer's last token is reused.
void TestPrefixCache::followUpReusesTheAnswer() {
    Sequence sequence(model_->make_kv_cache(kContext));
    const GenerationResult answer = generate(*model_, pool_, sequence, nullptr, prompt_, greedy_options(10));
    QCOMPARE(answer.tokens.size(), std::size_t{10});
    std::vector<std::int32_t> follow_up = prompt_;
    follow_up.insert(follow_up.end(), answer.tokens.begin(), answer.tokens.end());
    follow_up.insert(follow_up.end(), {10, 11, 12});
    const GenerationResult next = generate(*model_, pool_, sequence, nullptr, follow_up, greedy_options(8));
    QCOMPARE(next.timings.reused_prompt_tokens, 64 + 10 - 1);

    KvCache cold_cache = model_->make_kv_cache(kContext);
    QCOMPARE(next.tokens, generate(*model_, pool_, cold_cache, nullptr, follow_up, greedy_options(8)).tokens);
}

// A prompt whose new part the model rejects (a token outside the vocabulary)
// leaves the sequence holding the shared prefix, which stays reusable.
void TestPrefixCache::failedPrefillKeepsOnlyThePrefix() {
    Sequence sequence(model_->make_kv_cache(kContext));
    sequence.prefill(*model_, pool_, prompt_);
    QVERIFY_THROWS_EXCEPTION(ModelError, sequence.prefill(*model_, pool_, prefix_then(prompt_, 30, {5, 100000})));
    QCOMPARE(sequence.tokens().size(), std::size_t{30});
    const std::vector<std::int32_t> retry = prefix_then(prompt_, 30, {5, 6});
    QCOMPARE(sequence.reusable_prefix(retry), 30);
    const std::vector<float> logits = sequence.prefill(*model_, pool_, retry);
    Sequence cold(model_->make_kv_cache(kContext));
    QCOMPARE(logits, cold.prefill(*model_, pool_, retry));

    QVERIFY_THROWS_EXCEPTION(GenerationError, sequence.prefill(*model_, pool_, {}));
    QVERIFY_THROWS_EXCEPTION(GenerationError,
                             sequence.prefill(*model_, pool_, std::vector<std::int32_t>(kContext + 1, 5)));
}

// Two sequences fit the budget: questions alternating between two documents
// each reuse their document; a third document takes the least recently used
// sequence, whose document must then be computed again.
void TestPrefixCache::prefixCacheKeepsTheRecentDocuments() {
    const std::size_t sequence_bytes = model_->make_kv_cache(kContext).bytes();
    PrefixCache cache(*model_, kContext, KvType::F16, 2 * sequence_bytes + sequence_bytes / 2);
    auto document = [&](std::int32_t offset) {
        std::vector<std::int32_t> ids = prompt_;
        for (std::int32_t& id : ids) id = (id + offset) % 256;
        return ids;
    };
    auto ask = [&](const std::vector<std::int32_t>& doc, std::int32_t question) {
        const std::vector<std::int32_t> prompt = prefix_then(doc, doc.size(), {question, question + 1});
        return generate(*model_, pool_, cache.acquire(prompt), nullptr, prompt, greedy_options(2)).timings.reused_prompt_tokens;
    };
    const std::vector<std::int32_t> a = document(0), b = document(1), c = document(2);
    QCOMPARE(ask(a, 10), 0);
    QCOMPARE(ask(b, 10), 0);
    QCOMPARE(cache.size(), std::size_t{2});
    QCOMPARE(ask(a, 20), 64);
    QCOMPARE(ask(b, 20), 64);
    QCOMPARE(ask(c, 10), 0);  // over budget: takes a's sequence, the least recently used
    QCOMPARE(cache.size(), std::size_t{2});
    QCOMPARE(ask(b, 30), 64);
    QCOMPARE(ask(a, 30), 0);
}

QTEST_GUILESS_MAIN(TestPrefixCache)
#include "tst_prefix_cache.moc"

// A prompt longer than kPrefillChunkTokens runs in chunks, each reading the
// keys and values of those before it from the cache: the logits are bit for
// bit those of one forward() over the whole prompt. A stop request between
// chunks keeps what was computed, and a later prefill reuses it.
void TestPrefixCache::longPromptPrefillsInChunks() {
    const int n = 2 * kPrefillChunkTokens + 37;
    std::mt19937 rng(7);
    std::uniform_int_distribution<std::int32_t> token(0, model_->config().n_vocab - 1);
    std::vector<std::int32_t> prompt(static_cast<std::size_t>(n));
    for (std::int32_t& id : prompt) id = token(rng);
    std::vector<std::int32_t> positions(prompt.size());
    for (std::size_t i = 0; i < positions.size(); ++i) positions[i] = static_cast<std::int32_t>(i);

    KvCache whole_cache = model_->make_kv_cache(n);
    const std::vector<float> whole = model_->forward(pool_, prompt, positions, whole_cache, LogitRows::Last);
    Sequence chunked(model_->make_kv_cache(n));
    QCOMPARE(chunked.prefill(*model_, pool_, prompt), whole);
    QCOMPARE(chunked.tokens().size(), prompt.size());

    // A stop request before a chunk: the sequence keeps what it held (here
    // a chunk and a token), and the next prefill goes on from there.
    std::atomic<bool> cancel = true;
    Sequence stopped(model_->make_kv_cache(n));
    const std::vector<std::int32_t> first_part(prompt.begin(), prompt.begin() + kPrefillChunkTokens + 1);
    stopped.prefill(*model_, pool_, first_part);
    QVERIFY(stopped.prefill(*model_, pool_, prompt, {}, &cancel).empty());
    QCOMPARE(stopped.tokens().size(), first_part.size());
    cancel = false;
    QCOMPARE(stopped.reusable_prefix(prompt), static_cast<int>(first_part.size()));
    // Resumed one token past a chunk boundary, the later chunks group the
    // positions differently from `whole`'s: the same sums, added up in
    // another order.
    const std::vector<float> resumed = stopped.prefill(*model_, pool_, prompt, {}, &cancel);
    QCOMPARE(resumed.size(), whole.size());
    float largest_difference = 0;
    for (std::size_t i = 0; i < whole.size(); ++i)
        largest_difference = std::max(largest_difference, std::abs(resumed[i] - whole[i]));
    QVERIFY(largest_difference <= 1e-4f);
}
