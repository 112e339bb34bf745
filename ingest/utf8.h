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

}  // namespace folio::ingest
