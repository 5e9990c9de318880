#pragma once

// The user entity (`user/<username>`) and the login session entity
// (`session/<session id>`): who may act on a wallet, and with which token.
//
// Both hold state only; the slow work (password hashing, TOTP) is the
// caller's, off the actor threads (the gateway runs it on its worker pool):
// a user answers its stored password hash, the caller verifies it. Their
// journal streams are the format the gateway wrote before these entities:
//   user/<username>:   user_created {user_id, username, password_hash},
//                      mfa_enrolled {secret}, mfa_confirmed {}
//   session/<id>:      session_created {user_id, username, expires_at,
//                      secret_sha256}, session_revoked {}
// A username is taken by the first user_created of its stream: the entity
// refuses a second, and the journal's sequence check refuses one from a
// stale copy on another node.
//
// Errors: username_taken, not_found, unauthorized, already_exists,
// illegal_transition, invalid_field, journal_failure, unavailable.

#include "wager/runtime/directory.hpp"
#include "wager/runtime/message_types.hpp"

#include <caf/meta/type_name.hpp>

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>

namespace wager {

class journal;

// -- user --------------------------------------------------------------------

// -> user_credentials. username_taken if the user exists.
struct create_user_cmd {
  std::string user_id;
  std::string password_hash; // the KDF's encoded hash, never the password
};

// -> user_credentials. not_found if there is no such user.
struct credentials_query {};

// Stores a new unconfirmed TOTP secret (replacing an unconfirmed one).
// -> user_credentials
struct enrol_mfa_cmd {
  std::string secret;
};

// The caller verified a code against `secret`, the pending one it read;
// confirming makes it required at login. illegal_transition if the pending
// secret changed meanwhile, not_found if none is pending.
// -> user_credentials
struct confirm_mfa_cmd {
  std::string secret;
};

struct user_credentials {
  std::string user_id;
  std::string username;
  std::string password_hash;
  std::string mfa_pending; // enrolled, not confirmed
  std::string mfa_secret;  // confirmed: required at login
};

// -- session -----------------------------------------------------------------

struct session_info {
  std::string session_id;
  std::string user_id;
  std::string username;
  int64_t expires_at_ms = 0;
};

// -> session_info. already_exists if the id is taken (ids are random: only
// a retry of the same create is a no-op).
struct create_session_cmd {
  session_info info;
  std::string secret_sha256; // hex SHA-256 of the token's secret
};

// Checks a token's secret (its hex SHA-256) in constant time. -> session_info,
// or unauthorized for an unknown, expired, revoked or wrong one.
struct check_session_cmd {
  std::string secret_sha256;
};

// -> session_info (revoking twice is a no-op). unauthorized if unknown.
struct revoke_session_cmd {};

struct identity_options {
  // Users change rarely: a snapshot every this many events.
  uint32_t snapshot_every = 64;
};

activate_fn user_activator(std::shared_ptr<journal> j, identity_options options = {});
activate_fn session_activator(std::shared_ptr<journal> j, identity_options options = {});

// -- CAF inspection ----------------------------------------------------------

template <class I>
typename I::result_type inspect(I& f, create_user_cmd& x) {
  return f(caf::meta::type_name("wager::create_user_cmd"), x.user_id, x.password_hash);
}
template <class I>
typename I::result_type inspect(I& f, credentials_query&) {
  return f(caf::meta::type_name("wager::credentials_query"));
}
template <class I>
typename I::result_type inspect(I& f, enrol_mfa_cmd& x) {
  return f(caf::meta::type_name("wager::enrol_mfa_cmd"), x.secret);
}
template <class I>
typename I::result_type inspect(I& f, confirm_mfa_cmd& x) {
  return f(caf::meta::type_name("wager::confirm_mfa_cmd"), x.secret);
}
template <class I>
typename I::result_type inspect(I& f, user_credentials& x) {
  return f(caf::meta::type_name("wager::user_credentials"), x.user_id, x.username,
           x.password_hash, x.mfa_pending, x.mfa_secret);
}
template <class I>
typename I::result_type inspect(I& f, session_info& x) {
  return f(caf::meta::type_name("wager::session_info"), x.session_id, x.user_id, x.username,
           x.expires_at_ms);
}
template <class I>
typename I::result_type inspect(I& f, create_session_cmd& x) {
  return f(caf::meta::type_name("wager::create_session_cmd"), x.info, x.secret_sha256);
}
template <class I>
typename I::result_type inspect(I& f, check_session_cmd& x) {
  return f(caf::meta::type_name("wager::check_session_cmd"), x.secret_sha256);
}
template <class I>
typename I::result_type inspect(I& f, revoke_session_cmd&) {
  return f(caf::meta::type_name("wager::revoke_session_cmd"));
}

// The messages above that may cross nodes (runtime/message_types.hpp).
inline constexpr message_types user_messages{
  message_type<create_user_cmd>{"wager::create_user_cmd"},
  message_type<credentials_query>{"wager::credentials_query"},
  message_type<enrol_mfa_cmd>{"wager::enrol_mfa_cmd"},
  message_type<confirm_mfa_cmd>{"wager::confirm_mfa_cmd"},
  message_type<user_credentials>{"wager::user_credentials"},
  message_type<session_info>{"wager::session_info"},
  message_type<create_session_cmd>{"wager::create_session_cmd"},
  message_type<check_session_cmd>{"wager::check_session_cmd"},
  message_type<revoke_session_cmd>{"wager::revoke_session_cmd"},
};

} // namespace wager
