#include "wager/actors/user.hpp"

#include "wager/actors/journaled.hpp"
#include "wager/runtime/errors.hpp"

#include <boost/json.hpp>
#include <caf/all.hpp>

namespace wager {

namespace json = boost::json;

namespace {

std::string str(const json::object& o, std::string_view key) {
  auto* v = o.if_contains(key);
  return v && v->is_string() ? std::string{v->as_string()} : std::string{};
}

int64_t int_of(const json::object& o, std::string_view key) {
  auto* v = o.if_contains(key);
  return v && v->is_int64() ? v->as_int64() : 0;
}

// Compares two secrets' digests without stopping at the first difference,
// so the time taken says nothing about how much of a guess was right.
bool constant_time_same(std::string_view a, std::string_view b) {
  if (a.size() != b.size())
    return false;
  unsigned char diff = 0;
  for (size_t i = 0; i < a.size(); ++i)
    diff |= static_cast<unsigned char>(a[i] ^ b[i]);
  return diff == 0;
}

// -- folds -------------------------------------------------------------------

struct user_state {
  uint64_t seq = 0;
  user_credentials credentials; // user_id empty: no such user
};

struct session_state {
  uint64_t seq = 0;
  session_info info; // user_id empty: no such session
  std::string secret_sha256;
  bool revoked = false;
};

// The journal's events are these entities' events: nothing to translate.
struct identity_events {
  using event_type = event;
  static std::optional<event> decode(const event& e) { return e; }
  static event encode(const event& e) { return e; }
};

struct user_traits : identity_events {
  using state_type = user_state;
  static constexpr uint32_t snapshot_version = 1;
  static uint64_t seq_of(const user_state& s) { return s.seq; }
  static void apply(user_state& s, const event& e, uint64_t seq, int64_t) {
    auto doc = e.json();
    auto* o = doc.if_object();
    auto& c = s.credentials;
    if (o != nullptr && e.type == "user_created") {
      c.user_id = str(*o, "user_id");
      c.username = str(*o, "username");
      c.password_hash = str(*o, "password_hash");
    } else if (o != nullptr && e.type == "mfa_enrolled") {
      c.mfa_pending = str(*o, "secret");
    } else if (e.type == "mfa_confirmed") {
      c.mfa_secret = c.mfa_pending;
      c.mfa_pending.clear();
    }
    s.seq = seq;
  }
  static void check(const user_state&) {}
  static bool open_work(const user_state&) { return false; }
  static json::value to_json(const user_state& s) {
    auto& c = s.credentials;
    return json::object{{"seq", s.seq},
                        {"user_id", c.user_id},
                        {"username", c.username},
                        {"password_hash", c.password_hash},
                        {"mfa_pending", c.mfa_pending},
                        {"mfa_secret", c.mfa_secret}};
  }
  static std::optional<user_state> from_json(const json::value& v) {
    auto* o = v.if_object();
    if (o == nullptr || int_of(*o, "seq") <= 0)
      return std::nullopt;
    user_state s;
    s.seq = static_cast<uint64_t>(int_of(*o, "seq"));
    s.credentials = {str(*o, "user_id"), str(*o, "username"), str(*o, "password_hash"),
                     str(*o, "mfa_pending"), str(*o, "mfa_secret")};
    return s;
  }
};

struct session_traits : identity_events {
  using state_type = session_state;
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

CAF_ALLOW_UNSAFE_MESSAGE_TYPE(std::shared_ptr<wager::recovery<wager::user_state>>)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(std::shared_ptr<wager::recovery<wager::session_state>>)

namespace wager {
namespace {

// -- the shared entity shell ---------------------------------------------------

template <class Traits>
struct identity_state {
  std::unique_ptr<journaled<Traits>> book;
  std::string key; // the username or the session id
  bool passivating = false;
  static inline const char* name = "wager.identity";
};

template <class Traits>
using identity_actor = caf::stateful_actor<identity_state<Traits>>;

template <class Traits>
void maybe_quit(identity_actor<Traits>* self) {
  if (self->state.passivating && self->state.book->pending() == 0)
    self->quit();
}

// Persists `e` and answers `reply(state)` once it is durable.
template <class Traits, class Reply>
caf::result<caf::message> persist_then(identity_actor<Traits>* self, event e, Reply reply) {
  auto rp = self->make_response_promise();
  self->state.book->persist(self, {std::move(e)}, nullptr,
                            [self, rp, reply](const caf::error& err) mutable {
                              if (err)
                                rp.deliver(err);
                              else
                                rp.deliver(reply(self->state.book->state()));
                              maybe_quit(self);
                            });
  return rp;
}

// Recovers, then runs `running(self)`. A failed append stops the entity: its
// callers got the error, and the next message activates it from the
// journal again.
template <class Traits, class Running>
activate_fn identity_activator(std::shared_ptr<journal> j, const char* kind,
                               identity_options options, Running running) {
  using actor_type = identity_actor<Traits>;
  using recovery_ptr = std::shared_ptr<recovery<typename Traits::state_type>>;
  return [j, kind, options, running](const activation_context& ctx) -> caf::actor {
    auto key = ctx.id.key;
    return ctx.system.spawn([j, kind, options, running, key](actor_type* self) -> caf::behavior {
      auto& st = self->state;
      st.key = key;
      st.book = std::make_unique<journaled<Traits>>(j, std::string{kind} + "/" + key,
                                                    options.snapshot_every);
      begin_recovery(self);
      if (auto err = st.book->recover(self)) {
        self->quit(err);
        return {};
      }
      return {
        [self, running](recovered_atom, recovery_ptr& r) {
          if (r->error)
            return self->quit(r->error);
          self->state.book->recovered(std::move(r->state));
          caf::behavior handlers = running(self).or_else(
            [self](persisted_atom, uint64_t token, caf::error& err) {
              if (!self->state.book->on_persisted(self, token, err))
                self->quit(err);
            },
            [self](passivate_atom) {
              self->state.passivating = true;
              maybe_quit(self);
            });
          end_recovery(self, std::move(handlers));
        },
      };
    });
  };
}

caf::message_handler user_running(identity_actor<user_traits>* self) {
  auto creds = [](const user_state& s) { return s.credentials; };
  return {
    [self, creds](create_user_cmd& cmd) -> caf::result<caf::message> {
      auto& s = self->state.book->state();
      if (!s.credentials.user_id.empty())
        return make_error(errc::username_taken, "the username is taken", "username");
      if (cmd.user_id.empty() || cmd.password_hash.empty())
        return make_error(errc::invalid_field, "a user needs an id and a password hash");
      return persist_then(self,
                          event::make("user_created", 1,
                                      json::object{{"user_id", cmd.user_id},
                                                   {"username", self->state.key},
                                                   {"password_hash", cmd.password_hash}}),
                          creds);
    },
    [self](credentials_query) -> caf::result<user_credentials> {
      auto& s = self->state.book->state();
      if (s.credentials.user_id.empty())
        return make_error(errc::not_found, "no such user");
      return s.credentials;
    },
    [self, creds](enrol_mfa_cmd& cmd) -> caf::result<caf::message> {
      auto& s = self->state.book->state();
      if (s.credentials.user_id.empty())
        return make_error(errc::not_found, "no such user");
      if (cmd.secret.empty())
        return make_error(errc::invalid_field, "the secret is empty", "secret");
      return persist_then(self, event::make("mfa_enrolled", 1, json::object{{"secret", cmd.secret}}),
                          creds);
    },
    [self, creds](confirm_mfa_cmd& cmd) -> caf::result<caf::message> {
      auto& c = self->state.book->state().credentials;
      if (c.user_id.empty() || c.mfa_pending.empty())
        return make_error(errc::not_found, "no totp enrolment to confirm");
      if (!constant_time_same(c.mfa_pending, cmd.secret))
        return make_error(errc::illegal_transition, "a newer enrolment replaced this one");
      return persist_then(self, event::make("mfa_confirmed", 1, json::object{}), creds);
    },
  };
}

caf::message_handler session_running(identity_actor<session_traits>* self) {
  auto unauthorized = [] {
    return make_error(errc::unauthorized, "the token is missing, unknown, expired or revoked");
  };
  auto info = [self](const session_state& s) {
    auto out = s.info;
    out.session_id = self->state.key;
    return out;
  };
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
    [self, info, unauthorized](check_session_cmd& cmd) -> caf::result<session_info> {
      auto& s = self->state.book->state();
      bool ok = !s.info.user_id.empty() && !s.revoked && s.info.expires_at_ms > now_ms()
                && constant_time_same(s.secret_sha256, cmd.secret_sha256);
      if (!ok)
        return unauthorized();
      return info(s);
    },
    [self, info, unauthorized](revoke_session_cmd) -> caf::result<caf::message> {
      auto& s = self->state.book->state();
      if (s.info.user_id.empty())
        return unauthorized();
      if (s.revoked)
        return caf::make_message(info(s));
      return persist_then(self, event::make("session_revoked", 1, json::object{}), info);
    },
  };
}


} // namespace

activate_fn user_activator(std::shared_ptr<journal> j, identity_options options) {
  return identity_activator<user_traits>(std::move(j), "user", options, user_running);
}

activate_fn session_activator(std::shared_ptr<journal> j, identity_options options) {
  return identity_activator<session_traits>(std::move(j), "session", options, session_running);
}

} // namespace wager
