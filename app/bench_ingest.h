#pragma once
// `folio bench ingest`: Folio's ingest throughput against the reference tools
// (pdftotext, the tesseract CLI) on the same files, measured in one run.

#include <string>
#include <vector>

namespace folio::app {

struct IngestBenchOptions {
    std::vector<std::string> paths;  // PDFs and folders of PDFs
    int ocr_pages = 6;               // pages rendered at 300 DPI for the OCR comparison
    int jobs = 0;                    // workers for the text-PDF run; 0 = one per core
};

// Prints the figures (one JSON object with as_json); returns the exit status.
int run_ingest_bench(const IngestBenchOptions& options, bool as_json);

}  // namespace folio::app
