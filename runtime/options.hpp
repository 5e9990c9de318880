#pragma once

// Everything a Wager node is configured with, in one place. Each field states
// its default and why. The command line, the environment and a JSON file fill
// this struct (runtime/config.hpp); the platform reads nothing else.

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace wager {

struct node_options {
  // Journal, snapshots and keys. Relative to the working directory, so a
  // node started from a checkout keeps its state beside it.
  std::string data_dir = "./data";

  // The journal on PostgreSQL (postgresql://user@host:port/db?sslmode=...),
  // for nodes on several hosts. Empty: the embedded SQLite journal in
  // data_dir, shared only by nodes on one host.
  std::string journal_url;

  // Client API. Loopback by default: exposing a node is a deliberate act.
  std::string http_host = "127.0.0.1";
  uint16_t http_port = 8080; // 0 asks the kernel for a free port

  // Feed listener (newline-delimited JSON over TCP); nullopt is off (-1).
  std::optional<uint16_t> feed_port = 8090;

  // Name in the cluster; empty means "derive from host and the bound port".
  std::string node_id;

  // CAF middleman port for other nodes; nullopt keeps the node standalone.
  std::optional<uint16_t> cluster_port;

  // host:port of nodes to join through.
  std::vector<std::string> seeds;

  // Shared by every node of a cluster; a joining node proves it knows it
  // (an HMAC over both sides' nonces) before it becomes a member. From
  // --cluster-secret, WAGER_CLUSTER_SECRET or --cluster-secret-file (whose
  // contents, less a trailing newline, are the secret). At least 16
  // characters. Empty: the node joins nobody and admits nobody.
  std::string cluster_secret;
  std::string cluster_secret_file;

  // Application heartbeats between cluster agents, and the silence after
  // which a member is down. A member is marked down between down_after minus
  // one heartbeat and down_after plus one after it stops (the last
  // heartbeat, the next tick), so 200 ms and 1600 ms keep a dead or paused
  // node's detection under 2 s on a local network while eight heartbeats
  // in a row must go missing.
  std::chrono::milliseconds cluster_heartbeat = std::chrono::milliseconds{200};
  std::chrono::milliseconds cluster_down_after = std::chrono::milliseconds{1600};

  // Drain (SIGTERM) of a clustered node: how long it waits for the other
  // members to take its shards, each once its entities there have finished
  // their work and passivated. Past it the node stops anyway; the others
  // recover what is left from the journal.
  std::chrono::milliseconds drain_timeout = std::chrono::seconds{30};

  // Mutual TLS between nodes (CAF's openssl module) when all three are set:
  // this node's certificate and key, and the CA that signed every node's
  // certificate. Checked at start. Unset: the cluster port is plain TCP.
  std::string cluster_tls_cert;
  std::string cluster_tls_key;
  std::string cluster_tls_ca;

  // The currency of every wallet, shown by GET /v1/wallet: three capital
  // letters (ISO 4217). Amounts are in its minor unit; a node's journal
  // holds one currency, so it must not change over the journal's life.
  std::string currency = "EUR";

  // The most a slip of several legs pays, in minor units, whatever its
  // lines add up to; a market may cap its slips lower (limits.max_payout).
  // 1,000,000.00: far above a normal slip, low enough that one slip's
  // liability never swamps a market's limit.
  int64_t max_payout = 100'000'000;

  // The share a cash-out quote keeps back: "0.05", at most four decimals,
  // in [0, 1). Checked by actors/slip.hpp's parse_cashout_margin where the
  // wallets are configured; the command line checks its shape.
  std::string cashout_margin = "0.05";

  // Operator key for the admin endpoints; empty disables them (403).
  std::string admin_key;

  // Serve HTTPS and WSS when both are set.
  std::string tls_cert;
  std::string tls_key;

  // Logging, to stderr.
  std::string log_level = "info";
  std::string log_format = "text";

  // A feed producer silent for this long is marked down and its markets
  // suspended. Two seconds is a few missed heartbeats of a 500 ms producer.
  std::chrono::milliseconds feed_silence = std::chrono::milliseconds{2000};

  // The feed producers this node takes lines from; empty: any producer.
  std::vector<std::string> feed_producers;

  // Intrusion detection (gateway/intrusion.hpp): the window its thresholds
  // count in, the thresholds, and how long a block lasts (doubling with each
  // further block of an address, up to security_block_max).
  std::chrono::milliseconds security_window = std::chrono::minutes{5};
  uint32_t security_stuffing_usernames = 10;
  uint32_t security_password_failures = 10;
  uint32_t security_totp_failures = 5;
  uint32_t security_admin_key_failures = 5;
  uint32_t security_token_refusals = 20;
  uint32_t security_settlements_per_minute = 20;
  uint32_t security_feed_gaps_per_minute = 3;
  std::chrono::milliseconds security_block = std::chrono::minutes{1};
  std::chrono::milliseconds security_block_max = std::chrono::hours{1};

  // Shards per cluster. Fixed for the life of a cluster: placement is
  // hash(kind/key) mod shards. 256 spreads well over tens of nodes.
  uint32_t shards = 256;

  // CAF scheduler worker threads; 0 means one per core. More threads than
  // cores only adds context switches for a CPU-bound actor workload.
  uint32_t scheduler_threads = 0;
};

} // namespace wager
