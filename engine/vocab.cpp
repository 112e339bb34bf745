#include <algorithm>
#include <atomic>
#include <string>

#include "engine/vocab.h"

namespace folio::engine {

namespace {

// Some converters write -1 (as a signed integer) for "none".
std::int32_t optional_id(const GgufFile& file, std::string_view key, std::size_t n_tokens) {
    const std::optional<std::int64_t> id = file.find_i64(key);
    return id && *id >= 0 && static_cast<std::uint64_t>(*id) < n_tokens ? static_cast<std::int32_t>(*id)
                                                                        : Vocab::kNoToken;
}

std::atomic<std::uint64_t> next_cache_owner_id{1};

// Tokens split off the text before the model sees it, as llama.cpp's
// cache_special_tokens: control and unknown ones only when parse_special.
bool is_special(TokenType type) {
    return type == TokenType::Control || type == TokenType::Unknown || type == TokenType::UserDefined;
}

}  // namespace

Vocab::Vocab(const GgufFile& file) : cache_owner_id_(next_cache_owner_id++) {
    const std::string_view model = file.get_string("tokenizer.ggml.model");
    if (model == "gpt2")
        model_ = TokenizerModel::ByteLevelBpe;
    else if (model == "llama")
        model_ = TokenizerModel::SentencePiece;
    else if (model == "bert")
        model_ = TokenizerModel::WordPiece;
    else
        throw VocabError(file.source() + ": tokenizer model '" + std::string(model) +
                         "' is not supported (Folio reads byte-level BPE, 'gpt2', SentencePiece, 'llama', "
                         "and WordPiece, 'bert')");

    const std::span<const std::string_view> tokens = file.get_string_array("tokenizer.ggml.tokens");
    const std::optional<std::vector<std::int64_t>> types = file.find_int_array("tokenizer.ggml.token_type");
    if (types && types->size() != tokens.size())
        throw VocabError(file.source() + ": tokenizer.ggml.token_type has " + std::to_string(types->size()) +
                         " entries for " + std::to_string(tokens.size()) + " tokens");

    token_texts_.reserve(tokens.size());
    token_types_.reserve(tokens.size());
    id_of_text_.reserve(tokens.size());
    for (std::size_t id = 0; id < tokens.size(); ++id) {
        const auto type = types ? static_cast<TokenType>((*types)[id]) : TokenType::Normal;
        token_texts_.emplace_back(tokens[id]);
        token_types_.push_back(type);
        id_of_text_.emplace(tokens[id], static_cast<std::int32_t>(id));
        if (is_special(type) && !tokens[id].empty()) {
            const auto first_byte = static_cast<std::uint8_t>(tokens[id][0]);
            special_tokens_by_first_byte_[first_byte].push_back(static_cast<std::int32_t>(id));
        }
    }
    for (auto& candidates : special_tokens_by_first_byte_) {
        std::stable_sort(candidates.begin(), candidates.end(), [&](std::int32_t a, std::int32_t b) {
            return token_texts_[static_cast<std::size_t>(a)].size() > token_texts_[static_cast<std::size_t>(b)].size();
        });
    }

    switch (model_) {
    case TokenizerModel::ByteLevelBpe:
        load_byte_level_bpe(file);
        break;
    case TokenizerModel::SentencePiece:
        load_sentencepiece(file);
        break;
    case TokenizerModel::WordPiece:
        load_wordpiece(file);
        break;
    }

    bos_id_ = optional_id(file, "tokenizer.ggml.bos_token_id", tokens.size());
    eos_id_ = optional_id(file, "tokenizer.ggml.eos_token_id", tokens.size());
    pad_id_ = optional_id(file, "tokenizer.ggml.padding_token_id", tokens.size());
    unk_id_ = optional_id(file, "tokenizer.ggml.unknown_token_id", tokens.size());
    // BERT frames the text as [CLS] text [SEP] unless told otherwise.
    const bool frames_text = model_ == TokenizerModel::WordPiece;
    if (frames_text) {
        if (const std::int32_t cls = optional_id(file, "tokenizer.ggml.cls_token_id", tokens.size()); cls != kNoToken)
            bos_id_ = cls;
        // "seperator" is the key's spelling in GGUF.
        if (const std::int32_t sep = optional_id(file, "tokenizer.ggml.seperator_token_id", tokens.size());
            sep != kNoToken)
            eos_id_ = sep;
    }
    add_bos_ = file.get_bool("tokenizer.ggml.add_bos_token", frames_text) && bos_id_ != kNoToken;
    add_eos_ = file.get_bool("tokenizer.ggml.add_eos_token", frames_text) && eos_id_ != kNoToken;
}

std::optional<std::int32_t> Vocab::find_token(std::string_view text) const {
    const auto found = id_of_text_.find(text);
    if (found == id_of_text_.end())
        return std::nullopt;
    return found->second;
}

std::int32_t Vocab::special_token_at(std::string_view text, std::size_t offset, bool parse_special) const {
    for (const std::int32_t id : special_tokens_by_first_byte_[static_cast<std::uint8_t>(text[offset])]) {
        const std::string& token = token_texts_[static_cast<std::size_t>(id)];
        if (!parse_special && token_types_[static_cast<std::size_t>(id)] != TokenType::UserDefined)
            continue;
        if (text.compare(offset, token.size(), token) == 0)
            return id;
    }
    return kNoToken;
}

std::vector<std::int32_t> Vocab::encode(std::string_view text, bool add_special, bool parse_special) const {
    std::vector<std::int32_t> ids;
    ids.reserve(text.size() / 3 + 2);
    if (add_special && add_bos_)
        ids.push_back(bos_id_);
    // Special tokens split the text first, leftmost and then longest first
    // (tokenizers' added-vocabulary Aho-Corasick, LeftmostLongest); the text
    // between them goes to the model.
    std::size_t fragment_start = 0;
    std::size_t offset = 0;
    while (offset < text.size()) {
        const std::int32_t special = special_token_at(text, offset, parse_special);
        if (special == kNoToken) {
            ++offset;
            continue;
        }
        encode_text(text.substr(fragment_start, offset - fragment_start), ids);
        ids.push_back(special);
        offset += token_texts_[static_cast<std::size_t>(special)].size();
        fragment_start = offset;
    }
    encode_text(text.substr(fragment_start), ids);
    if (add_special && add_eos_)
        ids.push_back(eos_id_);
    return ids;
}

void Vocab::encode_text(std::string_view text, std::vector<std::int32_t>& ids) const {
    if (text.empty())
        return;
    switch (model_) {
    case TokenizerModel::ByteLevelBpe:
        encode_byte_level_bpe(text, ids);
        break;
    case TokenizerModel::SentencePiece:
        encode_sentencepiece(text, ids);
        break;
    case TokenizerModel::WordPiece:
        encode_wordpiece(text, ids);
        break;
    }
}

const std::string& Vocab::token_to_piece(std::int32_t id, bool render_special) const {
    static const std::string nothing;
    if (id < 0 || id >= n_tokens())
        throw VocabError("token id " + std::to_string(id) + " is outside the vocabulary of " +
                         std::to_string(n_tokens()) + " tokens");
    const TokenType type = token_types_[static_cast<std::size_t>(id)];
    if (!render_special && (type == TokenType::Control || type == TokenType::Unknown))
        return nothing;
    return token_bytes_[static_cast<std::size_t>(id)];
}

std::string Vocab::decode(std::span<const std::int32_t> ids, bool render_special) const {
    if (model_ == TokenizerModel::WordPiece)
        return decode_wordpiece(ids, render_special);
    std::string text;
    for (const std::int32_t id : ids)
        text += token_to_piece(id, render_special);
    // tokenizers' Strip decoder after Metaspace-style normalization: the
    // first space of the whole text, whichever token it came from.
    if (model_ == TokenizerModel::SentencePiece && add_space_prefix_ && !text.empty() && text.front() == ' ')
        text.erase(0, 1);
    return text;
}

}  // namespace folio::engine
