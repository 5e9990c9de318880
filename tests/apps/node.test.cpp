// wager-node as orchestration meets it: a real process, real sockets, real
// signals.

#include "support/http_client.hpp"
#include "support/process.hpp"
#include "support/temp_dir.hpp"
#include "support/wait.hpp"

#include "wager/persistence/sqlite_journal.hpp"

#include <boost/asio.hpp>
#include <boost/json.hpp>
#include <doctest/doctest.h>

#include <csignal>
#include <fstream>
#include <regex>
#include <set>

using namespace std::chrono_literals;
using wager::test::child_process;

namespace {

struct ready_line {
  std::string node_id;
  std::string http;
  std::string feed;
  std::string cluster;
};

std::optional<ready_line> read_ready(child_process& node) {
  auto line = node.read_line(30s);
  if (!line)
    return std::nullopt;
  auto doc = boost::json::parse(*line).as_object();
  if (doc.at("event").as_string() != "ready")
    return std::nullopt;
  auto text = [&](const char* key) {
    auto& v = doc.at(key);
    return v.is_null() ? std::string{} : std::string{v.as_string()};
  };
  return ready_line{text("node_id"), text("http"), text("feed"), text("cluster")};
}

std::vector<std::string> node_args(const wager::test::temp_dir& dir,
                                   std::vector<std::string> extra = {}) {
  std::vector<std::string> args{"--data-dir", (dir / "data").string(), "--http-port", "0",
                                "--feed-port", "0", "--log-level", "warn"};
  args.insert(args.end(), extra.begin(), extra.end());
  return args;
}

const std::string node_binary = wager::test::binary("apps/wager-node");

// Starts the node with `args`, checks that it exits non-zero without a
// ready line and with one line on stderr naming itself, and returns that line.
std::string refused_with_one_line(const std::vector<std::string>& args) {
  child_process node{node_binary, args};
  auto status = node.wait(30s);
  REQUIRE(status.has_value());
  CHECK(*status != 0);
  CHECK_FALSE(node.read_line(1s).has_value()); // no ready line
  auto err = node.drain_stderr();
  CHECK(err.rfind("wager-node: ", 0) == 0);
  CHECK(std::count(err.begin(), err.end(), '\n') == 1);
  return err;
}

} // namespace

TEST_CASE("the ready line names the ports the node really bound") {
  wager::test::temp_dir dir;
  child_process node{node_binary, node_args(dir, {"--cluster-port", "0", "--node-id", "n-1"})};
  auto ready = read_ready(node);
  REQUIRE(ready);
  CHECK(ready->node_id == "n-1");
  auto [host, port] = wager::test::split_address(ready->http);
  CHECK(host == "127.0.0.1");
  CHECK(port != 0);
  wager::test::http_client client{host, port};
  CHECK(client.get("/healthz").status == 200);
  // Ready once its cluster agent, the cluster's first member, owns the shards.
  CHECK(wager::test::wait_until([&] { return client.get("/readyz").status == 200; }));
  auto metrics = client.get("/metrics");
  CHECK(metrics.status == 200);
  CHECK(metrics.headers["content-type"].find("text/plain") == 0);
  // The feed and cluster ports accept connections.
  for (auto& address : {ready->feed, ready->cluster}) {
    CAPTURE(address);
    auto [h, p] = wager::test::split_address(address);
    boost::asio::io_context ioc;
    boost::asio::ip::tcp::socket socket{ioc};
    boost::system::error_code ec;
    socket.connect({boost::asio::ip::make_address(h), p}, ec);
    CHECK_FALSE(ec);
  }
}

namespace {

// A port nothing listens on: bound by the kernel, then released.
uint16_t free_port() {
  boost::asio::io_context ioc;
  boost::asio::ip::tcp::acceptor acceptor{
    ioc, {boost::asio::ip::make_address("127.0.0.1"), 0}};
  return acceptor.local_endpoint().port();
}

} // namespace

// Regression (issue 19): /readyz answered 200 as soon as the cluster agent
// started, while the node was still joining and owned no shard.
TEST_CASE("readyz answers 503 until a clustered node is up and owns its shards") {
  wager::test::temp_dir dir;
  std::string secret = "a-cluster-secret-long-enough-for-the-node";
  uint16_t seed_port = free_port();
  std::string seed = "127.0.0.1:" + std::to_string(seed_port);
  child_process joiner{node_binary, node_args(dir, {"--node-id", "n-joiner", "--cluster-port", "0",
                                                    "--seeds", seed, "--cluster-secret", secret})};
  auto ready = read_ready(joiner);
  REQUIRE(ready);
  auto [host, port] = wager::test::split_address(ready->http);
  wager::test::http_client client{host, port};
  // Its seed does not answer yet: the node serves /healthz but is not ready.
  auto readyz = client.get("/readyz");
  CHECK(readyz.status == 503);
  CHECK(readyz.body == R"({"status":"starting"})");
  CHECK(readyz.headers["retry-after"] == "1");
  CHECK(client.get("/healthz").status == 200);

  // The seed starts the cluster; the joiner is admitted, becomes up and owns
  // its share of the shards.
  child_process first{node_binary, node_args(dir, {"--node-id", "n-first", "--cluster-port",
                                                   std::to_string(seed_port),
                                                   "--cluster-secret", secret})};
  REQUIRE(read_ready(first));
  CHECK(wager::test::wait_until([&] { return client.get("/readyz").status == 200; },
                                std::chrono::seconds{20}));

  // Every series docs/deploy/alerts.yml watches is one a clustered node
  // exports: an alert on a name no node exports would stay silent forever.
  // A feed line makes the feed's producer series exist.
  auto [feed_host, feed_port] = wager::test::split_address(ready->feed);
  boost::asio::io_context ioc;
  boost::asio::ip::tcp::socket feed{ioc};
  feed.connect({boost::asio::ip::make_address(feed_host), feed_port});
  boost::asio::write(feed, boost::asio::buffer(std::string{
                             R"({"type":"alive","producer":"alerts","seq":1,"ts":1})" "\n"}));
  std::string metrics;
  CHECK(wager::test::wait_until([&] {
    metrics = client.get("/metrics").body;
    return metrics.find("wager_feed_producer_up{") != std::string::npos;
  }));
  CHECK(metrics.find("wager_node_state{state=\"ready\"} 1") != std::string::npos);
  std::ifstream rules{std::string{WAGER_SOURCE_DIR} + "/docs/deploy/alerts.yml"};
  std::string text{std::istreambuf_iterator<char>{rules}, {}};
  REQUIRE(!text.empty());
  // Counters whose series appear when their first event happens: a
  // restart (labelled by supervisor and child).
  const std::set<std::string> on_first_event{"wager_restarts_total"};
  std::regex name{R"(wager_[a-z_]+)"};
  int checked = 0;
  for (std::sregex_iterator i{text.begin(), text.end(), name}, end; i != end; ++i) {
    auto family = i->str();
    if (family.size() > 7 && family.compare(family.size() - 7, 7, "_bucket") == 0)
      family.resize(family.size() - 7);
    if (on_first_event.count(family) > 0)
      continue;
    CAPTURE(family);
    CHECK(metrics.find("\n# TYPE " + family + " ") != std::string::npos);
    ++checked;
  }
  CHECK(checked >= 8);
}

TEST_CASE("an unknown route answers 404 in the API's error shape") {
  wager::test::temp_dir dir;
  child_process node{node_binary, node_args(dir)};
  auto ready = read_ready(node);
  REQUIRE(ready);
  auto [host, port] = wager::test::split_address(ready->http);
  wager::test::http_client client{host, port};
  auto res = client.get("/v1/nothing-here");
  CHECK(res.status == 404);
  auto doc = boost::json::parse(res.body);
  CHECK(doc.at("error").at("code").as_string() == "not_found");
}

TEST_CASE("SIGTERM and SIGINT stop the node cleanly with exit code 0") {
  for (int signo : {SIGTERM, SIGINT}) {
    CAPTURE(signo);
    wager::test::temp_dir dir;
    child_process node{node_binary, node_args(dir)};
    REQUIRE(read_ready(node));
    node.signal(signo);
    auto status = node.wait(30s);
    REQUIRE(status.has_value());
    CHECK(*status == 0);
  }
}

namespace {

// Signs up and logs in over HTTP; the session's token.
std::string user_token(wager::test::http_client& client, const std::string& name) {
  auto body = R"({"username":")" + name + R"(","password":"correct horse battery"})";
  auto r = client.post("/v1/users", body);
  REQUIRE_MESSAGE(r.status == 201, r.body);
  r = client.post("/v1/sessions", body);
  REQUIRE_MESSAGE(r.status == 201, r.body);
  return std::string{boost::json::parse(r.body).at("token").as_string()};
}

std::string error_code_of(const wager::test::http_result& r) {
  return std::string{boost::json::parse(r.body).at("error").at("code").as_string()};
}

} // namespace

TEST_CASE("POST /v1/admin/drain needs the operator key and drains nothing without it") {
  wager::test::temp_dir dir;
  child_process node{node_binary, node_args(dir, {"--admin-key", "drain-key"})};
  auto ready = read_ready(node);
  REQUIRE(ready);
  auto [host, port] = wager::test::split_address(ready->http);
  wager::test::http_client client{host, port};
  auto r = client.post("/v1/admin/drain", "{}");
  CHECK(r.status == 401);
  CHECK(error_code_of(r) == "unauthorized");
  r = client.post("/v1/admin/drain", "{}", "not-the-key");
  CHECK(r.status == 403);
  CHECK(error_code_of(r) == "forbidden");
  r = client.post("/v1/admin/drain", "{}", user_token(client, "punter"));
  CHECK(r.status == 403);
  CHECK(error_code_of(r) == "forbidden");
  r = client.post("/v1/admin/drain", R"({"now":true})", "drain-key");
  CHECK(r.status == 400);
  CHECK(error_code_of(r) == "unknown_field");
  // Still serving after all of that.
  CHECK(client.get("/readyz").status == 200);
  CHECK_FALSE(node.wait(0ms).has_value());
}

// Regression (issue 19): the currency was a hard-coded "EUR".
TEST_CASE("the wallet shows the currency the node is configured with") {
  wager::test::temp_dir dir;
  child_process node{node_binary, node_args(dir, {"--currency", "GBP"})};
  auto ready = read_ready(node);
  REQUIRE(ready);
  auto [host, port] = wager::test::split_address(ready->http);
  wager::test::http_client client{host, port};
  auto r = client.get("/v1/wallet", user_token(client, "gillian"));
  REQUIRE_MESSAGE(r.status == 200, r.body);
  CHECK(boost::json::parse(r.body).at("currency").as_string() == "GBP");
}

// Regression (issue 5): the first drain endpoint raised SIGTERM from its
// handler and the drain sometimes closed the connection before the 202 was
// written. The drain now starts once the answer is out.
TEST_CASE("POST /v1/admin/drain answers 202, then the node drains and exits 0") {
  wager::test::temp_dir dir;
  child_process node{node_binary, node_args(dir, {"--admin-key", "drain-key", "--node-id", "n-9"})};
  auto ready = read_ready(node);
  REQUIRE(ready);
  auto [host, port] = wager::test::split_address(ready->http);
  wager::test::http_client client{host, port};
  auto r = client.post("/v1/admin/drain", "", "drain-key");
  REQUIRE_MESSAGE(r.status == 202, r.body);
  auto body = boost::json::parse(r.body);
  CHECK(body.at("status").as_string() == "draining");
  CHECK(body.at("node_id").as_string() == "n-9");
  auto status = node.wait(30s);
  REQUIRE(status.has_value());
  CHECK(*status == 0);
}

TEST_CASE("the environment configures the node when no flag is given") {
  wager::test::temp_dir dir;
  child_process node{node_binary,
                     {"--data-dir", (dir / "data").string(), "--log-level", "warn"},
                     {{"WAGER_HTTP_PORT", "0"}, {"WAGER_FEED_PORT", "-1"},
                      {"WAGER_NODE_ID", "from-env"}}};
  auto ready = read_ready(node);
  REQUIRE(ready);
  CHECK(ready->node_id == "from-env");
  CHECK(ready->feed.empty());
  CHECK(ready->cluster.empty());
}

TEST_CASE("a bad option exits non-zero with one clear line on stderr") {
  wager::test::temp_dir dir;
  for (auto args : std::vector<std::vector<std::string>>{
         {"--http-port", "70000"}, {"--frobnicate"}, {"--log-format", "yaml"}}) {
    CAPTURE(args);
    refused_with_one_line(args);
  }
}

TEST_CASE("an unusable data dir exits non-zero with one clear line") {
  wager::test::temp_dir dir;
  auto file = dir / "not-a-dir";
  std::ofstream{file} << "x";
  child_process node{node_binary, {"--data-dir", file.string(), "--http-port", "0"}};
  auto status = node.wait(30s);
  REQUIRE(status.has_value());
  CHECK(*status != 0);
  auto err = node.drain_stderr();
  CHECK(err.find("data dir") != std::string::npos);
  CHECK(std::count(err.begin(), err.end(), '\n') == 1);
}

TEST_CASE("a row-layout journal is refused with the command that upgrades it, and starts once "
          "upgraded") {
  wager::test::temp_dir dir;
  auto data = dir / "data";
  std::filesystem::create_directories(data);
  {
    wager::journal_options o;
    o.path = (data / "journal.db").string();
    o.layout = wager::journal_layout::rows;
    auto j = wager::open_sqlite_journal(std::move(o));
    REQUIRE(j);
  }
  auto err = refused_with_one_line(node_args(dir));
  CHECK(err.find("row layout") != std::string::npos);
  CHECK(err.find("wagerctl --data-dir " + data.string() + " upgrade") != std::string::npos);
  child_process upgrade{wager::test::binary("apps/wagerctl"),
                        {"--data-dir", data.string(), "upgrade"}};
  auto upgraded = upgrade.wait(60s);
  REQUIRE(upgraded.has_value());
  REQUIRE_MESSAGE(*upgraded == 0, upgrade.drain_stderr());
  child_process node{node_binary, node_args(dir)};
  REQUIRE(read_ready(node));
}

TEST_CASE("a port already in use is refused with one clear line") {
  wager::test::temp_dir dir;
  child_process first{node_binary, node_args(dir)};
  auto ready = read_ready(first);
  REQUIRE(ready);
  auto port = std::to_string(wager::test::split_address(ready->http).second);
  wager::test::temp_dir dir2;
  child_process second{node_binary,
                       {"--data-dir", (dir2 / "data").string(), "--http-port", port,
                        "--feed-port", "-1"}};
  auto status = second.wait(30s);
  REQUIRE(status.has_value());
  CHECK(*status != 0);
  CHECK(second.drain_stderr().find("cannot listen") != std::string::npos);
}
