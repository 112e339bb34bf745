#pragma once
#include <string>
#include <vector>
#include "ingest/page.h"

namespace folio::ingest {

// A plain-text or Markdown file as pages: form feeds separate pages, otherwise
// the whole file is page 1. Words carry no boxes. Reads UTF-8, UTF-16 with a
// byte order mark, and Windows-1252 (legacy Western text: "café" saved by an
// old editor); throws IngestError naming the line of the first bad byte when
// the file is none of these (GBK, Shift-JIS, a Cyrillic code page) or binary.
std::vector<Page> read_text_file(const std::string& path);

}  // namespace folio::ingest
