#pragma once

// Shard placement by rendezvous (highest random weight) hashing: the owner of
// a shard is the member whose weight for it is highest. Every node computes
// the same owners from the same member list without asking anyone, and when
// a member joins or leaves only the shards it gains or loses move: about
// shards / members of them, none between the others.
//
// Weights are FNV-1a over the node id, mixed with the shard by splitmix64:
// fixed forever (pinned by tests), because two releases that disagreed would
// route one entity to two nodes.

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace wager {

uint64_t placement_weight(std::string_view node_id, uint32_t shard) noexcept;

// The owner of `shard` among `members` (node ids; order does not matter).
// Empty when there are no members.
std::string owner_of(uint32_t shard, const std::vector<std::string>& members);

// owners[s] is the owner of shard s.
std::vector<std::string> place_shards(uint32_t shards, const std::vector<std::string>& members);

struct shard_move {
  uint32_t shard = 0;
  std::string from; // empty: nobody owned it
  std::string to;   // empty: nobody owns it now

  friend bool operator==(const shard_move&, const shard_move&) = default;
};

// The shards whose owner differs between two placements of equal size.
std::vector<shard_move> shard_moves(const std::vector<std::string>& before,
                                    const std::vector<std::string>& after);

} // namespace wager
