#include <QTemporaryDir>
#include <QtTest>

#include <cstdint>
#include <filesystem>
#include <fstream>
#include <optional>
#include <string>
#include <vector>

#include "engine/ggml_types.h"
#include "engine/gguf.h"
#include "engine/model_paths.h"

using namespace folio::engine;

namespace {

// A tiny but valid GGUF: the architecture key and one F32 tensor.
std::vector<std::uint8_t> gguf_bytes(std::string_view architecture) {
    GgufWriter writer;
    writer.add_string("general.architecture", architecture);
    const std::int64_t ne[] = {4};
    writer.add_tensor("token_embd.weight", GgmlType::F32, ne, std::vector<std::uint8_t>(16, 0));
    return writer.to_bytes();
}

void write_bytes(const std::filesystem::path& path, const std::vector<std::uint8_t>& bytes) {
    std::ofstream out(path, std::ios::binary);
    out.write(reinterpret_cast<const char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
}

void write_gguf(const std::filesystem::path& path, std::string_view architecture) {
    write_bytes(path, gguf_bytes(architecture));
}

std::filesystem::path path_of(const QTemporaryDir& dir) {
    return dir.path().toStdString();
}

}  // namespace

class ModelPathsTest : public QObject {
    Q_OBJECT

private slots:
    void init();
    void cleanup();

    void folioModelsOverridesEverything();
    void xdgDataHomeIsTheFallback();
    void homeIsTheLastFallback();
    void emptyVariablesCountAsUnset();
    void chatPrefersSmolLM2ByFileName();
    void chatTakesFirstChatArchitectureByName();
    void embeddingTakesBertOnly();
    void corruptAndNonGgufFilesAreSkipped();
    void missingDirectoryFindsNothing();
    void oneArgumentFormReadsDefaultDirectory();

private:
    // The variables default_models_directory() reads, restored after each test.
    struct SavedVariable {
        const char* name;
        std::optional<QByteArray> value;
    };
    std::vector<SavedVariable> saved_;
};

void ModelPathsTest::init() {
    saved_.clear();
    for (const char* name : {"FOLIO_MODELS", "XDG_DATA_HOME", "HOME"}) {
        saved_.push_back({name, qEnvironmentVariableIsSet(name)
                                    ? std::optional<QByteArray>(qgetenv(name))
                                    : std::nullopt});
    }
}

void ModelPathsTest::cleanup() {
    for (const SavedVariable& variable : saved_) {
        if (variable.value)
            qputenv(variable.name, *variable.value);
        else
            qunsetenv(variable.name);
    }
}

void ModelPathsTest::folioModelsOverridesEverything() {
    qputenv("FOLIO_MODELS", "/opt/models");
    qputenv("XDG_DATA_HOME", "/xdg");
    qputenv("HOME", "/home/reader");
    QCOMPARE(default_models_directory(), std::string("/opt/models"));
}

void ModelPathsTest::xdgDataHomeIsTheFallback() {
    qunsetenv("FOLIO_MODELS");
    qputenv("XDG_DATA_HOME", "/xdg");
    qputenv("HOME", "/home/reader");
    QCOMPARE(default_models_directory(), std::string("/xdg/folio/models"));
}

void ModelPathsTest::homeIsTheLastFallback() {
    qunsetenv("FOLIO_MODELS");
    qunsetenv("XDG_DATA_HOME");
    qputenv("HOME", "/home/reader");
    QCOMPARE(default_models_directory(), std::string("/home/reader/.local/share/folio/models"));
}

// As in installer/fetch-models.sh's ${VAR:-...}.
void ModelPathsTest::emptyVariablesCountAsUnset() {
    qputenv("FOLIO_MODELS", "");
    qputenv("XDG_DATA_HOME", "");
    qputenv("HOME", "/home/reader");
    QCOMPARE(default_models_directory(), std::string("/home/reader/.local/share/folio/models"));
}

void ModelPathsTest::chatPrefersSmolLM2ByFileName() {
    QTemporaryDir dir;
    QVERIFY(dir.isValid());
    const auto models = path_of(dir);
    write_gguf(models / "a-gemma.gguf", "gemma3");
    write_gguf(models / "SmolLM2-135M-Instruct.Q4_1.gguf", "llama");
    QCOMPARE(find_default_model(ModelRole::Chat, models),
             std::optional<std::string>((models / "SmolLM2-135M-Instruct.Q4_1.gguf").string()));
}

void ModelPathsTest::chatTakesFirstChatArchitectureByName() {
    QTemporaryDir dir;
    QVERIFY(dir.isValid());
    const auto models = path_of(dir);
    write_gguf(models / "a-minilm.gguf", "bert");
    write_gguf(models / "c-qwen.gguf", "qwen2");
    write_gguf(models / "b-gemma.gguf", "gemma3");
    QCOMPARE(find_default_model(ModelRole::Chat, models),
             std::optional<std::string>((models / "b-gemma.gguf").string()));
}

void ModelPathsTest::embeddingTakesBertOnly() {
    QTemporaryDir dir;
    QVERIFY(dir.isValid());
    const auto models = path_of(dir);
    write_gguf(models / "SmolLM2-135M-Instruct.Q4_1.gguf", "llama");
    // The Hugging Face folder fetch-models.sh installs is not a GGUF yet.
    std::filesystem::create_directory(models / "all-MiniLM-L6-v2-hf");
    write_bytes(models / "all-MiniLM-L6-v2-hf" / "model.safetensors", {8, 0, 0, 0, 0, 0, 0, 0});
    QCOMPARE(find_default_model(ModelRole::Embedding, models), std::nullopt);

    write_gguf(models / "all-MiniLM-L6-v2.gguf", "bert");
    QCOMPARE(find_default_model(ModelRole::Embedding, models),
             std::optional<std::string>((models / "all-MiniLM-L6-v2.gguf").string()));
    QCOMPARE(find_default_model(ModelRole::Chat, models),
             std::optional<std::string>((models / "SmolLM2-135M-Instruct.Q4_1.gguf").string()));
}

void ModelPathsTest::corruptAndNonGgufFilesAreSkipped() {
    QTemporaryDir dir;
    QVERIFY(dir.isValid());
    const auto models = path_of(dir);
    write_bytes(models / "SmolLM2-broken.gguf", {'n', 'o', 't', ' ', 'g', 'g', 'u', 'f'});
    std::vector<std::uint8_t> truncated = gguf_bytes("llama");
    truncated.resize(truncated.size() / 2);
    write_bytes(models / "a-truncated.gguf", truncated);
    write_bytes(models / "empty.gguf", {});
    write_gguf(models / "b-llama.bin", "llama");  // valid, but not named *.gguf
    QCOMPARE(find_default_model(ModelRole::Chat, models), std::nullopt);

    write_gguf(models / "z-llama.gguf", "llama");
    QCOMPARE(find_default_model(ModelRole::Chat, models),
             std::optional<std::string>((models / "z-llama.gguf").string()));
    QCOMPARE(find_default_model(ModelRole::Embedding, models), std::nullopt);
}

void ModelPathsTest::missingDirectoryFindsNothing() {
    QTemporaryDir dir;
    QVERIFY(dir.isValid());
    QCOMPARE(find_default_model(ModelRole::Chat, path_of(dir) / "absent"), std::nullopt);
    QCOMPARE(find_default_model(ModelRole::Embedding, path_of(dir) / "absent"), std::nullopt);
}

void ModelPathsTest::oneArgumentFormReadsDefaultDirectory() {
    QTemporaryDir dir;
    QVERIFY(dir.isValid());
    const auto models = path_of(dir) / "folio" / "models";
    std::filesystem::create_directories(models);
    write_gguf(models / "SmolLM2-135M-Instruct.Q4_1.gguf", "llama");
    qunsetenv("FOLIO_MODELS");
    qputenv("XDG_DATA_HOME", dir.path().toUtf8());
    QCOMPARE(find_default_model(ModelRole::Chat),
             std::optional<std::string>((models / "SmolLM2-135M-Instruct.Q4_1.gguf").string()));

    qputenv("FOLIO_MODELS", (dir.path() + "/elsewhere").toUtf8());
    QCOMPARE(find_default_model(ModelRole::Chat), std::nullopt);
}

QTEST_GUILESS_MAIN(ModelPathsTest)
#include "tst_model_paths.moc"
