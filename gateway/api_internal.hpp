#pragma once

// Shared by the api_*.cpp files: the API's state, the per-request context
// and the JSON validation helpers. Not a public header.

#include <prometheus/counter.h>
#include <prometheus/histogram.h>
#include <prometheus/registry.h>

#include <chrono>
#include <unordered_map>
#include "wager/actors/json_fields.hpp"
#include "wager/actors/bet.hpp"
#include "wager/actors/market.hpp"
#include "wager/actors/money.hpp"
#include "wager/actors/platform.hpp"
#include "wager/gateway/api.hpp"
#include "wager/gateway/auth.hpp"
#include "wager/gateway/auth_store.hpp"
#include "wager/gateway/resource_json.hpp"
#include "wager/runtime/errors.hpp"

#include <boost/json.hpp>
#include <caf/error.hpp>
#include <caf/expected.hpp>
#include <caf/message.hpp>

#include <atomic>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace wager::api {

namespace json = boost::json;

// One request on its way: answers once, from any thread.
// wager_http_requests_total{route,method,status} and
// wager_http_request_seconds{route}; `route` is the matched pattern
// ("/v1/markets/{}"), so ids never become label values.
struct request_metrics {
  // One histogram per route label ("/v1/markets/{}"), plus "unmatched".
  request_metrics(prometheus::Registry& registry, const std::vector<std::string>& routes);
  void observe(const std::string& route, const std::string& method, int status,
               double seconds) const;

  prometheus::Family<prometheus::Counter>* requests;
  prometheus::Family<prometheus::Histogram>* seconds;
  // One histogram per route, made at start: read-only afterwards, so
  // responders on any thread read it without a lock.
  std::unordered_map<std::string, prometheus::Histogram*> by_route;
};

struct call {
  http_request req;
  // Set by the router; what the metrics count the call under.
  std::string route = "unmatched";
  std::chrono::steady_clock::time_point started = std::chrono::steady_clock::now();
  std::shared_ptr<const request_metrics> metrics;
  std::vector<std::string> params; // path segments matched by {}
  // Authenticated routes: the bearer token, taken apart; the session it
  // names, once that session answered (with_session).
  std::optional<session_token> token;
  std::optional<session_info> session;
  http_responder respond_fn;
  std::atomic<bool> answered{false};
  // Set while the token's session has not seen this call: the first answer
  // goes through it, so the session can refuse the token first.
  std::function<void(http_response)> before_first_answer;

  void respond(http_response res);
  // Counts the answer and sends it, whatever before_first_answer says.
  void finish(http_response res);
};
using call_ptr = std::shared_ptr<call>;

// wager_bets_total{outcome,reason}, the family platform::place_bet counts
// in: bets placed over the API go through the session instead of that call.
struct bet_counter {
  explicit bet_counter(prometheus::Registry& registry);
  void count(const caf::expected<bet>& b) const;

  prometheus::Family<prometheus::Counter>* family;
  prometheus::Counter* accepted;
};

// The bearer token of "Authorization: Bearer <token>"; empty if none.
std::string bearer_token(const http_request& req);

// -- responses ---------------------------------------------------------------

http_response json_response(int status, const json::value& body);
http_response error_response(errc code, std::string_view message, std::string_view field = {});
// A platform error: its API code, status, message and detail (field or
// current_price). Errors from outside the wager category (a timeout, a dead
// actor) are 503 unavailable: the caller retries with the same request id.
http_response error_response(const caf::error& err);
http_response no_content();

// -- input -------------------------------------------------------------------

// The body as a JSON object, or the 400 to answer. An empty body is {} when
// `empty_ok`.
std::optional<json::object> parse_body(const call_ptr& c, bool empty_ok = false);

// Reads fields of one object; the first problem wins and becomes error().
class fields {
public:
  explicit fields(const json::object& o) : reader_(o, error_) {}

  // unknown_field for any key not in `allowed`.
  fields& allow(std::initializer_list<std::string_view> allowed) {
    reader_.allow(allowed);
    return *this;
  }

  // nullptr when absent (missing_field if required). A JSON null counts as
  // absent for optional fields.
  const json::value* get(std::string_view key, bool required) {
    return reader_.get(key, required);
  }

  std::optional<std::string> id(std::string_view key, bool required = true) {
    return reader_.id(key, required);
  }
  std::optional<std::string> string(std::string_view key, size_t min, size_t max,
                                    bool required = true) {
    return reader_.string(key, min, max, required);
  }
  std::optional<int64_t> amount(std::string_view key, bool required = true) {
    return reader_.amount(key, required);
  }
  std::optional<int64_t> integer(std::string_view key, int64_t min, int64_t max,
                                 bool required = true) {
    return reader_.integer(key, min, max, required);
  }
  std::optional<price> price_of(std::string_view key, bool required = true) {
    return reader_.price_of(key, required);
  }
  std::optional<bool> boolean(std::string_view key, bool required = true) {
    return reader_.boolean(key, required);
  }
  const json::array* array(std::string_view key, bool required = true) {
    return reader_.array(key, required);
  }
  const json::object* object(std::string_view key, bool required = true) {
    return reader_.object(key, required);
  }

  void fail(errc code, std::string_view field, std::string message) {
    reader_.fail(code, field, std::move(message));
  }
  bool ok() const { return reader_.ok(); }
  // The first problem as the API's error answer.
  http_response error() const { return error_response(error_.code, error_.message, error_.field); }

private:
  field_error error_; // before reader_, which refers to it
  json_fields::reader reader_;
};

// For an endpoint that takes no fields: true when the body is empty or {};
// otherwise answers the 400 (not JSON, or the first field given) and
// returns false.
bool empty_body(const call_ptr& c);

// Query string: decoded name -> value. nullopt (after answering 400) for a
// malformed one or a name not in `allowed`.
std::optional<std::map<std::string, std::string>>
parse_query(const call_ptr& c, std::initializer_list<std::string_view> allowed);

// `?limit=` of a list: 1 to `max`, `fallback` when absent; nullopt (after
// answering 400 invalid_field) otherwise.
std::optional<uint32_t> parse_limit(const call_ptr& c,
                                    const std::map<std::string, std::string>& query,
                                    uint32_t fallback, uint32_t max);

// `?odds=` of a market or bet read: decimal (also when absent), fractional
// or american; nullopt (after answering 400 invalid_field) otherwise.
std::optional<odds_format> parse_odds(const call_ptr& c,
                                      const std::map<std::string, std::string>& query);

} // namespace wager::api

namespace wager {

struct client_api::impl : std::enable_shared_from_this<client_api::impl> {
  impl(platform& p, api_options o);

  platform& plat;
  api_options options;
  std::unique_ptr<worker_pool> pool;
  std::unique_ptr<auth_store> auth;
  rate_limiter login_user;
  rate_limiter login_address;
  rate_limiter signup_address;
  rate_limiter request_address;
  std::shared_ptr<intrusion_detector> intrusion;
  std::shared_ptr<const api::request_metrics> metrics;
  std::shared_ptr<const api::bet_counter> bets;

  void dispatch(const api::call_ptr& c);

  // Takes the bearer token apart (401 for none or a malformed one) and runs
  // `next`, which validates and then carries the request (api_session.cpp);
  // an answer before that waits for the session's check, so a bad token is
  // 401 and a spent budget 429 before anything else.
  void authenticated(const api::call_ptr& c, std::function<void()> next);
  // Sends `request` through the call's session entity (token checked,
  // budget taken) to the user's wallet; `done` gets the wallet's answer, or
  // for an empty request the session_info. Answers on an actor thread.
  template <class T>
  void carry(const api::call_ptr& c, caf::message request,
             std::function<void(caf::expected<T>)> done);
  // The session's check alone; `next` runs with c->session set. Answers
  // 401/429 itself.
  void with_session(const api::call_ptr& c, std::function<void()> next);
  // The operator key; answers 401/403 itself. Wraps the responder to write
  // the audit line.
  bool admin(const api::call_ptr& c, std::string action);

  // Route handlers, one file per area.
  void create_user(const api::call_ptr& c);
  void create_session(const api::call_ptr& c);
  void delete_session(const api::call_ptr& c);
  void enrol_mfa(const api::call_ptr& c);
  void confirm_mfa(const api::call_ptr& c);
  void set_limits(const api::call_ptr& c);
  void set_limits_authenticated(const api::call_ptr& c);
  void get_limits(const api::call_ptr& c);

  void get_wallet(const api::call_ptr& c);
  void move_money(const api::call_ptr& c, bool deposit);
  void get_transactions(const api::call_ptr& c);

  void list_markets(const api::call_ptr& c);
  void get_market(const api::call_ptr& c);

  void place_bet(const api::call_ptr& c);
  void place_slip(const api::call_ptr& c, const boost::json::object& body);
  void get_bet(const api::call_ptr& c);
  void get_cashout(const api::call_ptr& c);
  void cash_out(const api::call_ptr& c);
  void list_bets(const api::call_ptr& c);

  void admin_create_market(const api::call_ptr& c);
  void admin_market_status(const api::call_ptr& c);
  void admin_market_prices(const api::call_ptr& c);
  void admin_settle(const api::call_ptr& c);
  void admin_withdraw_selection(const api::call_ptr& c);
  void admin_cancel_bets(const api::call_ptr& c);
  void admin_unsettle(const api::call_ptr& c);
  void admin_health(const api::call_ptr& c);
  void admin_drain(const api::call_ptr& c);
  void admin_feed(const api::call_ptr& c);
  void admin_blocks(const api::call_ptr& c);
  void admin_lift_block(const api::call_ptr& c);
};

} // namespace wager
