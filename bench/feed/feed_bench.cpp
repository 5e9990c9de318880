// Feed ingest benchmark (issue "Feed ingest"), in process: no sockets, so it
// measures the ingest, the market actors and the journal.
//
//   wager_bench_feed [--markets M] [--changes N] [--subscribers S]
//                    [--rate R] [--seconds T] [--data-dir DIR]
//
// 1. throughput: one producer, M markets, N odds changes submitted as fast
//    as the ingest takes them (batches of 20,000, each awaited): applied/s.
// 2. fan-out: S subscribers spread over 100 markets (platform::subscribe,
//    the same market_update a WebSocket session forwards), odds changes paced
//    at R per second for T seconds: time from submitting a change to each
//    subscriber receiving it, p50/p99/p99.9.
// One JSON line per phase.

#include <wager/actors/feed.hpp>
#include <wager/actors/platform.hpp>
#include <wager/wager.hpp>

#include <boost/json.hpp>

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <future>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

using namespace wager;
using clock_type = std::chrono::steady_clock;
namespace json = boost::json;

namespace {

struct config {
  int markets = 1'000;
  int changes = 200'000;
  int subscribers = 1'000;
  int rate = 10'000;
  int seconds = 10;
  std::string data_dir = "bench-feed-data";
};

config parse(int argc, char** argv) {
  config c;
  for (int i = 1; i + 1 < argc; i += 2) {
    std::string k = argv[i], v = argv[i + 1];
    if (k == "--markets") c.markets = std::stoi(v);
    else if (k == "--changes") c.changes = std::stoi(v);
    else if (k == "--subscribers") c.subscribers = std::stoi(v);
    else if (k == "--rate") c.rate = std::stoi(v);
    else if (k == "--seconds") c.seconds = std::stoi(v);
    else if (k == "--data-dir") c.data_dir = v;
    else {
      std::fprintf(stderr, "unknown option %s\n", k.c_str());
      std::exit(2);
    }
  }
  return c;
}

long rss_mb() {
  std::ifstream in{"/proc/self/status"};
  for (std::string line; std::getline(in, line);)
    if (line.rfind("VmHWM:", 0) == 0)
      return std::stol(line.substr(6)) / 1024;
  return 0;
}

std::string market_name(int i) {
  return "fm" + std::to_string(i);
}

// Line builders; the producer's seq grows by one per line.
struct producer_lines {
  uint64_t seq = 0;
  std::string market(int i) {
    json::object o{{"type", "market"},
                   {"producer", "bench"},
                   {"seq", ++seq},
                   {"ts", 0},
                   {"market_id", market_name(i)},
                   {"event", "Bench " + std::to_string(i)},
                   {"name", "Winner"},
                   {"selections", json::array{json::object{{"selection_id", "a"},
                                                           {"name", "A"},
                                                           {"price", "2.00"}},
                                              json::object{{"selection_id", "b"},
                                                           {"name", "B"},
                                                           {"price", "3.00"}}}},
                   {"limits", json::object{{"max_stake", 100000}, {"max_liability", 10000000}}},
                   {"status", "open"}};
    return json::serialize(o);
  }
  // Alternates the price so that every change is a change.
  std::string odds(int i, uint64_t n) {
    json::object o{{"type", "odds_change"},
                   {"producer", "bench"},
                   {"seq", ++seq},
                   {"ts", 0},
                   {"market_id", market_name(i)},
                   {"prices", json::object{{"a", n % 2 == 0 ? "2.02" : "2.00"}}}};
    return json::serialize(o);
  }
};

feed_batch_result run_batch(feed_ingest& feed, std::vector<std::string> lines) {
  std::promise<feed_batch_result> done;
  auto f = done.get_future();
  feed.submit_batch(std::move(lines), [&](feed_batch_result r) { done.set_value(std::move(r)); });
  return f.get();
}

double percentile(std::vector<double>& xs, double p) {
  if (xs.empty())
    return 0;
  auto k = static_cast<size_t>(p * static_cast<double>(xs.size() - 1));
  std::nth_element(xs.begin(), xs.begin() + static_cast<long>(k), xs.end());
  return xs[k];
}

} // namespace

int main(int argc, char** argv) {
  auto c = parse(argc, argv);
  std::filesystem::remove_all(c.data_dir);
  platform_options po;
  po.data_dir = c.data_dir;
  auto started = platform::start(po);
  if (!started) {
    std::fprintf(stderr, "cannot start: %s\n", message_of(started.error()).c_str());
    return 1;
  }
  auto& p = **started;
  feed_options fo;
  fo.silence = std::chrono::minutes{10}; // the bench paces itself, no heartbeats
  feed_ingest feed{p.system(), p.directory(), p.metrics(), fo};
  producer_lines lines;

  // Phase 1: throughput.
  {
    std::vector<std::string> defs;
    for (int i = 0; i < c.markets; ++i)
      defs.push_back(lines.market(i));
    auto r = run_batch(feed, std::move(defs));
    if (r.applied != static_cast<uint64_t>(c.markets)) {
      std::fprintf(stderr, "markets not defined: %llu of %d\n",
                   static_cast<unsigned long long>(r.applied), c.markets);
      return 1;
    }
    uint64_t applied = 0, invalid = 0;
    auto t0 = clock_type::now();
    for (int done = 0; done < c.changes;) {
      std::vector<std::string> batch;
      for (int k = 0; k < 20'000 && done < c.changes; ++k, ++done)
        batch.push_back(lines.odds(done % c.markets, static_cast<uint64_t>(done / c.markets)));
      auto br = run_batch(feed, std::move(batch));
      applied += br.applied;
      invalid += br.invalid;
    }
    auto secs = std::chrono::duration<double>(clock_type::now() - t0).count();
    json::object out{{"bench", "feed_apply"},
                     {"producers", 1},
                     {"markets", c.markets},
                     {"messages", c.changes},
                     {"applied", applied},
                     {"invalid", invalid},
                     {"seconds", secs},
                     {"applied_per_s", static_cast<double>(applied) / secs},
                     {"rss_mb", rss_mb()},
                     {"machine", std::to_string(std::thread::hardware_concurrency()) + " cores"}};
    std::printf("%s\n", json::serialize(out).c_str());
    std::fflush(stdout);
  }

  // Phase 2: fan-out latency. Changes go round-robin over `fan_markets`
  // markets; the k-th change of market m is its version base[m] + k.
  constexpr int fan_markets = 100;
  int markets = std::min(fan_markets, c.markets);
  std::vector<uint64_t> base(markets);
  for (int m = 0; m < markets; ++m) {
    auto v = await<market_view>([&](auto done) { p.get_market(market_id{market_name(m)}, done); });
    if (!v)
      return 1;
    base[m] = v->version;
  }
  auto total = static_cast<size_t>(c.rate) * static_cast<size_t>(c.seconds);
  auto per_market = total / static_cast<size_t>(markets) + 1;
  // Submit times, written before the line is submitted, read by subscribers.
  std::vector<std::vector<std::atomic<int64_t>>> sent(markets);
  for (auto& v : sent)
    v = std::vector<std::atomic<int64_t>>(per_market);
  auto now_ns = [] {
    return std::chrono::duration_cast<std::chrono::nanoseconds>(
             clock_type::now().time_since_epoch())
      .count();
  };
  std::mutex mutex;
  std::vector<double> latencies_ms;
  latencies_ms.reserve(total * static_cast<size_t>(c.subscribers) / static_cast<size_t>(markets));
  std::atomic<uint64_t> received{0};
  std::vector<std::unique_ptr<platform::subscription>> subs;
  for (int s = 0; s < c.subscribers; ++s) {
    int m = s % markets;
    auto sub = p.subscribe(
      market_id{market_name(m)},
      [&, m](const market_update& u) {
        auto k = u.version - base[m] - 1;
        if (k >= per_market)
          return;
        auto t = sent[m][k].load(std::memory_order_acquire);
        if (t == 0)
          return;
        double ms = static_cast<double>(now_ns() - t) / 1e6;
        received.fetch_add(1, std::memory_order_relaxed);
        std::lock_guard lock{mutex};
        latencies_ms.push_back(ms);
      },
      [](caf::expected<market_view>) {});
    subs.push_back(std::move(sub));
  }
  // Subscriptions are in place once each answered; a short settle is not
  // needed: updates before the answer are simply not counted.
  std::this_thread::sleep_for(std::chrono::seconds{1});
  auto t0 = clock_type::now();
  std::vector<uint64_t> count(markets);
  for (size_t i = 0; i < total; ++i) {
    std::this_thread::sleep_until(t0 + std::chrono::nanoseconds{static_cast<int64_t>(
                                         1e9 * static_cast<double>(i) / c.rate)});
    int m = static_cast<int>(i % static_cast<size_t>(markets));
    auto k = count[m]++;
    auto line = lines.odds(m, k + 1);
    sent[m][k].store(now_ns(), std::memory_order_release);
    feed.submit(line);
  }
  auto pace_s = std::chrono::duration<double>(clock_type::now() - t0).count();
  // Wait for the tail to arrive (bounded).
  auto expected = total * static_cast<size_t>(c.subscribers) / static_cast<size_t>(markets);
  auto deadline = clock_type::now() + std::chrono::seconds{30};
  while (received.load() < expected && clock_type::now() < deadline)
    std::this_thread::sleep_for(std::chrono::milliseconds{50});
  subs.clear();
  std::vector<double> xs;
  {
    std::lock_guard lock{mutex};
    xs = latencies_ms;
  }
  json::object out{{"bench", "feed_fanout"},
                   {"subscribers", c.subscribers},
                   {"markets", markets},
                   {"changes_per_s_asked", c.rate},
                   {"changes_per_s_sent", static_cast<double>(total) / pace_s},
                   {"pushes_expected", expected},
                   {"pushes_received", received.load()},
                   {"p50_ms", percentile(xs, 0.50)},
                   {"p99_ms", percentile(xs, 0.99)},
                   {"p999_ms", percentile(xs, 0.999)},
                   {"rss_mb", rss_mb()},
                   {"machine", std::to_string(std::thread::hardware_concurrency()) + " cores"}};
  std::printf("%s\n", json::serialize(out).c_str());
  feed.stop();
  p.stop();
  std::filesystem::remove_all(c.data_dir);
  return 0;
}
