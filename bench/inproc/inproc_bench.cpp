// The match-day workload (shared/WORKLOAD.md) in process, through the
// library API: no network, the engine's ceiling. One JSON line per client
// count, then the money audit over the journal.
//
//   wager_bench_inproc [--wallets N] [--markets M] [--seconds S]
//                      [--clients 1,16,64] [--data-dir DIR]

#include <wager/actors/ledger_audit.hpp>
#include <wager/actors/platform.hpp>
#include <wager/persistence/sqlite_journal.hpp>
#include <wager/wager.hpp>

#include <boost/json.hpp>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <condition_variable>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <random>
#include <thread>

using namespace wager;
using clock_type = std::chrono::steady_clock;

namespace {

struct config {
  int wallets = 100'000;
  int markets = 1'000;
  int seconds = 10;
  std::vector<int> clients{1, 16, 64};
  std::string data_dir = "bench-inproc-data";
};

config parse(int argc, char** argv) {
  config c;
  for (int i = 1; i + 1 < argc; i += 2) {
    std::string k = argv[i], v = argv[i + 1];
    if (k == "--wallets") c.wallets = std::stoi(v);
    else if (k == "--markets") c.markets = std::stoi(v);
    else if (k == "--seconds") c.seconds = std::stoi(v);
    else if (k == "--data-dir") c.data_dir = v;
    else if (k == "--clients") {
      c.clients.clear();
      std::stringstream in{v};
      for (std::string x; std::getline(in, x, ',');)
        c.clients.push_back(std::stoi(x));
    }
  }
  return c;
}

long rss_kb(const char* field) {
  std::ifstream in{"/proc/self/status"};
  for (std::string line; std::getline(in, line);)
    if (line.rfind(field, 0) == 0)
      return std::stol(line.substr(std::strlen(field)));
  return 0;
}

// Current prices, read by bettors (who bet at what they last saw) and moved
// by the feed thread.
struct price_board {
  std::vector<std::atomic<int32_t>> cells;
  explicit price_board(size_t n) : cells(n) {}
};

struct run_stats {
  std::mutex m;
  std::vector<double> latencies_ms;
  std::atomic<long> accepted{0}, rejected{0}, failed{0};
};

template <class T>
T must(caf::expected<T> r, const char* what) {
  if (!r) {
    std::fprintf(stderr, "%s failed: %s\n", what, std::string{to_code(code_of(r.error()))}.c_str());
    std::exit(1);
  }
  return std::move(*r);
}

// Runs `total` calls with at most `window` in flight.
template <class Start>
void windowed(int total, int window, Start start) {
  std::mutex m;
  std::condition_variable cv;
  int in_flight = 0, done = 0;
  for (int i = 0; i < total; ++i) {
    std::unique_lock lock{m};
    cv.wait(lock, [&] { return in_flight < window; });
    ++in_flight;
    lock.unlock();
    start(i, [&] {
      std::lock_guard g{m};
      --in_flight;
      ++done;
      cv.notify_all();
    });
  }
  std::unique_lock lock{m};
  cv.wait(lock, [&] { return done == total; });
}

} // namespace

int main(int argc, char** argv) {
  auto cfg = parse(argc, argv);
  std::filesystem::remove_all(cfg.data_dir);
  platform_options popts;
  popts.data_dir = cfg.data_dir;
  auto started = platform::start(popts);
  if (!started) {
    std::fprintf(stderr, "cannot start: %s\n", message_of(started.error()).c_str());
    return 1;
  }
  auto& p = **started;
  std::mt19937_64 rng{42};

  // Setup: markets with 3 selections priced 1.50..9.00, open, high limits.
  price_board board(static_cast<size_t>(cfg.markets) * 3);
  windowed(cfg.markets, 64, [&](int m, auto done) {
    market_definition d{market_id{"m" + std::to_string(m)}, "Event", "Winner", {}, {money{1'000'000'000}, money{1'000'000'000'000}}, 0};
    for (int s = 0; s < 3; ++s) {
      auto pr = static_cast<int32_t>(150 + rng() % 751);
      board.cells[static_cast<size_t>(m * 3 + s)] = pr;
      d.selections.push_back({selection_id{"s" + std::to_string(s)}, "Sel", price{pr}});
    }
    auto id = d.id;
    p.create_market(d, [&p, id, done](caf::expected<market_view> r) {
      must(std::move(r), "create market");
      p.set_market_status(id, market_status::open, [done](caf::expected<market_view> r2) {
        must(std::move(r2), "open market");
        done();
      });
    });
  });
  auto rss_before_wallets = rss_kb("VmRSS:");
  windowed(cfg.wallets, 512, [&](int w, auto done) {
    p.deposit(user_id{"w" + std::to_string(w)}, request_id{"fund"}, money{100'000},
              [done](caf::expected<wallet_receipt> r) {
                must(std::move(r), "deposit");
                done();
              });
  });
  auto rss_after_wallets = rss_kb("VmRSS:");

  // Zipf-like market popularity, s = 1.1.
  std::vector<double> cdf(static_cast<size_t>(cfg.markets));
  double sum = 0;
  for (int k = 0; k < cfg.markets; ++k)
    cdf[static_cast<size_t>(k)] = (sum += 1.0 / std::pow(k + 1, 1.1));
  for (auto& x : cdf)
    x /= sum;

  // Background feed: 100 price changes per second on random markets.
  std::atomic<bool> feeding{true};
  std::thread feed{[&] {
    std::mt19937_64 frng{7};
    auto next = clock_type::now();
    while (feeding) {
      auto m = static_cast<int>(frng() % static_cast<uint64_t>(cfg.markets));
      auto s = static_cast<int>(frng() % 3);
      auto pr = static_cast<int32_t>(150 + frng() % 751);
      board.cells[static_cast<size_t>(m * 3 + s)] = pr;
      p.set_prices(market_id{"m" + std::to_string(m)}, {{"s" + std::to_string(s), price{pr}}},
                   [](caf::expected<market_view>) {});
      next += std::chrono::milliseconds{10};
      std::this_thread::sleep_until(next);
    }
  }};

  long bet_counter = 0;
  for (int clients : cfg.clients) {
    run_stats stats;
    std::atomic<bool> running{true};
    std::atomic<int> active{clients};
    std::mutex done_m;
    std::condition_variable done_cv;
    struct client {
      std::mt19937_64 rng;
      std::vector<std::pair<user_id, place_bet_cmd>> recent;
      long serial = 0;
    };
    std::vector<client> cs(static_cast<size_t>(clients));
    std::function<void(int)> next_bet = [&](int c) {
      if (!running) {
        if (--active == 0) {
          std::lock_guard g{done_m};
          done_cv.notify_all();
        }
        return;
      }
      auto& cl = cs[static_cast<size_t>(c)];
      user_id user;
      place_bet_cmd cmd;
      auto roll = cl.rng() % 100;
      if (roll == 0 && !cl.recent.empty()) { // ~1%: repeat an earlier request
        auto& prev = cl.recent[cl.rng() % cl.recent.size()];
        user = prev.first;
        cmd = prev.second;
      } else {
        user = user_id{"w" + std::to_string(cl.rng() % static_cast<uint64_t>(cfg.wallets))};
        auto u = std::uniform_real_distribution<double>{0, 1}(cl.rng);
        auto m = static_cast<int>(std::lower_bound(cdf.begin(), cdf.end(), u) - cdf.begin());
        m = std::min(m, cfg.markets - 1);
        auto s = static_cast<int>(cl.rng() % 3);
        auto pr = board.cells[static_cast<size_t>(m * 3 + s)].load();
        if (roll < 3) // ~2%: a stale price
          pr = pr < 900 ? pr + 1 : pr - 1;
        cmd = place_bet_cmd{request_id{"c" + std::to_string(c) + "-" + std::to_string(clients)
                                       + "-" + std::to_string(cl.serial++)},
                            market_id{"m" + std::to_string(m)},
                            selection_id{"s" + std::to_string(s)},
                            money{static_cast<int64_t>(100 + cl.rng() % 4901)}, price{pr},
                            accept_policy::exact};
        if (cl.recent.size() < 256)
          cl.recent.emplace_back(user, cmd);
        else
          cl.recent[cl.rng() % 256] = {user, cmd};
      }
      auto t0 = clock_type::now();
      p.place_bet(user, cmd, [&, c, t0](caf::expected<bet> r) {
        auto ms = std::chrono::duration<double, std::milli>(clock_type::now() - t0).count();
        if (r)
          ++stats.accepted;
        else if (code_of(r.error()) == errc::price_changed
                 || code_of(r.error()) == errc::insufficient_funds)
          ++stats.rejected;
        else
          ++stats.failed;
        {
          std::lock_guard g{stats.m};
          stats.latencies_ms.push_back(ms);
        }
        next_bet(c);
      });
    };
    for (int c = 0; c < clients; ++c)
      cs[static_cast<size_t>(c)].rng.seed(static_cast<uint64_t>(c * 7919 + clients));
    auto t_start = clock_type::now();
    for (int c = 0; c < clients; ++c)
      next_bet(c);
    std::this_thread::sleep_for(std::chrono::seconds{cfg.seconds});
    running = false;
    {
      std::unique_lock lock{done_m};
      done_cv.wait(lock, [&] { return active == 0; });
    }
    auto secs = std::chrono::duration<double>(clock_type::now() - t_start).count();
    auto& l = stats.latencies_ms;
    std::sort(l.begin(), l.end());
    auto q = [&](double f) { return l.empty() ? 0.0 : l[std::min(l.size() - 1, static_cast<size_t>(f * static_cast<double>(l.size())))]; };
    bet_counter += static_cast<long>(l.size());
    boost::json::object line{
      {"mode", "inproc"}, {"clients", clients}, {"seconds", secs},
      {"wallets", cfg.wallets}, {"markets", cfg.markets},
      {"accepted_per_s", static_cast<double>(stats.accepted) / secs},
      {"rejected_per_s", static_cast<double>(stats.rejected) / secs},
      {"failed", stats.failed.load()},
      {"p50_ms", q(0.50)}, {"p99_ms", q(0.99)}, {"p999_ms", q(0.999)},
      {"rss_mb", static_cast<double>(rss_kb("VmHWM:")) / 1024.0},
      {"wallet_kb_each", static_cast<double>(rss_after_wallets - rss_before_wallets)
                           / std::max(1, cfg.wallets)},
      {"machine", boost::json::object{{"cores", std::thread::hardware_concurrency()}}}};
    std::printf("%s\n", boost::json::serialize(line).c_str());
    std::fflush(stdout);
  }
  feeding = false;
  feed.join();
  p.stop();

  // The money audit over the whole journal: a run whose invariant fails
  // has no number.
  journal_options jopts;
  jopts.path = (std::filesystem::path{cfg.data_dir} / "journal.db").string();
  jopts.create_if_missing = false;
  auto j = open_sqlite_journal(jopts);
  if (!j) {
    std::fprintf(stderr, "cannot reopen the journal\n");
    return 1;
  }
  auto report = audit_ledger(**j);
  bool ok = report && report->violations.empty();
  std::printf("%s\n", boost::json::serialize(boost::json::object{
                        {"mode", "inproc"}, {"audit", "money"}, {"bets", bet_counter},
                        {"invariants_ok", ok}})
                        .c_str());
  return ok ? 0 : 1;
}
