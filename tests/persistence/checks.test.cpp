// Both sides of the disk: with checks on, a snapshot that does not decode to
// the state that wrote it, or a journal that does not rebuild the live state,
// stops the process (WAGER_ASSERT) instead of letting money move on top of
// it. The stopping cases run in a forked child, which must die by SIGABRT.

#include "journal_support.hpp"

#include "support/temp_dir.hpp"

#include <doctest/doctest.h>

#include <csignal>
#include <sys/wait.h>
#include <unistd.h>

using namespace wager;
using namespace wager::test;

namespace {

// Runs `body` in a child process (forked before any journal thread exists)
// and returns how it ended: the signal that killed it, or 0.
template <class F>
int run_in_child(F&& body) {
  auto pid = ::fork();
  REQUIRE(pid >= 0);
  if (pid == 0) {
    // The child dies by the plain signal (not doctest's crash handler), and
    // its assertion message stays out of the test's output.
    std::signal(SIGABRT, SIG_DFL);
    if (std::freopen("/dev/null", "w", stderr) == nullptr)
      std::_Exit(3);
    body();
    std::_Exit(0);
  }
  int status = 0;
  REQUIRE(::waitpid(pid, &status, 0) == pid);
  return WIFSIGNALED(status) ? WTERMSIG(status) : 0;
}

} // namespace

TEST_CASE("with checks on, a snapshot that does not rebuild its state stops the process") {
  temp_dir dir;
  auto path = (dir / "journal.db").string();
  auto died_by = run_in_child([&] {
    set_journal_checks(true);
    auto j = open_or_fail(options_at(path));
    auto r = account_replay();
    r.encode = [](const account&) { return std::string{R"({"balance":0,"deposits":0,"withdrawals":0})"}; };
    account live{10, 1, 0};
    static_cast<void>(append_sync(*j, "wallet/u1", 0, {amount_event("deposited", 10)}));
    static_cast<void>(save_state_snapshot(*j, "wallet/u1", live, 1, r, {}));
  });
  CHECK(died_by == SIGABRT);
}

TEST_CASE("with checks on, a live state the journal does not rebuild stops the process") {
  temp_dir dir;
  auto path = (dir / "journal.db").string();
  auto died_by = run_in_child([&] {
    set_journal_checks(true);
    auto j = open_or_fail(options_at(path));
    static_cast<void>(append_sync(*j, "wallet/u1", 0, {amount_event("deposited", 10)}));
    account wrong{11, 1, 0};
    check_recovery(*j, "wallet/u1", wrong, 1, account_replay());
    j.reset(); // runs the queued check before closing
  });
  CHECK(died_by == SIGABRT);
}

TEST_CASE("with checks on, states that round-trip pass both checks") {
  set_journal_checks(true);
  temp_dir dir;
  auto j = open_or_fail(options_at((dir / "journal.db").string()));
  auto r = account_replay();
  account live;
  for (uint64_t seq = 0; seq < 6; ++seq) {
    auto e = amount_event(seq % 2 ? "withdrawn" : "deposited", 5 + static_cast<int64_t>(seq));
    REQUIRE(append_sync(*j, "wallet/u1", seq, {e}));
    live.apply(e);
    check_recovery(*j, "wallet/u1", live, seq + 1, r);
  }
  REQUIRE(save_sync(*j, {"wallet/u1", 6, 1, r.encode(live), 0}));
  CHECK(*recovery_matches(*j, "wallet/u1", live, 6, r));
  j.reset(); // every queued check ran without stopping the process
  CHECK(journal_checks_enabled());
}
