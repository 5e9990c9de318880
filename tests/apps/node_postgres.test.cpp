// wager-node with its journal on PostgreSQL (--journal URL): a real server
// started by the test (support/postgres_server.hpp), real node processes,
// kill -9, and the server stopped and started under a node.

#include "support/http_client.hpp"
#include "support/postgres_server.hpp"
#include "support/process.hpp"
#include "support/temp_dir.hpp"
#include "support/wait.hpp"

#include <boost/asio.hpp>
#include <boost/json.hpp>
#include <doctest/doctest.h>

#include <csignal>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <map>

using namespace std::chrono_literals;
using wager::test::child_process;
using wager::test::http_client;
using wager::test::postgres_server;

namespace {

const std::string admin_key = "pg-test-operator-key";
const std::string node_binary = wager::test::binary("apps/wager-node");

struct node {
  child_process process;
  std::string http;

  node(const std::string& data_dir, const std::string& journal)
    : process{node_binary,
              {"--data-dir", data_dir, "--journal", journal, "--http-port", "0", "--feed-port",
               "-1", "--admin-key", admin_key, "--log-level", "error"}} {
    auto line = process.read_line(60s);
    REQUIRE_MESSAGE(line, process.drain_stderr());
    http = std::string{boost::json::parse(*line).at("http").as_string()};
  }

  http_client client() {
    auto [host, port] = wager::test::split_address(http);
    return http_client{host, port};
  }
};

void open_market(http_client& c, const std::string& id) {
  auto created = c.post("/v1/admin/markets",
                        R"({"market_id":")" + id +
                          R"(","event":"A v B","name":"Winner","selections":[)"
                          R"({"selection_id":"a","name":"A","price":"2.00"},)"
                          R"({"selection_id":"b","name":"B","price":"2.00"}],)"
                          R"("limits":{"max_stake":100000,"max_liability":10000000}})",
                        admin_key);
  REQUIRE_MESSAGE(created.status == 201, created.body);
  auto opened = c.post("/v1/admin/markets/" + id + "/status", R"({"status":"open"})", admin_key);
  REQUIRE_MESSAGE(opened.status == 200, opened.body);
}

std::string sign_up(http_client& c, const std::string& user) {
  auto body = R"({"username":")" + user + R"(","password":"correct horse battery"})";
  REQUIRE(c.post("/v1/users", body).status == 201);
  auto login = c.post("/v1/sessions", body);
  REQUIRE(login.status == 201);
  return std::string{boost::json::parse(login.body).at("token").as_string()};
}

std::string log_in(http_client& c, const std::string& user) {
  auto login = c.post("/v1/sessions",
                      R"({"username":")" + user + R"(","password":"correct horse battery"})");
  REQUIRE_MESSAGE(login.status == 201, login.body);
  return std::string{boost::json::parse(login.body).at("token").as_string()};
}

int64_t available(http_client& c, const std::string& token) {
  auto w = c.get("/v1/wallet", token);
  REQUIRE_MESSAGE(w.status == 200, w.body);
  return boost::json::parse(w.body).at("available").as_int64();
}

// wagerctl --journal URL verify: its exit status and its JSON line.
std::pair<int, boost::json::object> verify(const std::string& url) {
  child_process ctl{wager::test::binary("apps/wagerctl"), {"--journal", url, "verify"}};
  auto line = ctl.read_line(60s);
  auto status = ctl.wait(60s);
  REQUIRE(status);
  REQUIRE_MESSAGE(line, ctl.drain_stderr());
  return {*status, boost::json::parse(*line).as_object()};
}

} // namespace

TEST_CASE("a node on PostgreSQL keeps every acknowledged deposit and bet through a kill -9, "
          "with nothing of it in its data dir") {
  postgres_server pg;
  pg.create_database("wager");
  auto url = pg.url("wager");
  wager::test::temp_dir dir;
  std::string bet_id;
  {
    node first{(dir / "first").string(), url};
    auto c = first.client();
    open_market(c, "m1");
    auto token = sign_up(c, "punter");
    REQUIRE(c.post("/v1/wallet/deposits", R"({"request_id":"d1","amount":100000})", token)
              .status == 201);
    auto bet = c.post("/v1/bets",
                      R"({"request_id":"b1","market_id":"m1","selection_id":"a","stake":1000,)"
                      R"("price":"2.00"})",
                      token);
    REQUIRE_MESSAGE(bet.status == 201, bet.body);
    bet_id = std::string{boost::json::parse(bet.body).at("bet_id").as_string()};
    CHECK(available(c, token) == 99000);
    first.process.signal(SIGKILL);
    REQUIRE(first.process.wait(10s));
  }
  // The journal, the stored answers and the sessions are on the server:
  // the first node's data dir holds no journal.
  CHECK_FALSE(std::filesystem::exists(dir / "first" / "journal.db"));

  // A second node with a data dir of its own serves everything the first
  // acknowledged.
  node second{(dir / "second").string(), url};
  auto c = second.client();
  auto token = log_in(c, "punter");
  CHECK(available(c, token) == 99000);
  auto bet = c.get("/v1/bets/" + bet_id, token);
  REQUIRE(bet.status == 200);
  CHECK(boost::json::parse(bet.body).at("status").as_string() == "open");
  // A retry of the first deposit gets its first answer and moves nothing.
  auto retry = c.post("/v1/wallet/deposits", R"({"request_id":"d1","amount":100000})", token);
  CHECK(retry.status == 201);
  CHECK(available(c, token) == 99000);
  // The market settles through the second node: the bet pays 20.00.
  auto settled = c.post("/v1/admin/markets/m1/settle", R"({"winners":["a"]})", admin_key);
  REQUIRE_MESSAGE(settled.status == 200, settled.body);
  CHECK(wager::test::wait_until([&] { return available(c, token) == 101000; }, 30s));
  second.process.signal(SIGTERM);
  CHECK(second.process.wait(60s) == 0);

  auto [status, report] = verify(url);
  CHECK(status == 0);
  CHECK(report.at("ok").as_bool());
  CHECK(report.at("journal").at("problems").as_int64() == 0);
  CHECK(report.at("journal").at("events").as_int64() > 0);
}

TEST_CASE("PostgreSQL stopped under a node: the node answers unavailable and is not ready, then "
          "serves again by itself once the server is back") {
  postgres_server pg;
  pg.create_database("wager");
  wager::test::temp_dir dir;
  node n{(dir / "data").string(), pg.url("wager")};
  auto c = n.client();
  auto token = sign_up(c, "punter");
  REQUIRE(c.post("/v1/wallet/deposits", R"({"request_id":"d1","amount":5000})", token).status ==
          201);
  REQUIRE(c.get("/readyz").status == 200);

  pg.stop();
  auto refused = c.post("/v1/wallet/deposits", R"({"request_id":"d2","amount":700})", token);
  CHECK(refused.status == 503);
  CHECK(boost::json::parse(refused.body).at("error").at("code").as_string() == "unavailable");
  CHECK(wager::test::wait_until([&] { return c.get("/readyz").status == 503; }, 30s));

  pg.start();
  // Ready again without any client write proving it.
  CHECK(wager::test::wait_until([&] { return c.get("/readyz").status == 200; }, 30s));
  // The client's retry with the same request id is taken once.
  wager::test::http_result retry;
  CHECK(wager::test::wait_until(
    [&] {
      retry = c.post("/v1/wallet/deposits", R"({"request_id":"d2","amount":700})", token);
      return retry.status != 503;
    },
    30s));
  CHECK_MESSAGE(retry.status == 201, retry.body);
  CHECK(c.post("/v1/wallet/deposits", R"({"request_id":"d2","amount":700})", token).status ==
        201);
  CHECK(available(c, token) == 5700);
}

TEST_CASE("a journal URL that is not PostgreSQL's, or a server that does not answer, stops the "
          "node at start with one line") {
  wager::test::temp_dir dir;
  {
    child_process bad{node_binary, {"--data-dir", (dir / "a").string(), "--journal",
                                    "mysql://root:secret@db/wager", "--http-port", "0"}};
    auto status = bad.wait(30s);
    REQUIRE(status);
    CHECK(*status == 2);
    auto err = bad.drain_stderr();
    CHECK(err.find("--journal") != std::string::npos);
    CHECK(err.find("postgresql://") != std::string::npos);
    CHECK(err.find("secret") == std::string::npos); // the password is not echoed
    CHECK(std::count(err.begin(), err.end(), '\n') == 1);
  }
  // A port nothing listens on: bound by the kernel, then released.
  boost::asio::io_context ioc;
  boost::asio::ip::tcp::acceptor acceptor{ioc, {boost::asio::ip::make_address("127.0.0.1"), 0}};
  auto port = acceptor.local_endpoint().port();
  acceptor.close();
  child_process absent{node_binary,
                       {"--data-dir", (dir / "b").string(), "--journal",
                        "postgresql://wager:hunter2@127.0.0.1:" + std::to_string(port) + "/wager",
                        "--http-port", "0", "--feed-port", "-1"}};
  auto status = absent.wait(60s);
  REQUIRE(status);
  CHECK(*status == 1);
  auto err = absent.drain_stderr();
  CAPTURE(err);
  CHECK(err.rfind("wager-node: cannot start: cannot connect to PostgreSQL at ", 0) == 0);
  CHECK(err.find("hunter2") == std::string::npos);
  CHECK(std::count(err.begin(), err.end(), '\n') == 1);
}

namespace {

// Runs a shell command (the openssl tool), or fails the test with its output.
void shell(const std::string& command, const wager::test::temp_dir& dir) {
  auto log = (dir / "openssl.log").string();
  child_process sh{"/bin/sh", {"-c", command + " >>" + log + " 2>&1"}};
  auto status = sh.wait(60s);
  REQUIRE(status);
  if (*status != 0) {
    std::ifstream in{log};
    std::string text{std::istreambuf_iterator<char>{in}, {}};
    FAIL("'" << command << "' failed: " << text);
  }
}

// A CA, and a certificate for 127.0.0.1 it signed: <name>.pem, <name>.key.
void make_ca(const wager::test::temp_dir& dir, const std::string& ca) {
  auto p = [&](const std::string& f) { return (dir / f).string(); };
  shell("openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj /CN=" + ca + " -keyout " +
          p(ca + ".key") + " -out " + p(ca + ".pem"),
        dir);
}

void make_server_cert(const wager::test::temp_dir& dir, const std::string& ca,
                      const std::string& name) {
  auto p = [&](const std::string& f) { return (dir / f).string(); };
  std::ofstream{p(name + ".ext")} << "subjectAltName=IP:127.0.0.1\n";
  shell("openssl req -newkey rsa:2048 -nodes -subj /CN=127.0.0.1 -keyout " + p(name + ".key") +
          " -out " + p(name + ".csr"),
        dir);
  shell("openssl x509 -req -days 2 -in " + p(name + ".csr") + " -CA " + p(ca + ".pem") +
          " -CAkey " + p(ca + ".key") + " -CAcreateserial -extfile " + p(name + ".ext") +
          " -out " + p(name + ".pem"),
        dir);
}

} // namespace

TEST_CASE("a node reaches PostgreSQL over TLS, the server's certificate checked against a CA "
          "file (verify-full) and the password from PGPASSWORD or a password file, and another "
          "CA's certificate or a wrong password stops it at start") {
  wager::test::temp_dir certs;
  make_ca(certs, "ca");
  make_ca(certs, "other-ca");
  make_server_cert(certs, "ca", "server");
  const std::string password = "s3cret-pg-pass";
  postgres_server pg{{.tls_cert = (certs / "server.pem").string(),
                      .tls_key = (certs / "server.key").string(),
                      .password = password}};
  pg.create_database("wager");
  auto base = pg.url("wager") + "?sslmode=verify-full&sslrootcert=";
  auto url = base + (certs / "ca.pem").string();
  wager::test::temp_dir dir;
  auto start_node = [&](const std::string& data, const std::string& journal,
                        std::map<std::string, std::string> env) {
    return std::make_unique<child_process>(
      node_binary,
      std::vector<std::string>{"--data-dir", (dir / data).string(), "--journal", journal,
                               "--http-port", "0", "--feed-port", "-1", "--admin-key", admin_key,
                               "--log-level", "error"},
      env);
  };
  auto serves = [&](child_process& p, const std::string& user) {
    auto line = p.read_line(60s);
    REQUIRE_MESSAGE(line, p.drain_stderr());
    auto http = std::string{boost::json::parse(*line).at("http").as_string()};
    auto [host, port] = wager::test::split_address(http);
    http_client c{host, port};
    auto token = sign_up(c, user);
    auto r = c.post("/v1/wallet/deposits", R"({"request_id":"d1","amount":2500})", token);
    CHECK_MESSAGE(r.status == 201, r.body);
    p.signal(SIGTERM);
    CHECK(p.wait(60s) == 0);
  };
  // The password from the environment.
  {
    auto p = start_node("env", url, {{"PGPASSWORD", password}});
    serves(*p, "tlsenv");
  }
  // The password from a file (libpq's .pgpass format, readable by its owner
  // only).
  {
    auto passfile = (dir / "pgpass").string();
    std::ofstream{passfile} << "127.0.0.1:" << pg.port() << ":wager:wager:" << password << "\n";
    std::filesystem::permissions(passfile, std::filesystem::perms::owner_read |
                                             std::filesystem::perms::owner_write);
    auto p = start_node("file", url, {{"PGPASSFILE", passfile}});
    serves(*p, "tlsfile");
  }
  // A server whose certificate the given CA did not sign: refused at start.
  {
    auto p = start_node("other-ca", base + (certs / "other-ca.pem").string(),
                        {{"PGPASSWORD", password}});
    auto status = p->wait(60s);
    REQUIRE(status);
    CHECK(*status != 0);
    auto err = p->drain_stderr();
    CHECK_MESSAGE(err.find("certificate verify failed") != std::string::npos, err);
  }
  // A wrong password: refused at start, and not repeated.
  {
    auto p = start_node("wrong", url, {{"PGPASSWORD", "not-the-password"}});
    auto status = p->wait(60s);
    REQUIRE(status);
    CHECK(*status != 0);
    auto err = p->drain_stderr();
    CHECK_MESSAGE(err.find("password authentication failed") != std::string::npos, err);
    CHECK(err.find("not-the-password") == std::string::npos);
  }
  // Plain TCP is refused by the server, so what the nodes wrote went over
  // TLS; over TLS with the password, the journal verifies.
  {
    child_process plain{wager::test::binary("apps/wagerctl"),
                        {"--journal", pg.url("wager") + "?sslmode=disable", "verify"},
                        {{"PGPASSWORD", password}}};
    auto status = plain.wait(60s);
    REQUIRE(status);
    CHECK(*status != 0);
    auto err = plain.drain_stderr();
    CHECK_MESSAGE(err.find("no encryption") != std::string::npos, err);
  }
  child_process checked{wager::test::binary("apps/wagerctl"), {"--journal", url, "verify"},
                        {{"PGPASSWORD", password}}};
  CHECK(checked.wait(60s) == 0);
}
