#include "ingest/pdf_document.h"

#include <poppler-document.h>
#include <poppler-global.h>
#include <poppler-image.h>
#include <poppler-page-renderer.h>
#include <poppler-page.h>

#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstring>
#include <mutex>

#include "ingest/error.h"
#include "ingest/file_bytes.h"
#include "ingest/page_text.h"
#include "ingest/utf8.h"

namespace folio::ingest {

namespace {

void discard_poppler_message(const std::string&, void*) {}

// Poppler prints syntax warnings for every slightly damaged file to stderr;
// they mean nothing to the user, and real failures surface as errors below.
void silence_poppler() {
    static std::once_flag once;
    std::call_once(once, [] { poppler::set_debug_error_function(discard_poppler_message, nullptr); });
}

// Readers are required to find "%%EOF" within the last 1024 bytes (PDF 32000-1
// §7.5.5 implementation note); a file cut short by an interrupted download or
// copy loses it. Poppler would otherwise reconstruct what it can and silently
// return a document missing its later pages.
void check_pdf_envelope(const std::string& path) {
    if (read_file_head(path, 1024).find("%PDF-") == std::string::npos)
        throw IngestError("not a PDF file (no %PDF header)");
    if (read_file_tail(path, 1024).find("%%EOF") == std::string::npos)
        throw IngestError("truncated PDF: the file ends before its end-of-file marker (incomplete download or copy?)");
}

std::string to_utf8(const poppler::ustring& text) {
    const poppler::byte_array bytes = text.to_utf8();
    return std::string(bytes.begin(), bytes.end());
}

// "ABCDEF+Arial-BoldMT" → bold. Subset prefixes and foundry suffixes vary; the
// weight words are what producers agree on.
bool font_name_is_bold(std::string name) {
    std::transform(name.begin(), name.end(), name.begin(),
                   [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
    for (const char* weight : {"bold", "black", "heavy", "semibold", "demi"})
        if (name.find(weight) != std::string::npos) return true;
    return false;
}

}  // namespace

PdfDocument::PdfDocument(std::unique_ptr<poppler::document> doc) : doc_(std::move(doc)) {}
PdfDocument::PdfDocument(PdfDocument&&) noexcept = default;
PdfDocument& PdfDocument::operator=(PdfDocument&&) noexcept = default;
PdfDocument::~PdfDocument() = default;

PdfDocument PdfDocument::open(const std::string& path, const std::string& password) {
    silence_poppler();
    check_pdf_envelope(path);
    // The password is tried as both owner and user password, like pdftotext's
    // -opw/-upw together: the user has one password and does not know which.
    std::unique_ptr<poppler::document> doc(poppler::document::load_from_file(path, password, password));
    if (!doc) throw IngestError("damaged PDF: Poppler cannot read its structure");
    if (doc->is_locked()) {
        if (password.empty()) throw IngestError("encrypted PDF: needs a password (--password)");
        throw IngestError("encrypted PDF: wrong password");
    }
    if (doc->pages() <= 0) throw IngestError("PDF has no pages");
    return PdfDocument(std::move(doc));
}

int PdfDocument::page_count() const { return doc_->pages(); }

namespace {

std::unique_ptr<poppler::page> load_page(const poppler::document& doc, int page_number) {
    if (page_number < 1 || page_number > doc.pages())
        throw IngestError("page " + std::to_string(page_number) + " out of range (1.." +
                          std::to_string(doc.pages()) + ")");
    std::unique_ptr<poppler::page> page(doc.create_page(page_number - 1));
    if (!page) throw IngestError("damaged PDF: cannot load page " + std::to_string(page_number));
    return page;
}

// Displayed size: the crop box, with width and height swapped for /Rotate 90 or 270.
std::pair<float, float> displayed_size(const poppler::page& page) {
    const poppler::rectf crop = page.page_rect(poppler::crop_box);
    const auto width = static_cast<float>(crop.width());
    const auto height = static_cast<float>(crop.height());
    const poppler::page::orientation_enum orientation = page.orientation();
    if (orientation == poppler::page::landscape || orientation == poppler::page::seascape)
        return {height, width};
    return {width, height};
}

}  // namespace

std::pair<float, float> PdfDocument::page_size(int page_number) const {
    return displayed_size(*load_page(*doc_, page_number));
}

Page PdfDocument::text_layer(int page_number) const {
    const std::unique_ptr<poppler::page> page = load_page(*doc_, page_number);
    Page result;
    result.number = page_number;
    std::tie(result.width, result.height) = displayed_size(*page);

    // Poppler's text_list comes in the reading order pdftotext prints (flows,
    // blocks, lines, words), with boxes in displayed coordinates, but without
    // the line and block breaks: those come from its text output.
    std::vector<PositionedWord> words;
    for (const poppler::text_box& box : page->text_list(poppler::page::text_list_include_font)) {
        PositionedWord word;
        word.word.text = spell_out_ligatures(to_utf8(box.text()));
        if (word.word.text.empty()) continue;
        const poppler::rectf bbox = box.bbox();
        word.word.box = {static_cast<float>(bbox.left()), static_cast<float>(bbox.top()),
                         static_cast<float>(bbox.right()), static_cast<float>(bbox.bottom())};
        word.word.font_size = static_cast<float>(box.get_font_size());
        word.word.bold = box.has_font_info() && font_name_is_bold(box.get_font_name());
        word.word.space_after = box.has_space_after();
        word.rotation = box.rotation();
        words.push_back(std::move(word));
    }
    const std::string layout_text =
        spell_out_ligatures(to_utf8(page->text(poppler::rectf(), poppler::page::non_raw_non_physical_layout)));
    result.words = mark_lines_and_blocks(std::move(words), layout_text);
    result.text = build_page_text(result.words);
    return result;
}

GrayImage PdfDocument::render(int page_number, int dpi, long long max_pixels) const {
    const std::unique_ptr<poppler::page> page = load_page(*doc_, page_number);
    if (dpi <= 0) throw IngestError("render resolution must be positive, got " + std::to_string(dpi));
    const auto [width_pt, height_pt] = displayed_size(*page);
    // Splash rounds the device size up; check the same figure it will allocate.
    const double width_px = std::ceil(width_pt * dpi / 72.0);
    const double height_px = std::ceil(height_pt * dpi / 72.0);
    if (width_px * height_px > static_cast<double>(max_pixels))
        throw IngestError("page " + std::to_string(page_number) + " at " + std::to_string(dpi) + " dpi would be " +
                          std::to_string(static_cast<long long>(width_px)) + "x" +
                          std::to_string(static_cast<long long>(height_px)) + " pixels, over the limit of " +
                          std::to_string(max_pixels));

    poppler::page_renderer renderer;
    renderer.set_image_format(poppler::image::format_gray8);
    renderer.set_render_hints(poppler::page_renderer::antialiasing | poppler::page_renderer::text_antialiasing);
    const poppler::image image = renderer.render_page(page.get(), dpi, dpi);
    if (!image.is_valid()) throw IngestError("cannot render page " + std::to_string(page_number));

    GrayImage gray;
    gray.width = image.width();
    gray.height = image.height();
    gray.stride = gray.width;
    gray.dpi = static_cast<float>(dpi);
    gray.pixels.resize(static_cast<size_t>(gray.width) * gray.height);
    const char* source = image.const_data();
    for (int y = 0; y < gray.height; ++y)
        std::memcpy(gray.pixels.data() + static_cast<size_t>(y) * gray.stride,
                    source + static_cast<size_t>(y) * image.bytes_per_row(), static_cast<size_t>(gray.width));
    return gray;
}

}  // namespace folio::ingest
