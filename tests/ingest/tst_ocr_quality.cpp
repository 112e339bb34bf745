// OCR quality against known text, on a small committed sample of the
// evaluation sets that tools/make_scan_set.py builds (provenance in
// tests/data/ocr_quality/SOURCES.md). The full measurement is
// tools/eval_ingest.py; this is the CI-sized guard of the same thresholds:
//   ACI-Bench note scans (single-column prose): CER <= 2 % clean, <= 5 % degraded;
//   SEC filing page scans (tables, columns): recall of alphanumeric tokens
//   against pdftotext's text >= 98 % clean, >= 95 % degraded.
//
// Degraded samples are committed files where they cannot be made from a clean
// scan (jpeg60, dpi200: a real 200-DPI render), or made here from a committed
// clean 300-DPI scan as make_scan_set.py makes them (rot90, rot180: exact pixel
// rotations; skew2: 2 degrees, smooth, white fill; noise: seeded Gaussian
// sigma 10/255 plus 0.2 % salt-and-pepper), which keeps the data small (a
// noisy page alone compresses to megabytes).
//
// Normalization (the same as tools/eval_ingest.py): Unicode NFKC; typographic
// quotes to ASCII; hyphen/dash/minus characters to '-'; soft hyphens dropped;
// whitespace runs to one space; trimmed. CER = Levenshtein over code points /
// truth length. Tokens: maximal runs of letters and digits after NFKC, case
// kept, compared as multisets (order-free).

#include <QDir>
#include <QFile>
#include <QFileInfo>
#include <QHash>
#include <QImage>
#include <QPainter>
#include <QTemporaryDir>
#include <QTransform>
#include <QtTest>
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <memory>
#include <numbers>
#include <random>
#include <vector>
#include "ingest/detect.h"
#include "ingest/ocr.h"

using namespace folio::ingest;

namespace {

constexpr double kCleanMaxCer = 0.02;
constexpr double kDegradedMaxCer = 0.05;
constexpr double kCleanMinRecall = 0.98;
constexpr double kDegradedMinRecall = 0.95;
constexpr std::uint32_t kNoiseSeed = 20240611;

QString data_path(const QString& name) {
    return QStringLiteral(FOLIO_TEST_DATA "/ocr_quality/") + name;
}

// QString::toUcs4()'s type (QList<uint> in Qt 6.4).
using CodePoints = decltype(QString().toUcs4());

QString normalized(const QString& text) {
    QString t = text.normalized(QString::NormalizationForm_KC);
    QString out;
    out.reserve(t.size());
    bool pending_space = false;
    for (QChar c : t) {
        switch (c.unicode()) {
        case 0x2018: case 0x2019: case 0x201a: case 0x201b: case 0x2032: c = u'\''; break;
        case 0x201c: case 0x201d: case 0x201e: case 0x201f: case 0x2033: c = u'"'; break;
        case 0x2010: case 0x2011: case 0x2012: case 0x2013: case 0x2014: case 0x2015: case 0x2212:
            c = u'-';
            break;
        case 0x00ad: continue;
        default: break;
        }
        if (c.isSpace()) {
            pending_space = !out.isEmpty();
            continue;
        }
        if (pending_space) out += u' ';
        pending_space = false;
        out += c;
    }
    return out;
}

// Unit-cost edit distance over code points, two rows.
qsizetype levenshtein(const CodePoints& a, const CodePoints& b) {
    std::vector<qsizetype> prev(b.size() + 1), cur(b.size() + 1);
    for (qsizetype j = 0; j <= b.size(); ++j) prev[j] = j;
    for (qsizetype i = 1; i <= a.size(); ++i) {
        cur[0] = i;
        for (qsizetype j = 1; j <= b.size(); ++j)
            cur[j] = std::min({prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (a[i - 1] != b[j - 1] ? 1 : 0)});
        std::swap(prev, cur);
    }
    return prev[b.size()];
}

double character_error_rate(const QString& truth, const QString& text) {
    const CodePoints t = normalized(truth).toUcs4(), h = normalized(text).toUcs4();
    if (t.isEmpty()) return h.isEmpty() ? 0.0 : 1.0;
    return double(levenshtein(t, h)) / double(t.size());
}

QHash<QString, int> token_counts(const QString& text) {
    QHash<QString, int> counts;
    QString token;
    for (char32_t c : text.normalized(QString::NormalizationForm_KC).toUcs4()) {
        if (QChar::isLetterOrNumber(c)) {
            token += QString::fromUcs4(&c, 1);
        } else if (!token.isEmpty()) {
            ++counts[token];
            token.clear();
        }
    }
    if (!token.isEmpty()) ++counts[token];
    return counts;
}

// Order-free recall: the share of the truth's tokens (with multiplicity)
// found in the text. `missing` lists a few absent ones for the failure message.
double token_recall(const QString& truth, const QString& text, QStringList* missing = nullptr) {
    const QHash<QString, int> want = token_counts(truth), got = token_counts(text);
    int total = 0, found = 0;
    for (auto it = want.begin(); it != want.end(); ++it) {
        total += it.value();
        const int hit = std::min(it.value(), got.value(it.key()));
        found += hit;
        if (missing && hit < it.value() && missing->size() < 12) missing->append(it.key());
    }
    return total ? double(found) / total : 1.0;
}

QString read_truth(const QString& name) {
    QFile file(data_path(name));
    if (!file.open(QIODevice::ReadOnly)) return {};
    return QString::fromUtf8(file.readAll());
}

// Gaussian noise from a fixed generator (Box-Muller on mt19937 words, so the
// image is the same with every standard library), then salt and pepper.
QImage with_noise(QImage image, std::uint32_t seed) {
    std::mt19937 gen(seed);
    auto uniform = [&gen] { return (double(gen()) + 0.5) / 4294967296.0; };
    constexpr double sigma = 10.0, salt_pepper = 0.002;
    for (int y = 0; y < image.height(); ++y) {
        uchar* row = image.scanLine(y);
        for (int x = 0; x < image.width(); ++x) {
            const double z = std::sqrt(-2.0 * std::log(uniform())) * std::cos(2.0 * std::numbers::pi * uniform());
            double v = row[x] + sigma * z;
            const double u = uniform();
            if (u < salt_pepper / 2) v = 0;
            else if (u > 1 - salt_pepper / 2) v = 255;
            row[x] = uchar(std::clamp(v, 0.0, 255.0));
        }
    }
    return image;
}

// Rotated by `degrees` counter-clockwise about the centre, same size, white
// where no page was (a sheet fed askew).
QImage skewed(const QImage& image, double degrees) {
    QImage out(image.size(), QImage::Format_Grayscale8);
    out.fill(Qt::white);
    QPainter painter(&out);
    painter.setRenderHint(QPainter::SmoothPixmapTransform);
    painter.translate(image.width() / 2.0, image.height() / 2.0);
    painter.rotate(-degrees);  // QPainter turns clockwise on screen
    painter.translate(-image.width() / 2.0, -image.height() / 2.0);
    painter.drawImage(0, 0, image);
    painter.end();
    return out;
}

}  // namespace

class TestOcrQuality : public QObject {
    Q_OBJECT

private slots:
    void initTestCase();
    void metrics();
    void aci_notes_data();
    void aci_notes();
    void filing_pages_data();
    void filing_pages();

private:
    // The image to OCR: the committed file, or a variant of it written into
    // the temporary folder ("rot90", "rot180", "skew2", "noise").
    QString sample(const QString& file, const QString& variant);
    Page recognize(const QString& path);

    QTemporaryDir tmp_;
    std::unique_ptr<OcrEngine> engine_;
};

void TestOcrQuality::initTestCase() {
    QVERIFY(tmp_.isValid());
    QVERIFY2(QDir(data_path({})).exists(), "tests/data/ocr_quality is missing");
    OcrOptions options;
    options.languages = "eng";
    engine_ = std::make_unique<OcrEngine>(options);
}

void TestOcrQuality::metrics() {
    QCOMPARE(levenshtein(QString("kitten").toUcs4(), QString("sitting").toUcs4()), 3);
    QCOMPARE(normalized(QString::fromUtf8("  a\u00a0b\n\n c\u202fd \ufb01 \u201cq\u201d \u2014 x\u00ady ")),
             QString("a b c d fi \"q\" - xy"));
    QCOMPARE(character_error_rate("abc def", "abc  def\n"), 0.0);
    QCOMPARE(character_error_rate("abcdefghij", "abcdefghiX"), 0.1);
    QCOMPARE(token_recall("Net sales $1,234 (2021)", "2021 Net sales 1 234"), 1.0);
    QCOMPARE(token_recall("a a b b", "a b"), 0.5);
}

void TestOcrQuality::aci_notes_data() {
    QTest::addColumn<QString>("file");
    QTest::addColumn<QString>("variant");
    QTest::addColumn<QString>("truth");
    QTest::addColumn<double>("max_cer");
    const QString a = "aci_D2N001_p1", b = "aci_D2N009_p1";
    QTest::newRow("D2N001 p1 clean") << a + ".clean.png" << "" << a + ".txt" << kCleanMaxCer;
    QTest::newRow("D2N009 p1 clean") << b + ".clean.png" << "" << b + ".txt" << kCleanMaxCer;
    QTest::newRow("D2N001 p1 rot90") << a + ".clean.png" << "rot90" << a + ".txt" << kDegradedMaxCer;
    QTest::newRow("D2N009 p1 rot180") << b + ".clean.png" << "rot180" << b + ".txt" << kDegradedMaxCer;
    QTest::newRow("D2N001 p1 noise") << a + ".clean.png" << "noise" << a + ".txt" << kDegradedMaxCer;
    QTest::newRow("D2N009 p1 skew2") << b + ".clean.png" << "skew2" << b + ".txt" << kDegradedMaxCer;
    QTest::newRow("D2N005 p1 jpeg60") << "aci_D2N005_p1.jpeg60.jpg" << "" << "aci_D2N005_p1.txt" << kDegradedMaxCer;
    QTest::newRow("D2N020 p1 dpi200") << "aci_D2N020_p1.dpi200.png" << "" << "aci_D2N020_p1.txt" << kDegradedMaxCer;
}

void TestOcrQuality::aci_notes() {
    QFETCH(QString, file);
    QFETCH(QString, variant);
    QFETCH(QString, truth);
    QFETCH(double, max_cer);
    const QString expected = read_truth(truth);
    QVERIFY2(!expected.isEmpty(), qPrintable("missing truth " + truth));
    const QString path = sample(file, variant);
    QVERIFY(!path.isEmpty());

    const Page page = recognize(path);
    QVERIFY2(page.error.empty(), page.error.c_str());
    QVERIFY(page.ocr);
    const double cer = character_error_rate(expected, QString::fromStdString(page.text));
    qInfo("%s: CER %.3f %% (limit %.0f %%), rotation %d, skew %.2f, confidence %.1f",
          QTest::currentDataTag(), 100 * cer, 100 * max_cer, page.rotation, page.skew_degrees,
          page.mean_confidence);
    QVERIFY2(cer <= max_cer, qPrintable(QString("CER %1 % over the %2 % limit; OCR text begins: %3")
                                            .arg(100 * cer, 0, 'f', 3)
                                            .arg(100 * max_cer, 0, 'f', 0)
                                            .arg(QString::fromStdString(page.text).left(300))));
}

void TestOcrQuality::filing_pages_data() {
    QTest::addColumn<QString>("file");
    QTest::addColumn<QString>("variant");
    QTest::addColumn<QString>("truth");
    QTest::addColumn<double>("min_recall");
    // A table with footnote markers, and footnotes.
    const QString p = "filing_APPLE_2021_10K_p40";
    QTest::newRow("APPLE p40 clean") << p + ".clean.png" << "" << p + ".txt" << kCleanMinRecall;
    QTest::newRow("APPLE p40 dpi200") << p + ".dpi200.png" << "" << p + ".txt" << kDegradedMinRecall;
    QTest::newRow("APPLE p40 noise") << p + ".clean.png" << "noise" << p + ".txt" << kDegradedMinRecall;
    QTest::newRow("APPLE p40 skew2") << p + ".clean.png" << "skew2" << p + ".txt" << kDegradedMinRecall;
}

void TestOcrQuality::filing_pages() {
    QFETCH(QString, file);
    QFETCH(QString, variant);
    QFETCH(QString, truth);
    QFETCH(double, min_recall);
    const QString expected = read_truth(truth);
    QVERIFY2(!expected.isEmpty(), qPrintable("missing truth " + truth));
    const QString path = sample(file, variant);
    QVERIFY(!path.isEmpty());

    const Page page = recognize(path);
    QVERIFY2(page.error.empty(), page.error.c_str());
    QStringList missing;
    const double recall = token_recall(expected, QString::fromStdString(page.text), &missing);
    qInfo("%s: token recall %.3f %% (limit %.0f %%), rotation %d, skew %.2f, confidence %.1f",
          QTest::currentDataTag(), 100 * recall, 100 * min_recall, page.rotation, page.skew_degrees,
          page.mean_confidence);
    QVERIFY2(recall >= min_recall, qPrintable(QString("token recall %1 % under the %2 % limit; missing: %3")
                                                  .arg(100 * recall, 0, 'f', 3)
                                                  .arg(100 * min_recall, 0, 'f', 0)
                                                  .arg(missing.join(' '))));
}

QString TestOcrQuality::sample(const QString& file, const QString& variant) {
    const QString source = data_path(file);
    if (!QFile::exists(source)) {
        qWarning("missing sample %s", qPrintable(source));
        return {};
    }
    if (variant.isEmpty()) return source;
    QImage image(source);
    if (image.isNull()) return {};
    image = image.convertToFormat(QImage::Format_Grayscale8);
    if (variant == "rot90") {
        image = image.transformed(QTransform().rotate(-90));  // counter-clockwise, as make_scan_set.py
    } else if (variant == "rot180") {
        image = image.transformed(QTransform().rotate(180));
    } else if (variant == "noise") {
        image = with_noise(image, kNoiseSeed);
    } else if (variant == "skew2") {
        image = skewed(image, 2.0);
    } else {
        qWarning("unknown variant %s", qPrintable(variant));
        return {};
    }
    const int dots = QImage(source).dotsPerMeterX();
    image.setDotsPerMeterX(dots);
    image.setDotsPerMeterY(dots);
    const QString out = tmp_.filePath(QFileInfo(file).completeBaseName() + "." + variant + ".png");
    if (!image.save(out, "PNG")) return {};
    return out;
}

Page TestOcrQuality::recognize(const QString& path) {
    const std::string file = path.toStdString();
    return engine_->recognize_image_page(file, detect_file_type(file), 1);
}

QTEST_MAIN(TestOcrQuality)
#include "tst_ocr_quality.moc"
