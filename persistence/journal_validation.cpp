#include "wager/persistence/journal_writer.hpp"

#include "wager/runtime/errors.hpp"

#include <boost/json/monotonic_resource.hpp>
#include <boost/json/parse.hpp>

namespace wager {

namespace {

bool is_json(std::string_view text) {
  // Parsed into a stack buffer first: most payloads are small, and this
  // check runs on the appending actor's thread for every event.
  unsigned char buffer[4096];
  boost::json::monotonic_resource resource{buffer};
  boost::system::error_code ec;
  boost::json::parse(text, ec, &resource);
  return !ec;
}

caf::error too_large(const std::string& what, size_t size, size_t max) {
  return make_error(errc::too_large, what + " is " + std::to_string(size) +
                                       " bytes, more than " + std::to_string(max));
}

caf::error check_event(const event& e, const journal_options& options) {
  if (e.type.empty() || e.type.size() > event_type_bytes_max)
    return make_error(errc::invalid_field, "event type '" + e.type + "' is empty or longer than " +
                                             std::to_string(event_type_bytes_max) + " bytes");
  if (e.version == 0)
    return make_error(errc::invalid_field, "event " + e.type + " has version 0 (they start at 1)");
  if (e.payload.size() > options.event_bytes_max)
    return too_large("payload of event " + e.type, e.payload.size(), options.event_bytes_max);
  if (!is_json(e.payload))
    return make_error(errc::invalid_json, "payload of event " + e.type + " is not JSON");
  return {};
}

caf::error check_stream(const std::string& stream) {
  if (!valid_stream_name(stream))
    return make_error(errc::invalid_field, "stream name '" + stream.substr(0, stream_bytes_max) +
                                             "' is not kind/key of at most " +
                                             std::to_string(stream_bytes_max) + " bytes");
  return {};
}

} // namespace

caf::error validate_append(const append_request& request, const journal_options& options) {
  if (auto err = check_stream(request.stream))
    return err;
  if (request.events.empty() && !request.request)
    return make_error(errc::invalid_field, "append to " + request.stream +
                                             " has neither events nor a request result");
  if (request.at_ms < 0)
    return make_error(errc::invalid_field,
                      "append to " + request.stream + " has a negative timestamp");
  if (request.events.size() > options.events_per_append_max)
    return make_error(errc::too_large,
                      "append to " + request.stream + " has " +
                        std::to_string(request.events.size()) + " events, more than " +
                        std::to_string(options.events_per_append_max));
  for (auto& e : request.events)
    if (auto err = check_event(e, options))
      return err;
  if (request.after.size() > options.events_per_append_max)
    return make_error(errc::too_large, "append to " + request.stream + " builds on " +
                                         std::to_string(request.after.size()) +
                                         " events, more than " +
                                         std::to_string(options.events_per_append_max));
  for (auto& p : request.after) {
    if (auto err = check_stream(p.stream))
      return err;
    if (p.seq == 0)
      return make_error(errc::invalid_field,
                        "append to " + request.stream + " builds on seq 0 of " + p.stream);
  }
  if (auto& r = request.request) {
    if (r->request_id.empty() || r->request_id.size() > request_id_bytes_max)
      return make_error(errc::invalid_field, "request id is empty or longer than " +
                                               std::to_string(request_id_bytes_max) + " bytes");
    if (r->result.size() > options.request_result_bytes_max)
      return too_large("result of request " + r->request_id, r->result.size(),
                       options.request_result_bytes_max);
    if (!is_json(r->result))
      return make_error(errc::invalid_json, "result of request " + r->request_id + " is not JSON");
  }
  return {};
}

caf::error validate_snapshot(const snapshot& snap, const journal_options& options) {
  if (auto err = check_stream(snap.stream))
    return err;
  if (snap.seq == 0)
    return make_error(errc::invalid_field, "snapshot of " + snap.stream + " covers no event");
  if (snap.version == 0)
    return make_error(errc::invalid_field, "snapshot of " + snap.stream + " has version 0");
  if (snap.state.size() > options.snapshot_bytes_max)
    return too_large("snapshot of " + snap.stream, snap.state.size(), options.snapshot_bytes_max);
  if (!is_json(snap.state))
    return make_error(errc::invalid_json, "snapshot of " + snap.stream + " is not JSON");
  return {};
}

} // namespace wager
