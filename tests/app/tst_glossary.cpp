// A pack's glossary (app/glossary.h): parsing the TSV and its errors,
// lookup by exact and folded case, query expansion by whole abbreviations,
// and the two shipped glossaries, which must load through the pack loader
// and hold as many entries as issue 7 asks (finance 300, medical 500).

#include <QTest>

#include <set>
#include <string>
#include <vector>

#include "app/glossary.h"
#include "app/packs.h"

using namespace folio::app;

namespace {

const char* const kClinical =
    "# clinical abbreviations\n"
    "BP\tblood pressure\n"
    "CHF\tcongestive heart failure\n"
    "CP\tchest pain | cerebral palsy\n"
    "SOB\tshortness of breath\n"
    "mg\tmilligram\n"
    "Mg\tmagnesium\n"
    "ALL\tacute lymphoblastic leukemia\n"
    "s/p\tstatus post\n"
    "q.d.\tonce daily\n"
    "SpO2\tperipheral oxygen saturation\n"
    "\n"
    "goodwill\texcess of purchase price over the fair value of net assets acquired\n"
    "MD&A\tManagement's Discussion and Analysis\n"
    "10-K\tannual report filed with the SEC\n";

QString error_of(const std::string& tsv) {
    try {
        Glossary::parse(tsv);
    } catch (const GlossaryError& e) {
        return e.what();
    }
    return {};
}

}  // namespace

class GlossaryTest : public QObject {
    Q_OBJECT

private slots:
    void parsesEntriesAndMeanings() {
        const Glossary glossary = Glossary::parse(kClinical);
        QCOMPARE(glossary.size(), std::size_t(13));
        QCOMPARE(glossary.entries().front().term, std::string("BP"));
        const GlossaryEntry* cp = glossary.lookup("CP");
        QVERIFY(cp);
        QCOMPARE(cp->expansion, std::string("chest pain | cerebral palsy"));
        QCOMPARE(cp->meanings, (std::vector<std::string>{"chest pain", "cerebral palsy"}));
        // CRLF files read the same.
        QCOMPARE(Glossary::parse("HR\theart rate\r\n").lookup("HR")->expansion, std::string("heart rate"));
    }

    void lookupIsExactThenCaseInsensitive() {
        const Glossary glossary = Glossary::parse(kClinical);
        QCOMPARE(glossary.lookup("mg")->expansion, std::string("milligram"));
        QCOMPARE(glossary.lookup("Mg")->expansion, std::string("magnesium"));
        QCOMPARE(glossary.lookup("MG")->expansion, std::string("milligram"));  // the first of the two in file order
        QCOMPARE(glossary.lookup("chf")->term, std::string("CHF"));
        QCOMPARE(glossary.lookup("spo2")->term, std::string("SpO2"));
        QVERIFY(!glossary.lookup("HTN"));
        QVERIFY(!glossary.lookup(""));
    }

    void refusesBrokenFiles_data() {
        QTest::addColumn<QString>("tsv");
        QTest::addColumn<QString>("error");
        QTest::newRow("no tab") << "BP\tblood pressure\nHR heart rate\n" << "glossary line 2: no tab between term and expansion";
        QTest::newRow("empty expansion") << "BP\t  \n" << "glossary line 1: empty term or expansion";
        QTest::newRow("empty term") << "\tblood pressure\n" << "glossary line 1: empty term or expansion";
        QTest::newRow("three columns") << "BP\tblood pressure\tvital\n" << "glossary line 1: more than two columns";
        QTest::newRow("empty meaning") << "CP\tchest pain |  | cerebral palsy\n"
                                       << "glossary line 1: an empty meaning between \" | \"";
        QTest::newRow("duplicate") << "# c\nBP\tblood pressure\n\nBP\tbullous pemphigoid\n"
                                   << "glossary line 4: \"BP\" is already in the glossary";
    }

    void refusesBrokenFiles() {
        QFETCH(QString, tsv);
        QFETCH(QString, error);
        QCOMPARE(error_of(tsv.toStdString()), error);
    }

    void expandsAbbreviationsWrittenAsWholeWords() {
        const Glossary glossary = Glossary::parse(kClinical);
        QCOMPARE(glossary.expand_query("Is the CHF worse, with SOB?"),
                 (std::vector<std::string>{"congestive heart failure", "shortness of breath"}));
        QCOMPARE(glossary.expand_query("CP since Monday"), (std::vector<std::string>{"chest pain", "cerebral palsy"}));
        // Inside a longer word is no abbreviation.
        QVERIFY(glossary.expand_query("BPH and CHFs").empty());
        // Punctuation that belongs to the term stays; outer punctuation goes.
        QCOMPARE(glossary.expand_query("(MD&A) of the 10-K."),
                 (std::vector<std::string>{"Management's Discussion and Analysis", "annual report filed with the SEC"}));
        QCOMPARE(glossary.expand_query("patient s/p fall, aspirin q.d."),
                 (std::vector<std::string>{"status post", "once daily"}));
    }

    void expansionReadsCaseTheWayWritersDo() {
        const Glossary glossary = Glossary::parse(kClinical);
        // Another case counts unless the word is plain lowercase, which is English.
        QCOMPARE(glossary.expand_query("spo2 and Chf"),
                 (std::vector<std::string>{"peripheral oxygen saturation", "congestive heart failure"}));
        QVERIFY(glossary.expand_query("did all of them improve").empty());
        QCOMPARE(glossary.expand_query("ALL relapse"), (std::vector<std::string>{"acute lymphoblastic leukemia"}));
        // A plain word of the glossary carries a definition, not a synonym.
        QVERIFY(glossary.expand_query("Goodwill impairment").empty());
    }

    void expansionLeavesOutWhatTheQueryHoldsAndRepeats() {
        const Glossary glossary = Glossary::parse(kClinical);
        QCOMPARE(glossary.expand_query("BP and blood pressure trend"), std::vector<std::string>{});
        QCOMPARE(glossary.expand_query("BP, then BP again, and CHF"),
                 (std::vector<std::string>{"blood pressure", "congestive heart failure"}));
        QVERIFY(Glossary().expand_query("BP").empty());
    }

    void shippedGlossariesLoadWithThePacks_data() {
        QTest::addColumn<QString>("pack");
        QTest::addColumn<int>("at_least");
        QTest::addColumn<QStringList>("terms");
        QTest::newRow("finance") << "finance" << 300
                                 << QStringList{"EBITDA", "MD&A", "10-K", "GAAP", "FCF", "EPS", "ROE", "CapEx", "AOCI"};
        QTest::newRow("medical") << "medical" << 500
                                 << QStringList{"BID", "TID", "PRN", "HTN", "DM2", "CHF", "COPD", "SOB", "CP", "NKDA", "BP",
                                                "HR", "RR", "SpO2", "A1c"};
    }

    void shippedGlossariesLoadWithThePacks() {
        QFETCH(QString, pack);
        QFETCH(int, at_least);
        QFETCH(QStringList, terms);
        const PackContent content = load_pack(pack.toStdString());
        QVERIFY2(content.glossary.size() >= static_cast<std::size_t>(at_least),
                 qPrintable(QString::number(content.glossary.size())));
        for (const QString& term : terms) {
            const GlossaryEntry* entry = content.glossary.lookup(term.toStdString());
            QVERIFY2(entry && entry->term == term.toStdString(), qPrintable(term));
        }
        // No two terms differ only in case unless they mean different things ("mg", "Mg").
        std::set<std::string> expansions;
        for (const GlossaryEntry& entry : content.glossary.entries()) {
            std::string key = entry.term;
            for (char& c : key) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
            QVERIFY2(expansions.insert(key + "\t" + entry.expansion).second, entry.term.c_str());
        }
    }
};

QTEST_GUILESS_MAIN(GlossaryTest)
#include "tst_glossary.moc"
