#pragma once
// The check `folio ask` runs on a model's answer before showing it: the
// answer split into sentences, the [n] citations read from each, and each
// sentence tested against the numbered sources it cites.
//
// A cited sentence is supported when every source it cites exists, every
// number in it occurs in one of those sources (numbers_match) and every span
// it quotes ("..." or “...”) occurs in one of them (case and spacing
// folded). A sentence without citations (small models often forget them) is
// attributed to the source that supports it best when that support is
// strong: all its numbers there and most of its content words; otherwise it
// is unsupported. A question, or a sentence with no figure, no quote and
// under two content words ("Sure.", "Here it is:"), claims nothing and is
// left alone.

#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

namespace folio::app {

// The citation numbers in text, in order of first appearance, each once:
// "[1]", "[1, 3]", "[1-3]" (a range), "[1][2]".
std::vector<int> parse_citations(std::string_view text);

// A number written in text: "191,973", "5.61", "69.7%", "$192.0 billion".
struct NumberMention {
    double value = 0;       // as written, sign and scale word left out: 192.0
    int decimals = 0;       // digits after the point as written: 1
    double scale = 1;       // thousand, million, billion, trillion: 1e9
    std::size_t begin = 0, end = 0;  // bytes in the text, scale word included
};

// The numbers in text as value_normalize.h's numbers_in() reads them
// (citation markers, list enumerators and names such as "Q4" left out),
// sign dropped and scale word kept apart.
std::vector<NumberMention> numbers_in_text(std::string_view text);

// Whether `claimed` (from an answer) states the figure `source` holds. Equal
// values match; a claim with a scale word may round the source's figure to
// its own precision, which may be in thousands or millions as tables are
// ("$192.0 billion" matches "191,973" in a table of millions).
bool numbers_match(const NumberMention& claimed, const NumberMention& source);

// Whether text holds a number matching claimed.
bool text_has_number(std::string_view text, const NumberMention& claimed);

// Whether needle occurs in haystack with ASCII case and runs of whitespace folded.
bool contains_folded(std::string_view haystack, std::string_view needle);

// A sentence of text: [begin, end) in bytes, the citation markers that
// follow its final punctuation included.
struct SentenceSpan {
    std::size_t begin = 0, end = 0;
};
// Sentences end at . ! ? followed by space or the end (not inside "5.61" or
// after an initial as in "U.S."), and at line breaks.
std::vector<SentenceSpan> split_sentences(std::string_view text);

struct NumberedSource {
    int number = 0;      // [n]
    std::string text;
};

enum class SentenceVerdict {
    Supported,    // cites existing sources that hold its numbers and quotes
    Attributed,   // cites nothing but one source strongly supports it
    Unsupported,  // flagged: reason says why
    NoClaim,      // nothing to check
};
const char* verdict_name(SentenceVerdict verdict);  // "supported", "attributed", "unsupported", "no-claim"

struct SentenceCheck {
    std::string text;                 // as the model wrote it, markers included
    std::vector<int> citations;       // the sources it cites, or the one it was attributed to
    SentenceVerdict verdict = SentenceVerdict::NoClaim;
    std::string reason;               // one line, for Unsupported
    // For each of citations: the sentence of that source that overlaps this
    // one most, [begin, end) in the source's text (empty when none overlaps).
    std::vector<SentenceSpan> quotes;
};

// Checks each sentence of answer against the sources.
std::vector<SentenceCheck> check_citations(std::string_view answer, const std::vector<NumberedSource>& sources);

}  // namespace folio::app
