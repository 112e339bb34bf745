#pragma once
// Documents with known text that tests generate instead of committing:
// text-layer PDFs (QPdfWriter), 300-DPI scans with no text layer, and plain
// files of given bytes.

#include <QByteArray>
#include <QFile>
#include <QFont>
#include <QImage>
#include <QPainter>
#include <QPdfWriter>
#include <QString>
#include <QStringList>

namespace folio::test {

// Writes `content` to `path` whole; false when the file cannot be written.
inline bool write_file(const QString& path, const QByteArray& content) {
    QFile file(path);
    return file.open(QIODevice::WriteOnly) && file.write(content) == content.size();
}

// Writes a letter-size PDF with one text page per entry of `pages`.
inline void write_text_pdf(const QString& path, const QStringList& pages) {
    QPdfWriter writer(path);
    writer.setResolution(300);
    QPainter painter(&writer);
    QFont font("DejaVu Sans");
    font.setPointSize(12);
    painter.setFont(font);
    for (int i = 0; i < pages.size(); ++i) {
        if (i > 0) writer.newPage();
        painter.drawText(QRect(300, 300, 1900, 2800), Qt::TextWordWrap, pages[i]);
    }
}

// Writes a 300-DPI grayscale "scan" of a letter-size page carrying `text`
// (any format QImage writes, chosen by the extension); no text layer, so
// Folio has to OCR it. Returns false when the image could not be written.
inline bool write_scan(const QString& path, const QString& text) {
    QImage image(2550, 3300, QImage::Format_Grayscale8);
    image.fill(Qt::white);
    image.setDotsPerMeterX(11811);  // 300 DPI
    image.setDotsPerMeterY(11811);
    QPainter painter(&image);
    QFont font("DejaVu Sans");
    font.setPixelSize(50);
    painter.setFont(font);
    painter.drawText(QRect(250, 250, 2050, 2800), Qt::TextWordWrap, text);
    painter.end();
    return image.save(path);
}

// The annual report the ask tests question about Northwind Traders' net
// revenue, and the store report beside it. Worded for SmolLM2-135M: with the
// 2023 figure first or written "$4,812 million", its top two tokens at the
// figure were within 0.05 of each other, and its greedy answer changed with
// the order of a kernel's sums; as written here it is the same under the
// scalar, AVX2 and AVX-512 kernels, rows and row groups.
inline const QStringList kNorthwindReportPages = {
    "Northwind Traders Annual Report 2023. Northwind Traders reported net revenue of 4,390 million dollars in "
    "fiscal 2022 and 4,812 million dollars in fiscal 2023.",
    "Employees. At the end of fiscal 2023 Northwind Traders employed 12,400 people in 14 countries."};
// The question the report answers ("4,812 million dollars").
inline constexpr char kNorthwindRevenueQuestion[] = "What was Northwind Traders' net revenue in fiscal 2023?";
inline const QStringList kNorthwindStoresPages = {
    "Northwind Traders operated 310 stores at the end of fiscal 2023, after opening 22 new stores."};

}  // namespace folio::test
