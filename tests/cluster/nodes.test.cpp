// Three wager-node processes on 127.0.0.1 form a cluster through a seed,
// with real sockets and real signals: every node shows every member up, a
// killed or paused node is marked down within the detection bound, a paused
// node never comes back with its old incarnation, and a process without the
// cluster secret is never a member.

#include "node_cluster.hpp"

#include <csignal>

using namespace std::chrono_literals;
using wager::test::all_see;
using wager::test::cluster_test_node;

namespace {

// How long a lost node may take to be shown down here: far above the 2 s
// the defaults give on an idle machine (--cluster-down-after-ms 1600 plus at
// most one heartbeat), because the suite runs beside other tests under the
// sanitizers. The detection time itself is a benchmark figure; the tests
// print it.
constexpr auto detection_deadline = 10s;

struct three_nodes {
  wager::test::temp_dir dir;
  std::string data = (dir / "data").string(); // one journal, shared as on one host
  cluster_test_node a{data, "n-a", {}};
  std::optional<cluster_test_node> b, c;

  three_nodes() {
    REQUIRE(a.read_ready());
    b.emplace(data, "n-b", std::vector<std::string>{"--seeds", a.cluster});
    c.emplace(data, "n-c", std::vector<std::string>{"--seeds", a.cluster});
    REQUIRE(b->read_ready());
    REQUIRE(c->read_ready());
    REQUIRE(wait_until_all_up());
  }

  bool wait_until_all_up() {
    return wager::test::wait_until(
      [&] { return all_see({&a, &*b, &*c}, {{"n-a", "up"}, {"n-b", "up"}, {"n-c", "up"}}); },
      20s);
  }
};

} // namespace

TEST_CASE("three nodes joined through one seed each show three members up and split the shards") {
  three_nodes cluster;
  uint32_t shards = 0;
  for (auto* n : {&cluster.a, &*cluster.b, &*cluster.c}) {
    auto health = n->health();
    REQUIRE(health);
    CHECK(health->at("node_id").as_string() == n->id);
    CHECK(health->at("status").as_string() == "ready");
    CHECK(health->at("entities").is_object());
    auto members = n->members();
    // Each member's address is the cluster address from its ready line.
    CHECK(members["n-a"].address == cluster.a.cluster);
    CHECK(members["n-b"].address == cluster.b->cluster);
    CHECK(members["n-c"].address == cluster.c->cluster);
    auto owned = health->at("shards_owned").as_int64();
    CHECK(owned > 0);
    shards += static_cast<uint32_t>(owned);
    auto metrics = n->get("/metrics");
    REQUIRE(metrics);
    CHECK(metrics->body.find("wager_cluster_members{status=\"up\"} 3") != std::string::npos);
  }
  // Every node computes the same placement: each shard has exactly one owner.
  CHECK(shards == 256);
}

TEST_CASE("a node killed with SIGKILL is shown down by the others, who take its shards") {
  three_nodes cluster;
  auto killed_at = std::chrono::steady_clock::now();
  cluster.c->process->signal(SIGKILL);
  REQUIRE(wager::test::wait_until(
    [&] {
      return cluster.a.status_of("n-c") == "down" && cluster.b->status_of("n-c") == "down";
    },
    detection_deadline));
  auto took = std::chrono::duration_cast<std::chrono::milliseconds>(
    std::chrono::steady_clock::now() - killed_at);
  MESSAGE("marked down after " << took.count() << " ms");
  CHECK(all_see({&cluster.a, &*cluster.b}, {{"n-a", "up"}, {"n-b", "up"}, {"n-c", "down"}}));
  // The survivors take every shard between them.
  auto owned = cluster.a.health()->at("shards_owned").as_int64()
               + cluster.b->health()->at("shards_owned").as_int64();
  CHECK(owned == 256);
}

TEST_CASE("a paused node is shown down, and after SIGCONT it is up again only with a new "
          "incarnation") {
  three_nodes cluster;
  auto old_incarnation = cluster.a.incarnation_of("n-c");
  REQUIRE(old_incarnation > 0);
  CHECK(cluster.b->incarnation_of("n-c") == old_incarnation);
  auto stopped_at = std::chrono::steady_clock::now();
  cluster.c->process->signal(SIGSTOP);
  REQUIRE(wager::test::wait_until(
    [&] {
      return cluster.a.status_of("n-c") == "down" && cluster.b->status_of("n-c") == "down";
    },
    detection_deadline));
  auto took = std::chrono::duration_cast<std::chrono::milliseconds>(
    std::chrono::steady_clock::now() - stopped_at);
  MESSAGE("marked down after " << took.count() << " ms");
  cluster.c->process->signal(SIGCONT);
  // Whenever a survivor shows n-c up again, it is a new life.
  bool old_life_up = false;
  auto back = wager::test::wait_until(
    [&] {
      bool up = true;
      for (auto* n : {&cluster.a, &*cluster.b}) {
        if (n->status_of("n-c") != "up") {
          up = false;
          continue;
        }
        if (n->incarnation_of("n-c") <= old_incarnation)
          old_life_up = true;
      }
      return up;
    },
    20s);
  CHECK_FALSE(old_life_up);
  REQUIRE(back);
  CHECK(cluster.a.incarnation_of("n-c") > old_incarnation);
  CHECK(cluster.b->incarnation_of("n-c") > old_incarnation);
  // And the woken node agrees with the others.
  CHECK(cluster.wait_until_all_up());
  CHECK(cluster.c->incarnation_of("n-c") > old_incarnation);
}

TEST_CASE("a node stopped with SIGTERM is shown leaving by the others, then down") {
  three_nodes cluster;
  cluster.c->process->signal(SIGTERM);
  CHECK(wager::test::wait_until(
    [&] {
      return cluster.a.status_of("n-c") == "leaving" && cluster.b->status_of("n-c") == "leaving";
    },
    10s));
  CHECK(cluster.c->process->wait(30s) == std::optional<int>{0});
  CHECK(wager::test::wait_until(
    [&] { return all_see({&cluster.a, &*cluster.b}, {{"n-a", "up"}, {"n-b", "up"}, {"n-c", "down"}}); },
    10s));
}

TEST_CASE("a process with the wrong cluster secret is refused and never becomes a member") {
  three_nodes cluster;
  cluster_test_node stranger{cluster.data, "n-stranger",
                             {"--seeds", cluster.a.cluster + "," + cluster.b->cluster},
                             {{"WAGER_CLUSTER_SECRET", "not-the-cluster-secret"}}};
  REQUIRE(stranger.read_ready());
  // It tries both seeds, and again after its back-off: each refusal is logged.
  std::string log;
  REQUIRE(wager::test::wait_until(
    [&] {
      log += stranger.process->drain_stderr();
      size_t refusals = 0;
      for (auto at = log.find("does not prove the cluster secret"); at != std::string::npos;
           at = log.find("does not prove the cluster secret", at + 1))
        ++refusals;
      return refusals >= 4;
    },
    20s));
  CHECK(all_see({&cluster.a, &*cluster.b, &*cluster.c},
                {{"n-a", "up"}, {"n-b", "up"}, {"n-c", "up"}}));
  // It stays alone, still joining.
  CHECK(all_see({&stranger}, {{"n-stranger", "joining"}}));
}

TEST_CASE("a node with seeds but no cluster secret does not start") {
  wager::test::temp_dir dir;
  cluster_test_node lone{(dir / "data").string(), "n-lone", {"--seeds", "127.0.0.1:1"}, {}};
  CHECK(lone.process->wait(30s) == std::optional<int>{1});
  auto err = lone.process->drain_stderr();
  CHECK(err.find("--seeds needs --cluster-secret") != std::string::npos);
  CHECK(std::count(err.begin(), err.end(), '\n') == 1);
}
