#pragma once

// Thin RAII over the SQLite C API: a connection, a prepared statement, and
// the mapping of SQLite result codes to Wager errors. Internal to
// persistence/ (the header is public only so tools and tests in this layer
// can reach the same file the same way).

#include <caf/error.hpp>

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>

struct sqlite3;
struct sqlite3_stmt;

namespace wager::sqlite {

// A failed SQLite call as errc::journal_failure: "<context>: <sqlite message>
// (<extended code>)".
caf::error failure(sqlite3* db, int rc, std::string_view context);

// True for codes that mean the file or the disk failed (full, I/O, corrupt,
// read-only, ...), as opposed to a problem with one statement's data.
bool is_storage_error(int rc) noexcept;

class statement {
public:
  statement() = default;
  statement(sqlite3* db, std::string_view sql); // asserts the SQL compiles
  ~statement();
  statement(statement&& other) noexcept;
  statement& operator=(statement&& other) noexcept;
  statement(const statement&) = delete;
  statement& operator=(const statement&) = delete;

  // Binding, 1-based as in SQLite. Text is bound SQLITE_STATIC: it must
  // outlive the statement's next reset().
  statement& bind(int index, int64_t value);
  statement& bind(int index, std::string_view text);
  statement& bind_blob(int index, std::span<const uint8_t> bytes);

  // SQLITE_ROW, SQLITE_DONE or an error code.
  int step();
  void reset(); // also clears bindings

  int64_t column_int(int index) const;
  std::string_view column_text(int index) const;
  std::span<const uint8_t> column_blob(int index) const;
  bool column_is_null(int index) const;

  sqlite3_stmt* get() const noexcept { return stmt_; }

private:
  sqlite3_stmt* stmt_ = nullptr;
};

// Resets a statement when a scope ends, so an early return cannot leave it
// holding a read transaction open.
class reset_on_exit {
public:
  explicit reset_on_exit(statement& s) : s_(s) {}
  ~reset_on_exit() { s_.reset(); }
  reset_on_exit(const reset_on_exit&) = delete;
  reset_on_exit& operator=(const reset_on_exit&) = delete;

private:
  statement& s_;
};

enum class open_mode { read_write, read_only };

class connection {
public:
  connection();
  ~connection();
  connection(connection&& other) noexcept;
  connection& operator=(connection&& other) noexcept;
  connection(const connection&) = delete;
  connection& operator=(const connection&) = delete;

  // Opens an existing file (never creates one). `create` opens with
  // SQLITE_OPEN_CREATE, for the journal's own creation step only.
  caf::error open(const std::string& path, open_mode mode, bool create = false);

  // Runs SQL without results (pragmas, DDL, BEGIN/COMMIT).
  caf::error exec(std::string_view sql, std::string_view context);

  // Runs a one-row one-column query returning an integer.
  caf::expected<int64_t> query_int(std::string_view sql, std::string_view context);

  // Waits up to `ms` for a lock another connection holds. Unlike SQLite's
  // own busy handler, which backs off to 100 ms sleeps, this polls every
  // 0.1 to 1 ms: the journal's write lock is held for one batch, a few
  // milliseconds, and a writer sleeping long after it was released wastes
  // the disk's time.
  void set_busy_timeout(uint32_t ms);

  // True when SQLite opened the file read-only although we asked for
  // read-write (it does so silently for a file it may not write).
  bool opened_read_only() const;

  // True when the file at our path is no longer the file we opened (deleted,
  // renamed over): a commit into it would be lost on restart.
  bool file_moved() const;

  // Changes whenever another connection (this process or another) commits
  // to the file; our own commits leave it alone. Read inside a write
  // transaction it tells whether anything we cached can still be trusted.
  caf::expected<int64_t> data_version();

  sqlite3* get() const noexcept { return db_; }
  explicit operator bool() const noexcept { return db_ != nullptr; }
  void close();

private:
  struct busy_wait; // heap-held, so its address survives moves

  sqlite3* db_ = nullptr;
  std::unique_ptr<busy_wait> busy_;
};

} // namespace wager::sqlite
