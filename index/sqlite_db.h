#pragma once
// A thin RAII layer over the sqlite3 C API for the library store: one
// connection, prepared statements meant to be reused, and a write
// transaction. Every failure throws StoreError as "<what was being done>:
// <sqlite3_errmsg>".

#include <sqlite3.h>

#include <chrono>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>

namespace folio::index::sqlite {

class Connection {
public:
    // flags: SQLITE_OPEN_*. Registers Folio's FTS5 tokenizer (fts_tokenizer.h).
    Connection(const std::string& path, int flags, std::chrono::milliseconds busy_timeout);
    ~Connection();
    Connection(const Connection&) = delete;
    Connection& operator=(const Connection&) = delete;

    sqlite3* handle() const { return db_; }
    const std::string& path() const { return path_; }
    std::chrono::milliseconds busy_timeout() const { return busy_timeout_; }

    // Runs SQL text that may hold several statements and returns no rows.
    void execute(const char* sql, std::string_view doing);
    [[noreturn]] void fail(std::string_view doing) const;

private:
    sqlite3* db_ = nullptr;
    std::string path_;
    std::chrono::milliseconds busy_timeout_;
};

class Statement {
public:
    // doing: what the statement is for, for error messages ("insert page").
    Statement(Connection& connection, std::string_view sql, std::string doing);
    ~Statement();
    Statement(const Statement&) = delete;
    Statement& operator=(const Statement&) = delete;

    // Parameters are 1-based, columns 0-based, as in the C API.
    void bind_int(int parameter, std::int64_t value);
    void bind_double(int parameter, double value);
    void bind_text(int parameter, std::string_view text);
    void bind_blob(int parameter, std::string_view bytes);

    // Advances to the next row; false when there are no more.
    bool step();
    // Runs a statement that returns no rows, then resets it for reuse.
    void execute();
    // Clears bindings and ends the statement's read of the database.
    void reset();

    std::int64_t int_at(int column) const;
    double double_at(int column) const;
    std::string text_at(int column) const;
    std::span<const unsigned char> blob_at(int column) const;  // valid until the next step/reset

private:
    Connection& connection_;
    sqlite3_stmt* statement_ = nullptr;
    std::string doing_;
};

// Resets a reused statement when the scope that reads it ends, exceptions
// included: a statement left mid-rows would pin a WAL read snapshot.
class StatementScope {
public:
    explicit StatementScope(Statement& statement) : statement_(statement) {}
    ~StatementScope() { statement_.reset(); }
    StatementScope(const StatementScope&) = delete;
    StatementScope& operator=(const StatementScope&) = delete;

private:
    Statement& statement_;
};

// BEGIN IMMEDIATE ... COMMIT, rolled back unless committed. IMMEDIATE takes
// the write lock up front, so a second writer waits at BEGIN (busy timeout)
// rather than failing halfway with SQLITE_BUSY_SNAPSHOT.
class WriteTransaction {
public:
    explicit WriteTransaction(Connection& connection);
    ~WriteTransaction();
    WriteTransaction(const WriteTransaction&) = delete;
    WriteTransaction& operator=(const WriteTransaction&) = delete;

    void commit();

private:
    Connection& connection_;
    bool open_ = true;
};

}  // namespace folio::index::sqlite
