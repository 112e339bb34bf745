#include <QBuffer>
#include <QElapsedTimer>
#include <QFile>
#include <QFontMetricsF>
#include <QImage>
#include <QPainter>
#include <QPdfWriter>
#include <QTemporaryDir>
#include <QTemporaryFile>
#include <QtTest>

#include <fcntl.h>
#include <unistd.h>

#include <cmath>
#include <memory>

#include "ingest/error.h"
#include "ingest/ocr.h"
#include "tests/support/ingest_test_support.h"

using namespace folio::ingest;
using folio::test::ingest_data_path;
using folio::test::ingest_error;

namespace {

constexpr int kDpi = 300;


const QStringList kProse = {
    QStringLiteral("Net revenue increased eight percent compared with the prior year,"),
    QStringLiteral("driven by strong demand for cloud services in every region."),
    QStringLiteral("The patient reported mild chest pain after exercise and was"),
    QStringLiteral("advised to continue the current medication for two weeks."),
    QStringLiteral("Operating expenses rose because the company hired engineers."),
};

// A 300-dpi scan of `lines` in 12-point type: black on white, one inch margins.
struct Scan {
    QImage image;
    QRectF first_word;  // where the first word is drawn, pixels
};

Scan make_scan(const QStringList& lines, const QString& family = QStringLiteral("DejaVu Serif"), double points = 12) {
    QFont font(family);
    font.setPixelSize(int(std::lround(points * kDpi / 72)));
    const QFontMetricsF metrics(font);
    const double line_step = metrics.lineSpacing() * 1.3;
    Scan scan;
    scan.image = QImage(int(8 * kDpi), int(2 * kDpi + lines.size() * line_step), QImage::Format_Grayscale8);
    scan.image.fill(Qt::white);
    QPainter painter(&scan.image);
    painter.setFont(font);
    double baseline = kDpi + metrics.ascent();
    for (const QString& line : lines) {
        painter.drawText(QPointF(kDpi, baseline), line);
        baseline += line_step;
    }
    const QString first = lines.first().section(QChar(' '), 0, 0);
    scan.first_word = QRectF(kDpi, kDpi, metrics.horizontalAdvance(first), metrics.ascent());
    return scan;
}

// `image` turned clockwise by `degrees` about its centre onto white paper large
// enough to hold it; `transform` maps original pixels to the result's.
QImage turned(const QImage& image, double degrees, QTransform* transform = nullptr) {
    QTransform turn;
    turn.rotate(degrees);
    const QRectF bounds = turn.mapRect(QRectF(image.rect()));
    QImage result(bounds.size().toSize(), QImage::Format_Grayscale8);
    result.fill(Qt::white);
    const QTransform placed = turn * QTransform::fromTranslate(-bounds.left(), -bounds.top());
    QPainter painter(&result);
    painter.setRenderHint(QPainter::SmoothPixmapTransform);
    painter.setTransform(placed);
    painter.drawImage(0, 0, image);
    if (transform) *transform = placed;
    return result;
}

GrayImage gray_image(const QImage& source, float dpi = kDpi) {
    const QImage image = source.convertToFormat(QImage::Format_Grayscale8);
    GrayImage gray;
    gray.width = image.width();
    gray.height = image.height();
    gray.stride = image.width();
    gray.dpi = dpi;
    gray.pixels.resize(size_t(gray.width) * gray.height);
    for (int y = 0; y < gray.height; ++y)
        std::memcpy(gray.pixels.data() + size_t(y) * gray.stride, image.constScanLine(y), size_t(gray.width));
    return gray;
}

// PNG bytes of `image` stating `dpi` in a pHYs chunk, or with no pHYs chunk
// when dpi is 0 (Qt always writes one).
QByteArray png_bytes(QImage image, int dpi) {
    const int dots_per_metre = int(std::lround(dpi / 0.0254));
    image.setDotsPerMeterX(dots_per_metre);
    image.setDotsPerMeterY(dots_per_metre);
    QByteArray png;
    QBuffer buffer(&png);
    buffer.open(QIODevice::WriteOnly);
    image.save(&buffer, "PNG");
    if (dpi != 0) return png;
    const int at = png.indexOf("pHYs") - 4;  // the chunk: length, type, 9 bytes, CRC
    return png.remove(at, 4 + 4 + 9 + 4);
}

QString collapse_spaces(const QString& text) { return text.simplified(); }

// Character error rate: edit distance over the reference length, whitespace
// collapsed.
double character_error_rate(const QString& recognized, const QString& reference) {
    const QString a = collapse_spaces(recognized), b = collapse_spaces(reference);
    std::vector<int> previous(size_t(b.size()) + 1), current(size_t(b.size()) + 1);
    for (int j = 0; j <= b.size(); ++j) previous[size_t(j)] = j;
    for (int i = 1; i <= a.size(); ++i) {
        current[0] = i;
        for (int j = 1; j <= b.size(); ++j)
            current[size_t(j)] = std::min({previous[size_t(j)] + 1, current[size_t(j - 1)] + 1,
                                           previous[size_t(j - 1)] + (a[i - 1] != b[j - 1])});
        std::swap(previous, current);
    }
    return double(previous[size_t(b.size())]) / b.size();
}

QString text_of(const Page& page) { return QString::fromStdString(page.text); }

QPointF center_of(const Box& box) { return {(box.x0 + box.x1) / 2, (box.y0 + box.y1) / 2}; }

// Collects what is written to file descriptor 2 while it lives.
class StderrCapture {
public:
    StderrCapture() {
        file_.open();
        saved_ = ::dup(2);
        ::fflush(stderr);
        ::dup2(file_.handle(), 2);
    }
    ~StderrCapture() { restore(); }
    QByteArray finish() {
        restore();
        file_.seek(0);
        return file_.readAll();
    }

private:
    void restore() {
        if (saved_ < 0) return;
        ::fflush(stderr);
        ::dup2(saved_, 2);
        ::close(saved_);
        saved_ = -1;
    }
    QTemporaryFile file_;
    int saved_ = -1;
};

}  // namespace

class TestOcr : public QObject {
    Q_OBJECT

private slots:
    void initTestCase();
    void recognizes_clean_text_with_boxes_in_points();
    void upright_result_for_rotated_scans_data();
    void upright_result_for_rotated_scans();
    void corrects_skew_and_maps_boxes_back();
    void recognizes_chinese();
    void missing_language_is_named();
    void times_out_on_a_slow_page();
    void image_resolution_is_read_or_assumed_data();
    void image_resolution_is_read_or_assumed();
    void reads_pages_of_a_multipage_tiff();
    void refuses_huge_image_from_its_header();
    void refuses_image_over_the_pixel_limit();
    void refuses_damaged_and_missing_images();
    void recognizes_a_scanned_pdf_page();
    void keeps_tesseract_quiet();

private:
    std::unique_ptr<OcrEngine> engine_;
    Scan prose_;
};

void TestOcr::initTestCase() {
    engine_ = std::make_unique<OcrEngine>(OcrOptions{});
    prose_ = make_scan(kProse);
}

void TestOcr::recognizes_clean_text_with_boxes_in_points() {
    const Page page = engine_->recognize(gray_image(prose_.image), 7);
    QCOMPARE(page.number, 7);
    QVERIFY(page.ocr);
    QCOMPARE(page.rotation, 0);
    QCOMPARE(page.skew_degrees, 0.0f);
    QCOMPARE(page.width, float(prose_.image.width() * 72.0 / kDpi));
    QCOMPARE(page.height, float(prose_.image.height() * 72.0 / kDpi));
    const double cer = character_error_rate(text_of(page), kProse.join(QChar('\n')));
    QVERIFY2(cer <= 0.02, qPrintable(QStringLiteral("CER %1: %2").arg(cer).arg(text_of(page))));
    QVERIFY(page.mean_confidence > 85);

    QVERIFY(!page.words.empty());
    const Word& first = page.words.front();
    QCOMPARE(QString::fromStdString(first.text), QStringLiteral("Net"));
    QVERIFY(first.confidence > 80);
    // One inch margin: 72 pt from the left; the word's top about 72 pt down.
    QVERIFY2(std::abs(first.box.x0 - 72) < 3, qPrintable(QString::number(first.box.x0)));
    QVERIFY2(std::abs(first.box.y0 - 72) < 6, qPrintable(QString::number(first.box.y0)));
    QVERIFY(std::abs(first.box.width() - prose_.first_word.width() * 72 / kDpi) < 3);
    QVERIFY(first.font_size > 9 && first.font_size < 16);
    QVERIFY(!first.bold);

    int line_ends = 0;
    for (const Word& word : page.words) line_ends += word.line_end;
    QCOMPARE(line_ends, int(kProse.size()));
    QVERIFY(page.words.back().line_end && page.words.back().block_end);
}

void TestOcr::upright_result_for_rotated_scans_data() {
    QTest::addColumn<int>("lines");
    QTest::addColumn<int>("scan_turned_degrees");
    QTest::addColumn<int>("expected_rotation");
    QTest::newRow("90") << 5 << 90 << 270;
    QTest::newRow("180") << 5 << 180 << 180;
    QTest::newRow("270") << 5 << 270 << 90;
    // Too little text for Leptonica's orientation statistics: Tesseract reads
    // it as vertical text, or its orientation detector decides.
    QTest::newRow("90, two lines") << 2 << 90 << 270;
    QTest::newRow("270, two lines") << 2 << 270 << 90;
}

void TestOcr::upright_result_for_rotated_scans() {
    QFETCH(int, lines);
    QFETCH(int, scan_turned_degrees);
    QFETCH(int, expected_rotation);
    const QStringList text = kProse.mid(0, lines);
    const Scan scan = make_scan(text);
    const Page page = engine_->recognize(gray_image(turned(scan.image, scan_turned_degrees)), 1);
    QCOMPARE(page.rotation, expected_rotation);
    const double cer = character_error_rate(text_of(page), text.join(QChar('\n')));
    QVERIFY2(cer <= 0.05, qPrintable(QStringLiteral("CER %1: %2").arg(cer).arg(text_of(page))));
    // The page is reported upright, and so are the boxes on it.
    QVERIFY(std::abs(page.width - scan.image.width() * 72.0f / kDpi) < 1);
    QVERIFY(std::abs(page.height - scan.image.height() * 72.0f / kDpi) < 1);
    const Word& first = page.words.front();
    QCOMPARE(QString::fromStdString(first.text), QStringLiteral("Net"));
    QVERIFY2(std::abs(first.box.x0 - 72) < 4 && std::abs(first.box.y0 - 72) < 8,
             qPrintable(QStringLiteral("%1,%2").arg(first.box.x0).arg(first.box.y0)));
}

void TestOcr::corrects_skew_and_maps_boxes_back() {
    // Turned 2 degrees anticlockwise: the lines run uphill.
    QTransform transform;
    const QImage skewed = turned(prose_.image, -2, &transform);
    const Page page = engine_->recognize(gray_image(skewed), 1);
    QCOMPARE(page.rotation, 0);
    QVERIFY2(std::abs(page.skew_degrees - 2) < 0.3, qPrintable(QString::number(page.skew_degrees)));
    const double cer = character_error_rate(text_of(page), kProse.join(QChar('\n')));
    QVERIFY2(cer <= 0.05, qPrintable(QStringLiteral("CER %1: %2").arg(cer).arg(text_of(page))));
    // The first word's box lands where the word is on the skewed scan.
    const QPointF expected = transform.map(prose_.first_word.center()) * (72.0 / kDpi);
    const QPointF found = center_of(page.words.front().box);
    QVERIFY2(QLineF(expected, found).length() < 4,
             qPrintable(QStringLiteral("expected %1,%2 found %3,%4")
                            .arg(expected.x()).arg(expected.y()).arg(found.x()).arg(found.y())));
}

void TestOcr::recognizes_chinese() {
    OcrOptions options;
    options.languages = "eng+chi_sim";
    OcrEngine engine(options);
    const QStringList lines = {QStringLiteral("财务报告 收入增长"), QStringLiteral("医疗记录 患者病史")};
    const Page page = engine.recognize(gray_image(make_scan(lines, QStringLiteral("Noto Sans CJK SC")).image), 1);
    const QString text = text_of(page);
    for (const char* phrase : {"财务报告", "收入增长", "医疗记录", "患者病史"})
        QVERIFY2(text.contains(QString::fromUtf8(phrase)), qPrintable(text));
}

void TestOcr::missing_language_is_named() {
    OcrOptions options;
    options.languages = "eng+xyz";
    const QString error = ingest_error([&] { OcrEngine engine(options); });
    QVERIFY2(error.startsWith(QStringLiteral("OCR language not installed: xyz ")), qPrintable(error));
    options.languages = "eng;rm";
    QCOMPARE(ingest_error([&] { OcrEngine engine(options); }),
             QStringLiteral("invalid OCR language list \"eng;rm\" (expected e.g. eng+chi_sim)"));
}

void TestOcr::times_out_on_a_slow_page() {
    // A dense page takes Tesseract several seconds; it must stop at one.
    QStringList lines;
    for (int i = 0; i < 60; ++i) lines << kProse[i % kProse.size()];
    const GrayImage dense = gray_image(make_scan(lines, QStringLiteral("DejaVu Serif"), 9).image);
    OcrOptions options;
    options.page_timeout_seconds = 1;
    OcrEngine engine(options);
    QElapsedTimer timer;
    timer.start();
    QCOMPARE(ingest_error([&] { engine.recognize(dense, 1); }), QStringLiteral("OCR timed out after 1 s"));
    QVERIFY(timer.elapsed() < 4000);
}

void TestOcr::image_resolution_is_read_or_assumed_data() {
    QTest::addColumn<int>("stored_dpi");  // 0: no pHYs chunk at all
    QTest::addColumn<float>("expected_dpi");
    QTest::newRow("none") << 0 << 300.0f;
    QTest::newRow("plausible 200") << 200 << 200.0f;
    // 96 dpi would make this 8-inch-wide scan 25 inches wide: an editor's
    // placeholder, not the scanner's resolution.
    QTest::newRow("placeholder 96") << 96 << 300.0f;
}

void TestOcr::image_resolution_is_read_or_assumed() {
    QFETCH(int, stored_dpi);
    QFETCH(float, expected_dpi);
    const QImage line = prose_.image.copy(0, 0, prose_.image.width(), kDpi + 80);
    QTemporaryDir dir;
    const QString path = dir.filePath(QStringLiteral("scan.png"));
    QFile file(path);
    QVERIFY(file.open(QIODevice::WriteOnly));
    file.write(png_bytes(line, stored_dpi));
    file.close();
    QCOMPARE(OcrEngine::image_page_count(path.toStdString(), FileType::Png), 1);
    const Page page = engine_->recognize_image_page(path.toStdString(), FileType::Png, 1);
    QCOMPARE(page.width, float(line.width() * 72.0 / expected_dpi));
    QVERIFY2(text_of(page).startsWith(QStringLiteral("Net revenue increased")), qPrintable(text_of(page)));
}

void TestOcr::reads_pages_of_a_multipage_tiff() {
    const std::string path = ingest_data_path("pages.tiff").toStdString();
    QCOMPARE(OcrEngine::image_page_count(path, FileType::Tiff), 3);
    const Page page = engine_->recognize_image_page(path, FileType::Tiff, 2);
    QCOMPARE(page.number, 2);
    QVERIFY2(text_of(page).contains(QStringLiteral("Page bravo of the scan")), qPrintable(text_of(page)));
    QCOMPARE(page.width, 1500 * 72.0f / 300);
    QCOMPARE(ingest_error([&] { engine_->recognize_image_page(path, FileType::Tiff, 4); }),
             QStringLiteral("page 4 out of range (1..3)"));
}

void TestOcr::refuses_huge_image_from_its_header() {
    // 30000 x 30000 pixels: decoding it would take 900 MB before OCR began.
    const std::string path = ingest_data_path("huge.png").toStdString();
    QElapsedTimer timer;
    timer.start();
    QCOMPARE(ingest_error([&] { engine_->recognize_image_page(path, FileType::Png, 1); }),
             QStringLiteral("image of 30000x30000 pixels is over the limit of 150000000"));
    QVERIFY(timer.elapsed() < 1000);
}

void TestOcr::refuses_image_over_the_pixel_limit() {
    QTemporaryDir dir;
    const QString path = dir.filePath(QStringLiteral("scan.png"));
    QVERIFY(prose_.image.save(path, "PNG"));
    OcrOptions options;
    options.max_pixels = 1'000'000;
    OcrEngine small_engine(options);
    const QString expected = QStringLiteral("image of %1x%2 pixels is over the limit of 1000000")
                                 .arg(prose_.image.width()).arg(prose_.image.height());
    QCOMPARE(ingest_error([&] { small_engine.recognize_image_page(path.toStdString(), FileType::Png, 1); }), expected);
    QCOMPARE(ingest_error([&] { small_engine.recognize(gray_image(prose_.image), 1); }), expected);
}

void TestOcr::refuses_damaged_and_missing_images() {
    QTemporaryDir dir;
    const QString path = dir.filePath(QStringLiteral("broken.png"));
    QFile file(path);
    QVERIFY(file.open(QIODevice::WriteOnly));
    file.write("\x89PNG\r\n\x1a\n garbage that is no header");
    file.close();
    QCOMPARE(ingest_error([&] { engine_->recognize_image_page(path.toStdString(), FileType::Png, 1); }),
             QStringLiteral("damaged png image: cannot read its header"));

    // A valid header over data that stops short.
    QByteArray png;
    {
        QBuffer buffer(&png);
        buffer.open(QIODevice::WriteOnly);
        prose_.image.save(&buffer, "PNG");
    }
    const QString cut_path = dir.filePath(QStringLiteral("cut.png"));
    QFile cut(cut_path);
    QVERIFY(cut.open(QIODevice::WriteOnly));
    cut.write(png.left(png.size() / 3));
    cut.close();
    QCOMPARE(ingest_error([&] { engine_->recognize_image_page(cut_path.toStdString(), FileType::Png, 1); }),
             QStringLiteral("damaged png image: cannot decode it"));

    const std::string missing = dir.filePath(QStringLiteral("missing.tiff")).toStdString();
    QCOMPARE(ingest_error([&] { OcrEngine::image_page_count(missing, FileType::Tiff); }),
             QString::fromStdString("cannot read " + missing + ": No such file or directory"));
}

void TestOcr::recognizes_a_scanned_pdf_page() {
    QTemporaryDir dir;
    const QString path = dir.filePath(QStringLiteral("scan.pdf"));
    {
        QPdfWriter writer(path);
        writer.setPageSize(QPageSize(QPageSize::Letter));
        writer.setPageMargins(QMarginsF(0, 0, 0, 0));
        writer.setResolution(kDpi);
        QPainter painter(&writer);
        painter.drawImage(QPoint(0, 0), prose_.image);
    }
    const PdfDocument pdf = PdfDocument::open(path.toStdString());
    const Page page = engine_->recognize_pdf_page(pdf, 1);
    const auto [width, height] = pdf.page_size(1);
    QCOMPARE(page.width, width);
    QCOMPARE(page.height, height);
    QVERIFY(page.ocr);
    QVERIFY(character_error_rate(text_of(page), kProse.join(QChar('\n'))) <= 0.02);
    // The scan sits at the page's top-left corner, so its margin is the page's.
    QVERIFY2(std::abs(page.words.front().box.x0 - 72) < 4, qPrintable(QString::number(page.words.front().box.x0)));
    QVERIFY2(std::abs(page.words.front().box.y0 - 72) < 8, qPrintable(QString::number(page.words.front().box.y0)));
}

void TestOcr::keeps_tesseract_quiet() {
    QImage speck(24, 12, QImage::Format_Grayscale8);
    speck.fill(Qt::white);
    speck.setPixel(5, 5, 0);
    StderrCapture capture;
    OcrOptions options;
    options.languages = "eng+xyz";
    ingest_error([&] { OcrEngine engine(options); });
    engine_->recognize(gray_image(speck, 0), 1);
    engine_->recognize(gray_image(prose_.image.scaled(400, 60), 300), 1);
    const QByteArray written = capture.finish();
    QVERIFY2(written.isEmpty(), written.constData());
}

QTEST_MAIN(TestOcr)
#include "tst_ocr.moc"
