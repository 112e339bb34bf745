#pragma once
// A batch: every record in a set of files and folders (PDFs, scans, images)
// ingested and extracted, its outputs written to one folder as each record
// finishes (app/record_output.h: records.jsonl, records.csv; with FHIR,
// fhir/<file stem>.json per record, app/fhir.h), resumably.
//
// Resuming: the batch is named by its absolute output folder, and the
// library's batch job table (index/library_store.h) records each input file
// (path, content hash) as pending, done or failed. A run skips content that
// a done job or a complete line of records.jsonl already holds, whatever the
// file is called now, and retries failed jobs (the cause, a missing OCR
// language or a file since replaced, may be fixed by now); the retry's row
// replaces the old error row. Each record's order makes a crash at any
// point safe: its FHIR file is written (atomically), then its line is
// appended and flushed to disk, then its job is marked done. A crash before
// the line leaves the job pending, and the record is made again; a crash
// after it leaves a line whose job the next run marks done without
// extracting again; a line cut short is dropped. So no record is written
// twice.
//
// Pipelining: the files are ingested on a thread of their own, with a
// Library of its own (its own store connection, as LibraryStore's thread
// rules ask), while the calling thread extracts each record as soon as its
// document is stored: OCR of the next scans overlaps the model's work on
// the current one. Chunks are not embedded (extraction reads pages);
// `folio index` embeds them.
//
// Thread rules: run_batch blocks the calling thread, which must be the one
// that uses `library` and the extractor; callbacks run on it. Cancel from
// any thread through BatchRequest::cancel: the record being extracted is
// finished or abandoned by the extractor's own cancel, nothing after it is
// started.

#include <atomic>
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "app/extract.h"
#include "app/json_schema.h"
#include "app/library.h"
#include "ingest/pipeline.h"

namespace folio::app {

struct BatchRequest {
    std::vector<std::string> paths;   // files and folders (walked recursively)
    std::string output_dir;           // names the batch too
    bool fhir = false;                // also fhir/<stem>.json per record (the medical pack)
    ingest::PipelineOptions pipeline; // its jobs parse and OCR that many files at once
    const std::atomic<bool>* cancel = nullptr;
};

enum class BatchOutcome { Done, Failed, Skipped };
const char* batch_outcome_name(BatchOutcome outcome);

// One input file's fate in this run.
struct BatchItem {
    std::string path;
    std::string sha256;               // empty when the file could not be read
    BatchOutcome outcome = BatchOutcome::Done;
    std::int64_t doc_id = 0;
    int grounded = 0, ungrounded = 0;
    double seconds = 0;               // extracting it
    std::string fhir_file;            // relative to the output folder; empty when none was written
    std::string error;                // failed: why; skipped: why (done before, same content as another file)
};

struct BatchReport {
    std::vector<BatchItem> items;     // in the order they finished
    double seconds = 0;               // the run's wall time
    bool cancelled = false;
    int count(BatchOutcome outcome) const;
    // Grounded values over the non-null values of the records done in this run; 0 when none.
    double grounded_share() const;
    // Wall seconds over the records processed (done or failed) in this run; 0 when none.
    double seconds_per_record() const;
};

struct BatchCallbacks {
    std::function<void(int files)> started;          // inputs found, before any is processed
    std::function<void(const BatchItem&)> item_done;
};

// Makes one record: Extractor::extract in the CLI, a stand-in in tests.
using RecordExtractor = std::function<ExtractionRecord(Library&, std::int64_t doc_id)>;

// Runs the batch. Throws std::runtime_error (index::StoreError included) for
// what stops the whole batch: an output folder that cannot be written, or
// that another batch is writing, or a records.jsonl that is not JSON lines.
// A file that cannot be read, ingested or extracted is a failed item with an
// error row, and the batch goes on.
BatchReport run_batch(Library& library, const JsonSchema& schema, const RecordExtractor& extract,
                      const BatchRequest& request, const BatchCallbacks& callbacks = {});

}  // namespace folio::app
