#pragma once
// The application's library: the store on disk plus the ingest use case.
// The CLI and the GUI both drive Folio through this class.
//
// Thread rules: a Library is used from one thread at a time; ingest() blocks
// that thread and calls its callbacks on it. Cancel from any thread through
// IngestRequest::cancel.

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>
#include "index/library_store.h"
#include "ingest/pipeline.h"

namespace folio::app {

struct IngestRequest {
    std::vector<std::string> paths;   // files and folders (walked recursively)
    ingest::PipelineOptions pipeline;
    const std::atomic<bool>* cancel = nullptr;
};

enum class IngestOutcome { Added, Replaced, Unchanged, Failed, Skipped };
const char* outcome_name(IngestOutcome outcome);

struct IngestedFile {
    std::string path;
    IngestOutcome outcome = IngestOutcome::Added;
    std::int64_t doc_id = 0;          // 0 when nothing was stored
    int pages = 0, ocr_pages = 0, chunks = 0;
    std::string error;                // one line: why it failed or was skipped
};

struct IngestReport {
    std::vector<IngestedFile> files;
    int pages = 0, ocr_pages = 0, chunks = 0;
    double seconds = 0;
    bool cancelled = false;
    int count(IngestOutcome outcome) const;
    int files_with_errors() const;    // failed, or stored with failed pages
    bool ok() const;                  // not cancelled and files_with_errors() == 0
};

struct IngestCallbacks {
    std::function<void(const ingest::PipelineProgress&)> progress;
    std::function<void(const IngestedFile&)> file_done;
};

class Library {
public:
    // Opens (creating) the library at `directory`. Throws index::StoreError.
    explicit Library(const std::string& directory);
    ~Library();

    // The default location: $FOLIO_LIBRARY, else the user's data folder.
    static std::string default_directory();

    IngestReport ingest(const IngestRequest& request, const IngestCallbacks& callbacks = {});

    index::LibraryStore& store() { return *store_; }
    const std::string& directory() const { return directory_; }

private:
    std::string directory_;
    std::unique_ptr<index::LibraryStore> store_;
};

// The regular files under `paths`, expanded and de-duplicated, in a stable
// order. Folders are walked recursively, skipping hidden entries and the
// folder `excluded` (the library's own files, when it sits inside an ingested
// folder); a path that does not exist is kept so that it fails with its own
// reason.
std::vector<std::string> expand_input_paths(const std::vector<std::string>& paths,
                                            const std::string& excluded = {});

// Hex SHA-256 of a file's content; throws std::runtime_error when unreadable.
std::string file_sha256(const std::string& path);

}  // namespace folio::app
