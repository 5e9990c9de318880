#pragma once

// The WebSocket stream (shared/API.md "Stream"): one stream actor per
// connection, spawned on the platform's actor system. The first message
// {"op":"auth","token":...} attaches it to the token's login session entity
// (actors/session.hpp), which checks the token and then sends the user's own
// bet and wallet changes here; a revoked or expired session closes the
// stream. It subscribes to markets through the directory (subscribe_cmd: a
// snapshot, then every market_update in order) and writes all of it into the
// connection's bounded stream_outbox, where prices conflate and the rest is
// never dropped.
//
// The node plugs it into its http_server:
//
//   http_server_options o;
//   o.websocket = make_stream_handler(platform);
//
// Messages the stream actor takes (besides the client's frames):
//   market_update, (subscription_ended_atom, market_id)  from markets
//   stream_attached, bet, wallet_balance,
//   (session_closed_atom, why), down_msg                  from its session
//   (with a token_validator: bet, wallet_balance and
//   (watch_ended_atom, user_id) from the wallet itself)

#include "wager/gateway/http_server.hpp"
#include "wager/runtime/directory.hpp"

#include <caf/actor.hpp>
#include <caf/atom.hpp>

#include <chrono>
#include <functional>
#include <memory>
#include <optional>
#include <string>

namespace caf {
class actor_system;
}

namespace prometheus {
class Histogram;
} // namespace prometheus

namespace wager {

class platform;
class stream_outbox;

// For embedders that authenticate streams their own way (benchmarks, tests
// without sessions): checks a token and answers once, from any thread: the
// user id, whose wallet the stream then watches itself, or nullopt when the
// token is not valid.
using token_validator = std::function<void(
  std::string token, std::function<void(std::optional<std::string> user_id)> done)>;

struct stream_options {
  // Markets one connection may follow at once; more are refused
  // (limit_exceeded).
  uint32_t subscriptions_max = 256;
  // A connection that has not authenticated by then is closed.
  std::chrono::milliseconds auth_timeout{10'000};
  // How long a subscribe or watch waits for its entity.
  std::chrono::milliseconds call_timeout{10'000};
  // Client frames accepted while the token is being checked.
  uint32_t pending_frames_max = 16;
  // A minute of a connection's life for reality checks; a test shortens it.
  std::chrono::milliseconds reality_check_minute{60'000};
  // wager_feed_push_latency_seconds: a feed message's arrival at the node
  // to its price or status change handed to this connection's outbox. Set
  // by make_stream_handler; null: not measured.
  prometheus::Histogram* feed_push_seconds = nullptr;
};

// A client frame: (stream_text_atom, std::string).
using stream_text_atom = caf::atom_constant<caf::atom("strmtext")>;

// An empty `validate` attaches to session entities.
caf::actor spawn_stream_session(caf::actor_system& system, directory dir,
                                token_validator validate,
                                std::shared_ptr<stream_outbox> outbox,
                                stream_options options = {});

// The websocket_handler for http_server_options::websocket: each upgraded
// connection gets a stream actor, attached to its login session, which ends
// when the connection closes.
websocket_handler make_stream_handler(platform& p, stream_options options = {});

// The same with tokens checked by `validate` instead of session entities.
websocket_handler make_stream_handler(platform& p, token_validator validate,
                                      stream_options options = {});

} // namespace wager
