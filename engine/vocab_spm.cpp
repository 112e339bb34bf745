#include <algorithm>
#include <string>
#include <vector>

#include "engine/vocab.h"

namespace folio::engine {

namespace {

constexpr std::string_view kSpaceMarker = "\xE2\x96\x81";  // U+2581 '▁', SentencePiece's space

// The byte a "<0xXX>" token stands for, or -1.
int byte_of_byte_token(std::string_view text) {
    if (text.size() != 6 || !text.starts_with("<0x") || text.back() != '>')
        return -1;
    int byte = 0;
    for (const char digit : text.substr(3, 2)) {
        byte <<= 4;
        if (digit >= '0' && digit <= '9')
            byte |= digit - '0';
        else if (digit >= 'A' && digit <= 'F')
            byte |= digit - 'A' + 10;
        else if (digit >= 'a' && digit <= 'f')
            byte |= digit - 'a' + 10;
        else
            return -1;
    }
    return byte;
}

std::string space_markers_to_spaces(std::string_view text) {
    std::string result;
    for (std::size_t offset = 0; offset < text.size();) {
        if (text.compare(offset, kSpaceMarker.size(), kSpaceMarker) == 0) {
            result += ' ';
            offset += kSpaceMarker.size();
        } else {
            result += text[offset++];
        }
    }
    return result;
}

// The length of the UTF-8 character starting at text[offset]: its lead
// byte's, as llama.cpp's unicode_len_utf8, but 1 for a byte that does not
// start a complete sequence (llama.cpp would take the bytes after it too,
// and so a space turned '▁' that it then encodes as bytes, which decode to
// '▁' instead of ' ').
std::size_t character_length(std::string_view text, std::size_t offset) {
    static constexpr std::size_t kLengthOfHighNibble[16] = {1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 2, 2, 3, 4};
    const std::size_t length = kLengthOfHighNibble[static_cast<std::uint8_t>(text[offset]) >> 4];
    if (offset + length > text.size())
        return 1;
    for (std::size_t k = 1; k < length; ++k) {
        if ((static_cast<std::uint8_t>(text[offset + k]) & 0xC0) != 0x80)
            return 1;
    }
    return length;
}

}  // namespace

void Vocab::load_sentencepiece(const GgufFile& file) {
    token_scores_ = file.get_float_array("tokenizer.ggml.scores");
    if (token_scores_.size() != token_texts_.size())
        throw VocabError(file.source() + ": tokenizer.ggml.scores has " + std::to_string(token_scores_.size()) +
                         " entries for " + std::to_string(token_texts_.size()) + " tokens");
    add_space_prefix_ = file.get_bool("tokenizer.ggml.add_space_prefix", true);

    std::fill(std::begin(byte_token_ids_), std::end(byte_token_ids_), kNoToken);
    token_bytes_.reserve(token_texts_.size());
    for (std::size_t id = 0; id < token_texts_.size(); ++id) {
        const std::string& text = token_texts_[id];
        switch (token_types_[id]) {
        case TokenType::Byte: {
            const int byte = byte_of_byte_token(text);
            if (byte < 0)
                throw VocabError(file.source() + ": byte token " + std::to_string(id) + " '" + text +
                                 "' is not <0xXX>");
            token_bytes_.emplace_back(1, static_cast<char>(byte));
            if (byte_token_ids_[byte] == kNoToken)
                byte_token_ids_[byte] = static_cast<std::int32_t>(id);
            break;
        }
        case TokenType::Control:
        case TokenType::Unknown:
            token_bytes_.push_back(text);
            break;
        default:
            token_bytes_.push_back(space_markers_to_spaces(text));
        }
    }
}

// llama.cpp's llm_tokenizer_spm_session: the characters of the normalized
// text are symbols; of the adjacent pairs whose concatenation is a token, the
// one making the highest-scored token (the leftmost of equals) is merged,
// until no pair is a token. A character the vocabulary lacks is never merged
// (SentencePiece and tokenizers' byte_fallback BPE agree; llama.cpp would
// merge it) and is encoded as its bytes' tokens, or <unk> where the
// vocabulary lacks one of them, consecutive ones fused into one <unk>.
void Vocab::encode_sentencepiece(std::string_view text, std::vector<std::int32_t>& ids) const {
    thread_local std::string normalized;
    normalized.clear();
    if (add_space_prefix_)
        normalized += kSpaceMarker;
    for (const char byte : text) {
        if (byte == ' ')
            normalized += kSpaceMarker;
        else
            normalized += byte;
    }

    struct Symbol {
        std::uint32_t offset;  // in normalized
        std::uint32_t length;  // bytes; 0 once merged into the symbol on its left
        std::int32_t id;       // kNoToken for a character the vocabulary lacks
        std::int32_t previous;  // index, -1 at the start
        std::int32_t next;      // index, -1 at the end
    };
    struct Candidate {
        float score;
        std::int32_t left;  // symbol indexes
        std::int32_t right;
        std::uint32_t length;  // of the merged text: tells a stale candidate
        std::int32_t merged_id;
        // Heap order: the highest score, then the leftmost position, on top.
        bool operator<(const Candidate& other) const {
            return score != other.score ? score < other.score : left > other.left;
        }
    };
    thread_local std::vector<Symbol> symbols;
    thread_local std::vector<Candidate> queue;
    symbols.clear();
    queue.clear();
    for (std::size_t offset = 0; offset < normalized.size();) {
        const std::size_t length = character_length(normalized, offset);
        const auto found = id_of_text_.find(std::string_view(normalized).substr(offset, length));
        const auto index = static_cast<std::int32_t>(symbols.size());
        symbols.push_back({static_cast<std::uint32_t>(offset), static_cast<std::uint32_t>(length),
                           found == id_of_text_.end() ? kNoToken : found->second, index - 1, index + 1});
        offset += length;
    }
    symbols.back().next = -1;

    const auto queue_pair = [&](std::int32_t left) {
        const Symbol& left_symbol = symbols[static_cast<std::size_t>(left)];
        if (left_symbol.next < 0)
            return;
        const Symbol& right_symbol = symbols[static_cast<std::size_t>(left_symbol.next)];
        if (left_symbol.id == kNoToken || right_symbol.id == kNoToken)
            return;
        const std::uint32_t length = left_symbol.length + right_symbol.length;
        const auto merged = id_of_text_.find(std::string_view(normalized).substr(left_symbol.offset, length));
        if (merged == id_of_text_.end())
            return;
        queue.push_back({token_scores_[static_cast<std::size_t>(merged->second)], left, left_symbol.next, length,
                         merged->second});
        std::push_heap(queue.begin(), queue.end());
    };
    for (std::int32_t i = 0; i + 1 < static_cast<std::int32_t>(symbols.size()); ++i)
        queue_pair(i);

    while (!queue.empty()) {
        std::pop_heap(queue.begin(), queue.end());
        const Candidate top = queue.back();
        queue.pop_back();
        Symbol& left = symbols[static_cast<std::size_t>(top.left)];
        Symbol& right = symbols[static_cast<std::size_t>(top.right)];
        // Symbols only grow, so a changed one no longer adds up to the length.
        if (left.length == 0 || right.length == 0 || left.length + right.length != top.length)
            continue;
        left.length = top.length;
        left.id = top.merged_id;
        right.length = 0;
        left.next = right.next;
        if (right.next >= 0)
            symbols[static_cast<std::size_t>(right.next)].previous = top.left;
        if (left.previous >= 0)
            queue_pair(left.previous);
        queue_pair(top.left);
    }

    bool previous_was_unknown = false;
    for (std::int32_t i = 0; i >= 0; i = symbols[static_cast<std::size_t>(i)].next) {
        const Symbol& symbol = symbols[static_cast<std::size_t>(i)];
        if (symbol.id != kNoToken) {
            ids.push_back(symbol.id);
            previous_was_unknown = false;
            continue;
        }
        const std::string_view character = std::string_view(normalized).substr(symbol.offset, symbol.length);
        const bool has_byte_tokens = std::all_of(character.begin(), character.end(), [&](char byte) {
            return byte_token_ids_[static_cast<std::uint8_t>(byte)] != kNoToken;
        });
        if (has_byte_tokens) {
            for (const char byte : character)
                ids.push_back(byte_token_ids_[static_cast<std::uint8_t>(byte)]);
            previous_was_unknown = false;
        } else if (unk_id_ != kNoToken && !previous_was_unknown) {
            ids.push_back(unk_id_);
            previous_was_unknown = true;
        }
    }
}

}  // namespace folio::engine
