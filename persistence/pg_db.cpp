#include "wager/persistence/pg_db.hpp"

#include "wager/runtime/errors.hpp"

#include <libpq-fe.h>

#include <cassert>
#include <charconv>

namespace wager::pg {

namespace {

// libpq's messages end in a newline and may span lines ("...\n\tIs the
// server running..."): one line, for logs and a node's one-line refusal.
std::string one_line(std::string text) {
  std::string out;
  out.reserve(text.size());
  bool space = false;
  for (char c : text) {
    if (c == '\n' || c == '\t' || c == '\r' || c == ' ') {
      space = !out.empty();
      continue;
    }
    if (space)
      out += ' ';
    space = false;
    out += c;
  }
  return out;
}

} // namespace

bool is_postgresql_url(std::string_view url) noexcept {
  return url.starts_with("postgresql://") || url.starts_with("postgres://");
}

namespace {

// The value of a "password=" parameter in the URL's query, masked.
std::string mask_query_password(std::string text) {
  for (auto at = text.find("password="); at != std::string::npos;
       at = text.find("password=", at + 1)) {
    if (at > 0 && text[at - 1] != '?' && text[at - 1] != '&')
      continue;
    auto from = at + 9;
    auto to = text.find('&', from);
    text.replace(from, (to == std::string::npos ? text.size() : to) - from, "***");
  }
  return text;
}

std::string userinfo_redacted(std::string_view url);

} // namespace

std::string redacted(std::string_view url) {
  return mask_query_password(userinfo_redacted(url));
}

namespace {

std::string userinfo_redacted(std::string_view url) {
  // scheme://user:password@host...: the password is between the first ':'
  // after the scheme and the '@' that ends the user part.
  auto scheme = url.find("://");
  if (scheme == std::string_view::npos)
    return std::string{url};
  auto rest = url.substr(scheme + 3);
  auto at = rest.find('@');
  auto slash = rest.find('/');
  if (at == std::string_view::npos || (slash != std::string_view::npos && slash < at))
    return std::string{url};
  auto colon = rest.substr(0, at).find(':');
  std::string out{url.substr(0, scheme + 3)};
  if (colon == std::string_view::npos)
    return std::string{url};
  out += rest.substr(0, colon);
  out += ":***";
  out += rest.substr(at);
  return out;
}

} // namespace

result::~result() {
  if (r_ != nullptr)
    PQclear(r_);
}

result::result(result&& other) noexcept : r_(other.r_) {
  other.r_ = nullptr;
}

result& result::operator=(result&& other) noexcept {
  if (this != &other) {
    if (r_ != nullptr)
      PQclear(r_);
    r_ = other.r_;
    other.r_ = nullptr;
  }
  return *this;
}

int result::rows() const noexcept {
  return r_ == nullptr ? 0 : PQntuples(r_);
}

bool result::is_null(int row, int col) const noexcept {
  return PQgetisnull(r_, row, col) != 0;
}

std::string_view result::text(int row, int col) const noexcept {
  return {PQgetvalue(r_, row, col), static_cast<size_t>(PQgetlength(r_, row, col))};
}

int64_t result::int64(int row, int col) const {
  auto t = text(row, col);
  int64_t v = 0;
  auto [end, ec] = std::from_chars(t.data(), t.data() + t.size(), v);
  assert(ec == std::errc{} && end == t.data() + t.size());
  (void)end;
  (void)ec;
  return v;
}

uint64_t result::changed() const noexcept {
  auto t = std::string_view{PQcmdTuples(r_)};
  uint64_t v = 0;
  std::from_chars(t.data(), t.data() + t.size(), v);
  return v;
}

std::string result::sqlstate() const {
  if (r_ == nullptr)
    return {};
  auto* s = PQresultErrorField(r_, PG_DIAG_SQLSTATE);
  return s == nullptr ? std::string{} : std::string{s};
}

connection::~connection() {
  if (conn_ != nullptr)
    PQfinish(conn_);
}

connection::connection(connection&& other) noexcept
  : conn_(other.conn_), prepared_(std::move(other.prepared_)) {
  other.conn_ = nullptr;
  other.prepared_.clear();
}

connection& connection::operator=(connection&& other) noexcept {
  if (this != &other) {
    if (conn_ != nullptr)
      PQfinish(conn_);
    conn_ = other.conn_;
    prepared_ = std::move(other.prepared_);
    other.conn_ = nullptr;
    other.prepared_.clear();
  }
  return *this;
}

caf::expected<connection> connection::open(const std::string& url,
                                           const std::string& application_name,
                                           uint32_t connect_timeout_s) {
  auto timeout = std::to_string(connect_timeout_s);
  // The URL first (expand_dbname: the first "dbname" value is parsed as a
  // connection string), then what it may not override. Session settings go
  // after the connection opens, so that the URL's own `options` (a
  // search_path, say) stay in force.
  // TCP keepalives and a send timeout come first, so the URL may change
  // them: a peer that vanished (a host lost, a NAT that dropped the flow)
  // is noticed within about 30 s instead of the kernel's two hours.
  const char* keys[] = {"keepalives",     "keepalives_idle", "keepalives_interval",
                        "keepalives_count", "tcp_user_timeout", "dbname",
                        "connect_timeout",  "application_name", nullptr};
  const char* values[] = {"1",   "10",          "5",             "3",
                          "30000", url.c_str(), timeout.c_str(), application_name.c_str(),
                          nullptr};
  connection c{PQconnectdbParams(keys, values, 1)};
  if (c.conn_ == nullptr)
    return make_error(errc::unavailable, "cannot connect to PostgreSQL at " + redacted(url) +
                                           ": out of memory");
  if (PQstatus(c.conn_) != CONNECTION_OK) {
    auto why = one_line(PQerrorMessage(c.conn_));
    // A malformed URL is the caller's mistake, not an outage.
    bool malformed = why.find("invalid") != std::string::npos &&
                     why.find("URI") != std::string::npos;
    return make_error(malformed ? errc::invalid_field : errc::unavailable,
                      "cannot connect to PostgreSQL at " + redacted(url) + ": " + why);
  }
  // Also what this code's SQL text and parsing assume, whatever the
  // server's or the role's defaults: standard strings ('\x..' is bytea
  // hex), hex bytea output, UTF-8, READ COMMITTED.
  if (auto err = c.exec("SET synchronous_commit = on; SET TimeZone = 'UTC'; "
                        "SET client_min_messages = warning; "
                        "SET standard_conforming_strings = on; SET bytea_output = 'hex'; "
                        "SET client_encoding = 'UTF8'; "
                        "SET default_transaction_isolation = 'read committed'",
                        "setting up a connection to " + redacted(url)))
    return err;
  return c;
}

std::string connection::literal(std::string_view text) const {
  char* quoted = conn_ == nullptr ? nullptr : PQescapeLiteral(conn_, text.data(), text.size());
  if (quoted == nullptr) {
    // No connection to escape for: standard_conforming_strings is on for
    // every session this code opens, so doubling the quotes is the escape.
    std::string out = "'";
    for (char c : text)
      out += c == '\'' ? std::string{"''"} : std::string(1, c);
    return out + "'";
  }
  std::string out{quoted};
  PQfreemem(quoted);
  return out;
}

bool connection::usable() const noexcept {
  return conn_ != nullptr && PQstatus(conn_) == CONNECTION_OK;
}

bool connection::idle() const noexcept {
  return conn_ != nullptr && PQtransactionStatus(conn_) == PQTRANS_IDLE;
}

caf::error connection::failure(const result* r, std::string_view context) const {
  std::string why;
  std::string state;
  if (r != nullptr && r->get() != nullptr) {
    why = PQresultErrorMessage(r->get());
    state = r->sqlstate();
  }
  if (why.empty() && conn_ != nullptr)
    why = PQerrorMessage(conn_);
  why = one_line(std::move(why));
  // Class 08: connection exceptions; 57P: operator intervention (the server
  // shutting down, starting, or the connection terminated); 53: out of
  // resources (too many connections). Each passes: retry.
  // 55P03: a lock not granted within lock_timeout (another node's batch
  // holds the journal's head); 40001 and 40P01: a serialization failure or
  // a deadlock, for which the server rolled the transaction back.
  bool outage = !usable() || state.starts_with("08") || state.starts_with("57P") ||
                state.starts_with("53") || state == "55P03" || state == "40001" ||
                state == "40P01";
  last_state_ = state;
  auto message = std::string{context} + ": " + why;
  if (!state.empty())
    message += " (SQLSTATE " + state + ")";
  return make_error(outage ? errc::unavailable : errc::journal_failure, std::move(message));
}

caf::error connection::exec(const std::string& sql, std::string_view context) {
  if (conn_ == nullptr)
    return make_error(errc::unavailable, std::string{context} + ": not connected");
  result r{PQexec(conn_, sql.c_str())};
  auto status = PQresultStatus(r.get());
  if (status == PGRES_COMMAND_OK || status == PGRES_TUPLES_OK)
    return {};
  return failure(&r, context);
}

caf::expected<result> connection::query_script(const std::string& sql, std::string_view context) {
  if (conn_ == nullptr)
    return make_error(errc::unavailable, std::string{context} + ": not connected");
  result r{PQexec(conn_, sql.c_str())};
  auto status = PQresultStatus(r.get());
  if (status == PGRES_COMMAND_OK || status == PGRES_TUPLES_OK)
    return r;
  return failure(&r, context);
}

caf::expected<result> connection::query(const std::string& sql, const std::vector<param>& params,
                                         std::string_view context) {
  if (conn_ == nullptr)
    return make_error(errc::unavailable, std::string{context} + ": not connected");
  last_state_.clear();
  auto known = prepared_.find(sql);
  if (known == prepared_.end()) {
    auto name = "w" + std::to_string(prepared_.size());
    result p{PQprepare(conn_, name.c_str(), sql.c_str(), static_cast<int>(params.size()),
                       nullptr)};
    if (PQresultStatus(p.get()) != PGRES_COMMAND_OK)
      return failure(&p, context);
    known = prepared_.emplace(sql, std::move(name)).first;
  }
  std::vector<const char*> values;
  values.reserve(params.size());
  for (auto& p : params)
    values.push_back(p ? p->c_str() : nullptr);
  result r{PQexecPrepared(conn_, known->second.c_str(), static_cast<int>(values.size()),
                          values.data(), nullptr, nullptr, 0)};
  // 26000: the server no longer knows the statement (a pooler between, a
  // DISCARD ALL): prepare everything again from the next query on.
  if (r.sqlstate() == "26000")
    prepared_.clear();
  auto status = PQresultStatus(r.get());
  if (status == PGRES_COMMAND_OK || status == PGRES_TUPLES_OK)
    return r;
  return failure(&r, context);
}

} // namespace wager::pg
