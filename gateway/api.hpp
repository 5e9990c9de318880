#pragma once

// The client REST API (shared/API.md, docs/api.md): users and sessions,
// wallet, markets, bets and the operator's admin endpoints, over a
// wager::platform. The node plugs one handler into its http_server:
//
//   wager::client_api api{*platform, {.admin_key = key, .node_id = id}};
//   http_server server{opts, [&](http_request r, http_responder w) {
//     if (auto ops = operations_response(r, readiness, metrics)) return w(*ops);
//     api.handle(std::move(r), std::move(w));
//   }};
//
// handle() never blocks: password hashing and journal reads run on the
// API's own worker pool, everything else is a message: an authenticated
// request goes to its login session entity, which checks the token, applies
// the session's request budget and carries it to the user's wallet
// (actors/session.hpp); public reads and admin calls go to the platform.

#include "wager/gateway/auth_store.hpp"
#include "wager/gateway/http_server.hpp"
#include "wager/gateway/intrusion.hpp"

#include <boost/json/value.hpp>

#include <functional>
#include <optional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

namespace wager {

class platform;
class feed_ingest;

// A member of the cluster as one node sees it.
struct health_member {
  std::string node_id;
  std::string address; // host:port of its cluster port
  std::string status;  // joining, up, leaving or down
};

struct cluster_health {
  std::vector<health_member> members; // this node included
  uint32_t shards_owned = 0;
};

struct api_options {
  // Operator key for /v1/admin/*; empty: every admin call is 403.
  std::string admin_key;
  std::string node_id;
  std::string currency = "EUR";

  auth_options auth;

  // Intrusion detection: thresholds, windows and block lengths
  // (intrusion.hpp).
  intrusion_options intrusion;
  // The detector to report to, shared with the feed (wager-node makes one);
  // null: the API makes its own from `intrusion`.
  std::shared_ptr<intrusion_detector> detector;

  // Threads and queue for hashing and journal reads.
  uint32_t worker_threads = 2;
  size_t worker_queue_max = 1024;

  // Login attempts (failed or not) per username and per client address:
  // a burst, then one per refill interval. Guessing stops after a handful.
  double login_user_burst = 5;
  double login_user_per_s = 1.0 / 12;
  double login_address_burst = 20;
  double login_address_per_s = 1.0 / 3;
  // Sign-ups per client address.
  double signup_address_burst = 10;
  double signup_address_per_s = 1.0 / 6;
  // Every request per client address. Authenticated requests also spend
  // their session's budget (actors/session.hpp).
  double request_address_burst = 400;
  double request_address_per_s = 200;
  // Keys each of these limiters tracks; past that a new key evicts the
  // bucket closest to full (rate_limiter, auth.hpp).
  size_t rate_keys_max = 100'000;

  // POST /v1/admin/feed hands its lines to this ingest; null answers 503.
  // Must outlive the API.
  feed_ingest* feed = nullptr;

  // Lists are paginated (shared/API.md): `?limit=` defaults to
  // list_limit_default and asks at most list_limit_max.
  uint32_t list_limit_default = 100;
  uint32_t list_limit_max = 1000;
  // Markets one GET /v1/markets reads at most to fill a page: a filter few
  // markets match answers a short page with its `next` cursor instead of
  // reading every market in one request.
  uint32_t markets_scan_max = 10'000;

  // The cluster as GET /v1/admin/health shows it; the node supplies it from
  // its cluster agent. Without it the API answers what it knows: this node,
  // alone, owning every shard.
  std::function<cluster_health()> cluster;

  // True once the node drains: GET /v1/admin/health, still served then (so
  // `wagerctl status` can watch the entities leave), says "draining".
  std::function<bool()> draining;

  // POST /v1/admin/drain calls this once its 202 is written to the socket,
  // so the client has the answer before the drain closes connections. It
  // runs on an I/O thread and must return at once (the node's drain runs
  // elsewhere). Unset: the route answers 503 unavailable.
  std::function<void()> drain;
};

// Every route the API serves, as (method, path) with "{}" for a path id, for
// the check against docs/openapi.json.
std::vector<std::pair<std::string, std::string>> api_routes();

class client_api {
public:
  client_api(platform& p, api_options options);
  ~client_api(); // waits for hashing and reads in flight
  client_api(const client_api&) = delete;
  client_api& operator=(const client_api&) = delete;

  // Answers every /v1/ route; 404 not_found for unknown paths, 405 for a
  // known path with another method.
  void handle(http_request request, http_responder respond);

  struct impl;

private:
  std::shared_ptr<impl> impl_;
};

} // namespace wager
