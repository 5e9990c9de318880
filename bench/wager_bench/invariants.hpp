#pragma once

// The end-of-run check of shared/WORKLOAD.md, over the journal file itself
// (the `wagerctl verify` pass): journal integrity, the money audit (deposits
// = available + held + house result, no negative balance, every accepted
// bet committed once), and bet rows = the distinct bets the clients were
// told were accepted. A run whose check fails has no number.

#include <boost/json/object.hpp>

#include <cstdint>
#include <string>

namespace wager::bench {

struct invariants_result {
  bool ok = false;
  boost::json::object detail; // what was checked and what failed
};

// Reads `journal_path` read-only (safe while a node writes to it).
// `accepted_bets` is the number of bet rows the clients' distinct accepted
// bets make (a single one, a slip one per leg) since the journal was
// created; `repeat_mismatches` repeats whose answer
// differed from the first. A `journal_url` (postgresql://) checks the
// journal on PostgreSQL instead of the file.
invariants_result check_invariants(const std::string& journal_path, uint64_t accepted_bets,
                                   uint64_t repeat_mismatches,
                                   const std::string& journal_url = {});

} // namespace wager::bench
