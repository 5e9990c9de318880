#pragma once

// The parts of the feed ingest (feed.hpp) shared by its router and its
// producer actors. Not a public interface: include feed.hpp.

#include "wager/actors/feed.hpp"
#include "wager/runtime/directory.hpp"

#include <caf/actor.hpp>
#include <caf/allowed_unsafe_message_type.hpp>
#include <caf/atom.hpp>

#include <prometheus/counter.h>
#include <prometheus/family.h>
#include <prometheus/gauge.h>
#include <prometheus/histogram.h>

#include <array>
#include <atomic>
#include <chrono>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

namespace wager {

class metrics;

namespace feed_detail {

using clock = std::chrono::steady_clock;

inline constexpr size_t reject_kinds = static_cast<size_t>(feed_reject::unknown_producer) + 1;

// The ingest's metrics, created once per ingest; shared by every thread.
struct feed_metrics {
  explicit feed_metrics(metrics& m);

  prometheus::Counter* received = nullptr;
  prometheus::Counter* applied = nullptr;
  std::array<prometheus::Counter*, reject_kinds> invalid{};
  prometheus::Family<prometheus::Gauge>* producer_up = nullptr;
  prometheus::Family<prometheus::Counter>* downs = nullptr;
  prometheus::Family<prometheus::Counter>* restarts = nullptr;
  prometheus::Histogram* apply_latency = nullptr;
  prometheus::Histogram* lag = nullptr;

  // Skipped lines logged per second; a producer sending garbage must not
  // flood the log (the metric still counts every line).
  static constexpr uint32_t skipped_logs_per_second_max = 20;
  std::atomic<int64_t> log_second{0};
  std::atomic<uint32_t> logged_this_second{0};
  std::atomic<uint64_t> not_logged{0};
};

// Collects the outcome of every line of one batch; the last one calls done.
class batch_tracker {
public:
  batch_tracker(size_t lines, size_t errors_max, std::function<void(feed_batch_result)> done);

  void applied();
  void skipped(uint64_t line, const feed_invalid& why);

private:
  void finish_one(std::unique_lock<std::mutex>& lock);

  std::mutex mutex_;
  size_t outstanding_;
  size_t errors_max_;
  feed_batch_result result_;
  std::function<void(feed_batch_result)> done_;
};

// One valid message on its way to its producer.
struct envelope {
  feed_message message;
  clock::time_point received;
  std::shared_ptr<batch_tracker> tracker; // null for TCP lines
  uint64_t line = 0;                      // in its batch
};

struct envelopes {
  std::vector<envelope> items;
};

// Counts, logs and reports one skipped line.
void skip(feed_metrics& m, const std::shared_ptr<batch_tracker>& tracker, uint64_t line,
          const feed_invalid& why);

using status_atom = caf::atom_constant<caf::atom("fstatus")>;
// (forget_atom, producer, market) to the router: the market is resulted and
// its producer no longer tracks it.
using forget_atom = caf::atom_constant<caf::atom("fforget")>;

struct producer_config {
  std::string name;
  caf::actor router; // told about markets the producer forgets
  directory dir;
  std::shared_ptr<feed_metrics> metrics;
  feed_options options;
  // A restarted producer starts down and suspends these at once.
  std::vector<std::string> inherited_markets;
};

// Handles `envelopes` (all of its producer, in order) and
// (status_atom) -> feed_producer_status.
caf::actor spawn_producer(caf::actor_system& sys, producer_config config);

} // namespace feed_detail
} // namespace wager

CAF_ALLOW_UNSAFE_MESSAGE_TYPE(wager::feed_detail::envelopes)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(wager::feed_producer_status)
