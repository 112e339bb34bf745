#pragma once
// Normalized forms of the values extraction finds in financial reports and
// clinical notes (ISO 8601 dates, money with currency and scale, percentages,
// lab values and vitals in UCUM units), and the numbers of a text with their
// sign, scale, precision, currency and percent, as grounding and the
// citation check compare them.
//
// Each normalize_* reads the whole text as one value (surrounding spaces
// allowed) and returns nullopt when it is not one: "net sales $5" is not
// money. The decimal mark is '.', the thousands separator ',' in groups of 3.

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

namespace folio::app {

// "March 3, 2021", "Mar. 3 2021", "3 March 2021", "Sept 25th, 2021",
// "Friday, March 3, 2021", "3-Mar-2021", "2021-03-03", "2021年3月3日" →
// "2021-03-03"; "March 2021", "2021-03", "03/2021" → "2021-03". Numeric
// dates with '/' or '-' are US month/day ("03/04/2021" is March 4) unless the
// first number cannot be a month ("25/09/2021"); with '.' they are
// day.month.year. Two-digit years follow POSIX %y: 00-68 → 20xx, 69-99 →
// 19xx. Invalid calendar dates (February 30) → nullopt.
std::optional<std::string> normalize_date(std::string_view text);

struct Money {
    double amount = 0;     // in currency units, the scale applied: "$1.2 billion" → 1.2e9
    std::string currency;  // ISO 4217; empty when the text names none
    double scale = 1;      // the unit the text counts in: 1, 1e3, 1e6, 1e9, 1e12 (万 1e4, 亿 1e8)
};

// "$1,234.5 million", "(1,234)" (accounting negative), "USD 12.3bn",
// "€5 billion", "¥300" (JPY; "RMB", "CN¥", "元" are CNY), "1.2 trillion",
// "5 million euros", "$(1,234)". context_scale is the table's scale
// (scale_from_context) and applies when the text has no scale word of its own.
std::optional<Money> normalize_money(std::string_view text, double context_scale = 1);

// The scale a page declares for its figures, "(in millions, except per-share
// data)", "(dollars in thousands)", "In billions of euros": the first
// thousand(s)/million(s)/billion(s) with the word "in" among the 20 bytes
// before it. 1 when the page declares none. Prose such as "in millions of
// homes" reads as a declaration too.
double scale_from_context(std::string_view page_text);

// "12.5%", "12.5 %", "12.5 percent", "(3.1)%", "(3.1%)", "-3.1%" → the value
// in percent (12.5, -3.1).
std::optional<double> normalize_percent(std::string_view text);

struct Quantity {
    double value = 0;
    std::string unit;           // UCUM: mg, ug, mg/dL, mmol/L, %, kg, [lb_av], cm, [in_i], /min, Cel, [degF], mm[Hg] ...
    std::string original_unit;  // as written ("mg/dl", "bpm", "F"); "ft-in" for 5'6"
};

// Lab values and vitals: "7.2 %", "105 mg/dL", "98.6 F", "98.6°F", "72 bpm",
// "150 lbs", "20mg", and heights "5'6\"" / "5 ft 6 in" (in inches: 66 [in_i]).
// A number without a known unit is no quantity.
std::optional<Quantity> normalize_quantity(std::string_view text);

// Blood pressure is two quantities, not one: "120/80 mmHg", "128/78".
// Plausible pressures only (systolic 50-300 above diastolic 20-200), so a
// fraction or a date without a year is not read as one.
struct BloodPressure {
    double systolic = 0, diastolic = 0;
    std::string unit = "mm[Hg]";  // UCUM
};
std::optional<BloodPressure> normalize_blood_pressure(std::string_view text);

// The dispatcher extraction uses. format_hint "date", "money", "percent"
// (a bare number too: "12.5"), "quantity" (blood pressure or quantity) or
// "number" reads the text as that;
// any other hint, "" included, guesses in the order blood pressure, date,
// percent, money (only with a currency or scale word), quantity, plain number.
//   {"type":"date","iso":"2021-03-03"}
//   {"type":"money","amount":1234500000,"currency":"USD","scale":1e6}   currency null when unnamed
//   {"type":"percent","value":12.5}
//   {"type":"quantity","value":105,"unit":"mg/dL","original_unit":"mg/dL"}
//   {"type":"blood_pressure","systolic":120,"diastolic":80,"unit":"mm[Hg]"}
//   {"type":"number","value":42}
// null when the text is none of these.
nlohmann::json normalize_value(std::string_view text, std::string_view format_hint);

// A decimal number at the very start of text: digits, optional thousands
// groups (",234"), optional fraction (".5"). "1,234.5x" → 1234.5, length 7.
struct DecimalNumber {
    double value = 0;
    int decimals = 0;         // fraction digits as written: the precision of the number
    std::size_t length = 0;   // bytes read
};
std::optional<DecimalNumber> parse_decimal(std::string_view text);

// The end of the digit run at pos, with the '.' and ',' inside it that have
// a digit after them: "1,234.5", "03.03.2021", "1.2.3". A run that
// parse_decimal does not read whole is digit groups, not one number.
std::size_t digit_run_end(std::string_view text, std::size_t pos);

// A number as written in running text.
struct WrittenNumber {
    double value = 0;         // signed, times its scale word: "(1,234)" → -1234, "$1.2 billion" → 1.2e9
    double scale = 1;         // the scale word's factor; 1 without one
    int decimals = 0;         // fraction digits as written
    bool percent = false;     // followed by "%" or "percent"
    std::string currency;     // ISO 4217 when a currency sign or code is attached
    std::size_t begin = 0, end = 0;  // bytes, from sign/parenthesis/currency to scale word/percent/parenthesis
};

// The numbers of a text. Rules:
//  - "1,234.5" is one number; "-3.1" and "(1,234)" are negative ('-' only
//    after a space or punctuation, so "2020-2021" is 2020 and 2021);
//  - digits glued to a preceding letter are part of a name, not a number:
//    "A1c", "FY2021", "Q3", "H2O";
//  - dotted or oddly grouped runs ("1.2.3", "03.03.2021", "1,23") give each
//    digit group as an integer;
//  - list markers are skipped: an integer of up to 3 digits alone at the
//    start of a line followed by "." or ")" and a space ("1. Lisinopril");
//  - citation markers are skipped: "[1]", "[2, 3]";
//  - scale words follow a number as words ("5 million", "12.3bn"); the
//    one-letter forms ("$5m", "$2B", "$40k") only right after a currency-signed number.
std::vector<WrittenNumber> numbers_in(std::string_view text);

}  // namespace folio::app
