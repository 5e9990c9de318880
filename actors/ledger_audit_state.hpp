#pragma once

// The inside of ledger_audit (ledger_audit.hpp), shared by its two source
// files: the stream being replayed and the per-bet join. Not an interface:
// include ledger_audit.hpp instead.

#include "wager/actors/ledger_audit.hpp"
#include "wager/actors/market_state.hpp"
#include "wager/actors/wallet_state.hpp"

#include <algorithm>
#include <cstdint>
#include <limits>
#include <map>
#include <string>
#include <unordered_map>
#include <vector>

namespace wager {

namespace audit_detail {

enum class stream_kind : uint8_t { none, wallet, market, other };

// How far the wallet side of a bet got.
enum class wallet_step : uint8_t {
  none,      // no wallet staked it (yet: wallets may come after markets)
  held,      // stake held, no decision applied
  committed, // the market accepted and the wallet committed
  released,  // the wallet gave the stake back (the market said no)
};

inline constexpr uint32_t no_index = std::numeric_limits<uint32_t>::max();

// Both sides of one bet, filled in whichever order the streams come. Users
// and markets are indexes into the audit's name tables, so a bet costs its
// id and about a hundred bytes.
struct bet_record {
  // The market's side; accepted_seq 0: no market accepted the bet.
  uint64_t accepted_seq = 0;
  uint32_t accepted_market = no_index;
  uint32_t accepted_user = no_index;
  money accepted_stake;
  price accepted_price;
  bool accepted_each_way = false;
  // The result, once the accepting market has one (resulted_seq != 0).
  uint64_t resulted_seq = 0;
  uint64_t ack_seq = 0; // the payouts_acknowledged naming this bet
  bet_status owed_outcome = bet_status::lost;
  money owed;
  bool in_outbox = false;
  uint32_t owed_round = 0; // the market's settlement round of what it owes
  // The wallet's side.
  wallet_step step = wallet_step::none;
  uint32_t wallet_user = no_index;
  uint32_t wallet_market = no_index;
  money wallet_stake;
  bool wallet_each_way = false;
  price wallet_price;      // with committed
  uint64_t wallet_seq = 0; // the hold, commit or release
  uint64_t payout_seq = 0; // 0: no payout credited
  bet_status paid_outcome = bet_status::lost;
  money paid;
  uint32_t paid_round = 0; // the round of the payout (or reversal) last applied
  // A slip: its legs' markets (the market fields above are its first leg's)
  // and, once committed, the prices its markets took. Its legs' own
  // records are in the audit's `legs`.
  bool slip = false;
  bool release_pending = false; // released; some market yet to forget its leg
  bool cashed_out_full = false; // cashed out in full: no result owes it anything
  std::vector<uint32_t> leg_markets;
  std::vector<price> leg_prices;
};

// One leg of a slip in one market, both sides: the market's acceptance and
// what its result owes the leg, and the wallet's record of that result.
struct leg_record {
  uint64_t accepted_seq = 0;
  uint32_t accepted_user = no_index;
  money accepted_stake;
  price accepted_price;
  bool accepted_each_way = false;
  uint64_t released_seq = 0; // the market's leg_released
  uint64_t owed_seq = 0;     // the result, withdrawal or cancellation that decides it
  leg_outcome owed;
  bool in_outbox = false;
  uint32_t owed_round = 0;
  uint64_t wallet_seq = 0;   // the wallet's leg_settled
  leg_outcome recorded;
  uint32_t recorded_round = 0;
};

// A cash-out, both sides, by cashout_key: what a single's market owes for
// it, and what the wallet was paid.
struct cashout_record {
  uint64_t owed_seq = 0; // the market's bet_cashed_out
  uint32_t market = no_index;
  money owed;
  money owed_stake;
  bool in_outbox = false;
  uint64_t paid_seq = 0; // the wallet's cashed_out
  uint32_t user = no_index;
  money paid;
  money paid_stake;
  bool slip = false;
};

// The key of a leg's record: "<bet>@<market index>".
// Whether a market's outbox still owes a round newer than the one the
// wallet applied (`applied`; 0: recorded before rounds were kept, which
// was a first round): a rollback or a resettlement on its way.
inline bool newer_round_owed(bool in_outbox, uint32_t applied, uint32_t owed) {
  return in_outbox && std::max<uint32_t>(applied, 1) < owed;
}

inline std::string leg_key(const std::string& bet, uint32_t market) {
  return bet + "@" + std::to_string(market);
}

struct wallet_fold {
  wallet_state state;
  uint32_t user = no_index;
  bool broken = false;           // a seq gap: the rest is not audited
  bool negative = false;         // below zero after the last event
  bool invariant_broken = false; // the wallet invariant failed at the last event
};

struct market_fold {
  market_state state;
  uint32_t index = no_index;
  uint64_t resulted_seq = 0;
  std::map<std::string, uint64_t> withdrawn_seq; // non-runner -> its withdrawal
  std::map<std::string, uint64_t> cancelled_seq; // cancelled bet -> its cancellation
  bool broken = false;
};

// The index of `name` in `names`, adding it when new.
inline uint32_t intern(std::vector<std::string>& names,
                       std::unordered_map<std::string, uint32_t>& index,
                       const std::string& name) {
  auto [i, added] = index.emplace(name, static_cast<uint32_t>(names.size()));
  if (added)
    names.push_back(name);
  return i->second;
}

} // namespace audit_detail

struct ledger_audit::impl {
  ledger_report report;
  bool closed = false;

  // Name tables: bets refer to users and markets by index.
  std::vector<std::string> users;
  std::unordered_map<std::string, uint32_t> user_index;
  std::vector<std::string> markets;
  std::unordered_map<std::string, uint32_t> market_index;

  std::unordered_map<std::string, audit_detail::bet_record> bets; // by bet id
  std::unordered_map<std::string, audit_detail::leg_record> legs; // by leg_key
  std::unordered_map<std::string, audit_detail::cashout_record> cashouts; // by cashout_key

  audit_detail::stream_kind current = audit_detail::stream_kind::none;
  std::string current_stream;
  audit_detail::wallet_fold wallet;
  audit_detail::market_fold market;

  void flag(std::string code, const std::string& stream, uint64_t seq, std::string message);

  void add(const std::string& stream, const std::vector<recorded_event>& page);
  void begin(const std::string& stream);
  void end_stream();

  void wallet_event_in(const recorded_event& e);
  bool wallet_precheck(const wallet_event& ev, uint64_t seq);
  bool payout_precheck(const payout_credited& p, uint64_t seq);
  void record_wallet_side(const wallet_event& ev, uint64_t seq);
  void check_wallet(uint64_t seq, bool spent);
  void end_wallet();

  void market_event_in(const recorded_event& e);
  bool market_precheck(const market_event& ev, uint64_t seq);
  void end_market();

  // After the last stream: both sides of every bet, then the totals.
  void cross_check();
  void cross_check_slip(const std::string& id, const audit_detail::bet_record& r,
                        std::vector<audit_violation>& found);
};

} // namespace wager
