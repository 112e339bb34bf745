#include "ui/settings_dialog.h"

#include <QCheckBox>
#include <QComboBox>
#include <QDialogButtonBox>
#include <QDir>
#include <QFile>
#include <QFileDialog>
#include <QFileInfo>
#include <QFormLayout>
#include <QHBoxLayout>
#include <QLabel>
#include <QLineEdit>
#include <QLocale>
#include <QMessageBox>
#include <QProcess>
#include <QPushButton>
#include <QSpinBox>
#include <QStandardItemModel>
#include <QThread>
#include <QVBoxLayout>

#include "app/library.h"
#include "app/packs.h"
#include "engine/device.h"

namespace folio::ui {

// What the dialog's probe thread finds.
struct SettingsProbe {
    engine::GpuReport gpus;
    QStringList packs;
    QString defaultChatModel;       // empty: none in the models folder
    QString defaultEmbeddingModel;
};

namespace {

// The file's first four bytes, as every GGUF version starts.
constexpr char kGgufMagic[4] = {'G', 'G', 'U', 'F'};

// Tesseract's "languages" that are not languages: orientation and script
// detection, and math equations.
bool isOcrLanguage(const QString& code) { return code != QLatin1String("osd") && code != QLatin1String("equ"); }

void setDeviceEnabled(QComboBox* combo, ComputeDevice device, bool enabled) {
    auto* items = qobject_cast<QStandardItemModel*>(combo->model());
    const int row = combo->findData(static_cast<int>(device));
    if (items && row >= 0) items->item(row)->setEnabled(enabled);
}

}  // namespace

SettingsDialog::SettingsDialog(const FolioSettings& current, QWidget* parent) : QDialog(parent) {
    setWindowTitle(tr("Settings"));
    setObjectName(QStringLiteral("settingsDialog"));

    auto* form = new QFormLayout;

    form->addRow(tr("&Chat model:"), createModelRow(chatModelEdit_, "chatModel", current.chatModel));
    form->addRow(tr("&Embedding model:"), createModelRow(embeddingModelEdit_, "embeddingModel", current.embeddingModel));
    chatModelEdit_->setPlaceholderText(tr("Default: looking in the models folder…"));
    embeddingModelEdit_->setPlaceholderText(tr("Default: looking in the models folder…"));

    deviceCombo_ = new QComboBox(this);
    deviceCombo_->setObjectName(QStringLiteral("deviceCombo"));
    deviceCombo_->addItem(tr("Automatic (a GPU when there is one)"), static_cast<int>(ComputeDevice::Auto));
    deviceCombo_->addItem(tr("CPU"), static_cast<int>(ComputeDevice::Cpu));
    deviceCombo_->addItem(tr("GPU"), static_cast<int>(ComputeDevice::Gpu));
    deviceCombo_->setCurrentIndex(deviceCombo_->findData(static_cast<int>(current.device)));
    // Until the probe finds one; a setting that already says GPU stays choosable.
    setDeviceEnabled(deviceCombo_, ComputeDevice::Gpu, current.device == ComputeDevice::Gpu);
    gpuLabel_ = new QLabel(tr("Looking for GPUs…"), this);
    gpuLabel_->setObjectName(QStringLiteral("gpuLabel"));
    gpuLabel_->setWordWrap(true);
    form->addRow(tr("&Device:"), deviceCombo_);
    form->addRow(QString(), gpuLabel_);

    contextSpin_ = new QSpinBox(this);
    contextSpin_->setObjectName(QStringLiteral("contextSpin"));
    contextSpin_->setRange(0, 131072);
    contextSpin_->setSingleStep(1024);
    contextSpin_->setSuffix(tr(" tokens"));
    contextSpin_->setSpecialValueText(tr("Model default (at most 8192)"));
    contextSpin_->setValue(current.contextTokens);
    form->addRow(tr("C&ontext size:"), contextSpin_);

    threadsSpin_ = new QSpinBox(this);
    threadsSpin_->setObjectName(QStringLiteral("threadsSpin"));
    threadsSpin_->setRange(0, 1024);
    threadsSpin_->setSpecialValueText(tr("All cores (%1)").arg(QThread::idealThreadCount()));
    threadsSpin_->setValue(current.threads);
    form->addRow(tr("&Threads:"), threadsSpin_);

    auto* ocr = new QWidget(this);
    ocrLayout_ = new QHBoxLayout(ocr);
    ocrLayout_->setContentsMargins(0, 0, 0, 0);
    for (const QString& code : current.ocrLanguages.split(QLatin1Char('+'), Qt::SkipEmptyParts)) addOcrLanguage(code, true);
    ocrNote_ = new QLabel(tr("Looking for Tesseract's languages…"), ocr);
    ocrNote_->setObjectName(QStringLiteral("ocrNote"));
    ocrLayout_->addStretch(1);
    ocrLayout_->addWidget(ocrNote_);
    form->addRow(tr("OCR &languages:"), ocr);

    auto* library = new QWidget(this);
    auto* libraryRow = new QHBoxLayout(library);
    libraryRow->setContentsMargins(0, 0, 0, 0);
    libraryEdit_ = new QLineEdit(current.libraryDirectory, library);
    libraryEdit_->setObjectName(QStringLiteral("libraryEdit"));
    libraryEdit_->setPlaceholderText(tr("Default: %1").arg(QDir::toNativeSeparators(FolioSettings{}.effectiveLibraryDirectory())));
    auto* libraryBrowse = new QPushButton(tr("Browse…"), library);
    libraryBrowse->setObjectName(QStringLiteral("libraryBrowse"));
    connect(libraryBrowse, &QPushButton::clicked, this, [this] {
        const QString dir = QFileDialog::getExistingDirectory(this, tr("Library Folder"), libraryEdit_->text());
        if (!dir.isEmpty()) libraryEdit_->setText(dir);
    });
    libraryRow->addWidget(libraryEdit_, 1);
    libraryRow->addWidget(libraryBrowse);
    form->addRow(tr("Li&brary folder:"), library);

    packCombo_ = new QComboBox(this);
    packCombo_->setObjectName(QStringLiteral("packCombo"));
    packCombo_->addItem(tr("None"), QString());
    if (!current.pack.isEmpty()) packCombo_->addItem(current.pack, current.pack);
    packCombo_->setCurrentIndex(packCombo_->findData(current.pack));
    form->addRow(tr("Default &pack:"), packCombo_);

    useAdaptersCheck_ = new QCheckBox(tr("Use the pack's adapters when one fits the chat model"), this);
    useAdaptersCheck_->setObjectName(QStringLiteral("useAdaptersCheck"));
    useAdaptersCheck_->setChecked(current.useAdapters);
    form->addRow(QString(), useAdaptersCheck_);

    // Offered only with a reranking model to read them; a setting kept from
    // when there was one stays as it was.
    rerankSourcesCheck_ = new QCheckBox(tr("Rerank Ask's sources with the cross-encoder (seconds slower)"), this);
    rerankSourcesCheck_->setObjectName(QStringLiteral("rerankSourcesCheck"));
    rerankSourcesCheck_->setChecked(current.rerankSources);
    if (app::Library::reranker_model_path().empty()) {
        rerankSourcesCheck_->setEnabled(false);
        rerankSourcesCheck_->setToolTip(tr("No reranking model is installed (installer/fetch-models.sh)"));
    }
    form->addRow(QString(), rerankSourcesCheck_);

    auto* buttons = new QDialogButtonBox(QDialogButtonBox::Ok | QDialogButtonBox::Cancel, this);
    buttons->setObjectName(QStringLiteral("settingsButtons"));
    buttons->button(QDialogButtonBox::Ok)->setObjectName(QStringLiteral("settingsOkButton"));
    connect(buttons, &QDialogButtonBox::accepted, this, &SettingsDialog::accept);
    connect(buttons, &QDialogButtonBox::rejected, this, &SettingsDialog::reject);

    auto* layout = new QVBoxLayout(this);
    layout->addLayout(form);
    layout->addWidget(buttons);

    // The CUDA runtime's first call and the models folder scan (it opens
    // each GGUF file) can each take longer than a UI thread may wait.
    probeThread_ = std::thread([this] {
        SettingsProbe probe;
        probe.gpus = engine::detect_gpus();
        for (const std::string& name : app::pack_names()) probe.packs << QString::fromStdString(name);
        probe.defaultChatModel = FolioSettings{}.effectiveChatModel();
        probe.defaultEmbeddingModel = FolioSettings{}.effectiveEmbeddingModel();
        QMetaObject::invokeMethod(this, [this, probe] { onProbed(probe); }, Qt::QueuedConnection);
    });

    tesseract_ = new QProcess(this);
    connect(tesseract_, &QProcess::finished, this, &SettingsDialog::onTesseractFinished);
    connect(tesseract_, &QProcess::errorOccurred, this, [this](QProcess::ProcessError error) {
        if (error != QProcess::FailedToStart) return;  // the others end in finished() too
        ocrNote_->setText(tr("Tesseract is not installed, so scanned pages cannot be read."));
        probeDone();
    });
    tesseract_->start(QStringLiteral("tesseract"), {QStringLiteral("--list-langs")});
}

// The probe's result is posted to the dialog; once destroyed, it is dropped.
// A Tesseract still running is killed; its finished() would otherwise reach
// widgets already gone.
SettingsDialog::~SettingsDialog() {
    disconnect(tesseract_, nullptr, this, nullptr);
    tesseract_->kill();
    tesseract_->waitForFinished(1000);
    probeThread_.join();
}

QWidget* SettingsDialog::createModelRow(QLineEdit*& edit, const char* name, const QString& value) {
    auto* row = new QWidget(this);
    auto* layout = new QHBoxLayout(row);
    layout->setContentsMargins(0, 0, 0, 0);
    edit = new QLineEdit(value, row);
    edit->setObjectName(QString::fromLatin1(name) + QStringLiteral("Edit"));
    edit->setClearButtonEnabled(true);
    auto* browse = new QPushButton(tr("Browse…"), row);
    browse->setObjectName(QString::fromLatin1(name) + QStringLiteral("Browse"));
    connect(browse, &QPushButton::clicked, this, [this, edit] {
        const QString file = QFileDialog::getOpenFileName(this, tr("Model File"), QFileInfo(edit->text()).absolutePath(),
                                                          tr("GGUF models (*.gguf);;All files (*)"));
        if (!file.isEmpty()) edit->setText(file);
    });
    layout->addWidget(edit, 1);
    layout->addWidget(browse);
    return row;
}

void SettingsDialog::onProbed(const SettingsProbe& probe) {
    const auto defaultText = [](const QString& model) {
        return model.isEmpty() ? tr("No default: the models folder has no suitable GGUF file")
                               : tr("Default: %1").arg(QDir::toNativeSeparators(model));
    };
    chatModelEdit_->setPlaceholderText(defaultText(probe.defaultChatModel));
    embeddingModelEdit_->setPlaceholderText(defaultText(probe.defaultEmbeddingModel));

    const QLocale locale;
    QStringList gpus;
    for (const engine::GpuInfo& gpu : probe.gpus.gpus)
        gpus << tr("GPU %1: %2, %3 free of %4")
                    .arg(gpu.index)
                    .arg(QString::fromStdString(gpu.name), locale.formattedDataSize(qint64(gpu.free_bytes)),
                         locale.formattedDataSize(qint64(gpu.total_bytes)));
    if (gpus.isEmpty()) {
        const QString note = QString::fromStdString(probe.gpus.note);
        gpuLabel_->setText(note.isEmpty() ? tr("No GPU can be used; Folio runs on the CPU.")
                                          : tr("No GPU can be used (%1); Folio runs on the CPU.").arg(note));
    } else {
        gpuLabel_->setText(gpus.join(QLatin1Char('\n')));
    }
    setDeviceEnabled(deviceCombo_, ComputeDevice::Gpu,
                     !gpus.isEmpty() || deviceCombo_->currentData().toInt() == static_cast<int>(ComputeDevice::Gpu));

    for (const QString& pack : probe.packs)
        if (packCombo_->findData(pack) < 0) packCombo_->addItem(pack, pack);
    probeDone();
}

void SettingsDialog::onTesseractFinished() {
    const QString output =
        QString::fromLocal8Bit(tesseract_->readAllStandardOutput() + tesseract_->readAllStandardError());
    QStringList languages;
    // The first line is "List of available languages in "DIR" (N):".
    const QStringList lines = output.split(QLatin1Char('\n'), Qt::SkipEmptyParts);
    for (qsizetype i = 1; i < lines.size(); ++i) {
        const QString code = lines[i].trimmed();
        if (!code.isEmpty() && !code.contains(QLatin1Char(' ')) && isOcrLanguage(code)) languages << code;
    }
    if (tesseract_->exitStatus() != QProcess::NormalExit || tesseract_->exitCode() != 0 || languages.isEmpty()) {
        ocrNote_->setText(tr("Tesseract lists no languages: %1").arg(output.simplified().left(200)));
    } else {
        ocrNote_->clear();
        for (const QString& code : languages) addOcrLanguage(code, false);
        for (QCheckBox* box : ocrBoxes_) {
            if (languages.contains(box->property("language").toString())) continue;
            box->setText(tr("%1 (not installed)").arg(box->property("language").toString()));
        }
    }
    probeDone();
}

void SettingsDialog::addOcrLanguage(const QString& code, bool checked) {
    for (QCheckBox* box : ocrBoxes_)
        if (box->property("language").toString() == code) return;
    auto* box = new QCheckBox(code, ocrLayout_->parentWidget());
    box->setObjectName(QStringLiteral("ocrLanguage_") + code);
    box->setProperty("language", code);
    box->setChecked(checked);
    ocrLayout_->insertWidget(static_cast<int>(ocrBoxes_.size()), box);
    ocrBoxes_ << box;
}

void SettingsDialog::probeDone() {
    if (--probesPending_ == 0) emit probesFinished();
}

FolioSettings SettingsDialog::settings() const {
    FolioSettings settings;
    settings.chatModel = chatModelEdit_->text().trimmed();
    settings.embeddingModel = embeddingModelEdit_->text().trimmed();
    settings.device = static_cast<ComputeDevice>(deviceCombo_->currentData().toInt());
    settings.contextTokens = contextSpin_->value();
    settings.threads = threadsSpin_->value();
    QStringList languages;
    for (const QCheckBox* box : ocrBoxes_)
        if (box->isChecked()) languages << box->property("language").toString();
    settings.ocrLanguages = languages.join(QLatin1Char('+'));
    settings.libraryDirectory = libraryEdit_->text().trimmed();
    settings.pack = packCombo_->currentData().toString();
    settings.useAdapters = useAdaptersCheck_->isChecked();
    settings.rerankSources = rerankSourcesCheck_->isChecked();
    return settings;
}

QString SettingsDialog::modelFileProblem(const QString& path) {
    const QFileInfo info(path);
    const QString shown = QDir::toNativeSeparators(path);
    if (!info.exists()) return tr("%1 does not exist.").arg(shown);
    if (!info.isFile()) return tr("%1 is not a file.").arg(shown);
    QFile file(path);
    if (!file.open(QIODevice::ReadOnly)) return tr("%1 cannot be read.").arg(shown);
    if (file.read(sizeof kGgufMagic) != QByteArray(kGgufMagic, sizeof kGgufMagic))
        return tr("%1 is not a GGUF model file (it does not start with “GGUF”).").arg(shown);
    return {};
}

QString SettingsDialog::validationError() const {
    const FolioSettings chosen = settings();
    if (!chosen.chatModel.isEmpty())
        if (const QString problem = modelFileProblem(chosen.chatModel); !problem.isEmpty())
            return tr("Chat model: %1").arg(problem);
    if (!chosen.embeddingModel.isEmpty())
        if (const QString problem = modelFileProblem(chosen.embeddingModel); !problem.isEmpty())
            return tr("Embedding model: %1").arg(problem);
    if (chosen.ocrLanguages.isEmpty()) return tr("Choose at least one OCR language.");
    if (!chosen.libraryDirectory.isEmpty()) {
        const QString shown = QDir::toNativeSeparators(chosen.libraryDirectory);
        if (!QDir().mkpath(chosen.libraryDirectory)) return tr("The library folder %1 cannot be created.").arg(shown);
        if (!QFileInfo(chosen.libraryDirectory).isWritable())
            return tr("The library folder %1 cannot be written to.").arg(shown);
    }
    return {};
}

void SettingsDialog::accept() {
    if (const QString problem = validationError(); !problem.isEmpty()) {
        showError(problem);
        return;
    }
    QDialog::accept();
}

void SettingsDialog::showError(const QString& text) {
    errorBox_.show(this, tr("Settings"), text);
}

}  // namespace folio::ui
