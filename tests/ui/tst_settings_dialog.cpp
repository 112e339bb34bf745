// The Settings dialog, offscreen, driven through its widgets: it shows the
// settings it was given, edits round-trip to settings(), the probes fill in
// GPUs, Tesseract's languages and the packs, and OK refuses a model file
// that is not a GGUF or a library folder that cannot be created, saying why.
// FolioSettings' QSettings load/save round-trip on an ini file.

#include <QAbstractButton>
#include <QCheckBox>
#include <QComboBox>
#include <QDir>
#include <QFile>
#include <QLabel>
#include <QLineEdit>
#include <QMessageBox>
#include <QSettings>
#include <QSpinBox>
#include <QStandardItemModel>
#include <QTemporaryDir>
#include <QTest>
#include <QThread>

#include "engine/device.h"
#include "tests/support/message_boxes.h"
#include "tests/support/test_documents.h"
#include "ui/settings.h"
#include "ui/settings_dialog.h"

using folio::ui::ComputeDevice;
using folio::ui::FolioSettings;
using folio::ui::SettingsDialog;

namespace {

const QString kTestData = QStringLiteral(FOLIO_TEST_DATA);

QMessageBox* visibleBox(QWidget* parent, const QString& objectName) {
    return folio::test::visibleMessageBox(*parent, objectName);
}

}  // namespace

class SettingsDialogTest : public QObject {
    Q_OBJECT

    QTemporaryDir temp_;

    FolioSettings sample() const {
        FolioSettings settings;
        settings.chatModel = kTestData + "/llama_tiny/model.gguf";
        settings.embeddingModel = kTestData + "/bert_tiny/model.gguf";
        settings.device = ComputeDevice::Cpu;
        settings.contextTokens = 2048;
        settings.threads = 3;
        settings.ocrLanguages = "chi_sim+eng";
        settings.libraryDirectory = temp_.filePath("library");
        settings.pack = "medical";
        settings.useAdapters = false;
        settings.rerankSources = true;
        return settings;
    }

    template <typename T>
    static T* child(const SettingsDialog& dialog, const char* name) {
        T* widget = dialog.findChild<T*>(QString::fromLatin1(name));
        [&] { QVERIFY2(widget, name); }();
        return widget;
    }

private slots:
    void initTestCase() {
        QVERIFY(temp_.isValid());
        // An empty pack store and models folder: the packs are the built-in
        // ones and there is no default model.
        qputenv("FOLIO_PACKS", temp_.filePath("packs").toUtf8());
        qputenv("FOLIO_MODELS", temp_.filePath("models").toUtf8());
    }

    void shows_the_settings_and_what_the_machine_offers() {
        const FolioSettings given = sample();
        SettingsDialog dialog(given);
        QCOMPARE(dialog.settings(), given);  // before any probe answers, too
        dialog.show();
        QVERIFY(QTest::qWaitForWindowExposed(&dialog));
        QTRY_VERIFY_WITH_TIMEOUT(dialog.probesDone(), 20000);
        QCOMPARE(dialog.settings(), given);

        // Tesseract's languages, the setting's order first; osd is no language.
        QVERIFY(child<QCheckBox>(dialog, "ocrLanguage_eng")->isChecked());
        QVERIFY(child<QCheckBox>(dialog, "ocrLanguage_chi_sim")->isChecked());
        QVERIFY(!dialog.findChild<QCheckBox*>("ocrLanguage_osd"));

        auto* packs = child<QComboBox>(dialog, "packCombo");
        QVERIFY(packs->findData(QString("finance")) > 0);
        QCOMPARE(packs->currentData().toString(), QString("medical"));

        const folio::engine::GpuReport report = folio::engine::detect_gpus();
        auto* device = child<QComboBox>(dialog, "deviceCombo");
        const auto* items = qobject_cast<QStandardItemModel*>(device->model());
        const bool gpuEnabled = items->item(device->findData(int(ComputeDevice::Gpu)))->isEnabled();
        const QString gpuText = child<QLabel>(dialog, "gpuLabel")->text();
        if (report.gpus.empty()) {
            QVERIFY(!gpuEnabled);
            QVERIFY2(gpuText.contains(QString::fromStdString(report.note)) && gpuText.contains("runs on the CPU"),
                     qPrintable(gpuText));
        } else {
            QVERIFY(gpuEnabled);
            QVERIFY2(gpuText.contains(QString::fromStdString(report.gpus[0].name)) && gpuText.contains("free"),
                     qPrintable(gpuText));
        }
        QVERIFY(child<QSpinBox>(dialog, "threadsSpin")->specialValueText().contains(
            QString::number(QThread::idealThreadCount())));
        // Empty fields say what the default would be: here, none.
        QVERIFY(child<QLineEdit>(dialog, "chatModelEdit")->placeholderText().startsWith("No default"));
        QVERIFY(child<QLineEdit>(dialog, "libraryEdit")->placeholderText().startsWith("Default: "));
        // No reranking model here: the choice is shown, kept, and not offered.
        auto* rerank = child<QCheckBox>(dialog, "rerankSourcesCheck");
        QVERIFY(rerank->isChecked() && !rerank->isEnabled());
        QVERIFY(rerank->toolTip().contains("No reranking model"));
    }

    void edits_round_trip_through_the_widgets() {
        qputenv("FOLIO_RERANKER_MODEL", (kTestData + "/bert_cross_tiny/model.gguf").toUtf8());
        SettingsDialog dialog{FolioSettings{}};
        qunsetenv("FOLIO_RERANKER_MODEL");
        dialog.show();
        QVERIFY(QTest::qWaitForWindowExposed(&dialog));
        QTRY_VERIFY_WITH_TIMEOUT(dialog.probesDone(), 20000);

        FolioSettings expected;
        expected.chatModel = kTestData + "/llama_tiny/model.gguf";
        expected.embeddingModel = kTestData + "/bert_tiny/model.gguf";
        expected.device = ComputeDevice::Cpu;
        expected.contextTokens = 4096;
        expected.threads = 2;
        expected.ocrLanguages = "eng+chi_sim";
        expected.libraryDirectory = temp_.filePath("new/library");
        expected.pack = "finance";
        expected.useAdapters = false;
        expected.rerankSources = false;  // on by default, clicked off

        QTest::keyClicks(child<QLineEdit>(dialog, "chatModelEdit"), expected.chatModel);
        QTest::keyClicks(child<QLineEdit>(dialog, "embeddingModelEdit"), expected.embeddingModel);
        QTest::keyClick(child<QComboBox>(dialog, "deviceCombo"), Qt::Key_Down);  // Automatic -> CPU
        for (int i = 0; i < 4; ++i) QTest::keyClick(child<QSpinBox>(dialog, "contextSpin"), Qt::Key_Up);  // 1024 a step
        for (int i = 0; i < 2; ++i) QTest::keyClick(child<QSpinBox>(dialog, "threadsSpin"), Qt::Key_Up);
        QTest::mouseClick(child<QCheckBox>(dialog, "ocrLanguage_chi_sim"), Qt::LeftButton);
        QTest::keyClicks(child<QLineEdit>(dialog, "libraryEdit"), expected.libraryDirectory);
        auto* packs = child<QComboBox>(dialog, "packCombo");
        while (packs->currentData().toString() != expected.pack && packs->currentIndex() < packs->count() - 1)
            QTest::keyClick(packs, Qt::Key_Down);
        QTest::mouseClick(child<QCheckBox>(dialog, "useAdaptersCheck"), Qt::LeftButton);
        QTest::mouseClick(child<QCheckBox>(dialog, "rerankSourcesCheck"), Qt::LeftButton);

        QCOMPARE(dialog.settings(), expected);
        QTest::mouseClick(child<QAbstractButton>(dialog, "settingsOkButton"), Qt::LeftButton);
        QCOMPARE(dialog.result(), int(QDialog::Accepted));
        QVERIFY(!dialog.isVisible());
        QVERIFY(QDir(expected.libraryDirectory).exists());
    }

    void ok_refuses_what_cannot_work_and_says_why() {
        const QString notGguf = temp_.filePath("notes.gguf");
        QVERIFY(folio::test::write_file(notGguf, "PK\x03\x04 a zip, not a model"));
        const QString blocker = temp_.filePath("a-file");
        QVERIFY(folio::test::write_file(blocker, "x"));

        FolioSettings given = sample();
        given.chatModel = notGguf;
        SettingsDialog dialog(given);
        dialog.show();
        QVERIFY(QTest::qWaitForWindowExposed(&dialog));
        auto* ok = child<QAbstractButton>(dialog, "settingsOkButton");

        QTest::mouseClick(ok, Qt::LeftButton);
        QTRY_VERIFY(visibleBox(&dialog, "settingsErrorBox"));
        QMessageBox* box = visibleBox(&dialog, "settingsErrorBox");
        QVERIFY2(box->text().startsWith("Chat model: ") && box->text().contains("is not a GGUF model file"),
                 qPrintable(box->text()));
        QVERIFY(dialog.isVisible());
        QVERIFY(dialog.result() != QDialog::Accepted);
        box->close();

        auto* chat = child<QLineEdit>(dialog, "chatModelEdit");
        chat->clear();
        QTest::keyClicks(chat, temp_.filePath("missing.gguf"));
        QTest::mouseClick(ok, Qt::LeftButton);
        QTRY_VERIFY(visibleBox(&dialog, "settingsErrorBox"));
        QVERIFY2(visibleBox(&dialog, "settingsErrorBox")->text().contains("does not exist"),
                 qPrintable(visibleBox(&dialog, "settingsErrorBox")->text()));
        visibleBox(&dialog, "settingsErrorBox")->close();

        chat->clear();
        auto* library = child<QLineEdit>(dialog, "libraryEdit");
        library->clear();
        QTest::keyClicks(library, blocker + "/library");
        QTest::mouseClick(ok, Qt::LeftButton);
        QTRY_VERIFY(visibleBox(&dialog, "settingsErrorBox"));
        QVERIFY2(visibleBox(&dialog, "settingsErrorBox")->text().contains("cannot be created"),
                 qPrintable(visibleBox(&dialog, "settingsErrorBox")->text()));
        QVERIFY(dialog.isVisible());
        visibleBox(&dialog, "settingsErrorBox")->close();

        library->clear();
        QTest::mouseClick(ok, Qt::LeftButton);
        QCOMPARE(dialog.result(), int(QDialog::Accepted));

        QVERIFY(SettingsDialog::modelFileProblem(kTestData + "/llama_tiny/model.gguf").isEmpty());
        QVERIFY(SettingsDialog::modelFileProblem(temp_.path()).contains("is not a file"));
    }

    void settings_load_and_save_round_trip() {
        const QString ini = temp_.filePath("folio.ini");
        {
            QSettings empty(ini, QSettings::IniFormat);
            QCOMPARE(FolioSettings::load(empty), FolioSettings{});
        }
        const FolioSettings saved = sample();
        {
            QSettings out(ini, QSettings::IniFormat);
            saved.save(out);
        }
        QSettings in(ini, QSettings::IniFormat);
        QCOMPARE(FolioSettings::load(in), saved);
        QCOMPARE(in.value("settings/device").toString(), QString("cpu"));

        // Out-of-range numbers from a hand-edited file are clamped.
        in.setValue("settings/contextTokens", -5);
        in.setValue("settings/device", "tpu");
        const FolioSettings clamped = FolioSettings::load(in);
        QCOMPARE(clamped.contextTokens, 0);
        QCOMPARE(clamped.device, ComputeDevice::Auto);
    }
};

QTEST_MAIN(SettingsDialogTest)
#include "tst_settings_dialog.moc"
