#include "wager/actors/user.hpp"

#include "wager/actors/identity_entity.hpp"

namespace wager {
namespace {

using namespace identity_entity;

struct user_state {
  uint64_t seq = 0;
  user_credentials credentials; // user_id empty: no such user
};

struct no_live {};

struct user_traits : identity_events {
  using state_type = user_state;
  using live_type = no_live;
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

} // namespace
} // namespace wager

CAF_ALLOW_UNSAFE_MESSAGE_TYPE(std::shared_ptr<wager::recovery<wager::user_state>>)

namespace wager {
namespace {

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

} // namespace

activate_fn user_activator(std::shared_ptr<journal> j, identity_options options) {
  return identity_activator<user_traits>(std::move(j), "user", options, user_running);
}

} // namespace wager
