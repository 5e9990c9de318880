#pragma once

// The history read model: every wallet's transactions and settled bets, in
// tables built from the journal's ordered log in the background, so that
// nothing a user ever did ages out of the API's lists. A wallet keeps only
// its recent entries in memory (wallet_ledger_max, wallet_settled_bets_max);
// a list the memory cannot complete, and a bet the wallet no longer holds,
// are read here.
//
// The model is a projection with its own position: a thread reads the
// frames after it (journal::read_log), folds the wallet events they hold
// into rows, and commits the rows with the new position and that frame's
// SHA-256 in one transaction. It lives in its own SQLite file
// (<data dir>/history.db), so it never takes the journal's write lock, and
// it is only ever derived: a file that does not describe the journal's log
// (a restored journal, a damaged or missing file) is emptied and rebuilt
// from the first frame. Several processes sharing one data dir share the
// file: each commit checks that the position it read is still the file's,
// so every frame is folded in once.
//
// Reads are exact: each waits until the projection has taken in every frame
// the log held when the read was asked, so it sees every entry the wallet's
// memory had let go of and every acknowledged one (read_timeout bounds the
// wait: errc::unavailable past it, for a projection still rebuilding).
// Reads run on the journal's reader threads and answer there.

#include "wager/actors/bet.hpp"
#include "wager/actors/ids.hpp"
#include "wager/actors/wallet.hpp"
#include "wager/persistence/journal.hpp"

#include <caf/expected.hpp>

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace prometheus {
class Registry;
}

namespace wager {

struct history_options {
  std::string path; // the model's SQLite file; created if missing

  // Frames read and folded per transaction, at most (the journal reads at
  // most journal_options::read_page_max at once).
  uint32_t frames_per_batch = 4096;
  // How often the projection looks for new frames when no read waits for
  // it; a read that finds it behind wakes it at once. Long on purpose: the
  // tables are keyed by wallet, so a batch's rows land at random places,
  // and the longer the batch the more rows share each page it writes
  // (measured in docs/performance.md, "The history read model").
  std::chrono::milliseconds poll_interval{5000};
  // How long a read waits for the projection to reach the log's end.
  std::chrono::milliseconds read_timeout{5000};

  // wager_history_* metrics; may be null.
  prometheus::Registry* metrics_registry = nullptr;
};

// A page of settled bets, newest settled first.
struct settled_bets_query {
  uint32_t limit = 100;
  std::string before; // a bet_id: only bets settled before it; empty: from the newest
};

class wallet_history {
public:
  // Opens (or creates) the file and starts the projection on `log`, which
  // must stay open until stop() has returned. Refused when the file cannot
  // be opened or the journal has no ordered log (the row layout).
  static caf::expected<std::unique_ptr<wallet_history>> open(history_options options,
                                                            journal& log);

  ~wallet_history(); // stop()
  wallet_history(const wallet_history&) = delete;
  wallet_history& operator=(const wallet_history&) = delete;

  // The last frame folded in.
  uint64_t position() const;

  // Newest first: transactions older than query.before_seq (all when 0),
  // at most query.limit.
  void transactions(const user_id& user, transactions_query query,
                    result_callback<std::vector<wallet_transaction>> done);

  // One bet, accepted and not refused; errc::not_found when the user has no
  // such bet.
  void bet(const user_id& user, const bet_id& id, result_callback<wager::bet> done);

  // Settled bets, newest settled first. errc::invalid_field when `before`
  // is not a settled bet of the user.
  void settled_bets(const user_id& user, settled_bets_query query,
                    result_callback<std::vector<wager::bet>> done);

  // Ends the projection after the batch in hand; waiting reads fail with
  // errc::unavailable. Idempotent.
  void stop();

private:
  struct impl;
  explicit wallet_history(std::shared_ptr<impl> d);
  std::shared_ptr<impl> impl_;
};

// The wallet's answer to a list, completed from `history` when the memory
// is short of older entries (the page's `complete` is false); `history`
// null serves the memory alone.
void complete_transactions(wallet_history* history, const user_id& user,
                           const transactions_query& query, transactions_page page,
                           result_callback<std::vector<wallet_transaction>> done);

// The wallet's answer to a bet query; its not_found is looked up in
// `history` (a bet settled long ago).
void complete_bet(wallet_history* history, const user_id& user, const bet_id& id,
                  caf::expected<bet> from_wallet, result_callback<bet> done);

} // namespace wager
