#!/usr/bin/env python3
"""Builds the OCR evaluation sets with known text into a folder outside the repo.

(a) ACI-Bench clinical notes (CC BY 4.0) laid out as clinical-note PDFs with a
    text layer (title, encounter line, section headings, wrapped paragraphs,
    bullet lists, page footer), then rasterized with pdftoppm and turned into
    image-only "scans": clean 300 DPI and degraded variants. The truth of each
    page is exactly the text drawn on it.
(b) A seeded sample of SEC filing pages rasterized at 300 DPI, clean and
    degraded, with `pdftotext -f N -l N` (default mode) of the page as truth.

Degradations (each applied alone to a 300-DPI render, except dpi200):
    clean    300 DPI, lossless
    rot90    rotated 90 degrees counter-clockwise (a page fed sideways)
    rot180   upside down
    skew2    rotated 2 degrees (sign seeded per page), white fill
    noise    Gaussian noise sigma 10 (of 255) plus 0.2 % salt-and-pepper pixels
    jpeg60   JPEG quality 60 (a .jpg file, or a DCT image inside a PDF)
    dpi200   rendered at 200 DPI, lossless

Scan files rotate through the formats Folio ingests (image-only PDF, multi-page
TIFF, one PNG per page), so every degradation is seen in every container.

Output (OUT given on the command line):
    manifest.json                 {"items": [...]} one item per (file, page)
    aci/text/<ID>.pdf             note PDF with a text layer
    aci/scans/<deg>/<ID>.{pdf,tif} or <ID>_p<N>.{png,jpg}
    filings/scans/<deg>/<FILING>_p<N>.{pdf,tif,png,jpg}
    truth/...                     each item's truth text as a .txt file

A manifest item: set ("aci_text" | "aci_scan" | "filing_scan"), file (relative
to OUT), page (1-based page within that file), degradation, dpi, format,
truth (the text), truth_file, source ({"note_id", "page"} or {"pdf", "page"}).

Usage:
    pip install -r tools/requirements.txt
    tools/make_scan_set.py /tmp/folio-scanset [--notes 12] [--filing-pages 30] [--seed 20240611]
    tools/make_scan_set.py tests/data/ocr_quality --ci-sample    (regenerates the committed CI sample)
"""

import argparse
import csv
import json
import os
import random
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
from PIL import Image
from reportlab.lib.pagesizes import letter
from reportlab.lib.utils import simpleSplit
from reportlab.pdfbase import pdfmetrics
from reportlab.pdfbase.ttfonts import TTFont
from reportlab.pdfgen import canvas

DEFAULT_ACI_CSV = "/work/shared/corpus/medical/aci-bench-train.csv"
DEFAULT_FINANCE = "/work/shared/corpus/finance"
DEGRADATIONS = ["clean", "rot90", "rot180", "skew2", "noise", "jpeg60", "dpi200"]
SCAN_FORMATS = ["pdf", "tiff", "png"]

NOISE_SIGMA = 10.0          # Gaussian noise, grey levels of 255
SALT_PEPPER_FRACTION = 0.002
SKEW_DEGREES = 2.0
JPEG_QUALITY = 60

FONT_DIR = Path("/usr/share/fonts/truetype/dejavu")


def register_fonts():
    """Embedded DejaVu TrueType fonts so every renderer draws the same glyphs
    (the base-14 fonts are not embedded and get substituted differently).
    Returns the (body, sans, sans bold) font names."""
    faces = {"NoteSerif": "DejaVuSerif.ttf", "NoteSans": "DejaVuSans.ttf",
             "NoteSansBold": "DejaVuSans-Bold.ttf"}
    if not all((FONT_DIR / f).exists() for f in faces.values()):
        sys.exit(f"make_scan_set: DejaVu fonts not found in {FONT_DIR} (apt-get install fonts-dejavu-core)")
    for name, file in faces.items():
        pdfmetrics.registerFont(TTFont(name, str(FONT_DIR / file)))
    return "NoteSerif", "NoteSans", "NoteSansBold"


# ---------------------------------------------------------------- note layout

def is_heading(line):
    s = line.strip()
    return (len(s) <= 40 and s == s.upper() and re.search(r"[A-Z]", s) is not None
            and not re.search(r"\d", s) and not s.endswith(".") and not s.startswith(("•", "-")))


def note_blocks(note):
    """The note as (kind, text) blocks: heading, bullet or paragraph."""
    blocks = []
    for raw in note.replace("\r\n", "\n").split("\n"):
        line = raw.strip()
        if not line:
            continue
        if is_heading(line):
            blocks.append(("heading", line))
        elif line.startswith("•"):
            blocks.append(("bullet", line[1:].strip()))
        else:
            blocks.append(("paragraph", line))
    return blocks


class NotePdf:
    """Lays out one note on US Letter pages and records the text of each page.

    Page text: lines joined by '\\n', blocks separated by a blank line, a bullet
    line starting with '• ', the footer as the last block. Laid out twice: once
    to count the pages, then again with "Page i of n" footers (the layout is
    deterministic, so both passes break pages at the same lines)."""

    MARGIN = 72.0
    BODY_SIZE, LEADING = 10.5, 14.0
    TITLE_SIZE = 15.0
    FOOTER_SIZE = 8.5
    BULLET_INDENT, TEXT_INDENT = 8.0, 20.0

    def __init__(self, path, note_id, fonts, total_pages):
        self.body, self.sans, self.bold = fonts
        self.note_id = note_id
        self.total_pages = total_pages
        self.width, self.height = letter
        self.canvas = canvas.Canvas(str(path), pagesize=letter, invariant=1)
        self.canvas.setTitle(f"Clinic visit note {note_id}")
        self.canvas.setAuthor("ACI-Bench (CC BY 4.0), laid out by Folio tools/make_scan_set.py")
        self.pages = []          # finished pages: list of blocks, a block a list of lines
        self.current = []
        self.y = self.height - self.MARGIN

    def footer(self, page):
        return f"Encounter {self.note_id} - Page {page} of {self.total_pages}"

    def _space_for(self, n_lines, extra=0.0):
        bottom = self.MARGIN + 24  # room for the footer
        return self.y - n_lines * self.LEADING - extra >= bottom

    def _close_page(self):
        number = len(self.pages) + 1
        if self.total_pages is not None:
            self.canvas.setFont(self.sans, self.FOOTER_SIZE)
            self.canvas.drawCentredString(self.width / 2, self.MARGIN - 24, self.footer(number))
            self.current.append([self.footer(number)])
        self.pages.append(self.current)
        self.current = []
        self.canvas.showPage()
        self.y = self.height - self.MARGIN

    def _draw_lines(self, lines, font, size, x, first_x=None, prefix=None):
        block = []
        for i, line in enumerate(lines):
            if not self._space_for(1):
                if block:
                    self.current.append(block)
                    block = []
                self._close_page()
            self.y -= self.LEADING
            self.canvas.setFont(font, size)
            if i == 0 and prefix is not None:
                self.canvas.drawString(first_x, self.y, prefix)
                block.append(f"{prefix} {line}")
            else:
                block.append(line)
            self.canvas.drawString(x, self.y, line)
        if block:
            self.current.append(block)

    def title(self, text, subtitle):
        self.y -= self.TITLE_SIZE
        self.canvas.setFont(self.bold, self.TITLE_SIZE)
        self.canvas.drawString(self.MARGIN, self.y, text)
        self.y -= self.LEADING
        self.canvas.setFont(self.sans, 9.5)
        self.canvas.drawString(self.MARGIN, self.y, subtitle)
        self.y -= 6
        self.canvas.setLineWidth(0.8)
        self.canvas.line(self.MARGIN, self.y, self.width - self.MARGIN, self.y)
        self.y -= 4
        self.current.append([text, subtitle])

    def heading(self, text):
        if not self._space_for(3, 8):  # keep a heading with its first lines
            self._close_page()
        self.y -= 8
        self._draw_lines([text], self.bold, self.BODY_SIZE, self.MARGIN)

    def paragraph(self, text):
        width = self.width - 2 * self.MARGIN
        self.y -= 4
        self._draw_lines(simpleSplit(text, self.body, self.BODY_SIZE, width),
                         self.body, self.BODY_SIZE, self.MARGIN)

    def bullet(self, text):
        width = self.width - 2 * self.MARGIN - self.TEXT_INDENT
        self.y -= 2
        self._draw_lines(simpleSplit(text, self.body, self.BODY_SIZE, width),
                         self.body, self.BODY_SIZE, self.MARGIN + self.TEXT_INDENT,
                         first_x=self.MARGIN + self.BULLET_INDENT, prefix="•")

    def finish(self):
        """Closes the last page and saves; returns the pages' text."""
        self._close_page()
        self.canvas.save()
        return ["\n\n".join("\n".join(lines) for lines in blocks) for blocks in self.pages]


def render_note_pdf(path, note_id, dataset, note, fonts):
    """Writes the note PDF; returns the truth text of each page."""
    def layout(total_pages):
        doc = NotePdf(path, note_id, fonts, total_pages)
        doc.title("Clinic Visit Note", f"Encounter {note_id}    Source: ACI-Bench ({dataset})")
        for kind, text in note_blocks(note):
            getattr(doc, kind)(text)
        return doc.finish()

    total = len(layout(None))
    texts = layout(total)
    if len(texts) != total:
        raise RuntimeError(f"{note_id}: layout not deterministic ({total} then {len(texts)} pages)")
    return texts


# ---------------------------------------------------------------- rasters

def run(cmd, **kw):
    return subprocess.run(cmd, check=True, capture_output=True, text=True, **kw)


def pdf_page_count(pdf):
    out = run(["pdfinfo", str(pdf)]).stdout
    m = re.search(r"^Pages:\s+(\d+)", out, re.M)
    if not m:
        raise RuntimeError(f"pdfinfo gave no page count for {pdf}")
    return int(m.group(1))


def rasterize(pdf, page, dpi, workdir):
    """One page as an 8-bit grayscale PIL image (pdftoppm, antialiased)."""
    prefix = Path(workdir) / f"r{page}_{dpi}"
    run(["pdftoppm", "-f", str(page), "-l", str(page), "-r", str(dpi), "-gray",
         "-png", "-singlefile", str(pdf), str(prefix)])
    img = Image.open(f"{prefix}.png")
    img.load()
    return img.convert("L")


def degrade(img, degradation, rng):
    """Applies one degradation to a 300-DPI grayscale page (dpi200 is made by
    rendering, jpeg60 by the encoder)."""
    if degradation == "rot90":
        return img.transpose(Image.Transpose.ROTATE_90)
    if degradation == "rot180":
        return img.transpose(Image.Transpose.ROTATE_180)
    if degradation == "skew2":
        sign = rng.choice([-1, 1])
        return img.rotate(sign * SKEW_DEGREES, resample=Image.Resampling.BICUBIC,
                          expand=False, fillcolor=255)
    if degradation == "noise":
        seed = rng.randrange(2**32)
        nrng = np.random.default_rng(seed)
        a = np.asarray(img, dtype=np.float32)
        a = a + nrng.normal(0.0, NOISE_SIGMA, a.shape)
        mask = nrng.random(a.shape)
        a[mask < SALT_PEPPER_FRACTION / 2] = 0
        a[mask > 1 - SALT_PEPPER_FRACTION / 2] = 255
        return Image.fromarray(np.clip(a, 0, 255).astype(np.uint8), "L")
    return img


def write_scan(pages, dpi, degradation, fmt, out_stem):
    """Writes page images as one scan file (pdf, tiff) or one file per page
    (png/jpg; "_p<N>" added when there are several). Returns
    [(path, page_in_file)] aligned with `pages`."""
    out_stem.parent.mkdir(parents=True, exist_ok=True)
    jpeg = degradation == "jpeg60"
    if fmt == "tiff" and jpeg:
        fmt = "png"  # JPEG-in-TIFF is exotic; a q60 scan is a .jpg (or a DCT image in a PDF)
    if fmt == "png":
        paths = []
        for i, img in enumerate(pages, start=1):
            name = out_stem.name if len(pages) == 1 else f"{out_stem.name}_p{i}"
            if jpeg:
                p = out_stem.with_name(f"{name}.jpg")
                img.save(p, "JPEG", quality=JPEG_QUALITY, dpi=(dpi, dpi))
            else:
                p = out_stem.with_name(f"{name}.png")
                img.save(p, "PNG", optimize=True, dpi=(dpi, dpi))
            paths.append((p, 1))
        return paths
    if fmt == "tiff":
        p = out_stem.with_suffix(".tif")
        pages[0].save(p, "TIFF", save_all=True, append_images=pages[1:],
                      compression="tiff_deflate", dpi=(dpi, dpi))
        return [(p, i) for i in range(1, len(pages) + 1)]
    # Image-only PDF: each page exactly the image at its DPI. reportlab embeds a
    # PNG losslessly (Flate) and passes a JPEG file through unchanged (DCT).
    p = out_stem.with_suffix(".pdf")
    with tempfile.TemporaryDirectory() as tmp:
        c = canvas.Canvas(str(p), invariant=1)
        for i, img in enumerate(pages, start=1):
            w_pt, h_pt = img.width * 72.0 / dpi, img.height * 72.0 / dpi
            src = Path(tmp) / (f"{i}.jpg" if jpeg else f"{i}.png")
            if jpeg:
                img.save(src, "JPEG", quality=JPEG_QUALITY)
            else:
                img.save(src, "PNG")
            c.setPageSize((w_pt, h_pt))
            c.drawImage(str(src), 0, 0, width=w_pt, height=h_pt)
            c.showPage()
        c.save()
    return [(p, i) for i in range(1, len(pages) + 1)]


def scan_variants(pdf, pages, degradations, rng, workdir):
    """Yields (degradation, dpi, [PIL image per page]) for the given pages."""
    clean300 = {n: rasterize(pdf, n, 300, workdir) for n in pages}
    for deg in degradations:
        if deg == "dpi200":
            yield deg, 200, [rasterize(pdf, n, 200, workdir) for n in pages]
        else:
            yield deg, 300, [degrade(clean300[n], deg, rng) for n in pages]


# ---------------------------------------------------------------- sets

def write_truth(out, rel, text):
    p = out / "truth" / rel
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_text(text, encoding="utf-8")
    return str(p.relative_to(out))


def build_aci(out, args, rng, items):
    fonts = register_fonts()
    with open(args.aci_csv, newline="", encoding="utf-8") as f:
        rows = sorted(csv.DictReader(f), key=lambda r: r["encounter_id"])
    chosen = sorted(rng.sample(rows, min(args.notes, len(rows))), key=lambda r: r["encounter_id"])
    for k, row in enumerate(chosen):
        note_id = row["encounter_id"]
        pdf = out / "aci" / "text" / f"{note_id}.pdf"
        pdf.parent.mkdir(parents=True, exist_ok=True)
        truths = render_note_pdf(pdf, note_id, row["dataset"], row["note"], fonts)
        n_pages = pdf_page_count(pdf)
        if n_pages != len(truths):
            raise RuntimeError(f"{pdf}: {n_pages} pages, layout recorded {len(truths)}")
        for page, truth in enumerate(truths, start=1):
            items.append({"set": "aci_text", "file": str(pdf.relative_to(out)), "page": page,
                          "degradation": "text-layer", "dpi": 0, "format": "pdf", "truth": truth,
                          "truth_file": write_truth(out, f"aci/{note_id}_p{page}.txt", truth),
                          "source": {"note_id": note_id, "page": page}})
        fmt = SCAN_FORMATS[k % len(SCAN_FORMATS)]
        with tempfile.TemporaryDirectory() as tmp:
            page_numbers = list(range(1, n_pages + 1))
            for deg, dpi, images in scan_variants(pdf, page_numbers, args.degradations, rng, tmp):
                stem = out / "aci" / "scans" / deg / note_id
                for (path, in_file), page in zip(write_scan(images, dpi, deg, fmt, stem), page_numbers):
                    items.append({"set": "aci_scan", "file": str(path.relative_to(out)), "page": in_file,
                                  "degradation": deg, "dpi": dpi, "format": path.suffix[1:],
                                  "truth": truths[page - 1],
                                  "truth_file": f"truth/aci/{note_id}_p{page}.txt",
                                  "source": {"note_id": note_id, "page": page}})
        print(f"aci: {note_id} ({n_pages} pages, scans as {fmt})", flush=True)


def pdftotext_page(pdf, page):
    return run(["pdftotext", "-f", str(page), "-l", str(page), str(pdf), "-"]).stdout


def build_filings(out, args, rng, items):
    pdfs = sorted(Path(args.finance).glob("*.pdf"))
    if not pdfs:
        sys.exit(f"make_scan_set: no PDFs in {args.finance}")
    # Stratified sample: every filing gets floor(n/9) pages, the rest drawn at
    # random; only pages with a body of text (>= 100 alphanumeric tokens), since
    # a near-blank separator or cover page measures next to nothing.
    per_pdf = {p: pdf_page_count(p) for p in pdfs}
    base, extra = divmod(args.filing_pages, len(pdfs))
    quota = {p: base for p in pdfs}
    for p in rng.sample(pdfs, extra):
        quota[p] += 1
    sample = []
    for p in pdfs:
        candidates = list(range(1, per_pdf[p] + 1))
        rng.shuffle(candidates)
        taken = 0
        for page in candidates:
            if taken == quota[p]:
                break
            text = pdftotext_page(p, page)
            if len(re.findall(r"[^\W_]+", text)) >= 100:
                sample.append((p, page, text))
                taken += 1
    sample.sort(key=lambda s: (s[0].name, s[1]))
    for k, (pdf, page, truth) in enumerate(sample):
        name = f"{pdf.stem}_p{page}"
        truth_file = write_truth(out, f"filings/{name}.txt", truth)
        fmt = SCAN_FORMATS[k % len(SCAN_FORMATS)]
        with tempfile.TemporaryDirectory() as tmp:
            for deg, dpi, images in scan_variants(pdf, [page], args.degradations, rng, tmp):
                stem = out / "filings" / "scans" / deg / name
                for path, in_file in write_scan(images, dpi, deg, fmt, stem):
                    items.append({"set": "filing_scan", "file": str(path.relative_to(out)), "page": in_file,
                                  "degradation": deg, "dpi": dpi, "format": path.suffix[1:],
                                  "truth": truth, "truth_file": truth_file,
                                  "source": {"pdf": pdf.name, "page": page}})
        print(f"filings: {name} (scans as {fmt})", flush=True)


# The committed CI sample (tests/data/ocr_quality, used by
# tests/ingest/tst_ocr_quality.cpp): (set, source, page, degradation). Notes not
# in the default evaluation sample; rot90/rot180/skew2/noise variants are made
# by the test from the clean scans, so only these files are stored.
CI_SAMPLE = [
    ("aci", "D2N001", 1, "clean"),
    ("aci", "D2N009", 1, "clean"),
    ("aci", "D2N005", 1, "jpeg60"),
    ("aci", "D2N020", 1, "dpi200"),
    ("filing", "APPLE_2021_10K.pdf", 40, "clean"),
    ("filing", "APPLE_2021_10K.pdf", 40, "dpi200"),
]


def build_ci_sample(out, args):
    """Writes CI_SAMPLE as <set>_<source>_p<N>.<degradation>.{png,jpg} with the
    page's truth in <set>_<source>_p<N>.txt."""
    fonts = register_fonts()
    with open(args.aci_csv, newline="", encoding="utf-8") as f:
        rows = {r["encounter_id"]: r for r in csv.DictReader(f)}
    out.mkdir(parents=True, exist_ok=True)
    rng = random.Random(f"ci-{args.seed}")
    with tempfile.TemporaryDirectory() as tmp:
        for kind, source, page, deg in CI_SAMPLE:
            if kind == "aci":
                pdf = Path(tmp) / f"{source}.pdf"
                truths = render_note_pdf(pdf, source, rows[source]["dataset"], rows[source]["note"], fonts)
                truth = truths[page - 1]
                stem = f"aci_{source}_p{page}"
            else:
                pdf = Path(args.finance) / source
                truth = pdftotext_page(pdf, page)
                stem = f"filing_{Path(source).stem}_p{page}"
            (out / f"{stem}.txt").write_text(truth, encoding="utf-8")
            _, dpi, images = next(scan_variants(pdf, [page], [deg], rng, tmp))
            (path, _), = write_scan(images, dpi, deg, "png", out / f"{stem}.{deg}")
            print(f"{path.name}: {path.stat().st_size // 1024} KiB")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("out", help="output folder (outside the repository); created, must be empty")
    ap.add_argument("--notes", type=int, default=12, help="ACI notes to render (default 12)")
    ap.add_argument("--filing-pages", type=int, default=30, help="filing pages to scan (default 30)")
    ap.add_argument("--seed", type=int, default=20240611)
    ap.add_argument("--aci-csv", default=DEFAULT_ACI_CSV)
    ap.add_argument("--finance", default=DEFAULT_FINANCE)
    ap.add_argument("--degradations", default=",".join(DEGRADATIONS),
                    help=f"comma list from {','.join(DEGRADATIONS)}")
    ap.add_argument("--only", choices=["aci", "filings"], help="build one set only")
    ap.add_argument("--ci-sample", action="store_true",
                    help="write the committed CI sample instead (OUT = tests/data/ocr_quality)")
    args = ap.parse_args()
    args.degradations = [d for d in args.degradations.split(",") if d]
    unknown = set(args.degradations) - set(DEGRADATIONS)
    if unknown:
        ap.error(f"unknown degradation(s): {', '.join(sorted(unknown))}")
    for tool in ("pdftoppm", "pdftotext", "pdfinfo"):
        if not shutil.which(tool):
            sys.exit(f"make_scan_set: {tool} not found (apt-get install poppler-utils)")

    out = Path(args.out).resolve()
    if args.ci_sample:
        build_ci_sample(out, args)
        return
    repo = Path(__file__).resolve().parent.parent
    if out == repo or repo in out.parents:
        sys.exit("make_scan_set: write the set outside the repository")
    if out.exists() and any(out.iterdir()):
        sys.exit(f"make_scan_set: {out} is not empty")
    out.mkdir(parents=True, exist_ok=True)

    items = []
    # Separate generators so changing one set's size leaves the other unchanged.
    if args.only in (None, "aci"):
        build_aci(out, args, random.Random(f"aci-{args.seed}"), items)
    if args.only in (None, "filings"):
        build_filings(out, args, random.Random(f"filings-{args.seed}"), items)

    manifest = {
        "version": 1,
        "seed": args.seed,
        "degradations": {
            "clean": "300 DPI, lossless",
            "rot90": "300 DPI rotated 90 degrees counter-clockwise",
            "rot180": "300 DPI rotated 180 degrees",
            "skew2": f"300 DPI rotated +/-{SKEW_DEGREES} degrees, white fill",
            "noise": f"300 DPI + Gaussian noise sigma {NOISE_SIGMA}/255 + {SALT_PEPPER_FRACTION:.1%} salt-and-pepper",
            "jpeg60": f"300 DPI JPEG quality {JPEG_QUALITY}",
            "dpi200": "200 DPI, lossless",
            "text-layer": "the note PDF itself (text layer, no OCR)",
        },
        "sources": {
            "aci": f"{args.aci_csv} column note (ACI-Bench, CC BY 4.0)",
            "filings": f"{args.finance} (SEC EDGAR filings), truth = pdftotext -f N -l N",
        },
        "items": items,
    }
    (out / "manifest.json").write_text(json.dumps(manifest, indent=1, ensure_ascii=False), encoding="utf-8")
    counts = {}
    for it in items:
        counts[(it["set"], it["degradation"])] = counts.get((it["set"], it["degradation"]), 0) + 1
    for (s, d), n in sorted(counts.items()):
        print(f"{s:12} {d:11} {n:4} pages")
    print(f"wrote {out / 'manifest.json'} ({len(items)} pages)")


if __name__ == "__main__":
    main()
