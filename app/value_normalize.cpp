#include "app/value_normalize.h"

#include <array>
#include <charconv>
#include <cmath>
#include <cstdio>
#include <utility>

namespace folio::app {
namespace {

bool is_digit(char c) { return c >= '0' && c <= '9'; }
bool is_alpha(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); }
bool is_alnum(char c) { return is_digit(c) || is_alpha(c); }
bool is_space(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v'; }
char lower(char c) { return (c >= 'A' && c <= 'Z') ? char(c - 'A' + 'a') : c; }

std::string lower_ascii(std::string_view s) {
    std::string out(s);
    for (char& c : out) c = lower(c);
    return out;
}

constexpr std::string_view kNbsp = "\xC2\xA0";

// Spaces, no-break spaces included, from pos.
std::size_t skip_spaces(std::string_view s, std::size_t pos) {
    for (;;) {
        if (pos < s.size() && is_space(s[pos])) ++pos;
        else if (s.substr(pos).starts_with(kNbsp)) pos += kNbsp.size();
        else return pos;
    }
}

std::string_view trim(std::string_view s) {
    s.remove_prefix(skip_spaces(s, 0));
    for (;;) {
        if (!s.empty() && is_space(s.back())) s.remove_suffix(1);
        else if (s.ends_with(kNbsp)) s.remove_suffix(kNbsp.size());
        else return s;
    }
}

bool iequals_at(std::string_view s, std::size_t pos, std::string_view word) {
    if (s.size() - std::min(pos, s.size()) < word.size()) return false;
    for (std::size_t i = 0; i < word.size(); ++i)
        if (lower(s[pos + i]) != lower(word[i])) return false;
    return true;
}

// Matches word at pos, case-insensitively, as a whole word when it ends in a
// letter; advances pos past it.
bool consume_word(std::string_view s, std::size_t& pos, std::string_view word) {
    if (!iequals_at(s, pos, word)) return false;
    std::size_t end = pos + word.size();
    if (is_alpha(word.back()) && end < s.size() && is_alpha(s[end])) return false;
    pos = end;
    return true;
}

bool consume_exact(std::string_view s, std::size_t& pos, std::string_view text) {
    if (!s.substr(std::min(pos, s.size())).starts_with(text)) return false;
    pos += text.size();
    return true;
}

constexpr std::string_view kMinusSign = "\xE2\x88\x92";  // U+2212

bool consume_minus(std::string_view s, std::size_t& pos) {
    return consume_exact(s, pos, "-") || consume_exact(s, pos, kMinusSign);
}

// ---- dates ----

bool leap(int y) { return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0; }

bool valid_date(int y, int m, int d) {
    static constexpr std::array<int, 12> kDays = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    if (y < 1000 || y > 2999 || m < 1 || m > 12 || d < 1) return false;
    return d <= kDays[m - 1] + (m == 2 && leap(y) ? 1 : 0);
}

std::optional<std::string> iso_date(int y, int m, int d) {
    if (!valid_date(y, m, d)) return std::nullopt;
    char buf[32];
    std::snprintf(buf, sizeof buf, "%04d-%02d-%02d", y, m, d);
    return buf;
}

std::optional<std::string> iso_month(int y, int m) {
    if (!valid_date(y, m, 1)) return std::nullopt;
    char buf[32];
    std::snprintf(buf, sizeof buf, "%04d-%02d", y, m);
    return buf;
}

int month_from_name(std::string_view word) {
    static constexpr std::pair<std::string_view, int> kMonths[] = {
        {"january", 1}, {"jan", 1},  {"february", 2}, {"feb", 2},  {"march", 3},     {"mar", 3},
        {"april", 4},   {"apr", 4},  {"may", 5},      {"june", 6}, {"jun", 6},       {"july", 7},
        {"jul", 7},     {"august", 8}, {"aug", 8},    {"september", 9}, {"sept", 9}, {"sep", 9},
        {"october", 10}, {"oct", 10}, {"november", 11}, {"nov", 11}, {"december", 12}, {"dec", 12}};
    for (auto [name, month] : kMonths)
        if (word == name) return month;
    return 0;
}

bool is_weekday(std::string_view word) {
    static constexpr std::string_view kDays[] = {
        "monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday", "mon",
        "tue",    "tues",    "wed",       "thu",      "thur",   "thurs",    "fri",    "sat", "sun"};
    for (auto day : kDays)
        if (word == day) return true;
    return false;
}

struct DigitRun {
    int value = 0;
    std::size_t digits = 0;
};

// At most 4 digits, so the value fits; longer runs are no date part.
std::optional<DigitRun> read_digits(std::string_view s, std::size_t& pos) {
    DigitRun run;
    while (pos < s.size() && is_digit(s[pos])) {
        if (++run.digits > 4) return std::nullopt;
        run.value = run.value * 10 + (s[pos++] - '0');
    }
    if (run.digits == 0) return std::nullopt;
    return run;
}

int expand_year(const DigitRun& year) {
    if (year.digits != 2) return year.value;
    return year.value <= 68 ? 2000 + year.value : 1900 + year.value;
}

// "2021-03-03", "2021/3/3", "2021-03", "03/03/2021", "3-4-21", "03.03.2021".
std::optional<std::string> numeric_date(std::string_view s) {
    std::size_t pos = 0;
    auto a = read_digits(s, pos);
    if (!a || pos == s.size()) return std::nullopt;
    char sep = s[pos++];
    if (sep != '/' && sep != '-' && sep != '.') return std::nullopt;
    auto b = read_digits(s, pos);
    if (!b) return std::nullopt;
    if (pos == s.size() && sep != '.') {
        if (a->digits == 4 && b->digits <= 2) return iso_month(a->value, b->value);
        if (a->digits <= 2 && b->digits == 4) return iso_month(b->value, a->value);  // "03/2021"
        return std::nullopt;
    }
    if (pos == s.size() || b->digits > 2) return std::nullopt;
    if (s[pos++] != sep) return std::nullopt;
    auto c = read_digits(s, pos);
    if (!c || pos != s.size()) return std::nullopt;
    if (a->digits == 4) return c->digits <= 2 ? iso_date(a->value, b->value, c->value) : std::nullopt;
    if (a->digits > 2 || (c->digits != 4 && c->digits != 2)) return std::nullopt;
    int year = expand_year(*c);
    if (sep == '.') return iso_date(year, b->value, a->value);
    if (a->value > 12 && b->value <= 12) return iso_date(year, b->value, a->value);
    return iso_date(year, a->value, b->value);
}

// "2021年3月3日", "2021年3月".
std::optional<std::string> chinese_date(std::string_view s) {
    std::size_t pos = 0;
    auto y = read_digits(s, pos);
    if (!y || y->digits != 4 || !consume_exact(s, pos, "年")) return std::nullopt;
    auto m = read_digits(s, pos);
    if (!m || !consume_exact(s, pos, "月")) return std::nullopt;
    if (pos == s.size()) return iso_month(y->value, m->value);
    auto d = read_digits(s, pos);
    if (!d || !consume_exact(s, pos, "日") || pos != s.size()) return std::nullopt;
    return iso_date(y->value, m->value, d->value);
}

struct DateWord {
    std::string word;  // lowercase letters; empty for a number
    DigitRun number;
};

// "Sept 25th, 2021", "3 March 2021", "3-Mar-2021", "March 2021".
std::optional<std::string> worded_date(std::string_view s) {
    std::vector<DateWord> parts;
    std::size_t pos = 0;
    while (pos < s.size()) {
        char c = s[pos];
        if (is_space(c) || c == ',' || c == '.' || c == '-' || c == '/') {
            ++pos;
        } else if (is_digit(c)) {
            auto run = read_digits(s, pos);
            if (!run) return std::nullopt;
            for (std::string_view suffix : {"st", "nd", "rd", "th"})
                if (consume_word(s, pos, suffix)) break;
            parts.push_back({{}, *run});
        } else if (is_alpha(c)) {
            std::size_t begin = pos;
            while (pos < s.size() && is_alpha(s[pos])) ++pos;
            std::string word = lower_ascii(s.substr(begin, pos - begin));
            if (word == "of" || (parts.empty() && is_weekday(word))) continue;
            parts.push_back({word, {}});
        } else {
            return std::nullopt;
        }
    }
    auto month_at = [&](std::size_t i) { return parts[i].word.empty() ? 0 : month_from_name(parts[i].word); };
    auto day_at = [&](std::size_t i) {
        return parts[i].word.empty() && parts[i].number.digits <= 2 ? parts[i].number.value : 0;
    };
    auto year_at = [&](std::size_t i) {
        return parts[i].word.empty() && parts[i].number.digits == 4 ? parts[i].number.value : 0;
    };
    if (parts.size() == 3) {
        if (int m = month_at(0), d = day_at(1), y = year_at(2); m && d && y) return iso_date(y, m, d);
        if (int d = day_at(0), m = month_at(1), y = year_at(2); m && d && y) return iso_date(y, m, d);
    }
    if (parts.size() == 2)
        if (int m = month_at(0), y = year_at(1); m && y) return iso_month(y, m);
    return std::nullopt;
}

// ---- money, percent ----

struct Name {
    std::string_view text;
    std::string_view code;
};

// Longest first where one is the other's prefix.
constexpr Name kCurrencySigns[] = {
    {"US$", "USD"}, {"U.S.$", "USD"}, {"CA$", "CAD"}, {"C$", "CAD"}, {"AU$", "AUD"}, {"A$", "AUD"},
    {"HK$", "HKD"}, {"NZ$", "NZD"},   {"S$", "SGD"},  {"R$", "BRL"}, {"CN¥", "CNY"}, {"RMB", "CNY"},
    {"人民币", "CNY"}, {"$", "USD"}, {"€", "EUR"},    {"£", "GBP"},  {"¥", "JPY"},   {"￥", "JPY"},
    {"₹", "INR"},   {"₩", "KRW"}};

constexpr std::string_view kCurrencyCodes[] = {"USD", "EUR", "GBP", "JPY", "CNY", "CHF", "CAD",
                                               "AUD", "HKD", "INR", "KRW", "SGD", "SEK", "NOK",
                                               "DKK", "NZD", "BRL", "MXN", "ZAR", "TWD"};

constexpr Name kCurrencyWords[] = {
    {"us dollars", "USD"}, {"dollars", "USD"}, {"dollar", "USD"}, {"euros", "EUR"}, {"euro", "EUR"},
    {"pounds sterling", "GBP"}, {"yen", "JPY"}, {"yuan", "CNY"}, {"renminbi", "CNY"}, {"元", "CNY"},
    {"€", "EUR"}};

// A currency code (uppercase, as written) not glued to other letters.
std::optional<std::string_view> consume_currency_code(std::string_view s, std::size_t& pos) {
    for (auto code : kCurrencyCodes) {
        std::size_t end = pos + code.size();
        if (s.substr(pos).starts_with(code) && (end == s.size() || !is_alpha(s[end]))) {
            pos = end;
            return code;
        }
    }
    return std::nullopt;
}

std::optional<std::string_view> consume_currency_prefix(std::string_view s, std::size_t& pos) {
    for (auto [text, code] : kCurrencySigns)
        if (consume_exact(s, pos, text)) return code;
    return consume_currency_code(s, pos);
}

std::optional<std::string_view> consume_currency_suffix(std::string_view s, std::size_t& pos) {
    for (auto [text, code] : kCurrencyWords)
        if (consume_word(s, pos, text)) return code;
    return consume_currency_code(s, pos);
}

struct ScaleWord {
    std::string_view text;
    double factor;
    enum Form { Word, Abbreviation, Letter } form;  // Word takes a plural "s"; Letter ("m", "B") only
                                                    // right after a currency-signed number
};

// Longest first where one is the other's prefix.
constexpr ScaleWord kScaleWords[] = {
    {"thousand", 1e3, ScaleWord::Word},       {"million", 1e6, ScaleWord::Word},
    {"billion", 1e9, ScaleWord::Word},        {"trillion", 1e12, ScaleWord::Word},
    {"mln", 1e6, ScaleWord::Abbreviation},    {"mn", 1e6, ScaleWord::Abbreviation},
    {"bln", 1e9, ScaleWord::Abbreviation},    {"bn", 1e9, ScaleWord::Abbreviation},
    {"trn", 1e12, ScaleWord::Abbreviation},   {"tn", 1e12, ScaleWord::Abbreviation},
    {"万亿", 1e12, ScaleWord::Abbreviation},  {"万", 1e4, ScaleWord::Abbreviation},
    {"亿", 1e8, ScaleWord::Abbreviation},     {"mm", 1e6, ScaleWord::Letter},
    {"k", 1e3, ScaleWord::Letter},            {"m", 1e6, ScaleWord::Letter},
    {"b", 1e9, ScaleWord::Letter},            {"t", 1e12, ScaleWord::Letter}};

std::optional<double> consume_scale(std::string_view s, std::size_t& pos, bool letter_forms) {
    for (const ScaleWord& w : kScaleWords) {
        if (w.form == ScaleWord::Letter && !letter_forms) continue;
        std::size_t p = pos;
        if (!iequals_at(s, p, w.text)) continue;
        p += w.text.size();
        if (w.form == ScaleWord::Word && p < s.size() && lower(s[p]) == 's') ++p;
        if (is_alpha(w.text.back()) && p < s.size() && is_alpha(s[p])) continue;
        pos = p;
        return w.factor;
    }
    return std::nullopt;
}

bool consume_percent_sign(std::string_view s, std::size_t& pos) {
    return consume_exact(s, pos, "%") || consume_exact(s, pos, "％") || consume_word(s, pos, "percent") ||
           consume_word(s, pos, "per cent") || consume_word(s, pos, "pct");
}

// value × scale, rounded once: "12.3" and 1e9 give 12300000000 exactly.
double scaled(std::string_view digits_text, double scale) {
    std::string cleaned;
    for (char c : digits_text)
        if (c != ',') cleaned += c;
    char buf[32];
    std::snprintf(buf, sizeof buf, "e%d", int(std::lround(std::log10(scale))));
    cleaned += buf;
    double value = 0;
    std::from_chars(cleaned.data(), cleaned.data() + cleaned.size(), value);
    return value;
}

// ---- quantities ----

// Keys are lowercase, without spaces, "µ"/"μ" as "u", "²" as "2", "°" and a
// leading "degrees" dropped.
constexpr Name kUnits[] = {
    {"mg", "mg"},          {"g", "g"},              {"kg", "kg"},            {"ug", "ug"},
    {"mcg", "ug"},         {"ng", "ng"},            {"lb", "[lb_av]"},       {"lbs", "[lb_av]"},
    {"pound", "[lb_av]"},  {"pounds", "[lb_av]"},   {"oz", "[oz_av]"},       {"mg/dl", "mg/dL"},
    {"g/dl", "g/dL"},      {"g/l", "g/L"},          {"mg/l", "mg/L"},        {"mmol/l", "mmol/L"},
    {"umol/l", "umol/L"},  {"meq/l", "meq/L"},      {"u/l", "U/L"},          {"iu/l", "[IU]/L"},
    {"ng/ml", "ng/mL"},    {"pg/ml", "pg/mL"},      {"ng/dl", "ng/dL"},      {"ug/dl", "ug/dL"},
    {"miu/l", "m[IU]/L"},  {"uiu/ml", "u[IU]/mL"},  {"ml/min", "mL/min"},    {"ml/min/1.73m2", "mL/min/{1.73_m2}"},
    {"k/ul", "10*3/uL"},   {"x10^3/ul", "10*3/uL"}, {"10^3/ul", "10*3/uL"},  {"x10^9/l", "10*9/L"},
    {"10^9/l", "10*9/L"},  {"x10^6/ul", "10*6/uL"}, {"m/ul", "10*6/uL"},     {"x10^12/l", "10*12/L"},
    {"%", "%"},            {"mmhg", "mm[Hg]"},      {"f", "[degF]"},         {"fahrenheit", "[degF]"},
    {"c", "Cel"},          {"celsius", "Cel"},      {"bpm", "/min"},         {"/min", "/min"},
    {"permin", "/min"},    {"beats/min", "/min"},   {"beatsperminute", "/min"}, {"breaths/min", "/min"},
    {"breathsperminute", "/min"}, {"cm", "cm"},     {"mm", "mm"},            {"m", "m"},
    {"in", "[in_i]"},      {"inch", "[in_i]"},      {"inches", "[in_i]"},    {"\"", "[in_i]"},
    {"ft", "[ft_i]"},      {"feet", "[ft_i]"},      {"'", "[ft_i]"},         {"ml", "mL"},
    {"l", "L"},            {"dl", "dL"},            {"kg/m2", "kg/m2"},      {"mg/kg", "mg/kg"},
    {"units", "U"},        {"u", "U"},              {"iu", "[IU]"},          {"meq", "meq"},
    {"mmol", "mmol"},      {"mg/day", "mg/d"},      {"mg/d", "mg/d"},        {"ml/h", "mL/h"},
    {"ml/hr", "mL/h"}};

std::string unit_key(std::string_view unit) {
    std::string key;
    for (std::size_t i = 0; i < unit.size();) {
        std::string_view rest = unit.substr(i);
        if (rest.starts_with("µ") || rest.starts_with("μ")) { key += 'u'; i += 2; }
        else if (rest.starts_with("²")) { key += '2'; i += 2; }
        else if (rest.starts_with("°")) { i += 2; }
        else if (rest.starts_with(kNbsp)) { i += 2; }
        else if (is_space(unit[i])) { ++i; }
        else { key += lower(unit[i]); ++i; }
    }
    for (std::string_view degrees : {"degrees", "degree", "deg"})
        if (key.size() > degrees.size() && key.starts_with(degrees)) return key.substr(degrees.size());
    return key;
}

std::optional<std::string_view> ucum_unit(std::string_view unit) {
    std::string key = unit_key(unit);
    for (auto [text, code] : kUnits)
        if (key == text) return code;
    return std::nullopt;
}

// 5'6", 5’6”, 5 ft 6 in → inches, pos just after the feet's number.
std::optional<double> feet_and_inches(std::string_view s, std::size_t pos, double feet) {
    pos = skip_spaces(s, pos);
    if (!(consume_exact(s, pos, "'") || consume_exact(s, pos, "’") || consume_word(s, pos, "feet") ||
          consume_word(s, pos, "ft")))
        return std::nullopt;
    pos = skip_spaces(s, pos);
    auto inches = parse_decimal(s.substr(pos));
    if (!inches) return std::nullopt;
    pos = skip_spaces(s, pos + inches->length);
    (void)(consume_exact(s, pos, "\"") || consume_exact(s, pos, "”") || consume_exact(s, pos, "''") ||
           consume_word(s, pos, "inches") || consume_word(s, pos, "in"));
    if (pos != s.size()) return std::nullopt;
    return feet * 12 + inches->value;
}

std::optional<DigitRun> pressure(std::string_view s, std::size_t& pos) {
    auto run = read_digits(s, pos);
    if (!run || run->digits < 2 || run->digits > 3) return std::nullopt;
    return run;
}

nlohmann::json money_json(const Money& money) {
    return {{"type", "money"},
            {"amount", money.amount},
            {"currency", money.currency.empty() ? nlohmann::json() : nlohmann::json(money.currency)},
            {"scale", money.scale}};
}

nlohmann::json quantity_json(std::string_view text) {
    if (auto bp = normalize_blood_pressure(text))
        return {{"type", "blood_pressure"}, {"systolic", bp->systolic}, {"diastolic", bp->diastolic}, {"unit", bp->unit}};
    if (auto q = normalize_quantity(text))
        return {{"type", "quantity"}, {"value", q->value}, {"unit", q->unit}, {"original_unit", q->original_unit}};
    return nullptr;
}

// ---- numbers in running text ----

// "1. " or "2) " alone at the start of a line, for up to 3-digit integers.
bool is_list_marker(std::string_view text, std::size_t begin, std::size_t end) {
    std::size_t line_start = begin;
    while (line_start > 0 && (text[line_start - 1] == ' ' || text[line_start - 1] == '\t')) --line_start;
    if (line_start > 0 && text[line_start - 1] != '\n') return false;
    if (end - begin > 3 || end >= text.size() || (text[end] != '.' && text[end] != ')')) return false;
    return end + 1 == text.size() || is_space(text[end + 1]);
}

// "[1]", "[2, 3]": looked for within a few bytes, as markers are short.
bool is_citation_marker(std::string_view text, std::size_t begin, std::size_t end) {
    constexpr std::size_t kReach = 16;
    auto inside = [](char c) { return is_digit(c) || c == ',' || c == ' '; };
    std::size_t open = begin, close = end;
    while (open > 0 && begin - open < kReach && inside(text[open - 1])) --open;
    while (close < text.size() && close - end < kReach && inside(text[close])) ++close;
    return open > 0 && text[open - 1] == '[' && close < text.size() && text[close] == ']';
}

// What stands before a number: "-", currency (a sign or code, maybe a space
// apart), "-" again, "(": "($1,234)", "-$5", "$ -5", "USD 12.3".
struct NumberPrefix {
    std::size_t begin = 0;
    bool negative = false;
    bool open_paren = false;
    std::string currency;
};

NumberPrefix read_prefix(std::string_view text, std::size_t number_begin) {
    NumberPrefix prefix;
    std::size_t& b = prefix.begin;
    b = number_begin;
    auto step_back = [&](std::string_view token) {
        if (b < token.size() || text.substr(b - token.size(), token.size()) != token) return false;
        b -= token.size();
        return true;
    };
    // A '-' after a letter or digit joins words or a range: "COVID-19", "2020-2021".
    auto minus = [&] {
        std::size_t saved = b;
        if (!(step_back("-") || step_back(kMinusSign))) return false;
        if (b > 0 && is_alnum(text[b - 1])) {
            b = saved;
            return false;
        }
        return true;
    };
    prefix.negative = minus();
    std::size_t before_currency = b;
    if (b > 0 && text[b - 1] == ' ') --b;
    for (auto [sign, code] : kCurrencySigns)
        if (step_back(sign)) {
            prefix.currency = code;
            break;
        }
    if (prefix.currency.empty())
        for (auto code : kCurrencyCodes)
            if (step_back(code)) {
                if (b > 0 && is_alpha(text[b - 1])) {
                    b += code.size();
                    continue;
                }
                prefix.currency = code;
                break;
            }
    if (prefix.currency.empty()) b = before_currency;
    if (!prefix.negative) prefix.negative = minus();
    prefix.open_paren = step_back("(");
    return prefix;
}

// A scale word after a number, advancing end past it: "5 million",
// "12.3bn"; letter forms ("$5m") only right after the number.
std::optional<double> read_scale(std::string_view text, std::size_t& end, bool letter_forms) {
    std::size_t p = end;
    std::optional<double> scale;
    if (letter_forms) scale = consume_scale(text, p, true);
    if (!scale) {
        p = skip_spaces(text, end);
        scale = consume_scale(text, p, false);
    }
    if (scale) end = p;
    return scale;
}

}  // namespace

std::size_t digit_run_end(std::string_view text, std::size_t pos) {
    while (pos < text.size() && (is_digit(text[pos]) || ((text[pos] == '.' || text[pos] == ',') &&
                                                         pos + 1 < text.size() && is_digit(text[pos + 1]))))
        ++pos;
    return pos;
}

std::optional<DecimalNumber> parse_decimal(std::string_view s) {
    std::size_t pos = 0;
    while (pos < s.size() && is_digit(s[pos])) ++pos;
    if (pos == 0) return std::nullopt;
    // A group separator is a comma with exactly three digits after it.
    while (pos + 3 < s.size() && s[pos] == ',' && is_digit(s[pos + 1]) && is_digit(s[pos + 2]) &&
           is_digit(s[pos + 3]) && (pos + 4 == s.size() || !is_digit(s[pos + 4])))
        pos += 4;
    DecimalNumber number;
    if (pos + 1 < s.size() && s[pos] == '.' && is_digit(s[pos + 1])) {
        ++pos;
        while (pos < s.size() && is_digit(s[pos])) ++pos, ++number.decimals;
    }
    number.length = pos;
    number.value = scaled(s.substr(0, pos), 1);
    return number;
}

std::optional<std::string> normalize_date(std::string_view text) {
    std::string_view s = trim(text);
    if (s.empty()) return std::nullopt;
    if (is_digit(s.front())) {
        if (auto date = numeric_date(s)) return date;
        if (auto date = chinese_date(s)) return date;
    }
    return worded_date(s);
}

std::optional<Money> normalize_money(std::string_view text, double context_scale) {
    std::string_view s = trim(text);
    bool negative = false;
    if (s.size() > 2 && s.front() == '(' && s.back() == ')') {
        negative = true;
        s = trim(s.substr(1, s.size() - 2));
    }
    std::size_t pos = 0;
    if (consume_minus(s, pos)) negative = !negative;
    pos = skip_spaces(s, pos);
    Money money;
    if (auto code = consume_currency_prefix(s, pos)) money.currency = *code;
    pos = skip_spaces(s, pos);
    bool inner_paren = consume_exact(s, pos, "(");
    if (consume_minus(s, pos)) negative = !negative;
    auto number = parse_decimal(s.substr(pos));
    if (!number) return std::nullopt;
    std::string_view digits = s.substr(pos, number->length);
    pos = skip_spaces(s, pos + number->length);
    std::optional<double> scale = consume_scale(s, pos, /*letter_forms=*/!money.currency.empty());
    pos = skip_spaces(s, pos);
    if (money.currency.empty())
        if (auto code = consume_currency_suffix(s, pos)) money.currency = *code;
    pos = skip_spaces(s, pos);
    if (inner_paren) {
        if (!consume_exact(s, pos, ")")) return std::nullopt;
        negative = !negative;
    }
    if (pos != s.size()) return std::nullopt;
    money.scale = scale.value_or(context_scale);
    money.amount = scaled(digits, money.scale) * (negative ? -1 : 1);
    return money;
}

double scale_from_context(std::string_view page_text) {
    static constexpr std::pair<std::string_view, double> kScales[] = {
        {"thousand", 1e3}, {"million", 1e6}, {"billion", 1e9}};
    std::string text = lower_ascii(page_text);
    std::size_t best = std::string::npos;
    double best_scale = 1;
    for (auto [word, scale] : kScales) {
        for (std::size_t at = text.find(word); at != std::string::npos && at < best; at = text.find(word, at + 1)) {
            if (at > 0 && is_alpha(text[at - 1])) continue;
            std::size_t window = at >= 20 ? at - 20 : 0;
            std::string_view before = std::string_view(text).substr(window, at - window);
            bool declared = false;
            for (std::size_t in = before.find("in"); in != std::string_view::npos; in = before.find("in", in + 1)) {
                bool starts = in == 0 ? window == 0 || !is_alpha(text[window - 1]) : !is_alpha(before[in - 1]);
                if (starts && in + 2 < before.size() && !is_alpha(before[in + 2])) declared = true;
            }
            if (declared) {
                best = at;
                best_scale = scale;
                break;
            }
        }
    }
    return best_scale;
}

std::optional<double> normalize_percent(std::string_view text) {
    std::string_view s = trim(text);
    std::size_t pos = 0;
    bool paren = consume_exact(s, pos, "(");
    bool negative = consume_minus(s, pos);
    auto number = parse_decimal(s.substr(pos));
    if (!number) return std::nullopt;
    pos += number->length;
    // "(3.1)%" closes before the sign, "(3.1%)" after it.
    bool closed = paren && consume_exact(s, pos, ")");
    pos = skip_spaces(s, pos);
    if (!consume_percent_sign(s, pos)) return std::nullopt;
    if (paren && !closed && !consume_exact(s, pos, ")")) return std::nullopt;
    if (pos != s.size()) return std::nullopt;
    return (paren != negative ? -1 : 1) * number->value;
}

std::optional<Quantity> normalize_quantity(std::string_view text) {
    std::string_view s = trim(text);
    std::size_t pos = 0;
    bool negative = consume_minus(s, pos);
    auto number = parse_decimal(s.substr(pos));
    if (!number) return std::nullopt;
    pos += number->length;
    double value = negative ? -number->value : number->value;
    if (auto inches = feet_and_inches(s, pos, value)) return Quantity{*inches, "[in_i]", "ft-in"};
    std::string_view unit = trim(s.substr(pos));
    if (unit.empty()) return std::nullopt;
    auto code = ucum_unit(unit);
    if (!code) return std::nullopt;
    return Quantity{value, std::string(*code), std::string(unit)};
}

std::optional<BloodPressure> normalize_blood_pressure(std::string_view text) {
    std::string_view s = trim(text);
    std::size_t pos = 0;
    auto systolic = pressure(s, pos);
    if (!systolic || !consume_exact(s, pos, "/")) return std::nullopt;
    auto diastolic = pressure(s, pos);
    if (!diastolic) return std::nullopt;
    std::string_view unit = trim(s.substr(pos));
    if (!unit.empty() && unit_key(unit) != "mmhg") return std::nullopt;
    if (systolic->value < 50 || systolic->value > 300 || diastolic->value < 20 || diastolic->value > 200 ||
        diastolic->value >= systolic->value)
        return std::nullopt;
    return BloodPressure{double(systolic->value), double(diastolic->value)};
}

nlohmann::json normalize_value(std::string_view text, std::string_view format_hint) {
    if (format_hint == "date") {
        if (auto iso = normalize_date(text)) return {{"type", "date"}, {"iso", *iso}};
        return nullptr;
    }
    if (format_hint == "money") {
        if (auto money = normalize_money(text)) return money_json(*money);
        return nullptr;
    }
    if (format_hint == "percent") {
        if (auto value = normalize_percent(text)) return {{"type", "percent"}, {"value", *value}};
        // The field says percent; a model often leaves the sign out.
        if (auto money = normalize_money(text); money && money->currency.empty() && money->scale == 1)
            return {{"type", "percent"}, {"value", money->amount}};
        return nullptr;
    }
    if (format_hint == "quantity") return quantity_json(text);
    if (format_hint == "number") {
        if (auto money = normalize_money(text)) return {{"type", "number"}, {"value", money->amount}};
        return nullptr;
    }
    if (normalize_blood_pressure(text)) return quantity_json(text);
    if (auto iso = normalize_date(text)) return {{"type", "date"}, {"iso", *iso}};
    if (auto value = normalize_percent(text)) return {{"type", "percent"}, {"value", *value}};
    if (auto money = normalize_money(text)) {
        if (!money->currency.empty() || money->scale != 1) return money_json(*money);
        return {{"type", "number"}, {"value", money->amount}};
    }
    return quantity_json(text);
}

std::vector<WrittenNumber> numbers_in(std::string_view text) {
    std::vector<WrittenNumber> numbers;
    const std::size_t n = text.size();
    std::size_t i = 0;
    while (i < n) {
        if (!is_digit(text[i])) {
            ++i;
            continue;
        }
        const std::size_t begin = i, run_end = digit_run_end(text, i);
        i = run_end;
        if (begin > 0 && (is_alpha(text[begin - 1]) || text[begin - 1] == '_')) continue;
        const DecimalNumber number = *parse_decimal(text.substr(begin, run_end - begin));
        if (number.length != run_end - begin) {
            for (std::size_t g = begin; g < run_end;) {
                std::size_t g_end = g;
                while (g_end < run_end && is_digit(text[g_end])) ++g_end;
                WrittenNumber group;
                group.value = scaled(text.substr(g, g_end - g), 1);
                group.begin = g;
                group.end = g_end;
                numbers.push_back(group);
                g = g_end + 1;
            }
            continue;
        }
        if (is_list_marker(text, begin, run_end) || is_citation_marker(text, begin, run_end)) continue;

        WrittenNumber written;
        written.decimals = number.decimals;
        const NumberPrefix prefix = read_prefix(text, begin);
        written.currency = prefix.currency;
        std::size_t end = run_end;
        if (auto scale = read_scale(text, end, !written.currency.empty())) written.scale = *scale;
        // "(3.1)%" closes before the percent sign, "(3.1%)" after it.
        bool closed = prefix.open_paren && consume_exact(text, end, ")");
        if (std::size_t p = skip_spaces(text, end); consume_percent_sign(text, p)) {
            written.percent = true;
            end = p;
        }
        if (prefix.open_paren && !closed) closed = consume_exact(text, end, ")");
        // An unclosed "(" is not the number's.
        written.begin = prefix.open_paren && !closed ? prefix.begin + 1 : prefix.begin;
        written.end = end;
        const bool negative = prefix.negative != closed;
        written.value = scaled(text.substr(begin, run_end - begin), written.scale) * (negative ? -1 : 1);
        numbers.push_back(std::move(written));
        i = end;
    }
    return numbers;
}

}  // namespace folio::app
