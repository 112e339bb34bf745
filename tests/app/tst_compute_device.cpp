// Where chat models run (app/compute_device.h): the names --device takes,
// and what each choice does on this machine. On a machine without a GPU,
// Automatic is the CPU and asking for the GPU says why it cannot be had.

#include <QTest>

#include <filesystem>
#include <memory>
#include <stdexcept>

#include "app/compute_device.h"
#include "engine/device.h"
#include "engine/gguf.h"
#include "engine/model.h"

using namespace folio;

namespace {

const std::filesystem::path kTinyModel = std::filesystem::path(FOLIO_TEST_DATA) / "llama_tiny" / "model.gguf";

}  // namespace

class ComputeDeviceTest : public QObject {
    Q_OBJECT

private slots:
    void namesTheThreeChoices() {
        QCOMPARE(app::parse_device("auto"), app::DeviceChoice::Auto);
        QCOMPARE(app::parse_device("cpu"), app::DeviceChoice::Cpu);
        QCOMPARE(app::parse_device("cuda"), app::DeviceChoice::Cuda);
        try {
            app::parse_device("gpu");
            QFAIL("'gpu' was taken");
        } catch (const std::invalid_argument& e) {
            QCOMPARE(QString(e.what()), QString("--device must be auto, cpu or cuda, not 'gpu'"));
        }
    }

    void cpuStaysOnTheCpu() {
        const engine::GgufFile file = engine::GgufFile::open(kTinyModel);
        std::unique_ptr<engine::Model> model = engine::load_model(file);
        QCOMPARE(app::place_model(*model, app::DeviceChoice::Cpu), std::string("cpu"));
        QVERIFY(!model->on_gpu());
    }

    // Every kind of model the GPU runs: a dense decoder, a mixture of
    // experts, DeepSeek's latent attention, a q8_0 cache, an encoder.
    void automaticPlacesEachKind_data() {
        QTest::addColumn<QString>("folder");
        QTest::addColumn<bool>("q8_0_cache");
        QTest::newRow("llama") << "llama_tiny" << false;
        QTest::newRow("qwen3moe") << "qwen3moe_tiny" << false;
        QTest::newRow("deepseek2") << "deepseek2_tiny" << false;
        QTest::newRow("llama, q8_0 cache") << "llama_tiny" << true;
        QTest::newRow("bert") << "bert_tiny" << false;
    }
    void automaticPlacesEachKind() {
        QFETCH(QString, folder);
        QFETCH(bool, q8_0_cache);
        const engine::GgufFile file =
            engine::GgufFile::open(std::filesystem::path(FOLIO_TEST_DATA) / folder.toStdString() / "model.gguf");
        std::unique_ptr<engine::Model> model = engine::load_model(file);
        const engine::GpuPlacement placement{.kv_type = q8_0_cache ? engine::KvType::Q8_0 : engine::KvType::F16};
        const bool has_gpu = !engine::detect_gpus().gpus.empty();
        QCOMPARE(app::place_model(*model, app::DeviceChoice::Auto, placement), std::string(has_gpu ? "cuda" : "cpu"));
        QCOMPARE(model->on_gpu(), has_gpu);
    }

    void withoutAGpuAutomaticIsTheCpuAndCudaSaysWhy() {
        if (!engine::detect_gpus().gpus.empty()) QSKIP("this machine has a GPU (the CUDA suite covers it)");
        const engine::GgufFile file = engine::GgufFile::open(kTinyModel);
        std::unique_ptr<engine::Model> model = engine::load_model(file);
        QCOMPARE(app::place_model(*model, app::DeviceChoice::Auto), std::string("cpu"));
        try {
            app::place_model(*model, app::DeviceChoice::Cuda);
            QFAIL("placed on a GPU this machine does not have");
        } catch (const engine::ModelError& e) {
            const QString why = e.what();
            QVERIFY2(why.contains("GPU") || why.contains("CUDA"), qPrintable(why));
        }
        QVERIFY(!model->on_gpu());
        // Still runs, on the CPU.
        engine::KvCache cache = model->make_kv_cache(8);
        QVERIFY(!cache.on_gpu());
    }
};

QTEST_GUILESS_MAIN(ComputeDeviceTest)
#include "tst_compute_device.moc"
