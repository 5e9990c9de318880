#pragma once

// The wallet entity (`wallet/<user id>`): a user's money. Its requests and
// replies are below; route them through the directory to
// entity_id{"wallet", user}. Every command that moves money carries a request
// id: a repeat with the same body gets the first answer and moves nothing;
// the same id with another body is refused (errc::request_id_reused).
//
// Errors come back as caf::error in the wager category (runtime/errors.hpp):
// insufficient_funds, self_excluded, limit_exceeded, price_changed (detail:
// the current price), market_not_open, not_found, request_id_reused,
// unavailable (journal or market unreachable: retry with the same id),
// journal_failure.

#include "wager/actors/bet.hpp"
#include "wager/actors/ids.hpp"
#include "wager/actors/money.hpp"
#include "wager/actors/wallet_state.hpp"
#include "wager/runtime/directory.hpp"
#include "wager/runtime/message_types.hpp"

#include <caf/actor.hpp>
#include <caf/atom.hpp>
#include <caf/fwd.hpp>
#include <caf/meta/type_name.hpp>
#include <caf/optional.hpp>

#include <functional>
#include <memory>
#include <string>
#include <vector>

namespace wager {

class wallet_history;

class journal;

// -- requests ----------------------------------------------------------------

// -> wallet_receipt
struct deposit_cmd {
  request_id request;
  money amount;
};

// -> wallet_receipt
struct withdraw_cmd {
  request_id request;
  money amount;
};

// The bet saga: hold, ask the market, commit or release. -> bet
struct place_bet_cmd {
  request_id request;
  market_id market;
  selection_id selection;
  money stake;
  price asked;
  accept_policy accept = accept_policy::exact;
  // Each-way: `stake` on the win and again on the place; twice it is held.
  bool each_way = false;
};

// A bet slip (slip.hpp): `stake` a line on every line of `type` over
// `legs`, each on a different market; twice that each-way. The wallet holds
// stake x lines, asks every leg's market, and keeps the slip only if all of
// them accept: one refusal releases the hold and tells the other markets to
// forget their legs. A single is place_bet_cmd. -> bet
struct place_slip_cmd {
  request_id request;
  slip_type type = slip_type::accumulator;
  std::vector<leg_request> legs;
  money stake;
  accept_policy accept = accept_policy::exact;
  bool each_way = false;
};

// From a resulted market's outbox: what the result made of a slip's leg
// there, in the market's settlement round `round`. The slip settles when
// slip.hpp's settled() says so (its last leg, or a losing leg of an
// accumulator), and the wallet credits what it pays. A later round replaces
// the leg's result (`open`: the result was rolled back), reversing what the
// slip was paid and paying it again if it is still settled. A round the leg
// has had is a repeat. `resettled`: this round replaces an earlier one the
// market sent. -> payout_ack
struct leg_result_cmd {
  bet_id bet;
  market_id market;
  leg_result result = leg_result::lost;
  ratio dead_heat;
  int32_t rule4 = 0;
  uint32_t round = 0;
  bool resettled = false;
};

// A quote to cash a bet out now (shared/API.md, "Cash-out"): slip.hpp's
// cashout_value at the current prices of its open legs' markets, less the
// node's margin, good until expires_at_ms (5 s; 10 s when a leg's market is
// in play). errc::cashout_unavailable while a leg's market is not open or
// the bet can no longer pay; not_found for a bet not open here.
// -> cashout_quote
struct cashout_quote_query {
  bet_id bet;
};

struct cashout_quote {
  bet_id bet;
  money amount;
  std::string quote_id;
  int64_t expires_at_ms = 0;
};

// Cashes out `fraction_bp` ten-thousandths of the bet's running stake
// (10000: all of it) at the quote's prices, re-checked now: a moved price
// is price_changed (ask a new quote), an expired or unknown quote too, a
// market not open cashout_unavailable. A single's market decides and pays
// it (cashout_bet_cmd); a slip's wallet does, after the longest in-play
// delay of its legs' markets. Idempotent by request id. -> bet
struct cashout_cmd {
  request_id request;
  bet_id bet;
  std::string quote_id;
  int32_t fraction_bp = 10'000;
};

// From a market's outbox: a single's cash-out it recorded; idempotent by
// bet and request. -> payout_ack
struct credit_cashout_cmd {
  bet_id bet;
  request_id request;
  money stake;
  money amount;
};

// From a settled market's outbox, in its settlement round `round`. A later
// round than the bet's replaces its payout (the earlier one is reversed);
// outcome `open` reverses it only (the result was rolled back). A round the
// bet has had is a repeat. -> payout_ack
struct credit_payout_cmd {
  bet_id bet;
  bet_status outcome = bet_status::lost;
  money amount;
  uint32_t round = 0;
  leg_result result = leg_result::open; // what the result made of the selection
};

// Unset fields keep their value; amounts are minor units, and 0 removes a
// limit. The rules are change_limits' (gambling_limits.hpp): a lower limit at
// once, a higher one or a removal after 24 hours, time-out and self-exclusion
// extended but never shortened. `daily_deposit_limit` (version 1 of the API)
// is the rolling-day deposit limit. -> wallet_limits
struct set_limits_cmd {
  caf::optional<int64_t> daily_deposit_limit;
  std::array<caf::optional<int64_t>, 3> deposit; // by limit_period
  std::array<caf::optional<int64_t>, 3> loss;
  caf::optional<int64_t> time_out_until_ms;
  caf::optional<int64_t> self_exclude_until_ms;
  caf::optional<int64_t> reality_check_minutes; // 0 turns it off
};

// -> wallet_limits
struct limits_query {};

// For a reality check: the interval in force and what was staked and
// returned since `since_ms` (to the minute: from the start of its minute).
// -> reality_check_answer
struct reality_check_query {
  int64_t since_ms = 0;
};

// -> wallet_balance
struct balance_query {};

// Newest first, at most `limit` (1..wallet_ledger_max), older than
// `before_seq` when non-zero, from the wallet's memory (its last
// wallet_ledger_max entries). -> transactions_page
struct transactions_query {
  uint32_t limit = 50;
  uint64_t before_seq = 0;
};

// -> bet (own bets only; errc::not_found otherwise)
struct bet_query {
  bet_id bet;
};

// Open or recently settled bets (the last wallet_settled_bets_max), from
// the wallet's memory, newest first. -> bets_page
struct bets_query {
  bool settled = false; // false: open bets; true: settled ones
};

// Pushes the wallet's changes to `watcher` once they are durable: a `bet`
// when one is accepted or settled, and a `wallet_balance` after every change
// of the balances. When the wallet passivates, watchers get
// (watch_ended_atom, user_id) and may watch again. -> wallet_balance
struct watch_cmd {
  caf::actor watcher;
};

struct unwatch_cmd {
  caf::actor watcher;
};

using watch_ended_atom = caf::atom_constant<caf::atom("watchend")>;

// -- replies -----------------------------------------------------------------

struct wallet_receipt {
  std::string transaction_id;
  money available;
  money held;
};

struct wallet_balance {
  money available;
  money held;
};

struct reality_check_answer {
  int64_t interval_minutes = 0; // 0: reality checks are off
  money staked;
  money returned;
};

// The limits in force now and the changes still pending.
struct wallet_limits {
  gambling_limits limits;
};

struct wallet_transaction {
  std::string transaction_id;
  std::string kind; // deposit, withdrawal, stake, stake_returned, payout, refund
  money amount;
  money available_after;
  int64_t at_ms = 0;
  std::string ref;
};

struct payout_ack {
  bet_id bet;
};

// What the wallet's memory holds of a list. `complete`: nothing the query
// asks for is missing; false when older entries have left the memory and
// the page is short of them: the history read model (history.hpp) has them.
struct transactions_page {
  std::vector<wallet_transaction> transactions;
  bool complete = true;
};

struct bets_page {
  std::vector<bet> bets;
  bool complete = true;
};

// -- the entity --------------------------------------------------------------

struct wallet_options {
  // How long the wallet waits for a market's decision per attempt. The saga
  // retries until the market answers: a hold is released only on its "no".
  std::chrono::milliseconds market_timeout{5000};

  // Retry back-off for an unanswered market: doubles from min to max.
  std::chrono::milliseconds retry_min{50};
  std::chrono::milliseconds retry_max{5000};

  // A bettor waits at most this long for an answer; past it they get
  // errc::unavailable and retry with the same request id, while the saga
  // goes on.
  std::chrono::milliseconds answer_timeout{10000};

  // Bets a wallet may have undecided at once; more are refused with
  // limit_exceeded (a client hammering one wallet cannot grow its state).
  uint32_t holds_max = 64;

  // Let a market on this node answer before its decision is durable, the
  // wallet's commit building on the market's event (one disk write fewer
  // per bet). False: every decision waits for the market's write.
  bool early_decisions = true;

  uint32_t snapshot_every = 1000;

  // The most a slip of several legs pays, whatever its lines add up to
  // (minor units; 0: no cap). Singles are bounded by their markets' limits.
  money max_payout{100'000'000};

  // The share a cash-out keeps back (--cashout-margin), and how long a
  // quote lives: 5 s, 10 s when a leg's market is in play.
  cashout_margin margin{5, 100};
  std::chrono::milliseconds quote_life{5000};
  std::chrono::milliseconds quote_life_in_play{10000};

  // The wall clock, in milliseconds since the epoch, of the wallet's events,
  // of its daily deposit limit's UTC day and of self-exclusion. Empty: the
  // system clock. A test sets it to cross a UTC midnight, or never to.
  std::function<int64_t()> clock_ms;

  // The history read model (history.hpp), when the platform keeps one: a
  // resettlement of a bet no longer in memory reads the bet there. Without
  // it such a resettlement waits in its market's outbox.
  wallet_history* history = nullptr;
};

// The activate function for the directory's "wallet" kind.
activate_fn wallet_activator(std::shared_ptr<journal> j, wallet_options options = {});

// A fingerprint of a request's body, to tell a retry from a reused id.
uint64_t body_hash(std::initializer_list<std::string_view> parts);

// -- CAF inspection ----------------------------------------------------------

template <class I>
typename I::result_type inspect(I& f, deposit_cmd& x) {
  return f(caf::meta::type_name("wager::deposit_cmd"), x.request, x.amount);
}
template <class I>
typename I::result_type inspect(I& f, withdraw_cmd& x) {
  return f(caf::meta::type_name("wager::withdraw_cmd"), x.request, x.amount);
}
template <class I>
typename I::result_type inspect(I& f, place_bet_cmd& x) {
  return f(caf::meta::type_name("wager::place_bet_cmd"), x.request, x.market, x.selection,
           x.stake, x.asked, x.accept, x.each_way);
}
template <class I>
typename I::result_type inspect(I& f, leg_request& x) {
  return f(caf::meta::type_name("wager::leg_request"), x.market, x.selection, x.asked);
}
template <class I>
typename I::result_type inspect(I& f, place_slip_cmd& x) {
  return f(caf::meta::type_name("wager::place_slip_cmd"), x.request, x.type, x.legs, x.stake,
           x.accept, x.each_way);
}
template <class I>
typename I::result_type inspect(I& f, leg_result_cmd& x) {
  return f(caf::meta::type_name("wager::leg_result_cmd"), x.bet, x.market, x.result,
           x.dead_heat.n, x.dead_heat.d, x.rule4, x.round, x.resettled);
}
template <class I>
typename I::result_type inspect(I& f, cashout_quote_query& x) {
  return f(caf::meta::type_name("wager::cashout_quote_query"), x.bet);
}
template <class I>
typename I::result_type inspect(I& f, cashout_quote& x) {
  return f(caf::meta::type_name("wager::cashout_quote"), x.bet, x.amount, x.quote_id,
           x.expires_at_ms);
}
template <class I>
typename I::result_type inspect(I& f, cashout_cmd& x) {
  return f(caf::meta::type_name("wager::cashout_cmd"), x.request, x.bet, x.quote_id,
           x.fraction_bp);
}
template <class I>
typename I::result_type inspect(I& f, credit_cashout_cmd& x) {
  return f(caf::meta::type_name("wager::credit_cashout_cmd"), x.bet, x.request, x.stake,
           x.amount);
}
template <class I>
typename I::result_type inspect(I& f, credit_payout_cmd& x) {
  return f(caf::meta::type_name("wager::credit_payout_cmd"), x.bet, x.outcome, x.amount,
           x.round, x.result);
}
template <class I>
typename I::result_type inspect(I& f, set_limits_cmd& x) {
  return f(caf::meta::type_name("wager::set_limits_cmd"), x.daily_deposit_limit, x.deposit,
           x.loss, x.time_out_until_ms, x.self_exclude_until_ms, x.reality_check_minutes);
}

template <class I>
typename I::result_type inspect(I& f, reality_check_query& x) {
  return f(caf::meta::type_name("wager::reality_check_query"), x.since_ms);
}

template <class I>
typename I::result_type inspect(I& f, reality_check_answer& x) {
  return f(caf::meta::type_name("wager::reality_check_answer"), x.interval_minutes, x.staked,
           x.returned);
}

template <class I>
typename I::result_type inspect(I& f, limits_query&) {
  return f(caf::meta::type_name("wager::limits_query"));
}
template <class I>
typename I::result_type inspect(I& f, watch_cmd& x) {
  return f(caf::meta::type_name("wager::watch_cmd"), x.watcher);
}
template <class I>
typename I::result_type inspect(I& f, unwatch_cmd& x) {
  return f(caf::meta::type_name("wager::unwatch_cmd"), x.watcher);
}
template <class I>
typename I::result_type inspect(I& f, balance_query&) {
  return f(caf::meta::type_name("wager::balance_query"));
}
template <class I>
typename I::result_type inspect(I& f, transactions_query& x) {
  return f(caf::meta::type_name("wager::transactions_query"), x.limit, x.before_seq);
}
template <class I>
typename I::result_type inspect(I& f, bet_query& x) {
  return f(caf::meta::type_name("wager::bet_query"), x.bet);
}
template <class I>
typename I::result_type inspect(I& f, bets_query& x) {
  return f(caf::meta::type_name("wager::bets_query"), x.settled);
}
template <class I>
typename I::result_type inspect(I& f, wallet_receipt& x) {
  return f(caf::meta::type_name("wager::wallet_receipt"), x.transaction_id, x.available,
           x.held);
}
template <class I>
typename I::result_type inspect(I& f, wallet_balance& x) {
  return f(caf::meta::type_name("wager::wallet_balance"), x.available, x.held);
}
template <class I>
typename I::result_type inspect(I& f, wallet_limits& x) {
  auto& l = x.limits;
  return f(caf::meta::type_name("wager::wallet_limits"), l.deposit, l.loss, l.pending_deposit,
           l.pending_loss, l.pending_effective_ms, l.time_out_until_ms, l.self_exclude_until_ms,
           l.reality_check_minutes);
}
template <class I>
typename I::result_type inspect(I& f, wallet_transaction& x) {
  return f(caf::meta::type_name("wager::wallet_transaction"), x.transaction_id, x.kind,
           x.amount, x.available_after, x.at_ms, x.ref);
}
template <class I>
typename I::result_type inspect(I& f, transactions_page& x) {
  return f(caf::meta::type_name("wager::transactions_page"), x.transactions, x.complete);
}
template <class I>
typename I::result_type inspect(I& f, bets_page& x) {
  return f(caf::meta::type_name("wager::bets_page"), x.bets, x.complete);
}
template <class I>
typename I::result_type inspect(I& f, payout_ack& x) {
  return f(caf::meta::type_name("wager::payout_ack"), x.bet);
}

// The messages above that may cross nodes (runtime/message_types.hpp).
inline constexpr message_types wallet_messages{
  message_type<deposit_cmd>{"wager::deposit_cmd"},
  message_type<withdraw_cmd>{"wager::withdraw_cmd"},
  message_type<place_bet_cmd>{"wager::place_bet_cmd"},
  message_type<place_slip_cmd>{"wager::place_slip_cmd"},
  message_type<leg_result_cmd>{"wager::leg_result_cmd"},
  message_type<credit_payout_cmd>{"wager::credit_payout_cmd"},
  message_type<cashout_quote_query>{"wager::cashout_quote_query"},
  message_type<cashout_quote>{"wager::cashout_quote"},
  message_type<cashout_cmd>{"wager::cashout_cmd"},
  message_type<credit_cashout_cmd>{"wager::credit_cashout_cmd"},
  message_type<set_limits_cmd>{"wager::set_limits_cmd"},
  message_type<limits_query>{"wager::limits_query"},
  message_type<reality_check_query>{"wager::reality_check_query"},
  message_type<reality_check_answer>{"wager::reality_check_answer"},
  message_type<watch_cmd>{"wager::watch_cmd"},
  message_type<unwatch_cmd>{"wager::unwatch_cmd"},
  message_type<balance_query>{"wager::balance_query"},
  message_type<transactions_query>{"wager::transactions_query"},
  message_type<bet_query>{"wager::bet_query"},
  message_type<bets_query>{"wager::bets_query"},
  message_type<wallet_receipt>{"wager::wallet_receipt"},
  message_type<wallet_balance>{"wager::wallet_balance"},
  message_type<wallet_limits>{"wager::wallet_limits"},
  message_type<wallet_transaction>{"wager::wallet_transaction"},
  message_type<payout_ack>{"wager::payout_ack"},
  message_type<transactions_page>{"wager::transactions_page"},
  message_type<bets_page>{"wager::bets_page"},
};

} // namespace wager
