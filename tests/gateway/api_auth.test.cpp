// Authentication over HTTP: credentials, sessions, TOTP, rate limits.

#include "api_support.hpp"

#include "wager/gateway/auth.hpp"

#include "support/wait.hpp"

#include <chrono>

using namespace wager;
using namespace wager::test;

namespace {

int64_t unix_now() {
  using namespace std::chrono;
  return duration_cast<seconds>(system_clock::now().time_since_epoch()).count();
}

std::string login_body(const std::string& user, const std::string& password,
                       const std::string& totp = {}) {
  json::object o{{"username", user}, {"password", password}};
  if (!totp.empty())
    o["totp"] = totp;
  return json::serialize(o);
}

} // namespace

TEST_CASE("a wrong password and an unknown user get the same answer") {
  api_node node;
  node.user("alice");
  auto wrong = node.call("POST", "/v1/sessions", login_body("alice", "wrong password"));
  CHECK(wrong.status == 401);
  CHECK(error_code(wrong) == "invalid_credentials");
  auto unknown = node.call("POST", "/v1/sessions", login_body("nobody", "correct horse"));
  CHECK(unknown.status == 401);
  CHECK(error_code(unknown) == "invalid_credentials");
}

TEST_CASE("a revoked token stops working at once") {
  api_node node;
  auto token = node.user("alice");
  auto other = node.login("alice");
  CHECK(node.call("GET", "/v1/wallet", {}, token).status == 200);
  auto r = node.call("DELETE", "/v1/sessions/current", {}, token);
  CHECK(r.status == 204);
  r = node.call("GET", "/v1/wallet", {}, token);
  CHECK(r.status == 401);
  CHECK(error_code(r) == "unauthorized");
  // Only that session: the other one still works.
  CHECK(node.call("GET", "/v1/wallet", {}, other).status == 200);
}

TEST_CASE("a token is checked against the journal, not only this node's memory") {
  api_node node;
  auto token = node.user("alice");
  // A second API over the same platform has an empty cache: like another node.
  client_api second{*node.plat, test_api_options()};
  http_server_options so;
  so.port = 0;
  http_server server{so, [&](http_request r, http_responder w) {
                       second.handle(std::move(r), std::move(w));
                     }};
  REQUIRE(server.start() == "");
  http_client client{"127.0.0.1", server.port()};
  CHECK(client.get("/v1/wallet", token).status == 200);
  CHECK(node.call("DELETE", "/v1/sessions/current", {}, token).status == 204);
  // Within the cache's lifetime the second node sees the revocation too.
  CHECK(wait_until([&] { return client.get("/v1/wallet", token).status == 401; },
                   std::chrono::seconds{5}));
  server.stop();
}

TEST_CASE("an expired token is refused") {
  auto options = test_api_options();
  options.auth.session_ttl = std::chrono::milliseconds{300};
  api_node node{options};
  auto token = node.user("alice");
  CHECK(wait_until([&] { return node.call("GET", "/v1/wallet", {}, token).status == 401; },
                   std::chrono::seconds{5}));
  auto r = node.call("GET", "/v1/wallet", {}, token);
  CHECK(error_code(r) == "unauthorized");
}

TEST_CASE("malformed and missing tokens are unauthorized") {
  api_node node;
  CHECK(node.call("GET", "/v1/wallet").status == 401);
  CHECK(node.call("GET", "/v1/wallet", {}, "garbage").status == 401);
  CHECK(node.call("GET", "/v1/wallet", {}, std::string(32, 'a') + "." + std::string(64, 'b'))
          .status == 401);
  auto token = node.user("alice");
  auto forged = token.substr(0, 33) + std::string(64, '0');
  CHECK(node.call("GET", "/v1/wallet", {}, forged).status == 401);
}

TEST_CASE("TOTP: enrol, confirm, then required at login") {
  auto options = test_api_options();
  options.login_user_burst = 20;
  api_node node{options};
  auto token = node.user("alice");
  auto r = node.call("POST", "/v1/users/me/mfa", {}, token);
  REQUIRE_MESSAGE(r.status == 200, r.body);
  auto secret = std::string{body_of(r).at("secret").as_string()};
  auto uri = std::string{body_of(r).at("otpauth_uri").as_string()};
  CHECK(uri.rfind("otpauth://totp/", 0) == 0);
  CHECK(uri.find("secret=" + secret) != std::string::npos);
  // Not confirmed yet: login needs no code.
  CHECK(node.call("POST", "/v1/sessions", login_body("alice", "correct horse")).status == 201);

  auto raw = *base32_decode(secret);
  auto wrong = totp_code(raw, unix_now() - 600);
  r = node.call("POST", "/v1/users/me/mfa/confirm", R"({"code":")" + wrong + R"("})", token);
  CHECK(r.status == 401);
  CHECK(error_code(r) == "invalid_mfa_code");
  r = node.call("POST", "/v1/users/me/mfa/confirm",
                R"({"code":")" + totp_code(raw, unix_now()) + R"("})", token);
  CHECK(r.status == 204);

  r = node.call("POST", "/v1/sessions", login_body("alice", "correct horse"));
  CHECK(r.status == 401);
  CHECK(error_code(r) == "mfa_required");
  r = node.call("POST", "/v1/sessions", login_body("alice", "correct horse", wrong));
  CHECK(r.status == 401);
  CHECK(error_code(r) == "invalid_mfa_code");
  r = node.call("POST", "/v1/sessions",
                login_body("alice", "correct horse", totp_code(raw, unix_now())));
  CHECK(r.status == 201);
  // A wrong password with a right code is still just wrong credentials.
  r = node.call("POST", "/v1/sessions",
                login_body("alice", "wrong password", totp_code(raw, unix_now())));
  CHECK(error_code(r) == "invalid_credentials");
}

TEST_CASE("password guessing hits 429 within a handful of tries") {
  api_node node;
  node.user("alice"); // one login
  int failures = 0;
  http_result r;
  for (int i = 0; i < 10; ++i) {
    r = node.call("POST", "/v1/sessions", login_body("alice", "guess number " + std::to_string(i)));
    if (r.status != 401)
      break;
    ++failures;
  }
  CHECK(failures <= 5);
  CHECK(r.status == 429);
  CHECK(error_code(r) == "rate_limited");
  CHECK(std::stoi(r.headers["retry-after"]) >= 1);
  // Even the right password waits now.
  r = node.call("POST", "/v1/sessions", login_body("alice", "correct horse"));
  CHECK(r.status == 429);
}

TEST_CASE("guessing across many usernames from one address is limited too") {
  // The login rate limit alone: intrusion detection would block the
  // address at its tenth username first (tests/gateway/intrusion).
  auto options = test_api_options();
  options.intrusion.stuffing_usernames = 0;
  api_node node{options};
  int answered = 0;
  http_result r;
  for (int i = 0; i < 40; ++i) {
    r = node.call("POST", "/v1/sessions", login_body("user" + std::to_string(i), "guessing!!"));
    if (r.status == 429)
      break;
    ++answered;
  }
  CHECK(r.status == 429);
  CHECK(answered <= 20);
  CHECK(answered > 10);
}
