#pragma once

// The journal: every entity's history of events, its latest snapshot and the
// first answers to its requests. This is the whole interface the platform
// uses, narrow enough that a networked journal (PostgreSQL, for clusters
// spanning hosts) can implement it beside the embedded SQLite one
// (sqlite_journal.hpp).
//
// Writes. append() queues an append and returns at once; `done` runs once,
// when the append is durable (fsync'd) or has failed, on the journal's writer
// thread. An append is all or nothing: it fails writing nothing when
//   - the stream's last seq is not `expected_seq` (errc::sequence_conflict):
//     another writer (another copy of the entity, another node) got there
//     first; this is what fences two copies of one entity;
//   - its request id is already stored for the stream
//     (errc::request_id_reused): look the first answer up with find_request;
//   - the disk refused the write (errc::journal_failure): not acknowledged.
//     When it was the fsync itself that failed, the disk may still have kept
//     the events and they may surface after a restart; that is why money
//     commands carry request ids: a retry with the same id then fails with
//     request_id_reused and the first answer is found with find_request.
//   - an event it builds on (`after`) is not in the journal
//     (errc::sequence_conflict);
//   - the writer is busy beyond busy_timeout_ms or its queue is full
//     (errc::unavailable): retry later.
//
// Pipelining. A caller may have several appends of one stream in flight,
// each chained on the previous (expected_seq = previous expected_seq + its
// event count). They are committed in the order they were queued and
// answered in that order. When one fails, the stream is fenced: every later
// append of it already queued when the failure was answered fails too, and
// so does every later append that chains on the failed one (its
// expected_seq is where the failed one would have ended), even if another
// writer's events happen to end at that very seq: those are not the events
// the caller built on. A caller that has re-read the stream (recovery, or
// after a conflict) says so with `from_read`: such an append is checked
// against the stream as it is, and once one succeeds the fence is lifted.
//
// Reads. The synchronous reads run on the caller's thread with a pooled
// read connection: for tools, tests and reader threads. Actors use the
// *_async forms, which run the read on a reader thread and call back there
// (journal_reply.hpp turns a callback into a message). Every row read is
// checked (checksum, contiguous seqs) and upcast before it is returned.

#include "wager/persistence/event.hpp"
#include "wager/runtime/message_types.hpp"

#include <caf/error.hpp>
#include <caf/expected.hpp>

#include <array>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace wager {

// A result handed to a callback.
template <class T>
using result_callback = std::function<void(caf::expected<T>)>;

// The first answer to a request, stored in the same transaction as the
// events it produced.
struct request_record {
  std::string request_id; // at most request_id_bytes_max bytes
  std::string result;     // serialized JSON

  friend bool operator==(const request_record&, const request_record&) = default;
};

// One event, named by its place and its content: stream, seq and the row
// checksum of what it holds (row_checksum). An append may build on events of
// other streams that are still in flight (append_request::after).
struct event_position {
  std::string stream;
  uint64_t seq = 0;
  uint64_t checksum = 0;
};

// The position of `e` once stored at (stream, seq).
event_position position_of(const std::string& stream, uint64_t seq, const event& e);

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, event_position& x) {
  return f(x.stream, x.seq, x.checksum);
}

struct append_request {
  std::string stream;                    // "kind/key"
  uint64_t expected_seq = 0;             // the stream's last seq as the caller
                                         // knows it; 0 for a new stream
  std::vector<event> events;             // may be empty only with a request
  std::optional<request_record> request; // idempotency record, optional
  // expected_seq was read from the journal (recovery, a re-read after a
  // conflict), not derived from an earlier append still in flight. False is
  // the safe default: at worst an append after a re-read fails once more.
  bool from_read = false;
  // The events' timestamp (ms since the epoch) as the caller applied them,
  // so state rebuilt from the journal equals the state the caller answered
  // from. 0: the journal stamps the append with its own clock.
  int64_t at_ms = 0;
  // Whether the entity has work left once these events are applied (an
  // open saga, unacknowledged payouts); list_open_streams finds such
  // streams after a restart. Unset: the stream's mark stays as it was.
  std::optional<bool> open_work;
  // Events of other streams this append builds on, each of which must be in
  // the journal when it commits: written by an earlier batch, or earlier in
  // the same one. Appends are committed in the order they were queued, so an
  // event queued before this append is there unless its own append failed;
  // then this one fails too (errc::sequence_conflict, and the stream is
  // fenced as for any failed append), so a decision never outlives the
  // event it was made on.
  std::vector<event_position> after;
};

// A durable append: its events got seqs first_seq..last_seq (first_seq is
// last_seq + 1 when the append stored only a request result).
struct append_ack {
  uint64_t first_seq = 0;
  uint64_t last_seq = 0;
};

struct snapshot_saved {
  uint64_t seq = 0;
};

// One append as the ordered log holds it: what code that follows the log
// (a read model, journal.hpp's read_log) sees of it.
struct logged_append {
  uint64_t position = 0;              // the frame holding it
  std::string stream;
  std::vector<recorded_event> events; // in seq order, upcast; at least one
};

// The frames after a position, as read_log returns them.
struct log_page {
  uint64_t end = 0;               // the last frame read; `after` when none was
  std::array<uint8_t, 32> end_hash{}; // SHA-256 of that frame; zeros for none
  std::vector<logged_append> appends; // the appends with events, in log order
};

// What /readyz reads. `writable` turns false when a batch fails on the disk
// and true again at the next batch that commits.
struct journal_health {
  bool writable = true;
  std::string last_error;       // the last disk failure, empty if none yet
  uint64_t failed_batches = 0;  // since open
  uint64_t queue_depth = 0;     // appends and snapshots waiting
};

class journal {
public:
  virtual ~journal() = default;

  // --- writes (answered on the writer thread) ---

  // Queues an append. Returns an error, and never calls `done`, when the
  // append is refused at once: malformed (errc::invalid_field), too large
  // (errc::too_large), queue full or journal closed (errc::unavailable).
  [[nodiscard]] virtual caf::error append(append_request request,
                                          result_callback<append_ack> done) = 0;

  // Queues a snapshot save. A snapshot replaces the stream's previous one;
  // its seq must not exceed the stream's last seq nor go below the seq of
  // the snapshot it replaces (errc::sequence_conflict).
  [[nodiscard]] virtual caf::error save_snapshot(snapshot snap,
                                                 result_callback<snapshot_saved> done) = 0;

  // --- synchronous reads (calling thread) ---

  // Up to max_count events of `stream` with seq >= from_seq, in seq order.
  // An empty result means there are none (also for an unknown stream).
  virtual caf::expected<std::vector<recorded_event>>
  read_events(const std::string& stream, uint64_t from_seq, uint32_t max_count) = 0;

  // The stream's last seq, 0 for a stream with no events.
  virtual caf::expected<uint64_t> last_seq(const std::string& stream) = 0;

  virtual caf::expected<std::optional<snapshot>> load_snapshot(const std::string& stream) = 0;

  // Streams of `kind` whose name sorts after `after` (empty: from the
  // start), at most max_count, sorted: page by passing the last one back.
  virtual caf::expected<std::vector<std::string>>
  list_streams(std::string_view kind, const std::string& after, uint32_t max_count) = 0;

  // Streams of `kind` whose last append left work open (append_request::
  // open_work), after `after` in name order, at most max_count.
  virtual caf::expected<std::vector<std::string>>
  list_open_streams(std::string_view kind, const std::string& after, uint32_t max_count) = 0;

  virtual caf::expected<std::optional<stored_request>>
  find_request(const std::string& stream, const std::string& request_id) = 0;

  // The ordered log (the log layout), for code that follows it: the appends
  // of at most max_frames frames after frame `after`, in log order, each
  // frame checked as every read checks it; only those of streams of `kind`
  // when it is not empty. The row layout has no ordered log:
  // errc::unavailable.
  virtual caf::expected<log_page> read_log(uint64_t after, uint32_t max_frames,
                                           std::string_view kind = {}) = 0;

  // The last frame of the ordered log, counting frames other processes
  // appended (0 for an empty log); errc::unavailable for the row layout.
  virtual caf::expected<uint64_t> log_end() = 0;

  virtual journal_health health() const = 0;

  // Runs `work` on a reader thread. Refused with errc::unavailable when the
  // read queue is full or the journal is closing.
  [[nodiscard]] virtual caf::error post_read(std::function<void()> work) = 0;

  // --- asynchronous reads (reader thread) ---

  [[nodiscard]] caf::error read_events_async(std::string stream, uint64_t from_seq,
                                             uint32_t max_count,
                                             result_callback<std::vector<recorded_event>> done);
  [[nodiscard]] caf::error load_snapshot_async(std::string stream,
                                               result_callback<std::optional<snapshot>> done);
  [[nodiscard]] caf::error find_request_async(std::string stream, std::string request_id,
                                              result_callback<std::optional<stored_request>> done);
  [[nodiscard]] caf::error last_seq_async(std::string stream, result_callback<uint64_t> done);
  [[nodiscard]] caf::error list_streams_async(std::string kind, std::string after,
                                              uint32_t max_count,
                                              result_callback<std::vector<std::string>> done);
};

// The messages above that may cross nodes (runtime/message_types.hpp).
inline constexpr message_types journal_messages{
  message_type<event_position>{"wager::event_position"},
};

} // namespace wager
