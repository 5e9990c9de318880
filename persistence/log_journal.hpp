#pragma once

// The log layout of the SQLite journal (journal_options.hpp,
// journal_layout::log): every group commit appends one frame
// (log_frame.hpp) at the end of the `log` table, and nothing else is
// written on the commit path. Internal to persistence/; open it with
// open_sqlite_journal, which picks the layout the file was created with.
//
// What finds things in the log is an in-memory index, rebuilt at open by
// reading every frame (checking the hash chain as it goes) and kept up by
// the writer after each commit:
//   - per stream: its last seq, the frame of its last record (the next
//     record's back-pointer), its open-work mark, and where each record
//     with events starts (first seq, frame position), in seq order;
//   - per stored request: a 64-bit hash of (stream, request id) and the
//     frame holding it, until request_retention_ms has passed. The frame
//     says the rest (the seq it answered at, when, the result), so a hit is
//     confirmed by reading it; requests whose hashes collide are all kept,
//     and every candidate frame is read.
// A read looks the frames up in the index and decodes them (CRC checked);
// snapshots stay in the snapshots table, as in the row layout.
//
// Several processes may share the file: before each batch (under the write
// lock) and before each read, the index takes in the frames other processes
// appended, in position order, each checked against the hash of the frame
// before it. So the sequence check always sees every commit to the file.
//
// Memory: about 120 bytes per stream, a few per record with events, and about
// 42 per stored request within the retention (26 in the hash table at its
// average load, 16 in the queue that prunes them in the order taken in),
// whatever the length of its id.

#include "wager/persistence/journal_reader.hpp"
#include "wager/persistence/journal_store.hpp"
#include "wager/persistence/log_frame.hpp"

#include <boost/unordered/unordered_flat_map.hpp>
#include <caf/expected.hpp>

#include <atomic>
#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <shared_mutex>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace wager {

// Where a record with events starts.
struct record_location {
  uint64_t first_seq = 0;
  uint64_t position = 0;

  friend bool operator==(const record_location&, const record_location&) = default;
};

// One stream's records with events, in seq order: each record's first seq
// and frame as the differences from the record before (the seq grows, the
// frame does not fall), as varints, with every 64th record's place kept
// aside so a lookup decodes at most 64 records after a binary search. A few
// bytes a record when a stream's records are close in the log, against 16
// for the pair; 64 bytes for the list itself.
class record_list {
public:
  // `r` starts after the last record's seq, in its frame or a later one.
  void push_back(const record_location& r);

  size_t size() const { return size_; }

  // The records holding the events from seq `from` on, given the stream's
  // last seq: the one holding `from` first, then the next ones until at
  // least `count` events are covered. Empty when `from` is past last_seq or
  // before the first record.
  std::vector<record_location> covering(uint64_t from, uint64_t last_seq, uint64_t count) const;

private:
  friend struct index_codec;
  static constexpr size_t mark_every = 64;
  // Record number mark_every x (k + 1), and where its difference starts.
  struct mark {
    record_location record;
    size_t offset = 0;
  };

  std::vector<uint8_t> bytes_;
  std::vector<mark> marks_;
  record_location last_;
  size_t size_ = 0;
};

class log_index {
public:
  using record_location = wager::record_location;

  struct stream_view {
    uint64_t last_seq = 0;
    uint64_t last_position = 0; // frame of its last record, 0 if none
  };

  // The hash of a stored request's (stream, request id).
  using request_hasher = uint64_t (*)(std::string_view stream, std::string_view request_id);
  static uint64_t hash_request(std::string_view stream, std::string_view request_id);

  // `hasher` is for tests, to make requests collide.
  explicit log_index(request_hasher hasher = &hash_request);

  // The frame at applied() + 1, taken in after checking that it holds the
  // SHA-256 of the frame before it, that each record's back-pointer names
  // its stream's previous frame and that its seqs go on where the stream's
  // ended: the whole of verify_chain (log_chain.hpp), frame by frame. A
  // frame at or below applied() is already in and ignored.
  // errc::journal_failure naming the frame for a gap or a break.
  caf::error apply(const log_frame& frame, std::span<const uint8_t> bytes);

  uint64_t applied() const;
  frame_hash last_hash() const;

  stream_view stream(const std::string& name) const;
  // The frames that may hold a stored request of `stream` with
  // `request_id`, newest first: those of every stored request within the
  // retention whose hash is the same. Empty means it is not stored.
  std::vector<uint64_t> request_frames(std::string_view stream,
                                       std::string_view request_id) const;

  // The records holding the events of `stream` from seq `from` on: the one
  // holding `from` first, then the next ones until at least `count` events
  // are covered. Empty when the stream has no event at or after `from`.
  std::vector<record_location> records_from(const std::string& stream, uint64_t from,
                                            uint64_t count) const;

  // Streams with at least one event, of `kind`, after `after`, sorted.
  std::vector<std::string> streams(std::string_view kind, const std::string& after,
                                   uint32_t max_count, bool open_work_only) const;

  // Every stream with at least one event after `after`, sorted.
  std::vector<std::string> all_streams(const std::string& after, uint32_t max_count) const;

  uint64_t requests() const; // stored requests within the retention

  // Forgets at most max_count requests answered before cutoff_ms.
  uint64_t prune_requests(int64_t cutoff_ms, uint32_t max_count);

  // The whole index as bytes, as it stands at applied(): what start-up
  // loads instead of reading every frame (save_index_checkpoint). Stored
  // requests are kept as their hashes, so the index that loads them must
  // use the same hasher.
  std::vector<uint8_t> save() const;
  // Makes this index, which must be empty (nothing applied), the one save()
  // wrote. errc::journal_failure when the bytes are damaged (their CRC32C)
  // or malformed; the index is then left empty.
  caf::error load(std::span<const uint8_t> bytes);

private:
  friend struct index_codec;
  struct stream_state {
    uint64_t last_seq = 0;
    uint64_t last_position = 0;
    uint64_t before_position = 0; // the back-pointer of records in last_position
    bool open_work = false;
    record_list records;
  };

  mutable std::shared_mutex mutex_;
  uint64_t applied_ = 0;
  frame_hash last_hash_{};
  std::map<std::string, stream_state, std::less<>> streams_;
  // streams_ by name, for the lookups of every append: the map keeps the
  // names sorted for the listings and the checkpoint, and its keys and
  // values never move, so these point into it.
  boost::unordered_flat_map<std::string_view, stream_state*> by_name_;
  std::set<std::string, std::less<>> open_;
  struct stored {
    uint64_t hash = 0;
    uint64_t position = 0;
  };
  // One frame that stored requests, with when the last of them was answered.
  struct request_frame {
    uint64_t position = 0;
    int64_t at_ms = 0;
  };

  void forget(const stored& request);
  // REQUIRES: mutex_ is held (shared, for find_locked).
  const stream_state* find_locked(std::string_view name) const;
  stream_state& find_or_add_locked(const std::string& name);

  request_hasher hasher_;
  // Stored requests: hash -> frame, and the rare second (third...) request
  // with a hash already in requests_.
  boost::unordered_flat_map<uint64_t, uint64_t> requests_;
  std::unordered_multimap<uint64_t, uint64_t> colliding_;
  // Every stored request once, and every frame that stored any, in the order
  // taken in (position order): pruning reads both from the front and stops
  // at the first frame still kept, so it costs the requests it forgets, not
  // all of them.
  std::deque<stored> request_order_;
  std::deque<request_frame> request_frames_;
};

// Takes every frame after index.applied() into the index, reading through
// `file` (any connection to the journal), in pages.
caf::error catch_up(log_index& index, journal_reader& file);

// The index checkpoint: log_index::save()'s bytes in the index_checkpoint
// table (journal_schema.cpp, version 4), in parts of at most 64 MiB, all
// naming the frame they were taken at. Start-up loads it and reads only the
// frames after it, instead of every frame from the first.
//
// Writes the index as the file's checkpoint, replacing the one before, in
// one transaction on `db` (the writer connection, outside a batch).
caf::error save_index_checkpoint(const log_index& index, sqlite::connection& db);
// Loads the file's checkpoint into `index` (empty) when it still describes
// this log: the frame it was taken at is there and hashes to what the
// checkpoint says. Returns whether it did. A checkpoint that is damaged or
// describes another log is not an error: the index stays empty and is
// rebuilt from the frames (the chain before the checkpoint is then checked
// again, as `wagerctl verify` always does). A file that fails to read is.
caf::expected<bool> load_index_checkpoint(log_index& index, journal_reader& file);

// What an opening from a checkpoint did not read, checked afterwards (the
// journal runs it on a thread of its own once it is open): the file's
// checkpoint, loaded, must be what reading the frames from the first up to
// its frame gives, those frames holding the hash chain, back-pointers and
// seqs; its streams exactly, its stored requests the newest of those the
// frames stored (pruning forgets the oldest). errc::journal_failure naming
// the first difference or break. Nothing to check (no checkpoint, or one
// that does not describe the log, which no opening uses) passes. Stops early,
// passing, once `cancel` is set.
caf::error check_index_checkpoint(journal_reader& file, const std::atomic<bool>& cancel);

// The log layout's store, writing through `db` (the writer connection) and
// keeping `index` up after each commit.
std::unique_ptr<journal_store> make_log_store(sqlite::connection db,
                                              const journal_options& options,
                                              std::shared_ptr<log_index> index);

// The log layout's reads, through `file` (a pooled read connection), each
// after catching the index up with the file.
caf::expected<std::vector<recorded_event>> read_log_events(log_index& index, journal_reader& file,
                                                           const std::string& stream,
                                                           uint64_t from_seq, uint32_t max_count);
caf::expected<std::optional<stored_request>> find_log_request(log_index& index,
                                                              journal_reader& file,
                                                              const std::string& stream,
                                                              const std::string& request_id);

// The appends with events of at most max_frames frames after `after`, in
// log order, upcast, of streams of `kind` only when it is not empty
// (journal::read_log). Reads the file, not the index.
caf::expected<log_page> read_log_page(journal_reader& file, uint64_t after, uint32_t max_frames,
                                      std::string_view kind = {});

// Every event of each of `streams` (sorted, distinct), in seq order, one
// vector per stream: the reads of whole streams at once (verify), with each
// frame that holds any of their records read and decoded once, in log order,
// where reading stream by stream would decode a frame once per record. The
// index must be caught up; events are upcast as the journal reads them.
caf::expected<std::vector<std::vector<recorded_event>>>
read_log_streams(const log_index& index, journal_reader& file,
                 const std::vector<std::string>& streams);

// The stored request of `stream` with `request_id` that the index already
// holds (no catching up): its candidate frames read through `file`, the
// newest that holds it.
caf::expected<std::optional<stored_request>> find_indexed_request(const log_index& index,
                                                                  journal_reader& file,
                                                                  const std::string& stream,
                                                                  const std::string& request_id);

} // namespace wager
