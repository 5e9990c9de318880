#include "wager/cluster/entity_messages.hpp"

#include <caf/actor_system_config.hpp>

namespace wager {

void add_entity_command_types(caf::actor_system_config& cfg) {
  std::apply([&cfg](const auto&... lists) { (add_message_types(cfg, lists), ...); },
             entity_message_lists);
}

} // namespace wager
