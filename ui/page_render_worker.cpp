#include "ui/page_render_worker.h"

#include <QFile>
#include <QFileInfo>
#include <QImageReader>
#include <QMutexLocker>
#include <QTransform>

#include <leptonica/allheaders.h>
#include <poppler-qt6.h>

#include <utility>

namespace folio::ui {
namespace {

// A request for more pixels than this is refused: a page zoomed far in
// would otherwise allocate gigabytes (8000 x 8000 RGB32 is 256 MB).
constexpr qint64 kMaxPixels = 64'000'000;

bool turnsSideways(int rotation) { return ((rotation / 90) % 2 + 2) % 2 == 1; }

struct PixDeleter {
    void operator()(PIX* pix) const { pixDestroy(&pix); }
};
using PixPtr = std::unique_ptr<PIX, PixDeleter>;

// Frame `index` of an image through Leptonica, which ingest read it with:
// the formats Qt has no plugin for here (TIFF without qt6-image-formats).
QImage readWithLeptonica(const QString& path, int index) {
    const QByteArray file = QFile::encodeName(path);
    l_int32 format = IFF_UNKNOWN;
    findFileFormat(file.constData(), &format);
    const bool tiff = format == IFF_TIFF || (format >= IFF_TIFF_PACKBITS && format <= IFF_TIFF_ZIP) || format == IFF_TIFF_JPEG;
    if (!tiff && index > 0) return {};
    const PixPtr pix(tiff ? pixReadTiff(file.constData(), index) : pixRead(file.constData()));
    const PixPtr rgb(pix ? pixConvertTo32(pix.get()) : nullptr);
    if (!rgb) return {};
    const int width = int(pixGetWidth(rgb.get())), height = int(pixGetHeight(rgb.get()));
    QImage image(width, height, QImage::Format_RGB32);
    const l_uint32* data = pixGetData(rgb.get());
    const int wordsPerLine = int(pixGetWpl(rgb.get()));
    for (int y = 0; y < height; ++y) {
        const l_uint32* in = data + qsizetype(y) * wordsPerLine;
        auto* out = reinterpret_cast<QRgb*>(image.scanLine(y));
        for (int x = 0; x < width; ++x) out[x] = qRgb(in[x] >> 24, (in[x] >> 16) & 0xff, (in[x] >> 8) & 0xff);  // 0xRRGGBBAA
    }
    return image;
}

}  // namespace

PageRenderWorker::PageRenderWorker() {
    thread_.setObjectName(QStringLiteral("folio page render"));
    moveToThread(&thread_);
    thread_.start();
}

PageRenderWorker::~PageRenderWorker() {
    clear();
    thread_.quit();
    thread_.wait();
}

quint64 PageRenderWorker::renderPage(const PageRenderRequest& request) {
    QMutexLocker lock(&mutex_);
    pendingPage_ = request;
    pendingSerial_ = ++lastSerial_;
    schedule();
    return pendingSerial_;
}

void PageRenderWorker::renderThumbnails(const QList<PageRenderRequest>& requests) {
    QMutexLocker lock(&mutex_);
    pendingThumbnails_ = requests;
    schedule();
}

void PageRenderWorker::clear() {
    QMutexLocker lock(&mutex_);
    pendingPage_.reset();
    pendingThumbnails_.clear();
}

void PageRenderWorker::schedule() {
    if (scheduled_) return;
    scheduled_ = true;
    QMetaObject::invokeMethod(this, &PageRenderWorker::renderNext, Qt::QueuedConnection);
}

// One render per call, then a fresh post: a page request that arrives while
// a thumbnail renders is taken next, ahead of the other thumbnails.
void PageRenderWorker::renderNext() {
    PageRenderRequest request;
    quint64 serial = 0;
    {
        QMutexLocker lock(&mutex_);
        if (pendingPage_) {
            request = std::move(*pendingPage_);
            serial = pendingSerial_;
            pendingPage_.reset();
        } else if (!pendingThumbnails_.isEmpty()) {
            request = pendingThumbnails_.takeFirst();
        } else {
            scheduled_ = false;
            return;
        }
    }
    QString error;
    QImage image = render(request, error);
    if (serial != 0) emit pageRendered(serial, image, error);
    else if (!image.isNull()) emit thumbnailRendered(request.path, request.page, image);
    QMetaObject::invokeMethod(this, &PageRenderWorker::renderNext, Qt::QueuedConnection);
}

QImage PageRenderWorker::render(const PageRenderRequest& request, QString& error) {
    const QSize size = request.pixelSize;
    if (size.isEmpty()) {
        error = tr("Nothing to render: the page has no size.");
        return {};
    }
    if (qint64(size.width()) * size.height() > kMaxPixels) {
        error = tr("The page is too large to render at this zoom.");
        return {};
    }
    const bool sideways = turnsSideways(request.rotation);
    const QSize unturned = sideways ? size.transposed() : size;
    QImage image = request.kind == PageSourceKind::Pdf ? renderPdf(request, unturned, error)
                                                       : renderImage(request, unturned, error);
    if (image.isNull()) return {};
    if (image.size() != unturned)
        image = image.scaled(unturned, Qt::IgnoreAspectRatio, Qt::SmoothTransformation);
    if (request.rotation % 360 != 0) image = image.transformed(QTransform().rotate(request.rotation));
    return image;
}

QImage PageRenderWorker::renderPdf(const PageRenderRequest& request, QSize unturned, QString& error) {
    if (request.path != pdfPath_) {
        pdfPath_ = request.path;
        pdfError_.clear();
        pdf_ = Poppler::Document::load(request.path);
        if (!pdf_) pdfError_ = tr("Poppler cannot read %1 (damaged, or not a PDF).").arg(QFileInfo(request.path).fileName());
        else if (pdf_->isLocked()) pdfError_ = tr("%1 is password-protected.").arg(QFileInfo(request.path).fileName());
        if (!pdfError_.isEmpty()) pdf_.reset();
        else {
            pdf_->setRenderHint(Poppler::Document::Antialiasing);
            pdf_->setRenderHint(Poppler::Document::TextAntialiasing);
        }
    }
    if (!pdf_) {
        error = pdfError_;
        return {};
    }
    const std::unique_ptr<Poppler::Page> page =
        request.page >= 1 && request.page <= pdf_->numPages() ? pdf_->page(request.page - 1) : nullptr;
    if (!page) {
        error = tr("The PDF has no page %1 (it has %2): the file changed after it was added.")
                    .arg(request.page)
                    .arg(pdf_->numPages());
        return {};
    }
    const QSizeF points = page->pageSizeF();  // as displayed, after /Rotate
    if (points.isEmpty()) {
        error = tr("Page %1 has no size.").arg(request.page);
        return {};
    }
    QImage image = page->renderToImage(72.0 * unturned.width() / points.width(), 72.0 * unturned.height() / points.height());
    if (image.isNull()) error = tr("Poppler could not render page %1.").arg(request.page);
    return image;
}

QImage PageRenderWorker::renderImage(const PageRenderRequest& request, QSize unturned, QString& error) {
    QImageReader reader(request.path);
    if (!reader.canRead()) {
        QImage image = readWithLeptonica(request.path, request.page - 1);
        if (image.isNull())
            error = tr("Cannot read the image %1 (damaged, or changed after it was added).")
                        .arg(QFileInfo(request.path).fileName());
        return image;
    }
    // Leptonica, which ingest read the scan with, ignores EXIF orientation;
    // the stored word boxes are in its frame, turned upright by `rotation`.
    reader.setAutoTransform(false);
    if (request.page > 1 && !reader.jumpToImage(request.page - 1)) {
        error = tr("%1 has no image %2: the file changed after it was added.")
                    .arg(QFileInfo(request.path).fileName())
                    .arg(request.page);
        return {};
    }
    reader.setScaledSize(unturned);
    QImage image = reader.read();
    if (image.isNull())
        error = tr("Cannot read the image %1: %2").arg(QFileInfo(request.path).fileName(), reader.errorString());
    return image;
}

}  // namespace folio::ui
