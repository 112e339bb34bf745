#pragma once
#include <string>
#include <vector>
#include "ingest/page.h"

namespace folio::ingest {

// A plain-text or Markdown file as pages: form feeds separate pages, otherwise
// the whole file is page 1. Words carry no boxes. Throws IngestError when the
// file is not valid UTF-8 text.
std::vector<Page> read_text_file(const std::string& path);

}  // namespace folio::ingest
