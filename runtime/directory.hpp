#pragma once

// The entity directory: activates an entity on demand, passivates it when
// idle or when its kind has too many resident, and routes messages to it.
//
// A caller never holds an entity's handle. It sends (route_atom, entity_id,
// caf::message) to the directory (directory::send / request below), which
// delegates the message to the entity, so the entity sees the caller as
// sender and answers it directly. Concurrent asks for an inactive entity
// activate it exactly once: an entity belongs to exactly one partition (one
// directory actor), which handles its messages one at a time.
//
// Partitions. The directory is K actors for throughput; shard s (entity.hpp)
// is served by partition s % K. A whole shard lives in one partition, so the
// cluster can move shards without splitting a partition's bookkeeping.
//
// Passivation. A partition sees every routed message, so it knows when each
// entity was last used. A periodic sweep passivates entities idle longer than
// their kind's idle_timeout; activating one beyond its kind's resident bound
// passivates the least recently used. While an entity passivates, messages
// for it wait in the partition (at most held_max per entity; past that, a
// request fails with errc::unavailable and a one-way message is dropped and
// logged). When it is gone they are routed again, in order, which activates a
// new incarnation. No message is lost across passivation.
//
// Crashes. Requests queued in an entity when it fails get an error (CAF's
// request_receiver_down or the failure's reason) and one-way messages in it
// are gone: callers retry, and the journal's sequence check makes retries
// safe. An entity that fails is activated again by the next message. After
// crash_restart_max crashes in a row it is blocked for a back-off (doubling
// up to crash_backoff_max), during which requests fail with
// errc::unavailable: a crash loop costs one error per request, not a spin.
//
// Cluster seam. directory_options::placement names the route of each shard
// (shard_route): this node (the default, for every shard) or another node's
// directory actor, to which routed messages are relayed (any partition of
// that node will do: a partition passes a shard it does not serve to the one
// that does). A relayed message is relayed on at most relay_hops_max times;
// past that (placements that disagree, while views converge) it waits up to
// disagreement_hold for the placement to change, then fails with
// errc::unavailable and the caller retries. An entity live here stays here
// until it passivates, so its messages stay in order; placement_changed()
// passivates those whose shard moved away.
//
// Relays to another node are watched: the relaying partition asks that
// node's directory itself and hands the answer on. If the connection to it
// is lost first, a request still unanswered goes to the shard's new owner
// when the placement had moved the shard away from the lost node (a drain:
// the same command, idempotent, so the caller gets its first outcome), and
// fails with errc::unavailable ("the node that owns it was lost, retry")
// when the lost node still owned it (a crash). A directory that stops
// refuses the messages waiting in it whose caller is on its node, and drops
// the others, which the node that relayed them sends on.
//
// Hand-off. A shard that moves here from a node that is still alive (a join,
// a drain) names that node's directory in shard_route::handoff_from. Its
// messages wait here while this partition asks that directory to release the
// shard; the old owner answers once every entity of the shard has passivated
// there, which means their in-flight work is done and their last writes are
// in the journal, from which the entities recover here. So two live copies of
// an entity never run at once, and no message is refused across the move. If
// the old owner does not answer within handoff_timeout (it hung, or died
// before anyone noticed), the messages are served anyway: the journal's
// sequence check fences whatever the old copy still tries to write.
// await_released() tells a draining node when every shard it served has been
// released to the node that asked for it.

#include "wager/runtime/entity.hpp"
#include "wager/runtime/request_deadlines.hpp"

#include <caf/actor.hpp>
#include <caf/actor_control_block.hpp>
#include <caf/duration.hpp>
#include <caf/event_based_actor.hpp>
#include <caf/expected.hpp>
#include <caf/make_message.hpp>
#include <caf/message.hpp>
#include <caf/message_id.hpp>
#include <caf/send.hpp>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <exception>
#include <functional>
#include <memory>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

namespace wager {

class metrics;

namespace detail {
struct directory_core;

// The calls one of the directory's callers has made and not had answered,
// by request id: when the directory stops, each hears errc::unavailable.
struct caller_calls {
  std::unordered_map<uint64_t, std::function<void(caf::error)>> open;
};

// Work for a caller (directory::call): runs inside it.
using caller_job = std::function<void(caf::event_based_actor*, caller_calls&)>;

// Logs a call's callback that threw.
void callback_failed(const char* what) noexcept;

// Runs a call's callback on its caller: an exception from it is logged and
// goes no further, so one failed callback cannot take the caller, and the
// calls that other code makes through it, down.
template <class F, class X>
void run_callback(F& f, X&& x) noexcept {
  try {
    f(std::forward<X>(x));
  } catch (const std::exception& e) {
    callback_failed(e.what());
  } catch (...) {
    callback_failed("an exception that is not a std::exception");
  }
}
} // namespace detail

// A small copyable client of the directory. Cheap to copy (one shared
// pointer); safe to use from any thread and any actor.
class directory {
public:
  directory() = default;
  explicit directory(std::shared_ptr<const detail::directory_core> core);

  explicit operator bool() const noexcept { return core_ != nullptr; }

  uint32_t shards() const noexcept;
  size_t partitions() const noexcept;

  // The local directory actor that serves `shard` on this node. The cluster
  // relays shards to another node's directory through these handles.
  const caf::actor& partition_of_shard(uint32_t shard) const;
  const caf::actor& partition_for(const entity_id& id) const;

  // One-way: self sends xs... to the entity. A reply, if any, comes back to
  // self as an ordinary message. `self` is an actor pointer or scoped_actor.
  template <class Self, class... Ts>
  void send(Self&& self, const entity_id& id, Ts&&... xs) const {
    self->send(partition_for(id), route_atom::value, id,
               caf::make_message(std::forward<Ts>(xs)...));
  }

  template <class... Ts>
  void anon_send(const entity_id& id, Ts&&... xs) const {
    caf::anon_send(partition_for(id), route_atom::value, id,
                   caf::make_message(std::forward<Ts>(xs)...));
  }

  // A request to the entity; returns self->request(...)'s response handle,
  // so .then / .await / .receive work as usual. Errors: the entity's own,
  // errc::not_found (unknown kind), errc::unavailable (crash loop, too many
  // held messages, placements disagree), request_timeout, and CAF's
  // request_receiver_down when the entity crashed with the request queued.
  // The timeout is armed in the directory's request_deadlines, not in CAF's
  // clock: it fires up to a tick (10 ms) late.
  template <class Self, class... Ts>
  auto request(Self&& self, caf::duration timeout, const entity_id& id, Ts&&... xs) const {
    auto handle = self->request(partition_for(id), caf::infinite, route_atom::value, id,
                                caf::make_message(std::forward<Ts>(xs)...));
    time_out(self->ctrl(), handle.id(), timeout);
    return handle;
  }

  // For code outside actors (the platform's calls, the gateway's): sends
  // `msg` to the entity as a request from one of the directory's callers,
  // long-lived actors (two per scheduler thread), and hands the answer (a T)
  // or the error to `done`, which runs on that caller and so must not block.
  // The timeout is armed as request()'s is, and given back (disarm, below)
  // when the answer comes first. A call still unanswered when the directory
  // stops, or made after, gets errc::unavailable.
  template <class T, class Done>
  void call(caf::duration timeout, const entity_id& id, caf::message msg, Done done) const {
    auto shared = std::make_shared<Done>(std::move(done));
    auto job = [dir = *this, timeout, id, msg = std::move(msg),
                shared](caf::event_based_actor* self, detail::caller_calls& calls) mutable {
      auto answer =
        self->request(dir.partition_for(id), caf::infinite, route_atom::value, id, std::move(msg));
      auto rid = answer.id();
      auto ticket = dir.time_out(self->ctrl(), rid, timeout);
      auto key = rid.integer_value();
      calls.open.emplace(key, [shared](caf::error err) {
        detail::run_callback(*shared, std::move(err));
      });
      answer.then(
        [shared, dir, ticket, rid, key, &calls](T& x) {
          calls.open.erase(key);
          dir.disarm(ticket, rid);
          detail::run_callback(*shared, std::move(x));
        },
        [shared, dir, ticket, rid, key, &calls](caf::error& err) {
          calls.open.erase(key);
          dir.disarm(ticket, rid);
          detail::run_callback(*shared, std::move(err));
        });
    };
    if (!run_on_caller(std::move(job)))
      detail::run_callback(*shared, stopped_error());
  }

  template <class Self, class Rep, class Period, class... Ts>
  auto request(Self&& self, std::chrono::duration<Rep, Period> timeout, const entity_id& id,
               Ts&&... xs) const {
    return request(std::forward<Self>(self), caf::duration{timeout}, id,
                   std::forward<Ts>(xs)...);
  }

  // Arms the timeout of a request `requester` made with caf::infinite, whose
  // answer is `response_id` (its response handle's id): sec::request_timeout
  // after `timeout`, as CAF's clock would send it (request_deadlines.hpp).
  // An actor that asks once and quits on the answer gives the ticket back
  // with disarm before it quits.
  request_deadlines::ticket time_out(caf::actor_control_block* requester,
                                     caf::message_id response_id, caf::duration timeout) const;
  void disarm(const request_deadlines::ticket& ticket, caf::message_id response_id) const;

  // A delayed_send to `receiver` on the same sweep, without CAF's clock
  // (request_deadlines::send_later): for the timers an entity sets per
  // command, such as a bet's answer deadline.
  void send_later(caf::actor_control_block* receiver, caf::duration delay,
                  caf::message msg) const;

  // Tells every partition that the placement function's answers changed:
  // live entities whose shard is now elsewhere passivate.
  void placement_changed() const;

  // Blocks the calling thread (never call it from an actor) until every
  // shard this node served and no longer does was released to the node
  // that asked for it, with no entity of those shards left live here; at
  // most `timeout`. True when everything was handed away.
  bool await_released(std::chrono::milliseconds timeout) const;

  // Stops the partitions and, with them, every entity (user_shutdown, no
  // passivation). Required before the actor system is destroyed: the
  // partitions' sweep timer keeps them alive otherwise.
  void stop() const;

private:
  // Queues `job` on a caller; false when the directory has stopped.
  bool run_on_caller(detail::caller_job job) const;
  static caf::error stopped_error();

  std::shared_ptr<const detail::directory_core> core_;
};

// What an entity's activate function gets.
struct activation_context {
  caf::actor_system& system;
  entity_id id;
  // The entity's own way to reach other entities.
  directory dir;
};

// Spawns an entity actor; called inside a partition, so it must not block.
// The actor follows the contract in entity.hpp (it recovers asynchronously,
// handles passivate_atom). An invalid handle or an exception counts as a
// crash: the message that asked for the entity fails.
using activate_fn = std::function<caf::actor(const activation_context&)>;

// One kind of entity, registered when the directory is spawned.
struct entity_kind {
  // "wallet", "market", ...: non-empty, without '/'.
  std::string name;

  activate_fn activate;

  // An entity unused for this long passivates. Ten minutes keeps a betting
  // session's wallet warm between bets without holding every user forever.
  std::chrono::milliseconds idle_timeout = std::chrono::minutes{10};

  // Most entities of this kind resident on this node; beyond it the least
  // recently used passivates. Split evenly across partitions (each holds at
  // most ceil(resident_max / partitions)), so with few entities the choice
  // of which to passivate is per partition. One million idle actors cost
  // about 1.2 GB (shared/CAF-0.17.md).
  size_t resident_max = 1'000'000;
};

// Who serves a shard, as the placement function says.
struct shard_route {
  // Invalid: this node; else the directory actor of the node that owns it.
  caf::actor owner;
  // When this node serves the shard and took it over from a node that is
  // still alive: that node's directory, which must release the shard before
  // its messages are served here (the hand-off above). Invalid otherwise.
  caf::actor handoff_from;
  // When this node serves the shard: names the move that brought it here.
  // Each new move takes a new number, so a hand-off is asked for once per
  // move, and an entity still live here from an earlier stay (the shard
  // left and came back before this partition saw it go: a node frozen and
  // rejoined) passivates, since another node served it meanwhile.
  uint64_t move = 0;
  // Another node owns the shard, but the way to it is gone (its connection
  // was lost and it is not marked down yet): messages wait here for the
  // placement to change, at most unreachable_hold, rather than fail.
  bool unreachable = false;

  shard_route() = default;
  // An owner alone: placement functions may return a directory handle.
  shard_route(caf::actor owner_dir) : owner(std::move(owner_dir)) {} // NOLINT(google-explicit-constructor)

  friend bool operator==(const shard_route& x, const shard_route& y) {
    return x.owner == y.owner && x.handoff_from == y.handoff_from && x.move == y.move
           && x.unreachable == y.unreachable;
  }
};

// Who serves a shard. Called inside partitions, concurrently from several
// threads: must be thread-safe and must not block.
using placement_fn = std::function<shard_route(uint32_t shard)>;

struct directory_options {
  // Shards per cluster; must equal every other node's (node_options::shards).
  uint32_t shards = 256;

  // Directory actors; 0 means two per scheduler thread, enough that one busy
  // partition does not hold up a core. At most `shards`.
  uint32_t partitions = 0;

  // How often each partition looks for idle entities. Idle entities live up
  // to idle_timeout + sweep_interval.
  std::chrono::milliseconds sweep_interval = std::chrono::seconds{1};

  // An entity still alive this long after passivate_atom is killed (a stuck
  // snapshot must not hold its messages forever). It recovers from the
  // journal, so this loses nothing acknowledged.
  std::chrono::milliseconds passivate_timeout = std::chrono::seconds{10};

  // Messages held per passivating entity. Passivation takes milliseconds;
  // 1024 covers a burst without letting one hot entity take the memory.
  size_t held_max = 1024;

  // Crash-loop protection. Crashes count as "in a row" while each comes
  // within crash_window of the previous one (or of the end of the previous
  // back-off). Up to crash_restart_max in a row re-activate at once; the next
  // blocks the entity for crash_backoff_initial, doubling per further crash
  // up to crash_backoff_max. An activate function that fails is a crash too.
  uint32_t crash_restart_max = 5;
  std::chrono::milliseconds crash_window = std::chrono::seconds{10};
  std::chrono::milliseconds crash_backoff_initial = std::chrono::milliseconds{100};
  std::chrono::milliseconds crash_backoff_max = std::chrono::seconds{30};

  // Empty: every shard is served here.
  placement_fn placement;

  // Relays of one message between directories (a shard moved while the
  // message was on its way); past it the message waits for the placement
  // to change, at most disagreement_hold, then fails with errc::unavailable.
  uint32_t relay_hops_max = 3;
  std::chrono::milliseconds disagreement_hold = std::chrono::seconds{2};

  // How long a message for a shard whose owner is unreachable
  // (shard_route::unreachable) waits for the placement to move the shard
  // before it fails with errc::unavailable. Longer than the membership's
  // down_after (1.6 s by default), so that the shards of a node killed
  // under load are served by their new owners without an error.
  std::chrono::milliseconds unreachable_hold = std::chrono::seconds{3};

  // How long a shard moving here waits for its old owner to release it
  // before it is served anyway, and how many messages for the shard wait
  // meanwhile (past that a request fails with errc::unavailable).
  std::chrono::milliseconds handoff_timeout = std::chrono::seconds{5};
  size_t handoff_held_max = 16384;

  // await_released: a shard that moved away with no entity left here counts
  // as released when its new owner asked for it, or this long after it
  // moved (a node that saw another old owner never asks).
  std::chrono::milliseconds release_grace = std::chrono::seconds{2};
};

// Spawns the partitions. `m` must outlive them: they count activations,
// passivations and live entities per kind in it. Fails with
// errc::invalid_field for options out of bounds or a malformed kind.
caf::expected<directory> spawn_directory(caf::actor_system& sys, directory_options opts,
                                         std::vector<entity_kind> kinds, metrics& m);

} // namespace wager
