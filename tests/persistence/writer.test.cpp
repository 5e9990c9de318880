#include "journal_support.hpp"

#include "wager/persistence/journal_reply.hpp"
#include "wager/persistence/pg_db.hpp"
#include "wager/runtime/metrics.hpp"

#include "support/temp_dir.hpp"
#include "support/wait.hpp"

#include <doctest/doctest.h>

#include <caf/all.hpp>
#include <sqlite3.h>

#include <atomic>

using namespace wager;
using namespace wager::test;

namespace {

// Holds the journal's write lock from a connection of its own, as another
// process (or, on PostgreSQL, another node) appending would: SQLite's write
// lock, or the lock on the PostgreSQL journal's head row.
class write_lock_holder {
public:
  explicit write_lock_holder(const std::string& path) {
    if (journal_on_postgres()) {
      auto c = pg::connection::open(database_for(path), "write-lock-holder", 5);
      REQUIRE(c);
      pg_ = std::move(*c);
      REQUIRE_FALSE(pg_.exec("BEGIN", "begin"));
      REQUIRE_FALSE(pg_.exec("SELECT 1 FROM wager_journal WHERE id = 1 FOR UPDATE", "lock"));
      return;
    }
    REQUIRE(sqlite3_open(path.c_str(), &db_) == SQLITE_OK);
    REQUIRE(sqlite3_exec(db_, "BEGIN IMMEDIATE", nullptr, nullptr, nullptr) == SQLITE_OK);
  }
  void release() {
    if (pg_.usable() && !pg_.idle())
      REQUIRE_FALSE(pg_.exec("COMMIT", "commit"));
    if (db_ != nullptr) {
      sqlite3_exec(db_, "COMMIT", nullptr, nullptr, nullptr);
      sqlite3_close(db_);
      db_ = nullptr;
    }
  }
  ~write_lock_holder() { release(); }

private:
  sqlite3* db_ = nullptr;
  pg::connection pg_;
};

} // namespace

TEST_CASE("a full queue refuses appends at once and the queued ones commit later") {
  temp_dir dir;
  auto options = options_at((dir / "journal.db").string());
  options.queue_max = 4;
  options.busy_timeout_ms = 60000;
  auto j = open_or_fail(options);
  write_lock_holder lock{options.path};
  std::atomic<int> acked = 0;
  caf::error refusal;
  int accepted = 0;
  // The writer is stuck waiting for the lock, so the queue fills: at most
  // one batch in the writer's hands (no more than queue_max) plus queue_max
  // waiting.
  for (int i = 0; i < 100 && !refusal; ++i) {
    refusal = j->append({"wallet/q" + std::to_string(i), 0, {amount_event("deposited", 1)}, {}},
                        [&](caf::expected<append_ack> r) { acked += r ? 1 : 0; });
    accepted += refusal ? 0 : 1;
  }
  REQUIRE(refusal);
  CHECK(code_of(refusal) == errc::unavailable);
  CHECK(message_of(refusal).find("queue_max 4") != std::string::npos);
  CHECK(accepted <= 8);
  CHECK(acked == 0);
  lock.release();
  REQUIRE(wait_until([&] { return acked == accepted; }));
  CHECK(j->health().writable);
}

TEST_CASE("a write lock held beyond busy_timeout_ms fails the batch with unavailable") {
  temp_dir dir;
  auto options = options_at((dir / "journal.db").string());
  options.busy_timeout_ms = 50;
  auto j = open_or_fail(options);
  {
    write_lock_holder lock{options.path};
    auto r = append_sync(*j, "wallet/u1", 0, {amount_event("deposited", 1)});
    REQUIRE_FALSE(r);
    CHECK(code_of(r.error()) == errc::unavailable);
    CHECK_FALSE(j->health().writable);
    CHECK(j->health().failed_batches == 1);
  }
  CHECK(append_sync(*j, "wallet/u1", 0, {amount_event("deposited", 1)}));
  CHECK(j->health().writable);
}

TEST_CASE("stored request results older than the retention are pruned") {
  temp_dir dir;
  auto options = options_at((dir / "journal.db").string());
  options.request_retention_ms = 1;
  options.prune_interval_ms = 10;
  auto j = open_or_fail(options);
  REQUIRE(append_sync(*j, {"wallet/u1", 0, {amount_event("deposited", 1)},
                           request_record{"req-1", "{}"}}));
  CHECK(wait_until([&] { return !j->find_request("wallet/u1", "req-1")->has_value(); }));
  // The events stay: only the idempotency record expires.
  CHECK(*j->last_seq("wallet/u1") == 1);
}

TEST_CASE("metrics count appends by result, batches and commit latency") {
  temp_dir dir;
  metrics registry;
  auto options = options_at((dir / "journal.db").string());
  options.metrics_registry = &registry;
  auto j = open_or_fail(options);
  REQUIRE(append_sync(*j, "wallet/u1", 0, {amount_event("deposited", 1)}));
  REQUIRE(append_sync(*j, "wallet/u1", 1, {amount_event("deposited", 1)}));
  REQUIRE_FALSE(append_sync(*j, "wallet/u1", 0, {amount_event("deposited", 1)}));
  auto text = registry.render();
  CHECK(text.find("wager_journal_appends_total{result=\"ok\"} 2") != std::string::npos);
  CHECK(text.find("wager_journal_appends_total{result=\"conflict\"} 1") != std::string::npos);
  CHECK(text.find("wager_journal_batch_size_count 3") != std::string::npos);
  CHECK(text.find("wager_journal_commit_seconds_count 3") != std::string::npos);
  CHECK(text.find("wager_journal_failed_batches_total 0") != std::string::npos);
}

TEST_CASE("journal results reach an actor as messages, in append order") {
  temp_dir dir;
  auto j = open_or_fail(options_at((dir / "journal.db").string()));
  caf::actor_system_config cfg;
  caf::actor_system sys{cfg};
  caf::scoped_actor self{sys};
  auto me = caf::actor_cast<caf::actor>(self);
  for (uint64_t tag = 0; tag < 20; ++tag)
    REQUIRE_FALSE(j->append({"wallet/a", tag, {amount_event("deposited", 1)}, {}},
                            reply_to<append_ack>(me, tag)));
  for (uint64_t tag = 0; tag < 20; ++tag)
    self->receive(
      [&](journal_reply<append_ack>& reply) {
        CHECK(reply.tag == tag);
        REQUIRE(reply.result);
        CHECK(reply.result->last_seq == tag + 1);
      },
      caf::after(std::chrono::seconds{30}) >> [] { FAIL("no journal reply"); });
  REQUIRE_FALSE(j->read_events_async("wallet/a", 5, 3,
                                     reply_to<std::vector<recorded_event>>(me, 99)));
  self->receive(
    [&](journal_reply<std::vector<recorded_event>>& reply) {
      CHECK(reply.tag == 99);
      REQUIRE(reply.result);
      REQUIRE(reply.result->size() == 3);
      CHECK(reply.result->front().seq == 5);
    },
    caf::after(std::chrono::seconds{30}) >> [] { FAIL("no read reply"); });
  REQUIRE_FALSE(recover_async<account>(*j, "wallet/a", account_replay(),
                                       reply_to<recovered<account>>(me, 7)));
  self->receive(
    [&](journal_reply<recovered<account>>& reply) {
      REQUIRE(reply.result);
      CHECK(reply.result->state.balance == 20);
      CHECK(reply.result->seq == 20);
    },
    caf::after(std::chrono::seconds{30}) >> [] { FAIL("no recovery reply"); });
}

TEST_CASE("a callback that throws does not stop the writer") {
  temp_dir dir;
  auto j = open_or_fail(options_at((dir / "journal.db").string()));
  REQUIRE_FALSE(j->append({"wallet/t", 0, {amount_event("deposited", 1)}, {}},
                          [](caf::expected<append_ack>) { throw std::runtime_error("boom"); }));
  CHECK(append_sync(*j, "wallet/t", 1, {amount_event("deposited", 1)}));
}
