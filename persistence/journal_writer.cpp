#include "wager/persistence/journal_writer.hpp"

#include "wager/persistence/journal_metrics.hpp"
#include "wager/runtime/errors.hpp"
#include "wager/runtime/log.hpp"

#include <sqlite3.h>

#include <algorithm>

namespace wager {

namespace {

using clock = std::chrono::steady_clock;

// The seq cache is dropped whole when it outgrows this: a miss costs one
// indexed read, so a simple bound beats bookkeeping for an LRU.
constexpr size_t seq_cache_max = 1 << 18;

int64_t now_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
           std::chrono::system_clock::now().time_since_epoch())
    .count();
}

} // namespace

journal_writer::statements::statements(sqlite3* db)
    : begin(db, "BEGIN IMMEDIATE"),
      commit(db, "COMMIT"),
      data_version(db, "PRAGMA data_version"),
      last_seq(db, "SELECT last_seq FROM streams WHERE stream = ?1"),
      insert_event(db, "INSERT INTO events (stream, seq, type, version, payload, at_ms, "
                       "checksum) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)"),
      upsert_stream(db, "INSERT INTO streams (stream, kind, last_seq, open_work) "
                        "VALUES (?1, ?2, ?3, coalesce(?4, 0)) ON CONFLICT (stream) DO UPDATE "
                        "SET last_seq = excluded.last_seq, open_work = coalesce(?4, open_work)"),
      insert_request(db, "INSERT INTO requests (stream, request_id, seq, result, at_ms, "
                         "checksum) VALUES (?1, ?2, ?3, ?4, ?5, ?6)"),
      event_checksum(db, "SELECT checksum FROM events WHERE stream = ?1 AND seq = ?2"),
      snapshot_seq(db, "SELECT seq FROM snapshots WHERE stream = ?1"),
      upsert_snapshot(db, "INSERT INTO snapshots (stream, seq, version, state, at_ms, checksum) "
                          "VALUES (?1, ?2, ?3, ?4, ?5, ?6) ON CONFLICT (stream) DO UPDATE SET "
                          "seq = excluded.seq, version = excluded.version, "
                          "state = excluded.state, at_ms = excluded.at_ms, "
                          "checksum = excluded.checksum"),
      prune(db, "DELETE FROM requests WHERE (stream, request_id) IN (SELECT stream, request_id "
                "FROM requests WHERE at_ms < ?1 ORDER BY at_ms LIMIT ?2)") {}

journal_writer::journal_writer(sqlite::connection db, const journal_options& options,
                               journal_metrics* metrics)
  : options_(options), metrics_(metrics), db_(std::move(db)),
    sql_(std::make_unique<statements>(db_.get())),
    next_prune_(clock::now() + std::chrono::milliseconds{options_.prune_interval_ms}) {
  thread_ = std::thread{[this] { run(); }};
}

journal_writer::~journal_writer() {
  stop();
  sql_.reset(); // statements before their connection
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
  }
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
  if (db_.file_moved())
    return make_error(errc::journal_failure,
                      "journal " + options_.path + " was deleted or replaced while open; reopen it");
  batch_fences_.clear();
  batch_lifted_.clear();
  {
    sqlite::reset_on_exit reset{sql_->begin};
    auto rc = sql_->begin.step();
    if (rc == SQLITE_BUSY)
      return make_error(errc::unavailable, "journal " + options_.path +
                                             " write lock held elsewhere for " +
                                             std::to_string(options_.busy_timeout_ms) + " ms");
    if (rc != SQLITE_DONE)
      return sqlite::failure(db_.get(), rc, "starting a journal transaction");
  }
  sqlite::reset_on_exit reset{sql_->data_version};
  auto rc = sql_->data_version.step();
  if (rc != SQLITE_ROW)
    return sqlite::failure(db_.get(), rc, "reading the journal's data version");
  // Another connection committed since our last transaction: the seqs we
  // cached may be stale.
  auto version = sql_->data_version.column_int(0);
  if (version != seq_cache_version_ || seq_cache_.size() > seq_cache_max) {
    seq_cache_.clear();
    seq_cache_version_ = version;
  }
  return {};
}

caf::error journal_writer::commit_transaction(size_t writes) {
  auto started = clock::now();
  int rc;
  {
    sqlite::reset_on_exit reset{sql_->commit};
    rc = sql_->commit.step();
  }
  if (metrics_ != nullptr)
    metrics_->commit_seconds.Observe(
      std::chrono::duration<double>(clock::now() - started).count());
  if (rc != SQLITE_DONE)
    return sqlite::failure(db_.get(), rc, "committing a batch of " + std::to_string(writes) +
                                            " journal writes");
  // Committed, but into a file no longer reachable by its name: a restart
  // would not see it, so it is not acknowledged.
  if (db_.file_moved())
    return make_error(errc::journal_failure,
                      "journal " + options_.path +
                        " was deleted or replaced while a batch was written; reopen it");
  return {};
}

void journal_writer::rollback() {
  if (sqlite3_get_autocommit(db_.get()) == 0)
    db_.exec("ROLLBACK", "rolling back a journal batch");
  // Rows this attempt wrote are gone, and seqs it cached with them.
  seq_cache_.clear();
}

caf::expected<uint64_t> journal_writer::current_seq(const std::string& stream) {
  if (auto i = seq_cache_.find(stream); i != seq_cache_.end())
    return i->second;
  auto& st = sql_->last_seq;
  sqlite::reset_on_exit reset{st};
  st.bind(1, stream);
  auto rc = st.step();
  if (rc == SQLITE_ROW) {
    auto seq = static_cast<uint64_t>(st.column_int(0));
    seq_cache_.emplace(stream, seq);
    return seq;
  }
  if (rc == SQLITE_DONE)
    return uint64_t{0};
  return sqlite::failure(db_.get(), rc, "reading the last seq of " + stream);
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
  auto cutoff = now_ms() - static_cast<int64_t>(options_.request_retention_ms);
  auto err = db_.exec("BEGIN IMMEDIATE", "starting a prune of stored requests");
  int changes = 0;
  if (!err) {
    auto& st = sql_->prune;
    sqlite::reset_on_exit reset{st};
    st.bind(1, cutoff).bind(2, static_cast<int64_t>(options_.prune_rows_max));
    auto rc = st.step();
    if (rc != SQLITE_DONE)
      err = sqlite::failure(db_.get(), rc, "pruning stored requests");
    changes = sqlite3_changes(db_.get());
  }
  if (!err)
    err = db_.exec("COMMIT", "committing a prune of stored requests");
  if (err) {
    rollback();
    log().warn("journal {}: {}", options_.path, message_of(err));
    return;
  }
  if (changes >= static_cast<int>(options_.prune_rows_max))
    next_prune_ = clock::now(); // more expired rows wait: go on between batches
}

} // namespace wager
