#!/usr/bin/env python3
"""Writes tests/data/ask/finance_questions.jsonl: questions over the nine SEC
filings of ../shared/corpus/finance whose answer is a specific value, with the
pages that print it (issue 9: "Ask: on >= 50 questions over the filings with
known answers and pages, report citation precision (cited page contains the
answer) and answer accuracy").

Made from tests/data/retrieval/finance.jsonl: the labelled queries whose answer
is one value (a number, a percentage, a date or a name) were kept, re-asked as
a question where the query was a keyword phrase, and given
    answer         the value as the filing prints it ("191,973")
    answer_forms   spellings a one-sentence answer may use ("191,973",
                   "$191,973 million", "$192.0 billion", ...); an answer is
                   right when it contains one of them (compare lower-cased,
                   with whitespace runs collapsed)
    answer_all     (some questions) names that must all appear instead, e.g.
                   the three segments "Activision", "Blizzard", "King"
    cite_forms     strings of which at least one is on every page in "pages"
                   (the answer as printed on those pages, plus the page's own
                   spelling of it); a citation is precise when its page is in
                   "pages"
    pages          1-based pages of "doc" whose text (pdftotext -f P -l P)
                   holds the answer; computed by this script: the retrieval
                   set's pages, kept only where a cite form is found, plus any
                   page listed in EXTRA_PAGES (checked the same way)
    source_id      the retrieval query it came from (or null)
Every page is checked here; a question whose answer is on none of its pages
fails the run.

Usage: python3 tools/make_ask_questions.py [--finance DIR] [--out FILE] [--check]
Needs pdftotext (poppler-utils). Stdlib only.
"""

import argparse
import json
import re
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
DEFAULT_FINANCE = REPO.parent / "shared/corpus/finance"
DEFAULT_OUT = REPO / "tests/data/ask/finance_questions.jsonl"
RETRIEVAL = REPO / "tests/data/retrieval/finance.jsonl"


def millions(printed, billions_decimals=(1, 2)):
    """Forms of a figure printed in $ millions ("191,973")."""
    v = int(printed.replace(",", ""))
    forms = [printed, f"${printed} million", f"{printed} million"]
    if v >= 1000:
        b = v / 1000
        for d in billions_decimals:
            forms += [f"${b:.{d}f} billion", f"{b:.{d}f} billion"]
        if abs(b - round(b)) < 0.05:
            forms += [f"${round(b)} billion"]
    return forms


def money(printed):
    """A dollar amount as printed ("$0.99", "$1.5 billion")."""
    bare = printed.lstrip("$")
    return [printed, bare] if printed.startswith("$") else [printed]


def pct(printed):
    bare = printed.rstrip("%")
    return [printed, f"{bare} %", f"{bare} percent", f"{bare} per cent"]


# (source_id or new id, doc, question, answer, answer_forms, extra fields)
# doc short names map to the files below.
DOCS = {
    "apple": "APPLE_2021_10K.pdf", "atvi": "ACTIVSIONBLIZZARD_2023Q2_10Q.pdf",
    "bxp": "BOSTONPROPERTIES_2015_10K.pdf", "ebay": "EBAY_2015_10K.pdf",
    "fedex": "FEDEX_2023_10K.pdf", "intel": "INTEL_2020_10K.pdf",
    "mcd": "MCDONALDS_2022_10K.pdf", "oracle": "ORACLE_2017_10K.pdf", "pg": "PG_E_2015_10K.pdf",
}

Q = [
    # Apple 2021 10-K
    ("fin-apple-01", "How much revenue did iPhone generate in fiscal 2021?", "191,973", millions("191,973"), {}),
    ("fin-apple-02", "What were Apple's Greater China segment net sales in 2021?", "68,366", millions("68,366"), {}),
    ("fin-apple-03", "What was Apple's Services gross margin percentage in 2021?", "69.7%", pct("69.7%"), {}),
    ("fin-apple-04", "What were Apple's diluted earnings per share for 2021?", "5.61", money("$5.61"), {}),
    ("fin-apple-05", "What was Apple's headcount at the end of fiscal 2021?", "154,000", ["154,000"], {}),
    ("fin-apple-08", "What share of Apple's total deferred revenue is expected to be realized in less than a year?", "64%", pct("64%"), {}),
    ("fin-apple-09", "What valuation allowance did Apple record against its deferred tax assets in 2021?", "4,903", millions("4,903"), {}),
    ("fin-apple-10", "How many shares of its common stock did Apple repurchase during 2021?", "656 million", ["656 million", "656,000,000"], {}),
    ("fin-apple-10b", "How much did Apple spend repurchasing its common stock in 2021?", "$85.5 billion", money("$85.5 billion") + ["85,500", "85.5 billion"], {"source_id": "fin-apple-10"}),
    ("fin-apple-11", "What were Apple's ending accrued warranty and related costs in 2021?", "3,364", millions("3,364"), {}),
    ("fin-apple-13", "Apple 2021财年 iPhone 净销售额是多少?", "191,973", millions("191,973") + ["1919.73亿", "1,919.73亿"], {"lang": "zh"}),
    # Activision Blizzard Q2 2023 10-Q
    ("fin-atvi-01", "What is the maximum regular quarterly cash dividend Activision Blizzard may pay under the Letter Agreement with Microsoft?", "$0.99", money("$0.99"), {}),
    ("fin-atvi-02", "What are Activision Blizzard's three reportable segments?", "Activision, Blizzard, and King",
     ["Activision, Blizzard, and King", "Activision, Blizzard and King"], {"answer_all": ["Activision", "Blizzard", "King"]}),
    ("fin-atvi-03", "What share of Activision Blizzard's consolidated net revenues came from the U.S. in the three months ended June 30, 2023?", "50%", pct("50%"), {}),
    ("fin-atvi-04", "What were Activision Blizzard's diluted earnings per common share for the three months ended June 30, 2023?", "0.74", money("$0.74"), {}),
    ("fin-atvi-07", "How much cash and short-term investments did Activision Blizzard have to fund operations?", "$13.2 billion", money("$13.2 billion"), {}),
    ("fin-atvi-08", "What cash dividend per common share did Activision Blizzard declare on July 18, 2023?", "$0.99", money("$0.99"), {}),
    ("fin-atvi-09", "What total capital expenditures does Activision Blizzard expect for 2023?", "$100 million", money("$100 million"), {}),
    ("fin-atvi-12", "动视暴雪第二季度的稀释每股收益 diluted EPS 是多少?", "0.74", money("$0.74"), {"lang": "zh"}),
    # Boston Properties 2015 10-K
    ("fin-bxp-01", "How many commercial real estate properties did Boston Properties own at year end 2015?", "168", ["168"], {}),
    ("fin-bxp-02", "In which four markets are Boston Properties' properties concentrated?", "Boston, New York, San Francisco and Washington, DC",
     ["Boston, New York, San Francisco and Washington, DC", "Boston, New York, San Francisco and Washington"], {"answer_all": ["Boston", "New York", "San Francisco", "Washington"]}),
    ("fin-bxp-04", "How much terrorism insurance coverage does Boston Properties carry for 601 Lexington Avenue?", "$250 million", money("$250 million"), {}),
    ("fin-bxp-05", "How many total square feet of space did Boston Properties lease during the twelve months ended December 31, 2015?", "6,289,636", ["6,289,636", "6.3 million", "6.29 million"], {}),
    ("fin-bxp-06", "How much outstanding consolidated indebtedness did Boston Properties have at December 31, 2015?", "$9.0 billion", money("$9.0 billion") + ["$9 billion"], {}),
    ("fin-bxp-07", "Above what limit are Boston Properties' cash balances not insured by the FDIC?", "$250,000", money("$250,000"), {}),
    ("fin-bxp-08", "What future contractual minimum lease payments does Boston Properties expect to receive in 2016?", "1,854,538", ["1,854,538", "$1.85 billion", "$1.9 billion", "1.85 billion"], {}),
    ("fin-bxp-10", "波士顿地产2015年底在哪四个市场拥有物业? Boston Properties four markets", "Boston, New York, San Francisco and Washington, DC",
     ["Boston, New York, San Francisco and Washington, DC", "Boston, New York, San Francisco and Washington"], {"lang": "zh", "answer_all": ["Boston", "New York", "San Francisco", "Washington"]}),
    # eBay 2015 10-K
    ("fin-ebay-01", "How many people did eBay employ at the end of 2015?", "11,600", ["11,600"], {}),
    ("fin-ebay-03", "In which city is eBay headquartered?", "San Jose", ["San Jose"], {}),
    ("fin-ebay-05", "By how much did Marketplace net transaction revenues decrease in 2015?", "$248 million", money("$248 million"), {}),
    ("fin-ebay-06", "By how much did eBay's product development expenses decrease in 2015?", "$60 million", money("$60 million"), {}),
    ("fin-ebay-07", "How much of the cash held by eBay's foreign subsidiaries was available for use in the U.S. without additional tax?", "$4.8 billion", money("$4.8 billion"), {}),
    ("fin-ebay-09", "How large was the additional stock repurchase program eBay's Board authorized in 2015?", "$2 billion", money("$2 billion") + ["$2.0 billion"], {}),
    ("fin-ebay-10", "What was eBay's international pretax income in 2015?", "2,010", millions("2,010"), {}),
    # FedEx 2023 10-K
    ("fin-fedex-02", "How often is the FedEx Ground fuel surcharge adjusted?", "weekly", ["weekly", "every week", "each week"], {}),
    ("fin-fedex-03", "How much did FedEx spend on advertising and promotion in 2023?", "$435 million", money("$435 million"), {}),
    ("fin-fedex-04", "What was FedEx Express segment total revenue in fiscal 2023?", "42,743", millions("42,743"), {}),
    ("fin-fedex-05", "What was FedEx's consolidated revenue for fiscal 2023?", "90,155", millions("90,155"), {}),
    ("fin-fedex-07", "What mark-to-market gain on retirement plans did FedEx record in 2023?", "$650 million", money("$650 million"), {}),
    ("fin-fedex-08", "How many Boeing 777 freighters are in the FedEx Express fleet?", "53", ["53"], {}),
    ("fin-fedex-09", "How much did FedEx repurchase under the accelerated share repurchase agreement entered into in October 2022?", "$1.5 billion", money("$1.5 billion"), {}),
    ("fin-fedex-10", "What share of total eligible health and disability costs does FedEx cover for U.S. employees?", "70%", pct("70%"), {}),
    ("fin-fedex-12", "联邦快递 FedEx 2023财年 广告和促销费用 advertising 是多少?", "$435 million", money("$435 million") + ["4.35亿"], {"lang": "zh"}),
    # Intel 2020 10-K
    ("fin-intel-02", "What was Intel's total net revenue in 2020?", "77,867", millions("77,867"), {}),
    ("fin-intel-03", "What was Intel's Data Center Group operating income in 2020?", "10,571", millions("10,571"), {}),
    ("fin-intel-05", "How much common stock did Intel buy back in 2020?", "$14.2 billion", money("$14.2 billion"), {}),
    ("fin-intel-07", "To which company is Intel selling its NAND memory business?", "SK hynix", ["SK hynix", "SK Hynix"], {}),
    ("fin-intel-08", "What are Intel's long-term debt obligations in the contractual obligations table?", "55,543", millions("55,543"), {}),
    ("fin-intel-09", "How much did Intel pay to acquire Moovit?", "$915 million", money("$915 million"), {}),
    ("fin-intel-11", "What was Intel's U.S. income before taxes in 2020?", "15,452", millions("15,452"), {}),
    # McDonald's 2022 10-K
    ("fin-mcd-01", "What percentage of McDonald's restaurants were franchised at year-end 2022?", "95%", pct("95%"), {}),
    ("fin-mcd-02", "What were McDonald's total revenues in 2022?", "23,183", millions("23,183"), {}),
    ("fin-mcd-03", "What were McDonald's diluted earnings per share in 2022?", "$8.33", money("$8.33"), {}),
    ("fin-mcd-06", "How much were McDonald's capital expenditures in 2022?", "$1.9 billion", money("$1.9 billion"), {}),
    ("fin-mcd-07", "What effective income tax rate does McDonald's expect for 2023?", "20% to 22%", ["20% to 22%", "20-22%", "20% and 22%", "20 to 22 percent"], {}),
    ("fin-mcd-10", "What was McDonald's operating margin as a percent of revenues in 2022?", "40.4%", pct("40.4%"), {}),
    ("fin-mcd-11", "By how much did McDonald's U.S. comparable sales increase in 2022?", "5.9%", pct("5.9%"), {}),
    ("fin-mcd-12", "麦当劳 McDonald's 加盟餐厅占比 franchised 是多少?", "95%", pct("95%"), {"lang": "zh"}),
    # Oracle 2017 10-K
    ("fin-oracle-01", "How many full-time employees did Oracle have in 2017?", "138,000", ["138,000"], {}),
    ("fin-oracle-03", "When did Oracle acquire NetSuite?", "November 7, 2016", ["November 7, 2016", "Nov. 7, 2016", "7 November 2016"], {}),
    ("fin-oracle-04", "What were Oracle's total revenues in the Americas in fiscal 2017?", "21,038", millions("21,038"), {}),
    ("fin-oracle-05", "What were Oracle's total cloud and on-premise software revenues in fiscal 2017?", "30,389", millions("30,389"), {}),
    ("fin-oracle-08", "How much did Oracle pay in dividends to stockholders in fiscal 2017?", "2,631", millions("2,631"), {}),
    ("fin-oracle-10", "What share of Oracle's constant-currency revenue growth did the Americas region contribute?", "54%", pct("54%"), {}),
    ("fin-oracle-11", "甲骨文 Oracle 在什么时候收购了 NetSuite?", "November 7, 2016", ["November 7, 2016", "2016年11月7日"], {"lang": "zh"}),
    # PG&E 2015 10-K
    ("fin-pg-01", "What total penalties did the CPUC impose on PG&E's utility after the San Bruno pipeline explosion?", "$1.6 billion", money("$1.6 billion"), {}),
    ("fin-pg-02", "How many regular employees did PG&E have?", "23,000", ["23,000"], {}),
    ("fin-pg-04", "What is the capacity of the Diablo Canyon nuclear units?", "2,240", ["2,240"], {}),
    ("fin-pg-05", "What authorized return on equity does PG&E's utility have through 2017?", "10.40%", pct("10.40%") + ["10.4%"], {}),
    ("fin-pg-06", "What were PG&E's total electric operating revenues in 2015?", "13,657", millions("13,657"), {}),
    ("fin-pg-07", "What is the maximum penalty the CPUC can impose per day, per violation?", "$50,000", money("$50,000"), {}),
    ("fin-pg-09", "How many automatic and remote control shut-off valves has PG&E installed on its gas lines?", "235", ["235"], {}),
    ("fin-pg-12", "太平洋燃气电力 PG&E San Bruno 事故罚款是多少?", "$1.6 billion", money("$1.6 billion") + ["16亿"], {"lang": "zh"}),
]

# Pages added to (or instead of) the retrieval set's pages; each is checked.
EXTRA_PAGES = {}


def norm(s):
    s = s.replace("\u2019", "'").replace("\u00a0", " ")
    return re.sub(r"\s+", " ", s).lower()


def page_text(pdf, page, cache):
    key = (pdf, page)
    if key not in cache:
        a = subprocess.run(["pdftotext", "-f", str(page), "-l", str(page), str(pdf), "-"],
                           capture_output=True, text=True, check=True).stdout
        b = subprocess.run(["pdftotext", "-layout", "-f", str(page), "-l", str(page), str(pdf), "-"],
                           capture_output=True, text=True, check=True).stdout
        cache[key] = norm(a) + "\n" + norm(b)
    return cache[key]


def cite_forms(answer, forms, extra):
    """Strings that show the answer on a page: the printed answer and those
    forms that are substrings a page can hold (English ones)."""
    out = [answer] + [f for f in forms if re.fullmatch(r"[\x20-\x7e]+", f)]
    if extra.get("answer_all"):
        out = [extra["answer_all"][0] + "|" + "|".join(extra["answer_all"][1:])]
    seen, res = set(), []
    for f in out:
        if f not in seen:
            seen.add(f)
            res.append(f)
    return res


def on_page(text, forms):
    for f in forms:
        if "|" in f:  # all of these names
            if all(norm(p) in text for p in f.split("|")):
                return True
        elif re.search(r"(?<![\w.])" + re.escape(norm(f)).replace(r"\$", r"\$?") + r"(?![\w])", text) \
                or re.search(r"(?<![\w.])" + re.escape(norm(f.lstrip("$"))) + r"(?![\w])", text):
            return True
    return False


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--finance", default=str(DEFAULT_FINANCE))
    ap.add_argument("--out", default=str(DEFAULT_OUT))
    ap.add_argument("--check", action="store_true", help="verify only; print per-page findings")
    args = ap.parse_args()
    src = {}
    with open(RETRIEVAL, encoding="utf-8") as f:
        for line in f:
            if line.strip():
                q = json.loads(line)
                src[q["id"]] = q
    cache, out, bad = {}, [], []
    for qid, question, answer, forms, extra in Q:
        sid = extra.get("source_id", qid if qid in src else None)
        base = src[sid]
        doc = base["doc"]
        pdf = Path(args.finance) / doc
        cforms = cite_forms(answer, forms, extra)
        cand = list(dict.fromkeys(base["pages"] + EXTRA_PAGES.get(qid, [])))
        pages = [p for p in cand if on_page(page_text(pdf, p, cache), cforms)]
        dropped = [p for p in cand if p not in pages]
        if args.check or dropped:
            print(f"{qid}: pages {pages} dropped {dropped} ({answer})")
        if not pages:
            bad.append(qid)
            continue
        rec = {"id": qid, "domain": "finance", "doc": doc, "question": question, "answer": answer,
               "answer_forms": list(dict.fromkeys(forms)), "pages": pages, "cite_forms": cforms,
               "type": base["type"], "lang": extra.get("lang", base.get("lang", "en")), "source_id": sid}
        if extra.get("answer_all"):
            rec["answer_all"] = extra["answer_all"]
        out.append(rec)
    per_doc = {}
    for r in out:
        per_doc[r["doc"]] = per_doc.get(r["doc"], 0) + 1
    print(f"{len(out)} questions; per filing: {json.dumps(per_doc)}")
    if bad:
        print("answer not found on any page: " + ", ".join(bad), file=sys.stderr)
        return 1
    if not args.check:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        with open(args.out, "w", encoding="utf-8") as f:
            for r in out:
                f.write(json.dumps(r, ensure_ascii=False) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
