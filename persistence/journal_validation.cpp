#include "wager/persistence/journal_writer.hpp"

#include "wager/runtime/errors.hpp"

#include <boost/json/basic_parser_impl.hpp>

#include <cstdint>

namespace wager {

namespace {

// A parser handler that accepts every value: the parse checks the syntax
// (and the nesting depth) and builds nothing.
struct json_checker {
  static constexpr std::size_t max_array_size = -1;
  static constexpr std::size_t max_object_size = -1;
  static constexpr std::size_t max_string_size = -1;
  static constexpr std::size_t max_key_size = -1;
  using error_code = boost::system::error_code;
  using string_view = boost::json::string_view;
  bool on_document_begin(error_code&) { return true; }
  bool on_document_end(error_code&) { return true; }
  bool on_array_begin(error_code&) { return true; }
  bool on_array_end(std::size_t, error_code&) { return true; }
  bool on_object_begin(error_code&) { return true; }
  bool on_object_end(std::size_t, error_code&) { return true; }
  bool on_string_part(string_view, std::size_t, error_code&) { return true; }
  bool on_string(string_view, std::size_t, error_code&) { return true; }
  bool on_key_part(string_view, std::size_t, error_code&) { return true; }
  bool on_key(string_view, std::size_t, error_code&) { return true; }
  bool on_number_part(string_view, error_code&) { return true; }
  bool on_int64(std::int64_t, string_view, error_code&) { return true; }
  bool on_uint64(std::uint64_t, string_view, error_code&) { return true; }
  bool on_double(double, string_view, error_code&) { return true; }
  bool on_bool(bool, error_code&) { return true; }
  bool on_null(error_code&) { return true; }
  bool on_comment_part(string_view, error_code&) { return true; }
  bool on_comment(string_view, error_code&) { return true; }
};

// What boost::json::parse accepts (default options: no comments, no
// trailing commas, depth at most 32, nothing after the value), without
// building the value: this check runs on the appending actor's thread for
// every event.
bool is_json(std::string_view text) {
  boost::json::basic_parser<json_checker> parser{boost::json::parse_options{}};
  boost::system::error_code ec;
  auto used = parser.write_some(false, text.data(), text.size(), ec);
  return !ec && used == text.size();
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
