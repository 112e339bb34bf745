#include "ui/settings.h"

#include <QSettings>

#include <algorithm>

#include "app/library.h"
#include "engine/model_paths.h"

namespace folio::ui {
namespace {

QString defaultModel(engine::ModelRole role) {
    const auto found = engine::find_default_model(role);
    return found ? QString::fromStdString(*found) : QString();
}

const char* deviceName(ComputeDevice device) {
    switch (device) {
        case ComputeDevice::Cpu: return "cpu";
        case ComputeDevice::Gpu: return "gpu";
        case ComputeDevice::Auto: break;
    }
    return "auto";
}

ComputeDevice parseDevice(const QString& name) {
    if (name == QLatin1String("cpu")) return ComputeDevice::Cpu;
    if (name == QLatin1String("gpu")) return ComputeDevice::Gpu;
    return ComputeDevice::Auto;
}

}  // namespace

QString FolioSettings::effectiveChatModel() const {
    return chatModel.isEmpty() ? defaultModel(engine::ModelRole::Chat) : chatModel;
}

QString FolioSettings::effectiveEmbeddingModel() const {
    return embeddingModel.isEmpty() ? defaultModel(engine::ModelRole::Embedding) : embeddingModel;
}

QString FolioSettings::effectiveLibraryDirectory() const {
    return libraryDirectory.isEmpty() ? QString::fromStdString(app::Library::default_directory()) : libraryDirectory;
}

FolioSettings FolioSettings::load(QSettings& settings) {
    FolioSettings loaded;
    settings.beginGroup(QStringLiteral("settings"));
    loaded.chatModel = settings.value(QStringLiteral("chatModel")).toString();
    loaded.embeddingModel = settings.value(QStringLiteral("embeddingModel")).toString();
    loaded.device = parseDevice(settings.value(QStringLiteral("device")).toString());
    loaded.contextTokens = std::clamp(settings.value(QStringLiteral("contextTokens"), 0).toInt(), 0, 131072);
    loaded.threads = std::clamp(settings.value(QStringLiteral("threads"), 0).toInt(), 0, 1024);
    loaded.ocrLanguages = settings.value(QStringLiteral("ocrLanguages"), loaded.ocrLanguages).toString();
    loaded.libraryDirectory = settings.value(QStringLiteral("libraryDirectory")).toString();
    loaded.pack = settings.value(QStringLiteral("pack")).toString();
    loaded.useAdapters = settings.value(QStringLiteral("useAdapters"), true).toBool();
    loaded.rerankSources = settings.value(QStringLiteral("rerankSources"), loaded.rerankSources).toBool();
    settings.endGroup();
    return loaded;
}

void FolioSettings::save(QSettings& settings) const {
    settings.beginGroup(QStringLiteral("settings"));
    settings.setValue(QStringLiteral("chatModel"), chatModel);
    settings.setValue(QStringLiteral("embeddingModel"), embeddingModel);
    settings.setValue(QStringLiteral("device"), QString::fromLatin1(deviceName(device)));
    settings.setValue(QStringLiteral("contextTokens"), contextTokens);
    settings.setValue(QStringLiteral("threads"), threads);
    settings.setValue(QStringLiteral("ocrLanguages"), ocrLanguages);
    settings.setValue(QStringLiteral("libraryDirectory"), libraryDirectory);
    settings.setValue(QStringLiteral("pack"), pack);
    settings.setValue(QStringLiteral("useAdapters"), useAdapters);
    settings.setValue(QStringLiteral("rerankSources"), rerankSources);
    settings.endGroup();
}

bool operator==(const FolioSettings& a, const FolioSettings& b) {
    return a.chatModel == b.chatModel && a.embeddingModel == b.embeddingModel && a.device == b.device &&
           a.contextTokens == b.contextTokens && a.threads == b.threads && a.ocrLanguages == b.ocrLanguages &&
           a.libraryDirectory == b.libraryDirectory && a.pack == b.pack && a.useAdapters == b.useAdapters &&
           a.rerankSources == b.rerankSources;
}

}  // namespace folio::ui
