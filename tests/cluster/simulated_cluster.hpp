#pragma once

// Membership on a simulated network and clock, for the deterministic
// cluster tests: no threads, no real time.

#include "wager/cluster/membership.hpp"

#include <cstdint>
#include <initializer_list>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <vector>

namespace wager::test {

inline constexpr uint32_t shards = 256;

// Nodes exchanging heartbeats every interval; a node can be killed
// (silent), paused (silent and frozen) and resumed.
struct sim {
  membership_options options;
  int64_t now = 0;
  std::map<std::string, std::unique_ptr<membership>> nodes;
  std::set<std::string> silent; // killed or paused: sends, hears and ticks nothing
  // Who talks to whom: a new node knows only its seed until views spread.
  std::map<std::string, std::set<std::string>> known;

  membership& add(const std::string& id, const std::string& seed = {}, uint64_t inc = 1) {
    nodes[id] = std::make_unique<membership>(
      member_report{id, id + ":4000", member_status::joining, inc}, options);
    known[id] = seed.empty() ? std::set<std::string>{} : std::set<std::string>{seed};
    if (seed.empty())
      nodes[id]->joined(); // the first node has nobody to wait for
    return *nodes[id];
  }

  // One heartbeat round, then the clock moves on by one interval.
  void step() {
    for (auto& [id, n] : nodes) {
      if (silent.count(id))
        continue;
      auto hb = n->make_heartbeat();
      for (auto& to : known[id]) {
        if (silent.count(to) || !nodes.count(to))
          continue;
        nodes[to]->on_heartbeat(hb, now);
        known[to].insert(id); // the transport now has a connection both ways
        if (nodes[to]->self().status == member_status::joining && !nodes[to]->rejoin_needed())
          nodes[to]->joined();
      }
      for (auto& m : n->members())
        if (m.node_id != id && m.status != member_status::down)
          known[id].insert(m.node_id);
    }
    for (auto& [id, n] : nodes)
      if (!silent.count(id))
        n->tick(now);
    now += options.heartbeat_interval_ms;
  }

  void run_for(int64_t ms) {
    for (auto until = now + ms; now < until;)
      step();
  }

  // Steps until `done` holds; the time it took, or -1 past the limit.
  template <class F>
  int64_t time_until(F done, int64_t limit_ms = 30'000) {
    auto start = now;
    while (!done()) {
      if (now - start > limit_ms)
        return -1;
      step();
    }
    return now - start;
  }

  std::vector<std::string> owners(const std::string& id) { return nodes[id]->owners(); }
};

inline std::vector<std::string> ids(std::initializer_list<const char*> xs) {
  return {xs.begin(), xs.end()};
}


} // namespace wager::test
