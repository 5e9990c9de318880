#include "wager/persistence/journal.hpp"

namespace wager {

event_position position_of(const std::string& stream, uint64_t seq, const event& e) {
  return {stream, seq, row_checksum(stream, seq, e.type, e.version, e.payload)};
}

caf::error journal::read_events_async(std::string stream, uint64_t from_seq, uint32_t max_count,
                                      result_callback<std::vector<recorded_event>> done) {
  return post_read([this, stream = std::move(stream), from_seq, max_count,
                    done = std::move(done)] { done(read_events(stream, from_seq, max_count)); });
}

caf::error journal::load_snapshot_async(std::string stream,
                                        result_callback<std::optional<snapshot>> done) {
  return post_read(
    [this, stream = std::move(stream), done = std::move(done)] { done(load_snapshot(stream)); });
}

caf::error journal::find_request_async(std::string stream, std::string request_id,
                                       result_callback<std::optional<stored_request>> done) {
  return post_read([this, stream = std::move(stream), request_id = std::move(request_id),
                    done = std::move(done)] { done(find_request(stream, request_id)); });
}

caf::error journal::last_seq_async(std::string stream, result_callback<uint64_t> done) {
  return post_read(
    [this, stream = std::move(stream), done = std::move(done)] { done(last_seq(stream)); });
}

caf::error journal::list_streams_async(std::string kind, std::string after, uint32_t max_count,
                                       result_callback<std::vector<std::string>> done) {
  return post_read([this, kind = std::move(kind), after = std::move(after), max_count,
                    done = std::move(done)] { done(list_streams(kind, after, max_count)); });
}

} // namespace wager
