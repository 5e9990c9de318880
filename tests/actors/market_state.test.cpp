// The market's pure fold (market_state.hpp), without actors or a journal:
// every event decodes to itself (names with quotes, control characters and
// non-ASCII text included), a market rebuilt from its encoded events equals
// the live one, a snapshot read back equals the market, the stored decision
// on a bet reads back the same, and settlement lines are exact.

#include "wager/actors/market_state.hpp"

#include <boost/json.hpp>
#include <doctest/doctest.h>
#include <rapidcheck.h>

using namespace wager;

namespace {

// A value in [lo, hi), uniform whatever rapidcheck's current size (inRange
// scales its range with the size, so small sizes would only ever pick lo).
template <class T>
T any_in(T lo, T hi) {
  return *rc::gen::resize(rc::kNominalSize, rc::gen::inRange<T>(lo, hi));
}

// -- equality, field by field -------------------------------------------------

bool eq(const market_definition& a, const market_definition& b) {
  if (a.id != b.id || a.event != b.event || a.name != b.name
      || a.limits.max_stake != b.limits.max_stake
      || a.limits.max_liability != b.limits.max_liability
      || a.in_play_delay_ms != b.in_play_delay_ms || a.each_way != b.each_way
      || a.selections.size() != b.selections.size())
    return false;
  for (size_t i = 0; i < a.selections.size(); ++i)
    if (a.selections[i].id != b.selections[i].id || a.selections[i].name != b.selections[i].name
        || a.selections[i].current != b.selections[i].current)
      return false;
  return true;
}

bool eq(const accepted_bet& a, const accepted_bet& b) {
  return a.bet == b.bet && a.user == b.user && a.selection == b.selection
         && a.stake == b.stake && a.accepted == b.accepted
         && a.accepted_at_ms == b.accepted_at_ms;
}

bool eq(const market_event& x, const market_event& y) {
  if (x.index() != y.index())
    return false;
  if (auto* a = std::get_if<market_defined>(&x))
    return eq(a->definition, std::get<market_defined>(y).definition);
  if (auto* a = std::get_if<status_changed>(&x))
    return a->status == std::get<status_changed>(y).status;
  if (auto* a = std::get_if<prices_changed>(&x))
    return a->prices == std::get<prices_changed>(y).prices;
  if (auto* a = std::get_if<bet_accepted>(&x)) {
    auto& b = std::get<bet_accepted>(y);
    return eq(accepted_bet{a->bet, a->user, a->selection, a->stake, a->accepted},
              accepted_bet{b.bet, b.user, b.selection, b.stake, b.accepted});
  }
  if (auto* a = std::get_if<bet_rejected>(&x)) {
    auto& b = std::get<bet_rejected>(y);
    return a->bet == b.bet && a->reason == b.reason && a->current == b.current;
  }
  if (auto* a = std::get_if<market_resulted>(&x))
    return *a == std::get<market_resulted>(y);
  if (auto* a = std::get_if<selection_withdrawn>(&x))
    return a->selection == std::get<selection_withdrawn>(y).selection;
  if (auto* a = std::get_if<bets_cancelled>(&x)) {
    auto& b = std::get<bets_cancelled>(y);
    return a->from_ms == b.from_ms && a->to_ms == b.to_ms && a->bets == b.bets;
  }
  return std::get<payouts_acknowledged>(x).bets == std::get<payouts_acknowledged>(y).bets;
}

bool eq(const market_state& a, const market_state& b, std::string& why) {
  auto differ = [&](const char* field) {
    why = field;
    return false;
  };
  if (a.seq != b.seq) return differ("seq");
  if (a.defined != b.defined) return differ("defined");
  if (!eq(a.definition, b.definition)) return differ("definition");
  if (a.status != b.status) return differ("status");
  if (a.version != b.version) return differ("version");
  if (a.bets.size() != b.bets.size()) return differ("bets");
  for (auto& [id, x] : a.bets) {
    auto i = b.bets.find(id);
    if (i == b.bets.end() || !eq(x, i->second))
      return differ("bets");
  }
  // A selection without bets may be absent or zero.
  auto liability_of = [](const market_state& s, const std::string& sel) {
    auto i = s.liability.find(sel);
    return i == s.liability.end() ? money{} : i->second;
  };
  for (auto& [sel, l] : a.liability)
    if (liability_of(b, sel) != l) return differ("liability");
  for (auto& [sel, l] : b.liability)
    if (liability_of(a, sel) != l) return differ("liability");
  if (a.result.has_value() != b.result.has_value()) return differ("result");
  if (a.result && *a.result != *b.result)
    return differ("result");
  if (a.withdrawn != b.withdrawn) return differ("withdrawn");
  if (a.cancelled != b.cancelled) return differ("cancelled");
  if (a.outbox != b.outbox) return differ("outbox");
  return true;
}

// -- generators ---------------------------------------------------------------

const std::string id_chars =
  "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.:-";

std::string gen_id_text() {
  auto size = *rc::gen::inRange<size_t>(1, 65);
  std::string text;
  for (size_t i = 0; i < size; ++i)
    text.push_back(id_chars[*rc::gen::inRange<size_t>(0, id_chars.size())]);
  return text;
}

// Free text as an operator types it: valid UTF-8, with what JSON escapes.
std::string gen_text() {
  static const std::vector<std::string> pieces{
    "a", "Z", " ", "0", "\"", "\\", "/", "\n", "\t", "\x01", "\x1f", "\x7f",
    "\xc3\xa9" /* é */, "\xe2\x82\xac" /* € */, "\xf0\x9f\x8f\x86" /* trophy */, "{", "}"};
  auto size = *rc::gen::inRange<size_t>(0, 40);
  std::string text;
  for (size_t i = 0; i < size; ++i)
    text += pieces[*rc::gen::inRange<size_t>(0, pieces.size())];
  return text;
}

price gen_price() {
  return price{*rc::gen::inRange<int32_t>(price_min_hundredths, price_max_hundredths + 1)};
}

money gen_amount() {
  return money{*rc::gen::inRange<int64_t>(1, amount_max_minor + 1)};
}

market_definition gen_definition(const std::string& id, size_t selections) {
  market_definition d;
  d.id = market_id{id};
  d.event = gen_text();
  d.name = gen_text();
  for (size_t i = 0; i < selections; ++i)
    d.selections.push_back({selection_id{"s" + std::to_string(i)}, gen_text(), gen_price()});
  d.limits = {gen_amount(), gen_amount()};
  d.in_play_delay_ms = *rc::gen::inRange<int64_t>(0, 60'001);
  if (*rc::gen::arbitrary<bool>())
    d.each_way = {*rc::gen::inRange<uint32_t>(1, each_way_places_max + 1),
                  *rc::gen::element(ratio{1, 4}, ratio{1, 5}, ratio{1, 1}, ratio{2, 3})};
  return d;
}

// A result with racing fields about `sels` (any of them, in any role).
market_resulted gen_racing_result(const std::vector<std::string>& sels) {
  market_resulted r;
  for (auto& sel : sels) {
    switch (*rc::gen::inRange(0, 4)) {
      case 0: r.winners.push_back(sel); break;
      case 1: r.placed.push_back(sel); break;
      case 2: r.void_selections.push_back(sel); break;
      default: break;
    }
    if (*rc::gen::inRange(0, 3) == 0)
      r.dead_heat[sel] = *rc::gen::element(ratio{1, 2}, ratio{1, 3}, ratio{2, 3});
  }
  auto deductions = *rc::gen::inRange(0, 3);
  for (int i = 0; i < deductions; ++i)
    r.rule4.push_back({*rc::gen::inRange<int32_t>(1, rule4_max + 1),
                       *rc::gen::inRange<int64_t>(1, 4'000'000'000'000)});
  return r;
}

std::vector<std::string> gen_ids() {
  auto n = *rc::gen::inRange<size_t>(0, 6);
  std::vector<std::string> ids;
  for (size_t i = 0; i < n; ++i)
    ids.push_back(gen_id_text());
  return ids;
}

market_event gen_any_event() {
  switch (*rc::gen::inRange(0, 10)) {
    case 0:
      return market_defined{gen_definition(gen_id_text(), *rc::gen::inRange<size_t>(1, 5))};
    case 1:
      return status_changed{*rc::gen::element(market_status::pending, market_status::open,
                                              market_status::suspended, market_status::closed,
                                              market_status::settled, market_status::voided)};
    case 2: {
      prices_changed p;
      for (auto& id : gen_ids())
        p.prices[id] = gen_price();
      return p;
    }
    case 3:
      return bet_accepted{bet_id{gen_id_text()}, user_id{gen_id_text()},
                          selection_id{gen_id_text()}, gen_amount(), gen_price()};
    case 4: {
      bet_rejected r{bet_id{gen_id_text()},
                     static_cast<errc>(*rc::gen::inRange<int>(0, int(errc::internal) + 1)), {}};
      if (*rc::gen::arbitrary<bool>())
        r.current = gen_price();
      return r;
    }
    case 5: {
      auto voided = *rc::gen::arbitrary<bool>();
      return market_resulted{voided ? std::vector<std::string>{} : gen_ids(), voided};
    }
    case 6: return gen_racing_result(gen_ids());
    case 7: return selection_withdrawn{selection_id{gen_id_text()}};
    case 8: {
      auto from = *rc::gen::inRange<int64_t>(0, 4'000'000'000'000);
      return bets_cancelled{from, from + *rc::gen::inRange<int64_t>(0, 1'000'000), gen_ids()};
    }
    default: return payouts_acknowledged{gen_ids()};
  }
}

// The time the event of `seq` was written in a generated history.
int64_t history_time(uint64_t seq) {
  return 1'796'644'800'000 + static_cast<int64_t>(seq) * 1000;
}

// A history a real market could write.
std::vector<market_event> gen_history(size_t length) {
  std::vector<market_event> out;
  market_state s;
  int next_bet = 0;
  auto push = [&](market_event e) {
    apply(s, e, s.seq + 1, history_time(s.seq + 1));
    check_invariants(s);
    out.push_back(std::move(e));
  };
  push(market_defined{gen_definition("m1", *rc::gen::inRange<size_t>(1, 4))});
  while (out.size() < length) {
    auto& sels = s.definition.selections;
    auto sel = sels[any_in<size_t>(0, sels.size())].id.value;
    auto before = out.size();
    switch (any_in(0, 11)) {
      case 0: {
        auto to = *rc::gen::element(market_status::open, market_status::suspended,
                                    market_status::closed);
        if (to != s.status && transition_allowed(s.status, to))
          push(status_changed{to});
        break;
      }
      case 1:
        if (!s.result)
          push(prices_changed{{{sel, gen_price()}}});
        break;
      case 2:
      case 3:
        if (!s.result && !s.is_withdrawn(sel))
          push(bet_accepted{bet_id{"b" + std::to_string(++next_bet)},
                            user_id{"u" + std::to_string(*rc::gen::inRange(0, 5))},
                            selection_id{sel}, money{*rc::gen::inRange<int64_t>(1, 100'000)},
                            sels[0].current});
        break;
      case 4:
        push(bet_rejected{bet_id{"b" + std::to_string(++next_bet)}, errc::price_changed,
                          gen_price()});
        break;
      case 5:
        if (!s.result && s.status != market_status::pending && !s.is_withdrawn(sel)) {
          auto voided = *rc::gen::inRange(0, 3) == 0;
          push(market_resulted{voided ? std::vector<std::string>{} : std::vector{sel}, voided});
        }
        break;
      case 8:
        // A racing result: the winner, others in any role, non-runners void.
        if (!s.result && s.status != market_status::pending && !s.is_withdrawn(sel)) {
          std::vector<std::string> others;
          for (auto& x : sels)
            if (x.id.value != sel && !s.is_withdrawn(x.id.value))
              others.push_back(x.id.value);
          auto r = gen_racing_result(others);
          r.winners.push_back(sel);
          std::sort(r.winners.begin(), r.winners.end());
          for (auto& w : s.withdrawn)
            r.void_selections.push_back(w);
          std::sort(r.void_selections.begin(), r.void_selections.end());
          push(r);
        }
        break;
      case 9:
        if (!s.result && !s.is_withdrawn(sel))
          push(selection_withdrawn{selection_id{sel}});
        break;
      case 10:
        // A cancellation of some of the bets still live.
        if (!s.result) {
          bets_cancelled c{0, history_time(s.seq + 1), {}};
          for (auto& [id, b] : s.bets)
            if (!s.voided_early(b) && *rc::gen::arbitrary<bool>())
              c.bets.push_back(id);
          if (!c.bets.empty())
            push(c);
        }
        break;
      case 6:
        if (!s.outbox.empty()) {
          payouts_acknowledged ack;
          for (auto& id : s.outbox)
            if (*rc::gen::arbitrary<bool>())
              ack.bets.push_back(id);
          push(ack);
        }
        break;
      default:
        if (!s.result) {
          auto d = s.definition;
          d.name = gen_text();
          d.limits.max_stake = gen_amount();
          push(market_defined{d});
        }
        break;
    }
    // Whatever the market's state, a rejection can always be recorded, so
    // the history grows on every turn.
    if (out.size() == before)
      push(bet_rejected{bet_id{"b" + std::to_string(++next_bet)}, errc::market_not_open, {}});
  }
  return out;
}

market_state fold(const std::vector<market_event>& h, size_t from, size_t to,
                  market_state s = {}) {
  for (size_t i = from; i < to; ++i) {
    auto decoded = decode_market_event(encode(h[i]));
    RC_ASSERT(decoded.has_value());
    apply(s, *decoded, i + 1, history_time(i + 1));
    check_invariants(s);
  }
  return s;
}

} // namespace

TEST_CASE("every market event decodes to itself") {
  CHECK(rc::check("market events decode to themselves", [] {
    auto e = gen_any_event();
    auto decoded = decode_market_event(encode(e));
    RC_ASSERT(decoded.has_value());
    RC_ASSERT(eq(*decoded, e));
  }));
}

TEST_CASE("a market rebuilt from its events equals the live market") {
  CHECK(rc::check("a market rebuilt from its events equals the live one", [] {
    auto h = gen_history(*rc::gen::inRange<size_t>(1, 120));
    market_state live;
    for (size_t i = 0; i < h.size(); ++i)
      apply(live, h[i], i + 1, history_time(i + 1));
    std::string why;
    if (!eq(fold(h, 0, h.size()), live, why))
      RC_FAIL("replay differs in " + why);
  }));
}

TEST_CASE("a market snapshot read back equals the market, also with the tail replayed on it") {
  CHECK(rc::check("a market snapshot read back equals the market", [] {
    auto h = gen_history(*rc::gen::inRange<size_t>(1, 120));
    auto live = fold(h, 0, h.size());
    auto cut = *rc::gen::inRange<size_t>(0, h.size() + 1);
    auto at_cut = fold(h, 0, cut);
    auto text = boost::json::serialize(to_json(at_cut));
    auto snap = market_state_from_json(boost::json::parse(text));
    RC_ASSERT(snap.has_value());
    std::string why;
    if (!eq(*snap, at_cut, why))
      RC_FAIL("snapshot differs in " + why);
    if (!eq(fold(h, cut, h.size(), *snap), live, why))
      RC_FAIL("snapshot plus tail differs in " + why);
  }));
}

TEST_CASE("a stored bet decision reads back the same") {
  CHECK(rc::check("a stored bet decision reads back the same", [] {
    bet_decision d;
    d.bet = bet_id{gen_id_text()};
    d.accepted = *rc::gen::arbitrary<bool>();
    if (d.accepted)
      d.at = gen_price();
    else
      d.reason = *rc::gen::element(errc::price_changed, errc::market_not_open,
                                   errc::limit_exceeded, errc::not_found);
    if (d.reason == errc::price_changed)
      d.current = gen_price();
    auto back = bet_decision_from_json(to_json_text(d));
    RC_ASSERT(back.has_value());
    RC_ASSERT(back->bet == d.bet);
    RC_ASSERT(back->accepted == d.accepted);
    RC_ASSERT(back->at == d.at);
    RC_ASSERT(back->reason == d.reason);
    RC_ASSERT(back->current == d.current);
  }));
}

namespace {

settlement_line settle_on(market_resulted result, const accepted_bet& b) {
  market_state s;
  s.result = std::move(result);
  return settle_line(s, b);
}

} // namespace

TEST_CASE("settlement lines are exact: won floor(stake x price), lost 0, void the stake") {
  accepted_bet b{bet_id{"b1"}, user_id{"u1"}, selection_id{"home"}, money{333}, price{155}};
  auto won = settle_on({{"home"}, false}, b);
  CHECK(won.outcome == bet_status::won);
  CHECK(won.amount.minor == 516);
  auto lost = settle_on({{"away"}, false}, b);
  CHECK(lost.outcome == bet_status::lost);
  CHECK(lost.amount.minor == 0);
  auto dead_heat = settle_on({{"away", "home"}, false}, b);
  CHECK(dead_heat.outcome == bet_status::won);
  auto voided = settle_on({{}, true}, b);
  CHECK(voided.outcome == bet_status::void_);
  CHECK(voided.amount.minor == 333);
  CHECK(rc::check("settlement lines are exact for any stake and price", [] {
    auto stake = *rc::gen::inRange<int64_t>(1, amount_max_minor + 1);
    auto p = gen_price();
    accepted_bet x{bet_id{"b"}, user_id{"u"}, selection_id{"s"}, money{stake}, p};
    auto line = settle_on({{"s"}, false}, x);
    // floor(stake * hundredths / 100), by exact integer arithmetic.
    RC_ASSERT(line.amount.minor * 100 <= stake * p.hundredths);
    RC_ASSERT((line.amount.minor + 1) * 100 > stake * p.hundredths);
  }));
}

TEST_CASE("a recorded transition must be legal") {
  // apply asserts it; the lifecycle function is the single source of truth.
  using enum market_status;
  CHECK(transition_allowed(pending, open));
  CHECK(transition_allowed(open, suspended));
  CHECK(transition_allowed(suspended, open));
  CHECK_FALSE(transition_allowed(closed, open));
  CHECK_FALSE(transition_allowed(settled, voided));
  CHECK_FALSE(transition_allowed(voided, open));
  CHECK_FALSE(transition_allowed(pending, settled));
}

TEST_CASE("settlement lines follow the racing rules: placed, void, dead heat, Rule 4, non-runners") {
  accepted_bet b{bet_id{"b1"}, user_id{"u1"}, selection_id{"a"}, money{1000}, price{600}, 1000};
  market_resulted r{{"a"}, false};
  r.dead_heat["a"] = ratio{1, 2};
  auto heat = settle_on(r, b);
  CHECK(heat.outcome == bet_status::won);
  CHECK(heat.amount.minor == 3000);
  // A heat of four at 2.00 pays half the stake back: still a winner.
  accepted_bet evens{bet_id{"b2"}, user_id{"u1"}, selection_id{"a"}, money{1000}, price{200}, 1000};
  r.dead_heat["a"] = ratio{1, 4};
  CHECK(settle_on(r, evens).amount.minor == 500);
  CHECK(settle_on(r, evens).outcome == bet_status::won);

  accepted_bet at5{bet_id{"b3"}, user_id{"u1"}, selection_id{"a"}, money{1000}, price{500}, 1000};
  market_resulted r4{{"a"}, false};
  r4.rule4 = {{25, 2000}};
  CHECK(settle_on(r4, at5).amount.minor == 4000);
  r4.rule4 = {{25, 1000}}; // taken at the deduction's time: not before it
  CHECK(settle_on(r4, at5).amount.minor == 5000);
  r4.rule4 = {{60, 2000}, {50, 2000}, {10, 500}}; // 110p before 2000: capped at 90
  CHECK(settle_on(r4, at5).amount.minor == 1400);
  CHECK(rule4_for(r4.rule4, 1000) == 90);
  CHECK(rule4_for(r4.rule4, 400) == 90);
  CHECK(rule4_for({{10, 500}, {5, 2000}}, 1000) == 5);
  CHECK(rule4_for({}, 0) == 0);

  market_resulted racing{{"b"}, false, {"a"}, {"c"}, {}, {}};
  CHECK(settle_on(racing, b).outcome == bet_status::lost); // placed: a win bet loses
  accepted_bet on_c{bet_id{"b4"}, user_id{"u1"}, selection_id{"c"}, money{700}, price{300}, 1000};
  auto refunded = settle_on(racing, on_c);
  CHECK(refunded.outcome == bet_status::void_);
  CHECK(refunded.amount.minor == 700);

  // A non-runner's bet is void, before and after the result.
  market_state s;
  s.withdrawn.insert("a");
  CHECK(settle_line(s, b).outcome == bet_status::void_);
  CHECK(settle_line(s, b).amount.minor == 1000);
  s.result = market_resulted{{"b"}, false};
  CHECK(settle_line(s, b).outcome == bet_status::void_);
}

TEST_CASE("a withdrawn runner's bets enter the outbox at once, and the result does not add them again") {
  market_state s;
  auto def = market_definition{market_id{"r"}, "E", "Win",
                               {{selection_id{"a"}, "A", price{600}},
                                {selection_id{"b"}, "B", price{500}}},
                               {money{100'000}, money{10'000'000}}, 0, {3, {1, 4}}};
  uint64_t seq = 0;
  auto step = [&](market_event e, int64_t at = 0) {
    apply(s, e, ++seq, at);
    check_invariants(s);
  };
  step(market_defined{def});
  step(status_changed{market_status::open});
  step(bet_accepted{bet_id{"x"}, user_id{"u"}, selection_id{"a"}, money{1000}, price{600}}, 77);
  step(bet_accepted{bet_id{"y"}, user_id{"u"}, selection_id{"b"}, money{1000}, price{500}}, 78);
  CHECK(s.bets.at("x").accepted_at_ms == 77);
  CHECK(s.liability.at("a").minor == 5000);
  step(selection_withdrawn{selection_id{"a"}});
  CHECK(s.outbox == std::set<std::string>{"x"});
  CHECK(s.liability.count("a") == 0);
  step(payouts_acknowledged{{"x"}});
  CHECK(s.outbox.empty());
  step(status_changed{market_status::closed});
  step(market_resulted{{"b"}, false, {}, {"a"}, {}, {}});
  CHECK(s.outbox == std::set<std::string>{"y"});
  // A snapshot keeps the non-runner and the times.
  auto back = market_state_from_json(to_json(s));
  REQUIRE(back);
  CHECK(back->withdrawn == s.withdrawn);
  CHECK(back->bets.at("x").accepted_at_ms == 77);
  CHECK(back->liability.count("a") == 0);
  CHECK(back->definition.each_way == def.each_way);
  CHECK(*back->result == *s.result);
}

TEST_CASE("cancelled bets leave the liability and enter the outbox, once") {
  market_state s;
  auto def = market_definition{market_id{"m"}, "E", "Match",
                               {{selection_id{"a"}, "A", price{250}},
                                {selection_id{"b"}, "B", price{180}}},
                               {money{100'000}, money{10'000'000}}, 0, {}};
  uint64_t seq = 0;
  auto step = [&](market_event e, int64_t at = 0) {
    apply(s, e, ++seq, at);
    check_invariants(s);
  };
  step(market_defined{def});
  step(status_changed{market_status::open});
  step(bet_accepted{bet_id{"x"}, user_id{"u"}, selection_id{"a"}, money{1000}, price{250}}, 10);
  step(bet_accepted{bet_id{"y"}, user_id{"u"}, selection_id{"a"}, money{2000}, price{250}}, 20);
  step(bet_accepted{bet_id{"z"}, user_id{"u"}, selection_id{"b"}, money{1000}, price{180}}, 30);
  CHECK(s.liability.at("a").minor == 4500);
  auto version = s.version;
  step(bets_cancelled{15, 25, {"y"}});
  CHECK(s.version == version);
  CHECK(s.liability.at("a").minor == 1500);
  CHECK(s.outbox == std::set<std::string>{"y"});
  CHECK(settle_line(s, s.bets.at("y")).outcome == bet_status::void_);
  CHECK(settle_line(s, s.bets.at("y")).amount.minor == 2000);
  step(payouts_acknowledged{{"y"}});
  // A later withdrawal of the runner refunds its other bets, not "y" again.
  step(selection_withdrawn{selection_id{"a"}});
  CHECK(s.outbox == std::set<std::string>{"x"});
  step(status_changed{market_status::closed});
  step(market_resulted{{"b"}, false, {}, {"a"}, {}, {}});
  CHECK(s.outbox == std::set<std::string>{"x", "z"});
  auto back = market_state_from_json(to_json(s));
  REQUIRE(back);
  CHECK(back->cancelled == s.cancelled);
  CHECK(back->outbox == s.outbox);
  auto decoded = decode_market_event(encode(bets_cancelled{15, 25, {"y"}}));
  REQUIRE(decoded);
  auto& c = std::get<bets_cancelled>(*decoded);
  CHECK(c.from_ms == 15);
  CHECK(c.to_ms == 25);
  CHECK(c.bets == std::vector<std::string>{"y"});
}

TEST_CASE("an each-way bet's liability counts both halves, and it settles on the place terms") {
  accepted_bet ew{bet_id{"b"}, user_id{"u"}, selection_id{"c"}, money{1000}, price{1100}, 0,
                  true, ratio{1, 4}};
  CHECK(bet_liability(ew).minor == 10'000 + 2500);
  accepted_bet odd{bet_id{"o"}, user_id{"u"}, selection_id{"c"}, money{1}, price{155}, 0, true,
                   ratio{1, 5}};
  CHECK(bet_liability(odd).minor == 1 + 1); // 0.55 and 0.11, each rounded up
  accepted_bet big{bet_id{"g"}, user_id{"u"}, selection_id{"c"}, money{amount_max_minor},
                   price{price_max_hundredths}, 0, true, ratio{999, 1000}};
  CHECK(bet_liability(big).minor == 999 * amount_max_minor + 998'001'000'000'000);
  market_resulted placed{{"a"}, false, {"c"}, {}, {}, {}};
  auto line = settle_on(placed, ew);
  CHECK(line.outcome == bet_status::won);
  CHECK(line.amount.minor == 3500);
  market_resulted won{{"c"}, false};
  CHECK(settle_on(won, ew).amount.minor == 11'000 + 3500);
  won.dead_heat["c"] = ratio{1, 2};
  CHECK(settle_on(won, ew).amount.minor == 5500 + 3500);
  placed.dead_heat["c"] = ratio{1, 2};
  CHECK(settle_on(placed, ew).amount.minor == 1750);
  market_resulted lost{{"a"}, false};
  CHECK(settle_on(lost, ew).outcome == bet_status::lost);
}

TEST_CASE("a void each-way bet returns both stakes, whether the runner, the market or a cancellation voids it") {
  accepted_bet ew{bet_id{"b"}, user_id{"u"}, selection_id{"c"}, money{1000}, price{1100}, 0,
                  true, ratio{1, 4}};
  CHECK(settle_on(market_resulted{{"a"}, false, {}, {"c"}, {}, {}}, ew).amount.minor == 2000);
  CHECK(settle_on(market_resulted{{}, true}, ew).amount.minor == 2000);
  market_state s;
  s.bets["b"] = ew;
  s.cancelled.insert("b");
  CHECK(settle_line(s, ew).amount.minor == 2000);
  s.cancelled.clear();
  s.withdrawn.insert("c");
  CHECK(settle_line(s, ew).outcome == bet_status::void_);
  CHECK(settle_line(s, ew).amount.minor == 2000);
}
