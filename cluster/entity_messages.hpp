#pragma once

// The entities' commands and replies (actors/), registered so they can cross
// nodes: a request routed to the node that owns its shard, the answer sent
// back, a watcher or subscriber on another node. Every node must register
// the same types before its actor system starts (configure_cluster does).

#include <caf/fwd.hpp>

namespace wager {

void add_entity_command_types(caf::actor_system_config& cfg);

} // namespace wager
