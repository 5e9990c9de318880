#pragma once

// doctest checks the money suites share, over a money_world
// (money_fixture.hpp): balances and liability as numbers, waiting for a bet
// to settle, and the product's money audit once everything is paid.

#include "money_fixture.hpp"

#include "wager/actors/ledger_audit.hpp"

#include <doctest/doctest.h>

#include <string>

namespace wager::test {

inline int64_t available(money_world& w, const std::string& user) {
  return balance(w.p(), user).available.minor;
}

// A selection's liability as its market shows it (0 when it has none).
inline int64_t liability(money_world& w, const std::string& market,
                         const std::string& sel = "home") {
  auto v = get_market(w.p(), market);
  REQUIRE(v);
  auto i = v->liability.find(sel);
  return i == v->liability.end() ? 0 : i->second;
}

// Waits until the bet's status passes `holds`; its state then. The test
// fails, naming `wanted` and the status the bet has, after 30 s.
template <class Predicate>
bet bet_when(money_world& w, const std::string& user, const std::string& id, Predicate holds,
             const std::string& wanted) {
  caf::expected<bet> b = make_error(errc::not_found);
  bool done = wait_until(
    [&] {
      b = get_bet(w.p(), user, id);
      return b && holds(b->status);
    },
    30s);
  REQUIRE_MESSAGE(done, "bet " << id << " never became " << wanted << " (it is "
                                << (b ? to_string(b->status) : "unknown") << ")");
  return *b;
}

// Waits until the bet's status is no longer `from` (open by default).
inline bet settled_bet(money_world& w, const std::string& user, const std::string& id,
                       bet_status from = bet_status::open) {
  return bet_when(
    w, user, id, [from](bet_status s) { return s != from; },
    "other than " + std::string{to_string(from)});
}

// Waits until the bet is in `status`.
inline bet bet_in(money_world& w, const std::string& user, const std::string& id,
                  bet_status status) {
  return bet_when(
    w, user, id, [status](bet_status s) { return s == status; }, std::string{to_string(status)});
}

// The product's money audit over the journal, once every market's outbox
// is empty and no stake is held; it must find nothing wrong.
inline void audit_clean(money_world& w) {
  bool quiet = wait_until(
    [&] {
      auto a = audit_journal(w.p().journal(), false);
      return a.outboxes_empty() && a.holds() == 0;
    },
    30s);
  CHECK_MESSAGE(quiet, "payouts or holds still open after 30 s");
  auto report = audit_ledger(w.p().journal());
  REQUIRE(report);
  for (auto& v : report->violations)
    FAIL_CHECK(v.to_string());
  CHECK(report->payouts_in_flight == 0);
}

} // namespace wager::test
