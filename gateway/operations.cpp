#include "wager/gateway/operations.hpp"

namespace wager {

namespace {

std::string_view readiness_name(node_readiness state) {
  switch (state) {
    case node_readiness::starting: return "starting";
    case node_readiness::ready: return "ready";
    case node_readiness::draining: return "draining";
    case node_readiness::degraded: return "degraded";
  }
  return "unknown";
}

} // namespace

std::optional<http_response> operations_response(const http_request& request,
                                                 const std::atomic<node_readiness>& state,
                                                 const metrics& registry) {
  if (request.path != "/healthz" && request.path != "/readyz" && request.path != "/metrics")
    return std::nullopt;
  if (request.method != "GET" && request.method != "HEAD") {
    auto res = error_response(405, "method_not_allowed", "use GET");
    res.headers.emplace_back("Allow", "GET, HEAD");
    return res;
  }
  http_response res;
  if (request.path == "/healthz") {
    res.body = R"({"status":"ok"})";
  } else if (request.path == "/readyz") {
    auto now = state.load();
    res.status = now == node_readiness::ready ? 200 : 503;
    res.body = std::string{R"({"status":")"} + std::string{readiness_name(now)} + "\"}";
    if (res.status == 503)
      res.headers.emplace_back("Retry-After", "1");
  } else {
    res.content_type = "text/plain; version=0.0.4; charset=utf-8";
    res.body = registry.render();
    // The state /readyz reports, read at the scrape: one series per state,
    // 1 for the current one, so an alert can tell starting from draining.
    auto now = state.load();
    res.body += "# HELP wager_node_state What /readyz reports: 1 for the node's current state\n"
                "# TYPE wager_node_state gauge\n";
    for (auto each : {node_readiness::starting, node_readiness::ready, node_readiness::draining,
                      node_readiness::degraded})
      res.body += "wager_node_state{state=\"" + std::string{readiness_name(each)} + "\"} "
                  + (each == now ? "1" : "0") + "\n";
  }
  return res;
}

std::optional<http_response> refusal_unless_serving(node_readiness state) {
  if (state == node_readiness::ready || state == node_readiness::degraded)
    return std::nullopt;
  auto res = error_response(503, "unavailable",
                            state == node_readiness::draining
                              ? "the node is draining: retry on another node"
                              : "the node is not serving yet");
  res.headers.emplace_back("Retry-After", "1");
  return res;
}

} // namespace wager
