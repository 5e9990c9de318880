#pragma once

// The journal's writer: one thread, group commit. Internal to persistence/;
// see journal.hpp for the contract it keeps. The file is its store's
// (journal_store.hpp, one per layout); the queue, the batches, the fences
// and the answers are the writer's.
//
// A batch is up to batch_max queued writes taken in queue order, committed
// in one transaction of the store (the write lock across processes). Each
// append's sequence check runs inside that transaction, before it writes, so
// a conflicting append writes nothing and the rest of the batch goes on.
// Appends are answered only after the commit has returned (durable), in
// queue order.
//
// States of the writer:
//   running  - takes batches from the queue
//   stopping - refuses new writes, drains the queue, then the thread ends

#include "wager/persistence/journal.hpp"
#include "wager/persistence/journal_options.hpp"
#include "wager/persistence/journal_store.hpp"

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <thread>
#include <unordered_map>
#include <variant>
#include <vector>

namespace wager {

struct journal_metrics;

// Now, in milliseconds since the epoch: the time the writer gives stored
// requests, snapshots and the retention cutoff.
int64_t journal_clock_ms();

// Check a write against the journal's bounds before it is queued.
caf::error validate_append(const append_request& request, const journal_options& options);
caf::error validate_snapshot(const snapshot& snap, const journal_options& options);

class journal_writer {
public:
  journal_writer(std::unique_ptr<journal_store> store, const journal_options& options,
                 journal_metrics* metrics);
  ~journal_writer(); // stops, after answering everything queued

  journal_writer(const journal_writer&) = delete;
  journal_writer& operator=(const journal_writer&) = delete;

  caf::error append(append_request request, result_callback<append_ack> done);
  caf::error save_snapshot(snapshot snap, result_callback<snapshot_saved> done);

  journal_health health() const;

  // Refuses new writes, answers everything queued, joins the thread.
  void stop();

private:
  struct queued_append {
    append_request request;
    result_callback<append_ack> done;
  };
  struct queued_snapshot {
    snapshot snap;
    result_callback<snapshot_saved> done;
  };
  struct op {
    uint64_t ticket = 0; // queue position, strictly increasing
    std::variant<queued_append, queued_snapshot> what;
  };

  // An append that failed fences its stream (journal.hpp, "Pipelining"):
  // later appends fail if they were queued before the failure was known
  // (ticket <= tickets_through) or chain on a failed one (expected_seq is
  // in chains, the seqs where failed appends would have ended).
  struct fence {
    uint64_t tickets_through = 0;
    std::vector<uint64_t> chains;
    uint64_t order = 0; // for dropping the oldest fences beyond the bound
  };

  // One write's result in the batch being committed.
  struct outcome {
    caf::error error;
    append_ack ack;
    bool decided = false;
    bool fences = false; // a failed append: fence its stream
  };

  enum class attempt_result { committed, op_failed, batch_failed };

  // One write applied inside the transaction: done (its outcome says how),
  // op_failed (it failed after writing part of itself: roll back and retry
  // the batch without it), storage_failed (the whole batch fails).
  enum class step { done, op_failed, storage_failed };

  void run();
  bool take_batch(std::vector<op>& batch);
  void commit_batch(std::vector<op>& batch);
  attempt_result attempt(std::vector<op>& batch, std::vector<outcome>& outcomes,
                         const std::vector<bool>& rejected, size_t& failed_index,
                         caf::error& batch_error);
  caf::error begin_transaction();
  caf::error commit_transaction(size_t writes);
  step apply_append(const op& o, uint64_t batch_last_ticket, outcome& out,
                    caf::error& batch_error);
  step apply_snapshot(const queued_snapshot& s, outcome& out, caf::error& batch_error);
  step stored(journal_store::result result, caf::error error, outcome& out,
              caf::error& batch_error);
  // The fence in force for `stream` during the current attempt.
  const fence* fence_of(const std::string& stream) const;
  bool fenced(const fence* f, const op& o, const append_request& request) const;
  static void extend_fence(fence& f, uint64_t expected_seq, uint64_t count,
                           uint64_t tickets_through);
  void fence_in_batch(const append_request& request, uint64_t tickets_through);
  void set_fence(const std::string& stream, uint64_t expected_seq, uint64_t count,
                 uint64_t tickets_through);
  void lift_fence(const std::string& stream);
  void answer(std::vector<op>& batch, std::vector<outcome>& outcomes);
  void record_batch_failure(const caf::error& err);
  void record_batch_success();
  void prune_requests();
  void rollback();

  journal_options options_;
  journal_metrics* metrics_;

  // Guarded by mutex_.
  mutable std::mutex mutex_;
  std::condition_variable wake_;
  std::deque<op> queue_;
  uint64_t last_ticket_ = 0;
  bool stopping_ = false;
  // Chain fences from appends refused at once (queue full), applied by the
  // writer before its next batch. Bounded by queue_max.
  // (stream, (expected_seq, event count)) of each refused append.
  std::vector<std::pair<std::string, std::pair<uint64_t, uint64_t>>> refused_chains_;
  journal_health health_;

  // Writer thread only.
  std::unique_ptr<journal_store> store_;
  std::unordered_map<std::string, fence> fences_;
  std::unordered_map<std::string, fence> batch_fences_; // this attempt's changes
  std::unordered_map<std::string, bool> batch_lifted_; // fences lifted this attempt
  std::deque<std::pair<uint64_t, std::string>> fence_order_;
  uint64_t fence_counter_ = 0;
  std::chrono::steady_clock::time_point next_prune_;

  std::thread thread_;
};

} // namespace wager
