// The market entity through its own message interface (market.hpp), as a
// wallet's saga uses it: asking again about a bet gets the same decision,
// before and after a restart, and a market that does not exist says so.

#include "money_fixture.hpp"

#include <doctest/doctest.h>

using namespace wager;
using namespace wager::test;

namespace {

// Asks the market, as a wallet's saga does, and waits for the decision.
caf::expected<bet_decision> ask(platform& p, const std::string& market, accept_bet_cmd cmd,
                                std::chrono::seconds deadline = std::chrono::seconds{30}) {
  caf::scoped_actor self{p.system()};
  caf::expected<bet_decision> out = make_error(errc::internal, "no answer");
  p.directory()
    .request(self, deadline, entity_id{"market", market}, std::move(cmd))
    .receive([&](bet_decision& d) { out = d; }, [&](caf::error& err) { out = err; });
  return out;
}

accept_bet_cmd bet_on_home(const std::string& id, int64_t stake, int32_t asked,
                           accept_policy accept = accept_policy::exact) {
  return accept_bet_cmd{bet_id{id}, user_id{"u1"}, selection_id{"home"}, money{stake},
                        price{asked}, accept};
}

} // namespace

TEST_CASE("asking the market again about a bet gets the same decision") {
  money_world w;
  open_two_way(w.p(), two_way_market("m1", 250, 300, 1'000));
  auto accepted = ask(w.p(), "m1", bet_on_home("b-1", 100, 250));
  REQUIRE(accepted);
  CHECK(accepted->accepted);
  auto refused = ask(w.p(), "m1", bet_on_home("b-2", 100, 260));
  REQUIRE(refused);
  CHECK_FALSE(refused->accepted);
  CHECK(refused->reason == errc::price_changed);
  CHECK(refused->current.hundredths == 250);
  REQUIRE(set_price(w.p(), "m1", "home", 260));
  auto accepted_again = ask(w.p(), "m1", bet_on_home("b-1", 100, 250));
  REQUIRE(accepted_again);
  CHECK(accepted_again->accepted);
  CHECK(accepted_again->at.hundredths == 250);
  auto refused_again = ask(w.p(), "m1", bet_on_home("b-2", 100, 260));
  REQUIRE(refused_again);
  CHECK_FALSE(refused_again->accepted);
  CHECK(refused_again->current.hundredths == 250);
  auto view = get_market(w.p(), "m1");
  REQUIRE(view);
  CHECK(view->liability["home"] == 150);
}

// Rejections are remembered in the market's memory only; after a restart
// the market judges the bet afresh. Here the fresh judgement would accept,
// so the market applies bet_accepted to its memory, the journal refuses the
// append (the bet id's decision is stored: request_id_reused), and the
// market must answer with the stored rejection and keep no trace of the
// phantom acceptance.
TEST_CASE("a bet the market refused before a restart is refused again after it, and counts "
          "for nothing") {
  money_world w;
  open_two_way(w.p(), two_way_market("m1", 250, 300, 1'000));
  auto refused = ask(w.p(), "m1", bet_on_home("b-2", 100, 260));
  REQUIRE(refused);
  REQUIRE_FALSE(refused->accepted);
  w.restart();
  REQUIRE(set_price(w.p(), "m1", "home", 260));
  auto again = ask(w.p(), "m1", bet_on_home("b-2", 100, 260));
  REQUIRE(again);
  CHECK_FALSE(again->accepted);
  CHECK(again->reason == errc::price_changed);
  CHECK(again->current.hundredths == 250);
  auto view = get_market(w.p(), "m1");
  REQUIRE(view);
  CHECK(view->liability["home"] == 0);
  // The market goes on deciding.
  auto next = ask(w.p(), "m1", bet_on_home("b-3", 100, 260));
  REQUIRE_MESSAGE(next, message_of(next.error()));
  CHECK(next->accepted);
  REQUIRE(set_price(w.p(), "m1", "home", 270));
  auto audit = audit_journal(w.p().journal(), false);
  CHECK(audit.markets["m1"].bets.count("b-2") == 0);
  CHECK(audit.markets["m1"].bets.count("b-3") == 1);
}

TEST_CASE("a bet the market accepted before a restart is accepted at the same price after it") {
  money_world w;
  open_two_way(w.p(), two_way_market("m1", 250, 300, 1'000));
  REQUIRE(ask(w.p(), "m1", bet_on_home("b-1", 100, 250)));
  w.restart();
  REQUIRE(set_price(w.p(), "m1", "home", 260));
  auto again = ask(w.p(), "m1", bet_on_home("b-1", 100, 250));
  REQUIRE(again);
  CHECK(again->accepted);
  CHECK(again->at.hundredths == 250);
  auto view = get_market(w.p(), "m1");
  REQUIRE(view);
  CHECK(view->liability["home"] == 150);
}

// accept_bet makes its response promise before it looks whether the market
// exists, so the not_found it returns afterwards never reaches the wallet:
// the saga times out, retries for ever and keeps the stake held.
TEST_CASE("a market that was never created answers not_found") {
  money_world w;
  auto answer = ask(w.p(), "nowhere", bet_on_home("b-1", 100, 250), std::chrono::seconds{5});
  CHECK(code(answer) == errc::not_found);
}
