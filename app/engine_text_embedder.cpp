#include "app/engine_text_embedder.h"

#include "app/library.h"
#include "engine/embedder.h"
#include "engine/thread_pool.h"

namespace folio::app {
namespace {

class EngineTextEmbedder final : public index::TextEmbedder {
public:
    EngineTextEmbedder(const std::filesystem::path& path)
        : embedder_(engine::Embedder::open(path)),
          model_{path.filename().string() + " (windows of " + std::to_string(embedder_.max_tokens()) + " tokens)",
                 file_sha256(path.string()), embedder_.dimension()} {}

    const index::EmbeddingModelRecord& model() const override { return model_; }

    std::vector<float> embed(std::span<const std::string> texts) override {
        std::vector<float> vectors;
        vectors.reserve(texts.size() * static_cast<std::size_t>(model_.dimension));
        for (const engine::Embedding& embedding : embedder_.embed(texts, pool_, engine::LongText::Windows))
            vectors.insert(vectors.end(), embedding.vector.begin(), embedding.vector.end());
        return vectors;
    }

private:
    engine::Embedder embedder_;
    engine::ThreadPool pool_;
    index::EmbeddingModelRecord model_;
};

}  // namespace

std::unique_ptr<index::TextEmbedder> open_engine_text_embedder(const std::filesystem::path& path) {
    return std::make_unique<EngineTextEmbedder>(path);
}

}  // namespace folio::app
