#pragma once

// A bet as the API shows it, and the bettor's price-change policy.

#include "wager/actors/ids.hpp"
#include "wager/actors/money.hpp"
#include "wager/actors/slip.hpp"
#include "wager/runtime/message_types.hpp"

#include <cstdint>
#include <optional>
#include <string_view>

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
};

std::string_view to_string(bet_status status);
std::optional<bet_status> parse_bet_status(std::string_view text);

struct bet {
  bet_id id;
  market_id market;
  selection_id selection;
  money stake;    // each half's stake when each-way
  price accepted; // the price the market accepted
  bet_status status = bet_status::open;
  money payout;   // meaningful once settled: what the result paid (void: the stake back)
  int64_t placed_at_ms = 0;
  int64_t settled_at_ms = 0; // 0 while open
  // Each-way: a win bet and a place bet of `stake` each, the place half at
  // the market's fraction of the odds when it accepted the bet.
  bool each_way = false;
  ratio place_fraction;

  // What the bet holds: the stake, twice it each-way.
  money total_stake() const { return money{stake.minor * (each_way ? 2 : 1)}; }
  // What it pays if the selection wins outright (both halves each-way).
  money potential() const;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, bet& x) {
  return f(x.id, x.market, x.selection, x.stake.minor, x.accepted.hundredths, x.status,
           x.payout.minor, x.placed_at_ms, x.settled_at_ms, x.each_way, x.place_fraction.n,
           x.place_fraction.d);
}

// The messages above that may cross nodes (runtime/message_types.hpp).
inline constexpr message_types bet_messages{
  message_type<bet>{"wager::bet"},
};

} // namespace wager
