#include "wager/actors/money.hpp"
#include "wager/actors/odds.hpp"

#include <doctest/doctest.h>

#include <cstdlib>
#include <numeric>
#include <string>

using namespace wager;

namespace {

std::string frac(const char* decimal) {
  return fractional_odds(*parse_price(decimal));
}

std::string us(const char* decimal) {
  return american_odds(*parse_price(decimal));
}

} // namespace

TEST_CASE("fractional odds: the traditional fraction a bookmaker quotes for the price") {
  CHECK(frac("2.00") == "1/1");
  CHECK(frac("2.50") == "6/4");
  CHECK(frac("3.00") == "2/1");
  CHECK(frac("1.50") == "1/2");
  CHECK(frac("1.91") == "10/11");
  CHECK(frac("1.67") == "4/6");
  CHECK(frac("1.33") == "1/3");
  CHECK(frac("4.33") == "10/3");
  CHECK(frac("1.62") == "8/13");
  CHECK(frac("2.38") == "11/8");
  CHECK(frac("2.63") == "13/8");
  CHECK(frac("2.88") == "15/8");
  CHECK(frac("1.01") == "1/100");
  CHECK(frac("1.02") == "1/50");   // exactly 1/50; 1/66 rounds to it too
  CHECK(frac("1.03") == "1/33");   // 1/33 is nearer than 1/40 (1.025)
  CHECK(frac("1.13") == "2/15");   // 2/15 (1.1333) is nearer than 1/8 (1.125)
  CHECK(frac("11.00") == "10/1");
  CHECK(frac("1000.00") == "999/1");
}

TEST_CASE("fractional odds: a price off the ladder is its exact winnings, reduced") {
  CHECK(frac("2.37") == "137/100");
  CHECK(frac("1.12") == "3/25");
  CHECK(frac("2.90") == "19/10");
  CHECK(frac("7.77") == "677/100");
  CHECK(frac("999.99") == "99899/100");
}

TEST_CASE("fractional odds: every price is shown as a fraction that rounds back to it") {
  for (int32_t h = price_min_hundredths; h <= price_max_hundredths; ++h) {
    auto f = fractional_of(price{h});
    CAPTURE(h);
    REQUIRE(f.n > 0);
    REQUIRE(f.d > 0);
    CHECK(hundredths_of(f) == h);
    // Off the ladder the fraction is exact and in lowest terms.
    bool on_ladder = false;
    for (auto& l : fractional_ladder())
      on_ladder |= l.n == f.n && l.d == f.d;
    if (!on_ladder) {
      CHECK(std::gcd(f.n, f.d) == 1);
      CHECK(int64_t{f.n} * 100 == int64_t{h - 100} * f.d);
    }
  }
}

TEST_CASE("the fractional ladder runs from the shortest odds to the longest, each within range") {
  auto ladder = fractional_ladder();
  REQUIRE(ladder.size() > 90);
  for (size_t i = 0; i < ladder.size(); ++i) {
    CAPTURE(i);
    CHECK(ladder[i].n > 0);
    CHECK(ladder[i].d > 0);
    CHECK(valid_price(price{static_cast<int32_t>(hundredths_of(ladder[i]))}));
    if (i > 0)
      CHECK(int64_t{ladder[i - 1].n} * ladder[i].d < int64_t{ladder[i].n} * ladder[i - 1].d);
  }
}

TEST_CASE("American odds: + the winnings on 100 from evens up, - the stake that wins 100 below") {
  CHECK(us("2.50") == "+150");
  CHECK(us("2.00") == "+100");
  CHECK(us("3.00") == "+200");
  CHECK(us("2.37") == "+137");
  CHECK(us("1000.00") == "+99900");
  CHECK(us("1.50") == "-200");
  CHECK(us("1.91") == "-110"); // 10000 / 91 = 109.89
  CHECK(us("1.33") == "-303"); // 303.03
  CHECK(us("1.80") == "-125");
  CHECK(us("1.01") == "-10000");
  CHECK(us("1.99") == "-101"); // 101.01
  CHECK(us("1.08") == "-1250");
  CHECK(us("1.03") == "-3333"); // 3333.33
  CHECK(us("1.06") == "-1667"); // 1666.67
}

TEST_CASE("American odds: every price under evens is the stake that wins 100, to the nearest unit") {
  for (int32_t h = price_min_hundredths; h < 200; ++h) {
    CAPTURE(h);
    auto text = american_odds(price{h});
    REQUIRE(text.size() > 1);
    REQUIRE(text[0] == '-');
    auto stake = std::atoll(text.c_str() + 1);
    // |stake * (h - 100) - 10000| <= (h - 100) / 2: stake is 10000 / (h - 100)
    // rounded to the nearest whole number.
    int64_t k = h - 100;
    CHECK(2 * std::llabs(stake * k - 10'000) <= k);
  }
}

TEST_CASE("odds formats parse by name only") {
  CHECK(parse_odds_format("decimal") == odds_format::decimal);
  CHECK(parse_odds_format("fractional") == odds_format::fractional);
  CHECK(parse_odds_format("american") == odds_format::american);
  for (auto text : {"", "Fractional", "us", "uk", "fractional ", "1"})
    CHECK_FALSE(parse_odds_format(text).has_value());
}
