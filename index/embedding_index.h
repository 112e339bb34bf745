#pragma once
// A library's chunk vectors: embedding the chunks that have none, and the
// Faiss index over them (vector_index.h) kept in step with the store.
//
// The store's vectors are the source of truth; the file <library>/
// vectors.faiss is derived from them and records the store's vector
// generation. current() uses the index in memory while the generation is
// unchanged, else the file when it holds exactly that generation, else
// rebuilds the index from the stored vectors and saves it: a deleted,
// truncated, damaged or stale file costs a rebuild, never a wrong answer.
//
// Embedding is resumable: chunks are embedded in batches, each committed on
// its own, and the next run starts from the chunks still without a vector.
// A change of model drops the old vectors (LibraryStore::set_embedding_model)
// and re-embeds every chunk.
//
// Thread rules: as LibraryStore, one thread at a time.

#include <atomic>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <optional>
#include "index/embedding.h"
#include "index/library_store.h"
#include "index/vector_index.h"

namespace folio::index {

struct EmbeddingProgress {
    std::int64_t embedded = 0;        // chunks embedded by this run so far
    std::int64_t remaining = 0;       // chunks still without a vector
    bool model_changed = false;       // the old model's vectors were dropped
    double seconds = 0;
};

class ChunkVectors {
public:
    // Chunks embedded per committed batch: big enough to fill the
    // embedder's batches (1024 tokens), small enough that an interrupted
    // run loses little.
    static constexpr int kBatchChunks = 64;

    ChunkVectors(LibraryStore& store, std::filesystem::path index_file);

    // Embeds every chunk without a vector with `embedder` (with doc_ids,
    // only those documents' chunks: an ingest embeds what it stored and
    // leaves older gaps to `folio index`). progress is called after each
    // batch; cancel stops between batches. Throws what the embedder or the
    // store throws; batches already committed stay.
    EmbeddingProgress embed_missing(TextEmbedder& embedder,
                                    const std::function<void(const EmbeddingProgress&)>& progress = {},
                                    const std::atomic<bool>* cancel = nullptr,
                                    const std::vector<std::int64_t>* doc_ids = nullptr);

    // The index over the store's current vectors (see the top of this file).
    const VectorIndex& current();
    // How current() got its index last: from memory, the file, or a rebuild.
    enum class Source { Memory, File, Rebuilt };
    Source last_source() const { return last_source_; }

private:
    LibraryStore& store_;
    std::filesystem::path file_;
    std::optional<VectorIndex> index_;
    std::uint64_t generation_ = 0;
    Source last_source_ = Source::Memory;
};

}  // namespace folio::index
