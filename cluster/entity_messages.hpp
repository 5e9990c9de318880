#pragma once

// The entities' commands and replies (actors/), registered so they can cross
// nodes: a request routed to the node that owns its shard, the answer sent
// back, a watcher or subscriber on another node. Every node must register
// the same types before its actor system starts (configure_cluster does).
//
// Each header lists its own messages (runtime/message_types.hpp);
// entity_message_lists gathers those lists, and add_entity_command_types
// registers every one of them.

#include "wager/actors/bet.hpp"
#include "wager/actors/ids.hpp"
#include "wager/actors/market.hpp"
#include "wager/actors/market_state.hpp"
#include "wager/actors/money.hpp"
#include "wager/actors/session.hpp"
#include "wager/actors/user.hpp"
#include "wager/actors/wallet.hpp"
#include "wager/persistence/journal.hpp"
#include "wager/runtime/entity.hpp"

#include <caf/fwd.hpp>

#include <tuple>

namespace wager {

inline constexpr std::tuple entity_message_lists{
  entity_id_messages, id_messages,   money_messages,        journal_messages,
  bet_messages,       wallet_messages, market_state_messages, market_messages,
  user_messages,      session_messages,
};

void add_entity_command_types(caf::actor_system_config& cfg);

} // namespace wager
