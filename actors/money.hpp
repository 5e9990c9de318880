#pragma once

// Money and prices, exact. Money is an integer count of minor units (cents);
// a price is decimal odds as an integer count of hundredths ("2.50" is 250).
// No floating point touches either, anywhere.

#include "wager/runtime/message_types.hpp"

#include <compare>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace wager {

// An amount in minor units. Signed, so that a difference or a house result
// can be negative; balances themselves are asserted non-negative.
struct money {
  int64_t minor = 0;

  constexpr auto operator<=>(const money&) const = default;
  constexpr money operator+(money other) const { return {minor + other.minor}; }
  constexpr money operator-(money other) const { return {minor - other.minor}; }
  constexpr money& operator+=(money other) { minor += other.minor; return *this; }
  constexpr money& operator-=(money other) { minor -= other.minor; return *this; }
};

// The API's bounds on one amount: 1 <= amount <= 10^12 minor units.
inline constexpr int64_t amount_min_minor = 1;
inline constexpr int64_t amount_max_minor = 1'000'000'000'000;

constexpr bool valid_amount(int64_t minor) {
  return minor >= amount_min_minor && minor <= amount_max_minor;
}

// Decimal odds in hundredths: 101 ("1.01") to 100000 ("1000.00").
struct price {
  int32_t hundredths = 0;

  constexpr auto operator<=>(const price&) const = default;
};

inline constexpr int32_t price_min_hundredths = 101;
inline constexpr int32_t price_max_hundredths = 100'000;

constexpr bool valid_price(price p) {
  return p.hundredths >= price_min_hundredths && p.hundredths <= price_max_hundredths;
}

// Parses "2.50", "2.5" or "2" (at most two decimals, no sign, no exponent,
// within the API's range). Anything else is nullopt.
std::optional<price> parse_price(std::string_view text);

// "2.50": always two decimals, the form the API sends.
std::string format_price(price p);

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, money& x) {
  return f(x.minor);
}

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, price& x) {
  return f(x.hundredths);
}

// stake x price, rounded down to a minor unit: what a winning bet pays back,
// stake included.
constexpr money potential_payout(money stake, price p) {
  return {stake.minor * p.hundredths / 100};
}

// stake x (price - 1), rounded up: what the house stands to lose on a bet.
// Rounded up so that the sum over bets never understates the exposure.
constexpr money liability(money stake, price p) {
  auto numerator = stake.minor * (p.hundredths - 100);
  return {(numerator + 99) / 100};
}

// The messages above that may cross nodes (runtime/message_types.hpp).
inline constexpr message_types money_messages{
  message_type<money>{"wager::money"},
  message_type<price>{"wager::price"},
};

} // namespace wager
