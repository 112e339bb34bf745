#include <QJsonObject>
#include <QRegularExpression>
#include <QtTest>

#include <atomic>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <system_error>
#include <vector>

#include <unistd.h>

#include "engine/generator.h"
#include "engine/gguf.h"
#include "engine/grammar.h"
#include "engine/model.h"
#include "engine/thread_pool.h"
#include "engine/vocab.h"
#include "tests/support/generation_options.h"
#include "tests/support/golden_json.h"

using namespace folio::engine;
using folio::test::greedy_options;
using folio::test::json_ints;
using folio::test::read_json_object;

namespace {

const std::filesystem::path kTestData = FOLIO_TEST_DATA;

struct TinyGolden {
    std::vector<std::int32_t> prompt_ids;
    std::vector<std::int32_t> greedy_continuation;
};

TinyGolden read_golden() {
    const QJsonObject root = read_json_object(kTestData / "llama_tiny/golden.json");
    return {json_ints(root["prompt_ids"]), json_ints(root["greedy_continuation"])};
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
// the 256 bytes of a byte-level BPE vocabulary with no merges (and, when
// asked, one of them as its BOS).
Vocab byte_vocab(std::optional<std::uint32_t> bos = std::nullopt) {
    std::vector<std::string> tokens;
    for (int byte = 0; byte < 256; ++byte) tokens.push_back(byte_char(byte));
    GgufWriter writer;
    writer.add_string("tokenizer.ggml.model", "gpt2");
    writer.add_string_array("tokenizer.ggml.tokens", tokens);
    writer.add_string_array("tokenizer.ggml.merges", std::vector<std::string>{});
    if (bos) writer.add_u32("tokenizer.ggml.bos_token_id", *bos);
    return Vocab(GgufFile::parse(writer.to_bytes(), "byte vocabulary"));
}

std::string bytes_of(const std::vector<std::int32_t>& ids) {
    std::string out;
    for (std::int32_t id : ids) out += static_cast<char>(id);
    return out;
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
    void keepsThePromptsLastTokens();
    void checksUtf8();
    void runsAfterItsModelFileIsDeleted();
    void followsAGrammar();
    void findsADegenerateLoop();
    void findsARepeatedSentence();
    void stopsAtADegenerateLoop();

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
    const GenerationResult result = generate(*model_, pool_, cache, nullptr, golden_.prompt_ids, greedy_options(n));
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
    GenerationOptions options = greedy_options(static_cast<int>(golden_.greedy_continuation.size()));
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
    GenerationOptions options = greedy_options(static_cast<int>(golden_.greedy_continuation.size()));
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
    GenerationOptions options = greedy_options(16);
    options.cancel = &cancel;
    // Set before the start: not even the prompt is computed.
    Sequence sequence(model_->make_kv_cache(128));
    GenerationResult result = generate(*model_, pool_, sequence, &vocab, golden_.prompt_ids, options);
    QCOMPARE(result.stop_reason, StopReason::Cancelled);
    QVERIFY(result.tokens.empty());
    QVERIFY(sequence.tokens().empty());

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
    const GenerationResult result = generate(*model_, pool_, cache, nullptr, golden_.prompt_ids, greedy_options(32));
    QCOMPARE(result.stop_reason, StopReason::ContextFull);
    QCOMPARE(result.tokens.size(), std::size_t{5});
}

void TestGenerator::rejectsAPromptLongerThanTheContext() {
    KvCache cache = model_->make_kv_cache(8);
    try {
        generate(*model_, pool_, cache, nullptr, golden_.prompt_ids, greedy_options(4));
        QFAIL("no error for a prompt longer than the context");
    } catch (const GenerationError& e) {
        QVERIFY2(QString(e.what()).contains("longer than the 8-token context"), e.what());
    }
}

// PromptOverflow::KeepLast: a 64-token prompt in a 40-token context with 8
// tokens to generate keeps its last 32 tokens, and a leading BOS besides.
void TestGenerator::keepsThePromptsLastTokens() {
    const std::vector<std::int32_t>& prompt = golden_.prompt_ids;
    GenerationOptions options = greedy_options(8);
    options.prompt_overflow = PromptOverflow::KeepLast;
    KvCache cache = model_->make_kv_cache(40);
    const GenerationResult kept = generate(*model_, pool_, cache, nullptr, prompt, options);
    QCOMPARE(kept.timings.prompt_tokens, 32);
    QCOMPARE(kept.timings.dropped_prompt_tokens, 32);
    QCOMPARE(kept.tokens.size(), std::size_t{8});
    const std::vector<std::int32_t> last_32(prompt.end() - 32, prompt.end());
    KvCache cold = model_->make_kv_cache(40);
    QCOMPARE(kept.tokens, generate(*model_, pool_, cold, nullptr, last_32, greedy_options(8)).tokens);

    // A prompt that fits with room to generate is left whole.
    KvCache roomy = model_->make_kv_cache(128);
    QCOMPARE(generate(*model_, pool_, roomy, nullptr, prompt, options).timings.dropped_prompt_tokens, 0);

    const Vocab with_bos = byte_vocab(static_cast<std::uint32_t>(prompt.front()));
    KvCache bos_cache = model_->make_kv_cache(40);
    const GenerationResult with_first = generate(*model_, pool_, bos_cache, &with_bos, prompt, options);
    QCOMPARE(with_first.timings.prompt_tokens, 32);
    std::vector<std::int32_t> bos_and_last_31 = {prompt.front()};
    bos_and_last_31.insert(bos_and_last_31.end(), prompt.end() - 31, prompt.end());
    KvCache bos_cold = model_->make_kv_cache(40);
    QCOMPARE(with_first.tokens, generate(*model_, pool_, bos_cold, &with_bos, bos_and_last_31, greedy_options(8)).tokens);
}

void TestGenerator::checksUtf8() {
    for (const char* valid : {"", "plain ASCII", "caf\xC3\xA9 \xE2\x82\xAC" "5 \xF0\x9F\x98\x80", "\xF4\x8F\xBF\xBF"})
        check_utf8(valid);
    struct Invalid {
        std::string text;
        const char* message;
    };
    const std::vector<Invalid> invalid = {
        {"ab\xFF" "c", "byte 0xFF at offset 2"},          // never in UTF-8
        {"abc\xE2\x82", "byte 0xE2 at offset 3"},        // cut short by the end
        {"x\xE2(\xA1", "byte 0x28 at offset 2"},         // a lead byte without its continuation
        {"\xC0\xAF", "byte 0xC0 at offset 0"},           // overlong '/'
        {"\xED\xA0\x80", "byte 0xA0 at offset 1"},       // a UTF-16 surrogate
        {"\xF4\x90\x80\x80", "byte 0x90 at offset 1"},   // past U+10FFFF
        {"ok \x80", "byte 0x80 at offset 3"},             // a stray continuation byte
    };
    for (const Invalid& bad : invalid) {
        try {
            check_utf8(bad.text, "--prompt");
            QFAIL(qPrintable("no error for " + QByteArray::fromStdString(bad.text).toHex()));
        } catch (const GenerationError& e) {
            const QString message = e.what();
            QVERIFY2(message.startsWith("--prompt is not valid UTF-8: ") && message.contains(bad.message), e.what());
        }
    }
}

// The model's mapping keeps a deleted file's bytes (its inode) alive: a model
// whose file is removed or replaced by a new download while loaded runs on,
// unchanged. (Truncating the file in place is what a mapping cannot survive:
// mapped_file.h.) A file that is gone before it is opened is a one-line error.
void TestGenerator::runsAfterItsModelFileIsDeleted() {
    const std::filesystem::path copy =
        std::filesystem::temp_directory_path() / ("folio_deleted_model_" + std::to_string(::getpid()) + ".gguf");
    std::filesystem::copy_file(kTestData / "llama_tiny/model.gguf", copy, std::filesystem::copy_options::overwrite_existing);
    std::unique_ptr<Model> model = load_model(GgufFile::open(copy));
    QVERIFY(std::filesystem::remove(copy));
    const int n = static_cast<int>(golden_.greedy_continuation.size());
    KvCache cache = model->make_kv_cache(static_cast<int>(golden_.prompt_ids.size()) + n);
    QCOMPARE(generate(*model, pool_, cache, nullptr, golden_.prompt_ids, greedy_options(n)).tokens, golden_.greedy_continuation);

    try {
        GgufFile::open(copy);
        QFAIL("a deleted file opened");
    } catch (const std::system_error& e) {
        const QString message = e.what();
        QVERIFY2(message.contains(QString::fromStdString(copy.string())) && !message.contains('\n'), e.what());
    }
}

// The tiny model's greedy bytes are far from JSON; under a grammar each of
// its picks the grammar does not allow is sampled again from the masked
// logits, and generation ends when the grammar admits nothing more.
void TestGenerator::followsAGrammar() {
    const Vocab vocab = byte_vocab();
    GrammarMatcher matcher(Grammar::parse(R"(root ::= "{\"n\": " [0-9]{1,3} ("," [a-z]{2,8})? "}")"), vocab);
    const QRegularExpression record(R"(^\{"n": [0-9]{1,3}(,[a-z]{2,8})?\}$)");
    for (const float temperature : {0.0f, 1.0f}) {
        matcher.reset();
        GenerationOptions options = greedy_options(64);
        options.sampler.temperature = temperature;
        options.grammar = &matcher;
        std::string streamed;
        options.on_piece = [&](std::string_view piece) { streamed += piece; };
        KvCache cache = model_->make_kv_cache(128);
        const GenerationResult result = generate(*model_, pool_, cache, &vocab, golden_.prompt_ids, options);
        QVERIFY2(record.match(QString::fromStdString(result.text)).hasMatch(), result.text.c_str());
        QCOMPARE(result.stop_reason, StopReason::EndOfGeneration);
        QCOMPARE(streamed, result.text);
        QCOMPARE(vocab.decode(result.tokens), result.text);
        QVERIFY(matcher.must_end());
    }

    // The grammar's text comes from the vocabulary.
    GenerationOptions options = greedy_options(4);
    options.grammar = &matcher;
    KvCache cache = model_->make_kv_cache(128);
    QVERIFY_THROWS_EXCEPTION(GenerationError, generate(*model_, pool_, cache, nullptr, golden_.prompt_ids, options));
}

void TestGenerator::findsADegenerateLoop() {
    using Tokens = std::vector<std::int32_t>;
    // "4,812,000,000,000,…": "000" "," again and again after the figure.
    Tokens tokens = {7, 8, 9, 1, 2};
    for (int i = 0; i < 8; ++i) tokens.insert(tokens.end(), {5, 6});
    QCOMPARE(loop_start(tokens, 8, 16), std::optional<std::size_t>(7));  // keeps one "000,"
    tokens.pop_back();                                                    // seven and a half
    QCOMPARE(loop_start(tokens, 8, 16), std::nullopt);
    // One token over and over; a longer period; the run reaching the start.
    QCOMPARE(loop_start(Tokens(9, 4), 8, 16), std::optional<std::size_t>(1));
    Tokens period3;
    for (int i = 0; i < 8; ++i) period3.insert(period3.end(), {1, 2, 3});
    QCOMPARE(loop_start(period3, 8, 16), std::optional<std::size_t>(3));
    QCOMPARE(loop_start(period3, 8, 2), std::nullopt);  // longer than the periods looked at
    // Ordinary text repeats a little; that is not a loop.
    QCOMPARE(loop_start(Tokens{1, 2, 1, 2, 1, 2, 3}, 8, 16), std::nullopt);
    QCOMPARE(loop_start(Tokens{}, 8, 16), std::nullopt);
}

// The 135M model copying a 45-token sentence of its sources over and over:
// a long run is a loop once its repeats cover eight short runs' tokens
// (three times here), a paragraph of 64 tokens or more once it comes twice.
void TestGenerator::findsARepeatedSentence() {
    using Tokens = std::vector<std::int32_t>;
    Tokens sentence(45);
    for (std::size_t i = 0; i < sentence.size(); ++i) sentence[i] = static_cast<std::int32_t>(100 + i);
    Tokens text = {7, 8, 9};
    for (int i = 0; i < 2; ++i) text.insert(text.end(), sentence.begin(), sentence.end());
    QCOMPARE(loop_start(text, 8, kMaxLoopPeriod), std::nullopt);  // said twice: maybe on purpose
    text.insert(text.end(), sentence.begin(), sentence.end());
    QCOMPARE(loop_start(text, 8, kMaxLoopPeriod), std::optional<std::size_t>(3 + 45));

    Tokens paragraph(64);
    for (std::size_t i = 0; i < paragraph.size(); ++i) paragraph[i] = static_cast<std::int32_t>(200 + i);
    Tokens twice = {7};
    for (int i = 0; i < 2; ++i) twice.insert(twice.end(), paragraph.begin(), paragraph.end());
    QCOMPARE(loop_start(twice, 8, kMaxLoopPeriod), std::optional<std::size_t>(1 + 64));
    QCOMPARE(loop_start(twice, 8, 63), std::nullopt);  // longer than the periods looked at
    // Extraction's guard (four short repeats) takes a 32-token run twice.
    Tokens run32(paragraph.begin(), paragraph.begin() + 32);
    run32.insert(run32.end(), paragraph.begin(), paragraph.begin() + 32);
    QCOMPARE(loop_start(run32, 4, kMaxLoopPeriod), std::optional<std::size_t>(32));
    QCOMPARE(loop_start(run32, 8, kMaxLoopPeriod), std::nullopt);
}

// A grammar that allows only "ab" again and again makes the tiny model loop:
// generation stops once the loop is plain, keeping its first "ab".
void TestGenerator::stopsAtADegenerateLoop() {
    const Vocab vocab = byte_vocab();
    GrammarMatcher matcher(Grammar::parse(R"(root ::= "x" ("ab"){40})"), vocab);
    GenerationOptions options = greedy_options(64);
    options.grammar = &matcher;
    options.loop_repeats = 8;
    std::string streamed;
    options.on_piece = [&](std::string_view piece) { streamed += piece; };
    KvCache cache = model_->make_kv_cache(128);
    const GenerationResult result = generate(*model_, pool_, cache, &vocab, golden_.prompt_ids, options);
    QCOMPARE(result.stop_reason, StopReason::Repetition);
    QCOMPARE(result.text, std::string("xab"));
    QCOMPARE(vocab.decode(result.tokens), result.text);
    QCOMPARE(result.timings.generated_tokens, 17);  // "x" and eight "ab"
    QVERIFY(streamed.starts_with(result.text));
    QCOMPARE(std::string(stop_reason_name(StopReason::Repetition)), std::string("repetition"));
}

QTEST_GUILESS_MAIN(TestGenerator)
#include "tst_generator.moc"
