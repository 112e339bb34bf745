#pragma once
// A medical record as a FHIR R4 Bundle (https://hl7.org/fhir/R4/), for the
// medical pack's batch output: one Bundle of type "collection" per record,
// holding a Patient and the Conditions, MedicationStatements,
// AllergyIntolerances, Observations and CarePlan the note states, each
// pointing at the Patient through its urn:uuid fullUrl.
//
// The record is the medical pack's clinical note
// (domain_packs/medical/schemas/clinical_note.schema.json):
//   patient          Patient (name, gender, birthDate); the age an
//                    Observation (LOINC 30525-0, UCUM "a"), as no Patient
//                    element holds one
//   diagnoses        Condition, encounter-diagnosis; coded in ICD-10-CM
//                    only when the note states a code
//   medications      MedicationStatement; dose, route, frequency one Dosage
//                    (route SNOMED CT-coded where common, dose in UCUM)
//   allergies        AllergyIntolerance ("NKDA": SNOMED CT 716186003)
//   vitals           Observation, vital-signs, LOINC-coded (vital_signs.h),
//                    blood pressure as systolic/diastolic components
//   labs             Observation, laboratory, valueQuantity in UCUM where
//                    the unit is one value_normalize knows
//   plan             one CarePlan (intent "plan"), a note per step
// The visit date is each resource's effectiveDateTime / recordedDate /
// dateAsserted / created.

#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace folio::app {

// The Bundle of one clinical-note record. `record_key` names the record
// (its file's SHA-256): every UUID in the Bundle is a name-based UUID of the
// key, so writing the same record again gives the same Bundle. A record
// without a patient object still gets a Patient (every other resource needs
// one to point at).
nlohmann::json fhir_bundle(const nlohmann::json& record, const std::string& record_key);

// What breaks R4's structural rules in a Bundle of the resources
// fhir_bundle() writes: required elements and their cardinalities, the
// bound code sets (Bundle.type, Patient.gender, MedicationStatement.status,
// Observation.status, CarePlan.status and intent), quantities with a coded
// unit and its system (qty-3), references that must resolve to the Bundle's
// Patient, unique fullUrls (bdl-7), AllergyIntolerance's ait-1/ait-2, and
// no empty values anywhere (ele-1). Empty: the Bundle is sound.
std::vector<std::string> fhir_structure_errors(const nlohmann::json& bundle);

}  // namespace folio::app
