#include <algorithm>
#include <limits>
#include <map>
#include <optional>
#include <unordered_map>

#include "engine/generator.h"
#include "engine/grammar.h"

namespace folio::engine {

// The pushdown automaton, with every stack and stack set interned so that
// a state is one number and each transition is computed once. A stack is a
// chain of positions in Grammar::elements(), its top the next element to
// match; after expansion every top is a Chars element. Advancing a stack by
// any code point its top matches gives the same stacks, so transitions are
// cached per stack set and ASCII code point or interval of code points, and
// the work per byte is a lookup.
struct GrammarMatcher::Automaton {
    static constexpr std::uint32_t kFinished = 0;  // the empty stack: the sentence is complete
    static constexpr std::uint32_t kDead = 0;      // the empty set of stacks: no way on

    explicit Automaton(Grammar g) : grammar(std::move(g)) {
        stacks.push_back({0, 0});
        after_char.emplace_back();
        sets.push_back({{}, {0}, {kDead}, CharSet({})});
        ascii_next.assign(128, kDead);
    }

    std::uint32_t push(std::uint32_t below, std::uint32_t position) {
        const std::uint64_t key = (std::uint64_t{below} << 32) | position;
        const auto [it, added] = stack_ids.emplace(key, static_cast<std::uint32_t>(stacks.size()));
        if (added) {
            stacks.push_back({below, position});
            after_char.emplace_back();
        }
        return it->second;
    }

    // Appends the stacks stack becomes once every rule reference on top is
    // replaced by the starts of its alternatives (llama.cpp's
    // llama_grammar_advance_stack). Terminates: Grammar::parse rejects left
    // recursion.
    void expand(std::uint32_t stack, std::vector<std::uint32_t>& out) {
        if (stack == kFinished) {
            out.push_back(stack);
            return;
        }
        const std::uint32_t position = stacks[stack].position;
        const GrammarElement element = grammar.elements()[position];
        if (element.kind == GrammarElement::Kind::Chars) {
            out.push_back(stack);
            return;
        }
        // The rest of this alternative waits below the rule's; an alternative
        // that ends here leaves nothing to come back to.
        std::uint32_t rest = stacks[stack].below;
        if (grammar.elements()[position + 1].kind != GrammarElement::Kind::End) rest = push(rest, position + 1);
        for (const std::uint32_t start : grammar.alternatives(element.value))
            expand(grammar.elements()[start].kind == GrammarElement::Kind::End ? rest : push(rest, start), out);
    }

    // The stacks after stack's top character has been matched.
    std::vector<std::uint32_t> after(std::uint32_t stack) {
        if (!after_char[stack]) {
            const std::uint32_t position = stacks[stack].position;
            std::uint32_t rest = stacks[stack].below;
            if (grammar.elements()[position + 1].kind != GrammarElement::Kind::End) rest = push(rest, position + 1);
            std::vector<std::uint32_t> out;
            expand(rest, out);
            after_char[stack] = std::move(out);
        }
        return *after_char[stack];
    }

    std::uint32_t intern_set(std::vector<std::uint32_t> members) {
        std::sort(members.begin(), members.end());
        members.erase(std::unique(members.begin(), members.end()), members.end());
        const auto [it, added] = set_ids.emplace(members, static_cast<std::uint32_t>(sets.size()));
        if (!added) return it->second;
        // Where some top's class starts or ends, which stacks match may change.
        std::vector<std::pair<char32_t, char32_t>> taken;
        std::vector<char32_t> starts = {0};
        for (const std::uint32_t stack : members) {
            if (stack == kFinished) continue;
            for (const auto& [low, high] : top_chars(stack).ranges()) {
                taken.emplace_back(low, high);
                starts.push_back(low);
                starts.push_back(high + 1);
            }
        }
        std::sort(starts.begin(), starts.end());
        starts.erase(std::unique(starts.begin(), starts.end()), starts.end());
        std::vector<std::int32_t> next_by_interval(starts.size(), -1);
        sets.push_back({std::move(members), std::move(starts), std::move(next_by_interval), CharSet(std::move(taken))});
        ascii_next.resize(ascii_next.size() + 128, -1);
        return it->second;
    }

    const CharSet& top_chars(std::uint32_t stack) const {
        return grammar.char_sets()[grammar.elements()[stacks[stack].position].value];
    }

    // The cache entry of next(set, code_point): code points of one interval
    // between the set's starts are matched by the same stacks, so they share
    // one. Adding a set may move it.
    std::int32_t& next_entry(std::uint32_t set, char32_t code_point) {
        if (code_point < 128) return ascii_next[std::size_t{set} * 128 + code_point];
        const std::vector<char32_t>& starts = sets[set].interval_starts;
        const auto interval = std::upper_bound(starts.begin(), starts.end(), code_point) - starts.begin() - 1;
        return sets[set].next_by_interval[static_cast<std::size_t>(interval)];
    }

    // The set after code_point.
    std::uint32_t next(std::uint32_t set, char32_t code_point) {
        if (const std::int32_t cached = next_entry(set, code_point); cached >= 0) return static_cast<std::uint32_t>(cached);
        std::vector<std::uint32_t> members;
        for (std::size_t i = 0; i < sets[set].stacks.size(); ++i) {
            const std::uint32_t stack = sets[set].stacks[i];
            if (stack != kFinished && top_chars(stack).contains(code_point)) {
                const std::vector<std::uint32_t> advanced = after(stack);
                members.insert(members.end(), advanced.begin(), advanced.end());
            }
        }
        const std::uint32_t result = members.empty() ? kDead : intern_set(std::move(members));
        next_entry(set, code_point) = static_cast<std::int32_t>(result);
        return result;
    }

    // Whether some stack of set takes a code point of [low, high] next.
    bool may_take(std::uint32_t set, char32_t low, char32_t high) const { return sets[set].taken.intersects(low, high); }

    struct StackNode {
        std::uint32_t below;     // the stack under the top; kFinished at the bottom
        std::uint32_t position;  // the top: an index into grammar.elements()
    };

    Grammar grammar;
    std::vector<StackNode> stacks;  // by stack id; [kFinished] unused
    std::unordered_map<std::uint64_t, std::uint32_t> stack_ids;  // (below << 32 | position) → id
    std::vector<std::optional<std::vector<std::uint32_t>>> after_char;  // by stack id, once computed
    struct StackSet {
        std::vector<std::uint32_t> stacks;        // sorted stack ids
        std::vector<char32_t> interval_starts;    // from 0: code points where the matching stacks may change
        std::vector<std::int32_t> next_by_interval;  // set id after a code point of each interval, -1 until computed
        CharSet taken;                            // the code points some stack takes
    };
    std::vector<StackSet> sets;  // by set id; [kDead] empty
    std::map<std::vector<std::uint32_t>, std::uint32_t> set_ids;
    std::vector<std::int32_t> ascii_next;  // (set id × 128 + code point) → set id, -1 until computed
};

// Every token that can be text, as a byte trie in pre-order: a node's
// subtree is the nodes after it up to subtree_end, so a dead prefix skips
// all the tokens that start with it in one jump.
struct GrammarMatcher::TokenTrie {
    struct Node {
        std::uint32_t subtree_end;   // the first node after this one's subtree
        std::uint32_t tokens_begin;  // tokens ending here: tokens[tokens_begin, next node's tokens_begin)
        std::uint32_t depth;         // 1 for a first byte
        unsigned char byte;
    };

    explicit TokenTrie(std::vector<std::string> token_pieces) : pieces(std::move(token_pieces)) {
        std::vector<std::int32_t> order;
        for (std::size_t id = 0; id < pieces.size(); ++id)
            if (!pieces[id].empty()) order.push_back(static_cast<std::int32_t>(id));
        // char_traits<char> compares bytes as unsigned: a prefix sorts before its extensions.
        std::sort(order.begin(), order.end(), [&](std::int32_t a, std::int32_t b) {
            return pieces[static_cast<std::size_t>(a)] < pieces[static_cast<std::size_t>(b)];
        });
        std::vector<std::uint32_t> path;  // node index at each depth - 1
        std::string_view previous;
        for (const std::int32_t id : order) {
            const std::string_view piece = pieces[static_cast<std::size_t>(id)];
            std::size_t shared = 0;
            while (shared < std::min(piece.size(), previous.size()) && piece[shared] == previous[shared]) ++shared;
            for (; path.size() > shared; path.pop_back()) nodes[path.back()].subtree_end = static_cast<std::uint32_t>(nodes.size());
            for (std::size_t depth = shared; depth < piece.size(); ++depth) {
                path.push_back(static_cast<std::uint32_t>(nodes.size()));
                nodes.push_back({0, static_cast<std::uint32_t>(tokens.size()), static_cast<std::uint32_t>(depth + 1),
                                 static_cast<unsigned char>(piece[depth])});
            }
            tokens.push_back(id);
            max_depth = std::max(max_depth, piece.size());
            previous = piece;
        }
        for (; !path.empty(); path.pop_back()) nodes[path.back()].subtree_end = static_cast<std::uint32_t>(nodes.size());
    }

    std::uint32_t tokens_end(std::size_t node) const {
        return node + 1 < nodes.size() ? nodes[node + 1].tokens_begin : static_cast<std::uint32_t>(tokens.size());
    }

    std::vector<std::string> pieces;  // by token id: its bytes, empty when it is never text
    std::vector<Node> nodes;
    std::vector<std::int32_t> tokens;
    std::size_t max_depth = 0;
};

namespace {

enum TokenKind : std::uint8_t { kNeverAllowed, kText, kEndOfGeneration };

}  // namespace

GrammarMatcher::GrammarMatcher(const Grammar& grammar, const Vocab& vocab)
    : automaton_(std::make_unique<Automaton>(grammar)), end_tokens_(end_of_generation_tokens(vocab)) {
    const auto n = static_cast<std::size_t>(vocab.n_tokens());
    token_kind_.assign(n, kNeverAllowed);
    std::vector<std::string> pieces(n);
    for (std::size_t id = 0; id < n; ++id) {
        const auto token = static_cast<std::int32_t>(id);
        const TokenType type = vocab.token_type(token);
        if (std::find(end_tokens_.begin(), end_tokens_.end(), token) != end_tokens_.end()) {
            token_kind_[id] = kEndOfGeneration;
        } else if (type != TokenType::Control && type != TokenType::Unknown && type != TokenType::Unused) {
            pieces[id] = vocab.token_to_piece(token, false);
            if (!pieces[id].empty()) token_kind_[id] = kText;
        }
    }
    trie_ = std::make_unique<TokenTrie>(std::move(pieces));

    std::vector<std::uint32_t> start;
    for (const std::uint32_t alternative : grammar.alternatives(grammar.start_rule())) {
        if (grammar.elements()[alternative].kind == GrammarElement::Kind::End)
            start.push_back(Automaton::kFinished);
        else
            automaton_->expand(automaton_->push(Automaton::kFinished, alternative), start);
    }
    initial_.stack_set = automaton_->intern_set(std::move(start));
    state_ = initial_;
}

GrammarMatcher::~GrammarMatcher() = default;
GrammarMatcher::GrammarMatcher(GrammarMatcher&&) noexcept = default;
GrammarMatcher& GrammarMatcher::operator=(GrammarMatcher&&) noexcept = default;

bool GrammarMatcher::advance(State& state, unsigned char byte) const {
    if (state.bytes_left == 0) {
        if (byte < 0x80) {
            state.stack_set = automaton_->next(state.stack_set, byte);
            return state.stack_set != Automaton::kDead;
        }
        // A lead byte: the code points its character may become, without
        // overlong forms, surrogates or values past U+10FFFF (RFC 3629).
        if (byte >= 0xC2 && byte <= 0xDF) {
            state.partial = byte & 0x1F, state.bytes_left = 1;
        } else if (byte >= 0xE0 && byte <= 0xEF) {
            state.partial = byte & 0x0F, state.bytes_left = 2;
        } else if (byte >= 0xF0 && byte <= 0xF4) {
            state.partial = byte & 0x07, state.bytes_left = 3;
        } else {
            state.stack_set = Automaton::kDead;
            return false;
        }
        state.low = state.partial << (6 * state.bytes_left);
        state.high = state.low | ((char32_t{1} << (6 * state.bytes_left)) - 1);
        if (byte == 0xE0) state.low = 0x800;
        if (byte == 0xED) state.high = 0xD7FF;
        if (byte == 0xF0) state.low = 0x10000;
        if (byte == 0xF4) state.high = 0x10FFFF;
    } else {
        if ((byte & 0xC0) != 0x80) {
            state.stack_set = Automaton::kDead;
            return false;
        }
        state.partial = (state.partial << 6) | (byte & 0x3F);
        --state.bytes_left;
        const char32_t low = state.partial << (6 * state.bytes_left);
        const char32_t high = low | ((char32_t{1} << (6 * state.bytes_left)) - 1);
        state.low = std::max(state.low, low);
        state.high = std::min(state.high, high);
        if (state.low > state.high) {
            state.stack_set = Automaton::kDead;
            return false;
        }
        if (state.bytes_left == 0) {
            state.stack_set = automaton_->next(state.stack_set, state.partial);
            return state.stack_set != Automaton::kDead;
        }
    }
    if (!automaton_->may_take(state.stack_set, state.low, state.high)) state.stack_set = Automaton::kDead;
    return state.stack_set != Automaton::kDead;
}

GrammarMatcher::State GrammarMatcher::after_text(std::string_view bytes) const {
    State state = state_;
    for (const char byte : bytes)
        if (!advance(state, static_cast<unsigned char>(byte))) break;
    return state;
}

bool GrammarMatcher::allows(std::int32_t token) const {
    if (token < 0 || static_cast<std::size_t>(token) >= token_kind_.size()) return false;
    switch (token_kind_[static_cast<std::size_t>(token)]) {
    case kEndOfGeneration: return can_end();
    case kText: return allows_text(trie_->pieces[static_cast<std::size_t>(token)]);
    default: return false;
    }
}

void GrammarMatcher::accept(std::int32_t token) {
    if (!allows(token)) throw GrammarError("the grammar does not allow token " + std::to_string(token) + " here");
    if (token_kind_[static_cast<std::size_t>(token)] == kText) state_ = after_text(trie_->pieces[static_cast<std::size_t>(token)]);
}

bool GrammarMatcher::allows_text(std::string_view bytes) const {
    return after_text(bytes).stack_set != Automaton::kDead;
}

void GrammarMatcher::accept_text(std::string_view bytes) {
    const State next = after_text(bytes);
    if (next.stack_set == Automaton::kDead) throw GrammarError("the grammar does not allow this text here");
    state_ = next;
}

bool GrammarMatcher::can_end() const {
    const std::vector<std::uint32_t>& stacks = automaton_->sets[state_.stack_set].stacks;
    return state_.bytes_left == 0 && !stacks.empty() && stacks.front() == Automaton::kFinished;
}

bool GrammarMatcher::must_end() const {
    const std::vector<std::uint32_t>& stacks = automaton_->sets[state_.stack_set].stacks;
    return state_.bytes_left == 0 && stacks.size() == 1 && stacks.front() == Automaton::kFinished;
}

void GrammarMatcher::mask(std::span<float> logits) const {
    std::vector<std::uint8_t> allowed(logits.size(), 0);
    bool any = false;
    std::vector<State> at_depth(trie_->max_depth + 1);
    at_depth[0] = state_;
    const std::vector<TokenTrie::Node>& nodes = trie_->nodes;
    const std::vector<std::int32_t>& ascii_next = automaton_->ascii_next;
    for (std::size_t i = 0; i < nodes.size();) {
        const TokenTrie::Node& node = nodes[i];
        const State& parent = at_depth[node.depth - 1];
        State& state = at_depth[node.depth];
        // The common case, an ASCII byte whose transition is known, without the call.
        const std::int32_t known = parent.bytes_left == 0 && node.byte < 0x80
                                       ? ascii_next[std::size_t{parent.stack_set} * 128 + node.byte]
                                       : -1;
        if (known >= 0) {
            state.stack_set = static_cast<std::uint32_t>(known);
            state.bytes_left = 0;
        } else {
            state = parent;
            advance(state, node.byte);
        }
        if (state.stack_set == Automaton::kDead) {
            i = node.subtree_end;
            continue;
        }
        for (std::uint32_t t = node.tokens_begin, end = trie_->tokens_end(i); t < end; ++t) {
            const auto id = static_cast<std::size_t>(trie_->tokens[t]);
            if (id < allowed.size()) allowed[id] = 1, any = true;
        }
        ++i;
    }
    if (can_end())
        for (const std::int32_t id : end_tokens_)
            if (static_cast<std::size_t>(id) < allowed.size()) allowed[static_cast<std::size_t>(id)] = 1, any = true;
    if (!any) throw GrammarError("the grammar allows no token of the vocabulary here");
    for (std::size_t id = 0; id < logits.size(); ++id)
        if (!allowed[id]) logits[id] = -std::numeric_limits<float>::infinity();
}

void GrammarMatcher::reset() { state_ = initial_; }

}  // namespace folio::engine
