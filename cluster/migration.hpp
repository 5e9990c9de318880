#pragma once

// Where the shards that move to this node come from: the pure half of the
// hand-off (runtime/directory.hpp, "Hand-off"). The agent feeds it every
// placement it computes; for each shard this node owns it says which live
// node must release the shard first, and names each such move with a number,
// so the directory asks for a release once per move.
//
// The old owner of a shard that arrives is the node that owned it in the
// previous placement. When this node had no previous placement for it (it
// just joined and did not know the owners yet), the old owner is guessed:
// rendezvous hashing gives a shard that arrives with a join to the node that
// would own it without this one. A guess is revised as the members change
// for guess_window_ms after the shard arrived (the time a new node takes to
// learn the cluster), each revision a new move; then it stands. The old
// owner releases a shard only to the node its own placement names
// (runtime/directory.cpp), so two nodes that both think they own a shard
// while views converge do not both get it. A node that is down releases
// nothing: its shards are served at once (failover) and the journal fences
// anything it wrote.

#include "wager/cluster/membership.hpp"

#include <cstdint>
#include <string>
#include <vector>

namespace wager {

struct shard_arrival {
  std::string from;  // the live node that must release the shard; empty: none
  // Grows with every arrival here, and with every revised guess that names
  // a live node: an entity live here from an earlier stay, or from before
  // the revision, is not to be trusted under a new move.
  uint64_t move = 0;
  bool guessed = false;
  int64_t at_ms = 0; // when it arrived

  friend bool operator==(const shard_arrival&, const shard_arrival&) = default;
};

class migration_tracker {
public:
  migration_tracker(std::string self, uint32_t shards, int64_t guess_window_ms = 5000);

  // The placement over membership::owners() changed (or not: unchanged
  // shards keep their arrival). `members` is the member list it came from.
  void update(const std::vector<std::string>& placement,
              const std::vector<member_report>& members, int64_t now_ms);

  // For a shard this node owns; an empty arrival for the others.
  const shard_arrival& arrival(uint32_t shard) const { return arrivals_.at(shard); }

private:
  std::string self_;
  int64_t guess_window_ms_;
  std::vector<std::string> last_;
  std::vector<shard_arrival> arrivals_;
  uint64_t moves_ = 0;
};

} // namespace wager
