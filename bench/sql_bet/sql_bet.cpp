// wager_bench_sql_bet: the bet of shared/WORKLOAD.md done the plain way, as
// an operator without Wager would: one SQLite file (WAL, synchronous=FULL),
// one writer thread with group commit, and a bet as a few SQL statements.
// It is the baseline that `wager-bench --mode inproc` is measured against
// (bench/sql_bet/run_side_by_side.sh runs both in one go); it uses nothing
// of Wager but the workload's definition.
//
//   wager_bench_sql_bet --clients 1,16,64 --seconds 10
//
// A bet does the durable work Wager does for one: the stake leaves the
// wallet's balance (checked, never negative), the market checks status,
// price (accept exact), the stake limit and the selection's liability and
// adds to it, the bet row is inserted, and the request id is stored with its
// answer so a repeat is answered from it and moves no money. A bet is one
// unit of statements inside the writer's batch transaction (no transaction
// or savepoint of its own: every check comes before the first write), and it
// is answered once the batch's COMMIT has returned, so the bet is fsync'd.
//
// Clients are closed loops (the next bet when the previous one is durable);
// a feed changes --feed-per-s prices through the same writer. One JSON line
// per configuration on stdout, each on a fresh database, with the field
// names of wager-bench where they mean the same. After each run the money is
// audited: balances + stakes held = money funded, no negative balance,
// stakes held = the bets' stakes, bet rows = bets answered accepted.
//
// Exit status: 0 done and every invariant held, 1 an invariant failed,
// 2 the run could not be made.

#include <sqlite3.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <condition_variable>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <random>
#include <semaphore>
#include <sstream>
#include <string>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <thread>
#include <unistd.h>
#include <vector>

namespace {

namespace fs = std::filesystem;
using clock_type = std::chrono::steady_clock;

// -- workload (the same parameters as bench/wager_bench/workload.hpp) -------

struct options {
  std::vector<int> clients{64};
  double seconds = 10;
  int wallets = 100'000;
  int markets = 1'000;
  uint64_t seed = 42;
  double zipf_s = 1.1;
  int64_t fund_minor = 100'000;  // per wallet: 1000.00
  double feed_per_s = 100;       // price changes per second
  double stale_fraction = 0.02;  // bets at a price one hundredth off the board
  double repeat_fraction = 0.01; // bets that repeat an earlier request id
  size_t batch_max = 1'024;      // bets and price changes per group commit
  std::string data_dir;          // default: a fresh folder in /tmp
  bool keep_data = false;
};

constexpr int selections_per_market = 3;
constexpr int32_t price_low = 150;  // 1.50
constexpr int32_t price_high = 900; // 9.00
constexpr int64_t stake_low_minor = 100;
constexpr int64_t stake_high_minor = 5'000;
constexpr int64_t market_max_stake_minor = 1'000'000'000;
constexpr int64_t market_max_liability_minor = 1'000'000'000'000;
constexpr size_t recent_requests_max = 256; // a client's requests it may repeat
constexpr size_t batch_max_limit = 1'000'000;

// Current prices as bettors see them; the feed moves a cell once the change
// is committed.
class price_board {
public:
  price_board(int markets, uint64_t seed)
    : markets_(markets), cells_(static_cast<size_t>(markets) * selections_per_market) {
    std::mt19937_64 rng{seed};
    for (auto& c : cells_)
      c = static_cast<int32_t>(price_low + static_cast<int32_t>(rng() % (price_high - price_low + 1)));
  }
  int32_t get(int m, int s) const { return cells_[index(m, s)].load(std::memory_order_relaxed); }
  void set(int m, int s, int32_t p) { cells_[index(m, s)].store(p, std::memory_order_relaxed); }
  int markets() const { return markets_; }

private:
  static size_t index(int m, int s) { return static_cast<size_t>(m * selections_per_market + s); }
  int markets_;
  std::vector<std::atomic<int32_t>> cells_;
};

// Market popularity: P(k) proportional to 1 / (k+1)^s.
class zipf_markets {
public:
  zipf_markets(int markets, double s) : cdf_(static_cast<size_t>(markets)) {
    double sum = 0;
    for (int k = 0; k < markets; ++k)
      cdf_[static_cast<size_t>(k)] = (sum += 1.0 / std::pow(k + 1, s));
    for (auto& x : cdf_)
      x /= sum;
  }
  int draw(std::mt19937_64& rng) const {
    auto u = std::uniform_real_distribution<double>{0, 1}(rng);
    auto k = std::lower_bound(cdf_.begin(), cdf_.end(), u) - cdf_.begin();
    return static_cast<int>(std::min<ptrdiff_t>(k, static_cast<ptrdiff_t>(cdf_.size()) - 1));
  }

private:
  std::vector<double> cdf_;
};

struct bet_request {
  int wallet = 0;
  std::string request;
  int market = 0;
  int selection = 0;
  int64_t stake_minor = 0;
  int32_t price_hundredths = 0;
  bool repeat = false;
  bool stale = false;
};

// Error codes as the API names them.
enum class outcome { accepted, price_changed, insufficient_funds, limit_exceeded,
                     market_not_open, not_found, request_id_reused };

const char* code_of(outcome o) {
  switch (o) {
    case outcome::accepted: return "accepted";
    case outcome::price_changed: return "price_changed";
    case outcome::insufficient_funds: return "insufficient_funds";
    case outcome::limit_exceeded: return "limit_exceeded";
    case outcome::market_not_open: return "market_not_open";
    case outcome::not_found: return "not_found";
    case outcome::request_id_reused: return "request_id_reused";
  }
  return "?";
}

// The answer to a bet: the bet id when accepted.
struct answer {
  outcome result = outcome::not_found;
  int64_t bet_id = 0;
  bool operator==(const answer&) const = default;
};

// One client's generator, as wager-bench's bettor: uniform wallet, Zipf
// market, uniform stake, ~2% one hundredth off the board, ~1% a repeat of
// one of its last 256 answered requests.
class bettor {
public:
  bettor(const options& o, const zipf_markets& zipf, const price_board& board, std::string prefix,
         uint64_t seed)
    : o_(o), zipf_(zipf), board_(board), prefix_(std::move(prefix)), rng_(seed) {}

  bet_request next() {
    auto roll = std::uniform_real_distribution<double>{0, 1}(rng_);
    if (roll < o_.repeat_fraction && !recent_.empty()) {
      auto r = recent_[rng_() % recent_.size()].request;
      r.repeat = true;
      return r;
    }
    bet_request r;
    r.wallet = static_cast<int>(rng_() % static_cast<uint64_t>(o_.wallets));
    r.request = prefix_ + std::to_string(serial_++);
    r.market = zipf_.draw(rng_);
    r.selection = static_cast<int>(rng_() % selections_per_market);
    r.stake_minor = stake_low_minor
                    + static_cast<int64_t>(rng_() % (stake_high_minor - stake_low_minor + 1));
    r.price_hundredths = board_.get(r.market, r.selection);
    if (roll < o_.repeat_fraction + o_.stale_fraction) {
      r.stale = true;
      r.price_hundredths += r.price_hundredths < price_high ? 1 : -1;
    }
    return r;
  }

  // Records the answer; a repeat must get the first answer again.
  bool answered(const bet_request& r, const answer& a) {
    if (r.repeat) {
      for (auto& m : recent_)
        if (m.request.request == r.request)
          return m.first == a;
      return true;
    }
    if (recent_.size() < recent_requests_max)
      recent_.push_back({r, a});
    else
      recent_[rng_() % recent_requests_max] = {r, a};
    return true;
  }

private:
  struct remembered {
    bet_request request;
    answer first;
  };
  const options& o_;
  const zipf_markets& zipf_;
  const price_board& board_;
  std::string prefix_;
  std::mt19937_64 rng_;
  uint64_t serial_ = 0;
  std::vector<remembered> recent_;
};

// -- SQLite -----------------------------------------------------------------

[[noreturn]] void die(sqlite3* db, const char* what) {
  std::fprintf(stderr, "wager_bench_sql_bet: %s: %s\n", what, db ? sqlite3_errmsg(db) : "");
  std::exit(2);
}

void exec(sqlite3* db, const char* sql) {
  if (sqlite3_exec(db, sql, nullptr, nullptr, nullptr) != SQLITE_OK)
    die(db, sql);
}

// A prepared statement, reset after each use.
class statement {
public:
  statement(sqlite3* db, const char* sql) : db_(db) {
    if (sqlite3_prepare_v3(db, sql, -1, SQLITE_PREPARE_PERSISTENT, &st_, nullptr) != SQLITE_OK)
      die(db, sql);
  }
  ~statement() { sqlite3_finalize(st_); }
  statement(const statement&) = delete;
  statement& operator=(const statement&) = delete;

  template <class... Args>
  statement& bind(const Args&... args) {
    sqlite3_reset(st_);
    int i = 0;
    (bind_one(++i, args), ...);
    return *this;
  }
  // True when a row is there; dies on an error.
  bool step() {
    auto rc = sqlite3_step(st_);
    if (rc != SQLITE_ROW && rc != SQLITE_DONE)
      die(db_, sqlite3_sql(st_));
    return rc == SQLITE_ROW;
  }
  int64_t column(int i) const { return sqlite3_column_int64(st_, i); }
  bool column_null(int i) const { return sqlite3_column_type(st_, i) == SQLITE_NULL; }
  const char* text(int i) const {
    return reinterpret_cast<const char*>(sqlite3_column_text(st_, i));
  }

private:
  void bind_one(int i, int64_t v) { sqlite3_bind_int64(st_, i, v); }
  void bind_one(int i, int v) { sqlite3_bind_int64(st_, i, v); }
  void bind_one(int i, const std::string& v) {
    sqlite3_bind_text(st_, i, v.data(), static_cast<int>(v.size()), SQLITE_TRANSIENT);
  }
  sqlite3* db_;
  sqlite3_stmt* st_ = nullptr;
};

// Money in minor units; a selection's liability is what the house stands to
// lose on it: stake x (price - 1) summed over its bets, each rounded up.
constexpr const char* schema = R"(
CREATE TABLE wallets (id INTEGER PRIMARY KEY, balance INTEGER NOT NULL CHECK (balance >= 0),
                      held INTEGER NOT NULL);
CREATE TABLE markets (id INTEGER PRIMARY KEY, open INTEGER NOT NULL, max_stake INTEGER NOT NULL,
                      max_liability INTEGER NOT NULL);
CREATE TABLE selections (market INTEGER NOT NULL, selection INTEGER NOT NULL,
                         price INTEGER NOT NULL, liability INTEGER NOT NULL,
                         PRIMARY KEY (market, selection)) WITHOUT ROWID;
CREATE TABLE bets (id INTEGER PRIMARY KEY, wallet INTEGER NOT NULL, market INTEGER NOT NULL,
                   selection INTEGER NOT NULL, stake INTEGER NOT NULL, price INTEGER NOT NULL,
                   request TEXT NOT NULL, placed_at INTEGER NOT NULL);
CREATE TABLE requests (wallet INTEGER NOT NULL, request TEXT NOT NULL, body INTEGER NOT NULL,
                       code TEXT NOT NULL, bet INTEGER, PRIMARY KEY (wallet, request)) WITHOUT ROWID;
)";

sqlite3* open_database(const std::string& path) {
  sqlite3* db = nullptr;
  if (sqlite3_open_v2(path.c_str(), &db,
                      SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX,
                      nullptr) != SQLITE_OK)
    die(db, ("opening " + path).c_str());
  exec(db, "PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL;");
  exec(db, schema);
  return db;
}

void fill(sqlite3* db, const options& o, const price_board& board) {
  exec(db, "BEGIN");
  {
    statement w{db, "INSERT INTO wallets VALUES (?, ?, 0)"};
    for (int i = 0; i < o.wallets; ++i)
      w.bind(i, o.fund_minor).step();
    statement m{db, "INSERT INTO markets VALUES (?, 1, ?, ?)"};
    statement s{db, "INSERT INTO selections VALUES (?, ?, ?, 0)"};
    for (int i = 0; i < o.markets; ++i) {
      m.bind(i, market_max_stake_minor, market_max_liability_minor).step();
      for (int k = 0; k < selections_per_market; ++k)
        s.bind(i, k, board.get(i, k)).step();
    }
  }
  exec(db, "COMMIT");
}

// The statements of one bet and of one price change.
struct bet_statements {
  explicit bet_statements(sqlite3* db)
    : find_request(db, "SELECT body, code, bet FROM requests WHERE wallet = ? AND request = ?"),
      market(db, "SELECT m.open, m.max_stake, m.max_liability, s.price, s.liability "
                 "FROM markets m JOIN selections s ON s.market = m.id "
                 "WHERE m.id = ? AND s.selection = ?"),
      debit(db, "UPDATE wallets SET balance = balance - ?1, held = held + ?1 "
                "WHERE id = ?2 AND balance >= ?1"),
      add_liability(db, "UPDATE selections SET liability = liability + ? "
                        "WHERE market = ? AND selection = ?"),
      insert_bet(db, "INSERT INTO bets (wallet, market, selection, stake, price, request, "
                     "placed_at) VALUES (?, ?, ?, ?, ?, ?, ?)"),
      insert_request(db, "INSERT INTO requests VALUES (?, ?, ?, ?, ?)"),
      insert_rejection(db, "INSERT INTO requests VALUES (?, ?, ?, ?, NULL)"),
      set_price(db, "UPDATE selections SET price = ? WHERE market = ? AND selection = ?"),
      db_(db) {}

  statement find_request, market, debit, add_liability, insert_bet, insert_request,
    insert_rejection, set_price;
  sqlite3* db_;
};

int64_t liability(int64_t stake, int32_t price) {
  return (stake * (price - 100) + 99) / 100;
}

// What identifies a request's body, so a reused id with another bet is
// refused rather than answered with the first bet.
int64_t body_of(const bet_request& r) {
  uint64_t h = 1469598103934665603ULL;
  for (int64_t v : {int64_t{r.market}, int64_t{r.selection}, r.stake_minor,
                    int64_t{r.price_hundredths}}) {
    h ^= static_cast<uint64_t>(v);
    h *= 1099511628211ULL;
  }
  return static_cast<int64_t>(h >> 1);
}

outcome outcome_of(const char* c) {
  for (auto o : {outcome::accepted, outcome::price_changed, outcome::insufficient_funds,
                 outcome::limit_exceeded, outcome::market_not_open, outcome::not_found})
    if (std::strcmp(c, code_of(o)) == 0)
      return o;
  return outcome::not_found;
}

// The market's decision on `r`, as it stands in the database.
outcome judge(bet_statements& q, const bet_request& r, int64_t& liability_added) {
  if (!q.market.bind(r.market, r.selection).step())
    return outcome::not_found;
  if (q.market.column(0) == 0)
    return outcome::market_not_open;
  if (q.market.column(3) != r.price_hundredths)
    return outcome::price_changed;
  if (r.stake_minor > q.market.column(1))
    return outcome::limit_exceeded;
  liability_added = liability(r.stake_minor, r.price_hundredths);
  if (q.market.column(4) + liability_added > q.market.column(2))
    return outcome::limit_exceeded;
  return outcome::accepted;
}

// One bet, inside the writer's open transaction.
answer place_bet(bet_statements& q, const bet_request& r, int64_t now_us) {
  auto body = body_of(r);
  if (q.find_request.bind(r.wallet, r.request).step()) {
    if (q.find_request.column(0) != body)
      return {outcome::request_id_reused, 0};
    return {outcome_of(q.find_request.text(1)), q.find_request.column_null(2) ? 0 : q.find_request.column(2)};
  }
  int64_t added = 0;
  auto decision = judge(q, r, added);
  if (decision == outcome::accepted) {
    q.debit.bind(r.stake_minor, r.wallet).step();
    if (sqlite3_changes(q.db_) == 0)
      decision = outcome::insufficient_funds;
  }
  if (decision != outcome::accepted) {
    q.insert_rejection.bind(r.wallet, r.request, body, std::string{code_of(decision)}).step();
    return {decision, 0};
  }
  q.add_liability.bind(added, r.market, r.selection).step();
  q.insert_bet.bind(r.wallet, r.market, r.selection, r.stake_minor, r.price_hundredths,
                    r.request, now_us).step();
  int64_t id = sqlite3_last_insert_rowid(q.db_);
  q.insert_request.bind(r.wallet, r.request, body, std::string{"accepted"}, id).step();
  return {outcome::accepted, id};
}

// -- the writer: group commit -----------------------------------------------

// A bet waiting for its answer, or (bet == nullptr) a price change.
struct work_item {
  const bet_request* bet = nullptr;
  answer* reply = nullptr;
  std::binary_semaphore* done = nullptr;
  int market = 0, selection = 0;
  int32_t price = 0;
};

// One thread owns the connection. It takes everything queued, up to
// batch_max, runs it in one transaction, commits (the fsync), and only then
// answers: a bet is never answered before it is durable. The queue needs no
// bound of its own: it holds at most one bet per client (closed loops) and
// the feed's changes of one batch's time.
class writer {
public:
  writer(sqlite3* db, price_board& board, size_t batch_max)
    : db_(db), q_(db), board_(board), batch_max_(batch_max), thread_([this] { run(); }) {}
  ~writer() {
    {
      std::lock_guard g{m_};
      stopping_ = true;
    }
    cv_.notify_one();
    thread_.join();
  }

  void submit(const work_item& w) {
    {
      std::lock_guard g{m_};
      queue_.push_back(w);
    }
    cv_.notify_one();
  }

  uint64_t commits() const { return commits_; }
  double commit_seconds() const { return commit_seconds_; }
  uint64_t items() const { return items_; }

private:
  void run() {
    std::vector<work_item> batch;
    batch.reserve(batch_max_);
    for (;;) {
      {
        std::unique_lock lock{m_};
        cv_.wait(lock, [&] { return !queue_.empty() || stopping_; });
        if (queue_.empty())
          return;
        auto n = std::min(batch_max_, queue_.size());
        batch.assign(queue_.begin(), queue_.begin() + static_cast<ptrdiff_t>(n));
        queue_.erase(queue_.begin(), queue_.begin() + static_cast<ptrdiff_t>(n));
      }
      write(batch);
    }
  }

  void write(std::vector<work_item>& batch) {
    auto now_us = std::chrono::duration_cast<std::chrono::microseconds>(
                    std::chrono::system_clock::now().time_since_epoch())
                    .count();
    exec(db_, "BEGIN IMMEDIATE");
    for (auto& w : batch) {
      if (w.bet != nullptr)
        *w.reply = place_bet(q_, *w.bet, now_us);
      else
        q_.set_price.bind(w.price, w.market, w.selection).step();
    }
    auto t0 = clock_type::now();
    exec(db_, "COMMIT");
    commit_seconds_ += std::chrono::duration<double>(clock_type::now() - t0).count();
    ++commits_;
    items_ += batch.size();
    for (auto& w : batch) {
      if (w.bet != nullptr)
        w.done->release();
      else
        board_.set(w.market, w.selection, w.price);
    }
  }

  sqlite3* db_;
  bet_statements q_;
  price_board& board_;
  size_t batch_max_;
  std::mutex m_;
  std::condition_variable cv_;
  std::deque<work_item> queue_;
  bool stopping_ = false;
  std::atomic<uint64_t> commits_{0};
  std::atomic<double> commit_seconds_{0};
  std::atomic<uint64_t> items_{0};
  std::thread thread_; // last: starts once the members above exist
};

// -- clients and feed -------------------------------------------------------

struct run_record {
  std::vector<double> latencies_ms;
  uint64_t accepted = 0; // answers that were a bet, repeats included
  uint64_t rejected = 0;
  uint64_t price_changed = 0;
  uint64_t stale_sent = 0;
  uint64_t repeats = 0;
  uint64_t repeat_mismatches = 0;
  uint64_t failed = 0;
  uint64_t distinct_accepted = 0; // accepted bets that were not repeats

  void merge(const run_record& o) {
    latencies_ms.insert(latencies_ms.end(), o.latencies_ms.begin(), o.latencies_ms.end());
    accepted += o.accepted;
    rejected += o.rejected;
    price_changed += o.price_changed;
    stale_sent += o.stale_sent;
    repeats += o.repeats;
    repeat_mismatches += o.repeat_mismatches;
    failed += o.failed;
    distinct_accepted += o.distinct_accepted;
  }
};

void record(run_record& rec, bettor& b, const bet_request& r, const answer& a,
            clock_type::duration took) {
  rec.latencies_ms.push_back(std::chrono::duration<double, std::milli>(took).count());
  rec.stale_sent += r.stale ? 1 : 0;
  rec.repeats += r.repeat ? 1 : 0;
  switch (a.result) {
    case outcome::accepted:
      ++rec.accepted;
      rec.distinct_accepted += r.repeat ? 0 : 1;
      break;
    case outcome::price_changed: ++rec.price_changed; [[fallthrough]];
    case outcome::insufficient_funds:
    case outcome::limit_exceeded:
    case outcome::market_not_open: ++rec.rejected; break;
    default: ++rec.failed; return;
  }
  if (!b.answered(r, a))
    ++rec.repeat_mismatches;
}

// A closed-loop client: the next bet once the previous one is durable.
void client_loop(writer& w, bettor& b, run_record& rec, const std::atomic<bool>& running) {
  std::binary_semaphore done{0};
  while (running.load(std::memory_order_relaxed)) {
    auto r = b.next();
    answer a;
    auto t0 = clock_type::now();
    w.submit({&r, &a, &done});
    done.acquire();
    record(rec, b, r, a, clock_type::now() - t0);
  }
}

// feed_per_s price changes on uniform random markets, through the writer.
uint64_t feed_loop(writer& w, const options& o, const std::atomic<bool>& running) {
  std::mt19937_64 rng{o.seed * 31 + 7};
  auto period = std::chrono::duration_cast<clock_type::duration>(
    std::chrono::duration<double>(1.0 / std::max(0.001, o.feed_per_s)));
  auto next = clock_type::now();
  uint64_t changes = 0;
  while (running.load(std::memory_order_relaxed)) {
    work_item change;
    change.market = static_cast<int>(rng() % static_cast<uint64_t>(o.markets));
    change.selection = static_cast<int>(rng() % selections_per_market);
    change.price = static_cast<int32_t>(price_low + static_cast<int32_t>(rng() % (price_high - price_low + 1)));
    w.submit(change);
    ++changes;
    next += period;
    std::this_thread::sleep_until(next);
  }
  return changes;
}

double cpu_seconds() {
  rusage ru{};
  ::getrusage(RUSAGE_SELF, &ru);
  auto secs = [](timeval t) {
    return static_cast<double>(t.tv_sec) + static_cast<double>(t.tv_usec) / 1e6;
  };
  return secs(ru.ru_utime) + secs(ru.ru_stime);
}

// -- the audit --------------------------------------------------------------

struct audit {
  bool ok = false;
  int64_t deposits = 0, available = 0, held = 0, stakes = 0, negative = 0, bet_rows = 0;
  int64_t told_accepted = 0;
  uint64_t repeat_mismatches = 0;
};

int64_t query(sqlite3* db, const char* sql) {
  statement st{db, sql};
  return st.step() ? st.column(0) : 0;
}

audit check_invariants(sqlite3* db, const options& o, const run_record& rec) {
  audit a;
  a.deposits = static_cast<int64_t>(o.wallets) * o.fund_minor;
  a.available = query(db, "SELECT coalesce(sum(balance), 0) FROM wallets");
  a.held = query(db, "SELECT coalesce(sum(held), 0) FROM wallets");
  a.negative = query(db, "SELECT count(*) FROM wallets WHERE balance < 0 OR held < 0");
  a.stakes = query(db, "SELECT coalesce(sum(stake), 0) FROM bets");
  a.bet_rows = query(db, "SELECT count(*) FROM bets");
  a.told_accepted = static_cast<int64_t>(rec.distinct_accepted);
  a.repeat_mismatches = rec.repeat_mismatches;
  a.ok = a.available + a.held == a.deposits && a.negative == 0 && a.held == a.stakes
         && a.bet_rows == a.told_accepted && a.repeat_mismatches == 0;
  return a;
}

// -- the JSON line ----------------------------------------------------------

// A JSON object written field by field, numbers plainly ("12.5").
class json_object {
public:
  json_object& field(const char* k, double v) {
    char buf[64];
    std::snprintf(buf, sizeof buf, "%.10g", std::isfinite(v) ? v : 0.0);
    return raw(k, buf);
  }
  json_object& field(const char* k, int64_t v) { return raw(k, std::to_string(v)); }
  json_object& field(const char* k, uint64_t v) { return raw(k, std::to_string(v)); }
  json_object& field(const char* k, int v) { return raw(k, std::to_string(v)); }
  json_object& field(const char* k, bool v) { return raw(k, v ? "true" : "false"); }
  json_object& field(const char* k, const char* v) { return raw(k, quoted(v)); }
  json_object& field(const char* k, const std::string& v) { return raw(k, quoted(v)); }
  json_object& field(const char* k, const json_object& v) { return raw(k, v.str()); }
  std::string str() const { return "{" + body_ + "}"; }

private:
  json_object& raw(const char* k, const std::string& v) {
    if (!body_.empty())
      body_ += ',';
    body_ += quoted(k) + ":" + v;
    return *this;
  }
  static std::string quoted(const std::string& s) {
    std::string out = "\"";
    for (char c : s) {
      if (c == '"' || c == '\\')
        out += '\\';
      if (static_cast<unsigned char>(c) >= 0x20)
        out += c;
    }
    return out + "\"";
  }
  std::string body_;
};

double round3(double x) {
  return std::round(x * 1000.0) / 1000.0;
}

double quantile(const std::vector<double>& sorted, double p) {
  if (sorted.empty())
    return 0;
  auto i = static_cast<size_t>(p * static_cast<double>(sorted.size()));
  return sorted[std::min(sorted.size() - 1, i)];
}

std::string first_line_with(const char* file, const char* prefix) {
  std::ifstream in{file};
  for (std::string line; std::getline(in, line);)
    if (line.rfind(prefix, 0) == 0)
      return line;
  return {};
}

std::string after_colon(const std::string& line) {
  auto i = line.find(':');
  if (i == std::string::npos)
    return {};
  auto s = line.substr(i + 1);
  s.erase(0, s.find_first_not_of(" \t"));
  return s;
}

double rss_mb(bool peak) {
  auto v = after_colon(first_line_with("/proc/self/status", peak ? "VmHWM:" : "VmRSS:"));
  return v.empty() ? 0.0 : round3(static_cast<double>(std::stol(v)) / 1024.0);
}

// The file system and block device under `path`, as wager-bench reports it.
json_object disk_of(const std::string& path) {
  json_object d;
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0)
    return d;
  auto dev = std::to_string(major(st.st_dev)) + ":" + std::to_string(minor(st.st_dev));
  std::ifstream in{"/proc/self/mountinfo"};
  for (std::string line; std::getline(in, line);) {
    std::istringstream f{line};
    std::string id, parent, majmin, root, mount;
    f >> id >> parent >> majmin >> root >> mount;
    auto dash = line.find(" - ");
    if (majmin != dev || dash == std::string::npos)
      continue;
    std::istringstream g{line.substr(dash + 3)};
    std::string fstype, source;
    g >> fstype >> source;
    d.field("fs", fstype).field("device", source);
    std::ifstream rot{"/sys/block/" + fs::path{source}.filename().string() + "/queue/rotational"};
    if (int r = -1; rot >> r)
      d.field("rotational", r == 1);
    break;
  }
  return d.field("path", path);
}

json_object machine_facts(const std::string& dir) {
  double load1 = 0;
  std::ifstream{"/proc/loadavg"} >> load1;
  auto mem_kb = after_colon(first_line_with("/proc/meminfo", "MemTotal:"));
  return json_object{}
    .field("cores", static_cast<int>(std::thread::hardware_concurrency()))
    .field("cpu", after_colon(first_line_with("/proc/cpuinfo", "model name")))
    .field("mem_mb", static_cast<int64_t>(mem_kb.empty() ? 0 : std::stol(mem_kb) / 1024))
    .field("load1_at_start", load1)
    .field("disk", disk_of(dir));
}

json_object invariants_of(const audit& a) {
  return json_object{}
    .field("money_ok", a.available + a.held == a.deposits && a.negative == 0 && a.held == a.stakes)
    .field("deposits_minor", a.deposits)
    .field("available_minor", a.available)
    .field("held_minor", a.held)
    .field("stakes_minor", a.stakes)
    .field("negative_balances", a.negative)
    .field("bet_rows", a.bet_rows)
    .field("bets_told_accepted", a.told_accepted)
    .field("repeat_mismatches", a.repeat_mismatches);
}

// -- one configuration ------------------------------------------------------

struct counters {
  double cpu_seconds = 0;
  uint64_t commits = 0, items = 0;
  double commit_seconds = 0;
};

json_object cost_of(const counters& a, const counters& b, double secs, size_t bets) {
  auto commits = static_cast<double>(b.commits - a.commits);
  auto n = static_cast<double>(std::max<size_t>(1, bets));
  return json_object{}
    .field("commits_per_s", commits / secs)
    .field("writes_per_commit", commits > 0 ? static_cast<double>(b.items - a.items) / commits : 0.0)
    .field("commit_ms_mean", commits > 0 ? 1000.0 * (b.commit_seconds - a.commit_seconds) / commits : 0.0)
    .field("cpu_cores_busy", (b.cpu_seconds - a.cpu_seconds) / secs)
    .field("cpu_us_per_bet", 1e6 * (b.cpu_seconds - a.cpu_seconds) / n);
}

json_object result_line(const options& o, int clients, double secs, run_record& r) {
  auto& l = r.latencies_ms;
  std::sort(l.begin(), l.end());
  auto per_s = [&](uint64_t n) { return round3(static_cast<double>(n) / secs); };
  return json_object{}
    .field("mode", "sql_bet")
    .field("clients", clients)
    .field("seconds", round3(secs))
    .field("wallets", o.wallets)
    .field("markets", o.markets)
    .field("seed", o.seed)
    .field("batch_max", static_cast<uint64_t>(o.batch_max))
    .field("sqlite", json_object{}
                       .field("version", sqlite3_libversion())
                       .field("journal_mode", "wal")
                       .field("synchronous", "full"))
    .field("bets", static_cast<uint64_t>(l.size()))
    .field("accepted_per_s", per_s(r.accepted))
    .field("rejected_per_s", per_s(r.rejected))
    .field("price_changed_per_s", per_s(r.price_changed))
    .field("stale_sent", r.stale_sent)
    .field("repeats", r.repeats)
    .field("repeat_mismatches", r.repeat_mismatches)
    .field("failed", r.failed)
    .field("p50_ms", round3(quantile(l, 0.50)))
    .field("p99_ms", round3(quantile(l, 0.99)))
    .field("p999_ms", round3(quantile(l, 0.999)))
    .field("max_ms", round3(l.empty() ? 0.0 : l.back()));
}

// "c64" for a configuration, "c64-7-" for its client 7's request ids.
// (Appended piecewise: GCC 12 warns falsely on "c" + std::string at -O3.)
std::string request_prefix(int clients, int client = -1) {
  std::string p = "c";
  p += std::to_string(clients);
  if (client >= 0) {
    p += '-';
    p += std::to_string(client);
    p += '-';
  }
  return p;
}

// Runs `clients` closed-loop clients and the feed for o.seconds against a
// fresh database in `dir`; prints the line; true when the audit held.
bool run_configuration(const options& o, int clients, const std::string& dir) {
  fs::remove_all(dir);
  fs::create_directories(dir);
  auto facts = machine_facts(dir);
  price_board board{o.markets, o.seed};
  zipf_markets zipf{o.markets, o.zipf_s};
  sqlite3* db = open_database((fs::path{dir} / "bets.db").string());
  fill(db, o, board);
  std::vector<bettor> bettors;
  for (int c = 0; c < clients; ++c)
    bettors.emplace_back(o, zipf, board, request_prefix(clients, c),
                         o.seed * 1000003 + static_cast<uint64_t>(c));
  std::vector<run_record> records(static_cast<size_t>(clients));
  counters before, after;
  uint64_t feed_changes = 0;
  double secs = 0;
  {
    writer w{db, board, o.batch_max};
    std::atomic<bool> running{true};
    before = {cpu_seconds(), w.commits(), w.items(), w.commit_seconds()};
    auto t0 = clock_type::now();
    std::thread feed{[&] { feed_changes = feed_loop(w, o, running); }};
    std::vector<std::thread> threads;
    for (size_t c = 0; c < bettors.size(); ++c)
      threads.emplace_back([&, c] { client_loop(w, bettors[c], records[c], running); });
    std::this_thread::sleep_for(std::chrono::duration<double>(o.seconds));
    running = false;
    for (auto& t : threads)
      t.join();
    feed.join();
    secs = std::chrono::duration<double>(clock_type::now() - t0).count();
    after = {cpu_seconds(), w.commits(), w.items(), w.commit_seconds()};
  }
  run_record all;
  for (auto& r : records)
    all.merge(r);
  auto line = result_line(o, clients, secs, all);
  auto a = check_invariants(db, o, all);
  sqlite3_close(db);
  line.field("rss_mb", rss_mb(false))
    .field("peak_rss_mb", rss_mb(true))
    .field("feed_changes", feed_changes)
    .field("cost", cost_of(before, after, secs, all.latencies_ms.size()))
    .field("invariants_ok", a.ok)
    .field("invariants", invariants_of(a))
    .field("machine", facts);
  std::printf("%s\n", line.str().c_str());
  std::fflush(stdout);
  if (!o.keep_data)
    fs::remove_all(dir);
  return a.ok;
}

// -- options ----------------------------------------------------------------

constexpr const char* usage =
  "usage: wager_bench_sql_bet [--clients 64[,N...]] [--seconds 10] [--wallets 100000]\n"
  "         [--markets 1000] [--seed 42] [--zipf 1.1] [--fund 100000] [--feed-per-s 100]\n"
  "         [--batch-max 1024] [--data-dir DIR] [--keep-data]\n";

[[noreturn]] void bad_option(const std::string& why) {
  std::fprintf(stderr, "wager_bench_sql_bet: %s\n%s", why.c_str(), usage);
  std::exit(2);
}

double number(const std::string& name, const std::string& v, double low, double high) {
  char* end = nullptr;
  auto x = std::strtod(v.c_str(), &end);
  if (v.empty() || *end != '\0' || !(x >= low && x <= high)) {
    char why[160];
    std::snprintf(why, sizeof why, " wants a number from %g to %g", low, high);
    bad_option(name + why);
  }
  return x;
}

options parse(int argc, char** argv) {
  options o;
  for (int i = 1; i < argc; ++i) {
    std::string name = argv[i];
    if (name == "--keep-data") {
      o.keep_data = true;
      continue;
    }
    if (name == "--help" || name == "-h") {
      std::fputs(usage, stdout);
      std::exit(0);
    }
    if (i + 1 >= argc)
      bad_option(name + " needs a value");
    std::string v = argv[++i];
    if (name == "--clients") {
      o.clients.clear();
      std::istringstream in{v};
      for (std::string c; std::getline(in, c, ',');)
        o.clients.push_back(static_cast<int>(number(name, c, 1, 100'000)));
    } else if (name == "--seconds") {
      o.seconds = number(name, v, 0.1, 86'400);
    } else if (name == "--wallets") {
      o.wallets = static_cast<int>(number(name, v, 1, 10'000'000));
    } else if (name == "--markets") {
      o.markets = static_cast<int>(number(name, v, 1, 1'000'000));
    } else if (name == "--seed") {
      o.seed = static_cast<uint64_t>(number(name, v, 0, 1e15));
    } else if (name == "--zipf") {
      o.zipf_s = number(name, v, 0, 10);
    } else if (name == "--fund") {
      o.fund_minor = static_cast<int64_t>(number(name, v, 1, 1e12));
    } else if (name == "--feed-per-s") {
      o.feed_per_s = number(name, v, 0.001, 100'000);
    } else if (name == "--batch-max") {
      o.batch_max = static_cast<size_t>(number(name, v, 1, batch_max_limit));
    } else if (name == "--data-dir") {
      o.data_dir = v;
    } else {
      bad_option("unknown option " + name);
    }
  }
  return o;
}

} // namespace

int main(int argc, char** argv) {
  auto o = parse(argc, argv);
  auto root = o.data_dir.empty()
                ? (fs::temp_directory_path() / ("sql-bet-" + std::to_string(::getpid()))).string()
                : o.data_dir;
  bool all_ok = true;
  for (int clients : o.clients)
    all_ok = run_configuration(o, clients, (fs::path{root} / request_prefix(clients)).string())
             && all_ok;
  if (!o.keep_data && o.data_dir.empty())
    fs::remove_all(root);
  return all_ok ? 0 : 1;
}
