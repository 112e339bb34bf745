// JsonSchema: the schemas it refuses and why, validate()'s problems, and the
// grammar it writes, run through the engine's GBNF parser and matcher: the
// compact JSON of an instance is accepted exactly when the grammar should
// write it, and whatever it accepts validates.

#include <QTest>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <sstream>

#include <nlohmann/json.hpp>

#include "app/json_schema.h"
#include "engine/gguf.h"
#include "engine/grammar.h"
#include "engine/vocab.h"

using namespace folio;
using nlohmann::json;
using nlohmann::ordered_json;

namespace {

const std::filesystem::path kSourceRoot = std::filesystem::path(FOLIO_TEST_DATA) / "../..";
const std::filesystem::path kData = std::filesystem::path(FOLIO_TEST_DATA) / "json_schema";

app::JsonSchema schema_of(const QString& text) { return app::JsonSchema::parse(ordered_json::parse(text.toStdString())); }

QString joined(const std::vector<std::string>& lines) {
    QStringList out;
    for (const std::string& line : lines) out << QString::fromStdString(line);
    return out.join('\n');
}

// Byte-level BPE: every byte has a token, so any text can be spelled.
const engine::Vocab& gpt2_vocab() {
    static const engine::Vocab vocab(engine::GgufFile::open(std::filesystem::path(FOLIO_TEST_DATA) / "tokenizer/gpt2.gguf"));
    return vocab;
}

// Whether the grammar accepts the whole text, character by character.
bool grammar_accepts(const std::string& gbnf, const std::string& text) {
    engine::GrammarMatcher matcher(engine::Grammar::parse(gbnf), gpt2_vocab());
    if (!matcher.allows_text(text)) return false;
    matcher.accept_text(text);
    return matcher.can_end();
}

// The same through the tokens a model would sample: the mask lets each through.
bool grammar_accepts_tokens(const std::string& gbnf, const std::string& text) {
    engine::GrammarMatcher matcher(engine::Grammar::parse(gbnf), gpt2_vocab());
    std::vector<float> logits(static_cast<std::size_t>(gpt2_vocab().n_tokens()));
    for (std::int32_t token : gpt2_vocab().encode(text, false, false)) {
        std::fill(logits.begin(), logits.end(), 0.0f);
        matcher.mask(logits);
        if (std::isinf(logits[static_cast<std::size_t>(token)])) return false;
        matcher.accept(token);
    }
    return matcher.can_end();
}

ordered_json read_json(const std::filesystem::path& file) {
    std::ifstream in(file);
    std::stringstream text;
    text << in.rdbuf();
    return ordered_json::parse(text.str());
}

}  // namespace

class JsonSchemaTest : public QObject {
    Q_OBJECT

private slots:
    void refusesSchema_data();
    void refusesSchema();
    void validates_data();
    void validates();
    void grammarWritesExactly_data();
    void grammarWritesExactly();
    void edgeGrammarsParse();
    void propertiesKeepSchemaOrder();
    void fixedPropertiesAreWrittenByTheGrammar();
    void fieldsInDocumentOrder();
    void domainSchemas_data();
    void domainSchemas();
    void packExamplesMeetTheirSchemas_data();
    void packExamplesMeetTheirSchemas();
    void loadReportsFileProblems();
    void sourceTextWordsAndNumbers();
    void sourceGrammarCopiesTheDocument();
};

void JsonSchemaTest::refusesSchema_data() {
    QTest::addColumn<QString>("schema");
    QTest::addColumn<QString>("error");
    // Not JSON Schema.
    QTest::newRow("misspelled type") << R"({"type": "strnig"})" << R"(schema /type: "strnig" is not a JSON Schema type)";
    QTest::newRow("type twice") << R"({"type": ["string", "string"]})" << R"(schema /type: "string" is listed twice)";
    QTest::newRow("not a schema") << R"("string")" << "schema /: a schema must be an object, not string";
    QTest::newRow("properties array") << R"({"type": "object", "properties": []})"
                                      << "schema /properties: must be an object of schemas";
    QTest::newRow("required string") << R"({"properties": {"a": {}}, "required": "a"})"
                                     << "schema /required: must be an array of property names";
    QTest::newRow("required number") << R"({"properties": {"a": {}}, "required": [1]})"
                                     << "schema /required: 1 is not a property name";
    QTest::newRow("required twice") << R"({"properties": {"a": {}}, "required": ["a", "a"]})"
                                    << R"(schema /required: "a" is listed twice)";
    QTest::newRow("maxItems -1") << R"({"type": "array", "maxItems": -1})"
                                 << "schema /: maxItems must be a non-negative integer, not -1";
    QTest::newRow("minLength 1.5") << R"({"type": "string", "minLength": 1.5})"
                                   << "schema /: minLength must be a non-negative integer, not 1.5";
    QTest::newRow("minimum string") << R"({"type": "number", "minimum": "0"})"
                                    << R"(schema /: minimum must be a number, not "0")";
    QTest::newRow("bad regex") << R"({"type": "string", "pattern": "a("})"
                               << R"(schema /: pattern "a(" is not a valid regular expression)";
    QTest::newRow("tuple items") << R"({"type": "array", "items": [{"type": "string"}]})"
                                 << "schema /items: must be a schema (tuple items are not supported)";
    QTest::newRow("empty anyOf") << R"({"anyOf": []})" << "schema /anyOf: must be a non-empty array of schemas";
    QTest::newRow("nested bad type") << R"({"properties": {"a": {"items": {"type": 3}}}})"
                                     << "schema /properties/a/items/type: must be a type name or a non-empty array of them";
    // Supported by JSON Schema, not here.
    QTest::newRow("uniqueItems") << R"({"type": "array", "uniqueItems": true})" << R"(schema /: unsupported keyword "uniqueItems")";
    QTest::newRow("format email") << R"({"type": "string", "format": "email"})" << R"(schema /: format "email" is not supported)";
    QTest::newRow("additionalProperties schema")
        << R"({"type": "object", "additionalProperties": {"type": "string"}})"
        << "schema /additionalProperties: only false or true is supported (the grammar writes only listed properties)";
    QTest::newRow("remote $ref") << R"({"$ref": "other.json#/a"})"
                                 << R"(schema /$ref: "other.json#/a" is not supported (only "#/$defs/..." and "#/definitions/..."))";
    QTest::newRow("$ref with siblings") << R"({"$ref": "#/$defs/a", "maxLength": 3, "$defs": {"a": {}}})"
                                        << R"(schema /: $ref cannot be combined with "maxLength")";
    QTest::newRow("dangling $ref") << R"({"$ref": "#/$defs/missing"})" << R"(schema /$ref: "#/$defs/missing" does not resolve)";
    QTest::newRow("recursive $ref")
        << R"({"$ref": "#/$defs/node", "$defs": {"node": {"type": "object", "properties": {"next": {"$ref": "#/$defs/node"}}}}})"
        << R"(schema /$defs/node/properties/next/$ref: recursive "#/$defs/node" is not supported)";
    QTest::newRow("unused definition") << R"({"type": "string", "definitions": {"x": {"type": "date"}}})"
                                       << R"(schema /definitions/x/type: "date" is not a JSON Schema type)";
    QTest::newRow("anyOf with type") << R"({"type": "string", "anyOf": [{"maxLength": 3}]})"
                                     << R"(schema /: anyOf cannot be combined with "type")";
    QTest::newRow("pattern with maxLength") << R"({"type": "string", "pattern": "[a-z]+", "maxLength": 3})"
                                            << "schema /: pattern cannot be combined with minLength/maxLength (write the length into the pattern)";
    QTest::newRow("pattern with format") << R"({"type": "string", "pattern": "[0-9-]+", "format": "date"})"
                                         << "schema /: pattern cannot be combined with format";
    QTest::newRow("lookahead") << R"({"type": "string", "pattern": "(?=a)a"})"
                               << R"(schema /: pattern "(?=a)a": lookaround and named groups are not supported)";
    QTest::newRow("backreference") << R"({"type": "string", "pattern": "(a)\\1"})"
                                   << R"(schema /: pattern "(a)\\1": backreferences are not supported)";
    QTest::newRow("word boundary") << R"({"type": "string", "pattern": "\\bx"})"
                                   << R"(schema /: pattern "\\bx": word boundaries are not supported)";
    QTest::newRow("inner anchor") << R"({"type": "string", "pattern": "a^b"})"
                                  << R"(schema /: pattern "a^b": ^ is supported only at the start)";
    QTest::newRow("empty repeated") << R"({"type": "string", "pattern": "(a?)*"})"
                                    << R"(schema /: pattern "(a?)*": repeating something that can be empty with * is not supported)";
    QTest::newRow("huge minLength") << R"({"type": "string", "minLength": 20000})" << "schema /: minLength above 10000 is not supported";
    // Impossible.
    QTest::newRow("false") << "false" << "schema /: the schema false can never be met";
    QTest::newRow("minItems > maxItems") << R"({"type": "array", "minItems": 3, "maxItems": 2})"
                                         << "schema /: minItems 3 is above maxItems 2";
    QTest::newRow("minLength > maxLength") << R"({"type": "string", "minLength": 5, "maxLength": 2})"
                                           << "schema /: minLength 5 is above maxLength 2";
    QTest::newRow("minimum > maximum")
        << R"({"type": "object", "properties": {"age": {"type": "integer", "minimum": 10, "maximum": 5}}})"
        << "schema /properties/age: minimum 10 is above maximum 5";
    QTest::newRow("exclusive bounds meet") << R"({"type": "number", "exclusiveMinimum": 5, "maximum": 5})"
                                           << "schema /: exclusiveMinimum 5 is above or at maximum 5";
    QTest::newRow("no integer between") << R"({"type": "integer", "minimum": 1.2, "maximum": 1.8})"
                                        << "schema /: no integer lies within the bounds";
    QTest::newRow("empty enum") << R"({"enum": []})" << "schema /enum: must be a non-empty array";
    QTest::newRow("required not listed") << R"({"type": "object", "properties": {"a": {}}, "required": ["b"]})"
                                         << R"(schema /required: "b" is not in properties)";
    QTest::newRow("enum off type") << R"({"type": "string", "enum": ["a", 1]})"
                                   << "schema /enum: enum value 1 does not fit the schema: /: expected string, got integer";
    QTest::newRow("enum too long") << R"({"type": "string", "maxLength": 2, "enum": ["ab", "abc"]})"
                                   << R"(schema /enum: enum value "abc" does not fit the schema: /: longer than maxLength 2 (3 characters))";
    QTest::newRow("const off type") << R"({"type": "integer", "const": "x"})"
                                    << R"(schema /const: const value "x" does not fit the schema: /: expected integer, got string)";
    QTest::newRow("date too short") << R"({"type": "string", "format": "date", "maxLength": 8})"
                                    << "schema /: a date has 10 characters, outside minLength/maxLength";
    QTest::newRow("class matching nothing") << R"({"type": "string", "pattern": "[]"})"
                                            << R"(schema /: pattern "[]": a character class that matches nothing)";
}

void JsonSchemaTest::refusesSchema() {
    QFETCH(QString, schema);
    QFETCH(QString, error);
    try {
        schema_of(schema);
        QFAIL("no SchemaError");
    } catch (const app::SchemaError& e) {
        QCOMPARE(QString::fromStdString(e.what()), error);
    }
}

void JsonSchemaTest::validates_data() {
    QTest::addColumn<QString>("schema");
    QTest::addColumn<QString>("instance");
    QTest::addColumn<QString>("problems");
    QTest::newRow("string") << R"({"type": "string"})" << R"("x")" << "";
    QTest::newRow("string, got integer") << R"({"type": "string"})" << "5" << "/: expected string, got integer";
    QTest::newRow("number") << R"({"type": "number"})" << "1.5" << "";
    QTest::newRow("number, got string") << R"({"type": "number"})" << R"("1")" << "/: expected number, got string";
    QTest::newRow("integer") << R"({"type": "integer"})" << "3" << "";
    QTest::newRow("integer written 3.0") << R"({"type": "integer"})" << "3.0" << "";
    QTest::newRow("integer, got 3.5") << R"({"type": "integer"})" << "3.5" << "/: expected integer, got number";
    QTest::newRow("boolean") << R"({"type": "boolean"})" << "true" << "";
    QTest::newRow("boolean, got 0") << R"({"type": "boolean"})" << "0" << "/: expected boolean, got integer";
    QTest::newRow("null") << R"({"type": "null"})" << "null" << "";
    QTest::newRow("null, got string") << R"({"type": "null"})" << R"("")" << "/: expected null, got string";
    QTest::newRow("nullable string") << R"({"type": ["string", "null"]})" << "null" << "";
    QTest::newRow("nullable string, got 1") << R"({"type": ["string", "null"]})" << "1" << "/: expected null|string, got integer";
    QTest::newRow("enum") << R"({"enum": ["a", "b"]})" << R"("b")" << "";
    QTest::newRow("enum, got c") << R"({"enum": ["a", "b"]})" << R"("c")" << "/: not one of the enum values";
    QTest::newRow("const") << R"({"const": 5})" << "5.0" << "";
    QTest::newRow("const, got 6") << R"({"const": 5})" << "6" << "/: not the const value 5";
    QTest::newRow("minLength") << R"({"type": "string", "minLength": 3})" << R"("héé")" << "";
    QTest::newRow("minLength, short") << R"({"type": "string", "minLength": 3})" << R"("hé")" << "/: shorter than minLength 3";
    QTest::newRow("maxLength, long") << R"({"type": "string", "maxLength": 2})" << R"("abc")" << "/: longer than maxLength 2 (3 characters)";
    QTest::newRow("pattern") << R"({"type": "string", "pattern": "^[A-Z]{3}$"})" << R"("USD")" << "";
    QTest::newRow("pattern, lowercase") << R"({"type": "string", "pattern": "^[A-Z]{3}$"})" << R"("usd")"
                                        << R"(/: does not match pattern "^[A-Z]{3}$")";
    QTest::newRow("unanchored pattern matches whole") << R"({"type": "string", "pattern": "[0-9]+"})" << R"("a1")"
                                                      << R"(/: does not match pattern "[0-9]+")";
    QTest::newRow("pattern counts characters") << R"({"type": "string", "pattern": "^.{2}$"})" << R"("éé")" << "";
    QTest::newRow("date") << R"({"type": "string", "format": "date"})" << R"("2024-02-29")" << "";
    QTest::newRow("date, not leap") << R"({"type": "string", "format": "date"})" << R"("2023-02-29")"
                                    << "/: not a calendar date (YYYY-MM-DD)";
    QTest::newRow("date, month 13") << R"({"type": "string", "format": "date"})" << R"("2024-13-01")"
                                    << "/: not a calendar date (YYYY-MM-DD)";
    QTest::newRow("date-time") << R"({"type": "string", "format": "date-time"})" << R"("2024-03-01T14:05:00.5+01:00")" << "";
    QTest::newRow("date-time, no zone") << R"({"type": "string", "format": "date-time"})" << R"("2024-03-01T14:05:00")"
                                        << "/: not an RFC 3339 date-time";
    QTest::newRow("minimum") << R"({"type": "integer", "minimum": 0})" << "-1" << "/: below minimum 0";
    QTest::newRow("maximum") << R"({"type": "number", "maximum": 1.5})" << "2" << "/: above maximum 1.5";
    QTest::newRow("exclusiveMinimum") << R"({"type": "number", "exclusiveMinimum": 0})" << "0" << "/: not above exclusiveMinimum 0";
    QTest::newRow("exclusiveMaximum") << R"({"type": "number", "exclusiveMaximum": 1})" << "1" << "/: not below exclusiveMaximum 1";
    QTest::newRow("within bounds") << R"({"type": "number", "minimum": 0, "exclusiveMaximum": 1})" << "0.5" << "";
    QTest::newRow("items") << R"({"type": "array", "items": {"type": "integer"}})" << R"([1, "x", 3, null])"
                           << "/1: expected integer, got string\n/3: expected integer, got null";
    QTest::newRow("minItems") << R"({"type": "array", "minItems": 2})" << "[1]" << "/: fewer items than minItems 2";
    QTest::newRow("maxItems") << R"({"type": "array", "maxItems": 1})" << "[1, 2]" << "/: more items than maxItems 1";
    QTest::newRow("required") << R"({"type": "object", "properties": {"a": {}, "b": {}}, "required": ["a"]})" << R"({"b": 1})"
                              << R"(/: missing required property "a")";
    QTest::newRow("extra allowed") << R"({"type": "object", "properties": {"a": {}}})" << R"({"z": 1})" << "";
    QTest::newRow("additionalProperties false") << R"({"type": "object", "properties": {"a": {}}, "additionalProperties": false})"
                                                << R"({"a": 1, "z": 1})" << R"(/: property "z" is not allowed)";
    QTest::newRow("nested pointers")
        << R"({"type": "object", "properties": {"meds": {"type": "array", "items": {"type": "object",
              "properties": {"name": {"type": "string"}, "a/b~": {"type": "integer"}}, "required": ["name"]}}}})"
        << R"({"meds": [{"name": "x"}, {"name": 1, "a/b~": "y"}, {}]})"
        << "/meds/1/name: expected string, got integer\n/meds/1/a~1b~0: expected integer, got string\n"
           "/meds/2: missing required property \"name\"";
    QTest::newRow("$ref") << R"({"type": "array", "items": {"$ref": "#/$defs/code"}, "$defs": {"code": {"type": "string", "maxLength": 2}}})"
                          << R"(["ab", "abc"])" << "/1: longer than maxLength 2 (3 characters)";
    QTest::newRow("definitions $ref") << R"({"$ref": "#/definitions/n", "definitions": {"n": {"type": "integer"}}})" << "1.5"
                                      << "/: expected integer, got number";
    QTest::newRow("anyOf") << R"({"anyOf": [{"type": "string"}, {"type": "integer"}]})" << "true" << "/: matches none of anyOf's schemas";
    QTest::newRow("oneOf, two match") << R"({"oneOf": [{"type": "number"}, {"type": "integer"}]})" << "1"
                                      << "/: matches 2 of oneOf's schemas, not exactly one";
    QTest::newRow("oneOf, one matches") << R"({"oneOf": [{"type": "number"}, {"type": "integer"}]})" << "1.5" << "";
    QTest::newRow("no type: keywords decide") << R"({"maxLength": 2})" << "3" << "/: expected string, got integer";
    QTest::newRow("annotations only: anything") << R"({"title": "t", "description": "d", "examples": [1]})" << R"({"k": [1]})" << "";
}

void JsonSchemaTest::validates() {
    QFETCH(QString, schema);
    QFETCH(QString, instance);
    QFETCH(QString, problems);
    const app::JsonSchema parsed = schema_of(schema);
    QCOMPARE(joined(parsed.validate(json::parse(instance.toStdString()))), problems);
    engine::Grammar::parse(parsed.grammar());
}

void JsonSchemaTest::grammarWritesExactly_data() {
    QTest::addColumn<QString>("schema");
    QTest::addColumn<QString>("text");  // compact JSON, properties in schema order
    QTest::addColumn<bool>("accepted");
    const QString short_string = R"({"type": "string", "maxLength": 3})";
    QTest::newRow("maxLength 3") << short_string << R"("abc")" << true;
    QTest::newRow("maxLength 3, escape counts once") << short_string << R"("a\"b")" << true;
    QTest::newRow("maxLength 3, four") << short_string << R"("abcd")" << false;
    QTest::newRow("maxLength 3, raw newline") << short_string << "\"a\nb\"" << false;
    QTest::newRow("minLength 2, one") << R"({"type": "string", "minLength": 2})" << R"("a")" << false;
    QTest::newRow("string, unicode") << R"({"type": "string"})" << R"("café \u0001 \/")" << true;
    QTest::newRow("string, lone surrogate") << R"({"type": "string"})" << R"("\ud800")" << false;
    QTest::newRow("date") << R"({"type": "string", "format": "date"})" << R"("2024-02-29")" << true;
    QTest::newRow("date, month 13") << R"({"type": "string", "format": "date"})" << R"("2024-13-01")" << false;
    QTest::newRow("date, one-digit month") << R"({"type": "string", "format": "date"})" << R"("2024-1-01")" << false;
    QTest::newRow("date, day 32") << R"({"type": "string", "format": "date"})" << R"("2024-01-32")" << false;
    QTest::newRow("date-time") << R"({"type": "string", "format": "date-time"})" << R"("2024-03-01T14:05:00Z")" << true;
    QTest::newRow("date-time, hour 24") << R"({"type": "string", "format": "date-time"})" << R"("2024-03-01T24:05:00Z")" << false;
    QTest::newRow("integer") << R"({"type": "integer"})" << "-12" << true;
    QTest::newRow("integer, leading zero") << R"({"type": "integer"})" << "012" << false;
    QTest::newRow("integer, fraction") << R"({"type": "integer"})" << "1.5" << false;
    QTest::newRow("integer, minimum 0") << R"({"type": "integer", "minimum": 0})" << "-1" << false;
    const QString age = R"({"type": "integer", "minimum": 0, "maximum": 120})";
    for (const char* n : {"0", "7", "99", "100", "119", "120"}) QTest::newRow(qPrintable(QString("0..120: ") + n)) << age << n << true;
    for (const char* n : {"121", "200", "1000", "-1", "00"}) QTest::newRow(qPrintable(QString("0..120, not ") + n)) << age << n << false;
    const QString around_zero = R"({"type": "integer", "exclusiveMinimum": -6, "maximum": 5})";
    for (const char* n : {"-5", "-1", "0", "5"}) QTest::newRow(qPrintable(QString("-5..5: ") + n)) << around_zero << n << true;
    for (const char* n : {"-6", "6", "-0"}) QTest::newRow(qPrintable(QString("-5..5, not ") + n)) << around_zero << n << false;
    QTest::newRow("1234..5678: 4999") << R"({"type": "integer", "minimum": 1234, "maximum": 5678})" << "4999" << true;
    QTest::newRow("1234..5678, not 1233") << R"({"type": "integer", "minimum": 1234, "maximum": 5678})" << "1233" << false;
    QTest::newRow("1234..5678, not 5679") << R"({"type": "integer", "minimum": 1234, "maximum": 5678})" << "5679" << false;
    QTest::newRow("number") << R"({"type": "number"})" << "-0.25" << true;
    QTest::newRow("number, bare point") << R"({"type": "number"})" << "1." << false;
    QTest::newRow("number, minimum 0") << R"({"type": "number", "minimum": 0})" << "-0.5" << false;
    QTest::newRow("boolean") << R"({"type": "boolean"})" << "false" << true;
    QTest::newRow("null or string") << R"({"type": ["string", "null"]})" << "null" << true;
    QTest::newRow("enum") << R"({"enum": ["a", 1, null, {"k": [true]}]})" << R"({"k":[true]})" << true;
    QTest::newRow("enum, other") << R"({"enum": ["a", 1, null]})" << "2" << false;
    QTest::newRow("const") << R"({"const": "x"})" << R"("x")" << true;
    const QString mixed = R"({"type": "object", "properties": {"a": {"type": "integer"}, "b": {"type": "integer"},
                                 "c": {"type": "integer"}}, "required": ["a", "c"]})";
    QTest::newRow("a,c required") << mixed << R"({"a":1,"c":2})" << true;
    QTest::newRow("a,c required, with b") << mixed << R"({"a":1,"b":2,"c":3})" << true;
    QTest::newRow("a,c required, out of order") << mixed << R"({"c":2,"a":1})" << false;
    QTest::newRow("a,c required, c missing") << mixed << R"({"a":1})" << false;
    QTest::newRow("a,c required, with spaces") << mixed << R"({"a": 1, "c": 2})" << false;
    const QString optional = R"({"type": "object", "properties": {"a": {"type": "integer"}, "b": {"type": "integer"}}})";
    QTest::newRow("all optional, none") << optional << "{}" << true;
    QTest::newRow("all optional, b") << optional << R"({"b":1})" << true;
    QTest::newRow("all optional, both") << optional << R"({"a":1,"b":2})" << true;
    QTest::newRow("all optional, leading comma") << optional << R"({,"b":1})" << false;
    QTest::newRow("all optional, extra") << optional << R"({"z":1})" << false;
    const QString pair = R"({"type": "array", "items": {"type": "integer"}, "minItems": 1, "maxItems": 2})";
    QTest::newRow("1..2 items, none") << pair << "[]" << false;
    QTest::newRow("1..2 items, one") << pair << "[1]" << true;
    QTest::newRow("1..2 items, two") << pair << "[1,2]" << true;
    QTest::newRow("1..2 items, three") << pair << "[1,2,3]" << false;
    QTest::newRow("0..2 items, none") << R"({"type": "array", "maxItems": 2})" << "[]" << true;
    QTest::newRow("any items") << R"({"type": "array"})" << R"([1,"x",{"k":[null,-2.5]},true])" << true;
    QTest::newRow("pattern ^[A-Z]{3}$") << R"({"type": "string", "pattern": "^[A-Z]{3}$"})" << R"("USD")" << true;
    QTest::newRow("pattern ^[A-Z]{3}$, four") << R"({"type": "string", "pattern": "^[A-Z]{3}$"})" << R"("USDX")" << false;
    QTest::newRow("pattern \\d{3}-\\d{4}") << R"({"type": "string", "pattern": "\\d{3}-\\d{4}"})" << R"("555-1234")" << true;
    QTest::newRow("pattern (ab|cd)+x?") << R"({"type": "string", "pattern": "(ab|cd)+x?"})" << R"("abcdx")" << true;
    QTest::newRow("pattern (ab|cd)+x?, x") << R"({"type": "string", "pattern": "(ab|cd)+x?"})" << R"("x")" << false;
    QTest::newRow("pattern a.c, quote") << R"({"type": "string", "pattern": "a.c"})" << R"("a\"c")" << true;
    QTest::newRow("pattern a.c, newline") << R"({"type": "string", "pattern": "a.c"})" << R"("a\nc")" << false;
    QTest::newRow("pattern [^a], backslash") << R"({"type": "string", "pattern": "[^a]"})" << R"("\\")" << true;
    QTest::newRow("pattern [^a], a") << R"({"type": "string", "pattern": "[^a]"})" << R"("a")" << false;
    QTest::newRow("pattern \\s, tab") << R"({"type": "string", "pattern": "\\s"})" << R"("\t")" << true;
    QTest::newRow("pattern quote and backslash") << R"({"type": "string", "pattern": "\"\\\\"})" << R"("\"\\")" << true;
    QTest::newRow("pattern [-+]?\\d+(\\.\\d+)?%") << R"({"type": "string", "pattern": "^[-+]?\\d+(\\.\\d+)?%$"})" << R"("-3.5%")" << true;
    QTest::newRow("pattern \\w+@\\w+, space") << R"({"type": "string", "pattern": "\\w+@\\w+"})" << R"("a @b")" << false;
    QTest::newRow("pattern ^[à-ÿ]+$") << R"({"type": "string", "pattern": "^[à-ÿ]+$"})" << R"("éè")" << true;
    QTest::newRow("pattern ^[à-ÿ]+$, ascii") << R"({"type": "string", "pattern": "^[à-ÿ]+$"})" << R"("e")" << false;
    QTest::newRow("names with quote and accent")
        << R"({"type": "object", "properties": {"dose \"max\"": {"type": "string"}, "café": {"type": "integer"}},
              "required": ["dose \"max\"", "café"]})"
        << R"({"dose \"max\"":"1","café":2})" << true;
    QTest::newRow("anyOf") << R"({"anyOf": [{"type": "string", "maxLength": 1}, {"type": "integer"}]})" << "1" << true;
    QTest::newRow("anyOf, too long") << R"({"anyOf": [{"type": "string", "maxLength": 1}, {"type": "integer"}]})" << R"("ab")" << false;
    QTest::newRow("$ref shared") << R"({"type": "object", "properties": {"from": {"$ref": "#/$defs/d"}, "to": {"$ref": "#/$defs/d"}},
                                       "required": ["from", "to"], "$defs": {"d": {"type": "string", "format": "date"}}})"
                                 << R"({"from":"2024-01-01","to":"2024-12-31"})" << true;
}

void JsonSchemaTest::grammarWritesExactly() {
    QFETCH(QString, schema);
    QFETCH(QString, text);
    QFETCH(bool, accepted);
    const app::JsonSchema parsed = schema_of(schema);
    const std::string gbnf = parsed.grammar();
    QCOMPARE(grammar_accepts(gbnf, text.toStdString()), accepted);
    // What the grammar writes must parse and validate.
    if (accepted) QCOMPARE(joined(parsed.validate(json::parse(text.toStdString()))), QString());
}

// Corners the tables above do not reach; their own schemas' grammars are
// parsed where they are used.
void JsonSchemaTest::edgeGrammarsParse() {
    for (const char* text : {R"({"type": ["string", "null"], "maxLength": 0})", R"({"type": "array", "maxItems": 0})",
                             R"({"type": "object", "properties": {"Item 2": {}, "item-2": {}, "2023": {}, "": {}}})",
                             R"({"type": "object", "additionalProperties": false})", "{}", "true",
                             R"({"type": "string", "maxLength": 50000})", R"({"type": "array", "maxItems": 50000})",
                             R"({"oneOf": [{"type": "object", "properties": {"a": {"anyOf": [{"type": "null"}, {"type": "boolean"}]}}}]})",
                             R"({"type": "string", "pattern": "^(a|)b{0,3}[\\x00-\\x1f\"\\\\]\\u00e9.*?$|^$"})"}) {
        const std::string gbnf = schema_of(text).grammar();
        try {
            engine::Grammar::parse(gbnf);
        } catch (const engine::GrammarError& e) {
            QFAIL(qPrintable(QString("%1: %2\n%3").arg(text, e.what(), QString::fromStdString(gbnf))));
        }
    }
}

void JsonSchemaTest::propertiesKeepSchemaOrder() {
    const QString text = R"({"type": "object", "properties": {"zeta": {"type": "integer"}, "alpha": {"type": "integer"}},
                             "required": ["zeta", "alpha"]})";
    QVERIFY(grammar_accepts(schema_of(text).grammar(), R"({"zeta":1,"alpha":2})"));
    // nlohmann::json has already sorted the names when it reaches parse().
    QVERIFY(grammar_accepts(app::JsonSchema::parse(json::parse(text.toStdString())).grammar(), R"({"alpha":2,"zeta":1})"));
}

// Extraction fixes what a filing's statements give (the finance pack's
// revenue), in place and order, and the model writes the rest.
void JsonSchemaTest::fixedPropertiesAreWrittenByTheGrammar() {
    const app::JsonSchema schema = schema_of(
        R"({"type": "object", "$defs": {"figure": {"type": ["string", "null"], "maxLength": 8}},
            "properties": {"zeta": {"type": "integer"}, "revenue": {"$ref": "#/$defs/figure", "description": "sales"},
                           "alpha": {"$ref": "#/$defs/figure"}},
            "required": ["zeta", "revenue", "alpha"]})");
    QVERIFY(schema.accepts_property("revenue", "365,817"));
    QVERIFY(schema.accepts_property("revenue", nullptr));
    QVERIFY(!schema.accepts_property("revenue", "365,817,000,000"));
    QVERIFY(!schema.accepts_property("zeta", "one"));
    QVERIFY(!schema.accepts_property("omega", 1));
    const app::JsonSchema fixed = schema.with_fixed_properties({{"revenue", "365,817"}, {"alpha", nullptr}});
    const std::string gbnf = fixed.grammar();
    QVERIFY(grammar_accepts(gbnf, R"({"zeta":1,"revenue":"365,817","alpha":null})"));
    QVERIFY(!grammar_accepts(gbnf, R"({"zeta":1,"revenue":"274,515","alpha":null})"));
    QVERIFY(!grammar_accepts(gbnf, R"({"zeta":1,"revenue":"365,817","alpha":"1"})"));
    QVERIFY(fixed.validate(json::parse(R"({"zeta":1,"revenue":"365,817","alpha":null})")).empty());
    QCOMPARE(fixed.fields()[1].description, std::string("sales"));
    QVERIFY_THROWS_EXCEPTION(app::SchemaError, schema.with_fixed_properties({{"omega", 1}}));
}

void JsonSchemaTest::fieldsInDocumentOrder() {
    const app::JsonSchema schema = app::JsonSchema::load(kSourceRoot / "domain_packs/medical/schemas/clinical_note.schema.json");
    QStringList fields;
    for (const app::SchemaField& field : schema.fields())
        fields << QString::fromStdString(field.pointer + " " + field.type + (field.format.empty() ? "" : " " + field.format));
    QCOMPARE(fields, QStringList({"/patient/name null|string", "/patient/date_of_birth null|string date",
                                  "/patient/age null|integer", "/patient/sex string", "/encounter_date null|string date",
                                  "/chief_complaint null|string", "/medications/*/name string",
                                  "/medications/*/dose null|string", "/medications/*/route null|string",
                                  "/medications/*/frequency null|string", "/allergies/* string", "/vitals/*/name string",
                                  "/vitals/*/value string", "/vitals/*/unit null|string", "/labs/*/name string",
                                  "/labs/*/value string", "/labs/*/unit null|string", "/diagnoses/*/description string",
                                  "/diagnoses/*/icd10 null|string", "/plan/* string"}));
    // An array's description stands for its items when they have none.
    QCOMPARE(schema.fields()[10].description, std::string("substances the patient is allergic to, or NKDA"));
    QCOMPARE(schema.fields()[2].description, std::string("age in years"));
}

void JsonSchemaTest::domainSchemas_data() {
    QTest::addColumn<QString>("schema");   // under the source root
    QTest::addColumn<QString>("example");  // under tests/data/json_schema: a valid record and broken ones
    QTest::newRow("medical clinical note") << "domain_packs/medical/schemas/clinical_note.schema.json" << "clinical_note.json";
    QTest::newRow("finance filing facts") << "domain_packs/finance/schemas/filing_facts.schema.json" << "filing_facts.json";
}

// Each example file: {"valid": record, "broken": [{"record": ..., "problems": [...]}, ...]}.
void JsonSchemaTest::domainSchemas() {
    QFETCH(QString, schema);
    QFETCH(QString, example);
    const app::JsonSchema parsed = app::JsonSchema::load(kSourceRoot / schema.toStdString());
    const std::string gbnf = parsed.grammar();
    QVERIFY(!gbnf.empty());
    const ordered_json examples = read_json(kData / example.toStdString());

    const std::string valid = examples["valid"].dump();
    QCOMPARE(joined(parsed.validate(json::parse(valid))), QString());
    QVERIFY(grammar_accepts(gbnf, valid));
    QVERIFY(grammar_accepts_tokens(gbnf, valid));

    for (const ordered_json& broken : examples["broken"]) {
        const std::string text = broken["record"].dump();
        QStringList expected;
        for (const ordered_json& problem : broken["problems"]) expected << QString::fromStdString(problem.get<std::string>());
        QCOMPARE(joined(parsed.validate(json::parse(text))), expected.join('\n'));
        QVERIFY2(!grammar_accepts(gbnf, text), text.c_str());
    }
}

void JsonSchemaTest::packExamplesMeetTheirSchemas_data() {
    QTest::addColumn<QString>("pack");
    QTest::addColumn<QString>("schema");
    QTest::newRow("finance") << "finance" << "filing_facts.schema.json";
    QTest::newRow("medical") << "medical" << "clinical_note.schema.json";
}

// The few-shot record of a pack's extraction prompt is what the model copies
// the shape of: it must be a record of the pack's schema, in the schema's
// property order (the grammar writes them in that order). The finance
// evaluation set's records are whole records of the schema too.
void JsonSchemaTest::packExamplesMeetTheirSchemas() {
    QFETCH(QString, pack);
    QFETCH(QString, schema);
    const std::filesystem::path folder = kSourceRoot / "domain_packs" / pack.toStdString();
    const app::JsonSchema parsed = app::JsonSchema::load(folder / "schemas" / schema.toStdString());
    std::ifstream prompt(folder / "prompts/extract.txt");
    std::string line, example;
    while (std::getline(prompt, line))
        if (line.rfind("Record: ", 0) == 0) example = line.substr(8);
    QVERIFY2(!example.empty(), "no \"Record: \" line in the prompt");
    QCOMPARE(joined(parsed.validate(json::parse(example))), QString());
    QVERIFY(grammar_accepts(parsed.grammar(), example));

    if (pack != "finance") return;
    std::ifstream eval(folder / "eval/truth.jsonl");
    int records = 0;
    while (std::getline(eval, line)) {
        const json truth = json::parse(line);
        QVERIFY2(joined(parsed.validate(truth["record"])).isEmpty(), line.c_str());
        ++records;
    }
    QVERIFY(records >= 5);
}

void JsonSchemaTest::loadReportsFileProblems() {
    const std::filesystem::path missing = kData / "missing.schema.json";
    QVERIFY_THROWS_EXCEPTION(app::SchemaError, app::JsonSchema::load(missing));
    try {
        app::JsonSchema::load(kData / "not_json.schema.json");
        QFAIL("no SchemaError");
    } catch (const app::SchemaError& e) {
        QVERIFY2(QString(e.what()).contains("not_json.schema.json: not JSON"), e.what());
    }
}

QTEST_GUILESS_MAIN(JsonSchemaTest)
#include "tst_json_schema.moc"

void JsonSchemaTest::sourceTextWordsAndNumbers() {
    const folio::app::SourceText source = folio::app::SourceText::of("Martha Collins is a 50-year-old female (on lisinopril, 20 mg). \"BP\" 128/78");
    const std::vector<std::string> words = {"128/78", "20", "50-year-old", "BP", "Collins", "Martha", "a",
                                            "female", "is", "lisinopril", "mg", "on"};
    QCOMPARE(source.words, words);
    QCOMPARE(source.integers, (std::vector<long long>{20, 50}));
}

void JsonSchemaTest::sourceGrammarCopiesTheDocument() {
    const folio::app::JsonSchema schema = folio::app::JsonSchema::parse(nlohmann::ordered_json::parse(
        R"({"type": "object", "properties": {"name": {"type": "string", "maxLength": 30},
            "age": {"type": ["integer", "null"], "minimum": 0, "maximum": 120},
            "sex": {"enum": ["female", "male"]}}, "required": ["name", "age", "sex"]})"));
    const std::string gbnf =
        schema.grammar(folio::app::SourceText::of("Martha Collins is a 50-year-old female; her daughter is 1234 miles away."));
    QVERIFY(grammar_accepts(gbnf, R"({"name":"Martha Collins","age":50,"sex":"female"})"));
    QVERIFY(grammar_accepts(gbnf, R"({"name":"Collins","age":null,"sex":"male"})"));  // enums and null stay free
    QVERIFY(!grammar_accepts(gbnf, R"({"name":"Mary Collins","age":50,"sex":"female"})"));  // a word not in the text
    QVERIFY(!grammar_accepts(gbnf, R"({"name":"Martha  Collins","age":50,"sex":"female"})"));  // words join with one space
    QVERIFY(!grammar_accepts(gbnf, R"({"name":"Martha","age":51,"sex":"female"})"));  // a number not in the text
    QVERIFY(!grammar_accepts(gbnf, R"({"name":"Martha","age":1234,"sex":"female"})"));  // in the text, past maximum
    // maxLength 30 allows five words; the caller trims what runs past 30 characters.
    QVERIFY(grammar_accepts(gbnf, R"({"name":"Martha Collins is a female","age":50,"sex":"female"})"));
    QVERIFY(!grammar_accepts(gbnf, R"({"name":"Martha Collins is a female her","age":50,"sex":"female"})"));
}
