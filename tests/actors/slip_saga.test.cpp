// Bet slips through the embedded platform: a slip's stake held once across
// several markets, kept only when every leg's market accepts (a refusal
// releases the hold and the other markets' legs), settled by its wallet
// when its legs' results decide it, exactly to the minor unit, and audited
// by the product's money audit (wagerctl verify's) across both sides.

#include "money_fixture.hpp"

#include "wager/actors/ledger_audit.hpp"

#include <doctest/doctest.h>

using namespace wager;
using namespace wager::test;

namespace {

place_slip_cmd slip_cmd(const std::string& request, slip_type type,
                        std::vector<std::pair<std::string, int32_t>> legs, int64_t stake,
                        bool each_way = false) {
  place_slip_cmd cmd;
  cmd.request = request_id{request};
  cmd.type = type;
  cmd.stake = money{stake};
  cmd.each_way = each_way;
  for (auto& [market, p] : legs)
    cmd.legs.push_back({market_id{market}, selection_id{"home"}, price{p}});
  return cmd;
}

caf::expected<bet> place_slip(platform& p, const std::string& user, place_slip_cmd cmd) {
  return await<bet>([&](auto done) { p.place_slip(user_id{user}, cmd, done); });
}

caf::expected<market_view> settle_result(platform& p, const std::string& market,
                                         market_resulted r) {
  return await<market_view>(
    [&](auto done) { p.settle_market_result(market_id{market}, std::move(r), done); });
}

caf::expected<market_view> withdraw(platform& p, const std::string& market,
                                    const std::string& selection) {
  return await<market_view>([&](auto done) {
    p.withdraw_selection(market_id{market}, selection_id{selection}, done);
  });
}

int64_t available(money_world& w, const std::string& user) {
  return balance(w.p(), user).available.minor;
}

// Waits until the user's bet is settled; its final state.
bet settled_bet(money_world& w, const std::string& user, const std::string& id) {
  caf::expected<bet> b = make_error(errc::not_found);
  bool done = wait_until(
    [&] {
      b = get_bet(w.p(), user, id);
      return b && b->status != bet_status::open;
    },
    30s);
  REQUIRE_MESSAGE(done, "bet " << id << " is still open");
  return *b;
}

// The product's money audit over the journal, once every market's outbox
// is empty and no stake is held; it must find nothing wrong.
void audit_clean(money_world& w) {
  bool quiet = wait_until(
    [&] {
      auto a = audit_journal(w.p().journal(), false);
      return a.outboxes_empty() && a.holds() == 0;
    },
    30s);
  CHECK_MESSAGE(quiet, "payouts or holds still open after 30 s");
  auto report = audit_ledger(w.p().journal());
  REQUIRE(report);
  CHECK_MESSAGE(report->ok(),
                (report->violations.empty() ? "" : report->violations.front().to_string()));
  CHECK(report->payouts_in_flight == 0);
}

int64_t liability(money_world& w, const std::string& market, const std::string& sel = "home") {
  auto v = get_market(w.p(), market);
  REQUIRE(v);
  auto i = v->liability.find(sel);
  return i == v->liability.end() ? 0 : i->second;
}

// Three open markets m1..m3 with home at 2.00, 3.00 and 1.50.
void three_markets(money_world& w) {
  open_two_way(w.p(), two_way_market("m1", 200, 200));
  open_two_way(w.p(), two_way_market("m2", 300, 150));
  open_two_way(w.p(), two_way_market("m3", 150, 300));
}

} // namespace

TEST_CASE("an accumulator of three winners pays the product of its prices: 10.00 -> 90.00") {
  money_world w;
  three_markets(w);
  REQUIRE(deposit(w.p(), "u1", "d1", 100'00));
  auto b = place_slip(w.p(), "u1",
                      slip_cmd("r1", slip_type::accumulator, {{"m1", 200}, {"m2", 300}, {"m3", 150}},
                               10'00));
  REQUIRE_MESSAGE(b, message_of(b.error()));
  CHECK(b->is_slip());
  CHECK(b->type == slip_type::accumulator);
  CHECK(b->lines() == 1);
  CHECK(b->total_stake().minor == 10'00);
  CHECK(b->potential().minor == 90'00);
  REQUIRE(b->legs.size() == 3);
  CHECK(b->legs[1].market.value == "m2");
  CHECK(b->legs[1].accepted.hundredths == 300);
  CHECK(available(w, "u1") == 90'00);
  // Each market counts the winnings riding on its leg: 80.00 on every one.
  CHECK(liability(w, "m1") == 80'00);
  CHECK(liability(w, "m3") == 80'00);
  // Two legs won: the slip is still open.
  REQUIRE(settle(w.p(), "m1", {"home"}));
  REQUIRE(settle(w.p(), "m2", {"home"}));
  REQUIRE(wait_until(
    [&] {
      auto now = get_bet(w.p(), "u1", b->id.value);
      return now && now->legs[1].result == leg_result::won;
    },
    30s));
  auto open = get_bet(w.p(), "u1", b->id.value);
  REQUIRE(open);
  CHECK(open->status == bet_status::open);
  CHECK(open->legs[0].result == leg_result::won);
  CHECK(open->legs[2].result == leg_result::open);
  REQUIRE(settle(w.p(), "m3", {"home"}));
  auto done = settled_bet(w, "u1", b->id.value);
  CHECK(done.status == bet_status::won);
  CHECK(done.payout.minor == 90'00);
  CHECK(available(w, "u1") == 180'00);
  audit_clean(w);
}

TEST_CASE("an accumulator with a non-runner pays as the bet without that leg: 10.00 -> 30.00") {
  money_world w;
  three_markets(w);
  REQUIRE(deposit(w.p(), "u1", "d1", 100'00));
  auto b = place_slip(w.p(), "u1",
                      slip_cmd("r1", slip_type::accumulator, {{"m1", 200}, {"m2", 300}, {"m3", 150}},
                               10'00));
  REQUIRE(b);
  REQUIRE(withdraw(w.p(), "m2", "home"));
  REQUIRE(settle(w.p(), "m1", {"home"}));
  REQUIRE(settle(w.p(), "m3", {"home"}));
  auto done = settled_bet(w, "u1", b->id.value);
  CHECK(done.status == bet_status::won);
  CHECK(done.payout.minor == 30'00);
  CHECK(done.legs[1].result == leg_result::void_);
  CHECK(available(w, "u1") == 90'00 + 30'00);
  audit_clean(w);
}

TEST_CASE("a losing leg settles an accumulator as lost at once, and later results change "
          "nothing") {
  money_world w;
  three_markets(w);
  REQUIRE(deposit(w.p(), "u1", "d1", 100'00));
  auto b = place_slip(w.p(), "u1",
                      slip_cmd("r1", slip_type::accumulator, {{"m1", 200}, {"m2", 300}, {"m3", 150}},
                               10'00));
  REQUIRE(b);
  REQUIRE(settle(w.p(), "m2", {"away"}));
  auto done = settled_bet(w, "u1", b->id.value);
  CHECK(done.status == bet_status::lost);
  CHECK(done.payout.minor == 0);
  CHECK(done.legs[1].result == leg_result::lost);
  CHECK(done.legs[0].result == leg_result::open);
  REQUIRE(settle(w.p(), "m1", {"home"}));
  REQUIRE(settle(w.p(), "m3", {"home"}));
  audit_clean(w);
  auto after = get_bet(w.p(), "u1", b->id.value);
  REQUIRE(after);
  CHECK(after->status == bet_status::lost);
  CHECK(available(w, "u1") == 90'00);
}

TEST_CASE("a Lucky 15 of four winners holds 15 stakes and pays 359.00 for 1.00 a line") {
  money_world w;
  open_two_way(w.p(), two_way_market("m1", 200, 200));
  open_two_way(w.p(), two_way_market("m2", 300, 150));
  open_two_way(w.p(), two_way_market("m3", 400, 130));
  open_two_way(w.p(), two_way_market("m4", 500, 120));
  REQUIRE(deposit(w.p(), "u1", "d1", 100'00));
  auto b = place_slip(w.p(), "u1",
                      slip_cmd("r1", slip_type::lucky15,
                               {{"m1", 200}, {"m2", 300}, {"m3", 400}, {"m4", 500}}, 1'00));
  REQUIRE_MESSAGE(b, message_of(b.error()));
  CHECK(b->lines() == 15);
  CHECK(b->total_stake().minor == 15'00);
  CHECK(available(w, "u1") == 85'00);
  for (auto m : {"m1", "m2", "m3", "m4"})
    REQUIRE(settle(w.p(), m, {"home"}));
  auto done = settled_bet(w, "u1", b->id.value);
  CHECK(done.payout.minor == 359'00);
  CHECK(available(w, "u1") == 85'00 + 359'00);
  audit_clean(w);
}

TEST_CASE("one leg's refusal releases the hold and every other market's leg") {
  money_world w;
  three_markets(w);
  REQUIRE(set_status(w.p(), "m3", market_status::suspended));
  REQUIRE(deposit(w.p(), "u1", "d1", 100'00));
  auto b = place_slip(w.p(), "u1",
                      slip_cmd("r1", slip_type::accumulator, {{"m1", 200}, {"m2", 300}, {"m3", 150}},
                               10'00));
  REQUIRE_FALSE(b);
  CHECK(code_of(b.error()) == errc::market_not_open);
  CHECK(available(w, "u1") == 100'00);
  // The markets that took their legs forget them: no liability is left.
  CHECK(wait_until([&] { return liability(w, "m1") == 0 && liability(w, "m2") == 0; }, 30s));
  // A retry gets the same answer and holds nothing.
  auto again = place_slip(w.p(), "u1",
                          slip_cmd("r1", slip_type::accumulator,
                                   {{"m1", 200}, {"m2", 300}, {"m3", 150}}, 10'00));
  REQUIRE_FALSE(again);
  CHECK(code_of(again.error()) == errc::market_not_open);
  CHECK(available(w, "u1") == 100'00);
  // The markets settle; the released legs owe nothing.
  REQUIRE(settle(w.p(), "m1", {"home"}));
  REQUIRE(settle(w.p(), "m2", {"home"}));
  audit_clean(w);
  CHECK(available(w, "u1") == 100'00);
}

TEST_CASE("a slip over one leg's market liability is refused and holds nothing") {
  money_world w;
  open_two_way(w.p(), two_way_market("m1", 200, 200));
  // m2 risks at most 50.00 on a selection; the double's 10.00 at 2.00 x 3.00
  // puts 50.00 of winnings on each leg, so a second one is refused.
  open_two_way(w.p(), two_way_market("m2", 300, 150, 1'000'000, 50'00));
  REQUIRE(deposit(w.p(), "u1", "d1", 100'00));
  auto first = place_slip(w.p(), "u1",
                          slip_cmd("r1", slip_type::accumulator, {{"m1", 200}, {"m2", 300}}, 10'00));
  REQUIRE_MESSAGE(first, message_of(first.error()));
  CHECK(liability(w, "m2") == 50'00);
  auto second = place_slip(w.p(), "u1",
                           slip_cmd("r2", slip_type::accumulator, {{"m1", 200}, {"m2", 300}}, 10'00));
  REQUIRE_FALSE(second);
  CHECK(code_of(second.error()) == errc::limit_exceeded);
  CHECK(available(w, "u1") == 90'00);
  CHECK(wait_until([&] { return liability(w, "m1") == 50'00; }, 30s));
}

TEST_CASE("bad slips are refused with the field at fault and hold nothing") {
  money_world w;
  three_markets(w);
  REQUIRE(deposit(w.p(), "u1", "d1", 100'00));
  auto refused = [&](place_slip_cmd cmd, std::string field) {
    auto b = place_slip(w.p(), "u1", std::move(cmd));
    REQUIRE_FALSE(b);
    CHECK(code_of(b.error()) == errc::invalid_field);
    CHECK(detail_of(b.error()) == field);
  };
  // Two legs on one market.
  refused(slip_cmd("r1", slip_type::accumulator, {{"m1", 200}, {"m1", 200}}, 10'00), "legs");
  // A Yankee takes four legs.
  refused(slip_cmd("r2", slip_type::yankee, {{"m1", 200}, {"m2", 300}, {"m3", 150}}, 10'00),
          "legs");
  // An accumulator takes two at least.
  refused(slip_cmd("r3", slip_type::accumulator, {{"m1", 200}}, 10'00), "legs");
  // A price out of range.
  refused(slip_cmd("r4", slip_type::accumulator, {{"m1", 200}, {"m2", 100}}, 10'00), "legs");
  // A stake of nothing.
  refused(slip_cmd("r5", slip_type::accumulator, {{"m1", 200}, {"m2", 300}}, 0), "stake");
  CHECK(available(w, "u1") == 100'00);
  CHECK(liability(w, "m1") == 0);
}

TEST_CASE("each-way on a slip with a leg's market without terms is refused and releases the "
          "rest") {
  money_world w;
  auto race = two_way_market("r1", 1100, 500);
  race.each_way = {3, ratio{1, 4}};
  open_two_way(w.p(), race);
  open_two_way(w.p(), two_way_market("m2", 300, 150));
  REQUIRE(deposit(w.p(), "u1", "d1", 100'00));
  auto b = place_slip(w.p(), "u1",
                      slip_cmd("q1", slip_type::accumulator, {{"r1", 1100}, {"m2", 300}}, 5'00,
                               true));
  REQUIRE_FALSE(b);
  CHECK(code_of(b.error()) == errc::invalid_field);
  CHECK(detail_of(b.error()) == "each_way");
  CHECK(available(w, "u1") == 100'00);
  CHECK(wait_until([&] { return liability(w, "r1") == 0; }, 30s));
}

TEST_CASE("an each-way double: the win half loses on a placed leg, the place half pays") {
  money_world w;
  auto a = two_way_market("ra", 1100, 500);
  a.each_way = {3, ratio{1, 4}};
  auto c = two_way_market("rb", 500, 300);
  c.each_way = {3, ratio{1, 5}};
  open_two_way(w.p(), a);
  open_two_way(w.p(), c);
  REQUIRE(deposit(w.p(), "u1", "d1", 100'00));
  auto b = place_slip(w.p(), "u1",
                      slip_cmd("e1", slip_type::accumulator, {{"ra", 1100}, {"rb", 500}}, 10'00,
                               true));
  REQUIRE_MESSAGE(b, message_of(b.error()));
  CHECK(b->total_stake().minor == 20'00);
  CHECK(b->legs[0].place_fraction == ratio{1, 4});
  CHECK(b->legs[1].place_fraction == ratio{1, 5});
  market_resulted placed;
  placed.winners = {"away"};
  placed.placed = {"home"};
  REQUIRE(settle_result(w.p(), "ra", placed));
  REQUIRE(settle(w.p(), "rb", {"home"}));
  auto done = settled_bet(w, "u1", b->id.value);
  // Win half: lost. Place half: 10.00 x (1 + 10/4) x (1 + 4/5) = 63.00.
  CHECK(done.status == bet_status::won);
  CHECK(done.payout.minor == 63'00);
  CHECK(done.legs[0].result == leg_result::placed);
  audit_clean(w);
}

TEST_CASE("a slip's retry gets its first answer, and the same id with another body is refused") {
  money_world w;
  three_markets(w);
  REQUIRE(deposit(w.p(), "u1", "d1", 100'00));
  auto cmd = slip_cmd("r1", slip_type::trixie, {{"m1", 200}, {"m2", 300}, {"m3", 150}}, 1'00);
  auto first = place_slip(w.p(), "u1", cmd);
  REQUIRE_MESSAGE(first, message_of(first.error()));
  CHECK(first->lines() == 4);
  auto again = place_slip(w.p(), "u1", cmd);
  REQUIRE(again);
  CHECK(again->id == first->id);
  CHECK(available(w, "u1") == 96'00);
  cmd.stake = money{2'00};
  auto other = place_slip(w.p(), "u1", cmd);
  REQUIRE_FALSE(other);
  CHECK(code_of(other.error()) == errc::request_id_reused);
  // A restart: the slip and its answer come back from the journal.
  w.restart();
  cmd.stake = money{1'00};
  auto replayed = place_slip(w.p(), "u1", cmd);
  REQUIRE(replayed);
  CHECK(replayed->id == first->id);
  CHECK(available(w, "u1") == 96'00);
}

TEST_CASE("a slip half settled when the node restarts is settled once, exactly") {
  money_world w;
  three_markets(w);
  REQUIRE(deposit(w.p(), "u1", "d1", 100'00));
  auto b = place_slip(w.p(), "u1",
                      slip_cmd("r1", slip_type::patent, {{"m1", 200}, {"m2", 300}, {"m3", 150}},
                               1'00));
  REQUIRE(b);
  CHECK(b->lines() == 7);
  REQUIRE(settle(w.p(), "m1", {"home"}));
  REQUIRE(wait_until(
    [&] {
      auto now = get_bet(w.p(), "u1", b->id.value);
      return now && now->legs[0].result == leg_result::won;
    },
    30s));
  w.restart();
  REQUIRE(settle(w.p(), "m2", {"away"}));
  REQUIRE(settle(w.p(), "m3", {"home"}));
  auto done = settled_bet(w, "u1", b->id.value);
  // Patent on 2.00 (won), 3.00 (lost), 1.50 (won): the singles 2.00 and
  // 1.50, and the double of the two, 3.00: 6.50 for 7.00 staked.
  CHECK(done.status == bet_status::won);
  CHECK(done.payout.minor == 6'50);
  CHECK(available(w, "u1") == 93'00 + 6'50);
  audit_clean(w);
}
