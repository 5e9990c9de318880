#include "wager/actors/platform.hpp"

#include "wager/actors/resume.hpp"
#include "wager/persistence/open_journal.hpp"
#include "wager/runtime/errors.hpp"
#include "wager/runtime/log.hpp"

#include <caf/all.hpp>
#include <prometheus/counter.h>
#include <prometheus/gauge.h>

#include <filesystem>
#include <mutex>

namespace wager {

struct platform::impl {
  platform_options options;
  std::unique_ptr<node_runtime> runtime;
  std::shared_ptr<wager::journal> journal;
  std::unique_ptr<wallet_history> history;
  wager::directory dir;
  caf::actor resumer;
  std::mutex resumers_mutex;
  // resume_shards' resumers, few (one per change of shards): kept until stop.
  std::vector<caf::actor> resumers; // REQUIRES: resumers_mutex is held
  bool resumers_closed = false;     // REQUIRES: resumers_mutex is held
  // wager_bets_total{outcome,reason}: every bet answered through the facade.
  prometheus::Family<prometheus::Counter>* bets = nullptr;
  prometheus::Counter* bets_accepted = nullptr;
  bool stopped = false;

  // Asks the entity from one of the directory's long-lived callers.
  template <class T, class... Ts>
  void call(entity_id id, callback<T> done, Ts&&... xs) {
    dir.call<T>(caf::duration{options.call_timeout}, id,
                caf::make_message(std::forward<Ts>(xs)...), std::move(done));
  }
};

namespace {

entity_id wallet_of(const user_id& user) {
  return {"wallet", user.value};
}

entity_id market_entity(const market_id& market) {
  return {"market", market.value};
}

} // namespace

platform::platform(std::unique_ptr<impl> d) : impl_(std::move(d)) {}

platform::~platform() {
  stop();
}

caf::expected<std::unique_ptr<platform>> platform::start(platform_options options) {
  std::error_code ec;
  std::filesystem::create_directories(options.data_dir, ec);
  if (ec)
    return make_error(errc::journal_failure,
                      "cannot create data dir '" + options.data_dir + "': " + ec.message());
  auto d = std::make_unique<impl>();
  d->options = options;
  d->runtime = std::make_unique<node_runtime>(options.runtime);
  d->bets = &prometheus::BuildCounter()
               .Name("wager_bets_total")
               .Help("Bets answered: accepted, rejected (by reason) or failed (no final answer)")
               .Register(d->runtime->metrics().registry());
  d->bets_accepted = &d->bets->Add({{"outcome", "accepted"}, {"reason", ""}});
  auto jopts = options.journal;
  jopts.path = (std::filesystem::path{options.data_dir} / "journal.db").string();
  jopts.metrics_registry = &d->runtime->metrics();
  jopts.snapshot_every = options.wallet.snapshot_every;
  auto opened = open_journal(std::move(jopts));
  if (!opened)
    return opened.error();
  d->journal = std::shared_ptr<wager::journal>(std::move(*opened));
  if (options.history_enabled) {
    auto hopts = options.history;
    hopts.path = (std::filesystem::path{options.data_dir} / "history.db").string();
    hopts.metrics_registry = &d->runtime->metrics().registry();
    if (d->journal->log_end()) {
      auto history = wallet_history::open(std::move(hopts), *d->journal);
      if (!history)
        return history.error();
      d->history = std::move(*history);
    } else {
      log().warn("journal {}: in the row layout, so no history read model: lists serve the "
                 "wallets' recent entries", options.data_dir);
    }
  }

  std::vector<entity_kind> kinds;
  auto wallet_opts = options.wallet;
  wallet_opts.history = d->history.get();
  kinds.push_back({"wallet", wallet_activator(d->journal, wallet_opts),
                   options.wallet_idle_timeout, options.wallets_resident_max});
  auto market_options = options.market;
  if (market_options.payouts_pending == nullptr)
    market_options.payouts_pending =
      &prometheus::BuildGauge()
         .Name("wager_settlement_payouts_pending")
         .Help("Payouts of settled markets not yet acknowledged by their wallets")
         .Register(d->runtime->metrics().registry())
         .Add({});
  kinds.push_back({"market", market_activator(d->journal, market_options),
                   options.market_idle_timeout, options.markets_resident_max});
  kinds.push_back({"user", user_activator(d->journal, options.identity),
                   options.user_idle_timeout, options.users_resident_max});
  kinds.push_back({"session", session_activator(d->journal, options.identity),
                   options.session_idle_timeout, options.sessions_resident_max});
  directory_options dopts;
  dopts.shards = options.shards;
  dopts.partitions = options.directory_partitions;
  auto dir = spawn_directory(d->runtime->system(), dopts, std::move(kinds),
                             d->runtime->metrics());
  if (!dir)
    return dir.error();
  d->dir = std::move(*dir);
  if (options.resume_at_start)
    d->resumer = spawn_resumer(d->runtime->system(), d->journal.get(), d->dir,
                               d->runtime->metrics(), options.resume);
  return std::unique_ptr<platform>(new platform(std::move(d)));
}

void platform::resume_shards(std::vector<uint32_t> shards) {
  auto& d = *impl_;
  if (shards.empty())
    return;
  auto opts = d.options.resume;
  opts.shards = std::move(shards);
  opts.in_flight_max = d.options.failover_in_flight_max;
  opts.per_second_max = d.options.failover_per_second_max;
  std::lock_guard guard{d.resumers_mutex};
  if (d.resumers_closed)
    return;
  d.resumers.push_back(spawn_resumer(d.runtime->system(), d.journal.get(), d.dir,
                                     d.runtime->metrics(), opts));
}

void platform::stop() {
  auto& d = *impl_;
  if (d.stopped)
    return;
  d.stopped = true;
  caf::anon_send_exit(d.resumer, caf::exit_reason::user_shutdown);
  d.resumer = nullptr;
  {
    std::lock_guard guard{d.resumers_mutex};
    for (auto& r : d.resumers)
      caf::anon_send_exit(r, caf::exit_reason::user_shutdown);
    d.resumers.clear();
    d.resumers_closed = true;
  }
  d.dir.stop();
  d.runtime->system().await_all_actors_done();
  d.dir = {};
  if (d.history != nullptr)
    d.history->stop();
  // The journal drains its queue and answers every append before it closes;
  // the actor system is still up to carry those answers.
  d.journal.reset();
  d.runtime->shutdown();
}

void platform::create_market(market_definition definition, callback<market_view> done) {
  auto id = market_entity(definition.id);
  impl_->call<market_view>(id, std::move(done), create_market_cmd{std::move(definition)});
}

void platform::update_market(market_definition definition, callback<market_view> done) {
  auto id = market_entity(definition.id);
  impl_->call<market_view>(id, std::move(done), update_market_cmd{std::move(definition)});
}

void platform::set_market_status(const market_id& market, market_status status,
                                 callback<market_view> done) {
  impl_->call<market_view>(market_entity(market), std::move(done), set_status_cmd{status});
}

void platform::set_prices(const market_id& market, std::map<std::string, price> prices,
                          callback<market_view> done) {
  impl_->call<market_view>(market_entity(market), std::move(done),
                           set_prices_cmd{std::move(prices), {}});
}

void platform::settle_market(const market_id& market, std::vector<std::string> winners,
                             callback<market_view> done) {
  impl_->call<market_view>(market_entity(market), std::move(done),
                           settle_cmd{market_resulted{std::move(winners), false}});
}

void platform::settle_market_result(const market_id& market, market_resulted result,
                                    callback<market_view> done) {
  impl_->call<market_view>(market_entity(market), std::move(done),
                           settle_cmd{std::move(result)});
}

void platform::void_market(const market_id& market, callback<market_view> done) {
  impl_->call<market_view>(market_entity(market), std::move(done),
                           settle_cmd{market_resulted{{}, true}});
}

void platform::unsettle_market(const market_id& market, callback<market_view> done) {
  impl_->call<market_view>(market_entity(market), std::move(done), unsettle_cmd{});
}

void platform::cancel_bets(const market_id& market, int64_t from_ms, int64_t to_ms,
                           callback<market_view> done) {
  impl_->call<market_view>(market_entity(market), std::move(done),
                           cancel_bets_cmd{from_ms, to_ms});
}

void platform::withdraw_selection(const market_id& market, const selection_id& selection,
                                  callback<market_view> done) {
  impl_->call<market_view>(market_entity(market), std::move(done),
                           withdraw_selection_cmd{selection});
}

void platform::get_market(const market_id& market, callback<market_view> done) {
  impl_->call<market_view>(market_entity(market), std::move(done), market_query{});
}

platform::subscription::~subscription() {
  caf::anon_send_exit(subscriber_, caf::exit_reason::user_shutdown);
}

std::unique_ptr<platform::subscription>
platform::subscribe(const market_id& market, std::function<void(const market_update&)> on_update,
                    callback<market_view> done) {
  auto d = impl_->dir;
  auto id = market_entity(market);
  auto timeout = caf::duration{impl_->options.call_timeout};
  auto subscriber = impl_->runtime->system().spawn(
    [d, id, on_update, done, timeout](caf::event_based_actor* self) -> caf::behavior {
      d.request(self, timeout, id, subscribe_cmd{caf::actor{self}})
        .then([done](market_view& v) { done(std::move(v)); },
              [self, done](caf::error& err) {
                done(std::move(err));
                self->quit();
              });
      return {[on_update](market_update& u) { on_update(u); }};
    });
  return std::make_unique<subscription>(subscriber);
}

void platform::deposit(const user_id& user, request_id request, money amount,
                       callback<wallet_receipt> done) {
  impl_->call<wallet_receipt>(wallet_of(user), std::move(done),
                              deposit_cmd{std::move(request), amount});
}

void platform::withdraw(const user_id& user, request_id request, money amount,
                        callback<wallet_receipt> done) {
  impl_->call<wallet_receipt>(wallet_of(user), std::move(done),
                              withdraw_cmd{std::move(request), amount});
}

void platform::place_bet(const user_id& user, place_bet_cmd cmd, callback<wager::bet> done) {
  place_any_bet(user, caf::make_message(std::move(cmd)), std::move(done));
}

void platform::place_slip(const user_id& user, place_slip_cmd cmd, callback<wager::bet> done) {
  place_any_bet(user, caf::make_message(std::move(cmd)), std::move(done));
}

void platform::cashout_quote(const user_id& user, const bet_id& bet,
                             callback<wager::cashout_quote> done) {
  impl_->call<wager::cashout_quote>(wallet_of(user), std::move(done), cashout_quote_query{bet});
}

void platform::cash_out(const user_id& user, cashout_cmd cmd, callback<wager::bet> done) {
  impl_->call<wager::bet>(wallet_of(user), std::move(done), std::move(cmd));
}

void platform::place_any_bet(const user_id& user, caf::message cmd, callback<wager::bet> done) {
  auto* d = impl_.get();
  impl_->call<wager::bet>(wallet_of(user),
                          [d, done = std::move(done)](caf::expected<wager::bet> r) {
                            if (r) {
                              d->bets_accepted->Increment();
                            } else {
                              // Codes that are not the bet's final answer
                              // (the caller retries) count as failed.
                              auto code = code_of(r.error());
                              bool final_answer = code != errc::unavailable
                                                  && code != errc::internal
                                                  && code != errc::journal_failure;
                              d->bets
                                ->Add({{"outcome", final_answer ? "rejected" : "failed"},
                                       {"reason", std::string{to_code(code)}}})
                                .Increment();
                            }
                            done(std::move(r));
                          },
                          std::move(cmd));
}

void platform::balance(const user_id& user, callback<wallet_balance> done) {
  impl_->call<wallet_balance>(wallet_of(user), std::move(done), balance_query{});
}

void platform::get_bet(const user_id& user, const bet_id& id, callback<wager::bet> done) {
  impl_->call<wager::bet>(wallet_of(user),
                          callback<wager::bet>{[h = history(), user, id,
                                                done = std::move(done)](caf::expected<bet> b) {
                            complete_bet(h, user, id, std::move(b), done);
                          }},
                          bet_query{id});
}

void platform::bets(const user_id& user, bool settled, callback<std::vector<bet>> done) {
  impl_->call<bets_page>(wallet_of(user),
                         callback<bets_page>{[done = std::move(done)](caf::expected<bets_page> p) {
                           if (!p)
                             return done(p.error());
                           done(std::move(p->bets));
                         }},
                         bets_query{settled});
}

void platform::transactions(const user_id& user, transactions_query query,
                            callback<std::vector<wallet_transaction>> done) {
  impl_->call<transactions_page>(
    wallet_of(user),
    callback<transactions_page>{[h = history(), user, query,
                                 done = std::move(done)](caf::expected<transactions_page> p) {
      if (!p)
        return done(p.error());
      complete_transactions(h, user, query, std::move(*p), done);
    }},
    query);
}

wallet_history* platform::history() {
  return impl_->history.get();
}

void platform::set_limits(const user_id& user, set_limits_cmd limits,
                          callback<wallet_limits> done) {
  impl_->call<wallet_limits>(wallet_of(user), std::move(done), std::move(limits));
}

void platform::limits(const user_id& user, callback<wallet_limits> done) {
  impl_->call<wallet_limits>(wallet_of(user), std::move(done), limits_query{});
}

void platform::create_user(const std::string& username, create_user_cmd cmd,
                           callback<user_credentials> done) {
  impl_->call<user_credentials>({"user", username}, std::move(done), std::move(cmd));
}

void platform::user_credentials_of(const std::string& username,
                                   callback<user_credentials> done) {
  impl_->call<user_credentials>({"user", username}, std::move(done), credentials_query{});
}

void platform::enrol_mfa(const std::string& username, std::string secret,
                         callback<user_credentials> done) {
  impl_->call<user_credentials>({"user", username}, std::move(done),
                                enrol_mfa_cmd{std::move(secret)});
}

void platform::confirm_mfa(const std::string& username, std::string secret,
                           callback<user_credentials> done) {
  impl_->call<user_credentials>({"user", username}, std::move(done),
                                confirm_mfa_cmd{std::move(secret)});
}

void platform::create_session(create_session_cmd cmd, callback<session_info> done) {
  entity_id id{"session", cmd.info.session_id};
  impl_->call<session_info>(std::move(id), std::move(done), std::move(cmd));
}

void platform::check_session(const std::string& session_id, std::string secret_sha256,
                             callback<session_info> done) {
  impl_->call<session_info>({"session", session_id}, std::move(done),
                            check_session_cmd{std::move(secret_sha256)});
}

void platform::revoke_session(const std::string& session_id, callback<session_info> done) {
  impl_->call<session_info>({"session", session_id}, std::move(done), revoke_session_cmd{});
}

caf::actor_system& platform::system() {
  return impl_->runtime->system();
}

node_runtime& platform::runtime() {
  return *impl_->runtime;
}

const directory& platform::directory() const {
  return impl_->dir;
}

journal& platform::journal() {
  return *impl_->journal;
}

metrics& platform::metrics() {
  return impl_->runtime->metrics();
}

const platform_options& platform::options() const {
  return impl_->options;
}

} // namespace wager
