#include <QFile>
#include <QTemporaryDir>
#include <QtTest>

#include "ingest/error.h"
#include "ingest/text_file.h"
#include "tests/support/ingest_test_support.h"

using namespace folio::ingest;
using folio::test::ingest_error;

namespace {

QString text_of(const Page& page) { return QString::fromStdString(page.text); }

}  // namespace

class TestTextFile : public QObject {
    Q_OBJECT

private slots:
    void init();
    void lines_and_paragraphs_become_line_and_block_ends();
    void form_feeds_separate_pages();
    void windows_and_mac_line_ends_are_normalized();
    void byte_order_mark_is_dropped();
    void windows_1252_text_is_decoded();
    void utf16_with_byte_order_mark_is_decoded();
    void markdown_is_read_as_text();
    void empty_file_is_one_empty_page();
    void multibyte_legacy_encoding_is_refused_with_its_line();
    void binary_file_is_refused();
    void missing_file_is_refused();

private:
    std::string write(const char* name, const QByteArray& bytes);
    QTemporaryDir dir_;
};

void TestTextFile::init() { QVERIFY(dir_.isValid()); }

std::string TestTextFile::write(const char* name, const QByteArray& bytes) {
    const QString path = dir_.filePath(QLatin1String(name));
    QFile file(path);
    if (!file.open(QIODevice::WriteOnly) || file.write(bytes) != bytes.size()) qFatal("cannot write %s", name);
    return path.toStdString();
}

void TestTextFile::lines_and_paragraphs_become_line_and_block_ends() {
    const std::vector<Page> pages =
        read_text_file(write("notes.txt", "Patient reports  mild pain.\n\tNo fever.\n\n\nPlan: rest\n"));
    QCOMPARE(pages.size(), size_t(1));
    const Page& page = pages[0];
    QCOMPARE(page.number, 1);
    QVERIFY(!page.ocr);
    QCOMPARE(page.words.size(), size_t(8));
    QCOMPARE(QString::fromStdString(page.words[2].text), QStringLiteral("mild"));
    QVERIFY(page.words[3].text == "pain.");
    QVERIFY(page.words[3].line_end && !page.words[3].block_end);
    QVERIFY(!page.words[2].line_end);
    QVERIFY(page.words[4].text == "No");
    QVERIFY(page.words[5].line_end && page.words[5].block_end);  // "fever." before the blank lines
    QVERIFY(page.words[7].line_end && page.words[7].block_end);  // "rest", last word
    QVERIFY(!page.words[6].line_end);
    for (const Word& word : page.words) {
        QCOMPARE(word.box.width(), 0.0f);
        QCOMPARE(word.confidence, -1.0f);
    }
    QCOMPARE(text_of(page), QStringLiteral("Patient reports mild pain.\nNo fever.\n\nPlan: rest"));
}

void TestTextFile::form_feeds_separate_pages() {
    const std::vector<Page> pages = read_text_file(write("report.txt", "first page\n\fsecond page\n\f\fafter an empty page\n\f\n"));
    QCOMPARE(pages.size(), size_t(4));
    QCOMPARE(text_of(pages[0]), QStringLiteral("first page"));
    QCOMPARE(text_of(pages[1]), QStringLiteral("second page"));
    QCOMPARE(text_of(pages[2]), QString());
    QVERIFY(pages[2].words.empty());
    QCOMPARE(text_of(pages[3]), QStringLiteral("after an empty page"));
    QCOMPARE(pages[3].number, 4);
}

void TestTextFile::windows_and_mac_line_ends_are_normalized() {
    QCOMPARE(text_of(read_text_file(write("crlf.txt", "one\r\ntwo\r\n\r\nthree\r\n"))[0]),
             QStringLiteral("one\ntwo\n\nthree"));
    QCOMPARE(text_of(read_text_file(write("cr.txt", "one\rtwo\r\rthree"))[0]), QStringLiteral("one\ntwo\n\nthree"));
}

void TestTextFile::byte_order_mark_is_dropped() {
    QCOMPARE(text_of(read_text_file(write("bom.txt", "\xEF\xBB\xBFHello world"))[0]), QStringLiteral("Hello world"));
}

void TestTextFile::windows_1252_text_is_decoded() {
    // "The café’s “naïve” menu – €5" as Windows-1252.
    const Page page = read_text_file(write("legacy.txt", "The caf\xE9\x92s \x93na\xEFve\x94 menu \x96 \x80" "5\n"))[0];
    QCOMPARE(text_of(page), QStringLiteral("The café’s “naïve” menu – €5"));
}

void TestTextFile::utf16_with_byte_order_mark_is_decoded() {
    const QString text = QStringLiteral("Résumé 简历 \U0001F600\nline two");
    QByteArray little_endian("\xFF\xFE", 2);
    for (const QChar c : text) {
        little_endian.append(char(c.unicode() & 0xFF));
        little_endian.append(char(c.unicode() >> 8));
    }
    QCOMPARE(text_of(read_text_file(write("utf16.txt", little_endian))[0]), text);
    QByteArray big_endian("\xFE\xFF", 2);
    for (const QChar c : text) {
        big_endian.append(char(c.unicode() >> 8));
        big_endian.append(char(c.unicode() & 0xFF));
    }
    QCOMPARE(text_of(read_text_file(write("utf16be.txt", big_endian))[0]), text);
}

void TestTextFile::markdown_is_read_as_text() {
    const Page page = read_text_file(write("readme.md", "# Title\n\nSome *markdown* text.\n- item\n"))[0];
    QCOMPARE(text_of(page), QStringLiteral("# Title\n\nSome *markdown* text.\n- item"));
    QVERIFY(page.words[1].block_end);
}

void TestTextFile::empty_file_is_one_empty_page() {
    const std::vector<Page> pages = read_text_file(write("empty.txt", ""));
    QCOMPARE(pages.size(), size_t(1));
    QVERIFY(pages[0].words.empty());
}

void TestTextFile::multibyte_legacy_encoding_is_refused_with_its_line() {
    // "中文" in GBK on the second line: neither UTF-8 nor Western text.
    const std::string path = write("gbk.txt", "title\n\xD6\xD0\xCE\xC4 text\n");
    QCOMPARE(ingest_error([&] { read_text_file(path); }),
             QStringLiteral("not UTF-8 text: invalid byte 0xD6 on line 2 (Folio reads UTF-8, UTF-16 with a byte order "
                            "mark, and Windows-1252; convert the file to UTF-8)"));
}

void TestTextFile::binary_file_is_refused() {
    QCOMPARE(ingest_error([&] { read_text_file(write("data.txt", QByteArray("ab\0cd", 5))); }),
             QStringLiteral("binary content (NUL bytes)"));
    QCOMPARE(ingest_error([&] { read_text_file(write("controls.txt", "\x01\x02\x03\x04 text")); }),
             QStringLiteral("binary content (control characters)"));
}

void TestTextFile::missing_file_is_refused() {
    const std::string missing = dir_.filePath(QStringLiteral("missing.txt")).toStdString();
    QCOMPARE(ingest_error([&] { read_text_file(missing); }),
             QString::fromStdString("cannot read " + missing + ": No such file or directory"));
}

QTEST_MAIN(TestTextFile)
#include "tst_text_file.moc"
