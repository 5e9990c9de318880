#pragma once

// Cluster membership as every node sees it: a pure state machine, fed
// heartbeats and the clock by the transport (so a test drives it with a
// simulated network and clock).
//
// Each node heartbeats every peer with what it says of itself (status and
// incarnation) and its view of the others. A member not heard from directly
// for `down_after_ms` is marked down. Down is final for that incarnation and
// spreads: a node that sees a peer's view call a member down at the same
// incarnation marks it down too, so the survivors agree on the owners even
// if one of them still hears the lost node. A node that finds itself called
// down (it was paused, or cut off) must drop its live entities and rejoin
// with a higher incarnation (rejoin_needed()); until then its heartbeats
// are ignored. Shards belong to the members that are up (placement.hpp).
//
//   joining --(joined)--> up --(leave: drain)--> leaving
//      \                   |                       |
//       `------ silence, or seen down by a peer ---'--> down

#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <vector>

namespace wager {

enum class member_status : uint8_t { joining, up, leaving, down };

std::string_view to_string(member_status s) noexcept;

// What a node says of a member (itself, or one it knows).
struct member_report {
  std::string node_id;
  std::string address; // cluster address, host:port
  member_status status = member_status::joining;
  uint64_t incarnation = 0; // larger after every restart or rejoin

  friend bool operator==(const member_report&, const member_report&) = default;
};

struct heartbeat {
  member_report self;
  std::vector<member_report> view; // the sender's view of the others
};

struct membership_options {
  // A member silent this long is down: the bound of 2 s on a local
  // network, with heartbeats every heartbeat_interval_ms.
  int64_t down_after_ms = 2000;
  int64_t heartbeat_interval_ms = 200;
};

class membership {
public:
  membership(member_report self, membership_options options = {});

  // A heartbeat from its sender, at now_ms. True when the view changed.
  bool on_heartbeat(const heartbeat& hb, int64_t now_ms);

  // Marks members silent past down_after_ms down. True when the view changed.
  bool tick(int64_t now_ms);

  // This node: joining -> up (the transport calls it once it has heard its
  // seeds, or at once without seeds), or up -> leaving (drain).
  void joined();
  void leave();

  // A peer called this node down: it has to drop its entities and call
  // rejoin(), which takes a new incarnation, forgets its view of the others
  // (stale after the silence that got it called down) and starts joining
  // again. A node that knows it was frozen past down_after_ms may rejoin
  // before anyone tells it. A leaving node stays leaving under its new
  // incarnation: a drain is never undone, so it takes no shards back.
  bool rejoin_needed() const noexcept { return rejoin_needed_; }
  void rejoin(uint64_t new_incarnation);

  heartbeat make_heartbeat() const;
  const member_report& self() const noexcept { return self_; }
  // Every member known, this node included, by node id.
  std::vector<member_report> members() const;
  // The node ids that own shards: the up members.
  std::vector<std::string> owners() const;
  // Grows by one at every change of members() or owners().
  uint64_t version() const noexcept { return version_; }

private:
  struct peer {
    member_report report;
    int64_t last_heard_ms = 0;
  };
  bool learn(const member_report& r, bool direct, int64_t now_ms);

  member_report self_;
  membership_options options_;
  std::map<std::string, peer> peers_;
  bool rejoin_needed_ = false;
  uint64_t version_ = 1;
};

} // namespace wager
