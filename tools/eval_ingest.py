#!/usr/bin/env python3
"""Measures ingestion's acceptance figures through the `folio` CLI.

Sections (each runs when its input is given):
  text     the filings in --finance: stored page count == pdfinfo's, and per
           page the order-free F1 of alphanumeric tokens of the stored text
           against `pdftotext -f N -l N` (default mode) >= 0.99 on EVERY page
           that has a text layer. Pages where pdftotext finds no letter or
           digit (image-only pages, which Folio OCRs) are listed, not scored.
  aci      --set's ACI note scans (tools/make_scan_set.py): character error
           rate per degradation, aggregate <= 2 % clean, <= 5 % degraded; the
           note PDFs' own text layer is reported too (CER, informational).
  filings  --set's filing-page scans: order-free recall of alphanumeric tokens
           against pdftotext's text, aggregate >= 98 % clean, >= 95 % degraded.

For each section, a fresh library in a temporary folder:
  folio --library L ingest PATH... --json
  folio --library L docs --json                    (doc_id, path, pages, status, error)
  folio --library L show DOC_ID --page N --json    (page, text, ocr, confidence)

Text normalization (stated here because every figure depends on it):
  CER:    Unicode NFKC (ligatures, no-break and narrow spaces, full-width forms);
          typographic single/double quotes -> ' and "; hyphen/dash/minus
          characters (U+2010..U+2015, U+2212) -> '-'; soft hyphens removed;
          every run of whitespace (newlines included) -> one space; trimmed.
          Case and punctuation are kept; a bullet glyph is a character like any
          other. CER = Levenshtein(truth, text) / len(truth), both normalized;
          a degradation's aggregate CER = sum of edits / sum of truth lengths.
  tokens: NFKC, then maximal runs of Unicode letters and digits (regex
          [^\\W_]+), case kept, compared as multisets (order-free):
          precision = |A & B| / |B|, recall = |A & B| / |A|, F1 their harmonic
          mean (A = truth tokens, B = stored tokens; both empty -> 1.0).

--backend reference replaces folio by pdftotext (text layers) and the tesseract
CLI with its orientation detection (scans): a baseline, and a check of this
script end to end while the CLI is not there.

Usage:
  tools/eval_ingest.py --self-test [--set DIR]
  tools/eval_ingest.py --folio build/app/folio --finance /work/shared/corpus/finance \\
                       --set /tmp/folio-scanset --out /tmp/folio-eval.json [--jobs 2]
"""

import argparse
import concurrent.futures as cf
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import unicodedata
from collections import Counter, defaultdict
from pathlib import Path

THRESHOLDS = {
    "text_f1_min": 0.99,
    "aci_cer_clean": 0.02,
    "aci_cer_degraded": 0.05,
    "filing_recall_clean": 0.98,
    "filing_recall_degraded": 0.95,
}
DEFAULT_FINANCE = "/work/shared/corpus/finance"

# ---------------------------------------------------------------- metrics

_QUOTES = {ord(c): "'" for c in "\u2018\u2019\u201a\u201b\u2032"}
_QUOTES.update({ord(c): '"' for c in "\u201c\u201d\u201e\u201f\u2033"})
_DASHES = {ord(c): "-" for c in "\u2010\u2011\u2012\u2013\u2014\u2015\u2212"}
_TOKEN = re.compile(r"[^\W_]+")


def normalize_text(text):
    """The CER normalization (see the module docstring)."""
    t = unicodedata.normalize("NFKC", text)
    t = t.translate(_QUOTES).translate(_DASHES).replace("\u00ad", "")
    return " ".join(t.split())


def tokens(text):
    return _TOKEN.findall(unicodedata.normalize("NFKC", text))


def levenshtein(a, b):
    """Edit distance (unit insert/delete/substitute) over code points.

    One DP row per character of `a`, vectorized over `b`: substitutions and
    deletions come from the previous row; insertions chain along the row, and
    min over k<=j of (row[k] + j - k) is a running minimum of row - j."""
    if len(a) < len(b):
        a, b = b, a
    if not b:
        return len(a)
    try:
        import numpy as np
    except ImportError:
        return levenshtein_reference(a, b)
    bv = np.frombuffer(b.encode("utf-32-le"), dtype=np.uint32)
    idx = np.arange(len(b) + 1, dtype=np.int64)
    prev = idx.copy()
    cur = np.empty_like(prev)
    for i, ch in enumerate(a, start=1):
        np.minimum(prev[:-1] + (bv != ord(ch)), prev[1:] + 1, out=cur[1:])
        cur[0] = i
        cur -= idx
        np.minimum.accumulate(cur, out=cur)
        cur += idx
        prev, cur = cur, prev
    return int(prev[-1])


def levenshtein_reference(a, b):
    """Plain O(n*m) dynamic programme (for the self-test, and without numpy)."""
    prev = list(range(len(b) + 1))
    for i, ca in enumerate(a, start=1):
        cur = [i]
        for j, cb in enumerate(b, start=1):
            cur.append(min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (ca != cb)))
        prev = cur
    return prev[-1]


def cer(truth, text):
    """(edits, truth length, cer) over normalized text."""
    t, h = normalize_text(truth), normalize_text(text)
    edits = levenshtein(t, h)
    return edits, len(t), (edits / len(t) if t else float(bool(h)))


def token_scores(truth, text):
    """Order-free token comparison: dict with precision, recall, f1, counts and
    the most frequent missing / extra tokens (for diagnosis)."""
    a, b = Counter(tokens(truth)), Counter(tokens(text))
    na, nb = sum(a.values()), sum(b.values())
    common = sum((a & b).values())
    precision = common / nb if nb else (1.0 if na == 0 else 0.0)
    recall = common / na if na else (1.0 if nb == 0 else 0.0)
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    if na == 0 and nb == 0:
        f1 = 1.0
    return {"precision": precision, "recall": recall, "f1": f1,
            "truth_tokens": na, "text_tokens": nb, "common_tokens": common,
            "missing": [f"{t}x{n}" if n > 1 else t for t, n in (a - b).most_common(12)],
            "extra": [f"{t}x{n}" if n > 1 else t for t, n in (b - a).most_common(12)]}


# ---------------------------------------------------------------- poppler

def run(cmd, timeout=None, **kw):
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, **kw)


def pdfinfo_pages(pdf):
    r = run(["pdfinfo", str(pdf)])
    m = re.search(r"^Pages:\s+(\d+)", r.stdout, re.M)
    if r.returncode != 0 or not m:
        raise RuntimeError(f"pdfinfo {pdf}: {r.stderr.strip() or 'no page count'}")
    return int(m.group(1))


def pdftotext_page(pdf, page):
    r = run(["pdftotext", "-f", str(page), "-l", str(page), str(pdf), "-"])
    if r.returncode != 0:
        raise RuntimeError(f"pdftotext {pdf} page {page}: {r.stderr.strip()}")
    return r.stdout


# ---------------------------------------------------------------- backends

class BackendError(RuntimeError):
    pass


class FolioCli:
    """Drives the folio CLI against one library folder."""

    name = "folio"

    def __init__(self, folio, library, jobs=None, timeout=4 * 3600):
        self.folio, self.library, self.jobs, self.timeout = folio, library, jobs, timeout

    def _cmd(self, *args):
        return [self.folio, "--library", self.library, *args]

    def ingest(self, paths):
        cmd = self._cmd("ingest", *map(str, paths), "--json")
        if self.jobs:
            cmd += ["--jobs", str(self.jobs)]
        t0 = time.monotonic()
        r = run(cmd, timeout=self.timeout)
        wall = time.monotonic() - t0
        events = []
        for line in r.stdout.splitlines():
            try:
                events.append(json.loads(line))
            except json.JSONDecodeError:
                pass
        return {"rc": r.returncode, "wall_s": round(wall, 2), "events": len(events),
                "stderr_tail": r.stderr[-2000:]}

    def docs(self):
        r = run(self._cmd("docs", "--json"), timeout=600)
        if r.returncode != 0:
            raise BackendError(f"folio docs: rc {r.returncode}: {r.stderr.strip()[-500:]}")
        docs = {}
        for line in r.stdout.splitlines():
            line = line.strip()
            if not line:
                continue
            d = json.loads(line)
            docs[os.path.realpath(d["path"])] = d
        return docs

    def page(self, doc, number):
        r = run(self._cmd("show", str(doc["doc_id"]), "--page", str(number), "--json"), timeout=600)
        if r.returncode != 0:
            raise BackendError(f"show {doc['doc_id']} --page {number}: rc {r.returncode}: "
                               f"{r.stderr.strip()[-300:]}")
        for line in r.stdout.splitlines():
            line = line.strip()
            if line:
                obj = json.loads(line)
                if "text" in obj:
                    if int(obj.get("page", number)) != number:
                        raise BackendError(f"show {doc['doc_id']} --page {number} returned page {obj.get('page')}")
                    return obj
        raise BackendError(f"show {doc['doc_id']} --page {number}: no JSON object with text")


class ReferenceBackend:
    """pdftotext for PDFs with a text layer, tesseract CLI (OSD, then rotate,
    then recognize) for everything else. No library; pages computed on demand."""

    name = "reference"

    def __init__(self, workdir):
        self.workdir = Path(workdir)
        self.paths = []

    def ingest(self, paths):
        self.paths = [os.path.realpath(p) for p in paths]
        return {"rc": 0, "wall_s": 0.0, "events": 0, "stderr_tail": ""}

    def docs(self):
        docs = {}
        for i, p in enumerate(self.paths, start=1):
            suffix = Path(p).suffix.lower()
            if suffix == ".pdf":
                pages = pdfinfo_pages(p)
            elif suffix in (".tif", ".tiff"):
                from PIL import Image
                with Image.open(p) as im:
                    pages = getattr(im, "n_frames", 1)
            else:
                pages = 1
            docs[p] = {"doc_id": i, "path": p, "pages": pages, "status": "indexed", "error": ""}
        return docs

    def _image(self, path, number):
        from PIL import Image
        suffix = Path(path).suffix.lower()
        if suffix == ".pdf":
            prefix = self.workdir / f"ref-{os.getpid()}-{abs(hash((path, number)))}"
            r = run(["pdftoppm", "-f", str(number), "-l", str(number), "-r", "300", "-gray",
                     "-png", "-singlefile", path, str(prefix)])
            if r.returncode != 0:
                raise BackendError(r.stderr.strip())
            img = Image.open(f"{prefix}.png")
            img.load()
            os.unlink(f"{prefix}.png")
            return img, 300
        img = Image.open(path)
        img.seek(number - 1)
        img = img.convert("L")
        dpi = img.info.get("dpi", (300, 300))[0] or 300
        return img, int(round(dpi))

    def page(self, doc, number):
        path = doc["path"]
        if path.endswith(".pdf"):
            text = pdftotext_page(path, number)
            if len(tokens(text)) >= 10:
                return {"page": number, "text": text, "ocr": False, "confidence": -1}
        img, dpi = self._image(path, number)
        fd, png = tempfile.mkstemp(suffix=".png", dir=self.workdir)
        os.close(fd)
        try:
            img.save(png, dpi=(dpi, dpi))
            env = dict(os.environ, OMP_THREAD_LIMIT="1")
            osd = run(["tesseract", png, "-", "--psm", "0", "--dpi", str(dpi)], env=env)
            m = re.search(r"Rotate:\s+(\d+)", osd.stdout)
            conf = re.search(r"Orientation confidence:\s+([\d.]+)", osd.stdout)
            # OSD guesses on sparse pages (a three-line page: confidence 0.77,
            # upside down); below 2 leave the page as it is.
            rotate = int(m.group(1)) if m and conf and float(conf.group(1)) >= 2.0 else 0
            if rotate:
                img.rotate(-rotate, expand=True).save(png, dpi=(dpi, dpi))  # Rotate: N is clockwise
            r = run(["tesseract", png, "-", "--dpi", str(dpi)], env=env)
            if r.returncode != 0:
                raise BackendError(f"tesseract: {r.stderr.strip()[-300:]}")
            return {"page": number, "text": r.stdout, "ocr": True, "confidence": -1, "rotation": rotate}
        finally:
            os.unlink(png)


# ---------------------------------------------------------------- evaluation

def ingest_and_read(backend, paths, wanted, jobs):
    """Ingests `paths`, then reads pages. `wanted` is a list of (path, page).
    Returns (ingest summary, docs by real path, {(path, page): page dict or
    {"error": ...}})."""
    summary = backend.ingest(paths)
    docs = backend.docs()
    results = {}

    def fetch(key):
        path, page = key
        doc = docs.get(os.path.realpath(path))
        if doc is None:
            return key, {"error": "document not in `docs`"}
        try:
            return key, backend.page(doc, page)
        except (BackendError, subprocess.TimeoutExpired, json.JSONDecodeError, OSError) as e:
            return key, {"error": str(e)}

    with cf.ThreadPoolExecutor(max_workers=max(1, jobs)) as pool:
        for key, res in pool.map(fetch, wanted):
            results[key] = res
    return summary, docs, results


def eval_text_pdfs(backend, finance, jobs):
    pdfs = sorted(Path(finance).glob("*.pdf"))
    counts = {str(p): pdfinfo_pages(p) for p in pdfs}
    wanted = [(str(p), n) for p in pdfs for n in range(1, counts[str(p)] + 1)]
    with cf.ThreadPoolExecutor(max_workers=max(1, jobs)) as pool:
        truth = dict(zip(wanted, pool.map(lambda k: pdftotext_page(*k), wanted)))
    summary, docs, stored = ingest_and_read(backend, [str(p) for p in pdfs], wanted, jobs)

    documents, pages, no_text = [], [], []
    for p in pdfs:
        doc = docs.get(os.path.realpath(p), {})
        f1s = []
        for n in range(1, counts[str(p)] + 1):
            got = stored[(str(p), n)]
            if "error" in got and "text" not in got:
                rec = {"pdf": p.name, "page": n, "f1": 0.0, "error": got["error"]}
            else:
                rec = {"pdf": p.name, "page": n, **token_scores(truth[(str(p), n)], got.get("text", "")),
                       "ocr": got.get("ocr")}
                if got.get("error"):
                    rec["error"] = f"page error: {got['error']}"
            if rec.get("truth_tokens", 1) == 0:
                # No text layer (pdftotext finds no letters or digits): an
                # image-only page that Folio may OCR. Agreement with pdftotext
                # means nothing there; listed, not scored.
                rec["no_text_layer"] = True
                no_text.append({"pdf": p.name, "page": n, "ocr": rec.get("ocr"),
                                "stored_tokens": rec.get("text_tokens", 0)})
            else:
                f1s.append(rec["f1"])
            pages.append(rec)
        documents.append({
            "pdf": p.name, "pdfinfo_pages": counts[str(p)], "stored_pages": doc.get("pages"),
            "status": doc.get("status"), "error": doc.get("error"),
            "pages_equal": doc.get("pages") == counts[str(p)],
            "f1_min": min(f1s, default=1.0), "f1_mean": sum(f1s) / max(1, len(f1s)),
            "pages_below": sum(f < THRESHOLDS["text_f1_min"] for f in f1s),
            "no_text_layer_pages": sum(1 for r in no_text if r["pdf"] == p.name),
            "ocr_pages": sum(1 for r in pages if r["pdf"] == p.name and r.get("ocr")),
        })
    scored = [r for r in pages if not r.get("no_text_layer")]
    f1_all = [r["f1"] for r in scored]
    worst = sorted(scored, key=lambda r: r["f1"])[:15]
    return {
        "ingest": summary,
        "pass": all(d["pages_equal"] for d in documents) and min(f1_all, default=1.0) >= THRESHOLDS["text_f1_min"],
        "pages": len(pages), "scored_pages": len(scored),
        "f1_min": min(f1_all, default=1.0), "f1_mean": sum(f1_all) / max(1, len(f1_all)),
        "pages_below": sum(f < THRESHOLDS["text_f1_min"] for f in f1_all),
        "no_text_layer": no_text,
        "documents": documents, "worst": worst,
        "page_scores": [{k: r.get(k) for k in ("pdf", "page", "f1", "precision", "recall", "ocr")} for r in pages],
    }


def load_manifest(set_dir):
    m = json.loads((Path(set_dir) / "manifest.json").read_text(encoding="utf-8"))
    for it in m["items"]:
        it["abs"] = str((Path(set_dir) / it["file"]).resolve())
    return m


def expected_pages(items):
    pages = defaultdict(int)
    for it in items:
        pages[it["abs"]] = max(pages[it["abs"]], it["page"])
    return pages


def eval_scan_items(backend, items, metric, jobs):
    """metric 'cer' or 'recall'; returns per-page records and the docs check."""
    paths = sorted({it["abs"] for it in items})
    wanted = [(it["abs"], it["page"]) for it in items]
    summary, docs, stored = ingest_and_read(backend, paths, wanted, jobs)
    exp = expected_pages(items)
    doc_problems = []
    for p in paths:
        d = docs.get(os.path.realpath(p))
        if d is None:
            doc_problems.append({"file": p, "problem": "not in docs"})
        elif d.get("pages") != exp[p] or d.get("status") != "indexed":
            doc_problems.append({"file": p, "problem": f"pages {d.get('pages')} (expected {exp[p]}), "
                                 f"status {d.get('status')}, error {d.get('error')!r}"})
    records = []
    for it in items:
        got = stored[(it["abs"], it["page"])]
        rec = {"file": it["file"], "page": it["page"], "degradation": it["degradation"],
               "format": it["format"], "source": it["source"], "ocr": got.get("ocr"),
               "confidence": got.get("confidence")}
        if "text" not in got:
            rec["error"] = got.get("error", "no text")
        elif got.get("error"):
            rec["error"] = f"page error: {got['error']}"
        text = got.get("text", "")
        if metric == "cer":
            edits, length, c = cer(it["truth"], text)
            rec.update(edits=edits, truth_chars=length, cer=c)
        else:
            s = token_scores(it["truth"], text)
            rec.update({k: s[k] for k in ("recall", "precision", "truth_tokens", "common_tokens", "missing")})
        records.append(rec)
    return summary, doc_problems, records


def summarize_by_degradation(records, metric):
    by = defaultdict(list)
    for r in records:
        by[r["degradation"]].append(r)
    out = {}
    for deg, rs in sorted(by.items()):
        if metric == "cer":
            limit = THRESHOLDS["aci_cer_clean"] if deg == "clean" else THRESHOLDS["aci_cer_degraded"]
            agg = sum(r["edits"] for r in rs) / max(1, sum(r["truth_chars"] for r in rs))
            vals = [r["cer"] for r in rs]
            out[deg] = {"pages": len(rs), "cer": agg, "cer_mean": sum(vals) / len(vals),
                        "cer_max": max(vals), "threshold": limit, "pass": agg <= limit,
                        "pages_over": sum(v > limit for v in vals),
                        "by_format": {f: sum(r["edits"] for r in rs if r["format"] == f)
                                      / max(1, sum(r["truth_chars"] for r in rs if r["format"] == f))
                                      for f in sorted({r["format"] for r in rs})}}
        else:
            limit = THRESHOLDS["filing_recall_clean"] if deg == "clean" else THRESHOLDS["filing_recall_degraded"]
            agg = sum(r["common_tokens"] for r in rs) / max(1, sum(r["truth_tokens"] for r in rs))
            vals = [r["recall"] for r in rs]
            out[deg] = {"pages": len(rs), "recall": agg, "recall_mean": sum(vals) / len(vals),
                        "recall_min": min(vals), "threshold": limit, "pass": agg >= limit,
                        "pages_under": sum(v < limit for v in vals)}
    return out


def pooled_degraded(records, metric):
    rs = [r for r in records if r["degradation"] != "clean"]
    if not rs:
        return None
    if metric == "cer":
        return sum(r["edits"] for r in rs) / max(1, sum(r["truth_chars"] for r in rs))
    return sum(r["common_tokens"] for r in rs) / max(1, sum(r["truth_tokens"] for r in rs))


def eval_aci(backend, manifest, jobs):
    out = {}
    text_items = [it for it in manifest["items"] if it["set"] == "aci_text"]
    if text_items:
        summary, problems, recs = eval_scan_items(backend, text_items, "cer", jobs)
        vals = [r["cer"] for r in recs]
        out["text_layer"] = {"ingest": summary, "doc_problems": problems, "pages": len(recs),
                             "cer": sum(r["edits"] for r in recs) / max(1, sum(r["truth_chars"] for r in recs)),
                             "cer_max": max(vals), "worst": sorted(recs, key=lambda r: -r["cer"])[:5]}
    scan_items = [it for it in manifest["items"] if it["set"] == "aci_scan"]
    if scan_items:
        summary, problems, recs = eval_scan_items(backend, scan_items, "cer", jobs)
        by = summarize_by_degradation(recs, "cer")
        out["scans"] = {"ingest": summary, "doc_problems": problems, "by_degradation": by,
                        "degraded_pooled_cer": pooled_degraded(recs, "cer"),
                        "pass": not problems and all(v["pass"] for v in by.values()),
                        "worst": sorted(recs, key=lambda r: -r["cer"])[:15], "page_scores": recs}
    return out


def eval_filing_scans(backend, manifest, jobs):
    items = [it for it in manifest["items"] if it["set"] == "filing_scan"]
    if not items:
        return None
    summary, problems, recs = eval_scan_items(backend, items, "recall", jobs)
    by = summarize_by_degradation(recs, "recall")
    return {"ingest": summary, "doc_problems": problems, "by_degradation": by,
            "degraded_pooled_recall": pooled_degraded(recs, "recall"),
            "pass": not problems and all(v["pass"] for v in by.values()),
            "worst": sorted(recs, key=lambda r: r["recall"])[:15], "page_scores": recs}


# ---------------------------------------------------------------- report

def verdict(ok):
    return "PASS" if ok else "FAIL"


def print_report(res):
    print(f"\nbackend: {res['backend']}   normalization: see tools/eval_ingest.py docstring")
    t = res.get("text")
    if t:
        print(f"\n== Text-layer PDFs vs pdfinfo / pdftotext -f N -l N  [{verdict(t['pass'])}]"
              f"  (every page F1 >= {THRESHOLDS['text_f1_min']})")
        print(f"{'pdf':34} {'pdfinfo':>7} {'stored':>6} {'status':>8} {'F1 min':>7} {'F1 mean':>7} {'<0.99':>5} {'ocr':>4}")
        for d in t["documents"]:
            print(f"{d['pdf']:34} {d['pdfinfo_pages']:7} {str(d['stored_pages']):>6} {str(d['status']):>8} "
                  f"{d['f1_min']:7.4f} {d['f1_mean']:7.4f} {d['pages_below']:5} {d['ocr_pages']:4}")
        print(f"{t['scored_pages']} of {t['pages']} pages scored: F1 min {t['f1_min']:.4f}, mean {t['f1_mean']:.4f}, "
              f"{t['pages_below']} below threshold; ingest {t['ingest']['wall_s']} s rc {t['ingest']['rc']}")
        if t["no_text_layer"]:
            print(f"not scored, no text layer (pdftotext finds no letters/digits): "
                  + ", ".join(f"{r['pdf']} p{r['page']} (stored {r['stored_tokens']} tokens, ocr {r['ocr']})"
                              for r in t["no_text_layer"]))
        print("worst pages:")
        for r in t["worst"][:10]:
            print(f"  {r['pdf']} p{r['page']}: F1 {r['f1']:.4f}"
                  + (f" P {r['precision']:.3f} R {r['recall']:.3f} missing {r['missing'][:6]} extra {r['extra'][:6]}"
                     if "precision" in r else f" error {r.get('error')}"))
    a = res.get("aci")
    if a:
        if "text_layer" in a:
            tl = a["text_layer"]
            print(f"\n== ACI note PDFs, text layer (informational): CER {tl['cer']:.4%} over {tl['pages']} pages,"
                  f" max {tl['cer_max']:.4%}; problems: {len(tl['doc_problems'])}")
        if "scans" in a:
            s = a["scans"]
            print(f"\n== ACI note scans: CER  [{verdict(s['pass'])}]  (aggregate <= 2 % clean, <= 5 % degraded)")
            print(f"{'degradation':12} {'pages':>5} {'CER':>8} {'mean':>8} {'max':>8} {'limit':>6} {'over':>5}  by format")
            for deg, v in s["by_degradation"].items():
                fm = " ".join(f"{f}:{c:.2%}" for f, c in v["by_format"].items())
                print(f"{deg:12} {v['pages']:5} {v['cer']:8.3%} {v['cer_mean']:8.3%} {v['cer_max']:8.3%} "
                      f"{v['threshold']:6.0%} {v['pages_over']:5}  {fm}  {verdict(v['pass'])}")
            if s["degraded_pooled_cer"] is not None:
                print(f"{'degraded*':12} pooled CER {s['degraded_pooled_cer']:.3%}")
            for p in s["doc_problems"][:10]:
                print(f"  document problem: {p['file']}: {p['problem']}")
            print(f"ingest {s['ingest']['wall_s']} s rc {s['ingest']['rc']}; worst pages:")
            for r in s["worst"][:8]:
                print(f"  {r['file']} p{r['page']} ({r['degradation']}): CER {r['cer']:.2%}"
                      + (f" error {r['error']}" if r.get("error") else ""))
    f = res.get("filings")
    if f:
        print(f"\n== Filing-page scans: token recall vs pdftotext  [{verdict(f['pass'])}]"
              f"  (aggregate >= 98 % clean, >= 95 % degraded)")
        print(f"{'degradation':12} {'pages':>5} {'recall':>8} {'mean':>8} {'min':>8} {'limit':>6} {'under':>5}")
        for deg, v in f["by_degradation"].items():
            print(f"{deg:12} {v['pages']:5} {v['recall']:8.3%} {v['recall_mean']:8.3%} {v['recall_min']:8.3%} "
                  f"{v['threshold']:6.0%} {v['pages_under']:5}  {verdict(v['pass'])}")
        if f["degraded_pooled_recall"] is not None:
            print(f"{'degraded*':12} pooled recall {f['degraded_pooled_recall']:.3%}")
        for p in f["doc_problems"][:10]:
            print(f"  document problem: {p['file']}: {p['problem']}")
        print(f"ingest {f['ingest']['wall_s']} s rc {f['ingest']['rc']}; worst pages:")
        for r in f["worst"][:8]:
            print(f"  {r['file']} ({r['degradation']}): recall {r['recall']:.2%} missing {r['missing'][:6]}"
                  + (f" error {r['error']}" if r.get("error") else ""))


# ---------------------------------------------------------------- self-test

def self_test(set_dir):
    import random
    failures = []

    def check(cond, what):
        print(("ok   " if cond else "FAIL ") + what)
        if not cond:
            failures.append(what)

    check(levenshtein("kitten", "sitting") == 3, "levenshtein(kitten, sitting) == 3")
    check(levenshtein("", "abc") == 3 and levenshtein("abc", "") == 3, "levenshtein against empty")
    check(levenshtein("flaw", "lawn") == 2, "levenshtein(flaw, lawn) == 2")
    rng = random.Random(1)
    agree = True
    for _ in range(300):
        a = "".join(rng.choice("ab c\u00e9\u2022") for _ in range(rng.randrange(0, 40)))
        b = "".join(rng.choice("ab c\u00e9\u2022") for _ in range(rng.randrange(0, 40)))
        agree &= levenshtein(a, b) == levenshtein_reference(a, b)
    check(agree, "vectorized levenshtein == reference DP on 300 random pairs")
    big_a = "".join(rng.choice("abcdefgh ") for _ in range(4000))
    big_b = big_a[:1000] + "XYZ" + big_a[1010:3000] + big_a[3100:]
    t0 = time.monotonic()
    d = levenshtein(big_a, big_b)
    check(d <= 113 and time.monotonic() - t0 < 5, f"levenshtein on 4000 chars: {d} edits in {time.monotonic() - t0:.2f} s")

    check(normalize_text("  a\u00a0b\n\n c\u202fd \ufb01 \u201cq\u201d \u2014 x\u00ady ") == 'a b c d fi "q" - xy',
          "normalize_text: NFKC, quotes, dashes, soft hyphen, whitespace")
    check(cer("abc def", "abc  def\n")[2] == 0.0, "CER ignores whitespace layout")
    check(abs(cer("abcdefghij", "abcdefghiX")[2] - 0.1) < 1e-12, "CER of one substitution in 10 chars == 0.1")
    check(tokens("Net sales $1,234.5 (2021) caf\u00e9_x") == ["Net", "sales", "1", "234", "5", "2021", "caf\u00e9", "x"],
          "tokens: letter/digit runs, underscore splits")
    s = token_scores("a b c d", "d c b a")
    check(s["f1"] == 1.0, "token F1 is order-free")
    s = token_scores("a a b", "a b b")
    check(abs(s["precision"] - 2 / 3) < 1e-12 and abs(s["recall"] - 2 / 3) < 1e-12, "token scores are multiset-based")
    check(token_scores("", "")["f1"] == 1.0 and token_scores("x", "")["f1"] == 0.0, "token F1 edge cases")

    # Against pdftotext itself: the same page through a different reading order
    # (-layout, -raw) must score F1 ~ 1, since the metric is order-free.
    finance = Path(DEFAULT_FINANCE)
    if finance.is_dir() and shutil.which("pdftotext"):
        for pdf, page in (("APPLE_2021_10K.pdf", 30), ("PG_E_2015_10K.pdf", 120), ("INTEL_2020_10K.pdf", 50)):
            base = pdftotext_page(finance / pdf, page)
            for mode in ("-layout", "-raw"):
                other = run(["pdftotext", mode, "-f", str(page), "-l", str(page), str(finance / pdf), "-"]).stdout
                f1 = token_scores(base, other)["f1"]
                check(f1 >= 0.99, f"pdftotext default vs {mode} on {pdf} p{page}: F1 {f1:.4f}")
            cut = base[: len(base) // 2]
            f1 = token_scores(base, cut)["f1"]
            check(0.4 < f1 < 0.8, f"half a page scores F1 {f1:.3f} (detects missing text)")

    # The set's truth must be what its text-layer PDFs carry.
    if set_dir:
        m = load_manifest(set_dir)
        worst = 0.0
        n = 0
        for it in m["items"]:
            if it["set"] == "aci_text":
                worst = max(worst, cer(it["truth"], pdftotext_page(it["abs"], it["page"]))[2])
                n += 1
        check(n > 0 and worst < 0.002, f"set truth vs pdftotext of the note PDFs: max CER {worst:.4%} over {n} pages")
        for it in m["items"]:
            if it["set"] == "filing_scan" and it["degradation"] == "clean":
                pdf = Path(DEFAULT_FINANCE) / it["source"]["pdf"]
                same = pdftotext_page(pdf, it["source"]["page"]) == it["truth"]
                check(same, f"filing truth == pdftotext for {it['source']['pdf']} p{it['source']['page']}")
                break
    print(f"\nself-test: {'all passed' if not failures else f'{len(failures)} failed'}")
    return 0 if not failures else 1


# ---------------------------------------------------------------- main

def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    ap.add_argument("--folio", default="build/app/folio", help="the folio executable (default build/app/folio)")
    ap.add_argument("--backend", choices=["folio", "reference"], default="folio")
    ap.add_argument("--finance", help=f"folder of text-layer PDFs (e.g. {DEFAULT_FINANCE})")
    ap.add_argument("--set", help="a folder built by tools/make_scan_set.py")
    ap.add_argument("--sections", default="text,aci,filings", help="subset of text,aci,filings")
    ap.add_argument("--jobs", type=int, default=0,
                    help="passed to folio ingest --jobs, and parallel show/pdftotext calls (default: cores)")
    ap.add_argument("--out", help="JSON results (default: $TMPDIR/folio-eval-<backend>.json)")
    ap.add_argument("--keep-libraries", action="store_true", help="keep the temporary libraries")
    ap.add_argument("--self-test", action="store_true", help="test the metrics (and --set's truth) and exit")
    args = ap.parse_args()

    if args.self_test:
        sys.exit(self_test(args.set))
    sections = set(args.sections.split(","))
    if not args.finance and not args.set:
        ap.error("give --finance and/or --set")
    if args.backend == "folio" and not (os.path.isfile(args.folio) and os.access(args.folio, os.X_OK)):
        sys.exit(f"eval_ingest: folio executable not found at {args.folio} (build it, or pass --folio)")
    folio = os.path.abspath(args.folio)
    jobs = args.jobs or os.cpu_count() or 1
    out = args.out or os.path.join(tempfile.gettempdir(), f"folio-eval-{args.backend}.json")
    root = tempfile.mkdtemp(prefix="folio-eval-")

    def backend(section):
        if args.backend == "reference":
            return ReferenceBackend(root)
        lib = os.path.join(root, f"library-{section}")
        os.makedirs(lib)
        return FolioCli(folio, lib, args.jobs or None)

    res = {"backend": args.backend, "folio": folio if args.backend == "folio" else None,
           "started": time.strftime("%Y-%m-%dT%H:%M:%S"), "thresholds": THRESHOLDS,
           "normalization": "see tools/eval_ingest.py module docstring"}
    try:
        if args.finance and "text" in sections:
            print(f"text-layer PDFs: {args.finance}", flush=True)
            res["text"] = eval_text_pdfs(backend("text"), args.finance, jobs)
        if args.set:
            manifest = load_manifest(args.set)
            res["set"] = {"dir": os.path.abspath(args.set), "seed": manifest.get("seed"),
                          "degradations": manifest.get("degradations")}
            if "aci" in sections:
                print(f"ACI scans: {args.set}", flush=True)
                res["aci"] = eval_aci(backend("aci"), manifest, jobs)
            if "filings" in sections:
                print(f"filing scans: {args.set}", flush=True)
                res["filings"] = eval_filing_scans(backend("filings"), manifest, jobs)
    finally:
        if args.keep_libraries:
            print(f"libraries kept in {root}")
        else:
            shutil.rmtree(root, ignore_errors=True)
    verdicts = [res[k]["pass"] for k in ("text",) if res.get(k)]
    if res.get("aci", {}).get("scans"):
        verdicts.append(res["aci"]["scans"]["pass"])
    if res.get("filings"):
        verdicts.append(res["filings"]["pass"])
    res["pass"] = all(verdicts)
    Path(out).write_text(json.dumps(res, indent=1, ensure_ascii=False), encoding="utf-8")
    print_report(res)
    print(f"\noverall: {verdict(res['pass'])}   results: {out}")
    sys.exit(0 if res["pass"] else 1)


if __name__ == "__main__":
    main()
