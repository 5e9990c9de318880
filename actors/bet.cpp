#include "wager/actors/bet.hpp"

#include <algorithm>

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
    case bet_status::cashed_out: return "cashed_out";
  }
  return "open";
}

std::optional<bet_status> parse_bet_status(std::string_view text) {
  for (auto s : {bet_status::open, bet_status::won, bet_status::lost, bet_status::void_,
                 bet_status::cashed_out})
    if (to_string(s) == text)
      return s;
  return std::nullopt;
}

slip as_slip(const bet& b) {
  slip s;
  s.type = b.type;
  s.stake = b.stake;
  s.each_way = b.each_way;
  if (!b.is_slip()) {
    slip_leg leg;
    leg.taken = b.accepted;
    if (b.each_way)
      leg.place_fraction = b.place_fraction;
    s.legs.push_back(leg);
    return s;
  }
  for (auto& l : b.legs) {
    slip_leg leg;
    leg.taken = l.accepted;
    if (b.each_way)
      leg.place_fraction = l.place_fraction;
    leg.result = l.result;
    leg.dead_heat = l.dead_heat;
    leg.rule4 = l.rule4;
    s.legs.push_back(leg);
  }
  return s;
}

slip_settlement settle_slip(const bet& b) {
  auto s = as_slip(b);
  auto cap = b.max_payout.minor > 0 ? std::optional<money>{b.max_payout} : std::nullopt;
  auto paid = payout_of(s, cap).total;
  bool all_void = std::all_of(s.legs.begin(), s.legs.end(),
                              [](const slip_leg& l) { return l.result == leg_result::void_; });
  if (all_void)
    return {bet_status::void_, paid};
  return {paid.minor > 0 ? bet_status::won : bet_status::lost, paid};
}

std::string cashout_key(const std::string& bet, const std::string& request) {
  return "c/" + bet + "/" + request;
}

money bet::potential() const {
  if (is_slip()) {
    auto cap = max_payout.minor > 0 ? std::optional<money>{max_payout} : std::nullopt;
    return potential_payout(as_slip(*this), cap);
  }
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
