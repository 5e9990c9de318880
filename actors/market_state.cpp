#include "wager/actors/market_state.hpp"

#include "wager/actors/json_codec.hpp"
#include "wager/runtime/assert.hpp"
#include "wager/runtime/overloaded.hpp"

#include <boost/multiprecision/cpp_int.hpp>

#include <algorithm>
#include <limits>

namespace wager {

using namespace json_codec;

namespace {

uint32_t get_u32(const json::object& o, std::string_view key) {
  auto v = get_int(o, key);
  if (v < 0 || v > std::numeric_limits<uint32_t>::max())
    throw decode_error{};
  return static_cast<uint32_t>(v);
}

errc parse_errc(std::string_view code) {
  if (auto e = parse_code(code))
    return *e;
  throw decode_error{};
}

json::object accepted_to_json(const accepted_bet& b) {
  json::object o{{"bet", b.bet.value},   {"user", b.user.value},  {"selection", b.selection.value},
                 {"stake", b.stake.minor}, {"price", b.accepted.hundredths}};
  if (b.each_way) {
    o["each_way"] = true;
    o["place_fraction"] = to_string(b.place_fraction);
  }
  if (b.leg) {
    o["leg"] = true;
    o["liability"] = b.leg_liability.minor;
  }
  if (b.round != 0)
    o["round"] = b.round;
  if (b.resettled)
    o["resettled"] = true;
  return o;
}

accepted_bet accepted_from_json(const json::object& o) {
  accepted_bet b{get_id<bet_id>(o, "bet"), get_id<user_id>(o, "user"),
                 get_id<selection_id>(o, "selection"), get_money(o, "stake"),
                 get_price(o, "price")};
  if (o.contains("each_way")) {
    b.each_way = get_bool(o, "each_way");
    b.place_fraction = get_ratio(o, "place_fraction");
  }
  if (o.contains("leg")) {
    b.leg = get_bool(o, "leg");
    b.leg_liability = get_money(o, "liability");
  }
  if (o.contains("round"))
    b.round = get_u32(o, "round");
  if (o.contains("resettled"))
    b.resettled = get_bool(o, "resettled");
  return b;
}

market_definition definition_from(const json::object& o) {
  market_definition d;
  d.id = get_id<market_id>(o, "market_id");
  d.event = get_string(o, "event");
  d.name = get_string(o, "name");
  for (auto& s : get_array(o, "selections")) {
    auto& so = get_object(s);
    d.selections.push_back({get_id<selection_id>(so, "selection_id"),
                            get_string(so, "name"), get_price(so, "price")});
  }
  auto& limits = get_object(field(o, "limits"));
  d.limits = {get_money(limits, "max_stake"), get_money(limits, "max_liability"), {}};
  if (limits.contains("max_payout"))
    d.limits.max_payout = get_money(limits, "max_payout");
  d.in_play_delay_ms = get_int(o, "in_play_delay_ms");
  if (o.contains("each_way")) {
    auto& ew = get_object(field(o, "each_way"));
    auto places = get_int(ew, "places");
    if (places < 1 || places > each_way_places_max)
      throw decode_error{};
    d.each_way = {static_cast<uint32_t>(places), get_ratio(ew, "fraction")};
  }
  return d;
}

bool racing(const market_resulted& r) {
  return !r.placed.empty() || !r.void_selections.empty() || !r.dead_heat.empty()
         || !r.rule4.empty();
}

// A result's payload: winners and void as version 1 wrote them, and the
// racing fields when there are any.
json::object result_to_json(const market_resulted& r) {
  json::object o{{"winners", string_array(r.winners)}, {"void", r.voided}};
  if (!r.placed.empty())
    o["placed"] = string_array(r.placed);
  if (!r.void_selections.empty())
    o["void_selections"] = string_array(r.void_selections);
  if (!r.dead_heat.empty()) {
    json::object heat;
    for (auto& [sel, factor] : r.dead_heat)
      heat[sel] = to_string(factor);
    o["dead_heat"] = std::move(heat);
  }
  if (!r.rule4.empty()) {
    json::array rule4;
    for (auto& d : r.rule4)
      rule4.push_back(json::object{{"deduction", d.deduction}, {"before", d.before_ms}});
    o["rule4"] = std::move(rule4);
  }
  return o;
}

market_resulted result_from(const json::object& o) {
  market_resulted r;
  r.winners = strings_of(o, "winners");
  r.voided = get_bool(o, "void");
  r.placed = strings_of(o, "placed");
  r.void_selections = strings_of(o, "void_selections");
  if (o.contains("dead_heat"))
    for (auto& [sel, factor] : get_object(field(o, "dead_heat"))) {
      if (!factor.is_string())
        throw decode_error{};
      auto f = parse_ratio(factor.get_string());
      if (!f)
        throw decode_error{};
      r.dead_heat[std::string{sel}] = *f;
    }
  if (o.contains("rule4"))
    for (auto& d : get_array(o, "rule4")) {
      auto& dobj = get_object(d);
      r.rule4.push_back({static_cast<int32_t>(get_int(dobj, "deduction")),
                         get_int(dobj, "before")});
    }
  return r;
}

bool named(const std::vector<std::string>& list, const std::string& id) {
  return std::find(list.begin(), list.end(), id) != list.end();
}

} // namespace

const selection* market_state::find_selection(const std::string& id) const {
  for (auto& s : definition.selections)
    if (s.id.value == id)
      return &s;
  return nullptr;
}

json::object definition_to_json(const market_definition& d) {
  json::array selections;
  for (auto& s : d.selections)
    selections.push_back(json::object{{"selection_id", s.id.value},
                                      {"name", s.name},
                                      {"price", s.current.hundredths}});
  json::object limits{{"max_stake", d.limits.max_stake.minor},
                      {"max_liability", d.limits.max_liability.minor}};
  if (d.limits.max_payout.minor > 0)
    limits["max_payout"] = d.limits.max_payout.minor;
  json::object o{{"market_id", d.id.value},
                 {"event", d.event},
                 {"name", d.name},
                 {"selections", std::move(selections)},
                 {"limits", std::move(limits)},
                 {"in_play_delay_ms", d.in_play_delay_ms}};
  if (d.has_each_way())
    o["each_way"] = json::object{{"places", d.each_way.places},
                                 {"fraction", to_string(d.each_way.fraction)}};
  return o;
}

std::optional<market_definition> definition_from_json(const json::value& v) {
  return try_decode([&] { return definition_from(get_object(v)); });
}

event encode(const market_event& e) {
  return std::visit(
    overloaded{
      [](const market_defined& d) {
        return event::make("market_defined", 1, definition_to_json(d.definition));
      },
      [](const status_changed& s) {
        return event::make("status_changed", 1, json::object{{"status", to_string(s.status)}});
      },
      [](const prices_changed& p) {
        json::object prices;
        for (auto& [sel, pr] : p.prices)
          prices[sel] = pr.hundredths;
        return event::make("prices_changed", 1, json::object{{"prices", std::move(prices)}});
      },
      [](const bet_accepted& b) {
        return event::make("bet_accepted", 1,
                           accepted_to_json({b.bet, b.user, b.selection, b.stake, b.accepted, 0,
                                             b.each_way, b.place_fraction, b.leg,
                                             b.liability}));
      },
      [](const bet_rejected& r) {
        json::object o{{"bet", r.bet.value}, {"reason", to_code(r.reason)}};
        if (r.current)
          o["current_price"] = r.current->hundredths;
        return event::make("bet_rejected", 1, o);
      },
      [](const market_resulted& r) {
        // Version 2 adds the racing fields; a result without them is
        // written as version 1 wrote it.
        return event::make("market_resulted", racing(r) ? 2 : 1, result_to_json(r));
      },
      [](const selection_withdrawn& w) {
        return event::make("selection_withdrawn", 1,
                           json::object{{"selection", w.selection.value}});
      },
      [](const bets_cancelled& c) {
        return event::make("bets_cancelled", 1,
                           json::object{{"from", c.from_ms},
                                        {"to", c.to_ms},
                                        {"bets", string_array(c.bets)}});
      },
      [](const leg_released& r) {
        return event::make("leg_released", 1, json::object{{"bet", r.bet.value}});
      },
      [](const bet_cashed_out& c) {
        return event::make("bet_cashed_out", 1,
                           json::object{{"bet", c.bet.value},
                                        {"request_id", c.request.value},
                                        {"stake", c.stake.minor},
                                        {"amount", c.amount.minor},
                                        {"price", c.at.hundredths},
                                        {"margin", json::array{c.margin.n, c.margin.d}}});
      },
      [](const payouts_acknowledged& p) {
        json::array bets;
        for (auto& b : p.bets)
          bets.push_back(json::string{b});
        if (p.rounds.empty())
          return event::make("payouts_acknowledged", 1, json::object{{"bets", std::move(bets)}});
        json::array rounds;
        for (auto r : p.rounds)
          rounds.push_back(r);
        return event::make("payouts_acknowledged", 2,
                           json::object{{"bets", std::move(bets)}, {"rounds", std::move(rounds)}});
      },
      [](const settlement_rolled_back&) {
        return event::make("settlement_rolled_back", 1, json::object{});
      },
    },
    e);
}

std::optional<market_event> decode_market_event(const event& e) {
  auto doc = e.json();
  return try_decode([&]() -> market_event {
    auto& o = get_object(doc);
    if (e.type == "market_defined")
      return market_defined{definition_from(o)};
    if (e.type == "status_changed") {
      auto status = parse_market_status(get_string(o, "status"));
      if (!status)
        throw decode_error{};
      return status_changed{*status};
    }
    if (e.type == "prices_changed") {
      prices_changed p;
      for (auto& [sel, pr] : get_object(field(o, "prices"))) {
        if (!pr.is_int64())
          throw decode_error{};
        p.prices[std::string{sel}] = price{static_cast<int32_t>(pr.get_int64())};
      }
      return p;
    }
    if (e.type == "bet_accepted") {
      auto b = accepted_from_json(o);
      return bet_accepted{b.bet,      b.user,           b.selection, b.stake, b.accepted,
                          b.each_way, b.place_fraction, b.leg,       b.leg_liability};
    }
    if (e.type == "bet_rejected") {
      bet_rejected r{get_id<bet_id>(o, "bet"), parse_errc(get_string(o, "reason")), {}};
      if (o.contains("current_price"))
        r.current = get_price(o, "current_price");
      return r;
    }
    if (e.type == "market_resulted")
      return result_from(o);
    if (e.type == "selection_withdrawn")
      return selection_withdrawn{get_id<selection_id>(o, "selection")};
    if (e.type == "bets_cancelled")
      return bets_cancelled{get_int(o, "from"), get_int(o, "to"), strings_of(o, "bets")};
    if (e.type == "leg_released")
      return leg_released{get_id<bet_id>(o, "bet")};
    if (e.type == "bet_cashed_out")
    {
      auto& m = get_array(o, "margin");
      if (m.size() != 2 || !m[0].is_int64() || !m[1].is_int64() || m[1].get_int64() <= 0)
        throw decode_error{};
      return bet_cashed_out{get_id<bet_id>(o, "bet"),    get_id<request_id>(o, "request_id"),
                            get_money(o, "stake"),       get_money(o, "amount"),
                            get_price(o, "price"),
                            cashout_margin{static_cast<int32_t>(m[0].get_int64()),
                                           static_cast<int32_t>(m[1].get_int64())}};
    }
    if (e.type == "payouts_acknowledged") {
      payouts_acknowledged p;
      for (auto& b : get_array(o, "bets")) {
        if (!b.is_string())
          throw decode_error{};
        p.bets.emplace_back(b.get_string());
      }
      if (o.contains("rounds")) {
        for (auto& r : get_array(o, "rounds")) {
          if (!r.is_int64() || r.get_int64() < 0
              || r.get_int64() > std::numeric_limits<uint32_t>::max())
            throw decode_error{};
          p.rounds.push_back(static_cast<uint32_t>(r.get_int64()));
        }
        if (p.rounds.size() != p.bets.size())
          throw decode_error{};
      }
      return p;
    }
    if (e.type == "settlement_rolled_back")
      return settlement_rolled_back{};
    throw decode_error{};
  });
}

money bet_liability(money stake, price p, bool each_way, ratio place_fraction) {
  auto win = liability(stake, p);
  if (!each_way)
    return win;
  // stake x (price - 1) x n/d, in hundredths, rounded up, without the
  // product overflowing: q x n / den as (q / den) x n + (q % den) x n / den.
  int64_t q = stake.minor * (p.hundredths - 100);
  int64_t den = int64_t{100} * place_fraction.d;
  int64_t n = place_fraction.n;
  return win + money{(q / den) * n + ((q % den) * n + den - 1) / den};
}

money leg_liability_at(money at_asked, price asked, price taken) {
  if (taken <= asked)
    return at_asked;
  // at_asked x (taken - 1) / (asked - 1), rounded up, in 128 bits: the
  // product of an int64 and a price overflows 64.
  using boost::multiprecision::int128_t;
  int128_t num = int128_t{at_asked.minor} * (taken.hundredths - 100);
  int128_t den = asked.hundredths - 100;
  int128_t q = (num + den - 1) / den;
  constexpr auto top = std::numeric_limits<int64_t>::max();
  return money{q > top ? top : q.convert_to<int64_t>()};
}

int32_t rule4_for(const std::vector<rule4_deduction>& rule4, int64_t accepted_at_ms) {
  int32_t total = 0;
  for (auto& d : rule4)
    if (accepted_at_ms < d.before_ms)
      total += d.deduction;
  return std::min(total, rule4_max);
}

settlement_line settle_line(const market_state& s, const accepted_bet& b) {
  auto& sel = b.selection.value;
  // A void bet returns all it staked: both halves each-way.
  auto refund = money{b.stake.minor * (b.each_way ? 2 : 1)};
  if (s.voided_early(b))
    return {bet_status::void_, refund};
  WAGER_ASSERT(s.result.has_value(), "a bet settles on a result or a non-runner");
  auto& r = *s.result;
  if (r.voided || named(r.void_selections, sel))
    return {bet_status::void_, refund};
  bool won = named(r.winners, sel);
  bool placed = named(r.placed, sel);
  // A win bet on a placed selection loses; an each-way bet's place half wins.
  if (!won && !(placed && b.each_way))
    return {bet_status::lost, {}};
  auto heat = r.dead_heat.find(sel);
  auto deduction = rule4_for(r.rule4, b.accepted_at_ms);
  if (!b.each_way && heat == r.dead_heat.end() && deduction == 0)
    return {bet_status::won, potential_payout(b.stake, b.accepted)};
  slip single;
  single.stake = b.stake;
  single.each_way = b.each_way;
  slip_leg leg;
  leg.taken = b.accepted;
  leg.result = won ? leg_result::won : leg_result::placed;
  if (b.each_way)
    leg.place_fraction = b.place_fraction;
  if (heat != r.dead_heat.end())
    leg.dead_heat = heat->second;
  leg.rule4 = deduction;
  single.legs.push_back(leg);
  auto amount = payout_of(single).total;
  return {amount.minor > 0 ? bet_status::won : bet_status::lost, amount};
}

money single_cashout_value(const accepted_bet& b, money stake, price now, cashout_margin margin) {
  slip single;
  single.stake = stake;
  single.each_way = b.each_way;
  slip_leg leg;
  leg.taken = b.accepted;
  if (b.each_way)
    leg.place_fraction = b.place_fraction;
  single.legs.push_back(leg);
  std::vector<price> prices{now};
  return cashout_value(single, prices, margin);
}

leg_outcome leg_outcome_of(const market_state& s, const accepted_bet& b) {
  auto& sel = b.selection.value;
  if (s.voided_early(b))
    return {leg_result::void_, {}, 0};
  WAGER_ASSERT(s.result.has_value(), "a leg settles on a result or a non-runner");
  auto& r = *s.result;
  if (r.voided || named(r.void_selections, sel))
    return {leg_result::void_, {}, 0};
  bool won = named(r.winners, sel);
  if (!won && !named(r.placed, sel))
    return {leg_result::lost, {}, 0};
  leg_outcome out{won ? leg_result::won : leg_result::placed, {}, 0};
  if (auto heat = r.dead_heat.find(sel); heat != r.dead_heat.end())
    out.dead_heat = heat->second;
  out.rule4 = rule4_for(r.rule4, b.accepted_at_ms);
  return out;
}

namespace {

// The outbox owes bet `id` what the state now makes of it, in this round.
void owe(market_state& s, const std::string& id, accepted_bet& b) {
  b.resettled = b.round != 0;
  b.round = s.round;
  s.outbox.insert(id);
}

} // namespace

void apply(market_state& s, const market_event& e, uint64_t seq, int64_t at_ms) {
  WAGER_ASSERT(seq == s.seq + 1, "market events are contiguous");
  s.seq = seq;
  std::visit(
    overloaded{
      [&](const market_defined& d) {
        s.definition = d.definition;
        s.defined = true;
        ++s.version;
      },
      [&](const status_changed& c) {
        WAGER_ASSERT(transition_allowed(s.status, c.status), "a recorded transition is legal");
        s.status = c.status;
        ++s.version;
      },
      [&](const prices_changed& p) {
        for (auto& sel : s.definition.selections)
          if (auto i = p.prices.find(sel.id.value); i != p.prices.end())
            sel.current = i->second;
        ++s.version;
      },
      [&](const bet_accepted& b) {
        accepted_bet a{b.bet,      b.user,           b.selection, b.stake, b.accepted, at_ms,
                       b.each_way, b.place_fraction, b.leg,       b.liability};
        s.liability[b.selection.value] += bet_liability(a);
        s.bets[b.bet.value] = std::move(a);
      },
      [&](const bet_rejected&) {},
      [&](const market_resulted& r) {
        WAGER_ASSERT(!s.result, "a market has one result at a time");
        s.result = r;
        s.status = r.voided ? market_status::voided : market_status::settled;
        ++s.version;
        ++s.round;
        // Non-runners' and cancelled bets were refunded before; a bet
        // cashed out in full is owed nothing.
        for (auto& [id, b] : s.bets)
          if (!s.voided_early(b) && b.stake.minor > 0)
            owe(s, id, b);
      },
      [&](const settlement_rolled_back&) {
        WAGER_ASSERT(s.result.has_value(), "only a result is rolled back");
        ++s.round;
        ++s.rollbacks;
        // What the result paid goes back: the bets it settled, as above.
        for (auto& [id, b] : s.bets)
          if (!s.voided_early(b) && b.stake.minor > 0)
            owe(s, id, b);
        s.result.reset();
        s.status = market_status::closed;
        ++s.version;
      },
      [&](const selection_withdrawn& w) {
        WAGER_ASSERT(!s.result && !s.is_withdrawn(w.selection.value),
                     "a runner is withdrawn once, before the result");
        s.withdrawn.insert(w.selection.value);
        s.liability.erase(w.selection.value);
        ++s.version;
        ++s.round;
        // Its cancelled bets were refunded before.
        for (auto& [id, b] : s.bets)
          if (b.selection == w.selection && s.cancelled.count(id) == 0 && b.stake.minor > 0)
            owe(s, id, b);
      },
      [&](const bets_cancelled& c) {
        ++s.round;
        for (auto& id : c.bets) {
          auto i = s.bets.find(id);
          WAGER_ASSERT(i != s.bets.end() && !s.voided_early(i->second),
                       "a cancelled bet is an accepted bet not yet voided");
          auto& b = i->second;
          s.liability[b.selection.value] -= bet_liability(b);
          s.cancelled.insert(id);
          if (b.stake.minor > 0)
            owe(s, id, b);
        }
      },
      [&](const bet_cashed_out& c) {
        auto i = s.bets.find(c.bet.value);
        WAGER_ASSERT(i != s.bets.end() && !i->second.leg && c.stake <= i->second.stake
                       && !s.result && !s.voided_early(i->second),
                     "a cashed-out stake is a running single's");
        auto& b = i->second;
        s.liability[b.selection.value] -= bet_liability(b);
        b.stake -= c.stake;
        s.liability[b.selection.value] += bet_liability(b);
        auto key = cashout_key(c.bet.value, c.request.value);
        s.cashouts[key] = {c.bet, b.user, c.request, c.stake, c.amount};
        s.outbox.insert(key);
      },
      [&](const leg_released& r) {
        auto i = s.bets.find(r.bet.value);
        WAGER_ASSERT(i != s.bets.end() && i->second.leg, "a released leg was accepted");
        if (!s.voided_early(i->second))
          s.liability[i->second.selection.value] -= bet_liability(i->second);
        s.cancelled.erase(r.bet.value);
        s.outbox.erase(r.bet.value);
        s.bets.erase(i);
      },
      [&](const payouts_acknowledged& p) {
        for (size_t k = 0; k < p.bets.size(); ++k) {
          auto& id = p.bets[k];
          if (!p.rounds.empty() && !is_cashout_key(id)) {
            // An acknowledgement of a round the bet has moved past is
            // stale: the outbox owes the newer one.
            auto b = s.bets.find(id);
            if (b != s.bets.end() && b->second.round != p.rounds[k])
              continue;
          }
          s.outbox.erase(id);
          s.cashouts.erase(id);
        }
      },
    },
    e);
}

void check_invariants(const market_state& s) {
  std::map<std::string, money> liability_sum;
  for (auto& [id, b] : s.bets) {
    WAGER_ASSERT(b.stake.minor >= 0, "an accepted stake is never negative (0: cashed out)");
    if (!s.voided_early(b))
      liability_sum[b.selection.value] += bet_liability(b);
  }
  for (auto& [sel, l] : s.liability)
    WAGER_ASSERT(l.minor >= 0, "liability is never negative");
  for (auto& [sel, l] : liability_sum) {
    auto i = s.liability.find(sel);
    WAGER_ASSERT(i != s.liability.end() && i->second == l,
                 "liability equals the sum over accepted bets");
  }
  for (auto& sel : s.withdrawn)
    WAGER_ASSERT(s.liability.count(sel) == 0, "a non-runner carries no liability");
  for (auto& id : s.outbox) {
    if (is_cashout_key(id)) {
      WAGER_ASSERT(s.cashouts.count(id) > 0, "the outbox owes recorded cash-outs");
      continue;
    }
    auto b = s.bets.find(id);
    WAGER_ASSERT(b != s.bets.end(), "the outbox owes accepted bets");
    WAGER_ASSERT(s.result || s.voided_early(b->second) || s.rollbacks > 0,
                 "only a result, a non-runner, a cancellation or a rollback owes payouts");
    WAGER_ASSERT(b->second.round != 0 && b->second.round <= s.round,
                 "what the outbox owes is of a round the market has had");
  }
}

std::string to_json_text(const bet_decision& d) {
  json::object o{{"bet", d.bet.value}, {"accepted", d.accepted}};
  if (d.accepted)
    o["price"] = d.at.hundredths;
  else
    o["reason"] = to_code(d.reason);
  if (d.current.hundredths != 0)
    o["current_price"] = d.current.hundredths;
  if (d.place_fraction != ratio{})
    o["place_fraction"] = to_string(d.place_fraction);
  if (d.max_payout.minor > 0)
    o["max_payout"] = d.max_payout.minor;
  return json::serialize(o);
}

std::optional<bet_decision> bet_decision_from_json(const std::string& text) {
  boost::system::error_code ec;
  auto doc = json::parse(text, ec);
  if (ec)
    return std::nullopt;
  return try_decode([&] {
    auto& o = get_object(doc);
    bet_decision d;
    d.bet = get_id<bet_id>(o, "bet");
    d.accepted = get_bool(o, "accepted");
    if (d.accepted)
      d.at = get_price(o, "price");
    else
      d.reason = parse_errc(get_string(o, "reason"));
    if (o.contains("current_price"))
      d.current = get_price(o, "current_price");
    if (o.contains("place_fraction"))
      d.place_fraction = get_ratio(o, "place_fraction");
    if (o.contains("max_payout"))
      d.max_payout = get_money(o, "max_payout");
    return d;
  });
}

json::value to_json(const market_state& s) {
  json::array bets, outbox;
  for (auto& [id, b] : s.bets) {
    auto o = accepted_to_json(b);
    o["at"] = b.accepted_at_ms;
    bets.push_back(std::move(o));
  }
  for (auto& id : s.outbox)
    outbox.push_back(json::string{id});
  json::object o{{"seq", s.seq},
                 {"defined", s.defined},
                 {"definition", definition_to_json(s.definition)},
                 {"status", to_string(s.status)},
                 {"version", s.version},
                 {"bets", std::move(bets)},
                 {"outbox", std::move(outbox)},
                 {"round", s.round},
                 {"rollbacks", s.rollbacks}};
  if (s.result)
    o["result"] = result_to_json(*s.result);
  if (!s.withdrawn.empty())
    o["withdrawn"] = string_array({s.withdrawn.begin(), s.withdrawn.end()});
  if (!s.cancelled.empty())
    o["cancelled"] = string_array({s.cancelled.begin(), s.cancelled.end()});
  if (!s.cashouts.empty()) {
    json::array cashouts;
    for (auto& [key, c] : s.cashouts)
      cashouts.push_back(json::object{{"bet", c.bet.value},
                                      {"user", c.user.value},
                                      {"request_id", c.request.value},
                                      {"stake", c.stake.minor},
                                      {"amount", c.amount.minor}});
    o["cashouts"] = std::move(cashouts);
  }
  return o;
}

std::optional<market_state> market_state_from_json(const json::value& v) {
  return try_decode([&] {
    auto& o = get_object(v);
    market_state s;
    s.seq = static_cast<uint64_t>(get_int(o, "seq"));
    s.defined = get_bool(o, "defined");
    s.definition = definition_from(get_object(field(o, "definition")));
    auto status = parse_market_status(get_string(o, "status"));
    if (!status)
      throw decode_error{};
    s.status = *status;
    s.version = static_cast<uint64_t>(get_int(o, "version"));
    s.round = get_u32(o, "round");
    s.rollbacks = get_u32(o, "rollbacks");
    for (auto& w : strings_of(o, "withdrawn"))
      s.withdrawn.insert(w);
    for (auto& c : strings_of(o, "cancelled"))
      s.cancelled.insert(c);
    for (auto& b : get_array(o, "bets")) {
      auto& bo = get_object(b);
      auto a = accepted_from_json(bo);
      a.accepted_at_ms = get_int(bo, "at");
      if (!s.voided_early(a))
        s.liability[a.selection.value] += bet_liability(a);
      s.bets[a.bet.value] = std::move(a);
    }
    for (auto& id : get_array(o, "outbox")) {
      if (!id.is_string())
        throw decode_error{};
      s.outbox.insert(std::string{id.get_string()});
    }
    if (o.contains("result"))
      s.result = result_from(get_object(field(o, "result")));
    if (o.contains("cashouts"))
      for (auto& c : get_array(o, "cashouts")) {
        auto& co = get_object(c);
        market_state::cashout_owed owed{get_id<bet_id>(co, "bet"), get_id<user_id>(co, "user"),
                                        get_id<request_id>(co, "request_id"),
                                        get_money(co, "stake"), get_money(co, "amount")};
        s.cashouts[cashout_key(owed.bet.value, owed.request.value)] = owed;
      }
    return s;
  });
}

} // namespace wager
