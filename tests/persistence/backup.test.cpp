#include "journal_support.hpp"
#include "journal_worker_protocol.hpp"

#include "wager/persistence/backup.hpp"

#include "support/temp_dir.hpp"
#include "support/wait.hpp"

#include <doctest/doctest.h>

#include <sqlite3.h>

#include <map>
#include <mutex>

using namespace wager;
using namespace wager::test;
namespace fs = std::filesystem;

namespace {

// Keeps `depth` appends in flight on each of `streams` streams until told
// to stop, noting the last acknowledged seq of each.
class steady_writes {
public:
  steady_writes(journal& j, int streams, int depth) : j_(j) {
    for (int i = 0; i < streams; ++i)
      next_["wallet/w" + std::to_string(i)] = 0;
    for (auto& [name, _] : next_)
      for (int d = 0; d < depth; ++d)
        submit(name);
  }

  std::map<std::string, uint64_t> acked() {
    std::lock_guard lock{mutex_};
    return acked_;
  }

  void stop() {
    {
      std::lock_guard lock{mutex_};
      stopping_ = true;
    }
    REQUIRE(wait_until([&] {
      std::lock_guard lock{mutex_};
      return in_flight_ == 0;
    }));
  }

private:
  void submit(const std::string& stream) {
    // Held across append() so appends reach the queue in the order their
    // seqs were chosen (the first ones come from this thread, the rest from
    // the writer's callbacks).
    std::lock_guard lock{mutex_};
    if (stopping_)
      return;
    auto& seq = next_[stream];
    append_request r{stream, seq, {amount_event("deposited", expected_amount(stream, seq + 1))},
                     std::nullopt};
    ++seq;
    ++in_flight_;
    auto err = j_.append(std::move(r), [this, stream](caf::expected<append_ack> ack) {
      {
        std::lock_guard lock{mutex_};
        --in_flight_;
        REQUIRE(ack);
        acked_[stream] = ack->last_seq;
      }
      submit(stream);
    });
    REQUIRE_FALSE(err);
  }

  journal& j_;
  std::mutex mutex_;
  std::map<std::string, uint64_t> next_;
  std::map<std::string, uint64_t> acked_;
  int in_flight_ = 0;
  bool stopping_ = false;
};

class amounts_match : public journal_visitor {
public:
  std::map<std::string, uint64_t> last_seq;
  void on_events(const std::string& stream, const std::vector<recorded_event>& page,
                 verify_report& report) override {
    for (auto& e : page) {
      if (e.data != amount_event("deposited", expected_amount(stream, e.seq)))
        report.add_problem(stream + ": wrong event " + std::to_string(e.seq));
      last_seq[stream] = e.seq;
    }
  }
  void finish(verify_report&) override {}
};

void raw_exec(const std::string& path, const std::string& sql) {
  sqlite3* db = nullptr;
  REQUIRE(sqlite3_open(path.c_str(), &db) == SQLITE_OK);
  auto rc = sqlite3_exec(db, sql.c_str(), nullptr, nullptr, nullptr);
  sqlite3_close(db);
  REQUIRE(rc == SQLITE_OK);
}

} // namespace

TEST_CASE("a backup taken while appends go on restores to a journal that verifies") {
  temp_dir dir;
  auto path = (dir / "journal.db").string();
  auto backup = (dir / "backup.db").string();
  auto j = open_or_fail(options_at(path));
  steady_writes writes{*j, 8, 4};
  REQUIRE(wait_until([&] { return writes.acked().size() == 8; }));
  auto acked_before = writes.acked();
  auto info = backup_journal(path, backup);
  REQUIRE_MESSAGE(info, message_of(info.error()));
  CHECK(info->pages > 0);
  // The writes went on during the backup and after it.
  auto acked_after_backup = writes.acked();
  REQUIRE(wait_until([&] { return writes.acked() != acked_after_backup; }));
  writes.stop();
  j.reset();

  fs::create_directory(dir / "restored");
  auto restored = (dir / "restored" / "journal.db").string();
  REQUIRE(restore_journal(backup, restored));
  amounts_match visitor;
  auto report = verify_journal(restored, &visitor);
  REQUIRE(report);
  for (auto& problem : report->problems)
    FAIL_CHECK(problem);
  CHECK(report->streams == 8);
  // Everything acknowledged before the backup began is in it.
  for (auto& [stream, seq] : acked_before)
    CHECK(visitor.last_seq[stream] >= seq);
  // The restored journal is a working journal.
  auto again = open_or_fail(options_at(restored));
  auto last = *again->last_seq("wallet/w0");
  CHECK(append_sync(*again, "wallet/w0", last,
                    {amount_event("deposited", expected_amount("wallet/w0", last + 1))}));
}

TEST_CASE("restore refuses a data dir that already has a journal") {
  temp_dir dir;
  auto path = (dir / "journal.db").string();
  open_or_fail(options_at(path)).reset();
  REQUIRE(backup_journal(path, (dir / "backup.db").string()));
  auto r = restore_journal((dir / "backup.db").string(), path);
  REQUIRE_FALSE(r);
  CHECK(code_of(r.error()) == errc::journal_failure);
  CHECK(message_of(r.error()).find("exists") != std::string::npos);
}

TEST_CASE("a backup never overwrites a file") {
  temp_dir dir;
  auto path = (dir / "journal.db").string();
  open_or_fail(options_at(path)).reset();
  auto backup = (dir / "backup.db").string();
  std::ofstream{backup} << "precious";
  auto r = backup_journal(path, backup);
  REQUIRE_FALSE(r);
  CHECK(message_of(r.error()).find("never overwrites") != std::string::npos);
}

TEST_CASE("restore refuses a backup that is not a journal") {
  temp_dir dir;
  auto bogus = (dir / "bogus.db").string();
  raw_exec(bogus, "CREATE TABLE t (x)");
  auto r = restore_journal(bogus, (dir / "journal.db").string());
  REQUIRE_FALSE(r);
  CHECK(message_of(r.error()).find("not a Wager journal") != std::string::npos);
  CHECK_FALSE(fs::exists(dir / "journal.db"));
}

TEST_CASE("verify reports a gap in a stream, events short of the last seq, and orphans") {
  temp_dir dir;
  auto path = (dir / "journal.db").string();
  {
    auto j = open_or_fail(options_at(path));
    for (auto stream : {"wallet/gap", "wallet/short", "wallet/fine"})
      REQUIRE(append_sync(*j, stream, 0,
                          {amount_event("deposited", 1), amount_event("deposited", 2),
                           amount_event("deposited", 3), amount_event("deposited", 4)}));
  }
  raw_exec(path, "DELETE FROM events WHERE stream = 'wallet/gap' AND seq = 3;"
                 "UPDATE streams SET last_seq = 6 WHERE stream = 'wallet/short';"
                 "INSERT INTO snapshots VALUES ('wallet/ghost', 1, 1, '{}', 0, 0);");
  auto report = verify_journal(path);
  REQUIRE(report);
  CHECK_FALSE(report->ok());
  auto mentions = [&](const std::string& text) {
    for (auto& p : report->problems)
      if (p.find(text) != std::string::npos)
        return true;
    return false;
  };
  CHECK(mentions("wallet/gap has no event 3"));
  CHECK(mentions("wallet/short: events end at seq 4 but the stream's last seq is 6"));
  CHECK(mentions("wallet/ghost: snapshots rows without a stream row"));
  CHECK_FALSE(mentions("wallet/fine"));
  CHECK(report->problems.size() == 3);
}

TEST_CASE("verify reports what a journal visitor finds across streams") {
  // The money core's invariant plugs in the same way: here, no balance may
  // end negative.
  class no_negative_balance : public journal_visitor {
  public:
    std::map<std::string, int64_t> balance;
    void on_events(const std::string& stream, const std::vector<recorded_event>& page,
                   verify_report&) override {
      for (auto& e : page) {
        auto amount = e.data.json().as_object().at("amount").to_number<int64_t>();
        balance[stream] += e.data.type == "deposited" ? amount : -amount;
      }
    }
    void finish(verify_report& report) override {
      for (auto& [stream, b] : balance)
        if (b < 0)
          report.add_problem(stream + ": balance " + std::to_string(b) + " is negative");
    }
  };
  temp_dir dir;
  auto path = (dir / "journal.db").string();
  {
    auto j = open_or_fail(options_at(path));
    REQUIRE(append_sync(*j, "wallet/ok", 0, {amount_event("deposited", 5)}));
    REQUIRE(append_sync(*j, "wallet/bad", 0,
                        {amount_event("deposited", 5), amount_event("withdrawn", 8)}));
  }
  no_negative_balance invariant;
  auto report = verify_journal(path, &invariant);
  REQUIRE(report);
  REQUIRE(report->problems.size() == 1);
  CHECK(report->problems[0] == "wallet/bad: balance -3 is negative");
  CHECK(report->events == 3);
}
