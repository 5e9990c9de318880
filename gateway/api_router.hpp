#pragma once

// The client API's routes and how a request's method and path find one:
// pure, so api.cpp dispatches with it and fuzz/router_fuzz.cpp drives it
// with any method and path. Not a public header.

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace wager::api {

// What a route does; api.cpp maps each to its handler.
enum class route_id : uint8_t {
  create_user,
  create_session,
  delete_session,
  enrol_mfa,
  confirm_mfa,
  set_limits,
  get_limits,
  get_wallet,
  deposit,
  withdraw,
  get_transactions,
  list_markets,
  get_market,
  place_bet,
  list_bets,
  get_bet,
  get_cashout,
  cash_out,
  admin_create_market,
  admin_market_status,
  admin_market_prices,
  admin_settle,
  admin_withdraw_selection,
  admin_cancel_bets,
  admin_unsettle,
  admin_health,
  admin_drain,
  admin_feed,
  admin_blocks,
  admin_lift_block,
};

struct route {
  std::string_view method;
  std::vector<std::string_view> pattern; // path segments; "{}" matches one id (ids.hpp)
  route_id id;
};

// Every route, in the order they are tried.
const std::vector<route>& routes();

// The route's pattern as a path ("/v1/markets/{}"): the metrics label, so
// ids never become label values.
std::string route_label(const route& r);

// How a method and a path meet the routes: a route (200 and the rest),
// none for the path (404), or routes for the path but not for the method
// (405, with `allowed`).
struct route_match {
  const route* matched = nullptr;  // the first route with the path and the method
  std::vector<std::string> params; // with `matched`: its {} segments, in order
  std::string allowed;             // without: the path's methods, ", " between; empty: 404
};

// `path` is the request target up to '?', undecoded: "/v1/markets/m1".
route_match match_route(std::string_view method, std::string_view path);

} // namespace wager::api
