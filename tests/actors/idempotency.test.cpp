// Idempotent replays through the embedded platform (shared/API.md): the same
// request id and body returns the first answer and moves no money, in the
// same process and after a restart on the same data dir; a refusal is
// refused again the same way even when the reason for it has gone.

#include "money_fixture.hpp"

#include <doctest/doctest.h>

#include <atomic>
#include <future>
#include <map>
#include <mutex>

using namespace wager;
using namespace wager::test;

namespace {

bool same_receipt(const wallet_receipt& a, const wallet_receipt& b) {
  return a.transaction_id == b.transaction_id && a.available == b.available
         && a.held == b.held;
}

void check_audit(money_world& w) {
  auto audit = audit_journal(w.p().journal(), true);
  CHECK_MESSAGE(audit.violations.empty(), audit.first_violation());
}

} // namespace

TEST_CASE("a repeated deposit or withdrawal returns the first answer and moves no money") {
  money_world w;
  auto d1 = deposit(w.p(), "u1", "d1", 1'000);
  REQUIRE(d1);
  CHECK(d1->available.minor == 1'000);
  auto again = deposit(w.p(), "u1", "d1", 1'000);
  REQUIRE(again);
  CHECK(same_receipt(*again, *d1));
  auto w1 = withdraw(w.p(), "u1", "w1", 300);
  REQUIRE(w1);
  REQUIRE(deposit(w.p(), "u1", "d2", 50));
  // The first answers, not the balance now.
  auto w1_again = withdraw(w.p(), "u1", "w1", 300);
  REQUIRE(w1_again);
  CHECK(same_receipt(*w1_again, *w1));
  CHECK(w1_again->available.minor == 700);
  auto d1_late = deposit(w.p(), "u1", "d1", 1'000);
  REQUIRE(d1_late);
  CHECK(same_receipt(*d1_late, *d1));
  CHECK(balance(w.p(), "u1").available.minor == 750);
  check_audit(w);
}

TEST_CASE("a repeated bet returns the first bet and stakes once") {
  money_world w;
  open_two_way(w.p(), two_way_market("m1", 250, 300));
  REQUIRE(deposit(w.p(), "u1", "d1", 10'000));
  auto first = place(w.p(), "u1", "r1", "m1", "home", 1'000, 250);
  REQUIRE(first);
  for (int i = 0; i < 3; ++i) {
    auto again = place(w.p(), "u1", "r1", "m1", "home", 1'000, 250);
    REQUIRE(again);
    CHECK(same_bet(*again, *first));
  }
  CHECK(balance(w.p(), "u1").available.minor == 9'000);
  auto view = get_market(w.p(), "m1");
  REQUIRE(view);
  CHECK(view->liability["home"] == 1'500);
  check_audit(w);
}

TEST_CASE("a bet refused for insufficient funds is refused again after funds arrive") {
  money_world w;
  open_two_way(w.p(), two_way_market("m1", 250, 300));
  REQUIRE(deposit(w.p(), "u1", "d1", 500));
  CHECK(code(place(w.p(), "u1", "r1", "m1", "home", 1'000, 250)) == errc::insufficient_funds);
  REQUIRE(deposit(w.p(), "u1", "d2", 5'000));
  CHECK(code(place(w.p(), "u1", "r1", "m1", "home", 1'000, 250)) == errc::insufficient_funds);
  CHECK(code(withdraw(w.p(), "u1", "w1", 100'000)) == errc::insufficient_funds);
  REQUIRE(deposit(w.p(), "u1", "d3", 100'000));
  CHECK(code(withdraw(w.p(), "u1", "w1", 100'000)) == errc::insufficient_funds);
  auto b = balance(w.p(), "u1");
  CHECK(b.available.minor == 105'500);
  CHECK(b.held.minor == 0);
  check_audit(w);
}

TEST_CASE("a bet refused by the market is refused again with the same price after the price "
          "comes back") {
  money_world w;
  open_two_way(w.p(), two_way_market("m1", 250, 300, 1'000));
  REQUIRE(deposit(w.p(), "u1", "d1", 10'000));
  REQUIRE(set_price(w.p(), "m1", "home", 270));
  auto first = place(w.p(), "u1", "r1", "m1", "home", 500, 250);
  REQUIRE(code(first) == errc::price_changed);
  CHECK(detail_of(first.error()) == "2.70");
  auto over = place(w.p(), "u1", "r2", "m1", "home", 2'000, 270);
  REQUIRE(code(over) == errc::limit_exceeded);
  REQUIRE(set_price(w.p(), "m1", "home", 250));
  auto again = place(w.p(), "u1", "r1", "m1", "home", 500, 250);
  REQUIRE(code(again) == errc::price_changed);
  CHECK(detail_of(again.error()) == "2.70");
  CHECK(code(place(w.p(), "u1", "r2", "m1", "home", 2'000, 270)) == errc::limit_exceeded);
  CHECK(balance(w.p(), "u1").available.minor == 10'000);
  check_audit(w);
}

TEST_CASE("a replay while the bet's saga runs gets the same bet, staked once") {
  money_world w;
  open_two_way(w.p(), two_way_market("live", 250, 300, 100'000, 100'000'000, 800));
  REQUIRE(deposit(w.p(), "u1", "d1", 10'000));
  std::vector<std::future<caf::expected<bet>>> answers;
  for (int i = 0; i < 4; ++i) {
    auto promise = std::make_shared<std::promise<caf::expected<bet>>>();
    answers.push_back(promise->get_future());
    w.p().place_bet(user_id{"u1"}, bet_cmd("r1", "live", "home", 1'000, 250),
                    [promise](caf::expected<bet> r) { promise->set_value(std::move(r)); });
  }
  // Another body under the same id, while the first is undecided.
  CHECK(code(place(w.p(), "u1", "r1", "live", "home", 999, 250)) == errc::request_id_reused);
  auto first = answers[0].get();
  REQUIRE(first);
  for (size_t i = 1; i < answers.size(); ++i) {
    auto other = answers[i].get();
    REQUIRE(other);
    CHECK(same_bet(*other, *first));
  }
  CHECK(balance(w.p(), "u1").available.minor == 9'000);
  check_audit(w);
}

TEST_CASE("replays after a platform restart return the first answers and move no money") {
  money_world w;
  open_two_way(w.p(), two_way_market("m1", 250, 300));
  auto d1 = deposit(w.p(), "u1", "d1", 10'000);
  REQUIRE(d1);
  auto w1 = withdraw(w.p(), "u1", "w1", 1'000);
  REQUIRE(w1);
  auto accepted = place(w.p(), "u1", "r1", "m1", "home", 1'000, 250);
  REQUIRE(accepted);
  REQUIRE(set_price(w.p(), "m1", "away", 320));
  auto refused = place(w.p(), "u1", "r2", "m1", "away", 1'000, 300);
  REQUIRE(code(refused) == errc::price_changed);
  REQUIRE(set_price(w.p(), "m1", "away", 300));

  w.restart();

  auto d1_again = deposit(w.p(), "u1", "d1", 10'000);
  REQUIRE(d1_again);
  CHECK(same_receipt(*d1_again, *d1));
  auto w1_again = withdraw(w.p(), "u1", "w1", 1'000);
  REQUIRE(w1_again);
  CHECK(same_receipt(*w1_again, *w1));
  auto refused_again = place(w.p(), "u1", "r2", "m1", "away", 1'000, 300);
  REQUIRE(code(refused_again) == errc::price_changed);
  CHECK(detail_of(refused_again.error()) == "3.20");
  CHECK(code(deposit(w.p(), "u1", "d1", 10'001)) == errc::request_id_reused);
  auto b = balance(w.p(), "u1");
  CHECK(b.available.minor == 8'000);
  CHECK(b.held.minor == 0);
  check_audit(w);
}

// The wallet stamps an event with its own clock when it applies it (at
// once, pipelined); the journal stores the writer's clock at commit, a few
// milliseconds later under load, and recovery folds that. So the same bet
// or transaction reads differently before and after a restart. Many
// pipelined requests make the two clocks part for some of them.
constexpr int pipelined = 60;

TEST_CASE("bets replayed after a restart are their first answers, placed_at included") {
  money_world w;
  open_two_way(w.p(), two_way_market("m1", 250, 300));
  REQUIRE(deposit(w.p(), "u1", "d1", 100'000));
  std::mutex mutex;
  std::map<std::string, bet> first;
  std::atomic<int> answered{0};
  for (int i = 0; i < pipelined; ++i) {
    auto request = "r" + std::to_string(i);
    w.p().place_bet(user_id{"u1"}, bet_cmd(request, "m1", "home", 100, 250),
                    [&, request](caf::expected<bet> b) {
                      if (b) {
                        std::lock_guard lock{mutex};
                        first.emplace(request, *b);
                      }
                      ++answered;
                    });
  }
  REQUIRE(wait_until([&] { return answered == pipelined; }));
  REQUIRE(first.size() == static_cast<size_t>(pipelined));
  w.restart();
  int differ = 0;
  for (auto& [request, b] : first) {
    auto again = place(w.p(), "u1", request, "m1", "home", 100, 250);
    REQUIRE(again);
    CHECK(again->id == b.id);
    differ += again->placed_at_ms != b.placed_at_ms ? 1 : 0;
  }
  CHECK_MESSAGE(differ == 0, differ << " of " << pipelined << " bets changed placed_at");
}

TEST_CASE("the wallet's transaction history reads the same after a restart") {
  money_world w;
  constexpr int deposits = 4 * pipelined;
  std::atomic<int> answered{0};
  for (int i = 0; i < deposits; ++i)
    w.p().deposit(user_id{"u1"}, request_id{"d" + std::to_string(i)}, money{100},
                  [&](caf::expected<wallet_receipt>) { ++answered; });
  REQUIRE(wait_until([&] { return answered == deposits; }));
  auto before = transactions(w.p(), "u1");
  REQUIRE(before);
  w.restart();
  auto after = transactions(w.p(), "u1");
  REQUIRE(after);
  REQUIRE(before->size() == after->size());
  int differ = 0;
  for (size_t i = 0; i < before->size(); ++i) {
    auto& a = (*before)[i];
    auto& b = (*after)[i];
    CAPTURE(a.transaction_id);
    CHECK(a.transaction_id == b.transaction_id);
    CHECK(a.kind == b.kind);
    CHECK(a.amount == b.amount);
    CHECK(a.available_after == b.available_after);
    CHECK(a.ref == b.ref);
    differ += a.at_ms != b.at_ms ? 1 : 0;
  }
  CHECK_MESSAGE(differ == 0, differ << " of " << before->size() << " transactions changed at");
}

// A refusal that moved nothing (insufficient funds, self-exclusion, the
// daily limit) is kept in the wallet's memory and as a stored request in the
// journal. Regression: after a restart the wallet decided the replay afresh,
// the journal refused the append because the request id was stored, and the
// retry got request_id_reused (or, funds having arrived, a phantom hold)
// instead of its first answer.
TEST_CASE("a bet refused for insufficient funds is refused the same way after a restart and "
          "a deposit") {
  money_world w;
  open_two_way(w.p(), two_way_market("m1", 250, 300));
  REQUIRE(deposit(w.p(), "u1", "d1", 500));
  REQUIRE(code(place(w.p(), "u1", "r1", "m1", "home", 1'000, 250))
          == errc::insufficient_funds);
  w.restart();
  REQUIRE(deposit(w.p(), "u1", "d2", 5'000));
  CHECK(code(place(w.p(), "u1", "r1", "m1", "home", 1'000, 250)) == errc::insufficient_funds);
  auto b = balance(w.p(), "u1");
  CHECK(b.available.minor == 5'500);
  CHECK(b.held.minor == 0);
  check_audit(w);
}

TEST_CASE("a withdrawal refused for insufficient funds is refused the same way after a "
          "restart") {
  money_world w;
  REQUIRE(deposit(w.p(), "u1", "d1", 500));
  REQUIRE(code(withdraw(w.p(), "u1", "w1", 1'000)) == errc::insufficient_funds);
  w.restart();
  CHECK(code(withdraw(w.p(), "u1", "w1", 1'000)) == errc::insufficient_funds);
  CHECK(balance(w.p(), "u1").available.minor == 500);
}

// Regression: after the refused append above the wallet reloaded; the
// journal had fenced the failed append's chain (zero events: it ends where it
// began), so the next append from the reloaded wallet, expecting that same
// seq and not marked from_read, was refused too.
TEST_CASE("after a replayed refusal following a restart, the wallet's next command succeeds") {
  money_world w;
  REQUIRE(deposit(w.p(), "u1", "d1", 500));
  REQUIRE(code(withdraw(w.p(), "u1", "w1", 1'000)) == errc::insufficient_funds);
  w.restart();
  (void) withdraw(w.p(), "u1", "w1", 1'000);
  auto next = deposit(w.p(), "u1", "d2", 100);
  CHECK_MESSAGE(next, (next ? "" : message_of(next.error())));
  CHECK(balance(w.p(), "u1").available.minor == 600);
}

TEST_CASE("a deposit replayed after more than a thousand later requests returns its first "
          "answer") {
  money_world w;
  auto first = deposit(w.p(), "u1", "first", 7);
  REQUIRE(first);
  // Pipelined: the wallet decides each on arrival and the journal commits
  // them in groups.
  constexpr int later = static_cast<int>(wallet_requests_max) + 100;
  std::atomic<int> answered{0};
  std::atomic<int> failed{0};
  for (int i = 0; i < later; ++i)
    w.p().deposit(user_id{"u1"}, request_id{"d" + std::to_string(i)}, money{1},
                  [&](caf::expected<wallet_receipt> r) {
                    failed += r ? 0 : 1;
                    ++answered;
                  });
  REQUIRE(wait_until([&] { return answered == later; }, 60s));
  REQUIRE(failed == 0);
  auto again = deposit(w.p(), "u1", "first", 7);
  REQUIRE_MESSAGE(again, message_of(again.error()));
  CHECK(same_receipt(*again, *first));
  CHECK(balance(w.p(), "u1").available.minor == 7 + later);
}

// The API: "Repeating a request with the same request_id and body returns
// the first response (same status, same body)". Regression: the wallet
// answered a replay with the bet as it was now ("won" after settlement).
TEST_CASE("a bet replayed after settlement returns its first answer") {
  money_world w;
  open_two_way(w.p(), two_way_market("m1", 250, 300));
  REQUIRE(deposit(w.p(), "u1", "d1", 10'000));
  auto first = place(w.p(), "u1", "r1", "m1", "home", 1'000, 250);
  REQUIRE(first);
  REQUIRE(settle(w.p(), "m1", {"home"}));
  REQUIRE(wait_until([&] { return balance(w.p(), "u1").available.minor == 11'500; }));
  auto again = place(w.p(), "u1", "r1", "m1", "home", 1'000, 250);
  REQUIRE(again);
  CHECK(again->id == first->id);
  CHECK(again->status == bet_status::open);
  CHECK(same_bet(*again, *first));
}

// The wallet stores its own records beside the clients' request ids in one
// namespace per stream ("payout:<bet id>" for a credited payout, a bet's
// final answer under a key derived from its request id). ':' is a valid id
// character, so a client could take such a key first; the wallet's own
// append would then be refused (request_id_reused) again and again.
TEST_CASE("a client request id shaped like the wallet's payout record does not block the "
          "payout") {
  money_world w;
  open_two_way(w.p(), two_way_market("m1", 300, 150));
  REQUIRE(deposit(w.p(), "u1", "d1", 1'000));
  auto b = place(w.p(), "u1", "r1", "m1", "home", 1'000, 300);
  REQUIRE(b);
  (void) deposit(w.p(), "u1", "payout:" + b->id.value, 1);
  auto funded = balance(w.p(), "u1").available.minor;
  REQUIRE(settle(w.p(), "m1", {"home"}));
  CHECK(wait_until([&] { return balance(w.p(), "u1").available.minor == funded + 3'000; }));
}

TEST_CASE("a client request id shaped like the wallet's answer record does not block a bet") {
  money_world w;
  open_two_way(w.p(), two_way_market("m1", 300, 150));
  REQUIRE(deposit(w.p(), "u1", "d1", 1'000));
  (void) deposit(w.p(), "u1", "answer:r1", 1);
  auto b = place(w.p(), "u1", "r1", "m1", "home", 500, 300);
  CHECK_MESSAGE(b, (b ? "" : message_of(b.error())));
  auto now = balance(w.p(), "u1");
  CHECK(now.held.minor == 0);
}
