#pragma once

// A wallet's state and the events that change it. The state is a pure fold
// over the events (apply), so a wallet rebuilt from its journal equals the
// wallet that wrote it, and tests can replay without actors.
//
// Balances: `available` can be staked or withdrawn; `held` is staked on bets
// the market has not yet decided. `available` goes below zero only when a
// rolled-back result takes back a payout already spent; the wallet then
// takes no bet and no withdrawal until deposits or payouts bring it back.
// Lifetime totals make the wallet's own invariant checkable after every
// event:
//   available + held == deposited - withdrawn - staked + credited
// where staked counts stakes committed to accepted bets and credited counts
// payouts and refunds received from settled markets.

#include "wager/actors/bet.hpp"
#include "wager/actors/gambling_limits.hpp"
#include "wager/actors/ids.hpp"
#include "wager/actors/money.hpp"
#include "wager/persistence/event.hpp"
#include "wager/runtime/errors.hpp"
#include "wager/runtime/ring_queue.hpp"

#include <boost/json/value.hpp>

#include <cstdint>
#include <deque>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <unordered_map>
#include <variant>

namespace wager {

// -- events ------------------------------------------------------------------

struct deposited {
  request_id request;
  money amount;
  uint64_t body_hash = 0; // fingerprint of the request, for request_id_reused
};

struct withdrawn {
  request_id request;
  money amount;
  uint64_t body_hash = 0;
};

// A leg of a slip as the bettor asked for it.
struct leg_request {
  market_id market;
  selection_id selection;
  price asked;

  bool operator==(const leg_request&) const = default;
};

// A leg as its market accepted it.
struct leg_terms {
  price accepted;
  ratio place_fraction; // each-way: the market's terms
};

// The bet saga starts: the stake moves from available to held. A slip
// (several legs) holds stake x lines, and asks every leg's market.
struct stake_held {
  request_id request;
  bet_id bet;
  market_id market;
  selection_id selection;
  money stake;
  price asked;
  accept_policy accept = accept_policy::exact;
  uint64_t body_hash = 0; // fingerprint of the request, for request_id_reused
  bool each_way = false;  // twice `stake` is held: a win and a place half
  // A slip: its type and legs (market, selection and asked are the first
  // leg's). Empty for a single.
  slip_type type = slip_type::single;
  std::vector<leg_request> legs;

  bool is_slip() const { return !legs.empty(); }
  // What is held: stake x lines, twice it each-way.
  money amount() const {
    auto lines = is_slip() ? line_count(type, legs.size()) : 1;
    return money{stake.minor * static_cast<int64_t>(lines) * (each_way ? 2 : 1)};
  }
};

// The market accepted (every leg's market, for a slip): the stake leaves
// the wallet for the bet.
struct stake_committed {
  bet_id bet;
  price accepted;
  ratio place_fraction; // each-way: the market's fraction when it accepted
  std::vector<leg_terms> legs; // a slip's, in the order of its legs
  money max_payout;            // a slip's cap; 0: none
};

// The market said no: the stake goes back to available. For a slip, one
// leg's market said no, and `release` names the markets of the other legs,
// which may have taken theirs and are told to forget them.
struct hold_released {
  bet_id bet;
  errc reason = errc::none;
  std::optional<price> current; // with price_changed
  std::vector<std::string> release;
};

// Every market of a released slip has forgotten its leg.
struct legs_released {
  bet_id bet;
};

// A leg's market resulted it (or withdrew its runner, or cancelled it), in
// settlement round `round` of that market; `open`: the market rolled its
// result back. Recorded on a settled slip too (the other legs of a lost
// accumulator), so a slip reopened by a rollback knows them.
struct leg_settled {
  bet_id bet;
  uint32_t leg = 0;
  leg_result result = leg_result::lost;
  ratio dead_heat;
  int32_t rule4 = 0;
  uint32_t round = 0;
};

// A settled market paid this bet (won: stake x price, void: stake, lost: 0),
// in its settlement round `round` (a slip: the round of the leg that
// settled it).
struct payout_credited {
  bet_id bet;
  bet_status outcome = bet_status::lost;
  money amount;
  uint32_t round = 0;
  leg_result result = leg_result::open; // a single's: its selection's result; open: unknown
};

// A market rolled back the result that settled this bet (or cancelled it
// after the result, or resettled it): `amount`, what that result credited,
// leaves the wallet (available may go below zero), and the bet is open
// again. On a bet still open (the payout never reached it) only the round
// is recorded, so the payout, should it come late, is known as stale.
struct payout_reversed {
  bet_id bet;
  money amount;
  uint32_t round = 0;
};

// A cash-out (request `request`) paid `amount` for `stake` of the bet's
// running stake (a line's, each half's each-way): the stake leaves the bet,
// the amount reaches the wallet. A bet cashed out in full is settled as
// cashed_out. The bet may have settled meanwhile (a single's market pays its
// result and the cash-out it took before it through one outbox): the amount
// is credited all the same.
struct cashed_out {
  bet_id bet;
  request_id request;
  money stake;
  money amount;
  uint64_t body_hash = 0; // the client's request, when the wallet heard it
};

// A settled bet that had left the memory (wallet_settled_bets_max), as the
// history read model kept it, back among the settled bets: a resettlement
// of it follows in the same append.
struct bet_restored {
  bet restored;
};

// Safer-gambling limits: the whole new value (in force and pending), as the
// wallet decided it. Version 1 carried a daily deposit limit and a
// self-exclusion end only; it reads as those.
struct limits_set {
  gambling_limits limits;
};

using wallet_event = std::variant<deposited, withdrawn, stake_held, stake_committed,
                                  hold_released, payout_credited, limits_set, legs_released,
                                  leg_settled, cashed_out, payout_reversed, bet_restored>;

event encode(const wallet_event& e);
// nullopt for an event this release does not know (a programmer error in
// the caller's eyes: the journal upcasts every known type).
std::optional<wallet_event> decode_wallet_event(const event& e);

// -- state -------------------------------------------------------------------

enum class ledger_kind : uint8_t {
  deposit,
  withdrawal,
  stake,
  stake_returned,
  payout,
  refund,
  cashout,
  reversal, // a payout taken back by a rolled-back result
};

std::string_view to_string(ledger_kind kind);

struct ledger_entry {
  uint64_t seq = 0; // the event's seq; transaction id "t<seq>"
  ledger_kind kind = ledger_kind::deposit;
  money amount;     // positive: what moved, in the direction `kind` says
  money available_after;
  int64_t at_ms = 0;
  std::string ref;  // bet id for stake, payout and refund entries
};

// The first answer to a request, kept so a retry gets it again.
struct request_entry {
  uint64_t body_hash = 0;
  std::string bet;      // for a bet: its id; the answer follows from the bet
  std::string response; // serialized JSON; empty while a bet is undecided
};

// Bounds on what a wallet keeps in memory. Older entries stay in the
// journal; the API serves the recent window.
inline constexpr size_t wallet_ledger_max = 1000;
inline constexpr size_t wallet_settled_bets_max = 1000;
inline constexpr size_t wallet_requests_max = 1024;

struct wallet_state {
  uint64_t seq = 0;
  money available;
  money held;

  money deposited;
  money withdrawn;
  money staked;
  money credited;

  gambling_limits limits;  // as last set; in_force(limits, now) applies what is due
  activity_log activity;   // deposits, stakes and returns of the last 30 days

  std::map<std::string, stake_held> holds;    // undecided bets, by bet id
  std::map<std::string, bet> open_bets;       // accepted, unsettled
  // Released slips whose other legs' markets are still to forget them:
  // bet id -> those markets.
  std::map<std::string, std::vector<std::string>> releasing;
  // The cash-outs applied (cashout_key: "c/<bet>/<request>") of the bets
  // still in memory, so a credit repeated by a market's outbox is known.
  std::set<std::string> cashouts;
  ring_queue<bet> settled_bets;               // most recent last, bounded
  ring_queue<ledger_entry> ledger;            // most recent last, bounded
  std::unordered_map<std::string, request_entry> requests;
  ring_queue<std::string> request_order;      // eviction order for `requests`

  // A bet by id, open or recently settled; nullptr if unknown here.
  const bet* find_bet(const std::string& id) const;
  bet* find_bet(const std::string& id) {
    return const_cast<bet*>(std::as_const(*this).find_bet(id));
  }
};

// Folds one event in. `at_ms` is when it was written.
void apply(wallet_state& s, const wallet_event& e, uint64_t seq, int64_t at_ms);

// The wallet's invariants; aborts (WAGER_ASSERT) when one is broken.
void check_invariants(const wallet_state& s);

// The first answer to a deposit or withdrawal, as stored and replayed:
// {"transaction_id","available","held"}.
std::string transaction_response(uint64_t seq, const wallet_state& after);

// A refusal as stored and replayed: {"error","message","current_price"?,"field"?}.
std::string error_json(errc code, std::string_view message, std::optional<price> current,
                       std::string_view field = {});

// A bet as stored in snapshots and first answers.
boost::json::object bet_to_json(const bet& b);
// A slip's part of that: {type, legs: [{market, selection, price, result,
// place_fraction?, dead_heat?, rule4?}], max_payout?}; the history read
// model keeps it as one column. slip_from_json fills b's and says whether
// it could.
boost::json::object slip_to_json(const bet& b);
bool slip_from_json(const boost::json::object& o, bet& b);
std::optional<bet> bet_from_json(const boost::json::value& v);

// Snapshots: the whole state as JSON and back.
// Version 2 added the safer-gambling limits and the activity of the rolling
// periods; a version-1 snapshot is ignored and the wallet replays its events,
// which rebuilds both.
inline constexpr uint32_t wallet_snapshot_version = 2;
boost::json::value to_json(const wallet_state& s);
std::optional<wallet_state> wallet_state_from_json(const boost::json::value& v);

} // namespace wager
