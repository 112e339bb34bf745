#pragma once
// The Settings dialog: edits a FolioSettings (models, compute device, context
// and threads, OCR languages, library folder, default pack, adapters). OK
// checks the settings first and, when one cannot work (a model file that is
// missing or not a GGUF, a library folder that cannot be created), says why
// and stays open.
//
// Thread rules: UI thread only. What the dialog offers is probed off that
// thread as it opens: the GPUs and default models and packs on a std::thread
// the dialog joins when destroyed, the installed Tesseract languages through
// an asynchronous QProcess. Until a probe answers, the dialog shows what the
// current settings name, so settings() is exact at any time.

#include <QDialog>
#include <QList>
#include <QString>

#include <thread>

#include "ui/error_box.h"
#include "ui/settings.h"

class QCheckBox;
class QComboBox;
class QHBoxLayout;
class QLabel;
class QLineEdit;
class QProcess;
class QSpinBox;

namespace folio::ui {

struct SettingsProbe;

class SettingsDialog final : public QDialog {
    Q_OBJECT

public:
    explicit SettingsDialog(const FolioSettings& current, QWidget* parent = nullptr);
    ~SettingsDialog() override;

    // The settings as the widgets show them.
    FolioSettings settings() const;

    // Why settings() cannot be used, one sentence; empty when it can. May
    // create the library folder (that is the check that it can be created).
    QString validationError() const;

    // Why `path` cannot be used as a model file: missing, not a file,
    // unreadable, or not starting with the GGUF magic. Empty when it can.
    static QString modelFileProblem(const QString& path);

    // Both probes (devices and defaults; Tesseract's languages) have answered.
    bool probesDone() const { return probesPending_ == 0; }

public slots:
    void accept() override;

signals:
    void probesFinished();

private:
    QWidget* createModelRow(QLineEdit*& edit, const char* name, const QString& value);
    void onProbed(const SettingsProbe& probe);
    void onTesseractFinished();
    void addOcrLanguage(const QString& code, bool checked);
    void probeDone();
    void showError(const QString& text);

    QLineEdit* chatModelEdit_ = nullptr;
    QLineEdit* embeddingModelEdit_ = nullptr;
    QComboBox* deviceCombo_ = nullptr;
    QLabel* gpuLabel_ = nullptr;
    QSpinBox* contextSpin_ = nullptr;
    QSpinBox* threadsSpin_ = nullptr;
    QHBoxLayout* ocrLayout_ = nullptr;
    QList<QCheckBox*> ocrBoxes_;  // in the order the setting lists them, then Tesseract's
    QLabel* ocrNote_ = nullptr;
    QLineEdit* libraryEdit_ = nullptr;
    QComboBox* packCombo_ = nullptr;
    QCheckBox* useAdaptersCheck_ = nullptr;
    QCheckBox* rerankSourcesCheck_ = nullptr;
    ErrorBox errorBox_{QStringLiteral("settingsErrorBox")};

    QProcess* tesseract_ = nullptr;
    std::thread probeThread_;
    int probesPending_ = 2;
};

}  // namespace folio::ui
