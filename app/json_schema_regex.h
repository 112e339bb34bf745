#pragma once
// GBNF text helpers of JsonSchema, and the translation of a "pattern"
// (an ECMAScript regular expression) into GBNF.

#include <string>

namespace folio::app::schema {

// The code points of UTF-8 text; a byte that starts no valid sequence
// stands for itself.
std::u32string code_points(const std::string& utf8);

// A GBNF string literal for UTF-8 text: "..." with \" \\ \n \r \t \xHH.
std::string gbnf_literal(const std::string& text);

// A GBNF expression for what may stand between the quotes of a JSON string
// whose decoded value the regular expression matches as a whole (anchored or
// not). Supported: literals, escapes (\d \w \s \D \W \S \n \t \xHH \uHHHH and
// escaped punctuation), classes, ".", groups, "|", quantifiers * + ? {m}
// {m,} {m,n} (lazy ones too), and ^ $ at the ends. Throws SchemaError
// "<where>: pattern ...: <why>" for anything else (lookaround,
// backreferences, word boundaries, anchors inside).
std::string pattern_grammar(const std::string& pattern, const std::string& where);

}  // namespace folio::app::schema
