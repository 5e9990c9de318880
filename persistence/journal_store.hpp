#pragma once

// Where the journal writer's batches go (journal_writer.hpp): the storage
// half of the writer, one per layout (journal_options.hpp). The writer
// keeps the queue, the batches, the fences of failed pipelines and the
// answers; a store keeps the file. Internal to persistence/.
//
// A batch attempt is begin(), then reads and writes in queue order, each
// seeing the writes before it, then commit() or rollback(). Nothing a store
// writes is visible to anyone (readers of this process included) before
// commit() returns, and nothing of an attempt survives rollback().

#include "wager/persistence/journal.hpp"
#include "wager/persistence/journal_options.hpp"
#include "wager/persistence/sqlite_db.hpp"

#include <caf/error.hpp>
#include <caf/expected.hpp>

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace wager {

class journal_store {
public:
  // What a write did inside the transaction:
  //   ok             - written;
  //   request_taken  - its request id is stored for the stream already;
  //                    nothing written;
  //   op_failed      - this write's own data failed after writing part of
  //                    itself: roll back and retry the batch without it;
  //   storage_failed - the file or the disk failed: the batch fails.
  enum class result { ok, request_taken, op_failed, storage_failed };

  virtual ~journal_store() = default;

  // Takes the write lock and starts the batch's transaction: errc::unavailable
  // when another process holds the lock beyond busy_timeout_ms,
  // errc::journal_failure when the file fails.
  virtual caf::error begin() = 0;

  // Once per attempt, after begin(): the streams the batch's appends and
  // snapshots write. A store that fences writers by shard leases (the journal on
  // PostgreSQL) checks here, in the batch's transaction, that this node may
  // write each, taking leases where it may, and says which it may not
  // through refused(). An error fails the batch.
  virtual caf::error admit(const std::vector<const std::string*>& streams) {
    (void)streams;
    return {};
  }

  // Why this node may not write `stream` in this attempt (errc::unavailable
  // for its append or snapshot); empty when it may.
  virtual std::string refused(const std::string& stream) const {
    (void)stream;
    return {};
  }

  // The stream's last seq, 0 for a stream with no events.
  virtual caf::expected<uint64_t> last_seq(const std::string& stream) = 0;

  // The row checksum (event.hpp) of the event at (stream, seq); none if
  // there is no such event.
  virtual caf::expected<std::optional<uint64_t>> event_checksum(const std::string& stream,
                                                                uint64_t seq) = 0;

  // Writes an append whose checks have passed (its expected_seq is the
  // stream's last seq), its events stamped at_ms. On op_failed and
  // storage_failed, `error` says why.
  virtual result write_append(const append_request& request, int64_t at_ms,
                              caf::error& error) = 0;

  // The seq of the stream's stored snapshot; none if it has none.
  virtual caf::expected<std::optional<uint64_t>> snapshot_seq(const std::string& stream) = 0;

  virtual result write_snapshot(const snapshot& snap, int64_t at_ms, caf::error& error) = 0;

  // Commits the transaction, durably. `writes` is for messages.
  virtual caf::error commit(size_t writes) = 0;

  // Drops the transaction and everything the attempt wrote.
  virtual void rollback() = 0;

  // Forgets at most max_count stored request results answered before
  // cutoff_ms, outside any batch. Returns how many it forgot.
  virtual caf::expected<uint64_t> prune_requests(int64_t cutoff_ms, uint32_t max_count) = 0;

  // Work between batches, outside any transaction: after each batch, and
  // once more when the writer stops (`closing`). The log layout saves its
  // index checkpoint here. Failures are the store's to log: nothing
  // answered depends on it.
  virtual void between_batches(bool closing) { (void)closing; }
};

// --- shared by the SQLite stores ---

// BEGIN IMMEDIATE on `begin`: errc::unavailable when the write lock stays
// held elsewhere beyond busy_timeout_ms; errc::journal_failure when the file
// was deleted or replaced while open.
caf::error begin_batch(sqlite::connection& db, sqlite::statement& begin,
                       const journal_options& options);

// COMMIT on `commit`, refused when the file was moved away meanwhile (a
// restart would not see the commit, so it is not acknowledged).
caf::error commit_batch(sqlite::connection& db, sqlite::statement& commit,
                        const std::string& path, size_t writes);

// The snapshots table, the same in both layouts: the upsert's SQL, and one
// row written with its checksum.
extern const char* const upsert_snapshot_sql;
journal_store::result write_snapshot_row(sqlite::connection& db, sqlite::statement& upsert,
                                         const snapshot& snap, int64_t at_ms,
                                         caf::error& error);

// The row layout's store: one row per event, per stream and per stored
// request, on the writer connection `db`.
std::unique_ptr<journal_store> make_row_store(sqlite::connection db,
                                              const journal_options& options);

} // namespace wager
