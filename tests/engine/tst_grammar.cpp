#include <QJsonArray>
#include <QJsonDocument>
#include <QJsonObject>
#include <QTemporaryDir>
#include <QtTest>

#include <chrono>
#include <cmath>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <memory>
#include <optional>
#include <sstream>
#include <string>
#include <vector>

#include "engine/generator.h"
#include "engine/gguf.h"
#include "engine/grammar.h"
#include "engine/model.h"
#include "engine/model_paths.h"
#include "engine/model_zoo.h"
#include "engine/random_model.h"
#include "engine/thread_pool.h"
#include "engine/vocab.h"

using namespace folio::engine;

namespace {

const std::filesystem::path kTestData = FOLIO_TEST_DATA;

std::string read_text(const std::filesystem::path& path) {
    std::ifstream in(path, std::ios::binary);
    std::ostringstream text;
    text << in.rdbuf();
    return text.str();
}

// The test vocabulary's ids: <unk> 0, <s> 1, </s> 2 (EOS), <|im_start|> 3
// (control), the byte tokens <0x00>..<0xFF> from 4, then the extra pieces.
constexpr std::int32_t kEos = 2;
constexpr std::int32_t kControl = 3;
constexpr std::int32_t kFirstByte = 4;
constexpr std::int32_t kFirstPiece = kFirstByte + 256;

// A SentencePiece vocabulary whose tokens are every byte and the given
// pieces, so that a test picks how text splits into tokens.
Vocab test_vocab(const std::vector<std::string>& pieces = {}) {
    std::vector<std::string> tokens = {"<unk>", "<s>", "</s>", "<|im_start|>"};
    std::vector<std::int32_t> types = {2, 3, 3, 3};
    for (int byte = 0; byte < 256; ++byte) {
        char name[8];
        std::snprintf(name, sizeof name, "<0x%02X>", byte);
        tokens.push_back(name);
        types.push_back(static_cast<std::int32_t>(TokenType::Byte));
    }
    for (const std::string& piece : pieces) {
        tokens.push_back(piece);
        types.push_back(static_cast<std::int32_t>(TokenType::Normal));
    }
    const std::vector<float> scores(tokens.size(), 0.0f);
    GgufWriter writer;
    writer.add_string("tokenizer.ggml.model", "llama");
    writer.add_string_array("tokenizer.ggml.tokens", tokens);
    writer.add_array("tokenizer.ggml.scores", std::span<const float>(scores));
    writer.add_array("tokenizer.ggml.token_type", std::span<const std::int32_t>(types));
    writer.add_u32("tokenizer.ggml.eos_token_id", kEos);
    writer.add_bool("tokenizer.ggml.add_space_prefix", false);
    return Vocab(GgufFile::parse(writer.to_bytes(), "test vocabulary"));
}

std::int32_t byte_token(unsigned char byte) { return kFirstByte + byte; }

// How many bytes of text the matcher takes, fed one byte at a time; it
// stops at the first byte it rejects.
std::size_t accepted_bytes(GrammarMatcher& matcher, std::string_view text) {
    for (std::size_t i = 0; i < text.size(); ++i) {
        if (!matcher.allows_text(text.substr(i, 1))) return i;
        matcher.accept_text(text.substr(i, 1));
    }
    return text.size();
}

bool is_sentence(const Grammar& grammar, const Vocab& vocab, std::string_view text) {
    GrammarMatcher matcher(grammar, vocab);
    return accepted_bytes(matcher, text) == text.size() && matcher.can_end();
}

// The ids mask() leaves finite.
std::vector<std::int32_t> masked_in(const GrammarMatcher& matcher, std::size_t n_vocab) {
    std::vector<float> logits(n_vocab, 0.0f);
    matcher.mask(logits);
    std::vector<std::int32_t> ids;
    for (std::size_t id = 0; id < n_vocab; ++id)
        if (std::isfinite(logits[id])) ids.push_back(static_cast<std::int32_t>(id));
    return ids;
}

std::vector<std::int32_t> allowed_one_by_one(const GrammarMatcher& matcher, std::int32_t n_vocab) {
    std::vector<std::int32_t> ids;
    for (std::int32_t id = 0; id < n_vocab; ++id)
        if (matcher.allows(id)) ids.push_back(id);
    return ids;
}

// A vocabulary file: the small test one, or an installed model's.
std::optional<std::filesystem::path> vocabulary_file(const QString& name) {
    if (name == "smollm_test") return kTestData / "tokenizer" / "smollm.gguf";
    const std::filesystem::path path =
        std::filesystem::path(default_models_directory()) /
        (name == "smollm2" ? "SmolLM2-135M-Instruct.Q4_1.gguf" : "gemma-3-270m-q4_k_m.gguf");
    std::error_code error;
    if (!std::filesystem::is_regular_file(path, error)) return std::nullopt;
    return path;
}

void add_vocabulary_rows() {
    QTest::addColumn<QString>("vocabulary");
    for (const char* name : {"smollm_test", "smollm2", "gemma3"}) QTest::newRow(name) << QString(name);
}

// One llama block of small widths over the vocabulary of vocab_file, with
// random weights: a model that prefers garbage, with a real tokenizer.
std::filesystem::path write_random_model_with_vocabulary(const GgufFile& vocab_file, std::int32_t n_vocab,
                                                         const QTemporaryDir& dir) {
    const ZooModel shape{"grammar-test", "grammar test", ZooFamily::Llama, 1, 64, 128, 4, 2, 16, n_vocab, 2048,
                         10000.f, 1e-5f, true};
    ModelLayout layout = zoo_model_layout(shape);
    for (const GgufKeyValue& entry : vocab_file.metadata())
        if (entry.key.starts_with("tokenizer.")) layout.metadata.push_back({std::string(entry.key), entry.value});
    const std::filesystem::path path = dir.filePath("random.gguf").toStdString();
    ThreadPool pool(2);
    write_random_model(layout, {.seed = 11}, path, pool);
    return path;
}

// The record grammar's sentences, checked without the grammar: JSON with
// exactly its four fields, each of its type and bounds.
QString record_problem(const std::string& text) {
    QJsonParseError error;
    const QJsonDocument document = QJsonDocument::fromJson(QByteArray::fromStdString(text), &error);
    if (error.error != QJsonParseError::NoError) return "not JSON: " + error.errorString();
    if (!document.isObject()) return "not an object";
    const QJsonObject record = document.object();
    if (record.keys() != QStringList{"amount", "kind", "name", "tags"}) return "fields " + record.keys().join(',');
    if (!record["name"].isString() || record["name"].toString().toUcs4().size() > 24) return "name";
    const double amount = record["amount"].toDouble(0.5);
    if (!record["amount"].isDouble() || amount != std::floor(amount) || std::abs(amount) >= 1e9) return "amount";
    if (!QStringList{"invoice", "receipt", "contract"}.contains(record["kind"].toString())) return "kind";
    const QJsonArray tags = record["tags"].toArray();
    if (!record["tags"].isArray() || tags.size() > 4) return "tags";
    for (const QJsonValue& tag : tags)
        if (!tag.isString() || tag.toString().toUcs4().size() > 24) return "a tag";
    return {};
}

}  // namespace

class TestGrammar : public QObject {
    Q_OBJECT

private slots:
    void parsesLlamaCppJsonGrammar();
    void rejectsMalformedGrammars_data();
    void rejectsMalformedGrammars();
    void matchesCharacterByCharacter();
    void expandsBoundedRepetition();
    void acceptsCharactersSplitAcrossTokens();
    void acceptsTokensSpanningSeveralSymbols();
    void allowsEndOfGenerationOnlyAtTheEnd();
    void maskAgreesWithAllowsOnRealVocabularies_data();
    void maskAgreesWithAllowsOnRealVocabularies();
    void randomModelWritesValidRecords_data();
    void randomModelWritesValidRecords();
};

void TestGrammar::parsesLlamaCppJsonGrammar() {
    const Grammar grammar = Grammar::parse(read_text(kTestData / "grammar" / "json.gbnf"));
    const Vocab vocab = test_vocab();
    for (const char* valid : {"{}", R"({"a": 1})", "{\"name\": \"Ann\\u00e9\", \"n\": [1, -2.5e3, true, null, {}],\n  \"x\": \"\xE4\xB8\xAD\"}"})
        QVERIFY2(is_sentence(grammar, vocab, valid), valid);

    struct Invalid {
        const char* text;
        std::size_t accepted;  // bytes taken before the first rejected one
    };
    for (const Invalid& invalid : {Invalid{R"({"a" 1})", 5}, Invalid{R"({"a": 01})", 7}, Invalid{R"({"a": "\q"})", 8},
                                   Invalid{"[1]", 0}, Invalid{"{\"a\x01\": 1}", 3}}) {
        GrammarMatcher matcher(grammar, vocab);
        QCOMPARE(accepted_bytes(matcher, invalid.text), invalid.accepted);
    }
    GrammarMatcher unfinished(grammar, vocab);
    QCOMPARE(accepted_bytes(unfinished, R"({"a": [1, 2)"), std::size_t{11});
    QVERIFY(!unfinished.can_end());
}

void TestGrammar::rejectsMalformedGrammars_data() {
    QTest::addColumn<QString>("grammar");
    QTest::addColumn<QString>("message");
    QTest::newRow("unterminated literal") << "root ::= \"abc" << "grammar line 1 col 10: unterminated literal";
    QTest::newRow("undefined rule") << "root ::= item\n" << "grammar line 1 col 10: undefined rule 'item'";
    QTest::newRow("no start rule") << "start ::= \"a\"" << "grammar line 1 col 1: no rule 'root' to start from";
    QTest::newRow("left recursion") << "root ::= \"x\" | root \"a\""
                                    << "grammar line 1 col 1: rule 'root' is left-recursive (root -> root)";
    QTest::newRow("left recursion after an empty rule")
        << "root ::= list\nlist ::= maybe list \"a\" | \"b\"\nmaybe ::= \"c\"?"
        << "grammar line 2 col 1: rule 'list' is left-recursive (list -> list)";
    QTest::newRow("empty loop") << "root ::= (\"a\"?)*"
                                << "grammar line 1 col 16: a repetition of something that can be empty would loop forever";
    QTest::newRow("count over the limit") << "root ::= \"a\"{2,10001}"
                                          << "grammar line 1 col 16: repetition count over the limit of 10000";
    QTest::newRow("n below m") << "root ::= \"a\"{3,2}" << "grammar line 1 col 13: repetition {m,n} with n < m";
    QTest::newRow("reversed range") << "root ::= [z-a]"
                                    << "grammar line 1 col 10: character range with its end before its start";
    QTest::newRow("unknown escape") << "root ::= \"\\q\"" << "grammar line 1 col 11: unknown escape '\\q'";
    QTest::newRow("short hex escape") << "root ::= \"\\x4\""
                                      << "grammar line 1 col 11: expected 2 hex digits after '\\x'";
    QTest::newRow("stray parenthesis") << "root ::= \"a\" )" << "grammar line 1 col 14: unexpected ')'";
    QTest::newRow("unclosed group") << "root ::= (\"a\"\n" << "grammar line 1 col 10: unclosed '('";
    QTest::newRow("no ::=") << "root = \"a\"" << "grammar line 1 col 6: expected '::=' after rule name 'root'";
    QTest::newRow("nothing to repeat") << "root ::= *" << "grammar line 1 col 10: a repetition needs an item before it";
    QTest::newRow("defined twice") << "root ::= \"a\"\n# again\nroot ::= \"b\""
                                   << "grammar line 3 col 1: rule 'root' is defined twice";
    QTest::newRow("empty class") << "root ::= []" << "grammar line 1 col 10: empty character class";
    QTest::newRow("bad rule name") << "root ::= \"a\"\n_x ::= \"b\"" << "grammar line 2 col 1: expected a rule name";
}

void TestGrammar::rejectsMalformedGrammars() {
    QFETCH(QString, grammar);
    QFETCH(QString, message);
    try {
        Grammar::parse(grammar.toStdString());
        QFAIL("no error");
    } catch (const GrammarError& e) {
        QVERIFY2(QString(e.what()).startsWith(message), e.what());
        QVERIFY(!QString(e.what()).contains('\n'));
    }
}

void TestGrammar::matchesCharacterByCharacter() {
    const Vocab vocab = test_vocab();
    const Grammar grammar = Grammar::parse(
        "root ::= word (\" \" word)* \"!\"?   # words, then maybe a bang\n"
        "word ::= [a-zA-Z_] [^ !\\n\\u00e9]* | \"\\u00e9t\\u00e9\" | \".\" .\n");
    QVERIFY(is_sentence(grammar, vocab, "hello"));
    QVERIFY(is_sentence(grammar, vocab, "hello w0r|d!"));
    QVERIFY(is_sentence(grammar, vocab, "\xC3\xA9t\xC3\xA9 ._"));  // "été ._"
    QVERIFY(is_sentence(grammar, vocab, ".\xF0\x9F\x98\x80"));       // '.' then any character: 😀
    QVERIFY(!is_sentence(grammar, vocab, "hello "));                  // a word must follow the space
    QVERIFY(!is_sentence(grammar, vocab, ""));
    // Rules the parser makes for groups and repetitions do not take written names.
    const Grammar named_like_a_group = Grammar::parse("root ::= (\"a\" | \"b\")+ root-1\nroot-1 ::= \"c\"");
    QVERIFY(is_sentence(named_like_a_group, vocab, "abc"));
    QVERIFY(!is_sentence(named_like_a_group, vocab, "ab"));

    GrammarMatcher matcher(grammar, vocab);
    // é is excluded after the first letter: its lead byte C3 may still
    // start another letter, its last byte may not.
    QCOMPARE(accepted_bytes(matcher, "ab\xC3\xA9"), std::size_t{3});
    matcher.reset();
    QCOMPARE(accepted_bytes(matcher, "c d!"), std::size_t{4});
    QVERIFY(matcher.can_end());
    QVERIFY(matcher.must_end());  // nothing follows the '!'
    QVERIFY(!matcher.allows_text(" "));
    QVERIFY_THROWS_EXCEPTION(GrammarError, matcher.accept_text(" "));
    QVERIFY(matcher.must_end());  // unchanged by the rejected text
    matcher.reset();
    QVERIFY(!matcher.can_end());
    QCOMPARE(accepted_bytes(matcher, "hello"), std::size_t{5});
    QVERIFY(matcher.can_end() && !matcher.must_end());
}

void TestGrammar::expandsBoundedRepetition() {
    const Vocab vocab = test_vocab();
    struct Case {
        const char* grammar;
        int shortest, longest;  // -1: unbounded
    };
    for (const Case& c : {Case{"root ::= \"ab\"{2,4}", 2, 4}, Case{"root ::= \"ab\"{3}", 3, 3},
                          Case{"root ::= \"ab\"{2,}", 2, -1}, Case{"root ::= (\"a\" \"b\")?", 0, 1},
                          Case{"root ::= \"ab\"*", 0, -1}, Case{"root ::= \"ab\"+", 1, -1},
                          Case{"root ::= \"ab\"{0,10000}", 0, 10000}, Case{"root ::= x{ 1 , 2 }\nx ::= \"ab\"", 1, 2}}) {
        const Grammar grammar = Grammar::parse(c.grammar);
        for (int n = 0; n <= 10002; n = n < 12 ? n + 1 : n + 9990) {
            std::string text;
            for (int i = 0; i < n; ++i) text += "ab";
            const bool in_range = n >= c.shortest && (c.longest < 0 || n <= c.longest);
            QVERIFY2(is_sentence(grammar, vocab, text) == in_range, qPrintable(QString("%1 × %2").arg(c.grammar).arg(n)));
        }
    }
    GrammarMatcher matcher(Grammar::parse("root ::= [0-9]{2,3}"), vocab);
    QCOMPARE(accepted_bytes(matcher, "123"), std::size_t{3});
    QVERIFY(matcher.must_end());
}

// Byte tokens spell a character over several tokens; each is allowed while
// some completion of the character is.
void TestGrammar::acceptsCharactersSplitAcrossTokens() {
    const Vocab vocab = test_vocab({"\xE4\xB8", "\xAD\xE6\x96\x87"});  // 中 = E4 B8 AD, 文 = E6 96 87
    const std::int32_t first_two = kFirstPiece, rest_and_next = kFirstPiece + 1;
    GrammarMatcher matcher(Grammar::parse("root ::= \"\xE4\xB8\xAD\"+ | \"\xE6\x96\x87\""), vocab);
    QVERIFY(matcher.allows(byte_token(0xE4)));
    QVERIFY(matcher.allows(byte_token(0xE6)));
    QVERIFY(!matcher.allows(byte_token(0xE5)));  // no allowed character starts with E5
    QVERIFY(!matcher.allows(byte_token(0xB8)));  // a continuation byte cannot start one
    QVERIFY(matcher.allows(first_two));
    QVERIFY(!matcher.allows(rest_and_next));
    matcher.accept(byte_token(0xE4));
    QVERIFY(!matcher.can_end());
    QCOMPARE(masked_in(matcher, static_cast<std::size_t>(vocab.n_tokens())), std::vector<std::int32_t>{byte_token(0xB8)});
    matcher.accept(byte_token(0xB8));
    QVERIFY(!matcher.allows(byte_token(0xAE)));  // 丮, not 中
    QVERIFY(!matcher.allows(rest_and_next));     // 中 then 文: not a sentence
    matcher.accept(byte_token(0xAD));
    QVERIFY(matcher.can_end() && !matcher.must_end());
    matcher.accept(first_two);
    QVERIFY(!matcher.can_end());  // a character is half done
    matcher.accept(byte_token(0xAD));
    QVERIFY(matcher.can_end());

    // Overlong forms and surrogates are not characters, even for '.'.
    GrammarMatcher any(Grammar::parse("root ::= .*"), vocab);
    QVERIFY(!any.allows_text("\xC0\xAF"));
    QVERIFY(!any.allows_text("\xE0\x80"));
    QVERIFY(!any.allows_text("\xED\xA0"));
    QVERIFY(!any.allows_text("\xF4\x90"));
    QVERIFY(any.allows_text("\xF4\x8F\xBF"));
    QVERIFY(any.allows_text("\xED\x9F\xBF"));
}

// A token such as "},{" crosses from one rule into the next: the matcher
// advances through each of its characters in turn.
void TestGrammar::acceptsTokensSpanningSeveralSymbols() {
    const std::vector<std::string> pieces = {"[{\"", "\":", "\":\"", "\"},{\"", "\"}]", "\"}", ",", "ab", "b\"", "1"};
    const Vocab vocab = test_vocab(pieces);
    auto id = [&](std::string_view piece) {
        return kFirstPiece + static_cast<std::int32_t>(std::find(pieces.begin(), pieces.end(), piece) - pieces.begin());
    };
    GrammarMatcher matcher(Grammar::parse("root ::= \"[\" pair (\",\" pair)* \"]\"\n"
                                          "pair ::= \"{\\\"\" [a-z]+ \"\\\":\\\"\" [a-z]* \"\\\"}\"\n"),
                           vocab);
    for (const char* piece : {"[{\"", "ab", "\":\"", "ab", "\"},{\"", "ab", "\":\"", "\"}]"}) {
        QVERIFY2(matcher.allows(id(piece)), piece);
        QVERIFY(!matcher.allows(id("1")));
        matcher.accept(id(piece));
    }
    QVERIFY(matcher.must_end());

    matcher.reset();
    for (const char* piece : {"[{\"", "ab"}) matcher.accept(id(piece));
    QVERIFY(matcher.allows(id("\":")) && matcher.allows(id("\":\"")));
    QVERIFY(matcher.allows(id("b\"")));     // the key goes on, then ends
    QVERIFY(!matcher.allows(id("\"}")));    // the key's '"' needs its ':'
    matcher.accept(id("\":\""));
    matcher.accept(id("ab"));
    // Inside the value: its letters, or a closing quote and what may follow it.
    std::vector<std::int32_t> expected = {byte_token('"')};
    for (char c = 'a'; c <= 'z'; ++c) expected.push_back(byte_token(static_cast<unsigned char>(c)));
    for (const char* piece : {"\"},{\"", "\"}]", "\"}", "ab", "b\""}) expected.push_back(id(piece));
    const std::vector<std::int32_t> next = masked_in(matcher, static_cast<std::size_t>(vocab.n_tokens()));
    QCOMPARE(next, expected);
    QCOMPARE(next, allowed_one_by_one(matcher, vocab.n_tokens()));
}

void TestGrammar::allowsEndOfGenerationOnlyAtTheEnd() {
    const Vocab vocab = test_vocab({"<|im_start|>x"});
    GrammarMatcher matcher(Grammar::parse("root ::= [a-z_<|>]+"), vocab);
    QVERIFY(!matcher.allows(kEos));
    QVERIFY(!matcher.allows(kControl));  // never, though its text would match
    QVERIFY(matcher.allows(kFirstPiece));  // a normal token of the same text
    QVERIFY_THROWS_EXCEPTION(GrammarError, matcher.accept(kEos));
    matcher.accept(byte_token('a'));
    QVERIFY(matcher.allows(kEos));
    QVERIFY(!matcher.allows(kControl));
    const std::vector<std::int32_t> next = masked_in(matcher, static_cast<std::size_t>(vocab.n_tokens()) + 10);
    QVERIFY(std::find(next.begin(), next.end(), kEos) != next.end());
    QVERIFY(std::find(next.begin(), next.end(), kControl) == next.end());
    QVERIFY(next.back() < vocab.n_tokens());  // ids past the vocabulary are masked

    GrammarMatcher half(Grammar::parse("root ::= \"\\u0800\""), test_vocab());  // E0 A0 80
    half.accept(byte_token(0xE0));
    QCOMPARE(masked_in(half, static_cast<std::size_t>(kFirstPiece)), std::vector<std::int32_t>{byte_token(0xA0)});
    GrammarMatcher needs_eos(Grammar::parse("root ::= \"a\""), test_vocab());
    needs_eos.accept(byte_token('a'));
    QCOMPARE(masked_in(needs_eos, static_cast<std::size_t>(kFirstPiece)), std::vector<std::int32_t>{kEos});
}

void TestGrammar::maskAgreesWithAllowsOnRealVocabularies_data() { add_vocabulary_rows(); }

// mask() walks the trie, allows() one token: they agree on every token at a
// structural position and inside a string. Prints how long mask() takes.
void TestGrammar::maskAgreesWithAllowsOnRealVocabularies() {
    QFETCH(QString, vocabulary);
    const std::optional<std::filesystem::path> file = vocabulary_file(vocabulary);
    if (!file) QSKIP("the model is not in the models folder (installer/fetch-models.sh)");
    const Vocab vocab(GgufFile::open(*file));
    const Grammar grammar = Grammar::parse(read_text(kTestData / "grammar" / "json.gbnf"));
    using Clock = std::chrono::steady_clock;
    const auto construct_start = Clock::now();
    GrammarMatcher matcher(grammar, vocab);
    const double construct_ms = std::chrono::duration<double, std::milli>(Clock::now() - construct_start).count();
    qInfo("%s: %d tokens, matcher built in %.1f ms", qPrintable(vocabulary), vocab.n_tokens(), construct_ms);
    for (const char* prefix : {"{\"name\": \"An", "{\"name\": \"Anna\",", "{\"a\": [1, "}) {
        matcher.reset();
        matcher.accept_text(prefix);
        std::vector<float> logits(static_cast<std::size_t>(vocab.n_tokens()));
        // The first call fills the transition caches; the fastest of the
        // rest is the least disturbed by other work on the machine.
        double first_ms = 0, best_ms = 0;
        for (int run = 0; run < 20; ++run) {
            const auto start = Clock::now();
            matcher.mask(logits);
            const double ms = std::chrono::duration<double, std::milli>(Clock::now() - start).count();
            if (run == 0) first_ms = best_ms = ms;
            best_ms = std::min(best_ms, ms);
        }
        const std::vector<std::int32_t> masked = masked_in(matcher, logits.size());
        qInfo("  after %-20s %6zu tokens allowed, mask() %.2f ms (first %.2f ms)", prefix, masked.size(), best_ms, first_ms);
        QCOMPARE(masked, allowed_one_by_one(matcher, vocab.n_tokens()));
        QVERIFY(!masked.empty());
    }
}

void TestGrammar::randomModelWritesValidRecords_data() { add_vocabulary_rows(); }

// A model with random weights prefers garbage; under the record grammar
// every output must still be a valid record, whatever the seed and
// temperature: the mask does all the work.
void TestGrammar::randomModelWritesValidRecords() {
    QFETCH(QString, vocabulary);
    const std::optional<std::filesystem::path> file = vocabulary_file(vocabulary);
    if (!file) QSKIP("the model is not in the models folder (installer/fetch-models.sh)");
    const GgufFile vocab_file = GgufFile::open(*file);
    const Vocab vocab(vocab_file);
    QTemporaryDir dir;
    const GgufFile model_file = GgufFile::open(write_random_model_with_vocabulary(vocab_file, vocab.n_tokens(), dir));
    const std::unique_ptr<Model> model = load_model(model_file);
    GrammarMatcher matcher(Grammar::parse(read_text(kTestData / "grammar" / "record.gbnf")), vocab);
    const std::vector<std::int32_t> prompt = vocab.encode("Extract the record as JSON:\n", true, false);
    ThreadPool pool(2);
    int tokens = 0;
    for (const float temperature : {0.0f, 0.8f, 1.5f})
        for (const std::uint64_t seed : {1u, 2u, 3u}) {
            matcher.reset();
            GenerationOptions options;
            options.max_tokens = 1000;  // over the longest record in bytes: each token takes one at least
            options.sampler = {.temperature = temperature, .top_k = temperature > 1 ? 0 : 40, .seed = seed};
            options.grammar = &matcher;
            KvCache cache = model->make_kv_cache(1100);
            const GenerationResult result = generate(*model, pool, cache, &vocab, prompt, options);
            const QString context = QString("t=%1 seed=%2: %3").arg(temperature).arg(seed).arg(QString::fromStdString(result.text));
            QVERIFY2(result.stop_reason == StopReason::EndOfGeneration, qPrintable(context));
            QVERIFY2(record_problem(result.text).isEmpty(), qPrintable(record_problem(result.text) + " in " + context));
            tokens += static_cast<int>(result.tokens.size());
        }
    qInfo("%s: %d tokens in 9 records", qPrintable(vocabulary), tokens);
}

QTEST_GUILESS_MAIN(TestGrammar)
#include "tst_grammar.moc"
