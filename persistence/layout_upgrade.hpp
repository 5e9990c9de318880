#pragma once

// Rewriting a row-layout journal in the log layout (journal_options.hpp,
// "Two layouts"): the library side of `wagerctl upgrade` (shared/API.md).
//
// The file is converted in place, in one SQLite transaction: each stream's
// events and stored requests become records of frames appended to `log`
// (streams in name order, each stream's records in seq order, hash-chained
// like any frame), the rows of `events`, `streams` and `requests` are
// deleted, and the layout row says "log". Either all of it commits or the
// file is left as it was. Snapshots stay where they are: both layouts keep
// them in `snapshots`.
//
// Nothing is taken on trust: every event's and request's checksum is
// checked, each stream's seqs must run 1..last_seq with no gap, and every
// stored request must name a seq its stream has; anything else refuses the
// upgrade (journal_failure) and changes nothing.
//
// The file must be at the current schema version (open_journal_file
// migrates it) and nobody else may have it open: the conversion takes
// SQLite's exclusive lock, and a file another process holds open is refused
// (errc::unavailable) rather than converted under it.

#include <caf/expected.hpp>

#include <cstdint>
#include <string>

namespace wager {

struct layout_upgrade_report {
  bool converted = false; // false: the file already had the log layout
  uint64_t streams = 0;
  uint64_t events = 0;
  uint64_t requests = 0;
  uint64_t frames = 0;
};

caf::expected<layout_upgrade_report> upgrade_to_log_layout(const std::string& path);

} // namespace wager
