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
      || a.in_play_delay_ms != b.in_play_delay_ms || a.selections.size() != b.selections.size())
    return false;
  for (size_t i = 0; i < a.selections.size(); ++i)
    if (a.selections[i].id != b.selections[i].id || a.selections[i].name != b.selections[i].name
        || a.selections[i].current != b.selections[i].current)
      return false;
  return true;
}

bool eq(const accepted_bet& a, const accepted_bet& b) {
  return a.bet == b.bet && a.user == b.user && a.selection == b.selection
         && a.stake == b.stake && a.accepted == b.accepted;
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
  if (auto* a = std::get_if<market_resulted>(&x)) {
    auto& b = std::get<market_resulted>(y);
    return a->winners == b.winners && a->voided == b.voided;
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
  if (a.result && (a.result->winners != b.result->winners || a.result->voided != b.result->voided))
    return differ("result");
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
  return d;
}

std::vector<std::string> gen_ids() {
  auto n = *rc::gen::inRange<size_t>(0, 6);
  std::vector<std::string> ids;
  for (size_t i = 0; i < n; ++i)
    ids.push_back(gen_id_text());
  return ids;
}

market_event gen_any_event() {
  switch (*rc::gen::inRange(0, 7)) {
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
    default: return payouts_acknowledged{gen_ids()};
  }
}

// A history a real market could write.
std::vector<market_event> gen_history(size_t length) {
  std::vector<market_event> out;
  market_state s;
  int next_bet = 0;
  auto push = [&](market_event e) {
    apply(s, e, s.seq + 1);
    check_invariants(s);
    out.push_back(std::move(e));
  };
  push(market_defined{gen_definition("m1", *rc::gen::inRange<size_t>(1, 4))});
  while (out.size() < length) {
    auto& sels = s.definition.selections;
    auto sel = sels[any_in<size_t>(0, sels.size())].id.value;
    auto before = out.size();
    switch (any_in(0, 8)) {
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
        if (!s.result)
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
        if (!s.result && s.status != market_status::pending) {
          auto voided = *rc::gen::inRange(0, 3) == 0;
          push(market_resulted{voided ? std::vector<std::string>{} : std::vector{sel}, voided});
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
    apply(s, *decoded, i + 1);
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
      apply(live, h[i], i + 1);
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

TEST_CASE("settlement lines are exact: won floor(stake x price), lost 0, void the stake") {
  accepted_bet b{bet_id{"b1"}, user_id{"u1"}, selection_id{"home"}, money{333}, price{155}};
  auto won = settle_line({{"home"}, false}, b);
  CHECK(won.outcome == bet_status::won);
  CHECK(won.amount.minor == 516);
  auto lost = settle_line({{"away"}, false}, b);
  CHECK(lost.outcome == bet_status::lost);
  CHECK(lost.amount.minor == 0);
  auto dead_heat = settle_line({{"away", "home"}, false}, b);
  CHECK(dead_heat.outcome == bet_status::won);
  auto voided = settle_line({{}, true}, b);
  CHECK(voided.outcome == bet_status::void_);
  CHECK(voided.amount.minor == 333);
  CHECK(rc::check("settlement lines are exact for any stake and price", [] {
    auto stake = *rc::gen::inRange<int64_t>(1, amount_max_minor + 1);
    auto p = gen_price();
    accepted_bet x{bet_id{"b"}, user_id{"u"}, selection_id{"s"}, money{stake}, p};
    auto line = settle_line({{"s"}, false}, x);
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
