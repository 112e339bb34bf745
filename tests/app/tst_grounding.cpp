// Grounding (app/grounding.h): extracted values located in the pages of an
// Apple 10-K, a clinical note (and its OCR'd scan), and Chinese and accented
// text; values that are not there stay unfound; spans are valid UTF-8 and the
// index answers a 200-page document's 50 values quickly.

#include <QElapsedTimer>
#include <QTest>

#include <optional>
#include <string>
#include <vector>

#include "app/grounding.h"

using namespace folio::app;

namespace {

const std::vector<PageText> kTenK = {
    {1,
     "UNITED STATES SECURITIES AND EXCHANGE COMMISSION\nFORM 10-K\n"
     "ANNUAL REPORT PURSUANT TO SECTION 13 OR 15(d)\n"
     "For the fiscal year ended September 25, 2021\nApple Inc.\n"
     "Annual Report on Form 10-K for the fiscal year 2012 restated."},
    {2,
     "Apple Inc.\nCONSOLIDATED STATEMENTS OF OPERATIONS\n"
     "(In millions, except number of shares which are reflected in thousands and per share amounts)\n"
     "                                Years ended\n"
     "                     September 25, 2021   September 26, 2020\n"
     "Net sales:\n"
     "  Products            $ 297,392            $ 220,747\n"
     "  Services               68,425               53,768\n"
     "Total net sales         365,817              274,515\n"
     "Research and development 21,914              18,752\n"
     "Gross margin percentage   41.8 %               38.2 %\n"
     "Other income/(expense), net  258           (12.5)\n"
     "Diluted                 $  5.61              $  3.28\n"},
    {3, "Products net sales increased due to higher net sales of iPhone. Total net sales 365,817."},
};

const std::vector<PageText> kClinicalNote = {
    {1,
     "HISTORY OF PRESENT ILLNESS: Mrs. Jane Doe is a 58-year-old woman with type 2 diabetes and\n"
     "hypertension. She is currently on lisinopril 20 mg once daily and metformin 500 mg twice daily.\n"},
    {2,
     "VITALS: Blood pressure 128/78, pulse 72, temperature 98.6 F.\n"
     "LABS: Hemoglobin A1c of 7.2 on 03/03/2021. Glucose 105 mg/dL.\n"},
};

// The same note scanned: OCR misreads "i" as "l", "m" as "n" and loses a space.
const std::vector<PageText> kScannedNote = {
    {1, "She is currently on Lisinoprll 20mg once daily and metfornin 500 mg twice daily.\n"
        "Vitals: BP 128/78, pulse 72."},
};

const std::vector<PageText> kUtf8Pages = {
    {1, "2021年年度报告\n营业收入为人民币1,234.5百万元，同比增长12.5%。\n患者：张伟，诊断：高血压。"},
    {2, "Patient: José Müller, seen at Clínica São Paulo on 3 März 2021 — BP 120/80."},
};

struct Expected {
    int page;
    std::string quote;
    double min_score, max_score;
};

void compare_located(const std::vector<PageText>& pages, const std::string& value, const std::string& hint,
                     const std::optional<Expected>& expected) {
    const std::optional<GroundedSpan> found = PageIndex(pages).locate(value, hint);
    if (!expected) {
        QVERIFY2(!found, qPrintable(QString("'%1' located at page %2: '%3'")
                                        .arg(QString::fromStdString(value))
                                        .arg(found ? found->page : 0)
                                        .arg(QString::fromStdString(found ? found->quote : ""))));
        return;
    }
    QVERIFY2(found, qPrintable(QString("'%1' not located").arg(QString::fromStdString(value))));
    QCOMPARE(found->page, expected->page);
    QCOMPARE(QString::fromStdString(found->quote), QString::fromStdString(expected->quote));
    const std::string& text = pages[std::size_t(found->page - 1)].text;
    QCOMPARE(text.substr(found->begin, found->end - found->begin), found->quote);
    QVERIFY2(found->score >= expected->min_score && found->score <= expected->max_score,
             qPrintable(QString("score %1").arg(found->score)));
}

}  // namespace

class GroundingTest : public QObject {
    Q_OBJECT

private slots:
    void tenK_data() {
        QTest::addColumn<QString>("value");
        QTest::addColumn<QString>("hint");
        QTest::addColumn<int>("page");  // 0: must not be found
        QTest::addColumn<QString>("quote");
        QTest::addColumn<double>("min_score");
        QTest::addColumn<double>("max_score");
        QTest::newRow("exact") << "Total net sales" << "" << 2 << "Total net sales" << 1.0 << 1.0;
        QTest::newRow("exact number") << "5.61" << "" << 2 << "5.61" << 1.0 << 1.0;
        QTest::newRow("case and spacing") << "total  NET sales" << "" << 2 << "Total net sales" << 0.95 << 0.95;
        QTest::newRow("number without grouping") << "365817" << "" << 2 << "365,817" << 0.95 << 0.95;
        QTest::newRow("number with currency sign") << "$297,392" << "money" << 2 << "297,392" << 0.95 << 0.95;
        QTest::newRow("percent spacing") << "41.8%" << "percent" << 2 << "41.8" << 0.95 << 0.95;
        QTest::newRow("money in millions") << "$365,817 million" << "money" << 2 << "365,817" << 0.9 << 0.9;
        QTest::newRow("billions on a page of millions") << "$21.914 billion" << "money" << 2 << "21,914" << 0.9 << 0.9;
        QTest::newRow("rounded billions") << "$365.8 billion" << "money" << 2 << "365,817" << 0.85 << 0.85;
        QTest::newRow("sign is punctuation to words") << "-12.5" << "number" << 2 << "12.5" << 0.95 << 0.95;
        QTest::newRow("accounting negative in millions") << "-$12.5 million" << "money" << 2 << "(12.5)" << 0.9 << 0.9;
        QTest::newRow("date across formats") << "2021-09-25" << "date" << 1 << "September 25, 2021" << 0.9 << 0.9;
        QTest::newRow("date guessed") << "09/25/2021" << "" << 1 << "September 25, 2021" << 0.9 << 0.9;
        QTest::newRow("first page wins") << "Apple Inc." << "" << 1 << "Apple Inc." << 1.0 << 1.0;
        QTest::newRow("a different number") << "365,818" << "money" << 0 << "" << 0.0 << 0.0;
        QTest::newRow("a different rounding") << "$365.9 billion" << "money" << 0 << "" << 0.0 << 0.0;
        QTest::newRow("billions without the page's scale") << "$1.2 billion" << "money" << 0 << "" << 0.0 << 0.0;
        QTest::newRow("a date not there") << "2021-09-26" << "date" << 0 << "" << 0.0 << 0.0;
        QTest::newRow("a company not there") << "Microsoft Corporation" << "" << 0 << "" << 0.0 << 0.0;
        QTest::newRow("another line item") << "Total net income" << "" << 0 << "" << 0.0 << 0.0;
        QTest::newRow("part of a word") << "Ann" << "" << 0 << "" << 0.0 << 0.0;
        QTest::newRow("part of a year") << "201" << "" << 0 << "" << 0.0 << 0.0;
        QTest::newRow("part of a decimal") << "41" << "" << 0 << "" << 0.0 << 0.0;
        QTest::newRow("blank") << "   " << "" << 0 << "" << 0.0 << 0.0;
    }
    void tenK() { check(kTenK); }

    void clinicalNote_data() {
        QTest::addColumn<QString>("value");
        QTest::addColumn<QString>("hint");
        QTest::addColumn<int>("page");
        QTest::addColumn<QString>("quote");
        QTest::addColumn<double>("min_score");
        QTest::addColumn<double>("max_score");
        QTest::newRow("medication") << "lisinopril 20 mg" << "" << 1 << "lisinopril 20 mg" << 1.0 << 1.0;
        QTest::newRow("medication as extracted") << "Lisinopril 20mg" << "" << 1 << "lisinopril 20 mg" << 0.95 << 0.95;
        QTest::newRow("blood pressure") << "128/78" << "" << 2 << "128/78" << 1.0 << 1.0;
        QTest::newRow("A1c") << "7.2" << "" << 2 << "7.2" << 1.0 << 1.0;
        QTest::newRow("A1c as percent") << "7.2%" << "percent" << 2 << "7.2" << 0.95 << 0.95;
        QTest::newRow("temperature") << "98.6 F" << "quantity" << 2 << "98.6 F" << 1.0 << 1.0;
        QTest::newRow("lab date") << "2021-03-03" << "date" << 2 << "03/03/2021" << 0.9 << 0.9;
        QTest::newRow("patient") << "Jane Doe" << "" << 1 << "Jane Doe" << 1.0 << 1.0;
        QTest::newRow("small wording change") << "Blood pressure: 128/78" << "" << 2 << "Blood pressure 128/78"
                                              << 0.95 << 0.95;
        QTest::newRow("another dose") << "Lisinopril 40 mg" << "" << 0 << "" << 0.0 << 0.0;
        QTest::newRow("another patient") << "John Doe" << "" << 0 << "" << 0.0 << 0.0;
        QTest::newRow("another drug") << "Metoprolol" << "" << 0 << "" << 0.0 << 0.0;
        QTest::newRow("another lab value") << "7.4" << "" << 0 << "" << 0.0 << 0.0;
        QTest::newRow("another date") << "2021-03-04" << "date" << 0 << "" << 0.0 << 0.0;
        QTest::newRow("a number inside a name") << "1" << "" << 0 << "" << 0.0 << 0.0;
    }
    void clinicalNote() { check(kClinicalNote); }

    void scannedNote_data() {
        QTest::addColumn<QString>("value");
        QTest::addColumn<QString>("hint");
        QTest::addColumn<int>("page");
        QTest::addColumn<QString>("quote");
        QTest::addColumn<double>("min_score");
        QTest::addColumn<double>("max_score");
        QTest::newRow("OCR error") << "Lisinopril 20 mg" << "" << 1 << "Lisinoprll 20mg" << 0.7 << 0.79;
        QTest::newRow("OCR error in one word") << "metformin" << "" << 1 << "metfornin" << 0.6 << 0.79;
        QTest::newRow("OCR errors in the value") << "Vltals: BP 128/78, pulce 72" << "" << 1 << "Vitals: BP 128/78, pulse 72"
                                                 << 0.7 << 0.79;
        QTest::newRow("OCR error, another dose") << "Lisinopril 40 mg" << "" << 0 << "" << 0.0 << 0.0;
        QTest::newRow("OCR error, another reading") << "Vltals: BP 128/76, pulse 72" << "" << 0 << "" << 0.0 << 0.0;
        QTest::newRow("beyond 15% of the value") << "Lisanapral 20 mg" << "" << 0 << "" << 0.0 << 0.0;
        QTest::newRow("too short for fuzzy") << "daly" << "" << 0 << "" << 0.0 << 0.0;
    }
    void scannedNote() { check(kScannedNote); }

    void utf8_data() {
        QTest::addColumn<QString>("value");
        QTest::addColumn<QString>("hint");
        QTest::addColumn<int>("page");
        QTest::addColumn<QString>("quote");
        QTest::addColumn<double>("min_score");
        QTest::addColumn<double>("max_score");
        QTest::newRow("Chinese name") << "张伟" << "" << 1 << "张伟" << 1.0 << 1.0;
        QTest::newRow("Chinese term") << "营业收入" << "" << 1 << "营业收入" << 1.0 << 1.0;
        QTest::newRow("number among Chinese") << "1234.5" << "" << 1 << "1,234.5" << 0.95 << 0.95;
        QTest::newRow("percent among Chinese") << "12.5 %" << "" << 1 << "12.5" << 0.95 << 0.95;
        QTest::newRow("accents folded") << "Jose Muller" << "" << 2 << "José Müller" << 0.95 << 0.95;
        QTest::newRow("accented capitals") << "JOSÉ MÜLLER" << "" << 2 << "José Müller" << 0.95 << 0.95;
        QTest::newRow("dash is punctuation") << "2021 BP 120/80" << "" << 2 << "2021 — BP 120/80" << 0.95 << 0.95;
        QTest::newRow("Chinese name not there") << "张三" << "" << 0 << "" << 0.0 << 0.0;
        QTest::newRow("accented name not there") << "Ana Müller" << "" << 0 << "" << 0.0 << 0.0;
    }
    void utf8() { check(kUtf8Pages); }

    void spansAreUtf8() {
        const PageIndex index(kUtf8Pages);
        for (const char* value : {"张伟", "高血压", "1234.5", "Jose Muller", "Clinica Sao Paulo", "São"}) {
            const std::optional<GroundedSpan> found = index.locate(value);
            QVERIFY2(found, value);
            const QByteArray quote = QByteArray::fromStdString(found->quote);
            QCOMPARE(QString::fromUtf8(quote).toUtf8(), quote);
            QVERIFY(!QString::fromUtf8(quote).contains(QChar::ReplacementCharacter));
        }
    }

    void locateValueBuildsItsOwnIndex() {
        const std::optional<GroundedSpan> found = locate_value("metformin 500 mg", kClinicalNote);
        QVERIFY(found);
        QCOMPARE(found->page, 1);
        QCOMPARE(kClinicalNote[0].text.substr(found->begin, found->end - found->begin), std::string("metformin 500 mg"));
    }

    // 200 pages of 10-K and clinical prose, 50 values: indexed once, then
    // each located; a wrong answer or a slow index fails.
    void twoHundredPagesFiftyValues() {
        std::vector<PageText> pages;
        for (int p = 1; p <= 200; ++p) {
            std::string text;
            for (int line = 0; line < 40; ++line) {
                const int n = p * 100 + line;
                text += "Segment " + std::to_string(n) + " net sales $ " + std::to_string(n * 7) + "," +
                        std::to_string(100 + line) + " and operating income (" + std::to_string(n % 97) +
                        ".5) for the period ended March " + std::to_string(1 + line % 28) + ", " +
                        std::to_string(2000 + p % 20) + "; patient " + std::to_string(n) +
                        " on lisinopril " + std::to_string(5 + line) + " mg.\n";
            }
            pages.push_back({p, text});
        }
        QElapsedTimer timer;
        timer.start();
        const PageIndex index(pages);
        int found = 0;
        for (int v = 0; v < 50; ++v) {
            const int p = 1 + v * 4, line = v % 40, n = p * 100 + line;
            const std::string present = "Segment " + std::to_string(n) + " net sales";
            const std::optional<GroundedSpan> at = index.locate(present);
            QVERIFY(at);
            QCOMPARE(at->page, p);
            found += bool(index.locate("Segmemt " + std::to_string(n) + " net sales"));  // OCR-like
            QVERIFY(!index.locate("Segment " + std::to_string(n) + " gross margin"));
            QVERIFY(!index.locate("atorvastatin " + std::to_string(5 + line) + " mg"));
        }
        QCOMPARE(found, 50);
        QVERIFY2(timer.elapsed() < 10000, qPrintable(QString("%1 ms").arg(timer.elapsed())));
        qInfo("index and 200 lookups: %lld ms", static_cast<long long>(timer.elapsed()));
    }

private:
    void check(const std::vector<PageText>& pages) {
        QFETCH(QString, value);
        QFETCH(QString, hint);
        QFETCH(int, page);
        QFETCH(QString, quote);
        QFETCH(double, min_score);
        QFETCH(double, max_score);
        std::optional<Expected> expected;
        if (page) expected = Expected{page, quote.toStdString(), min_score, max_score};
        compare_located(pages, value.toStdString(), hint.toStdString(), expected);
    }
};

QTEST_APPLESS_MAIN(GroundingTest)
#include "tst_grounding.moc"
