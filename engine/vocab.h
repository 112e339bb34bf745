#pragma once
#include <cstdint>
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
// Folio implements the "gpt2" model: byte-level BPE as Hugging Face
// tokenizers runs it (GPT-2, Llama 3, Qwen2, SmolLM, ...). Each byte of the
// text is a vocabulary character (GPT-2's bytes_to_unicode), the
// pre-tokenizer named by tokenizer.ggml.pre splits the text into pieces, and
// the ranked merges are applied inside each piece, lowest rank first.

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
    Unknown = 2,
    Control = 3,      // <|im_start|>, <|eot_id|>: matched in text only when asked to
    UserDefined = 4,  // added tokens: always matched in text, never split
    Unused = 5,
    Byte = 6,
};

class Vocab {
public:
    static constexpr std::int32_t kNoToken = -1;

    // Copies what it needs, so the Vocab outlives the file. Throws VocabError
    // for an unsupported model or pre-tokenizer and GgufError for missing or
    // mistyped keys. An absent tokenizer.ggml.pre means the GPT-2 regex, an
    // absent tokenizer.ggml.add_bos_token false.
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
    // 0x16, 0x1D and bytes that never occur in well-formed UTF-8).
    // Control tokens give their text when render_special, else nothing.
    std::string decode(std::span<const std::int32_t> ids, bool render_special = true) const;
    // One token's bytes, as in decode. Throws VocabError for an unknown id.
    const std::string& token_to_piece(std::int32_t id, bool render_special = true) const;

    std::int32_t n_tokens() const { return static_cast<std::int32_t>(token_texts_.size()); }
    // The token as the vocabulary stores it ("Ġthe" for " the").
    std::string_view token_text(std::int32_t id) const { return token_texts_.at(static_cast<std::size_t>(id)); }
    TokenType token_type(std::int32_t id) const { return token_types_.at(static_cast<std::size_t>(id)); }
    std::optional<std::int32_t> find_token(std::string_view text) const;

    PreTokenizer pre_tokenizer() const { return pre_tokenizer_; }
    std::int32_t bos_id() const { return bos_id_; }  // kNoToken when the file names none
    std::int32_t eos_id() const { return eos_id_; }
    std::int32_t pad_id() const { return pad_id_; }
    std::int32_t unk_id() const { return unk_id_; }
    bool add_bos() const { return add_bos_; }
    bool add_eos() const { return add_eos_; }

private:
    struct Merge {
        std::int32_t rank;
        std::int32_t merged_id;
    };

    static std::uint64_t pair_key(std::int32_t left, std::int32_t right) {
        return (static_cast<std::uint64_t>(static_cast<std::uint32_t>(left)) << 32) |
               static_cast<std::uint32_t>(right);
    }
    // The longest special token at text[offset] that may be matched, or kNoToken.
    std::int32_t special_token_at(std::string_view text, std::size_t offset, bool parse_special) const;
    void encode_text(std::string_view text, std::vector<std::int32_t>& ids) const;
    void encode_piece(std::string_view piece, std::vector<std::int32_t>& ids) const;
    void apply_merges(std::string_view piece, std::vector<std::int32_t>& ids) const;

    std::vector<std::string> token_texts_;
    std::vector<TokenType> token_types_;
    std::vector<std::string> token_bytes_;  // what each token decodes to
    std::unordered_map<std::string, std::int32_t> id_of_text_;
    std::unordered_map<std::uint64_t, Merge> merges_;  // by pair_key(left, right)
    std::int32_t byte_token_ids_[256];  // the token of each single byte, or kNoToken
    // Control and user-defined token ids by their text's first byte, longest first.
    std::vector<std::int32_t> special_tokens_by_first_byte_[256];
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
    std::uint64_t cache_owner_id_;  // tells this vocabulary's entries in the per-thread piece cache apart
};

}  // namespace folio::engine
