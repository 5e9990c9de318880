#include "wager/gateway/stream_json.hpp"

#include "wager/gateway/resource_json.hpp"

#include <boost/json.hpp>

namespace wager {

namespace json = boost::json;

std::string market_message(const market_view& v) {
  return json::serialize(json::object{{"type", "market"}, {"market", market_json(v)}});
}

std::string status_message(const market_update& u) {
  json::object o{{"type", "status"},
                 {"market_id", u.market.value},
                 {"version", u.version},
                 {"status", to_string(u.status)}};
  if (!u.withdrawn.empty()) {
    json::array withdrawn;
    for (auto& sel : u.withdrawn)
      withdrawn.push_back(json::string{sel});
    o["withdrawn"] = std::move(withdrawn);
  }
  return json::serialize(o);
}

std::string bet_message(const bet& b) {
  return json::serialize(json::object{{"type", "bet"}, {"bet", bet_json(b)}});
}

std::string wallet_message(const wallet_balance& b) {
  return json::serialize(json::object{
    {"type", "wallet"}, {"available", b.available.minor}, {"held", b.held.minor}});
}

std::string reality_check_message(int64_t minutes, money staked, money returned) {
  return json::serialize(json::object{{"type", "reality_check"},
                                      {"minutes", minutes},
                                      {"staked", staked.minor},
                                      {"returned", returned.minor}});
}

std::string error_message(std::string_view code, std::string_view message,
                          std::string_view field) {
  json::object e{{"code", code}, {"message", message}};
  if (!field.empty())
    e["field"] = field;
  return json::serialize(json::object{{"type", "error"}, {"error", std::move(e)}});
}

} // namespace wager
