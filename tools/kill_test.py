#!/usr/bin/env python3
"""Kill test: SIGKILL `folio ingest` at random moments, check the library after
each kill, then re-run to completion.

  folio --library L ingest CORPUS --json      killed with SIGKILL after a seeded
                                               random delay, several times; each
                                               run resumes in the same library L

After each kill:
  1. the killed process's own workers (same session) must exit by themselves
     within --grace seconds; any left are reported and then killed by pid;
  2. `sqlite3 L/library.sqlite 'PRAGMA integrity_check'` prints "ok";
  3. no half-present document (SQL over the schema of index/library_store.cpp:
     documents(id, path, pages, status), pages(doc_id, number, text),
     chunks(doc_id), FTS5 chunks_fts; tables and columns are looked up by
     name): every indexed document row has page rows numbered exactly
     1..pages and, when its pages carry text, at least one chunk; no page or
     chunk row belongs to a missing document; no path is stored twice; FTS5's
     'integrity-check' passes;
  4. `folio --library L docs --json` works, and for each indexed document
     `show DOC_ID --page 1` and `--page PAGES` work (every page with
     --show-pages all).
Finally `folio ingest CORPUS` runs to completion (exit 0) and every PDF in
CORPUS is one indexed document whose page count equals pdfinfo's.

Kill moments: the first run (from an empty library) is timed in a scratch
library unless --duration is given; each kill delay is then drawn (seeded)
uniformly over the estimated remaining work (pages not yet indexed), with one
draw in four made in the first second (schema creation, the first
transaction). When a run finishes before its kill, the library is emptied so
the next kill again lands in work in progress.

Usage:
  tools/kill_test.py /work/shared/corpus/finance --folio build/app/folio \\
      [--kills 6] [--seed 1] [--jobs 2] [--duration SECONDS] [--out /tmp/folio-kill.json]
"""

import argparse
import json
import os
import random
import re
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from eval_ingest import pdfinfo_pages  # noqa: E402

SUPPORTED = {".pdf", ".png", ".jpg", ".jpeg", ".tif", ".tiff", ".txt", ".md"}


# ---------------------------------------------------------------- processes

def session_members(sid):
    """Pids of live processes in session `sid` (the killed folio's workers)."""
    pids = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        # fields after the ")" closing comm: state ppid pgrp session ...
        fields = stat[stat.rindex(")") + 2:].split()
        if fields[0] != "Z" and int(fields[3]) == sid:
            pids.append(int(entry))
    return pids


def start_ingest(args, library, log_path):
    cmd = [args.folio, "--library", library, "ingest", args.corpus, "--json"]
    if args.jobs:
        cmd += ["--jobs", str(args.jobs)]
    log = open(log_path, "w")
    # Own session, so its workers can be found (and only they) after the kill.
    proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    return proc, log


def kill_and_reap(proc, grace):
    """SIGKILL folio itself (not its workers: a crash does not kill them
    either); wait for the workers to notice; report and kill stragglers."""
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    deadline = time.monotonic() + grace
    left = session_members(proc.pid)
    while left and time.monotonic() < deadline:
        time.sleep(0.1)
        left = session_members(proc.pid)
    for pid in left:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    return left


def last_json_line(log_path):
    last = None
    try:
        for line in Path(log_path).read_text(errors="replace").splitlines():
            if line.startswith("{"):
                last = line
    except OSError:
        pass
    return last


# ---------------------------------------------------------------- checks

def integrity_check(db):
    r = subprocess.run(["sqlite3", str(db), "PRAGMA integrity_check"], capture_output=True, text=True)
    return (r.stdout.strip() or r.stderr.strip()), r.returncode


def find_schema(conn):
    """Table and column names of documents / pages / chunks, found by name so
    the check follows index/library_store.cpp without copying it."""
    tables = {}
    for (name, sql) in conn.execute("SELECT name, sql FROM sqlite_master WHERE type='table'"):
        if sql and "VIRTUAL TABLE" in sql.upper():
            continue
        tables[name] = [row[1] for row in conn.execute(f'PRAGMA table_info("{name}")')]

    def table(*names):
        for n in names:
            if n in tables:
                return n
        return None

    def column(tab, *names):
        for n in names:
            if n in tables[tab]:
                return n
        return None

    docs, pages, chunks = table("documents", "document"), table("pages", "page"), table("chunks", "chunk")
    if not (docs and pages and chunks):
        return None, f"tables not recognized: {sorted(tables)}"
    s = {
        "docs": docs, "pages": pages, "chunks": chunks,
        "doc_id": column(docs, "id", "doc_id", "document_id"),
        "doc_pages": column(docs, "pages", "page_count", "n_pages"),
        "doc_status": column(docs, "status"),
        "doc_path": column(docs, "path"),
        "page_doc": column(pages, "doc_id", "document_id"),
        "page_number": column(pages, "number", "page", "page_number"),
        "chunk_doc": column(chunks, "doc_id", "document_id"),
    }
    page_text = column(pages, "text")
    missing = [k for k, v in s.items() if v is None]
    if missing:
        return None, f"columns not recognized: {missing} in {tables}"
    fts = [n for (n, sql) in conn.execute("SELECT name, sql FROM sqlite_master WHERE type='table'")
           if sql and "USING FTS5" in sql.upper()]
    s["fts"] = fts
    s["page_text"] = page_text
    return s, None


def sql_completeness(db):
    """Problems (strings) and per-document facts, from the library itself."""
    problems = []
    conn = sqlite3.connect(str(db), timeout=30)
    try:
        s, why = find_schema(conn)
        if s is None:
            return [f"schema: {why}"], {}
        q = conn.execute
        docs = {}
        for doc_id, pages, status, path in q(
                f'SELECT "{s["doc_id"]}", "{s["doc_pages"]}", "{s["doc_status"]}", "{s["doc_path"]}" FROM "{s["docs"]}"'):
            docs[doc_id] = {"pages": pages, "status": str(status), "path": path}
        page_rows = {}
        for doc_id, n, lo, hi in q(f'SELECT "{s["page_doc"]}", COUNT(DISTINCT "{s["page_number"]}"), '
                                   f'MIN("{s["page_number"]}"), MAX("{s["page_number"]}") '
                                   f'FROM "{s["pages"]}" GROUP BY "{s["page_doc"]}"'):
            page_rows[doc_id] = (n, lo, hi)
        dup = q(f'SELECT COUNT(*) FROM (SELECT 1 FROM "{s["pages"]}" GROUP BY "{s["page_doc"]}", '
                f'"{s["page_number"]}" HAVING COUNT(*) > 1)').fetchone()[0]
        if dup:
            problems.append(f"{dup} (document, page) pairs stored more than once")
        chunk_rows = dict(q(f'SELECT "{s["chunk_doc"]}", COUNT(*) FROM "{s["chunks"]}" GROUP BY "{s["chunk_doc"]}"'))
        text_chars = {}
        if s["page_text"]:
            text_chars = dict(q(f'SELECT "{s["page_doc"]}", SUM(LENGTH("{s["page_text"]}")) FROM "{s["pages"]}" '
                                f'GROUP BY "{s["page_doc"]}"'))
        for doc_id, d in docs.items():
            indexed = d["status"].lower() in ("indexed", "0")
            n, lo, hi = page_rows.get(doc_id, (0, None, None))
            d.update(page_rows=n, chunk_rows=chunk_rows.get(doc_id, 0), indexed=indexed)
            if indexed:
                if n != d["pages"] or (n and (lo != 1 or hi != d["pages"])):
                    problems.append(f"half-present: doc {doc_id} {d['path']}: pages={d['pages']} "
                                    f"but page rows {n} (numbers {lo}..{hi})")
                # A document whose pages carry text must have chunks (one
                # with no text at all, e.g. blank scans, may have none).
                if d["pages"] and not d["chunk_rows"] and text_chars.get(doc_id, 1):
                    problems.append(f"half-present: doc {doc_id} {d['path']}: {d['pages']} pages, no chunks")
        for doc_id in set(page_rows) - set(docs):
            problems.append(f"orphan page rows for missing document {doc_id}")
        for doc_id in set(chunk_rows) - set(docs):
            problems.append(f"orphan chunk rows for missing document {doc_id}")
        paths = [d["path"] for d in docs.values()]
        if len(paths) != len(set(paths)):
            problems.append("a path is stored as more than one document")
        for fts in s["fts"]:
            try:
                # FTS5's own consistency check (index vs content); it writes nothing.
                q(f'INSERT INTO "{fts}"("{fts}") VALUES(\'integrity-check\')')
            except sqlite3.DatabaseError as e:
                problems.append(f"FTS5 {fts}: {e}")
        return problems, docs
    finally:
        conn.close()


def cli_check(args, library, show_pages):
    """Problems found through `docs` / `show`, and the docs lines."""
    problems = []
    r = subprocess.run([args.folio, "--library", library, "docs", "--json"], capture_output=True, text=True,
                       timeout=600)
    if r.returncode != 0:
        return [f"folio docs: rc {r.returncode}: {r.stderr.strip()[-300:]}"], []
    lines = [json.loads(line) for line in r.stdout.splitlines() if line.strip()]
    for d in lines:
        if d.get("status") != "indexed":
            continue
        pages = int(d["pages"])
        numbers = range(1, pages + 1) if show_pages == "all" else sorted({1, pages})
        for n in numbers:
            s = subprocess.run([args.folio, "--library", library, "show", str(d["doc_id"]), "--page", str(n),
                                "--json"], capture_output=True, text=True, timeout=600)
            if s.returncode != 0 or '"text"' not in s.stdout:
                problems.append(f"show {d['doc_id']} --page {n} ({d['path']}): rc {s.returncode} "
                                f"{s.stderr.strip()[-200:]}")
    return problems, lines


def check_library(args, library, show_pages):
    db = Path(library) / "library.sqlite"
    res = {"problems": []}
    if not db.exists():
        res["integrity"] = "no library.sqlite yet"
        return res
    res["integrity"], rc = integrity_check(db)
    if res["integrity"] != "ok" or rc != 0:
        res["problems"].append(f"integrity_check: {res['integrity'][:500]}")
    sql_problems, docs = sql_completeness(db)
    res["problems"] += sql_problems
    res["documents"] = len(docs)
    res["indexed"] = sum(1 for d in docs.values() if d.get("indexed"))
    res["indexed_pages"] = sum(d["pages"] or 0 for d in docs.values() if d.get("indexed"))
    cli_problems, lines = cli_check(args, library, show_pages)
    res["problems"] += cli_problems
    res["docs_lines"] = lines
    return res


# ---------------------------------------------------------------- main

def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    ap.add_argument("corpus", help="folder to ingest (e.g. /work/shared/corpus/finance)")
    ap.add_argument("--folio", default="build/app/folio")
    ap.add_argument("--library", help="library folder (default: a fresh temporary one; must be empty)")
    ap.add_argument("--kills", type=int, default=6)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--jobs", type=int, default=0, help="folio ingest --jobs (default: folio's)")
    ap.add_argument("--duration", type=float,
                    help="seconds a full ingest takes here (default: time one in a scratch library)")
    ap.add_argument("--grace", type=float, default=10.0, help="seconds workers get to exit after the kill")
    ap.add_argument("--show-pages", choices=["ends", "all"], default="ends")
    ap.add_argument("--timeout", type=float, default=4 * 3600, help="limit for a run to completion")
    ap.add_argument("--out", default=os.path.join(tempfile.gettempdir(), "folio-kill-test.json"))
    args = ap.parse_args()

    args.folio = os.path.abspath(args.folio)
    if not os.access(args.folio, os.X_OK):
        sys.exit(f"kill_test: folio executable not found at {args.folio}")
    if not shutil.which("sqlite3"):
        sys.exit("kill_test: sqlite3 CLI not found (apt-get install sqlite3)")
    args.corpus = os.path.abspath(args.corpus)
    files = sorted(p for p in Path(args.corpus).iterdir() if p.suffix.lower() in SUPPORTED)
    expected = {os.path.realpath(p): pdfinfo_pages(p) for p in files if p.suffix.lower() == ".pdf"}
    total_pages = sum(expected.values())
    work = tempfile.mkdtemp(prefix="folio-kill-")
    library = args.library or os.path.join(work, "library")
    os.makedirs(library, exist_ok=True)
    if any(Path(library).iterdir()):
        sys.exit(f"kill_test: {library} is not empty")
    rng = random.Random(args.seed)
    report = {"corpus": args.corpus, "files": len(files), "pdf_pages": total_pages, "seed": args.seed,
              "library": library, "rounds": [], "problems": []}

    if args.duration is None:
        scratch = os.path.join(work, "calibration")
        os.makedirs(scratch)
        print(f"calibration: full ingest of {args.corpus} into a scratch library ...", flush=True)
        t0 = time.monotonic()
        proc, log = start_ingest(args, scratch, os.path.join(work, "calibration.log"))
        try:
            rc = proc.wait(timeout=args.timeout)
        finally:
            log.close()
        args.duration = time.monotonic() - t0
        report["calibration"] = {"rc": rc, "seconds": round(args.duration, 2)}
        print(f"calibration: rc {rc}, {args.duration:.1f} s", flush=True)
        if rc != 0:
            report["problems"].append(f"calibration run (empty library, no kill) exited {rc}: "
                                      f"{Path(work, 'calibration.log').read_text(errors='replace')[-500:]}")
        shutil.rmtree(scratch, ignore_errors=True)

    indexed_pages = 0
    for k in range(1, args.kills + 1):
        remaining = args.duration * max(0.0, 1.0 - indexed_pages / max(1, total_pages))
        if rng.random() < 0.25:
            delay = rng.uniform(0.05, 1.0)
        else:
            delay = rng.uniform(0.05, max(1.0, remaining))
        log_path = os.path.join(work, f"round{k}.log")
        proc, log = start_ingest(args, library, log_path)
        rnd = {"round": k, "delay_s": round(delay, 3)}
        try:
            proc.wait(timeout=delay)
            rnd["finished_before_kill"] = True
            rnd["rc"] = proc.returncode
        except subprocess.TimeoutExpired:
            rnd["orphans"] = kill_and_reap(proc, args.grace)
            rnd["killed"] = True
        finally:
            log.close()
        rnd["last_event"] = last_json_line(log_path)
        check = check_library(args, library, args.show_pages)
        rnd.update({k2: v for k2, v in check.items() if k2 != "docs_lines"})
        if rnd.get("orphans"):
            rnd["problems"].append(f"{len(rnd['orphans'])} worker process(es) still running "
                                   f"{args.grace:.0f} s after folio was killed (then killed by pid)")
        if rnd.get("finished_before_kill") and rnd.get("rc") != 0:
            rnd["problems"].append(f"run exited {rnd['rc']} before its kill")
        report["rounds"].append(rnd)
        state = ("finished before the kill" if rnd.get("finished_before_kill")
                 else f"killed at {delay:.2f} s")
        print(f"round {k}: {state}; integrity {rnd['integrity']}; "
              f"{rnd.get('indexed', 0)}/{len(files)} documents indexed; "
              f"{len(rnd['problems'])} problem(s)", flush=True)
        for p in rnd["problems"]:
            print(f"   {p}")
        indexed_pages = rnd.get("indexed_pages", 0)
        if rnd.get("finished_before_kill") and k < args.kills:
            # Start over so the next kill lands in work again.
            shutil.rmtree(library)
            os.makedirs(library)
            indexed_pages = 0

    print("final: ingest to completion ...", flush=True)
    t0 = time.monotonic()
    proc, log = start_ingest(args, library, os.path.join(work, "final.log"))
    try:
        rc = proc.wait(timeout=args.timeout)
    finally:
        log.close()
    final = {"rc": rc, "seconds": round(time.monotonic() - t0, 2)}
    check = check_library(args, library, args.show_pages)
    final.update({k: v for k, v in check.items() if k != "docs_lines"})
    if rc != 0:
        final["problems"].append(f"final ingest exited {rc}: "
                                 f"{Path(work, 'final.log').read_text(errors='replace')[-500:]}")
    by_path = {}
    for d in check.get("docs_lines", []):
        by_path.setdefault(os.path.realpath(d["path"]), []).append(d)
    for path, pages in expected.items():
        ds = by_path.get(path, [])
        if len(ds) != 1:
            final["problems"].append(f"{path}: {len(ds)} documents (expected 1)")
        elif ds[0].get("status") != "indexed" or int(ds[0].get("pages", -1)) != pages:
            final["problems"].append(f"{path}: status {ds[0].get('status')}, pages {ds[0].get('pages')} "
                                     f"(pdfinfo {pages}), error {ds[0].get('error')!r}")
    final["documents_expected"] = len(files)
    report["final"] = final
    print(f"final: rc {rc}, {final['seconds']} s; integrity {final.get('integrity')}; "
          f"{final.get('indexed', 0)}/{len(files)} indexed; {len(final['problems'])} problem(s)")
    for p in final["problems"]:
        print(f"   {p}")

    killed = sum(1 for r in report["rounds"] if r.get("killed"))
    all_problems = report["problems"] + [p for r in report["rounds"] for p in r["problems"]] + final["problems"]
    report["killed_rounds"] = killed
    report["pass"] = not all_problems and killed > 0
    Path(args.out).write_text(json.dumps(report, indent=1), encoding="utf-8")
    print(f"\n{killed} of {args.kills} rounds killed mid-ingest; "
          f"{'PASS' if report['pass'] else 'FAIL'}; report {args.out}; logs in {work}")
    sys.exit(0 if report["pass"] else 1)


if __name__ == "__main__":
    main()
