#pragma once
// The engine's Reranker behind index/'s PassageScorer interface: the one
// place where search results meet the cross-encoder.
//
// Thread rules: one score() at a time (it drives its own thread pool, all
// cores).

#include <filesystem>
#include <memory>
#include "index/reranking.h"

namespace folio::app {

// Opens the cross-encoder at `path` (a bert GGUF with rank pooling). Throws
// std::runtime_error (engine errors) when it cannot be opened.
std::unique_ptr<index::PassageScorer> open_engine_reranker(const std::filesystem::path& path);

}  // namespace folio::app
