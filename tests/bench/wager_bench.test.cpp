// wager-bench as a developer runs it: the real binary, a tiny in-process
// match day, its JSON line read back. Not a performance test: no figure is
// checked, only that the tool runs, speaks its format and audits the money.

#include "support/process.hpp"
#include "support/temp_dir.hpp"

#include <boost/json.hpp>
#include <doctest/doctest.h>

using namespace std::chrono_literals;
using wager::test::child_process;

namespace {

const std::string bench_binary = wager::test::binary("bench/wager-bench");

struct bench_run {
  std::vector<boost::json::object> lines;
  int status = -1;
  std::string err;
};

bench_run run_bench(const std::vector<std::string>& args) {
  child_process bench{bench_binary, args};
  bench_run r;
  while (auto line = bench.read_line(120s)) {
    boost::json::error_code ec;
    auto doc = boost::json::parse(*line, ec);
    INFO("line: " << *line);
    REQUIRE_FALSE(ec);
    REQUIRE(doc.is_object());
    r.lines.push_back(doc.as_object());
  }
  auto status = bench.wait(60s);
  REQUIRE(status);
  r.status = *status;
  r.err = bench.drain_stderr();
  return r;
}

} // namespace

TEST_CASE("an in-process run prints one JSON line whose money audit holds") {
  wager::test::temp_dir dir;
  auto r = run_bench({"--mode", "inproc", "--clients", "2", "--seconds", "1", "--wallets", "50",
                      "--markets", "5", "--data-dir", (dir / "data").string()});
  INFO("stderr: " << r.err);
  CHECK(r.status == 0);
  REQUIRE(r.lines.size() == 1);
  auto& line = r.lines.front();
  CHECK(line.at("mode").as_string() == "inproc");
  CHECK(line.at("clients").to_number<int>() == 2);
  for (auto* key : {"seconds", "accepted_per_s", "rejected_per_s", "p50_ms", "p99_ms",
                    "p999_ms", "rss_mb"}) {
    CAPTURE(key);
    REQUIRE(line.contains(key));
    CHECK(line.at(key).to_number<double>() >= 0);
  }
  CHECK(line.at("bets").to_number<int>() > 0);
  CHECK(line.at("invariants_ok").as_bool());
  CHECK(line.at("machine").as_object().contains("cores"));
}

TEST_CASE("a run with multiples reports slips and legs beside singles, and its audit holds") {
  wager::test::temp_dir dir;
  auto r = run_bench({"--mode", "inproc", "--clients", "2", "--seconds", "1", "--wallets", "50",
                      "--markets", "8", "--multiples", "0.5", "--data-dir",
                      (dir / "data").string()});
  INFO("stderr: " << r.err);
  CHECK(r.status == 0);
  REQUIRE(r.lines.size() == 1);
  auto& line = r.lines.front();
  CHECK(line.at("multiples").to_number<double>() == 0.5);
  auto slips = line.at("slips_accepted_per_s").to_number<double>();
  auto legs = line.at("legs_accepted_per_s").to_number<double>();
  CHECK(slips > 0);
  CHECK(line.at("singles_accepted_per_s").to_number<double>() > 0);
  // Every slip has 2 to 5 legs.
  CHECK(legs >= 2 * slips);
  CHECK(legs <= 5 * slips);
  CHECK(line.at("invariants_ok").as_bool());
}

TEST_CASE("several client counts give one line each") {
  wager::test::temp_dir dir;
  auto r = run_bench({"--clients", "1,3", "--seconds", "0.3", "--wallets", "20", "--markets",
                      "3", "--data-dir", (dir / "data").string()});
  INFO("stderr: " << r.err);
  CHECK(r.status == 0);
  REQUIRE(r.lines.size() == 2);
  CHECK(r.lines[0].at("clients").to_number<int>() == 1);
  CHECK(r.lines[1].at("clients").to_number<int>() == 3);
}

TEST_CASE("a bad option exits 2 without a line") {
  auto r = run_bench({"--mode", "http"}); // no --url, no --admin-key
  CHECK(r.status == 2);
  CHECK(r.lines.empty());
  CHECK_FALSE(r.err.empty());
}
