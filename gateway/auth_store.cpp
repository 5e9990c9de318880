#include "wager/gateway/auth_store.hpp"

#include "wager/persistence/journal.hpp"
#include "wager/runtime/errors.hpp"

#include <boost/json.hpp>

#include <future>

namespace wager {

namespace json = boost::json;

namespace {

// A user stream is a handful of events; more is corruption.
constexpr uint32_t user_events_max = 1024;

struct user_record {
  uint64_t seq = 0; // 0: no such user
  std::string user_id;
  std::string password_hash;
  std::string mfa_pending; // enrolled, not confirmed
  std::string mfa_secret;  // confirmed: required at login
};

struct session_record {
  uint64_t seq = 0;
  session_info info;
  std::string secret_sha256;
  bool revoked = false;
};

int64_t wall_ms() {
  using namespace std::chrono;
  return duration_cast<milliseconds>(system_clock::now().time_since_epoch()).count();
}

std::string str(const json::object& o, std::string_view key) {
  auto* v = o.if_contains(key);
  return v && v->is_string() ? std::string{v->as_string()} : std::string{};
}

caf::expected<append_ack> append_sync(journal& j, append_request req) {
  auto done = std::make_shared<std::promise<caf::expected<append_ack>>>();
  auto result = done->get_future();
  if (auto err = j.append(std::move(req), [done](caf::expected<append_ack> r) {
        done->set_value(std::move(r));
      }))
    return err;
  return result.get();
}

caf::expected<user_record> load_user(journal& j, const std::string& username) {
  auto events = j.read_events("user/" + username, 1, user_events_max);
  if (!events)
    return events.error();
  user_record u;
  for (auto& rec : *events) {
    auto doc = rec.data.json();
    if (!doc.is_object())
      continue;
    auto& o = doc.as_object();
    if (rec.data.type == "user_created") {
      u.user_id = str(o, "user_id");
      u.password_hash = str(o, "password_hash");
    } else if (rec.data.type == "mfa_enrolled") {
      u.mfa_pending = str(o, "secret");
    } else if (rec.data.type == "mfa_confirmed") {
      u.mfa_secret = u.mfa_pending;
      u.mfa_pending.clear();
    }
    u.seq = rec.seq;
  }
  return u;
}

caf::expected<session_record> load_session(journal& j, const std::string& id) {
  auto events = j.read_events("session/" + id, 1, 16);
  if (!events)
    return events.error();
  session_record s;
  for (auto& rec : *events) {
    auto doc = rec.data.json();
    if (!doc.is_object())
      continue;
    auto& o = doc.as_object();
    if (rec.data.type == "session_created") {
      s.info.session_id = id;
      s.info.user_id = str(o, "user_id");
      s.info.username = str(o, "username");
      if (auto* v = o.if_contains("expires_at"); v && v->is_int64())
        s.info.expires_at_ms = v->as_int64();
      s.secret_sha256 = str(o, "secret_sha256");
    } else if (rec.data.type == "session_revoked") {
      s.revoked = true;
    }
    s.seq = rec.seq;
  }
  return s;
}

caf::error unauthorized() {
  return make_error(errc::unauthorized, "the token is missing, unknown, expired or revoked");
}

// A journal that cannot serve the read is unavailable, not a wrong password.
caf::error as_unavailable(const caf::error& err) {
  auto code = code_of(err);
  if (code == errc::unavailable || code == errc::journal_failure || code == errc::internal)
    return make_error(errc::unavailable, "the journal is unavailable, retry later");
  return err;
}

} // namespace

auth_store::auth_store(journal& j, worker_pool& pool, auth_options options)
  : journal_(j), pool_(pool), options_(std::move(options)),
    decoy_hash_(hash_password(random_hex(16), options_.pbkdf2_iterations)) {}

bool auth_store::run(std::function<void()> work) {
  return pool_.post(std::move(work));
}

std::optional<auth_store::cached> auth_store::cache_get(const std::string& id) {
  std::lock_guard lock{mutex_};
  auto i = sessions_.find(id);
  if (i == sessions_.end())
    return std::nullopt;
  if (std::chrono::steady_clock::now() - i->second.checked > options_.session_cache_ttl) {
    sessions_.erase(i);
    return std::nullopt;
  }
  return i->second;
}

void auth_store::cache_put(const std::string& id, cached entry) {
  std::lock_guard lock{mutex_};
  if (sessions_.size() >= options_.sessions_cached_max && sessions_.count(id) == 0)
    sessions_.clear(); // rare; everything is re-read from the journal
  sessions_[id] = std::move(entry);
}

void auth_store::create_user(std::string username, std::string password,
                             done_fn<std::string> done) {
  auto ok = run([this, username, password, done] {
    auto user_id = "u-" + random_hex(12);
    append_request req;
    req.stream = "user/" + username;
    req.expected_seq = 0;
    req.from_read = true;
    req.events.push_back(event::make(
      "user_created", 1,
      json::object{{"user_id", user_id},
                   {"username", username},
                   {"password_hash", hash_password(password, options_.pbkdf2_iterations)}}));
    auto r = append_sync(journal_, std::move(req));
    if (!r) {
      if (code_of(r.error()) == errc::sequence_conflict)
        return done(make_error(errc::username_taken, "the username is taken", "username"));
      return done(as_unavailable(r.error()));
    }
    done(user_id);
  });
  if (!ok)
    done(make_error(errc::unavailable, "too many sign-ups at once, retry later"));
}

void auth_store::login(std::string username, std::string password,
                       std::optional<std::string> totp, done_fn<session_grant> done) {
  auto ok = run([this, username, password, totp, done] {
    auto user = load_user(journal_, username);
    if (!user)
      return done(as_unavailable(user.error()));
    if (user->seq == 0) {
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
    session_grant grant;
    grant.session.session_id = random_hex(16);
    grant.session.user_id = user->user_id;
    grant.session.username = username;
    grant.session.expires_at_ms = wall_ms() + options_.session_ttl.count();
    auto secret = random_hex(32);
    grant.token = grant.session.session_id + "." + secret;
    append_request req;
    req.stream = "session/" + grant.session.session_id;
    req.events.push_back(event::make(
      "session_created", 1,
      json::object{{"user_id", grant.session.user_id},
                   {"username", username},
                   {"expires_at", grant.session.expires_at_ms},
                   {"secret_sha256", sha256_hex(secret)}}));
    auto r = append_sync(journal_, std::move(req));
    if (!r)
      return done(as_unavailable(r.error()));
    cache_put(grant.session.session_id,
              {grant.session, sha256_hex(secret), false, std::chrono::steady_clock::now()});
    done(std::move(grant));
  });
  if (!ok)
    done(make_error(errc::unavailable, "too many logins at once, retry later"));
}

void auth_store::check(std::string token, done_fn<session_info> done) {
  auto dot = token.find('.');
  if (dot != 32 || token.size() != 32 + 1 + 64)
    return done(unauthorized());
  auto id = token.substr(0, dot);
  auto secret_sha = sha256_hex(std::string_view{token}.substr(dot + 1));
  auto decide = [done, secret_sha](const cached& c) {
    if (c.revoked || c.info.user_id.empty() || c.info.expires_at_ms <= wall_ms()
        || !constant_time_equal(c.secret_sha256, secret_sha))
      return done(unauthorized());
    done(c.info);
  };
  if (auto c = cache_get(id))
    return decide(*c);
  auto ok = run([this, id, decide, done] {
    auto s = load_session(journal_, id);
    if (!s)
      return done(as_unavailable(s.error()));
    cached c{s->info, s->secret_sha256, s->revoked, std::chrono::steady_clock::now()};
    if (s->seq > 0)
      cache_put(id, c);
    decide(c);
  });
  if (!ok)
    done(make_error(errc::unavailable, "too many requests at once, retry later"));
}

void auth_store::revoke(session_info session, status_fn done) {
  {
    // Refused here at once, before the journal has it.
    std::lock_guard lock{mutex_};
    if (auto i = sessions_.find(session.session_id); i != sessions_.end())
      i->second.revoked = true;
  }
  auto ok = run([this, session, done] {
    auto s = load_session(journal_, session.session_id);
    if (!s)
      return done(as_unavailable(s.error()));
    if (s->revoked)
      return done(caf::error{});
    append_request req;
    req.stream = "session/" + session.session_id;
    req.expected_seq = s->seq;
    req.from_read = true;
    req.events.push_back(event::make("session_revoked", 1, json::object{}));
    auto r = append_sync(journal_, std::move(req));
    if (!r)
      return done(as_unavailable(r.error()));
    cache_put(session.session_id,
              {s->info, s->secret_sha256, true, std::chrono::steady_clock::now()});
    done(caf::error{});
  });
  if (!ok)
    done(make_error(errc::unavailable, "too many requests at once, retry later"));
}

void auth_store::enrol_mfa(session_info session, done_fn<mfa_enrolment> done) {
  auto ok = run([this, session, done] {
    auto user = load_user(journal_, session.username);
    if (!user)
      return done(as_unavailable(user.error()));
    if (user->seq == 0)
      return done(unauthorized());
    mfa_enrolment out;
    out.secret = new_totp_secret();
    out.otpauth_uri = "otpauth://totp/" + options_.totp_issuer + ":" + session.username
                      + "?secret=" + out.secret + "&issuer=" + options_.totp_issuer
                      + "&algorithm=SHA1&digits=6&period=30";
    append_request req;
    req.stream = "user/" + session.username;
    req.expected_seq = user->seq;
    req.from_read = true;
    req.events.push_back(event::make("mfa_enrolled", 1, json::object{{"secret", out.secret}}));
    auto r = append_sync(journal_, std::move(req));
    if (!r)
      return done(make_error(errc::unavailable, "the enrolment did not save, retry"));
    done(std::move(out));
  });
  if (!ok)
    done(make_error(errc::unavailable, "too many requests at once, retry later"));
}

void auth_store::confirm_mfa(session_info session, std::string code, status_fn done) {
  auto ok = run([this, session, code, done] {
    auto user = load_user(journal_, session.username);
    if (!user)
      return done(as_unavailable(user.error()));
    if (user->mfa_pending.empty())
      return done(make_error(errc::not_found, "no totp enrolment to confirm"));
    if (!totp_verify(user->mfa_pending, code, wall_ms() / 1000))
      return done(make_error(errc::invalid_mfa_code, "the totp code is wrong", "code"));
    append_request req;
    req.stream = "user/" + session.username;
    req.expected_seq = user->seq;
    req.from_read = true;
    req.events.push_back(event::make("mfa_confirmed", 1, json::object{}));
    auto r = append_sync(journal_, std::move(req));
    if (!r)
      return done(make_error(errc::unavailable, "the confirmation did not save, retry"));
    done(caf::error{});
  });
  if (!ok)
    done(make_error(errc::unavailable, "too many requests at once, retry later"));
}

} // namespace wager
