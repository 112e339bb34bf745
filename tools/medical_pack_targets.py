"""Truth for the medical pack's full record, read off an ACI-Bench note by rules
(for tools/train_pack_lora.py).

The issue-9 rules of tools/make_medical_records.py (imported, not copied)
give the patient's name, age and sex, the chief complaint, the medication
names and the assessed problems. The rules below extend them to the fields
the pack's schema added; a field they cannot read stays null or empty:

  date_of_birth   "DOB" / "date of birth" followed by MM/DD/YYYY (ISO)
  encounter_date  "DATE OF SERVICE" / "DOS" / "VISIT DATE" followed by MM/DD/YYYY
  medications     each named drug's dose ("40 mg", "2.5 mg", "175 ng/dL" ...),
                  route ("by mouth", "PO", "IV", "topically" ...) and
                  frequency ("daily", "twice daily", "3 times daily", "as
                  needed", "BID" ...), taken from the words after a mention of
                  the drug up to the end of that sentence or the next drug (the
                  mention that gives the most of them; the first on a tie)
  allergies       the lines of an ALLERGIES section naming a substance (the
                  words before "causes"); "No known allergies" and seasonal
                  allergy lines name none
  vitals          "Name: value [unit]" / "Name is value" lines of VITALS (or
                  VITALS REVIEWED) whose value starts with a digit
  labs            a known analyte (LAB_NAMES) followed, within four words, by
                  a number (and a unit when one follows), in RESULTS
  diagnoses       the assessed problems; icd10 the code written in the item
                  ("(E11.9)") and removed from its description, else null
  plan            the sentences of INSTRUCTIONS, then the first sentence of the
                  assessment's "Additional Testing:", "Medical Treatment:",
                  "Referrals:" and "Surgical Intervention:" lines

Sex is "unknown" where the issue-9 rule finds none (the schema's enum has no null).
"""

import re
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from make_medical_records import sections, strip_period, truth_of  # noqa: E402

DATE = r"(\d{1,2})/(\d{1,2})/(\d{4})"
DOB = re.compile(r"\b(?:DOB|[Dd]ate of [Bb]irth)[:\s]+" + DATE)
VISIT_DATE = re.compile(r"\b(?:DATE OF SERVICE|DOS|VISIT DATE)[:\s]+" + DATE)

DOSE = re.compile(r"\b\d+(?:\.\d+)?(?:-\d+(?:\.\d+)?)? ?(?:mg|mcg|g|mL|ml|units|unit|IU|ng/dL|%)(?![\w/])")
ROUTES = ["by mouth", "orally", "PO", "IV", "intravenously", "topically", "topical", "subcutaneously",
          "intramuscularly", "inhaled", "sublingual"]
FREQUENCIES = ["once a day", "twice a day", "three times a day", "twice daily", "3 times daily",
               "three times daily", "4 times daily", "once daily", "daily", "nightly", "at bedtime",
               "once a week", "weekly", "per week", "as needed", "BID", "TID", "QID", "PRN",
               r"every \d+(?:-\d+)? hours"]
ROUTE = re.compile(r"\b(?:" + "|".join(ROUTES) + r")\b")
FREQUENCY = re.compile(r"\b(?:" + "|".join(FREQUENCIES) + r")\b")
SENTENCE_END = re.compile(r"\.(?:\s|$)|\n")

VITAL_UNITS = r"mmHg|mm Hg|bpm|BPM|degrees F|F|lb|lbs|kg|percent|%"
VITAL = re.compile(r"^[•-]?\s*(?P<name>[A-Za-z][A-Za-z0-9 ]{0,28}?)\s*(?::|\bis\b)\s*(?:[A-Za-z]+ at )?"
                   r"(?P<value>\d[^\s,.]*(?:\.\d+)?)(?: (?P<unit>" + VITAL_UNITS + r"))?(?!\w)")

LAB_NAMES = ["hemoglobin A1c", "Hgb A1c", "A1c", "hemoglobin", "glucose", "creatinine", "potassium", "sodium",
             "magnesium", "BUN", "ALT", "AST", "PSA", "triglycerides", "total testosterone", "testosterone",
             "total cholesterol", "cholesterol", "HDL", "LDL", "alkaline phosphatase", "TSH", "white blood cell count"]
LAB_UNITS = r"mg/dL|ng/mL|ng/dL|mmol/L|g/dL|U/L|mEq/L|mIU/L|pg/mL|IU/L|K/uL|%"
LAB = re.compile(r"(?<![\w-])(?P<name>" + "|".join(sorted(LAB_NAMES, key=len, reverse=True)) + r")\b"
                 r"(?:[ :-]+(?:[A-Za-z]+ ){0,4}?)?(?P<value>\d+(?:\.\d+)?)(?: ?(?P<unit>" + LAB_UNITS + r"))?",
                 re.I)

ICD10 = re.compile(r"\s*\(?\b([A-Z]\d[0-9A-Z](?:\.[0-9A-Z]{1,4})?)\b\)?")
PLAN_LABELS = re.compile(r"^[•-]?\s*(?:Additional Testing|Medical Treatment|Referrals?|Surgical Intervention):\s*(.+)$")
MED_SECTIONS = ("MEDICATIONS", "CURRENT MEDICATIONS", "ASSESSMENT AND PLAN", "ASSESSMENT", "PLAN", "IMPRESSION")


def iso(match):
    month, day, year = (int(g) for g in match.groups())
    return f"{year:04d}-{month:02d}-{day:02d}" if 1 <= month <= 12 and 1 <= day <= 31 else None


def first_sentence(text):
    end = SENTENCE_END.search(text)
    return strip_period(text[:end.start()] if end else text)


def medication_details(names, secs):
    text = "\n".join(secs.get(k, "") for k in MED_SECTIONS)
    low = text.lower()
    out = []
    for name in names:
        best = {"name": name}
        at = low.find(name.lower())
        while at >= 0:
            clause = text[at + len(name):]
            end = SENTENCE_END.search(clause)
            clause = clause[:end.start()] if end else clause
            for other in names:
                if other.lower() != name.lower() and (i := clause.lower().find(other.lower())) >= 0:
                    clause = clause[:i]
            found = {"name": name}
            for key, pattern in (("dose", DOSE), ("route", ROUTE), ("frequency", FREQUENCY)):
                if m := pattern.search(clause):
                    found[key] = m.group(0)
            if len(found) > len(best):
                best = found
            at = low.find(name.lower(), at + len(name))
        out.append(best)
    return out


def allergies(secs):
    out = []
    for line in secs.get("ALLERGIES", "").split("\n"):
        line = strip_period(line.split(" causes ")[0])
        if line and "allerg" not in line.lower() and len(line.split()) <= 4:
            out.append(line)
    return out


def vitals(secs):
    out = []
    for key in ("VITALS", "VITALS REVIEWED"):
        for line in secs.get(key, "").split("\n"):
            if m := VITAL.match(line.strip()):
                out.append({"name": m.group("name").strip(), "value": m.group("value"), "unit": m.group("unit")})
    return out


def labs(secs):
    return [{"name": m.group("name"), "value": m.group("value"), "unit": m.group("unit")}
            for m in LAB.finditer(secs.get("RESULTS", ""))]


def diagnoses(problems):
    out = []
    for problem in problems:
        m = ICD10.search(problem)
        code = m.group(1) if m else None
        description = strip_period(ICD10.sub("", problem, count=1)) if m else problem
        out.append({"description": description, "icd10": code})
    return out


def plan(secs):
    items = [strip_period(s) for s in re.split(r"(?<=\.)\s+", secs.get("INSTRUCTIONS", "").replace("\n", " "))
             if s.strip()]
    for key in ("ASSESSMENT AND PLAN", "PLAN"):
        for line in secs.get(key, "").split("\n"):
            if m := PLAN_LABELS.match(line.strip()):
                items.append(first_sentence(m.group(1)))
    return [s.lstrip("•- ") for s in items if s]


def record_values(encounter_id, note):
    """The note's values, keyed like the medical schema (the caller shapes them
    to the schema: its order, what it lacks left out)."""
    truth = truth_of({"encounter_id": encounter_id, "note": note})
    secs = sections(note)
    dob, visit = DOB.search(note), VISIT_DATE.search(note)
    return {
        "patient": {"name": truth["patient_name"], "date_of_birth": iso(dob) if dob else None,
                    "age": truth["age"], "sex": truth["sex"] or "unknown"},
        "encounter_date": iso(visit) if visit else None,
        "chief_complaint": truth["chief_complaint"],
        "medications": medication_details(truth["medications"], secs),
        "allergies": allergies(secs),
        "vitals": vitals(secs),
        "labs": labs(secs),
        "diagnoses": diagnoses(truth["diagnoses"]),
        "plan": plan(secs),
    }
