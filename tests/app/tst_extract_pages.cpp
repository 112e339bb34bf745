// Which pages an extraction shows first (the finance pack's statements) and
// how it shows them (the chunker's layout, tables as rows).

#include <QTest>

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
    "Consolidated Statements of Operations Data\n| 2023 | 2022\nNet sales | 5,210 | 4,900\n"
    "Operating income | 812 | 700\nNet income | 604 | 550\nDiluted | 2.41 | 2.20",
    "Index to Consolidated Financial Statements\nConsolidated Statements of Operations 4\n"
    "Consolidated Balance Sheets 5\nConsolidated Statements of Cash Flows 8",
    "ACME CORP\nCONSOLIDATED STATEMENTS OF OPERATIONS\n(In millions, except per share amounts)\n| 2023 | 2022\n"
    "Net sales | $5,210 | $4,900\nCost of sales | 3,100 | 2,900\nOperating income | 812 | 700\n"
    "Income before income taxes | 790 | 690\nNet income | $604 | $550\nEarnings per share:\nBasic | $2.45 | $2.22\n"
    "Diluted | $2.41 | $2.20",
    "CONSOLIDATED BALANCE SHEETS (In millions)\n| 2023 | 2022\nCash and cash equivalents | $900 | $800\n"
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
        QCOMPARE(app::find_key_pages(key_pages, kFiling), (std::vector<int>{4, 5, 6, 8}));
    }

    void pages_without_the_terms_are_not_key_pages() {
        const std::vector<app::KeyPage> key_pages = app::load_pack("finance").key_pages;
        const std::vector<std::string> letter = {"CONSOLIDATED BALANCE SHEETS\nWe will send them next week.",
                                                 "Net sales grew."};
        QVERIFY(app::find_key_pages(key_pages, letter).empty());
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
