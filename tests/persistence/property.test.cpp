// Properties of recovery over random histories (rapidcheck): replaying the
// journal gives the state that wrote it, and starting from a snapshot gives
// the same state as replaying everything.

#include "journal_support.hpp"

#include "support/temp_dir.hpp"

#include <doctest/doctest.h>
#include <rapidcheck.h>

#include <map>

using namespace wager;
using namespace wager::test;

namespace {

// Appends `events` to `stream` in appends of `per_append` events, all
// pipelined, snapshotting by `policy`; returns the live state the appends
// were made from, folded as they were sent.
account write_history(journal& j, const std::string& stream, const std::vector<int64_t>& amounts,
                      size_t per_append, snapshot_policy policy, uint64_t& last_snapshot) {
  auto r = account_replay();
  account live;
  uint64_t seq = 0;
  std::shared_ptr<std::promise<void>> all_done;
  std::atomic<size_t> failures = 0;
  for (size_t i = 0; i < amounts.size(); i += per_append) {
    append_request request{stream, seq, {}, std::nullopt};
    for (size_t k = i; k < std::min(amounts.size(), i + per_append); ++k) {
      auto e = amount_event(amounts[k] < 0 ? "withdrawn" : "deposited", std::abs(amounts[k]));
      live.apply(e);
      request.events.push_back(std::move(e));
    }
    seq += request.events.size();
    RC_ASSERT_FALSE(j.append(std::move(request), [&failures](caf::expected<append_ack> a) {
      failures += a ? 0 : 1;
    }));
    if (policy.due(last_snapshot, seq)) {
      // Queued behind the appends it covers, so they commit first.
      RC_ASSERT_FALSE(save_state_snapshot(j, stream, live, seq, r, {}));
      last_snapshot = seq;
    }
  }
  // A last write, answered after everything queued before it.
  RC_ASSERT(append_sync(j, {stream, seq, {}, request_record{"end", "{}"}}));
  RC_ASSERT(failures == 0u);
  return live;
}

} // namespace

TEST_CASE("for random histories, replay equals the live state and snapshot plus tail equals "
          "full replay") {
  // One journal for every run (a new file costs tens of milliseconds of
  // fsyncs), a new stream per run. Recovery reads through a second journal
  // opened on the same file, so it sees only what reached the file.
  temp_dir dir;
  auto path = (dir / "journal.db").string();
  auto writer = open_or_fail(options_at(path));
  auto reader = open_or_fail(options_at(path));
  int run = 0;
  CHECK(rc::check("replay and snapshot plus tail equal the live state", [&] {
    auto amounts = *rc::gen::container<std::vector<int64_t>>(rc::gen::inRange<int64_t>(-500, 500));
    auto per_append = *rc::gen::inRange<size_t>(1, 6);
    auto every = *rc::gen::inRange<uint64_t>(1, 25);
    auto stream = "wallet/p" + std::to_string(++run);
    uint64_t last_snapshot = 0;
    auto live = write_history(*writer, stream, amounts, per_append, snapshot_policy{every},
                              last_snapshot);
    auto& j = *reader;
    auto r = account_replay();
    auto full = recover(j, stream, r, recovery_limits{false});
    RC_ASSERT(full);
    RC_ASSERT(full->state == live);
    RC_ASSERT(full->seq == amounts.size());
    RC_ASSERT(full->events_replayed == amounts.size());
    auto from_snapshot = recover(j, stream, r);
    RC_ASSERT(from_snapshot);
    RC_ASSERT(from_snapshot->state == full->state);
    RC_ASSERT(from_snapshot->seq == full->seq);
    RC_ASSERT(from_snapshot->snapshot_seq == last_snapshot);
    RC_ASSERT(from_snapshot->events_replayed == amounts.size() - last_snapshot);
    // Any prefix rebuilds too: the state after event k is the fold of 1..k.
    auto k = *rc::gen::inRange<uint64_t>(0, amounts.size() + 1);
    account prefix;
    for (uint64_t i = 0; i < k; ++i)
      prefix.apply(amount_event(amounts[i] < 0 ? "withdrawn" : "deposited", std::abs(amounts[i])));
    auto partial = recover(j, stream, r, recovery_limits{true, k});
    RC_ASSERT(partial);
    RC_ASSERT(partial->seq == k);
    RC_ASSERT(partial->state == prefix);
    RC_ASSERT(*recovery_matches(j, stream, prefix, k, r));
  }));
}

TEST_CASE("for random appends with stale and future expected seqs, exactly those expecting the "
          "current seq are written") {
  temp_dir dir;
  auto j = open_or_fail(options_at((dir / "journal.db").string()));
  int run = 0;
  CHECK(rc::check("only appends expecting the current seq are written", [&] {
    struct attempt {
      int stream;
      int offset; // expected seq = model seq + offset
      size_t events;
    };
    // Each attempt waits for its fsync: at most 25 per run keeps the suite
    // fast on a busy disk.
    auto attempts = *rc::gen::resize(
      25, rc::gen::container<std::vector<attempt>>(rc::gen::build<attempt>(
            rc::gen::set(&attempt::stream, rc::gen::inRange(0, 3)),
            rc::gen::set(&attempt::offset,
                         rc::gen::weightedElement<int>({{1, -2}, {1, -1}, {6, 0}, {1, 1}})),
            rc::gen::set(&attempt::events, rc::gen::inRange<size_t>(1, 4)))));
    std::map<int, uint64_t> model;
    ++run;
    auto name_of = [&](int stream) {
      return "wallet/m" + std::to_string(run) + "-" + std::to_string(stream);
    };
    for (auto& a : attempts) {
      auto stream = name_of(a.stream);
      auto current = model[a.stream];
      if (a.offset < 0 && current < static_cast<uint64_t>(-a.offset))
        continue;
      append_request request{stream, current + a.offset,
                             std::vector<event>(a.events, amount_event("deposited", 1)), std::nullopt};
      request.from_read = true; // each attempt is made on a fresh read of the model
      auto r = append_sync(*j, request);
      if (a.offset == 0) {
        RC_ASSERT(r);
        RC_ASSERT(r->last_seq == current + a.events);
        model[a.stream] += a.events;
      } else {
        RC_ASSERT_FALSE(r);
        RC_ASSERT(code_of(r.error()) == errc::sequence_conflict);
      }
    }
    for (auto& [stream, seq] : model) {
      auto name = name_of(stream);
      RC_ASSERT(*j->last_seq(name) == seq);
      RC_ASSERT(j->read_events(name, 1, 10000)->size() == seq);
    }
  }));
}
