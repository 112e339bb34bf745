#include "index/packed_boxes.h"

#include <bit>
#include <cstdint>

#include "index/library_store.h"

namespace folio::index {
namespace {

enum WordFlag : std::uint8_t { Bold = 1, SpaceAfter = 2, LineEnd = 4 };

constexpr std::size_t kWordFixedBytes = 6 * 4 + 1;
constexpr std::size_t kPageBoxBytes = 5 * 4;

void put_u32(std::string& out, std::uint32_t value) {
    for (int shift = 0; shift < 32; shift += 8) out.push_back(static_cast<char>((value >> shift) & 0xff));
}

void put_f32(std::string& out, float value) { put_u32(out, std::bit_cast<std::uint32_t>(value)); }

void put_length(std::string& out, std::size_t length) {
    do {
        const auto low = static_cast<std::uint8_t>(length & 0x7f);
        length >>= 7;
        out.push_back(static_cast<char>(length ? low | 0x80 : low));
    } while (length);
}

class Reader {
public:
    Reader(std::span<const unsigned char> bytes, const char* what) : bytes_(bytes), what_(what) {}

    bool done() const { return offset_ == bytes_.size(); }

    std::uint8_t u8() {
        need(1);
        return bytes_[offset_++];
    }

    std::uint32_t u32() {
        need(4);
        std::uint32_t value = 0;
        for (int i = 0; i < 4; ++i) value |= std::uint32_t(bytes_[offset_++]) << (8 * i);
        return value;
    }

    float f32() { return std::bit_cast<float>(u32()); }

    std::size_t length() {
        std::size_t value = 0;
        for (int shift = 0; shift < 35; shift += 7) {
            const std::uint8_t byte = u8();
            value |= std::size_t(byte & 0x7f) << shift;
            if (!(byte & 0x80)) return value;
        }
        malformed();
    }

    std::string text(std::size_t length) {
        need(length);
        std::string value(reinterpret_cast<const char*>(bytes_.data() + offset_), length);
        offset_ += length;
        return value;
    }

private:
    void need(std::size_t count) const {
        if (bytes_.size() - offset_ < count) malformed();
    }

    [[noreturn]] void malformed() const {
        throw StoreError(std::string("stored ") + what_ + " are damaged (malformed " +
                         std::to_string(bytes_.size()) + "-byte blob)");
    }

    std::span<const unsigned char> bytes_;
    std::size_t offset_ = 0;
    const char* what_;
};

}  // namespace

std::string pack_words(const std::vector<ingest::Word>& words) {
    std::string out;
    std::size_t size = 0;
    for (const ingest::Word& word : words) size += kWordFixedBytes + 2 + word.text.size();
    out.reserve(size);
    for (const ingest::Word& word : words) {
        put_f32(out, word.box.x0);
        put_f32(out, word.box.y0);
        put_f32(out, word.box.x1);
        put_f32(out, word.box.y1);
        put_f32(out, word.confidence);
        put_f32(out, word.font_size);
        out.push_back(static_cast<char>((word.bold ? Bold : 0) | (word.space_after ? SpaceAfter : 0) |
                                        (word.line_end ? LineEnd : 0)));
        put_length(out, word.text.size());
        out += word.text;
    }
    return out;
}

std::vector<ingest::Word> unpack_words(std::span<const unsigned char> bytes) {
    std::vector<ingest::Word> words;
    Reader in(bytes, "word boxes");
    while (!in.done()) {
        ingest::Word& word = words.emplace_back();
        word.box.x0 = in.f32();
        word.box.y0 = in.f32();
        word.box.x1 = in.f32();
        word.box.y1 = in.f32();
        word.confidence = in.f32();
        word.font_size = in.f32();
        const std::uint8_t flags = in.u8();
        word.bold = flags & Bold;
        word.space_after = flags & SpaceAfter;
        word.line_end = flags & LineEnd;
        word.text = in.text(in.length());
    }
    return words;
}

std::string pack_page_boxes(const std::vector<ingest::PageBox>& boxes) {
    std::string out;
    out.reserve(boxes.size() * kPageBoxBytes);
    for (const ingest::PageBox& box : boxes) {
        put_u32(out, static_cast<std::uint32_t>(box.page));
        put_f32(out, box.box.x0);
        put_f32(out, box.box.y0);
        put_f32(out, box.box.x1);
        put_f32(out, box.box.y1);
    }
    return out;
}

std::vector<ingest::PageBox> unpack_page_boxes(std::span<const unsigned char> bytes) {
    std::vector<ingest::PageBox> boxes;
    boxes.reserve(bytes.size() / kPageBoxBytes);
    Reader in(bytes, "chunk boxes");
    while (!in.done()) {
        ingest::PageBox& box = boxes.emplace_back();
        box.page = static_cast<int>(in.u32());
        box.box.x0 = in.f32();
        box.box.y0 = in.f32();
        box.box.x1 = in.f32();
        box.box.y1 = in.f32();
    }
    return boxes;
}

}  // namespace folio::index
