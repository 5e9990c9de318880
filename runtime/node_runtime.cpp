#include "wager/runtime/node_runtime.hpp"

#include "wager/runtime/errors.hpp"
#include "wager/runtime/log.hpp"

#include <caf/io/middleman.hpp>

#include <thread>

namespace wager {

namespace {

std::string render_wager_error(uint8_t code, caf::atom_value, const caf::message& context) {
  std::string text{to_code(static_cast<errc>(code))};
  if (context.match_elements<std::string>())
    text += ": " + context.get_as<std::string>(0);
  return text;
}

} // namespace

node_runtime::node_runtime(runtime_options options)
  : options_(options), metrics_(std::make_unique<wager::metrics>()),
    config_(std::make_unique<caf::actor_system_config>()) {
  auto threads = options_.scheduler_threads;
  if (threads == 0)
    threads = std::max(1u, std::thread::hardware_concurrency());
  config_->set("scheduler.max-threads", static_cast<size_t>(threads));
  config_->set("scheduler.max-throughput", static_cast<size_t>(options_.max_throughput));
  config_->set("middleman.heartbeat-interval", caf::timespan{options_.cluster_heartbeat});
  config_->set("middleman.connection-timeout", caf::timespan{options_.cluster_timeout});
  config_->add_error_category(error_category, render_wager_error);
  config_->load<caf::io::middleman>();
  if (options_.configure)
    options_.configure(*config_);
  system_ = std::make_unique<caf::actor_system>(*config_);
  log().debug("actor system started with {} scheduler threads", threads);
}

node_runtime::~node_runtime() {
  shutdown();
}

std::optional<uint16_t> node_runtime::open_cluster_port(const std::string& host,
                                                        uint16_t port, std::string& error) {
  auto bound = system_->middleman().open(port, host.c_str(), true);
  if (!bound) {
    error = "cannot open cluster port " + host + ":" + std::to_string(port) + ": "
            + system_->render(bound.error());
    return std::nullopt;
  }
  return *bound;
}

void node_runtime::shutdown() {
  if (!system_)
    return;
  system_.reset();
  config_.reset();
}

} // namespace wager
