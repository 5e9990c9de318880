#include "wager/gateway/api_router.hpp"

#include "wager/actors/ids.hpp"

namespace wager::api {

namespace {

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

} // namespace

const std::vector<route>& routes() {
  using enum route_id;
  static const std::vector<route> table{
    {"POST", {"v1", "users"}, create_user},
    {"POST", {"v1", "sessions"}, create_session},
    {"DELETE", {"v1", "sessions", "current"}, delete_session},
    {"POST", {"v1", "users", "me", "mfa"}, enrol_mfa},
    {"POST", {"v1", "users", "me", "mfa", "confirm"}, confirm_mfa},
    {"PUT", {"v1", "users", "me", "limits"}, set_limits},
    {"GET", {"v1", "users", "me", "limits"}, get_limits},
    {"GET", {"v1", "wallet"}, get_wallet},
    {"POST", {"v1", "wallet", "deposits"}, deposit},
    {"POST", {"v1", "wallet", "withdrawals"}, withdraw},
    {"GET", {"v1", "wallet", "transactions"}, get_transactions},
    {"GET", {"v1", "markets"}, list_markets},
    {"GET", {"v1", "markets", "{}"}, get_market},
    {"POST", {"v1", "bets"}, place_bet},
    {"GET", {"v1", "bets"}, list_bets},
    {"GET", {"v1", "bets", "{}"}, get_bet},
    {"GET", {"v1", "bets", "{}", "cashout"}, get_cashout},
    {"POST", {"v1", "bets", "{}", "cashout"}, cash_out},
    {"POST", {"v1", "admin", "markets"}, admin_create_market},
    {"POST", {"v1", "admin", "markets", "{}", "status"}, admin_market_status},
    {"POST", {"v1", "admin", "markets", "{}", "prices"}, admin_market_prices},
    {"POST", {"v1", "admin", "markets", "{}", "settle"}, admin_settle},
    {"POST", {"v1", "admin", "markets", "{}", "selections", "{}", "void"},
     admin_withdraw_selection},
    {"POST", {"v1", "admin", "markets", "{}", "cancel-bets"}, admin_cancel_bets},
    {"POST", {"v1", "admin", "markets", "{}", "unsettle"}, admin_unsettle},
    {"GET", {"v1", "admin", "health"}, admin_health},
    {"POST", {"v1", "admin", "drain"}, admin_drain},
    {"POST", {"v1", "admin", "feed"}, admin_feed},
    {"GET", {"v1", "admin", "blocks"}, admin_blocks},
    {"DELETE", {"v1", "admin", "blocks", "{}"}, admin_lift_block},
  };
  return table;
}

std::string route_label(const route& r) {
  std::string path;
  for (auto seg : r.pattern)
    path += "/" + std::string{seg};
  return path;
}

route_match match_route(std::string_view method, std::string_view path) {
  auto segments = split_path(path);
  route_match out;
  for (auto& r : routes()) {
    std::vector<std::string> params;
    if (!match(r.pattern, segments, params))
      continue;
    if (r.method != method) {
      out.allowed += out.allowed.empty() ? "" : ", ";
      out.allowed += r.method;
      continue;
    }
    out.matched = &r;
    out.params = std::move(params);
    out.allowed.clear();
    return out;
  }
  return out;
}

} // namespace wager::api
