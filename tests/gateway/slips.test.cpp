// Bet slips over the client API ("Version 1.1" of the API): POST /v1/bets
// with a type and legs, the slip as a bet shows it, its settlement through
// real markets and wallets, and bad slips refused with nothing held.

#include "api_support.hpp"

#include "support/wait.hpp"
#include "wager/actors/ledger_audit.hpp"

#include <chrono>
#include <string>

using namespace wager;
using namespace wager::test;

namespace {

// An open market `id` whose selection "home" is at `home` and "away" at 2.00.
void open_at(api_node& node, const std::string& id, const std::string& home,
             const std::string& each_way = {}) {
  auto r = node.call("POST", "/v1/admin/markets",
                     R"({"market_id":")" + id + R"(","event":"E )" + id + R"(","name":"Winner",)"
                       R"("selections":[{"selection_id":"home","name":"Home","price":")" + home
                       + R"("},{"selection_id":"away","name":"Away","price":"2.00"}],)"
                       R"("limits":{"max_stake":100000,"max_liability":10000000})"
                       + each_way + "}",
                     admin_key);
  REQUIRE_MESSAGE(r.status == 201, r.body);
  r = node.call("POST", "/v1/admin/markets/" + id + "/status", R"({"status":"open"})", admin_key);
  REQUIRE_MESSAGE(r.status == 200, r.body);
}

void settle_home(api_node& node, const std::string& id, const std::string& winner = "home") {
  auto r = node.call("POST", "/v1/admin/markets/" + id + "/status", R"({"status":"closed"})",
                     admin_key);
  REQUIRE_MESSAGE(r.status == 200, r.body);
  r = node.call("POST", "/v1/admin/markets/" + id + "/settle",
                R"({"winners":[")" + winner + R"("]})", admin_key);
  REQUIRE_MESSAGE(r.status == 200, r.body);
}

std::string leg(const std::string& market, const std::string& price) {
  return R"({"market_id":")" + market + R"(","selection_id":"home","price":")" + price + R"("})";
}

http_result place(api_node& node, const std::string& token, const std::string& request,
                  const std::string& type, const std::string& legs, int64_t stake,
                  const std::string& extra = {}) {
  return node.call("POST", "/v1/bets",
                   R"({"request_id":")" + request + R"(","type":")" + type + R"(","legs":[)"
                     + legs + R"(],"stake":)" + std::to_string(stake) + extra + "}",
                   token);
}

json::value settled_bet(api_node& node, const std::string& token, const std::string& id) {
  json::value bet;
  REQUIRE(wait_until([&] {
    auto r = node.call("GET", "/v1/bets/" + id, {}, token);
    if (r.status != 200)
      return false;
    bet = body_of(r);
    return bet.at("status").as_string() != "open";
  }, std::chrono::seconds{10}));
  return bet;
}

int64_t available(api_node& node, const std::string& token) {
  auto r = node.call("GET", "/v1/wallet", {}, token);
  REQUIRE(r.status == 200);
  return body_of(r).at("available").as_int64();
}

void audit_is_clean(api_node& node) {
  auto report = audit_ledger(node.plat->journal());
  REQUIRE_MESSAGE(report, message_of(report.error()));
  for (auto& v : report->violations)
    FAIL_CHECK(v.stream << " seq " << v.seq << ": " << v.code << ": " << v.message);
  CHECK(report->ok());
}

} // namespace

TEST_CASE("an accumulator over the API: held once, shown with its legs, paid 90.00") {
  api_node node;
  open_at(node, "m1", "2.00");
  open_at(node, "m2", "3.00");
  open_at(node, "m3", "1.50");
  auto token = node.user("bob");
  REQUIRE(node.call("POST", "/v1/wallet/deposits", R"({"request_id":"d","amount":10000})", token)
            .status == 201);
  auto r = place(node, token, "acc1", "accumulator",
                 leg("m1", "2.00") + "," + leg("m2", "3.00") + "," + leg("m3", "1.50"), 1000);
  REQUIRE_MESSAGE(r.status == 201, r.body);
  auto bet = body_of(r);
  CHECK(bet.at("type").as_string() == "accumulator");
  CHECK(bet.at("lines").as_int64() == 1);
  CHECK(bet.at("stake").as_int64() == 1000);
  CHECK(bet.at("total_stake").as_int64() == 1000);
  CHECK(bet.at("potential_payout").as_int64() == 9000);
  CHECK(bet.at("each_way").as_bool() == false);
  CHECK(bet.at("status").as_string() == "open");
  auto& legs = bet.at("legs").as_array();
  REQUIRE(legs.size() == 3);
  CHECK(legs[1].at("market_id").as_string() == "m2");
  CHECK(legs[1].at("selection_id").as_string() == "home");
  CHECK(legs[1].at("price").as_string() == "3.00");
  CHECK(legs[1].at("result").as_string() == "open");
  auto id = std::string{bet.at("bet_id").as_string()};
  CHECK(available(node, token) == 9000);
  // The same request again: the same bet, nothing more held.
  r = place(node, token, "acc1", "accumulator",
            leg("m1", "2.00") + "," + leg("m2", "3.00") + "," + leg("m3", "1.50"), 1000);
  REQUIRE(r.status == 201);
  CHECK(body_of(r).at("bet_id").as_string() == id);
  CHECK(available(node, token) == 9000);
  // Open bets list it.
  r = node.call("GET", "/v1/bets?status=open", {}, token);
  REQUIRE_MESSAGE(r.status == 200, r.body);
  CHECK(r.body.find(id) != std::string::npos);
  settle_home(node, "m1");
  settle_home(node, "m2");
  settle_home(node, "m3");
  auto done = settled_bet(node, token, id);
  CHECK(done.at("status").as_string() == "won");
  CHECK(done.at("payout").as_int64() == 9000);
  for (auto& l : done.at("legs").as_array())
    CHECK(l.at("result").as_string() == "won");
  CHECK(available(node, token) == 18000);
  audit_is_clean(node);
}

TEST_CASE("a Yankee over the API holds 11 stakes, and odds formats show on each leg") {
  api_node node;
  for (auto [m, p] : {std::pair{"m1", "2.50"}, {"m2", "1.50"}, {"m3", "3.00"}, {"m4", "2.00"}})
    open_at(node, m, p);
  auto token = node.user("ann");
  REQUIRE(node.call("POST", "/v1/wallet/deposits", R"({"request_id":"d","amount":10000})", token)
            .status == 201);
  auto r = place(node, token, "y1", "yankee",
                 leg("m1", "2.50") + "," + leg("m2", "1.50") + "," + leg("m3", "3.00") + ","
                   + leg("m4", "2.00"),
                 100);
  REQUIRE_MESSAGE(r.status == 201, r.body);
  auto bet = body_of(r);
  CHECK(bet.at("lines").as_int64() == 11);
  CHECK(bet.at("total_stake").as_int64() == 1100);
  CHECK(available(node, token) == 10000 - 1100);
  auto id = std::string{bet.at("bet_id").as_string()};
  r = node.call("GET", "/v1/bets/" + id + "?odds=fractional", {}, token);
  REQUIRE(r.status == 200);
  auto read = body_of(r);
  auto& legs = read.at("legs").as_array();
  CHECK(legs[0].at("price_fractional").as_string() == "6/4");
  CHECK(legs[1].at("price_fractional").as_string() == "1/2");
}

TEST_CASE("a single in the version 1.1 body is the version 1 single") {
  api_node node;
  open_at(node, "m1", "2.50");
  auto token = node.user("cat");
  REQUIRE(node.call("POST", "/v1/wallet/deposits", R"({"request_id":"d","amount":10000})", token)
            .status == 201);
  auto r = place(node, token, "s1", "single", leg("m1", "2.50"), 1000);
  REQUIRE_MESSAGE(r.status == 201, r.body);
  auto bet = body_of(r);
  CHECK(bet.at("type").as_string() == "single");
  CHECK(bet.at("market_id").as_string() == "m1");
  CHECK(bet.at("selection_id").as_string() == "home");
  CHECK(bet.at("price").as_string() == "2.50");
  CHECK(bet.at("lines").as_int64() == 1);
  REQUIRE(bet.at("legs").as_array().size() == 1);
  CHECK(bet.at("legs").as_array()[0].at("result").as_string() == "open");
  // A version 1 body shows the same shape.
  r = node.call("POST", "/v1/bets",
                R"({"request_id":"s2","market_id":"m1","selection_id":"home","stake":100,"price":"2.50"})",
                token);
  REQUIRE_MESSAGE(r.status == 201, r.body);
  CHECK(body_of(r).at("type").as_string() == "single");
  CHECK(body_of(r).at("legs").as_array().size() == 1);
}

TEST_CASE("bad slips are refused with the field at fault, and nothing is held") {
  api_node node;
  open_at(node, "m1", "2.00");
  open_at(node, "m2", "3.00");
  open_at(node, "m3", "1.50");
  open_at(node, "race", "6.00", R"(,"each_way":{"places":3,"fraction":"1/4"})");
  auto token = node.user("dan");
  REQUIRE(node.call("POST", "/v1/wallet/deposits", R"({"request_id":"d","amount":10000})", token)
            .status == 201);
  struct bad {
    std::string what;
    http_result r;
    int status;
    std::string code;
    std::string field;
  };
  std::vector<bad> cases;
  auto two = leg("m1", "2.00") + "," + leg("m2", "3.00");
  cases.push_back({"two legs on one market",
                   place(node, token, "b1", "accumulator", leg("m1", "2.00") + "," + leg("m1", "2.00"),
                         100),
                   422, "invalid_field", "legs"});
  cases.push_back({"an unknown system name", place(node, token, "b2", "yankee15", two, 100), 400,
                   "invalid_field", "type"});
  cases.push_back({"a Trixie of two legs", place(node, token, "b3", "trixie", two, 100), 422,
                   "invalid_field", "legs"});
  cases.push_back({"each-way where a market has no terms",
                   place(node, token, "b4", "accumulator", leg("race", "6.00") + "," + leg("m2", "3.00"),
                         100, R"(,"each_way":true)"),
                   422, "invalid_field", "each_way"});
  cases.push_back({"a leg with an unknown field",
                   place(node, token, "b5", "accumulator",
                         R"({"market_id":"m1","selection_id":"home","price":"2.00","odds":2},)"
                           + leg("m2", "3.00"),
                         100),
                   400, "invalid_field", "legs"});
  cases.push_back({"a leg without a price",
                   place(node, token, "b6", "accumulator",
                         R"({"market_id":"m1","selection_id":"home"},)" + leg("m2", "3.00"), 100),
                   400, "invalid_field", "legs"});
  cases.push_back({"no legs", place(node, token, "b7", "accumulator", "", 100), 400,
                   "invalid_field", "legs"});
  cases.push_back({"a stake of nothing", place(node, token, "b8", "accumulator", two, 0), 400,
                   "invalid_field", "stake"});
  cases.push_back({"a slip over the balance", place(node, token, "b9", "accumulator", two, 20000),
                   409, "insufficient_funds", ""});
  cases.push_back({"market_id beside legs",
                   node.call("POST", "/v1/bets",
                             R"({"request_id":"b10","type":"accumulator","market_id":"m1","legs":[)"
                               + two + R"(],"stake":100})",
                             token),
                   400, "unknown_field", "market_id"});
  for (auto& c : cases) {
    CAPTURE(c.what);
    CHECK_MESSAGE(c.r.status == c.status, c.r.body);
    CHECK(error_code(c.r) == c.code);
    if (!c.field.empty())
      CHECK(error_field(c.r) == c.field);
  }
  CHECK(available(node, token) == 10000);
  audit_is_clean(node);
}

TEST_CASE("a market's max_payout caps its slips and shows under limits") {
  api_node node;
  auto create = [&](const std::string& id, const std::string& limits) {
    return node.call("POST", "/v1/admin/markets",
                     R"({"market_id":")" + id + R"(","event":"E","name":"Winner",)"
                       R"("selections":[{"selection_id":"home","name":"Home","price":"10.00"},)"
                       R"({"selection_id":"away","name":"Away","price":"2.00"}],"limits":)"
                       + limits + "}",
                     admin_key);
  };
  auto r = create("capped", R"({"max_stake":100000,"max_liability":10000000,"max_payout":30000})");
  REQUIRE_MESSAGE(r.status == 201, r.body);
  CHECK(body_of(r).at("limits").at("max_payout").as_int64() == 30000);
  r = node.call("GET", "/v1/markets/capped");
  REQUIRE(r.status == 200);
  CHECK(body_of(r).at("limits").at("max_payout").as_int64() == 30000);
  for (auto bad : {R"({"max_stake":100000,"max_liability":10000000,"max_payout":0})",
                   R"({"max_stake":100000,"max_liability":10000000,"max_payout":"30000"})"}) {
    r = create("bad", bad);
    CHECK_MESSAGE(r.status == 400, bad);
    CHECK(error_code(r) == "invalid_field");
    CHECK(error_field(r) == "limits");
  }
  r = node.call("POST", "/v1/admin/markets/capped/status", R"({"status":"open"})", admin_key);
  REQUIRE(r.status == 200);
  open_at(node, "free", "10.00");
  auto token = node.user("eve");
  REQUIRE(node.call("POST", "/v1/wallet/deposits", R"({"request_id":"d","amount":10000})", token)
            .status == 201);
  r = place(node, token, "c1", "accumulator",
            R"({"market_id":"capped","selection_id":"home","price":"10.00"},)"
              + leg("free", "10.00"),
            1000);
  REQUIRE_MESSAGE(r.status == 201, r.body);
  CHECK(body_of(r).at("max_payout").as_int64() == 30000);
  CHECK(body_of(r).at("potential_payout").as_int64() == 30000);
}
