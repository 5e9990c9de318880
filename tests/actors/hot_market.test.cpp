// Many wallets betting on one hot market at once, through the embedded
// platform from several threads, while the prices move: every bet is
// answered (accepted or refused for a reason of the API), the selection's
// liability never passes max_liability, and money is conserved, before and
// after settlement.

#include "money_fixture.hpp"

#include <doctest/doctest.h>

#include <atomic>
#include <mutex>
#include <random>
#include <semaphore>
#include <thread>

using namespace wager;
using namespace wager::test;

namespace {

constexpr int wallets = 200;
constexpr int bets_per_wallet = 20;
constexpr int threads = 4;
constexpr int64_t funds = 5'000;
// Bets in flight per thread: enough to fill the journal's group commits.
constexpr std::ptrdiff_t in_flight_max = 128;

struct tally {
  std::mutex mutex;
  std::map<std::string, int64_t> staked; // user -> accepted stakes
  std::map<errc, int> refused;
  std::vector<std::string> unexpected;
  std::atomic<int> accepted{0};
  std::atomic<int> answered{0};
};

void bet_from_thread(platform& p, int thread, tally& t) {
  // Shared with the callbacks: the last release may still run as the
  // thread takes its last slot back.
  auto slots = std::make_shared<std::counting_semaphore<in_flight_max>>(in_flight_max);
  std::mt19937 rng{static_cast<unsigned>(thread) + 1};
  std::uniform_int_distribution<int64_t> stake{100, 1'000};
  for (int k = 0; k < bets_per_wallet; ++k) {
    for (int i = thread; i < wallets; i += threads) {
      auto user = "w" + std::to_string(i);
      // Half the bets ask for the opening price under `exact`, so some meet
      // a moved price; the others take what is there.
      auto policy = k % 2 == 0 ? accept_policy::exact : accept_policy::any;
      auto s = stake(rng);
      slots->acquire();
      p.place_bet(user_id{user},
                  bet_cmd("r" + std::to_string(k), "hot", k % 4 == 0 ? "away" : "home", s, 200,
                          policy),
                  [&t, slots, user, s](caf::expected<bet> r) {
                    {
                      std::lock_guard lock{t.mutex};
                      if (r) {
                        t.staked[user] += s;
                        ++t.accepted;
                      } else {
                        auto c = code_of(r.error());
                        ++t.refused[c];
                        if (c != errc::insufficient_funds && c != errc::limit_exceeded
                            && c != errc::price_changed)
                          t.unexpected.push_back(user + ": " + std::string{to_code(c)} + " "
                                                 + message_of(r.error()));
                      }
                    }
                    ++t.answered;
                    slots->release();
                  });
    }
  }
  // Waits for this thread's last answers before its semaphore goes.
  for (std::ptrdiff_t i = 0; i < in_flight_max; ++i)
    slots->acquire();
}

} // namespace

TEST_CASE("two hundred wallets betting twenty times each on one hot market conserve money "
          "and respect its liability limit") {
  money_world w;
  // A liability limit far below what the bets ask for, so it binds.
  constexpr int64_t max_liability = 400'000;
  open_two_way(w.p(), two_way_market("hot", 200, 200, 900, max_liability));
  {
    std::atomic<int> deposited{0};
    std::atomic<int> failed{0};
    for (int i = 0; i < wallets; ++i)
      w.p().deposit(user_id{"w" + std::to_string(i)}, request_id{"d1"}, money{funds},
                    [&](caf::expected<wallet_receipt> r) {
                      failed += r ? 0 : 1;
                      ++deposited;
                    });
    REQUIRE(wait_until([&] { return deposited == wallets; }, 60s));
    REQUIRE(failed == 0);
  }

  tally t;
  std::atomic<bool> betting{true};
  // The trader moves the price of "home" back and forth while bets arrive.
  std::thread trader{[&] {
    int32_t p = 200;
    while (betting) {
      p = p == 200 ? 205 : 200;
      (void) set_price(w.p(), "hot", "home", p);
    }
  }};
  std::vector<std::thread> bettors;
  for (int i = 0; i < threads; ++i)
    bettors.emplace_back([&, i] { bet_from_thread(w.p(), i, t); });
  for (auto& b : bettors)
    b.join();
  betting = false;
  trader.join();

  constexpr int placed = wallets * bets_per_wallet;
  CHECK(t.answered == placed);
  int refused = 0;
  std::string counts;
  for (auto& [c, n] : t.refused) {
    counts += std::string{to_code(c)} + ": " + std::to_string(n) + " ";
    refused += n;
  }
  INFO("refused " << counts);
  CHECK(t.accepted + refused == placed);
  CHECK_MESSAGE(t.unexpected.empty(), (t.unexpected.empty() ? "" : t.unexpected.front()));
  // Each limit bound at least once, or the test proves less than it says.
  CHECK(t.refused[errc::limit_exceeded] > 0);
  CHECK(t.refused[errc::insufficient_funds] > 0);

  auto view = get_market(w.p(), "hot");
  REQUIRE(view);
  CHECK(view->liability["home"] <= max_liability);
  CHECK(view->liability["away"] <= max_liability);

  auto audit = audit_journal(w.p().journal(), true);
  CHECK_MESSAGE(audit.violations.empty(), audit.first_violation());
  CHECK(audit.committed.size() == static_cast<size_t>(t.accepted.load()));
  CHECK(audit.markets["hot"].bets.size() == static_cast<size_t>(t.accepted.load()));
  CHECK(audit.deposits.minor == wallets * funds);
  for (auto& [user, staked] : t.staked)
    CHECK(balance(w.p(), user).available.minor == funds - staked);

  REQUIRE(settle(w.p(), "hot", {"home"}));
  journal_audit after;
  REQUIRE(wait_until(
    [&] {
      after = audit_journal(w.p().journal(), false);
      return after.outboxes_empty();
    },
    60s));
  after = audit_journal(w.p().journal(), true);
  CHECK_MESSAGE(after.violations.empty(), after.first_violation());
  CHECK(after.credited.size() == static_cast<size_t>(t.accepted.load()));
}

// Resident limits far below the working set: every activation passivates
// another wallet or market while sagas, decisions and payouts are in flight.
TEST_CASE("wallets and markets passivated mid-saga by resident limits lose nothing") {
  auto options = test_platform_options("");
  options.directory_partitions = 1;
  options.wallets_resident_max = 3;
  options.markets_resident_max = 1;
  money_world w{options};
  constexpr int bettors = 40;
  constexpr int bets_each = 6;
  for (auto id : {"a", "b", "c"})
    open_two_way(w.p(), two_way_market(id, 200, 300, 100'000, 150'000));
  std::atomic<int> answered{0};
  std::atomic<int> unexpected{0};
  for (int i = 0; i < bettors; ++i) {
    auto user = "w" + std::to_string(i);
    w.p().deposit(user_id{user}, request_id{"d1"}, money{3'000},
                  [&, user](caf::expected<wallet_receipt> r) {
                    if (!r)
                      ++unexpected;
                    for (int k = 0; k < bets_each; ++k)
                      w.p().place_bet(user_id{user},
                                      bet_cmd("r" + std::to_string(k),
                                              k % 3 == 0 ? "a" : k % 3 == 1 ? "b" : "c",
                                              k % 2 == 0 ? "home" : "away", 500 + k,
                                              k % 2 == 0 ? 200 : 300),
                                      [&](caf::expected<bet> b) {
                                        if (!b && code(b) != errc::insufficient_funds
                                            && code(b) != errc::limit_exceeded)
                                          ++unexpected;
                                        ++answered;
                                      });
                  });
  }
  REQUIRE(wait_until([&] { return answered == bettors * bets_each; }, 60s));
  CHECK(unexpected == 0);
  CHECK(w.p().metrics().passivations().Add({{"kind", "wallet"}}).Value() > 0);
  CHECK(w.p().metrics().passivations().Add({{"kind", "market"}}).Value() > 0);
  REQUIRE(settle(w.p(), "a", {"home"}));
  REQUIRE(void_market(w.p(), "b"));
  journal_audit audit;
  REQUIRE(wait_until(
    [&] {
      audit = audit_journal(w.p().journal(), false);
      return audit.outboxes_empty() && audit.holds() == 0;
    },
    60s));
  audit = audit_journal(w.p().journal(), true);
  CHECK_MESSAGE(audit.violations.empty(), audit.first_violation());
  CHECK(audit.deposits.minor == bettors * 3'000);
}
