#include "wager/persistence/backup.hpp"
#include "wager/persistence/journal_reader.hpp"
#include "wager/persistence/journal_schema.hpp"
#include "wager/persistence/log_journal.hpp"
#include "wager/runtime/errors.hpp"

#include <sqlite3.h>

#include <atomic>

namespace wager {

namespace {

constexpr uint32_t verify_page_events = 4096;
constexpr uint32_t verify_page_streams = 1024;
// Events of the log layout read at once (verify_log).
constexpr uint64_t verify_chunk_events = 1 << 18;

void check_integrity(sqlite::connection& db, verify_report& report) {
  // integrity_check returns "ok" or up to 100 lines describing damage.
  sqlite::statement st{db.get(), "PRAGMA integrity_check"};
  int rc;
  while ((rc = st.step()) == SQLITE_ROW)
    if (st.column_text(0) != "ok")
      report.add_problem("integrity_check: " + std::string{st.column_text(0)});
  if (rc != SQLITE_DONE)
    report.add_problem("integrity_check failed: " + std::string{sqlite3_errmsg(db.get())});
}

// Reads `stream` page by page through read_page(from_seq, max_count), in
// either layout, hands each page to the visitor, and checks the events end
// at `last` and the snapshot is not ahead of it.
template <class ReadPage>
void check_stream(journal_reader& reader, const std::string& stream, uint64_t last,
                  ReadPage&& read_page, journal_visitor* visitor, verify_report& report) {
  uint64_t seq = 0;
  for (;;) {
    caf::expected<std::vector<recorded_event>> page = read_page(seq + 1, verify_page_events);
    if (!page) {
      report.add_problem(stream + ": " + message_of(page.error()));
      return;
    }
    if (page->empty())
      break;
    seq = page->back().seq;
    report.events += page->size();
    if (visitor != nullptr)
      visitor->on_events(stream, *page, report);
  }
  if (seq != last)
    report.add_problem(stream + ": events end at seq " + std::to_string(seq) +
                       " but the stream's last seq is " + std::to_string(last));
  auto snap = reader.load_snapshot(stream);
  if (!snap)
    report.add_problem(stream + ": " + message_of(snap.error()));
  else if (*snap && (*snap)->seq > last)
    report.add_problem(stream + ": snapshot at seq " + std::to_string((*snap)->seq) +
                       " is ahead of the last event " + std::to_string(last));
}

// Rows that belong to no listed stream: events or snapshots a bug or a torn
// edit left behind, which a read by stream would never see.
void check_orphans(sqlite::connection& db, verify_report& report) {
  sqlite::statement st{db.get(),
                       "SELECT 'events', stream FROM events WHERE stream NOT IN "
                       "(SELECT stream FROM streams) GROUP BY stream "
                       "UNION ALL SELECT 'snapshots', stream FROM snapshots WHERE stream NOT IN "
                       "(SELECT stream FROM streams)"};
  int rc;
  while ((rc = st.step()) == SQLITE_ROW)
    report.add_problem(std::string{st.column_text(1)} + ": " + std::string{st.column_text(0)} +
                       " rows without a stream row");
  if (rc != SQLITE_DONE)
    report.add_problem("orphan check failed: " + std::string{sqlite3_errmsg(db.get())});
}

void check_requests(sqlite::connection& db, verify_report& report) {
  sqlite::statement st{db.get(), "SELECT stream, request_id, seq, result, checksum FROM requests"};
  int rc;
  while ((rc = st.step()) == SQLITE_ROW) {
    ++report.requests;
    auto stream = st.column_text(0);
    auto id = st.column_text(1);
    auto seq = static_cast<uint64_t>(st.column_int(2));
    if (static_cast<uint64_t>(st.column_int(4)) != row_checksum(stream, seq, id, 0, st.column_text(3)))
      report.add_problem(std::string{stream} + ": checksum mismatch in request " +
                         std::string{id});
  }
  if (rc != SQLITE_DONE)
    report.add_problem("reading requests failed: " + std::string{sqlite3_errmsg(db.get())});
}

// The log layout: the chain of frames first (each frame's CRC, position,
// hash link, back-pointers and seqs, log_index::apply), then every stream
// through the index the chain built. Streams are read in chunks of about
// verify_chunk_events events (read_log_streams: each frame holding any of a
// chunk's records decoded once); a chunk that fails to read is read again
// stream by stream, as the journal reads it, so that each problem is named
// with its stream.
void verify_log(journal_reader& reader, journal_visitor* visitor, verify_report& report,
                uint64_t chunk_events) {
  log_index index;
  if (auto err = catch_up(index, reader))
    report.add_problem("log: " + message_of(err) + " (frames before it check out: " +
                       std::to_string(index.applied()) + ")");
  auto check_one_by_one = [&](const std::string& stream) {
    check_stream(
      reader, stream, index.stream(stream).last_seq,
      [&](uint64_t from, uint32_t count) {
        return read_log_events(index, reader, stream, from, count);
      },
      visitor, report);
  };
  auto check_chunk = [&](const std::vector<std::string>& chunk) {
    report.streams += chunk.size();
    auto events = read_log_streams(index, reader, chunk);
    if (!events) {
      for (auto& stream : chunk)
        check_one_by_one(stream);
      return;
    }
    for (size_t i = 0; i < chunk.size(); ++i) {
      auto& all = (*events)[i];
      check_stream(
        reader, chunk[i], index.stream(chunk[i]).last_seq,
        [&](uint64_t from, uint32_t count) -> caf::expected<std::vector<recorded_event>> {
          std::vector<recorded_event> page;
          for (auto seq = from; seq < from + count && seq <= all.size(); ++seq)
            page.push_back(std::move(all[seq - 1]));
          return page;
        },
        visitor, report);
      all = {};
    }
  };
  std::string after;
  std::vector<std::string> chunk;
  uint64_t chunk_size = 0;
  for (;;) {
    auto streams = index.all_streams(after, verify_page_streams);
    if (streams.empty())
      break;
    for (auto& stream : streams) {
      auto events = index.stream(stream).last_seq;
      if (!chunk.empty() && chunk_size + events > chunk_events) {
        check_chunk(chunk);
        chunk.clear();
        chunk_size = 0;
      }
      chunk.push_back(stream);
      chunk_size += events;
    }
    after = streams.back();
  }
  if (!chunk.empty())
    check_chunk(chunk);
  report.requests = index.requests();
}

} // namespace

caf::expected<verify_report> verify_journal(const std::string& path, journal_visitor* visitor,
                                            std::shared_ptr<const upcaster_registry> upcasters) {
  auto db = open_journal_for_inspection(path);
  if (!db)
    return db.error();
  verify_report report;
  check_integrity(*db, report);
  journal_reader reader{std::move(*db), std::move(upcasters)};
  auto& conn = reader.connection();
  // One read transaction: every check below sees the same moment, even
  // while nodes keep appending.
  if (auto err = conn.exec("BEGIN", "starting the verify read"))
    return err;
  auto layout = layout_of(conn, path);
  if (!layout)
    return layout.error();
  if (*layout == journal_layout::log) {
    verify_log(reader, visitor, report, verify_chunk_events);
    // The index checkpoint an opening would load must be what the frames
    // give (a broken chain is reported above already).
    if (report.ok()) {
      std::atomic<bool> cancel{false};
      if (auto err = check_index_checkpoint(reader, cancel))
        report.add_problem(message_of(err));
    }
    auto snapshots = conn.query_int("SELECT count(*) FROM snapshots", "counting snapshots");
    if (snapshots)
      report.snapshots = static_cast<uint64_t>(*snapshots);
    conn.exec("COMMIT", "ending the verify read");
    if (visitor != nullptr)
      visitor->finish(report);
    return report;
  }
  std::string after;
  for (;;) {
    auto streams = reader.list_all_streams(after, verify_page_streams);
    if (!streams) {
      report.add_problem("listing streams: " + message_of(streams.error()));
      break;
    }
    if (streams->empty())
      break;
    for (auto& stream : *streams) {
      ++report.streams;
      auto last = reader.last_seq(stream);
      if (!last) {
        report.add_problem(stream + ": " + message_of(last.error()));
        continue;
      }
      check_stream(
        reader, stream, *last,
        [&](uint64_t from, uint32_t count) { return reader.read_events(stream, from, count); },
        visitor, report);
    }
    after = streams->back();
  }
  auto snapshots = conn.query_int("SELECT count(*) FROM snapshots", "counting snapshots");
  if (snapshots)
    report.snapshots = static_cast<uint64_t>(*snapshots);
  check_orphans(conn, report);
  check_requests(conn, report);
  conn.exec("COMMIT", "ending the verify read");
  if (visitor != nullptr)
    visitor->finish(report);
  return report;
}

} // namespace wager
