#pragma once

// This node's seat in the cluster: the cluster agent actor, published on the
// CAF middleman port, which joins through the seeds, admits peers that prove
// the cluster secret (protocol.hpp), heartbeats them and keeps the member
// list (membership.hpp). The node reads the members and its shards from
// view(), from any thread.
//
// Connecting never blocks the agent: each dial is a detached actor that makes
// the blocking middleman call and reports back by message. A seed or member
// that cannot be reached is dialed again with a doubling back-off.
//
// The agent also watches its own clock: when a tick comes more than
// down_after late, the process was frozen (SIGSTOP, a stalled VM) and every
// peer has called it down already, so it takes a new incarnation and joins
// again rather than speak for its old life.

#include "wager/cluster/membership.hpp"
#include "wager/runtime/directory.hpp"

#include <caf/actor.hpp>
#include <caf/actor_system.hpp>
#include <caf/actor_system_config.hpp>

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

namespace wager {

class metrics;

struct cluster_tls_files {
  std::string cert; // this node's certificate, PEM
  std::string key;  // its private key, PEM, unencrypted
  std::string ca;   // the CA every node's certificate is signed by, PEM

  bool enabled() const noexcept { return !cert.empty(); }
};

// Checks that the three files are readable PEM, the key belongs to the
// certificate and the certificate is signed by the CA. CAF would otherwise
// terminate the process at the first connection. "" when usable, else one
// line naming the file and the problem.
std::string check_cluster_tls(const cluster_tls_files& files);

// Prepares the actor system's configuration for the cluster: the message
// types of protocol.hpp and, with TLS, CAF's openssl module and its files.
// Before the actor system starts (runtime_options::configure).
void configure_cluster(caf::actor_system_config& cfg, const cluster_tls_files& tls);

// A shard handed over to this node, and the node it comes from.
struct shard_handover {
  uint32_t shard = 0;
  std::string from;
};

struct cluster_options {
  std::string node_id;

  // The middleman listens here; other nodes reach this node at host:port
  // (port 0: any free port, the bound one is advertised).
  std::string host = "127.0.0.1";
  uint16_t port = 0;

  // host:port of nodes to join through. Empty: this node starts the cluster
  // and is up at once.
  std::vector<std::string> seeds;

  // Shared by all nodes (at least cluster_secret_min characters). Empty:
  // the agent admits nobody and joins nobody.
  std::string secret;

  // Agent heartbeats and the silence that makes a member down (detected
  // within down_after plus one heartbeat; node_options explains 1600 ms).
  std::chrono::milliseconds heartbeat{200};
  std::chrono::milliseconds down_after{1600};

  // Shards per cluster, for shards_owned and routing.
  uint32_t shards = 256;

  // This node's entity directory. Set: the node routes by placement (each
  // shard to the up member that owns it, the directory of every peer asked
  // for once it is admitted) and offers it to its peers. Unset: every shard
  // is served where it is asked for.
  directory dir;

  // Called by the agent (so it must not block) with the shards that have
  // just come to this node, for the work their entities left open to be
  // resumed (platform::resume_shards). Unset: nothing is resumed.
  std::function<void(std::vector<uint32_t>)> on_shards_taken;

  // Called by the agent (so it must not block) with the shards that have
  // arrived here from a node that is still alive (a join, a drain: a
  // hand-off), and that node: before they are routed here, and again at
  // every heartbeat while the hand-over stands (not on a tick that finds
  // this process was frozen). A journal fenced by shard leases
  // (persistence/shard_leases.hpp) may then take their leases from that
  // node, for a while after each call. Shards of a node that is down are
  // not handed over: their leases are taken only once that node's member
  // row has gone silent.
  std::function<void(std::vector<shard_handover>)> on_handover;

  // Must match configure_cluster's: TLS nodes talk only to TLS nodes.
  bool tls = false;

  // Dial back-off: the first retry after connect_backoff_initial, doubling
  // up to connect_backoff_max, so a dead member costs a dial every 2 s.
  std::chrono::milliseconds connect_backoff_initial{100};
  std::chrono::milliseconds connect_backoff_max{2000};

  // Each step of the join handshake. Finite: a request to a node that is
  // lost never fails otherwise (CAF 0.17).
  std::chrono::milliseconds handshake_timeout{2000};
};

// What the node shows of the cluster (GET /v1/admin/health, /metrics).
struct cluster_view {
  std::vector<member_report> members; // by node id, this node included
  uint32_t shards_owned = 0;          // shards placement gives this node
  uint64_t version = 0;               // membership::version() when taken
};

namespace detail {
struct cluster_shared {
  mutable std::mutex mutex;
  cluster_view view; // REQUIRES: mutex is held
  // routes[s]: who serves shard s. Owner invalid: this node (with the
  // directory of the node that must release it first, if any); else the
  // owner's directory, or `refuser` while the owner or its directory is
  // unknown.
  std::vector<shard_route> routes; // REQUIRES: mutex is held
  caf::actor refuser;             // set before the agent starts, then fixed
};
} // namespace detail

class cluster_node {
public:
  // Spawns the agent and publishes it on options.host:options.port. On
  // failure, nullptr and one line in `error`.
  static std::unique_ptr<cluster_node> start(caf::actor_system& sys, metrics& m,
                                             cluster_options options, std::string& error);
  ~cluster_node(); // stop()
  cluster_node(const cluster_node&) = delete;
  cluster_node& operator=(const cluster_node&) = delete;

  uint16_t port() const noexcept { return port_; }
  // host:port, as other nodes reach this one.
  const std::string& address() const noexcept { return address_; }

  cluster_view view() const;

  // Drain: this node is leaving and owns no shards; its peers hear so at
  // once, and mark it down once stop() silences it. Returns once the
  // directory has the placement without this node (its entities are
  // passivating, its shards' new owners ask for them: directory's
  // await_released tells when they have them all).
  void leave();

  // Stops the agent (no more heartbeats: peers mark this node down after
  // down_after). The directory keeps the last placement until it stops, so
  // it never serves a shard this node gave away. Idempotent; before the
  // actor system goes.
  void stop();

private:
  cluster_node() = default;
  caf::actor agent_;
  directory dir_;
  uint16_t port_ = 0;
  std::string address_;
  std::shared_ptr<detail::cluster_shared> shared_;
};

} // namespace wager
