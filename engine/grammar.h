#pragma once
#include <cstdint>
#include <memory>
#include <span>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "engine/vocab.h"

// Grammar-constrained decoding: a GBNF grammar (llama.cpp's grammars/README.md)
// compiled to rules over Unicode code points, and a matcher that tells which
// tokens may come next, so that every generated text is a sentence of the
// grammar whatever the model prefers.
//
//   const Grammar grammar = Grammar::parse(R"(root ::= "{\"n\": " [0-9]+ "}")");
//   GrammarMatcher matcher(grammar, vocab);
//   matcher.mask(logits);                 // -inf for every token that cannot come next
//   matcher.accept(sampled_token);
//   if (matcher.must_end()) ...           // the text is complete; nothing may follow
//
// The matcher is llama.cpp's pushdown automaton (llama-grammar.cpp): a set of
// stacks of positions in rules, advanced one code point at a time. Tokens are
// byte strings; a token may end inside a UTF-8 character (a byte-fallback
// token) and is allowed when some completion of that character is.

namespace folio::engine {

// A grammar that does not parse or cannot be matched, or a token the grammar
// does not allow. what() is one line; parse errors read
// "grammar line L col C: problem".
class GrammarError : public std::runtime_error {
public:
    using std::runtime_error::runtime_error;
};

// Inclusive code point ranges, sorted and disjoint: a character class, a
// literal's character or '.'.
class CharSet {
public:
    explicit CharSet(std::vector<std::pair<char32_t, char32_t>> ranges);  // any order, may overlap

    bool contains(char32_t code_point) const;
    bool intersects(char32_t low, char32_t high) const;  // some code point of [low, high]
    std::span<const std::pair<char32_t, char32_t>> ranges() const { return ranges_; }
    bool operator==(const CharSet& other) const { return ranges_ == other.ranges_; }

private:
    std::vector<std::pair<char32_t, char32_t>> ranges_;
    std::uint64_t ascii_[2] = {0, 0};  // bit c: contains(c), for c < 128
};

// One symbol of a rule alternative, as the matcher walks them.
struct GrammarElement {
    enum class Kind : std::uint8_t {
        End,    // the end of an alternative
        Chars,  // one code point from char_sets()[value]
        Rule,   // a sentence of rule value
    };
    Kind kind = Kind::End;
    std::uint32_t value = 0;
};

// A parsed grammar. Groups and repetitions become rules of their own, as
// llama.cpp expands them: S{m,n} is m copies of S, then n-m nested optional
// rules; S* is R ::= S R | (empty).
class Grammar {
public:
    // Throws GrammarError for a syntax error, a rule defined twice, an
    // undefined rule, a missing start rule, left recursion, a repetition
    // (* + {m,}) of something that can be empty (both would loop forever), a
    // repetition count over kMaxRepetition, or a grammar that expands to over
    // kMaxElements symbols.
    static Grammar parse(std::string_view text, std::string_view start = "root");

    static constexpr int kMaxRepetition = 10000;
    static constexpr std::size_t kMaxElements = std::size_t{1} << 22;

    // Every rule's alternatives, each a run of elements ending with End.
    std::span<const GrammarElement> elements() const { return elements_; }
    std::span<const CharSet> char_sets() const { return char_sets_; }
    // The positions in elements() where each alternative of rule r starts.
    std::span<const std::uint32_t> alternatives(std::uint32_t rule) const { return rule_alternatives_[rule]; }
    std::uint32_t start_rule() const { return start_rule_; }
    std::size_t rule_count() const { return rule_alternatives_.size(); }

private:
    friend class GrammarParser;
    std::vector<GrammarElement> elements_;
    std::vector<CharSet> char_sets_;
    std::vector<std::vector<std::uint32_t>> rule_alternatives_;
    std::uint32_t start_rule_ = 0;
};

// Which tokens of a vocabulary may follow the text accepted so far. Holds
// copies of what it needs: the grammar and vocabulary may go away. Not
// thread-safe: the const queries fill caches.
class GrammarMatcher {
public:
    GrammarMatcher(const Grammar& grammar, const Vocab& vocab);
    ~GrammarMatcher();
    GrammarMatcher(GrammarMatcher&&) noexcept;
    GrammarMatcher& operator=(GrammarMatcher&&) noexcept;

    // Whether the token may come next. An end-of-generation token
    // (end_of_generation_tokens) may when can_end(); other control, unknown
    // and unused tokens, and tokens that decode to nothing, never.
    bool allows(std::int32_t token) const;
    // Takes the token's bytes; throws GrammarError (the matcher unchanged)
    // when !allows(token). An allowed end-of-generation token changes nothing.
    void accept(std::int32_t token);
    // The same for bytes (UTF-8, possibly ending inside a character): text
    // forced into the output, or a test's string.
    bool allows_text(std::string_view bytes) const;
    void accept_text(std::string_view bytes);

    bool can_end() const;   // the text so far is a sentence of the grammar
    bool must_end() const;  // and no character may follow it

    // Sets logits[id] to -inf for every id that !allows(id) (ids past the
    // vocabulary included). Walks a byte trie of the vocabulary with the
    // stack set, skipping the subtree below any dead prefix. Throws
    // GrammarError when no token is allowed (the grammar needs a character
    // the vocabulary cannot spell).
    void mask(std::span<float> logits) const;

    // Back to the start: nothing accepted.
    void reset();

private:
    struct Automaton;
    struct TokenTrie;
    // A point in the text: a set of stacks and the bytes of a character not
    // yet complete.
    struct State {
        std::uint32_t stack_set = 0;
        char32_t partial = 0;             // the character's bits so far
        std::uint8_t bytes_left = 0;      // continuation bytes still to come
        char32_t low = 0, high = 0;       // while bytes_left: the code points it may still become
    };
    // Moves state past one more byte; false (and stack_set 0) when no
    // sentence of the grammar goes that way.
    bool advance(State& state, unsigned char byte) const;
    State after_text(std::string_view bytes) const;  // state_ moved past bytes

    std::unique_ptr<Automaton> automaton_;
    std::unique_ptr<TokenTrie> trie_;
    std::vector<std::int32_t> end_tokens_;
    std::vector<std::uint8_t> token_kind_;  // by id: never, text or end of generation
    State initial_;
    State state_;
};

}  // namespace folio::engine
