#include <string>
#include <vector>

#include "engine/unicode_data.h"
#include "engine/utf8.h"
#include "engine/vocab.h"

namespace folio::engine {

namespace {

constexpr std::string_view kWordStartMarker = "\xE2\x96\x81";  // U+2581 '▁': llama.cpp's "phantom space"
// tokenizers' WordPiece max_input_chars_per_word: a longer word is [UNK].
constexpr std::size_t kMaxWordCharacters = 100;

// The code point at text[offset] and its length; a byte that does not start
// a complete UTF-8 sequence is U+FFFD, which BERT's cleaning drops.
std::uint32_t next_code_point(std::string_view text, std::size_t offset, std::size_t& length) {
    const auto lead = static_cast<std::uint8_t>(text[offset]);
    length = lead < 0x80 ? 1 : lead < 0xC2 ? 0 : lead < 0xE0 ? 2 : lead < 0xF0 ? 3 : lead < 0xF5 ? 4 : 0;
    if (length == 0 || offset + length > text.size()) {
        length = 1;
        return 0xFFFD;
    }
    std::uint32_t code_point = length == 1 ? lead : lead & (0x7F >> length);
    for (std::size_t k = 1; k < length; ++k) {
        const auto continuation = static_cast<std::uint8_t>(text[offset + k]);
        if ((continuation & 0xC0) != 0x80) {
            length = 1;
            return 0xFFFD;
        }
        code_point = (code_point << 6) | (continuation & 0x3F);
    }
    return code_point;
}

// tokenizers' BertNormalizer clean_text: control characters (every C*
// category but \t \n \r), NUL and U+FFFD are dropped.
bool is_dropped_by_cleaning(std::uint32_t code_point) {
    if (code_point == 0 || code_point == 0xFFFD)
        return true;
    if (code_point == '\t' || code_point == '\n' || code_point == '\r')
        return false;
    const GeneralCategory category = general_category(code_point);
    return category >= GeneralCategory::Cn && category <= GeneralCategory::Cs;
}

// BERT's "Chinese character" ranges (tokenizers' is_chinese_char): CJK
// ideographs, each its own word.
bool is_cjk_ideograph(std::uint32_t c) {
    return (c >= 0x4E00 && c <= 0x9FFF) || (c >= 0x3400 && c <= 0x4DBF) || (c >= 0x20000 && c <= 0x2A6DF) ||
           (c >= 0x2A700 && c <= 0x2B73F) || (c >= 0x2B740 && c <= 0x2B81F) || (c >= 0x2B920 && c <= 0x2CEAF) ||
           (c >= 0xF900 && c <= 0xFAFF) || (c >= 0x2F800 && c <= 0x2FA1F);
}

// tokenizers' BertPreTokenizer: ASCII punctuation and symbols ($, +, <, ^,
// `, |, ~ too) and every Unicode P* category split off as one-character words.
bool is_bert_punctuation(std::uint32_t c) {
    if ((c >= 0x21 && c <= 0x2F) || (c >= 0x3A && c <= 0x40) || (c >= 0x5B && c <= 0x60) || (c >= 0x7B && c <= 0x7E))
        return true;
    const GeneralCategory category = general_category(c);
    return category >= GeneralCategory::Pc && category <= GeneralCategory::Ps;
}

// Uncased BERT's accent stripping and lowercasing of one code point, as UTF-8.
void append_folded(std::uint32_t code_point, std::string& out) {
    if (general_category(code_point) == GeneralCategory::Mn)
        return;
    // Hangul syllables decompose (NFD) into their leading, vowel and
    // trailing jamo (Unicode 3.12, "Conjoining Jamo Behavior").
    if (code_point >= 0xAC00 && code_point <= 0xD7A3) {
        const std::uint32_t index = code_point - 0xAC00;
        append_utf8(0x1100 + index / 588, out);
        append_utf8(0x1161 + (index % 588) / 28, out);
        if (index % 28 != 0)
            append_utf8(0x11A7 + index % 28, out);
        return;
    }
    const std::string_view folded = bert_uncased_fold(code_point);
    if (folded.empty())
        append_utf8(code_point, out);
    else
        out += folded;
}

// Where the UTF-8 character ending at text[end] starts.
std::size_t previous_character_start(std::string_view text, std::size_t end) {
    do
        --end;
    while (end > 0 && (static_cast<std::uint8_t>(text[end]) & 0xC0) == 0x80);
    return end;
}

bool is_word_start_token(std::string_view text, TokenType type) {
    if (type == TokenType::Control || type == TokenType::Unknown || type == TokenType::UserDefined)
        return true;
    // llama.cpp's converter leaves "[unused0]"-like tokens without the marker.
    return text.starts_with(kWordStartMarker) || (text.size() > 2 && text.front() == '[' && text.back() == ']');
}

}  // namespace

void Vocab::load_wordpiece(const GgufFile&) {
    token_bytes_.reserve(token_texts_.size());
    for (std::size_t id = 0; id < token_texts_.size(); ++id) {
        const std::string& text = token_texts_[id];
        if (!is_word_start_token(text, token_types_[id]))
            token_bytes_.push_back(text);
        else if (text.starts_with(kWordStartMarker))
            token_bytes_.push_back(" " + text.substr(kWordStartMarker.size()));
        else
            token_bytes_.push_back(" " + text);
    }
}

// BertNormalizer (clean text, pad CJK ideographs, strip accents, lowercase)
// and BertPreTokenizer (split at whitespace and punctuation) in one pass,
// each word given to WordPiece as soon as it ends.
void Vocab::encode_wordpiece(std::string_view text, std::vector<std::int32_t>& ids) const {
    thread_local std::string word;
    thread_local std::string folded;
    word.clear();
    const auto end_word = [&] {
        if (!word.empty())
            encode_word_pieces(word, ids);
        word.clear();
    };
    for (std::size_t offset = 0; offset < text.size();) {
        std::size_t length = 0;
        const std::uint32_t code_point = next_code_point(text, offset, length);
        offset += length;
        if (is_dropped_by_cleaning(code_point))
            continue;
        if (is_white_space(code_point)) {
            end_word();
            continue;
        }
        folded.clear();
        append_folded(code_point, folded);
        if (is_cjk_ideograph(code_point)) {
            end_word();
            word = folded;
            end_word();
            continue;
        }
        for (std::size_t k = 0; k < folded.size();) {
            std::size_t folded_length = 0;
            const std::uint32_t folded_code_point = next_code_point(folded, k, folded_length);
            const std::string_view character = std::string_view(folded).substr(k, folded_length);
            k += folded_length;
            if (is_white_space(folded_code_point)) {
                end_word();
            } else if (is_bert_punctuation(folded_code_point)) {
                end_word();
                word = character;
                end_word();
            } else {
                word += character;
            }
        }
    }
    end_word();
}

// tokenizers' WordPiece: the longest token the word starts with, then the
// longest continuation token at the rest, and so on; a word with a part no
// token matches, or longer than kMaxWordCharacters, is one [UNK].
void Vocab::encode_word_pieces(std::string_view word, std::vector<std::int32_t>& ids) const {
    std::size_t n_characters = 0;
    for (const char byte : word)
        n_characters += (static_cast<std::uint8_t>(byte) & 0xC0) != 0x80;
    const std::size_t first_piece = ids.size();
    thread_local std::string candidate;
    for (std::size_t start = 0; n_characters <= kMaxWordCharacters && start < word.size();) {
        std::int32_t piece_id = kNoToken;
        std::size_t end = word.size();
        for (; end > start; end = previous_character_start(word, end)) {
            candidate = start == 0 ? kWordStartMarker : std::string_view();
            candidate += word.substr(start, end - start);
            if (const auto found = id_of_text_.find(candidate); found != id_of_text_.end()) {
                piece_id = found->second;
                break;
            }
        }
        if (piece_id == kNoToken)
            break;
        ids.push_back(piece_id);
        start = end;
        if (start == word.size())
            return;
    }
    ids.resize(first_piece);
    if (unk_id_ != kNoToken)
        ids.push_back(unk_id_);
}

// tokenizers' WordPiece decoder with cleanup: a space before each word but
// the first, and none before . , ! ? (cleanup works on one token at a time,
// so "n't"-like rules never apply). A first token that continues a word
// keeps its "##", as there.
std::string Vocab::decode_wordpiece(std::span<const std::int32_t> ids, bool render_special) const {
    std::string text;
    bool first = true;
    for (const std::int32_t id : ids) {
        const std::string& piece = token_to_piece(id, render_special);
        if (piece.empty())
            continue;
        if (first) {
            if (piece.front() == ' ')
                text.append(piece, 1);
            else
                text += "##" + piece;
            first = false;
        } else if (piece == " ." || piece == " ," || piece == " !" || piece == " ?") {
            text += piece[1];
        } else {
            text += piece;
        }
    }
    return text;
}

}  // namespace folio::engine
