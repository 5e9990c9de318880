#pragma once

// The money audit behind `wagerctl verify`: replays every wallet and market
// stream of a journal with the pure folds (wallet_state, market_state) and
// checks, without trusting any actor:
//
//   - per wallet: held never negative, available never taken below zero by
//     a stake or a withdrawal (only a reversed payout may); held equals the
//     sum of open holds; balances equal the wallet's lifetime flows;
//   - globally: deposits - withdrawals == sum(available + held) + house
//     result, where house result = stakes committed - payouts credited;
//   - per bet: every stake_committed matches exactly one bet_accepted (bet,
//     user, market, stake, price) and vice versa; an accepted bet the wallet
//     has not committed yet is fine only while the wallet still holds it;
//   - per payout: it matches the market's result (settle_line: outcome and
//     amount), at most once per bet; payouts a settled market still has in
//     its outbox are "in flight", not violations, but a payout the market
//     counts as acknowledged must have been credited.
//
// Memory: streams are fed page by page; what the audit keeps between streams
// is a few totals, one name per wallet and market, and one small record per
// bet (the join of the two sides of a bet needs both, whichever comes
// first). Prices, rejections, ledger lines and stored requests are never
// kept. A stream's own fold lives only while that stream is fed.

#include "wager/actors/money.hpp"
#include "wager/persistence/backup.hpp"
#include "wager/persistence/event.hpp"

#include <boost/json/object.hpp>
#include <caf/expected.hpp>

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace wager {

class journal;

// One thing the audit found wrong. `code` is stable, for scripts and tests:
//   undecodable_event      an event of a wallet or market the folds cannot read
//   seq_gap                a stream's events are not contiguous from 1
//   invalid_amount         a deposit, withdrawal, stake or payout out of range
//   negative_balance       held below zero, or available below zero after a
//                          stake or a withdrawal
//   reversal_invalid       a reversal of a payout the bet was not paid, or a
//                          leg result the slip has had (its round or an
//                          older one)
//   wallet_invariant       held != sum of holds, or balances != lifetime flows
//   duplicate_bet          one bet id held twice, or accepted twice
//   unknown_hold           a commit or release of a stake that is not held
//   illegal_transition     a market status change its lifecycle refuses
//   resulted_twice         a second result for one market
//   payout_without_bet     a payout for a bet the wallet has no open stake on
//   bet_settled_twice      a second payout for one bet
//   commit_without_acceptance  a committed stake no market accepted
//   commit_mismatch        a bet whose two sides disagree (user, market,
//                          stake or price)
//   released_accepted_bet  a wallet released a stake its market accepted
//   acceptance_without_hold    a market accepted a bet no wallet staked
//   payout_before_result   a payout from a market that has no result
//   payout_mismatch        a payout that is not what the result owes
//   payout_lost            a payout the market counts as delivered that the
//                          wallet never credited
//   cashout_invalid        a market cashed out a bet it does not hold running
//   cashout_mismatch       a cash-out's amount is not what its price and
//                          margin make, or the wallet was credited another
//   cashout_without_market a single's cash-out credited that its market
//                          never took
//   totals_mismatch        the global money equation does not hold
struct audit_violation {
  std::string code;
  std::string stream; // the stream of the event at fault; empty for totals
  uint64_t seq = 0;   // that event's seq; 0 when no single event is at fault
  std::string message;

  // "wallet/u1 seq 7: bet_settled_twice: ..."
  std::string to_string() const;
};

struct ledger_totals {
  money deposits;    // sum of deposited
  money withdrawals; // sum of withdrawn
  money available;   // sum over wallets, at the end of their streams
  money held;
  money stakes;      // stakes committed to accepted bets
  money payouts;     // payouts and refunds credited

  money house_result() const { return stakes - payouts; }
};

struct ledger_report {
  uint64_t wallets = 0;
  uint64_t markets = 0;
  uint64_t events = 0;          // wallet and market events audited
  uint64_t bets_accepted = 0;   // by markets (a slip: each leg)
  uint64_t legs_released = 0;   // legs of refused slips their markets gave up
  uint64_t bets_committed = 0;  // by wallets
  uint64_t bets_pending = 0;    // accepted, the wallet still holds the stake
  uint64_t holds_open = 0;      // stakes held at the end, decided or not
  uint64_t bets_settled = 0;    // payouts credited and not reversed
  uint64_t payouts_reversed = 0; // payouts taken back by rolled-back results
  uint64_t markets_resulted = 0;
  uint64_t payouts_in_flight = 0; // owed by a settled market, not yet credited
  money payouts_in_flight_amount;
  ledger_totals totals;

  // The first violations_max in the order found; the rest are counted.
  // Within a stream, in seq order; cross-stream checks come last.
  static constexpr size_t violations_max = 100;
  std::vector<audit_violation> violations;
  uint64_t violations_dropped = 0;

  bool ok() const noexcept { return violations.empty(); }
};

// The report as the JSON summary `wagerctl verify` prints (money in minor
// units): {"ok","wallets","markets","events","bets":{...},"money":{...},
// "payouts_in_flight":{...},"violations","first_violation"?}.
boost::json::object to_json(const ledger_report& report);

// The audit, fed stream by stream. It is also a journal_visitor, so
// verify_journal runs it inside its own consistent read of the journal:
// integrity and money checked over the same moment.
class ledger_audit final : public journal_visitor {
public:
  ledger_audit();
  ~ledger_audit() override;
  ledger_audit(const ledger_audit&) = delete;
  ledger_audit& operator=(const ledger_audit&) = delete;

  // Feeds the next page of `stream` (seq order). All pages of a stream come
  // one after the other; streams of other kinds than wallet and market are
  // ignored. REQUIRES: close() not called yet.
  void add(const std::string& stream, const std::vector<recorded_event>& page);

  // Ends the audit (cross-stream checks, totals) and returns the report.
  // Calling it again returns the same report.
  const ledger_report& close();

  // The report so far (complete after close()).
  const ledger_report& report() const;

  // journal_visitor: the same, and every violation is also added to the
  // verify report as "money: <violation>".
  void on_events(const std::string& stream, const std::vector<recorded_event>& page,
                 verify_report& report) override;
  void finish(verify_report& report) override;

private:
  struct impl;
  std::unique_ptr<impl> impl_;
  size_t forwarded_ = 0; // violations already copied into a verify_report
  void forward(verify_report& report);
};

// Audits every market, then every wallet stream of `j`, reading page by
// page. Each read sees the journal as it is then, so run it on a journal no
// one writes to (or use verify_journal with a ledger_audit, which reads one
// consistent moment). Fails only when the journal cannot be read.
caf::expected<ledger_report> audit_ledger(journal& j);

} // namespace wager
