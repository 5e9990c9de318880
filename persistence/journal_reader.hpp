#pragma once

// Reads of the journal file on one connection: the SQLite journal's pooled
// readers and the verify pass use it. Every row is checked before it is
// returned: its checksum, and for events that seqs are contiguous, so a
// corrupt or half-written row is an error (errc::journal_failure), never a
// value. Events are upcast (upcasting.hpp) after the checks.

#include "wager/persistence/event.hpp"
#include "wager/persistence/sqlite_db.hpp"
#include "wager/persistence/upcasting.hpp"

#include <caf/expected.hpp>

#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace wager {

class journal_reader {
public:
  // `upcasters` may be null: events are returned as stored.
  journal_reader(sqlite::connection db, std::shared_ptr<const upcaster_registry> upcasters);
  ~journal_reader();

  journal_reader(const journal_reader&) = delete;
  journal_reader& operator=(const journal_reader&) = delete;

  caf::expected<std::vector<recorded_event>> read_events(const std::string& stream,
                                                         uint64_t from_seq, uint32_t max_count);
  caf::expected<uint64_t> last_seq(const std::string& stream);
  caf::expected<std::optional<snapshot>> load_snapshot(const std::string& stream);
  caf::expected<std::vector<std::string>> list_streams(std::string_view kind,
                                                       const std::string& after,
                                                       uint32_t max_count);
  caf::expected<std::vector<std::string>> list_open_streams(std::string_view kind,
                                                            const std::string& after,
                                                            uint32_t max_count);
  // Every stream of every kind, paged like list_streams (verify uses it).
  caf::expected<std::vector<std::string>> list_all_streams(const std::string& after,
                                                           uint32_t max_count);
  caf::expected<std::optional<stored_request>> find_request(const std::string& stream,
                                                            const std::string& request_id);

  sqlite::connection& connection() { return db_; }
  // A file connection stays usable (reader_pool.hpp).
  bool usable() const { return true; }
  const std::shared_ptr<const upcaster_registry>& upcasters() const { return upcasters_; }

  // The log layout's reads (log_journal.hpp), prepared on first use: a file
  // of schema version 2 has no log table.
  //   frame_at:     SELECT frame, crc WHERE position = ?1
  //   frames_after: SELECT position, frame, crc WHERE position > ?1, in
  //                 position order, LIMIT ?2
  sqlite::statement& frame_at();
  sqlite::statement& frames_after();

private:
  sqlite::connection db_;
  std::shared_ptr<const upcaster_registry> upcasters_;
  sqlite::statement events_, last_seq_, snapshot_, streams_of_kind_, open_streams_,
    all_streams_, request_, frame_at_, frames_after_;
};

} // namespace wager
