#include "ingest/char_class.h"

namespace folio::ingest::char_class {

bool is_ascii_letter(char32_t c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); }

bool is_digit(char32_t c) { return (c >= '0' && c <= '9') || (c >= 0xFF10 && c <= 0xFF19); }

bool is_latin_letter(char32_t c) {
    return is_ascii_letter(c) || (c >= 0xC0 && c <= 0x24F && c != 0xD7 && c != 0xF7) || (c >= 0xFB00 && c <= 0xFB06);
}

bool is_latin_vowel(char32_t c) {
    switch (c) {
    case 'a': case 'e': case 'i': case 'o': case 'u':
    case 'A': case 'E': case 'I': case 'O': case 'U': return true;
    default: break;
    }
    // À..Æ È..Ï Ò..Ö Ø..Ü, and their lower case 0x20 above.
    const char32_t upper = c >= 0xE0 && c <= 0xFE ? c - 0x20 : c;
    return (upper >= 0xC0 && upper <= 0xC6) || (upper >= 0xC8 && upper <= 0xCF) || (upper >= 0xD2 && upper <= 0xD6) ||
           (upper >= 0xD8 && upper <= 0xDC);
}

bool is_cjk(char32_t c) {
    return (c >= 0x3040 && c <= 0x30FF) ||   // kana
           (c >= 0x3400 && c <= 0x4DBF) ||   // CJK extension A
           (c >= 0x4E00 && c <= 0x9FFF) ||   // CJK unified ideographs
           (c >= 0xAC00 && c <= 0xD7AF) ||   // Hangul syllables
           (c >= 0xF900 && c <= 0xFAFF) ||   // CJK compatibility ideographs
           (c >= 0x20000 && c <= 0x2FFFF);   // CJK extensions B..
}

bool is_other_letter(char32_t c) {
    return (c >= 0x370 && c <= 0x1FFF) || (c >= 0xFF21 && c <= 0xFF3A) || (c >= 0xFF41 && c <= 0xFF5A);
}

bool is_letter(char32_t c) { return is_latin_letter(c) || is_cjk(c) || is_other_letter(c); }

bool is_private_use(char32_t c) { return (c >= 0xE000 && c <= 0xF8FF) || c >= 0xF0000; }

}  // namespace folio::ingest::char_class
