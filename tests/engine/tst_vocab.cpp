#include <QFile>
#include <QJsonArray>
#include <QJsonDocument>
#include <QJsonObject>
#include <QtTest>

#include <algorithm>
#include <cstdint>
#include <filesystem>
#include <optional>
#include <random>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "engine/gguf.h"
#include "engine/model_paths.h"
#include "engine/pretokenize.h"
#include "engine/unicode_data.h"
#include "engine/vocab.h"

using namespace folio::engine;

namespace {

const std::filesystem::path kTokenizerData = std::filesystem::path(FOLIO_TEST_DATA) / "tokenizer";

struct Golden {
    std::string text;
    std::vector<std::int32_t> ids;        // special tokens matched in the text
    std::vector<std::int32_t> ids_plain;  // special-token text encoded as text
    std::string decoded;                  // what the ids decode to
    std::string decoded_plain;            // what ids_plain decode to
};

std::vector<std::int32_t> to_ids(const QJsonArray& array) {
    std::vector<std::int32_t> ids;
    for (const QJsonValue& value : array)
        ids.push_back(value.toInt());
    return ids;
}

std::vector<Golden> read_goldens(const std::filesystem::path& path) {
    QFile file(QString::fromStdString(path.string()));
    if (!file.open(QIODevice::ReadOnly))
        qFatal("cannot open %s", path.string().c_str());
    std::vector<Golden> goldens;
    while (!file.atEnd()) {
        const QByteArray line = file.readLine().trimmed();
        if (line.isEmpty())
            continue;
        const QJsonObject object = QJsonDocument::fromJson(line).object();
        const std::string text = object["text"].toString().toStdString();
        // "decoded" is there only where the vocabulary lacks a byte of the text
        // or the tokenizer's normalization changed it, "decoded_plain" only
        // where it differs (SentencePiece prepends a space after a special token).
        const std::string decoded = object.contains("decoded") ? object["decoded"].toString().toStdString() : text;
        const std::string decoded_plain =
            object.contains("decoded_plain") ? object["decoded_plain"].toString().toStdString() : decoded;
        goldens.push_back(
            {text, to_ids(object["ids"].toArray()), to_ids(object["ids_plain"].toArray()), decoded, decoded_plain});
    }
    return goldens;
}

QString describe(const std::vector<std::int32_t>& ids) {
    QStringList parts;
    for (const std::int32_t id : ids)
        parts << QString::number(id);
    return "[" + parts.join(", ") + "]";
}

// Every golden string: the reference's ids both ways, and decode giving what
// the reference's decode gives: the text byte for byte, less any byte the
// vocabulary lacks and what normalization changed. Returns the number of
// failures, the first ten reported.
int check_goldens(const Vocab& vocab, const std::vector<Golden>& goldens) {
    int failures = 0;
    for (const Golden& golden : goldens) {
        const std::vector<std::int32_t> ids = vocab.encode(golden.text, false, true);
        const std::vector<std::int32_t> ids_plain = vocab.encode(golden.text, false, false);
        const bool ok = ids == golden.ids && ids_plain == golden.ids_plain && vocab.decode(ids) == golden.decoded &&
                        vocab.decode(ids_plain) == golden.decoded_plain;
        if (!ok && ++failures <= 10) {
            qWarning().noquote() << "text" << QString::fromStdString(golden.text).toHtmlEscaped()
                                 << "\n  expected" << describe(golden.ids) << "\n  got     " << describe(ids)
                                 << "\n  plain expected" << describe(golden.ids_plain) << "\n  plain got     "
                                 << describe(ids_plain);
        }
    }
    return failures;
}

std::vector<std::string> pieces(PreTokenizer kind, std::string_view text) {
    std::vector<std::string_view> views;
    pre_tokenize(kind, text, views);
    return {views.begin(), views.end()};
}

// The SmolLM2-135M-Instruct GGUF as installer/fetch-models.sh installs it
// (installer/models.tsv), in the models folder.
std::optional<std::filesystem::path> find_smollm2() {
    const std::filesystem::path path =
        std::filesystem::path(default_models_directory()) / "SmolLM2-135M-Instruct.Q4_1.gguf";
    std::error_code error;
    if (!std::filesystem::is_regular_file(path, error))
        return std::nullopt;
    return path;
}

// The Gemma 3 270M GGUF as installer/fetch-models.sh installs it.
std::optional<std::filesystem::path> find_gemma3() {
    const std::filesystem::path path = std::filesystem::path(default_models_directory()) / "gemma-3-270m-q4_k_m.gguf";
    std::error_code error;
    if (!std::filesystem::is_regular_file(path, error))
        return std::nullopt;
    return path;
}

// The GGUF llama.cpp's converter writes for a BERT vocab.txt (kept as text:
// as a GGUF it is over 500 KB): a word's first piece as "▁piece", a
// continuation "##ing" as "ing", bracketed tokens as they are; the five
// special tokens control tokens.
GgufFile wordpiece_gguf_from(const std::filesystem::path& vocab_txt) {
    QFile file(QString::fromStdString(vocab_txt.string()));
    if (!file.open(QIODevice::ReadOnly))
        qFatal("cannot open %s", vocab_txt.string().c_str());
    std::vector<std::string> tokens;
    std::vector<std::int32_t> types;
    while (!file.atEnd()) {
        std::string token = file.readLine().toStdString();
        if (!token.empty() && token.back() == '\n')
            token.pop_back();
        const bool is_special =
            token == "[PAD]" || token == "[UNK]" || token == "[CLS]" || token == "[SEP]" || token == "[MASK]";
        types.push_back(static_cast<std::int32_t>(is_special ? TokenType::Control : TokenType::Normal));
        if (token.size() > 2 && token.front() == '[' && token.back() == ']')
            tokens.push_back(token);
        else if (token.starts_with("##"))
            tokens.push_back(token.substr(2));
        else
            tokens.push_back("\u2581" + token);
    }
    const auto id_of = [&](std::string_view token) {
        return static_cast<std::uint32_t>(std::find(tokens.begin(), tokens.end(), token) - tokens.begin());
    };
    GgufWriter writer;
    writer.add_string("tokenizer.ggml.model", "bert");
    writer.add_string_array("tokenizer.ggml.tokens", tokens);
    writer.add_array("tokenizer.ggml.token_type", std::span<const std::int32_t>(types));
    writer.add_u32("tokenizer.ggml.padding_token_id", id_of("[PAD]"));
    writer.add_u32("tokenizer.ggml.unknown_token_id", id_of("[UNK]"));
    writer.add_u32("tokenizer.ggml.cls_token_id", id_of("[CLS]"));
    writer.add_u32("tokenizer.ggml.seperator_token_id", id_of("[SEP]"));
    return GgufFile::parse(writer.to_bytes());
}

}  // namespace

class VocabTest : public QObject {
    Q_OBJECT

private slots:
    void matches_reference_goldens_data() {
        QTest::addColumn<QString>("family");
        for (const char* family : {"smollm", "gpt2", "llama-bpe", "qwen2", "spm", "deepseek-llm", "deepseek-v3"})
            QTest::newRow(family) << QString(family);
    }

    void matches_reference_goldens() {
        QFETCH(QString, family);
        const GgufFile file = GgufFile::open(kTokenizerData / (family.toStdString() + ".gguf"));
        const Vocab vocab(file);
        const std::vector<Golden> goldens = read_goldens(kTokenizerData / (family.toStdString() + ".jsonl"));
        QVERIFY(goldens.size() >= 500);
        QCOMPARE(check_goldens(vocab, goldens), 0);
    }

    void matches_reference_on_smollm2_vocabulary() {
        const std::optional<std::filesystem::path> model = find_smollm2();
        if (!model)
            QSKIP("SmolLM2-135M-Instruct.Q4_1.gguf is not in the models folder (installer/fetch-models.sh)");
        const Vocab vocab(GgufFile::open(*model));
        QCOMPARE(vocab.n_tokens(), 49152);
        QCOMPARE(vocab.pre_tokenizer(), PreTokenizer::SmolLM);
        QCOMPARE(check_goldens(vocab, read_goldens(kTokenizerData / "smollm2-135m.jsonl")), 0);
    }

    void matches_reference_on_gemma3_vocabulary() {
        const std::optional<std::filesystem::path> model = find_gemma3();
        if (!model)
            QSKIP("gemma-3-270m-q4_k_m.gguf is not in the models folder (installer/fetch-models.sh)");
        const Vocab vocab(GgufFile::open(*model));
        QCOMPARE(vocab.n_tokens(), 262144);
        QCOMPARE(vocab.model(), TokenizerModel::SentencePiece);
        QVERIFY(!vocab.add_space_prefix());
        QCOMPARE(check_goldens(vocab, read_goldens(kTokenizerData / "gemma3-270m.jsonl")), 0);
    }

    // spm.gguf: <unk> 0, <s> 1, </s> 2, then the byte tokens <0x00>.. from 3,
    // add_bos_token and add_space_prefix set.
    void encodes_sentencepiece_normalization_and_byte_fallback() {
        const Vocab vocab(GgufFile::open(kTokenizerData / "spm.gguf"));
        QCOMPARE(vocab.model(), TokenizerModel::SentencePiece);
        QVERIFY(vocab.add_space_prefix());
        QCOMPARE(vocab.token_type(3 + 0x41), TokenType::Byte);
        QCOMPARE(vocab.token_to_piece(3 + 0x41), std::string("A"));

        // One space is prepended and every space is '▁': " the" is one token.
        const std::vector<std::int32_t> the = vocab.encode("the", false, false);
        QCOMPARE(the, std::vector<std::int32_t>{*vocab.find_token("\u2581the")});
        QCOMPARE(vocab.decode(the), std::string("the"));
        QCOMPARE(vocab.decode(vocab.encode(" the  the", false, false)), std::string(" the  the"));

        // 中 is not in the vocabulary: its three UTF-8 bytes' tokens.
        const std::vector<std::int32_t> chinese = vocab.encode("中", false, false);
        QCOMPARE(chinese, (std::vector<std::int32_t>{*vocab.find_token("\u2581"), 3 + 0xE4, 3 + 0xB8, 3 + 0xAD}));
        QCOMPARE(vocab.decode(chinese), std::string("中"));

        const std::vector<std::int32_t> with_bos = vocab.encode("the", true, false);
        QCOMPARE(with_bos.front(), vocab.bos_id());
        QCOMPARE(vocab.decode(with_bos, false), std::string("the"));
        QCOMPARE(vocab.decode(with_bos, true), std::string("<s> the"));
    }

    void matches_sentencepiece_special_tokens_when_asked() {
        const Vocab vocab(GgufFile::open(kTokenizerData / "spm.gguf"));
        QCOMPARE(vocab.encode("</s>", false, true), std::vector<std::int32_t>{vocab.eos_id()});
        QCOMPARE(vocab.encode("<unk>", false, true), std::vector<std::int32_t>{vocab.unk_id()});
        QVERIFY(vocab.encode("</s>", false, false).size() > 1);
        // User-defined tokens are matched either way, and text after a
        // special token gets its own prepended space.
        const std::vector<std::int32_t> cited = vocab.encode("[[cite]]the", false, false);
        QCOMPARE(cited, (std::vector<std::int32_t>{*vocab.find_token("[[cite]]"), *vocab.find_token("\u2581the")}));
        QCOMPARE(vocab.decode(cited), std::string("[[cite]] the"));
    }

    // all-MiniLM-L6-v2's uncased BERT vocabulary (tests/data/tokenizer/SOURCES.md).
    void matches_reference_on_wordpiece_vocabulary() {
        const Vocab vocab(wordpiece_gguf_from(kTokenizerData / "minilm-vocab.txt"));
        QCOMPARE(vocab.model(), TokenizerModel::WordPiece);
        QCOMPARE(vocab.n_tokens(), 30522);
        const std::vector<Golden> goldens = read_goldens(kTokenizerData / "minilm.jsonl");
        QVERIFY(goldens.size() >= 500);
        QCOMPARE(check_goldens(vocab, goldens), 0);
    }

    void frames_wordpiece_text_with_cls_and_sep() {
        const Vocab vocab(wordpiece_gguf_from(kTokenizerData / "minilm-vocab.txt"));
        const std::vector<std::int32_t> ids = vocab.encode("Héllo, WORLD!", true, false);
        QCOMPARE(ids.front(), *vocab.find_token("[CLS]"));
        QCOMPARE(ids.back(), *vocab.find_token("[SEP]"));
        QCOMPARE(vocab.decode(ids, false), std::string("hello, world!"));
        QCOMPARE(vocab.decode(ids, true), std::string("[CLS] hello, world! [SEP]"));
        // Longer than 100 characters: one [UNK].
        QCOMPARE(vocab.encode(std::string(101, 'a'), false, false), std::vector<std::int32_t>{vocab.unk_id()});
    }

    // WordPiece does not round-trip (it lowercases, drops accents and
    // spaces), but any bytes must encode to tokens and decode again.
    void encodes_random_bytes_as_wordpiece() {
        const Vocab vocab(wordpiece_gguf_from(kTokenizerData / "minilm-vocab.txt"));
        std::mt19937 random(11);
        std::uniform_int_distribution<int> byte(0, 255);
        std::uniform_int_distribution<int> length(0, 64);
        for (int i = 0; i < 2000; ++i) {
            std::string text(static_cast<std::size_t>(length(random)), '\0');
            for (char& c : text)
                c = static_cast<char>(byte(random));
            const std::vector<std::int32_t> ids = vocab.encode(text, true, true);
            QVERIFY(ids.size() >= 2);
            QVERIFY(std::all_of(ids.begin(), ids.end(), [&](std::int32_t id) { return id >= 0 && id < vocab.n_tokens(); }));
            vocab.decode(ids);
        }
    }

    void splits_as_the_family_regexes() {
        using Pieces = std::vector<std::string>;
        QCOMPARE(pieces(PreTokenizer::Gpt2, "Hello  world's 2024!!\n"),
                 (Pieces{"Hello", " ", " world", "'s", " 2024", "!!", "\n"}));
        QCOMPARE(pieces(PreTokenizer::Gpt2, "IT'S"), (Pieces{"IT", "'", "S"}));  // case-sensitive
        QCOMPARE(pieces(PreTokenizer::SmolLM, "a  12"), (Pieces{"a", "  ", "1", "2"}));
        QCOMPARE(pieces(PreTokenizer::Llama3, "IT'S 1234567 \"x\"\n\n  y"),
                 (Pieces{"IT", "'S", " ", "123", "456", "7", " \"", "x", "\"\n\n", " ", " y"}));
        QCOMPARE(pieces(PreTokenizer::Qwen2, "v12 a  \n b"), (Pieces{"v", "1", "2", " a", "  \n", " b"}));
        // DeepSeek LLM: é is outside the letter class ASCII letters fall into
        // again at the punctuation split; Samaritan-to-CJK (U+0800-U+4E00)
        // takes in the curly quotes; every digit alone.
        QCOMPARE(pieces(PreTokenizer::DeepSeekLlm, "\u00e9cole 12ab  \uff38\uff0c\u201cq\u201d\n  end  "),
                 (Pieces{"\u00e9", "cole", " ", "1", "2", "ab", " ", " \uff38", "\uff0c", "\u201c", "q", "\u201d",
                         "\n", " ", " end", "  "}));
        // DeepSeek-V3: numbers by three, kanji and kana together, ASCII
        // punctuation before letters.
        QCOMPARE(pieces(PreTokenizer::DeepSeekV3, "IT'S 12345 .com \u6771\u4eac\u306e\u30ab\u30bf  x\n\n y"),
                 (Pieces{"IT", "'S", " ", "123", "45", " .", "com", " ", "\u6771\u4eac\u306e\u30ab\u30bf", " ", " x",
                         "\n\n", " y"}));
        QCOMPARE(pieces(PreTokenizer::DeepSeekV3, "a\u0301b $$ \u00a5100"), (Pieces{"a\u0301b", " $$", " \u00a5", "100"}));
        QCOMPARE(pieces(PreTokenizer::Gpt2, ""), Pieces{});
        QCOMPARE(pieces(PreTokenizer::DeepSeekLlm, ""), Pieces{});
        QCOMPARE(pre_tokenizer_from_name("olmo"), PreTokenizer::Gpt2);  // OLMoE's tokenizer
    }

    void adds_bos_when_the_vocabulary_asks() {
        const Vocab llama(GgufFile::open(kTokenizerData / "llama-bpe.gguf"));
        QVERIFY(llama.add_bos());
        const std::vector<std::int32_t> ids = llama.encode("hi", true, false);
        QCOMPARE(ids.front(), llama.bos_id());
        QCOMPARE(std::vector<std::int32_t>(ids.begin() + 1, ids.end()), llama.encode("hi", false, false));

        const Vocab smollm(GgufFile::open(kTokenizerData / "smollm.gguf"));
        QVERIFY(!smollm.add_bos());
        QCOMPARE(smollm.encode("hi", true, false), smollm.encode("hi", false, false));
    }

    void renders_control_tokens_only_when_asked() {
        const Vocab vocab(GgufFile::open(kTokenizerData / "smollm.gguf"));
        const std::vector<std::int32_t> ids = vocab.encode("<|im_start|>hi<|im_end|>", false, true);
        QCOMPARE(ids.front(), *vocab.find_token("<|im_start|>"));
        QCOMPARE(vocab.token_type(ids.front()), TokenType::Control);
        QCOMPARE(vocab.decode(ids, false), std::string("hi"));
        QCOMPARE(vocab.decode(ids, true), std::string("<|im_start|>hi<|im_end|>"));
        QVERIFY_THROWS_EXCEPTION(VocabError, vocab.token_to_piece(vocab.n_tokens()));
    }

    void round_trips_bytes_that_are_not_utf8() {
        const Vocab vocab(GgufFile::open(kTokenizerData / "qwen2.gguf"));
        const std::string text = "ok \xff\xfe caf\xc3 \xed\xa0\x80 \xf4\x90\x80\x80 end\xe2\x82";
        QCOMPARE(vocab.decode(vocab.encode(text, false, true)), text);
    }

    // Not deepseek-llm: its vocabulary has no tokens for the bytes no UTF-8
    // text holds (C0, C1, F5-FF), which encode drops as Hugging Face's does.
    void round_trips_random_bytes_data() {
        QTest::addColumn<QString>("family");
        for (const char* family : {"smollm", "gpt2", "llama-bpe", "qwen2", "spm", "deepseek-v3"})
            QTest::newRow(family) << QString(family);
    }

    void round_trips_random_bytes() {
        QFETCH(QString, family);
        const Vocab vocab(GgufFile::open(kTokenizerData / (family.toStdString() + ".gguf")));
        std::mt19937 random(7);
        std::uniform_int_distribution<int> byte(0, 255);
        std::uniform_int_distribution<int> length(0, 64);
        for (int i = 0; i < 2000; ++i) {
            std::string text(static_cast<std::size_t>(length(random)), '\0');
            for (char& c : text)
                c = static_cast<char>(byte(random));
            QCOMPARE(vocab.decode(vocab.encode(text, false, true)), text);
        }
    }

    // The piece cache is per thread: encoding at once on several threads
    // must give what one thread gives.
    void encodes_the_same_on_several_threads() {
        const Vocab vocab(GgufFile::open(kTokenizerData / "smollm.gguf"));
        const std::vector<Golden> goldens = read_goldens(kTokenizerData / "smollm.jsonl");
        std::vector<int> failures(4, 0);
        std::vector<std::thread> threads;
        for (std::size_t t = 0; t < failures.size(); ++t) {
            threads.emplace_back([&, t] {
                for (int pass = 0; pass < 3; ++pass) {
                    for (const Golden& golden : goldens)
                        failures[t] += vocab.encode(golden.text, false, true) != golden.ids;
                }
            });
        }
        for (std::thread& thread : threads)
            thread.join();
        QCOMPARE(failures, std::vector<int>(failures.size(), 0));
    }

    void rejects_other_tokenizer_models() {
        GgufWriter writer;
        writer.add_string("tokenizer.ggml.model", "t5");  // Unigram
        const std::vector<std::string> tokens{"<unk>", "a"};
        writer.add_string_array("tokenizer.ggml.tokens", tokens);
        QVERIFY_THROWS_EXCEPTION(VocabError, Vocab(GgufFile::parse(writer.to_bytes())));

        GgufWriter unknown_pre;
        unknown_pre.add_string("tokenizer.ggml.model", "gpt2");
        unknown_pre.add_string("tokenizer.ggml.pre", "chatglm-bpe");
        unknown_pre.add_string_array("tokenizer.ggml.tokens", tokens);
        QVERIFY_THROWS_EXCEPTION(VocabError, Vocab(GgufFile::parse(unknown_pre.to_bytes())));
    }

    void classifies_code_points() {
        QCOMPARE(general_category('A'), GeneralCategory::Lu);
        QCOMPARE(general_category(0x4E2D), GeneralCategory::Lo);    // 中
        QCOMPARE(general_category(0x1D400), GeneralCategory::Lu);   // MATHEMATICAL BOLD CAPITAL A
        QCOMPARE(general_category(0x2160), GeneralCategory::Nl);    // ROMAN NUMERAL ONE
        QCOMPARE(general_category(0x10FFFD), GeneralCategory::Co);
        QCOMPARE(general_category(0x110000), GeneralCategory::Cn);
        QVERIFY(is_white_space(0x85) && is_white_space(0x3000) && is_white_space('\t'));
        QVERIFY(!is_white_space(0x1C) && !is_white_space(0x200B) && !is_white_space(0x180E));
    }
};

QTEST_GUILESS_MAIN(VocabTest)
#include "tst_vocab.moc"
