// A child process for saga_steps.test.cpp: one bet, and optionally its
// settlement, on an embedded platform, so a crash point (runtime/
// crash_point.hpp, armed by the parent through WAGER_CRASH_AT) kills it at
// an exact step of the saga.
//
//   saga_step_worker DATA_DIR bet|settle|withdraw|cancel|cashout|slip|slip_settle|
//                             slip_refused|rollback|slip_rollback
//
// Prints "ready" once the markets are open and the wallet funded, then one
// line per answer: "bet <id>" (or "refused <code>" for slip_refused) and,
// for settle, withdraw, cancel and slip_settle, "settled", "withdrawn" or
// "cancelled". rollback settles m1 for home, waits for the payout and rolls
// the result back ("unsettled"); slip_rollback does the same with m2 under
// a settled accumulator.

#include "money_fixture.hpp"

#include <limits>

#include <cstdio>
#include <cstdlib>
#include <string>
#include <unistd.h>

using namespace wager;
using namespace wager::test;

namespace {

void say(const std::string& line) {
  auto text = line + "\n";
  if (::write(STDOUT_FILENO, text.data(), text.size()) < 0)
    std::_Exit(3);
}

[[noreturn]] void die(const std::string& why) {
  std::fprintf(stderr, "saga_step_worker: %s\n", why.c_str());
  std::_Exit(2);
}

// Waits until u1's bet `id` has `status`.
void wait_status(platform& p, const std::string& id, bet_status status) {
  bool done = wait_until(
    [&] {
      auto b = get_bet(p, "u1", id);
      return b && b->status == status;
    },
    std::chrono::seconds{30});
  if (!done)
    die("bet " + id + " never became " + std::string{to_string(status)});
}

// Rolls `market`'s result back.
void roll_back(platform& p, const std::string& market) {
  auto u = await<market_view>([&](auto done) { p.unsettle_market(market_id{market}, done); });
  if (!u)
    die("unsettle: " + message_of(u.error()));
  say("unsettled");
}

} // namespace

int main(int argc, char** argv) {
  if (argc != 3)
    die("usage: saga_step_worker DATA_DIR bet|settle|withdraw|cancel|cashout|slip|slip_settle|"
        "slip_refused|rollback|slip_rollback");
  std::string phase = argv[2];
  auto p = start_or_throw(test_platform_options(argv[1]));
  if (auto c = create_market(*p, two_way_market("m1", 200, 300)); !c)
    die("create: " + message_of(c.error()));
  if (auto o = set_status(*p, "m1", market_status::open); !o)
    die("open: " + message_of(o.error()));
  if (auto d = deposit(*p, "u1", "fund", 10'000); !d)
    die("deposit: " + message_of(d.error()));
  if (phase.rfind("slip", 0) == 0) {
    // An accumulator over m1, m2 and m3 (home at 2.00, 3.00, 1.50); with
    // slip_refused, m3 is suspended and refuses its leg.
    for (auto [id, home] : {std::pair{"m2", 300}, std::pair{"m3", 150}}) {
      if (auto c = create_market(*p, two_way_market(id, home, 200)); !c)
        die("create: " + message_of(c.error()));
      auto status = phase == "slip_refused" && std::string{id} == "m3" ? market_status::suspended
                                                                       : market_status::open;
      if (auto o = set_status(*p, id, status); !o)
        die("open: " + message_of(o.error()));
    }
    say("ready");
    place_slip_cmd cmd;
    cmd.request = request_id{"s1"};
    cmd.type = slip_type::accumulator;
    cmd.stake = money{1'000};
    for (auto [id, home] : {std::pair{"m1", 200}, std::pair{"m2", 300}, std::pair{"m3", 150}})
      cmd.legs.push_back({market_id{id}, selection_id{"home"}, price{home}});
    auto b = await<bet>([&](auto done) { p->place_slip(user_id{"u1"}, cmd, done); });
    if (!b && phase != "slip_refused")
      die("slip: " + message_of(b.error()));
    say(b ? "bet " + b->id.value : "refused " + std::string{to_code(code_of(b.error()))});
    if (phase == "slip_settle" || phase == "slip_rollback") {
      for (auto id : {"m1", "m2", "m3"})
        if (auto s = settle(*p, id, {"home"}); !s)
          die("settle: " + message_of(s.error()));
      say("settled");
    }
    if (phase == "slip_rollback") {
      wait_status(*p, b->id.value, bet_status::won);
      roll_back(*p, "m2");
    }
    for (;;)
      ::pause();
  }
  say("ready");
  auto b = place(*p, "u1", "b1", "m1", "home", 1'000, 200);
  if (!b)
    die("bet: " + message_of(b.error()));
  say("bet " + b->id.value);
  if (phase == "cashout") {
    auto q = await<cashout_quote>([&](auto done) { p->cashout_quote(user_id{"u1"}, b->id, done); });
    if (!q)
      die("quote: " + message_of(q.error()));
    auto c = await<bet>([&](auto done) {
      p->cash_out(user_id{"u1"}, cashout_cmd{request_id{"c1"}, b->id, q->quote_id, 10'000}, done);
    });
    if (!c)
      die("cash-out: " + message_of(c.error()));
    say("cashed out");
  } else if (phase == "settle" || phase == "rollback") {
    if (auto s = settle(*p, "m1", {"home"}); !s)
      die("settle: " + message_of(s.error()));
    say("settled");
    if (phase == "rollback") {
      wait_status(*p, b->id.value, bet_status::won);
      roll_back(*p, "m1");
    }
  } else if (phase == "withdraw") {
    auto w = await<market_view>(
      [&](auto done) { p->withdraw_selection(market_id{"m1"}, selection_id{"home"}, done); });
    if (!w)
      die("withdraw: " + message_of(w.error()));
    say("withdrawn");
  } else if (phase == "cancel") {
    auto c = await<market_view>([&](auto done) {
      p->cancel_bets(market_id{"m1"}, 0, std::numeric_limits<int64_t>::max(), done);
    });
    if (!c)
      die("cancel: " + message_of(c.error()));
    say("cancelled");
  }
  // Waits for the parent's kill (or for a crash point in the outbox).
  for (;;)
    ::pause();
}
