// A child process for saga_steps.test.cpp: one bet, and optionally its
// settlement, on an embedded platform, so a crash point (runtime/
// crash_point.hpp, armed by the parent through WAGER_CRASH_AT) kills it at
// an exact step of the saga.
//
//   saga_step_worker DATA_DIR bet|settle|withdraw|cancel
//
// Prints "ready" once the market is open and the wallet funded, then one
// line per answer: "bet <id>" and, for settle, withdraw and cancel,
// "settled", "withdrawn" or "cancelled".

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

} // namespace

int main(int argc, char** argv) {
  if (argc != 3)
    die("usage: saga_step_worker DATA_DIR bet|settle|withdraw|cancel");
  std::string phase = argv[2];
  auto p = start_or_throw(test_platform_options(argv[1]));
  if (auto c = create_market(*p, two_way_market("m1", 200, 300)); !c)
    die("create: " + message_of(c.error()));
  if (auto o = set_status(*p, "m1", market_status::open); !o)
    die("open: " + message_of(o.error()));
  if (auto d = deposit(*p, "u1", "fund", 10'000); !d)
    die("deposit: " + message_of(d.error()));
  say("ready");
  auto b = place(*p, "u1", "b1", "m1", "home", 1'000, 200);
  if (!b)
    die("bet: " + message_of(b.error()));
  say("bet " + b->id.value);
  if (phase == "settle") {
    if (auto s = settle(*p, "m1", {"home"}); !s)
      die("settle: " + message_of(s.error()));
    say("settled");
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
