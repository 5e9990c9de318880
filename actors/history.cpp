#include "wager/actors/history.hpp"

#include "wager/actors/wallet_state.hpp"
#include "wager/persistence/sqlite_db.hpp"
#include "wager/runtime/errors.hpp"
#include "wager/runtime/log.hpp"
#include "wager/runtime/overloaded.hpp"

#include <boost/json.hpp>
#include <prometheus/gauge.h>
#include <prometheus/registry.h>
#include <sqlite3.h>

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <limits>
#include <map>
#include <mutex>
#include <thread>

#include <pthread.h>
#include <unordered_map>

namespace wager {

namespace json = boost::json;

namespace {

// Version 2 added each-way bets (each_way, place_fraction); version 3 the
// amount a bet holds (held) and a slip's type and legs (slip: its JSON as
// slip_to_json writes it, empty for a single); version 4 cash-outs
// (cashed_out: what they paid, cashed_out_stake: the stake they took).
constexpr int64_t history_schema_version = 4;

// One table a row per wallet (the fold's state: its last seq and available
// balance, for each entry's available_after), the entries, and the bets
// (a bet whose hold is undecided at the end of a batch is kept as 'held',
// never shown). The position row says which frame the rows stand at.
constexpr const char* history_schema_sql = R"(
CREATE TABLE IF NOT EXISTS history_position (
  id INTEGER PRIMARY KEY CHECK (id = 1),
  position INTEGER NOT NULL,
  hash BLOB NOT NULL);
CREATE TABLE IF NOT EXISTS history_wallets (
  wallet TEXT PRIMARY KEY,
  seq INTEGER NOT NULL,
  available INTEGER NOT NULL) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS history_transactions (
  wallet TEXT NOT NULL,
  seq INTEGER NOT NULL,
  kind TEXT NOT NULL,
  amount INTEGER NOT NULL,
  available_after INTEGER NOT NULL,
  at INTEGER NOT NULL,
  ref TEXT NOT NULL,
  PRIMARY KEY (wallet, seq)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS history_bets (
  wallet TEXT NOT NULL,
  bet TEXT NOT NULL,
  market TEXT NOT NULL,
  selection TEXT NOT NULL,
  stake INTEGER NOT NULL,
  price INTEGER NOT NULL,
  status TEXT NOT NULL,
  payout INTEGER NOT NULL,
  placed_at INTEGER NOT NULL,
  settled_at INTEGER NOT NULL,
  settled_seq INTEGER NOT NULL,
  each_way INTEGER NOT NULL,
  place_fraction TEXT NOT NULL,
  held INTEGER NOT NULL,
  slip TEXT NOT NULL,
  cashed_out INTEGER NOT NULL DEFAULT 0,
  cashed_out_stake INTEGER NOT NULL DEFAULT 0,
  PRIMARY KEY (wallet, bet)) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS history_bets_settled
  ON history_bets (wallet, settled_seq) WHERE settled_seq > 0;
INSERT OR IGNORE INTO history_position (id, position, hash) VALUES (1, 0, zeroblob(32));
)";

constexpr const char* history_drop_sql = R"(
DROP TABLE IF EXISTS history_position;
DROP TABLE IF EXISTS history_wallets;
DROP TABLE IF EXISTS history_transactions;
DROP TABLE IF EXISTS history_bets;
)";

constexpr std::string_view history_wallet_prefix = "wallet/";
constexpr std::string_view history_broken_detail = "history-broken";

// A fold that does not fit the rows: the file does not describe the log.
// Not retried (a SQLite failure is): the projection stops.
caf::error history_corrupt(std::string what) {
  return make_error(errc::journal_failure, "history: " + what, std::string{history_broken_detail});
}

bool history_broken(const caf::error& err) {
  return detail_of(err) == history_broken_detail;
}

caf::error history_unavailable(std::string what) {
  return make_error(errc::unavailable, std::move(what));
}

caf::expected<sqlite::connection> open_history_file(const std::string& path) {
  sqlite::connection db;
  if (auto err = db.open(path, sqlite::open_mode::read_write, true))
    return err;
  db.set_busy_timeout(10000);
  if (auto err = db.exec("PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL", path))
    return err;
  return db;
}

// -- the fold ----------------------------------------------------------------

struct history_wallet {
  uint64_t seq = 0;
  int64_t available = 0;
  bool known = false; // has a row in history_wallets
};

// A hold taken in the batch in hand, not yet written.
struct held_in_batch {
  stake_held hold;
  int64_t at_ms = 0;
};

class history_projector {
public:
  explicit history_projector(sqlite::connection& db)
    : db_(db), begin_(db.get(), "BEGIN IMMEDIATE"), commit_(db.get(), "COMMIT"),
      rollback_(db.get(), "ROLLBACK"),
      position_(db.get(), "SELECT position, hash FROM history_position WHERE id = 1"),
      set_position_(db.get(), "UPDATE history_position SET position = ?1, hash = ?2 WHERE id = 1"),
      wallet_(db.get(), "SELECT seq, available FROM history_wallets WHERE wallet = ?1"),
      put_wallet_(db.get(), "INSERT INTO history_wallets (wallet, seq, available) VALUES "
                            "(?1, ?2, ?3) ON CONFLICT (wallet) DO UPDATE SET seq = ?2, "
                            "available = ?3"),
      put_entry_(db.get(), "INSERT INTO history_transactions (wallet, seq, kind, amount, "
                           "available_after, at, ref) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)"),
      put_bet_(db.get(), "INSERT INTO history_bets (wallet, bet, market, selection, stake, "
                         "price, status, payout, placed_at, settled_at, settled_seq, each_way, "
                         "place_fraction, held, slip) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, 0, ?8, "
                         "0, 0, ?9, ?10, ?11, ?12)"),
      held_stake_(db.get(), "SELECT held FROM history_bets WHERE wallet = ?1 "
                            "AND bet = ?2 AND status = 'held'"),
      get_slip_(db.get(), "SELECT slip FROM history_bets WHERE wallet = ?1 AND bet = ?2"),
      cash_out_(db.get(),
                "UPDATE history_bets SET stake = stake - ?3, cashed_out = cashed_out + ?4, "
                "cashed_out_stake = cashed_out_stake + ?3, "
                "status = CASE WHEN status = 'open' AND stake = ?3 THEN 'cashed_out' "
                "ELSE status END, "
                "payout = CASE WHEN status = 'open' AND stake = ?3 THEN cashed_out + ?4 "
                "ELSE payout END, "
                "settled_at = CASE WHEN status = 'open' AND stake = ?3 THEN ?5 ELSE settled_at END, "
                "settled_seq = CASE WHEN status = 'open' AND stake = ?3 THEN ?6 ELSE settled_seq END "
                "WHERE wallet = ?1 AND bet = ?2 AND status != 'held'"),
      set_slip_(db.get(), "UPDATE history_bets SET slip = ?3 WHERE wallet = ?1 AND bet = ?2"),
      open_bet_(db.get(), "UPDATE history_bets SET status = 'open', price = ?3, placed_at = ?4, "
                          "place_fraction = ?5 WHERE wallet = ?1 AND bet = ?2 AND "
                          "status = 'held'"),
      drop_bet_(db.get(), "DELETE FROM history_bets WHERE wallet = ?1 AND bet = ?2 "
                          "AND status = 'held'"),
      settle_bet_(db.get(), "UPDATE history_bets SET status = ?3, payout = ?4, settled_at = ?5, "
                            "settled_seq = ?6 WHERE wallet = ?1 AND bet = ?2 AND status = 'open'"),
      reopen_bet_(db.get(), "UPDATE history_bets SET status = 'open', payout = 0, settled_at = 0, "
                            "settled_seq = 0 WHERE wallet = ?1 AND bet = ?2 "
                            "AND status != 'held'") {}

  // The position the file stands at and that frame's hash.
  caf::expected<std::pair<uint64_t, std::array<uint8_t, 32>>> stored() {
    sqlite::reset_on_exit reset{position_};
    auto rc = position_.step();
    if (rc != SQLITE_ROW)
      return failed(rc, "history: reading its position");
    std::array<uint8_t, 32> hash{};
    auto blob = position_.column_blob(1);
    std::copy_n(blob.begin(), std::min(blob.size(), hash.size()), hash.begin());
    return std::pair{static_cast<uint64_t>(position_.column_int(0)), hash};
  }

  // Folds `page`, read after frame `from`, in one transaction, unless
  // another process moved the file's position meanwhile. Returns the
  // position the file stands at afterwards.
  caf::expected<uint64_t> apply(const log_page& page, uint64_t from) {
    if (auto err = run(begin_, "history: BEGIN"))
      return err;
    auto now = stored();
    if (!now) {
      (void)run(rollback_, "history: ROLLBACK");
      return now.error();
    }
    if (now->first != from) {
      (void)run(rollback_, "history: ROLLBACK");
      return now->first;
    }
    auto err = fold(page);
    if (!err) {
      sqlite::reset_on_exit reset{set_position_};
      set_position_.bind(1, static_cast<int64_t>(page.end)).bind_blob(2, page.end_hash);
      if (auto rc = set_position_.step(); rc != SQLITE_DONE)
        err = failed(rc, "history: writing its position");
    }
    if (!err)
      err = run(commit_, "history: COMMIT");
    if (err) {
      (void)run(rollback_, "history: ROLLBACK");
      return err;
    }
    return page.end;
  }

private:
  // A statement that failed: the disk, or a lock another process holds,
  // is retried (sqlite::is_storage_error); anything else, a constraint
  // above all (a frame folded twice), means the rows do not fit the log.
  caf::error failed(int rc, std::string_view what) {
    auto err = sqlite::failure(db_.get(), rc, what);
    if (sqlite::is_storage_error(rc))
      return err;
    return make_error(errc::journal_failure, message_of(err), std::string{history_broken_detail});
  }

  caf::error run(sqlite::statement& st, std::string_view what) {
    sqlite::reset_on_exit reset{st};
    if (auto rc = st.step(); rc != SQLITE_DONE)
      return failed(rc, what);
    return {};
  }

  caf::error fold(const log_page& page) {
    wallets_.clear();
    holds_.clear();
    for (auto& a : page.appends) {
      if (!a.stream.starts_with(history_wallet_prefix))
        continue;
      auto key = a.stream.substr(history_wallet_prefix.size());
      auto w = load(key);
      if (!w)
        return w.error();
      for (auto& e : a.events) {
        if (e.seq != (*w)->seq + 1)
          return history_corrupt(a.stream + " has event " + std::to_string(e.seq) + " after "
                         + std::to_string((*w)->seq) + " (frame "
                         + std::to_string(a.position) + ")");
        auto ev = decode_wallet_event(e.data);
        if (!ev)
          return history_corrupt(a.stream + " event " + std::to_string(e.seq) + " of type "
                         + e.data.type + " does not decode");
        if (auto err = fold(key, **w, *ev, e.seq, e.at_ms))
          return err;
        (*w)->seq = e.seq;
      }
    }
    for (auto& [key, w] : wallets_) {
      sqlite::reset_on_exit reset{put_wallet_};
      put_wallet_.bind(1, key).bind(2, static_cast<int64_t>(w.seq)).bind(3, w.available);
      if (auto rc = put_wallet_.step(); rc != SQLITE_DONE)
        return failed(rc, "history: writing a wallet");
    }
    // Holds still undecided at the end of the batch: the next one finds them.
    for (auto& [where, h] : holds_)
      if (auto err = insert_bet(where.first, h.hold, h.hold.asked, "held", h.at_ms))
        return err;
    return {};
  }

  caf::expected<history_wallet*> load(const std::string& key) {
    auto [i, fresh] = wallets_.try_emplace(key);
    if (!fresh)
      return &i->second;
    sqlite::reset_on_exit reset{wallet_};
    wallet_.bind(1, i->first);
    auto rc = wallet_.step();
    if (rc == SQLITE_ROW) {
      i->second.seq = static_cast<uint64_t>(wallet_.column_int(0));
      i->second.available = wallet_.column_int(1);
      i->second.known = true;
    } else if (rc != SQLITE_DONE) {
      return failed(rc, "history: reading a wallet");
    }
    return &i->second;
  }

  // What apply() in wallet_state.cpp does to the balance and the ledger,
  // and to the bets a wallet shows.
  caf::error fold(const std::string& key, history_wallet& w, const wallet_event& ev, uint64_t seq,
                  int64_t at_ms) {
    return std::visit(
      overloaded{
        [&](const deposited& d) {
          w.available += d.amount.minor;
          return entry(key, seq, ledger_kind::deposit, d.amount.minor, w, at_ms, {});
        },
        [&](const withdrawn& d) {
          w.available -= d.amount.minor;
          return entry(key, seq, ledger_kind::withdrawal, d.amount.minor, w, at_ms, {});
        },
        [&](const stake_held& h) {
          w.available -= h.amount().minor;
          holds_[{key, h.bet.value}] = held_in_batch{h, at_ms};
          return entry(key, seq, ledger_kind::stake, h.amount().minor, w, at_ms, h.bet.value);
        },
        [&](const stake_committed& c) -> caf::error {
          auto fraction = to_string(c.place_fraction);
          caf::error err;
          if (auto i = holds_.find({key, c.bet.value}); i != holds_.end()) {
            err = insert_bet(key, i->second.hold, c.accepted, "open", at_ms,
                             i->second.hold.each_way ? fraction : std::string{});
            holds_.erase(i);
          } else {
            err = change(open_bet_, key, c.bet.value, [&](sqlite::statement& st) {
              st.bind(3, c.accepted.hundredths).bind(4, at_ms).bind(5, fraction);
            }, "committing a held bet");
          }
          if (err || c.legs.empty())
            return err;
          return edit_slip(key, c.bet.value, [&](json::object& o, json::array& legs) {
            if (legs.size() != c.legs.size())
              return history_corrupt("wallet/" + key + ": slip " + c.bet.value
                                     + " committed with another number of legs");
            for (size_t k = 0; k < legs.size(); ++k) {
              auto& lo = legs[k].as_object();
              lo["price"] = c.legs[k].accepted.hundredths;
              if (lo.contains("place_fraction"))
                lo["place_fraction"] = to_string(c.legs[k].place_fraction);
            }
            if (c.max_payout.minor > 0)
              o["max_payout"] = c.max_payout.minor;
            return caf::error{};
          });
        },
        [&](const leg_settled& l) -> caf::error {
          return edit_slip(key, l.bet.value, [&](json::object&, json::array& legs) {
            if (l.leg >= legs.size() || !legs[l.leg].is_object())
              return history_corrupt("wallet/" + key + ": slip " + l.bet.value
                                     + " has no leg " + std::to_string(l.leg));
            auto& lo = legs[l.leg].as_object();
            lo["result"] = to_string(l.result);
            // A later round replaces the whole result (a rollback clears it).
            lo.erase("dead_heat");
            lo.erase("rule4");
            lo.erase("round");
            if (l.dead_heat != ratio{})
              lo["dead_heat"] = to_string(l.dead_heat);
            if (l.rule4 != 0)
              lo["rule4"] = l.rule4;
            if (l.round != 0)
              lo["round"] = l.round;
            return caf::error{};
          });
        },
        [&](const legs_released&) { return caf::error{}; },
        [&](const cashed_out& c) -> caf::error {
          // A credit may outlive its bet's row only if the row was never
          // written, which a committed bet's is: change() says so.
          if (auto err = change(cash_out_, key, c.bet.value, [&](sqlite::statement& st) {
                st.bind(3, c.stake.minor)
                  .bind(4, c.amount.minor)
                  .bind(5, at_ms)
                  .bind(6, static_cast<int64_t>(seq));
              }, "cashing out a bet"))
            return err;
          w.available += c.amount.minor;
          return entry(key, seq, ledger_kind::cashout, c.amount.minor, w, at_ms, c.bet.value);
        },
        [&](const hold_released& r) -> caf::error {
          int64_t stake = 0;
          if (auto i = holds_.find({key, r.bet.value}); i != holds_.end()) {
            stake = i->second.hold.amount().minor;
            holds_.erase(i);
          } else {
            auto held = held_stake(key, r.bet.value);
            if (!held)
              return held.error();
            stake = *held;
            if (auto err = change(drop_bet_, key, r.bet.value, [](sqlite::statement&) {},
                                  "releasing a held bet"))
              return err;
          }
          w.available += stake;
          return entry(key, seq, ledger_kind::stake_returned, stake, w, at_ms, r.bet.value);
        },
        [&](const payout_credited& p) -> caf::error {
          if (auto err = change(settle_bet_, key, p.bet.value, [&](sqlite::statement& st) {
                st.bind(3, to_string(p.outcome))
                  .bind(4, p.amount.minor)
                  .bind(5, at_ms)
                  .bind(6, static_cast<int64_t>(seq));
              }, "settling an open bet"))
            return err;
          w.available += p.amount.minor;
          if (p.amount.minor == 0)
            return caf::error{};
          auto kind = p.outcome == bet_status::void_ ? ledger_kind::refund : ledger_kind::payout;
          return entry(key, seq, kind, p.amount.minor, w, at_ms, p.bet.value);
        },
        [&](const bet_restored&) { return caf::error{}; },
        [&](const payout_reversed& r) -> caf::error {
          if (auto err = change(reopen_bet_, key, r.bet.value, [](sqlite::statement&) {},
                                "reopening a settled bet"))
            return err;
          if (r.amount.minor == 0)
            return caf::error{};
          w.available -= r.amount.minor;
          return entry(key, seq, ledger_kind::reversal, r.amount.minor, w, at_ms, r.bet.value);
        },
        [&](const limits_set&) { return caf::error{}; },
      },
      ev);
  }

  caf::error entry(const std::string& key, uint64_t seq, ledger_kind kind, int64_t amount,
                   const history_wallet& w, int64_t at_ms, const std::string& ref) {
    sqlite::reset_on_exit reset{put_entry_};
    put_entry_.bind(1, key)
      .bind(2, static_cast<int64_t>(seq))
      .bind(3, to_string(kind))
      .bind(4, amount)
      .bind(5, w.available)
      .bind(6, at_ms)
      .bind(7, ref);
    if (auto rc = put_entry_.step(); rc != SQLITE_DONE)
      return failed(rc, "history: writing a transaction");
    return {};
  }

  caf::error insert_bet(const std::string& key, const stake_held& h, price p,
                        std::string_view status, int64_t at_ms,
                        const std::string& place_fraction = {}) {
    // Bound text must outlive step(): the statement reads it there.
    auto slip = h.is_slip() ? json::serialize(slip_to_json(held_slip(h))) : std::string{};
    sqlite::reset_on_exit reset{put_bet_};
    put_bet_.bind(1, key)
      .bind(2, h.bet.value)
      .bind(3, h.market.value)
      .bind(4, h.selection.value)
      .bind(5, h.stake.minor)
      .bind(6, p.hundredths)
      .bind(7, status)
      .bind(8, at_ms)
      .bind(9, int64_t{h.each_way ? 1 : 0})
      .bind(10, place_fraction)
      .bind(11, h.amount().minor)
      .bind(12, slip);
    if (auto rc = put_bet_.step(); rc != SQLITE_DONE)
      return failed(rc, "history: writing a bet");
    return {};
  }

  // A held slip as a bet: its legs at the prices asked, all open.
  static wager::bet held_slip(const stake_held& h) {
    wager::bet b;
    b.type = h.type;
    b.each_way = h.each_way;
    for (auto& l : h.legs)
      b.legs.push_back({l.market, l.selection, l.asked});
    return b;
  }

  // Reads a slip's JSON, lets `edit` change it, and writes it back.
  template <class Edit>
  caf::error edit_slip(const std::string& key, const std::string& bet, Edit&& edit) {
    std::string text;
    {
      sqlite::reset_on_exit reset{get_slip_};
      get_slip_.bind(1, key).bind(2, bet);
      auto rc = get_slip_.step();
      if (rc == SQLITE_DONE)
        return history_corrupt("wallet/" + key + ": no slip " + bet);
      if (rc != SQLITE_ROW)
        return failed(rc, "history: reading a slip");
      text = std::string{get_slip_.column_text(0)};
    }
    boost::system::error_code ec;
    auto doc = json::parse(text, ec);
    if (ec || !doc.is_object() || !doc.get_object().contains("legs")
        || !doc.get_object().at("legs").is_array())
      return history_corrupt("wallet/" + key + ": bet " + bet + " is not a slip");
    auto& legs = doc.get_object().at("legs").get_array();
    if (auto err = edit(doc.get_object(), legs))
      return err;
    auto edited = json::serialize(doc);
    return change(set_slip_, key, bet, [&](sqlite::statement& st) { st.bind(3, edited); },
                  "updating a slip");
  }

  caf::expected<int64_t> held_stake(const std::string& key, const std::string& bet) {
    sqlite::reset_on_exit reset{held_stake_};
    held_stake_.bind(1, key).bind(2, bet);
    auto rc = held_stake_.step();
    if (rc == SQLITE_ROW)
      return held_stake_.column_int(0);
    if (rc == SQLITE_DONE)
      return history_corrupt("wallet/" + key + " released bet " + bet + ", which it does not hold");
    return failed(rc, "history: reading a held bet");
  }

  template <class Bind>
  caf::error change(sqlite::statement& st, const std::string& key, const std::string& bet,
                    Bind&& bind, std::string_view what) {
    sqlite::reset_on_exit reset{st};
    st.bind(1, key).bind(2, bet);
    bind(st);
    if (auto rc = st.step(); rc != SQLITE_DONE)
      return failed(rc, "history: " + std::string{what});
    if (sqlite3_changes(db_.get()) != 1)
      return history_corrupt("wallet/" + key + ": " + std::string{what} + " " + bet
                     + " found no such bet");
    return {};
  }

  sqlite::connection& db_;
  sqlite::statement begin_, commit_, rollback_, position_, set_position_, wallet_, put_wallet_,
    put_entry_, put_bet_, held_stake_, get_slip_, cash_out_, set_slip_, open_bet_, drop_bet_,
    settle_bet_, reopen_bet_;
  std::map<std::string, history_wallet> wallets_;
  std::map<std::pair<std::string, std::string>, held_in_batch> holds_;
};

} // namespace

// -- reads -------------------------------------------------------------------

// Named, not anonymous: wallet_history::impl holds these, and a unity build
// includes this file into another, where an anonymous type in a member of
// a class declared in a header draws -Wsubobject-linkage.
namespace history_detail {

struct history_reader {
  explicit history_reader(sqlite::connection c)
    : db(std::move(c)),
      transactions(db.get(), "SELECT seq, kind, amount, available_after, at, ref FROM "
                             "history_transactions WHERE wallet = ?1 AND seq < ?2 "
                             "ORDER BY seq DESC LIMIT ?3"),
      bet(db.get(), "SELECT bet, market, selection, stake, price, status, payout, placed_at, "
                    "settled_at, settled_seq, each_way, place_fraction, slip, cashed_out, "
                    "cashed_out_stake FROM history_bets "
                    "WHERE wallet = ?1 AND bet = ?2 AND status != 'held'"),
      settled(db.get(), "SELECT bet, market, selection, stake, price, status, payout, "
                        "placed_at, settled_at, settled_seq, each_way, place_fraction, slip, "
                        "cashed_out, cashed_out_stake FROM "
                        "history_bets WHERE "
                        "wallet = ?1 AND settled_seq > 0 AND settled_seq < ?2 "
                        "ORDER BY settled_seq DESC LIMIT ?3") {}

  sqlite::connection db;
  sqlite::statement transactions, bet, settled;
};

wager::bet history_bet_of(const sqlite::statement& st) {
  wager::bet b;
  b.id = bet_id{std::string{st.column_text(0)}};
  b.market = market_id{std::string{st.column_text(1)}};
  b.selection = selection_id{std::string{st.column_text(2)}};
  b.stake = money{st.column_int(3)};
  b.accepted = price{static_cast<int32_t>(st.column_int(4))};
  b.status = parse_bet_status(st.column_text(5)).value_or(bet_status::open);
  b.payout = money{st.column_int(6)};
  b.placed_at_ms = st.column_int(7);
  b.settled_at_ms = st.column_int(8);
  b.each_way = st.column_int(10) != 0;
  if (b.each_way)
    b.place_fraction = parse_ratio(st.column_text(11)).value_or(ratio{});
  if (auto text = st.column_text(12); !text.empty()) {
    boost::system::error_code ec;
    auto doc = json::parse(text, ec);
    if (!ec && doc.is_object())
      slip_from_json(doc.get_object(), b);
  }
  b.cashed_out = money{st.column_int(13)};
  b.cashed_out_stake = money{st.column_int(14)};
  return b;
}

} // namespace history_detail

using history_detail::history_reader;
using history_detail::history_bet_of;

// -- the model ---------------------------------------------------------------

struct wallet_history::impl : std::enable_shared_from_this<impl> {
  history_options options;
  journal* source = nullptr; // outlives every read it runs
  sqlite::connection writer;
  std::atomic<uint64_t> position{0};

  std::mutex mutex;
  std::condition_variable wake;
  bool stopping = false;
  bool nudged = false;
  std::string failure; // why the projection stopped, when it did
  struct waiter {
    uint64_t target = 0;
    std::chrono::steady_clock::time_point deadline;
    std::function<void(caf::error)> run;
  };
  std::vector<waiter> waiters;
  std::thread thread;

  std::mutex readers_mutex;
  std::vector<std::unique_ptr<history_reader>> readers;

  prometheus::Gauge* position_gauge = nullptr;
  prometheus::Gauge* behind_gauge = nullptr;

  // Empties the file when it does not describe the journal's log: its
  // frame at the stored position must be there with the stored hash.
  // Under the write lock, so that another process folding into the same
  // file sees the tables whole, before or after.
  caf::error check_or_reset(history_projector& p) {
    auto describes_log = [&]() -> caf::expected<bool> {
      auto stored = p.stored();
      if (!stored)
        return stored.error();
      auto [at, hash] = *stored;
      if (at == 0)
        return true;
      auto page = source->read_log(at - 1, 1);
      if (!page)
        return page.error();
      return page->end == at && page->end_hash == hash;
    };
    auto fine = describes_log();
    if (!fine || *fine)
      return fine ? caf::error{} : fine.error();
    if (auto err = writer.exec("BEGIN IMMEDIATE", "history: BEGIN"))
      return err;
    auto err = [&]() -> caf::error {
      auto still = describes_log();
      if (!still)
        return still.error();
      if (*still)
        return {};
      log().warn("history {}: the journal's log does not hold the frame it stood at as it "
                 "was; rebuilding it from the first frame", options.path);
      if (auto err = writer.exec(history_drop_sql, "history: emptying"))
        return err;
      return writer.exec(history_schema_sql, "history: creating its tables");
    }();
    if (!err)
      err = writer.exec("COMMIT", "history: COMMIT");
    if (err)
      (void)writer.exec("ROLLBACK", "history: ROLLBACK");
    return err;
  }

  // A failure of the file or the journal is retried at the next poll; a
  // fold that does not fit stops the projection.
  void retry(std::string_view what, const caf::error& err) {
    log().warn("history {}: {}: {}; retrying", options.path, what, message_of(err));
    idle();
  }

  void run() {
    history_projector p{writer};
    for (bool checked = false;;) {
      {
        std::unique_lock lock{mutex};
        if (stopping)
          return;
      }
      if (!checked) {
        if (auto err = check_or_reset(p)) {
          retry("checking it against the journal", err);
          continue;
        }
        checked = true;
      }
      auto at = p.stored();
      if (!at) {
        retry("reading its position", at.error());
        continue;
      }
      auto from = at->first;
      position = from;
      release(from);
      auto page = source->read_log(from, options.frames_per_batch, "wallet");
      if (!page) {
        // The journal may be closing, or its disk may be failing.
        retry("reading the journal", page.error());
        continue;
      }
      if (page->end == from) {
        idle();
        continue;
      }
      auto now = p.apply(*page, from);
      if (!now) {
        if (history_broken(now.error()))
          return fail(now.error());
        retry("folding frames " + std::to_string(from + 1) + " to " + std::to_string(page->end),
              now.error());
        continue;
      }
      position = *now;
      if (position_gauge != nullptr)
        position_gauge->Set(static_cast<double>(*now));
      release(*now);
      std::unique_lock lock{mutex};
      expire(lock);
    }
  }

  // Waits for the next poll, a read that wants more, the first deadline of
  // a waiting read, or stop.
  void idle() {
    std::unique_lock lock{mutex};
    auto until = std::chrono::steady_clock::now() + options.poll_interval;
    for (auto& w : waiters)
      until = std::min(until, w.deadline);
    wake.wait_until(lock, until, [this] { return stopping || nudged; });
    nudged = false;
    expire(lock);
  }

  void fail(const caf::error& err) {
    log().error("history {}: the projection stopped: {}", options.path, message_of(err));
    std::vector<waiter> failed;
    {
      std::lock_guard lock{mutex};
      failure = message_of(err);
      failed.swap(waiters);
    }
    for (auto& w : failed)
      w.run(history_unavailable("the history read model is not available: " + failure));
  }

  // Hands the reads whose frames are in to the journal's readers.
  void release(uint64_t at) {
    std::vector<waiter> ready;
    {
      std::lock_guard lock{mutex};
      auto split = std::partition(waiters.begin(), waiters.end(),
                                  [at](const waiter& w) { return w.target > at; });
      std::move(split, waiters.end(), std::back_inserter(ready));
      waiters.erase(split, waiters.end());
      if (behind_gauge != nullptr) {
        uint64_t most = 0;
        for (auto& w : waiters)
          most = std::max(most, w.target - at);
        behind_gauge->Set(static_cast<double>(most));
      }
    }
    for (auto& w : ready)
      post(std::move(w.run));
  }

  void expire(std::unique_lock<std::mutex>& lock) {
    auto now = std::chrono::steady_clock::now();
    std::vector<waiter> late;
    auto split = std::partition(waiters.begin(), waiters.end(),
                                [now](const waiter& w) { return w.deadline > now; });
    std::move(split, waiters.end(), std::back_inserter(late));
    waiters.erase(split, waiters.end());
    lock.unlock();
    for (auto& w : late)
      w.run(history_unavailable("the history read model is still catching up with the journal; "
                        "retry"));
    lock.lock();
  }

  void post(std::function<void(caf::error)> run) {
    auto shared = std::make_shared<std::function<void(caf::error)>>(std::move(run));
    if (auto err = source->post_read([shared] { (*shared)({}); }))
      (*shared)(err);
  }

  // Runs `work` on a journal reader once every frame the log holds now is
  // folded in; with an error instead when that cannot be.
  void when_caught_up(std::function<void(caf::error)> work) {
    auto self = shared_from_this();
    auto shared = std::make_shared<std::function<void(caf::error)>>(std::move(work));
    // Under the lock, so that once stop() has returned nothing new reaches
    // the journal, which may then close.
    std::unique_lock guard{mutex};
    if (stopping) {
      guard.unlock();
      return (*shared)(history_unavailable("the history read model is closed"));
    }
    auto err = source->post_read([self, shared] {
      auto end = self->source->log_end();
      if (!end)
        return (*shared)(end.error());
      caf::error refused;
      {
        std::lock_guard lock{self->mutex};
        if (!self->failure.empty()) {
          refused = history_unavailable("the history read model is not available: " + self->failure);
        } else if (self->stopping) {
          refused = history_unavailable("the history read model is closed");
        } else if (self->position.load() < *end) {
          self->waiters.push_back({*end,
                                   std::chrono::steady_clock::now() + self->options.read_timeout,
                                   [shared](caf::error e) { (*shared)(std::move(e)); }});
          self->nudged = true;
          self->wake.notify_all();
          return;
        }
      }
      (*shared)(std::move(refused));
    });
    guard.unlock();
    if (err)
      (*shared)(err);
  }

  // Runs f(reader&) with a read connection of this model.
  template <class T, class F>
  caf::expected<T> with_reader(F&& f) {
    std::unique_ptr<history_reader> r;
    {
      std::lock_guard lock{readers_mutex};
      if (!readers.empty()) {
        r = std::move(readers.back());
        readers.pop_back();
      }
    }
    if (r == nullptr) {
      auto db = open_history_file(options.path);
      if (!db)
        return db.error();
      r = std::make_unique<history_reader>(std::move(*db));
    }
    auto result = f(*r);
    std::lock_guard lock{readers_mutex};
    readers.push_back(std::move(r));
    return result;
  }

  void stop() {
    std::vector<waiter> left;
    {
      std::lock_guard lock{mutex};
      if (stopping && !thread.joinable())
        return;
      stopping = true;
      left.swap(waiters);
    }
    wake.notify_all();
    if (thread.joinable())
      thread.join();
    for (auto& w : left)
      w.run(history_unavailable("the history read model is closed"));
  }
};

caf::expected<std::unique_ptr<wallet_history>> wallet_history::open(history_options options,
                                                                   journal& log) {
  if (auto end = log.log_end(); !end)
    return end.error();
  auto db = open_history_file(options.path);
  if (!db)
    return db.error();
  auto version = db->query_int("PRAGMA user_version", "history: its schema version");
  if (!version)
    return version.error();
  // Derived data only: a file of another version is rebuilt, never read;
  // in one transaction, so another process sees the tables whole.
  auto sql = std::string{"BEGIN IMMEDIATE; "};
  if (*version != history_schema_version)
    sql += std::string{history_drop_sql} + "PRAGMA user_version = " + std::to_string(history_schema_version)
           + "; ";
  sql += std::string{history_schema_sql} + "COMMIT;";
  if (auto err = db->exec(sql, "history: creating its tables")) {
    (void)db->exec("ROLLBACK", "history: ROLLBACK");
    return err;
  }
  auto d = std::make_shared<impl>();
  d->options = std::move(options);
  d->source = &log;
  d->writer = std::move(*db);
  // Short, so that a writer of another process holding the file (its own
  // batch of the same frames) costs a retry rather than a stalled thread:
  // the projection also expires the reads that waited too long.
  d->writer.set_busy_timeout(200);
  // The writer's pages: 64 MiB of cache, so a batch finds the pages it
  // rewrites in memory, and a checkpoint per 64 MiB of WAL rather than 4;
  // the WAL is cut back to 64 MiB after a checkpoint that found it longer
  // (a long batch of a rebuild).
  if (auto err = d->writer.exec("PRAGMA cache_size = -65536; PRAGMA wal_autocheckpoint = 16384; "
                                "PRAGMA journal_size_limit = 67108864",
                                "history: sizing its page cache"))
    return err;
  if (auto* registry = d->options.metrics_registry) {
    d->position_gauge = &prometheus::BuildGauge()
                           .Name("wager_history_position")
                           .Help("The last journal frame folded into the history read model")
                           .Register(*registry)
                           .Add({});
    d->behind_gauge = &prometheus::BuildGauge()
                         .Name("wager_history_frames_behind")
                         .Help("Frames the history read model lacks for the reads waiting on it")
                         .Register(*registry)
                         .Add({});
  }
  d->thread = std::thread{[raw = d.get()] {
    pthread_setname_np(pthread_self(), "wager-history");
    raw->run();
  }};
  return std::unique_ptr<wallet_history>{new wallet_history{std::move(d)}};
}

wallet_history::wallet_history(std::shared_ptr<impl> d) : impl_(std::move(d)) {}

wallet_history::~wallet_history() {
  stop();
}

void wallet_history::stop() {
  impl_->stop();
}

uint64_t wallet_history::position() const {
  return impl_->position.load();
}

void wallet_history::transactions(const user_id& user, transactions_query query,
                                  result_callback<std::vector<wallet_transaction>> done) {
  auto d = impl_;
  d->when_caught_up([d, key = user.value, query, done = std::move(done)](caf::error err) {
    if (err)
      return done(std::move(err));
    done(d->with_reader<std::vector<wallet_transaction>>([&](history_reader& r)
           -> caf::expected<std::vector<wallet_transaction>> {
      auto& st = r.transactions;
      sqlite::reset_on_exit reset{st};
      // As transactions_of reads the wallet's memory.
      auto limit = std::clamp<uint32_t>(query.limit, 1, static_cast<uint32_t>(wallet_ledger_max));
      auto before = static_cast<int64_t>(std::min<uint64_t>(
        query.before_seq == 0 ? UINT64_MAX : query.before_seq,
        static_cast<uint64_t>(std::numeric_limits<int64_t>::max())));
      st.bind(1, key).bind(2, before).bind(3, static_cast<int64_t>(limit));
      std::vector<wallet_transaction> out;
      int rc;
      while ((rc = st.step()) == SQLITE_ROW)
        out.push_back({"t" + std::to_string(st.column_int(0)), std::string{st.column_text(1)},
                       money{st.column_int(2)}, money{st.column_int(3)}, st.column_int(4),
                       std::string{st.column_text(5)}});
      if (rc != SQLITE_DONE)
        return sqlite::failure(r.db.get(), rc, "history: reading transactions");
      return out;
    }));
  });
}

void wallet_history::bet(const user_id& user, const bet_id& id,
                         result_callback<wager::bet> done) {
  auto d = impl_;
  d->when_caught_up([d, key = user.value, id = id.value, done = std::move(done)](caf::error err) {
    if (err)
      return done(std::move(err));
    done(d->with_reader<wager::bet>([&](history_reader& r) -> caf::expected<wager::bet> {
      auto& st = r.bet;
      sqlite::reset_on_exit reset{st};
      st.bind(1, key).bind(2, id);
      auto rc = st.step();
      if (rc == SQLITE_ROW)
        return history_bet_of(st);
      if (rc == SQLITE_DONE)
        return make_error(errc::not_found, "no such bet");
      return sqlite::failure(r.db.get(), rc, "history: reading a bet");
    }));
  });
}

void wallet_history::settled_bets(const user_id& user, settled_bets_query query,
                                  result_callback<std::vector<wager::bet>> done) {
  auto d = impl_;
  d->when_caught_up([d, key = user.value, query = std::move(query),
                     done = std::move(done)](caf::error err) {
    if (err)
      return done(std::move(err));
    done(d->with_reader<std::vector<wager::bet>>([&](history_reader& r)
           -> caf::expected<std::vector<wager::bet>> {
      auto before = std::numeric_limits<int64_t>::max();
      if (!query.before.empty()) {
        auto& st = r.bet;
        sqlite::reset_on_exit reset{st};
        st.bind(1, key).bind(2, query.before);
        auto rc = st.step();
        if (rc != SQLITE_ROW && rc != SQLITE_DONE)
          return sqlite::failure(r.db.get(), rc, "history: reading a bet");
        if (rc == SQLITE_DONE || st.column_int(9) == 0)
          return make_error(errc::invalid_field,
                            "before must be the bet_id of a bet in this list", "before");
        before = st.column_int(9);
      }
      auto& st = r.settled;
      sqlite::reset_on_exit reset{st};
      st.bind(1, key).bind(2, before).bind(3, static_cast<int64_t>(query.limit));
      std::vector<wager::bet> out;
      int rc;
      while ((rc = st.step()) == SQLITE_ROW)
        out.push_back(history_bet_of(st));
      if (rc != SQLITE_DONE)
        return sqlite::failure(r.db.get(), rc, "history: reading settled bets");
      return out;
    }));
  });
}

void complete_transactions(wallet_history* history, const user_id& user,
                           const transactions_query& query, transactions_page page,
                           result_callback<std::vector<wallet_transaction>> done) {
  if (page.complete || history == nullptr)
    return done(std::move(page.transactions));
  history->transactions(user, query, std::move(done));
}

void complete_bet(wallet_history* history, const user_id& user, const bet_id& id,
                  caf::expected<bet> from_wallet, result_callback<bet> done) {
  if (from_wallet || history == nullptr || code_of(from_wallet.error()) != errc::not_found)
    return done(std::move(from_wallet));
  history->bet(user, id, std::move(done));
}

} // namespace wager
