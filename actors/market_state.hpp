#pragma once

// A market's state and the events that change it: a pure fold (apply), like
// the wallet's. The market decides every bet it is asked about and records
// the decision, keyed by bet id, before anyone hears it.

#include "wager/actors/bet.hpp"
#include "wager/actors/ids.hpp"
#include "wager/actors/market_status.hpp"
#include "wager/actors/money.hpp"
#include "wager/actors/slip.hpp"
#include "wager/persistence/event.hpp"
#include "wager/persistence/journal.hpp"
#include "wager/runtime/errors.hpp"
#include "wager/runtime/message_types.hpp"

#include <boost/json/value.hpp>

#include <cstdint>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <unordered_map>
#include <variant>
#include <vector>

namespace wager {

struct selection {
  selection_id id;
  std::string name;
  price current;
};

struct market_limits {
  money max_stake;     // per bet
  money max_liability; // per selection: sum of stake x (price - 1) of its open bets
  money max_payout;    // per slip with a leg here; 0: none (the node's cap alone)
};

// What defines a market; also what an update (feed `market` message) may
// change while it is not settled.
struct market_definition {
  market_id id;
  std::string event;
  std::string name;
  std::vector<selection> selections;
  market_limits limits;
  int64_t in_play_delay_ms = 0;
  // Each-way terms (racing): places 0 when the market has none, and an
  // each-way bet on it is refused.
  each_way_terms each_way;

  bool has_each_way() const { return each_way.places != 0; }
};

// -- events ------------------------------------------------------------------

struct market_defined {
  market_definition definition;
};

struct status_changed {
  market_status status = market_status::pending;
};

struct prices_changed {
  std::map<std::string, price> prices; // selection id -> new price
};

struct bet_accepted {
  bet_id bet;
  user_id user;
  selection_id selection;
  money stake;
  price accepted;
  bool each_way = false;
  ratio place_fraction; // each-way: the market's terms when it accepted
  // A leg of a slip (slip.hpp): the market counts `liability` for it, and
  // its result goes to the wallet, which settles the slip.
  bool leg = false;
  money liability;
};

struct bet_rejected {
  bet_id bet;
  errc reason = errc::none;
  std::optional<price> current; // with price_changed
};

// A Rule 4 deduction: pence in the pound (1 to rule4_max) off the winnings
// of bets the market accepted before `before_ms`.
struct rule4_deduction {
  int32_t deduction = 0;
  int64_t before_ms = 0;

  bool operator==(const rule4_deduction&) const = default;
};

// The result. Every selection not named is lost; a void market has none of
// the lists. `winners` pay at their price (several winners each pay in
// full, as on a market with several winning selections); `placed` pay an
// each-way bet's place half only; `void_selections` refund. `dead_heat`
// multiplies the stake on a won or placed selection (settle_line and
// slip.hpp say which half); `rule4` deductions apply to bets accepted before
// their time, summed and capped at rule4_max.
struct market_resulted {
  std::vector<std::string> winners;
  bool voided = false;
  std::vector<std::string> placed;
  std::vector<std::string> void_selections;
  std::map<std::string, ratio> dead_heat;
  std::vector<rule4_deduction> rule4;

  bool operator==(const market_resulted&) const = default;
};

// A runner withdrawn before the off (a non-runner): its bets are refunded
// at once, and it takes no more.
struct selection_withdrawn {
  selection_id selection;
};

// Wallets acknowledged these bets' payouts; the outbox forgets them.
// `rounds`, one per bet, is the settlement round each acknowledgement is
// for: a bet whose payout changed since (a rollback) stays in the outbox.
// Without rounds (version 1), every bet named is forgotten.
struct payouts_acknowledged {
  std::vector<std::string> bets;
  std::vector<uint32_t> rounds;
};

// Bets the operator voided (the feed's bet_cancel: bets taken after an
// event the feed was late to report): those the market accepted in
// [from_ms, to_ms), named. They are refunded at once; after the result,
// what the result paid them is taken back in the same move.
struct bets_cancelled {
  int64_t from_ms = 0;
  int64_t to_ms = 0;
  std::vector<std::string> bets;
};

// A single cashed out in part or in full (the wallet's request `request`):
// `stake` (of each half, each-way) leaves the bet, and `amount` is owed to
// its wallet through the outbox.
struct bet_cashed_out {
  bet_id bet;
  request_id request;
  money stake;
  money amount;
  price at;              // the selection's price it was cashed out at
  cashout_margin margin; // the wallet's node's
};

// The operator (or the feed's rollback_bet_settlement) took the result
// back: every payout it made is reversed, the market is closed again and
// may be resulted anew. Bets voided before the result stay void.
struct settlement_rolled_back {};

// The wallet gave up a slip another leg's market refused: this market
// forgets its leg and the liability it counted.
struct leg_released {
  bet_id bet;
};

using market_event = std::variant<market_defined, status_changed, prices_changed,
                                  bet_accepted, bet_rejected, market_resulted,
                                  payouts_acknowledged, selection_withdrawn, bets_cancelled,
                                  leg_released, bet_cashed_out, settlement_rolled_back>;

event encode(const market_event& e);
std::optional<market_event> decode_market_event(const event& e);

// -- state -------------------------------------------------------------------

struct accepted_bet {
  bet_id bet;
  user_id user;
  selection_id selection;
  money stake;
  price accepted;
  int64_t accepted_at_ms = 0; // when the market recorded it (Rule 4's "placed")
  bool each_way = false;      // a win and a place half of `stake` each
  ratio place_fraction;
  bool leg = false;           // a leg of a slip: settled by its wallet
  money leg_liability;        // a leg's share of the slip's winnings
  // The settlement round (market_state::round) of what the outbox last
  // owed this bet: its wallet applies a round once, and a later one
  // replaces it. 0: nothing owed yet. `resettled`: that round replaces an
  // earlier one (a rollback, a cancellation after the result, a result
  // after a rollback).
  uint32_t round = 0;
  bool resettled = false;
};

// What the house stands to lose on a bet, rounded up: stake x (price - 1),
// and each-way also the place half's stake x (price - 1) x fraction; for a
// leg of a slip, its leg_liability.
money bet_liability(money stake, price p, bool each_way, ratio place_fraction);
inline money bet_liability(const accepted_bet& b) {
  return b.leg ? b.leg_liability
               : bet_liability(b.stake, b.accepted, b.each_way, b.place_fraction);
}

// The liability a market counts for a leg taken at `taken` when the wallet
// reckoned `at_asked` at the price it asked: the winnings riding on a leg
// are stake x (A x price - B) with A >= B, so scaling by
// (taken - 1) / (asked - 1), rounded up, bounds them from above at a
// better price, and a worse price keeps the asked price's figure.
money leg_liability_at(money at_asked, price asked, price taken);

// A decision as the wallet hears it: accepted at a price, or rejected.
struct bet_decision {
  bet_id bet;
  bool accepted = false;
  price at;                     // accepted price
  errc reason = errc::none;     // when rejected
  price current;                // with price_changed; 0 otherwise
  ratio place_fraction;         // accepted each-way: the market's fraction
  money max_payout;             // an accepted leg: the market's cap on a slip; 0 none
  // The market's event recording this decision while it is not yet
  // durable (seq 0 once it is): whatever the wallet writes on the decision
  // builds on it (append_request::after), so it is never kept if the
  // market's event is lost. Not part of the stored answer.
  event_position recorded;
};

struct market_state {
  uint64_t seq = 0;
  bool defined = false;
  market_definition definition;
  market_status status = market_status::pending;
  uint64_t version = 0; // +1 for every change a client sees

  std::unordered_map<std::string, accepted_bet> bets;  // every accepted bet
  std::map<std::string, money> liability;              // per selection
  std::optional<market_resulted> result;
  std::set<std::string> withdrawn;                     // non-runners
  std::set<std::string> cancelled;                     // bets voided by bets_cancelled
  std::set<std::string> outbox;                        // payouts not yet acknowledged
  // Bumped by every event that owes bets something through the outbox (a
  // result, a non-runner, a cancellation, a rollback): the round of what
  // is owed, so a wallet tells a repeat from a resettlement.
  uint32_t round = 0;
  uint32_t rollbacks = 0; // results taken back
  // Cash-outs owed to wallets, by cashout_key: the outbox holds their keys
  // beside bet ids until the wallet acknowledges them.
  struct cashout_owed {
    bet_id bet;
    user_id user;
    request_id request;
    money stake;
    money amount;
  };
  std::map<std::string, cashout_owed> cashouts;

  const selection* find_selection(const std::string& id) const;
  bool is_withdrawn(const std::string& selection) const { return withdrawn.count(selection) > 0; }
  // Refunded before the result: on a non-runner, or cancelled.
  bool voided_early(const accepted_bet& b) const {
    return is_withdrawn(b.selection.value) || cancelled.count(b.bet.value) > 0;
  }
};

// Folds one event in. `at_ms` is when it was written.
void apply(market_state& s, const market_event& e, uint64_t seq, int64_t at_ms = 0);

// What a settled bet pays and how it ended: a bet on a non-runner, or
// cancelled, is void;
// otherwise by the result, the dead heat on its selection and the Rule 4
// deductions that apply to it (slip.hpp's rules for a single).
// REQUIRES: s.result, or s.voided_early(b).
struct settlement_line {
  bet_status outcome = bet_status::lost;
  money amount;
};
settlement_line settle_line(const market_state& s, const accepted_bet& b);

// What cashing out `stake` of `b` at `now` with `margin` pays: slip.hpp's
// cashout_value of the single it is.
money single_cashout_value(const accepted_bet& b, money stake, price now, cashout_margin margin);

// What the market's result (or a non-runner, or a cancellation) made of a
// leg of a slip, as the wallet records it. REQUIRES: as settle_line.
struct leg_outcome {
  leg_result result = leg_result::lost;
  ratio dead_heat;
  int32_t rule4 = 0;
};
leg_outcome leg_outcome_of(const market_state& s, const accepted_bet& b);

// The Rule 4 deduction, in pence, for a bet accepted at `accepted_at_ms`:
// the deductions timed after it, summed, capped at rule4_max.
int32_t rule4_for(const std::vector<rule4_deduction>& rule4, int64_t accepted_at_ms);

void check_invariants(const market_state& s);

// The decision as stored with the event (request record) and read back.
std::string to_json_text(const bet_decision& d);
std::optional<bet_decision> bet_decision_from_json(const std::string& text);

// Version 2 added each bet's acceptance time, each-way terms, the racing
// result, the non-runners and the cancelled bets; version 3 the settlement
// rounds. An older snapshot is ignored and the market replays its events.
inline constexpr uint32_t market_snapshot_version = 3;
boost::json::value to_json(const market_state& s);
std::optional<market_state> market_state_from_json(const boost::json::value& v);

boost::json::object definition_to_json(const market_definition& d);
std::optional<market_definition> definition_from_json(const boost::json::value& v);

// The messages above that may cross nodes (runtime/message_types.hpp).
inline constexpr message_types market_state_messages{
  message_type<market_definition>{"wager::market_definition"},
  message_type<bet_decision>{"wager::bet_decision"},
};

} // namespace wager
