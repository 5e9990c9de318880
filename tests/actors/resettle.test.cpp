// Resettlement through the embedded platform: a result rolled back
// (unsettle, the feed's rollback_bet_settlement) reverses every payout it
// made, exactly, and a second result pays again; bets cancelled after the
// result give back what it paid and refund their stakes; a reversed payout
// may take a wallet below zero, which then takes no bet and no withdrawal
// until it is back at zero. Singles and slips, in memory or read back from
// the history read model; the product's money audit holds after every step.

#include "money_checks.hpp"

#include <doctest/doctest.h>

using namespace wager;
using namespace wager::test;

namespace {

caf::expected<market_view> unsettle(platform& p, const std::string& market) {
  return await<market_view>([&](auto done) { p.unsettle_market(market_id{market}, done); });
}

caf::expected<market_view> cancel_bets(platform& p, const std::string& market) {
  return await<market_view>([&](auto done) {
    p.cancel_bets(market_id{market}, 0, std::numeric_limits<int64_t>::max(), done);
  });
}

caf::expected<bet> place_slip(platform& p, const std::string& user, place_slip_cmd cmd) {
  return await<bet>([&](auto done) { p.place_slip(user_id{user}, cmd, done); });
}

place_slip_cmd double_cmd(const std::string& request, int64_t stake) {
  place_slip_cmd cmd;
  cmd.request = request_id{request};
  cmd.type = slip_type::accumulator;
  cmd.stake = money{stake};
  cmd.legs = {{market_id{"m1"}, selection_id{"home"}, price{200}},
              {market_id{"m2"}, selection_id{"home"}, price{300}}};
  return cmd;
}

int64_t kinds(money_world& w, const std::string& user, const std::string& kind) {
  auto t = transactions(w.p(), user);
  REQUIRE(t);
  int64_t n = 0;
  for (auto& x : *t)
    n += x.kind == kind ? 1 : 0;
  return n;
}

} // namespace

TEST_CASE("a rolled-back result takes its payouts back exactly, and a second result pays "
          "once") {
  money_world w;
  open_two_way(w.p(), two_way_market("m1", 250, 160));
  REQUIRE(deposit(w.p(), "u1", "d1", 100'00));
  REQUIRE(deposit(w.p(), "u2", "d1", 100'00));
  auto home = place(w.p(), "u1", "b1", "m1", "home", 10'00, 250);
  auto away = place(w.p(), "u2", "b1", "m1", "away", 20'00, 160);
  REQUIRE(home);
  REQUIRE(away);
  REQUIRE(set_status(w.p(), "m1", market_status::closed));
  REQUIRE(settle(w.p(), "m1", {"home"}));
  CHECK(bet_in(w, "u1", home->id.value, bet_status::won).payout.minor == 25'00);
  CHECK(bet_in(w, "u2", away->id.value, bet_status::lost).payout.minor == 0);
  audit_clean(w);
  CHECK(available(w, "u1") == 90'00 + 25'00);

  auto rolled = unsettle(w.p(), "m1");
  REQUIRE_MESSAGE(rolled, message_of(rolled.error()));
  CHECK(rolled->status == market_status::closed);
  // Both bets are open again; the winner's payout has left the wallet.
  bet_in(w, "u1", home->id.value, bet_status::open);
  bet_in(w, "u2", away->id.value, bet_status::open);
  audit_clean(w);
  CHECK(available(w, "u1") == 90'00);
  CHECK(available(w, "u2") == 80'00);
  CHECK(kinds(w, "u1", "reversal") == 1);
  // The liability is the market's again.
  CHECK(liability(w, "m1", "home") == 15'00);
  // Rolling back again changes nothing.
  auto again = unsettle(w.p(), "m1");
  REQUIRE(again);
  CHECK(again->version == rolled->version);

  // The true result: away won.
  REQUIRE(settle(w.p(), "m1", {"away"}));
  CHECK(bet_in(w, "u2", away->id.value, bet_status::won).payout.minor == 32'00);
  CHECK(bet_in(w, "u1", home->id.value, bet_status::lost).payout.minor == 0);
  audit_clean(w);
  CHECK(available(w, "u1") == 90'00);
  CHECK(available(w, "u2") == 80'00 + 32'00);
  // A restart replays all of it to the same balances.
  w.restart();
  CHECK(available(w, "u1") == 90'00);
  CHECK(available(w, "u2") == 80'00 + 32'00);
  CHECK(get_bet(w.p(), "u2", away->id.value)->status == bet_status::won);
  audit_clean(w);
}

TEST_CASE("a market never resulted cannot be rolled back") {
  money_world w;
  open_two_way(w.p(), two_way_market("m1", 200, 200));
  auto r = unsettle(w.p(), "m1");
  REQUIRE_FALSE(r);
  CHECK(code_of(r.error()) == errc::illegal_transition);
  auto none = unsettle(w.p(), "nope");
  REQUIRE_FALSE(none);
  CHECK(code_of(none.error()) == errc::not_found);
}

TEST_CASE("a reversed payout already withdrawn leaves the wallet below zero, and it takes no "
          "bet and no withdrawal until it is back") {
  money_world w;
  open_two_way(w.p(), two_way_market("m1", 300, 150));
  open_two_way(w.p(), two_way_market("m2", 200, 200));
  REQUIRE(deposit(w.p(), "u1", "d1", 10'00));
  auto b = place(w.p(), "u1", "b1", "m1", "home", 10'00, 300);
  REQUIRE(b);
  REQUIRE(settle(w.p(), "m1", {"home"}));
  bet_in(w, "u1", b->id.value, bet_status::won);
  REQUIRE(withdraw(w.p(), "u1", "w1", 30'00));
  CHECK(available(w, "u1") == 0);
  REQUIRE(unsettle(w.p(), "m1"));
  bet_in(w, "u1", b->id.value, bet_status::open);
  CHECK(available(w, "u1") == -30'00);
  auto refused = place(w.p(), "u1", "b2", "m2", "home", 1'00, 200);
  REQUIRE_FALSE(refused);
  CHECK(code_of(refused.error()) == errc::insufficient_funds);
  auto out = withdraw(w.p(), "u1", "w2", 1'00);
  REQUIRE_FALSE(out);
  CHECK(code_of(out.error()) == errc::insufficient_funds);
  // Deposits are always taken; back above zero, bets are too.
  REQUIRE(deposit(w.p(), "u1", "d2", 35'00));
  CHECK(available(w, "u1") == 5'00);
  REQUIRE(place(w.p(), "u1", "b3", "m2", "home", 5'00, 200));
  // The second result pays the bet again.
  REQUIRE(settle(w.p(), "m1", {"home"}));
  bet_in(w, "u1", b->id.value, bet_status::won);
  CHECK(available(w, "u1") == 30'00);
  REQUIRE(settle(w.p(), "m2", {"away"}));
  audit_clean(w);
}

TEST_CASE("bets cancelled after the result give back what it paid and get their stakes back") {
  money_world w;
  open_two_way(w.p(), two_way_market("m1", 200, 200));
  REQUIRE(deposit(w.p(), "u1", "d1", 100'00));
  REQUIRE(deposit(w.p(), "u2", "d1", 100'00));
  auto winner = place(w.p(), "u1", "b1", "m1", "home", 10'00, 200);
  auto loser = place(w.p(), "u2", "b1", "m1", "away", 10'00, 200);
  REQUIRE(winner);
  REQUIRE(loser);
  REQUIRE(settle(w.p(), "m1", {"home"}));
  bet_in(w, "u1", winner->id.value, bet_status::won);
  bet_in(w, "u2", loser->id.value, bet_status::lost);
  REQUIRE(cancel_bets(w.p(), "m1"));
  auto w1 = bet_in(w, "u1", winner->id.value, bet_status::void_);
  auto l1 = bet_in(w, "u2", loser->id.value, bet_status::void_);
  CHECK(w1.payout.minor == 10'00);
  CHECK(l1.payout.minor == 10'00);
  audit_clean(w);
  CHECK(available(w, "u1") == 100'00);
  CHECK(available(w, "u2") == 100'00);
  // Cancelling again changes nothing; a rollback leaves the void bets void.
  REQUIRE(cancel_bets(w.p(), "m1"));
  REQUIRE(unsettle(w.p(), "m1"));
  REQUIRE(settle(w.p(), "m1", {"away"}));
  audit_clean(w);
  CHECK(get_bet(w.p(), "u1", winner->id.value)->status == bet_status::void_);
  CHECK(available(w, "u1") == 100'00);
  CHECK(available(w, "u2") == 100'00);
}

TEST_CASE("a slip lost on one leg reopens when that leg's result is rolled back, and pays on "
          "the true result") {
  money_world w;
  open_two_way(w.p(), two_way_market("m1", 200, 200));
  open_two_way(w.p(), two_way_market("m2", 300, 150));
  REQUIRE(deposit(w.p(), "u1", "d1", 100'00));
  auto b = place_slip(w.p(), "u1", double_cmd("s1", 10'00));
  REQUIRE_MESSAGE(b, message_of(b.error()));
  // m1 goes against the slip, which is lost at once; m2's result is still
  // recorded on it.
  REQUIRE(settle(w.p(), "m1", {"away"}));
  bet_in(w, "u1", b->id.value, bet_status::lost);
  REQUIRE(settle(w.p(), "m2", {"home"}));
  CHECK(wait_until(
    [&] { return get_bet(w.p(), "u1", b->id.value)->legs[1].result == leg_result::won; }, 30s));
  audit_clean(w);
  // m1's result was wrong.
  REQUIRE(unsettle(w.p(), "m1"));
  auto reopened = bet_in(w, "u1", b->id.value, bet_status::open);
  CHECK(reopened.legs[0].result == leg_result::open);
  CHECK(reopened.legs[1].result == leg_result::won);
  audit_clean(w);
  REQUIRE(settle(w.p(), "m1", {"home"}));
  auto won = bet_in(w, "u1", b->id.value, bet_status::won);
  CHECK(won.payout.minor == 60'00);
  audit_clean(w);
  CHECK(available(w, "u1") == 90'00 + 60'00);
  // And back again: the win is taken back, the slip is lost.
  REQUIRE(unsettle(w.p(), "m2"));
  bet_in(w, "u1", b->id.value, bet_status::open);
  CHECK(available(w, "u1") == 90'00);
  REQUIRE(settle(w.p(), "m2", {"away"}));
  bet_in(w, "u1", b->id.value, bet_status::lost);
  audit_clean(w);
  CHECK(available(w, "u1") == 90'00);
  w.restart();
  CHECK(available(w, "u1") == 90'00);
  audit_clean(w);
}

TEST_CASE("a void market rolled back and resulted pays the result instead of the refunds") {
  money_world w;
  open_two_way(w.p(), two_way_market("m1", 200, 200));
  REQUIRE(deposit(w.p(), "u1", "d1", 100'00));
  auto b = place(w.p(), "u1", "b1", "m1", "home", 10'00, 200);
  REQUIRE(b);
  REQUIRE(void_market(w.p(), "m1"));
  bet_in(w, "u1", b->id.value, bet_status::void_);
  CHECK(available(w, "u1") == 100'00);
  auto rolled = unsettle(w.p(), "m1");
  REQUIRE(rolled);
  CHECK(rolled->status == market_status::closed);
  bet_in(w, "u1", b->id.value, bet_status::open);
  CHECK(available(w, "u1") == 90'00);
  REQUIRE(settle(w.p(), "m1", {"home"}));
  bet_in(w, "u1", b->id.value, bet_status::won);
  CHECK(available(w, "u1") == 110'00);
  audit_clean(w);
}

TEST_CASE("a bet that has left the wallet's memory is resettled as the history read model kept "
          "it, a single and a slip") {
  money_world w;
  open_two_way(w.p(), two_way_market("m1", 200, 200));
  open_two_way(w.p(), two_way_market("m2", 200, 200));
  open_two_way(w.p(), two_way_market("m3", 300, 150));
  REQUIRE(deposit(w.p(), "u1", "d1", 100'00));
  auto single = place(w.p(), "u1", "b0", "m1", "home", 10'00, 200);
  REQUIRE(single);
  place_slip_cmd cmd;
  cmd.request = request_id{"s0"};
  cmd.type = slip_type::accumulator;
  cmd.stake = money{5'00};
  cmd.legs = {{market_id{"m1"}, selection_id{"home"}, price{200}},
              {market_id{"m3"}, selection_id{"home"}, price{300}}};
  auto slip = place_slip(w.p(), "u1", cmd);
  REQUIRE_MESSAGE(slip, message_of(slip.error()));
  REQUIRE(settle(w.p(), "m3", {"home"}));
  REQUIRE(settle(w.p(), "m1", {"home"}));
  bet_in(w, "u1", single->id.value, bet_status::won);
  bet_in(w, "u1", slip->id.value, bet_status::won);
  // The wallet keeps its last wallet_settled_bets_max settled bets: this
  // many more push both out of its memory.
  for (size_t i = 0; i < wallet_settled_bets_max; ++i)
    REQUIRE(place(w.p(), "u1", "x" + std::to_string(i), "m2", "away", 1, 200));
  REQUIRE(settle(w.p(), "m2", {"home"}));
  audit_clean(w);
  const int64_t before = 100'00 - 10'00 - 5'00 + 20'00 + 30'00 - 10'00;
  CHECK(available(w, "u1") == before);

  // m1's result was wrong: both come back from the history, give back what
  // they were paid, and are open again.
  REQUIRE(unsettle(w.p(), "m1"));
  bet_in(w, "u1", single->id.value, bet_status::open);
  auto reopened = bet_in(w, "u1", slip->id.value, bet_status::open);
  CHECK(reopened.legs[0].result == leg_result::open);
  CHECK(reopened.legs[1].result == leg_result::won);
  audit_clean(w);
  CHECK(available(w, "u1") == before - 20'00 - 30'00);
  REQUIRE(settle(w.p(), "m1", {"away"}));
  bet_in(w, "u1", single->id.value, bet_status::lost);
  bet_in(w, "u1", slip->id.value, bet_status::lost);
  audit_clean(w);
  CHECK(available(w, "u1") == before - 20'00 - 30'00);
  w.restart();
  CHECK(available(w, "u1") == before - 20'00 - 30'00);
  audit_clean(w);
}
