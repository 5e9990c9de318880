// Membership on a simulated network and clock: nodes join through a seed,
// agree on the owners, mark a killed or paused node down within the bound,
// never let a node called down own shards until it rejoins, and hand a
// draining node's shards away. Deterministic: no threads, no real time.

#include "wager/cluster/membership.hpp"
#include "wager/cluster/placement.hpp"
#include "simulated_cluster.hpp"

#include <doctest/doctest.h>

#include <map>
#include <memory>
#include <set>

using namespace wager;
using namespace wager::test;

TEST_CASE("three nodes join through one seed and agree on the owners and the placement") {
  sim s;
  s.add("a");
  s.add("b", "a");
  s.add("c", "a");
  auto agreed = [&] {
    return s.owners("a") == ids({"a", "b", "c"}) && s.owners("b") == s.owners("a")
           && s.owners("c") == s.owners("a");
  };
  CHECK(s.time_until(agreed) >= 0);
  CHECK(place_shards(shards, s.owners("b")) == place_shards(shards, s.owners("c")));
  for (auto& m : s.nodes["c"]->members())
    CHECK(m.status == member_status::up);
}

TEST_CASE("a killed node is marked down by every survivor within the bound and only its shards "
          "move") {
  sim s;
  s.add("a");
  s.add("b", "a");
  s.add("c", "a");
  s.run_for(2'000);
  REQUIRE(s.owners("a") == ids({"a", "b", "c"}));
  auto before = place_shards(shards, s.owners("a"));
  s.silent.insert("c");
  auto took = s.time_until(
    [&] { return s.owners("a") == ids({"a", "b"}) && s.owners("b") == ids({"a", "b"}); });
  REQUIRE(took >= 0);
  // Down after down_after_ms of silence, noticed at the next tick.
  CHECK(took > s.options.down_after_ms - s.options.heartbeat_interval_ms);
  CHECK(took <= s.options.down_after_ms + 2 * s.options.heartbeat_interval_ms);
  for (auto& m : shard_moves(before, place_shards(shards, s.owners("a"))))
    CHECK(m.from == "c");
}

TEST_CASE("a paused node is called down, owns nothing when it wakes, and rejoins with a new "
          "incarnation") {
  sim s;
  s.add("a");
  s.add("b", "a");
  s.add("c", "a");
  s.run_for(2'000);
  auto full = place_shards(shards, s.owners("a"));
  s.silent.insert("c"); // SIGSTOP: c neither speaks nor ticks
  REQUIRE(s.time_until([&] { return s.owners("b") == ids({"a", "b"}); }) >= 0);
  s.run_for(3'000);
  s.silent.erase("c"); // SIGCONT: c still believes it is up
  CHECK(s.nodes["c"]->self().status == member_status::up);
  // c's own heartbeats do not bring it back: down is final for its
  // incarnation, and the survivors' views tell c so.
  s.step();
  CHECK(s.owners("a") == ids({"a", "b"}));
  CHECK(s.nodes["c"]->rejoin_needed());
  auto c_owners = s.owners("c");
  CHECK(std::find(c_owners.begin(), c_owners.end(), "c") == c_owners.end());
  // It drops its entities (the node's business) and rejoins.
  s.nodes["c"]->rejoin(2);
  REQUIRE(s.time_until([&] {
    return s.owners("a") == ids({"a", "b", "c"}) && s.owners("b") == s.owners("a")
           && s.owners("c") == s.owners("a");
  }) >= 0);
  CHECK(place_shards(shards, s.owners("c")) == full);
}

TEST_CASE("a draining node stops owning at once and a restarted node with a higher incarnation "
          "replaces its old self") {
  sim s;
  s.add("a");
  s.add("b", "a");
  s.add("c", "a");
  s.run_for(2'000);
  auto before = place_shards(shards, s.owners("a"));
  s.nodes["b"]->leave();
  REQUIRE(s.time_until([&] { return s.owners("a") == ids({"a", "c"}); }) >= 0);
  // One heartbeat round: well before any silence timeout.
  CHECK(s.owners("c") == ids({"a", "c"}));
  CHECK(s.owners("b") == ids({"a", "c"}));
  for (auto& m : shard_moves(before, place_shards(shards, s.owners("a"))))
    CHECK(m.from == "b");
  // b exits; a new process with the same id starts with a later incarnation.
  s.silent.insert("b");
  s.run_for(3'000);
  s.silent.erase("b");
  s.nodes.erase("b");
  s.add("b", "a", 7);
  REQUIRE(s.time_until([&] {
    return s.owners("a") == ids({"a", "b", "c"}) && s.owners("c") == s.owners("a");
  }) >= 0);
  for (auto& m : s.nodes["a"]->members())
    if (m.node_id == "b")
      CHECK(m.incarnation == 7);
}

TEST_CASE("a draining node that has to rejoin stays leaving and takes no shard back") {
  sim s;
  s.add("a");
  s.add("b", "a");
  s.add("c", "a");
  s.run_for(2'000);
  s.nodes["b"]->leave();
  REQUIRE(s.time_until([&] { return s.owners("a") == ids({"a", "c"}); }) >= 0);
  // Frozen mid-drain long enough to be called down; it wakes and rejoins.
  s.silent.insert("b");
  s.run_for(3'000);
  s.silent.erase("b");
  s.step();
  REQUIRE(s.nodes["b"]->rejoin_needed());
  s.nodes["b"]->rejoin(2);
  CHECK(s.nodes["b"]->self().status == member_status::leaving);
  s.run_for(2'000);
  for (auto* id : {"a", "b", "c"}) {
    CAPTURE(id);
    CHECK(s.owners(id) == ids({"a", "c"}));
  }
  for (auto& m : s.nodes["a"]->members())
    if (m.node_id == "b") {
      CHECK(m.status == member_status::leaving);
      CHECK(m.incarnation == 2);
    }
}

TEST_CASE("news of an older incarnation and third-party claims other than down change nothing") {
  membership m{{"a", "a:1", member_status::up, 1}};
  heartbeat from_b{{"b", "b:1", member_status::up, 5}, {}};
  REQUIRE(m.on_heartbeat(from_b, 0));
  auto v = m.version();
  // c claims b is leaving: only b's own word sets that.
  heartbeat from_c{{"c", "c:1", member_status::up, 1}, {{"b", "b:1", member_status::leaving, 5}}};
  m.on_heartbeat(from_c, 10);
  CHECK(m.owners() == ids({"a", "b", "c"}));
  // An older life of b says it is down: ignored.
  heartbeat old{{"c", "c:1", member_status::up, 1}, {{"b", "b:1", member_status::down, 4}}};
  CHECK_FALSE(m.on_heartbeat(old, 20));
  CHECK(m.owners() == ids({"a", "b", "c"}));
  CHECK(m.version() > v);
  CHECK(to_string(member_status::leaving) == "leaving");
}

TEST_CASE("two nodes that called each other down (a healed partition) both rejoin and agree "
          "again") {
  membership a{{"a", "a:1", member_status::up, 1}};
  membership b{{"b", "b:1", member_status::up, 1}};
  a.on_heartbeat(b.make_heartbeat(), 0);
  b.on_heartbeat(a.make_heartbeat(), 0);
  a.tick(10'000);
  b.tick(10'000);
  REQUIRE(a.owners() == ids({"a"}));
  REQUIRE(b.owners() == ids({"b"}));
  // The partition heals: each hears the other call it down. Neither may
  // ignore that (the other being down in its own view), or both would own
  // every shard for ever.
  auto from_a = a.make_heartbeat();
  a.on_heartbeat(b.make_heartbeat(), 10'001);
  b.on_heartbeat(from_a, 10'001);
  REQUIRE(a.rejoin_needed());
  REQUIRE(b.rejoin_needed());
  CHECK(a.owners().empty());
  CHECK(b.owners().empty());
  a.rejoin(2);
  b.rejoin(2);
  a.on_heartbeat(b.make_heartbeat(), 10'002);
  b.on_heartbeat(a.make_heartbeat(), 10'002);
  a.joined();
  b.joined();
  a.on_heartbeat(b.make_heartbeat(), 10'003);
  b.on_heartbeat(a.make_heartbeat(), 10'003);
  CHECK(a.owners() == ids({"a", "b"}));
  CHECK(b.owners() == ids({"a", "b"}));
}

TEST_CASE("a rejoining node forgets its view of the others and learns it again") {
  membership c{{"c", "c:1", member_status::up, 1}};
  c.on_heartbeat({{"a", "a:1", member_status::up, 1}, {}}, 0);
  c.tick(10'000); // c's own silence made it call a down
  REQUIRE(c.members().front().status == member_status::down);
  c.rejoin(2);
  CHECK(c.members().size() == 1);
  CHECK(c.make_heartbeat().view.empty()); // it calls nobody down any more
  c.on_heartbeat({{"a", "a:1", member_status::up, 1}, {}}, 10'001);
  c.joined();
  CHECK(c.owners() == ids({"a", "c"}));
}
