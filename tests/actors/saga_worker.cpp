// A child process for the saga crash test: it starts an embedded platform on
// a data dir, sets up markets and funded wallets (idempotently, so every run
// may repeat it), prints "ready", then places bets, deposits and withdraws
// from many wallets at once while prices move and one market of its own is
// settled mid-run, until the parent kills it with SIGKILL.
//
//   saga_worker DATA_DIR RUN USERS SEED
//
// One line per answer, written with write(2) as the answer arrives, so a
// line the parent reads was answered before the process died:
//   B <user> <request> <market> <selection> <stake> <asked> <policy> ok <bet_id> <price>
//   B <user> <request> <market> <selection> <stake> <asked> <policy> err <code>
//   D <user> <request> <amount> ok <transaction_id>
//   D <user> <request> <amount> err <code>
//   W <user> <request> <amount> ok <transaction_id>
//   W <user> <request> <amount> err <code>
//   S <market> ok
// Markets: "m0".."m2" (long-lived, opened at setup) and "s<RUN>" (created,
// opened and, after a random number of operations, settled by this run).

#include "money_fixture.hpp"

#include <cstdio>
#include <cstdlib>
#include <random>
#include <semaphore>
#include <string>
#include <unistd.h>

using namespace wager;
using namespace wager::test;

namespace {

constexpr int long_lived_markets = 3;
constexpr int64_t opening_funds = 100'000;
constexpr std::ptrdiff_t in_flight_max = 64;

void say(const std::string& line) {
  auto text = line + "\n";
  // One write per line: atomic on a pipe and unbuffered, so nothing
  // answered is lost in a stdio buffer when the process is killed.
  if (::write(STDOUT_FILENO, text.data(), text.size()) < 0)
    std::_Exit(3);
}

[[noreturn]] void die(const std::string& why) {
  std::fprintf(stderr, "saga_worker: %s\n", why.c_str());
  std::_Exit(2);
}

market_definition market_of(const std::string& id) {
  // Small limits, so limit_exceeded happens too.
  return two_way_market(id, 200, 200, 1'000, 60'000);
}

void set_up(platform& p, const std::string& own_market, int users) {
  for (int i = 0; i < long_lived_markets; ++i) {
    auto id = "m" + std::to_string(i);
    auto created = create_market(p, market_of(id));
    // Prices moved since the first run: the definition differs, it exists.
    if (!created && code_of(created.error()) != errc::already_exists)
      die("create " + id + ": " + message_of(created.error()));
    auto v = get_market(p, id);
    if (!v)
      die("get " + id + ": " + message_of(v.error()));
    if (v->status == market_status::pending)
      if (auto o = set_status(p, id, market_status::open); !o)
        die("open " + id + ": " + message_of(o.error()));
  }
  if (auto c = create_market(p, market_of(own_market)); !c)
    die("create " + own_market + ": " + message_of(c.error()));
  if (auto o = set_status(p, own_market, market_status::open); !o)
    die("open " + own_market + ": " + message_of(o.error()));
  for (int i = 0; i < users; ++i) {
    auto user = "u" + std::to_string(i);
    if (auto d = deposit(p, user, "opening", opening_funds); !d)
      die("deposit " + user + ": " + message_of(d.error()));
  }
}

std::string outcome(const caf::error& err) {
  return "err " + std::string{to_code(code_of(err))};
}

void run_load(platform& p, const std::string& run, const std::string& own_market, int users,
              std::mt19937_64& rng) {
  auto slots = std::make_shared<std::counting_semaphore<in_flight_max>>(in_flight_max);
  auto settle_at = 10 + rng() % 100;
  auto pick = [&](uint64_t n) { return rng() % n; };
  for (uint64_t n = 0;; ++n) {
    slots->acquire();
    auto user = "u" + std::to_string(pick(users));
    auto request = "r" + run + "-" + std::to_string(n);
    auto op = pick(100);
    if (op < 80) {
      auto market = pick(4) == 0 ? own_market : "m" + std::to_string(pick(long_lived_markets));
      auto selection = pick(2) == 0 ? "home" : "away";
      auto stake = 50 + static_cast<int64_t>(pick(1'200));
      auto asked = pick(2) == 0 ? 200 : 210;
      auto policy = static_cast<accept_policy>(pick(3));
      auto head = "B " + user + " " + request + " " + market + " " + selection + " "
                  + std::to_string(stake) + " " + std::to_string(asked) + " "
                  + std::string{to_string(policy)} + " ";
      p.place_bet(user_id{user}, bet_cmd(request, market, selection, stake, asked, policy),
                  [slots, head](caf::expected<bet> r) {
                    say(head + (r ? "ok " + r->id.value + " "
                                      + std::to_string(r->accepted.hundredths)
                                  : outcome(r.error())));
                    slots->release();
                  });
    } else {
      bool is_deposit = op < 90;
      auto amount = 100 + static_cast<int64_t>(pick(is_deposit ? 5'000 : 40'000));
      auto head = std::string{is_deposit ? "D " : "W "} + user + " " + request + " "
                  + std::to_string(amount) + " ";
      auto done = [slots, head](caf::expected<wallet_receipt> r) {
        say(head + (r ? "ok " + r->transaction_id : outcome(r.error())));
        slots->release();
      };
      if (is_deposit)
        p.deposit(user_id{user}, request_id{request}, money{amount}, done);
      else
        p.withdraw(user_id{user}, request_id{request}, money{amount}, done);
    }
    if (n % 40 == 0) {
      auto market = "m" + std::to_string(pick(long_lived_markets));
      int32_t home = pick(2) == 0 ? 200 : 210;
      p.set_prices(market_id{market}, {{"home", price{home}}, {"away", price{410 - home}}},
                   [](caf::expected<market_view>) {});
    }
    if (n == settle_at) {
      auto done = [own_market](caf::expected<market_view> v) {
        if (v)
          say("S " + own_market + " ok");
      };
      if (pick(2) == 0)
        p.settle_market(market_id{own_market}, {"home"}, done);
      else
        p.void_market(market_id{own_market}, done);
    }
  }
}

} // namespace

int main(int argc, char** argv) {
  if (argc != 5)
    die("usage: saga_worker DATA_DIR RUN USERS SEED");
  std::string dir = argv[1];
  std::string run = argv[2];
  int users = std::atoi(argv[3]);
  std::mt19937_64 rng{std::strtoull(argv[4], nullptr, 10)};
  auto options = test_platform_options(dir);
  // Bettors give up waiting long after the parent has killed this process:
  // every answer printed is a final one.
  options.wallet.answer_timeout = std::chrono::minutes{10};
  auto started = platform::start(options);
  if (!started)
    die("start: " + message_of(started.error()));
  auto& p = **started;
  auto own_market = "s" + run;
  set_up(p, own_market, users);
  say("ready");
  run_load(p, run, own_market, users, rng);
}
