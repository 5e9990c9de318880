// The feed ingest's front: parsing on the caller's thread, the router that
// starts (and restarts) one producer actor per producer, and the metrics.

#include "wager/actors/feed.hpp"

#include "wager/actors/feed_producer.hpp"
#include "wager/runtime/assert.hpp"
#include "wager/runtime/log.hpp"
#include "wager/runtime/metrics.hpp"

#include <caf/all.hpp>

#include <algorithm>
#include <map>
#include <set>

namespace wager {

using namespace feed_detail;

std::string_view to_string(producer_state s) {
  return s == producer_state::up ? "up" : "down";
}

namespace feed_detail {

feed_metrics::feed_metrics(metrics& m) {
  auto& r = m.registry();
  received = &prometheus::BuildCounter()
                .Name("wager_feed_messages_received_total")
                .Help("Feed lines received (TCP and HTTP), valid or not")
                .Register(r)
                .Add({});
  applied = &prometheus::BuildCounter()
               .Name("wager_feed_messages_applied_total")
               .Help("Feed messages applied to their markets")
               .Register(r)
               .Add({});
  auto& invalid_family = prometheus::BuildCounter()
                           .Name("wager_feed_invalid_total")
                           .Help("Feed lines skipped, by reason")
                           .Register(r);
  for (size_t i = 0; i < reject_kinds; ++i)
    invalid[i] = &invalid_family.Add(
      {{"reason", std::string{to_string(static_cast<feed_reject>(i))}}});
  producer_up = &prometheus::BuildGauge()
                   .Name("wager_feed_producer_up")
                   .Help("1 while a feed producer is up, 0 while it is down")
                   .Register(r);
  downs = &prometheus::BuildCounter()
             .Name("wager_feed_producer_down_total")
             .Help("Feed producers marked down, by cause (gap, silence, overloaded, restart)")
             .Register(r);
  // Every cause from the start, at 0: an alert on increase() sees the first
  // one too.
  for (auto cause : {"gap", "silence", "overloaded", "restart"})
    downs->Add({{"cause", cause}});
  restarts = &m.restarts();
  prometheus::Histogram::BucketBoundaries buckets{0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025,
                                                  0.05,   0.1,   0.25,   0.5,   1,    2.5, 5};
  apply_latency = &prometheus::BuildHistogram()
                     .Name("wager_feed_apply_latency_seconds")
                     .Help("From a feed line's arrival at the node to its market's answer")
                     .Register(r)
                     .Add({}, buckets);
  lag = &prometheus::BuildHistogram()
           .Name("wager_feed_lag_seconds")
           .Help("From a feed message's ts to its application (includes clock skew)")
           .Register(r)
           .Add({}, buckets);
}

batch_tracker::batch_tracker(size_t lines, size_t errors_max,
                             std::function<void(feed_batch_result)> done)
  : outstanding_(lines), errors_max_(errors_max), done_(std::move(done)) {
  result_.received = lines;
}

void batch_tracker::applied() {
  std::unique_lock lock{mutex_};
  ++result_.applied;
  finish_one(lock);
}

void batch_tracker::skipped(uint64_t line, const feed_invalid& why) {
  std::unique_lock lock{mutex_};
  ++result_.invalid;
  if (result_.errors.size() < errors_max_)
    result_.errors.push_back({line, why.reason, why.field, why.message});
  finish_one(lock);
}

void batch_tracker::finish_one(std::unique_lock<std::mutex>& lock) {
  WAGER_ASSERT(outstanding_ > 0, "a feed batch line finished twice");
  if (--outstanding_ > 0)
    return;
  auto result = std::move(result_);
  auto done = std::move(done_);
  lock.unlock();
  std::sort(result.errors.begin(), result.errors.end(),
            [](auto& a, auto& b) { return a.line < b.line; });
  if (done)
    done(std::move(result));
}

void skip(feed_metrics& m, const std::shared_ptr<batch_tracker>& tracker, uint64_t line,
          const feed_invalid& why) {
  m.invalid[static_cast<size_t>(why.reason)]->Increment();
  auto second = std::chrono::duration_cast<std::chrono::seconds>(
                  clock::now().time_since_epoch())
                  .count();
  if (auto was = m.log_second.exchange(second); was != second) {
    m.logged_this_second = 0;
    if (auto dropped = m.not_logged.exchange(0); dropped > 0)
      log().warn("feed: {} more skipped lines were not logged", dropped);
  }
  if (++m.logged_this_second > feed_metrics::skipped_logs_per_second_max) {
    ++m.not_logged;
  } else {
    log().warn("feed: skipped a line{}{}: {}{}{}", why.producer.empty() ? "" : " from ",
               why.producer, to_string(why.reason), why.message.empty() ? "" : ": ",
               why.message);
  }
  if (tracker)
    tracker->skipped(line, why);
}

} // namespace feed_detail

namespace {

struct router_data {
  caf::actor_system* sys = nullptr;
  directory dir;
  std::shared_ptr<feed_metrics> metrics;
  feed_options options;
  std::map<std::string, caf::actor> producers;
  std::map<caf::actor_addr, std::string> names;
  // Markets each producer fed, so a restarted producer can suspend them.
  std::map<std::string, std::set<std::string>> fed;
};

using router_actor = caf::stateful_actor<router_data>;

void remember_markets(router_data& st, const envelope& env) {
  auto& markets = st.fed[env.message.producer];
  auto add = [&](const market_id& id) {
    if (markets.size() < st.options.markets_per_producer_max)
      markets.insert(id.value);
  };
  std::visit(
    [&](auto& body) {
      using T = std::decay_t<decltype(body)>;
      if constexpr (std::is_same_v<T, feed_market>)
        add(body.definition.id);
      else if constexpr (std::is_same_v<T, feed_odds_change>
                         || std::is_same_v<T, feed_bet_settlement>
                         || std::is_same_v<T, feed_bet_cancel>
                         || std::is_same_v<T, feed_rollback_bet_settlement>)
        add(body.market);
      else if constexpr (std::is_same_v<T, feed_bet_stop>)
        for (auto& id : body.markets)
          add(id);
    },
    env.message.body);
}

caf::actor start_producer(router_actor* self, const std::string& name, bool restart) {
  auto& st = self->state;
  producer_config cfg{name, caf::actor{self}, st.dir, st.metrics, st.options, {}};
  if (restart)
    cfg.inherited_markets.assign(st.fed[name].begin(), st.fed[name].end());
  auto p = spawn_producer(*st.sys, std::move(cfg));
  self->monitor(p);
  st.producers[name] = p;
  st.names[p.address()] = name;
  return p;
}

caf::behavior router(router_actor* self, directory dir, std::shared_ptr<feed_metrics> m,
                     feed_options options) {
  auto& st = self->state;
  st.sys = &self->system();
  st.dir = std::move(dir);
  st.metrics = std::move(m);
  st.options = options;
  self->set_down_handler([self](caf::down_msg& dm) {
    auto& st = self->state;
    auto i = st.names.find(dm.source);
    if (i == st.names.end())
      return;
    auto name = i->second;
    st.names.erase(i);
    st.producers.erase(name);
    if (!dm.reason || dm.reason == caf::exit_reason::user_shutdown)
      return;
    // Its seq and backlog are gone: start it again, down, suspending all it fed.
    log().error("feed producer {} failed ({}), restarting it", name,
                self->system().render(dm.reason));
    st.metrics->restarts->Add({{"supervisor", "feed"}, {"child", "producer"}}).Increment();
    start_producer(self, name, true);
  });
  self->set_exit_handler([self](caf::exit_msg& msg) {
    for (auto& [name, p] : self->state.producers)
      self->send_exit(p, msg.reason);
    self->quit(msg.reason);
  });
  return {
    [self](envelopes& batch) {
      auto& st = self->state;
      // Per producer, in order; one message to each producer per batch.
      std::map<std::string, envelopes> split;
      for (auto& env : batch.items) {
        auto& name = env.message.producer;
        if (!st.producers.count(name) && !split.count(name)
            && st.producers.size() + split.size() >= st.options.producers_max) {
          skip(*st.metrics, env.tracker, env.line,
               {feed_reject::overloaded, "producer", "too many producers", name});
          continue;
        }
        remember_markets(st, env);
        split[name].items.push_back(std::move(env));
      }
      for (auto& [name, part] : split) {
        auto i = st.producers.find(name);
        auto p = i != st.producers.end() ? i->second : start_producer(self, name, false);
        self->send(p, std::move(part));
      }
    },
    [self](forget_atom, const std::string& producer, const std::string& market) {
      if (auto i = self->state.fed.find(producer); i != self->state.fed.end())
        i->second.erase(market);
    },
    [self](status_atom, const std::string& name) -> caf::result<caf::message> {
      auto i = self->state.producers.find(name);
      if (i == self->state.producers.end())
        return make_error(errc::not_found, "no such producer");
      return self->delegate(i->second, status_atom::value);
    },
  };
}

} // namespace

struct feed_ingest::impl {
  caf::actor_system& sys;
  feed_options options;
  std::shared_ptr<feed_metrics> metrics;
  caf::actor router;

  impl(caf::actor_system& s, feed_options o, wager::metrics& m)
    : sys(s), options(o), metrics(std::make_shared<feed_metrics>(m)) {}

  // Parses one line: a valid message is returned, an invalid one skipped here.
  std::optional<envelope> read(std::string_view line, const std::shared_ptr<batch_tracker>& t,
                               uint64_t number) {
    metrics->received->Increment();
    auto parsed = parse_feed_line(line);
    if (!parsed.ok()) {
      skip(*metrics, t, number, parsed.invalid);
      return std::nullopt;
    }
    auto& producer = parsed.message->producer;
    if (!options.producers.empty()
        && std::find(options.producers.begin(), options.producers.end(), producer)
             == options.producers.end()) {
      if (options.on_security_signal)
        options.on_security_signal(feed_security_signal::unknown_producer, producer);
      skip(*metrics, t, number,
           {feed_reject::unknown_producer, "producer", "not one of this node's producers",
            producer});
      return std::nullopt;
    }
    return envelope{std::move(*parsed.message), clock::now(), t, number};
  }
};

feed_ingest::feed_ingest(caf::actor_system& sys, directory dir, metrics& m, feed_options options)
  : impl_(std::make_unique<impl>(sys, options, m)) {
  impl_->router = sys.spawn(router, std::move(dir), impl_->metrics, options);
}

feed_ingest::~feed_ingest() {
  stop();
}

void feed_ingest::submit(std::string_view line) {
  if (auto env = impl_->read(line, nullptr, 0)) {
    envelopes one;
    one.items.push_back(std::move(*env));
    caf::anon_send(impl_->router, std::move(one));
  }
}

void feed_ingest::submit_oversized() {
  impl_->metrics->received->Increment();
  skip(*impl_->metrics, nullptr, 0,
       {feed_reject::oversized, {}, "the line is longer than the listener's bound", {}});
}

void feed_ingest::submit_batch(std::vector<std::string> lines,
                               std::function<void(feed_batch_result)> done) {
  if (lines.empty())
    return done(feed_batch_result{});
  auto tracker =
    std::make_shared<batch_tracker>(lines.size(), impl_->options.batch_errors_max, std::move(done));
  envelopes batch;
  for (size_t i = 0; i < lines.size(); ++i)
    if (auto env = impl_->read(lines[i], tracker, i + 1))
      batch.items.push_back(std::move(*env));
  if (!batch.items.empty())
    caf::anon_send(impl_->router, std::move(batch));
}

std::optional<feed_producer_status> feed_ingest::producer(const std::string& name,
                                                          std::chrono::milliseconds timeout) {
  if (!impl_->router)
    return std::nullopt;
  caf::scoped_actor self{impl_->sys};
  std::optional<feed_producer_status> out;
  self->request(impl_->router, caf::duration{timeout}, status_atom::value, name)
    .receive([&](feed_producer_status& s) { out = std::move(s); }, [](caf::error&) {});
  return out;
}

void feed_ingest::stop() {
  if (!impl_->router)
    return;
  caf::anon_send_exit(impl_->router, caf::exit_reason::user_shutdown);
  impl_->router = nullptr;
}

} // namespace wager
