// Real hosts, real partitions: three wager-node processes, each in a network
// namespace of its own with its own address, and PostgreSQL in a fourth
// (support/test_network.hpp). The nodes share no file: the journal and the
// shard leases are in the database. Under a stream of bets through the
// nodes not faulted, one fault after another:
//   1. kill -9 of a node, which then starts again;
//   2. a node's link cut (to the other nodes and to PostgreSQL) for longer
//      than the failure detection takes, then restored;
//   3. a node cut off from the other nodes only, its link to PostgreSQL up.
// After each: every acknowledged bet and deposit is there, every wallet
// equals the model of what was acknowledged (no double spend), and the
// journal verifies, lease check included: no node committed for a shard
// after another node took its lease.

#include "node_cluster.hpp"

#include "wager/persistence/pg_db.hpp"
#include "wager/runtime/errors.hpp"

#include "support/postgres_server.hpp"
#include "support/test_network.hpp"

#include <csignal>
#include <cstdio>

#include <unistd.h>

using namespace std::chrono_literals;
using wager::test::call;
using wager::test::cluster_test_node;

namespace {

// Where the test is, on stderr with the seconds since it started: ctest
// shows it when the test fails or runs out of time.
void progress(const std::string& what) {
  static const auto start = std::chrono::steady_clock::now();
  auto s = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  std::fprintf(stderr, "partition: %7.1f s %s\n", s, what.c_str());
}

constexpr int users = 6;
constexpr int markets = 4;
constexpr int64_t deposit = 1000000;

struct hosts {
  wager::test::test_network net{{"pg", "n-a", "n-b", "n-c"}};
  wager::test::postgres_server pg{{.netns = net.netns("pg"), .address = net.address("pg"),
                                   .clients = net.subnet()}};
  wager::test::temp_dir dir;
  std::string data = (dir / "data").string();
  std::string url;
  std::map<std::string, std::optional<cluster_test_node>> nodes;
  std::vector<std::string> tokens;
  // Bets acknowledged so far, per user, over every stream.
  std::vector<std::set<std::string>> acknowledged{users};

  hosts() {
    pg.create_database("wager");
    url = pg.url("wager");
    start("n-a", {});
    start("n-b", {"--seeds", node("n-a").cluster});
    start("n-c", {"--seeds", node("n-a").cluster});
    REQUIRE(wager::test::wait_until([&] { return all_up(); }, 30s));
  }

  cluster_test_node& node(const std::string& id) { return *nodes.at(id); }

  void start(const std::string& id, std::vector<std::string> extra) {
    auto& n = nodes[id];
    n.reset();
    n.emplace(data, id, url, std::move(extra), net);
    REQUIRE(n->read_ready());
  }

  std::vector<cluster_test_node*> all() {
    return {&node("n-a"), &node("n-b"), &node("n-c")};
  }

  bool all_up() {
    return wager::test::all_see(all(), {{"n-a", "up"}, {"n-b", "up"}, {"n-c", "up"}});
  }

  bool seen_by(const std::vector<std::string>& by, const std::string& id,
               const std::string& status) {
    for (auto& b : by)
      if (node(b).status_of(id) != status)
        return false;
    return true;
  }

  // Takes a finished stream's acknowledged bets into the model; it must
  // have no final failure.
  void take(wager::test::bet_stream& s) {
    s.finish();
    std::lock_guard guard{s.mutex};
    for (auto& r : s.retried)
      MESSAGE("answered 503 or not at all, then retried: " << r);
    for (auto& f : s.failures)
      MESSAGE("failed: " << f);
    CHECK(s.failures.empty());
    for (size_t u = 0; u < s.acknowledged.size(); ++u)
      acknowledged[u].insert(s.acknowledged[u].begin(), s.acknowledged[u].end());
  }

  // Every node shows each user exactly the acknowledged bets, open, and a
  // wallet holding the deposit less their stakes.
  void check_model() {
    for (auto* n : all()) {
      CAPTURE(n->id);
      for (size_t u = 0; u < tokens.size(); ++u) {
        CAPTURE(u);
        auto r = wager::test::call_until_answered(*n, "GET", "/v1/bets?status=open", {},
                                                  tokens[u], 5000ms, 30000ms);
        REQUIRE_MESSAGE(r.status == 200, r.body);
        std::set<std::string> seen;
        auto listed = boost::json::parse(r.body);
        for (auto& bet : listed.at("bets").as_array())
          seen.insert(std::string{bet.at("bet_id").as_string()});
        CHECK(seen == acknowledged[u]);
        r = wager::test::call_until_answered(*n, "GET", "/v1/wallet", {}, tokens[u], 5000ms,
                                             30000ms);
        REQUIRE_MESSAGE(r.status == 200, r.body);
        auto wallet = boost::json::parse(r.body).as_object();
        CHECK(wallet.at("available").as_int64() >= 0);
        CHECK(wallet.at("available").as_int64() + wallet.at("held").as_int64() ==
              deposit - wager::test::bet_stream::stake *
                          static_cast<int64_t>(acknowledged[u].size()));
      }
    }
  }

  // One value from the database, as text.
  std::string sql(const std::string& query) {
    auto c = wager::pg::connection::open(url, "test", 5);
    REQUIRE(c);
    auto r = c->query(query, {}, "test SQL");
    REQUIRE_MESSAGE(r, wager::message_of(r.error()));
    REQUIRE(r->rows() == 1);
    return std::string{r->text(0, 0)};
  }

  // The database's clock.
  std::string db_now() { return sql("SELECT now()::text"); }

  // wagerctl verify from the test's own namespace, over the bridge.
  void verify() {
    wager::test::child_process v{wager::test::binary("apps/wagerctl"),
                                 {"--journal", url, "verify"}};
    auto status = v.wait(60s);
    REQUIRE(status.has_value());
    CHECK_MESSAGE(*status == 0, v.drain_stderr());
  }
};

// Runs a stream of bets through `through` while `fault` happens, once the
// stream has placed some, and `recover` after it has placed some more (when
// `served_meanwhile`: the faulted node's shards are served by the others
// during the fault) or at once.
template <class Fault, class Recover>
void under_stream(hosts& h, const std::vector<std::string>& through, const std::string& name,
                  bool served_meanwhile, Fault fault, Recover recover) {
  std::vector<cluster_test_node*> nodes;
  for (auto& id : through)
    nodes.push_back(&h.node(id));
  wager::test::bet_stream stream{nodes, h.tokens, markets, "pm", name + "-"};
  REQUIRE(wager::test::wait_until([&] { return stream.placed >= 20; }, 30s));
  progress(name + ": " + std::to_string(stream.placed.load()) + " bets placed, the fault");
  fault();
  progress(name + ": the fault is seen");
  int after = stream.placed + 30;
  if (served_meanwhile) {
    CHECK(wager::test::wait_until([&] { return stream.placed >= after; }, 60s));
    progress(name + ": " + std::to_string(stream.placed.load()) + " bets placed, recovering");
  }
  recover();
  progress(name + ": recovered");
  after = stream.placed + 10;
  CHECK(wager::test::wait_until([&] { return stream.placed >= after; }, 60s));
  h.take(stream);
  progress(name + ": stream stopped");

  MESSAGE(name << ": " << stream.placed.load() << " bets placed");
}

} // namespace

// Network namespaces need root (CAP_NET_ADMIN) and iproute2: without them
// the cases say so and check nothing.
bool can_make_hosts() {
  if (::geteuid() == 0 && ::access("/usr/sbin/ip", X_OK) == 0)
    return true;
  MESSAGE("not run: network namespaces need root and /usr/sbin/ip (iproute2)");
  return false;
}

TEST_CASE("three nodes on three hosts and PostgreSQL on a fourth: a kill -9, a host cut off, and "
          "a host cut off from the other nodes lose no acknowledged bet or deposit and spend "
          "nothing twice") {
  if (!can_make_hosts())
    return;
  progress("starting the hosts");
  hosts h;
  progress("three nodes up");
  auto& a = h.node("n-a");
  for (int u = 0; u < users; ++u) {
    auto credentials = R"({"username":"parted)" + std::to_string(u) +
                       R"(","password":"correct horse battery"})";
    auto r = call(a, "POST", "/v1/users", credentials, "");
    REQUIRE_MESSAGE(r.status == 201, r.body);
    h.tokens.push_back(wager::test::log_in(h.node("n-c"), "parted" + std::to_string(u)));
    r = call(h.node("n-b"), "POST", "/v1/wallet/deposits",
             R"({"request_id":"d)" + std::to_string(u) + R"(","amount":)" +
               std::to_string(deposit) + "}",
             h.tokens.back());
    REQUIRE_MESSAGE(r.status == 201, r.body);
  }
  for (int m = 0; m < markets; ++m)
    wager::test::open_market(a, "pm" + std::to_string(m), 100000, 100000000);

  // 1. kill -9 of n-c; the others take its shards once its member row is
  // silent. It starts again and rejoins.
  under_stream(
    h, {"n-a", "n-b"}, "kill", true,
    [&] {
      h.node("n-c").process->signal(SIGKILL);
      REQUIRE(h.node("n-c").process->wait(10s).has_value());
      REQUIRE(wager::test::wait_until([&] { return h.seen_by({"n-a", "n-b"}, "n-c", "down"); },
                                      20s));
    },
    [&] {
      h.start("n-c", {"--seeds", h.node("n-a").cluster});
      REQUIRE(wager::test::wait_until([&] { return h.all_up(); }, 30s));
    });
  h.check_model();
  progress("model checked");
  h.verify();
  progress("verified");

  auto takes = [&](const std::string& id) {
    return h.node(id).metric("wager_journal_lease_takes_total");
  };
  auto takes_before = takes("n-a") + takes("n-c");

  // 2. n-b's link down: it reaches neither the nodes nor PostgreSQL. Once
  // the others call it down and its member row is silent, they take its
  // shards; when the link is back, it rejoins as a new incarnation and
  // whatever it still tried to commit for them is refused.
  under_stream(
    h, {"n-a", "n-c"}, "isolated", true,
    [&] {
      h.net.isolate("n-b");
      REQUIRE(wager::test::wait_until([&] { return h.seen_by({"n-a", "n-c"}, "n-b", "down"); },
                                      20s));
    },
    [&] {
      h.net.reconnect("n-b");
      REQUIRE(wager::test::wait_until([&] { return h.all_up(); }, 60s));
    });
  h.check_model();
  progress("model checked");
  h.verify();
  progress("verified");
  // The survivors took n-b's shards (and n-b took some back on its return).
  CHECK(takes("n-a") + takes("n-c") > takes_before);

  // 3. n-a cut off from n-b and n-c, its link to PostgreSQL up: each side
  // calls the other down, but no shard changes hands, since every member
  // row stays fresh: the bets on n-a's shards sent to the others wait
  // (503, retried) until the cut heals.
  std::string cut_at;
  std::string healed_at;
  under_stream(
    h, {"n-b", "n-c"}, "cut", false,
    [&] {
      cut_at = h.db_now();
      h.net.cut("n-a", {"n-b", "n-c"});
      REQUIRE(wager::test::wait_until([&] { return h.seen_by({"n-b", "n-c"}, "n-a", "down"); },
                                      20s));
    },
    [&] {
      healed_at = h.db_now();
      h.net.heal("n-a", {"n-b", "n-c"});
      REQUIRE(wager::test::wait_until([&] { return h.all_up(); }, 60s));
    });
  h.check_model();
  // No shard was taken from n-a while it was cut off: the lease table, not
  // the views, decided.
  CHECK(h.sql("SELECT count(*) FROM wager_lease_takes t JOIN wager_lease_takes p ON p.shard = "
              "t.shard AND p.epoch = t.epoch - 1 WHERE split_part(p.owner, '@', 1) = 'n-a' AND "
              "t.taken_at BETWEEN '" + cut_at + "' AND '" + healed_at + "'") == "0");

  auto nodes = h.all();
  for (auto* n : nodes)
    n->process->signal(SIGTERM);
  for (auto* n : nodes) {
    CAPTURE(n->id);
    auto status = n->process->wait(60s);
    REQUIRE(status.has_value());
    CHECK(*status == 0);
  }
  h.verify();
}

TEST_CASE("the test hosts' namespaces, links and bridge are gone once the network is") {
  if (!can_make_hosts())
    return;
  std::string netns;
  {
    wager::test::test_network net{{"h1", "h2"}};
    netns = net.netns("h1");
    wager::test::child_process list{"/usr/sbin/ip", {"netns", "list"}};
    std::string out;
    while (auto line = list.read_line(5s))
      out += *line + "\n";
    CHECK(out.find(netns) != std::string::npos);
  }
  wager::test::child_process list{"/usr/sbin/ip", {"netns", "list"}};
  std::string out;
  while (auto line = list.read_line(5s))
    out += *line + "\n";
  CHECK_MESSAGE(out.find(netns) == std::string::npos, out);
}
