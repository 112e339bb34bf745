#!/usr/bin/env python3
"""Scores Folio's extraction records against truth: clinical notes (the
ACI-Bench truth of issue 9, or the medical pack's evaluation set) and
financial filings (the finance pack's evaluation set).

    python3 tools/eval_extraction.py OUTPUT.jsonl [MORE.jsonl ...]
        [--truth tests/data/medical_records/truth.jsonl] [--json] [--all-truth]
    python3 tools/eval_extraction.py OUT/records.jsonl --truth domain_packs/finance/eval/truth.jsonl
    python3 tools/eval_extraction.py --self-test

OUTPUT: Folio's extraction records, one JSON object a line, each with at least
    doc_id, path, data (an object following the pack's schema,
    domain_packs/<pack>/schemas/), values [{pointer, value, grounded, page,
    quote}] and seconds (the wall time of that record; also read from
    timings.seconds / timings.total_s).
TRUTH: one JSON object a line, either issue 9's flat line ({"id",
    "patient_name", "age", "sex", "chief_complaint", "medications": [names],
    "diagnoses" (formerly "assessment"): [problems]}) or a pack evaluation
    line ({"id", "source", "record": {fields in the pack schema's shape},
    "pages": {field: page}}; domain_packs/<pack>/eval/README.md). A record
    holding "company" is a filing, any other a clinical note.
A record is matched to its truth line by the encounter id in the file name
(D2N###, else the name up to its first dot). It counts as a scan when its path
has a "scan" folder, ".scan." in its name, or is an image (.png .jpg .tif ...);
otherwise as a PDF. Output records with no truth are reported and skipped.
With --all-truth, truth records missing from the output are scored as empty
predictions (otherwise the evaluated set is the output's records).

Metrics (per group: pdf, scan, all):
  patient name     normalized exact match (case, punctuation, honorifics
                   Mr/Ms/Mrs/Miss/Dr ignored)
  age              exact integer match
  sex              exact match ("unknown"/"" count as no value)
  chief complaint  match when token F1 >= 0.5 (lower-cased word tokens, a few
                   stop words removed)
  For these scalar fields: precision = matches / records with a predicted
  value, recall = matches / records whose truth has a value. A value predicted
  where the note gives none counts against precision.
  medications, diagnoses: items pooled over records (micro average);
                   precision = matched items / predicted items, recall =
                   matched items / truth items; items are matched one-to-one,
                   greedily by score, when one normalized item contains the
                   other (whole words) or their token F1 >= 0.6.
  key-field accuracy: per record, the share of the 6 key fields that are right
                   (scalar: match, or both without value; list: item F1 >= 0.5
                   for the record, or both empty), averaged over records.
  grounded share:  grounded values / all values in "values" (pooled; a record
                   without a "values" list contributes its "grounded" and
                   "ungrounded" counts).
  A record with a non-empty "error" is scored as it stands (usually empty
  data) and counted in "records w/ error".
  seconds/record:  mean (and median) of the records' "seconds".
  Records made before the schema named them diagnoses ("assessment": [text])
  are read too, so earlier runs stay comparable.

Filings (the finance schema's fields, all scalar, scored as above):
  company          normalized match (case, punctuation and Inc/Corp/Co/Ltd/
                   plc/Company/Corporation/Incorporated ignored)
  form, period_end, period_type, currency, scale: exact match
  figures          revenue, operating_income, net_income, diluted_eps,
                   operating_cash_flow, capital_expenditure, total_assets,
                   total_liabilities, total_equity: the same amount in
                   currency units, each side at its own scale (a figure with
                   its own scale word, "$1.2 billion", at that), within half
                   a unit of the less precise one's last digit; signs are
                   ignored (the statements print outflows and losses in
                   parentheses, which a copied value may drop)
  figure pages     of the matched figures whose truth gives a page, the share
                   whose grounded value (values[].page) is on that page
"""

import argparse
import json
import math
import re
import statistics
import sys
from pathlib import Path

DEFAULT_TRUTH = Path(__file__).resolve().parent.parent / "tests/data/medical_records/truth.jsonl"
MEDICAL_FIELDS = ["patient_name", "age", "sex", "chief_complaint", "medications", "diagnoses"]
FIGURES = ["revenue", "operating_income", "net_income", "diluted_eps", "operating_cash_flow",
           "capital_expenditure", "total_assets", "total_liabilities", "total_equity"]
FINANCE_FIELDS = ["company", "form", "period_end", "period_type", "currency", "scale"] + FIGURES
SCALES = {"units": 1, "thousands": 1e3, "millions": 1e6, "billions": 1e9}
SCALE_WORDS = {"thousand": 1e3, "million": 1e6, "billion": 1e9, "trillion": 1e12}
STOP = {"a", "an", "the", "of", "for", "and", "with", "to", "in", "on", "at", "her", "his", "is"}
IMAGE_EXT = {".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp", ".webp"}


# ------------------------------------------------------------------ normalizing

def tokens(s, stop=True):
    toks = re.findall(r"[a-z0-9]+", str(s).lower())
    return [t for t in toks if not (stop and t in STOP)]


def token_f1(a, b):
    ta, tb = tokens(a), tokens(b)
    if not ta or not tb:
        return 0.0
    common = 0
    rest = list(tb)
    for t in ta:
        if t in rest:
            rest.remove(t)
            common += 1
    if common == 0:
        return 0.0
    p, r = common / len(ta), common / len(tb)
    return 2 * p * r / (p + r)


def norm_name(s):
    if not s:
        return None
    s = re.sub(r"^\s*(mr|ms|mrs|miss|dr)\.?\s+", "", str(s).strip(), flags=re.I)
    s = " ".join(re.findall(r"[a-z]+", s.lower()))
    return s or None


def norm_age(v):
    if v is None or isinstance(v, bool):
        return None
    try:
        f = float(str(v).strip().split()[0])
    except (ValueError, IndexError):
        return None
    return int(f) if f == int(f) else f


def norm_sex(v):
    if not v:
        return None
    s = str(v).strip().lower()
    s = {"f": "female", "woman": "female", "m": "male", "man": "male"}.get(s, s)
    return None if s in ("unknown", "none", "null", "") else s


def norm_text(v):
    if v is None:
        return None
    s = str(v).strip()
    return s or None


def scalar_match(field, pred, truth):
    if pred is None or truth is None:
        return False
    if field == "chief_complaint":
        return token_f1(pred, truth) >= 0.5
    if field in FIGURES:
        (pv, pr), (tv, tr) = pred, truth
        return abs(abs(pv) - abs(tv)) <= max(pr, tr) + 1e-9 * abs(tv)
    return pred == truth


def item_score(a, b):
    """Similarity of two list items in [0, 1]; 0 when they do not match."""
    na, nb = " ".join(tokens(a, stop=False)), " ".join(tokens(b, stop=False))
    if not na or not nb:
        return 0.0
    if na == nb:
        return 1.0
    if f" {na} " in f" {nb} " or f" {nb} " in f" {na} ":
        return 0.9
    f1 = token_f1(a, b)
    return f1 if f1 >= 0.6 else 0.0


def match_items(pred, truth):
    """Greedy one-to-one matching; returns the number of matched pairs."""
    pairs = sorted(((item_score(p, t), i, j) for i, p in enumerate(pred) for j, t in enumerate(truth)),
                   reverse=True)
    used_p, used_t, n = set(), set(), 0
    for s, i, j in pairs:
        if s <= 0:
            break
        if i in used_p or j in used_t:
            continue
        used_p.add(i)
        used_t.add(j)
        n += 1
    return n


def dedupe(items):
    out, seen = [], set()
    for it in items:
        k = " ".join(tokens(it, stop=False))
        if k and k not in seen:
            seen.add(k)
            out.append(it)
    return out


def item_texts(items, keys):
    """The non-empty texts of a list whose items are strings or objects (the text under the first of keys)."""
    out = []
    for it in items or []:
        if isinstance(it, dict):
            it = next((it[k] for k in keys if it.get(k)), None)
        if it and str(it).strip():
            out.append(str(it).strip())
    return dedupe(out)


def medical_fields(data):
    """A clinical-note record (the pack schema's shape) as the metrics' fields."""
    data = data if isinstance(data, dict) else {}
    patient = data.get("patient") if isinstance(data.get("patient"), dict) else {}
    problems = data.get("diagnoses") if "diagnoses" in data else data.get("assessment")
    return {"patient_name": norm_name(patient.get("name")), "age": norm_age(patient.get("age")),
            "sex": norm_sex(patient.get("sex")), "chief_complaint": norm_text(data.get("chief_complaint")),
            "medications": item_texts(data.get("medications"), ("name",)),
            "diagnoses": item_texts(problems, ("description", "name", "text", "problem"))}


def norm_company(v):
    words = re.findall(r"[a-z0-9]+", str(v or "").lower())
    words = [w for w in words if w not in ("inc", "incorporated", "corp", "corporation", "co", "company", "ltd",
                                           "plc", "the")]
    return " ".join(words) or None


def norm_figure(v, scale):
    """A printed figure as (amount in currency units, rounding): "383,285" at
    millions is (3.83285e11, 5e5); "$1.2 billion" is (1.2e9, 5e7). None when
    it is not one number."""
    if v is None:
        return None
    text = str(v).lower()
    numbers = re.findall(r"\d[\d,]*(?:\.\d+)?", text)
    if len(numbers) != 1:
        return None
    digits = numbers[0].replace(",", "")
    decimals = len(digits.split(".")[1]) if "." in digits else 0
    word = re.search(r"\b(thousand|million|billion|trillion)s?\b", text)
    unit = SCALE_WORDS[word.group(1)] if word else scale
    return float(digits) * unit, 0.5 * 10 ** -decimals * unit


def finance_fields(data):
    """A filing record (the finance schema's shape) as the metrics' fields."""
    data = data if isinstance(data, dict) else {}
    scale = SCALES.get(data.get("scale"), 1)
    fields = {"company": norm_company(data.get("company")), "scale": norm_text(data.get("scale"))}
    for f in ("form", "period_end", "period_type", "currency"):
        fields[f] = norm_text(data.get(f))
    for f in FIGURES:
        # EPS is printed in currency units whatever the statements' scale.
        fields[f] = norm_figure(data.get(f), 1 if f == "diluted_eps" else scale)
    return fields


def is_filing(record):
    return isinstance(record, dict) and "company" in record


def predicted_fields(data, finance=False):
    return finance_fields(data) if finance else medical_fields(data)


def truth_fields(t):
    """A truth line's fields: a pack evaluation line's record, or issue 9's flat line."""
    if "record" in t:
        return predicted_fields(t["record"], is_filing(t["record"]))
    return {"patient_name": norm_name(t.get("patient_name")), "age": norm_age(t.get("age")),
            "sex": norm_sex(t.get("sex")), "chief_complaint": norm_text(t.get("chief_complaint")),
            "medications": dedupe(t.get("medications") or []),
            "diagnoses": dedupe(t.get("diagnoses", t.get("assessment")) or [])}


# ------------------------------------------------------------------ records

def record_id(path, truth_ids):
    name = Path(str(path)).name
    m = re.search(r"D2N\d{3}", name)
    if m:
        return m.group(0)
    stem = name.split(".")[0]
    return stem if stem in truth_ids else None


def record_kind(path):
    p = Path(str(path))
    if p.suffix.lower() in IMAGE_EXT or ".scan." in p.name \
            or any(x.lower() in ("scan", "scans") for x in p.parts[:-1]):
        return "scan"
    return "pdf"


def record_seconds(rec):
    for v in (rec.get("seconds"), (rec.get("timings") or {}).get("seconds"),
              (rec.get("timings") or {}).get("total_s")):
        if isinstance(v, (int, float)) and not isinstance(v, bool):
            return float(v)
    return None


def score_record(pred, truth):
    """Per-field counts for one record; the fields are the truth's (medical or finance)."""
    fields = list(truth)
    scalars = [f for f in fields if not isinstance(truth[f], list)]
    lists = [f for f in fields if isinstance(truth[f], list)]
    out = {}
    right = 0
    for f in scalars:
        p, t = pred[f], truth[f]
        m = scalar_match(f, p, t)
        out[f] = {"tp": int(m), "pred": int(p is not None), "truth": int(t is not None)}
        right += 1 if (m or (p is None and t is None)) else 0
    for f in lists:
        p, t = pred[f], truth[f]
        n = match_items(p, t)
        out[f] = {"tp": n, "pred": len(p), "truth": len(t)}
        if not p and not t:
            right += 1
        elif p and t:
            f1 = 2 * n / (len(p) + len(t))
            right += 1 if f1 >= 0.5 else 0
    out["key_accuracy"] = right / len(fields)
    return out


def ratio(a, b):
    return a / b if b else None


def aggregate(rows, fields):
    """rows: [{"scores", "grounded", "values", "seconds", "pages_right", "pages_checked"}] -> summary dict."""
    res = {"records": len(rows), "fields": {}}
    for f in fields:
        tp = sum(r["scores"][f]["tp"] for r in rows)
        npred = sum(r["scores"][f]["pred"] for r in rows)
        ntruth = sum(r["scores"][f]["truth"] for r in rows)
        p, rc = ratio(tp, npred), ratio(tp, ntruth)
        f1 = 2 * p * rc / (p + rc) if p and rc else (0.0 if p is not None and rc is not None else None)
        res["fields"][f] = {"precision": p, "recall": rc, "f1": f1, "tp": tp, "predicted": npred,
                            "truth": ntruth}
    res["errors"] = sum(1 for r in rows if r.get("error"))
    res["key_field_accuracy"] = ratio(sum(r["scores"]["key_accuracy"] for r in rows), len(rows))
    g = sum(r["grounded"] for r in rows)
    v = sum(r["values"] for r in rows)
    res["grounded"] = g
    res["values"] = v
    res["grounded_share"] = ratio(g, v)
    secs = [r["seconds"] for r in rows if r["seconds"] is not None]
    res["seconds_per_record"] = statistics.fmean(secs) if secs else None
    res["seconds_median"] = statistics.median(secs) if secs else None
    res["seconds_total"] = sum(secs) if secs else None
    checked = sum(r.get("pages_checked", 0) for r in rows)
    res["figure_pages"] = ratio(sum(r.get("pages_right", 0) for r in rows), checked)
    res["figure_pages_checked"] = checked
    return res


def figure_pages(rec, truth_line, scores):
    """(right, checked): matched figures whose truth page holds the record's grounded value."""
    right = checked = 0
    pages = {v.get("pointer"): v.get("page") for v in rec.get("values") or []
             if isinstance(v, dict) and v.get("grounded") is True}
    for field, page in (truth_line.get("pages") or {}).items():
        if field in scores and scores[field]["tp"]:
            checked += 1
            right += int(pages.get("/" + field) == page)
    return right, checked


def evaluate(outputs, truth, all_truth=False):
    """outputs: list of output records; truth: {id: truth line}. Returns the report."""
    by_id = {}
    unmatched = []
    for rec in outputs:
        path = rec.get("path") or rec.get("file") or ""
        rid = record_id(path, truth) if path else None
        if rid is None and rec.get("doc_id") in truth:
            rid = rec["doc_id"]
        if rid is None or rid not in truth:
            unmatched.append(path or rec.get("doc_id"))
            continue
        kind = record_kind(path)
        by_id[(rid, kind)] = rec  # a re-run of the same file: the last line wins
    finance = any(is_filing(t.get("record")) for t in truth.values())
    fields = FINANCE_FIELDS if finance else MEDICAL_FIELDS
    rows = {"pdf": [], "scan": []}
    for (rid, kind), rec in sorted(by_id.items()):
        values = rec.get("values") or []
        if values:
            grounded = sum(1 for v in values if isinstance(v, dict) and v.get("grounded") is True)
            nvalues = len(values)
        else:  # no value list: the record's own counts, when it has them
            grounded = int(rec.get("grounded") or 0)
            nvalues = grounded + int(rec.get("ungrounded") or 0)
        scores = score_record(predicted_fields(rec.get("data"), finance), truth_fields(truth[rid]))
        pages_right, pages_checked = figure_pages(rec, truth[rid], scores)
        rows[kind].append({"id": rid, "kind": kind, "scores": scores,
                           "grounded": grounded, "values": nvalues, "seconds": record_seconds(rec),
                           "error": bool(rec.get("error")), "pages_right": pages_right,
                           "pages_checked": pages_checked})
    missing = sorted(set(truth) - {rid for rid, _ in by_id})
    if all_truth:
        empty = predicted_fields({}, finance)
        for rid in missing:
            rows["pdf"].append({"id": rid, "kind": "pdf", "scores": score_record(empty, truth_fields(truth[rid])),
                                "grounded": 0, "values": 0, "seconds": None, "error": True})
    report = {"domain": "finance" if finance else "medical", "fields": fields,
              "groups": {k: aggregate(v, fields) for k, v in rows.items() if v},
              "unmatched_outputs": unmatched, "truth_without_output": len(missing),
              "per_record": [{"id": r["id"], "kind": r["kind"], "key_accuracy": r["scores"]["key_accuracy"],
                              "grounded": r["grounded"], "values": r["values"], "seconds": r["seconds"]}
                             for k in ("pdf", "scan") for r in rows[k]]}
    allrows = rows["pdf"] + rows["scan"]
    if allrows:
        report["groups"]["all"] = aggregate(allrows, fields)
    return report


def fmt(x, pct=True):
    if x is None:
        return "-"
    return f"{100 * x:5.1f}" if pct else f"{x:.2f}"


def print_table(report, out=sys.stdout):
    groups = [g for g in ("pdf", "scan", "all") if g in report["groups"]]
    if not groups:
        print("no records matched the truth", file=out)
        return
    head = f"{'field':<20}" + "".join(f" | {g + ' P%':>9} {'R%':>6} {'n':>5}" for g in groups)
    print(head, file=out)
    print("-" * len(head), file=out)
    for f in report["fields"]:
        line = f"{f:<20}"
        for g in groups:
            s = report["groups"][g]["fields"][f]
            line += f" | {fmt(s['precision']):>9} {fmt(s['recall']):>6} {s['truth']:>5}"
        print(line, file=out)
    print("-" * len(head), file=out)
    summary = [("key-field acc %", "key_field_accuracy", True), ("grounded %", "grounded_share", True),
               ("s / record", "seconds_per_record", False)]
    if report["domain"] == "finance":
        summary.insert(1, ("figure pages %", "figure_pages", True))
    for label, key, pct in summary:
        line = f"{label:<20}"
        for g in groups:
            line += f" | {fmt(report['groups'][g][key], pct):>9} {'':>6} {'':>5}"
        print(line, file=out)
    for label, key in (("records", "records"), ("records w/ error", "errors")):
        line = f"{label:<20}"
        for g in groups:
            line += f" | {report['groups'][g][key]:>9} {'':>6} {'':>5}"
        print(line, file=out)
    print("n = truth values (scalar fields: records with a value; lists: items). "
          f"Outputs without truth: {len(report['unmatched_outputs'])}; "
          f"truth records without output: {report['truth_without_output']}", file=out)


def load_jsonl(paths):
    recs = []
    for p in paths:
        with open(p, encoding="utf-8") as f:
            for n, line in enumerate(f, 1):
                line = line.strip()
                if not line:
                    continue
                try:
                    recs.append(json.loads(line))
                except json.JSONDecodeError as e:
                    sys.exit(f"eval_extraction: {p}:{n}: bad JSON: {e}")
    return recs


# ------------------------------------------------------------------ self-test

def self_test():
    truth = {
        "D2N001": {"id": "D2N001", "patient_name": "Martha Collins", "age": 50, "sex": "female",
                   "chief_complaint": "Annual exam", "medications": ["lisinopril", "Lasix"],
                   "assessment": ["Congestive heart failure", "Depression", "Hypertension", "Healthcare maintenance"]},
        "D2N033": {"id": "D2N033", "patient_name": None, "age": None, "sex": "female",
                   "chief_complaint": "Right knee pain", "medications": ["Mobic", "metformin"],
                   "assessment": ["Right knee pain", "Type 2 diabetes"]},
        "D2N099": {"id": "D2N099", "patient_name": "Nobody", "age": 1, "sex": "male",
                   "chief_complaint": "x", "medications": [], "assessment": []},
    }
    outputs = [
        {"doc_id": 1, "path": "/x/pdf/D2N001.pdf", "seconds": 2.0,
         "data": {"patient": {"name": "Ms. Martha Collins", "age": 50, "sex": "female"},
                  "chief_complaint": "annual physical exam",
                  "medications": [{"name": "Lisinopril 40 mg", "dose": "40 mg", "frequency": "daily"},
                                  {"name": "Lasix", "dose": None, "frequency": None},
                                  {"name": "Aspirin", "dose": None, "frequency": None}],
                  "assessment": ["congestive heart failure", "depression", "hypertension"]},
         "values": [{"pointer": "/patient/name", "value": "Martha Collins", "grounded": True, "page": 1},
                    {"pointer": "/patient/age", "value": 50, "grounded": True, "page": 1},
                    {"pointer": "/medications/2/name", "value": "Aspirin", "grounded": False, "page": None}]},
        {"doc_id": 2, "path": "/x/scan/D2N033.pdf", "seconds": 4.0,
         "data": {"patient": {"name": "Jane Doe", "age": None, "sex": "female"},
                  "chief_complaint": "knee swelling",
                  "medications": [{"name": "metformin 500 mg", "dose": "500 mg", "frequency": None}],
                  "assessment": ["Torn MCL", "Type 2 diabetes mellitus"]},
         "values": [{"pointer": "/patient/sex", "value": "female", "grounded": True, "page": 1}]},
        {"doc_id": 3, "path": "/x/other.pdf", "seconds": 1.0, "data": {}, "values": []},
    ]
    r = evaluate(outputs, truth)
    g = r["groups"]
    checks = []

    def check(name, got, want):
        ok = (got is None and want is None) or (got is not None and want is not None and math.isclose(got, want, abs_tol=1e-9))
        checks.append(ok)
        print(f"{'ok  ' if ok else 'FAIL'} {name}: got {got}, want {want}")

    # pdf record D2N001: name ok (honorific ignored), age ok, sex ok, CC F1("annual physical exam",
    # "annual exam") = 0.8 -> match; meds 2/3 predicted match, 2/2 truth; assessment 3/3, 3/4.
    pf = g["pdf"]["fields"]
    check("pdf name P", pf["patient_name"]["precision"], 1.0)
    check("pdf cc R", pf["chief_complaint"]["recall"], 1.0)
    check("pdf meds P", pf["medications"]["precision"], 2 / 3)
    check("pdf meds R", pf["medications"]["recall"], 1.0)
    check("pdf diagnoses R (records and truth that say assessment)", pf["diagnoses"]["recall"], 3 / 4)
    check("pdf key acc", g["pdf"]["key_field_accuracy"], 1.0)
    check("pdf grounded", g["pdf"]["grounded_share"], 2 / 3)
    check("pdf s/record", g["pdf"]["seconds_per_record"], 2.0)
    # scan record D2N033: name predicted where truth has none -> P 0/1, R undefined;
    # age both null -> right; sex ok; CC F1("knee swelling", "right knee pain") = 0.4 -> miss;
    # meds 1 of 1 predicted, 1 of 2 truth; assessment "Type 2 diabetes" within
    # "Type 2 diabetes mellitus" -> 1 of 2 both ways.
    sf = g["scan"]["fields"]
    check("scan name P", sf["patient_name"]["precision"], 0.0)
    check("scan name R", sf["patient_name"]["recall"], None)
    check("scan cc P", sf["chief_complaint"]["precision"], 0.0)
    check("scan meds P", sf["medications"]["precision"], 1.0)
    check("scan meds R", sf["medications"]["recall"], 0.5)
    check("scan diagnoses P", sf["diagnoses"]["precision"], 0.5)
    # key: name wrong, age right (both null), sex right, cc wrong, meds F1 2/3 right, assessment F1 0.5 right
    check("scan key acc", g["scan"]["key_field_accuracy"], 4 / 6)
    check("all key acc", g["all"]["key_field_accuracy"], (1.0 + 4 / 6) / 2)
    check("all s/record", g["all"]["seconds_per_record"], 3.0)
    check("all grounded", g["all"]["grounded_share"], 3 / 4)
    check("unmatched", len(r["unmatched_outputs"]), 1)
    check("missing", r["truth_without_output"], 1)
    r2 = evaluate(outputs, truth, all_truth=True)
    check("all-truth records", r2["groups"]["all"]["records"], 3)
    check("all-truth errors", r2["groups"]["all"]["errors"], 1)
    check("token_f1", token_f1("Right knee pain", "right knee pain"), 1.0)
    check("item no match", item_score("Hypertension", "Hyperlipidemia"), 0.0)
    check("kind tif", 1.0 if record_kind("a/D2N001.tif") == "scan" else 0.0, 1.0)
    check("kind .scan.", 1.0 if record_kind("D2N001.scan.pdf") == "scan" else 0.0, 1.0)
    print_table(r)

    # The pack schema's record against a pack evaluation line: diagnoses are objects.
    pack_truth = {"D2N001": {"id": "D2N001", "source": "x", "record": {
        "patient": {"name": "Martha Collins", "age": 50, "sex": "female"}, "chief_complaint": "Annual exam",
        "medications": [{"name": "lisinopril"}, {"name": "Lasix"}],
        "diagnoses": [{"description": "Congestive heart failure"}, {"description": "Depression"}]}}}
    new_output = [{"path": "D2N001.pdf", "seconds": 1.0, "data": {
        "patient": {"name": "Martha Collins", "date_of_birth": None, "age": 50, "sex": "female"},
        "chief_complaint": "annual exam", "medications": [{"name": "Lasix", "dose": "40 mg", "route": None,
                                                            "frequency": None}],
        "diagnoses": [{"description": "CHF", "icd10": "I50.9"}, {"description": "depression", "icd10": None}]}}]
    r3 = evaluate(new_output, pack_truth)
    check("pack medical domain", 1.0 if r3["domain"] == "medical" else 0.0, 1.0)
    check("pack diagnoses P", r3["groups"]["all"]["fields"]["diagnoses"]["precision"], 0.5)
    check("pack meds R", r3["groups"]["all"]["fields"]["medications"]["recall"], 0.5)

    # Filings: figures at each side's own scale, signs ignored, pages of grounded values.
    filing_truth = {"APPLE_2021_10K": {"id": "APPLE_2021_10K", "record": {
        "company": "Apple Inc.", "form": "10-K", "period_end": "2021-09-25", "period_type": "annual",
        "currency": "USD", "scale": "millions", "revenue": "365,817", "net_income": "94,680",
        "diluted_eps": "5.61", "capital_expenditure": "(11,085)", "total_assets": "351,002"},
        "pages": {"revenue": 21, "net_income": 21, "total_assets": 22}}}
    filing_output = [{"path": "/c/APPLE_2021_10K.pdf", "seconds": 5.0, "data": {
        "company": "APPLE INC", "form": "10-K", "period_end": "2021-09-25", "period_type": "quarterly",
        "currency": "USD", "scale": "thousands", "revenue": "365,817,000", "net_income": "$94.7 billion",
        "diluted_eps": "5.61", "capital_expenditure": "11,085,000", "total_assets": "351,002"},
        "values": [{"pointer": "/revenue", "grounded": True, "page": 21},
                   {"pointer": "/net_income", "grounded": True, "page": 40}]}]
    r4 = evaluate(filing_output, filing_truth)
    ff = r4["groups"]["all"]["fields"]
    check("finance domain", 1.0 if r4["domain"] == "finance" else 0.0, 1.0)
    check("finance company", ff["company"]["precision"], 1.0)
    check("finance period_type", ff["period_type"]["precision"], 0.0)
    check("finance revenue at another scale", ff["revenue"]["precision"], 1.0)
    check("finance net income with a scale word", ff["net_income"]["recall"], 1.0)
    check("finance capex sign ignored", ff["capital_expenditure"]["recall"], 1.0)
    check("finance assets at the wrong scale", ff["total_assets"]["precision"], 0.0)
    check("finance figure pages", r4["groups"]["all"]["figure_pages"], 0.5)
    # wrong: period_type, scale, total_assets (its figure read at the wrong scale)
    check("finance key acc", r4["groups"]["all"]["key_field_accuracy"], 12 / 15)
    print_table(r4)
    failed = checks.count(False)
    print(f"self-test: {len(checks) - failed}/{len(checks)} passed")
    return 0 if failed == 0 else 1


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("outputs", nargs="*", help="Folio extraction JSONL file(s)")
    ap.add_argument("--truth", default=str(DEFAULT_TRUTH))
    ap.add_argument("--json", action="store_true", help="print the report as one JSON object")
    ap.add_argument("--all-truth", action="store_true",
                    help="score truth records missing from the output as empty predictions")
    ap.add_argument("--self-test", action="store_true")
    args = ap.parse_args()
    if args.self_test:
        return self_test()
    if not args.outputs:
        ap.error("give Folio's extraction output (JSONL), or --self-test")
    truth = {t["id"]: t for t in load_jsonl([args.truth])}
    report = evaluate(load_jsonl(args.outputs), truth, args.all_truth)
    if args.json:
        print(json.dumps(report))
    else:
        print_table(report)
        if report["unmatched_outputs"]:
            print("outputs without truth: " + ", ".join(map(str, report["unmatched_outputs"][:10])))
    return 0


if __name__ == "__main__":
    sys.exit(main())
