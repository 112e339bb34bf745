// The Packs panel, offscreen, over a real pack store in a temporary folder
// and real signed packs built here (build_pack, libsodium keys): the built-in
// packs listed; install through the dry-run dialog, verify (intact, then a
// changed file), the fit column following the chat model, the log, remove;
// refusals (tampered archive, unknown key, wrong base model, missing file)
// shown in one line with the store left as it was; a drop cancelled, and a
// downgrade warned of before it happens.

#include <QAbstractButton>
#include <QDialog>
#include <QDropEvent>
#include <QFile>
#include <QLabel>
#include <QMessageBox>
#include <QMimeData>
#include <QPushButton>
#include <QSignalSpy>
#include <QTableView>
#include <QTableWidget>
#include <QTemporaryDir>
#include <QTest>
#include <QUrl>

#include <filesystem>
#include <fstream>
#include <memory>
#include <optional>

#include "domain_packs/pack_builder.h"
#include "domain_packs/pack_store.h"
#include "tests/support/file_tree.h"
#include "tests/support/message_boxes.h"
#include "ui/packs_panel.h"

using folio::ui::PackFit;
using folio::ui::PacksPanel;
using folio::ui::PackState;
using folio::ui::PackTableModel;
namespace fs = std::filesystem;
namespace packs = folio::packs;

namespace {

const QString kTestData = QStringLiteral(FOLIO_TEST_DATA);
const QString kLlama = kTestData + "/llama_tiny/model.gguf";
const QString kQwen = kTestData + "/qwen2_tiny/model.gguf";
// Tokenizer-only GGUF files: base models a manifest can name (the tiny
// models above carry no tokenizer, so none can name them).
const QString kSmolTokenizer = kTestData + "/tokenizer/smollm.gguf";
const QString kQwenTokenizer = kTestData + "/tokenizer/qwen2.gguf";
constexpr int kTimeoutMs = 20000;

void writeFile(const fs::path& path, const std::string& text) {
    fs::create_directories(path.parent_path());
    std::ofstream(path, std::ios::binary) << text;
}

}  // namespace

class PacksPanelTest : public QObject {
    Q_OBJECT

    QTemporaryDir temp_;
    fs::path store_;
    std::optional<packs::KeyPair> trusted_;
    std::optional<packs::KeyPair> stranger_;
    std::unique_ptr<PacksPanel> panel_;
    int counter_ = 0;

    // A pack "tiny": a one-field schema, a two-entry glossary and a LoRA
    // adapter for the tiny llama of tests/data; made for `baseModel` if given.
    QString buildPack(int sequence, const packs::SecretKey& key, const QString& baseModel = {}) {
        const fs::path dir = fs::path(temp_.path().toStdString()) / ("src-" + std::to_string(counter_++));
        writeFile(dir / "pack.json", R"({"name": "tiny", "version": "1.)" + std::to_string(sequence) +
                                         R"(.0", "sequence": )" + std::to_string(sequence) +
                                         R"(, "domain": "test", "min_folio_version": "0.1.0",)"
                                         R"( "description": "A tiny pack", "extract_schema": "schema.json",)"
                                         R"( "extract_prompt": "prompt.txt", "glossary": "glossary.tsv",)"
                                         R"( "adapters": [{"file": "adapters/plain.gguf", "scale": 1.0}]})");
        writeFile(dir / "schema.json", R"({"type": "object", "properties": {"x": {"type": "string"}}, "required": ["x"]})");
        writeFile(dir / "prompt.txt", "Find x.\n");
        writeFile(dir / "glossary.tsv", "BP\tblood pressure\nHR\theart rate\n");
        fs::create_directories(dir / "adapters");
        fs::copy_file((kTestData + "/lora_tiny/plain/adapter.gguf").toStdString(), dir / "adapters/plain.gguf");
        const fs::path out = fs::path(temp_.path().toStdString()) /
                             ("tiny-" + std::to_string(sequence) + "-" + std::to_string(counter_++) + ".foliopack");
        std::vector<fs::path> baseModels;
        if (!baseModel.isEmpty()) baseModels.push_back(baseModel.toStdString());
        packs::build_pack({.source_directory = dir, .output = out, .base_models = baseModels}, key);
        return QString::fromStdString(out.string());
    }

    void openPanel(const QString& chatModel) {
        panel_ = std::make_unique<PacksPanel>(store_, chatModel);
        panel_->resize(1000, 600);
        panel_->show();
        QVERIFY(QTest::qWaitForWindowExposed(panel_.get()));
        QTRY_VERIFY_WITH_TIMEOUT(!panel_->isBusy(), kTimeoutMs);
    }

    PackTableModel* model() const { return panel_->model(); }
    QPushButton* button(const char* name) const { return panel_->findChild<QPushButton*>(QString::fromLatin1(name)); }

    QMessageBox* visibleBox(const char* name) const {
        return folio::test::visibleMessageBox(*panel_, QString::fromLatin1(name));
    }

    void clickBoxButton(const char* name) {
        auto* clicked = panel_->findChild<QAbstractButton*>(QString::fromLatin1(name));
        QVERIFY2(clicked && clicked->isVisible(), name);
        QTest::mouseClick(clicked, Qt::LeftButton);
    }

    void selectPack(const QString& name) {
        const int row = model()->rowOfName(name);
        QVERIFY2(row >= 0, qPrintable(name));
        auto* table = panel_->findChild<QTableView*>("packsTable");
        QTest::mouseClick(table->viewport(), Qt::LeftButton, {}, table->visualRect(model()->index(row, 0)).center());
        QCOMPARE(table->selectionModel()->selectedRows().value(0).row(), row);
    }

    QVariant packData(const QString& name, int role, int column = 0) const {
        const int row = model()->rowOfName(name);
        return row < 0 ? QVariant() : model()->index(row, column).data(role);
    }

    std::vector<std::string> installedNames() const {
        std::vector<std::string> names;
        for (const packs::InstalledPack& pack : packs::PackStore(store_).list()) names.push_back(pack.manifest.name);
        return names;
    }

    // Installs through the dry-run dialog and returns its informative text.
    QString installConfirmed(const QString& file) {
        QSignalSpy changed(panel_.get(), &PacksPanel::packsChanged);
        panel_->installFile(file);
        [&] { QTRY_VERIFY_WITH_TIMEOUT(visibleBox("installConfirmBox"), kTimeoutMs); }();
        QMessageBox* box = visibleBox("installConfirmBox");
        if (!box) return {};
        const QString text = box->text() + "\n" + box->informativeText();
        clickBoxButton("confirmInstallButton");
        [&] { QTRY_COMPARE_WITH_TIMEOUT(changed.count(), 1, kTimeoutMs); }();
        return text;
    }

    // The refusal a pack file meets: the error box's one line; the store as it was.
    QString refusal(const QString& file) {
        const std::vector<std::string> installedBefore = folio::test::files_under(store_ / "installed");
        QSignalSpy changed(panel_.get(), &PacksPanel::packsChanged);
        panel_->installFile(file);
        [&] { QTRY_VERIFY_WITH_TIMEOUT(visibleBox("packErrorBox"), kTimeoutMs); }();
        QMessageBox* box = visibleBox("packErrorBox");
        const QString text = box ? box->text() : QString();
        if (box) box->close();
        [&] {
            QVERIFY2(!text.contains('\n'), qPrintable(text));
            QVERIFY(!visibleBox("installConfirmBox"));
            QCOMPARE(changed.count(), 0);
            QCOMPARE(folio::test::files_under(store_ / "installed"), installedBefore);
            QCOMPARE(folio::test::files_under(store_ / "staging"), std::vector<std::string>{});
        }();
        return text;
    }

private slots:
    void initTestCase() {
        QVERIFY(temp_.isValid());
        qputenv("FOLIO_MODELS", temp_.filePath("no-models").toUtf8());
        trusted_.emplace(packs::generate_keypair());
        stranger_.emplace(packs::generate_keypair());
    }

    void init() {
        store_ = fs::path(temp_.path().toStdString()) / ("store-" + std::to_string(counter_++));
        // app::pack_names() and load_pack() read the default store: this one.
        qputenv("FOLIO_PACKS", QByteArray::fromStdString(store_.string()));
        QVERIFY(packs::PackStore(store_).trust(trusted_->public_key));
    }

    void cleanup() { panel_.reset(); }

    void lists_the_built_in_packs() {
        openPanel(kLlama);
        QVERIFY(model()->rowOfName("finance") >= 0);
        QVERIFY(model()->rowOfName("medical") >= 0);
        QCOMPARE(packData("finance", PackTableModel::StateRole).toInt(), int(PackState::BuiltIn));
        QCOMPARE(packData("finance", Qt::DisplayRole, PackTableModel::SourceColumn).toString(), QString("built-in"));
        QCOMPARE(packData("finance", Qt::DisplayRole, PackTableModel::VersionColumn).toString(), QString("1.0.0"));
        QCOMPARE(packData("medical", Qt::DisplayRole, PackTableModel::DomainColumn).toString(), QString("medical"));
        // Their adapters are made for the default chat model, not the tiny llama.
        QCOMPARE(packData("finance", PackTableModel::FitRole).toInt(), int(PackFit::DoesNotFit));

        selectPack("finance");
        const QString details = panel_->findChild<QLabel*>("packDetails")->text();
        QVERIFY2(details.contains("Extraction schema: ") && details.contains("Glossary: ") &&
                     details.contains("Adapter ") && details.contains("does not fit this model"),
                 qPrintable(details));
        // Built-in packs are compiled in: nothing to verify or remove.
        QVERIFY(!button("verifyPackButton")->isEnabled());
        QVERIFY(!button("removePackButton")->isEnabled());
        QVERIFY(button("installPackButton")->isEnabled());
    }

    void installs_verifies_and_removes() {
        const QString pack = buildPack(1, trusted_->secret_key);
        const QString keyId = QString::fromStdString(packs::key_id_hex(trusted_->public_key.id()));
        openPanel(kLlama);

        QSignalSpy changed(panel_.get(), &PacksPanel::packsChanged);
        panel_->installFile(pack);
        QVERIFY(!button("installPackButton")->isEnabled());  // while the dry run runs
        QTRY_VERIFY_WITH_TIMEOUT(visibleBox("installConfirmBox"), kTimeoutMs);
        QMessageBox* confirm = visibleBox("installConfirmBox");
        QCOMPARE(confirm->text(), QString("Install tiny 1.1.0 (sequence 1)?"));
        const QString summary = confirm->informativeText();
        QVERIFY2(summary.contains("Signed by key " + keyId) && summary.contains("names no base model") &&
                     summary.contains("5 files") && !summary.contains("downgrade"),
                 qPrintable(summary));
        // The dry run activated nothing.
        QVERIFY(installedNames().empty());
        QCOMPARE(model()->rowOfName("tiny"), -1);
        clickBoxButton("confirmInstallButton");
        QTRY_COMPARE_WITH_TIMEOUT(changed.count(), 1, kTimeoutMs);
        QCOMPARE(installedNames(), std::vector<std::string>{"tiny"});

        QCOMPARE(packData("tiny", PackTableModel::StateRole).toInt(), int(PackState::Verified));
        QCOMPARE(packData("tiny", Qt::DisplayRole, PackTableModel::SignerColumn).toString(), keyId);
        QCOMPARE(packData("tiny", Qt::DisplayRole, PackTableModel::VersionColumn).toString(), QString("1.1.0 (sequence 1)"));
        QCOMPARE(packData("tiny", Qt::DisplayRole, PackTableModel::DomainColumn).toString(), QString("test"));
        QVERIFY(!packData("tiny", Qt::DisplayRole, PackTableModel::InstalledColumn).toString().isEmpty());
        QCOMPARE(packData("tiny", PackTableModel::FitRole).toInt(), int(PackFit::Fits));
        selectPack("tiny");
        QString details = panel_->findChild<QLabel*>("packDetails")->text();
        QVERIFY2(details.contains("tiny: A tiny pack") && details.contains("Extraction schema: 1 field") &&
                     details.contains("Glossary: 2 entries") && details.contains("Adapter plain.gguf: fits the chat model"),
                 qPrintable(details));

        // The fit column follows the chat model.
        panel_->setChatModel(kQwen);
        QTRY_COMPARE_WITH_TIMEOUT(packData("tiny", PackTableModel::FitRole).toInt(), int(PackFit::DoesNotFit), kTimeoutMs);
        QTRY_VERIFY(!panel_->isBusy());
        panel_->setChatModel(kLlama);
        QTRY_COMPARE_WITH_TIMEOUT(packData("tiny", PackTableModel::FitRole).toInt(), int(PackFit::Fits), kTimeoutMs);
        QTRY_VERIFY(!panel_->isBusy());

        selectPack("tiny");
        QTest::mouseClick(button("verifyPackButton"), Qt::LeftButton);
        QTRY_VERIFY_WITH_TIMEOUT(visibleBox("packVerifyBox"), kTimeoutMs);
        QVERIFY2(visibleBox("packVerifyBox")->text().contains("Every file of tiny matches its signed manifest"),
                 qPrintable(visibleBox("packVerifyBox")->text()));
        visibleBox("packVerifyBox")->close();

        // A file changed after install: verification names it.
        const fs::path installed = packs::PackStore(store_).find("tiny")->directory;
        writeFile(installed / "prompt.txt", "Find everything.\n");
        QTRY_VERIFY(button("verifyPackButton")->isEnabled());
        QTest::mouseClick(button("verifyPackButton"), Qt::LeftButton);
        QTRY_VERIFY_WITH_TIMEOUT(visibleBox("packVerifyBox"), kTimeoutMs);
        QVERIFY2(visibleBox("packVerifyBox")->text().contains("fails verification") &&
                     visibleBox("packVerifyBox")->text().contains("prompt.txt"),
                 qPrintable(visibleBox("packVerifyBox")->text()));
        visibleBox("packVerifyBox")->close();
        QCOMPARE(packData("tiny", PackTableModel::StateRole).toInt(), int(PackState::Modified));

        // Installing the same file again repairs it.
        const QString again = installConfirmed(pack);
        QVERIFY2(again.contains("It replaces the installed 1.1.0 (sequence 1)"), qPrintable(again));
        QCOMPARE(packData("tiny", PackTableModel::StateRole).toInt(), int(PackState::Verified));

        QTest::mouseClick(button("packLogButton"), Qt::LeftButton);
        QDialog* log = nullptr;
        QTRY_VERIFY_WITH_TIMEOUT((log = panel_->findChild<QDialog*>("packLogDialog")) && log->isVisible(), kTimeoutMs);
        auto* events = log->findChild<QTableWidget*>("packLogTable");
        QStringList kinds;
        for (int row = 0; row < events->rowCount(); ++row) kinds << events->item(row, 1)->text();
        QCOMPARE(kinds, QStringList({"trust", "install", "install"}));
        QCOMPARE(events->item(1, 2)->text(), QString("tiny"));
        log->close();

        selectPack("tiny");
        changed.clear();
        QTest::mouseClick(button("removePackButton"), Qt::LeftButton);
        QTRY_VERIFY(visibleBox("confirmRemovePackBox"));
        clickBoxButton("confirmRemovePackButton");
        QTRY_COMPARE_WITH_TIMEOUT(changed.count(), 1, kTimeoutMs);
        QCOMPARE(model()->rowOfName("tiny"), -1);
        QVERIFY(installedNames().empty());
        QCOMPARE(folio::test::files_under(store_ / "installed"), std::vector<std::string>{});
        QVERIFY(model()->rowOfName("finance") >= 0);
    }

    void refuses_bad_packs_in_one_line_and_changes_nothing() {
        const QString pack = buildPack(1, trusted_->secret_key);
        openPanel(kLlama);

        // One byte of the archive flipped.
        const QString tampered = temp_.filePath("tampered.foliopack");
        QVERIFY(QFile::copy(pack, tampered));
        {
            QFile file(tampered);
            QVERIFY(file.open(QIODevice::ReadWrite));
            QVERIFY(file.seek(file.size() - 100));
            char byte = 0;
            QVERIFY(file.getChar(&byte));
            QVERIFY(file.seek(file.size() - 100));
            QVERIFY(file.putChar(char(byte ^ 0x01)));
        }
        QString reason = refusal(tampered);
        QVERIFY2(reason.startsWith("archive: ") && reason.contains("the pack was changed"), qPrintable(reason));

        const QString foreign = buildPack(1, stranger_->secret_key);
        reason = refusal(foreign);
        QCOMPARE(reason, "signature: signed by an unknown key " +
                             QString::fromStdString(packs::key_id_hex(stranger_->public_key.id())));

        const QString forSmol = buildPack(1, trusted_->secret_key, kSmolTokenizer);
        panel_->setChatModel(kQwenTokenizer);
        QTRY_VERIFY_WITH_TIMEOUT(!panel_->isBusy(), kTimeoutMs);
        reason = refusal(forSmol);
        QVERIFY2(reason.startsWith("base_models: tiny does not fit qwen2.gguf"), qPrintable(reason));

        reason = refusal(temp_.filePath("missing.foliopack"));
        QVERIFY2(reason.startsWith("There is no file"), qPrintable(reason));

        QVERIFY(installedNames().empty());
        QCOMPARE(model()->rowOfName("tiny"), -1);

        // With the model it was made for, the same pack installs.
        panel_->setChatModel(kSmolTokenizer);
        const QString summary = installConfirmed(forSmol);
        QVERIFY2(summary.contains("made for the chat model smollm.gguf"), qPrintable(summary));
        QCOMPARE(installedNames(), std::vector<std::string>{"tiny"});
        // A tokenizer alone is no model its adapter could be tried on.
        QCOMPARE(packData("tiny", PackTableModel::FitRole).toInt(), int(PackFit::Unknown));
    }

    void a_dropped_pack_asks_first_and_downgrades_are_warned_of() {
        const QString v1 = buildPack(1, trusted_->secret_key);
        const QString v2 = buildPack(2, trusted_->secret_key);
        openPanel(kLlama);

        QMimeData mime;
        mime.setUrls({QUrl::fromLocalFile(v2)});
        QDragEnterEvent enter(QPoint(10, 10), Qt::CopyAction, &mime, Qt::LeftButton, Qt::NoModifier);
        QCoreApplication::sendEvent(panel_.get(), &enter);
        QVERIFY(enter.isAccepted());
        QDropEvent drop(QPointF(10, 10), Qt::CopyAction, &mime, Qt::LeftButton, Qt::NoModifier);
        QCoreApplication::sendEvent(panel_.get(), &drop);
        QTRY_VERIFY_WITH_TIMEOUT(visibleBox("installConfirmBox"), kTimeoutMs);
        visibleBox("installConfirmBox")->button(QMessageBox::Cancel)->click();
        QTRY_VERIFY(!visibleBox("installConfirmBox"));
        QTRY_VERIFY(!panel_->isBusy());
        QVERIFY(installedNames().empty());

        installConfirmed(v2);
        QCOMPARE(packData("tiny", Qt::DisplayRole, PackTableModel::VersionColumn).toString(), QString("1.2.0 (sequence 2)"));

        const QString summary = installConfirmed(v1);
        QVERIFY2(summary.contains("Warning: this is a downgrade") && summary.contains("1.2.0 (sequence 2)"),
                 qPrintable(summary));
        QCOMPARE(packData("tiny", Qt::DisplayRole, PackTableModel::VersionColumn).toString(), QString("1.1.0 (sequence 1)"));
        QCOMPARE(packs::PackStore(store_).events().back().event, std::string("downgrade"));

        // Not a pack: the drop is not taken.
        QMimeData text;
        text.setUrls({QUrl::fromLocalFile(kLlama)});
        QDragEnterEvent refused(QPoint(10, 10), Qt::CopyAction, &text, Qt::LeftButton, Qt::NoModifier);
        QCoreApplication::sendEvent(panel_.get(), &refused);
        QVERIFY(!refused.isAccepted());
    }
};

QTEST_MAIN(PacksPanelTest)
#include "tst_packs_panel.moc"
