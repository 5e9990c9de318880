#include "wager/cluster/migration.hpp"

#include "wager/cluster/placement.hpp"

#include <set>

namespace wager {

migration_tracker::migration_tracker(std::string self, uint32_t shards, int64_t guess_window_ms)
  : self_(std::move(self)), guess_window_ms_(guess_window_ms), last_(shards), arrivals_(shards) {}

void migration_tracker::update(const std::vector<std::string>& placement,
                               const std::vector<member_report>& members, int64_t now_ms) {
  if (placement.size() != last_.size())
    return;
  std::set<std::string> alive;
  std::vector<std::string> others; // the owners but this node
  for (auto& m : members) {
    if (m.node_id == self_ || m.status == member_status::down)
      continue;
    alive.insert(m.node_id);
    if (m.status == member_status::up)
      others.push_back(m.node_id);
  }
  auto is_alive = [&](const std::string& id) { return !id.empty() && alive.count(id) > 0; };
  std::vector<std::string> without_self; // computed only if a shard needs it
  for (uint32_t s = 0; s < placement.size(); ++s) {
    auto& now = placement[s];
    auto& prev = last_[s];
    auto& a = arrivals_[s];
    if (now != self_) {
      a = {};
      continue;
    }
    bool arrived = prev != self_;
    if (a.guessed && now_ms - a.at_ms > guess_window_ms_)
      a.guessed = false; // the guess stands
    if (!arrived && !a.guessed) {
      if (!a.from.empty() && !is_alive(a.from))
        a.from.clear(); // went down before it released: nothing to wait for
      continue;
    }
    std::string from;
    bool guessed = false;
    if (arrived && !prev.empty()) {
      from = prev;
    } else {
      if (without_self.empty())
        without_self = place_shards(static_cast<uint32_t>(placement.size()), others);
      from = without_self[s];
      guessed = true;
    }
    if (!is_alive(from))
      from.clear();
    if (!arrived && a.from == from)
      continue; // the guess holds
    auto at = arrived ? now_ms : a.at_ms;
    a = shard_arrival{from, arrived || !from.empty() ? ++moves_ : a.move, guessed, at};
  }
  last_ = placement;
}

} // namespace wager
