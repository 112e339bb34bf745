#include "ingest/file_bytes.h"

#include <sys/stat.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <memory>

#include "ingest/error.h"

namespace folio::ingest {

namespace {

struct FileCloser {
    void operator()(std::FILE* file) const { std::fclose(file); }
};
using FileHandle = std::unique_ptr<std::FILE, FileCloser>;

[[noreturn]] void throw_read_error(const std::string& path, int error_number) {
    throw IngestError("cannot read " + path + ": " + std::strerror(error_number));
}

// Opens a regular file for reading and returns it with its size.
std::pair<FileHandle, size_t> open_regular_file(const std::string& path) {
    struct stat info {};
    if (::stat(path.c_str(), &info) != 0) throw_read_error(path, errno);
    if (S_ISDIR(info.st_mode)) throw IngestError(path + " is a directory");
    FileHandle file(std::fopen(path.c_str(), "rb"));
    if (!file) throw_read_error(path, errno);
    return {std::move(file), static_cast<size_t>(info.st_size)};
}

std::string read_range(const std::string& path, std::FILE* file, size_t offset, size_t length) {
    std::string bytes(length, '\0');
    if (std::fseek(file, static_cast<long>(offset), SEEK_SET) != 0) throw_read_error(path, errno);
    const size_t read = std::fread(bytes.data(), 1, length, file);
    if (read < length && std::ferror(file)) throw_read_error(path, errno);
    bytes.resize(read);
    return bytes;
}

}  // namespace

void check_readable_file(const std::string& path) { open_regular_file(path); }

std::string read_file_head(const std::string& path, size_t max_bytes) {
    auto [file, size] = open_regular_file(path);
    return read_range(path, file.get(), 0, std::min(size, max_bytes));
}

std::string read_file_tail(const std::string& path, size_t max_bytes) {
    auto [file, size] = open_regular_file(path);
    const size_t length = std::min(size, max_bytes);
    return read_range(path, file.get(), size - length, length);
}

std::string read_whole_file(const std::string& path) {
    auto [file, size] = open_regular_file(path);
    return read_range(path, file.get(), 0, size);
}

}  // namespace folio::ingest
