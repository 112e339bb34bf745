#include "ingest/page.h"

namespace folio::ingest {

const char* file_type_name(FileType type) {
    switch (type) {
    case FileType::Pdf: return "pdf";
    case FileType::Png: return "png";
    case FileType::Jpeg: return "jpeg";
    case FileType::Tiff: return "tiff";
    case FileType::Text: return "text";
    case FileType::Markdown: return "markdown";
    case FileType::Unknown: break;
    }
    return "unknown";
}

}  // namespace folio::ingest
