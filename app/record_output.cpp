#include "app/record_output.h"

#include <QSaveFile>
#include <QString>

#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <system_error>

namespace folio::app {
namespace {

using nlohmann::json;

constexpr const char* kRecordColumns[] = {"path",    "doc_id", "sha256",    "grounded",
                                          "ungrounded", "seconds", "error", "validation"};

std::string json_text(const json& value) { return value.dump(-1, ' ', false, json::error_handler_t::replace); }

// The segments of a JSON pointer, unescaped (RFC 6901: ~1 is '/', ~0 is '~').
std::vector<std::string> pointer_segments(const std::string& pointer) {
    std::vector<std::string> segments;
    std::size_t at = 1;
    while (at <= pointer.size() && !pointer.empty()) {
        const std::size_t end = std::min(pointer.find('/', at), pointer.size());
        std::string segment = pointer.substr(at, end - at);
        for (std::size_t i = 0; (i = segment.find('~', i)) != std::string::npos; ++i)
            segment.replace(i, 2, i + 1 < segment.size() && segment[i + 1] == '1' ? "/" : "~");
        segments.push_back(std::move(segment));
        at = end + 1;
    }
    return segments;
}

// Every value at the pointer's place, "*" taking each item of an array.
void collect(const json& node, const std::vector<std::string>& segments, std::size_t at,
             std::vector<const json*>& found) {
    if (at == segments.size()) {
        found.push_back(&node);
        return;
    }
    if (segments[at] == "*") {
        if (node.is_array())
            for (const json& item : node) collect(item, segments, at + 1, found);
    } else if (node.is_object() && node.contains(segments[at])) {
        collect(node.at(segments[at]), segments, at + 1, found);
    }
}

std::string cell_text(const json& value) {
    if (value.is_null()) return {};
    if (value.is_string()) return value.get<std::string>();
    return json_text(value);
}

// The validators' findings, "severity pointer: message", joined with "; ".
std::string validation_cell(const json& issues) {
    std::string cell;
    if (!issues.is_array()) return cell;
    for (const json& issue : issues) {
        cell += cell.empty() ? "" : "; ";
        cell += issue.value("severity", "") + " " + issue.value("pointer", "");
        cell += (issue.value("pointer", "").empty() ? "" : ": ") + issue.value("message", "");
    }
    return cell;
}

// One of kRecordColumns' cells.
std::string record_cell(const json& line, const std::string& column) {
    if (!line.contains(column)) return {};
    return column == "validation" ? validation_cell(line.at(column)) : cell_text(line.at(column));
}

std::string leaf_cell(const json& data, const std::string& pointer) {
    std::vector<const json*> found;
    collect(data, pointer_segments(pointer), 0, found);
    std::string cell;
    for (std::size_t i = 0; i < found.size(); ++i) cell += (i ? "; " : "") + cell_text(*found[i]);
    return cell;
}

std::string read_file(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    if (!in) return {};
    std::ostringstream text;
    text << in.rdbuf();
    if (in.bad()) throw std::runtime_error("cannot read " + path);
    return text.str();
}

void write_atomically(const std::string& path, const std::string& content) {
    QSaveFile file(QString::fromStdString(path));
    if (!file.open(QIODevice::WriteOnly) || file.write(content.data(), static_cast<qint64>(content.size())) !=
                                                static_cast<qint64>(content.size()) ||
        !file.commit())
        throw std::runtime_error("cannot write " + path + ": " + file.errorString().toStdString());
}

void append_durably(std::FILE* file, const std::string& text, const std::string& path) {
    if (std::fwrite(text.data(), 1, text.size(), file) != text.size() || std::fflush(file) != 0 ||
        ::fsync(fileno(file)) != 0)
        throw std::runtime_error("cannot write " + path + ": " + std::generic_category().message(errno));
}

}  // namespace

json record_json(const ExtractionRecord& record) {
    json values = json::array();
    for (const ExtractedValue& value : record.values)
        values.push_back({{"pointer", value.pointer},
                          {"value", value.value},
                          {"normalized", value.normalized},
                          {"grounded", value.grounded},
                          {"page", value.page},
                          {"begin", value.begin},
                          {"end", value.end},
                          {"quote", value.quote}});
    json validation = json::array();
    for (const ValidationIssue& issue : record.validation)
        validation.push_back(
            {{"pointer", issue.pointer}, {"severity", severity_name(issue.severity)}, {"message", issue.message}});
    return {{"doc_id", record.doc_id},     {"path", record.path},         {"data", record.data},
            {"values", values},            {"grounded", record.grounded}, {"ungrounded", record.ungrounded},
            {"validation", validation},    {"seconds", record.seconds},   {"error", record.error}};
}

std::string csv_field(std::string_view text) {
    if (text.find_first_of(",\"\r\n") == std::string_view::npos) return std::string(text);
    std::string quoted = "\"";
    for (char c : text) {
        if (c == '"') quoted += '"';
        quoted += c;
    }
    return quoted + "\"";
}

std::string csv_header(const JsonSchema& schema) {
    std::string header;
    for (const char* column : kRecordColumns) header += std::string(header.empty() ? "" : ",") + column;
    for (const SchemaField& field : schema.fields()) header += "," + csv_field(field.pointer);
    return header + "\r\n";
}

std::string csv_row(const JsonSchema& schema, const json& line) {
    std::string row;
    for (const char* column : kRecordColumns)
        row += (row.empty() ? "" : ",") + csv_field(record_cell(line, column));
    const json& data = line.contains("data") ? line.at("data") : json();
    for (const SchemaField& field : schema.fields()) row += "," + csv_field(leaf_cell(data, field.pointer));
    return row + "\r\n";
}

RecordFiles::RecordFiles(const std::string& directory, const JsonSchema& schema)
    : directory_(directory), schema_(schema) {
    std::error_code error;
    std::filesystem::create_directories(directory_, error);
    if (error) throw std::runtime_error("cannot create output folder " + directory_ + ": " + error.message());
    const std::string text = read_file(jsonl_path());
    std::size_t start = 0, line_number = 1;
    for (std::size_t end; (end = text.find('\n', start)) != std::string::npos; start = end + 1, ++line_number) {
        if (end == start) continue;
        try {
            lines_.push_back(json::parse(text.begin() + static_cast<std::ptrdiff_t>(start),
                                         text.begin() + static_cast<std::ptrdiff_t>(end)));
        } catch (const json::parse_error&) {
            throw std::runtime_error(jsonl_path() + " line " + std::to_string(line_number) +
                                     " is not JSON; move the file away to start the batch's records anew");
        }
    }
    // A line without its newline is one a crash cut short: its record was
    // never marked done, so it is written again.
    if (start < text.size()) {
        std::filesystem::resize_file(jsonl_path(), start, error);
        if (error) throw std::runtime_error("cannot repair " + jsonl_path() + ": " + error.message());
    }
    rewrite(lines_);
}

RecordFiles::~RecordFiles() { close(); }

std::string RecordFiles::jsonl_path() const { return (std::filesystem::path(directory_) / "records.jsonl").string(); }
std::string RecordFiles::csv_path() const { return (std::filesystem::path(directory_) / "records.csv").string(); }

void RecordFiles::rewrite(std::vector<json> lines) {
    close();
    std::string jsonl, csv = csv_header(schema_);
    for (const json& line : lines) {
        jsonl += json_text(line) + "\n";
        csv += csv_row(schema_, line);
    }
    write_atomically(jsonl_path(), jsonl);
    write_atomically(csv_path(), csv);
    lines_ = std::move(lines);
    open_for_append();
}

void RecordFiles::append(const json& line) {
    append_durably(jsonl_, json_text(line) + "\n", jsonl_path());
    append_durably(csv_, csv_row(schema_, line), csv_path());
    lines_.push_back(line);
}

void RecordFiles::open_for_append() {
    // "e": close-on-exec, so the ingest workers spawned meanwhile do not hold them.
    jsonl_ = std::fopen(jsonl_path().c_str(), "abe");
    csv_ = std::fopen(csv_path().c_str(), "abe");
    if (!jsonl_ || !csv_) {
        const std::string failed = jsonl_ ? csv_path() : jsonl_path();
        close();
        throw std::runtime_error("cannot open " + failed + " for appending: " + std::generic_category().message(errno));
    }
}

void RecordFiles::close() {
    if (jsonl_) std::fclose(jsonl_);
    if (csv_) std::fclose(csv_);
    jsonl_ = csv_ = nullptr;
}

}  // namespace folio::app
