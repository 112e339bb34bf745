#include "ingest/text_decoding.h"

#include <cstdio>

#include "ingest/error.h"
#include "ingest/utf8.h"

namespace folio::ingest {

namespace {

constexpr std::string_view kUtf8Bom = "\xEF\xBB\xBF";
constexpr std::string_view kUtf16LeBom = "\xFF\xFE";
constexpr std::string_view kUtf16BeBom = "\xFE\xFF";

// Windows-1252 0x80..0x9F (0 where the code page leaves a byte undefined);
// 0xA0..0xFF are the same as Latin-1 and Unicode.
constexpr char16_t kWindows1252High[32] = {
    0x20AC, 0,      0x201A, 0x0192, 0x201E, 0x2026, 0x2020, 0x2021, 0x02C6, 0x2030, 0x0160,
    0x2039, 0x0152, 0,      0x017D, 0,      0,      0x2018, 0x2019, 0x201C, 0x201D, 0x2022,
    0x2013, 0x2014, 0x02DC, 0x2122, 0x0161, 0x203A, 0x0153, 0,      0x017E, 0x0178};

// Control characters that do occur in real text files: tab, line feed,
// vertical tab, form feed (page break), carriage return, DOS end-of-file,
// escape (ANSI colour in logs).
bool is_text_control(char32_t c) { return (c >= 0x09 && c <= 0x0D) || c == 0x1A || c == 0x1B; }

bool is_binary_control(char32_t c) { return (c < 0x20 && !is_text_control(c)) || c == 0x7F; }

// Binary files are full of control characters; text has at most a stray one.
bool too_many_controls(size_t controls, size_t characters) { return controls > 0 && controls * 100 > characters; }

std::string hex_byte(unsigned char byte) {
    char buffer[8];
    std::snprintf(buffer, sizeof buffer, "0x%02X", byte);
    return buffer;
}

struct Utf8Check {
    bool valid = true;
    size_t invalid_offset = 0;
    size_t controls = 0, characters = 0;
};

Utf8Check check_utf8(std::string_view bytes, bool complete) {
    Utf8Check check;
    size_t pos = 0;
    while (pos < bytes.size()) {
        const size_t start = pos;
        const char32_t c = next_code_point(bytes, pos);
        if (c == kInvalidCodePoint) {
            // A multi-byte sequence cut off by the end of a file's head.
            if (!complete && bytes.size() - start < 4 && static_cast<unsigned char>(bytes[start]) >= 0xC0) break;
            check.valid = false;
            check.invalid_offset = start;
            return check;
        }
        ++check.characters;
        if (is_binary_control(c)) ++check.controls;
    }
    return check;
}

// Western text in Windows-1252 has its non-ASCII letters mostly one at a time
// between ASCII ones ("café", "naïve", with an occasional "é’"); multi-byte
// encodings and Cyrillic or Greek code pages put nearly all of them in runs.
bool looks_like_windows_1252(std::string_view bytes) {
    size_t non_ascii = 0, in_runs = 0, controls = 0;
    for (size_t i = 0; i < bytes.size(); ++i) {
        const auto byte = static_cast<unsigned char>(bytes[i]);
        if (byte >= 0x80 && byte <= 0x9F && kWindows1252High[byte - 0x80] == 0) return false;
        if (byte < 0x80) {
            if (is_binary_control(byte)) ++controls;
            continue;
        }
        ++non_ascii;
        const bool previous_high = i > 0 && static_cast<unsigned char>(bytes[i - 1]) >= 0x80;
        const bool next_high = i + 1 < bytes.size() && static_cast<unsigned char>(bytes[i + 1]) >= 0x80;
        if (previous_high || next_high) ++in_runs;
    }
    if (too_many_controls(controls, bytes.size())) return false;
    return non_ascii * 10 <= bytes.size() * 3 && in_runs * 2 <= non_ascii;
}

size_t line_of_offset(std::string_view bytes, size_t offset) {
    size_t line = 1;
    for (size_t i = 0; i < offset; ++i)
        if (bytes[i] == '\n') ++line;
    return line;
}

TextClassification not_text(std::string reason) { return {false, TextEncoding::Utf8, std::move(reason)}; }

TextClassification classify_utf16(std::string_view bytes, TextEncoding encoding, bool complete) {
    const bool little_endian = encoding == TextEncoding::Utf16Le;
    size_t controls = 0, characters = 0;
    for (size_t i = 2; i + 1 < bytes.size(); i += 2) {
        const auto low = static_cast<unsigned char>(bytes[little_endian ? i : i + 1]);
        const auto high = static_cast<unsigned char>(bytes[little_endian ? i + 1 : i]);
        const char32_t unit = static_cast<char32_t>(high << 8 | low);
        ++characters;
        if (unit == 0 || is_binary_control(unit)) ++controls;
    }
    if ((bytes.size() % 2 != 0 && complete) || too_many_controls(controls, characters))
        return not_text("binary content after a UTF-16 byte order mark");
    return {true, encoding, {}};
}

void append_utf16(std::string& out, std::string_view bytes, bool little_endian) {
    const auto unit_at = [&](size_t i) {
        const auto b0 = static_cast<unsigned char>(bytes[i]);
        const auto b1 = static_cast<unsigned char>(bytes[i + 1]);
        return static_cast<char32_t>(little_endian ? (b1 << 8 | b0) : (b0 << 8 | b1));
    };
    for (size_t i = 0; i + 1 < bytes.size(); i += 2) {
        char32_t unit = unit_at(i);
        if (unit >= 0xD800 && unit <= 0xDBFF && i + 3 < bytes.size()) {
            const char32_t low = unit_at(i + 2);
            if (low >= 0xDC00 && low <= 0xDFFF) {
                unit = 0x10000 + ((unit - 0xD800) << 10) + (low - 0xDC00);
                i += 2;
            }
        }
        // An unpaired surrogate cannot be written as UTF-8.
        if (unit >= 0xD800 && unit <= 0xDFFF) unit = 0xFFFD;
        append_utf8(out, unit);
    }
}

}  // namespace

TextClassification classify_text(std::string_view bytes, bool complete) {
    if (bytes.starts_with(kUtf16LeBom)) return classify_utf16(bytes, TextEncoding::Utf16Le, complete);
    if (bytes.starts_with(kUtf16BeBom)) return classify_utf16(bytes, TextEncoding::Utf16Be, complete);
    if (bytes.starts_with(kUtf8Bom)) bytes.remove_prefix(kUtf8Bom.size());
    if (bytes.find('\0') != std::string_view::npos) return not_text("binary content (NUL bytes)");

    const Utf8Check utf8 = check_utf8(bytes, complete);
    if (utf8.valid) {
        if (too_many_controls(utf8.controls, utf8.characters)) return not_text("binary content (control characters)");
        return {true, TextEncoding::Utf8, {}};
    }
    if (looks_like_windows_1252(bytes)) return {true, TextEncoding::Windows1252, {}};
    return not_text("not UTF-8 text: invalid byte " +
                    hex_byte(static_cast<unsigned char>(bytes[utf8.invalid_offset])) + " on line " +
                    std::to_string(line_of_offset(bytes, utf8.invalid_offset)) +
                    " (Folio reads UTF-8, UTF-16 with a byte order mark, and Windows-1252; convert the file to UTF-8)");
}

std::string decode_text(std::string_view bytes) {
    const TextClassification classification = classify_text(bytes, true);
    if (!classification.is_text) throw IngestError(classification.reason);
    std::string text;
    switch (classification.encoding) {
    case TextEncoding::Utf8:
        if (bytes.starts_with(kUtf8Bom)) bytes.remove_prefix(kUtf8Bom.size());
        return std::string(bytes);
    case TextEncoding::Utf16Le:
    case TextEncoding::Utf16Be:
        text.reserve(bytes.size());
        append_utf16(text, bytes.substr(2), classification.encoding == TextEncoding::Utf16Le);
        return text;
    case TextEncoding::Windows1252:
        text.reserve(bytes.size() + bytes.size() / 8);
        for (const char c : bytes) {
            const auto byte = static_cast<unsigned char>(c);
            append_utf8(text, byte >= 0x80 && byte <= 0x9F ? kWindows1252High[byte - 0x80] : byte);
        }
        return text;
    }
    return text;
}

}  // namespace folio::ingest
