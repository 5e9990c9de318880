#pragma once

// The embedded platform: what an operator's application starts to run Wager
// in its own process. It opens the journal in a data dir, starts the actor
// system and the entity directory with the wallet and market kinds, and
// offers typed asynchronous calls. Each call's callback runs once, on an
// actor thread: it must not block (hand heavy work to your own thread).
//
//   auto p = wager::platform::start({.data_dir = "./data"});
//   if (!p) { /* p.error() */ }
//   (*p)->deposit(user_id{"u1"}, request_id{"r1"}, money{10000},
//                 [](caf::expected<wager::wallet_receipt> r) { ... });
//
// Errors are caf::error values in the wager category: wager::code_of(err)
// gives the API code (runtime/errors.hpp).

#include "wager/actors/history.hpp"
#include "wager/actors/market.hpp"
#include "wager/actors/resume.hpp"
#include "wager/actors/user.hpp"
#include "wager/actors/wallet.hpp"
#include "wager/persistence/journal_options.hpp"
#include "wager/runtime/directory.hpp"
#include "wager/runtime/node_runtime.hpp"

#include <caf/expected.hpp>

#include <functional>
#include <future>
#include <memory>
#include <string>

namespace wager {

class journal;

struct platform_options {
  // Journal, snapshots and keys. Must exist or be creatable.
  std::string data_dir = "./data";

  runtime_options runtime;

  // Shards per cluster (fixed for its life) and directory tuning.
  uint32_t shards = 256;
  uint32_t directory_partitions = 0; // 0: two per scheduler thread

  // Entities resident per kind before the least recently used passivates,
  // and how long an unused one stays.
  size_t wallets_resident_max = 1'000'000;
  size_t markets_resident_max = 100'000;
  std::chrono::milliseconds wallet_idle_timeout = std::chrono::minutes{10};
  std::chrono::milliseconds market_idle_timeout = std::chrono::hours{1};
  // Users and login sessions: small, and a session is used in bursts.
  size_t users_resident_max = 1'000'000;
  size_t sessions_resident_max = 1'000'000;
  std::chrono::milliseconds user_idle_timeout = std::chrono::minutes{5};
  std::chrono::milliseconds session_idle_timeout = std::chrono::minutes{10};
  identity_options identity;

  wallet_options wallet;
  market_options market;

  // Entities left with open work by a crash are activated at start (unless
  // resume_at_start is false: a clustered node resumes the shards it takes,
  // resume_shards, once it knows which they are).
  resume_options resume;
  bool resume_at_start = true;
  // resume_shards: at once and per second, so that recovering a lost
  // node's sagas and settlements does not stall the survivors.
  uint32_t failover_in_flight_max = 32;
  uint32_t failover_per_second_max = 2000;

  // How long a call waits for its entity before it fails with a timeout.
  std::chrono::milliseconds call_timeout{15000};

  // Journal tuning; `path` and `metrics_registry` are set by the platform.
  // `url` (postgresql://...) puts the journal on PostgreSQL instead of
  // <data_dir>/journal.db.
  journal_options journal;

  // The history read model (history.hpp) in <data_dir>/history.db; `path`
  // and `metrics_registry` are set by the platform. Off: lists and bet
  // lookups serve what the wallets hold in memory, their recent entries.
  bool history_enabled = true;
  history_options history;
};

template <class T>
using callback = std::function<void(caf::expected<T>)>;

class platform {
public:
  // Opens the journal and starts everything, or says why it cannot.
  static caf::expected<std::unique_ptr<platform>> start(platform_options options);

  ~platform(); // stop()
  platform(const platform&) = delete;
  platform& operator=(const platform&) = delete;

  // -- markets ---------------------------------------------------------------

  void create_market(market_definition definition, callback<market_view> done);
  void update_market(market_definition definition, callback<market_view> done);
  void set_market_status(const market_id& market, market_status status,
                         callback<market_view> done);
  void set_prices(const market_id& market, std::map<std::string, price> prices,
                  callback<market_view> done);
  void settle_market(const market_id& market, std::vector<std::string> winners,
                     callback<market_view> done);
  // With racing rules: placed, void selections, dead heats, Rule 4.
  void settle_market_result(const market_id& market, market_resulted result,
                            callback<market_view> done);
  void void_market(const market_id& market, callback<market_view> done);
  // Takes the result (or the void) back: every payout it made is reversed,
  // and the market is closed, ready for a new result.
  void unsettle_market(const market_id& market, callback<market_view> done);
  // Voids the bets accepted in [from_ms, to_ms), before or after the result.
  void cancel_bets(const market_id& market, int64_t from_ms, int64_t to_ms,
                   callback<market_view> done);
  // A non-runner: its bets are refunded at once.
  void withdraw_selection(const market_id& market, const selection_id& selection,
                          callback<market_view> done);
  void get_market(const market_id& market, callback<market_view> done);

  // Pushes every change of the market to `on_update` (on an actor thread, in
  // order) until the returned subscription is destroyed. `done` gets the
  // market as it was when the updates start.
  class subscription;
  std::unique_ptr<subscription> subscribe(const market_id& market,
                                          std::function<void(const market_update&)> on_update,
                                          callback<market_view> done);

  // -- wallets and bets ------------------------------------------------------

  void deposit(const user_id& user, request_id request, money amount,
               callback<wallet_receipt> done);
  void withdraw(const user_id& user, request_id request, money amount,
                callback<wallet_receipt> done);
  void place_bet(const user_id& user, place_bet_cmd bet, callback<wager::bet> done);
  // A slip of several legs (an accumulator, a system bet; a single of one
  // leg is place_bet's): wallet.hpp's place_slip_cmd.
  void place_slip(const user_id& user, place_slip_cmd slip, callback<wager::bet> done);
  // Cash-out: a quote (what the bet is worth now, good for a few seconds),
  // and the cash-out itself at a quote (wallet.hpp's cashout_cmd).
  void cashout_quote(const user_id& user, const bet_id& bet, callback<wager::cashout_quote> done);
  void cash_out(const user_id& user, cashout_cmd cmd, callback<wager::bet> done);
  void balance(const user_id& user, callback<wallet_balance> done);
  // A bet of the user's, however long ago it settled.
  void get_bet(const user_id& user, const bet_id& id, callback<wager::bet> done);
  // Every open bet, newest first; or the recently settled ones, the last
  // wallet_settled_bets_max, newest settled first. Every settled bet, paged:
  // history()->settled_bets.
  void bets(const user_id& user, bool settled, callback<std::vector<bet>> done);
  // Every transaction the user ever made, paged as the query says.
  void transactions(const user_id& user, transactions_query query,
                    callback<std::vector<wallet_transaction>> done);
  void set_limits(const user_id& user, set_limits_cmd limits, callback<wallet_limits> done);
  // The limits in force now and the pending changes.
  void limits(const user_id& user, callback<wallet_limits> done);

  // -- users and login sessions ---------------------------------------------
  // State only: hash passwords and verify TOTP codes off the actor threads
  // (user.hpp). `username` names the user entity.

  void create_user(const std::string& username, create_user_cmd cmd,
                   callback<user_credentials> done);
  void user_credentials_of(const std::string& username, callback<user_credentials> done);
  void enrol_mfa(const std::string& username, std::string secret,
                 callback<user_credentials> done);
  void confirm_mfa(const std::string& username, std::string secret,
                   callback<user_credentials> done);
  void create_session(create_session_cmd cmd, callback<session_info> done);
  void check_session(const std::string& session_id, std::string secret_sha256,
                     callback<session_info> done);
  void revoke_session(const std::string& session_id, callback<session_info> done);

  // -- the parts, for code that scripts its own actors -----------------------

  caf::actor_system& system();
  node_runtime& runtime();
  const wager::directory& directory() const;
  wager::journal& journal();
  // The history read model; null when history_enabled is false or the
  // journal has no ordered log (the row layout).
  wallet_history* history();
  wager::metrics& metrics();
  const platform_options& options() const;

  // Activates the entities of `shards` whose last append left work open
  // (markets with payouts to deliver first, then wallets with a bet's stake
  // held), bounded by failover_in_flight_max and failover_per_second_max;
  // each finishes its own work. For shards this node has just taken over.
  // Does not block.
  void resume_shards(std::vector<uint32_t> shards);

  // Stops the directory and every entity (each finishes what it had in
  // flight on the journal), then the journal and the actor system.
  void stop();

private:
  struct impl;
  explicit platform(std::unique_ptr<impl> d);
  // place_bet and place_slip: the wallet's answer, counted.
  void place_any_bet(const user_id& user, caf::message cmd, callback<wager::bet> done);
  std::unique_ptr<impl> impl_;
};

class platform::subscription {
public:
  explicit subscription(caf::actor subscriber) : subscriber_(std::move(subscriber)) {}
  ~subscription();
  subscription(const subscription&) = delete;
  subscription& operator=(const subscription&) = delete;

private:
  caf::actor subscriber_;
};

// The blocking form of any call, for scripts, examples and tests; never
// from inside an actor:
//   auto view = wager::await<market_view>([&](auto done) { p.get_market(id, done); });
template <class T, class Start>
caf::expected<T> await(Start&& start) {
  auto done = std::make_shared<std::promise<caf::expected<T>>>();
  auto result = done->get_future();
  start(callback<T>{[done](caf::expected<T> r) { done->set_value(std::move(r)); }});
  return result.get();
}

} // namespace wager
