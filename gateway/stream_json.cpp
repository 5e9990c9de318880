#include "wager/gateway/stream_json.hpp"

#include <boost/json.hpp>

namespace wager {

namespace json = boost::json;

std::string market_message(const market_view& v) {
  json::array selections;
  for (auto& s : v.definition.selections)
    selections.push_back(json::object{
      {"selection_id", s.id.value}, {"name", s.name}, {"price", format_price(s.current)}});
  json::object market{
    {"market_id", v.definition.id.value},
    {"event", v.definition.event},
    {"name", v.definition.name},
    {"status", to_string(v.status)},
    {"selections", std::move(selections)},
    {"limits", json::object{{"max_stake", v.definition.limits.max_stake.minor},
                            {"max_liability", v.definition.limits.max_liability.minor}}},
    {"version", v.version}};
  return json::serialize(json::object{{"type", "market"}, {"market", std::move(market)}});
}

std::string status_message(const market_update& u) {
  return json::serialize(json::object{{"type", "status"},
                                      {"market_id", u.market.value},
                                      {"version", u.version},
                                      {"status", to_string(u.status)}});
}

std::string bet_message(const bet& b) {
  json::object o{{"bet_id", b.id.value},
                 {"market_id", b.market.value},
                 {"selection_id", b.selection.value},
                 {"stake", b.stake.minor},
                 {"price", format_price(b.accepted)},
                 {"status", to_string(b.status)},
                 {"potential_payout", b.potential().minor},
                 {"placed_at", b.placed_at_ms}};
  if (b.status != bet_status::open) {
    o["payout"] = b.payout.minor;
    o["settled_at"] = b.settled_at_ms;
  }
  return json::serialize(json::object{{"type", "bet"}, {"bet", std::move(o)}});
}

std::string wallet_message(const wallet_balance& b) {
  return json::serialize(json::object{
    {"type", "wallet"}, {"available", b.available.minor}, {"held", b.held.minor}});
}

std::string error_message(std::string_view code, std::string_view message,
                          std::string_view field) {
  json::object e{{"code", code}, {"message", message}};
  if (!field.empty())
    e["field"] = field;
  return json::serialize(json::object{{"type", "error"}, {"error", std::move(e)}});
}

} // namespace wager
