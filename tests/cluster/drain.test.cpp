// Drain of one of three wager-node processes sharing one --data-dir while
// clients stream bets through the other two: SIGTERM (or wagerctl drain)
// makes the node leave, its entities finish their work and passivate, their
// shards' new owners take them over from the journal, and the node exits 0.
// Every request sent to the other nodes meanwhile is answered as if nothing
// moved: no 503, no timeout. The node's entities are live elsewhere
// afterwards, and the journal's money audit holds.

#include "node_cluster.hpp"

#include <atomic>
#include <csignal>
#include <mutex>
#include <set>
#include <thread>

using namespace std::chrono_literals;
using wager::test::call;
using wager::test::cluster_test_node;

namespace {

// Exactly one try: what a client that does not retry would see.
wager::test::http_result call_once(cluster_test_node& node, const std::string& method,
                                   const std::string& path, const std::string& body,
                                   const std::string& bearer) {
  auto [host, port] = wager::test::split_address(node.http);
  wager::test::http_client client{host, port, 15000ms};
  return client.request(method, path, body, bearer);
}

int64_t live_entities(cluster_test_node& node) {
  auto h = node.health();
  if (!h)
    return -1;
  int64_t n = 0;
  for (auto& [kind, count] : h->at("entities").as_object())
    n += count.as_int64();
  return n;
}

struct three_nodes {
  wager::test::temp_dir dir;
  std::string data = (dir / "data").string();
  wager::test::node_trio trio{data};
  cluster_test_node& a = *trio.a;
  std::optional<cluster_test_node>& b = trio.b;
  std::optional<cluster_test_node>& c = trio.c;
  std::vector<std::string> tokens;
  static constexpr int users = 6;
  static constexpr int markets = 4;

  three_nodes() {
    for (int u = 0; u < users; ++u) {
      auto credentials = R"({"username":"drainer)" + std::to_string(u)
                         + R"(","password":"correct horse battery"})";
      auto r = call(a, "POST", "/v1/users", credentials, "");
      REQUIRE_MESSAGE(r.status == 201, r.body);
      r = call(*c, "POST", "/v1/sessions", credentials, "");
      REQUIRE_MESSAGE(r.status == 201, r.body);
      tokens.push_back(std::string{boost::json::parse(r.body).at("token").as_string()});
      r = call(*b, "POST", "/v1/wallet/deposits",
               R"({"request_id":"d)" + std::to_string(u) + R"(","amount":1000000})", tokens.back());
      REQUIRE_MESSAGE(r.status == 201, r.body);
    }
    for (int m = 0; m < markets; ++m) {
      auto id = "dm" + std::to_string(m);
      auto r = call(*b, "POST", "/v1/admin/markets",
                    R"({"market_id":")" + id
                      + R"(","event":"e","name":"n","selections":[{"selection_id":"home","name":"Home","price":"2.00"}],"limits":{"max_stake":100000,"max_liability":100000000}})");
      REQUIRE_MESSAGE(r.status == 201, r.body);
      r = call(a, "POST", "/v1/admin/markets/" + id + "/status", R"({"status":"open"})");
      REQUIRE_MESSAGE(r.status == 200, r.body);
    }
  }

  void verify_journal() {
    wager::test::child_process verify{wager::test::binary("apps/wagerctl"),
                                      {"--data-dir", data, "verify"}};
    auto verified = verify.wait(30s);
    REQUIRE(verified.has_value());
    CHECK_MESSAGE(*verified == 0, verify.drain_stderr());
  }
};

// Bets from two client threads through a and c until told to stop; every
// answer other than 201 is a failure.
struct bet_stream {
  three_nodes& nodes;
  std::atomic<bool> stop{false};
  std::atomic<int> placed{0};
  std::mutex mutex;
  std::vector<std::string> failures; // REQUIRES: mutex is held
  std::vector<std::set<std::string>> acknowledged =
    std::vector<std::set<std::string>>(three_nodes::users); // REQUIRES: mutex is held
  std::vector<std::thread> threads;

  explicit bet_stream(three_nodes& n) : nodes(n) {
    for (int t = 0; t < 2; ++t)
      threads.emplace_back([this, t] { run(t); });
  }

  // A client placing a bet every 20 ms (each waits for its answer first),
  // well under the per-address and per-session request limits.
  void run(int t) {
    auto& through = t == 0 ? nodes.a : *nodes.c;
    auto next = std::chrono::steady_clock::now();
    for (int i = 0; !stop; ++i) {
      next += 20ms;
      std::this_thread::sleep_until(next);
      int u = (i * 2 + t) % three_nodes::users;
      auto request = "t" + std::to_string(t) + "-" + std::to_string(i);
      auto body = R"({"request_id":")" + request + R"(","market_id":"dm)"
                  + std::to_string(i % three_nodes::markets)
                  + R"(","selection_id":"home","stake":100,"price":"2.00","accept":"exact"})";
      auto r = call_once(through, "POST", "/v1/bets", body, nodes.tokens[u]);
      std::lock_guard guard{mutex};
      if (r.status == 201) {
        acknowledged[u].insert(std::string{boost::json::parse(r.body).at("bet_id").as_string()});
        ++placed;
      } else {
        failures.push_back(through.id + " " + request + ": " + std::to_string(r.status) + " "
                           + r.body);
      }
    }
  }

  void finish() {
    stop = true;
    for (auto& t : threads)
      t.join();
    threads.clear();
  }

  ~bet_stream() { finish(); }
};

// The bets each client saw acknowledged are the user's open bets, and the
// stakes left the wallet, asked through any node.
void check_bets(three_nodes& n, bet_stream& s) {
  for (int u = 0; u < three_nodes::users; ++u) {
    auto r = call(n.a, "GET", "/v1/bets?status=open", {}, n.tokens[u]);
    REQUIRE_MESSAGE(r.status == 200, r.body);
    std::set<std::string> seen;
    auto doc = boost::json::parse(r.body);
    for (auto& bet : doc.at("bets").as_array())
      seen.insert(std::string{bet.at("bet_id").as_string()});
    CHECK(seen == s.acknowledged[u]);
    r = call(*n.c, "GET", "/v1/wallet", {}, n.tokens[u]);
    REQUIRE_MESSAGE(r.status == 200, r.body);
    auto wallet = boost::json::parse(r.body).as_object();
    CHECK(wallet.at("available").as_int64() + wallet.at("held").as_int64()
          == 1000000 - 100 * static_cast<int64_t>(s.acknowledged[u].size()));
  }
}

} // namespace

TEST_CASE("SIGTERM drains a node under a stream of bets: its entities move, no request fails") {
  three_nodes n;
  bet_stream stream{n};
  // b serves some of the wallets, markets and sessions the bets touch.
  REQUIRE(wager::test::wait_until([&] { return stream.placed >= 20 && live_entities(*n.b) > 0; },
                                  30s));
  n.b->process->signal(SIGTERM);
  auto status = n.b->process->wait(60s);
  REQUIRE(status.has_value());
  CHECK(*status == 0);
  // The survivors own every shard between them and keep serving.
  REQUIRE(wager::test::wait_until(
    [&] {
      auto ha = n.a.health();
      auto hc = n.c->health();
      return ha && hc
             && ha->at("shards_owned").as_int64() + hc->at("shards_owned").as_int64() == 256;
    },
    20s));
  int after_drain = stream.placed + 20;
  CHECK(wager::test::wait_until([&] { return stream.placed >= after_drain; }, 30s));
  stream.finish();
  for (auto& f : stream.failures)
    MESSAGE("failed: " << f);
  CHECK(stream.failures.empty());
  check_bets(n, stream);
  for (auto* node : {&n.a, &*n.c})
    node->process->signal(SIGTERM);
  for (auto* node : {&n.a, &*n.c}) {
    auto st = node->process->wait(60s);
    REQUIRE(st.has_value());
    CHECK(*st == 0);
  }
  n.verify_journal();
}

TEST_CASE("wagerctl drain of a node: it answers 202, hands its entities away and exits 0") {
  three_nodes n;
  bet_stream stream{n};
  REQUIRE(wager::test::wait_until([&] { return stream.placed >= 10 && live_entities(*n.b) > 0; },
                                  30s));
  wager::test::child_process ctl{wager::test::binary("apps/wagerctl"),
                                 {"--url", "http://" + n.b->http, "--admin-key",
                                  wager::test::cluster_admin_key, "drain"}};
  auto ctl_status = ctl.wait(30s);
  REQUIRE(ctl_status.has_value());
  CHECK(*ctl_status == 0);
  auto status = n.b->process->wait(60s);
  REQUIRE(status.has_value());
  CHECK(*status == 0);
  int after_drain = stream.placed + 10;
  CHECK(wager::test::wait_until([&] { return stream.placed >= after_drain; }, 30s));
  stream.finish();
  for (auto& f : stream.failures)
    MESSAGE("failed: " << f);
  CHECK(stream.failures.empty());
  check_bets(n, stream);
  n.verify_journal();
}
