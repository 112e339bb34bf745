#include "app/json_schema_regex.h"

#include <algorithm>
#include <cctype>
#include <cstdio>
#include <utility>
#include <vector>

#include "app/json_schema.h"
#include "engine/grammar.h"

namespace folio::app::schema {
namespace {

constexpr unsigned long kMaxRepetition = engine::Grammar::kMaxRepetition;

std::string utf8(char32_t cp) {
    std::string out;
    if (cp < 0x80) {
        out += static_cast<char>(cp);
    } else if (cp < 0x800) {
        out += static_cast<char>(0xC0 | (cp >> 6));
        out += static_cast<char>(0x80 | (cp & 0x3F));
    } else if (cp < 0x10000) {
        out += static_cast<char>(0xE0 | (cp >> 12));
        out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
        out += static_cast<char>(0x80 | (cp & 0x3F));
    } else {
        out += static_cast<char>(0xF0 | (cp >> 18));
        out += static_cast<char>(0x80 | ((cp >> 12) & 0x3F));
        out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
        out += static_cast<char>(0x80 | (cp & 0x3F));
    }
    return out;
}

std::string hex(unsigned value, int digits) {
    char buffer[16];
    std::snprintf(buffer, sizeof buffer, "%0*X", digits, value);
    return buffer;
}

// How a JSON encoder (nlohmann::json::dump) writes the code point inside a
// string.
std::string json_encoded(char32_t cp) {
    switch (cp) {
        case '"': return "\\\"";
        case '\\': return "\\\\";
        case '\b': return "\\b";
        case '\f': return "\\f";
        case '\n': return "\\n";
        case '\r': return "\\r";
        case '\t': return "\\t";
        default: break;
    }
    if (cp < 0x20) {
        std::string lower = hex(cp, 4);
        std::transform(lower.begin(), lower.end(), lower.begin(), [](char c) { return static_cast<char>(std::tolower(c)); });
        return "\\u" + lower;
    }
    return utf8(cp);
}

// One code point inside a GBNF character class. Punctuation goes as \xHH
// so no class metacharacter (] ^ - \) is ever written bare.
std::string class_char(char32_t cp) {
    if ((cp >= '0' && cp <= '9') || (cp >= 'A' && cp <= 'Z') || (cp >= 'a' && cp <= 'z'))
        return std::string(1, static_cast<char>(cp));
    if (cp < 0x80) return "\\x" + hex(cp, 2);
    if (cp < 0x10000) return "\\u" + hex(cp, 4);
    return utf8(cp);
}

using Range = std::pair<char32_t, char32_t>;  // inclusive

// A set of code points: the ranges, or everything but them.
struct CharSet {
    bool negated = false;
    std::vector<Range> ranges;

    bool contains(char32_t cp) const {
        const bool listed =
            std::any_of(ranges.begin(), ranges.end(), [cp](const Range& r) { return cp >= r.first && cp <= r.second; });
        return listed != negated;
    }
};

const std::vector<Range> kDigit = {{'0', '9'}};
const std::vector<Range> kWord = {{'0', '9'}, {'A', 'Z'}, {'_', '_'}, {'a', 'z'}};
// ECMAScript WhiteSpace and LineTerminator.
const std::vector<Range> kSpace = {{'\t', '\r'},     {' ', ' '},       {0xA0, 0xA0},     {0x1680, 0x1680}, {0x2000, 0x200A},
                                   {0x2028, 0x2029}, {0x202F, 0x202F}, {0x205F, 0x205F}, {0x3000, 0x3000}, {0xFEFF, 0xFEFF}};
const std::vector<Range> kLineTerminator = {{'\n', '\n'}, {'\r', '\r'}, {0x2028, 0x2029}};

// [first, last] less the code points JSON escapes: controls, " and \\.
std::vector<Range> without_escaped(char32_t first, char32_t last) {
    std::vector<Range> out;
    char32_t lo = std::max<char32_t>(first, 0x20);
    for (char32_t escaped : {char32_t('"'), char32_t('\\')}) {
        if (lo > last) break;
        if (escaped < lo || escaped > last) continue;
        if (escaped > lo) out.emplace_back(lo, escaped - 1);
        lo = escaped + 1;
    }
    if (lo <= last) out.emplace_back(lo, last);
    return out;
}

// The JSON-encoded forms of the set's members. Code points that JSON must
// escape (", \, controls) become their escapes; of the controls, a negated
// set offers only the short escapes \b \f \n \r \t.
std::string set_grammar(const CharSet& set) {
    std::vector<std::string> alternatives;
    std::string chars;
    for (const auto& [first, last] : set.ranges) {
        // A negated set excludes the escaped code points below anyway.
        for (const Range& range : set.negated ? std::vector<Range>{{first, last}} : without_escaped(first, last)) {
            chars += class_char(range.first);
            if (range.second != range.first) chars += "-" + class_char(range.second);
        }
    }
    if (set.negated)
        alternatives.push_back("[^" + chars + "\\x00-\\x1F\\x22\\x5C]");
    else if (!chars.empty())
        alternatives.push_back("[" + chars + "]");
    for (char32_t cp : {char32_t('"'), char32_t('\\')})
        if (set.contains(cp)) alternatives.push_back(gbnf_literal(json_encoded(cp)));
    for (char32_t cp = 0; cp < 0x20; ++cp) {
        const bool short_escape = cp == '\b' || cp == '\f' || cp == '\n' || cp == '\r' || cp == '\t';
        if (set.contains(cp) && (!set.negated || short_escape)) alternatives.push_back(gbnf_literal(json_encoded(cp)));
    }
    if (alternatives.empty()) return {};
    if (alternatives.size() == 1) return alternatives.front();
    std::string out = "(";
    for (std::size_t i = 0; i < alternatives.size(); ++i) out += (i ? " | " : "") + alternatives[i];
    return out + ")";
}

class PatternTranslator {
public:
    PatternTranslator(const std::string& pattern, const std::string& where)
        : pattern_(code_points(pattern)), prefix_(where + ": pattern " + nlohmann::json(pattern).dump() + ": ") {}

    std::string translate() {
        const Piece whole = alternation(0);
        if (at_end()) return whole.grammar.empty() ? "\"\"" : whole.alternatives ? "(" + whole.grammar + ")" : whole.grammar;
        fail("unbalanced parenthesis");
    }

private:
    struct Piece {
        std::string grammar;
        std::u32string literal;     // set when the piece is one plain code point
        bool nullable = false;      // matches the empty string
        bool alternatives = false;  // grammar is "A | B", to be grouped where it goes
    };

    [[noreturn]] void fail(const std::string& why) const { throw SchemaError(prefix_ + why); }

    bool at_end() const { return pos_ >= pattern_.size(); }
    char32_t peek(std::size_t ahead = 0) const { return pos_ + ahead < pattern_.size() ? pattern_[pos_ + ahead] : 0; }
    char32_t next() {
        if (at_end()) fail("ends too early");
        return pattern_[pos_++];
    }

    Piece alternation(int depth) {
        std::vector<Piece> branches{sequence(depth)};
        while (!at_end() && peek() == '|') {
            ++pos_;
            branches.push_back(sequence(depth));
        }
        if (branches.size() == 1) return branches.front();
        Piece out;
        out.alternatives = true;
        for (std::size_t i = 0; i < branches.size(); ++i) {
            out.grammar += (i ? " | " : "") + (branches[i].grammar.empty() ? "\"\"" : branches[i].grammar);
            out.nullable = out.nullable || branches[i].nullable;
        }
        return out;
    }

    Piece sequence(int depth) {
        std::string out;
        bool nullable = true;
        std::u32string literal;  // plain code points waiting to be written as one literal
        auto flush = [&] {
            if (literal.empty()) return;
            out += (out.empty() ? "" : " ") + piece_literal({{}, literal});
            literal.clear();
        };
        const std::size_t start = pos_;
        while (!at_end() && peek() != '|' && peek() != ')') {
            if (peek() == '^') {
                if (depth != 0 || pos_ != start) fail("^ is supported only at the start");
                ++pos_;
                continue;
            }
            if (peek() == '$') {
                ++pos_;
                if (depth != 0 || !(at_end() || peek() == '|')) fail("$ is supported only at the end");
                continue;
            }
            Piece piece = atom(depth);
            const std::string quantifier = quantifier_suffix();
            if (quantifier.empty() && !piece.literal.empty()) {
                literal += piece.literal;
                nullable = false;
                continue;
            }
            // The engine refuses an unbounded repetition of what can be
            // empty, which would loop forever.
            const bool unbounded = quantifier == "*" || quantifier == "+" || quantifier.ends_with(",}");
            if (unbounded && piece.nullable)
                fail("repeating something that can be empty with " + quantifier + " is not supported");
            nullable = nullable && (piece.nullable || quantifier == "*" || quantifier == "?" || quantifier.starts_with("{0"));
            flush();
            out += (out.empty() ? "" : " ") + (piece.grammar.empty() ? piece_literal(piece) : piece.grammar) + quantifier;
        }
        flush();
        return {out, {}, nullable};
    }

    static std::string piece_literal(const Piece& piece) {
        std::string text;
        for (char32_t cp : piece.literal) text += json_encoded(cp);
        return gbnf_literal(text);
    }

    // "", "*", "+", "?", "{m}", "{m,}" or "{m,n}"; a lazy "?" after it changes nothing here.
    std::string quantifier_suffix() {
        std::string out;
        if (at_end()) return out;
        const char32_t c = peek();
        if (c == '*' || c == '+' || c == '?') {
            ++pos_;
            out = std::string(1, static_cast<char>(c));
        } else if (c == '{' && peek(1) >= '0' && peek(1) <= '9') {
            ++pos_;
            const unsigned long min = number();
            out = "{" + std::to_string(min);
            if (peek() == ',') {
                ++pos_;
                out += ",";
                if (peek() != '}') {
                    const unsigned long max = number();
                    if (max < min) fail("{" + std::to_string(min) + "," + std::to_string(max) + "} has its bounds out of order");
                    out += std::to_string(max);
                }
            }
            if (next() != '}') fail("malformed {m,n} quantifier");
            out += "}";
        } else {
            return out;
        }
        if (peek() == '?') ++pos_;
        return out;
    }

    unsigned long number() {
        unsigned long value = 0;
        if (!(peek() >= '0' && peek() <= '9')) fail("malformed {m,n} quantifier");
        while (peek() >= '0' && peek() <= '9') {
            value = value * 10 + (next() - '0');
            if (value > kMaxRepetition) fail("repetition count above " + std::to_string(kMaxRepetition));
        }
        return value;
    }

    Piece atom(int depth) {
        const char32_t c = next();
        switch (c) {
            case '(': {
                if (peek() == '?') {
                    if (peek(1) != ':') fail("lookaround and named groups are not supported");
                    pos_ += 2;
                }
                Piece inner = alternation(depth + 1);
                if (next() != ')') fail("unbalanced parenthesis");
                return {"(" + (inner.grammar.empty() ? "\"\"" : inner.grammar) + ")", {}, inner.nullable};
            }
            case '[': return set_piece(character_class());
            case '.': return set_piece(CharSet{true, kLineTerminator});
            case '*':
            case '+':
            case '?': fail("nothing to repeat");
            case '\\': return escape();
            default: return {{}, std::u32string(1, c)};
        }
    }

    Piece set_piece(const CharSet& set) {
        std::string grammar = set_grammar(set);
        if (grammar.empty()) fail("a character class that matches nothing");
        return {grammar, {}};
    }

    Piece escape() {
        const char32_t c = next();
        switch (c) {
            case 'd': return set_piece(CharSet{false, kDigit});
            case 'D': return set_piece(CharSet{true, kDigit});
            case 'w': return set_piece(CharSet{false, kWord});
            case 'W': return set_piece(CharSet{true, kWord});
            case 's': return set_piece(CharSet{false, kSpace});
            case 'S': return set_piece(CharSet{true, kSpace});
            case 'b':
            case 'B': fail("word boundaries are not supported");
            default: return {{}, std::u32string(1, escaped_code_point(c))};
        }
    }

    // The code point an escape \c stands for, after the class escapes.
    char32_t escaped_code_point(char32_t c) {
        switch (c) {
            case 'n': return '\n';
            case 'r': return '\r';
            case 't': return '\t';
            case 'f': return '\f';
            case 'v': return '\v';
            case '0': return 0;
            case 'x': return hex_code_point(2);
            case 'u': return hex_code_point(4);
            default: break;
        }
        if (c >= '1' && c <= '9') fail("backreferences are not supported");
        if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')) fail("escape \\" + utf8(c) + " is not supported");
        return c;  // escaped punctuation stands for itself
    }

    char32_t hex_code_point(int digits) {
        char32_t value = 0;
        for (int i = 0; i < digits; ++i) {
            const char32_t h = next();
            int digit = h >= '0' && h <= '9'   ? int(h - '0')
                        : h >= 'a' && h <= 'f' ? int(h - 'a' + 10)
                        : h >= 'A' && h <= 'F' ? int(h - 'A' + 10)
                                               : -1;
            if (digit < 0) fail("malformed hexadecimal escape");
            value = value * 16 + static_cast<char32_t>(digit);
        }
        return value;
    }

    CharSet character_class() {
        CharSet set;
        if (peek() == '^') {
            set.negated = true;
            ++pos_;
        }
        while (peek() != ']') {
            char32_t first = 0;
            if (!class_member(set, first)) continue;
            if (peek() == '-' && peek(1) != ']') {
                ++pos_;
                char32_t last = 0;
                if (!class_member(set, last)) fail("a class escape cannot end a range");
                if (last < first) fail("range out of order in a character class");
                set.ranges.emplace_back(first, last);
            } else {
                set.ranges.emplace_back(first, first);
            }
        }
        ++pos_;
        return set;
    }

    // Reads one class member: a code point (returns true, in `cp`) or a
    // class escape \d \w \s, whose ranges it adds (returns false).
    bool class_member(CharSet& set, char32_t& cp) {
        const char32_t c = next();
        if (c != '\\') {
            cp = c;
            return true;
        }
        const char32_t e = next();
        const std::vector<Range>* ranges = e == 'd' ? &kDigit : e == 'w' ? &kWord : e == 's' ? &kSpace : nullptr;
        if (ranges) {
            set.ranges.insert(set.ranges.end(), ranges->begin(), ranges->end());
            return false;
        }
        if (e == 'D' || e == 'W' || e == 'S') fail("\\D, \\W and \\S are not supported inside [...]");
        cp = e == 'b' ? char32_t('\b') : escaped_code_point(e);
        return true;
    }

    std::u32string pattern_;
    std::string prefix_;
    std::size_t pos_ = 0;
};

}  // namespace

std::u32string code_points(const std::string& text) {
    std::u32string out;
    for (std::size_t i = 0; i < text.size();) {
        const auto lead = static_cast<unsigned char>(text[i]);
        const int length = lead < 0x80 ? 1 : (lead >> 5) == 0x6 ? 2 : (lead >> 4) == 0xE ? 3 : (lead >> 3) == 0x1E ? 4 : 1;
        if (length == 1 || i + length > text.size()) {
            out += static_cast<char32_t>(lead);
            ++i;
            continue;
        }
        char32_t cp = lead & (0x3F >> (length - 1));
        for (int k = 1; k < length; ++k) cp = (cp << 6) | (static_cast<unsigned char>(text[i + k]) & 0x3F);
        out += cp;
        i += length;
    }
    return out;
}

std::string gbnf_literal(const std::string& text) {
    std::string out = "\"";
    for (char ch : text) {
        const auto byte = static_cast<unsigned char>(ch);
        switch (ch) {
            case '"': out += "\\\""; break;
            case '\\': out += "\\\\"; break;
            case '\n': out += "\\n"; break;
            case '\r': out += "\\r"; break;
            case '\t': out += "\\t"; break;
            default: out += byte < 0x20 || byte == 0x7F ? "\\x" + hex(byte, 2) : std::string(1, ch);
        }
    }
    return out + "\"";
}

std::string pattern_grammar(const std::string& pattern, const std::string& where) {
    return PatternTranslator(pattern, where).translate();
}

}  // namespace folio::app::schema
