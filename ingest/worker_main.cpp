// folio-ingest-worker: runs extraction tasks for a WorkerPool, one at a time,
// task frames on stdin and result frames on stdout (worker_protocol.h).
// Poppler and Tesseract run only in this process, single-threaded (the pool
// starts it with OMP_THREAD_LIMIT=1); their warnings go to stderr, which the
// pool points at /dev/null. A failure of one file or page comes back as a
// failed result; a crash or a hang costs this process, which the pool replaces.

#include <sys/prctl.h>
#include <unistd.h>

#include <csignal>
#include <exception>
#include <memory>
#include <new>
#include <optional>
#include "ingest/detect.h"
#include "ingest/error.h"
#include "ingest/ocr.h"
#include "ingest/pdf_document.h"
#include "ingest/text_file.h"
#include "ingest/worker_protocol.h"

using namespace folio::ingest;

namespace {

bool same_ocr_options(const OcrOptions& a, const OcrOptions& b) {
    return a.languages == b.languages && a.dpi == b.dpi && a.max_pixels == b.max_pixels &&
           a.page_timeout_seconds == b.page_timeout_seconds;
}

bool needs_ocr(const Page& text_layer, OcrMode mode) {
    switch (mode) {
    case OcrMode::Always: return true;
    case OcrMode::Never: return false;
    case OcrMode::Auto: break;
    }
    return !text_layer.error.empty() || !has_usable_text(text_layer);
}

class TaskRunner {
public:
    WorkerResult run(const WorkerTask& task) {
        WorkerResult result;
        result.task_id = task.id;
        try {
            switch (task.kind) {
            case TaskKind::Probe: probe(task, result); break;
            case TaskKind::TextLayer: read_text_layer(task, result); break;
            case TaskKind::OcrPdfPage:
                result.pages.push_back(ocr_engine(task.ocr).recognize_pdf_page(pdf(task), task.first_page));
                break;
            case TaskKind::OcrImagePage:
                result.pages.push_back(
                    ocr_engine(task.ocr).recognize_image_page(task.path, task.type, task.first_page));
                break;
            }
        } catch (const IngestError& e) {
            result.error = e.what();
        } catch (const std::bad_alloc&) {
            result.error = "out of memory while " + describe_task(task);
        } catch (const std::exception& e) {
            result.error = "internal error while " + describe_task(task) + ": " + e.what();
        }
        if (!result.error.empty()) {
            result.pages.clear();
            result.needs_ocr.clear();
        }
        return result;
    }

private:
    void probe(const WorkerTask& task, WorkerResult& result) {
        result.type = detect_file_type(task.path);
        switch (result.type) {
        case FileType::Pdf: result.page_count = pdf(task).page_count(); break;
        case FileType::Png:
        case FileType::Jpeg:
        case FileType::Tiff: result.page_count = OcrEngine::image_page_count(task.path, result.type); break;
        case FileType::Text:
        case FileType::Markdown:
            result.pages = read_text_file(task.path);
            result.page_count = static_cast<int>(result.pages.size());
            break;
        case FileType::Unknown:
            throw IngestError("unsupported file type (not a PDF, PNG, JPEG, TIFF or text file)");
        }
        if (result.page_count <= 0) throw IngestError("the file has no pages");
    }

    void read_text_layer(const WorkerTask& task, WorkerResult& result) {
        const PdfDocument& document = pdf(task);
        for (int number = task.first_page; number <= task.last_page; ++number) {
            Page page;
            try {
                page = document.text_layer(number);
            } catch (const IngestError& e) {
                page = Page{};
                page.number = number;
                page.error = e.what();
            }
            result.needs_ocr.push_back(needs_ocr(page, task.ocr_mode));
            result.pages.push_back(std::move(page));
        }
    }

    // Consecutive tasks mostly read the same file (the pipeline hands out a
    // file's page ranges in order), and opening a large PDF parses its whole
    // cross-reference table: keep the last one open.
    const PdfDocument& pdf(const WorkerTask& task) {
        if (!pdf_ || pdf_path_ != task.path || pdf_password_ != task.password) {
            pdf_.reset();
            pdf_ = PdfDocument::open(task.path, task.password);
            pdf_path_ = task.path;
            pdf_password_ = task.password;
        }
        return *pdf_;
    }

    // Loading Tesseract's models takes 0.1-2 s: one engine stays loaded for
    // the options of the run (a pool serves one run, so they do not change).
    OcrEngine& ocr_engine(const OcrOptions& options) {
        if (!engine_ || !same_ocr_options(engine_options_, options)) {
            engine_.reset();
            engine_ = std::make_unique<OcrEngine>(options);
            engine_options_ = options;
        }
        return *engine_;
    }

    std::optional<PdfDocument> pdf_;
    std::string pdf_path_, pdf_password_;
    std::unique_ptr<OcrEngine> engine_;
    OcrOptions engine_options_;
};

}  // namespace

int main() {
    // Die with the parent even while stuck inside Poppler or Tesseract (an idle
    // worker also exits when its stdin reaches end-of-file).
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    try {
        WorkerChannel channel(STDIN_FILENO, STDOUT_FILENO);
        channel.send_hello();
        TaskRunner runner;
        while (const auto task = channel.read_task()) {
            const WorkerResult result = runner.run(*task);
            try {
                channel.send_result(result);
            } catch (const WorkerProtocolError& e) {  // a result over max_frame_size
                WorkerResult failed;
                failed.task_id = task->id;
                failed.error = std::string(e.what()) + " while " + describe_task(*task);
                channel.send_result(failed);
            }
        }
        return 0;
    } catch (const std::exception&) {
        return 2;  // a broken channel: the parent reports how this process ended
    }
}
