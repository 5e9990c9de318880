#pragma once

// Recovery: an entity's state is its latest snapshot plus the events after
// it. An entity plugs its state type in through a `replay` (how to start,
// how to fold one event, how to encode and decode a snapshot); recover()
// does the rest and checks the journal while it reads: the events must reach
// the stream's last seq, and a snapshot must not be ahead of the events.
//
// Both sides of the disk are asserted where checks are on: a snapshot must
// decode to the state that wrote it before it is saved, and check_recovery()
// rebuilds the state from the journal and compares it with the live one.
// Checks are on in debug builds, and wherever the environment says
// WAGER_JOURNAL_CHECKS=1 (CI and the test suites); WAGER_JOURNAL_CHECKS=0
// turns them off.

#include "wager/persistence/journal.hpp"
#include "wager/runtime/assert.hpp"
#include "wager/runtime/errors.hpp"

#include <caf/expected.hpp>

#include <functional>
#include <optional>
#include <string>
#include <string_view>

namespace wager {

// Whether the round-trip checks run (read from the environment once).
bool journal_checks_enabled() noexcept;

// Overrides the environment, for tests.
void set_journal_checks(bool on) noexcept;

template <class State>
struct replay {
  // The state of a stream with no events.
  std::function<State()> initial;

  // Folds one event. An error (errc::journal_failure) means the journal
  // holds an event this state cannot take: recovery stops rather than guess.
  std::function<caf::error(State&, const recorded_event&)> apply;

  // Snapshot codec; leave encode/decode empty to always replay everything.
  // A stored snapshot of another version is ignored (full replay), so a
  // release that changes the state's shape needs no snapshot migration.
  uint32_t snapshot_version = 1;
  std::function<std::string(const State&)> encode;
  std::function<caf::expected<State>(std::string_view)> decode;
};

template <class State>
struct recovered {
  State state;
  uint64_t seq = 0;             // last event folded into state
  uint64_t snapshot_seq = 0;    // seq of the snapshot started from, 0 if none
  uint64_t events_replayed = 0; // events folded after the snapshot
};

// "Snapshot every N events": due once N events have passed since the last
// snapshot (or since the start).
struct snapshot_policy {
  uint64_t every_events = 1000;

  bool due(uint64_t last_snapshot_seq, uint64_t seq) const noexcept {
    return seq >= last_snapshot_seq + every_events;
  }
};

struct recovery_limits {
  bool use_snapshot = true;           // false: replay from the first event
  std::optional<uint64_t> until_seq;  // stop after this seq; none: the last
  uint32_t page_events = 4096;
};

template <class State>
caf::expected<recovered<State>> recover(journal& j, const std::string& stream,
                                        const replay<State>& r, recovery_limits limits = {}) {
  auto corrupt = [&](const std::string& what) {
    return make_error(errc::journal_failure, "journal is corrupt: " + stream + " " + what);
  };
  // Read the last seq first: events appended later are fine to include, but
  // the events must reach at least this far.
  auto last = j.last_seq(stream);
  if (!last)
    return last.error();
  auto target = limits.until_seq ? std::min(*last, *limits.until_seq) : *last;
  recovered<State> out{r.initial(), 0, 0, 0};
  if (limits.use_snapshot && r.decode) {
    auto snap = j.load_snapshot(stream);
    if (!snap)
      return snap.error();
    if (*snap && (*snap)->seq > *last)
      return corrupt("has a snapshot at seq " + std::to_string((*snap)->seq) +
                     " beyond its last event " + std::to_string(*last));
    if (*snap && (*snap)->version == r.snapshot_version && (*snap)->seq <= target) {
      auto state = r.decode((*snap)->state);
      if (!state)
        return state.error();
      out.state = std::move(*state);
      out.seq = out.snapshot_seq = (*snap)->seq;
    }
  }
  while (out.seq < target) {
    auto want = static_cast<uint32_t>(std::min<uint64_t>(limits.page_events, target - out.seq));
    auto page = j.read_events(stream, out.seq + 1, want);
    if (!page)
      return page.error();
    if (page->empty())
      return corrupt("ends at seq " + std::to_string(out.seq) + " but claims " +
                     std::to_string(*last));
    for (auto& e : *page) {
      if (auto err = r.apply(out.state, e))
        return err;
      out.seq = e.seq;
      ++out.events_replayed;
    }
  }
  return out;
}

// Runs recover() on a reader thread and calls back there.
template <class State>
[[nodiscard]] caf::error recover_async(journal& j, std::string stream, replay<State> r,
                                       result_callback<recovered<State>> done,
                                       recovery_limits limits = {}) {
  return j.post_read([&j, stream = std::move(stream), r = std::move(r), done = std::move(done),
                      limits] { done(recover(j, stream, r, limits)); });
}

// Saves a snapshot of `state` (covering events 1..seq). Where checks are
// on, first asserts the encoding decodes to the same state: a snapshot that
// cannot rebuild its writer must never reach the disk.
template <class State>
[[nodiscard]] caf::error save_state_snapshot(journal& j, const std::string& stream,
                                             const State& state, uint64_t seq,
                                             const replay<State>& r,
                                             result_callback<snapshot_saved> done) {
  WAGER_ASSERT(r.encode && r.decode, "snapshot codec missing for " + stream);
  auto encoded = r.encode(state);
  if (journal_checks_enabled()) {
    auto decoded = r.decode(encoded);
    WAGER_ASSERT(decoded && *decoded == state, "snapshot does not round-trip for " + stream);
  }
  return j.save_snapshot(snapshot{stream, seq, r.snapshot_version, std::move(encoded), 0},
                         std::move(done));
}

// Rebuilds `stream` from the journal up to `seq`, both from its snapshot and
// by full replay, and tells whether both equal `live`: the state that wrote
// those events. Synchronous (tests, tools, reader threads).
template <class State>
caf::expected<bool> recovery_matches(journal& j, const std::string& stream, const State& live,
                                     uint64_t seq, const replay<State>& r) {
  for (bool use_snapshot : {true, false}) {
    auto rebuilt = recover(j, stream, r, recovery_limits{use_snapshot, seq});
    if (!rebuilt)
      return rebuilt.error();
    if (rebuilt->seq != seq || !(rebuilt->state == live))
      return false;
  }
  return true;
}

// Where checks are on: after an append is acknowledged, compares the live
// state with the state rebuilt from the journal, on a reader thread, and
// asserts they are equal. A failed read is not a mismatch (it is reported
// by whoever reads next); a mismatch stops the process.
template <class State>
void check_recovery(journal& j, std::string stream, State live, uint64_t seq, replay<State> r) {
  if (journal_checks_enabled()) {
    auto err = j.post_read([&j, stream = std::move(stream), live = std::move(live), seq,
                            r = std::move(r)] {
      auto same = recovery_matches(j, stream, live, seq, r);
      WAGER_ASSERT(!same || *same, "state rebuilt from the journal differs for " + stream);
    });
    static_cast<void>(err); // a full read queue skips one check
  }
}

} // namespace wager
