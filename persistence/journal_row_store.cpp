// The row layout's store (journal_store.hpp): streams, events and requests,
// one row each, written at their places in three B-trees.

#include "wager/persistence/journal_store.hpp"
#include "wager/runtime/errors.hpp"

#include <sqlite3.h>

#include <unordered_map>

namespace wager {

namespace {

// The seq cache is dropped whole when it outgrows this: a miss costs one
// indexed read, so a simple bound beats bookkeeping for an LRU.
constexpr size_t seq_cache_max = 1 << 18;

int64_t as_int(uint64_t value) {
  return static_cast<int64_t>(value);
}

class row_store final : public journal_store {
public:
  row_store(sqlite::connection db, const journal_options& options)
    : options_(options), db_(std::move(db)), sql_(std::make_unique<statements>(db_.get())) {}

  ~row_store() override { sql_.reset(); } // statements before their connection

  caf::error begin() override {
    if (auto err = begin_batch(db_, sql_->begin, options_))
      return err;
    sqlite::reset_on_exit reset{sql_->data_version};
    auto rc = sql_->data_version.step();
    if (rc != SQLITE_ROW)
      return sqlite::failure(db_.get(), rc, "reading the journal's data version");
    // Another connection committed since our last transaction: the seqs we
    // cached may be stale.
    auto version = sql_->data_version.column_int(0);
    if (version != seq_cache_version_ || seq_cache_.size() > seq_cache_max) {
      seq_cache_.clear();
      seq_cache_version_ = version;
    }
    return {};
  }

  caf::expected<uint64_t> last_seq(const std::string& stream) override {
    if (auto i = seq_cache_.find(stream); i != seq_cache_.end())
      return i->second;
    auto& st = sql_->last_seq;
    sqlite::reset_on_exit reset{st};
    st.bind(1, stream);
    auto rc = st.step();
    if (rc == SQLITE_ROW) {
      auto seq = static_cast<uint64_t>(st.column_int(0));
      seq_cache_.emplace(stream, seq);
      return seq;
    }
    if (rc == SQLITE_DONE)
      return uint64_t{0};
    return sqlite::failure(db_.get(), rc, "reading the last seq of " + stream);
  }

  caf::expected<std::optional<uint64_t>> event_checksum(const std::string& stream,
                                                        uint64_t seq) override {
    auto& st = sql_->event_checksum;
    sqlite::reset_on_exit reset{st};
    st.bind(1, stream).bind(2, as_int(seq));
    auto rc = st.step();
    if (rc == SQLITE_ROW)
      return std::optional<uint64_t>{static_cast<uint64_t>(st.column_int(0))};
    if (rc == SQLITE_DONE)
      return std::optional<uint64_t>{};
    return sqlite::failure(db_.get(), rc,
                           "reading event " + std::to_string(seq) + " of " + stream);
  }

  result write_append(const append_request& r, int64_t at_ms, caf::error& error) override {
    auto last = r.expected_seq + r.events.size();
    if (r.request) {
      // First write of the append: if the id is taken, nothing is written yet.
      auto& st = sql_->insert_request;
      sqlite::reset_on_exit reset{st};
      auto sum = row_checksum(r.stream, last, r.request->request_id, 0, r.request->result);
      st.bind(1, r.stream).bind(2, r.request->request_id).bind(3, as_int(last));
      st.bind(4, r.request->result).bind(5, at_ms).bind(6, as_int(sum));
      auto rc = st.step();
      if (rc == SQLITE_CONSTRAINT_PRIMARYKEY)
        return result::request_taken;
      if (rc != SQLITE_DONE)
        return failed(rc, "storing request " + r.request->request_id, error);
    }
    auto seq = r.expected_seq;
    for (auto& e : r.events) {
      ++seq;
      auto& st = sql_->insert_event;
      sqlite::reset_on_exit reset{st};
      auto sum = row_checksum(r.stream, seq, e.type, e.version, e.payload);
      st.bind(1, r.stream).bind(2, as_int(seq)).bind(3, e.type).bind(4, int64_t{e.version});
      st.bind(5, e.payload).bind(6, at_ms).bind(7, as_int(sum));
      if (auto rc = st.step(); rc != SQLITE_DONE)
        return failed(rc, "writing event " + std::to_string(seq) + " of " + r.stream, error);
    }
    if (!r.events.empty()) {
      auto& st = sql_->upsert_stream;
      sqlite::reset_on_exit reset{st};
      st.bind(1, r.stream).bind(2, kind_of(r.stream)).bind(3, as_int(last));
      if (r.open_work)
        st.bind(4, int64_t{*r.open_work ? 1 : 0}); // unbound: NULL, the mark stays
      if (auto rc = st.step(); rc != SQLITE_DONE)
        return failed(rc, "advancing stream " + r.stream, error);
      seq_cache_[r.stream] = last;
    }
    return result::ok;
  }

  caf::expected<std::optional<uint64_t>> snapshot_seq(const std::string& stream) override {
    auto& st = sql_->snapshot_seq;
    sqlite::reset_on_exit reset{st};
    st.bind(1, stream);
    auto rc = st.step();
    if (rc == SQLITE_ROW)
      return std::optional<uint64_t>{static_cast<uint64_t>(st.column_int(0))};
    if (rc == SQLITE_DONE)
      return std::optional<uint64_t>{};
    return sqlite::failure(db_.get(), rc, "reading the snapshot of " + stream);
  }

  result write_snapshot(const snapshot& snap, int64_t at_ms, caf::error& error) override {
    return write_snapshot_row(db_, sql_->upsert_snapshot, snap, at_ms, error);
  }

  caf::error commit(size_t writes) override {
    return commit_batch(db_, sql_->commit, options_.path, writes);
  }

  void rollback() override {
    if (sqlite3_get_autocommit(db_.get()) == 0)
      db_.exec("ROLLBACK", "rolling back a journal batch");
    // Rows this attempt wrote are gone, and seqs it cached with them.
    seq_cache_.clear();
  }

  caf::expected<uint64_t> prune_requests(int64_t cutoff_ms, uint32_t max_count) override {
    auto err = db_.exec("BEGIN IMMEDIATE", "starting a prune of stored requests");
    int changes = 0;
    if (!err) {
      auto& st = sql_->prune;
      sqlite::reset_on_exit reset{st};
      st.bind(1, cutoff_ms).bind(2, int64_t{max_count});
      auto rc = st.step();
      if (rc != SQLITE_DONE)
        err = sqlite::failure(db_.get(), rc, "pruning stored requests");
      changes = sqlite3_changes(db_.get());
    }
    if (!err)
      err = db_.exec("COMMIT", "committing a prune of stored requests");
    if (err) {
      rollback();
      return err;
    }
    return static_cast<uint64_t>(changes);
  }

private:
  struct statements {
    explicit statements(sqlite3* db)
      : begin(db, "BEGIN IMMEDIATE"),
        commit(db, "COMMIT"),
        data_version(db, "PRAGMA data_version"),
        last_seq(db, "SELECT last_seq FROM streams WHERE stream = ?1"),
        insert_event(db, "INSERT INTO events (stream, seq, type, version, payload, at_ms, "
                         "checksum) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)"),
        upsert_stream(db, "INSERT INTO streams (stream, kind, last_seq, open_work) "
                          "VALUES (?1, ?2, ?3, coalesce(?4, 0)) ON CONFLICT (stream) DO UPDATE "
                          "SET last_seq = excluded.last_seq, open_work = coalesce(?4, open_work)"),
        insert_request(db, "INSERT INTO requests (stream, request_id, seq, result, at_ms, "
                           "checksum) VALUES (?1, ?2, ?3, ?4, ?5, ?6)"),
        event_checksum(db, "SELECT checksum FROM events WHERE stream = ?1 AND seq = ?2"),
        snapshot_seq(db, "SELECT seq FROM snapshots WHERE stream = ?1"),
        upsert_snapshot(db, upsert_snapshot_sql),
        prune(db, "DELETE FROM requests WHERE (stream, request_id) IN (SELECT stream, "
                  "request_id FROM requests WHERE at_ms < ?1 ORDER BY at_ms LIMIT ?2)") {}
    sqlite::statement begin, commit, data_version, last_seq, insert_event, upsert_stream,
      insert_request, event_checksum, snapshot_seq, upsert_snapshot, prune;
  };

  result failed(int rc, const std::string& context, caf::error& error) {
    error = sqlite::failure(db_.get(), rc, context);
    // A constraint or data problem of this one write (the file disagrees
    // with itself, e.g. an event row beyond the stream's last seq) fails
    // only this write; the others are retried without it.
    return sqlite::is_storage_error(rc) ? result::storage_failed : result::op_failed;
  }

  const journal_options& options_;
  sqlite::connection db_;
  std::unique_ptr<statements> sql_;
  // Last seq per stream, trusted only while no other connection has
  // committed (PRAGMA data_version unchanged): saves a read per append.
  std::unordered_map<std::string, uint64_t> seq_cache_;
  int64_t seq_cache_version_ = -1;
};

} // namespace

const char* const upsert_snapshot_sql =
  "INSERT INTO snapshots (stream, seq, version, state, at_ms, checksum) "
  "VALUES (?1, ?2, ?3, ?4, ?5, ?6) ON CONFLICT (stream) DO UPDATE SET "
  "seq = excluded.seq, version = excluded.version, state = excluded.state, "
  "at_ms = excluded.at_ms, checksum = excluded.checksum";

journal_store::result write_snapshot_row(sqlite::connection& db, sqlite::statement& st,
                                         const snapshot& snap, int64_t at_ms,
                                         caf::error& error) {
  sqlite::reset_on_exit reset{st};
  auto sum = row_checksum(snap.stream, snap.seq, "snapshot", snap.version, snap.state);
  st.bind(1, snap.stream).bind(2, as_int(snap.seq)).bind(3, int64_t{snap.version});
  st.bind(4, snap.state).bind(5, at_ms).bind(6, as_int(sum));
  if (auto rc = st.step(); rc != SQLITE_DONE) {
    error = sqlite::failure(db.get(), rc, "saving the snapshot of " + snap.stream);
    return sqlite::is_storage_error(rc) ? journal_store::result::storage_failed
                                        : journal_store::result::op_failed;
  }
  return journal_store::result::ok;
}

caf::error begin_batch(sqlite::connection& db, sqlite::statement& begin,
                       const journal_options& options) {
  if (db.file_moved())
    return make_error(errc::journal_failure,
                      "journal " + options.path + " was deleted or replaced while open; reopen it");
  sqlite::reset_on_exit reset{begin};
  auto rc = begin.step();
  if (rc == SQLITE_BUSY)
    return make_error(errc::unavailable, "journal " + options.path +
                                           " write lock held elsewhere for " +
                                           std::to_string(options.busy_timeout_ms) + " ms");
  if (rc != SQLITE_DONE)
    return sqlite::failure(db.get(), rc, "starting a journal transaction");
  return {};
}

caf::error commit_batch(sqlite::connection& db, sqlite::statement& commit,
                        const std::string& path, size_t writes) {
  int rc;
  {
    sqlite::reset_on_exit reset{commit};
    rc = commit.step();
  }
  if (rc != SQLITE_DONE)
    return sqlite::failure(db.get(), rc, "committing a batch of " + std::to_string(writes) +
                                           " journal writes");
  // Committed, but into a file no longer reachable by its name: a restart
  // would not see it, so it is not acknowledged.
  if (db.file_moved())
    return make_error(errc::journal_failure,
                      "journal " + path +
                        " was deleted or replaced while a batch was written; reopen it");
  return {};
}

std::unique_ptr<journal_store> make_row_store(sqlite::connection db,
                                              const journal_options& options) {
  return std::make_unique<row_store>(std::move(db), options);
}

} // namespace wager
