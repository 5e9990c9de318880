// The bet saga and its settlement killed with SIGKILL at each exact step
// (runtime/crash_point.hpp), then resumed by a new platform on the same
// journal: the bet is placed once, paid once, and no money is lost or made.

#include "money_fixture.hpp"

#include "support/process.hpp"
#include "wager/actors/ledger_audit.hpp"

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

namespace {

place_slip_cmd accumulator_cmd() {
  place_slip_cmd cmd;
  cmd.request = request_id{"s1"};
  cmd.type = slip_type::accumulator;
  cmd.stake = money{1'000};
  for (auto [id, home] : {std::pair{"m1", 200}, std::pair{"m2", 300}, std::pair{"m3", 150}})
    cmd.legs.push_back({market_id{id}, selection_id{"home"}, price{home}});
  return cmd;
}

// The product's money audit (wagerctl verify's), which checks slips leg by
// leg against their markets.
void ledger_is_clean(platform& p) {
  auto report = audit_ledger(p.journal());
  REQUIRE(report);
  for (auto& v : report->violations)
    FAIL_CHECK(v.to_string());
  CHECK(report->ok());
}

int64_t home_liability(platform& p, const std::string& market) {
  auto m = get_market(p, market);
  REQUIRE(m);
  auto i = m->liability.find("home");
  return i == m->liability.end() ? 0 : i->second;
}

} // namespace

TEST_CASE("a slip saga killed at each step resumes to exactly one slip on every market") {
  for (std::string point : {"wallet.hold_durable", "market.decision_durable",
                            "wallet.decision_received", "wallet.bet_durable"}) {
    CAPTURE(point);
    temp_dir dir;
    crash_at(dir.str(), "slip", point);
    auto p = start_or_throw(test_platform_options(dir.str()));
    wait_resumed_and_audit(*p);
    ledger_is_clean(*p);
    CHECK(balance(*p, "u1").available.minor == 9'000);
    auto again = await<bet>([&](auto done) { p->place_slip(user_id{"u1"}, accumulator_cmd(), done); });
    REQUIRE_MESSAGE(again, message_of(again.error()));
    CHECK(again->status == bet_status::open);
    CHECK(again->legs.size() == 3);
    CHECK(balance(*p, "u1").available.minor == 9'000);
    // 10.00 at 2.00 x 3.00 x 1.50 wins 80.00 on each leg.
    for (auto m : {"m1", "m2", "m3"})
      CHECK(home_liability(*p, m) == 8'000);
  }
}

TEST_CASE("a slip's settlement killed at each step pays it exactly once") {
  for (std::string point : {"market.result_durable", "wallet.payout_durable"}) {
    CAPTURE(point);
    temp_dir dir;
    crash_at(dir.str(), "slip_settle", point);
    auto p = start_or_throw(test_platform_options(dir.str()));
    // The settlements the crash cut short are asked for again.
    for (auto m : {"m1", "m2", "m3"})
      REQUIRE(settle(*p, m, {"home"}));
    wait_resumed_and_audit(*p);
    ledger_is_clean(*p);
    CHECK(balance(*p, "u1").available.minor == 9'000 + 9'000);
    auto bets = await<std::vector<bet>>([&](auto done) { p->bets(user_id{"u1"}, true, done); });
    REQUIRE(bets);
    REQUIRE(bets->size() == 1);
    CHECK(bets->front().status == bet_status::won);
    CHECK(bets->front().payout.minor == 9'000);
  }
}

TEST_CASE("a rollback killed at each step takes the payout back once, and the second result "
          "pays once") {
  for (std::string phase : {"rollback", "slip_rollback"})
    for (std::string point : {"market.rollback_durable", "wallet.reversal_durable"}) {
      CAPTURE(phase);
      CAPTURE(point);
      temp_dir dir;
      crash_at(dir.str(), phase, point);
      auto p = start_or_throw(test_platform_options(dir.str()));
      // The platform finishes the rollback itself: the payout (2,000 for
      // the single, 9,000 for the accumulator) is taken back once, and the
      // bet is open again.
      wait_resumed_and_audit(*p);
      ledger_is_clean(*p);
      CHECK(balance(*p, "u1").available.minor == 9'000);
      auto open = await<std::vector<bet>>([&](auto done) { p->bets(user_id{"u1"}, false, done); });
      REQUIRE(open);
      CHECK(open->size() == 1);
      // The operator asks again (the same answer), then settles it right.
      auto market = phase == "rollback" ? "m1" : "m2";
      auto u = await<market_view>([&](auto done) { p->unsettle_market(market_id{market}, done); });
      REQUIRE_MESSAGE(u, message_of(u.error()));
      CHECK(u->status == market_status::closed);
      REQUIRE(settle(*p, market, {"away"}));
      wait_resumed_and_audit(*p);
      ledger_is_clean(*p);
      // The bet (a single on m1's home, or the accumulator whose m2 leg is
      // now lost) lost: 10,000 less its 1,000 stake, nothing paid twice or
      // kept.
      CHECK(balance(*p, "u1").available.minor == 9'000);
      auto bets = await<std::vector<bet>>([&](auto done) { p->bets(user_id{"u1"}, true, done); });
      REQUIRE(bets);
      REQUIRE(bets->size() == 1);
      CHECK(bets->front().status == bet_status::lost);
      auto t = transactions(*p, "u1");
      REQUIRE(t);
      int reversals = 0;
      for (auto& x : *t)
        reversals += x.kind == "reversal" ? 1 : 0;
      CHECK(reversals == 1);
    }
}

TEST_CASE("a refused slip killed while its legs are released leaves no leg and no hold") {
  for (std::string point : {"wallet.decision_received", "wallet.bet_durable",
                            "wallet.leg_release_acknowledged", "market.leg_released"}) {
    CAPTURE(point);
    temp_dir dir;
    crash_at(dir.str(), "slip_refused", point);
    auto p = start_or_throw(test_platform_options(dir.str()));
    wait_resumed_and_audit(*p);
    CHECK(wait_until(
      [&] { return home_liability(*p, "m1") == 0 && home_liability(*p, "m2") == 0; },
      step_deadline));
    ledger_is_clean(*p);
    CHECK(balance(*p, "u1").available.minor == 10'000);
    auto again = await<bet>([&](auto done) { p->place_slip(user_id{"u1"}, accumulator_cmd(), done); });
    REQUIRE_FALSE(again);
    CHECK(code_of(again.error()) == errc::market_not_open);
    CHECK(balance(*p, "u1").available.minor == 10'000);
  }
}

TEST_CASE("a cash-out killed at each step pays it exactly once") {
  for (std::string point : {"market.cashout_durable", "wallet.cashout_durable"}) {
    CAPTURE(point);
    temp_dir dir;
    crash_at(dir.str(), "cashout", point);
    auto p = start_or_throw(test_platform_options(dir.str()));
    wait_resumed_and_audit(*p);
    ledger_is_clean(*p);
    // 10,000 - 1,000 staked + 1,000 x 2.00 / 2.00 x 0.95 cashed out.
    CHECK(wait_until([&] { return balance(*p, "u1").available.minor == 9'950; }, step_deadline));
    auto bets = await<std::vector<bet>>([&](auto done) { p->bets(user_id{"u1"}, true, done); });
    REQUIRE(bets);
    REQUIRE(bets->size() == 1);
    CHECK(bets->front().status == bet_status::cashed_out);
    CHECK(bets->front().payout.minor == 950);
    // The market settles later: nothing more is paid.
    REQUIRE(set_status(*p, "m1", market_status::closed));
    REQUIRE(settle(*p, "m1", {"home"}));
    wait_resumed_and_audit(*p);
    ledger_is_clean(*p);
    CHECK(balance(*p, "u1").available.minor == 9'950);
  }
}
