#pragma once

// The event-sourcing half of an entity actor: its state, rebuilt from the
// journal on activation, and its appends, pipelined. A wallet or market keeps
// one `journaled<Traits>` in its actor state.
//
// Pipelining. persist() applies the events to the in-memory state at once,
// queues the append, and runs `then` in the actor once the append is durable.
// The next command is decided on the new state without waiting for the disk;
// every answer (and every message that relies on a decision) is sent from a
// `then`, so nothing unanswered was promised. Appends of one stream are
// durable in the order they were queued, so `then`s run in that order too.
//
// Failure. When an append fails, the in-memory state holds events the disk
// may not have. The entity then fails every pending `then` (their callers get
// the error and may retry with the same request id) and crashes; the
// directory activates it again from the journal.
//
// Traits: using state_type, event_type;
//   static std::optional<event_type> decode(const event&);
//   static event encode(const event_type&);
//   static void apply(state_type&, const event_type&, uint64_t seq, int64_t at_ms);
//   static void check(const state_type&);                  // invariants
//   static boost::json::value to_json(const state_type&);  // snapshot
//   static std::optional<state_type> from_json(const boost::json::value&);
//   static bool open_work(const state_type&); // work left to finish after a restart
//   static constexpr uint32_t snapshot_version;
// and optionally
//   static uint64_t snapshot_size(const state_type&); // items a snapshot holds
//
// Snapshots. A snapshot is taken once at least `snapshot_every` events
// followed the last one and, for a state with snapshot_size, at least as
// many events as the last snapshot held items: writing a snapshot costs
// about its size, so spacing snapshots by it keeps their cost per event
// bounded (a market with 50,000 open bets is not serialized whole every
// 1,000 bets; a market that only grows is snapshotted at about 1,000,
// 2,000, 4,000... bets), and recovery reads no more events after a
// snapshot than about the items it holds.

#include "wager/persistence/journal.hpp"
#include "wager/runtime/directory.hpp"
#include "wager/runtime/entity.hpp"
#include "wager/runtime/assert.hpp"
#include "wager/runtime/errors.hpp"
#include "wager/runtime/log.hpp"
#include "wager/runtime/ring_queue.hpp"

#include <boost/json.hpp>
#include <caf/all.hpp>

#include <algorithm>
#include <chrono>
#include <deque>
#include <functional>
#include <memory>

namespace wager {

// (persisted_atom, token, error): an append finished; an empty error is
// success. Sent by the journal's writer thread to the entity.
using persisted_atom = caf::atom_constant<caf::atom("persisted")>;

// (recovered_atom, shared_ptr<recovery<State>>): the state is rebuilt.
using recovered_atom = caf::atom_constant<caf::atom("recovered")>;

template <class State>
struct recovery {
  State state;
  caf::error error;
};

// Milliseconds since the epoch, as event timestamps use.
inline int64_t now_ms() {
  using namespace std::chrono;
  return duration_cast<milliseconds>(system_clock::now().time_since_epoch()).count();
}

// A wall clock in milliseconds since the epoch, injected through an
// entity's options so that a test sets the date; empty means now_ms.
using wall_clock_ms = std::function<int64_t()>;

// Runs on a journal reader thread: latest snapshot, then every event after
// it, folded with invariants checked after each.
template <class Traits>
recovery<typename Traits::state_type> rebuild(journal& j, const std::string& stream) {
  recovery<typename Traits::state_type> out;
  auto snap = j.load_snapshot(stream);
  if (!snap) {
    out.error = snap.error();
    return out;
  }
  if (*snap && (*snap)->version == Traits::snapshot_version) {
    boost::system::error_code ec;
    auto doc = boost::json::parse((*snap)->state, ec);
    auto state = ec ? std::nullopt : Traits::from_json(doc);
    // A snapshot this release cannot read is ignored: the events are the truth.
    if (state && Traits::seq_of(*state) == (*snap)->seq)
      out.state = std::move(*state);
  }
  for (;;) {
    auto from = Traits::seq_of(out.state) + 1;
    auto page = j.read_events(stream, from, 4096);
    if (!page) {
      out.error = page.error();
      return out;
    }
    for (auto& rec : *page) {
      auto e = Traits::decode(rec.data);
      if (!e) {
        out.error = make_error(errc::journal_failure,
                               stream + ": unreadable event " + rec.data.type + " at seq "
                                 + std::to_string(rec.seq));
        return out;
      }
      Traits::apply(out.state, *e, rec.seq, rec.at_ms);
      Traits::check(out.state);
    }
    if (page->size() < 4096)
      return out;
  }
}

template <class Traits>
class journaled {
public:
  using state_type = typename Traits::state_type;
  using event_type = typename Traits::event_type;
  using continuation = std::function<void(const caf::error&)>;

  journaled(std::shared_ptr<journal> j, std::string stream, uint32_t snapshot_every,
            wall_clock_ms clock = {})
    : journal_(std::move(j)), stream_(std::move(stream)), snapshot_every_(snapshot_every),
      clock_(clock ? std::move(clock) : wall_clock_ms{now_ms}) {}

  const std::string& stream() const { return stream_; }
  const state_type& state() const { return state_; }
  journal& store() { return *journal_; }

  // Appends in flight.
  size_t pending() const { return pending_.size(); }

  // Starts recovery on a reader thread; the result arrives as
  // (recovered_atom, shared_ptr<recovery<state_type>>).
  caf::error recover(caf::event_based_actor* self) {
    auto target = caf::actor{self};
    // The read runs on the journal's own reader thread, so the journal is
    // alive while it runs. Holding a shared_ptr here could make that thread
    // drop the last reference and join itself at shutdown.
    auto* j = journal_.get();
    auto stream = stream_;
    return journal_->post_read([j, stream, target] {
      auto result = std::make_shared<recovery<state_type>>(rebuild<Traits>(*j, stream));
      caf::anon_send(target, recovered_atom::value, std::move(result));
    });
  }

  void recovered(state_type state) {
    state_ = std::move(state);
    snapshot_seq_ = Traits::seq_of(state_);
    snapshot_size_ = size_of_state();
  }

  // Applies `events` now; queues them (and the request's first answer, if
  // any); `then` runs in the actor once durable, or with the error.
  // `record` builds the request's first answer from the state after the
  // events (it may return nullopt).
  using record_fn = std::function<std::optional<request_record>(const state_type&)>;

  //
  // `after` names events of other streams the new ones build on (a decision
  // another entity made and has not yet made durable): the append fails,
  // and the entity reloads, unless they are in the journal when it commits.
  // Returns the position of the last new event (seq 0 when there is none),
  // for another entity to build on.
  event_position persist(caf::event_based_actor* self, std::vector<event_type> events,
                         const record_fn& record, continuation then,
                         std::vector<event_position> after = {}) {
    append_request req;
    req.stream = stream_;
    req.expected_seq = Traits::seq_of(state_);
    auto at = clock_();
    req.at_ms = at;
    req.after = std::move(after);
    event_position last;
    for (auto& e : events) {
      req.events.push_back(Traits::encode(e));
      auto seq = Traits::seq_of(state_) + 1;
      Traits::apply(state_, e, seq, at);
      Traits::check(state_);
      last = position_of(stream_, seq, req.events.back());
    }
    req.open_work = Traits::open_work(state_);
    if (record)
      req.request = record(state_);
    // With nothing in flight, expected_seq is what the journal last
    // confirmed (or what recovery read), never a guess chained on an append
    // that may have failed.
    req.from_read = pending_.empty();
    auto token = next_token_++;
    pending_.push_back({token, std::move(then)});
    auto target = caf::actor{self};
    auto err = journal_->append(std::move(req), [target, token](caf::expected<append_ack> r) {
      caf::anon_send(target, persisted_atom::value, token, r ? caf::error{} : r.error());
    });
    if (err)
      caf::anon_send(target, persisted_atom::value, token, std::move(err));
    return last;
  }

  // The journal's answer for `token`. Returns false when the entity must
  // crash: an append failed, so memory is ahead of the disk.
  bool on_persisted(caf::event_based_actor* self, uint64_t token, const caf::error& err) {
    if (token < first_live_token_)
      return true; // an answer for an append abandoned by reload()
    WAGER_ASSERT(!pending_.empty() && pending_.front().token == token,
                 "appends of one stream complete in order");
    auto then = std::move(pending_.front().then);
    pending_.pop_front();
    if (err) {
      failed_ = true;
      then(err);
      for (auto& p : pending_)
        p.then(err);
      pending_.clear();
      return false;
    }
    then(err);
    maybe_snapshot(self);
    return true;
  }

  bool failed() const { return failed_; }

  // After a failed append: forget the optimistic state; the caller recovers
  // again (recover()) and answers for abandoned appends are ignored.
  void reload() {
    pending_.clear();
    first_live_token_ = next_token_;
    failed_ = false;
  }

  // Saves a snapshot now if every applied event is durable.
  void snapshot_now() {
    if (!pending_.empty() || Traits::seq_of(state_) == snapshot_seq_)
      return;
    snapshot snap;
    snap.stream = stream_;
    snap.seq = Traits::seq_of(state_);
    snap.version = Traits::snapshot_version;
    snap.state = boost::json::serialize(Traits::to_json(state_));
    snapshot_seq_ = snap.seq;
    snapshot_size_ = size_of_state();
    auto stream = stream_;
    auto err = journal_->save_snapshot(std::move(snap), [stream](caf::expected<snapshot_saved> r) {
      if (!r)
        log().warn("{}: snapshot not saved: {}", stream, to_code(code_of(r.error())));
    });
    if (err)
      log().warn("{}: snapshot not queued: {}", stream_, to_code(code_of(err)));
  }

private:
  void maybe_snapshot(caf::event_based_actor*) {
    if (pending_.empty() && Traits::seq_of(state_) - snapshot_seq_ >= snapshot_spacing())
      snapshot_now();
  }

  uint64_t snapshot_spacing() const { return std::max<uint64_t>(snapshot_every_, snapshot_size_); }

  uint64_t size_of_state() const {
    if constexpr (requires(const state_type& s) { Traits::snapshot_size(s); })
      return Traits::snapshot_size(state_);
    else
      return 0;
  }

  struct pending_append {
    uint64_t token;
    continuation then;
  };

  std::shared_ptr<journal> journal_;
  std::string stream_;
  uint32_t snapshot_every_;
  wall_clock_ms clock_; // the time of the events appended
  state_type state_;
  uint64_t snapshot_seq_ = 0;
  uint64_t snapshot_size_ = 0; // snapshot_size of the state at snapshot_seq_
  uint64_t next_token_ = 1;
  uint64_t first_live_token_ = 1;
  ring_queue<pending_append> pending_;
  bool failed_ = false;
};

// The activation every journaled entity shares: spawn the actor, let `fill`
// set its state from the entity's key and directory, open its journaled book
// on stream "<kind>/<key>", start recovery (routed messages wait until it
// ends) and behave as `recovering`. Actor state needs a member
// `std::unique_ptr<journaled<Traits>> book`. Events carry the time of `clock`.
template <class Traits, class Actor, class Fill>
activate_fn journaled_activator(std::shared_ptr<journal> j, std::string kind,
                                uint32_t snapshot_every, Fill fill,
                                caf::behavior (*recovering)(Actor*),
                                wall_clock_ms clock = {}) {
  return [j, kind, snapshot_every, fill, recovering,
          clock](const activation_context& ctx) -> caf::actor {
    auto key = ctx.id.key;
    auto dir = ctx.dir;
    return ctx.system.spawn(
      [j, kind, snapshot_every, fill, recovering, clock, key, dir](Actor* self) -> caf::behavior {
        auto& st = self->state;
        fill(st, key, dir);
        st.book = std::make_unique<journaled<Traits>>(j, kind + "/" + key, snapshot_every,
                                                      clock);
        begin_recovery(self);
        if (auto err = st.book->recover(self)) {
          self->quit(err);
          return {};
        }
        return recovering(self);
      });
  };
}

} // namespace wager
