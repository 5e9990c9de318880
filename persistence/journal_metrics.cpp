#include "wager/persistence/journal_metrics.hpp"

#include "wager/runtime/metrics.hpp"

namespace wager {

namespace {

prometheus::Family<prometheus::Counter>& appends_family(metrics& m) {
  return prometheus::BuildCounter()
    .Name("wager_journal_appends_total")
    .Help("Journal appends answered, by result (ok, conflict, failed)")
    .Register(m.registry());
}

} // namespace

journal_metrics::journal_metrics(metrics& m)
  : batch_size(prometheus::BuildHistogram()
                 .Name("wager_journal_batch_size")
                 .Help("Appends and snapshot saves committed per journal transaction")
                 .Register(m.registry())
                 .Add({}, prometheus::Histogram::BucketBoundaries{1, 2, 4, 8, 16, 32, 64, 128,
                                                                   256, 512, 1024, 4096})),
    commit_seconds(prometheus::BuildHistogram()
                     .Name("wager_journal_commit_seconds")
                     .Help("Time a journal COMMIT (WAL write and fsync) takes")
                     .Register(m.registry())
                     .Add({}, prometheus::Histogram::BucketBoundaries{
                                0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025,
                                0.05, 0.1, 0.25, 1})),
    appends_ok(appends_family(m).Add({{"result", "ok"}})),
    appends_conflict(appends_family(m).Add({{"result", "conflict"}})),
    appends_failed(appends_family(m).Add({{"result", "failed"}})),
    failed_batches(prometheus::BuildCounter()
                     .Name("wager_journal_failed_batches_total")
                     .Help("Journal batches that the disk refused (nothing acknowledged)")
                     .Register(m.registry())
                     .Add({})),
    queue_depth(prometheus::BuildGauge()
                  .Name("wager_journal_queue_depth")
                  .Help("Appends and snapshot saves waiting for the journal writer")
                  .Register(m.registry())
                  .Add({})),
    leases_held(prometheus::BuildGauge()
                  .Name("wager_journal_leases_held")
                  .Help("Shards whose lease in the journal this node holds")
                  .Register(m.registry())
                  .Add({})),
    lease_takes(prometheus::BuildCounter()
                  .Name("wager_journal_lease_takes_total")
                  .Help("Shard leases this node took (each raised the shard's epoch)")
                  .Register(m.registry())
                  .Add({})),
    leases_lost(prometheus::BuildCounter()
                  .Name("wager_journal_leases_lost_total")
                  .Help("Shard leases this node held and found taken by another node")
                  .Register(m.registry())
                  .Add({})),
    lease_refusals(prometheus::BuildCounter()
                     .Name("wager_journal_lease_refusals_total")
                     .Help("Appends refused because another node holds their shard's lease")
                     .Register(m.registry())
                     .Add({})) {}

} // namespace wager
