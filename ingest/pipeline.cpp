#include "ingest/pipeline.h"

#include <unistd.h>

#include <algorithm>
#include <condition_variable>
#include <deque>
#include <exception>
#include <filesystem>
#include <map>
#include <mutex>
#include <thread>
#include <variant>
#include "ingest/error.h"
#include "ingest/worker_pool.h"

namespace folio::ingest {
namespace {

using Clock = std::chrono::steady_clock;
using namespace std::chrono_literals;

// The parent kills an OCR task this long after the worker's own Tesseract
// deadline: rendering the page, loading the models (a worker's first OCR
// task) and sending the result come on top of recognition.
constexpr auto ocr_kill_margin = 15s;
// Longest the driver and the caller's thread wait before looking at the
// cancel flag again.
constexpr auto cancel_poll_interval = 50ms;
constexpr auto progress_interval = 100ms;
// A page count beyond this comes from a damaged page tree, not a document.
constexpr int max_pages_per_file = 100'000;
// Files open beyond jobs + 2 while the open ones hold fewer pages than this
// per worker (see may_open_file).
constexpr int open_pages_per_worker = 32;
constexpr std::size_t max_open_files = 256;

std::string locate_worker(const PipelineOptions& options) {
    if (!options.worker_executable.empty()) return options.worker_executable;
    std::error_code error;
    const std::filesystem::path self = std::filesystem::read_symlink("/proc/self/exe", error);
    const std::filesystem::path folder = self.parent_path();
    for (const auto& candidate : {folder / "folio-ingest-worker", folder / "../lib/folio/folio-ingest-worker"})
        if (access(candidate.c_str(), X_OK) == 0) return candidate.lexically_normal().string();
    throw IngestError("folio-ingest-worker not found in " + folder.string() + " or " +
                      (folder / "../lib/folio").lexically_normal().string());
}

// Carries documents and progress from the driver thread to the caller's.
struct Handoff {
    std::mutex mutex;
    std::condition_variable ready;
    std::deque<std::variant<ExtractedDocument, PipelineProgress>> items;
    bool driver_done = false;
    std::exception_ptr driver_error;
    std::atomic<int> documents_waiting{0};  // in `items`, not yet taken by the caller
    std::atomic<bool> stop{false};          // the caller is leaving: cancelled, or a callback threw

    template <class Item>
    void push(Item&& item) {
        {
            std::lock_guard lock(mutex);
            items.emplace_back(std::forward<Item>(item));
        }
        ready.notify_one();
    }
};

// Runs on the driver thread: opens a window of files, turns each into tasks,
// feeds the workers oldest file first, and assembles documents from results.
class ExtractionDriver {
public:
    ExtractionDriver(const std::vector<std::string>& paths, const PipelineOptions& options, std::string worker,
                     int jobs, Handoff& handoff, const std::atomic<bool>* cancel)
        : paths_(paths), options_(options), worker_(std::move(worker)), jobs_(jobs), handoff_(handoff),
          cancel_(cancel) {}

    void run() {
        try {
            WorkerPool pool({worker_, jobs_});
            while (!stopping()) {
                open_files();
                feed(pool);
                if (open_.empty() && next_path_ == paths_.size()) break;
                for (WorkerResult& result : pool.wait(cancel_poll_interval)) handle(std::move(result));
            }
        } catch (...) {
            std::lock_guard lock(handoff_.mutex);
            handoff_.driver_error = std::current_exception();
        }
        {
            std::lock_guard lock(handoff_.mutex);
            handoff_.driver_done = true;
        }
        handoff_.ready.notify_one();
    }

private:
    struct FileJob {
        std::size_t index = 0;                // into paths_
        ExtractedDocument document;
        std::deque<WorkerTask> waiting_parse;  // probe, then text-layer ranges, in page order
        std::deque<WorkerTask> waiting_ocr;    // pages to OCR, in page order
        int running = 0;                       // given to the pool, result not back
        int pages_done = 0, ocr_pages_done = 0, ocr_pages_total = 0;
        int weight = 1;                        // pages it counts in open_pages_: 1 until probed
        // Relative cost of OCR'ing one of its pages: file bytes per page. A
        // scan with more ink compresses worse and takes Tesseract longer.
        double ocr_cost = 0;
    };
    struct TaskOrigin {
        std::size_t file;  // index into paths_ and key of open_
        TaskKind kind;
        int first_page, last_page;
    };

    bool stopping() const { return handoff_.stop || (cancel_ && *cancel_); }

    // A file is open from its probe to its delivery (a slow caller's backlog
    // counts too). jobs + 2 open files feed every worker through the tail of
    // a large one; beyond that, small files keep opening up to a page budget,
    // so that a folder of single-page scans is seen at once and its OCR runs
    // costliest first instead of ending on one long page.
    bool may_open_file() const {
        const std::size_t held = open_.size() + handoff_.documents_waiting;
        if (held < static_cast<std::size_t>(jobs_) + 2) return true;
        return held < max_open_files && open_pages_ < jobs_ * open_pages_per_worker;
    }

    void open_files() {
        while (next_path_ < paths_.size() && may_open_file()) {
            FileJob& job = open_[next_path_];
            job.index = next_path_;
            job.document.path = paths_[next_path_];
            job.waiting_parse.push_back(make_task(job, TaskKind::Probe, 0, 0));
            open_pages_ += job.weight;
            ++next_path_;
        }
    }

    WorkerTask make_task(const FileJob& job, TaskKind kind, int first_page, int last_page) const {
        WorkerTask task;
        task.kind = kind;
        task.path = job.document.path;
        task.type = job.document.type;
        task.password = options_.password;
        task.first_page = first_page;
        task.last_page = last_page;
        task.ocr_mode = options_.ocr_mode;
        task.ocr = options_.ocr;
        return task;
    }

    struct NextTask {
        FileJob* job = nullptr;
        std::deque<WorkerTask>* queue = nullptr;  // take its front
    };
    // Probes first, then text-layer ranges, oldest file first: both are quick
    // and reveal the OCR work, files finish in order, and workers sharing a
    // file reuse the PDF they have open. Then OCR, costliest file first
    // (longest job first keeps the workers' finishing times close), oldest
    // first among equals.
    NextTask next_task() {
        for (auto& [index, job] : open_)
            if (!job.waiting_parse.empty() && job.waiting_parse.front().kind == TaskKind::Probe)
                return {&job, &job.waiting_parse};
        for (auto& [index, job] : open_)
            if (!job.waiting_parse.empty()) return {&job, &job.waiting_parse};
        FileJob* costliest = nullptr;
        for (auto& [index, job] : open_)
            if (!job.waiting_ocr.empty() && (!costliest || job.ocr_cost > costliest->ocr_cost)) costliest = &job;
        if (!costliest) return {};
        return {costliest, &costliest->waiting_ocr};
    }

    void feed(WorkerPool& pool) {
        while (pool.free_workers() > 0) {
            const auto [job, queue] = next_task();
            if (!queue) return;
            WorkerTask task = std::move(queue->front());
            queue->pop_front();
            const TaskOrigin origin{job->index, task.kind, task.first_page, task.last_page};
            origins_[pool.submit(std::move(task), timeout_for(origin.kind))] = origin;
            ++job->running;
        }
    }

    std::chrono::milliseconds timeout_for(TaskKind kind) const {
        if (kind == TaskKind::OcrPdfPage || kind == TaskKind::OcrImagePage)
            return std::chrono::seconds(std::max(1, options_.ocr.page_timeout_seconds)) + ocr_kill_margin;
        return std::chrono::seconds(std::max(1, options_.parse_timeout_seconds));
    }

    void handle(WorkerResult result) {
        const auto found = origins_.find(result.task_id);
        if (found == origins_.end()) return;
        const TaskOrigin origin = found->second;
        origins_.erase(found);
        FileJob& job = open_.at(origin.file);
        --job.running;
        switch (origin.kind) {
        case TaskKind::Probe: take_probe(job, result); break;
        case TaskKind::TextLayer: take_text_layer(job, origin, result); break;
        case TaskKind::OcrPdfPage:
        case TaskKind::OcrImagePage: take_ocr(job, origin, result); break;
        }
        if (job.running == 0 && job.waiting_parse.empty() && job.waiting_ocr.empty()) finish(origin.file);
        else report_progress(job, false);
    }

    void take_probe(FileJob& job, WorkerResult& result) {
        ExtractedDocument& document = job.document;
        document.type = result.type;
        if (!result.error.empty()) {
            document.error = result.error;
            return;
        }
        if (document.type == FileType::Text || document.type == FileType::Markdown) {
            document.pages = std::move(result.pages);
            job.pages_done = static_cast<int>(document.pages.size());
            return;
        }
        const int count = result.page_count;
        if (count > max_pages_per_file) {
            document.error = "the file claims " + std::to_string(count) + " pages (a damaged page tree?)";
            return;
        }
        if (document.type != FileType::Pdf && options_.ocr_mode == OcrMode::Never) {
            document.error = "an image needs OCR, which is turned off (--ocr never)";
            return;
        }
        open_pages_ += std::max(1, count) - job.weight;
        job.weight = std::max(1, count);
        std::error_code size_error;
        const auto bytes = std::filesystem::file_size(document.path, size_error);
        job.ocr_cost = size_error ? 0 : static_cast<double>(bytes) / std::max(1, count);
        document.pages.resize(count);
        for (int i = 0; i < count; ++i) document.pages[i].number = i + 1;
        if (document.type == FileType::Pdf) {
            // Smaller ranges when a file has too few pages to give every worker a full one.
            const int per_task =
                std::clamp((count + jobs_ - 1) / jobs_, 1, std::max(1, options_.text_pages_per_task));
            for (int first = 1; first <= count; first += per_task)
                job.waiting_parse.push_back(
                    make_task(job, TaskKind::TextLayer, first, std::min(count, first + per_task - 1)));
        } else {
            for (int page = 1; page <= count; ++page)
                job.waiting_ocr.push_back(make_task(job, TaskKind::OcrImagePage, page, page));
            job.ocr_pages_total = count;
        }
    }

    void take_text_layer(FileJob& job, const TaskOrigin& origin, WorkerResult& result) {
        const auto expected = static_cast<std::size_t>(origin.last_page - origin.first_page + 1);
        if (result.error.empty() && (result.pages.size() != expected || result.needs_ocr.size() != expected))
            result.error = "the worker returned " + std::to_string(result.pages.size()) + " pages for " +
                           std::to_string(expected);
        if (!result.error.empty()) {
            if (result.worker_lost && origin.last_page > origin.first_page) {
                // Retry the range page by page, so a page that kills Poppler costs only itself.
                for (int page = origin.last_page; page >= origin.first_page; --page)
                    job.waiting_parse.push_front(make_task(job, TaskKind::TextLayer, page, page));
                return;
            }
            for (int page = origin.first_page; page <= origin.last_page; ++page)
                job.document.pages[page - 1].error = result.error;
            job.pages_done += static_cast<int>(expected);
            return;
        }
        for (std::size_t i = 0; i < expected; ++i) {
            const int number = origin.first_page + static_cast<int>(i);
            Page& page = job.document.pages[number - 1];
            page = std::move(result.pages[i]);
            page.number = number;
            if (result.needs_ocr[i]) {
                job.waiting_ocr.push_back(make_task(job, TaskKind::OcrPdfPage, number, number));
                ++job.ocr_pages_total;
            } else {
                ++job.pages_done;
            }
        }
    }

    void take_ocr(FileJob& job, const TaskOrigin& origin, WorkerResult& result) {
        Page& page = job.document.pages[origin.first_page - 1];
        ++job.ocr_pages_done;
        ++job.pages_done;
        if (result.error.empty() && result.pages.size() == 1) {
            page = std::move(result.pages[0]);
            page.number = origin.first_page;
        } else {
            // The text layer, if any, stays: better than nothing, and marked.
            page.error = result.error.empty() ? "the worker returned no page" : result.error;
        }
    }

    void finish(std::size_t file) {
        FileJob& job = open_.at(file);
        ++files_done_;
        open_pages_ -= job.weight;
        report_progress(job, true);
        ++handoff_.documents_waiting;
        handoff_.push(std::move(job.document));
        open_.erase(file);
    }

    void report_progress(const FileJob& job, bool file_done) {
        const auto now = Clock::now();
        if (!file_done && now - last_progress_ < progress_interval) return;
        last_progress_ = now;
        PipelineProgress progress;
        progress.path = job.document.path;
        progress.pages_done = job.pages_done;
        progress.pages_total = static_cast<int>(job.document.pages.size());
        progress.ocr_pages_done = job.ocr_pages_done;
        progress.ocr_pages_total = job.ocr_pages_total;
        progress.files_done = files_done_;
        progress.files_total = static_cast<int>(paths_.size());
        handoff_.push(std::move(progress));
    }

    const std::vector<std::string>& paths_;
    const PipelineOptions& options_;
    const std::string worker_;
    const int jobs_;
    Handoff& handoff_;
    const std::atomic<bool>* cancel_;

    std::map<std::size_t, FileJob> open_;  // by index into paths_: oldest first
    std::size_t next_path_ = 0;
    int open_pages_ = 0;                           // sum of open files' weights
    std::map<std::uint64_t, TaskOrigin> origins_;  // by task id
    int files_done_ = 0;
    Clock::time_point last_progress_{};
};

// Stops the driver and joins it on every way out of extract_files.
class DriverThread {
public:
    DriverThread(ExtractionDriver& driver, Handoff& handoff)
        : handoff_(handoff), thread_([&driver] { driver.run(); }) {}
    ~DriverThread() {
        handoff_.stop = true;
        thread_.join();
    }

private:
    Handoff& handoff_;
    std::thread thread_;
};

}  // namespace

void extract_files(const std::vector<std::string>& paths, const PipelineOptions& options,
                   const DocumentSink& on_document, const ProgressSink& on_progress,
                   const std::atomic<bool>* cancel) {
    if (paths.empty()) return;
    const int jobs =
        options.jobs > 0 ? options.jobs : static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
    Handoff handoff;
    ExtractionDriver driver(paths, options, locate_worker(options), jobs, handoff, cancel);
    DriverThread thread(driver, handoff);
    for (;;) {
        std::unique_lock lock(handoff.mutex);
        handoff.ready.wait_for(lock, cancel_poll_interval,
                               [&] { return !handoff.items.empty() || handoff.driver_done; });
        if (cancel && *cancel) return;
        if (handoff.items.empty()) {
            if (!handoff.driver_done) continue;
            if (handoff.driver_error) std::rethrow_exception(handoff.driver_error);
            return;
        }
        auto item = std::move(handoff.items.front());
        handoff.items.pop_front();
        lock.unlock();
        if (auto* document = std::get_if<ExtractedDocument>(&item)) {
            --handoff.documents_waiting;
            on_document(std::move(*document));
        } else if (on_progress) {
            on_progress(std::get<PipelineProgress>(item));
        }
    }
}

}  // namespace folio::ingest
