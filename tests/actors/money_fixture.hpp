#pragma once

// Shared by the money-core suites: an embedded platform on a real SQLite
// journal in a temporary directory (restartable on the same data dir),
// blocking forms of the calls the tests make, and an audit that folds the
// journal itself (not the actors' memory) and checks the money invariants:
//   - per wallet: held never negative, available never taken below zero by
//     a stake or a withdrawal (a reversed payout may), held = sum of open holds,
//     available + held = deposited - withdrawn - staked + credited;
//   - over all wallets: deposits - withdrawals = sum(available + held) + house,
//     where house = staked - credited;
//   - the market's accepted bets are exactly the wallets' committed stakes
//     (same user, selection, stake and price), a hold is released only when
//     the market did not accept, and a hold released for a market reason
//     matches the market's recorded rejection;
//   - every payout matches the market's result (won: floor(stake x price),
//     lost: 0, void: stake), at most once per bet;
//   - no selection's liability exceeds its market's max_liability.

#include "wager/actors/market_state.hpp"
#include "wager/actors/platform.hpp"
#include "wager/actors/wallet_state.hpp"
#include "wager/persistence/journal.hpp"
#include "wager/runtime/errors.hpp"

#include "support/temp_dir.hpp"
#include "support/wait.hpp"

#include <chrono>
#include <future>
#include <map>
#include <memory>
#include <set>
#include <stdexcept>
#include <string>
#include <vector>

namespace wager::test {

using namespace std::chrono_literals;

// Options for a small test platform: two scheduler threads (the machine has
// two cores) and few shards and partitions.
inline platform_options test_platform_options(const std::string& data_dir) {
  platform_options o;
  o.data_dir = data_dir;
  o.runtime.scheduler_threads = 2;
  o.shards = 16;
  o.directory_partitions = 2;
  // Settlement retries quickly, so tests waiting for payouts wait less.
  o.market.outbox_retry = 50ms;
  o.wallet.retry_max = 500ms;
  return o;
}

inline std::unique_ptr<platform> start_or_throw(const platform_options& options) {
  auto p = platform::start(options);
  if (!p)
    throw std::runtime_error("platform did not start: " + message_of(p.error()));
  return std::move(*p);
}

// A platform on a data dir that outlives it, so a test can restart it.
class money_world {
public:
  money_world() : options_(test_platform_options(dir_.str())) { start(); }
  explicit money_world(platform_options options) : options_(std::move(options)) {
    options_.data_dir = dir_.str();
    start();
  }

  platform& p() { return *platform_; }
  platform_options& options() { return options_; }
  const temp_dir& dir() const { return dir_; }

  void start() { platform_ = start_or_throw(options_); }
  void stop() { platform_.reset(); }
  void restart() {
    stop();
    start();
  }

private:
  temp_dir dir_;
  platform_options options_;
  std::unique_ptr<platform> platform_;
};

// Wall-clock milliseconds since the epoch, as the wallet's limits use.
inline int64_t wall_ms() {
  using namespace std::chrono;
  return duration_cast<milliseconds>(system_clock::now().time_since_epoch()).count();
}

// -- blocking calls -----------------------------------------------------------

inline market_definition two_way_market(const std::string& id, int32_t home, int32_t away,
                                        int64_t max_stake = 1'000'000,
                                        int64_t max_liability = 100'000'000,
                                        int64_t in_play_delay_ms = 0) {
  market_definition d;
  d.id = market_id{id};
  d.event = "Home v Away";
  d.name = "Match result";
  d.selections = {{selection_id{"home"}, "Home", price{home}},
                  {selection_id{"away"}, "Away", price{away}}};
  d.limits = {money{max_stake}, money{max_liability}};
  d.in_play_delay_ms = in_play_delay_ms;
  return d;
}

inline caf::expected<market_view> create_market(platform& p, market_definition d) {
  return await<market_view>([&](auto done) { p.create_market(d, done); });
}

inline caf::expected<market_view> set_status(platform& p, const std::string& market,
                                             market_status status) {
  return await<market_view>(
    [&](auto done) { p.set_market_status(market_id{market}, status, done); });
}

inline caf::expected<market_view> set_price(platform& p, const std::string& market,
                                            const std::string& selection, int32_t hundredths) {
  return await<market_view>([&](auto done) {
    p.set_prices(market_id{market}, {{selection, price{hundredths}}}, done);
  });
}

inline caf::expected<market_view> settle(platform& p, const std::string& market,
                                         std::vector<std::string> winners) {
  return await<market_view>(
    [&](auto done) { p.settle_market(market_id{market}, winners, done); });
}

inline caf::expected<market_view> void_market(platform& p, const std::string& market) {
  return await<market_view>([&](auto done) { p.void_market(market_id{market}, done); });
}

inline caf::expected<market_view> get_market(platform& p, const std::string& market) {
  return await<market_view>([&](auto done) { p.get_market(market_id{market}, done); });
}

// Creates a two-way market and opens it; throws when either fails.
inline void open_two_way(platform& p, market_definition d) {
  auto id = d.id.value;
  if (auto v = create_market(p, std::move(d)); !v)
    throw std::runtime_error("create_market " + id + ": " + message_of(v.error()));
  if (auto v = set_status(p, id, market_status::open); !v)
    throw std::runtime_error("open " + id + ": " + message_of(v.error()));
}

inline caf::expected<wallet_receipt> deposit(platform& p, const std::string& user,
                                             const std::string& request, int64_t amount) {
  return await<wallet_receipt>(
    [&](auto done) { p.deposit(user_id{user}, request_id{request}, money{amount}, done); });
}

inline caf::expected<wallet_receipt> withdraw(platform& p, const std::string& user,
                                              const std::string& request, int64_t amount) {
  return await<wallet_receipt>(
    [&](auto done) { p.withdraw(user_id{user}, request_id{request}, money{amount}, done); });
}

inline place_bet_cmd bet_cmd(const std::string& request, const std::string& market,
                             const std::string& selection, int64_t stake, int32_t asked,
                             accept_policy accept = accept_policy::exact) {
  return place_bet_cmd{request_id{request}, market_id{market}, selection_id{selection},
                       money{stake}, price{asked}, accept};
}

inline caf::expected<bet> place(platform& p, const std::string& user, place_bet_cmd cmd) {
  return await<bet>([&](auto done) { p.place_bet(user_id{user}, cmd, done); });
}

inline caf::expected<bet> place(platform& p, const std::string& user, const std::string& request,
                                const std::string& market, const std::string& selection,
                                int64_t stake, int32_t asked,
                                accept_policy accept = accept_policy::exact) {
  return place(p, user, bet_cmd(request, market, selection, stake, asked, accept));
}

inline wallet_balance balance(platform& p, const std::string& user) {
  auto b = await<wallet_balance>([&](auto done) { p.balance(user_id{user}, done); });
  if (!b)
    throw std::runtime_error("balance of " + user + ": " + message_of(b.error()));
  return *b;
}

inline caf::expected<bet> get_bet(platform& p, const std::string& user, const std::string& id) {
  return await<bet>([&](auto done) { p.get_bet(user_id{user}, bet_id{id}, done); });
}

inline caf::expected<wallet_limits> set_limits(platform& p, const std::string& user,
                                               set_limits_cmd cmd) {
  return await<wallet_limits>([&](auto done) { p.set_limits(user_id{user}, cmd, done); });
}

inline caf::expected<wallet_limits> limits_of(platform& p, const std::string& user) {
  return await<wallet_limits>([&](auto done) { p.limits(user_id{user}, done); });
}

inline caf::expected<std::vector<wallet_transaction>>
transactions(platform& p, const std::string& user, uint32_t limit = 1000) {
  return await<std::vector<wallet_transaction>>(
    [&](auto done) { p.transactions(user_id{user}, transactions_query{limit, 0}, done); });
}

// The API code of a result: none for a success.
template <class T>
errc code(const caf::expected<T>& r) {
  return r ? errc::none : code_of(r.error());
}

// Whether two bets are the same answer, field by field.
inline bool same_bet(const bet& a, const bet& b) {
  return a.id == b.id && a.market == b.market && a.selection == b.selection
         && a.stake == b.stake && a.accepted == b.accepted && a.status == b.status
         && a.payout == b.payout && a.placed_at_ms == b.placed_at_ms
         && a.settled_at_ms == b.settled_at_ms;
}

// -- the journal audit --------------------------------------------------------

struct committed_stake {
  std::string user;
  std::string market;
  std::string selection;
  money stake;
  price accepted;
};

struct journal_audit {
  std::map<std::string, wallet_state> wallets; // by user
  std::map<std::string, market_state> markets; // by market id
  std::map<std::string, committed_stake> committed; // by bet id, from wallet events
  std::map<std::string, std::string> open_holds;    // bet id -> user
  std::set<std::string> credited;                   // bets with a payout_credited
  std::set<std::string> slips;                      // committed slips (ledger_audit checks them)
  std::map<std::string, money> cashed_stake;        // by bet: the stake its cash-outs took
  std::vector<std::string> violations;

  money deposits, withdrawals, balances, house;

  size_t holds() const { return open_holds.size(); }
  std::string first_violation() const { return violations.empty() ? "" : violations.front(); }
  bool outboxes_empty() const {
    for (auto& [id, m] : markets)
      if (!m.outbox.empty())
        return false;
    return true;
  }
};

// Every stream name of `kind` in the journal.
std::vector<std::string> streams_of(journal& j, const std::string& kind);

// Folds every wallet and market stream of the journal and checks the
// invariants above. `quiescent`: every saga and settlement is expected to be
// finished (no holds, no unpaid payouts, every accepted bet committed).
journal_audit audit_journal(journal& j, bool quiescent);

} // namespace wager::test
