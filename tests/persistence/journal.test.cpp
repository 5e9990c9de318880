#include "journal_support.hpp"

#include "support/temp_dir.hpp"
#include "support/wait.hpp"

#include <doctest/doctest.h>

#include <atomic>
#include <mutex>

using namespace wager;
using namespace wager::test;

namespace {

struct fixture {
  temp_dir dir;
  std::unique_ptr<journal> j = open_or_fail(options_at((dir / "journal.db").string()));
};

} // namespace

TEST_CASE_FIXTURE(fixture, "an append is answered with its seqs and reads back as written") {
  auto ack = append_sync(*j, "wallet/u1", 0,
                         {amount_event("deposited", 100), amount_event("withdrawn", 30)});
  REQUIRE(ack);
  CHECK(ack->first_seq == 1);
  CHECK(ack->last_seq == 2);
  auto events = j->read_events("wallet/u1", 1, 100);
  REQUIRE(events);
  REQUIRE(events->size() == 2);
  CHECK((*events)[0].seq == 1);
  CHECK((*events)[0].data == amount_event("deposited", 100));
  CHECK((*events)[1].seq == 2);
  CHECK((*events)[1].data == amount_event("withdrawn", 30));
  CHECK(*j->last_seq("wallet/u1") == 2);
  CHECK(*j->last_seq("wallet/nobody") == 0);
  auto tail = j->read_events("wallet/u1", 2, 100);
  REQUIRE(tail);
  CHECK(tail->size() == 1);
}

TEST_CASE_FIXTURE(fixture, "an append expecting a stale seq fails with a conflict and writes nothing") {
  REQUIRE(append_sync(*j, "wallet/u1", 0, {amount_event("deposited", 100)}));
  auto stale = append_sync(*j, "wallet/u1", 0, {amount_event("deposited", 5)});
  REQUIRE_FALSE(stale);
  CHECK(code_of(stale.error()) == errc::sequence_conflict);
  CHECK(message_of(stale.error()).find("is at seq 1") != std::string::npos);
  auto ahead = append_sync(*j, "wallet/u1", 7, {amount_event("deposited", 5)});
  REQUIRE_FALSE(ahead);
  CHECK(code_of(ahead.error()) == errc::sequence_conflict);
  CHECK(j->read_events("wallet/u1", 1, 100)->size() == 1);
  CHECK(*j->last_seq("wallet/u1") == 1);
}

TEST_CASE_FIXTURE(fixture, "a conflicting append fails alone and the rest of its batch commits") {
  REQUIRE(append_sync(*j, "wallet/busy", 0, {amount_event("deposited", 1)}));
  std::mutex m;
  std::vector<caf::expected<append_ack>> answers(40, caf::expected<append_ack>{caf::error{}});
  std::atomic<int> answered = 0;
  for (int i = 0; i < 40; ++i) {
    // Every 10th append expects a seq its stream never had.
    auto stream = "wallet/b" + std::to_string(i);
    uint64_t expected = i % 10 == 0 ? 3 : 0;
    auto err = j->append({stream, expected, {amount_event("deposited", i)}, std::nullopt},
                         [&, i](caf::expected<append_ack> r) {
                           std::lock_guard lock{m};
                           answers[i] = std::move(r);
                           ++answered;
                         });
    REQUIRE_FALSE(err);
  }
  REQUIRE(wait_until([&] { return answered == 40; }));
  for (int i = 0; i < 40; ++i) {
    auto stream = "wallet/b" + std::to_string(i);
    CAPTURE(i);
    CHECK(static_cast<bool>(answers[i]) == (i % 10 != 0));
    CHECK(*j->last_seq(stream) == (i % 10 == 0 ? 0 : 1));
  }
}

TEST_CASE_FIXTURE(fixture, "pipelined appends of one stream are committed and answered in order") {
  constexpr int appends = 200;
  std::mutex m;
  std::vector<uint64_t> acked;
  for (int i = 0; i < appends; ++i) {
    auto err = j->append({"market/m1", static_cast<uint64_t>(i), {amount_event("deposited", i)},
                          std::nullopt},
                         [&](caf::expected<append_ack> r) {
                           REQUIRE(r);
                           std::lock_guard lock{m};
                           acked.push_back(r->last_seq);
                         });
    REQUIRE_FALSE(err);
  }
  REQUIRE(wait_until([&] {
    std::lock_guard lock{m};
    return acked.size() == appends;
  }));
  for (int i = 0; i < appends; ++i)
    CHECK(acked[i] == static_cast<uint64_t>(i + 1));
  auto events = j->read_events("market/m1", 1, 1000);
  REQUIRE(events->size() == appends);
  for (int i = 0; i < appends; ++i)
    CHECK((*events)[i].data == amount_event("deposited", i));
}

TEST_CASE_FIXTURE(fixture, "appends chained on a failed append fail even where another writer's "
                           "events end at the seq they expect") {
  // Queued in this order: another writer takes seq 1; our pipeline A (expects
  // 0) and B (chained on A, expects 1) follow. B's expected seq happens to
  // hold, but B was built on A, which was never written.
  std::mutex m;
  std::vector<std::pair<char, caf::error>> answers;
  auto record = [&](char who) {
    return [&, who](caf::expected<append_ack> r) {
      std::lock_guard lock{m};
      answers.emplace_back(who, r ? caf::error{} : r.error());
    };
  };
  REQUIRE_FALSE(j->append({"wallet/twin", 0, {amount_event("deposited", 7)}, std::nullopt},
                          record('X')));
  REQUIRE_FALSE(j->append({"wallet/twin", 0, {amount_event("deposited", 1)}, std::nullopt},
                          record('A')));
  REQUIRE_FALSE(j->append({"wallet/twin", 1, {amount_event("withdrawn", 1)}, std::nullopt},
                          record('B')));
  REQUIRE(wait_until([&] {
    std::lock_guard lock{m};
    return answers.size() == 3;
  }));
  CHECK(answers[0].first == 'X');
  CHECK_FALSE(answers[0].second);
  CHECK(answers[1].first == 'A');
  CHECK(code_of(answers[1].second) == errc::sequence_conflict);
  CHECK(answers[2].first == 'B');
  CHECK(code_of(answers[2].second) == errc::sequence_conflict);
  CHECK(*j->last_seq("wallet/twin") == 1);
  // Built on the dead chain's end: still fenced.
  auto late = append_sync(*j, "wallet/twin", 2, {amount_event("withdrawn", 9)});
  CHECK(code_of(late.error()) == errc::sequence_conflict);
  // The owner re-reads (last seq 1) and appends on what is there: accepted,
  // and the fence is lifted for what follows.
  append_request fresh{"wallet/twin", 1, {amount_event("withdrawn", 2)}, std::nullopt};
  fresh.from_read = true;
  REQUIRE(append_sync(*j, fresh));
  REQUIRE(append_sync(*j, "wallet/twin", 2, {amount_event("withdrawn", 3)}));
  CHECK(*j->last_seq("wallet/twin") == 3);
}

TEST_CASE_FIXTURE(fixture, "a request result is stored with its events and a reused request id "
                           "fails and writes nothing") {
  append_request first{"wallet/u1", 0, {amount_event("deposited", 50)},
                       request_record{"req-1", R"({"status":"ok","balance":50})"}};
  REQUIRE(append_sync(*j, first));
  auto stored = j->find_request("wallet/u1", "req-1");
  REQUIRE(stored);
  REQUIRE(stored->has_value());
  CHECK((*stored)->result == R"({"status":"ok","balance":50})");
  CHECK((*stored)->seq == 1);
  append_request again{"wallet/u1", 1, {amount_event("deposited", 50)},
                       request_record{"req-1", R"({"status":"ok","balance":100})"}};
  auto retry = append_sync(*j, again);
  REQUIRE_FALSE(retry);
  CHECK(code_of(retry.error()) == errc::request_id_reused);
  CHECK(*j->last_seq("wallet/u1") == 1);
  CHECK((*j->find_request("wallet/u1", "req-1"))->result == R"({"status":"ok","balance":50})");
  // The same id on another stream is another request.
  CHECK(append_sync(*j, {"wallet/u2", 0, {amount_event("deposited", 1)},
                         request_record{"req-1", "{}"}}));
  CHECK_FALSE(j->find_request("wallet/u1", "req-unknown")->has_value());
}

TEST_CASE_FIXTURE(fixture, "a request without events stores its result and moves no seq") {
  REQUIRE(append_sync(*j, "wallet/u1", 0, {amount_event("deposited", 10)}));
  auto ack = append_sync(
    *j, {"wallet/u1", 1, {}, request_record{"req-9", R"({"error":"insufficient_funds"})"}});
  REQUIRE(ack);
  CHECK(ack->last_seq == 1);
  CHECK(*j->last_seq("wallet/u1") == 1);
  CHECK((*j->find_request("wallet/u1", "req-9"))->result == R"({"error":"insufficient_funds"})");
  // The sequence check still fences it.
  auto stale = append_sync(*j, {"wallet/u1", 0, {}, request_record{"req-10", "{}"}});
  CHECK(code_of(stale.error()) == errc::sequence_conflict);
}

TEST_CASE_FIXTURE(fixture, "the latest snapshot is kept and one ahead of its stream or older "
                           "than the stored one is refused") {
  REQUIRE(append_sync(*j, "wallet/u1", 0,
                      {amount_event("deposited", 1), amount_event("deposited", 2),
                       amount_event("deposited", 3)}));
  CHECK_FALSE(j->load_snapshot("wallet/u1")->has_value());
  REQUIRE(save_sync(*j, {"wallet/u1", 2, 1, R"({"balance":3})", 0}));
  REQUIRE(save_sync(*j, {"wallet/u1", 3, 1, R"({"balance":6})", 0}));
  auto snap = j->load_snapshot("wallet/u1");
  REQUIRE(snap);
  REQUIRE(snap->has_value());
  CHECK((*snap)->seq == 3);
  CHECK((*snap)->state == R"({"balance":6})");
  auto ahead = save_sync(*j, {"wallet/u1", 4, 1, "{}", 0});
  CHECK(code_of(ahead.error()) == errc::sequence_conflict);
  auto older = save_sync(*j, {"wallet/u1", 2, 1, "{}", 0});
  CHECK(code_of(older.error()) == errc::sequence_conflict);
  CHECK((*j->load_snapshot("wallet/u1"))->seq == 3);
}

TEST_CASE_FIXTURE(fixture, "streams are listed by kind, sorted, page by page") {
  for (auto name : {"wallet/c", "wallet/a", "market/m", "wallet/b", "walletx/z"})
    REQUIRE(append_sync(*j, name, 0, {amount_event("deposited", 1)}));
  auto first = j->list_streams("wallet", "", 2);
  REQUIRE(first);
  CHECK(*first == std::vector<std::string>{"wallet/a", "wallet/b"});
  auto second = j->list_streams("wallet", first->back(), 2);
  CHECK(*second == std::vector<std::string>{"wallet/c"});
  CHECK(j->list_streams("wallet", "wallet/c", 2)->empty());
  CHECK(*j->list_streams("market", "", 10) == std::vector<std::string>{"market/m"});
}

TEST_CASE_FIXTURE(fixture, "recovery folds the latest snapshot and the events after it") {
  auto r = account_replay();
  account live;
  snapshot_policy policy{10};
  uint64_t seq = 0;
  uint64_t snapshot_seq = 0;
  for (int i = 1; i <= 25; ++i) {
    auto e = amount_event(i % 4 == 0 ? "withdrawn" : "deposited", i);
    REQUIRE(append_sync(*j, "wallet/r", seq, {e}));
    live.apply(e);
    ++seq;
    if (policy.due(snapshot_seq, seq)) {
      REQUIRE(save_state_snapshot(*j, "wallet/r", live, seq, r, {}) == caf::error{});
      snapshot_seq = seq;
    }
  }
  REQUIRE(wait_until([&] {
    auto s = j->load_snapshot("wallet/r");
    return s && s->has_value() && (*s)->seq == 20;
  }));
  auto rebuilt = recover(*j, "wallet/r", r);
  REQUIRE(rebuilt);
  CHECK(rebuilt->state == live);
  CHECK(rebuilt->seq == 25);
  CHECK(rebuilt->snapshot_seq == 20);
  CHECK(rebuilt->events_replayed == 5);
  CHECK(*recovery_matches(*j, "wallet/r", live, 25, r));
}

TEST_CASE_FIXTURE(fixture, "closing the journal answers every append already queued") {
  std::atomic<int> ok = 0;
  std::atomic<int> answered = 0;
  for (int i = 0; i < 500; ++i)
    REQUIRE_FALSE(j->append({"wallet/c" + std::to_string(i % 7), 0, {amount_event("deposited", 1)},
                             std::nullopt},
                            [&](caf::expected<append_ack> r) {
                              ok += r ? 1 : 0;
                              ++answered;
                            }));
  auto path = (dir / "journal.db").string();
  j.reset();
  CHECK(answered == 500);
  CHECK(ok == 7); // one per stream; the rest conflict
  auto reopened = open_or_fail(options_at(path));
  for (int s = 0; s < 7; ++s)
    CHECK(*reopened->last_seq("wallet/c" + std::to_string(s)) == 1);
}

TEST_CASE_FIXTURE(fixture, "the sequence check sees what another writer on the same file "
                           "committed") {
  // Two journals on one file, as two nodes on one host: each writer caches
  // last seqs, and must drop them when the other one commits.
  auto other = open_or_fail(options_at((dir / "journal.db").string()));
  REQUIRE(append_sync(*j, "wallet/both", 0, {amount_event("deposited", 1)}));
  REQUIRE(append_sync(*other, "wallet/both", 1, {amount_event("deposited", 2)}));
  auto stale = append_sync(*j, "wallet/both", 1, {amount_event("deposited", 3)});
  REQUIRE_FALSE(stale);
  CHECK(code_of(stale.error()) == errc::sequence_conflict);
  append_request fresh{"wallet/both", 2, {amount_event("deposited", 3)}, std::nullopt};
  fresh.from_read = true;
  CHECK(append_sync(*j, fresh));
  CHECK(*other->last_seq("wallet/both") == 3);
}

TEST_CASE_FIXTURE(fixture, "an append stores the caller's timestamp on its events and its request "
                           "so a rebuilt state equals the one answered from") {
  append_request stamped{"wallet/clock", 0, {amount_event("deposited", 5)},
                         request_record{"req-clock", "{}"}};
  stamped.at_ms = 1'700'000'000'123;
  REQUIRE(append_sync(*j, stamped));
  auto events = j->read_events("wallet/clock", 1, 10);
  REQUIRE(events);
  REQUIRE(events->size() == 1);
  CHECK(events->front().at_ms == 1'700'000'000'123);
  auto request = j->find_request("wallet/clock", "req-clock");
  REQUIRE(request);
  REQUIRE(request->has_value());
  CHECK((*request)->at_ms == 1'700'000'000'123);

  // Without one, the journal's clock: a time of this century.
  REQUIRE(append_sync(*j, "wallet/clock", 1, {amount_event("deposited", 1)}));
  auto later = j->read_events("wallet/clock", 2, 10);
  REQUIRE(later);
  REQUIRE(later->size() == 1);
  CHECK(later->front().at_ms > 1'700'000'000'000);

  append_request negative{"wallet/clock", 2, {amount_event("deposited", 1)}, std::nullopt};
  negative.at_ms = -1;
  auto refused = append_sync(*j, negative);
  REQUIRE_FALSE(refused);
  CHECK(code_of(refused.error()) == errc::invalid_field);
  CHECK(*j->last_seq("wallet/clock") == 2);
}

TEST_CASE_FIXTURE(fixture, "a stream's open-work mark follows its appends and lists only marked "
                           "streams of the kind asked") {
  auto marked = [&](const std::string& stream, uint64_t seq, std::optional<bool> open) {
    append_request r{stream, seq, {amount_event("deposited", 1)}, std::nullopt};
    r.open_work = open;
    REQUIRE(append_sync(*j, r));
  };
  marked("wallet/a", 0, true);
  marked("wallet/b", 0, false);
  marked("wallet/c", 0, std::nullopt);
  marked("market/m", 0, true);
  CHECK(*j->list_open_streams("wallet", "", 10) == std::vector<std::string>{"wallet/a"});
  CHECK(*j->list_open_streams("market", "", 10) == std::vector<std::string>{"market/m"});
  // An append that says nothing leaves the mark; one that says false clears it.
  marked("wallet/a", 1, std::nullopt);
  marked("wallet/c", 1, true);
  CHECK(*j->list_open_streams("wallet", "", 10) ==
        std::vector<std::string>{"wallet/a", "wallet/c"});
  CHECK(*j->list_open_streams("wallet", "wallet/a", 10) == std::vector<std::string>{"wallet/c"});
  CHECK(*j->list_open_streams("wallet", "", 1) == std::vector<std::string>{"wallet/a"});
  marked("wallet/a", 2, false);
  CHECK(*j->list_open_streams("wallet", "", 10) == std::vector<std::string>{"wallet/c"});
  // The mark survives a reopen.
  j.reset();
  j = open_or_fail(options_at((dir / "journal.db").string()));
  CHECK(*j->list_open_streams("wallet", "", 10) == std::vector<std::string>{"wallet/c"});
}

TEST_CASE_FIXTURE(fixture, "an append that builds on another stream's event commits only if "
                           "that very event is in the journal") {
  auto decided = amount_event("accepted", 10);
  REQUIRE(append_sync(*j, "market/m1", 0, {decided}));
  auto there = position_of("market/m1", 1, decided);

  append_request ok{"wallet/u1", 0, {amount_event("committed", 10)}, std::nullopt};
  ok.after = {there};
  REQUIRE(append_sync(*j, ok));
  CHECK(*j->last_seq("wallet/u1") == 1);

  // The same seq with other content (another copy wrote it), and a seq
  // the stream never reached: both refused, nothing written.
  append_request other{"wallet/u2", 0, {amount_event("committed", 10)}, std::nullopt};
  other.after = {position_of("market/m1", 1, amount_event("accepted", 11))};
  auto refused = append_sync(*j, other);
  REQUIRE_FALSE(refused);
  CHECK(code_of(refused.error()) == errc::sequence_conflict);
  CHECK(message_of(refused.error()).find("event 1 of market/m1") != std::string::npos);
  append_request ahead{"wallet/u3", 0, {amount_event("committed", 10)},
                       request_record{"r1", "{}"}};
  ahead.after = {position_of("market/m1", 2, decided)};
  REQUIRE_FALSE(append_sync(*j, ahead));
  CHECK(*j->last_seq("wallet/u2") == 0);
  CHECK(*j->last_seq("wallet/u3") == 0);
  CHECK_FALSE(*j->find_request("wallet/u3", "r1"));
}

TEST_CASE_FIXTURE(fixture, "an append may build on an event queued before it and not yet "
                           "committed, and fails when that event's append fails") {
  // Queued back to back, so they usually share a batch; either way the
  // event is in the journal before the append that builds on it commits.
  auto decided = amount_event("accepted", 10);
  std::mutex m;
  std::vector<caf::expected<append_ack>> answers(4, caf::expected<append_ack>{caf::error{}});
  std::atomic<int> answered = 0;
  auto queue = [&](int i, append_request r) {
    REQUIRE_FALSE(j->append(std::move(r), [&, i](caf::expected<append_ack> a) {
      std::lock_guard lock{m};
      answers[i] = std::move(a);
      ++answered;
    }));
  };
  queue(0, {"market/m1", 0, {decided}, std::nullopt});
  append_request built{"wallet/u1", 0, {amount_event("committed", 10)}, std::nullopt};
  built.after = {position_of("market/m1", 1, decided)};
  queue(1, built);
  // market/m2's append expects a seq the stream never had: it fails, and so
  // does the append built on its event.
  queue(2, {"market/m2", 5, {decided}, std::nullopt});
  append_request orphan{"wallet/u2", 0, {amount_event("committed", 10)}, std::nullopt};
  orphan.after = {position_of("market/m2", 6, decided)};
  queue(3, orphan);
  REQUIRE(wait_until([&] { return answered == 4; }));
  CHECK(static_cast<bool>(answers[0]));
  CHECK(static_cast<bool>(answers[1]));
  CHECK_FALSE(static_cast<bool>(answers[2]));
  REQUIRE_FALSE(static_cast<bool>(answers[3]));
  CHECK(code_of(answers[3].error()) == errc::sequence_conflict);
  CHECK(*j->last_seq("wallet/u1") == 1);
  CHECK(*j->last_seq("wallet/u2") == 0);
}

TEST_CASE_FIXTURE(fixture, "an append naming a malformed event to build on is refused at once") {
  append_request r{"wallet/u1", 0, {amount_event("committed", 10)}, std::nullopt};
  r.after = {event_position{"no-kind", 1, 0}};
  CHECK(code_of(j->append(r, nullptr)) == errc::invalid_field);
  r.after = {event_position{"market/m1", 0, 0}};
  CHECK(code_of(j->append(r, nullptr)) == errc::invalid_field);
}
