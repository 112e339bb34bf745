#include "app/batch.h"

#include <QSaveFile>
#include <QString>

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <exception>
#include <filesystem>
#include <map>
#include <mutex>
#include <optional>
#include <set>
#include <stdexcept>
#include <thread>

#include "app/fhir.h"
#include "app/record_output.h"

namespace folio::app {
namespace {

using nlohmann::json;
namespace fs = std::filesystem;

// Keeps a second batch (another process) from appending to the same
// records at the same time; the kernel drops the lock when the process dies.
class OutputFolderLock {
public:
    explicit OutputFolderLock(const std::string& folder) {
        const std::string path = (fs::path(folder) / ".folio-batch.lock").string();
        fd_ = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
        if (fd_ < 0) throw std::runtime_error("cannot write to output folder " + folder);
        if (::flock(fd_, LOCK_EX | LOCK_NB) != 0) {
            ::close(fd_);
            throw std::runtime_error("another folio batch is writing to " + folder);
        }
    }
    ~OutputFolderLock() { ::close(fd_); }
    OutputFolderLock(const OutputFolderLock&) = delete;
    OutputFolderLock& operator=(const OutputFolderLock&) = delete;

private:
    int fd_ = -1;
};

// The ingest thread's stored files, handed to the extracting thread.
class StoredFiles {
public:
    void push(const IngestedFile& file) {
        {
            const std::lock_guard lock(mutex_);
            files_.push_back(file);
        }
        ready_.notify_one();
    }

    void finish(std::exception_ptr error) {
        {
            const std::lock_guard lock(mutex_);
            finished_ = true;
            error_ = error;
        }
        ready_.notify_one();
    }

    // The next stored file; nothing once the ingest has ended and every file
    // was taken, or once `stop` is set.
    std::optional<IngestedFile> next(const std::atomic<bool>& stop) {
        std::unique_lock lock(mutex_);
        while (files_.empty() && !finished_ && !stop.load())
            ready_.wait_for(lock, std::chrono::milliseconds(100));
        if (files_.empty() || stop.load()) return std::nullopt;
        IngestedFile file = std::move(files_.front());
        files_.pop_front();
        return file;
    }

    std::exception_ptr error() {
        const std::lock_guard lock(mutex_);
        return error_;
    }

private:
    std::mutex mutex_;
    std::condition_variable ready_;
    std::deque<IngestedFile> files_;
    bool finished_ = false;
    std::exception_ptr error_;
};

// Stops and joins the ingest thread however the extracting loop ends.
class IngestThread {
public:
    IngestThread(const std::string& library_dir, const BatchRequest& batch, std::vector<std::string> paths,
                 StoredFiles& stored)
        : thread_([this, library_dir, &batch, paths = std::move(paths), &stored] {
              try {
                  // A Library of its own: a store connection is used by one thread.
                  Library library(library_dir);
                  IngestRequest request{.paths = paths, .pipeline = batch.pipeline, .cancel = &stop_, .embed = false};
                  library.ingest(request, {.file_done = [&](const IngestedFile& file) { stored.push(file); }});
                  stored.finish(nullptr);
              } catch (...) {
                  stored.finish(std::current_exception());
              }
          }) {}
    ~IngestThread() {
        stop_ = true;
        thread_.join();
    }
    IngestThread(const IngestThread&) = delete;
    IngestThread& operator=(const IngestThread&) = delete;

    void stop() { stop_ = true; }

private:
    std::atomic<bool> stop_ = false;
    std::thread thread_;
};

struct Work {
    std::string path, sha256;
};

std::string absolute_folder(const std::string& folder) {
    std::string absolute = fs::absolute(fs::path(folder)).lexically_normal().string();
    while (absolute.size() > 1 && absolute.back() == '/') absolute.pop_back();
    return absolute;
}

const std::string& created_folder(const std::string& folder) {
    std::error_code error;
    fs::create_directories(folder, error);
    if (error) throw std::runtime_error("cannot create output folder " + folder + ": " + error.message());
    return folder;
}

std::string line_sha256(const json& line) {
    return line.contains("sha256") && line["sha256"].is_string() ? line["sha256"].get<std::string>() : std::string();
}

bool line_is_record(const json& line) {
    return line.value("error", std::string()).empty() && line.contains("data") && !line["data"].is_null();
}

void write_file_atomically(const std::string& path, const std::string& content) {
    QSaveFile file(QString::fromStdString(path));
    if (!file.open(QIODevice::WriteOnly) ||
        file.write(content.data(), static_cast<qint64>(content.size())) != static_cast<qint64>(content.size()) ||
        !file.commit())
        throw std::runtime_error("cannot write " + path + ": " + file.errorString().toStdString());
}

class BatchRun {
public:
    BatchRun(Library& library, const JsonSchema& schema, const BatchRequest& request,
             const BatchCallbacks& callbacks)
        : library_(library),
          request_(request),
          callbacks_(callbacks),
          batch_(absolute_folder(request.output_dir)),
          lock_(created_folder(batch_)),
          files_(batch_, schema) {}

    BatchReport run(const RecordExtractor& extract) {
        const auto start = std::chrono::steady_clock::now();
        const std::vector<Work> work = plan();
        if (!work.empty()) extract_all(work, extract);
        report_.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
        report_.cancelled = cancelled();
        return std::move(report_);
    }

private:
    bool cancelled() const { return request_.cancel && request_.cancel->load(); }

    // Hashes the inputs and sorts them: done before (skipped), unreadable
    // (failed now), and the work of this run, whose jobs are made pending.
    std::vector<Work> plan() {
        std::vector<std::string> inputs = expand_input_paths(request_.paths, batch_);
        const std::string library_prefix = library_.directory() + "/";
        std::erase_if(inputs, [&](const std::string& path) { return path.rfind(library_prefix, 0) == 0; });
        if (callbacks_.started) callbacks_.started(static_cast<int>(inputs.size()));
        for (const std::string& path : inputs) ++stems_[fs::path(path).stem().string()];

        std::map<std::string, std::int64_t> written;  // sha256 -> doc_id of the records already in records.jsonl
        for (const json& line : files_.lines())
            if (line_is_record(line) && !line_sha256(line).empty())
                written.emplace(line_sha256(line), line.value("doc_id", std::int64_t{0}));

        std::vector<Work> work;
        std::vector<BatchItem> unreadable;
        std::vector<index::BatchJob> jobs;
        std::map<std::string, std::string> first_path;  // sha256 -> the input of this run that holds it
        for (const std::string& path : inputs) {
            BatchItem item{.path = path};
            try {
                item.sha256 = file_sha256(path);
            } catch (const std::exception& e) {
                item.outcome = BatchOutcome::Failed;
                item.error = e.what();
                unreadable.push_back(std::move(item));
                continue;
            }
            item.outcome = BatchOutcome::Skipped;
            if (const auto job = library_.store().done_batch_job(batch_, item.sha256)) {
                item.doc_id = job->doc_id;
                item.error = job->path == path ? "done in an earlier run" : "done in an earlier run as " + job->path;
            } else if (const auto line = written.find(item.sha256); line != written.end()) {
                // Its line was written, and the run stopped before marking it done.
                item.doc_id = line->second;
                item.error = "done in an earlier run";
                jobs.push_back(job_of(item, index::BatchJobState::Done));
            } else if (const auto first = first_path.find(item.sha256); first != first_path.end()) {
                item.error = "same content as " + first->second;
            } else {
                first_path.emplace(item.sha256, path);
                work.push_back({path, item.sha256});
                jobs.push_back(job_of(item, index::BatchJobState::Pending));
                continue;
            }
            finish(std::move(item));
        }
        drop_error_rows_of_retried(work, unreadable);
        library_.store().put_batch_jobs(jobs);
        for (BatchItem& item : unreadable) {
            ExtractionRecord error_row{.path = item.path, .error = item.error};
            fail(std::move(item), std::move(error_row));
        }
        return work;
    }

    // A failed record is retried by every run that is given its file: its
    // old error row makes way for the new attempt's row.
    void drop_error_rows_of_retried(const std::vector<Work>& work, const std::vector<BatchItem>& unreadable) {
        std::set<std::string> retried_paths, retried_content;
        for (const Work& w : work) {
            retried_paths.insert(w.path);
            retried_content.insert(w.sha256);
        }
        for (const BatchItem& item : unreadable) retried_paths.insert(item.path);
        std::vector<json> kept;
        for (const json& line : files_.lines()) {
            const bool retried = retried_paths.count(line.value("path", std::string())) ||
                                 retried_content.count(line_sha256(line));
            if (line_is_record(line) || !retried) kept.push_back(line);
        }
        if (kept.size() != files_.lines().size()) files_.rewrite(std::move(kept));
    }

    void extract_all(const std::vector<Work>& work, const RecordExtractor& extract) {
        std::map<std::string, std::string> sha_of;
        std::vector<std::string> paths;
        for (const Work& w : work) {
            sha_of.emplace(w.path, w.sha256);
            paths.push_back(w.path);
        }
        StoredFiles stored;
        const std::atomic<bool> never = false;
        IngestThread ingest(library_.directory(), request_, std::move(paths), stored);
        for (;;) {
            std::optional<IngestedFile> file = stored.next(request_.cancel ? *request_.cancel : never);
            if (!file) break;
            BatchItem item{.path = file->path, .sha256 = sha_of[file->path], .doc_id = file->doc_id};
            // A copy of a stored document is extracted from that document.
            const bool stored_ok = file->doc_id != 0 && file->outcome != IngestOutcome::Failed &&
                                   file->outcome != IngestOutcome::Skipped;
            if (!stored_ok) {
                const std::string error = file->error.empty() ? "the file could not be stored" : file->error;
                ExtractionRecord error_row{.doc_id = file->doc_id, .path = file->path, .error = error};
                fail(std::move(item), std::move(error_row));
                continue;
            }
            ExtractionRecord record = extract_one(extract, file->path, file->doc_id);
            write_record(std::move(item), std::move(record));
            if (cancelled()) break;
        }
        if (cancelled()) ingest.stop();
        if (const std::exception_ptr error = stored.error()) std::rethrow_exception(error);
    }

    ExtractionRecord extract_one(const RecordExtractor& extract, const std::string& path, std::int64_t doc_id) {
        try {
            return extract(library_, doc_id);
        } catch (const std::exception& e) {
            return {.doc_id = doc_id, .path = path, .error = e.what()};
        }
    }

    void write_record(BatchItem item, ExtractionRecord record) {
        if (!record.error.empty()) {
            // A record cut short by Ctrl-C is neither done nor failed: it stays pending.
            if (cancelled()) return;
            item.seconds = record.seconds;
            fail(std::move(item), std::move(record));
            return;
        }
        json line = record_json(record);
        line["sha256"] = item.sha256;
        if (request_.fhir) {
            const json bundle = fhir_bundle(record.data, item.sha256);
            if (const std::vector<std::string> errors = fhir_structure_errors(bundle); !errors.empty()) {
                record.data = nullptr;
                record.values.clear();
                record.error = "the FHIR Bundle breaks R4's rules: " + errors.front();
                fail(std::move(item), std::move(record));
                return;
            }
            item.fhir_file = fhir_file_name(item);
            fs::create_directories(fs::path(batch_) / "fhir");
            write_file_atomically((fs::path(batch_) / item.fhir_file).string(), bundle.dump(2) + "\n");
            line["fhir"] = item.fhir_file;
        }
        files_.append(line);
        item.grounded = record.grounded;
        item.ungrounded = record.ungrounded;
        item.seconds = record.seconds;
        library_.store().put_batch_jobs(std::vector{job_of(item, index::BatchJobState::Done)});
        finish(std::move(item));
    }

    // fhir/<stem>.json, with the content's hash when another input of the
    // batch has the same stem.
    std::string fhir_file_name(const BatchItem& item) const {
        const std::string stem = fs::path(item.path).stem().string();
        const auto count = stems_.find(stem);
        const bool shared = count != stems_.end() && count->second > 1;
        return "fhir/" + stem + (shared ? "-" + item.sha256.substr(0, 12) : "") + ".json";
    }

    // Writes the error row, then marks the job failed (a crash between the
    // two leaves it pending: retried, and its row replaced, next run).
    void fail(BatchItem item, ExtractionRecord record) {
        item.outcome = BatchOutcome::Failed;
        item.error = record.error;
        json line = record_json(record);
        line["sha256"] = item.sha256;
        files_.append(line);
        library_.store().put_batch_jobs(std::vector{job_of(item, index::BatchJobState::Failed)});
        finish(std::move(item));
    }

    index::BatchJob job_of(const BatchItem& item, index::BatchJobState state) const {
        return {.batch = batch_,
                .path = item.path,
                .sha256 = item.sha256,
                .state = state,
                .doc_id = state == index::BatchJobState::Failed ? 0 : item.doc_id,
                .error = state == index::BatchJobState::Failed ? item.error : std::string()};
    }

    void finish(BatchItem item) {
        if (callbacks_.item_done) callbacks_.item_done(item);
        report_.items.push_back(std::move(item));
    }

    Library& library_;
    const BatchRequest& request_;
    const BatchCallbacks& callbacks_;
    std::string batch_;
    OutputFolderLock lock_;
    RecordFiles files_;
    std::map<std::string, int> stems_;
    BatchReport report_;
};

}  // namespace

const char* batch_outcome_name(BatchOutcome outcome) {
    switch (outcome) {
    case BatchOutcome::Done: return "done";
    case BatchOutcome::Failed: return "failed";
    case BatchOutcome::Skipped: return "skipped";
    }
    return "failed";
}

int BatchReport::count(BatchOutcome outcome) const {
    return static_cast<int>(
        std::count_if(items.begin(), items.end(), [&](const BatchItem& item) { return item.outcome == outcome; }));
}

double BatchReport::grounded_share() const {
    int grounded = 0, values = 0;
    for (const BatchItem& item : items) {
        if (item.outcome != BatchOutcome::Done) continue;
        grounded += item.grounded;
        values += item.grounded + item.ungrounded;
    }
    return values ? static_cast<double>(grounded) / values : 0.0;
}

double BatchReport::seconds_per_record() const {
    const int processed = count(BatchOutcome::Done) + count(BatchOutcome::Failed);
    return processed ? seconds / processed : 0.0;
}

BatchReport run_batch(Library& library, const JsonSchema& schema, const RecordExtractor& extract,
                      const BatchRequest& request, const BatchCallbacks& callbacks) {
    return BatchRun(library, schema, request, callbacks).run(extract);
}

}  // namespace folio::app
