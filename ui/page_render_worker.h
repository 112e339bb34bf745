#pragma once
// Renders document pages to images on a thread of its own, for the document
// viewer: PDF pages through Poppler, scans and photos through QImageReader.
// A large page takes tens to hundreds of milliseconds to render, which the UI
// thread must never wait for.
//
// Scheduling: one pending page request and a queue of pending thumbnails.
// A new page request replaces the pending one (the newest wins: a person
// paging or zooming quickly only needs the last page they asked for), and it
// goes before any thumbnail.
//
// Thread rules:
// - Construct and destroy a PageRenderWorker on the UI thread. The
//   constructor moves it to a QThread it owns and starts that thread; the
//   destructor drops what is pending, stops the thread and waits for the
//   render in progress to end.
// - renderPage(), renderThumbnails() and clear() are called on the thread
//   that constructed the worker; they only post work and return at once.
// - The worker keeps the last PDF it opened, its own Poppler::Document (a
//   Poppler document is not thread-safe), and uses it only on its thread.
// - Signals are emitted on the worker thread; connect receivers on the UI
//   thread with the default (queued) connection.

#include <QImage>
#include <QList>
#include <QMutex>
#include <QObject>
#include <QSize>
#include <QString>
#include <QThread>

#include <memory>
#include <optional>

namespace Poppler {
class Document;
}

namespace folio::ui {

enum class PageSourceKind { Pdf, Image };

struct PageRenderRequest {
    QString path;
    PageSourceKind kind = PageSourceKind::Pdf;
    int page = 1;           // 1-based; an image's frame (multi-page TIFF) for images
    QSize pixelSize;        // of the result, after the turn below
    int rotation = 0;       // degrees clockwise to turn the rendered page: OCR's upright correction
};

class PageRenderWorker final : public QObject {
    Q_OBJECT

public:
    PageRenderWorker();
    ~PageRenderWorker() override;

    // Replaces the pending page request. Returns its serial, which comes
    // back with its result; serials grow with each request.
    quint64 renderPage(const PageRenderRequest& request);
    // Replaces the pending thumbnails; they render after any page request.
    void renderThumbnails(const QList<PageRenderRequest>& requests);
    // Drops everything pending (another document was opened).
    void clear();

signals:
    // `image` is null and `error` says why (one line) when the page could
    // not be rendered.
    void pageRendered(quint64 serial, const QImage& image, const QString& error);
    void thumbnailRendered(const QString& path, int page, const QImage& image);

private:
    void schedule();  // with mutex_ held
    // Worker thread only.
    void renderNext();
    QImage render(const PageRenderRequest& request, QString& error);
    QImage renderPdf(const PageRenderRequest& request, QSize unturned, QString& error);
    QImage renderImage(const PageRenderRequest& request, QSize unturned, QString& error);

    QThread thread_;

    QMutex mutex_;  // guards the pending work below
    std::optional<PageRenderRequest> pendingPage_;
    quint64 pendingSerial_ = 0;
    quint64 lastSerial_ = 0;
    QList<PageRenderRequest> pendingThumbnails_;
    bool scheduled_ = false;  // a renderNext() is posted and has not yet found the queues empty

    // Worker thread only: the last PDF opened, or why it could not be.
    QString pdfPath_;
    std::unique_ptr<Poppler::Document> pdf_;
    QString pdfError_;
};

}  // namespace folio::ui
