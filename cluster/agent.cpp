#include "wager/cluster/agent.hpp"

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

namespace {

using tick_atom = caf::atom_constant<caf::atom("wc_tick")>;
using dialed_atom = caf::atom_constant<caf::atom("wc_dialed")>;
using begin_atom = caf::atom_constant<caf::atom("wc_begin")>;
using leave_atom = caf::atom_constant<caf::atom("wc_leave")>;

// Bounds on what strangers can make the agent hold.
constexpr size_t pending_joins_max = 64;
constexpr size_t addresses_max = 256;

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

bool valid_node_id(const std::string& id) {
  if (id.empty() || id.size() > 64)
    return false;
  return std::all_of(id.begin(), id.end(), [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '.' || c == ':'
           || c == '-';
  });
}

// A hello the acceptor has answered; the joiner's proof is still to come.
struct pending_join {
  std::string node_id;
  std::string address;
  std::string joiner_nonce;
  std::string own_nonce;
  int64_t at_ms = 0;
};

// One address this node dials: a seed or a member's advertised address.
struct dial_target {
  std::string node_id; // empty until a handshake names who is there
  bool self = false;   // the address leads back to this node
  bool in_flight = false;
  uint32_t failures = 0; // in a row
  int64_t next_ms = 0;
  int64_t backoff_ms = 0;
};

struct agent_state {
  cluster_options opts;
  std::string address;
  std::shared_ptr<detail::cluster_shared> shared;
  std::optional<membership> members;
  std::map<caf::actor_addr, std::string> trusted; // admitted agent -> node id
  std::map<std::string, caf::actor> peers;        // node id -> admitted agent
  std::map<caf::actor_addr, pending_join> pending;
  std::map<std::string, dial_target> dials; // by address
  std::map<std::string, member_report> logged; // last members logged, by node id
  int64_t last_tick_ms = 0;
  uint64_t published_version = 0;
  prometheus::Family<prometheus::Gauge>* by_status = nullptr;
  prometheus::Family<prometheus::Gauge>* incarnations = nullptr;
  prometheus::Gauge* shards_owned = nullptr;

  static inline const char* name = "wager.cluster_agent";
};

using agent_actor = caf::stateful_actor<agent_state>;

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

// A peer proved the secret: its agent is trusted from now on.
void admit(agent_actor* self, const caf::actor& agent, const std::string& node_id,
           const std::string& address) {
  auto& st = self->state;
  if (auto old = st.peers.find(node_id); old != st.peers.end() && old->second != agent) {
    st.trusted.erase(old->second.address());
    self->demonitor(old->second);
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
}

void dial_failed(agent_actor* self, const std::string& address, const std::string& why) {
  auto& st = self->state;
  auto i = st.dials.find(address);
  if (i == st.dials.end())
    return;
  auto& dial = i->second;
  dial.in_flight = false;
  auto initial = st.opts.connect_backoff_initial.count();
  dial.backoff_ms = std::min<int64_t>(std::max(initial, dial.backoff_ms * 2),
                                      st.opts.connect_backoff_max.count());
  dial.next_ms = steady_ms() + dial.backoff_ms;
  // The first failure in a row is news; the retries every couple of seconds
  // after it are not.
  if (++dial.failures == 1)
    log().warn("cluster: {} cannot join through {}: {}; retrying", st.opts.node_id, address, why);
  else
    log().debug("cluster: {} cannot join through {}: {}", st.opts.node_id, address, why);
}

void dial_succeeded(agent_state& st, const std::string& address, const std::string& node_id) {
  if (auto i = st.dials.find(address); i != st.dials.end()) {
    i->second.in_flight = false;
    i->second.backoff_ms = 0;
    i->second.failures = 0;
    i->second.node_id = node_id;
  }
}

// Joiner side, once the dial reached an agent: hello, check the acceptor's
// proof, send ours, wait for the welcome.
void start_handshake(agent_actor* self, const std::string& address, caf::actor peer) {
  auto& st = self->state;
  auto nonce = make_join_nonce();
  auto timeout = caf::duration{st.opts.handshake_timeout};
  self
    ->request(peer, timeout, join_hello_atom::value, st.opts.node_id, st.address, nonce)
    .then(
      [=](std::string& peer_id, std::string& peer_address, std::string& peer_nonce,
          std::string& peer_proof) {
        auto& st = self->state;
        auto expected = join_proof(st.opts.secret, join_role::acceptor, peer_nonce, nonce,
                                   peer_id, st.opts.node_id);
        if (!valid_node_id(peer_id) || !same_proof(expected, peer_proof)) {
          log().warn("cluster: {} refuses the node at {}: it does not prove the cluster secret",
                     st.opts.node_id, address);
          return dial_failed(self, address, "no proof of the cluster secret");
        }
        auto proof = join_proof(st.opts.secret, join_role::joiner, nonce, peer_nonce,
                                st.opts.node_id, peer_id);
        self->request(peer, timeout, join_proof_atom::value, proof)
          .then(
            [=](join_welcome_atom) {
              dial_succeeded(self->state, address, peer_id);
              admit(self, peer, peer_id, peer_address);
            },
            [=](caf::error& err) {
              log().warn("cluster: {} was refused by {} at {}: {}", self->state.opts.node_id,
                         peer_id, address, self->system().render(err));
              dial_failed(self, address, self->system().render(err));
            });
      },
      [=](caf::error& err) { dial_failed(self, address, self->system().render(err)); });
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

caf::result<std::string, std::string, std::string, std::string>
on_hello(agent_actor* self, std::string& peer_id, std::string& peer_address,
         std::string& peer_nonce) {
  auto& st = self->state;
  auto sender = self->current_sender();
  if (st.opts.secret.empty())
    return make_error(errc::unauthorized, "this node admits nobody: it has no cluster secret");
  if (!sender || !valid_node_id(peer_id) || peer_id == st.opts.node_id
      || peer_nonce.size() != 64 || peer_address.size() > 300)
    return make_error(errc::invalid_field, "malformed join request");
  if (st.pending.size() >= pending_joins_max) {
    auto oldest = std::min_element(st.pending.begin(), st.pending.end(), [](auto& a, auto& b) {
      return a.second.at_ms < b.second.at_ms;
    });
    st.pending.erase(oldest);
  }
  auto nonce = make_join_nonce();
  st.pending[sender->address()] = {peer_id, peer_address, peer_nonce, nonce, steady_ms()};
  auto proof = join_proof(st.opts.secret, join_role::acceptor, nonce, peer_nonce,
                          st.opts.node_id, peer_id);
  return {st.opts.node_id, st.address, nonce, proof};
}

caf::result<join_welcome_atom> on_proof(agent_actor* self, const std::string& proof) {
  auto& st = self->state;
  auto sender = self->current_sender();
  if (!sender)
    return make_error(errc::unauthorized, "join refused");
  auto i = st.pending.find(sender->address());
  if (i == st.pending.end())
    return make_error(errc::unauthorized, "join refused: no hello from this agent");
  auto join = std::move(i->second);
  st.pending.erase(i);
  auto expected = join_proof(st.opts.secret, join_role::joiner, join.joiner_nonce,
                             join.own_nonce, join.node_id, st.opts.node_id);
  if (!same_proof(expected, proof)) {
    log().warn("cluster: {} refuses {} (claims {}): wrong cluster secret", st.opts.node_id,
               join.node_id, join.address);
    return make_error(errc::unauthorized, "join refused: wrong cluster secret");
  }
  admit(self, caf::actor_cast<caf::actor>(sender), join.node_id, join.address);
  return join_welcome_atom::value;
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

void on_tick(agent_actor* self) {
  auto& st = self->state;
  auto now = steady_ms();
  if (now - st.last_tick_ms > st.opts.down_after.count())
    rejoin(self, "this process was frozen for " + std::to_string(now - st.last_tick_ms) + " ms");
  st.last_tick_ms = now;
  st.members->tick(now);
  if (st.members->rejoin_needed())
    rejoin(self, "a peer called this node down");
  dial_due(self, now);
  auto hb = st.members->make_heartbeat();
  for (auto& [id, peer] : st.peers)
    self->send(peer, heartbeat_atom::value, hb);
  publish_view(self);
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

void publish_view(agent_actor* self) {
  auto& st = self->state;
  if (st.members->version() == st.published_version)
    return;
  st.published_version = st.members->version();
  cluster_view view;
  view.members = st.members->members();
  view.version = st.published_version;
  auto placement = place_shards(st.opts.shards, st.members->owners());
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
    if (auto p = st.peers.find(node_id); p != st.peers.end() && p->second.address() == dm.source)
      st.peers.erase(p);
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
    [self](leave_atom) {
      // Told at once rather than at the next tick: the node stops soon.
      auto& st = self->state;
      st.members->leave();
      auto hb = st.members->make_heartbeat();
      for (auto& [id, peer] : st.peers)
        self->send(peer, heartbeat_atom::value, hb);
      publish_view(self);
    },
  };
}

} // namespace

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

void leave_cluster(const caf::actor& agent) {
  caf::anon_send(agent, leave_atom::value);
}

} // namespace wager
