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

private:
    const std::uint8_t* data_ = nullptr;  // null for an empty file
    std::size_t size_ = 0;
};

}  // namespace folio::engine
