// The log layout of the SQLite journal (log_journal.hpp): what it writes,
// that it keeps its layout, that a changed frame is caught, and how its
// index forgets stored requests.

#include "journal_support.hpp"
#include "log_frame_support.hpp"

#include "wager/persistence/backup.hpp"
#include "wager/persistence/journal_schema.hpp"
#include "wager/persistence/log_frame.hpp"
#include "wager/persistence/log_journal.hpp"

#include "support/temp_dir.hpp"

#include <doctest/doctest.h>

#include <sqlite3.h>

#include <future>
#include <map>
#include <random>

using namespace wager;
using namespace wager::test;

namespace {

journal_options log_options(const std::string& path) {
  auto o = options_at(path);
  o.layout = journal_layout::log;
  return o;
}

int64_t count(const std::string& path, const std::string& table) {
  auto db = open_journal_for_inspection(path);
  REQUIRE(db);
  return *db->query_int("SELECT count(*) FROM " + table, "counting");
}

void fill(journal& j) {
  for (uint64_t seq = 0; seq < 3; ++seq)
    for (auto stream : {"wallet/a", "wallet/b"}) {
      append_request r{stream, seq, {amount_event("deposited", 10 + int64_t(seq))}, std::nullopt};
      r.request = request_record{"r" + std::to_string(seq), "{}"};
      REQUIRE(append_sync(j, std::move(r)));
    }
}

} // namespace

TEST_CASE("a log journal appends one frame per batch and no per-event rows, and keeps its "
          "layout when reopened") {
  temp_dir dir;
  auto path = (dir / "journal.db").string();
  {
    auto j = open_or_fail(log_options(path));
    fill(*j);
  }
  CHECK(count(path, "log") == 6); // one append at a time: one frame each
  CHECK(count(path, "events") == 0);
  CHECK(count(path, "streams") == 0);
  CHECK(count(path, "requests") == 0);
  // Reopened without asking for the log layout: the file's own layout wins.
  auto j = open_or_fail(options_at(path) /* rows unless the suite says log */);
  auto events = j->read_events("wallet/b", 2, 10);
  REQUIRE(events);
  REQUIRE(events->size() == 2u);
  CHECK((*events)[0].seq == 2u);
  CHECK((*events)[1].data.json().as_object().at("amount").to_number<int64_t>() == 12);
  CHECK(*j->last_seq("wallet/a") == 3u);
  auto request = j->find_request("wallet/a", "r1");
  REQUIRE(request);
  REQUIRE(request->has_value());
  CHECK((*request)->seq == 2u);
  auto reused = append_sync(*j, append_request{"wallet/a", 3, {}, request_record{"r1", "{}"}});
  REQUIRE_FALSE(reused);
  CHECK(code_of(reused.error()) == errc::request_id_reused);
  j.reset();
  auto report = verify_journal(path);
  REQUIRE(report);
  CHECK(report->ok());
  CHECK(report->streams == 2u);
  CHECK(report->events == 6u);
  CHECK(report->requests == 6u);
}

TEST_CASE("a frame changed and resealed with a valid CRC is caught by the next frame's hash") {
  temp_dir dir;
  auto path = (dir / "journal.db").string();
  {
    auto j = open_or_fail(log_options(path));
    fill(*j);
  }
  {
    sqlite3* db = nullptr;
    REQUIRE(sqlite3_open(path.c_str(), &db) == SQLITE_OK);
    sqlite3_stmt* st = nullptr;
    REQUIRE(sqlite3_prepare_v2(db, "SELECT frame FROM log WHERE position = 3", -1, &st, nullptr) ==
            SQLITE_OK);
    REQUIRE(sqlite3_step(st) == SQLITE_ROW);
    auto* data = static_cast<const uint8_t*>(sqlite3_column_blob(st, 0));
    frame_bytes bytes(data, data + sqlite3_column_bytes(st, 0));
    sqlite3_finalize(st);
    auto frame = decode_log_frame(bytes);
    REQUIRE(frame);
    frame->records[0].events[0].payload = R"({"amount":1000000})";
    auto resealed = encode(*frame);
    REQUIRE(resealed);
    REQUIRE(sqlite3_prepare_v2(db, "UPDATE log SET frame = ?1, crc = ?2 WHERE position = 3", -1,
                               &st, nullptr) == SQLITE_OK);
    sqlite3_bind_blob(st, 1, resealed->data(), static_cast<int>(resealed->size()), SQLITE_STATIC);
    uint32_t crc = 0;
    for (size_t i = 0; i < 4; ++i)
      crc |= uint32_t{(*resealed)[resealed->size() - 4 + i]} << (8 * i);
    sqlite3_bind_int64(st, 2, crc);
    REQUIRE(sqlite3_step(st) == SQLITE_DONE);
    sqlite3_finalize(st);
    sqlite3_close(db);
  }
  auto report = verify_journal(path);
  REQUIRE(report);
  REQUIRE_FALSE(report->ok());
  CHECK(report->problems.front().find("frame 4 does not hold the SHA-256") != std::string::npos);
  auto reopened = open_sqlite_journal(log_options(path));
  REQUIRE_FALSE(reopened);
  CHECK(code_of(reopened.error()) == errc::journal_failure);
  CHECK(message_of(reopened.error()).find("frame 4") != std::string::npos);
}

namespace {

// Frames 1..n of one stream, frame p storing request r<p> answered at
// p x 100 ms, taken into `index`.
void store_requests(log_index& index, uint64_t n) {
  frame_bytes previous;
  for (uint64_t position = 1; position <= n; ++position) {
    log_frame f;
    f.position = position;
    if (position > 1)
      f.previous = hash_of_frame(previous);
    log_record r;
    r.stream = "wallet/a";
    r.first_seq = position;
    r.previous_position = position - 1;
    r.events = {a_log_event(static_cast<int>(position))};
    r.request = request_record{"r" + std::to_string(position), "{}"};
    r.request_at_ms = static_cast<int64_t>(position) * 100;
    f.records.push_back(std::move(r));
    auto bytes = encode(f);
    REQUIRE(bytes);
    REQUIRE_FALSE(index.apply(f, *bytes));
    previous = std::move(*bytes);
  }
}

uint64_t one_hash(std::string_view, std::string_view) { return 42; }

} // namespace

TEST_CASE("the index forgets stored requests oldest first, only those past the cutoff, at most "
          "as many as asked") {
  log_index index;
  store_requests(index, 4);
  REQUIRE(index.requests() == 4);
  CHECK(index.request_frames("wallet/a", "r3") == std::vector<uint64_t>{3});
  CHECK(index.request_frames("wallet/b", "r3").empty());
  CHECK(index.prune_requests(250, 1) == 1);
  CHECK(index.request_frames("wallet/a", "r1").empty());
  CHECK(index.request_frames("wallet/a", "r2") == std::vector<uint64_t>{2});
  CHECK(index.prune_requests(250, 10) == 1);
  CHECK(index.request_frames("wallet/a", "r2").empty());
  CHECK(index.request_frames("wallet/a", "r3") == std::vector<uint64_t>{3});
  CHECK(index.prune_requests(250, 10) == 0);
  CHECK(index.requests() == 2);
  CHECK(index.prune_requests(401, 10) == 2);
  CHECK(index.requests() == 0);
}

TEST_CASE("requests whose hashes collide are all kept, each lookup names every candidate frame, "
          "and forgetting one keeps the others") {
  log_index index{&one_hash};
  store_requests(index, 3);
  REQUIRE(index.requests() == 3);
  // Any request, stored or not, has the same hash: every frame is a
  // candidate, newest first, for the reader to confirm.
  CHECK(index.request_frames("wallet/a", "r1") == std::vector<uint64_t>{3, 2, 1});
  CHECK(index.request_frames("wallet/z", "never") == std::vector<uint64_t>{3, 2, 1});
  CHECK(index.prune_requests(150, 10) == 1); // r1, the one in the table's own slot
  CHECK(index.request_frames("wallet/a", "r2") == std::vector<uint64_t>{3, 2});
  CHECK(index.prune_requests(250, 10) == 1);
  CHECK(index.request_frames("wallet/a", "r3") == std::vector<uint64_t>{3});
  CHECK(index.prune_requests(350, 10) == 1);
  CHECK(index.request_frames("wallet/a", "r3").empty());
  CHECK(index.requests() == 0);
}

TEST_CASE("with every request hash colliding, a lookup reads the candidate frames and finds "
          "exactly the stored request, or none") {
  temp_dir dir;
  auto path = (dir / "journal.db").string();
  {
    auto j = open_or_fail(log_options(path));
    fill(*j); // r0, r1, r2 on wallet/a and on wallet/b: six frames
  }
  auto db = open_journal_for_inspection(path);
  REQUIRE(db);
  journal_reader file{std::move(*db), nullptr};
  log_index index{&one_hash};
  REQUIRE_FALSE(catch_up(index, file));
  CHECK(index.request_frames("wallet/a", "r0").size() == 6u);
  for (uint64_t n = 0; n < 3; ++n)
    for (auto stream : {"wallet/a", "wallet/b"}) {
      auto found = find_log_request(index, file, stream, "r" + std::to_string(n));
      REQUIRE(found);
      REQUIRE(found->has_value());
      CHECK((*found)->request_id == "r" + std::to_string(n));
      CHECK((*found)->seq == n + 1);
    }
  for (auto [stream, id] : {std::pair{"wallet/a", "r3"}, std::pair{"wallet/c", "r0"}}) {
    auto missing = find_log_request(index, file, stream, id);
    REQUIRE(missing);
    CHECK_FALSE(missing->has_value());
  }
}

TEST_CASE("reading whole streams at once gives each stream the events reading it alone gives") {
  temp_dir dir;
  auto path = (dir / "journal.db").string();
  uint64_t records = 0;
  {
    auto j = open_or_fail(log_options(path));
    // 40 streams, 25 rounds; each round appends 1 to 3 events to every
    // stream at once, so group commit puts many streams' records in a frame.
    std::mt19937 rng{7};
    std::map<std::string, uint64_t> seqs;
    for (int round = 0; round < 25; ++round) {
      std::vector<std::future<caf::expected<append_ack>>> answers;
      for (int s = 0; s < 40; ++s) {
        auto stream = "wallet/s" + std::to_string(100 + s);
        std::vector<event> events;
        auto n = 1 + rng() % 3;
        for (uint32_t e = 0; e < n; ++e)
          events.push_back(amount_event("deposited", round * 100 + s * 10 + e));
        auto promise = std::make_shared<std::promise<caf::expected<append_ack>>>();
        answers.push_back(promise->get_future());
        REQUIRE_FALSE(j->append(append_request{stream, seqs[stream], std::move(events), std::nullopt},
                                [promise](caf::expected<append_ack> r) {
                                  promise->set_value(std::move(r));
                                }));
        seqs[stream] += n;
        ++records;
      }
      for (auto& answer : answers)
        REQUIRE(answer.get());
    }
  }
  CHECK(count(path, "log") < static_cast<int64_t>(records)); // frames hold several records

  auto db = open_journal_for_inspection(path);
  REQUIRE(db);
  journal_reader file{std::move(*db), nullptr};
  log_index index;
  REQUIRE_FALSE(catch_up(index, file));
  auto streams = index.all_streams("", 1000);
  REQUIRE(streams.size() == 40u);
  std::vector<std::string> every_other;
  for (size_t i = 0; i < streams.size(); i += 2)
    every_other.push_back(streams[i]);
  for (auto& subset : {streams, every_other, std::vector<std::string>{streams.back()}}) {
    auto all = read_log_streams(index, file, subset);
    REQUIRE(all);
    REQUIRE(all->size() == subset.size());
    for (size_t i = 0; i < subset.size(); ++i) {
      auto alone = read_log_events(index, file, subset[i], 1, 100000);
      REQUIRE(alone);
      CHECK(alone->size() == index.stream(subset[i]).last_seq);
      CHECK(*alone == (*all)[i]);
    }
  }
}
