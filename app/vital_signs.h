#pragma once
// The vital signs a clinical note reports, as the medical pack's FHIR
// mapping (app/fhir.h) codes them and its validators (app/pack_validators.h)
// check them: recognised by the names notes use ("BP", "pulse", "SpO2",
// "Temp", "Wt"), with the LOINC code of the FHIR R4 vital signs profile
// (https://hl7.org/fhir/R4/observation-vitalsigns.html) and the range of
// values a living patient can show, per UCUM unit.

#include <span>
#include <string_view>

namespace folio::app {

// Physiologically plausible values in one UCUM unit; outside them a value is
// a misread (a unit confused, a digit lost), not a finding.
struct PlausibleRange {
    std::string_view ucum;
    double low = 0, high = 0;
};

struct VitalSign {
    std::string_view key;      // "heart_rate"
    std::string_view loinc;    // "8867-4"
    std::string_view display;  // LOINC's display name, "Heart rate"
    // The units it is measured in; the first is what a note means when it
    // writes none (except temperature and weight, whose unit a bare number
    // leaves open: a value is then plausible in any of them).
    std::span<const PlausibleRange> ranges;
};

// Blood pressure is the panel 85354-9 with the systolic (8480-6) and
// diastolic (8462-4) pressures as components.
inline constexpr std::string_view kSystolicLoinc = "8480-6";
inline constexpr std::string_view kDiastolicLoinc = "8462-4";
inline constexpr PlausibleRange kSystolicRange = {"mm[Hg]", 50, 260};
inline constexpr PlausibleRange kDiastolicRange = {"mm[Hg]", 20, 160};

// The vital sign a note's name for a measurement stands for, ignoring case,
// spaces and punctuation; nullptr for anything else (a lab, "pain score").
const VitalSign* vital_sign_named(std::string_view name);

// Whether the vital sign is blood pressure (two pressures, not one value).
bool is_blood_pressure(const VitalSign& sign);

}  // namespace folio::app
