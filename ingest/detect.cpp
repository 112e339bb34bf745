#include "ingest/detect.h"

#include <algorithm>
#include <array>
#include <cctype>
#include <filesystem>
#include <string_view>

#include "ingest/error.h"
#include "ingest/file_bytes.h"
#include "ingest/text_decoding.h"

namespace folio::ingest {

namespace {

// Enough for every signature and for a fair sample of a text file.
constexpr size_t kHeadBytes = 64 * 1024;

bool starts_with_any(std::string_view head, std::initializer_list<std::string_view> signatures) {
    return std::any_of(signatures.begin(), signatures.end(),
                       [&](std::string_view signature) { return head.starts_with(signature); });
}

// Readers accept the "%PDF-1.x" header anywhere in the first 1024 bytes: some
// producers write a preamble before it.
bool has_pdf_header(std::string_view head) {
    head = head.substr(0, 1024);
    for (size_t at = head.find("%PDF-"); at != std::string_view::npos; at = head.find("%PDF-", at + 1))
        if (at + 5 < head.size() && std::isdigit(static_cast<unsigned char>(head[at + 5]))) return true;
    return false;
}

bool has_markdown_extension(const std::string& path) {
    std::string extension = std::filesystem::path(path).extension().string();
    std::transform(extension.begin(), extension.end(), extension.begin(),
                   [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
    constexpr std::array<std::string_view, 5> kMarkdown = {".md", ".markdown", ".mdown", ".mkd", ".mkdn"};
    return std::find(kMarkdown.begin(), kMarkdown.end(), extension) != kMarkdown.end();
}

}  // namespace

FileType detect_file_type(const std::string& path) {
    const std::string head = read_file_head(path, kHeadBytes);
    if (head.empty()) throw IngestError("empty file");

    if (has_pdf_header(head)) return FileType::Pdf;
    if (head.starts_with("\x89PNG\r\n\x1A\n")) return FileType::Png;
    if (head.starts_with("\xFF\xD8\xFF")) return FileType::Jpeg;
    using namespace std::string_view_literals;
    // Classic and BigTIFF, little- and big-endian.
    if (starts_with_any(head, {"II*\0"sv, "MM\0*"sv, "II+\0"sv, "MM\0+"sv})) return FileType::Tiff;

    const bool complete = head.size() < kHeadBytes;
    if (classify_text(head, complete).is_text)
        return has_markdown_extension(path) ? FileType::Markdown : FileType::Text;
    return FileType::Unknown;
}

}  // namespace folio::ingest
