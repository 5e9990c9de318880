#include "wager/persistence/sqlite_db.hpp"

#include "wager/runtime/assert.hpp"
#include "wager/runtime/errors.hpp"

#include <sqlite3.h>

#include <algorithm>
#include <chrono>
#include <thread>
#include <utility>

namespace wager::sqlite {

caf::error failure(sqlite3* db, int rc, std::string_view context) {
  std::string message{context};
  message += ": ";
  // sqlite3_errmsg describes the last call on `db`; with no connection (open
  // failed before one existed) the code's own text is all there is.
  message += db != nullptr ? sqlite3_errmsg(db) : sqlite3_errstr(rc);
  message += " (sqlite " + std::to_string(rc) + ")";
  return make_error(errc::journal_failure, std::move(message));
}

bool is_storage_error(int rc) noexcept {
  switch (rc & 0xff) {
    case SQLITE_FULL:
    case SQLITE_IOERR:
    case SQLITE_CORRUPT:
    case SQLITE_NOTADB:
    case SQLITE_READONLY:
    case SQLITE_CANTOPEN:
    case SQLITE_PERM:
    case SQLITE_BUSY:
    case SQLITE_LOCKED:
    case SQLITE_NOMEM:
    case SQLITE_PROTOCOL:
    case SQLITE_NOLFS:
    case SQLITE_AUTH:
      return true;
    default:
      return false;
  }
}

statement::statement(sqlite3* db, std::string_view sql) {
  auto rc = sqlite3_prepare_v3(db, sql.data(), static_cast<int>(sql.size()),
                               SQLITE_PREPARE_PERSISTENT, &stmt_, nullptr);
  WAGER_ASSERT(rc == SQLITE_OK, std::string{"SQL does not compile: "} + sqlite3_errmsg(db) +
                                  " in " + std::string{sql});
}

statement::~statement() {
  sqlite3_finalize(stmt_);
}

statement::statement(statement&& other) noexcept : stmt_(std::exchange(other.stmt_, nullptr)) {}

statement& statement::operator=(statement&& other) noexcept {
  if (this != &other) {
    sqlite3_finalize(stmt_);
    stmt_ = std::exchange(other.stmt_, nullptr);
  }
  return *this;
}

statement& statement::bind(int index, int64_t value) {
  sqlite3_bind_int64(stmt_, index, value);
  return *this;
}

statement& statement::bind(int index, std::string_view text) {
  sqlite3_bind_text(stmt_, index, text.data(), static_cast<int>(text.size()), SQLITE_STATIC);
  return *this;
}

int statement::step() {
  return sqlite3_step(stmt_);
}

void statement::reset() {
  sqlite3_reset(stmt_);
  sqlite3_clear_bindings(stmt_);
}

statement& statement::bind_blob(int index, std::span<const uint8_t> bytes) {
  sqlite3_bind_blob64(stmt_, index, bytes.data(), bytes.size(), SQLITE_STATIC);
  return *this;
}

std::span<const uint8_t> statement::column_blob(int index) const {
  auto* data = static_cast<const uint8_t*>(sqlite3_column_blob(stmt_, index));
  auto size = sqlite3_column_bytes(stmt_, index);
  if (data == nullptr)
    return {};
  return {data, static_cast<size_t>(size)};
}

int64_t statement::column_int(int index) const {
  return sqlite3_column_int64(stmt_, index);
}

std::string_view statement::column_text(int index) const {
  auto text = reinterpret_cast<const char*>(sqlite3_column_text(stmt_, index));
  auto size = sqlite3_column_bytes(stmt_, index);
  return text == nullptr ? std::string_view{} : std::string_view{text, static_cast<size_t>(size)};
}

bool statement::column_is_null(int index) const {
  return sqlite3_column_type(stmt_, index) == SQLITE_NULL;
}

connection::connection() = default;

connection::~connection() {
  close();
}

connection::connection(connection&& other) noexcept
  : db_(std::exchange(other.db_, nullptr)), busy_(std::move(other.busy_)) {}

connection& connection::operator=(connection&& other) noexcept {
  if (this != &other) {
    close();
    db_ = std::exchange(other.db_, nullptr);
    busy_ = std::move(other.busy_);
  }
  return *this;
}

void connection::close() {
  // Statements are finalized by their owners first; close_v2 defers the
  // close until the last one is gone rather than fail.
  if (db_ != nullptr)
    sqlite3_close_v2(std::exchange(db_, nullptr));
}

caf::error connection::open(const std::string& path, open_mode mode, bool create) {
  close();
  int flags = SQLITE_OPEN_NOMUTEX | SQLITE_OPEN_EXRESCODE;
  flags |= mode == open_mode::read_only ? SQLITE_OPEN_READONLY : SQLITE_OPEN_READWRITE;
  if (create)
    flags |= SQLITE_OPEN_CREATE;
  auto rc = sqlite3_open_v2(path.c_str(), &db_, flags, nullptr);
  if (rc != SQLITE_OK) {
    auto err = failure(db_, rc, "cannot open journal " + path);
    close();
    return err;
  }
  sqlite3_extended_result_codes(db_, 1);
  return {};
}

caf::error connection::exec(std::string_view sql, std::string_view context) {
  std::string text{sql};
  auto rc = sqlite3_exec(db_, text.c_str(), nullptr, nullptr, nullptr);
  if (rc != SQLITE_OK)
    return failure(db_, rc, context);
  return {};
}

caf::expected<int64_t> connection::query_int(std::string_view sql, std::string_view context) {
  sqlite3_stmt* stmt = nullptr;
  auto rc = sqlite3_prepare_v2(db_, sql.data(), static_cast<int>(sql.size()), &stmt, nullptr);
  if (rc != SQLITE_OK)
    return failure(db_, rc, context);
  rc = sqlite3_step(stmt);
  int64_t value = 0;
  if (rc == SQLITE_ROW)
    value = sqlite3_column_int64(stmt, 0);
  sqlite3_finalize(stmt);
  if (rc != SQLITE_ROW && rc != SQLITE_DONE)
    return failure(db_, rc, context);
  return value;
}

struct connection::busy_wait {
  std::chrono::milliseconds timeout;
  std::chrono::steady_clock::time_point started;

  // SQLite calls this while a lock is busy, with the number of calls so far
  // in this wait; returning 0 gives up (SQLITE_BUSY).
  static int retry(void* self, int calls) {
    auto& w = *static_cast<busy_wait*>(self);
    auto now = std::chrono::steady_clock::now();
    if (calls == 0)
      w.started = now;
    if (now - w.started >= w.timeout)
      return 0;
    auto pause = std::chrono::microseconds{std::min(1000, 100 * (calls + 1))};
    std::this_thread::sleep_for(pause);
    return 1;
  }
};

void connection::set_busy_timeout(uint32_t ms) {
  if (!busy_)
    busy_ = std::make_unique<busy_wait>();
  busy_->timeout = std::chrono::milliseconds{ms};
  sqlite3_busy_handler(db_, &busy_wait::retry, busy_.get());
}

bool connection::opened_read_only() const {
  return sqlite3_db_readonly(db_, "main") == 1;
}

bool connection::file_moved() const {
  int moved = 0;
  auto rc = sqlite3_file_control(db_, "main", SQLITE_FCNTL_HAS_MOVED, &moved);
  return rc == SQLITE_OK && moved != 0;
}

caf::expected<int64_t> connection::data_version() {
  return query_int("PRAGMA data_version", "reading the data version");
}

} // namespace wager::sqlite
