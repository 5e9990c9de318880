#pragma once

// The cluster agent actor behind cluster_node (cluster_node.hpp): the join
// handshake on both sides, heartbeats, the dial loop, and the view it
// publishes for the node. Its messages are in protocol.hpp.

#include "wager/cluster/cluster_node.hpp"

namespace wager {

// The agent waits for begin_cluster_agent (it needs the address it is
// published at) before it speaks to anyone.
caf::actor spawn_cluster_agent(caf::actor_system& sys, metrics& m, cluster_options options,
                               std::shared_ptr<detail::cluster_shared> shared);

void begin_cluster_agent(const caf::actor& agent, const std::string& advertised_address);

// This node leaves (membership::leave), and its peers are told at once.
// Blocks the calling thread (not an actor) until the agent has published
// the view without this node, at most `timeout`; false on timeout.
bool leave_cluster(const caf::actor& agent, std::chrono::milliseconds timeout);

} // namespace wager
