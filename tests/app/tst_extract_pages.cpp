// Which pages an extraction shows first (the finance pack's statements) and
// how it shows them (the chunker's layout, tables as rows).

#include <QTest>

#include <map>
#include <string>
#include <vector>

#include "app/extract_pages.h"
#include "app/packs.h"

using namespace folio;

namespace {

index::StoredChunk chunk(int ordinal, int first_page, int last_page, std::string heading_path, std::string text,
                         bool table = false) {
    index::StoredChunk stored;
    stored.chunk.ordinal = ordinal;
    stored.chunk.page_start = first_page;
    stored.chunk.page_end = last_page;
    stored.chunk.heading_path = std::move(heading_path);
    stored.chunk.text = std::move(text);
    stored.chunk.table = table;
    return stored;
}

// A filing in brief: cover, MD&A table, index, the three statements (the
// balance sheet over two pages), a note titled after the balance sheet.
const std::vector<std::string> kFiling = {
    "UNITED STATES SECURITIES AND EXCHANGE COMMISSION\nFORM 10-K\nACME CORP",
    "Consolidated Statements of Operations Data\n| 2023 | 2022\nNet sales | 5,209 | 4,900\n"
    "Operating income | 811 | 700\nNet income | 603 | 550\nDiluted | 2.40 | 2.20",
    "Index to Consolidated Financial Statements\nConsolidated Statements of Operations 4\n"
    "Consolidated Balance Sheets 5\nConsolidated Statements of Cash Flows 8",
    "ACME CORP\nCONSOLIDATED STATEMENTS OF OPERATIONS\n(In millions, except per share amounts)\n| 2023 | 2022\n"
    "Net sales | $5,210 | $4,900\nCost of sales | 3,100 | 2,900\nOperating income | 812 | 700\n"
    "Income before income taxes | 790 | 690\nNet income | $604 | $550\nEarnings per share:\nBasic | $2.45 | $2.22\n"
    "Diluted | $2.41 | $2.20",
    "CONSOLIDATED BALANCE SHEETS (In millions)\n| December 31, 2023 | December 31, 2022\nCash and cash equivalents | $900 | $800\n"
    "Total current assets | 3,000 | 2,800\nProperty, net | 4,000 | 3,900\nGoodwill | 2,870 | 2,800\n"
    "Total assets | $9,870 | $9,500",
    "Accounts payable | 1,000 | 900\nTotal current liabilities | 2,150 | 2,000\nTotal liabilities | 6,150 | 6,000\n"
    "Commitments and contingencies\nRetained earnings | 3,000 | 2,800\n"
    "Total stockholders\xE2\x80\x99 equity | 3,720 | 3,500",
    "Derivatives in the Consolidated Balance Sheets\n| Assets | Liabilities\nForeign exchange | 10 | 12\n"
    "Total assets | 10 | 12\nTotal liabilities | 11 | 13\nGoodwill hedges | 1 | 2 | 3 | 4 | 5 | 6 | 7 | 8 | 9",
    "Consolidated Statements of Cash Flows\nOperating activities:\nNet income | 604 | 550\n"
    "Depreciation | 300 | 280\nNet cash provided by operating activities | 1,015 | 950\nInvesting activities:\n"
    "Purchases of property and equipment | (388) | (350)\nFinancing activities:\nDividends | (200) | (180)\n"
    "Cash and cash equivalents, end of year | 900 | 800",
};

// A field's value as read, with its page ("Apple Inc. p2"), or "(none)".
std::string value_and_page(const std::map<std::string, app::LineItemValue>& values, const std::string& field) {
    const auto found = values.find(field);
    return found == values.end() ? std::string("(none)")
                                 : *found->second.value + " p" + std::to_string(found->second.page);
}

}  // namespace

class ExtractPagesTest : public QObject {
    Q_OBJECT

private slots:
    void finance_key_pages_are_the_statements() {
        const std::vector<app::KeyPage> key_pages = app::load_pack("finance").key_pages;
        QCOMPARE(key_pages.size(), std::size_t{3});
        // Not the MD&A's "... Data" table (2), the index (3) or the note
        // titled after the balance sheet (7); the balance sheet's second
        // page (6) comes with its first.
        const std::vector<app::FoundKeyPage> found = app::find_key_pages(key_pages, kFiling);
        QCOMPARE(found.size(), std::size_t{3});
        QCOMPARE(found[0].key->name, std::string("income statement"));
        QCOMPARE(found[0].pages, std::vector<int>{4});
        QCOMPARE(found[1].pages, (std::vector<int>{5, 6}));
        QCOMPARE(found[2].pages, std::vector<int>{8});
    }

    void pages_without_the_terms_are_not_key_pages() {
        const std::vector<app::KeyPage> key_pages = app::load_pack("finance").key_pages;
        const std::vector<std::string> letter = {"CONSOLIDATED BALANCE SHEETS\nWe will send them next week.",
                                                 "Net sales grew."};
        QVERIFY(app::find_key_pages(key_pages, letter).empty());
    }

    // A balance sheet continued under its title outweighs a parent-only
    // condensed one that fits on one page (PG&E's Schedule I).
    void a_statement_over_two_titled_pages_outweighs_a_condensed_copy() {
        const std::vector<app::KeyPage> key_pages = app::load_pack("finance").key_pages;
        const std::vector<std::string> filing = {
            "CONSOLIDATED BALANCE SHEETS (in millions)\n| 2015 | 2014\nCash and cash equivalents | $123 | $151\n"
            "Total current assets | 3,000 | 2,800\nProperty, net | 50,000 | 48,000\nTotal assets | $63,339 | $60,127",
            "CONSOLIDATED BALANCE SHEETS (continued)\n| 2015 | 2014\nAccounts payable | 1,000 | 900\n"
            "Total current liabilities | 5,000 | 4,000\nTotal liabilities | 46,511 | 44,127\n"
            "Commitments and contingencies\nTotal shareholders' equity | 16,828 | 16,000",
            "SCHEDULE I CONDENSED BALANCE SHEETS\n| 2015 | 2014\nCash and cash equivalents | $64 | $96\n"
            "Total current assets | 111 | 194\nTotal assets | $17,328 | $16,000\nAccounts payable | 10 | 9\n"
            "Total current liabilities | 300 | 250\nTotal liabilities | 752 | 252\n"
            "Total shareholders' equity | 16,576 | 15,748"};
        const std::vector<app::FoundKeyPage> found = app::find_key_pages(key_pages, filing);
        QVERIFY(!found.empty());
        QCOMPARE(found.front().key->name, std::string("balance sheet"));
        QCOMPARE(found.front().pages, (std::vector<int>{1, 2}));
        QCOMPARE(*app::read_line_items(found, filing).at("/total_assets").value, std::string("63,339"));
    }

    // Boston Properties prints diluted EPS as "Net income" under a heading
    // that names the company: the finance pack's "*" labels take it, and
    // not the basic figure above it.
    void a_star_in_a_label_stands_for_any_words() {
        const std::vector<app::KeyPage> key_pages = app::load_pack("finance").key_pages;
        const std::vector<std::string> filing = {
            "CONSOLIDATED STATEMENTS OF OPERATIONS\n| 2015 | 2014\nTotal revenue | 2,490,821 | 2,396,998\n"
            "Operating income | 849,365 | 801,822\nIncome before income taxes | 800,000 | 700,000\n"
            "Net income | 799,918 | 526,057\n"
            "Basic earnings per common share attributable to Boston Properties, Inc. common shareholders:\n"
            "Net income | $3.73 | $2.83\n"
            "Diluted earnings per common share attributable to Boston Properties, Inc. common shareholders:\n"
            "Income from continuing operations | $3.72 | $2.83\nNet income | $3.72 | $2.83"};
        const std::map<std::string, app::LineItemValue> items =
            app::read_line_items(app::find_key_pages(key_pages, filing), filing);
        QCOMPARE(*items.at("/diluted_eps").value, std::string("3.72"));
        QVERIFY(!items.count("/scale"));  // the page does not say
        QCOMPARE(*items.at("/net_income").value, std::string("799,918"));
    }

    // The registrant's name stands above its caption on a filing's cover;
    // a cover of two registrants ("Registrants") or a table row above is
    // left to the model.
    void captioned_fields_are_the_line_above_the_caption() {
        const std::vector<app::CaptionedField> fields = app::load_pack("finance").captioned_fields;
        QCOMPARE(fields.size(), std::size_t{1});
        const auto company = [&](std::vector<std::string> pages) {
            return value_and_page(app::read_captioned_fields(fields, pages), "/company");
        };
        QCOMPARE(company({"FORM 10-K\nCommission file number 1-15829\nFedEx Corporation \n"
                          "(Exact Name of Registrant as Specified in its Charter)\nDelaware"}),
                 std::string("FedEx Corporation p1"));
        QCOMPARE(company({"FORM 10-K", "Apple Inc.\n\n(Exact name of Registrant as specified in its charter)"}),
                 std::string("Apple Inc. p2"));
        QCOMPARE(company({"BOSTON PROPERTIES, INC. BOSTON PROPERTIES LIMITED PARTNERSHIP\n"
                          "(Exact name of Registrants as specified in its charter)"}),
                 std::string("(none)"));
        QCOMPARE(company({"1-12609 PG&E CORPORATION | California 94-3234914\n"
                          "Exact Name of Registrant as Specified in Its Charter"}),
                 std::string("(none)"));
        QCOMPARE(company({"Page one", "Page two", "Page three", "ACME Corp\n(Exact name of registrant)"}),
                 std::string("(none)"));
    }

    // A note writes its chief complaint under the heading, or after "CC:";
    // the medical pack reads it there.
    void heading_fields_are_the_line_below_the_heading() {
        const std::vector<app::CaptionedField> fields = app::load_pack("medical").captioned_fields;
        QCOMPARE(fields.size(), std::size_t{2});
        QVERIFY(fields[0].below && fields[1].below);
        const auto complaint = [&](std::vector<std::string> pages) {
            return value_and_page(app::read_captioned_fields(fields, pages), "/chief_complaint");
        };
        QCOMPARE(complaint({"Clinic Visit Note\nEncounter D2N008\n\nCHIEF COMPLAINT\nAbnormal labs.\n\n"
                            "HISTORY OF PRESENT ILLNESS\nMs. Diaz is a 49-year-old female."}),
                 std::string("Abnormal labs p1"));
        QCOMPARE(complaint({"Visit", "CC: Back pain.\nHPI: Two weeks of pain."}), std::string("Back pain p2"));
        QCOMPARE(complaint({"Chief complaint:\n\n  Left wrist and hand pain\n"}), std::string("Left wrist and hand pain p1"));
        QCOMPARE(complaint({"CHIEF COMPLAINT AND HISTORY\nBack pain."}), std::string("(none)"));
        QCOMPARE(complaint({"CHIEF COMPLAINT\nLabs | 8.2 | g/dL"}), std::string("(none)"));
        QCOMPARE(complaint({"The chief complaint was back pain."}), std::string("(none)"));
    }

    // A filing's cover names its form before anything else that would name
    // another: the finance pack reads the form and the period from it.
    void phrase_fields_take_the_value_named_first() {
        const std::vector<app::PhraseField> fields = app::load_pack("finance").phrase_fields;
        const auto named = [&](std::vector<std::string> pages) {
            const std::map<std::string, app::LineItemValue> values = app::read_phrase_fields(fields, pages);
            std::string text;
            for (const char* field : {"/form", "/period_type"}) text += value_and_page(values, field) + " ";
            return text;
        };
        QCOMPARE(named({"UNITED STATES SECURITIES AND EXCHANGE COMMISSION\nFORM 10-Q\n"
                        "\u2612 QUARTERLY REPORT PURSUANT TO SECTION 13 OR 15(d)\n"
                        "\u2610 TRANSITION REPORT PURSUANT TO SECTION 13 OR 15(d)"}),
                 std::string("10-Q p1 quarterly p1 "));
        // A 10-K's cover asks about the forms it has filed; its own comes first.
        QCOMPARE(named({"Form 10-K\nANNUAL REPORT PURSUANT TO SECTION 13\n"
                        "Indicate by check mark whether the registrant has filed all reports (Form 10-Q, Form 8-K)"}),
                 std::string("10-K p1 annual p1 "));
        QCOMPARE(named({"Table of contents", "FORM 10-K"}), std::string("10-K p2 annual p2 "));
        // "10-Q" alone is not "Form 10-Q"; nothing past the third page is read.
        QCOMPARE(named({"Our 10-Q", "Page two", "Page three", "FORM 10-Q"}), std::string("(none) (none) "));
    }

    void finance_line_items_are_read_from_the_statements() {
        const std::vector<app::KeyPage> key_pages = app::load_pack("finance").key_pages;
        const std::map<std::string, app::LineItemValue> items =
            app::read_line_items(app::find_key_pages(key_pages, kFiling), kFiling);
        const auto value_of = [&](const std::string& field) {
            const auto item = items.find(field);
            return item == items.end()  ? std::string("(no key page)")
                   : !item->second.value ? "(no row) p" + std::to_string(item->second.page)
                                         : *item->second.value + " p" + std::to_string(item->second.page);
        };
        // Not the MD&A table's figures (page 2), nor the derivatives note's
        // "Total assets" (page 7); "Diluted" under "Earnings per share:".
        QCOMPARE(value_of("/revenue"), std::string("5,210 p4"));
        QCOMPARE(value_of("/operating_income"), std::string("812 p4"));
        QCOMPARE(value_of("/net_income"), std::string("604 p4"));
        QCOMPARE(value_of("/diluted_eps"), std::string("2.41 p4"));
        QCOMPARE(value_of("/total_assets"), std::string("9,870 p5"));
        QCOMPARE(value_of("/total_liabilities"), std::string("6,150 p6"));
        QCOMPARE(value_of("/total_equity"), std::string("3,720 p6"));
        QCOMPARE(value_of("/operating_cash_flow"), std::string("1,015 p8"));
        QCOMPARE(value_of("/capital_expenditure"), std::string("(388) p8"));
        QCOMPARE(items.at("/total_equity").label, std::string("Total stockholders\u2019 equity"));
        QCOMPARE(value_of("/period_end"), std::string("2023-12-31 p5"));
        QCOMPARE(value_of("/scale"), std::string("millions p4"));
    }

    // The column is the latest period's wherever the header puts it, a
    // quarter's three months before its six; a dash there is no value.
    void line_items_take_the_latest_periods_column() {
        app::KeyPage income{"income statement", {"statements of operations"}, {"net sales", "net income", "diluted"},
                            {{"/revenue", {"total net revenues", "net sales"}},
                             {"/net_income", {"net income"}},
                             {"/diluted_eps", {"earnings per common share diluted"}},
                             {"/operating_income", {"operating income"}}},
                            "/period_end"};
        const std::vector<std::string> pages = {
            "STATEMENTS OF OPERATIONS\nFor the Three Months Ended June 30,\n| 2022 | 2023 | 2022 | 2023\n"
            "Net revenues\nProduct sales | $304 | $520 | $690 | $1,215\nTotal net revenues | 1,644 | 2,207 | 3,412 | 4,590\n"
            "Operating income | 338 | \u2014 | 817 | 1,383\nNet income | $280 | $(587) | $675 | $1,328\n"
            "Earnings per common share\nBasic | $0.36 | $0.75 | $0.86 | $1.69\nDiluted | $0.36 | $0.74 | $0.86 | $1.67"};
        std::vector<app::FoundKeyPage> found = {{&income, {1}}};
        const std::map<std::string, app::LineItemValue> items = app::read_line_items(found, pages);
        QCOMPARE(items.at("/revenue").value, std::optional<std::string>("2,207"));
        QCOMPARE(items.at("/net_income").value, std::optional<std::string>("(587)"));
        QCOMPARE(items.at("/diluted_eps").value, std::optional<std::string>("0.74"));
        QVERIFY(!items.at("/operating_income").value);
        // The header names years only: no day for the period.
        QVERIFY(!items.count("/period_end"));
        // A balance sheet whose table lost its header says the day above it.
        app::KeyPage balance{"balance sheet", {"balance sheets"}, {"total assets"}, {}, "/period_end"};
        const std::vector<std::string> quarter = {
            "CONDENSED CONSOLIDATED BALANCE SHEETS\n(Unaudited)\nAt June 30, 2023\nAssets\n"
            "Cash and cash equivalents | $10,770 | $7,060\nAt December 31, 2022\nTotal assets | 28,518 | 27,383"};
        found = {{&balance, {1}}};
        QCOMPARE(*app::read_line_items(found, quarter).at("/period_end").value, std::string("2023-06-30"));
    }

    void laid_out_text_shows_tables_as_rows_and_each_chunk_once() {
        const std::vector<app::PageText> pages = {
            {1, "Intro reading order"}, {2, "Revenue 2023 2022 10 9"}, {3, "A page the chunker left empty"}};
        std::vector<index::StoredChunk> chunks = {
            chunk(0, 1, 2, "Part I > Intro", "Opening words here. The overlap sentence repeats."),
            chunk(1, 2, 2, "Part I > Intro", "The overlap sentence repeats. Then something new."),
            chunk(2, 2, 2, "Part I > STATEMENTS", "| 2023 | 2022\nRevenue | 10 | 9", true),
        };
        const app::LaidOutPages laid_out(chunks, pages);
        QCOMPARE(laid_out.text({1, 2, 3}),
                 std::string("[page 1]\nIntro\nOpening words here. The overlap sentence repeats.\n\n"
                             "[page 2]\nThen something new.\n\nSTATEMENTS\n| 2023 | 2022\nRevenue | 10 | 9\n\n"
                             "[page 3]\nA page the chunker left empty\n"));
        // Page 2 alone shows the chunk that runs onto it, whole.
        QCOMPARE(laid_out.text({2}, false),
                 std::string("Intro\nOpening words here. The overlap sentence repeats.\n\n"
                             "Then something new.\n\nSTATEMENTS\n| 2023 | 2022\nRevenue | 10 | 9\n\n"));
    }
};

QTEST_GUILESS_MAIN(ExtractPagesTest)
#include "tst_extract_pages.moc"
