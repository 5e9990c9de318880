// One feed producer: its up/down state machine, its sequence check and one
// ordered lane per market it feeds (feed.hpp explains the rules).

#include "wager/actors/feed_producer.hpp"

#include "wager/actors/market.hpp"
#include "wager/runtime/assert.hpp"
#include "wager/runtime/errors.hpp"
#include "wager/runtime/log.hpp"

#include <caf/all.hpp>

#include <deque>
#include <unordered_map>

namespace wager::feed_detail {

namespace {

using silence_atom = caf::atom_constant<caf::atom("fsilence")>;

// One message's progress: a bet_stop touches several markets, the rest one.
struct job {
  envelope env;
  size_t parts = 0;
  std::optional<feed_invalid> failure; // the first part that failed
};
using job_ptr = std::shared_ptr<job>;

struct pending_op {
  feed_body body; // any but feed_bet_stop and feed_alive
  job_ptr owner;
};

struct market_lane {
  bool in_flight = false;
  // A suspension waits to jump ahead of the backlog; the bet_stops waiting on it.
  bool stop_pending = false;
  std::vector<job_ptr> stop_waiters;
  std::deque<pending_op> backlog;
  std::optional<market_status> known; // from the market's last answer
};

struct producer_data {
  producer_config config;
  producer_state state = producer_state::up;
  bool has_seq = false;
  uint64_t last_seq = 0;
  clock::time_point last_heard;
  bool timer_armed = false;
  size_t backlog = 0;
  std::unordered_map<std::string, market_lane> lanes;
  prometheus::Gauge* up_gauge = nullptr;
};

using producer_actor = caf::stateful_actor<producer_data>;

bool closed_or_final(std::optional<market_status> s) {
  return s && (*s == market_status::closed || *s == market_status::settled
               || *s == market_status::voided);
}

feed_invalid invalid_of(const caf::error& err, const std::string& market) {
  auto reason = feed_reject::unavailable;
  switch (code_of(err)) {
    case errc::not_found: reason = feed_reject::unknown_market; break;
    case errc::invalid_field:
    case errc::illegal_transition:
    case errc::already_exists: reason = feed_reject::refused; break;
    default: break;
  }
  auto text = message_of(err);
  return {reason, "market_id", "market " + market + ": " + (text.empty() ? "no answer" : text),
          {}};
}

void finish_part(producer_actor* self, const job_ptr& j, std::optional<feed_invalid> failure) {
  if (failure && !j->failure)
    j->failure = std::move(failure);
  WAGER_ASSERT(j->parts > 0, "feed job finished more often than it had parts");
  if (--j->parts > 0)
    return;
  auto& m = *self->state.config.metrics;
  if (j->failure) {
    j->failure->producer = j->env.message.producer;
    return skip(m, j->env.tracker, j->env.line, *j->failure);
  }
  m.applied->Increment();
  auto now = clock::now();
  m.apply_latency->Observe(std::chrono::duration<double>(now - j->env.received).count());
  auto wall_ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                   std::chrono::system_clock::now().time_since_epoch())
                   .count();
  m.lag->Observe(std::max<double>(0, static_cast<double>(wall_ms - j->env.message.ts_ms) / 1000));
  if (j->env.tracker)
    j->env.tracker->applied();
}

// A `status: open` older than a suspension must not undo it.
void drop_reopen(feed_body& body) {
  if (auto* m = std::get_if<feed_market>(&body); m && m->status == market_status::open)
    m->status.reset();
  if (auto* o = std::get_if<feed_odds_change>(&body); o && o->status == market_status::open)
    o->status.reset();
}

bool nothing_to_do(const feed_body& body) {
  auto* o = std::get_if<feed_odds_change>(&body);
  return o && o->prices.empty() && !o->status;
}

void pump(producer_actor* self, const std::string& market);

// Sends one request for `market` and calls `next` with its outcome.
template <class Cmd, class Next>
void ask_market(producer_actor* self, const std::string& market, Cmd cmd, Next next) {
  auto& cfg = self->state.config;
  cfg.dir
    .request(self, cfg.options.apply_timeout, entity_id{"market", market}, std::move(cmd))
    .then(
      [self, market, next](market_view& v) mutable {
        if (auto i = self->state.lanes.find(market); i != self->state.lanes.end())
          i->second.known = v.status;
        next(caf::error{});
      },
      [next](caf::error& err) mutable { next(err); });
}

// A resulted market with nothing queued is forgotten, so a producer that
// feeds match after match keeps a bounded set of lanes.
void maybe_forget(producer_actor* self, const std::string& market) {
  auto& st = self->state;
  auto i = st.lanes.find(market);
  if (i == st.lanes.end())
    return;
  auto& lane = i->second;
  bool resulted = lane.known == market_status::settled || lane.known == market_status::voided;
  if (!resulted || lane.in_flight || lane.stop_pending || !lane.backlog.empty())
    return;
  st.lanes.erase(i);
  self->send(st.config.router, forget_atom::value, st.config.name, market);
}

void op_done(producer_actor* self, const std::string& market, const job_ptr& owner,
             const caf::error& err) {
  std::optional<feed_invalid> failure;
  if (err)
    failure = invalid_of(err, market);
  finish_part(self, owner, std::move(failure));
  auto i = self->state.lanes.find(market);
  if (i == self->state.lanes.end())
    return;
  i->second.in_flight = false;
  pump(self, market);
  maybe_forget(self, market);
}

void run_op(producer_actor* self, const std::string& market, pending_op op) {
  auto owner = op.owner;
  auto done = [self, market, owner](const caf::error& err) { op_done(self, market, owner, err); };
  if (auto* odds = std::get_if<feed_odds_change>(&op.body)) {
    set_prices_cmd cmd{std::move(odds->prices), {}};
    cmd.feed_received_us = std::chrono::duration_cast<std::chrono::microseconds>(
                             owner->env.received.time_since_epoch())
                             .count();
    if (odds->status)
      cmd.status = *odds->status;
    return ask_market(self, market, std::move(cmd), done);
  }
  if (auto* s = std::get_if<feed_bet_settlement>(&op.body))
    return ask_market(self, market, settle_cmd{s->result}, done);
  if (auto* c = std::get_if<feed_bet_cancel>(&op.body))
    return ask_market(self, market, cancel_bets_cmd{c->from_ms, c->to_ms}, done);
  if (std::holds_alternative<feed_rollback_bet_settlement>(op.body))
    return ask_market(self, market, unsettle_cmd{}, done);
  // A `market` message defines the market, or updates it when it exists,
  // then applies its status.
  auto def = std::get<feed_market>(std::move(op.body));
  auto status = def.status;
  auto then_status = [self, market, status, done](const caf::error& err) {
    if (err || !status)
      return done(err);
    ask_market(self, market, set_status_cmd{*status}, done);
  };
  ask_market(self, market, create_market_cmd{def.definition},
             [self, market, def, then_status](const caf::error& err) {
               if (code_of(err) != errc::already_exists)
                 return then_status(err);
               ask_market(self, market, update_market_cmd{def.definition}, then_status);
             });
}

void pump(producer_actor* self, const std::string& market) {
  auto& st = self->state;
  auto& lane = st.lanes[market];
  if (lane.in_flight)
    return;
  if (lane.stop_pending) {
    lane.stop_pending = false;
    lane.in_flight = true;
    auto waiters = std::move(lane.stop_waiters);
    lane.stop_waiters.clear();
    ask_market(self, market, set_status_cmd{market_status::suspended},
               [self, market, waiters](const caf::error& err) {
                 // A closed or resulted market takes no bets already.
                 bool fine = !err || code_of(err) == errc::illegal_transition;
                 for (auto& w : waiters)
                   finish_part(self, w, fine ? std::nullopt
                                             : std::optional{invalid_of(err, market)});
                 auto i = self->state.lanes.find(market);
                 if (i == self->state.lanes.end())
                   return;
                 i->second.in_flight = false;
                 pump(self, market);
                 maybe_forget(self, market);
               });
    return;
  }
  while (!lane.backlog.empty()) {
    auto op = std::move(lane.backlog.front());
    lane.backlog.pop_front();
    --st.backlog;
    if (nothing_to_do(op.body)) {
      finish_part(self, op.owner, std::nullopt);
      continue;
    }
    lane.in_flight = true;
    return run_op(self, market, std::move(op));
  }
}

// Puts a suspension ahead of the market's queued messages.
void stop_market(producer_actor* self, const std::string& market, const job_ptr& waiter) {
  auto& lane = self->state.lanes[market];
  for (auto& op : lane.backlog)
    drop_reopen(op.body);
  lane.stop_pending = true;
  if (waiter) {
    ++waiter->parts;
    lane.stop_waiters.push_back(waiter);
  }
  pump(self, market);
}

void go_down(producer_actor* self, std::string_view cause) {
  auto& st = self->state;
  st.state = producer_state::down;
  st.up_gauge->Set(0);
  st.config.metrics->downs->Add({{"cause", std::string{cause}}}).Increment();
  if (cause == "gap" && st.config.options.on_security_signal)
    st.config.options.on_security_signal(feed_security_signal::sequence_gap, st.config.name);
  size_t suspended = 0;
  for (auto& [market, lane] : st.lanes) {
    if (closed_or_final(lane.known))
      continue;
    ++suspended;
    stop_market(self, market, nullptr);
  }
  log().warn("feed producer {} is down ({}): suspending {} markets", st.config.name, cause,
             suspended);
}

void arm_silence(producer_actor* self, clock::duration after) {
  auto& st = self->state;
  if (st.timer_armed || st.state != producer_state::up)
    return;
  st.timer_armed = true;
  self->delayed_send(self, std::chrono::duration_cast<std::chrono::nanoseconds>(after),
                     silence_atom::value);
}

void on_silence_check(producer_actor* self) {
  auto& st = self->state;
  st.timer_armed = false;
  if (st.state != producer_state::up)
    return;
  auto quiet = clock::now() - st.last_heard;
  if (quiet >= st.config.options.silence)
    return go_down(self, "silence");
  arm_silence(self, st.config.options.silence - quiet);
}

bool enqueue(producer_actor* self, const std::string& market, feed_body body,
             const job_ptr& owner) {
  auto& st = self->state;
  if (st.backlog >= st.config.options.backlog_max
      || (!st.lanes.count(market) && st.lanes.size() >= st.config.options.markets_per_producer_max))
    return false;
  if (st.state == producer_state::down)
    drop_reopen(body);
  ++owner->parts;
  ++st.backlog;
  st.lanes[market].backlog.push_back({std::move(body), owner});
  pump(self, market);
  return true;
}

std::string market_of(const feed_body& body) {
  if (auto* m = std::get_if<feed_market>(&body))
    return m->definition.id.value;
  if (auto* o = std::get_if<feed_odds_change>(&body))
    return o->market.value;
  if (auto* s = std::get_if<feed_bet_settlement>(&body))
    return s->market.value;
  if (auto* c = std::get_if<feed_bet_cancel>(&body))
    return c->market.value;
  if (auto* r = std::get_if<feed_rollback_bet_settlement>(&body))
    return r->market.value;
  return {};
}

void accept(producer_actor* self, envelope& env) {
  auto& st = self->state;
  auto& m = *st.config.metrics;
  auto seq = env.message.seq;
  if (st.has_seq && seq <= st.last_seq)
    return skip(m, env.tracker, env.line,
                {feed_reject::stale_seq, "seq",
                 "seq " + std::to_string(seq) + " is not above " + std::to_string(st.last_seq),
                 st.config.name});
  bool gap = st.has_seq && seq != st.last_seq + 1;
  if (gap)
    log().warn("feed producer {}: seq {} after {}", st.config.name, seq, st.last_seq);
  st.has_seq = true;
  st.last_seq = seq;
  st.last_heard = clock::now();
  if (gap) {
    go_down(self, "gap");
  } else if (st.state == producer_state::down) {
    st.state = producer_state::up;
    st.up_gauge->Set(1);
    log().info("feed producer {} is in order again at seq {}", st.config.name, seq);
  }
  arm_silence(self, st.config.options.silence);
  auto j = std::make_shared<job>(job{std::move(env), 0, std::nullopt});
  auto& body = j->env.message.body;
  if (auto* stop = std::get_if<feed_bet_stop>(&body)) {
    for (auto& id : stop->markets) {
      if (!st.lanes.count(id.value)
          && st.lanes.size() >= st.config.options.markets_per_producer_max) {
        j->failure = feed_invalid{feed_reject::overloaded, "market_ids",
                                  "the producer feeds too many markets", {}};
        continue;
      }
      stop_market(self, id.value, j);
    }
  } else if (!std::holds_alternative<feed_alive>(body)) {
    auto market = market_of(body);
    if (!enqueue(self, market, std::move(body), j)) {
      go_down(self, "overloaded");
      j->failure = feed_invalid{feed_reject::overloaded, {},
                                "producer backlog full: " + std::to_string(st.backlog)
                                  + " messages wait for their markets",
                                {}};
    }
  }
  if (j->parts == 0) {
    ++j->parts;
    finish_part(self, j, std::nullopt);
  }
}

} // namespace

caf::actor spawn_producer(caf::actor_system& sys, producer_config config) {
  return sys.spawn([config = std::move(config)](producer_actor* self) -> caf::behavior {
    auto& st = self->state;
    st.config = config;
    st.up_gauge = &config.metrics->producer_up->Add({{"producer", config.name}});
    st.up_gauge->Set(1);
    if (!config.inherited_markets.empty()) {
      for (auto& market : config.inherited_markets)
        st.lanes[market];
      go_down(self, "restart");
    }
    return {
      [self](envelopes& batch) {
        for (auto& env : batch.items)
          accept(self, env);
      },
      [self](silence_atom) { on_silence_check(self); },
      [self](status_atom) {
        auto& st = self->state;
        return feed_producer_status{st.config.name, st.state, st.last_seq, st.lanes.size(),
                                    st.backlog};
      },
    };
  });
}

} // namespace wager::feed_detail
