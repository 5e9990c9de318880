#include "wager/actors/odds.hpp"

#include "wager/runtime/assert.hpp"

#include <cstdlib>
#include <numeric>

namespace wager {

namespace {

// The fractions UK bookmakers quote, as listed on their price ladders.
constexpr odds_fraction ladder[] = {
  {1, 100}, {1, 66}, {1, 50}, {1, 40}, {1, 33}, {1, 25}, {1, 20}, {1, 16}, {1, 14},
  {1, 12},  {1, 11}, {1, 10}, {1, 9},  {1, 8},  {2, 15}, {1, 7},  {2, 13}, {1, 6},
  {2, 11},  {1, 5},  {2, 9},  {1, 4},  {2, 7},  {3, 10}, {1, 3},  {4, 11}, {2, 5},
  {4, 9},   {40, 85}, {1, 2}, {8, 15}, {4, 7},  {3, 5},  {8, 13}, {4, 6},  {7, 10},
  {8, 11},  {3, 4},  {4, 5},  {5, 6},  {10, 11}, {20, 21}, {1, 1}, {21, 20}, {11, 10},
  {6, 5},   {5, 4},  {13, 10}, {11, 8}, {7, 5},  {6, 4},  {8, 5},  {13, 8}, {17, 10},
  {7, 4},   {9, 5},  {15, 8}, {2, 1},  {85, 40}, {11, 5}, {9, 4},  {12, 5}, {5, 2},
  {13, 5},  {11, 4}, {3, 1},  {10, 3}, {7, 2},  {4, 1},  {9, 2},  {5, 1},  {11, 2},
  {6, 1},   {13, 2}, {7, 1},  {15, 2}, {8, 1},  {17, 2}, {9, 1},  {10, 1}, {11, 1},
  {12, 1},  {14, 1}, {16, 1}, {18, 1}, {20, 1}, {22, 1}, {25, 1}, {28, 1}, {33, 1},
  {40, 1},  {50, 1}, {66, 1}, {80, 1}, {100, 1}, {125, 1}, {150, 1}, {200, 1}, {250, 1},
  {300, 1}, {500, 1}, {999, 1},
};

} // namespace

std::optional<odds_format> parse_odds_format(std::string_view text) {
  if (text == "decimal")
    return odds_format::decimal;
  if (text == "fractional")
    return odds_format::fractional;
  if (text == "american")
    return odds_format::american;
  return std::nullopt;
}

std::span<const odds_fraction> fractional_ladder() noexcept {
  return ladder;
}

int64_t hundredths_of(odds_fraction f) {
  int64_t x = 100 * (int64_t{f.d} + f.n);
  return x / f.d + (2 * (x % f.d) >= f.d ? 1 : 0);
}

odds_fraction fractional_of(price p) {
  WAGER_ASSERT(valid_price(p), "a fraction for a valid price");
  int64_t h = p.hundredths;
  const odds_fraction* best = nullptr;
  // |h - 100 (d + n) / d|, kept as the fraction err / d to compare exactly.
  int64_t best_err = 0;
  for (auto& f : ladder) {
    if (hundredths_of(f) != h)
      continue;
    int64_t err = std::llabs(h * f.d - 100 * (int64_t{f.d} + f.n));
    if (!best || err * best->d < best_err * f.d) {
      best = &f;
      best_err = err;
    }
  }
  if (best)
    return *best;
  int64_t n = h - 100;
  int64_t g = std::gcd(n, int64_t{100});
  return {static_cast<int32_t>(n / g), static_cast<int32_t>(100 / g)};
}

std::string fractional_odds(price p) {
  auto f = fractional_of(p);
  return std::to_string(f.n) + "/" + std::to_string(f.d);
}

std::string american_odds(price p) {
  WAGER_ASSERT(valid_price(p), "American odds for a valid price");
  int64_t k = p.hundredths - 100; // winnings on a stake of 100
  if (k >= 100)
    return "+" + std::to_string(k);
  // 100 * 100 / k, half up.
  return "-" + std::to_string((2 * 10'000 + k) / (2 * k));
}

} // namespace wager
