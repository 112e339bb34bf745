#pragma once
// JSON Schema for extraction: a schema is checked once, compiles to a GBNF
// grammar for constrained decoding (so every sampled output parses and meets
// the schema), and validates instances afterwards.
//
//   JsonSchema schema = JsonSchema::load(pack_dir / "schemas/clinical_note.schema.json");
//   // or JsonSchema::parse(nlohmann::ordered_json::parse(text))
//   std::string gbnf = schema.grammar();             // start rule "root"
//   std::vector<std::string> problems = schema.validate(record);
//
// The subset supported: type (one or a list), enum, const, properties,
// required, additionalProperties (true or false), items, minItems,
// maxItems, minLength, maxLength, pattern, format ("date", "date-time"),
// minimum, maximum, exclusiveMinimum, exclusiveMaximum, $ref to
// "#/$defs/..." or "#/definitions/..." (not recursive), anyOf, oneOf.
// Annotations (title, description, examples, ...) are ignored. Any other
// keyword is refused: a constraint dropped silently would let the model
// write what the user did not ask for.
//
// Where this differs from JSON Schema, on purpose:
// - A pattern must match the whole string, anchored or not.
// - A schema without "type" takes the types its keywords apply to
//   ({"maxLength": 5} is a string); with none of those, any JSON value.
// - Required properties must be listed in "properties": the grammar writes
//   only listed properties, so any other required name could never be met.
//
// What the grammar writes: compact JSON (no whitespace), properties in the
// order of "properties", optional ones possibly left out, never a property
// that is not listed. Integer ranges with both bounds, string lengths,
// patterns, enums and item counts are exact. Left to validate(): other
// number bounds (the grammar keeps the sign when the minimum is at least 0),
// whether a date's day exists in its month (the grammar allows months 01-12,
// days 01-31), oneOf's "exactly one", and maxLength and maxItems above 10000
// (the engine's repetition limit).

#include <filesystem>
#include <map>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace folio::app {

// A schema that is not valid JSON Schema, uses an unsupported keyword or can
// never be met. what(): "schema /properties/age: minimum 10 is above maximum 5".
class SchemaError : public std::runtime_error {
public:
    using std::runtime_error::runtime_error;
};

// One leaf value a record may hold, for prompts and grounding.
struct SchemaField {
    std::string pointer;      // JSON pointer with "*" for any array index: "/medications/*/name"
    std::string type;         // "string", "integer", ...; several as "string|null"
    std::string format;       // "date", "date-time" or empty
    std::string description;  // the schema's description, or empty
};

// The words and whole numbers of a document, for a grammar whose values
// come from it (JsonSchema::grammar(const SourceText&)).
struct SourceText {
    static constexpr std::size_t kMaxWordBytes = 40;
    std::vector<std::string> words;      // whitespace-separated, outer punctuation trimmed, sorted, unique
    std::vector<long long> integers;     // the words that are whole numbers
    static SourceText of(std::string_view text);
};

class JsonSchema {
public:
    // Throws SchemaError. Properties keep the order of an ordered_json;
    // nlohmann::json sorts them by name.
    static JsonSchema parse(const nlohmann::ordered_json& schema);
    static JsonSchema parse(const nlohmann::json& schema);
    // A schema file (a pack's schemas/*.schema.json). Throws SchemaError.
    static JsonSchema load(const std::filesystem::path& file);
    // A schema file's JSON, properties in their written order, not yet
    // checked as a schema. Throws SchemaError: unreadable, or not JSON.
    static nlohmann::ordered_json read_file(const std::filesystem::path& file);

    const nlohmann::json& source() const { return source_; }

    // The same schema with some of the root object's properties (by name)
    // fixed to one value each ("const"), their order kept: a grammar made
    // from it writes those values itself. Throws SchemaError for a name the
    // root's properties lack.
    JsonSchema with_fixed_properties(const std::map<std::string, nlohmann::json>& values) const;
    // Whether a value meets the schema of the root object's property `name`
    // (false for a name the root's properties lack).
    bool accepts_property(const std::string& name, const nlohmann::json& value) const;

    // GBNF (llama.cpp's grammars/README.md) with start rule "root".
    std::string grammar() const;
    // The same with values taken from a source document, so that a model
    // can only copy what the document says: free-text strings (no format,
    // pattern, enum or minLength) are its words joined by single spaces (at
    // most one word per six characters of maxLength, 24 without one), and
    // integers are whole numbers it writes within the bounds (only null, if
    // allowed, when it writes none). A string may then exceed maxLength: a
    // caller trims it at a word boundary before validating.
    std::string grammar(const SourceText& source) const;

    // Empty when the instance meets the schema; else one line per problem,
    // "<JSON pointer>: <problem>", with "/" for the instance itself.
    std::vector<std::string> validate(const nlohmann::json& instance) const;

    // Leaves in document order; an object is not a leaf, an array of
    // strings is one leaf ("/assessment/*").
    std::vector<SchemaField> fields() const;

    struct Compiled;  // json_schema_node.h

private:
    JsonSchema() = default;
    nlohmann::json source_;
    nlohmann::ordered_json written_;  // source_ in its written order
    std::shared_ptr<const Compiled> compiled_;
};

}  // namespace folio::app
