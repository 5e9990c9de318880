#include "wager/persistence/journal_writer.hpp"

#include "wager/persistence/journal_metrics.hpp"
#include "wager/runtime/errors.hpp"
#include "wager/runtime/log.hpp"

#include <algorithm>

namespace wager {

namespace {

using clock = std::chrono::steady_clock;

} // namespace

int64_t journal_clock_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
           std::chrono::system_clock::now().time_since_epoch())
    .count();
}

journal_writer::journal_writer(std::unique_ptr<journal_store> store,
                               const journal_options& options, journal_metrics* metrics)
  : options_(options), metrics_(metrics), store_(std::move(store)),
    next_prune_(clock::now() + std::chrono::milliseconds{options_.prune_interval_ms}) {
  thread_ = std::thread{[this] { run(); }};
}

journal_writer::~journal_writer() {
  stop();
}

void journal_writer::stop() {
  {
    std::lock_guard lock{mutex_};
    stopping_ = true;
  }
  wake_.notify_all();
  if (thread_.joinable())
    thread_.join();
}

caf::error journal_writer::append(append_request request, result_callback<append_ack> done) {
  if (auto err = validate_append(request, options_))
    return err;
  {
    std::lock_guard lock{mutex_};
    if (stopping_)
      return make_error(errc::unavailable, "journal is closed");
    if (queue_.size() >= options_.queue_max) {
      // The caller learns of the refusal now, but may already be building
      // on it: fence what would chain on it.
      if (refused_chains_.size() < options_.queue_max)
        refused_chains_.emplace_back(request.stream,
                                     std::pair{request.expected_seq, request.events.size()});
      return make_error(errc::unavailable, "journal queue is full (queue_max " +
                                             std::to_string(options_.queue_max) + ")");
    }
    queue_.push_back(op{++last_ticket_, queued_append{std::move(request), std::move(done)}});
    health_.queue_depth = queue_.size();
  }
  wake_.notify_one();
  return {};
}

caf::error journal_writer::save_snapshot(snapshot snap, result_callback<snapshot_saved> done) {
  if (auto err = validate_snapshot(snap, options_))
    return err;
  {
    std::lock_guard lock{mutex_};
    if (stopping_)
      return make_error(errc::unavailable, "journal is closed");
    if (queue_.size() >= options_.queue_max)
      return make_error(errc::unavailable, "journal queue is full (queue_max " +
                                             std::to_string(options_.queue_max) + ")");
    queue_.push_back(op{++last_ticket_, queued_snapshot{std::move(snap), std::move(done)}});
    health_.queue_depth = queue_.size();
  }
  wake_.notify_one();
  return {};
}

journal_health journal_writer::health() const {
  std::lock_guard lock{mutex_};
  return health_;
}

void journal_writer::run() {
  std::vector<op> batch;
  batch.reserve(options_.batch_max);
  while (take_batch(batch)) {
    if (!batch.empty())
      commit_batch(batch);
    batch.clear();
    if (options_.request_retention_ms > 0 && clock::now() >= next_prune_)
      prune_requests();
    store_->between_batches(false);
  }
  store_->between_batches(true);
}

bool journal_writer::take_batch(std::vector<op>& batch) {
  std::unique_lock lock{mutex_};
  while (queue_.empty() && !stopping_) {
    if (options_.request_retention_ms == 0) {
      wake_.wait(lock);
    } else if (wake_.wait_until(lock, next_prune_) == std::cv_status::timeout) {
      return true; // time to prune
    }
  }
  if (queue_.empty())
    return false; // stopping, and everything queued has been answered
  if (options_.batch_wait_us > 0 && queue_.size() < options_.batch_max && !stopping_) {
    auto until = clock::now() + std::chrono::microseconds{options_.batch_wait_us};
    wake_.wait_until(lock, until,
                     [this] { return queue_.size() >= options_.batch_max || stopping_; });
  }
  auto n = std::min<size_t>(queue_.size(), options_.batch_max);
  for (size_t i = 0; i < n; ++i) {
    batch.push_back(std::move(queue_.front()));
    queue_.pop_front();
  }
  for (auto& [stream, chain] : refused_chains_)
    set_fence(stream, chain.first, chain.second, 0);
  refused_chains_.clear();
  health_.queue_depth = queue_.size();
  if (metrics_ != nullptr)
    metrics_->queue_depth.Set(static_cast<double>(queue_.size()));
  return true;
}

void journal_writer::commit_batch(std::vector<op>& batch) {
  std::vector<outcome> outcomes(batch.size());
  std::vector<bool> rejected(batch.size(), false);
  // Each round either commits or rejects one more write that failed on its
  // own data (it wrote part of itself, so the transaction rolls back and
  // the batch is retried without it): at most batch.size() + 1 rounds.
  for (size_t round = 0; round <= batch.size(); ++round) {
    for (size_t i = 0; i < batch.size(); ++i)
      if (!rejected[i])
        outcomes[i] = outcome{};
    size_t failed_index = 0;
    caf::error batch_error;
    auto result = attempt(batch, outcomes, rejected, failed_index, batch_error);
    if (result == attempt_result::committed) {
      record_batch_success();
      if (metrics_ != nullptr)
        metrics_->batch_size.Observe(static_cast<double>(batch.size()));
      break;
    }
    rollback();
    if (result == attempt_result::op_failed) {
      rejected[failed_index] = true;
      continue;
    }
    for (size_t i = 0; i < batch.size(); ++i)
      if (!rejected[i])
        outcomes[i] = outcome{batch_error, {}, true, true};
    record_batch_failure(batch_error);
    break;
  }
  answer(batch, outcomes);
}

journal_writer::attempt_result
journal_writer::attempt(std::vector<op>& batch, std::vector<outcome>& outcomes,
                        const std::vector<bool>& rejected, size_t& failed_index,
                        caf::error& batch_error) {
  if (batch_error = begin_transaction(); batch_error)
    return attempt_result::batch_failed;
  std::vector<const std::string*> streams;
  for (size_t i = 0; i < batch.size(); ++i) {
    if (rejected[i])
      continue;
    if (auto* append = std::get_if<queued_append>(&batch[i].what))
      streams.push_back(&append->request.stream);
    else
      streams.push_back(&std::get<queued_snapshot>(batch[i].what).snap.stream);
  }
  if (batch_error = store_->admit(streams); batch_error)
    return attempt_result::batch_failed;
  auto batch_last_ticket = batch.back().ticket;
  for (size_t i = 0; i < batch.size(); ++i) {
    auto* append = std::get_if<queued_append>(&batch[i].what);
    if (rejected[i]) {
      if (append != nullptr)
        fence_in_batch(append->request, batch_last_ticket);
      continue;
    }
    auto result = append != nullptr
                    ? apply_append(batch[i], batch_last_ticket, outcomes[i], batch_error)
                    : apply_snapshot(std::get<queued_snapshot>(batch[i].what), outcomes[i],
                                     batch_error);
    if (result == step::op_failed) {
      failed_index = i;
      return attempt_result::op_failed;
    }
    if (result == step::storage_failed)
      return attempt_result::batch_failed;
  }
  if (batch_error = commit_transaction(batch.size()); batch_error)
    return attempt_result::batch_failed;
  return attempt_result::committed;
}

caf::error journal_writer::begin_transaction() {
  batch_fences_.clear();
  batch_lifted_.clear();
  return store_->begin();
}

caf::error journal_writer::commit_transaction(size_t writes) {
  auto started = clock::now();
  auto err = store_->commit(writes);
  if (metrics_ != nullptr)
    metrics_->commit_seconds.Observe(
      std::chrono::duration<double>(clock::now() - started).count());
  return err;
}

void journal_writer::rollback() {
  store_->rollback();
}

void journal_writer::record_batch_success() {
  std::lock_guard lock{mutex_};
  if (!health_.writable)
    log().info("journal {}: writable again", options_.path);
  health_.writable = true;
}

void journal_writer::record_batch_failure(const caf::error& err) {
  auto message = message_of(err);
  if (metrics_ != nullptr)
    metrics_->failed_batches.Increment();
  std::lock_guard lock{mutex_};
  // One line per change of state: a full disk fails every batch, and a log
  // line per batch would fill what little space is left.
  if (health_.writable || health_.last_error != message)
    log().error("journal {}: batch failed, nothing in it acknowledged: {}", options_.path,
                message);
  health_.writable = false;
  health_.last_error = message;
  ++health_.failed_batches;
}

void journal_writer::prune_requests() {
  next_prune_ = clock::now() + std::chrono::milliseconds{options_.prune_interval_ms};
  auto cutoff = journal_clock_ms() - static_cast<int64_t>(options_.request_retention_ms);
  auto pruned = store_->prune_requests(cutoff, options_.prune_rows_max);
  if (!pruned) {
    log().warn("journal {}: {}", options_.path, message_of(pruned.error()));
    return;
  }
  if (*pruned >= options_.prune_rows_max)
    next_prune_ = clock::now(); // more expired rows wait: go on between batches
}

} // namespace wager
