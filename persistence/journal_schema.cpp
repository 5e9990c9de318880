#include "wager/persistence/journal_schema.hpp"

#include "wager/runtime/errors.hpp"

#include <sqlite3.h>

#include <cerrno>
#include <cstring>
#include <fcntl.h>
#include <filesystem>
#include <random>
#include <unistd.h>

namespace wager {

namespace {

namespace fs = std::filesystem;

// Schema version 1. Every table is WITHOUT ROWID: rows are found by their
// natural key, so the key is the row and there is no second b-tree.
// - streams: one row per stream, its last seq (the sequence check reads
//   one row) and its kind (listing entities of a kind never scans events).
// - events: the history; PRIMARY KEY (stream, seq) makes a second event at
//   one seq impossible whatever the code above does.
// - snapshots: the latest state per stream.
// - requests: first answers to requests, pruned by age (requests_by_age).
constexpr const char* schema_v1 = R"sql(
CREATE TABLE streams (
  stream   TEXT    NOT NULL PRIMARY KEY,
  kind     TEXT    NOT NULL,
  last_seq INTEGER NOT NULL
) WITHOUT ROWID;
CREATE INDEX streams_by_kind ON streams (kind, stream);
CREATE TABLE events (
  stream   TEXT    NOT NULL,
  seq      INTEGER NOT NULL,
  type     TEXT    NOT NULL,
  version  INTEGER NOT NULL,
  payload  TEXT    NOT NULL,
  at_ms    INTEGER NOT NULL,
  checksum INTEGER NOT NULL,
  PRIMARY KEY (stream, seq)
) WITHOUT ROWID;
CREATE TABLE snapshots (
  stream   TEXT    NOT NULL PRIMARY KEY,
  seq      INTEGER NOT NULL,
  version  INTEGER NOT NULL,
  state    TEXT    NOT NULL,
  at_ms    INTEGER NOT NULL,
  checksum INTEGER NOT NULL
) WITHOUT ROWID;
CREATE TABLE requests (
  stream     TEXT    NOT NULL,
  request_id TEXT    NOT NULL,
  seq        INTEGER NOT NULL,
  result     TEXT    NOT NULL,
  at_ms      INTEGER NOT NULL,
  checksum   INTEGER NOT NULL,
  PRIMARY KEY (stream, request_id)
) WITHOUT ROWID;
CREATE INDEX requests_by_age ON requests (at_ms);
)sql";

// Version 2: streams remember whether their entity has work left after its
// last append (a saga waiting for an answer, payouts not yet acknowledged),
// so a starting node finds those entities without reading every stream.
// Files from version 1 start with none marked.
constexpr const char* schema_v2 = R"sql(
ALTER TABLE streams ADD COLUMN open_work INTEGER NOT NULL DEFAULT 0;
CREATE INDEX streams_with_open_work ON streams (kind, stream) WHERE open_work <> 0;
)sql";

// Version 3: the ordered log (DESIGN.md, "Persistence"). One row per group
// commit: its position (the rowid, so every append lands at the right-hand
// edge of the B-tree), the frame (log_frame.hpp) and the frame's CRC32C. The
// layout row says which of the two layouts holds the file's history: "rows"
// (streams, events and requests, one row per event) or "log" (frames; the
// snapshots table serves both). Files from version 2 are "rows".
constexpr const char* schema_v3 = R"sql(
CREATE TABLE log (
  position INTEGER NOT NULL PRIMARY KEY,
  frame    BLOB    NOT NULL,
  crc      INTEGER NOT NULL
);
CREATE TABLE layout (
  id   INTEGER NOT NULL PRIMARY KEY CHECK (id = 1),
  name TEXT    NOT NULL CHECK (name IN ('rows', 'log'))
);
INSERT INTO layout (id, name) VALUES (1, 'rows');
)sql";

// Version 4: the log index checkpoint (log_journal.hpp): the in-memory index
// of the log layout as it stood at one frame, in parts, so start-up reads
// only the frames after it. Empty in the row layout.
constexpr const char* schema_v4 = R"sql(
CREATE TABLE index_checkpoint (
  part     INTEGER NOT NULL PRIMARY KEY,
  position INTEGER NOT NULL,
  data     BLOB    NOT NULL
);
)sql";

// migrations[v] brings a file from version v to v + 1. Version 0 is a file
// with no schema yet. Append here; never edit a shipped migration.
constexpr const char* migrations[] = {schema_v1, schema_v2, schema_v3, schema_v4};
static_assert(std::size(migrations) == journal_schema_version);

caf::error journal_error(const std::string& path, const std::string& what) {
  return make_error(errc::journal_failure, "journal " + path + ": " + what);
}

caf::error check_header(sqlite::connection& db, const std::string& path) {
  // The first read of the file: a file that is not SQLite fails here.
  auto tables = db.query_int("SELECT count(*) FROM sqlite_schema", "reading journal " + path);
  if (!tables)
    return tables.error();
  auto app_id = db.query_int("PRAGMA application_id", "reading journal " + path);
  if (!app_id)
    return app_id.error();
  if (*app_id != journal_application_id)
    return journal_error(path, "not a Wager journal (application_id " + std::to_string(*app_id) +
                                 ")");
  auto version = db.query_int("PRAGMA user_version", "reading journal " + path);
  if (!version)
    return version.error();
  if (*version > journal_schema_version)
    return journal_error(path, "schema version " + std::to_string(*version) +
                                 " is newer than this build supports (" +
                                 std::to_string(journal_schema_version) +
                                 "); run a release that knows it");
  return {};
}

caf::error migrate(sqlite::connection& db, const std::string& path) {
  auto version = db.query_int("PRAGMA user_version", "reading journal " + path);
  if (!version)
    return version.error();
  if (*version == journal_schema_version)
    return {};
  // Another process may be migrating too: take the write lock, then look
  // again, so exactly one of them runs each step.
  if (auto err = db.exec("BEGIN IMMEDIATE", "locking journal " + path + " to migrate"))
    return err;
  version = db.query_int("PRAGMA user_version", "reading journal " + path);
  caf::error err = version ? caf::error{} : version.error();
  for (auto v = version ? *version : journal_schema_version; !err && v < journal_schema_version;
       ++v) {
    err = db.exec(migrations[v], "migrating journal " + path + " from schema version " +
                                   std::to_string(v));
    if (!err)
      err = db.exec("PRAGMA user_version = " + std::to_string(v + 1), "migrating " + path);
  }
  if (err) {
    db.exec("ROLLBACK", "rolling back");
    return err;
  }
  return db.exec("COMMIT", "committing the migration of " + path);
}

// Builds a new journal beside the target and links it into place, so the
// target path never names a half-made file, and a second process creating
// the same journal at the same moment loses cleanly (link refuses to
// replace) and opens the winner's file.
caf::error create_journal(const std::string& path, uint32_t page_size, journal_layout layout) {
  std::random_device random;
  auto temp = path + ".creating-" + std::to_string(::getpid()) + "-" + std::to_string(random());
  auto remove_temp = [&] {
    std::error_code ec;
    for (auto suffix : {"", "-wal", "-shm", "-journal"})
      fs::remove(temp + suffix, ec);
  };
  caf::error err;
  {
    sqlite::connection db;
    err = db.open(temp, sqlite::open_mode::read_write, true);
    if (!err)
      err = db.exec("PRAGMA page_size = " + std::to_string(page_size) +
                      "; PRAGMA journal_mode = WAL; PRAGMA application_id = " +
                      std::to_string(journal_application_id),
                    "creating journal " + path);
    if (!err)
      err = migrate(db, path);
    if (!err && layout == journal_layout::log)
      err = db.exec("UPDATE layout SET name = 'log'", "creating journal " + path);
  }
  if (!err)
    err = sync_path(temp);
  if (!err && ::link(temp.c_str(), path.c_str()) != 0 && errno != EEXIST)
    err = journal_error(path, std::string{"cannot create: "} + std::strerror(errno));
  remove_temp();
  if (!err)
    err = sync_path(fs::path{path}.parent_path().string());
  return err;
}

caf::error configure(sqlite::connection& db, const journal_options& options, journal_role role) {
  db.set_busy_timeout(options.busy_timeout_ms);
  auto mode = db.query_int("SELECT journal_mode = 'wal' FROM pragma_journal_mode",
                           "reading the journal mode of " + options.path);
  if (!mode)
    return mode.error();
  if (*mode != 1)
    return journal_error(options.path, "not in WAL mode");
  if (role == journal_role::reader)
    return db.exec("PRAGMA query_only = 1", "configuring a reader of " + options.path);
  // FULL: in WAL mode NORMAL may lose the last commits on power loss, and an
  // acknowledged append must survive that. journal_size_limit trims the WAL
  // back after a checkpoint so one burst does not keep it large.
  return db.exec("PRAGMA synchronous = FULL; PRAGMA journal_size_limit = 67108864; "
                 "PRAGMA wal_autocheckpoint = " +
                   std::to_string(options.wal_autocheckpoint_pages) +
                   "; PRAGMA cache_size = -" + std::to_string(options.writer_cache_kib),
                 "configuring the writer of " + options.path);
}

} // namespace

caf::error sync_path(const std::string& path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0)
    return journal_error(path, std::string{"cannot open to sync: "} + std::strerror(errno));
  int rc = ::fsync(fd);
  int saved = errno;
  ::close(fd);
  if (rc != 0)
    return journal_error(path, std::string{"fsync failed: "} + std::strerror(saved));
  return {};
}

caf::expected<sqlite::connection> open_journal_file(const journal_options& options,
                                                    journal_role role) {
  const auto& path = options.path;
  auto dir = fs::path{path}.parent_path();
  std::error_code ec;
  if (!dir.empty() && !fs::is_directory(dir, ec))
    return journal_error(path, "directory " + dir.string() + " does not exist");
  if (!fs::exists(path, ec)) {
    if (!options.create_if_missing || role == journal_role::reader)
      return journal_error(path, "file does not exist");
    if (auto err = create_journal(path, options.page_size, options.layout))
      return err;
  }
  if (fs::file_size(path, ec) == 0 && !ec)
    return journal_error(path, "file is empty (truncated?)");
  sqlite::connection db;
  if (auto err = db.open(path, sqlite::open_mode::read_write))
    return err;
  if (db.opened_read_only())
    return journal_error(path, "file is read-only");
  // Before the first read: a connection opening while another checkpoints
  // or recovers the WAL waits for it rather than failing with SQLITE_BUSY.
  db.set_busy_timeout(options.busy_timeout_ms);
  if (auto err = check_header(db, path))
    return err;
  if (auto err = configure(db, options, role))
    return err;
  if (role == journal_role::writer)
    if (auto err = migrate(db, path))
      return err;
  return db;
}

caf::expected<journal_layout> layout_of(sqlite::connection& db, const std::string& path) {
  auto version = db.query_int("PRAGMA user_version", "reading journal " + path);
  if (!version)
    return version.error();
  if (*version < 3)
    return journal_layout::rows;
  auto is_log = db.query_int("SELECT name = 'log' FROM layout WHERE id = 1",
                             "reading the layout of journal " + path);
  if (!is_log)
    return is_log.error();
  return *is_log != 0 ? journal_layout::log : journal_layout::rows;
}

caf::expected<sqlite::connection> open_journal_for_inspection(const std::string& path) {
  std::error_code ec;
  if (!fs::exists(path, ec))
    return journal_error(path, "file does not exist");
  if (fs::file_size(path, ec) == 0 && !ec)
    return journal_error(path, "file is empty (truncated?)");
  sqlite::connection db;
  if (auto err = db.open(path, sqlite::open_mode::read_write))
    return err;
  db.set_busy_timeout(5000);
  if (auto err = check_header(db, path))
    return err;
  if (auto err = db.exec("PRAGMA query_only = 1", "opening " + path))
    return err;
  return db;
}

} // namespace wager
