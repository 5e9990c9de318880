#pragma once

// Work left open by a crash resumes at start, not at the next touch: a
// settlement whose payouts were not all acknowledged, a bet whose stake is
// held while its market's decision is unknown. Each entity marks its stream
// while it has such work (journaled.hpp, append_request::open_work); at
// start the resumer pages through the marked markets, then the marked
// wallets, and activates each through the directory. An activated entity
// finishes its own work (the market's outbox pays again, the wallet asks its
// market again), so the resumer only has to wake them, a bounded number at
// a time so a node with many open sagas is not flooded at start.
//
// In a cluster the same runs for the shards a node takes over (failover:
// the shards of a node that was lost, platform::resume_shards), filtered to
// those shards and bounded per second as well, so that recovering a lost
// node's open work first does not stall the survivors' own traffic.

#include "wager/runtime/directory.hpp"

#include <caf/actor.hpp>
#include <caf/actor_system.hpp>

#include <chrono>
#include <cstdint>
#include <memory>
#include <vector>

namespace wager {

class journal;
class metrics;

struct resume_options {
  // Entities being activated at once.
  uint32_t in_flight_max = 64;
  // Stream names read per journal page.
  uint32_t page_max = 512;
  // How long one activation may take before it counts as failed (the entity
  // is then left to its next caller).
  std::chrono::milliseconds activation_timeout{15000};
  // Only entities of these shards (shard_of over dir.shards()); empty:
  // every shard.
  std::vector<uint32_t> shards;
  // Activations started per second at most; 0: bounded by in_flight_max
  // alone.
  uint32_t per_second_max = 0;
};

// Spawns the resumer; it quits when every marked entity was activated once.
// `j` must outlive it (the platform stops the actor system first). Counts
// go to wager_resumed_entities_total{kind,outcome}.
caf::actor spawn_resumer(caf::actor_system& sys, journal* j, directory dir, metrics& m,
                         resume_options options = {});

} // namespace wager
