#include <QTest>

#include <bit>
#include <cmath>
#include <cstdint>
#include <limits>

#include "index/library_store.h"
#include "index/packed_boxes.h"

using namespace folio;
using folio::index::StoreError;

namespace {

std::span<const unsigned char> bytes_of(const std::string& blob) {
    return {reinterpret_cast<const unsigned char*>(blob.data()), blob.size()};
}

bool same_bits(float a, float b) { return std::bit_cast<std::uint32_t>(a) == std::bit_cast<std::uint32_t>(b); }

bool same_word(const ingest::Word& a, const ingest::Word& b) {
    return a.text == b.text && same_bits(a.box.x0, b.box.x0) && same_bits(a.box.y0, b.box.y0) &&
           same_bits(a.box.x1, b.box.x1) && same_bits(a.box.y1, b.box.y1) &&
           same_bits(a.confidence, b.confidence) && same_bits(a.font_size, b.font_size) && a.bold == b.bold &&
           a.space_after == b.space_after && a.line_end == b.line_end;
}

std::vector<ingest::Word> sample_words() {
    std::vector<ingest::Word> words;
    words.push_back({"Revenue", {72.48f, 101.5f, 120.25f, 112.0f}, -1, 10.5f, true, true, false});
    words.push_back({"Übersicht—净利润", {-3.5f, 0, 1e6f, 0.1f}, 87.25f, 0, false, false, true});
    words.push_back({"", {0, 0, 0, 0}, 0, 0, false, true, false});
    // 300 bytes: its length takes two LEB128 bytes.
    words.push_back({std::string(300, 'x'), {1, 2, 3, 4}, 99.5f, 7, true, false, true});
    words.push_back({"tiny", {std::numeric_limits<float>::denorm_min(), -0.0f, 5, 6}, 1, 2, false, true, true});
    return words;
}

}  // namespace

class PackedBoxesTest : public QObject {
    Q_OBJECT

private slots:
    void words_round_trip_bit_for_bit() {
        const std::vector<ingest::Word> words = sample_words();
        const std::string blob = index::pack_words(words);
        const std::vector<ingest::Word> back = index::unpack_words(bytes_of(blob));
        QCOMPARE(back.size(), words.size());
        for (std::size_t i = 0; i < words.size(); ++i)
            QVERIFY2(same_word(back[i], words[i]), qPrintable(QString::number(i)));
    }

    void word_size_is_fixed_part_plus_text() {
        const std::vector<ingest::Word> one = {{"Revenue", {72.48f, 101.5f, 120.25f, 112.0f}}};
        QCOMPARE(index::pack_words(one).size(), std::size_t(25 + 1 + 7));
    }

    void empty_lists_are_empty_blobs() {
        QVERIFY(index::pack_words({}).empty());
        QVERIFY(index::unpack_words({}).empty());
        QVERIFY(index::pack_page_boxes({}).empty());
        QVERIFY(index::unpack_page_boxes({}).empty());
    }

    void truncated_words_blob_is_refused() {
        const std::string blob = index::pack_words(sample_words());
        // Only the blob's own end is a word boundary; every shorter prefix
        // ending inside a word must be refused, never read past its end.
        std::size_t refused = 0;
        for (std::size_t length = 1; length < blob.size(); ++length) {
            try {
                index::unpack_words(bytes_of(blob.substr(0, length)));
            } catch (const StoreError& e) {
                QVERIFY(std::string(e.what()).find("damaged") != std::string::npos);
                ++refused;
            }
        }
        // Prefixes that end exactly after a whole word read back as fewer words.
        QCOMPARE(refused, blob.size() - 1 - (sample_words().size() - 1));
    }

    void page_boxes_round_trip_and_truncation_is_refused() {
        const std::vector<ingest::PageBox> boxes = {{1, {72.37f, 90.5f, 530.1f, 100.463f}},
                                                    {232, {0.125f, -1, 612, 792}}};
        const std::string blob = index::pack_page_boxes(boxes);
        QCOMPARE(blob.size(), std::size_t(40));
        const std::vector<ingest::PageBox> back = index::unpack_page_boxes(bytes_of(blob));
        QCOMPARE(back.size(), boxes.size());
        for (std::size_t i = 0; i < boxes.size(); ++i) {
            QCOMPARE(back[i].page, boxes[i].page);
            QVERIFY(same_bits(back[i].box.x0, boxes[i].box.x0) && same_bits(back[i].box.y0, boxes[i].box.y0) &&
                    same_bits(back[i].box.x1, boxes[i].box.x1) && same_bits(back[i].box.y1, boxes[i].box.y1));
        }
        QVERIFY_THROWS_EXCEPTION(StoreError, index::unpack_page_boxes(bytes_of(blob.substr(0, 27))));
    }
};

QTEST_GUILESS_MAIN(PackedBoxesTest)
#include "tst_packed_boxes.moc"
