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

// {max_stake, max_liability, max_payout?}: max_payout only when the market
// caps its slips.
json::object limits_json(const market_limits& l) {
  json::object o{{"max_stake", l.max_stake.minor}, {"max_liability", l.max_liability.minor}};
  if (l.max_payout.minor > 0)
    o["max_payout"] = l.max_payout.minor;
  return o;
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
                 {"limits", limits_json(m.definition.limits)},
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
  // Version 1.1: every bet is a slip; a single's leg is its market and
  // selection, with the bet's outcome as its result.
  o["type"] = to_string(b.type);
  o["lines"] = b.lines();
  json::array legs;
  if (!b.is_slip()) {
    // The result its market gave the selection; a bet settled before
    // results were kept (or read from the history) shows it by its status.
    auto result = b.result != leg_result::open || b.status == bet_status::open ? b.result
                  : b.status == bet_status::won                               ? leg_result::won
                  : b.status == bet_status::lost                              ? leg_result::lost
                  : b.status == bet_status::void_                             ? leg_result::void_
                                                                              : leg_result::open;
    json::object leg{{"market_id", b.market.value},
                     {"selection_id", b.selection.value},
                     {"price", format_price(b.accepted)},
                     {"result", to_string(result)}};
    add_odds(leg, b.accepted, odds);
    legs.push_back(std::move(leg));
  }
  for (auto& l : b.legs) {
    json::object leg{{"market_id", l.market.value},
                     {"selection_id", l.selection.value},
                     {"price", format_price(l.accepted)},
                     {"result", to_string(l.result)}};
    if (b.each_way)
      leg["place_fraction"] = to_string(l.place_fraction);
    if (l.dead_heat != ratio{})
      leg["dead_heat"] = to_string(l.dead_heat);
    if (l.rule4 != 0)
      leg["rule4"] = l.rule4;
    add_odds(leg, l.accepted, odds);
    legs.push_back(std::move(leg));
  }
  o["legs"] = std::move(legs);
  if (b.max_payout.minor > 0)
    o["max_payout"] = b.max_payout.minor;
  if (b.cashed_out_stake.minor > 0)
    o["cashed_out"] = b.cashed_out.minor;
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
