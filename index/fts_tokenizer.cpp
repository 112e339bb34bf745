#include "index/fts_tokenizer.h"

#include <memory>
#include <string>
#include <vector>

#include "index/library_store.h"

namespace folio::index {

bool is_han(char32_t c) {
    return (c >= 0x4E00 && c <= 0x9FFF) ||    // CJK Unified Ideographs
           (c >= 0x3400 && c <= 0x4DBF) ||    // Extension A
           (c >= 0xF900 && c <= 0xFAFF) ||    // Compatibility Ideographs
           (c >= 0x20000 && c <= 0x323AF);    // Extensions B to H, compatibility supplement
}

std::size_t decode_utf8(std::string_view text, std::size_t pos, char32_t& code_point) {
    const auto byte = [&](std::size_t i) { return static_cast<unsigned char>(text[i]); };
    const unsigned char lead = byte(pos);
    std::size_t length = lead < 0x80 ? 1 : (lead >> 5) == 0x6 ? 2 : (lead >> 4) == 0xE ? 3 : (lead >> 3) == 0x1E ? 4 : 0;
    if (length == 0 || pos + length > text.size()) {
        code_point = 0xFFFD;
        return 1;
    }
    code_point = length == 1 ? lead : lead & (0x7F >> length);
    for (std::size_t i = 1; i < length; ++i) {
        if ((byte(pos + i) & 0xC0) != 0x80) {
            code_point = 0xFFFD;
            return 1;
        }
        code_point = (code_point << 6) | (byte(pos + i) & 0x3F);
    }
    return length;
}

namespace {

using TokenCallback = int (*)(void*, int, const char*, int, int, int);

// What the registration hands every tokenizer instance: unicode61's methods.
struct Parent {
    fts5_tokenizer methods{};
    void* context = nullptr;
};

struct Instance {
    const Parent* parent = nullptr;
    Fts5Tokenizer* parent_instance = nullptr;
};

// Passes unicode61's tokens of one segment on with offsets into the whole text.
struct SegmentContext {
    void* context;
    TokenCallback emit;
    int offset;
};

int emit_segment_token(void* segment, int flags, const char* token, int size, int start, int end) {
    auto* s = static_cast<SegmentContext*>(segment);
    return s->emit(s->context, flags, token, size, start + s->offset, end + s->offset);
}

int create(void* context, const char** args, int arg_count, Fts5Tokenizer** out) {
    auto instance = std::make_unique<Instance>();
    instance->parent = static_cast<const Parent*>(context);
    const int rc = instance->parent->methods.xCreate(instance->parent->context, args, arg_count,
                                                     &instance->parent_instance);
    if (rc != SQLITE_OK) return rc;
    *out = reinterpret_cast<Fts5Tokenizer*>(instance.release());
    return SQLITE_OK;
}

void destroy(Fts5Tokenizer* tokenizer) {
    auto* instance = reinterpret_cast<Instance*>(tokenizer);
    instance->parent->methods.xDelete(instance->parent_instance);
    delete instance;
}

// Emits the bigrams of a Han run whose code points start at the given byte
// offsets (the last offset is the end of the run).
int emit_bigrams(void* context, TokenCallback emit, const char* text, const std::vector<int>& starts) {
    const std::size_t characters = starts.size() - 1;
    if (characters == 1) return emit(context, 0, text + starts[0], starts[1] - starts[0], starts[0], starts[1]);
    for (std::size_t i = 0; i + 1 < characters; ++i) {
        const int rc = emit(context, 0, text + starts[i], starts[i + 2] - starts[i], starts[i], starts[i + 2]);
        if (rc != SQLITE_OK) return rc;
    }
    return SQLITE_OK;
}

int tokenize(Fts5Tokenizer* tokenizer, void* context, int flags, const char* text, int size, TokenCallback emit) {
    auto* instance = reinterpret_cast<Instance*>(tokenizer);
    const std::string_view view(text, size > 0 ? static_cast<std::size_t>(size) : 0);
    std::vector<int> starts;
    std::size_t pos = 0;
    while (pos < view.size()) {
        const std::size_t segment_start = pos;
        char32_t code_point = 0;
        std::size_t length = decode_utf8(view, pos, code_point);
        const bool han = is_han(code_point);
        starts.clear();
        while (true) {
            if (han) starts.push_back(static_cast<int>(pos));
            pos += length;
            if (pos >= view.size()) break;
            length = decode_utf8(view, pos, code_point);
            if (is_han(code_point) != han) break;
        }
        int rc = SQLITE_OK;
        if (han) {
            starts.push_back(static_cast<int>(pos));
            rc = emit_bigrams(context, emit, text, starts);
        } else {
            SegmentContext segment{context, emit, static_cast<int>(segment_start)};
            rc = instance->parent->methods.xTokenize(instance->parent_instance, &segment, flags, text + segment_start,
                                                     static_cast<int>(pos - segment_start), emit_segment_token);
        }
        if (rc != SQLITE_OK) return rc;
    }
    return SQLITE_OK;
}

}  // namespace

fts5_api* fts5_api_of(sqlite3* db) {
    fts5_api* api = nullptr;
    sqlite3_stmt* statement = nullptr;
    if (sqlite3_prepare_v2(db, "SELECT fts5(?1)", -1, &statement, nullptr) == SQLITE_OK) {
        sqlite3_bind_pointer(statement, 1, &api, "fts5_api_ptr", nullptr);
        sqlite3_step(statement);
    }
    sqlite3_finalize(statement);
    return api;
}

void register_han_bigram_tokenizer(sqlite3* db) {
    fts5_api* api = fts5_api_of(db);
    if (!api || api->iVersion < 2) throw StoreError("this SQLite has no FTS5, which the keyword index needs");
    auto parent = std::make_unique<Parent>();
    if (api->xFindTokenizer(api, "unicode61", &parent->context, &parent->methods) != SQLITE_OK)
        throw StoreError("SQLite's FTS5 has no unicode61 tokenizer");
    fts5_tokenizer methods{create, destroy, tokenize};
    Parent* context = parent.get();
    if (api->xCreateTokenizer(api, kHanBigramTokenizer, context, &methods,
                              [](void* p) { delete static_cast<Parent*>(p); }) != SQLITE_OK)
        throw StoreError(std::string("cannot register the ") + kHanBigramTokenizer +
                         " tokenizer: " + sqlite3_errmsg(db));
    parent.release();
}

}  // namespace folio::index
