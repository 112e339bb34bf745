#pragma once
// The narrow interface through which index/ embeds text: the library's
// embedding model as index/ sees it. app/ adapts the engine's Embedder to it
// (app/engine_text_embedder.h), so index/ never names the engine.

#include <span>
#include <string>
#include <vector>
#include "index/library_store.h"

namespace folio::index {

class TextEmbedder {
public:
    virtual ~TextEmbedder() = default;
    // Which model this is (name, file hash, dimension): vectors of different
    // models are never mixed in one library.
    virtual const EmbeddingModelRecord& model() const = 0;
    // One unit-length vector per text: (texts.size(), model().dimension)
    // row-major. Throws std::runtime_error with a one-line reason.
    virtual std::vector<float> embed(std::span<const std::string> texts) = 0;
};

}  // namespace folio::index
