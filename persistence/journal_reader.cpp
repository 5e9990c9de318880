#include "wager/persistence/journal_reader.hpp"

#include "wager/runtime/errors.hpp"

#include <sqlite3.h>

namespace wager {

namespace {

caf::error corrupt(const std::string& what) {
  return make_error(errc::journal_failure, "journal is corrupt: " + what);
}

uint64_t as_unsigned(int64_t value) {
  return static_cast<uint64_t>(value);
}

} // namespace

journal_reader::journal_reader(sqlite::connection db,
                               std::shared_ptr<const upcaster_registry> upcasters)
  : db_(std::move(db)), upcasters_(std::move(upcasters)),
    events_(db_.get(), "SELECT seq, type, version, payload, at_ms, checksum FROM events "
                       "WHERE stream = ?1 AND seq >= ?2 ORDER BY seq LIMIT ?3"),
    last_seq_(db_.get(), "SELECT last_seq FROM streams WHERE stream = ?1"),
    snapshot_(db_.get(), "SELECT seq, version, state, at_ms, checksum FROM snapshots "
                         "WHERE stream = ?1"),
    streams_of_kind_(db_.get(), "SELECT stream FROM streams WHERE kind = ?1 AND stream > ?2 "
                                "ORDER BY stream LIMIT ?3"),
    open_streams_(db_.get(), "SELECT stream FROM streams WHERE kind = ?1 AND open_work <> 0 "
                             "AND stream > ?2 ORDER BY stream LIMIT ?3"),
    all_streams_(db_.get(), "SELECT stream FROM streams WHERE stream > ?1 ORDER BY stream "
                            "LIMIT ?2"),
    request_(db_.get(), "SELECT seq, result, at_ms, checksum FROM requests "
                        "WHERE stream = ?1 AND request_id = ?2") {}

journal_reader::~journal_reader() = default;

sqlite::statement& journal_reader::frame_at() {
  if (frame_at_.get() == nullptr)
    frame_at_ = sqlite::statement{db_.get(), "SELECT frame, crc FROM log WHERE position = ?1"};
  return frame_at_;
}

sqlite::statement& journal_reader::frames_after() {
  if (frames_after_.get() == nullptr)
    frames_after_ = sqlite::statement{db_.get(), "SELECT position, frame, crc FROM log WHERE "
                                                 "position > ?1 ORDER BY position LIMIT ?2"};
  return frames_after_;
}

caf::expected<std::vector<recorded_event>>
journal_reader::read_events(const std::string& stream, uint64_t from_seq, uint32_t max_count) {
  std::vector<recorded_event> out;
  auto from = std::max<uint64_t>(from_seq, 1);
  {
    sqlite::reset_on_exit reset{events_};
    events_.bind(1, stream).bind(2, static_cast<int64_t>(from)).bind(3, int64_t{max_count});
    int rc;
    while ((rc = events_.step()) == SQLITE_ROW) {
      recorded_event e;
      e.seq = as_unsigned(events_.column_int(0));
      e.data.type = std::string{events_.column_text(1)};
      e.data.version = static_cast<uint32_t>(events_.column_int(2));
      e.data.payload = std::string{events_.column_text(3)};
      e.at_ms = events_.column_int(4);
      auto sum = as_unsigned(events_.column_int(5));
      auto expected_seq = from + out.size();
      if (e.seq != expected_seq)
        return corrupt(stream + " has no event " + std::to_string(expected_seq) +
                       " before event " + std::to_string(e.seq));
      if (sum != row_checksum(stream, e.seq, e.data.type, e.data.version, e.data.payload))
        return corrupt("checksum mismatch in event " + std::to_string(e.seq) + " of " + stream);
      out.push_back(std::move(e));
    }
    if (rc != SQLITE_DONE)
      return sqlite::failure(db_.get(), rc, "reading the events of " + stream);
  }
  if (upcasters_ != nullptr && !upcasters_->empty())
    for (auto& e : out)
      if (auto err = upcasters_->upcast(e.data))
        return err;
  return out;
}

caf::expected<uint64_t> journal_reader::last_seq(const std::string& stream) {
  sqlite::reset_on_exit reset{last_seq_};
  last_seq_.bind(1, stream);
  auto rc = last_seq_.step();
  if (rc == SQLITE_ROW)
    return as_unsigned(last_seq_.column_int(0));
  if (rc == SQLITE_DONE)
    return uint64_t{0};
  return sqlite::failure(db_.get(), rc, "reading the last seq of " + stream);
}

caf::expected<std::optional<snapshot>> journal_reader::load_snapshot(const std::string& stream) {
  sqlite::reset_on_exit reset{snapshot_};
  snapshot_.bind(1, stream);
  auto rc = snapshot_.step();
  if (rc == SQLITE_DONE)
    return std::optional<snapshot>{};
  if (rc != SQLITE_ROW)
    return sqlite::failure(db_.get(), rc, "reading the snapshot of " + stream);
  snapshot s;
  s.stream = stream;
  s.seq = as_unsigned(snapshot_.column_int(0));
  s.version = static_cast<uint32_t>(snapshot_.column_int(1));
  s.state = std::string{snapshot_.column_text(2)};
  s.at_ms = snapshot_.column_int(3);
  if (as_unsigned(snapshot_.column_int(4)) !=
      row_checksum(stream, s.seq, "snapshot", s.version, s.state))
    return corrupt("checksum mismatch in the snapshot of " + stream);
  return std::optional<snapshot>{std::move(s)};
}

namespace {

// Runs a bound statement whose rows are one stream name each.
caf::expected<std::vector<std::string>> stream_names(sqlite3* db, sqlite::statement& st,
                                                     const std::string& what) {
  std::vector<std::string> out;
  int rc;
  while ((rc = st.step()) == SQLITE_ROW)
    out.emplace_back(st.column_text(0));
  if (rc != SQLITE_DONE)
    return sqlite::failure(db, rc, what);
  return out;
}

} // namespace

caf::expected<std::vector<std::string>>
journal_reader::list_streams(std::string_view kind, const std::string& after, uint32_t max_count) {
  sqlite::reset_on_exit reset{streams_of_kind_};
  streams_of_kind_.bind(1, kind).bind(2, after).bind(3, int64_t{max_count});
  return stream_names(db_.get(), streams_of_kind_,
                      "listing streams of kind " + std::string{kind});
}

caf::expected<std::vector<std::string>>
journal_reader::list_open_streams(std::string_view kind, const std::string& after,
                                  uint32_t max_count) {
  sqlite::reset_on_exit reset{open_streams_};
  open_streams_.bind(1, kind).bind(2, after).bind(3, int64_t{max_count});
  return stream_names(db_.get(), open_streams_,
                      "listing open streams of kind " + std::string{kind});
}

caf::expected<std::vector<std::string>> journal_reader::list_all_streams(const std::string& after,
                                                                         uint32_t max_count) {
  sqlite::reset_on_exit reset{all_streams_};
  all_streams_.bind(1, after).bind(2, int64_t{max_count});
  return stream_names(db_.get(), all_streams_, "listing streams");
}

caf::expected<std::optional<stored_request>>
journal_reader::find_request(const std::string& stream, const std::string& request_id) {
  sqlite::reset_on_exit reset{request_};
  request_.bind(1, stream).bind(2, request_id);
  auto rc = request_.step();
  if (rc == SQLITE_DONE)
    return std::optional<stored_request>{};
  if (rc != SQLITE_ROW)
    return sqlite::failure(db_.get(), rc, "reading request " + request_id + " of " + stream);
  stored_request r;
  r.request_id = request_id;
  r.seq = as_unsigned(request_.column_int(0));
  r.result = std::string{request_.column_text(1)};
  r.at_ms = request_.column_int(2);
  if (as_unsigned(request_.column_int(3)) != row_checksum(stream, r.seq, request_id, 0, r.result))
    return corrupt("checksum mismatch in request " + request_id + " of " + stream);
  return std::optional<stored_request>{std::move(r)};
}

} // namespace wager
