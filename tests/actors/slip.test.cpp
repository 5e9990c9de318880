#include "wager/actors/slip.hpp"

#include "slip_reference.hpp"

#include <boost/multiprecision/cpp_int.hpp>
#include <doctest/doctest.h>
#include <rapidcheck.h>

#include <bit>
#include <map>

using namespace wager;
using namespace wager::test;

namespace {

price p(int32_t hundredths) { return price{hundredths}; }

slip_leg leg(int32_t hundredths, leg_result r = leg_result::won, ratio dead_heat = {},
             int32_t rule4 = 0) {
  slip_leg l;
  l.taken = price{hundredths};
  l.result = r;
  l.dead_heat = dead_heat;
  l.rule4 = rule4;
  return l;
}

slip make(slip_type type, int64_t stake, std::vector<slip_leg> legs, bool each_way = false,
          ratio fraction = {1, 4}) {
  slip s;
  s.type = type;
  s.stake = money{stake};
  s.legs = std::move(legs);
  s.each_way = each_way;
  if (each_way)
    for (auto& l : s.legs)
      l.place_fraction = fraction;
  REQUIRE_FALSE(check_slip(s));
  return s;
}

int64_t paid(const slip& s) { return payout_of(s).total.minor; }

std::map<int, int> sizes(const std::vector<slip_line>& lines) {
  std::map<int, int> count;
  for (auto line : lines)
    ++count[std::popcount(line)];
  return count;
}

} // namespace

TEST_CASE("the worked cases of the contract pay exactly, to the cent") {
  SUBCASE("a 10.00 accumulator on 2.00, 3.00 and 1.50, all winning, pays 90.00") {
    auto s = make(slip_type::accumulator, 1000, {leg(200), leg(300), leg(150)});
    CHECK(paid(s) == 9000);
    CHECK(total_stake(s).minor == 1000);
  }
  SUBCASE("with the 3.00 leg void it pays 30.00") {
    auto s = make(slip_type::accumulator, 1000,
                  {leg(200), leg(300, leg_result::void_), leg(150)});
    CHECK(paid(s) == 3000);
  }
  SUBCASE("a 1.00 Lucky 15 on 2.00, 3.00, 4.00 and 5.00, all winning, pays 359.00") {
    std::vector<slip_leg> legs{leg(200), leg(300), leg(400), leg(500)};
    auto lucky15 = make(slip_type::lucky15, 100, legs);
    CHECK(bets_of(lucky15) == 15);
    CHECK(total_stake(lucky15).minor == 1500);
    CHECK(paid(lucky15) == 35900);
    // Its parts: the 4 singles 14.00, the Yankee's 6 doubles 71.00,
    // 4 trebles 154.00 and the four-fold 120.00.
    int64_t singles = 0;
    for (auto& l : legs)
      singles += paid(make(slip_type::single, 100, {l}));
    CHECK(singles == 1400);
    int64_t doubles = 0;
    int64_t trebles = 0;
    for (auto line : lines_of(slip_type::yankee, 4)) {
      std::vector<slip_leg> part;
      for (size_t i = 0; i < 4; ++i)
        if (line & (1u << i))
          part.push_back(legs[i]);
      auto amount = paid(make(slip_type::accumulator, 100, part));
      if (part.size() == 2)
        doubles += amount;
      if (part.size() == 3)
        trebles += amount;
    }
    CHECK(doubles == 7100);
    CHECK(trebles == 15400);
    CHECK(paid(make(slip_type::accumulator, 100, legs)) == 12000);
    CHECK(paid(make(slip_type::yankee, 100, legs)) == 35900 - 1400);
  }
  SUBCASE("10.00 each-way at 11.00, terms 1/4, second: the place half pays 35.00") {
    auto s = make(slip_type::single, 1000, {leg(1100, leg_result::placed)}, true, {1, 4});
    CHECK(total_stake(s).minor == 2000);
    auto pay = payout_of(s);
    CHECK(pay.win.minor == 0);
    CHECK(pay.place.minor == 3500);
    CHECK(pay.total.minor == 3500);
  }
  SUBCASE("10.00 win at 6.00 in a dead heat for first between two pays 30.00") {
    auto s = make(slip_type::single, 1000, {leg(600, leg_result::won, {1, 2})});
    CHECK(paid(s) == 3000);
  }
  SUBCASE("10.00 win at 5.00 with a Rule 4 deduction of 25p pays 40.00") {
    auto s = make(slip_type::single, 1000, {leg(500, leg_result::won, {}, 25)});
    CHECK(paid(s) == 4000);
  }
}

TEST_CASE("every slip type has the lines of the contract") {
  struct row {
    slip_type type;
    size_t legs;
    size_t lines;
    std::map<int, int> by_size;
  };
  std::vector<row> table{
    {slip_type::single, 1, 1, {{1, 1}}},
    {slip_type::accumulator, 2, 1, {{2, 1}}},
    {slip_type::accumulator, 20, 1, {{20, 1}}},
    {slip_type::trixie, 3, 4, {{2, 3}, {3, 1}}},
    {slip_type::patent, 3, 7, {{1, 3}, {2, 3}, {3, 1}}},
    {slip_type::yankee, 4, 11, {{2, 6}, {3, 4}, {4, 1}}},
    {slip_type::lucky15, 4, 15, {{1, 4}, {2, 6}, {3, 4}, {4, 1}}},
    {slip_type::canadian, 5, 26, {{2, 10}, {3, 10}, {4, 5}, {5, 1}}},
    {slip_type::lucky31, 5, 31, {{1, 5}, {2, 10}, {3, 10}, {4, 5}, {5, 1}}},
    {slip_type::heinz, 6, 57, {{2, 15}, {3, 20}, {4, 15}, {5, 6}, {6, 1}}},
    {slip_type::lucky63, 6, 63, {{1, 6}, {2, 15}, {3, 20}, {4, 15}, {5, 6}, {6, 1}}},
    {slip_type::super_heinz, 7, 120, {{2, 21}, {3, 35}, {4, 35}, {5, 21}, {6, 7}, {7, 1}}},
    {slip_type::goliath, 8, 247,
     {{2, 28}, {3, 56}, {4, 70}, {5, 56}, {6, 28}, {7, 8}, {8, 1}}},
  };
  for (auto& r : table) {
    CAPTURE(to_string(r.type));
    CAPTURE(r.legs);
    auto lines = lines_of(r.type, r.legs);
    CHECK(lines.size() == r.lines);
    CHECK(line_count(r.type, r.legs) == r.lines);
    CHECK(sizes(lines) == r.by_size);
    CHECK(std::set<slip_line>(lines.begin(), lines.end()).size() == lines.size());
    CHECK(parse_slip_type(to_string(r.type)) == r.type);
    auto range = legs_of(r.type);
    CHECK(line_count(r.type, range.max + 1) == 0);
    CHECK(line_count(r.type, range.min - 1) == 0);
  }
  CHECK(line_count(slip_type::goliath, 8) == slip_lines_max);
  CHECK(legs_of(slip_type::accumulator).max == slip_legs_max);
  CHECK_FALSE(parse_slip_type("lucky 15"));
  CHECK_FALSE(parse_slip_type("Yankee"));
  CHECK_FALSE(parse_slip_type(""));
}

TEST_CASE("a line pays stake x its legs' factors, rounded down once at its end") {
  // A patent of one minor unit at 1.55: each single 1.55 pays 1, each
  // double 2.4025 pays 2, the treble 3.723875 pays 3. Rounding the sum
  // instead would pay 15.
  auto s = make(slip_type::patent, 1, {leg(155), leg(155), leg(155)});
  CHECK(paid(s) == 3 * 1 + 3 * 2 + 3);
  // An accumulator rounds once, not leg by leg: 0.01 at 1.55 three times
  // is 0.03723875, 3 minor units.
  CHECK(paid(make(slip_type::accumulator, 1, {leg(155), leg(155), leg(155)})) == 3);
  CHECK(paid(make(slip_type::single, 3, {leg(133)})) == 3); // 3.99 rounds down
}

TEST_CASE("void legs count at 1.00 and a line of void legs returns its stake") {
  auto all_void = [](slip_type t, size_t n) {
    std::vector<slip_leg> legs(n, leg(250, leg_result::void_));
    return make(t, 100, legs);
  };
  CHECK(paid(all_void(slip_type::single, 1)) == 100);
  CHECK(paid(all_void(slip_type::accumulator, 5)) == 100);
  CHECK(paid(all_void(slip_type::lucky15, 4)) == 1500);
  CHECK(paid(all_void(slip_type::goliath, 8)) == 24700);
  // A Trixie with one void leg: its doubles with the void leg are singles,
  // the treble a double. 1.00 on 2.00, 3.00, void:
  // 2x3 + 2 + 3 + 2x3 = 6 + 2 + 3 + 6 = 17.00
  auto trixie = make(slip_type::trixie, 100, {leg(200), leg(300), leg(400, leg_result::void_)});
  CHECK(paid(trixie) == 1700);
}

TEST_CASE("a losing leg settles an accumulator at once, not a system bet") {
  auto acc = make(slip_type::accumulator, 1000,
                  {leg(200, leg_result::lost), leg(300, leg_result::open), leg(150)});
  CHECK(settled(acc));
  CHECK(paid(acc) == 0);
  auto yankee = make(slip_type::yankee, 100,
                     {leg(200, leg_result::lost), leg(300, leg_result::open), leg(400),
                      leg(500)});
  CHECK_FALSE(settled(yankee));
  // Once two legs of a Trixie lose, every line has a loser.
  auto trixie = make(slip_type::trixie, 100,
                     {leg(200, leg_result::lost), leg(300, leg_result::lost),
                      leg(400, leg_result::open)});
  CHECK(settled(trixie));
  CHECK(paid(trixie) == 0);
  // A Patent's single on the open leg can still pay.
  auto patent = make(slip_type::patent, 100,
                     {leg(200, leg_result::lost), leg(300, leg_result::lost),
                      leg(400, leg_result::open)});
  CHECK_FALSE(settled(patent));
  CHECK(settled(make(slip_type::single, 100, {leg(200, leg_result::void_)})));
  // Each-way: a placed leg ends the win half but not the place half.
  auto ew = make(slip_type::accumulator, 100,
                 {leg(500, leg_result::placed), leg(300, leg_result::open)}, true);
  CHECK_FALSE(settled(ew));
  auto lost_ew = make(slip_type::accumulator, 100,
                      {leg(500, leg_result::lost), leg(300, leg_result::open)}, true);
  CHECK(settled(lost_ew));
}

TEST_CASE("each-way pays a win half at the price and a place half at the place terms") {
  SUBCASE("a winner pays both halves: 110.00 and 35.00") {
    auto s = make(slip_type::single, 1000, {leg(1100)}, true, {1, 4});
    auto pay = payout_of(s);
    CHECK(pay.win.minor == 11000);
    CHECK(pay.place.minor == 3500);
    CHECK(pay.total.minor == 14500);
  }
  SUBCASE("a dead heat for first halves the win half only") {
    auto s = make(slip_type::single, 1000, {leg(1100, leg_result::won, {1, 2})}, true, {1, 4});
    CHECK(payout_of(s).win.minor == 5500);
    CHECK(payout_of(s).place.minor == 3500);
  }
  SUBCASE("a dead heat for the last place halves the place half") {
    auto s = make(slip_type::single, 1000, {leg(1100, leg_result::placed, {1, 2})}, true,
                  {1, 4});
    CHECK(payout_of(s).place.minor == 1750);
  }
  SUBCASE("Rule 4 reduces the place half's winnings too") {
    // place winnings 25.00 less 20% = 20.00: 30.00 back
    auto s = make(slip_type::single, 1000, {leg(1100, leg_result::placed, {}, 20)}, true,
                  {1, 4});
    CHECK(payout_of(s).place.minor == 3000);
  }
  SUBCASE("an each-way double: the place half multiplies each leg's place price") {
    // 11.00 at its race's 1/4 places at 3.50, 6.00 at its race's 1/5 at
    // 2.00. The win half is lost: the first leg only placed.
    auto s = make(slip_type::accumulator, 1000,
                  {leg(1100, leg_result::placed), leg(600, leg_result::won)}, true, {1, 4});
    s.legs[1].place_fraction = ratio{1, 5};
    CHECK(payout_of(s).win.minor == 0);
    CHECK(payout_of(s).place.minor == 7000); // 10.00 x 3.50 x 2.00
  }
  SUBCASE("a void leg refunds both halves") {
    auto s = make(slip_type::single, 1000, {leg(1100, leg_result::void_)}, true, {1, 4});
    CHECK(paid(s) == 2000);
  }
  CHECK(place_price(p(1100), {1, 4}) == p(350));
  CHECK(place_price(p(600), {1, 5}) == p(200));
  CHECK(place_price(p(333), {1, 4}) == p(158)); // 1.5825 shown rounded down
}

TEST_CASE("Rule 4 applies to winnings, never the stake") {
  CHECK(paid(make(slip_type::single, 1000, {leg(500, leg_result::won, {}, 90)})) == 1400);
  // 10.00 at 1.01 wins 0.10, a tenth of it kept: 0.01.
  CHECK(paid(make(slip_type::single, 1000, {leg(101, leg_result::won, {}, 90)})) == 1001);
  // In an accumulator, a leg's deduction applies to what that leg wins.
  auto s = make(slip_type::accumulator, 1000,
                {leg(500, leg_result::won, {}, 25), leg(300, leg_result::won)});
  CHECK(paid(s) == 12000); // 10.00 x 4.00 x 3.00
  // A dead heat and a deduction together: stake halved, then its winnings
  // reduced. 10.00 at 6.00, 1/2, 20p: 5.00 + 25.00 x 0.8 = 25.00.
  CHECK(paid(make(slip_type::single, 1000, {leg(600, leg_result::won, {1, 2}, 20)})) == 2500);
}

TEST_CASE("a slip's payout is capped at its maximum") {
  auto s = make(slip_type::accumulator, 1000, {leg(1000), leg(1000), leg(1000)});
  CHECK(paid(s) == 1'000'000);
  CHECK(payout_of(s, money{500'000}).total.minor == 500'000);
  CHECK(potential_payout(s, money{500'000}).minor == 500'000);
  // 20 legs at 1000.00: the exact product does not fit an int64; the
  // payout is cut at the ceiling, not wrapped.
  std::vector<slip_leg> legs(20, leg(100'000));
  auto huge = make(slip_type::accumulator, 1, legs);
  CHECK(paid(huge) > 0);
  CHECK(payout_of(huge, money{1'000'000'000}).total.minor == 1'000'000'000);
}

TEST_CASE("potential payouts and the liability of each leg") {
  std::vector<slip_leg> open{leg(200, leg_result::open), leg(300, leg_result::open),
                             leg(400, leg_result::open), leg(500, leg_result::open)};
  auto lucky15 = make(slip_type::lucky15, 100, open);
  CHECK(potential_payout(lucky15).minor == 35900);
  CHECK(paid(lucky15) == 0);
  // Lines with the 2.00 leg: the single wins 1.00, the doubles 5+7+9, the
  // trebles 23+29+39, the four-fold 119: 232.00.
  CHECK(leg_liability(lucky15, 0).minor == 23200);
  auto single = make(slip_type::single, 1000, {leg(600, leg_result::open)});
  CHECK(leg_liability(single, 0) == liability(money{1000}, p(600)));
  auto acc = make(slip_type::accumulator, 1000,
                  {leg(200, leg_result::open), leg(300, leg_result::open),
                   leg(150, leg_result::open)});
  for (size_t i = 0; i < 3; ++i)
    CHECK(leg_liability(acc, i).minor == 8000);
  // Rounded up: 0.01 at 1.55 wins 0.0055.
  CHECK(leg_liability(make(slip_type::single, 1, {leg(155, leg_result::open)}), 0).minor == 1);
  // Each-way counts both halves: 10.00 at 11.00, 1/4: 100.00 + 25.00.
  auto ew = make(slip_type::single, 1000, {leg(1100, leg_result::open)}, true, {1, 4});
  CHECK(leg_liability(ew, 0).minor == 12500);
  CHECK(potential_payout(ew).minor == 14500);
}

TEST_CASE("a cash-out is worth the price taken over the price now, less the margin") {
  auto margin = *parse_cashout_margin("0.05");
  auto single = make(slip_type::single, 1000, {leg(300, leg_result::open)});
  std::vector<price> now{p(200)};
  CHECK(cashout_value(single, now, margin).minor == 1425); // 10 x 3/2 x 0.95
  now = {p(300)};
  CHECK(cashout_value(single, now, cashout_margin{0, 1}).minor == 1000);
  // A settled winning leg counts at its payout, an open one at taken/now.
  auto acc = make(slip_type::accumulator, 1000,
                  {leg(200, leg_result::won), leg(300, leg_result::open)});
  now = {p(200), p(150)};
  CHECK(cashout_value(acc, now, margin).minor == 3800); // 10 x 2 x 3/1.5 x 0.95
  auto lost = make(slip_type::accumulator, 1000,
                   {leg(200, leg_result::lost), leg(300, leg_result::open)});
  CHECK(cashout_value(lost, now, margin).minor == 0);
  auto voided = make(slip_type::accumulator, 1000,
                     {leg(200, leg_result::void_), leg(300, leg_result::open)});
  CHECK(cashout_value(voided, now, margin).minor == 1900); // 10 x 1 x 2 x 0.95
  // Each-way: the place half at the place prices, 3.50 taken, 2.25 now.
  auto ew = make(slip_type::single, 1000, {leg(1100, leg_result::open)}, true, {1, 4});
  now = {p(600)};
  // win 10 x 11/6, place 10 x 3.5/2.25, times 0.95, rounded down once
  // (18.3333 + 15.5555) x 0.95 = 32.1944...
  CHECK(cashout_value(ew, now, margin).minor == 3219);
}

TEST_CASE("ratios, margins and each-way terms are read strictly") {
  CHECK(parse_ratio("1/4") == ratio{1, 4});
  CHECK(parse_ratio("1/2") == ratio{1, 2});
  CHECK(parse_ratio("2/3") == ratio{2, 3});
  CHECK(parse_ratio("1") == ratio{1, 1});
  CHECK(parse_ratio("1/1") == ratio{1, 1});
  for (auto bad : {"", "0/4", "5/4", "1/0", "1/", "/4", "-1/4", "1/4 ", "0.25", "1/10000",
                   "a/b", "2"})
    CHECK_MESSAGE(!parse_ratio(bad), bad);
  CHECK(to_string(ratio{1, 4}) == "1/4");
  CHECK(to_string(ratio{3, 3}) == "1");
  auto m = parse_cashout_margin("0.05");
  REQUIRE(m);
  CHECK(m->n * 100 == 5 * m->d);
  CHECK(parse_cashout_margin("0"));
  CHECK(parse_cashout_margin("0.1234"));
  for (auto bad : {"", "1", "1.0", "0.", "0.12345", "-0.05", ".05", "0.05x", "5%"})
    CHECK_MESSAGE(!parse_cashout_margin(bad), bad);
  CHECK(valid(each_way_terms{3, {1, 4}}));
  CHECK_FALSE(valid(each_way_terms{0, {1, 4}}));
  CHECK_FALSE(valid(each_way_terms{11, {1, 4}}));
  CHECK_FALSE(valid(each_way_terms{3, {5, 4}}));
  CHECK(parse_leg_result("void") == leg_result::void_);
  CHECK(parse_leg_result("placed") == leg_result::placed);
  CHECK_FALSE(parse_leg_result("Won"));
}

TEST_CASE("a malformed slip is refused naming the field") {
  auto bad = [](slip s) {
    auto r = check_slip(s);
    REQUIRE(r);
    return r->field;
  };
  slip s;
  s.type = slip_type::trixie;
  s.stake = money{100};
  s.legs = {leg(200), leg(300)};
  CHECK(bad(s) == "legs");
  s.legs.push_back(leg(400));
  CHECK_FALSE(check_slip(s));
  s.legs.push_back(leg(500));
  CHECK(bad(s) == "legs");
  s.type = slip_type::accumulator;
  s.legs.assign(21, leg(200));
  CHECK(bad(s) == "legs");
  s.legs.assign(1, leg(200));
  CHECK(bad(s) == "legs");
  s.legs = {leg(200), leg(100)};
  CHECK(bad(s) == "legs");
  s.legs = {leg(200), leg(300)};
  s.stake = money{0};
  CHECK(bad(s) == "stake");
  // 247 lines each-way: the total stake must stay within 10^12.
  s.type = slip_type::goliath;
  s.legs.assign(8, leg(200));
  s.stake = money{amount_max_minor / 247};
  CHECK_FALSE(check_slip(s));
  s.each_way = true;
  for (auto& l : s.legs)
    l.place_fraction = ratio{1, 4};
  CHECK(bad(s) == "stake");
  s.stake = money{100};
  s.legs[7].place_fraction.reset();
  CHECK(bad(s) == "each_way");
}

namespace {

slip_type any_type(size_t n) {
  std::vector<slip_type> types{slip_type::accumulator};
  for (auto t : {slip_type::single, slip_type::trixie, slip_type::patent, slip_type::yankee,
                 slip_type::lucky15, slip_type::canadian, slip_type::lucky31, slip_type::heinz,
                 slip_type::lucky63, slip_type::super_heinz, slip_type::goliath})
    if (legs_of(t).min == n)
      types.push_back(t);
  if (n == 1)
    types = {slip_type::single};
  return types[*rc::gen::inRange<size_t>(0, types.size())];
}

slip any_slip(bool settled_legs) {
  auto n = *rc::gen::inRange<size_t>(1, 9);
  slip s;
  s.type = any_type(n);
  s.stake = money{*rc::gen::inRange<int64_t>(1, 10'000)};
  s.each_way = *rc::gen::arbitrary<bool>();
  for (size_t i = 0; i < n; ++i) {
    slip_leg l;
    l.taken = price{*rc::gen::inRange<int32_t>(101, 2001)};
    if (s.each_way)
      l.place_fraction = *rc::gen::element(ratio{1, 4}, ratio{1, 5}, ratio{1, 3}, ratio{1, 1});
    l.result = settled_legs ? *rc::gen::element(leg_result::won, leg_result::placed,
                                                leg_result::lost, leg_result::void_)
                            : *rc::gen::element(leg_result::won, leg_result::placed,
                                                leg_result::lost, leg_result::void_,
                                                leg_result::open);
    if (*rc::gen::inRange(0, 4) == 0)
      l.dead_heat = *rc::gen::element(ratio{1, 2}, ratio{1, 3}, ratio{2, 3}, ratio{1, 4});
    if (*rc::gen::inRange(0, 3) == 0)
      l.rule4 = *rc::gen::inRange<int32_t>(1, rule4_max + 1);
    s.legs.push_back(l);
  }
  return s;
}

} // namespace

TEST_CASE("for random slips and results the payout equals a plain loop over the lines") {
  CHECK(rc::check("payout_of equals the reference", [] {
    auto s = any_slip(true);
    RC_ASSERT(!check_slip(s));
    RC_ASSERT(payout_of(s).total.minor == reference_payout(s));
    RC_ASSERT(settled(s));
  }));
}

TEST_CASE("for random slips a cash-out at unchanged prices is worth the open legs at 1.00, less the margin") {
  CHECK(rc::check("cash-out at the prices taken", [] {
    auto s = any_slip(false);
    std::vector<price> now;
    for (auto& l : s.legs)
      now.push_back(l.taken);
    // Price taken over price now is 1 for each open leg: the slip is worth
    // what it would pay were the open legs void. At margin 0 the cash-out
    // rounds once where the payout rounds each line: at least that, less
    // than a minor unit a line more.
    auto as_void = s;
    for (auto& l : as_void.legs)
      if (l.result == leg_result::open)
        l = slip_leg{l.taken, l.place_fraction, leg_result::void_, {}, 0};
    auto floor_per_line = payout_of(as_void).total.minor;
    auto full = cashout_value(s, now, cashout_margin{0, 1}).minor;
    RC_ASSERT(full >= floor_per_line);
    RC_ASSERT(full - floor_per_line < static_cast<int64_t>(bets_of(s)));
    // The margin keeps back its share, to the minor unit.
    auto kept = cashout_value(s, now, cashout_margin{5, 100}).minor;
    RC_ASSERT(kept <= full);
    RC_ASSERT(kept * 100 < (full + 1) * 95);
    RC_ASSERT((kept + 1) * 100 > full * 95);
    // Nothing pays more than its potential.
    RC_ASSERT(payout_of(s).total.minor <= potential_payout(s).minor);
  }));
}
