#pragma once

// Backup, restore and verify of a journal file: the library side of
// `wagerctl backup|restore|verify` (shared/API.md).
//
// - backup_journal copies a live journal while writes go on: SQLite's backup
//   API copies every page inside one read transaction, which in WAL mode
//   never blocks the writers and sees exactly the commits before it began.
//   The copy is checked (quick_check), fsync'd and only then renamed to its
//   name, so a backup file that exists is a whole one.
// - restore_journal puts a backup in place as the journal of an empty data
//   dir; it never overwrites a journal.
// - verify_journal checks a journal file: SQLite's integrity_check, the
//   checksum of every row, contiguous seqs 1..last per stream, snapshots not
//   ahead of their streams, and the invariants of a journal_visitor (the
//   money invariant is one, filled in by the money core).

#include "wager/persistence/event.hpp"
#include "wager/persistence/upcasting.hpp"

#include <caf/expected.hpp>

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace wager {

struct backup_info {
  uint64_t pages = 0;
  uint64_t bytes = 0;
};

// Copies the journal at `journal_path` into a new file `backup_path`.
// Errors (journal_failure): the journal cannot be read, `backup_path`
// exists, the disk refused the copy.
caf::expected<backup_info> backup_journal(const std::string& journal_path,
                                          const std::string& backup_path);

// Makes `backup_path` the journal at `journal_path`. Refused
// (journal_failure) when a journal is already there, when the backup is not
// a journal this build can read, or when it fails quick_check.
caf::expected<backup_info> restore_journal(const std::string& backup_path,
                                           const std::string& journal_path);

struct verify_report {
  // At most problems_max lines; the rest are counted in problems_dropped.
  static constexpr size_t problems_max = 1000;
  std::vector<std::string> problems;
  uint64_t problems_dropped = 0;
  uint64_t streams = 0;
  uint64_t events = 0;
  uint64_t snapshots = 0;
  uint64_t requests = 0;

  bool ok() const noexcept { return problems.empty() && problems_dropped == 0; }
  void add_problem(std::string problem);
};

// The hook for invariants over entity histories. verify_journal calls
// on_events with every stream's events in seq order, page by page, streams
// in name order, then finish() once, where invariants across streams (total
// money) are checked.
class journal_visitor {
public:
  virtual ~journal_visitor() = default;
  virtual void on_events(const std::string& stream, const std::vector<recorded_event>& page,
                         verify_report& report) = 0;
  virtual void finish(verify_report& report) = 0;
};

// Checks the journal at `path` (read-only; safe while nodes write to it, the
// checks then describe one moment of it). Fails only when the file cannot
// be opened at all; everything found wrong is in the report.
caf::expected<verify_report> verify_journal(const std::string& path,
                                            journal_visitor* visitor = nullptr,
                                            std::shared_ptr<const upcaster_registry> upcasters = {});

} // namespace wager
