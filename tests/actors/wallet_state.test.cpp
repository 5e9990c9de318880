// The wallet's pure fold (wallet_state.hpp), without actors or a journal:
// every event decodes to itself, a wallet rebuilt from its encoded events
// equals the live one, and a snapshot (JSON text and back) equals the state
// it was taken from, also when the tail is replayed on top of it.

#include "wager/actors/wallet_state.hpp"

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

bool eq(const bet& a, const bet& b) {
  return a.id == b.id && a.market == b.market && a.selection == b.selection
         && a.stake == b.stake && a.accepted == b.accepted && a.status == b.status
         && a.payout == b.payout && a.placed_at_ms == b.placed_at_ms
         && a.settled_at_ms == b.settled_at_ms && a.each_way == b.each_way
         && (!a.each_way || a.place_fraction == b.place_fraction);
}

bool eq(const stake_held& a, const stake_held& b) {
  return a.request == b.request && a.bet == b.bet && a.market == b.market
         && a.selection == b.selection && a.stake == b.stake && a.asked == b.asked
         && a.accept == b.accept && a.body_hash == b.body_hash && a.each_way == b.each_way;
}

bool eq(const wallet_event& x, const wallet_event& y) {
  if (x.index() != y.index())
    return false;
  if (auto* a = std::get_if<deposited>(&x)) {
    auto& b = std::get<deposited>(y);
    return a->request == b.request && a->amount == b.amount && a->body_hash == b.body_hash;
  }
  if (auto* a = std::get_if<withdrawn>(&x)) {
    auto& b = std::get<withdrawn>(y);
    return a->request == b.request && a->amount == b.amount && a->body_hash == b.body_hash;
  }
  if (auto* a = std::get_if<stake_held>(&x))
    return eq(*a, std::get<stake_held>(y));
  if (auto* a = std::get_if<stake_committed>(&x)) {
    auto& b = std::get<stake_committed>(y);
    return a->bet == b.bet && a->accepted == b.accepted && a->place_fraction == b.place_fraction;
  }
  if (auto* a = std::get_if<hold_released>(&x)) {
    auto& b = std::get<hold_released>(y);
    return a->bet == b.bet && a->reason == b.reason && a->current == b.current;
  }
  if (auto* a = std::get_if<payout_credited>(&x)) {
    auto& b = std::get<payout_credited>(y);
    return a->bet == b.bet && a->outcome == b.outcome && a->amount == b.amount;
  }
  auto& a = std::get<limits_set>(x);
  auto& b = std::get<limits_set>(y);
  return a.limits == b.limits;
}

template <class C, class F>
bool all_eq(const C& a, const C& b, F&& same) {
  if (a.size() != b.size())
    return false;
  auto i = a.begin();
  auto j = b.begin();
  for (; i != a.end(); ++i, ++j)
    if (!same(*i, *j))
      return false;
  return true;
}

// Every field; the first difference is named in `why`.
bool eq(const wallet_state& a, const wallet_state& b, std::string& why) {
  auto differ = [&](const char* field) {
    why = field;
    return false;
  };
  if (a.seq != b.seq) return differ("seq");
  if (a.available != b.available) return differ("available");
  if (a.held != b.held) return differ("held");
  if (a.deposited != b.deposited) return differ("deposited");
  if (a.withdrawn != b.withdrawn) return differ("withdrawn");
  if (a.staked != b.staked) return differ("staked");
  if (a.credited != b.credited) return differ("credited");
  if (!(a.limits == b.limits)) return differ("limits");
  if (a.activity != b.activity) return differ("activity");
  if (!all_eq(a.holds, b.holds, [](auto& x, auto& y) {
        return x.first == y.first && eq(x.second, y.second);
      }))
    return differ("holds");
  if (!all_eq(a.open_bets, b.open_bets, [](auto& x, auto& y) {
        return x.first == y.first && eq(x.second, y.second);
      }))
    return differ("open_bets");
  if (!all_eq(a.settled_bets, b.settled_bets, [](auto& x, auto& y) { return eq(x, y); }))
    return differ("settled_bets");
  if (!all_eq(a.ledger, b.ledger, [](auto& x, auto& y) {
        return x.seq == y.seq && x.kind == y.kind && x.amount == y.amount
               && x.available_after == y.available_after && x.at_ms == y.at_ms
               && x.ref == y.ref;
      }))
    return differ("ledger");
  if (a.request_order != b.request_order) return differ("request_order");
  if (a.requests.size() != b.requests.size()) return differ("requests");
  for (auto& [id, r] : a.requests) {
    auto i = b.requests.find(id);
    if (i == b.requests.end() || i->second.body_hash != r.body_hash || i->second.bet != r.bet
        || i->second.response != r.response)
      return differ("requests");
  }
  return true;
}

// -- generators ---------------------------------------------------------------

const std::string id_chars =
  "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.:-";

template <class Id>
Id gen_id() {
  auto size = *rc::gen::inRange<size_t>(1, 65);
  std::string text;
  for (size_t i = 0; i < size; ++i)
    text.push_back(id_chars[*rc::gen::inRange<size_t>(0, id_chars.size())]);
  return Id{text};
}

money gen_amount() {
  return money{*rc::gen::oneOf(rc::gen::inRange<int64_t>(1, 100'000),
                               rc::gen::inRange<int64_t>(1, amount_max_minor + 1),
                               rc::gen::just(amount_max_minor))};
}

price gen_price() {
  return price{*rc::gen::inRange<int32_t>(price_min_hundredths, price_max_hundredths + 1)};
}

accept_policy gen_policy() {
  return *rc::gen::element(accept_policy::exact, accept_policy::better, accept_policy::any);
}

errc gen_errc() {
  return static_cast<errc>(*rc::gen::inRange<int>(0, static_cast<int>(errc::internal) + 1));
}

// One event of each type with arbitrary fields, valid or not for a state.
wallet_event gen_any_event() {
  switch (*rc::gen::inRange(0, 7)) {
    case 0:
      return deposited{gen_id<request_id>(), gen_amount(), *rc::gen::arbitrary<uint64_t>()};
    case 1:
      return withdrawn{gen_id<request_id>(), gen_amount(), *rc::gen::arbitrary<uint64_t>()};
    case 2:
      return stake_held{gen_id<request_id>(),  gen_id<bet_id>(), gen_id<market_id>(),
                        gen_id<selection_id>(), gen_amount(),    gen_price(),
                        gen_policy(),           *rc::gen::arbitrary<uint64_t>(),
                        *rc::gen::arbitrary<bool>()};
    case 3:
      return stake_committed{gen_id<bet_id>(), gen_price(),
                             *rc::gen::element(ratio{}, ratio{1, 4}, ratio{1, 5})};
    case 4: {
      hold_released r{gen_id<bet_id>(), gen_errc(), {}};
      if (*rc::gen::arbitrary<bool>())
        r.current = gen_price();
      return r;
    }
    case 5:
      return payout_credited{gen_id<bet_id>(),
                             *rc::gen::element(bet_status::won, bet_status::lost,
                                               bet_status::void_),
                             money{*rc::gen::inRange<int64_t>(0, amount_max_minor * 1000)}};
    default: {
      limits_set l;
      auto amount_or_pending = [] {
        return *rc::gen::element(nothing_pending, int64_t{0}, gen_amount().minor);
      };
      for (size_t i = 0; i < 3; ++i) {
        if (*rc::gen::arbitrary<bool>())
          l.limits.deposit[i] = gen_amount().minor;
        if (*rc::gen::arbitrary<bool>())
          l.limits.loss[i] = gen_amount().minor;
        l.limits.pending_deposit[i] = amount_or_pending();
        l.limits.pending_loss[i] = amount_or_pending();
      }
      l.limits.pending_effective_ms = *rc::gen::inRange<int64_t>(0, int64_t{1} << 50);
      l.limits.time_out_until_ms = *rc::gen::inRange<int64_t>(0, int64_t{1} << 50);
      l.limits.self_exclude_until_ms = *rc::gen::inRange<int64_t>(0, int64_t{1} << 50);
      l.limits.reality_check_minutes = *rc::gen::inRange<int64_t>(0, 121);
      return l;
    }
  }
}

// A history a real wallet could write: each event valid for the state
// before it, timestamps growing (across UTC days, too).
struct history {
  std::vector<wallet_event> events;
  std::vector<int64_t> at;
};

history gen_history(size_t length) {
  history h;
  wallet_state s;
  int64_t at = *rc::gen::inRange<int64_t>(0, int64_t{1} << 42);
  int next_bet = 0;
  int next_request = 0;
  while (h.events.size() < length) {
    at += *rc::gen::oneOf(rc::gen::inRange<int64_t>(0, 5),
                          rc::gen::inRange<int64_t>(0, 3 * 86'400'000));
    auto request = request_id{"r" + std::to_string(++next_request)};
    std::optional<wallet_event> e;
    switch (any_in(0, 8)) {
      case 0: e = deposited{request, money{*rc::gen::inRange<int64_t>(1, 10'000)}, 7}; break;
      case 1:
        if (s.available.minor > 0)
          e = withdrawn{request, money{*rc::gen::inRange<int64_t>(1, s.available.minor + 1)}, 9};
        break;
      case 2:
        if (s.available.minor > 0) {
          // Each-way holds twice its stake: at most half the balance.
          bool each_way = s.available.minor > 1 && *rc::gen::arbitrary<bool>();
          auto most = each_way ? s.available.minor / 2 : s.available.minor;
          e = stake_held{request,
                         bet_id{"b" + std::to_string(++next_bet)},
                         market_id{"m1"},
                         selection_id{*rc::gen::element<std::string>("home", "away")},
                         money{*rc::gen::inRange<int64_t>(1, most + 1)},
                         gen_price(),
                         gen_policy(),
                         *rc::gen::arbitrary<uint64_t>(),
                         each_way};
        }
        break;
      case 3:
      case 4:
        if (!s.holds.empty()) {
          auto i = std::next(s.holds.begin(),
                             *rc::gen::inRange<ptrdiff_t>(0, static_cast<ptrdiff_t>(s.holds.size())));
          if (*rc::gen::arbitrary<bool>())
            e = stake_committed{i->second.bet, gen_price(),
                                i->second.each_way ? ratio{1, 4} : ratio{}};
          else
            e = hold_released{i->second.bet, errc::price_changed, gen_price()};
        }
        break;
      case 5:
        if (!s.open_bets.empty()) {
          auto& b = std::next(s.open_bets.begin(),
                              *rc::gen::inRange<ptrdiff_t>(
                                0, static_cast<ptrdiff_t>(s.open_bets.size())))
                      ->second;
          auto outcome = *rc::gen::element(bet_status::won, bet_status::lost, bet_status::void_);
          auto amount = outcome == bet_status::won    ? b.potential()
                        : outcome == bet_status::void_ ? b.stake
                                                       : money{};
          e = payout_credited{b.id, outcome, amount};
        }
        break;
      case 6: e = gen_any_event(); if (!std::holds_alternative<limits_set>(*e)) e.reset(); break;
      default: break;
    }
    if (!e) // nothing else fits this state: a deposit always does
      e = deposited{request, money{1}, 7};
    apply(s, *e, s.seq + 1, at);
    check_invariants(s);
    h.events.push_back(*e);
    h.at.push_back(at);
  }
  return h;
}

wallet_state fold(const history& h, size_t from, size_t to, wallet_state s = {}) {
  for (size_t i = from; i < to; ++i) {
    auto decoded = decode_wallet_event(encode(h.events[i]));
    RC_ASSERT(decoded.has_value());
    apply(s, *decoded, i + 1, h.at[i]);
    check_invariants(s);
  }
  return s;
}

std::optional<wallet_state> through_snapshot(const wallet_state& s) {
  auto text = boost::json::serialize(to_json(s));
  return wallet_state_from_json(boost::json::parse(text));
}

} // namespace

TEST_CASE("every wallet event decodes to itself") {
  CHECK(rc::check("wallet events decode to themselves", [] {
    auto e = gen_any_event();
    auto decoded = decode_wallet_event(encode(e));
    RC_ASSERT(decoded.has_value());
    RC_ASSERT(eq(*decoded, e));
  }));
}

TEST_CASE("every refusal reason survives the hold_released round trip") {
  for (int i = 0; i <= static_cast<int>(errc::internal); ++i) {
    auto reason = static_cast<errc>(i);
    CAPTURE(to_code(reason));
    hold_released r{bet_id{"b1"}, reason, price{250}};
    auto decoded = decode_wallet_event(encode(r));
    REQUIRE(decoded);
    CHECK(std::get<hold_released>(*decoded).reason == reason);
  }
}

TEST_CASE("an event of an unknown type or with a missing field does not decode") {
  CHECK_FALSE(decode_wallet_event(event::make("renamed", 1, boost::json::object{})));
  auto e = encode(deposited{request_id{"r1"}, money{5}, 3});
  auto doc = e.json();
  doc.as_object().erase("amount");
  CHECK_FALSE(decode_wallet_event(event::make("deposited", 1, doc)));
}

TEST_CASE("a wallet rebuilt from its events equals the live wallet") {
  CHECK(rc::check("a wallet rebuilt from its events equals the live one", [] {
    auto h = gen_history(*rc::gen::inRange<size_t>(1, 120));
    wallet_state live;
    for (size_t i = 0; i < h.events.size(); ++i) {
      apply(live, h.events[i], i + 1, h.at[i]);
      check_invariants(live);
    }
    std::string why;
    RC_ASSERT(eq(fold(h, 0, h.events.size()), live, why));
  }));
}

TEST_CASE("a wallet snapshot read back equals the wallet, also with the tail replayed on it") {
  CHECK(rc::check("a wallet snapshot read back equals the wallet", [] {
    auto h = gen_history(*rc::gen::inRange<size_t>(1, 120));
    auto live = fold(h, 0, h.events.size());
    auto cut = *rc::gen::inRange<size_t>(0, h.events.size() + 1);
    auto at_cut = fold(h, 0, cut);
    auto snap = through_snapshot(at_cut);
    RC_ASSERT(snap.has_value());
    std::string why;
    if (!eq(*snap, at_cut, why))
      RC_FAIL("snapshot differs in " + why);
    if (!eq(fold(h, cut, h.events.size(), *snap), live, why))
      RC_FAIL("snapshot plus tail differs in " + why);
  }));
}

TEST_CASE("a wallet with more requests than it keeps round-trips through a snapshot, undecided "
          "bets kept") {
  wallet_state s;
  uint64_t seq = 0;
  int64_t at = 1'700'000'000'000;
  apply(s, deposited{request_id{"first"}, money{1'000'000}, 1}, ++seq, at);
  for (int i = 0; i < 3; ++i)
    apply(s, stake_held{request_id{"bet" + std::to_string(i)}, bet_id{"b" + std::to_string(i)},
                        market_id{"m1"}, selection_id{"home"}, money{10}, price{200},
                        accept_policy::exact, 5},
          ++seq, at);
  for (size_t i = 0; i < wallet_requests_max + 200; ++i)
    apply(s, deposited{request_id{"d" + std::to_string(i)}, money{1}, 2}, ++seq, ++at);
  check_invariants(s);
  CHECK(s.requests.size() <= wallet_requests_max);
  CHECK(s.requests.size() == s.request_order.size());
  for (int i = 0; i < 3; ++i)
    CHECK(s.requests.count("bet" + std::to_string(i)) == 1);
  CHECK(s.requests.count("first") == 0);
  CHECK(s.ledger.size() == wallet_ledger_max);
  auto snap = through_snapshot(s);
  REQUIRE(snap);
  std::string why;
  CHECK_MESSAGE(eq(*snap, s, why), why);
}

TEST_CASE("deposits, committed stakes and returns are counted over the rolling periods") {
  wallet_state s;
  int64_t day = 20'000 * int64_t{86'400'000};
  apply(s, deposited{request_id{"a"}, money{100}, 1}, 1, day + 1);
  apply(s, deposited{request_id{"b"}, money{50}, 1}, 2, day + 86'399'999);
  stake_held h{request_id{"c"}, bet_id{"b1"}, market_id{"m"}, selection_id{"s"}, money{40},
               price{200}, accept_policy::exact, 1};
  apply(s, h, 3, day + 86'400'000);
  auto within = activity_within(s.activity, day + 86'400'000, limit_period::day);
  CHECK(within.deposited == 150);
  CHECK(within.staked == 0); // held, not yet committed
  apply(s, stake_committed{bet_id{"b1"}, price{200}}, 4, day + 86'400'000);
  apply(s, payout_credited{bet_id{"b1"}, bet_status::won, money{80}}, 5, day + 2 * 86'400'000);
  within = activity_within(s.activity, day + 2 * 86'400'000, limit_period::day);
  CHECK(within.deposited == 0);
  CHECK(within.staked == 40);
  CHECK(within.returned == 80);
  CHECK(activity_within(s.activity, day + 2 * 86'400'000, limit_period::week).deposited == 150);
  auto snap = through_snapshot(s);
  REQUIRE(snap);
  std::string why;
  CHECK_MESSAGE(eq(*snap, s, why), why);
}

TEST_CASE("version 1 of limits_set reads as the rolling-day deposit limit and the self-exclusion") {
  auto e = event::make("limits_set", 1,
                       boost::json::object{{"self_exclude_until", 1'900'000'000'000},
                                           {"daily_deposit_limit", 5'000}});
  auto decoded = decode_wallet_event(e);
  REQUIRE(decoded);
  auto& l = std::get<limits_set>(*decoded).limits;
  CHECK(l.deposit[static_cast<size_t>(limit_period::day)] == 5'000);
  CHECK(l.deposit[static_cast<size_t>(limit_period::week)] == 0);
  CHECK(l.self_exclude_until_ms == 1'900'000'000'000);
  CHECK_FALSE(l.has_pending());
}

TEST_CASE("an each-way bet holds and stakes twice its stake, and its bet keeps the place terms") {
  wallet_state s;
  uint64_t seq = 0;
  auto step = [&](wallet_event e) {
    apply(s, e, ++seq, 1'796'652'000'000);
    check_invariants(s);
  };
  step(deposited{request_id{"d"}, money{10'000}, 1});
  stake_held hold{request_id{"r"}, bet_id{"b1"}, market_id{"race"}, selection_id{"a"},
                  money{1000},    price{1100}, accept_policy::exact, 2, true};
  CHECK(hold.amount().minor == 2000);
  step(hold);
  CHECK(s.available.minor == 8000);
  CHECK(s.held.minor == 2000);
  step(stake_committed{bet_id{"b1"}, price{1100}, ratio{1, 4}});
  CHECK(s.held.minor == 0);
  CHECK(s.staked.minor == 2000);
  auto& b = s.open_bets.at("b1");
  CHECK(b.each_way);
  CHECK(b.place_fraction == ratio{1, 4});
  CHECK(b.total_stake().minor == 2000);
  CHECK(b.potential().minor == 11'000 + 3500);
  auto back = bet_from_json(bet_to_json(b));
  REQUIRE(back);
  CHECK(back->each_way);
  CHECK(back->place_fraction == ratio{1, 4});
  auto snap = wallet_state_from_json(to_json(s));
  REQUIRE(snap);
  CHECK(snap->open_bets.at("b1").each_way);
  // A hold released each-way returns both stakes.
  step(stake_held{request_id{"r2"}, bet_id{"b2"}, market_id{"flat"}, selection_id{"a"},
                  money{500}, price{300}, accept_policy::exact, 3, true});
  CHECK(s.available.minor == 7000);
  step(hold_released{bet_id{"b2"}, errc::invalid_field, {}});
  CHECK(s.available.minor == 8000);
  CHECK(s.requests.at("r2").response.find("\"field\":\"each_way\"") != std::string::npos);
}
