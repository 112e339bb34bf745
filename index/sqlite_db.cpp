#include "index/sqlite_db.h"

#include "index/fts_query_idf.h"
#include "index/fts_tokenizer.h"
#include "index/library_store.h"

namespace folio::index::sqlite {

Connection::Connection(const std::string& path, int flags, std::chrono::milliseconds busy_timeout)
    : path_(path), busy_timeout_(busy_timeout) {
    if (sqlite3_open_v2(path.c_str(), &db_, flags, nullptr) != SQLITE_OK) {
        // sqlite3_open_v2 hands back a handle carrying the error even when it fails.
        const std::string reason = db_ ? sqlite3_errmsg(db_) : "out of memory";
        sqlite3_close_v2(db_);
        throw StoreError("cannot open library " + path + ": " + reason);
    }
    sqlite3_busy_timeout(db_, static_cast<int>(busy_timeout.count()));
    // chunks_fts cannot be read or written without its tokenizer, so every
    // connection gets it, and the function that keyword search reads.
    try {
        register_han_bigram_tokenizer(db_);
        register_query_idf_function(db_);
    } catch (...) {
        sqlite3_close_v2(db_);
        throw;
    }
}

Connection::~Connection() { sqlite3_close_v2(db_); }

void Connection::execute(const char* sql, std::string_view doing) {
    if (sqlite3_exec(db_, sql, nullptr, nullptr, nullptr) != SQLITE_OK) fail(doing);
}

void Connection::fail(std::string_view doing) const {
    std::string message = std::string(doing) + ": " + sqlite3_errmsg(db_);
    if ((sqlite3_extended_errcode(db_) & 0xff) == SQLITE_BUSY)
        message += " (another process kept the library busy for more than " +
                   std::to_string(busy_timeout_.count()) + " ms)";
    throw StoreError(message);
}

Statement::Statement(Connection& connection, std::string_view sql, std::string doing)
    : connection_(connection), doing_(std::move(doing)) {
    if (sqlite3_prepare_v3(connection.handle(), sql.data(), static_cast<int>(sql.size()),
                           SQLITE_PREPARE_PERSISTENT, &statement_, nullptr) != SQLITE_OK)
        connection.fail("preparing " + doing_);
}

Statement::~Statement() { sqlite3_finalize(statement_); }

void Statement::bind_int(int parameter, std::int64_t value) {
    if (sqlite3_bind_int64(statement_, parameter, value) != SQLITE_OK) connection_.fail(doing_);
}

void Statement::bind_double(int parameter, double value) {
    if (sqlite3_bind_double(statement_, parameter, value) != SQLITE_OK) connection_.fail(doing_);
}

// Bound values are not copied (SQLITE_STATIC): the caller keeps them alive
// until the statement is stepped and reset. An empty value is bound from a
// non-null pointer, since a null one would store NULL instead.
static const char empty_value[] = "";

void Statement::bind_text(int parameter, std::string_view text) {
    if (sqlite3_bind_text64(statement_, parameter, text.empty() ? empty_value : text.data(), text.size(),
                            SQLITE_STATIC, SQLITE_UTF8) != SQLITE_OK)
        connection_.fail(doing_);
}

void Statement::bind_blob(int parameter, std::string_view bytes) {
    if (sqlite3_bind_blob64(statement_, parameter, bytes.empty() ? empty_value : bytes.data(), bytes.size(),
                            SQLITE_STATIC) != SQLITE_OK)
        connection_.fail(doing_);
}

bool Statement::step() {
    switch (sqlite3_step(statement_)) {
    case SQLITE_ROW: return true;
    case SQLITE_DONE: return false;
    default: connection_.fail(doing_);
    }
}

void Statement::execute() {
    StatementScope scope(*this);
    while (step()) {
    }
}

void Statement::reset() {
    sqlite3_reset(statement_);
    sqlite3_clear_bindings(statement_);
}

std::int64_t Statement::int_at(int column) const { return sqlite3_column_int64(statement_, column); }

double Statement::double_at(int column) const { return sqlite3_column_double(statement_, column); }

std::string Statement::text_at(int column) const {
    const auto* text = reinterpret_cast<const char*>(sqlite3_column_text(statement_, column));
    return text ? std::string(text, sqlite3_column_bytes(statement_, column)) : std::string();
}

std::span<const unsigned char> Statement::blob_at(int column) const {
    const auto* bytes = static_cast<const unsigned char*>(sqlite3_column_blob(statement_, column));
    return {bytes, static_cast<std::size_t>(sqlite3_column_bytes(statement_, column))};
}

WriteTransaction::WriteTransaction(Connection& connection) : connection_(connection) {
    connection.execute("BEGIN IMMEDIATE", "starting a write");
}

WriteTransaction::~WriteTransaction() {
    // Some errors (SQLITE_FULL, SQLITE_IOERR) already rolled SQLite back.
    if (open_ && !sqlite3_get_autocommit(connection_.handle()))
        sqlite3_exec(connection_.handle(), "ROLLBACK", nullptr, nullptr, nullptr);
}

void WriteTransaction::commit() {
    connection_.execute("COMMIT", "committing");
    open_ = false;
}

}  // namespace folio::index::sqlite
