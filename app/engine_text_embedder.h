#pragma once
// The engine's Embedder behind index/'s TextEmbedder interface: the one
// place where the library's vectors meet the engine.
//
// Thread rules: one embed() at a time (it drives its own thread pool, all
// cores).

#include <filesystem>
#include <memory>
#include "index/embedding.h"

namespace folio::app {

// Opens the embedding model at `path` (a BERT-style GGUF). The model record
// is its file name, the SHA-256 of the file and its dimension. Throws
// std::runtime_error (engine errors) when it cannot be opened.
std::unique_ptr<index::TextEmbedder> open_engine_text_embedder(const std::filesystem::path& path);

}  // namespace folio::app
