// Bet slips through the embedded platform: a slip's stake held once across
// several markets, kept only when every leg's market accepts (a refusal
// releases the hold and the other markets' legs), settled by its wallet
// when its legs' results decide it, exactly to the minor unit, and audited
// by the product's money audit (wagerctl verify's) across both sides.

#include "money_checks.hpp"
#include "slip_reference.hpp"

#include "wager/actors/ledger_audit.hpp"

#include <doctest/doctest.h>
#include <rapidcheck.h>

#include <cstdlib>

using namespace wager;
using namespace wager::test;

namespace {

place_slip_cmd slip_cmd(const std::string& request, slip_type type,
                        std::vector<std::pair<std::string, int32_t>> legs, int64_t stake,
                        bool each_way = false) {
  place_slip_cmd cmd;
  cmd.request = request_id{request};
  cmd.type = type;
  cmd.stake = money{stake};
  cmd.each_way = each_way;
  for (auto& [market, p] : legs)
    cmd.legs.push_back({market_id{market}, selection_id{"home"}, price{p}});
  return cmd;
}

caf::expected<bet> place_slip(platform& p, const std::string& user, place_slip_cmd cmd) {
  return await<bet>([&](auto done) { p.place_slip(user_id{user}, cmd, done); });
}

caf::expected<market_view> settle_result(platform& p, const std::string& market,
                                         market_resulted r) {
  return await<market_view>(
    [&](auto done) { p.settle_market_result(market_id{market}, std::move(r), done); });
}

caf::expected<market_view> withdraw(platform& p, const std::string& market,
                                    const std::string& selection) {
  return await<market_view>([&](auto done) {
    p.withdraw_selection(market_id{market}, selection_id{selection}, done);
  });
}

// Three open markets m1..m3 with home at 2.00, 3.00 and 1.50.
void three_markets(money_world& w) {
  open_two_way(w.p(), two_way_market("m1", 200, 200));
  open_two_way(w.p(), two_way_market("m2", 300, 150));
  open_two_way(w.p(), two_way_market("m3", 150, 300));
}

} // namespace

TEST_CASE("an accumulator of three winners pays the product of its prices: 10.00 -> 90.00") {
  money_world w;
  three_markets(w);
  REQUIRE(deposit(w.p(), "u1", "d1", 100'00));
  auto b = place_slip(w.p(), "u1",
                      slip_cmd("r1", slip_type::accumulator, {{"m1", 200}, {"m2", 300}, {"m3", 150}},
                               10'00));
  REQUIRE_MESSAGE(b, message_of(b.error()));
  CHECK(b->is_slip());
  CHECK(b->type == slip_type::accumulator);
  CHECK(b->lines() == 1);
  CHECK(b->total_stake().minor == 10'00);
  CHECK(b->potential().minor == 90'00);
  REQUIRE(b->legs.size() == 3);
  CHECK(b->legs[1].market.value == "m2");
  CHECK(b->legs[1].accepted.hundredths == 300);
  CHECK(available(w, "u1") == 90'00);
  // Each market counts the winnings riding on its leg: 80.00 on every one.
  CHECK(liability(w, "m1") == 80'00);
  CHECK(liability(w, "m3") == 80'00);
  // Two legs won: the slip is still open.
  REQUIRE(settle(w.p(), "m1", {"home"}));
  REQUIRE(settle(w.p(), "m2", {"home"}));
  REQUIRE(wait_until(
    [&] {
      auto now = get_bet(w.p(), "u1", b->id.value);
      return now && now->legs[1].result == leg_result::won;
    },
    30s));
  auto open = get_bet(w.p(), "u1", b->id.value);
  REQUIRE(open);
  CHECK(open->status == bet_status::open);
  CHECK(open->legs[0].result == leg_result::won);
  CHECK(open->legs[2].result == leg_result::open);
  REQUIRE(settle(w.p(), "m3", {"home"}));
  auto done = settled_bet(w, "u1", b->id.value);
  CHECK(done.status == bet_status::won);
  CHECK(done.payout.minor == 90'00);
  CHECK(available(w, "u1") == 180'00);
  audit_clean(w);
}

TEST_CASE("an accumulator with a non-runner pays as the bet without that leg: 10.00 -> 30.00") {
  money_world w;
  three_markets(w);
  REQUIRE(deposit(w.p(), "u1", "d1", 100'00));
  auto b = place_slip(w.p(), "u1",
                      slip_cmd("r1", slip_type::accumulator, {{"m1", 200}, {"m2", 300}, {"m3", 150}},
                               10'00));
  REQUIRE(b);
  REQUIRE(withdraw(w.p(), "m2", "home"));
  REQUIRE(settle(w.p(), "m1", {"home"}));
  REQUIRE(settle(w.p(), "m3", {"home"}));
  auto done = settled_bet(w, "u1", b->id.value);
  CHECK(done.status == bet_status::won);
  CHECK(done.payout.minor == 30'00);
  CHECK(done.legs[1].result == leg_result::void_);
  CHECK(available(w, "u1") == 90'00 + 30'00);
  audit_clean(w);
}

TEST_CASE("a losing leg settles an accumulator as lost at once, and later results change "
          "nothing") {
  money_world w;
  three_markets(w);
  REQUIRE(deposit(w.p(), "u1", "d1", 100'00));
  auto b = place_slip(w.p(), "u1",
                      slip_cmd("r1", slip_type::accumulator, {{"m1", 200}, {"m2", 300}, {"m3", 150}},
                               10'00));
  REQUIRE(b);
  REQUIRE(settle(w.p(), "m2", {"away"}));
  auto done = settled_bet(w, "u1", b->id.value);
  CHECK(done.status == bet_status::lost);
  CHECK(done.payout.minor == 0);
  CHECK(done.legs[1].result == leg_result::lost);
  CHECK(done.legs[0].result == leg_result::open);
  REQUIRE(settle(w.p(), "m1", {"home"}));
  REQUIRE(settle(w.p(), "m3", {"home"}));
  audit_clean(w);
  auto after = get_bet(w.p(), "u1", b->id.value);
  REQUIRE(after);
  CHECK(after->status == bet_status::lost);
  CHECK(available(w, "u1") == 90'00);
}

TEST_CASE("a Lucky 15 of four winners holds 15 stakes and pays 359.00 for 1.00 a line") {
  money_world w;
  open_two_way(w.p(), two_way_market("m1", 200, 200));
  open_two_way(w.p(), two_way_market("m2", 300, 150));
  open_two_way(w.p(), two_way_market("m3", 400, 130));
  open_two_way(w.p(), two_way_market("m4", 500, 120));
  REQUIRE(deposit(w.p(), "u1", "d1", 100'00));
  auto b = place_slip(w.p(), "u1",
                      slip_cmd("r1", slip_type::lucky15,
                               {{"m1", 200}, {"m2", 300}, {"m3", 400}, {"m4", 500}}, 1'00));
  REQUIRE_MESSAGE(b, message_of(b.error()));
  CHECK(b->lines() == 15);
  CHECK(b->total_stake().minor == 15'00);
  CHECK(available(w, "u1") == 85'00);
  for (auto m : {"m1", "m2", "m3", "m4"})
    REQUIRE(settle(w.p(), m, {"home"}));
  auto done = settled_bet(w, "u1", b->id.value);
  CHECK(done.payout.minor == 359'00);
  CHECK(available(w, "u1") == 85'00 + 359'00);
  audit_clean(w);
}

TEST_CASE("one leg's refusal releases the hold and every other market's leg") {
  money_world w;
  three_markets(w);
  REQUIRE(set_status(w.p(), "m3", market_status::suspended));
  REQUIRE(deposit(w.p(), "u1", "d1", 100'00));
  auto b = place_slip(w.p(), "u1",
                      slip_cmd("r1", slip_type::accumulator, {{"m1", 200}, {"m2", 300}, {"m3", 150}},
                               10'00));
  REQUIRE_FALSE(b);
  CHECK(code_of(b.error()) == errc::market_not_open);
  CHECK(available(w, "u1") == 100'00);
  // The markets that took their legs forget them: no liability is left.
  CHECK(wait_until([&] { return liability(w, "m1") == 0 && liability(w, "m2") == 0; }, 30s));
  // A retry gets the same answer and holds nothing.
  auto again = place_slip(w.p(), "u1",
                          slip_cmd("r1", slip_type::accumulator,
                                   {{"m1", 200}, {"m2", 300}, {"m3", 150}}, 10'00));
  REQUIRE_FALSE(again);
  CHECK(code_of(again.error()) == errc::market_not_open);
  CHECK(available(w, "u1") == 100'00);
  // The markets settle; the released legs owe nothing.
  REQUIRE(settle(w.p(), "m1", {"home"}));
  REQUIRE(settle(w.p(), "m2", {"home"}));
  audit_clean(w);
  CHECK(available(w, "u1") == 100'00);
}

TEST_CASE("a slip over one leg's market liability is refused and holds nothing") {
  money_world w;
  open_two_way(w.p(), two_way_market("m1", 200, 200));
  // m2 risks at most 50.00 on a selection; the double's 10.00 at 2.00 x 3.00
  // puts 50.00 of winnings on each leg, so a second one is refused.
  open_two_way(w.p(), two_way_market("m2", 300, 150, 1'000'000, 50'00));
  REQUIRE(deposit(w.p(), "u1", "d1", 100'00));
  auto first = place_slip(w.p(), "u1",
                          slip_cmd("r1", slip_type::accumulator, {{"m1", 200}, {"m2", 300}}, 10'00));
  REQUIRE_MESSAGE(first, message_of(first.error()));
  CHECK(liability(w, "m2") == 50'00);
  auto second = place_slip(w.p(), "u1",
                           slip_cmd("r2", slip_type::accumulator, {{"m1", 200}, {"m2", 300}}, 10'00));
  REQUIRE_FALSE(second);
  CHECK(code_of(second.error()) == errc::limit_exceeded);
  CHECK(available(w, "u1") == 90'00);
  CHECK(wait_until([&] { return liability(w, "m1") == 50'00; }, 30s));
}

TEST_CASE("bad slips are refused with the field at fault and hold nothing") {
  money_world w;
  three_markets(w);
  REQUIRE(deposit(w.p(), "u1", "d1", 100'00));
  auto refused = [&](place_slip_cmd cmd, std::string field) {
    auto b = place_slip(w.p(), "u1", std::move(cmd));
    REQUIRE_FALSE(b);
    CHECK(code_of(b.error()) == errc::invalid_field);
    CHECK(detail_of(b.error()) == field);
  };
  // Two legs on one market.
  refused(slip_cmd("r1", slip_type::accumulator, {{"m1", 200}, {"m1", 200}}, 10'00), "legs");
  // A Yankee takes four legs.
  refused(slip_cmd("r2", slip_type::yankee, {{"m1", 200}, {"m2", 300}, {"m3", 150}}, 10'00),
          "legs");
  // An accumulator takes two at least.
  refused(slip_cmd("r3", slip_type::accumulator, {{"m1", 200}}, 10'00), "legs");
  // A price out of range.
  refused(slip_cmd("r4", slip_type::accumulator, {{"m1", 200}, {"m2", 100}}, 10'00), "legs");
  // A stake of nothing.
  refused(slip_cmd("r5", slip_type::accumulator, {{"m1", 200}, {"m2", 300}}, 0), "stake");
  CHECK(available(w, "u1") == 100'00);
  CHECK(liability(w, "m1") == 0);
}

TEST_CASE("each-way on a slip with a leg's market without terms is refused and releases the "
          "rest") {
  money_world w;
  auto race = two_way_market("r1", 1100, 500);
  race.each_way = {3, ratio{1, 4}};
  open_two_way(w.p(), race);
  open_two_way(w.p(), two_way_market("m2", 300, 150));
  REQUIRE(deposit(w.p(), "u1", "d1", 100'00));
  auto b = place_slip(w.p(), "u1",
                      slip_cmd("q1", slip_type::accumulator, {{"r1", 1100}, {"m2", 300}}, 5'00,
                               true));
  REQUIRE_FALSE(b);
  CHECK(code_of(b.error()) == errc::invalid_field);
  CHECK(detail_of(b.error()) == "each_way");
  CHECK(available(w, "u1") == 100'00);
  CHECK(wait_until([&] { return liability(w, "r1") == 0; }, 30s));
}

TEST_CASE("an each-way double: the win half loses on a placed leg, the place half pays") {
  money_world w;
  auto a = two_way_market("ra", 1100, 500);
  a.each_way = {3, ratio{1, 4}};
  auto c = two_way_market("rb", 500, 300);
  c.each_way = {3, ratio{1, 5}};
  open_two_way(w.p(), a);
  open_two_way(w.p(), c);
  REQUIRE(deposit(w.p(), "u1", "d1", 100'00));
  auto b = place_slip(w.p(), "u1",
                      slip_cmd("e1", slip_type::accumulator, {{"ra", 1100}, {"rb", 500}}, 10'00,
                               true));
  REQUIRE_MESSAGE(b, message_of(b.error()));
  CHECK(b->total_stake().minor == 20'00);
  CHECK(b->legs[0].place_fraction == ratio{1, 4});
  CHECK(b->legs[1].place_fraction == ratio{1, 5});
  market_resulted placed;
  placed.winners = {"away"};
  placed.placed = {"home"};
  REQUIRE(settle_result(w.p(), "ra", placed));
  REQUIRE(settle(w.p(), "rb", {"home"}));
  auto done = settled_bet(w, "u1", b->id.value);
  // Win half: lost. Place half: 10.00 x (1 + 10/4) x (1 + 4/5) = 63.00.
  CHECK(done.status == bet_status::won);
  CHECK(done.payout.minor == 63'00);
  CHECK(done.legs[0].result == leg_result::placed);
  audit_clean(w);
}

TEST_CASE("a slip's retry gets its first answer, and the same id with another body is refused") {
  money_world w;
  three_markets(w);
  REQUIRE(deposit(w.p(), "u1", "d1", 100'00));
  auto cmd = slip_cmd("r1", slip_type::trixie, {{"m1", 200}, {"m2", 300}, {"m3", 150}}, 1'00);
  auto first = place_slip(w.p(), "u1", cmd);
  REQUIRE_MESSAGE(first, message_of(first.error()));
  CHECK(first->lines() == 4);
  auto again = place_slip(w.p(), "u1", cmd);
  REQUIRE(again);
  CHECK(again->id == first->id);
  CHECK(available(w, "u1") == 96'00);
  cmd.stake = money{2'00};
  auto other = place_slip(w.p(), "u1", cmd);
  REQUIRE_FALSE(other);
  CHECK(code_of(other.error()) == errc::request_id_reused);
  // A restart: the slip and its answer come back from the journal.
  w.restart();
  cmd.stake = money{1'00};
  auto replayed = place_slip(w.p(), "u1", cmd);
  REQUIRE(replayed);
  CHECK(replayed->id == first->id);
  CHECK(available(w, "u1") == 96'00);
}

TEST_CASE("a slip half settled when the node restarts is settled once, exactly") {
  money_world w;
  three_markets(w);
  REQUIRE(deposit(w.p(), "u1", "d1", 100'00));
  auto b = place_slip(w.p(), "u1",
                      slip_cmd("r1", slip_type::patent, {{"m1", 200}, {"m2", 300}, {"m3", 150}},
                               1'00));
  REQUIRE(b);
  CHECK(b->lines() == 7);
  REQUIRE(settle(w.p(), "m1", {"home"}));
  REQUIRE(wait_until(
    [&] {
      auto now = get_bet(w.p(), "u1", b->id.value);
      return now && now->legs[0].result == leg_result::won;
    },
    30s));
  w.restart();
  REQUIRE(settle(w.p(), "m2", {"away"}));
  REQUIRE(settle(w.p(), "m3", {"home"}));
  auto done = settled_bet(w, "u1", b->id.value);
  // Patent on 2.00 (won), 3.00 (lost), 1.50 (won): the singles 2.00 and
  // 1.50, and the double of the two, 3.00: 6.50 for 7.00 staked.
  CHECK(done.status == bet_status::won);
  CHECK(done.payout.minor == 6'50);
  CHECK(available(w, "u1") == 93'00 + 6'50);
  audit_clean(w);
}

TEST_CASE("a slip pays at most the lowest cap: the node's, or a leg's market's") {
  auto options = test_platform_options("");
  options.wallet.max_payout = money{500'00};
  money_world w{options};
  open_two_way(w.p(), two_way_market("m1", 1000, 200));
  auto capped = two_way_market("m2", 1000, 200);
  capped.limits.max_payout = money{300'00};
  open_two_way(w.p(), capped);
  open_two_way(w.p(), two_way_market("m3", 1000, 200));
  REQUIRE(deposit(w.p(), "u1", "d1", 100'00));
  // 10.00 on 10.00 x 10.00 would pay 1,000.00: the node caps it at 500.00.
  auto by_node = place_slip(w.p(), "u1",
                            slip_cmd("r1", slip_type::accumulator, {{"m1", 1000}, {"m3", 1000}},
                                     10'00));
  REQUIRE_MESSAGE(by_node, message_of(by_node.error()));
  CHECK(by_node->max_payout.minor == 500'00);
  CHECK(by_node->potential().minor == 500'00);
  // With a leg on m2, its market's 300.00 wins.
  auto by_market = place_slip(w.p(), "u1",
                              slip_cmd("r2", slip_type::accumulator, {{"m1", 1000}, {"m2", 1000}},
                                       10'00));
  REQUIRE_MESSAGE(by_market, message_of(by_market.error()));
  CHECK(by_market->max_payout.minor == 300'00);
  for (auto m : {"m1", "m2", "m3"})
    REQUIRE(settle(w.p(), m, {"home"}));
  CHECK(settled_bet(w, "u1", by_node->id.value).payout.minor == 500'00);
  CHECK(settled_bet(w, "u1", by_market->id.value).payout.minor == 300'00);
  CHECK(available(w, "u1") == 80'00 + 500'00 + 300'00);
  audit_clean(w);
}

namespace {

// A value in [lo, hi), uniform whatever rapidcheck's current size.
template <class T>
T any_in(T lo, T hi) {
  return *rc::gen::resize(rc::kNominalSize, rc::gen::inRange<T>(lo, hi));
}

constexpr int race_count = 4;
const char* const runners[] = {"a", "b", "c"};

// What the model decides a market's result is, and what it makes of a leg.
struct race_result {
  bool voided = false;
  std::string winner;
  std::string second; // dead-heats the win with `winner` when `heat`
  bool heat = false;
  std::string placed;
  int32_t rule4 = 0;
  std::string withdrawn;

  slip_leg leg_of(const std::string& selection, price taken, bool each_way) const {
    slip_leg l;
    l.taken = taken;
    if (each_way)
      l.place_fraction = ratio{1, 4};
    if (voided || selection == withdrawn) {
      l.result = leg_result::void_;
      return l;
    }
    if (selection == winner || (heat && selection == second)) {
      l.result = leg_result::won;
      if (heat)
        l.dead_heat = ratio{1, 2};
    } else if (selection == placed) {
      l.result = leg_result::placed;
    } else {
      l.result = leg_result::lost;
      return l;
    }
    l.rule4 = rule4;
    return l;
  }
};

struct placed_slip {
  std::string user;
  bet answer;
  slip asked; // as the model sees it, results filled in at the end
  std::vector<std::string> selections;
  std::vector<int> races;
};

} // namespace

TEST_CASE("random slips over random race results pay what the reference says, through "
          "restarts and wrong results rolled back, and the money audit holds") {
  ::setenv("RC_PARAMS", "max_success=12", 0);
  CHECK(rc::check("slips settled through the platform match the reference", [] {
    money_world w;
    std::vector<std::map<std::string, int32_t>> prices(race_count);
    for (int r = 0; r < race_count; ++r) {
      auto d = two_way_market("r" + std::to_string(r), 200, 200);
      d.selections.clear();
      for (auto name : runners) {
        auto p = any_in<int32_t>(101, 1001);
        prices[r][name] = p;
        d.selections.push_back({selection_id{name}, name, price{p}});
      }
      d.each_way = {3, ratio{1, 4}};
      open_two_way(w.p(), d);
    }
    for (auto user : {"u1", "u2"})
      RC_ASSERT(deposit(w.p(), user, "d1", 1'000'000));
    std::vector<placed_slip> slips;
    int64_t staked = 0;
    auto count = any_in(1, 7);
    for (int k = 0; k < count; ++k) {
      auto n = any_in<size_t>(1, race_count + 1);
      std::vector<int> order{0, 1, 2, 3};
      for (size_t i = 0; i < order.size(); ++i)
        std::swap(order[i], order[any_in<size_t>(i, order.size())]);
      std::vector<slip_type> types{n == 1 ? slip_type::single : slip_type::accumulator};
      if (n == 3)
        types.insert(types.end(), {slip_type::trixie, slip_type::patent});
      if (n == 4)
        types.insert(types.end(), {slip_type::yankee, slip_type::lucky15});
      placed_slip ps;
      ps.user = k % 2 == 0 ? "u1" : "u2";
      ps.asked.type = types[any_in<size_t>(0, types.size())];
      ps.asked.stake = money{any_in<int64_t>(1, 501)};
      ps.asked.each_way = any_in(0, 2) == 1;
      place_slip_cmd cmd{request_id{"s" + std::to_string(k)}, ps.asked.type, {}, ps.asked.stake,
                         accept_policy::exact, ps.asked.each_way};
      for (size_t i = 0; i < n; ++i) {
        auto race = order[i];
        std::string sel = runners[any_in(0, 3)];
        auto p = price{prices[race][sel]};
        cmd.legs.push_back({market_id{"r" + std::to_string(race)}, selection_id{sel}, p});
        slip_leg l;
        l.taken = p;
        ps.asked.legs.push_back(l);
        ps.selections.push_back(sel);
        ps.races.push_back(race);
      }
      auto b = place_slip(w.p(), ps.user, cmd);
      RC_ASSERT(static_cast<bool>(b));
      RC_ASSERT(b->total_stake() == total_stake(ps.asked));
      staked += b->total_stake().minor;
      ps.answer = *b;
      slips.push_back(std::move(ps));
    }
    // The results: a non-runner now and then, a void race, a dead heat for
    // first, a Rule 4 on every bet; a restart between two settlements.
    std::vector<race_result> results(race_count);
    auto restart_after = any_in(-1, race_count);
    for (int r = 0; r < race_count; ++r) {
      auto& res = results[r];
      auto id = "r" + std::to_string(r);
      if (any_in(0, 4) == 0) {
        res.withdrawn = runners[any_in(0, 3)];
        RC_ASSERT(static_cast<bool>(withdraw(w.p(), id, res.withdrawn)));
      }
      RC_ASSERT(static_cast<bool>(set_status(w.p(), id, market_status::closed)));
      if (any_in(0, 3) == 0) {
        // A wrong result first, rolled back before the true one: what the
        // slips end with must be what settling once would have paid.
        market_resulted wrong;
        for (auto name : runners)
          if (name != res.withdrawn && wrong.winners.empty() && any_in(0, 2) == 0)
            wrong.winners = {name};
        if (wrong.winners.empty())
          wrong.voided = true;
        else if (!res.withdrawn.empty())
          wrong.void_selections = {res.withdrawn};
        RC_ASSERT(static_cast<bool>(settle_result(w.p(), id, wrong)));
        if (r == restart_after)
          w.restart();
        RC_ASSERT(static_cast<bool>(
          await<market_view>([&](auto done) { w.p().unsettle_market(market_id{id}, done); })));
      }
      if (any_in(0, 6) == 0) {
        res.voided = true;
        RC_ASSERT(static_cast<bool>(void_market(w.p(), id)));
      } else {
        std::vector<std::string> running;
        for (auto name : runners)
          if (name != res.withdrawn)
            running.push_back(name);
        auto first = any_in<size_t>(0, running.size());
        res.winner = running[first];
        market_resulted mr;
        mr.winners = {res.winner};
        for (auto& name : running) {
          if (name == res.winner)
            continue;
          if (any_in(0, 3) == 0 && !res.heat && res.placed.empty()) {
            res.heat = true;
            res.second = name;
            mr.winners.push_back(name);
            mr.dead_heat = {{res.winner, ratio{1, 2}}, {name, ratio{1, 2}}};
          } else if (res.placed.empty() && any_in(0, 2) == 0) {
            res.placed = name;
            mr.placed = {name};
          }
        }
        if (any_in(0, 3) == 0) {
          res.rule4 = any_in<int32_t>(1, 40);
          mr.rule4 = {rule4_deduction{res.rule4, wall_ms() + 3'600'000}};
        }
        if (!res.withdrawn.empty())
          mr.void_selections = {res.withdrawn};
        RC_ASSERT(static_cast<bool>(settle_result(w.p(), id, mr)));
      }
      if (r == restart_after)
        w.restart();
    }
    // Every outbox delivered first: a slip may show a wrong result's
    // payout until its reversal has arrived.
    RC_ASSERT(wait_until(
      [&] {
        auto a = audit_journal(w.p().journal(), false);
        return a.outboxes_empty() && a.holds() == 0;
      },
      30s));
    int64_t paid = 0;
    for (auto& ps : slips) {
      for (size_t i = 0; i < ps.asked.legs.size(); ++i)
        ps.asked.legs[i] = results[ps.races[i]].leg_of(ps.selections[i], ps.asked.legs[i].taken,
                                                       ps.asked.each_way);
      auto expected = reference_payout(ps.asked);
      caf::expected<bet> now = make_error(errc::not_found);
      bool settled_now = wait_until(
        [&] {
          now = get_bet(w.p(), ps.user, ps.answer.id.value);
          return now && now->status != bet_status::open;
        },
        30s);
      RC_ASSERT(settled_now);
      RC_LOG() << ps.answer.id.value << " " << to_string(ps.asked.type) << " expected "
               << expected << " paid " << now->payout.minor << "\n";
      RC_ASSERT(now->payout.minor == expected);
      paid += expected;
    }
    bool quiet = wait_until(
      [&] {
        auto a = audit_journal(w.p().journal(), false);
        return a.outboxes_empty() && a.holds() == 0;
      },
      30s);
    RC_ASSERT(quiet);
    auto report = audit_ledger(w.p().journal());
    RC_ASSERT(static_cast<bool>(report));
    RC_ASSERT(report->ok());
    auto total = balance(w.p(), "u1").available.minor + balance(w.p(), "u2").available.minor;
    RC_ASSERT(total == 2'000'000 - staked + paid);
  }));
}
