#include <sys/wait.h>

#include <QElapsedTimer>
#include <QFile>
#include <QImage>
#include <QPainter>
#include <QPdfWriter>
#include <QTemporaryDir>
#include <QtTest>
#include <atomic>
#include <map>
#include <random>
#include <tuple>
#include <thread>
#include "ingest/error.h"
#include "ingest/pipeline.h"

using namespace folio::ingest;
using namespace std::chrono_literals;

namespace {

constexpr const char* scan_sentence = "Quarterly revenue grew to 4217 dollars in the third quarter.";

// Black text on white at `dpi`, 14 pt, as a scanner would see a printed line.
QImage text_image(const QString& text, int dpi) {
    QImage image(dpi * 8, dpi * 2, QImage::Format_Grayscale8);
    image.fill(Qt::white);
    image.setDotsPerMeterX(qRound(dpi / 0.0254));
    image.setDotsPerMeterY(qRound(dpi / 0.0254));
    QPainter painter(&image);
    QFont font("DejaVu Sans");
    font.setPixelSize(dpi * 14 / 72);
    painter.setFont(font);
    painter.setPen(Qt::black);
    painter.drawText(image.rect().adjusted(dpi / 4, dpi / 4, -dpi / 4, -dpi / 4), Qt::TextWordWrap, text);
    return image;
}

// One PDF page per entry: text drawn as text, or (an empty QString) the scan
// image drawn as a picture, with no text layer.
void write_pdf(const QString& path, const QStringList& pages) {
    QPdfWriter writer(path);
    writer.setPageSize(QPageSize(QPageSize::A4));
    writer.setResolution(72);  // painter units are points
    QPainter painter(&writer);
    painter.setFont(QFont("DejaVu Sans", 12));
    for (int i = 0; i < pages.size(); ++i) {
        if (i > 0) writer.newPage();
        if (pages[i].isEmpty()) painter.drawImage(QRectF(36, 72, 8 * 72, 2 * 72), text_image(scan_sentence, 300));
        else painter.drawText(QRectF(72, 72, 450, 600), Qt::TextWordWrap, pages[i]);
    }
}

QString page_sentence(int number) {
    return QString("Page %1 of the annual report: operating income increased because of higher "
                   "volumes in every segment.")
        .arg(number);
}

bool contains(const std::string& text, const std::string& part) {
    return QString::fromStdString(text).contains(QString::fromStdString(part), Qt::CaseInsensitive);
}

struct Run {
    std::map<std::string, ExtractedDocument> documents;  // by path
    std::vector<PipelineProgress> progress;
    int deliveries = 0;
    bool callbacks_on_caller_thread = true;
};

Run extract(const std::vector<std::string>& paths, const PipelineOptions& options,
            const std::atomic<bool>* cancel = nullptr) {
    Run run;
    const auto caller = std::this_thread::get_id();
    extract_files(
        paths, options,
        [&](ExtractedDocument&& document) {
            ++run.deliveries;
            run.callbacks_on_caller_thread &= std::this_thread::get_id() == caller;
            const std::string path = document.path;
            run.documents.emplace(path, std::move(document));
        },
        [&](const PipelineProgress& progress) {
            run.callbacks_on_caller_thread &= std::this_thread::get_id() == caller;
            run.progress.push_back(progress);
        },
        cancel);
    return run;
}

bool no_child_processes() {
    int status;
    return waitpid(-1, &status, WNOHANG) == -1 && errno == ECHILD;
}

}  // namespace

class PipelineTest : public QObject {
    Q_OBJECT

    QTemporaryDir dir_;
    std::string text_pdf_, mixed_pdf_, scan_png_, notes_txt_, binary_, missing_;

    std::string file(const char* name) const { return dir_.filePath(name).toStdString(); }

    static PipelineOptions real_worker(int jobs) {
        PipelineOptions options;
        options.jobs = jobs;
        options.worker_executable = FOLIO_INGEST_WORKER;
        return options;
    }
    static PipelineOptions fake_worker(int jobs) {
        PipelineOptions options;
        options.jobs = jobs;
        options.worker_executable = FOLIO_FAKE_WORKER;
        return options;
    }

private slots:
    void initTestCase() {
        QVERIFY(dir_.isValid());
        text_pdf_ = file("report.pdf");
        write_pdf(QString::fromStdString(text_pdf_), {page_sentence(1), page_sentence(2), page_sentence(3)});
        mixed_pdf_ = file("mixed.pdf");
        write_pdf(QString::fromStdString(mixed_pdf_), {page_sentence(1), QString()});
        scan_png_ = file("scan.png");
        QVERIFY(text_image(scan_sentence, 300).save(QString::fromStdString(scan_png_)));
        notes_txt_ = file("notes.txt");
        QFile notes(QString::fromStdString(notes_txt_));
        QVERIFY(notes.open(QIODevice::WriteOnly));
        notes.write("First page of the analyst notes.\n\fSecond page: follow up on margins.\n");
        notes.close();
        binary_ = file("blob.bin");
        QFile blob(QString::fromStdString(binary_));
        QVERIFY(blob.open(QIODevice::WriteOnly));
        std::mt19937 random(7);
        QByteArray bytes(8192, '\0');
        for (char& byte : bytes) byte = static_cast<char>(random());
        blob.write(bytes);
        blob.close();
        missing_ = file("missing.pdf");
    }

    void extractsEveryFileOrSaysWhyNot() {
        const std::vector<std::string> paths{text_pdf_, scan_png_, notes_txt_, binary_, missing_};
        const Run run = extract(paths, real_worker(2));
        QCOMPARE(run.deliveries, 5);
        QCOMPARE(run.documents.size(), size_t(5));
        QVERIFY(run.callbacks_on_caller_thread);

        const ExtractedDocument& report = run.documents.at(text_pdf_);
        QVERIFY2(report.error.empty(), report.error.c_str());
        QCOMPARE(report.type, FileType::Pdf);
        QCOMPARE(report.pages.size(), size_t(3));
        for (int i = 0; i < 3; ++i) {
            const Page& page = report.pages[i];
            QCOMPARE(page.number, i + 1);
            QVERIFY2(page.error.empty(), page.error.c_str());
            QVERIFY(!page.ocr);
            QVERIFY2(contains(page.text, "Page " + std::to_string(i + 1) + " of the annual report"), page.text.c_str());
            QVERIFY(!page.words.empty());
        }

        const ExtractedDocument& scan = run.documents.at(scan_png_);
        QVERIFY2(scan.error.empty(), scan.error.c_str());
        QCOMPARE(scan.type, FileType::Png);
        QCOMPARE(scan.pages.size(), size_t(1));
        QVERIFY(scan.pages[0].ocr);
        QVERIFY2(contains(scan.pages[0].text, "revenue grew to 4217"), scan.pages[0].text.c_str());

        const ExtractedDocument& notes = run.documents.at(notes_txt_);
        QVERIFY2(notes.error.empty(), notes.error.c_str());
        QCOMPARE(notes.type, FileType::Text);
        QCOMPARE(notes.pages.size(), size_t(2));
        QVERIFY(contains(notes.pages[1].text, "follow up on margins"));

        const ExtractedDocument& blob = run.documents.at(binary_);
        QVERIFY2(contains(blob.error, "unsupported file type"), blob.error.c_str());
        QVERIFY(blob.pages.empty());
        const ExtractedDocument& missing = run.documents.at(missing_);
        QVERIFY2(contains(missing.error, "No such file"), missing.error.c_str());
        QVERIFY(missing.error.find('\n') == std::string::npos);

        QVERIFY(!run.progress.empty());
        const PipelineProgress& last = run.progress.back();
        QCOMPARE(last.files_done, 5);
        QCOMPARE(last.files_total, 5);
        QCOMPARE(last.pages_done, last.pages_total);
        QVERIFY(no_child_processes());
    }

    void ocrRunsOnlyOnPagesWithoutText() {
        const Run run = extract({mixed_pdf_}, real_worker(2));
        const ExtractedDocument& mixed = run.documents.at(mixed_pdf_);
        QVERIFY2(mixed.error.empty(), mixed.error.c_str());
        QCOMPARE(mixed.pages.size(), size_t(2));
        QVERIFY(!mixed.pages[0].ocr);
        QVERIFY(contains(mixed.pages[0].text, "Page 1 of the annual report"));
        QVERIFY(mixed.pages[1].ocr);
        QVERIFY2(mixed.pages[1].error.empty(), mixed.pages[1].error.c_str());
        QVERIFY2(contains(mixed.pages[1].text, "revenue grew to 4217"), mixed.pages[1].text.c_str());
        QCOMPARE(run.progress.back().ocr_pages_total, 1);
        QCOMPARE(run.progress.back().ocr_pages_done, 1);

        PipelineOptions never = real_worker(1);
        never.ocr_mode = OcrMode::Never;
        const Run text_only = extract({mixed_pdf_, scan_png_}, never);
        const ExtractedDocument& unscanned = text_only.documents.at(mixed_pdf_);
        QCOMPARE(unscanned.pages.size(), size_t(2));
        QVERIFY(!unscanned.pages[1].ocr);
        QVERIFY(unscanned.pages[1].text.find("4217") == std::string::npos);
        QVERIFY2(contains(text_only.documents.at(scan_png_).error, "--ocr never"),
                 text_only.documents.at(scan_png_).error.c_str());
    }

    void crashInATextRangeCostsOnlyThatPage() {
        const std::string path = "pdf:40:crash=7";
        const Run run = extract({path}, fake_worker(2));
        const ExtractedDocument& document = run.documents.at(path);
        QVERIFY(document.error.empty());
        QCOMPARE(document.pages.size(), size_t(40));
        for (int number = 1; number <= 40; ++number) {
            const Page& page = document.pages[number - 1];
            QCOMPARE(page.number, number);
            if (number == 7) {
                QCOMPARE(page.error, "worker crashed (signal 6, SIGABRT) while reading the text of page 7 of " + path);
            } else {
                QVERIFY2(page.error.empty(), page.error.c_str());
                QCOMPARE(page.text, "text of page " + std::to_string(number));
            }
        }
    }

    void failedOcrKeepsTheTextLayer() {
        const std::string path = "pdf:4:scan=2+3:fail=3";
        const Run run = extract({path}, fake_worker(2));
        const ExtractedDocument& document = run.documents.at(path);
        QCOMPARE(document.pages.size(), size_t(4));
        QCOMPARE(document.pages[0].text, std::string("text of page 1"));
        QVERIFY(document.pages[1].ocr);
        QCOMPARE(document.pages[1].text, std::string("ocr of page 2"));
        QVERIFY(!document.pages[2].ocr);
        QCOMPARE(document.pages[2].text, std::string("text of page 3"));
        QCOMPARE(document.pages[2].error, std::string("OCR failed on page 3"));
        QCOMPARE(document.pages[3].text, std::string("text of page 4"));
        QCOMPARE(run.progress.back().ocr_pages_total, 2);
        QCOMPARE(run.progress.back().ocr_pages_done, 2);
    }

    void oneLargeFileKeepsBothWorkersBusy() {
        // 16 pages in ranges of 4, each task taking 300 ms: a probe, then 4
        // ranges on 2 workers is ~900 ms; one worker at a time would be 1500.
        PipelineOptions options = fake_worker(2);
        options.text_pages_per_task = 4;
        QElapsedTimer timer;
        timer.start();
        const Run run = extract({"pdf:16:sleep=300"}, options);
        const auto elapsed = timer.elapsed();
        QCOMPARE(run.documents.at("pdf:16:sleep=300").pages.size(), size_t(16));
        QVERIFY2(elapsed >= 890 && elapsed < 1350, qPrintable(QString::number(elapsed)));
    }

    void filesInterleaveAcrossWorkers() {
        // Two 2-page files on 2 workers, 400 ms a task: both probes side by
        // side, then a's pages, then b's: ~1200 ms. One file at a time
        // (probe, pages, probe, pages) would take 1600.
        PipelineOptions options = fake_worker(2);
        QElapsedTimer timer;
        timer.start();
        const Run run = extract({"pdf:2:sleep=400:file=a", "pdf:2:sleep=400:file=b"}, options);
        const auto elapsed = timer.elapsed();
        QCOMPARE(run.documents.size(), size_t(2));
        QVERIFY2(elapsed >= 1190 && elapsed < 1500, qPrintable(QString::number(elapsed)));
    }

    void ocrRunsCostliestPageFirst() {
        // Four one-page scans in a row; the last has 3x the bytes and takes
        // 3x as long. In file order two workers need 300 + 900 ms; longest
        // first, 900 ms (the three short pages run beside the long one).
        std::vector<std::string> paths;
        for (const auto& [name, bytes, ocr_ms] : {std::tuple{"a", 1000, 300}, std::tuple{"b", 1000, 300},
                                                  std::tuple{"c", 1000, 300}, std::tuple{"d", 3000, 900}}) {
            const QString path = dir_.filePath(QString("pdf:1:scan=1:ocrsleep=%1:file=%2").arg(ocr_ms).arg(name));
            QFile scan(path);
            QVERIFY(scan.open(QIODevice::WriteOnly));
            scan.write(QByteArray(bytes, 'x'));
            paths.push_back(path.toStdString());
        }
        QElapsedTimer timer;
        timer.start();
        const Run run = extract(paths, fake_worker(2));
        const auto elapsed = timer.elapsed();
        QCOMPARE(run.documents.size(), size_t(4));
        for (const auto& [path, document] : run.documents) QCOMPARE(document.pages.at(0).text, std::string("ocr of page 1"));
        QVERIFY2(elapsed >= 890 && elapsed < 1100, qPrintable(QString::number(elapsed)));
    }

    void cancellationReturnsPromptly() {
        std::vector<std::string> paths;
        for (int i = 0; i < 8; ++i) paths.push_back("pdf:64:sleep=300:file=" + std::to_string(i));
        std::atomic<bool> cancel{false};
        std::thread canceller([&cancel] {
            std::this_thread::sleep_for(400ms);
            cancel = true;
        });
        QElapsedTimer timer;
        timer.start();
        const Run run = extract(paths, fake_worker(2), &cancel);
        const auto elapsed = timer.elapsed();
        canceller.join();
        QVERIFY2(elapsed >= 400 && elapsed < 800, qPrintable(QString::number(elapsed)));
        QVERIFY(run.documents.empty());
        QVERIFY(no_child_processes());
    }

    void callbackExceptionsStopTheRun() {
        int delivered = 0;
        QVERIFY_THROWS_EXCEPTION(std::runtime_error,
                                 extract_files({"pdf:1:file=a", "pdf:1:file=b", "pdf:1:file=c"}, fake_worker(2),
                                               [&](ExtractedDocument&&) {
                                                   ++delivered;
                                                   throw std::runtime_error("disk full");
                                               }));
        QCOMPARE(delivered, 1);
        QVERIFY(no_child_processes());
    }

    void missingWorkerThrows() {
        PipelineOptions options;
        options.worker_executable = "/nonexistent/folio-ingest-worker";
        QVERIFY_THROWS_EXCEPTION(IngestError, extract_files({text_pdf_}, options, [](ExtractedDocument&&) {}));
        options.worker_executable = "/bin/true";
        QVERIFY_THROWS_EXCEPTION(IngestError, extract_files({text_pdf_}, options, [](ExtractedDocument&&) {}));
        QVERIFY(no_child_processes());
    }
};

QTEST_MAIN(PipelineTest)
#include "tst_pipeline.moc"
