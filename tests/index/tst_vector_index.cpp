#include <QFile>
#include <QTemporaryDir>
#include <QTest>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <random>
#include <vector>

#include "index/vector_index.h"

using namespace folio::index;

namespace {

constexpr int kDimension = 16;

// count unit vectors of kDimension, row-major, from a fixed seed.
std::vector<float> unit_vectors(int count, unsigned seed) {
    std::mt19937 random(seed);
    std::normal_distribution<float> normal;
    std::vector<float> vectors(static_cast<std::size_t>(count) * kDimension);
    for (int i = 0; i < count; ++i) {
        float norm = 0;
        for (int j = 0; j < kDimension; ++j) norm += std::pow(vectors[i * kDimension + j] = normal(random), 2.0f);
        for (int j = 0; j < kDimension; ++j) vectors[i * kDimension + j] /= std::sqrt(norm);
    }
    return vectors;
}

// The k best ids by inner product, computed directly.
std::vector<std::int64_t> brute_force(const std::vector<float>& vectors, const std::vector<std::int64_t>& ids,
                                      std::span<const float> query, int k) {
    std::vector<std::pair<float, std::int64_t>> scored;
    for (std::size_t i = 0; i < ids.size(); ++i) {
        float dot = 0;
        for (int j = 0; j < kDimension; ++j) dot += vectors[i * kDimension + j] * query[j];
        scored.push_back({-dot, ids[i]});
    }
    std::sort(scored.begin(), scored.end());
    std::vector<std::int64_t> best;
    for (int i = 0; i < k; ++i) best.push_back(scored[i].second);
    return best;
}

std::vector<std::int64_t> ids_of(const std::vector<VectorNeighbor>& neighbors) {
    std::vector<std::int64_t> ids;
    for (const VectorNeighbor& n : neighbors) ids.push_back(n.chunk_id);
    return ids;
}

}  // namespace

class VectorIndexTest : public QObject {
    Q_OBJECT

    std::vector<float> vectors_ = unit_vectors(500, 7);
    std::vector<std::int64_t> ids_;
    std::vector<float> queries_ = unit_vectors(20, 8);

    VectorIndex filled() {
        VectorIndex index(kDimension);
        index.add(ids_, vectors_);
        return index;
    }

private slots:
    void initTestCase() {
        for (int i = 0; i < 500; ++i) ids_.push_back(1000 + 3 * i);  // chunk ids are sparse
    }

    void searchIsExact() {
        const VectorIndex index = filled();
        QCOMPARE(index.size(), std::int64_t(500));
        for (int q = 0; q < 20; ++q) {
            const std::span<const float> query(queries_.data() + q * kDimension, kDimension);
            const std::vector<VectorNeighbor> found = index.search(query, 10);
            QCOMPARE(ids_of(found), brute_force(vectors_, ids_, query, 10));
            QVERIFY(std::is_sorted(found.begin(), found.end(),
                                   [](const VectorNeighbor& a, const VectorNeighbor& b) { return a.score > b.score; }));
        }
        // A stored vector is its own nearest neighbour, at similarity 1.
        const std::vector<VectorNeighbor> self = index.search({vectors_.data() + 42 * kDimension, kDimension}, 1);
        QCOMPARE(self[0].chunk_id, ids_[42]);
        QVERIFY(std::abs(self[0].score - 1.0f) < 1e-5f);
        QCOMPARE(index.search({queries_.data(), kDimension}, 1000).size(), std::size_t(500));
        QVERIFY(VectorIndex(kDimension).search({queries_.data(), kDimension}, 5).empty());
    }

    // IVF with 8 lists, all probed: the same neighbours as exact search;
    // remove() refuses (the library rebuilds instead); filters hold; it
    // survives a save and load as IVF.
    void ivfFindsTheSameNeighboursAndRemoves() {
        QCOMPARE(VectorIndex::for_size(kDimension, kApproximateThreshold - 1).kind(), VectorIndexKind::Flat);
        QCOMPARE(VectorIndex::for_size(kDimension, kApproximateThreshold).kind(), VectorIndexKind::Ivf);
        VectorIndex index(kDimension, VectorIndexKind::Ivf, 8);
        index.add(ids_, vectors_);
        for (int q = 0; q < 20; ++q) {
            const std::span<const float> query(queries_.data() + q * kDimension, kDimension);
            QCOMPARE(ids_of(index.search(query, 5)), brute_force(vectors_, ids_, query, 5));
        }
        const std::span<const float> query(queries_.data(), kDimension);
        QVERIFY_THROWS_EXCEPTION(VectorIndexError, index.remove(std::vector<std::int64_t>{ids_[0]}));
        const std::vector<std::int64_t> allowed = {ids_[10], ids_[20]};
        QCOMPARE(index.search(query, 5, &allowed).size(), std::size_t(2));
        QTemporaryDir dir;
        const std::filesystem::path file = (dir.path() + "/hnsw.faiss").toStdString();
        index.save(file, 3);
        const std::optional<VectorIndex> loaded = VectorIndex::load(file, 3, kDimension);
        QVERIFY(loaded);
        QCOMPARE(loaded->kind(), VectorIndexKind::Ivf);
        QCOMPARE(ids_of(loaded->search(query, 5)), ids_of(index.search(query, 5)));
    }

    void addReplacesAndRemoveDeletes() {
        VectorIndex index = filled();
        const std::span<const float> query(queries_.data(), kDimension);
        const std::int64_t best = index.search(query, 1)[0].chunk_id;
        QCOMPARE(index.remove(std::vector<std::int64_t>{best, 5}), std::size_t(1));
        QVERIFY(!index.contains(best));
        QCOMPARE(index.size(), std::int64_t(499));
        QVERIFY(index.search(query, 1)[0].chunk_id != best);
        // Give another chunk the query itself: it becomes the nearest, once.
        const std::int64_t other = ids_[3];
        index.add(std::vector<std::int64_t>{other}, std::vector<float>(query.begin(), query.end()));
        QCOMPARE(index.size(), std::int64_t(499));
        QCOMPARE(index.search(query, 1)[0].chunk_id, other);
        QVERIFY_THROWS_EXCEPTION(VectorIndexError, index.add(std::vector<std::int64_t>{1, 2}, vectors_));
        QVERIFY_THROWS_EXCEPTION(VectorIndexError, index.search(std::vector<float>(3), 1));
    }

    void savedIndexLoadsForItsGenerationOnly() {
        QTemporaryDir dir;
        const std::filesystem::path file = dir.filePath("vectors.faiss").toStdString();
        filled().save(file, 7);
        QVERIFY(!std::filesystem::exists(file.string() + ".tmp"));
        std::optional<VectorIndex> loaded = VectorIndex::load(file, 7, kDimension);
        QVERIFY(loaded);
        QCOMPARE(loaded->size(), std::int64_t(500));
        const std::span<const float> query(queries_.data(), kDimension);
        QCOMPARE(ids_of(loaded->search(query, 10)), brute_force(vectors_, ids_, query, 10));
        loaded->remove(std::vector<std::int64_t>{ids_[0]});  // still a working index
        QCOMPARE(loaded->size(), std::int64_t(499));

        QVERIFY(!VectorIndex::load(file, 8, kDimension));     // another generation
        QVERIFY(!VectorIndex::load(file, 7, kDimension * 2)); // another model
        QVERIFY(!VectorIndex::load(dir.filePath("absent").toStdString(), 7, kDimension));

        // Saving again replaces the file whole.
        VectorIndex(kDimension).save(file, 9);
        QCOMPARE(VectorIndex::load(file, 9, kDimension)->size(), std::int64_t(0));
    }

    void damagedFileIsRefused() {
        QTemporaryDir dir;
        const QString path = dir.filePath("vectors.faiss");
        filled().save(path.toStdString(), 1);
        QFile file(path);
        QVERIFY(file.open(QIODevice::ReadOnly));
        const QByteArray good = file.readAll();
        file.close();
        auto write = [&](const QByteArray& bytes) {
            QFile out(path);
            QVERIFY(out.open(QIODevice::WriteOnly | QIODevice::Truncate));
            out.write(bytes);
        };
        write(good.left(good.size() / 2));
        QVERIFY(!VectorIndex::load(path.toStdString(), 1, kDimension));
        write(good.left(20));
        QVERIFY(!VectorIndex::load(path.toStdString(), 1, kDimension));
        QByteArray flipped = good;
        flipped[flipped.size() - 100] = static_cast<char>(flipped[flipped.size() - 100] ^ 0x40);
        write(flipped);
        QVERIFY(!VectorIndex::load(path.toStdString(), 1, kDimension));
        write(QByteArray());
        QVERIFY(!VectorIndex::load(path.toStdString(), 1, kDimension));
        write(good);
        QVERIFY(VectorIndex::load(path.toStdString(), 1, kDimension));
    }

    void unwritableFolderIsAnError() {
        QVERIFY_THROWS_EXCEPTION(VectorIndexError, filled().save("/nonexistent-folder/vectors.faiss", 1));
    }
};

QTEST_GUILESS_MAIN(VectorIndexTest)
#include "tst_vector_index.moc"
