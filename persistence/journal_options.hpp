#pragma once

// Everything the SQLite journal is configured with. Each field states its
// default, its bounds (checked by validate() before the journal opens) and
// the trade-off it makes.

#include "wager/persistence/upcasting.hpp"

#include <caf/error.hpp>

#include <cstdint>
#include <memory>
#include <string>

namespace wager {

class metrics;
class shard_leases;

// How a journal file holds its history.
enum class journal_layout {
  // One row per event in (stream, seq) order, a row per stored request and
  // a row per stream: every append writes at random places in three
  // B-trees.
  rows,
  // The ordered log: one frame per group commit appended at the end
  // (log_frame.hpp), read through an in-memory index of each stream's
  // records rebuilt at open (log_journal.hpp).
  log,
};

struct journal_options {
  // The journal file, e.g. "<data-dir>/journal.db". Its directory must exist:
  // the journal never creates directories, so a mistyped data dir fails
  // loudly instead of starting an empty journal somewhere else.
  std::string path;
  // The journal on PostgreSQL instead (pg_journal.hpp): a libpq connection
  // URI, postgresql://user@host:port/db?sslmode=... Empty: the SQLite file
  // at `path`. open_journal (open_journal.hpp) picks the journal by it.
  std::string url;
  // PostgreSQL: how long opening a connection may take, in seconds
  // [1, 600]; beyond it the batch or read that needed it is unavailable.
  uint32_t connect_timeout_s = 5;
  // PostgreSQL: this node's shard leases (shard_leases.hpp), checked in
  // every batch's transaction; null (a single node) checks none. The
  // SQLite journal ignores it: nodes sharing one file are fenced by the
  // sequence check.
  std::shared_ptr<shard_leases> leases;

  // Create the file when it does not exist. A file that exists but is empty
  // is never taken as new: it is reported as corrupt (a truncated journal).
  bool create_if_missing = true;

  // The layout of a journal this opening creates. A file that exists keeps
  // the layout it was created with (a row-layout file is rewritten in the
  // log layout by upgrade_to_log_layout, `wagerctl upgrade`).
  journal_layout layout = journal_layout::log;

  // Group commit: the most appends one transaction takes [1, 65536].
  // Larger batches amortize the fsync further but make the appends at the
  // front of a batch wait for those at the back.
  uint32_t batch_max = 1024;

  // Group commit: how long the writer waits for more appends after the first
  // before it commits anyway, in microseconds [0, 100000]. 0 commits as soon
  // as the queue is empty: under load the batch still grows by itself while
  // the previous commit is fsyncing, and a lone appender pays no added wait.
  uint32_t batch_wait_us = 0;

  // Appends (and snapshot saves) waiting for the writer [1, 1048576]. A full
  // queue refuses new appends at once with errc::unavailable: load shedding,
  // so a slow disk shows up as refusals instead of unbounded memory.
  uint32_t queue_max = 65536;

  // Bounds on one append, checked before it is queued.
  uint32_t events_per_append_max = 1024;       // [1, 65536]
  uint32_t event_bytes_max = 1 << 20;          // payload bytes [64, 64 MiB]
  uint32_t request_result_bytes_max = 1 << 16; // stored result bytes [64, 16 MiB]
  uint32_t snapshot_bytes_max = 64 << 20;      // snapshot state bytes [64, 1 GiB]

  // How long a writer waits for another process holding the write lock,
  // in milliseconds [0, 600000]. Nodes on one host share the file; a batch
  // that cannot get the lock in this time fails with errc::unavailable.
  uint32_t busy_timeout_ms = 5000;

  // Threads serving asynchronous reads (recovery, lookups) [1, 16].
  uint32_t reader_threads = 2;

  // Read connections shared by the reader threads and synchronous callers
  // [reader_threads, 64]; a synchronous read waits for a free one.
  uint32_t read_connections_max = 4;

  // Asynchronous reads waiting for a reader thread [1, 1048576]; beyond it a
  // read is refused with errc::unavailable.
  uint32_t read_queue_max = 65536;

  // Most events one read returns [1, 1000000]; recovery pages through.
  uint32_t read_page_max = 4096;

  // Snapshot policy: snapshot an entity after this many events since its
  // last snapshot [1, 10000000]. Recovery replays at most this many events.
  uint32_t snapshot_every = 1000;

  // Idempotency retention: stored request results older than this are pruned,
  // in milliseconds; 0 keeps them forever. A client retries within seconds to
  // minutes of a crash; a week also covers an operator replaying a day's
  // failed requests. A request id reused after retention is a new request.
  uint64_t request_retention_ms = 7ull * 24 * 3600 * 1000;

  // How often the writer prunes expired request results, in milliseconds
  // [10, 3600000], and the most rows one prune pass deletes [1, 1000000], so
  // a prune never holds the write lock for long.
  uint32_t prune_interval_ms = 10000;
  uint32_t prune_rows_max = 10000;

  // The log layout: frames appended to the log (by any process) after which
  // the writer, between batches, saves its index as the file's checkpoint
  // (log_journal.hpp, save_index_checkpoint) [0, 1073741824], and no sooner
  // than 50 times as long as the last save took after it (a save holds up
  // the writer's batches: at most about 2% of its time); it saves one when
  // it closes too. A journal opening loads the checkpoint and reads
  // only the frames after it. 0 never saves one: every opening reads every
  // frame.
  uint32_t index_checkpoint_frames = 20000;

  // WAL pages after which a commit checkpoints the WAL into the main file
  // [100, 1000000]. Larger means fewer (but longer) checkpoints.
  uint32_t wal_autocheckpoint_pages = 4000;

  // The writer connection's page cache in KiB [2048, 4194304]. An append
  // touches B-tree pages at random places across every stream; pages the
  // cache misses are read back from the file inside the commit.
  uint32_t writer_cache_kib = 2048;

  // SQLite page size of a journal this opening creates: a power of two in
  // [512, 65536]. An existing file keeps the size it was created with.
  // Every append dirties a few pages at random places, each written whole
  // into the WAL at commit, so smaller pages write less per append.
  uint32_t page_size = 4096;

  // Streams whose failed pipeline the writer remembers (see journal.hpp,
  // "Pipelining") [1024, 16777216]. Beyond it the oldest entries are dropped.
  uint32_t fenced_streams_max = 65536;

  // Upcasters applied to every event read. Null: none.
  std::shared_ptr<const upcaster_registry> upcasters;

  // Registry for the journal's metrics; null: none recorded.
  metrics* metrics_registry = nullptr;
};

// An error (errc::invalid_field) naming the first field out of its bounds.
caf::error validate(const journal_options& options);

} // namespace wager
