#pragma once

// The match-day workload of shared/WORKLOAD.md, shared by every mode of
// wager-bench: what a bet looks like (uniform wallet, Zipf market, uniform
// stake, ~2% stale prices, ~1% repeated request ids), the board of current
// prices the feed moves and bettors read, the latency record, and the
// machine facts every JSON line carries.

#include <wager/persistence/journal_options.hpp>

#include <boost/json/object.hpp>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <optional>
#include <random>
#include <string>
#include <vector>

namespace wager::bench {

using clock_type = std::chrono::steady_clock;

struct bench_options {
  std::string mode = "inproc"; // inproc, http, wallets, cluster-seed, cluster-live, cluster-probe
  std::vector<int> clients{1, 16, 64};
  double seconds = 10;
  int wallets = 100'000;
  int markets = 1'000;
  uint64_t seed = 42;
  double zipf_s = 1.1;
  int64_t fund_minor = 100'000;   // per wallet; 0: the workload's total over the wallets
  double feed_per_s = 100;        // price changes per second
  double rate_per_s = 0;          // inproc: open loop at this total rate; 0: closed loop
  double stale_fraction = 0.02;   // bets at a price the bettor knows is stale
  double repeat_fraction = 0.01;  // bets that repeat an earlier request id
  double multiples = 0;           // share of bets that are slips (WORKLOAD.md's mixed run: 0.3)
  std::string data_dir;           // inproc: fresh per run; http: the node's, for the audit
  bool keep_data = false;         // inproc: leave the data dir behind
  bool early_decisions = true;    // inproc: wallet_options::early_decisions
  uint32_t journal_page_size = 4096; // inproc: journal_options::page_size
  uint32_t journal_cache_kib = 2048; // inproc: journal_options::writer_cache_kib
  uint32_t index_checkpoint_frames = journal_options{}.index_checkpoint_frames; // inproc
  uint32_t journal_batch_wait_us = journal_options{}.batch_wait_us; // inproc: the linger
  std::string journal_url; // inproc: the journal on PostgreSQL (an empty database)
  std::string journal_layout = "log"; // inproc: journal_options::layout, rows or log
  bool history = true;                // inproc: platform_options::history_enabled
  // http
  std::string url;               // one or more nodes, comma-separated
  std::vector<std::string> urls; // `url` split at commas
  std::string admin_key;
  int io_threads = 1;
  int setup_connections = 8;
  std::vector<int> node_pids; // for rss_mb: the nodes' resident memory, summed
  // cluster-seed, cluster-live, cluster-probe (cluster_mode.cpp)
  std::string tokens_file;          // "user_id token" per line
  uint32_t shards = 256;            // the nodes' --shards
  std::vector<std::string> members; // node ids of the cluster, for placement
  std::string victim;               // the node id that is killed or drained
  std::string victim_url;           // its client API, read before the signal
  int victim_pid = 0;
  std::string signal = "kill";      // kill (failover) or term (drain)
  int sample = 500;                 // the victim's wallets polled until served
  int load_connections = 0;         // closed-loop balance reads during the probe
  int poll_timeout_ms = 500;        // a probe request unanswered this long is retried
  std::string source_net = "127.0"; // client addresses 127.0.x.y, one per connection
};

// The workload's total money: 100,000 wallets of 1000.00. With fewer wallets
// (http mode: every user costs the node two PBKDF2 hashes) each gets an equal
// share, so bets do not run wallets dry.
inline constexpr int64_t workload_total_minor = 100'000LL * 100'000LL;

int64_t funding_per_wallet(const bench_options& o);

inline constexpr int selections_per_market = 3;
inline constexpr int32_t price_low = 150;  // 1.50
inline constexpr int32_t price_high = 900; // 9.00
inline constexpr int64_t stake_low_minor = 100;
inline constexpr int64_t stake_high_minor = 5'000;
inline constexpr int64_t market_max_stake_minor = 1'000'000'000;
inline constexpr int64_t market_max_liability_minor = 1'000'000'000'000;
// Earlier requests a client remembers to repeat.
inline constexpr size_t recent_requests_max = 256;

// The workload's names: market m is "m<m>", its selection s "s<s>".
inline std::string market_name(int m) {
  return "m" + std::to_string(m);
}
inline std::string selection_name(int s) {
  return "s" + std::to_string(s);
}
// The password of every user the HTTP and cluster modes sign up.
inline const std::string bench_password = "bench-password-1";

// Current prices, read by bettors (who bet at what they last saw) and moved
// by the feed.
class price_board {
public:
  price_board(int markets, uint64_t seed);
  int32_t get(int market, int selection) const;
  void set(int market, int selection, int32_t hundredths);
  int markets() const { return markets_; }

private:
  int markets_;
  std::vector<std::atomic<int32_t>> cells_;
};

// Market popularity: P(k) proportional to 1 / (k+1)^s.
class zipf_markets {
public:
  zipf_markets(int markets, double s);
  int draw(std::mt19937_64& rng) const;

private:
  std::vector<double> cdf_;
};

// A slip's leg: its market, selection and the price the bettor saw.
struct leg_request_spec {
  int market = 0;
  int selection = 0;
  int32_t price_hundredths = 0;
};

// One bet as both modes send it: a single, or a slip when `legs` is set
// (`slip_type` is slip.hpp's name: "accumulator", "lucky15").
struct bet_request {
  int wallet = 0;
  std::string request; // request id
  int market = 0;
  int selection = 0;
  int64_t stake_minor = 0;
  int32_t price_hundredths = 0;
  bool repeat = false;
  bool stale = false;
  std::string slip_type;
  std::vector<leg_request_spec> legs;
};

// The first answer to a request: a bet id, or an error code.
struct first_answer {
  bool accepted = false;
  std::string value;
  bool operator==(const first_answer&) const = default;
};

// One client's generator and record of what it sent.
class bettor {
public:
  bettor(const bench_options& o, const zipf_markets& zipf, const price_board& board,
         std::string prefix, uint64_t seed);

  // The next bet; a repeat only of a request already answered.
  bet_request next();

  // Records the answer to `r`; for a repeat, checks it against the first
  // answer and returns false when they differ.
  bool answered(const bet_request& r, const first_answer& a);

private:
  const bench_options& o_;
  const zipf_markets& zipf_;
  const price_board& board_;
  std::string prefix_;
  std::mt19937_64 rng_;
  uint64_t serial_ = 0;
  struct remembered {
    bet_request request;
    first_answer answer;
  };
  std::vector<remembered> recent_;
};

// What one configuration measured.
struct run_record {
  std::vector<double> latencies_ms;
  uint64_t accepted = 0;         // answers that were a bet (repeats included)
  uint64_t slips_accepted = 0;   // of those, slips
  uint64_t legs_accepted = 0;    // their legs
  uint64_t accepted_legs = 0;    // legs of the distinct accepted bets (a single: 1)
  uint64_t rejected = 0;         // price_changed, insufficient_funds, limits, not open
  uint64_t price_changed = 0;
  uint64_t stale_sent = 0;
  uint64_t repeats = 0;
  uint64_t repeat_mismatches = 0; // a repeat whose answer differs from the first
  uint64_t rate_limited = 0;      // http: 429
  uint64_t failed = 0;            // anything else (timeouts, 5xx)
  std::vector<std::string> accepted_bets; // distinct accepted bet ids (not repeats)

  void merge(run_record&& other);
};

// p in [0, 1] over sorted latencies.
double quantile(const std::vector<double>& sorted, double p);

// The JSON line of one configuration, without the invariants.
boost::json::object result_line(const bench_options& o, int clients, double seconds,
                                run_record& r);

// Machine facts: cores, CPU model, memory, load, the data dir's disk.
boost::json::object machine_facts(const std::string& data_dir);

// `v` as one line of JSON, with doubles written plainly ("12.5", not
// Boost.JSON's "1.25E1"), so lines read well and diff well.
std::string json_line(const boost::json::value& v);

// Resident memory of a process in MiB: VmRSS or VmHWM (peak).
double rss_mb(int pid, bool peak);

} // namespace wager::bench
