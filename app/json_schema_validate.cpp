#include <algorithm>
#include <cmath>
#include <cstdio>

#include "app/json_schema_node.h"

namespace folio::app::schema {
namespace {

using nlohmann::json;

unsigned instance_types(const json& value) {
    switch (value.type()) {
        case json::value_t::null: return kNull;
        case json::value_t::boolean: return kBoolean;
        case json::value_t::number_integer:
        case json::value_t::number_unsigned: return kInteger | kNumber;
        case json::value_t::number_float: {
            // JSON Schema counts 2.0 as an integer.
            const double number = value.get<double>();
            return std::isfinite(number) && number == std::floor(number) ? kInteger | kNumber : kNumber;
        }
        case json::value_t::string: return kString;
        case json::value_t::array: return kArray;
        case json::value_t::object: return kObject;
        default: return 0;
    }
}

std::string bound_text(double value) {
    char buffer[32];
    std::snprintf(buffer, sizeof buffer, "%.15g", value);
    return buffer;
}

bool leap_year(int year) { return (year % 4 == 0 && year % 100 != 0) || year % 400 == 0; }

// "YYYY-MM-DD" naming a day that exists.
bool calendar_date(const std::string& text) {
    static const std::regex kShape(R"(\d{4}-\d{2}-\d{2})");
    if (!std::regex_match(text, kShape)) return false;
    const int year = std::stoi(text.substr(0, 4)), month = std::stoi(text.substr(5, 2)), day = std::stoi(text.substr(8, 2));
    static const int kDays[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    if (month < 1 || month > 12 || day < 1) return false;
    return day <= kDays[month - 1] + (month == 2 && leap_year(year) ? 1 : 0);
}

// RFC 3339 date-time: "2024-03-01T14:05:00Z", "2024-03-01T14:05:00.5+01:00".
bool date_time(const std::string& text) {
    static const std::regex kShape(
        R"(\d{4}-\d{2}-\d{2}T([01]\d|2[0-3]):[0-5]\d:([0-5]\d|60)(\.\d+)?(Z|[+-]([01]\d|2[0-3]):[0-5]\d))");
    return std::regex_match(text, kShape) && calendar_date(text.substr(0, 10));
}

void validate_string(const Node& node, const std::string& text, const std::string& at, std::vector<std::string>& problems) {
    const std::u32string points = code_points(text);
    if (node.min_length && points.size() < *node.min_length)
        problems.push_back(at + "shorter than minLength " + std::to_string(*node.min_length));
    if (node.max_length && points.size() > *node.max_length)
        problems.push_back(at + "longer than maxLength " + std::to_string(*node.max_length) + " (" +
                           std::to_string(points.size()) + " characters)");
    if (node.pattern_regex && !std::regex_match(std::wstring(points.begin(), points.end()), *node.pattern_regex))
        problems.push_back(at + "does not match pattern " + json(*node.pattern).dump());
    if (node.format == "date" && !calendar_date(text)) problems.push_back(at + "not a calendar date (YYYY-MM-DD)");
    if (node.format == "date-time" && !date_time(text)) problems.push_back(at + "not an RFC 3339 date-time");
}

void validate_number(const Node& node, double value, const std::string& at, std::vector<std::string>& problems) {
    if (node.minimum && value < *node.minimum) problems.push_back(at + "below minimum " + bound_text(*node.minimum));
    if (node.maximum && value > *node.maximum) problems.push_back(at + "above maximum " + bound_text(*node.maximum));
    if (node.exclusive_minimum && value <= *node.exclusive_minimum)
        problems.push_back(at + "not above exclusiveMinimum " + bound_text(*node.exclusive_minimum));
    if (node.exclusive_maximum && value >= *node.exclusive_maximum)
        problems.push_back(at + "not below exclusiveMaximum " + bound_text(*node.exclusive_maximum));
}

}  // namespace

void validate_node(const Node& node, const json& instance, const std::string& pointer, std::vector<std::string>& problems) {
    const std::string at = pointer_text(pointer) + ": ";
    if (!node.alternatives.empty()) {
        std::size_t matches = 0;
        for (const Node* alternative : node.alternatives) {
            std::vector<std::string> ignored;
            validate_node(*alternative, instance, pointer, ignored);
            matches += ignored.empty();
        }
        if (!node.exactly_one && matches == 0) problems.push_back(at + "matches none of anyOf's schemas");
        if (node.exactly_one && matches != 1)
            problems.push_back(at + "matches " + std::to_string(matches) + " of oneOf's schemas, not exactly one");
        return;
    }
    if (node.allowed) {
        for (const json& value : *node.allowed)
            if (value == instance) return;
        problems.push_back(at + (node.allowed->size() == 1 ? "not the const value " + node.allowed->front().dump()
                                                           : "not one of the enum values"));
        return;
    }
    const unsigned types = instance_types(instance);
    if (!(types & node.types)) {
        problems.push_back(at + "expected " + type_names(node.types) + ", got " +
                           ((types & kInteger) ? "integer" : type_names(types)));
        return;
    }
    switch (instance.type()) {
        case json::value_t::string: validate_string(node, instance.get_ref<const std::string&>(), at, problems); break;
        case json::value_t::number_integer:
        case json::value_t::number_unsigned:
        case json::value_t::number_float: validate_number(node, instance.get<double>(), at, problems); break;
        case json::value_t::array:
            if (instance.size() < node.min_items)
                problems.push_back(at + "fewer items than minItems " + std::to_string(node.min_items));
            if (node.max_items && instance.size() > *node.max_items)
                problems.push_back(at + "more items than maxItems " + std::to_string(*node.max_items));
            if (node.items)
                for (std::size_t i = 0; i < instance.size(); ++i)
                    validate_node(*node.items, instance[i], pointer + "/" + std::to_string(i), problems);
            break;
        case json::value_t::object:
            for (const Property& property : node.properties) {
                const auto it = instance.find(property.name);
                if (it == instance.end()) {
                    if (property.required) problems.push_back(at + "missing required property " + json(property.name).dump());
                    continue;
                }
                validate_node(*property.schema, *it, pointer + "/" + pointer_token(property.name), problems);
            }
            if (!node.additional_properties)
                for (const auto& [name, value] : instance.items()) {
                    const bool listed = std::any_of(node.properties.begin(), node.properties.end(),
                                                    [&](const Property& p) { return p.name == name; });
                    if (!listed) problems.push_back(at + "property " + json(name).dump() + " is not allowed");
                }
            break;
        default: break;
    }
}

}  // namespace folio::app::schema
