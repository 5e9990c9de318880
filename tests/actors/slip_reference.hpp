#pragma once

// An independent reference for what a slip pays, shared by the slip suites:
// every subset of the legs that is a line of the slip's type, and the
// returns rolling on from leg to leg in exact rationals, as a bookmaker's
// settlement sheet computes them. It shares nothing with slip.cpp but the
// slip type.

#include "wager/actors/slip.hpp"

#include <boost/multiprecision/cpp_int.hpp>

#include <bit>
#include <cstdint>

namespace wager::test {

using rational = boost::multiprecision::cpp_rational;
using integer = boost::multiprecision::cpp_int;

inline int64_t reference_payout(const slip& s) {
  auto n = s.legs.size();
  size_t smallest = 2;
  switch (s.type) {
    case slip_type::single:
    case slip_type::patent:
    case slip_type::lucky15:
    case slip_type::lucky31:
    case slip_type::lucky63: smallest = 1; break;
    case slip_type::accumulator: smallest = n; break;
    default: break;
  }
  integer total = 0;
  for (uint32_t subset = 1; subset < (1u << n); ++subset) {
    if (static_cast<size_t>(std::popcount(subset)) < smallest)
      continue;
    for (int half = 0; half < (s.each_way ? 2 : 1); ++half) {
      rational running = s.stake.minor;
      for (size_t i = 0; i < n; ++i) {
        if (!(subset & (1u << i)))
          continue;
        auto& l = s.legs[i];
        rational odds = rational(l.taken.hundredths - 100, 100);
        if (half == 1)
          odds *= rational(l.place_fraction->n, l.place_fraction->d);
        rational heat(l.dead_heat.n, l.dead_heat.d);
        bool pays = l.result == leg_result::won || (half == 1 && l.result == leg_result::placed);
        if (l.result == leg_result::void_)
          continue;
        if (!pays) {
          running = 0;
          break;
        }
        bool heat_applies = (half == 0 && l.result == leg_result::won)
                            || (half == 1 && l.result == leg_result::placed);
        if (heat_applies)
          running *= heat;
        rational winnings = running * odds * rational(100 - l.rule4, 100);
        running += winnings;
      }
      total += numerator(running) / denominator(running);
    }
  }
  return total.convert_to<int64_t>();
}

} // namespace wager::test
