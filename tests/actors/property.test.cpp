// A rapidcheck property over random operation sequences through the
// embedded platform: deposits, withdrawals, win and each-way bets under
// every policy, price and status changes, settlement (with placed runners
// and dead heats) and void, results rolled back, non-runners, cancellations
// (before and after the result), new markets, deposit limits and
// self-exclusion, replays of earlier requests, and platform restarts on the
// same data dir. A model predicts
// every answer (accepted or refused, and why) and every balance; after each
// step the live balances must equal the model's and the journal audit must
// find the money invariant intact.

#include "money_fixture.hpp"

#include <doctest/doctest.h>
#include <rapidcheck.h>

#include <cstdlib>
#include <limits>
#include <map>
#include <optional>
#include <set>

using namespace wager;
using namespace wager::test;

namespace {

// A value in [lo, hi), uniform whatever rapidcheck's current size (inRange
// scales its range with the size, so small sizes would only ever pick lo).
template <class T>
T any_in(T lo, T hi) {
  return *rc::gen::resize(rc::kNominalSize, rc::gen::inRange<T>(lo, hi));
}

// One of `choices`, uniformly (see any_in).
template <class T>
T one_of(std::initializer_list<T> choices) {
  return *(choices.begin() + any_in<size_t>(0, choices.size()));
}

// Options whose wallets' clock runs from the last UTC midnight before the
// run: a run lasts seconds and so never crosses a midnight, and the model
// keeps one day of deposits (issue #20: a run that crossed one failed).
platform_options options_within_one_day() {
  constexpr int64_t day_ms = 86'400'000;
  auto since_midnight_ms = wall_ms() % day_ms;
  auto options = test_platform_options("");
  options.wallet.clock_ms = [since_midnight_ms] { return wall_ms() - since_midnight_ms; };
  return options;
}

constexpr int users = 3;
constexpr int64_t max_stake = 2'000;
constexpr int64_t max_liability = 6'000;

struct model_bet {
  std::string user;
  std::string selection;
  int64_t stake = 0;
  int32_t price = 0;
  bool each_way = false;
  bool refunded = false; // voided: a non-runner, a cancellation
  int64_t paid = 0;       // what the market's result paid it (0 once rolled back)

  int64_t total() const { return stake * (each_way ? 2 : 1); }
};

// Every market's each-way terms: two places (both runners) at 1/4. A place
// half at price p pays stake x (1 + (p - 1) / 4) = stake x (p + 300) / 400.
constexpr uint32_t each_way_places = 2;

// The liability the market counts for a bet, each half rounded up.
int64_t model_liability(int64_t stake, int32_t p, bool each_way) {
  auto win = (stake * (p - 100) + 99) / 100;
  if (!each_way)
    return win;
  return win + (stake * (p - 100) + 399) / 400;
}

struct model_market {
  market_status status = market_status::open;
  std::map<std::string, int32_t> prices{{"home", 200}, {"away", 200}};
  std::map<std::string, int64_t> liability;
  std::vector<model_bet> bets;
  bool resulted = false;
  std::vector<std::string> winners;
  std::vector<std::string> placed;
  bool dead_heat = false; // two winners, each at 1/2
  bool voided = false;
  bool rolled_back = false; // a result taken back, none since
  std::set<std::string> withdrawn;
};

// A request and its first answer.
struct recorded {
  char kind = 0; // D, W, B
  std::string user;
  std::string request;
  int64_t amount = 0;
  place_bet_cmd bet_request;
  errc error = errc::none;
  std::string detail;
  wallet_receipt receipt;
  bet answer;
};

class harness {
public:
  harness() {
    for (int i = 0; i < users; ++i)
      available_["u" + std::to_string(i)] = 0;
    new_market();
  }

  void step() {
    auto kind = any_in(0, 100);
    if (kind < 15)
      return move_money(true);
    if (kind < 25)
      return move_money(false);
    if (kind < 58)
      return place_bet();
    if (kind < 68)
      return change_price();
    if (kind < 76)
      return change_status();
    if (kind < 80)
      return result_market();
    if (kind < 82)
      return new_market();
    if (kind < 84)
      return withdraw_runner();
    if (kind < 85)
      return cancel_all();
    if (kind < 86)
      return change_limits();
    if (kind < 88)
      return unsettle();
    if (kind < 97)
      return replay();
    restart();
  }

  // After every step: the live balances are the model's (payouts may still
  // be on their way) and the journal's money adds up.
  void check() {
    bool agreed = wait_until(
      [&] {
        for (auto& [user, expected] : available_) {
          auto b = balance(w_.p(), user);
          if (b.available.minor != expected || b.held.minor != 0)
            return false;
        }
        // The market records the wallets' acknowledgements after they pay.
        return audit_journal(w_.p().journal(), false).outboxes_empty();
      },
      std::chrono::seconds{10});
    for (auto& [user, expected] : available_) {
      auto b = balance(w_.p(), user);
      RC_ASSERT(b.held.minor == 0);
      if (b.available.minor != expected)
        RC_FAIL(user + " has " + std::to_string(b.available.minor) + ", the model says "
                + std::to_string(expected));
    }
    RC_ASSERT(agreed);
    auto audit = audit_journal(w_.p().journal(), true);
    if (!audit.violations.empty())
      RC_FAIL(audit.first_violation());
    for (auto& [id, m] : markets_) {
      auto view = get_market(w_.p(), id);
      RC_ASSERT(static_cast<bool>(view));
      RC_ASSERT(view->status == m.status);
      for (auto& [sel, l] : m.liability)
        RC_ASSERT(view->liability[sel] == l);
    }
  }

private:
  std::string pick_user() { return "u" + std::to_string(any_in(0, users)); }

  std::string pick_market() {
    auto i = any_in<size_t>(0, markets_.size());
    return std::next(markets_.begin(), static_cast<ptrdiff_t>(i))->first;
  }

  std::string next_request() { return "q" + std::to_string(++requests_); }

  // Safer gambling: a daily deposit limit (0 removes it) and, rarely,
  // self-exclusion for 200 days, which cannot be lifted. A first or lower
  // limit applies at once; a higher one or a removal waits 24 hours, longer
  // than any run, so it never applies here.
  void change_limits() {
    auto user = pick_user();
    set_limits_cmd cmd;
    auto limit = any_in<int64_t>(0, 10'000);
    cmd.daily_deposit_limit = limit;
    bool exclude = any_in(0, 5) == 0;
    if (exclude)
      cmd.self_exclude_until_ms = wall_ms() + 200 * int64_t{86'400'000};
    auto answer = set_limits(w_.p(), user, cmd);
    RC_LOG() << "limits " << user << " daily " << limit << (exclude ? " excluded" : "")
             << " -> " << to_code(code(answer)) << "\n";
    RC_ASSERT(static_cast<bool>(answer));
    auto& in_force = daily_limit_[user];
    if (limit > 0 && (!in_force || limit <= *in_force))
      in_force = limit;
    excluded_[user] = excluded_[user] || exclude;
  }

  void move_money(bool is_deposit) {
    recorded r;
    r.kind = is_deposit ? 'D' : 'W';
    r.user = pick_user();
    r.request = next_request();
    r.amount = any_in<int64_t>(1, is_deposit ? 5'000 : 8'000);
    auto& available = available_[r.user];
    auto refusal = errc::none;
    if (is_deposit && excluded_[r.user])
      refusal = errc::self_excluded;
    else if (is_deposit && daily_limit_[r.user]
             && deposited_today_[r.user] + r.amount > *daily_limit_[r.user])
      refusal = errc::limit_exceeded;
    else if (!is_deposit && available < r.amount)
      refusal = errc::insufficient_funds;
    auto answer = is_deposit ? deposit(w_.p(), r.user, r.request, r.amount)
                             : withdraw(w_.p(), r.user, r.request, r.amount);
    RC_LOG() << (is_deposit ? "deposit " : "withdraw ") << r.user << " " << r.request << " "
             << r.amount << " -> " << to_code(code(answer)) << "\n";
    if (refusal != errc::none) {
      RC_ASSERT(code(answer) == refusal);
      r.error = refusal;
    } else {
      RC_ASSERT(static_cast<bool>(answer));
      available += is_deposit ? r.amount : -r.amount;
      if (is_deposit)
        deposited_today_[r.user] += r.amount;
      RC_ASSERT(answer->available.minor == available);
      r.receipt = *answer;
    }
    history_.push_back(std::move(r));
  }

  // The decision the API promises for a bet, in the order the checks run:
  // the wallet's funds, then the market's status, price, stake and liability.
  std::pair<errc, int32_t> predict(const model_market& m, const place_bet_cmd& cmd,
                                   int64_t available, bool excluded) {
    if (excluded)
      return {errc::self_excluded, 0};
    if (available < cmd.stake.minor * (cmd.each_way ? 2 : 1))
      return {errc::insufficient_funds, 0};
    if (m.status != market_status::open)
      return {errc::market_not_open, 0};
    if (m.withdrawn.count(cmd.selection.value) > 0)
      return {errc::not_found, 0};
    auto current = price{m.prices.at(cmd.selection.value)};
    auto at = accepted_price(cmd.accept, cmd.asked, current);
    if (!at)
      return {errc::price_changed, current.hundredths};
    if (cmd.stake.minor > max_stake)
      return {errc::limit_exceeded, 0};
    auto now = m.liability.count(cmd.selection.value) ? m.liability.at(cmd.selection.value) : 0;
    if (now + model_liability(cmd.stake.minor, at->hundredths, cmd.each_way) > max_liability)
      return {errc::limit_exceeded, 0};
    return {errc::none, at->hundredths};
  }

  void place_bet() {
    recorded r;
    r.kind = 'B';
    r.user = pick_user();
    r.request = next_request();
    auto market = pick_market();
    auto& m = markets_[market];
    auto selection = one_of<std::string>({"home", "away"});
    auto asked = m.prices[selection] + one_of({-5, 0, 0, 5});
    auto policy = one_of({accept_policy::exact, accept_policy::better, accept_policy::any});
    auto stake = any_in<int64_t>(1, 2'500);
    r.bet_request = bet_cmd(r.request, market, selection, stake, asked, policy);
    r.bet_request.each_way = any_in(0, 4) == 0;
    auto each_way = r.bet_request.each_way;
    auto [expected, at] = predict(m, r.bet_request, available_[r.user], excluded_[r.user]);
    auto answer = place(w_.p(), r.user, r.bet_request);
    RC_LOG() << "bet " << r.user << " " << r.request << " " << market << " " << selection << " "
             << stake << " @" << asked << " " << to_string(policy)
             << (each_way ? " each-way" : "") << " -> "
             << to_code(code(answer)) << "\n";
    if (expected != errc::none) {
      if (code(answer) != expected)
        RC_FAIL("bet " + r.request + " answered " + std::string{to_code(code(answer))}
                + ", the model says " + std::string{to_code(expected)});
      r.error = expected;
      r.detail = detail_of(answer.error());
      if (expected == errc::price_changed)
        RC_ASSERT(r.detail == format_price(price{at}));
    } else {
      if (!answer)
        RC_FAIL("bet " + r.request + " refused: " + message_of(answer.error()));
      RC_ASSERT(answer->accepted.hundredths == at);
      RC_ASSERT(answer->stake.minor == stake);
      RC_ASSERT(answer->status == bet_status::open);
      RC_ASSERT(answer->each_way == each_way);
      available_[r.user] -= stake * (each_way ? 2 : 1);
      m.liability[selection] += model_liability(stake, at, each_way);
      m.bets.push_back({r.user, selection, stake, at, each_way});
      r.answer = *answer;
    }
    history_.push_back(std::move(r));
  }

  void change_price() {
    auto market = pick_market();
    auto& m = markets_[market];
    auto selection = one_of<std::string>({"home", "away"});
    auto to = any_in(180, 221);
    auto answer = set_price(w_.p(), market, selection, to);
    RC_LOG() << "price " << market << " " << selection << " " << to << " -> "
             << to_code(code(answer)) << "\n";
    if (m.resulted) {
      RC_ASSERT(code(answer) == errc::illegal_transition);
      return;
    }
    RC_ASSERT(static_cast<bool>(answer));
    m.prices[selection] = to;
  }

  void change_status() {
    auto market = pick_market();
    auto& m = markets_[market];
    auto to = one_of({market_status::open, market_status::suspended, market_status::closed});
    auto answer = set_status(w_.p(), market, to);
    RC_LOG() << "status " << market << " " << to_string(to) << " -> " << to_code(code(answer))
             << "\n";
    if (m.status == to) {
      RC_ASSERT(static_cast<bool>(answer));
    } else if (transition_allowed(m.status, to)) {
      RC_ASSERT(static_cast<bool>(answer));
      m.status = to;
    } else {
      RC_ASSERT(code(answer) == errc::illegal_transition);
    }
  }

  void result_market() {
    auto market = pick_market();
    auto& m = markets_[market];
    bool voided = any_in(0, 3) == 0;
    std::vector<std::string> winners, placed;
    bool dead_heat = false;
    if (!voided) {
      auto which = any_in(0, 5);
      if (which == 0 || which == 1) {
        winners = {"home", "away"};
        dead_heat = which == 1; // a dead heat for first: each at 1/2
      } else {
        auto first = which == 2 ? std::string{"home"} : std::string{"away"};
        auto second = first == "home" ? std::string{"away"} : std::string{"home"};
        winners = {first};
        if (which == 4)
          placed = {second}; // second: each-way bets on it win their place half
      }
    }
    market_resulted result{winners, voided, placed, {}, {}, {}};
    if (dead_heat)
      for (auto& w : winners)
        result.dead_heat[w] = ratio{1, 2};
    // A non-runner can only be void.
    bool names_withdrawn = false;
    for (auto& w : m.withdrawn) {
      if (std::find(winners.begin(), winners.end(), w) != winners.end()
          || std::find(placed.begin(), placed.end(), w) != placed.end())
        names_withdrawn = true;
    }
    auto answer = await<market_view>(
      [&](auto done) { w_.p().settle_market_result(market_id{market}, result, done); });
    RC_LOG() << (voided ? "void " : "settle ") << market << " " << winners.size()
             << " winners, " << placed.size() << " placed" << (dead_heat ? ", dead heat" : "")
             << " -> " << to_code(code(answer)) << "\n";
    if (m.resulted) {
      if (m.voided == voided && m.winners == winners && m.placed == placed
          && m.dead_heat == dead_heat)
        RC_ASSERT(static_cast<bool>(answer)); // settling again changes nothing
      else if (names_withdrawn && !voided)
        RC_ASSERT(code(answer) == errc::invalid_field);
      else
        RC_ASSERT(code(answer) == errc::illegal_transition);
      return;
    }
    if (names_withdrawn && !voided) {
      RC_ASSERT(code(answer) == errc::invalid_field);
      return;
    }
    RC_ASSERT(static_cast<bool>(answer));
    m.resulted = true;
    m.voided = voided;
    m.winners = winners;
    m.placed = placed;
    m.dead_heat = dead_heat;
    m.status = voided ? market_status::voided : market_status::settled;
    m.rolled_back = false;
    for (auto& b : m.bets) {
      if (b.refunded)
        continue;
      if (voided) {
        b.paid = b.total();
      } else {
        bool won = std::find(winners.begin(), winners.end(), b.selection) != winners.end();
        bool was_placed = std::find(placed.begin(), placed.end(), b.selection) != placed.end();
        // Each half rounded down on its own.
        b.paid = 0;
        if (won)
          b.paid += dead_heat ? b.stake * b.price / 200 : b.stake * b.price / 100;
        if (b.each_way && (won || was_placed))
          b.paid += b.stake * (b.price + 300) / 400;
      }
      available_[b.user] += b.paid;
    }
  }

  // The result taken back: every payout it made leaves its wallet (which
  // may go below zero), and the market is closed for a new result.
  void unsettle() {
    auto market = pick_market();
    auto& m = markets_[market];
    auto answer = await<market_view>(
      [&](auto done) { w_.p().unsettle_market(market_id{market}, done); });
    RC_LOG() << "unsettle " << market << " -> " << to_code(code(answer)) << "\n";
    if (!m.resulted) {
      if (m.rolled_back)
        RC_ASSERT(static_cast<bool>(answer)); // rolled back already: nothing more
      else
        RC_ASSERT(code(answer) == errc::illegal_transition);
      return;
    }
    RC_ASSERT(static_cast<bool>(answer));
    m.resulted = false;
    m.rolled_back = true;
    m.voided = false;
    m.winners.clear();
    m.placed.clear();
    m.dead_heat = false;
    m.status = market_status::closed;
    for (auto& b : m.bets) {
      available_[b.user] -= b.paid;
      b.paid = 0;
    }
  }

  // A runner withdrawn: its bets refunded at once, its liability gone.
  void withdraw_runner() {
    auto market = pick_market();
    auto& m = markets_[market];
    auto selection = one_of<std::string>({"home", "away"});
    auto answer = await<market_view>([&](auto done) {
      w_.p().withdraw_selection(market_id{market}, selection_id{selection}, done);
    });
    RC_LOG() << "withdraw " << market << " " << selection << " -> " << to_code(code(answer))
             << "\n";
    if (m.withdrawn.count(selection) > 0) {
      RC_ASSERT(static_cast<bool>(answer));
      return;
    }
    if (m.resulted) {
      RC_ASSERT(code(answer) == errc::illegal_transition);
      return;
    }
    RC_ASSERT(static_cast<bool>(answer));
    m.withdrawn.insert(selection);
    m.liability.erase(selection);
    for (auto& b : m.bets)
      if (b.selection == selection && !b.refunded) {
        b.refunded = true;
        available_[b.user] += b.total();
      }
  }

  // Every bet of a market cancelled, before or after its result.
  void cancel_all() {
    auto market = pick_market();
    auto& m = markets_[market];
    auto answer = await<market_view>([&](auto done) {
      w_.p().cancel_bets(market_id{market}, 0, std::numeric_limits<int64_t>::max(), done);
    });
    RC_LOG() << "cancel " << market << " -> " << to_code(code(answer)) << "\n";
    RC_ASSERT(static_cast<bool>(answer));
    // After the result, what it paid goes back and the stake is refunded.
    for (auto& b : m.bets)
      if (!b.refunded) {
        b.refunded = true;
        available_[b.user] += b.total() - b.paid;
        b.paid = 0;
        m.liability[b.selection] = 0;
      }
  }

  void new_market() {
    auto id = "m" + std::to_string(markets_.size());
    auto d = two_way_market(id, 200, 200, max_stake, max_liability);
    d.each_way = {each_way_places, ratio{1, 4}};
    open_two_way(w_.p(), d);
    RC_LOG() << "new market " << id << "\n";
    markets_[id];
  }

  // A replay of an earlier request, same body: its first answer, nothing moved.
  void replay() {
    if (history_.empty())
      return;
    auto& r = history_[any_in<size_t>(0, history_.size())];
    RC_LOG() << "replay " << r.kind << " " << r.user << " " << r.request << "\n";
    if (r.kind == 'B') {
      auto again = place(w_.p(), r.user, r.bet_request);
      if (r.error != errc::none) {
        if (code(again) != r.error)
          RC_FAIL("replayed bet " + r.request + " answered "
                  + std::string{to_code(code(again))} + ", first "
                  + std::string{to_code(r.error)});
        RC_ASSERT(detail_of(again.error()) == r.detail);
      } else {
        if (!again)
          RC_FAIL("replayed bet " + r.request + " refused: " + message_of(again.error()));
        RC_ASSERT(again->id == r.answer.id);
        RC_ASSERT(again->accepted == r.answer.accepted);
        RC_ASSERT(again->stake == r.answer.stake);
        RC_ASSERT(again->each_way == r.answer.each_way);
        RC_ASSERT(again->status == bet_status::open);
      }
      return;
    }
    auto again = r.kind == 'D' ? deposit(w_.p(), r.user, r.request, r.amount)
                               : withdraw(w_.p(), r.user, r.request, r.amount);
    if (r.error != errc::none) {
      if (code(again) != r.error)
        RC_FAIL(std::string{"replayed "} + r.kind + " " + r.request + " answered "
                + std::string{to_code(code(again))} + ", first " + std::string{to_code(r.error)});
      return;
    }
    if (!again)
      RC_FAIL("replayed " + r.request + " refused: " + message_of(again.error()));
    RC_ASSERT(again->transaction_id == r.receipt.transaction_id);
    RC_ASSERT(again->available == r.receipt.available);
  }

  void restart() {
    RC_LOG() << "restart\n";
    w_.restart();
    // A settlement cut short resumes when its market is activated (that it
    // is resumed without being asked is settlement.test.cpp's concern).
    for (auto& [id, m] : markets_)
      RC_ASSERT(static_cast<bool>(get_market(w_.p(), id)));
  }

  money_world w_{options_within_one_day()};
  std::map<std::string, int64_t> available_;
  // Deposits are counted per UTC day; the wallets' clock keeps a run in one.
  std::map<std::string, int64_t> deposited_today_;
  std::map<std::string, std::optional<int64_t>> daily_limit_;
  std::map<std::string, bool> excluded_;
  std::map<std::string, model_market> markets_;
  std::vector<recorded> history_;
  int requests_ = 0;
};

} // namespace

TEST_CASE("random operation sequences with restarts keep every answer and balance as the model "
          "predicts and the money invariant intact") {
  // Few, short sequences by default: each step is a durable round trip and
  // a restart starts a platform. RC_PARAMS overrides (e.g. for a long soak).
  ::setenv("RC_PARAMS", "max_success=100", 0);
  CHECK(rc::check("operation sequences with restarts match the model", [] {
    harness h;
    auto steps = any_in(1, 50);
    for (int i = 0; i < steps; ++i) {
      h.step();
      h.check();
    }
  }));
}
