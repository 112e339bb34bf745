#pragma once
// The document viewer: one stored library document, page by page, with the
// boxes of a cited or extracted span highlighted over the page.
//
// PDFs render through Poppler and scans or photos (PNG, JPEG, TIFF) through
// QImageReader, both on a PageRenderWorker: the viewer shows a placeholder
// until the page arrives and keeps a few rendered pages. Text and Markdown
// documents show their stored page text, the span selected. The viewer reads
// the page text and word boxes from the library, never from the file, so a
// scanned page is searched and highlighted through its OCR words.
//
// Thread rules: UI thread only. `store` is read on the UI thread and must
// outlive the viewer (the main window's app::Library::store()).

#include <QImage>
#include <QList>
#include <QRectF>
#include <QString>
#include <QWidget>

#include <cstddef>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "index/library_store.h"
#include "ingest/page.h"

class QAction;
class QLabel;
class QLineEdit;
class QListWidget;
class QPlainTextEdit;
class QScrollArea;
class QSpinBox;
class QStackedWidget;
class QToolButton;

namespace folio::ui {

class PageCanvas;
class PageRenderWorker;

// The byte ranges of `text` that `words` occupy: {begin, end} per word, or
// {npos, npos} for a word the text does not hold. `text` is the page text
// ingest built from the words (ingest::Page::text): words in order, joined by
// ' ', '\n' or "\n\n", a hyphen-split word (ending in '-', space_after false)
// joined to the next without its hyphen.
struct WordRange {
    std::size_t begin = std::string::npos, end = std::string::npos;
    bool found() const { return begin != std::string::npos; }
};
std::vector<WordRange> alignWords(const std::string& text, const std::vector<ingest::Word>& words);

// The boxes, in page points, of the words covering bytes [begin, end) of the
// page text: one rectangle per line of consecutive covered words.
QList<QRectF> spanBoxes(const std::string& text, const std::vector<ingest::Word>& words, std::size_t begin,
                        std::size_t end);

// Bytes [begin, end) of the first occurrence of `quote` in `text` (UTF-8),
// compared ignoring case, whitespace and the " | " that joins a table
// chunk's cells (the page text has the cells apart, and a PDF may place "$"
// apart from its number); begin == end == npos when there is none.
// The search starts at byte `from`.
std::pair<std::size_t, std::size_t> findQuote(const std::string& text, const QString& quote, std::size_t from = 0);

// The spans of `text` to highlight for a citation's quote: its one
// occurrence (findQuote); else, for a row of a table chunk ("Total net sales
// | $365,817 | 33%"), each cell's, as a PDF's text layer often runs a table
// column by column: the label first, then each figure (without its currency
// sign or percent mark, which the page may place apart): of its
// occurrences, the one on the label's line (by the words' boxes), else the
// first after the figure before it. Empty when nothing is found.
std::vector<std::pair<std::size_t, std::size_t>> findQuoteSpans(const std::string& text, const QString& quote,
                                                                const std::vector<ingest::Word>& words);

class DocumentViewer final : public QWidget {
    Q_OBJECT

public:
    explicit DocumentViewer(index::LibraryStore& store, QWidget* parent = nullptr);
    ~DocumentViewer() override;

    // Shows the document's first page. False, with the reason shown in the
    // view, when it is not in the library or its file is gone or unreadable.
    bool openDocument(qint64 docId);
    qint64 documentId() const { return docId_; }
    int pageCount() const { return static_cast<int>(pages_.size()); }
    int currentPage() const { return page_; }  // 1-based; 0 with no document

    // Opens docId if needed, goes to `page` and highlights the words covering
    // bytes [begin, end) of the page's stored text, scrolled into view.
    void showSpan(qint64 docId, int page, std::size_t begin, std::size_t end);
    // The same for the first occurrence of `quote` in the page's stored text
    // (ignoring case and runs of whitespace); without a highlight when absent.
    void showQuote(qint64 docId, int page, const QString& quote);
    QList<QRectF> highlightBoxes() const { return highlight_; }  // page points

    double zoom() const { return zoom_; }
    bool ocrOverlay() const { return ocrOverlay_; }
    // The current page's image as rendered for the screen; null while it
    // renders, for text documents and when it could not be rendered.
    QImage pageImage() const;
    bool isRendering() const { return renderSerial_ != 0; }
    // The message shown instead of the document; empty while one is shown.
    QString message() const;

public slots:
    void showPage(int page);
    void nextPage();
    void previousPage();
    // 1.0 shows a page at its printed size (72 points per logical inch).
    void setZoom(double factor);
    void zoomIn();
    void zoomOut();
    void fitWidth();
    void fitPage();
    void setOcrOverlay(bool on);
    void openFindBar();
    void findNext();
    void findPrevious();

signals:
    void pageChanged(int page);
    void documentOpened(qint64 docId);

protected:
    bool event(QEvent* event) override;
    bool eventFilter(QObject* watched, QEvent* event) override;

private:
    enum class Kind { None, Pdf, Image, Text };
    enum class Fit { None, Width, Page };
    struct SearchHit {
        int page = 0;
        std::size_t begin = 0, end = 0;  // bytes of the page text
    };
    struct CachedPage {
        int page = 0;
        QSize pixels;
        QImage image;
    };

    void createWidgets();
    bool open(qint64 docId, int page);
    bool handleKey(int key, Qt::KeyboardModifiers modifiers);
    void showMessage(const QString& text);
    void closeDocument();
    void highlightSpan(std::size_t begin, std::size_t end);
    void highlightSpans(const std::vector<std::pair<std::size_t, std::size_t>>& spans);
    void applyZoom(double factor, Fit fit);
    void refit();
    void layoutPage();
    void requestRender();
    void onPageRendered(quint64 serial, const QImage& image, const QString& error);
    void onThumbnailRendered(const QString& path, int page, const QImage& image);
    void requestThumbnails();
    void runSearch();
    void showHit(int index);
    void closeFindBar();
    void updateControls();
    const index::StoredPage* storedPage() const;
    double pixelsPerPoint() const;
    QSize pixelSizeFor(const index::StoredPage& page, double pixelsPerPoint) const;

    index::LibraryStore& store_;
    std::unique_ptr<PageRenderWorker> worker_;

    qint64 docId_ = 0;
    Kind kind_ = Kind::None;
    QString path_;
    std::vector<index::StoredPage> pages_;
    int page_ = 0;
    QList<QRectF> highlight_;

    double zoom_ = 1.0;
    Fit fit_ = Fit::Width;
    bool ocrOverlay_ = false;

    quint64 renderSerial_ = 0;  // the page request in flight; 0 when none
    QSize renderPixels_;
    int renderPage_ = 0;
    QList<CachedPage> cache_;  // most recently used first

    QList<SearchHit> hits_;
    int currentHit_ = -1;

    QAction* previousAction_ = nullptr;
    QAction* nextAction_ = nullptr;
    QAction* zoomInAction_ = nullptr;
    QAction* zoomOutAction_ = nullptr;
    QAction* fitWidthAction_ = nullptr;
    QAction* fitPageAction_ = nullptr;
    QAction* ocrAction_ = nullptr;
    QAction* findAction_ = nullptr;
    QSpinBox* pageSpin_ = nullptr;
    QLabel* pageCountLabel_ = nullptr;
    QLabel* zoomLabel_ = nullptr;
    QListWidget* thumbnails_ = nullptr;
    QStackedWidget* stack_ = nullptr;
    QScrollArea* scrollArea_ = nullptr;
    PageCanvas* canvas_ = nullptr;
    QPlainTextEdit* textView_ = nullptr;
    QLabel* messageLabel_ = nullptr;
    QWidget* findBar_ = nullptr;
    QLineEdit* findEdit_ = nullptr;
    QLabel* findStatus_ = nullptr;
};

}  // namespace folio::ui
