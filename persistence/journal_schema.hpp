#pragma once

// The journal file's schema, its version and its migrations, and opening a
// connection to a journal file with the settings every connection needs.
//
// The file carries SQLite's application_id ("WAGR") so a foreign SQLite file
// is never mistaken for a journal, and the schema version in user_version.
// A file from a newer release is refused (a rollback must not write rows the
// newer release cannot read); an older one is migrated in one transaction.

#include "wager/persistence/journal_options.hpp"
#include "wager/persistence/sqlite_db.hpp"

#include <caf/expected.hpp>

#include <cstdint>
#include <string>

namespace wager {

inline constexpr int64_t journal_application_id = 0x57414752; // "WAGR"
inline constexpr int64_t journal_schema_version = 4;

// How a connection will be used.
enum class journal_role {
  writer, // appends: synchronous=FULL, autocheckpoint
  reader, // query_only, never writes
};

// Opens the journal at options.path: creates it when missing (if allowed),
// checks it is a journal this build can use, migrates an older schema, and
// sets WAL, synchronous=FULL and the busy timeout. Every failure is
// errc::journal_failure with a message naming the file and the cause.
caf::expected<sqlite::connection> open_journal_file(const journal_options& options,
                                                    journal_role role);

// Opens a file only to read it (backup, verify), without creating or
// migrating anything. Refuses foreign files and newer schemas as above.
caf::expected<sqlite::connection> open_journal_for_inspection(const std::string& path);

// Which layout holds the file's history (journal_options.hpp). A file of
// schema version 2 or older is the row layout.
caf::expected<journal_layout> layout_of(sqlite::connection& db, const std::string& path);

// Flushes a file's (or directory's) data to disk.
caf::error sync_path(const std::string& path);

} // namespace wager
