#include "wager/runtime/config.hpp"

#include "support/temp_dir.hpp"

#include <doctest/doctest.h>

#include <algorithm>
#include <fstream>
#include <iterator>
#include <map>
#include <sstream>

using namespace wager;

namespace {

struct fake_env {
  std::map<std::string, std::string> vars;
  env_lookup lookup() const {
    return [this](std::string_view name) -> std::optional<std::string> {
      if (auto i = vars.find(std::string{name}); i != vars.end())
        return i->second;
      return std::nullopt;
    };
  }
};

std::string write_file(const test::temp_dir& dir, const std::string& text) {
  auto path = (dir / "node.json").string();
  std::ofstream{path} << text;
  return path;
}

} // namespace

TEST_CASE("without options every field has the documented default") {
  fake_env env;
  auto r = load_node_options({}, env.lookup());
  REQUIRE(r.error.empty());
  CHECK(r.options.data_dir == "./data");
  CHECK(r.options.http_host == "127.0.0.1");
  CHECK(r.options.http_port == 8080);
  CHECK(r.options.feed_port == std::optional<uint16_t>{8090});
  CHECK_FALSE(r.options.cluster_port.has_value());
  CHECK(r.options.seeds.empty());
  CHECK(r.options.admin_key.empty());
  CHECK(r.options.log_level == "info");
  CHECK(r.options.log_format == "text");
  CHECK(r.options.feed_silence.count() == 2000);
}

TEST_CASE("a flag beats the environment, which beats the file, which beats the default") {
  test::temp_dir dir;
  auto file = write_file(dir, R"({"http-port": 1111, "feed-port": 2222, "data-dir": "/from/file",
                                  "log_level": "debug"})");
  fake_env env{{{"WAGER_HTTP_PORT", "3333"}, {"WAGER_FEED_PORT", "4444"}}};
  auto r = load_node_options({"--config", file, "--http-port", "5555"}, env.lookup());
  REQUIRE(r.error.empty());
  CHECK(r.options.http_port == 5555);                    // flag
  CHECK(r.options.feed_port == std::optional<uint16_t>{4444}); // environment
  CHECK(r.options.data_dir == "/from/file");             // file
  CHECK(r.options.log_level == "debug");                 // file, snake_case key
  CHECK(r.options.http_host == "127.0.0.1");             // default
}

TEST_CASE("the config file can be named by WAGER_CONFIG") {
  test::temp_dir dir;
  auto file = write_file(dir, R"({"admin-key": "k1", "seeds": ["a:1", "b:2"], "cluster-port": 0})");
  fake_env env{{{"WAGER_CONFIG", file}}};
  auto r = load_node_options({}, env.lookup());
  REQUIRE(r.error.empty());
  CHECK(r.options.admin_key == "k1");
  CHECK(r.options.seeds == std::vector<std::string>{"a:1", "b:2"});
  CHECK(r.options.cluster_port == std::optional<uint16_t>{0});
}

TEST_CASE("flags take both --name value and --name=value forms") {
  fake_env env;
  auto r = load_node_options({"--http-port=0", "--feed-port", "-1", "--seeds=h:1,g:2",
                              "--cluster-port=7000", "--log-format=json"},
                             env.lookup());
  REQUIRE(r.error.empty());
  CHECK(r.options.http_port == 0);
  CHECK_FALSE(r.options.feed_port.has_value());
  CHECK(r.options.seeds.size() == 2);
  CHECK(r.options.log_format == "json");
}

TEST_CASE("bad options are refused with one line naming the problem") {
  fake_env env;
  struct bad_case {
    std::vector<std::string> args;
    std::string expected;
  };
  std::vector<bad_case> cases = {
    {{"--http-port", "65536"}, "--http-port"},
    {{"--http-port", "80x"}, "--http-port"},
    {{"--feed-port", "-2"}, "--feed-port"},
    {{"--log-level", "loud"}, "log level"},
    {{"--log-format", "xml"}, "--log-format"},
    {{"--node-id", "has space"}, "--node-id"},
    {{"--seeds", "nohost"}, "--seeds"},
    {{"--seeds", "a:1"}, "--cluster-port"},
    {{"--tls-cert", "/etc/hostname"}, "go together"},
    {{"--tls-cert", "/nonexistent.pem", "--tls-key", "/nonexistent.key"}, "cannot read"},
    {{"--no-such-option"}, "not expected"},
    {{"--http-port"}, "http-port"},
    {{"--config", "/nonexistent/node.json"}, "cannot read config file"},
  };
  for (auto& c : cases) {
    CAPTURE(c.args);
    auto r = load_node_options(c.args, env.lookup());
    CHECK_FALSE(r.error.empty());
    CHECK(r.error.find('\n') == std::string::npos);
    CHECK_MESSAGE(r.error.find(c.expected) != std::string::npos, r.error);
  }
}

TEST_CASE("the currency is EUR unless a flag, the environment or the file names another") {
  test::temp_dir dir;
  fake_env none;
  CHECK(load_node_options({}, none.lookup()).options.currency == "EUR");
  CHECK(load_node_options({"--currency", "GBP"}, none.lookup()).options.currency == "GBP");
  fake_env env{{{"WAGER_CURRENCY", "USD"}}};
  CHECK(load_node_options({}, env.lookup()).options.currency == "USD");
  auto file = write_file(dir, R"({"currency": "CHF"})");
  CHECK(load_node_options({"--config", file}, none.lookup()).options.currency == "CHF");
  for (std::string bad : {"eur", "EURO", "E1R", "", "€"}) {
    CAPTURE(bad);
    auto r = load_node_options({"--currency", bad}, none.lookup());
    CHECK(r.error.find("--currency") != std::string::npos);
    CHECK(r.error.find("ISO 4217") != std::string::npos);
  }
}

TEST_CASE("a bad environment variable is refused and named") {
  fake_env env{{{"WAGER_HTTP_PORT", "http"}}};
  auto r = load_node_options({}, env.lookup());
  CHECK(r.error.find("WAGER_HTTP_PORT") != std::string::npos);
}

TEST_CASE("a config file with an unknown key, a wrong type or bad JSON is refused") {
  test::temp_dir dir;
  fake_env env;
  for (auto [text, expected] :
       std::vector<std::pair<std::string, std::string>>{
         {R"({"http-prot": 1})", "unknown option"},
         {R"({"http-port": true})", "must be"},
         {R"({"http-port": 1)", "not valid JSON"},
         {R"([1, 2])", "JSON object"},
         {R"({"http-port": 70000})", "http-port"}}) {
    CAPTURE(text);
    auto file = write_file(dir, text);
    auto r = load_node_options({"--config", file}, env.lookup());
    CHECK_MESSAGE(r.error.find(expected) != std::string::npos, r.error);
  }
}

TEST_CASE("--help asks for the help text instead of starting") {
  fake_env env;
  auto r = load_node_options({"--help"}, env.lookup());
  CHECK(r.help_requested);
  CHECK(r.help.find("--data-dir") != std::string::npos);
  CHECK(r.help.find("--tls-key") != std::string::npos);
}

TEST_CASE("the example config file in docs lists valid options") {
  fake_env env;
  auto r = load_node_options({"--config", std::string{WAGER_SOURCE_DIR} + "/docs/node.example.json"},
                             env.lookup());
  CHECK_MESSAGE(r.error.empty(), r.error);
  CHECK(r.options.node_id == "node-1");
  CHECK(r.options.admin_key == "change-me");
}

TEST_CASE("cluster options: the secret from a file, and combinations that cannot work refused") {
  test::temp_dir dir;
  fake_env env;
  auto secret_file = write_file(dir, "0123456789abcdef-secret\n");
  auto r = load_node_options({"--cluster-port", "0", "--cluster-secret-file", secret_file},
                             env.lookup());
  REQUIRE_MESSAGE(r.error.empty(), r.error);
  CHECK(r.options.cluster_secret == "0123456789abcdef-secret");
  CHECK(r.options.cluster_heartbeat == std::chrono::milliseconds{200});
  CHECK(r.options.cluster_down_after == std::chrono::milliseconds{1600});
  fake_env from_env{{{"WAGER_CLUSTER_SECRET", "an-environment-secret"}}};
  CHECK(load_node_options({}, from_env.lookup()).options.cluster_secret
        == "an-environment-secret");
  struct bad_case {
    std::vector<std::string> args;
    std::string expected;
  };
  std::vector<bad_case> cases = {
    {{"--cluster-secret", "short"}, "at least 16"},
    {{"--cluster-secret", "0123456789abcdefgh", "--cluster-secret-file", secret_file},
     "exclude each other"},
    {{"--cluster-secret-file", "/nonexistent/secret"}, "cannot read cluster secret file"},
    {{"--cluster-heartbeat-ms", "500", "--cluster-down-after-ms", "900"}, "twice"},
    {{"--cluster-heartbeat-ms", "5"}, "--cluster-heartbeat-ms"},
    {{"--cluster-tls-cert", "/etc/hostname"}, "go together"},
  };
  for (auto& c : cases) {
    CAPTURE(c.args);
    auto bad = load_node_options(c.args, env.lookup());
    CHECK(bad.error.find('\n') == std::string::npos);
    CHECK_MESSAGE(bad.error.find(c.expected) != std::string::npos, bad.error);
  }
}

TEST_CASE("every option wager-node accepts is in docs/node.example.json and docs/configuration.md") {
  fake_env env;
  auto help = load_node_options({"--help"}, env.lookup()).help;
  auto read = [](const std::string& relative) {
    std::ifstream in{std::string{WAGER_SOURCE_DIR} + "/" + relative};
    REQUIRE(in);
    return std::string{std::istreambuf_iterator<char>{in}, {}};
  };
  auto example = read("docs/node.example.json");
  auto reference = read("docs/configuration.md");
  int options = 0;
  // The help text starts a line with each option ("-h,--help" for help).
  std::istringstream lines{help};
  for (std::string line; std::getline(lines, line);) {
    auto option = line.substr(std::min(line.find_first_not_of(' '), line.size()));
    if (option.rfind("--", 0) != 0)
      continue;
    auto name = option.substr(2, option.find_first_of(" =") - 2);
    CAPTURE(name);
    ++options;
    CHECK(reference.find("`--" + name) != std::string::npos);
    if (name != "config") // the file cannot name another file
      CHECK(example.find("\"" + name + "\":") != std::string::npos);
  }
  CHECK(options > 20);
}
