// Rendezvous placement: pinned weights, every node agreeing, balance, and
// minimal movement when the member list changes.

#include "wager/cluster/placement.hpp"

#include <doctest/doctest.h>

#include <algorithm>
#include <map>

using namespace wager;

// The values were computed apart from this code (a Python transcription of
// the formula), so the test pins the formula, not whatever the code does.
TEST_CASE("placement weights are pinned: two releases must place every shard alike") {
  CHECK(placement_weight("node-a", 0) == 0x900bbca7e9dc3d49ull);
  CHECK(placement_weight("node-a", 1) == 0x88baced4ba58a015ull);
  CHECK(placement_weight("node-b", 0) == 0x5d3f99c9054f0ccaull);
  CHECK(owner_of(0, {}).empty());
}

TEST_CASE("every node computes the same owners whatever order it lists the members in") {
  std::vector<std::string> a{"n1", "n2", "n3"}, b{"n3", "n1", "n2"};
  CHECK(place_shards(256, a) == place_shards(256, b));
}

TEST_CASE("shards spread evenly over the members") {
  std::vector<std::string> members{"n1", "n2", "n3"};
  std::map<std::string, int> count;
  for (auto& owner : place_shards(256, members))
    ++count[owner];
  REQUIRE(count.size() == 3);
  for (auto& [node, n] : count) {
    CAPTURE(node);
    CHECK(n >= 60); // 256 / 3 = 85 on average
    CHECK(n <= 110);
  }
}

TEST_CASE("a member joining takes shards only for itself and one leaving gives away only its own") {
  std::vector<std::string> three{"n1", "n2", "n3"}, four{"n1", "n2", "n3", "n4"};
  auto before = place_shards(256, three);
  auto after = place_shards(256, four);
  auto joined = shard_moves(before, after);
  CHECK_FALSE(joined.empty());
  for (auto& m : joined)
    CHECK(m.to == "n4");
  auto left = shard_moves(after, before);
  CHECK(left.size() == joined.size());
  for (auto& m : left)
    CHECK(m.from == "n4");
  std::vector<std::string> two{"n1", "n3"};
  for (auto& m : shard_moves(before, place_shards(256, two))) {
    CHECK(m.from == "n2");
    CHECK(m.to != "n2");
  }
}
