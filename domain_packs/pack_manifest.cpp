#include "domain_packs/pack_manifest.h"

#include <algorithm>
#include <initializer_list>
#include <set>
#include <tuple>
#include <utility>

#include <nlohmann/json.hpp>

namespace folio::packs {

using nlohmann::json;

PackError::PackError(std::string field, const std::string& problem)
    : std::runtime_error(field + ": " + problem), field_(std::move(field)), problem_(problem) {}

namespace {

// Untrusted text for an error message: quoted, one line, bytes outside
// printable ASCII as \xNN, cut short so a hostile value cannot flood a log.
std::string quote_untrusted(std::string_view text) {
    constexpr std::size_t kShownBytes = 80;
    static constexpr char kHexDigits[] = "0123456789abcdef";
    std::string out = "\"";
    for (std::size_t i = 0; i < text.size() && i < kShownBytes; ++i) {
        const auto byte = static_cast<unsigned char>(text[i]);
        if (byte == '"' || byte == '\\') {
            out += '\\';
            out += static_cast<char>(byte);
        } else if (byte >= 0x20 && byte < 0x7f) {
            out += static_cast<char>(byte);
        } else {
            out += "\\x";
            out += kHexDigits[byte >> 4];
            out += kHexDigits[byte & 0xf];
        }
    }
    out += text.size() > kShownBytes ? "\"..." : "\"";
    return out;
}

// nlohmann's messages quote the input they stopped at; keep them one line.
std::string one_line(std::string text) {
    std::replace_if(text.begin(), text.end(), [](char c) { return static_cast<unsigned char>(c) < 0x20; }, ' ');
    return text;
}

bool is_lower_hex_sha256(std::string_view text) {
    return text.size() == 64 &&
           std::all_of(text.begin(), text.end(),
                       [](char c) { return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'); });
}

bool is_digit(char c) { return c >= '0' && c <= '9'; }
bool is_lower_alnum(char c) { return (c >= 'a' && c <= 'z') || is_digit(c); }
bool is_alnum(char c) { return is_lower_alnum(c) || (c >= 'A' && c <= 'Z'); }

// The POSIX portable filename character set. Pack files are authored by pack
// builders, so nothing is lost, and install never has to reason about
// encodings, Unicode normalization or shell metacharacters.
bool is_portable_path_char(char c) { return is_alnum(c) || c == '.' || c == '_' || c == '-'; }

std::vector<std::string_view> split(std::string_view text, char separator) {
    std::vector<std::string_view> parts;
    std::size_t start = 0;
    while (true) {
        const std::size_t end = text.find(separator, start);
        parts.push_back(text.substr(start, end == std::string_view::npos ? std::string_view::npos : end - start));
        if (end == std::string_view::npos) return parts;
        start = end + 1;
    }
}

bool is_semver_numeric(std::string_view text) {
    return !text.empty() && std::all_of(text.begin(), text.end(), is_digit) && (text.size() == 1 || text[0] != '0');
}

bool is_semver_alphanumeric(std::string_view text) {
    return !text.empty() && std::all_of(text.begin(), text.end(), [](char c) { return is_alnum(c) || c == '-'; });
}

// A package name, a domain: also a directory name and a CLI argument, hence
// lowercase and never starting with '-' (it would read as an option).
void check_identifier(const std::string& field, const std::string& value) {
    if (value.empty()) throw PackError(field, "is empty");
    if (value.size() > kMaxNameBytes)
        throw PackError(field, "is " + std::to_string(value.size()) + " bytes, more than " +
                                   std::to_string(kMaxNameBytes) + ": " + quote_untrusted(value));
    if (!std::all_of(value.begin(), value.end(), [](char c) { return is_lower_alnum(c) || c == '-'; }))
        throw PackError(field, "may hold only [a-z0-9-]: " + quote_untrusted(value));
    if (value.front() == '-') throw PackError(field, "must not start with '-': " + quote_untrusted(value));
}

void check_semantic_version(const std::string& field, const std::string& value) {
    if (value.size() > kMaxVersionBytes)
        throw PackError(field, "is " + std::to_string(value.size()) + " bytes, more than " +
                                   std::to_string(kMaxVersionBytes) + ": " + quote_untrusted(value));
    if (!is_semantic_version(value))
        throw PackError(field,
                        "is not a semantic version (MAJOR.MINOR.PATCH[-pre][+build]): " + quote_untrusted(value));
}

void check_sha256(const std::string& field, const std::string& value) {
    if (!is_lower_hex_sha256(value))
        throw PackError(field, "is not 64 lowercase hex digits: " + quote_untrusted(value));
}

void check_format_version(std::uint64_t format_version) {
    if (format_version == 0) throw PackError("format_version", "must be at least 1");
    if (format_version > kManifestFormatVersion)
        throw PackError("format_version", "manifest format " + std::to_string(format_version) +
                                              " is newer than this Folio understands (" +
                                              std::to_string(kManifestFormatVersion) + "); update Folio");
}

void check_path(const std::string& field, const std::string& path) {
    if (path.empty()) throw PackError(field, "is empty");
    if (path.size() > kMaxPathBytes)
        throw PackError(field, "is " + std::to_string(path.size()) + " bytes, more than " +
                                   std::to_string(kMaxPathBytes) + ": " + quote_untrusted(path));
    if (path.front() == '/') throw PackError(field, "is absolute: " + quote_untrusted(path));
    if (path.find('\\') != std::string::npos)
        throw PackError(field, "contains a backslash; the separator is '/': " + quote_untrusted(path));
    for (std::string_view segment : split(path, '/')) {
        if (segment.empty()) throw PackError(field, "has an empty segment: " + quote_untrusted(path));
        if (segment == "." || segment == "..")
            throw PackError(field, "has a '" + std::string(segment) + "' segment: " + quote_untrusted(path));
        if (!std::all_of(segment.begin(), segment.end(), is_portable_path_char))
            throw PackError(field, "may hold only [A-Za-z0-9._-] and '/': " + quote_untrusted(path));
    }
}

std::string ascii_lowercase(std::string text) {
    std::transform(text.begin(), text.end(), text.begin(),
                   [](char c) { return c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c; });
    return text;
}

// Two paths that differ only in case land on one file on a case-insensitive
// file system, and a path that is also another's directory cannot be
// installed at all; both are refused so install never has to choose.
void check_paths_distinct(const std::vector<PackFile>& files) {
    std::vector<std::pair<std::string, std::size_t>> folded;  // (lowercased path, index in files)
    folded.reserve(files.size());
    for (std::size_t i = 0; i < files.size(); ++i) folded.emplace_back(ascii_lowercase(files[i].path), i);
    std::sort(folded.begin(), folded.end());
    const auto field = [](std::size_t index) { return "files[" + std::to_string(index) + "].path"; };
    for (std::size_t i = 0; i + 1 < folded.size(); ++i) {
        if (folded[i].first != folded[i + 1].first) continue;
        const PackFile& first = files[folded[i].second];
        const PackFile& second = files[folded[i + 1].second];
        throw PackError(field(folded[i + 1].second),
                        "duplicates " + field(folded[i].second) +
                            (first.path == second.path ? "" : " ignoring case") + ": " + quote_untrusted(second.path));
    }
    for (const auto& [path, index] : folded) {
        const std::string as_directory = path + "/";
        const auto next = std::lower_bound(folded.begin(), folded.end(), std::make_pair(as_directory, std::size_t{0}));
        if (next != folded.end() && next->first.starts_with(as_directory))
            throw PackError(field(index), "is a file and also the directory of " + field(next->second) + ": " +
                                              quote_untrusted(files[index].path));
    }
}

auto base_model_order_key(const BaseModel& model) {
    return std::tie(model.architecture, model.tokenizer_sha256, model.weights_sha256);
}

void sort_canonically(PackManifest& manifest) {
    std::sort(manifest.files.begin(), manifest.files.end(),
              [](const PackFile& a, const PackFile& b) { return a.path < b.path; });
    std::sort(manifest.base_models.begin(), manifest.base_models.end(),
              [](const BaseModel& a, const BaseModel& b) { return base_model_order_key(a) < base_model_order_key(b); });
}

// nlohmann keeps the last of repeated keys; a signed manifest whose meaning
// depends on such a parser detail is refused instead.
json parse_json_without_duplicate_keys(std::string_view text) {
    if (text.size() > kMaxManifestBytes)
        throw PackError("manifest", "is " + std::to_string(text.size()) + " bytes, more than " +
                                        std::to_string(kMaxManifestBytes));
    std::vector<std::set<std::string>> keys_of_open_objects;
    std::optional<std::string> duplicate_key;
    const json::parser_callback_t track_keys = [&](int, json::parse_event_t event, json& parsed) {
        if (event == json::parse_event_t::object_start) {
            keys_of_open_objects.emplace_back();
        } else if (event == json::parse_event_t::object_end) {
            keys_of_open_objects.pop_back();
        } else if (event == json::parse_event_t::key) {
            std::string key = parsed.get<std::string>();
            if (!keys_of_open_objects.back().insert(key).second && !duplicate_key) duplicate_key = std::move(key);
        }
        return true;
    };
    json document;
    try {
        document = json::parse(text.begin(), text.end(), track_keys);
    } catch (const json::exception& error) {  // parse_error, and out_of_range for a number too large
        throw PackError("manifest", "is not valid JSON: " + one_line(error.what()));
    }
    if (duplicate_key) throw PackError("manifest", "repeats the key " + quote_untrusted(*duplicate_key));
    return document;
}

void require_object(const json& value, const std::string& field) {
    if (!value.is_object()) throw PackError(field, "must be a JSON object");
}

void reject_unknown_keys(const json& object, const std::string& field, std::initializer_list<std::string_view> known) {
    for (const auto& member : object.items())
        if (std::find(known.begin(), known.end(), member.key()) == known.end())
            throw PackError(field, "has an unknown key " + quote_untrusted(member.key()));
}

std::string join_field(const std::string& prefix, const char* key) {
    return prefix.empty() ? key : prefix + "." + key;
}

const json& required_member(const json& object, const std::string& prefix, const char* key) {
    const auto member = object.find(key);
    if (member == object.end()) throw PackError(join_field(prefix, key), "is missing");
    return *member;
}

std::string read_string(const json& value, const std::string& field) {
    if (!value.is_string()) throw PackError(field, "must be a string");
    return value.get<std::string>();
}

std::uint64_t read_unsigned(const json& value, const std::string& field) {
    if (!value.is_number_unsigned()) throw PackError(field, "must be a non-negative integer");
    return value.get<std::uint64_t>();
}

const json& read_array(const json& value, const std::string& field) {
    if (!value.is_array()) throw PackError(field, "must be a JSON array");
    return value;
}

BaseModel read_base_model(const json& object, const std::string& field) {
    require_object(object, field);
    reject_unknown_keys(object, field, {"architecture", "tokenizer_sha256", "weights_sha256"});
    BaseModel model;
    model.architecture = read_string(required_member(object, field, "architecture"), field + ".architecture");
    model.tokenizer_sha256 =
        read_string(required_member(object, field, "tokenizer_sha256"), field + ".tokenizer_sha256");
    if (const auto weights = object.find("weights_sha256"); weights != object.end())
        model.weights_sha256 = read_string(*weights, field + ".weights_sha256");
    return model;
}

PackArchive read_archive(const json& object) {
    require_object(object, "archive");
    reject_unknown_keys(object, "archive", {"size", "sha256"});
    PackArchive archive;
    archive.size = read_unsigned(required_member(object, "archive", "size"), "archive.size");
    archive.sha256 = read_string(required_member(object, "archive", "sha256"), "archive.sha256");
    return archive;
}

PackFile read_file_entry(const json& object, const std::string& field) {
    require_object(object, field);
    reject_unknown_keys(object, field, {"path", "size", "sha256"});
    PackFile file;
    file.path = read_string(required_member(object, field, "path"), field + ".path");
    file.size = read_unsigned(required_member(object, field, "size"), field + ".size");
    file.sha256 = read_string(required_member(object, field, "sha256"), field + ".sha256");
    return file;
}

}  // namespace

bool is_semantic_version(std::string_view text) {
    const std::size_t plus = text.find('+');
    if (plus != std::string_view::npos) {
        const auto build = split(text.substr(plus + 1), '.');
        if (!std::all_of(build.begin(), build.end(), is_semver_alphanumeric)) return false;
        text = text.substr(0, plus);
    }
    const std::size_t hyphen = text.find('-');
    if (hyphen != std::string_view::npos) {
        const auto prerelease = split(text.substr(hyphen + 1), '.');
        const auto is_prerelease_identifier = [](std::string_view identifier) {
            const bool all_digits = !identifier.empty() && std::all_of(identifier.begin(), identifier.end(), is_digit);
            return all_digits ? is_semver_numeric(identifier) : is_semver_alphanumeric(identifier);
        };
        if (!std::all_of(prerelease.begin(), prerelease.end(), is_prerelease_identifier)) return false;
        text = text.substr(0, hyphen);
    }
    const auto core = split(text, '.');
    return core.size() == 3 && std::all_of(core.begin(), core.end(), is_semver_numeric);
}

std::string release_label(const PackManifest& manifest) {
    return manifest.version + " (sequence " + std::to_string(manifest.sequence) + ")";
}

std::string named_release_label(const PackManifest& manifest) { return manifest.name + " " + release_label(manifest); }

int compare_semantic_versions(std::string_view a, std::string_view b) {
    const auto without_build = [](std::string_view v) { return v.substr(0, v.find('+')); };
    a = without_build(a);
    b = without_build(b);
    const auto split_prerelease = [](std::string_view v) {
        const std::size_t hyphen = v.find('-');
        return std::pair{v.substr(0, hyphen), hyphen == std::string_view::npos ? std::string_view{} : v.substr(hyphen + 1)};
    };
    // Numeric identifiers compare as numbers: by length first (no leading
    // zeros), then digit by digit, which needs no integer parse that could overflow.
    const auto compare_numeric = [](std::string_view x, std::string_view y) {
        if (x.size() != y.size()) return x.size() < y.size() ? -1 : 1;
        return x.compare(y) < 0 ? -1 : (x == y ? 0 : 1);
    };
    const auto is_numeric = [](std::string_view x) { return std::all_of(x.begin(), x.end(), is_digit); };
    const auto [core_a, pre_a] = split_prerelease(a);
    const auto [core_b, pre_b] = split_prerelease(b);
    const auto parts_a = split(core_a, '.');
    const auto parts_b = split(core_b, '.');
    for (std::size_t i = 0; i < 3; ++i)
        if (const int order = compare_numeric(parts_a[i], parts_b[i]); order != 0) return order;
    if (pre_a.empty() || pre_b.empty()) return pre_a.empty() == pre_b.empty() ? 0 : (pre_a.empty() ? 1 : -1);
    const auto ids_a = split(pre_a, '.');
    const auto ids_b = split(pre_b, '.');
    for (std::size_t i = 0; i < ids_a.size() && i < ids_b.size(); ++i) {
        const bool numeric_a = is_numeric(ids_a[i]);
        const bool numeric_b = is_numeric(ids_b[i]);
        int order = 0;
        if (numeric_a && numeric_b) order = compare_numeric(ids_a[i], ids_b[i]);
        else if (numeric_a != numeric_b) order = numeric_a ? -1 : 1;
        else order = ids_a[i].compare(ids_b[i]) < 0 ? -1 : (ids_a[i] == ids_b[i] ? 0 : 1);
        if (order != 0) return order;
    }
    return ids_a.size() == ids_b.size() ? 0 : (ids_a.size() < ids_b.size() ? -1 : 1);
}

void validate_manifest(const PackManifest& manifest) {
    check_format_version(manifest.format_version);
    check_identifier("name", manifest.name);
    check_semantic_version("version", manifest.version);
    check_identifier("domain", manifest.domain);
    check_semantic_version("min_folio_version", manifest.min_folio_version);

    if (manifest.base_models.size() > kMaxBaseModels)
        throw PackError("base_models", "lists " + std::to_string(manifest.base_models.size()) + " models, more than " +
                                           std::to_string(kMaxBaseModels));
    for (std::size_t i = 0; i < manifest.base_models.size(); ++i) {
        const BaseModel& model = manifest.base_models[i];
        const std::string field = "base_models[" + std::to_string(i) + "]";
        const std::string& architecture = model.architecture;
        if (architecture.empty() || architecture.size() > kMaxNameBytes ||
            !std::all_of(architecture.begin(), architecture.end(),
                         [](char c) { return is_lower_alnum(c) || c == '-' || c == '_'; }))
            throw PackError(field + ".architecture",
                            "must be 1 to " + std::to_string(kMaxNameBytes) +
                                " of [a-z0-9_-]: " + quote_untrusted(architecture));
        check_sha256(field + ".tokenizer_sha256", model.tokenizer_sha256);
        if (model.weights_sha256) check_sha256(field + ".weights_sha256", *model.weights_sha256);
        for (std::size_t earlier = 0; earlier < i; ++earlier)
            if (manifest.base_models[earlier] == model)
                throw PackError(field, "duplicates base_models[" + std::to_string(earlier) + "]");
    }

    if (manifest.files.empty()) throw PackError("files", "is empty; a pack carries at least one file");
    if (manifest.files.size() > kMaxPackFiles)
        throw PackError("files", "lists " + std::to_string(manifest.files.size()) + " files, more than " +
                                     std::to_string(kMaxPackFiles));
    std::uint64_t total_bytes = 0;
    for (std::size_t i = 0; i < manifest.files.size(); ++i) {
        const PackFile& file = manifest.files[i];
        const std::string field = "files[" + std::to_string(i) + "]";
        check_path(field + ".path", file.path);
        if (file.size > kMaxPackFileSize)
            throw PackError(field + ".size", std::to_string(file.size) + " bytes is more than the limit of " +
                                                 std::to_string(kMaxPackFileSize));
        check_sha256(field + ".sha256", file.sha256);
        // Each size is at most kMaxPackFileSize and there are at most
        // kMaxPackFiles, so the sum cannot overflow.
        total_bytes += file.size;
    }
    if (total_bytes > kMaxPackBytes)
        throw PackError("files", "hold " + std::to_string(total_bytes) + " bytes in all, more than the limit of " +
                                     std::to_string(kMaxPackBytes));
    check_paths_distinct(manifest.files);

    if (manifest.archive.size == 0 || manifest.archive.size > kMaxPackBytes)
        throw PackError("archive.size", "must be 1 to " + std::to_string(kMaxPackBytes) + " bytes, not " +
                                            std::to_string(manifest.archive.size));
    check_sha256("archive.sha256", manifest.archive.sha256);
}

PackManifest parse_manifest(std::string_view text) {
    const json document = parse_json_without_duplicate_keys(text);
    require_object(document, "manifest");

    // The format version comes first: a newer manifest may use keys this
    // Folio does not know, and "update Folio" is the useful answer then.
    PackManifest manifest;
    manifest.format_version = read_unsigned(required_member(document, "", "format_version"), "format_version");
    check_format_version(manifest.format_version);

    reject_unknown_keys(document, "manifest",
                        {"format_version", "name", "version", "sequence", "domain", "min_folio_version",
                         "base_models", "files", "archive"});
    manifest.name = read_string(required_member(document, "", "name"), "name");
    manifest.version = read_string(required_member(document, "", "version"), "version");
    manifest.sequence = read_unsigned(required_member(document, "", "sequence"), "sequence");
    manifest.domain = read_string(required_member(document, "", "domain"), "domain");
    manifest.min_folio_version = read_string(required_member(document, "", "min_folio_version"), "min_folio_version");

    // Counts are checked before the entries are read: validate_manifest
    // compares base models pairwise.
    const json& base_models = read_array(required_member(document, "", "base_models"), "base_models");
    if (base_models.size() > kMaxBaseModels)
        throw PackError("base_models", "lists " + std::to_string(base_models.size()) + " models, more than " +
                                           std::to_string(kMaxBaseModels));
    for (std::size_t i = 0; i < base_models.size(); ++i)
        manifest.base_models.push_back(read_base_model(base_models[i], "base_models[" + std::to_string(i) + "]"));

    const json& files = read_array(required_member(document, "", "files"), "files");
    if (files.size() > kMaxPackFiles)
        throw PackError("files", "lists " + std::to_string(files.size()) + " files, more than " +
                                     std::to_string(kMaxPackFiles));
    for (std::size_t i = 0; i < files.size(); ++i)
        manifest.files.push_back(read_file_entry(files[i], "files[" + std::to_string(i) + "]"));

    manifest.archive = read_archive(required_member(document, "", "archive"));

    // Validated in input order, so an error's index points into the input.
    validate_manifest(manifest);
    sort_canonically(manifest);
    return manifest;
}

PackManifest parse_signed_manifest(std::string_view text) {
    PackManifest manifest = parse_manifest(text);
    if (canonical_manifest_json(manifest) != text)
        throw PackError("manifest",
                        "signed bytes are not in canonical form (sorted keys, sorted files, no whitespace)");
    return manifest;
}

std::string canonical_manifest_json(const PackManifest& manifest) {
    validate_manifest(manifest);
    PackManifest sorted = manifest;
    sort_canonically(sorted);

    // json objects are std::maps, so dump() writes keys in byte order.
    json base_models = json::array();
    for (const BaseModel& model : sorted.base_models) {
        json entry = {{"architecture", model.architecture}, {"tokenizer_sha256", model.tokenizer_sha256}};
        if (model.weights_sha256) entry["weights_sha256"] = *model.weights_sha256;
        base_models.push_back(std::move(entry));
    }
    json files = json::array();
    for (const PackFile& file : sorted.files)
        files.push_back(json{{"path", file.path}, {"size", file.size}, {"sha256", file.sha256}});

    const json document{
        {"format_version", sorted.format_version},
        {"name", sorted.name},
        {"version", sorted.version},
        {"sequence", sorted.sequence},
        {"domain", sorted.domain},
        {"min_folio_version", sorted.min_folio_version},
        {"base_models", std::move(base_models)},
        {"files", std::move(files)},
        {"archive", json{{"size", sorted.archive.size}, {"sha256", sorted.archive.sha256}}},
    };
    return document.dump();
}

}  // namespace folio::packs
