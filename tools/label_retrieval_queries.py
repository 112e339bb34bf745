#!/usr/bin/env python3
"""Labels Folio's retrieval query sets from the documents themselves.

A query line holds `id`, `domain` (finance | medical), `doc` (the file name of
the document that answers it), `query`, `evidence` (verbatim strings that
together answer the question; the first is the anchor), `type` and `lang`.
This tool adds what the evaluation scores against:

- finance: `pages`, the 1-based pages of `doc` whose text contains every
  evidence string (pdftotext, whitespace and case folded);
- medical: `section`, the heading of the note section that holds the anchor.

A query whose evidence is found nowhere, or on more than --max-pages pages, is
an error: its wording must be made more specific by hand.

Run (pdftotext from poppler-utils; no Python packages needed):
  tools/label_retrieval_queries.py label --corpus ../shared/corpus/finance \
      tests/data/retrieval/finance.jsonl --write
  tools/label_retrieval_queries.py export-notes ../shared/corpus/medical/aci-bench-train.csv OUT_DIR
  tools/label_retrieval_queries.py label --corpus OUT_DIR tests/data/retrieval/medical.jsonl --write
"""
import argparse
import csv
import json
import os
import re
import subprocess
import sys

# ACI-Bench notes mark sections with a heading line in capitals.
SECTION_HEADING = re.compile(r'^([A-Z][A-Z /&]{3,})$', re.M)


def fold(text):
    return re.sub(r'\s+', ' ', text).strip().lower()


def pdf_pages(path):
    text = subprocess.run(['pdftotext', '-layout', path, '-'], check=True, capture_output=True,
                          text=True).stdout
    pages = text.split('\f')
    if pages and not pages[-1].strip():
        pages.pop()
    return [fold(p) for p in pages]


def note_section(text, anchor):
    at = fold(text).find(fold(anchor))
    if at < 0:
        return None
    section = ''
    for heading in SECTION_HEADING.finditer(text):
        if len(fold(text[:heading.start()])) <= at:
            section = heading.group(1).strip()
    return section


def label(args):
    with open(args.queries, encoding='utf-8') as f:
        queries = [json.loads(line) for line in f if line.strip()]
    pages_cache = {}
    errors = 0
    for q in queries:
        path = os.path.join(args.corpus, q['doc'])
        if q['domain'] == 'finance':
            if path not in pages_cache:
                pages_cache[path] = pdf_pages(path)
            evidence = [fold(e) for e in q['evidence']]
            q['pages'] = [i + 1 for i, page in enumerate(pages_cache[path])
                          if all(e in page for e in evidence)]
            bad = not q['pages'] or len(q['pages']) > args.max_pages
        else:
            with open(path, encoding='utf-8') as f:
                text = f.read()
            missing = [e for e in q['evidence'] if fold(e) not in fold(text)]
            q['section'] = note_section(text, q['evidence'][0])
            bad = bool(missing) or q['section'] is None
        if bad:
            errors += 1
            print(f"{q['id']}: evidence {q['evidence']} -> {q.get('pages', q.get('section'))}", file=sys.stderr)
    if args.write and not errors:
        with open(args.queries, 'w', encoding='utf-8') as f:
            for q in queries:
                f.write(json.dumps(q, ensure_ascii=False) + '\n')
    print(f'{len(queries)} queries, {errors} unusable', file=sys.stderr)
    return 1 if errors else 0


def export_notes(args):
    csv.field_size_limit(1 << 30)
    os.makedirs(args.out, exist_ok=True)
    with open(args.csv, encoding='utf-8', newline='') as f:
        for row in csv.DictReader(f):
            if args.only and row['encounter_id'] not in args.only:
                continue
            with open(os.path.join(args.out, row['encounter_id'] + '.txt'), 'w', encoding='utf-8') as out:
                out.write(row['note'].strip() + '\n')
    return 0


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest='command', required=True)
    p = sub.add_parser('label', help='add pages / sections to a query file')
    p.add_argument('queries')
    p.add_argument('--corpus', required=True, help='folder holding the documents named by `doc`')
    p.add_argument('--max-pages', type=int, default=6)
    p.add_argument('--write', action='store_true', help='rewrite the query file when every query is usable')
    p.set_defaults(run=label)
    p = sub.add_parser('export-notes', help='write ACI-Bench notes as ENCOUNTER_ID.txt files')
    p.add_argument('csv')
    p.add_argument('out')
    p.add_argument('--only', nargs='*', help='encounter ids to export (default: all)')
    p.set_defaults(run=export_notes)
    args = parser.parse_args()
    return args.run(args)


if __name__ == '__main__':
    sys.exit(main())
