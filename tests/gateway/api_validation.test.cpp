// A table of bad inputs for every endpoint: each gets its status and error
// code, and none of them changes anything.

#include "api_support.hpp"

using namespace wager;
using namespace wager::test;

namespace {

struct bad_case {
  const char* method;
  std::string target;
  std::string body;
  int status;
  const char* code;
  const char* field; // "" when the answer names none
  bool as_admin = false;
};

} // namespace

TEST_CASE("bad inputs are refused with their code and change nothing") {
  api_node node;
  node.open_market("m1");
  auto token = node.user("alice");
  REQUIRE(node.call("POST", "/v1/wallet/deposits", R"({"request_id":"d0","amount":500000})", token)
            .status == 201);
  auto market_before = node.call("GET", "/v1/markets/m1").body;

  std::string long_id(65, 'x');
  std::vector<bad_case> cases{
    // users
    {"POST", "/v1/users", "{", 400, "invalid_json", ""},
    {"POST", "/v1/users", "[]", 400, "invalid_json", ""},
    {"POST", "/v1/users", R"({"username":"bob"})", 400, "missing_field", "password"},
    {"POST", "/v1/users", R"({"password":"long enough pw"})", 400, "missing_field", "username"},
    {"POST", "/v1/users", R"({"username":"bo","password":"long enough pw"})", 400, "invalid_field", "username"},
    {"POST", "/v1/users", R"({"username":"Bob","password":"long enough pw"})", 400, "invalid_field", "username"},
    {"POST", "/v1/users", R"({"username":"bob","password":"short"})", 400, "invalid_field", "password"},
    {"POST", "/v1/users", R"({"username":"bob","password":12345678901})", 400, "invalid_field", "password"},
    {"POST", "/v1/users", R"({"username":"bob","password":"long enough pw","admin":true})", 400, "unknown_field", "admin"},
    // sessions
    {"POST", "/v1/sessions", R"({"username":"alice"})", 400, "missing_field", "password"},
    {"POST", "/v1/sessions", R"({"username":"alice","password":"correct horse","otp":"1"})", 400, "unknown_field", "otp"},
    {"DELETE", "/v1/sessions/current", "", 401, "unauthorized", "", false},
    // mfa and limits
    {"POST", "/v1/users/me/mfa/confirm", R"({"code":"12a456"})", 400, "invalid_field", "code"},
    {"POST", "/v1/users/me/mfa/confirm", R"({})", 400, "missing_field", "code"},
    {"POST", "/v1/users/me/mfa/confirm", R"({"code":"123456"})", 404, "not_found", ""},
    {"POST", "/v1/users/me/mfa", R"({"x":1})", 400, "unknown_field", "x"},
    {"PUT", "/v1/users/me/limits", R"({"daily_deposit_limit":-1})", 400, "invalid_field", "daily_deposit_limit"},
    {"PUT", "/v1/users/me/limits", R"({"daily_deposit_limit":"100"})", 400, "invalid_field", "daily_deposit_limit"},
    {"PUT", "/v1/users/me/limits", R"({"self_exclude_until":"tomorrow"})", 400, "invalid_field", "self_exclude_until"},
    {"PUT", "/v1/users/me/limits", R"({"weekly":1})", 400, "unknown_field", "weekly"},
    {"PUT", "/v1/users/me/limits", R"({"deposit_limits":5000})", 400, "invalid_field", "deposit_limits"},
    {"PUT", "/v1/users/me/limits", R"({"deposit_limits":{"year":1}})", 400, "unknown_field", "deposit_limits.year"},
    {"PUT", "/v1/users/me/limits", R"({"loss_limits":{"day":0}})", 400, "invalid_field", "loss_limits.day"},
    {"PUT", "/v1/users/me/limits", R"({"loss_limits":{"week":"100"}})", 400, "invalid_field", "loss_limits.week"},
    {"PUT", "/v1/users/me/limits", R"({"time_out_until":null})", 400, "invalid_field", "time_out_until"},
    {"PUT", "/v1/users/me/limits", R"({"self_exclude_until":null})", 400, "invalid_field", "self_exclude_until"},
    {"PUT", "/v1/users/me/limits", R"({"time_out_until":"2020-01-01T00:00:00Z"})", 400, "invalid_field", "time_out_until"},
    {"PUT", "/v1/users/me/limits", R"({"self_exclude_until":"2020-01-01T00:00:00Z"})", 400, "invalid_field", "self_exclude_until"},
    {"PUT", "/v1/users/me/limits", R"({"reality_check_minutes":5})", 400, "invalid_field", "reality_check_minutes"},
    {"PUT", "/v1/users/me/limits", R"({"daily_deposit_limit":100,"deposit_limits":{"day":200}})", 400, "invalid_field", "daily_deposit_limit"},
    {"GET", "/v1/users/me/limits?x=1", "", 400, "unknown_field", "x"},
    // wallet
    {"POST", "/v1/wallet/deposits", R"({"amount":100})", 400, "missing_field", "request_id"},
    {"POST", "/v1/wallet/deposits", R"({"request_id":"r","amount":0})", 400, "invalid_field", "amount"},
    {"POST", "/v1/wallet/deposits", R"({"request_id":"r","amount":1000000000001})", 400, "invalid_field", "amount"},
    {"POST", "/v1/wallet/deposits", R"({"request_id":"r","amount":1.5})", 400, "invalid_field", "amount"},
    {"POST", "/v1/wallet/deposits", R"({"request_id":"r","amount":"100"})", 400, "invalid_field", "amount"},
    {"POST", "/v1/wallet/deposits", R"({"request_id":"bad id","amount":100})", 400, "invalid_field", "request_id"},
    {"POST", "/v1/wallet/deposits", R"({"request_id":")" + long_id + R"(","amount":100})", 400, "invalid_field", "request_id"},
    {"POST", "/v1/wallet/deposits", R"({"request_id":"r","amount":100,"currency":"EUR"})", 400, "unknown_field", "currency"},
    {"POST", "/v1/wallet/withdrawals", R"({"request_id":"r","amount":-5})", 400, "invalid_field", "amount"},
    {"POST", "/v1/wallet/withdrawals", R"({"request_id":"r","amount":500001})", 409, "insufficient_funds", ""},
    {"POST", "/v1/wallet/withdrawals", "not json", 400, "invalid_json", ""},
    {"GET", "/v1/wallet/transactions?limit=0", "", 400, "invalid_field", "limit"},
    {"GET", "/v1/wallet/transactions?limit=abc", "", 400, "invalid_field", "limit"},
    {"GET", "/v1/wallet/transactions?before=zz", "", 400, "invalid_field", "before"},
    {"GET", "/v1/wallet/transactions?page=2", "", 400, "unknown_field", "page"},
    // markets
    {"GET", "/v1/markets?status=live", "", 400, "invalid_field", "status"},
    {"GET", "/v1/markets/nope", "", 404, "not_found", ""},
    {"GET", "/v1/markets/bad%20id", "", 404, "not_found", ""},
    // bets
    {"POST", "/v1/bets", R"({"market_id":"m1","selection_id":"home","stake":100,"price":"2.50"})", 400, "missing_field", "request_id"},
    {"POST", "/v1/bets", R"({"request_id":"x","market_id":"m1","selection_id":"home","stake":100,"price":"2.505"})", 400, "invalid_field", "price"},
    {"POST", "/v1/bets", R"({"request_id":"x","market_id":"m1","selection_id":"home","stake":100,"price":2.5})", 400, "invalid_field", "price"},
    {"POST", "/v1/bets", R"({"request_id":"x","market_id":"m1","selection_id":"home","stake":100,"price":"1.00"})", 400, "invalid_field", "price"},
    {"POST", "/v1/bets", R"({"request_id":"x","market_id":"m1","selection_id":"home","stake":100,"price":"1000.01"})", 400, "invalid_field", "price"},
    {"POST", "/v1/bets", R"({"request_id":"x","market_id":"m1","selection_id":"home","stake":0,"price":"2.50"})", 400, "invalid_field", "stake"},
    {"POST", "/v1/bets", R"({"request_id":"x","market_id":"m1","selection_id":"home","stake":100,"price":"2.50","accept":"maybe"})", 400, "invalid_field", "accept"},
    {"POST", "/v1/bets", R"({"request_id":"x","market_id":"m1","selection_id":"home","stake":100,"price":"2.50","odds":"2.50"})", 400, "unknown_field", "odds"},
    {"POST", "/v1/bets", R"({"request_id":"x","market_id":"m!","selection_id":"home","stake":100,"price":"2.50"})", 400, "invalid_field", "market_id"},
    {"POST", "/v1/bets", R"({"request_id":"x1","market_id":"m1","selection_id":"home","stake":100000,"price":"2.40"})", 409, "price_changed", ""},
    {"POST", "/v1/bets", R"({"request_id":"x2","market_id":"m1","selection_id":"home","stake":100001,"price":"2.50"})", 422, "limit_exceeded", ""},
    {"POST", "/v1/bets", R"({"request_id":"x3","market_id":"m1","selection_id":"draw","stake":100,"price":"2.50"})", 404, "not_found", ""},
    {"GET", "/v1/bets?status=won", "", 400, "invalid_field", "status"},
    {"GET", "/v1/bets/b-nothing", "", 404, "not_found", ""},
    // admin
    {"POST", "/v1/admin/markets", R"({"market_id":"m2"})", 400, "missing_field", "event", true},
    {"POST", "/v1/admin/markets", R"({"market_id":"m2","event":"e","name":"n","selections":[],"limits":{"max_stake":1,"max_liability":1}})", 400, "invalid_field", "selections", true},
    {"POST", "/v1/admin/markets", R"({"market_id":"m2","event":"e","name":"n","selections":[{"selection_id":"a","name":"A","price":"0.5"}],"limits":{"max_stake":1,"max_liability":1}})", 400, "invalid_field", "selections", true},
    {"POST", "/v1/admin/markets", R"({"market_id":"m2","event":"e","name":"n","selections":[{"selection_id":"a","name":"A","price":"2.00"}],"limits":{"max_stake":0,"max_liability":1}})", 400, "invalid_field", "limits", true},
    {"POST", "/v1/admin/markets", R"({"market_id":"m2","event":"e","name":"n","selections":[{"selection_id":"a","name":"A","price":"2.00"}],"limits":{"max_stake":1,"max_liability":1},"extra":1})", 400, "unknown_field", "extra", true},
    {"POST", "/v1/admin/markets/m1/status", R"({"status":"settled"})", 400, "invalid_field", "status", true},
    {"POST", "/v1/admin/markets/m1/status", R"({})", 400, "missing_field", "status", true},
    {"POST", "/v1/admin/markets/nope/status", R"({"status":"open"})", 404, "not_found", "", true},
    {"POST", "/v1/admin/markets/m1/prices", R"({"prices":{"home":"2.555"}})", 400, "invalid_field", "prices", true},
    {"POST", "/v1/admin/markets/m1/prices", R"({"prices":{}})", 400, "invalid_field", "prices", true},
    {"POST", "/v1/admin/markets/m1/settle", R"({})", 400, "missing_field", "winners", true},
    {"POST", "/v1/admin/markets/m1/settle", R"({"winners":["home"],"void":true})", 400, "invalid_field", "winners", true},
    {"POST", "/v1/admin/markets/m1/settle", R"({"void":false})", 400, "invalid_field", "void", true},
    {"POST", "/v1/admin/markets/m1/settle", R"({"winners":[1]})", 400, "invalid_field", "winners", true},
    {"POST", "/v1/admin/markets", R"({"market_id":"m2"})", 403, "forbidden", ""},
  };

  for (auto& c : cases) {
    CAPTURE(c.method);
    CAPTURE(c.target);
    CAPTURE(c.body);
    bool anonymous = std::string{c.method} == "DELETE";
    auto bearer = c.as_admin ? std::string{admin_key} : anonymous ? std::string{} : token;
    auto r = node.call(c.method, c.target, c.body, bearer);
    CHECK(r.status == c.status);
    CHECK(error_code(r) == c.code);
    if (r.status >= 400 && r.body.find("\"error\"") != std::string::npos)
      CHECK(error_field(r) == c.field);
  }

  auto r = node.call("GET", "/v1/wallet", {}, token);
  CHECK(body_of(r).at("available").as_int64() == 500000);
  CHECK(body_of(r).at("held").as_int64() == 0);
  r = node.call("GET", "/v1/bets?status=open", {}, token);
  CHECK(body_of(r).at("bets").as_array().empty());
  // Refused bets leave a stake and its return in the ledger; no money moved.
  CHECK(node.call("GET", "/v1/markets/m1").body == market_before);
  CHECK(node.call("GET", "/v1/markets/m2").status == 404);
}
