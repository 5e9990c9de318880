// kill -9 of one of three wager-node processes sharing one --data-dir: the
// survivors take the lost node's shards. Under a stream of bets from
// clients that retry a 503 with the same request_id, every bet a client saw
// acknowledged is in the wallet afterwards, and nothing else is. A request a
// survivor relayed to the lost node is answered (503, retry) when the
// connection goes, not at the caller's timeout; and the work the lost node
// left open (a stake held, its market not yet asked) is finished by a
// survivor on its own, before any client touches that wallet again. The
// journal's money audit holds after both.

#include "node_cluster.hpp"

#include <csignal>
#include <mutex>

using namespace std::chrono_literals;
using wager::test::call;
using wager::test::cluster_test_node;

TEST_CASE("kill -9 of a node under a stream of bets loses no acknowledged bet, and a retry "
          "gets the first outcome") {
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

  // Two clients stream bets through a and b, retrying (same request_id)
  // what is answered 503 or not at all, as real clients do. c dies under
  // them, and they go on until 40 more bets are placed.
  wager::test::bet_stream stream{{&a, &b}, tokens, markets, "m"};
  REQUIRE(wager::test::wait_until([&] { return stream.placed >= 10; }, 30s));
  {
    // The node about to die serves some of the wallets or markets.
    auto h = c.health();
    REQUIRE(h);
    auto& live = h->at("entities");
    CHECK(live.at("wallet").as_int64() + live.at("market").as_int64() > 0);
  }
  c.process->signal(SIGKILL);
  int after_kill = stream.placed + 40;
  CHECK(wager::test::wait_until([&] { return stream.placed >= after_kill; }, 60s));
  stream.finish();
  {
    std::lock_guard guard{stream.mutex};
    for (auto& r : stream.retried)
      MESSAGE("retried: " << r);
    for (auto& f : stream.failures)
      MESSAGE("failed: " << f);
    CHECK(stream.failures.empty());
  }
  // A retry got the first try's bet: the model is exactly the wallets.
  stream.check_wallets(a, 100000);

  wager::test::stop_and_verify({&a, &b}, data);
}

TEST_CASE("a stake left held by a lost node is settled by a survivor without a client touching "
          "it") {
  wager::test::temp_dir dir;
  auto data = (dir / "data").string();
  // n-b dies (SIGKILL, by its own hand) the first time a wallet there has
  // a bet's stake held on disk, before it asks the market.
  auto b_env = wager::test::cluster_env();
  b_env["WAGER_CRASH_AT"] = "wallet.hold_durable";
  wager::test::node_trio trio{data, b_env};
  auto& a = *trio.a;
  auto& b = *trio.b;
  auto& c = *trio.c;
  const std::vector<std::string> members{"n-a", "n-b", "n-c"};

  // The market on n-a, the wallet on n-b.
  auto market = wager::test::key_owned_by("market", "m-open-", "n-a", members);
  wager::test::open_market(a, market, 100000, 100000000);
  auto users = wager::test::sign_up_wallets_on({&a, &c}, "n-b", members, 1, 64, "holder");
  REQUIRE(users.size() == 1);
  auto& user = users.front();
  auto r = call(a, "POST", "/v1/wallet/deposits", R"({"request_id":"d0","amount":100000})",
                user.token);
  REQUIRE_MESSAGE(r.status == 201, r.body);

  auto activated = [&] {
    const std::string series = R"(wager_resumed_entities_total{kind="wallet",outcome="activated"})";
    return a.metric(series) + c.metric(series);
  };
  CHECK(activated() == 0);

  {
    // The bet through n-a, which relays it to the wallet's owner; that dies
    // holding the stake. n-a answers as soon as its connection to n-b is
    // gone (not at its call timeout, whose answer says "did not answer in
    // time"), and the client does not send the request again.
    wager::test::request_in_flight bet{
      a.http, "POST", "/v1/bets",
      R"({"request_id":"held-1","market_id":")" + market
        + R"(","selection_id":"home","stake":250,"price":"2.00","accept":"exact"})",
      user.token};
    REQUIRE(bet.sent());
    auto status = b.process->wait(30s);
    REQUIRE(status.has_value());
    CHECK(*status == 128 + SIGKILL);
    auto answer = bet.await(30s);
    CHECK(answer.status == 503);
    CHECK_MESSAGE(answer.body.find("the node that owns it was lost") != std::string::npos,
                  answer.body);
  }

  // No request for the wallet until a survivor has activated it from the
  // journal: n-b's shards were taken and their open work resumed.
  REQUIRE(wager::test::wait_until(
    [&] { return a.status_of("n-b") == "down" && c.status_of("n-b") == "down"; }, 20s));
  REQUIRE(wager::test::wait_until([&] { return activated() >= 1; }, 30s));
  CHECK(activated() == 1);

  // The activated wallet asked n-a's market, which decided: the stake is no
  // longer held, and is either in an open bet or back in the balance.
  boost::json::object wallet;
  REQUIRE(wager::test::wait_until(
    [&] {
      auto w = call(c, "GET", "/v1/wallet", {}, user.token);
      if (w.status != 200)
        return false;
      wallet = boost::json::parse(w.body).as_object();
      return wallet.at("held").as_int64() == 0;
    },
    30s));
  r = call(c, "GET", "/v1/bets?status=open", {}, user.token);
  REQUIRE_MESSAGE(r.status == 200, r.body);
  int64_t in_bets = 0;
  auto open = boost::json::parse(r.body);
  for (auto& bet : open.at("bets").as_array())
    in_bets += bet.at("stake").as_int64();
  CHECK((in_bets == 0 || in_bets == 250));
  CHECK(wallet.at("available").as_int64() + in_bets == 100000);

  wager::test::stop_and_verify({&a, &c}, data);
}
