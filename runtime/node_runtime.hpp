#pragma once

// The actor side of one Wager node: the CAF actor system, configured from
// one options struct, and the services every component shares (metrics).
// Started by the constructor, stopped by shutdown() or the destructor.

#include "wager/runtime/metrics.hpp"

#include <caf/actor_system.hpp>
#include <caf/actor_system_config.hpp>

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>

namespace wager {

struct runtime_options {
  // CAF scheduler worker threads; 0 means one per core. CAF's own default,
  // max(4, cores), oversubscribes a 2-core machine.
  uint32_t scheduler_threads = 0;

  // Messages an actor handles before yielding its thread. Bounded so one hot
  // market cannot starve the others sharing a worker.
  uint32_t max_throughput = 300;

  // Middleman heartbeat and connection timeout for other nodes. Both must be
  // set on every node, or a frozen peer is never detected (CAF 0.17).
  std::chrono::milliseconds cluster_heartbeat{200};
  std::chrono::milliseconds cluster_timeout{1000};

  // Runs on the actor system's configuration before the system starts:
  // where the cluster registers its message types and loads CAF's openssl
  // module. Empty: nothing beyond the above.
  std::function<void(caf::actor_system_config&)> configure;
};

class node_runtime {
public:
  explicit node_runtime(runtime_options options = {});
  ~node_runtime();
  node_runtime(const node_runtime&) = delete;
  node_runtime& operator=(const node_runtime&) = delete;

  caf::actor_system& system() { return *system_; }
  wager::metrics& metrics() { return *metrics_; }
  const runtime_options& options() const { return options_; }

  // Opens the middleman port other nodes connect to. Returns the bound port
  // (useful with port 0) or an error line.
  std::optional<uint16_t> open_cluster_port(const std::string& host, uint16_t port,
                                            std::string& error);

  // Stops every actor and joins the scheduler. Idempotent.
  void shutdown();

private:
  runtime_options options_;
  std::unique_ptr<wager::metrics> metrics_;
  std::unique_ptr<caf::actor_system_config> config_;
  std::unique_ptr<caf::actor_system> system_;
};

} // namespace wager
