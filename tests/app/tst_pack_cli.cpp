// `folio pack ...` as a user runs it: keys, build, install over a built-in
// pack, list, verify, remove; every refusal a one-line error that leaves
// the store as it was.

#include <QDir>
#include <QFile>
#include <QJsonArray>
#include <QRegularExpression>
#include <QTemporaryDir>
#include <QTest>

#include <sys/stat.h>

#include "tests/support/folio_process.h"

using folio::test::FolioRun;

namespace {

void write_file(const QString& path, const QByteArray& bytes) {
    QDir().mkpath(QFileInfo(path).absolutePath());
    QFile file(path);
    QVERIFY(file.open(QIODevice::WriteOnly | QIODevice::Truncate));
    file.write(bytes);
}

}  // namespace

class PackCliTest : public QObject {
    Q_OBJECT

    QTemporaryDir temp_;
    QString store_;

    FolioRun folio(const QStringList& arguments) {
        QProcessEnvironment environment = QProcessEnvironment::systemEnvironment();
        environment.insert("FOLIO_PACKS", store_);
        // No default model: the packs here name no base model.
        environment.insert("FOLIO_MODELS", temp_.filePath("no-models"));
        return folio::test::run_folio(arguments, 120000, environment);
    }

    // A medical pack that replaces the built-in one's content.
    QString source(int sequence, const QByteArray& description) {
        const QString dir = temp_.filePath(QString("medical-%1").arg(sequence));
        QDir(dir).removeRecursively();
        write_file(dir + "/pack.json", R"({"name": "medical", "version": "2.)" + QByteArray::number(sequence) +
                                           R"(.0", "sequence": )" + QByteArray::number(sequence) +
                                           R"(, "domain": "medical", "min_folio_version": "0.1.0", "description": ")" +
                                           description +
                                           R"(", "extract_schema": "schemas/note.json", "extract_prompt": "prompts/extract.txt"})");
        write_file(dir + "/schemas/note.json",
                   R"({"type": "object", "properties": {"mrn": {"type": "string"}}, "required": ["mrn"]})");
        write_file(dir + "/prompts/extract.txt", "Copy the medical record number.\n");
        return dir;
    }

    QString build(const QString& dir, const QString& key, const QString& name) {
        const QString out = temp_.filePath(name);
        const FolioRun run = folio({"pack", "build", dir, "--key", key, "--out", out});
        [&] { QCOMPARE(run.exit_code, 0); }();
        return out;
    }

    QStringList installed_folders() { return QDir(store_ + "/installed").entryList(QDir::Dirs | QDir::NoDotAndDotDot); }

private slots:
    void init() {
        QVERIFY(temp_.isValid());
        store_ = temp_.filePath(QString("store-%1").arg(QTest::currentTestFunction()));
    }

    void keys_build_install_list_verify_remove() {
        const QString prefix = temp_.filePath("org");
        FolioRun run = folio({"pack", "keygen", "--out", prefix, "--json"});
        QCOMPARE(run.exit_code, 0);
        const QString key_id = run.lines.value(0).value("key_id").toString();
        QCOMPARE(key_id.size(), 16);
        struct stat secret {};
        QCOMPARE(::stat((prefix + ".key").toUtf8().constData(), &secret), 0);
        QCOMPARE(secret.st_mode & 0777, 0600u);
        run = folio({"pack", "keygen", "--out", prefix});
        QCOMPARE(run.exit_code, 2);
        QVERIFY2(run.err.contains("it exists"), qPrintable(run.err));

        const QString pack = build(source(1, "Medical record numbers"), prefix + ".key", "medical-1.foliopack");

        // Not trusted yet.
        run = folio({"pack", "install", pack});
        QCOMPARE(run.exit_code, 1);
        QCOMPARE(run.err, "folio: error: signature: signed by an unknown key " + key_id + "\n");
        QVERIFY(installed_folders().isEmpty());

        QCOMPARE(folio({"pack", "trust", prefix + ".pub"}).exit_code, 0);
        run = folio({"pack", "verify", pack, "--json"});
        QCOMPARE(run.exit_code, 0);
        QCOMPARE(run.lines.value(0).value("ok").toBool(), true);
        QVERIFY(installed_folders().isEmpty());

        run = folio({"pack", "install", pack, "--json"});
        QCOMPARE(run.exit_code, 0);
        QCOMPARE(run.lines.value(0).value("name").toString(), QString("medical"));
        QCOMPARE(run.lines.value(0).value("key_id").toString(), key_id);

        // The installed pack takes the built-in one's place.
        run = folio({"pack", "list", "--json"});
        QCOMPARE(run.exit_code, 0);
        bool saw_finance = false, saw_medical = false;
        for (const QJsonObject& line : run.lines) {
            if (line.value("name") == "finance") saw_finance = line.value("source") == "built-in";
            if (line.value("name") == "medical")
                saw_medical = line.value("source") == "installed" &&
                              line.value("description") == "Medical record numbers" && line.value("sequence") == 1;
        }
        QVERIFY(saw_finance && saw_medical);

        QCOMPARE(folio({"pack", "verify", "medical"}).exit_code, 0);
        const QString prompt = store_ + "/installed/" + installed_folders().value(0) + "/prompts/extract.txt";
        write_file(prompt, "Copy everything.\n");
        run = folio({"pack", "verify", "medical"});
        QCOMPARE(run.exit_code, 1);
        QVERIFY2(run.out.contains("medical: prompts/extract.txt: size changed"), qPrintable(run.out));
        QVERIFY(run.err.startsWith("folio: error: pack medical fails verification"));

        // Reinstalling the same file repairs it.
        QCOMPARE(folio({"pack", "install", pack}).exit_code, 0);
        QCOMPARE(folio({"pack", "verify", "medical"}).exit_code, 0);

        run = folio({"pack", "remove", "medical"});
        QCOMPARE(run.exit_code, 0);
        QVERIFY(installed_folders().isEmpty());
        run = folio({"pack", "list", "--json"});
        for (const QJsonObject& line : run.lines)
            if (line.value("name") == "medical") QCOMPARE(line.value("source").toString(), QString("built-in"));
        run = folio({"pack", "remove", "medical"});
        QCOMPARE(run.exit_code, 2);
        QVERIFY(run.err.contains("no pack named medical is installed"));
    }

    // The built-in medical pack's folder, as the project ships it, makes a
    // pack that installs, verifies and loads.
    void the_built_in_pack_folders_build_into_packs() {
        const QString prefix = temp_.filePath("org-built-in");
        QCOMPARE(folio({"pack", "keygen", "--out", prefix}).exit_code, 0);
        QCOMPARE(folio({"pack", "trust", prefix + ".pub"}).exit_code, 0);
        const QString source = QString(FOLIO_TEST_DATA) + "/../../domain_packs/medical";
        FolioRun run = folio({"pack", "build", source, "--key", prefix + ".key", "--out",
                              temp_.filePath("medical-1.0.0.foliopack"), "--json"});
        QCOMPARE(run.exit_code, 0);
        QCOMPARE(run.lines.value(0).value("name").toString(), QString("medical"));
        QVERIFY(run.lines.value(0).value("files").toInt() >= 5);  // pack.json, schema, prompt, glossary, eval
        run = folio({"pack", "install", temp_.filePath("medical-1.0.0.foliopack")});
        QCOMPARE(run.exit_code, 0);
        QCOMPARE(folio({"pack", "verify", "medical"}).exit_code, 0);
        run = folio({"pack", "list"});
        QVERIFY2(run.out.contains(QRegularExpression("medical +installed  1.0.0 \\(sequence 1\\), signed by [0-9a-f]{16}, [0-9T:Z-]+: Clinical notes")), qPrintable(run.out));
    }

    void downgrades_need_an_explicit_override() {
        const QString prefix = temp_.filePath("org-down");
        QCOMPARE(folio({"pack", "keygen", "--out", prefix}).exit_code, 0);
        QCOMPARE(folio({"pack", "trust", prefix + ".pub"}).exit_code, 0);
        const QString v1 = build(source(1, "one"), prefix + ".key", "down-1.foliopack");
        const QString v2 = build(source(2, "two"), prefix + ".key", "down-2.foliopack");
        QCOMPARE(folio({"pack", "install", v2}).exit_code, 0);
        FolioRun run = folio({"pack", "install", v1});
        QCOMPARE(run.exit_code, 1);
        QVERIFY2(run.err.contains("would be a downgrade"), qPrintable(run.err));
        run = folio({"pack", "install", v1, "--allow-downgrade"});
        QCOMPARE(run.exit_code, 0);
        QVERIFY2(run.err.contains("folio: warning: downgraded medical 2.2.0 (sequence 2) to 2.1.0"), qPrintable(run.err));
        run = folio({"pack", "log", "--json"});
        QCOMPARE(run.exit_code, 0);
        QStringList events;
        for (const QJsonObject& line : run.lines) events << line.value("event").toString();
        QCOMPARE(events, QStringList({"trust", "install", "downgrade"}));
        QVERIFY(run.lines.last().value("detail").toString().contains("replacing 2.2.0 (sequence 2)"));
    }

    void refuses_bad_input_with_one_line() {
        const QString prefix = temp_.filePath("org-bad");
        QCOMPARE(folio({"pack", "keygen", "--out", prefix}).exit_code, 0);
        QCOMPARE(folio({"pack", "trust", prefix + ".pub"}).exit_code, 0);

        // Content Folio cannot use: no schema named.
        const QString dir = source(3, "broken");
        write_file(dir + "/pack.json", R"({"name": "medical", "version": "2.3.0", "sequence": 3, "domain": "medical",)"
                                       R"( "min_folio_version": "0.1.0", "description": "broken"})");
        FolioRun run = folio({"pack", "install", build(dir, prefix + ".key", "broken.foliopack")});
        QCOMPARE(run.exit_code, 1);
        QVERIFY2(run.err.startsWith("folio: error: content: pack medical: pack.json:"), qPrintable(run.err));

        write_file(temp_.filePath("notapack.foliopack"), "PK\x03\x04 not a pack");
        run = folio({"pack", "install", temp_.filePath("notapack.foliopack")});
        QCOMPARE(run.exit_code, 1);
        QVERIFY2(run.err.contains("is not a Folio pack"), qPrintable(run.err));

        run = folio({"pack", "install", temp_.filePath("missing.foliopack")});
        QCOMPARE(run.exit_code, 2);
        QVERIFY(run.err.contains("no pack file"));
        run = folio({"pack", "build", dir, "--key", prefix + ".pub", "--out", temp_.filePath("x.foliopack")});
        QCOMPARE(run.exit_code, 1);
        QVERIFY2(run.err.contains("secret key file"), qPrintable(run.err));
        run = folio({"pack", "frobnicate"});
        QCOMPARE(run.exit_code, 2);
        QCOMPARE(run.err.count(QChar(0x0a)), 1);
        QVERIFY(installed_folders().isEmpty());
    }
};

QTEST_GUILESS_MAIN(PackCliTest)
#include "tst_pack_cli.moc"
