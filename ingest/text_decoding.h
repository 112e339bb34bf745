#pragma once
// Whether bytes are text, in which encoding, and their UTF-8. Type detection
// and the text-file reader share it, so a file detected as text is one the
// reader can decode. Private to ingest/.

#include <string>
#include <string_view>

namespace folio::ingest {

enum class TextEncoding { Utf8, Utf16Le, Utf16Be, Windows1252 };

struct TextClassification {
    bool is_text = false;
    TextEncoding encoding = TextEncoding::Utf8;
    std::string reason;  // when not text: why, one line
};

// Accepts UTF-8 (with or without a byte order mark), UTF-16 with a byte order
// mark, and, failing UTF-8, Windows-1252 when the bytes look like Western
// single-byte text: non-ASCII bytes scattered among ASCII, as in "café". Bytes
// in runs, as GBK, Shift-JIS or Cyrillic single-byte text has them, would
// decode to nonsense and are refused. NUL bytes or many control characters mean
// binary. `complete` is false when `bytes` is only the start of a file: a
// sequence cut off at the end is then not an error.
TextClassification classify_text(std::string_view bytes, bool complete);

// The text as UTF-8 without a byte order mark. Throws IngestError with the
// reason when classify_text says it is not text.
std::string decode_text(std::string_view bytes);

}  // namespace folio::ingest
