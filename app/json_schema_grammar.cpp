#include <algorithm>
#include <limits>
#include <map>
#include <set>

#include "app/json_schema_node.h"
#include "engine/grammar.h"

namespace folio::app::schema {
namespace {

constexpr std::uint64_t kMaxRepetition = engine::Grammar::kMaxRepetition;

// Rules every grammar may share. Strings escape only what JSON requires
// (", \, controls) and write control characters as short or \u00XX escapes:
// a \uD800 the grammar allowed would not parse.
const std::map<std::string, std::string> kSharedRules = {
    {"json-char", R"([^\x22\x5C\x00-\x1F] | "\\" ([\x22\x5C\x2F] | [bfnrt] | "u00" [01] [0-9a-fA-F]))"},
    {"json-string", R"("\"" json-char* "\"")"},
    {"json-integer", R"("-"? ("0" | [1-9] [0-9]{0,15}))"},
    {"json-number", R"(json-integer ("." [0-9]{1,16})?)"},
    {"json-value", R"(json-object | json-array | json-string | json-number | "true" | "false" | "null")"},
    {"json-object", R"("{" (json-string ":" json-value ("," json-string ":" json-value)*)? "}")"},
    {"json-array", R"("[" (json-value ("," json-value)*)? "]")"},
    // Months 01-12 and days 01-31; validate() checks the calendar.
    {"json-date", R"([0-9]{4} "-" ("0" [1-9] | "1" [0-2]) "-" ("0" [1-9] | [12] [0-9] | "3" [01]))"},
    {"json-time",
     R"(([01] [0-9] | "2" [0-3]) ":" [0-5] [0-9] ":" [0-5] [0-9] ("." [0-9]{1,9})? ("Z" | [+\x2D] ([01] [0-9] | "2" [0-3]) ":" [0-5] [0-9]))"},
};

// Which shared rules a shared rule uses.
const std::map<std::string, std::vector<std::string>> kSharedDependencies = {
    {"json-string", {"json-char"}},
    {"json-number", {"json-integer"}},
    {"json-value", {"json-object", "json-array", "json-string", "json-number"}},
    {"json-object", {"json-string", "json-value"}},
    {"json-array", {"json-value"}},
};

std::string alternatives_of(const std::vector<std::string>& options) {
    std::string out;
    for (std::size_t i = 0; i < options.size(); ++i) out += (i ? " | " : "") + options[i];
    return out;
}

std::string group(const std::vector<std::string>& options) {
    return options.size() == 1 ? options.front() : "(" + alternatives_of(options) + ")";
}

constexpr std::uint64_t kUnbounded = std::numeric_limits<std::uint64_t>::max();

// A maximum the grammar can hold; longer ones are left to validate().
std::uint64_t grammar_maximum(const std::optional<std::uint64_t>& max) {
    return max && *max <= kMaxRepetition ? *max : kUnbounded;
}

// `expr` repeated min..max times; "" when never.
std::string repeated(const std::string& expr, std::uint64_t min, std::uint64_t max) {
    if (max == 0) return "";
    if (min == max) return min == 1 ? expr : expr + "{" + std::to_string(min) + "}";
    if (max == kUnbounded) return min == 0 ? expr + "*" : min == 1 ? expr + "+" : expr + "{" + std::to_string(min) + ",}";
    if (min == 0 && max == 1) return expr + "?";
    return expr + "{" + std::to_string(min) + "," + std::to_string(max) + "}";
}

// The decimal integers from `low` to `high`, written with as many digits as they have.
std::vector<std::string> same_length_range(const std::string& low, const std::string& high) {
    if (low.empty()) return {""};
    if (low == high) return {gbnf_literal(low)};
    const auto digit_class = [](char from, char to) {
        return from == to                 ? gbnf_literal(std::string(1, from))
               : from == '0' && to == '9' ? std::string("[0-9]")
                                          : "[" + std::string(1, from) + "-" + std::string(1, to) + "]";
    };
    const std::string rest_low = low.substr(1), rest_high = high.substr(1);
    const std::size_t rest = rest_low.size();
    const std::string any_rest = rest == 0 ? "" : rest == 1 ? " [0-9]" : " [0-9]{" + std::to_string(rest) + "}";
    if (low[0] == high[0]) return {gbnf_literal(low.substr(0, 1)) + " " + group(same_length_range(rest_low, rest_high))};
    std::vector<std::string> out;
    char first_full = low[0], last_full = high[0];  // leading digits whose every tail is in range
    if (rest_low != std::string(rest, '0')) {
        out.push_back(gbnf_literal(low.substr(0, 1)) + " " + group(same_length_range(rest_low, std::string(rest, '9'))));
        ++first_full;
    }
    const bool high_partial = rest_high != std::string(rest, '9');
    if (high_partial) --last_full;
    if (first_full <= last_full) out.push_back(digit_class(first_full, last_full) + any_rest);
    if (high_partial)
        out.push_back(gbnf_literal(high.substr(0, 1)) + " " + group(same_length_range(std::string(rest, '0'), rest_high)));
    return out;
}

// The decimal integers from `low` to `high` (0 <= low <= high), as JSON writes them.
std::vector<std::string> natural_range(long long low, long long high) {
    std::vector<std::string> out;
    long long start = low;
    while (start <= high) {
        const std::size_t digits = std::to_string(start).size();
        long long last_of_length = 9;
        for (std::size_t i = 1; i < digits; ++i) last_of_length = last_of_length * 10 + 9;
        const long long end = std::min(high, last_of_length);
        for (std::string& option : same_length_range(std::to_string(start), std::to_string(end)))
            out.push_back(std::move(option));
        start = end + 1;
    }
    return out;
}

class GrammarWriter {
public:
    explicit GrammarWriter(const SourceText* source) : source_(source) {}

    std::string write(const Node& root) {
        rule(root, "root");
        std::string out;
        for (const auto& [name, body] : rules_) out += name + " ::= " + body + "\n";
        for (const std::string& name : shared_) out += name + " ::= " + kSharedRules.at(name) + "\n";
        if (source_word_used_) {
            std::vector<std::string> words;
            for (const std::string& word : source_->words) words.push_back(gbnf_literal(json_escaped(word)));
            out += "source-word ::= " + alternatives_of(words) + "\n";
        }
        return out;
    }

private:
    // The rule's name for the node, writing the rule the first time.
    std::string rule(const Node& node, const std::string& hint) {
        if (const auto it = names_.find(&node); it != names_.end()) return it->second;
        std::string name = hint;
        for (int n = 2; taken_.count(name); ++n) name = hint + "-v" + std::to_string(n);
        taken_.insert(name);
        names_.emplace(&node, name);
        const std::size_t slot = rules_.size();
        rules_.emplace_back(name, "");  // parents come before their children in the text
        std::string text = body(node, name);
        rules_[slot].second = std::move(text);
        return name;
    }

    std::string shared(const std::string& name) {
        if (shared_.insert(name).second && kSharedDependencies.count(name))
            for (const std::string& dependency : kSharedDependencies.at(name)) shared(dependency);
        return name;
    }

    std::string body(const Node& node, const std::string& name) {
        if (node.allowed) {
            std::vector<std::string> literals;
            for (const nlohmann::json& value : *node.allowed) literals.push_back(gbnf_literal(value.dump()));
            return alternatives_of(literals);
        }
        if (!node.alternatives.empty()) {
            std::vector<std::string> options;
            for (std::size_t i = 0; i < node.alternatives.size(); ++i)
                options.push_back(rule(*node.alternatives[i], name + "-alt" + std::to_string(i + 1)));
            return alternatives_of(options);
        }
        if (node.types == kAnyType && node.properties.empty() && !node.items) return shared("json-value");
        std::vector<std::string> options;
        if (node.types & kNull) options.push_back("\"null\"");
        if (node.types & kBoolean) options.push_back("\"true\" | \"false\"");
        if (node.types & kNumber)
            options.push_back(number(node));
        else if (node.types & kInteger)
            options.push_back(integer(node));
        if (node.types & kString) options.push_back(string(node));
        if (node.types & kArray) options.push_back(array(node, name));
        if (node.types & kObject) options.push_back(object(node, name));
        return alternatives_of(options);
    }

    // Exact when both bounds are known; else the sign at least.
    std::string integer(const Node& node) {
        const IntegerBounds bounds = integer_bounds(node);
        if (source_) {
            std::vector<std::string> written;
            for (const long long value : source_->integers)
                if ((!bounds.low || value >= *bounds.low) && (!bounds.high || value <= *bounds.high))
                    written.push_back(gbnf_literal(std::to_string(value)));
            if (!written.empty() || (node.types & kNull)) return written.empty() ? R"("null")" : group(written);
        }
        if (bounds.low && bounds.high) {
            std::vector<std::string> options;
            if (*bounds.low < 0)
                for (const std::string& option : natural_range(std::max(1LL, -*bounds.high), -*bounds.low))
                    options.push_back("\"-\" " + option);
            if (*bounds.high >= 0)
                for (std::string& option : natural_range(std::max(0LL, *bounds.low), *bounds.high))
                    options.push_back(std::move(option));
            return group(options);
        }
        if (bounds.low && *bounds.low >= 0) return R"(("0" | [1-9] [0-9]{0,15}))";
        return shared("json-integer");
    }

    std::string number(const Node& node) {
        const bool non_negative =
            (node.minimum && *node.minimum >= 0) || (node.exclusive_minimum && *node.exclusive_minimum >= 0);
        if (non_negative) return R"(("0" | [1-9] [0-9]{0,15}) ("." [0-9]{1,16})?)";
        return shared("json-number");
    }

    std::string string(const Node& node) {
        const std::string quote = gbnf_literal("\"");
        if (node.format == "date") return quote + " " + shared("json-date") + " " + quote;
        if (node.format == "date-time") return quote + " " + shared("json-date") + " \"T\" " + shared("json-time") + " " + quote;
        if (node.pattern) return quote + " " + node.pattern_grammar + " " + quote;
        const std::uint64_t max_length = grammar_maximum(node.max_length);
        if (source_ && !source_->words.empty() && !node.min_length) {
            // Free text from the source: its words, each as written, joined by
            // spaces; about one word per six characters of maxLength.
            source_word_used_ = true;
            const std::uint64_t max_words =
                max_length == kUnbounded ? kMaxSourceWords : std::clamp<std::uint64_t>(max_length / 6, 1, kMaxSourceWords);
            return quote + " source-word " + repeated("(\" \" source-word)", 0, max_words - 1) + " " + quote;
        }
        if (!node.min_length && max_length == kUnbounded) return shared("json-string");
        const std::string characters = repeated(shared("json-char"), node.min_length.value_or(0), max_length);
        return quote + (characters.empty() ? "" : " " + characters) + " " + quote;
    }

    std::string array(const Node& node, const std::string& name) {
        const std::string item = node.items ? rule(*node.items, name + "-item") : shared("json-value");
        if (node.max_items && *node.max_items == 0) return R"("[]")";
        // After the first item, the others each follow a comma.
        const std::uint64_t min_more = node.min_items ? node.min_items - 1 : 0;
        const std::uint64_t max_items = grammar_maximum(node.max_items);
        const std::uint64_t max_more = max_items == kUnbounded ? kUnbounded : max_items - 1;
        const std::string more = repeated("(\",\" " + item + ")", min_more, max_more);
        const std::string items = item + (more.empty() ? "" : " " + more);
        return "\"[\" " + (node.min_items ? items : "(" + items + ")?") + " \"]\"";
    }

    std::string object(const Node& node, const std::string& name) {
        if (node.properties.empty()) return node.additional_properties ? shared("json-object") : R"("{}")";
        std::vector<std::string> members;
        for (const Property& property : node.properties)
            members.push_back(gbnf_literal(nlohmann::json(property.name).dump() + ":") + " " +
                              rule(*property.schema, name + "-" + rule_word(property.name)));
        // Each alternative starts with a different property: the first one
        // written. It can be any up to the first required one; the rest
        // follow with commas, optional ones each possibly left out.
        std::vector<std::string> starts;
        for (std::size_t first = 0; first < node.properties.size(); ++first) {
            std::string sequence = members[first];
            for (std::size_t k = first + 1; k < node.properties.size(); ++k)
                sequence += node.properties[k].required ? " \",\" " + members[k] : " (\",\" " + members[k] + ")?";
            starts.push_back(sequence);
            if (node.properties[first].required) break;
        }
        const bool all_optional =
            std::none_of(node.properties.begin(), node.properties.end(), [](const Property& p) { return p.required; });
        const std::string inside = starts.size() == 1 && !all_optional
                                       ? starts.front()
                                       : "(" + alternatives_of(starts) + ")" + (all_optional ? "?" : "");
        return "\"{\" " + inside + " \"}\"";
    }

    // A property name as a dashed lowercase word for a rule name.
    static std::string rule_word(const std::string& name) {
        std::string out;
        for (char c : name) {
            const bool keep = (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
            const char lower = c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : keep ? c : '-';
            if (lower == '-' && (out.empty() || out.back() == '-')) continue;
            out += lower;
        }
        while (!out.empty() && out.back() == '-') out.pop_back();
        return out.empty() ? "property" : out;
    }

    static std::string json_escaped(const std::string& word) {
        const std::string quoted = nlohmann::json(word).dump();
        return quoted.substr(1, quoted.size() - 2);
    }

    static constexpr std::uint64_t kMaxSourceWords = 24;
    const SourceText* source_;
    bool source_word_used_ = false;
    std::vector<std::pair<std::string, std::string>> rules_;
    std::map<const Node*, std::string> names_;
    std::set<std::string> taken_;
    std::set<std::string> shared_;
};

}  // namespace

std::string write_grammar(const Node& root, const SourceText* source) { return GrammarWriter(source).write(root); }

}  // namespace folio::app::schema
