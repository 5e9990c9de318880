// Users, sessions, TOTP and responsible-gambling limits.

#include "wager/gateway/api_internal.hpp"

#include <caf/make_message.hpp>

#include <algorithm>

namespace wager {

using namespace api;

namespace {

constexpr size_t username_min = 3, username_max = 32;
constexpr size_t password_min = 10, password_max = 128;

bool valid_username(std::string_view name) {
  for (char c : name)
    if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_'))
      return false;
  return true;
}

// Characters, not bytes: a password is UTF-8.
size_t utf8_length(std::string_view s) {
  size_t n = 0;
  for (unsigned char c : s)
    n += (c & 0xc0) != 0x80;
  return n;
}

std::optional<std::string> read_password(fields& f) {
  // Bytes are bounded first (4 per character at most), then characters.
  auto pw = f.string("password", password_min, password_max * 4);
  if (pw && (utf8_length(*pw) < password_min || utf8_length(*pw) > password_max)) {
    f.fail(errc::invalid_field, "password", "password must be 10 to 128 characters");
    return std::nullopt;
  }
  return pw;
}

json::value amount_or_null(int64_t minor) {
  return minor > 0 ? json::value(minor) : json::value(nullptr);
}

json::value time_or_null(int64_t ms) {
  return ms > 0 ? json::value(format_time(ms)) : json::value(nullptr);
}

json::object periods_json(const std::array<int64_t, 3>& amounts) {
  json::object o;
  for (auto p : limit_periods)
    o[to_string(p)] = amount_or_null(amounts[static_cast<size_t>(p)]);
  return o;
}

// Only the periods with a change pending; null is a pending removal.
json::object pending_json(const std::array<int64_t, 3>& amounts) {
  json::object o;
  for (auto p : limit_periods)
    if (auto a = amounts[static_cast<size_t>(p)]; a != nothing_pending)
      o[to_string(p)] = amount_or_null(a);
  return o;
}

json::object limits_json(const wallet_limits& w) {
  auto& l = w.limits;
  json::object o{{"deposit_limits", periods_json(l.deposit)},
                 {"loss_limits", periods_json(l.loss)},
                 {"time_out_until", time_or_null(l.time_out_until_ms)},
                 {"self_exclude_until", time_or_null(l.self_exclude_until_ms)},
                 {"reality_check_minutes", l.reality_check_minutes > 0
                                             ? json::value(l.reality_check_minutes)
                                             : json::value(nullptr)},
                 {"daily_deposit_limit",
                  amount_or_null(l.deposit[static_cast<size_t>(limit_period::day)])}};
  if (l.has_pending()) {
    json::object pending;
    if (auto d = pending_json(l.pending_deposit); !d.empty())
      pending["deposit_limits"] = std::move(d);
    if (auto d = pending_json(l.pending_loss); !d.empty())
      pending["loss_limits"] = std::move(d);
    pending["effective_at"] = format_time(l.pending_effective_ms);
    o["pending"] = std::move(pending);
  } else {
    o["pending"] = nullptr;
  }
  return o;
}

// `{day?, week?, month?}` under `key`: absent keeps a limit, null removes it
// (0), an amount sets it.
void read_periods(fields& f, const json::object& body, std::string_view key,
                  std::array<caf::optional<int64_t>, 3>& out) {
  auto* v = body.if_contains(key);
  if (!v)
    return;
  if (!v->is_object())
    return f.fail(errc::invalid_field, key,
                  std::string{key} + " must be an object of day, week and month");
  for (auto& kv : v->get_object()) {
    auto name = std::string{key} + "." + std::string{kv.key()};
    auto p = std::find_if(limit_periods.begin(), limit_periods.end(),
                          [&](limit_period q) { return to_string(q) == kv.key(); });
    if (p == limit_periods.end())
      return f.fail(errc::unknown_field, name, "unknown field " + name);
    auto& value = kv.value();
    if (value.is_null()) {
      out[static_cast<size_t>(*p)] = 0;
    } else if (value.is_int64() && value.get_int64() >= amount_min_minor
               && value.get_int64() <= amount_max_minor) {
      out[static_cast<size_t>(*p)] = value.get_int64();
    } else {
      return f.fail(errc::invalid_field, name,
                    name + " must be an integer from " + std::to_string(amount_min_minor)
                      + " to " + std::to_string(amount_max_minor) + ", or null to remove it");
    }
  }
}

// An end time that can be set and extended but never removed.
void read_end(fields& f, const json::object& body, std::string_view key,
              caf::optional<int64_t>& out) {
  auto* v = body.if_contains(key);
  if (!v)
    return;
  if (v->is_null())
    return f.fail(errc::invalid_field, key,
                  std::string{key} + " cannot be lifted or shortened before its end");
  auto text = f.string(key, 1, 64, false);
  if (!text)
    return;
  if (auto ms = parse_time(*text))
    out = *ms;
  else
    f.fail(errc::invalid_field, key,
           std::string{key} + " must be a UTC time like 2030-01-31T00:00:00Z");
}

} // namespace

void client_api::impl::create_user(const call_ptr& c) {
  auto body = parse_body(c);
  if (!body)
    return;
  fields f{*body};
  f.allow({"username", "password"});
  auto username = f.string("username", username_min, username_max);
  if (username && !valid_username(*username))
    f.fail(errc::invalid_field, "username", "username must be 3 to 32 of [a-z0-9_]");
  auto password = read_password(f);
  if (!f.ok())
    return c->respond(f.error());
  if (auto wait = signup_address.take("signup:" + c->req.remote_address)) {
    auto res = error_response(errc::rate_limited, "too many sign-ups, slow down");
    res.headers.emplace_back("Retry-After", std::to_string(wait));
    return c->respond(std::move(res));
  }
  auth->create_user(*username, *password, [c](caf::expected<std::string> id) {
    if (!id)
      return c->respond(error_response(id.error()));
    c->respond(json_response(201, json::object{{"user_id", *id}}));
  });
}

void client_api::impl::create_session(const call_ptr& c) {
  auto body = parse_body(c);
  if (!body)
    return;
  fields f{*body};
  f.allow({"username", "password", "totp"});
  // Lenient on shape here: any string may be tried, and fails as credentials.
  auto username = f.string("username", 1, username_max * 4);
  auto password = f.string("password", 1, password_max * 4);
  auto totp = f.string("totp", 1, 16, false);
  if (!f.ok())
    return c->respond(f.error());
  // Every attempt costs a token per address and per username, before the
  // password is checked: guessing stops within a handful of tries.
  auto wait = std::max(login_address.take("login:" + c->req.remote_address),
                       login_user.take("login-user:" + *username));
  if (wait > 0) {
    // A refused guess is still a guess.
    intrusion->login_failed(c->req.remote_address, *username,
                            intrusion_detector::login_failure::rate_limited);
    auto res = error_response(errc::rate_limited, "too many login attempts, retry later");
    res.headers.emplace_back("Retry-After", std::to_string(wait));
    return c->respond(std::move(res));
  }
  auth->login(*username, *password, totp, [c, intrusion = intrusion,
                                           username = *username](caf::expected<session_grant> g) {
    if (!g) {
      auto code = code_of(g.error());
      if (code == errc::invalid_credentials || code == errc::invalid_mfa_code)
        intrusion->login_failed(c->req.remote_address, username,
                                code == errc::invalid_mfa_code
                                  ? intrusion_detector::login_failure::totp
                                  : intrusion_detector::login_failure::password);
      return c->respond(error_response(g.error()));
    }
    c->respond(json_response(201, json::object{{"token", g->token},
                                               {"user_id", g->session.user_id},
                                               {"expires_at",
                                                format_time(g->session.expires_at_ms)}}));
  });
}

void client_api::impl::delete_session(const call_ptr& c) {
  authenticated(c, [this, c] {
    with_session(c, [this, c] {
      auth->revoke(*c->session, [c](caf::error err) {
        if (err)
          return c->respond(error_response(err));
        c->respond(no_content());
      });
    });
  });
}

void client_api::impl::enrol_mfa(const call_ptr& c) {
  authenticated(c, [this, c] {
    if (!empty_body(c))
      return;
    with_session(c, [this, c] {
      auth->enrol_mfa(*c->session, [c](caf::expected<mfa_enrolment> e) {
        if (!e)
          return c->respond(error_response(e.error()));
        c->respond(json_response(200, json::object{{"secret", e->secret},
                                                   {"otpauth_uri", e->otpauth_uri}}));
      });
    });
  });
}

void client_api::impl::confirm_mfa(const call_ptr& c) {
  authenticated(c, [this, c] {
    auto body = parse_body(c);
    if (!body)
      return;
    fields f{*body};
    f.allow({"code"});
    auto code = f.string("code", 6, 6);
    if (code && code->find_first_not_of("0123456789") != std::string::npos)
      f.fail(errc::invalid_field, "code", "code must be 6 digits");
    if (!f.ok())
      return c->respond(f.error());
    with_session(c, [this, c, code = *code] {
      // A code is a guess too: it costs a login token of the user.
      if (auto wait = login_user.take("login-user:" + c->session->username)) {
        auto res = error_response(errc::rate_limited, "too many attempts, retry later");
        res.headers.emplace_back("Retry-After", std::to_string(wait));
        return c->respond(std::move(res));
      }
      auth->confirm_mfa(*c->session, code, [c, intrusion = intrusion](caf::error err) {
        if (code_of(err) == errc::invalid_mfa_code)
          intrusion->login_failed(c->req.remote_address, c->session->username,
                                  intrusion_detector::login_failure::totp);
        if (err)
          return c->respond(error_response(err));
        c->respond(no_content());
      });
    });
  });
}

void client_api::impl::set_limits(const call_ptr& c) {
  authenticated(c, [this, c] { set_limits_authenticated(c); });
}

void client_api::impl::set_limits_authenticated(const call_ptr& c) {
  auto body = parse_body(c);
  if (!body)
    return;
  fields f{*body};
  f.allow({"daily_deposit_limit", "deposit_limits", "loss_limits", "time_out_until",
           "self_exclude_until", "reality_check_minutes"});
  set_limits_cmd cmd;
  bool remove_limit = body->contains("daily_deposit_limit")
                      && body->at("daily_deposit_limit").is_null();
  if (remove_limit)
    cmd.daily_deposit_limit = 0;
  else if (auto limit = f.amount("daily_deposit_limit", false))
    cmd.daily_deposit_limit = *limit;
  read_periods(f, *body, "deposit_limits", cmd.deposit);
  read_periods(f, *body, "loss_limits", cmd.loss);
  read_end(f, *body, "time_out_until", cmd.time_out_until_ms);
  read_end(f, *body, "self_exclude_until", cmd.self_exclude_until_ms);
  if (body->contains("reality_check_minutes") && body->at("reality_check_minutes").is_null())
    cmd.reality_check_minutes = 0;
  else if (auto m = f.integer("reality_check_minutes", reality_check_min_minutes,
                              reality_check_max_minutes, false))
    cmd.reality_check_minutes = *m;
  if (!f.ok())
    return c->respond(f.error());
  carry<wallet_limits>(c, caf::make_message(cmd), [c](caf::expected<wallet_limits> l) {
    if (!l)
      return c->respond(error_response(l.error()));
    c->respond(json_response(200, limits_json(*l)));
  });
}

void client_api::impl::get_limits(const call_ptr& c) {
  authenticated(c, [this, c] {
    if (!parse_query(c, {}))
      return;
    carry<wallet_limits>(c, caf::make_message(limits_query{}),
                         [c](caf::expected<wallet_limits> l) {
                           if (!l)
                             return c->respond(error_response(l.error()));
                           c->respond(json_response(200, limits_json(*l)));
                         });
  });
}

} // namespace wager
