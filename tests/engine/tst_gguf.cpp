#include <QElapsedTimer>
#include <QTemporaryDir>
#include <QtTest>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <limits>
#include <random>
#include <string>
#include <system_error>
#include <vector>

#include "engine/ggml_types.h"
#include "engine/gguf.h"

using namespace folio::engine;

namespace {

// Hand-assembled GGUF bytes, for files GgufWriter refuses to produce.
class RawGguf {
public:
    RawGguf& u8(std::uint8_t value) { return append(value); }
    RawGguf& u32(std::uint32_t value) { return append(value); }
    RawGguf& u64(std::uint64_t value) { return append(value); }
    RawGguf& i32(std::int32_t value) { return append(value); }
    RawGguf& str(std::string_view text) {
        u64(text.size());
        bytes.insert(bytes.end(), text.begin(), text.end());
        return *this;
    }
    RawGguf& header(std::uint64_t n_tensors, std::uint64_t n_kv, std::uint32_t version = 3) {
        bytes.insert(bytes.end(), {'G', 'G', 'U', 'F'});
        return u32(version).u64(n_tensors).u64(n_kv);
    }
    RawGguf& key(std::string_view name, GgufValueType type) {
        return str(name).u32(static_cast<std::uint32_t>(type));
    }
    // name | n_dims | ne... | type | offset
    RawGguf& tensor_info(std::string_view name, std::vector<std::uint64_t> ne, std::uint32_t type,
                         std::uint64_t offset) {
        str(name).u32(static_cast<std::uint32_t>(ne.size()));
        for (const std::uint64_t extent : ne)
            u64(extent);
        return u32(type).u64(offset);
    }
    RawGguf& pad_to(std::size_t alignment) {
        bytes.resize((bytes.size() + alignment - 1) / alignment * alignment, 0);
        return *this;
    }
    RawGguf& zeros(std::size_t n) {
        bytes.resize(bytes.size() + n, 0);
        return *this;
    }
    std::size_t size() const { return bytes.size(); }

    std::vector<std::uint8_t> bytes;

private:
    template <class T>
    RawGguf& append(T value) {
        const auto* first = reinterpret_cast<const std::uint8_t*>(&value);
        bytes.insert(bytes.end(), first, first + sizeof value);
        return *this;
    }
};

constexpr std::uint32_t f32_id = 0;
constexpr std::uint64_t header_bytes = 24;  // magic, version, n_tensors, n_kv

std::string parse_error(std::vector<std::uint8_t> bytes) {
    try {
        GgufFile::parse(std::move(bytes), "test.gguf");
    } catch (const GgufError& error) {
        return error.what();
    }
    return {};
}

// The parse must fail with a one-line message that contains `fragment` and
// names byte `at`.
void expect_parse_error(std::vector<std::uint8_t> bytes, std::string_view fragment,
                        std::uint64_t at) {
    const std::string message = parse_error(std::move(bytes));
    QVERIFY2(!message.empty(), "parsed without an error");
    QVERIFY2(message.find(fragment) != std::string::npos, message.c_str());
    const std::string position = "(at byte " + std::to_string(at) + ")";
    QVERIFY2(message.find(position) != std::string::npos, (message + ", wanted " + position).c_str());
    QVERIFY2(message.find('\n') == std::string::npos, message.c_str());
    QVERIFY2(message.rfind("test.gguf: ", 0) == 0, message.c_str());
}

std::vector<std::uint8_t> random_bytes(std::size_t n, std::uint32_t seed) {
    std::mt19937 generator(seed);
    std::vector<std::uint8_t> bytes(n);
    for (std::uint8_t& byte : bytes)
        byte = static_cast<std::uint8_t>(generator());
    return bytes;
}

std::uint64_t bytes_of(GgmlType type, std::span<const std::int64_t> ne) {
    const auto layout = ggml_type_layout(static_cast<std::uint32_t>(type));
    std::uint64_t n = static_cast<std::uint64_t>(ne[0]) / layout->block_size * layout->type_size;
    for (std::size_t d = 1; d < ne.size(); ++d)
        n *= static_cast<std::uint64_t>(ne[d]);
    return n;
}

// A small file with metadata of several types and three tensors. The last
// tensor is 32 bytes, so no padding follows it: every shorter prefix of the
// file cuts into something the file needs.
std::vector<std::uint8_t> small_valid_file() {
    GgufWriter writer;
    writer.add_string("general.architecture", "llama");
    writer.add_u32("llama.context_length", 4096);
    writer.add_f32("llama.rope.freq_base", 10000.0f);
    writer.add_bool("general.quantized", true);
    writer.add_string_array("tokenizer.ggml.tokens", std::vector<std::string>{"<s>", "</s>", "a"});
    writer.add_array("tokenizer.ggml.token_type", std::vector<std::int32_t>{3, 3, 1});
    const std::vector<std::int64_t> embd{8, 3};
    const std::vector<std::int64_t> q{32, 2};
    const std::vector<std::int64_t> norm{8};
    writer.add_tensor("token_embd.weight", GgmlType::F16, embd, random_bytes(48, 1));
    writer.add_tensor("blk.0.attn_q.weight", GgmlType::Q8_0, q, random_bytes(68, 2));
    writer.add_tensor("output_norm.weight", GgmlType::F32, norm, random_bytes(32, 3));
    return writer.to_bytes();
}

void write_file(const std::filesystem::path& path, std::span<const std::uint8_t> bytes) {
    std::ofstream out(path, std::ios::binary | std::ios::trunc);
    out.write(reinterpret_cast<const char*>(bytes.data()),
              static_cast<std::streamsize>(bytes.size()));
    QVERIFY(out.good());
}

}  // namespace

class TestGguf : public QObject {
    Q_OBJECT

private slots:
    void ggmlTypeTableMatchesGgml();
    void metadataRoundTrip_data();
    void metadataRoundTrip();
    void nestedArraysRoundTrip();
    void tensorsRoundTrip_data();
    void tensorsRoundTrip();
    void customAlignment();
    void releasedPagesReadBackTheFile();
    void fileWithoutTensors();
    void largeVocabularyLoadsFast();
    void gettersReportKeyAndType();
    void unsupportedTensorTypeIsNamed();
    void writerRejectsMisuse();

    void badMagic();
    void unsupportedVersion_data();
    void unsupportedVersion();
    void countsLargerThanTheFile();
    void stringLengthOverflow();
    void arrayLengthOverflow();
    void arraysNestedTooDeep();
    void badValueTypes();
    void duplicateKey();
    void badAlignment();
    void badDimensions();
    void shapeOverflow();
    void badTensorTypes();
    void rowNotWholeBlocks();
    void tensorDataOutsideTheFile();
    void unalignedTensorOffset();
    void overlappingTensors();
    void duplicateTensorName();
    void truncationAtEveryByte();
    void fileOnDiskShorterThanItsHeader();
    void unreadableFiles();

    void fuzzSeedFiles();
    void realModelFile();
};

void TestGguf::ggmlTypeTableMatchesGgml() {
    // (id, name, block size, type size) from ggml.h and ggml-common.h.
    struct Expected {
        std::uint32_t id;
        const char* name;
        std::uint32_t block_size;
        std::uint32_t type_size;
        bool supported;
    };
    const Expected table[] = {
        {0, "F32", 1, 4, true},        {1, "F16", 1, 2, true},
        {2, "Q4_0", 32, 18, true},     {3, "Q4_1", 32, 20, true},
        {6, "Q5_0", 32, 22, true},     {7, "Q5_1", 32, 24, true},
        {8, "Q8_0", 32, 34, true},     {9, "Q8_1", 32, 36, true},
        {10, "Q2_K", 256, 84, true},   {11, "Q3_K", 256, 110, true},
        {12, "Q4_K", 256, 144, true},  {13, "Q5_K", 256, 176, true},
        {14, "Q6_K", 256, 210, true},  {15, "Q8_K", 256, 292, true},
        {16, "IQ2_XXS", 256, 66, false}, {17, "IQ2_XS", 256, 74, false},
        {18, "IQ3_XXS", 256, 98, false}, {19, "IQ1_S", 256, 50, false},
        {20, "IQ4_NL", 32, 18, false},   {21, "IQ3_S", 256, 110, false},
        {22, "IQ2_S", 256, 82, false},   {23, "IQ4_XS", 256, 136, false},
        {24, "I8", 1, 1, false},       {25, "I16", 1, 2, false},
        {26, "I32", 1, 4, false},      {27, "I64", 1, 8, false},
        {28, "F64", 1, 8, false},      {29, "IQ1_M", 256, 56, false},
        {30, "BF16", 1, 2, true},      {34, "TQ1_0", 256, 54, false},
        {35, "TQ2_0", 256, 66, false}, {39, "MXFP4", 32, 17, false},
        {40, "NVFP4", 64, 36, false},  {41, "Q1_0", 128, 18, false},
    };
    for (const Expected& expected : table) {
        const auto layout = ggml_type_layout(expected.id);
        QVERIFY2(layout.has_value(), expected.name);
        QCOMPARE(std::string(layout->name), std::string(expected.name));
        QCOMPARE(layout->block_size, expected.block_size);
        QCOMPARE(layout->type_size, expected.type_size);
        QCOMPARE(layout->supported, expected.supported);
        QCOMPARE(std::string(ggml_type_name(expected.id)), std::string(expected.name));
    }
    for (const std::uint32_t retired : {4u, 5u, 31u, 32u, 33u, 36u, 37u, 38u}) {
        QVERIFY(!ggml_type_layout(retired).has_value());
        QVERIFY(!ggml_type_name(retired).empty());
    }
    for (const std::uint32_t unknown : {42u, 1000u, 0xFFFFFFFFu}) {
        QVERIFY(!ggml_type_layout(unknown).has_value());
        QVERIFY(ggml_type_name(unknown).empty());
    }
    QCOMPARE(std::string(ggml_type_name(GgmlType::Q4_K)), std::string("Q4_K"));
}

void TestGguf::metadataRoundTrip_data() {
    QTest::addColumn<std::uint32_t>("version");
    QTest::addColumn<bool>("throughFile");
    QTest::newRow("v3 memory") << 3u << false;
    QTest::newRow("v3 file") << 3u << true;
    QTest::newRow("v2 memory") << 2u << false;
    QTest::newRow("v2 file") << 2u << true;
}

void TestGguf::metadataRoundTrip() {
    QFETCH(std::uint32_t, version);
    QFETCH(bool, throughFile);

    const std::string with_nul("a\0b", 3);
    GgufWriter writer(version);
    writer.add_string("general.architecture", "qwen2");
    writer.add_u8("t.u8", 255);
    writer.add_i8("t.i8", -128);
    writer.add_u16("t.u16", 65535);
    writer.add_i16("t.i16", -32768);
    writer.add_u32("t.u32", 4294967295u);
    writer.add_i32("t.i32", -2147483647 - 1);
    writer.add_u64("t.u64", std::numeric_limits<std::uint64_t>::max());
    writer.add_i64("t.i64", std::numeric_limits<std::int64_t>::min());
    writer.add_f32("t.f32", -1.5e-3f);
    writer.add_f64("t.f64", 3.141592653589793);
    writer.add_bool("t.true", true);
    writer.add_bool("t.false", false);
    writer.add_string("t.empty", "");
    writer.add_string("t.utf8", "Größe 数据");
    writer.add_string("t.nul", with_nul);
    writer.add_array("a.u8", std::vector<std::uint8_t>{0, 7, 255});
    writer.add_array("a.i8", std::vector<std::int8_t>{-128, 0, 127});
    writer.add_array("a.u16", std::vector<std::uint16_t>{1, 65535});
    writer.add_array("a.i16", std::vector<std::int16_t>{-32768, 32767});
    writer.add_array("a.u32", std::vector<std::uint32_t>{0, 4294967295u});
    writer.add_array("a.i32", std::vector<std::int32_t>{-5, 6});
    writer.add_array("a.u64", std::vector<std::uint64_t>{1, 1ull << 40});
    writer.add_array("a.i64", std::vector<std::int64_t>{std::numeric_limits<std::int64_t>::min(), 9});
    writer.add_array("a.f32", std::vector<float>{0.5f, -2.25f});
    writer.add_array("a.f64", std::vector<double>{0.1, -2.5});
    writer.add_array("a.bool", std::vector<bool>{true, false, true});
    writer.add_string_array("a.string", std::vector<std::string>{"x", "", "yz"});
    writer.add_array("a.empty", std::vector<float>{});

    QTemporaryDir directory;
    QVERIFY(directory.isValid());
    const std::filesystem::path path = directory.filePath("metadata.gguf").toStdString();
    GgufFile file = [&] {
        if (!throughFile)
            return GgufFile::parse(writer.to_bytes());
        writer.write(path);
        return GgufFile::open(path);
    }();

    QCOMPARE(file.version(), version);
    QCOMPARE(file.metadata().size(), std::size_t{29});
    QCOMPARE(std::string(file.metadata()[1].key), std::string("t.u8"));
    QCOMPARE(file.metadata()[0].file_offset, header_bytes);
    QCOMPARE(std::string(file.architecture()), std::string("qwen2"));
    QCOMPARE(file.alignment(), 32u);
    QVERIFY(file.tensors().empty());

    QCOMPARE(file.find("t.u8")->type, GgufValueType::U8);
    QCOMPARE(file.get_u32("t.u8"), 255u);
    QCOMPARE(file.get_i32("t.i8"), -128);
    QCOMPARE(file.get_u32("t.u16"), 65535u);
    QCOMPARE(file.get_i32("t.i16"), -32768);
    QCOMPARE(file.get_u32("t.u32"), 4294967295u);
    QCOMPARE(file.get_i32("t.i32"), std::numeric_limits<std::int32_t>::min());
    QCOMPARE(file.get_u64("t.u64"), std::numeric_limits<std::uint64_t>::max());
    QCOMPARE(file.get_i64("t.i64"), std::numeric_limits<std::int64_t>::min());
    QCOMPARE(file.find("t.f32")->type, GgufValueType::F32);
    QCOMPARE(file.get_f32("t.f32"), -1.5e-3f);
    QCOMPARE(std::get<double>(file.find("t.f64")->data), 3.141592653589793);
    QCOMPARE(file.get_bool("t.true"), true);
    QCOMPARE(file.get_bool("t.false"), false);
    QCOMPARE(std::string(file.get_string("t.empty")), std::string());
    QCOMPARE(std::string(file.get_string("t.utf8")), std::string("Größe 数据"));
    QCOMPARE(std::string(file.get_string("t.nul")), with_nul);

    QCOMPARE(file.get_int_array("a.u8"), (std::vector<std::int64_t>{0, 7, 255}));
    QCOMPARE(file.get_int_array("a.i8"), (std::vector<std::int64_t>{-128, 0, 127}));
    QCOMPARE(file.get_int_array("a.u16"), (std::vector<std::int64_t>{1, 65535}));
    QCOMPARE(file.get_int_array("a.i16"), (std::vector<std::int64_t>{-32768, 32767}));
    QCOMPARE(file.get_int_array("a.u32"), (std::vector<std::int64_t>{0, 4294967295ll}));
    QCOMPARE(file.get_int_array("a.i32"), (std::vector<std::int64_t>{-5, 6}));
    QCOMPARE(file.get_int_array("a.u64"), (std::vector<std::int64_t>{1, 1ll << 40}));
    QCOMPARE(file.get_int_array("a.i64"),
             (std::vector<std::int64_t>{std::numeric_limits<std::int64_t>::min(), 9}));
    QCOMPARE(file.get_float_array("a.f32"), (std::vector<float>{0.5f, -2.25f}));
    QCOMPARE(file.get_float_array("a.f64"), (std::vector<float>{0.1f, -2.5f}));
    QCOMPARE(std::get<double>(std::get<GgufArray>(file.find("a.f64")->data).element(0).data), 0.1);
    const auto& bools = std::get<GgufArray>(file.find("a.bool")->data);
    QCOMPARE(bools.element_type, GgufValueType::Bool);
    QCOMPARE(bools.size, std::uint64_t{3});
    QCOMPARE(std::get<bool>(bools.element(0).data), true);
    QCOMPARE(std::get<bool>(bools.element(1).data), false);
    QCOMPARE(std::get<bool>(bools.element(2).data), true);
    const auto strings = file.get_string_array("a.string");
    QCOMPARE(strings.size(), std::size_t{3});
    QCOMPARE(std::string(strings[0]), std::string("x"));
    QCOMPARE(std::string(strings[1]), std::string());
    QCOMPARE(std::string(strings[2]), std::string("yz"));
    QVERIFY(file.get_float_array("a.empty").empty());
    QCOMPARE(std::get<std::int64_t>(std::get<GgufArray>(file.find("a.i16")->data).element(1).data),
             std::int64_t{32767});

    // Copying every value into a new writer reproduces the file byte for byte.
    GgufWriter copy(version);
    for (const GgufKeyValue& entry : file.metadata())
        copy.add_value(std::string(entry.key), entry.value);
    QVERIFY(copy.to_bytes() == writer.to_bytes());
}

void TestGguf::nestedArraysRoundTrip() {
    // [[1, 2], [], [3]] of i32 and [["a"], ["b", "c"]] of string, built by hand.
    RawGguf raw;
    raw.header(0, 2);
    raw.key("nested.ints", GgufValueType::Array).u32(9).u64(3);
    raw.u32(5).u64(2).i32(1).i32(2);
    raw.u32(5).u64(0);
    raw.u32(5).u64(1).i32(3);
    raw.key("nested.strings", GgufValueType::Array).u32(9).u64(2);
    raw.u32(8).u64(1).str("a");
    raw.u32(8).u64(2).str("b").str("c");

    const GgufFile file = GgufFile::parse(raw.bytes);
    const auto& outer = std::get<GgufArray>(file.find("nested.ints")->data);
    QCOMPARE(outer.element_type, GgufValueType::Array);
    QCOMPARE(outer.arrays.size(), std::size_t{3});
    const auto& first = std::get<GgufArray>(outer.arrays[0].data);
    QCOMPARE(first.element_type, GgufValueType::I32);
    QCOMPARE(std::get<std::int64_t>(first.element(1).data), std::int64_t{2});
    QCOMPARE(std::get<GgufArray>(outer.arrays[1].data).size, std::uint64_t{0});
    QCOMPARE(std::get<GgufArray>(outer.element(2).data).size, std::uint64_t{1});
    const auto& strings = std::get<GgufArray>(file.find("nested.strings")->data);
    QCOMPARE(std::string(std::get<GgufArray>(strings.arrays[1].data).strings[1]), std::string("c"));

    const std::string message = [&] {
        try {
            file.get_int_array("nested.ints");
        } catch (const GgufError& error) {
            return std::string(error.what());
        }
        return std::string();
    }();
    QVERIFY2(message.find("nested.ints is a array of array, expected array of integers") !=
                 std::string::npos,
             message.c_str());

    GgufWriter writer;
    writer.add_value("nested.ints", *file.find("nested.ints"));
    writer.add_value("nested.strings", *file.find("nested.strings"));
    QVERIFY(writer.to_bytes() == raw.bytes);
}

void TestGguf::tensorsRoundTrip_data() {
    QTest::addColumn<std::uint32_t>("version");
    QTest::addColumn<bool>("throughFile");
    QTest::newRow("v3 memory") << 3u << false;
    QTest::newRow("v3 file") << 3u << true;
    QTest::newRow("v2 file") << 2u << true;
}

void TestGguf::tensorsRoundTrip() {
    QFETCH(std::uint32_t, version);
    QFETCH(bool, throughFile);

    struct Spec {
        const char* name;
        GgmlType type;
        std::vector<std::int64_t> ne;
    };
    const std::vector<Spec> specs = {
        {"token_embd.weight", GgmlType::Q4_K, {512, 7}},
        {"output_norm.weight", GgmlType::F32, {5}},
        {"blk.0.attn_q.weight", GgmlType::Q8_0, {64, 3, 2}},
        {"blk.0.attn_k.weight", GgmlType::F16, {3, 1, 2, 5}},
        {"blk.0.ffn_up.weight", GgmlType::Q6_K, {256, 2}},
        {"blk.0.ffn_down.weight", GgmlType::Q4_0, {32, 1}},
        {"blk.0.ffn_gate.weight", GgmlType::BF16, {7, 3}},
        {"blk.0.attn_v.weight", GgmlType::Q2_K, {256}},
        {"blk.0.attn_output.weight", GgmlType::Q5_1, {96, 2}},
        {"blk.0.iq.weight", GgmlType::IQ2_XXS, {256, 1}},
    };
    GgufWriter writer(version);
    writer.add_string("general.architecture", "llama");
    std::vector<std::vector<std::uint8_t>> contents;
    for (std::size_t i = 0; i < specs.size(); ++i) {
        contents.push_back(random_bytes(bytes_of(specs[i].type, specs[i].ne),
                                        static_cast<std::uint32_t>(i)));
        writer.add_tensor(specs[i].name, specs[i].type, specs[i].ne, contents.back());
    }

    QTemporaryDir directory;
    QVERIFY(directory.isValid());
    const std::filesystem::path path = directory.filePath("tensors.gguf").toStdString();
    const GgufFile file = [&] {
        if (!throughFile)
            return GgufFile::parse(writer.to_bytes());
        writer.write(path);
        return GgufFile::open(path);
    }();

    QCOMPARE(file.tensors().size(), specs.size());
    QCOMPARE(file.data_offset() % 32, std::uint64_t{0});
    const std::uint8_t* file_start = file.tensors()[0].data.data() - file.data_offset();
    for (std::size_t i = 0; i < specs.size(); ++i) {
        const GgufTensor& tensor = file.tensors()[i];
        QCOMPARE(std::string(tensor.name), std::string(specs[i].name));
        QCOMPARE(&file.tensor(specs[i].name), &tensor);
        QCOMPARE(tensor.type, specs[i].type);
        QCOMPARE(tensor.n_dims, static_cast<std::uint32_t>(specs[i].ne.size()));
        std::int64_t n_elements = 1;
        for (std::size_t d = 0; d < 4; ++d) {
            const std::int64_t extent = d < specs[i].ne.size() ? specs[i].ne[d] : 1;
            QCOMPARE(tensor.ne[d], extent);
            n_elements *= extent;
        }
        QCOMPARE(tensor.n_elements(), n_elements);
        QCOMPARE(tensor.n_bytes(), std::uint64_t{contents[i].size()});
        QCOMPARE(tensor.row_bytes, bytes_of(specs[i].type, std::span(specs[i].ne).first(1)));
        QCOMPARE(tensor.offset % 32, std::uint64_t{0});
        QCOMPARE(tensor.data.data(), file_start + file.data_offset() + tensor.offset);
        QVERIFY(std::equal(tensor.data.begin(), tensor.data.end(), contents[i].begin()));
    }
    QCOMPARE(file.tensor("token_embd.weight").row_bytes, std::uint64_t{2 * 144});
    QCOMPARE(std::string(file.tensor("blk.0.iq.weight").type_name()), std::string("IQ2_XXS"));
    QVERIFY(file.find_tensor("missing.weight") == nullptr);
    // Padded after the last tensor too, as ggml writes it.
    const GgufTensor& last = file.tensors().back();
    QCOMPARE(file.file_size(), (file.data_offset() + last.offset + last.n_bytes() + 31) / 32 * 32);
}

// A mapped tensor's pages let go (the model does so for rows it has
// regrouped) read back the file's bytes; a range reaching past the mapping,
// and a file parsed from memory, are left be.
void TestGguf::releasedPagesReadBackTheFile() {
    const std::int64_t ne[] = {256, 1024};  // 1 MiB of f32
    const std::vector<std::uint8_t> contents = random_bytes(256 * 1024 * 4, 5);
    GgufWriter writer;
    writer.add_string("general.architecture", "llama");
    writer.add_tensor("blk.0.ffn_up.weight", GgmlType::F32, ne, contents);
    QTemporaryDir directory;
    QVERIFY(directory.isValid());
    const std::filesystem::path path = directory.filePath("release.gguf").toStdString();
    writer.write(path);
    for (const GgufFile& file : {GgufFile::open(path), GgufFile::parse(writer.to_bytes())}) {
        const GgufTensor& tensor = file.tensor("blk.0.ffn_up.weight");
        QVERIFY(std::equal(tensor.data.begin(), tensor.data.end(), contents.begin()));
        file.release_pages(tensor.data);
        QVERIFY(std::equal(tensor.data.begin(), tensor.data.end(), contents.begin()));
        file.release_pages({tensor.data.data() + 1000, tensor.data.size()});  // past the end of the file
        QVERIFY(std::equal(tensor.data.begin(), tensor.data.end(), contents.begin()));
    }
}

void TestGguf::customAlignment() {
    for (const std::uint32_t alignment : {1u, 64u, 4096u}) {
        GgufWriter writer;
        writer.add_u32("general.alignment", alignment);
        const std::vector<std::int64_t> ne{3};
        writer.add_tensor("a", GgmlType::F32, ne, random_bytes(12, 1));
        writer.add_tensor("b", GgmlType::F32, ne, random_bytes(12, 2));
        const GgufFile file = GgufFile::parse(writer.to_bytes());
        QCOMPARE(file.alignment(), alignment);
        QCOMPARE(file.data_offset() % alignment, std::uint64_t{0});
        QCOMPARE(file.tensor("b").offset, (12 + std::uint64_t{alignment} - 1) / alignment * alignment);
    }
}

void TestGguf::fileWithoutTensors() {
    // A vocabulary-only file may end right after its metadata, with no padding.
    RawGguf raw;
    raw.header(0, 1).key("general.architecture", GgufValueType::String).str("llama");
    const GgufFile file = GgufFile::parse(raw.bytes);
    QVERIFY(file.tensors().empty());
    QCOMPARE(file.file_size(), std::uint64_t{raw.size()});

    const GgufFile empty = GgufFile::parse(RawGguf().header(0, 0).bytes);
    QVERIFY(empty.metadata().empty());

    // The writer adds no padding when no data section follows, whatever the alignment.
    GgufWriter writer;
    writer.add_u32("general.alignment", 1u << 31);
    const std::vector<std::uint8_t> bytes = writer.to_bytes();
    QCOMPARE(bytes.size(), std::size_t{header_bytes + 8 + 17 + 4 + 4});
    QCOMPARE(GgufFile::parse(bytes).alignment(), 1u << 31);
}

void TestGguf::largeVocabularyLoadsFast() {
    std::vector<std::string> tokens;
    tokens.reserve(150000);
    for (int i = 0; i < 150000; ++i)
        tokens.push_back("tok" + std::to_string(i));
    std::vector<float> scores(tokens.size(), -1.0f);
    std::vector<std::int32_t> types(tokens.size(), 1);
    GgufWriter writer;
    writer.add_string_array("tokenizer.ggml.tokens", tokens);
    writer.add_array("tokenizer.ggml.scores", scores);
    writer.add_array("tokenizer.ggml.token_type", types);
    std::vector<std::uint8_t> bytes = writer.to_bytes();

    QElapsedTimer timer;
    timer.start();
    const GgufFile file = GgufFile::parse(std::move(bytes));
    const auto vocabulary = file.get_string_array("tokenizer.ggml.tokens");
    const qint64 elapsed_ms = timer.elapsed();
    QCOMPARE(vocabulary.size(), tokens.size());
    QCOMPARE(std::string(vocabulary[149999]), std::string("tok149999"));
    // A view of the parsed strings, not a copy made per call.
    QCOMPARE(file.get_string_array("tokenizer.ggml.tokens").data(), vocabulary.data());
    QCOMPARE(file.get_float_array("tokenizer.ggml.scores").size(), tokens.size());
    QCOMPARE(file.get_int_array("tokenizer.ggml.token_type")[1234], std::int64_t{1});
    // Linear work takes a few milliseconds; the bound only catches quadratic work.
    QVERIFY2(elapsed_ms < 2000, qPrintable(QString::number(elapsed_ms) + " ms"));
}

void TestGguf::gettersReportKeyAndType() {
    GgufWriter writer;
    writer.add_string("name", "x");
    writer.add_u64("big", 1ull << 40);
    writer.add_i32("negative", -1);
    writer.add_u8("small", 7);
    writer.add_f64("huge", 1e300);
    writer.add_f64("double", 0.25);
    writer.add_array("floats", std::vector<float>{1.0f});
    writer.add_array("too_big", std::vector<std::uint64_t>{1ull << 63});
    const GgufFile file = GgufFile::parse(writer.to_bytes(), "model.gguf");

    const auto error_of = [](auto&& call) {
        try {
            call();
        } catch (const GgufError& error) {
            return std::string(error.what());
        }
        return std::string("no error");
    };
    QCOMPARE(error_of([&] { file.get_u32("name"); }),
             std::string("model.gguf: metadata key name is a string, expected u32"));
    QCOMPARE(error_of([&] { file.get_string("small"); }),
             std::string("model.gguf: metadata key small is a u8, expected string"));
    QCOMPARE(error_of([&] { file.get_u32("missing"); }),
             std::string("model.gguf: missing metadata key missing (u32)"));
    QCOMPARE(error_of([&] { file.get_u32("big"); }),
             std::string("model.gguf: metadata key big = 1099511627776 does not fit in u32"));
    QCOMPARE(error_of([&] { file.get_u64("negative"); }),
             std::string("model.gguf: metadata key negative = -1 does not fit in u64"));
    QCOMPARE(error_of([&] { file.get_bool("small"); }),
             std::string("model.gguf: metadata key small is a u8, expected bool"));
    QCOMPARE(error_of([&] { file.get_f32("small"); }),
             std::string("model.gguf: metadata key small is a u8, expected f32"));
    QVERIFY(error_of([&] { file.get_f32("huge"); }).find("does not fit in f32") != std::string::npos);
    QCOMPARE(error_of([&] { file.get_string_array("floats"); }),
             std::string("model.gguf: metadata key floats is a array of f32, expected array of string"));
    QCOMPARE(error_of([&] { file.get_int_array("floats"); }),
             std::string("model.gguf: metadata key floats is a array of f32, expected array of integers"));
    QVERIFY(error_of([&] { file.get_int_array("too_big"); }).find("too_big[0]") != std::string::npos);
    QCOMPARE(error_of([&] { file.tensor("output.weight"); }),
             std::string("model.gguf: no tensor named output.weight"));
    QCOMPARE(error_of([&] { file.architecture(); }),
             std::string("model.gguf: missing metadata key general.architecture (string)"));
    // A fallback covers a missing key, never a wrong type.
    QCOMPARE(error_of([&] { file.get_u32("name", 3); }),
             std::string("model.gguf: metadata key name is a string, expected u32"));

    QCOMPARE(file.get_u32("small"), 7u);
    QCOMPARE(file.get_i64("small"), std::int64_t{7});
    QCOMPARE(file.get_i32("negative"), -1);
    QCOMPARE(file.get_f32("double"), 0.25f);
    QCOMPARE(file.get_u32("missing", 11), 11u);
    QCOMPARE(file.get_f32("missing", 0.5f), 0.5f);
    QCOMPARE(file.get_bool("missing", true), true);
    QCOMPARE(std::string(file.get_string("missing", "fallback")), std::string("fallback"));
    QCOMPARE(std::string(file.get_string("name", "fallback")), std::string("x"));
    QVERIFY(!file.find_u32("missing").has_value());
    QVERIFY(!file.find_string_array("missing").has_value());
    QVERIFY(!file.find_float_array("missing").has_value());
    QVERIFY(!file.find_int_array("missing").has_value());
    QCOMPARE(*file.find_u64("big"), std::uint64_t{1} << 40);
    QCOMPARE(file.find_float_array("floats")->size(), std::size_t{1});
}

void TestGguf::unsupportedTensorTypeIsNamed() {
    GgufWriter writer;
    const std::vector<std::int64_t> ne{256, 2};
    writer.add_tensor("blk.0.attn_q.weight", GgmlType::IQ2_XXS, ne, random_bytes(132, 1));
    writer.add_tensor("blk.0.attn_k.weight", GgmlType::Q4_K, ne, random_bytes(288, 2));
    const GgufFile file = GgufFile::parse(writer.to_bytes());
    try {
        file.tensor("blk.0.attn_q.weight").require_supported_type();
        QFAIL("IQ2_XXS accepted");
    } catch (const GgufError& error) {
        QCOMPARE(std::string(error.what()),
                 std::string("tensor blk.0.attn_q.weight has type IQ2_XXS, which Folio does not "
                             "support yet"));
    }
    file.tensor("blk.0.attn_k.weight").require_supported_type();
}

void TestGguf::writerRejectsMisuse() {
    const auto rejects = [](auto&& call, std::string_view fragment) {
        try {
            call();
        } catch (const GgufError& error) {
            return std::string_view(error.what()).find(fragment) != std::string_view::npos;
        }
        return false;
    };
    GgufWriter writer;
    writer.add_u32("a", 1);
    QVERIFY(rejects([&] { writer.add_string("a", "again"); }, "duplicate metadata key a"));
    QVERIFY(rejects([&] { writer.add_u32("general.alignment", 0); }, "not a power of two"));
    QVERIFY(rejects([&] { writer.add_u32("general.alignment", 48); }, "not a power of two"));
    QVERIFY(rejects([&] { writer.add_u64("general.alignment", 64); }, "must be a u32"));
    const std::vector<std::int64_t> q4{33};
    QVERIFY(rejects([&] { writer.add_tensor("t", GgmlType::Q4_0, q4, {}); },
                    "not a multiple of the Q4_0 block size 32"));
    const std::vector<std::int64_t> f32{4};
    QVERIFY(rejects([&] { writer.add_tensor("t", GgmlType::F32, f32, random_bytes(15, 1)); },
                    "data is 15 bytes, shape [4] of F32 needs 16"));
    const std::vector<std::int64_t> five{1, 1, 1, 1, 1};
    QVERIFY(rejects([&] { writer.add_tensor("t", GgmlType::F32, five, random_bytes(4, 1)); },
                    "5 dimensions"));
    const std::vector<std::int64_t> zero{4, 0};
    QVERIFY(rejects([&] { writer.add_tensor("t", GgmlType::F32, zero, {}); }, "extent below 1"));
    writer.add_tensor("t", GgmlType::F32, f32, random_bytes(16, 1));
    QVERIFY(rejects([&] { writer.add_tensor("t", GgmlType::F32, f32, random_bytes(16, 1)); },
                    "duplicate tensor name t"));
    QVERIFY(rejects([] { GgufWriter(1); }, "cannot write GGUF version 1"));
    GgufArray short_array;
    short_array.element_type = GgufValueType::U32;
    short_array.size = 2;
    QVERIFY(rejects([&] { writer.add_value("b", {GgufValueType::Array, short_array}); },
                    "array of 2 u32 holds 0"));
    QVERIFY(rejects([&] { writer.add_value("c", {GgufValueType::U8, std::uint64_t{256}}); },
                    "does not hold a u8"));
    // Rejected calls leave the writer as it was.
    const GgufFile file = GgufFile::parse(writer.to_bytes());
    QCOMPARE(file.metadata().size(), std::size_t{1});
    QCOMPARE(file.tensors().size(), std::size_t{1});
    QCOMPARE(file.alignment(), 32u);
}

void TestGguf::badMagic() {
    std::vector<std::uint8_t> bytes = RawGguf().header(0, 0).bytes;
    bytes[3] = 'G';
    expect_parse_error(bytes, "not a GGUF file", 0);
    expect_parse_error({}, "not a GGUF file", 0);
    expect_parse_error({'G', 'G', 'U'}, "not a GGUF file", 0);
}

void TestGguf::unsupportedVersion_data() {
    QTest::addColumn<std::uint32_t>("version");
    QTest::addColumn<QString>("fragment");
    QTest::newRow("0") << 0u << "GGUF version 0 is not supported";
    QTest::newRow("1") << 1u << "GGUF version 1 is not supported (Folio reads versions 2 and 3)";
    QTest::newRow("4") << 4u << "GGUF version 4 is not supported";
    QTest::newRow("max") << 0xFFFFFFFFu << "GGUF version 4294967295 is not supported";
    QTest::newRow("big-endian 3") << 0x03000000u << "big-endian GGUF files are not supported";
}

void TestGguf::unsupportedVersion() {
    QFETCH(std::uint32_t, version);
    QFETCH(QString, fragment);
    expect_parse_error(RawGguf().header(0, 0, version).bytes, fragment.toStdString(), 4);
}

void TestGguf::countsLargerThanTheFile() {
    expect_parse_error(RawGguf().header(0, std::numeric_limits<std::uint64_t>::max()).bytes,
                       "metadata count 18446744073709551615 is more than the 0 bytes left", 16);
    expect_parse_error(RawGguf().header(std::numeric_limits<std::uint64_t>::max(), 0).bytes,
                       "tensor count 18446744073709551615 is more than the 0 bytes left", 8);
    // Counts that would fit a naive bound on either one alone but not both.
    RawGguf raw;
    raw.header(2, 1).key("k", GgufValueType::U8).u8(0).zeros(40);
    expect_parse_error(raw.bytes, "tensor count 2 is more than the", 8);
    expect_parse_error(RawGguf().header(1u << 30, 1u << 30).zeros(64).bytes,
                       "metadata count 1073741824", 16);
}

void TestGguf::stringLengthOverflow() {
    const std::uint64_t max = std::numeric_limits<std::uint64_t>::max();
    RawGguf key;
    key.header(0, 1).u64(max).zeros(16);
    expect_parse_error(key.bytes, "metadata key length 18446744073709551615 exceeds the 16 bytes left",
                       header_bytes);

    RawGguf value;
    value.header(0, 1).key("general.name", GgufValueType::String);
    const std::uint64_t value_at = value.size();
    value.u64(max - 7).zeros(4);
    expect_parse_error(value.bytes, "metadata key general.name: string value length", value_at);

    RawGguf name;
    name.header(1, 0);
    const std::uint64_t name_at = name.size();
    name.u64(1ull << 62).zeros(40);
    expect_parse_error(name.bytes, "tensor name length 4611686018427387904 exceeds", name_at);
}

void TestGguf::arrayLengthOverflow() {
    // 2^61 u64 elements: 2^64 bytes, which wraps to 0 in unchecked arithmetic.
    RawGguf wraps;
    wraps.header(0, 1).key("a", GgufValueType::Array);
    const std::uint64_t array_at = wraps.size();
    wraps.u32(static_cast<std::uint32_t>(GgufValueType::U64)).u64(1ull << 61).zeros(8);
    expect_parse_error(wraps.bytes, "array of 2305843009213693952 u64 is longer than the 8 bytes",
                       array_at);

    RawGguf strings;
    strings.header(0, 1).key("tokenizer.ggml.tokens", GgufValueType::Array);
    const std::uint64_t strings_at = strings.size();
    strings.u32(static_cast<std::uint32_t>(GgufValueType::String))
        .u64(std::numeric_limits<std::uint64_t>::max())
        .str("a");
    expect_parse_error(strings.bytes, "array of 18446744073709551615 string", strings_at);

    // A count that fits the file but whose last string runs past its end.
    RawGguf short_strings;
    short_strings.header(0, 1).key("t", GgufValueType::Array);
    short_strings.u32(static_cast<std::uint32_t>(GgufValueType::String)).u64(3).str("a").str("b");
    const std::uint64_t third_at = short_strings.size();
    short_strings.u64(1000).zeros(20);
    expect_parse_error(short_strings.bytes, "array string length 1000 exceeds the 20 bytes left",
                       third_at);
}

void TestGguf::arraysNestedTooDeep() {
    const auto nested = [](int depth) {
        RawGguf raw;
        raw.header(0, 1).key("deep", GgufValueType::Array);
        for (int level = 1; level < depth; ++level)
            raw.u32(static_cast<std::uint32_t>(GgufValueType::Array)).u64(1);
        raw.u32(static_cast<std::uint32_t>(GgufValueType::U8)).u64(1).u8(7);
        return raw.bytes;
    };
    QCOMPARE(std::get<GgufArray>(GgufFile::parse(nested(8)).find("deep")->data).size,
             std::uint64_t{1});
    const std::uint64_t ninth_at = header_bytes + 8 + 4 + 4 + 8 * 12;
    expect_parse_error(nested(9), "arrays nested more than 8 deep", ninth_at);
    // Deep enough to overflow the stack of an unbounded recursive parser.
    expect_parse_error(nested(200000), "arrays nested more than 8 deep", ninth_at);
}

void TestGguf::badValueTypes() {
    RawGguf scalar;
    scalar.header(0, 1).str("k");
    scalar.u32(13).u8(0);
    expect_parse_error(scalar.bytes, "metadata key k: value type 13 is not a GGUF value type",
                       header_bytes + 9);

    RawGguf element;
    element.header(0, 1).key("k", GgufValueType::Array);
    element.u32(0xFFFFFFFF).u64(0);
    expect_parse_error(element.bytes, "array element type 4294967295 is not a GGUF value type",
                       header_bytes + 13);
}

void TestGguf::duplicateKey() {
    RawGguf raw;
    raw.header(0, 2).key("general.name", GgufValueType::U8).u8(1);
    const std::uint64_t second_at = raw.size();
    raw.key("general.name", GgufValueType::U8).u8(2);
    expect_parse_error(raw.bytes, "duplicate metadata key general.name", second_at);
}

void TestGguf::badAlignment() {
    const auto with_alignment = [](GgufValueType type, std::uint64_t value) {
        RawGguf raw;
        raw.header(0, 1).key("general.alignment", type);
        if (type == GgufValueType::U64)
            raw.u64(value);
        else
            raw.u32(static_cast<std::uint32_t>(value));
        return raw.bytes;
    };
    expect_parse_error(with_alignment(GgufValueType::U32, 0),
                       "general.alignment 0 is not a power of two", header_bytes);
    expect_parse_error(with_alignment(GgufValueType::U32, 48),
                       "general.alignment 48 is not a power of two", header_bytes);
    expect_parse_error(with_alignment(GgufValueType::U64, 32),
                       "general.alignment is a u64, expected u32", header_bytes);
    QCOMPARE(GgufFile::parse(with_alignment(GgufValueType::U32, 1u << 31)).alignment(), 1u << 31);
}

void TestGguf::badDimensions() {
    const auto tensor_file = [](std::vector<std::uint64_t> ne) {
        RawGguf raw;
        raw.header(1, 0).tensor_info("w", std::move(ne), f32_id, 0).pad_to(32).zeros(64);
        return raw.bytes;
    };
    const std::uint64_t dims_at = header_bytes + 9;
    const std::uint64_t ne_at = dims_at + 4;
    expect_parse_error(tensor_file({1, 1, 1, 1, 1}), "tensor w: has 5 dimensions; Folio reads 1 to 4",
                       dims_at);
    expect_parse_error(tensor_file({}), "tensor w: has 0 dimensions", dims_at);
    expect_parse_error(tensor_file({4, std::numeric_limits<std::uint64_t>::max()}),
                       "ne[1] = -1 is negative", ne_at + 8);
    expect_parse_error(tensor_file({1ull << 63}), "ne[0] = -9223372036854775808 is negative", ne_at);
    expect_parse_error(tensor_file({4, 0}), "ne[1] is 0; every dimension must be at least 1",
                       ne_at + 8);

    RawGguf huge_dims;
    huge_dims.header(1, 0).str("w").u32(0xFFFFFFFF).zeros(64);
    expect_parse_error(huge_dims.bytes, "has 4294967295 dimensions", dims_at);
}

void TestGguf::shapeOverflow() {
    const auto tensor_file = [](std::vector<std::uint64_t> ne, std::uint32_t type) {
        RawGguf raw;
        raw.header(1, 0).tensor_info("w", std::move(ne), type, 0).pad_to(32).zeros(64);
        return raw.bytes;
    };
    const std::uint64_t ne_at = header_bytes + 9 + 4;
    // 2^32 × 2^32 elements: the element count wraps int64.
    expect_parse_error(tensor_file({1ull << 32, 1ull << 32}, f32_id),
                       "shape [4294967296, 4294967296] has more elements than an int64 counts", ne_at);
    expect_parse_error(tensor_file({1ull << 62, 2, 2, 2}, f32_id), "more elements than an int64",
                       ne_at);
    // 2^62 F32 elements fit int64, their 2^64 bytes do not fit u64.
    expect_parse_error(tensor_file({1ull << 31, 1ull << 31}, f32_id),
                       "shape [2147483648, 2147483648] of F32 overflows a 64-bit byte size", ne_at);
    // A byte size that fits u64 but not the file.
    expect_parse_error(tensor_file({1ull << 20, 1ull << 20}, f32_id), "runs past the end of the file",
                       header_bytes);
}

void TestGguf::badTensorTypes() {
    const auto typed = [](std::uint32_t type) {
        RawGguf raw;
        raw.header(1, 0).tensor_info("blk.0.attn_q.weight", {256}, type, 0).pad_to(32).zeros(1024);
        return raw.bytes;
    };
    const std::uint64_t type_at = header_bytes + 8 + 19 + 4 + 8;
    expect_parse_error(typed(42), "tensor blk.0.attn_q.weight: unknown ggml type id 42", type_at);
    expect_parse_error(typed(0xFFFFFFFF), "unknown ggml type id 4294967295", type_at);
    expect_parse_error(typed(4), "has type Q4_2, which ggml no longer defines", type_at);
    expect_parse_error(typed(31), "has type Q4_0_4_4, which ggml no longer defines", type_at);
    QCOMPARE(GgufFile::parse(typed(16)).tensors()[0].type, GgmlType::IQ2_XXS);
}

void TestGguf::rowNotWholeBlocks() {
    RawGguf raw;
    raw.header(1, 0).tensor_info("w", {33, 2}, 2, 0).pad_to(32).zeros(128);
    expect_parse_error(raw.bytes, "ne[0] = 33 is not a multiple of the Q4_0 block size 32",
                       header_bytes + 9 + 4);
    RawGguf k_quant;
    k_quant.header(1, 0).tensor_info("w", {128}, 12, 0).pad_to(32).zeros(256);
    expect_parse_error(k_quant.bytes, "not a multiple of the Q4_K block size 256",
                       header_bytes + 9 + 4);
}

void TestGguf::tensorDataOutsideTheFile() {
    const auto at_offset = [](std::uint64_t offset, std::size_t data_bytes) {
        RawGguf raw;
        raw.header(1, 0).tensor_info("w", {4}, f32_id, offset).pad_to(32).zeros(data_bytes);
        return raw.bytes;
    };
    QCOMPARE(GgufFile::parse(at_offset(32, 48)).tensors()[0].offset, std::uint64_t{32});
    expect_parse_error(at_offset(64, 48),
                       "tensor w: data of 16 bytes at offset 64 in the data section runs past the "
                       "end of the file (112 bytes)",
                       header_bytes);
    expect_parse_error(at_offset(0, 15), "runs past the end of the file (79 bytes)", header_bytes);
    // Aligned offsets where data start (64) + offset wraps u64, to 32 and to 0.
    expect_parse_error(at_offset(std::numeric_limits<std::uint64_t>::max() - 31, 16),
                       "runs past the end of the file", header_bytes);
    expect_parse_error(at_offset(std::numeric_limits<std::uint64_t>::max() - 63, 16),
                       "runs past the end of the file", header_bytes);
    // Tensors but no data section at all.
    RawGguf no_data;
    no_data.header(1, 0).tensor_info("w", {4}, f32_id, 0);
    expect_parse_error(no_data.bytes, "runs past the end of the file", header_bytes);
}

void TestGguf::unalignedTensorOffset() {
    RawGguf raw;
    raw.header(1, 0).tensor_info("w", {4}, f32_id, 4).pad_to(32).zeros(64);
    expect_parse_error(raw.bytes, "tensor w: data offset 4 is not a multiple of the alignment 32",
                       header_bytes);
}

void TestGguf::overlappingTensors() {
    // Out of order and touching, but not overlapping: a [64, 96), b [0, 64), c [96, 132).
    RawGguf touching;
    touching.header(3, 0);
    touching.tensor_info("a", {8}, f32_id, 64);
    touching.tensor_info("b", {16}, f32_id, 0);
    touching.tensor_info("c", {9}, f32_id, 96);
    touching.pad_to(32).zeros(132);
    QCOMPARE(GgufFile::parse(touching.bytes).tensors().size(), std::size_t{3});

    RawGguf overlap;
    overlap.header(2, 0);
    overlap.tensor_info("a", {16}, f32_id, 32);  // [32, 96)
    const std::uint64_t b_at = overlap.size();
    overlap.tensor_info("b", {4}, f32_id, 64);   // [64, 80)
    overlap.pad_to(32).zeros(128);
    expect_parse_error(overlap.bytes, "tensor b: data overlaps tensor a", b_at);

    RawGguf same_offset;
    same_offset.header(2, 0);
    same_offset.tensor_info("a", {4}, f32_id, 0);
    const std::uint64_t second_at = same_offset.size();
    same_offset.tensor_info("b", {4}, f32_id, 0);
    same_offset.pad_to(32).zeros(32);
    expect_parse_error(same_offset.bytes, "tensor b: data overlaps tensor a", second_at);
}

void TestGguf::duplicateTensorName() {
    RawGguf raw;
    raw.header(2, 0).tensor_info("w", {4}, f32_id, 0);
    const std::uint64_t second_at = raw.size();
    raw.tensor_info("w", {4}, f32_id, 32).pad_to(32).zeros(64);
    expect_parse_error(raw.bytes, "duplicate tensor name w", second_at);
}

void TestGguf::truncationAtEveryByte() {
    const std::vector<std::uint8_t> bytes = small_valid_file();
    QCOMPARE(GgufFile::parse(bytes).tensors().size(), std::size_t{3});
    for (std::size_t length = 0; length < bytes.size(); ++length) {
        const std::string message = parse_error({bytes.begin(), bytes.begin() + length});
        QVERIFY2(!message.empty(), qPrintable(QString("prefix of %1 bytes parsed").arg(length)));
    }

    // The same through the mapping, cutting the file on disk one byte at a time.
    QTemporaryDir directory;
    QVERIFY(directory.isValid());
    const std::filesystem::path path = directory.filePath("truncated.gguf").toStdString();
    write_file(path, bytes);
    for (std::size_t length = bytes.size(); length-- > 0;) {
        std::filesystem::resize_file(path, length);
        bool rejected = false;
        try {
            GgufFile::open(path);
        } catch (const GgufError& error) {
            rejected = std::string_view(error.what()).find(path.string()) == 0;
        }
        QVERIFY2(rejected, qPrintable(QString("file of %1 bytes opened").arg(length)));
    }
}

void TestGguf::fileOnDiskShorterThanItsHeader() {
    QTemporaryDir directory;
    QVERIFY(directory.isValid());
    const std::filesystem::path path = directory.filePath("model.gguf").toStdString();
    const std::vector<std::uint8_t> bytes = small_valid_file();
    write_file(path, bytes);
    QCOMPARE(GgufFile::open(path).tensors().size(), std::size_t{3});

    std::filesystem::resize_file(path, bytes.size() - 1);
    try {
        GgufFile::open(path);
        QFAIL("a file cut short opened");
    } catch (const GgufError& error) {
        const std::string expected =
            "runs past the end of the file (" + std::to_string(bytes.size() - 1) + " bytes)";
        QVERIFY2(std::string_view(error.what()).find(expected) != std::string_view::npos,
                 error.what());
    }
}

void TestGguf::unreadableFiles() {
    QTemporaryDir directory;
    QVERIFY(directory.isValid());
    const std::filesystem::path missing = directory.filePath("missing.gguf").toStdString();
    QVERIFY_THROWS_EXCEPTION(std::system_error, GgufFile::open(missing));
    QVERIFY_THROWS_EXCEPTION(std::system_error,
                             GgufFile::open(directory.path().toStdString()));
    const std::filesystem::path empty = directory.filePath("empty.gguf").toStdString();
    write_file(empty, {});
    QVERIFY_THROWS_EXCEPTION(GgufError, GgufFile::open(empty));
}

void TestGguf::fuzzSeedFiles() {
    // The fuzzer's seeds, written once by GgufWriter and checked with gguf-py.
    const std::filesystem::path seeds = FOLIO_TEST_DATA "/gguf/fuzz_corpus";
    const GgufFile llama = GgufFile::open(seeds / "llama_v3.gguf");
    QCOMPARE(std::string(llama.architecture()), std::string("llama"));
    QCOMPARE(llama.metadata().size(), std::size_t{16});
    QCOMPARE(llama.get_string_array("tokenizer.ggml.tokens").size(), std::size_t{3});
    QCOMPARE(llama.tensors().size(), std::size_t{3});
    QCOMPARE(llama.tensor("blk.0.attn_q.weight").type, GgmlType::Q8_0);

    const GgufFile nested = GgufFile::open(seeds / "nested_v2.gguf");
    QCOMPARE(nested.version(), 2u);
    QCOMPARE(nested.alignment(), 64u);
    QCOMPARE(nested.tensor("bf16").offset, std::uint64_t{192});
    QCOMPARE(std::get<GgufArray>(nested.find("nested")->data).arrays.size(), std::size_t{2});

    QCOMPARE(GgufFile::open(seeds / "empty.gguf").file_size(), header_bytes);
}

void TestGguf::realModelFile() {
    // Set FOLIO_TEST_GGUF to a real model to check the reader against it.
    const QByteArray path = qgetenv("FOLIO_TEST_GGUF");
    if (path.isEmpty() || !std::filesystem::is_regular_file(path.toStdString()))
        QSKIP("no real GGUF file (FOLIO_TEST_GGUF)");
    const GgufFile file = GgufFile::open(path.toStdString());
    QVERIFY(!file.architecture().empty());
    QVERIFY(!file.tensors().empty());
    for (const GgufTensor& tensor : file.tensors())
        QVERIFY(tensor.offset + tensor.n_bytes() <= file.file_size() - file.data_offset());
}

QTEST_GUILESS_MAIN(TestGguf)
#include "tst_gguf.moc"
