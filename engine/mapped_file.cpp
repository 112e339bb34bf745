#include "engine/mapped_file.h"

#include <algorithm>
#include <cerrno>
#include <system_error>
#include <utility>

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

namespace folio::engine {
namespace {

[[noreturn]] void throw_errno(const char* what, const std::filesystem::path& path) {
    throw std::system_error(errno, std::generic_category(),
                            std::string(what) + " " + path.string());
}

}  // namespace

MappedFile::MappedFile(const std::filesystem::path& path) {
    const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        throw_errno("cannot open", path);
    struct stat status {};
    if (::fstat(fd, &status) != 0) {
        const int saved = errno;
        ::close(fd);
        errno = saved;
        throw_errno("cannot stat", path);
    }
    if (!S_ISREG(status.st_mode)) {
        ::close(fd);
        throw std::system_error(std::make_error_code(std::errc::invalid_argument),
                                "not a regular file: " + path.string());
    }
    size_ = static_cast<std::size_t>(status.st_size);
    if (size_ > 0) {
        void* mapping = ::mmap(nullptr, size_, PROT_READ, MAP_PRIVATE, fd, 0);
        if (mapping == MAP_FAILED) {
            const int saved = errno;
            ::close(fd);
            errno = saved;
            throw_errno("cannot map", path);
        }
        data_ = static_cast<const std::uint8_t*>(mapping);
    }
    // The mapping keeps the file alive; the descriptor is no longer needed.
    ::close(fd);
}

void MappedFile::release(std::span<const std::uint8_t> range) const {
    const auto page = static_cast<std::uintptr_t>(::sysconf(_SC_PAGESIZE));
    const auto begin = std::max(reinterpret_cast<std::uintptr_t>(range.data()), reinterpret_cast<std::uintptr_t>(data_));
    const auto end = std::min(reinterpret_cast<std::uintptr_t>(range.data() + range.size()),
                              reinterpret_cast<std::uintptr_t>(data_ + size_));
    const std::uintptr_t first = (begin + page - 1) / page * page;
    const std::uintptr_t last = end / page * page;
    // A private read-only mapping has no copies of its own to lose: the
    // pages come back from the file as they were.
    if (data_ != nullptr && first < last)
        ::madvise(reinterpret_cast<void*>(first), last - first, MADV_DONTNEED);
}

MappedFile::~MappedFile() {
    if (data_ != nullptr)
        ::munmap(const_cast<std::uint8_t*>(data_), size_);
}

MappedFile::MappedFile(MappedFile&& other) noexcept
    : data_(std::exchange(other.data_, nullptr)), size_(std::exchange(other.size_, 0)) {}

MappedFile& MappedFile::operator=(MappedFile&& other) noexcept {
    if (this != &other) {
        if (data_ != nullptr)
            ::munmap(const_cast<std::uint8_t*>(data_), size_);
        data_ = std::exchange(other.data_, nullptr);
        size_ = std::exchange(other.size_, 0);
    }
    return *this;
}

}  // namespace folio::engine
