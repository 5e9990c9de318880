#include "wager/actors/ids.hpp"
#include "wager/actors/market_status.hpp"
#include "wager/actors/money.hpp"

#include <doctest/doctest.h>

using namespace wager;

TEST_CASE("prices parse exactly with at most two decimals") {
  CHECK(parse_price("2.50")->hundredths == 250);
  CHECK(parse_price("2.5")->hundredths == 250);
  CHECK(parse_price("2")->hundredths == 200);
  CHECK(parse_price("1.01")->hundredths == 101);
  CHECK(parse_price("1000.00")->hundredths == 100000);
  CHECK(parse_price("1000")->hundredths == 100000);
  CHECK(parse_price("9.99")->hundredths == 999);
}

TEST_CASE("prices outside the range or badly written are refused") {
  for (auto text : {"", "1.00", "1", "0.5", "1000.01", "1001", "2.505", "2.", ".5", "-2.50",
                    "+2.50", "2,50", "2.5e1", "02.50", "2.50 ", " 2.50", "abc", "1e3",
                    "99999999999999999999", "NaN", "inf"}) {
    CAPTURE(text);
    CHECK_FALSE(parse_price(text).has_value());
  }
}

TEST_CASE("prices format with two decimals and round-trip") {
  CHECK(format_price({250}) == "2.50");
  CHECK(format_price({101}) == "1.01");
  CHECK(format_price({100000}) == "1000.00");
  CHECK(format_price({905}) == "9.05");
  for (int32_t h = price_min_hundredths; h <= price_max_hundredths; h += 7) {
    auto p = parse_price(format_price({h}));
    REQUIRE(p);
    CHECK(p->hundredths == h);
  }
}

TEST_CASE("a winning bet pays stake times price rounded down to a minor unit") {
  CHECK(potential_payout({1000}, {250}).minor == 2500);
  CHECK(potential_payout({333}, {155}).minor == 516); // 516.15 -> 516
  CHECK(potential_payout({1}, {199}).minor == 1);     // 1.99 -> 1
  CHECK(potential_payout({amount_max_minor}, {100000}).minor == amount_max_minor * 1000);
}

TEST_CASE("liability is stake times price minus one rounded up") {
  CHECK(liability({1000}, {250}).minor == 1500);
  CHECK(liability({333}, {155}).minor == 184); // 183.15 -> 184
  CHECK(liability({1}, {101}).minor == 1);     // 0.01 -> 1
}

TEST_CASE("amounts are valid from one minor unit to ten to the twelfth") {
  CHECK_FALSE(valid_amount(0));
  CHECK(valid_amount(1));
  CHECK(valid_amount(amount_max_minor));
  CHECK_FALSE(valid_amount(amount_max_minor + 1));
  CHECK_FALSE(valid_amount(-5));
}

TEST_CASE("ids are 1 to 64 characters of the API's alphabet") {
  CHECK(valid_id("m-1001"));
  CHECK(valid_id("user_42.a:b"));
  CHECK(valid_id(std::string(64, 'a')));
  CHECK_FALSE(valid_id(std::string(65, 'a')));
  CHECK_FALSE(valid_id(""));
  CHECK_FALSE(valid_id("a b"));
  CHECK_FALSE(valid_id("a/b"));
  CHECK_FALSE(valid_id("é"));
}

TEST_CASE("the market lifecycle allows exactly its documented transitions") {
  using enum market_status;
  CHECK(transition_allowed(pending, open));
  CHECK(transition_allowed(open, suspended));
  CHECK(transition_allowed(suspended, open));
  CHECK(transition_allowed(open, closed));
  CHECK(transition_allowed(closed, settled));
  CHECK(transition_allowed(open, settled));
  CHECK(transition_allowed(pending, voided));
  CHECK_FALSE(transition_allowed(pending, settled));
  CHECK_FALSE(transition_allowed(closed, open));
  for (auto to : {pending, open, suspended, closed, settled, voided}) {
    CHECK_FALSE(transition_allowed(settled, to));
    CHECK_FALSE(transition_allowed(voided, to));
    CHECK_FALSE(transition_allowed(to, pending));
    CHECK_FALSE(transition_allowed(to, to));
  }
  for (auto s : {pending, open, suspended, closed, settled, voided})
    CHECK(parse_market_status(to_string(s)) == s);
  CHECK_FALSE(parse_market_status("opened").has_value());
}
