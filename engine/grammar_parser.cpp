// GBNF text → Grammar, following llama.cpp's grammar-parser: a rule ends at
// the end of its line unless a '|' or an open parenthesis carries it on.

#include <algorithm>
#include <map>
#include <unordered_map>

#include "engine/grammar.h"

namespace folio::engine {

CharSet::CharSet(std::vector<std::pair<char32_t, char32_t>> ranges) {
    std::sort(ranges.begin(), ranges.end());
    for (const auto& [low, high] : ranges) {
        if (!ranges_.empty() && low <= ranges_.back().second + 1)
            ranges_.back().second = std::max(ranges_.back().second, high);
        else
            ranges_.emplace_back(low, high);
    }
    for (const auto& [low, high] : ranges_)
        for (char32_t c = low; c <= high && c < 128; ++c) ascii_[c >> 6] |= std::uint64_t{1} << (c & 63);
}

bool CharSet::contains(char32_t code_point) const {
    if (code_point < 128) return (ascii_[code_point >> 6] >> (code_point & 63)) & 1;
    return intersects(code_point, code_point);
}

bool CharSet::intersects(char32_t low, char32_t high) const {
    // The first range that ends at or after low.
    const auto it = std::lower_bound(ranges_.begin(), ranges_.end(), low,
                                     [](const std::pair<char32_t, char32_t>& range, char32_t c) { return range.second < c; });
    return it != ranges_.end() && it->first <= high;
}

namespace {

constexpr char32_t kMaxCodePoint = 0x10FFFF;

bool is_name_char(char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-';
}

int hex_value(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

}  // namespace

class GrammarParser {
public:
    explicit GrammarParser(std::string_view text) : text_(text) {}

    Grammar run(std::string_view start) {
        skip_space(true);
        while (pos_ < text_.size()) parse_rule();
        for (const RuleDraft& rule : rules_)
            if (!rule.defined) fail_at(rule.where, "undefined rule '" + rule.name + "'");
        const auto start_rule = rule_ids_.find(std::string(start));
        if (start_rule == rule_ids_.end()) fail_at(0, "no rule '" + std::string(start) + "' to start from");
        compute_nullable();
        for (const Repetition& repetition : unbounded_repetitions_)
            if (sequence_nullable(repetition.item))
                fail_at(repetition.where, "a repetition of something that can be empty would loop forever");
        check_left_recursion();
        return flatten(start_rule->second);
    }

private:
    struct Symbol {
        bool is_rule;
        std::uint32_t value;  // rule id or char set id
    };
    using Sequence = std::vector<Symbol>;
    struct RuleDraft {
        std::string name;
        std::vector<Sequence> alternatives;
        bool defined = false;
        std::size_t where = 0;  // its definition, else its first use
    };
    struct Repetition {
        Sequence item;
        std::size_t where;
    };

    [[noreturn]] void fail_at(std::size_t offset, const std::string& problem) const {
        std::size_t line = 1, line_start = 0;
        for (std::size_t i = 0; i < offset && i < text_.size(); ++i)
            if (text_[i] == '\n') ++line, line_start = i + 1;
        throw GrammarError("grammar line " + std::to_string(line) + " col " + std::to_string(offset - line_start + 1) +
                           ": " + problem);
    }
    [[noreturn]] void fail(const std::string& problem) const { fail_at(pos_, problem); }

    bool at_end() const { return pos_ >= text_.size(); }
    char peek() const { return at_end() ? '\0' : text_[pos_]; }

    // Spaces, tabs and comments; newlines too where a rule goes on.
    void skip_space(bool newline_ok) {
        while (!at_end()) {
            const char c = text_[pos_];
            if (c == ' ' || c == '\t' || (newline_ok && (c == '\n' || c == '\r'))) {
                ++pos_;
            } else if (c == '#') {
                while (!at_end() && text_[pos_] != '\n') ++pos_;
            } else {
                return;
            }
        }
    }

    std::string parse_name() {
        const std::size_t begin = pos_;
        while (!at_end() && is_name_char(text_[pos_])) ++pos_;
        if (pos_ == begin) fail("expected a rule name");
        return std::string(text_.substr(begin, pos_ - begin));
    }

    std::uint32_t rule_id(const std::string& name, std::size_t where) {
        const auto [it, added] = rule_ids_.emplace(name, static_cast<std::uint32_t>(rules_.size()));
        if (added) rules_.push_back({name, {}, false, where});
        return it->second;
    }

    // Named as llama.cpp names them, "root_3": '_' cannot be in a written
    // rule's name, so the two never clash.
    std::uint32_t generated_rule(std::uint32_t parent, std::size_t where) {
        const std::string name = rules_[parent].name + "_" + std::to_string(++generated_count_);
        const std::uint32_t id = rule_id(name, where);
        rules_[id].defined = true;
        return id;
    }

    std::uint32_t char_set_id(std::vector<std::pair<char32_t, char32_t>> ranges) {
        CharSet set(std::move(ranges));
        std::vector<std::pair<char32_t, char32_t>> key(set.ranges().begin(), set.ranges().end());
        const auto [it, added] = char_set_ids_.emplace(std::move(key), static_cast<std::uint32_t>(char_sets_.size()));
        if (added) char_sets_.push_back(std::move(set));
        return it->second;
    }

    void parse_rule() {
        const std::size_t where = pos_;
        const std::string name = parse_name();
        skip_space(false);
        if (text_.substr(pos_, 3) != "::=") fail("expected '::=' after rule name '" + name + "'");
        pos_ += 3;
        skip_space(true);
        const std::uint32_t id = rule_id(name, where);
        if (rules_[id].defined) fail_at(where, "rule '" + name + "' is defined twice");
        rules_[id].defined = true;
        rules_[id].where = where;
        std::vector<Sequence> alternatives = parse_alternatives(id, false);
        rules_[id].alternatives = std::move(alternatives);
        if (!at_end() && text_[pos_] == '\r') ++pos_;
        if (!at_end() && text_[pos_] != '\n') fail(std::string("unexpected '") + text_[pos_] + "'");
        skip_space(true);
    }

    std::vector<Sequence> parse_alternatives(std::uint32_t rule, bool nested) {
        std::vector<Sequence> alternatives;
        alternatives.push_back(parse_sequence(rule, nested));
        while (peek() == '|') {
            ++pos_;
            skip_space(true);
            alternatives.push_back(parse_sequence(rule, nested));
        }
        return alternatives;
    }

    Sequence parse_sequence(std::uint32_t rule, bool nested) {
        Sequence sequence;
        std::size_t last_item = 0;  // where the item a repetition applies to starts in sequence
        while (!at_end()) {
            const char c = text_[pos_];
            const std::size_t where = pos_;
            if (c == '"') {
                ++pos_;
                last_item = sequence.size();
                while (peek() != '"') {
                    if (at_end() || peek() == '\n') fail_at(where, "unterminated literal");
                    const char32_t ch = parse_char();
                    add(sequence, {false, char_set_id({{ch, ch}})});
                }
                ++pos_;
            } else if (c == '[') {
                ++pos_;
                last_item = sequence.size();
                add(sequence, {false, parse_class(where)});
            } else if (c == '.') {
                ++pos_;
                last_item = sequence.size();
                add(sequence, {false, char_set_id({{0, kMaxCodePoint}})});
            } else if (is_name_char(c)) {
                const std::string name = parse_name();
                last_item = sequence.size();
                add(sequence, {true, rule_id(name, where)});
            } else if (c == '(') {
                ++pos_;
                skip_space(true);
                const std::uint32_t group = generated_rule(rule, where);
                std::vector<Sequence> alternatives = parse_alternatives(rule, true);
                rules_[group].alternatives = std::move(alternatives);
                if (peek() != ')') fail_at(where, "unclosed '('");
                ++pos_;
                last_item = sequence.size();
                add(sequence, {true, group});
            } else if (c == '*' || c == '+' || c == '?') {
                ++pos_;
                repeat(sequence, last_item, rule, c == '+' ? 1 : 0, c == '?' ? 1 : -1, where);
            } else if (c == '{') {
                ++pos_;
                skip_space(nested);
                const int min = parse_count();
                int max = min;
                skip_space(nested);
                if (peek() == ',') {
                    ++pos_;
                    skip_space(nested);
                    max = peek() == '}' ? -1 : parse_count();
                    skip_space(nested);
                }
                if (peek() != '}') fail("expected '}' to close the repetition");
                ++pos_;
                if (max >= 0 && max < min) fail_at(where, "repetition {m,n} with n < m");
                repeat(sequence, last_item, rule, min, max, where);
            } else {
                break;
            }
            skip_space(nested);
        }
        return sequence;
    }

    int parse_count() {
        const std::size_t begin = pos_;
        long long value = 0;
        while (!at_end() && text_[pos_] >= '0' && text_[pos_] <= '9') {
            value = std::min<long long>(value * 10 + (text_[pos_] - '0'), Grammar::kMaxRepetition + 1LL);
            ++pos_;
        }
        if (pos_ == begin) fail("expected a repetition count");
        if (value > Grammar::kMaxRepetition)
            fail_at(begin, "repetition count over the limit of " + std::to_string(Grammar::kMaxRepetition));
        return static_cast<int>(value);
    }

    // llama.cpp's rewrite (max -1: unbounded):
    //   S{m,n} → S…S (m times) R(n-m),  R(k) ::= S R(k-1) | (empty),  R(1) ::= S | (empty)
    //   S{m,}  → S…S (m times) R,       R ::= S R | (empty)
    void repeat(Sequence& sequence, std::size_t last_item, std::uint32_t rule, int min, int max, std::size_t where) {
        if (last_item >= sequence.size()) fail_at(where, "a repetition needs an item before it");
        const Sequence item(sequence.begin() + static_cast<std::ptrdiff_t>(last_item), sequence.end());
        if (max < 0) unbounded_repetitions_.push_back({item, where});
        if (min == 0) sequence.resize(last_item);
        for (int i = 1; i < min; ++i)
            for (const Symbol& symbol : item) add(sequence, symbol);
        const int optional = max < 0 ? 1 : max - min;
        std::uint32_t previous = 0;
        for (int i = 0; i < optional; ++i) {
            const std::uint32_t id = generated_rule(rule, where);
            Sequence repeated = item;
            if (max < 0) repeated.push_back({true, id});
            else if (i > 0) repeated.push_back({true, previous});
            count_symbols(repeated.size());
            rules_[id].alternatives = {std::move(repeated), Sequence{}};
            previous = id;
        }
        if (optional > 0) add(sequence, {true, previous});
    }

    void add(Sequence& sequence, Symbol symbol) {
        count_symbols(1);
        sequence.push_back(symbol);
    }

    void count_symbols(std::size_t n) {
        symbol_count_ += n;
        if (symbol_count_ > Grammar::kMaxElements)
            fail("the grammar expands to over " + std::to_string(Grammar::kMaxElements) + " symbols");
    }

    // One character of a literal or class: an escape or a UTF-8 character.
    char32_t parse_char() {
        const std::size_t where = pos_;
        if (text_[pos_] == '\\') {
            ++pos_;
            if (at_end()) fail_at(where, "unterminated escape");
            const char kind = text_[pos_++];
            int digits = 0;
            switch (kind) {
            case 'n': return '\n';
            case 'r': return '\r';
            case 't': return '\t';
            case '\\': case '"': case '[': case ']': case '-': case '^': return static_cast<char32_t>(kind);
            case 'x': digits = 2; break;
            case 'u': digits = 4; break;
            case 'U': digits = 8; break;
            default: fail_at(where, std::string("unknown escape '\\") + kind + "'");
            }
            std::uint64_t value = 0;
            for (int i = 0; i < digits; ++i) {
                const int digit = at_end() ? -1 : hex_value(text_[pos_]);
                if (digit < 0) fail_at(where, "expected " + std::to_string(digits) + " hex digits after '\\" + kind + "'");
                value = value * 16 + static_cast<std::uint64_t>(digit);
                ++pos_;
            }
            if (value > kMaxCodePoint) fail_at(where, "code point past U+10FFFF");
            return static_cast<char32_t>(value);
        }
        const auto lead = static_cast<unsigned char>(text_[pos_]);
        const int length = lead < 0x80 ? 1 : (lead & 0xE0) == 0xC0 ? 2 : (lead & 0xF0) == 0xE0 ? 3 : (lead & 0xF8) == 0xF0 ? 4 : 0;
        if (length == 0 || pos_ + static_cast<std::size_t>(length) > text_.size()) fail("invalid UTF-8");
        char32_t value = length == 1 ? lead : lead & (0x7F >> length);
        for (int i = 1; i < length; ++i) {
            const auto byte = static_cast<unsigned char>(text_[pos_ + static_cast<std::size_t>(i)]);
            if ((byte & 0xC0) != 0x80) fail("invalid UTF-8");
            value = (value << 6) | (byte & 0x3F);
        }
        pos_ += static_cast<std::size_t>(length);
        return value;
    }

    std::uint32_t parse_class(std::size_t where) {
        const bool negated = peek() == '^';
        if (negated) ++pos_;
        std::vector<std::pair<char32_t, char32_t>> ranges;
        while (peek() != ']') {
            if (at_end() || peek() == '\n') fail_at(where, "unterminated character class");
            const char32_t low = parse_char();
            char32_t high = low;
            if (peek() == '-' && pos_ + 1 < text_.size() && text_[pos_ + 1] != ']') {
                ++pos_;
                high = parse_char();
                if (high < low) fail_at(where, "character range with its end before its start");
            }
            ranges.emplace_back(low, high);
        }
        ++pos_;
        if (ranges.empty()) fail_at(where, "empty character class");
        if (!negated) return char_set_id(std::move(ranges));
        const CharSet set(std::move(ranges));
        std::vector<std::pair<char32_t, char32_t>> complement;
        char32_t next = 0;
        for (const auto& [low, high] : set.ranges()) {
            if (low > next) complement.emplace_back(next, low - 1);
            next = high + 1;
        }
        if (next <= kMaxCodePoint) complement.emplace_back(next, kMaxCodePoint);
        if (complement.empty()) fail_at(where, "a negated class that matches nothing");
        return char_set_id(std::move(complement));
    }

    bool sequence_nullable(const Sequence& sequence) const {
        return std::all_of(sequence.begin(), sequence.end(),
                           [&](const Symbol& symbol) { return symbol.is_rule && nullable_[symbol.value]; });
    }

    void compute_nullable() {
        nullable_.assign(rules_.size(), false);
        for (bool changed = true; changed;) {
            changed = false;
            for (std::size_t r = 0; r < rules_.size(); ++r) {
                if (nullable_[r]) continue;
                for (const Sequence& alternative : rules_[r].alternatives)
                    if (sequence_nullable(alternative)) {
                        nullable_[r] = true;
                        changed = true;
                        break;
                    }
            }
        }
    }

    // A rule that can reach itself before matching a character would make
    // the matcher expand it forever.
    void check_left_recursion() const {
        std::vector<std::vector<std::uint32_t>> leftmost(rules_.size());
        for (std::size_t r = 0; r < rules_.size(); ++r)
            for (const Sequence& alternative : rules_[r].alternatives)
                for (const Symbol& symbol : alternative) {
                    if (!symbol.is_rule) break;
                    leftmost[r].push_back(symbol.value);
                    if (!nullable_[symbol.value]) break;
                }
        enum : std::uint8_t { Unvisited, OnPath, Done };
        std::vector<std::uint8_t> mark(rules_.size(), Unvisited);
        std::vector<std::uint32_t> path;
        // Depth-first, iteratively: a deep chain of rules must not overflow the thread's stack.
        std::vector<std::pair<std::uint32_t, std::size_t>> frames;  // rule, next edge
        for (std::uint32_t root = 0; root < rules_.size(); ++root) {
            if (mark[root] != Unvisited) continue;
            frames.push_back({root, 0});
            mark[root] = OnPath;
            path.push_back(root);
            while (!frames.empty()) {
                auto& [rule, edge] = frames.back();
                if (edge == leftmost[rule].size()) {
                    mark[rule] = Done;
                    path.pop_back();
                    frames.pop_back();
                    continue;
                }
                const std::uint32_t next = leftmost[rule][edge++];
                if (mark[next] == OnPath) {
                    std::string cycle;
                    for (auto it = std::find(path.begin(), path.end(), next); it != path.end(); ++it)
                        cycle += rules_[*it].name + " -> ";
                    fail_at(rules_[next].where,
                            "rule '" + rules_[next].name + "' is left-recursive (" + cycle + rules_[next].name +
                                "), which would loop forever");
                }
                if (mark[next] == Unvisited) {
                    mark[next] = OnPath;
                    path.push_back(next);
                    frames.push_back({next, 0});
                }
            }
        }
    }

    Grammar flatten(std::uint32_t start) {
        Grammar grammar;
        grammar.start_rule_ = start;
        grammar.char_sets_ = std::move(char_sets_);
        grammar.rule_alternatives_.resize(rules_.size());
        for (std::size_t r = 0; r < rules_.size(); ++r)
            for (const Sequence& alternative : rules_[r].alternatives) {
                grammar.rule_alternatives_[r].push_back(static_cast<std::uint32_t>(grammar.elements_.size()));
                for (const Symbol& symbol : alternative)
                    grammar.elements_.push_back({symbol.is_rule ? GrammarElement::Kind::Rule : GrammarElement::Kind::Chars,
                                                 symbol.value});
                grammar.elements_.push_back({GrammarElement::Kind::End, 0});
            }
        return grammar;
    }

    std::string_view text_;
    std::size_t pos_ = 0;
    std::vector<RuleDraft> rules_;
    std::unordered_map<std::string, std::uint32_t> rule_ids_;
    std::vector<CharSet> char_sets_;
    std::map<std::vector<std::pair<char32_t, char32_t>>, std::uint32_t> char_set_ids_;
    std::vector<Repetition> unbounded_repetitions_;
    std::vector<bool> nullable_;
    std::size_t generated_count_ = 0;
    std::size_t symbol_count_ = 0;
};

Grammar Grammar::parse(std::string_view text, std::string_view start) {
    return GrammarParser(text).run(start);
}

}  // namespace folio::engine
