#!/usr/bin/env python3
"""Checks the files a `folio batch` or `folio extract` run wrote, with
validators that are not Folio's own:

- every record's `data` in records.jsonl against the JSON Schema
  (jsonschema, draft 2020-12), and every record either has data or an error;
- records.csv parses, with one row per record of records.jsonl;
- every FHIR file (a Bundle, or NDJSON of resources) parses as FHIR R4 with
  fhir.resources 6.5 (its R4 models: resource types, cardinalities, value
  types, references' shape); the codes bound to required value sets that
  Folio writes are in them (the models leave codes unchecked); every
  reference inside a Bundle resolves to one of its entries.

    python3 tools/validate_outputs.py OUT_DIR --schema domain_packs/medical/schemas/clinical_note.schema.json

fhir.resources 6.x needs pydantic 1: run it in its own environment,
    python3 -m venv /tmp/fhirenv
    /tmp/fhirenv/bin/pip install "fhir.resources==6.5.0" "pydantic<2" email-validator jsonschema
Prints a summary; exits 1 when anything fails to validate.
"""
import argparse
import csv
import json
import pathlib
import sys

import jsonschema
from fhir.resources import construct_fhir_element


def check_records(out: pathlib.Path, schema: dict) -> tuple[int, list[str]]:
    validator = jsonschema.Draft202012Validator(schema, format_checker=jsonschema.FormatChecker())
    problems, count = [], 0
    with open(out / 'records.jsonl', encoding='utf-8') as f:
        for number, line in enumerate(f, 1):
            record = json.loads(line)
            count += 1
            if record.get('data') is None:
                if not record.get('error'):
                    problems.append(f'records.jsonl:{number}: no data and no error')
                continue
            for error in validator.iter_errors(record['data']):
                problems.append(f'records.jsonl:{number} ({record.get("path")}): {error.message}')
    return count, problems


def check_csv(out: pathlib.Path, records: int) -> list[str]:
    path = out / 'records.csv'
    if not path.exists():
        return []
    with open(path, encoding='utf-8', newline='') as f:
        rows = list(csv.DictReader(f))
    return [] if len(rows) == records else [f'records.csv: {len(rows)} rows for {records} records']


# FHIR R4's required bindings for the coded elements Folio writes.
REQUIRED_CODES = {
    ('Bundle', 'type'): {'document', 'message', 'transaction', 'transaction-response', 'batch', 'batch-response',
                         'history', 'searchset', 'collection'},
    ('Patient', 'gender'): {'male', 'female', 'other', 'unknown'},
    ('Observation', 'status'): {'registered', 'preliminary', 'final', 'amended', 'corrected', 'cancelled',
                                'entered-in-error', 'unknown'},
    ('MedicationStatement', 'status'): {'active', 'completed', 'entered-in-error', 'intended', 'stopped', 'on-hold',
                                        'unknown', 'not-taken'},
    ('CarePlan', 'status'): {'draft', 'active', 'on-hold', 'revoked', 'completed', 'entered-in-error', 'unknown'},
    ('CarePlan', 'intent'): {'proposal', 'plan', 'order', 'option'},
    ('AllergyIntolerance', 'type'): {'allergy', 'intolerance'},
}


def code_problems(resource: dict) -> list[str]:
    problems = []
    kind = resource.get('resourceType')
    for (owner, element), codes in REQUIRED_CODES.items():
        if kind == owner and element in resource and resource[element] not in codes:
            problems.append(f'{kind}.{element} "{resource[element]}" is not in its required value set')
    if kind == 'Bundle':
        entries = resource.get('entry', [])
        urls = {entry.get('fullUrl') for entry in entries}
        for entry in entries:
            problems += code_problems(entry.get('resource', {}))
            for reference in references(entry.get('resource', {})):
                if reference.startswith('urn:uuid:') and reference not in urls:
                    problems.append(f'reference {reference} has no entry in the Bundle')
    return problems


def references(node) -> list[str]:
    if isinstance(node, dict):
        found = [node['reference']] if isinstance(node.get('reference'), str) else []
        return found + [r for value in node.values() for r in references(value)]
    if isinstance(node, list):
        return [r for value in node for r in references(value)]
    return []


def check_fhir(out: pathlib.Path) -> tuple[int, list[str]]:
    problems, count = [], 0
    for path in sorted((out / 'fhir').glob('*')) if (out / 'fhir').is_dir() else []:
        text = path.read_text(encoding='utf-8')
        resources = [json.loads(line) for line in text.splitlines() if line.strip()] if path.suffix == '.ndjson' \
            else [json.loads(text)]
        for resource in resources:
            count += 1
            try:
                construct_fhir_element(resource['resourceType'], resource)
            except Exception as error:  # pydantic's ValidationError names every failing field
                problems.append(f'{path.name}: ' + ' '.join(str(error).split()))
            problems += [f'{path.name}: {problem}' for problem in code_problems(resource)]
    return count, problems


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('out', type=pathlib.Path, help='the --out folder of folio batch / extract')
    parser.add_argument('--schema', type=pathlib.Path, required=True)
    args = parser.parse_args()
    schema = json.loads(args.schema.read_text(encoding='utf-8'))
    records, problems = check_records(args.out, schema)
    problems += check_csv(args.out, records)
    fhir_count, fhir_problems = check_fhir(args.out)
    problems += fhir_problems
    for problem in problems:
        print(problem)
    print(f'{records} records, {fhir_count} FHIR resources/bundles checked: '
          f'{"all valid" if not problems else str(len(problems)) + " problems"}')
    return 1 if problems else 0


if __name__ == '__main__':
    sys.exit(main())
