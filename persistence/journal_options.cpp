#include "wager/persistence/journal_options.hpp"

#include "wager/runtime/errors.hpp"

#include <string>

namespace wager {

namespace {

template <class T>
bool in_bounds(T value, T min, T max) {
  return value >= min && value <= max;
}

caf::error out_of_bounds(const char* field, uint64_t value, uint64_t min, uint64_t max) {
  return make_error(errc::invalid_field, std::string{"journal option "} + field + " = " +
                                           std::to_string(value) + " is outside [" +
                                           std::to_string(min) + ", " + std::to_string(max) + "]");
}

} // namespace

caf::error validate(const journal_options& o) {
#define WAGER_CHECK_BOUND(field, min, max)                                          \
  if (!in_bounds<uint64_t>(o.field, min, max))                                      \
    return out_of_bounds(#field, o.field, min, max);
  if (o.path.empty() && o.url.empty())
    return make_error(errc::invalid_field, "journal option path is empty");
  WAGER_CHECK_BOUND(connect_timeout_s, 1, 600)
  WAGER_CHECK_BOUND(batch_max, 1, 65536)
  WAGER_CHECK_BOUND(batch_wait_us, 0, 100000)
  WAGER_CHECK_BOUND(queue_max, 1, 1048576)
  WAGER_CHECK_BOUND(events_per_append_max, 1, 65536)
  WAGER_CHECK_BOUND(event_bytes_max, 64, 64u << 20)
  WAGER_CHECK_BOUND(request_result_bytes_max, 64, 16u << 20)
  WAGER_CHECK_BOUND(snapshot_bytes_max, 64, 1u << 30)
  WAGER_CHECK_BOUND(busy_timeout_ms, 0, 600000)
  WAGER_CHECK_BOUND(reader_threads, 1, 16)
  WAGER_CHECK_BOUND(read_connections_max, o.reader_threads, 64)
  WAGER_CHECK_BOUND(read_queue_max, 1, 1048576)
  WAGER_CHECK_BOUND(read_page_max, 1, 1000000)
  WAGER_CHECK_BOUND(snapshot_every, 1, 10000000)
  WAGER_CHECK_BOUND(prune_interval_ms, 10, 3600000)
  WAGER_CHECK_BOUND(prune_rows_max, 1, 1000000)
  WAGER_CHECK_BOUND(index_checkpoint_frames, 0, 1073741824)
  WAGER_CHECK_BOUND(wal_autocheckpoint_pages, 100, 1000000)
  WAGER_CHECK_BOUND(writer_cache_kib, 2048, 4194304)
  WAGER_CHECK_BOUND(page_size, 512, 65536)
  if ((o.page_size & (o.page_size - 1)) != 0)
    return make_error(errc::invalid_field, "journal option page_size = " +
                                             std::to_string(o.page_size) +
                                             " is not a power of two");
  WAGER_CHECK_BOUND(fenced_streams_max, 1024, 16777216)
#undef WAGER_CHECK_BOUND
  return {};
}

} // namespace wager
