// Normalized values (app/value_normalize.h): dates, money, percentages,
// quantities and blood pressures as they are written in 10-K filings and
// clinical notes, the dispatcher extraction uses, and the numbers of a text.

#include <QTest>

#include <optional>
#include <string>
#include <vector>

#include "app/value_normalize.h"

using namespace folio::app;

namespace {

QString shown(const std::optional<std::string>& value) {
    return value ? QString::fromStdString(*value) : QStringLiteral("null");
}

}  // namespace

class ValueNormalizeTest : public QObject {
    Q_OBJECT

private slots:
    void dates_data() {
        QTest::addColumn<QString>("text");
        QTest::addColumn<QString>("iso");
        QTest::newRow("month day, year") << "March 3, 2021" << "2021-03-03";
        QTest::newRow("abbreviated with period") << "Mar. 3 2021" << "2021-03-03";
        QTest::newRow("day month year") << "3 March 2021" << "2021-03-03";
        QTest::newRow("US numeric") << "03/03/2021" << "2021-03-03";
        QTest::newRow("US numeric is month first") << "03/04/2021" << "2021-03-04";
        QTest::newRow("day first when it cannot be a month") << "25/09/2021" << "2021-09-25";
        QTest::newRow("dotted is day first") << "04.03.2021" << "2021-03-04";
        QTest::newRow("two-digit year") << "3/4/21" << "2021-03-04";
        QTest::newRow("two-digit year, last century") << "7/4/76" << "1976-07-04";
        QTest::newRow("ISO") << "2021-03-03" << "2021-03-03";
        QTest::newRow("10-K fiscal year end") << "September 25, 2021" << "2021-09-25";
        QTest::newRow("Sept with ordinal") << "Sept 25th, 2021" << "2021-09-25";
        QTest::newRow("ordinal of") << "3rd of March 2021" << "2021-03-03";
        QTest::newRow("weekday") << "Friday, March 3, 2021" << "2021-03-03";
        QTest::newRow("clinical DD-Mon-YYYY") << "3-Mar-2021" << "2021-03-03";
        QTest::newRow("upper case") << "MARCH 3, 2021" << "2021-03-03";
        QTest::newRow("surrounding spaces") << "  March 3, 2021 " << "2021-03-03";
        QTest::newRow("Chinese") << "2021年3月3日" << "2021-03-03";
        QTest::newRow("leap day") << "February 29, 2020" << "2020-02-29";
        QTest::newRow("year-month") << "March 2021" << "2021-03";
        QTest::newRow("ISO year-month") << "2021-03" << "2021-03";
        QTest::newRow("numeric month/year") << "03/2021" << "2021-03";
        QTest::newRow("Chinese year-month") << "2021年3月" << "2021-03";
        QTest::newRow("February 30") << "February 30, 2021" << "null";
        QTest::newRow("not a leap year") << "02/29/2021" << "null";
        QTest::newRow("month 13") << "2021-13-01" << "null";
        QTest::newRow("day 32") << "March 32, 2021" << "null";
        QTest::newRow("year alone") << "2021" << "null";
        QTest::newRow("fiscal years") << "2020-21" << "null";
        QTest::newRow("blood pressure") << "120/80" << "null";
        QTest::newRow("prose") << "as of March 3, 2021" << "null";
        QTest::newRow("money") << "$365,817" << "null";
        QTest::newRow("empty") << "" << "null";
    }
    void dates() {
        QFETCH(QString, text);
        QFETCH(QString, iso);
        QCOMPARE(shown(normalize_date(text.toStdString())), iso);
    }

    void money_data() {
        QTest::addColumn<QString>("text");
        QTest::addColumn<double>("context_scale");
        QTest::addColumn<double>("amount");
        QTest::addColumn<QString>("currency");
        QTest::addColumn<double>("scale");
        QTest::newRow("dollars in millions") << "$1,234.5 million" << 1.0 << 1234500000.0 << "USD" << 1e6;
        QTest::newRow("accounting negative") << "(1,234)" << 1.0 << -1234.0 << "" << 1.0;
        QTest::newRow("accounting negative in a table of millions") << "(1,234)" << 1e6 << -1234e6 << "" << 1e6;
        QTest::newRow("Apple total net sales") << "$ 365,817" << 1e6 << 365817e6 << "USD" << 1e6;
        QTest::newRow("own scale beats the table's") << "$1.2 billion" << 1e6 << 1.2e9 << "USD" << 1e9;
        QTest::newRow("code and bn") << "USD 12.3bn" << 1.0 << 12.3e9 << "USD" << 1e9;
        QTest::newRow("euro billion") << "€5 billion" << 1.0 << 5e9 << "EUR" << 1e9;
        QTest::newRow("yen") << "¥300" << 1.0 << 300.0 << "JPY" << 1.0;
        QTest::newRow("renminbi") << "RMB 300 million" << 1.0 << 300e6 << "CNY" << 1e6;
        QTest::newRow("Chinese yi yuan") << "3亿元" << 1.0 << 3e8 << "CNY" << 1e8;
        QTest::newRow("pounds") << "£2.5m" << 1.0 << 2.5e6 << "GBP" << 1e6;
        QTest::newRow("trillion without currency") << "1.2 trillion" << 1.0 << 1.2e12 << "" << 1e12;
        QTest::newRow("currency word") << "5 million euros" << 1.0 << 5e6 << "EUR" << 1e6;
        QTest::newRow("code after") << "12.3 bn USD" << 1.0 << 12.3e9 << "USD" << 1e9;
        QTest::newRow("sign inside parentheses") << "$(1,234)" << 1.0 << -1234.0 << "USD" << 1.0;
        QTest::newRow("minus") << "-$5.25" << 1.0 << -5.25 << "USD" << 1.0;
        QTest::newRow("US$") << "US$ 7" << 1.0 << 7.0 << "USD" << 1.0;
        QTest::newRow("thousands") << "$40 thousand" << 1.0 << 40e3 << "USD" << 1e3;
    }
    void money() {
        QFETCH(QString, text);
        QFETCH(double, context_scale);
        QFETCH(double, amount);
        QFETCH(QString, currency);
        QFETCH(double, scale);
        const std::optional<Money> money = normalize_money(text.toStdString(), context_scale);
        QVERIFY(money);
        QCOMPARE(money->amount, amount);
        QCOMPARE(QString::fromStdString(money->currency), currency);
        QCOMPARE(money->scale, scale);
    }

    void notMoney_data() {
        QTest::addColumn<QString>("text");
        QTest::newRow("percent") << "12.5%";
        QTest::newRow("date") << "2021-03-03";
        QTest::newRow("dose") << "20 mg";
        QTest::newRow("meters are no millions") << "5 m";
        QTest::newRow("prose") << "net sales $5";
        QTest::newRow("unclosed parenthesis") << "(1,234";
        QTest::newRow("words") << "Lisinopril";
    }
    void notMoney() {
        QFETCH(QString, text);
        QVERIFY(!normalize_money(text.toStdString()));
    }

    void scaleFromContext_data() {
        QTest::addColumn<QString>("page");
        QTest::addColumn<double>("scale");
        QTest::newRow("Apple 10-K") << "CONSOLIDATED STATEMENTS OF OPERATIONS\n(In millions, except number of shares "
                                       "which are reflected in thousands and per share amounts)\nTotal net sales $ 365,817"
                                    << 1e6;
        QTest::newRow("dollars in thousands") << "Balance sheet (dollars in thousands)\nCash 12,345" << 1e3;
        QTest::newRow("currency before the scale") << "($ in millions)" << 1e6;
        QTest::newRow("euros") << "In billions of euros\nRevenue 12.3" << 1e9;
        QTest::newRow("none") << "Total net sales $ 365,817" << 1.0;
        QTest::newRow("a million without in") << "We sold a million units." << 1.0;
        QTest::newRow("'in' inside a word") << "Revenue million" << 1.0;
    }
    void scaleFromContext() {
        QFETCH(QString, page);
        QFETCH(double, scale);
        QCOMPARE(scale_from_context(page.toStdString()), scale);
    }

    void percent_data() {
        QTest::addColumn<QString>("text");
        QTest::addColumn<double>("value");
        QTest::newRow("sign") << "12.5%" << 12.5;
        QTest::newRow("spaced sign") << "12.5 %" << 12.5;
        QTest::newRow("word") << "12.5 percent" << 12.5;
        QTest::newRow("two words") << "12.5 per cent" << 12.5;
        QTest::newRow("accounting negative, sign outside") << "(3.1)%" << -3.1;
        QTest::newRow("accounting negative, sign inside") << "(3.1%)" << -3.1;
        QTest::newRow("minus") << "-3.1%" << -3.1;
        QTest::newRow("full-width sign") << "39％" << 39.0;
    }
    void percent() {
        QFETCH(QString, text);
        QFETCH(double, value);
        const std::optional<double> percent = normalize_percent(text.toStdString());
        QVERIFY(percent);
        QCOMPARE(*percent, value);
    }

    void notPercent() {
        QVERIFY(!normalize_percent("12.5"));
        QVERIFY(!normalize_percent("(3.1%"));
        QVERIFY(!normalize_percent("12.5% of sales"));
    }

    void quantities_data() {
        QTest::addColumn<QString>("text");
        QTest::addColumn<double>("value");
        QTest::addColumn<QString>("unit");
        QTest::addColumn<QString>("original_unit");
        QTest::newRow("A1c") << "7.2 %" << 7.2 << "%" << "%";
        QTest::newRow("glucose") << "105 mg/dL" << 105.0 << "mg/dL" << "mg/dL";
        QTest::newRow("glucose lower case") << "105 mg/dl" << 105.0 << "mg/dL" << "mg/dl";
        QTest::newRow("temperature F") << "98.6 F" << 98.6 << "[degF]" << "F";
        QTest::newRow("temperature °F") << "98.6°F" << 98.6 << "[degF]" << "°F";
        QTest::newRow("temperature °C") << "37 °C" << 37.0 << "Cel" << "°C";
        QTest::newRow("pulse") << "72 bpm" << 72.0 << "/min" << "bpm";
        QTest::newRow("respirations") << "16 breaths/min" << 16.0 << "/min" << "breaths/min";
        QTest::newRow("height feet and inches") << "5'6\"" << 66.0 << "[in_i]" << "ft-in";
        QTest::newRow("height in words") << "5 ft 6 in" << 66.0 << "[in_i]" << "ft-in";
        QTest::newRow("weight") << "150 lbs" << 150.0 << "[lb_av]" << "lbs";
        QTest::newRow("dose") << "20 mg" << 20.0 << "mg" << "mg";
        QTest::newRow("dose unspaced") << "20mg" << 20.0 << "mg" << "mg";
        QTest::newRow("micrograms") << "50 µg" << 50.0 << "ug" << "µg";
        QTest::newRow("mcg") << "50 mcg" << 50.0 << "ug" << "mcg";
        QTest::newRow("creatinine") << "1.1 mg/dL" << 1.1 << "mg/dL" << "mg/dL";
        QTest::newRow("potassium") << "4.2 mEq/L" << 4.2 << "meq/L" << "mEq/L";
        QTest::newRow("platelets") << "250 K/uL" << 250.0 << "10*3/uL" << "K/uL";
        QTest::newRow("BMI") << "27.4 kg/m²" << 27.4 << "kg/m2" << "kg/m²";
    }
    void quantities() {
        QFETCH(QString, text);
        QFETCH(double, value);
        QFETCH(QString, unit);
        QFETCH(QString, original_unit);
        const std::optional<Quantity> quantity = normalize_quantity(text.toStdString());
        QVERIFY(quantity);
        QCOMPARE(quantity->value, value);
        QCOMPARE(QString::fromStdString(quantity->unit), unit);
        QCOMPARE(QString::fromStdString(quantity->original_unit), original_unit);
    }

    void notQuantities() {
        QVERIFY(!normalize_quantity("105"));
        QVERIFY(!normalize_quantity("105 widgets"));
        QVERIFY(!normalize_quantity("mg 20"));
        QVERIFY(!normalize_quantity("120/80 mmHg"));
    }

    void bloodPressure() {
        const std::optional<BloodPressure> with_unit = normalize_blood_pressure("120/80 mmHg");
        QVERIFY(with_unit);
        QCOMPARE(with_unit->systolic, 120.0);
        QCOMPARE(with_unit->diastolic, 80.0);
        QCOMPARE(QString::fromStdString(with_unit->unit), QStringLiteral("mm[Hg]"));
        const std::optional<BloodPressure> bare = normalize_blood_pressure("128/78");
        QVERIFY(bare);
        QCOMPARE(bare->systolic, 128.0);
        QCOMPARE(bare->diastolic, 78.0);
        QVERIFY(normalize_blood_pressure("128/78 mm Hg"));
        QVERIFY(!normalize_blood_pressure("3/4"));         // a fraction
        QVERIFY(!normalize_blood_pressure("12/25"));       // a date without a year
        QVERIFY(!normalize_blood_pressure("80/120"));      // diastolic above systolic
        QVERIFY(!normalize_blood_pressure("120/80 mg"));
        QVERIFY(!normalize_blood_pressure("03/03/2021"));
    }

    void dispatcher_data() {
        QTest::addColumn<QString>("text");
        QTest::addColumn<QString>("hint");
        QTest::addColumn<QString>("json");
        QTest::newRow("date") << "March 3, 2021" << "date" << R"({"iso":"2021-03-03","type":"date"})";
        QTest::newRow("money") << "$1,234.5 million" << "money"
                               << R"({"amount":1234500000.0,"currency":"USD","scale":1000000.0,"type":"money"})";
        QTest::newRow("money without currency") << "(1,234)" << "money"
                                                << R"({"amount":-1234.0,"currency":null,"scale":1.0,"type":"money"})";
        QTest::newRow("percent") << "12.5%" << "percent" << R"({"type":"percent","value":12.5})";
        QTest::newRow("percent without its sign") << "(3.1)" << "percent" << R"({"type":"percent","value":-3.1})";
        QTest::newRow("percent hint, money text") << "$3.1" << "percent" << "null";
        QTest::newRow("quantity") << "105 mg/dL" << "quantity"
                                  << R"({"original_unit":"mg/dL","type":"quantity","unit":"mg/dL","value":105.0})";
        QTest::newRow("A1c as a quantity") << "7.2 %" << "quantity"
                                           << R"({"original_unit":"%","type":"quantity","unit":"%","value":7.2})";
        QTest::newRow("blood pressure as a quantity")
            << "120/80 mmHg" << "quantity" << R"({"diastolic":80.0,"systolic":120.0,"type":"blood_pressure","unit":"mm[Hg]"})";
        QTest::newRow("number") << "1,234.5" << "number" << R"({"type":"number","value":1234.5})";
        QTest::newRow("hint not met") << "Lisinopril" << "date" << "null";
        QTest::newRow("guess date") << "Sept 25th, 2021" << "" << R"({"iso":"2021-09-25","type":"date"})";
        QTest::newRow("guess blood pressure")
            << "128/78" << "" << R"({"diastolic":78.0,"systolic":128.0,"type":"blood_pressure","unit":"mm[Hg]"})";
        QTest::newRow("guess percent") << "(3.1)%" << "" << R"({"type":"percent","value":-3.1})";
        QTest::newRow("guess money") << "€5 billion" << ""
                                     << R"({"amount":5000000000.0,"currency":"EUR","scale":1000000000.0,"type":"money"})";
        QTest::newRow("guess quantity") << "20 mg" << ""
                                        << R"({"original_unit":"mg","type":"quantity","unit":"mg","value":20.0})";
        QTest::newRow("guess number") << "42" << "" << R"({"type":"number","value":42.0})";
        QTest::newRow("unknown hint guesses") << "2021-03-03" << "email" << R"({"iso":"2021-03-03","type":"date"})";
        QTest::newRow("guess nothing") << "Lisinopril 20 mg" << "" << "null";
    }
    void dispatcher() {
        QFETCH(QString, text);
        QFETCH(QString, hint);
        QFETCH(QString, json);
        QCOMPARE(QString::fromStdString(normalize_value(text.toStdString(), hint.toStdString()).dump()), json);
    }

    void decimals() {
        const std::optional<DecimalNumber> grouped = parse_decimal("1,234.50 million");
        QVERIFY(grouped);
        QCOMPARE(grouped->value, 1234.5);
        QCOMPARE(grouped->decimals, 2);
        QCOMPARE(grouped->length, std::size_t{8});
        // ",23" is no thousands group: the number ends before it.
        QCOMPARE(parse_decimal("1,23")->length, std::size_t{1});
        QCOMPARE(parse_decimal("1,2345")->length, std::size_t{1});
        QCOMPARE(parse_decimal("7.")->length, std::size_t{1});
        QVERIFY(!parse_decimal(".5"));
        QVERIFY(!parse_decimal("x1"));
    }

    void numbersInText() {
        const std::string text =
            "1. Net sales were $1,234.5 million, up 12.5% [1] from (1,234) in FY2021; Q3 2020-2021, "
            "A1c 7.2, change -3.1 and 03.03.2021; bonus $5m [2, 3].";
        const std::vector<WrittenNumber> numbers = numbers_in(text);
        std::vector<std::string> written;
        for (const WrittenNumber& number : numbers) written.push_back(text.substr(number.begin, number.end - number.begin));
        const std::vector<std::string> expected = {"$1,234.5 million", "12.5%", "(1,234)", "2020", "2021", "7.2",
                                                   "-3.1", "03", "03", "2021", "$5m"};
        QCOMPARE(written, expected);
        QCOMPARE(numbers[0].value, 1234.5e6);
        QCOMPARE(numbers[0].scale, 1e6);
        QCOMPARE(numbers[0].decimals, 1);
        QCOMPARE(QString::fromStdString(numbers[0].currency), QStringLiteral("USD"));
        QVERIFY(numbers[1].percent);
        QCOMPARE(numbers[1].value, 12.5);
        QCOMPARE(numbers[2].value, -1234.0);
        QCOMPARE(numbers[4].value, 2021.0);  // the '-' of a range is no minus
        QCOMPARE(numbers[6].value, -3.1);
        QCOMPARE(numbers[7].value, 3.0);
        QCOMPARE(numbers[10].value, 5e6);
    }

    void listMarkersOnlyAtLineStart() {
        const std::string text = "Medications:\n  1. Lisinopril 20 mg\n2) Metformin 500 mg\nTotal 3.";
        std::vector<double> values;
        for (const WrittenNumber& number : numbers_in(text)) values.push_back(number.value);
        QCOMPARE(values, (std::vector<double>{20, 500, 3}));
    }

    void numbersInUtf8() {
        const std::string text = "营业收入 1,234.5 百万元，同比增长 12.5%。Café 3 €";
        const std::vector<WrittenNumber> numbers = numbers_in(text);
        QCOMPARE(numbers.size(), std::size_t{3});
        QCOMPARE(text.substr(numbers[0].begin, numbers[0].end - numbers[0].begin), std::string("1,234.5"));
        QCOMPARE(text.substr(numbers[1].begin, numbers[1].end - numbers[1].begin), std::string("12.5%"));
        QCOMPARE(numbers[2].value, 3.0);
    }
};

QTEST_APPLESS_MAIN(ValueNormalizeTest)
#include "tst_value_normalize.moc"
