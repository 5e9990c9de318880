#include "wager/runtime/directory.hpp"
#include "wager/runtime/directory_placement.hpp"

#include "wager/runtime/assert.hpp"
#include "wager/runtime/errors.hpp"
#include "wager/runtime/log.hpp"
#include "wager/runtime/metrics.hpp"

#include <caf/all.hpp>

#include <algorithm>
#include <atomic>
#include <deque>
#include <list>
#include <map>
#include <mutex>
#include <shared_mutex>
#include <unordered_map>
#include <unordered_set>

namespace wager::detail {
// A placement function in a local message (set_directory_placement).
struct placement_box {
  placement_fn fn;
};

// A directory::call in a local message to a caller.
struct caller_job_box {
  caller_job job;
};
} // namespace wager::detail

CAF_ALLOW_UNSAFE_MESSAGE_TYPE(wager::detail::placement_box)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(wager::detail::caller_job_box)

namespace wager {

namespace detail {

// Written once by spawn_directory before any client exists; read-only after.
struct directory_core {
  uint32_t shards = 0;
  std::vector<caf::actor> partitions;
  // The timeouts of directory::request (request_deadlines.hpp).
  std::unique_ptr<request_deadlines> deadlines = std::make_unique<request_deadlines>();
  // directory::call's actors, taken in turn.
  std::vector<caf::actor> callers;
  mutable std::atomic<size_t> next_caller{0};
  // Held shared while a job is queued, exclusive while stop() queues the
  // callers' exits: every job queued reaches its caller before the exit.
  mutable std::shared_mutex stopping;
  mutable bool stopped = false; // REQUIRES: stopping is held
};

} // namespace detail

namespace {

using sweep_atom = caf::atom_constant<caf::atom("dirsweep")>;
using sweep_more_atom = caf::atom_constant<caf::atom("dirsweep2")>;
using rehome_more_atom = caf::atom_constant<caf::atom("rehome2")>;
using overdue_atom = caf::atom_constant<caf::atom("pasvdue")>;
using placement_atom = caf::atom_constant<caf::atom("placement")>;
using set_placement_atom = caf::atom_constant<caf::atom("setplace")>;
// (relayed_atom, uint32_t hops, entity_id, caf::message): a routed message
// from a node that does not own the shard, relayed `hops` times so far.
using relayed_atom = caf::atom_constant<caf::atom("relayed")>;
// (handoff_atom, uint32_t shard, caf::actor requester) -> ok_atom: from the
// shard's new owner (requester: its first partition, the handle the
// cluster's placements name a node's directory by), answered once this node
// has released the shard to it. Crosses nodes.
using handoff_atom = caf::atom_constant<caf::atom("handoff")>;
// (released_atom) -> ok_atom: answered once this partition has released
// every shard it served and no longer does (directory::await_released).
using released_atom = caf::atom_constant<caf::atom("released")>;
using disagree_due_atom = caf::atom_constant<caf::atom("disagdue")>;
using release_check_atom = caf::atom_constant<caf::atom("relcheck")>;

// Entities one sweep passivates at most, so that a mass expiry does not stall
// routing: the rest follow in the next turn of the partition's mailbox.
constexpr size_t sweep_passivations_max = 4096;

// Entities whose shard moved away that one turn passivates at most. Each
// passivation makes an entity runnable; a drain of tens of thousands at once
// kept the scheduler's workers busy ahead of the cluster agent's timer for
// the whole hand-off (2.2 s for 71,000 entities), and the node took itself
// for frozen.
constexpr size_t rehome_passivations_max = 1024;

// Crash histories kept per partition; past it a crash is still logged but
// not counted toward the back-off (a partition-wide failure needs a human).
constexpr size_t crash_records_max = 65536;

// Doublings of the crash back-off: 2^20 x 100 ms is far past any sane max.
constexpr uint32_t backoff_doublings_max = 20;

// A request this node relays to another node is asked by the partition
// itself, so that it sees the answer, and kept (with its content) until it
// is answered. If the connection to that node is lost first, each request
// still unanswered either goes again to the shard's new owner, if the
// placement moved the shard away from the lost node before it was lost (a
// drain: the lost node may have sent it on to the new owner and gone before
// the answer came back; every command is idempotent, so the caller gets the
// first outcome), or fails at once (unavailable: retry) if the lost node
// still owned it (a crash), instead of at the caller's timeout. Every node a
// request crosses keeps it so (a relay of a relay, or a request an entity
// passed on to another node): only the node next to a lost one sees it go,
// and the answer, or the failure, goes back the way the request came. At
// most relay_watch_max requests are kept per partition; past that, relays
// are unwatched and left to their caller's timeout. relay_timeout only
// bounds how long an unanswered one is kept (the sweep drops it): it is
// longer than any caller's timeout, so a caller always hears its own
// timeout first. The request itself has no timeout: CAF 0.17 keeps a
// request's timer until it fires even when the answer came (about 200 bytes
// a request, measured: 100 MB for 500,000 requests with a 5-minute timeout).
// The price: the response handler of a request that a lost node never
// answers stays with the partition (CAF 0.17 cannot drop it), a few dozen
// bytes for each request in flight when a node was lost.
constexpr auto relay_timeout = std::chrono::minutes{5};
constexpr size_t relay_watch_max = 65536;

using time_point = caf::actor_clock::time_point;

struct held_message {
  caf::response_promise promise;
  caf::message content;
  uint32_t hops; // relays so far; 0 for a message routed on this node
};

// A message waiting outside any entity: for a shard's hand-off, or for
// placements that disagree to agree.
struct parked_message {
  entity_id id;
  held_message message;
  time_point since; // when it was first parked
  bool unreachable = false; // waits for an owner that cannot be reached
};

// A new owner's request for a shard, waiting until this node lets it go.
struct release_request {
  caf::response_promise promise;
  caf::actor requester;
};

// A shard that moved here and waits for its old owner to release it.
struct incoming_shard {
  uint64_t move = 0;
  caf::actor from; // the old owner asked to release it
  std::vector<parked_message> held;
};

// A request relayed to another node and not answered yet.
struct pending_relay {
  caf::response_promise promise;
  entity_id id;
  caf::message content;
  uint32_t hops;        // as sent
  time_point sent;
  const caf::actor_control_block* remote; // the directory it went to
};

// Another node's directory this partition relays to, by proxy: a new
// connection to the same node is a new proxy, and a new entry.
struct remote_directory {
  caf::actor handle; // keeps the proxy, and so the key, alive
  bool lost = false; // its connection is gone (down_msg)
};

enum class entity_status : uint8_t {
  running,     // live; routed messages go straight to its mailbox
  passivating, // passivate_atom sent; routed messages wait in `held`
};

struct kind_slot;
struct entity_entry;
// Front: most recently used. Holds running entities only.
using lru_list = std::list<entity_entry*>;

struct entity_entry {
  // The key of this entry in the partition's map: map nodes are stable, so
  // the LRU lists point at entries instead of copying ids.
  const entity_id* id = nullptr;
  caf::actor handle;
  kind_slot* kind = nullptr;
  entity_status status = entity_status::running;
  time_point last_use;
  lru_list::iterator lru; // valid while running
  // A vector, not a deque: an empty deque allocates, and most entities
  // never hold anything.
  std::vector<held_message> held;
};

using entity_map = std::unordered_map<entity_id, entity_entry>;

struct kind_slot {
  entity_kind spec;
  size_t running_max = 0; // this partition's share of spec.resident_max
  lru_list running;
  prometheus::Counter* activations = nullptr;
  prometheus::Counter* passivations = nullptr;
  prometheus::Gauge* alive = nullptr;
};

// Crashes in a row, each within crash_window of the previous one or of the
// end of the previous back-off.
struct crash_record {
  uint32_t crashes = 0;
  time_point last_crash;
  time_point blocked_until;
};

struct partition_config {
  directory_options opts;
  std::shared_ptr<const std::vector<entity_kind>> kinds;
  std::shared_ptr<const detail::directory_core> core;
  uint32_t index = 0;
  metrics* m = nullptr;
};

class partition final : public caf::event_based_actor {
public:
  partition(caf::actor_config& cfg, partition_config pc)
    : caf::event_based_actor(cfg), opts_(std::move(pc.opts)), core_(std::move(pc.core)),
      index_(pc.index) {
    // spawn_directory resolved opts.partitions to the real count.
    size_t partitions = opts_.partitions;
    for (auto& spec : *pc.kinds) {
      auto& slot = kinds_[spec.name];
      slot.spec = spec;
      slot.running_max = std::max<size_t>(1, (spec.resident_max + partitions - 1) / partitions);
      prometheus::Labels labels{{"kind", spec.name}};
      slot.activations = &pc.m->activations().Add(labels);
      slot.passivations = &pc.m->passivations().Add(labels);
      slot.alive = &pc.m->actors_alive().Add(labels);
    }
  }

  const char* name() const override { return "wager.directory"; }

  caf::behavior make_behavior() override {
    set_down_handler([this](caf::down_msg& dm) { on_down(dm); });
    set_exit_handler([this](caf::exit_msg& em) { shutdown(em.reason); });
    arm_sweep();
    return {
      [this](route_atom, entity_id& id, caf::message& content) {
        deliver(id, make_response_promise(), std::move(content), 0);
      },
      [this](relayed_atom, uint32_t hops, entity_id& id, caf::message& content) {
        deliver(id, make_response_promise(), std::move(content), std::max<uint32_t>(hops, 1));
      },
      [this](handoff_atom, uint32_t shard, caf::actor& requester) {
        on_handoff_request(shard, std::move(requester));
      },
      [this](released_atom) {
        release_waiters_.push_back(make_response_promise());
        answer_release_waiters();
      },
      [this](disagree_due_atom) { refuse_overdue_disagreements(); },
      [this](release_check_atom) { answer_release_waiters(); },
      [this](sweep_atom) {
        sweep();
        arm_sweep();
      },
      [this](sweep_more_atom) { sweep(); },
      [this](rehome_more_atom) {
        rehome_pending_ = false;
        passivate_moved();
      },
      [this](overdue_atom, caf::actor_id aid) { on_overdue(aid); },
      [this](placement_atom) { rehome(); },
      [this](set_placement_atom, const detail::placement_box& box) {
        opts_.placement = box.fn;
        rehome();
      },
    };
  }

  // Runs however the partition ends, a bug included: entities must not
  // outlive the only bookkeeping that knows them, or a second copy could be
  // activated later.
  void on_exit() override {
    for (auto& [id, entry] : entities_) {
      caf::anon_send_exit(entry.handle, caf::exit_reason::user_shutdown);
      entry.kind->alive->Decrement();
    }
    by_actor_.clear();
    for (auto& [name, kind] : kinds_)
      kind.running.clear();
    entities_.clear(); // drops held promises, which reference this actor
    incoming_.clear();
    disagreed_.clear();
    remotes_.clear();
    pending_.clear(); // holds promise copies, which reference this actor
    release_requests_.clear();
    release_waiters_.clear();
    crashes_.clear();
    core_.reset();            // the core references this actor too
    opts_.placement = nullptr; // may reference other directories
  }

private:
  void arm_sweep() { delayed_send(this, opts_.sweep_interval, sweep_atom::value); }

  void deliver(const entity_id& id, caf::response_promise rp, caf::message content,
               uint32_t hops, time_point parked_since = {}) {
    auto shard = shard_of(id, core_->shards);
    auto home = shard % core_->partitions.size();
    if (home != index_) {
      // Only a relay from a node with another partition count lands here.
      if (hops > 0)
        rp.delegate(core_->partitions[home], relayed_atom::value, hops, id, std::move(content));
      else
        rp.delegate(core_->partitions[home], route_atom::value, id, std::move(content));
      return;
    }
    if (auto in = incoming_.find(shard); in != incoming_.end()) {
      if (in->second.held.size() >= opts_.handoff_held_max) {
        refuse(rp, id, make_error(errc::unavailable, "shard moving here, too many held messages"));
        return;
      }
      in->second.held.push_back(parked_message{
        id, held_message{std::move(rp), std::move(content), hops}, clock().now()});
      return;
    }
    if (auto i = entities_.find(id); i != entities_.end()) {
      deliver_to_live(i->first, i->second, std::move(rp), std::move(content), hops);
      return;
    }
    if (opts_.placement) {
      auto route = opts_.placement(shard);
      if (route.unreachable) {
        park(id, std::move(rp), std::move(content), hops, parked_since, true);
        return;
      }
      auto& owner = route.owner;
      if (owner && owner != core_->partitions[home]) {
        if (hops < opts_.relay_hops_max)
          relay(owner, id, std::move(rp), std::move(content), hops + 1, parked_since);
        else
          park(id, std::move(rp), std::move(content), hops, parked_since, false);
        return;
      }
    }
    auto k = kinds_.find(id.kind);
    if (k == kinds_.end()) {
      refuse(rp, id, make_error(errc::not_found, "unknown entity kind"));
      return;
    }
    if (is_blocked(id)) {
      refuse(rp, id, make_error(errc::unavailable, "entity crashing, backing off"));
      return;
    }
    auto* entry = activate(id, k->second);
    if (!entry) {
      refuse(rp, id, make_error(errc::unavailable, "entity activation failed"));
      return;
    }
    rp.delegate(entry->handle, std::move(content));
  }

  // Sends a message on to the directory that owns its shard. To another
  // node: kept until answered (pending_relay), and held back while that
  // node is known lost, until the placement moves the shard.
  void relay(const caf::actor& owner, const entity_id& id, caf::response_promise rp,
             caf::message content, uint32_t hops, time_point parked_since) {
    if (owner.node() == node()) {
      rp.delegate(owner, relayed_atom::value, hops, id, std::move(content));
      return;
    }
    auto& remote = watch(owner);
    if (remote.lost) {
      park(id, std::move(rp), std::move(content), hops - 1, parked_since, true);
      return;
    }
    if (rp.async() || pending_.size() >= relay_watch_max) {
      rp.delegate(owner, relayed_atom::value, hops, id, std::move(content));
      return;
    }
    auto key = ++relay_seq_;
    pending_.emplace(key, pending_relay{std::move(rp), id, content, hops, clock().now(),
                                        caf::actor_cast<caf::actor_control_block*>(owner)});
    request(owner, caf::infinite, relayed_atom::value, hops, id, std::move(content))
      .then(
        // CAF 0.17 has no catch-all response handler: an answer of a type
        // that no handler takes comes to the error handler as
        // unexpected_response, the answer its context.
        [this, key](caf::ok_atom ok) { relay_answered(key, caf::make_message(ok)); },
        [this, key](caf::error& err) {
          if (err == caf::sec::unexpected_response)
            relay_answered(key, err.context());
          else
            relay_answered(key, caf::make_message(std::move(err)));
        });
  }

  // Whether the answer to `rp` goes to an actor on this node: a caller
  // here, or a partition here that relayed the request (an entity that
  // delegates a request on keeps its caller).
  bool answered_here(const caf::response_promise& rp) const {
    auto next = rp.next();
    return next != nullptr && next->node() == node();
  }

  void relay_answered(uint64_t key, caf::message answer) {
    auto i = pending_.find(key);
    if (i == pending_.end())
      return;
    auto rp = std::move(i->second.promise);
    pending_.erase(i);
    if (answer.match_elements<caf::error>())
      rp.deliver(answer.get_mutable_as<caf::error>(0));
    else
      rp.deliver(std::move(answer));
  }

  remote_directory& watch(const caf::actor& handle) {
    auto* key = caf::actor_cast<caf::actor_control_block*>(handle);
    auto i = remotes_.find(key);
    if (i == remotes_.end()) {
      i = remotes_.emplace(key, remote_directory{handle, false}).first;
      // A proxy killed already (its connection gone) is reported at once.
      monitor(handle);
    }
    return i->second;
  }

  // The connection to another node's directory is gone. What was relayed
  // there and is not answered yet goes to the shard's new owner if the
  // shard had moved away from the lost node (it may have been carried out
  // there already; the command is idempotent, so the answer is the first
  // outcome), or fails if the lost node still owned it (the caller retries
  // through the directory once the placement has moved the shard). A
  // hand-off that waits for that node is over.
  void on_remote_down(const caf::down_msg& dm) {
    auto i = remotes_.find(dm.source.get());
    if (i == remotes_.end() || i->second.lost)
      return;
    i->second.lost = true;
    const auto* lost = dm.source.get();
    // Its answers came through the same connection, before the down
    // message: what is still pending here will never be answered.
    std::vector<pending_relay> again;
    size_t failed = 0;
    for (auto p = pending_.begin(); p != pending_.end();) {
      if (p->second.remote != lost) {
        ++p;
        continue;
      }
      auto relay = std::move(p->second);
      p = pending_.erase(p);
      if (moved_away_from(shard_of(relay.id, core_->shards), lost)) {
        again.push_back(std::move(relay));
      } else {
        relay.promise.deliver(
          make_error(errc::unavailable, "the node that owns it was lost, retry"));
        ++failed;
      }
    }
    log().info("directory: the directory {} of node {} is gone ({}); of the requests relayed "
               "there and unanswered, {} go to their shard's new owner, {} fail",
               caf::to_string(dm.source), caf::to_string(dm.source.node()),
               system().render(dm.reason), again.size(), failed);
    for (auto& r : again)
      deliver(r.id, std::move(r.promise), std::move(r.content), r.hops - 1);
    std::vector<std::pair<uint32_t, uint64_t>> waiting;
    for (auto& [shard, in] : incoming_)
      if (in.from && caf::actor_cast<caf::actor_control_block*>(in.from) == dm.source.get())
        waiting.emplace_back(shard, in.move);
    for (auto [shard, move] : waiting) {
      log().info("directory: shard {}: its old owner was lost; serving it", shard);
      end_handoff(shard, move);
    }
  }

  // Whether this node's placement no longer gives `shard` to the directory
  // `lost`, and has an owner for it that can be reached.
  bool moved_away_from(uint32_t shard, const caf::actor_control_block* lost) const {
    if (!opts_.placement)
      return true;
    auto route = opts_.placement(shard);
    if (route.unreachable)
      return false;
    return caf::actor_cast<caf::actor_control_block*>(route.owner) != lost;
  }

  bool known_lost(const caf::actor& handle) const {
    auto i = remotes_.find(caf::actor_cast<caf::actor_control_block*>(handle));
    return i != remotes_.end() && i->second.lost;
  }

  // A message that cannot go on yet waits for this node's placement to
  // change: placements disagree (each node sends it on to another), up to
  // disagreement_hold after it first parked, or its shard's owner is
  // unreachable, up to unreachable_hold.
  void park(const entity_id& id, caf::response_promise rp, caf::message content, uint32_t hops,
            time_point since, bool unreachable) {
    auto now = clock().now();
    if (since == time_point{})
      since = now;
    auto hold = unreachable ? opts_.unreachable_hold : opts_.disagreement_hold;
    if (now - since >= hold) {
      refuse(rp, id, parked_too_long(unreachable));
      return;
    }
    if (disagreed_.size() >= opts_.handoff_held_max) {
      refuse(rp, id, make_error(errc::unavailable, "shard owner not settled, too many held messages"));
      return;
    }
    disagreed_.push_back(parked_message{id, held_message{std::move(rp), std::move(content), hops},
                                        since, unreachable});
    delayed_send(this, hold - (now - since), disagree_due_atom::value);
  }

  static caf::error parked_too_long(bool unreachable) {
    return unreachable ? make_error(errc::unavailable, "the node that owns it cannot be reached, retry")
                       : make_error(errc::unavailable, "shard owned elsewhere, placements disagree");
  }

  void refuse_overdue_disagreements() {
    auto now = clock().now();
    std::vector<parked_message> keep;
    for (auto& p : disagreed_) {
      auto hold = p.unreachable ? opts_.unreachable_hold : opts_.disagreement_hold;
      if (now - p.since >= hold)
        refuse(p.message.promise, p.id, parked_too_long(p.unreachable));
      else
        keep.push_back(std::move(p));
    }
    disagreed_ = std::move(keep);
  }

  void deliver_to_live(const entity_id& id, entity_entry& entry, caf::response_promise rp,
                       caf::message content, uint32_t hops) {
    if (entry.status == entity_status::running) {
      entry.last_use = clock().now();
      auto& running = entry.kind->running;
      running.splice(running.begin(), running, entry.lru);
      rp.delegate(entry.handle, std::move(content));
      return;
    }
    if (entry.held.size() >= opts_.held_max) {
      refuse(rp, id, make_error(errc::unavailable, "entity passivating, too many held messages"));
      return;
    }
    entry.held.push_back(held_message{std::move(rp), std::move(content), hops});
  }

  // A one-way sender gets nothing: an error message would reach the default
  // error handler of an actor that expects no reply, and stop it.
  void refuse(caf::response_promise& rp, const entity_id& id, caf::error err) {
    if (rp.async()) {
      log().warn("directory: dropped a one-way message for {}/{}: {}", id.kind, id.key,
                 message_of(err));
      return;
    }
    log().debug("directory: refused a request for {}/{}: {}", id.kind, id.key, message_of(err));
    rp.deliver(std::move(err));
  }

  entity_entry* activate(const entity_id& id, kind_slot& kind) {
    while (kind.running.size() >= kind.running_max)
      passivate(*kind.running.back());
    caf::actor handle;
    try {
      handle = kind.spec.activate(activation_context{system(), id, directory{core_}});
    } catch (const std::exception& e) {
      log().error("directory: activating {}/{} threw: {}", id.kind, id.key, e.what());
    } catch (...) {
      log().error("directory: activating {}/{} threw", id.kind, id.key);
    }
    if (!handle) {
      record_crash(id);
      return nullptr;
    }
    monitor(handle);
    auto [i, inserted] = entities_.emplace(id, entity_entry{});
    WAGER_ASSERT(inserted, "an entity is activated once per incarnation");
    auto& entry = i->second;
    entry.id = &i->first;
    entry.handle = std::move(handle);
    entry.kind = &kind;
    entry.last_use = clock().now();
    entry.lru = kind.running.insert(kind.running.begin(), &entry);
    bool fresh = by_actor_.emplace(entry.handle.id(), &entry).second;
    WAGER_ASSERT(fresh, "an activate function spawns a new actor per entity");
    kind.activations->Increment();
    kind.alive->Increment();
    auto shard = shard_of(id, core_->shards);
    ++live_per_shard_[shard];
    if (opts_.placement)
      owned_.insert(shard);
    log().debug("directory: activated {}/{}", id.kind, id.key);
    return &entry;
  }

  void passivate(entity_entry& entry) {
    WAGER_ASSERT(entry.status == entity_status::running, "only a running entity passivates");
    entry.kind->running.erase(entry.lru);
    entry.status = entity_status::passivating;
    send(entry.handle, passivate_atom::value);
    // Timers cannot be cancelled; the actor id names this incarnation, so a
    // late timer finds nothing.
    delayed_send(this, opts_.passivate_timeout, overdue_atom::value, entry.handle.id());
    log().debug("directory: passivating {}/{}", entry.id->kind, entry.id->key);
  }

  void on_down(const caf::down_msg& dm) {
    if (dm.source.node() != node()) {
      on_remote_down(dm);
      return;
    }
    auto found = by_actor_.find(dm.source.id());
    if (found == by_actor_.end())
      return;
    auto extracted = entities_.extract(*found->second->id);
    by_actor_.erase(found);
    auto id = std::move(extracted.key());
    auto& entry = extracted.mapped();
    auto& kind = *entry.kind;
    kind.alive->Decrement();
    auto shard = shard_of(id, core_->shards);
    if (auto n = live_per_shard_.find(shard); n != live_per_shard_.end() && --n->second == 0)
      live_per_shard_.erase(n);
    if (entry.status == entity_status::running)
      kind.running.erase(entry.lru);
    bool clean = !dm.reason || dm.reason == caf::exit_reason::normal;
    if (clean && entry.status == entity_status::passivating) {
      kind.passivations->Increment();
      log().debug("directory: passivated {}/{}", id.kind, id.key);
    } else if (clean) {
      log().warn("directory: {}/{} quit without being asked to", id.kind, id.key);
    } else {
      log().warn("directory: {}/{} crashed: {}", id.kind, id.key, caf::to_string(dm.reason));
      record_crash(id);
    }
    // In arrival order: the first activates the next incarnation (or is
    // relayed, if the shard moved), the rest follow it into its mailbox.
    for (auto& held : entry.held)
      deliver(id, std::move(held.promise), std::move(held.content), held.hops);
    try_release(shard);
    // The last entity of a shard that moved away and that nobody asked for:
    // await_released may be waiting on it.
    if (!release_waiters_.empty() && releasing_.count(shard) && !live_per_shard_.count(shard))
      answer_release_waiters();
  }

  void on_overdue(caf::actor_id aid) {
    auto found = by_actor_.find(aid);
    if (found == by_actor_.end())
      return;
    auto& entry = *found->second;
    if (entry.status != entity_status::passivating)
      return;
    log().warn("directory: {}/{} did not passivate within {} ms, killing it", entry.id->kind,
               entry.id->key, opts_.passivate_timeout.count());
    send_exit(entry.handle, caf::exit_reason::kill);
  }

  void sweep() {
    auto now = clock().now();
    size_t budget = sweep_passivations_max;
    for (auto& [name, kind] : kinds_) {
      while (!kind.running.empty() && budget > 0) {
        auto* entry = kind.running.back();
        if (now - entry->last_use < kind.spec.idle_timeout)
          break;
        passivate(*entry);
        --budget;
      }
    }
    if (budget == 0)
      send(this, sweep_more_atom::value);
    std::erase_if(crashes_, [&](const auto& item) { return forgiven(item.second, now); });
    // Keys grow with time: the oldest relays come first.
    while (!pending_.empty() && now - pending_.begin()->second.sent >= relay_timeout) {
      auto& relay = pending_.begin()->second;
      refuse(relay.promise, relay.id,
             make_error(errc::unavailable, "the node that owns it did not answer, retry"));
      pending_.erase(pending_.begin());
    }
  }

  void rehome() {
    if (!opts_.placement)
      return;
    // A placement made after a connection loss names the node's new proxy,
    // if it still names the node at all.
    std::erase_if(remotes_, [](const auto& item) { return item.second.lost; });
    // This partition's shards: served here under which move, and whether
    // that is the move their live entities were activated under.
    auto partitions = static_cast<uint32_t>(core_->partitions.size());
    for (uint32_t shard = index_; shard < core_->shards; shard += partitions) {
      auto route = opts_.placement(shard);
      bool here = !route.owner || route.owner == core_->partitions[index_];
      auto seen = served_move_.find(shard);
      bool keep = here && (seen == served_move_.end() || seen->second == route.move);
      // Entities still waiting to be passivated from an earlier placement
      // go anyway: served_move_ no longer tells they are from an earlier
      // stay.
      auto& k = keep_.try_emplace(shard, true).first->second;
      k = keep && (k || !rehome_pending_);
      if (here)
        served_move_[shard] = route.move;
      else
        served_move_.erase(shard);
    }
    passivate_moved();
    for (uint32_t shard = index_; shard < core_->shards; shard += partitions)
      rehome_shard(shard);
    // Parked because placements disagreed: the new placement decides.
    auto parked = std::move(disagreed_);
    disagreed_.clear();
    for (auto& p : parked)
      deliver(p.id, std::move(p.message.promise), std::move(p.message.content), p.message.hops,
              p.since);
    answer_release_waiters();
  }

  // Passivates the running entities whose shards the last placement does not
  // keep here, at most rehome_passivations_max a turn; the rest in the next.
  void passivate_moved() {
    std::vector<entity_entry*> moving;
    for (auto& [name, kind] : kinds_)
      for (auto* entry : kind.running) {
        if (moving.size() >= rehome_passivations_max)
          break;
        if (auto k = keep_.find(shard_of(*entry->id, core_->shards)); k != keep_.end() && !k->second)
          moving.push_back(entry);
      }
    for (auto* entry : moving)
      passivate(*entry);
    if (moving.size() >= rehome_passivations_max && !rehome_pending_) {
      rehome_pending_ = true;
      // Through the clock, not the mailbox: CAF's work-stealing scheduler
      // runs work a worker makes before work from outside (a timer, the
      // network), so only a continuation from outside lets the agent's
      // tick and the network go first.
      delayed_send(this, std::chrono::milliseconds{1}, rehome_more_atom::value);
    }
  }

  bool serves(uint32_t shard) const {
    if (!opts_.placement)
      return true;
    auto owner = opts_.placement(shard).owner;
    return !owner || owner == core_->partitions[index_];
  }

  void rehome_shard(uint32_t shard) {
    auto route = opts_.placement(shard);
    bool here = !route.owner || route.owner == core_->partitions[index_];
    if (!here) {
      if (owned_.erase(shard) > 0)
        releasing_.emplace(shard, clock().now());
      if (incoming_.count(shard))
        end_handoff(shard, incoming_[shard].move); // the shard moved on: relay what waits
      try_release(shard);
      return;
    }
    owned_.insert(shard);
    releasing_.erase(shard);
    if (!route.handoff_from || known_lost(route.handoff_from)) {
      // Nobody alive to release it (the old owner is down): served at once.
      if (auto in = incoming_.find(shard); in != incoming_.end())
        end_handoff(shard, in->second.move);
      return;
    }
    if (auto done = settled_.find(shard); done != settled_.end() && done->second == route.move)
      return;
    if (auto in = incoming_.find(shard); in != incoming_.end() && in->second.move == route.move)
      return; // asked already
    auto move = route.move;
    auto& in = incoming_[shard];
    in.move = move;
    in.from = route.handoff_from;
    if (route.handoff_from.node() != node())
      watch(route.handoff_from);
    log().debug("directory: shard {} moved here, asking its old owner to release it", shard);
    request(route.handoff_from, opts_.handoff_timeout, handoff_atom::value, shard,
            core_->partitions.front())
      .then([this, shard, move](caf::ok_atom) { end_handoff(shard, move); },
            [this, shard, move](const caf::error& err) {
              auto in = incoming_.find(shard);
              if (in == incoming_.end() || in->second.move != move)
                return; // over already: lost owner, or a newer move
              log().warn("directory: shard {}: no release from its old owner ({}); serving it",
                         shard, system().render(err));
              end_handoff(shard, move);
            });
  }

  // The old owner released `shard` (or will never say): what waited for it
  // is delivered, in arrival order.
  void end_handoff(uint32_t shard, uint64_t move) {
    auto in = incoming_.find(shard);
    if (in == incoming_.end() || in->second.move != move)
      return; // a newer move asks again
    settled_[shard] = move;
    auto held = std::move(in->second.held);
    incoming_.erase(in);
    for (auto& p : held)
      deliver(p.id, std::move(p.message.promise), std::move(p.message.content), p.message.hops);
  }

  // A node that took `shard` over asks this node to release it.
  void on_handoff_request(uint32_t shard, caf::actor requester) {
    auto rp = make_response_promise();
    if (shard >= core_->shards || !requester) {
      rp.deliver(make_error(errc::invalid_field, "no such shard"));
      return;
    }
    auto home = shard % core_->partitions.size();
    if (home != index_) {
      rp.delegate(core_->partitions[home], handoff_atom::value, shard, std::move(requester));
      return;
    }
    release_requests_[shard].push_back(release_request{std::move(rp), std::move(requester)});
    try_release(shard);
  }

  static bool same_actor(const caf::actor& x, const caf::actor& y) {
    return x && y && x.node() == y.node() && x.id() == y.id();
  }

  // Answers a node that asked for `shard` once this node neither serves it
  // nor has an entity of it alive (running or passivating), and only if this
  // node's placement names the asker as the owner: two nodes that both
  // think they took the shard (views still converging) do not both get it.
  // Other requests wait for the placement to change (or their timeout).
  void try_release(uint32_t shard) {
    auto r = release_requests_.find(shard);
    if (r == release_requests_.end() || serves(shard) || live_per_shard_.count(shard))
      return;
    auto owner = opts_.placement(shard).owner;
    auto& waiting = r->second;
    bool released = false;
    std::erase_if(waiting, [&](release_request& req) {
      if (!same_actor(req.requester, owner))
        return false;
      req.promise.deliver(caf::ok_atom::value);
      released = true;
      return true;
    });
    if (waiting.empty())
      release_requests_.erase(r);
    if (released && releasing_.erase(shard) > 0)
      log().debug("directory: released shard {}", shard);
    answer_release_waiters();
  }

  // A shard that moved away with nothing live here is released when its
  // new owner asks, or release_grace after it moved: a node whose view made
  // another the old owner never asks.
  void answer_release_waiters() {
    auto now = clock().now();
    std::optional<time_point> next;
    std::erase_if(releasing_, [&](const auto& item) {
      if (live_per_shard_.count(item.first))
        return false;
      if (now - item.second >= opts_.release_grace)
        return true;
      auto due = item.second + opts_.release_grace;
      next = next ? std::min(*next, due) : due;
      return false;
    });
    if (release_waiters_.empty())
      return;
    if (releasing_.empty()) {
      for (auto& rp : release_waiters_)
        rp.deliver(caf::ok_atom::value);
      release_waiters_.clear();
      return;
    }
    if (next)
      delayed_send(this, *next - now, release_check_atom::value);
  }

  // Messages still waiting here are refused, except those whose answer
  // goes to another node: that node's directory relayed it (or an entity
  // here passed on a request relayed here) and watches it, and sends it to
  // the shard's owner when this node's connection goes. A refusal would be
  // an answer, and reach the caller as a failure of a request that a node
  // still running could serve.
  void shutdown(const caf::error& reason) {
    auto stopped = [this](caf::response_promise& rp, const entity_id& id) {
      if (answered_here(rp))
        refuse(rp, id, make_error(errc::unavailable, "directory stopped"));
      else
        log().debug("directory: stopped with a message for {}/{} from another node, which "
                    "sends it on",
                    id.kind, id.key);
    };
    for (auto& [id, entry] : entities_)
      for (auto& held : entry.held)
        stopped(held.promise, id);
    for (auto& [shard, in] : incoming_)
      for (auto& p : in.held)
        stopped(p.message.promise, p.id);
    for (auto& p : disagreed_)
      stopped(p.message.promise, p.id);
    for (auto& [key, p] : pending_)
      stopped(p.promise, p.id);
    pending_.clear();
    remotes_.clear();
    quit(reason);
  }

  bool forgiven(const crash_record& r, time_point now) const {
    return now - std::max(r.last_crash, r.blocked_until) >= opts_.crash_window;
  }

  void record_crash(const entity_id& id) {
    auto now = clock().now();
    auto i = crashes_.find(id);
    if (i == crashes_.end()) {
      if (crashes_.size() >= crash_records_max)
        return;
      i = crashes_.emplace(id, crash_record{}).first;
    } else if (forgiven(i->second, now)) {
      i->second.crashes = 0;
    }
    auto& r = i->second;
    r.last_crash = now;
    if (++r.crashes <= opts_.crash_restart_max)
      return;
    auto doublings = std::min(r.crashes - opts_.crash_restart_max - 1, backoff_doublings_max);
    auto backoff = std::min(opts_.crash_backoff_initial * (int64_t{1} << doublings),
                            std::chrono::duration_cast<std::chrono::milliseconds>(
                              opts_.crash_backoff_max));
    r.blocked_until = now + backoff;
    log().warn("directory: {}/{} crashed {} times in a row, blocked for {} ms", id.kind, id.key,
               r.crashes, backoff.count());
  }

  bool is_blocked(const entity_id& id) const {
    auto i = crashes_.find(id);
    return i != crashes_.end() && clock().now() < i->second.blocked_until;
  }

  directory_options opts_;
  std::shared_ptr<const detail::directory_core> core_;
  uint32_t index_;
  std::unordered_map<std::string, kind_slot> kinds_;
  entity_map entities_;
  std::unordered_map<caf::actor_id, entity_entry*> by_actor_;
  std::unordered_map<entity_id, crash_record> crashes_;
  // Entities alive here (running or passivating) per shard.
  std::unordered_map<uint32_t, size_t> live_per_shard_;
  // The hand-off, this partition's shards only. owned_: served here (an
  // entity activated, or the last placement said so); releasing_: served
  // here before, not yet released to a
  // new owner that asked; incoming_: moved here, waiting for the old owner;
  // settled_: the last move whose hand-off ended, per shard.
  std::unordered_set<uint32_t> owned_;
  std::unordered_map<uint32_t, time_point> releasing_; // -> when it moved away
  std::unordered_map<uint32_t, incoming_shard> incoming_;
  std::unordered_map<uint32_t, uint64_t> settled_;
  // The move each shard served here was under at the last placement.
  std::unordered_map<uint32_t, uint64_t> served_move_;
  std::unordered_map<uint32_t, std::vector<release_request>> release_requests_;
  std::vector<caf::response_promise> release_waiters_;
  std::vector<parked_message> disagreed_;
  // Per shard of this partition, whether the last placement keeps its live
  // entities here (passivate_moved); rehome_pending_: a rehome_more_atom is
  // on its way.
  std::unordered_map<uint32_t, bool> keep_;
  bool rehome_pending_ = false;
  // Other nodes' directories relayed to or asked for a hand-off, by proxy.
  std::unordered_map<const caf::actor_control_block*, remote_directory> remotes_;
  // Requests relayed to other nodes and not answered yet, by a number that
  // grows with each.
  std::map<uint64_t, pending_relay> pending_;
  uint64_t relay_seq_ = 0;
};

caf::error invalid(std::string what) {
  return make_error(errc::invalid_field, "directory: " + std::move(what));
}

caf::error validate(const directory_options& opts, const std::vector<entity_kind>& kinds) {
  using std::chrono::milliseconds;
  if (opts.shards == 0)
    return invalid("shards must be at least 1");
  if (opts.sweep_interval <= milliseconds::zero())
    return invalid("sweep_interval must be positive");
  if (opts.passivate_timeout <= milliseconds::zero())
    return invalid("passivate_timeout must be positive");
  if (opts.held_max == 0)
    return invalid("held_max must be at least 1");
  if (opts.handoff_held_max == 0)
    return invalid("handoff_held_max must be at least 1");
  if (opts.handoff_timeout <= milliseconds::zero() || opts.disagreement_hold < milliseconds::zero()
      || opts.unreachable_hold < milliseconds::zero())
    return invalid(
      "handoff_timeout must be positive, disagreement_hold and unreachable_hold not negative");
  if (opts.crash_window <= milliseconds::zero())
    return invalid("crash_window must be positive");
  if (opts.crash_backoff_initial <= milliseconds::zero()
      || opts.crash_backoff_max < opts.crash_backoff_initial)
    return invalid("crash back-off must be positive, initial <= max");
  if (kinds.empty())
    return invalid("no entity kinds");
  std::unordered_set<std::string> names;
  for (auto& kind : kinds) {
    if (kind.name.empty() || kind.name.find('/') != std::string::npos)
      return invalid("kind name '" + kind.name + "' must be non-empty, without '/'");
    if (!names.insert(kind.name).second)
      return invalid("kind '" + kind.name + "' registered twice");
    if (!kind.activate)
      return invalid("kind '" + kind.name + "' has no activate function");
    if (kind.idle_timeout <= milliseconds::zero())
      return invalid("kind '" + kind.name + "' idle_timeout must be positive");
    if (kind.resident_max == 0)
      return invalid("kind '" + kind.name + "' resident_max must be at least 1");
  }
  return {};
}

} // namespace

directory::directory(std::shared_ptr<const detail::directory_core> core)
  : core_(std::move(core)) {}

namespace {

// One of directory::call's actors: runs each job it gets (a request to an
// entity); on exit, every call it made that is still unanswered hears that
// the node is stopping.
caf::behavior caller(caf::stateful_actor<detail::caller_calls>* self) {
  self->set_exit_handler([self](caf::exit_msg& msg) {
    auto open = std::move(self->state.open);
    self->state.open.clear();
    for (auto& [id, fail] : open)
      fail(make_error(errc::unavailable, "the node is stopping"));
    self->quit(msg.reason);
  });
  return {
    [self](detail::caller_job_box& box) { box.job(self, self->state); },
  };
}

} // namespace

bool directory::run_on_caller(detail::caller_job job) const {
  if (core_ == nullptr)
    return false;
  std::shared_lock lock{core_->stopping};
  if (core_->stopped)
    return false;
  auto& callers = core_->callers;
  auto i = core_->next_caller.fetch_add(1, std::memory_order_relaxed) % callers.size();
  caf::anon_send(callers[i], detail::caller_job_box{std::move(job)});
  return true;
}

void detail::callback_failed(const char* what) noexcept {
  try {
    log().error("directory: a call's callback threw: {}", what);
  } catch (...) {
  }
}

caf::error directory::stopped_error() {
  return make_error(errc::unavailable, "the node is stopping");
}

request_deadlines::ticket directory::time_out(caf::actor_control_block* requester,
                                               caf::message_id response_id,
                                               caf::duration timeout) const {
  WAGER_ASSERT(core_ != nullptr, "a directory from spawn_directory");
  return core_->deadlines->arm(requester, response_id, timeout);
}

void directory::disarm(const request_deadlines::ticket& ticket,
                       caf::message_id response_id) const {
  WAGER_ASSERT(core_ != nullptr, "a directory from spawn_directory");
  core_->deadlines->disarm(ticket, response_id);
}

void directory::send_later(caf::actor_control_block* receiver, caf::duration delay,
                           caf::message msg) const {
  WAGER_ASSERT(core_ != nullptr, "a directory from spawn_directory");
  core_->deadlines->send_later(receiver, delay, std::move(msg));
}

uint32_t directory::shards() const noexcept {
  return core_ ? core_->shards : 0;
}

size_t directory::partitions() const noexcept {
  return core_ ? core_->partitions.size() : 0;
}

const caf::actor& directory::partition_of_shard(uint32_t shard) const {
  WAGER_ASSERT(core_ && !core_->partitions.empty(), "a directory from spawn_directory");
  return core_->partitions[shard % core_->partitions.size()];
}

const caf::actor& directory::partition_for(const entity_id& id) const {
  WAGER_ASSERT(core_ != nullptr, "a directory from spawn_directory");
  return partition_of_shard(shard_of(id, core_->shards));
}

void directory::placement_changed() const {
  if (core_)
    for (auto& p : core_->partitions)
      caf::anon_send(p, placement_atom::value);
}

void set_directory_placement(const directory& dir, placement_fn fn) {
  for (size_t i = 0; i < dir.partitions(); ++i)
    caf::anon_send(dir.partition_of_shard(static_cast<uint32_t>(i)), set_placement_atom::value,
                   detail::placement_box{fn});
}

bool directory::await_released(std::chrono::milliseconds timeout) const {
  if (!core_ || core_->partitions.empty())
    return true;
  caf::scoped_actor self{core_->partitions.front()->home_system()};
  auto deadline = std::chrono::steady_clock::now() + timeout;
  bool all = true;
  for (auto& p : core_->partitions) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
      deadline - std::chrono::steady_clock::now());
    if (left <= std::chrono::milliseconds::zero()) {
      all = false;
      break;
    }
    self->request(p, left, released_atom::value)
      .receive([](caf::ok_atom) {}, [&all](const caf::error&) { all = false; });
  }
  return all;
}

void directory::stop() const {
  if (!core_)
    return;
  {
    std::unique_lock lock{core_->stopping};
    core_->stopped = true;
    for (auto& c : core_->callers)
      caf::anon_send_exit(c, caf::exit_reason::user_shutdown);
  }
  for (auto& p : core_->partitions)
    caf::anon_send_exit(p, caf::exit_reason::user_shutdown);
}

caf::expected<directory> spawn_directory(caf::actor_system& sys, directory_options opts,
                                         std::vector<entity_kind> kinds, metrics& m) {
  if (auto err = validate(opts, kinds))
    return err;
  uint32_t count = opts.partitions != 0
                     ? opts.partitions
                     : static_cast<uint32_t>(2 * sys.scheduler().num_workers());
  count = std::clamp<uint32_t>(count, 1, opts.shards);
  opts.partitions = count;
  auto core = std::make_shared<detail::directory_core>();
  core->shards = opts.shards;
  auto shared_kinds = std::make_shared<const std::vector<entity_kind>>(std::move(kinds));
  // Partitions read core->partitions only when routing, which needs a client,
  // which exists only once this loop is done.
  for (uint32_t i = 0; i < count; ++i)
    core->partitions.push_back(
      sys.spawn<partition>(partition_config{opts, shared_kinds, core, i, &m}));
  auto callers = std::max<size_t>(2, 2 * sys.scheduler().num_workers());
  for (size_t i = 0; i < callers; ++i)
    core->callers.push_back(sys.spawn(caller));
  return directory{std::move(core)};
}

} // namespace wager
