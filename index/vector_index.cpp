#include "index/vector_index.h"

#include <faiss/IndexFlat.h>
#include <faiss/IndexIVFFlat.h>
#include <faiss/IndexIDMap.h>
#include <faiss/impl/FaissException.h>
#include <faiss/impl/IDSelector.h>
#include <faiss/impl/io.h>
#include <faiss/index_io.h>

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstring>
#include <fstream>
#include <iterator>
#include <string>

namespace folio::index {
namespace {

using FaissId = faiss::Index::idx_t;

constexpr char kMagic[8] = {'F', 'O', 'L', 'I', 'O', 'V', 'E', 'C'};
constexpr std::uint32_t kFormat = 1;

// Little-endian on every machine Folio runs on; the header is read back by
// the same build, so it is stored in native order.
struct Header {
    char magic[8];
    std::uint32_t format;
    std::uint32_t dimension;
    std::uint64_t generation;
    std::uint64_t count;
    std::uint64_t payload_bytes;
    std::uint64_t payload_checksum;
};

// FNV-1a over the payload: catches truncation and flipped bytes, which is
// all that is asked of it (not tampering).
std::uint64_t checksum(const std::uint8_t* data, std::size_t size) {
    std::uint64_t hash = 0xcbf29ce484222325ull;
    for (std::size_t i = 0; i < size; ++i) hash = (hash ^ data[i]) * 0x100000001b3ull;
    return hash;
}


void write_all(int fd, const void* data, std::size_t size, const std::string& path) {
    const auto* bytes = static_cast<const char*>(data);
    while (size > 0) {
        const ssize_t written = ::write(fd, bytes, size);
        if (written < 0 && errno == EINTR) continue;
        if (written <= 0) throw VectorIndexError("cannot write " + path + ": " + std::strerror(errno));
        bytes += written;
        size -= static_cast<std::size_t>(written);
    }
}

}  // namespace

struct VectorIndex::Faiss {
    std::unique_ptr<faiss::IndexIDMap2> index;
};

namespace {

faiss::Index* new_faiss_index(int dimension, VectorIndexKind kind, int ivf_lists) {
    if (kind == VectorIndexKind::Flat) return new faiss::IndexFlatIP(dimension);
    auto* ivf = new faiss::IndexIVFFlat(new faiss::IndexFlatIP(dimension), dimension, static_cast<std::size_t>(ivf_lists),
                                        faiss::METRIC_INNER_PRODUCT);
    ivf->own_fields = true;
    ivf->nprobe = static_cast<std::size_t>(std::min(ivf_lists, kIvfProbes));
    // remove_ids and reconstruct by id need a direct map; the hash table
    // kind allows removal.
    ivf->set_direct_map_type(faiss::DirectMap::Hashtable);
    return ivf;
}

}  // namespace

VectorIndex::VectorIndex(int dimension, VectorIndexKind kind, int ivf_lists)
    : dimension_(dimension), kind_(kind), faiss_(std::make_unique<Faiss>()) {
    if (dimension <= 0) throw VectorIndexError("a vector index needs a positive dimension");
    if (ivf_lists <= 0) throw VectorIndexError("an IVF index needs at least one list");
    faiss_->index = std::make_unique<faiss::IndexIDMap2>(new_faiss_index(dimension, kind, ivf_lists));
    faiss_->index->own_fields = true;
}

VectorIndex VectorIndex::for_size(int dimension, std::int64_t count) {
    if (count < kApproximateThreshold) return VectorIndex(dimension);
    return VectorIndex(dimension, VectorIndexKind::Ivf, static_cast<int>(std::sqrt(static_cast<double>(count))));
}

VectorIndex::~VectorIndex() = default;
VectorIndex::VectorIndex(VectorIndex&&) noexcept = default;
VectorIndex& VectorIndex::operator=(VectorIndex&&) noexcept = default;

std::int64_t VectorIndex::size() const { return faiss_->index->ntotal; }

bool VectorIndex::contains(std::int64_t chunk_id) const { return faiss_->index->rev_map.count(chunk_id) > 0; }

void VectorIndex::add(std::span<const std::int64_t> chunk_ids, std::span<const float> vectors) {
    if (vectors.size() != chunk_ids.size() * static_cast<std::size_t>(dimension_))
        throw VectorIndexError("vectors hold " + std::to_string(vectors.size()) + " floats, not " +
                               std::to_string(chunk_ids.size()) + " x " + std::to_string(dimension_));
    if (std::any_of(chunk_ids.begin(), chunk_ids.end(), [&](std::int64_t id) { return contains(id); }))
        remove(chunk_ids);
    const std::vector<FaissId> ids(chunk_ids.begin(), chunk_ids.end());
    // IVF learns its lists from the first vectors it is given (a rebuild
    // gives all of them at once); at most 256 per list are enough.
    if (!faiss_->index->is_trained) {
        const auto* ivf = dynamic_cast<const faiss::IndexIVF*>(faiss_->index->index);
        const std::size_t sample = std::min(ids.size(), ivf ? ivf->nlist * 256 : ids.size());
        faiss_->index->train(static_cast<FaissId>(sample), vectors.data());
    }
    faiss_->index->add_with_ids(static_cast<FaissId>(ids.size()), vectors.data(), ids.data());
}

std::size_t VectorIndex::remove(std::span<const std::int64_t> chunk_ids) {
    if (chunk_ids.empty()) return 0;
    const std::vector<FaissId> ids(chunk_ids.begin(), chunk_ids.end());
    const faiss::IDSelectorBatch selector(static_cast<std::size_t>(ids.size()), ids.data());
    if (kind_ == VectorIndexKind::Flat) return faiss_->index->remove_ids(selector);
    // Faiss 1.7.3 cannot remove through an ID map over IVF (its hash-table
    // direct map takes only an IDSelectorArray of internal ids), nor
    // reconstruct reliably from it: the library rebuilds an IVF index from
    // its stored vectors instead (embedding_index.h).
    throw VectorIndexError("an IVF index is rebuilt from the stored vectors, not edited by removal");
}

std::vector<VectorNeighbor> VectorIndex::search(std::span<const float> query, int k,
                                                const std::vector<std::int64_t>* allowed) const {
    if (query.size() != static_cast<std::size_t>(dimension_))
        throw VectorIndexError("a query of " + std::to_string(query.size()) + " floats for an index of dimension " +
                               std::to_string(dimension_));
    if (kind_ == VectorIndexKind::Flat && allowed && static_cast<std::int64_t>(allowed->size()) <= kExactFilterLimit)
        return search_among(query, k, *allowed);
    // A broad filter: search deeper until k of the neighbours pass it (the
    // Faiss 1.7.3 ID map takes no selector).
    const std::int64_t total = faiss_->index->ntotal;
    const std::int64_t candidates = allowed ? static_cast<std::int64_t>(allowed->size()) : total;
    std::int64_t depth = std::min<std::int64_t>(k, total);
    if (allowed && !allowed->empty()) depth = std::min<std::int64_t>(total, 2 * k * std::max<std::int64_t>(1, total / candidates));
    if (depth <= 0 || candidates <= 0 || k <= 0) return {};
    std::vector<VectorNeighbor> neighbors;
    for (;;) {
        std::vector<float> scores(static_cast<std::size_t>(depth));
        std::vector<FaissId> ids(static_cast<std::size_t>(depth));
        faiss_->index->search(1, query.data(), depth, scores.data(), ids.data());
        neighbors.clear();
        for (std::int64_t i = 0; i < depth && static_cast<int>(neighbors.size()) < k; ++i)
            if (ids[i] >= 0 && (!allowed || std::binary_search(allowed->begin(), allowed->end(), ids[i])))
                neighbors.push_back({ids[i], scores[i]});
        if (static_cast<int>(neighbors.size()) >= k || depth >= total) return neighbors;
        depth = std::min(total, depth * 4);
    }
}

std::vector<VectorNeighbor> VectorIndex::search_among(std::span<const float> query, int k,
                                                      const std::vector<std::int64_t>& allowed) const {
    std::vector<VectorNeighbor> scored;
    std::vector<float> row(static_cast<std::size_t>(dimension_));
    for (const std::int64_t id : allowed) {
        if (!contains(id)) continue;
        faiss_->index->reconstruct(id, row.data());
        float dot = 0;
        for (int i = 0; i < dimension_; ++i) dot += row[i] * query[i];
        scored.push_back({id, dot});
    }
    const std::size_t n = std::min<std::size_t>(scored.size(), static_cast<std::size_t>(std::max(k, 0)));
    std::partial_sort(scored.begin(), scored.begin() + static_cast<std::ptrdiff_t>(n), scored.end(),
                      [](const VectorNeighbor& a, const VectorNeighbor& b) {
                          return a.score != b.score ? a.score > b.score : a.chunk_id < b.chunk_id;
                      });
    scored.resize(n);
    return scored;
}

void VectorIndex::save(const std::filesystem::path& file, std::uint64_t generation) const {
    faiss::VectorIOWriter payload;
    faiss::write_index(faiss_->index.get(), &payload);
    Header header{};
    std::memcpy(header.magic, kMagic, sizeof kMagic);
    header.format = kFormat;
    header.dimension = static_cast<std::uint32_t>(dimension_);
    header.generation = generation;
    header.count = static_cast<std::uint64_t>(faiss_->index->ntotal);
    header.payload_bytes = payload.data.size();
    header.payload_checksum = checksum(payload.data.data(), payload.data.size());

    const std::string temporary = file.string() + ".tmp";
    const int fd = ::open(temporary.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) throw VectorIndexError("cannot write " + temporary + ": " + std::strerror(errno));
    try {
        write_all(fd, &header, sizeof header, temporary);
        write_all(fd, payload.data.data(), payload.data.size(), temporary);
        if (::fsync(fd) != 0) throw VectorIndexError("cannot flush " + temporary + ": " + std::strerror(errno));
    } catch (...) {
        ::close(fd);
        ::unlink(temporary.c_str());
        throw;
    }
    ::close(fd);
    if (::rename(temporary.c_str(), file.c_str()) != 0) {
        const std::string reason = std::strerror(errno);
        ::unlink(temporary.c_str());
        throw VectorIndexError("cannot replace " + file.string() + ": " + reason);
    }
}

std::optional<VectorIndex> VectorIndex::load(const std::filesystem::path& file, std::uint64_t generation,
                                             int dimension) {
    std::ifstream in(file, std::ios::binary);
    if (!in) return std::nullopt;
    const std::vector<std::uint8_t> bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    Header header{};
    if (bytes.size() < sizeof header) return std::nullopt;
    std::memcpy(&header, bytes.data(), sizeof header);
    const std::uint8_t* payload = bytes.data() + sizeof header;
    const std::size_t payload_bytes = bytes.size() - sizeof header;
    if (std::memcmp(header.magic, kMagic, sizeof kMagic) != 0 || header.format != kFormat ||
        header.generation != generation || header.dimension != static_cast<std::uint32_t>(dimension) ||
        header.payload_bytes != payload_bytes || header.payload_checksum != checksum(payload, payload_bytes))
        return std::nullopt;
    try {
        faiss::VectorIOReader reader;
        reader.data.assign(payload, payload + payload_bytes);
        std::unique_ptr<faiss::Index> read(faiss::read_index(&reader));
        auto* map = dynamic_cast<faiss::IndexIDMap2*>(read.get());
        if (!map || map->d != dimension || static_cast<std::uint64_t>(map->ntotal) != header.count) return std::nullopt;
        read.release();
        map->own_fields = true;
        auto* ivf = dynamic_cast<faiss::IndexIVFFlat*>(map->index);
        if (ivf) {
            ivf->nprobe = std::min<std::size_t>(ivf->nlist, kIvfProbes);
            ivf->set_direct_map_type(faiss::DirectMap::Hashtable);
        }
        VectorIndex index(dimension);
        index.kind_ = ivf ? VectorIndexKind::Ivf : VectorIndexKind::Flat;
        index.faiss_->index.reset(map);
        return index;
    } catch (const faiss::FaissException&) {
        return std::nullopt;
    }
}

}  // namespace folio::index
