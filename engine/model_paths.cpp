#include "engine/model_paths.h"

#include <pwd.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cctype>
#include <cstdint>
#include <cstdlib>
#include <exception>
#include <string_view>
#include <system_error>
#include <vector>

#include "engine/gguf.h"
#include "engine/reranker.h"

namespace folio::engine {

namespace {

// general.architecture values (llama.cpp's names) of decoder models that
// small local chat models ship as: SmolLM2 and Mistral say "llama".
constexpr std::array<std::string_view, 8> chat_architectures{
    "llama", "qwen2", "qwen3", "gemma", "gemma2", "gemma3", "phi3", "smollm3"};
constexpr std::string_view embedding_architecture = "bert";
constexpr std::string_view default_chat_file_prefix = "SmolLM2";

std::optional<std::string> non_empty_environment(const char* name) {
    const char* value = std::getenv(name);
    if (value == nullptr || *value == '\0')
        return std::nullopt;
    return std::string(value);
}

std::string home_directory() {
    if (auto home = non_empty_environment("HOME"))
        return *home;
    // HOME can be unset under service managers; the password database still
    // knows the user's home.
    if (const passwd* entry = getpwuid(getuid()); entry != nullptr && entry->pw_dir != nullptr)
        return entry->pw_dir;
    return "/";
}

bool has_gguf_extension(const std::filesystem::path& path) {
    std::string extension = path.extension().string();
    std::transform(extension.begin(), extension.end(), extension.begin(),
                   [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
    return extension == ".gguf";
}

// The *.gguf regular files directly in `directory`, sorted by file name so
// that "the first" does not depend on the file system's order.
std::vector<std::filesystem::path> gguf_files_in(const std::filesystem::path& directory) {
    std::vector<std::filesystem::path> files;
    std::error_code error;
    for (std::filesystem::directory_iterator it(directory, error), end; !error && it != end;
         it.increment(error)) {
        std::error_code type_error;
        if (it->is_regular_file(type_error) && has_gguf_extension(it->path()))
            files.push_back(it->path());
    }
    std::sort(files.begin(), files.end(),
              [](const auto& a, const auto& b) { return a.filename() < b.filename(); });
    return files;
}

struct ModelKind {
    std::string architecture;  // general.architecture
    bool cross_encoder = false;
};

// What the file holds, or nothing when it is not a valid GGUF.
std::optional<ModelKind> gguf_model_kind(const std::filesystem::path& path) {
    try {
        const GgufFile file = GgufFile::open(path);
        return ModelKind{std::string(file.get_string("general.architecture", "")), is_cross_encoder(file)};
    } catch (const std::exception&) {
        // GgufError for a malformed file, std::system_error for an unreadable
        // one: either way it is not a model Folio can use.
        return std::nullopt;
    }
}

bool is_chat_architecture(std::string_view architecture) {
    return std::find(chat_architectures.begin(), chat_architectures.end(), architecture) !=
           chat_architectures.end();
}

}  // namespace

std::string default_models_directory() {
    if (auto models = non_empty_environment("FOLIO_MODELS"))
        return *models;
    const std::string data_home =
        non_empty_environment("XDG_DATA_HOME").value_or(home_directory() + "/.local/share");
    return data_home + "/folio/models";
}

std::optional<std::string> find_default_model(ModelRole role,
                                              const std::filesystem::path& models_directory) {
    const std::vector<std::filesystem::path> files = gguf_files_in(models_directory);
    if (role == ModelRole::Chat) {
        for (const auto& path : files) {
            if (path.filename().string().starts_with(default_chat_file_prefix) && gguf_model_kind(path))
                return path.string();
        }
    }
    for (const auto& path : files) {
        const std::optional<ModelKind> kind = gguf_model_kind(path);
        if (!kind)
            continue;
        const bool encoder = kind->architecture == embedding_architecture;
        const bool fits = role == ModelRole::Chat        ? is_chat_architecture(kind->architecture)
                          : role == ModelRole::Embedding ? encoder && !kind->cross_encoder
                                                         : encoder && kind->cross_encoder;
        if (fits)
            return path.string();
    }
    return std::nullopt;
}

std::optional<std::string> find_default_model(ModelRole role) {
    return find_default_model(role, default_models_directory());
}

}  // namespace folio::engine
