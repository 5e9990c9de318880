// Entities and the journal disagreeing: another writer advanced a stream,
// the journal refused an append, the platform stopped while entities were
// still recovering. In each case what the platform serves afterwards is what
// the journal holds, and it goes on serving.

#include "money_fixture.hpp"

#include "wager/persistence/sqlite_journal.hpp"

#include <doctest/doctest.h>

#include <atomic>

using namespace wager;
using namespace wager::test;

namespace {

std::unique_ptr<journal> second_writer(money_world& w) {
  journal_options o;
  o.path = (w.dir() / "journal.db").string();
  auto j = open_sqlite_journal(std::move(o));
  REQUIRE_MESSAGE(j, message_of(j.error()));
  return std::move(*j);
}

caf::expected<append_ack> append_now(journal& j, append_request r) {
  auto done = std::make_shared<std::promise<caf::expected<append_ack>>>();
  auto answer = done->get_future();
  if (auto err = j.append(std::move(r), [done](caf::expected<append_ack> a) {
        done->set_value(std::move(a));
      }))
    return err;
  return answer.get();
}

} // namespace

// The journal fences a second copy of an entity (DESIGN.md): the wallet's
// append fails with sequence_conflict, it reloads from the journal, and the
// retry with the same request id succeeds on top of the other writer's event.
TEST_CASE("a wallet whose stream another writer advanced serves the journal's state after one "
          "refused command") {
  money_world w;
  REQUIRE(deposit(w.p(), "u1", "d1", 100));
  auto other = second_writer(w);
  auto ack = append_now(*other, {"wallet/u1", 1, {encode(deposited{request_id{"x1"}, money{50},
                                                                   body_hash({"deposit", "50"})})},
                                 request_record{"x1", "{}"}});
  REQUIRE_MESSAGE(ack, message_of(ack.error()));
  auto refused = deposit(w.p(), "u1", "d2", 10);
  CHECK(code(refused) == errc::sequence_conflict);
  // The retry, once the wallet has re-read its stream.
  caf::expected<wallet_receipt> retried = make_error(errc::internal);
  CHECK(wait_until([&] {
    retried = deposit(w.p(), "u1", "d2", 10);
    return static_cast<bool>(retried) || code(retried) == errc::request_id_reused;
  }));
  REQUIRE_MESSAGE(retried, message_of(retried.error()));
  CHECK(retried->available.minor == 160);
  CHECK(balance(w.p(), "u1").available.minor == 160);
  auto audit = audit_journal(w.p().journal(), true);
  CHECK_MESSAGE(audit.violations.empty(), audit.first_violation());
  CHECK(audit.wallets["u1"].available.minor == 160);
}

// A bet whose stake is held while its market delays the decision, when
// another request of the same wallet fails its append: the wallet reloads,
// the bet's caller hears "retry" (not the other request's error), and the
// retry gets the bet, staked once.
TEST_CASE("a bet in flight when another append of its wallet fails is answered unavailable, and "
          "its retry gets the bet") {
  money_world w;
  open_two_way(w.p(), two_way_market("live", 250, 300, 100'000, 100'000'000, 1'500));
  REQUIRE(deposit(w.p(), "u1", "d1", 10'000));
  auto other = second_writer(w);
  auto promise = std::make_shared<std::promise<caf::expected<bet>>>();
  auto first = promise->get_future();
  w.p().place_bet(user_id{"u1"}, bet_cmd("r1", "live", "home", 1'000, 250),
                  [promise](caf::expected<bet> r) { promise->set_value(std::move(r)); });
  // The hold is durable: the wallet's stream has its second event.
  REQUIRE(wait_until([&] {
    auto seq = other->last_seq("wallet/u1");
    return seq && *seq == 2;
  }));
  auto ack = append_now(*other, {"wallet/u1", 2, {encode(deposited{request_id{"x1"}, money{50},
                                                                   body_hash({"deposit", "50"})})},
                                 request_record{"x1", "{}"}});
  REQUIRE_MESSAGE(ack, message_of(ack.error()));
  CHECK(code(deposit(w.p(), "u1", "d2", 10)) == errc::sequence_conflict);
  REQUIRE(first.wait_for(std::chrono::seconds{10}) == std::future_status::ready);
  auto answer = first.get();
  REQUIRE_FALSE(answer);
  CHECK(code(answer) == errc::unavailable);
  caf::expected<bet> retried = make_error(errc::internal);
  CHECK(wait_until([&] {
    retried = place(w.p(), "u1", bet_cmd("r1", "live", "home", 1'000, 250));
    return code(retried) != errc::unavailable;
  }));
  REQUIRE_MESSAGE(retried, message_of(retried.error()));
  CHECK(retried->stake.minor == 1'000);
  CHECK(retried->status == bet_status::open);
  CHECK(balance(w.p(), "u1").available.minor == 10'000 + 50 - 1'000);
  auto audit = audit_journal(w.p().journal(), true);
  CHECK_MESSAGE(audit.violations.empty(), audit.first_violation());
}

// A request id longer than the journal's request_id_bytes_max makes the
// journal refuse the append (or the wallet refuse the id). The wallet may
// already have applied the deposit to its memory (pipelining); the money
// must not stay there.
TEST_CASE("a deposit the journal refuses moves no money, and the wallet goes on serving") {
  money_world w;
  REQUIRE(deposit(w.p(), "u1", "d1", 100));
  auto long_id = std::string(request_id_bytes_max + 10, 'r');
  CHECK_FALSE(deposit(w.p(), "u1", long_id, 1'000'000));
  CHECK(balance(w.p(), "u1").available.minor == 100);
  auto next = deposit(w.p(), "u1", "d2", 5);
  CHECK_MESSAGE(next, (next ? "" : message_of(next.error())));
  CHECK(balance(w.p(), "u1").available.minor == 105);
  w.restart();
  CHECK(balance(w.p(), "u1").available.minor == 105);
}

TEST_CASE("request ids the API would refuse are refused as invalid_field") {
  money_world w;
  open_two_way(w.p(), two_way_market("m1", 250, 300));
  REQUIRE(deposit(w.p(), "u1", "d1", 1'000));
  for (auto id : {std::string{}, std::string(65, 'a'), std::string{"a b"},
                  std::string{"r\xff"}, std::string{"quote\""}}) {
    CAPTURE(id);
    CHECK(code(deposit(w.p(), "u1", id, 10)) == errc::invalid_field);
    CHECK(code(withdraw(w.p(), "u1", id, 10)) == errc::invalid_field);
    CHECK(code(place(w.p(), "u1", id, "m1", "home", 10, 250)) == errc::invalid_field);
  }
  auto b = balance(w.p(), "u1");
  CHECK(b.available.minor == 1'000);
  CHECK(b.held.minor == 0);
}

// The journal only stores JSON, and Boost.JSON refuses invalid UTF-8, so
// such a name cannot be persisted. Regression: the append failed after the
// market had applied the definition to its memory, and the failed reload
// left it there (get_market answered a market the journal never had).
TEST_CASE("a market whose name is not valid UTF-8 is refused and does not appear") {
  money_world w;
  auto d = two_way_market("m1", 250, 300);
  d.name = "Caf\xe9";
  CHECK(code(create_market(w.p(), d)) == errc::invalid_field);
  CHECK(code(get_market(w.p(), "m1")) == errc::not_found);
  // A valid definition under the same id is then created normally.
  auto created = create_market(w.p(), two_way_market("m1", 250, 300));
  CHECK_MESSAGE(created, (created ? "" : message_of(created.error())));
  w.restart();
  CHECK(get_market(w.p(), "m1"));
}

// Recovery reads run on the journal's reader threads. Regression: the read
// held a shared_ptr to the journal; when it was the last one at shutdown, the
// journal was destroyed on that reader thread, which then joined itself
// (std::terminate, "Resource deadlock avoided").
TEST_CASE("a platform stopped while entities recover shuts down cleanly") {
  money_world w;
  constexpr int users = 100;
  std::atomic<int> answered{0};
  for (int i = 0; i < users; ++i)
    w.p().deposit(user_id{"u" + std::to_string(i)}, request_id{"d1"}, money{10},
                  [&](caf::expected<wallet_receipt>) { ++answered; });
  REQUIRE(wait_until([&] { return answered == users; }));
  for (int round = 0; round < 10; ++round) {
    w.restart();
    for (int i = 0; i < users; ++i)
      w.p().balance(user_id{"u" + std::to_string(i)}, [](caf::expected<wallet_balance>) {});
  }
  w.restart();
  auto audit = audit_journal(w.p().journal(), true);
  CHECK_MESSAGE(audit.violations.empty(), audit.first_violation());
  CHECK(audit.deposits.minor == users * 10);
  CHECK(balance(w.p(), "u7").available.minor == 10);
}

TEST_CASE("balances, bets and markets survive repeated restarts") {
  money_world w;
  open_two_way(w.p(), two_way_market("m1", 250, 300));
  int64_t expected = 0;
  for (int round = 0; round < 8; ++round) {
    auto r = std::to_string(round);
    REQUIRE(deposit(w.p(), "u1", "d" + r, 1'000));
    REQUIRE(place(w.p(), "u1", "b" + r, "m1", round % 2 == 0 ? "home" : "away", 100,
                  round % 2 == 0 ? 250 : 300));
    expected += 900;
    w.restart();
    auto b = balance(w.p(), "u1");
    CHECK(b.available.minor == expected);
    CHECK(b.held.minor == 0);
  }
  auto view = get_market(w.p(), "m1");
  REQUIRE(view);
  CHECK(view->liability["home"] == 4 * 150);
  CHECK(view->liability["away"] == 4 * 200);
  auto audit = audit_journal(w.p().journal(), true);
  CHECK_MESSAGE(audit.violations.empty(), audit.first_violation());
}
