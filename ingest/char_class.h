#pragma once
// Character classes ingest judges text by, for the scripts Folio meets in
// practice (no ICU). Private to ingest/.

namespace folio::ingest::char_class {

bool is_ascii_letter(char32_t c);
bool is_digit(char32_t c);         // ASCII and fullwidth digits
bool is_latin_letter(char32_t c);  // ASCII, Latin-1, Latin Extended-A/B, ligatures ﬀ..ﬆ
bool is_latin_vowel(char32_t c);   // a e i o u, either case, with or without a Latin-1 accent
bool is_cjk(char32_t c);           // ideographs, kana, Hangul syllables
// Greek through the Indic, Southeast Asian and other alphabets up to U+1FFF,
// and fullwidth Latin letters.
bool is_other_letter(char32_t c);
bool is_letter(char32_t c);
bool is_private_use(char32_t c);

}  // namespace folio::ingest::char_class
