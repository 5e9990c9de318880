// Drain of one of three wager-node processes sharing one --data-dir while
// clients stream bets through the other two: SIGTERM (or wagerctl drain)
// makes the node leave, its entities finish their work and passivate, their
// shards' new owners take them over from the journal, and the node exits 0.
// Every request sent to the other nodes meanwhile is answered as if nothing
// moved: no 503, no timeout. (The clients retry such answers, as real ones
// do, so that a drain that wrongly answered 503 for a bet it carried out is
// caught both ways: the 503 is reported, and the bets still match the
// wallets exactly.) The node's entities are live elsewhere afterwards, and
// the journal's money audit holds.

#include "node_cluster.hpp"

#include <csignal>

using namespace std::chrono_literals;
using wager::test::call;
using wager::test::cluster_test_node;

namespace {

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
    auto args = wager::test::cluster_journal_args(data);
    args.push_back("verify");
    wager::test::child_process verify{wager::test::binary("apps/wagerctl"), args};
    auto verified = verify.wait(30s);
    REQUIRE(verified.has_value());
    CHECK_MESSAGE(*verified == 0, verify.drain_stderr());
  }
};

// Nothing a drain did needed a retry, no request failed, and the bets
// acknowledged are exactly the open bets and the stakes taken.
void check_stream(wager::test::bet_stream& s) {
  std::lock_guard guard{s.mutex};
  for (auto& r : s.retried)
    MESSAGE("answered 503 or not at all, then retried: " << r);
  for (auto& f : s.failures)
    MESSAGE("failed: " << f);
  CHECK(s.retried.empty());
  CHECK(s.failures.empty());
}

} // namespace

TEST_CASE("SIGTERM drains a node under a stream of bets: its entities move, no request fails") {
  three_nodes n;
  // Bets from two clients, through a and c.
  wager::test::bet_stream stream{{&n.a, &*n.c}, n.tokens, three_nodes::markets, "dm"};
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
  check_stream(stream);
  stream.check_wallets(n.a, 1000000);
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
  // Bets from two clients, through a and c.
  wager::test::bet_stream stream{{&n.a, &*n.c}, n.tokens, three_nodes::markets, "dm"};
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
  check_stream(stream);
  stream.check_wallets(n.a, 1000000);
  n.verify_journal();
}
