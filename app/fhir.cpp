#include "app/fhir.h"

#include <QString>
#include <QUuid>

#include <algorithm>
#include <array>
#include <cctype>
#include <charconv>
#include <optional>
#include <regex>
#include <set>
#include <string_view>

namespace folio::app {
namespace {

using nlohmann::json;

// The namespace of Folio's name-based (version 5) UUIDs of records.
const QUuid kRecordNamespace(QStringLiteral("{6f1c7d52-3b0e-4f7a-9d2c-0b7e5a1f4c93}"));

constexpr std::array kBundleTypes = {"document", "message",      "transaction", "transaction-response", "batch",
                                     "batch-response", "history", "searchset", "collection"};
constexpr std::array kGenders = {"male", "female", "other", "unknown"};
constexpr std::array kMedicationStatementStatuses = {"active",  "completed", "entered-in-error", "intended",
                                                     "stopped", "on-hold",   "unknown",          "not-taken"};
constexpr std::array kObservationStatuses = {"registered", "preliminary", "final",           "amended",
                                             "corrected",  "cancelled",   "entered-in-error", "unknown"};

template <std::size_t N>
bool one_of(const std::array<const char*, N>& codes, const std::string& code) {
    return std::any_of(codes.begin(), codes.end(), [&](const char* c) { return code == c; });
}

std::string trimmed(const json& value) {
    if (!value.is_string()) return {};
    const std::string& text = value.get_ref<const std::string&>();
    const auto first = text.find_first_not_of(" \t\r\n");
    if (first == std::string::npos) return {};
    return text.substr(first, text.find_last_not_of(" \t\r\n") - first + 1);
}

std::string field(const json& object, const char* name) {
    return object.is_object() && object.contains(name) ? trimmed(object.at(name)) : std::string();
}

// A FHIR date (YYYY-MM-DD), which R4's dateTime elements accept as well.
bool is_date(const std::string& text) {
    static const std::regex date(R"(\d{4}-(0[1-9]|1[0-2])-(0[1-9]|[12]\d|3[01]))");
    return std::regex_match(text, date);
}

// A plain decimal number ("98.6", "-2", "140"), FHIR's decimal; nothing else
// ("120/80", "1e3", "< 5") becomes a Quantity.
std::optional<double> decimal(const std::string& text) {
    static const std::regex number(R"(-?\d+(\.\d+)?)");
    if (!std::regex_match(text, number)) return std::nullopt;
    double value = 0;
    std::from_chars(text.data(), text.data() + text.size(), value);
    return value;
}

json text_concept(const std::string& text) { return {{"text", text}}; }

json coded_concept(const char* system, const char* code, const char* display, const std::string& text) {
    return {{"coding", json::array({{{"system", system}, {"code", code}, {"display", display}}})}, {"text", text}};
}

// "NKDA" and its kin state that there is no allergy, which R4 records as an
// AllergyIntolerance coded SNOMED CT 716186003 "No known allergy" (as the
// International Patient Summary does), not as an allergy to something.
bool states_no_allergy(std::string text) {
    std::transform(text.begin(), text.end(), text.begin(), [](unsigned char c) { return std::tolower(c); });
    static const std::regex none(R"((nkda|nka|none|no known (drug )?allerg(y|ies))\.?)");
    return std::regex_match(text, none);
}

class BundleWriter {
public:
    explicit BundleWriter(const std::string& record_key) : key_(record_key) {}

    std::string uuid(const std::string& name) const {
        return QUuid::createUuidV5(kRecordNamespace, QString::fromStdString(key_ + "/" + name))
            .toString(QUuid::WithoutBraces)
            .toStdString();
    }

    // Adds a resource; returns its fullUrl.
    std::string add(const std::string& name, json resource) {
        std::string full_url = "urn:uuid:" + uuid(name);
        entries_.push_back({{"fullUrl", full_url}, {"resource", std::move(resource)}});
        return full_url;
    }

    json bundle() const {
        return {{"resourceType", "Bundle"}, {"id", uuid("bundle")}, {"type", "collection"}, {"entry", entries_}};
    }

private:
    std::string key_;
    json entries_ = json::array();
};

json patient_resource(const json& patient) {
    json resource = {{"resourceType", "Patient"}};
    if (const std::string name = field(patient, "name"); !name.empty())
        resource["name"] = json::array({{{"text", name}}});
    if (const std::string sex = field(patient, "sex"); one_of(kGenders, sex)) resource["gender"] = sex;
    return resource;
}

json observation(const json& subject, const std::string& date, json code) {
    json resource = {{"resourceType", "Observation"}, {"status", "final"}, {"code", std::move(code)}, {"subject", subject}};
    if (!date.empty()) resource["effectiveDateTime"] = date;
    return resource;
}

// ele-1 in JSON form: no element is an empty string, array or object, or null.
void find_empty_values(const json& value, const std::string& where, std::vector<std::string>& errors) {
    const bool empty = value.is_null() || (value.is_string() && value.get_ref<const std::string&>().empty()) ||
                       ((value.is_array() || value.is_object()) && value.empty());
    if (empty) {
        errors.push_back((where.empty() ? "Bundle" : where) + ": empty value (ele-1: an element has a value or children)");
        return;
    }
    if (value.is_object())
        for (const auto& [name, child] : value.items()) find_empty_values(child, where + "/" + name, errors);
    else if (value.is_array())
        for (std::size_t i = 0; i < value.size(); ++i) find_empty_values(value[i], where + "/" + std::to_string(i), errors);
}

class StructureChecker {
public:
    explicit StructureChecker(std::vector<std::string>& errors) : errors_(errors) {}

    void check(const json& bundle) {
        if (!bundle.is_object() || !bundle.contains("resourceType") || bundle["resourceType"] != "Bundle") {
            fail("Bundle", "resourceType must be \"Bundle\"");
            return;
        }
        if (!bundle.contains("type")) fail("Bundle", "type is required");
        else if (!bundle["type"].is_string() || !one_of(kBundleTypes, bundle["type"].get<std::string>()))
            fail("Bundle.type", "not a Bundle type code: " + bundle["type"].dump());
        if (!bundle.contains("entry")) return;
        const json& entries = bundle["entry"];
        if (!entries.is_array()) {
            fail("Bundle.entry", "must be an array");
            return;
        }
        collect_full_urls(entries);
        for (std::size_t i = 0; i < entries.size(); ++i) check_entry(entries[i], "Bundle.entry[" + std::to_string(i) + "]");
    }

private:
    void fail(const std::string& where, const std::string& what) { errors_.push_back(where + ": " + what); }

    void collect_full_urls(const json& entries) {
        std::set<std::string> seen;
        for (std::size_t i = 0; i < entries.size(); ++i) {
            const json& entry = entries[i];
            if (!entry.is_object() || !entry.contains("fullUrl") || !entry["fullUrl"].is_string()) continue;
            const std::string url = entry["fullUrl"].get<std::string>();
            if (!seen.insert(url).second)
                fail("Bundle.entry[" + std::to_string(i) + "].fullUrl", "duplicate " + url + " (bdl-7)");
            if (entry.contains("resource") && entry["resource"].is_object() &&
                entry["resource"].value("resourceType", "") == "Patient")
                patients_.insert(url);
        }
    }

    void check_entry(const json& entry, const std::string& where) {
        if (!entry.is_object()) {
            fail(where, "must be an object");
            return;
        }
        static const std::regex urn_uuid(R"(urn:uuid:[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})");
        if (!entry.contains("fullUrl") || !entry["fullUrl"].is_string())
            fail(where, "fullUrl is required (references resolve through it)");
        else if (!std::regex_match(entry["fullUrl"].get<std::string>(), urn_uuid))
            fail(where + ".fullUrl", "not a urn:uuid: " + entry["fullUrl"].get<std::string>());
        if (!entry.contains("resource") || !entry["resource"].is_object()) {
            fail(where, "resource is required");
            return;
        }
        const json& resource = entry["resource"];
        const std::string type = resource.contains("resourceType") && resource["resourceType"].is_string()
                                     ? resource["resourceType"].get<std::string>()
                                     : std::string();
        const std::string at = where + ".resource (" + (type.empty() ? "?" : type) + ")";
        if (type == "Patient") check_patient(resource, at);
        else if (type == "Condition") check_condition(resource, at);
        else if (type == "MedicationStatement") check_medication_statement(resource, at);
        else if (type == "AllergyIntolerance") check_allergy(resource, at);
        else if (type == "Observation") check_observation(resource, at);
        else fail(at, "resourceType must be Patient, Condition, MedicationStatement, AllergyIntolerance or Observation");
    }

    void check_patient(const json& patient, const std::string& at) {
        if (patient.contains("gender") && (!patient["gender"].is_string() ||
                                           !one_of(kGenders, patient["gender"].get<std::string>())))
            fail(at + ".gender", "not an AdministrativeGender code: " + patient["gender"].dump());
        if (patient.contains("name") && !patient["name"].is_array()) fail(at + ".name", "must be an array of HumanName");
        if (patient.contains("birthDate") && !(patient["birthDate"].is_string() && is_date(patient["birthDate"])))
            fail(at + ".birthDate", "not a date");
    }

    void check_condition(const json& condition, const std::string& at) {
        check_patient_reference(condition, "subject", true, at);
        check_concept(condition, "code", false, at);
        check_date(condition, "recordedDate", at);
    }

    void check_medication_statement(const json& statement, const std::string& at) {
        check_code(statement, "status", kMedicationStatementStatuses, at);
        check_patient_reference(statement, "subject", true, at);
        const int medications = statement.contains("medicationCodeableConcept") + statement.contains("medicationReference");
        if (medications != 1) fail(at, "medication[x] is required, once (medicationCodeableConcept or medicationReference)");
        if (statement.contains("medicationCodeableConcept")) check_concept(statement, "medicationCodeableConcept", true, at);
        if (statement.contains("dosage") && !statement["dosage"].is_array()) fail(at + ".dosage", "must be an array");
        check_date(statement, "dateAsserted", at);
    }

    void check_allergy(const json& allergy, const std::string& at) {
        check_patient_reference(allergy, "patient", true, at);
        check_concept(allergy, "code", false, at);
        bool entered_in_error = false;
        if (allergy.contains("verificationStatus") && allergy["verificationStatus"].contains("coding"))
            for (const json& coding : allergy["verificationStatus"]["coding"])
                entered_in_error = entered_in_error || coding.value("code", "") == "entered-in-error";
        if (!entered_in_error && !allergy.contains("clinicalStatus"))
            fail(at, "clinicalStatus is required unless verificationStatus is entered-in-error (ait-1)");
        if (entered_in_error && allergy.contains("clinicalStatus"))
            fail(at, "clinicalStatus must be absent when verificationStatus is entered-in-error (ait-2)");
        if (allergy.contains("clinicalStatus")) check_concept(allergy, "clinicalStatus", true, at);
    }

    void check_observation(const json& observation, const std::string& at) {
        check_code(observation, "status", kObservationStatuses, at);
        check_concept(observation, "code", true, at);
        check_patient_reference(observation, "subject", false, at);
        check_date(observation, "effectiveDateTime", at);
        int values = 0;
        for (const auto& [name, value] : observation.items()) values += name.rfind("value", 0) == 0;
        if (values > 1) fail(at, "value[x] may appear once");
        if (observation.contains("valueQuantity")) {
            const json& quantity = observation["valueQuantity"];
            if (!quantity.is_object() || (quantity.contains("value") && !quantity["value"].is_number()))
                fail(at + ".valueQuantity", "value must be a decimal number");
            if (quantity.contains("code") && !quantity.contains("system"))
                fail(at + ".valueQuantity", "a coded unit needs its system (qty-3)");
        }
        if (observation.contains("valueString") && !observation["valueString"].is_string())
            fail(at + ".valueString", "must be a string");
    }

    template <std::size_t N>
    void check_code(const json& resource, const char* name, const std::array<const char*, N>& codes,
                    const std::string& at) {
        if (!resource.contains(name)) fail(at, std::string(name) + " is required");
        else if (!resource[name].is_string() || !one_of(codes, resource[name].get<std::string>()))
            fail(at + "." + name, "not a code of its value set: " + resource[name].dump());
    }

    void check_concept(const json& resource, const char* name, bool required, const std::string& at) {
        if (!resource.contains(name)) {
            if (required) fail(at, std::string(name) + " is required");
            return;
        }
        const json& codeable = resource[name];
        const bool has_text = codeable.is_object() && codeable.contains("text") && codeable["text"].is_string();
        const bool has_coding = codeable.is_object() && codeable.contains("coding") && codeable["coding"].is_array();
        if (!has_text && !has_coding) fail(at + "." + name, "a CodeableConcept needs text or coding");
    }

    void check_patient_reference(const json& resource, const char* name, bool required, const std::string& at) {
        if (!resource.contains(name)) {
            if (required) fail(at, std::string(name) + " is required");
            return;
        }
        const json& reference = resource[name];
        if (!reference.is_object() || !reference.contains("reference") || !reference["reference"].is_string())
            fail(at + "." + name, "must be a Reference with a reference");
        else if (!patients_.count(reference["reference"].get<std::string>()))
            fail(at + "." + name, "does not resolve to a Patient in the Bundle: " + reference["reference"].get<std::string>());
    }

    void check_date(const json& resource, const char* name, const std::string& at) {
        if (resource.contains(name) && !(resource[name].is_string() && is_date(resource[name])))
            fail(at + "." + name, "not a date: " + resource[name].dump());
    }

    std::vector<std::string>& errors_;
    std::set<std::string> patients_;
};

}  // namespace

json fhir_bundle(const json& record, const std::string& record_key) {
    BundleWriter writer(record_key);
    const json empty = json::object();
    const json& patient = record.is_object() && record.contains("patient") ? record["patient"] : empty;
    const json subject = {{"reference", writer.add("patient", patient_resource(patient))}};
    const std::string date = [&] {
        const std::string text = field(record, "encounter_date");
        return is_date(text) ? text : std::string();
    }();
    auto items = [&](const char* name) {
        return record.is_object() && record.contains(name) && record[name].is_array() ? record[name] : json::array();
    };

    if (patient.is_object() && patient.contains("age") && patient["age"].is_number()) {
        json age = observation(subject, date, coded_concept("http://loinc.org", "30525-0", "Age", "Age"));
        age["valueQuantity"] = {{"value", patient["age"]},
                                {"unit", "a"},
                                {"system", "http://unitsofmeasure.org"},
                                {"code", "a"}};
        writer.add("age", std::move(age));
    }

    const json assessment = items("assessment");
    for (std::size_t i = 0; i < assessment.size(); ++i) {
        const std::string problem = trimmed(assessment[i]);
        if (problem.empty()) continue;
        json condition = {{"resourceType", "Condition"},
                          {"category", json::array({{{"coding", json::array({{
                                                          {"system", "http://terminology.hl7.org/CodeSystem/condition-category"},
                                                          {"code", "encounter-diagnosis"},
                                                          {"display", "Encounter Diagnosis"}}})}}})},
                          {"code", text_concept(problem)},
                          {"subject", subject}};
        if (!date.empty()) condition["recordedDate"] = date;
        writer.add("condition/" + std::to_string(i), std::move(condition));
    }

    const json medications = items("medications");
    for (std::size_t i = 0; i < medications.size(); ++i) {
        const std::string name = field(medications[i], "name");
        if (name.empty()) continue;
        json statement = {{"resourceType", "MedicationStatement"},
                          {"status", "active"},
                          {"medicationCodeableConcept", text_concept(name)},
                          {"subject", subject}};
        std::string dosage = field(medications[i], "dose");
        if (const std::string frequency = field(medications[i], "frequency"); !frequency.empty())
            dosage += (dosage.empty() ? "" : " ") + frequency;
        if (!dosage.empty()) statement["dosage"] = json::array({{{"text", dosage}}});
        if (!date.empty()) statement["dateAsserted"] = date;
        writer.add("medication/" + std::to_string(i), std::move(statement));
    }

    const json allergies = items("allergies");
    for (std::size_t i = 0; i < allergies.size(); ++i) {
        const std::string substance = trimmed(allergies[i]);
        if (substance.empty()) continue;
        json allergy = {
            {"resourceType", "AllergyIntolerance"},
            {"clinicalStatus",
             {{"coding", json::array({{{"system", "http://terminology.hl7.org/CodeSystem/allergyintolerance-clinical"},
                                       {"code", "active"}}})}}},
            {"code", states_no_allergy(substance)
                         ? coded_concept("http://snomed.info/sct", "716186003", "No known allergy", substance)
                         : text_concept(substance)},
            {"patient", subject}};
        if (!date.empty()) allergy["recordedDate"] = date;
        writer.add("allergy/" + std::to_string(i), std::move(allergy));
    }

    const json observations = items("observations");
    for (std::size_t i = 0; i < observations.size(); ++i) {
        const std::string name = field(observations[i], "name");
        const std::string value = field(observations[i], "value");
        if (name.empty() || value.empty()) continue;
        const std::string unit = field(observations[i], "unit");
        json resource = observation(subject, date, text_concept(name));
        if (const std::optional<double> number = decimal(value); number && !unit.empty())
            resource["valueQuantity"] = {{"value", *number}, {"unit", unit}};
        else
            resource["valueString"] = unit.empty() ? value : value + " " + unit;
        writer.add("observation/" + std::to_string(i), std::move(resource));
    }
    return writer.bundle();
}

std::vector<std::string> fhir_structure_errors(const json& bundle) {
    std::vector<std::string> errors;
    find_empty_values(bundle, "", errors);
    StructureChecker(errors).check(bundle);
    return errors;
}

}  // namespace folio::app
