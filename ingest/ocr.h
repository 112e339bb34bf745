#pragma once
// Tesseract (LSTM engine) over page images: orientation detection, deskew,
// recognition with word boxes and confidences.

#include <memory>
#include <string>
#include "ingest/page.h"
#include "ingest/pdf_document.h"

namespace folio::ingest {

class OcrEngine {
public:
    // Loads the traineddata for options.languages once; throws IngestError when
    // a language is not installed (naming it).
    explicit OcrEngine(const OcrOptions& options);
    ~OcrEngine();
    OcrEngine(const OcrEngine&) = delete;
    OcrEngine& operator=(const OcrEngine&) = delete;

    // Renders the page at options.dpi and recognizes it. Boxes come back in
    // page points (top-left origin, upright after orientation correction; a
    // corrected skew is not undone in them, so they sit on the scan as it is).
    Page recognize_pdf_page(const PdfDocument& pdf, int page_number);
    // Pages of an image file: 1 for PNG/JPEG, the frame count of a TIFF.
    // Throws IngestError for an unreadable/corrupt image or one over max_pixels
    // (checked from the header, before decoding).
    static int image_page_count(const std::string& path, FileType type);
    Page recognize_image_page(const std::string& path, FileType type, int page_number);
    // Recognizes a raster (used by both of the above, and by tests).
    Page recognize(const GrayImage& image, int page_number);

private:
    struct Impl;
    std::unique_ptr<Impl> impl_;
};

}  // namespace folio::ingest
