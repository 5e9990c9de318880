#pragma once

// The journal's metrics, registered on the node's registry:
//   wager_journal_batch_size            histogram, appends per transaction
//   wager_journal_commit_seconds        histogram, COMMIT (the fsync) latency
//   wager_journal_appends_total{result} counter, ok | conflict | failed
//   wager_journal_failed_batches_total  counter, batches the disk refused
//   wager_journal_queue_depth           gauge, writes waiting for the writer
// With shard leases (the journal on PostgreSQL in a cluster):
//   wager_journal_leases_held           gauge, shards whose lease this node holds
//   wager_journal_lease_takes_total     counter, leases this node took
//   wager_journal_leases_lost_total     counter, leases found taken by another node
//   wager_journal_lease_refusals_total  counter, appends refused for want of a lease
// Families are shared when two journals use one registry (tests).

#include <prometheus/counter.h>
#include <prometheus/gauge.h>
#include <prometheus/histogram.h>

namespace wager {

class metrics;

struct journal_metrics {
  explicit journal_metrics(metrics& registry);

  prometheus::Histogram& batch_size;
  prometheus::Histogram& commit_seconds;
  prometheus::Counter& appends_ok;
  prometheus::Counter& appends_conflict;
  prometheus::Counter& appends_failed;
  prometheus::Counter& failed_batches;
  prometheus::Gauge& queue_depth;
  prometheus::Gauge& leases_held;
  prometheus::Counter& lease_takes;
  prometheus::Counter& leases_lost;
  prometheus::Counter& lease_refusals;
};

} // namespace wager
