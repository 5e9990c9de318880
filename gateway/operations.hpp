#pragma once

// The operations endpoints every node serves (shared/API.md, "Operations"):
// GET /healthz, GET /readyz, GET /metrics.

#include "wager/gateway/http_server.hpp"
#include "wager/runtime/metrics.hpp"

#include <atomic>
#include <optional>

namespace wager {

// What /readyz reports. Only `ready` answers 200.
enum class node_readiness {
  starting, // journal opening, shards not yet owned
  ready,    // serving
  draining, // SIGTERM received: handing work away, refusing new work
  degraded, // the journal cannot write; reads may still work
};

// Answers the operations routes, or nullopt for any other path.
std::optional<http_response> operations_response(const http_request& request,
                                                 const std::atomic<node_readiness>& state,
                                                 const metrics& registry);

// The answer to a client API request while the node does not take work:
// 503 unavailable with Retry-After, saying whether it is starting or
// draining. nullopt when it serves (ready, or degraded: reads still work).
std::optional<http_response> refusal_unless_serving(node_readiness state);

} // namespace wager
