#pragma once
// Domain checks of an extracted record, beyond what its JSON Schema can say:
// figures that must agree with each other, units and values a patient can
// have. A pack names the ones it uses in pack.json ("validators": [...]);
// extraction runs them on each record and reports what they find in the
// record's `validation` array. They never change the record: a finding is
// for the analyst to look at, not a correction.
//
// Finance (domain_packs/finance/schemas/filing_facts.schema.json, figures as
// printed in the record's `scale`):
//   balance_sheet     total assets = total liabilities + total equity,
//                     within the rounding of the printed figures; a
//                     "total liabilities" that is the combined "total
//                     liabilities and equity" line
//   scale             the record's scale against the one the pages holding
//                     its figures declare ("(in millions)"; with no figure
//                     found on a page, the one most pages declare), and the
//                     share count net income / diluted EPS implies
//   income_statement  operating income and net income against revenue
// Medical (domain_packs/medical/schemas/clinical_note.schema.json):
//   units             each vital sign and lab in a unit UCUM (through
//                     value_normalize.h) knows, and of the right kind
//   ranges            vital signs and age within what a living patient can
//                     show (vital_signs.h)
//   dates             date of birth against the age and the visit date
//   codes             each diagnosis's ICD-10 code in ICD-10's shape and
//                     written in the note (the schema lets a model copy any
//                     word of the note there)

#include <span>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "app/grounding.h"

namespace folio::app {

enum class Severity {
    Warning,  // worth a look: unusual, but a document can say it
    Error,    // the record contradicts itself or the document
};
const char* severity_name(Severity severity);

struct ValidationIssue {
    std::string pointer;  // JSON pointer into the record: "/total_liabilities", "/vitals/2/value"; "" for the whole
    Severity severity = Severity::Warning;
    std::string message;  // one line
};

// ICD-10's shape: a letter, a digit, a digit or letter, then up to four
// after a dot ("I10", "E11.9", "S62.633A"). The FHIR mapping codes only these.
bool is_icd10_code(std::string_view text);

// Whether `name` is a validator this build has (pack.json may only name these).
bool is_validator(std::string_view name);

// Runs the named validators, in order, over a record. `pages` is the
// document's page text (1-based pages), which "scale" and "codes" read; the others
// need only the record. Fields a record lacks or leaves null are not
// checked. Throws std::invalid_argument for a name is_validator refuses.
std::vector<ValidationIssue> validate_record(const std::vector<std::string>& validators, const nlohmann::json& record,
                                             std::span<const PageText> pages = {});

}  // namespace folio::app
