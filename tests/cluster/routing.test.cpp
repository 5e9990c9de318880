// Three wager-node processes sharing one --data-dir route every entity to
// the node that owns its shard: a user signs up and logs in through one
// node, deposits through another and bets through the third, every node
// answers the same, each entity is live on exactly one node, and the
// journal's money audit holds.

#include "node_cluster.hpp"

#include <csignal>

using namespace std::chrono_literals;
using wager::test::call;

TEST_CASE("three nodes serve one user through any node, each entity live on one node") {
  wager::test::temp_dir dir;
  auto data = (dir / "data").string();
  wager::test::node_trio trio{data};
  auto& a = *trio.a;
  auto& b = *trio.b;
  auto& c = *trio.c;
  auto nodes = trio.nodes();

  auto credentials = R"({"username":"roamer","password":"correct horse battery"})";
  auto r = call(a, "POST", "/v1/users", credentials, "");
  REQUIRE_MESSAGE(r.status == 201, r.body);
  r = call(a, "POST", "/v1/sessions", credentials, "");
  REQUIRE_MESSAGE(r.status == 201, r.body);
  auto token = std::string{boost::json::parse(r.body).at("token").as_string()};

  r = call(b, "POST", "/v1/admin/markets",
           R"({"market_id":"m-route","event":"e","name":"n","selections":[{"selection_id":"home","name":"Home","price":"2.00"}],"limits":{"max_stake":100000,"max_liability":10000000}})");
  REQUIRE_MESSAGE(r.status == 201, r.body);
  r = call(c, "POST", "/v1/admin/markets/m-route/status", R"({"status":"open"})");
  REQUIRE_MESSAGE(r.status == 200, r.body);

  r = call(b, "POST", "/v1/wallet/deposits", R"({"request_id":"d1","amount":10000})", token);
  REQUIRE_MESSAGE(r.status == 201, r.body);

  constexpr int bets = 5;
  for (int i = 0; i < bets; ++i) {
    auto body = R"({"request_id":"b)" + std::to_string(i)
                + R"(","market_id":"m-route","selection_id":"home","stake":100,"price":"2.00","accept":"exact"})";
    r = call(c, "POST", "/v1/bets", body, token);
    if (r.status != 201)
      for (auto* n : nodes)
        MESSAGE(n->id << " stderr: " << n->process->drain_stderr());
    REQUIRE_MESSAGE(r.status == 201, r.body);
  }

  std::optional<std::string> wallet_seen, bets_seen;
  for (auto* n : nodes) {
    CAPTURE(n->id);
    r = call(*n, "GET", "/v1/wallet", {}, token);
    REQUIRE_MESSAGE(r.status == 200, r.body);
    auto wallet = boost::json::parse(r.body).as_object();
    CHECK(wallet.at("available").as_int64() + wallet.at("held").as_int64() == 10000 - bets * 100);
    if (wallet_seen)
      CHECK(r.body == *wallet_seen);
    wallet_seen = r.body;
    r = call(*n, "GET", "/v1/bets?status=open", {}, token);
    REQUIRE_MESSAGE(r.status == 200, r.body);
    CHECK(boost::json::parse(r.body).at("bets").as_array().size() == bets);
    if (bets_seen)
      CHECK(r.body == *bets_seen);
    bets_seen = r.body;
  }

  // One wallet, one market, one user, one session: each live on one node.
  for (auto kind : {"wallet", "market", "user", "session"}) {
    CAPTURE(kind);
    int64_t live = 0;
    for (auto* n : nodes)
      live += n->live_entities(kind);
    CHECK(live == 1);
  }

  wager::test::stop_and_verify(nodes, data);
}
