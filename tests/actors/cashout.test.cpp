// Cash-out through the embedded platform: a quote from the live prices less
// the node's margin, the payment re-checked against the market at that
// moment (a single's market decides and pays it through its outbox, a
// slip's wallet after its legs' in-play delay), full and partial, and
// idempotent by request id; the product's money audit holds throughout.

#include "money_checks.hpp"

#include "wager/actors/ledger_audit.hpp"

#include <doctest/doctest.h>

#include <future>

using namespace wager;
using namespace wager::test;

namespace {

caf::expected<cashout_quote> quote(platform& p, const std::string& user, const bet& b) {
  return await<cashout_quote>([&](auto done) { p.cashout_quote(user_id{user}, b.id, done); });
}

caf::expected<bet> cash_out(platform& p, const std::string& user, const bet& b,
                            const std::string& request, const std::string& quote_id,
                            int32_t fraction_bp = 10'000) {
  return await<bet>([&](auto done) {
    p.cash_out(user_id{user}, cashout_cmd{request_id{request}, b.id, quote_id, fraction_bp}, done);
  });
}

} // namespace

TEST_CASE("a single cashed out in full at an unchanged price pays its stake less the margin") {
  money_world w;
  open_two_way(w.p(), two_way_market("m1", 200, 200));
  REQUIRE(deposit(w.p(), "u1", "d1", 100'00));
  auto b = place(w.p(), "u1", "b1", "m1", "home", 10'00, 200);
  REQUIRE(b);
  CHECK(liability(w, "m1") == 10'00);
  auto q = quote(w.p(), "u1", *b);
  REQUIRE_MESSAGE(q, message_of(q.error()));
  // 10.00 x 2.00 / 2.00 x (1 - 0.05).
  CHECK(q->amount.minor == 9'50);
  CHECK(q->expires_at_ms > wall_ms());
  auto paid = cash_out(w.p(), "u1", *b, "c1", q->quote_id);
  REQUIRE_MESSAGE(paid, message_of(paid.error()));
  CHECK(paid->status == bet_status::cashed_out);
  CHECK(paid->payout.minor == 9'50);
  CHECK(paid->cashed_out.minor == 9'50);
  CHECK(paid->stake.minor == 0);
  CHECK(available(w, "u1") == 90'00 + 9'50);
  CHECK(liability(w, "m1") == 0);
  // The same request again: the same answer, nothing paid twice.
  auto again = cash_out(w.p(), "u1", *b, "c1", q->quote_id);
  REQUIRE(again);
  CHECK(again->status == bet_status::cashed_out);
  CHECK(available(w, "u1") == 90'00 + 9'50);
  // Nothing is left to cash out, and the result pays nothing more.
  auto none = quote(w.p(), "u1", *b);
  REQUIRE_FALSE(none);
  CHECK(code_of(none.error()) == errc::cashout_unavailable);
  REQUIRE(set_status(w.p(), "m1", market_status::closed));
  REQUIRE(settle(w.p(), "m1", {"home"}));
  audit_clean(w);
  CHECK(available(w, "u1") == 90'00 + 9'50);
  auto after = get_bet(w.p(), "u1", b->id.value);
  REQUIRE(after);
  CHECK(after->status == bet_status::cashed_out);
}

TEST_CASE("a moved price refuses the quote, and a fresh quote reads the new price") {
  money_world w;
  open_two_way(w.p(), two_way_market("m1", 200, 200));
  REQUIRE(deposit(w.p(), "u1", "d1", 100'00));
  auto b = place(w.p(), "u1", "b1", "m1", "home", 10'00, 200);
  REQUIRE(b);
  auto q = quote(w.p(), "u1", *b);
  REQUIRE(q);
  REQUIRE(set_price(w.p(), "m1", "home", 400));
  auto refused = cash_out(w.p(), "u1", *b, "c1", q->quote_id);
  REQUIRE_FALSE(refused);
  CHECK(code_of(refused.error()) == errc::price_changed);
  CHECK(detail_of(refused.error()) == "4.00");
  CHECK(available(w, "u1") == 90'00);
  // The selection drifted to 4.00: 10.00 x 2.00 / 4.00 x 0.95.
  auto fresh = quote(w.p(), "u1", *b);
  REQUIRE(fresh);
  CHECK(fresh->amount.minor == 4'75);
  auto paid = cash_out(w.p(), "u1", *b, "c2", fresh->quote_id);
  REQUIRE_MESSAGE(paid, message_of(paid.error()));
  CHECK(paid->payout.minor == 4'75);
  CHECK(available(w, "u1") == 90'00 + 4'75);
  audit_clean(w);
}

TEST_CASE("a partial cash-out keeps the rest of the bet running, and its result pays the rest") {
  money_world w;
  open_two_way(w.p(), two_way_market("m1", 200, 200));
  REQUIRE(deposit(w.p(), "u1", "d1", 100'00));
  auto b = place(w.p(), "u1", "b1", "m1", "home", 10'00, 200);
  REQUIRE(b);
  auto q = quote(w.p(), "u1", *b);
  REQUIRE(q);
  auto half = cash_out(w.p(), "u1", *b, "c1", q->quote_id, 5'000);
  REQUIRE_MESSAGE(half, message_of(half.error()));
  CHECK(half->status == bet_status::open);
  CHECK(half->stake.minor == 5'00);
  CHECK(half->cashed_out.minor == 4'75);
  CHECK(available(w, "u1") == 90'00 + 4'75);
  CHECK(liability(w, "m1") == 5'00);
  REQUIRE(set_status(w.p(), "m1", market_status::closed));
  REQUIRE(settle(w.p(), "m1", {"home"}));
  auto done = settled_bet(w, "u1", b->id.value);
  CHECK(done.status == bet_status::won);
  CHECK(done.payout.minor == 10'00);
  CHECK(done.cashed_out.minor == 4'75);
  CHECK(available(w, "u1") == 90'00 + 4'75 + 10'00);
  audit_clean(w);
}

TEST_CASE("no cash-out while the market is suspended, and a bad fraction or stale quote is "
          "refused with nothing paid") {
  auto options = test_platform_options("");
  options.wallet.quote_life = std::chrono::milliseconds{1500};
  money_world w{options};
  open_two_way(w.p(), two_way_market("m1", 200, 200));
  REQUIRE(deposit(w.p(), "u1", "d1", 100'00));
  auto b = place(w.p(), "u1", "b1", "m1", "home", 10'00, 200);
  REQUIRE(b);
  auto q = quote(w.p(), "u1", *b);
  REQUIRE(q);
  for (auto bp : {0, 10'001, -5}) {
    auto bad = cash_out(w.p(), "u1", *b, "c-bad-" + std::to_string(bp), q->quote_id, bp);
    REQUIRE_FALSE(bad);
    CHECK(code_of(bad.error()) == errc::invalid_field);
    CHECK(detail_of(bad.error()) == "fraction");
  }
  auto unknown = cash_out(w.p(), "u1", *b, "c-unknown", "q-nonsense");
  REQUIRE_FALSE(unknown);
  CHECK(code_of(unknown.error()) == errc::price_changed);
  REQUIRE(set_status(w.p(), "m1", market_status::suspended));
  auto none = quote(w.p(), "u1", *b);
  REQUIRE_FALSE(none);
  CHECK(code_of(none.error()) == errc::cashout_unavailable);
  auto refused = cash_out(w.p(), "u1", *b, "c1", q->quote_id);
  REQUIRE_FALSE(refused);
  CHECK(code_of(refused.error()) == errc::cashout_unavailable);
  REQUIRE(set_status(w.p(), "m1", market_status::open));
  // Once the quote has lived its 1.5 s, asking with it is refused.
  REQUIRE(wait_until([&] { return wall_ms() > q->expires_at_ms; }, 5s));
  auto stale = cash_out(w.p(), "u1", *b, "c2", q->quote_id);
  REQUIRE_FALSE(stale);
  CHECK(code_of(stale.error()) == errc::price_changed);
  CHECK(available(w, "u1") == 90'00);
  CHECK(liability(w, "m1") == 10'00);
  // A reused request id with another body is refused too.
  auto fresh = quote(w.p(), "u1", *b);
  REQUIRE(fresh);
  auto paid = cash_out(w.p(), "u1", *b, "c3", fresh->quote_id);
  REQUIRE(paid);
  auto reused = cash_out(w.p(), "u1", *b, "c3", fresh->quote_id, 5'000);
  REQUIRE_FALSE(reused);
  CHECK(code_of(reused.error()) == errc::request_id_reused);
  audit_clean(w);
}

TEST_CASE("an in-play market decides a cash-out at the end of its delay, against the price then") {
  money_world w;
  open_two_way(w.p(), two_way_market("m1", 200, 200, 1'000'000, 100'000'000, 400));
  REQUIRE(deposit(w.p(), "u1", "d1", 100'00));
  auto b = place(w.p(), "u1", "b1", "m1", "home", 10'00, 200);
  REQUIRE(b);
  auto q = quote(w.p(), "u1", *b);
  REQUIRE(q);
  // In play, a quote lives ten seconds.
  CHECK(q->expires_at_ms - wall_ms() > 5'000);
  // The answer cannot come before the market's 400 ms delay has passed.
  auto asked = std::chrono::steady_clock::now();
  auto half = cash_out(w.p(), "u1", *b, "c1", q->quote_id, 5'000);
  auto waited = std::chrono::steady_clock::now() - asked;
  REQUIRE_MESSAGE(half, message_of(half.error()));
  CHECK(waited >= std::chrono::milliseconds{400});
  CHECK(half->cashed_out.minor == 4'75);
  // A price that moves while the next one waits out the delay refuses it.
  auto next = quote(w.p(), "u1", *b);
  REQUIRE(next);
  std::promise<caf::expected<bet>> answer;
  w.p().cash_out(user_id{"u1"}, cashout_cmd{request_id{"c2"}, b->id, next->quote_id, 10'000},
                 [&](caf::expected<bet> r) { answer.set_value(std::move(r)); });
  REQUIRE(set_price(w.p(), "m1", "home", 250));
  auto r = answer.get_future().get();
  REQUIRE_FALSE(r);
  CHECK(code_of(r.error()) == errc::price_changed);
  CHECK(available(w, "u1") == 90'00 + 4'75);
  audit_clean(w);
}

TEST_CASE("a double with one leg won cashes out at the won leg's price and the other's now") {
  money_world w;
  open_two_way(w.p(), two_way_market("m1", 200, 200));
  open_two_way(w.p(), two_way_market("m2", 300, 150));
  REQUIRE(deposit(w.p(), "u1", "d1", 100'00));
  place_slip_cmd cmd{request_id{"s1"}, slip_type::accumulator,
                     {{market_id{"m1"}, selection_id{"home"}, price{200}},
                      {market_id{"m2"}, selection_id{"home"}, price{300}}},
                     money{10'00}};
  auto b = await<bet>([&](auto done) { w.p().place_slip(user_id{"u1"}, cmd, done); });
  REQUIRE_MESSAGE(b, message_of(b.error()));
  REQUIRE(set_status(w.p(), "m1", market_status::closed));
  REQUIRE(settle(w.p(), "m1", {"home"}));
  REQUIRE(wait_until(
    [&] {
      auto now = get_bet(w.p(), "u1", b->id.value);
      return now && now->legs[0].result == leg_result::won;
    },
    30s));
  auto open = get_bet(w.p(), "u1", b->id.value);
  REQUIRE(open);
  auto q = quote(w.p(), "u1", *open);
  REQUIRE_MESSAGE(q, message_of(q.error()));
  // 10.00 x 2.00 (won) x 3.00 / 3.00 x 0.95.
  CHECK(q->amount.minor == 19'00);
  REQUIRE(set_price(w.p(), "m2", "home", 200));
  auto moved = cash_out(w.p(), "u1", *open, "c1", q->quote_id);
  REQUIRE_FALSE(moved);
  CHECK(code_of(moved.error()) == errc::price_changed);
  // Shortened to 2.00: 10.00 x 2.00 x 3.00 / 2.00 x 0.95.
  auto fresh = quote(w.p(), "u1", *open);
  REQUIRE(fresh);
  CHECK(fresh->amount.minor == 28'50);
  auto paid = cash_out(w.p(), "u1", *open, "c2", fresh->quote_id);
  REQUIRE_MESSAGE(paid, message_of(paid.error()));
  CHECK(paid->status == bet_status::cashed_out);
  CHECK(paid->payout.minor == 28'50);
  CHECK(available(w, "u1") == 90'00 + 28'50);
  REQUIRE(set_status(w.p(), "m2", market_status::closed));
  REQUIRE(settle(w.p(), "m2", {"home"}));
  audit_clean(w);
  CHECK(available(w, "u1") == 90'00 + 28'50);
  // The cash-out survives a restart.
  w.restart();
  auto after = get_bet(w.p(), "u1", b->id.value);
  REQUIRE(after);
  CHECK(after->status == bet_status::cashed_out);
  CHECK(after->payout.minor == 28'50);
  CHECK(available(w, "u1") == 90'00 + 28'50);
}

TEST_CASE("the history read model gives back a slip's legs and a bet's cash-outs as the wallet "
          "shows them") {
  money_world w;
  open_two_way(w.p(), two_way_market("m1", 200, 200));
  open_two_way(w.p(), two_way_market("m2", 300, 150));
  REQUIRE(deposit(w.p(), "u1", "d1", 100'00));
  place_slip_cmd cmd{request_id{"s1"}, slip_type::trixie,
                     {{market_id{"m1"}, selection_id{"home"}, price{200}},
                      {market_id{"m2"}, selection_id{"away"}, price{150}},
                      {market_id{"m3"}, selection_id{"home"}, price{400}}},
                     money{1'00}};
  open_two_way(w.p(), two_way_market("m3", 400, 130));
  auto slip = await<bet>([&](auto done) { w.p().place_slip(user_id{"u1"}, cmd, done); });
  REQUIRE_MESSAGE(slip, message_of(slip.error()));
  auto single = place(w.p(), "u1", "b1", "m1", "away", 10'00, 200);
  REQUIRE(single);
  auto q = quote(w.p(), "u1", *single);
  REQUIRE(q);
  REQUIRE(cash_out(w.p(), "u1", *single, "c1", q->quote_id, 2'500));
  for (auto [m, winner] : {std::pair{"m1", "home"}, {"m2", "away"}, {"m3", "away"}}) {
    REQUIRE(set_status(w.p(), m, market_status::closed));
    REQUIRE(settle(w.p(), m, {winner}));
  }
  // Every payout durable (a wallet shows a settlement before its events
  // reach the journal, and the history folds only the journal).
  audit_clean(w);
  auto wallet_slip = settled_bet(w, "u1", slip->id.value);
  auto wallet_single = settled_bet(w, "u1", single->id.value);
  auto* history = w.p().history();
  REQUIRE(history != nullptr);
  for (auto& expected : {wallet_slip, wallet_single}) {
    CAPTURE(expected.id.value);
    std::promise<caf::expected<bet>> read;
    history->bet(user_id{"u1"}, expected.id,
                 [&](caf::expected<bet> r) { read.set_value(std::move(r)); });
    auto got = read.get_future().get();
    REQUIRE_MESSAGE(got, message_of(got.error()));
    CHECK(got->status == expected.status);
    CHECK(got->payout == expected.payout);
    CHECK(got->stake == expected.stake);
    CHECK(got->type == expected.type);
    CHECK(got->legs == expected.legs);
    CHECK(got->cashed_out == expected.cashed_out);
    CHECK(got->cashed_out_stake == expected.cashed_out_stake);
  }
  // The trixie: 2.00 x 1.50 won, 4.00 lost: one double of the three pays 3.00.
  CHECK(wallet_slip.payout.minor == 3'00);
  CHECK(wallet_slip.legs[2].result == leg_result::lost);
  CHECK(wallet_single.status == bet_status::lost);
  CHECK(wallet_single.cashed_out.minor > 0);
}
