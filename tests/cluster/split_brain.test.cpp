// Split brain on one host: of three wager-node processes sharing one
// --data-dir, one (n-b) is paused with SIGSTOP while it holds live wallets.
// Requests sent to it meanwhile wait in its socket buffers. The others mark
// it down, take its shards, activate its wallets from the journal and spend
// every cent in them. After SIGCONT the paused node works through the
// queued requests with the wallets it still has in memory: none of them may
// move money that is already gone, so no wallet pays out more than it took
// in, no balance goes below zero, every acknowledged bet can be read back,
// the journal's money audit holds, and n-b rejoins with a new incarnation.

#include "node_cluster.hpp"

#include <csignal>
#include <set>

using namespace std::chrono_literals;
using wager::test::cluster_test_node;
using wager::test::http_result;

using wager::test::call;

namespace {

constexpr int64_t deposit = 10000;

std::string bet_body(const std::string& request, const std::string& market, int64_t stake) {
  return R"({"request_id":")" + request + R"(","market_id":")" + market
         + R"(","selection_id":"home","stake":)" + std::to_string(stake)
         + R"(,"price":"2.00","accept":"exact"})";
}

std::string amount_body(const std::string& request, int64_t amount) {
  return R"({"request_id":")" + request + R"(","amount":)" + std::to_string(amount) + "}";
}

// A money-moving request and what the API answered for it.
struct operation {
  size_t user = 0;
  std::string path;
  std::string body;
  int64_t amount = 0;
  http_result answer;
};

} // namespace

TEST_CASE("a paused node (SIGSTOP) is marked down, its shards move, and after SIGCONT it cannot "
          "write stale state") {
  wager::test::temp_dir dir;
  auto data = (dir / "data").string();
  wager::test::node_trio trio{data};
  auto& a = *trio.a;
  auto& b = *trio.b;
  auto& c = *trio.c;
  const std::vector<std::string> members{"n-a", "n-b", "n-c"};
  auto nodes = trio.nodes();

  // The market stays on n-a whoever else is up: only the wallets move.
  auto market = wager::test::key_owned_by("market", "m-split-", "n-a", members);
  wager::test::open_market(a, market, 1000000, 100000000);

  // Wallets that live on n-b, each with a known deposit, made live there by
  // deposits sent through n-a.
  auto users = wager::test::sign_up_wallets_on(nodes, "n-b", members, 3, 24, "split");
  REQUIRE(users.size() >= 2);
  // Sessions on n-b too where a few logins place one there: n-b then checks
  // the token on its own and hands the queued request straight to its
  // wallet, without a call to another node.
  for (auto& user : users)
    for (int attempt = 0;
         attempt < 3 && wager::test::owner_among("session", wager::test::session_of(user.token),
                                                 members) != "n-b";
         ++attempt)
      user.token = wager::test::log_in(*nodes[static_cast<size_t>(attempt) % nodes.size()],
                                       user.username);
  for (size_t u = 0; u < users.size(); ++u) {
    auto r = call(a, "POST", "/v1/wallet/deposits", amount_body("d" + std::to_string(u), deposit),
                  users[u].token);
    REQUIRE_MESSAGE(r.status == 201, r.body);
  }
  auto live_wallets = static_cast<int64_t>(users.size());
  REQUIRE(b.live_entities("wallet") == live_wallets);
  CHECK(a.live_entities("wallet") == 0);
  CHECK(c.live_entities("wallet") == 0);
  auto old_incarnation = a.incarnation_of("n-b");
  REQUIRE(old_incarnation > 0);

  b.process->signal(SIGSTOP);
  REQUIRE(wager::test::wait_until([&] { return wager::test::process_stopped(b.process->pid()); },
                                  5s));

  // While n-b is frozen: a bet and a withdrawal of the whole deposit for
  // each wallet, sent straight to n-b, waiting in its socket buffers.
  std::vector<operation> stale;
  for (size_t u = 0; u < users.size(); ++u) {
    auto id = std::to_string(u);
    stale.push_back({u, "/v1/bets", bet_body("stale-bet-" + id, market, deposit), deposit, {}});
    stale.push_back(
      {u, "/v1/wallet/withdrawals", amount_body("stale-out-" + id, deposit), deposit, {}});
  }
  std::vector<std::unique_ptr<wager::test::request_in_flight>> queued;
  for (auto& op : stale) {
    queued.push_back(std::make_unique<wager::test::request_in_flight>(
      b.http, "POST", op.path, op.body, users[op.user].token));
    REQUIRE(queued.back()->sent());
  }

  REQUIRE(wager::test::wait_until(
    [&] { return a.status_of("n-b") == "down" && c.status_of("n-b") == "down"; }, 20s));

  // The survivors own n-b's wallets now and spend all of each, alternating
  // between n-a and n-c.
  std::vector<operation> fresh;
  for (size_t u = 0; u < users.size(); ++u) {
    auto& through = u % 2 == 0 ? a : c;
    auto r = call(through, "GET", "/v1/wallet", {}, users[u].token);
    REQUIRE_MESSAGE(r.status == 200, r.body);
    auto available = boost::json::parse(r.body).at("available").as_int64();
    CHECK(available == deposit);
    operation op{u, "/v1/bets", bet_body("fresh-bet-" + std::to_string(u), market, available),
                 available, {}};
    op.answer = call(through, "POST", op.path, op.body, users[u].token);
    REQUIRE_MESSAGE(op.answer.status == 201, op.answer.body);
    fresh.push_back(std::move(op));
  }

  // n-b wakes up and answers what waited in its buffers.
  b.process->signal(SIGCONT);
  for (size_t i = 0; i < stale.size(); ++i) {
    CAPTURE(stale[i].body);
    stale[i].answer = queued[i]->await(30s);
    MESSAGE("queued on the paused node: " << stale[i].path << " -> " << stale[i].answer.status
                                          << " " << stale[i].answer.body);
    auto s = stale[i].answer.status;
    CHECK_MESSAGE((s == 201 || s == 409 || s == 422 || s == 503), stale[i].answer.body);
  }

  // n-b rejoins, only as a new life.
  bool old_life_up = false;
  REQUIRE(wager::test::wait_until(
    [&] {
      bool up = true;
      for (auto* n : {&a, &c}) {
        if (n->status_of("n-b") != "up") {
          up = false;
          continue;
        }
        if (n->incarnation_of("n-b") <= old_incarnation)
          old_life_up = true;
      }
      return up && trio.all_up();
    },
    20s));
  CHECK_FALSE(old_life_up);
  CHECK(b.incarnation_of("n-b") > old_incarnation);

  // A queued request that got no final answer (503: retry) is asked again
  // with the same request_id: its answer now is its fate.
  for (auto& op : stale)
    if (op.answer.status == 503 || op.answer.status == 0) {
      op.answer = call(a, "POST", op.path, op.body, users[op.user].token);
      MESSAGE("asked again: " << op.path << " -> " << op.answer.status << " " << op.answer.body);
      CHECK_MESSAGE((op.answer.status == 201 || op.answer.status == 409), op.answer.body);
    }

  // Money out per wallet: every stake and withdrawal the API acknowledged.
  std::vector<int64_t> paid_out(users.size());
  std::vector<std::set<std::string>> accepted_bets(users.size());
  for (auto* ops : {&stale, &fresh})
    for (auto& op : *ops) {
      if (op.answer.status != 201)
        continue;
      paid_out[op.user] += op.amount;
      if (op.path == "/v1/bets")
        accepted_bets[op.user].insert(
          std::string{boost::json::parse(op.answer.body).at("bet_id").as_string()});
    }
  int double_spends = 0;
  for (size_t u = 0; u < users.size(); ++u)
    if (paid_out[u] > deposit)
      ++double_spends;
  CHECK(double_spends == 0);

  for (size_t u = 0; u < users.size(); ++u) {
    CAPTURE(users[u].user_id);
    for (auto* n : nodes) {
      CAPTURE(n->id);
      auto r = call(*n, "GET", "/v1/wallet", {}, users[u].token);
      REQUIRE_MESSAGE(r.status == 200, r.body);
      auto wallet = boost::json::parse(r.body).as_object();
      auto available = wallet.at("available").as_int64();
      auto held = wallet.at("held").as_int64();
      CHECK(available >= 0);
      CHECK(held >= 0);
      CHECK(available + held == deposit - paid_out[u]);
      for (auto& bet : accepted_bets[u]) {
        r = call(*n, "GET", "/v1/bets/" + bet, {}, users[u].token);
        CHECK_MESSAGE(r.status == 200, bet << ": " << r.body);
      }
      r = call(*n, "GET", "/v1/bets?status=open", {}, users[u].token);
      REQUIRE_MESSAGE(r.status == 200, r.body);
      std::set<std::string> open;
      auto listed = boost::json::parse(r.body);
      for (auto& bet : listed.at("bets").as_array())
        open.insert(std::string{bet.at("bet_id").as_string()});
      CHECK(open == accepted_bets[u]);
    }
  }

  auto log = b.process->drain_stderr();
  for (size_t at = log.find("reloading from the journal"); at != std::string::npos;
       at = log.find("reloading from the journal", at + 1)) {
    auto from = log.rfind('\n', at);
    MESSAGE("n-b: " << log.substr(from == std::string::npos ? 0 : from + 1,
                                  log.find('\n', at) - (from == std::string::npos ? 0 : from + 1)));
  }

  wager::test::stop_and_verify(nodes, data);
}
