#include <QFile>
#include <QtTest>

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include "engine/fp16.h"
#include "engine/ggml_types.h"
#include "engine/quant.h"
#include "engine/vector_math.h"
#include "engine/quant_kernels.h"

using namespace folio::engine;
namespace q = folio::engine::quant;

Q_DECLARE_METATYPE(folio::engine::GgmlType)

namespace {

const std::vector<GgmlType> kWeightTypes = {
    GgmlType::F32,  GgmlType::F16,  GgmlType::BF16, GgmlType::Q4_0, GgmlType::Q4_1,
    GgmlType::Q5_0, GgmlType::Q5_1, GgmlType::Q8_0, GgmlType::Q2_K, GgmlType::Q3_K,
    GgmlType::Q4_K, GgmlType::Q5_K, GgmlType::Q6_K,
};

const char* name_of(GgmlType type) {
    return ggml_type_name(type).data();
}

std::size_t slot(GgmlType type) {
    return static_cast<std::size_t>(type);
}

std::vector<float> gaussian(std::size_t n, std::uint32_t seed, float sigma = 1.f) {
    std::mt19937 rng(seed);
    std::normal_distribution<float> normal(0.f, sigma);
    std::vector<float> values(n);
    for (float& value : values)
        value = normal(rng);
    return values;
}

std::vector<std::uint8_t> quantized(GgmlType type, const std::vector<float>& values) {
    std::vector<std::uint8_t> bytes(quant_row_bytes(type, static_cast<std::int64_t>(values.size())));
    quantize_row(type, values.data(), bytes.data(), static_cast<std::int64_t>(values.size()));
    return bytes;
}

std::vector<float> dequantized(GgmlType type, const std::uint8_t* bytes, std::int64_t n) {
    std::vector<float> values(static_cast<std::size_t>(n));
    q::scalar_kernels().dequantize_row[slot(type)](bytes, values.data(), n);
    return values;
}

void put_half(std::uint8_t* at, float value) {
    const std::uint16_t half = fp32_to_fp16(value);
    std::memcpy(at, &half, sizeof half);
}

// Byte offsets of the f16 scale fields in each block, and where a Q8_K's
// float d sits: random blocks get sane scales there instead of random bits
// (which could be NaN or infinity).
struct ScaleFields {
    std::vector<std::size_t> halves;
};

ScaleFields scale_fields(GgmlType type) {
    switch (type) {
    case GgmlType::Q4_0:
    case GgmlType::Q5_0:
    case GgmlType::Q8_0:
        return {{0}};
    case GgmlType::Q4_1:
    case GgmlType::Q5_1:
    case GgmlType::Q8_1:
        return {{0, 2}};
    case GgmlType::Q2_K:
        return {{80, 82}};
    case GgmlType::Q3_K:
        return {{108}};
    case GgmlType::Q4_K:
    case GgmlType::Q5_K:
        return {{0, 2}};
    case GgmlType::Q6_K:
        return {{208}};
    default:
        return {};
    }
}

// A weight row of random bits, its scales (f16 fields) replaced by `scale`
// or, when scale is 0, by random values in [0.001, 0.1). Float types get
// Gaussian values.
std::vector<std::uint8_t> random_weight_row(GgmlType type, std::int64_t n, std::mt19937& rng, float scale) {
    if (type == GgmlType::F32 || type == GgmlType::F16 || type == GgmlType::BF16) {
        std::vector<float> values = gaussian(static_cast<std::size_t>(n), rng());
        if (scale != 0.f) {  // small integers: every product and sum exact in float
            for (float& value : values)
                value = std::round(value * 4.f);
        }
        return quantized(type, values);
    }
    std::vector<std::uint8_t> bytes(quant_row_bytes(type, n));
    for (std::uint8_t& byte : bytes)
        byte = static_cast<std::uint8_t>(rng());
    const GgmlTypeLayout layout = *ggml_type_layout(static_cast<std::uint32_t>(type));
    std::uniform_real_distribution<float> uniform(0.001f, 0.1f);
    for (std::size_t block = 0; block < bytes.size() / layout.type_size; ++block)
        for (const std::size_t offset : scale_fields(type).halves)
            put_half(bytes.data() + block * layout.type_size + offset, scale != 0.f ? scale : uniform(rng));
    return bytes;
}

// An activation row in vec_dot_type(type): Gaussian values quantized by the
// scalar quantizer, or, with unit_scales, random quants in [-127, 127] with
// d = 1 (and Q8_1's s, Q8_K's bsums consistent with them).
std::vector<std::uint8_t> random_activation_row(GgmlType weight_type, std::int64_t n, std::mt19937& rng,
                                                bool unit_scales) {
    const GgmlType type = vec_dot_type(weight_type);
    std::vector<float> values = gaussian(static_cast<std::size_t>(n), rng());
    if (type == GgmlType::F32) {
        if (unit_scales)
            for (float& value : values)
                value = std::round(value * 4.f);
        return quantized(type, values);
    }
    std::vector<std::uint8_t> bytes(quant_row_bytes(type, n));
    if (!unit_scales) {
        q::scalar_kernels().quantize_row[slot(type)](values.data(), bytes.data(), n);
        return bytes;
    }
    std::uniform_int_distribution<int> quant(-127, 127);
    if (type == GgmlType::Q8_K) {
        auto* blocks = reinterpret_cast<q::BlockQ8_K*>(bytes.data());
        for (std::int64_t b = 0; b < n / q::kBlockK; ++b) {
            blocks[b].d = 1.f;
            for (int g = 0; g < 16; ++g) {
                int sum = 0;
                for (int l = 0; l < 16; ++l) {
                    blocks[b].qs[16 * g + l] = static_cast<std::int8_t>(quant(rng));
                    sum += blocks[b].qs[16 * g + l];
                }
                blocks[b].bsums[g] = static_cast<std::int16_t>(sum);
            }
        }
        return bytes;
    }
    const bool with_sum = type == GgmlType::Q8_1;
    const std::size_t block_bytes = with_sum ? sizeof(q::BlockQ8_1) : sizeof(q::BlockQ8_0);
    for (std::int64_t b = 0; b < n / q::kBlock32; ++b) {
        std::uint8_t* block = bytes.data() + b * block_bytes;
        auto* qs = reinterpret_cast<std::int8_t*>(block + (with_sum ? 4 : 2));
        int sum = 0;
        for (int j = 0; j < 32; ++j) {
            qs[j] = static_cast<std::int8_t>(quant(rng));
            sum += qs[j];
        }
        put_half(block, 1.f);
        if (with_sum)
            put_half(block + 2, static_cast<float>(sum));
    }
    return bytes;
}

// sum |w_i * a_i| over the dequantized rows: the scale of rounding error in a dot product.
double magnitude_of_dot(GgmlType weight_type, const std::uint8_t* weights, const std::uint8_t* activations,
                        std::int64_t n) {
    const std::vector<float> w = dequantized(weight_type, weights, n);
    const std::vector<float> a = dequantized(vec_dot_type(weight_type), activations, n);
    double sum = 0.0;
    for (std::int64_t i = 0; i < n; ++i)
        sum += std::fabs(static_cast<double>(w[i]) * a[i]);
    return sum;
}

struct Matmul {
    std::int64_t n = 0;
    std::int64_t rows = 0;
    std::int64_t cols = 0;
    std::vector<std::uint8_t> weights;
    std::vector<std::uint8_t> activations;
    std::int64_t row_bytes = 0;
    std::int64_t act_row_bytes = 0;

    std::vector<float> run(const q::KernelTable& kernels, GgmlType type) const {
        std::vector<float> out(static_cast<std::size_t>(rows * cols), std::numeric_limits<float>::quiet_NaN());
        q::MatmulTile tile;
        tile.n = n;
        tile.weights = weights.data();
        tile.row_bytes = row_bytes;
        tile.n_rows = rows;
        tile.activations = activations.data();
        tile.act_row_bytes = act_row_bytes;
        tile.n_cols = cols;
        tile.out = out.data();
        tile.out_col_stride = rows;
        kernels.matmul[slot(type)](tile);
        return out;
    }
};

Matmul random_matmul(GgmlType type, std::int64_t n, std::int64_t rows, std::int64_t cols, std::uint32_t seed,
                     bool unit_scales) {
    std::mt19937 rng(seed);
    Matmul m;
    m.n = n;
    m.rows = rows;
    m.cols = cols;
    m.row_bytes = static_cast<std::int64_t>(quant_row_bytes(type, n));
    m.act_row_bytes = static_cast<std::int64_t>(quant_row_bytes(vec_dot_type(type), n));
    for (std::int64_t r = 0; r < rows; ++r) {
        const std::vector<std::uint8_t> row = random_weight_row(type, n, rng, unit_scales ? 1.f : 0.f);
        m.weights.insert(m.weights.end(), row.begin(), row.end());
    }
    for (std::int64_t c = 0; c < cols; ++c) {
        const std::vector<std::uint8_t> row = random_activation_row(type, n, rng, unit_scales);
        m.activations.insert(m.activations.end(), row.begin(), row.end());
    }
    return m;
}

std::vector<const q::KernelTable*> simd_tables() {
    std::vector<const q::KernelTable*> tables;
    if (q::avx2_kernels())
        tables.push_back(q::avx2_kernels());
    if (q::avx512_kernels())
        tables.push_back(q::avx512_kernels());
    return tables;
}

// The SIMD sets, then the scalar one.
std::vector<const q::KernelTable*> every_table() {
    std::vector<const q::KernelTable*> tables = simd_tables();
    tables.push_back(&q::scalar_kernels());
    return tables;
}

QByteArray read_test_data(const QString& name) {
    QFile file(QStringLiteral(FOLIO_TEST_DATA "/quant/") + name);
    if (!file.open(QIODevice::ReadOnly))
        return {};
    return file.readAll();
}

double relative_rms_error(const std::vector<float>& reference, const std::vector<float>& approximation) {
    double error = 0.0;
    double energy = 0.0;
    for (std::size_t i = 0; i < reference.size(); ++i) {
        const double diff = static_cast<double>(approximation[i]) - reference[i];
        error += diff * diff;
        energy += static_cast<double>(reference[i]) * reference[i];
    }
    return std::sqrt(error / energy);
}

}  // namespace

class TestQuant : public QObject {
    Q_OBJECT

private slots:
    void fp16KnownValues();
    void fp16RoundTripsEveryHalf();
    void bf16Rounding();
    void roundTripError_data();
    void roundTripError();
    void goldenQ4_0();
    void fittedBlocksNeverLoseToMinMax_data();
    void fittedBlocksNeverLoseToMinMax();
    void goldenQ8_0();
    void goldenQ4_K();
    void goldenQ6_K();
    void matchesLlamaCppReference_data();
    void matchesLlamaCppReference();
    void dotMatchesDequantized_data();
    void dotMatchesDequantized();
    void simdDotExactOnIntegers_data();
    void simdDotExactOnIntegers();
    void simdDotMatchesScalar_data();
    void simdDotMatchesScalar();
    void simdConversionsBitExact_data();
    void simdConversionsBitExact();
    void q8_0RoundsHalfAwayFromZero();
    void matmulRowsWritesItsRange();
    void matmulRowsColumnsMatchesVecDot();
    void rowGroupsMatchTheRows_data();
    void rowGroupsMatchTheRows();
    void q4_kRowGroupsHoldTheLargestSums();
    void rowGroupsRejectPartialGroups();
    void rejectsPartialBlocks();
    void rejectsTypesWithoutKernels();
    void kernelIsaMatchesCpu();
    void avx512HasItsOwnQuantKernels();
    void floatBlocksGiveEachRowsBits();
    void expRowsMatchStdExp();
    void softmaxRowsMatchTheSoftmaxInDouble();
    void geluRowsMatchGeluInDouble();
    void weightedQ8_0RowsMatchDequantized();
};

void TestQuant::fp16KnownValues() {
    QCOMPARE(fp32_to_fp16(1.f), std::uint16_t{0x3C00});
    QCOMPARE(fp32_to_fp16(-2.f), std::uint16_t{0xC000});
    QCOMPARE(fp32_to_fp16(65504.f), std::uint16_t{0x7BFF});
    QCOMPARE(fp32_to_fp16(65519.f), std::uint16_t{0x7BFF});  // below halfway to 65536
    QCOMPARE(fp32_to_fp16(65520.f), std::uint16_t{0x7C00});  // the tie rounds to even: infinity
    QCOMPARE(fp32_to_fp16(std::ldexp(1.f, -24)), std::uint16_t{0x0001});      // smallest subnormal
    QCOMPARE(fp32_to_fp16(std::ldexp(1.f, -25)), std::uint16_t{0x0000});      // tie -> even 0
    QCOMPARE(fp32_to_fp16(std::ldexp(3.f, -25)), std::uint16_t{0x0002});      // 1.5 units -> even 2
    QCOMPARE(fp32_to_fp16(std::ldexp(1.f, -14)), std::uint16_t{0x0400});      // smallest normal
    QCOMPARE(fp32_to_fp16(1.f + std::ldexp(1.f, -11)), std::uint16_t{0x3C00});  // tie -> even
    QCOMPARE(fp32_to_fp16(1.f + std::ldexp(3.f, -11)), std::uint16_t{0x3C02});  // tie -> even (up)
    QCOMPARE(fp32_to_fp16(-0.f), std::uint16_t{0x8000});
    QCOMPARE(fp32_to_fp16(std::numeric_limits<float>::infinity()), std::uint16_t{0x7C00});
    QVERIFY((fp32_to_fp16(std::numeric_limits<float>::quiet_NaN()) & 0x7FFF) > 0x7C00);
    QCOMPARE(fp16_to_fp32(0x3C00), 1.f);
    QCOMPARE(fp16_to_fp32(0x3555), 0.333251953125f);
    QCOMPARE(fp16_to_fp32(0x0001), std::ldexp(1.f, -24));
    QCOMPARE(fp16_to_fp32(0x03FF), std::ldexp(1023.f, -24));
    QCOMPARE(fp16_to_fp32(0xFBFF), -65504.f);
    QVERIFY(std::isinf(fp16_to_fp32(0x7C00)));
    QVERIFY(std::isnan(fp16_to_fp32(0x7E00)));
}

void TestQuant::fp16RoundTripsEveryHalf() {
    for (std::uint32_t bits = 0; bits <= 0xFFFF; ++bits) {
        const auto half = static_cast<std::uint16_t>(bits);
        const bool is_nan = (half & 0x7C00) == 0x7C00 && (half & 0x03FF) != 0;
        const std::uint16_t back = fp32_to_fp16(fp16_to_fp32(half));
        if (is_nan)
            QCOMPARE(back, static_cast<std::uint16_t>(half | 0x0200));  // quieted, payload kept
        else if (back != half)
            QFAIL(qPrintable(QString("f16 0x%1 came back as 0x%2").arg(bits, 4, 16).arg(back, 4, 16)));
    }
}

void TestQuant::bf16Rounding() {
    QCOMPARE(fp32_to_bf16(1.f), std::uint16_t{0x3F80});
    QCOMPARE(fp32_to_bf16(std::bit_cast<float>(0x3F808000u)), std::uint16_t{0x3F80});  // tie -> even
    QCOMPARE(fp32_to_bf16(std::bit_cast<float>(0x3F818000u)), std::uint16_t{0x3F82});  // tie -> even (up)
    QCOMPARE(fp32_to_bf16(std::bit_cast<float>(0x3F808001u)), std::uint16_t{0x3F81});
    QCOMPARE(fp32_to_bf16(std::numeric_limits<float>::max()), std::uint16_t{0x7F80});  // rounds to infinity
    QVERIFY(std::isnan(bf16_to_fp32(fp32_to_bf16(std::numeric_limits<float>::quiet_NaN()))));
    QCOMPARE(bf16_to_fp32(0xC040), -3.f);
}

void TestQuant::roundTripError_data() {
    QTest::addColumn<GgmlType>("type");
    QTest::addColumn<double>("bound");
    // RMS error / RMS of the data on Gaussian data, about 10% above what these
    // quantizers measure (they write ggml's bytes, or better ones for Q4_1 and
    // Q5_1: matchesLlamaCppReference).
    QTest::newRow("F32") << GgmlType::F32 << 0.0;
    QTest::newRow("F16") << GgmlType::F16 << 0.00025;
    QTest::newRow("BF16") << GgmlType::BF16 << 0.0018;
    QTest::newRow("Q8_0") << GgmlType::Q8_0 << 0.006;
    QTest::newRow("Q8_1") << GgmlType::Q8_1 << 0.006;
    QTest::newRow("Q8_K") << GgmlType::Q8_K << 0.0075;
    QTest::newRow("Q6_K") << GgmlType::Q6_K << 0.0195;
    QTest::newRow("Q5_0") << GgmlType::Q5_0 << 0.046;
    QTest::newRow("Q5_1") << GgmlType::Q5_1 << 0.038;
    QTest::newRow("Q5_K") << GgmlType::Q5_K << 0.039;
    QTest::newRow("Q4_0") << GgmlType::Q4_0 << 0.093;
    QTest::newRow("Q4_1") << GgmlType::Q4_1 << 0.077;
    QTest::newRow("Q4_K") << GgmlType::Q4_K << 0.077;
    QTest::newRow("Q3_K") << GgmlType::Q3_K << 0.165;
    QTest::newRow("Q2_K") << GgmlType::Q2_K << 0.325;
}

void TestQuant::roundTripError() {
    QFETCH(GgmlType, type);
    QFETCH(double, bound);
    const std::vector<float> values = gaussian(256 * 64, 7, 0.02f);
    const std::vector<std::uint8_t> bytes = quantized(type, values);
    std::vector<float> back(values.size());
    dequantize_row(type, bytes.data(), back.data(), static_cast<std::int64_t>(values.size()));
    const double error = relative_rms_error(values, back);
    qInfo("%s: relative RMS error %.5f", name_of(type), error);
    QVERIFY2(error <= bound, qPrintable(QString("error %1 > bound %2").arg(error).arg(bound)));
}

void TestQuant::fittedBlocksNeverLoseToMinMax_data() {
    QTest::addColumn<GgmlType>("type");
    QTest::newRow("Q4_1") << GgmlType::Q4_1;
    QTest::newRow("Q5_1") << GgmlType::Q5_1;
}

// Q4_1 and Q5_1 blocks are fitted (quantize_row), and a fit may not be
// worse than spanning the block's min to max, which is what a block far from
// zero needs (a fit whose min is at most 0, as Q4_K's, wastes most levels
// on it): per block, the squared error is at most the min-to-max one.
void TestQuant::fittedBlocksNeverLoseToMinMax() {
    QFETCH(GgmlType, type);
    const int levels = type == GgmlType::Q4_1 ? 15 : 31;
    std::vector<float> values = gaussian(32 * 4, 3, 0.02f);
    for (int j = 0; j < 32; ++j) values[static_cast<std::size_t>(32 + j)] += 5.f;   // all positive
    for (int j = 0; j < 32; ++j) values[static_cast<std::size_t>(64 + j)] -= 3.f;   // all negative
    values[96] = 0.5f;                                                               // one outlier
    const std::vector<std::uint8_t> bytes = quantized(type, values);
    const std::vector<float> back = dequantized(type, bytes.data(), static_cast<std::int64_t>(values.size()));
    for (int b = 0; b < 4; ++b) {
        const float* x = values.data() + 32 * b;
        const auto [lo, hi] = std::minmax_element(x, x + 32);
        const float d = fp16_to_fp32(fp32_to_fp16((*hi - *lo) / static_cast<float>(levels)));
        const float m = fp16_to_fp32(fp32_to_fp16(*lo));
        double spanned = 0, ours = 0;
        for (int j = 0; j < 32; ++j) {
            const float q = std::clamp(std::round((x[j] - m) / d), 0.f, static_cast<float>(levels));
            spanned += std::pow(static_cast<double>(q * d + m) - x[j], 2);
            ours += std::pow(static_cast<double>(back[static_cast<std::size_t>(32 * b + j)]) - x[j], 2);
        }
        QVERIFY2(ours <= spanned, qPrintable(QString("block %1: %2 > min-to-max %3").arg(b).arg(ours).arg(spanned)));
    }
}

// A Q4_0 block decoded from the spec, and one quantized from known values.
void TestQuant::goldenQ4_0() {
    // d = 0.5 (f16 0x3800); qs[j] = j | (15 - j) << 4: element j is j - 8,
    // element 16 + j is 7 - j, both times 0.5.
    std::uint8_t block[18] = {0x00, 0x38};
    for (int j = 0; j < 16; ++j)
        block[2 + j] = static_cast<std::uint8_t>(j | ((15 - j) << 4));
    float out[32];
    dequantize_row(GgmlType::Q4_0, block, out, 32);
    QCOMPARE(out[0], -4.f);
    QCOMPARE(out[1], -3.5f);
    QCOMPARE(out[15], 3.5f);
    QCOMPARE(out[16], 3.5f);
    QCOMPARE(out[31], -4.f);
    for (int j = 0; j < 16; ++j) {
        QCOMPARE(out[j], 0.5f * static_cast<float>(j - 8));
        QCOMPARE(out[16 + j], 0.5f * static_cast<float>(7 - j));
    }

    // x[j] = j - 16: the extreme -16 sets d = -16 / -8 = 2 (f16 0x4000);
    // q = min(15, trunc(x / 2 + 8.5)): q(0) = 0, q(1) = 1, q(15) = 8, q(16) = 8,
    // q(17) = 9, q(31) = 15 (16 clamped).
    float x[32];
    for (int j = 0; j < 32; ++j)
        x[j] = static_cast<float>(j - 16);
    std::uint8_t packed[18];
    quantize_row(GgmlType::Q4_0, x, packed, 32);
    QCOMPARE(packed[0], std::uint8_t{0x00});
    QCOMPARE(packed[1], std::uint8_t{0x40});
    QCOMPARE(packed[2 + 0], std::uint8_t{0x80});   // q(0) = 0, q(16) = 8
    QCOMPARE(packed[2 + 1], std::uint8_t{0x91});   // q(1) = 1, q(17) = 9
    QCOMPARE(packed[2 + 15], std::uint8_t{0xF8});  // q(15) = 8, q(31) = 15
}

void TestQuant::goldenQ8_0() {
    // d = 0.25 (f16 0x3400), qs = -128, -1, 0, 1, 127, ...
    std::uint8_t block[34] = {0x00, 0x34, 0x80, 0xFF, 0x00, 0x01, 0x7F};
    float out[32];
    dequantize_row(GgmlType::Q8_0, block, out, 32);
    QCOMPARE(out[0], -32.f);
    QCOMPARE(out[1], -0.25f);
    QCOMPARE(out[2], 0.f);
    QCOMPARE(out[3], 0.25f);
    QCOMPARE(out[4], 31.75f);

    // x[j] = j - 16: absmax 16, d = 16 / 127 = 0.125984 -> f16 0x3008
    // (2^-3 * (1 + 8/1024)); q = roundf(x * 127 / 16): q(0) = -127, q(16) = 0,
    // q(31) = roundf(119.0625) = 119, q(1) = roundf(-119.0625) = -119.
    float x[32];
    for (int j = 0; j < 32; ++j)
        x[j] = static_cast<float>(j - 16);
    std::uint8_t packed[34];
    quantize_row(GgmlType::Q8_0, x, packed, 32);
    QCOMPARE(packed[0], std::uint8_t{0x08});
    QCOMPARE(packed[1], std::uint8_t{0x30});
    QCOMPARE(static_cast<int>(static_cast<std::int8_t>(packed[2 + 0])), -127);
    QCOMPARE(static_cast<int>(static_cast<std::int8_t>(packed[2 + 1])), -119);
    QCOMPARE(static_cast<int>(static_cast<std::int8_t>(packed[2 + 16])), 0);
    QCOMPARE(static_cast<int>(static_cast<std::int8_t>(packed[2 + 31])), 119);
}

// Q4_K with d = 1, dmin = 0.5 and hand-packed 6-bit scales and mins:
//   scales = 1 2 3 4 17 33 50 63, mins = 0 5 10 63 16 31 32 47
// bytes 0-3: scale j | (scale j+4 >> 4) << 6  = 41 82 C3 C4
// bytes 4-7: min j | (min j+4 >> 4) << 6      = 40 45 8A BF
// bytes 8-11: scale j+4 & 15 | (min j+4 & 15) << 4 = 01 F1 02 FF
// qs[i] = i % 16 | (15 - i % 16) << 4, so sub-block s (32 elements, the low
// nibbles of qs[32(s/2)..] for even s, the high for odd s) has quant
// l % 16 (even s) or 15 - l % 16 (odd s) at position l.
void TestQuant::goldenQ4_K() {
    std::vector<std::uint8_t> block = {0x00, 0x3C, 0x00, 0x38, 0x41, 0x82, 0xC3, 0xC4,
                                       0x40, 0x45, 0x8A, 0xBF, 0x01, 0xF1, 0x02, 0xFF};
    for (int i = 0; i < 128; ++i)
        block.push_back(static_cast<std::uint8_t>((i % 16) | ((15 - i % 16) << 4)));
    QCOMPARE(block.size(), std::size_t{144});
    const int scales[8] = {1, 2, 3, 4, 17, 33, 50, 63};
    const int mins[8] = {0, 5, 10, 63, 16, 31, 32, 47};
    std::vector<float> out(256);
    dequantize_row(GgmlType::Q4_K, block.data(), out.data(), 256);
    QCOMPARE(out[0], 0.f);       // 1 * 0 - 0.5 * 0
    QCOMPARE(out[33], 25.5f);    // sub-block 1, q = 14: 2 * 14 - 0.5 * 5
    QCOMPARE(out[200], 384.f);   // sub-block 6, q = 8: 50 * 8 - 0.5 * 32
    QCOMPARE(out[255], -23.5f);  // sub-block 7, q = 0: 0 - 0.5 * 47
    for (int e = 0; e < 256; ++e) {
        const int sub = e / 32;
        const int l = e % 32;
        const int quant = sub % 2 == 0 ? l % 16 : 15 - l % 16;
        QCOMPARE(out[e], static_cast<float>(scales[sub] * quant) - 0.5f * static_cast<float>(mins[sub]));
    }

    // The dot product against Q8_K activations of all ones (d = 1) is the sum.
    std::vector<float> ones(256, 1.f);
    const std::vector<std::uint8_t> activation = quantized(GgmlType::Q8_K, ones);
    double expected = 0.0;
    for (const float value : out)
        expected += value;
    QCOMPARE(vec_dot(GgmlType::Q4_K, 256, block.data(), activation.data()), static_cast<float>(expected));
}

// Q6_K with d = 0.25, scales[g] = g - 8 and quants q(e) = (5e + 3) % 64
// (stored + 32), packed by the spec: ql[64h + 32(g&1) + l] has element
// 128h + 32g + l in its low (g < 2) or high (g >= 2) nibble, and bits 2g..2g+1
// of qh[32h + l] hold its bits 4-5.
void TestQuant::goldenQ6_K() {
    const auto quant = [](int e) { return (5 * e + 3) % 64; };
    std::vector<std::uint8_t> block(210, 0);
    for (int e = 0; e < 256; ++e) {
        const int half = e / 128;
        const int group = (e / 32) % 4;
        const int l = e % 32;
        block[static_cast<std::size_t>(64 * half + 32 * (group & 1) + l)] |=
            static_cast<std::uint8_t>((quant(e) & 0xF) << (group >= 2 ? 4 : 0));
        block[static_cast<std::size_t>(128 + 32 * half + l)] |= static_cast<std::uint8_t>((quant(e) >> 4) << (2 * group));
    }
    for (int g = 0; g < 16; ++g)
        block[static_cast<std::size_t>(192 + g)] = static_cast<std::uint8_t>(g - 8);
    block[208] = 0x00;
    block[209] = 0x34;
    // q(0) = 3, q(64) = 3: ql[0] = 0x33; q(32) = 35, q(96) = 35: ql[32] = 0x33;
    // high bits 0, 2, 0, 2: qh[0] = 2 << 2 | 2 << 6 = 0x88.
    QCOMPARE(block[0], std::uint8_t{0x33});
    QCOMPARE(block[32], std::uint8_t{0x33});
    QCOMPARE(block[128], std::uint8_t{0x88});

    std::vector<float> out(256);
    dequantize_row(GgmlType::Q6_K, block.data(), out.data(), 256);
    QCOMPARE(out[0], 58.f);     // 0.25 * -8 * (3 - 32)
    QCOMPARE(out[32], -4.5f);   // 0.25 * -6 * (35 - 32)
    QCOMPARE(out[255], 52.5f);  // 0.25 * 7 * (62 - 32)
    for (int e = 0; e < 256; ++e)
        QCOMPARE(out[e], 0.25f * static_cast<float>((e / 16 - 8) * (quant(e) - 32)));
}

// Bytes from ggml's own quantizers and floats from gguf-py's decoder for the
// same input (tests/data/quant/README.md): the quantizers here must write the
// same bytes, and decode them to the same floats, bit for bit. Q4_1 and Q5_1
// are fitted where ggml spans min to max: their bytes differ, and their
// squared error must be below that of ggml's bytes.
void TestQuant::matchesLlamaCppReference_data() {
    QTest::addColumn<GgmlType>("type");
    for (const GgmlType type : {GgmlType::Q4_0, GgmlType::Q4_1, GgmlType::Q5_0, GgmlType::Q5_1, GgmlType::Q8_0,
                                GgmlType::Q2_K, GgmlType::Q3_K, GgmlType::Q4_K, GgmlType::Q5_K, GgmlType::Q6_K})
        QTest::newRow(name_of(type)) << type;
}

void TestQuant::matchesLlamaCppReference() {
    QFETCH(GgmlType, type);
    const QByteArray input = read_test_data("input.f32");
    const QByteArray expected_bytes = read_test_data(QString("%1.bin").arg(name_of(type)));
    const QByteArray expected_floats = read_test_data(QString("%1.dequant.f32").arg(name_of(type)));
    QCOMPARE(input.size(), 1024 * 4);
    const std::int64_t n = 1024;
    QCOMPARE(static_cast<std::size_t>(expected_bytes.size()), quant_row_bytes(type, n));
    QCOMPARE(expected_floats.size(), input.size());

    std::vector<float> values(static_cast<std::size_t>(n));
    std::memcpy(values.data(), input.data(), static_cast<std::size_t>(input.size()));
    const std::vector<std::uint8_t> bytes = quantized(type, values);
    if (type == GgmlType::Q4_1 || type == GgmlType::Q5_1) {
        const auto squared_error = [&](const std::uint8_t* row) {
            const std::vector<float> back = dequantized(type, row, n);
            double sum = 0;
            for (std::size_t i = 0; i < back.size(); ++i)
                sum += (static_cast<double>(back[i]) - values[i]) * (static_cast<double>(back[i]) - values[i]);
            return sum;
        };
        const double ours = squared_error(bytes.data());
        const double ggml = squared_error(reinterpret_cast<const std::uint8_t*>(expected_bytes.data()));
        qInfo("%s: squared error %.4g, ggml's %.4g", name_of(type), ours, ggml);
        QVERIFY2(ours < ggml, qPrintable(QString("%1 vs ggml's %2").arg(ours).arg(ggml)));
    } else {
        for (std::size_t i = 0; i < bytes.size(); ++i)
            if (bytes[i] != static_cast<std::uint8_t>(expected_bytes[static_cast<qsizetype>(i)]))
                QFAIL(qPrintable(QString("byte %1 is 0x%2, ggml wrote 0x%3").arg(i).arg(bytes[i], 2, 16, QChar('0'))
                                     .arg(static_cast<std::uint8_t>(expected_bytes[static_cast<qsizetype>(i)]), 2, 16, QChar('0'))));
    }

    std::vector<float> decoded(static_cast<std::size_t>(n));
    dequantize_row(type, expected_bytes.data(), decoded.data(), n);
    QVERIFY(std::memcmp(decoded.data(), expected_floats.data(), static_cast<std::size_t>(expected_floats.size())) == 0);
}

// The dot-product kernels and the dequantizers read the layouts the same way:
// vec_dot equals the dot product of the dequantized rows.
void TestQuant::dotMatchesDequantized_data() {
    QTest::addColumn<GgmlType>("type");
    for (const GgmlType type : kWeightTypes)
        QTest::newRow(name_of(type)) << type;
}

void TestQuant::dotMatchesDequantized() {
    QFETCH(GgmlType, type);
    const std::int64_t n = 2048;
    std::mt19937 rng(11);
    const std::vector<std::uint8_t> weights = random_weight_row(type, n, rng, 0.f);
    const std::vector<std::uint8_t> activations = random_activation_row(type, n, rng, false);
    const std::vector<float> w = dequantized(type, weights.data(), n);
    const std::vector<float> a = dequantized(vec_dot_type(type), activations.data(), n);
    double expected = 0.0;
    for (std::int64_t i = 0; i < n; ++i)
        expected += static_cast<double>(w[i]) * a[i];
    const double magnitude = magnitude_of_dot(type, weights.data(), activations.data(), n);
    for (const q::KernelTable* kernels : {&q::scalar_kernels(), &q::active_kernels()}) {
        float result = 0.f;
        q::MatmulTile tile{n, weights.data(), 0, 1, activations.data(), 0, 1, &result, 1};
        kernels->matmul[slot(type)](tile);
        // Q4_1/Q5_1 use Q8_1's s, an f16 rounding of d * sum(q): allow for it.
        const double tolerance = (type == GgmlType::Q4_1 || type == GgmlType::Q5_1 ? 1e-3 : 1e-5) * magnitude;
        QVERIFY2(std::fabs(result - expected) <= tolerance,
                 qPrintable(QString("%1: %2 vs %3").arg(kernels->isa).arg(result).arg(expected)));
    }
}

// With every scale 1 the products and sums are integers that float holds
// exactly, whatever the order: SIMD and scalar must agree to the bit. This
// pins the integer arithmetic (unpacking, offsets, mins) of each kernel.
void TestQuant::simdDotExactOnIntegers_data() {
    QTest::addColumn<GgmlType>("type");
    QTest::addColumn<qint64>("n");
    for (const GgmlType type : kWeightTypes) {
        const std::int64_t block = quant_block_size(type) == 1 ? 32 : quant_block_size(type);
        QTest::newRow((std::string(name_of(type)) + " 1 block").c_str()) << type << qint64{block};
        QTest::newRow((std::string(name_of(type)) + " 5 blocks").c_str()) << type << qint64{5 * block};
    }
    QTest::newRow("F32 n=37") << GgmlType::F32 << qint64{37};
    QTest::newRow("F16 n=13") << GgmlType::F16 << qint64{13};
    QTest::newRow("BF16 n=21") << GgmlType::BF16 << qint64{21};
}

void TestQuant::simdDotExactOnIntegers() {
    QFETCH(GgmlType, type);
    QFETCH(qint64, n);
    if (simd_tables().empty())
        QSKIP("this CPU has no SIMD kernel set");
    const Matmul m = random_matmul(type, n, 5, 7, 23, true);
    const std::vector<float> expected = m.run(q::scalar_kernels(), type);
    for (const q::KernelTable* kernels : simd_tables()) {
        const std::vector<float> result = m.run(*kernels, type);
        for (std::size_t i = 0; i < expected.size(); ++i) {
            if (result[i] != expected[i])
                QFAIL(qPrintable(QString("%1: out[%2] = %3, scalar %4").arg(kernels->isa).arg(i).arg(result[i]).arg(expected[i])));
        }
    }
}

// Realistic scales: SIMD and scalar differ only by float rounding order.
void TestQuant::simdDotMatchesScalar_data() {
    QTest::addColumn<GgmlType>("type");
    QTest::addColumn<qint64>("n");
    QTest::addColumn<qint64>("rows");
    QTest::addColumn<qint64>("cols");
    for (const GgmlType type : kWeightTypes) {
        const std::int64_t block = quant_block_size(type) == 1 ? 64 : quant_block_size(type);
        const std::string name = name_of(type);
        QTest::newRow((name + " 1 block 1x1").c_str()) << type << qint64{block} << qint64{1} << qint64{1};
        QTest::newRow((name + " 3 blocks 7x3").c_str()) << type << qint64{3 * block} << qint64{7} << qint64{3};
        QTest::newRow((name + " 4096 5x11").c_str()) << type << qint64{4096} << qint64{5} << qint64{11};
        // Float rows of any length: the SIMD kernels' partial last vector.
        if (quant_block_size(type) == 1)
            QTest::newRow((name + " 117 3x9").c_str()) << type << qint64{117} << qint64{3} << qint64{9};
    }
}

void TestQuant::simdDotMatchesScalar() {
    QFETCH(GgmlType, type);
    QFETCH(qint64, n);
    QFETCH(qint64, rows);
    QFETCH(qint64, cols);
    if (simd_tables().empty())
        QSKIP("this CPU has no SIMD kernel set");
    const Matmul m = random_matmul(type, n, rows, cols, 29, false);
    const std::vector<float> expected = m.run(q::scalar_kernels(), type);
    for (const q::KernelTable* kernels : simd_tables()) {
        const std::vector<float> result = m.run(*kernels, type);
        for (std::int64_t c = 0; c < cols; ++c) {
            for (std::int64_t r = 0; r < rows; ++r) {
                const std::size_t i = static_cast<std::size_t>(c * rows + r);
                const double magnitude = magnitude_of_dot(type, m.weights.data() + r * m.row_bytes,
                                                          m.activations.data() + c * m.act_row_bytes, n);
                if (!(std::fabs(result[i] - expected[i]) <= 1e-5 * magnitude))
                    QFAIL(qPrintable(QString("%1: row %2 col %3: %4, scalar %5 (sum |w a| %6)")
                                         .arg(kernels->isa).arg(r).arg(c).arg(result[i]).arg(expected[i]).arg(magnitude)));
            }
        }
    }
}

// Activation quantizers and the f16/bf16 conversions give the same bits in
// every kernel set.
void TestQuant::simdConversionsBitExact_data() {
    QTest::addColumn<GgmlType>("type");
    for (const GgmlType type : {GgmlType::F16, GgmlType::BF16, GgmlType::Q8_0, GgmlType::Q8_1, GgmlType::Q8_K})
        QTest::newRow(name_of(type)) << type;
}

void TestQuant::simdConversionsBitExact() {
    QFETCH(GgmlType, type);
    if (simd_tables().empty())
        QSKIP("this CPU has no SIMD kernel set");
    const std::int64_t n = 256 * 9;
    std::vector<float> values = gaussian(static_cast<std::size_t>(n), 31, 3.f);
    // Ties: block 2 scaled so that its quants land on .5 (absmax 127 -> d = 1),
    // and for Q8_K a block whose largest magnitude appears with both signs.
    for (int j = 0; j < 32; ++j)
        values[static_cast<std::size_t>(64 + j)] = static_cast<float>(j) - 15.5f;
    values[64] = 127.f;
    values[256] = -50.f;
    values[300] = 50.f;
    values[257] = std::ldexp(1.f, -20);  // an f16 subnormal
    values[258] = 70000.f;               // f16 overflow
    const std::vector<std::uint8_t> expected = [&] {
        std::vector<std::uint8_t> bytes(quant_row_bytes(type, n));
        q::scalar_kernels().quantize_row[slot(type)](values.data(), bytes.data(), n);
        return bytes;
    }();
    for (const q::KernelTable* kernels : simd_tables()) {
        std::vector<std::uint8_t> bytes(expected.size(), 0xAA);
        kernels->quantize_row[slot(type)](values.data(), bytes.data(), n);
        for (std::size_t i = 0; i < bytes.size(); ++i)
            if (bytes[i] != expected[i])
                QFAIL(qPrintable(QString("%1: byte %2 is %3, scalar %4").arg(kernels->isa).arg(i).arg(bytes[i]).arg(expected[i])));
        std::vector<float> back(static_cast<std::size_t>(n));
        std::vector<float> back_scalar(static_cast<std::size_t>(n));
        kernels->dequantize_row[slot(type)](expected.data(), back.data(), n);
        q::scalar_kernels().dequantize_row[slot(type)](expected.data(), back_scalar.data(), n);
        QVERIFY(std::memcmp(back.data(), back_scalar.data(), back.size() * sizeof(float)) == 0);
    }
}

void TestQuant::q8_0RoundsHalfAwayFromZero() {
    // absmax 127 gives d = 1, so each quant is roundf(x).
    float x[32] = {127.f, 0.5f, -0.5f, 1.5f, -1.5f, 2.5f, -2.5f, 0.49999997f, -0.49999997f, 126.5f};
    for (const q::KernelTable* kernels : [] {
             const std::vector<const q::KernelTable*> all = every_table();
             return all;
         }()) {
        q::BlockQ8_0 block{};
        kernels->quantize_row[slot(GgmlType::Q8_0)](x, &block, 32);
        const int expected[10] = {127, 1, -1, 2, -2, 3, -3, 0, 0, 127};
        for (int j = 0; j < 10; ++j)
            QCOMPARE(static_cast<int>(block.qs[j]), expected[j]);
    }
}

void TestQuant::matmulRowsWritesItsRange() {
    const GgmlType type = GgmlType::Q4_K;
    const std::int64_t n = 512;
    const Matmul m = random_matmul(type, n, 12, 1, 41, false);
    std::vector<float> out(12, -1.f);
    matmul_rows(type, m.weights.data(), m.row_bytes, 3, 10, n, m.activations.data(), out.data());
    for (std::int64_t r = 0; r < 12; ++r) {
        if (r < 3 || r >= 10) {
            QCOMPARE(out[static_cast<std::size_t>(r)], -1.f);
            continue;
        }
        const float expected = vec_dot(type, n, m.weights.data() + r * m.row_bytes, m.activations.data());
        QCOMPARE(out[static_cast<std::size_t>(r)], expected);
    }
}

// Enough rows for several cache tiles, columns that exercise every register
// block width, and an output stride larger than the row count.
void TestQuant::matmulRowsColumnsMatchesVecDot() {
    for (const GgmlType type : {GgmlType::Q8_0, GgmlType::Q4_K, GgmlType::F16}) {
        const std::int64_t n = 4096;
        const std::int64_t rows = 150;
        const std::int64_t cols = 11;
        const std::int64_t stride = 160;
        const Matmul m = random_matmul(type, n, rows, cols, 43, false);
        std::vector<float> out(static_cast<std::size_t>(cols * stride), -1.f);
        matmul_rows_columns(type, m.weights.data(), m.row_bytes, 1, rows, n, m.activations.data(), m.act_row_bytes,
                            cols, out.data(), stride);
        for (std::int64_t c = 0; c < cols; ++c) {
            QCOMPARE(out[static_cast<std::size_t>(c * stride)], -1.f);  // row 0 is outside the range
            for (std::int64_t r = 1; r < rows; ++r) {
                const float expected = vec_dot(type, n, m.weights.data() + r * m.row_bytes,
                                               m.activations.data() + c * m.act_row_bytes);
                const float result = out[static_cast<std::size_t>(c * stride + r)];
                const double magnitude = magnitude_of_dot(type, m.weights.data() + r * m.row_bytes,
                                                          m.activations.data() + c * m.act_row_bytes, n);
                if (!(std::fabs(result - expected) <= 1e-6 * magnitude))
                    QFAIL(qPrintable(QString("%1 row %2 col %3: %4 vs vec_dot %5").arg(name_of(type)).arg(r).arg(c).arg(result).arg(expected)));
            }
            QCOMPARE(out[static_cast<std::size_t>(c * stride + rows)], -1.f);
        }
    }
}

// Q4_K's and the 32-element types' rows regrouped 16 at a time: the scalar
// set's group kernel gives the row kernel's bits (the same sums in the same
// order), every SIMD set's group kernel matches within rounding, for one
// column (decode) and for columns past every register block, over a range
// of groups that leaves the first and last group out; and the public API
// regroups in pieces.
void TestQuant::rowGroupsMatchTheRows_data() {
    QTest::addColumn<GgmlType>("type");
    QTest::addColumn<std::int64_t>("group_bytes");  // per 16 rows and row_group_elements(type)
    QTest::newRow("Q4_K") << GgmlType::Q4_K << std::int64_t{2368};
    QTest::newRow("Q8_0") << GgmlType::Q8_0 << std::int64_t{1088};
    QTest::newRow("Q4_0") << GgmlType::Q4_0 << std::int64_t{576};
    QTest::newRow("Q4_1") << GgmlType::Q4_1 << std::int64_t{640};
    QTest::newRow("Q5_0") << GgmlType::Q5_0 << std::int64_t{704};
    QTest::newRow("Q5_1") << GgmlType::Q5_1 << std::int64_t{768};
}

void TestQuant::rowGroupsMatchTheRows() {
    QFETCH(GgmlType, type);
    QFETCH(std::int64_t, group_bytes);
    for (const std::int64_t cols : {1, 3, 9}) {
        const std::int64_t n = 1024, rows = 80, stride = 96;
        const Matmul m = random_matmul(type, n, rows, cols, 47, false);
        std::vector<std::uint8_t> groups(row_groups_bytes(type, rows, n));
        QCOMPARE(groups.size(), static_cast<std::size_t>(rows / 16 * n / row_group_elements(type) * group_bytes));
        group_rows(type, m.weights.data(), m.row_bytes, 0, 32, n, groups.data());
        group_rows(type, m.weights.data(), m.row_bytes, 32, rows, n, groups.data());
        std::vector<float> expected(static_cast<std::size_t>(cols * stride), -1.f);
        matmul_rows_columns(type, m.weights.data(), m.row_bytes, 16, 64, n, m.activations.data(), m.act_row_bytes,
                            cols, expected.data(), stride);
        const std::vector<float> scalar_rows = m.run(q::scalar_kernels(), type);  // (cols, rows)
        std::vector<const q::KernelTable*> tables = simd_tables();
        tables.insert(tables.begin(), &q::scalar_kernels());
        for (const q::KernelTable* kernels : tables) {
            std::vector<float> result(expected.size(), -1.f);
            q::MatmulTile tile;
            tile.n = n;
            tile.weights = groups.data() + 16 * (groups.size() / rows);
            tile.row_bytes = static_cast<std::int64_t>(groups.size() / rows);
            tile.n_rows = 48;
            tile.activations = m.activations.data();
            tile.act_row_bytes = m.act_row_bytes;
            tile.n_cols = cols;
            tile.out = result.data() + 16;
            tile.out_col_stride = stride;
            kernels->matmul_groups[slot(type)](tile);
            for (std::int64_t c = 0; c < cols; ++c)
                for (std::int64_t r = 0; r < stride; ++r) {
                    const std::size_t i = static_cast<std::size_t>(c * stride + r);
                    if (r < 16 || r >= 64) {
                        QCOMPARE(result[i], -1.f);
                        continue;
                    }
                    const float row_kernel = scalar_rows[static_cast<std::size_t>(c * rows + r)];
                    const double magnitude = magnitude_of_dot(type, m.weights.data() + r * m.row_bytes,
                                                              m.activations.data() + c * m.act_row_bytes, n);
                    const bool same = kernels == &q::scalar_kernels()
                                          ? result[i] == row_kernel
                                          : std::fabs(result[i] - row_kernel) <= 1e-5 * magnitude;
                    if (!same)
                        QFAIL(qPrintable(QString("%1: row %2 col %3: %4, the rows' scalar kernel %5")
                                             .arg(kernels->isa).arg(r).arg(c).arg(result[i]).arg(row_kernel)));
                }
        }
        // The public API: the active set's kernel over the same range.
        std::vector<float> result(expected.size(), -1.f);
        matmul_row_groups(type, groups.data(), 16, 64, n, m.activations.data(), m.act_row_bytes, cols, result.data(),
                          stride);
        for (std::int64_t c = 0; c < cols; ++c)
            for (std::int64_t r = 0; r < stride; ++r) {
                const std::size_t i = static_cast<std::size_t>(c * stride + r);
                const double magnitude = r < rows ? magnitude_of_dot(type, m.weights.data() + r * m.row_bytes,
                                                                     m.activations.data() + c * m.act_row_bytes, n)
                                                  : 0.;
                QVERIFY(std::fabs(result[i] - expected[i]) <= 1e-5 * magnitude);
            }
    }
    QCOMPARE(row_groups_pay(type), q::active_kernels().fast_groups[slot(type)]);
    if (q::avx512_kernels())
        QVERIFY(q::avx512_kernels()->fast_groups[slot(type)] &&
                q::avx512_kernels()->matmul_groups[slot(type)] != q::scalar_kernels().matmul_groups[slot(type)]);
}

// Every quant 15, every scale and min 63, activations all 127 or all -128:
// the largest integer sums a group kernel accumulates per block (its high
// nibbles count 16 times their value) still come out as the rows' kernel's.
void TestQuant::q4_kRowGroupsHoldTheLargestSums() {
    const std::int64_t n = 1024, rows = 16, cols = 5;
    const std::int64_t row_bytes = static_cast<std::int64_t>(quant_row_bytes(GgmlType::Q4_K, n));
    std::vector<std::uint8_t> weights(static_cast<std::size_t>(rows * row_bytes), 0xFF);
    auto* blocks = reinterpret_cast<q::BlockQ4_K*>(weights.data());
    for (std::int64_t b = 0; b < rows * n / 256; ++b)
        blocks[b].d = blocks[b].dmin = fp32_to_fp16(1.f);
    std::vector<q::BlockQ8_K> activations(static_cast<std::size_t>(cols * n / 256));
    for (std::int64_t c = 0; c < cols; ++c)
        for (std::int64_t b = 0; b < n / 256; ++b) {
            q::BlockQ8_K& block = activations[static_cast<std::size_t>(c * n / 256 + b)];
            const std::int8_t quant = c % 2 == 0 ? 127 : -128;
            block.d = 1.f;
            std::fill(std::begin(block.qs), std::end(block.qs), quant);
            std::fill(std::begin(block.bsums), std::end(block.bsums), static_cast<std::int16_t>(16 * quant));
        }
    const std::int64_t act_row_bytes = n / 256 * static_cast<std::int64_t>(sizeof(q::BlockQ8_K));
    std::vector<std::uint8_t> groups(row_groups_bytes(GgmlType::Q4_K, rows, n));
    group_rows(GgmlType::Q4_K, weights.data(), row_bytes, 0, rows, n, groups.data());
    for (const std::int64_t n_cols : {std::int64_t{1}, cols}) {
        std::vector<float> expected(static_cast<std::size_t>(n_cols * rows)), result(expected.size());
        matmul_rows_columns(GgmlType::Q4_K, weights.data(), row_bytes, 0, rows, n, activations.data(), act_row_bytes,
                            n_cols, expected.data(), rows);
        matmul_row_groups(GgmlType::Q4_K, groups.data(), 0, rows, n, activations.data(), act_row_bytes, n_cols,
                          result.data(), rows);
        for (std::size_t i = 0; i < expected.size(); ++i) {
            // Each element 63 * 15 - 63 = 882 times the activation.
            const float exact = 882.f * static_cast<float>(n) * (i / rows % 2 == 0 ? 127.f : -128.f);
            QCOMPARE(expected[i], exact);
            QCOMPARE(result[i], exact);
        }
    }
}

void TestQuant::rowGroupsRejectPartialGroups() {
    const std::int64_t n = 256;
    for (const GgmlType type :
         {GgmlType::Q4_K, GgmlType::Q8_0, GgmlType::Q4_0, GgmlType::Q4_1, GgmlType::Q5_0, GgmlType::Q5_1}) {
        const Matmul m = random_matmul(type, n, 32, 1, 53, false);
        std::vector<std::uint8_t> groups(row_groups_bytes(type, 32, n));
        std::vector<float> out(32);
        QVERIFY_THROWS_EXCEPTION(QuantError, row_groups_bytes(type, 24, n));
        QVERIFY_THROWS_EXCEPTION(QuantError, row_groups_bytes(type, 16, type == GgmlType::Q4_K ? 300 : 96));
        QVERIFY_THROWS_EXCEPTION(QuantError,
                                 group_rows(type, m.weights.data(), m.row_bytes, 8, 32, n, groups.data()));
        QVERIFY_THROWS_EXCEPTION(QuantError, matmul_row_groups(type, groups.data(), 0, 20, n, m.activations.data(),
                                                                m.act_row_bytes, 1, out.data(), 32));
    }
    // No row groups for other types.
    QCOMPARE(row_group_elements(GgmlType::Q6_K), std::int64_t{0});
    QVERIFY(!row_groups_pay(GgmlType::Q6_K));
    QVERIFY_THROWS_EXCEPTION(QuantError, row_groups_bytes(GgmlType::Q6_K, 16, 256));
}

// The SIMD-vs-scalar tests above run every kernel of every set; this pins
// which kernels the AVX-512 set has of its own (not inherited from AVX2), so
// that those tests keep exercising them.
void TestQuant::avx512HasItsOwnQuantKernels() {
    if (!q::avx512_kernels())
        QSKIP("this CPU has no AVX-512 VNNI");
    for (const GgmlType type : {GgmlType::F32, GgmlType::F16, GgmlType::BF16, GgmlType::Q4_0, GgmlType::Q4_1,
                                GgmlType::Q5_0, GgmlType::Q5_1, GgmlType::Q8_0, GgmlType::Q2_K, GgmlType::Q3_K,
                                GgmlType::Q4_K, GgmlType::Q5_K, GgmlType::Q6_K})
        QVERIFY2(q::avx512_kernels()->matmul[slot(type)] != q::avx2_kernels()->matmul[slot(type)], name_of(type));
}

// The float kernels reduce a block of 4 rows x 4 columns together: each
// product still comes out with the bits of the row taken alone (attention
// scores depend on them), with and without a masked tail.
void TestQuant::floatBlocksGiveEachRowsBits() {
    for (const q::KernelTable* kernels : simd_tables())
        for (const GgmlType type : {GgmlType::F32, GgmlType::F16, GgmlType::BF16})
            for (const std::int64_t n : {64, 72, 1000}) {
                const Matmul m = random_matmul(type, n, 4, 4, 61, false);
                const std::vector<float> together = m.run(*kernels, type);  // (cols, rows)
                for (std::int64_t r = 0; r < m.rows; ++r) {
                    Matmul row = m;
                    row.rows = 1;
                    row.weights.assign(m.weights.begin() + r * m.row_bytes, m.weights.begin() + (r + 1) * m.row_bytes);
                    const std::vector<float> alone = row.run(*kernels, type);
                    for (std::int64_t c = 0; c < m.cols; ++c) {
                        const float product = together[static_cast<std::size_t>(c * m.rows + r)];
                        QVERIFY2(std::bit_cast<std::uint32_t>(product) ==
                                     std::bit_cast<std::uint32_t>(alone[static_cast<std::size_t>(c)]),
                                 qPrintable(QString("%1 %2 n=%3 row %4 col %5: %6 vs %7")
                                                .arg(kernels->isa).arg(name_of(type)).arg(n).arg(r).arg(c)
                                                .arg(product, 0, 'g', 9)
                                                .arg(alone[static_cast<std::size_t>(c)], 0, 'g', 9)));
                    }
                }
            }
}

void TestQuant::rejectsPartialBlocks() {
    std::vector<float> values(300, 0.f);
    std::vector<std::uint8_t> bytes(4096, 0);
    QVERIFY_THROWS_EXCEPTION(QuantError, quantize_row(GgmlType::Q4_K, values.data(), bytes.data(), 300));
    QVERIFY_THROWS_EXCEPTION(QuantError, dequantize_row(GgmlType::Q8_0, bytes.data(), values.data(), 33));
    QVERIFY_THROWS_EXCEPTION(QuantError, vec_dot(GgmlType::Q6_K, 128, bytes.data(), bytes.data()));
    QVERIFY_THROWS_EXCEPTION(QuantError, matmul_rows(GgmlType::Q4_0, bytes.data(), 18, 0, 1, 48, bytes.data(), values.data()));
    QVERIFY_THROWS_EXCEPTION(QuantError, quant_row_bytes(GgmlType::Q5_K, 255));
    try {
        quantize_row(GgmlType::Q4_K, values.data(), bytes.data(), 300);
    } catch (const QuantError& error) {
        const QString message = error.what();
        QVERIFY2(message.contains("300") && message.contains("Q4_K") && message.contains("256"), error.what());
    }
    // Bad ranges and strides.
    QVERIFY_THROWS_EXCEPTION(QuantError, matmul_rows(GgmlType::Q8_0, bytes.data(), 34, 2, 1, 32, bytes.data(), values.data()));
    QVERIFY_THROWS_EXCEPTION(QuantError, matmul_rows(GgmlType::Q8_0, bytes.data(), 33, 0, 1, 32, bytes.data(), values.data()));
    // Whole blocks of any count are fine, the float types take any n.
    quantize_row(GgmlType::Q4_K, values.data(), bytes.data(), 256);
    quantize_row(GgmlType::F16, values.data(), bytes.data(), 7);
    QCOMPARE(quant_row_bytes(GgmlType::Q6_K, 512), std::size_t{420});
    QCOMPARE(quant_row_bytes(GgmlType::BF16, 3), std::size_t{6});
}

void TestQuant::rejectsTypesWithoutKernels() {
    std::vector<float> values(256, 0.f);
    std::vector<std::uint8_t> bytes(1024, 0);
    QVERIFY(!has_quant_kernels(GgmlType::IQ2_XXS));
    QVERIFY_THROWS_EXCEPTION(QuantError, dequantize_row(GgmlType::IQ2_XXS, bytes.data(), values.data(), 256));
    QVERIFY_THROWS_EXCEPTION(QuantError, quantize_row(GgmlType::I32, values.data(), bytes.data(), 256));
    QVERIFY_THROWS_EXCEPTION(QuantError, vec_dot_type(GgmlType::Q8_K));
    QVERIFY_THROWS_EXCEPTION(QuantError, vec_dot(GgmlType::Q8_1, 32, bytes.data(), bytes.data()));
    QVERIFY_THROWS_EXCEPTION(QuantError, quant_row_bytes(static_cast<GgmlType>(4), 32));  // retired Q4_2
    for (const GgmlType type : kWeightTypes)
        QVERIFY(has_quant_kernels(type));
}

void TestQuant::kernelIsaMatchesCpu() {
    const QString isa = cpu_kernel_isa();
    const QString expected = q::avx512_kernels() ? "avx512" : q::avx2_kernels() ? "avx2" : "scalar";
    QCOMPARE(isa, expected);
    qInfo("kernel set: %s", cpu_kernel_isa());
#if defined(__x86_64__)
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") && __builtin_cpu_supports("f16c"))
        QVERIFY(q::avx2_kernels() != nullptr);
#endif
}

// Every kernel set's exponential against std::exp: across float's range,
// at the edges of it, and in rows whose length is no multiple of a vector.
void TestQuant::expRowsMatchStdExp() {
    std::vector<float> inputs;
    for (float x = -100.f; x <= 89.f; x += 0.0137f)
        inputs.push_back(x);
    for (const float x : {0.f, -0.f, 1.f, -1.f, 88.3762626647949f, 88.72f, -87.3365478515625f, -87.34f, -103.f,
                          std::numeric_limits<float>::max(), std::numeric_limits<float>::lowest(),
                          -std::numeric_limits<float>::infinity(), 1e-30f, -1e-30f})
        inputs.push_back(x);
    inputs.resize(inputs.size() / 16 * 16 + 7);  // a partial last vector
    const std::vector<const q::KernelTable*> tables = every_table();
    for (const q::KernelTable* kernels : tables) {
        std::vector<float> values = inputs;
        kernels->exp_row(values.data(), static_cast<std::int64_t>(values.size()));
        for (std::size_t i = 0; i < inputs.size(); ++i) {
            const float x = inputs[i];
            const double expected = std::exp(static_cast<double>(x));
            const bool close = expected < std::numeric_limits<float>::min()
                                   ? values[i] <= std::numeric_limits<float>::min()
                                   : expected > std::numeric_limits<float>::max()
                                         ? std::isinf(values[i]) || values[i] >= std::numeric_limits<float>::max()
                                         : std::abs(values[i] - expected) <= 1e-6 * expected;
            if (!close)
                QFAIL(qPrintable(QString("%1: e^%2 = %3, std::exp %4").arg(kernels->isa).arg(x, 0, 'g', 9)
                                     .arg(values[i], 0, 'g', 9).arg(expected, 0, 'g', 9)));
        }
    }
    std::vector<float> one = {0.f};
    exp_in_place(one.data(), 1);
    QCOMPARE(one[0], 1.f);
}

// Every set's softmax(scale * x) against the same in double: rows shorter
// than, equal to and past a vector, with a partial last one, scores far
// below the largest (weights that underflow to 0), and the same largest
// score twice. Each row sums to 1.
void TestQuant::softmaxRowsMatchTheSoftmaxInDouble() {
    std::mt19937 rng(11);
    std::normal_distribution<float> score(0.f, 4.f);
    const std::vector<const q::KernelTable*> tables = every_table();
    for (const std::int64_t n : {1, 7, 8, 15, 16, 17, 33, 100, 2306}) {
        std::vector<float> inputs(static_cast<std::size_t>(n));
        for (float& x : inputs) x = score(rng);
        inputs[0] = -400.f;
        if (n > 2) inputs[static_cast<std::size_t>(n - 1)] = inputs[static_cast<std::size_t>(n / 2)] = 30.f;
        const float scale = 0.125f;
        double max_score = -INFINITY;
        for (const float x : inputs) max_score = std::max(max_score, static_cast<double>(x * scale));
        std::vector<double> expected(inputs.size());
        double sum = 0.0;
        for (std::size_t i = 0; i < inputs.size(); ++i) sum += expected[i] = std::exp(inputs[i] * scale - max_score);
        for (const q::KernelTable* kernels : tables) {
            std::vector<float> values = inputs;
            kernels->softmax_row(values.data(), n, scale);
            double total = 0.0;
            for (std::size_t i = 0; i < inputs.size(); ++i) {
                total += values[i];
                if (std::abs(values[i] - expected[i] / sum) > 2e-6 * expected[i] / sum + 1e-30)
                    QFAIL(qPrintable(QString("%1, n = %2: weight %3 is %4, in double %5").arg(kernels->isa).arg(n)
                                         .arg(i).arg(values[i], 0, 'g', 9).arg(expected[i] / sum, 0, 'g', 9)));
            }
            QVERIFY2(std::abs(total - 1.0) < 1e-5, kernels->isa);
        }
    }
    std::vector<float> two = {1.f, 1.f};
    scaled_softmax_in_place(two.data(), 2, 3.f);
    QCOMPARE(two, (std::vector<float>{0.5f, 0.5f}));
}

// Every set's GELU against x Φ(x) with std::erf in double, over [-12, 12]
// and a partial last vector: the erf approximation's 1.5e-7, scaled by
// x / 2, plus float rounding.
void TestQuant::geluRowsMatchGeluInDouble() {
    std::vector<float> inputs;
    for (float x = -12.f; x <= 12.f; x += 0.00731f)
        inputs.push_back(x);
    for (const float x : {0.f, -0.f, 1e-30f, -1e-30f, 40.f, -40.f, 1000.f, -1000.f})
        inputs.push_back(x);
    inputs.resize(inputs.size() / 16 * 16 + 5);
    const std::vector<const q::KernelTable*> tables = every_table();
    for (const q::KernelTable* kernels : tables) {
        std::vector<float> values = inputs;
        kernels->gelu_row(values.data(), static_cast<std::int64_t>(values.size()));
        for (std::size_t i = 0; i < inputs.size(); ++i) {
            const double x = inputs[i];
            const double expected = 0.5 * x * (1.0 + std::erf(x / std::sqrt(2.0)));
            if (std::abs(values[i] - expected) > 2e-7 * std::max(1.0, std::abs(x)))
                QFAIL(qPrintable(QString("%1: GELU(%2) = %3, in double %4").arg(kernels->isa).arg(x, 0, 'g', 9)
                                     .arg(values[i], 0, 'g', 9).arg(expected, 0, 'g', 9)));
        }
    }
}

QTEST_GUILESS_MAIN(TestQuant)
// Every kernel set's weighted sum of Q8_0 rows against the same sum over
// the dequantized rows in double: several heads at once, a block range
// inside the rows, an accumulator stride wider than the range, and the
// accumulators' earlier contents kept. One head's result must not depend on
// how many heads share the call.
void TestQuant::weightedQ8_0RowsMatchDequantized() {
    constexpr int kRows = 37, kRowElements = 128, kFirst = 32, kElements = 64, kHeads = 3, kAccStride = 80;
    std::mt19937 rng(7);
    std::uniform_real_distribution<float> uniform(-1.f, 1.f);
    const std::size_t row_bytes = quant_row_bytes(GgmlType::Q8_0, kRowElements);
    std::vector<std::uint8_t> rows(kRows * row_bytes);
    std::vector<float> dequantized(kRows * kRowElements);
    for (int j = 0; j < kRows; ++j) {
        std::vector<float> row(kRowElements);
        for (float& x : row) x = uniform(rng) * static_cast<float>(1 + j % 5);
        quantize_row(GgmlType::Q8_0, row.data(), rows.data() + j * row_bytes, kRowElements);
        dequantize_row(GgmlType::Q8_0, rows.data() + j * row_bytes, dequantized.data() + j * kRowElements,
                       kRowElements);
    }
    std::vector<float> weights(kHeads * kRows);
    for (float& w : weights) w = uniform(rng);
    std::vector<float> start(kHeads * kAccStride);
    for (float& a : start) a = uniform(rng);

    for (const q::KernelTable* kernels : [] {
             const std::vector<const q::KernelTable*> all = every_table();
             return all;
         }()) {
        std::vector<float> acc = start;
        kernels->weighted_q8_0_rows(weights.data(), kRows, kHeads, rows.data(), static_cast<std::int64_t>(row_bytes),
                                    kRows, kFirst / 32, kElements / 32, acc.data(), kAccStride);
        for (int h = 0; h < kHeads; ++h) {
            for (int e = 0; e < kAccStride; ++e) {
                const float got = acc[h * kAccStride + e];
                if (e >= kElements) {
                    QCOMPARE(got, start[h * kAccStride + e]);
                    continue;
                }
                double expected = start[h * kAccStride + e];
                for (int j = 0; j < kRows; ++j)
                    expected += static_cast<double>(weights[h * kRows + j]) * dequantized[j * kRowElements + kFirst + e];
                QVERIFY2(std::abs(got - expected) <= 1e-4 * (1 + std::abs(expected)),
                         qPrintable(QString("%1: head %2 element %3: %4, expected %5")
                                        .arg(kernels->isa).arg(h).arg(e).arg(got).arg(expected)));
            }
            // The same head alone: the same bits.
            std::vector<float> alone(start.begin() + h * kAccStride, start.begin() + (h + 1) * kAccStride);
            kernels->weighted_q8_0_rows(weights.data() + h * kRows, kRows, 1, rows.data(),
                                        static_cast<std::int64_t>(row_bytes), kRows, kFirst / 32, kElements / 32,
                                        alone.data(), kAccStride);
            QVERIFY(std::memcmp(alone.data(), acc.data() + h * kAccStride, alone.size() * sizeof(float)) == 0);
        }
    }
    std::vector<float> acc = start;
    QVERIFY_THROWS_EXCEPTION(std::invalid_argument,
                             add_weighted_q8_0_rows(weights.data(), kRows, 1, rows.data(),
                                                    static_cast<std::int64_t>(row_bytes), kRows, 16, 32, acc.data(), 0));
}

#include "tst_quant.moc"

