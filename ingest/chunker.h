#pragma once
// Layout-aware chunking of a document's pages into retrieval units.

#include <string>
#include <vector>
#include "ingest/page.h"

namespace folio::ingest {

struct PageBox {
    int page = 0;  // 1-based
    Box box;
};

struct Chunk {
    int ordinal = 0;                 // 0-based position in the document
    std::string text;                // body text, repeated headers/footers removed
    std::string heading_path;        // "Item 7 > Liquidity and Capital Resources"
    int page_start = 0, page_end = 0;  // 1-based, inclusive
    std::vector<PageBox> boxes;      // one box per text line covered (for highlighting)
    bool table = false;              // a whole table, header row first
    int token_count = 0;             // estimated tokens
};

struct ChunkOptions {
    int target_tokens = 400;
    int overlap_tokens = 50;
    int max_table_tokens = 1500;     // a longer table is split between rows, header row repeated
};

// Pages must be in document order with words in reading order.
std::vector<Chunk> chunk_pages(const std::vector<Page>& pages, const ChunkOptions& options = {});

// The token estimate the chunker budgets with (close to a BPE tokenizer's
// count on English prose and numbers).
int estimate_tokens(const std::string& text);

}  // namespace folio::ingest
