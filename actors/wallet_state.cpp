#include "wager/actors/wallet_state.hpp"

#include "wager/actors/json_codec.hpp"
#include "wager/runtime/assert.hpp"
#include "wager/runtime/overloaded.hpp"

#include <tuple>

namespace wager {

using namespace json_codec;

json::object slip_to_json(const bet& b) {
  json::object o{{"type", to_string(b.type)}};
  json::array legs;
  for (auto& l : b.legs) {
    json::object lo{{"market", l.market.value},
                    {"selection", l.selection.value},
                    {"price", l.accepted.hundredths},
                    {"result", to_string(l.result)}};
    if (b.each_way)
      lo["place_fraction"] = to_string(l.place_fraction);
    if (l.dead_heat != ratio{})
      lo["dead_heat"] = to_string(l.dead_heat);
    if (l.rule4 != 0)
      lo["rule4"] = l.rule4;
    if (l.round != 0)
      lo["round"] = l.round;
    legs.push_back(std::move(lo));
  }
  o["legs"] = std::move(legs);
  if (b.max_payout.minor > 0)
    o["max_payout"] = b.max_payout.minor;
  return o;
}

bool slip_from_json(const json::object& o, bet& b) {
  auto parsed = try_decode([&] {
    auto type = parse_slip_type(get_string(o, "type"));
    if (!type)
      throw decode_error{};
    std::vector<bet_leg> legs;
    for (auto& v : get_array(o, "legs")) {
      auto& lo = get_object(v);
      bet_leg l;
      l.market = get_id<market_id>(lo, "market");
      l.selection = get_id<selection_id>(lo, "selection");
      l.accepted = get_price(lo, "price");
      auto result = parse_leg_result(get_string(lo, "result"));
      if (!result)
        throw decode_error{};
      l.result = *result;
      if (lo.contains("place_fraction"))
        l.place_fraction = get_ratio(lo, "place_fraction");
      if (lo.contains("dead_heat"))
        l.dead_heat = get_ratio(lo, "dead_heat");
      if (lo.contains("rule4"))
        l.rule4 = static_cast<int32_t>(get_int(lo, "rule4"));
      if (lo.contains("round"))
        l.round = static_cast<uint32_t>(get_int(lo, "round"));
      legs.push_back(std::move(l));
    }
    if (legs.empty() || line_count(*type, legs.size()) == 0)
      throw decode_error{};
    money cap;
    if (o.contains("max_payout"))
      cap = get_money(o, "max_payout");
    return std::tuple{*type, std::move(legs), cap};
  });
  if (!parsed)
    return false;
  std::tie(b.type, b.legs, b.max_payout) = std::move(*parsed);
  return true;
}

json::object bet_to_json(const bet& b) {
  json::object o{{"bet", b.id.value},       {"market", b.market.value},
                 {"selection", b.selection.value}, {"stake", b.stake.minor},
                 {"price", b.accepted.hundredths}, {"status", to_string(b.status)},
                 {"payout", b.payout.minor},       {"placed_at", b.placed_at_ms},
                 {"settled_at", b.settled_at_ms}};
  if (b.each_way) {
    o["each_way"] = true;
    o["place_fraction"] = to_string(b.place_fraction);
  }
  if (b.is_slip())
    for (auto& [k, v] : slip_to_json(b))
      o[k] = v;
  if (b.cashed_out_stake.minor > 0) {
    o["cashed_out"] = b.cashed_out.minor;
    o["cashed_out_stake"] = b.cashed_out_stake.minor;
  }
  if (b.round != 0)
    o["round"] = b.round;
  if (b.result != leg_result::open)
    o["result"] = to_string(b.result);
  return o;
}

namespace {

bet bet_from_object(const json::object& o) {
  bet b;
  b.id = get_id<bet_id>(o, "bet");
  b.market = get_id<market_id>(o, "market");
  b.selection = get_id<selection_id>(o, "selection");
  b.stake = get_money(o, "stake");
  b.accepted = get_price(o, "price");
  auto status = parse_bet_status(get_string(o, "status"));
  if (!status)
    throw decode_error{};
  b.status = *status;
  b.payout = get_money(o, "payout");
  b.placed_at_ms = get_int(o, "placed_at");
  b.settled_at_ms = get_int(o, "settled_at");
  if (o.contains("each_way")) {
    b.each_way = get_bool(o, "each_way");
    b.place_fraction = get_ratio(o, "place_fraction");
  }
  if (o.contains("legs") && !slip_from_json(o, b))
    throw decode_error{};
  if (o.contains("cashed_out_stake")) {
    b.cashed_out = get_money(o, "cashed_out");
    b.cashed_out_stake = get_money(o, "cashed_out_stake");
  }
  if (o.contains("round"))
    b.round = static_cast<uint32_t>(get_int(o, "round"));
  if (o.contains("result") && !b.is_slip()) {
    auto result = parse_leg_result(get_string(o, "result"));
    if (!result)
      throw decode_error{};
    b.result = *result;
  }
  return b;
}

json::object hold_to_json(const stake_held& h) {
  json::object o{{"request_id", h.request.value}, {"bet", h.bet.value},
                 {"market", h.market.value},      {"selection", h.selection.value},
                 {"stake", h.stake.minor},        {"price", h.asked.hundredths},
                 {"accept", to_string(h.accept)}, {"body_hash", std::to_string(h.body_hash)}};
  if (h.each_way)
    o["each_way"] = true;
  if (h.is_slip()) {
    o["type"] = to_string(h.type);
    json::array legs;
    for (auto& l : h.legs)
      legs.push_back(json::object{{"market", l.market.value},
                                  {"selection", l.selection.value},
                                  {"price", l.asked.hundredths}});
    o["legs"] = std::move(legs);
  }
  return o;
}

stake_held hold_from_json(const json::object& o) {
  stake_held h;
  h.request = get_id<request_id>(o, "request_id");
  h.bet = get_id<bet_id>(o, "bet");
  h.market = get_id<market_id>(o, "market");
  h.selection = get_id<selection_id>(o, "selection");
  h.stake = get_money(o, "stake");
  h.asked = get_price(o, "price");
  auto accept = parse_accept_policy(get_string(o, "accept"));
  if (!accept)
    throw decode_error{};
  h.accept = *accept;
  h.body_hash = get_u64_text(o, "body_hash");
  if (o.contains("each_way"))
    h.each_way = get_bool(o, "each_way");
  if (o.contains("legs")) {
    auto type = parse_slip_type(get_string(o, "type"));
    if (!type)
      throw decode_error{};
    h.type = *type;
    for (auto& v : get_array(o, "legs")) {
      auto& lo = get_object(v);
      h.legs.push_back({get_id<market_id>(lo, "market"), get_id<selection_id>(lo, "selection"),
                        get_price(lo, "price")});
    }
    if (h.legs.empty() || line_count(h.type, h.legs.size()) == 0)
      throw decode_error{};
  }
  return h;
}

void remember_request(wallet_state& s, const std::string& id, request_entry entry) {
  if (s.requests.emplace(id, std::move(entry)).second)
    s.request_order.push_back(id);
  // Evict the oldest answered requests; a bet still undecided stays, so a
  // retry during its saga always finds it (at most holds_max of those).
  for (size_t turns = 0; s.request_order.size() > wallet_requests_max
                         && turns < s.request_order.size(); ++turns) {
    auto oldest = std::move(s.request_order.front());
    s.request_order.pop_front();
    auto i = s.requests.find(oldest);
    if (i != s.requests.end() && i->second.response.empty() && !i->second.bet.empty()
        && s.holds.count(i->second.bet) > 0)
      s.request_order.push_back(std::move(oldest));
    else
      s.requests.erase(oldest);
  }
}

// Keeps the settled bets within wallet_settled_bets_max, forgetting the
// cash-outs of the bet that leaves.
void trim_settled(wallet_state& s) {
  if (s.settled_bets.size() <= wallet_settled_bets_max)
    return;
  auto prefix = "c/" + s.settled_bets.front().id.value + "/";
  for (auto k = s.cashouts.lower_bound(prefix); k != s.cashouts.end() && k->rfind(prefix, 0) == 0;)
    k = s.cashouts.erase(k);
  s.settled_bets.pop_front();
}

void add_ledger(wallet_state& s, uint64_t seq, ledger_kind kind, money amount,
                int64_t at_ms, std::string ref = {}) {
  s.ledger.push_back({seq, kind, amount, s.available, at_ms, std::move(ref)});
  if (s.ledger.size() > wallet_ledger_max)
    s.ledger.pop_front();
}

} // namespace

std::string error_json(errc code, std::string_view message, std::optional<price> current,
                       std::string_view field) {
  json::object o{{"error", to_code(code)}, {"message", message}};
  if (current)
    o["current_price"] = current->hundredths;
  if (!field.empty())
    o["field"] = field;
  return json::serialize(o);
}

namespace {

std::string_view release_message(errc reason) {
  switch (reason) {
    case errc::price_changed: return "the price has changed";
    case errc::market_not_open: return "the market is not open for bets";
    case errc::limit_exceeded: return "the bet is over the market's limits";
    case errc::not_found: return "no such market or selection";
    case errc::invalid_field: return "the market has no each-way terms";
    default: return "the market refused the bet";
  }
}

} // namespace

namespace {

json::array amounts_json(const std::array<int64_t, 3>& a) {
  return {a[0], a[1], a[2]};
}

std::array<int64_t, 3> amounts_from(const json::object& o, std::string_view key) {
  auto& a = get_array(o, key);
  if (a.size() != 3)
    throw decode_error{};
  std::array<int64_t, 3> out{};
  for (size_t i = 0; i < 3; ++i) {
    if (!a[i].is_int64())
      throw decode_error{};
    out[i] = a[i].get_int64();
  }
  return out;
}

json::object limits_to_json(const gambling_limits& l) {
  return {{"deposit", amounts_json(l.deposit)},
          {"loss", amounts_json(l.loss)},
          {"pending_deposit", amounts_json(l.pending_deposit)},
          {"pending_loss", amounts_json(l.pending_loss)},
          {"pending_effective_ms", l.pending_effective_ms},
          {"time_out_until_ms", l.time_out_until_ms},
          {"self_exclude_until_ms", l.self_exclude_until_ms},
          {"reality_check_minutes", l.reality_check_minutes}};
}

gambling_limits limits_from_json(const json::object& o) {
  gambling_limits l;
  l.deposit = amounts_from(o, "deposit");
  l.loss = amounts_from(o, "loss");
  l.pending_deposit = amounts_from(o, "pending_deposit");
  l.pending_loss = amounts_from(o, "pending_loss");
  l.pending_effective_ms = get_int(o, "pending_effective_ms");
  l.time_out_until_ms = get_int(o, "time_out_until_ms");
  l.self_exclude_until_ms = get_int(o, "self_exclude_until_ms");
  l.reality_check_minutes = get_int(o, "reality_check_minutes");
  return l;
}

// Version 1 of limits_set: a daily deposit limit (per UTC day then, the
// rolling 24 hours now) and a self-exclusion end.
gambling_limits limits_from_v1(const json::object& o) {
  gambling_limits l;
  l.self_exclude_until_ms = get_int(o, "self_exclude_until");
  if (o.contains("daily_deposit_limit"))
    l.deposit[static_cast<size_t>(limit_period::day)] = get_money(o, "daily_deposit_limit").minor;
  return l;
}

} // namespace

const bet* wallet_state::find_bet(const std::string& id) const {
  if (auto i = open_bets.find(id); i != open_bets.end())
    return &i->second;
  for (auto i = settled_bets.rbegin(); i != settled_bets.rend(); ++i)
    if (i->id.value == id)
      return &*i;
  return nullptr;
}

std::optional<bet> bet_from_json(const json::value& v) {
  return try_decode([&] { return bet_from_object(get_object(v)); });
}

std::string_view to_string(ledger_kind kind) {
  switch (kind) {
    case ledger_kind::deposit: return "deposit";
    case ledger_kind::withdrawal: return "withdrawal";
    case ledger_kind::stake: return "stake";
    case ledger_kind::stake_returned: return "stake_returned";
    case ledger_kind::payout: return "payout";
    case ledger_kind::refund: return "refund";
    case ledger_kind::cashout: return "cashout";
    case ledger_kind::reversal: return "reversal";
  }
  return "deposit";
}

// Event type names are stored forever: never rename one, add an upcaster.
event encode(const wallet_event& e) {
  return std::visit(
    overloaded{
      [](const deposited& d) {
        return event::make("deposited", 1,
                           json::object{{"request_id", d.request.value},
                                        {"amount", d.amount.minor},
                                        {"body_hash", std::to_string(d.body_hash)}});
      },
      [](const withdrawn& d) {
        return event::make("withdrawn", 1,
                           json::object{{"request_id", d.request.value},
                                        {"amount", d.amount.minor},
                                        {"body_hash", std::to_string(d.body_hash)}});
      },
      [](const stake_held& h) { return event::make("stake_held", 1, hold_to_json(h)); },
      [](const stake_committed& c) {
        json::object o{{"bet", c.bet.value}, {"price", c.accepted.hundredths}};
        if (c.place_fraction != ratio{})
          o["place_fraction"] = to_string(c.place_fraction);
        if (!c.legs.empty()) {
          json::array legs;
          for (auto& l : c.legs) {
            json::object lo{{"price", l.accepted.hundredths}};
            if (l.place_fraction != ratio{})
              lo["place_fraction"] = to_string(l.place_fraction);
            legs.push_back(std::move(lo));
          }
          o["legs"] = std::move(legs);
          o["max_payout"] = c.max_payout.minor;
        }
        return event::make("stake_committed", 1, std::move(o));
      },
      [](const hold_released& r) {
        json::object o{{"bet", r.bet.value}, {"reason", to_code(r.reason)}};
        if (r.current)
          o["current_price"] = r.current->hundredths;
        if (!r.release.empty())
          o["release"] = string_array(r.release);
        return event::make("hold_released", 1, o);
      },
      [](const legs_released& r) {
        return event::make("legs_released", 1, json::object{{"bet", r.bet.value}});
      },
      [](const cashed_out& c) {
        return event::make("cashed_out", 1,
                           json::object{{"bet", c.bet.value},
                                        {"request_id", c.request.value},
                                        {"stake", c.stake.minor},
                                        {"amount", c.amount.minor},
                                        {"body_hash", std::to_string(c.body_hash)}});
      },
      [](const leg_settled& l) {
        json::object o{{"bet", l.bet.value}, {"leg", l.leg}, {"result", to_string(l.result)}};
        if (l.dead_heat != ratio{})
          o["dead_heat"] = to_string(l.dead_heat);
        if (l.rule4 != 0)
          o["rule4"] = l.rule4;
        if (l.round != 0)
          o["round"] = l.round;
        return event::make("leg_settled", 1, std::move(o));
      },
      [](const payout_credited& p) {
        json::object o{{"bet", p.bet.value},
                       {"outcome", to_string(p.outcome)},
                       {"amount", p.amount.minor}};
        if (p.round != 0)
          o["round"] = p.round;
        if (p.result != leg_result::open)
          o["result"] = to_string(p.result);
        return event::make("payout_credited", 1, std::move(o));
      },
      [](const bet_restored& r) {
        return event::make("bet_restored", 1, json::object{{"bet", bet_to_json(r.restored)}});
      },
      [](const payout_reversed& r) {
        return event::make("payout_reversed", 1,
                           json::object{{"bet", r.bet.value},
                                        {"amount", r.amount.minor},
                                        {"round", r.round}});
      },
      [](const limits_set& l) { return event::make("limits_set", 2, limits_to_json(l.limits)); },
    },
    e);
}

namespace {

uint32_t get_round(const json::object& o) {
  auto r = get_int(o, "round");
  if (r < 0 || r > std::numeric_limits<uint32_t>::max())
    throw decode_error{};
  return static_cast<uint32_t>(r);
}

errc parse_errc(std::string_view code) {
  if (auto e = parse_code(code))
    return *e;
  throw decode_error{};
}

} // namespace

std::optional<wallet_event> decode_wallet_event(const event& e) {
  auto doc = e.json();
  return try_decode([&]() -> wallet_event {
    auto& o = get_object(doc);
    if (e.type == "deposited")
      return deposited{get_id<request_id>(o, "request_id"), get_money(o, "amount"),
                       get_u64_text(o, "body_hash")};
    if (e.type == "withdrawn")
      return withdrawn{get_id<request_id>(o, "request_id"), get_money(o, "amount"),
                       get_u64_text(o, "body_hash")};
    if (e.type == "stake_held")
      return hold_from_json(o);
    if (e.type == "stake_committed") {
      stake_committed c{get_id<bet_id>(o, "bet"), get_price(o, "price"), {}};
      if (o.contains("place_fraction"))
        c.place_fraction = get_ratio(o, "place_fraction");
      if (o.contains("legs")) {
        for (auto& v : get_array(o, "legs")) {
          auto& lo = get_object(v);
          leg_terms t{get_price(lo, "price"), {}};
          if (lo.contains("place_fraction"))
            t.place_fraction = get_ratio(lo, "place_fraction");
          c.legs.push_back(t);
        }
        c.max_payout = get_money(o, "max_payout");
      }
      return c;
    }
    if (e.type == "hold_released") {
      hold_released r{get_id<bet_id>(o, "bet"), parse_errc(get_string(o, "reason")), {}};
      if (o.contains("current_price"))
        r.current = get_price(o, "current_price");
      if (o.contains("release"))
        r.release = strings_of(o, "release");
      return r;
    }
    if (e.type == "legs_released")
      return legs_released{get_id<bet_id>(o, "bet")};
    if (e.type == "cashed_out")
      return cashed_out{get_id<bet_id>(o, "bet"), get_id<request_id>(o, "request_id"),
                        get_money(o, "stake"), get_money(o, "amount"),
                        get_u64_text(o, "body_hash")};
    if (e.type == "leg_settled") {
      auto result = parse_leg_result(get_string(o, "result"));
      auto leg = get_int(o, "leg");
      if (!result || leg < 0 || leg >= static_cast<int64_t>(slip_legs_max))
        throw decode_error{};
      leg_settled l{get_id<bet_id>(o, "bet"), static_cast<uint32_t>(leg), *result, {}, 0};
      if (o.contains("dead_heat"))
        l.dead_heat = get_ratio(o, "dead_heat");
      if (o.contains("rule4"))
        l.rule4 = static_cast<int32_t>(get_int(o, "rule4"));
      if (o.contains("round"))
        l.round = get_round(o);
      return l;
    }
    if (e.type == "payout_credited") {
      auto outcome = parse_bet_status(get_string(o, "outcome"));
      if (!outcome)
        throw decode_error{};
      payout_credited p{get_id<bet_id>(o, "bet"), *outcome, get_money(o, "amount")};
      if (o.contains("round"))
        p.round = get_round(o);
      if (o.contains("result")) {
        auto result = parse_leg_result(get_string(o, "result"));
        if (!result)
          throw decode_error{};
        p.result = *result;
      }
      return p;
    }
    if (e.type == "bet_restored") {
      auto b = bet_from_object(get_object(field(o, "bet")));
      if (b.status == bet_status::open)
        throw decode_error{};
      return bet_restored{std::move(b)};
    }
    if (e.type == "payout_reversed") {
      auto amount = get_int(o, "amount");
      if (amount < 0)
        throw decode_error{};
      return payout_reversed{get_id<bet_id>(o, "bet"), money{amount}, get_round(o)};
    }
    if (e.type == "limits_set")
      return limits_set{e.version == 1 ? limits_from_v1(o) : limits_from_json(o)};
    throw decode_error{};
  });
}

std::string transaction_response(uint64_t seq, const wallet_state& after) {
  return json::serialize(json::object{{"transaction_id", "t" + std::to_string(seq)},
                                      {"available", after.available.minor},
                                      {"held", after.held.minor}});
}

void apply(wallet_state& s, const wallet_event& e, uint64_t seq, int64_t at_ms) {
  WAGER_ASSERT(seq == s.seq + 1, "wallet events are contiguous");
  s.seq = seq;
  std::visit(
    overloaded{
      [&](const deposited& d) {
        s.available += d.amount;
        s.deposited += d.amount;
        record_activity(s.activity, at_ms, d.amount.minor, 0, 0);
        add_ledger(s, seq, ledger_kind::deposit, d.amount, at_ms);
        remember_request(s, d.request.value, {d.body_hash, {}, transaction_response(seq, s)});
      },
      [&](const withdrawn& w) {
        s.available -= w.amount;
        s.withdrawn += w.amount;
        add_ledger(s, seq, ledger_kind::withdrawal, w.amount, at_ms);
        remember_request(s, w.request.value, {w.body_hash, {}, transaction_response(seq, s)});
      },
      [&](const stake_held& h) {
        s.available -= h.amount();
        s.held += h.amount();
        s.holds[h.bet.value] = h;
        add_ledger(s, seq, ledger_kind::stake, h.amount(), at_ms, h.bet.value);
        remember_request(s, h.request.value, {h.body_hash, h.bet.value, {}});
      },
      [&](const stake_committed& c) {
        auto i = s.holds.find(c.bet.value);
        WAGER_ASSERT(i != s.holds.end(), "a committed stake was held");
        auto& h = i->second;
        s.held -= h.amount();
        s.staked += h.amount();
        record_activity(s.activity, at_ms, 0, h.amount().minor, 0);
        bet b{h.bet, h.market, h.selection, h.stake, c.accepted, bet_status::open, {}, at_ms, 0,
              h.each_way, h.each_way ? c.place_fraction : ratio{}};
        if (h.is_slip()) {
          WAGER_ASSERT(c.legs.size() == h.legs.size(), "a slip commits every leg");
          b.type = h.type;
          b.max_payout = c.max_payout;
          for (size_t k = 0; k < h.legs.size(); ++k)
            b.legs.push_back({h.legs[k].market, h.legs[k].selection, c.legs[k].accepted,
                              h.each_way ? c.legs[k].place_fraction : ratio{}});
        }
        // A retry gets the bet as it was first answered, not as it is now.
        if (auto q = s.requests.find(h.request.value); q != s.requests.end())
          q->second.response = json::serialize(json::object{{"bet", bet_to_json(b)}});
        s.open_bets[h.bet.value] = b;
        s.holds.erase(i);
      },
      [&](const hold_released& r) {
        auto i = s.holds.find(r.bet.value);
        WAGER_ASSERT(i != s.holds.end(), "a released stake was held");
        auto stake = i->second.amount();
        auto request = i->second.request.value;
        s.held -= stake;
        s.available += stake;
        add_ledger(s, seq, ledger_kind::stake_returned, stake, at_ms, r.bet.value);
        if (auto q = s.requests.find(request); q != s.requests.end())
          q->second.response =
            error_json(r.reason, release_message(r.reason), r.current,
                       r.reason == errc::invalid_field ? "each_way" : std::string_view{});
        if (!r.release.empty())
          s.releasing[r.bet.value] = r.release;
        s.holds.erase(i);
      },
      [&](const legs_released& r) { s.releasing.erase(r.bet.value); },
      [&](const cashed_out& c) {
        s.available += c.amount;
        s.credited += c.amount;
        record_activity(s.activity, at_ms, 0, 0, c.amount.minor);
        add_ledger(s, seq, ledger_kind::cashout, c.amount, at_ms, c.bet.value);
        s.cashouts.insert(cashout_key(c.bet.value, c.request.value));
        bet* b = nullptr;
        if (auto i = s.open_bets.find(c.bet.value); i != s.open_bets.end()) {
          b = &i->second;
          WAGER_ASSERT(c.stake <= b->stake, "a cash-out takes at most the running stake");
          b->stake -= c.stake;
        } else {
          // Settled meanwhile: its result paid the stake that still ran.
          for (auto& settled : s.settled_bets)
            if (settled.id == c.bet)
              b = &settled;
        }
        if (b != nullptr) {
          b->cashed_out += c.amount;
          b->cashed_out_stake += c.stake;
        }
        std::string response;
        if (auto i = s.open_bets.find(c.bet.value);
            i != s.open_bets.end() && i->second.stake.minor == 0) {
          auto done = i->second;
          s.open_bets.erase(i);
          done.status = bet_status::cashed_out;
          done.payout = done.cashed_out;
          done.settled_at_ms = at_ms;
          response = json::serialize(json::object{{"bet", bet_to_json(done)}});
          s.settled_bets.push_back(std::move(done));
          trim_settled(s);
        } else if (b != nullptr) {
          response = json::serialize(json::object{{"bet", bet_to_json(*b)}});
        }
        if (!response.empty())
          remember_request(s, c.request.value, {c.body_hash, {}, response});
      },
      [&](const leg_settled& l) {
        bet* b = s.find_bet(l.bet.value);
        WAGER_ASSERT(b != nullptr && l.leg < b->legs.size(), "a settled leg is a leg of a slip");
        auto& leg = b->legs[l.leg];
        leg.result = l.result;
        leg.dead_heat = l.dead_heat;
        leg.rule4 = l.rule4;
        leg.round = l.round;
      },
      [&](const bet_restored& r) {
        WAGER_ASSERT(s.find_bet(r.restored.id.value) == nullptr
                       && r.restored.status != bet_status::open,
                     "a restored bet is a settled bet the wallet no longer holds");
        s.settled_bets.push_back(r.restored);
        trim_settled(s);
      },
      [&](const payout_reversed& r) {
        if (auto i = s.open_bets.find(r.bet.value); i != s.open_bets.end()) {
          WAGER_ASSERT(r.amount.minor == 0, "an open bet has no payout to reverse");
          i->second.round = r.round;
          return;
        }
        size_t at = 0;
        while (at < s.settled_bets.size() && s.settled_bets[at].id != r.bet)
          ++at;
        WAGER_ASSERT(at < s.settled_bets.size()
                       && s.settled_bets[at].status != bet_status::cashed_out
                       && s.settled_bets[at].payout == r.amount,
                     "a reversed payout is what a settled bet was paid");
        auto b = std::move(s.settled_bets[at]);
        s.settled_bets.erase(at);
        b.status = bet_status::open;
        b.payout = {};
        b.settled_at_ms = 0;
        b.round = r.round;
        b.result = leg_result::open;
        s.available -= r.amount;
        s.credited -= r.amount;
        record_activity(s.activity, at_ms, 0, 0, -r.amount.minor);
        if (r.amount.minor > 0)
          add_ledger(s, seq, ledger_kind::reversal, r.amount, at_ms, b.id.value);
        s.open_bets[b.id.value] = std::move(b);
      },
      [&](const payout_credited& p) {
        auto i = s.open_bets.find(p.bet.value);
        WAGER_ASSERT(i != s.open_bets.end(), "a payout is for an open bet");
        auto b = i->second;
        s.open_bets.erase(i);
        b.status = p.outcome;
        b.payout = p.amount;
        b.settled_at_ms = at_ms;
        if (!b.is_slip()) {
          b.round = p.round;
          b.result = p.result;
        }
        s.available += p.amount;
        s.credited += p.amount;
        record_activity(s.activity, at_ms, 0, 0, p.amount.minor);
        if (p.amount.minor > 0)
          add_ledger(s, seq, p.outcome == bet_status::void_ ? ledger_kind::refund
                                                            : ledger_kind::payout,
                     p.amount, at_ms, b.id.value);
        s.settled_bets.push_back(std::move(b));
        trim_settled(s);
      },
      [&](const limits_set& l) { s.limits = l.limits; },
    },
    e);
}

void check_invariants(const wallet_state& s) {
  WAGER_ASSERT(s.held.minor >= 0, "held is never negative");
  money holds;
  for (auto& [id, h] : s.holds)
    holds += h.amount();
  WAGER_ASSERT(holds == s.held, "held equals the sum of open holds");
  WAGER_ASSERT(s.available + s.held == s.deposited - s.withdrawn - s.staked + s.credited,
               "balances equal the wallet's lifetime flows");
}

json::value to_json(const wallet_state& s) {
  json::array holds, open, settled, ledger, requests, activity;
  for (auto& m : s.activity)
    activity.push_back(json::array{m.minute, m.deposited, m.staked, m.returned});
  for (auto& [id, h] : s.holds)
    holds.push_back(hold_to_json(h));
  json::object releasing;
  for (auto& [id, markets] : s.releasing)
    releasing[id] = string_array(markets);
  for (auto& [id, b] : s.open_bets)
    open.push_back(bet_to_json(b));
  for (auto& b : s.settled_bets)
    settled.push_back(bet_to_json(b));
  for (auto& l : s.ledger)
    ledger.push_back(json::object{{"seq", l.seq},
                                  {"kind", to_string(l.kind)},
                                  {"amount", l.amount.minor},
                                  {"available_after", l.available_after.minor},
                                  {"at", l.at_ms},
                                  {"ref", l.ref}});
  for (auto& id : s.request_order) {
    auto& r = s.requests.at(id);
    requests.push_back(json::object{{"id", id},
                                    {"body_hash", std::to_string(r.body_hash)},
                                    {"bet", r.bet},
                                    {"response", r.response}});
  }
  json::object o{{"seq", s.seq},
                 {"available", s.available.minor},
                 {"held", s.held.minor},
                 {"deposited", s.deposited.minor},
                 {"withdrawn", s.withdrawn.minor},
                 {"staked", s.staked.minor},
                 {"credited", s.credited.minor},
                 {"limits", limits_to_json(s.limits)},
                 {"activity", std::move(activity)},
                 {"holds", std::move(holds)},
                 {"releasing", std::move(releasing)},
                 {"cashouts", string_array({s.cashouts.begin(), s.cashouts.end()})},
                 {"open_bets", std::move(open)},
                 {"settled_bets", std::move(settled)},
                 {"ledger", std::move(ledger)},
                 {"requests", std::move(requests)}};
  return o;
}

std::optional<wallet_state> wallet_state_from_json(const json::value& v) {
  return try_decode([&] {
    auto& o = get_object(v);
    wallet_state s;
    s.seq = static_cast<uint64_t>(get_int(o, "seq"));
    s.available = get_money(o, "available");
    s.held = get_money(o, "held");
    s.deposited = get_money(o, "deposited");
    s.withdrawn = get_money(o, "withdrawn");
    s.staked = get_money(o, "staked");
    s.credited = get_money(o, "credited");
    // A snapshot without the limits (version 1) does not decode: the wallet
    // then replays its events, which rebuilds the limits and the periods.
    if (!o.contains("limits"))
      throw decode_error{};
    s.limits = limits_from_json(get_object(o.at("limits")));
    for (auto& m : get_array(o, "activity")) {
      if (!m.is_array())
        throw decode_error{};
      auto& a = m.get_array();
      if (a.size() != 4 || !a[0].is_int64() || !a[1].is_int64() || !a[2].is_int64()
          || !a[3].is_int64())
        throw decode_error{};
      s.activity.push_back({a[0].get_int64(), a[1].get_int64(), a[2].get_int64(),
                            a[3].get_int64()});
    }
    for (auto& h : get_array(o, "holds")) {
      auto held = hold_from_json(get_object(h));
      s.holds[held.bet.value] = held;
    }
    if (auto* r = o.if_contains("releasing")) {
      if (!r->is_object())
        throw decode_error{};
      for (auto& [id, markets] : r->get_object())
        s.releasing[std::string{id}] = strings_of(r->get_object(), id);
    }
    for (auto& key : strings_of(o, "cashouts"))
      s.cashouts.insert(key);
    for (auto& b : get_array(o, "open_bets")) {
      auto open = bet_from_object(get_object(b));
      s.open_bets[open.id.value] = open;
    }
    for (auto& b : get_array(o, "settled_bets"))
      s.settled_bets.push_back(bet_from_object(get_object(b)));
    for (auto& l : get_array(o, "ledger")) {
      auto& lo = get_object(l);
      ledger_entry entry;
      entry.seq = static_cast<uint64_t>(get_int(lo, "seq"));
      auto kind = get_string(lo, "kind");
      bool known = false;
      for (auto k : {ledger_kind::deposit, ledger_kind::withdrawal, ledger_kind::stake,
                     ledger_kind::stake_returned, ledger_kind::payout, ledger_kind::refund,
                     ledger_kind::cashout, ledger_kind::reversal})
        if (to_string(k) == kind) {
          entry.kind = k;
          known = true;
        }
      if (!known)
        throw decode_error{};
      entry.amount = get_money(lo, "amount");
      entry.available_after = get_money(lo, "available_after");
      entry.at_ms = get_int(lo, "at");
      entry.ref = get_string(lo, "ref");
      s.ledger.push_back(std::move(entry));
    }
    for (auto& r : get_array(o, "requests")) {
      auto& ro = get_object(r);
      auto id = get_string(ro, "id");
      s.requests[id] = {get_u64_text(ro, "body_hash"), get_string(ro, "bet"),
                        get_string(ro, "response")};
      s.request_order.push_back(id);
    }
    return s;
  });
}

} // namespace wager
