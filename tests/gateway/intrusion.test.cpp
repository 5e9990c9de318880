// The intrusion detector alone: thresholds per window, blocks that double
// up to their bound, lifting, and tables that stay bounded under a spray.
// tests/apps/intrusion makes the attacks real against a running node.

#include "wager/gateway/intrusion.hpp"

#include "support/wait.hpp"

#include <doctest/doctest.h>

using namespace wager;
using namespace std::chrono_literals;

namespace {

double events(metrics& m, std::string_view kind) {
  auto text = m.render();
  auto name = "wager_security_events_total{kind=\"" + std::string{kind} + "\"} ";
  auto at = text.find(name);
  REQUIRE(at != std::string::npos);
  return std::stod(text.substr(at + name.size()));
}

int64_t wall_ms() {
  using namespace std::chrono;
  return duration_cast<milliseconds>(system_clock::now().time_since_epoch()).count();
}

} // namespace

using failure = intrusion_detector::login_failure;

TEST_CASE("guessing one username blocks the addresses that made half the guesses, no other") {
  metrics m;
  intrusion_options o;
  o.password_failures = 4;
  o.totp_failures = 2;
  o.stuffing_usernames = 0; // off: one username only here
  intrusion_detector d{o, m};
  // Three guesses from the attacker and one failure of the user's own.
  d.login_failed("10.0.0.1", "alice", failure::password);
  d.login_failed("10.0.0.1", "alice", failure::password);
  d.login_failed("10.0.0.9", "alice", failure::password);
  CHECK(d.blocked_ms("10.0.0.1") == 0);
  d.login_failed("10.0.0.1", "alice", failure::password);
  CHECK(d.blocked_ms("10.0.0.1") > 0);
  CHECK(d.blocked_ms("10.0.0.9") == 0);
  CHECK(events(m, "password_brute_force") == 1);
  // Guesses spread over four addresses raise the event and block none.
  for (auto address : {"10.0.1.1", "10.0.1.2", "10.0.1.3", "10.0.1.4"})
    d.login_failed(address, "bob", failure::password);
  CHECK(events(m, "password_brute_force") == 2);
  CHECK(d.blocks().size() == 1);
  // Attempts the login rate limit refused guessed nothing.
  for (int i = 0; i < 10; ++i)
    d.login_failed("10.0.0.5", "carol", failure::rate_limited);
  CHECK(d.blocked_ms("10.0.0.5") == 0);
  d.login_failed("10.0.0.6", "carol", failure::totp);
  d.login_failed("10.0.0.6", "carol", failure::totp);
  CHECK(d.blocked_ms("10.0.0.6") > 0);
  CHECK(events(m, "totp_brute_force") == 1);
  CHECK(events(m, "blocked_request") == 2);
}

TEST_CASE("failures while an address is blocked neither extend nor count the block again") {
  metrics m;
  intrusion_options o;
  o.admin_key_failures = 2;
  intrusion_detector d{o, m};
  for (int i = 0; i < 6; ++i)
    d.admin_key_refused("10.0.0.1");
  auto blocks = d.blocks();
  REQUIRE(blocks.size() == 1);
  CHECK(blocks[0].blocks == 1);
  CHECK(blocks[0].blocked_until_ms - wall_ms() <= 60'000);
}

TEST_CASE("credential stuffing counts distinct usernames from one address") {
  metrics m;
  intrusion_options o;
  o.stuffing_usernames = 3;
  o.password_failures = 0;
  intrusion_detector d{o, m};
  // One username again and again is not stuffing.
  for (int i = 0; i < 10; ++i)
    d.login_failed("10.0.0.1", "same", failure::password);
  CHECK(d.blocked_ms("10.0.0.1") == 0);
  d.login_failed("10.0.0.1", "other", failure::password);
  d.login_failed("10.0.0.1", "third", failure::password);
  CHECK(d.blocked_ms("10.0.0.1") > 0);
  CHECK(events(m, "credential_stuffing") == 1);
}

TEST_CASE("failures older than the window are forgotten") {
  metrics m;
  intrusion_options o;
  o.admin_key_failures = 2;
  o.window = 200ms;
  intrusion_detector d{o, m};
  d.admin_key_refused("10.0.0.1");
  auto start = std::chrono::steady_clock::now();
  // A condition, not a sleep: wait until the first failure is out of the window.
  REQUIRE(test::wait_until([&] { return std::chrono::steady_clock::now() - start > 250ms; }));
  d.admin_key_refused("10.0.0.1");
  CHECK(d.blocked_ms("10.0.0.1") == 0);
  d.admin_key_refused("10.0.0.1");
  CHECK(d.blocked_ms("10.0.0.1") > 0);
}

TEST_CASE("each block of an address doubles, up to the bound, and a lift keeps the count") {
  metrics m;
  intrusion_options o;
  o.token_refusals = 1;
  o.block_first = 10s;
  o.block_max = 35s;
  intrusion_detector d{o, m};
  std::vector<int64_t> lengths;
  for (int i = 0; i < 4; ++i) {
    d.token_refused("10.0.0.1");
    auto blocks = d.blocks();
    REQUIRE(blocks.size() == 1);
    CHECK(blocks[0].blocks == static_cast<uint32_t>(i + 1));
    CHECK(blocks[0].reason == security_event::token_refused);
    lengths.push_back(blocks[0].blocked_until_ms - wall_ms());
    CHECK(d.lift("10.0.0.1", "test"));
    CHECK_FALSE(d.lift("10.0.0.1", "test"));
    CHECK(d.blocked_ms("10.0.0.1") == 0);
  }
  // 10 s, 20 s, then 35 s (not 40), and 35 s again; a little slack for the clock.
  CHECK(lengths[0] > 9'000);
  CHECK(lengths[0] <= 10'000);
  CHECK(lengths[1] > 19'000);
  CHECK(lengths[1] <= 20'000);
  CHECK(lengths[2] > 34'000);
  CHECK(lengths[2] <= 35'000);
  CHECK(lengths[3] > 34'000);
  CHECK(lengths[3] <= 35'000);
}

TEST_CASE("a threshold of 0 turns its detection off, and settlements are recorded, never blocked") {
  metrics m;
  intrusion_options o;
  o.admin_key_failures = 0;
  o.settlements_per_minute = 3;
  intrusion_detector d{o, m};
  for (int i = 0; i < 50; ++i)
    d.admin_key_refused("10.0.0.1");
  CHECK(d.blocked_ms("10.0.0.1") == 0);
  for (int i = 0; i < 3; ++i)
    d.settled("10.0.0.2", "key:abc");
  CHECK(events(m, "settlement_burst") == 1);
  CHECK(d.blocked_ms("10.0.0.2") == 0);
  CHECK(events(m, "admin_key_failure") == 0);
}

TEST_CASE("a spray of addresses keeps the tables bounded and the active blocks") {
  metrics m;
  intrusion_options o;
  o.tracked_max = 100;
  o.admin_key_failures = 2;
  intrusion_detector d{o, m};
  d.admin_key_refused("10.9.9.9");
  d.admin_key_refused("10.9.9.9");
  REQUIRE(d.blocked_ms("10.9.9.9") > 0);
  for (int i = 0; i < 10'000; ++i)
    d.admin_key_refused("10.1." + std::to_string(i / 250) + "." + std::to_string(i % 250));
  // The spray, one failure per address, blocked nothing.
  CHECK(d.blocks().size() == 1);
  CHECK(d.blocked_ms("10.9.9.9") > 0);
}
