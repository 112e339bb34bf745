#pragma once
// Lines, blocks and page text from a text layer's word sequence. Private to
// ingest/.

#include <string>
#include <string_view>
#include <vector>
#include "ingest/page.h"

namespace folio::ingest {

struct PositionedWord {
    Word word;      // space_after as the text layer reports it; line/block flags unset
    int rotation = 0;  // text direction in quarter turns clockwise (0: left to right)
};

// Sets line_end, block_end and space_after on words that come in Poppler's
// reading order (flows, blocks, lines, words along the line). `layout_text` is
// Poppler's text output for the same page (what pdftotext prints), which
// carries its line and block breaks; when the words cannot be aligned with it,
// the breaks are inferred from the boxes instead: a line ends where the next
// word is not further along the same baseline, a block where the next line
// does not continue below this one at a similar size and spacing. A line
// ending in '-' inside a block is a word split across lines: space_after=false.
std::vector<Word> mark_lines_and_blocks(std::vector<PositionedWord> words, std::string_view layout_text);

// Words joined by ' ' (or nothing where space_after is false), '\n' after a
// line and "\n\n" after a block. A word split by a hyphen at a line end is
// joined to its continuation without the hyphen, as pdftotext does.
std::string build_page_text(const std::vector<Word>& words);

}  // namespace folio::ingest
