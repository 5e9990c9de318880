// Bet sagas killed with SIGKILL of a real process, again and again, at
// random moments under load (saga_worker.cpp), then resumed by a platform
// started on the same data dir: every hold is resolved once the markets
// answer, no money is lost or created, the markets' accepted bets are the
// wallets' committed stakes, settlements cut short are paid exactly once,
// and every answer the killed processes gave is still the answer.

#include "money_fixture.hpp"

#include "support/process.hpp"
#include "support/seed.hpp"

#include <doctest/doctest.h>

#include <csignal>
#include <random>
#include <sstream>

using namespace wager;
using namespace wager::test;

namespace {

constexpr int kills = 30;
constexpr int users = 30;
// The most answers a run gives before it is killed; 0 kills it during its
// first sagas (or its set-up).
constexpr int answers_before_kill_max = 120;
constexpr auto line_deadline = std::chrono::seconds{20};

struct answer {
  char kind = 0; // B, D, W, S
  std::vector<std::string> words;
  bool ok() const {
    return std::find(words.begin(), words.end(), "ok") != words.end();
  }
};

answer parse(const std::string& line) {
  std::istringstream in{line};
  answer a;
  std::string word;
  while (in >> word)
    a.words.push_back(word);
  a.kind = a.words.empty() ? 0 : a.words[0][0];
  return a;
}

std::string worker() {
  return binary("tests/actors/wager_actors_saga_worker");
}

// Starts a worker, lets it answer `answers` requests, kills it, and keeps
// every line it printed. False if it never got ready.
bool run_and_kill(const std::string& dir, int run, uint64_t seed, int answers,
                  std::vector<answer>& out) {
  child_process child{worker(), {dir, std::to_string(run), std::to_string(users),
                                 std::to_string(seed)}};
  auto ready = child.read_line(line_deadline);
  if (!ready || *ready != "ready") {
    FAIL_CHECK("run " << run << " did not get ready: " << child.drain_stderr());
    return false;
  }
  for (int seen = 0; seen < answers; ++seen) {
    auto line = child.read_line(line_deadline);
    if (!line) {
      FAIL_CHECK("run " << run << " stopped answering: " << child.drain_stderr());
      break;
    }
    out.push_back(parse(*line));
  }
  child.signal(SIGKILL);
  auto status = child.wait(line_deadline);
  CHECK(status == 128 + SIGKILL);
  // Lines written before the kill are answers too.
  while (auto line = child.read_line(std::chrono::seconds{5}))
    out.push_back(parse(*line));
  return true;
}

// Every printed answer still holds: bets replay to the same bet or the
// same refusal, deposits and withdrawals to the same transaction.
void check_answers(platform& p, journal& j, const journal_audit& audit,
                   const std::vector<answer>& answers) {
  size_t checked = 0;
  for (auto& a : answers) {
    auto& w = a.words;
    CAPTURE(w.size() > 2 ? w[2] : std::string{});
    if (a.kind == 'B' && w.size() >= 10) {
      auto& user = w[1];
      auto cmd = bet_cmd(w[2], w[3], w[4], std::stoll(w[5]), std::stoi(w[6]),
                         *parse_accept_policy(w[7]));
      if (w[8] == "ok") {
        auto c = audit.committed.find(w[9]);
        REQUIRE_MESSAGE(c != audit.committed.end(), "answered bet " << w[9] << " is gone");
        CHECK(c->second.user == user);
        CHECK(c->second.stake.minor == cmd.stake.minor);
        CHECK(c->second.accepted.hundredths == std::stoi(w[10]));
        auto again = place(p, user, cmd);
        REQUIRE_MESSAGE(again, message_of(again.error()));
        CHECK(again->id.value == w[9]);
        ++checked;
      } else if (w[9] == "unavailable" || w[9] == "internal") {
        continue; // not a final answer: a retry decides
      } else if (w[9] == "insufficient_funds" || w[9] == "self_excluded") {
        // Refused by the wallet without events: the stored first answer
        // says so (replaying it after a restart is idempotency.test.cpp's).
        auto stored = j.find_request("wallet/" + user, w[2]);
        REQUIRE(stored);
        REQUIRE_MESSAGE(stored->has_value(), "refusal of " << w[2] << " not stored");
        CHECK((*stored)->result.find(w[9]) != std::string::npos);
        ++checked;
      } else {
        auto again = place(p, user, cmd);
        CHECK(to_code(code(again)) == w[9]);
        ++checked;
      }
    } else if ((a.kind == 'D' || a.kind == 'W') && w.size() >= 6 && w[4] == "ok") {
      auto amount = std::stoll(w[3]);
      auto again = a.kind == 'D' ? deposit(p, w[1], w[2], amount) : withdraw(p, w[1], w[2], amount);
      REQUIRE_MESSAGE(again, message_of(again.error()));
      CHECK(again->transaction_id == w[5]);
      ++checked;
    }
  }
  MESSAGE(checked << " answers of killed processes checked");
}

} // namespace

TEST_CASE("bet sagas killed with SIGKILL at random moments resume with no money lost or "
          "created") {
  temp_dir dir;
  auto seed = seed_for_run();
  INFO("WAGER_SEED=" << seed);
  std::mt19937_64 rng{seed};
  std::vector<answer> answers;
  for (int run = 0; run < kills; ++run) {
    auto count = static_cast<int>(rng() % (answers_before_kill_max + 1));
    if (!run_and_kill(dir.str(), run, rng(), count, answers))
      break;
  }

  auto p = start_or_throw(test_platform_options(dir.str()));
  // Nobody touches a wallet or a market here: the platform activates those
  // left with open sagas or payouts at start, and they finish on their own.
  journal_audit audit;
  bool drained = wait_until(
    [&] {
      audit = audit_journal(p->journal(), false);
      return audit.holds() == 0 && audit.outboxes_empty();
    },
    std::chrono::seconds{30});
  CHECK_MESSAGE(drained, audit.holds() << " holds open, e.g. "
                                       << (audit.open_holds.empty()
                                             ? std::string{}
                                             : audit.open_holds.begin()->first));
  audit = audit_journal(p->journal(), true);
  CHECK_MESSAGE(audit.violations.empty(), audit.first_violation());
  CHECK(audit.deposits.minor >= users * int64_t{100'000});
  MESSAGE(answers.size() << " answers, " << audit.committed.size() << " bets committed, "
                         << audit.credited.size() << " paid");
  // The live wallets agree with the journal.
  for (auto& [user, s] : audit.wallets) {
    auto b = balance(*p, user);
    CHECK(b.available == s.available);
    CHECK(b.held == s.held);
  }
  check_answers(*p, p->journal(), audit, answers);

  // Settling what is left open pays each bet exactly once.
  REQUIRE(settle(*p, "m0", {"home"}));
  REQUIRE(void_market(*p, "m1"));
  bool paid = wait_until(
    [&] {
      audit = audit_journal(p->journal(), false);
      return audit.outboxes_empty();
    },
    std::chrono::seconds{30});
  CHECK(paid);
  audit = audit_journal(p->journal(), true);
  CHECK_MESSAGE(audit.violations.empty(), audit.first_violation());
}
