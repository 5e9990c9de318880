#include "wager/runtime/metrics.hpp"

#include <prometheus/text_serializer.h>

namespace wager {

metrics::metrics() : registry_(std::make_shared<prometheus::Registry>()) {
  restarts_ = &prometheus::BuildCounter()
                 .Name("wager_restarts_total")
                 .Help("Children restarted by their supervisor")
                 .Register(*registry_);
  actors_alive_ = &prometheus::BuildGauge()
                     .Name("wager_actors_alive")
                     .Help("Live actors per kind")
                     .Register(*registry_);
  activations_ = &prometheus::BuildCounter()
                    .Name("wager_entity_activations_total")
                    .Help("Entities activated by the directory, per kind")
                    .Register(*registry_);
  passivations_ = &prometheus::BuildCounter()
                     .Name("wager_entity_passivations_total")
                     .Help("Entities passivated by the directory, per kind")
                     .Register(*registry_);
}

std::string metrics::render() const {
  prometheus::TextSerializer serializer;
  return serializer.Serialize(registry_->Collect());
}

} // namespace wager
