#include "app/pack_validators.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <functional>
#include <map>
#include <optional>
#include <regex>
#include <stdexcept>

#include "app/value_normalize.h"
#include "app/vital_signs.h"

namespace folio::app {
namespace {

using nlohmann::json;
using Issues = std::vector<ValidationIssue>;

std::string text_at(const json& record, const char* name) {
    return record.is_object() && record.contains(name) && record[name].is_string() ? record[name].get<std::string>()
                                                                                   : std::string();
}

// A figure up to 4 significant digits, as a message shows it: "383,285" stays, 1.2e9 is "1.2e+09".
std::string shown(double value) {
    char text[32];
    std::snprintf(text, sizeof text, std::fabs(value) >= 1e15 ? "%.4g" : "%.0f", value);
    return text;
}

// ---- finance ----

// The record's `scale` as a factor; nullopt when it names none.
std::optional<double> record_scale(const json& record) {
    static const std::map<std::string, double> kScales = {
        {"units", 1}, {"thousands", 1e3}, {"millions", 1e6}, {"billions", 1e9}};
    const auto found = kScales.find(text_at(record, "scale"));
    return found == kScales.end() ? std::nullopt : std::optional(found->second);
}

const char* scale_name(double scale) {
    return scale == 1e3 ? "thousands" : scale == 1e6 ? "millions" : scale == 1e9 ? "billions" : "units";
}

struct Figure {
    double value = 0;     // in currency units: the printed number times its own scale word, else the record's scale
    double rounding = 0;  // half a unit of its last printed digit, in currency units
};

// A figure as the record prints it ("383,285", "(10,959)", "$ 1.2 billion"):
// exactly one number, else nullopt (null, "n/a", two numbers).
std::optional<Figure> figure(const json& record, const char* name, double scale) {
    const std::string text = text_at(record, name);
    const std::vector<WrittenNumber> numbers = numbers_in(text);
    if (numbers.size() != 1 || numbers[0].percent) return std::nullopt;
    const WrittenNumber& number = numbers[0];
    const double unit = number.scale != 1 ? number.scale : scale;
    return Figure{number.scale != 1 ? number.value : number.value * scale, 0.5 * std::pow(10.0, -number.decimals) * unit};
}

void check_balance_sheet(const json& record, std::span<const PageText>, Issues& issues) {
    const std::optional<double> scale = record_scale(record);
    if (!scale) return;
    const std::optional<Figure> assets = figure(record, "total_assets", *scale),
                                liabilities = figure(record, "total_liabilities", *scale),
                                equity = figure(record, "total_equity", *scale);
    if (!assets) return;
    // A statement that prints no total liabilities line still prints
    // "Total liabilities and shareholders' equity", which a reader may take
    // for it: it equals total assets.
    if (liabilities && std::fabs(liabilities->value - assets->value) <= liabilities->rounding + assets->rounding) {
        std::string message = "total liabilities equals total assets: it is the combined \"total liabilities and "
                              "equity\" line, not total liabilities";
        if (equity && assets->value - equity->value > assets->rounding + equity->rounding)
            message += " (total assets less total equity is " + shown((assets->value - equity->value) / *scale) + ")";
        issues.push_back({"/total_liabilities", Severity::Error, message});
        return;
    }
    if (!liabilities || !equity) return;
    const double gap = assets->value - liabilities->value - equity->value;
    if (std::fabs(gap) <= assets->rounding + liabilities->rounding + equity->rounding) return;
    // Temporary (mezzanine) equity and noncontrolling interests sit between
    // liabilities and equity on some balance sheets: a small gap can be them.
    const bool small = std::fabs(gap) <= 0.1 * std::fabs(assets->value);
    issues.push_back({"/total_assets", small ? Severity::Warning : Severity::Error,
                      "total assets " + text_at(record, "total_assets") + " is not total liabilities " +
                          text_at(record, "total_liabilities") + " plus total equity " + text_at(record, "total_equity") +
                          " (off by " + shown(gap / *scale) + " " + scale_name(*scale) + ")" +
                          (small ? "; temporary equity or noncontrolling interests may account for it" : "")});
}

constexpr const char* kStatementFigures[] = {"revenue",      "operating_income",  "net_income", "operating_cash_flow",
                                             "capital_expenditure", "total_assets", "total_liabilities", "total_equity"};

void check_scale(const json& record, std::span<const PageText> pages, Issues& issues) {
    const std::optional<double> scale = record_scale(record);
    if (!scale) return;
    // The scale declared on the pages where the record's figures are printed
    // ("(in millions, except per share data)"), by how many figures sit on
    // a page declaring it. Figures under 3 digits are found on too many pages to say.
    std::map<double, int> declared;
    std::map<double, int> first_page;
    for (const char* name : kStatementFigures) {
        const std::vector<WrittenNumber> numbers = numbers_in(text_at(record, name));
        // A figure with its own scale word says nothing about the table's.
        if (numbers.size() != 1 || numbers[0].percent || numbers[0].scale != 1) continue;
        const std::string digits = text_at(record, name).substr(numbers[0].begin, numbers[0].end - numbers[0].begin);
        if (std::count_if(digits.begin(), digits.end(), ::isdigit) < 3) continue;
        for (const PageText& page : pages) {
            if (page.text.find(digits) == std::string::npos) continue;
            const double page_scale = scale_from_context(page.text);
            if (page_scale == 1) continue;
            ++declared[page_scale];
            first_page.emplace(page_scale, page.page);
            break;
        }
    }
    const bool located = !declared.empty();
    // No figure found on a page (none extracted, or none as printed): what
    // most pages declare is weaker evidence, so only worth a look.
    if (!located)
        for (const PageText& page : pages)
            if (const double page_scale = scale_from_context(page.text); page_scale != 1) {
                ++declared[page_scale];
                first_page.emplace(page_scale, page.page);
            }
    if (!declared.empty()) {
        const auto most = std::max_element(declared.begin(), declared.end(),
                                           [](const auto& a, const auto& b) { return a.second < b.second; });
        if (most->first != *scale)
            issues.push_back(
                {"/scale", located ? Severity::Error : Severity::Warning,
                 std::string("the record's figures are in ") + scale_name(*scale) + ", but " +
                     (located ? "page " + std::to_string(first_page[most->first]) + ", where they are printed, declares "
                              : std::to_string(most->second) + " pages, the first page " +
                                    std::to_string(first_page[most->first]) + ", declare ") +
                     scale_name(most->first)});
    }
    // Net income over diluted EPS is the diluted share count. Registrants
    // have from about a hundred thousand to a few tens of billions of shares;
    // outside that the figures' scale is off (EPS is printed in currency units).
    const std::optional<Figure> net_income = figure(record, "net_income", *scale);
    const std::optional<Figure> eps = figure(record, "diluted_eps", 1);
    if (net_income && eps && eps->value != 0 && net_income->value != 0) {
        const double shares = std::fabs(net_income->value / eps->value);
        if (shares < 1e5 || shares > 1e11)
            issues.push_back({"/scale", Severity::Warning,
                              "net income " + text_at(record, "net_income") + " in " + scale_name(*scale) +
                                  " over diluted EPS " + text_at(record, "diluted_eps") + " implies " + shown(shares) +
                                  " shares, which no registrant has: the scale is likely wrong"});
    }
}

void check_income_statement(const json& record, std::span<const PageText>, Issues& issues) {
    const double scale = record_scale(record).value_or(1);
    const std::optional<Figure> revenue = figure(record, "revenue", scale);
    if (!revenue || revenue->value <= 0) return;
    // Operating income is revenue less operating expenses.
    if (const std::optional<Figure> operating = figure(record, "operating_income", scale);
        operating && operating->value > revenue->value + revenue->rounding + operating->rounding)
        issues.push_back({"/operating_income", Severity::Error,
                          "operating income " + text_at(record, "operating_income") + " exceeds revenue " +
                              text_at(record, "revenue")});
    // Possible with a large one-time gain, so only worth a look.
    if (const std::optional<Figure> net = figure(record, "net_income", scale);
        net && net->value > revenue->value + revenue->rounding + net->rounding)
        issues.push_back({"/net_income", Severity::Warning,
                          "net income " + text_at(record, "net_income") + " exceeds revenue " + text_at(record, "revenue") +
                              " (only a large one-time gain does that)"});
}

// ---- medical ----

struct Measurement {
    std::string pointer;  // "/vitals/0"
    std::string name, value, unit;
    const VitalSign* sign = nullptr;  // vitals only
};

std::vector<Measurement> measurements(const json& record, const char* list, bool vitals) {
    std::vector<Measurement> found;
    if (!record.is_object() || !record.contains(list) || !record[list].is_array()) return found;
    for (std::size_t i = 0; i < record[list].size(); ++i) {
        const json& item = record[list][i];
        Measurement m{std::string("/") + list + "/" + std::to_string(i), text_at(item, "name"), text_at(item, "value"),
                      text_at(item, "unit")};
        if (m.value.empty()) continue;
        if (vitals) m.sign = vital_sign_named(m.name);
        found.push_back(std::move(m));
    }
    return found;
}

// The two pressures of "142/88", however plausible.
std::optional<std::pair<double, double>> pressures(const std::string& value) {
    const std::vector<WrittenNumber> numbers = numbers_in(value);
    if (numbers.size() != 2 || value.find('/') == std::string::npos) return std::nullopt;
    return std::pair(numbers[0].value, numbers[1].value);
}

// The measurement as a UCUM quantity: its value with its unit; nullopt when
// the value is not one number or the unit is not one value_normalize knows.
std::optional<Quantity> ucum_quantity(const Measurement& m) {
    if (m.unit.empty()) return std::nullopt;
    return normalize_quantity(m.value + " " + m.unit);
}

bool is_number(const std::string& text) { return parse_decimal(text).has_value() && parse_decimal(text)->length == text.size(); }

// Labs that have no unit: ratios and indices.
bool unitless_lab(const std::string& name) {
    std::string key;
    for (const char c : name)
        if (std::isalnum(static_cast<unsigned char>(c))) key += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    return key == "inr" || key == "ph" || key == "specificgravity" || key == "sg" || key == "urinespecificgravity";
}

void check_units(const json& record, std::span<const PageText>, Issues& issues) {
    for (const Measurement& m : measurements(record, "vitals", true)) {
        if (m.sign && is_blood_pressure(*m.sign)) {
            if (!m.unit.empty() && !normalize_blood_pressure("120/80 " + m.unit))
                issues.push_back({m.pointer + "/unit", Severity::Error,
                                  m.name + " in \"" + m.unit + "\": blood pressure is measured in mmHg"});
            continue;
        }
        if (m.unit.empty()) {
            if (m.sign && m.sign->ranges.size() > 1 && is_number(m.value))
                issues.push_back({m.pointer + "/unit", Severity::Warning,
                                  m.name + " " + m.value + " has no unit, and " + std::string(m.sign->display) +
                                      " is written in more than one"});
            continue;
        }
        const std::optional<Quantity> quantity = ucum_quantity(m);
        if (!quantity) {
            if (is_number(m.value))
                issues.push_back({m.pointer + "/unit", Severity::Warning,
                                  "\"" + m.unit + "\" is not a unit Folio knows in UCUM"});
            continue;
        }
        if (m.sign && std::none_of(m.sign->ranges.begin(), m.sign->ranges.end(),
                                   [&](const PlausibleRange& r) { return r.ucum == quantity->unit; }))
            issues.push_back({m.pointer + "/unit", Severity::Error,
                              m.name + " in \"" + m.unit + "\" (" + quantity->unit + "): not a unit of " +
                                  std::string(m.sign->display)});
    }
    for (const Measurement& m : measurements(record, "labs", false)) {
        if (!is_number(m.value)) continue;  // "negative", "< 5": a finding, not a measurement to check
        if (m.unit.empty()) {
            if (!unitless_lab(m.name))
                issues.push_back({m.pointer + "/unit", Severity::Warning, m.name + " " + m.value + " has no unit"});
        } else if (!ucum_quantity(m)) {
            issues.push_back({m.pointer + "/unit", Severity::Warning,
                              "\"" + m.unit + "\" is not a unit Folio knows in UCUM"});
        }
    }
}

std::string range_text(const PlausibleRange& range) {
    return shown(range.low) + "-" + shown(range.high) + " " + std::string(range.ucum);
}

void check_ranges(const json& record, std::span<const PageText>, Issues& issues) {
    if (record.is_object() && record.contains("patient") && record["patient"].is_object()) {
        const json& age = record["patient"].value("age", json());
        if (age.is_number() && (age.get<double>() < 0 || age.get<double>() > 120))
            issues.push_back({"/patient/age", Severity::Error, "age " + age.dump() + " is outside 0-120 years"});
    }
    for (const Measurement& m : measurements(record, "vitals", true)) {
        if (!m.sign) continue;
        const std::string at = m.pointer + "/value";
        if (is_blood_pressure(*m.sign)) {
            const std::optional<std::pair<double, double>> bp = pressures(m.value);
            if (!bp) continue;
            const auto [systolic, diastolic] = *bp;
            if (systolic < kSystolicRange.low || systolic > kSystolicRange.high)
                issues.push_back({at, Severity::Error, "systolic pressure " + shown(systolic) + " is outside " +
                                                           range_text(kSystolicRange)});
            if (diastolic < kDiastolicRange.low || diastolic > kDiastolicRange.high)
                issues.push_back({at, Severity::Error, "diastolic pressure " + shown(diastolic) + " is outside " +
                                                           range_text(kDiastolicRange)});
            if (diastolic >= systolic)
                issues.push_back({at, Severity::Error, "diastolic pressure " + shown(diastolic) +
                                                           " is not below the systolic " + shown(systolic)});
            continue;
        }
        if (!is_number(m.value)) continue;
        const double value = parse_decimal(m.value)->value;
        // With a known unit, the range of that unit; without one, any of the sign's.
        std::vector<PlausibleRange> ranges(m.sign->ranges.begin(), m.sign->ranges.end());
        if (const std::optional<Quantity> quantity = ucum_quantity(m)) {
            std::erase_if(ranges, [&](const PlausibleRange& r) { return r.ucum != quantity->unit; });
            if (ranges.empty()) continue;  // a unit of another kind: the units validator says so
        } else if (!m.unit.empty()) {
            continue;
        }
        if (std::none_of(ranges.begin(), ranges.end(),
                         [&](const PlausibleRange& r) { return value >= r.low && value <= r.high; })) {
            std::string expected;
            for (const PlausibleRange& r : ranges) expected += (expected.empty() ? "" : " or ") + range_text(r);
            issues.push_back({at, Severity::Error,
                              m.name + " " + m.value + (m.unit.empty() ? "" : " " + m.unit) + " is outside " +
                                  expected + ", what a living patient shows"});
        }
    }
}

struct Date {
    int year = 0, month = 0, day = 0;
};

std::optional<Date> iso_date(const std::string& text) {
    const std::optional<std::string> iso = normalize_date(text);
    if (!iso || iso->size() != 10) return std::nullopt;
    return Date{std::stoi(iso->substr(0, 4)), std::stoi(iso->substr(5, 2)), std::stoi(iso->substr(8, 2))};
}

// Whole years from birth to the day, as an age is counted.
int years_between(const Date& birth, const Date& day) {
    const bool had_birthday = day.month > birth.month || (day.month == birth.month && day.day >= birth.day);
    return day.year - birth.year - (had_birthday ? 0 : 1);
}

void check_dates(const json& record, std::span<const PageText>, Issues& issues) {
    if (!record.is_object() || !record.contains("patient") || !record["patient"].is_object()) return;
    const json& patient = record["patient"];
    const std::optional<Date> birth = iso_date(text_at(patient, "date_of_birth"));
    const std::optional<Date> visit = iso_date(text_at(record, "encounter_date"));
    if (!birth) return;
    if (visit && years_between(*birth, *visit) < 0) {
        issues.push_back({"/patient/date_of_birth", Severity::Error,
                          "date of birth " + text_at(patient, "date_of_birth") + " is after the visit " +
                              text_at(record, "encounter_date")});
        return;
    }
    const json& age = patient.value("age", json());
    if (!visit || !age.is_number_integer()) return;
    // A note's age may be carried over from an earlier visit: a year either way passes.
    const int expected = years_between(*birth, *visit);
    if (std::abs(expected - age.get<int>()) > 1)
        issues.push_back({"/patient/age", Severity::Error,
                          "age " + age.dump() + " does not match the date of birth " + text_at(patient, "date_of_birth") +
                              " (" + std::to_string(expected) + " on " + text_at(record, "encounter_date") + ")"});
}

void check_codes(const json& record, std::span<const PageText> pages, Issues& issues) {
    if (!record.is_object() || !record.contains("diagnoses") || !record["diagnoses"].is_array()) return;
    for (std::size_t i = 0; i < record["diagnoses"].size(); ++i) {
        const std::string code = text_at(record["diagnoses"][i], "icd10");
        if (code.empty()) continue;
        const std::string at = "/diagnoses/" + std::to_string(i) + "/icd10";
        if (!is_icd10_code(code)) {
            issues.push_back({at, Severity::Warning, "\"" + code + "\" is not an ICD-10 code (left out of FHIR)"});
            continue;
        }
        if (!pages.empty() && std::none_of(pages.begin(), pages.end(), [&](const PageText& page) {
                return page.text.find(code) != std::string::npos;
            }))
            issues.push_back({at, Severity::Error, "ICD-10 code " + code + " is not written in the note"});
    }
}

using Validator = std::function<void(const json&, std::span<const PageText>, Issues&)>;

const std::map<std::string, Validator, std::less<>>& validators() {
    static const std::map<std::string, Validator, std::less<>> all = {
        {"balance_sheet", check_balance_sheet}, {"scale", check_scale}, {"income_statement", check_income_statement},
        {"units", check_units},                 {"ranges", check_ranges}, {"dates", check_dates},
        {"codes", check_codes}};
    return all;
}

}  // namespace

const char* severity_name(Severity severity) { return severity == Severity::Error ? "error" : "warning"; }

bool is_icd10_code(std::string_view text) {
    static const std::regex code(R"([A-Z][0-9][0-9A-Z](\.[0-9A-Z]{1,4})?)");
    return std::regex_match(text.begin(), text.end(), code);
}

bool is_validator(std::string_view name) { return validators().count(name) > 0; }

std::vector<ValidationIssue> validate_record(const std::vector<std::string>& names, const json& record,
                                             std::span<const PageText> pages) {
    Issues issues;
    for (const std::string& name : names) {
        const auto found = validators().find(name);
        if (found == validators().end()) throw std::invalid_argument("no validator named '" + name + "'");
        found->second(record, pages, issues);
    }
    return issues;
}

}  // namespace folio::app
