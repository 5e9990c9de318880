#include "invariants.hpp"

#include <wager/actors/ledger_audit.hpp>
#include <wager/persistence/backup.hpp>
#include <wager/persistence/pg_journal.hpp>
#include <wager/runtime/errors.hpp>

#include <boost/json.hpp>

namespace wager::bench {

invariants_result check_invariants(const std::string& journal_path, uint64_t accepted_bets,
                                   uint64_t repeat_mismatches, const std::string& journal_url) {
  invariants_result r;
  ledger_audit audit;
  journal_options pg;
  pg.url = journal_url;
  auto checked = journal_url.empty() ? verify_journal(journal_path, &audit)
                                     : verify_pg_journal(pg, &audit);
  if (!checked) {
    r.detail["error"] = "cannot verify " + journal_path + ": " + message_of(checked.error());
    return r;
  }
  auto& money = audit.report();
  auto t = money.totals;
  bool totals_ok = t.deposits - t.withdrawals == t.available + t.held + t.house_result();
  // A slip's legs are a row each; legs of a slip another leg refused are
  // accepted and then released.
  bool rows_ok = money.bets_accepted - money.legs_released == accepted_bets;
  r.ok = checked->ok() && money.ok() && totals_ok && rows_ok && repeat_mismatches == 0;
  r.detail = boost::json::object{
    {"journal_ok", checked->ok()},
    {"money_ok", money.ok()},
    {"deposits_minor", t.deposits.minor},
    {"available_minor", t.available.minor},
    {"held_minor", t.held.minor},
    {"house_result_minor", t.house_result().minor},
    {"bet_rows", money.bets_accepted - money.legs_released},
    {"bets_told_accepted", accepted_bets},
    {"repeat_mismatches", repeat_mismatches},
  };
  if (!checked->problems.empty())
    r.detail["first_problem"] = checked->problems.front();
  return r;
}

} // namespace wager::bench
