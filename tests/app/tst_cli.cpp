// End-to-end tests of the `folio` command line: ingest, docs, show, their
// JSON contract, bad input, and crash safety under kill -9.

#include <QFile>
#include <QFileInfo>
#include <QJsonDocument>
#include <QJsonObject>
#include <QProcess>
#include <QRandomGenerator>
#include <QTemporaryDir>
#include <QTest>
#include <QThread>

#include <csignal>
#include <map>

#include "index/library_store.h"
#include "tests/support/folio_process.h"
#include "tests/support/test_documents.h"

namespace {

using Run = folio::test::FolioRun;

const QString kPdfPage1 = "Quarterly revenue grew to 4,512 million dollars, driven by services.";
const QString kPdfPage2 = "Operating income was 1,207 million dollars in the fourth quarter.";
const QString kScanText = "The patient reports intermittent chest pain radiating to the left arm.";
const QString kVisitText = "The patient returns for a follow-up visit after starting lisinopril.";

}  // namespace

class CliTest : public QObject {
    Q_OBJECT

private:
    QTemporaryDir work_;
    QString library_;

    Run folio(const QStringList& arguments, int timeout_ms = 120000) {
        Run run = folio::test::run_folio(QStringList{"--library", library_} + arguments, timeout_ms);
        if (run.exit_code == -1) qWarning() << "folio" << arguments << "crashed or timed out";
        return run;
    }

    static QList<QJsonObject> events(const Run& run, const QString& name) {
        QList<QJsonObject> found;
        for (const QJsonObject& line : run.lines)
            if (line["event"].toString() == name) found.append(line);
        return found;
    }

    QJsonObject document_for(const QString& file_name) {
        const Run docs = folio({"docs", "--json"});
        for (const QJsonObject& doc : docs.lines)
            if (doc["path"].toString().endsWith("/" + file_name)) return doc;
        return {};
    }

    static void verify_one_error_line(const Run& run) {
        QVERIFY2(run.exit_code != 0, qPrintable(run.out));
        const QStringList lines = run.err.split('\n', Qt::SkipEmptyParts);
        QVERIFY2(!lines.isEmpty(), "no error printed");
        QVERIFY2(lines.last().startsWith("folio: error: "), qPrintable(run.err));
    }

private slots:
    void initTestCase() {
        QVERIFY(work_.isValid());
        library_ = work_.filePath("library");
        QDir().mkpath(work_.filePath("inbox/sub"));
        folio::test::write_text_pdf(work_.filePath("inbox/report.pdf"), {kPdfPage1, kPdfPage2});
        QVERIFY(folio::test::write_scan(work_.filePath("inbox/sub/note-scan.png"), kScanText));
        QFile markdown(work_.filePath("inbox/summary.md"));
        QVERIFY(markdown.open(QIODevice::WriteOnly));
        markdown.write("# Summary\n\nNet income rose to 812 million dollars.\n");
        markdown.close();
        QFile junk(work_.filePath("inbox/sub/data.bin"));
        QVERIFY(junk.open(QIODevice::WriteOnly));
        QByteArray bytes(4096, '\0');
        for (int i = 0; i < bytes.size(); ++i) bytes[i] = static_cast<char>(QRandomGenerator::global()->bounded(256));
        junk.write(bytes);
        junk.close();
        QFile hidden(work_.filePath("inbox/.hidden.md"));
        QVERIFY(hidden.open(QIODevice::WriteOnly));
        hidden.write("# hidden\n");
    }

    void ingestFolderAddsEveryReadableFile() {
        const Run run = folio({"ingest", work_.filePath("inbox"), "--json"});
        QCOMPARE(run.exit_code, 0);
        const auto summary = events(run, "summary");
        QCOMPARE(summary.size(), 1);
        QCOMPARE(summary[0]["added"].toInt(), 3);
        QCOMPARE(summary[0]["skipped"].toInt(), 1);  // data.bin; the hidden file is not even listed
        QCOMPARE(summary[0]["failed"].toInt(), 0);
        QCOMPARE(summary[0]["ocr_pages"].toInt(), 1);
        QCOMPARE(events(run, "file").size(), 4);
        QVERIFY(!events(run, "progress").isEmpty());
    }

    void docsListsDocumentsWithContractFields() {
        const Run run = folio({"docs", "--json"});
        QCOMPARE(run.exit_code, 0);
        QCOMPARE(run.lines.size(), 3);
        for (const QJsonObject& doc : run.lines) {
            for (const char* field : {"doc_id", "path", "pages", "status", "error"})
                QVERIFY2(doc.contains(field), field);
            QCOMPARE(doc["status"].toString(), QString("indexed"));
        }
        QCOMPARE(document_for("report.pdf")["pages"].toInt(), 2);
        QCOMPARE(document_for("report.pdf")["type"].toString(), QString("pdf"));
        QCOMPARE(document_for("note-scan.png")["type"].toString(), QString("png"));
    }

    void showReturnsStoredPageText() {
        const int report = document_for("report.pdf")["doc_id"].toInt();
        Run run = folio({"show", QString::number(report), "--page", "2", "--json"});
        QCOMPARE(run.exit_code, 0);
        QCOMPARE(run.lines.size(), 1);
        QCOMPARE(run.lines[0]["page"].toInt(), 2);
        QCOMPARE(run.lines[0]["ocr"].toBool(), false);
        QVERIFY2(run.lines[0]["text"].toString().contains("Operating income was 1,207 million"),
                 qPrintable(run.lines[0]["text"].toString()));

        const int scan = document_for("note-scan.png")["doc_id"].toInt();
        run = folio({"show", QString::number(scan), "--json"});
        QCOMPARE(run.exit_code, 0);
        QCOMPARE(run.lines.size(), 1);
        QCOMPARE(run.lines[0]["ocr"].toBool(), true);
        QVERIFY(run.lines[0]["confidence"].toDouble() > 80);
        QVERIFY2(run.lines[0]["text"].toString().contains("chest pain radiating"),
                 qPrintable(run.lines[0]["text"].toString()));
    }

    void reingestingUnchangedFilesIsANoOp() {
        const int before = document_for("report.pdf")["doc_id"].toInt();
        const Run run = folio({"ingest", work_.filePath("inbox"), "--json"});
        QCOMPARE(run.exit_code, 0);
        QCOMPARE(events(run, "summary")[0]["unchanged"].toInt(), 3);
        QCOMPARE(events(run, "summary")[0]["added"].toInt(), 0);
        QCOMPARE(document_for("report.pdf")["doc_id"].toInt(), before);
    }

    void changedFileReplacesItsOldVersion() {
        QFile markdown(work_.filePath("inbox/summary.md"));
        QVERIFY(markdown.open(QIODevice::WriteOnly | QIODevice::Truncate));
        markdown.write("# Summary\n\nNet income fell to 640 million dollars.\n");
        markdown.close();
        const Run run = folio({"ingest", work_.filePath("inbox/summary.md"), "--json"});
        QCOMPARE(run.exit_code, 0);
        QCOMPARE(events(run, "summary")[0]["replaced"].toInt(), 1);
        const QJsonObject doc = document_for("summary.md");
        const Run show = folio({"show", QString::number(doc["doc_id"].toInt()), "--json"});
        QVERIFY(show.lines[0]["text"].toString().contains("640 million"));
        QVERIFY(!show.lines[0]["text"].toString().contains("812 million"));
        QCOMPARE(folio({"docs", "--json"}).lines.size(), 3);
    }

    // A copy of a stored file is not stored again, under the same or another
    // name, and neither is a second copy met in the same run.
    void copiesOfStoredContentAreNotStoredTwice() {
        const int report = document_for("report.pdf")["doc_id"].toInt();
        QDir().mkpath(work_.filePath("copies"));
        QVERIFY(QFile::copy(work_.filePath("inbox/report.pdf"), work_.filePath("copies/report.pdf")));
        QVERIFY(QFile::copy(work_.filePath("inbox/report.pdf"), work_.filePath("copies/report (1).pdf")));
        for (const char* name : {"copies/twin-a.md", "copies/twin-b.md"}) {
            QFile twin(work_.filePath(name));
            QVERIFY(twin.open(QIODevice::WriteOnly));
            twin.write("# Twins\n\nCash and equivalents were 93 million dollars.\n");
        }
        const Run run = folio({"ingest", work_.filePath("copies"), "--json"});
        QCOMPARE(run.exit_code, 0);
        const QJsonObject summary = events(run, "summary")[0];
        QCOMPARE(summary["added"].toInt(), 1);
        QCOMPARE(summary["duplicate"].toInt(), 3);
        std::map<QString, QJsonObject> outcome;
        for (const QJsonObject& file : events(run, "file")) outcome[QFileInfo(file["path"].toString()).fileName()] = file;
        for (const char* name : {"report.pdf", "report (1).pdf"}) {
            QCOMPARE(outcome[name]["outcome"].toString(), QString("duplicate"));
            QCOMPARE(outcome[name]["doc_id"].toInt(), report);
            QCOMPARE(outcome[name]["same_as"].toString(), work_.filePath("inbox/report.pdf"));
        }
        const bool a_first = outcome["twin-a.md"]["outcome"].toString() == "added";
        const QJsonObject& copy = outcome[a_first ? "twin-b.md" : "twin-a.md"];
        QCOMPARE(copy["outcome"].toString(), QString("duplicate"));
        QCOMPARE(copy["doc_id"].toInt(), outcome[a_first ? "twin-a.md" : "twin-b.md"]["doc_id"].toInt());
        QCOMPARE(folio({"docs", "--json"}).lines.size(), 4);
        const Run search = folio({"search", "equivalents", "--mode", "bm25", "--json"});
        QCOMPARE(search.exit_code, 0);
        QCOMPARE(search.lines.size(), 1);

        const Run text = folio({"ingest", work_.filePath("copies/report.pdf")});
        QCOMPARE(text.exit_code, 0);
        QVERIFY2(text.out.contains("duplicate " + work_.filePath("copies/report.pdf") + "  (same content as " +
                                   work_.filePath("inbox/report.pdf") + ")"),
                 qPrintable(text.out));
    }

    // A moved or renamed file keeps its document: id, pages and chunks.
    void movedFileKeepsItsDocument() {
        const QJsonObject before = document_for("summary.md");
        QDir().mkpath(work_.filePath("moved"));
        QVERIFY(QFile::rename(work_.filePath("inbox/summary.md"), work_.filePath("moved/summary-2024.md")));
        const Run run = folio({"ingest", work_.filePath("moved"), "--json"});
        QCOMPARE(run.exit_code, 0);
        QCOMPARE(events(run, "summary")[0]["moved"].toInt(), 1);
        QCOMPARE(events(run, "file")[0]["same_as"].toString(), work_.filePath("inbox/summary.md"));
        const QJsonObject after = document_for("summary-2024.md");
        QCOMPARE(after["doc_id"].toInt(), before["doc_id"].toInt());
        QCOMPARE(after["pages"].toInt(), before["pages"].toInt());
        QVERIFY(document_for("summary.md").isEmpty());
        QCOMPARE(folio({"docs", "--json"}).lines.size(), 4);
        QVERIFY(QFile::rename(work_.filePath("moved/summary-2024.md"), work_.filePath("inbox/summary.md")));
        QCOMPARE(events(folio({"ingest", work_.filePath("inbox/summary.md"), "--json"}), "summary")[0]["moved"].toInt(), 1);
    }

    void badFilesFailWithReasonsAndOthersStillIngest() {
        QDir().mkpath(work_.filePath("bad"));
        // Truncated PDF: the first half of a valid one.
        folio::test::write_text_pdf(work_.filePath("bad/whole.pdf"), {kPdfPage1});
        QFile whole(work_.filePath("bad/whole.pdf"));
        QVERIFY(whole.open(QIODevice::ReadOnly));
        const QByteArray bytes = whole.readAll();
        whole.close();
        QFile truncated(work_.filePath("bad/truncated.pdf"));
        QVERIFY(truncated.open(QIODevice::WriteOnly));
        truncated.write(bytes.left(bytes.size() / 2));
        truncated.close();
        // Encrypted PDF, made with qpdf.
        QCOMPARE(QProcess::execute("qpdf", {"--encrypt", "secret", "owner", "256", "--",
                                            work_.filePath("bad/whole.pdf"), work_.filePath("bad/locked.pdf")}),
                 0);
        folio::test::write_text_pdf(work_.filePath("bad/good.pdf"), {kPdfPage2});

        const Run run = folio({"ingest", work_.filePath("bad/truncated.pdf"), work_.filePath("bad/locked.pdf"),
                               work_.filePath("inbox/sub/data.bin"), work_.filePath("bad/missing.pdf"),
                               work_.filePath("bad/good.pdf"), "--json"});
        verify_one_error_line(run);
        const auto summary = events(run, "summary")[0];
        QCOMPARE(summary["added"].toInt(), 1);
        QCOMPARE(summary["failed"].toInt(), 4);
        for (const QJsonObject& file : events(run, "file")) {
            if (file["outcome"].toString() != "failed") continue;
            const QString error = file["error"].toString();
            QVERIFY2(!error.isEmpty() && !error.contains('\n'), qPrintable(error));
        }
        QVERIFY(document_for("locked.pdf")["error"].toString().contains("password"));
        QCOMPARE(document_for("locked.pdf")["status"].toString(), QString("failed"));
        QCOMPARE(document_for("good.pdf")["status"].toString(), QString("indexed"));
        QCOMPARE(document_for("report.pdf")["status"].toString(), QString("indexed"));

        // With the password the encrypted file ingests.
        const Run unlocked = folio({"ingest", work_.filePath("bad/locked.pdf"), "--password", "secret", "--json"});
        QCOMPARE(unlocked.exit_code, 0);
        QCOMPARE(document_for("locked.pdf")["status"].toString(), QString("indexed"));
    }

    // A scan read with an OCR language that is not installed yields no text:
    // the document must fail (not sit "indexed" and empty), and a re-run with
    // a working language must read it instead of calling it unchanged.
    void documentWhoseEveryPageFailedIsRetried() {
        QDir().mkpath(work_.filePath("lang"));
        const QString scan = work_.filePath("lang/visit.png");
        QVERIFY(folio::test::write_scan(scan, kVisitText));
        Run run = folio({"ingest", scan, "--lang", "zzz", "--json"});
        verify_one_error_line(run);
        QCOMPARE(events(run, "summary")[0]["failed"].toInt(), 1);
        QVERIFY2(document_for("visit.png")["error"].toString().contains("zzz"),
                 qPrintable(document_for("visit.png")["error"].toString()));
        QCOMPARE(document_for("visit.png")["status"].toString(), QString("failed"));

        run = folio({"ingest", scan, "--json"});
        QCOMPARE(run.exit_code, 0);
        QCOMPARE(events(run, "summary")[0]["added"].toInt(), 1);
        QCOMPARE(document_for("visit.png")["status"].toString(), QString("indexed"));
        QCOMPARE(document_for("visit.png")["error"].toString(), QString());
    }

    void usageErrorsAreOneLine_data() {
        QTest::addColumn<QStringList>("arguments");
        QTest::newRow("unknown command") << QStringList{"frobnicate"};
        QTest::newRow("bad ocr mode") << QStringList{"ingest", "x.pdf", "--ocr", "sometimes"};
        QTest::newRow("bad jobs") << QStringList{"ingest", "x.pdf", "--jobs", "many"};
        QTest::newRow("unknown option") << QStringList{"docs", "--colour"};
        QTest::newRow("no such document") << QStringList{"show", "9999"};
        QTest::newRow("not an id") << QStringList{"show", "abc"};
        QTest::newRow("page out of range") << QStringList{"show", "1", "--page", "99"};
        QTest::newRow("ingest nothing") << QStringList{"ingest"};
    }
    void usageErrorsAreOneLine() {
        QFETCH(QStringList, arguments);
        const Run run = folio(arguments);
        verify_one_error_line(run);
        QCOMPARE(run.err.count('\n'), 1);
    }

    void libraryThatIsNotADatabaseIsRefusedUntouched() {
        QTemporaryDir other;
        QFile fake(other.filePath("library.sqlite"));
        QVERIFY(fake.open(QIODevice::WriteOnly));
        fake.write("this is not a database, and it must survive");
        fake.close();
        QProcess process;
        process.start(FOLIO_EXECUTABLE, {"--library", other.path(), "docs"});
        QVERIFY(process.waitForFinished());
        QVERIFY(process.exitCode() != 0);
        QVERIFY(QString::fromUtf8(process.readAllStandardError()).startsWith("folio: error: "));
        QVERIFY(fake.open(QIODevice::ReadOnly));
        QCOMPARE(fake.readAll(), QByteArray("this is not a database, and it must survive"));
    }

    // kill -9 at random moments: every stored document is whole, the database
    // is sound, and a re-run completes the job.
    void killedIngestLeavesNoHalfDocument() {
        QTemporaryDir corpus;
        QStringList long_pages;
        const QStringList segments = {"Americas", "Europe", "Greater China", "Japan", "Rest of Asia Pacific",
                                      "Services", "Wearables", "Retail"};
        for (int i = 0; i < 12; ++i) {
            QString page;
            for (int p = 0; p < 6; ++p)
                page += QString("Revenue in %1 was %2 million in quarter %3, and operating margins held at %4 "
                                "percent as the segment managed its costs and inventory.\n\n")
                            .arg(segments[(i + p) % segments.size()])
                            .arg(100 + 37 * i + p)
                            .arg(p % 4 + 1)
                            .arg(20 + i);
            long_pages << page;
        }
        for (int f = 0; f < 8; ++f) {
            // Distinct files: copies of one would be stored once.
            long_pages[0] = QString("Filing %1.\n\n").arg(f) + long_pages[0].section("\n\n", 1);
            folio::test::write_text_pdf(corpus.filePath(QString("filing%1.pdf").arg(f)), long_pages);
        }
        QVERIFY(folio::test::write_scan(corpus.filePath("scan.png"), kScanText));
        const QString library = corpus.filePath("library");

        QRandomGenerator random(20261126);
        for (int attempt = 0; attempt < 4; ++attempt) {
            QProcess process;
            process.start(FOLIO_EXECUTABLE, {"--library", library, "ingest", corpus.path(), "--jobs", "2"});
            QVERIFY(process.waitForStarted());
            QThread::msleep(150 + random.bounded(900));
            ::kill(static_cast<pid_t>(process.processId()), SIGKILL);
            process.waitForFinished();

            auto store = folio::index::LibraryStore::open(library.toStdString());
            QCOMPARE(QString::fromStdString(store->integrity_check()), QString("ok"));
            for (const auto& doc : store->documents()) {
                QVERIFY2(doc.status == folio::index::DocumentStatus::Indexed, (doc.path + ": " + doc.error).c_str());
                QCOMPARE(static_cast<int>(store->pages(doc.id).size()), doc.pages);
                QVERIFY2(!store->chunks(doc.id).empty(), doc.path.c_str());
            }
        }
        QProcess rerun;
        rerun.start(FOLIO_EXECUTABLE, {"--library", library, "ingest", corpus.path(), "--json"});
        QVERIFY(rerun.waitForFinished(180000));
        QCOMPARE(rerun.exitCode(), 0);
        auto store = folio::index::LibraryStore::open(library.toStdString());
        QCOMPARE(static_cast<int>(store->documents().size()), 9);
        for (const auto& doc : store->documents())
            QCOMPARE(static_cast<int>(store->pages(doc.id).size()), doc.pages);
    }
};

QTEST_MAIN(CliTest)
#include "tst_cli.moc"
