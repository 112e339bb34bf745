// The document viewer over a real library: a 10-K excerpt (text-layer PDF),
// a three-page TIFF scan (OCR'd), a Markdown note, a PDF deleted after it
// was added and one overwritten with garbage, all ingested through the
// worker processes. Offscreen; rendering runs on the viewer's own thread.

#include <QAction>
#include <QFile>
#include <QLabel>
#include <QLineEdit>
#include <QListWidget>
#include <QPlainTextEdit>
#include <QScrollArea>
#include <QScrollBar>
#include <QSignalSpy>
#include <QSpinBox>
#include <QStackedWidget>
#include <QTemporaryDir>
#include <QTest>
#include <QToolButton>

#include <memory>
#include <string>

#include "app/library.h"
#include "ui/document_viewer.h"

using folio::index::StoredPage;
using folio::ingest::Word;
using folio::ui::DocumentViewer;

namespace {

constexpr int kRenderTimeoutMs = 15000;

Word word(const char* text, float x0, float y0, float x1, float y1, bool lineEnd = false, bool spaceAfter = true) {
    Word w;
    w.text = text;
    w.box = {x0, y0, x1, y1};
    w.line_end = lineEnd;
    w.space_after = spaceAfter;
    return w;
}

QRectF boxOf(const Word& w) { return {w.box.x0, w.box.y0, w.box.width(), w.box.height()}; }

bool sameRect(const QRectF& a, const QRectF& b) {
    return qAbs(a.left() - b.left()) < 0.01 && qAbs(a.top() - b.top()) < 0.01 && qAbs(a.right() - b.right()) < 0.01 &&
           qAbs(a.bottom() - b.bottom()) < 0.01;
}

QString describe(const QList<QRectF>& rects) {
    QStringList parts;
    for (const QRectF& r : rects) parts << QString("(%1,%2 %3x%4)").arg(r.x()).arg(r.y()).arg(r.width()).arg(r.height());
    return parts.join(' ');
}

// Mean colour of an image region.
struct Tint {
    double red = 0, green = 0, blue = 0;
};
Tint meanColor(const QImage& image, const QRect& region) {
    Tint tint;
    int n = 0;
    const QRect r = region.intersected(image.rect());
    for (int y = r.top(); y <= r.bottom(); ++y)
        for (int x = r.left(); x <= r.right(); ++x) {
            const QColor c = image.pixelColor(x, y);
            tint.red += c.red();
            tint.green += c.green();
            tint.blue += c.blue();
            ++n;
        }
    if (n > 0) tint = {tint.red / n, tint.green / n, tint.blue / n};
    return tint;
}

int countDarkPixels(const QImage& image) {
    int dark = 0;
    for (int y = 0; y < image.height(); y += 2)
        for (int x = 0; x < image.width(); x += 2) dark += qGray(image.pixel(x, y)) < 100;
    return dark;
}

}  // namespace

class DocumentViewerTest : public QObject {
    Q_OBJECT

private:
    QTemporaryDir inputs_;
    QTemporaryDir libraryDir_;
    std::unique_ptr<folio::app::Library> library_;
    std::unique_ptr<DocumentViewer> viewer_;
    qint64 filing_ = 0, scan_ = 0, note_ = 0, gone_ = 0, garbled_ = 0;

    QString input(const QString& name) const { return inputs_.filePath(name); }
    qint64 idOf(const QString& name) {
        const auto record = library_->store().find_by_path(input(name).toStdString());
        return record ? record->id : 0;
    }
    StoredPage stored(qint64 doc, int page) { return *library_->store().page(doc, page); }
    template <typename T>
    T* child(const char* name) const {
        T* found = viewer_->findChild<T*>(name);
        if (!found) qFatal("no child %s", name);
        return found;
    }
    QWidget* canvas() const { return child<QWidget>("pageCanvas"); }
    QAction* action(const char* name) const { return child<QAction>(name); }

    // What spanBoxes should give, worked out here from the line flags alone:
    // the words [first, last] of a page, one united box per line.
    static QList<QRectF> lineBoxes(const std::vector<Word>& words, std::size_t first, std::size_t last) {
        QList<QRectF> boxes;
        bool open = false;
        for (std::size_t i = first; i <= last; ++i) {
            if (open) boxes.back() = boxes.back().united(boxOf(words[i]));
            else boxes.append(boxOf(words[i]));
            open = !words[i].line_end;
        }
        return boxes;
    }

    void waitForRender() {
        QTRY_VERIFY_WITH_TIMEOUT(!viewer_->isRendering() && !viewer_->pageImage().isNull(), kRenderTimeoutMs);
    }

private slots:
    void initTestCase() {
        QVERIFY(inputs_.isValid() && libraryDir_.isValid());
        const QString data = FOLIO_TEST_DATA;
        QVERIFY(QFile::copy(data + "/chunker/apple_2021_10k_p20-24.pdf", input("filing.pdf")));
        QVERIFY(QFile::copy(data + "/ingest/pages.tiff", input("scan.tiff")));
        QVERIFY(QFile::copy(data + "/ingest/layout.pdf", input("gone.pdf")));
        QVERIFY(QFile::copy(data + "/ingest/rotated.pdf", input("garbled.pdf")));
        QFile note(input("note.md"));
        QVERIFY(note.open(QIODevice::WriteOnly));
        note.write("# Audit\n\nThe audit committee met four times.\nRevenue rose to 812 million dollars.\n");
        note.close();

        library_ = std::make_unique<folio::app::Library>(libraryDir_.path().toStdString());
        folio::app::IngestRequest request;
        for (const char* name : {"filing.pdf", "scan.tiff", "note.md", "gone.pdf", "garbled.pdf"})
            request.paths.push_back(input(name).toStdString());
        request.pipeline.worker_executable = FOLIO_INGEST_WORKER;
        const folio::app::IngestReport report = library_->ingest(request);
        QVERIFY2(report.ok(), report.files.empty() ? "nothing ingested" : report.files.front().error.c_str());
        filing_ = idOf("filing.pdf");
        scan_ = idOf("scan.tiff");
        note_ = idOf("note.md");
        gone_ = idOf("gone.pdf");
        garbled_ = idOf("garbled.pdf");
        QVERIFY(filing_ && scan_ && note_ && gone_ && garbled_);
        QVERIFY(stored(scan_, 1).ocr);
        QVERIFY(!stored(scan_, 1).words.empty());

        QVERIFY(QFile::remove(input("gone.pdf")));
        QFile garbled(input("garbled.pdf"));
        QVERIFY(garbled.open(QIODevice::WriteOnly | QIODevice::Truncate));
        garbled.write("this is no longer a PDF");
    }

    void init() {
        viewer_ = std::make_unique<DocumentViewer>(library_->store());
        viewer_->resize(900, 1000);
        viewer_->show();
        QVERIFY(QTest::qWaitForWindowExposed(viewer_.get()));
    }

    void cleanup() { viewer_.reset(); }

    void spanBoxesOnHandMadePage() {
        // Three lines; "infor-" is split across the first two, and "GHOST"
        // is a word the text does not hold (it must not shift the others).
        const std::vector<Word> words = {
            word("The", 0, 0, 20, 10),        word("quick", 25, 0, 50, 10),
            word("infor-", 55, 0, 80, 10, true, false),
            word("mation", 0, 12, 30, 22),    word("GHOST", 35, 12, 60, 22),
            word("flows", 65, 12, 90, 22),    word("here.", 95, 12, 120, 22, true),
            word("Next", 0, 24, 20, 34),      word("line", 25, 24, 45, 34),
        };
        const std::string text = "The quick information flows here.\nNext line";

        const auto ranges = folio::ui::alignWords(text, words);
        QCOMPARE(ranges[2].begin, std::size_t(10));
        QCOMPARE(ranges[2].end, std::size_t(15));  // "infor" without its hyphen
        QCOMPARE(ranges[3].begin, std::size_t(15));
        QVERIFY(!ranges[4].found());
        QCOMPARE(ranges[5].begin, std::size_t(22));
        QCOMPARE(ranges[8].begin, std::size_t(39));

        // "quick information flows here.\nNext": three lines, one box each.
        QList<QRectF> boxes = folio::ui::spanBoxes(text, words, 4, 38);
        QCOMPARE(boxes.size(), 3);
        QVERIFY2(sameRect(boxes[0], QRectF(25, 0, 55, 10)), qPrintable(describe(boxes)));
        QVERIFY2(sameRect(boxes[1], QRectF(0, 12, 120, 10)), qPrintable(describe(boxes)));
        QVERIFY2(sameRect(boxes[2], QRectF(0, 24, 20, 10)), qPrintable(describe(boxes)));

        // A span inside one word takes the whole word; the hyphen-split word
        // is found from either half.
        boxes = folio::ui::spanBoxes(text, words, 17, 18);
        QCOMPARE(boxes.size(), 1);
        QVERIFY(sameRect(boxes[0], QRectF(0, 12, 30, 10)));
        QCOMPARE(folio::ui::spanBoxes(text, words, 12, 17).size(), 2);
        // The space between words and an empty span cover nothing.
        QVERIFY(folio::ui::spanBoxes(text, words, 9, 10).isEmpty());
        QVERIFY(folio::ui::spanBoxes(text, words, 5, 5).isEmpty());

        const auto [begin, end] = folio::ui::findQuote(text, "  INFORMATION\n\t flows ");
        QCOMPARE(begin, std::size_t(10));
        QCOMPARE(end, std::size_t(27));
        QCOMPARE(folio::ui::findQuote(text, "here. next").first, std::size_t(28));
        QCOMPARE(folio::ui::findQuote(text, "not there").first, std::string::npos);
    }

    // A citation's quote from a table chunk has its cells joined by " | "
    // (ingest/chunker.h), while the page text has them apart, with "$" and
    // "%" split from their numbers as the PDF placed them.
    void tableQuoteIsFoundInThePageText() {
        const std::string page = "Net sales by category:\nTotal net sales $ 365,817 33 % $ 274,515\nNext line";
        const auto [begin, end] = folio::ui::findQuote(page, "Total net sales | $365,817 | 33% | $274,515");
        QCOMPARE(begin, page.find("Total"));
        QCOMPARE(end, page.find("274,515") + 7);

        // Column by column, as Poppler often reads a table: each cell apart.
        const std::string columns = "iPhone\nTotal net sales\n\n$\n\n$\n\nChange\n\n191,973\n365,817\n33 %\n274,515\n";
        const auto spans = folio::ui::findQuoteSpans(columns, "Total net sales | $365,817 | 33% | $274,515", {});
        QCOMPARE(spans.size(), std::size_t(4));
        QCOMPARE(spans[0].first, columns.find("Total"));
        QCOMPARE(spans[1].first, columns.find("365,817"));
        QCOMPARE(spans[2].first, columns.find("33 %"));
        QCOMPARE(spans[3].first, columns.find("274,515"));
        QVERIFY(folio::ui::findQuoteSpans(columns, "Revenue grew", {}).empty());
        // A figure is matched whole, never across the figures of a column.
        const std::string change = "Change\n23 %\n30 %\n33 %\n";
        QCOMPARE(folio::ui::findQuote(change, "33").first, change.find("33"));
        QCOMPARE(folio::ui::findQuote("Total 2330 and more", "33").first, std::string::npos);
    }

    // Column by column, a figure may stand in several rows ("33" for Japan
    // and for the total): the one on the row label's line is the cell.
    void tableCellsAreTakenFromTheRowOfTheirLabel() {
        // Labels at x 0, the Change column at x 200; rows 12 points apart.
        const std::vector<Word> words = {
            word("Japan", 0, 0, 40, 10, true),          word("Total", 0, 12, 30, 22),
            word("net", 35, 12, 50, 22),                word("sales", 55, 12, 80, 22, true),
            word("33", 200, 0, 212, 10, true),          word("33", 200, 12, 212, 22, true),
        };
        const std::string text = "Japan\nTotal net sales\n33\n33";
        const auto spans = folio::ui::findQuoteSpans(text, "Total net sales | 33%", words);
        QCOMPARE(spans.size(), std::size_t(2));
        QCOMPARE(spans[0].first, text.find("Total"));
        QCOMPARE(spans[1].first, text.rfind("33"));  // the total's row, not Japan's
    }

    void opensPdfAtTheRightAspect() {
        QSignalSpy opened(viewer_.get(), &DocumentViewer::documentOpened);
        QVERIFY(viewer_->openDocument(filing_));
        QCOMPARE(opened.size(), 1);
        QCOMPARE(viewer_->documentId(), filing_);
        QCOMPARE(viewer_->pageCount(), 5);
        QCOMPARE(viewer_->currentPage(), 1);
        QVERIFY(viewer_->message().isEmpty());
        // A placeholder until the render thread's image comes back.
        QVERIFY(viewer_->isRendering());
        QVERIFY(viewer_->pageImage().isNull());
        QCOMPARE(child<QListWidget>("thumbnailStrip")->count(), 5);
        QCOMPARE(countDarkPixels(child<QListWidget>("thumbnailStrip")->item(4)->icon().pixmap(96, 128).toImage()), 0);
        waitForRender();
        const QImage image = viewer_->pageImage();
        const StoredPage page = stored(filing_, 1);
        QVERIFY2(qAbs(double(image.width()) / image.height() - page.width / page.height) < 0.01,
                 qPrintable(QString("%1x%2").arg(image.width()).arg(image.height())));
        // Rendered for the screen's pixels, not the widget's logical size.
        QCOMPARE(image.size(), canvas()->size() * viewer_->devicePixelRatioF());
        QVERIFY2(countDarkPixels(image) > 500, "the page rendered blank");
        // Thumbnails replace their blank placeholders as they render.
        QListWidgetItem* lastThumbnail = child<QListWidget>("thumbnailStrip")->item(4);
        QTRY_VERIFY_WITH_TIMEOUT(countDarkPixels(lastThumbnail->icon().pixmap(96, 128).toImage()) > 20, kRenderTimeoutMs);

        // Pages rendered at this size come back from the cache at once.
        viewer_->showPage(2);
        QVERIFY(viewer_->isRendering());
        waitForRender();
        viewer_->showPage(1);
        QVERIFY(!viewer_->isRendering());
        QCOMPARE(viewer_->pageImage(), image);
    }

    void showSpanHighlightsTheWordBoxes() {
        QSignalSpy pageChanged(viewer_.get(), &DocumentViewer::pageChanged);
        viewer_->setZoom(2.0);  // taller than the view, so the span has to be scrolled to
        const StoredPage page = stored(filing_, 3);
        const auto ranges = folio::ui::alignWords(page.text, page.words);
        // Six words near the bottom of the page, crossing a line end.
        std::size_t last = page.words.size() - 3;
        while (last > 0 && !page.words[last - 3].line_end) --last;
        const std::size_t first = last - 5;
        for (std::size_t i = first; i <= last; ++i) QVERIFY(ranges[i].found());

        viewer_->showSpan(filing_, 3, ranges[first].begin, ranges[last].end);
        QCOMPARE(viewer_->documentId(), filing_);
        QCOMPARE(viewer_->currentPage(), 3);
        QCOMPARE(pageChanged.size(), 1);
        QCOMPARE(pageChanged.front().front().toInt(), 3);
        const QList<QRectF> expected = lineBoxes(page.words, first, last);
        const QList<QRectF> boxes = viewer_->highlightBoxes();
        QVERIFY2(expected.size() >= 2, "the span should cross a line");
        QCOMPARE(boxes.size(), expected.size());
        for (int i = 0; i < boxes.size(); ++i)
            QVERIFY2(sameRect(boxes[i], expected[i]), qPrintable(describe(boxes) + " vs " + describe(expected)));

        // Scrolled into view: the first box lies inside the visible part.
        auto* area = child<QScrollArea>("pageScrollArea");
        QVERIFY(area->verticalScrollBar()->value() > 0);
        const double scale = canvas()->width() / page.width;
        const QPoint centre((boxes[0].center() * scale).toPoint());
        QVERIFY(area->viewport()->rect().contains(canvas()->mapTo(area->viewport(), centre)));

        // The boxes belong to their page: leaving it drops them.
        QTest::keyClick(area, Qt::Key_PageDown);
        QCOMPARE(viewer_->currentPage(), 4);
        QVERIFY(viewer_->highlightBoxes().isEmpty());
    }

    void showQuoteIgnoresCaseAndWhitespace() {
        const StoredPage page = stored(filing_, 2);
        const QString text = QString::fromStdString(page.text);
        // A sentence of the page, its spaces and case changed.
        qsizetype start = text.indexOf(". ", text.size() / 3) + 2;
        QString sentence = text.mid(start, 60);
        sentence.truncate(sentence.lastIndexOf(' '));
        QVERIFY(sentence.count(' ') >= 4);
        QString quote = sentence.toUpper();
        quote.replace(' ', "  \n ");

        viewer_->showQuote(filing_, 2, quote);
        QCOMPARE(viewer_->currentPage(), 2);
        const std::size_t begin = text.left(start).toUtf8().size();
        const std::size_t end = begin + sentence.toUtf8().size();
        const QList<QRectF> expected = folio::ui::spanBoxes(page.text, page.words, begin, end);
        QVERIFY(!expected.isEmpty());
        QCOMPARE(viewer_->highlightBoxes(), expected);

        viewer_->showQuote(filing_, 4, "a sentence this filing never says");
        QCOMPARE(viewer_->currentPage(), 4);
        QVERIFY(viewer_->highlightBoxes().isEmpty());
    }

    void findBarFindsAndStepsThroughHits() {
        QVERIFY(viewer_->openDocument(filing_));
        const QString needle = "net sales";
        QList<int> expectedPages;
        for (int p = 1; p <= 5; ++p) {
            const QString text = QString::fromStdString(stored(filing_, p).text);
            for (int n = text.count(needle, Qt::CaseInsensitive); n > 0; --n) expectedPages << p;
        }
        QVERIFY2(expectedPages.size() >= 3, "the filing should say net sales several times");

        auto* findBar = child<QWidget>("findBar");
        auto* findEdit = child<QLineEdit>("findEdit");
        QVERIFY(!findBar->isVisible());
        canvas()->setFocus();
        QTest::keyClick(child<QScrollArea>("pageScrollArea"), Qt::Key_F, Qt::ControlModifier);
        QVERIFY(findBar->isVisible());
        QTRY_VERIFY(findEdit->hasFocus());
        QTest::keyClicks(findEdit, "NET Sales");
        auto* status = child<QLabel>("findStatus");
        QCOMPARE(status->text(), QString("1 of %1").arg(expectedPages.size()));
        QCOMPARE(viewer_->currentPage(), expectedPages[0]);

        QTest::keyClick(findEdit, Qt::Key_Return);
        QCOMPARE(status->text(), QString("2 of %1").arg(expectedPages.size()));
        QCOMPARE(viewer_->currentPage(), expectedPages[1]);
        QTest::mouseClick(child<QToolButton>("findPreviousButton"), Qt::LeftButton);
        QTest::mouseClick(child<QToolButton>("findPreviousButton"), Qt::LeftButton);
        QCOMPARE(status->text(), QString("%1 of %1").arg(expectedPages.size()));
        QCOMPARE(viewer_->currentPage(), expectedPages.back());

        findEdit->clear();
        QTest::keyClicks(findEdit, "no such phrase here");
        QCOMPARE(status->text(), QString("No matches"));
        QTest::keyClick(findEdit, Qt::Key_Escape);
        QVERIFY(!findBar->isVisible());

        // Scanned pages are searched through their OCR text.
        QVERIFY(viewer_->openDocument(scan_));
        const StoredPage third = stored(scan_, 3);
        const QString ocrWord = QString::fromStdString(third.words.front().text);
        QTest::keyClick(viewer_.get(), Qt::Key_F, Qt::ControlModifier);
        QTest::keyClicks(findEdit, ocrWord);
        QVERIFY2(status->text().contains(" of "), qPrintable(status->text()));
        QVERIFY(!child<QLabel>("findStatus")->text().isEmpty());
    }

    void pageKeysButtonsSpinBoxAndThumbnails() {
        QVERIFY(viewer_->openDocument(filing_));
        QSignalSpy pageChanged(viewer_.get(), &DocumentViewer::pageChanged);
        auto* area = child<QScrollArea>("pageScrollArea");
        QTest::keyClick(area, Qt::Key_PageDown);
        QCOMPARE(viewer_->currentPage(), 2);
        for (int i = 0; i < 6; ++i) QTest::keyClick(area, Qt::Key_PageDown);
        QCOMPARE(viewer_->currentPage(), 5);
        QVERIFY(!action("nextPageAction")->isEnabled());
        QTest::keyClick(area, Qt::Key_PageUp);
        QCOMPARE(viewer_->currentPage(), 4);
        QCOMPARE(pageChanged.size(), 5);  // none for the presses past the last page

        auto* spin = child<QSpinBox>("pageSpin");
        QCOMPARE(spin->value(), 4);
        spin->setValue(2);
        QCOMPARE(viewer_->currentPage(), 2);
        action("nextPageAction")->trigger();
        QCOMPARE(viewer_->currentPage(), 3);
        QCOMPARE(spin->value(), 3);
        QTest::keyClick(spin, Qt::Key_PageUp);
        QCOMPARE(viewer_->currentPage(), 2);

        auto* strip = child<QListWidget>("thumbnailStrip");
        QCOMPARE(strip->currentRow(), 1);
        const QRect fifth = strip->visualItemRect(strip->item(4));
        QVERIFY(!fifth.isEmpty());
        QTest::mouseClick(strip->viewport(), Qt::LeftButton, {}, fifth.center());
        QCOMPARE(viewer_->currentPage(), 5);
        waitForRender();
    }

    void zoomAndFit() {
        QVERIFY(viewer_->openDocument(filing_));
        const StoredPage page = stored(filing_, 1);
        const double perPoint = viewer_->logicalDpiX() / 72.0;
        viewer_->setZoom(1.5);
        QCOMPARE(viewer_->zoom(), 1.5);
        QCOMPARE(canvas()->width(), qRound(page.width * 1.5 * perPoint));
        waitForRender();
        QCOMPARE(viewer_->pageImage().size(), canvas()->size() * viewer_->devicePixelRatioF());
        action("zoomInAction")->trigger();
        QCOMPARE(viewer_->zoom(), 1.5 * 1.25);
        action("zoomOutAction")->trigger();
        action("zoomOutAction")->trigger();
        QCOMPARE(viewer_->zoom(), 1.5 / 1.25);

        auto* area = child<QScrollArea>("pageScrollArea");
        action("fitWidthAction")->trigger();
        QTRY_VERIFY(canvas()->width() <= area->viewport()->width());
        QVERIFY2(canvas()->width() >= area->viewport()->width() - 40,
                 qPrintable(QString("%1 in %2").arg(canvas()->width()).arg(area->viewport()->width())));
        // Fit width follows the view's size.
        const double before = viewer_->zoom();
        viewer_->resize(700, 1000);
        QTRY_VERIFY(viewer_->zoom() < before);
        QTRY_VERIFY(canvas()->width() <= area->viewport()->width());

        action("fitPageAction")->trigger();
        QVERIFY(canvas()->height() <= area->viewport()->height());
        QVERIFY(canvas()->width() <= area->viewport()->width());
        QVERIFY(canvas()->height() >= area->viewport()->height() - 40 ||
                canvas()->width() >= area->viewport()->width() - 40);
        waitForRender();
        QCOMPARE(viewer_->pageImage().size(), canvas()->size() * viewer_->devicePixelRatioF());
    }

    void ocrOverlayOnAScannedPage() {
        QVERIFY(viewer_->openDocument(filing_));
        QVERIFY(!action("ocrOverlayAction")->isEnabled());  // a text layer, no OCR

        QVERIFY(viewer_->openDocument(scan_));
        QCOMPARE(viewer_->pageCount(), 3);
        viewer_->showPage(2);
        const StoredPage page = stored(scan_, 2);
        QVERIFY(page.ocr);
        waitForRender();
        const QImage image = viewer_->pageImage();
        QVERIFY(qAbs(double(image.width()) / image.height() - page.width / page.height) < 0.01);
        QVERIFY(countDarkPixels(image) > 50);
        QAction* overlay = action("ocrOverlayAction");
        QVERIFY(overlay->isEnabled());
        QVERIFY(!overlay->isChecked());

        auto bluePixels = [&](const QImage& grabbed) {
            const double scale = canvas()->width() * grabbed.devicePixelRatio() / page.width;  // device pixels per point
            int blue = 0;
            for (const Word& w : page.words) {
                const QRect r = QRect((QPointF(w.box.x0, w.box.y0) * scale).toPoint(),
                                      (QPointF(w.box.x1, w.box.y1) * scale).toPoint())
                                    .intersected(grabbed.rect());
                for (int y = r.top(); y <= r.bottom(); ++y)
                    for (int x = r.left(); x <= r.right(); ++x) {
                        const QColor c = grabbed.pixelColor(x, y);
                        blue += c.blue() > c.red() + 60;
                    }
            }
            return blue;
        };
        const QImage plain = canvas()->grab().toImage();
        QCOMPARE(bluePixels(plain), 0);  // a grey scan
        overlay->trigger();
        QVERIFY(viewer_->ocrOverlay());
        const QImage withText = canvas()->grab().toImage();
        QVERIFY2(bluePixels(withText) > 20 * int(page.words.size()), "the OCR words were not drawn");
        // The veil fades the scan outside the words.
        const QRect margin(0, 0, canvas()->width(), 4);
        QVERIFY(meanColor(withText, margin).red >= meanColor(plain, margin).red - 1);
        viewer_->setOcrOverlay(false);
        QVERIFY(!overlay->isChecked());
        QCOMPARE(bluePixels(canvas()->grab().toImage()), 0);
    }

    void missingOrUnreadableFileShowsAMessage() {
        QVERIFY(!viewer_->openDocument(gone_));
        QVERIFY2(viewer_->message().contains("gone.pdf is gone"), qPrintable(viewer_->message()));
        auto* label = child<QLabel>("viewerMessage");
        QVERIFY(label->isVisible());
        QCOMPARE(viewer_->documentId(), 0);
        QCOMPARE(viewer_->pageCount(), 0);
        viewer_->showSpan(gone_, 1, 0, 10);  // no crash, the message stays
        QVERIFY(label->isVisible());

        QVERIFY(!viewer_->openDocument(987654));
        QVERIFY2(viewer_->message().contains("not in the library"), qPrintable(viewer_->message()));

        // Present but no longer a PDF: the render fails and says so.
        QVERIFY(viewer_->openDocument(garbled_));
        QTRY_VERIFY_WITH_TIMEOUT(!viewer_->isRendering(), kRenderTimeoutMs);
        QVERIFY2(viewer_->message().contains("cannot read garbled.pdf"), qPrintable(viewer_->message()));
        QVERIFY(viewer_->pageImage().isNull());

        // And a good document still opens afterwards.
        QVERIFY(viewer_->openDocument(filing_));
        QVERIFY(viewer_->message().isEmpty());
        waitForRender();
    }

    void highlightTintsThePixelsUnderItsBoxes() {
        QVERIFY(viewer_->openDocument(filing_));
        viewer_->fitWidth();
        const StoredPage page = stored(filing_, 1);
        const auto ranges = folio::ui::alignWords(page.text, page.words);
        waitForRender();
        const QImage before = viewer_->grab().toImage();
        viewer_->showSpan(filing_, 1, ranges[0].begin, ranges[2].end);
        const QList<QRectF> boxes = viewer_->highlightBoxes();
        QVERIFY(!boxes.isEmpty());
        const QImage after = viewer_->grab().toImage();
        QCOMPARE(after.size(), before.size());

        const double scale = canvas()->width() / page.width;
        const double dpr = after.devicePixelRatio();
        const QRectF inCanvas(boxes[0].topLeft() * scale, boxes[0].size() * scale);
        const QRect inViewer(canvas()->mapTo(viewer_.get(), inCanvas.topLeft().toPoint()) * dpr,
                             (inCanvas.size() * dpr).toSize());
        const Tint plain = meanColor(before, inViewer), tinted = meanColor(after, inViewer);
        QVERIFY2(qAbs(plain.red - plain.blue) < 5, "the page should be black on white before");
        QVERIFY2(tinted.red - tinted.blue > 30,
                 qPrintable(QString("r %1 g %2 b %3").arg(tinted.red).arg(tinted.green).arg(tinted.blue)));
        // Outside the boxes nothing changed.
        const QRect below = inViewer.translated(0, inViewer.height() * 6);
        QVERIFY(qAbs(meanColor(after, below).blue - meanColor(before, below).blue) < 1);
    }

    void textDocumentSelectsTheSpan() {
        const StoredPage page = stored(note_, 1);
        const std::string sentence = "audit committee met";
        const std::size_t begin = page.text.find(sentence);
        QVERIFY(begin != std::string::npos);
        viewer_->showSpan(note_, 1, begin, begin + sentence.size());
        QCOMPARE(viewer_->documentId(), note_);
        auto* text = child<QPlainTextEdit>("pageTextView");
        QVERIFY(text->isVisible());
        QVERIFY(text->isReadOnly());
        QCOMPARE(text->textCursor().selectedText(), QString::fromStdString(sentence));
        QVERIFY(viewer_->pageImage().isNull());
        QVERIFY(!child<QListWidget>("thumbnailStrip")->isVisible());

        viewer_->showQuote(note_, 1, "REVENUE rose\n to");
        QCOMPARE(text->textCursor().selectedText(), QString("Revenue rose to"));
    }
};

QTEST_MAIN(DocumentViewerTest)
#include "tst_document_viewer.moc"
