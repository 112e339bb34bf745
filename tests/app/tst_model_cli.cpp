// End-to-end tests of `folio model list|random|quantize` and `folio bench
// perplexity`: their JSON contracts, and bad input, each one line that leaves
// any existing output file as it was.

#include <QDir>
#include <QFile>
#include <QFileInfo>
#include <QJsonDocument>
#include <QJsonObject>
#include <QTemporaryDir>
#include <QTest>

#include <filesystem>

#include "engine/gguf.h"
#include "engine/model_paths.h"
#include "engine/model_zoo.h"
#include "tests/support/folio_process.h"

namespace {

const QString kTestData = QString::fromStdString(std::filesystem::path(FOLIO_TEST_DATA).string());

using folio::test::run_folio;
using Run = folio::test::FolioRun;

QJsonObject only_line(const Run& run) {
    const QStringList lines = run.out.split('\n', Qt::SkipEmptyParts);
    return lines.size() == 1 ? QJsonDocument::fromJson(lines[0].toUtf8()).object() : QJsonObject();
}

}  // namespace

class ModelCliTest : public QObject {
    Q_OBJECT

private slots:
    void listNamesEveryModel() {
        const Run run = run_folio({"model", "list", "--json"});
        QVERIFY2(run.exit_code == 0, qPrintable(run.err));
        const QStringList lines = run.out.split('\n', Qt::SkipEmptyParts);
        QCOMPARE(lines.size(), static_cast<qsizetype>(folio::engine::zoo_models().size()));
        const QJsonObject first = QJsonDocument::fromJson(lines[0].toUtf8()).object();
        QCOMPARE(first["name"].toString(), QString("smollm2-135m"));
        QCOMPARE(first["parameters"].toInteger(), 134515008);
    }

    void randomThenQuantize() {
        QTemporaryDir dir;
        const QString random = dir.filePath("random.gguf");
        const Run written = run_folio({"model", "random", "--like", "qwen3-0.6b", "--layers", "2", "--quant",
                                       "Q4_K_M", "--seed", "3", "--out", random, "--json"});
        QVERIFY2(written.exit_code == 0, qPrintable(written.err));
        const QJsonObject object = only_line(written);
        QCOMPARE(object["architecture"].toString(), QString("qwen3"));
        QCOMPARE(object["quant"].toString(), QString("Q4_K_M"));
        QCOMPARE(object["seed"].toInteger(), 3);
        QCOMPARE(object["bytes"].toInteger(), QFileInfo(random).size());
        QCOMPARE(folio::engine::GgufFile::open(random.toStdString()).get_u32("qwen3.block_count"), 2u);

        const QString quantized = dir.filePath("q8.gguf");
        const Run converted = run_folio({"model", "quantize", random, "--quant", "q8_0", "--out", quantized, "--json"});
        QVERIFY2(converted.exit_code == 0, qPrintable(converted.err));
        QCOMPARE(only_line(converted)["quant"].toString(), QString("Q8_0"));
        const folio::engine::GgufFile file = folio::engine::GgufFile::open(quantized.toStdString());
        QCOMPARE(file.get_u32("general.file_type"), 7u);
        QCOMPARE(file.tensor("blk.0.attn_q.weight").type, folio::engine::GgmlType::Q8_0);
        QCOMPARE(file.tensor("blk.0.attn_q_norm.weight").type, folio::engine::GgmlType::F32);
    }

    void badInputIsOneLine_data() {
        QTest::addColumn<QStringList>("arguments");
        QTest::addColumn<QString>("message");
        QTest::newRow("unknown name") << QStringList{"model", "random", "--like", "gpt-5", "--out", "OUT"}
                                      << "unknown model 'gpt-5' (known: smollm2-135m,";
        QTest::newRow("unknown type") << QStringList{"model", "random", "--like", "smollm2-135m", "--quant", "Q9_K",
                                                     "--out", "OUT"}
                                      << "unknown weight type 'Q9_K'";
        QTest::newRow("too many layers") << QStringList{"model", "random", "--like", "smollm2-135m", "--layers", "31",
                                                        "--out", "OUT"}
                                         << "has 30 layers, not 31";
        QTest::newRow("no input") << QStringList{"model", "quantize", "/nonexistent.gguf", "--quant", "Q8_0", "--out",
                                                 "OUT"}
                                  << "no model file /nonexistent.gguf";
        QTest::newRow("no tokenizer") << QStringList{"bench", "perplexity", "--model", kTestData + "/llama_tiny/model.gguf",
                                                     "--text", kTestData + "/perplexity/apple-2021-mdna.txt"}
                                      << "has no tokenizer";
    }
    void badInputIsOneLine() {
        QFETCH(QStringList, arguments);
        QFETCH(QString, message);
        QTemporaryDir dir;
        const QString out = dir.filePath("existing.gguf");
        {
            QFile file(out);
            QVERIFY(file.open(QIODevice::WriteOnly));
            file.write("keep me");
        }
        arguments.replaceInStrings("OUT", out);
        const Run run = run_folio(arguments);
        QVERIFY(run.exit_code != 0);
        QVERIFY2(run.err.startsWith("folio: error: ") && run.err.count('\n') == 1, qPrintable(run.err));
        QVERIFY2(run.err.contains(message), qPrintable(run.err));
        QFile file(out);
        QVERIFY(file.open(QIODevice::ReadOnly));
        QCOMPARE(file.readAll(), QByteArray("keep me"));
        QCOMPARE(QDir(dir.path()).entryList(QDir::Files | QDir::Hidden).size(), 1);
    }

    void perplexityJson() {
        const auto model = folio::engine::find_default_model(folio::engine::ModelRole::Chat);
        if (!model || !QString::fromStdString(*model).contains("SmolLM2"))
            QSKIP("SmolLM2 is not installed (installer/fetch-models.sh)");
        const Run run = run_folio({"bench", "perplexity", "--model", QString::fromStdString(*model), "--text",
                                   kTestData + "/perplexity/apple-2021-mdna.txt", "--ctx", "512", "--json"});
        QVERIFY2(run.exit_code == 0, qPrintable(run.err));
        const QJsonObject object = only_line(run);
        QCOMPARE(object["ctx"].toInt(), 512);
        QCOMPARE(object["windows"].toInt(), object["tokens"].toInt() / 512);
        QCOMPARE(object["scored"].toInt(), object["windows"].toInt() * 255);
        const double perplexity = object["perplexity"].toDouble();
        QVERIFY2(perplexity > 4 && perplexity < 20, qPrintable(QString::number(perplexity)));
    }
};

QTEST_GUILESS_MAIN(ModelCliTest)
#include "tst_model_cli.moc"
