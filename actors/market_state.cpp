#include "wager/actors/market_state.hpp"

#include "wager/actors/json_codec.hpp"
#include "wager/runtime/assert.hpp"
#include "wager/runtime/overloaded.hpp"

namespace wager {

using namespace json_codec;

namespace {

errc parse_errc(std::string_view code) {
  for (uint8_t i = 0; i <= static_cast<uint8_t>(errc::internal); ++i)
    if (to_code(static_cast<errc>(i)) == code)
      return static_cast<errc>(i);
  throw decode_error{};
}

json::object accepted_to_json(const accepted_bet& b) {
  return {{"bet", b.bet.value},   {"user", b.user.value},  {"selection", b.selection.value},
          {"stake", b.stake.minor}, {"price", b.accepted.hundredths}};
}

accepted_bet accepted_from_json(const json::object& o) {
  return {get_id<bet_id>(o, "bet"), get_id<user_id>(o, "user"),
          get_id<selection_id>(o, "selection"), get_money(o, "stake"),
          get_price(o, "price")};
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
  d.limits = {get_money(limits, "max_stake"), get_money(limits, "max_liability")};
  d.in_play_delay_ms = get_int(o, "in_play_delay_ms");
  return d;
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
  return {{"market_id", d.id.value},
          {"event", d.event},
          {"name", d.name},
          {"selections", std::move(selections)},
          {"limits", json::object{{"max_stake", d.limits.max_stake.minor},
                                  {"max_liability", d.limits.max_liability.minor}}},
          {"in_play_delay_ms", d.in_play_delay_ms}};
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
                           accepted_to_json({b.bet, b.user, b.selection, b.stake, b.accepted}));
      },
      [](const bet_rejected& r) {
        json::object o{{"bet", r.bet.value}, {"reason", to_code(r.reason)}};
        if (r.current)
          o["current_price"] = r.current->hundredths;
        return event::make("bet_rejected", 1, o);
      },
      [](const market_resulted& r) {
        json::array winners;
        for (auto& w : r.winners)
          winners.push_back(json::string{w});
        return event::make("market_resulted", 1,
                           json::object{{"winners", std::move(winners)}, {"void", r.voided}});
      },
      [](const payouts_acknowledged& p) {
        json::array bets;
        for (auto& b : p.bets)
          bets.push_back(json::string{b});
        return event::make("payouts_acknowledged", 1, json::object{{"bets", std::move(bets)}});
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
      return bet_accepted{b.bet, b.user, b.selection, b.stake, b.accepted};
    }
    if (e.type == "bet_rejected") {
      bet_rejected r{get_id<bet_id>(o, "bet"), parse_errc(get_string(o, "reason")), {}};
      if (o.contains("current_price"))
        r.current = get_price(o, "current_price");
      return r;
    }
    if (e.type == "market_resulted") {
      market_resulted r;
      for (auto& w : get_array(o, "winners")) {
        if (!w.is_string())
          throw decode_error{};
        r.winners.emplace_back(w.get_string());
      }
      r.voided = get_bool(o, "void");
      return r;
    }
    if (e.type == "payouts_acknowledged") {
      payouts_acknowledged p;
      for (auto& b : get_array(o, "bets")) {
        if (!b.is_string())
          throw decode_error{};
        p.bets.emplace_back(b.get_string());
      }
      return p;
    }
    throw decode_error{};
  });
}

settlement_line settle_line(const market_resulted& result, const accepted_bet& b) {
  if (result.voided)
    return {bet_status::void_, b.stake};
  for (auto& w : result.winners)
    if (w == b.selection.value)
      return {bet_status::won, potential_payout(b.stake, b.accepted)};
  return {bet_status::lost, {}};
}

void apply(market_state& s, const market_event& e, uint64_t seq) {
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
        s.liability[b.selection.value] += liability(b.stake, b.accepted);
        s.bets[b.bet.value] = {b.bet, b.user, b.selection, b.stake, b.accepted};
      },
      [&](const bet_rejected&) {},
      [&](const market_resulted& r) {
        WAGER_ASSERT(!s.result, "a market is resulted once");
        s.result = r;
        s.status = r.voided ? market_status::voided : market_status::settled;
        ++s.version;
        for (auto& [id, b] : s.bets)
          s.outbox.insert(id);
      },
      [&](const payouts_acknowledged& p) {
        for (auto& b : p.bets)
          s.outbox.erase(b);
      },
    },
    e);
}

void check_invariants(const market_state& s) {
  std::map<std::string, money> liability_sum;
  for (auto& [id, b] : s.bets) {
    WAGER_ASSERT(b.stake.minor > 0, "an accepted stake is positive");
    liability_sum[b.selection.value] += liability(b.stake, b.accepted);
  }
  for (auto& [sel, l] : liability_sum) {
    auto i = s.liability.find(sel);
    WAGER_ASSERT(i != s.liability.end() && i->second == l,
                 "liability equals the sum over accepted bets");
  }
  WAGER_ASSERT(s.result || s.outbox.empty(), "only a resulted market owes payouts");
}

std::string to_json_text(const bet_decision& d) {
  json::object o{{"bet", d.bet.value}, {"accepted", d.accepted}};
  if (d.accepted)
    o["price"] = d.at.hundredths;
  else
    o["reason"] = to_code(d.reason);
  if (d.current.hundredths != 0)
    o["current_price"] = d.current.hundredths;
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
    return d;
  });
}

json::value to_json(const market_state& s) {
  json::array bets, outbox, winners;
  for (auto& [id, b] : s.bets)
    bets.push_back(accepted_to_json(b));
  for (auto& id : s.outbox)
    outbox.push_back(json::string{id});
  json::object o{{"seq", s.seq},
                 {"defined", s.defined},
                 {"definition", definition_to_json(s.definition)},
                 {"status", to_string(s.status)},
                 {"version", s.version},
                 {"bets", std::move(bets)},
                 {"outbox", std::move(outbox)}};
  if (s.result) {
    for (auto& w : s.result->winners)
      winners.push_back(json::string{w});
    o["result"] = json::object{{"winners", std::move(winners)}, {"void", s.result->voided}};
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
    for (auto& b : get_array(o, "bets")) {
      auto a = accepted_from_json(get_object(b));
      s.liability[a.selection.value] += liability(a.stake, a.accepted);
      s.bets[a.bet.value] = std::move(a);
    }
    for (auto& id : get_array(o, "outbox")) {
      if (!id.is_string())
        throw decode_error{};
      s.outbox.insert(std::string{id.get_string()});
    }
    if (o.contains("result")) {
      auto& r = get_object(field(o, "result"));
      market_resulted res;
      for (auto& w : get_array(r, "winners")) {
        if (!w.is_string())
          throw decode_error{};
        res.winners.emplace_back(w.get_string());
      }
      res.voided = get_bool(r, "void");
      s.result = res;
    }
    return s;
  });
}

} // namespace wager
