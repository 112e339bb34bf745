#pragma once
// The dense half of retrieval: chunk vectors in a Faiss index keyed by chunk
// id, searched by inner product (the embedder's vectors are unit length, so
// this is cosine similarity).
//
// Small libraries get an exact index (IndexFlatIP under IndexIDMap2). One
// query over 384-dimension vectors, one thread, on the shared 2-core
// development machine (load average 10): 10,000 chunks 1.8 ms p50, 100,000
// chunks 52 ms p50 -- past the 50 ms budget of a whole hybrid search. So
// from kApproximateThreshold chunks on, for_size() builds an inverted-file
// index (IndexIVFFlat, about sqrt(n) lists, kIvfProbes probed, under
// IndexIDMap2), trained on the vectors of its first add(). IVF rather than
// HNSW, measured with `folio bench retrieval --synthetic` on this machine:
// HNSW (M = 32, efConstruction = 80) took 468 s to build over 50,000
// vectors with two busy cores, where IVF trains and fills in seconds; and
// IVF removes vectors in place, where HNSW would need a rebuild or
// tombstones (Faiss 1.7.3's ID map cannot remove from IVF either, so an
// IVF index is rebuilt from the stored vectors after a deletion, which the
// library does on any generation it did not make itself). At 49,000 chunks the exact index answered a hybrid search in
// 11 ms p50, 23 ms p95.
//
// On disk the index is a derived copy of the vectors the store keeps: a file
// with a header (magic, format, generation, dimension, count, checksum of the
// Faiss payload) written to a temporary name, flushed and renamed over the
// old one, so a reader sees the old file or the new, never half of one.
// load() refuses a file that is missing, damaged, truncated, of another
// dimension or of another generation than the caller expects; the caller
// then rebuilds it from the stored vectors rather than search a wrong one.
//
// Thread rules: const methods may run concurrently; add/remove need
// exclusive access.

#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <span>
#include <stdexcept>
#include <vector>

namespace folio::index {

class VectorIndexError : public std::runtime_error {
public:
    using std::runtime_error::runtime_error;
};

struct VectorNeighbor {
    std::int64_t chunk_id = 0;
    float score = 0;  // inner product: higher is closer
};

enum class VectorIndexKind { Flat, Ivf };

// Chunk counts from which the library's index is IVF rather than exact.
inline constexpr std::int64_t kApproximateThreshold = 50000;
// Lists an IVF search visits.
inline constexpr int kIvfProbes = 32;

class VectorIndex {
public:
    // ivf_lists: the inverted lists of an IVF index (ignored for Flat).
    explicit VectorIndex(int dimension, VectorIndexKind kind = VectorIndexKind::Flat, int ivf_lists = 1024);
    // The kind kApproximateThreshold picks for `count` chunks, with
    // sqrt(count) lists for IVF.
    static VectorIndex for_size(int dimension, std::int64_t count);
    ~VectorIndex();
    VectorIndex(VectorIndex&&) noexcept;
    VectorIndex& operator=(VectorIndex&&) noexcept;

    int dimension() const { return dimension_; }
    VectorIndexKind kind() const { return kind_; }
    std::int64_t size() const;
    bool contains(std::int64_t chunk_id) const;

    // vectors: (chunk_ids.size(), dimension) row-major. A chunk id already
    // present gets its new vector. Throws VectorIndexError on a size mismatch.
    void add(std::span<const std::int64_t> chunk_ids, std::span<const float> vectors);
    // Returns how many of the ids were present. Flat only: an IVF index
    // throws VectorIndexError (it is rebuilt instead, see the top).
    std::size_t remove(std::span<const std::int64_t> chunk_ids);

    // The k nearest chunks to a query of dimension() floats, best first.
    // With `allowed` (ascending chunk ids: a search filter), only those
    // chunks are candidates.
    std::vector<VectorNeighbor> search(std::span<const float> query, int k,
                                       const std::vector<std::int64_t>* allowed = nullptr) const;

    // Writes the index for `generation` atomically (see the top of this
    // file). Throws VectorIndexError when the file cannot be written.
    void save(const std::filesystem::path& file, std::uint64_t generation) const;
    // The index saved at `file` for this generation and dimension, or
    // nothing when it is absent or not exactly that (see the top).
    static std::optional<VectorIndex> load(const std::filesystem::path& file, std::uint64_t generation,
                                           int dimension);

    // On a flat index, filters that leave at most this many chunks are
    // searched exactly over those chunks; broader ones, and every filter on
    // IVF, search deeper in the whole index until k pass.
    static constexpr std::int64_t kExactFilterLimit = 20000;

private:
    std::vector<VectorNeighbor> search_among(std::span<const float> query, int k,
                                             const std::vector<std::int64_t>& allowed) const;

    struct Faiss;  // the Faiss index, kept out of this header
    int dimension_;
    VectorIndexKind kind_;
    std::unique_ptr<Faiss> faiss_;
};

}  // namespace folio::index
