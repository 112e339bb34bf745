#include "engine/pretokenize.h"

#include <cstdint>
#include <stdexcept>
#include <string>

#include "engine/unicode_data.h"

namespace folio::engine {

namespace {

enum CharClass : std::uint8_t {
    kLetter = 1,  // \p{L}
    kNumber = 2,  // \p{N}
    kSpace = 4,   // \s
};

struct Char {
    std::uint32_t code_point;  // 0xFFFD stands for a byte that is not valid UTF-8
    std::uint32_t byte_offset;
    std::uint8_t classes;
};

std::uint8_t classes_of(std::uint32_t code_point) {
    if (is_white_space(code_point))
        return kSpace;
    const GeneralCategory category = general_category(code_point);
    if (is_letter_category(category))
        return kLetter;
    if (is_number_category(category))
        return kNumber;
    return 0;
}

// Length of the well-formed UTF-8 sequence at text[i] (RFC 3629: no overlong
// forms, no surrogates, nothing past U+10FFFF), or 0.
std::size_t decode_utf8(std::string_view text, std::size_t i, std::uint32_t& code_point) {
    const auto byte = [&](std::size_t k) { return static_cast<std::uint8_t>(text[k]); };
    const std::uint8_t lead = byte(i);
    std::size_t length;
    std::uint32_t minimum;
    if (lead < 0x80) {
        code_point = lead;
        return 1;
    } else if ((lead & 0xE0) == 0xC0) {
        length = 2, minimum = 0x80, code_point = lead & 0x1F;
    } else if ((lead & 0xF0) == 0xE0) {
        length = 3, minimum = 0x800, code_point = lead & 0x0F;
    } else if ((lead & 0xF8) == 0xF0) {
        length = 4, minimum = 0x10000, code_point = lead & 0x07;
    } else {
        return 0;
    }
    if (i + length > text.size())
        return 0;
    for (std::size_t k = 1; k < length; ++k) {
        if ((byte(i + k) & 0xC0) != 0x80)
            return 0;
        code_point = (code_point << 6) | (byte(i + k) & 0x3F);
    }
    if (code_point < minimum || code_point > 0x10FFFF || (code_point >= 0xD800 && code_point <= 0xDFFF))
        return 0;
    return length;
}

// text's characters, plus one past the end that holds text.size() as its offset.
void decode_text(std::string_view text, std::vector<Char>& chars) {
    chars.clear();
    for (std::size_t i = 0; i < text.size();) {
        std::uint32_t code_point;
        std::size_t length = decode_utf8(text, i, code_point);
        std::uint8_t classes;
        if (length == 0) {
            code_point = 0xFFFD, length = 1, classes = 0;
        } else if (code_point < 0x80) {
            const char c = static_cast<char>(code_point);
            classes = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ? kLetter
                      : (c >= '0' && c <= '9')                         ? kNumber
                      : (c == ' ' || (c >= '\t' && c <= '\r'))         ? kSpace
                                                                       : 0;
        } else {
            classes = classes_of(code_point);
        }
        chars.push_back({code_point, static_cast<std::uint32_t>(i), classes});
        i += length;
    }
    chars.push_back({0, static_cast<std::uint32_t>(text.size()), 0});
}

// The scanners below take the characters [begin, end) of one split and return
// where the regex's match at `i` ends; the regex sees `end` as the end of its
// input, as Hugging Face runs each split regex on each piece separately.
class Scanner {
public:
    Scanner(const std::vector<Char>& chars, std::size_t end) : chars_(chars), end_(end) {}

    // GPT-2 (tokenizers' ByteLevel pre-tokenizer, use_regex=true):
    //   's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+
    std::size_t gpt2_match(std::size_t i) const {
        if (const std::size_t length = contraction_length(i, false))
            return i + length;
        const std::size_t after_space = is(i, ' ') && i + 1 < end_ ? i + 1 : i;
        if (has(after_space, kLetter))
            return run_end(after_space, kLetter);
        if (has(after_space, kNumber))
            return run_end(after_space, kNumber);
        if (is_other(after_space))
            return other_run_end(after_space);
        return whitespace_match(i);
    }

    // Llama 3 ("llama-bpe", max_digits 3) and Qwen2 (max_digits 1):
    //   (?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}
    //   | ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+
    // (Qwen2 has \p{N} for \p{N}{1,3}.)
    std::size_t llama3_match(std::size_t i, std::size_t max_digits) const {
        if (const std::size_t length = contraction_length(i, true))
            return i + length;
        if (has(i, kLetter))
            return run_end(i, kLetter);
        if (!has(i, kNumber) && !is_line_break(i) && i + 1 < end_ && has(i + 1, kLetter))
            return run_end(i + 1, kLetter);
        if (has(i, kNumber)) {
            std::size_t k = i;
            while (k < end_ && k - i < max_digits && has(k, kNumber))
                ++k;
            return k;
        }
        const std::size_t after_space = is(i, ' ') && i + 1 < end_ && is_other(i + 1) ? i + 1 : i;
        if (is_other(after_space)) {
            std::size_t k = other_run_end(after_space);
            while (k < end_ && is_line_break(k))
                ++k;
            return k;
        }
        // \s*[\r\n]+ : greedy \s* backs off to the run's last CR or LF.
        const std::size_t run = run_end(i, kSpace);
        for (std::size_t k = run; k > i; --k) {
            if (is_line_break(k - 1))
                return k;
        }
        return whitespace_match(i);
    }

private:
    bool has(std::size_t i, std::uint8_t cls) const { return (chars_[i].classes & cls) != 0; }
    bool is(std::size_t i, char32_t c) const { return chars_[i].code_point == c; }
    bool is_other(std::size_t i) const { return chars_[i].classes == 0; }
    bool is_line_break(std::size_t i) const { return is(i, '\r') || is(i, '\n'); }

    std::size_t run_end(std::size_t i, std::uint8_t cls) const {
        while (i < end_ && has(i, cls))
            ++i;
        return i;
    }
    std::size_t other_run_end(std::size_t i) const {
        while (i < end_ && is_other(i))
            ++i;
        return i;
    }

    // \s+(?!\S)|\s+ at a whitespace character: a run followed by a
    // non-space gives its last character to the next piece (" word"),
    // unless the run is that one character.
    std::size_t whitespace_match(std::size_t i) const {
        const std::size_t run = run_end(i, kSpace);
        return run < end_ && run - i > 1 ? run - 1 : run;
    }

    // 's 't 're 've 'm 'll 'd. Under (?i) Oniguruma compares simple case
    // folds, and besides A-Z only U+017F LATIN SMALL LETTER LONG S folds to
    // one of these letters (U+212A KELVIN SIGN folds to k, which none has).
    std::size_t contraction_length(std::size_t i, bool case_insensitive) const {
        if (!is(i, '\'') || i + 1 >= end_)
            return 0;
        const auto letter = [&](std::size_t k) -> char32_t {
            const char32_t c = chars_[k].code_point;
            if (!case_insensitive)
                return c;
            return c >= 'A' && c <= 'Z' ? c + ('a' - 'A') : c == U'\u017F' ? U's' : c;
        };
        const char32_t first = letter(i + 1);
        if (first == 's' || first == 't' || first == 'm' || first == 'd')
            return 2;
        if (i + 2 >= end_)
            return 0;
        const char32_t second = letter(i + 2);
        if ((first == 'r' && second == 'e') || (first == 'v' && second == 'e') || (first == 'l' && second == 'l'))
            return 3;
        return 0;
    }

    const std::vector<Char>& chars_;
    std::size_t end_;
};

void emit(std::string_view text, const std::vector<Char>& chars, std::size_t begin, std::size_t end,
          std::vector<std::string_view>& pieces) {
    pieces.push_back(text.substr(chars[begin].byte_offset, chars[end].byte_offset - chars[begin].byte_offset));
}

}  // namespace

PreTokenizer pre_tokenizer_from_name(std::string_view name) {
    // "gpt-2" is what llama.cpp's converter writes; OLMo's and OLMoE's
    // tokenizer ("olmo") splits with the GPT-2 regex too, as llama.cpp reads it.
    if (name == "gpt2" || name == "gpt-2" || name == "olmo")
        return PreTokenizer::Gpt2;
    if (name == "smollm")
        return PreTokenizer::SmolLM;
    if (name == "llama-bpe")
        return PreTokenizer::Llama3;
    if (name == "qwen2")
        return PreTokenizer::Qwen2;
    throw std::invalid_argument("pre-tokenizer '" + std::string(name) + "' is not supported");
}

void pre_tokenize(PreTokenizer kind, std::string_view text, std::vector<std::string_view>& pieces) {
    thread_local std::vector<Char> chars;
    decode_text(text, chars);
    const std::size_t n = chars.size() - 1;
    switch (kind) {
    case PreTokenizer::Gpt2: {
        const Scanner scanner(chars, n);
        for (std::size_t i = 0; i < n;) {
            const std::size_t end = scanner.gpt2_match(i);
            emit(text, chars, i, end, pieces);
            i = end;
        }
        break;
    }
    case PreTokenizer::SmolLM:
        // Sequence[Digits(individual_digits=true), ByteLevel]: each \p{N}
        // character is a piece of its own and the GPT-2 regex runs on the
        // text between them.
        for (std::size_t i = 0; i < n;) {
            if (chars[i].classes & kNumber) {
                emit(text, chars, i, i + 1, pieces);
                ++i;
                continue;
            }
            std::size_t split_end = i;
            while (split_end < n && !(chars[split_end].classes & kNumber))
                ++split_end;
            const Scanner scanner(chars, split_end);
            while (i < split_end) {
                const std::size_t end = scanner.gpt2_match(i);
                emit(text, chars, i, end, pieces);
                i = end;
            }
        }
        break;
    case PreTokenizer::Llama3:
    case PreTokenizer::Qwen2: {
        const std::size_t max_digits = kind == PreTokenizer::Llama3 ? 3 : 1;
        const Scanner scanner(chars, n);
        for (std::size_t i = 0; i < n;) {
            const std::size_t end = scanner.llama3_match(i, max_digits);
            emit(text, chars, i, end, pieces);
            i = end;
        }
        break;
    }
    }
}

}  // namespace folio::engine
