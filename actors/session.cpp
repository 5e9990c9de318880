// The login session entity (`session/<session id>`, user.hpp): its token,
// the requests it carries to the user's wallet and the user's live streams.

#include "wager/actors/session.hpp"

#include "wager/actors/identity_entity.hpp"

#include <algorithm>
#include <cmath>

namespace wager {
namespace {

using namespace identity_entity;

struct session_state {
  uint64_t seq = 0;
  session_info info; // user_id empty: no such session
  std::string secret_sha256;
  bool revoked = false;
};

// What a session knows only while it runs: its request budget and its live
// streams. Neither is journaled: a new incarnation starts with a full budget
// and its streams attach again.
struct session_live {
  double budget = -1; // requests left; below 0: not filled yet
  std::chrono::steady_clock::time_point refilled;
  std::vector<caf::actor> streams;
  bool watching = false; // the wallet pushes its changes here
  bool expiry_armed = false;
};

struct session_traits : identity_events {
  using state_type = session_state;
  using live_type = session_live;
  static constexpr uint32_t snapshot_version = 1;
  static uint64_t seq_of(const session_state& s) { return s.seq; }
  static void apply(session_state& s, const event& e, uint64_t seq, int64_t) {
    auto doc = e.json();
    auto* o = doc.if_object();
    if (o != nullptr && e.type == "session_created") {
      s.info.user_id = str(*o, "user_id");
      s.info.username = str(*o, "username");
      s.info.expires_at_ms = int_of(*o, "expires_at");
      s.secret_sha256 = str(*o, "secret_sha256");
    } else if (e.type == "session_revoked") {
      s.revoked = true;
    }
    s.seq = seq;
  }
  static void check(const session_state&) {}
  static bool open_work(const session_state&) { return false; }
  // Two events at most: never worth a snapshot, but the contract wants one.
  static json::value to_json(const session_state& s) {
    return json::object{{"seq", s.seq},
                        {"user_id", s.info.user_id},
                        {"username", s.info.username},
                        {"expires_at", s.info.expires_at_ms},
                        {"secret_sha256", s.secret_sha256},
                        {"revoked", s.revoked}};
  }
  static std::optional<session_state> from_json(const json::value& v) {
    auto* o = v.if_object();
    if (o == nullptr || int_of(*o, "seq") <= 0)
      return std::nullopt;
    session_state s;
    s.seq = static_cast<uint64_t>(int_of(*o, "seq"));
    s.info.user_id = str(*o, "user_id");
    s.info.username = str(*o, "username");
    s.info.expires_at_ms = int_of(*o, "expires_at");
    s.secret_sha256 = str(*o, "secret_sha256");
    auto* revoked = o->if_contains("revoked");
    s.revoked = revoked != nullptr && revoked->is_bool() && revoked->as_bool();
    return s;
  }
};

} // namespace
} // namespace wager

CAF_ALLOW_UNSAFE_MESSAGE_TYPE(std::shared_ptr<wager::recovery<wager::session_state>>)

namespace wager {
namespace {

// -- session -------------------------------------------------------------------

using session_actor = identity_actor<session_traits>;
using session_expiry_atom = caf::atom_constant<caf::atom("sessexpiry")>;

caf::error unauthorized_session() {
  return make_error(errc::unauthorized, "the token is missing, unknown, expired or revoked");
}

session_info info_of(session_actor* self) {
  auto out = self->state.book->state().info;
  out.session_id = self->state.key;
  return out;
}

// The token's secret is this session's, which is neither expired nor revoked.
bool token_valid(session_actor* self, const std::string& secret_sha256) {
  auto& s = self->state.book->state();
  return !s.info.user_id.empty() && !s.revoked && s.info.expires_at_ms > now_ms()
         && constant_time_same(s.secret_sha256, secret_sha256);
}

// Takes one request from the budget (a token bucket): 0, or the seconds
// until one is back, at least 1.
int64_t take_request(session_live& live) {
  auto now = std::chrono::steady_clock::now();
  if (live.budget < 0) {
    live.budget = session_request_burst;
  } else {
    std::chrono::duration<double> elapsed = now - live.refilled;
    live.budget =
      std::min(session_request_burst, live.budget + elapsed.count() * session_requests_per_s);
  }
  live.refilled = now;
  if (live.budget >= 1) {
    live.budget -= 1;
    return 0;
  }
  auto wait_s = std::ceil((1 - live.budget) / session_requests_per_s);
  return std::max<int64_t>(1, static_cast<int64_t>(wait_s));
}

entity_id wallet_of(session_actor* self) {
  return {"wallet", self->state.book->state().info.user_id};
}

template <class T>
void push_to_streams(session_actor* self, const T& x) {
  for (auto& s : self->state.live.streams)
    self->send(s, x);
}

void stop_watching(session_actor* self) {
  auto& live = self->state.live;
  if (live.watching)
    self->state.dir.send(self, wallet_of(self), unwatch_cmd{caf::actor{self}});
  live.watching = false;
}

// Tells every stream why it ends, and stops following the wallet.
void close_streams(session_actor* self, const std::string& why) {
  auto& live = self->state.live;
  for (auto& s : live.streams) {
    self->demonitor(s);
    self->send(s, session_closed_atom::value, why);
  }
  live.streams.clear();
  stop_watching(self);
}

// The session looks at its expiry at least this often while it has streams:
// a pending timer keeps a passivated session's actor allocated until it
// fires, so it must not be a day away.
constexpr int64_t expiry_check_ms_max = 60'000;

// Streams end when the session expires, as requests stop working then.
void arm_expiry(session_actor* self) {
  auto& live = self->state.live;
  if (live.expiry_armed)
    return;
  live.expiry_armed = true;
  auto left_ms = self->state.book->state().info.expires_at_ms - now_ms();
  auto wait_ms = std::clamp<int64_t>(left_ms + 1, 1, expiry_check_ms_max);
  self->delayed_send(self, std::chrono::milliseconds{wait_ms}, session_expiry_atom::value);
}

// Follows the wallet again after it passivated; the balance it answers goes
// to the streams, so they show what changed meanwhile.
void watch_again(session_actor* self) {
  auto& st = self->state;
  st.dir.request(self, session_wallet_timeout, wallet_of(self), watch_cmd{caf::actor{self}})
    .then(
      [self](wallet_balance& b) {
        self->state.live.watching = true;
        if (self->state.live.streams.empty())
          return stop_watching(self);
        push_to_streams(self, b);
      },
      [self](caf::error&) {
        // The wallet did not answer: the streams would miss its changes, so
        // they end and attach again, which retries the watch.
        for (auto& s : self->state.live.streams)
          self->send_exit(s, caf::exit_reason::user_shutdown);
      });
}

caf::result<stream_attached> attach_stream(session_actor* self, attach_stream_cmd& cmd) {
  if (!token_valid(self, cmd.secret_sha256))
    return unauthorized_session();
  auto rp = self->make_response_promise<stream_attached>();
  auto& st = self->state;
  // The wallet keeps one watch per watcher: asking again only answers the
  // balance, which is the stream's first message.
  st.dir.request(self, session_wallet_timeout, wallet_of(self), watch_cmd{caf::actor{self}})
    .then(
      [self, rp, stream = cmd.stream](wallet_balance& b) mutable {
        auto& live = self->state.live;
        live.watching = true;
        if (self->state.book->state().revoked) { // revoked while we waited
          if (live.streams.empty())
            stop_watching(self);
          rp.deliver(unauthorized_session());
          return;
        }
        if (std::find(live.streams.begin(), live.streams.end(), stream) == live.streams.end()) {
          self->monitor(stream);
          live.streams.push_back(stream);
        }
        arm_expiry(self);
        rp.deliver(stream_attached{info_of(self), b, caf::actor{self}});
      },
      [rp](caf::error& err) mutable { rp.deliver(std::move(err)); });
  return rp;
}

caf::message_handler session_running(session_actor* self) {
  auto info = [self](const session_state&) { return info_of(self); };
  self->set_down_handler([self](caf::down_msg& dm) {
    auto& streams = self->state.live.streams;
    streams.erase(std::remove(streams.begin(), streams.end(), dm.source), streams.end());
    if (streams.empty())
      stop_watching(self);
  });
  return {
    [self, info](create_session_cmd& cmd) -> caf::result<caf::message> {
      auto& s = self->state.book->state();
      if (!s.info.user_id.empty()) {
        if (s.secret_sha256 == cmd.secret_sha256 && s.info.user_id == cmd.info.user_id)
          return caf::make_message(info(s));
        return make_error(errc::already_exists, "a session with this id exists");
      }
      if (cmd.info.user_id.empty() || cmd.secret_sha256.empty())
        return make_error(errc::invalid_field, "a session needs a user and a secret");
      return persist_then(self,
                          event::make("session_created", 1,
                                      json::object{{"user_id", cmd.info.user_id},
                                                   {"username", cmd.info.username},
                                                   {"expires_at", cmd.info.expires_at_ms},
                                                   {"secret_sha256", cmd.secret_sha256}}),
                          info);
    },
    [self](check_session_cmd& cmd) -> caf::result<session_info> {
      if (!token_valid(self, cmd.secret_sha256))
        return unauthorized_session();
      return info_of(self);
    },
    [self](session_request_cmd& cmd) -> caf::result<caf::message> {
      if (!token_valid(self, cmd.secret_sha256))
        return unauthorized_session();
      if (auto wait_s = take_request(self->state.live))
        return make_error(errc::rate_limited, "too many requests, slow down",
                          std::to_string(wait_s));
      if (cmd.request.empty())
        return caf::make_message(info_of(self));
      // The wallet answers the caller directly.
      auto wallet = wallet_of(self);
      return self->delegate(self->state.dir.partition_for(wallet), route_atom::value, wallet,
                            std::move(cmd.request));
    },
    [self](attach_stream_cmd& cmd) { return attach_stream(self, cmd); },
    [self, info](revoke_session_cmd) -> caf::result<caf::message> {
      auto& s = self->state.book->state();
      if (s.info.user_id.empty())
        return unauthorized_session();
      if (s.revoked)
        return caf::make_message(info(s));
      return persist_then(self, event::make("session_revoked", 1, json::object{}),
                          [self, info](const session_state& now) {
                            close_streams(self, "the session was revoked");
                            return info(now);
                          });
    },
    [self](session_expiry_atom) {
      auto& live = self->state.live;
      live.expiry_armed = false;
      if (self->state.book->state().info.expires_at_ms <= now_ms())
        close_streams(self, "the session expired");
      else if (!live.streams.empty())
        arm_expiry(self);
    },
    [self](const bet& b) { push_to_streams(self, b); },
    [self](const wallet_balance& b) { push_to_streams(self, b); },
    [self](watch_ended_atom, const user_id&) {
      self->state.live.watching = false;
      if (!self->state.live.streams.empty())
        watch_again(self);
    },
  };
}

} // namespace

activate_fn session_activator(std::shared_ptr<journal> j, identity_options options) {
  return identity_activator<session_traits>(std::move(j), "session", options, session_running);
}

} // namespace wager
