#pragma once

// The WebSocket stream (shared/API.md "Stream"): one session actor per
// connection, spawned on the platform's actor system. It authenticates the
// connection (first message {"op":"auth","token":...}), subscribes to
// markets through the directory (subscribe_cmd: a snapshot, then every
// market_update in order), watches the user's wallet (watch_cmd: bet and
// wallet_balance pushes) and writes all of it into the connection's bounded
// stream_outbox, where prices conflate and the rest is never dropped.
//
// The node plugs it into its http_server:
//
//   http_server_options o;
//   o.websocket = make_stream_handler(platform, validate_token);
//
// Messages the session actor takes (besides the client's frames):
//   market_update, (subscription_ended_atom, market_id)  from markets
//   bet, wallet_balance, (watch_ended_atom, user_id)      from the wallet

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

// Checks a session token and answers once, from any thread: the user id, or
// nullopt when the token is unknown, expired or revoked.
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
  // wager_feed_push_latency_seconds: a feed message's arrival at the node
  // to its price or status change handed to this connection's outbox. Set
  // by make_stream_handler; null: not measured.
  prometheus::Histogram* feed_push_seconds = nullptr;
};

// A client frame: (stream_text_atom, std::string).
using stream_text_atom = caf::atom_constant<caf::atom("strmtext")>;

caf::actor spawn_stream_session(caf::actor_system& system, directory dir,
                                token_validator validate,
                                std::shared_ptr<stream_outbox> outbox,
                                stream_options options = {});

// The websocket_handler for http_server_options::websocket: each upgraded
// connection gets a session actor, which ends when the connection closes.
websocket_handler make_stream_handler(platform& p, token_validator validate,
                                      stream_options options = {});

} // namespace wager
