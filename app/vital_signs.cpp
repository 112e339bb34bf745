#include "app/vital_signs.h"

#include <array>
#include <cctype>
#include <string>

namespace folio::app {
namespace {

// Ranges: the extremes reported in living adults and children, widened to
// round numbers (heart rate 20-250 /min, temperature 30-45 Cel).
constexpr PlausibleRange kBloodPressure[] = {kSystolicRange};
constexpr PlausibleRange kHeartRate[] = {{"/min", 20, 250}};
constexpr PlausibleRange kRespiratoryRate[] = {{"/min", 4, 80}};
constexpr PlausibleRange kTemperature[] = {{"Cel", 30, 45}, {"[degF]", 86, 113}};
constexpr PlausibleRange kOxygenSaturation[] = {{"%", 50, 100}};
constexpr PlausibleRange kWeight[] = {{"kg", 0.3, 350}, {"[lb_av]", 0.6, 770}, {"g", 300, 350000}};
constexpr PlausibleRange kHeight[] = {{"cm", 20, 250}, {"[in_i]", 8, 100}, {"m", 0.2, 2.5}};
constexpr PlausibleRange kBodyMassIndex[] = {{"kg/m2", 8, 100}};

constexpr std::array kVitalSigns = {
    VitalSign{"blood_pressure", "85354-9", "Blood pressure panel with all children optional", kBloodPressure},
    VitalSign{"heart_rate", "8867-4", "Heart rate", kHeartRate},
    VitalSign{"respiratory_rate", "9279-1", "Respiratory rate", kRespiratoryRate},
    VitalSign{"body_temperature", "8310-5", "Body temperature", kTemperature},
    VitalSign{"oxygen_saturation", "59408-5", "Oxygen saturation in Arterial blood by Pulse oximetry", kOxygenSaturation},
    VitalSign{"body_weight", "29463-7", "Body weight", kWeight},
    VitalSign{"body_height", "8302-2", "Body height", kHeight},
    VitalSign{"bmi", "39156-5", "Body mass index (BMI) [Ratio]", kBodyMassIndex},
};

struct Alias {
    std::string_view name;  // folded: lowercase letters and digits only
    std::size_t sign;       // index into kVitalSigns
};

constexpr Alias kAliases[] = {
    {"bp", 0},          {"bloodpressure", 0},   {"nibp", 0},
    {"hr", 1},          {"heartrate", 1},       {"pulse", 1},           {"pulserate", 1},  {"p", 1},
    {"rr", 2},          {"resp", 2},            {"respirations", 2},    {"respiratoryrate", 2},
    {"respiration", 2}, {"respiratory", 2},
    {"t", 3},           {"temp", 3},            {"temperature", 3},     {"bodytemperature", 3}, {"tmax", 3},
    {"spo2", 4},        {"sao2", 4},            {"o2sat", 4},           {"o2saturation", 4},
    {"oxygensaturation", 4}, {"pulseox", 4},    {"pulseoximetry", 4},   {"sat", 4},        {"sats", 4},
    {"wt", 5},          {"weight", 5},          {"bodyweight", 5},
    {"ht", 6},          {"height", 6},          {"bodyheight", 6},
    {"bmi", 7},         {"bodymassindex", 7},
};

std::string folded(std::string_view name) {
    std::string key;
    for (const char c : name)
        if (std::isalnum(static_cast<unsigned char>(c))) key += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    return key;
}

}  // namespace

const VitalSign* vital_sign_named(std::string_view name) {
    const std::string key = folded(name);
    for (const Alias& alias : kAliases)
        if (alias.name == key) return &kVitalSigns[alias.sign];
    return nullptr;
}

bool is_blood_pressure(const VitalSign& sign) { return &sign == &kVitalSigns[0]; }

}  // namespace folio::app
