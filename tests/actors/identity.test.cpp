// The user and session entities: state kept in the journal, checked in the
// actor, the same after a restart, and refusing what a user must not do.

#include "money_fixture.hpp"

#include <doctest/doctest.h>

using namespace wager;
using namespace wager::test;

namespace {

caf::expected<user_credentials> create_user(platform& p, const std::string& name,
                                            const std::string& id, const std::string& hash) {
  return await<user_credentials>(
    [&](auto done) { p.create_user(name, create_user_cmd{id, hash}, done); });
}

caf::expected<user_credentials> credentials(platform& p, const std::string& name) {
  return await<user_credentials>([&](auto done) { p.user_credentials_of(name, done); });
}

caf::expected<session_info> create_session(platform& p, session_info info,
                                           const std::string& secret) {
  return await<session_info>(
    [&](auto done) { p.create_session(create_session_cmd{std::move(info), secret}, done); });
}

caf::expected<session_info> check(platform& p, const std::string& id, const std::string& secret) {
  return await<session_info>([&](auto done) { p.check_session(id, secret, done); });
}

caf::expected<session_info> revoke(platform& p, const std::string& id) {
  return await<session_info>([&](auto done) { p.revoke_session(id, done); });
}

session_info session_of(const std::string& id, int64_t expires_at_ms) {
  return {id, "u-1", "alice", expires_at_ms};
}

} // namespace

TEST_CASE("a username is taken once and its credentials survive a restart") {
  money_world w;
  CHECK(code(credentials(w.p(), "alice")) == errc::not_found);
  auto created = create_user(w.p(), "alice", "u-1", "pbkdf2$hash");
  REQUIRE(created);
  CHECK(created->user_id == "u-1");
  CHECK(created->username == "alice");
  CHECK(code(create_user(w.p(), "alice", "u-2", "pbkdf2$other")) == errc::username_taken);
  CHECK(code(create_user(w.p(), "bob", "", "h")) == errc::invalid_field);
  CHECK(code(credentials(w.p(), "bob")) == errc::not_found);
  w.restart();
  auto again = credentials(w.p(), "alice");
  REQUIRE(again);
  CHECK(again->user_id == "u-1");
  CHECK(again->password_hash == "pbkdf2$hash");
  CHECK(code(create_user(w.p(), "alice", "u-3", "h")) == errc::username_taken);
}

TEST_CASE("a totp secret is required only once confirmed, and only the pending one confirms") {
  money_world w;
  REQUIRE(create_user(w.p(), "alice", "u-1", "h"));
  auto confirm = [&](const std::string& secret) {
    return await<user_credentials>([&](auto done) { w.p().confirm_mfa("alice", secret, done); });
  };
  auto enrol = [&](const std::string& secret) {
    return await<user_credentials>([&](auto done) { w.p().enrol_mfa("alice", secret, done); });
  };
  CHECK(code(confirm("S1")) == errc::not_found);
  REQUIRE(enrol("S1"));
  REQUIRE(enrol("S2")); // replaces the unconfirmed one
  auto c = credentials(w.p(), "alice");
  REQUIRE(c);
  CHECK(c->mfa_pending == "S2");
  CHECK(c->mfa_secret.empty());
  CHECK(code(confirm("S1")) == errc::illegal_transition);
  REQUIRE(confirm("S2"));
  w.restart();
  c = credentials(w.p(), "alice");
  REQUIRE(c);
  CHECK(c->mfa_secret == "S2");
  CHECK(c->mfa_pending.empty());
  CHECK(code(enrol("")) == errc::invalid_field);
  CHECK(code(await<user_credentials>([&](auto done) { w.p().enrol_mfa("nobody", "S", done); }))
        == errc::not_found);
}

TEST_CASE("a session answers only its own secret, until it expires or is revoked, also after a "
          "restart") {
  money_world w;
  auto id = std::string(32, 'a');
  auto later = wall_ms() + 60'000;
  auto made = create_session(w.p(), session_of(id, later), "sha-of-secret");
  REQUIRE(made);
  CHECK(made->session_id == id);
  // A retry of the same create is its first answer; another is refused.
  CHECK(create_session(w.p(), session_of(id, later), "sha-of-secret"));
  CHECK(code(create_session(w.p(), session_of(id, later), "other")) == errc::already_exists);
  auto ok = check(w.p(), id, "sha-of-secret");
  REQUIRE(ok);
  CHECK(ok->username == "alice");
  CHECK(ok->expires_at_ms == later);
  CHECK(code(check(w.p(), id, "sha-of-secreT")) == errc::unauthorized);
  CHECK(code(check(w.p(), id, "")) == errc::unauthorized);
  CHECK(code(check(w.p(), std::string(32, 'b'), "sha-of-secret")) == errc::unauthorized);
  w.restart();
  CHECK(check(w.p(), id, "sha-of-secret"));
  REQUIRE(revoke(w.p(), id));
  CHECK(code(check(w.p(), id, "sha-of-secret")) == errc::unauthorized);
  CHECK(revoke(w.p(), id)); // twice is a no-op
  w.restart();
  CHECK(code(check(w.p(), id, "sha-of-secret")) == errc::unauthorized);
  CHECK(code(revoke(w.p(), std::string(32, 'c'))) == errc::unauthorized);

  auto expired = std::string(32, 'd');
  REQUIRE(create_session(w.p(), session_of(expired, wall_ms() - 1), "s"));
  CHECK(code(check(w.p(), expired, "s")) == errc::unauthorized);
}
