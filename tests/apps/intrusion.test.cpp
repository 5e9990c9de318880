// Intrusion detection made real against a running wager-node: attacks from
// one loopback address (127.0.0.3), a legitimate user and the operator from
// another (127.0.0.2). Each attack must leave its audit line on the node's
// stderr and its count in /metrics, block its source, and leave the other
// address alone; a block ends by itself or when the operator lifts it.

#include "support/http_client.hpp"
#include "support/process.hpp"
#include "support/temp_dir.hpp"
#include "support/wait.hpp"

#include <boost/json.hpp>
#include <doctest/doctest.h>

#include <sstream>
#include <tuple>

using namespace std::chrono_literals;
using wager::test::child_process;
using wager::test::http_client;
namespace json = boost::json;

namespace {

const std::string admin_key = "an-operator-key-for-intrusion-tests";
const std::string attacker = "127.0.0.3";
const std::string legitimate = "127.0.0.2";

struct running_node {
  wager::test::temp_dir dir;
  child_process process;
  std::string host;
  uint16_t port = 0;
  std::string stderr_text;

  explicit running_node(std::vector<std::string> extra)
    : process{wager::test::binary("apps/wager-node"), args(dir, std::move(extra))} {
    auto line = process.read_line(30s);
    REQUIRE(line);
    auto ready = json::parse(*line).as_object();
    REQUIRE(ready.at("event").as_string() == "ready");
    auto http = std::string{ready.at("http").as_string()};
    std::tie(host, port) = wager::test::split_address(http);
  }

  static std::vector<std::string> args(const wager::test::temp_dir& dir,
                                       std::vector<std::string> extra) {
    std::vector<std::string> a{"--data-dir", (dir / "data").string(), "--http-port", "0",
                               "--feed-port", "-1", "--log-level", "warn", "--admin-key",
                               admin_key};
    a.insert(a.end(), extra.begin(), extra.end());
    return a;
  }

  http_client client(const std::string& from) {
    http_client c{host, port};
    c.from(from);
    return c;
  }

  // The node's security audit lines of `kind` so far.
  std::vector<json::object> audit(const std::string& kind) {
    stderr_text = process.drain_stderr(); // everything so far
    std::vector<json::object> out;
    std::istringstream lines{stderr_text};
    for (std::string line; std::getline(lines, line);) {
      auto brace = line.find("{\"audit\":\"security\"");
      if (brace == std::string::npos)
        continue;
      auto doc = json::parse(line.substr(brace)).as_object();
      if (doc.at("kind").as_string() == kind)
        out.push_back(doc);
    }
    return out;
  }

  double events(http_client& c, const std::string& kind) {
    auto text = c.get("/metrics").body;
    auto name = "wager_security_events_total{kind=\"" + kind + "\"} ";
    auto at = text.find(name);
    REQUIRE(at != std::string::npos);
    return std::stod(text.substr(at + name.size()));
  }
};

std::string login_body(const std::string& user, const std::string& password) {
  return json::serialize(json::object{{"username", user}, {"password", password}});
}

std::string sign_up_and_log_in(http_client& c, const std::string& user) {
  REQUIRE(c.post("/v1/users", login_body(user, "correct horse battery")).status == 201);
  auto r = c.post("/v1/sessions", login_body(user, "correct horse battery"));
  REQUIRE(r.status == 201);
  return std::string{json::parse(r.body).at("token").as_string()};
}

} // namespace

TEST_CASE("credential stuffing from one address blocks it, not a user elsewhere, and the block "
          "ends") {
  running_node node{{"--security-stuffing-usernames", "5", "--security-block-ms", "5000"}};
  auto user = node.client(legitimate);
  auto token = sign_up_and_log_in(user, "alice");
  auto bot = node.client(attacker);
  for (int i = 0; i < 5; ++i)
    CHECK(bot.post("/v1/sessions", login_body("victim" + std::to_string(i), "password123"))
            .status
          == 401);
  auto refused = bot.get("/v1/markets");
  CHECK(refused.status == 429);
  CHECK(std::stoi(refused.headers["retry-after"]) >= 1);
  auto blocks = json::parse(user.get("/v1/admin/blocks", admin_key).body).as_object();
  auto& list = blocks.at("blocks").as_array();
  REQUIRE(list.size() == 1);
  CHECK(list[0].at("address").as_string() == attacker);
  CHECK(list[0].at("reason").as_string() == "credential_stuffing");
  CHECK(list[0].at("blocks").as_int64() == 1);
  // The legitimate user, from another address, goes on.
  CHECK(user.get("/v1/wallet", token).status == 200);
  CHECK(user.post("/v1/sessions", login_body("alice", "correct horse battery")).status == 201);

  CHECK(wager::test::wait_until([&] { return !node.audit("credential_stuffing").empty(); }));
  auto line = node.audit("credential_stuffing").at(0);
  CHECK(line.at("remote").as_string() == attacker);
  CHECK(line.contains("blocked_until"));
  CHECK(node.events(user, "credential_stuffing") == 1);
  CHECK(node.events(user, "blocked_request") >= 1);
  CHECK(wager::test::wait_until([&] { return !node.audit("blocked_request").empty(); }));

  // The block lasts five seconds: then the address is served again.
  CHECK(wager::test::wait_until([&] { return bot.get("/v1/markets").status == 200; }, 30s));
  CHECK(json::parse(user.get("/v1/admin/blocks", admin_key).body).at("blocks").as_array().empty());
}

TEST_CASE("a sprayed operator key blocks the address until the operator lifts it, then for "
          "longer") {
  running_node node{{"--security-admin-key-failures", "3"}};
  auto op = node.client(legitimate);
  auto bot = node.client(attacker);
  for (int i = 0; i < 3; ++i)
    CHECK(bot.get("/v1/admin/health", "guess-" + std::to_string(i)).status == 403);
  CHECK(bot.get("/v1/admin/health", admin_key).status == 429); // even the right key now
  CHECK(op.get("/v1/admin/health", admin_key).status == 200);
  CHECK(node.events(op, "admin_key_failure") == 1);
  CHECK(wager::test::wait_until([&] { return !node.audit("admin_key_failure").empty(); }));

  auto first = json::parse(op.get("/v1/admin/blocks", admin_key).body).at("blocks").as_array().at(0);
  CHECK(op.request("DELETE", "/v1/admin/blocks/" + attacker, {}, "wrong-key").status == 403);
  CHECK(op.request("DELETE", "/v1/admin/blocks/" + attacker, {}, admin_key).status == 204);
  CHECK(op.request("DELETE", "/v1/admin/blocks/" + attacker, {}, admin_key).status == 404);
  CHECK(wager::test::wait_until([&] { return !node.audit("block_lifted").empty(); }));
  CHECK(bot.get("/v1/markets").status == 200);

  // Back again: blocked a second time, for twice as long.
  for (int i = 0; i < 3; ++i)
    CHECK(bot.get("/v1/admin/health", "again-" + std::to_string(i)).status == 403);
  CHECK(bot.get("/v1/markets").status == 429);
  auto second = json::parse(op.get("/v1/admin/blocks", admin_key).body).at("blocks").as_array().at(0);
  CHECK(second.at("blocks").as_int64() == 2);
  CHECK(second.at("blocked_until").as_string() > first.at("blocked_until").as_string());
}

TEST_CASE("a revoked token used again is a security event and blocks its address") {
  running_node node{{"--security-token-refusals", "3"}};
  auto bot = node.client(attacker);
  auto stolen = sign_up_and_log_in(bot, "mallory");
  REQUIRE(bot.request("DELETE", "/v1/sessions/current", {}, stolen).status == 204);
  for (int i = 0; i < 3; ++i)
    CHECK(bot.get("/v1/wallet", stolen).status == 401);
  CHECK(bot.get("/v1/wallet", stolen).status == 429);
  auto user = node.client(legitimate);
  auto token = sign_up_and_log_in(user, "bob");
  CHECK(user.get("/v1/wallet", token).status == 200);
  CHECK(node.events(user, "token_refused") == 1);
  CHECK(wager::test::wait_until([&] { return !node.audit("token_refused").empty(); }));
  CHECK(node.audit("token_refused").at(0).at("remote").as_string() == attacker);
}

TEST_CASE("feed lines from an unknown producer and a burst of sequence gaps are security events") {
  running_node node{{"--feed-producers", "uof-live", "--security-feed-gaps-per-minute", "3"}};
  auto op = node.client(legitimate);
  auto alive = [](const std::string& producer, int seq) {
    return R"({"type":"alive","producer":")" + producer + R"(","seq":)" + std::to_string(seq)
           + R"(,"ts":1764320400000})" + "\n";
  };
  // Two lines from a producer the node does not take, then uof-live
  // skipping sequence numbers three times.
  auto body = alive("rogue", 1) + alive("rogue", 2) + alive("uof-live", 1) + alive("uof-live", 3)
              + alive("uof-live", 5) + alive("uof-live", 7);
  auto r = op.post("/v1/admin/feed", body, admin_key);
  REQUIRE(r.status == 200);
  auto doc = json::parse(r.body);
  CHECK(doc.at("invalid").as_int64() == 2);
  CHECK(doc.at("applied").as_int64() == 4);
  CHECK(doc.at("errors").as_array().at(0).at("reason").as_string() == "unknown_producer");
  CHECK(node.events(op, "feed_unknown_producer") == 2);
  CHECK(wager::test::wait_until([&] { return node.events(op, "feed_sequence_burst") == 1; }));
  // One audit line for the unknown producer in the window, however many
  // lines it sent.
  CHECK(wager::test::wait_until([&] { return node.audit("feed_unknown_producer").size() == 1; }));
  CHECK(wager::test::wait_until([&] { return !node.audit("feed_sequence_burst").empty(); }));
  CHECK(node.audit("feed_unknown_producer").size() == 1);
}
