#pragma once

// Other ways to show a decimal price (shared/API.md, "Odds formats"): the
// fractional odds a UK customer reads ("6/4") and the American odds a US
// customer reads ("+150", "-200"). They are for display only: a bet is taken,
// and pays, at its decimal price, whatever form the client asked for.
//
// Fractional. Bookmakers quote the traditional fractions (10/11, 4/6, 6/4,
// 100/30 is written 10/3 here), and the decimal prices they show for them
// are those fractions rounded to two places (10/11 is 1.909..., shown as
// 1.91). So a price is shown as the fraction of fractional_ladder whose
// decimal value, 1 + n/d rounded half up to a hundredth, is the price; when
// several round to it, the nearest; when none does, the exact fraction of
// the price's winnings, reduced (2.37 is 137/100).
//
// American. A price of 2.00 or more is "+" and the winnings on a stake of
// 100 (2.50 is "+150", exact); a price under 2.00 is "-" and the stake that
// wins 100, rounded half up to a whole number (1.91 is "-110", 100/0.91 =
// 109.89).

#include "wager/actors/money.hpp"

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>

namespace wager {

enum class odds_format { decimal, fractional, american };

// "decimal", "fractional" or "american"; nullopt for anything else.
std::optional<odds_format> parse_odds_format(std::string_view text);

// One traditional fraction: the winnings n on a stake of d.
struct odds_fraction {
  int32_t n = 0;
  int32_t d = 1;
};

// The traditional fractions, shortest odds first.
std::span<const odds_fraction> fractional_ladder() noexcept;

// The fraction shown for `p`; REQUIRES: valid_price(p).
odds_fraction fractional_of(price p);

// "n/d", e.g. "6/4" for 2.50, "10/11" for 1.91, "137/100" for 2.37.
std::string fractional_odds(price p);

// "+150" for 2.50, "+100" for 2.00, "-110" for 1.91, "-10000" for 1.01.
std::string american_odds(price p);

// 1 + n/d in hundredths, rounded half up: the decimal price a fraction is
// shown as.
int64_t hundredths_of(odds_fraction f);

} // namespace wager
