#pragma once
// UTF-8 decoding and encoding for text checks. Private to ingest/.

#include <string>
#include <string_view>

namespace folio::ingest {

inline constexpr char32_t kInvalidCodePoint = 0xFFFFFFFF;

// The code point starting at text[pos], advancing pos past it. A malformed,
// overlong, surrogate or truncated sequence gives kInvalidCodePoint and
// advances pos by one byte.
char32_t next_code_point(std::string_view text, size_t& pos);

void append_utf8(std::string& out, char32_t code_point);

// The Latin ligatures U+FB00..U+FB06 (ﬀ ﬁ ﬂ ﬃ ﬄ ﬅ ﬆ) as their letters, as
// NFKC has them: typesetters draw "fi" as one glyph, and a PDF's text can
// carry that glyph's code point where the reader, a search and a model
// expect the two letters. Everything else is copied as it is.
std::string spell_out_ligatures(std::string_view text);

}  // namespace folio::ingest
