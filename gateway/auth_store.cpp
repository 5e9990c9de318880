#include "wager/gateway/auth_store.hpp"

#include "wager/actors/platform.hpp"
#include "wager/runtime/errors.hpp"

namespace wager {

namespace {

int64_t wall_ms() {
  using namespace std::chrono;
  return duration_cast<milliseconds>(system_clock::now().time_since_epoch()).count();
}

caf::error unauthorized() {
  return make_error(errc::unauthorized, "the token is missing, unknown, expired or revoked");
}

// A journal that cannot serve the read is unavailable, not a wrong password.
caf::error as_unavailable(const caf::error& err) {
  auto code = code_of(err);
  if (code == errc::unavailable || code == errc::journal_failure || code == errc::internal
      || code == errc::none)
    return make_error(errc::unavailable, "the user store is unavailable, retry later");
  return err;
}

} // namespace

std::optional<session_token> parse_session_token(std::string_view token) {
  constexpr size_t id_size = 32, secret_size = 64;
  if (token.size() != id_size + 1 + secret_size || token[id_size] != '.')
    return std::nullopt;
  return session_token{std::string{token.substr(0, id_size)},
                       sha256_hex(token.substr(id_size + 1))};
}

auth_store::auth_store(platform& p, worker_pool& pool, auth_options options)
  : platform_(p), pool_(pool), options_(std::move(options)),
    decoy_hash_(hash_password(random_hex(16), options_.pbkdf2_iterations)) {}

bool auth_store::run(std::function<void()> work) {
  return pool_.post(std::move(work));
}

void auth_store::create_user(std::string username, std::string password,
                             done_fn<std::string> done) {
  auto ok = run([this, username, password, done] {
    create_user_cmd cmd{"u-" + random_hex(12), hash_password(password, options_.pbkdf2_iterations)};
    platform_.create_user(username, std::move(cmd), [done](caf::expected<user_credentials> r) {
      if (!r) {
        if (code_of(r.error()) == errc::username_taken)
          return done(r.error());
        return done(as_unavailable(r.error()));
      }
      done(r->user_id);
    });
  });
  if (!ok)
    done(make_error(errc::unavailable, "too many sign-ups at once, retry later"));
}

void auth_store::login(std::string username, std::string password,
                       std::optional<std::string> totp, done_fn<session_grant> done) {
  platform_.user_credentials_of(username, [this, username, password, totp,
                                           done](caf::expected<user_credentials> user) {
    if (!user && code_of(user.error()) != errc::not_found)
      return done(as_unavailable(user.error()));
    // The password is checked on the pool, also for an unknown user (against
    // a decoy), so both take as long as a wrong password.
    auto ok = run([this, username, password, totp, done, user] {
      if (!user) {
        verify_password(password, decoy_hash_);
        return done(make_error(errc::invalid_credentials, "wrong username or password"));
      }
      if (!verify_password(password, user->password_hash))
        return done(make_error(errc::invalid_credentials, "wrong username or password"));
      if (!user->mfa_secret.empty()) {
        if (!totp)
          return done(make_error(errc::mfa_required, "this account needs a totp code"));
        if (!totp_verify(user->mfa_secret, *totp, wall_ms() / 1000))
          return done(make_error(errc::invalid_mfa_code, "the totp code is wrong", "totp"));
      }
      start_session(username, *user, done);
    });
    if (!ok)
      done(make_error(errc::unavailable, "too many logins at once, retry later"));
  });
}

void auth_store::start_session(const std::string& username, const user_credentials& user,
                               done_fn<session_grant> done) {
  session_grant grant;
  grant.session.session_id = random_hex(16);
  grant.session.user_id = user.user_id;
  grant.session.username = username;
  grant.session.expires_at_ms = wall_ms() + options_.session_ttl.count();
  auto secret = random_hex(32);
  grant.token = grant.session.session_id + "." + secret;
  auto sha = sha256_hex(secret);
  platform_.create_session(create_session_cmd{grant.session, sha},
                           [grant, done](caf::expected<session_info> r) {
                             if (!r)
                               return done(as_unavailable(r.error()));
                             done(grant);
                           });
}

void auth_store::revoke(session_info session, status_fn done) {
  // The session entity refuses the token from the moment it has this.
  platform_.revoke_session(session.session_id, [done](caf::expected<session_info> r) {
    done(r ? caf::error{} : as_unavailable(r.error()));
  });
}

void auth_store::enrol_mfa(session_info session, done_fn<mfa_enrolment> done) {
  mfa_enrolment out;
  out.secret = new_totp_secret();
  out.otpauth_uri = "otpauth://totp/" + options_.totp_issuer + ":" + session.username
                    + "?secret=" + out.secret + "&issuer=" + options_.totp_issuer
                    + "&algorithm=SHA1&digits=6&period=30";
  platform_.enrol_mfa(session.username, out.secret,
                      [out, done](caf::expected<user_credentials> r) {
                        if (!r) {
                          if (code_of(r.error()) == errc::not_found)
                            return done(unauthorized());
                          return done(make_error(errc::unavailable,
                                                 "the enrolment did not save, retry"));
                        }
                        done(out);
                      });
}

void auth_store::confirm_mfa(session_info session, std::string code, status_fn done) {
  auto username = session.username;
  platform_.user_credentials_of(username, [this, username, code,
                                           done](caf::expected<user_credentials> user) {
    if (!user) {
      if (code_of(user.error()) == errc::not_found)
        return done(make_error(errc::not_found, "no totp enrolment to confirm"));
      return done(as_unavailable(user.error()));
    }
    if (user->mfa_pending.empty())
      return done(make_error(errc::not_found, "no totp enrolment to confirm"));
    // One HMAC: cheap enough for the actor thread that answered.
    if (!totp_verify(user->mfa_pending, code, wall_ms() / 1000))
      return done(make_error(errc::invalid_mfa_code, "the totp code is wrong", "code"));
    platform_.confirm_mfa(username, user->mfa_pending,
                          [done](caf::expected<user_credentials> r) {
                            if (!r && code_of(r.error()) == errc::illegal_transition)
                              return done(make_error(errc::invalid_mfa_code,
                                                     "a newer enrolment replaced this one",
                                                     "code"));
                            done(r ? caf::error{}
                                   : make_error(errc::unavailable,
                                                "the confirmation did not save, retry"));
                          });
  });
}

} // namespace wager
