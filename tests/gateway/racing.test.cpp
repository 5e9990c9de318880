// Racing rules over the client API: each-way terms on a market, results with
// placed and void runners, dead heats, Rule 4, and non-runners, paid to the
// minor unit through real wallets.

#include "api_support.hpp"

#include "support/wait.hpp"
#include "wager/actors/ledger_audit.hpp"
#include "wager/runtime/rfc3339.hpp"

#include <chrono>
#include <string>
#include <thread>

using namespace wager;
using namespace wager::test;

namespace {

int64_t wall_now_ms() {
  using namespace std::chrono;
  return duration_cast<milliseconds>(system_clock::now().time_since_epoch()).count();
}

// A race `id` with runners a 6.00, b 5.00, c 11.00 and d 3.00, open, with
// each-way terms of 3 places at 1/4 unless `each_way` is false.
void open_race(api_node& node, const std::string& id, bool each_way = true) {
  std::string terms = each_way ? R"(,"each_way":{"places":3,"fraction":"1/4"})" : "";
  auto r = node.call("POST", "/v1/admin/markets",
                     R"({"market_id":")" + id + R"(","event":"Aintree 15:00","name":"Win",)"
                       R"("selections":[{"selection_id":"a","name":"A","price":"6.00"},)"
                       R"({"selection_id":"b","name":"B","price":"5.00"},)"
                       R"({"selection_id":"c","name":"C","price":"11.00"},)"
                       R"({"selection_id":"d","name":"D","price":"3.00"}],)"
                       R"("limits":{"max_stake":100000,"max_liability":10000000})"
                       + terms + "}",
                     admin_key);
  REQUIRE_MESSAGE(r.status == 201, r.body);
  r = node.call("POST", "/v1/admin/markets/" + id + "/status", R"({"status":"open"})", admin_key);
  REQUIRE_MESSAGE(r.status == 200, r.body);
}

std::string bet_on(api_node& node, const std::string& token, const std::string& request,
                   const std::string& market, const std::string& selection,
                   const std::string& price, int64_t stake = 1000) {
  auto r = node.call("POST", "/v1/bets",
                     R"({"request_id":")" + request + R"(","market_id":")" + market
                       + R"(","selection_id":")" + selection + R"(","stake":)"
                       + std::to_string(stake) + R"(,"price":")" + price + R"("})",
                     token);
  REQUIRE_MESSAGE(r.status == 201, r.body);
  return std::string{body_of(r).at("bet_id").as_string()};
}

// The bet once it is no longer open.
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

// The money audit of the node's journal (what `wagerctl verify` runs): no
// money created or lost, every payout as the result owes it.
void audit_is_clean(api_node& node) {
  auto report = audit_ledger(node.plat->journal());
  REQUIRE_MESSAGE(report, message_of(report.error()));
  for (auto& v : report->violations)
    FAIL_CHECK(v.stream << " seq " << v.seq << ": " << v.code << ": " << v.message);
  CHECK(report->ok());
}

void close_market(api_node& node, const std::string& id) {
  auto r = node.call("POST", "/v1/admin/markets/" + id + "/status", R"({"status":"closed"})",
                     admin_key);
  REQUIRE_MESSAGE(r.status == 200, r.body);
}

} // namespace

TEST_CASE("a race settles placed and void runners and a dead heat, to the minor unit") {
  api_node node;
  open_race(node, "r1");
  auto r = node.call("GET", "/v1/markets/r1");
  REQUIRE(r.status == 200);
  CHECK(body_of(r).at("each_way") == json::parse(R"({"places":3,"fraction":"1/4"})"));
  auto token = node.user("bob");
  REQUIRE(node.call("POST", "/v1/wallet/deposits", R"({"request_id":"d","amount":100000})", token)
            .status == 201);
  auto on_a = bet_on(node, token, "b-a", "r1", "a", "6.00");
  auto on_b = bet_on(node, token, "b-b", "r1", "b", "5.00");
  auto on_c = bet_on(node, token, "b-c", "r1", "c", "11.00");
  auto on_d = bet_on(node, token, "b-d", "r1", "d", "3.00");
  close_market(node, "r1");
  r = node.call("POST", "/v1/admin/markets/r1/settle",
                R"({"results":{"a":"won","b":"won","c":"placed","d":"void"},"dead_heat":{"a":"1/2","b":"1/2"}})",
                admin_key);
  REQUIRE_MESSAGE(r.status == 200, r.body);
  CHECK(body_of(r).at("status").as_string() == "settled");
  // 10.00 win at 6.00 in a dead heat for first between two: 10.00 x 1/2 x 6.00.
  auto a = settled_bet(node, token, on_a);
  CHECK(a.at("status").as_string() == "won");
  CHECK(a.at("payout").as_int64() == 3000);
  CHECK(settled_bet(node, token, on_b).at("payout").as_int64() == 2500);
  // A win bet on a placed runner loses; a void runner's bets are refunded.
  auto c = settled_bet(node, token, on_c);
  CHECK(c.at("status").as_string() == "lost");
  CHECK(c.at("payout").as_int64() == 0);
  auto d = settled_bet(node, token, on_d);
  CHECK(d.at("status").as_string() == "void");
  CHECK(d.at("payout").as_int64() == 1000);
  CHECK(available(node, token) == 100000 - 4000 + 3000 + 2500 + 1000);
  audit_is_clean(node);
  // Settling again with the same result changes nothing; another is refused.
  r = node.call("POST", "/v1/admin/markets/r1/settle",
                R"({"results":{"a":"won","b":"won","c":"placed","d":"void"},"dead_heat":{"a":"1/2","b":"1/2"}})",
                admin_key);
  CHECK(r.status == 200);
  r = node.call("POST", "/v1/admin/markets/r1/settle", R"({"results":{"a":"won"}})", admin_key);
  CHECK(r.status == 409);
  CHECK(error_code(r) == "illegal_transition");
}

TEST_CASE("Rule 4 reduces the winnings of bets taken before the deduction's time only") {
  api_node node;
  open_race(node, "r2");
  auto token = node.user("bob");
  REQUIRE(node.call("POST", "/v1/wallet/deposits", R"({"request_id":"d","amount":100000})", token)
            .status == 201);
  auto early = bet_on(node, token, "early", "r2", "b", "5.00");
  // Every bet answered by now was accepted before `before`; every bet asked
  // for after the clock has moved on is accepted at or after it.
  auto before = wall_now_ms() + 1;
  REQUIRE(wait_until([&] { return wall_now_ms() > before; }, std::chrono::seconds{5}));
  auto late = bet_on(node, token, "late", "r2", "b", "5.00");
  close_market(node, "r2");
  auto r = node.call("POST", "/v1/admin/markets/r2/settle",
                     R"({"results":{"b":"won"},"rule4":[{"deduction":15,"before":")"
                       + format_time(before) + R"("},{"deduction":10,"before":")"
                       + format_time(before) + R"("}]})",
                     admin_key);
  REQUIRE_MESSAGE(r.status == 200, r.body);
  // 10.00 win at 5.00 with 25p in all: winnings 40.00 less 25%, 40.00 back.
  CHECK(settled_bet(node, token, early).at("payout").as_int64() == 4000);
  CHECK(settled_bet(node, token, late).at("payout").as_int64() == 5000);
}

TEST_CASE("a non-runner's bets are refunded at once and it takes no more") {
  api_node node;
  open_race(node, "r3");
  auto token = node.user("bob");
  REQUIRE(node.call("POST", "/v1/wallet/deposits", R"({"request_id":"d","amount":100000})", token)
            .status == 201);
  auto on_a = bet_on(node, token, "b-a", "r3", "a", "6.00");
  auto on_b = bet_on(node, token, "b-b", "r3", "b", "5.00");
  auto r = node.call("GET", "/v1/markets/r3");
  REQUIRE(r.status == 200);
  auto before = body_of(r);
  r = node.call("POST", "/v1/admin/markets/r3/selections/a/void", {}, admin_key);
  REQUIRE_MESSAGE(r.status == 200, r.body);
  auto m = body_of(r);
  CHECK(m.at("status").as_string() == "open");
  CHECK(m.at("version").as_int64() > before.at("version").as_int64());
  CHECK(m.at("selections").as_array()[0].at("withdrawn") == json::value(true));
  CHECK_FALSE(m.at("selections").as_array()[1].as_object().contains("withdrawn"));
  auto a = settled_bet(node, token, on_a);
  CHECK(a.at("status").as_string() == "void");
  CHECK(a.at("payout").as_int64() == 1000);
  CHECK(available(node, token) == 100000 - 1000);
  // Withdrawing it again answers the market and refunds nothing more.
  r = node.call("POST", "/v1/admin/markets/r3/selections/a/void", "{}", admin_key);
  CHECK(r.status == 200);
  CHECK(available(node, token) == 100000 - 1000);
  // No more bets on it.
  r = node.call("POST", "/v1/bets",
                R"({"request_id":"b-a2","market_id":"r3","selection_id":"a","stake":1000,"price":"6.00"})",
                token);
  CHECK(r.status == 404);
  CHECK(error_code(r) == "not_found");
  CHECK(available(node, token) == 100000 - 1000);
  r = node.call("POST", "/v1/admin/markets/r3/selections/zz/void", {}, admin_key);
  CHECK(r.status == 404);
  r = node.call("POST", "/v1/admin/markets/r3/selections/b/void", R"({"reason":"lame"})",
                admin_key);
  CHECK(r.status == 400);
  CHECK(error_code(r) == "unknown_field");
  // It cannot win, and the settlement does not pay its bets twice.
  close_market(node, "r3");
  r = node.call("POST", "/v1/admin/markets/r3/settle", R"({"winners":["a"]})", admin_key);
  CHECK(r.status == 400);
  CHECK(error_code(r) == "invalid_field");
  CHECK(error_field(r) == "results");
  r = node.call("POST", "/v1/admin/markets/r3/settle", R"({"results":{"b":"won","a":"void"}})",
                admin_key);
  REQUIRE_MESSAGE(r.status == 200, r.body);
  CHECK(settled_bet(node, token, on_b).at("payout").as_int64() == 5000);
  CHECK(available(node, token) == 100000 - 1000 + 5000);
  r = node.call("GET", "/v1/bets/" + on_a, {}, token);
  CHECK(body_of(r).at("payout").as_int64() == 1000);
  // After the result no runner can be withdrawn.
  r = node.call("POST", "/v1/admin/markets/r3/selections/c/void", {}, admin_key);
  CHECK(r.status == 409);
  CHECK(error_code(r) == "illegal_transition");
  audit_is_clean(node);
}

TEST_CASE("bad results, dead heats, deductions and each-way terms are refused and change nothing") {
  api_node node;
  open_race(node, "r4");
  open_race(node, "flat", false);
  auto bad = [&](const std::string& market, const std::string& body, const std::string& field) {
    auto r = node.call("POST", "/v1/admin/markets/" + market + "/settle", body, admin_key);
    CHECK_MESSAGE(r.status == 400, body << " -> " << r.body);
    CHECK_MESSAGE(error_code(r) == "invalid_field", body << " -> " << r.body);
    CHECK_MESSAGE(error_field(r) == field, body << " -> " << r.body);
  };
  close_market(node, "r4");
  close_market(node, "flat");
  bad("r4", R"({"results":{"a":"first"}})", "results");
  bad("r4", R"({"results":{"a":"lost"}})", "results");
  bad("r4", R"({"results":{"zz":"won"}})", "results");
  bad("r4", R"({"results":{}})", "results");
  bad("r4", R"({"winners":["a"],"results":{"a":"won"}})", "winners");
  bad("r4", R"({"winners":["a"],"dead_heat":{"a":"1/2"}})", "dead_heat");
  bad("r4", R"({"results":{"a":"won"},"dead_heat":{"a":"2/2"}})", "dead_heat");
  bad("r4", R"({"results":{"a":"won"},"dead_heat":{"a":"0.5"}})", "dead_heat");
  bad("r4", R"({"results":{"a":"won"},"dead_heat":{"b":"1/2"}})", "dead_heat");
  bad("r4", R"({"results":{"a":"won"},"rule4":[{"deduction":91,"before":"2026-12-07T12:00:00Z"}]})",
      "rule4");
  bad("r4", R"({"results":{"a":"won"},"rule4":[{"deduction":10,"before":"yesterday"}]})", "rule4");
  bad("r4", R"({"results":{"a":"won"},"rule4":[{"deduction":10}]})", "rule4");
  bad("r4", R"({"results":{"a":"won"},"rule4":[]})", "rule4");
  bad("flat", R"({"results":{"a":"won","b":"placed"}})", "results");
  auto r = node.call("POST", "/v1/admin/markets/r4/settle", R"({"results":{"a":"won"},"extra":1})",
                     admin_key);
  CHECK(r.status == 400);
  CHECK(error_code(r) == "unknown_field");
  for (auto id : {"r4", "flat"}) {
    r = node.call("GET", std::string{"/v1/markets/"} + id);
    CHECK(body_of(r).at("status").as_string() == "closed");
  }
  // Each-way terms on creation.
  auto create = [&](const std::string& terms) {
    return node.call("POST", "/v1/admin/markets",
                     R"({"market_id":"x","event":"E","name":"Win",)"
                     R"("selections":[{"selection_id":"a","name":"A","price":"6.00"}],)"
                     R"("limits":{"max_stake":100000,"max_liability":1000000},"each_way":)"
                       + terms + "}",
                     admin_key);
  };
  for (auto terms : {R"({"places":0,"fraction":"1/4"})", R"({"places":11,"fraction":"1/4"})",
                     R"({"places":3,"fraction":"5/4"})", R"({"places":3,"fraction":"0.25"})",
                     R"({"places":3})", R"("1/4")"}) {
    r = create(terms);
    CHECK_MESSAGE(r.status == 400, terms);
    CHECK_MESSAGE(error_code(r) == "invalid_field", terms);
    CHECK_MESSAGE(error_field(r) == "each_way", terms);
  }
  CHECK(node.call("GET", "/v1/markets/x").status == 404);
  r = create(R"({"places":2,"fraction":"1/5"})");
  REQUIRE_MESSAGE(r.status == 201, r.body);
  CHECK(body_of(r).at("each_way").at("fraction").as_string() == "1/5");
}

TEST_CASE("cancel-bets voids the bets of a window at once, and the result pays only the others") {
  api_node node;
  node.open_market("m1");
  auto token = node.user("bob");
  REQUIRE(node.call("POST", "/v1/wallet/deposits", R"({"request_id":"d","amount":100000})", token)
            .status == 201);
  auto early = bet_on(node, token, "early", "m1", "home", "2.50");
  // The window opens after every bet answered so far and closes before
  // every bet asked for once the clock has passed its end.
  auto from = wall_now_ms() + 1;
  REQUIRE(wait_until([&] { return wall_now_ms() > from; }, std::chrono::seconds{5}));
  auto late1 = bet_on(node, token, "late1", "m1", "home", "2.50");
  auto late2 = bet_on(node, token, "late2", "m1", "away", "1.80");
  auto to = wall_now_ms() + 1;
  REQUIRE(wait_until([&] { return wall_now_ms() > to; }, std::chrono::seconds{5}));
  auto after = bet_on(node, token, "after", "m1", "away", "1.80");
  CHECK(available(node, token) == 100000 - 4000);

  auto window = R"({"from":")" + format_time(from) + R"(","to":")" + format_time(to) + R"("})";
  auto r = node.call("POST", "/v1/admin/markets/m1/cancel-bets", window, admin_key);
  REQUIRE_MESSAGE(r.status == 200, r.body);
  CHECK(body_of(r).at("status").as_string() == "open");
  for (auto& id : {late1, late2}) {
    auto b = settled_bet(node, token, id);
    CHECK(b.at("status").as_string() == "void");
    CHECK(b.at("payout").as_int64() == 1000);
  }
  CHECK(available(node, token) == 100000 - 2000);
  // Again: nothing more is refunded.
  r = node.call("POST", "/v1/admin/markets/m1/cancel-bets", window, admin_key);
  CHECK(r.status == 200);
  CHECK(available(node, token) == 100000 - 2000);

  // Bad windows change nothing.
  for (auto body : {std::string{R"({"from":"yesterday"})"},
                    R"({"from":")" + format_time(to) + R"(","to":")" + format_time(from) + R"("})",
                    std::string{R"({"to":12345})"}}) {
    r = node.call("POST", "/v1/admin/markets/m1/cancel-bets", body, admin_key);
    CHECK_MESSAGE(r.status == 400, body);
    CHECK_MESSAGE(error_code(r) == "invalid_field", body);
  }
  r = node.call("POST", "/v1/admin/markets/m1/cancel-bets", R"({"until":"x"})", admin_key);
  CHECK(r.status == 400);
  CHECK(error_code(r) == "unknown_field");
  r = node.call("POST", "/v1/admin/markets/nope/cancel-bets", "{}", admin_key);
  CHECK(r.status == 404);
  CHECK(available(node, token) == 100000 - 2000);

  close_market(node, "m1");
  r = node.call("POST", "/v1/admin/markets/m1/settle", R"({"winners":["home"]})", admin_key);
  REQUIRE_MESSAGE(r.status == 200, r.body);
  CHECK(settled_bet(node, token, early).at("payout").as_int64() == 2500);
  CHECK(settled_bet(node, token, after).at("status").as_string() == "lost");
  CHECK(available(node, token) == 100000 - 2000 + 2500);
  r = node.call("GET", "/v1/bets/" + late1, {}, token);
  CHECK(body_of(r).at("payout").as_int64() == 1000);
  // After the result a cancellation takes back what the result paid the
  // bets of its window and refunds their stakes.
  r = node.call("POST", "/v1/admin/markets/m1/cancel-bets", "{}", admin_key);
  REQUIRE_MESSAGE(r.status == 200, r.body);
  CHECK(wait_until([&] { return available(node, token) == 100000; }, std::chrono::seconds{10}));
  for (auto& id : {early, after}) {
    auto b = body_of(node.call("GET", "/v1/bets/" + id, {}, token));
    CHECK(b.at("status").as_string() == "void");
    CHECK(b.at("payout").as_int64() == 1000);
  }
  audit_is_clean(node);
}

TEST_CASE("unsettle reverses every payout of the market, and a second settlement pays the "
          "true result") {
  api_node node;
  node.open_market("m1");
  auto token = node.user("bob");
  REQUIRE(node.call("POST", "/v1/wallet/deposits", R"({"request_id":"d","amount":5000})", token)
            .status == 201);
  auto home = bet_on(node, token, "h", "m1", "home", "2.50", 2000);
  auto away = bet_on(node, token, "a", "m1", "away", "1.80", 2000);
  close_market(node, "m1");
  // Not resulted yet: nothing to roll back.
  auto r = node.call("POST", "/v1/admin/markets/m1/unsettle", "{}", admin_key);
  CHECK(r.status == 409);
  CHECK(error_code(r) == "illegal_transition");
  r = node.call("POST", "/v1/admin/markets/m1/settle", R"({"winners":["home"]})", admin_key);
  REQUIRE_MESSAGE(r.status == 200, r.body);
  CHECK(settled_bet(node, token, home).at("payout").as_int64() == 5000);
  settled_bet(node, token, away);
  // The winnings are spent before the result is found wrong.
  REQUIRE(node.call("POST", "/v1/wallet/withdrawals", R"({"request_id":"w","amount":6000})",
                    token)
            .status == 201);
  CHECK(available(node, token) == 0);
  // Bad requests change nothing.
  CHECK(node.call("POST", "/v1/admin/markets/m1/unsettle", "{}", token).status == 403);
  r = node.call("POST", "/v1/admin/markets/m1/unsettle", R"({"why":"x"})", admin_key);
  CHECK(r.status == 400);
  CHECK(error_code(r) == "unknown_field");
  CHECK(node.call("POST", "/v1/admin/markets/nope/unsettle", "{}", admin_key).status == 404);
  CHECK(available(node, token) == 0);

  r = node.call("POST", "/v1/admin/markets/m1/unsettle", "", admin_key);
  REQUIRE_MESSAGE(r.status == 200, r.body);
  CHECK(body_of(r).at("status").as_string() == "closed");
  // The payout is taken back: the wallet is 50.00 below zero and refuses
  // bets and withdrawals, never deposits.
  CHECK(wait_until([&] { return available(node, token) == -5000; }, std::chrono::seconds{10}));
  for (auto& id : {home, away})
    CHECK(body_of(node.call("GET", "/v1/bets/" + id, {}, token)).at("status").as_string()
          == "open");
  node.open_market("m2");
  r = node.call("POST", "/v1/bets",
                R"({"request_id":"x","market_id":"m2","selection_id":"home","stake":100,)"
                R"("price":"2.50"})",
                token);
  CHECK(r.status == 409);
  CHECK(error_code(r) == "insufficient_funds");
  r = node.call("POST", "/v1/wallet/withdrawals", R"({"request_id":"w2","amount":1})", token);
  CHECK(r.status == 409);
  // Again: the same answer, nothing taken twice.
  r = node.call("POST", "/v1/admin/markets/m1/unsettle", "{}", admin_key);
  CHECK(r.status == 200);
  CHECK(available(node, token) == -5000);
  // The true result: away won, 20.00 at 1.80.
  r = node.call("POST", "/v1/admin/markets/m1/settle", R"({"winners":["away"]})", admin_key);
  REQUIRE_MESSAGE(r.status == 200, r.body);
  CHECK(wait_until([&] { return available(node, token) == -5000 + 3600; },
                   std::chrono::seconds{10}));
  CHECK(settled_bet(node, token, away).at("payout").as_int64() == 3600);
  CHECK(settled_bet(node, token, home).at("status").as_string() == "lost");
  auto t = body_of(node.call("GET", "/v1/wallet/transactions", {}, token));
  auto& list = t.at("transactions").as_array();
  REQUIRE_FALSE(list.empty());
  CHECK(list[0].at("kind").as_string() == "payout");
  CHECK(list[1].at("kind").as_string() == "reversal");
  CHECK(list[1].at("amount").as_int64() == 5000);
  CHECK(list[1].at("available_after").as_int64() == -5000);
  audit_is_clean(node);
}

TEST_CASE("each-way bets hold twice the stake and pay a win and a place half on the terms") {
  api_node node;
  open_race(node, "r5");
  open_race(node, "flat5", false);
  auto token = node.user("bob");
  REQUIRE(node.call("POST", "/v1/wallet/deposits", R"({"request_id":"d","amount":100000})", token)
            .status == 201);
  auto each_way = [&](const std::string& request, const std::string& market,
                      const std::string& selection, const std::string& price) {
    return node.call("POST", "/v1/bets",
                     R"({"request_id":")" + request + R"(","market_id":")" + market
                       + R"(","selection_id":")" + selection + R"(","stake":1000,"price":")"
                       + price + R"(","each_way":true})",
                     token);
  };
  auto r = each_way("ew-c", "r5", "c", "11.00");
  REQUIRE_MESSAGE(r.status == 201, r.body);
  auto c = body_of(r);
  CHECK(c.at("each_way") == json::value(true));
  CHECK(c.at("stake").as_int64() == 1000);
  CHECK(c.at("total_stake").as_int64() == 2000);
  CHECK(c.at("place_fraction").as_string() == "1/4");
  CHECK(c.at("potential_payout").as_int64() == 11000 + 3500);
  // The same request again is the same bet; the same id as a win bet is refused.
  auto again = each_way("ew-c", "r5", "c", "11.00");
  CHECK(again.status == 201);
  CHECK(again.body == r.body);
  r = node.call("POST", "/v1/bets",
                R"({"request_id":"ew-c","market_id":"r5","selection_id":"c","stake":1000,"price":"11.00"})",
                token);
  CHECK(error_code(r) == "request_id_reused");
  auto on_c = std::string{c.at("bet_id").as_string()};
  r = each_way("ew-a", "r5", "a", "6.00");
  REQUIRE_MESSAGE(r.status == 201, r.body);
  auto on_a = std::string{body_of(r).at("bet_id").as_string()};
  r = each_way("ew-b", "r5", "b", "5.00");
  REQUIRE_MESSAGE(r.status == 201, r.body);
  auto on_b = std::string{body_of(r).at("bet_id").as_string()};
  r = each_way("ew-d", "r5", "d", "3.00");
  REQUIRE_MESSAGE(r.status == 201, r.body);
  auto on_d = std::string{body_of(r).at("bet_id").as_string()};
  CHECK(available(node, token) == 100000 - 8000);
  // A plain win bet says so.
  auto win = bet_on(node, token, "win-a", "r5", "a", "6.00");
  r = node.call("GET", "/v1/bets/" + win, {}, token);
  CHECK(body_of(r).at("each_way") == json::value(false));
  CHECK(body_of(r).at("total_stake").as_int64() == 1000);
  CHECK(available(node, token) == 100000 - 9000);

  // Each-way on a market without terms: refused (422, as "Version 1.1" of
  // the API says), nothing held.
  r = each_way("ew-flat", "flat5", "a", "6.00");
  CHECK(r.status == 422);
  CHECK(error_code(r) == "invalid_field");
  CHECK(error_field(r) == "each_way");
  CHECK(available(node, token) == 100000 - 9000);
  r = node.call("POST", "/v1/bets",
                R"({"request_id":"ew-bad","market_id":"r5","selection_id":"a","stake":1000,"price":"6.00","each_way":"yes"})",
                token);
  CHECK(r.status == 400);
  CHECK(error_field(r) == "each_way");

  close_market(node, "r5");
  r = node.call("POST", "/v1/admin/markets/r5/settle",
                R"({"results":{"a":"won","c":"placed","d":"void"}})", admin_key);
  REQUIRE_MESSAGE(r.status == 200, r.body);
  // 10.00 each-way at 11.00, 1/4, second: the win half lost, the place half
  // 10.00 x (1 + 10/4) = 35.00.
  auto placed = settled_bet(node, token, on_c);
  CHECK(placed.at("status").as_string() == "won");
  CHECK(placed.at("payout").as_int64() == 3500);
  // Its one leg says what the result made of the runner: placed, not won.
  CHECK(placed.at("legs").at(0).at("result").as_string() == "placed");
  CHECK(settled_bet(node, token, on_a).at("legs").at(0).at("result").as_string() == "won");
  // The winner pays both halves: 60.00 and 10.00 x (1 + 5/4) = 22.50.
  CHECK(settled_bet(node, token, on_a).at("payout").as_int64() == 6000 + 2250);
  auto lost = settled_bet(node, token, on_b);
  CHECK(lost.at("status").as_string() == "lost");
  CHECK(lost.at("payout").as_int64() == 0);
  auto voided = settled_bet(node, token, on_d);
  CHECK(voided.at("status").as_string() == "void");
  CHECK(voided.at("payout").as_int64() == 2000);
  CHECK(settled_bet(node, token, win).at("payout").as_int64() == 6000);
  CHECK(available(node, token) == 100000 - 9000 + 3500 + 8250 + 2000 + 6000);
  audit_is_clean(node);
}
