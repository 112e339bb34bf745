#include "app/json_schema.h"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <map>
#include <sstream>
#include <set>

#include "app/json_schema_node.h"
#include "engine/grammar.h"

namespace folio::app {
namespace schema {

std::string type_names(unsigned types) {
    if (types == kAnyType) return "any";
    if (types & kNumber) types &= ~kInteger;
    static const char* const kNames[] = {"null", "boolean", "integer", "number", "string", "array", "object"};
    std::string out;
    for (unsigned bit = 0; bit < 7; ++bit)
        if (types & (1u << bit)) out += (out.empty() ? "" : "|") + std::string(kNames[bit]);
    return out;
}

IntegerBounds integer_bounds(const Node& node) {
    // Beyond 1e15 a double no longer holds every integer exactly; leave such bounds to validate().
    auto usable = [](double value) { return std::fabs(value) < 1e15; };
    IntegerBounds bounds;
    auto raise_low = [&](long long value) { bounds.low = bounds.low ? std::max(*bounds.low, value) : value; };
    auto lower_high = [&](long long value) { bounds.high = bounds.high ? std::min(*bounds.high, value) : value; };
    if (node.minimum && usable(*node.minimum)) raise_low(static_cast<long long>(std::ceil(*node.minimum)));
    if (node.exclusive_minimum && usable(*node.exclusive_minimum))
        raise_low(static_cast<long long>(std::floor(*node.exclusive_minimum)) + 1);
    if (node.maximum && usable(*node.maximum)) lower_high(static_cast<long long>(std::floor(*node.maximum)));
    if (node.exclusive_maximum && usable(*node.exclusive_maximum))
        lower_high(static_cast<long long>(std::ceil(*node.exclusive_maximum)) - 1);
    return bounds;
}

std::string pointer_text(const std::string& pointer) { return pointer.empty() ? "/" : pointer; }

std::string pointer_token(const std::string& name) {
    std::string out;
    for (char c : name) out += c == '~' ? "~0" : c == '/' ? "~1" : std::string(1, c);
    return out;
}

}  // namespace schema

namespace {

// Ordered, so that properties keep the order the schema's author wrote.
using json = nlohmann::ordered_json;
using namespace schema;

// Keywords that only describe; they constrain nothing.
const std::set<std::string> kAnnotations = {"$schema",  "$id",     "$comment",   "title",    "description",
                                            "examples", "default", "deprecated", "readOnly", "writeOnly"};

const std::set<std::string> kStringKeywords = {"minLength", "maxLength", "pattern", "format"};
const std::set<std::string> kNumberKeywords = {"minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum"};
const std::set<std::string> kArrayKeywords = {"items", "minItems", "maxItems"};
const std::set<std::string> kObjectKeywords = {"properties", "required", "additionalProperties"};
const std::set<std::string> kOtherKeywords = {"type", "enum", "const", "$ref", "anyOf", "oneOf", "$defs", "definitions"};

std::string number_text(double value) {
    if (value == std::floor(value) && std::fabs(value) < 1e15) return std::to_string(static_cast<long long>(value));
    char buffer[32];
    std::snprintf(buffer, sizeof buffer, "%.17g", value);
    return buffer;
}

unsigned type_bit(const std::string& name) {
    static const std::map<std::string, unsigned> kTypes = {{"null", kNull},     {"boolean", kBoolean}, {"integer", kInteger},
                                                           {"number", kNumber}, {"string", kString},   {"array", kArray},
                                                           {"object", kObject}};
    const auto it = kTypes.find(name);
    return it == kTypes.end() ? 0 : it->second;
}

// Checks a schema document and builds its node tree.
class SchemaCompiler {
public:
    SchemaCompiler(const json& document, JsonSchema::Compiled& out) : document_(document), out_(out) {}

    void compile_root() {
        out_.nodes.emplace_back();  // the root's slot, so that nodes[0] is the root
        out_.nodes.front() = build(document_, "");
        // Definitions nothing refers to are checked all the same.
        for (const char* defs : {"$defs", "definitions"})
            if (document_.is_object() && document_.contains(defs))
                for (const auto& [name, schema] : document_[defs].items())
                    definition("/" + std::string(defs) + "/" + pointer_token(name), "/" + std::string(defs));
    }

private:
    [[noreturn]] static void fail(const std::string& pointer, const std::string& why) {
        throw SchemaError("schema " + pointer_text(pointer) + ": " + why);
    }

    const Node* compile(const json& schema, const std::string& pointer) {
        out_.nodes.push_back(build(schema, pointer));
        return &out_.nodes.back();
    }

    Node build(const json& schema, const std::string& pointer) {
        Node node;
        if (schema.is_boolean()) {
            if (!schema.get<bool>()) fail(pointer, "the schema false can never be met");
            return node;
        }
        if (!schema.is_object()) fail(pointer, "a schema must be an object, not " + std::string(schema.type_name()));

        bool constrains = false;  // any keyword besides annotations, $defs and definitions
        for (const auto& [key, value] : schema.items()) {
            const bool known = kAnnotations.count(key) || kStringKeywords.count(key) || kNumberKeywords.count(key) ||
                               kArrayKeywords.count(key) || kObjectKeywords.count(key) || kOtherKeywords.count(key);
            if (!known) fail(pointer, "unsupported keyword \"" + key + "\"");
            if (!kAnnotations.count(key) && key != "$defs" && key != "definitions") constrains = true;
        }
        if (schema.contains("description")) {
            if (!schema["description"].is_string()) fail(pointer, "description must be a string");
            node.description = schema["description"].get<std::string>();
        }
        for (const char* defs : {"$defs", "definitions"})
            if (schema.contains(defs) && !schema[defs].is_object()) fail(pointer + "/" + defs, "must be an object of schemas");

        if (schema.contains("$ref")) return reference(schema, pointer, std::move(node));
        if (schema.contains("anyOf") || schema.contains("oneOf")) return alternatives(schema, pointer, std::move(node));
        if (!constrains) return node;

        types(schema, pointer, node);
        string_keywords(schema, pointer, node);
        number_keywords(schema, pointer, node);
        array_keywords(schema, pointer, node);
        object_keywords(schema, pointer, node);
        allowed_values(schema, pointer, node);
        return node;
    }

    Node reference(const json& schema, const std::string& pointer, Node node) {
        for (const auto& [key, value] : schema.items())
            if (key != "$ref" && key != "$defs" && key != "definitions" && !kAnnotations.count(key))
                fail(pointer, "$ref cannot be combined with \"" + key + "\"");
        if (!schema["$ref"].is_string()) fail(pointer + "/$ref", "must be a string");
        const std::string ref = schema["$ref"].get<std::string>();
        if (ref.rfind("#/$defs/", 0) != 0 && ref.rfind("#/definitions/", 0) != 0)
            fail(pointer + "/$ref", "\"" + ref + "\" is not supported (only \"#/$defs/...\" and \"#/definitions/...\")");
        const Node& target = definition(ref.substr(1), pointer + "/$ref");
        // The referring schema's description, where it has one, says more about this place.
        std::string description = node.description.empty() ? target.description : node.description;
        node = target;
        node.description = std::move(description);
        return node;
    }

    // The node of the schema at `target` (a JSON pointer), compiled once.
    const Node& definition(const std::string& target, const std::string& where) {
        const std::string ref = "\"#" + target + "\"";
        std::optional<json::json_pointer> target_pointer;
        try {
            target_pointer.emplace(target);
        } catch (const json::exception&) {
            fail(where, ref + " is not a valid JSON pointer");
        }
        if (!document_.contains(*target_pointer)) fail(where, ref + " does not resolve");
        if (resolving_.count(target)) fail(where, "recursive " + ref + " is not supported");
        auto done = resolved_.find(target);
        if (done == resolved_.end()) {
            resolving_.insert(target);
            const Node* compiled = compile(document_.at(*target_pointer), target);
            resolving_.erase(target);
            done = resolved_.emplace(target, compiled).first;
        }
        return *done->second;
    }

    Node alternatives(const json& schema, const std::string& pointer, Node node) {
        if (schema.contains("anyOf") && schema.contains("oneOf")) fail(pointer, "anyOf and oneOf cannot be combined");
        const char* keyword = schema.contains("anyOf") ? "anyOf" : "oneOf";
        for (const auto& [key, value] : schema.items())
            if (key != keyword && !kAnnotations.count(key) && key != "$defs" && key != "definitions")
                fail(pointer, std::string(keyword) + " cannot be combined with \"" + key + "\"");
        const json& list = schema[keyword];
        const std::string where = pointer + "/" + keyword;
        if (!list.is_array() || list.empty()) fail(where, "must be a non-empty array of schemas");
        for (std::size_t i = 0; i < list.size(); ++i)
            node.alternatives.push_back(compile(list[i], where + "/" + std::to_string(i)));
        node.exactly_one = std::string(keyword) == "oneOf";
        return node;
    }

    void types(const json& schema, const std::string& pointer, Node& node) {
        if (!schema.contains("type")) {
            // JSON Schema would allow any other type; the grammar writes only those the keywords shape.
            unsigned inferred = 0;
            for (const auto& [key, value] : schema.items()) {
                if (kStringKeywords.count(key)) inferred |= kString;
                if (kNumberKeywords.count(key)) inferred |= kNumber;
                if (kArrayKeywords.count(key)) inferred |= kArray;
                if (kObjectKeywords.count(key)) inferred |= kObject;
            }
            node.types = inferred ? inferred : kAnyType;
            return;
        }
        const json& type = schema["type"];
        const std::string where = pointer + "/type";
        if (!type.is_string() && !(type.is_array() && !type.empty()))
            fail(where, "must be a type name or a non-empty array of them");
        node.types = 0;
        for (const json& name : type.is_array() ? type : json::array({type})) {
            if (!name.is_string()) fail(where, name.dump() + " is not a type name");
            const unsigned bit = type_bit(name.get<std::string>());
            if (!bit) fail(where, name.dump() + " is not a JSON Schema type");
            if (node.types & bit) fail(where, name.dump() + " is listed twice");
            node.types |= bit;
        }
    }

    static std::uint64_t count(const json& schema, const char* key, const std::string& pointer) {
        const json& value = schema[key];
        const bool integral = value.is_number_unsigned() || (value.is_number_float() && value.get<double>() >= 0 &&
                                                             value.get<double>() == std::floor(value.get<double>()));
        if (!integral) fail(pointer, std::string(key) + " must be a non-negative integer, not " + value.dump());
        const auto n = value.get<std::uint64_t>();
        // The grammar repeats an item at least this often; the engine repeats at most kMaxRepetition times.
        const bool lower_bound = std::string(key).starts_with("min");
        if (lower_bound && n > static_cast<std::uint64_t>(engine::Grammar::kMaxRepetition))
            fail(pointer, std::string(key) + " above " + std::to_string(engine::Grammar::kMaxRepetition) + " is not supported");
        return n;
    }

    void string_keywords(const json& schema, const std::string& pointer, Node& node) {
        if (schema.contains("minLength")) node.min_length = count(schema, "minLength", pointer);
        if (schema.contains("maxLength")) node.max_length = count(schema, "maxLength", pointer);
        if (node.min_length && node.max_length && *node.min_length > *node.max_length)
            fail(pointer,
                 "minLength " + std::to_string(*node.min_length) + " is above maxLength " + std::to_string(*node.max_length));
        const bool bounded = node.min_length || node.max_length;

        if (schema.contains("format")) {
            const json& format = schema["format"];
            if (!format.is_string()) fail(pointer, "format must be a string");
            node.format = format.get<std::string>();
            if (node.format != "date" && node.format != "date-time")
                fail(pointer, "format \"" + node.format + "\" is not supported");
            // A date's text is always 10 characters, so its length bounds either hold or can never be met.
            if (node.format == "date" &&
                ((node.min_length && *node.min_length > 10) || (node.max_length && *node.max_length < 10)))
                fail(pointer, "a date has 10 characters, outside minLength/maxLength");
            if (node.format == "date-time" && bounded)
                fail(pointer, "format date-time cannot be combined with minLength/maxLength");
        }
        if (schema.contains("pattern")) {
            const json& pattern = schema["pattern"];
            if (!pattern.is_string()) fail(pointer, "pattern must be a string");
            const std::string text = pattern.get<std::string>();
            const std::u32string points = code_points(text);
            try {
                node.pattern_regex.emplace(std::wstring(points.begin(), points.end()), std::regex::ECMAScript);
            } catch (const std::regex_error&) {
                fail(pointer, "pattern " + pattern.dump() + " is not a valid regular expression");
            }
            // The grammar could follow one of these, but not both at once.
            if (!node.format.empty()) fail(pointer, "pattern cannot be combined with format");
            if (bounded) fail(pointer, "pattern cannot be combined with minLength/maxLength (write the length into the pattern)");
            node.pattern_grammar = pattern_grammar(text, "schema " + pointer_text(pointer));
            node.pattern = text;
        }
    }

    void number_keywords(const json& schema, const std::string& pointer, Node& node) {
        auto bound = [&](const char* key, std::optional<double>& out) {
            if (!schema.contains(key)) return;
            if (!schema[key].is_number()) fail(pointer, std::string(key) + " must be a number, not " + schema[key].dump());
            out = schema[key].get<double>();
        };
        bound("minimum", node.minimum);
        bound("maximum", node.maximum);
        bound("exclusiveMinimum", node.exclusive_minimum);
        bound("exclusiveMaximum", node.exclusive_maximum);
        for (const auto& [low_key, low] :
             {std::pair{"minimum", node.minimum}, std::pair{"exclusiveMinimum", node.exclusive_minimum}})
            for (const auto& [high_key, high] :
                 {std::pair{"maximum", node.maximum}, std::pair{"exclusiveMaximum", node.exclusive_maximum}}) {
                if (!low || !high) continue;
                const bool inclusive = std::string(low_key) == "minimum" && std::string(high_key) == "maximum";
                if (*low > *high || (*low == *high && !inclusive))
                    fail(pointer, std::string(low_key) + " " + number_text(*low) + " is above " +
                                      (*low == *high ? "or at " : "") + high_key + " " + number_text(*high));
            }
        const bool only_integers = (node.types & (kInteger | kNumber)) == kInteger;
        const IntegerBounds bounds = integer_bounds(node);
        if (only_integers && bounds.low && bounds.high && *bounds.low > *bounds.high)
            fail(pointer, "no integer lies within the bounds");
    }

    void array_keywords(const json& schema, const std::string& pointer, Node& node) {
        if (schema.contains("minItems")) node.min_items = count(schema, "minItems", pointer);
        if (schema.contains("maxItems")) node.max_items = count(schema, "maxItems", pointer);
        if (node.max_items && node.min_items > *node.max_items)
            fail(pointer, "minItems " + std::to_string(node.min_items) + " is above maxItems " + std::to_string(*node.max_items));
        if (schema.contains("items")) {
            const json& items = schema["items"];
            if (!items.is_object() && !items.is_boolean())
                fail(pointer + "/items", "must be a schema (tuple items are not supported)");
            if (items.is_boolean() && !items.get<bool>()) {
                // No item can exist: only the empty array is left.
                if (node.min_items > 0)
                    fail(pointer, "minItems " + std::to_string(node.min_items) + " with items false can never be met");
                node.max_items = 0;
                return;
            }
            node.items = compile(items, pointer + "/items");
        }
    }

    void object_keywords(const json& schema, const std::string& pointer, Node& node) {
        if (schema.contains("additionalProperties")) {
            const json& additional = schema["additionalProperties"];
            if (!additional.is_boolean())
                fail(pointer + "/additionalProperties",
                     "only false or true is supported (the grammar writes only listed properties)");
            node.additional_properties = additional.get<bool>();
        }
        if (schema.contains("properties")) {
            const json& properties = schema["properties"];
            if (!properties.is_object()) fail(pointer + "/properties", "must be an object of schemas");
            for (const auto& [name, property] : properties.items())
                node.properties.push_back({name, compile(property, pointer + "/properties/" + pointer_token(name)), false});
        }
        if (schema.contains("required")) {
            const json& required = schema["required"];
            const std::string where = pointer + "/required";
            if (!required.is_array()) fail(where, "must be an array of property names");
            std::set<std::string> seen;
            for (const json& name : required) {
                if (!name.is_string()) fail(where, name.dump() + " is not a property name");
                if (!seen.insert(name.get<std::string>()).second) fail(where, name.dump() + " is listed twice");
                auto it = std::find_if(node.properties.begin(), node.properties.end(),
                                       [&](const Property& p) { return p.name == name.get<std::string>(); });
                if (it == node.properties.end()) fail(where, name.dump() + " is not in properties");
                it->required = true;
            }
        }
    }

    void allowed_values(const json& schema, const std::string& pointer, Node& node) {
        if (schema.contains("enum") && schema.contains("const")) fail(pointer, "enum and const cannot be combined");
        const char* keyword = schema.contains("enum") ? "enum" : schema.contains("const") ? "const" : nullptr;
        if (!keyword) return;
        const json values = std::string(keyword) == "enum" ? schema["enum"] : json::array({schema["const"]});
        if (!values.is_array() || values.empty()) fail(pointer + "/enum", "must be a non-empty array");
        // The grammar writes only these values, so each must meet the schema's other keywords.
        std::vector<nlohmann::json> allowed;
        for (const json& value : values) {
            allowed.push_back(nlohmann::json::parse(value.dump()));
            std::vector<std::string> problems;
            validate_node(node, allowed.back(), "", problems);
            if (!problems.empty())
                fail(pointer + "/" + keyword,
                     std::string(keyword) + " value " + value.dump() + " does not fit the schema: " + problems.front());
        }
        node.allowed = std::move(allowed);
    }

    const json& document_;
    JsonSchema::Compiled& out_;
    std::map<std::string, const Node*> resolved_;  // $ref target pointer -> its node
    std::set<std::string> resolving_;
};

}  // namespace

JsonSchema JsonSchema::parse(const nlohmann::ordered_json& schema) {
    auto compiled = std::make_shared<Compiled>();
    SchemaCompiler(schema, *compiled).compile_root();
    JsonSchema out;
    out.source_ = nlohmann::json::parse(schema.dump());
    out.written_ = schema;
    out.compiled_ = std::move(compiled);
    return out;
}

JsonSchema JsonSchema::with_fixed_properties(const std::map<std::string, nlohmann::json>& values) const {
    nlohmann::ordered_json fixed = written_;
    for (const auto& [name, value] : values) {
        if (!fixed.contains("properties") || !fixed["properties"].contains(name))
            throw SchemaError("the schema has no property '" + name + "' to fix");
        nlohmann::ordered_json& property = fixed["properties"][name];
        nlohmann::ordered_json constant = {{"const", nlohmann::ordered_json::parse(value.dump())}};
        if (property.is_object() && property.contains("description")) constant["description"] = property["description"];
        property = std::move(constant);
    }
    return parse(fixed);
}

bool JsonSchema::accepts_property(const std::string& name, const nlohmann::json& value) const {
    if (!written_.contains("properties") || !written_["properties"].contains(name)) return false;
    nlohmann::ordered_json alone = written_;  // $defs and definitions kept for $ref
    alone["properties"] = {{name, written_["properties"][name]}};
    alone["required"] = {name};
    alone.erase("additionalProperties");
    return parse(alone).validate(nlohmann::json{{name, value}}).empty();
}

JsonSchema JsonSchema::parse(const nlohmann::json& schema) { return parse(nlohmann::ordered_json::parse(schema.dump())); }

JsonSchema JsonSchema::load(const std::filesystem::path& file) { return parse(read_file(file)); }

nlohmann::ordered_json JsonSchema::read_file(const std::filesystem::path& file) {
    std::ifstream in(file, std::ios::binary);
    if (!in) throw SchemaError("schema " + file.string() + ": cannot be read");
    std::ostringstream text;
    text << in.rdbuf();
    try {
        return nlohmann::ordered_json::parse(text.str());
    } catch (const nlohmann::json::parse_error& error) {
        throw SchemaError("schema " + file.string() + ": not JSON (" + error.what() + ")");
    }
}

std::string JsonSchema::grammar() const { return write_grammar(compiled_->nodes.front(), nullptr); }

std::string JsonSchema::grammar(const SourceText& source) const {
    return write_grammar(compiled_->nodes.front(), &source);
}

SourceText SourceText::of(std::string_view text) {
    SourceText source;
    std::set<std::string> words;
    std::set<long long> integers;
    std::size_t i = 0;
    while (i < text.size()) {
        while (i < text.size() && std::isspace(static_cast<unsigned char>(text[i]))) ++i;
        std::size_t end = i;
        while (end < text.size() && !std::isspace(static_cast<unsigned char>(text[end]))) ++end;
        std::string_view word = text.substr(i, end - i);
        i = end;
        // Sentence punctuation around a word is not part of a value.
        while (!word.empty() && std::strchr(".,;:!?)]}\"'", word.back())) word.remove_suffix(1);
        while (!word.empty() && std::strchr("([{\"'", word.front())) word.remove_prefix(1);
        if (word.empty() || word.size() > kMaxWordBytes) continue;
        if (std::any_of(word.begin(), word.end(), [](char c) { return static_cast<unsigned char>(c) < 0x20; }))
            continue;
        words.emplace(word);
        // "41" and the 41 of "41-year-old".
        std::size_t digits = 0;
        while (digits < word.size() && word[digits] >= '0' && word[digits] <= '9') ++digits;
        if (digits > 0 && digits <= 12 && (digits == word.size() || word[digits] == '-'))
            integers.insert(std::stoll(std::string(word.substr(0, digits))));
    }
    source.words.assign(words.begin(), words.end());
    source.integers.assign(integers.begin(), integers.end());
    return source;
}

std::vector<std::string> JsonSchema::validate(const nlohmann::json& instance) const {
    std::vector<std::string> problems;
    validate_node(compiled_->nodes.front(), instance, "", problems);
    return problems;
}

namespace {

void collect_fields(const Node& node, const std::string& pointer, const std::string& inherited_description,
                    std::vector<SchemaField>& out) {
    const std::string& description = node.description.empty() ? inherited_description : node.description;
    if (node.alternatives.empty() && !node.allowed) {
        if ((node.types & ~kNull) == kObject && !node.properties.empty()) {
            for (const Property& property : node.properties)
                collect_fields(*property.schema, pointer + "/" + pointer_token(property.name), "", out);
            return;
        }
        if ((node.types & ~kNull) == kArray && node.items) {
            collect_fields(*node.items, pointer + "/*", description, out);
            return;
        }
    }
    unsigned types = node.types;
    if (node.allowed) {
        types = 0;
        for (const nlohmann::json& value : *node.allowed)
            types |= value.is_null()             ? kNull
                     : value.is_boolean()        ? kBoolean
                     : value.is_number_integer() ? kInteger
                     : value.is_number()         ? kNumber
                     : value.is_string()         ? kString
                     : value.is_array()          ? kArray
                                                 : kObject;
    }
    if (!node.alternatives.empty()) {
        types = 0;
        for (const Node* alternative : node.alternatives) types |= alternative->types;
    }
    out.push_back({pointer_text(pointer), type_names(types), node.format, description});
}

}  // namespace

std::vector<SchemaField> JsonSchema::fields() const {
    std::vector<SchemaField> out;
    collect_fields(compiled_->nodes.front(), "", "", out);
    return out;
}

}  // namespace folio::app
