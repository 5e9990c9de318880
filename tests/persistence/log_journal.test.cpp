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
#include "support/wait.hpp"

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

// The blob in the first column of the first row `sql` selects.
std::vector<uint8_t> read_blob(const std::string& path, const std::string& sql) {
  sqlite::connection db;
  REQUIRE_FALSE(db.open(path, sqlite::open_mode::read_only));
  sqlite::statement st{db.get(), sql};
  REQUIRE(st.step() == SQLITE_ROW);
  auto data = st.column_blob(0);
  return {data.begin(), data.end()};
}

// Runs `sql` with `bytes` bound to ?1: an edit behind the journal's back.
void write_blob(const std::string& path, const std::string& sql,
                std::span<const uint8_t> bytes) {
  sqlite::connection db;
  REQUIRE_FALSE(db.open(path, sqlite::open_mode::read_write));
  sqlite::statement st{db.get(), sql};
  st.bind_blob(1, bytes);
  REQUIRE(st.step() == SQLITE_DONE);
}

int64_t count(const std::string& path, const std::string& table) {
  return query_int(path, "SELECT count(*) FROM " + table);
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
  auto frame = decode_log_frame(read_blob(path, "SELECT frame FROM log WHERE position = 3"));
  REQUIRE(frame);
  frame->records[0].events[0].payload = R"({"amount":1000000})";
  auto resealed = encode(*frame);
  REQUIRE(resealed);
  write_blob(path,
             "UPDATE log SET frame = ?1, crc = " + std::to_string(trailing_crc32c(*resealed)) +
               " WHERE position = 3",
             *resealed);
  auto report = verify_journal(path);
  REQUIRE(report);
  REQUIRE_FALSE(report->ok());
  CHECK(report->problems.front().find("frame 4 does not hold the SHA-256") != std::string::npos);
  // Reading every frame at open (no index checkpoint), the journal refuses.
  auto every_frame = log_options(path);
  every_frame.index_checkpoint_frames = 0;
  auto reopened = open_sqlite_journal(every_frame);
  REQUIRE_FALSE(reopened);
  CHECK(code_of(reopened.error()) == errc::journal_failure);
  CHECK(message_of(reopened.error()).find("frame 4") != std::string::npos);
  // With the checkpoint the journal saved at close (frame 6), an opening
  // reads no frame before it, and opens; the frames before it are checked
  // right after, and the journal then refuses every write.
  auto from_checkpoint = open_sqlite_journal(log_options(path));
  REQUIRE_MESSAGE(from_checkpoint, message_of(from_checkpoint.error()));
  auto& j = **from_checkpoint;
  REQUIRE(wait_until([&] { return !j.health().writable; }));
  CHECK(j.health().last_error.find("frame 4") != std::string::npos);
  auto refused = append_sync(j, "wallet/a", 3, {amount_event("deposited", 1)});
  REQUIRE_FALSE(refused);
  CHECK(code_of(refused.error()) == errc::journal_failure);
  CHECK(message_of(refused.error()).find("frame 4") != std::string::npos);
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

// --- the index checkpoint ---------------------------------------------------------

namespace {

// Everything an index answers about `streams` and `requests`.
std::string describe(const log_index& index, int streams, int requests) {
  std::string out = "applied " + std::to_string(index.applied()) + "\n";
  for (int i = 0; i < streams; ++i) {
    auto name = "wallet/s" + std::to_string(i);
    auto view = index.stream(name);
    out += name + " " + std::to_string(view.last_seq) + " " + std::to_string(view.last_position);
    for (uint64_t from = 1; from <= view.last_seq + 1; from += 3)
      for (auto& r : index.records_from(name, from, 5))
        out += " " + std::to_string(r.first_seq) + "@" + std::to_string(r.position);
    out += "\n";
  }
  for (int i = 0; i < requests; ++i)
    for (int s = 0; s < streams; ++s)
      for (auto p : index.request_frames("wallet/s" + std::to_string(s), "r" + std::to_string(i)))
        out += "r" + std::to_string(i) + "/" + std::to_string(s) + "@" + std::to_string(p) + " ";
  for (auto open : {false, true})
    for (auto& name : index.streams("wallet", "", 1000, open))
      out += (open ? " open:" : " ") + name;
  return out + " requests " + std::to_string(index.requests());
}

} // namespace

TEST_CASE("an index saved and loaded answers as the index it was saved from, and goes on alike") {
  std::mt19937_64 random{1206};
  chain_builder chain;
  // Frames of random records: 1..3 events, or none with a request; several
  // records of a stream in one frame; streams with more than 64 records.
  for (int f = 0; f < 400; ++f) {
    std::vector<std::pair<int, size_t>> records;
    auto n = 1 + random() % 6;
    for (uint64_t k = 0; k < n; ++k)
      records.emplace_back(static_cast<int>(random() % 9), random() % 4);
    chain.add(records);
  }
  for (size_t cut : {size_t{0}, size_t{1}, size_t{137}, size_t{399}}) {
    CAPTURE(cut);
    log_index original;
    for (size_t i = 0; i < cut; ++i)
      REQUIRE_FALSE(original.apply(chain.decoded()[i], chain.frames()[i]));
    auto bytes = original.save();
    log_index loaded;
    auto err = loaded.load(bytes);
    REQUIRE_MESSAGE(!err, message_of(err));
    CHECK(describe(loaded, 9, 400) == describe(original, 9, 400));
    CHECK(loaded.last_hash() == original.last_hash());
    CHECK(loaded.save() == bytes);
    // The frames after the cut go into both alike, checked against the
    // loaded hash and back-pointers; pruning forgets the same requests.
    for (size_t i = cut; i < chain.frames().size(); ++i) {
      REQUIRE_FALSE(original.apply(chain.decoded()[i], chain.frames()[i]));
      REQUIRE_FALSE(loaded.apply(chain.decoded()[i], chain.frames()[i]));
    }
    CHECK(describe(loaded, 9, 400) == describe(original, 9, 400));
  }
}

TEST_CASE("a damaged or truncated index checkpoint is refused and leaves the index empty") {
  chain_builder chain;
  for (int f = 0; f < 80; ++f)
    chain.add({{f % 3, 1}, {(f + 1) % 3, 0}});
  log_index original;
  for (size_t i = 0; i < chain.frames().size(); ++i)
    REQUIRE_FALSE(original.apply(chain.decoded()[i], chain.frames()[i]));
  auto bytes = original.save();
  for (size_t at = 0; at < bytes.size(); at += 7) {
    auto damaged = bytes;
    damaged[at] ^= 0x10;
    log_index index;
    auto err = index.load(damaged);
    REQUIRE(err);
    CHECK(message_of(err).find("checkpoint") != std::string::npos);
    CHECK(index.applied() == 0u);
    CHECK(index.stream("wallet/s0").last_seq == 0u);
    // Still usable: the frames from the first go in.
    REQUIRE_FALSE(index.apply(chain.decoded()[0], chain.frames()[0]));
  }
  for (size_t size : {size_t{0}, size_t{10}, bytes.size() - 1}) {
    log_index index;
    CHECK(index.load(std::span{bytes}.first(size)));
    CHECK(index.applied() == 0u);
  }
}

TEST_CASE("a journal saves its index checkpoint every so many frames and at close, and opens "
          "from it reading only the frames after it") {
  temp_dir dir;
  auto path = (dir / "journal.db").string();
  auto options = log_options(path);
  options.index_checkpoint_frames = 5;
  auto checkpoint_at = [&] {
    return query_int(path, "SELECT coalesce(max(position), 0) FROM index_checkpoint");
  };
  std::vector<std::string> streams{"wallet/a", "wallet/b", "market/m"};
  std::map<std::string, uint64_t> seqs;
  auto append_round = [&](journal& j, int round) {
    for (auto& stream : streams) {
      append_request r{stream, seqs[stream], {amount_event("deposited", round)}, std::nullopt};
      r.request = request_record{"q" + std::to_string(round) + stream, "{}"};
      r.open_work = round % 2 == 0;
      REQUIRE(append_sync(j, std::move(r)));
      ++seqs[stream];
    }
  };
  auto reads = [&](journal& j) {
    std::string out;
    for (auto& stream : streams) {
      auto events = j.read_events(stream, 1, 1000);
      REQUIRE(events);
      out += stream + ":" + std::to_string(events->size()) + ":" +
             std::to_string(*j.last_seq(stream)) + " ";
      auto found = j.find_request(stream, "q3" + stream);
      REQUIRE(found);
      out += found->has_value() ? std::to_string((*found)->seq) + " " : "none ";
    }
    auto open = j.list_open_streams("wallet", "", 10);
    REQUIRE(open);
    out += std::to_string(open->size());
    return out;
  };
  std::string before;
  {
    auto j = open_or_fail(options);
    for (int round = 0; round < 4; ++round) // 12 frames, one append each
      append_round(*j, round);
    // Saved between batches once 5 frames had passed since the last (at 5,
    // then at 10 unless the first save took over a 50th of the time since).
    CHECK(checkpoint_at() >= 5);
    CHECK(checkpoint_at() <= 10);
    before = reads(*j);
  }
  CHECK(checkpoint_at() == 12); // and at close
  {
    // A second opening while the first is open: it loads frame 12's
    // checkpoint, then the frames the other appended after it.
    auto first = open_or_fail(options);
    append_round(*first, 4); // frames 13..15
    append_round(*first, 5); // 16..18
    auto second = open_or_fail(options);
    CHECK(reads(*second) == reads(*first));
    CHECK(reads(*second) != before);
    auto stale = append_sync(*second, "wallet/a", seqs["wallet/a"] - 1,
                             {amount_event("deposited", 1)});
    REQUIRE_FALSE(stale);
    CHECK(code_of(stale.error()) == errc::sequence_conflict);
  }
  // Every frame is needed only without a checkpoint: delete frames 1..17
  // in a copy and the journal still opens from the checkpoint at 18, but
  // not without it.
  auto copy = (dir / "copy.db").string();
  REQUIRE(backup_journal(path, copy));
  {
    sqlite::connection db;
    REQUIRE_FALSE(db.open(copy, sqlite::open_mode::read_write));
    REQUIRE_FALSE(db.exec("DELETE FROM log WHERE position < 18", "deleting frames"));
  }
  auto copy_options = log_options(copy);
  CHECK(open_sqlite_journal(copy_options));
  copy_options.index_checkpoint_frames = 0;
  CHECK_FALSE(open_sqlite_journal(copy_options));
}

TEST_CASE("a checkpoint that does not describe the log is ignored and every frame is read") {
  temp_dir dir;
  auto path = (dir / "journal.db").string();
  auto longer = (dir / "longer.db").string(); // 7 frames
  auto same_length = (dir / "same.db").string(); // 6 other frames
  {
    auto j = open_or_fail(log_options(path));
    fill(*j);
  }
  {
    auto j = open_or_fail(log_options(longer));
    fill(*j);
    REQUIRE(append_sync(*j, "wallet/c", 0, {amount_event("deposited", 5)}));
  }
  {
    auto j = open_or_fail(log_options(same_length));
    for (uint64_t seq = 0; seq < 6; ++seq)
      REQUIRE(append_sync(*j, "wallet/c", seq, {amount_event("deposited", 5)}));
  }
  CHECK(query_int(path, "SELECT max(position) FROM index_checkpoint") == 6);
  // Another journal's checkpoint put into this one: one taken at a frame
  // this log does not have, then one at frame 6 of another log.
  for (auto* from : {&longer, &same_length}) {
    CAPTURE(*from);
    {
      sqlite::connection db;
      REQUIRE_FALSE(db.open(path, sqlite::open_mode::read_write));
      REQUIRE_FALSE(db.exec("ATTACH '" + *from + "' AS other; DELETE FROM index_checkpoint; "
                            "INSERT INTO index_checkpoint SELECT * FROM other.index_checkpoint",
                            "copying a checkpoint"));
    }
    auto j = open_or_fail(log_options(path));
    CHECK(*j->last_seq("wallet/c") == 0u); // not the other journal's stream
    CHECK(*j->last_seq("wallet/a") == 3u);
    auto events = j->read_events("wallet/b", 1, 10);
    REQUIRE(events);
    CHECK(events->size() == 3u);
  }
}

TEST_CASE("a checkpoint changed to match the log's last frame is caught by the check of the "
          "frames before it") {
  temp_dir dir;
  auto path = (dir / "journal.db").string();
  auto other = (dir / "other.db").string();
  {
    auto j = open_or_fail(log_options(path));
    fill(*j);
  }
  {
    auto j = open_or_fail(log_options(other));
    for (uint64_t seq = 0; seq < 6; ++seq)
      REQUIRE(append_sync(*j, "wallet/c", seq, {amount_event("deposited", 5)}));
  }
  // The other log's checkpoint (frame 6), given the SHA-256 of this log's
  // frame 6 and resealed: it passes the checks an opening makes.
  auto checkpoint = read_blob(other, "SELECT data FROM index_checkpoint WHERE part = 0");
  auto hash = hash_of_frame(read_blob(path, "SELECT frame FROM log WHERE position = 6"));
  REQUIRE(checkpoint[1] == 6); // version, then applied (one varint byte)
  std::copy(hash.begin(), hash.end(), checkpoint.begin() + 2);
  auto crc = crc32c(std::span{checkpoint}.first(checkpoint.size() - 4));
  for (size_t i = 0; i < 4; ++i)
    checkpoint[checkpoint.size() - 4 + i] = static_cast<uint8_t>(crc >> (8 * i));
  write_blob(path, "UPDATE index_checkpoint SET data = ?1 WHERE part = 0", checkpoint);
  auto report = verify_journal(path);
  REQUIRE(report);
  REQUIRE_FALSE(report->ok());
  CHECK(report->problems.front().find("is not what its frames give") != std::string::npos);
  auto j = open_or_fail(log_options(path));
  CHECK(*j->last_seq("wallet/c") == 6u); // the forged index is in use...
  REQUIRE(wait_until([&] { return !j->health().writable; })); // ...until the check
  CHECK(j->health().last_error.find("is not what its frames give") != std::string::npos);
  auto refused = append_sync(*j, "wallet/c", 6, {amount_event("deposited", 1)});
  REQUIRE_FALSE(refused);
  CHECK(code_of(refused.error()) == errc::journal_failure);
  j.reset();
  // Reading every frame, the journal is what its frames say.
  auto every_frame = log_options(path);
  every_frame.index_checkpoint_frames = 0;
  auto honest = open_or_fail(every_frame);
  CHECK(*honest->last_seq("wallet/c") == 0u);
  CHECK(*honest->last_seq("wallet/a") == 3u);
}

TEST_CASE("the check of the frames before a checkpoint passes on a journal as written") {
  temp_dir dir;
  auto path = (dir / "journal.db").string();
  auto options = log_options(path);
  options.index_checkpoint_frames = 4;
  {
    auto j = open_or_fail(options);
    fill(*j);
    for (uint64_t seq = 3; seq < 40; ++seq)
      REQUIRE(append_sync(*j, "wallet/a", seq, {amount_event("deposited", 1)}));
  }
  {
    // Opened from the checkpoint, appended to, closed: a checkpoint saved
    // by an index that itself was loaded from one.
    auto j = open_or_fail(options);
    REQUIRE(append_sync(*j, "wallet/b", 3, {amount_event("deposited", 1)}));
  }
  CHECK(query_int(path, "SELECT max(position) FROM index_checkpoint") == 44);
  auto db = open_journal_file(options, journal_role::reader);
  REQUIRE(db);
  journal_reader reader{std::move(*db), nullptr};
  std::atomic<bool> cancel{false};
  auto err = check_index_checkpoint(reader, cancel);
  CHECK_MESSAGE(!err, message_of(err));
}

TEST_CASE("read_log pages through the log in order, filters by kind and names each page's last "
          "frame by its hash") {
  temp_dir dir;
  auto path = (dir / "journal.db").string();
  auto j = open_or_fail(log_options(path));
  fill(*j); // six frames, alternately wallet/a and wallet/b
  REQUIRE(append_sync(*j, append_request{"market/m", 0, {amount_event("opened", 1)}, std::nullopt}));
  REQUIRE(*j->log_end() == 7u);

  std::vector<std::string> seen;
  uint64_t at = 0;
  for (;;) {
    auto page = j->read_log(at, 2);
    REQUIRE(page);
    if (page->end == at)
      break;
    CHECK(page->end <= at + 2);
    CHECK(page->end_hash == hash_of_frame(read_blob(
                              path, "SELECT frame FROM log WHERE position = "
                                      + std::to_string(page->end))));
    for (auto& a : page->appends) {
      CHECK(a.position > at);
      CHECK(a.position <= page->end);
      seen.push_back(a.stream + "#" + std::to_string(a.events.front().seq));
    }
    at = page->end;
  }
  CHECK(seen == std::vector<std::string>{"wallet/a#1", "wallet/b#1", "wallet/a#2", "wallet/b#2",
                                         "wallet/a#3", "wallet/b#3", "market/m#1"});
  auto wallets = j->read_log(0, 100, "wallet");
  REQUIRE(wallets);
  CHECK(wallets->end == 7u);
  CHECK(wallets->appends.size() == 6u);
  auto markets = j->read_log(0, 100, "market");
  REQUIRE(markets);
  REQUIRE(markets->appends.size() == 1u);
  CHECK(markets->appends[0].stream == "market/m");
  CHECK(j->read_log(0, 100, "walle")->appends.empty());
  // Past the end: nothing, and the position it was asked after.
  auto past = j->read_log(9, 5);
  REQUIRE(past);
  CHECK(past->end == 9u);
  CHECK(past->appends.empty());
}

TEST_CASE("a row-layout journal has no ordered log to read") {
  temp_dir dir;
  auto o = options_at((dir / "journal.db").string());
  o.layout = journal_layout::rows;
  auto j = open_or_fail(o);
  fill(*j);
  auto page = j->read_log(0, 10);
  REQUIRE_FALSE(page);
  CHECK(code_of(page.error()) == errc::unavailable);
  REQUIRE_FALSE(j->log_end());
}
