// Rewriting a row-layout journal in the log layout (layout_upgrade.hpp):
// everything the row journal answered, the log journal answers the same;
// a damaged or busy file is refused and left as it was.

#include "journal_support.hpp"

#include "wager/persistence/backup.hpp"
#include "wager/persistence/journal_schema.hpp"
#include "wager/persistence/layout_upgrade.hpp"

#include "support/temp_dir.hpp"

#include <doctest/doctest.h>

#include <map>
#include <random>

using namespace wager;
using namespace wager::test;

namespace {

journal_options layout_options(const std::string& path, journal_layout layout) {
  journal_options o;
  o.path = path;
  o.layout = layout;
  o.request_retention_ms = 0; // nothing pruned while the test reads
  return o;
}

// Everything a journal answers about its streams and requests.
struct seen {
  std::map<std::string, std::vector<recorded_event>> events;
  std::map<std::string, uint64_t> last_seqs;
  std::map<std::string, std::optional<stored_request>> requests;
  std::vector<std::string> open_wallets;
  std::vector<std::string> wallets;
  std::map<std::string, std::optional<snapshot>> snapshots;

  friend bool operator==(const seen&, const seen&) = default;
};

seen read_all(journal& j, const std::vector<std::string>& streams,
              const std::vector<std::pair<std::string, std::string>>& requests) {
  seen s;
  for (auto& stream : streams) {
    auto events = j.read_events(stream, 1, 100000);
    REQUIRE(events);
    s.events[stream] = *events;
    s.last_seqs[stream] = *j.last_seq(stream);
    auto snap = j.load_snapshot(stream);
    REQUIRE(snap);
    s.snapshots[stream] = *snap;
  }
  for (auto& [stream, id] : requests) {
    auto r = j.find_request(stream, id);
    REQUIRE(r);
    s.requests[stream + " " + id] = *r;
  }
  auto open = j.list_open_streams("wallet", "", 1000);
  REQUIRE(open);
  s.open_wallets = *open;
  auto all = j.list_streams("wallet", "", 1000);
  REQUIRE(all);
  s.wallets = *all;
  return s;
}

} // namespace

TEST_CASE("a row journal rewritten in the log layout answers every read as before") {
  temp_dir dir;
  auto path = (dir / "journal.db").string();
  std::vector<std::string> streams;
  std::vector<std::pair<std::string, std::string>> requests;
  std::mt19937_64 random{20261206};
  seen before;
  {
    auto j = open_or_fail(layout_options(path, journal_layout::rows));
    std::map<std::string, uint64_t> seqs;
    for (int w = 0; w < 12; ++w)
      streams.push_back("wallet/u" + std::to_string(w));
    streams.push_back("market/m1");
    // Random appends: one to several events, some with a request, some
    // with only a request (a refusal stored with no events), some marking
    // open work; a long stream so its records span many frames.
    for (int i = 0; i < 1500; ++i) {
      auto& stream = streams[i % 7 == 0 ? streams.size() - 1 : random() % (streams.size() - 1)];
      auto& seq = seqs[stream];
      append_request r{stream, seq, {}, std::nullopt};
      auto kind = random() % 10;
      auto n = kind == 0 ? 0 : 1 + random() % 4;
      for (uint64_t e = 0; e < n; ++e)
        r.events.push_back(amount_event("deposited", int64_t(i * 10 + e)));
      if (n == 0 || random() % 3 == 0) {
        auto id = "q" + std::to_string(i);
        r.request = request_record{id, "{\"i\":" + std::to_string(i) + "}"};
        requests.emplace_back(stream, id);
      }
      if (n > 0 && random() % 4 == 0)
        r.open_work = random() % 2 == 0;
      auto ack = append_sync(*j, std::move(r));
      REQUIRE_MESSAGE(ack, message_of(ack.error()));
      seq += n;
    }
    // A request stored before a stream's first event, on a stream that
    // never gets one.
    REQUIRE(append_sync(*j, append_request{"wallet/empty", 0, {}, request_record{"e1", "{}"}}));
    requests.emplace_back("wallet/empty", "e1");
    streams.push_back("wallet/empty");
    REQUIRE(save_sync(*j, snapshot{"wallet/u3", seqs["wallet/u3"], 1, "{\"balance\":1}", 0}));
    requests.emplace_back("wallet/u1", "never-stored");
    before = read_all(*j, streams, requests);
  }
  REQUIRE(query_int(path, "SELECT count(*) FROM events") > 0);

  auto report = upgrade_to_log_layout(path);
  REQUIRE_MESSAGE(report, message_of(report.error()));
  CHECK(report->converted);
  uint64_t events = 0;
  for (auto& [stream, history] : before.events)
    events += history.size();
  CHECK(report->events == events);
  CHECK(report->requests == requests.size() - 1);
  CHECK(report->frames >= 1u);
  CHECK(query_int(path, "SELECT count(*) FROM events") == 0);
  CHECK(query_int(path, "SELECT count(*) FROM requests") == 0);
  CHECK(query_int(path, "SELECT count(*) FROM streams") == 0);
  CHECK(query_int(path, "SELECT count(*) FROM layout WHERE name = 'log'") == 1);

  auto checked = verify_journal(path);
  REQUIRE(checked);
  CHECK_MESSAGE(checked->ok(), checked->problems.front());

  // Opened as it is now, in whatever layout a new journal would get.
  auto j = open_or_fail(layout_options(path, journal_layout::rows));
  auto after = read_all(*j, streams, requests);
  CHECK(after.events == before.events);
  CHECK(after.last_seqs == before.last_seqs);
  CHECK(after.requests == before.requests);
  CHECK(after.open_wallets == before.open_wallets);
  CHECK(after.wallets == before.wallets);
  CHECK(after.snapshots == before.snapshots);
  // Still appendable: the sequence check and reused request ids hold.
  auto& stream = streams.front();
  auto last = before.last_seqs[stream];
  auto stale = append_sync(*j, stream, last - 1, {amount_event("deposited", 1)});
  REQUIRE_FALSE(stale);
  CHECK(code_of(stale.error()) == errc::sequence_conflict);
  append_request reread{stream, last, {amount_event("deposited", 1)}, std::nullopt};
  reread.from_read = true;
  auto next = append_sync(*j, std::move(reread));
  REQUIRE_MESSAGE(next, message_of(next.error()));
  auto [taken_stream, taken_id] = requests.front();
  auto reused = append_sync(
    *j, append_request{taken_stream, *j->last_seq(taken_stream), {}, request_record{taken_id, "{}"}});
  REQUIRE_FALSE(reused);
  CHECK(code_of(reused.error()) == errc::request_id_reused);
  j.reset();

  // A second upgrade has nothing to do.
  auto again = upgrade_to_log_layout(path);
  REQUIRE(again);
  CHECK_FALSE(again->converted);
}

TEST_CASE("a damaged row journal is refused and left as it was") {
  temp_dir dir;
  auto path = (dir / "journal.db").string();
  {
    auto j = open_or_fail(layout_options(path, journal_layout::rows));
    for (uint64_t seq = 0; seq < 5; ++seq)
      REQUIRE(append_sync(*j, "wallet/a", seq, {amount_event("deposited", 1)}));
    REQUIRE(append_sync(*j, "wallet/b", 0, {amount_event("deposited", 2)}));
  }
  auto edit = [&](const std::string& sql) {
    sqlite::connection db;
    REQUIRE_FALSE(db.open(path, sqlite::open_mode::read_write));
    REQUIRE_FALSE(db.exec(sql, "editing the journal"));
  };
  auto refused_with = [&](const std::string& says) {
    auto r = upgrade_to_log_layout(path);
    REQUIRE_FALSE(r);
    CHECK(code_of(r.error()) == errc::journal_failure);
    INFO(message_of(r.error()));
    CHECK(message_of(r.error()).find(says) != std::string::npos);
    CHECK(query_int(path, "SELECT count(*) FROM layout WHERE name = 'rows'") == 1);
    CHECK(query_int(path, "SELECT count(*) FROM log") == 0);
    CHECK(query_int(path, "SELECT count(*) FROM events") == 6);
  };
  SUBCASE("a changed payload") {
    edit("UPDATE events SET payload = '{\"amount\":1000}' WHERE stream = 'wallet/a' AND seq = 3");
    refused_with("checksum mismatch in event 3 of wallet/a");
  }
  SUBCASE("a missing event") {
    edit("UPDATE events SET seq = 9 WHERE stream = 'wallet/a' AND seq = 3");
    refused_with("wallet/a: event 3 is missing");
  }
  SUBCASE("a last seq beyond the events") {
    edit("UPDATE streams SET last_seq = 7 WHERE stream = 'wallet/b'");
    refused_with("wallet/b: event 2 is missing");
  }
  SUBCASE("events beyond the last seq") {
    edit("UPDATE streams SET last_seq = 4 WHERE stream = 'wallet/a'");
    refused_with("wallet/a has events after its last seq 4");
  }
}

TEST_CASE("a journal open elsewhere is not upgraded under it") {
  temp_dir dir;
  auto path = (dir / "journal.db").string();
  auto j = open_or_fail(layout_options(path, journal_layout::rows));
  REQUIRE(append_sync(*j, "wallet/a", 0, {amount_event("deposited", 1)}));
  auto r = upgrade_to_log_layout(path);
  REQUIRE_FALSE(r);
  INFO(message_of(r.error()));
  CHECK(code_of(r.error()) == errc::unavailable);
  CHECK(message_of(r.error()).find("in use") != std::string::npos);
  CHECK(query_int(path, "SELECT count(*) FROM layout WHERE name = 'rows'") == 1);
  j.reset();
  auto done = upgrade_to_log_layout(path);
  REQUIRE_MESSAGE(done, message_of(done.error()));
  CHECK(done->converted);
  CHECK(done->events == 1u);
}
