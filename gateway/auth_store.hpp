#pragma once

// Sign-up, login, tokens and TOTP over the user and session entities
// (actors/user.hpp): the entities keep the state, journaled, so a token
// works on any node sharing the journal; this class does the slow parts
// (PBKDF2, random secrets) on the worker pool, never on an actor thread.
// When the pool is full the answer is errc::unavailable at once, on the
// caller's thread. Answers come on a pool thread or an actor thread.
//
// Tokens are "<session id>.<secret>"; the journal holds only the secret's
// SHA-256, so a journal copy grants no sessions. A token is checked by its
// session entity (actors/session.hpp) on every request that carries it, so
// a revocation is seen at once on every node.

#include "wager/actors/user.hpp"
#include "wager/gateway/auth.hpp"

#include <caf/error.hpp>
#include <caf/expected.hpp>

#include <chrono>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

namespace wager {

class platform;

struct auth_options {
  uint32_t pbkdf2_iterations = pbkdf2_iterations_default;
  std::chrono::milliseconds session_ttl = std::chrono::hours{24};
  std::string totp_issuer = "Wager";
};

// A bearer token taken apart: the session entity's id, and the SHA-256 of
// its secret, which is what the entity compares.
struct session_token {
  std::string session_id;
  std::string secret_sha256;
};

// nullopt unless `token` has the form login hands out (32 characters of id,
// a dot, 64 of secret); its session still has to accept it.
std::optional<session_token> parse_session_token(std::string_view token);

struct session_grant {
  std::string token;
  session_info session;
};

struct mfa_enrolment {
  std::string secret; // base32
  std::string otpauth_uri;
};

class auth_store {
public:
  template <class T>
  using done_fn = std::function<void(caf::expected<T>)>;
  using status_fn = std::function<void(caf::error)>;

  auth_store(platform& p, worker_pool& pool, auth_options options);

  // -> user_id; username_taken.
  void create_user(std::string username, std::string password, done_fn<std::string> done);

  // invalid_credentials (unknown user or wrong password, alike), mfa_required,
  // invalid_mfa_code.
  void login(std::string username, std::string password, std::optional<std::string> totp,
             done_fn<session_grant> done);

  void revoke(session_info session, status_fn done);

  // A new (unconfirmed) secret; replaces an unconfirmed one.
  void enrol_mfa(session_info session, done_fn<mfa_enrolment> done);

  // invalid_mfa_code; not_found when nothing is enrolled.
  void confirm_mfa(session_info session, std::string code, status_fn done);

private:
  void start_session(const std::string& username, const user_credentials& user,
                     done_fn<session_grant> done);

  // Runs `work` on the pool, or answers unavailable.
  bool run(std::function<void()> work);

  platform& platform_;
  worker_pool& pool_;
  auth_options options_;
  // A hash of a random password, verified against for unknown users so that
  // a missing user takes as long as a wrong password.
  std::string decoy_hash_;
};

} // namespace wager
