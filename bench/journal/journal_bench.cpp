// Durable appends per second through the journal, at 1, 16 and 64
// concurrent appenders, beside the raw SQLite ceiling measured in the same
// run: the same rows (an event row and its stream row per append, same
// checksums, WAL, synchronous=FULL) inserted by one thread in large
// transactions. Prints one JSON line per configuration.
//
// An appender is one stream with one append in flight: it sends its next
// append when the previous one is answered, as an actor would on the reply
// message, so 64 appenders means at most 64 appends waiting, and the batch
// size is what group commit makes of them. A last configuration lets each
// appender pipeline 16 appends, as entity actors do.
//
// Each journal configuration runs in both layouts (journal_options.hpp),
// rows first, then log, one after the other on one machine; the JSON line
// says which. With --streams-per-appender K, an appender with one append in
// flight spreads its appends over K streams in turn, so 64 appenders touch
// 64 x K streams: the row layout's writes land at as many places in its
// B-trees, the log layout's do not.
//
//   wager_bench_journal [--seconds S] [--dir DIR] [--payload-bytes N]
//                       [--batch-wait-us US] [--layout rows|log|both]
//                       [--streams-per-appender K]

#include "wager/persistence/journal_schema.hpp"
#include "wager/persistence/sqlite_db.hpp"
#include "wager/persistence/sqlite_journal.hpp"
#include "wager/runtime/errors.hpp"
#include "wager/runtime/metrics.hpp"

#include <boost/json.hpp>
#include <sqlite3.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <filesystem>
#include <mutex>
#include <string>
#include <thread>
#include <unistd.h>
#include <vector>

using namespace wager;
namespace fs = std::filesystem;
using clock_type = std::chrono::steady_clock;

namespace {

struct settings {
  double seconds = 3.0;
  std::string dir = fs::temp_directory_path().string();
  size_t payload_bytes = 100;
  uint32_t batch_wait_us = journal_options{}.batch_wait_us;
  std::vector<journal_layout> layouts{journal_layout::rows, journal_layout::log};
  size_t streams_per_appender = 1;
};

const char* name_of(journal_layout layout) {
  return layout == journal_layout::log ? "log" : "rows";
}

event make_event(size_t payload_bytes, uint64_t n) {
  return event::make("deposited", 1,
                     boost::json::object{{"amount", n % 100000},
                                         {"memo", std::string(payload_bytes, 'm')}});
}

std::string fresh_dir(const settings& s, const std::string& name) {
  auto dir = fs::path{s.dir} / ("wager-journal-bench-" + std::to_string(::getpid()) + "-" + name);
  fs::remove_all(dir);
  fs::create_directories(dir);
  return dir.string();
}

struct histogram_totals {
  double count = 0;
  double sum = 0;
  double mean_since(const histogram_totals& before) const {
    return count == before.count ? 0.0 : (sum - before.sum) / (count - before.count);
  }
};

histogram_totals histogram(metrics& m, const std::string& name) {
  for (auto& family : m.registry().Collect())
    if (family.name == name && !family.metric.empty()) {
      auto& h = family.metric.front().histogram;
      return {static_cast<double>(h.sample_count), h.sample_sum};
    }
  return {};
}

// The appenders' side runs on a thread of its own, as actors run on CAF's
// scheduler threads: the journal's callback only hands the answer over (as
// journal_reply.hpp's message does), and the next append is built and
// queued on the appenders' thread, not on the journal's writer thread.
class appenders {
public:
  // With depth 1, appender i writes streams i x spread .. i x spread +
  // spread - 1 in turn; deeper pipelines stay on one stream each.
  appenders(journal& j, int count, int depth, size_t payload_bytes, size_t spread)
    : j_(j), payload_bytes_(payload_bytes), spread_(depth == 1 ? spread : 1),
      next_seq_(count * spread_, 0), turn_(count, 0) {
    for (size_t n = 0; n < count * spread_; ++n)
      names_.push_back("wallet/bench" + std::to_string(n));
    for (int i = 0; i < count; ++i) {
      for (int d = 0; d < depth; ++d)
        ready_.push_back({static_cast<size_t>(i), clock_type::time_point{}, true});
    }
  }

  ~appenders() { stop(); }

  void start() {
    thread_ = std::thread{[this] { run(); }};
  }

  // Stops sending, waits for every append in flight to be answered.
  void stop() {
    {
      std::lock_guard lock{mutex_};
      stopping_ = true;
    }
    wake_.notify_all();
    if (thread_.joinable())
      thread_.join();
    while (in_flight_ > 0)
      std::this_thread::sleep_for(std::chrono::milliseconds{1});
  }

  uint64_t acked() const { return acked_; }
  uint64_t failed() const { return failed_; }

  // Append latencies since the last call, sorted.
  std::vector<double> take_latencies_ms() {
    std::lock_guard lock{mutex_};
    auto out = std::move(latencies_ms_);
    latencies_ms_.clear();
    std::sort(out.begin(), out.end());
    return out;
  }

private:
  struct answer {
    size_t appender;
    clock_type::time_point sent;
    bool ok;
  };

  // On the writer thread: hand the answer over, nothing more.
  void on_answer(answer a) {
    {
      std::lock_guard lock{mutex_};
      ready_.push_back(a);
    }
    wake_.notify_one();
  }

  void run() {
    std::vector<answer> batch;
    for (;;) {
      {
        std::unique_lock lock{mutex_};
        wake_.wait(lock, [this] { return !ready_.empty() || stopping_; });
        if (stopping_)
          return;
        batch.swap(ready_);
        auto now = clock_type::now();
        for (auto& a : batch)
          if (a.ok && latencies_ms_.size() < latencies_max && a.sent != clock_type::time_point{})
            latencies_ms_.push_back(std::chrono::duration<double, std::milli>(now - a.sent).count());
      }
      for (auto& a : batch)
        submit(a.appender);
      batch.clear();
    }
  }

  void submit(size_t appender) {
    auto i = appender * spread_ + turn_[appender];
    turn_[appender] = (turn_[appender] + 1) % spread_;
    auto sent = clock_type::now();
    ++in_flight_;
    auto err = j_.append({names_[i], next_seq_[i], {make_event(payload_bytes_, next_seq_[i])},
                          std::nullopt},
                         [this, appender, sent](caf::expected<append_ack> ack) {
                           if (ack)
                             ++acked_;
                           else
                             ++failed_;
                           --in_flight_;
                           on_answer({appender, sent, static_cast<bool>(ack)});
                         });
    if (err) {
      --in_flight_;
      ++failed_;
    } else {
      ++next_seq_[i];
    }
  }

  static constexpr size_t latencies_max = 1 << 20;
  journal& j_;
  size_t payload_bytes_;
  size_t spread_;
  std::vector<std::string> names_;
  std::vector<uint64_t> next_seq_; // per stream; appenders' thread only
  std::vector<size_t> turn_;       // per appender; appenders' thread only
  std::atomic<int> in_flight_ = 0;
  std::atomic<uint64_t> acked_ = 0;
  std::atomic<uint64_t> failed_ = 0;
  std::mutex mutex_;
  std::condition_variable wake_;
  std::vector<answer> ready_;
  bool stopping_ = false;
  std::vector<double> latencies_ms_;
  std::thread thread_;
};

double percentile(const std::vector<double>& sorted, double p) {
  if (sorted.empty())
    return 0;
  return sorted[std::min(sorted.size() - 1, static_cast<size_t>(p * sorted.size()))];
}

void run_journal(const settings& s, int count, int depth, journal_layout layout) {
  auto dir = fresh_dir(s, "journal-" + std::to_string(count));
  metrics m;
  journal_options options;
  options.path = dir + "/journal.db";
  options.layout = layout;
  options.metrics_registry = &m;
  options.batch_wait_us = s.batch_wait_us;
  auto j = open_sqlite_journal(options);
  if (!j) {
    std::fprintf(stderr, "open failed: %s\n", message_of(j.error()).c_str());
    std::exit(1);
  }
  appenders load{**j, count, depth, s.payload_bytes, s.streams_per_appender};
  load.start();
  // Warm up (file growth, caches) before measuring.
  std::this_thread::sleep_for(std::chrono::milliseconds{300});
  load.take_latencies_ms();
  auto acked_before = load.acked();
  auto batches_before = histogram(m, "wager_journal_batch_size");
  auto commits_before = histogram(m, "wager_journal_commit_seconds");
  auto started = clock_type::now();
  std::this_thread::sleep_for(std::chrono::duration<double>{s.seconds});
  auto acked = load.acked() - acked_before;
  auto elapsed = std::chrono::duration<double>(clock_type::now() - started).count();
  auto latencies = load.take_latencies_ms();
  auto batch_mean = histogram(m, "wager_journal_batch_size").mean_since(batches_before);
  auto commit_ms = histogram(m, "wager_journal_commit_seconds").mean_since(commits_before) * 1000;
  load.stop();
  std::printf("{\"bench\":\"journal\",\"mode\":\"journal\",\"layout\":\"%s\",\"appenders\":%d,"
              "\"in_flight_each\":%d,\"streams\":%zu,\"appends_per_s\":%.0f,"
              "\"batch_mean\":%.1f,\"commit_ms_mean\":%.3f,\"latency_ms_p50\":%.3f,"
              "\"latency_ms_p99\":%.3f,\"failed\":%llu,\"payload_bytes\":%zu,\"batch_wait_us\":%u,"
              "\"cores\":%u}\n",
              name_of(layout), count, depth,
              static_cast<size_t>(count) * (depth == 1 ? s.streams_per_appender : 1),
              acked / elapsed, batch_mean, commit_ms, percentile(latencies, 0.5),
              percentile(latencies, 0.99), static_cast<unsigned long long>(load.failed()),
              s.payload_bytes, s.batch_wait_us, std::thread::hardware_concurrency());
  std::fflush(stdout);
  j->reset();
  fs::remove_all(dir);
}

// The ceiling: the journal's own rows through the same SQL, one thread,
// 10,000 appends per transaction, no sequence check, no queue, no callback.
double run_raw(const settings& s, int streams) {
  auto dir = fresh_dir(s, "raw");
  journal_options options;
  options.path = dir + "/journal.db";
  auto db = open_journal_file(options, journal_role::writer); // same schema and pragmas
  if (!db) {
    std::fprintf(stderr, "open failed: %s\n", message_of(db.error()).c_str());
    std::exit(1);
  }
  sqlite::statement insert_event{db->get(),
                                 "INSERT INTO events (stream, seq, type, version, payload, "
                                 "at_ms, checksum) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)"};
  sqlite::statement upsert_stream{db->get(),
                                  "INSERT INTO streams (stream, kind, last_seq) VALUES (?1, ?2, "
                                  "?3) ON CONFLICT (stream) DO UPDATE SET last_seq = "
                                  "excluded.last_seq"};
  std::vector<std::string> names;
  for (int i = 0; i < streams; ++i)
    names.push_back("wallet/bench" + std::to_string(i));
  std::vector<uint64_t> seqs(streams, 0);
  constexpr int per_transaction = 10000;
  uint64_t appends = 0;
  auto started = clock_type::now();
  auto deadline = started + std::chrono::duration<double>{s.seconds};
  while (clock_type::now() < deadline) {
    db->exec("BEGIN IMMEDIATE", "raw");
    for (int k = 0; k < per_transaction; ++k, ++appends) {
      auto i = appends % streams;
      auto seq = ++seqs[i];
      auto e = make_event(s.payload_bytes, seq);
      auto sum = row_checksum(names[i], seq, e.type, e.version, e.payload);
      insert_event.bind(1, names[i]).bind(2, static_cast<int64_t>(seq)).bind(3, e.type);
      insert_event.bind(4, int64_t{1}).bind(5, e.payload).bind(6, int64_t{0});
      insert_event.bind(7, static_cast<int64_t>(sum));
      insert_event.step();
      insert_event.reset();
      upsert_stream.bind(1, names[i]).bind(2, std::string_view{"wallet"});
      upsert_stream.bind(3, static_cast<int64_t>(seq));
      upsert_stream.step();
      upsert_stream.reset();
    }
    db->exec("COMMIT", "raw");
  }
  auto elapsed = std::chrono::duration<double>(clock_type::now() - started).count();
  auto rate = appends / elapsed;
  std::printf("{\"bench\":\"journal\",\"mode\":\"raw_sqlite\",\"streams\":%d,\"appends_per_s\":%.0f,"
              "\"rows_per_transaction\":%d,\"payload_bytes\":%zu,\"cores\":%u}\n",
              streams, rate, per_transaction, s.payload_bytes, std::thread::hardware_concurrency());
  std::fflush(stdout);
  insert_event = {};
  upsert_stream = {};
  db->close();
  fs::remove_all(dir);
  return rate;
}

} // namespace

int main(int argc, char** argv) {
  settings s;
  for (int i = 1; i + 1 < argc; i += 2) {
    std::string flag = argv[i];
    if (flag == "--seconds")
      s.seconds = std::stod(argv[i + 1]);
    else if (flag == "--dir")
      s.dir = argv[i + 1];
    else if (flag == "--payload-bytes")
      s.payload_bytes = std::stoul(argv[i + 1]);
    else if (flag == "--batch-wait-us")
      s.batch_wait_us = static_cast<uint32_t>(std::stoul(argv[i + 1]));
    else if (flag == "--streams-per-appender")
      s.streams_per_appender = std::max<size_t>(1, std::stoul(argv[i + 1]));
    else if (flag == "--layout") {
      std::string layout = argv[i + 1];
      if (layout == "rows")
        s.layouts = {journal_layout::rows};
      else if (layout == "log")
        s.layouts = {journal_layout::log};
      else if (layout != "both") {
        std::fprintf(stderr, "--layout: rows, log or both, not %s\n", layout.c_str());
        return 2;
      }
    } else {
      std::fprintf(stderr, "unknown option %s\n", flag.c_str());
      return 2;
    }
  }
  run_raw(s, 64);
  for (int count : {1, 16, 64})
    for (auto layout : s.layouts)
      run_journal(s, count, 1, layout);
  // Actors pipeline: 64 appenders with 16 appends in flight each.
  for (auto layout : s.layouts)
    run_journal(s, 64, 16, layout);
  run_raw(s, 64); // again at the end: the machine's load drifts
}
