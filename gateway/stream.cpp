#include "wager/gateway/stream.hpp"

#include "wager/actors/bet.hpp"
#include "wager/actors/market.hpp"
#include "wager/actors/platform.hpp"
#include "wager/actors/session.hpp"
#include "wager/actors/wallet.hpp"
#include "wager/gateway/auth_store.hpp"
#include "wager/gateway/resource_json.hpp"
#include "wager/gateway/stream_client_message.hpp"
#include "wager/gateway/stream_json.hpp"
#include "wager/gateway/stream_outbox.hpp"
#include "wager/runtime/errors.hpp"
#include "wager/runtime/metrics.hpp"

#include <caf/all.hpp>
#include <prometheus/histogram.h>
#include <prometheus/registry.h>

#include <algorithm>
#include <chrono>
#include <map>
#include <set>


namespace wager {

namespace {

using auth_result_atom = caf::atom_constant<caf::atom("strmauth")>;
using auth_timeout_atom = caf::atom_constant<caf::atom("strmauthto")>;
using reality_tick_atom = caf::atom_constant<caf::atom("strmreal")>;

// How often a connection without reality checks looks again whether the
// user turned them on, in reality-check minutes.
constexpr int64_t reality_check_poll_minutes = 10;

struct stream_state {
  directory dir;
  token_validator validate; // empty: the token is the session entity's to check
  std::shared_ptr<stream_outbox> outbox;
  stream_options options;
  std::string user;        // empty until authenticated
  bool authenticating = false;
  // With sessions: the token's parts, and the session attached to (which
  // sends the user's bet and wallet changes), monitored.
  std::optional<session_token> token;
  caf::actor session;
  std::vector<std::string> pending; // client frames while the token is checked
  // Subscribed markets -> the last version sent; pending ones map to 0 and
  // are in `subscribing` until their snapshot arrives.
  std::map<std::string, uint64_t> markets;
  std::set<std::string> subscribing;
  // Reality checks: when the connection authenticated, and the minute of
  // its life last reported.
  std::chrono::steady_clock::time_point started;
  int64_t started_wall_ms = 0;
  int64_t reported_minute = 0;
};

using session_actor = caf::stateful_actor<stream_state>;

void send_error(session_actor* self, std::string_view code, std::string_view message,
                std::string_view field = {}) {
  if (!self->state.outbox->push(error_message(code, message, field)))
    self->quit();
}

// Closes after telling the client why (the error is sent first).
void refuse(session_actor* self, std::string_view code, std::string_view message) {
  send_error(self, code, message);
  self->state.outbox->close(std::string{message});
  self->quit();
}

void push_reliable(session_actor* self, std::string text) {
  if (!self->state.outbox->push(std::move(text)))
    self->quit(); // too slow for messages we may not drop: the outbox closed
}

void subscribe_one(session_actor* self, const std::string& market) {
  auto& st = self->state;
  st.markets.emplace(market, 0);
  st.subscribing.insert(market);
  st.dir.request(self, caf::duration{st.options.call_timeout}, entity_id{"market", market},
                 subscribe_cmd{caf::actor{self}})
    .then(
      [self, market](market_view& v) {
        auto& st = self->state;
        st.subscribing.erase(market);
        auto it = st.markets.find(market);
        if (it == st.markets.end()) // unsubscribed meanwhile
          return st.dir.send(self, entity_id{"market", market},
                             unsubscribe_cmd{caf::actor{self}});
        it->second = v.version;
        push_reliable(self, market_message(v));
      },
      [self, market](caf::error& err) {
        auto& st = self->state;
        st.subscribing.erase(market);
        st.markets.erase(market);
        send_error(self, to_code(api_code(err)), "cannot subscribe to market " + market, "markets");
      });
}

void unsubscribe_one(session_actor* self, const std::string& market) {
  auto& st = self->state;
  if (st.markets.erase(market) == 0)
    return;
  if (st.subscribing.count(market) == 0)
    st.dir.send(self, entity_id{"market", market}, unsubscribe_cmd{caf::actor{self}});
}

void watch_wallet(session_actor* self) {
  auto& st = self->state;
  st.dir.request(self, caf::duration{st.options.call_timeout}, entity_id{"wallet", st.user},
                 watch_cmd{caf::actor{self}})
    .then([self](wallet_balance& b) { push_reliable(self, wallet_message(b)); },
          [self](caf::error& err) {
            send_error(self, to_code(api_code(err)), "cannot follow the wallet");
          });
}

void on_client_frame(session_actor* self, const std::string& text);

void on_authenticated(session_actor* self, const std::string& user);

// Attaches to the session entity (again, after it passivated): it checks the
// token and from then on sends the user's bet and wallet changes here.
void attach_to_session(session_actor* self) {
  auto& st = self->state;
  st.dir.request(self, caf::duration{st.options.call_timeout},
                 entity_id{"session", st.token->session_id},
                 attach_stream_cmd{st.token->secret_sha256, caf::actor{self}})
    .then(
      [self](stream_attached& a) {
        auto& st = self->state;
        st.session = a.session;
        self->monitor(st.session);
        // First the wallet as it is now; then its changes, in order.
        push_reliable(self, wallet_message(a.balance));
        if (st.user.empty())
          on_authenticated(self, a.info.user_id);
      },
      [self](caf::error& err) {
        if (code_of(err) == errc::unauthorized)
          return refuse(self, "unauthorized", "the token is not valid");
        refuse(self, "unavailable", "the session cannot be reached, connect again");
      });
}

void on_auth_frame(session_actor* self, const std::string& token) {
  auto& st = self->state;
  st.authenticating = true;
  if (!st.validate) {
    st.token = parse_session_token(token);
    if (!st.token)
      return refuse(self, "unauthorized", "the token is not valid");
    return attach_to_session(self);
  }
  caf::actor me{self};
  st.validate(token, [me](std::optional<std::string> user) {
    caf::anon_send(me, auth_result_atom::value, user.has_value(), user.value_or(""));
  });
}

void on_client_frame(session_actor* self, const std::string& text) {
  auto& st = self->state;
  if (st.authenticating) {
    if (st.pending.size() >= st.options.pending_frames_max)
      return refuse(self, "rate_limited", "too many messages before auth completed");
    st.pending.push_back(text);
    return;
  }
  auto read = read_stream_client_message(text);
  if (st.user.empty()) {
    if (!read.ok() || read.message->op != stream_client_op::auth
        || read.message->token.empty())
      return refuse(self, "unauthorized", "the first message must be auth with a token");
    return on_auth_frame(self, read.message->token);
  }
  if (!read.ok())
    return send_error(self, read.error.code, read.error.message, read.error.field);
  auto& markets = read.message->markets;
  switch (read.message->op) {
    case stream_client_op::subscribe: {
      size_t added = 0;
      for (auto& m : markets)
        added += st.markets.count(m) == 0;
      if (st.markets.size() + added > st.options.subscriptions_max)
        return send_error(self, "limit_exceeded", "too many markets on one connection",
                          "markets");
      for (auto& m : markets)
        if (st.markets.count(m) == 0)
          subscribe_one(self, m);
      return;
    }
    case stream_client_op::unsubscribe:
      for (auto& m : markets)
        unsubscribe_one(self, m);
      return;
    case stream_client_op::auth:
      return send_error(self, "invalid_field", "already authenticated", "op");
  }
}

void on_market_update(session_actor* self, const market_update& u) {
  auto& st = self->state;
  auto it = st.markets.find(u.market.value);
  // Updates of a market left, or older than what the client has. An equal
  // version still goes out: the market (today) may publish several updates
  // under one version when appends overlap, and the last one is the newest.
  if (it == st.markets.end() || st.subscribing.count(u.market.value) > 0
      || u.version < it->second)
    return;
  it->second = u.version;
  if (u.feed_received_us != 0 && st.options.feed_push_seconds != nullptr)
    st.options.feed_push_seconds->Observe(static_cast<double>(feed_clock_us() - u.feed_received_us)
                                          / 1e6);
  if (u.status_changed)
    return push_reliable(self, status_message(u));
  std::map<std::string, std::string> prices;
  for (auto& [sel, p] : u.prices)
    prices.emplace(sel, format_price(p));
  if (!st.outbox->push_price(u.market.value, u.version, prices))
    self->quit();
}

int64_t minutes_alive(const stream_state& st) {
  return (std::chrono::steady_clock::now() - st.started) / st.options.reality_check_minute;
}

void schedule_reality_check(session_actor* self, int64_t at_minute) {
  auto& st = self->state;
  auto due = st.started + at_minute * st.options.reality_check_minute;
  auto wait = std::max(std::chrono::steady_clock::duration::zero(),
                       due - std::chrono::steady_clock::now());
  self->delayed_send(self, std::chrono::duration_cast<std::chrono::milliseconds>(wait)
                             + std::chrono::milliseconds{1},
                     reality_tick_atom::value);
}

// Asks the wallet for the interval in force and the money since the
// connection began; reports at each whole multiple of the interval, and
// looks again at least every reality_check_poll_minutes, so a change of the
// interval takes effect within that.
void reality_check(session_actor* self) {
  auto& st = self->state;
  st.dir.request(self, caf::duration{st.options.call_timeout}, entity_id{"wallet", st.user},
                 reality_check_query{st.started_wall_ms})
    .then(
      [self](reality_check_answer& a) {
        auto& st = self->state;
        auto now = minutes_alive(st);
        auto interval = a.interval_minutes;
        if (interval > 0) {
          auto due = now / interval * interval;
          if (due > 0 && due > st.reported_minute) {
            st.reported_minute = due;
            push_reliable(self, reality_check_message(due, a.staked, a.returned));
          }
        }
        auto next = (now / reality_check_poll_minutes + 1) * reality_check_poll_minutes;
        if (interval > 0)
          next = std::min(next, (now / interval + 1) * interval);
        schedule_reality_check(self, next);
      },
      [self](caf::error&) { schedule_reality_check(self, minutes_alive(self->state) + 1); });
}

void on_authenticated(session_actor* self, const std::string& user) {
  auto& st = self->state;
  st.authenticating = false;
  st.user = user;
  st.started = std::chrono::steady_clock::now();
  st.started_wall_ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                         std::chrono::system_clock::now().time_since_epoch())
                         .count();
  reality_check(self);
  auto pending = std::move(st.pending);
  st.pending.clear();
  for (auto& text : pending)
    on_client_frame(self, text);
}

caf::behavior stream_session(session_actor* self, directory dir, token_validator validate,
                             std::shared_ptr<stream_outbox> outbox, stream_options options) {
  auto& st = self->state;
  st.dir = std::move(dir);
  st.validate = std::move(validate);
  st.outbox = std::move(outbox);
  st.options = options;
  self->delayed_send(self, options.auth_timeout, auth_timeout_atom::value);
  // A session that passivated or crashed is attached to again: the new one
  // answers the wallet as it is, so nothing is missed.
  self->set_down_handler([self](caf::down_msg& dm) {
    auto& st = self->state;
    if (!st.session || dm.source != st.session)
      return;
    st.session = nullptr;
    attach_to_session(self);
  });
  return {
    [self](stream_text_atom, const std::string& text) { on_client_frame(self, text); },
    [self](auth_result_atom, bool ok, const std::string& user) {
      if (!ok || user.empty())
        return refuse(self, "unauthorized", "the token is not valid");
      watch_wallet(self);
      on_authenticated(self, user);
    },
    [self](session_closed_atom, const std::string& why) { refuse(self, "unauthorized", why); },
    [self](auth_timeout_atom) {
      if (self->state.user.empty())
        refuse(self, "unauthorized", "no auth message in time");
    },
    [self](const market_update& u) { on_market_update(self, u); },
    [self](subscription_ended_atom, const market_id& m) {
      auto& st = self->state;
      if (st.markets.erase(m.value) > 0)
        subscribe_one(self, m.value); // a fresh snapshot tells what was missed
    },
    [self](const bet& b) { push_reliable(self, bet_message(b)); },
    [self](const wallet_balance& b) { push_reliable(self, wallet_message(b)); },
    [self](watch_ended_atom, const user_id&) { watch_wallet(self); },
    [self](reality_tick_atom) { reality_check(self); },
  };
}

} // namespace

caf::actor spawn_stream_session(caf::actor_system& system, directory dir,
                                token_validator validate,
                                std::shared_ptr<stream_outbox> outbox,
                                stream_options options) {
  // Markets and the wallet monitor their subscribers, so a session that
  // ends is dropped from them without a message of its own.
  return system.spawn(stream_session, std::move(dir), std::move(validate), std::move(outbox),
                      options);
}

websocket_handler make_stream_handler(platform& p, stream_options options) {
  return make_stream_handler(p, token_validator{}, options);
}

websocket_handler make_stream_handler(platform& p, token_validator validate,
                                      stream_options options) {
  auto* system = &p.system();
  auto dir = p.directory();
  // 100 us to 5 s.
  options.feed_push_seconds =
    &prometheus::BuildHistogram()
       .Name("wager_feed_push_latency_seconds")
       .Help("Feed message received by the node to its change handed to a WebSocket session")
       .Register(p.metrics().registry())
       .Add({}, prometheus::Histogram::BucketBoundaries{0.0001, 0.00025, 0.0005, 0.001, 0.0025,
                                                        0.005, 0.01, 0.025, 0.05, 0.1, 0.25,
                                                        0.5, 1, 2.5, 5});
  return [system, dir, validate, options](const http_request&,
                                          std::shared_ptr<stream_outbox> outbox) {
    auto session = spawn_stream_session(*system, dir, validate, std::move(outbox), options);
    websocket_callbacks cb;
    cb.on_text = [session](std::string text) {
      caf::anon_send(session, stream_text_atom::value, std::move(text));
    };
    cb.on_closed = [session] { caf::anon_send_exit(session, caf::exit_reason::user_shutdown); };
    return cb;
  };
}

} // namespace wager
