#pragma once
// Table detection from word boxes, for the layout analysis. Private to ingest/.

#include <vector>
#include "ingest/layout.h"

namespace folio::ingest {

struct DetectedTable {
    Table table;
    std::vector<int> lines;  // indexes into the page's lines that make up the table, ascending
};

// Tables among one page's `lines` (reading order): runs of rows whose words
// fall into cells separated by wide gaps, aligned with the rows around them,
// with a column of figures (or at least three columns of short text). Rows are
// rebuilt from the boxes rather than taken from the reading order, because
// Poppler reads many tables column by column. Pages without geometry have none.
std::vector<DetectedTable> find_tables(const std::vector<Page>& pages, const std::vector<TextLine>& lines);

}  // namespace folio::ingest
