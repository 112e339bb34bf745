#pragma once
// The BLOB forms in which the store keeps a page's words and a chunk's line
// boxes. Coordinates stay float32, so they read back bit for bit.
//
// Words, per word in reading order, little-endian:
//   f32 x0, y0, x1, y1, confidence, font_size    24 bytes
//   u8  flags: 1 bold, 2 space_after, 4 line_end
//   LEB128 byte length of the text, then the UTF-8 text
// Measured on a 600-word page with PDF-like fractional coordinates (words
// of 5.7 letters on average): 32 bytes a word packed; as JSON arrays
// ["Revenue",72.48,...,flags] 60 bytes with shortest float formatting (108
// with nlohmann's double formatting), as named JSON objects 207. For a
// 232-page filing that is 4.4 MB packed against 8.4 MB or more as JSON.
//
// Chunk boxes, per box: i32 page, f32 x0, y0, x1, y1    20 bytes

#include <span>
#include <string>
#include <vector>
#include "ingest/chunker.h"
#include "ingest/page.h"

namespace folio::index {

std::string pack_words(const std::vector<ingest::Word>& words);
// Throws StoreError when the bytes are not a words blob.
std::vector<ingest::Word> unpack_words(std::span<const unsigned char> bytes);

std::string pack_page_boxes(const std::vector<ingest::PageBox>& boxes);
// Throws StoreError when the bytes are not a page-boxes blob.
std::vector<ingest::PageBox> unpack_page_boxes(std::span<const unsigned char> bytes);

}  // namespace folio::index
