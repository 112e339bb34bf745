#pragma once
// Turns files into extracted documents using a pool of worker processes:
// each file is probed, its text-layer pages parsed in page ranges, and pages
// without usable text OCR'd one page per task, all spread over the workers.
//
// Threads and processes: extract_files drives the workers (WorkerPool,
// folio-ingest-worker) from a helper thread of its own, so extraction goes on
// while the callbacks run; the callbacks run on the calling thread, one at a
// time. The workers are gone when extract_files returns or throws.

#include <atomic>
#include <functional>
#include <string>
#include <vector>
#include "ingest/page.h"

namespace folio::ingest {

struct PipelineOptions {
    int jobs = 0;                    // worker processes; 0 = one per core
    OcrMode ocr_mode = OcrMode::Auto;
    OcrOptions ocr;
    std::string password;            // for encrypted PDFs
    std::string worker_executable;   // folio-ingest-worker; empty = beside the running program
    int text_pages_per_task = 16;
    int parse_timeout_seconds = 60;  // a probe or text-layer task running longer is killed
};

struct ExtractedDocument {
    std::string path;
    FileType type = FileType::Unknown;
    std::vector<Page> pages;         // all pages, in order (failed pages carry .error)
    std::string error;               // non-empty: the whole file failed (one line)
};

struct PipelineProgress {
    std::string path;
    int pages_done = 0, pages_total = 0;  // for this file
    int ocr_pages_done = 0, ocr_pages_total = 0;
    int files_done = 0, files_total = 0;  // over the whole run
};

using DocumentSink = std::function<void(ExtractedDocument&&)>;
using ProgressSink = std::function<void(const PipelineProgress&)>;

// Extracts every file; calls on_document (on the calling thread) as each one
// completes, in completion order. Stops early when `cancel` becomes true
// (within ~50 ms, workers killed, no more callbacks). Throws IngestError when
// the workers cannot be started (folio-ingest-worker missing or broken), and
// rethrows what a callback throws.
void extract_files(const std::vector<std::string>& paths, const PipelineOptions& options,
                   const DocumentSink& on_document, const ProgressSink& on_progress = {},
                   const std::atomic<bool>* cancel = nullptr);

}  // namespace folio::ingest
