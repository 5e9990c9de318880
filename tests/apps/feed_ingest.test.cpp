// The feed as a producer meets it: a real wager-node process, its feed port
// over a real TCP connection, POST /v1/admin/feed, and wagerctl feed-replay
// playing the demo match day.

#include "support/http_client.hpp"
#include "support/process.hpp"
#include "support/temp_dir.hpp"
#include "support/ws_client.hpp"
#include "support/wait.hpp"

#include <boost/asio.hpp>
#include <boost/json.hpp>
#include <doctest/doctest.h>

using namespace std::chrono_literals;
using wager::test::child_process;

namespace {

const std::string admin_key = "feed-test-operator-key";

struct node_under_test {
  wager::test::temp_dir dir;
  child_process process;
  std::string http;
  std::string feed;

  node_under_test()
    : process{wager::test::binary("apps/wager-node"),
              {"--data-dir", (dir / "data").string(), "--http-port", "0", "--feed-port", "0",
               "--admin-key", admin_key, "--log-level", "error"}} {
    auto line = process.read_line(30s);
    REQUIRE(line);
    auto doc = boost::json::parse(*line).as_object();
    http = std::string{doc.at("http").as_string()};
    feed = std::string{doc.at("feed").as_string()};
  }

  wager::test::http_client client() {
    auto [host, port] = wager::test::split_address(http);
    return wager::test::http_client{host, port};
  }
};

std::string header(const std::string& type, uint64_t seq) {
  return R"({"type":")" + type + R"(","producer":"tcp-1","seq":)" + std::to_string(seq)
         + R"(,"ts":1764320400000)";
}

std::string market_line(uint64_t seq, const std::string& id) {
  return header("market", seq) + R"(,"market_id":")" + id
         + R"(","event":"A v B","name":"Winner","selections":[)"
           R"({"selection_id":"a","name":"A","price":"2.00"},)"
           R"({"selection_id":"b","name":"B","price":"2.00"}],)"
           R"("limits":{"max_stake":1000,"max_liability":100000},"status":"open"})";
}

std::string odds_line(uint64_t seq, const std::string& id, const std::string& a) {
  return header("odds_change", seq) + R"(,"market_id":")" + id + R"(","prices":{"a":")" + a
         + R"("}})";
}

// The market as GET /v1/markets/{id} shows it, or null.
boost::json::value market(wager::test::http_client& c, const std::string& id) {
  auto res = c.get("/v1/markets/" + id);
  if (res.status != 200)
    return nullptr;
  return boost::json::parse(res.body);
}

std::string price_of_a(wager::test::http_client& c, const std::string& id) {
  auto m = market(c, id);
  if (m.is_null())
    return {};
  for (auto& s : m.at("selections").as_array())
    if (s.at("selection_id").as_string() == "a")
      return std::string{s.at("price").as_string()};
  return {};
}

} // namespace

TEST_CASE("feed lines over TCP apply in order and malformed ones leave the connection open") {
  node_under_test node;
  auto [host, port] = wager::test::split_address(node.feed);
  boost::asio::io_context ioc;
  boost::asio::ip::tcp::socket socket{ioc};
  socket.connect({boost::asio::ip::make_address(host), port});
  std::string lines = market_line(1, "t1") + "\n"
                      + "{\"type\":\"odds_change\"\n"                 // invalid_json
                      + header("alive", 0) + "}\n"                     // seq 0: invalid_field
                      + R"({"type":"alive","producer":"tcp-1","ts":1})" "\n" // missing seq
                      + header("rollback", 2) + "}\n"                  // unknown_type
                      + odds_line(2, "t1", "0.99") + "\n"              // invalid_price
                      + odds_line(2, "nope", "2.50") + "\n"            // unknown_market
                      + odds_line(3, "t1", "2.10") + "\n"
                      + odds_line(4, "t1", "2.20") + "\n";
  boost::asio::write(socket, boost::asio::buffer(lines));
  auto client = node.client();
  CHECK(wager::test::wait_until([&] { return price_of_a(client, "t1") == "2.20"; }));
  // The same connection still carries lines, even after one over the
  // listener's 1 MiB bound.
  auto more = std::string(1024 * 1024 + 10, 'x') + "\n" + odds_line(5, "t1", "2.30") + "\n";
  boost::asio::write(socket, boost::asio::buffer(more));
  CHECK(wager::test::wait_until([&] { return price_of_a(client, "t1") == "2.30"; }));
  auto m = market(client, "t1");
  CHECK(m.at("status").as_string() == "open");
  CHECK(wager::test::wait_until([&] {
    return client.get("/metrics").body.find("wager_feed_messages_applied_total 4")
           != std::string::npos;
  }));
  // Each market has a lane of its own: the unknown market's refusal comes
  // back from the directory independently of t1's lane, so it is waited for.
  for (auto reason : {"invalid_json", "invalid_field", "missing_field", "unknown_type",
                      "invalid_price", "unknown_market", "oversized"}) {
    CAPTURE(reason);
    auto line = "wager_feed_invalid_total{reason=\"" + std::string{reason} + "\"} 1";
    CHECK(wager::test::wait_until(
      [&] { return client.get("/metrics").body.find(line) != std::string::npos; }));
  }
}

TEST_CASE("POST /v1/admin/feed applies a body of lines and answers the counts") {
  node_under_test node;
  auto client = node.client();
  std::string body = market_line(1, "h1") + "\n" + odds_line(2, "h1", "3.00") + "\n"
                     + "not json\n" + odds_line(3, "h1", "1000.01") + "\n";
  CHECK(client.post("/v1/admin/feed", body).status == 401);
  CHECK(client.post("/v1/admin/feed", body, "wrong-key").status == 403);
  auto res = client.post("/v1/admin/feed", body, admin_key);
  REQUIRE(res.status == 200);
  auto doc = boost::json::parse(res.body).as_object();
  CHECK(doc.at("received").as_int64() == 4);
  CHECK(doc.at("applied").as_int64() == 2);
  CHECK(doc.at("invalid").as_int64() == 2);
  auto& errors = doc.at("errors").as_array();
  REQUIRE(errors.size() == 2);
  CHECK(errors[0].at("line").as_int64() == 3);
  CHECK(errors[0].at("reason").as_string() == "invalid_json");
  CHECK(errors[1].at("reason").as_string() == "invalid_price");
  CHECK(price_of_a(client, "h1") == "3.00");
  CHECK(client.post("/v1/admin/feed", "\n\n", admin_key).status == 400);
}

TEST_CASE("wagerctl feed-replay plays the demo match day into a node") {
  node_under_test node;
  child_process replay{wager::test::binary("apps/wagerctl"),
                       {"feed-replay", std::string{WAGER_SOURCE_DIR} + "/examples/feed/match_day.ndjson",
                        "--feed", node.feed, "--rate", "0"}};
  auto status = replay.wait(30s);
  REQUIRE(status);
  CHECK(*status == 0);
  auto client = node.client();
  auto status_of = [&](const std::string& id) {
    auto m = market(client, id);
    return m.is_null() ? std::string{} : std::string{m.at("status").as_string()};
  };
  CHECK(wager::test::wait_until([&] { return status_of("ars-che:btts") == "voided"; }));
  // Markets apply in lanes of their own, so the last line's market may finish
  // before the others: each is waited for.
  CHECK(wager::test::wait_until([&] { return status_of("ars-che:1x2") == "settled"; }));
  CHECK(wager::test::wait_until([&] { return status_of("ars-che:ou2.5") == "settled"; }));
  CHECK(wager::test::wait_until([&] {
    return client.get("/metrics").body.find("wager_feed_messages_applied_total 23")
           != std::string::npos;
  }));
}

TEST_CASE("a feed price change reaches a subscribed WebSocket and is timed feed-to-push") {
  node_under_test node;
  auto client = node.client();
  REQUIRE(client.post("/v1/admin/feed", market_line(1, "w1") + "\n", admin_key).status == 200);
  REQUIRE(client.post("/v1/users", R"({"username":"wsuser","password":"correct horse"})").status
          == 201);
  auto login = client.post("/v1/sessions", R"({"username":"wsuser","password":"correct horse"})");
  REQUIRE(login.status == 201);
  auto token = std::string{boost::json::parse(login.body).at("token").as_string()};
  auto [host, port] = wager::test::split_address(node.http);
  wager::test::ws_client ws{host, port};
  REQUIRE(ws.connect() == "");
  REQUIRE(ws.send(R"({"op":"auth","token":")" + token + R"("})"));
  REQUIRE(ws.send(R"({"op":"subscribe","markets":["w1"]})"));
  // Frames of one type, skipping the others (the wallet's balance).
  auto next_of = [&](const std::string& type) -> boost::json::object {
    for (int i = 0; i < 8; ++i) {
      auto frame = ws.read();
      REQUIRE(frame);
      auto doc = boost::json::parse(*frame).as_object();
      if (doc.at("type").as_string() == type)
        return doc;
    }
    FAIL("no " << type << " frame");
    return {};
  };
  auto snapshot = next_of("market");
  CHECK(snapshot.at("market").at("market_id").as_string() == "w1");
  REQUIRE(client.post("/v1/admin/feed", odds_line(2, "w1", "2.40") + "\n", admin_key).status
          == 200);
  auto change = next_of("price");
  CHECK(change.at("prices").at("a").as_string() == "2.40");
  auto metrics = client.get("/metrics").body;
  CHECK(metrics.find("wager_feed_push_latency_seconds_count 1") != std::string::npos);
}
