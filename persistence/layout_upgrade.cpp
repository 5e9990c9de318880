#include "wager/persistence/layout_upgrade.hpp"

#include "wager/persistence/event.hpp"
#include "wager/persistence/journal_schema.hpp"
#include "wager/persistence/log_frame.hpp"
#include "wager/persistence/sqlite_db.hpp"
#include "wager/runtime/errors.hpp"

#include <sqlite3.h>

#include <optional>
#include <utility>

namespace wager {

namespace {

// A frame is written once it holds this many records or about this many
// bytes, and a run of events becomes records of at most this many events.
constexpr size_t frame_records_target = 4096;
constexpr size_t frame_bytes_target = 4u << 20;
constexpr size_t record_events_max = 1024;
// How long the upgrade waits for the file's lock before refusing.
constexpr uint32_t lock_wait_ms = 2000;

caf::error refused(const std::string& path, const std::string& what) {
  return make_error(errc::journal_failure, "journal " + path + ": " + what);
}

uint64_t as_unsigned(int64_t v) {
  return static_cast<uint64_t>(v);
}

// Appends the converted records as frames, hash-chained, on `db`.
class frame_appender {
public:
  explicit frame_appender(sqlite::connection& db)
    : db_(db), insert_(db.get(), "INSERT INTO log (position, frame, crc) VALUES (?1, ?2, ?3)") {}

  // Starts a stream: its records point back to its own previous frames only.
  void start_stream() {
    last_position_ = 0;
    before_position_ = 0;
  }

  caf::error add(log_record record) {
    record.previous_position =
      last_position_ == frame_.position ? before_position_ : last_position_;
    if (last_position_ != frame_.position) {
      before_position_ = last_position_;
      last_position_ = frame_.position;
    }
    bytes_ += record.stream.size() + 32;
    for (auto& e : record.events)
      bytes_ += e.type.size() + e.payload.size() + 16;
    if (record.request)
      bytes_ += record.request->request_id.size() + record.request->result.size() + 16;
    frame_.records.push_back(std::move(record));
    if (frame_.records.size() >= frame_records_target || bytes_ >= frame_bytes_target)
      return flush();
    return {};
  }

  caf::error flush() {
    if (frame_.records.empty())
      return {};
    auto bytes = encode(frame_);
    if (!bytes)
      return bytes.error();
    sqlite::reset_on_exit reset{insert_};
    insert_.bind(1, static_cast<int64_t>(frame_.position))
      .bind_blob(2, *bytes)
      .bind(3, static_cast<int64_t>(trailing_crc32c(*bytes)));
    if (auto rc = insert_.step(); rc != SQLITE_DONE)
      return sqlite::failure(db_.get(), rc,
                             "writing frame " + std::to_string(frame_.position) + " of the log");
    frame_.previous = hash_of_frame(*bytes);
    ++frame_.position;
    frame_.records.clear();
    bytes_ = 0;
    ++frames_;
    return {};
  }

  uint64_t frames() const { return frames_; }

private:
  sqlite::connection& db_;
  sqlite::statement insert_;
  log_frame frame_;
  size_t bytes_ = 0;
  uint64_t frames_ = 0;
  uint64_t last_position_ = 0;
  uint64_t before_position_ = 0;
};

// One stream's rows, read in seq order and turned into records: events in
// runs of at most record_events_max, each stored request on the record
// that ends at its seq (or on a record of its own, with no events, when
// another request already ended there or its seq is 0).
class stream_converter {
public:
  stream_converter(sqlite::connection& db, const std::string& path)
    : db_(db), path_(path),
      events_(db.get(), "SELECT seq, type, version, payload, at_ms, checksum FROM events "
                        "WHERE stream = ?1 ORDER BY seq"),
      requests_(db.get(), "SELECT request_id, seq, result, at_ms, checksum FROM requests "
                          "WHERE stream = ?1 ORDER BY seq, at_ms, request_id") {}

  caf::error convert(const std::string& stream, uint64_t last_seq, bool open_work,
                     frame_appender& out, layout_upgrade_report& report) {
    if (!valid_stream_name(stream))
      return refused(path_, "stream name '" + stream + "' is not kind/key");
    sqlite::reset_on_exit reset_events{events_};
    sqlite::reset_on_exit reset_requests{requests_};
    events_.bind(1, stream);
    requests_.bind(1, stream);
    out.start_stream();
    stream_ = &stream;
    last_seq_ = last_seq;
    open_work_ = open_work;
    open_work_set_ = false;
    emitted_ = 0;
    pending_ = log_record{};
    pending_.stream = stream;
    pending_.first_seq = 1;
    events_done_ = false;
    if (auto err = next_event())
      return err;
    int rc;
    while ((rc = requests_.step()) == SQLITE_ROW) {
      request_record request{std::string{requests_.column_text(0)},
                             std::string{requests_.column_text(2)}};
      auto seq = as_unsigned(requests_.column_int(1));
      auto at_ms = requests_.column_int(3);
      if (as_unsigned(requests_.column_int(4))
          != row_checksum(stream, seq, request.request_id, 0, request.result))
        return refused(path_, "checksum mismatch in request " + request.request_id + " of " +
                                stream + "; run wagerctl verify");
      if (seq > last_seq)
        return refused(path_, "request " + request.request_id + " of " + stream +
                                " answered at seq " + std::to_string(seq) +
                                ", after the stream's last seq " + std::to_string(last_seq));
      // Every event up to the request's seq, then the request on the
      // record that ends there.
      if (auto err = take_events_through(seq, out, report))
        return err;
      if (pending_.events.empty() || pending_.request) {
        if (auto err = emit(out))
          return err;
      }
      pending_.request = std::move(request);
      pending_.request_at_ms = at_ms;
      ++report.requests;
      if (auto err = emit(out))
        return err;
    }
    if (rc != SQLITE_DONE)
      return sqlite::failure(db_.get(), rc, "reading the requests of " + stream);
    if (auto err = take_events_through(last_seq, out, report))
      return err;
    if (!events_done_)
      return refused(path_, stream + " has events after its last seq " +
                              std::to_string(last_seq) + "; run wagerctl verify");
    if (auto err = emit(out))
      return err;
    if (open_work_ && !open_work_set_ && last_seq > 0)
      return refused(path_, stream + ": its open-work mark has no record to go on");
    ++report.streams;
    return {};
  }

private:
  // Reads the next event row into next_ (events_done_ when there is none).
  caf::error next_event() {
    auto rc = events_.step();
    if (rc == SQLITE_DONE) {
      events_done_ = true;
      return {};
    }
    if (rc != SQLITE_ROW)
      return sqlite::failure(db_.get(), rc, "reading the events of " + *stream_);
    next_seq_ = as_unsigned(events_.column_int(0));
    next_ = log_event{std::string{events_.column_text(1)},
                      static_cast<uint32_t>(events_.column_int(2)),
                      std::string{events_.column_text(3)}, events_.column_int(4)};
    if (as_unsigned(events_.column_int(5))
        != row_checksum(*stream_, next_seq_, next_.type, next_.version, next_.payload))
      return refused(path_, "checksum mismatch in event " + std::to_string(next_seq_) + " of " +
                              *stream_ + "; run wagerctl verify");
    return {};
  }

  // Moves the events up to and including `seq` into records.
  caf::error take_events_through(uint64_t seq, frame_appender& out,
                                 layout_upgrade_report& report) {
    while (emitted_ < seq) {
      auto expected = emitted_ + 1;
      if (events_done_ || next_seq_ != expected)
        return refused(path_, *stream_ + ": event " + std::to_string(expected) +
                                " is missing (its last seq is " + std::to_string(last_seq_) +
                                "); run wagerctl verify");
      if (pending_.request || pending_.events.size() >= record_events_max)
        if (auto err = emit(out))
          return err;
      pending_.events.push_back(std::move(next_));
      emitted_ = expected;
      ++report.events;
      if (auto err = next_event())
        return err;
    }
    return {};
  }

  // Writes the pending record, if it holds anything, and starts the next.
  caf::error emit(frame_appender& out) {
    if (pending_.events.empty() && !pending_.request)
      return {};
    auto next_first = emitted_ + 1;
    if (emitted_ == last_seq_ && open_work_ && !pending_.events.empty()) {
      pending_.open_work = true;
      open_work_set_ = true;
    }
    auto record = std::exchange(pending_, log_record{});
    pending_.stream = *stream_;
    pending_.first_seq = next_first;
    return out.add(std::move(record));
  }

  sqlite::connection& db_;
  const std::string& path_;
  sqlite::statement events_;
  sqlite::statement requests_;
  const std::string* stream_ = nullptr;
  uint64_t last_seq_ = 0;
  bool open_work_ = false;
  bool open_work_set_ = false;
  uint64_t emitted_ = 0; // the last seq moved into a record
  log_record pending_;
  bool events_done_ = false;
  uint64_t next_seq_ = 0;
  log_event next_;
};

caf::expected<layout_upgrade_report> convert(sqlite::connection& db, const std::string& path) {
  layout_upgrade_report report;
  auto frames = db.query_int("SELECT count(*) FROM log", "reading the log of " + path);
  if (!frames)
    return frames.error();
  if (*frames != 0)
    return refused(path, "has the row layout but " + std::to_string(*frames) +
                           " frames in its log; run wagerctl verify");
  frame_appender out{db};
  stream_converter streams_in{db, path};
  // Every stream with a row, and any that only stored requests.
  sqlite::statement all{db.get(),
                        "SELECT s.stream, s.last_seq, s.open_work FROM streams s "
                        "UNION ALL SELECT DISTINCT r.stream, 0, 0 FROM requests r WHERE "
                        "r.stream NOT IN (SELECT stream FROM streams) ORDER BY 1"};
  int rc;
  while ((rc = all.step()) == SQLITE_ROW) {
    std::string stream{all.column_text(0)};
    auto last_seq = all.column_int(1);
    if (last_seq < 0)
      return refused(path, stream + " has a negative last seq");
    if (auto err = streams_in.convert(stream, as_unsigned(last_seq), all.column_int(2) != 0,
                                      out, report))
      return err;
  }
  if (rc != SQLITE_DONE)
    return sqlite::failure(db.get(), rc, "reading the streams of " + path);
  // Events of no stream row would be lost: refuse rather than drop them.
  auto orphans = db.query_int("SELECT count(*) FROM events WHERE stream NOT IN "
                              "(SELECT stream FROM streams)",
                              "reading the events of " + path);
  if (!orphans)
    return orphans.error();
  if (*orphans != 0)
    return refused(path, std::to_string(*orphans) +
                           " events belong to no stream row; run wagerctl verify");
  if (auto err = out.flush())
    return err;
  report.frames = out.frames();
  if (auto err = db.exec("DELETE FROM events; DELETE FROM requests; DELETE FROM streams; "
                         "UPDATE layout SET name = 'log' WHERE id = 1",
                         "clearing the rows of " + path))
    return err;
  report.converted = true;
  return report;
}

} // namespace

caf::expected<layout_upgrade_report> upgrade_to_log_layout(const std::string& path) {
  auto inspected = open_journal_for_inspection(path);
  if (!inspected)
    return inspected.error();
  auto version = inspected->query_int("PRAGMA user_version", "reading journal " + path);
  if (!version)
    return version.error();
  if (*version != journal_schema_version)
    return refused(path, "schema version " + std::to_string(*version) + " is not " +
                           std::to_string(journal_schema_version) + "; migrate it first");
  inspected->close();

  sqlite::connection db;
  if (auto err = db.open(path, sqlite::open_mode::read_write))
    return err;
  if (db.opened_read_only())
    return refused(path, "file is read-only");
  db.set_busy_timeout(lock_wait_ms);
  // The exclusive locking mode, set before the first read, makes the lock
  // below SQLite's EXCLUSIVE lock on the file itself, which no other
  // connection can hold or share: a node with the file open keeps it from
  // being converted under it.
  auto lock = [&]() -> caf::error {
    auto err = db.exec("PRAGMA locking_mode = EXCLUSIVE; PRAGMA synchronous = FULL; "
                       "BEGIN EXCLUSIVE",
                       "locking journal " + path + " to upgrade");
    if (err && (sqlite3_errcode(db.get()) & 0xff) == SQLITE_BUSY)
      return make_error(errc::unavailable,
                        "journal " + path +
                          " is in use by another process (is a node running on it?); stop it "
                          "and run the upgrade again");
    return err;
  };
  if (auto err = lock())
    return err;
  auto layout = layout_of(db, path);
  if (!layout) {
    db.exec("ROLLBACK", "rolling back");
    return layout.error();
  }
  if (*layout == journal_layout::log) {
    db.exec("ROLLBACK", "rolling back");
    return layout_upgrade_report{};
  }
  auto report = convert(db, path);
  if (!report) {
    db.exec("ROLLBACK", "rolling back");
    return report.error();
  }
  if (auto err = db.exec("COMMIT", "committing the upgrade of " + path))
    return err;
  return report;
}

} // namespace wager
