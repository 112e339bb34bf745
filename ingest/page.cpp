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

std::string summarize_page_errors(const std::vector<Page>& pages) {
    std::string summary;
    int failed = 0;
    for (const Page& page : pages) {
        if (page.error.empty()) continue;
        if (failed++ == 0) summary = "page " + std::to_string(page.number) + ": " + page.error;
    }
    if (failed > 1) summary += " (and " + std::to_string(failed - 1) + " more pages failed)";
    return summary;
}

}  // namespace folio::ingest
