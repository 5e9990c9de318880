#pragma once

// Feed ingest (shared/API.md "Feed", DESIGN.md "Feed"): takes feed lines from
// the TCP listener or an HTTP body, parses them (feed_message.hpp) and
// applies each valid message to its market, in order, through the directory.
//
// One producer actor per producer, spawned on its first message and watched
// by the ingest's router: a producer that crashes is started again at once,
// in state down, and suspends every market it fed (its sequence and backlog
// are gone, so nothing it fed can be trusted until the feed reopens it).
//
// Producer states:
//   up   - messages arrive in order (seq = last + 1), the last one less than
//          `silence` ago. The first message of a producer sets its baseline.
//   down - a seq gap, silence longer than `silence`, a full backlog or a
//          restart was seen. Entering it suspends, at once, every market the
//          producer feeds that is not closed or resulted. While down, no
//          message may reopen a market (a `status: open` is dropped, prices
//          are applied); the next in-order message brings the producer up.
//          Markets then stay suspended until the feed reopens them
//          explicitly (a `market` message or an `odds_change` with
//          "status":"open"): never on stale prices.
//
// Ordering: a producer applies the messages of one market one at a time
// (the next waits for the market's reply), markets in parallel. bet_stop
// and the suspension on entering down jump ahead of the market's queued
// messages; queued messages older than the stop lose any `status: open`.
// A message seen again with a seq not above the last one is skipped
// (stale_seq): at-least-once transports repeat lines. A market that is
// settled or voided, with nothing queued, is forgotten by its producer, so a
// producer feeding match after match keeps a bounded set of markets.
//
// Invalid lines (feed_reject) are counted in wager_feed_invalid_total{reason},
// logged and skipped; nothing about them reaches a market.
//
// Metrics: wager_feed_messages_received_total, wager_feed_messages_applied_total,
// wager_feed_invalid_total{reason}, wager_feed_producer_up{producer},
// wager_feed_producer_down_total{cause}, wager_feed_apply_latency_seconds
// (received by the node -> applied by the market),
// wager_feed_lag_seconds (producer's ts -> applied; includes clock skew).

#include "wager/actors/feed_message.hpp"
#include "wager/runtime/directory.hpp"

#include <caf/actor_system.hpp>

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace wager {

class metrics;

// What the feed tells intrusion detection (feed_options::on_security_signal).
enum class feed_security_signal : uint8_t {
  unknown_producer, // a line from a producer the node does not take
  sequence_gap,     // a producer skipped sequence numbers (it went down)
};

struct feed_options {
  // A producer silent this long is down (node_options::feed_silence, option
  // --feed-silence-ms). Two seconds is a few missed 500 ms heartbeats.
  std::chrono::milliseconds silence{2000};

  // How long one market may take to answer before the message counts as
  // unavailable. A durable append takes milliseconds; this covers a market
  // that recovers a long journal.
  std::chrono::milliseconds apply_timeout{15000};

  // Messages waiting in one producer for their markets. Past it the
  // producer is down (its markets suspended) and the message is skipped as
  // overloaded: a feed faster than the journal must not grow memory.
  size_t backlog_max = 100'000;

  // Producers per node, and markets one producer may feed. Producer names
  // are metric labels, so their number is bounded.
  size_t producers_max = 1'000;
  size_t markets_per_producer_max = 100'000;

  // Line errors listed in one feed_batch_result; the counts include all.
  size_t batch_errors_max = 100;

  // The producers this node takes lines from; empty: any. A line from
  // another producer is skipped as unknown_producer.
  std::vector<std::string> producers;

  // Told (on any thread; it must not block) of a line from an unknown
  // producer and of every sequence gap, for intrusion detection to judge.
  std::function<void(feed_security_signal, const std::string& producer)> on_security_signal;
};

enum class producer_state : uint8_t { up, down };

std::string_view to_string(producer_state s);

// What one batch (an HTTP body) came to, once every valid message in it was
// applied or refused by its market.
struct feed_batch_result {
  struct line_error {
    uint64_t line = 0; // 1-based
    feed_reject reason = feed_reject::invalid_json;
    std::string field;
    std::string message;
  };
  uint64_t received = 0;
  uint64_t applied = 0;
  uint64_t invalid = 0;
  std::vector<line_error> errors; // the first batch_errors_max
};

struct feed_producer_status {
  std::string producer;
  producer_state state = producer_state::up;
  uint64_t last_seq = 0;
  size_t markets = 0; // markets it feeds
  size_t backlog = 0; // messages waiting for their market
};

class feed_ingest {
public:
  // `dir` routes to the market entities; `m` must outlive the ingest.
  feed_ingest(caf::actor_system& sys, directory dir, metrics& m, feed_options options = {});
  ~feed_ingest(); // stop()
  feed_ingest(const feed_ingest&) = delete;
  feed_ingest& operator=(const feed_ingest&) = delete;

  // One line, from any thread. Lines submitted from one thread keep their
  // order. Never blocks.
  void submit(std::string_view line);

  // A line the listener cut because it was too long.
  void submit_oversized();

  // Lines of one body, in order; `done` runs once (on an actor thread) when
  // every line was applied or skipped.
  void submit_batch(std::vector<std::string> lines, std::function<void(feed_batch_result)> done);

  // A producer's state, or nullopt if it never sent a valid message. Blocks:
  // for tests, tools and the operator; never call it from an actor.
  std::optional<feed_producer_status>
  producer(const std::string& name, std::chrono::milliseconds timeout = std::chrono::seconds{5});

  // Stops the producers; messages not yet applied are dropped. Must run
  // before the directory stops. Idempotent.
  void stop();

  struct impl;

private:
  std::unique_ptr<impl> impl_;
};

} // namespace wager
