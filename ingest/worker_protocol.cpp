#include "ingest/worker_protocol.h"

#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <system_error>
#include <type_traits>

namespace folio::ingest {
namespace {

// Appends one frame: reserves the size field, then patches it in finish().
class PayloadWriter {
public:
    PayloadWriter(std::string& out, MessageKind kind) : out_(out), frame_start_(out.size()) {
        out_.append(sizeof(std::uint32_t), '\0');
        put(kind);
    }

    template <class T>
        requires std::is_arithmetic_v<T> || std::is_enum_v<T>
    void put(T value) {
        char bytes[sizeof(T)];
        std::memcpy(bytes, &value, sizeof(T));
        out_.append(bytes, sizeof(T));
    }
    void put(bool value) { put<std::uint8_t>(value ? 1 : 0); }
    void put_string(std::string_view text) {
        put(static_cast<std::uint32_t>(text.size()));
        out_.append(text);
    }
    void put_count(std::size_t count) { put(static_cast<std::uint32_t>(count)); }

    void finish() {
        const std::size_t payload_size = out_.size() - frame_start_ - sizeof(std::uint32_t);
        if (payload_size > max_frame_size) {
            out_.resize(frame_start_);
            throw WorkerProtocolError("result too large to hand over (over 1 GiB)");
        }
        const auto size = static_cast<std::uint32_t>(payload_size);
        std::memcpy(out_.data() + frame_start_, &size, sizeof size);
    }

private:
    std::string& out_;
    std::size_t frame_start_;
};

class PayloadReader {
public:
    PayloadReader(std::string_view payload, MessageKind expected) : rest_(payload) {
        if (get<MessageKind>() != expected) throw WorkerProtocolError("unexpected worker message kind");
    }

    template <class T>
        requires std::is_arithmetic_v<T> || std::is_enum_v<T>
    T get() {
        if (rest_.size() < sizeof(T)) throw WorkerProtocolError("truncated worker message");
        T value;
        std::memcpy(&value, rest_.data(), sizeof(T));
        rest_.remove_prefix(sizeof(T));
        return value;
    }
    bool get_bool() { return get<std::uint8_t>() != 0; }
    template <class Enum>
    Enum get_enum(Enum last) {
        const auto raw = get<std::underlying_type_t<Enum>>();
        if (raw > static_cast<std::underlying_type_t<Enum>>(last))
            throw WorkerProtocolError("bad enum value in worker message");
        return static_cast<Enum>(raw);
    }
    std::string get_string() {
        const auto size = get<std::uint32_t>();
        if (size > rest_.size()) throw WorkerProtocolError("truncated worker message");
        std::string text(rest_.substr(0, size));
        rest_.remove_prefix(size);
        return text;
    }
    // A list count, checked against the bytes left so that a corrupt count
    // cannot make the caller reserve gigabytes.
    std::size_t get_count(std::size_t min_element_size) {
        const auto count = get<std::uint32_t>();
        if (count > rest_.size() / min_element_size) throw WorkerProtocolError("truncated worker message");
        return count;
    }
    void expect_end() const {
        if (!rest_.empty()) throw WorkerProtocolError("trailing bytes in worker message");
    }

private:
    std::string_view rest_;
};

void put_ocr_options(PayloadWriter& out, const OcrOptions& ocr) {
    out.put_string(ocr.languages);
    out.put(static_cast<std::int32_t>(ocr.dpi));
    out.put(static_cast<std::int64_t>(ocr.max_pixels));
    out.put(static_cast<std::int32_t>(ocr.page_timeout_seconds));
}

OcrOptions get_ocr_options(PayloadReader& in) {
    OcrOptions ocr;
    ocr.languages = in.get_string();
    ocr.dpi = in.get<std::int32_t>();
    ocr.max_pixels = in.get<std::int64_t>();
    ocr.page_timeout_seconds = in.get<std::int32_t>();
    return ocr;
}

enum WordFlag : std::uint8_t { Bold = 1, SpaceAfter = 2, LineEnd = 4 };

// Smallest encoded word: empty text (4) + six floats (24) + flags (1).
constexpr std::size_t min_word_size = 29;
// Smallest encoded page: the fixed fields and three empty lists/strings.
constexpr std::size_t min_page_size = 4 + 4 + 4 + 1 + 4 + 4 + 4 + 4 + 4 + 4;

void put_page(PayloadWriter& out, const Page& page) {
    out.put(static_cast<std::int32_t>(page.number));
    out.put(page.width);
    out.put(page.height);
    out.put(page.ocr);
    out.put(page.mean_confidence);
    out.put(static_cast<std::int32_t>(page.rotation));
    out.put(page.skew_degrees);
    out.put_string(page.text);
    out.put_string(page.error);
    out.put_count(page.words.size());
    for (const Word& word : page.words) {
        out.put_string(word.text);
        out.put(word.box.x0);
        out.put(word.box.y0);
        out.put(word.box.x1);
        out.put(word.box.y1);
        out.put(word.confidence);
        out.put(word.font_size);
        out.put(static_cast<std::uint8_t>((word.bold ? Bold : 0) | (word.space_after ? SpaceAfter : 0) |
                                          (word.line_end ? LineEnd : 0)));
    }
}

Page get_page(PayloadReader& in) {
    Page page;
    page.number = in.get<std::int32_t>();
    page.width = in.get<float>();
    page.height = in.get<float>();
    page.ocr = in.get_bool();
    page.mean_confidence = in.get<float>();
    page.rotation = in.get<std::int32_t>();
    page.skew_degrees = in.get<float>();
    page.text = in.get_string();
    page.error = in.get_string();
    page.words.resize(in.get_count(min_word_size));
    for (Word& word : page.words) {
        word.text = in.get_string();
        word.box.x0 = in.get<float>();
        word.box.y0 = in.get<float>();
        word.box.x1 = in.get<float>();
        word.box.y1 = in.get<float>();
        word.confidence = in.get<float>();
        word.font_size = in.get<float>();
        const auto flags = in.get<std::uint8_t>();
        word.bold = flags & Bold;
        word.space_after = flags & SpaceAfter;
        word.line_end = flags & LineEnd;
    }
    return page;
}

std::string file_name(const std::string& path) {
    const auto slash = path.find_last_of('/');
    return slash == std::string::npos ? path : path.substr(slash + 1);
}

}  // namespace

void append_hello_frame(std::string& out) {
    PayloadWriter writer(out, MessageKind::Hello);
    writer.put(worker_protocol_version);
    writer.finish();
}

void append_task_frame(std::string& out, const WorkerTask& task) {
    PayloadWriter writer(out, MessageKind::Task);
    writer.put(task.id);
    writer.put(task.kind);
    writer.put_string(task.path);
    writer.put(task.type);
    writer.put_string(task.password);
    writer.put(static_cast<std::int32_t>(task.first_page));
    writer.put(static_cast<std::int32_t>(task.last_page));
    writer.put(task.ocr_mode);
    put_ocr_options(writer, task.ocr);
    writer.finish();
}

void append_result_frame(std::string& out, const WorkerResult& result) {
    PayloadWriter writer(out, MessageKind::Result);
    writer.put(result.task_id);
    writer.put_string(result.error);
    writer.put(result.type);
    writer.put(static_cast<std::int32_t>(result.page_count));
    writer.put_count(result.pages.size());
    for (const Page& page : result.pages) put_page(writer, page);
    writer.put_count(result.needs_ocr.size());
    for (bool needs : result.needs_ocr) writer.put(needs);
    writer.finish();
}

MessageKind message_kind(std::string_view payload) {
    if (payload.empty()) throw WorkerProtocolError("empty worker message");
    const auto kind = static_cast<std::uint8_t>(payload[0]);
    if (kind < static_cast<std::uint8_t>(MessageKind::Hello) || kind > static_cast<std::uint8_t>(MessageKind::Result))
        throw WorkerProtocolError("unknown worker message kind");
    return static_cast<MessageKind>(kind);
}

std::uint32_t decode_hello(std::string_view payload) {
    PayloadReader in(payload, MessageKind::Hello);
    const auto version = in.get<std::uint32_t>();
    in.expect_end();
    return version;
}

WorkerTask decode_task(std::string_view payload) {
    PayloadReader in(payload, MessageKind::Task);
    WorkerTask task;
    task.id = in.get<std::uint64_t>();
    task.kind = in.get_enum(TaskKind::OcrImagePage);
    task.path = in.get_string();
    task.type = in.get_enum(FileType::Markdown);
    task.password = in.get_string();
    task.first_page = in.get<std::int32_t>();
    task.last_page = in.get<std::int32_t>();
    task.ocr_mode = in.get_enum(OcrMode::Never);
    task.ocr = get_ocr_options(in);
    in.expect_end();
    return task;
}

WorkerResult decode_result(std::string_view payload) {
    PayloadReader in(payload, MessageKind::Result);
    WorkerResult result;
    result.task_id = in.get<std::uint64_t>();
    result.error = in.get_string();
    result.type = in.get_enum(FileType::Markdown);
    result.page_count = in.get<std::int32_t>();
    result.pages.resize(in.get_count(min_page_size));
    for (Page& page : result.pages) page = get_page(in);
    result.needs_ocr.resize(in.get_count(1));
    for (std::size_t i = 0; i < result.needs_ocr.size(); ++i) result.needs_ocr[i] = in.get_bool();
    in.expect_end();
    return result;
}

std::string describe_task(const WorkerTask& task) {
    const std::string name = file_name(task.path);
    switch (task.kind) {
    case TaskKind::Probe: return "opening " + name;
    case TaskKind::TextLayer:
        if (task.first_page == task.last_page)
            return "reading the text of page " + std::to_string(task.first_page) + " of " + name;
        return "reading the text of pages " + std::to_string(task.first_page) + "-" +
               std::to_string(task.last_page) + " of " + name;
    case TaskKind::OcrPdfPage:
    case TaskKind::OcrImagePage:
        return "running OCR on page " + std::to_string(task.first_page) + " of " + name;
    }
    return "working on " + name;
}

void FrameReader::append(const char* data, std::size_t size) {
    // Drop consumed frames once they outweigh what is left, so a stream of
    // small frames neither grows the buffer nor copies it on every append.
    if (begin_ == buffer_.size()) {
        buffer_.clear();
        begin_ = 0;
    } else if (begin_ > 0 && begin_ >= buffer_.size() - begin_) {
        buffer_.erase(0, begin_);
        begin_ = 0;
    }
    buffer_.append(data, size);
}

std::optional<std::string_view> FrameReader::next_frame() {
    const std::size_t available = buffer_.size() - begin_;
    if (available < sizeof(std::uint32_t)) return std::nullopt;
    std::uint32_t payload_size;
    std::memcpy(&payload_size, buffer_.data() + begin_, sizeof payload_size);
    if (payload_size > max_frame_size) throw WorkerProtocolError("worker message too large");
    const std::size_t frame_size = sizeof(std::uint32_t) + payload_size;
    if (available < frame_size) {
        buffer_.reserve(begin_ + frame_size);  // one allocation for a large frame arriving in pieces
        return std::nullopt;
    }
    const std::string_view payload(buffer_.data() + begin_ + sizeof(std::uint32_t), payload_size);
    begin_ += frame_size;
    return payload;
}

std::optional<WorkerTask> WorkerChannel::read_task() {
    char chunk[64 * 1024];
    for (;;) {
        if (const auto payload = input_.next_frame()) return decode_task(*payload);
        const ssize_t got = read(input_fd_, chunk, sizeof chunk);
        if (got < 0 && errno == EINTR) continue;
        if (got < 0) throw std::system_error(errno, std::generic_category(), "reading tasks");
        if (got == 0) {
            if (input_.mid_frame()) throw WorkerProtocolError("input ended inside a task frame");
            return std::nullopt;
        }
        input_.append(chunk, static_cast<std::size_t>(got));
    }
}

void WorkerChannel::send_hello() {
    output_.clear();
    append_hello_frame(output_);
    send_frame();
}

void WorkerChannel::send_result(const WorkerResult& result) {
    output_.clear();
    append_result_frame(output_, result);
    send_frame();
}

void WorkerChannel::send_frame() {
    std::size_t sent = 0;
    while (sent < output_.size()) {
        const ssize_t written = write(output_fd_, output_.data() + sent, output_.size() - sent);
        if (written < 0 && errno == EINTR) continue;
        if (written < 0) throw std::system_error(errno, std::generic_category(), "sending a result");
        sent += static_cast<std::size_t>(written);
    }
}

}  // namespace folio::ingest
