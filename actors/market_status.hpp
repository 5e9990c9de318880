#pragma once

// A market's lifecycle. One function decides every transition, so the rules
// live in one place.

#include <optional>
#include <string_view>

namespace wager {

enum class market_status {
  pending,   // created, prices may be set, no bets yet
  open,      // taking bets
  suspended, // temporarily not taking bets (feed down, bet_stop, trader)
  closed,    // no more bets, waiting for the result
  settled,   // result recorded, payouts delivered from the outbox; final
  voided,    // every bet refunded; final
};

std::string_view to_string(market_status status);
std::optional<market_status> parse_market_status(std::string_view text);

// Whether `from` may become `to`. Staying in the same state is not a
// transition. Settled and voided are final. A closed market never reopens
// (its bettors were told it closed). Settling an open or suspended market
// closes it in the same step: the market actor handles one command at a
// time, so no bet slips in between. A pending market may be voided (an event
// cancelled before it opened) but not settled.
bool transition_allowed(market_status from, market_status to);

} // namespace wager
