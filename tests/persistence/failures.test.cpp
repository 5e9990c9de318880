// Each way the disk can refuse, made real: a full filesystem, a read-only
// file, a missing or vanished directory, a corrupt or truncated file. In
// every case the journal refuses with a clear error, acknowledges nothing,
// never reads back anything half-written, and the process stays up.

#include "fault_injection.hpp"
#include "journal_support.hpp"

#include "wager/persistence/backup.hpp"

#include "support/temp_dir.hpp"

#include <doctest/doctest.h>

#include <fstream>
#include <iterator>

using namespace wager;
using namespace wager::test;
namespace fs = std::filesystem;

namespace {

event big_event(size_t bytes) {
  return event::make("deposited", 1, boost::json::object{{"amount", 1}, {"memo", std::string(bytes, 'x')}});
}

void check_refused_as_failure(const caf::expected<append_ack>& r) {
  REQUIRE_FALSE(r);
  INFO("refused with: " << message_of(r.error()));
  CHECK(code_of(r.error()) == errc::journal_failure);
}

std::string read_file(const std::string& path) {
  std::ifstream in{path, std::ios::binary};
  return {std::istreambuf_iterator<char>{in}, {}};
}

void write_file(const std::string& path, const std::string& bytes) {
  std::ofstream out{path, std::ios::binary | std::ios::trunc};
  out << bytes;
}

} // namespace

TEST_CASE("a full disk refuses appends, acknowledges nothing, and the journal writes again "
          "once space is freed") {
  temp_dir dir;
  auto mount_point = (dir / "small").string();
  fs::create_directory(mount_point);
  auto path = mount_point + "/journal.db";
  auto filler = mount_point + "/filler";
  // A full tmpfs is the real thing; where mounting is not allowed, a file
  // size limit makes the same writes fail (EFBIG instead of ENOSPC).
  auto mount_error = mount_tmpfs(mount_point, 4 << 20);
  if (!mount_error.empty())
    MESSAGE("no tmpfs here (" << mount_error << "): using RLIMIT_FSIZE");
  auto j = open_or_fail(options_at(path));
  for (uint64_t seq = 0; seq < 5; ++seq)
    REQUIRE(append_sync(*j, "wallet/u1", seq, {amount_event("deposited", 10)}));
  {
    std::optional<file_size_limit> limit;
    if (mount_error.empty())
      REQUIRE(fill_filesystem(filler) > 0);
    else
      limit.emplace(fs::file_size(path + "-wal"));
    // Several appends in flight, in one or more batches: none is acknowledged.
    std::vector<std::future<caf::expected<append_ack>>> answers;
    for (int i = 0; i < 8; ++i)
      answers.push_back(std::async(std::launch::async, [&j, i] {
        return append_sync(*j, "wallet/big" + std::to_string(i), 0, {big_event(256 << 10)});
      }));
    for (auto& a : answers)
      check_refused_as_failure(a.get());
    check_refused_as_failure(append_sync(*j, "wallet/u1", 5, {big_event(256 << 10)}));
    auto health = j->health();
    CHECK_FALSE(health.writable);
    CHECK(health.failed_batches >= 1);
    CHECK_FALSE(health.last_error.empty());
    // What was acknowledged before is intact; nothing of the refused reads back.
    CHECK(*j->last_seq("wallet/u1") == 5);
    CHECK(j->read_events("wallet/u1", 1, 100)->size() == 5);
    for (int i = 0; i < 8; ++i)
      CHECK(j->read_events("wallet/big" + std::to_string(i), 1, 100)->empty());
    if (mount_error.empty())
      fs::remove(filler);
  }
  append_request retry{"wallet/u1", 5, {big_event(256 << 10)}, std::nullopt};
  retry.from_read = true;
  REQUIRE(append_sync(*j, retry));
  CHECK(j->health().writable);
  j.reset();
  auto report = verify_journal(path);
  REQUIRE(report);
  CHECK(report->ok());
  CHECK(report->events == 6);
}

TEST_CASE("a read-only journal file is refused at open with a clear error") {
  temp_dir dir;
  auto path = (dir / "journal.db").string();
  {
    auto j = open_or_fail(options_at(path));
    REQUIRE(append_sync(*j, "wallet/u1", 0, {amount_event("deposited", 1)}));
  }
  // Root ignores permission bits; the immutable attribute binds root too.
  immutable_file read_only{path};
  REQUIRE_MESSAGE(read_only.error().empty(), "cannot make the file read-only: " << read_only.error());
  auto j = open_sqlite_journal(options_at(path));
  REQUIRE_FALSE(j);
  CHECK(code_of(j.error()) == errc::journal_failure);
  CHECK(message_of(j.error()).find("read-only") != std::string::npos);
}

TEST_CASE("a journal whose log turns read-only while open refuses appends, then recovers") {
  temp_dir dir;
  auto path = (dir / "journal.db").string();
  auto j = open_or_fail(options_at(path));
  REQUIRE(append_sync(*j, "wallet/u1", 0, {amount_event("deposited", 1)}));
  {
    immutable_file read_only{path + "-wal"};
    REQUIRE_MESSAGE(read_only.error().empty(), "cannot make the log read-only: " << read_only.error());
    check_refused_as_failure(append_sync(*j, "wallet/u1", 1, {amount_event("deposited", 2)}));
    CHECK_FALSE(j->health().writable);
    CHECK(*j->last_seq("wallet/u1") == 1);
  }
  append_request retry{"wallet/u1", 1, {amount_event("deposited", 2)}, std::nullopt};
  retry.from_read = true;
  CHECK(append_sync(*j, retry));
  CHECK(j->health().writable);
  CHECK(*j->last_seq("wallet/u1") == 2);
}

TEST_CASE("a journal in a missing directory is refused and no directory is made") {
  temp_dir dir;
  auto path = (dir / "no-such-dir" / "journal.db").string();
  auto j = open_sqlite_journal(options_at(path));
  REQUIRE_FALSE(j);
  CHECK(code_of(j.error()) == errc::journal_failure);
  CHECK(message_of(j.error()).find("does not exist") != std::string::npos);
  CHECK_FALSE(fs::exists(dir / "no-such-dir"));
}

TEST_CASE("a journal whose directory vanishes while open refuses appends rather than write "
          "into a deleted file") {
  temp_dir dir;
  auto data = dir / "data";
  fs::create_directory(data);
  auto j = open_or_fail(options_at((data / "journal.db").string()));
  REQUIRE(append_sync(*j, "wallet/u1", 0, {amount_event("deposited", 1)}));
  fs::remove_all(data);
  auto r = append_sync(*j, "wallet/u1", 1, {amount_event("deposited", 2)});
  check_refused_as_failure(r);
  CHECK(message_of(r.error()).find("deleted or replaced") != std::string::npos);
  CHECK_FALSE(j->health().writable);
}

TEST_CASE("a file that is not a database is refused") {
  temp_dir dir;
  auto path = (dir / "journal.db").string();
  write_file(path, std::string(8192, '\x5a'));
  auto j = open_sqlite_journal(options_at(path));
  REQUIRE_FALSE(j);
  CHECK(code_of(j.error()) == errc::journal_failure);
  CHECK(message_of(j.error()).find("not a database") != std::string::npos);
}

TEST_CASE("an empty journal file is refused as truncated, never taken for a new journal") {
  temp_dir dir;
  auto path = (dir / "journal.db").string();
  write_file(path, "");
  auto j = open_sqlite_journal(options_at(path));
  REQUIRE_FALSE(j);
  CHECK(message_of(j.error()).find("empty") != std::string::npos);
  CHECK(fs::file_size(path) == 0);
}

TEST_CASE("a truncated journal never reads back wrong events and fails verification") {
  temp_dir dir;
  auto path = (dir / "journal.db").string();
  {
    auto j = open_or_fail(options_at(path));
    for (int s = 0; s < 30; ++s)
      for (uint64_t seq = 0; seq < 50; seq += 10) {
        std::vector<event> events;
        for (int k = 1; k <= 10; ++k)
          events.push_back(amount_event("deposited", s * 1000 + static_cast<int>(seq) + k));
        REQUIRE(append_sync(*j, "wallet/t" + std::to_string(s), seq, std::move(events)));
      }
  } // closing checkpoints the log into the file and removes it
  REQUIRE_FALSE(fs::exists(path + "-wal"));
  fs::resize_file(path, fs::file_size(path) / 2);
  int failed_reads = 0;
  if (auto j = open_sqlite_journal(options_at(path))) {
    for (int s = 0; s < 30; ++s) {
      auto events = (*j)->read_events("wallet/t" + std::to_string(s), 1, 1000);
      if (!events) {
        CHECK(code_of(events.error()) == errc::journal_failure);
        ++failed_reads;
        continue;
      }
      // A read that succeeds returns exactly what was written.
      REQUIRE(events->size() == 50);
      for (int k = 0; k < 50; ++k)
        CHECK((*events)[k].data == amount_event("deposited", s * 1000 + k + 1));
    }
  } else {
    ++failed_reads;
  }
  CHECK(failed_reads > 0);
  auto report = verify_journal(path);
  CHECK((!report || !report->ok()));
}

TEST_CASE("a flipped byte in a stored event is caught by its checksum") {
  temp_dir dir;
  auto path = (dir / "journal.db").string();
  {
    auto j = open_or_fail(options_at(path));
    REQUIRE(append_sync(*j, "wallet/x", 0, {amount_event("deposited", 123456789)}));
  }
  auto bytes = read_file(path);
  auto at = bytes.find("123456789");
  REQUIRE(at != std::string::npos);
  bytes[at] = '9'; // still valid JSON, a different amount
  write_file(path, bytes);
  auto j = open_or_fail(options_at(path));
  auto events = j->read_events("wallet/x", 1, 10);
  REQUIRE_FALSE(events);
  CHECK(code_of(events.error()) == errc::journal_failure);
  CHECK(message_of(events.error()).find("checksum mismatch in event 1 of wallet/x") !=
        std::string::npos);
  CHECK_FALSE(recover(*j, "wallet/x", account_replay()));
  j.reset();
  auto report = verify_journal(path);
  REQUIRE(report);
  REQUIRE_FALSE(report->ok());
  CHECK(report->problems.front().find("checksum mismatch") != std::string::npos);
}
