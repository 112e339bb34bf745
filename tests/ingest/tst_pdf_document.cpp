#include <QElapsedTimer>
#include <QFile>
#include <QHash>
#include <QImage>
#include <QPainter>
#include <QPdfWriter>
#include <QRegularExpression>
#include <QTemporaryDir>
#include <QtTest>

#include <unistd.h>

#include "ingest/error.h"
#include "ingest/page_text.h"
#include "ingest/pdf_document.h"
#include "tests/support/ingest_test_support.h"
#include "tests/support/test_documents.h"

using namespace folio::ingest;
using folio::test::ingest_data_path;
using folio::test::ingest_error;

namespace {

std::string data_file(const char* name) { return ingest_data_path(name).toStdString(); }

// The IngestError message `action` throws; empty when it throws nothing.
// Alphanumeric tokens with their counts, the way the pdftotext agreement is
// measured: order-free, so only what the text says counts, not its layout.
QHash<QString, int> alnum_tokens(const QString& text) {
    static const QRegularExpression token(QStringLiteral("[\\p{L}\\p{N}]+"));
    QHash<QString, int> counts;
    for (auto it = token.globalMatch(text); it.hasNext();) ++counts[it.next().captured()];
    return counts;
}

double token_f1(const QString& candidate, const QString& reference) {
    const QHash<QString, int> a = alnum_tokens(candidate), b = alnum_tokens(reference);
    int common = 0, total_a = 0, total_b = 0;
    for (auto it = a.begin(); it != a.end(); ++it) {
        total_a += it.value();
        common += std::min(it.value(), b.value(it.key()));
    }
    for (const int count : b) total_b += count;
    if (total_a == 0 && total_b == 0) return 1;
    if (common == 0) return 0;
    const double precision = double(common) / total_a, recall = double(common) / total_b;
    return 2 * precision * recall / (precision + recall);
}

const Word* find_word(const Page& page, const std::string& text) {
    for (const Word& word : page.words)
        if (word.text == text) return &word;
    return nullptr;
}

// A one-page PDF whose only content is a picture of text: a scan.
void write_image_only_pdf(const QString& path) {
    QImage scan(1200, 300, QImage::Format_Grayscale8);
    scan.fill(Qt::white);
    {
        QPainter painter(&scan);
        painter.setFont(QFont(QStringLiteral("DejaVu Sans"), 28));
        painter.drawText(60, 150, QStringLiteral("Scanned invoice total due"));
    }
    QPdfWriter writer(path);
    writer.setResolution(300);
    QPainter painter(&writer);
    painter.drawImage(QPoint(150, 150), scan);
}

}  // namespace

class TestPdfDocument : public QObject {
    Q_OBJECT

private slots:
    void text_layer_agrees_with_pdftotext_on_filing_pages();
    void text_layer_has_boxes_fonts_lines_and_blocks();
    void word_hyphenated_across_lines_is_joined_like_pdftotext();
    void boxes_are_in_displayed_coordinates_of_a_rotated_page();
    void page_size_is_displayed_size();
    void encrypted_pdf_without_password_is_refused();
    void encrypted_pdf_with_wrong_password_is_refused();
    void encrypted_pdf_opens_with_its_password();
    void truncated_pdf_is_refused();
    void zero_page_pdf_is_refused();
    void file_that_is_not_a_pdf_is_refused();
    void missing_file_and_directory_are_refused();
    void unreadable_file_is_refused();
    void page_out_of_range_is_refused();
    void render_gives_gray_page_at_requested_dpi();
    void render_over_pixel_limit_is_refused_before_allocating();
    void usable_text_accepts_real_text_layers();
    void usable_text_rejects_private_use_mojibake();
    void usable_text_rejects_glyph_ids_read_as_letters();
    void usable_text_rejects_image_only_page();
    void usable_text_rejects_replacement_characters();
    void lines_are_inferred_from_boxes_without_layout_text();
    void ligatures_are_spelt_out();
};

void TestPdfDocument::text_layer_agrees_with_pdftotext_on_filing_pages() {
    QFile reference_file(ingest_data_path("filing_pages.pdftotext.txt"));
    QVERIFY(reference_file.open(QIODevice::ReadOnly));
    const QStringList reference_pages = QString::fromUtf8(reference_file.readAll()).split(QChar('\f'));
    const PdfDocument pdf = PdfDocument::open(data_file("filing_pages.pdf"));
    QCOMPARE(pdf.page_count(), 3);
    for (int number = 1; number <= pdf.page_count(); ++number) {
        const Page page = pdf.text_layer(number);
        const double f1 = token_f1(QString::fromStdString(page.text), reference_pages[number - 1]);
        QVERIFY2(f1 >= 0.99, qPrintable(QStringLiteral("page %1: F1 %2").arg(number).arg(f1)));
        QVERIFY(page.words.size() > 100);
        QVERIFY(!page.ocr);
        QCOMPARE(page.mean_confidence, -1.0f);
    }
    // Page 2 has "333-" ending a line and "70765" starting the next; pdftotext
    // joins them.
    QVERIFY(pdf.text_layer(2).text.find("33370765") != std::string::npos);
}

void TestPdfDocument::text_layer_has_boxes_fonts_lines_and_blocks() {
    const Page page = PdfDocument::open(data_file("layout.pdf")).text_layer(1);
    QCOMPARE(page.number, 1);
    QCOMPARE(page.width, 612.0f);
    QCOMPARE(page.height, 792.0f);

    const Word* title = find_word(page, "Quarterly");
    QVERIFY(title);
    QVERIFY(title->bold);
    QCOMPARE(title->font_size, 18.0f);
    // Drawn at x = 72 pt on a baseline 720 pt above the bottom: 72 pt below
    // the top edge, the box extending up by about the ascent.
    QVERIFY(std::abs(title->box.x0 - 72) < 1);
    QVERIFY(title->box.y1 > 72 && title->box.y1 < 80);
    QVERIFY(title->box.y0 > 50 && title->box.y0 < 72);
    QCOMPARE(title->confidence, -1.0f);

    const Word* body = find_word(page, "Revenue");
    QVERIFY(body);
    QVERIFY(!body->bold);
    QCOMPARE(body->font_size, 11.0f);

    QVERIFY(find_word(page, "Report")->line_end);
    QVERIFY(!find_word(page, "Revenue")->line_end);
    QVERIFY(find_word(page, "hiring.")->line_end);
    QVERIFY(!find_word(page, "hiring.")->block_end);
    QVERIFY(find_word(page, "segments.")->block_end);
    QVERIFY(find_word(page, "steady.")->block_end);
    QVERIFY(find_word(page, "steady.")->line_end);

    QCOMPARE(QString::fromStdString(page.text),
             QStringLiteral("Quarterly Report\n"
                            "Revenue grew in every region this year and the\n"
                            "board approved the new capital allocation information policy for all segments.\n\n"
                            "Operating expenses rose with hiring.\n"
                            "Margins held steady."));
}

void TestPdfDocument::word_hyphenated_across_lines_is_joined_like_pdftotext() {
    const Page page = PdfDocument::open(data_file("layout.pdf")).text_layer(1);
    const Word* first_half = find_word(page, "infor-");
    QVERIFY(first_half);
    QVERIFY(first_half->line_end);
    QVERIFY(!first_half->space_after);
    QVERIFY(find_word(page, "mation"));
    QVERIFY(page.text.find("information policy") != std::string::npos);
    QVERIFY(page.text.find("infor-") == std::string::npos);
}

void TestPdfDocument::boxes_are_in_displayed_coordinates_of_a_rotated_page() {
    // The text runs along the top of the unrotated page; /Rotate 90 turns the
    // page clockwise for display, which puts it down the right-hand edge.
    const Page page = PdfDocument::open(data_file("rotated.pdf")).text_layer(1);
    QCOMPARE(page.width, 792.0f);
    QCOMPARE(page.height, 612.0f);
    const Word* word = find_word(page, "Rotated");
    QVERIFY(word);
    QVERIFY2(word->box.x0 > 700 && word->box.x1 < 740, qPrintable(QString::number(word->box.x0)));
    QVERIFY(std::abs(word->box.y0 - 72) < 1);
    QVERIFY(word->box.height() > word->box.width());
    QCOMPARE(QString::fromStdString(page.text), QStringLiteral("Rotated page text"));
}

void TestPdfDocument::page_size_is_displayed_size() {
    const auto [rotated_width, rotated_height] = PdfDocument::open(data_file("rotated.pdf")).page_size(1);
    QCOMPARE(rotated_width, 792.0f);
    QCOMPARE(rotated_height, 612.0f);
    const auto [width, height] = PdfDocument::open(data_file("layout.pdf")).page_size(1);
    QCOMPARE(width, 612.0f);
    QCOMPARE(height, 792.0f);
}

void TestPdfDocument::encrypted_pdf_without_password_is_refused() {
    QCOMPARE(ingest_error([] { PdfDocument::open(data_file("encrypted.pdf")); }),
             QStringLiteral("encrypted PDF: needs a password (--password)"));
}

void TestPdfDocument::encrypted_pdf_with_wrong_password_is_refused() {
    QCOMPARE(ingest_error([] { PdfDocument::open(data_file("encrypted.pdf"), "guess"); }),
             QStringLiteral("encrypted PDF: wrong password"));
}

void TestPdfDocument::encrypted_pdf_opens_with_its_password() {
    for (const char* password : {"folio-user", "folio-owner"}) {
        const PdfDocument pdf = PdfDocument::open(data_file("encrypted.pdf"), password);
        QVERIFY(pdf.text_layer(1).text.starts_with("The quarterly report shows"));
    }
}

void TestPdfDocument::truncated_pdf_is_refused() {
    const QString error = ingest_error([] { PdfDocument::open(data_file("truncated.pdf")); });
    QVERIFY2(error.startsWith(QStringLiteral("truncated PDF")), qPrintable(error));
}

void TestPdfDocument::zero_page_pdf_is_refused() {
    QCOMPARE(ingest_error([] { PdfDocument::open(data_file("zero_pages.pdf")); }), QStringLiteral("PDF has no pages"));
}

void TestPdfDocument::file_that_is_not_a_pdf_is_refused() {
    QTemporaryDir dir;
    const QString png_path = dir.filePath(QStringLiteral("picture.pdf"));
    QImage(10, 10, QImage::Format_Grayscale8).save(png_path, "PNG");
    QCOMPARE(ingest_error([&] { PdfDocument::open(png_path.toStdString()); }),
             QStringLiteral("not a PDF file (no %PDF header)"));

    // A PDF header with nothing usable after it.
    const QString damaged_path = dir.filePath(QStringLiteral("damaged.pdf"));
    QFile damaged(damaged_path);
    QVERIFY(damaged.open(QIODevice::WriteOnly));
    damaged.write("%PDF-1.4\n1 0 obj << garbage >> endobj\n%%EOF\n");
    damaged.close();
    const QString error = ingest_error([&] { PdfDocument::open(damaged_path.toStdString()); });
    QVERIFY2(error.startsWith(QStringLiteral("damaged PDF")), qPrintable(error));
}

void TestPdfDocument::missing_file_and_directory_are_refused() {
    QTemporaryDir dir;
    const std::string missing = dir.filePath(QStringLiteral("missing.pdf")).toStdString();
    QCOMPARE(ingest_error([&] { PdfDocument::open(missing); }),
             QString::fromStdString("cannot read " + missing + ": No such file or directory"));
    QCOMPARE(ingest_error([&] { PdfDocument::open(dir.path().toStdString()); }),
             dir.path() + QStringLiteral(" is a directory"));
}

void TestPdfDocument::unreadable_file_is_refused() {
    if (::geteuid() == 0) QSKIP("root reads files whatever their permissions");
    QTemporaryDir dir;
    const QString path = dir.filePath(QStringLiteral("locked.pdf"));
    QVERIFY(QFile::copy(ingest_data_path("layout.pdf"), path));
    QVERIFY(QFile::setPermissions(path, QFileDevice::Permissions()));
    QCOMPARE(ingest_error([&] { PdfDocument::open(path.toStdString()); }),
             QStringLiteral("cannot read ") + path + QStringLiteral(": Permission denied"));
}

void TestPdfDocument::page_out_of_range_is_refused() {
    const PdfDocument pdf = PdfDocument::open(data_file("layout.pdf"));
    QCOMPARE(ingest_error([&] { pdf.text_layer(2); }), QStringLiteral("page 2 out of range (1..1)"));
    QCOMPARE(ingest_error([&] { pdf.render(0, 72, 1'000'000); }), QStringLiteral("page 0 out of range (1..1)"));
}

void TestPdfDocument::render_gives_gray_page_at_requested_dpi() {
    const GrayImage image = PdfDocument::open(data_file("layout.pdf")).render(1, 144, 10'000'000);
    QCOMPARE(image.width, 1224);
    QCOMPARE(image.height, 1584);
    QCOMPARE(image.dpi, 144.0f);
    QVERIFY(image.stride >= image.width);
    QCOMPARE(image.pixels.size(), size_t(image.stride) * image.height);
    // White paper with dark text where the title is (72 pt = 144 px in, the
    // baseline 144 px down).
    QCOMPARE(int(image.pixels[10 * image.stride + 10]), 255);
    unsigned char darkest = 255;
    for (int y = 120; y < 144; ++y)
        for (int x = 144; x < 300; ++x) darkest = std::min(darkest, image.pixels[y * image.stride + x]);
    QVERIFY(darkest < 64);

    const GrayImage rotated = PdfDocument::open(data_file("rotated.pdf")).render(1, 72, 10'000'000);
    QCOMPARE(rotated.width, 792);
    QCOMPARE(rotated.height, 612);
}

void TestPdfDocument::render_over_pixel_limit_is_refused_before_allocating() {
    const PdfDocument pdf = PdfDocument::open(data_file("layout.pdf"));
    QCOMPARE(ingest_error([&] { pdf.render(1, 72, 612 * 792 - 1); }),
             QStringLiteral("page 1 at 72 dpi would be 612x792 pixels, over the limit of 484703"));
    // 20000 dpi would be a 37-gigapixel raster: refusing it must be immediate.
    QElapsedTimer timer;
    timer.start();
    const QString error = ingest_error([&] { pdf.render(1, 20000, 150'000'000); });
    QVERIFY2(error.contains(QStringLiteral("over the limit")), qPrintable(error));
    QVERIFY(timer.elapsed() < 1000);
}

void TestPdfDocument::usable_text_accepts_real_text_layers() {
    const PdfDocument filings = PdfDocument::open(data_file("filing_pages.pdf"));
    for (int number = 1; number <= filings.page_count(); ++number) QVERIFY(has_usable_text(filings.text_layer(number)));
    QVERIFY(has_usable_text(PdfDocument::open(data_file("layout.pdf")).text_layer(1)));
}

void TestPdfDocument::usable_text_rejects_private_use_mojibake() {
    const Page page = PdfDocument::open(data_file("mojibake_private_use.pdf")).text_layer(1);
    QVERIFY(page.words.size() > 50);
    QVERIFY(!has_usable_text(page));
}

void TestPdfDocument::usable_text_rejects_glyph_ids_read_as_letters() {
    const Page page = PdfDocument::open(data_file("mojibake_shifted.pdf")).text_layer(1);
    QVERIFY(page.text.starts_with("7KH TXDUWHUO\\ UHSRUW"));  // "The quarterly report"
    QVERIFY(!has_usable_text(page));
}

void TestPdfDocument::usable_text_rejects_image_only_page() {
    QTemporaryDir dir;
    const QString path = dir.filePath(QStringLiteral("scan.pdf"));
    write_image_only_pdf(path);
    const Page page = PdfDocument::open(path.toStdString()).text_layer(1);
    QVERIFY(page.words.empty());
    QVERIFY(!has_usable_text(page));

    Page page_number_only;
    page_number_only.words = {{.text = "Page"}, {.text = "12"}};
    QVERIFY(!has_usable_text(page_number_only));
}

void TestPdfDocument::usable_text_rejects_replacement_characters() {
    Page page;
    for (int i = 0; i < 40; ++i) page.words.push_back({.text = i % 3 ? "\xEF\xBF\xBD\xEF\xBF\xBD" : "ok"});
    QVERIFY(!has_usable_text(page));
    for (Word& word : page.words) word.text = "revenue";
    QVERIFY(has_usable_text(page));
}

void TestPdfDocument::lines_are_inferred_from_boxes_without_layout_text() {
    // Two lines of one block, then a block in a second column that starts
    // back at the top; "$" "1,234" touch without a space.
    const auto word = [](const char* text, float x0, float y0, float x1, bool space_after) {
        PositionedWord positioned;
        positioned.word.text = text;
        positioned.word.box = {x0, y0, x1, y0 + 10};
        positioned.word.font_size = 10;
        positioned.word.space_after = space_after;
        return positioned;
    };
    const std::vector<PositionedWord> positioned = {
        word("Cash", 72, 100, 95, true),     word("was", 98, 100, 115, false),    word("$", 72, 112, 77, false),
        word("1,234", 77, 112, 100, false), word("Notes", 320, 100, 350, true), word("follow", 353, 100, 385, false)};
    // No layout text, and one that stops agreeing with the words halfway.
    for (const std::string_view layout_text : {std::string_view(), std::string_view("Cash was\n$1,234\n\nNotes fallow\n")}) {
        const std::vector<Word> words = mark_lines_and_blocks(positioned, layout_text);
        QCOMPARE(words.size(), size_t(6));
        QVERIFY(!words[0].line_end);
        QVERIFY(words[1].line_end && !words[1].block_end);
        QVERIFY(!words[2].line_end && !words[2].space_after);
        QVERIFY(words[3].line_end && words[3].block_end);
        QVERIFY(words[5].block_end);
        QCOMPARE(QString::fromStdString(build_page_text(words)), QStringLiteral("Cash was\n$1,234\n\nNotes follow"));
    }
}

// Qt's PDF writer, like many typesetters, draws "fi" and "ffi" as one
// ligature glyph, which Poppler reads back as U+FB01 and U+FB03: stored so,
// "fiscal" would neither be found by a search nor read right by a model.
void TestPdfDocument::ligatures_are_spelt_out() {
    QTemporaryDir dir;
    const QString path = dir.filePath("ligatures.pdf");
    folio::test::write_text_pdf(path, {"The fiscal office filed efficient reports."});
    const Page page = PdfDocument::open(path.toStdString()).text_layer(1);
    QCOMPARE(QString::fromStdString(page.text), QStringLiteral("The fiscal office filed efficient reports."));
    QVERIFY(find_word(page, "fiscal") && find_word(page, "office") && find_word(page, "efficient"));
}

QTEST_MAIN(TestPdfDocument)
#include "tst_pdf_document.moc"
