#pragma once
// A record a small model did not finish: it ran out of tokens, or stopped
// on a loop, while listing the same array items over and over
// ("lisinopril","lisinopril",...). Rather than lose the record, the
// extractor closes the array where the repeating began and lets the model
// go on with the fields after it.
#include <optional>
#include <string>
#include <string_view>

#include "engine/grammar.h"

namespace folio::app {

// `text` is the start of a sentence of `grammar`: compact JSON, as
// JsonSchema::grammar() writes it, cut off anywhere. Returns it cut back to
// an array item boundary and closed with "]", ready for generation to
// continue:
// - the outermost array still open at the end whose items repeat is cut
//   before its first item that equals an earlier one;
// - with no repeated item, the innermost open array is cut after its last
//   complete item.
// The result is always a prefix the grammar allows (an array whose
// minItems the cut would break is not closed). Nothing when no open array
// can be closed that way (the text ran out inside a string, say).
// `matcher` is one of the text's grammar (the generation's own: building
// another costs a pass over the vocabulary); it is reset, and when a text
// is returned it has accepted it, ready for the generation to go on.
std::optional<std::string> close_runaway_array(std::string_view text, engine::GrammarMatcher& matcher);

}  // namespace folio::app
