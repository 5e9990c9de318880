// --mode inproc: the workload through the library API (actors/platform.hpp),
// no network: the engine's ceiling. Every configuration gets a fresh data
// dir and platform, so its audit covers exactly its own bets.
//
// --mode wallets: activates N wallets (one deposit each) and reports the
// resident memory they cost.

#include "invariants.hpp"
#include "modes.hpp"
#include "workload.hpp"

#include <wager/actors/platform.hpp>
#include <wager/runtime/errors.hpp>
#include <wager/runtime/metrics.hpp>

#include <boost/json.hpp>

#include <condition_variable>
#include <cstdio>
#include <filesystem>
#include <mutex>
#include <thread>
#include <sys/resource.h>
#include <unistd.h>

namespace wager::bench {
namespace {

namespace fs = std::filesystem;

// Calls still unanswered while setting up.
inline constexpr int setup_window = 512;

// Runs `total` calls with at most `window` unanswered.
template <class Start>
bool windowed(int total, int window, Start start) {
  std::mutex m;
  std::condition_variable cv;
  int in_flight = 0, done = 0;
  std::atomic<bool> ok{true};
  for (int i = 0; i < total; ++i) {
    std::unique_lock lock{m};
    cv.wait(lock, [&] { return in_flight < window; });
    ++in_flight;
    lock.unlock();
    start(i, [&](bool good) {
      if (!good)
        ok = false;
      std::lock_guard g{m};
      --in_flight;
      ++done;
      cv.notify_all();
    });
  }
  std::unique_lock lock{m};
  cv.wait(lock, [&] { return done == total; });
  return ok;
}

user_id wallet_user(int w) {
  return user_id{"w" + std::to_string(w)};
}

bool setup_markets(platform& p, const price_board& board) {
  return windowed(board.markets(), 64, [&](int m, auto done) {
    market_definition d{market_id{market_name(m)}, "Match day", "Winner", {},
                        {money{market_max_stake_minor}, money{market_max_liability_minor}}, 0};
    for (int s = 0; s < selections_per_market; ++s)
      d.selections.push_back({selection_id{selection_name(s)}, "Selection", price{board.get(m, s)}});
    auto id = d.id;
    p.create_market(d, [&p, id, done](caf::expected<market_view> r) {
      if (!r)
        return done(false);
      p.set_market_status(id, market_status::open,
                          [done](caf::expected<market_view> r2) { done(static_cast<bool>(r2)); });
    });
  });
}

bool fund_wallets(platform& p, int wallets, int64_t minor) {
  return windowed(wallets, setup_window, [&](int w, auto done) {
    p.deposit(wallet_user(w), request_id{"fund"}, money{minor},
              [done](caf::expected<wallet_receipt> r) { done(static_cast<bool>(r)); });
  });
}

// The background feed: feed_per_s price changes on uniform random markets.
class feed_thread {
public:
  feed_thread(platform& p, price_board& board, const bench_options& o)
    : thread_([this, &p, &board, &o] { run(p, board, o); }) {}
  ~feed_thread() {
    running_ = false;
    thread_.join();
  }
  uint64_t changes() const { return changes_; }

private:
  void run(platform& p, price_board& board, const bench_options& o) {
    std::mt19937_64 rng{o.seed * 31 + 7};
    auto period = std::chrono::duration_cast<clock_type::duration>(
      std::chrono::duration<double>(1.0 / std::max(0.001, o.feed_per_s)));
    auto next = clock_type::now();
    while (running_) {
      auto m = static_cast<int>(rng() % static_cast<uint64_t>(board.markets()));
      auto s = static_cast<int>(rng() % selections_per_market);
      auto pr = static_cast<int32_t>(price_low + static_cast<int32_t>(rng() % (price_high - price_low + 1)));
      // The board moves first: a bettor who reads it after this is stale
      // only if the market has not moved yet, and then the market refuses
      // or accepts, never both.
      p.set_prices(market_id{market_name(m)}, {{selection_name(s), price{pr}}},
                   [&board, m, s, pr](caf::expected<market_view> r) {
                     if (r)
                       board.set(m, s, pr);
                   });
      ++changes_;
      next += period;
      std::this_thread::sleep_until(next);
    }
  }

  std::atomic<bool> running_{true};
  std::atomic<uint64_t> changes_{0};
  std::thread thread_;
};

// Closed-loop clients: each sends its next bet when the previous is
// answered. With a rate (open loop), a pacer starts bet k at t0 + k / rate
// on an idle client; latency counts from that intended start, so time spent
// waiting for an idle client is in it (no coordinated omission).
class client_pool {
public:
  client_pool(platform& p, const bench_options& o, const zipf_markets& zipf,
              const price_board& board, int clients)
    : p_(p), rate_(o.rate_per_s), records_(static_cast<size_t>(clients)), active_(clients) {
    for (int c = 0; c < clients; ++c)
      bettors_.emplace_back(o, zipf, board,
                            "c" + std::to_string(clients) + "-" + std::to_string(c) + "-",
                            o.seed * 1000003 + static_cast<uint64_t>(c));
  }

  run_record run(double seconds) {
    if (rate_ > 0) {
      pace(seconds);
    } else {
      for (size_t c = 0; c < bettors_.size(); ++c)
        send(c, clock_type::now());
      std::this_thread::sleep_for(std::chrono::duration<double>(seconds));
      running_ = false;
    }
    std::unique_lock lock{m_};
    cv_.wait(lock, [&] { return active_ == 0; });
    run_record all;
    for (auto& r : records_)
      all.merge(std::move(r));
    return all;
  }

private:
  void pace(double seconds) {
    std::unique_lock lock{m_};
    for (size_t c = 0; c < bettors_.size(); ++c)
      idle_.push_back(c);
    auto start = clock_type::now();
    auto end = start + std::chrono::duration_cast<clock_type::duration>(
                         std::chrono::duration<double>(seconds));
    auto period = std::chrono::duration<double>(1.0 / rate_);
    for (uint64_t k = 0;; ++k) {
      auto at = start + std::chrono::duration_cast<clock_type::duration>(period * static_cast<double>(k));
      if (at >= end)
        break;
      lock.unlock();
      std::this_thread::sleep_until(at);
      lock.lock();
      cv_.wait(lock, [&] { return !idle_.empty(); });
      auto c = idle_.back();
      idle_.pop_back();
      lock.unlock();
      send(c, at);
      lock.lock();
    }
    running_ = false;
    // Idle clients are done; busy ones finish on their answer.
    active_ -= static_cast<int>(idle_.size());
    idle_.clear();
  }

  void next(size_t c) {
    if (rate_ <= 0)
      return send(c, clock_type::now());
    std::lock_guard g{m_};
    if (!running_) {
      if (--active_ == 0)
        cv_.notify_all();
      return;
    }
    idle_.push_back(c);
    cv_.notify_all();
  }

  void send(size_t c, clock_type::time_point t0) {
    if (!running_) {
      std::lock_guard g{m_};
      if (--active_ == 0)
        cv_.notify_all();
      return;
    }
    auto r = bettors_[c].next();
    auto user = wallet_user(r.wallet);
    auto done = [this, c, t0, r](caf::expected<bet> b) {
      answered(c, r, b, clock_type::now() - t0);
      next(c);
    };
    if (!r.legs.empty()) {
      place_slip_cmd cmd;
      cmd.request = request_id{r.request};
      cmd.type = parse_slip_type(r.slip_type).value_or(slip_type::accumulator);
      cmd.stake = money{r.stake_minor};
      for (auto& l : r.legs)
        cmd.legs.push_back({market_id{market_name(l.market)},
                            selection_id{selection_name(l.selection)}, price{l.price_hundredths}});
      return p_.place_slip(user, std::move(cmd), std::move(done));
    }
    place_bet_cmd cmd{request_id{r.request}, market_id{market_name(r.market)},
                      selection_id{selection_name(r.selection)}, money{r.stake_minor},
                      price{r.price_hundredths}, accept_policy::exact};
    p_.place_bet(user, std::move(cmd), std::move(done));
  }

  void answered(size_t c, const bet_request& r, const caf::expected<bet>& b,
                clock_type::duration took) {
    auto& rec = records_[c];
    rec.latencies_ms.push_back(std::chrono::duration<double, std::milli>(took).count());
    rec.stale_sent += r.stale ? 1 : 0;
    rec.repeats += r.repeat ? 1 : 0;
    first_answer a;
    if (b) {
      ++rec.accepted;
      a = {true, b->id.value};
      auto legs = r.legs.empty() ? 1 : r.legs.size();
      if (!r.legs.empty()) {
        ++rec.slips_accepted;
        rec.legs_accepted += legs;
      }
      if (!r.repeat) {
        rec.accepted_bets.push_back(b->id.value);
        rec.accepted_legs += legs;
      }
    } else {
      auto code = code_of(b.error());
      a = {false, std::string{to_code(code)}};
      switch (code) {
        case errc::price_changed: ++rec.price_changed; [[fallthrough]];
        case errc::insufficient_funds:
        case errc::limit_exceeded:
        case errc::market_not_open: ++rec.rejected; break;
        default: ++rec.failed; return; // no first answer to compare against
      }
    }
    if (!bettors_[c].answered(r, a))
      ++rec.repeat_mismatches;
  }

  platform& p_;
  double rate_;
  std::vector<size_t> idle_; // open loop: clients with nothing in flight
  std::vector<bettor> bettors_;
  std::vector<run_record> records_;
  std::atomic<bool> running_{true};
  std::mutex m_;
  std::condition_variable cv_;
  int active_;
};

// The journal's own counters, read before and after a run: how many
// commits (fsyncs) and appends it made, and how long the commits took.
struct journal_counters {
  double commits = 0;
  double appends = 0;
  double commit_seconds = 0;
  double cpu_seconds = 0; // this process, user + system

  static journal_counters read(platform& p) {
    journal_counters c;
    for (auto& family : p.metrics().registry().Collect()) {
      if (family.metric.empty())
        continue;
      auto& h = family.metric.front().histogram;
      if (family.name == "wager_journal_batch_size") {
        c.commits = static_cast<double>(h.sample_count);
        c.appends = h.sample_sum;
      } else if (family.name == "wager_journal_commit_seconds") {
        c.commit_seconds = h.sample_sum;
      }
    }
    rusage ru{};
    ::getrusage(RUSAGE_SELF, &ru);
    auto secs = [](timeval t) { return static_cast<double>(t.tv_sec) + static_cast<double>(t.tv_usec) / 1e6; };
    c.cpu_seconds = secs(ru.ru_utime) + secs(ru.ru_stime);
    return c;
  }
};

// Where the run's time went: commits per second, appends per commit and per
// bet, mean commit time, and CPU per bet.
boost::json::object cost_of(const journal_counters& a, const journal_counters& b, double secs,
                            size_t bets) {
  auto commits = b.commits - a.commits;
  auto appends = b.appends - a.appends;
  auto n = static_cast<double>(std::max<size_t>(1, bets));
  return boost::json::object{
    {"commits_per_s", commits / secs},
    {"appends_per_s", appends / secs},
    {"appends_per_commit", commits > 0 ? appends / commits : 0.0},
    {"appends_per_bet", appends / n},
    {"commit_ms_mean", commits > 0 ? 1000.0 * (b.commit_seconds - a.commit_seconds) / commits : 0.0},
    {"cpu_cores_busy", (b.cpu_seconds - a.cpu_seconds) / secs},
    {"cpu_us_per_bet", 1e6 * (b.cpu_seconds - a.cpu_seconds) / n},
  };
}

caf::expected<std::unique_ptr<platform>> start_platform(const std::string& dir,
                                                        const bench_options& o) {
  fs::remove_all(dir);
  fs::create_directories(dir);
  platform_options popts;
  popts.data_dir = dir;
  popts.wallet.early_decisions = o.early_decisions;
  popts.journal.page_size = o.journal_page_size;
  popts.journal.writer_cache_kib = o.journal_cache_kib;
  popts.journal.index_checkpoint_frames = o.index_checkpoint_frames;
  popts.journal.batch_wait_us = o.journal_batch_wait_us;
  popts.journal.layout = o.journal_layout == "log" ? journal_layout::log : journal_layout::rows;
  popts.history_enabled = o.history;
  popts.journal.url = o.journal_url;
  return platform::start(popts);
}

std::string default_dir(const bench_options& o) {
  if (!o.data_dir.empty())
    return o.data_dir;
  return (fs::temp_directory_path() / ("wager-bench-" + std::to_string(::getpid()))).string();
}

} // namespace

int run_inproc(const bench_options& o) {
  if (!o.journal_url.empty() && o.clients.size() != 1) {
    std::fprintf(stderr, "wager-bench: --journal takes one --clients value: each run needs an "
                         "empty database of its own\n");
    return 2;
  }
  auto root = default_dir(o);
  bool all_ok = true;
  for (int clients : o.clients) {
    auto dir = (fs::path{root} / ("c" + std::to_string(clients))).string();
    auto facts = machine_facts(dir);
    auto started = start_platform(dir, o);
    if (!started) {
      std::fprintf(stderr, "wager-bench: cannot start: %s\n", message_of(started.error()).c_str());
      return 2;
    }
    auto& p = **started;
    price_board board{o.markets, o.seed};
    zipf_markets zipf{o.markets, o.zipf_s};
    if (!setup_markets(p, board) || !fund_wallets(p, o.wallets, funding_per_wallet(o))) {
      std::fprintf(stderr, "wager-bench: setup failed (markets or deposits refused)\n");
      return 2;
    }
    run_record rec;
    double secs = 0;
    uint64_t feed_changes = 0;
    auto before = journal_counters::read(p);
    {
      feed_thread feed{p, board, o};
      client_pool pool{p, o, zipf, board, clients};
      auto t0 = clock_type::now();
      rec = pool.run(o.seconds);
      secs = std::chrono::duration<double>(clock_type::now() - t0).count();
      feed_changes = feed.changes();
    }
    auto cost = cost_of(before, journal_counters::read(p), secs, rec.latencies_ms.size());
    auto rss = rss_mb(0, false);
    auto peak = rss_mb(0, true);
    p.stop();
    started->reset();
    auto line = result_line(o, clients, secs, rec);
    auto inv = check_invariants((fs::path{dir} / "journal.db").string(), rec.accepted_legs,
                                rec.repeat_mismatches, o.journal_url);
    line["rss_mb"] = rss;
    line["peak_rss_mb"] = peak;
    line["feed_changes"] = feed_changes;
    line["cost"] = std::move(cost);
    line["invariants_ok"] = inv.ok;
    line["invariants"] = std::move(inv.detail);
    line["machine"] = std::move(facts);
    std::printf("%s\n", json_line(line).c_str());
    std::fflush(stdout);
    all_ok = all_ok && inv.ok;
    if (!o.keep_data)
      fs::remove_all(dir);
  }
  if (!o.keep_data && o.data_dir.empty())
    fs::remove_all(root);
  return all_ok ? 0 : 1;
}

int run_wallets(const bench_options& o) {
  auto dir = (fs::path{default_dir(o)} / "wallets").string();
  auto facts = machine_facts(dir);
  auto started = start_platform(dir, o);
  if (!started) {
    std::fprintf(stderr, "wager-bench: cannot start: %s\n", message_of(started.error()).c_str());
    return 2;
  }
  auto& p = **started;
  // One wallet first, so the baseline includes what the first activation
  // allocates once (journal connections, caches, scheduler).
  fund_wallets(p, 1, funding_per_wallet(o));
  auto before = rss_mb(0, false);
  auto t0 = clock_type::now();
  bool ok = fund_wallets(p, o.wallets, funding_per_wallet(o));
  auto secs = std::chrono::duration<double>(clock_type::now() - t0).count();
  auto after = rss_mb(0, false);
  boost::json::object line{
    {"mode", "wallets"},
    {"wallets", o.wallets},
    {"deposits_ok", ok},
    {"activation_seconds", secs},
    {"rss_before_mb", before},
    {"rss_mb", after},
    {"peak_rss_mb", rss_mb(0, true)},
    {"bytes_per_wallet", (after - before) * 1024.0 * 1024.0 / std::max(1, o.wallets)},
    {"machine", std::move(facts)},
  };
  std::printf("%s\n", json_line(line).c_str());
  std::fflush(stdout);
  p.stop();
  started->reset();
  if (!o.keep_data)
    fs::remove_all(fs::path{dir}.parent_path());
  return ok ? 0 : 1;
}

} // namespace wager::bench
