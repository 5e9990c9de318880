// kill -9 of one of three wager-node processes sharing one --data-dir: the
// survivors take the lost node's shards. Under a stream of bets, every bet
// the client saw acknowledged is in the wallet afterwards, and the journal's
// money audit holds.

#include "node_cluster.hpp"

#include <csignal>
#include <set>

using namespace std::chrono_literals;
using wager::test::call;
using wager::test::cluster_test_node;

TEST_CASE("kill -9 of a node under a stream of bets loses no acknowledged bet") {
  wager::test::temp_dir dir;
  auto data = (dir / "data").string();
  wager::test::node_trio trio{data};
  auto& a = *trio.a;
  auto& b = *trio.b;
  auto& c = *trio.c;

  // Several users and markets, so the lost node owns some of them.
  constexpr int users = 4;
  std::vector<std::string> tokens;
  for (int u = 0; u < users; ++u) {
    auto credentials = R"({"username":"punter)" + std::to_string(u)
                       + R"(","password":"correct horse battery"})";
    auto r = call(a, "POST", "/v1/users", credentials, "");
    REQUIRE_MESSAGE(r.status == 201, r.body);
    r = call(b, "POST", "/v1/sessions", credentials, "");
    REQUIRE_MESSAGE(r.status == 201, r.body);
    tokens.push_back(std::string{boost::json::parse(r.body).at("token").as_string()});
    r = call(a, "POST", "/v1/wallet/deposits",
             R"({"request_id":"d)" + std::to_string(u) + R"(","amount":100000})", tokens.back());
    REQUIRE_MESSAGE(r.status == 201, r.body);
  }
  constexpr int markets = 3;
  for (int m = 0; m < markets; ++m) {
    auto id = "m" + std::to_string(m);
    auto r = call(b, "POST", "/v1/admin/markets",
                  R"({"market_id":")" + id
                    + R"(","event":"e","name":"n","selections":[{"selection_id":"home","name":"Home","price":"2.00"}],"limits":{"max_stake":100000,"max_liability":100000000}})");
    REQUIRE_MESSAGE(r.status == 201, r.body);
    r = call(a, "POST", "/v1/admin/markets/" + id + "/status", R"({"status":"open"})");
    REQUIRE_MESSAGE(r.status == 200, r.body);
  }

  constexpr int bets = 24;
  constexpr int kill_after = 6;
  std::vector<std::set<std::string>> acknowledged(users);
  for (int i = 0; i < bets; ++i) {
    if (i == kill_after) {
      // The node about to die serves some of the wallets or markets.
      auto h = c.health();
      REQUIRE(h);
      auto& live = h->at("entities");
      CHECK(live.at("wallet").as_int64() + live.at("market").as_int64() > 0);
      c.process->signal(SIGKILL);
    }
    int u = i % users;
    auto request = "r" + std::to_string(i);
    auto body = R"({"request_id":")" + request + R"(","market_id":"m)"
                + std::to_string(i % markets)
                + R"(","selection_id":"home","stake":100,"price":"2.00","accept":"exact"})";
    auto& through = i % 2 == 0 ? a : b;
    auto r = call(through, "POST", "/v1/bets", body, tokens[u]);
    REQUIRE_MESSAGE(r.status == 201, r.body);
    acknowledged[u].insert(std::string{boost::json::parse(r.body).at("bet_id").as_string()});
  }

  int64_t staked = 0;
  for (int u = 0; u < users; ++u) {
    auto r = call(a, "GET", "/v1/bets?status=open", {}, tokens[u]);
    REQUIRE_MESSAGE(r.status == 200, r.body);
    std::set<std::string> seen;
    auto doc = boost::json::parse(r.body);
    for (auto& bet : doc.at("bets").as_array())
      seen.insert(std::string{bet.at("bet_id").as_string()});
    CHECK(seen == acknowledged[u]);
    r = call(b, "GET", "/v1/wallet", {}, tokens[u]);
    REQUIRE_MESSAGE(r.status == 200, r.body);
    auto wallet = boost::json::parse(r.body).as_object();
    CHECK(wallet.at("available").as_int64() + wallet.at("held").as_int64()
          == 100000 - 100 * static_cast<int64_t>(acknowledged[u].size()));
    staked += 100 * static_cast<int64_t>(acknowledged[u].size());
  }
  CHECK(staked == 100 * bets);

  wager::test::stop_and_verify({&a, &b}, data);
}
