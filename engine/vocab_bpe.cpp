#include <algorithm>
#include <array>
#include <string>

#include "engine/utf8.h"
#include "engine/vocab.h"

namespace folio::engine {

namespace {

// GPT-2's bytes_to_unicode(): printable Latin-1 bytes (! to ~, ¡ to ¬, ® to ÿ)
// stand for themselves, the other 68 bytes for U+0100 onwards in byte order,
// so that every byte is a visible character in the vocabulary's text.
std::array<char32_t, 256> byte_code_points() {
    std::array<char32_t, 256> code_points{};
    char32_t next_unprintable = 0x100;
    for (int byte = 0; byte < 256; ++byte) {
        const bool printable = (byte >= 0x21 && byte <= 0x7E) || (byte >= 0xA1 && byte <= 0xAC) || byte >= 0xAE;
        code_points[static_cast<std::size_t>(byte)] = printable ? static_cast<char32_t>(byte) : next_unprintable++;
    }
    return code_points;
}

// The bytes a byte-level token's text stands for. A character outside the
// byte alphabet is kept as its UTF-8, as tokenizers' ByteLevel decoder does.
std::string byte_level_to_bytes(std::string_view text, const std::array<int, 0x144>& byte_of_code_point) {
    std::string bytes;
    for (std::size_t i = 0; i < text.size();) {
        const auto lead = static_cast<std::uint8_t>(text[i]);
        const std::size_t length = lead < 0x80 ? 1 : lead < 0xE0 ? 2 : lead < 0xF0 ? 3 : 4;
        char32_t code_point = length == 1 ? lead : lead & (0x7F >> length);
        for (std::size_t k = 1; k < length && i + k < text.size(); ++k)
            code_point = (code_point << 6) | (static_cast<std::uint8_t>(text[i + k]) & 0x3F);
        if (code_point < byte_of_code_point.size() && byte_of_code_point[code_point] >= 0)
            bytes += static_cast<char>(byte_of_code_point[code_point]);
        else
            bytes.append(text.substr(i, length));
        i += length;
    }
    return bytes;
}

const std::array<std::string, 256>& byte_level_strings() {
    static const std::array<std::string, 256> strings = [] {
        std::array<std::string, 256> result;
        const auto code_points = byte_code_points();
        for (std::size_t byte = 0; byte < 256; ++byte)
            append_utf8(code_points[byte], result[byte]);
        return result;
    }();
    return strings;
}

// Recently encoded pieces, per thread so that encode stays const and
// thread-safe. Cleared when full or when another vocabulary uses it.
struct PieceCache {
    static constexpr std::size_t kMaxEntries = 1 << 14;
    std::uint64_t owner_id = 0;
    std::unordered_map<std::string, std::vector<std::int32_t>> ids_of_piece;
};

}  // namespace

void Vocab::load_byte_level_bpe(const GgufFile& file) {
    const std::string_view pre = file.get_string("tokenizer.ggml.pre", "gpt2");
    try {
        pre_tokenizer_ = pre_tokenizer_from_name(pre);
    } catch (const std::invalid_argument& error) {
        throw VocabError(file.source() + ": " + error.what());
    }
    ignore_merges_ = pre_tokenizer_ == PreTokenizer::Llama3;

    std::array<int, 0x144> byte_of_code_point;  // byte-level characters reach U+0143
    byte_of_code_point.fill(-1);
    const auto code_points = byte_code_points();
    for (int byte = 0; byte < 256; ++byte)
        byte_of_code_point[code_points[static_cast<std::size_t>(byte)]] = byte;

    token_bytes_.reserve(token_texts_.size());
    for (std::size_t id = 0; id < token_texts_.size(); ++id) {
        // Added tokens are stored as their own text, not byte-level characters.
        const bool is_added = token_types_[id] == TokenType::Control || token_types_[id] == TokenType::UserDefined;
        token_bytes_.push_back(is_added ? token_texts_[id] : byte_level_to_bytes(token_texts_[id], byte_of_code_point));
    }

    for (std::size_t byte = 0; byte < 256; ++byte) {
        const auto found = id_of_text_.find(byte_level_strings()[byte]);
        byte_token_ids_[byte] = found == id_of_text_.end() ? kNoToken : found->second;
    }

    // A merge is "left right": the two tokens' texts, which contain no spaces
    // (a space is Ġ), separated by one. Searched from 1 as llama.cpp does.
    const std::span<const std::string_view> merges = file.get_string_array("tokenizer.ggml.merges");
    merges_.reserve(merges.size());
    for (std::size_t rank = 0; rank < merges.size(); ++rank) {
        const std::string_view merge = merges[rank];
        const std::size_t space = merge.find(' ', 1);
        if (space == std::string_view::npos)
            throw VocabError(file.source() + ": merge " + std::to_string(rank) + " '" + std::string(merge) +
                             "' is not two tokens");
        const std::string left(merge.substr(0, space));
        const std::string right(merge.substr(space + 1));
        const auto left_id = id_of_text_.find(left);
        const auto right_id = id_of_text_.find(right);
        const auto merged_id = id_of_text_.find(left + right);
        if (left_id == id_of_text_.end() || right_id == id_of_text_.end() || merged_id == id_of_text_.end())
            throw VocabError(file.source() + ": merge " + std::to_string(rank) + " '" + std::string(merge) +
                             "' names a token that is not in the vocabulary");
        // A pair listed twice keeps its first rank, as in llama.cpp's bpe_ranks.
        merges_.try_emplace(pair_key(left_id->second, right_id->second),
                            Merge{static_cast<std::int32_t>(rank), merged_id->second});
    }
}

void Vocab::encode_byte_level_bpe(std::string_view text, std::vector<std::int32_t>& ids) const {
    thread_local std::vector<std::string_view> pieces;
    pieces.clear();
    pre_tokenize(pre_tokenizer_, text, pieces);
    for (const std::string_view piece : pieces)
        encode_piece(piece, ids);
}

void Vocab::encode_piece(std::string_view piece, std::vector<std::int32_t>& ids) const {
    if (piece.size() == 1) {
        if (const std::int32_t id = byte_token_ids_[static_cast<std::uint8_t>(piece[0])]; id != kNoToken)
            ids.push_back(id);
        return;
    }
    thread_local PieceCache cache;
    if (cache.owner_id != cache_owner_id_ || cache.ids_of_piece.size() >= PieceCache::kMaxEntries) {
        cache.ids_of_piece.clear();
        cache.owner_id = cache_owner_id_;
    }
    const auto [entry, inserted] = cache.ids_of_piece.try_emplace(std::string(piece));
    if (inserted)
        apply_merges(piece, entry->second);
    ids.insert(ids.end(), entry->second.begin(), entry->second.end());
}

// tokenizers' Word::merge_all: every adjacent pair that has a merge is queued
// by (rank, position); the lowest is merged, its neighbours' new pairs are
// queued, and entries whose pair has changed since are skipped.
void Vocab::apply_merges(std::string_view piece, std::vector<std::int32_t>& ids) const {
    if (ignore_merges_) {
        std::string text;
        for (const char byte : piece)
            text += byte_level_strings()[static_cast<std::uint8_t>(byte)];
        if (const auto found = id_of_text_.find(text); found != id_of_text_.end()) {
            ids.push_back(found->second);
            return;
        }
    }

    struct Symbol {
        std::int32_t id;
        std::int32_t previous;  // index, -1 at the start
        std::int32_t next;      // index, -1 at the end
    };
    struct Candidate {
        std::int32_t rank;
        std::int32_t position;  // of the left symbol
        std::int32_t left_id;
        std::int32_t right_id;
        std::int32_t merged_id;
        // Heap order: the lowest rank, then the leftmost position, on top.
        bool operator<(const Candidate& other) const {
            return rank != other.rank ? rank > other.rank : position > other.position;
        }
    };
    // Reused across calls: most pieces are short, and allocating dominated.
    thread_local std::vector<Symbol> symbols;
    thread_local std::vector<Candidate> queue;
    symbols.clear();
    queue.clear();
    for (const char byte : piece) {
        const std::int32_t id = byte_token_ids_[static_cast<std::uint8_t>(byte)];
        // A byte the vocabulary lacks (SmolLM2 has no 0x04, 0xC0, ...) is
        // dropped, as tokenizers' BPE without unk_token and llama.cpp drop it.
        if (id == kNoToken)
            continue;
        const auto index = static_cast<std::int32_t>(symbols.size());
        symbols.push_back({id, index - 1, index + 1});
    }
    if (symbols.empty())
        return;
    symbols.back().next = -1;

    const auto queue_pair = [&](std::int32_t left) {
        const std::int32_t right = symbols[static_cast<std::size_t>(left)].next;
        if (right < 0)
            return;
        const std::int32_t left_id = symbols[static_cast<std::size_t>(left)].id;
        const std::int32_t right_id = symbols[static_cast<std::size_t>(right)].id;
        const auto merge = merges_.find(pair_key(left_id, right_id));
        if (merge == merges_.end())
            return;
        queue.push_back({merge->second.rank, left, left_id, right_id, merge->second.merged_id});
        std::push_heap(queue.begin(), queue.end());
    };
    for (std::int32_t i = 0; i + 1 < static_cast<std::int32_t>(symbols.size()); ++i)
        queue_pair(i);

    while (!queue.empty()) {
        std::pop_heap(queue.begin(), queue.end());
        const Candidate top = queue.back();
        queue.pop_back();
        Symbol& left = symbols[static_cast<std::size_t>(top.position)];
        if (left.id != top.left_id || left.next < 0)
            continue;
        Symbol& right = symbols[static_cast<std::size_t>(left.next)];
        if (right.id != top.right_id)
            continue;
        left.id = top.merged_id;
        right.id = kNoToken;  // merged away; no pair can match it again
        left.next = right.next;
        if (right.next >= 0)
            symbols[static_cast<std::size_t>(right.next)].previous = top.position;
        if (left.previous >= 0)
            queue_pair(left.previous);
        queue_pair(top.position);
    }
    for (std::int32_t i = 0; i >= 0; i = symbols[static_cast<std::size_t>(i)].next)
        ids.push_back(symbols[static_cast<std::size_t>(i)].id);
}

}  // namespace folio::engine
