// wager-bench: the match-day workload of shared/WORKLOAD.md, one JSON line
// per configuration on stdout (progress and errors on stderr).
//
//   wager-bench --mode inproc --clients 1,16,64 --seconds 10
//   wager-bench --mode http --url http://127.0.0.1:8080 --admin-key K
//               --data-dir NODE_DATA --node-pid PID --clients 16,64 --wallets 128
//   wager-bench --mode wallets --wallets 100000
//   wager-bench --mode http --url http://127.0.0.1:8081,http://127.0.0.1:8082 ...
//   wager-bench --mode cluster-seed | cluster-live | cluster-probe ...
//               (bench/cluster/cluster_bench.sh drives these)
//
// Exit status: 0 done and every invariant held, 1 an invariant failed,
// 2 the run could not be made (bad options, setup refused).

#include "modes.hpp"

#include <CLI/CLI.hpp>
#include <sqlite3.h>

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <spawn.h>
#include <string>
#include <sys/wait.h>
#include <vector>

extern char** environ;

namespace {

// Each in-process configuration runs in a process of its own: a stopped
// platform's memory is not all handed back to the OS, so a second
// configuration in the same process would report the first one's RSS too.
// Returns the worst exit status.
int run_each_in_own_process(int argc, char** argv, const std::vector<int>& clients) {
  std::vector<std::string> base;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (a == "--clients") {
      ++i;
      continue;
    }
    if (a.rfind("--clients=", 0) == 0)
      continue;
    base.push_back(a);
  }
  int worst = 0;
  for (int c : clients) {
    auto args = base;
    args.push_back("--clients");
    args.push_back(std::to_string(c));
    std::vector<char*> cargv{argv[0]};
    for (auto& a : args)
      cargv.push_back(a.data());
    cargv.push_back(nullptr);
    std::fflush(stdout);
    pid_t pid = 0;
    if (int err = posix_spawn(&pid, "/proc/self/exe", nullptr, nullptr, cargv.data(), environ)) {
      std::fprintf(stderr, "wager-bench: cannot start a run: %s\n", std::strerror(err));
      return 2;
    }
    int status = 0;
    ::waitpid(pid, &status, 0);
    worst = std::max(worst, WIFEXITED(status) ? WEXITSTATUS(status) : 2);
  }
  return worst;
}

} // namespace

int main(int argc, char** argv) {
  using namespace wager::bench;
  bench_options o;
  bool wallets_given = false;
  CLI::App app{"wager-bench: the match-day workload (shared/WORKLOAD.md)", "wager-bench"};
  app.add_option("--mode", o.mode,
                 "inproc, http, wallets, or for bench/cluster: cluster-seed, cluster-live, "
                 "cluster-probe (default inproc)")
    ->check(CLI::IsMember(
      {"inproc", "http", "wallets", "cluster-seed", "cluster-live", "cluster-probe"}));
  app.add_option("--clients", o.clients, "concurrent clients, one configuration each (default 1,16,64)")
    ->delimiter(',')
    ->check(CLI::Range(1, 100'000));
  app.add_option("--seconds", o.seconds, "seconds per configuration (default 10)")
    ->check(CLI::Range(0.1, 86'400.0));
  app.add_option_function<int>("--wallets", [&](int n) { o.wallets = n; wallets_given = true; },
                               "wallets (default 100000; http: 128, each a user)")
    ->check(CLI::Range(1, 10'000'000));
  app.add_option("--markets", o.markets, "markets, 3 selections each (default 1000)")
    ->check(CLI::Range(1, 1'000'000));
  app.add_option("--rate", o.rate_per_s,
                 "inproc: open loop, bets per second in total, at most --clients in flight "
                 "(default 0: closed loop)")
    ->check(CLI::Range(0.0, 10'000'000.0));
  app.add_option("--seed", o.seed, "random seed (default 42)");
  app.add_option("--multiples", o.multiples,
                 "share of bets that are slips: accumulators of 2 to 5 legs and Lucky 15s "
                 "(default 0: singles only; WORKLOAD.md's mixed run is 0.3)")
    ->check(CLI::Range(0.0, 1.0));
  app.add_option("--zipf", o.zipf_s, "market popularity skew s (default 1.1)")
    ->check(CLI::Range(0.0, 10.0));
  app.add_option("--fund", o.fund_minor,
                 "minor units per wallet; 0: 10^10 shared by the wallets "
                 "(default 100000 in process, 0 over http)")
    ->check(CLI::Range(int64_t{0}, int64_t{1'000'000'000'000}));
  app.add_option("--feed-per-s", o.feed_per_s, "price changes per second (default 100)")
    ->check(CLI::Range(0.001, 100'000.0));
  app.add_option("--data-dir", o.data_dir,
                 "inproc: where the journals go (default a fresh folder in /tmp); "
                 "http: the node's data dir, for the audit");
  app.add_flag("--keep-data", o.keep_data, "inproc: leave the journals behind");
  app.add_option("--journal-page-size", o.journal_page_size,
                 "inproc: SQLite page size of the new journal (default 4096)")
    ->check(CLI::IsMember({512, 1024, 2048, 4096, 8192, 16384, 32768, 65536}));
  app.add_option("--index-checkpoint-frames", o.index_checkpoint_frames,
                 "inproc, log layout: frames between saves of the journal's index checkpoint; "
                 "0 none (default 20000)")
    ->check(CLI::Range(0u, 1073741824u));
  app.add_option("--journal-batch-wait-us", o.journal_batch_wait_us,
                 "inproc: how long the journal writer lingers for more appends before a "
                 "commit that is not full, in microseconds (journal_options::batch_wait_us, "
                 "default 0)")
    ->check(CLI::Range(0u, 100000u));
  app.add_option("--journal", o.journal_url,
                 "inproc: the journal on PostgreSQL, postgresql://user@host:port/db, an empty "
                 "database (one --clients value: each run needs its own)");
  app.add_option("--journal-cache-kib", o.journal_cache_kib,
                 "inproc: the journal writer's SQLite page cache in KiB (default 2048)")
    ->check(CLI::Range(2048, 4194304));
  app.add_option("--journal-layout", o.journal_layout,
                 "inproc: how the new journal holds its history: rows (one row per event) or "
                 "log (one frame per group commit) (default log)")
    ->check(CLI::IsMember({"rows", "log"}));
  std::string history = "on";
  app.add_option("--history", history,
                 "inproc: keep the history read model (transactions and settled bets folded "
                 "from the journal in the background) (default on)")
    ->check(CLI::IsMember({"on", "off"}));
  bool late_decisions = false;
  app.add_flag("--late-decisions", late_decisions,
               "inproc: wallets wait for each market decision to be durable before "
               "committing (one more disk write per bet, for comparison)");
  app.add_option("--url", o.url,
                 "http: the node, http://HOST:PORT; several nodes of one cluster "
                 "comma-separated (connection i goes to the i-th mod n; setup and feed to the "
                 "first)");
  app.add_option("--admin-key", o.admin_key, "http: the node's operator key")
    ->envname("WAGER_ADMIN_KEY");
  app.add_option("--io-threads", o.io_threads, "http: client threads (default 1)")
    ->check(CLI::Range(1, 64));
  app.add_option("--setup-connections", o.setup_connections,
                 "http: connections creating markets and users (default 8)")
    ->check(CLI::Range(1, 256));
  app.add_option("--node-pid", o.node_pids,
                 "http: the node's pid, for rss_mb (comma list: the nodes' RSS summed)")
    ->delimiter(',');
  app.add_option("--tokens-file", o.tokens_file,
                 "cluster-*: \"user_id token\" per line (written by cluster-seed)");
  app.add_option("--shards", o.shards, "cluster-seed, cluster-probe: the nodes' --shards (256)")
    ->check(CLI::Range(1, 1'000'000));
  app.add_option("--members", o.members, "cluster-probe: every node id of the cluster")
    ->delimiter(',');
  app.add_option("--victim", o.victim, "cluster-probe: the node id signalled");
  app.add_option("--victim-url", o.victim_url,
                 "cluster-probe: its client API (entities read before the signal)");
  app.add_option("--victim-pid", o.victim_pid, "cluster-probe: its pid");
  app.add_option("--signal", o.signal, "cluster-probe: kill (failover) or term (drain)")
    ->check(CLI::IsMember({"kill", "term"}));
  app.add_option("--sample", o.sample,
                 "cluster-probe: the victim's wallets polled until served (500)")
    ->check(CLI::Range(1, 10'000'000));
  app.add_option("--load-connections", o.load_connections,
                 "cluster-probe: closed-loop balance reads over the survivors meanwhile (0)")
    ->check(CLI::Range(0, 10'000));
  app.add_option("--poll-timeout-ms", o.poll_timeout_ms,
                 "cluster-probe: a poll unanswered this long is retried (500)")
    ->check(CLI::Range(10, 600'000));
  int sqlite_mmap_mb = 0;
  app.add_option("--sqlite-mmap-mb", sqlite_mmap_mb,
                 "experiment, inproc: SQLite reads through mmap of this size instead of "
                 "pread (process-wide default; the journal does not set it) (default 0)")
    ->check(CLI::Range(0, 65536));
  CLI11_PARSE(app, argc, argv);
  o.early_decisions = !late_decisions;
  o.history = history == "on";
  for (size_t i = 0; i <= o.url.size();) {
    auto comma = std::min(o.url.find(',', i), o.url.size());
    if (comma > i)
      o.urls.push_back(o.url.substr(i, comma - i));
    i = comma + 1;
  }
  if (sqlite_mmap_mb > 0) {
    auto bytes = static_cast<sqlite3_int64>(sqlite_mmap_mb) << 20;
    sqlite3_config(SQLITE_CONFIG_MMAP_SIZE, bytes, bytes);
  }
  if (o.mode == "http") {
    if (!wallets_given)
      o.wallets = 128;
    if (app.count("--fund") == 0)
      o.fund_minor = 0;
    return run_http(o);
  }
  if (o.mode == "wallets")
    return run_wallets(o);
  if (o.mode == "cluster-seed")
    return run_cluster_seed(o);
  if (o.mode == "cluster-live")
    return run_cluster_live(o);
  if (o.mode == "cluster-probe")
    return run_cluster_probe(o);
  if (o.clients.size() > 1)
    return run_each_in_own_process(argc, argv, o.clients);
  return run_inproc(o);
}
