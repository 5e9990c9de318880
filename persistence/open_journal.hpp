#pragma once

// One way in for every program that opens a journal (the platform,
// wager-node, wagerctl): the embedded SQLite file at options.path, or
// PostgreSQL when options.url names a server.

#include "wager/persistence/journal.hpp"
#include "wager/persistence/journal_options.hpp"

#include <caf/expected.hpp>

#include <memory>
#include <string_view>

namespace wager {

// open_pg_journal when options.url is set, open_sqlite_journal otherwise.
// A URL that is not postgresql:// (or postgres://) is invalid_field.
caf::expected<std::unique_ptr<journal>> open_journal(journal_options options);

// Where a journal is, for messages: the URL without its password, or the
// file's path.
std::string journal_location(const journal_options& options);

} // namespace wager
