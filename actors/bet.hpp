#pragma once

// A bet as the API shows it, and the bettor's price-change policy.

#include "wager/actors/ids.hpp"
#include "wager/actors/money.hpp"
#include "wager/actors/slip.hpp"
#include "wager/runtime/message_types.hpp"

#include <cstdint>
#include <optional>
#include <string_view>
#include <vector>

namespace wager {

// What the bettor accepts when the price moved since they saw it.
enum class accept_policy : uint8_t {
  exact,  // reject with price_changed unless the price is exactly as asked
  better, // accept at the current price if it is at least the asked price
  any,    // accept at the current price
};

std::string_view to_string(accept_policy policy);
std::optional<accept_policy> parse_accept_policy(std::string_view text);

// The price a bet is accepted at under `policy`, or nullopt for price_changed.
constexpr std::optional<price> accepted_price(accept_policy policy, price asked,
                                              price current) {
  switch (policy) {
    case accept_policy::exact:
      return asked == current ? std::optional<price>{current} : std::nullopt;
    case accept_policy::better:
      return current >= asked ? std::optional<price>{current} : std::nullopt;
    case accept_policy::any: return current;
  }
  return std::nullopt;
}

enum class bet_status : uint8_t {
  open, // accepted, waiting for the result
  won,  // paid stake x price, rounded down
  lost, // stake kept by the house
  void_, // stake refunded ("void" in the API)
  cashed_out, // all of it cashed out before the result
};

std::string_view to_string(bet_status status);
std::optional<bet_status> parse_bet_status(std::string_view text);

// A leg of a slip as the wallet keeps it: the price it was taken at, the
// market's each-way fraction, and what its market's result made of it.
struct bet_leg {
  market_id market;
  selection_id selection;
  price accepted;
  ratio place_fraction; // each-way: the leg's market's terms when it accepted
  leg_result result = leg_result::open;
  ratio dead_heat;      // of the half the result names
  int32_t rule4 = 0;    // pence in the pound off the winnings
  // The settlement round of its market the result is from (market_state's
  // round): a later round (a rollback, a resettlement, a cancellation after
  // the result) replaces it, an earlier or equal one is a repeat.
  uint32_t round = 0;

  bool operator==(const bet_leg&) const = default;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, bet_leg& x) {
  return f(x.market, x.selection, x.accepted.hundredths, x.place_fraction.n, x.place_fraction.d,
           x.result, x.dead_heat.n, x.dead_heat.d, x.rule4, x.round);
}

struct bet {
  bet_id id;
  // A slip's first leg's, for clients of version 1 of the API.
  market_id market;
  selection_id selection;
  money stake;    // each half's stake when each-way
  price accepted; // the price the market accepted
  bet_status status = bet_status::open;
  money payout;   // meaningful once settled: what the result paid (void: the stake back);
                  // a cashed-out bet: what its cash-outs paid
  int64_t placed_at_ms = 0;
  int64_t settled_at_ms = 0; // 0 while open
  // Each-way: a win bet and a place bet of `stake` each, the place half at
  // the market's fraction of the odds when it accepted the bet.
  bool each_way = false;
  ratio place_fraction;
  // A slip (several legs; slip.hpp): its type and legs, and the most it may
  // pay (0: no cap). A single has no legs here: market, selection and
  // accepted are its leg.
  slip_type type = slip_type::single;
  std::vector<bet_leg> legs;
  money max_payout;
  // Cash-outs so far: what they paid, and the stake (a line's) they took;
  // `stake` is what still runs.
  money cashed_out;
  money cashed_out_stake;
  // A single: the settlement round of its market its payout (or the
  // reversal of one) is from, as bet_leg::round; 0 before any.
  uint32_t round = 0;
  // A single: what its market's result made of its selection (`placed`:
  // each-way, the place half only); open until then, and for a settlement
  // recorded before results were kept.
  leg_result result = leg_result::open;

  bool is_slip() const { return !legs.empty(); }
  // The lines: 1 for a single.
  std::size_t lines() const { return is_slip() ? line_count(type, legs.size()) : 1; }
  // What the bet holds: stake x lines, twice it each-way.
  money total_stake() const {
    return money{stake.minor * static_cast<int64_t>(lines()) * (each_way ? 2 : 1)};
  }
  // What it pays if every leg wins outright (both halves each-way).
  money potential() const;
};

// The slip a bet is, for slip.hpp's arithmetic (a single: one open leg).
slip as_slip(const bet& b);

// What a slip bet pays with its legs as they stand, and how it ended, once
// slip.hpp's settled() holds: void when every leg is void (the stake back),
// won when it pays anything, lost otherwise.
struct slip_settlement {
  bet_status outcome = bet_status::lost;
  money amount;
};
slip_settlement settle_slip(const bet& b);

// A cash-out's key: "c/<bet>/<request>" (bet ids never start with "c/"). A
// single's market keeps its decision and its outbox entry under it, the
// wallet the cash-outs it applied.
std::string cashout_key(const std::string& bet, const std::string& request);
inline bool is_cashout_key(const std::string& key) { return key.rfind("c/", 0) == 0; }

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, bet& x) {
  return f(x.id, x.market, x.selection, x.stake.minor, x.accepted.hundredths, x.status,
           x.payout.minor, x.placed_at_ms, x.settled_at_ms, x.each_way, x.place_fraction.n,
           x.place_fraction.d, x.type, x.legs, x.max_payout.minor, x.cashed_out.minor,
           x.cashed_out_stake.minor, x.round, x.result);
}

// The messages above that may cross nodes (runtime/message_types.hpp).
inline constexpr message_types bet_messages{
  message_type<bet>{"wager::bet"},
};

} // namespace wager
