#pragma once

// The embedded journal: one SQLite file in WAL mode, shared by every node on
// the host. One writer thread per process commits appends in batches (group
// commit, journal_writer.hpp); reads use their own pooled connections and
// reader threads, so neither ever waits for the other. Several processes may
// open the same file: the write lock is SQLite's (BEGIN IMMEDIATE, waiting up
// to busy_timeout_ms), and the sequence check runs under it.
//
// Closing (the destructor) refuses new work, answers every write already
// queued, runs every read already queued, then joins its threads.

#include "wager/persistence/journal.hpp"
#include "wager/persistence/journal_options.hpp"

#include <caf/expected.hpp>

#include <memory>

namespace wager {

// Opens (creating if allowed) the journal at options.path, in the layout
// the file was created with (options.layout for a new file; the row layout
// for files older than schema version 3). Errors:
// invalid_field (options out of bounds), journal_failure (missing directory,
// read-only or corrupt file, newer schema: the message says which).
caf::expected<std::unique_ptr<journal>> open_sqlite_journal(journal_options options);

} // namespace wager
