#pragma once
// Reading raw bytes of input files with errors a user can act on. Private to
// ingest/.

#include <cstddef>
#include <string>

namespace folio::ingest {

// Throws IngestError unless `path` is a regular file this process can read.
void check_readable_file(const std::string& path);
// Up to max_bytes from the start of the file. Throws IngestError
// ("cannot read PATH: Permission denied", "PATH is a directory").
std::string read_file_head(const std::string& path, size_t max_bytes);
// Up to max_bytes from the end of the file.
std::string read_file_tail(const std::string& path, size_t max_bytes);
std::string read_whole_file(const std::string& path);

}  // namespace folio::ingest
