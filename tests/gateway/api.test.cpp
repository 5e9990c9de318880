// Happy paths of every route, over a real socket to a real platform.

#include "api_support.hpp"

#include "support/wait.hpp"
#include "wager/gateway/resource_json.hpp"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <future>
#include <memory>
#include <set>
#include <utility>
#include <vector>

using namespace wager;
using namespace wager::test;

TEST_CASE("a user signs up, logs in, deposits, withdraws and reads the ledger") {
  api_node node;
  auto r = node.call("POST", "/v1/users", R"({"username":"alice","password":"correct horse"})");
  REQUIRE(r.status == 201);
  auto user_id = std::string{body_of(r).at("user_id").as_string()};
  CHECK_FALSE(user_id.empty());
  r = node.call("POST", "/v1/users", R"({"username":"alice","password":"another password"})");
  CHECK(r.status == 409);
  CHECK(error_code(r) == "username_taken");

  r = node.call("POST", "/v1/sessions", R"({"username":"alice","password":"correct horse"})");
  REQUIRE(r.status == 201);
  auto session = body_of(r);
  CHECK(session.at("user_id").as_string() == user_id);
  CHECK(session.at("expires_at").as_string().size() == 24);
  auto token = std::string{session.at("token").as_string()};

  r = node.call("GET", "/v1/wallet", {}, token);
  REQUIRE(r.status == 200);
  CHECK(body_of(r) == json::parse(R"({"currency":"EUR","available":0,"held":0})"));

  auto deposit = R"({"request_id":"d1","amount":10000})";
  auto first = node.call("POST", "/v1/wallet/deposits", deposit, token);
  REQUIRE_MESSAGE(first.status == 201, first.body);
  CHECK(body_of(first).at("available").as_int64() == 10000);
  CHECK(body_of(first).at("held").as_int64() == 0);
  auto replay = node.call("POST", "/v1/wallet/deposits", deposit, token);
  CHECK(replay.status == first.status);
  CHECK(replay.body == first.body);
  r = node.call("POST", "/v1/wallet/deposits", R"({"request_id":"d1","amount":20000})", token);
  CHECK(r.status == 409);
  CHECK(error_code(r) == "request_id_reused");

  r = node.call("POST", "/v1/wallet/withdrawals", R"({"request_id":"w1","amount":3000})", token);
  REQUIRE_MESSAGE(r.status == 201, r.body);
  CHECK(body_of(r).at("available").as_int64() == 7000);
  auto refused = node.call("POST", "/v1/wallet/withdrawals",
                           R"({"request_id":"w2","amount":7001})", token);
  CHECK(refused.status == 409);
  CHECK(error_code(refused) == "insufficient_funds");
  auto refused_again = node.call("POST", "/v1/wallet/withdrawals",
                                 R"({"request_id":"w2","amount":7001})", token);
  CHECK(refused_again.status == refused.status);
  CHECK(refused_again.body == refused.body);

  r = node.call("GET", "/v1/wallet/transactions", {}, token);
  REQUIRE(r.status == 200);
  auto txs = body_of(r).at("transactions").as_array();
  REQUIRE(txs.size() == 2);
  CHECK(txs[0].at("kind").as_string() == "withdrawal");
  CHECK(txs[0].at("available_after").as_int64() == 7000);
  CHECK(txs[1].at("kind").as_string() == "deposit");
  auto newest = std::string{txs[0].at("transaction_id").as_string()};
  r = node.call("GET", "/v1/wallet/transactions?limit=1", {}, token);
  CHECK(body_of(r).at("transactions").as_array().size() == 1);
  r = node.call("GET", "/v1/wallet/transactions?before=" + newest, {}, token);
  REQUIRE(r.status == 200);
  REQUIRE(body_of(r).at("transactions").as_array().size() == 1);
  CHECK(body_of(r).at("transactions").as_array()[0].at("kind").as_string() == "deposit");
}

TEST_CASE("markets are created, listed, priced and settled, and bets follow them") {
  api_node node;
  node.open_market("m1");
  auto r = node.call("GET", "/v1/markets/m1");
  REQUIRE(r.status == 200);
  auto m = body_of(r);
  CHECK(m.at("status").as_string() == "open");
  CHECK(m.at("selections").as_array()[0].at("price").as_string() == "2.50");
  CHECK(m.at("limits").at("max_stake").as_int64() == 100000);
  r = node.call("GET", "/v1/markets?status=open");
  REQUIRE(r.status == 200);
  CHECK(body_of(r).at("markets").as_array().size() == 1);
  r = node.call("GET", "/v1/markets?status=settled");
  CHECK(body_of(r).at("markets").as_array().empty());
  r = node.call("GET", "/v1/markets/nope");
  CHECK(r.status == 404);
  CHECK(error_code(r) == "not_found");

  auto token = node.user("bob");
  REQUIRE(node.call("POST", "/v1/wallet/deposits", R"({"request_id":"d","amount":10000})", token)
            .status == 201);
  auto place = R"({"request_id":"b1","market_id":"m1","selection_id":"home","stake":1000,"price":"2.50","accept":"exact"})";
  auto first = node.call("POST", "/v1/bets", place, token);
  REQUIRE_MESSAGE(first.status == 201, first.body);
  auto bet = body_of(first);
  CHECK(bet.at("price").as_string() == "2.50");
  CHECK(bet.at("stake").as_int64() == 1000);
  CHECK(bet.at("potential_payout").as_int64() == 2500);
  CHECK(bet.at("status").as_string() == "open");
  auto bet_id = std::string{bet.at("bet_id").as_string()};
  auto replay = node.call("POST", "/v1/bets", place, token);
  CHECK(replay.status == 201);
  CHECK(replay.body == first.body);

  r = node.call("GET", "/v1/bets/" + bet_id, {}, token);
  REQUIRE(r.status == 200);
  CHECK(body_of(r) == bet);
  auto other = node.user("carol");
  r = node.call("GET", "/v1/bets/" + bet_id, {}, other);
  CHECK(r.status == 404);
  r = node.call("GET", "/v1/bets?status=open", {}, token);
  CHECK(body_of(r).at("bets").as_array().size() == 1);
  r = node.call("GET", "/v1/wallet", {}, token);
  CHECK(body_of(r).at("available").as_int64() == 9000);

  // The price moves: an exact bet at the old price is refused with the new one.
  r = node.call("POST", "/v1/admin/markets/m1/prices", R"({"prices":{"home":"2.60"}})", admin_key);
  REQUIRE_MESSAGE(r.status == 200, r.body);
  CHECK(body_of(r).at("version").as_int64() > m.at("version").as_int64());
  r = node.call("POST", "/v1/bets",
                R"({"request_id":"b2","market_id":"m1","selection_id":"home","stake":1000,"price":"2.50"})",
                token);
  CHECK(r.status == 409);
  CHECK(error_code(r) == "price_changed");
  CHECK(body_of(r).at("error").at("current_price").as_string() == "2.60");
  r = node.call("POST", "/v1/bets",
                R"({"request_id":"b3","market_id":"m1","selection_id":"home","stake":1001,"price":"2.50","accept":"better"})",
                token);
  REQUIRE_MESSAGE(r.status == 201, r.body);
  CHECK(body_of(r).at("price").as_string() == "2.60");
  CHECK(body_of(r).at("potential_payout").as_int64() == 2602); // floor(1001 * 2.60)

  r = node.call("POST", "/v1/bets",
                R"({"request_id":"b4","market_id":"m1","selection_id":"home","stake":100001,"price":"2.60"})",
                token);
  CHECK(r.status == 409); // more than the balance: insufficient funds first
  CHECK(error_code(r) == "insufficient_funds");

  r = node.call("POST", "/v1/admin/markets/m1/status", R"({"status":"closed"})", admin_key);
  REQUIRE(r.status == 200);
  r = node.call("POST", "/v1/admin/markets/m1/settle", R"({"winners":["home"]})", admin_key);
  REQUIRE_MESSAGE(r.status == 200, r.body);
  CHECK(body_of(r).at("status").as_string() == "settled");
  CHECK(wait_until([&] {
    auto s = node.call("GET", "/v1/bets?status=settled", {}, token);
    return s.status == 200 && body_of(s).at("bets").as_array().size() == 2;
  }, std::chrono::seconds{10}));
  r = node.call("GET", "/v1/bets/" + bet_id, {}, token);
  CHECK(body_of(r).at("status").as_string() == "won");
  CHECK(body_of(r).at("payout").as_int64() == 2500);
  CHECK(body_of(r).as_object().contains("settled_at"));
}

TEST_CASE("limits are set, read back and enforced") {
  api_node node;
  auto token = node.user("dave");
  auto r = node.call("PUT", "/v1/users/me/limits", R"({"daily_deposit_limit":5000})", token);
  REQUIRE_MESSAGE(r.status == 200, r.body);
  CHECK(body_of(r).at("daily_deposit_limit").as_int64() == 5000);
  r = node.call("POST", "/v1/wallet/deposits", R"({"request_id":"a","amount":6000})", token);
  CHECK(r.status == 422);
  CHECK(error_code(r) == "limit_exceeded");
  r = node.call("PUT", "/v1/users/me/limits", R"({"self_exclude_until":"2099-01-01T00:00:00Z"})",
                token);
  REQUIRE_MESSAGE(r.status == 200, r.body);
  CHECK(body_of(r).at("self_exclude_until").as_string() == "2099-01-01T00:00:00.000Z");
  r = node.call("POST", "/v1/wallet/deposits", R"({"request_id":"b","amount":100})", token);
  CHECK(r.status == 403);
  CHECK(error_code(r) == "self_excluded");
}

TEST_CASE("deposit and loss limits over three periods, a pending raise, a time-out") {
  api_node node;
  node.open_market("m1");
  auto token = node.user("erin");
  auto r = node.call("PUT", "/v1/users/me/limits",
                     R"({"deposit_limits":{"week":5000},"loss_limits":{"day":1000},)"
                     R"("reality_check_minutes":30})",
                     token);
  REQUIRE_MESSAGE(r.status == 200, r.body);
  auto l = body_of(r);
  CHECK(l.at("deposit_limits").at("week").as_int64() == 5000);
  CHECK(l.at("deposit_limits").at("day").is_null());
  CHECK(l.at("loss_limits").at("day").as_int64() == 1000);
  CHECK(l.at("reality_check_minutes").as_int64() == 30);
  CHECK(l.at("pending").is_null());
  // A higher limit waits 24 hours and shows as pending.
  r = node.call("PUT", "/v1/users/me/limits", R"({"deposit_limits":{"week":9000}})", token);
  REQUIRE_MESSAGE(r.status == 200, r.body);
  CHECK(body_of(r).at("deposit_limits").at("week").as_int64() == 5000);
  r = node.call("GET", "/v1/users/me/limits", {}, token);
  REQUIRE_MESSAGE(r.status == 200, r.body);
  auto pending = body_of(r).at("pending");
  CHECK(pending.at("deposit_limits").at("week").as_int64() == 9000);
  CHECK_FALSE(pending.as_object().contains("loss_limits"));
  CHECK(pending.at("effective_at").is_string());
  r = node.call("POST", "/v1/wallet/deposits", R"({"request_id":"a","amount":6000})", token);
  CHECK(r.status == 422);
  CHECK(error_code(r) == "limit_exceeded");
  CHECK(body_of(r).at("error").at("field").as_string() == "deposit_limits.week");
  r = node.call("POST", "/v1/wallet/deposits", R"({"request_id":"b","amount":5000})", token);
  REQUIRE_MESSAGE(r.status == 201, r.body);
  r = node.call("POST", "/v1/bets",
                R"({"request_id":"x","market_id":"m1","selection_id":"home","stake":1001,"price":"2.50"})",
                token);
  CHECK(r.status == 422);
  CHECK(body_of(r).at("error").at("field").as_string() == "loss_limits.day");
  // A time-out blocks bets and deposits; money in the wallet can be withdrawn.
  auto now = std::chrono::duration_cast<std::chrono::milliseconds>(
               std::chrono::system_clock::now().time_since_epoch())
               .count();
  auto until = format_time(now + 2 * int64_t{86'400'000});
  r = node.call("PUT", "/v1/users/me/limits", R"({"time_out_until":")" + until + R"("})", token);
  REQUIRE_MESSAGE(r.status == 200, r.body);
  CHECK(body_of(r).at("time_out_until").as_string() == until);
  r = node.call("POST", "/v1/bets",
                R"({"request_id":"y","market_id":"m1","selection_id":"home","stake":100,"price":"2.50"})",
                token);
  CHECK(r.status == 403);
  CHECK(error_code(r) == "self_excluded");
  r = node.call("POST", "/v1/wallet/withdrawals", R"({"request_id":"c","amount":5000})", token);
  CHECK(r.status == 201);
}

TEST_CASE("admin routes need the operator key, and health answers with it") {
  api_node node;
  auto r = node.call("GET", "/v1/admin/health", {}, admin_key);
  REQUIRE(r.status == 200);
  CHECK(body_of(r).at("node_id").as_string() == "test-node");
  CHECK(body_of(r).at("status").as_string() == "ready");
  auto token = node.user("eve");
  r = node.call("GET", "/v1/admin/health", {}, token);
  CHECK(r.status == 403);
  CHECK(error_code(r) == "forbidden");
  // Eve's sign-up and login made her user and session entities live.
  r = node.call("GET", "/v1/admin/health", {}, admin_key);
  REQUIRE(r.status == 200);
  auto health = body_of(r);
  auto& entities = health.at("entities").as_object();
  CHECK(entities.at("user").as_int64() == 1);
  CHECK(entities.at("session").as_int64() == 1);
  CHECK(entities.at("wallet").as_int64() == 0);
  CHECK(entities.at("market").as_int64() == 0);
  r = node.call("GET", "/v1/admin/health");
  CHECK(r.status == 401);
  r = node.call("POST", "/v1/admin/markets/m1/status", R"({"status":"open"})", "wrong-key");
  CHECK(r.status == 403);
}

// Regression (issue 19): a node without a cluster listed itself with its
// readiness ("ready") as its member status.
TEST_CASE("health on a node without a cluster lists the node as its one member, up or leaving") {
  auto options = test_api_options();
  auto draining = std::make_shared<std::atomic<bool>>(false);
  options.draining = [draining] { return draining->load(); };
  api_node node{options};
  auto member_status = [&] {
    auto r = node.call("GET", "/v1/admin/health", {}, admin_key);
    REQUIRE_MESSAGE(r.status == 200, r.body);
    auto health = body_of(r);
    auto& members = health.at("members").as_array();
    REQUIRE(members.size() == 1);
    CHECK(members[0].at("node_id").as_string() == "test-node");
    return std::pair{std::string{health.at("status").as_string()},
                     std::string{members[0].at("status").as_string()}};
  };
  CHECK(member_status() == std::pair<std::string, std::string>{"ready", "up"});
  draining->store(true);
  CHECK(member_status() == std::pair<std::string, std::string>{"draining", "leaving"});
}

TEST_CASE("without an operator key every admin route is forbidden") {
  auto options = test_api_options();
  options.admin_key.clear();
  api_node node{options};
  auto r = node.call("GET", "/v1/admin/health", {}, admin_key);
  CHECK(r.status == 403);
  CHECK(error_code(r) == "forbidden");
}

TEST_CASE("unknown routes are 404 and wrong methods 405") {
  api_node node;
  auto r = node.call("GET", "/v1/nothing");
  CHECK(r.status == 404);
  CHECK(error_code(r) == "not_found");
  r = node.call("GET", "/v1/users");
  CHECK(r.status == 405);
  CHECK(r.headers["allow"] == "POST");
  r = node.call("DELETE", "/v1/wallet");
  CHECK(r.status == 405);
  r = node.call("GET", "/v1/wallet/");
  CHECK(r.status == 404);
}

TEST_CASE("metrics count requests per route pattern and bets by outcome and reason") {
  api_node node;
  node.open_market("m1");
  REQUIRE(node.call("GET", "/v1/markets/m1").status == 200);
  REQUIRE(node.call("GET", "/v1/markets/nope").status == 404);
  REQUIRE(node.call("GET", "/v1/nothing").status == 404);
  auto token = node.user("bob");
  REQUIRE(node.call("POST", "/v1/wallet/deposits", R"({"request_id":"d","amount":1000})", token)
            .status == 201);
  auto bet = [&](const std::string& request, int stake) {
    return node.call("POST", "/v1/bets",
                     R"({"request_id":")" + request + R"(","market_id":"m1",)"
                       R"("selection_id":"home","stake":)" + std::to_string(stake)
                       + R"(,"price":"2.50","accept":"exact"})",
                     token);
  };
  REQUIRE(bet("b1", 600).status == 201);
  REQUIRE(bet("b2", 600).status == 409); // insufficient funds
  auto text = node.plat->metrics().render();
  // Ids never become labels: both market reads count under the pattern.
  CHECK(text.find(R"(wager_http_requests_total{method="GET",route="/v1/markets/{}",status="200"} 1)")
        != std::string::npos);
  CHECK(text.find(R"(wager_http_requests_total{method="GET",route="/v1/markets/{}",status="404"} 1)")
        != std::string::npos);
  CHECK(text.find(R"(wager_http_requests_total{method="GET",route="unmatched",status="404"} 1)")
        != std::string::npos);
  CHECK(text.find(R"(wager_http_request_seconds_count{route="/v1/bets"} 2)") != std::string::npos);
  CHECK(text.find(R"(wager_bets_total{outcome="accepted",reason=""} 1)") != std::string::npos);
  CHECK(text.find(R"(wager_bets_total{outcome="rejected",reason="insufficient_funds"} 1)")
        != std::string::npos);
  CHECK(text.find("m1") == std::string::npos);
}

namespace {

// Creates markets m000, m001, ... through the platform, all at once (the
// journal commits them in a few batches), and opens those in `open`.
void create_markets(api_node& node, int count, const std::set<int>& open) {
  auto name = [](int i) {
    auto n = std::to_string(i);
    return "m" + std::string(3 - std::min<size_t>(3, n.size()), '0') + n;
  };
  std::vector<std::future<caf::expected<market_view>>> created;
  for (int i = 0; i < count; ++i) {
    market_definition def{market_id{name(i)}, "A v B", "Match odds",
                          {{selection_id{"home"}, "A", parse_price("2.50").value()},
                           {selection_id{"away"}, "B", parse_price("1.80").value()}},
                          {money{100'000}, money{1'000'000}},
                          0};
    auto done = std::make_shared<std::promise<caf::expected<market_view>>>();
    created.push_back(done->get_future());
    node.plat->create_market(def, [done](caf::expected<market_view> m) {
      done->set_value(std::move(m));
    });
  }
  for (auto& f : created)
    REQUIRE(f.get());
  for (int i : open)
    REQUIRE(await<market_view>([&](auto done) {
      node.plat->set_market_status(market_id{name(i)}, market_status::open, done);
    }));
}

// Follows `next` from `target` until it is null; the market ids in order.
std::vector<std::string> all_pages(api_node& node, const std::string& target, int& pages) {
  std::vector<std::string> ids;
  std::string after;
  for (pages = 1; pages < 100; ++pages) {
    auto sep = target.find('?') == std::string::npos ? "?" : "&";
    auto r = node.call("GET", target + (after.empty() ? "" : sep + std::string{"after="} + after));
    REQUIRE_MESSAGE(r.status == 200, r.body);
    auto body = body_of(r);
    for (auto& m : body.at("markets").as_array())
      ids.emplace_back(m.at("market_id").as_string());
    if (body.at("next").is_null())
      return ids;
    after = std::string{body.at("next").as_string()};
  }
  FAIL("next never became null");
  return ids;
}

} // namespace

// Regression (issue 19): the list read the first 500 markets by id, then
// filtered, so open markets after them never appeared.
TEST_CASE("markets?status=open finds open markets after the first 500 ids") {
  api_node node;
  create_markets(node, 520, {510, 515, 519});
  auto r = node.call("GET", "/v1/markets?status=open");
  REQUIRE_MESSAGE(r.status == 200, r.body);
  auto body = body_of(r);
  std::vector<std::string> ids;
  for (auto& m : body.at("markets").as_array())
    ids.emplace_back(m.at("market_id").as_string());
  CHECK(ids == std::vector<std::string>{"m510", "m515", "m519"});
  CHECK(body.at("next").is_null());
}

TEST_CASE("market lists are paginated by limit and after, the filter before the limit") {
  auto options = test_api_options();
  // A small scan bound makes a filtered page come back short, with next.
  options.markets_scan_max = 4;
  options.list_limit_max = 5;
  api_node node{options};
  create_markets(node, 12, {3, 8, 9, 11});

  auto r = node.call("GET", "/v1/markets?status=open&limit=2");
  REQUIRE_MESSAGE(r.status == 200, r.body);
  auto body = body_of(r);
  CHECK(body.at("markets").as_array().size() == 1); // m003; the scan stopped at m003
  CHECK(body.at("next").as_string() == "m003");

  int pages = 0;
  CHECK(all_pages(node, "/v1/markets?status=open&limit=2", pages) ==
        std::vector<std::string>{"m003", "m008", "m009", "m011"});
  auto all = all_pages(node, "/v1/markets?limit=3", pages);
  CHECK(all.size() == 12);
  CHECK(std::is_sorted(all.begin(), all.end()));
  CHECK(pages == 4);

  r = node.call("GET", "/v1/markets?limit=6");
  CHECK(r.status == 400);
  CHECK(error_code(r) == "invalid_field");
  CHECK(error_field(r) == "limit");
  r = node.call("GET", "/v1/markets?limit=0");
  CHECK(error_field(r) == "limit");
  r = node.call("GET", "/v1/markets?after=not%20an%20id");
  CHECK(error_field(r) == "after");
}

TEST_CASE("transactions and bets are paginated by limit and before, with next") {
  api_node node;
  node.open_market("m1");
  auto token = node.user("paula");
  for (int i = 0; i < 5; ++i)
    REQUIRE(node.call("POST", "/v1/wallet/deposits",
                      R"({"request_id":"d)" + std::to_string(i) + R"(","amount":1000})", token)
              .status == 201);
  auto r = node.call("GET", "/v1/wallet/transactions?limit=3", {}, token);
  REQUIRE_MESSAGE(r.status == 200, r.body);
  auto page = body_of(r);
  REQUIRE(page.at("transactions").as_array().size() == 3);
  auto next = std::string{page.at("next").as_string()};
  CHECK(next == std::string{page.at("transactions").as_array()[2].at("transaction_id").as_string()});
  r = node.call("GET", "/v1/wallet/transactions?limit=3&before=" + next, {}, token);
  page = body_of(r);
  CHECK(page.at("transactions").as_array().size() == 2);
  CHECK(page.at("next").is_null());

  for (int i = 0; i < 3; ++i)
    REQUIRE(node.call("POST", "/v1/bets",
                      R"({"request_id":"b)" + std::to_string(i) +
                        R"(","market_id":"m1","selection_id":"home","stake":100,"price":"2.50"})",
                      token)
              .status == 201);
  r = node.call("GET", "/v1/bets?status=open&limit=2", {}, token);
  REQUIRE_MESSAGE(r.status == 200, r.body);
  page = body_of(r);
  REQUIRE(page.at("bets").as_array().size() == 2);
  next = std::string{page.at("next").as_string()};
  r = node.call("GET", "/v1/bets?status=open&limit=2&before=" + next, {}, token);
  page = body_of(r);
  CHECK(page.at("bets").as_array().size() == 1);
  CHECK(page.at("next").is_null());
  r = node.call("GET", "/v1/bets?limit=1001", {}, token);
  CHECK(error_field(r) == "limit");
}

TEST_CASE("market and bet reads show prices as fractional or American odds when asked") {
  api_node node;
  node.open_market("m1");
  auto selection = [](const json::value& market, size_t i) {
    return market.at("selections").as_array()[i].as_object();
  };
  auto r = node.call("GET", "/v1/markets/m1?odds=fractional");
  REQUIRE_MESSAGE(r.status == 200, r.body);
  auto m = body_of(r);
  CHECK(selection(m, 0).at("price").as_string() == "2.50");
  CHECK(selection(m, 0).at("price_fractional").as_string() == "6/4");
  CHECK(selection(m, 1).at("price_fractional").as_string() == "4/5");
  CHECK_FALSE(selection(m, 0).contains("price_american"));
  r = node.call("GET", "/v1/markets/m1?odds=american");
  m = body_of(r);
  CHECK(selection(m, 0).at("price_american").as_string() == "+150");
  CHECK(selection(m, 1).at("price_american").as_string() == "-125");
  CHECK_FALSE(selection(m, 0).contains("price_fractional"));
  // Decimal, asked or not, adds nothing.
  for (auto path : {"/v1/markets/m1", "/v1/markets/m1?odds=decimal"}) {
    m = body_of(node.call("GET", path));
    CHECK_FALSE(selection(m, 0).contains("price_fractional"));
    CHECK_FALSE(selection(m, 0).contains("price_american"));
  }
  r = node.call("GET", "/v1/markets?status=open&odds=fractional");
  REQUIRE_MESSAGE(r.status == 200, r.body);
  CHECK(selection(body_of(r).at("markets").as_array()[0], 0).at("price_fractional").as_string()
        == "6/4");

  auto token = node.user("fran");
  REQUIRE(node.call("POST", "/v1/wallet/deposits", R"({"request_id":"d","amount":10000})", token)
            .status == 201);
  r = node.call("POST", "/v1/bets",
                R"({"request_id":"b1","market_id":"m1","selection_id":"away","stake":1000,"price":"1.80"})",
                token);
  REQUIRE_MESSAGE(r.status == 201, r.body);
  auto bet_id = std::string{body_of(r).at("bet_id").as_string()};
  r = node.call("GET", "/v1/bets/" + bet_id + "?odds=fractional", {}, token);
  REQUIRE_MESSAGE(r.status == 200, r.body);
  CHECK(body_of(r).at("price").as_string() == "1.80");
  CHECK(body_of(r).at("price_fractional").as_string() == "4/5");
  r = node.call("GET", "/v1/bets?odds=american", {}, token);
  REQUIRE_MESSAGE(r.status == 200, r.body);
  CHECK(body_of(r).at("bets").as_array()[0].at("price_american").as_string() == "-125");

  // Any other form is refused, naming the parameter, on every read that takes it.
  for (auto& path : std::vector<std::string>{"/v1/markets/m1?odds=uk", "/v1/markets?odds=",
                                             "/v1/bets/" + bet_id + "?odds=US",
                                             "/v1/bets?odds=fractional&odds=american"}) {
    CAPTURE(path);
    r = node.call("GET", path, {}, token);
    CHECK(r.status == 400);
    CHECK(error_code(r) == "invalid_field");
    CHECK(error_field(r) == "odds");
  }
}

TEST_CASE("every transaction and settled bet stays readable after the wallet's memory lets it go") {
  api_node node;
  node.open_market("m1");
  auto token = node.user("hilda");
  auto other = node.user("otto");
  auto login = node.call("POST", "/v1/sessions",
                         R"({"username":"hilda","password":"correct horse"})");
  REQUIRE(login.status == 201);
  user_id hilda{std::string{body_of(login).at("user_id").as_string()}};
  REQUIRE(node.call("POST", "/v1/wallet/deposits", R"({"request_id":"d","amount":100000})", token)
            .status == 201);
  // More settled bets, and more ledger lines, than a wallet keeps in memory:
  // placed through the platform, in waves under the wallet's holds_max.
  const int bets = static_cast<int>(wallet_settled_bets_max) + 5;
  std::vector<std::string> placed;
  for (int wave = 0; wave < bets; wave += 50) {
    std::vector<std::future<caf::expected<bet>>> answers;
    for (int i = wave; i < std::min(bets, wave + 50); ++i) {
      auto done = std::make_shared<std::promise<caf::expected<bet>>>();
      answers.push_back(done->get_future());
      node.plat->place_bet(hilda,
                           place_bet_cmd{request_id{"b" + std::to_string(i)}, market_id{"m1"},
                                         selection_id{"home"}, money{10}, price{250},
                                         accept_policy::exact},
                           [done](caf::expected<bet> r) { done->set_value(std::move(r)); });
    }
    for (auto& a : answers) {
      auto b = a.get();
      REQUIRE(b);
      placed.push_back(b->id.value);
    }
  }
  auto r = node.call("POST", "/v1/admin/markets/m1/settle", R"({"winners":["away"]})",
                     admin_key);
  REQUIRE_MESSAGE(r.status == 200, r.body);
  REQUIRE(wait_until([&] {
    auto open = node.call("GET", "/v1/bets?status=open", {}, token);
    return open.status == 200 && body_of(open).at("bets").as_array().empty();
  }, std::chrono::seconds{60}));

  // The ledger: one deposit and a stake per bet (lost bets pay nothing).
  std::vector<std::string> ids;
  std::string cursor;
  for (;;) {
    r = node.call("GET", "/v1/wallet/transactions?limit=1000" +
                           (cursor.empty() ? "" : "&before=" + cursor), {}, token);
    REQUIRE_MESSAGE(r.status == 200, r.body);
    auto page = body_of(r);
    for (auto& t : page.at("transactions").as_array())
      ids.emplace_back(t.at("transaction_id").as_string());
    if (page.at("next").is_null())
      break;
    cursor = std::string{page.at("next").as_string()};
  }
  REQUIRE(ids.size() == static_cast<size_t>(bets + 1));
  CHECK(ids.back() == "t1");

  // The settled bets: a full page from memory, then the rest from history.
  std::set<std::string> settled;
  r = node.call("GET", "/v1/bets?status=settled&limit=1000", {}, token);
  REQUIRE_MESSAGE(r.status == 200, r.body);
  auto page = body_of(r);
  REQUIRE(page.at("bets").as_array().size() == 1000);
  for (auto& b : page.at("bets").as_array())
    settled.emplace(b.at("bet_id").as_string());
  REQUIRE(page.at("next").is_string());
  r = node.call("GET", "/v1/bets?status=settled&limit=1000&before=" +
                         std::string{page.at("next").as_string()}, {}, token);
  REQUIRE_MESSAGE(r.status == 200, r.body);
  page = body_of(r);
  REQUIRE(page.at("bets").as_array().size() == 5);
  CHECK(page.at("next").is_null());
  for (auto& b : page.at("bets").as_array())
    settled.emplace(b.at("bet_id").as_string());
  CHECK(settled == std::set<std::string>(placed.begin(), placed.end()));

  // The first bet, by id, settled long ago; only its owner sees it.
  r = node.call("GET", "/v1/bets/" + placed.front(), {}, token);
  REQUIRE_MESSAGE(r.status == 200, r.body);
  CHECK(body_of(r).at("status").as_string() == "lost");
  CHECK(node.call("GET", "/v1/bets/" + placed.front(), {}, other).status == 404);
  CHECK(node.call("GET", "/v1/bets/b-unknown", {}, token).status == 404);
  r = node.call("GET", "/v1/bets?status=settled&before=b-unknown", {}, token);
  CHECK(r.status == 400);
  CHECK(error_field(r) == "before");
}
