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

#include "app/pack_validators.h"
#include "app/value_normalize.h"
#include "app/vital_signs.h"

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
constexpr std::array kCarePlanStatuses = {"draft",     "active",           "on-hold", "revoked",
                                          "completed", "entered-in-error", "unknown"};
constexpr std::array kCarePlanIntents = {"proposal", "plan", "order", "option"};

constexpr const char* kLoinc = "http://loinc.org";
constexpr const char* kUcum = "http://unitsofmeasure.org";
constexpr const char* kSnomed = "http://snomed.info/sct";
// The clinical modification US notes code in; a code the note states is
// kept as written.
constexpr const char* kIcd10Cm = "http://hl7.org/fhir/sid/icd-10-cm";

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

json coded_concept(std::string_view system, std::string_view code, std::string_view display, const std::string& text) {
    return {{"coding", json::array({{{"system", std::string(system)},
                                     {"code", std::string(code)},
                                     {"display", std::string(display)}}})},
            {"text", text}};
}

json ucum_quantity(double value, const std::string& unit, std::string_view code) {
    return {{"value", value}, {"unit", unit}, {"system", kUcum}, {"code", std::string(code)}};
}

// A number and its unit as a Quantity, coded in UCUM where value_normalize
// knows the unit ("mg/dl" is mg/dL, "bpm" /min), else with the unit as
// written; nullopt unless the value is one plain number with a unit.
std::optional<json> measured_quantity(const std::string& value, const std::string& unit) {
    const std::optional<double> number = decimal(value);
    if (!number || unit.empty()) return std::nullopt;
    if (const std::optional<Quantity> known = normalize_quantity(value + " " + unit))
        return ucum_quantity(known->value, unit, known->unit);
    return json{{"value", *number}, {"unit", unit}};
}

json observation_category(const char* code, const char* display) {
    return json::array({{{"coding", json::array({{{"system", "http://terminology.hl7.org/CodeSystem/observation-category"},
                                                   {"code", code},
                                                   {"display", display}}})}}});
}

struct RouteCode {
    std::string_view written;  // lowercase, letters only
    std::string_view code, display;
};

// SNOMED CT routes of administration (the FHIR R4 route-codes value set)
// for the ways notes write the common routes.
constexpr RouteCode kRoutes[] = {
    {"po", "26643006", "Oral route"},           {"oral", "26643006", "Oral route"},
    {"orally", "26643006", "Oral route"},       {"bymouth", "26643006", "Oral route"},
    {"iv", "47625008", "Intravenous route"},    {"intravenous", "47625008", "Intravenous route"},
    {"intravenously", "47625008", "Intravenous route"},
    {"im", "78421000", "Intramuscular route"},  {"intramuscular", "78421000", "Intramuscular route"},
    {"intramuscularly", "78421000", "Intramuscular route"},
    {"sc", "34206005", "Subcutaneous route"},   {"sq", "34206005", "Subcutaneous route"},
    {"subq", "34206005", "Subcutaneous route"}, {"subcut", "34206005", "Subcutaneous route"},
    {"subcutaneous", "34206005", "Subcutaneous route"}, {"subcutaneously", "34206005", "Subcutaneous route"},
    {"sl", "37839007", "Sublingual route"},     {"sublingual", "37839007", "Sublingual route"},
    {"topical", "6064005", "Topical route"},    {"topically", "6064005", "Topical route"},
    {"transdermal", "45890007", "Transdermal route"},
    {"pr", "37161004", "Rectal route"},         {"rectal", "37161004", "Rectal route"},
    {"rectally", "37161004", "Rectal route"},
};

json route_concept(const std::string& route) {
    std::string written;
    for (const char c : route)
        if (std::isalpha(static_cast<unsigned char>(c))) written += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    for (const RouteCode& known : kRoutes)
        if (known.written == written) return coded_concept(kSnomed, known.code, known.display, route);
    return text_concept(route);
}

// The note's dose, route and frequency as one Dosage: its text as the note
// says it, the route coded where it is a common one, the dose a UCUM
// Quantity where it is one. Empty when the note gives none of them.
json medication_dosage(const json& medication) {
    const std::string dose = field(medication, "dose"), route = field(medication, "route"),
                      frequency = field(medication, "frequency");
    std::string text;
    for (const std::string* part : {&dose, &route, &frequency})
        if (!part->empty()) text += (text.empty() ? "" : " ") + *part;
    json dosage = json::object();
    if (text.empty()) return dosage;
    dosage["text"] = text;
    if (!route.empty()) dosage["route"] = route_concept(route);
    if (const std::optional<Quantity> amount = normalize_quantity(dose))
        dosage["doseAndRate"] = json::array({{{"doseQuantity", ucum_quantity(amount->value, amount->original_unit, amount->unit)}}});
    return dosage;
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
    // normalize_date refuses days a month does not have ("1969-02-30").
    if (const std::optional<std::string> birth = normalize_date(field(patient, "date_of_birth"));
        birth && is_date(*birth))
        resource["birthDate"] = *birth;
    return resource;
}

json observation(const json& subject, const std::string& date, json code) {
    json resource = {{"resourceType", "Observation"}, {"status", "final"}, {"code", std::move(code)}, {"subject", subject}};
    if (!date.empty()) resource["effectiveDateTime"] = date;
    return resource;
}

// A lab result: its value a Quantity where it is one number with a unit,
// else the text as written ("negative", "< 5 mg/L"). Null without a name or value.
json lab_observation(const json& item, const json& subject, const std::string& date) {
    const std::string name = field(item, "name"), value = field(item, "value"), unit = field(item, "unit");
    if (name.empty() || value.empty()) return nullptr;
    json resource = observation(subject, date, text_concept(name));
    resource["category"] = observation_category("laboratory", "Laboratory");
    if (std::optional<json> quantity = measured_quantity(value, unit)) resource["valueQuantity"] = std::move(*quantity);
    else resource["valueString"] = unit.empty() ? value : value + " " + unit;
    return resource;
}

// A vital sign, LOINC-coded when the note's name is one Folio knows
// (vital_signs.h); blood pressure as its two component pressures; a bare
// number in the sign's one unit when the sign has only one (a pulse of 72
// is 72 /min). Null without a name or value.
json vital_sign_observation(const json& item, const json& subject, const std::string& date) {
    const std::string name = field(item, "name"), value = field(item, "value"), unit = field(item, "unit");
    if (name.empty() || value.empty()) return nullptr;
    const VitalSign* sign = vital_sign_named(name);
    json resource = observation(subject, date, sign ? coded_concept(kLoinc, sign->loinc, sign->display, name)
                                                    : text_concept(name));
    resource["category"] = observation_category("vital-signs", "Vital Signs");
    if (sign && is_blood_pressure(*sign)) {
        if (const std::optional<BloodPressure> pressure = normalize_blood_pressure(unit.empty() ? value : value + " " + unit)) {
            const std::string written_unit = unit.empty() ? "mmHg" : unit;
            resource["component"] = json::array(
                {{{"code", coded_concept(kLoinc, kSystolicLoinc, "Systolic blood pressure", "Systolic blood pressure")},
                  {"valueQuantity", ucum_quantity(pressure->systolic, written_unit, pressure->unit)}},
                 {{"code", coded_concept(kLoinc, kDiastolicLoinc, "Diastolic blood pressure", "Diastolic blood pressure")},
                  {"valueQuantity", ucum_quantity(pressure->diastolic, written_unit, pressure->unit)}}});
            return resource;
        }
    }
    if (std::optional<json> quantity = measured_quantity(value, unit)) {
        resource["valueQuantity"] = std::move(*quantity);
    } else if (const std::optional<double> number = decimal(value);
               number && unit.empty() && sign && sign->ranges.size() == 1) {
        const std::string ucum(sign->ranges.front().ucum);
        resource["valueQuantity"] = ucum_quantity(*number, ucum, ucum);
    } else {
        resource["valueString"] = unit.empty() ? value : value + " " + unit;
    }
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
        else if (type == "CarePlan") check_care_plan(resource, at);
        else fail(at, "resourceType must be Patient, Condition, MedicationStatement, AllergyIntolerance, Observation or "
                      "CarePlan");
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
        else if (statement.contains("dosage"))
            for (std::size_t i = 0; i < statement["dosage"].size(); ++i) {
                const json& dosage = statement["dosage"][i];
                const std::string where = at + ".dosage[" + std::to_string(i) + "]";
                if (dosage.contains("route")) check_concept(dosage, "route", true, where);
                if (dosage.contains("doseAndRate") && dosage["doseAndRate"].is_array())
                    for (const json& rate : dosage["doseAndRate"])
                        if (rate.contains("doseQuantity")) check_quantity(rate["doseQuantity"], where + ".doseQuantity");
            }
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
        if (observation.contains("valueQuantity")) check_quantity(observation["valueQuantity"], at + ".valueQuantity");
        if (observation.contains("valueString") && !observation["valueString"].is_string())
            fail(at + ".valueString", "must be a string");
        if (observation.contains("component")) {
            if (!observation["component"].is_array()) {
                fail(at + ".component", "must be an array");
                return;
            }
            for (std::size_t i = 0; i < observation["component"].size(); ++i) {
                const json& component = observation["component"][i];
                const std::string where = at + ".component[" + std::to_string(i) + "]";
                check_concept(component, "code", true, where);
                if (component.contains("valueQuantity")) check_quantity(component["valueQuantity"], where + ".valueQuantity");
            }
        }
    }

    void check_care_plan(const json& plan, const std::string& at) {
        check_code(plan, "status", kCarePlanStatuses, at);
        check_code(plan, "intent", kCarePlanIntents, at);
        check_patient_reference(plan, "subject", true, at);
        check_date(plan, "created", at);
        if (!plan.contains("note")) return;
        if (!plan["note"].is_array()) fail(at + ".note", "must be an array of Annotation");
        else
            for (const json& note : plan["note"])
                if (!note.is_object() || !note.contains("text") || !note["text"].is_string())
                    fail(at + ".note", "an Annotation needs its text");
    }

    void check_quantity(const json& quantity, const std::string& at) {
        if (!quantity.is_object() || (quantity.contains("value") && !quantity["value"].is_number()))
            fail(at, "value must be a decimal number");
        else if (quantity.contains("code") && !quantity.contains("system"))
            fail(at, "a coded unit needs its system (qty-3)");
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
        json age = observation(subject, date, coded_concept(kLoinc, "30525-0", "Age", "Age"));
        age["valueQuantity"] = {{"value", patient["age"]}, {"unit", "a"}, {"system", kUcum}, {"code", "a"}};
        writer.add("age", std::move(age));
    }

    const json diagnoses = items("diagnoses");
    for (std::size_t i = 0; i < diagnoses.size(); ++i) {
        const std::string problem = field(diagnoses[i], "description");
        if (problem.empty()) continue;
        json code = text_concept(problem);
        // Only a code in ICD-10's shape: the schema lets a model copy any word of the note there.
        if (const std::string icd10 = field(diagnoses[i], "icd10"); is_icd10_code(icd10))
            code["coding"] = json::array({{{"system", kIcd10Cm}, {"code", icd10}}});
        json condition = {{"resourceType", "Condition"},
                          {"category", json::array({{{"coding", json::array({{
                                                          {"system", "http://terminology.hl7.org/CodeSystem/condition-category"},
                                                          {"code", "encounter-diagnosis"},
                                                          {"display", "Encounter Diagnosis"}}})}}})},
                          {"code", std::move(code)},
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
        if (json dosage = medication_dosage(medications[i]); !dosage.empty())
            statement["dosage"] = json::array({std::move(dosage)});
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
                         ? coded_concept(kSnomed, "716186003", "No known allergy", substance)
                         : text_concept(substance)},
            {"patient", subject}};
        if (!date.empty()) allergy["recordedDate"] = date;
        writer.add("allergy/" + std::to_string(i), std::move(allergy));
    }

    const json vitals = items("vitals");
    for (std::size_t i = 0; i < vitals.size(); ++i)
        if (json resource = vital_sign_observation(vitals[i], subject, date); !resource.is_null())
            writer.add("vital/" + std::to_string(i), std::move(resource));
    const json labs = items("labs");
    for (std::size_t i = 0; i < labs.size(); ++i)
        if (json resource = lab_observation(labs[i], subject, date); !resource.is_null())
            writer.add("lab/" + std::to_string(i), std::move(resource));

    json plan_notes = json::array();
    for (const json& step : items("plan"))
        if (const std::string text = trimmed(step); !text.empty()) plan_notes.push_back({{"text", text}});
    if (!plan_notes.empty()) {
        // The note's plan is free text: a CarePlan that is the plan (intent
        // "plan"), each step a note, rather than activities Folio cannot code.
        json care_plan = {{"resourceType", "CarePlan"},
                          {"status", "active"},
                          {"intent", "plan"},
                          {"subject", subject},
                          {"note", std::move(plan_notes)}};
        if (!date.empty()) care_plan["created"] = date;
        writer.add("careplan", std::move(care_plan));
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
