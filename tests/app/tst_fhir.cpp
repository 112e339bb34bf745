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
  "patient": {"name": "Maria Lopez", "age": 54, "sex": "female"},
  "encounter_date": "2024-03-12",
  "chief_complaint": "follow-up of hypertension",
  "assessment": ["Essential hypertension", "Type 2 diabetes mellitus"],
  "medications": [
    {"name": "Lisinopril", "dose": "20 mg", "frequency": "once daily"},
    {"name": "Metformin", "dose": null, "frequency": null}
  ],
  "allergies": ["Penicillin", "NKDA"],
  "observations": [
    {"name": "Blood pressure", "value": "142/88", "unit": "mmHg"},
    {"name": "HbA1c", "value": "7.2", "unit": "%"},
    {"name": "Smoking", "value": "never", "unit": null}
  ]
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
        QVERIFY(!patients[0].contains("birthDate"));
        const std::string patient_url = bundle["entry"][0]["fullUrl"];
        QVERIFY(patient_url.rfind("urn:uuid:", 0) == 0);

        const std::vector<json> conditions = resources_of(bundle, "Condition");
        QCOMPARE(conditions.size(), std::size_t(2));
        QCOMPARE(conditions[1]["code"]["text"], "Type 2 diabetes mellitus");
        QCOMPARE(conditions[0]["subject"]["reference"], patient_url);
        QCOMPARE(conditions[0]["recordedDate"], "2024-03-12");
        QCOMPARE(conditions[0]["category"][0]["coding"][0]["code"], "encounter-diagnosis");

        const std::vector<json> medications = resources_of(bundle, "MedicationStatement");
        QCOMPARE(medications.size(), std::size_t(2));
        QCOMPARE(medications[0]["status"], "active");
        QCOMPARE(medications[0]["medicationCodeableConcept"]["text"], "Lisinopril");
        QCOMPARE(medications[0]["dosage"][0]["text"], "20 mg once daily");
        QVERIFY(!medications[1].contains("dosage"));  // no dose or frequency: no empty dosage (ele-1)

        const std::vector<json> allergies = resources_of(bundle, "AllergyIntolerance");
        QCOMPARE(allergies.size(), std::size_t(2));
        QCOMPARE(allergies[0]["code"]["text"], "Penicillin");
        QCOMPARE(allergies[0]["patient"]["reference"], patient_url);
        QCOMPARE(allergies[1]["code"]["coding"][0]["code"], "716186003");  // "NKDA": no known allergy

        // The age (no Patient element holds one) and the three observations.
        const std::vector<json> observations = resources_of(bundle, "Observation");
        QCOMPARE(observations.size(), std::size_t(4));
        QCOMPARE(observations[0]["code"]["coding"][0]["code"], "30525-0");
        QCOMPARE(observations[0]["valueQuantity"]["value"], 54);
        QCOMPARE(observations[1]["valueString"], "142/88 mmHg");
        QCOMPARE(observations[2]["valueQuantity"]["value"].get<double>(), 7.2);
        QCOMPARE(observations[2]["valueQuantity"]["unit"], "%");
        QCOMPARE(observations[3]["valueString"], "never");
        for (const json& observation : observations) {
            QCOMPARE(observation["status"], "final");
            QCOMPARE(observation["effectiveDateTime"], "2024-03-12");
        }
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
          "patient": {"name": "", "age": null, "sex": "unknown"},
          "encounter_date": "March 12", "chief_complaint": "", "assessment": ["", "  "],
          "medications": [], "allergies": [], "observations": [{"name": "Pulse", "value": "", "unit": null}]
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
    }

    void validator_finds_what_breaks_r4() {
        const json good = fhir_bundle(kNote, "key");
        auto broken = [&](auto&& edit) {
            json bundle = good;
            edit(bundle);
            return fhir_structure_errors(bundle);
        };
        // entry 0 is the Patient, 1 the age Observation, 2-3 Conditions,
        // 4-5 MedicationStatements, 6-7 AllergyIntolerances, 8-10 Observations.
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
        QVERIFY(has_error(broken([](json& b) { b["entry"][9]["resource"]["valueString"] = "7.2 %"; }),
                          "value[x] may appear once"));
        QVERIFY(has_error(broken([](json& b) { b["entry"][9]["resource"]["valueQuantity"]["value"] = "7.2"; }),
                          "decimal number"));
        QVERIFY(has_error(broken([](json& b) { b["entry"][9]["resource"]["effectiveDateTime"] = "12/03/2024"; }),
                          "not a date"));
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
