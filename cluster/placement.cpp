#include "wager/cluster/placement.hpp"

#include "wager/runtime/assert.hpp"

namespace wager {

namespace {

uint64_t fnv1a(std::string_view text) noexcept {
  uint64_t h = 1469598103934665603ull;
  for (unsigned char c : text) {
    h ^= c;
    h *= 1099511628211ull;
  }
  return h;
}

// splitmix64's finaliser: every input bit moves every output bit, so
// neighbouring shards get unrelated weights.
uint64_t mix(uint64_t x) noexcept {
  x += 0x9e3779b97f4a7c15ull;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
  return x ^ (x >> 31);
}

} // namespace

uint64_t placement_weight(std::string_view node_id, uint32_t shard) noexcept {
  return mix(fnv1a(node_id) ^ mix(shard));
}

std::string owner_of(uint32_t shard, const std::vector<std::string>& members) {
  const std::string* best = nullptr;
  uint64_t best_weight = 0;
  for (auto& m : members) {
    auto w = placement_weight(m, shard);
    // Ties (astronomically rare) go to the smaller id, so every node agrees.
    if (best == nullptr || w > best_weight || (w == best_weight && m < *best)) {
      best = &m;
      best_weight = w;
    }
  }
  return best == nullptr ? std::string{} : *best;
}

std::vector<std::string> place_shards(uint32_t shards, const std::vector<std::string>& members) {
  std::vector<std::string> out;
  out.reserve(shards);
  for (uint32_t s = 0; s < shards; ++s)
    out.push_back(owner_of(s, members));
  return out;
}

std::vector<shard_move> shard_moves(const std::vector<std::string>& before,
                                    const std::vector<std::string>& after) {
  WAGER_ASSERT(before.size() == after.size(), "placements of one shard count");
  std::vector<shard_move> out;
  for (uint32_t s = 0; s < before.size(); ++s)
    if (before[s] != after[s])
      out.push_back({s, before[s], after[s]});
  return out;
}

} // namespace wager
