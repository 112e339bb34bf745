#pragma once
#include <cstdint>
#include <filesystem>
#include <span>

namespace folio::engine {

// A whole file mapped read-only (PROT_READ, MAP_PRIVATE). The size is taken
// from fstat once, at open; a file truncated by someone else afterwards makes
// reads past its new end fault (SIGBUS), which a mapping cannot prevent.
// Throws std::system_error when the file cannot be opened, sized or mapped.
class MappedFile {
public:
    explicit MappedFile(const std::filesystem::path& path);
    ~MappedFile();
    MappedFile(MappedFile&& other) noexcept;
    MappedFile& operator=(MappedFile&& other) noexcept;
    MappedFile(const MappedFile&) = delete;
    MappedFile& operator=(const MappedFile&) = delete;

    std::span<const std::uint8_t> bytes() const { return {data_, size_}; }

    // Lets go of this process's copies of the pages wholly inside `range`
    // (part of bytes(); nothing outside it is touched): a later read faults
    // them in again from the file. For bytes the process has copied
    // elsewhere, so that its memory holds them once.
    void release(std::span<const std::uint8_t> range) const;

private:
    const std::uint8_t* data_ = nullptr;  // null for an empty file
    std::size_t size_ = 0;
};

}  // namespace folio::engine
