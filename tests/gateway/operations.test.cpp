// The operations endpoints and the node's refusal of work while it does not
// serve (starting, draining): what a load balancer and a client see.

#include "wager/gateway/operations.hpp"

#include <doctest/doctest.h>

using namespace wager;

namespace {

http_request get(std::string path) {
  http_request r;
  r.method = "GET";
  r.path = r.target = std::move(path);
  return r;
}

std::string header(const http_response& res, const std::string& name) {
  for (auto& [n, v] : res.headers)
    if (n == name)
      return v;
  return {};
}

} // namespace

TEST_CASE("readyz answers 200 only while ready, 503 with Retry-After otherwise") {
  metrics registry;
  for (auto state : {node_readiness::starting, node_readiness::ready, node_readiness::draining,
                     node_readiness::degraded}) {
    CAPTURE(static_cast<int>(state));
    std::atomic<node_readiness> now{state};
    auto res = operations_response(get("/readyz"), now, registry);
    REQUIRE(res);
    CHECK(res->status == (state == node_readiness::ready ? 200 : 503));
    if (res->status == 503)
      CHECK(header(*res, "Retry-After") == "1");
  }
  std::atomic<node_readiness> draining{node_readiness::draining};
  CHECK(operations_response(get("/readyz"), draining, registry)->body
        == R"({"status":"draining"})");
  CHECK(operations_response(get("/healthz"), draining, registry)->status == 200);
  CHECK_FALSE(operations_response(get("/v1/wallet"), draining, registry));
}

TEST_CASE("a draining or starting node refuses API work with 503 unavailable and Retry-After") {
  for (auto state : {node_readiness::starting, node_readiness::draining}) {
    auto res = refusal_unless_serving(state);
    REQUIRE(res);
    CHECK(res->status == 503);
    CHECK(res->body.find(R"("code":"unavailable")") != std::string::npos);
    CHECK(header(*res, "Retry-After") == "1");
  }
  CHECK(refusal_unless_serving(node_readiness::draining)->body.find("draining")
        != std::string::npos);
  // A degraded node still serves reads; the journal refuses what it cannot write.
  CHECK_FALSE(refusal_unless_serving(node_readiness::ready));
  CHECK_FALSE(refusal_unless_serving(node_readiness::degraded));
}
