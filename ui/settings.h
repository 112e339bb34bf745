#pragma once
// What the user sets in Settings, kept in QSettings. The window reads it at
// start and after the dialog; the workers get copies (they never read
// QSettings themselves, so a test can hand them any value).

#include <QString>

class QSettings;

namespace folio::ui {

enum class ComputeDevice { Auto, Cpu, Gpu };

struct FolioSettings {
    QString chatModel;        // a GGUF file; empty: the default model (engine/model_paths.h)
    QString embeddingModel;   // a GGUF file; empty: the default model
    ComputeDevice device = ComputeDevice::Auto;
    int contextTokens = 0;    // 0: the model's training context, at most 8192
    int threads = 0;          // 0: one per core
    QString ocrLanguages = QStringLiteral("eng");  // Tesseract form: "eng+chi_sim"
    QString libraryDirectory; // empty: app::Library::default_directory()
    QString pack;             // the domain pack the Ask and Extract panels start with; empty: none
    bool useAdapters = true;  // the pack's LoRA adapters, when one fits the chat model
    // Ask's search candidates reread by the cross-encoder before the sources
    // are chosen (app::AskOptions::rerank): better sources, seconds slower.
    // On, as `folio ask` does, whenever a reranking model is installed.
    bool rerankSources = true;

    // The chat and embedding models in use: the chosen files, else the
    // defaults found in the models folder; empty when there is none.
    QString effectiveChatModel() const;
    QString effectiveEmbeddingModel() const;
    QString effectiveLibraryDirectory() const;

    static FolioSettings load(QSettings& settings);
    void save(QSettings& settings) const;
};

bool operator==(const FolioSettings& a, const FolioSettings& b);

}  // namespace folio::ui
