// A node killed with SIGKILL and started again with the same node id and
// data dir rejoins: the others show it up with three members, the shards
// split over all three again, the wallets whose shard went back to it are
// live there and nowhere else, and bets and deposits streamed through the
// other nodes across the loss and the rejoin lose nothing acknowledged.

#include "node_cluster.hpp"

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <csignal>
#include <mutex>
#include <set>
#include <thread>

using namespace std::chrono_literals;
using wager::test::all_see;
using wager::test::call;
using wager::test::cluster_test_node;
using wager::test::http_result;

namespace {

constexpr int64_t initial_deposit = 100000;
constexpr int64_t stake = 100;
constexpr int64_t top_up = 50;

struct operation {
  size_t user = 0;
  bool bet = false; // else a deposit
  std::string body;
  http_result answer;
};

// Bets and deposits on the given wallets, one at a time, through n-a and
// n-c in turn, on a thread of their own, as far as the test allows:
// allow(n) lets the stream run until n operations are done.
class operation_stream {
public:
  operation_stream(cluster_test_node& a, cluster_test_node& c,
                   const std::vector<wager::test::signed_up>& users, std::string market)
    : a_(a), c_(c), users_(users), market_(std::move(market)), thread_([this] { run(); }) {}

  ~operation_stream() { stop(); }

  // Lets the stream run until `n` operations are done (at least the one
  // under way); returns that number.
  size_t allow(size_t n) {
    std::lock_guard lock{mutex_};
    allowed_ = std::max(n, done_.load() + 1);
    wake_.notify_all();
    return allowed_;
  }

  size_t done() const { return done_.load(); }

  void stop() {
    {
      std::lock_guard lock{mutex_};
      stopping_ = true;
      wake_.notify_all();
    }
    if (thread_.joinable())
      thread_.join();
  }

  // After stop().
  const std::vector<operation>& operations() const { return ops_; }

private:
  void run() {
    for (size_t i = 0;; ++i) {
      {
        std::unique_lock lock{mutex_};
        wake_.wait(lock, [&] { return stopping_ || i < allowed_; });
        if (stopping_)
          return;
      }
      operation op;
      op.user = i % users_.size();
      op.bet = i % 4 != 3;
      auto id = std::to_string(i);
      op.body = op.bet ? R"({"request_id":"bet-)" + id + R"(","market_id":")" + market_
                           + R"(","selection_id":"home","stake":)" + std::to_string(stake)
                           + R"(,"price":"2.00","accept":"exact"})"
                       : R"({"request_id":"top-up-)" + id + R"(","amount":)"
                           + std::to_string(top_up) + "}";
      auto& through = i % 2 == 0 ? a_ : c_;
      op.answer = call(through, "POST", op.bet ? "/v1/bets" : "/v1/wallet/deposits", op.body,
                       users_[op.user].token);
      ops_.push_back(std::move(op));
      ++done_;
    }
  }

  cluster_test_node& a_;
  cluster_test_node& c_;
  const std::vector<wager::test::signed_up>& users_;
  std::string market_;
  std::mutex mutex_;
  std::condition_variable wake_;
  size_t allowed_ = 0;
  bool stopping_ = false;
  std::atomic<size_t> done_{0};
  std::vector<operation> ops_;
  std::thread thread_;
};

} // namespace

TEST_CASE("a restarted node rejoins and the shards rebalance") {
  wager::test::temp_dir dir;
  auto data = (dir / "data").string();
  wager::test::node_trio trio{data};
  auto& a = *trio.a;
  auto& b = trio.b;
  auto& c = *trio.c;
  const std::vector<std::string> members{"n-a", "n-b", "n-c"};

  // The market stays on n-a; the wallets are n-b's, so they move to n-a or
  // n-c when n-b is lost, and back when it rejoins.
  auto market = wager::test::key_owned_by("market", "m-rejoin-", "n-a", members);
  wager::test::open_market(a, market, 100000, 100000000);
  auto users = wager::test::sign_up_wallets_on({&a, &*b, &c}, "n-b", members, 3, 24, "rejoin");
  REQUIRE(users.size() >= 2);
  for (size_t u = 0; u < users.size(); ++u) {
    auto r = call(c, "POST", "/v1/wallet/deposits",
                  R"({"request_id":"d)" + std::to_string(u) + R"(","amount":)"
                    + std::to_string(initial_deposit) + "}",
                  users[u].token);
    REQUIRE_MESSAGE(r.status == 201, r.body);
  }
  REQUIRE(b->live_entities("wallet") == static_cast<int64_t>(users.size()));

  operation_stream stream{a, c, users, market};
  auto allowed = stream.allow(6);
  REQUIRE(wager::test::wait_until([&] { return stream.done() >= allowed; }, 30s));

  // Lost with operations in flight.
  allowed = stream.allow(stream.done() + 6);
  b->process->signal(SIGKILL);
  REQUIRE(b->process->wait(10s).has_value());
  REQUIRE(wager::test::wait_until(
    [&] {
      return all_see({&a, &c}, {{"n-a", "up"}, {"n-b", "down"}, {"n-c", "up"}})
             && a.shards_owned() + c.shards_owned() == wager::test::cluster_shards;
    },
    20s));
  REQUIRE(wager::test::wait_until([&] { return stream.done() >= allowed; }, 60s));
  // n-b's wallets are served by the survivors now.
  CHECK(a.live_entities("wallet") + c.live_entities("wallet") > 0);

  // Started again, same id, same data dir, with operations running all the
  // while it joins and the shards move back (at most 150 of them).
  stream.allow(stream.done() + 150);
  b.reset();
  b.emplace(data, "n-b", std::vector<std::string>{"--seeds", a.cluster});
  REQUIRE(b->read_ready());
  std::vector<cluster_test_node*> nodes{&a, &*b, &c};
  REQUIRE(wager::test::wait_until(
    [&] {
      if (!trio.all_up())
        return false;
      int64_t sum = 0;
      for (auto* n : nodes) {
        auto owned = n->shards_owned();
        if (owned <= 0)
          return false;
        sum += owned;
      }
      return sum == wager::test::cluster_shards;
    },
    30s));
  // And a few more once it has.
  allowed = stream.allow(stream.done() + 6);
  REQUIRE(wager::test::wait_until([&] { return stream.done() >= allowed; }, 60s));
  stream.stop();
  MESSAGE(stream.done() << " operations streamed");

  // Every wallet is n-b's again: a request through any node is served, and
  // each wallet is live on n-b alone.
  for (auto& user : users)
    for (auto* n : nodes) {
      CAPTURE(n->id);
      auto r = call(*n, "GET", "/v1/wallet", {}, user.token);
      CHECK_MESSAGE(r.status == 200, r.body);
    }
  auto wallets = static_cast<int64_t>(users.size());
  CHECK(wager::test::wait_until(
    [&] {
      return b->live_entities("wallet") == wallets && a.live_entities("wallet") == 0
             && c.live_entities("wallet") == 0;
    },
    20s));
  CHECK(a.live_entities("market") == 1);
  CHECK(b->live_entities("market") == 0);
  CHECK(c.live_entities("market") == 0);

  // An operation without a final answer is asked again with its request_id:
  // the answer now is its fate. Each one must have gone through.
  auto ops = stream.operations();
  for (auto& op : ops)
    if (op.answer.status != 201) {
      MESSAGE("no final answer: " << op.body << " -> " << op.answer.status << " "
                                  << op.answer.body);
      op.answer = call(*b, "POST", op.bet ? "/v1/bets" : "/v1/wallet/deposits", op.body,
                       users[op.user].token);
    }
  std::vector<int64_t> expected(users.size(), initial_deposit);
  std::vector<std::set<std::string>> acknowledged(users.size());
  for (auto& op : ops) {
    CAPTURE(op.body);
    CHECK_MESSAGE(op.answer.status == 201, op.answer.body);
    if (op.answer.status != 201)
      continue;
    if (op.bet) {
      expected[op.user] -= stake;
      acknowledged[op.user].insert(
        std::string{boost::json::parse(op.answer.body).at("bet_id").as_string()});
    } else {
      expected[op.user] += top_up;
    }
  }
  for (size_t u = 0; u < users.size(); ++u) {
    CAPTURE(users[u].user_id);
    for (auto* n : nodes) {
      CAPTURE(n->id);
      auto r = call(*n, "GET", "/v1/wallet", {}, users[u].token);
      REQUIRE_MESSAGE(r.status == 200, r.body);
      auto wallet = boost::json::parse(r.body).as_object();
      CHECK(wallet.at("available").as_int64() + wallet.at("held").as_int64() == expected[u]);
      r = call(*n, "GET", "/v1/bets?status=open", {}, users[u].token);
      REQUIRE_MESSAGE(r.status == 200, r.body);
      std::set<std::string> open;
      auto listed = boost::json::parse(r.body);
      for (auto& bet : listed.at("bets").as_array())
        open.insert(std::string{bet.at("bet_id").as_string()});
      CHECK(open == acknowledged[u]);
    }
  }

  wager::test::stop_and_verify(nodes, data);
}
