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

#include <csignal>
#include <fstream>
#include <map>
#include <tuple>
#include <vector>

using namespace std::chrono_literals;
using wager::test::child_process;

namespace {

const std::string admin_key = "feed-test-operator-key";

struct node_under_test {
  wager::test::temp_dir dir;
  child_process process;
  std::string http;
  std::string feed;

  // A producer silent for --feed-silence-ms is down and its markets are
  // suspended: these tests pause between lines (a sign-up's password
  // hashing alone can take seconds on a loaded machine), so silence is
  // given ten minutes; the silence rule has its own tests.
  node_under_test()
    : process{wager::test::binary("apps/wager-node"),
              {"--data-dir", (dir / "data").string(), "--http-port", "0", "--feed-port", "0",
               "--admin-key", admin_key, "--log-level", "error", "--feed-silence-ms",
               "600000"}} {
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

TEST_CASE("the race day's results pay bets placed through the API to the minor unit, a "
          "rolled-back result pays again, and the journal verifies") {
  node_under_test node;
  auto client = node.client();
  std::ifstream file{std::string{WAGER_SOURCE_DIR} + "/examples/feed/race_day.ndjson"};
  std::vector<std::string> lines;
  for (std::string line; std::getline(file, line);)
    lines.push_back(line);
  REQUIRE(lines.size() == 14);
  // The opening: both races defined, open, their prices moved.
  auto post_lines = [&](size_t from, size_t to) {
    std::string body;
    for (size_t i = from; i < to; ++i)
      body += lines[i] + "\n";
    auto r = client.post("/v1/admin/feed", body, admin_key);
    REQUIRE_MESSAGE(r.status == 200, r.body);
    auto doc = boost::json::parse(r.body).as_object();
    CHECK_MESSAGE(doc.at("invalid").as_int64() == 0, r.body);
  };
  post_lines(0, 5);
  REQUIRE(client.post("/v1/users", R"({"username":"punter","password":"correct horse"})").status
          == 201);
  auto login = client.post("/v1/sessions", R"({"username":"punter","password":"correct horse"})");
  REQUIRE(login.status == 201);
  auto token = std::string{boost::json::parse(login.body).at("token").as_string()};
  REQUIRE(client.post("/v1/wallet/deposits", R"({"request_id":"d1","amount":100000})", token)
            .status == 201);
  std::map<std::string, std::string> bets; // selection -> bet id
  for (auto [market, selection, price] :
       {std::tuple{"aintree-1400:win", "red-rum", "5.50"},
        std::tuple{"aintree-1400:win", "l-escargot", "5.00"},
        std::tuple{"aintree-1400:win", "crisp", "10.00"},
        std::tuple{"aintree-1435:win", "aldaniti", "4.00"},
        std::tuple{"aintree-1435:win", "spartan-missile", "3.50"},
        std::tuple{"aintree-1435:win", "rubstic", "15.00"}}) {
    auto r = client.post("/v1/bets",
                         std::string{R"({"request_id":"bet-)"} + selection + R"(","market_id":")"
                           + market + R"(","selection_id":")" + selection
                           + R"(","stake":1000,"price":")" + price + R"("})",
                         token);
    REQUIRE_MESSAGE(r.status == 201, r.body);
    bets[selection] = std::string{boost::json::parse(r.body).at("bet_id").as_string()};
  }
  // The offs, a cancellation of a window long past, the results.
  post_lines(5, lines.size());
  auto payout_of = [&](const std::string& selection) -> int64_t {
    int64_t payout = -1;
    CHECK(wager::test::wait_until([&] {
      auto r = client.get("/v1/bets/" + bets.at(selection), token);
      if (r.status != 200)
        return false;
      auto b = boost::json::parse(r.body).as_object();
      if (b.at("status").as_string() == "open")
        return false;
      payout = b.at("payout").as_int64();
      return true;
    }));
    return payout;
  };
  CHECK(payout_of("red-rum") == 2750);    // dead heat: 10.00 x 1/2 x 5.50
  CHECK(payout_of("l-escargot") == 2500); // dead heat: 10.00 x 1/2 x 5.00
  CHECK(payout_of("crisp") == 0);         // placed: a win bet loses
  CHECK(payout_of("aldaniti") == 4000);   // taken after the Rule 4 time: in full
  CHECK(payout_of("spartan-missile") == 0);
  CHECK(payout_of("rubstic") == 1000);    // void: the stake back
  auto wallet = boost::json::parse(client.get("/v1/wallet", token).body).as_object();
  CHECK(wallet.at("available").as_int64() == 100000 - 6000 + 2750 + 2500 + 4000 + 1000);
  // The 14:35 result was wrong: the feed rolls it back (every payout is
  // taken back) and settles it again, Spartan Missile the winner.
  auto r = client.post(
    "/v1/admin/feed",
    R"({"type":"rollback_bet_settlement","producer":"racing","seq":15,"ts":1796652008000,)"
    R"("market_id":"aintree-1435:win"})"
    "\n"
    R"({"type":"bet_settlement","producer":"racing","seq":16,"ts":1796652008500,)"
    R"("market_id":"aintree-1435:win","results":{"aldaniti":"lost","spartan-missile":"won",)"
    R"("royal-mail":"lost","rubstic":"void"}})"
    "\n",
    admin_key);
  REQUIRE_MESSAGE(r.status == 200, r.body);
  CHECK_MESSAGE(boost::json::parse(r.body).at("invalid").as_int64() == 0, r.body);
  auto becomes = [&](const std::string& selection, const std::string& status, int64_t payout) {
    return wager::test::wait_until([&] {
      auto res = client.get("/v1/bets/" + bets.at(selection), token);
      if (res.status != 200)
        return false;
      auto b = boost::json::parse(res.body).as_object();
      return b.at("status").as_string() == status && b.at("payout").as_int64() == payout;
    });
  };
  CHECK(becomes("aldaniti", "lost", 0));
  CHECK(becomes("spartan-missile", "won", 3500));
  CHECK(becomes("rubstic", "void", 1000));
  CHECK(wager::test::wait_until([&] {
    auto w = boost::json::parse(client.get("/v1/wallet", token).body).as_object();
    return w.at("available").as_int64() == 100000 - 6000 + 2750 + 2500 + 3500 + 1000;
  }));
  auto reversals = boost::json::parse(client.get("/v1/wallet/transactions", token).body);
  int reversed = 0;
  for (auto& t : reversals.at("transactions").as_array())
    reversed += t.at("kind").as_string() == "reversal" ? 1 : 0;
  CHECK(reversed == 2); // Aldaniti's winnings and Rubstic's refund
  // The node drains; its journal passes the money audit.
  node.process.signal(SIGTERM);
  auto status = node.process.wait(30s);
  REQUIRE(status);
  CHECK(*status == 0);
  child_process verify{wager::test::binary("apps/wagerctl"),
                       {"--data-dir", (node.dir / "data").string(), "verify"}};
  std::string out;
  while (auto line = verify.read_line(60s))
    out += *line + "\n";
  auto verified = verify.wait(60s);
  REQUIRE(verified);
  CHECK_MESSAGE(*verified == 0, out << verify.drain_stderr());
}
