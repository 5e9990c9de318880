#include "wager/cluster/agent.hpp"

#include "wager/cluster/agent_state.hpp"
#include "wager/cluster/handshake.hpp"
#include "wager/cluster/placement.hpp"
#include "wager/cluster/protocol.hpp"
#include "wager/runtime/errors.hpp"
#include "wager/runtime/log.hpp"
#include "wager/runtime/metrics.hpp"

#include <caf/all.hpp>
#include <caf/io/middleman.hpp>
#include <caf/openssl/remote_actor.hpp>

#include <algorithm>
#include <map>
#include <optional>

namespace wager {

namespace detail {

int64_t steady_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
           std::chrono::steady_clock::now().time_since_epoch())
    .count();
}

// Incarnations come from the wall clock, so a restarted process (same node
// id, nothing remembered) still takes a larger one than its previous life.
uint64_t wall_ms() {
  return static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::milliseconds>(
                                 std::chrono::system_clock::now().time_since_epoch())
                                 .count());
}

} // namespace detail

namespace {

using namespace detail;

using tick_atom = caf::atom_constant<caf::atom("wc_tick")>;
using dialed_atom = caf::atom_constant<caf::atom("wc_dialed")>;
using begin_atom = caf::atom_constant<caf::atom("wc_begin")>;
using leave_atom = caf::atom_constant<caf::atom("wc_leave")>;

// Addresses dialed at most: peers' heartbeats name them.
constexpr size_t addresses_max = 256;

void publish_view(agent_actor* self);

// "host:port" with a port from 1 to 65535; addresses come from peers'
// heartbeats, so a malformed one is skipped, never parsed later.
std::optional<std::pair<std::string, uint16_t>> parse_address(const std::string& address) {
  auto colon = address.rfind(':');
  if (colon == std::string::npos || colon == 0 || colon + 1 == address.size()
      || address.size() - colon > 6)
    return std::nullopt;
  uint32_t port = 0;
  for (auto c : address.substr(colon + 1)) {
    if (c < '0' || c > '9')
      return std::nullopt;
    port = port * 10 + static_cast<uint32_t>(c - '0');
  }
  if (port == 0 || port > 65535)
    return std::nullopt;
  return std::pair{address.substr(0, colon), static_cast<uint16_t>(port)};
}

void remember_address(agent_state& st, const std::string& address, const std::string& node_id) {
  if (address == st.address || !parse_address(address))
    return;
  auto i = st.dials.find(address);
  if (i == st.dials.end()) {
    if (st.dials.size() >= addresses_max)
      return;
    i = st.dials.emplace(address, dial_target{}).first;
  }
  if (!node_id.empty())
    i->second.node_id = node_id;
}

void rejoin(agent_actor* self, const std::string& why) {
  auto& st = self->state;
  auto next = std::max(st.members->self().incarnation + 1, wall_ms());
  log().warn("cluster: {}; {} rejoins as incarnation {}", why, st.opts.node_id, next);
  st.members->rejoin(next);
  // Nobody is to be believed about the members until heard again, and the
  // dial loop reconnects to every address known.
  for (auto& [address, dial] : st.dials) {
    dial.next_ms = 0;
    dial.backoff_ms = 0;
  }
}

void send_heartbeat(agent_actor* self, const caf::actor& to) {
  self->send(to, heartbeat_atom::value, self->state.members->make_heartbeat());
}

// A detached actor per dial: the middleman's connect blocks its caller.
void dial(agent_actor* self, const std::string& address) {
  auto parsed = *parse_address(address); // remember_address checked it
  auto host = parsed.first;
  auto port = parsed.second;
  bool tls = self->state.opts.tls;
  caf::actor agent = caf::actor_cast<caf::actor>(self);
  self->spawn<caf::detached>([agent, address, host, port, tls](caf::blocking_actor* dialer) {
    auto& sys = dialer->system();
    auto peer = tls ? caf::openssl::remote_actor(sys, host, port)
                    : sys.middleman().remote_actor(host, port);
    if (peer)
      dialer->send(agent, dialed_atom::value, address, *peer, std::string{});
    else
      dialer->send(agent, dialed_atom::value, address, caf::actor{}, sys.render(peer.error()));
  });
}

void dial_due(agent_actor* self, int64_t now) {
  auto& st = self->state;
  for (auto& [address, target] : st.dials) {
    if (target.self || target.in_flight || target.next_ms > now)
      continue;
    if (!target.node_id.empty() && st.peers.count(target.node_id))
      continue;
    target.in_flight = true;
    dial(self, address);
  }
}

void on_dialed(agent_actor* self, const std::string& address, const caf::actor& peer,
               const std::string& error) {
  auto& st = self->state;
  if (!peer)
    return dial_failed(self, address, error);
  if (peer.node() == self->system().node()) {
    // A seed list names every node, this one included.
    if (auto i = st.dials.find(address); i != st.dials.end()) {
      i->second.self = true;
      i->second.in_flight = false;
    }
    return;
  }
  start_handshake(self, address, peer);
}

void on_heartbeat(agent_actor* self, const heartbeat& hb) {
  auto& st = self->state;
  auto sender = self->current_sender();
  if (!sender)
    return;
  auto i = st.trusted.find(sender->address());
  if (i == st.trusted.end() || i->second != hb.self.node_id)
    return; // not admitted, or speaking for somebody else
  st.members->on_heartbeat(hb, steady_ms());
  remember_address(st, hb.self.address, hb.self.node_id);
  for (auto& r : hb.view)
    remember_address(st, r.address, r.node_id);
  if (st.members->rejoin_needed())
    rejoin(self, "a peer called this node down");
  else if (st.members->self().status == member_status::joining
           && hb.self.status == member_status::up)
    st.members->joined();
  publish_view(self);
}

void publish_routes(agent_actor* self, const std::vector<std::string>& placement);
void announce_handovers(agent_state& st);

// Asks each admitted peer whose directory is not known yet for it. A peer
// that has not admitted this node yet refuses; the next tick asks again.
void query_directories(agent_actor* self) {
  auto& st = self->state;
  if (!st.opts.dir)
    return;
  for (auto& [node_id, agent] : st.peers) {
    if (st.peer_dirs.count(node_id) || st.dir_queries.count(node_id))
      continue;
    st.dir_queries.insert(node_id);
    self->request(agent, st.opts.handshake_timeout, directory_query_atom::value)
      .then(
        [self, agent = agent, node_id = node_id](const caf::actor& dir) {
          auto& st = self->state;
          st.dir_queries.erase(node_id);
          auto p = st.peers.find(node_id);
          if (p == st.peers.end() || p->second != agent)
            return;
          st.peer_dirs[node_id] = dir;
          publish_routes(self, place_shards(st.opts.shards, st.members->owners()));
        },
        [self, node_id = node_id](const caf::error& err) {
          self->state.dir_queries.erase(node_id);
          log().debug("cluster: {} did not learn {}'s directory yet: {}",
                      self->state.opts.node_id, node_id, self->system().render(err));
        });
  }
}

void on_tick(agent_actor* self) {
  auto& st = self->state;
  auto now = steady_ms();
  bool frozen = now - st.last_tick_ms > st.opts.down_after.count();
  if (frozen)
    rejoin(self, "this process was frozen for " + std::to_string(now - st.last_tick_ms) + " ms");
  else
    announce_handovers(st); // kept fresh while this process runs
  st.last_tick_ms = now;
  st.members->tick(now);
  if (st.members->rejoin_needed())
    rejoin(self, "a peer called this node down");
  dial_due(self, now);
  auto hb = st.members->make_heartbeat();
  for (auto& [id, peer] : st.peers)
    self->send(peer, heartbeat_atom::value, hb);
  publish_view(self);
  query_directories(self);
  self->delayed_send(self, st.opts.heartbeat, tick_atom::value);
}

void log_changes(agent_state& st, const std::vector<member_report>& now) {
  std::map<std::string, member_report> next;
  for (auto& m : now) {
    auto old = st.logged.find(m.node_id);
    if (old == st.logged.end() || old->second.status != m.status
        || old->second.incarnation != m.incarnation)
      log().info("cluster: {} sees {} at {} {} (incarnation {})", st.opts.node_id, m.node_id,
                 m.address, to_string(m.status), m.incarnation);
    next.emplace(m.node_id, m);
  }
  st.logged = std::move(next);
}

// Who serves each shard under `placement`, for the directory. A shard that
// moved here names the directory that must release it, when it is known (a
// node whose directory is unknown never served anything here either way:
// the journal fences what it writes).
std::vector<shard_route> routes_of(const agent_state& st,
                                   const std::vector<std::string>& placement) {
  std::vector<shard_route> routes(placement.size());
  for (size_t s = 0; s < placement.size(); ++s) {
    if (placement[s] == st.opts.node_id) {
      auto& a = st.moves->arrival(static_cast<uint32_t>(s));
      routes[s].move = a.move;
      if (a.from.empty())
        continue;
      if (auto d = st.peer_dirs.find(a.from); d != st.peer_dirs.end() && d->second)
        routes[s].handoff_from = d->second;
      continue;
    }
    auto d = st.peer_dirs.find(placement[s]);
    if (d != st.peer_dirs.end() && d->second) {
      routes[s].owner = d->second;
    } else {
      // An up member whose directory is not known (not asked yet, or its
      // connection was just lost): the directory holds the shard's messages
      // until the placement changes (at most unreachable_hold, then
      // unavailable). The refuser stands for "another node" meanwhile.
      routes[s].owner = st.shared->refuser;
      routes[s].unreachable = true;
    }
  }
  return routes;
}

// The shards this node owns that arrived from a node still alive in its
// view, to on_handover.
void announce_handovers(agent_state& st) {
  if (!st.opts.on_handover || !st.moves)
    return;
  std::set<std::string> alive;
  for (auto& m : st.members->members())
    if (m.status != member_status::down && m.node_id != st.opts.node_id)
      alive.insert(m.node_id);
  std::vector<shard_handover> handed;
  for (uint32_t s = 0; s < st.owned.size(); ++s) {
    if (!st.owned[s])
      continue;
    auto& a = st.moves->arrival(s);
    if (!a.from.empty() && alive.count(a.from) != 0)
      handed.push_back({s, a.from});
  }
  if (!handed.empty())
    st.opts.on_handover(std::move(handed));
}

void publish_routes(agent_actor* self, const std::vector<std::string>& placement) {
  auto& st = self->state;
  if (!st.opts.dir)
    return;
  // Shards new here: their entities' open work is resumed, after the
  // hand-off where there is one (the directory holds the activations).
  std::vector<uint32_t> taken;
  st.owned.resize(placement.size(), false);
  for (uint32_t s = 0; s < placement.size(); ++s) {
    bool mine = placement[s] == st.opts.node_id;
    if (mine && !st.owned[s])
      taken.push_back(s);
    st.owned[s] = mine;
  }
  st.moves->update(placement, st.members->members(), steady_ms());
  // Hand-overs first: a shard's lease may be taken from its live owner once
  // messages reach it here.
  announce_handovers(st);
  auto routes = routes_of(st, placement);
  bool changed = false;
  {
    std::lock_guard guard{st.shared->mutex};
    changed = routes != st.shared->routes;
    if (changed)
      st.shared->routes = std::move(routes);
  }
  if (changed)
    st.opts.dir.placement_changed();
  if (!taken.empty() && st.opts.on_shards_taken)
    st.opts.on_shards_taken(std::move(taken));
}

void publish_view(agent_actor* self) {
  auto& st = self->state;
  if (st.members->version() == st.published_version)
    return;
  st.published_version = st.members->version();
  cluster_view view;
  view.members = st.members->members();
  view.version = st.published_version;
  auto placement = place_shards(st.opts.shards, st.members->owners());
  publish_routes(self, placement);
  view.shards_owned = static_cast<uint32_t>(
    std::count(placement.begin(), placement.end(), st.opts.node_id));
  log_changes(st, view.members);
  std::map<member_status, double> counts;
  for (auto s : {member_status::joining, member_status::up, member_status::leaving,
                 member_status::down})
    counts[s] = 0;
  for (auto& m : view.members) {
    counts[m.status] += 1;
    st.incarnations->Add({{"node_id", m.node_id}}).Set(static_cast<double>(m.incarnation));
  }
  for (auto& [status, n] : counts)
    st.by_status->Add({{"status", std::string{to_string(status)}}}).Set(n);
  st.shards_owned->Set(view.shards_owned);
  std::lock_guard guard{st.shared->mutex};
  st.shared->view = std::move(view);
}

caf::behavior cluster_agent(agent_actor* self) {
  self->set_down_handler([self](caf::down_msg& dm) {
    auto& st = self->state;
    auto i = st.trusted.find(dm.source);
    if (i == st.trusted.end())
      return;
    // The connection is gone; silence will tell membership, the dial loop
    // tries again.
    auto node_id = i->second;
    log().info("cluster: {} lost its connection to {}", st.opts.node_id, node_id);
    st.trusted.erase(i);
    if (auto p = st.peers.find(node_id); p != st.peers.end() && p->second.address() == dm.source) {
      st.peers.erase(p);
      // Its directory came over the same connection: a message to that
      // proxy now is dropped unanswered. Its shards' messages wait until the
      // peer is admitted again and asked anew, or marked down.
      st.peer_dirs.erase(node_id);
      publish_routes(self, place_shards(st.opts.shards, st.members->owners()));
    }
  });
  self->state.last_tick_ms = steady_ms();
  self->send(self, tick_atom::value);
  return {
    [self](tick_atom) { on_tick(self); },
    [self](dialed_atom, const std::string& address, const caf::actor& peer,
           const std::string& error) { on_dialed(self, address, peer, error); },
    [self](join_hello_atom, std::string& id, std::string& address, std::string& nonce) {
      return on_hello(self, id, address, nonce);
    },
    [self](join_proof_atom, const std::string& proof) { return on_proof(self, proof); },
    [self](heartbeat_atom, const heartbeat& hb) { on_heartbeat(self, hb); },
    [self](directory_query_atom) -> caf::result<caf::actor> {
      auto& st = self->state;
      if (!st.trusted.count(caf::actor_cast<caf::actor_addr>(self->current_sender())))
        return make_error(errc::unauthorized, "directory asked by an agent not admitted");
      if (!st.opts.dir)
        return caf::actor{};
      return st.opts.dir.partition_of_shard(0);
    },
    [self](leave_atom) {
      // Told at once rather than at the next tick: the node stops soon.
      auto& st = self->state;
      st.members->leave();
      auto hb = st.members->make_heartbeat();
      for (auto& [id, peer] : st.peers)
        self->send(peer, heartbeat_atom::value, hb);
      publish_view(self);
      return caf::ok_atom::value;
    },
  };
}

} // namespace

namespace detail {

// A peer proved the secret: its agent is trusted from now on.
void admit(agent_actor* self, const caf::actor& agent, const std::string& node_id,
           const std::string& address) {
  auto& st = self->state;
  if (auto old = st.peers.find(node_id); old != st.peers.end() && old->second != agent) {
    st.trusted.erase(old->second.address());
    self->demonitor(old->second);
    st.peer_dirs.erase(node_id);
  }
  st.peers[node_id] = agent;
  st.trusted[agent.address()] = node_id;
  self->monitor(agent);
  remember_address(st, address, node_id);
  if (st.members->self().status == member_status::joining && !st.members->rejoin_needed())
    st.members->joined();
  log().debug("cluster: {} admitted {} at {}", st.opts.node_id, node_id, address);
  send_heartbeat(self, agent);
  publish_view(self);
  query_directories(self);
}

} // namespace detail


caf::actor spawn_cluster_agent(caf::actor_system& sys, metrics& m, cluster_options options,
                               std::shared_ptr<detail::cluster_shared> shared) {
  auto& gauges = prometheus::BuildGauge()
                   .Name("wager_cluster_members")
                   .Help("Cluster members this node knows, by status (itself included)")
                   .Register(m.registry());
  auto& incarnations = prometheus::BuildGauge()
                         .Name("wager_cluster_member_incarnation")
                         .Help("The incarnation of each member as this node knows it")
                         .Register(m.registry());
  auto& owned = prometheus::BuildGauge()
                  .Name("wager_cluster_shards_owned")
                  .Help("Shards that placement gives this node")
                  .Register(m.registry())
                  .Add({});
  // The cluster's shard count, so an alert can compare the owned shards
  // summed over the nodes with it (docs/deploy/alerts.yml).
  prometheus::BuildGauge()
    .Name("wager_cluster_shards")
    .Help("Shards in the cluster (every node's placement has this many)")
    .Register(m.registry())
    .Add({})
    .Set(options.shards);
  // Scheduled, not detached: in CAF 0.17 a detached actor can keep the
  // actor system's destructor waiting forever (actor-framework#1196, seen
  // here as a node that never exits after a drain). The directory bounds
  // the work it queues at once instead, so that heartbeats get their turn.
  return sys.spawn([=, &gauges, &incarnations, &owned](agent_actor* self) -> caf::behavior {
    auto& st = self->state;
    st.opts = options;
    st.shared = shared;
    st.by_status = &gauges;
    st.incarnations = &incarnations;
    st.shards_owned = &owned;
    // The advertised address names the bound port, known once the agent is
    // published.
    return {
      [self](begin_atom, const std::string& address) {
        auto& st = self->state;
        st.address = address;
        membership_options mopts;
        mopts.heartbeat_interval_ms = st.opts.heartbeat.count();
        mopts.down_after_ms = st.opts.down_after.count();
        st.members.emplace(
          member_report{st.opts.node_id, address, member_status::joining, wall_ms()}, mopts);
        st.moves.emplace(st.opts.node_id, st.opts.shards);
        if (!st.opts.secret.empty())
          for (auto& seed : st.opts.seeds)
            remember_address(st, seed, {});
        // Without seeds (or without a secret, so nobody to join) this node
        // is the cluster's first member.
        if (st.dials.empty())
          st.members->joined();
        self->become(cluster_agent(self));
        publish_view(self);
      },
    };
  });
}

void begin_cluster_agent(const caf::actor& agent, const std::string& advertised_address) {
  caf::anon_send(agent, begin_atom::value, advertised_address);
}

bool leave_cluster(const caf::actor& agent, std::chrono::milliseconds timeout) {
  caf::scoped_actor self{agent->home_system()};
  bool done = false;
  self->request(agent, timeout, leave_atom::value)
    .receive([&done](caf::ok_atom) { done = true; }, [](const caf::error&) {});
  return done;
}

} // namespace wager
