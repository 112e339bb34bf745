#include <QFile>
#include <QJsonArray>
#include <QJsonDocument>
#include <QJsonObject>
#include <QtTest>

#include <atomic>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "engine/generator.h"
#include "engine/gguf.h"
#include "engine/model.h"
#include "engine/thread_pool.h"
#include "engine/vocab.h"

using namespace folio::engine;

namespace {

const std::filesystem::path kTestData = FOLIO_TEST_DATA;

struct TinyGolden {
    std::vector<std::int32_t> prompt_ids;
    std::vector<std::int32_t> greedy_continuation;
};

std::vector<std::int32_t> ints(const QJsonValue& value) {
    std::vector<std::int32_t> out;
    for (const QJsonValue& element : value.toArray()) out.push_back(element.toInt());
    return out;
}

TinyGolden read_golden() {
    QFile file(QString::fromStdString((kTestData / "llama_tiny/golden.json").string()));
    if (!file.open(QIODevice::ReadOnly)) qFatal("cannot read the tiny model's golden.json");
    const QJsonObject root = QJsonDocument::fromJson(file.readAll()).object();
    return {ints(root["prompt_ids"]), ints(root["greedy_continuation"])};
}

// GPT-2's bytes_to_unicode: the vocabulary character of each byte, as UTF-8.
std::string byte_char(int byte) {
    const bool printable = (byte >= 33 && byte <= 126) || (byte >= 161 && byte <= 172) || (byte >= 174);
    int code_point = byte;
    if (!printable) {
        int n = 0;
        for (int b = 0; b < byte; ++b)
            n += !((b >= 33 && b <= 126) || (b >= 161 && b <= 172) || (b >= 174));
        code_point = 256 + n;
    }
    std::string out;
    if (code_point < 0x80) {
        out += static_cast<char>(code_point);
    } else {
        out += static_cast<char>(0xC0 | (code_point >> 6));
        out += static_cast<char>(0x80 | (code_point & 0x3F));
    }
    return out;
}

// The tiny model has no tokenizer metadata; its 256 tokens are read here as
// the 256 bytes of a byte-level BPE vocabulary with no merges.
Vocab byte_vocab() {
    std::vector<std::string> tokens;
    for (int byte = 0; byte < 256; ++byte) tokens.push_back(byte_char(byte));
    GgufWriter writer;
    writer.add_string("tokenizer.ggml.model", "gpt2");
    writer.add_string_array("tokenizer.ggml.tokens", tokens);
    writer.add_string_array("tokenizer.ggml.merges", std::vector<std::string>{});
    return Vocab(GgufFile::parse(writer.to_bytes(), "byte vocabulary"));
}

std::string bytes_of(const std::vector<std::int32_t>& ids) {
    std::string out;
    for (std::int32_t id : ids) out += static_cast<char>(id);
    return out;
}

GenerationOptions greedy(int max_tokens) {
    GenerationOptions options;
    options.max_tokens = max_tokens;
    options.sampler.temperature = 0.0f;
    return options;
}

}  // namespace

class TestGenerator : public QObject {
    Q_OBJECT

private slots:
    void initTestCase();
    void greedyReproducesTheGolden();
    void stopsAtAStopString();
    void cancels();
    void holdsSplitUtf8Characters();
    void stopsWhenTheContextIsFull();
    void rejectsAPromptLongerThanTheContext();

private:
    std::unique_ptr<Model> model_;
    TinyGolden golden_;
    ThreadPool pool_{2};
};

void TestGenerator::initTestCase() {
    model_ = load_model(GgufFile::open(kTestData / "llama_tiny/model.gguf"));
    golden_ = read_golden();
    QVERIFY(!golden_.greedy_continuation.empty());
}

void TestGenerator::greedyReproducesTheGolden() {
    const int n = static_cast<int>(golden_.greedy_continuation.size());
    KvCache cache = model_->make_kv_cache(static_cast<int>(golden_.prompt_ids.size()) + n);
    const GenerationResult result = generate(*model_, pool_, cache, nullptr, golden_.prompt_ids, greedy(n));
    QCOMPARE(result.tokens, golden_.greedy_continuation);
    QCOMPARE(result.stop_reason, StopReason::MaxTokens);
    QCOMPARE(result.timings.prompt_tokens, static_cast<int>(golden_.prompt_ids.size()));
    QCOMPARE(result.timings.generated_tokens, n);
    QVERIFY(result.timings.prefill_tokens_per_second > 0);
    QVERIFY(result.timings.decode_tokens_per_second > 0);
    QVERIFY(result.timings.time_to_first_token_seconds >= result.timings.prefill_seconds);
}

// The greedy text is the golden's bytes; a stop string taken from its middle
// ends the text just before its first occurrence, and the streamed pieces add
// up to the text.
void TestGenerator::stopsAtAStopString() {
    const Vocab vocab = byte_vocab();
    const std::string full = bytes_of(golden_.greedy_continuation);
    const std::string stop = full.substr(10, 3);
    const std::size_t expected_end = full.find(stop);
    GenerationOptions options = greedy(static_cast<int>(golden_.greedy_continuation.size()));
    options.stop_strings = {stop};
    std::string streamed;
    options.on_piece = [&](std::string_view piece) { streamed += piece; };
    KvCache cache = model_->make_kv_cache(128);
    const GenerationResult result = generate(*model_, pool_, cache, &vocab, golden_.prompt_ids, options);
    QCOMPARE(result.stop_reason, StopReason::StopString);
    QCOMPARE(result.text, full.substr(0, expected_end));
    QCOMPARE(streamed, result.text);
    QCOMPARE(result.tokens.size(), expected_end + stop.size());
}

void TestGenerator::holdsSplitUtf8Characters() {
    QCOMPARE(incomplete_utf8_tail("abc"), std::size_t{0});
    QCOMPARE(incomplete_utf8_tail("a\xC3"), std::size_t{1});        // é's first byte
    QCOMPARE(incomplete_utf8_tail("a\xC3\xA9"), std::size_t{0});    // é
    QCOMPARE(incomplete_utf8_tail("\xE2\x82"), std::size_t{2});     // € without its last byte
    QCOMPARE(incomplete_utf8_tail("\xF0\x9F\x98"), std::size_t{3});  // 😀 without its last byte
    QCOMPARE(incomplete_utf8_tail("\xF0\x9F\x98\x80"), std::size_t{0});

    // The tiny model's greedy bytes are not UTF-8; whatever they are, no
    // streamed text but the last ends inside a character it could still finish.
    const Vocab vocab = byte_vocab();
    std::vector<std::string> prefixes;
    std::string streamed;
    GenerationOptions options = greedy(static_cast<int>(golden_.greedy_continuation.size()));
    options.on_piece = [&](std::string_view piece) {
        streamed += piece;
        prefixes.push_back(streamed);
    };
    KvCache cache = model_->make_kv_cache(128);
    const GenerationResult result = generate(*model_, pool_, cache, &vocab, golden_.prompt_ids, options);
    QCOMPARE(streamed, result.text);
    QCOMPARE(result.text, bytes_of(golden_.greedy_continuation));
    QVERIFY(prefixes.size() < golden_.greedy_continuation.size());  // some pieces were held and joined
    for (std::size_t i = 0; i + 1 < prefixes.size(); ++i) {
        if (incomplete_utf8_tail(prefixes[i]) == 0) continue;
        // Cut after a lead byte only where the next byte does not continue it.
        const auto next = static_cast<unsigned char>(result.text[prefixes[i].size()]);
        QVERIFY((next & 0xC0) != 0x80);
    }
}

void TestGenerator::cancels() {
    const Vocab vocab = byte_vocab();
    std::atomic<bool> cancel = true;
    GenerationOptions options = greedy(16);
    options.cancel = &cancel;
    KvCache cache = model_->make_kv_cache(128);
    GenerationResult result = generate(*model_, pool_, cache, &vocab, golden_.prompt_ids, options);
    QCOMPARE(result.stop_reason, StopReason::Cancelled);
    QVERIFY(result.tokens.empty());

    // Cancelled from the streaming callback: the token in progress finishes.
    cancel = false;
    options.on_piece = [&](std::string_view) { cancel = true; };
    KvCache second = model_->make_kv_cache(128);
    result = generate(*model_, pool_, second, &vocab, golden_.prompt_ids, options);
    QCOMPARE(result.stop_reason, StopReason::Cancelled);
    QVERIFY(!result.tokens.empty());
    QVERIFY(result.tokens.size() < 16);
    QCOMPARE(result.tokens, std::vector<std::int32_t>(golden_.greedy_continuation.begin(),
                                                      golden_.greedy_continuation.begin() +
                                                          static_cast<std::ptrdiff_t>(result.tokens.size())));
}

// A cache 4 positions longer than the prompt holds 4 generated tokens; the
// 5th is sampled from the last logits and generation ends there.
void TestGenerator::stopsWhenTheContextIsFull() {
    KvCache cache = model_->make_kv_cache(static_cast<int>(golden_.prompt_ids.size()) + 4);
    const GenerationResult result = generate(*model_, pool_, cache, nullptr, golden_.prompt_ids, greedy(32));
    QCOMPARE(result.stop_reason, StopReason::ContextFull);
    QCOMPARE(result.tokens.size(), std::size_t{5});
}

void TestGenerator::rejectsAPromptLongerThanTheContext() {
    KvCache cache = model_->make_kv_cache(8);
    try {
        generate(*model_, pool_, cache, nullptr, golden_.prompt_ids, greedy(4));
        QFAIL("no error for a prompt longer than the context");
    } catch (const GenerationError& e) {
        QVERIFY2(QString(e.what()).contains("longer than the 8-token context"), e.what());
    }
}

QTEST_GUILESS_MAIN(TestGenerator)
#include "tst_generator.moc"
