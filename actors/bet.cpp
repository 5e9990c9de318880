#include "wager/actors/bet.hpp"

namespace wager {

std::string_view to_string(accept_policy policy) {
  switch (policy) {
    case accept_policy::exact: return "exact";
    case accept_policy::better: return "better";
    case accept_policy::any: return "any";
  }
  return "exact";
}

std::optional<accept_policy> parse_accept_policy(std::string_view text) {
  for (auto p : {accept_policy::exact, accept_policy::better, accept_policy::any})
    if (to_string(p) == text)
      return p;
  return std::nullopt;
}

std::string_view to_string(bet_status status) {
  switch (status) {
    case bet_status::open: return "open";
    case bet_status::won: return "won";
    case bet_status::lost: return "lost";
    case bet_status::void_: return "void";
  }
  return "open";
}

std::optional<bet_status> parse_bet_status(std::string_view text) {
  for (auto s : {bet_status::open, bet_status::won, bet_status::lost, bet_status::void_})
    if (to_string(s) == text)
      return s;
  return std::nullopt;
}

money bet::potential() const {
  if (!each_way)
    return potential_payout(stake, accepted);
  slip single;
  single.stake = stake;
  single.each_way = true;
  slip_leg leg;
  leg.taken = accepted;
  leg.place_fraction = place_fraction;
  single.legs.push_back(leg);
  return potential_payout(single);
}

} // namespace wager
