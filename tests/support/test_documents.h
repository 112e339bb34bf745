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

}  // namespace folio::test
