#include "wager/actors/slip.hpp"

#include "wager/runtime/assert.hpp"

#include <boost/multiprecision/cpp_int.hpp>

#include <algorithm>
#include <array>
#include <bit>
#include <charconv>
#include <limits>

namespace wager {

namespace {

using big = boost::multiprecision::cpp_int;
// Sums over lines: kept in lowest terms, so the denominator stays a divisor
// of the legs' denominators' product, however many lines are added.
using exact = boost::multiprecision::cpp_rational;

struct type_name {
  slip_type type;
  std::string_view name;
};

constexpr std::array<type_name, 12> type_names{{
  {slip_type::single, "single"},
  {slip_type::accumulator, "accumulator"},
  {slip_type::trixie, "trixie"},
  {slip_type::patent, "patent"},
  {slip_type::yankee, "yankee"},
  {slip_type::lucky15, "lucky15"},
  {slip_type::canadian, "canadian"},
  {slip_type::lucky31, "lucky31"},
  {slip_type::heinz, "heinz"},
  {slip_type::lucky63, "lucky63"},
  {slip_type::super_heinz, "super_heinz"},
  {slip_type::goliath, "goliath"},
}};

// A payout beyond this many minor units (10^13 in major units) is cut here,
// so sums of lines stay far inside an int64. A slip's maximum payout, set by
// its markets and the node, is always far below.
constexpr int64_t payout_ceiling_minor = 1'000'000'000'000'000;

int64_t to_minor(const big& amount) {
  if (amount <= 0)
    return 0;
  if (amount >= payout_ceiling_minor)
    return payout_ceiling_minor;
  return amount.convert_to<int64_t>();
}

// A leg's factor on one half of the slip, as num/den.
struct factor {
  big num;
  big den;
};

// How a leg counts on a line of one half. `assume_won`: an open leg counts
// as a plain winner (for potential payouts and liabilities); otherwise as 0.
factor leg_factor(const slip_leg& leg, bool place_half, bool assume_won) {
  auto result = leg.result;
  auto dead_heat = leg.dead_heat;
  auto rule4 = leg.rule4;
  if (result == leg_result::open) {
    if (!assume_won)
      return {0, 1};
    result = leg_result::won;
    dead_heat = ratio{};
    rule4 = 0;
  }
  switch (result) {
    case leg_result::lost: return {0, 1};
    case leg_result::void_: return {1, 1};
    case leg_result::placed:
      if (!place_half)
        return {0, 1};
      break;
    case leg_result::won:
      if (place_half)
        dead_heat = ratio{}; // a winner's place half pays in full
      break;
    case leg_result::open: break;
  }
  // winnings per hundredth of stake: (price - 1) in hundredths, times the
  // place fraction, times (100 - rule4) / 100.
  big winnings = big(leg.taken.hundredths - 100) * (100 - rule4);
  big scale = 100 * 100;
  if (place_half) {
    auto f = leg.place_fraction.value_or(ratio{});
    winnings *= f.n;
    scale *= f.d;
  }
  return {(scale + winnings) * dead_heat.n, scale * dead_heat.d};
}

// stake x the product of the legs' factors over a line, exact.
factor line_value(const slip& s, slip_line line, bool place_half, bool assume_won) {
  factor v{big(s.stake.minor), 1};
  for (std::size_t i = 0; i < s.legs.size(); ++i) {
    if ((line & (slip_line{1} << i)) == 0)
      continue;
    auto f = leg_factor(s.legs[i], place_half, assume_won);
    if (f.num == 0)
      return {0, 1};
    v.num *= f.num;
    v.den *= f.den;
  }
  return v;
}

// The halves a line is paid on: the win half, and the place half when
// each-way (no allocation: this runs for every line).
std::span<const bool> halves(const slip& s) {
  static constexpr bool both[] = {false, true};
  return {both, s.each_way ? std::size_t{2} : std::size_t{1}};
}

slip_payout pay(const slip& s, bool assume_won, std::optional<money> max_payout) {
  big sums[2] = {0, 0};
  for (auto line : lines_of(s.type, s.legs.size()))
    for (bool place_half : halves(s)) {
      auto v = line_value(s, line, place_half, assume_won);
      sums[place_half ? 1 : 0] += v.num / v.den; // rounded down, line by line
    }
  slip_payout p{money{to_minor(sums[0])}, money{to_minor(sums[1])}, {}};
  p.total = p.win + p.place;
  if (max_payout && p.total > *max_payout)
    p.total = *max_payout;
  return p;
}

bool digits_only(std::string_view text) {
  return !text.empty()
         && std::all_of(text.begin(), text.end(), [](char c) { return c >= '0' && c <= '9'; });
}

std::optional<int32_t> small_number(std::string_view text) {
  if (!digits_only(text) || text.size() > 4)
    return std::nullopt;
  int32_t v = 0;
  std::from_chars(text.data(), text.data() + text.size(), v);
  return v;
}

} // namespace

std::string_view to_string(slip_type t) {
  for (auto& [type, name] : type_names)
    if (type == t)
      return name;
  return "single";
}

std::optional<slip_type> parse_slip_type(std::string_view text) {
  for (auto& [type, name] : type_names)
    if (name == text)
      return type;
  return std::nullopt;
}

leg_range legs_of(slip_type t) {
  switch (t) {
    case slip_type::single: return {1, 1};
    case slip_type::accumulator: return {2, slip_legs_max};
    case slip_type::trixie:
    case slip_type::patent: return {3, 3};
    case slip_type::yankee:
    case slip_type::lucky15: return {4, 4};
    case slip_type::canadian:
    case slip_type::lucky31: return {5, 5};
    case slip_type::heinz:
    case slip_type::lucky63: return {6, 6};
    case slip_type::super_heinz: return {7, 7};
    case slip_type::goliath: return {8, 8};
  }
  return {1, 1};
}

std::size_t smallest_line(slip_type t, std::size_t legs) {
  switch (t) {
    case slip_type::single:
    case slip_type::patent:
    case slip_type::lucky15:
    case slip_type::lucky31:
    case slip_type::lucky63: return 1;
    case slip_type::accumulator: return legs;
    default: return 2;
  }
}

std::vector<slip_line> lines_of(slip_type t, std::size_t legs) {
  auto range = legs_of(t);
  WAGER_ASSERT(legs >= range.min && legs <= range.max, "a slip's legs out of its type's range");
  std::vector<slip_line> lines;
  slip_line all = legs >= 32 ? ~slip_line{0} : (slip_line{1} << legs) - 1;
  for (auto k = smallest_line(t, legs); k <= legs; ++k) {
    // The k-subsets of `legs` bits in increasing order (Gosper's hack).
    slip_line line = (slip_line{1} << k) - 1;
    while (line <= all && line != 0) {
      lines.push_back(line);
      slip_line low = line & (~line + 1);
      slip_line ripple = line + low;
      if (ripple == 0 || ripple > all)
        break;
      line = (((ripple ^ line) >> 2) / low) | ripple;
    }
  }
  return lines;
}

std::size_t line_count(slip_type t, std::size_t legs) {
  auto range = legs_of(t);
  if (legs < range.min || legs > range.max)
    return 0;
  std::size_t count = 0;
  for (auto k = smallest_line(t, legs); k <= legs; ++k) {
    std::size_t c = 1; // C(legs, k)
    for (std::size_t i = 1; i <= k; ++i)
      c = c * (legs - k + i) / i;
    count += c;
  }
  return count;
}

std::optional<ratio> parse_ratio(std::string_view text) {
  auto slash = text.find('/');
  auto n = small_number(text.substr(0, slash));
  auto d = slash == std::string_view::npos ? std::optional<int32_t>{1}
                                            : small_number(text.substr(slash + 1));
  if (!n || !d || *n < 1 || *d < *n || *d > 1000)
    return std::nullopt;
  return ratio{*n, *d};
}

std::string to_string(ratio r) {
  if (r.n == r.d)
    return "1";
  return std::to_string(r.n) + "/" + std::to_string(r.d);
}

bool valid(const each_way_terms& t) {
  return t.places >= 1 && t.places <= each_way_places_max && t.fraction.n >= 1
         && t.fraction.d >= t.fraction.n && t.fraction.d <= 1000;
}

price place_price(price p, ratio fraction) {
  int64_t winnings = int64_t{p.hundredths - 100} * fraction.n / fraction.d;
  return price{static_cast<int32_t>(100 + winnings)};
}

std::string_view to_string(leg_result r) {
  switch (r) {
    case leg_result::open: return "open";
    case leg_result::won: return "won";
    case leg_result::placed: return "placed";
    case leg_result::lost: return "lost";
    case leg_result::void_: return "void";
  }
  return "open";
}

std::optional<leg_result> parse_leg_result(std::string_view text) {
  for (auto r : {leg_result::open, leg_result::won, leg_result::placed, leg_result::lost,
                 leg_result::void_})
    if (to_string(r) == text)
      return r;
  return std::nullopt;
}

std::optional<slip_refusal> check_slip(const slip& s) {
  auto range = legs_of(s.type);
  if (s.legs.size() < range.min || s.legs.size() > range.max) {
    auto name = std::string{to_string(s.type)};
    auto count = range.min == range.max
                   ? "exactly " + std::to_string(range.min)
                   : std::to_string(range.min) + " to " + std::to_string(range.max);
    return slip_refusal{"legs", "a " + name + " takes " + count + " legs, not "
                                  + std::to_string(s.legs.size())};
  }
  for (auto& leg : s.legs)
    if (!valid_price(leg.taken))
      return slip_refusal{"legs", "prices run from 1.01 to 1000.00"};
  if (!valid_amount(s.stake.minor))
    return slip_refusal{"stake", "stake must be 1 to 10^12 minor units"};
  auto bets = static_cast<int64_t>(bets_of(s));
  if (s.stake.minor > amount_max_minor / bets)
    return slip_refusal{"stake", "stake x lines must be at most 10^12 minor units"};
  for (auto& leg : s.legs) {
    if (s.each_way && !leg.place_fraction)
      return slip_refusal{"each_way", "each-way needs each leg's market to have each-way terms"};
    if (leg.place_fraction
        && (leg.place_fraction->n < 1 || leg.place_fraction->d < leg.place_fraction->n))
      return slip_refusal{"each_way", "an each-way fraction is in (0, 1]"};
  }
  return std::nullopt;
}

std::size_t bets_of(const slip& s) {
  return line_count(s.type, s.legs.size()) * (s.each_way ? 2 : 1);
}

money total_stake(const slip& s) {
  return money{s.stake.minor * static_cast<int64_t>(bets_of(s))};
}

slip_payout payout_of(const slip& s, std::optional<money> max_payout) {
  return pay(s, false, max_payout);
}

money potential_payout(const slip& s, std::optional<money> max_payout) {
  return pay(s, true, max_payout).total;
}

bool settled(const slip& s) {
  if (std::none_of(s.legs.begin(), s.legs.end(),
                   [](const slip_leg& l) { return l.result == leg_result::open; }))
    return true;
  for (auto line : lines_of(s.type, s.legs.size()))
    for (bool place_half : halves(s))
      if (line_value(s, line, place_half, true).num != 0)
        return false;
  return true;
}

money leg_liability(const slip& s, std::size_t leg) {
  WAGER_ASSERT(leg < s.legs.size(), "no such leg");
  exact sum = 0;
  for (auto line : lines_of(s.type, s.legs.size())) {
    if ((line & (slip_line{1} << leg)) == 0)
      continue;
    for (bool place_half : halves(s)) {
      auto v = line_value(s, line, place_half, true);
      big winnings = v.num - v.den * s.stake.minor;
      if (winnings > 0)
        sum += exact(winnings, v.den);
    }
  }
  big num = numerator(sum);
  big den = denominator(sum);
  return money{to_minor((num + den - 1) / den)};
}

std::optional<cashout_margin> parse_cashout_margin(std::string_view text) {
  if (text == "0")
    return cashout_margin{0, 1};
  if (text.size() < 3 || text.substr(0, 2) != "0.")
    return std::nullopt;
  auto decimals = text.substr(2);
  if (!digits_only(decimals) || decimals.size() > 4)
    return std::nullopt;
  int32_t n = 0;
  std::from_chars(decimals.data(), decimals.data() + decimals.size(), n);
  int32_t d = 1;
  for (std::size_t i = 0; i < decimals.size(); ++i)
    d *= 10;
  return cashout_margin{n, d};
}

money cashout_value(const slip& s, std::span<const price> now, cashout_margin margin) {
  WAGER_ASSERT(now.size() >= s.legs.size(), "a current price for every leg");
  WAGER_ASSERT(margin.d > 0 && margin.n >= 0 && margin.n < margin.d, "a margin in [0, 1)");
  exact sum = 0;
  for (auto line : lines_of(s.type, s.legs.size()))
    for (bool place_half : halves(s)) {
      factor v{big(s.stake.minor), 1};
      for (std::size_t i = 0; i < s.legs.size() && v.num != 0; ++i) {
        if ((line & (slip_line{1} << i)) == 0)
          continue;
        auto& leg = s.legs[i];
        if (leg.result != leg_result::open) {
          auto f = leg_factor(leg, place_half, false);
          v.num *= f.num;
          v.den *= f.den;
          continue;
        }
        // price taken / price now, on the place half at the place prices
        slip_leg taken;
        taken.taken = leg.taken;
        taken.place_fraction = leg.place_fraction;
        slip_leg current = taken;
        current.taken = now[i];
        auto t = leg_factor(taken, place_half, true);
        auto c = leg_factor(current, place_half, true);
        v.num *= t.num * c.den;
        v.den *= t.den * c.num;
      }
      if (v.num != 0)
        sum += exact(v.num, v.den);
    }
  sum *= exact(margin.d - margin.n, margin.d);
  return money{to_minor(numerator(sum) / denominator(sum))};
}

} // namespace wager
