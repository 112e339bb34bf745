#include <QTest>
#include <QtCore/qfloat16.h>  // QCOMPARE of nlohmann::json weighs qfloat16 overloads, which need the whole type

#include <algorithm>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "app/fhir.h"

using namespace folio::app;
using nlohmann::json;

namespace {

const json kNote = json::parse(R"({
  "patient": {"name": "Maria Lopez", "date_of_birth": "1969-11-02", "age": 54, "sex": "female"},
  "encounter_date": "2024-03-12",
  "chief_complaint": "follow-up of hypertension",
  "medications": [
    {"name": "Lisinopril", "dose": "20 mg", "route": "PO", "frequency": "once daily"},
    {"name": "Metformin", "dose": null, "route": null, "frequency": null}
  ],
  "allergies": ["Penicillin", "NKDA"],
  "vitals": [
    {"name": "BP", "value": "142/88", "unit": "mmHg"},
    {"name": "Pulse", "value": "78", "unit": null},
    {"name": "Pain score", "value": "3/10", "unit": null}
  ],
  "labs": [
    {"name": "HbA1c", "value": "7.2", "unit": "%"},
    {"name": "Glucose", "value": "154", "unit": "mg/dl"},
    {"name": "Urine protein", "value": "negative", "unit": null}
  ],
  "diagnoses": [
    {"description": "Essential hypertension", "icd10": "I10"},
    {"description": "Type 2 diabetes mellitus", "icd10": null}
  ],
  "plan": ["Continue lisinopril", "Recheck HbA1c in 3 months"]
})");

std::vector<json> resources_of(const json& bundle, const std::string& type) {
    std::vector<json> found;
    for (const json& entry : bundle["entry"])
        if (entry["resource"]["resourceType"] == type) found.push_back(entry["resource"]);
    return found;
}

bool has_error(const std::vector<std::string>& errors, const std::string& part) {
    return std::any_of(errors.begin(), errors.end(),
                       [&](const std::string& error) { return error.find(part) != std::string::npos; });
}

QString joined(const std::vector<std::string>& errors) {
    QString text;
    for (const std::string& error : errors) text += QString::fromStdString(error) + "\n";
    return text;
}

}  // namespace

class FhirTest : public QObject {
    Q_OBJECT

private slots:
    void clinical_note_becomes_a_sound_collection_bundle() {
        const json bundle = fhir_bundle(kNote, std::string(64, 'a'));
        const std::vector<std::string> errors = fhir_structure_errors(bundle);
        QVERIFY2(errors.empty(), qPrintable(joined(errors)));
        QCOMPARE(bundle["resourceType"], "Bundle");
        QCOMPARE(bundle["type"], "collection");

        const std::vector<json> patients = resources_of(bundle, "Patient");
        QCOMPARE(patients.size(), std::size_t(1));
        QCOMPARE(patients[0]["name"][0]["text"], "Maria Lopez");
        QCOMPARE(patients[0]["gender"], "female");
        QCOMPARE(patients[0]["birthDate"], "1969-11-02");
        const std::string patient_url = bundle["entry"][0]["fullUrl"];
        QVERIFY(patient_url.rfind("urn:uuid:", 0) == 0);

        const std::vector<json> conditions = resources_of(bundle, "Condition");
        QCOMPARE(conditions.size(), std::size_t(2));
        QCOMPARE(conditions[0]["code"]["coding"][0]["system"], "http://hl7.org/fhir/sid/icd-10-cm");
        QCOMPARE(conditions[0]["code"]["coding"][0]["code"], "I10");
        QCOMPARE(conditions[1]["code"]["text"], "Type 2 diabetes mellitus");
        QVERIFY(!conditions[1]["code"].contains("coding"));  // the note states no code: none is made up
        QCOMPARE(conditions[0]["subject"]["reference"], patient_url);
        QCOMPARE(conditions[0]["recordedDate"], "2024-03-12");
        QCOMPARE(conditions[0]["category"][0]["coding"][0]["code"], "encounter-diagnosis");

        const std::vector<json> medications = resources_of(bundle, "MedicationStatement");
        QCOMPARE(medications.size(), std::size_t(2));
        QCOMPARE(medications[0]["status"], "active");
        QCOMPARE(medications[0]["medicationCodeableConcept"]["text"], "Lisinopril");
        QCOMPARE(medications[0]["dosage"][0]["text"], "20 mg PO once daily");
        QCOMPARE(medications[0]["dosage"][0]["route"]["coding"][0]["code"], "26643006");  // SNOMED CT oral route
        const json dose = medications[0]["dosage"][0]["doseAndRate"][0]["doseQuantity"];
        QCOMPARE(dose["value"].get<double>(), 20.0);
        QCOMPARE(dose["code"], "mg");
        QCOMPARE(dose["system"], "http://unitsofmeasure.org");
        QVERIFY(!medications[1].contains("dosage"));  // no dose or frequency: no empty dosage (ele-1)

        const std::vector<json> allergies = resources_of(bundle, "AllergyIntolerance");
        QCOMPARE(allergies.size(), std::size_t(2));
        QCOMPARE(allergies[0]["code"]["text"], "Penicillin");
        QCOMPARE(allergies[0]["patient"]["reference"], patient_url);
        QCOMPARE(allergies[1]["code"]["coding"][0]["code"], "716186003");  // "NKDA": no known allergy

        // The age (no Patient element holds one), three vital signs and three labs.
        const std::vector<json> observations = resources_of(bundle, "Observation");
        QCOMPARE(observations.size(), std::size_t(7));
        QCOMPARE(observations[0]["code"]["coding"][0]["code"], "30525-0");
        QCOMPARE(observations[0]["valueQuantity"]["value"], 54);
        const json& pressure = observations[1];
        QCOMPARE(pressure["category"][0]["coding"][0]["code"], "vital-signs");
        QCOMPARE(pressure["code"]["coding"][0]["code"], "85354-9");
        QVERIFY(!pressure.contains("valueQuantity") && !pressure.contains("valueString"));
        QCOMPARE(pressure["component"][0]["code"]["coding"][0]["code"], "8480-6");
        QCOMPARE(pressure["component"][0]["valueQuantity"]["value"].get<double>(), 142.0);
        QCOMPARE(pressure["component"][1]["code"]["coding"][0]["code"], "8462-4");
        QCOMPARE(pressure["component"][1]["valueQuantity"]["value"].get<double>(), 88.0);
        QCOMPARE(pressure["component"][1]["valueQuantity"]["code"], "mm[Hg]");
        QCOMPARE(observations[2]["code"]["coding"][0]["code"], "8867-4");  // "Pulse": heart rate
        QCOMPARE(observations[2]["valueQuantity"]["code"], "/min");        // a pulse is counted per minute
        QCOMPARE(observations[3]["code"]["text"], "Pain score");           // no vital sign Folio codes
        QCOMPARE(observations[3]["valueString"], "3/10");
        QCOMPARE(observations[4]["category"][0]["coding"][0]["code"], "laboratory");
        QCOMPARE(observations[4]["valueQuantity"]["value"].get<double>(), 7.2);
        QCOMPARE(observations[4]["valueQuantity"]["code"], "%");
        QCOMPARE(observations[5]["valueQuantity"]["unit"], "mg/dl");  // as written, coded in UCUM
        QCOMPARE(observations[5]["valueQuantity"]["code"], "mg/dL");
        QCOMPARE(observations[6]["valueString"], "negative");
        for (const json& observation : observations) {
            QCOMPARE(observation["status"], "final");
            QCOMPARE(observation["effectiveDateTime"], "2024-03-12");
        }

        const std::vector<json> plans = resources_of(bundle, "CarePlan");
        QCOMPARE(plans.size(), std::size_t(1));
        QCOMPARE(plans[0]["intent"], "plan");
        QCOMPARE(plans[0]["subject"]["reference"], patient_url);
        QCOMPARE(plans[0]["note"][1]["text"], "Recheck HbA1c in 3 months");
    }

    // The schema lets a model copy any word of the note as a diagnosis's
    // code: only one in ICD-10's shape becomes a coding.
    void only_icd10_shaped_codes_are_coded() {
        json note = kNote;
        note["diagnoses"][0]["icd10"] = "EXAM";
        const std::vector<json> conditions = resources_of(fhir_bundle(note, "key"), "Condition");
        QCOMPARE(conditions[0]["code"], json({{"text", "Essential hypertension"}}));
    }

    void uuids_are_stable_per_record_and_unique() {
        const json first = fhir_bundle(kNote, std::string(64, 'a'));
        QCOMPARE(fhir_bundle(kNote, std::string(64, 'a')), first);
        const json other = fhir_bundle(kNote, std::string(64, 'b'));
        QVERIFY(other["entry"][0]["fullUrl"] != first["entry"][0]["fullUrl"]);
        QVERIFY(other["id"] != first["id"]);
    }

    void sparse_record_still_gives_a_sound_bundle() {
        const json sparse = json::parse(R"({
          "patient": {"name": "", "date_of_birth": "1969-02-30", "age": null, "sex": "unknown"},
          "encounter_date": "March 12", "chief_complaint": "", "diagnoses": [{"description": "", "icd10": "I10"}],
          "medications": [], "allergies": [], "vitals": [{"name": "Pulse", "value": "", "unit": null}],
          "labs": [{"name": "", "value": "5", "unit": "mg"}], "plan": ["", " "]
        })");
        for (const json& record : {sparse, json(nullptr), json::object()}) {
            const json bundle = fhir_bundle(record, "key");
            const std::vector<std::string> errors = fhir_structure_errors(bundle);
            QVERIFY2(errors.empty(), qPrintable(joined(errors)));
            QCOMPARE(bundle["entry"].size(), std::size_t(1));  // the Patient alone
        }
        const json bundle = fhir_bundle(sparse, "key");
        QCOMPARE(bundle["entry"][0]["resource"]["gender"], "unknown");
        QVERIFY(!bundle["entry"][0]["resource"].contains("name"));
        QVERIFY(!bundle["entry"][0]["resource"].contains("birthDate"));  // February 30 is no date
    }

    void validator_finds_what_breaks_r4() {
        const json good = fhir_bundle(kNote, "key");
        auto broken = [&](auto&& edit) {
            json bundle = good;
            edit(bundle);
            return fhir_structure_errors(bundle);
        };
        // entry 0 is the Patient, 1 the age Observation, 2-3 Conditions,
        // 4-5 MedicationStatements, 6-7 AllergyIntolerances, 8-10 vital
        // signs, 11-13 labs, 14 the CarePlan.
        QVERIFY(has_error(broken([](json& b) { b["resourceType"] = "Bundel"; }), "resourceType must be \"Bundle\""));
        QVERIFY(has_error(broken([](json& b) { b.erase("type"); }), "type is required"));
        QVERIFY(has_error(broken([](json& b) { b["type"] = "bag"; }), "not a Bundle type code"));
        QVERIFY(has_error(broken([](json& b) { b["entry"][0]["resource"]["gender"] = "f"; }),
                          "not an AdministrativeGender code"));
        QVERIFY(has_error(broken([](json& b) { b["entry"][2]["resource"].erase("subject"); }), "subject is required"));
        QVERIFY(has_error(broken([](json& b) { b["entry"][2]["resource"]["subject"]["reference"] = "urn:uuid:x"; }),
                          "does not resolve to a Patient"));
        QVERIFY(has_error(broken([](json& b) { b["entry"][4]["resource"].erase("status"); }), "status is required"));
        QVERIFY(has_error(broken([](json& b) { b["entry"][4]["resource"]["status"] = "taking"; }),
                          "not a code of its value set"));
        QVERIFY(has_error(broken([](json& b) { b["entry"][4]["resource"].erase("medicationCodeableConcept"); }),
                          "medication[x] is required"));
        QVERIFY(has_error(broken([](json& b) {
                              b["entry"][4]["resource"]["medicationReference"] = {{"reference", "urn:uuid:m"}};
                          }),
                          "medication[x] is required, once"));
        QVERIFY(has_error(broken([](json& b) { b["entry"][6]["resource"].erase("patient"); }), "patient is required"));
        QVERIFY(has_error(broken([](json& b) { b["entry"][6]["resource"].erase("clinicalStatus"); }), "ait-1"));
        QVERIFY(has_error(broken([](json& b) {
                              b["entry"][6]["resource"]["verificationStatus"] = {
                                  {"coding", json::array({{{"code", "entered-in-error"}}})}};
                          }),
                          "ait-2"));
        QVERIFY(has_error(broken([](json& b) { b["entry"][8]["resource"].erase("code"); }), "code is required"));
        QVERIFY(has_error(broken([](json& b) { b["entry"][8]["resource"]["status"] = "done"; }),
                          "not a code of its value set"));
        QVERIFY(has_error(broken([](json& b) { b["entry"][11]["resource"]["valueString"] = "7.2 %"; }),
                          "value[x] may appear once"));
        QVERIFY(has_error(broken([](json& b) { b["entry"][11]["resource"]["valueQuantity"]["value"] = "7.2"; }),
                          "decimal number"));
        QVERIFY(has_error(broken([](json& b) { b["entry"][12]["resource"]["valueQuantity"].erase("system"); }),
                          "qty-3"));
        QVERIFY(has_error(broken([](json& b) { b["entry"][8]["resource"]["component"][0].erase("code"); }),
                          "component[0]: code is required"));
        QVERIFY(has_error(broken([](json& b) {
                              b["entry"][4]["resource"]["dosage"][0]["doseAndRate"][0]["doseQuantity"]["value"] = "20";
                          }),
                          "doseQuantity: value must be a decimal number"));
        QVERIFY(has_error(broken([](json& b) { b["entry"][9]["resource"]["effectiveDateTime"] = "12/03/2024"; }),
                          "not a date"));
        QVERIFY(has_error(broken([](json& b) { b["entry"][14]["resource"].erase("intent"); }), "intent is required"));
        QVERIFY(has_error(broken([](json& b) { b["entry"][14]["resource"]["status"] = "ongoing"; }),
                          "not a code of its value set"));
        QVERIFY(has_error(broken([](json& b) { b["entry"][14]["resource"]["note"][0] = {{"author", "x"}}; }),
                          "an Annotation needs its text"));
        QVERIFY(has_error(broken([](json& b) { b["entry"][3]["fullUrl"] = b["entry"][2]["fullUrl"]; }), "bdl-7"));
        QVERIFY(has_error(broken([](json& b) { b["entry"][3]["fullUrl"] = "condition-2"; }), "not a urn:uuid"));
        QVERIFY(has_error(broken([](json& b) { b["entry"][3].erase("resource"); }), "resource is required"));
        QVERIFY(has_error(broken([](json& b) { b["entry"][3]["resource"]["resourceType"] = "Encounter"; }),
                          "resourceType must be Patient"));
        QVERIFY(has_error(broken([](json& b) { b["entry"][2]["resource"]["code"]["text"] = ""; }), "ele-1"));
        QVERIFY(has_error(broken([](json& b) { b["entry"][4]["resource"]["dosage"] = json::array(); }), "ele-1"));
    }
};

QTEST_GUILESS_MAIN(FhirTest)
#include "tst_fhir.moc"
