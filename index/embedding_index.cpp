#include "index/embedding_index.h"

#include <chrono>
#include <string>
#include <vector>

namespace folio::index {

ChunkVectors::ChunkVectors(LibraryStore& store, std::filesystem::path index_file)
    : store_(store), file_(std::move(index_file)) {}

EmbeddingProgress ChunkVectors::embed_missing(TextEmbedder& embedder,
                                              const std::function<void(const EmbeddingProgress&)>& progress,
                                              const std::atomic<bool>* cancel,
                                              const std::vector<std::int64_t>* doc_ids) {
    const auto start = std::chrono::steady_clock::now();
    EmbeddingProgress done;
    const EmbeddingModelRecord& model = embedder.model();
    const bool had_model = store_.embedding_model().has_value();
    done.model_changed = store_.set_embedding_model(model) && had_model;
    // A model change leaves every chunk to embed, whatever doc_ids says.
    if (done.model_changed) doc_ids = nullptr;
    std::size_t next_doc = 0;
    auto next_batch = [&] {
        if (!doc_ids) return store_.chunks_without_vectors(kBatchChunks);
        for (; next_doc < doc_ids->size(); ++next_doc)
            if (std::vector<ChunkText> batch = store_.chunks_without_vectors(kBatchChunks, (*doc_ids)[next_doc]);
                !batch.empty())
                return batch;
        return std::vector<ChunkText>{};
    };
    done.remaining = store_.count_chunks_without_vectors();
    while (done.remaining > 0 && !(cancel && cancel->load())) {
        const std::vector<ChunkText> batch = next_batch();
        if (batch.empty()) break;
        std::vector<std::string> texts;
        std::vector<std::int64_t> ids;
        for (const ChunkText& chunk : batch) {
            ids.push_back(chunk.chunk_id);
            texts.push_back(chunk.text);
        }
        const std::vector<float> vectors = embedder.embed(texts);
        store_.put_vectors(model, ids, vectors);
        // The put alone advanced the generation by one: the index in memory
        // takes the same vectors instead of being rebuilt.
        if (index_ && index_->dimension() == model.dimension && store_.vector_generation() == generation_ + 1) {
            index_->add(ids, vectors);
            ++generation_;
        }
        done.embedded += static_cast<std::int64_t>(batch.size());
        done.remaining = store_.count_chunks_without_vectors();
        done.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
        if (progress) progress(done);
    }
    // Leave the file current, so that the next process loads it.
    if (index_ && generation_ == store_.vector_generation()) index_->save(file_, generation_);
    else if (done.embedded > 0) current();
    done.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    return done;
}

const VectorIndex& ChunkVectors::current() {
    const std::uint64_t generation = store_.vector_generation();
    const std::optional<EmbeddingModelRecord> model = store_.embedding_model();
    const int dimension = model ? model->dimension : 0;
    if (index_ && generation_ == generation && index_->dimension() == dimension) {
        last_source_ = Source::Memory;
        return *index_;
    }
    if (dimension <= 0) throw VectorIndexError("the library has no embedding model yet");
    if (std::optional<VectorIndex> loaded = VectorIndex::load(file_, generation, dimension)) {
        index_ = std::move(loaded);
        generation_ = generation;
        last_source_ = Source::File;
        return *index_;
    }
    StoredVectors stored = store_.vectors();
    VectorIndex rebuilt = VectorIndex::for_size(stored.dimension > 0 ? stored.dimension : dimension,
                                                static_cast<std::int64_t>(stored.chunk_ids.size()));
    rebuilt.add(stored.chunk_ids, stored.vectors);
    // A reader cannot always write (a read-only copy of a library): the
    // rebuilt index still serves this process.
    try {
        rebuilt.save(file_, stored.generation);
    } catch (const VectorIndexError&) {
    }
    index_ = std::move(rebuilt);
    generation_ = stored.generation;
    last_source_ = Source::Rebuilt;
    return *index_;
}

}  // namespace folio::index
