#include "app/bench_ingest.h"

#include <QDir>
#include <QElapsedTimer>
#include <QFileInfo>
#include <QProcess>
#include <QStandardPaths>
#include <QTemporaryDir>

#include <cstdio>
#include <iostream>
#include <stdexcept>
#include <thread>

#include <nlohmann/json.hpp>

#include "app/library.h"
#include "ingest/detect.h"

namespace folio::app {
namespace {

struct Timed {
    double seconds = 0;
    int pages = 0;
    double pages_per_second() const { return seconds > 0 ? pages / seconds : 0; }
};

QString require_tool(const char* name) {
    const QString path = QStandardPaths::findExecutable(name);
    if (path.isEmpty())
        throw std::runtime_error(std::string(name) + " is not installed (installer/install-deps.sh installs it)");
    return path;
}

QByteArray run_tool(const QString& program, const QStringList& arguments, bool single_thread = false) {
    QProcess process;
    if (single_thread) {
        QProcessEnvironment environment = QProcessEnvironment::systemEnvironment();
        environment.insert("OMP_THREAD_LIMIT", "1");
        process.setProcessEnvironment(environment);
    }
    process.start(program, arguments);
    if (!process.waitForFinished(-1) || process.exitStatus() != QProcess::NormalExit || process.exitCode() != 0)
        throw std::runtime_error(QFileInfo(program).fileName().toStdString() + " failed: " +
                                 process.readAllStandardError().trimmed().toStdString());
    return process.readAllStandardOutput();
}

int pdf_page_count(const QString& pdfinfo, const std::string& path) {
    const QString info = QString::fromUtf8(run_tool(pdfinfo, {QString::fromStdString(path)}));
    for (const QString& line : info.split('\n'))
        if (line.startsWith("Pages:")) return line.mid(6).trimmed().toInt();
    throw std::runtime_error("pdfinfo reports no page count for " + path);
}

Timed time_folio_ingest(const std::vector<std::string>& paths, ingest::OcrMode mode, int jobs) {
    QTemporaryDir library_dir;
    if (!library_dir.isValid()) throw std::runtime_error("cannot create a temporary library");
    Library library(library_dir.path().toStdString());
    IngestRequest request{.paths = paths};
    request.pipeline.ocr_mode = mode;
    request.pipeline.jobs = jobs;
    QElapsedTimer timer;
    timer.start();
    const IngestReport report = library.ingest(request);
    Timed timed{timer.nsecsElapsed() / 1e9, report.pages};
    for (const IngestedFile& file : report.files)
        if (file.outcome == IngestOutcome::Failed)
            throw std::runtime_error("benchmark file " + file.path + " failed to ingest: " + file.error);
    return timed;
}

}  // namespace

int run_ingest_bench(const IngestBenchOptions& options, bool as_json) {
    const QString pdftotext = require_tool("pdftotext"), pdfinfo = require_tool("pdfinfo"),
                  pdftoppm = require_tool("pdftoppm"), tesseract = require_tool("tesseract");
    std::vector<std::string> pdfs;
    std::vector<int> page_counts;
    for (const std::string& path : expand_input_paths(options.paths)) {
        if (ingest::detect_file_type(path) != ingest::FileType::Pdf) continue;
        pdfs.push_back(path);
        page_counts.push_back(pdf_page_count(pdfinfo, path));
    }
    if (pdfs.empty()) throw std::runtime_error("bench ingest found no PDF among its paths");
    const int cores = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
    const int jobs = options.jobs > 0 ? options.jobs : cores;

    // Text PDFs: pdftotext (one process, as users run it) against Folio's
    // parse + chunk + store, with all workers and with one.
    Timed reference;
    QElapsedTimer timer;
    timer.start();
    for (size_t i = 0; i < pdfs.size(); ++i) {
        run_tool(pdftotext, {QString::fromStdString(pdfs[i]), "-"});
        reference.pages += page_counts[i];
    }
    reference.seconds = timer.nsecsElapsed() / 1e9;
    const Timed folio_text = time_folio_ingest(pdfs, ingest::OcrMode::Never, jobs);
    const Timed folio_text_one = time_folio_ingest(pdfs, ingest::OcrMode::Never, 1);

    // OCR: the same 300-DPI page images for the tesseract CLI and for Folio,
    // pages spread evenly over the files.
    QTemporaryDir images;
    if (!images.isValid()) throw std::runtime_error("cannot create a temporary folder");
    int total_pages = 0;
    for (int count : page_counts) total_pages += count;
    const int ocr_pages = std::min(options.ocr_pages, total_pages);
    std::vector<std::string> image_paths;
    for (int k = 0; k < ocr_pages; ++k) {
        int global = static_cast<int>((k + 0.5) * total_pages / ocr_pages);
        size_t file = 0;
        while (global >= page_counts[file]) global -= page_counts[file++];
        const QString page = QString::number(global + 1);
        const QString prefix = images.filePath(QString("page%1").arg(k, 3, 10, QChar('0')));
        run_tool(pdftoppm, {"-r", "300", "-gray", "-png", "-singlefile", "-f", page, "-l", page,
                            QString::fromStdString(pdfs[file]), prefix});
        image_paths.push_back((prefix + ".png").toStdString());
    }
    Timed tesseract_cli;
    timer.restart();
    for (const std::string& image : image_paths)
        run_tool(tesseract, {QString::fromStdString(image), images.filePath("out")}, true);
    tesseract_cli = {timer.nsecsElapsed() / 1e9, ocr_pages};
    const Timed folio_ocr_one = time_folio_ingest(image_paths, ingest::OcrMode::Auto, 1);
    const Timed folio_ocr_two = time_folio_ingest(image_paths, ingest::OcrMode::Auto, 2);

    const double text_ratio = folio_text.pages_per_second() / reference.pages_per_second();
    const double ocr_ratio = folio_ocr_one.pages_per_second() / tesseract_cli.pages_per_second();
    const double speedup = folio_ocr_two.pages_per_second() / folio_ocr_one.pages_per_second();
    nlohmann::json result = {
        {"cores", cores},
        {"text_pdf",
         {{"files", pdfs.size()},
          {"pages", reference.pages},
          {"pdftotext_pages_per_s", reference.pages_per_second()},
          {"folio_pages_per_s", folio_text.pages_per_second()},
          {"folio_jobs", jobs},
          {"folio_one_worker_pages_per_s", folio_text_one.pages_per_second()},
          {"ratio", text_ratio}}},
        {"ocr",
         {{"pages", ocr_pages},
          {"dpi", 300},
          {"tesseract_pages_per_s_per_core", tesseract_cli.pages_per_second()},
          {"folio_pages_per_s_per_core", folio_ocr_one.pages_per_second()},
          {"ratio", ocr_ratio},
          {"folio_two_workers_pages_per_s", folio_ocr_two.pages_per_second()},
          {"speedup_1_to_2_workers", speedup}}}};
    if (as_json) {
        std::cout << result.dump() << std::endl;
        return 0;
    }
    std::printf("text PDFs: %d pages in %zu files\n", reference.pages, pdfs.size());
    std::printf("  pdftotext                      %8.1f pages/s\n", reference.pages_per_second());
    std::printf("  folio (parse+chunk+store, %2d) %8.1f pages/s   ratio %.2f\n", jobs, folio_text.pages_per_second(),
                text_ratio);
    std::printf("  folio, one worker              %8.1f pages/s\n", folio_text_one.pages_per_second());
    std::printf("OCR: %d pages at 300 DPI\n", ocr_pages);
    std::printf("  tesseract CLI (1 thread)       %8.2f pages/s per core\n", tesseract_cli.pages_per_second());
    std::printf("  folio, one worker              %8.2f pages/s per core   ratio %.2f\n",
                folio_ocr_one.pages_per_second(), ocr_ratio);
    std::printf("  folio, two workers             %8.2f pages/s   speed-up %.2fx\n", folio_ocr_two.pages_per_second(),
                speedup);
    return 0;
}

}  // namespace folio::app
