#pragma once
#include <cstdint>
#include <functional>
#include <optional>
#include <span>
#include <stdexcept>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "engine/gguf.h"
#include "engine/pretokenize.h"

// The tokenizer of a GGUF model, built from its tokenizer.ggml.* metadata.
// Folio implements three tokenizer models:
//  - "gpt2" (vocab_bpe.cpp): byte-level BPE as Hugging Face tokenizers runs
//    it (GPT-2, Llama 3, Qwen2, SmolLM, ...). Each byte of the text is a
//    vocabulary character (GPT-2's bytes_to_unicode), the pre-tokenizer named
//    by tokenizer.ggml.pre splits the text into pieces, and the ranked merges
//    are applied inside each piece, lowest rank first.
//  - "llama" (vocab_spm.cpp): SentencePiece BPE as llama.cpp runs it (Llama 2,
//    Gemma). Spaces become U+2581 '▁' (one is prepended when
//    tokenizer.ggml.add_space_prefix), the characters of the whole text are
//    merged pairwise, the pair making the highest-scored token
//    (tokenizer.ggml.scores) first, and characters the vocabulary lacks
//    become byte tokens <0xXX>.
//  - "bert" (vocab_wordpiece.cpp): WordPiece as Hugging Face tokenizers runs
//    uncased BERT. The text is cleaned, lowercased and stripped of accents,
//    split at whitespace, punctuation and CJK ideographs, and each word is
//    matched greedily, longest piece first. Tokens are stored as llama.cpp's
//    converter writes them: a word's first piece as "▁piece", a continuation
//    ("##ing" in vocab.txt) bare, "[CLS]"-like tokens as they are.

namespace folio::engine {

// A vocabulary Folio cannot use (another tokenizer model, a merge naming a
// token that does not exist, an id out of range).
class VocabError : public std::runtime_error {
public:
    using std::runtime_error::runtime_error;
};

// tokenizer.ggml.token_type values (llama.cpp's llama_token_type).
enum class TokenType : std::int32_t {
    Undefined = 0,
    Normal = 1,
    Unknown = 2,      // <unk>: matched in text only when asked to, as Control
    Control = 3,      // <|im_start|>, <|eot_id|>: matched in text only when asked to
    UserDefined = 4,  // added tokens: always matched in text, never split
    Unused = 5,
    Byte = 6,         // SentencePiece's <0x41>: the byte 0x41
};

// tokenizer.ggml.model values Folio reads.
enum class TokenizerModel {
    ByteLevelBpe,   // "gpt2"
    SentencePiece,  // "llama"
    WordPiece,      // "bert"
};

class Vocab {
public:
    static constexpr std::int32_t kNoToken = -1;

    // Copies what it needs, so the Vocab outlives the file. Throws VocabError
    // for an unsupported model or pre-tokenizer and GgufError for missing or
    // mistyped keys. An absent tokenizer.ggml.pre means the GPT-2 regex (it is
    // only read for "gpt2"), an absent tokenizer.ggml.add_bos_token false, an
    // absent tokenizer.ggml.add_space_prefix true. For WordPiece BOS and EOS
    // are [CLS] and [SEP] (tokenizer.ggml.cls_token_id, seperator_token_id),
    // added unless add_bos_token or add_eos_token say otherwise.
    explicit Vocab(const GgufFile& file);

    // Token ids for UTF-8 text (bytes that are not valid UTF-8 are encoded
    // as bytes). add_special adds BOS (and EOS) where the vocabulary asks for
    // them; parse_special turns control-token text such as "<|im_end|>" into
    // that token instead of encoding its characters. User-defined tokens are
    // always matched. Thread-safe.
    std::vector<std::int32_t> encode(std::string_view text, bool add_special, bool parse_special) const;

    // The bytes the tokens stand for, concatenated. decode(encode(s)) == s
    // unless s holds a byte the vocabulary has no token for, which encode
    // drops as the reference does (SmolLM2 lacks 0x04, 0x06, 0x13, 0x14,
    // 0x16, 0x1D and bytes that never occur in well-formed UTF-8). For
    // SentencePiece '▁' decodes to ' ', and with add_space_prefix the text's
    // first space is dropped: the one encode prepended, but encode prepends
    // one after each special token too. WordPiece decodes as tokenizers'
    // WordPiece decoder does: words joined by spaces, none before . , ! ?
    // (not the text back: it was lowercased). Control and unknown tokens give
    // their text when render_special, else nothing.
    std::string decode(std::span<const std::int32_t> ids, bool render_special = true) const;
    // One token's bytes, as in decode (WordPiece: " word" for a word's first
    // piece, "ing" for a continuation). Throws VocabError for an unknown id.
    const std::string& token_to_piece(std::int32_t id, bool render_special = true) const;

    std::int32_t n_tokens() const { return static_cast<std::int32_t>(token_texts_.size()); }
    // The token as the vocabulary stores it ("Ġthe" for " the").
    std::string_view token_text(std::int32_t id) const { return token_texts_.at(static_cast<std::size_t>(id)); }
    TokenType token_type(std::int32_t id) const { return token_types_.at(static_cast<std::size_t>(id)); }
    std::optional<std::int32_t> find_token(std::string_view text) const;

    TokenizerModel model() const { return model_; }
    PreTokenizer pre_tokenizer() const { return pre_tokenizer_; }
    std::int32_t bos_id() const { return bos_id_; }  // kNoToken when the file names none
    std::int32_t eos_id() const { return eos_id_; }
    std::int32_t pad_id() const { return pad_id_; }
    std::int32_t unk_id() const { return unk_id_; }
    bool add_bos() const { return add_bos_; }
    bool add_eos() const { return add_eos_; }
    bool add_space_prefix() const { return add_space_prefix_; }

private:
    // Looks a std::string key up by string_view without copying it.
    struct TextHash {
        using is_transparent = void;
        std::size_t operator()(std::string_view text) const { return std::hash<std::string_view>{}(text); }
    };

    struct Merge {
        std::int32_t rank;
        std::int32_t merged_id;
    };

    static std::uint64_t pair_key(std::int32_t left, std::int32_t right) {
        return (static_cast<std::uint64_t>(static_cast<std::uint32_t>(left)) << 32) |
               static_cast<std::uint32_t>(right);
    }
    // The model's part of the constructor: token_bytes_, byte_token_ids_ and
    // what the model's encode needs.
    void load_byte_level_bpe(const GgufFile& file);
    void load_sentencepiece(const GgufFile& file);
    void load_wordpiece(const GgufFile& file);
    // The longest special token at text[offset] that may be matched, or kNoToken.
    std::int32_t special_token_at(std::string_view text, std::size_t offset, bool parse_special) const;
    // Text between special tokens, by the model.
    void encode_text(std::string_view text, std::vector<std::int32_t>& ids) const;
    void encode_byte_level_bpe(std::string_view text, std::vector<std::int32_t>& ids) const;
    void encode_sentencepiece(std::string_view text, std::vector<std::int32_t>& ids) const;
    void encode_wordpiece(std::string_view text, std::vector<std::int32_t>& ids) const;
    void encode_word_pieces(std::string_view word, std::vector<std::int32_t>& ids) const;
    std::string decode_wordpiece(std::span<const std::int32_t> ids, bool render_special) const;
    void encode_piece(std::string_view piece, std::vector<std::int32_t>& ids) const;
    void apply_merges(std::string_view piece, std::vector<std::int32_t>& ids) const;

    std::vector<std::string> token_texts_;
    std::vector<TokenType> token_types_;
    std::vector<std::string> token_bytes_;  // what each token decodes to
    std::unordered_map<std::string, std::int32_t, TextHash, std::equal_to<>> id_of_text_;
    std::unordered_map<std::uint64_t, Merge> merges_;  // by pair_key(left, right)
    std::vector<float> token_scores_;  // SentencePiece: a merge making a higher score goes first
    std::int32_t byte_token_ids_[256];  // the token of each single byte, or kNoToken
    // Control, unknown and user-defined token ids by their text's first byte, longest first.
    std::vector<std::int32_t> special_tokens_by_first_byte_[256];
    TokenizerModel model_ = TokenizerModel::ByteLevelBpe;
    PreTokenizer pre_tokenizer_ = PreTokenizer::Gpt2;
    // Llama 3's tokenizer looks a whole piece up in the vocabulary before
    // merging (tokenizers' BPE ignore_merges), which can give another result.
    bool ignore_merges_ = false;
    std::int32_t bos_id_ = kNoToken;
    std::int32_t eos_id_ = kNoToken;
    std::int32_t pad_id_ = kNoToken;
    std::int32_t unk_id_ = kNoToken;
    bool add_bos_ = false;
    bool add_eos_ = false;
    bool add_space_prefix_ = false;
    std::uint64_t cache_owner_id_;  // tells this vocabulary's entries in the per-thread piece cache apart
};

}  // namespace folio::engine
