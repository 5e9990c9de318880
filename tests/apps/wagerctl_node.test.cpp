// wagerctl's online commands (status, drain) as an operator runs them: the
// real binary against a node's admin endpoints over a real socket. A real
// wager-node for status and drain; a faked node where the answer under test
// (404 from an older node, 403) is one a real node would not give.

#include "support/process.hpp"
#include "support/temp_dir.hpp"

#include <boost/asio.hpp>
#include <boost/json.hpp>
#include <doctest/doctest.h>

#include <algorithm>
#include <atomic>
#include <mutex>
#include <thread>

using namespace std::chrono_literals;
using wager::test::child_process;

namespace {

const std::string wagerctl = wager::test::binary("apps/wagerctl");

struct run_result {
  int status = -1;
  std::vector<std::string> out; // stdout lines
  std::string err;
};

run_result run_ctl(const std::vector<std::string>& args,
                   const std::map<std::string, std::string>& env = {}) {
  child_process ctl{wagerctl, args, env};
  run_result r;
  while (auto line = ctl.read_line(60s))
    r.out.push_back(*line);
  auto status = ctl.wait(60s);
  REQUIRE(status);
  r.status = *status;
  r.err = ctl.drain_stderr();
  return r;
}

size_t lines_in(const std::string& text) {
  return static_cast<size_t>(std::count(text.begin(), text.end(), '\n'));
}

} // namespace

namespace {

// A node's admin endpoint, faked over a real socket: it answers one request
// with a canned response and keeps what it was asked.
class fake_node {
public:
  fake_node(int status, std::string body)
    : acceptor_(io_, {boost::asio::ip::make_address("127.0.0.1"), 0}) {
    port_ = acceptor_.local_endpoint().port();
    thread_ = std::thread{[this, status, body = std::move(body)] { serve(status, body); }};
  }

  ~fake_node() {
    if (!served_) { // unblock accept() when wagerctl never came
      boost::system::error_code ec;
      boost::asio::ip::tcp::socket s{io_};
      s.connect({boost::asio::ip::make_address("127.0.0.1"), port_}, ec);
    }
    thread_.join();
  }

  std::string url() const { return "http://127.0.0.1:" + std::to_string(port_); }

  std::string request() {
    std::lock_guard lock{mutex_};
    return request_;
  }

private:
  void serve(int status, const std::string& body) {
    boost::system::error_code ec;
    boost::asio::ip::tcp::socket s{io_};
    acceptor_.accept(s, ec);
    served_ = true;
    if (ec)
      return;
    boost::asio::streambuf buf;
    boost::asio::read_until(s, buf, "\r\n\r\n", ec);
    {
      std::lock_guard lock{mutex_};
      request_.assign(boost::asio::buffers_begin(buf.data()), boost::asio::buffers_end(buf.data()));
    }
    auto reply = "HTTP/1.1 " + std::to_string(status) + " X\r\nContent-Type: application/json\r\n"
                 "Content-Length: " + std::to_string(body.size())
                 + "\r\nConnection: close\r\n\r\n" + body;
    boost::asio::write(s, boost::asio::buffer(reply), ec);
    s.shutdown(boost::asio::ip::tcp::socket::shutdown_both, ec);
  }

  boost::asio::io_context io_;
  boost::asio::ip::tcp::acceptor acceptor_;
  uint16_t port_ = 0;
  std::atomic<bool> served_{false};
  std::mutex mutex_;
  std::string request_;
  std::thread thread_;
};

} // namespace

TEST_CASE("status prints the node's health and sends the admin key as a bearer token") {
  std::string health =
    R"({"node_id":"n-1","status":"ready","members":[],"shards_owned":256,)"
    R"("entities":{"wallet":3,"market":1,"session":0}})";
  fake_node node{200, health};
  // The key from the environment, so it does not show in the process list.
  auto r = run_ctl({"--url", node.url(), "status"}, {{"WAGER_ADMIN_KEY", "k-123"}});
  INFO(r.err);
  CHECK(r.status == 0);
  REQUIRE(r.out.size() == 1);
  CHECK(boost::json::parse(r.out[0]) == boost::json::parse(health));
  auto req = node.request();
  CHECK(req.rfind("GET /v1/admin/health HTTP/1.1\r\n", 0) == 0);
  CHECK(req.find("Bearer k-123") != std::string::npos);
}

TEST_CASE("drain on a node without the drain endpoint says so and how to drain") {
  fake_node node{404, R"({"error":{"code":"not_found","message":"no such route"}})"};
  auto r = run_ctl({"--url", node.url(), "--admin-key", "k", "drain"});
  CHECK(r.status == 2);
  CHECK(lines_in(r.err) == 1);
  CHECK(r.err.find("POST /v1/admin/drain") != std::string::npos);
  CHECK(r.err.find("SIGTERM") != std::string::npos);
  CHECK(node.request().rfind("POST /v1/admin/drain HTTP/1.1\r\n", 0) == 0);
}

TEST_CASE("a refused admin key and an unreachable node exit 2 with the reason") {
  {
    fake_node node{403, R"({"error":{"code":"forbidden","message":"bad operator key"}})"};
    auto r = run_ctl({"--url", node.url(), "--admin-key", "wrong", "status"});
    CHECK(r.status == 2);
    CHECK(r.err.find("refused the admin key") != std::string::npos);
    CHECK(r.err.find("forbidden: bad operator key") != std::string::npos);
  }
  uint16_t free_port = 0;
  {
    boost::asio::io_context io;
    boost::asio::ip::tcp::acceptor a{io, {boost::asio::ip::make_address("127.0.0.1"), 0}};
    free_port = a.local_endpoint().port();
  }
  auto r = run_ctl({"--url", "http://127.0.0.1:" + std::to_string(free_port), "--admin-key",
                    "k", "--timeout-ms", "5000", "status"});
  CHECK(r.status == 2);
  CHECK(lines_in(r.err) == 1);
  CHECK(r.err.find("cannot reach") != std::string::npos);
}

TEST_CASE("status watches a real node and drain stops it: wagerctl exits 0, then the node") {
  wager::test::temp_dir dir;
  child_process node{wager::test::binary("apps/wager-node"),
                     {"--data-dir", (dir / "data").string(), "--http-port", "0", "--feed-port",
                      "-1", "--node-id", "n-ctl", "--admin-key", "k-ctl", "--log-level", "warn"}};
  auto line = node.read_line(30s);
  REQUIRE(line);
  auto url = "http://" + std::string{boost::json::parse(*line).at("http").as_string()};
  auto status = run_ctl({"--url", url, "status"}, {{"WAGER_ADMIN_KEY", "k-ctl"}});
  INFO(status.err);
  REQUIRE(status.status == 0);
  REQUIRE(status.out.size() == 1);
  auto health = boost::json::parse(status.out[0]);
  CHECK(health.at("node_id").as_string() == "n-ctl");
  CHECK(health.at("status").as_string() == "ready");
  auto drain = run_ctl({"--url", url, "drain"}, {{"WAGER_ADMIN_KEY", "k-ctl"}});
  INFO(drain.err);
  CHECK(drain.status == 0);
  REQUIRE(drain.out.size() == 1);
  CHECK(boost::json::parse(drain.out[0]) == boost::json::parse(R"({"node_id":"n-ctl","status":"draining"})"));
  auto exit = node.wait(30s);
  REQUIRE(exit.has_value());
  CHECK(*exit == 0);
}
