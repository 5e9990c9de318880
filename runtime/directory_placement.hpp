#pragma once

// Installing a placement function in a directory already spawned, for a
// placement known only later (a cluster formed after the node started).

#include "wager/runtime/directory.hpp"

namespace wager {

// Replaces directory_options::placement in every partition of `dir`. Each
// partition takes it in its mailbox order and passivates the live entities
// it no longer owns; messages it routed before followed the previous
// placement.
void set_directory_placement(const directory& dir, placement_fn fn);

} // namespace wager
