#pragma once
// Messages between the ingest parent (WorkerPool) and folio-ingest-worker.
//
// Wire format: length-prefixed binary frames on the worker's stdin (tasks) and
// stdout (a hello, then one result per task, in task order):
//   frame   = payload_size:u32  payload
//   payload = kind:u8  fields...
// Numbers are fixed width in native byte order (both ends are one build on one
// machine); a string is u32 byte count + bytes, a list u32 count + elements.
// The worker's first frame is a hello carrying worker_protocol_version.
//
// Why binary frames and not JSON lines: a text-layer page of ~1000 words
// carries ~7000 numbers; JSON would print and re-parse every float (slower than
// Poppler reading the page, and inexact), and nlohmann-json refuses the invalid
// UTF-8 a broken text layer can hold. Frames decode at memcpy speed, carry any
// bytes, and a torn frame from a dying worker is recognisable as incomplete.

#include <cstddef>
#include <cstdint>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>
#include "ingest/page.h"

namespace folio::ingest {

inline constexpr std::uint32_t worker_protocol_version = 1;

// A frame larger than this is treated as a corrupt stream (a page of a few
// million words still fits).
inline constexpr std::uint32_t max_frame_size = 1u << 30;

enum class MessageKind : std::uint8_t { Hello = 1, Task = 2, Result = 3 };

enum class TaskKind : std::uint8_t {
    Probe,         // detect the type; PDF: page count; image: frame count; text: all its pages
    TextLayer,     // PDF pages first_page..last_page from the text layer, each with needs_ocr
    OcrPdfPage,    // render and OCR PDF page first_page
    OcrImagePage,  // OCR frame first_page of an image file
};

struct WorkerTask {
    std::uint64_t id = 0;                // assigned by WorkerPool::submit
    TaskKind kind = TaskKind::Probe;
    std::string path;
    FileType type = FileType::Unknown;   // from the probe; unused by the probe itself
    std::string password;                // PDFs
    int first_page = 0, last_page = 0;   // 1-based, inclusive
    OcrMode ocr_mode = OcrMode::Auto;    // TextLayer: decides needs_ocr
    OcrOptions ocr;
};

struct WorkerResult {
    std::uint64_t task_id = 0;
    std::string error;                   // non-empty: the task failed (one line)
    bool worker_lost = false;            // the worker crashed or was killed: the task did not finish
    FileType type = FileType::Unknown;   // Probe
    int page_count = 0;                  // Probe: pages of a PDF, frames of an image
    std::vector<Page> pages;             // Probe of a text file, TextLayer, OCR (one page)
    std::vector<bool> needs_ocr;         // TextLayer: one per page
};

class WorkerProtocolError : public std::runtime_error {
public:
    using std::runtime_error::runtime_error;
};

// Each appends one whole frame to `out`.
void append_hello_frame(std::string& out);
void append_task_frame(std::string& out, const WorkerTask& task);
void append_result_frame(std::string& out, const WorkerResult& result);

// The decoders take a frame's payload; they throw WorkerProtocolError on a
// payload that is truncated, too long or of another kind.
MessageKind message_kind(std::string_view payload);
std::uint32_t decode_hello(std::string_view payload);
WorkerTask decode_task(std::string_view payload);
WorkerResult decode_result(std::string_view payload);

// What a task was doing, for error messages: "reading the text of pages 1-16
// of report.pdf", "running OCR on page 3 of scan.tiff".
std::string describe_task(const WorkerTask& task);

// Cuts a byte stream into frames as it arrives.
class FrameReader {
public:
    void append(const char* data, std::size_t size);
    // The next complete frame's payload, valid until the next call of any
    // member; nullopt until one has fully arrived. Throws WorkerProtocolError
    // on a frame size over max_frame_size.
    std::optional<std::string_view> next_frame();
    // True while part of a frame is buffered.
    bool mid_frame() const { return begin_ != buffer_.size(); }

private:
    std::string buffer_;
    std::size_t begin_ = 0;  // start of the first unconsumed byte in buffer_
};

// The worker's end: blocking reads of task frames and writes of hello and
// result frames on two file descriptors (stdin and stdout in a worker).
class WorkerChannel {
public:
    WorkerChannel(int input_fd, int output_fd) : input_fd_(input_fd), output_fd_(output_fd) {}
    // The next task; nullopt at end of input (the parent closed it or died).
    // Throws WorkerProtocolError on a malformed frame or a torn last one.
    std::optional<WorkerTask> read_task();
    // Throw std::system_error when the output is gone.
    void send_hello();
    void send_result(const WorkerResult& result);

private:
    void send_frame();

    int input_fd_, output_fd_;
    FrameReader input_;
    std::string output_;
};

}  // namespace folio::ingest
