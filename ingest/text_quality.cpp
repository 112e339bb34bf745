// has_usable_text: whether a PDF text layer is real text or the mojibake of a
// font without a usable ToUnicode map, judged from character classes alone so
// that it works for any language and needs no dictionary.
//
// Thresholds were set on the finance corpus (every page with text passes)
// against its own pages turned into the mojibake real PDFs produce: glyph ids
// read as characters, shifted alphabets, private-use code points.

#include <string_view>

#include "ingest/pdf_document.h"
#include "ingest/char_class.h"
#include "ingest/utf8.h"

namespace folio::ingest {

namespace {

using namespace char_class;

// Fewer letters and digits than this is no text layer to speak of (a stamped
// page number on a scan).
constexpr size_t kMinLettersAndDigits = 10;
// Enough Latin letters for the vowel share to mean something.
constexpr size_t kMinLatinLettersForVowelShare = 40;

bool is_ascii_upper(char32_t c) { return c >= 'A' && c <= 'Z'; }
bool is_alnum(char32_t c) { return is_letter(c) || is_digit(c); }

// What fonts without a usable ToUnicode map produce: replacement and
// private-use characters, and glyph ids that land on control characters.
bool is_suspicious(char32_t c) {
    return c == kInvalidCodePoint || c == 0xFFFD || is_private_use(c) || c < 0x20 || (c >= 0x7F && c < 0xA0);
}

bool is_number_punctuation(char32_t c) { return c == ',' || c == '.' || c == '%' || c == '-' || c == '/'; }
bool is_word_punctuation(char32_t c) { return c == '-' || c == '\'' || c == 0x2019; }

// Lower case, UPPER CASE or Capitalized (judged on ASCII letters): "wORD" and
// "WoRd" are what a shifted alphabet looks like.
bool has_word_case(const std::u32string& letters) {
    bool seen_lower_after_first = false, seen_upper_after_first = false;
    for (size_t i = 1; i < letters.size(); ++i) {
        if (!is_ascii_letter(letters[i])) continue;
        (is_ascii_upper(letters[i]) ? seen_upper_after_first : seen_lower_after_first) = true;
    }
    if (!seen_upper_after_first) return true;                           // word, Word
    return !seen_lower_after_first && (is_ascii_upper(letters[0]) || !is_ascii_letter(letters[0]));  // WORD
}

// A token that could come from a dictionary or a table: a number, a Latin word
// with a vowel and a sane case pattern, or a word in a script judged elsewhere.
bool is_wordlike(std::u32string_view token) {
    while (!token.empty() && !is_alnum(token.front())) token.remove_prefix(1);
    while (!token.empty() && !is_alnum(token.back())) token.remove_suffix(1);
    if (token.empty()) return false;

    bool all_number = true, any_digit = false, all_latin = true, any_vowel = false, any_cjk = false,
         any_other_letter = false;
    std::u32string letters;
    for (const char32_t c : token) {
        if (is_digit(c)) any_digit = true;
        else if (!is_number_punctuation(c)) all_number = false;
        if (is_latin_letter(c)) {
            letters += c;
            any_vowel = any_vowel || is_latin_vowel(c) || c == 'y' || c == 'Y' || (c >= 0xFB00 && c <= 0xFB06);
        } else if (!is_word_punctuation(c)) {
            all_latin = false;
        }
        any_cjk = any_cjk || is_cjk(c);
        any_other_letter = any_other_letter || is_other_letter(c);
    }
    if (all_number && any_digit) return true;
    if (any_cjk || any_other_letter) return true;
    if (!all_latin || letters.empty()) return false;
    return letters.size() == 1 || (any_vowel && has_word_case(letters));
}

}  // namespace

bool has_usable_text(const Page& page) {
    size_t visible = 0, suspicious = 0, letters_and_digits = 0, latin_letters = 0, latin_vowels = 0;
    size_t tokens = 0, tokens_with_alnum = 0, wordlike_tokens = 0;
    std::u32string token;
    for (const Word& word : page.words) {
        token.clear();
        for (size_t pos = 0; pos < word.text.size();) token += next_code_point(word.text, pos);
        if (token.empty()) continue;
        bool any_alnum = false;
        for (const char32_t c : token) {
            ++visible;
            if (is_suspicious(c)) ++suspicious;
            if (is_alnum(c)) ++letters_and_digits, any_alnum = true;
            if (is_latin_letter(c)) {
                ++latin_letters;
                if (is_latin_vowel(c)) ++latin_vowels;
            }
        }
        ++tokens;
        if (any_alnum) ++tokens_with_alnum;
        if (is_wordlike(token)) ++wordlike_tokens;
    }
    if (letters_and_digits < kMinLettersAndDigits) return false;
    // The finance corpus's 1306 pages with text: no suspicious characters,
    // ≥ 64% of tokens with a letter or digit, ≥ 60% word-like, ≥ 33% vowels
    // among Latin letters. The same pages with glyph ids or a shifted
    // alphabet for text: ≤ 29% vowels. Private-use text has no letters at all.
    if (suspicious * 20 > visible) return false;
    if (tokens_with_alnum * 10 < tokens * 4) return false;
    if (wordlike_tokens * 10 < tokens * 4) return false;
    if (latin_letters >= kMinLatinLettersForVowelShare && latin_vowels * 100 < latin_letters * 30) return false;
    return true;
}

}  // namespace folio::ingest
