#pragma once
// One open PDF (Poppler). Poppler objects are not thread-safe: one
// PdfDocument per worker process, used from one thread.

#include <memory>
#include <string>
#include <vector>
#include "ingest/page.h"

namespace poppler { class document; }

namespace folio::ingest {

// An 8-bit grayscale raster, row-major, `stride` bytes per row.
struct GrayImage {
    int width = 0, height = 0, stride = 0;
    float dpi = 0;
    std::vector<unsigned char> pixels;
};

class PdfDocument {
public:
    // Throws IngestError: unreadable file, not a PDF / damaged, encrypted and
    // no (or a wrong) password, zero pages.
    static PdfDocument open(const std::string& path, const std::string& password = {});
    PdfDocument(PdfDocument&&) noexcept;
    PdfDocument& operator=(PdfDocument&&) noexcept;
    ~PdfDocument();

    int page_count() const;
    // Words with boxes and fonts in Poppler's reading order, and the page text
    // built from them. ocr=false. page_number is 1-based.
    Page text_layer(int page_number) const;
    // Renders a page at `dpi`; throws IngestError when it would exceed
    // max_pixels (checked before any allocation).
    GrayImage render(int page_number, int dpi, long long max_pixels) const;
    // Page size in points, as displayed (after /Rotate).
    std::pair<float, float> page_size(int page_number) const;

private:
    explicit PdfDocument(std::unique_ptr<poppler::document> doc);
    std::unique_ptr<poppler::document> doc_;
};

// True when a text layer carries real text: enough letters/digits, and not the
// mojibake of a font without a usable ToUnicode map. A page failing this is OCR'd
// (in OcrMode::Auto).
bool has_usable_text(const Page& page);

}  // namespace folio::ingest
