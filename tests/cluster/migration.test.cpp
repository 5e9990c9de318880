// Where moving shards come from (migration_tracker), on a simulated network
// and clock: a join takes shards from the nodes that held them, a drain hands
// the leaver's shards away, a killed node's shards are served at once, a
// rejoining node takes its shards back. Each node serves a shard only once
// the node its tracker names has stopped serving it, as the directory's
// hand-off does; the model checks that no shard is ever served by two nodes
// that run. Deterministic: no threads, no real time.

#include "wager/cluster/migration.hpp"
#include "wager/cluster/placement.hpp"
#include "simulated_cluster.hpp"

#include <doctest/doctest.h>

#include <map>
#include <set>
#include <string>

using namespace wager;
using namespace wager::test;

namespace {

// The sim's nodes, each with its tracker and the hand-off modelled: a shard
// that arrives with `from` is served once `from` does not serve it.
struct migrating_sim : sim {
  struct node_moves {
    migration_tracker tracker;
    std::vector<std::string> placement;
    std::map<uint32_t, uint64_t> released; // shard -> move released
  };
  std::map<std::string, node_moves> moves;
  int conflicts = 0; // steps x shards served by two running nodes

  membership& add(const std::string& id, const std::string& seed = {}, uint64_t inc = 1) {
    auto& m = sim::add(id, seed, inc);
    moves.erase(id); // a restart forgets everything
    moves.emplace(id, node_moves{migration_tracker{id, shards}, {}, {}});
    return m;
  }

  bool runs(const std::string& id) const { return nodes.count(id) && !silent.count(id); }

  bool serves(const std::string& id, uint32_t s) const {
    auto& n = moves.at(id);
    if (n.placement.empty() || n.placement[s] != id)
      return false;
    auto& a = n.tracker.arrival(s);
    if (a.from.empty())
      return true;
    auto r = n.released.find(s);
    return r != n.released.end() && r->second == a.move;
  }

  // After each heartbeat round: every running node computes its placement,
  // then asks for the releases it waits for.
  void step_moves() {
    step();
    for (auto& [id, n] : moves) {
      if (!runs(id))
        continue;
      n.placement = place_shards(shards, nodes[id]->owners());
      n.tracker.update(n.placement, nodes[id]->members(), now);
    }
    for (auto& [id, n] : moves) {
      if (!runs(id))
        continue;
      for (uint32_t s = 0; s < shards; ++s) {
        auto& a = n.tracker.arrival(s);
        // The old owner lets go only to the node its own placement names.
        if (!a.from.empty() && runs(a.from) && !serves(a.from, s)
            && moves.at(a.from).placement[s] == id)
          n.released[s] = a.move;
      }
    }
    for (uint32_t s = 0; s < shards; ++s) {
      int serving = 0;
      for (auto& [id, n] : moves)
        serving += runs(id) && serves(id, s) ? 1 : 0;
      conflicts += serving > 1 ? 1 : 0;
      if (serving > 1 && conflicts <= 3)
        report_conflict(s);
    }
  }

  // The first conflicts, for the failure report: what each node thought.
  void report_conflict(uint32_t s) {
    for (auto& [id, n] : moves) {
      if (!runs(id))
        continue;
      auto& a = n.tracker.arrival(s);
      std::string members;
      for (auto& m : nodes[id]->members())
        members += m.node_id + "=" + std::string{to_string(m.status)} + " ";
      MESSAGE("t=" << now << " shard " << s << " at " << id << ": owner " << n.placement[s]
                   << ", from '" << a.from << "' move " << a.move << (a.guessed ? " (guessed)" : "")
                   << (serves(id, s) ? ", serving" : "") << "; members " << members);
    }
  }

  template <class F>
  bool run_until(F done, int64_t limit_ms = 30'000) {
    for (auto start = now; now - start <= limit_ms; step_moves())
      if (done())
        return true;
    return false;
  }

  // Every shard is served by exactly one running node.
  bool settled() const {
    for (uint32_t s = 0; s < shards; ++s) {
      int serving = 0;
      for (auto& [id, n] : moves)
        serving += runs(id) && serves(id, s) ? 1 : 0;
      if (serving != 1)
        return false;
    }
    return true;
  }

  uint32_t served_by(const std::string& id) const {
    uint32_t n = 0;
    if (!runs(id))
      return 0;
    for (uint32_t s = 0; s < shards; ++s)
      n += serves(id, s) ? 1 : 0;
    return n;
  }
};

} // namespace

TEST_CASE("a node that joins takes its shards from the nodes that served them, one copy at a "
          "time") {
  migrating_sim s;
  s.add("a");
  s.add("b", "a");
  REQUIRE(s.run_until([&] { return s.settled() && s.served_by("b") > 0; }));
  auto before = s.moves.at("a").placement;
  s.add("c", "a");
  REQUIRE(s.run_until([&] { return s.settled() && s.served_by("c") > 0; }));
  auto after = s.moves.at("c").placement;
  for (auto& m : shard_moves(before, after)) {
    CHECK(m.to == "c"); // only the newcomer gains
    CHECK(s.moves.at("c").tracker.arrival(m.shard).from == m.from);
  }
  CHECK(s.conflicts == 0);
}

TEST_CASE("a draining node hands each of its shards to its new owner") {
  migrating_sim s;
  s.add("a");
  s.add("b", "a");
  s.add("c", "a");
  REQUIRE(s.run_until([&] { return s.settled() && s.served_by("c") > 0; }));
  s.run_until([] { return false; }, 2'000); // views have converged
  auto before = s.moves.at("a").placement;
  s.nodes["b"]->leave();
  s.step_moves();
  // Right after the leave, b's shards wait for b, which serves none of them.
  uint32_t waiting = 0;
  for (uint32_t sh = 0; sh < shards; ++sh)
    if (before[sh] == "b")
      for (auto id : {"a", "c"})
        if (s.moves.at(id).placement[sh] == id && s.moves.at(id).tracker.arrival(sh).from == "b")
          ++waiting;
  CHECK(waiting == static_cast<uint32_t>(std::count(before.begin(), before.end(), "b")));
  CHECK(waiting > 0);
  REQUIRE(s.run_until([&] { return s.settled() && s.served_by("b") == 0; }));
  CHECK(s.conflicts == 0);
}

TEST_CASE("a killed node's shards are served at once by the survivors, with nothing to wait "
          "for") {
  migrating_sim s;
  s.add("a");
  s.add("b", "a");
  s.add("c", "a");
  REQUIRE(s.run_until([&] { return s.settled() && s.served_by("c") > 0; }));
  s.run_until([] { return false; }, 6'000); // past the window in which guesses of old owners are revised
  auto before = s.moves.at("a").placement;
  s.silent.insert("c");
  REQUIRE(s.run_until([&] { return s.settled(); }));
  for (uint32_t sh = 0; sh < shards; ++sh)
    if (before[sh] == "c")
      for (auto id : {"a", "b"})
        if (s.moves.at(id).placement[sh] == id)
          CHECK(s.moves.at(id).tracker.arrival(sh).from.empty());
  CHECK(s.conflicts == 0);
}

TEST_CASE("a node restarted after a crash takes its shards back from the survivors") {
  migrating_sim s;
  s.add("a");
  s.add("b", "a");
  s.add("c", "a");
  REQUIRE(s.run_until([&] { return s.settled() && s.served_by("c") > 0; }));
  auto three = s.moves.at("a").placement;
  s.silent.insert("c");
  REQUIRE(s.run_until([&] { return s.settled() && s.served_by("c") == 0; }));
  s.silent.erase("c");
  s.add("c", "a", 2); // a new incarnation, nothing remembered
  REQUIRE(s.run_until([&] { return s.settled() && s.served_by("c") > 0; }));
  // The same placement as before the crash, each shard c took back handed
  // over by the survivor that served it meanwhile.
  REQUIRE(s.run_until([&] { return s.moves.at("c").placement == three && s.settled(); }));
  CHECK(s.conflicts == 0);
}

TEST_CASE("a shard keeps its move number while it stays, and a new move gets a new one") {
  migration_tracker t{"b", 4};
  std::vector<member_report> members{{"a", "a:1", member_status::up, 1},
                                     {"b", "b:1", member_status::up, 1}};
  t.update({"a", "a", "a", "a"}, members, 0);
  t.update({"b", "a", "b", "a"}, members, 100);
  auto first = t.arrival(0);
  CHECK(first.from == "a");
  CHECK_FALSE(first.guessed);
  CHECK(t.arrival(1).from.empty()); // not ours
  t.update({"b", "a", "b", "a"}, members, 200);
  CHECK(t.arrival(0) == first);

  // a goes down before it released: nothing to wait for, same move.
  members[0].status = member_status::down;
  t.update({"b", "b", "b", "b"}, members, 300);
  CHECK(t.arrival(0).from.empty());
  CHECK(t.arrival(1).from.empty()); // arrived from a node that is down
}
