#include "ingest/ocr.h"

#include <leptonica/allheaders.h>
#include <tesseract/baseapi.h>
#include <tesseract/ocrclass.h>
#include <tesseract/resultiterator.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <mutex>
#include <numbers>
#include <numeric>

#include "ingest/char_class.h"
#include "ingest/error.h"
#include "ingest/file_bytes.h"
#include "ingest/page_text.h"
#include "ingest/utf8.h"

namespace folio::ingest {

namespace {

struct PixDestroyer {
    void operator()(Pix* pix) const { pixDestroy(&pix); }
};
using PixPtr = std::unique_ptr<Pix, PixDestroyer>;

struct TextDeleter {
    void operator()(char* text) const { delete[] text; }
};

// Scanners and fax machines: what an image without a usable resolution most
// likely is.
constexpr int kAssumedDpi = 300;
// A recognition with a lower mean word confidence may be of a page on its
// side or upside down; Tesseract's orientation detector then gets a say.
// Clean upright pages score over 90 (filing pages 92..97), pages recognized
// upside down or on their side 25..35.
constexpr float kConfidentMeanConfidence = 70;
// Leptonica's pixOrientDetect confidences: its own defaults for a decision
// (pixOrientCorrect: minupconf 8, minratio 2.5).
constexpr float kMinOrientationConfidence = 8.0f;
constexpr float kMinOrientationRatio = 2.5f;
// pixFindSkew: below this confidence the angle is noise; below this angle
// rotating costs more than it helps.
constexpr float kMinSkewConfidence = 3.0f;
constexpr float kMinSkewDegrees = 0.1f;

void silence_leptonica() {
    static std::once_flag once;
    std::call_once(once, [] { setMsgSeverity(L_SEVERITY_NONE); });
}

void check_pixel_count(int width, int height, long long max_pixels) {
    if (static_cast<long long>(width) * height > max_pixels)
        throw IngestError("image of " + std::to_string(width) + "x" + std::to_string(height) +
                          " pixels is over the limit of " + std::to_string(max_pixels));
}

PixPtr pix_from_gray_image(const GrayImage& image) {
    if (image.width <= 0 || image.height <= 0 || image.stride < image.width ||
        image.pixels.size() < static_cast<size_t>(image.stride) * image.height)
        throw IngestError("OCR: invalid image (" + std::to_string(image.width) + "x" + std::to_string(image.height) + ")");
    PixPtr pix(pixCreate(image.width, image.height, 8));
    if (!pix) throw IngestError("OCR: out of memory for a " + std::to_string(image.width) + "x" + std::to_string(image.height) + " image");
    l_uint32* data = pixGetData(pix.get());
    const int words_per_line = pixGetWpl(pix.get());
    for (int y = 0; y < image.height; ++y) {
        l_uint32* line = data + static_cast<size_t>(y) * words_per_line;
        const unsigned char* source = image.pixels.data() + static_cast<size_t>(y) * image.stride;
        for (int x = 0; x < image.width; ++x) SET_DATA_BYTE(line, x, source[x]);
    }
    return pix;
}

// A resolution is believable when it makes the image's long side 2 to 17
// inches, from a receipt stub to a tabloid page; many files carry a
// placeholder (72 or 96 dpi from an editor, 1 dpi) that would make a scanned
// letter page a metre tall.
int plausible_dpi(int stored_dpi, int width, int height) {
    const double long_side = std::max(width, height);
    if (stored_dpi >= 50 && stored_dpi <= 2400) {
        const double inches = long_side / stored_dpi;
        if (inches >= 2 && inches <= 17) return stored_dpi;
    }
    return kAssumedDpi;
}

// The page as black text on white, 1 bpp, for the orientation and skew
// measurements. A fixed threshold does: they count text pixels, and the
// renders and scans they see have dark text on light paper.
PixPtr binarize(Pix* gray) {
    PixPtr binary(pixConvertTo1(gray, 128));
    if (!binary) throw IngestError("OCR: out of memory binarizing the page");
    return binary;
}

// Clockwise quarter turns that make text upright according to Leptonica's
// ascender/descender statistics (tens of milliseconds); -1 when it cannot
// tell, as with sparse or non-Latin text. It is surest at 150..300 dpi.
int leptonica_upright_turns(Pix* binary, int dpi) {
    PixPtr sample(dpi > 300 ? pixReduceRankBinaryCascade(binary, 1, 0, 0, 0) : pixClone(binary));
    float up_confidence = 0, left_confidence = 0;
    if (!sample || pixOrientDetect(sample.get(), &up_confidence, &left_confidence, 0, 0) != 0) return -1;
    l_int32 orientation = L_TEXT_ORIENT_UNKNOWN;
    makeOrientDecision(up_confidence, left_confidence, kMinOrientationConfidence, kMinOrientationRatio, &orientation, 0);
    switch (orientation) {
    case L_TEXT_ORIENT_UP: return 0;
    case L_TEXT_ORIENT_LEFT: return 1;   // text turned a quarter anticlockwise
    case L_TEXT_ORIENT_DOWN: return 2;
    case L_TEXT_ORIENT_RIGHT: return 3;  // text turned a quarter clockwise
    default: return -1;
    }
}

// How many degrees the text of an upright page runs anticlockwise (uphill);
// 0 when there is none worth correcting or it cannot be measured.
float measure_skew_degrees(Pix* upright_binary) {
    float angle = 0, confidence = 0;
    if (pixFindSkew(upright_binary, &angle, &confidence) != 0) return 0;
    if (confidence < kMinSkewConfidence || std::fabs(angle) < kMinSkewDegrees) return 0;
    return angle;
}

char32_t first_code_point(const std::string& text) {
    size_t pos = 0;
    return text.empty() ? kInvalidCodePoint : next_code_point(text, pos);
}

char32_t last_code_point(const std::string& text) {
    if (text.empty()) return kInvalidCodePoint;
    size_t start = text.size() - 1;
    while (start > 0 && (static_cast<unsigned char>(text[start]) & 0xC0) == 0x80) --start;
    return next_code_point(text, start);
}

std::string trim_spaces(std::string_view text) {
    const size_t first = text.find_first_not_of(" \t\n\r");
    if (first == std::string_view::npos) return {};
    return std::string(text.substr(first, text.find_last_not_of(" \t\n\r") - first + 1));
}

// "infor-" at the end of a line and "mation" on the next: a word hyphenated
// across lines. Stricter than pdftotext's rule (any line ending in '-'),
// since OCR's line order is less certain than a text layer's.
bool splits_word_across_lines(const std::string& line_end_word, const std::string& next_word) {
    const size_t n = line_end_word.size();
    return n >= 2 && line_end_word[n - 1] == '-' && char_class::is_ascii_letter(static_cast<unsigned char>(line_end_word[n - 2])) &&
           !next_word.empty() && next_word[0] >= 'a' && next_word[0] <= 'z';
}

// A recognition of the page turned upright by `quarter_turns` clockwise
// quarter turns. Word boxes are in pixels of the upright page, before deskew.
struct Recognition {
    int quarter_turns = 0;
    float skew_degrees = 0;
    int width = 0, height = 0;  // upright page, pixels
    std::vector<Word> words;
    float mean_confidence = 0;
    // Orientation attempts compete on confident text: characters weighted by
    // their word's confidence.
    double score() const {
        double total = 0;
        for (const Word& word : words) total += word.confidence * static_cast<double>(word.text.size());
        return total;
    }
};

// Maps a box found on the image turned clockwise by `degrees` about its
// centre back to the image before the turn.
Box unrotate_box(const Box& box, float degrees, float center_x, float center_y) {
    const double radians = -degrees * std::numbers::pi / 180.0;
    const double cos_a = std::cos(radians), sin_a = std::sin(radians);
    Box result{1e9f, 1e9f, -1e9f, -1e9f};
    for (const auto& [x, y] : {std::pair{box.x0, box.y0}, {box.x1, box.y0}, {box.x0, box.y1}, {box.x1, box.y1}}) {
        const double dx = x - center_x, dy = y - center_y;
        const auto rx = static_cast<float>(center_x + dx * cos_a - dy * sin_a);
        const auto ry = static_cast<float>(center_y + dx * sin_a + dy * cos_a);
        result = {std::min(result.x0, rx), std::min(result.y0, ry), std::max(result.x1, rx), std::max(result.y1, ry)};
    }
    return result;
}

// Maps a box on a width x height image to the image turned clockwise by
// `quarter_turns` quarter turns (pixRotateOrth's convention).
Box turn_box(const Box& box, int quarter_turns, float width, float height) {
    switch (quarter_turns & 3) {
    case 1: return {height - box.y1, box.x0, height - box.y0, box.x1};
    case 2: return {width - box.x1, height - box.y1, width - box.x0, height - box.y0};
    case 3: return {box.y0, width - box.x1, box.y1, width - box.x0};
    default: return box;
    }
}

// Clockwise quarter turns that make a word upright, from the direction its
// baseline runs in image coordinates (y down): rightwards 0, downwards (text
// turned clockwise) 3, leftwards 2, upwards 1.
int baseline_upright_turns(int dx, int dy) {
    if (std::abs(dx) >= std::abs(dy)) return dx >= 0 ? 0 : 2;
    return dy > 0 ? 3 : 1;
}

using Deadline = std::chrono::steady_clock::time_point;

}  // namespace

struct OcrEngine::Impl {
    OcrOptions options;
    tesseract::TessBaseAPI recognizer;
    // Tesseract's orientation and script detector, loaded on first need.
    std::unique_ptr<tesseract::TessBaseAPI> orientation_detector;
    bool orientation_detector_missing = false;

    explicit Impl(const OcrOptions& ocr_options);
    void init_recognizer();
    int tesseract_upright_turns(Pix* gray, int dpi);
    Recognition recognize_upright(Pix* gray, Pix* binary, int dpi, int quarter_turns, Deadline deadline);
    Page recognize_pix(Pix* gray, int dpi, int page_number, float scale_to_points);
    [[noreturn]] void throw_timeout() const;
};

namespace {

// Tesseract reports problems through its debug channel; with debug_file set
// it writes them there instead of to the user's terminal.
void quiet_tesseract(tesseract::TessBaseAPI& api) { api.SetVariable("debug_file", "/dev/null"); }

bool valid_language_list(const std::string& languages) {
    if (languages.empty()) return false;
    return std::all_of(languages.begin(), languages.end(), [](char c) {
        return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' || c == '+';
    });
}

std::vector<std::string> split_languages(const std::string& languages) {
    std::vector<std::string> parts;
    size_t start = 0;
    while (start <= languages.size()) {
        const size_t plus = std::min(languages.find('+', start), languages.size());
        if (plus > start) parts.push_back(languages.substr(start, plus - start));
        start = plus + 1;
    }
    return parts;
}

}  // namespace

OcrEngine::Impl::Impl(const OcrOptions& ocr_options) : options(ocr_options) {
    silence_leptonica();
    init_recognizer();
}

void OcrEngine::Impl::init_recognizer() {
    if (!valid_language_list(options.languages))
        throw IngestError("invalid OCR language list \"" + options.languages + "\" (expected e.g. eng+chi_sim)");
    quiet_tesseract(recognizer);
    const bool started = recognizer.Init(nullptr, options.languages.c_str(), tesseract::OEM_LSTM_ONLY) == 0;
    // Tesseract starts when the first language loads and skips the others
    // that fail; each must be there.
    std::vector<std::string> loaded;
    if (started) recognizer.GetLoadedLanguagesAsVector(&loaded);
    for (const std::string& language : split_languages(options.languages))
        if (std::find(loaded.begin(), loaded.end(), language) == loaded.end())
            throw IngestError("OCR language not installed: " + language + " (install tesseract-ocr-" + language +
                              " or put " + language + ".traineddata in the tessdata folder)");
    recognizer.SetPageSegMode(tesseract::PSM_AUTO);
}

int OcrEngine::Impl::tesseract_upright_turns(Pix* gray, int dpi) {
    if (orientation_detector_missing) return -1;
    if (!orientation_detector) {
        auto detector = std::make_unique<tesseract::TessBaseAPI>();
        quiet_tesseract(*detector);
        if (detector->Init(nullptr, "osd", tesseract::OEM_TESSERACT_ONLY) != 0) {
            orientation_detector_missing = true;
            return -1;
        }
        detector->SetPageSegMode(tesseract::PSM_OSD_ONLY);
        orientation_detector = std::move(detector);
    }
    // Half resolution keeps characters large enough for the detector at a
    // quarter of the cost.
    PixPtr reduced(dpi >= 250 ? pixScale(gray, 0.5f, 0.5f) : pixClone(gray));
    if (!reduced) return -1;
    orientation_detector->SetImage(reduced.get());
    orientation_detector->SetSourceResolution(dpi >= 250 ? dpi / 2 : dpi);
    int orientation_degrees = 0;
    float orientation_confidence = 0;
    const bool detected = orientation_detector->DetectOrientationScript(&orientation_degrees, &orientation_confidence,
                                                                        nullptr, nullptr);
    orientation_detector->Clear();
    if (!detected) return -1;
    // Tesseract reports how far the text is turned clockwise; undoing it takes
    // the remaining clockwise turns.
    return (4 - orientation_degrees / 90) % 4;
}

void OcrEngine::Impl::throw_timeout() const {
    throw IngestError("OCR timed out after " + std::to_string(options.page_timeout_seconds) + " s");
}

Recognition OcrEngine::Impl::recognize_upright(Pix* gray, Pix* binary, int dpi, int quarter_turns,
                                               Deadline deadline) {
    Recognition result;
    result.quarter_turns = quarter_turns;
    PixPtr upright(quarter_turns == 0 ? pixClone(gray) : pixRotateOrth(gray, quarter_turns));
    PixPtr upright_binary(quarter_turns == 0 ? pixClone(binary) : pixRotateOrth(binary, quarter_turns));
    if (!upright || !upright_binary) throw IngestError("OCR: out of memory rotating the page");
    result.width = pixGetWidth(upright.get());
    result.height = pixGetHeight(upright.get());

    // Turning the page clockwise by its anticlockwise skew levels it.
    result.skew_degrees = measure_skew_degrees(upright_binary.get());
    PixPtr level(result.skew_degrees == 0
                     ? pixClone(upright.get())
                     : pixRotate(upright.get(), static_cast<float>(result.skew_degrees * std::numbers::pi / 180.0),
                                 L_ROTATE_AREA_MAP, L_BRING_IN_WHITE, 0, 0));
    if (!level) throw IngestError("OCR: out of memory deskewing the page");

    tesseract::ETEXT_DESC monitor;
    if (options.page_timeout_seconds > 0) {
        const auto left_ms = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now()).count();
        if (left_ms <= 0) throw_timeout();
        monitor.set_deadline_msecs(static_cast<int32_t>(left_ms));
    }
    recognizer.SetImage(level.get());
    recognizer.SetSourceResolution(dpi);
    const int status = recognizer.Recognize(&monitor);
    if (monitor.deadline_exceeded()) {
        recognizer.Clear();
        throw_timeout();
    }
    if (status != 0) {
        recognizer.Clear();
        throw IngestError("OCR failed on this page (Tesseract status " + std::to_string(status) + ")");
    }

    const float center_x = result.width / 2.0f, center_y = result.height / 2.0f;
    std::unique_ptr<tesseract::ResultIterator> it(recognizer.GetIterator());
    double confidence_sum = 0;
    size_t characters_by_turns[4] = {};
    if (it) {
        do {
            if (it->Empty(tesseract::RIL_WORD)) continue;
            std::unique_ptr<char, TextDeleter> text(it->GetUTF8Text(tesseract::RIL_WORD));
            // chi_sim sometimes reads a speck as a "word" of spaces.
            const std::string word_text = text ? trim_spaces(text.get()) : std::string();
            if (word_text.empty()) continue;
            int left = 0, top = 0, right = 0, bottom = 0;
            it->BoundingBox(tesseract::RIL_WORD, &left, &top, &right, &bottom);
            float row_height = 0, descenders = 0, ascenders = 0;
            it->RowAttributes(&row_height, &descenders, &ascenders);
            Word word;
            word.text = spell_out_ligatures(word_text);
            word.box = {static_cast<float>(left), static_cast<float>(top), static_cast<float>(right),
                        static_cast<float>(bottom)};
            if (result.skew_degrees != 0) word.box = unrotate_box(word.box, result.skew_degrees, center_x, center_y);
            word.confidence = it->Confidence(tesseract::RIL_WORD);
            // Row height (ascender top to descender bottom) in pixels is about the
            // type size; converted to points by the caller.
            word.font_size = row_height;
            word.line_end = it->IsAtFinalElement(tesseract::RIL_TEXTLINE, tesseract::RIL_WORD);
            word.block_end = it->IsAtFinalElement(tesseract::RIL_PARA, tesseract::RIL_WORD);
            word.line_end = word.line_end || word.block_end;
            int x1 = 0, y1 = 0, x2 = 0, y2 = 0;
            if (it->Baseline(tesseract::RIL_WORD, &x1, &y1, &x2, &y2))
                characters_by_turns[baseline_upright_turns(x2 - x1, y2 - y1)] += word.text.size();
            confidence_sum += word.confidence;
            result.words.push_back(std::move(word));
        } while (it->Next(tesseract::RIL_WORD));
    }
    recognizer.Clear();
    if (result.words.empty()) return result;
    result.words.back().line_end = result.words.back().block_end = true;
    result.mean_confidence = static_cast<float>(confidence_sum / result.words.size());

    // Tesseract may read a page lying on its side as vertical text: when it
    // does so confidently, the text is right but the boxes are on the page as
    // it lies, their baselines running down or up it. When most of the text
    // runs one such way, the page is on its side: report it turned upright.
    const size_t characters = std::accumulate(std::begin(characters_by_turns), std::end(characters_by_turns), size_t{0});
    const auto dominant = std::max_element(std::begin(characters_by_turns) + 1, std::end(characters_by_turns));
    if (result.mean_confidence >= kConfidentMeanConfidence && *dominant * 3 >= characters * 2) {
        const int extra_turns = static_cast<int>(dominant - std::begin(characters_by_turns));
        for (Word& word : result.words)
            word.box = turn_box(word.box, extra_turns, static_cast<float>(result.width), static_cast<float>(result.height));
        if (extra_turns % 2 != 0) std::swap(result.width, result.height);
        result.quarter_turns = (result.quarter_turns + extra_turns) % 4;
    }
    return result;
}

Page OcrEngine::Impl::recognize_pix(Pix* gray, int dpi, int page_number, float scale_to_points) {
    const Deadline deadline = std::chrono::steady_clock::now() + std::chrono::seconds(options.page_timeout_seconds);
    const PixPtr binary = binarize(gray);
    const int guessed_turns = leptonica_upright_turns(binary.get(), dpi);
    Recognition best = recognize_upright(gray, binary.get(), dpi, std::max(guessed_turns, 0), deadline);
    if (best.mean_confidence < kConfidentMeanConfidence) {
        const int detected_turns = tesseract_upright_turns(gray, dpi);
        if (detected_turns >= 0 && detected_turns != best.quarter_turns) {
            Recognition other = recognize_upright(gray, binary.get(), dpi, detected_turns, deadline);
            if (other.score() > best.score()) best = std::move(other);
        }
    }

    Page page;
    page.number = page_number;
    page.ocr = true;
    page.width = best.width * scale_to_points;
    page.height = best.height * scale_to_points;
    page.rotation = best.quarter_turns * 90;
    page.skew_degrees = best.skew_degrees;
    page.mean_confidence = best.mean_confidence;
    page.words = std::move(best.words);
    for (size_t i = 0; i < page.words.size(); ++i) {
        Word& word = page.words[i];
        word.box = {word.box.x0 * scale_to_points, word.box.y0 * scale_to_points, word.box.x1 * scale_to_points,
                    word.box.y1 * scale_to_points};
        word.font_size *= scale_to_points;
        if (i + 1 == page.words.size()) continue;
        const Word& next = page.words[i + 1];
        if (word.line_end) {
            word.space_after = word.block_end || !splits_word_across_lines(word.text, next.text);
        } else {
            // Tesseract separates CJK characters like words; the text has no
            // spaces there.
            word.space_after =
                !(char_class::is_cjk(last_code_point(word.text)) && char_class::is_cjk(first_code_point(next.text)));
        }
    }
    page.text = build_page_text(page.words);
    return page;
}

OcrEngine::OcrEngine(const OcrOptions& options) : impl_(std::make_unique<Impl>(options)) {}
OcrEngine::~OcrEngine() = default;

Page OcrEngine::recognize(const GrayImage& image, int page_number) {
    check_pixel_count(image.width, image.height, impl_->options.max_pixels);
    const PixPtr gray = pix_from_gray_image(image);
    const int dpi = image.dpi > 0 ? static_cast<int>(std::lround(image.dpi)) : kAssumedDpi;
    return impl_->recognize_pix(gray.get(), dpi, page_number, 72.0f / dpi);
}

Page OcrEngine::recognize_pdf_page(const PdfDocument& pdf, int page_number) {
    const GrayImage image = pdf.render(page_number, impl_->options.dpi, impl_->options.max_pixels);
    Page page = recognize(image, page_number);
    // Exact page size rather than the rendered pixels' rounding.
    auto [width, height] = pdf.page_size(page_number);
    if (page.rotation % 180 != 0) std::swap(width, height);
    page.width = width;
    page.height = height;
    return page;
}

namespace {

struct ImageHeader {
    int width = 0, height = 0;
};

ImageHeader read_image_header(const std::string& path, FileType type, int page_index) {
    l_int32 width = 0, height = 0, bits = 0, samples = 0, colormap = 0, resolution = 0, format = 0;
    l_ok status = 1;
    switch (type) {
    case FileType::Png: status = readHeaderPng(path.c_str(), &width, &height, &bits, &samples, &colormap); break;
    case FileType::Jpeg: status = readHeaderJpeg(path.c_str(), &width, &height, &samples, nullptr, nullptr); break;
    case FileType::Tiff:
        status = readHeaderTiff(path.c_str(), page_index, &width, &height, &bits, &samples, &resolution, &colormap, &format);
        break;
    default: throw IngestError(std::string("not an image file (") + file_type_name(type) + ")");
    }
    if (status != 0 || width <= 0 || height <= 0)
        throw IngestError(std::string("damaged ") + file_type_name(type) + " image: cannot read its header");
    return {width, height};
}

struct FileCloser {
    void operator()(std::FILE* file) const { std::fclose(file); }
};

int tiff_page_count(const std::string& path) {
    check_readable_file(path);
    std::unique_ptr<std::FILE, FileCloser> file(std::fopen(path.c_str(), "rb"));
    l_int32 count = 0;
    if (!file || tiffGetCount(file.get(), &count) != 0 || count <= 0)
        throw IngestError("damaged tiff image: cannot count its pages");
    return count;
}

// An 8-bit gray image of any depth, colour map or alpha channel; transparent
// areas become white paper rather than black.
PixPtr to_gray(PixPtr pix) {
    if (pixGetSpp(pix.get()) == 4) pix.reset(pixAlphaBlendUniform(pix.get(), 0xffffff00));
    if (!pix) return pix;
    if (pixGetDepth(pix.get()) == 8 && !pixGetColormap(pix.get())) return pix;
    return PixPtr(pixConvertTo8(pix.get(), 0));
}

}  // namespace

int OcrEngine::image_page_count(const std::string& path, FileType type) {
    silence_leptonica();
    if (type != FileType::Tiff) {
        check_readable_file(path);
        read_image_header(path, type, 0);
        return 1;
    }
    return tiff_page_count(path);
}

Page OcrEngine::recognize_image_page(const std::string& path, FileType type, int page_number) {
    const int page_count = image_page_count(path, type);
    if (page_number < 1 || page_number > page_count)
        throw IngestError("page " + std::to_string(page_number) + " out of range (1.." + std::to_string(page_count) + ")");
    const ImageHeader header = read_image_header(path, type, page_number - 1);
    check_pixel_count(header.width, header.height, impl_->options.max_pixels);

    PixPtr pix(type == FileType::Tiff ? pixReadTiff(path.c_str(), page_number - 1) : pixRead(path.c_str()));
    if (!pix) throw IngestError(std::string("damaged ") + file_type_name(type) + " image: cannot decode it");
    l_int32 x_resolution = 0, y_resolution = 0;
    pixGetResolution(pix.get(), &x_resolution, &y_resolution);
    const PixPtr gray = to_gray(std::move(pix));
    if (!gray) throw IngestError(std::string("cannot convert the ") + file_type_name(type) + " image to gray");
    const int dpi = plausible_dpi(x_resolution, pixGetWidth(gray.get()), pixGetHeight(gray.get()));
    pixSetResolution(gray.get(), dpi, dpi);
    return impl_->recognize_pix(gray.get(), dpi, page_number, 72.0f / dpi);
}

}  // namespace folio::ingest
