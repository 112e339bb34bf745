#include "ui/document_viewer.h"

#include <QAction>
#include <QEvent>
#include <QFileInfo>
#include <QFontMetricsF>
#include <QHBoxLayout>
#include <QIcon>
#include <QKeyEvent>
#include <QLabel>
#include <QLineEdit>
#include <QListWidget>
#include <QPainter>
#include <QPlainTextEdit>
#include <QRegularExpression>
#include <QScrollArea>
#include <QScrollBar>
#include <QSignalBlocker>
#include <QSpinBox>
#include <QStackedWidget>
#include <QStyle>
#include <QTextBlock>
#include <QTextCursor>
#include <QToolBar>
#include <QToolButton>
#include <QVBoxLayout>

#include <algorithm>
#include <cmath>
#include <exception>
#include <limits>
#include <string_view>

#include "ui/page_render_worker.h"

namespace folio::ui {

// Draws the current page: its rendered image (or a placeholder while it
// renders), the OCR text overlay, search hits and the highlighted span.
// Everything it is given is in page points; it scales to its own size.
class PageCanvas final : public QWidget {
public:
    explicit PageCanvas(QWidget* parent) : QWidget(parent) { setAttribute(Qt::WA_OpaquePaintEvent); }

    // `page` must stay valid until the next setPage() (the viewer's pages_).
    void setPage(const index::StoredPage* page) {
        page_ = page;
        update();
    }
    void setImage(const QImage& image, bool rendering) {
        image_ = image;
        rendering_ = rendering;
        error_.clear();
        update();
    }
    void setError(const QString& error) {
        image_ = {};
        rendering_ = false;
        error_ = error;
        update();
    }
    void setOverlays(const QList<QRectF>& highlight, const QList<QRectF>& hits, const QList<QRectF>& currentHit,
                     bool ocrText) {
        highlight_ = highlight;
        hits_ = hits;
        currentHit_ = currentHit;
        ocrText_ = ocrText;
        update();
    }
    const QImage& image() const { return image_; }
    bool rendering() const { return rendering_; }
    const QString& error() const { return error_; }

    QRectF toWidget(const QRectF& points) const {
        const double s = scale();
        return {points.x() * s, points.y() * s, points.width() * s, points.height() * s};
    }

protected:
    void paintEvent(QPaintEvent*) override {
        QPainter painter(this);
        painter.fillRect(rect(), Qt::white);
        if (!image_.isNull()) {
            painter.setRenderHint(QPainter::SmoothPixmapTransform);
            painter.drawImage(QRectF(rect()), image_);
        }
        if (image_.isNull() || rendering_) {
            painter.setPen(error_.isEmpty() ? palette().color(QPalette::Disabled, QPalette::Text) : QColor(170, 20, 20));
            const QString text = error_.isEmpty() ? DocumentViewer::tr("Rendering page %1…").arg(page_ ? page_->number : 0)
                                                  : error_;
            if (image_.isNull() || !error_.isEmpty())
                painter.drawText(rect().adjusted(16, 16, -16, -16), Qt::AlignCenter | Qt::TextWordWrap, text);
        }
        if (!page_ || page_->width <= 0) return;
        if (ocrText_) paintOcrText(painter);
        painter.setRenderHint(QPainter::Antialiasing);
        auto fill = [&](const QList<QRectF>& boxes, QColor color) {
            for (const QRectF& box : boxes) painter.fillRect(toWidget(box).adjusted(-1, -1, 1, 1), color);
        };
        fill(hits_, QColor(255, 230, 0, 90));
        fill(currentHit_, QColor(255, 150, 0, 130));
        painter.setPen(QPen(QColor(230, 90, 0), 1.5));
        for (const QRectF& box : highlight_) {
            const QRectF r = toWidget(box).adjusted(-2, -2, 2, 2);
            painter.fillRect(r, QColor(255, 120, 0, 80));
            painter.drawRect(r);
        }
    }

private:
    double scale() const { return page_ && page_->width > 0 ? width() / double(page_->width) : 1.0; }

    // The words' text in their boxes over a veil that fades the scan, so a
    // person can check what OCR read against what the page shows.
    void paintOcrText(QPainter& painter) const {
        painter.fillRect(rect(), QColor(255, 255, 255, 200));
        painter.setPen(QColor(0, 40, 140));
        QFont font = this->font();
        for (const ingest::Word& word : page_->words) {
            const QRectF box = toWidget(QRectF(word.box.x0, word.box.y0, word.box.width(), word.box.height()));
            if (box.height() < 2 || word.text.empty()) continue;
            font.setPixelSize(std::max(1, int(box.height() * 0.85)));
            painter.setFont(font);
            const QString text = QString::fromStdString(word.text);
            const double advance = QFontMetricsF(font).horizontalAdvance(text);
            // Squeezed or stretched to the box's width: OCR's boxes, not the
            // font, say where each word is.
            painter.save();
            painter.translate(box.left(), box.top());
            if (advance > 0) painter.scale(box.width() / advance, 1.0);
            painter.drawText(QRectF(0, 0, advance, box.height()), Qt::AlignLeft | Qt::AlignVCenter, text);
            painter.restore();
        }
    }

    const index::StoredPage* page_ = nullptr;
    QImage image_;
    bool rendering_ = false;
    QString error_;
    QList<QRectF> highlight_, hits_, currentHit_;
    bool ocrText_ = false;
};

namespace {

constexpr double kMinZoom = 0.1, kMaxZoom = 8.0, kZoomStep = 1.25;
constexpr int kCachedPages = 6;
constexpr int kThumbnailWidth = 96;  // logical pixels
constexpr int kPageMargin = 8;       // logical pixels around the page in the scroll area

QRectF toRect(const ingest::Box& box) { return {box.x0, box.y0, box.width(), box.height()}; }

bool isHyphenSplit(const ingest::Word& word) {
    return !word.space_after && word.text.size() > 1 && word.text.back() == '-';
}

// The UTF-16 position in QString::fromUtf8(text) of byte `offset`.
int utf16Position(const std::string& text, std::size_t offset) {
    return int(QString::fromUtf8(text.data(), qsizetype(std::min(offset, text.size()))).size());
}

}  // namespace

std::vector<WordRange> alignWords(const std::string& text, const std::vector<ingest::Word>& words) {
    std::vector<WordRange> ranges(words.size());
    std::size_t cursor = 0;
    for (std::size_t i = 0; i < words.size(); ++i) {
        const std::string& word = words[i].text;
        const std::size_t length = isHyphenSplit(words[i]) ? word.size() - 1 : word.size();
        if (length == 0) continue;
        const std::size_t at = text.find(std::string_view(word).substr(0, length), cursor);
        if (at == std::string::npos) continue;
        ranges[i] = {at, at + length};
        cursor = at + length;
    }
    return ranges;
}

QList<QRectF> spanBoxes(const std::string& text, const std::vector<ingest::Word>& words, std::size_t begin,
                        std::size_t end) {
    QList<QRectF> boxes;
    if (begin >= end) return boxes;
    const std::vector<WordRange> ranges = alignWords(text, words);
    bool open = false;  // the last box still grows with the next covered word of its line
    for (std::size_t i = 0; i < words.size(); ++i) {
        const WordRange& range = ranges[i];
        if (range.found()) {
            if (range.begin < end && range.end > begin) {
                const QRectF box = toRect(words[i].box);
                if (open) boxes.back() = boxes.back().united(box);
                else boxes.append(box);
                open = true;
            } else {
                open = false;
            }
        }
        if (words[i].line_end || words[i].block_end) open = false;
    }
    return boxes;
}

std::pair<std::size_t, std::size_t> findQuote(const std::string& text, const QString& quote, std::size_t from) {
    constexpr std::pair<std::size_t, std::size_t> none{std::string::npos, std::string::npos};
    const auto separator = [](QChar c) { return c.isSpace() || c == QLatin1Char('|'); };
    QString needle;
    for (const QChar unit : quote.toCaseFolded())
        if (!separator(unit)) needle += unit;
    if (needle.isEmpty()) return none;

    // The text folded, without separators, and for each of its UTF-16 units
    // the bytes of the code point it came from.
    QString folded;
    std::vector<std::pair<std::size_t, std::size_t>> bytes;
    folded.reserve(qsizetype(text.size()));
    bytes.reserve(text.size());
    for (std::size_t i = std::min(from, text.size()); i < text.size();) {
        const auto lead = static_cast<unsigned char>(text[i]);
        std::size_t length = lead < 0x80 ? 1 : lead >= 0xF0 ? 4 : lead >= 0xE0 ? 3 : lead >= 0xC0 ? 2 : 1;
        length = std::min(length, text.size() - i);
        const QString codePoint = QString::fromUtf8(text.data() + i, qsizetype(length));
        if (!(codePoint.size() == 1 && separator(codePoint.front()))) {
            for (QChar unit : codePoint.toCaseFolded()) {
                folded += unit;
                bytes.emplace_back(i, i + length);
            }
        }
        i += length;
    }
    // Separators are gone from the folded text, so a match must also start
    // and end at word boundaries of the text: "33" is not in "23 30".
    const auto alnumAt = [&](std::size_t byte) {
        return byte < text.size() && QChar::fromLatin1(text[byte]).isLetterOrNumber();
    };
    for (qsizetype at = folded.indexOf(needle); at >= 0; at = folded.indexOf(needle, at + 1)) {
        const std::size_t begin = bytes[std::size_t(at)].first, end = bytes[std::size_t(at + needle.size() - 1)].second;
        const bool startsWord = begin == 0 || !alnumAt(begin - 1) || !alnumAt(begin);
        const bool endsWord = !alnumAt(end) || !alnumAt(end - 1);
        if (startsWord && endsWord) return {begin, end};
    }
    return none;
}

std::vector<std::pair<std::size_t, std::size_t>> findQuoteSpans(const std::string& text, const QString& quote,
                                                                const std::vector<ingest::Word>& words) {
    std::vector<std::pair<std::size_t, std::size_t>> spans;
    if (const auto whole = findQuote(text, quote); whole.first != std::string::npos) {
        spans.push_back(whole);
        return spans;
    }
    if (!quote.contains(QLatin1Char('|'))) return spans;
    static const QRegularExpression signs(QStringLiteral("^[\\s$€£¥(]+|[\\s%)]+$"));
    // The vertical middle of a span's first box; NaN when it has none.
    const auto middle = [&](std::pair<std::size_t, std::size_t> span) {
        const QList<QRectF> boxes = spanBoxes(text, words, span.first, span.second);
        return boxes.isEmpty() ? std::numeric_limits<double>::quiet_NaN() : boxes.front().center().y();
    };
    double labelMiddle = std::numeric_limits<double>::quiet_NaN();
    std::size_t from = 0;
    for (QString cell : quote.split(QLatin1Char('|'))) {
        cell.remove(signs);
        if (cell.isEmpty()) continue;
        std::vector<std::pair<std::size_t, std::size_t>> found;
        for (auto at = findQuote(text, cell); at.first != std::string::npos; at = findQuote(text, cell, at.first + 1))
            found.push_back(at);
        if (found.empty()) continue;
        auto chosen = std::find_if(found.begin(), found.end(), [&](const auto& at) { return at.first >= from; });
        if (chosen == found.end()) chosen = found.begin();
        if (spans.empty()) {
            labelMiddle = middle(*chosen);
        } else if (!std::isnan(labelMiddle)) {
            double nearest = std::numeric_limits<double>::infinity();
            for (auto at = found.begin(); at != found.end(); ++at)
                if (const double distance = std::abs(middle(*at) - labelMiddle); distance < nearest) {
                    nearest = distance;
                    chosen = at;
                }
        }
        spans.push_back(*chosen);
        from = std::max(from, chosen->second);
    }
    return spans;
}

DocumentViewer::DocumentViewer(index::LibraryStore& store, QWidget* parent)
    : QWidget(parent), store_(store), worker_(std::make_unique<PageRenderWorker>()) {
    createWidgets();
    connect(worker_.get(), &PageRenderWorker::pageRendered, this, &DocumentViewer::onPageRendered);
    connect(worker_.get(), &PageRenderWorker::thumbnailRendered, this, &DocumentViewer::onThumbnailRendered);
    showMessage(tr("No document open."));
}

// The worker goes first: it stops its thread before the widgets its
// results were meant for are destroyed.
DocumentViewer::~DocumentViewer() { worker_.reset(); }

void DocumentViewer::createWidgets() {
    setFocusPolicy(Qt::StrongFocus);

    auto makeAction = [this](const char* objectName, const QString& text, const QString& toolTip, QIcon icon) {
        auto* action = new QAction(icon, text, this);
        action->setObjectName(QString::fromLatin1(objectName));
        action->setToolTip(toolTip);
        return action;
    };
    QStyle* s = style();
    previousAction_ = makeAction("previousPageAction", tr("Previous Page"), tr("Previous page (Page Up)"),
                                 s->standardIcon(QStyle::SP_ArrowUp));
    nextAction_ = makeAction("nextPageAction", tr("Next Page"), tr("Next page (Page Down)"),
                             s->standardIcon(QStyle::SP_ArrowDown));
    zoomOutAction_ = makeAction("zoomOutAction", tr("Zoom Out"), tr("Zoom out (Ctrl+-)"), QIcon::fromTheme("zoom-out"));
    zoomInAction_ = makeAction("zoomInAction", tr("Zoom In"), tr("Zoom in (Ctrl++)"), QIcon::fromTheme("zoom-in"));
    fitWidthAction_ = makeAction("fitWidthAction", tr("Fit Width"), tr("Fit the page's width to the view"),
                                 QIcon::fromTheme("zoom-fit-width"));
    fitPageAction_ = makeAction("fitPageAction", tr("Fit Page"), tr("Fit the whole page in the view"),
                                QIcon::fromTheme("zoom-fit-best"));
    ocrAction_ = makeAction("ocrOverlayAction", tr("OCR Text"),
                            tr("Show the text OCR read over this scanned page, each word in its box"), {});
    ocrAction_->setCheckable(true);
    findAction_ = makeAction("findAction", tr("Find"), tr("Find in this document (Ctrl+F)"),
                             s->standardIcon(QStyle::SP_FileDialogContentsView));
    connect(previousAction_, &QAction::triggered, this, &DocumentViewer::previousPage);
    connect(nextAction_, &QAction::triggered, this, &DocumentViewer::nextPage);
    connect(zoomOutAction_, &QAction::triggered, this, &DocumentViewer::zoomOut);
    connect(zoomInAction_, &QAction::triggered, this, &DocumentViewer::zoomIn);
    connect(fitWidthAction_, &QAction::triggered, this, &DocumentViewer::fitWidth);
    connect(fitPageAction_, &QAction::triggered, this, &DocumentViewer::fitPage);
    connect(ocrAction_, &QAction::toggled, this, &DocumentViewer::setOcrOverlay);
    connect(findAction_, &QAction::triggered, this, &DocumentViewer::openFindBar);

    pageSpin_ = new QSpinBox;
    pageSpin_->setObjectName(QStringLiteral("pageSpin"));
    pageSpin_->setRange(0, 0);
    pageSpin_->setKeyboardTracking(false);
    pageSpin_->setToolTip(tr("Go to page"));
    connect(pageSpin_, &QSpinBox::valueChanged, this, &DocumentViewer::showPage);
    pageCountLabel_ = new QLabel;
    zoomLabel_ = new QLabel;
    zoomLabel_->setObjectName(QStringLiteral("zoomLabel"));

    auto* toolBar = new QToolBar;
    toolBar->setObjectName(QStringLiteral("viewerToolBar"));
    toolBar->setIconSize(QSize(16, 16));
    toolBar->setToolButtonStyle(Qt::ToolButtonTextBesideIcon);
    toolBar->addAction(previousAction_);
    toolBar->addWidget(pageSpin_);
    toolBar->addWidget(pageCountLabel_);
    toolBar->addAction(nextAction_);
    toolBar->addSeparator();
    toolBar->addAction(zoomOutAction_);
    toolBar->addWidget(zoomLabel_);
    toolBar->addAction(zoomInAction_);
    toolBar->addAction(fitWidthAction_);
    toolBar->addAction(fitPageAction_);
    toolBar->addSeparator();
    toolBar->addAction(ocrAction_);
    toolBar->addAction(findAction_);

    findEdit_ = new QLineEdit;
    findEdit_->setObjectName(QStringLiteral("findEdit"));
    findEdit_->setPlaceholderText(tr("Find in document"));
    findEdit_->setClearButtonEnabled(true);
    connect(findEdit_, &QLineEdit::textChanged, this, &DocumentViewer::runSearch);
    auto* findPrevious = new QToolButton;
    findPrevious->setObjectName(QStringLiteral("findPreviousButton"));
    findPrevious->setText(tr("Previous"));
    findPrevious->setToolTip(tr("Previous match (Shift+F3)"));
    connect(findPrevious, &QToolButton::clicked, this, &DocumentViewer::findPrevious);
    auto* findNext = new QToolButton;
    findNext->setObjectName(QStringLiteral("findNextButton"));
    findNext->setText(tr("Next"));
    findNext->setToolTip(tr("Next match (Enter, F3)"));
    connect(findNext, &QToolButton::clicked, this, &DocumentViewer::findNext);
    findStatus_ = new QLabel;
    findStatus_->setObjectName(QStringLiteral("findStatus"));
    auto* closeFind = new QToolButton;
    closeFind->setObjectName(QStringLiteral("closeFindButton"));
    closeFind->setIcon(style()->standardIcon(QStyle::SP_DialogCloseButton));
    closeFind->setToolTip(tr("Close (Esc)"));
    connect(closeFind, &QToolButton::clicked, this, &DocumentViewer::closeFindBar);
    findBar_ = new QWidget;
    findBar_->setObjectName(QStringLiteral("findBar"));
    auto* findLayout = new QHBoxLayout(findBar_);
    findLayout->setContentsMargins(4, 2, 4, 2);
    findLayout->addWidget(findEdit_, 1);
    findLayout->addWidget(findPrevious);
    findLayout->addWidget(findNext);
    findLayout->addWidget(findStatus_);
    findLayout->addWidget(closeFind);
    findBar_->hide();

    thumbnails_ = new QListWidget;
    thumbnails_->setObjectName(QStringLiteral("thumbnailStrip"));
    thumbnails_->setViewMode(QListView::IconMode);
    thumbnails_->setFlow(QListView::TopToBottom);
    thumbnails_->setWrapping(false);
    thumbnails_->setMovement(QListView::Static);
    thumbnails_->setUniformItemSizes(true);
    thumbnails_->setIconSize(QSize(kThumbnailWidth, kThumbnailWidth * 4 / 3));
    thumbnails_->setSpacing(4);
    thumbnails_->setFixedWidth(kThumbnailWidth + 36);
    thumbnails_->setHorizontalScrollBarPolicy(Qt::ScrollBarAlwaysOff);
    connect(thumbnails_, &QListWidget::currentRowChanged, this, [this](int row) {
        if (row >= 0) showPage(row + 1);
    });

    canvas_ = new PageCanvas(nullptr);
    canvas_->setObjectName(QStringLiteral("pageCanvas"));
    scrollArea_ = new QScrollArea;
    scrollArea_->setObjectName(QStringLiteral("pageScrollArea"));
    scrollArea_->setWidget(canvas_);
    scrollArea_->setWidgetResizable(false);
    scrollArea_->setAlignment(Qt::AlignCenter);
    scrollArea_->setBackgroundRole(QPalette::Dark);
    scrollArea_->viewport()->installEventFilter(this);

    textView_ = new QPlainTextEdit;
    textView_->setObjectName(QStringLiteral("pageTextView"));
    textView_->setReadOnly(true);

    messageLabel_ = new QLabel;
    messageLabel_->setObjectName(QStringLiteral("viewerMessage"));
    messageLabel_->setAlignment(Qt::AlignCenter);
    messageLabel_->setWordWrap(true);
    messageLabel_->setTextInteractionFlags(Qt::TextSelectableByMouse);
    messageLabel_->setMargin(24);

    stack_ = new QStackedWidget;
    stack_->addWidget(scrollArea_);
    stack_->addWidget(textView_);
    stack_->addWidget(messageLabel_);

    auto* body = new QHBoxLayout;
    body->setContentsMargins(0, 0, 0, 0);
    body->setSpacing(0);
    body->addWidget(thumbnails_);
    body->addWidget(stack_, 1);
    auto* layout = new QVBoxLayout(this);
    layout->setContentsMargins(0, 0, 0, 0);
    layout->setSpacing(0);
    layout->addWidget(toolBar);
    layout->addWidget(findBar_);
    layout->addLayout(body, 1);

    for (QWidget* w : std::initializer_list<QWidget*>{scrollArea_, textView_, pageSpin_, thumbnails_, findEdit_})
        w->installEventFilter(this);
}

bool DocumentViewer::openDocument(qint64 docId) { return open(docId, 1); }

// Opens straight at `page`, so that a citation in another document neither
// renders nor announces its first page on the way.
bool DocumentViewer::open(qint64 docId, int page) {
    closeDocument();
    std::optional<index::DocumentRecord> record;
    try {
        record = store_.document(docId);
        if (record) pages_ = store_.pages(docId);
    } catch (const std::exception& e) {
        showMessage(tr("Cannot read the library: %1").arg(QString::fromStdString(e.what())));
        return false;
    }
    if (!record) {
        showMessage(tr("Document %1 is not in the library (it may have been removed).").arg(docId));
        return false;
    }
    const QString path = QString::fromStdString(record->path);
    const QString name = QFileInfo(path).fileName();
    if (pages_.empty()) {
        const QString reason = QString::fromStdString(record->error);
        showMessage(reason.isEmpty() ? tr("%1 has no pages to show.").arg(name)
                                     : tr("%1 could not be read when it was added:\n%2").arg(name, reason));
        return false;
    }

    switch (record->type) {
    case ingest::FileType::Pdf: kind_ = Kind::Pdf; break;
    case ingest::FileType::Png:
    case ingest::FileType::Jpeg:
    case ingest::FileType::Tiff: kind_ = Kind::Image; break;
    case ingest::FileType::Text:
    case ingest::FileType::Markdown: kind_ = Kind::Text; break;
    case ingest::FileType::Unknown: {
        const QString suffix = QFileInfo(path).suffix().toLower();
        kind_ = suffix == "pdf" ? Kind::Pdf
              : QStringList{"png", "jpg", "jpeg", "tif", "tiff"}.contains(suffix) ? Kind::Image
                                                                               : Kind::Text;
    }
    }
    // Text documents show the stored text, so only pages drawn from the file need it.
    if (kind_ != Kind::Text) {
        const QFileInfo file(path);
        QString problem;
        if (!file.exists())
            problem = tr("%1 is gone: it was moved or deleted after it was added to the library.\n"
                         "It was at %2. Add it again from where it is now.")
                          .arg(name, path);
        else if (!file.isFile() || !file.isReadable())
            problem = tr("%1 cannot be read (check its permissions).\nIt is at %2.").arg(name, path);
        if (!problem.isEmpty()) {
            pages_.clear();
            kind_ = Kind::None;
            showMessage(problem);
            return false;
        }
    }

    docId_ = docId;
    path_ = path;
    stack_->setCurrentWidget(kind_ == Kind::Text ? static_cast<QWidget*>(textView_) : scrollArea_);
    thumbnails_->setVisible(kind_ != Kind::Text);
    {
        const QSignalBlocker block(thumbnails_);
        for (const index::StoredPage& stored : pages_) {
            const double aspect = stored.width > 0 ? stored.height / stored.width : 1.3;
            QPixmap blank(kThumbnailWidth, std::clamp(int(kThumbnailWidth * aspect), 16, kThumbnailWidth * 2));
            blank.fill(Qt::white);
            auto* item = new QListWidgetItem(QIcon(blank), QString::number(stored.number), thumbnails_);
            item->setTextAlignment(Qt::AlignHCenter);
        }
    }
    requestThumbnails();
    if (!findEdit_->text().isEmpty()) runSearch();
    showPage(page);
    emit documentOpened(docId);
    return true;
}

void DocumentViewer::closeDocument() {
    worker_->clear();
    docId_ = 0;
    kind_ = Kind::None;
    path_.clear();
    canvas_->setPage(nullptr);
    canvas_->setImage({}, false);
    pages_.clear();
    page_ = 0;
    highlight_.clear();
    renderSerial_ = 0;
    cache_.clear();
    hits_.clear();
    currentHit_ = -1;
    {
        const QSignalBlocker block(thumbnails_);
        thumbnails_->clear();
    }
    textView_->clear();
    updateControls();
}

void DocumentViewer::showMessage(const QString& text) {
    messageLabel_->setText(text);
    stack_->setCurrentWidget(messageLabel_);
    thumbnails_->hide();
    updateControls();
}

QString DocumentViewer::message() const {
    if (stack_->currentWidget() == messageLabel_) return messageLabel_->text();
    return canvas_->error();
}

QImage DocumentViewer::pageImage() const {
    return kind_ == Kind::Pdf || kind_ == Kind::Image ? (canvas_->rendering() ? QImage() : canvas_->image()) : QImage();
}

const index::StoredPage* DocumentViewer::storedPage() const {
    return page_ >= 1 && page_ <= pageCount() ? &pages_[std::size_t(page_ - 1)] : nullptr;
}

void DocumentViewer::nextPage() { showPage(page_ + 1); }

void DocumentViewer::previousPage() { showPage(page_ - 1); }

void DocumentViewer::showPage(int page) {
    if (pages_.empty()) return;
    page = std::clamp(page, 1, pageCount());
    if (page == page_) return;
    page_ = page;
    highlight_.clear();  // its boxes belong to the page left
    const index::StoredPage& stored = pages_[std::size_t(page - 1)];
    if (kind_ == Kind::Text) {
        textView_->setPlainText(QString::fromStdString(stored.text));
    } else {
        canvas_->setPage(&stored);
        if (fit_ != Fit::None) refit();
        else layoutPage();
        scrollArea_->verticalScrollBar()->setValue(0);
    }
    {
        const QSignalBlocker block(thumbnails_);
        thumbnails_->setCurrentRow(page - 1);
    }
    if (currentHit_ >= 0 && hits_[currentHit_].page != page) currentHit_ = -1;
    updateControls();
    emit pageChanged(page);
}

void DocumentViewer::showSpan(qint64 docId, int page, std::size_t begin, std::size_t end) {
    if (docId != docId_ && !open(docId, page)) return;
    showPage(page);
    highlightSpan(begin, end);
}

void DocumentViewer::showQuote(qint64 docId, int page, const QString& quote) {
    if (docId != docId_ && !open(docId, page)) return;
    showPage(page);
    const index::StoredPage* stored = storedPage();
    if (!stored) return;
    highlightSpans(findQuoteSpans(stored->text, quote, stored->words));
}

void DocumentViewer::highlightSpan(std::size_t begin, std::size_t end) { highlightSpans({{begin, end}}); }

void DocumentViewer::highlightSpans(const std::vector<std::pair<std::size_t, std::size_t>>& spans) {
    const index::StoredPage* stored = storedPage();
    if (!stored) return;
    highlight_.clear();
    for (const auto& [begin, end] : spans) highlight_ += spanBoxes(stored->text, stored->words, begin, end);
    if (kind_ == Kind::Text && !spans.empty()) {
        QTextCursor cursor(textView_->document());
        cursor.setPosition(utf16Position(stored->text, spans.front().first));
        cursor.setPosition(utf16Position(stored->text, spans.back().second), QTextCursor::KeepAnchor);
        textView_->setTextCursor(cursor);
        textView_->ensureCursorVisible();
    }
    updateControls();
    if (kind_ != Kind::Text && !highlight_.isEmpty()) {
        const QRectF first = canvas_->toWidget(highlight_.front());
        scrollArea_->ensureVisible(int(first.center().x()), int(first.center().y()), int(first.width() / 2) + 40,
                                   int(first.height() / 2) + 80);
    }
}

double DocumentViewer::pixelsPerPoint() const { return zoom_ * logicalDpiX() / 72.0; }

QSize DocumentViewer::pixelSizeFor(const index::StoredPage& page, double pixelsPerPoint) const {
    return QSize(std::max(1, qRound(page.width * pixelsPerPoint)), std::max(1, qRound(page.height * pixelsPerPoint)));
}

void DocumentViewer::setZoom(double factor) { applyZoom(factor, Fit::None); }

void DocumentViewer::zoomIn() { applyZoom(zoom_ * kZoomStep, Fit::None); }

void DocumentViewer::zoomOut() { applyZoom(zoom_ / kZoomStep, Fit::None); }

void DocumentViewer::fitWidth() {
    fit_ = Fit::Width;
    refit();
}

void DocumentViewer::fitPage() {
    fit_ = Fit::Page;
    refit();
}

void DocumentViewer::applyZoom(double factor, Fit fit) {
    fit_ = fit;
    zoom_ = std::clamp(factor, kMinZoom, kMaxZoom);
    if (kind_ == Kind::Pdf || kind_ == Kind::Image) layoutPage();
    updateControls();
}

// The zoom at which the current page fills the view's width (or the whole
// view), leaving room for the vertical scroll bar the width fit will need.
void DocumentViewer::refit() {
    const index::StoredPage* page = storedPage();
    if (!page || page->width <= 0 || page->height <= 0 || kind_ == Kind::Text) {
        updateControls();
        return;
    }
    const QSize view = scrollArea_->maximumViewportSize() - QSize(2 * kPageMargin, 2 * kPageMargin);
    const double perZoom = logicalDpiX() / 72.0;
    const double byHeight = view.height() / (page->height * perZoom);
    double byWidth = view.width() / (page->width * perZoom);
    if (fit_ == Fit::Width && byWidth > byHeight)
        byWidth = (view.width() - style()->pixelMetric(QStyle::PM_ScrollBarExtent)) / (page->width * perZoom);
    const Fit fit = fit_;
    applyZoom(fit == Fit::Width ? byWidth : std::min(byWidth, byHeight), fit);
}

void DocumentViewer::layoutPage() {
    const index::StoredPage* page = storedPage();
    if (!page) return;
    canvas_->resize(pixelSizeFor(*page, pixelsPerPoint()));
    requestRender();
    updateControls();
}

void DocumentViewer::requestRender() {
    const index::StoredPage* page = storedPage();
    if (!page || (kind_ != Kind::Pdf && kind_ != Kind::Image)) return;
    // The canvas's own device pixels, so the image maps 1:1 onto the screen.
    const QSize pixels = (QSizeF(canvas_->size()) * devicePixelRatioF()).toSize();
    for (qsizetype i = 0; i < cache_.size(); ++i) {
        if (cache_[i].page == page_ && cache_[i].pixels == pixels) {
            cache_.move(i, 0);
            renderSerial_ = 0;
            canvas_->setImage(cache_.front().image, false);
            return;
        }
    }
    if (renderSerial_ != 0 && renderPage_ == page_ && renderPixels_ == pixels) return;
    // Until the new image comes, the same page at another zoom stands in.
    QImage standIn;
    for (const CachedPage& cached : cache_)
        if (cached.page == page_) standIn = cached.image;
    canvas_->setImage(standIn, true);
    renderPage_ = page_;
    renderPixels_ = pixels;
    renderSerial_ = worker_->renderPage({path_, kind_ == Kind::Pdf ? PageSourceKind::Pdf : PageSourceKind::Image,
                                         page_, pixels, page->rotation});
}

void DocumentViewer::onPageRendered(quint64 serial, const QImage& image, const QString& error) {
    if (serial != renderSerial_) return;
    renderSerial_ = 0;
    if (image.isNull()) {
        canvas_->setError(tr("Cannot show page %1: %2").arg(renderPage_).arg(error));
        return;
    }
    QImage shown = image;
    shown.setDevicePixelRatio(devicePixelRatioF());
    cache_.prepend({renderPage_, renderPixels_, shown});
    while (cache_.size() > kCachedPages) cache_.removeLast();
    if (renderPage_ == page_) canvas_->setImage(shown, false);
}

void DocumentViewer::requestThumbnails() {
    if (kind_ != Kind::Pdf && kind_ != Kind::Image) return;
    const double dpr = devicePixelRatioF();
    QList<PageRenderRequest> requests;
    for (const index::StoredPage& page : pages_) {
        if (page.width <= 0 || page.height <= 0) continue;
        const double scale = kThumbnailWidth * dpr / page.width;
        requests.append({path_, kind_ == Kind::Pdf ? PageSourceKind::Pdf : PageSourceKind::Image, page.number,
                         pixelSizeFor(page, scale), page.rotation});
    }
    worker_->renderThumbnails(requests);
}

void DocumentViewer::onThumbnailRendered(const QString& path, int page, const QImage& image) {
    if (path != path_ || page < 1 || page > thumbnails_->count()) return;
    QImage shown = image;
    shown.setDevicePixelRatio(devicePixelRatioF());
    thumbnails_->item(page - 1)->setIcon(QIcon(QPixmap::fromImage(shown)));
}

void DocumentViewer::setOcrOverlay(bool on) {
    ocrOverlay_ = on;
    updateControls();
}

void DocumentViewer::openFindBar() {
    findBar_->show();
    findEdit_->setFocus(Qt::ShortcutFocusReason);
    findEdit_->selectAll();
}

void DocumentViewer::closeFindBar() {
    findBar_->hide();
    findEdit_->clear();
    setFocus(Qt::OtherFocusReason);
}

// Searches the stored page text, not the file: scanned pages match through
// their OCR text, and a search never waits for a render.
void DocumentViewer::runSearch() {
    hits_.clear();
    currentHit_ = -1;
    const QString needle = findEdit_->text();
    if (!needle.isEmpty()) {
        for (const index::StoredPage& page : pages_) {
            const QString text = QString::fromStdString(page.text);
            for (qsizetype at = text.indexOf(needle, 0, Qt::CaseInsensitive); at >= 0;
                 at = text.indexOf(needle, at + needle.size(), Qt::CaseInsensitive)) {
                const auto begin = std::size_t(QStringView(text).left(at).toUtf8().size());
                const auto length = std::size_t(QStringView(text).mid(at, needle.size()).toUtf8().size());
                hits_.append({page.number, begin, begin + length});
            }
        }
    }
    // The first match at or after the page in view, so typing never jumps back.
    int first = -1;
    for (int i = 0; i < hits_.size() && first < 0; ++i)
        if (hits_[i].page >= page_) first = i;
    if (first < 0 && !hits_.isEmpty()) first = 0;
    if (first >= 0) showHit(first);
    else updateControls();
}

void DocumentViewer::findNext() {
    if (hits_.isEmpty()) return;
    showHit(currentHit_ < 0 ? 0 : int((currentHit_ + 1) % hits_.size()));
}

void DocumentViewer::findPrevious() {
    if (hits_.isEmpty()) return;
    showHit(currentHit_ <= 0 ? int(hits_.size() - 1) : currentHit_ - 1);
}

void DocumentViewer::showHit(int index) {
    const SearchHit hit = hits_[index];
    showPage(hit.page);
    currentHit_ = index;
    const index::StoredPage* page = storedPage();
    if (kind_ == Kind::Text) {
        QTextCursor cursor(textView_->document());
        cursor.setPosition(utf16Position(page->text, hit.begin));
        cursor.setPosition(utf16Position(page->text, hit.end), QTextCursor::KeepAnchor);
        textView_->setTextCursor(cursor);
        textView_->ensureCursorVisible();
    } else {
        const QList<QRectF> boxes = spanBoxes(page->text, page->words, hit.begin, hit.end);
        if (!boxes.isEmpty()) {
            const QRectF box = canvas_->toWidget(boxes.front());
            scrollArea_->ensureVisible(int(box.center().x()), int(box.center().y()), 40, 80);
        }
    }
    updateControls();
}

// Brings every control and the canvas's overlays in line with the state.
void DocumentViewer::updateControls() {
    const bool open = !pages_.empty();
    const bool drawn = kind_ == Kind::Pdf || kind_ == Kind::Image;
    const index::StoredPage* page = storedPage();
    {
        const QSignalBlocker block(pageSpin_);
        pageSpin_->setRange(open ? 1 : 0, open ? pageCount() : 0);
        pageSpin_->setValue(page_);
    }
    pageSpin_->setEnabled(open);
    pageCountLabel_->setText(open ? tr("of %1").arg(pageCount()) : QString());
    previousAction_->setEnabled(open && page_ > 1);
    nextAction_->setEnabled(open && page_ < pageCount());
    for (QAction* action : {zoomInAction_, zoomOutAction_, fitWidthAction_, fitPageAction_}) action->setEnabled(drawn);
    zoomInAction_->setEnabled(drawn && zoom_ < kMaxZoom);
    zoomOutAction_->setEnabled(drawn && zoom_ > kMinZoom);
    zoomLabel_->setText(drawn ? tr("%1%").arg(qRound(zoom_ * 100)) : QString());
    const bool ocrPage = drawn && page && page->ocr && !page->words.empty();
    ocrAction_->setEnabled(ocrPage);
    {
        const QSignalBlocker block(ocrAction_);
        ocrAction_->setChecked(ocrOverlay_);
    }
    findAction_->setEnabled(open);

    if (!hits_.isEmpty())
        findStatus_->setText(currentHit_ >= 0 ? tr("%1 of %2").arg(currentHit_ + 1).arg(hits_.size())
                                              : tr("%1 matches").arg(hits_.size()));
    else
        findStatus_->setText(findEdit_->text().isEmpty() ? QString() : tr("No matches"));

    QList<QRectF> hitBoxes, currentBoxes;
    if (page && drawn) {
        for (int i = 0; i < hits_.size(); ++i) {
            if (hits_[i].page != page_) continue;
            const QList<QRectF> boxes = spanBoxes(page->text, page->words, hits_[i].begin, hits_[i].end);
            (i == currentHit_ ? currentBoxes : hitBoxes) += boxes;
        }
    }
    canvas_->setOverlays(highlight_, hitBoxes, currentBoxes, ocrPage && ocrOverlay_);
}

bool DocumentViewer::handleKey(int key, Qt::KeyboardModifiers modifiers) {
    const bool ctrl = modifiers & Qt::ControlModifier, shift = modifiers & Qt::ShiftModifier;
    switch (key) {
    case Qt::Key_PageDown: nextPage(); return true;
    case Qt::Key_PageUp: previousPage(); return true;
    case Qt::Key_F:
        if (!ctrl || pages_.empty()) return false;
        openFindBar();
        return true;
    case Qt::Key_F3:
        shift ? findPrevious() : findNext();
        return true;
    case Qt::Key_Escape:
        if (!findBar_->isVisible()) return false;
        closeFindBar();
        return true;
    case Qt::Key_Plus:
    case Qt::Key_Equal:
        if (!ctrl) return false;
        zoomIn();
        return true;
    case Qt::Key_Minus:
        if (!ctrl) return false;
        zoomOut();
        return true;
    default: return false;
    }
}

// The viewer's keys win over the window's shortcuts while focus is inside
// the viewer (the main window binds Ctrl+F to its filter and Esc to cancel
// ingest): accepting the override makes Qt deliver them as key presses.
bool DocumentViewer::event(QEvent* event) {
    if (event->type() == QEvent::ShortcutOverride || event->type() == QEvent::KeyPress) {
        auto* key = static_cast<QKeyEvent*>(event);
        const bool ours = (key->key() == Qt::Key_F && (key->modifiers() & Qt::ControlModifier) && !pages_.empty()) ||
                          key->key() == Qt::Key_PageDown || key->key() == Qt::Key_PageUp ||
                          (key->key() == Qt::Key_Escape && findBar_->isVisible());
        if (event->type() == QEvent::ShortcutOverride) {
            if (ours) {
                event->accept();
                return true;
            }
        } else if (handleKey(key->key(), key->modifiers())) {
            return true;
        }
    }
    return QWidget::event(event);
}

bool DocumentViewer::eventFilter(QObject* watched, QEvent* event) {
    if (watched == scrollArea_->viewport() && event->type() == QEvent::Resize) {
        if (fit_ != Fit::None) refit();
        return false;
    }
    if (event->type() == QEvent::KeyPress) {
        auto* key = static_cast<QKeyEvent*>(event);
        if (watched == findEdit_ && (key->key() == Qt::Key_Return || key->key() == Qt::Key_Enter)) {
            key->modifiers() & Qt::ShiftModifier ? findPrevious() : findNext();
            return true;
        }
        if (handleKey(key->key(), key->modifiers())) return true;
    }
    return QWidget::eventFilter(watched, event);
}

}  // namespace folio::ui
