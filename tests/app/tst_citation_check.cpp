// The citation check of `folio ask` (app/citation_check.h): citation
// markers, figures, sentences, and the verdict on each sentence of an answer.

#include <QTest>

#include <string>
#include <vector>

#include "app/citation_check.h"

using namespace folio::app;

namespace {

NumberMention only_number(std::string_view text) {
    const std::vector<NumberMention> numbers = numbers_in_text(text);
    if (numbers.size() != 1) qFatal("expected one number in '%s', found %zu", std::string(text).c_str(), numbers.size());
    return numbers[0];
}

std::vector<std::string> sentences_of(std::string_view text) {
    std::vector<std::string> sentences;
    for (const SentenceSpan& span : split_sentences(text))
        sentences.emplace_back(text.substr(span.begin, span.end - span.begin));
    return sentences;
}

const std::vector<NumberedSource> kSources = {
    {1, "Net sales by category. iPhone net sales were $191,973 million in 2021, up 39% from 2020. "
        "Services net sales were $68,425 million."},
    {2, "As of September 25, 2021, the Company had approximately 154,000 full-time equivalent employees."},
};

}  // namespace

class CitationCheckTest : public QObject {
    Q_OBJECT

private slots:
    void citationMarkers_data() {
        QTest::addColumn<QString>("text");
        QTest::addColumn<std::vector<int>>("numbers");
        QTest::newRow("one") << "Sales rose [1]." << std::vector<int>{1};
        QTest::newRow("list") << "Sales rose [1, 3]." << std::vector<int>{1, 3};
        QTest::newRow("range") << "Sales rose [2-4]." << std::vector<int>{2, 3, 4};
        QTest::newRow("adjacent") << "Sales rose [1][2]." << std::vector<int>{1, 2};
        QTest::newRow("repeated once") << "A [2]. B [2] and [1]." << std::vector<int>{2, 1};
        QTest::newRow("not markers") << "An array [i], a [1 and a [3-1] range." << std::vector<int>{};
    }
    void citationMarkers() {
        QFETCH(QString, text);
        QFETCH(std::vector<int>, numbers);
        QCOMPARE(parse_citations(text.toStdString()), numbers);
    }

    void numbersSkipMarkersEnumeratorsAndCodes() {
        const std::vector<NumberMention> numbers =
            numbers_in_text("1. In Q4 2021 iPhone sales were $191,973 million [1], or 5.61 per share [2].");
        QCOMPARE(numbers.size(), std::size_t{3});
        QCOMPARE(numbers[0].value, 2021.0);
        QCOMPARE(numbers[1].value, 191973.0);
        QCOMPARE(numbers[1].scale, 1e6);
        QCOMPARE(numbers[2].value, 5.61);
        QCOMPARE(numbers[2].decimals, 2);
    }

    void numbersMatchAcrossFormsAndScales() {
        const NumberMention table = only_number("191,973");
        QVERIFY(numbers_match(only_number("191973"), table));
        QVERIFY(numbers_match(only_number("$191,973 million"), table));
        QVERIFY(numbers_match(only_number("$192.0 billion"), table));   // a table in millions, rounded
        QVERIFY(numbers_match(only_number("$191.97 billion"), table));
        QVERIFY(!numbers_match(only_number("$191.5 billion"), table));
        QVERIFY(!numbers_match(only_number("191,937"), table));
        QVERIFY(numbers_match(only_number("69.7%"), only_number("69.7")));
        QVERIFY(!numbers_match(only_number("70%"), only_number("69.7")));  // no rounding without a scale word
        QVERIFY(!numbers_match(only_number("5.67"), only_number("5.61")));
    }

    void sentencesKeepTheirMarkersAndDecimals() {
        const std::vector<std::string> sentences =
            sentences_of("EPS was 5.61 in the U.S. market [1]. Sales rose. [2] Did they?\nA list item [3]");
        QCOMPARE(sentences, (std::vector<std::string>{"EPS was 5.61 in the U.S. market [1].", "Sales rose. [2]",
                                                     "Did they?", "A list item [3]"}));
    }

    void foldedContainment() {
        QVERIFY(contains_folded("The  Company’s\nemployees", "the company's employees"));
        QVERIFY(!contains_folded("The Company's employees", "the company's staff"));
    }

    void citedSentenceWithItsFiguresIsSupported() {
        const auto checks = check_citations("iPhone net sales were $191,973 million in 2021 [1].", kSources);
        QCOMPARE(checks.size(), std::size_t{1});
        QCOMPARE(checks[0].verdict, SentenceVerdict::Supported);
        QCOMPARE(checks[0].citations, std::vector<int>{1});
        // The quote: the source sentence that shares the figure and words.
        const SentenceSpan quote = checks[0].quotes[0];
        QCOMPARE(kSources[0].text.substr(quote.begin, quote.end - quote.begin),
                 std::string("iPhone net sales were $191,973 million in 2021, up 39% from 2020."));
    }

    void figureMissingFromTheCitedSourceIsFlagged() {
        // 154,000 is in source 2, not in the cited source 1.
        const auto checks = check_citations("Apple had 154,000 employees [1].", kSources);
        QCOMPARE(checks[0].verdict, SentenceVerdict::Unsupported);
        QVERIFY2(checks[0].reason.find("154,000") != std::string::npos, checks[0].reason.c_str());
        QCOMPARE(check_citations("Apple had 154,000 employees [1, 2].", kSources)[0].verdict,
                 SentenceVerdict::Supported);
        QCOMPARE(check_citations("Apple had 155,000 employees [2].", kSources)[0].verdict, SentenceVerdict::Unsupported);
    }

    void quoteMustOccurInTheSource() {
        QCOMPARE(check_citations("The filing says \"approximately 154,000 full-time equivalent employees\" [2].",
                                 kSources)[0].verdict,
                 SentenceVerdict::Supported);
        const auto checks = check_citations("The filing says \"about 154,000 people\" [2].", kSources);
        QCOMPARE(checks[0].verdict, SentenceVerdict::Unsupported);
        QVERIFY2(checks[0].reason.find("quoted") != std::string::npos, checks[0].reason.c_str());
    }

    void citationOutsideTheSourcesIsFlagged() {
        const auto checks = check_citations("Services grew [3].", kSources);
        QCOMPARE(checks[0].verdict, SentenceVerdict::Unsupported);
        QVERIFY2(checks[0].reason.find("[3]") != std::string::npos, checks[0].reason.c_str());
        QVERIFY(checks[0].quotes[0].end == 0);
    }

    void uncitedSentenceIsAttributedOnlyWhenStronglySupported() {
        const auto strong = check_citations("Services net sales were $68,425 million.", kSources);
        QCOMPARE(strong[0].verdict, SentenceVerdict::Attributed);
        QCOMPARE(strong[0].citations, std::vector<int>{1});
        const auto wrong_figure = check_citations("Services net sales were $70,000 million.", kSources);
        QCOMPARE(wrong_figure[0].verdict, SentenceVerdict::Unsupported);
        QVERIFY(wrong_figure[0].citations.empty());
        const auto few_words = check_citations("Apple also sells cars, boats and rockets worldwide.", kSources);
        QCOMPARE(few_words[0].verdict, SentenceVerdict::Unsupported);
        QCOMPARE(check_citations("Sure!", kSources)[0].verdict, SentenceVerdict::NoClaim);
        QCOMPARE(check_citations("What were Services net sales in 2021?", kSources)[0].verdict,
                 SentenceVerdict::NoClaim);
    }
};

QTEST_GUILESS_MAIN(CitationCheckTest)
#include "tst_citation_check.moc"
