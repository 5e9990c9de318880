#pragma once

// Thin RAII over libpq: a connection, a query's result, parameters passed
// as text, and the mapping of PostgreSQL failures to Wager errors. Internal
// to persistence/ (public only so tools and tests in this layer reach the
// server the same way the journal does).
//
// Failures:
//   - the server cannot be reached, the connection broke, the server is
//     shutting down or starting: errc::unavailable (retry later; a node
//     answers 503 meanwhile);
//   - anything else the server refuses: errc::journal_failure, with the
//     server's message and SQLSTATE.

#include <caf/error.hpp>
#include <caf/expected.hpp>

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

struct pg_conn;
struct pg_result;

namespace wager::pg {

// A journal URL names PostgreSQL: postgresql:// or postgres://.
bool is_postgresql_url(std::string_view url) noexcept;

// The URL with any password in it (user:password@, or ?password=)
// replaced by "***", for messages and logs.
std::string redacted(std::string_view url);

// One parameter of a query, as text; nullopt is SQL NULL.
using param = std::optional<std::string>;

class result {
public:
  result() = default;
  explicit result(pg_result* r) noexcept : r_(r) {}
  ~result();
  result(result&& other) noexcept;
  result& operator=(result&& other) noexcept;
  result(const result&) = delete;
  result& operator=(const result&) = delete;

  int rows() const noexcept;
  bool is_null(int row, int col) const noexcept;
  std::string_view text(int row, int col) const noexcept;
  int64_t int64(int row, int col) const; // asserts a well-formed integer
  // Rows the command changed (INSERT, UPDATE, DELETE).
  uint64_t changed() const noexcept;
  // The SQLSTATE of a failed command, empty for success.
  std::string sqlstate() const;

  pg_result* get() const noexcept { return r_; }

private:
  pg_result* r_ = nullptr;
};

class connection {
public:
  connection() = default;
  ~connection();
  connection(connection&& other) noexcept;
  connection& operator=(connection&& other) noexcept;
  connection(const connection&) = delete;
  connection& operator=(const connection&) = delete;

  // Connects to `url` (a libpq connection URI), waiting at most
  // connect_timeout_s, and sets the session up for the journal:
  // synchronous_commit on (a commit returns once the server has flushed it,
  // whatever the server's default), UTC, and `application_name`.
  static caf::expected<connection> open(const std::string& url, const std::string& application_name,
                                        uint32_t connect_timeout_s);

  // Runs one statement without parameters (several, separated by ';', when
  // it has no results to read).
  caf::error exec(const std::string& sql, std::string_view context);
  // Runs statements without parameters, separated by ';', in one round trip
  // (the simple query protocol), and returns the rows of the last.
  caf::expected<result> query_script(const std::string& sql, std::string_view context);
  // Runs one statement with text parameters and returns its rows. A
  // statement the server refuses is an error (see above); so is a broken
  // connection. Each distinct statement is prepared on the connection the
  // first time it runs and executed by name after that, so the server
  // parses and plans it once per connection.
  caf::expected<result> query(const std::string& sql, const std::vector<param>& params,
                              std::string_view context);

  // `text` as a quoted SQL string literal, escaped for this connection.
  std::string literal(std::string_view text) const;

  // True while the connection is up (libpq's view: a broken socket shows
  // only once a command fails on it).
  bool usable() const noexcept;
  // True when no transaction is open.
  bool idle() const noexcept;
  // The SQLSTATE of the last failed command, empty after a success.
  const std::string& last_sqlstate() const noexcept { return last_state_; }

  pg_conn* get() const noexcept { return conn_; }

private:
  explicit connection(pg_conn* c) noexcept : conn_(c) {}
  caf::error failure(const result* r, std::string_view context) const;

  pg_conn* conn_ = nullptr;
  std::unordered_map<std::string, std::string> prepared_; // SQL -> statement name
  mutable std::string last_state_;
};

// Text forms of parameters.
inline param text(int64_t v) {
  return std::to_string(v);
}
inline param text(uint64_t v) {
  return std::to_string(static_cast<int64_t>(v)); // stored as bigint, bits kept
}

} // namespace wager::pg
