// The client API's request metrics. Apart from api.cpp so that code reading
// requests (api_json.cpp, and the fuzz target over it) links without the
// router and everything the routes call.

#include "wager/gateway/api_internal.hpp"

#include <set>

namespace wager::api {

request_metrics::request_metrics(prometheus::Registry& registry,
                                 const std::vector<std::string>& routes)
  : requests(&prometheus::BuildCounter()
                .Name("wager_http_requests_total")
                .Help("Client API requests answered, by route, method and status")
                .Register(registry)),
    seconds(&prometheus::BuildHistogram()
               .Name("wager_http_request_seconds")
               .Help("Client API time from request to answer, by route")
               .Register(registry)) {
  // 100 us to 10 s: a cached read to a request that waited out its timeout.
  prometheus::Histogram::BucketBoundaries buckets{0.0001, 0.00025, 0.0005, 0.001, 0.0025,
                                                  0.005,  0.01,    0.025,  0.05,  0.1,
                                                  0.25,   0.5,     1,      2.5,   10};
  for (auto& label : routes)
    if (by_route.count(label) == 0)
      by_route.emplace(label, &seconds->Add({{"route", label}}, buckets));
  by_route.emplace("unmatched", &seconds->Add({{"route", "unmatched"}}, buckets));
}

void request_metrics::observe(const std::string& route, const std::string& method, int status,
                              double s) const {
  auto i = by_route.find(route);
  if (i == by_route.end())
    i = by_route.find("unmatched");
  i->second->Observe(s);
  // Methods outside the routes' are counted as one, so a scanner cannot
  // grow the label set.
  static const std::set<std::string, std::less<>> methods{"GET", "POST", "PUT", "DELETE"};
  auto m = methods.count(method) > 0 ? method : std::string{"other"};
  requests->Add({{"route", i->first}, {"method", m}, {"status", std::to_string(status)}})
    .Increment();
}

} // namespace wager::api
