#include <QBuffer>
#include <QFile>
#include <QImage>
#include <QTemporaryDir>
#include <QtTest>

#include <unistd.h>

#include "ingest/detect.h"
#include "ingest/error.h"
#include "tests/support/ingest_test_support.h"

using namespace folio::ingest;
using folio::test::ingest_data_path;
using folio::test::ingest_error;

Q_DECLARE_METATYPE(folio::ingest::FileType)

namespace {


QByteArray file_bytes(const QString& path) {
    QFile file(path);
    return file.open(QIODevice::ReadOnly) ? file.readAll() : QByteArray();
}

QByteArray image_bytes(const char* format) {
    QImage image(40, 20, QImage::Format_Grayscale8);
    image.fill(Qt::white);
    QByteArray bytes;
    QBuffer buffer(&bytes);
    buffer.open(QIODevice::WriteOnly);
    image.save(&buffer, format);
    return bytes;
}

}  // namespace

class TestDetect : public QObject {
    Q_OBJECT

private slots:
    void type_comes_from_content_not_extension_data();
    void type_comes_from_content_not_extension();
    void empty_file_is_refused();
    void missing_file_and_directory_are_refused();
    void unreadable_file_is_refused();

private:
    QTemporaryDir dir_;
};

void TestDetect::type_comes_from_content_not_extension_data() {
    QTest::addColumn<QString>("name");
    QTest::addColumn<QByteArray>("content");
    QTest::addColumn<FileType>("expected");

    const QByteArray pdf = file_bytes(ingest_data_path("layout.pdf"));
    QTest::newRow("pdf") << "report.pdf" << pdf << FileType::Pdf;
    QTest::newRow("pdf named .txt") << "report.txt" << pdf << FileType::Pdf;
    QTest::newRow("pdf after a preamble") << "mail.bin" << QByteArray("From: scanner\r\n\r\n") + pdf << FileType::Pdf;
    QTest::newRow("encrypted pdf") << "locked" << file_bytes(ingest_data_path("encrypted.pdf")) << FileType::Pdf;
    QTest::newRow("png named .pdf") << "scan.pdf" << image_bytes("PNG") << FileType::Png;
    QTest::newRow("jpeg") << "photo.jpeg" << image_bytes("JPEG") << FileType::Jpeg;
    QTest::newRow("tiff named .png") << "fax.png" << file_bytes(ingest_data_path("pages.tiff")) << FileType::Tiff;
    QTest::newRow("big-endian tiff") << "fax" << QByteArray("MM\0*\0\0\0\x08", 8) << FileType::Tiff;
    QTest::newRow("text") << "notes.txt" << QByteArray("Patient is stable.\n") << FileType::Text;
    QTest::newRow("text without extension") << "NOTES" << QByteArray("Patient is stable.\n") << FileType::Text;
    QTest::newRow("text mentioning %PDF-") << "howto.txt" << QByteArray("Files start with %PDF- and a version.\n")
                                           << FileType::Text;
    QTest::newRow("markdown") << "README.md" << QByteArray("# Title\n\nBody.\n") << FileType::Markdown;
    QTest::newRow("markdown, upper-case extension") << "NOTES.MARKDOWN" << QByteArray("*x*\n") << FileType::Markdown;
    QTest::newRow("utf-8 chinese") << "zh.txt" << QByteArray("中文文本测试\n") << FileType::Text;
    QTest::newRow("windows-1252") << "legacy.txt" << QByteArray("caf\xE9 \x93quoted\x94\n") << FileType::Text;
    QTest::newRow("utf-16 with bom") << "wide.txt" << QByteArray("\xFF\xFEh\0i\0\n\0", 8) << FileType::Text;
    QTest::newRow("gbk") << "gbk.txt" << QByteArray("\xD6\xD0\xCE\xC4\xCE\xC4\xB1\xBE\n") << FileType::Unknown;
    QTest::newRow("binary named .pdf") << "fake.pdf" << QByteArray("\x7F" "ELF\x02\x01\x01\0\0\0\0\0", 12)
                                       << FileType::Unknown;
    QTest::newRow("nul bytes named .txt") << "data.txt" << QByteArray("abc\0def\n", 8) << FileType::Unknown;
    QTest::newRow("pdf header too late") << "late.txt" << QByteArray(2000, 'x') + "\n%PDF-1.4\n" << FileType::Text;
}

void TestDetect::type_comes_from_content_not_extension() {
    QFETCH(QString, name);
    QFETCH(QByteArray, content);
    QFETCH(FileType, expected);
    QVERIFY(!content.isEmpty());
    const QString path = dir_.filePath(name);
    QFile file(path);
    QVERIFY(file.open(QIODevice::WriteOnly));
    QCOMPARE(file.write(content), content.size());
    file.close();
    const FileType detected = detect_file_type(path.toStdString());
    QVERIFY2(detected == expected, file_type_name(detected));
}

void TestDetect::empty_file_is_refused() {
    const QString path = dir_.filePath(QStringLiteral("empty.pdf"));
    QFile file(path);
    QVERIFY(file.open(QIODevice::WriteOnly));
    file.close();
    QCOMPARE(ingest_error([&] { detect_file_type(path.toStdString()); }), QStringLiteral("empty file"));
}

void TestDetect::missing_file_and_directory_are_refused() {
    const std::string missing = dir_.filePath(QStringLiteral("missing.pdf")).toStdString();
    QCOMPARE(ingest_error([&] { detect_file_type(missing); }),
             QString::fromStdString("cannot read " + missing + ": No such file or directory"));
    QCOMPARE(ingest_error([&] { detect_file_type(dir_.path().toStdString()); }),
             dir_.path() + QStringLiteral(" is a directory"));
}

void TestDetect::unreadable_file_is_refused() {
    if (::geteuid() == 0) QSKIP("root reads files whatever their permissions");
    const QString path = dir_.filePath(QStringLiteral("locked.txt"));
    QFile file(path);
    QVERIFY(file.open(QIODevice::WriteOnly));
    file.write("secret\n");
    file.close();
    QVERIFY(QFile::setPermissions(path, QFileDevice::Permissions()));
    QCOMPARE(ingest_error([&] { detect_file_type(path.toStdString()); }),
             QStringLiteral("cannot read ") + path + QStringLiteral(": Permission denied"));
}

QTEST_MAIN(TestDetect)
#include "tst_detect.moc"
