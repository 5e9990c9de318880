// Cash-out over the client API ("Version 1.1" of the API): GET and POST
// /v1/bets/{bet_id}/cashout, a moved price answered with a fresh quote, and
// bad requests refused with nothing paid.

#include "api_support.hpp"

#include "support/wait.hpp"
#include "wager/actors/ledger_audit.hpp"

#include <chrono>
#include <string>

using namespace wager;
using namespace wager::test;

namespace {

int64_t available(api_node& node, const std::string& token) {
  auto r = node.call("GET", "/v1/wallet", {}, token);
  REQUIRE(r.status == 200);
  return body_of(r).at("available").as_int64();
}

} // namespace

TEST_CASE("a bet is quoted and cashed out over the API, in part and then in full") {
  api_node node;
  node.open_market("m1"); // home 2.50, away 1.80
  auto token = node.user("ann");
  REQUIRE(node.call("POST", "/v1/wallet/deposits", R"({"request_id":"d","amount":10000})", token)
            .status == 201);
  auto r = node.call("POST", "/v1/bets",
                     R"({"request_id":"b1","market_id":"m1","selection_id":"home","stake":1000,"price":"2.50"})",
                     token);
  REQUIRE_MESSAGE(r.status == 201, r.body);
  auto id = std::string{body_of(r).at("bet_id").as_string()};

  r = node.call("GET", "/v1/bets/" + id + "/cashout", {}, token);
  REQUIRE_MESSAGE(r.status == 200, r.body);
  auto q = body_of(r);
  CHECK(q.at("bet_id").as_string() == id);
  // 10.00 x 2.50 / 2.50 x 0.95.
  CHECK(q.at("amount").as_int64() == 950);
  CHECK(q.at("expires_at").as_string().size() > 10);
  auto quote_id = std::string{q.at("quote_id").as_string()};

  // Bad bodies change nothing.
  for (auto body : {std::string{R"({"request_id":"c0","quote_id":")"} + quote_id + R"(","fraction":0})",
                    std::string{R"({"request_id":"c0","quote_id":")"} + quote_id + R"(","fraction":1.5})",
                    std::string{R"({"request_id":"c0","quote_id":")"} + quote_id + R"(","fraction":"half"})",
                    std::string{R"({"request_id":"c0","quote_id":")"} + quote_id + R"(","fraction":0.12345})"}) {
    r = node.call("POST", "/v1/bets/" + id + "/cashout", body, token);
    CHECK_MESSAGE(r.status == 400, body << " -> " << r.body);
    CHECK(error_field(r) == "fraction");
  }
  r = node.call("POST", "/v1/bets/" + id + "/cashout",
                R"({"request_id":"c0","quote_id":")" + quote_id + R"(","amount":950})", token);
  CHECK(r.status == 400);
  CHECK(error_code(r) == "unknown_field");
  r = node.call("GET", "/v1/bets/b-nothing-here/cashout", {}, token);
  CHECK(r.status == 404);
  CHECK(available(node, token) == 9000);

  // Half of it.
  r = node.call("POST", "/v1/bets/" + id + "/cashout",
                R"({"request_id":"c1","quote_id":")" + quote_id + R"(","fraction":0.5})", token);
  REQUIRE_MESSAGE(r.status == 201, r.body);
  auto bet = body_of(r);
  CHECK(bet.at("status").as_string() == "open");
  CHECK(bet.at("stake").as_int64() == 500);
  CHECK(bet.at("cashed_out").as_int64() == 475);
  CHECK(available(node, token) == 9000 + 475);

  // The price moves: the old quote is refused with a fresh one.
  r = node.call("POST", "/v1/admin/markets/m1/prices", R"({"prices":{"home":"5.00"}})", admin_key);
  REQUIRE_MESSAGE(r.status == 200, r.body);
  r = node.call("GET", "/v1/bets/" + id + "/cashout", {}, token);
  REQUIRE(r.status == 200);
  auto stale = std::string{body_of(r).at("quote_id").as_string()};
  r = node.call("POST", "/v1/admin/markets/m1/prices", R"({"prices":{"home":"2.00"}})", admin_key);
  REQUIRE(r.status == 200);
  r = node.call("POST", "/v1/bets/" + id + "/cashout",
                R"({"request_id":"c2","quote_id":")" + stale + R"("})", token);
  REQUIRE(r.status == 409);
  CHECK(error_code(r) == "price_changed");
  auto fresh = body_of(r).at("error").at("quote");
  // 5.00 x 2.50 / 2.00 x 0.95 = 5.9375, rounded down.
  CHECK(fresh.at("amount").as_int64() == 593);
  CHECK(available(node, token) == 9000 + 475);

  // The rest, at the fresh quote.
  r = node.call("POST", "/v1/bets/" + id + "/cashout",
                R"({"request_id":"c3","quote_id":")" + std::string{fresh.at("quote_id").as_string()}
                  + R"("})",
                token);
  REQUIRE_MESSAGE(r.status == 201, r.body);
  bet = body_of(r);
  CHECK(bet.at("status").as_string() == "cashed_out");
  CHECK(bet.at("payout").as_int64() == 475 + 593);
  CHECK(available(node, token) == 9000 + 475 + 593);
  // Nothing left: no quote.
  r = node.call("GET", "/v1/bets/" + id + "/cashout", {}, token);
  CHECK(r.status == 409);
  CHECK(error_code(r) == "cashout_unavailable");

  // A suspended market quotes nothing.
  r = node.call("POST", "/v1/bets",
                R"({"request_id":"b2","market_id":"m1","selection_id":"away","stake":1000,"price":"1.80"})",
                token);
  REQUIRE_MESSAGE(r.status == 201, r.body);
  auto second = std::string{body_of(r).at("bet_id").as_string()};
  r = node.call("POST", "/v1/admin/markets/m1/status", R"({"status":"suspended"})", admin_key);
  REQUIRE(r.status == 200);
  r = node.call("GET", "/v1/bets/" + second + "/cashout", {}, token);
  CHECK(r.status == 409);
  CHECK(error_code(r) == "cashout_unavailable");

  auto report = audit_ledger(node.plat->journal());
  REQUIRE(report);
  for (auto& v : report->violations)
    FAIL_CHECK(v.to_string());
}
