#pragma once

// The market entity (`market/<market id>`): its lifecycle, prices, limits,
// the decision on every bet, and settlement through an outbox. Route its
// requests through the directory to entity_id{"market", id}.
//
// Errors: not_found (no such market), already_exists, illegal_transition,
// invalid_field (detail: the field), market_not_open, unavailable,
// journal_failure.

#include "wager/actors/ids.hpp"
#include "wager/actors/market_state.hpp"
#include "wager/actors/money.hpp"
#include "wager/runtime/directory.hpp"
#include "wager/runtime/message_types.hpp"

#include <caf/actor.hpp>
#include <caf/atom.hpp>
#include <caf/meta/type_name.hpp>
#include <caf/optional.hpp>

#include <chrono>
#include <limits>
#include <map>
#include <memory>
#include <string>
#include <vector>

namespace prometheus {
class Gauge;
}

namespace wager {

class journal;

// -- requests ----------------------------------------------------------------

// Creates the market (pending). Repeating it with the same definition
// answers the market; another definition is already_exists. -> market_view
struct create_market_cmd {
  market_definition definition;
};

// Replaces name, event, selections (same ids), limits and delay of a market
// that is not settled or voided. -> market_view
struct update_market_cmd {
  market_definition definition;
};

// open, suspended or closed. -> market_view
struct set_status_cmd {
  market_status status = market_status::open;
};

// selection id -> price. -> market_view
struct set_prices_cmd {
  std::map<std::string, price> prices;
  caf::optional<market_status> status; // feed odds_change may carry one
  // From the feed: when the node received the message (feed_clock_us()),
  // carried on to the updates it causes so the edge can time feed-to-push.
  int64_t feed_received_us = 0;
};

// Records the result and pays out through the outbox. Settling again with
// the same result answers the market; another result is
// illegal_transition. -> market_view
struct settle_cmd {
  market_resulted result;
};

// Withdraws a runner (a non-runner) from a market not yet resulted: its
// bets are refunded at once, and it takes no more. Withdrawing it again
// answers the market. -> market_view
struct withdraw_selection_cmd {
  selection_id selection;
};

// Takes the result back (the feed's rollback_bet_settlement): every payout
// it made is reversed through the outbox (a wallet may go below zero), and
// the market is closed, ready to be resulted again. Asking again once it is
// rolled back answers the market; a market never resulted is
// illegal_transition. -> market_view
struct unsettle_cmd {};

// Voids the bets the market accepted in [from_ms, to_ms) (the feed's
// bet_cancel): they are refunded at once, and after the result what it paid
// them is taken back in the same move. Bets already void are left alone, so
// asking again changes nothing. -> market_view
struct cancel_bets_cmd {
  int64_t from_ms = 0;
  int64_t to_ms = std::numeric_limits<int64_t>::max();
};

// -> market_view
struct market_query {};

// From a wallet's bet saga. Asking again for the same bet gets the same
// decision. -> bet_decision
struct accept_bet_cmd {
  bet_id bet;
  user_id user;
  selection_id selection;
  money stake;
  price asked;
  accept_policy accept = accept_policy::exact;
  // The first ask for this bet: the market may answer before its decision is
  // durable (bet_decision::recorded), when the asker is on its node. Asks
  // again (a retry, a saga resumed after a restart) wait for the disk, so a
  // decision the journal already holds is found and answered instead.
  bool first_ask = false;
  // Each-way: `stake` on the win and again on the place, at the market's
  // terms; refused (invalid_field) on a market without them.
  bool each_way = false;
  // A leg of a slip: `stake` is the slip's stake a line, and `liability`
  // the winnings riding on this leg at the asked price (slip.hpp's
  // leg_liability), which the market counts against max_liability
  // (leg_liability_at, at the price it takes).
  bool leg = false;
  money liability;
};

// From a wallet cashing out `stake` (each half's, each-way) of a single at
// the price its quote read (`quoted`, the selection's). The market decides
// against itself as it is then, after its in-play delay: the bet running,
// the market open (else cashout_unavailable), the price as quoted (else
// price_changed, with the current one). Accepted, it records
// bet_cashed_out and pays `amount` to the wallet through its outbox
// (credit_cashout_cmd): slip.hpp's cashout_value of `stake` at that price
// with the wallet's node's `margin`. Asking again with the same request gets
// the same decision. -> cashout_decision
struct cashout_bet_cmd {
  bet_id bet;
  request_id request;
  money stake;
  price quoted;
  cashout_margin margin;
};

struct cashout_decision {
  bool accepted = false;
  errc reason = errc::none;
  price current; // with price_changed
  money amount;  // accepted: what the wallet is paid
};

// From a wallet giving up a slip another leg's market refused: the market
// forgets the leg and its liability. Releasing a leg it does not hold (never
// accepted, or released before) changes nothing. -> leg_release_ack
struct release_leg_cmd {
  bet_id bet;
};

struct leg_release_ack {
  bet_id bet;
};

// Subscribes `subscriber` to market_update messages; answers the current
// market_view, which the updates then continue (version + 1 each).
struct subscribe_cmd {
  caf::actor subscriber;
};

struct unsubscribe_cmd {
  caf::actor subscriber;
};

// Sent to subscribers when the market passivates (or its shard moves):
// (subscription_ended_atom, market_id). Subscribe again to go on; the view
// it answers tells how many versions were missed.
using subscription_ended_atom = caf::atom_constant<caf::atom("subended")>;

// -- replies and pushes ------------------------------------------------------

struct market_view {
  market_definition definition;
  market_status status = market_status::pending;
  uint64_t version = 0;
  std::map<std::string, int64_t> liability; // selection id -> minor units
  std::vector<std::string> withdrawn;       // non-runners
};

// Pushed to subscribers after every change of price or status, in order.
struct market_update {
  market_id market;
  uint64_t version = 0;
  bool status_changed = false;
  market_status status = market_status::pending;
  std::map<std::string, price> prices; // changed prices (all, on a status change)
  int64_t feed_received_us = 0;        // set_prices_cmd's, 0 when not from the feed
  // Runners withdrawn by this change (a non-runner), pushed as a status
  // update with the status unchanged.
  std::vector<std::string> withdrawn;
};

// The clock of feed_received_us: steady, microseconds; only for durations
// within one node.
inline int64_t feed_clock_us() {
  using namespace std::chrono;
  return duration_cast<microseconds>(steady_clock::now().time_since_epoch()).count();
}

struct market_options {
  // Settlement outbox: payouts in flight at once, and how long one waits for
  // its wallet's acknowledgement before it is sent again.
  uint32_t outbox_window = 512;
  std::chrono::milliseconds payout_timeout{5000};
  // How often the outbox retries unacknowledged payouts.
  std::chrono::milliseconds outbox_retry{500};
  // Acknowledgements recorded in one payouts_acknowledged event.
  uint32_t acks_per_event_max = 256;
  // Subscribers per market; more are refused (unavailable).
  uint32_t subscribers_max = 100'000;
  uint32_t snapshot_every = 1000;
  // wager_settlement_payouts_pending: payouts recorded by settlements and
  // not yet acknowledged by their wallets, summed over the node's markets.
  // Not counted when null. Must outlive the actor system.
  prometheus::Gauge* payouts_pending = nullptr;
};

activate_fn market_activator(std::shared_ptr<journal> j, market_options options = {});

market_view view_of(const market_state& s);

// -- CAF inspection ----------------------------------------------------------

template <class I>
typename I::result_type inspect(I& f, selection& x) {
  return f(caf::meta::type_name("wager::selection"), x.id, x.name, x.current);
}
template <class I>
typename I::result_type inspect(I& f, market_limits& x) {
  return f(caf::meta::type_name("wager::market_limits"), x.max_stake, x.max_liability,
           x.max_payout);
}
template <class I>
typename I::result_type inspect(I& f, ratio& x) {
  return f(caf::meta::type_name("wager::ratio"), x.n, x.d);
}
template <class I>
typename I::result_type inspect(I& f, each_way_terms& x) {
  return f(caf::meta::type_name("wager::each_way_terms"), x.places, x.fraction);
}
template <class I>
typename I::result_type inspect(I& f, rule4_deduction& x) {
  return f(caf::meta::type_name("wager::rule4_deduction"), x.deduction, x.before_ms);
}
template <class I>
typename I::result_type inspect(I& f, market_resulted& x) {
  return f(caf::meta::type_name("wager::market_resulted"), x.winners, x.voided, x.placed,
           x.void_selections, x.dead_heat, x.rule4);
}
template <class I>
typename I::result_type inspect(I& f, market_definition& x) {
  return f(caf::meta::type_name("wager::market_definition"), x.id, x.event, x.name,
           x.selections, x.limits, x.in_play_delay_ms, x.each_way);
}
template <class I>
typename I::result_type inspect(I& f, create_market_cmd& x) {
  return f(caf::meta::type_name("wager::create_market_cmd"), x.definition);
}
template <class I>
typename I::result_type inspect(I& f, update_market_cmd& x) {
  return f(caf::meta::type_name("wager::update_market_cmd"), x.definition);
}
template <class I>
typename I::result_type inspect(I& f, set_status_cmd& x) {
  return f(caf::meta::type_name("wager::set_status_cmd"), x.status);
}
template <class I>
typename I::result_type inspect(I& f, set_prices_cmd& x) {
  return f(caf::meta::type_name("wager::set_prices_cmd"), x.prices, x.status,
           x.feed_received_us);
}
template <class I>
typename I::result_type inspect(I& f, settle_cmd& x) {
  return f(caf::meta::type_name("wager::settle_cmd"), x.result);
}
template <class I>
typename I::result_type inspect(I& f, unsettle_cmd&) {
  return f(caf::meta::type_name("wager::unsettle_cmd"));
}
template <class I>
typename I::result_type inspect(I& f, cancel_bets_cmd& x) {
  return f(caf::meta::type_name("wager::cancel_bets_cmd"), x.from_ms, x.to_ms);
}
template <class I>
typename I::result_type inspect(I& f, withdraw_selection_cmd& x) {
  return f(caf::meta::type_name("wager::withdraw_selection_cmd"), x.selection);
}
template <class I>
typename I::result_type inspect(I& f, market_query&) {
  return f(caf::meta::type_name("wager::market_query"));
}
template <class I>
typename I::result_type inspect(I& f, accept_bet_cmd& x) {
  return f(caf::meta::type_name("wager::accept_bet_cmd"), x.bet, x.user, x.selection,
           x.stake, x.asked, x.accept, x.first_ask, x.each_way, x.leg, x.liability);
}
template <class I>
typename I::result_type inspect(I& f, cashout_bet_cmd& x) {
  return f(caf::meta::type_name("wager::cashout_bet_cmd"), x.bet, x.request, x.stake, x.quoted,
           x.margin.n, x.margin.d);
}
template <class I>
typename I::result_type inspect(I& f, cashout_decision& x) {
  return f(caf::meta::type_name("wager::cashout_decision"), x.accepted, x.reason, x.current,
           x.amount);
}
template <class I>
typename I::result_type inspect(I& f, release_leg_cmd& x) {
  return f(caf::meta::type_name("wager::release_leg_cmd"), x.bet);
}
template <class I>
typename I::result_type inspect(I& f, leg_release_ack& x) {
  return f(caf::meta::type_name("wager::leg_release_ack"), x.bet);
}
template <class I>
typename I::result_type inspect(I& f, subscribe_cmd& x) {
  return f(caf::meta::type_name("wager::subscribe_cmd"), x.subscriber);
}
template <class I>
typename I::result_type inspect(I& f, unsubscribe_cmd& x) {
  return f(caf::meta::type_name("wager::unsubscribe_cmd"), x.subscriber);
}
template <class I>
typename I::result_type inspect(I& f, market_view& x) {
  return f(caf::meta::type_name("wager::market_view"), x.definition, x.status, x.version,
           x.liability, x.withdrawn);
}
template <class I>
typename I::result_type inspect(I& f, market_update& x) {
  return f(caf::meta::type_name("wager::market_update"), x.market, x.version,
           x.status_changed, x.status, x.prices, x.feed_received_us, x.withdrawn);
}
template <class I>
typename I::result_type inspect(I& f, bet_decision& x) {
  return f(caf::meta::type_name("wager::bet_decision"), x.bet, x.accepted, x.at, x.reason,
           x.current, x.recorded, x.place_fraction, x.max_payout);
}

// The messages above that may cross nodes (runtime/message_types.hpp).
inline constexpr message_types market_messages{
  message_type<create_market_cmd>{"wager::create_market_cmd"},
  message_type<update_market_cmd>{"wager::update_market_cmd"},
  message_type<set_status_cmd>{"wager::set_status_cmd"},
  message_type<set_prices_cmd>{"wager::set_prices_cmd"},
  message_type<settle_cmd>{"wager::settle_cmd"},
  message_type<withdraw_selection_cmd>{"wager::withdraw_selection_cmd"},
  message_type<cancel_bets_cmd>{"wager::cancel_bets_cmd"},
  message_type<unsettle_cmd>{"wager::unsettle_cmd"},
  message_type<market_query>{"wager::market_query"},
  message_type<accept_bet_cmd>{"wager::accept_bet_cmd"},
  message_type<release_leg_cmd>{"wager::release_leg_cmd"},
  message_type<cashout_bet_cmd>{"wager::cashout_bet_cmd"},
  message_type<cashout_decision>{"wager::cashout_decision"},
  message_type<leg_release_ack>{"wager::leg_release_ack"},
  message_type<subscribe_cmd>{"wager::subscribe_cmd"},
  message_type<unsubscribe_cmd>{"wager::unsubscribe_cmd"},
  message_type<market_view>{"wager::market_view"},
  message_type<market_update>{"wager::market_update"},
};

} // namespace wager
