#include <QElapsedTimer>
#include <QtTest>
#include "ingest/worker_protocol.h"

using namespace folio::ingest;

namespace {

Page sample_page(int number, int word_count) {
    Page page;
    page.number = number;
    page.width = 612;
    page.height = 792.5f;
    page.ocr = true;
    page.mean_confidence = 91.25f;
    page.rotation = 90;
    page.skew_degrees = -0.75f;
    page.error = "";
    for (int i = 0; i < word_count; ++i) {
        Word word;
        word.text = i % 7 == 0 ? std::string("\xff\xfe bad \0 utf8", 12) : "Revenue" + std::to_string(i);
        word.box = {72.125f + i, 100.5f, 120.f + i, 112.f};
        word.confidence = i % 3 == 0 ? -1.f : 88.5f;
        word.font_size = 9.5f;
        word.bold = i % 2 == 0;
        word.space_after = i % 5 != 0;
        word.line_end = i % 10 == 9;
        page.text += word.text + (word.line_end ? "\n" : " ");
        page.words.push_back(word);
    }
    return page;
}

void compare_pages(const Page& actual, const Page& expected) {
    QCOMPARE(actual.number, expected.number);
    QCOMPARE(actual.width, expected.width);
    QCOMPARE(actual.height, expected.height);
    QCOMPARE(actual.ocr, expected.ocr);
    QCOMPARE(actual.mean_confidence, expected.mean_confidence);
    QCOMPARE(actual.rotation, expected.rotation);
    QCOMPARE(actual.skew_degrees, expected.skew_degrees);
    QCOMPARE(actual.text, expected.text);
    QCOMPARE(actual.error, expected.error);
    QCOMPARE(actual.words.size(), expected.words.size());
    for (std::size_t i = 0; i < expected.words.size(); ++i) {
        const Word &a = actual.words[i], &e = expected.words[i];
        QCOMPARE(a.text, e.text);
        QCOMPARE(a.box.x0, e.box.x0);
        QCOMPARE(a.box.y0, e.box.y0);
        QCOMPARE(a.box.x1, e.box.x1);
        QCOMPARE(a.box.y1, e.box.y1);
        QCOMPARE(a.confidence, e.confidence);
        QCOMPARE(a.font_size, e.font_size);
        QCOMPARE(a.bold, e.bold);
        QCOMPARE(a.space_after, e.space_after);
        QCOMPARE(a.line_end, e.line_end);
    }
}

// The payload of the single frame in `stream`.
std::string_view only_payload(FrameReader& reader, const std::string& stream) {
    reader.append(stream.data(), stream.size());
    const auto payload = reader.next_frame();
    if (!payload) qFatal("no complete frame");
    return *payload;
}

}  // namespace

class WorkerProtocolTest : public QObject {
    Q_OBJECT

private slots:
    void taskRoundTrips() {
        WorkerTask task;
        task.id = 0x1234'5678'9abcULL;
        task.kind = TaskKind::OcrImagePage;
        task.path = "/data/scans/ünïcode name.tiff";
        task.type = FileType::Tiff;
        task.password = std::string("pa\0ss", 5);
        task.first_page = 3;
        task.last_page = 4;
        task.ocr_mode = OcrMode::Always;
        task.ocr.languages = "eng+chi_sim";
        task.ocr.dpi = 400;
        task.ocr.max_pixels = 5'000'000'000LL;
        task.ocr.page_timeout_seconds = 17;
        std::string stream;
        append_task_frame(stream, task);
        FrameReader reader;
        const std::string_view payload = only_payload(reader, stream);
        QCOMPARE(message_kind(payload), MessageKind::Task);
        const WorkerTask decoded = decode_task(payload);
        QCOMPARE(decoded.id, task.id);
        QCOMPARE(decoded.kind, task.kind);
        QCOMPARE(decoded.path, task.path);
        QCOMPARE(decoded.type, task.type);
        QCOMPARE(decoded.password, task.password);
        QCOMPARE(decoded.first_page, 3);
        QCOMPARE(decoded.last_page, 4);
        QCOMPARE(decoded.ocr_mode, OcrMode::Always);
        QCOMPARE(decoded.ocr.languages, task.ocr.languages);
        QCOMPARE(decoded.ocr.dpi, 400);
        QCOMPARE(decoded.ocr.max_pixels, 5'000'000'000LL);
        QCOMPARE(decoded.ocr.page_timeout_seconds, 17);
    }

    void resultRoundTripsWithAnyBytes() {
        WorkerResult result;
        result.task_id = 42;
        result.error = "";
        result.type = FileType::Pdf;
        result.page_count = 230;
        result.pages = {sample_page(5, 40), sample_page(6, 0)};
        result.pages[1].error = "page 6: cannot render";
        result.needs_ocr = {false, true};
        std::string stream;
        append_result_frame(stream, result);
        FrameReader reader;
        const WorkerResult decoded = decode_result(only_payload(reader, stream));
        QCOMPARE(decoded.task_id, result.task_id);
        QCOMPARE(decoded.error, result.error);
        QCOMPARE(decoded.type, FileType::Pdf);
        QCOMPARE(decoded.page_count, 230);
        QVERIFY(!decoded.worker_lost);
        QCOMPARE(decoded.pages.size(), size_t(2));
        compare_pages(decoded.pages[0], result.pages[0]);
        compare_pages(decoded.pages[1], result.pages[1]);
        QCOMPARE(decoded.needs_ocr, result.needs_ocr);
    }

    void framesArriveInPieces() {
        std::string stream;
        append_hello_frame(stream);
        WorkerResult result;
        result.task_id = 7;
        result.pages = {sample_page(1, 300)};
        result.needs_ocr = {true};
        append_result_frame(stream, result);
        append_result_frame(stream, result);

        FrameReader reader;
        int hellos = 0, results = 0;
        for (char byte : stream) {
            reader.append(&byte, 1);
            while (const auto payload = reader.next_frame()) {
                if (message_kind(*payload) == MessageKind::Hello) {
                    QCOMPARE(decode_hello(*payload), worker_protocol_version);
                    ++hellos;
                } else {
                    QCOMPARE(decode_result(*payload).pages.at(0).words.size(), size_t(300));
                    ++results;
                }
            }
        }
        QCOMPARE(hellos, 1);
        QCOMPARE(results, 2);
        QVERIFY(!reader.mid_frame());
    }

    void malformedPayloadsAreRejected() {
        WorkerResult result;
        result.pages = {sample_page(1, 3)};
        result.needs_ocr = {false};
        std::string stream;
        append_result_frame(stream, result);
        const std::string payload = stream.substr(4);
        // Every truncation fails cleanly (no crash, no giant allocation).
        for (std::size_t size = 0; size < payload.size(); ++size)
            QVERIFY_THROWS_EXCEPTION(WorkerProtocolError, decode_result(std::string_view(payload).substr(0, size)));
        QVERIFY_THROWS_EXCEPTION(WorkerProtocolError, decode_result(payload + "x"));
        QVERIFY_THROWS_EXCEPTION(WorkerProtocolError, decode_task(payload));
        std::string bad_kind = payload;
        bad_kind[0] = 9;
        QVERIFY_THROWS_EXCEPTION(WorkerProtocolError, message_kind(bad_kind));

        const std::string huge_size("\xff\xff\xff\xff", 4);
        FrameReader reader;
        reader.append(huge_size.data(), huge_size.size());
        QVERIFY_THROWS_EXCEPTION(WorkerProtocolError, reader.next_frame());
    }

    void describesTasksForErrors() {
        WorkerTask task;
        task.path = "/a/b/report.pdf";
        task.kind = TaskKind::TextLayer;
        task.first_page = 17;
        task.last_page = 32;
        QCOMPARE(describe_task(task), std::string("reading the text of pages 17-32 of report.pdf"));
        task.kind = TaskKind::OcrPdfPage;
        task.last_page = 17;
        QCOMPARE(describe_task(task), std::string("running OCR on page 17 of report.pdf"));
        task.kind = TaskKind::Probe;
        QCOMPARE(describe_task(task), std::string("opening report.pdf"));
    }

    void thousandWordPageIsCheap() {
        // The parent decodes every page of every file on one thread: a dense
        // page must cost far less than Poppler's ~2 ms to produce it.
        WorkerResult result;
        result.pages = {sample_page(1, 1000)};
        result.needs_ocr = {false};
        constexpr int rounds = 200;
        QElapsedTimer timer;
        timer.start();
        std::size_t words = 0;
        for (int i = 0; i < rounds; ++i) {
            std::string stream;
            append_result_frame(stream, result);
            words += decode_result(std::string_view(stream).substr(4)).pages[0].words.size();
        }
        const double ms_per_page = timer.nsecsElapsed() / 1e6 / rounds;
        qInfo("encode + decode of a 1000-word page: %.3f ms", ms_per_page);
        QCOMPARE(words, size_t(rounds) * 1000);
        QVERIFY2(ms_per_page < 1.0, qPrintable(QString::number(ms_per_page)));
    }
};

QTEST_GUILESS_MAIN(WorkerProtocolTest)
#include "tst_worker_protocol.moc"
