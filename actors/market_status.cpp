#include "wager/actors/market_status.hpp"

namespace wager {

std::string_view to_string(market_status status) {
  switch (status) {
    case market_status::pending: return "pending";
    case market_status::open: return "open";
    case market_status::suspended: return "suspended";
    case market_status::closed: return "closed";
    case market_status::settled: return "settled";
    case market_status::voided: return "voided";
  }
  return "pending";
}

std::optional<market_status> parse_market_status(std::string_view text) {
  for (auto s : {market_status::pending, market_status::open, market_status::suspended,
                 market_status::closed, market_status::settled, market_status::voided})
    if (to_string(s) == text)
      return s;
  return std::nullopt;
}

bool transition_allowed(market_status from, market_status to) {
  using enum market_status;
  switch (from) {
    case pending: return to == open || to == suspended || to == closed || to == voided;
    case open: return to == suspended || to == closed || to == settled || to == voided;
    case suspended: return to == open || to == closed || to == settled || to == voided;
    case closed: return to == settled || to == voided;
    case settled: return false;
    case voided: return false;
  }
  return false;
}

} // namespace wager
