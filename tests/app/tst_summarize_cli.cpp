// End-to-end tests of `folio summarize` on PDFs the suite writes: the
// points and their pages as text and as JSON, progress on stderr, and the
// inputs it refuses. Runs the installed chat model (SmolLM2-135M-Instruct;
// CI has it).

#include <QJsonArray>
#include <QJsonObject>
#include <QProcessEnvironment>
#include <QTemporaryDir>
#include <QTest>

#include "engine/model_paths.h"
#include "tests/support/folio_process.h"
#include "tests/support/test_documents.h"

namespace {

using Run = folio::test::FolioRun;

}  // namespace

class SummarizeCliTest : public QObject {
    Q_OBJECT

    QTemporaryDir work_;
    QString library_;
    QString report_id_, blank_id_;

    Run folio(const QStringList& arguments) {
        // No embedding model: summarize reads pages, not vectors.
        QProcessEnvironment environment = QProcessEnvironment::systemEnvironment();
        environment.insert("FOLIO_EMBEDDING_MODEL", "/nonexistent/model.gguf");
        return folio::test::run_folio(QStringList{"--library", library_} + arguments, 300000, environment);
    }

    static void verify_error(const Run& run, int exit_code, const QString& says) {
        QCOMPARE(run.exit_code, exit_code);
        QVERIFY(run.out.isEmpty());
        const QStringList lines = run.err.split('\n', Qt::SkipEmptyParts);
        QCOMPARE(lines.size(), 1);
        QVERIFY2(lines[0].startsWith("folio: error: ") && lines[0].contains(says), qPrintable(run.err));
    }

private slots:
    void initTestCase() {
        QVERIFY(work_.isValid());
        QVERIFY2(folio::engine::find_default_model(folio::engine::ModelRole::Chat),
                 "no chat model installed: run installer/fetch-models.sh (CI must have it)");
        library_ = work_.path() + "/library";
        folio::test::write_text_pdf(
            work_.path() + "/report.pdf",
            {"Harbour Holdings annual report. Container volume at the Rotterdam terminal rose to 4.2 million "
             "units in 2025, driven by Asian imports. Revenue grew 12 percent to 830 million euros.",
             "The board approved a dividend of 1.40 euros per share. Rail freight to Germany doubled after the "
             "new Duisburg shuttle service opened. Carbon emissions dropped 9 percent thanks to shore power."});
        folio::test::write_text_pdf(work_.path() + "/blank.pdf", {"", ""});
        const Run ingest = folio({"ingest", work_.path() + "/report.pdf", work_.path() + "/blank.pdf", "--ocr",
                                  "never", "--json"});
        for (const QJsonObject& line : ingest.lines) {
            if (line["path"].toString().endsWith("/report.pdf") && line.contains("doc_id"))
                report_id_ = QString::number(line["doc_id"].toInteger());
            if (line["path"].toString().endsWith("/blank.pdf") && line.contains("doc_id"))
                blank_id_ = QString::number(line["doc_id"].toInteger());
        }
        QVERIFY2(!report_id_.isEmpty() && report_id_ != "0", qPrintable(ingest.out + ingest.err));
    }

    void pointsCiteTheirPages() {
        const Run run = folio({"summarize", report_id_});
        QVERIFY2(run.exit_code == 0, qPrintable(run.err));
        const QStringList points = run.out.split('\n', Qt::SkipEmptyParts);
        QVERIFY(!points.isEmpty());
        for (const QString& point : points)
            QVERIFY2(point.startsWith("- ") && (point.endsWith("(p. 1)") || point.endsWith("(p. 2)") ||
                                                point.endsWith("(p. 1-2)")),
                     qPrintable(point));
        // Not a terminal: a progress line per section, then what it took.
        QVERIFY2(run.err.contains("section 1/1 done (pp. 1-2)\n"), qPrintable(run.err));
        QVERIFY2(run.err.contains("2 pages in 1 section (one pass)"), qPrintable(run.err));
    }

    void jsonCarriesTheContractFields() {
        const Run run = folio({"summarize", report_id_, "--pack", "finance", "--json"});
        QVERIFY2(run.exit_code == 0, qPrintable(run.err));
        QCOMPARE(run.lines.size(), 1);
        const QJsonObject summary = run.lines[0];
        QCOMPARE(summary["doc_id"].toInteger(), report_id_.toLongLong());
        QVERIFY(summary["path"].toString().endsWith("/report.pdf"));
        QCOMPARE(summary["sections"].toInt(), 1);
        QCOMPARE(summary["single_pass"].toBool(), true);
        QVERIFY(summary["timings"].toObject()["prompt_tokens"].toInt() > 0);
        QVERIFY(summary["timings"].toObject()["seconds"].toDouble() > 0);
        const QJsonArray points = summary["points"].toArray();
        QVERIFY(!points.isEmpty());
        QCOMPARE(summary["summary"].toString().count('\n'), points.size());
        for (const QJsonValue& point : points) {
            QVERIFY(!point["text"].toString().isEmpty());
            const QJsonArray pages = point["pages"].toArray();
            QVERIFY(!pages.isEmpty());
            for (const QJsonValue& page : pages) QVERIFY(page.toInt() == 1 || page.toInt() == 2);
        }
    }

    void badInputIsOneLineError() {
        verify_error(folio({"summarize"}), 2, "one document id");
        verify_error(folio({"summarize", "abc"}), 2, "not a document id");
        verify_error(folio({"summarize", "999"}), 2, "no document with id 999");
        verify_error(folio({"summarize", report_id_, "--pack", "astrology"}), 2, "astrology");
        verify_error(folio({"summarize", report_id_, "--model", work_.path() + "/none.gguf"}), 2, "no model file");
        // A file that is not a model.
        verify_error(folio({"summarize", report_id_, "--model", work_.path() + "/report.pdf"}), 1, "report.pdf");
        // Pages without text: stored failed, or stored blank; either way nothing to summarize.
        QVERIFY(!blank_id_.isEmpty());
        const Run blank = folio({"summarize", blank_id_});
        QCOMPARE(blank.exit_code, 2);
        QVERIFY2(blank.err.startsWith("folio: error: ") &&
                     (blank.err.contains("no text to summarize") || blank.err.contains("failed to ingest")),
                 qPrintable(blank.err));
    }
};

QTEST_MAIN(SummarizeCliTest)
#include "tst_summarize_cli.moc"
