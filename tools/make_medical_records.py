#!/usr/bin/env python3
"""Builds the medical-record extraction evaluation set (issue 9) from ACI-Bench.

Input: the ACI-Bench train split (67 notes; CC BY 4.0), a CSV with columns
dataset, encounter_id, dialogue, note.

Output (OUT, default /work/eval/medical, outside the repository):
    pdf/<encounter_id>.pdf     all 67 notes as clinic-note PDFs with a real text
                               layer (US Letter, 1-3 pages; the note text as is,
                               section headings bold, a "Clinic Visit Note /
                               Encounter <id>" title and a page footer; no
                               patient header block, since the notes have none)
    scan/<encounter_id>.pdf    a seeded sample of notes (--scans, default 24) as
                               degraded image-only PDFs (one JPEG page image per
                               page), which Folio's ingest OCRs
    truth.jsonl                one line per note (the same file as the repo's
                               tests/data/medical_records/truth.jsonl)
and, in the repository, the medical pack's evaluation set
(domain_packs/medical/eval/, --pack-eval): the held-out notes' truth in the
pack schema's shape (see its README.md).
    manifest.json              per file: kind, pages, bytes, scan parameters
    LICENSE-CC-BY-4.0.txt      the data licence

Degradation of a scan page (all applied, parameters drawn per page from the
seeded RNG): rendered with pdftoppm at 200-300 DPI in grey; rotated 0.5-2.0
degrees either way (white fill); uneven brightness (a smooth illumination
field, 72-100 % with a darker corner or edge, and a slightly grey paper);
speckle (Gaussian noise sigma 5-10 plus 0.05-0.2 % salt-and-pepper pixels and
20-80 small dark specks); Gaussian blur radius 0.6-1.2 px (the scanner's
optics, applied after the noise); JPEG quality 45-70 (the JPEG is what the PDF
carries, so the artefacts are real).

Truth (the acceptance says "against the notes' text"; every value is read off
the note by the rules below, never from the dialogue):
    patient_name  the subject of the first "<Name> is a [pleasant] NN-year-old"
                  sentence anywhere in the note (HPI or ASSESSMENT AND PLAN),
                  honorific (Mr./Ms./Mrs./Miss/Dr.) removed; when several such
                  sentences name the patient, the longest name (the A&P often
                  has "Mr. Joseph Fisher" where the HPI has "Mr. Fisher").
                  Fallback: the first "Mr./Ms./Mrs. <Surname>" in the note.
                  null when the note names nobody ("The patient is a ...").
    age           NN of the first "NN-year-old" / "NN y.o." in the note; null
                  when absent.
    sex           "female"/"male" from the word after that age ("a 50-year-old
                  female"); otherwise from the pronouns of the note (she/her vs
                  he/him/his, the majority if it is at least 3:1); else null.
    chief_complaint  the CHIEF COMPLAINT (or "CC:") section text, its lines
                  joined with "; ", final period removed; null when the note has
                  no such section (4 notes).
    medications   drug names (from the curated DRUGS list below: generic and
                  brand names, plus a few supplements) mentioned in the
                  MEDICATIONS / CURRENT MEDICATIONS section or in ASSESSMENT AND
                  PLAN / ASSESSMENT / PLAN / IMPRESSION, as written (first
                  spelling seen), de-duplicated case-insensitively, in order of
                  first mention. Classes ("anti-inflammatories", "NSAID",
                  "antibiotics", "steroid") are not names and are left out;
                  a drug the plan stops is still a drug named in the note.
    diagnoses     the problems of ASSESSMENT AND PLAN, else ASSESSMENT, else
                  IMPRESSION: numbered items ("1. Right knee pain."), bullet
                  items ("• Hypogonadism.") that are not "Label: text" lines,
                  and short stand-alone lines (<= 14 words, no "Label:" prefix)
                  that are not the summary sentence ("... is a NN-year-old ...")
                  nor boilerplate ("Patient Agreements: ...", "All questions
                  ..."); final period removed.
    OVERRIDES     one note (D2N029) whose ASSESSMENT AND PLAN is prose gets its
                  problem by hand ("Melanoma").
    (Before the medical pack's schema named them diagnoses, issue 9's truth
    called the problems "assessment"; tools/eval_extraction.py reads both.)

Held out: the notes whose number is a multiple of 4 (D2N004, D2N008, ...,
16 notes) form the pack's evaluation set; an adapter trained for the pack
must not see them.

Usage:
    python3 tools/make_medical_records.py [--csv PATH] [--out /work/eval/medical]
        [--scans 24] [--seed 9] [--ci tests/data/medical_records]
        [--pack-eval domain_packs/medical/eval] [--truth-only]
Needs reportlab, pillow, numpy (tools/requirements.txt) and poppler-utils
(pdftoppm, pdfinfo); reuses the note layout of tools/make_scan_set.py.
"""

import argparse
import csv
import io
import json
import os
import random
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
DEFAULT_CSV = REPO.parent / "shared/corpus/medical/aci-bench-train.csv"
DEFAULT_LICENSE_NAME = "LICENSE-CC-BY-4.0.txt"

# ------------------------------------------------------------------ truth rules

HEADINGS = {
    "CHIEF COMPLAINT", "CC", "HISTORY OF PRESENT ILLNESS", "HPI", "REVIEW OF SYSTEMS",
    "PHYSICAL EXAM", "PHYSICAL EXAMINATION", "EXAM", "RESULTS", "ASSESSMENT AND PLAN",
    "ASSESSMENT", "PLAN", "IMPRESSION", "INSTRUCTIONS", "SOCIAL HISTORY", "VITALS",
    "VITALS REVIEWED", "MEDICATIONS", "CURRENT MEDICATIONS", "MEDICAL HISTORY",
    "PAST MEDICAL HISTORY", "FAMILY HISTORY", "PAST HISTORY", "ALLERGIES",
    "SURGICAL HISTORY", "PROCEDURE",
}

# Curated drug names (lower case). Generic and brand names that occur in the
# ACI-Bench notes, plus common ones so a rule change does not silently miss a
# drug. Multi-word names are matched as phrases.
DRUGS = """
acetaminophen advil albuterol aldactone allopurinol amlodipine amoxicillin aspirin
atorvastatin atrovent augmentin azithromycin benzoyl peroxide brilinta bumex buspar
buspirone carafate cardura carvedilol celebrex cialis cipro ciprofloxacin cisplatin
clindamycin clobetasol clopidogrel co-q 10 colchicine combivent cozaar cyclosporine
digoxin doxazosin effexor eliquis elderberry fish oil finasteride flexeril flomax
fluoxetine furosemide gabapentin glipizide humira hydrochlorothiazide hydrocodone
ibuprofen imitrex insulin jardiance keflex keppra lasix levetiracetam levothyroxine
lidocaine lipitor lisinopril lortab losartan meloxicam mederma metformin methotrexate
metoprolol miralax mobic montelukast motrin multi-vitamin multivitamin naprosyn
naproxen neurontin nitroglycerin norvasc omeprazole ozempic oxycodone pantoprazole
plavix prednisone prilosec protonix prozac sertraline simvastatin singulair
spironolactone sucralfate sumatriptan synthroid tacrolimus tamsulosin taxol
testosterone cypionate testosterone toprol torsemide tramadol tylenol ultram unithroid
vitamin c vitamin d xarelto zoloft zyrtec claritin flonase
dexamethasone celestone penicillin methylprednisolone olmesartan betamethasone
progesterone cortisone magnesium crestor microgestin phexxi symbicort t/gel indole-3-carbinol
""".split("\n")
DRUG_PHRASES = ["benzoyl peroxide", "co-q 10", "fish oil", "testosterone cypionate",
                "vitamin c", "vitamin d", "t/gel", "indole-3-carbinol"]
DRUG_WORDS = set(w for line in DRUGS for w in line.split()) - {
    "benzoyl", "peroxide", "co-q", "10", "fish", "oil", "cypionate", "vitamin", "c", "d",
    "t/gel", "indole-3-carbinol"}

MED_SECTIONS = ("MEDICATIONS", "CURRENT MEDICATIONS")
PLAN_SECTIONS = ("ASSESSMENT AND PLAN", "ASSESSMENT", "PLAN", "IMPRESSION")

AGE_SEX = re.compile(r"\b(\d{1,3})(?:-year-old| y\.o\.|-years-old| year old)(?:,? [a-z-]+)*?,? (female|male|woman|man|girl|boy)\b")
AGE = re.compile(r"\b(\d{1,3})(?:-year-old| y\.o\.|-years-old| year old)")
NAME_SENT = re.compile(
    r"(?:^|(?<=[.\n]) ?)((?:(?:Mr|Ms|Mrs|Dr)\.? |Miss )?[A-Z][a-z]+(?: [A-Z][a-z]+)*) is an? "
    r"(?:very )?(?:pleasant )?\d{1,3}(?:-year-old| y\.o\.)", re.M)
HONORIFIC = re.compile(r"^(?:Mr|Ms|Mrs|Dr)\.? |^Miss ")
TITLE_NAME = re.compile(r"\b(?:Mr|Ms|Mrs)\. ([A-Z][a-z]+)\b")
NOT_NAMES = {"The", "Patient", "She", "He", "This", "Today"}


def heading_of(line):
    s = line.strip().rstrip(":").strip()
    return s if s in HEADINGS and line.strip() == line.strip().upper() else None


def sections(note):
    """{heading: text}; text before the first heading under "_". A heading seen
    twice keeps both texts joined. "CC:" / "HPI:" style headings included."""
    out, cur = {"_": []}, "_"
    for raw in note.replace("\r\n", "\n").split("\n"):
        h = heading_of(raw)
        if h:
            cur = {"CC": "CHIEF COMPLAINT", "HPI": "HISTORY OF PRESENT ILLNESS"}.get(h, h)
            out.setdefault(cur, [])
            continue
        out[cur].append(raw.strip())
    return {k: "\n".join(v).strip() for k, v in out.items()}


def strip_period(s):
    return re.sub(r"[.\s]+$", "", s.strip())


def find_name(note):
    names = []
    for m in NAME_SENT.finditer(note):
        n = HONORIFIC.sub("", m.group(1)).strip()
        if n.split()[0] not in NOT_NAMES:
            names.append(n)
    if names:
        # The longest spelling of the first-named person ("Fisher" -> "Joseph Fisher").
        first = names[0].split()[-1]
        same = [n for n in names if n.split()[-1] == first]
        return max(same, key=len)
    m = TITLE_NAME.search(note)
    return m.group(1) if m else None


def find_age_sex(note):
    m = AGE_SEX.search(note)
    age = sex = None
    if m:
        age = int(m.group(1))
        sex = {"woman": "female", "girl": "female", "man": "male", "boy": "male"}.get(m.group(2), m.group(2))
    else:
        a = AGE.search(note)
        age = int(a.group(1)) if a else None
    if sex is None:
        fem = len(re.findall(r"\b(?:she|her|hers|herself)\b", note, re.I))
        mal = len(re.findall(r"\b(?:he|him|his|himself)\b", note, re.I))
        if fem >= 3 * max(mal, 1) and fem >= 3:
            sex = "female"
        elif mal >= 3 * max(fem, 1) and mal >= 3:
            sex = "male"
    return age, sex


def find_medications(secs):
    text = "\n".join(secs.get(k, "") for k in MED_SECTIONS + PLAN_SECTIONS)
    found = []  # (position, spelling)
    low = text.lower()
    for p in DRUG_PHRASES:
        for m in re.finditer(r"(?<![\w-])" + re.escape(p) + r"(?![\w-])", low):
            found.append((m.start(), text[m.start():m.end()]))
    covered = [(s, s + len(w)) for s, w in found]
    for m in re.finditer(r"[A-Za-z][A-Za-z-]*", text):
        w = m.group(0)
        if w.lower() in DRUG_WORDS and not any(a <= m.start() < b for a, b in covered):
            found.append((m.start(), w))
    found.sort()
    out, seen = [], set()
    phrases = {w.lower() for _, w in found if " " in w}
    for _, w in found:
        if any(w.lower() in p.split() for p in phrases if p != w.lower()):
            continue  # "testosterone" after "Testosterone cypionate"
        if w.lower() not in seen:
            seen.add(w.lower())
            out.append(w)
    return out


LABEL = re.compile(r"^[A-Z][A-Za-z /-]{1,40}:")
BOILER = re.compile(r"^(Patient Agreements|All questions|This plan|The patient understands)", re.I)


def find_diagnoses(secs):
    for k in ("ASSESSMENT AND PLAN", "ASSESSMENT", "IMPRESSION"):
        if secs.get(k):
            body = secs[k]
            break
    else:
        return []
    items = []
    for raw in body.split("\n"):
        s = raw.strip()
        if not s:
            continue
        m = re.match(r"^\d+\.\s+(.*)$", s)
        if m:
            items.append(m.group(1))
            continue
        if s.startswith(("•", "-")):
            s2 = s.lstrip("•- ").strip()
            if LABEL.match(s2) or len(s2) > 120:
                continue
            items.append(s2)
            continue
        if LABEL.match(s) or BOILER.match(s) or AGE.search(s):
            continue
        if len(s.split()) <= 14:
            items.append(s)
    out = []
    for it in items:
        it = strip_period(it)
        if it and it.lower() not in (o.lower() for o in out):
            out.append(it)
    return out


# Where the rules above find nothing the note plainly states (checked by eye).
OVERRIDES = {
    # ASSESSMENT AND PLAN is prose: "The patient presents today with newly
    # diagnosed melanoma. The biopsy revealed an intermediate thickness melanoma."
    "D2N029": {"diagnoses": ["Melanoma"]},
}


def truth_of(row):
    note = row["note"]
    secs = sections(note)
    age, sex = find_age_sex(note)
    cc = secs.get("CHIEF COMPLAINT")
    if cc:
        cc = "; ".join(strip_period(l) for l in cc.split("\n") if l.strip())
    t = {"id": row["encounter_id"], "patient_name": find_name(note), "age": age, "sex": sex,
         "chief_complaint": cc or None, "medications": find_medications(secs),
         "diagnoses": find_diagnoses(secs)}
    t.update(OVERRIDES.get(row["encounter_id"], {}))
    return t


def is_held_out(encounter_id):
    return int(encounter_id[3:]) % 4 == 0


def pack_eval_line(t):
    """A truth line in the medical pack schema's shape: the fields the rules
    above read off the note, under the schema's names; what they do not read
    (date of birth, visit date, doses, routes, vitals, labs, ICD-10 codes, plan)
    is left out, and left out is not scored."""
    return {"id": t["id"], "source": f"ACI-Bench train {t['id']} (note text)",
            "record": {"patient": {"name": t["patient_name"], "age": t["age"], "sex": t["sex"]},
                       "chief_complaint": t["chief_complaint"],
                       "medications": [{"name": m} for m in t["medications"]],
                       "diagnoses": [{"description": d} for d in t["diagnoses"]]}}


# ------------------------------------------------------------------ rendering

def run(cmd):
    return subprocess.run(cmd, check=True, capture_output=True, text=True)


def degrade_page(img, rng, np):
    from PIL import Image, ImageFilter
    params = {}
    w, h = img.size
    angle = rng.uniform(0.5, 2.0) * rng.choice([-1, 1])
    params["rotate_deg"] = round(angle, 2)
    img = img.rotate(angle, resample=Image.Resampling.BICUBIC, expand=False, fillcolor=255)
    nrng = np.random.default_rng(rng.randrange(2**32))
    a = np.asarray(img, dtype=np.float32)
    # Uneven brightness: paper a little grey, a smooth field darker towards one
    # corner or edge (72-100 %), ink stays dark.
    paper = rng.uniform(228, 250)
    a = a * (paper / 255.0)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    cx, cy = rng.choice([0, w, w / 2]), rng.choice([0, h, h / 2])
    d = np.sqrt((xx - cx) ** 2 + (yy - cy) ** 2)
    d /= d.max()
    low = rng.uniform(0.72, 0.9)
    field = low + (1.0 - low) * d
    a = a * field
    params["paper"] = round(paper, 1)
    params["shade_min"] = round(low, 2)
    # Speckle.
    sigma = rng.uniform(5, 10)
    a = a + nrng.normal(0.0, sigma, a.shape)
    sp = rng.uniform(0.0005, 0.002)
    m = nrng.random(a.shape)
    a[m < sp / 2] = 0
    a[m > 1 - sp / 2] = 255
    for _ in range(rng.randint(20, 80)):  # small dark specks (dust)
        x, y, r = rng.randrange(w), rng.randrange(h), rng.randint(1, 3)
        a[max(0, y - r):y + r, max(0, x - r):x + r] *= 0.3
    params["noise_sigma"] = round(sigma, 1)
    params["salt_pepper"] = round(sp, 4)
    img = Image.fromarray(np.clip(a, 0, 255).astype(np.uint8), "L")
    # Optics blur last, as a scanner sees paper grain and dust through its lens
    # (it also keeps the JPEG of a noisy page small).
    blur = rng.uniform(0.6, 1.2)
    params["blur_px"] = round(blur, 2)
    img = img.filter(ImageFilter.GaussianBlur(blur))
    q = rng.randint(45, 70)
    params["jpeg_quality"] = q
    buf = io.BytesIO()
    img.save(buf, "JPEG", quality=q)
    return buf.getvalue(), params


def write_scan(pdf, n_pages, out_pdf, rng):
    """Renders each page of `pdf`, degrades it, writes an image-only PDF."""
    import numpy as np
    from PIL import Image
    from reportlab.pdfgen import canvas
    dpi = rng.choice([200, 240, 300])
    pages = []
    pdf, out_pdf = Path(pdf).resolve(), Path(out_pdf).resolve()
    cwd = os.getcwd()
    with tempfile.TemporaryDirectory() as tmp:
        # reportlab names an image after its file name: draw "p1.jpg" from
        # inside the temporary folder, so the PDF's bytes do not depend on it.
        os.chdir(tmp)
        try:
            c = canvas.Canvas(str(out_pdf), invariant=1)
            for p in range(1, n_pages + 1):
                run(["nice", "-n", "10", "pdftoppm", "-f", str(p), "-l", str(p), "-r", str(dpi),
                     "-gray", "-png", "-singlefile", str(pdf), f"p{p}"])
                img = Image.open(f"p{p}.png").convert("L")
                jpeg, params = degrade_page(img, rng, np)
                Path(f"p{p}.jpg").write_bytes(jpeg)
                w_pt, h_pt = img.width * 72.0 / dpi, img.height * 72.0 / dpi
                c.setPageSize((w_pt, h_pt))
                c.drawImage(f"p{p}.jpg", 0, 0, width=w_pt, height=h_pt)
                c.showPage()
                pages.append(params)
            c.save()
        finally:
            os.chdir(cwd)
    return {"dpi": dpi, "page_params": pages}


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--csv", default=str(DEFAULT_CSV))
    ap.add_argument("--out", default="/work/eval/medical")
    ap.add_argument("--scans", type=int, default=24)
    ap.add_argument("--seed", type=int, default=9)
    ap.add_argument("--ci", default=str(REPO / "tests/data/medical_records"),
                    help="where truth.jsonl and the CI subset go ('' to skip)")
    ap.add_argument("--ci-pdfs", type=int, default=3)
    ap.add_argument("--ci-scans", type=int, default=2)
    ap.add_argument("--pack-eval", default=str(REPO / "domain_packs/medical/eval"),
                    help="where the medical pack's evaluation set goes ('' to skip)")
    ap.add_argument("--truth-only", action="store_true", help="write the truth files only")
    args = ap.parse_args()

    csv.field_size_limit(1 << 30)
    with open(args.csv, newline="", encoding="utf-8") as f:
        rows = sorted(csv.DictReader(f), key=lambda r: r["encounter_id"])
    truths = [truth_of(r) for r in rows]
    truth_text = "".join(json.dumps(t, ensure_ascii=False) + "\n" for t in truths)
    licence = Path(args.csv).parent / DEFAULT_LICENSE_NAME
    ci = Path(args.ci) if args.ci else None
    if ci:
        ci.mkdir(parents=True, exist_ok=True)
        (ci / "truth.jsonl").write_text(truth_text, encoding="utf-8")
        if licence.exists():
            shutil.copyfile(licence, ci / DEFAULT_LICENSE_NAME)
    counts = {k: sum(1 for t in truths if t[k]) for k in
              ("patient_name", "age", "sex", "chief_complaint", "medications", "diagnoses")}
    print(f"truth: {len(truths)} notes; notes with each field: {counts}; "
          f"medications {sum(len(t['medications']) for t in truths)}, "
          f"diagnoses {sum(len(t['diagnoses']) for t in truths)}")
    if args.pack_eval:
        held_out = [t for t in truths if is_held_out(t["id"])]
        pack_eval = Path(args.pack_eval)
        pack_eval.mkdir(parents=True, exist_ok=True)
        (pack_eval / "truth.jsonl").write_text(
            "".join(json.dumps(pack_eval_line(t), ensure_ascii=False) + "\n" for t in held_out), encoding="utf-8")
        print(f"pack evaluation set: {len(held_out)} held-out notes in {pack_eval / 'truth.jsonl'}")
    if args.truth_only:
        return

    sys.path.insert(0, str(HERE))
    from make_scan_set import register_fonts, render_note_pdf, pdf_page_count
    out = Path(args.out)
    (out / "pdf").mkdir(parents=True, exist_ok=True)
    (out / "scan").mkdir(parents=True, exist_ok=True)
    (out / "truth.jsonl").write_text(truth_text, encoding="utf-8")
    if licence.exists():
        shutil.copyfile(licence, out / DEFAULT_LICENSE_NAME)
    fonts = register_fonts()
    rng = random.Random(args.seed)
    scan_ids = set(r["encounter_id"] for r in rng.sample(rows, min(args.scans, len(rows))))
    manifest = []
    for r in rows:
        nid = r["encounter_id"]
        pdf = out / "pdf" / f"{nid}.pdf"
        render_note_pdf(pdf, nid, r["dataset"], r["note"], fonts)
        n = pdf_page_count(pdf)
        manifest.append({"id": nid, "kind": "pdf", "file": f"pdf/{nid}.pdf", "pages": n,
                         "bytes": pdf.stat().st_size})
        if nid in scan_ids:
            srng = random.Random(f"{args.seed}:{nid}")  # per-note stream: reruns are identical
            spdf = out / "scan" / f"{nid}.pdf"
            info = write_scan(pdf, n, spdf, srng)
            manifest.append({"id": nid, "kind": "scan", "file": f"scan/{nid}.pdf", "pages": n,
                             "bytes": spdf.stat().st_size, **info})
        print(f"{nid}: {n} page(s){' + scan' if nid in scan_ids else ''}", flush=True)
    (out / "manifest.json").write_text(json.dumps({"items": manifest}, indent=1) + "\n")

    if ci:
        # CI subset: the smallest PDFs and the smallest scans, distinct notes.
        pdfs = sorted((m for m in manifest if m["kind"] == "pdf"), key=lambda m: (m["bytes"], m["id"]))
        scans = sorted((m for m in manifest if m["kind"] == "scan"), key=lambda m: (m["bytes"], m["id"]))
        pick_s = scans[:args.ci_scans]
        pick_p = [m for m in pdfs if m["id"] not in {s["id"] for s in pick_s}][:args.ci_pdfs]
        for old in list(ci.glob("*.pdf")):
            old.unlink()
        chosen = []
        for m in pick_p + pick_s:
            name = f"{m['id']}.pdf" if m["kind"] == "pdf" else f"{m['id']}.scan.pdf"
            shutil.copy(out / m["file"], ci / name)
            chosen.append({**m, "file": name})
        ids = {m["id"] for m in chosen}
        (ci / "ci_truth.jsonl").write_text(
            "".join(json.dumps(t, ensure_ascii=False) + "\n" for t in truths if t["id"] in ids),
            encoding="utf-8")
        (ci / "manifest.json").write_text(json.dumps({"items": chosen}, indent=1) + "\n")
        print("ci subset:", ", ".join(f"{m['file']} ({m['bytes']} B)" for m in chosen))


if __name__ == "__main__":
    main()
