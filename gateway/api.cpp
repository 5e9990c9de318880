// The client API's router, authentication and admin guard.

#include "wager/gateway/api_internal.hpp"

#include "wager/actors/ids.hpp"
#include "wager/runtime/log.hpp"

#include <chrono>

namespace wager {

using namespace api;

namespace {

using handler_fn = void (client_api::impl::*)(const call_ptr&);

struct route {
  std::string_view method;
  std::vector<std::string_view> pattern; // "{}" matches one id
  handler_fn handler;
};

const std::vector<route>& routes() {
  using I = client_api::impl;
  static const std::vector<route> table{
    {"POST", {"v1", "users"}, &I::create_user},
    {"POST", {"v1", "sessions"}, &I::create_session},
    {"DELETE", {"v1", "sessions", "current"}, &I::delete_session},
    {"POST", {"v1", "users", "me", "mfa"}, &I::enrol_mfa},
    {"POST", {"v1", "users", "me", "mfa", "confirm"}, &I::confirm_mfa},
    {"PUT", {"v1", "users", "me", "limits"}, &I::set_limits},
    {"GET", {"v1", "wallet"}, &I::get_wallet},
    {"POST", {"v1", "wallet", "deposits"}, nullptr},
    {"POST", {"v1", "wallet", "withdrawals"}, nullptr},
    {"GET", {"v1", "wallet", "transactions"}, &I::get_transactions},
    {"GET", {"v1", "markets"}, &I::list_markets},
    {"GET", {"v1", "markets", "{}"}, &I::get_market},
    {"POST", {"v1", "bets"}, &I::place_bet},
    {"GET", {"v1", "bets"}, &I::list_bets},
    {"GET", {"v1", "bets", "{}"}, &I::get_bet},
    {"POST", {"v1", "admin", "markets"}, &I::admin_create_market},
    {"POST", {"v1", "admin", "markets", "{}", "status"}, &I::admin_market_status},
    {"POST", {"v1", "admin", "markets", "{}", "prices"}, &I::admin_market_prices},
    {"POST", {"v1", "admin", "markets", "{}", "settle"}, &I::admin_settle},
    {"GET", {"v1", "admin", "health"}, &I::admin_health},
    {"POST", {"v1", "admin", "drain"}, &I::admin_drain},
    {"POST", {"v1", "admin", "feed"}, &I::admin_feed},
    {"GET", {"v1", "admin", "blocks"}, &I::admin_blocks},
    {"DELETE", {"v1", "admin", "blocks", "{}"}, &I::admin_lift_block},
  };
  return table;
}

std::vector<std::string_view> split_path(std::string_view path) {
  std::vector<std::string_view> out;
  if (path.empty() || path.front() != '/')
    return out;
  path.remove_prefix(1);
  for (;;) {
    auto slash = path.find('/');
    out.push_back(path.substr(0, slash));
    if (slash == std::string_view::npos)
      break;
    path.remove_prefix(slash + 1);
  }
  return out;
}

// Matches `segments` against `pattern`, collecting {} segments.
bool match(const std::vector<std::string_view>& pattern,
           const std::vector<std::string_view>& segments, std::vector<std::string>& params) {
  if (pattern.size() != segments.size())
    return false;
  std::vector<std::string> found;
  for (size_t i = 0; i < pattern.size(); ++i) {
    if (pattern[i] == "{}") {
      if (!valid_id(segments[i]))
        return false;
      found.emplace_back(segments[i]);
    } else if (pattern[i] != segments[i]) {
      return false;
    }
  }
  params = std::move(found);
  return true;
}

http_response rate_limited(int64_t retry_after_s) {
  auto res = error_response(errc::rate_limited, "too many requests, slow down");
  res.headers.emplace_back("Retry-After", std::to_string(retry_after_s));
  return res;
}

std::string route_label(const route& r) {
  std::string path;
  for (auto seg : r.pattern)
    path += "/" + std::string{seg};
  return path;
}

} // namespace

namespace {

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
  auto segments = split_path(c->req.path);
  std::string allowed;
  for (auto& r : routes()) {
    std::vector<std::string> params;
    if (!match(r.pattern, segments, params))
      continue;
    if (r.method != c->req.method) {
      allowed += allowed.empty() ? "" : ", ";
      allowed += r.method;
      continue;
    }
    c->params = std::move(params);
    c->route = route_label(r);
    if (r.handler == nullptr) // deposits and withdrawals share one handler
      return move_money(c, segments[2] == "deposits");
    return (this->*r.handler)(c);
  }
  if (allowed.empty())
    return c->respond(error_response(errc::not_found, "no such resource"));
  auto res = json_response(
    405, json::object{{"error", json::object{{"code", "method_not_allowed"},
                                             {"message", "use " + allowed}}}});
  res.headers.emplace_back("Allow", allowed);
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
