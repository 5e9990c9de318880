#pragma once

// What the journal stores: events (versioned JSON payloads), snapshots and
// stored request results, each in the shape it crosses the journal interface.
//
// A stream is one entity's history, named "kind/key" (e.g. "wallet/u42"), the
// same text runtime's entity id prints. The journal keys everything by this
// name and lists streams by kind, so it needs nothing from the layers above.
//
// Payloads travel as serialized JSON text: the caller serializes on its own
// thread (the writer thread is the bottleneck, so it only binds strings) and
// the text is what is checksummed and stored.

#include <boost/json/value.hpp>

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace wager {

// Bounds on names, so a stream or request id can never grow a row without
// limit. 256 bytes holds any "kind/key" the platform makes.
inline constexpr size_t stream_bytes_max = 256;
inline constexpr size_t request_id_bytes_max = 128;
inline constexpr size_t event_type_bytes_max = 64;

// One event as a caller hands it to append().
struct event {
  std::string type;      // e.g. "deposited"; snake_case, stable forever
  uint32_t version = 1;  // shape of `payload` for this type; upcasters raise it
  std::string payload;   // serialized JSON (normally an object)

  // Serializes `payload`.
  static event make(std::string type, uint32_t version, const boost::json::value& payload);

  // Parses the payload; a payload that is not JSON is a programmer error
  // caught on append, so this asserts.
  boost::json::value json() const;

  friend bool operator==(const event&, const event&) = default;
};

// An event as read back: its position in the stream and when it was written.
struct recorded_event {
  uint64_t seq = 0;    // 1 for the first event of a stream, contiguous
  int64_t at_ms = 0;   // wall clock at append, milliseconds since the epoch
  event data;

  friend bool operator==(const recorded_event&, const recorded_event&) = default;
};

// The latest state of one stream, covering its events 1..seq.
struct snapshot {
  std::string stream;
  uint64_t seq = 0;     // last event folded into `state`
  uint32_t version = 1; // shape of `state`; a reader that does not know it
                        // ignores the snapshot and replays from the start
  std::string state;    // serialized JSON
  int64_t at_ms = 0;    // set by the journal when read back

  friend bool operator==(const snapshot&, const snapshot&) = default;
};

// The first answer to a request, kept so a retry gets the same answer.
struct stored_request {
  std::string request_id;
  uint64_t seq = 0;      // last seq of the append that stored it
  std::string result;    // serialized JSON, opaque to the journal
  int64_t at_ms = 0;

  friend bool operator==(const stored_request&, const stored_request&) = default;
};

// "wallet" for "wallet/u42"; empty when the name has no '/'.
std::string_view kind_of(std::string_view stream) noexcept;

// A stream name is "kind/key": both parts non-empty, no control characters,
// at most stream_bytes_max bytes.
bool valid_stream_name(std::string_view stream) noexcept;

// The checksum stored with every row (FNV-1a, 64 bit) over the row's
// identity and content, so a flipped byte or a row copied under another
// stream or seq is caught on read: SQLite checks its pages' structure, not
// the bytes of our payloads.
uint64_t row_checksum(std::string_view stream, uint64_t seq, std::string_view type,
                      uint32_t version, std::string_view payload) noexcept;

// CAF inspection, so these types can travel in messages.
template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, event& x) {
  return f(x.type, x.version, x.payload);
}
template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, recorded_event& x) {
  return f(x.seq, x.at_ms, x.data);
}
template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, snapshot& x) {
  return f(x.stream, x.seq, x.version, x.state, x.at_ms);
}
template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, stored_request& x) {
  return f(x.request_id, x.seq, x.result, x.at_ms);
}

} // namespace wager
