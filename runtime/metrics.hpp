#pragma once

// The node's metrics registry (prometheus-cpp). Components register their
// families here; the gateway serves render() as GET /metrics. One registry per
// platform instance, so two embedded platforms in one process (tests) do not
// share counters.

#include <prometheus/counter.h>
#include <prometheus/family.h>
#include <prometheus/gauge.h>
#include <prometheus/histogram.h>
#include <prometheus/registry.h>

#include <memory>
#include <string>

namespace wager {

class metrics {
public:
  metrics();

  prometheus::Registry& registry() { return *registry_; }

  // Shared by every component, so they are created here once.

  // wager_restarts_total{supervisor,child}: supervised restarts.
  prometheus::Family<prometheus::Counter>& restarts() { return *restarts_; }

  // wager_actors_alive{kind}: live actors per kind (wallet, market, ...).
  prometheus::Family<prometheus::Gauge>& actors_alive() { return *actors_alive_; }

  // wager_entity_activations_total{kind} and passivations.
  prometheus::Family<prometheus::Counter>& activations() { return *activations_; }
  prometheus::Family<prometheus::Counter>& passivations() { return *passivations_; }

  // The whole registry in the Prometheus text exposition format.
  std::string render() const;

private:
  std::shared_ptr<prometheus::Registry> registry_;
  prometheus::Family<prometheus::Counter>* restarts_;
  prometheus::Family<prometheus::Gauge>* actors_alive_;
  prometheus::Family<prometheus::Counter>* activations_;
  prometheus::Family<prometheus::Counter>* passivations_;
};

} // namespace wager
