#pragma once
// The record files of a batch (app/batch.h), in its output folder:
//
//   records.jsonl  one record per line (record_json), appended and flushed
//                  to disk as each record finishes;
//   records.csv    one row per record (RFC 4180, CRLF): the record's
//                  path, doc_id, sha256, grounded, ungrounded, seconds,
//                  error and validation (the validators' findings,
//                  "severity pointer: message" joined with "; "), then one
//                  column per leaf of the schema, named by
//                  its JSON pointer (JsonSchema::fields(), "*" for every
//                  array index); the values under a "*" are joined with "; ".
//
// The JSON lines are the source of truth: the CSV is made from them, row by
// row as records are appended, and whole again by RecordFiles::rewrite, so
// the two never disagree after a crash.
//
// Thread rules: a RecordFiles is used from one thread at a time, and one
// process writes a folder at a time (the batch holds a lock on it).

#include <cstdio>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "app/extract.h"
#include "app/json_schema.h"

namespace folio::app {

// A record as its JSON line: doc_id, path, data, values[] (pointer, value,
// normalized, grounded, page, begin, end, quote), grounded, ungrounded,
// validation[] (pointer, severity, message), seconds, error. A file that gave no record is a record with only path and
// error set.
nlohmann::json record_json(const ExtractionRecord& record);

// One CSV field, quoted when it holds a comma, a quote or a line break.
std::string csv_field(std::string_view text);
// The header and a row (each ending in CRLF) of a record's JSON line.
std::string csv_header(const JsonSchema& schema);
std::string csv_row(const JsonSchema& schema, const nlohmann::json& line);

class RecordFiles {
public:
    // Opens <directory>/records.jsonl and records.csv for appending,
    // creating the folder. A last line cut short by a crash is dropped.
    // Throws std::runtime_error naming the file that cannot be read or written.
    RecordFiles(const std::string& directory, const JsonSchema& schema);
    ~RecordFiles();
    RecordFiles(const RecordFiles&) = delete;
    RecordFiles& operator=(const RecordFiles&) = delete;

    // The lines already in records.jsonl, in order.
    const std::vector<nlohmann::json>& lines() const { return lines_; }

    // Replaces both files with these lines (each atomically: a crash leaves
    // the old file or the new one).
    void rewrite(std::vector<nlohmann::json> lines);
    // Appends a line to both files and waits until it is on disk.
    void append(const nlohmann::json& line);

    std::string jsonl_path() const;
    std::string csv_path() const;

private:
    void open_for_append();
    void close();

    std::string directory_;
    const JsonSchema& schema_;
    std::vector<nlohmann::json> lines_;
    std::FILE* jsonl_ = nullptr;
    std::FILE* csv_ = nullptr;
};

}  // namespace folio::app
