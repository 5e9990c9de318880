// A match day, scripted on the embedded platform: markets open, thousands of
// bettors fund their wallets and bet while prices move (singles, and a
// double each across two matches), the markets settle,
// and the book is summed up: the house's profit and loss, and the money
// invariant (every cent deposited is in a wallet or with the house).
//
//   wager_example_match_day [data-dir] [bettors]

#include <wager/actors/platform.hpp>
#include <wager/wager.hpp>

#include <atomic>
#include <cstdio>
#include <filesystem>
#include <latch>
#include <random>

using namespace wager;

namespace {

constexpr int markets = 4;
constexpr int bets_per_bettor = 3;

market_definition match(int i) {
  auto id = "match-" + std::to_string(i);
  return {market_id{id}, "Match " + std::to_string(i), "Full time result",
          {{selection_id{"home"}, "Home", {210}},
           {selection_id{"draw"}, "Draw", {330}},
           {selection_id{"away"}, "Away", {380}}},
          {money{50'000}, money{50'000'000}},
          0};
}

template <class T>
T must(caf::expected<T> r, const char* what) {
  if (!r) {
    std::fprintf(stderr, "%s failed: %s\n", what, std::string{to_code(code_of(r.error()))}.c_str());
    std::exit(1);
  }
  return std::move(*r);
}

} // namespace

int main(int argc, char** argv) {
  std::string dir = argc > 1 ? argv[1] : "match-day-data";
  int bettors = argc > 2 ? std::atoi(argv[2]) : 2000;
  std::filesystem::remove_all(dir);
  auto started = platform::start({.data_dir = dir});
  if (!started) {
    std::fprintf(stderr, "cannot start: %s\n", message_of(started.error()).c_str());
    return 1;
  }
  auto& p = **started;

  // The markets open.
  for (int m = 0; m < markets; ++m) {
    must(await<market_view>([&](auto done) { p.create_market(match(m), done); }), "create");
    must(await<market_view>([&](auto done) {
           p.set_market_status(market_id{"match-" + std::to_string(m)}, market_status::open, done);
         }),
         "open");
  }

  // Bettors fund their wallets: 100.00 each.
  std::latch funded{bettors};
  for (int b = 0; b < bettors; ++b)
    p.deposit(user_id{"fan-" + std::to_string(b)}, request_id{"fund-" + std::to_string(b)},
              money{10'000}, [&](caf::expected<wallet_receipt> r) {
                must(std::move(r), "deposit");
                funded.count_down();
              });
  funded.wait();

  // Prices move while everyone bets: bets that race a change are either
  // accepted at the price they saw or refused with price_changed.
  std::atomic<int> accepted{0}, price_changed{0}, other{0};
  std::latch placed{bettors * bets_per_bettor};
  std::mt19937 rng{7};
  for (int b = 0; b < bettors; ++b) {
    for (int k = 0; k < bets_per_bettor; ++k) {
      auto m = static_cast<int>(rng() % markets);
      const char* sels[] = {"home", "draw", "away"};
      int32_t prices[] = {210, 330, 380};
      auto s = static_cast<int>(rng() % 3);
      place_bet_cmd cmd{request_id{"bet-" + std::to_string(b) + "-" + std::to_string(k)},
                        market_id{"match-" + std::to_string(m)}, selection_id{sels[s]},
                        money{static_cast<int64_t>(100 + rng() % 2000)}, price{prices[s]},
                        accept_policy::exact};
      p.place_bet(user_id{"fan-" + std::to_string(b)}, cmd, [&](caf::expected<bet> r) {
        if (r)
          ++accepted;
        else if (code_of(r.error()) == errc::price_changed)
          ++price_changed;
        else
          ++other;
        placed.count_down();
      });
    }
    if (b == bettors / 2) // half time: the home side is drifting
      p.set_prices(market_id{"match-0"}, {{"home", price{240}}}, [](auto) {});
  }
  placed.wait();

  // Every bettor also backs a double on matches 2 and 3: one slip, its
  // stake held once, taken only if both markets take their leg. Match 3
  // will be void, so each double pays as a single on match 2.
  std::atomic<int> doubles{0}, doubles_refused{0};
  std::latch slipped{bettors};
  for (int b = 0; b < bettors; ++b) {
    const char* sels[] = {"home", "draw", "away"};
    int32_t prices[] = {210, 330, 380};
    auto s2 = static_cast<int>(rng() % 3), s3 = static_cast<int>(rng() % 3);
    place_slip_cmd cmd{request_id{"double-" + std::to_string(b)}, slip_type::accumulator,
                       {{market_id{"match-2"}, selection_id{sels[s2]}, price{prices[s2]}},
                        {market_id{"match-3"}, selection_id{sels[s3]}, price{prices[s3]}}},
                       money{static_cast<int64_t>(100 + rng() % 500)}};
    p.place_slip(user_id{"fan-" + std::to_string(b)}, cmd, [&](caf::expected<bet> r) {
      if (r)
        ++doubles;
      else
        ++doubles_refused;
      slipped.count_down();
    });
  }
  slipped.wait();

  // Full time: home wins match 0, draws elsewhere, match 3 is void.
  for (int m = 0; m < markets; ++m) {
    market_id id{"match-" + std::to_string(m)};
    if (m == 3)
      must(await<market_view>([&](auto done) { p.void_market(id, done); }), "void");
    else
      must(await<market_view>([&](auto done) {
             p.settle_market(id, {m == 0 ? "home" : "draw"}, done);
           }),
           "settle");
  }

  // The outboxes pay every wallet; wait until no bet is open any more.
  int64_t total = 0, held = 0;
  for (int attempt = 0;; ++attempt) {
    total = held = 0;
    int open = 0;
    // Open bets first, then the balance: a payout closes its bet and credits
    // the wallet in one event, so a wallet with no open bet left has every
    // payout in the balance read after (read the other way round, a payout
    // landing between the two reads is missed).
    for (int b = 0; b < bettors; ++b) {
      user_id u{"fan-" + std::to_string(b)};
      open += static_cast<int>(
        must(await<std::vector<bet>>([&](auto done) { p.bets(u, false, done); }), "bets").size());
      auto bal = must(await<wallet_balance>([&](auto done) { p.balance(u, done); }), "balance");
      total += bal.available.minor;
      held += bal.held.minor;
    }
    if (open == 0)
      break;
    if (attempt > 500) {
      std::fprintf(stderr, "payouts did not arrive: %d bets still open\n", open);
      return 1;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds{20});
  }

  // The house's result, from the bets themselves: stakes taken minus what
  // the settled bets paid back.
  int64_t house = 0;
  for (int b = 0; b < bettors; ++b) {
    user_id u{"fan-" + std::to_string(b)};
    for (auto& settled : must(await<std::vector<bet>>([&](auto done) { p.bets(u, true, done); }),
                              "settled bets"))
      house += settled.total_stake().minor - settled.payout.minor;
  }
  int64_t deposited = int64_t{bettors} * 10'000;
  std::printf("bets: %d accepted, %d price_changed, %d other; doubles: %d accepted, %d refused\n",
              accepted.load(), price_changed.load(), other.load(), doubles.load(),
              doubles_refused.load());
  std::printf("wallets hold %ld.%02ld; the house made %ld.%02ld\n", total / 100, total % 100,
              house / 100, std::labs(house % 100));
  bool ok = held == 0 && total + house == deposited && other == 0
            && accepted + price_changed == bettors * bets_per_bettor && doubles == bettors;
  std::printf("money invariant: %s\n", ok ? "ok" : "VIOLATED");
  p.stop();
  return ok ? 0 : 1;
}
