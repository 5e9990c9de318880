#pragma once

// The cluster agent's state and the functions its two files share:
// agent.cpp (heartbeats, ticks, dialing, the published view) and
// agent_join.cpp (the join handshake, both sides). Internal to cluster/.

#include "wager/cluster/cluster_node.hpp"
#include "wager/cluster/migration.hpp"
#include "wager/cluster/protocol.hpp"

#include <caf/actor_addr.hpp>
#include <caf/result.hpp>
#include <caf/stateful_actor.hpp>

#include <prometheus/family.h>
#include <prometheus/gauge.h>

#include <map>
#include <optional>
#include <set>

namespace wager::detail {

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
  std::optional<migration_tracker> moves; // set with members
  std::vector<bool> owned;                // shards the last routes gave here
  std::map<caf::actor_addr, std::string> trusted; // admitted agent -> node id
  std::map<std::string, caf::actor> peers;        // node id -> admitted agent
  std::map<std::string, caf::actor> peer_dirs;    // node id -> its directory
  std::set<std::string> dir_queries;              // directories asked for
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

int64_t steady_ms();

// A peer proved the secret: its agent is trusted from now on.
void admit(agent_actor* self, const caf::actor& agent, const std::string& node_id,
           const std::string& address);

// The outcome of one dial; a failure schedules the next with back-off.
void dial_failed(agent_actor* self, const std::string& address, const std::string& why);
void dial_succeeded(agent_state& st, const std::string& address, const std::string& node_id);

// Joiner side, once a dial reached an agent at `address`.
void start_handshake(agent_actor* self, const std::string& address, caf::actor peer);

// Acceptor side: a hello, then the joiner's proof.
caf::result<std::string, std::string, std::string, std::string>
on_hello(agent_actor* self, std::string& peer_id, std::string& peer_address,
         std::string& peer_nonce);
caf::result<join_welcome_atom> on_proof(agent_actor* self, const std::string& proof);

} // namespace wager::detail
