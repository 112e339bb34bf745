#pragma once
// The page model every ingestion path produces: text-layer PDFs, OCR'd scans,
// images and plain text all end up as a list of Page values.

#include <cstdint>
#include <string>
#include <vector>

namespace folio::ingest {

// Axis-aligned box in page coordinates: PDF points (1/72 inch), origin at the
// top-left corner of the page as displayed (after /Rotate and after any
// orientation correction OCR applied), y growing downwards.
struct Box {
    float x0 = 0, y0 = 0, x1 = 0, y1 = 0;
    float width() const { return x1 - x0; }
    float height() const { return y1 - y0; }
};

struct Word {
    std::string text;          // UTF-8, no surrounding whitespace
    Box box;
    float confidence = -1;     // OCR confidence 0..100; -1 for a PDF text layer
    float font_size = 0;       // points; 0 when unknown (OCR: estimated from box height)
    bool bold = false;         // from the font name (text layer only)
    bool space_after = true;   // false when the next word continues this one (hyphen split, CJK)
    bool line_end = false;     // last word of a text line
    bool block_end = false;    // last word of a block (paragraph, column, table cell); implies line_end
};

struct Page {
    int number = 0;                // 1-based
    float width = 0, height = 0;   // points
    std::vector<Word> words;       // in reading order
    std::string text;              // reading-order text, lines separated by '\n', blocks by "\n\n"
    bool ocr = false;              // text came from OCR rather than a text layer
    float mean_confidence = -1;    // mean OCR word confidence 0..100; -1 when not OCR
    int rotation = 0;              // degrees clockwise OCR rotated the scan to make it upright
    float skew_degrees = 0;        // skew OCR corrected: degrees the scan's text ran anticlockwise (uphill)
    std::string error;             // non-empty: this page failed (one line); text may be empty
};

enum class FileType { Unknown, Pdf, Png, Jpeg, Tiff, Text, Markdown };

const char* file_type_name(FileType type);

// One line naming the first failed page and how many more failed
// ("page 3: OCR timed out after 120 s (and 2 more pages failed)"); empty when
// every page is fine.
std::string summarize_page_errors(const std::vector<Page>& pages);

struct OcrOptions {
    std::string languages = "eng";     // Tesseract form: "eng+chi_sim"
    int dpi = 300;                     // render resolution for scanned PDF pages
    long long max_pixels = 150'000'000; // refuse to render/OCR a page above this many pixels
    int page_timeout_seconds = 120;    // a page whose OCR runs longer fails with a timeout
};

enum class OcrMode { Auto, Always, Never };

}  // namespace folio::ingest
