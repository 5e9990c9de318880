// The client API's dispatch (the routes are in api_router.cpp), authentication and
// admin guard.

#include "wager/gateway/api_internal.hpp"
#include "wager/gateway/api_router.hpp"

#include "wager/runtime/log.hpp"

#include <chrono>

namespace wager {

using namespace api;

namespace {

// Runs the route's handler.
void serve(client_api::impl& api, route_id id, const call_ptr& c) {
  using enum route_id;
  switch (id) {
    case create_user: return api.create_user(c);
    case create_session: return api.create_session(c);
    case delete_session: return api.delete_session(c);
    case enrol_mfa: return api.enrol_mfa(c);
    case confirm_mfa: return api.confirm_mfa(c);
    case set_limits: return api.set_limits(c);
    case get_limits: return api.get_limits(c);
    case get_wallet: return api.get_wallet(c);
    case deposit: return api.move_money(c, true);
    case withdraw: return api.move_money(c, false);
    case get_transactions: return api.get_transactions(c);
    case list_markets: return api.list_markets(c);
    case get_market: return api.get_market(c);
    case place_bet: return api.place_bet(c);
    case list_bets: return api.list_bets(c);
    case get_bet: return api.get_bet(c);
    case get_cashout: return api.get_cashout(c);
    case cash_out: return api.cash_out(c);
    case admin_create_market: return api.admin_create_market(c);
    case admin_market_status: return api.admin_market_status(c);
    case admin_market_prices: return api.admin_market_prices(c);
    case admin_settle: return api.admin_settle(c);
    case admin_withdraw_selection: return api.admin_withdraw_selection(c);
    case admin_cancel_bets: return api.admin_cancel_bets(c);
    case admin_unsettle: return api.admin_unsettle(c);
    case admin_health: return api.admin_health(c);
    case admin_drain: return api.admin_drain(c);
    case admin_feed: return api.admin_feed(c);
    case admin_blocks: return api.admin_blocks(c);
    case admin_lift_block: return api.admin_lift_block(c);
  }
}

http_response rate_limited(int64_t retry_after_s) {
  auto res = error_response(errc::rate_limited, "too many requests, slow down");
  res.headers.emplace_back("Retry-After", std::to_string(retry_after_s));
  return res;
}

std::vector<std::string> route_labels() {
  std::vector<std::string> out;
  for (auto& r : routes())
    out.push_back(route_label(r));
  return out;
}

} // namespace

std::string api::bearer_token(const http_request& req) {
  constexpr std::string_view prefix = "Bearer ";
  std::string_view a = req.authorization;
  if (a.size() <= prefix.size())
    return {};
  for (size_t i = 0; i < prefix.size(); ++i)
    if (std::tolower(static_cast<unsigned char>(a[i]))
        != std::tolower(static_cast<unsigned char>(prefix[i])))
      return {};
  return std::string{a.substr(prefix.size())};
}

std::vector<std::pair<std::string, std::string>> api_routes() {
  std::vector<std::pair<std::string, std::string>> out;
  for (auto& r : routes())
    out.emplace_back(std::string{r.method}, route_label(r));
  return out;
}

client_api::impl::impl(platform& p, api_options o)
  : plat(p), options(std::move(o)),
    pool(std::make_unique<worker_pool>(options.worker_threads, options.worker_queue_max)),
    auth(std::make_unique<auth_store>(p, *pool, options.auth)),
    login_user(options.login_user_burst, options.login_user_per_s, options.rate_keys_max),
    login_address(options.login_address_burst, options.login_address_per_s,
                  options.rate_keys_max),
    signup_address(options.signup_address_burst, options.signup_address_per_s,
                   options.rate_keys_max),
    request_address(options.request_address_burst, options.request_address_per_s,
                    options.rate_keys_max),
    intrusion(options.detector ? options.detector
                               : std::make_shared<intrusion_detector>(options.intrusion,
                                                                      p.metrics())),
    metrics(std::make_shared<api::request_metrics>(p.metrics().registry(), route_labels())),
    bets(std::make_shared<api::bet_counter>(p.metrics().registry())) {}

client_api::client_api(platform& p, api_options options)
  : impl_(std::make_shared<impl>(p, std::move(options))) {}

client_api::~client_api() {
  // Work still queued refers to the store: let it finish before the store goes.
  impl_->pool.reset();
}

void client_api::handle(http_request request, http_responder respond) {
  auto c = std::make_shared<call>();
  c->req = std::move(request);
  c->respond_fn = std::move(respond);
  c->metrics = impl_->metrics;
  // A blocked address is refused before anything else, for as long as its
  // block lasts.
  if (auto ms = impl_->intrusion->blocked_ms(c->req.remote_address))
    return c->respond(rate_limited((ms + 999) / 1000));
  if (auto wait = impl_->request_address.take("addr:" + c->req.remote_address))
    return c->respond(rate_limited(wait));
  // A session token the session refuses (unknown, expired, revoked,
  // malformed) is counted against the address that sent it. Admin routes
  // take the operator key instead, counted in admin().
  if (!bearer_token(c->req).empty() && c->req.path.rfind("/v1/admin/", 0) != 0) {
    c->respond_fn = [inner = std::move(c->respond_fn), intrusion = impl_->intrusion,
                     remote = c->req.remote_address](http_response res) {
      if (res.status == 401)
        intrusion->token_refused(remote);
      inner(std::move(res));
    };
  }
  impl_->dispatch(c);
}

void client_api::impl::dispatch(const call_ptr& c) {
  auto m = match_route(c->req.method, c->req.path);
  if (m.matched) {
    c->params = std::move(m.params);
    c->route = route_label(*m.matched);
    return serve(*this, m.matched->id, c);
  }
  if (m.allowed.empty())
    return c->respond(error_response(errc::not_found, "no such resource"));
  auto res = json_response(
    405, json::object{{"error", json::object{{"code", "method_not_allowed"},
                                             {"message", "use " + m.allowed}}}});
  res.headers.emplace_back("Allow", m.allowed);
  c->respond(std::move(res));
}

bool client_api::impl::admin(const call_ptr& c, std::string action) {
  auto token = bearer_token(c->req);
  auto who = token.empty() ? std::string{"anonymous"} : "key:" + sha256_hex(token).substr(0, 12);
  bool ok = !options.admin_key.empty() && constant_time_equal(token, options.admin_key);
  // Every admin attempt is audited, refused ones too: who, what, when, result.
  auto respond = std::move(c->respond_fn);
  auto started = std::chrono::system_clock::now();
  c->respond_fn = [respond, who, action, remote = c->req.remote_address,
                   target = c->req.target, started](http_response res) {
    std::string result = "ok";
    if (res.status >= 400) {
      boost::system::error_code ec;
      auto doc = json::parse(res.body, ec);
      auto* e = ec || !doc.is_object() ? nullptr : doc.as_object().if_contains("error");
      result = e && e->is_object() && e->as_object().contains("code")
                 ? std::string{e->as_object().at("code").as_string()}
                 : std::to_string(res.status);
    }
    using namespace std::chrono;
    auto at = duration_cast<milliseconds>(started.time_since_epoch()).count();
    log().info("{}", json::serialize(json::object{{"audit", "admin"},
                                                  {"who", who},
                                                  {"remote", remote},
                                                  {"action", action},
                                                  {"target", target},
                                                  {"at", format_time(at)},
                                                  {"status", res.status},
                                                  {"result", result}}));
    respond(std::move(res));
  };
  if (options.admin_key.empty()) {
    c->respond(error_response(errc::forbidden, "no operator key is configured on this node"));
    return false;
  }
  if (token.empty()) {
    c->respond(error_response(errc::unauthorized, "the operator key is required"));
    return false;
  }
  if (!ok) {
    intrusion->admin_key_refused(c->req.remote_address);
    c->respond(error_response(errc::forbidden, "this needs the operator key"));
    return false;
  }
  return true;
}

} // namespace wager
