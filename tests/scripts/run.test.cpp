// scripts/run.sh as a newcomer meets it, on the wager-node and wagerctl of
// this build tree (WAGER_RUN_SKIP_BUILD): the real script, a real node, real
// sockets on 127.0.0.1.

#include "support/http_client.hpp"
#include "support/process.hpp"
#include "support/temp_dir.hpp"
#include "support/wait.hpp"

#include <boost/asio.hpp>
#include <boost/json.hpp>
#include <doctest/doctest.h>

#include <csignal>
#include <filesystem>
#include <fstream>
#include <sstream>

using namespace std::chrono_literals;
using wager::test::child_process;

namespace {

const std::string run_script = std::string{WAGER_SOURCE_DIR} + "/scripts/run.sh";

std::vector<std::string> script_args(std::vector<std::string> args) {
  args.insert(args.begin(), run_script);
  return args;
}

std::map<std::string, std::string> script_env(std::map<std::string, std::string> env = {}) {
  env["WAGER_RUN_BUILD_DIR"] = WAGER_BINARY_DIR;
  env["WAGER_RUN_SKIP_BUILD"] = "1";
  return env;
}

// run.sh started from `cwd`; stopped with SIGTERM (which it passes on to the
// node and the feed replay) when the test leaves, so no node outlives it.
struct run_sh {
  child_process script;
  run_sh(const std::vector<std::string>& args, const std::string& cwd,
         const std::map<std::string, std::string>& env = {})
    : script{"/bin/bash", script_args(args), script_env(env), cwd} {}
  ~run_sh() {
    if (!script.wait(0ms)) {
      script.signal(SIGTERM);
      script.wait(30s);
    }
  }
};

// The node's ready line, passed through by the script; nullopt if the
// script's output ends first.
std::optional<boost::json::object> read_ready(child_process& script) {
  while (auto line = script.read_line(30s))
    if (line->find(R"("event":"ready")") != std::string::npos)
      return boost::json::parse(*line).as_object();
  return std::nullopt;
}

wager::test::http_client client_of(const boost::json::object& ready) {
  auto [host, port] = wager::test::split_address(std::string{ready.at("http").as_string()});
  return wager::test::http_client{host, port};
}

const std::vector<std::string> free_ports = {"--http-port", "0", "--feed-port", "0",
                                             "--log-level", "warn"};

std::vector<std::string> with_free_ports(std::vector<std::string> args) {
  args.insert(args.end(), free_ports.begin(), free_ports.end());
  return args;
}

// The node's one-line error ("wager-node: ..."), or "" if there is none.
std::string error_line(const std::string& stderr_text) {
  std::istringstream lines{stderr_text};
  for (std::string line; std::getline(lines, line);)
    if (line.rfind("wager-node: ", 0) == 0)
      return line;
  return {};
}

} // namespace

TEST_CASE("run.sh: the user's --data-dir and --admin-key win over the script's defaults") {
  wager::test::temp_dir cwd;
  run_sh run{with_free_ports({"--data-dir", "other", "--admin-key=user-key"}), cwd.str()};
  auto ready = read_ready(run.script);
  REQUIRE_MESSAGE(ready, run.script.drain_stderr());
  // A relative directory is the user's, from where they ran the script.
  CHECK(std::filesystem::is_directory(cwd / "other"));
  auto client = client_of(*ready);
  CHECK(client.get("/healthz").status == 200);
  CHECK(client.get("/v1/admin/health", "user-key").status == 200);
  CHECK(client.get("/v1/admin/health", "demo-admin-key").status == 403);
  // The demo match day is played into the node the user configured.
  CHECK(wager::test::wait_until(
    [&] {
      auto markets = client.get("/v1/markets");
      return markets.status == 200 && markets.body.find("\"market_id\"") != std::string::npos;
    },
    30s));
  run.script.signal(SIGTERM);
  auto status = run.script.wait(30s);
  REQUIRE(status);
  CHECK(*status == 0);
}

TEST_CASE("run.sh: a data dir given as --data-dir=DIR, in WAGER_DATA_DIR or in --config is used") {
  wager::test::temp_dir cwd;
  std::ofstream{cwd / "node.json"} << R"({"data_dir": "from-config"})";
  struct form {
    std::vector<std::string> args;
    std::map<std::string, std::string> env;
    std::string data_dir;
  };
  for (auto& f : std::vector<form>{{{"--data-dir=from-flag"}, {}, "from-flag"},
                                   {{}, {{"WAGER_DATA_DIR", "from-env"}}, "from-env"},
                                   {{"--config", "node.json"}, {}, "from-config"},
                                   {{"--config=node.json"}, {}, "from-config"}}) {
    CAPTURE(f.data_dir);
    std::filesystem::remove_all(cwd / f.data_dir);
    f.env["WAGER_DEMO_FEED"] = "0";
    run_sh run{with_free_ports(f.args), cwd.str(), f.env};
    auto ready = read_ready(run.script);
    REQUIRE_MESSAGE(ready, run.script.drain_stderr());
    CHECK(std::filesystem::is_directory(cwd / f.data_dir));
    CHECK(client_of(*ready).get("/healthz").status == 200);
  }
}

TEST_CASE("run.sh: when the node cannot take its port, its error line and exit status reach the user") {
  boost::asio::io_context ioc;
  boost::asio::ip::tcp::acceptor taken{ioc};
  taken.open(boost::asio::ip::tcp::v4());
  taken.bind({boost::asio::ip::make_address("127.0.0.1"), 0});
  taken.listen();
  auto port = std::to_string(taken.local_endpoint().port());
  for (std::string flag : {"--http-port", "--feed-port"}) {
    CAPTURE(flag);
    wager::test::temp_dir cwd;
    std::vector<std::string> args{"--data-dir", "data", "--log-level", "warn", flag, port};
    args.push_back(flag == "--http-port" ? "--feed-port" : "--http-port");
    args.push_back("0");
    // What the node itself says and returns, started by hand.
    child_process node{wager::test::binary("apps/wager-node"), args, {}, cwd.str()};
    auto node_status = node.wait(30s);
    REQUIRE(node_status);
    REQUIRE(*node_status != 0);
    auto node_error = error_line(node.drain_stderr());
    REQUIRE_FALSE(node_error.empty());

    run_sh run{args, cwd.str()};
    auto status = run.script.wait(30s);
    REQUIRE(status);
    CHECK(*status == *node_status);
    auto said = run.script.drain_stderr();
    CHECK_MESSAGE(error_line(said) == node_error, said);
    CHECK_MESSAGE(said.find("unbound variable") == std::string::npos, said);
    CHECK_MESSAGE(said.find("no feed port") == std::string::npos, said);
  }
}
