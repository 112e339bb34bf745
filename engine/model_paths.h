#pragma once
#include <filesystem>
#include <optional>
#include <string>

// Where Folio's models live and which one to use by default. The folder is
// filled by installer/fetch-models.sh (models listed in installer/models.tsv);
// a user can also drop any GGUF file there.

namespace folio::engine {

enum class ModelRole {
    Chat,       // a decoder that generates text
    Embedding,  // an encoder that turns text into a vector
    Reranker,   // a cross-encoder that scores a query and a passage together
};

// $FOLIO_MODELS, else $XDG_DATA_HOME/folio/models, else
// ~/.local/share/folio/models: the rule installer/fetch-models.sh follows. An
// empty variable counts as unset, as in the script's ${VAR:-...}.
std::string default_models_directory();

// The default model for a role among the GGUF files (*.gguf) directly in
// models_directory, or nothing. A file that does not open as a valid GGUF is
// skipped. Chat: the SmolLM2 GGUF (file name starting "SmolLM2"), else the
// first file, by name, whose general.architecture is a chat architecture.
// Embedding: the first file, by name, whose architecture is bert and that is
// not a cross-encoder (the installer's all-MiniLM-L6-v2.gguf, which it
// converts from the Hugging Face folder with `folio convert hf`). Reranker:
// the first bert cross-encoder (bert.pooling_type 4, rank: the installer's
// ms-marco-MiniLM-L-12-v2.gguf). Never throws.
std::optional<std::string> find_default_model(ModelRole role,
                                              const std::filesystem::path& models_directory);
// The same in default_models_directory().
std::optional<std::string> find_default_model(ModelRole role);

}  // namespace folio::engine
