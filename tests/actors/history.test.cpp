// The history read model (actors/history.hpp) on a real journal file and a
// real history file: it holds what the wallets' own fold holds, across batch
// boundaries, restarts, a journal it does not describe and a second
// projection on the same file; and through the platform, a wallet's
// transactions and settled bets stay readable after its memory let them go.

#include "money_fixture.hpp"

#include "wager/actors/history.hpp"
#include "wager/actors/platform.hpp"
#include "wager/actors/wallet_codec.hpp"
#include "wager/actors/wallet_state.hpp"
#include "wager/persistence/sqlite_db.hpp"
#include "wager/persistence/sqlite_journal.hpp"
#include "wager/runtime/errors.hpp"

#include "support/seed.hpp"
#include "support/temp_dir.hpp"

#include <doctest/doctest.h>

#include <filesystem>
#include <future>
#include <map>
#include <random>

using namespace wager;
using namespace wager::test;

namespace {

std::unique_ptr<journal> open_journal(const std::string& path) {
  journal_options o;
  o.path = path;
  auto j = open_sqlite_journal(std::move(o));
  REQUIRE_MESSAGE(j, message_of(j.error()));
  return std::move(*j);
}

// Wallets written straight to the journal, each event valid for the state
// before it (apply asserts it), and the state the wallet itself folds.
struct wallets {
  std::mt19937_64 rng;
  std::map<std::string, wallet_state> states;
  int64_t at = 1'700'000'000'000;
  int next = 0;

  explicit wallets(uint64_t seed) : rng(seed) {}

  int64_t pick(int64_t lo, int64_t hi) { // [lo, hi]
    return std::uniform_int_distribution<int64_t>{lo, hi}(rng);
  }

  wallet_event next_event(const wallet_state& s) {
    auto request = request_id{"r" + std::to_string(++next)};
    switch (pick(0, 7)) {
      case 1:
        if (s.available.minor > 0)
          return withdrawn{request, money{pick(1, s.available.minor)}, 9};
        break;
      case 2:
      case 3:
        if (s.available.minor > 0) {
          // Each-way holds twice its stake.
          bool each_way = s.available.minor > 1 && pick(0, 2) == 0;
          auto most = each_way ? s.available.minor / 2 : s.available.minor;
          return stake_held{request, bet_id{"b-" + std::to_string(next)}, market_id{"m1"},
                            selection_id{pick(0, 1) ? "home" : "away"},
                            money{pick(1, most)}, price{static_cast<int32_t>(pick(101, 1000))},
                            accept_policy::exact, 5, each_way};
        }
        break;
      case 4:
        if (!s.holds.empty()) {
          auto& h = std::next(s.holds.begin(), pick(0, static_cast<int64_t>(s.holds.size()) - 1))
                      ->second;
          if (pick(0, 2) > 0)
            return stake_committed{h.bet, price{static_cast<int32_t>(pick(101, 1000))},
                                   h.each_way ? ratio{1, 5} : ratio{}};
          return hold_released{h.bet, errc::price_changed, price{150}};
        }
        break;
      case 5:
      case 6:
        if (!s.open_bets.empty()) {
          auto& b = std::next(s.open_bets.begin(),
                              pick(0, static_cast<int64_t>(s.open_bets.size()) - 1))
                      ->second;
          switch (pick(0, 2)) {
            case 0: return payout_credited{b.id, bet_status::won, b.potential()};
            case 1: return payout_credited{b.id, bet_status::void_, b.total_stake()};
            default: return payout_credited{b.id, bet_status::lost, money{}};
          }
        }
        break;
      case 7: return limits_set{gambling_limits{.deposit = {50'000, 0, 0}}};
      default: break;
    }
    return deposited{request, money{pick(1, 10'000)}, 7};
  }

  // `appends` appends of 1 to 3 events, each to one of `count` wallets.
  void write(journal& j, int count, int appends) {
    std::vector<std::future<caf::expected<append_ack>>> acks;
    for (int a = 0; a < appends; ++a) {
      auto key = "u" + std::to_string(pick(1, count));
      auto& s = states[key];
      at += pick(0, 3);
      append_request req;
      req.stream = "wallet/" + key;
      req.expected_seq = s.seq;
      req.at_ms = at;
      for (auto n = pick(1, 3); n > 0; --n) {
        auto e = next_event(s);
        apply(s, e, s.seq + 1, at);
        check_invariants(s);
        req.events.push_back(encode(e));
      }
      auto done = std::make_shared<std::promise<caf::expected<append_ack>>>();
      acks.push_back(done->get_future());
      REQUIRE_FALSE(j.append(std::move(req), [done](caf::expected<append_ack> r) {
        done->set_value(std::move(r));
      }));
    }
    for (auto& f : acks)
      REQUIRE(f.get());
  }
};

template <class T, class Start>
caf::expected<T> wait_for(Start&& start) {
  std::promise<caf::expected<T>> p;
  auto f = p.get_future();
  start([&p](caf::expected<T> r) { p.set_value(std::move(r)); });
  return f.get();
}

std::vector<wallet_transaction> all_transactions(wallet_history& h, const std::string& user,
                                                 uint32_t page) {
  std::vector<wallet_transaction> out;
  transactions_query q{page, 0};
  for (;;) {
    auto got = wait_for<std::vector<wallet_transaction>>(
      [&](auto done) { h.transactions(user_id{user}, q, done); });
    REQUIRE_MESSAGE(got, message_of(got.error()));
    out.insert(out.end(), got->begin(), got->end());
    if (got->size() < page)
      return out;
    q.before_seq = std::stoull(got->back().transaction_id.substr(1));
  }
}

std::vector<bet> all_settled(wallet_history& h, const std::string& user, uint32_t page) {
  std::vector<bet> out;
  settled_bets_query q{page, {}};
  for (;;) {
    auto got = wait_for<std::vector<bet>>(
      [&](auto done) { h.settled_bets(user_id{user}, q, done); });
    REQUIRE_MESSAGE(got, message_of(got.error()));
    out.insert(out.end(), got->begin(), got->end());
    if (got->size() < page)
      return out;
    q.before = got->back().id.value;
  }
}

bool same(const wallet_transaction& a, const wallet_transaction& b) {
  return a.transaction_id == b.transaction_id && a.kind == b.kind && a.amount == b.amount
         && a.available_after == b.available_after && a.at_ms == b.at_ms && a.ref == b.ref;
}

bool same(const bet& a, const bet& b) {
  return a.id == b.id && a.market == b.market && a.selection == b.selection
         && a.stake == b.stake && a.accepted == b.accepted && a.status == b.status
         && a.payout == b.payout && a.placed_at_ms == b.placed_at_ms
         && a.settled_at_ms == b.settled_at_ms && a.each_way == b.each_way
         && (!a.each_way || a.place_fraction == b.place_fraction);
}

// Every wallet's transactions, settled bets and bets by id, in pages of
// `page`, against what the wallet's own fold shows (its memory holds
// everything here: fewer than wallet_ledger_max entries).
void check_matches(wallet_history& h, const wallets& w, uint32_t page) {
  for (auto& [key, s] : w.states) {
    CAPTURE(key);
    REQUIRE(s.ledger.size() < wallet_ledger_max);
    auto expected = transactions_of(s, {static_cast<uint32_t>(wallet_ledger_max), 0});
    auto got = all_transactions(h, key, page);
    REQUIRE(got.size() == expected.transactions.size());
    for (size_t i = 0; i < got.size(); ++i)
      CHECK_MESSAGE(same(got[i], expected.transactions[i]), got[i].transaction_id);
    auto settled = bets_of(s, true).bets;
    auto got_settled = all_settled(h, key, page);
    REQUIRE(got_settled.size() == settled.size());
    for (size_t i = 0; i < settled.size(); ++i)
      CHECK_MESSAGE(same(got_settled[i], settled[i]), settled[i].id.value);
    for (auto& [id, b] : s.open_bets) {
      auto one = wait_for<bet>([&](auto done) { h.bet(user_id{key}, b.id, done); });
      REQUIRE(one);
      CHECK(same(*one, b));
    }
    for (auto& [id, held] : s.holds) {
      auto one = wait_for<bet>([&](auto done) { h.bet(user_id{key}, held.bet, done); });
      REQUIRE_FALSE(one);
      CHECK(code_of(one.error()) == errc::not_found);
    }
  }
}

history_options options_for(const temp_dir& dir, uint32_t frames) {
  history_options o;
  o.path = (dir / "history.db").string();
  o.frames_per_batch = frames;
  o.poll_interval = std::chrono::milliseconds{5};
  return o;
}

} // namespace

TEST_CASE("the history holds what each wallet's own fold holds, across batches and restarts") {
  auto seed = test::seed_for_run();
  temp_dir dir;
  auto j = open_journal((dir / "journal.db").string());
  wallets w{seed};
  w.write(*j, 6, 300);
  // Small batches: holds taken in one batch and decided in a later one.
  auto frames = static_cast<uint32_t>(w.pick(1, 4));
  CAPTURE(frames);
  {
    auto h = wallet_history::open(options_for(dir, frames), *j);
    REQUIRE_MESSAGE(h, message_of(h.error()));
    check_matches(**h, w, static_cast<uint32_t>(w.pick(1, 9)));
    auto unknown = wait_for<bet>([&](auto done) { (*h)->bet(user_id{"u1"}, bet_id{"b-x"}, done); });
    REQUIRE_FALSE(unknown);
    CHECK(code_of(unknown.error()) == errc::not_found);
    auto before = wait_for<std::vector<bet>>([&](auto done) {
      (*h)->settled_bets(user_id{"u1"}, settled_bets_query{10, "b-x"}, done);
    });
    REQUIRE_FALSE(before);
    CHECK(code_of(before.error()) == errc::invalid_field);
  }
  // Restarted on a journal that went on without it: it folds only the rest.
  w.write(*j, 6, 200);
  auto h = wallet_history::open(options_for(dir, 64), *j);
  REQUIRE_MESSAGE(h, message_of(h.error()));
  check_matches(**h, w, 50);
  auto end = j->log_end();
  REQUIRE(end);
  CHECK((*h)->position() == *end);
}

TEST_CASE("a history file that does not describe the journal's log is rebuilt from it") {
  auto seed = test::seed_for_run();
  temp_dir dir;
  auto path = (dir / "journal.db").string();
  {
    auto j = open_journal(path);
    wallets first{seed};
    first.write(*j, 3, 120);
    auto h = wallet_history::open(options_for(dir, 16), *j);
    REQUIRE(h);
    check_matches(**h, first, 100);
  }
  // Another journal in its place (a restore, say), shorter than the first.
  for (auto suffix : {"", "-wal", "-shm"})
    std::filesystem::remove(path + suffix);
  auto j = open_journal(path);
  wallets second{seed + 1};
  second.write(*j, 3, 40);
  auto h = wallet_history::open(options_for(dir, 16), *j);
  REQUIRE(h);
  check_matches(**h, second, 100);
}

TEST_CASE("two projections on one history file fold every frame once") {
  auto seed = test::seed_for_run();
  temp_dir dir;
  auto path = (dir / "journal.db").string();
  auto j1 = open_journal(path);
  auto j2 = open_journal(path);
  wallets w{seed};
  auto h1 = wallet_history::open(options_for(dir, 2), *j1);
  auto h2 = wallet_history::open(options_for(dir, 3), *j2);
  REQUIRE(h1);
  REQUIRE(h2);
  // Written while both fold: each frame is taken by one of them; a frame
  // folded twice would break a primary key, which stops the projection,
  // and every read below would answer unavailable.
  w.write(*j1, 4, 150);
  w.write(*j2, 4, 150);
  check_matches(**h1, w, 20);
  check_matches(**h2, w, 20);
}

TEST_CASE("a read the projection cannot serve in time is unavailable, and the projection goes "
          "on once it can") {
  auto seed = test::seed_for_run();
  temp_dir dir;
  auto j = open_journal((dir / "journal.db").string());
  wallets w{seed};
  w.write(*j, 2, 20);
  auto o = options_for(dir, 64);
  o.read_timeout = std::chrono::milliseconds{300};
  auto h = wallet_history::open(o, *j);
  REQUIRE(h);
  check_matches(**h, w, 100);
  // Another connection holds the file's write lock: the projection cannot
  // commit, and a read that needs the newer frames gives up.
  sqlite::connection blocker;
  REQUIRE_FALSE(blocker.open((dir / "history.db").string(), sqlite::open_mode::read_write));
  REQUIRE_FALSE(blocker.exec("BEGIN IMMEDIATE", "test: taking the write lock"));
  w.write(*j, 2, 20);
  auto started = std::chrono::steady_clock::now();
  auto late = wait_for<std::vector<wallet_transaction>>(
    [&](auto done) { (*h)->transactions(user_id{"u1"}, transactions_query{10, 0}, done); });
  auto waited = std::chrono::steady_clock::now() - started;
  REQUIRE_FALSE(late);
  CHECK(code_of(late.error()) == errc::unavailable);
  CHECK(waited >= std::chrono::milliseconds{300});
  CHECK(waited < std::chrono::seconds{5}); // the poll interval: the deadline came first
  REQUIRE_FALSE(blocker.exec("ROLLBACK", "test: letting go"));
  check_matches(**h, w, 100);
}

TEST_CASE("through the platform, transactions and settled bets outlive the wallet's memory") {
  temp_dir dir;
  auto p = start_or_throw(test_platform_options(dir.str()));
  open_two_way(*p, two_way_market("m1", 200, 300));
  const std::string user = "deep";
  // More deposits and more settled bets than the wallet keeps, pipelined
  // (bets in waves under the wallet's holds_max).
  const int deposits = static_cast<int>(wallet_ledger_max) + 20;
  const int bets = static_cast<int>(wallet_settled_bets_max) + 10;
  {
    std::vector<std::future<caf::expected<wallet_receipt>>> receipts;
    for (int i = 0; i < deposits; ++i) {
      auto done = std::make_shared<std::promise<caf::expected<wallet_receipt>>>();
      receipts.push_back(done->get_future());
      p->deposit(user_id{user}, request_id{"d" + std::to_string(i)}, money{100},
                 [done](caf::expected<wallet_receipt> r) { done->set_value(std::move(r)); });
    }
    for (auto& r : receipts)
      REQUIRE(r.get());
  }
  std::vector<std::string> placed;
  for (int wave = 0; wave < bets; wave += 50) {
    std::vector<std::future<caf::expected<bet>>> answers;
    for (int i = wave; i < std::min(bets, wave + 50); ++i) {
      auto done = std::make_shared<std::promise<caf::expected<bet>>>();
      answers.push_back(done->get_future());
      p->place_bet(user_id{user}, bet_cmd("b" + std::to_string(i), "m1", "home", 1, 200),
                   [done](caf::expected<bet> r) { done->set_value(std::move(r)); });
    }
    for (auto& a : answers) {
      auto b = a.get();
      REQUIRE_MESSAGE(b, message_of(b.error()));
      placed.push_back(b->id.value);
    }
  }
  REQUIRE(settle(*p, "m1", {"home"}));
  REQUIRE(test::wait_until([&] {
    auto open = await<std::vector<bet>>([&](auto done) { p->bets(user_id{user}, false, done); });
    return open && open->empty();
  }, std::chrono::seconds{60}));

  // Every transaction, newest first, in pages.
  std::vector<wallet_transaction> all;
  transactions_query q{1000, 0};
  for (;;) {
    auto page = await<std::vector<wallet_transaction>>(
      [&](auto done) { p->transactions(user_id{user}, q, done); });
    REQUIRE_MESSAGE(page, message_of(page.error()));
    all.insert(all.end(), page->begin(), page->end());
    if (page->size() < q.limit)
      break;
    q.before_seq = std::stoull(page->back().transaction_id.substr(1));
  }
  REQUIRE(all.size() == static_cast<size_t>(deposits + 2 * bets));
  for (size_t i = 0; i + 1 < all.size(); ++i)
    CHECK(std::stoull(all[i].transaction_id.substr(1))
          > std::stoull(all[i + 1].transaction_id.substr(1)));
  CHECK(all.back().transaction_id == "t1");
  CHECK(all.back().available_after == money{100});
  CHECK(all.front().available_after == balance(*p, user).available);

  // The first bet left the wallet's memory long ago: still there, settled.
  auto first = get_bet(*p, user, placed.front());
  REQUIRE_MESSAGE(first, message_of(first.error()));
  CHECK(first->status == bet_status::won);
  CHECK(first->payout == money{2});
  auto unknown = get_bet(*p, user, "b-nope");
  REQUIRE_FALSE(unknown);
  CHECK(code_of(unknown.error()) == errc::not_found);
  // Another user's bet is not found either.
  auto theirs = get_bet(*p, "someone-else", placed.front());
  REQUIRE_FALSE(theirs);
  CHECK(code_of(theirs.error()) == errc::not_found);

  REQUIRE(p->history() != nullptr);
  auto settled = all_settled(*p->history(), user, 300);
  CHECK(settled.size() == static_cast<size_t>(bets));
  p->stop();
}
