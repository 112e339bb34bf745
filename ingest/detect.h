#pragma once
#include <string>
#include "ingest/page.h"

namespace folio::ingest {

// The file's type from its content (magic bytes, then a text/encoding check),
// never from its extension; the extension only separates Markdown from plain
// text. Text is what read_text_file can decode. Throws IngestError when the
// file cannot be read or is empty.
FileType detect_file_type(const std::string& path);

}  // namespace folio::ingest
