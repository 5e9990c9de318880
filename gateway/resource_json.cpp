#include "wager/gateway/resource_json.hpp"

#include "wager/actors/market_status.hpp"

#include <boost/json.hpp>

#include <algorithm>

namespace wager {

namespace json = boost::json;

namespace {

void add_odds(json::object& o, price p, odds_format odds) {
  switch (odds) {
    case odds_format::decimal: break;
    case odds_format::fractional: o["price_fractional"] = fractional_odds(p); break;
    case odds_format::american: o["price_american"] = american_odds(p); break;
  }
}

} // namespace

json::object market_json(const market_view& m, odds_format odds) {
  json::array selections;
  for (auto& s : m.definition.selections) {
    json::object o{{"selection_id", s.id.value},
                   {"name", s.name},
                   {"price", format_price(s.current)}};
    add_odds(o, s.current, odds);
    if (std::find(m.withdrawn.begin(), m.withdrawn.end(), s.id.value) != m.withdrawn.end())
      o["withdrawn"] = true;
    selections.push_back(std::move(o));
  }
  json::object o{{"market_id", m.definition.id.value},
                 {"event", m.definition.event},
                 {"name", m.definition.name},
                 {"status", to_string(m.status)},
                 {"selections", std::move(selections)},
                 {"limits", json::object{{"max_stake", m.definition.limits.max_stake.minor},
                                         {"max_liability", m.definition.limits.max_liability.minor}}},
                 {"in_play_delay_ms", m.definition.in_play_delay_ms},
                 {"version", m.version}};
  if (m.definition.has_each_way())
    o["each_way"] = json::object{{"places", m.definition.each_way.places},
                                 {"fraction", to_string(m.definition.each_way.fraction)}};
  return o;
}

json::object bet_json(const bet& b, odds_format odds) {
  json::object o{{"bet_id", b.id.value},
                 {"market_id", b.market.value},
                 {"selection_id", b.selection.value},
                 {"stake", b.stake.minor},
                 {"price", format_price(b.accepted)},
                 {"status", to_string(b.status)},
                 {"potential_payout", b.potential().minor},
                 {"placed_at", format_time(b.placed_at_ms)},
                 {"each_way", b.each_way},
                 {"total_stake", b.total_stake().minor}};
  if (b.each_way)
    o["place_fraction"] = to_string(b.place_fraction);
  add_odds(o, b.accepted, odds);
  if (b.status != bet_status::open) {
    o["payout"] = b.payout.minor;
    if (b.settled_at_ms != 0)
      o["settled_at"] = format_time(b.settled_at_ms);
  }
  return o;
}

errc api_code(const caf::error& err) {
  if (err.category() != error_category)
    return errc::unavailable;
  switch (auto code = code_of(err)) {
    case errc::journal_failure:
    case errc::restart_intensity_exceeded:
    case errc::sequence_conflict: return errc::unavailable;
    default: return code;
  }
}

} // namespace wager
