// Settlement and void through the embedded platform: exact payouts (won:
// floor(stake x price), lost: 0, void: the stake), each bet settled once
// even when settled twice or cut short by a restart, and payouts delivered
// to wallets that were passivated meanwhile.

#include "money_fixture.hpp"

#include <doctest/doctest.h>

#include <atomic>
#include <future>

using namespace wager;
using namespace wager::test;

namespace {

// Waits until the journal shows every payout delivered, then checks it all.
void wait_paid_and_audit(money_world& w) {
  journal_audit audit;
  bool paid = wait_until(
    [&] {
      audit = audit_journal(w.p().journal(), false);
      return audit.outboxes_empty() && audit.holds() == 0;
    },
    30s);
  CHECK_MESSAGE(paid, "payouts still owed after 30 s");
  audit = audit_journal(w.p().journal(), true);
  CHECK_MESSAGE(audit.violations.empty(), audit.first_violation());
}

// wager_settlement_payouts_pending, as /metrics shows it.
double payouts_pending(money_world& w) {
  auto text = w.p().metrics().render();
  std::string name = "\nwager_settlement_payouts_pending ";
  auto at = text.find(name);
  REQUIRE(at != std::string::npos);
  return std::stod(text.substr(at + name.size()));
}

int64_t available(money_world& w, const std::string& user) {
  return balance(w.p(), user).available.minor;
}

} // namespace

TEST_CASE("a won bet pays stake times price rounded down and a lost bet pays nothing") {
  money_world w;
  open_two_way(w.p(), two_way_market("m1", 155, 300));
  for (auto user : {"u1", "u2", "u3"})
    REQUIRE(deposit(w.p(), user, "d1", 10'000));
  auto won = place(w.p(), "u1", "r1", "m1", "home", 333, 155); // 516.15 -> 516
  REQUIRE(won);
  REQUIRE(set_price(w.p(), "m1", "home", 199));
  auto tiny = place(w.p(), "u3", "r1", "m1", "home", 1, 199); // 1.99 -> 1
  REQUIRE(tiny);
  auto lost = place(w.p(), "u2", "r1", "m1", "away", 1'000, 300);
  REQUIRE(lost);
  auto view = settle(w.p(), "m1", {"home"});
  REQUIRE(view);
  CHECK(view->status == market_status::settled);
  wait_paid_and_audit(w);
  CHECK(available(w, "u1") == 10'000 - 333 + 516);
  CHECK(available(w, "u2") == 9'000);
  CHECK(available(w, "u3") == 10'000 - 1 + 1);
  auto b1 = get_bet(w.p(), "u1", won->id.value);
  REQUIRE(b1);
  CHECK(b1->status == bet_status::won);
  CHECK(b1->payout.minor == 516);
  CHECK(b1->settled_at_ms > 0);
  auto b2 = get_bet(w.p(), "u2", lost->id.value);
  REQUIRE(b2);
  CHECK(b2->status == bet_status::lost);
  CHECK(b2->payout.minor == 0);
  auto audit = audit_journal(w.p().journal(), true);
  // The house kept 1000 and paid 183 + 0 over the stakes it took.
  CHECK(audit.house.minor == 333 + 1 + 1'000 - 516 - 1);
}

TEST_CASE("a voided market refunds every stake exactly") {
  money_world w;
  open_two_way(w.p(), two_way_market("m1", 250, 300));
  REQUIRE(deposit(w.p(), "u1", "d1", 10'000));
  REQUIRE(deposit(w.p(), "u2", "d1", 10'000));
  auto a = place(w.p(), "u1", "r1", "m1", "home", 777, 250);
  auto b = place(w.p(), "u2", "r1", "m1", "away", 1'234, 300);
  REQUIRE(a);
  REQUIRE(b);
  auto view = void_market(w.p(), "m1");
  REQUIRE(view);
  CHECK(view->status == market_status::voided);
  wait_paid_and_audit(w);
  CHECK(available(w, "u1") == 10'000);
  CHECK(available(w, "u2") == 10'000);
  auto va = get_bet(w.p(), "u1", a->id.value);
  REQUIRE(va);
  CHECK(va->status == bet_status::void_);
  CHECK(va->payout.minor == 777);
  CHECK(audit_journal(w.p().journal(), true).house.minor == 0);
}

TEST_CASE("several winners are each paid") {
  money_world w;
  open_two_way(w.p(), two_way_market("m1", 250, 300));
  REQUIRE(deposit(w.p(), "u1", "d1", 10'000));
  REQUIRE(place(w.p(), "u1", "r1", "m1", "home", 100, 250));
  REQUIRE(place(w.p(), "u1", "r2", "m1", "away", 100, 300));
  REQUIRE(settle(w.p(), "m1", {"home", "away"}));
  wait_paid_and_audit(w);
  CHECK(available(w, "u1") == 10'000 - 200 + 250 + 300);
}

// The market stores the winners sorted, but compares a repeated settle's
// winners with them before sorting those (market.cpp, settle()).
TEST_CASE("settling again with the same winners in another order changes nothing") {
  money_world w;
  open_two_way(w.p(), two_way_market("m1", 200, 300));
  REQUIRE(deposit(w.p(), "u1", "d1", 10'000));
  REQUIRE(place(w.p(), "u1", "r1", "m1", "home", 1'000, 200));
  REQUIRE(settle(w.p(), "m1", {"home", "away"}));
  auto again = settle(w.p(), "m1", {"home", "away"});
  CHECK_MESSAGE(again, (again ? "" : message_of(again.error())));
  CHECK(settle(w.p(), "m1", {"away", "home"}));
  wait_paid_and_audit(w);
  CHECK(available(w, "u1") == 11'000);
}

TEST_CASE("settling twice pays once, also across a restart") {
  money_world w;
  open_two_way(w.p(), two_way_market("m1", 200, 300));
  REQUIRE(deposit(w.p(), "u1", "d1", 10'000));
  REQUIRE(place(w.p(), "u1", "r1", "m1", "home", 1'000, 200));
  REQUIRE(settle(w.p(), "m1", {"home"}));
  auto again = settle(w.p(), "m1", {"home"});
  REQUIRE(again);
  CHECK(again->status == market_status::settled);
  wait_paid_and_audit(w);
  CHECK(available(w, "u1") == 11'000);
  w.restart();
  REQUIRE(settle(w.p(), "m1", {"home"}));
  // Another result for a settled market is refused, as is a void.
  CHECK(code(settle(w.p(), "m1", {"away"})) == errc::illegal_transition);
  CHECK(code(void_market(w.p(), "m1")) == errc::illegal_transition);
  wait_paid_and_audit(w);
  CHECK(available(w, "u1") == 11'000);
  auto audit = audit_journal(w.p().journal(), true);
  CHECK(audit.credited.size() == 1);
}

TEST_CASE("a settlement cut short by a restart pays every bet exactly once") {
  money_world w;
  open_two_way(w.p(), two_way_market("m1", 210, 190));
  constexpr int bettors = 60;
  for (int i = 0; i < bettors; ++i) {
    auto user = "u" + std::to_string(i);
    REQUIRE(deposit(w.p(), user, "d1", 10'000));
    REQUIRE(place(w.p(), user, "r1", "m1", i % 2 == 0 ? "home" : "away", 100 + i,
                  i % 2 == 0 ? 210 : 190));
  }
  REQUIRE(settle(w.p(), "m1", {"home"}));
  // Stopped at once: some payouts are delivered, others are still in the
  // outbox. The market resumes them when it is activated again.
  w.restart();
  REQUIRE(get_market(w.p(), "m1"));
  wait_paid_and_audit(w);
  for (int i = 0; i < bettors; ++i) {
    auto user = "u" + std::to_string(i);
    auto stake = 100 + i;
    CHECK(available(w, user) == 10'000 - stake + (i % 2 == 0 ? stake * 210 / 100 : 0));
  }
}

// The outbox is resumed when the market entity is activated, and nothing
// activates it after a restart: its winners wait until someone happens to
// ask that market something.
TEST_CASE("a settlement cut short by a restart is paid without anyone asking the market") {
  auto options = test_platform_options("");
  // One payout at a time, so the restart surely cuts the settlement short.
  options.market.outbox_window = 1;
  money_world w{options};
  open_two_way(w.p(), two_way_market("m1", 200, 200));
  constexpr int bettors = 100;
  std::atomic<int> ready{0};
  for (int i = 0; i < bettors; ++i) {
    auto user = "u" + std::to_string(i);
    w.p().deposit(user_id{user}, request_id{"d1"}, money{1'000},
                  [&w, &ready, user](caf::expected<wallet_receipt>) {
                    w.p().place_bet(user_id{user}, bet_cmd("r1", "m1", "home", 1'000, 200),
                                    [&ready](caf::expected<bet>) { ++ready; });
                  });
  }
  REQUIRE(wait_until([&] { return ready == bettors; }));
  REQUIRE(settle(w.p(), "m1", {"home"}));
  // The settlement's answer comes once its payouts are counted, and with a
  // window of one they cannot all have been acknowledged yet.
  CHECK(payouts_pending(w) > 0);
  w.restart();
  bool paid = wait_until(
    [&] {
      for (int i = 0; i < bettors; ++i)
        if (available(w, "u" + std::to_string(i)) != 2'000)
          return false;
      return true;
    },
    10s);
  CHECK_MESSAGE(paid, "winners unpaid 10 s after the restart");
  // The restarted node counted the payouts it resumed, and none is left.
  CHECK(wait_until([&] { return payouts_pending(w) == 0; }));
}

TEST_CASE("payouts reach wallets that were passivated") {
  auto options = test_platform_options("");
  // One partition holding one wallet: every activation passivates another.
  options.directory_partitions = 1;
  options.wallets_resident_max = 1;
  money_world w{options};
  open_two_way(w.p(), two_way_market("m1", 300, 150));
  constexpr int bettors = 12;
  for (int i = 0; i < bettors; ++i) {
    auto user = "p" + std::to_string(i);
    REQUIRE(deposit(w.p(), user, "d1", 5'000));
    REQUIRE(place(w.p(), user, "r1", "m1", i % 3 == 0 ? "away" : "home", 1'000,
                  i % 3 == 0 ? 150 : 300));
  }
  auto& passivated = w.p().metrics().passivations().Add({{"kind", "wallet"}});
  REQUIRE(wait_until([&] { return passivated.Value() >= bettors - 1; }));
  REQUIRE(settle(w.p(), "m1", {"home"}));
  wait_paid_and_audit(w);
  for (int i = 0; i < bettors; ++i) {
    auto user = "p" + std::to_string(i);
    CHECK(available(w, user) == (i % 3 == 0 ? 4'000 : 4'000 + 3'000));
  }
}

TEST_CASE("a market voided while bets wait out the in-play delay refunds the accepted and "
          "releases the waiting") {
  money_world w;
  open_two_way(w.p(), two_way_market("live", 250, 300, 100'000, 100'000'000, 600));
  REQUIRE(deposit(w.p(), "u1", "d1", 10'000));
  auto accepted = place(w.p(), "u1", "r1", "live", "home", 1'000, 250);
  REQUIRE(accepted);
  auto promise = std::make_shared<std::promise<caf::expected<bet>>>();
  auto waiting = promise->get_future();
  w.p().place_bet(user_id{"u1"}, bet_cmd("r2", "live", "home", 2'000, 250),
                  [promise](caf::expected<bet> r) { promise->set_value(std::move(r)); });
  REQUIRE(void_market(w.p(), "live"));
  CHECK(code(waiting.get()) == errc::market_not_open);
  wait_paid_and_audit(w);
  CHECK(available(w, "u1") == 10'000);
}

TEST_CASE("settling while bets are in flight pays exactly the accepted ones") {
  money_world w;
  open_two_way(w.p(), two_way_market("m1", 200, 200));
  constexpr int bettors = 40;
  for (int i = 0; i < bettors; ++i)
    REQUIRE(deposit(w.p(), "u" + std::to_string(i), "d1", 10'000));
  std::atomic<int> answered{0};
  for (int i = 0; i < bettors; ++i)
    for (int k = 0; k < 5; ++k)
      w.p().place_bet(user_id{"u" + std::to_string(i)},
                      bet_cmd("r" + std::to_string(k), "m1", k % 2 == 0 ? "home" : "away",
                              100, 200),
                      [&](caf::expected<bet>) { ++answered; });
  REQUIRE(settle(w.p(), "m1", {"home"}));
  REQUIRE(wait_until([&] { return answered == bettors * 5; }, 30s));
  wait_paid_and_audit(w);
}
