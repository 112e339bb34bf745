#pragma once
// Synthetic documents for the store's tests. Content follows from a few
// numbers and a marker word, so a test can tell from what it reads back
// exactly what was written.

#include <cstdint>
#include <cstdio>
#include <string>
#include "index/library_store.h"

namespace folio::index::testing {

inline const char* const kVocabulary[] = {"revenue", "increased", "million", "fiscal", "operating", "margin",
                                          "liquidity", "capital", "segment", "quarter", "net", "income",
                                          "patient", "dosage", "diagnosis", "report"};

// words: how many; every line of 12 words ends with line_end. Coordinates
// carry fractions so that float round trips are exercised.
inline ingest::Page make_page(int number, int words, const std::string& marker) {
    ingest::Page page;
    page.number = number;
    page.width = 612;
    page.height = 792;
    for (int i = 0; i < words; ++i) {
        ingest::Word word;
        word.text = i == 0 ? marker : kVocabulary[(number * 7 + i) % 16];
        const float x = 72.37f + static_cast<float>(i % 12) * 38.113f;
        const float y = 90.5f + static_cast<float>(i / 12) * 11.955f;
        word.box = {x, y, x + 33.25f, y + 9.963f};
        word.font_size = 9.963f;
        word.line_end = i % 12 == 11;
        word.bold = i % 12 == 0;
        page.text += word.text + (word.line_end ? "\n" : " ");
        page.words.push_back(std::move(word));
    }
    return page;
}

inline ingest::Chunk make_chunk(int ordinal, int page, int words, const std::string& marker,
                                const std::string& heading) {
    ingest::Chunk chunk;
    chunk.ordinal = ordinal;
    chunk.heading_path = heading;
    chunk.page_start = page;
    chunk.page_end = page;
    chunk.text = marker;
    for (int i = 1; i < words; ++i) chunk.text += std::string(" ") + kVocabulary[(ordinal * 5 + i) % 16];
    for (int line = 0; line < (words + 11) / 12; ++line)
        chunk.boxes.push_back({page, {72.37f, 90.5f + line * 11.955f, 530.1f, 100.463f + line * 11.955f}});
    chunk.token_count = words * 4 / 3;
    return chunk;
}

// Chunks are spread over the pages in order; each starts with the marker.
inline DocumentInput make_document(const std::string& path, int pages, int chunks, const std::string& marker,
                                   int words_per_page = 60, int words_per_chunk = 40) {
    DocumentInput input;
    input.path = path;
    input.sha256 = std::string(64, 'a');
    input.size = 1000 + pages;
    input.type = ingest::FileType::Pdf;
    for (int number = 1; number <= pages; ++number)
        input.pages.push_back(make_page(number, words_per_page, marker));
    for (int ordinal = 0; ordinal < chunks; ++ordinal) {
        const int page = 1 + ordinal * pages / chunks;
        input.chunks.push_back(make_chunk(ordinal, page, words_per_chunk, marker,
                                          "Part " + std::to_string(page) + " > Section " + std::to_string(ordinal)));
    }
    return input;
}

// A number written as a 64-digit hex string in place of a content hash, so
// that a stored row says which write it came from.
inline std::string sha256_of_number(std::int64_t number) {
    char hex[65];
    std::snprintf(hex, sizeof hex, "%064llx", static_cast<unsigned long long>(number));
    return hex;
}

inline std::int64_t number_of_sha256(const std::string& sha256) {
    return static_cast<std::int64_t>(std::stoull(sha256, nullptr, 16));
}

}  // namespace folio::index::testing
