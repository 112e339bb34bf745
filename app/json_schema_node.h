#pragma once
// Internals of JsonSchema: the checked schema as a tree of nodes, which the
// grammar writer (json_schema_grammar.cpp) and the validator
// (json_schema_validate.cpp) walk.

#include <cstdint>
#include <deque>
#include <optional>
#include <regex>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "app/json_schema.h"
#include "app/json_schema_regex.h"

namespace folio::app::schema {

enum JsonType : unsigned {
    kNull = 1u << 0,
    kBoolean = 1u << 1,
    kInteger = 1u << 2,
    kNumber = 1u << 3,  // any number, integers included
    kString = 1u << 4,
    kArray = 1u << 5,
    kObject = 1u << 6,
    kAnyType = (1u << 7) - 1,
};

// "string|null" for kString | kNull, in the order of JsonType.
std::string type_names(unsigned types);

// "/" for the document itself.
std::string pointer_text(const std::string& pointer);
// One JSON pointer reference token: "~" and "/" escaped.
std::string pointer_token(const std::string& name);

struct Node;

struct Property {
    std::string name;
    const Node* schema = nullptr;
    bool required = false;
};

struct Node {
    std::string description;

    unsigned types = kAnyType;
    // enum, or const as one value: then the other keywords are already met.
    std::optional<std::vector<nlohmann::json>> allowed;

    std::optional<std::uint64_t> min_length, max_length;  // code points
    std::optional<std::string> pattern;
    std::string pattern_grammar;               // GBNF of the JSON-encoded content
    std::optional<std::wregex> pattern_regex;  // matched against the whole string
    std::string format;                        // "", "date" or "date-time"

    std::optional<double> minimum, maximum, exclusive_minimum, exclusive_maximum;

    const Node* items = nullptr;  // null: any value
    std::uint64_t min_items = 0;
    std::optional<std::uint64_t> max_items;

    std::vector<Property> properties;
    bool additional_properties = true;

    // anyOf or oneOf: the node is exactly one of these (no other constraints).
    std::vector<const Node*> alternatives;
    bool exactly_one = false;
};

// The integers that minimum, maximum and the exclusive bounds leave.
struct IntegerBounds {
    std::optional<long long> low, high;
};
IntegerBounds integer_bounds(const Node& node);

// Problems of an instance at `pointer` against `node`, appended to `problems`.
void validate_node(const Node& node, const nlohmann::json& instance, const std::string& pointer,
                   std::vector<std::string>& problems);

// The GBNF text for the tree under `root`.
std::string write_grammar(const Node& root, const SourceText* source);

}  // namespace folio::app::schema

namespace folio::app {

struct JsonSchema::Compiled {
    std::deque<schema::Node> nodes;  // stable addresses; nodes[0] is the root
};

}  // namespace folio::app
