#include "engine/pretokenize.h"

#include <algorithm>
#include <cstdint>
#include <iterator>
#include <stdexcept>
#include <string>

#include "engine/unicode_data.h"

namespace folio::engine {

namespace {

enum CharClass : std::uint8_t {
    kLetter = 1,           // \p{L}
    kNumber = 2,           // \p{N}
    kSpace = 4,            // \s
    kPunctOrSymbol = 8,    // \p{P} or \p{S}
    kMark = 16,            // \p{M}
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
    if (category >= GeneralCategory::Mc && category <= GeneralCategory::Mn)
        return kMark;
    if (category >= GeneralCategory::Pc && category <= GeneralCategory::So)
        return kPunctOrSymbol;
    return 0;
}

struct CodePointRange {
    char32_t first, last;  // inclusive
};

template <std::size_t N>
bool in_ranges(const CodePointRange (&ranges)[N], char32_t c) {
    const auto* range = std::upper_bound(std::begin(ranges), std::end(ranges), c,
                                         [](char32_t value, const CodePointRange& r) { return value < r.first; });
    return range != std::begin(ranges) && c <= (range - 1)->last;
}

// DeepSeek LLM's letter class (its second split), as its tokenizer.json lists
// it: the cased letters of Latin, Greek, Coptic, Cyrillic, Armenian, Georgian,
// Cherokee, Glagolitic, Deseret, Osage, Old Hungarian, Warang Citi and Adlam.
constexpr CodePointRange kDeepSeekLetters[] = {
    {0x41, 0x5A}, {0x61, 0x7A}, {0xB5, 0xB5}, {0xC0, 0xD6}, {0xD8, 0xF6}, {0xF8, 0x1BA}, {0x1BC, 0x1BF},
    {0x1C4, 0x293}, {0x295, 0x2AF}, {0x370, 0x373}, {0x376, 0x377}, {0x37B, 0x37D}, {0x37F, 0x37F},
    {0x386, 0x386}, {0x388, 0x38A}, {0x38C, 0x38C}, {0x38E, 0x3A1}, {0x3A3, 0x3F5}, {0x3F7, 0x481},
    {0x48A, 0x52F}, {0x531, 0x556}, {0x10A0, 0x10C5}, {0x13A0, 0x13F5}, {0x13F8, 0x13FD}, {0x1C90, 0x1CBA},
    {0x1CBD, 0x1CBF}, {0x1D00, 0x1D2B}, {0x1D6B, 0x1D77}, {0x1D79, 0x1D9A}, {0x1E00, 0x1F15}, {0x1F18, 0x1F1D},
    {0x1F20, 0x1F45}, {0x1F48, 0x1F4D}, {0x1F50, 0x1F57}, {0x1F59, 0x1F59}, {0x1F5B, 0x1F5B}, {0x1F5D, 0x1F5D},
    {0x1F5F, 0x1F7D}, {0x1F80, 0x1FB4}, {0x1FB6, 0x1FBC}, {0x1FBE, 0x1FBE}, {0x1FC2, 0x1FC4}, {0x1FC6, 0x1FCC},
    {0x1FD0, 0x1FD3}, {0x1FD6, 0x1FDB}, {0x1FE0, 0x1FEC}, {0x1FF2, 0x1FF4}, {0x1FF6, 0x1FFC}, {0x2102, 0x2102},
    {0x2107, 0x2107}, {0x210A, 0x2113}, {0x2115, 0x2115}, {0x2119, 0x211D}, {0x2124, 0x2124}, {0x2126, 0x2126},
    {0x2128, 0x2128}, {0x212A, 0x212D}, {0x212F, 0x2134}, {0x2139, 0x2139}, {0x213C, 0x213F}, {0x2145, 0x2149},
    {0x214E, 0x214E}, {0x2183, 0x2184}, {0x2C00, 0x2C7B}, {0x2C7E, 0x2CE4}, {0x2CEB, 0x2CEE}, {0x2CF2, 0x2CF3},
    {0xA640, 0xA66D}, {0xA680, 0xA69B}, {0xA722, 0xA76F}, {0xA771, 0xA787}, {0xA78B, 0xA78E}, {0xAB70, 0xABBF},
    {0xFB00, 0xFB06}, {0xFB13, 0xFB17}, {0xFF21, 0xFF3A}, {0xFF41, 0xFF5A}, {0x10400, 0x1044F}, {0x104B0, 0x104D3},
    {0x104D8, 0x104FB}, {0x10C80, 0x10CB2}, {0x10CC0, 0x10CF2}, {0x118A0, 0x118DF}, {0x1E900, 0x1E943},
};
// [!-/:-~！-／：-～‘-‟　-。]: ASCII punctuation and symbols, and with them the
// ASCII letters (:-~ spans A-Z and a-z); their full-width forms; curly quotes;
// the ideographic space, comma and full stop.
constexpr CodePointRange kDeepSeekPunctuation[] = {
    {0x21, 0x2F}, {0x3A, 0x7E}, {0x2018, 0x201F}, {0x3000, 0x3002}, {0xFF01, 0xFF0F}, {0xFF1A, 0xFF5E},
};
// [一-龥ࠀ-一가-퟿]: from Samaritan (U+0800) through the CJK ideographs to U+9FA5,
// and Hangul syllables with what follows them up to the surrogates.
constexpr CodePointRange kDeepSeekCjk[] = {{0x800, 0x9FA5}, {0xAC00, 0xD7FF}};
// DeepSeek-V3's [一-龥぀-ゟ゠-ヿ]: CJK ideographs to U+9FA5, hiragana, katakana.
constexpr CodePointRange kDeepSeekV3Cjk[] = {{0x3040, 0x30FF}, {0x4E00, 0x9FA5}};

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
            // As U+FFFD REPLACEMENT CHARACTER, a symbol.
            code_point = 0xFFFD, length = 1, classes = kPunctOrSymbol;
        } else if (code_point < 0x80) {
            const char c = static_cast<char>(code_point);
            classes = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ? kLetter
                      : (c >= '0' && c <= '9')                         ? kNumber
                      : (c == ' ' || (c >= '\t' && c <= '\r'))         ? kSpace
                      : (c > ' ' && c < 0x7F)                          ? kPunctOrSymbol
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
        if (has(i, kNumber))
            return numbers_match(i, max_digits);
        const std::size_t after_space = is(i, ' ') && i + 1 < end_ && is_other(i + 1) ? i + 1 : i;
        if (is_other(after_space))
            return line_breaks_end(other_run_end(after_space));
        return space_run_match(i);
    }

    // \p{N}{1,max_digits}, or i.
    std::size_t numbers_match(std::size_t i, std::size_t max_digits) const {
        std::size_t k = i;
        while (k < end_ && k - i < max_digits && has(k, kNumber))
            ++k;
        return k;
    }

    // DeepSeek LLM's five splits, in the order they run:
    //   [\r\n]
    //   \s?[A-Za-zµÀ-ÖØ-öø-ƺ...𞤀-𞥃]+   (kDeepSeekLetters)
    //   \s?[!-/:-~！-／：-～‘-‟　-。]+    (kDeepSeekPunctuation)
    //   \s+$
    //   [一-龥ࠀ-一가-퟿]+                 (kDeepSeekCjk)
    // Each returns i where it does not match at i.
    std::size_t deepseek_line_break_match(std::size_t i) const { return is_line_break(i) ? i + 1 : i; }
    std::size_t deepseek_letters_match(std::size_t i) const { return space_then_run(i, kDeepSeekLetters); }
    std::size_t deepseek_punctuation_match(std::size_t i) const {
        return space_then_run(i, kDeepSeekPunctuation);
    }
    // Oniguruma's $ also matches before a \n, but the first split left no
    // piece with a \n in it but "\n" itself.
    std::size_t deepseek_trailing_space_match(std::size_t i) const {
        return has(i, kSpace) && run_end(i, kSpace) == end_ ? end_ : i;
    }
    std::size_t deepseek_cjk_match(std::size_t i) const { return ranges_run_end(i, kDeepSeekCjk); }

    // DeepSeek-V3's three splits: \p{N}{1,3}, then [一-龥぀-ゟ゠-ヿ]+
    // (kDeepSeekV3Cjk), then
    //   [!"#$%&'()*+,\-./:;<=>?@\[\\\]^_`{|}~][A-Za-z]+|[^\r\n\p{L}\p{P}\p{S}]?[\p{L}\p{M}]+
    //   | ?[\p{P}\p{S}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+
    std::size_t deepseek_v3_cjk_match(std::size_t i) const { return ranges_run_end(i, kDeepSeekV3Cjk); }
    std::size_t deepseek_v3_match(std::size_t i) const {
        if (is_ascii_punctuation(i) && i + 1 < end_ && is_ascii_letter(i + 1)) {
            std::size_t k = i + 1;
            while (k < end_ && is_ascii_letter(k))
                ++k;
            return k;
        }
        const bool may_lead_letters = !is_line_break(i) && !has(i, kLetter | kPunctOrSymbol);
        if (may_lead_letters && i + 1 < end_ && has(i + 1, kLetter | kMark))
            return run_end(i + 1, kLetter | kMark);
        if (has(i, kLetter | kMark))
            return run_end(i, kLetter | kMark);
        const std::size_t after_space = is(i, ' ') && i + 1 < end_ && has(i + 1, kPunctOrSymbol) ? i + 1 : i;
        if (has(after_space, kPunctOrSymbol))
            return line_breaks_end(run_end(after_space, kPunctOrSymbol));
        return has(i, kSpace) ? space_run_match(i) : i;
    }

private:
    bool has(std::size_t i, std::uint8_t cls) const { return (chars_[i].classes & cls) != 0; }
    bool is(std::size_t i, char32_t c) const { return chars_[i].code_point == c; }
    // [^\s\p{L}\p{N}]
    bool is_other(std::size_t i) const { return (chars_[i].classes & (kLetter | kNumber | kSpace)) == 0; }
    bool is_line_break(std::size_t i) const { return is(i, '\r') || is(i, '\n'); }

    std::size_t run_end(std::size_t i, std::uint8_t cls) const {
        while (i < end_ && has(i, cls))
            ++i;
        return i;
    }
    bool is_ascii_letter(std::size_t i) const {
        const char32_t c = chars_[i].code_point;
        return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
    }
    bool is_ascii_punctuation(std::size_t i) const {
        return chars_[i].code_point < 0x7F && has(i, kPunctOrSymbol);
    }
    template <std::size_t N>
    std::size_t ranges_run_end(std::size_t i, const CodePointRange (&ranges)[N]) const {
        while (i < end_ && in_ranges(ranges, chars_[i].code_point))
            ++i;
        return i;
    }
    // \s?[set]+
    template <std::size_t N>
    std::size_t space_then_run(std::size_t i, const CodePointRange (&ranges)[N]) const {
        if (has(i, kSpace) && i + 1 < end_ && in_ranges(ranges, chars_[i + 1].code_point))
            return ranges_run_end(i + 1, ranges);
        return ranges_run_end(i, ranges);
    }
    std::size_t other_run_end(std::size_t i) const {
        while (i < end_ && is_other(i))
            ++i;
        return i;
    }

    // \s*[\r\n]+|\s+(?!\S)|\s+ at a whitespace character: greedy \s* backs
    // off to the run's last CR or LF; without one, whitespace_match.
    std::size_t space_run_match(std::size_t i) const {
        for (std::size_t k = run_end(i, kSpace); k > i; --k) {
            if (is_line_break(k - 1))
                return k;
        }
        return whitespace_match(i);
    }
    // [\r\n]* from k.
    std::size_t line_breaks_end(std::size_t k) const {
        while (k < end_ && is_line_break(k))
            ++k;
        return k;
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

// A piece: characters [begin, end).
struct Span {
    std::uint32_t begin, end;
};

// One Split(behavior: Isolated) of Hugging Face tokenizers over every span:
// where match(scanner, i) > i a piece is matched, and the text between
// matches is a piece too.
template <class Match>
void split_spans(const std::vector<Char>& chars, std::vector<Span>& spans, Match match) {
    thread_local std::vector<Span> next;
    next.clear();
    for (const Span span : spans) {
        const Scanner scanner(chars, span.end);
        std::uint32_t gap = span.begin;
        for (std::uint32_t i = span.begin; i < span.end;) {
            const auto end = static_cast<std::uint32_t>(match(scanner, i));
            if (end == i) {
                ++i;
                continue;
            }
            if (gap < i)
                next.push_back({gap, i});
            next.push_back({i, end});
            i = gap = end;
        }
        if (gap < span.end)
            next.push_back({gap, span.end});
    }
    spans.swap(next);
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
    if (name == "deepseek-llm")
        return PreTokenizer::DeepSeekLlm;
    if (name == "deepseek-v3")
        return PreTokenizer::DeepSeekV3;
    throw std::invalid_argument("pre-tokenizer '" + std::string(name) + "' is not supported");
}

void pre_tokenize(PreTokenizer kind, std::string_view text, std::vector<std::string_view>& pieces) {
    thread_local std::vector<Char> chars;
    thread_local std::vector<Span> spans;
    decode_text(text, chars);
    spans.assign(1, {0, static_cast<std::uint32_t>(chars.size() - 1)});
    const auto split = [&](auto match) { split_spans(chars, spans, match); };
    const auto digit_alone = [](const Scanner& s, std::size_t i) { return s.numbers_match(i, 1); };
    switch (kind) {
    case PreTokenizer::Gpt2:
        split([](const Scanner& s, std::size_t i) { return s.gpt2_match(i); });
        break;
    case PreTokenizer::SmolLM:
        // Sequence[Digits(individual_digits=true), ByteLevel].
        split(digit_alone);
        split([](const Scanner& s, std::size_t i) { return s.gpt2_match(i); });
        break;
    case PreTokenizer::Llama3:
        split([](const Scanner& s, std::size_t i) { return s.llama3_match(i, 3); });
        break;
    case PreTokenizer::Qwen2:
        split([](const Scanner& s, std::size_t i) { return s.llama3_match(i, 1); });
        break;
    case PreTokenizer::DeepSeekLlm:
        // Five Splits, then Digits(individual_digits=true).
        split([](const Scanner& s, std::size_t i) { return s.deepseek_line_break_match(i); });
        split([](const Scanner& s, std::size_t i) { return s.deepseek_letters_match(i); });
        split([](const Scanner& s, std::size_t i) { return s.deepseek_punctuation_match(i); });
        split([](const Scanner& s, std::size_t i) { return s.deepseek_trailing_space_match(i); });
        split([](const Scanner& s, std::size_t i) { return s.deepseek_cjk_match(i); });
        split(digit_alone);
        break;
    case PreTokenizer::DeepSeekV3:
        split([](const Scanner& s, std::size_t i) { return s.numbers_match(i, 3); });
        split([](const Scanner& s, std::size_t i) { return s.deepseek_v3_cjk_match(i); });
        split([](const Scanner& s, std::size_t i) { return s.deepseek_v3_match(i); });
        break;
    }
    for (const Span span : spans)
        pieces.push_back(text.substr(chars[span.begin].byte_offset, chars[span.end].byte_offset - chars[span.begin].byte_offset));
}

}  // namespace folio::engine
