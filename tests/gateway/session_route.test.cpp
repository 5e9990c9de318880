// The login session entity carries its user's requests (actors/session.hpp):
// the token is checked on every one, a budget applies, and the wallet
// answers; its streams follow the wallet and end with it. Driven through the
// directory as the gateway drives it, and over real HTTP and WebSocket.

#include "api_support.hpp"

#include "wager/actors/session.hpp"
#include "wager/gateway/auth.hpp"

#include "support/wait.hpp"
#include "support/ws_client.hpp"

#include "wager/gateway/stream.hpp"

#include <caf/all.hpp>

using namespace wager;
using namespace wager::test;
using namespace std::chrono_literals;

namespace {

const std::string session_id = "0123456789abcdef0123456789abcdef";
const std::string secret(64, 'c');

int64_t wall_ms() {
  using namespace std::chrono;
  return duration_cast<milliseconds>(system_clock::now().time_since_epoch()).count();
}

void open_session(platform& p, const std::string& id, int64_t expires_at_ms) {
  REQUIRE(await<session_info>([&](auto done) {
    p.create_session(create_session_cmd{{id, "u-alice", "alice", expires_at_ms}, sha256_hex(secret)},
                     done);
  }));
}

// Sends `n` requests at once, so they wait in the session's mailbox together;
// each answer in order, as the code it was (none for success).
template <class T>
std::vector<errc> carry_all(platform& p, const std::string& id, const std::string& secret_sha,
                            caf::message request, int n = 1) {
  caf::scoped_actor self{p.system()};
  std::vector<caf::response_handle<caf::blocking_actor, caf::message, true>> handles;
  for (int i = 0; i < n; ++i)
    handles.push_back(p.directory().request(self, 10s, entity_id{"session", id},
                                            session_request_cmd{secret_sha, request}));
  std::vector<errc> out;
  for (auto& h : handles)
    h.receive([&](T&) { out.push_back(errc::none); },
              [&](caf::error& err) { out.push_back(code_of(err)); });
  return out;
}

money available(platform& p) {
  auto b = await<wallet_balance>([&](auto done) { p.balance(user_id{"u-alice"}, done); });
  REQUIRE(b);
  return b->available;
}

} // namespace

TEST_CASE("a session carries its user's request to the wallet, which answers") {
  api_node node;
  auto& p = *node.plat;
  open_session(p, session_id, wall_ms() + 60'000);
  auto codes = carry_all<wallet_receipt>(
    p, session_id, sha256_hex(secret),
    caf::make_message(deposit_cmd{request_id{"d-1"}, money{2500}}));
  CHECK(codes == std::vector<errc>{errc::none});
  CHECK(available(p).minor == 2500);
  // An empty request answers the session itself.
  CHECK(carry_all<session_info>(p, session_id, sha256_hex(secret), caf::message{})
        == std::vector<errc>{errc::none});
}

TEST_CASE("a wrong, expired or revoked token carries nothing to the wallet") {
  api_node node;
  auto& p = *node.plat;
  auto deposit = caf::make_message(deposit_cmd{request_id{"d-1"}, money{100}});
  open_session(p, session_id, wall_ms() + 60'000);
  CHECK(carry_all<wallet_receipt>(p, session_id, sha256_hex("a guess"), deposit)
        == std::vector<errc>{errc::unauthorized});
  CHECK(carry_all<wallet_receipt>(p, std::string(32, 'f'), sha256_hex(secret), deposit)
        == std::vector<errc>{errc::unauthorized});
  auto expiring = std::string(32, 'e');
  open_session(p, expiring, wall_ms() + 200);
  CHECK(wait_until([&] {
    return carry_all<session_info>(p, expiring, sha256_hex(secret), caf::message{})
           == std::vector<errc>{errc::unauthorized};
  }));
  CHECK(carry_all<wallet_receipt>(p, expiring, sha256_hex(secret), deposit)
        == std::vector<errc>{errc::unauthorized});
  REQUIRE(await<session_info>([&](auto done) { p.revoke_session(session_id, done); }));
  CHECK(carry_all<wallet_receipt>(p, session_id, sha256_hex(secret), deposit)
        == std::vector<errc>{errc::unauthorized});
  auto b = await<wallet_balance>([&](auto done) { p.balance(user_id{"u-alice"}, done); });
  CHECK((!b || b->available.minor == 0));
}

TEST_CASE("a session's budget is a burst, then rate_limited, also over HTTP with Retry-After") {
  api_node node;
  auto& p = *node.plat;
  open_session(p, session_id, wall_ms() + 60'000);
  auto burst = static_cast<int>(session_request_burst);
  auto codes = carry_all<session_info>(p, session_id, sha256_hex(secret), caf::message{},
                                       burst + 50);
  auto ok = std::count(codes.begin(), codes.end(), errc::none);
  auto limited = std::count(codes.begin(), codes.end(), errc::rate_limited);
  // The 250 wait together: the budget refills by at most a few meanwhile.
  CHECK(ok >= burst);
  CHECK(ok <= burst + 10);
  CHECK(ok + limited == burst + 50);
  // Spent, the HTTP API answers 429 with the wait. Spend it again right
  // before if it refilled between the two.
  auto token = session_id + "." + secret;
  http_result r;
  CHECK(wait_until([&] {
    carry_all<session_info>(p, session_id, sha256_hex(secret), caf::message{}, burst);
    r = node.call("GET", "/v1/wallet", {}, token);
    return r.status == 429;
  }));
  CHECK(error_code(r) == "rate_limited");
  CHECK(std::stoi(r.headers["retry-after"]) >= 1);
}

TEST_CASE("a login's stream shows its own wallet, and logging out closes it") {
  api_node node;
  auto token = node.user("alice");
  http_server_options so;
  so.port = 0;
  so.websocket = make_stream_handler(*node.plat);
  http_server ws_server{so, [](http_request, http_responder w) {
                          w(error_response(404, "not_found", "no such route"));
                        }};
  REQUIRE(ws_server.start() == "");
  ws_client ws{"127.0.0.1", ws_server.port()};
  REQUIRE(ws.connect() == "");
  REQUIRE(ws.send(json::serialize(json::object{{"op", "auth"}, {"token", token}})));
  auto next = [&] {
    auto text = ws.read(10s);
    REQUIRE(text);
    return json::parse(*text).as_object();
  };
  CHECK(next().at("type") == "wallet");
  REQUIRE(node.call("POST", "/v1/wallet/deposits", R"({"request_id":"d1","amount":300})", token)
            .status == 201);
  auto wallet = next();
  CHECK(wallet.at("type") == "wallet");
  CHECK(wallet.at("available") == 300);
  REQUIRE(node.call("DELETE", "/v1/sessions/current", {}, token).status == 204);
  auto closed = next();
  CHECK(closed.at("error").at("code") == "unauthorized");
  CHECK(closed.at("error").at("message") == "the session was revoked");
  CHECK_FALSE(ws.read(5s));
  CHECK(ws.closed());
  ws_server.stop();
}
