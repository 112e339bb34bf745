#include "domain_packs/pack_file.h"

#include <fcntl.h>
#include <unistd.h>

#include <archive.h>
#include <archive_entry.h>

#include <array>
#include <cstring>
#include <fstream>
#include <map>
#include <memory>
#include <set>

#include "domain_packs/pack_signature.h"
#include "domain_packs/sodium.h"

namespace folio::packs {

namespace {

constexpr std::size_t kHeaderBytes = kPackFileMagic.size() + 4 + 4;
constexpr std::size_t kChunkBytes = 1 << 16;

std::uint32_t read_u32_le(const unsigned char* bytes) {
    return std::uint32_t{bytes[0]} | std::uint32_t{bytes[1]} << 8 | std::uint32_t{bytes[2]} << 16 |
           std::uint32_t{bytes[3]} << 24;
}

void append_u32_le(std::string& out, std::uint32_t value) {
    for (int shift = 0; shift < 32; shift += 8) out += static_cast<char>((value >> shift) & 0xff);
}

std::ifstream open_for_reading(const std::filesystem::path& path) {
    std::ifstream in(path, std::ios::binary);
    if (!in) throw PackError("pack file", "cannot open " + path.string());
    return in;
}

// An archive entry's name for messages: printable ASCII, cut short.
std::string shown_entry_name(const char* name) {
    if (name == nullptr) return "(an entry without a name)";
    std::string shown = "\"";
    for (std::size_t i = 0; name[i] != '\0' && i < 80; ++i) {
        const auto byte = static_cast<unsigned char>(name[i]);
        shown += byte >= 0x20 && byte < 0x7f ? static_cast<char>(byte) : '?';
    }
    return shown + "\"";
}

// Feeds libarchive exactly the archive's bytes of the pack file, never what
// lies before or after them.
struct ArchiveSource {
    std::ifstream in;
    std::uint64_t remaining = 0;
    std::array<char, kChunkBytes> buffer{};

    static la_ssize_t read(struct archive*, void* self, const void** data) {
        auto& source = *static_cast<ArchiveSource*>(self);
        const std::size_t wanted =
            static_cast<std::size_t>(std::min<std::uint64_t>(source.remaining, source.buffer.size()));
        source.in.read(source.buffer.data(), static_cast<std::streamsize>(wanted));
        const auto got = static_cast<std::size_t>(source.in.gcount());
        source.remaining -= got;
        *data = source.buffer.data();
        return static_cast<la_ssize_t>(got);
    }
};

struct ArchiveReadDeleter {
    void operator()(struct archive* a) const { archive_read_free(a); }
};
struct ArchiveWriteDeleter {
    void operator()(struct archive* a) const { archive_write_free(a); }
};
struct EntryDeleter {
    void operator()(archive_entry* e) const { archive_entry_free(e); }
};

// libarchive's message for its last failure; it has none for some
// (a tar cut short inside a pax header), and a null must not reach a string.
std::string archive_error(struct archive* a) {
    const char* message = archive_error_string(a);
    return message ? message : "libarchive gives no reason";
}

// What an entry is, when it is anything but a regular file.
const char* irregular_kind(archive_entry* entry) {
    if (archive_entry_hardlink(entry) != nullptr) return "a hard link";
    switch (archive_entry_filetype(entry)) {
        case AE_IFREG: return nullptr;
        case AE_IFLNK: return "a symbolic link";
        case AE_IFDIR: return "a directory entry";
        case AE_IFCHR: return "a character device";
        case AE_IFBLK: return "a block device";
        case AE_IFIFO: return "a FIFO";
        case AE_IFSOCK: return "a socket";
        default: return "not a regular file";
    }
}

class FileDescriptor {
public:
    explicit FileDescriptor(int fd) : fd_(fd) {}
    ~FileDescriptor() {
        if (fd_ >= 0) ::close(fd_);
    }
    FileDescriptor(const FileDescriptor&) = delete;
    FileDescriptor& operator=(const FileDescriptor&) = delete;
    int get() const { return fd_; }
    int release_and_close() {
        const int status = ::close(fd_);
        fd_ = -1;
        return status;
    }

private:
    int fd_;
};

void write_all(int fd, const char* data, std::size_t size, const std::string& field) {
    while (size > 0) {
        const ssize_t written = ::write(fd, data, size);
        if (written < 0) {
            if (errno == EINTR) continue;
            throw PackError(field, std::string("cannot be written: ") + std::strerror(errno));
        }
        data += written;
        size -= static_cast<std::size_t>(written);
    }
}

// Streams one entry's data into staging/path, hashing it and stopping as
// soon as it passes the listed size (a compression bomb stops there).
void extract_entry(struct archive* reader, const PackFile& listed, const std::filesystem::path& staging_directory) {
    const std::string field = "archive entry \"" + listed.path + "\"";
    const std::filesystem::path target = staging_directory / listed.path;
    std::filesystem::create_directories(target.parent_path());
    // O_EXCL and O_NOFOLLOW: staging is the installer's own fresh folder, so
    // a file already there, or a link, means something else is at work.
    FileDescriptor out(::open(target.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0644));
    if (out.get() < 0) throw PackError(field, std::string("cannot be created in staging: ") + std::strerror(errno));

    Sha256 hash;
    std::uint64_t total = 0;
    std::array<char, kChunkBytes> buffer{};
    while (true) {
        const la_ssize_t got = archive_read_data(reader, buffer.data(), buffer.size());
        if (got < 0) throw PackError(field, "cannot be read: " + archive_error(reader));
        if (got == 0) break;
        total += static_cast<std::uint64_t>(got);
        if (total > listed.size)
            throw PackError(field, "holds more than the " + std::to_string(listed.size) +
                                       " bytes the manifest lists (refused before unpacking the rest)");
        hash.update(buffer.data(), static_cast<std::size_t>(got));
        write_all(out.get(), buffer.data(), static_cast<std::size_t>(got), field);
    }
    if (total != listed.size)
        throw PackError(field, "holds " + std::to_string(total) + " bytes, not the " + std::to_string(listed.size) +
                                   " the manifest lists");
    if (hash.hex() != listed.sha256) throw PackError(field, "does not match its SHA-256 in the manifest");
    if (::fsync(out.get()) != 0 || out.release_and_close() != 0)
        throw PackError(field, std::string("cannot be written: ") + std::strerror(errno));
}

}  // namespace

PackEnvelope read_pack_envelope(const std::filesystem::path& pack_file) {
    std::ifstream in = open_for_reading(pack_file);
    std::array<unsigned char, kHeaderBytes> header{};
    in.read(reinterpret_cast<char*>(header.data()), header.size());
    if (static_cast<std::size_t>(in.gcount()) != header.size() ||
        std::memcmp(header.data(), kPackFileMagic.data(), kPackFileMagic.size()) != 0)
        throw PackError("pack file", pack_file.string() + " is not a Folio pack (no FOLIOPAK header)");

    PackEnvelope envelope;
    envelope.container_version = read_u32_le(header.data() + kPackFileMagic.size());
    if (envelope.container_version == 0 || envelope.container_version > kPackContainerVersion)
        throw PackError("pack file", "container version " + std::to_string(envelope.container_version) +
                                         " is not one this Folio reads (it reads " +
                                         std::to_string(kPackContainerVersion) + "); a newer Folio may");
    const std::uint32_t manifest_length = read_u32_le(header.data() + kPackFileMagic.size() + 4);
    if (manifest_length == 0 || manifest_length > kMaxManifestBytes)
        throw PackError("pack file", "manifest length " + std::to_string(manifest_length) + " is not 1 to " +
                                         std::to_string(kMaxManifestBytes) + " bytes");

    const std::uint64_t file_size = std::filesystem::file_size(pack_file);
    envelope.archive_offset = kHeaderBytes + std::uint64_t{manifest_length} + kEncodedSignatureBytes;
    if (file_size < envelope.archive_offset)
        throw PackError("pack file", "is truncated: " + std::to_string(file_size) + " bytes, the header promises " +
                                         std::to_string(envelope.archive_offset) + " before the archive");
    envelope.archive_size = file_size - envelope.archive_offset;

    envelope.manifest_bytes.resize(manifest_length);
    envelope.signature.resize(kEncodedSignatureBytes);
    in.read(envelope.manifest_bytes.data(), manifest_length);
    in.read(envelope.signature.data(), static_cast<std::streamsize>(kEncodedSignatureBytes));
    if (!in) throw PackError("pack file", "could not be read: " + pack_file.string());
    return envelope;
}

void check_pack_archive(const std::filesystem::path& pack_file, const PackEnvelope& envelope,
                        const PackManifest& manifest) {
    if (envelope.archive_size != manifest.archive.size)
        throw PackError("archive", "is " + std::to_string(envelope.archive_size) + " bytes, the manifest says " +
                                       std::to_string(manifest.archive.size));
    if (sha256_of_file(pack_file, envelope.archive_offset, envelope.archive_size) != manifest.archive.sha256)
        throw PackError("archive", "does not match its SHA-256 in the signed manifest: the pack was changed");
}

void extract_pack_archive(const std::filesystem::path& pack_file, const PackEnvelope& envelope,
                          const PackManifest& manifest, const std::filesystem::path& staging_directory) {
    std::map<std::string, const PackFile*, std::less<>> listed;
    for (const PackFile& file : manifest.files) listed.emplace(file.path, &file);
    std::set<std::string, std::less<>> extracted;

    auto source = std::make_unique<ArchiveSource>();
    source->in = open_for_reading(pack_file);
    source->in.seekg(static_cast<std::streamoff>(envelope.archive_offset));
    source->remaining = envelope.archive_size;

    std::unique_ptr<struct archive, ArchiveReadDeleter> reader(archive_read_new());
    archive_read_support_filter_zstd(reader.get());
    archive_read_support_format_tar(reader.get());
    if (archive_read_open(reader.get(), source.get(), nullptr, &ArchiveSource::read, nullptr) != ARCHIVE_OK)
        throw PackError("archive", "is not a zstd-compressed tar: " + archive_error(reader.get()));

    while (true) {
        archive_entry* entry = nullptr;
        const int status = archive_read_next_header(reader.get(), &entry);
        if (status == ARCHIVE_EOF) break;
        if (status != ARCHIVE_OK)
            throw PackError("archive", "is damaged: " + archive_error(reader.get()));
        const char* name = archive_entry_pathname(entry);
        const std::string shown = shown_entry_name(name);
        if (const char* kind = irregular_kind(entry))
            throw PackError("archive entry " + shown, std::string("is ") + kind + "; a pack holds only regular files");
        const auto file = name ? listed.find(std::string_view(name)) : listed.end();
        if (file == listed.end()) {
            const std::string_view path = name ? name : "";
            const bool escapes = path.starts_with('/') || path == ".." || path.starts_with("../") ||
                                 path.find("/../") != std::string_view::npos || path.ends_with("/..");
            throw PackError("archive entry " + shown,
                            escapes ? "points outside the pack's folder" : "is not listed in the manifest");
        }
        if (!extracted.insert(file->first).second)
            throw PackError("archive entry " + shown, "comes twice in the archive");
        if (archive_entry_size_is_set(entry) &&
            static_cast<std::uint64_t>(archive_entry_size(entry)) != file->second->size)
            throw PackError("archive entry " + shown, "declares " + std::to_string(archive_entry_size(entry)) +
                                                          " bytes, not the " + std::to_string(file->second->size) +
                                                          " the manifest lists");
        extract_entry(reader.get(), *file->second, staging_directory);
    }
    for (const auto& [path, file] : listed)
        if (!extracted.count(path))
            throw PackError("archive", "lacks \"" + path + "\", which the manifest lists");
}

PackArchive write_pack_archive(const std::filesystem::path& source_directory, const std::vector<std::string>& paths,
                               const std::filesystem::path& archive_file) {
    std::unique_ptr<struct archive, ArchiveWriteDeleter> writer(archive_write_new());
    if (archive_write_add_filter_zstd(writer.get()) != ARCHIVE_OK ||
        archive_write_set_format_pax_restricted(writer.get()) != ARCHIVE_OK ||
        archive_write_open_filename(writer.get(), archive_file.c_str()) != ARCHIVE_OK)
        throw PackError("archive", "cannot be written: " + archive_error(writer.get()));

    std::array<char, kChunkBytes> buffer{};
    for (const std::string& path : paths) {
        const std::filesystem::path source = source_directory / path;
        std::ifstream in(source, std::ios::binary);
        if (!in) throw PackError(path, "cannot be read from " + source.string());
        // Owner, group and times are left out, so the same files make the same pack.
        std::unique_ptr<archive_entry, EntryDeleter> entry(archive_entry_new());
        archive_entry_set_pathname(entry.get(), path.c_str());
        archive_entry_set_filetype(entry.get(), AE_IFREG);
        archive_entry_set_perm(entry.get(), 0644);
        archive_entry_set_size(entry.get(), static_cast<la_int64_t>(std::filesystem::file_size(source)));
        if (archive_write_header(writer.get(), entry.get()) != ARCHIVE_OK)
            throw PackError(path, "cannot be archived: " + archive_error(writer.get()));
        while (in) {
            in.read(buffer.data(), static_cast<std::streamsize>(buffer.size()));
            const auto got = static_cast<std::size_t>(in.gcount());
            if (got > 0 && archive_write_data(writer.get(), buffer.data(), got) != static_cast<la_ssize_t>(got))
                throw PackError(path, "cannot be archived: " + archive_error(writer.get()));
        }
        if (in.bad()) throw PackError(path, "could not be read to the end");
    }
    if (archive_write_close(writer.get()) != ARCHIVE_OK)
        throw PackError("archive", "cannot be written: " + archive_error(writer.get()));
    return {std::filesystem::file_size(archive_file), sha256_of_file(archive_file)};
}

void write_pack_file(const std::filesystem::path& pack_file, std::string_view manifest_bytes,
                     std::string_view encoded_signature, const std::filesystem::path& archive_file) {
    if (manifest_bytes.empty() || manifest_bytes.size() > kMaxManifestBytes)
        throw PackError("manifest", "is " + std::to_string(manifest_bytes.size()) + " bytes, not 1 to " +
                                        std::to_string(kMaxManifestBytes));
    if (encoded_signature.size() != kEncodedSignatureBytes)
        throw PackError("signature", "is " + std::to_string(encoded_signature.size()) + " bytes, not " +
                                         std::to_string(kEncodedSignatureBytes));
    std::string header(kPackFileMagic);
    append_u32_le(header, kPackContainerVersion);
    append_u32_le(header, static_cast<std::uint32_t>(manifest_bytes.size()));

    std::ofstream out(pack_file, std::ios::binary | std::ios::trunc);
    std::ifstream archive = open_for_reading(archive_file);
    out << header << manifest_bytes << encoded_signature << archive.rdbuf();
    out.flush();
    if (!out) throw PackError("pack file", "cannot be written: " + pack_file.string());
}

}  // namespace folio::packs
