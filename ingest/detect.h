#pragma once
#include <string>
#include "ingest/page.h"

namespace folio::ingest {

// The file's type from its content (magic bytes, then a text/encoding check),
// never from its extension; the extension only separates Markdown from plain
// text. Throws IngestError when the file cannot be read.
FileType detect_file_type(const std::string& path);

}  // namespace folio::ingest
