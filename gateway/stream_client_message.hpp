#pragma once

// A client's message on the WebSocket stream (shared/API.md "Stream"), read
// without the stream actor: the actor (stream.cpp) decides what it means in
// the connection's state, and fuzz/ws_message_fuzz.cpp drives the reading
// with any bytes. Not a public header.

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace wager {

enum class stream_client_op : uint8_t {
  auth,        // {"op":"auth","token":"..."}
  subscribe,   // {"op":"subscribe","markets":[ids]}
  unsubscribe, // {"op":"unsubscribe","markets":[ids]}
};

std::string_view to_string(stream_client_op op);

struct stream_client_message {
  stream_client_op op = stream_client_op::auth;
  // auth: the token; empty when missing, not a string or empty (the stream
  // refuses it).
  std::string token;
  // subscribe, unsubscribe: market ids, each valid (ids.hpp), in the
  // client's order, repeats kept.
  std::vector<std::string> markets;
};

// What the stream answers a message it cannot read, as {"type":"error"}:
// `code` is invalid_json (no field), missing_field or invalid_field (field
// "op" or "markets").
struct stream_client_error {
  std::string_view code;
  std::string message;
  std::string_view field;
};

// Exactly one of `message` and `error` is meaningful: message when read.
struct stream_client_read {
  std::optional<stream_client_message> message;
  stream_client_error error;

  bool ok() const { return message.has_value(); }
};

// Reads one text frame. Fields other than op, token and markets are
// ignored; an auth message is read whatever its token, so the stream can
// answer "already authenticated" to one after auth.
stream_client_read read_stream_client_message(std::string_view text);

} // namespace wager
