// The bet saga and its settlement killed with SIGKILL at each exact step
// (runtime/crash_point.hpp), then resumed by a new platform on the same
// journal: the bet is placed once, paid once, and no money is lost or made.

#include "money_fixture.hpp"

#include "support/process.hpp"

#include <doctest/doctest.h>

#include <csignal>
#include <limits>

using namespace wager;
using namespace wager::test;

namespace {

constexpr auto step_deadline = std::chrono::seconds{30};

std::string worker() {
  return binary("tests/actors/wager_actors_saga_step_worker");
}

// Runs the worker until the crash point kills it; checks it died there.
void crash_at(const std::string& dir, const std::string& phase, const std::string& point) {
  child_process child{worker(), {dir, phase}, {{"WAGER_CRASH_AT", point}}};
  auto ready = child.read_line(step_deadline);
  REQUIRE_MESSAGE(ready == std::optional<std::string>{"ready"}, child.drain_stderr());
  auto status = child.wait(step_deadline);
  auto err = child.drain_stderr();
  REQUIRE_MESSAGE(status == 128 + SIGKILL, "exit " << status.value_or(-1) << ": " << err);
  CHECK_MESSAGE(err.find("crash point " + point + " reached") != std::string::npos, err);
}

// After the restart nobody touches an entity until the journal shows every
// saga and payout finished: the platform resumes them itself.
void wait_resumed_and_audit(platform& p) {
  journal_audit audit;
  bool done = wait_until(
    [&] {
      audit = audit_journal(p.journal(), false);
      return audit.holds() == 0 && audit.outboxes_empty();
    },
    step_deadline);
  CHECK_MESSAGE(done, audit.holds() << " holds open after the restart");
  audit = audit_journal(p.journal(), true);
  CHECK_MESSAGE(audit.violations.empty(), audit.first_violation());
  CHECK(audit.deposits.minor == 10'000);
}

} // namespace

TEST_CASE("a bet saga killed at each step resumes to exactly one accepted bet") {
  for (auto point : {"wallet.hold_durable", "market.decision_durable",
                     "wallet.decision_received", "wallet.bet_durable"}) {
    CAPTURE(point);
    temp_dir dir;
    crash_at(dir.str(), "bet", point);
    auto p = start_or_throw(test_platform_options(dir.str()));
    wait_resumed_and_audit(*p);
    auto b = balance(*p, "u1");
    CHECK(b.available.minor == 9'000);
    CHECK(b.held.minor == 0);
    // The client's retry gets the one bet, accepted at the asked price.
    auto again = place(*p, "u1", "b1", "m1", "home", 1'000, 200);
    REQUIRE_MESSAGE(again, message_of(again.error()));
    CHECK(again->status == bet_status::open);
    CHECK(again->accepted.hundredths == 200);
    CHECK(balance(*p, "u1").available.minor == 9'000);
    auto m = get_market(*p, "m1");
    REQUIRE(m);
    CHECK(m->liability.at("home") == 1'000);
  }
}

TEST_CASE("a settlement killed at each step pays the winner exactly once") {
  for (auto point : {"market.result_durable", "wallet.payout_durable"}) {
    CAPTURE(point);
    temp_dir dir;
    crash_at(dir.str(), "settle", point);
    auto p = start_or_throw(test_platform_options(dir.str()));
    wait_resumed_and_audit(*p);
    // 10,000 - 1,000 staked + 1,000 x 2.00 won.
    CHECK(balance(*p, "u1").available.minor == 11'000);
    auto bets = await<std::vector<bet>>([&](auto done) { p->bets(user_id{"u1"}, true, done); });
    REQUIRE(bets);
    REQUIRE(bets->size() == 1);
    CHECK(bets->front().status == bet_status::won);
    CHECK(bets->front().payout.minor == 2'000);
    // Settling again changes nothing.
    REQUIRE(settle(*p, "m1", {"home"}));
    wait_resumed_and_audit(*p);
    CHECK(balance(*p, "u1").available.minor == 11'000);
  }
}

TEST_CASE("a non-runner's refund and a cancellation killed at each step refund the stake exactly once") {
  for (std::string phase : {"withdraw", "cancel"})
    for (std::string point : {"market.result_durable", "wallet.payout_durable"}) {
      CAPTURE(phase);
      CAPTURE(point);
      temp_dir dir;
      crash_at(dir.str(), phase, point);
      auto p = start_or_throw(test_platform_options(dir.str()));
      wait_resumed_and_audit(*p);
      CHECK(balance(*p, "u1").available.minor == 10'000);
      auto bets = await<std::vector<bet>>([&](auto done) { p->bets(user_id{"u1"}, true, done); });
      REQUIRE(bets);
      REQUIRE(bets->size() == 1);
      CHECK(bets->front().status == bet_status::void_);
      CHECK(bets->front().payout.minor == 1'000);
      // Asking again refunds nothing more, and the result pays nothing on it.
      auto again = phase == "withdraw"
                     ? await<market_view>([&](auto done) {
                         p->withdraw_selection(market_id{"m1"}, selection_id{"home"}, done);
                       })
                     : await<market_view>([&](auto done) {
                         p->cancel_bets(market_id{"m1"}, 0, std::numeric_limits<int64_t>::max(),
                                        done);
                       });
      REQUIRE_MESSAGE(again, message_of(again.error()));
      REQUIRE(set_status(*p, "m1", market_status::closed));
      REQUIRE(settle(*p, "m1", {"away"}));
      wait_resumed_and_audit(*p);
      CHECK(balance(*p, "u1").available.minor == 10'000);
    }
}
