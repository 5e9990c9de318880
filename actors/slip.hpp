#pragma once

// Bet slips (shared/API.md, "Version 1.1"): singles, accumulators and the
// named system bets, each-way, and what a slip pays under the racing rules
// (void legs, dead heats, Rule 4), what it may win on each selection, and
// what a cash-out of it is worth. Everything here is a pure function of the
// slip, so the wallet, the markets, the audits and the tests share one
// definition.
//
// A slip is `lines` bets of `stake` each, twice that when it is each-way. A
// line is a set of legs, all of which must come in: a single is one line of
// one leg, an accumulator one line of all its legs, a system bet every
// combination of its legs of its sizes (a Yankee: the 6 doubles, 4 trebles
// and the four-fold of 4 legs). An each-way slip is two slips of `stake` a
// line: the win slip at the legs' prices, and the place slip at each leg's
// place price, 1 + (price - 1) x fraction, on which a leg comes in when its
// selection finishes in the places.
//
// Exact arithmetic. A line pays stake x the product of its legs' factors:
//   won      dead-heat factor x (1 + (price - 1) x (1 - rule4))
//   placed   0 on the win slip; on the place slip as won, at the place price
//   lost     0
//   void     1 (the line is the same bet without the leg)
// where rule4 is the deduction in pence in the pound over 100, applied to
// the winnings and never to the stake. The dead-heat factor applies to the
// half the result names: a `won` result's win half (a tie for first), a
// `placed` result's place half (a tie for the last place); a winner's place
// half pays in full. Every line's payout, an exact fraction, is rounded
// down to a minor unit once, at the end, and the slip pays the sum of its
// lines (each half's lines apart), capped at the slip's maximum payout.
// Big integers (Boost.Multiprecision) carry the products: 20 legs at
// 1000.00 overflow any machine word.

#include "wager/actors/money.hpp"

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace wager {

enum class slip_type : uint8_t {
  single,
  accumulator,
  trixie,      // 3 legs: 3 doubles, 1 treble (4 lines)
  patent,      // 3 legs: with the singles (7)
  yankee,      // 4 legs: doubles up (11)
  lucky15,     // 4 legs: singles up (15)
  canadian,    // 5 legs: doubles up (26)
  lucky31,     // 5 legs: singles up (31)
  heinz,       // 6 legs: doubles up (57)
  lucky63,     // 6 legs: singles up (63)
  super_heinz, // 7 legs: doubles up (120)
  goliath,     // 8 legs: doubles up (247)
};

inline constexpr std::size_t slip_legs_max = 20;
inline constexpr std::size_t slip_lines_max = 247;

std::string_view to_string(slip_type t);
// The API's names ("lucky15", "super_heinz"); nullopt for anything else.
std::optional<slip_type> parse_slip_type(std::string_view text);

// The legs a type takes: a single one, an accumulator 2 to slip_legs_max, a
// system bet exactly its number.
struct leg_range {
  std::size_t min = 1;
  std::size_t max = 1;
};
leg_range legs_of(slip_type t);

// The smallest line of a type: 1 for a single and the full-cover bets with
// singles (patent, lucky15, lucky31, lucky63), 2 for the others, all legs
// for an accumulator.
std::size_t smallest_line(slip_type t, std::size_t legs);

// A line as a set of legs: bit i is leg i. REQUIRES: legs within legs_of(t).
using slip_line = uint32_t;
std::vector<slip_line> lines_of(slip_type t, std::size_t legs);

// How many lines, without listing them; 0 when `legs` is out of range.
std::size_t line_count(slip_type t, std::size_t legs);

// -- ratios --------------------------------------------------------------------

// A fraction n/d with 0 < n <= d: an each-way fraction ("1/4") or a
// dead-heat factor ("1/2").
struct ratio {
  int32_t n = 1;
  int32_t d = 1;

  bool operator==(const ratio&) const = default;
};

// "1/4", "1/2", "1/1", "1" (whole ones only: "1"); the denominator at most
// 1000, the value in (0, 1]. nullopt for anything else.
std::optional<ratio> parse_ratio(std::string_view text);
// "1/4", or "1" for one.
std::string to_string(ratio r);

// -- each-way ------------------------------------------------------------------

inline constexpr uint32_t each_way_places_max = 10;

// A market's each-way terms: the places that count, and the share of the
// odds the place half is paid at.
struct each_way_terms {
  uint32_t places = 0; // 1 .. each_way_places_max
  ratio fraction;      // "1/4", "1/5"

  bool operator==(const each_way_terms&) const = default;
};

bool valid(const each_way_terms& t);

// 1 + (price - 1) x fraction, in hundredths, rounded down: the place price as
// shown. Payouts do not use it: they use the exact fraction.
price place_price(price p, ratio fraction);

// -- settlement ----------------------------------------------------------------

enum class leg_result : uint8_t {
  open,
  won,
  placed, // finished in the places, not first: pays the place half only
  lost,
  void_,  // "void" in the API: counts at price 1.00
};

std::string_view to_string(leg_result r);
std::optional<leg_result> parse_leg_result(std::string_view text);

inline constexpr int32_t rule4_max = 90;

struct slip_leg {
  price taken;
  std::optional<ratio> place_fraction; // the leg's market's each-way terms
  leg_result result = leg_result::open;
  ratio dead_heat;     // of the half the result names; 1/1 without a dead heat
  int32_t rule4 = 0;   // pence in the pound deducted from winnings, 0..rule4_max
};

struct slip {
  slip_type type = slip_type::single;
  money stake;                           // a line's stake
  bool each_way = false;                 // every leg then has its place fraction
  std::vector<slip_leg> legs;
};

// The first thing wrong with a slip as a client may send it, naming the
// API's field: `type` (a wrong number of legs is `legs`), `legs` (a price
// outside 1.01 to 1000.00), `stake` (outside 1 to 10^12 minor units, or a
// total stake over that), `each_way` (each-way without a fraction). The
// functions below REQUIRE a slip this passes; a leg's result, dead heat and
// deduction are the settlement's and checked there.
struct slip_refusal {
  std::string field;
  std::string message;
};
std::optional<slip_refusal> check_slip(const slip& s);

// The lines, twice that when each-way.
std::size_t bets_of(const slip& s);

// stake x lines (x 2 each-way): what placing it holds.
money total_stake(const slip& s);

// What the slip pays as its legs stand, open legs counting as lost: every
// line's payout rounded down, summed over both halves, and capped at
// `max_payout` when it is set.
struct slip_payout {
  money win;   // the win half (all of it when not each-way)
  money place; // the place half
  money total; // win + place, capped
};
slip_payout payout_of(const slip& s, std::optional<money> max_payout = std::nullopt);

// What the slip pays if every open leg wins (no dead heat, no deduction):
// the API's potential_payout.
money potential_payout(const slip& s, std::optional<money> max_payout = std::nullopt);

// True when the slip's result is known: no leg is open, or no line of
// either half can pay any more (a losing leg on every line: an accumulator
// with one lost leg is lost at once).
bool settled(const slip& s);

// The potential winnings that ride on leg `leg`: the lines containing it
// paid as if every open leg wins, less their stakes, rounded up; the
// liability a market counts for a leg of a multiple (a single's is
// stake x (price - 1)).
money leg_liability(const slip& s, std::size_t leg);

// -- cash-out ------------------------------------------------------------------

// The margin a cash-out keeps back, as n/d (0.05 is 5/100); the value in
// [0, 1).
struct cashout_margin {
  int32_t n = 5;
  int32_t d = 100;
};

// "0.05", "0.1", "0": at most four decimals, in [0, 1). nullopt otherwise.
std::optional<cashout_margin> parse_cashout_margin(std::string_view text);

// What a cash-out pays now: per line (each half apart), stake x the product
// over its open legs of price taken / price now, and over its settled legs
// of their factors (void 1, lost 0), times (1 - margin); summed and rounded
// down once. `now[i]` is leg i's current price (read for open legs only; an
// each-way place half uses the place prices of both). 0 when nothing can
// pay.
money cashout_value(const slip& s, std::span<const price> now, cashout_margin margin);

} // namespace wager
