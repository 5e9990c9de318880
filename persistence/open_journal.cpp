#include "wager/persistence/open_journal.hpp"

#include "wager/persistence/pg_db.hpp"
#include "wager/persistence/pg_journal.hpp"
#include "wager/persistence/sqlite_journal.hpp"

namespace wager {

caf::expected<std::unique_ptr<journal>> open_journal(journal_options options) {
  if (options.url.empty())
    return open_sqlite_journal(std::move(options));
  return open_pg_journal(std::move(options));
}

std::string journal_location(const journal_options& options) {
  return options.url.empty() ? options.path : pg::redacted(options.url);
}

} // namespace wager
