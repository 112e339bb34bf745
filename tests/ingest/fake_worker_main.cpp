// A worker for WorkerPool tests: speaks worker_protocol.h like
// folio-ingest-worker, without Poppler or Tesseract. The task's path says
// what to do:
//   pid            page 1's text is this process's pid
//   sleep:MS       sleep MS milliseconds, then as `pid`
//   abort          abort() (dies of SIGABRT mid-task)
//   hang           never answer
//   words:N        one page of N words "w0".."w<N-1>" (large results)
//   env:NAME       page 1's text is $NAME, or "<unset>"
//   stderr         page 1's text is where fd 2 points
//   fail:MESSAGE   the task fails with MESSAGE
// and for pipeline tests, a fake PDF (anywhere in the path, so that a real
// file of a chosen size can carry it in its name):
//   pdf:N[:crash=P][:fail=P][:scan=P+Q...][:sleep=MS][:ocrsleep=MS]
// N pages whose text layer reads "text of page P"; reading page `crash` aborts
// the worker; `scan` pages need OCR, which reads "ocr of page P" except on
// page `fail`, where it fails; every task first sleeps `sleep` milliseconds,
// and every OCR task `ocrsleep` more.

#include <unistd.h>

#include <chrono>
#include <climits>
#include <cstdlib>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include "ingest/worker_protocol.h"

using namespace folio::ingest;

namespace {

struct FakePdf {
    int pages = 0, crash_page = 0, fail_page = 0, sleep_ms = 0, ocr_sleep_ms = 0;
    std::set<int> scanned;
};

FakePdf parse_fake_pdf(const std::string& spec) {
    FakePdf pdf;
    std::istringstream fields(spec.substr(4));
    std::string field;
    std::getline(fields, field, ':');
    pdf.pages = std::stoi(field);
    while (std::getline(fields, field, ':')) {
        const auto equals = field.find('=');
        const std::string key = field.substr(0, equals), value = field.substr(equals + 1);
        if (key == "crash") pdf.crash_page = std::stoi(value);
        else if (key == "fail") pdf.fail_page = std::stoi(value);
        else if (key == "sleep") pdf.sleep_ms = std::stoi(value);
        else if (key == "ocrsleep") pdf.ocr_sleep_ms = std::stoi(value);
        else if (key == "scan") {
            std::istringstream pages(value);
            for (std::string page; std::getline(pages, page, '+');) pdf.scanned.insert(std::stoi(page));
        }
    }
    return pdf;
}

WorkerResult run_fake_pdf(const WorkerTask& task, const std::string& spec) {
    const FakePdf pdf = parse_fake_pdf(spec);
    std::this_thread::sleep_for(std::chrono::milliseconds(pdf.sleep_ms));
    WorkerResult result;
    result.task_id = task.id;
    switch (task.kind) {
    case TaskKind::Probe:
        result.type = FileType::Pdf;
        result.page_count = pdf.pages;
        break;
    case TaskKind::TextLayer:
        for (int number = task.first_page; number <= task.last_page; ++number) {
            if (number == pdf.crash_page) std::abort();
            Page page;
            page.number = number;
            page.text = "text of page " + std::to_string(number);
            result.pages.push_back(page);
            result.needs_ocr.push_back(pdf.scanned.count(number) > 0);
        }
        break;
    case TaskKind::OcrPdfPage:
    case TaskKind::OcrImagePage:
        std::this_thread::sleep_for(std::chrono::milliseconds(pdf.ocr_sleep_ms));
        if (task.first_page == pdf.fail_page) {
            result.error = "OCR failed on page " + std::to_string(task.first_page);
            break;
        }
        Page page;
        page.number = task.first_page;
        page.text = "ocr of page " + std::to_string(task.first_page);
        page.ocr = true;
        result.pages.push_back(page);
        break;
    }
    return result;
}

WorkerResult run(const WorkerTask& task) {
    if (const auto spec = task.path.find("pdf:"); spec != std::string::npos)
        return run_fake_pdf(task, task.path.substr(spec));

    WorkerResult result;
    result.task_id = task.id;
    const std::string& command = task.path;
    const auto colon = command.find(':');
    const std::string verb = command.substr(0, colon);
    const std::string argument = colon == std::string::npos ? "" : command.substr(colon + 1);

    Page page;
    page.number = task.first_page;
    if (verb == "pid") {
        page.text = std::to_string(getpid());
    } else if (verb == "sleep") {
        std::this_thread::sleep_for(std::chrono::milliseconds(std::stoi(argument)));
        page.text = std::to_string(getpid());
    } else if (verb == "abort") {
        std::abort();
    } else if (verb == "hang") {
        for (;;) pause();
    } else if (verb == "words") {
        const int count = std::stoi(argument);
        page.words.resize(count);
        for (int i = 0; i < count; ++i) {
            Word& word = page.words[i];
            word.text = "w" + std::to_string(i);
            word.box = {float(i), float(i) + 1, float(i) + 2, float(i) + 3};
            word.font_size = 10;
            word.line_end = i % 10 == 9;
            page.text += word.text;
            page.text += word.line_end ? '\n' : ' ';
        }
    } else if (verb == "env") {
        const char* value = std::getenv(argument.c_str());
        page.text = value ? value : "<unset>";
    } else if (verb == "stderr") {
        char target[PATH_MAX] = {};
        const ssize_t size = readlink("/proc/self/fd/2", target, sizeof target - 1);
        page.text = size > 0 ? std::string(target, size) : "<closed>";
    } else if (verb == "fail") {
        result.error = argument;
        return result;
    } else {
        result.error = "fake worker: unknown command " + command;
        return result;
    }
    result.pages.push_back(std::move(page));
    result.needs_ocr.push_back(false);
    return result;
}

}  // namespace

int main() {
    WorkerChannel channel(STDIN_FILENO, STDOUT_FILENO);
    channel.send_hello();
    while (const auto task = channel.read_task()) channel.send_result(run(*task));
    return 0;
}
